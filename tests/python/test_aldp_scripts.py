"""The alanine dipeptide pipeline scripts run end to end on a tiny scale: REMD data generation
(scripts/generate-aldp-data.sh, then resumed and extended), and with an untrained flow the
evaluation (scripts/evaluate-aldp.py), the umbrella-sampling reference
(scripts/aldp-umbrella-reference.py), the sampling comparison (scripts/aldp_sampling_comparison.py), the mixing diagnostic
(scripts/aldp-proposal-mixing.py)
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
    reference = tmp_path / "reference"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "aldp-umbrella-reference.py"), "--implicit-solvent",
                        "OBC1", "--repeats", "2", "--grid", "4", "--force-constant", "30", "--equilibration", "0.2",
                        "--production", "0.5", "--sample-every", "50", "--work", str(tmp_path / "umbrella"), "--output", str(reference)],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    umbrella = json.loads((tmp_path / "reference.json").read_text())
    assert len(umbrella["repeats"]) == 2 and all(0 <= v <= 1 for v in umbrella["repeats"])
    assert umbrella["standard_error"] >= 0 and (tmp_path / "reference.png").stat().st_size > 1000
    assert len(list((tmp_path / "umbrella").glob("repeat1-phi*-psi*.npz"))) == 16  # resumable: every window kept

    out = tmp_path / "comparison"
    command = [sys.executable, os.path.join(ROOT, "scripts", "aldp_sampling_comparison.py"), "--models", f"flow={model}",
               "--methods", "md,remd,md+flow", "--implicit-solvent", "OBC1", "--wall-time", "1.5", "--repeats", "1",
               "--proposals", "4", "--work", str(tmp_path / "runs")]
    r = subprocess.run(command + ["--run-only"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "comparison.json").exists()
    r = subprocess.run(command + ["--reference", str(reference) + ".json", "--remd-run", str(tmp_path / "aldp" / "train"),
                                  "--output", str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    results = json.loads((tmp_path / "comparison.json").read_text())
    assert set(results["methods"]) == {"md", "remd", "md+flow"}
    assert results["methods"]["md+flow"]["runs"][0]["proposed"] > 0
    assert results["methods"]["remd"]["t10_source"] == "long run, batch means"
    assert all(m["t10_seconds"] >= 0 for m in results["methods"].values())
    assert (tmp_path / "comparison.png").stat().st_size > 1000
    r = subprocess.run([a if a != "md,remd,md+flow" else "md+other" for a in command], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "unknown method 'md+other'" in r.stderr

    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "aldp-proposal-mixing.py"), str(model), "2", "1", "2"],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    final = r.stdout.strip().splitlines()[-1].split()
    assert final[0] == "final:" and int(final[2]) > 0 and 0 <= float(final[4]) <= 1

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
