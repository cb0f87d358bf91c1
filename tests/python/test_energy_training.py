"""Energy-based training from Python: Flow.train_energy (FAB and reverse KL) against a built-in
target, its reports, the target's defaults from the catalog, option errors and exact resumption
from a checkpoint."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import openmmbg
from helpers import source_catalog

TINY = {"num_particles": 4, "dim": 2, "projection": "vector", "num_layers": 1, "egnn_blocks": 1,
        "egnn_mlp_units": [8, 8], "egnn_hidden_features": 8, "egnn_output_features": 8, "head_mlp_units": [8, 8],
        "dtype": "float64"}
OPTIONS = dict(iterations=4, batch_size=16, buffer_min_batches=8, buffer_max_batches=16, report_every=2,
               evaluate_every=4, num_ess_samples=64, initial_step_size=0.05)


@pytest.mark.parametrize("objective", ["fab", "reverse-kl"])
def test_train_energy_reports_and_changes_the_flow(objective):
    flow = openmmbg.Flow(TINY)
    x, a, before = flow.sample(8, seed=1)
    reports = flow.train_energy("dw4", objective=objective, verbose=False, **OPTIONS)
    assert [r["iteration"] for r in reports] == [2, 4]
    assert 0 < reports[-1]["reverse_ess"] <= 1
    assert np.isfinite(reports[-1]["loss"])
    if objective == "fab":
        assert len(reports[-1]["step_sizes"]) == 2 and len(reports[-1]["acceptance"]) == 2
        assert 0 < reports[-1]["ais_ess"] <= 1
    assert not np.array_equal(flow.log_prob(x, a), before)


def test_train_energy_option_errors():
    flow = openmmbg.Flow(TINY)
    with pytest.raises(Exception, match="objective"):
        flow.train_energy("dw4", objective="ml", verbose=False)
    with pytest.raises(Exception, match="unknown key"):
        flow.train_energy("dw4", verbose=False, iteratons=3)
    with pytest.raises(Exception, match="particles"):
        flow.train_energy("lj13", verbose=False, iterations=1)


def test_train_energy_takes_the_targets_defaults_from_the_catalog():
    """LJ13 trains with the paper's settings of the catalog, as `openmmbg train --system lj13` does,
    not the library's (DW4's); the report of its first iteration (the time limit stops it there)
    shows them. About 10 s on one core: AIS on two batches of LJ13's 1024 samples."""
    defaults = openmmbg.builtin_systems()["lj13"]["energy_training"]
    flow = openmmbg.Flow(dict(TINY, num_particles=13, dim=3))
    reports = flow.train_energy("lj13", verbose=False, buffer_min_batches=1, buffer_max_batches=2,
                                updates_per_iteration=1, num_leapfrog=1, report_every=1, evaluate_every=0,
                                initial_step_size=0.05, time_limit=1e-9)
    assert [r["iteration"] for r in reports] == [1]
    assert reports[0]["total_iterations"] == defaults["iterations"]
    assert len(reports[0]["step_sizes"]) == defaults["num_intermediate"]
    assert reports[0]["buffer_size"] == 2 * defaults["batch_size"]  # the pre-filled batch and the iteration's
    with pytest.raises(ValueError, match="lj55 has no default iterations"):
        openmmbg.Flow(dict(TINY, num_particles=55, dim=3)).train_energy("lj55", verbose=False)


def test_train_energy_reads_the_catalog_of_openmmbg_catalog(tmp_path):
    """With $OPENMMBG_CATALOG, the defaults come from that file: the catalog is read, not copied."""
    catalog = source_catalog()
    catalog["systems"]["dw4"]["energy_training"] = {"iterations": 3, "batch_size": 16, "num_intermediate": 1}
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    options = {k: v for k, v in OPTIONS.items() if k not in ("iterations", "batch_size")}
    code = (f"import json, openmmbg; flow = openmmbg.Flow({TINY!r}); "
            f"reports = flow.train_energy('dw4', verbose=False, **{dict(options, report_every=1)!r}); "
            "print(json.dumps([[r['iteration'], len(r['step_sizes']), r['buffer_size']] for r in reports]))")
    env = dict(os.environ, OPENMMBG_CATALOG=str(tmp_path / "catalog.json"))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    reports = json.loads(result.stdout)
    assert [r[0] for r in reports] == [1, 2, 3]
    assert all(r[1] == 1 for r in reports)
    assert all(r[2] <= 16 * OPTIONS["buffer_max_batches"] for r in reports)


def test_train_energy_resumes_exactly(tmp_path):
    straight = openmmbg.Flow(TINY)
    straight.train_energy("dw4", verbose=False, **OPTIONS)
    checkpoint = tmp_path / "fab.checkpoint"
    first = openmmbg.Flow(TINY)
    first.train_energy("dw4", verbose=False, checkpoint=checkpoint, time_limit=1e-9, checkpoint_every=1,
                       **OPTIONS)  # stops after its first iteration, as if killed
    resumed = openmmbg.Flow(TINY)
    reports = resumed.train_energy("dw4", verbose=False, checkpoint=checkpoint, checkpoint_every=1, **OPTIONS)
    assert reports[-1]["iteration"] == 4
    x, a, _ = straight.sample(16, seed=3)
    np.testing.assert_array_equal(straight.log_prob(x, a), resumed.log_prob(x, a))
