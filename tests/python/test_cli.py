"""The `openmmbg` command-line tool: info, a tiny train/evaluate round trip on the DW4 data, and
one-line errors with non-zero exit codes."""
import json
import os
import subprocess

import numpy as np
import pytest

CLI = os.environ.get("OPENMMBG_CLI")
DATA = os.environ.get("OPENMMBG_DATA_DIR")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = json.dumps({"num_layers": 1, "egnn_blocks": 1, "egnn_mlp_units": [8, 8], "egnn_hidden_features": 8,
                   "egnn_output_features": 8, "head_mlp_units": [8, 8]})

pytestmark = pytest.mark.skipif(not CLI, reason="OPENMMBG_CLI is not set (ctest sets it)")


def run(*args):
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))


def test_info_prints_full_config_and_parameter_count():
    r = run("info", "--config", '{"num_particles": 4, "dim": 2, "projection": "vector"}')
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["config"]["num_layers"] == 12
    assert out["config"]["aux_loss_weight"] == 0
    assert out["num_parameters"] > 1000


@pytest.mark.parametrize("args, code, fragment", [
    ((), 2, "usage"),
    (("frobnicate",), 2, "unknown command"),
    (("info", "--config", '{"dim": 2}'), 1, "num_particles"),
    (("info", "--model", "/nonexistent.bgm"), 1, "cannot open"),
    (("train", "--system", "qm9", "--output", "x.bgm"), 2, "unknown system"),
    (("train", "--system", "dw4", "--epochs", "many", "--output", "x.bgm", "--data-dir", "/tmp"), 2, "integer"),
    (("evaluate", "--model", "m.bgm", "--system", "dw4", "--data-dir", "/tmp", "--bogus", "1"), 2, "--bogus"),
    (("evaluate", "--model", "m.bgm", "--system", "dw4", "--data-dir", "/tmp"), 1, "m.bgm"),
    (("train", "--system", "dw4", "--data-dir", "/tmp", "--output", "/tmp/x.bgm"), 1, "efm"),
    (("evaluate", "--model", "m.bgm", "--test-data", "t.npy", "--ais-samples", "10"), 2, "needs a target"),
    (("evaluate", "--model", "m.bgm", "--system", "dw4", "--ais-step-size", "0"), 2, "--ais-step-size"),
    (("remd", "--system", "/nonexistent.xml", "--state", "s.xml", "--temperatures", "300,350",
      "--exchanges", "5", "--output", "/tmp/remd"), 1, "cannot read System"),
    (("remd", "--system", "x.xml", "--state", "s.xml", "--temperatures", "300,abc",
      "--exchanges", "5", "--output", "/tmp/remd"), 2, "--temperatures"),
    (("remd", "--system", "x.xml", "--state", "s.xml", "--tmin", "300",
      "--exchanges", "5", "--output", "/tmp/remd"), 2, "--tmax"),
])
def test_errors_are_one_line_with_nonzero_exit(args, code, fragment):
    r = run(*args)
    assert r.returncode == code, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert fragment in r.stderr.lower() or fragment in r.stderr
    if code == 1:
        assert len(lines) == 1, r.stderr


