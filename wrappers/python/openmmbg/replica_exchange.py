"""Temperature replica exchange (parallel tempering) of an OpenMM System, with resumable output.

    import openmm.unit as unit, openmmbg
    remd = openmmbg.ReplicaExchange(system, positions, [300, 330, 363] * unit.kelvin, "remd-out",
                                    timestep=1 * unit.femtosecond, steps_per_exchange=500)
    remd.run(10000)          # a rerun with the same folder resumes, and extends to the new total
    print(remd.swap_acceptance, remd.proposal_acceptance)

The work is done by the C++ class ``OpenMMBG::ReplicaExchange`` (see docs/replica-exchange.md):
one Context per temperature, Langevin dynamics, neighbour swaps by Metropolis, per-temperature
trajectories ``trajectory_<i>.dcd`` and ``energies.csv``, ``statistics.json`` and an atomic
``checkpoint.bin``. A ``BoltzmannGeneratorProposal`` in the System proposes in every replica at
that replica's temperature.
"""
import json
import sys
import time

import openmm.unit as unit

from . import openmmbg_force as _force


def _value(quantity, target_unit):
    if unit.is_quantity(quantity):
        return quantity.value_in_unit(target_unit)
    return quantity


def _flat_positions_nm(positions):
    if unit.is_quantity(positions):
        positions = positions.value_in_unit(unit.nanometer)
    return [float(c) for p in positions for c in (p[0], p[1], p[2])]


class ReplicaExchange:
    """Replica exchange over a temperature ladder.

    Parameters
    ----------
    system : openmm.System
    positions : starting positions (Quantity or nm), used unless the folder holds a checkpoint
    temperatures : increasing temperatures (Quantity or K); the first is the one of interest
    output_dir : folder for trajectories, energies, statistics and the checkpoint (resumed if present)
    timestep : default 1 fs
    friction : Langevin friction, default 1/ps
    steps_per_exchange : MD steps per replica between exchange attempts, default 500
    exchanges_per_frame : exchange attempts between saved frames, default 1
    exchanges_per_checkpoint : default 10
    platform : OpenMM platform name (default: OpenMM's fastest); precision : for OpenCL/CUDA
    seed : random seed (0: from the clock)
    """

    def __init__(self, system, positions, temperatures, output_dir, timestep=1 * unit.femtosecond,
                 friction=1 / unit.picosecond, steps_per_exchange=500, exchanges_per_frame=1,
                 exchanges_per_checkpoint=10, platform=None, precision=None, seed=0):
        if unit.is_quantity(temperatures):
            temperatures = temperatures.value_in_unit(unit.kelvin)
        temperatures = [float(_value(t, unit.kelvin)) for t in temperatures]
        self._temperatures = temperatures
        self.exchanges_per_checkpoint = int(exchanges_per_checkpoint)
        self._remd = _force._newReplicaExchange(
            system, _flat_positions_nm(positions), temperatures, str(output_dir),
            float(_value(timestep, unit.picosecond)),
            float(_value(friction, unit.picosecond**-1)),
            int(steps_per_exchange), int(exchanges_per_frame), self.exchanges_per_checkpoint,
            platform or "", precision or "", int(seed))

    def run(self, total_exchanges, progress=True):
        """Run until `total_exchanges` exchange attempts in total (counting those before a resume).
        Prints a progress line with swap acceptance and ETA to stderr unless progress=False."""
        start, first = time.perf_counter(), self.num_exchanges
        while self.num_exchanges < total_exchanges:
            step = self.exchanges_per_checkpoint - self.num_exchanges % self.exchanges_per_checkpoint
            self._remd.run(min(total_exchanges, self.num_exchanges + step))
            if progress:
                done = self.num_exchanges
                elapsed = time.perf_counter() - start
                eta = elapsed / max(done - first, 1) * (total_exchanges - done)
                swaps = " ".join(f"{100 * a:.0f}" for a in self.swap_acceptance)
                print(f"[openmmbg] exchange {done}/{total_exchanges}  swap acceptance % [{swaps}]  "
                      f"{elapsed:.0f} s elapsed, ETA {eta:.0f} s", file=sys.stderr, flush=True)

    @property
    def temperatures(self):
        """The temperature ladder, a Quantity (a list in kelvin) as OpenMM's getters return;
        ``remd.temperatures[i]`` is the Quantity of replica i, ``value_in_unit(unit.kelvin)`` the
        plain list."""
        return unit.Quantity(list(self._temperatures), unit.kelvin)

    @property
    def num_replicas(self):
        return self._remd.getNumReplicas()

    @property
    def num_exchanges(self):
        """Exchange attempts made so far."""
        return self._remd.getNumExchanges()

    @property
    def swap_acceptance(self):
        """Fraction of accepted swaps between temperatures i and i + 1."""
        return [self._remd.getNumSwapsAccepted(p) / max(self._remd.getNumSwapsAttempted(p), 1)
                for p in range(self.num_replicas - 1)]

    @property
    def proposal_acceptance(self):
        """Fraction of accepted BoltzmannGeneratorProposal proposals per replica (0 without one)."""
        return [self._remd.getNumProposalsAccepted(i) / max(self._remd.getNumProposed(i), 1)
                for i in range(self.num_replicas)]

    def context(self, replica):
        """The Context at temperature index `replica`."""
        return self._remd.getContext(replica)

    def potential_energy(self, replica):
        """Potential energy of replica `replica` after the last exchange (Quantity, kJ/mol)."""
        return self._remd.getPotentialEnergy(replica) * unit.kilojoule_per_mole

    @property
    def statistics(self):
        """Temperatures, swaps and proposals per replica (as in statistics.json)."""
        return json.loads(self._remd.getStatisticsJson())
