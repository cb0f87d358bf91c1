"""Boltzmann generators for OpenMM.

``openmmbg.Flow`` is an E-ACF augmented coupling flow (Midgley et al. 2023) implemented in the
C++/LibTorch library; it needs neither torch nor openmm in Python. Arrays are numpy float64:
positions ``x`` have shape ``[n, N, D]``, augmented variables ``a`` ``[n, N, A, D]`` and
log-densities ``[n]``, with lengths in the model's length unit (``flow.config["length_unit"]``,
nm by default).

Importing this package loads the project's OpenMM plugins (when openmm is installed) from
``$OPENMMBG_PLUGIN_DIR`` if set (``scripts/python`` sets it to ``build/plugins``), else from the
``plugins`` folder of the build tree this package was built in.
"""
import os as _os

# LibTorch's OpenMP threads spin while they wait, which on busy cores (an OpenMM simulation beside
# the flow) costs up to 25x when more than one thread runs (docs/benchmarks.md, "Threads"). It takes
# effect where this package loads OpenMP first (an explicit OMP_WAIT_POLICY wins). The thread count itself is set in
# the library (openmmbg/Threads.h: one thread unless OPENMMBG_NUM_THREADS or OMP_NUM_THREADS says).
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ._catalog import builtin_systems
from ._flow import Flow, read_dcd, target_energies
from . import evaluation, internal_coordinates
from .openmmbg_force import BoltzmannGeneratorProposal
from .replica_exchange import ReplicaExchange
from .reporter import ProposalReporter
from ._version import __version__
from .openmmbg_swig import getNumThreads as get_num_threads, setNumThreads as set_num_threads

__all__ = ["Flow", "BoltzmannGeneratorProposal", "ProposalReporter", "ReplicaExchange", "builtin_systems", "read_dcd",
           "target_energies", "evaluation", "internal_coordinates", "get_num_threads", "set_num_threads", "__version__"]


def _plugin_directory():
    """$OPENMMBG_PLUGIN_DIR, else <build>/plugins beside <build>/python/openmmbg."""
    directory = _os.environ.get("OPENMMBG_PLUGIN_DIR")
    if directory:
        return directory
    return _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), _os.pardir, _os.pardir, "plugins")


def _load_plugins():
    """Load the OpenMM plugins of this build, if the folder exists and openmm is importable."""
    directory = _plugin_directory()
    if not _os.path.isdir(directory):
        return []
    try:
        import openmm
    except ImportError:
        return []
    return list(openmm.Platform.loadPluginsFromDirectory(directory))


#: The plugin libraries loaded at import.
loaded_plugins = _load_plugins()
