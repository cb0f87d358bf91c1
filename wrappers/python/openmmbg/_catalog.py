"""The catalog of built-in systems, ``catalog/builtin-systems.json``: the one file the ``openmmbg``
tool and this package take the built-in systems' sizes, data splits and default training settings
from (docs/cli.md#built-in-systems-the-catalog)."""
import copy
import json
import os

from ._catalog_path import CATALOG

__all__ = ["builtin_systems"]

_FORMAT_VERSION = 1
_read = {}  # path -> its systems, each file read once per process (as the openmmbg tool does)


def _path():
    """``$OPENMMBG_CATALOG`` if set, else the catalog of the source tree this package was built from."""
    return os.environ.get("OPENMMBG_CATALOG") or CATALOG


def _systems():
    """The catalog's systems as read (shared: callers must not change them)."""
    path = _path()
    if path not in _read:
        try:
            with open(path, encoding="utf-8") as f:
                root = json.load(f)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"cannot read the catalog of built-in systems '{path}' "
                "(set OPENMMBG_CATALOG to the path of catalog/builtin-systems.json)") from None
        except ValueError as e:
            raise ValueError(f"catalog of built-in systems '{path}' is not valid JSON: {e}") from None
        if not isinstance(root, dict) or root.get("format_version") != _FORMAT_VERSION:
            raise ValueError(f"catalog of built-in systems '{path}': format_version is not {_FORMAT_VERSION}")
        if not isinstance(root.get("systems"), dict) or not root["systems"]:
            raise ValueError(f"catalog of built-in systems '{path}': systems must be a non-empty object")
        _read[path] = root["systems"]
    return _read[path]


def _system(name):
    """The catalog's entry of a built-in system (shared, not to be changed), or None for another name."""
    return _systems().get(name)


def builtin_systems():
    """The built-in systems of the catalog, as a new dict ``{name: system}`` on each call.

    Each system is the catalog's object: ``description``; ``num_particles`` (N) and ``dim`` (D);
    ``data``, the data set under the data folder (``folder``, and the ``train``, ``validation`` and
    ``test`` splits: ``file``, rows [``begin``, ``end``), ``end`` None for the end of the file; the
    training rows are [``begin``, ``begin`` + ``num_train``)), or None for a system without data;
    ``maximum_likelihood`` (``epochs``, ``epochs_projection_none``, ``num_train``; None without
    data); ``energy_training``, the defaults of :meth:`Flow.train_energy` (``iterations``, None:
    no default; ``batch_size``; ``num_intermediate``).

    The file is ``$OPENMMBG_CATALOG`` if set, else the ``catalog/builtin-systems.json`` of the
    source tree this package was built from, read once per process. A missing file raises
    FileNotFoundError, a malformed one ValueError.
    """
    return copy.deepcopy(_systems())