@pytest.mark.skipif(not DATA or not os.path.isdir(os.path.join(DATA or "", "efm")), reason="no ../shared/data")
def test_train_then_evaluate_on_dw4(tmp_path):
    model = tmp_path / "dw4.bgm"
    metrics = tmp_path / "metrics.jsonl"
    r = run("train", "--system", "dw4", "--data-dir", DATA, "--config", TINY, "--epochs", "2", "--num-train", "64",
            "--num-validation", "32", "--validate-every", "1", "--metrics", str(metrics), "--output", str(model))
    assert r.returncode == 0, r.stderr
    assert "epoch 2/2" in r.stderr and "ETA" in r.stderr
    lines = [json.loads(l) for l in metrics.read_text().splitlines()]
    assert [l["epoch"] for l in lines] == [1, 2]
    assert all("validation_nll" in l for l in lines)
    e = run("evaluate", "--model", str(model), "--system", "dw4", "--data-dir", DATA, "--num-test", "50",
            "--num-aug-samples", "4")
    assert e.returncode == 0, e.stderr
    out = json.loads(e.stdout)
    assert out["num_test"] == 50 and out["num_aug_samples"] == 4
    assert 0 < out["nll_sem"] < out["nll"] < 100
    assert "ais_ess" not in out
    # The ESS of AIS on request, with the settings it ran with; the other estimates are unchanged.
    a = run("evaluate", "--model", str(model), "--system", "dw4", "--data-dir", DATA, "--num-test", "50",
            "--num-aug-samples", "4", "--ais-samples", "48", "--ais-batch-size", "16", "--ais-step-size", "0.05")
    assert a.returncode == 0, a.stderr
    ais = json.loads(a.stdout)
    assert 0 < ais["ais_ess"] <= 1
    assert ais["ais_samples"] == 48 and ais["ais_intermediate"] == 2 and ais["ais_initial_step_size"] == 0.05
    assert len(ais["ais_final_step_sizes"]) == 2
    assert (ais["nll"], ais["reverse_ess"]) == (out["nll"], out["reverse_ess"])
    # The selected model is the one with the best validation NLL of the run.
    assert min(l["validation_nll"] for l in lines) == pytest.approx(
        json.loads(json.loads(open(model, "rb").read()[8:8 + int.from_bytes(open(model, "rb").read()[:8], "little")])
                   ["__metadata__"]["training"])["best_validation_nll"])
    # The wrong system is refused by name.
    w = run("evaluate", "--model", str(model), "--system", "lj13", "--data-dir", DATA)
    assert w.returncode == 1 and "lj13" in w.stderr


def test_train_and_evaluate_on_user_npy_and_dcd(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 4, 2)) * 1.5
    np.save(tmp_path / "train.npy", x.astype(np.float32))
    np.save(tmp_path / "test.npy", x[:20].reshape(20, 8))  # flat [n, N*D] float64
    model = tmp_path / "user.bgm"
    r = run("train", "--data", str(tmp_path / "train.npy"), "--config", TINY, "--epochs", "1", "--validate-every", "1",
            "--output", str(model))
    assert r.returncode == 0, r.stderr
    assert "54 training / 6 validation points" in r.stderr  # the last 10% are held out
    e = run("evaluate", "--model", str(model), "--test-data", str(tmp_path / "test.npy"), "--dim", "2",
            "--num-aug-samples", "2")
    assert e.returncode == 0, e.stderr
    out = json.loads(e.stdout)
    assert out["num_test"] == 20 and out["reverse_ess"] is None and np.isfinite(out["nll"])
    e2 = run("evaluate", "--model", str(model), "--system", "dw4", "--test-data", str(tmp_path / "test.npy"), "--dim",
             "2", "--num-aug-samples", "2", "--num-ess-samples", "50")
    assert e2.returncode == 0, e2.stderr
    assert 0 <= json.loads(e2.stdout)["reverse_ess"] <= 1
    bad = run("train", "--data", str(tmp_path / "train.npy"), "--system", "dw4", "--output", str(model))
    assert bad.returncode == 2 and "exactly one of --system and --data" in bad.stderr

    # A DCD written by OpenMM, three of its four particles selected (nm in, nm out).
    app = pytest.importorskip("openmm.app")
    unit = pytest.importorskip("openmm.unit")
    top = app.Topology()
    residue = top.addResidue("X", top.addChain())
    for _ in range(4):
        top.addAtom("Ar", app.Element.getBySymbol("Ar"), residue)
    with open(tmp_path / "traj.dcd", "wb") as f:
        dcd = app.DCDFile(f, top, 0.001 * unit.picoseconds)
        for frame in rng.standard_normal((30, 4, 3)):
            dcd.writeModel(frame * unit.nanometer)
    r = run("train", "--data", str(tmp_path / "traj.dcd"), "--particles", "0,2-3", "--config", TINY, "--epochs", "1",
            "--output", str(tmp_path / "dcd.bgm"))
    assert r.returncode == 0, r.stderr
    info = json.loads(run("info", "--model", str(tmp_path / "dcd.bgm")).stdout)
    assert info["config"]["num_particles"] == 3 and info["config"]["dim"] == 3
    oob = run("train", "--data", str(tmp_path / "traj.dcd"), "--particles", "0,7", "--output", str(tmp_path / "x.bgm"))
    assert oob.returncode == 1 and "7" in oob.stderr


