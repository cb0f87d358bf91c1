"""LJ13 in OpenMM with Boltzmann-generator proposals between stretches of Langevin dynamics.

Run with the freshly built module and plugin:

    scripts/python examples/proposal_lj13.py [--model PATH] [--steps N] [--frequency STEPS]

The System is the built-in ``lj13`` target (docs/targets.md) written with OpenMM custom forces,
in reduced units read as nm and kJ/mol: kT = 1 kJ/mol at T = 1 / k_B = 120.27 K, so the potential
energy in kJ/mol *is* the reduced energy U(x) = -log p~(x):

    U(x) = 2 sum_{i<j} [(1/d_ij)^12 - 2 (1/d_ij)^6] + 0.5 sum_i |x_i - xbar|^2

(pairFactor 1.0: each unordered pair counted twice, the convention of the LJ13 data). The example
first checks that the OpenMM energy equals ``openmmbg.target_energies("lj13", x)``, then runs MD
with a proposal attempt every ``--frequency`` steps, printing the proposal counters as it goes (an
``openmmbg.ProposalReporter`` in ``simulation.reporters``), then the acceptance rate, the energies
and the wall time per proposal attempt (the run's time less that of the same MD without the Force).

The default model is models/pretrained/lj13-spherical.bgm; any 13-particle 3-D .bgm of a particle
family (eacf or ecnf; lengths in nm) can be passed with --model. An untrained flow, e.g.

    scripts/python -c "import openmmbg; openmmbg.Flow({'num_particles': 13, 'dim': 3, \\
        'projection': 'spherical', 'num_layers': 2}).save('/tmp/lj13.bgm')"

runs too, with an acceptance rate near 0. The flow runs on LibTorch's OpenMP threads; on a busy
machine, OMP_NUM_THREADS=1 is much faster.
"""
import argparse
import os
import sys
import time

import numpy as np
import openmm as mm
import openmm.app as app
import openmm.unit as unit

import openmmbg

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
DEFAULT_MODEL = os.path.join(ROOT, "models", "pretrained", "lj13-spherical.bgm")
DATA_DIR = os.environ.get("OPENMMBG_DATA_DIR", os.path.join(ROOT, os.pardir, "shared", "data"))
DATA_FILE = os.path.join(DATA_DIR, "efm", "test_split_LJ13-1000.npy")

N = 13
# k_B in kJ/mol/K as OpenMM and the plugin use it: T = 1 / k_B gives kT = 1 kJ/mol (120.27 K).
BOLTZ = (unit.BOLTZMANN_CONSTANT_kB * unit.AVOGADRO_CONSTANT_NA).value_in_unit(unit.kilojoule_per_mole / unit.kelvin)
TEMPERATURE = 1.0 / BOLTZ


def lj13_system():
    """The lj13 target as an OpenMM System (1 amu per particle) and a Topology for app.Simulation."""
    system = mm.System()
    topology = app.Topology()
    residue = topology.addResidue("LJ", topology.addChain())
    for _ in range(N):
        system.addParticle(1.0)  # amu: the LJ time unit rm sqrt(m / eps) is then 1 ps
        topology.addAtom("X", None, residue)

    # Pairs: pairFactor 1.0 over ordered pairs = a factor 2 on each unordered pair (OpenMM sums
    # unordered pairs). No cutoff, no periodic box: the cluster is isolated.
    pairs = mm.CustomNonbondedForce("2*eps*((rm/r)^12 - 2*(rm/r)^6)")
    pairs.addGlobalParameter("eps", 1.0)  # kJ/mol (= kT)
    pairs.addGlobalParameter("rm", 1.0)   # nm
    pairs.setNonbondedMethod(mm.CustomNonbondedForce.NoCutoff)
    for _ in range(N):
        pairs.addParticle([])
    system.addForce(pairs)

    # Tether 0.5 sum_i |x_i - xbar|^2 to the unweighted centroid xbar: groups 0..12 are the single
    # particles, group 13 is all of them with equal weights (not masses).
    tether = mm.CustomCentroidBondForce(2, "0.5*distance(g1, g2)^2")
    for i in range(N):
        tether.addGroup([i], [1.0])
    everyone = tether.addGroup(list(range(N)), [1.0] * N)
    for i in range(N):
        tether.addBond([i, everyone], [])
    system.addForce(tether)
    return system, topology


