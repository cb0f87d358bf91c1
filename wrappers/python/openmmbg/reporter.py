"""An OpenMM reporter of the statistics of a BoltzmannGeneratorProposal.

    import sys
    import openmm.app as app, openmmbg

    move = openmmbg.BoltzmannGeneratorProposal("model.bgm")
    system.addForce(move)
    simulation = app.Simulation(topology, system, integrator)
    simulation.reporters.append(openmmbg.ProposalReporter(sys.stdout, 1000, move))
    simulation.step(10000)

writes, like ``openmm.app.StateDataReporter``, a quoted header line and then one comma-separated
line every ``reportInterval`` steps:

    #"Step","Proposed","Accepted","Acceptance Rate","Last Log Acceptance Ratio"
    1000,20,3,0.15,-2.71
    ...

The counters are those of the Simulation's Context (``proposal.getNumProposed(context)`` and so on):
they count from the Context's creation (or its last ``reinitialize()``), not from the reporter's.
"""
import numbers
import os

import openmm

from .openmmbg_force import BoltzmannGeneratorProposal

__all__ = ["ProposalReporter"]


def _openmm_major_version():
    """The installed OpenMM's major version (8 if it cannot be told)."""
    try:
        return int(str(openmm.version.short_version).split(".")[0])
    except (AttributeError, ValueError):
        return 8


class ProposalReporter:
    """Writes the proposal statistics of a ``BoltzmannGeneratorProposal`` to a file, for
    ``app.Simulation.reporters``.

    Parameters
    ----------
    file : str, os.PathLike or file object
        A path (opened for writing, truncated unless ``append``) or an open text file object
        (anything with ``write``, e.g. ``sys.stdout`` or ``io.StringIO``; not closed by the reporter).
    reportInterval : int
        The interval in time steps at which to write a line (>= 1).
    proposal : BoltzmannGeneratorProposal
        The Force in the Simulation's System whose statistics to report. A generic ``openmm.Force``
        that is a BoltzmannGeneratorProposal (e.g. from ``system.getForce(i)`` after
        deserialization) is accepted too.
    separator : str, default ","
        The separator between columns.
    append : bool, default False
        Open a path in append mode and write no header (one is assumed to be there already).

    Columns: ``Step`` (``simulation.currentStep``), ``Proposed`` and ``Accepted`` (the Context's
    counters), ``Acceptance Rate`` (accepted / proposed; ``nan`` while nothing has been proposed) and
    ``Last Log Acceptance Ratio`` (log alpha of the latest proposal: ``nan`` before the first,
    ``-inf`` for one the chirality guard refused). Every line is flushed as it is written.

    Raises ``ValueError`` for a ``reportInterval`` that is not an integer >= 1, or a ``proposal``
    that is not a BoltzmannGeneratorProposal.
    """

    headers = ("Step", "Proposed", "Accepted", "Acceptance Rate", "Last Log Acceptance Ratio")

    def __init__(self, file, reportInterval, proposal, separator=",", append=False):
        self._openedFile = False
        if isinstance(reportInterval, bool) or not isinstance(reportInterval, numbers.Integral) or reportInterval < 1:
            raise ValueError(f"ProposalReporter: reportInterval must be an integer >= 1 (got {reportInterval!r})")
        self._reportInterval = int(reportInterval)
        self._proposal = self._as_proposal(proposal)
        self._separator = str(separator)
        self._append = bool(append)
        if isinstance(file, (str, os.PathLike)):
            self._out = open(file, "a" if self._append else "w")
            self._openedFile = True
        elif hasattr(file, "write"):
            self._out = file
        else:
            raise ValueError(f"ProposalReporter: file must be a path or an open file object (got {type(file).__name__})")
        self._hasInitialized = False
        self._tuple = _openmm_major_version() < 8

    @staticmethod
    def _as_proposal(proposal):
        if isinstance(proposal, BoltzmannGeneratorProposal):
            return proposal
        if isinstance(proposal, openmm.Force) and BoltzmannGeneratorProposal.isinstance(proposal):
            return BoltzmannGeneratorProposal.cast(proposal)
        raise ValueError("ProposalReporter: proposal must be the openmmbg.BoltzmannGeneratorProposal in the "
                         f"Simulation's System (got {type(proposal).__name__})")

    @property
    def reportInterval(self):
        """The interval in time steps between lines."""
        return self._reportInterval

    @property
    def proposal(self):
        """The BoltzmannGeneratorProposal reported on."""
        return self._proposal

    def describeNextReport(self, simulation):
        """Steps to the next report, and what the State must hold (nothing: the counters come from
        the Context). A dict for OpenMM >= 8; the 5-tuple (steps, positions, velocities, forces,
        energy) of older OpenMM otherwise."""
        steps = self._reportInterval - simulation.currentStep % self._reportInterval
        if self._tuple:
            return (steps, False, False, False, False)
        return {"steps": steps, "periodic": None, "include": []}

    def _values(self, simulation):
        """The columns of a report: (step, proposed, accepted, rate, last log ratio)."""
        context = simulation.context
        proposed = int(self._proposal.getNumProposed(context))
        accepted = int(self._proposal.getNumAccepted(context))
        rate = accepted / proposed if proposed else float("nan")
        return (int(simulation.currentStep), proposed, accepted, rate,
                float(self._proposal.getLastLogAcceptanceRatio(context)))

    def report(self, simulation, state):
        """Write the header (first call, unless appending) and one line for the current step."""
        values = self._values(simulation)
        if not self._hasInitialized:
            if not self._append:
                print('#"%s"' % ('"' + self._separator + '"').join(self.headers), file=self._out)
            self._hasInitialized = True
        print(self._separator.join(str(v) for v in values), file=self._out)
        try:
            self._out.flush()
        except AttributeError:
            pass

    def __del__(self):
        if getattr(self, "_openedFile", False):
            self._out.close()