def test_evaluate_against_an_openmm_system(tmp_path):
    """--openmm-system: a harmonic well U = k/2 sum |x_i|^2 with k = kT is the unit Gaussian, which an
    identity-initialised flow matches exactly: ESS = 1 and log Z = (N-1) D / 2 log(2 pi)."""
    mm = pytest.importorskip("openmm")
    unit = pytest.importorskip("openmm.unit")
    n, temperature = 5, 300.0
    kT = (unit.MOLAR_GAS_CONSTANT_R * temperature * unit.kelvin).value_in_unit(unit.kilojoule_per_mole)
    system = mm.System()
    well = mm.CustomExternalForce("0.5*k*(x^2+y^2+z^2)")
    well.addGlobalParameter("k", kT)
    for i in range(n):
        system.addParticle(1.0)
        well.addParticle(i, [])
    system.addForce(well)
    (tmp_path / "system.xml").write_text(mm.XmlSerializer.serialize(system))
    config = json.dumps({"num_particles": n, "dim": 3, "projection": "vector", "num_layers": 1,
                         "identity_init": True, "temperature": temperature})
    flow_model = tmp_path / "identity.bgm"
    import openmmbg

    openmmbg.Flow(json.loads(config)).save(flow_model)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((40, n, 3))
    np.save(tmp_path / "test.npy", x - x.mean(axis=1, keepdims=True))
    r = run("evaluate", "--model", str(flow_model), "--openmm-system", str(tmp_path / "system.xml"), "--test-data",
            str(tmp_path / "test.npy"), "--num-aug-samples", "2", "--num-ess-samples", "100")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["temperature"] == temperature
    assert out["reverse_ess"] == pytest.approx(1.0, abs=1e-6)
    assert out["forward_ess"] == pytest.approx(1.0, abs=1e-6)
    assert out["log_z"] == pytest.approx(0.5 * (n - 1) * 3 * np.log(2 * np.pi), abs=1e-4)
    wrong = run("evaluate", "--model", str(flow_model), "--openmm-system", str(tmp_path / "system.xml"),
                "--test-data", str(tmp_path / "test.npy"), "--temperature", "600", "--num-aug-samples", "2",
                "--num-ess-samples", "100")
    assert wrong.returncode == 0 and json.loads(wrong.stdout)["reverse_ess"] < 0.99  # kT halves the well