def icosahedral_cluster(seed=0):
    """A centre particle and 12 on a perturbed icosahedron near the LJ13 minimum (nm)."""
    phi = (1 + 5 ** 0.5) / 2
    vertices = []
    for s1 in (-1, 1):
        for s2 in (-1, 1):
            vertices += [(0, s1, s2 * phi), (s1, s2 * phi, 0), (s2 * phi, 0, s1)]
    vertices = np.array(vertices, dtype=float)
    vertices *= 0.97 / np.linalg.norm(vertices[0])
    x = np.vstack([np.zeros(3), vertices]) + 0.02 * np.random.default_rng(seed).standard_normal((N, 3))
    return x - x.mean(0)


def lj13_simulation(system, topology, platform, start, seed):
    """Langevin MD at kT = 1 kJ/mol (5 fs, friction 1/ps) from the configuration `start` (nm)."""
    integrator = mm.LangevinMiddleIntegrator(TEMPERATURE * unit.kelvin, 1.0 / unit.picosecond, 0.005 * unit.picoseconds)
    integrator.setRandomNumberSeed(seed)
    simulation = app.Simulation(topology, system, integrator, platform)
    simulation.context.setPositions(start * unit.nanometer)
    simulation.context.setVelocitiesToTemperature(TEMPERATURE * unit.kelvin, seed)
    return simulation


def run_in_stretches(simulation, steps, chunk):
    """`steps` MD steps in stretches of `chunk`; the potential energy (kT) after each and the wall time (s)."""
    energies, done = [], 0
    start_time = time.perf_counter()
    while done < steps:
        n = min(chunk, steps - done)
        simulation.step(n)
        done += n
        energies.append(simulation.context.getState(getEnergy=True).getPotentialEnergy()
                        .value_in_unit(unit.kilojoule_per_mole))
    return energies, time.perf_counter() - start_time


