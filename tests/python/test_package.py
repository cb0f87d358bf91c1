"""The openmmbg package itself: version, import without torch, plugin loading, the catalog of
built-in systems."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import openmmbg
from helpers import source_catalog


def run_python(code, **env):
    environment = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=120)


def test_version_and_public_names():
    assert openmmbg.__version__.count(".") == 2
    assert "Flow" in openmmbg.__all__
    for name in ("load", "from_bytes", "save", "to_bytes", "sample", "log_prob", "marginal_log_prob",
                 "log_augmented_target", "config", "num_particles", "dim", "num_aug", "num_parameters"):
        assert hasattr(openmmbg.Flow, name), name
        assert getattr(openmmbg.Flow, name).__doc__, f"{name} has no docstring"


def test_import_does_not_need_python_torch():
    code = ("import sys, openmmbg; "
            "f = openmmbg.Flow({'num_particles': 3, 'dim': 2, 'projection': 'none', 'num_layers': 1}); "
            "f.sample(2); print('torch' in sys.modules)")
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_the_build_trees_plugin_is_loaded_by_default():
    env = {k: v for k, v in os.environ.items() if k != "OPENMMBG_PLUGIN_DIR"}
    code = ("import openmmbg, openmm; print([p.rsplit('/', 1)[-1] for p in openmmbg.loaded_plugins]); "
            "print(openmm.Platform.getPluginLoadFailures())")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded, failures = result.stdout.strip().splitlines()
    assert "libOpenMMBGReference.so" in loaded
    assert failures == "()"


def test_plugin_directory_is_optional(tmp_path):
    code = "import openmmbg; print(openmmbg.loaded_plugins)"
    missing = run_python(code, OPENMMBG_PLUGIN_DIR=str(tmp_path / "missing"))
    assert missing.returncode == 0, missing.stderr
    assert missing.stdout.strip() == "[]"
    empty = run_python(code + "; import sys; print('openmm' in sys.modules)", OPENMMBG_PLUGIN_DIR=str(tmp_path))
    assert empty.returncode == 0, empty.stderr
    assert empty.stdout.split() == ["[]", "True"]  # openmm was imported to load the (empty) directory


def test_errors_do_not_crash_the_interpreter():
    code = ("import openmmbg\n"
            "try:\n    openmmbg.Flow.from_bytes(b'\\x00' * 3)\nexcept RuntimeError as e:\n    print('caught', e)\n")
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("caught model file")


def test_builtin_systems_are_the_catalog_the_cli_reads():
    catalog = source_catalog()
    systems = openmmbg.builtin_systems()
    assert systems == catalog["systems"]
    systems["dw4"]["num_particles"] += 1  # a new dict on each call: the caller's to change
    assert openmmbg.builtin_systems() == catalog["systems"]


def test_catalog_path_can_be_overridden(tmp_path):
    code = "import openmmbg, json; print('imported'); print(json.dumps(openmmbg.builtin_systems()))"
    catalog = {"format_version": 1, "systems": {"two": {"num_particles": 2, "dim": 3}}}
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    result = run_python(code, OPENMMBG_CATALOG=str(tmp_path / "catalog.json"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[1]) == catalog["systems"]
    # The package imports without its catalog; asking for it names the file.
    missing = run_python(code, OPENMMBG_CATALOG=str(tmp_path / "missing.json"))
    assert missing.stdout.strip() == "imported"
    assert "FileNotFoundError" in missing.stderr and "missing.json" in missing.stderr
    (tmp_path / "newer.json").write_text(json.dumps(dict(catalog, format_version=2)))
    newer = run_python(code, OPENMMBG_CATALOG=str(tmp_path / "newer.json"))
    assert "ValueError" in newer.stderr and "format_version is not 1" in newer.stderr


@pytest.mark.parametrize("name", sorted(openmmbg.builtin_systems()))
def test_target_energies_take_the_catalogs_shape(name, rng):
    system = openmmbg.builtin_systems()[name]
    n, d = system["num_particles"], system["dim"]
    x = 2.0 * rng.standard_normal((3, n, d))
    assert openmmbg.target_energies(name, x).shape == (3,)
    with pytest.raises(ValueError, match=rf"{name} needs \[n, {n}, {d}\]"):
        openmmbg.target_energies(name, x[:, :-1])