@pytest.mark.skipif(not DATA or not os.path.isdir(os.path.join(DATA or "", "efm")), reason="no ../shared/data")
def test_training_resumes_exactly_after_sigkill(tmp_path):
    """Kill -9 a training run once it has checkpointed, run the same command again: it resumes and
    ends with exactly the parameters of an uninterrupted run."""
    import signal
    import time

    def command(out):
        return [CLI, "train", "--system", "dw4", "--data-dir", DATA, "--config", TINY, "--epochs", "12",
                "--num-train", "96", "--num-validation", "16", "--validate-every", "3", "--output", str(out)]

    env = dict(os.environ, OMP_NUM_THREADS="1")
    reference = tmp_path / "reference.bgm"
    assert subprocess.run(command(reference), env=env, capture_output=True, timeout=300).returncode == 0
    killed = tmp_path / "killed.bgm"
    checkpoint = tmp_path / "killed.bgm.checkpoint"
    proc = subprocess.Popen(command(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert not killed.exists()
    resumed = subprocess.run(command(killed), env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stderr and "(from checkpoint)" in resumed.stderr
    import openmmbg

    a, b = openmmbg.Flow.load(reference), openmmbg.Flow.load(killed)
    x, aug, _ = a.sample(16, seed=3)
    np.testing.assert_array_equal(a.log_prob(x, aug), b.log_prob(x, aug))

    # export: the finished run's checkpoint holds the model train wrote (best validation NLL).
    exported = tmp_path / "exported.bgm"
    r = run("export", "--checkpoint", str(checkpoint), "--output", str(exported))
    assert r.returncode == 0, r.stderr
    c = openmmbg.Flow.load(exported)
    assert c.config == b.config
    np.testing.assert_array_equal(c.log_prob(x, aug), b.log_prob(x, aug))
    bad = run("export", "--checkpoint", str(killed), "--output", str(tmp_path / "x.bgm"))
    assert bad.returncode == 1 and "not an openmmbg training checkpoint" in bad.stderr
    assert run("export", "--output", str(exported)).returncode == 2


def test_remd_writes_outputs_and_resumes(tmp_path):
    import openmm as mm
    import openmm.unit as unit

    system = mm.System()
    well = mm.CustomExternalForce("10*(x^2-1)^2 + 5*(y^2+z^2)")
    for i in range(3):
        system.addParticle(12.0)
        well.addParticle(i, [])
    system.addForce(well)
    context = mm.Context(system, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName("Reference"))
    context.setPositions([mm.Vec3(-1, 0, 0), mm.Vec3(1, 0, 0), mm.Vec3(-1, 0.1, 0)] * unit.nanometer)
    (tmp_path / "system.xml").write_text(mm.XmlSerializer.serialize(system))
    (tmp_path / "state.xml").write_text(mm.XmlSerializer.serialize(context.getState(getPositions=True)))
    out = tmp_path / "remd"
    common = ["remd", "--system", str(tmp_path / "system.xml"), "--state", str(tmp_path / "state.xml"),
              "--tmin", "300", "--tmax", "600", "--num-replicas", "3", "--steps-per-exchange", "20",
              "--checkpoint-every", "2", "--platform", "Reference", "--seed", "5", "--output", str(out)]
    r = run(*common, "--exchanges", "4")
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout)
    assert stats["exchanges"] == 4 and stats["frames"] == 4
    assert [round(x["temperature"], 3) for x in stats["replicas"]] == [300, 424.264, 600]
    assert "exchange 4/4" in r.stderr and "ETA" in r.stderr
    r = run(*common, "--exchanges", "7")
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stderr
    assert json.loads(r.stdout)["exchanges"] == 7
    assert len((out / "energies.csv").read_text().splitlines()) == 1 + 7
    import openmmbg

    frames = openmmbg.read_dcd(str(out / "trajectory_0.dcd"))
    assert frames.shape == (7, 3, 3)
    assert json.loads((out / "statistics.json").read_text())["exchanges"] == 7


def test_openmms_plugin_folder_is_looked_up_in_one_place():
    """OpenMM's plugin folder is searched for by openmmPluginDirectory() alone (openmmapi/src/OpenMMPlugins.cpp):
    `remd` and OpenMMSystemTarget load through it, so their search orders cannot drift apart."""
    home = {os.path.join("openmmapi", "src", "OpenMMPlugins.cpp"),
            os.path.join("openmmapi", "include", "internal", "OpenMMPlugins.h")}
    others = []
    for top in ("models", "openmmapi", "platforms", "serialization", "tools"):
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                path = os.path.join(folder, name)
                if name.endswith((".cpp", ".h")) and os.path.relpath(path, ROOT) not in home:
                    with open(path) as f:
                        text = f.read()
                    if "OPENMM_PLUGIN_DIR" in text or "getDefaultPluginsDirectory" in text:
                        others.append(os.path.relpath(path, ROOT))
    assert others == []


def _fab_command(out, *extra):
    return [CLI, "train", "--objective", "fab", "--system", "dw4", "--config", TINY, "--iterations", "10",
            "--batch-size", "16", "--buffer-min-batches", "8", "--buffer-max-batches", "16", "--report-every", "2",
            "--evaluate-every", "5", "--num-ess-samples", "64", "--checkpoint-every", "1",
            "--options", json.dumps({"initial_step_size": 0.05}), "--output", str(out), *extra]


def test_fab_training_resumes_exactly_after_sigkill(tmp_path):
    """FAB: kill -9 once a checkpoint exists (replay buffer, step sizes, Adam, random streams in it),
    rerun the same command: it resumes and ends with exactly the parameters of an uninterrupted run."""
    import signal
    import time

    env = dict(os.environ, OMP_NUM_THREADS="1")
    reference = tmp_path / "reference.bgm"
    metrics = tmp_path / "reference.jsonl"
    r = subprocess.run(_fab_command(reference, "--metrics", str(metrics)), env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in metrics.read_text().splitlines()]
    # Reports every 2 iterations, evaluations every 5: iteration 5 reports (with its evaluation) too.
    assert [line["iteration"] for line in lines] == [2, 4, 5, 6, 8, 10]
    assert [line["iteration"] for line in lines if "reverse_ess" in line] == [5, 10]
    assert "reverse_ess" in lines[-1] and "ais_ess" in lines[-1] and len(lines[-1]["step_sizes"]) == 2
    killed = tmp_path / "killed.bgm"
    checkpoint = tmp_path / "killed.bgm.checkpoint"
    proc = subprocess.Popen(_fab_command(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert not killed.exists()
    resumed = subprocess.run(_fab_command(killed), env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stderr
    import openmmbg

    a, b = openmmbg.Flow.load(reference), openmmbg.Flow.load(killed)
    x, aug, _ = a.sample(16, seed=3)
    np.testing.assert_array_equal(a.log_prob(x, aug), b.log_prob(x, aug))


# The flags of energy-based training, each with the option of docs/training.md it sets and a value.
ENERGY_FLAGS = [("--iterations", "iterations", 3), ("--batch-size", "batch_size", 8),
                ("--num-intermediate", "num_intermediate", 1), ("--alpha", "alpha", 1.5),
                ("--leapfrog-steps", "num_leapfrog", 2), ("--updates-per-iteration", "updates_per_iteration", 2),
                ("--buffer-max-batches", "buffer_max_batches", 6), ("--buffer-min-batches", "buffer_min_batches", 4),
                ("--report-every", "report_every", 1), ("--evaluate-every", "evaluate_every", 3),
                ("--num-ess-samples", "num_ess_samples", 16), ("--time-limit", "time_limit", 1000.0),
                ("--seed", "seed", 7), ("--checkpoint-every", "checkpoint_every", 2)]


def test_energy_training_flags_set_the_options_they_name(tmp_path):
    """Each flag sets its option as --options would, and wins over --options: the same values given
    either way train the same flow, bit for bit, though --options holds others beside the flags."""
    values = {key: value for _, key, value in ENERGY_FLAGS}
    flags = [str(arg) for flag, _, value in ENERGY_FLAGS for arg in (flag, value)]
    base = ["train", "--objective", "fab", "--system", "dw4", "--config", TINY, "--projection", "vector"]
    others = {key: 2 * value for key, value in values.items()}
    by_flags = run(*base, *flags, "--options", json.dumps({"initial_step_size": 0.05, **others}),
                   "--metrics", str(tmp_path / "flags.jsonl"), "--output", str(tmp_path / "flags.bgm"))
    assert by_flags.returncode == 0, by_flags.stderr
    by_options = run(*base, "--options", json.dumps({"initial_step_size": 0.05, **values}),
                     "--metrics", str(tmp_path / "options.jsonl"), "--output", str(tmp_path / "options.bgm"))
    assert by_options.returncode == 0, by_options.stderr

    def reports(name):
        lines = [json.loads(line) for line in (tmp_path / name).read_text().splitlines()]
        return [{k: v for k, v in line.items() if k not in ("elapsed", "eta")} for line in lines]

    assert [r["iteration"] for r in reports("flags.jsonl")] == [1, 2, 3]
    assert reports("flags.jsonl") == reports("options.jsonl")
    import openmmbg

    a, b = openmmbg.Flow.load(tmp_path / "flags.bgm"), openmmbg.Flow.load(tmp_path / "options.bgm")
    x, aug, _ = a.sample(16, seed=3)
    np.testing.assert_array_equal(a.log_prob(x, aug), b.log_prob(x, aug))


@pytest.mark.parametrize("objective", ["fab", "reverse-kl"])
def test_energy_training_against_an_openmm_system(tmp_path, objective):
    """--openmm-system: a few iterations against a harmonic well through OpenMM's Reference
    platform (energies and forces in batches) run, log metrics and write a loadable model."""
    mm = pytest.importorskip("openmm")
    n = 4
    system = mm.System()
    well = mm.CustomExternalForce("0.5*k*(x^2+y^2+z^2)")
    well.addGlobalParameter("k", 2.0)
    for i in range(n):
        system.addParticle(1.0)
        well.addParticle(i, [])
    system.addForce(well)
    (tmp_path / "system.xml").write_text(mm.XmlSerializer.serialize(system))
    out = tmp_path / "flow.bgm"
    r = run("train", "--objective", objective, "--openmm-system", str(tmp_path / "system.xml"), "--config", TINY,
            "--projection", "vector", "--iterations", "3", "--batch-size", "8", "--num-intermediate", "2",
            "--buffer-min-batches", "8", "--report-every", "1", "--evaluate-every", "3", "--num-ess-samples", "32",
            "--options", json.dumps({"initial_step_size": 0.05}), "--metrics", str(tmp_path / "m.jsonl"),
            "--output", str(out))
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [line["iteration"] for line in lines] == [1, 2, 3]
    if objective == "fab":  # progress of the replay-buffer pre-fill, ending at the full count
        assert "replay buffer" in r.stderr and " 8/8 AIS batches" in r.stderr
    assert 0 < lines[-1]["reverse_ess"] <= 1
    import openmmbg

    flow = openmmbg.Flow.load(out)
    assert flow.num_particles == n and flow.config["temperature"] == 300.0
    bad = run("train", "--objective", "fab", "--openmm-system", str(tmp_path / "system.xml"), "--output", str(out))
    assert bad.returncode == 2 and "--iterations" in bad.stderr

    # --init-model fine-tunes the model just trained: same configuration, new parameters.
    tuned = tmp_path / "tuned.bgm"
    common = ["--openmm-system", str(tmp_path / "system.xml"), "--iterations", "2", "--batch-size", "8",
              "--num-intermediate", "2", "--buffer-min-batches", "8", "--evaluate-every", "0",
              "--options", json.dumps({"initial_step_size": 0.05})]
    r = run("train", "--objective", objective, "--init-model", str(out), *common, "--output", str(tuned))
    assert r.returncode == 0, r.stderr
    after = openmmbg.Flow.load(tuned)
    assert after.config == flow.config
    x, a, _ = flow.sample(8, seed=1)
    assert not np.allclose(after.log_prob(x, a), flow.log_prob(x, a))
    bad = run("train", "--objective", objective, "--init-model", str(out), "--projection", "vector", *common,
              "--output", str(tuned))
    assert bad.returncode == 2 and "--init-model" in bad.stderr
    bad = run("train", "--objective", objective, "--init-model", str(out), "--temperature", "350", *common,
              "--output", str(tmp_path / "t350.bgm"))
    assert bad.returncode != 0 and "describes 300" in bad.stderr


def test_train_an_internal_coordinate_model_from_data_and_a_molecule(tmp_path):
    # A 5-atom chain as an OpenMM System: its bonds give the Z-matrix of the "ic" model.
    mm = pytest.importorskip("openmm")
    system = mm.System()
    bonds = mm.HarmonicBondForce()
    for i in range(5):
        system.addParticle(12.0)
    for i in range(4):
        bonds.addBond(i, i + 1, 0.15, 1000.0)
    system.addForce(bonds)
    (tmp_path / "chain.xml").write_text(mm.XmlSerializer.serialize(system))
    rng = np.random.default_rng(0)
    chain = np.array([[0, 0, 0], [0.15, 0, 0], [0.2, 0.14, 0], [0.35, 0.16, 0.05], [0.4, 0.3, 0.08]])
    np.save(tmp_path / "x.npy", chain + 0.01 * rng.standard_normal((200, 5, 3)))
    r = run("train", "--family", "ic", "--molecule", str(tmp_path / "chain.xml"), "--data", str(tmp_path / "x.npy"),
            "--config", '{"num_layers": 2, "hidden_units": 8}', "--epochs", "2", "--batch-size", "50",
            "--output", str(tmp_path / "chain.bgm"))
    assert r.returncode == 0, r.stderr
    import openmmbg
    flow = openmmbg.Flow.load(tmp_path / "chain.bgm")
    assert flow.family == "ic" and len(flow.config["zmatrix"]) == 5
    assert sorted(row[0] for row in flow.config["zmatrix"]) == list(range(5))
    # --molecule belongs to the ic family only.
    r = run("train", "--molecule", str(tmp_path / "chain.xml"), "--data", str(tmp_path / "x.npy"),
            "--output", str(tmp_path / "other.bgm"))
    assert r.returncode == 2 and "--molecule goes with --family ic" in r.stderr

    # Energy-based fine-tuning of the ic model against the same System: FAB (AIS on its joint space,
    # HMC in Cartesian coordinates with the centroid fixed) and reverse KL, each a few iterations.
    x = np.load(tmp_path / "x.npy")[:8]
    for objective in ("fab", "reverse-kl"):
        tuned = tmp_path / f"chain-{objective}.bgm"
        r = run("train", "--objective", objective, "--openmm-system", str(tmp_path / "chain.xml"),
                "--init-model", str(tmp_path / "chain.bgm"), "--iterations", "3", "--batch-size", "16",
                "--num-intermediate", "2", "--buffer-min-batches", "4", "--updates-per-iteration", "2", "--report-every", "1",
                "--evaluate-every", "3",
                "--num-ess-samples", "64", "--options", json.dumps({"initial_step_size": 0.002}),
                "--metrics", str(tmp_path / f"{objective}.jsonl"), "--output", str(tuned))
        assert r.returncode == 0, r.stderr
        assert "family ic" in r.stderr
        lines = [json.loads(line) for line in (tmp_path / f"{objective}.jsonl").read_text().splitlines()]
        assert [line["iteration"] for line in lines] == [1, 2, 3]
        assert 0 < lines[-1]["reverse_ess"] <= 1
        after = openmmbg.Flow.load(tuned)
        assert after.family == "ic" and after.config == flow.config
        assert not np.allclose(after.log_prob(x), flow.log_prob(x)), objective + " left the model as it was"
    # A fresh ic flow has no Z-matrix or statistics without data.
    r = run("train", "--objective", "fab", "--family", "ic", "--openmm-system", str(tmp_path / "chain.xml"),
            "--iterations", "3", "--output", str(tmp_path / "fresh.bgm"))
    assert r.returncode == 2 and "--init-model" in r.stderr


def test_flow_matching_trains_an_ecnf_model_that_evaluates(tmp_path):
    """--objective flow-matching: an E-CNF (family ecnf, its default there) trained on DW4 for two
    epochs with each pairing, then evaluated like any model; wrong combinations are usage errors."""
    tiny = json.dumps({"num_layers": 1, "hidden_units": 8})
    for pairing in ("independent", "ot", "equivariant-ot"):
        model = tmp_path / f"dw4-{pairing}.bgm"
        r = run("train", "--objective", "flow-matching", "--system", "dw4", "--data-dir", DATA, "--config", tiny,
                "--pairing", pairing, "--epochs", "2", "--num-train", "64", "--num-validation", "16",
                "--validate-every", "1", "--metrics", str(tmp_path / f"{pairing}.jsonl"), "--output", str(model))
        assert r.returncode == 0, r.stderr
        assert "family ecnf" in r.stderr and f"{pairing} pairing" in r.stderr
        lines = [json.loads(line) for line in (tmp_path / f"{pairing}.jsonl").read_text().splitlines()]
        assert [line["epoch"] for line in lines] == [1, 2] and all(line["train_loss"] > 0 for line in lines)
    e = run("evaluate", "--model", str(model), "--system", "dw4", "--data-dir", DATA, "--num-test", "20",
            "--num-ess-samples", "50")
    assert e.returncode == 0, e.stderr
    out = json.loads(e.stdout)
    assert out["num_test"] == 20 and 0 < out["reverse_ess"] <= 1 and abs(out["nll"]) < 100
    assert out["mean_path_length"] > 0 and out["function_evaluations"] >= 6 * out["ode_steps"]
    import openmmbg

    flow = openmmbg.Flow.load(model)
    assert flow.family == "ecnf" and flow.config["hidden_units"] == 8
    x, _, log_q = flow.sample(4, seed=1)
    np.testing.assert_allclose(flow.log_prob(x), log_q, atol=1e-3)
    for args, fragment in [
        (["--objective", "flow-matching", "--family", "eacf"], "--family ecnf"),
        (["--family", "ecnf"], "--objective flow-matching"),
        (["--pairing", "ot"], "--pairing goes with --objective flow-matching"),
    ]:
        bad = run("train", "--system", "dw4", "--data-dir", DATA, *args, "--epochs", "1", "--output",
                  str(tmp_path / "bad.bgm"))
        assert bad.returncode == 2 and fragment in bad.stderr, (args, bad.stderr)
