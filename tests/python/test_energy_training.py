"""Energy-based training from Python: Flow.train_energy (FAB and reverse KL) against a built-in
target, its reports, option errors and exact resumption from a checkpoint."""
import numpy as np
import pytest

import openmmbg

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
