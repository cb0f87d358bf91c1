"""The alanine dipeptide pipeline scripts run end to end on a tiny scale: REMD data generation
(scripts/generate-aldp-data.sh, then resumed and extended), and with an untrained flow the
evaluation (scripts/evaluate-aldp.py), the sampling comparison (scripts/aldp_sampling_comparison.py)
and the MD-with-proposals demo (examples/aldp_md_with_proposals.py)."""
import json
import os
import subprocess
import sys

import pytest

import openmmbg

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.environ.get("OPENMMBG_CLI")
pytestmark = pytest.mark.skipif(not CLI, reason="OPENMMBG_CLI is not set (ctest sets it)")


def test_data_generation_resumes_and_comparison_runs(tmp_path):
    env = dict(os.environ, OPENMMBG_ALDP_DATA=str(tmp_path / "aldp"), OPENMMBG_CLI=CLI, OMP_NUM_THREADS="1",
               OPENMMBG_ALDP_PLATFORM="Reference")
    script = os.path.join(ROOT, "scripts", "generate-aldp-data.sh")
    r = subprocess.run(["bash", script, "2", "0"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["bash", script, "3", "0"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stderr
    stats = json.loads((tmp_path / "aldp" / "train.statistics.json").read_text())
    assert stats["exchanges"] == 3 and len(stats["replicas"]) == 6
    assert openmmbg.read_dcd(str(tmp_path / "aldp" / "train" / "trajectory_0.dcd")).shape == (3, 22, 3)
    assert json.loads((tmp_path / "aldp" / "settings.json").read_text())["implicit_solvent"] == "OBC1"

    model = tmp_path / "aldp.bgm"
    openmmbg.Flow({"num_particles": 22, "dim": 3, "projection": "spherical", "num_layers": 1, "egnn_blocks": 1,
                   "egnn_mlp_units": [8, 8], "egnn_hidden_features": 8, "egnn_output_features": 8,
                   "head_mlp_units": [8, 8], "aug_scale": 0.5, "atom_types": list(range(22))}).save(model)
    out = tmp_path / "comparison"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "aldp_sampling_comparison.py"), "--model",
                        str(model), "--reference", str(tmp_path / "aldp" / "train"), "--wall-time", "1.5",
                        "--repeats", "1", "--output", str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    results = json.loads((tmp_path / "comparison.json").read_text())
    assert set(results["methods"]) == {"md", "md+proposals", "remd"}
    assert results["methods"]["md+proposals"]["runs"][0]["proposed"] > 0
    assert (tmp_path / "comparison.png").stat().st_size > 1000

    out = tmp_path / "evaluation"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "evaluate-aldp.py"), "--model", str(model),
                        "--test", str(tmp_path / "aldp" / "train" / "trajectory_0.dcd"), "--num-samples", "50",
                        "--output", str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    metrics = json.loads((tmp_path / "evaluation.json").read_text())
    assert metrics["num_test"] == 3 and metrics["num_samples"] == 50 and metrics["implicit_solvent"] == "OBC1"
    assert metrics["nll"] == metrics["nll"] and 0 <= metrics["reverse_ess"] <= 1 and 0 < metrics["forward_ess"] <= 1
    assert 0 <= metrics["l_form_fraction"] <= 1
    assert (tmp_path / "evaluation.png").stat().st_size > 1000

    out = tmp_path / "demo"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "aldp_md_with_proposals.py"), "--model",
                        str(model), "--minutes", "0.05", "--platform", "Reference", "--plain-md", "--output", str(out)],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "acceptance rate" in r.stdout and "C7ax/alpha_L (phi > 0)" in r.stdout and "P(phi > 0) = " in r.stdout
    summary = json.loads((tmp_path / "demo.json").read_text())
    assert summary["proposed"] > 0 and 0 <= summary["accepted"] <= summary["proposed"]
    assert abs(sum(summary["basin_populations"].values()) - 1) < 1e-9
    assert summary["phi_positive"] == summary["basin_populations"]["C7ax/alpha_L (phi > 0)"]
    assert "plain MD, same wall time" in r.stdout and summary["plain_md"]["md_steps"] > 0
    assert (tmp_path / "demo.png").stat().st_size > 1000