def openmm_energies(context, configurations):
    """Potential energies (kJ/mol = kT) of configurations [n, 13, 3] (nm)."""
    energies = []
    for x in configurations:
        context.setPositions(x)
        energies.append(context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole))
    return np.array(energies)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="a 13-particle 3-D .bgm model (default %(default)s)")
    parser.add_argument("--steps", type=int, default=5000, help="MD steps (default %(default)s)")
    parser.add_argument("--frequency", type=int, default=50, help="steps between proposal attempts (default %(default)s)")
    parser.add_argument("--proposals", type=int, default=1, help="proposals per attempt (default %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the proposals and the integrator")
    parser.add_argument("--platform", default="Reference", help="Reference or CPU (default %(default)s)")
    args = parser.parse_args()

    if not os.path.isfile(args.model):
        print(f"proposal_lj13: no model at {args.model}.\n"
              "  The pretrained LJ13 model is not in this checkout. Any 13-particle 3-D .bgm model can be\n"
              "  passed with --model PATH (see the top of this file for how to make an untrained one).",
              file=sys.stderr)
        return 1

    system, topology = lj13_system()
    platform = mm.Platform.getPlatformByName(args.platform)

    # 1. The System is the lj13 target: compare energies on data rows (or the start cluster).
    if os.path.isfile(DATA_FILE):
        data = np.load(DATA_FILE).astype(np.float64).reshape(-1, N, 3)
        checked, start = data[:5], data[0]
        source = os.path.relpath(DATA_FILE)
    else:
        start = icosahedral_cluster()
        checked, source = start[np.newaxis], "a perturbed icosahedron (no data file)"
    probe = mm.Context(system, mm.VerletIntegrator(0.001), platform)
    u_openmm = openmm_energies(probe, checked)
    u_target = openmmbg.target_energies("lj13", checked)
    del probe
    error = np.max(np.abs(u_openmm - u_target))
    print(f"energy check on {len(checked)} configuration(s) from {source}:")
    print(f"  OpenMM (kJ/mol = kT) {np.array2string(u_openmm, precision=6)}")
    print(f"  target_energies      {np.array2string(u_target, precision=6)}")
    print(f"  max |difference| {error:.2e} kT")
    if not error < 1e-6 * max(1.0, np.max(np.abs(u_target))):
        print("proposal_lj13: the OpenMM System does not match the lj13 target", file=sys.stderr)
        return 1

    # 2. The proposal move. Its temperature is the Context parameter
    #    BoltzmannGeneratorProposal.Temperature(); it should equal the integrator's.
    move = openmmbg.BoltzmannGeneratorProposal(args.model)
    if move.getNumModelParticles() != N:
        print(f"proposal_lj13: {args.model} describes {move.getNumModelParticles()} particles, LJ13 has {N}",
              file=sys.stderr)
        return 1
    config = openmmbg.Flow.load(args.model).config
    if config.get("length_unit", "nm") != "nm":
        print(f"proposal_lj13: the model's lengths are in {config['length_unit']}; the Force needs nm", file=sys.stderr)
        return 1
    move.setFrequency(args.frequency)
    move.setNumProposals(args.proposals)
    move.setTemperature(TEMPERATURE * unit.kelvin)
    move.setRandomNumberSeed(args.seed)
    system.addForce(move)
    kind = f"{config['projection']} projection" if "projection" in config else f"family {config.get('family')}"
    print(f"model {args.model}: {kind}, {config['num_layers']} layers, "
          f"model temperature {config['temperature']} K; proposals at {TEMPERATURE:.2f} K (kT = 1 kJ/mol)")

    simulation = lj13_simulation(system, topology, platform, start, args.seed)

    # 3. MD in stretches of `frequency` steps, with one proposal attempt in each (at the start of its
    #    last step, before the integrator moves). An openmmbg.ProposalReporter prints the proposal
    #    counters (step, proposed, accepted, acceptance rate, last log alpha) to stdout about ten
    #    times in the run; the loop records the energy after each stretch.
    chunk = max(1, args.frequency)
    report_every = max(chunk, (args.steps // 10) // chunk * chunk)
    simulation.reporters.append(openmmbg.ProposalReporter(sys.stdout, report_every, move))
    print()
    energies, wall = run_in_stretches(simulation, args.steps, chunk)

    proposed, accepted = move.getNumProposed(simulation.context), move.getNumAccepted(simulation.context)
    print(f"\nproposed {proposed}, accepted {accepted}: acceptance rate "
          f"{accepted / proposed if proposed else float('nan'):.3f}")
    # The cost of an attempt: this run's wall time less that of the same MD without the Force (the
    # same loop on a System without the move), per attempt.
    _, plain_wall = run_in_stretches(lj13_simulation(lj13_system()[0], topology, platform, start, args.seed),
                                     args.steps, chunk)
    attempts = proposed // max(1, args.proposals)
    if attempts:
        print(f"wall time {wall:.2f} s with proposals, {plain_wall:.2f} s for the same MD alone: "
              f"{1e3 * (wall - plain_wall) / attempts:.2f} ms per attempt of {args.proposals} proposal(s)")
    energies = np.array(energies)
    print(f"mean U over the run {energies.mean():.3f} kT (last half {energies[len(energies) // 2:].mean():.3f} kT)")
    if os.path.isfile(DATA_FILE):
        print(f"mean U of the data  {openmmbg.target_energies('lj13', data).mean():.3f} kT")
    return 0


if __name__ == "__main__":
    sys.exit(main())
