"""Bad input, by class (docs/checks.md): each case a clear error naming the problem, no hang, no
unbounded memory, nothing overwritten or lost. The model-file fuzzing is in tests/models/TestBadInput.cpp."""
import json
import os
import re
import resource
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

import openmmbg
from helpers import three_argon, three_argon_simulation, three_particle_model

CLI = os.environ.get("OPENMMBG_CLI")
TINY = json.dumps({"num_layers": 1, "egnn_blocks": 1, "egnn_mlp_units": [8, 8], "egnn_hidden_features": 8,
                   "egnn_output_features": 8, "head_mlp_units": [8, 8]})
needs_cli = pytest.mark.skipif(not CLI, reason="OPENMMBG_CLI is not set (ctest sets it)")


def run_python(code, timeout=120, limits=None):
    """Runs `code` in a fresh interpreter (optionally under resource limits); returns the CompletedProcess."""
    def preexec():
        for which, value in (limits or {}).items():
            resource.setrlimit(which, (value, value))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          preexec_fn=preexec if limits else None)


def run_cli(*args, timeout=300, preexec=None, env=None):
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout, preexec_fn=preexec,
                          env=dict(os.environ, OMP_NUM_THREADS="1", **(env or {})))


# ---- model files -----------------------------------------------------------------------------------

def _rewrite_header(path, edit):
    """Applies `edit` to the JSON header of a .bgm file in place (checksums left as they were)."""
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = edit(raw[8:8 + n])
    assert header != raw[8:8 + n], "the edit changed nothing"
    header += b" " * ((8 - len(header) % 8) % 8)
    open(path, "wb").write(struct.pack("<Q", len(header)) + header + raw[8 + n:])


def test_non_regular_model_paths_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "model.fifo"
    os.mkfifo(fifo)
    start = time.monotonic()
    for path, kind in ((fifo, "FIFO"), ("/dev/zero", "character device"), (tmp_path, "directory")):
        with pytest.raises(OSError, match=f"is a {kind}"):
            openmmbg.Flow.load(path)
    assert time.monotonic() - start < 30


def test_header_edit_is_refused(tmp_path):
    path = three_particle_model(tmp_path / "m.bgm")
    _rewrite_header(path, lambda h: h.replace(b'\\"aug_scale\\":0.1', b'\\"aug_scale\\":0.9'))
    with pytest.raises(RuntimeError, match="header checksum mismatch"):
        openmmbg.Flow.load(path)


def test_invalid_utf8_in_the_header_names_the_file(tmp_path):
    path = three_particle_model(tmp_path / "m.bgm")
    _rewrite_header(path, lambda h: h.replace(b'"format"', b'"form\xff"', 1))
    with pytest.raises(RuntimeError, match=re.escape(str(path))) as error:
        openmmbg.Flow.load(path)
    assert "not valid JSON" in str(error.value)


def test_huge_configuration_is_refused_before_allocation():
    for key, value in (("num_particles", 4294967300), ("num_layers", 4294967297), ("num_layers", 10 ** 6),
                       ("egnn_hidden_features", 10 ** 6)):
        config = {"num_particles": 4, "dim": 3, "projection": "vector", key: value}
        with pytest.raises(ValueError, match=f"flow config: .*({key}|widths must be at most|model of about)"):
            openmmbg.Flow(config)


# ---- the Force ---------------------------------------------------------------------------------------

def test_infinite_context_temperature_is_refused_and_the_state_kept(tmp_path):
    import openmm as mm
    import openmm.unit as unit

    proposal = openmmbg.BoltzmannGeneratorProposal(three_particle_model(tmp_path / "m.bgm"))
    proposal.setFrequency(1)
    sim = three_argon_simulation(proposal)
    sim.context.setVelocitiesToTemperature(300 * unit.kelvin, 1)
    before = sim.context.getState(getPositions=True, getVelocities=True)
    sim.context.setParameter(openmmbg.BoltzmannGeneratorProposal.Temperature(), float("inf"))
    with pytest.raises(mm.OpenMMException, match=r"temperature \(Context parameter .*\) must be positive and finite"):
        sim.step(1)
    after = sim.context.getState(getPositions=True, getVelocities=True)
    # The Force updates the Context before the integrator moves anything: the state is as it was.
    assert np.array_equal(after.getPositions(asNumpy=True)._value, before.getPositions(asNumpy=True)._value)
    assert np.array_equal(after.getVelocities(asNumpy=True)._value, before.getVelocities(asNumpy=True)._value)
    assert proposal.getNumProposed(sim.context) == 0


def test_non_finite_current_state_is_refused(tmp_path):
    import openmm as mm
    import openmm.unit as unit

    proposal = openmmbg.BoltzmannGeneratorProposal(three_particle_model(tmp_path / "m.bgm"))
    proposal.setFrequency(1)
    sim = three_argon_simulation(proposal)
    sim.context.setPositions(np.array([[0.1, 0, 0], [np.inf, 0.3, 0], [0, -0.1, 0.2]]) * unit.nanometer)
    with pytest.raises(mm.OpenMMException, match="the current state is not finite"):
        sim.step(1)
    assert proposal.getNumAccepted(sim.context) == 0


def test_massless_modelled_particles_are_refused(tmp_path):
    import openmm as mm
    import openmm.unit as unit

    _, system = three_argon()
    system.setParticleMass(1, 0)
    system.addForce(openmmbg.BoltzmannGeneratorProposal(three_particle_model(tmp_path / "m.bgm")))
    integrator = mm.VerletIntegrator(0.001 * unit.picoseconds)
    with pytest.raises(mm.OpenMMException, match="modelled particle 1 has zero mass"):
        mm.Context(system, integrator, mm.Platform.getPlatformByName("Reference"))


def test_model_not_in_nm_is_refused(tmp_path):
    import openmm as mm

    path = tmp_path / "angstrom.bgm"
    openmmbg.Flow({"num_particles": 3, "dim": 3, "projection": "vector", "num_layers": 1,
                   "length_unit": "angstrom"}).save(path)
    with pytest.raises(mm.OpenMMException, match="needs a 3-D model in nm .*angstrom"):
        openmmbg.BoltzmannGeneratorProposal(path)


def test_integer_arguments_beyond_int_are_clear_errors(tmp_path):
    import openmm as mm

    proposal = openmmbg.BoltzmannGeneratorProposal(three_particle_model(tmp_path / "m.bgm"))
    with pytest.raises(mm.OpenMMException, match=r"a particle index must be in \[0, 2147483647\] \(got 1099511627776\)"):
        proposal.setParticles([0, 1, 2 ** 40])
    with pytest.raises(mm.OpenMMException, match="a particle index must be an integer"):
        proposal.setParticles([0, 1, 2.5])
    with pytest.raises(mm.OpenMMException, match=r"the number of proposals must be in \[1, "):
        proposal.setNumProposals(2 ** 33)


def test_malformed_numbers_in_the_xml_are_refused(tmp_path):
    import openmm as mm

    proposal = openmmbg.BoltzmannGeneratorProposal(three_particle_model(tmp_path / "m.bgm"))
    proposal.setFrequency(10)
    xml = mm.XmlSerializer.serialize(proposal)
    assert mm.XmlSerializer.deserialize(xml) is not None
    for attribute, bad in (("frequency", "10abc"), ("temperature", "x"), ("numProposals", ""),
                           ("frequency", "99999999999")):
        broken = re.sub(rf'{attribute}="[^"]*"', f'{attribute}="{bad}"', xml, count=1)
        with pytest.raises(Exception, match=f"'{attribute}' must be"):
            mm.XmlSerializer.deserialize(broken)


def test_replica_exchange_refuses_non_finite_starting_positions(tmp_path):
    import openmm.unit as unit

    _, system = three_argon()
    positions = np.array([[0.1, 0, 0], [np.nan, 0.3, 0], [0, -0.1, 0.2]])
    with pytest.raises(Exception, match="starting position of particle 1 is not finite"):
        openmmbg.ReplicaExchange(system, positions * unit.nanometer, [300, 330] * unit.kelvin, tmp_path / "re",
                                 platform="Reference")


# ---- Python ------------------------------------------------------------------------------------------

def test_non_finite_config_values_are_named():
    with pytest.raises(ValueError, match=r"flow config: 'aug_scale' must be finite \(got nan\)"):
        openmmbg.Flow({"num_particles": 4, "dim": 2, "projection": "vector", "aug_scale": float("nan")})
    flow = openmmbg.Flow({"num_particles": 4, "dim": 2, "projection": "vector", "num_layers": 1})
    with pytest.raises(ValueError, match=r"training options: 'peak_learning_rate' must be finite \(got inf\)"):
        flow.train(np.zeros((8, 4, 2)), epochs=1, peak_learning_rate=float("inf"), verbose=False)


def test_training_options_go_through_the_shared_validation():
    flow = openmmbg.Flow({"num_particles": 4, "dim": 2, "projection": "vector", "num_layers": 1})
    x = np.random.default_rng(0).normal(size=(8, 4, 2))
    for options, message in (({"peak_learning_rate": -1e-3}, r"peak_learning_rate must be >= 0 and finite \(got -0.001\)"),
                             ({"time_limit": -1}, r"time_limit must be >= 0"),
                             ({"epochs": 2 ** 40}, r"'epochs' is out of range"),
                             ({"patience": -2}, r"patience and warmup_epochs must be >= 0")):
        with pytest.raises(ValueError, match=message):
            flow.train(x, verbose=False, **options)


def test_training_on_non_finite_data_is_refused():
    flow = openmmbg.Flow({"num_particles": 4, "dim": 2, "projection": "vector", "num_layers": 1})
    with pytest.raises(ValueError, match="the training data: 8 of 8 configurations hold non-finite coordinates"):
        flow.train(np.full((8, 4, 2), np.nan), epochs=1, verbose=False)


def test_allocation_failure_is_memory_error():
    # Under a 4 GiB address-space limit, a batch of 10^8 samples cannot be allocated.
    code = ("import openmmbg\n"
            "flow = openmmbg.Flow({'num_particles': 4, 'dim': 2, 'projection': 'vector', 'num_layers': 1})\n"
            "try:\n"
            "    flow.sample(10 ** 8)\n"
            "except MemoryError:\n"
            "    print('MemoryError')\n")
    r = run_python(code, limits={resource.RLIMIT_AS: 4 << 30})
    assert r.returncode == 0 and "MemoryError" in r.stdout, r.stderr[-2000:]


def test_thread_policy_is_one_thread_unless_asked():
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENMMBG_NUM_THREADS")}
    code = "import openmmbg\nopenmmbg.Flow({'num_particles': 4, 'dim': 2, 'projection': 'vector'})\nprint(openmmbg.get_num_threads())"
    for extra, expected in (({}, "1"), ({"OPENMMBG_NUM_THREADS": "2"}, "2"), ({"OMP_NUM_THREADS": "2"}, "2")):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                           env=dict(env, **extra))
        assert r.returncode == 0 and r.stdout.strip() == expected, (extra, r.stdout, r.stderr[-1000:])


# ---- the command-line tool ------------------------------------------------------------------------

@needs_cli
@pytest.mark.parametrize("args, message", [
    (("evaluate", "--temperature", "0"), "--temperature: must be positive, got '0'"),
    (("evaluate", "--temperature", "-300"), "--temperature: must be positive, got '-300'"),
    (("evaluate", "--temperature", "nan"), "--temperature: expects a finite number, got 'nan'"),
    (("evaluate", "--num-test", "-3"), "--num-test: must be positive, got '-3'"),
    (("evaluate", "--seed", "-1"), "--seed: must be >= 0, got '-1'"),
    (("evaluate", "--seed", "18446744073709551615"), "--seed: expects an integer"),
    (("train", "--time-limit", "-1"), "--time-limit: must be >= 0, got '-1'"),
    (("train", "--time-limit", "inf"), "--time-limit: expects a finite number, got 'inf'"),
])
def test_cli_numbers_out_of_range_are_usage_errors(tmp_path, args, message):
    """Refused while parsing (exit 2), before any model is loaded or data read."""
    common = {"evaluate": ("--model", str(tmp_path / "m.bgm"), "--system", "dw4", "--data-dir", str(tmp_path)),
              "train": ("--system", "dw4", "--data-dir", str(tmp_path), "--output", str(tmp_path / "m.bgm"))}
    r = run_cli(args[0], *common[args[0]], *args[1:])
    assert r.returncode == 2 and message in r.stderr, r.stderr


@needs_cli
def test_cli_refuses_duplicate_particles(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((16, 4, 2)))
    r = run_cli("train", "--data", str(tmp_path / "x.npy"), "--particles", "0,0,1", "--output", str(tmp_path / "m.bgm"))
    assert r.returncode == 2 and "0 appears twice" in r.stderr, r.stderr


@needs_cli
def test_cli_npy_with_a_huge_shape_is_refused_before_allocation(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((4, 4, 2)))
    raw = (tmp_path / "x.npy").read_bytes()
    header_end = raw.index(b"\n") + 1
    header = raw[10:header_end].replace(b"(4, 4, 2)", b"(%d, 4, 2)" % 2 ** 70)
    header = header.rstrip(b"\n").ljust(header_end - 10 - 1 + 32 - (len(header) - (header_end - 10)) % 16) + b"\n"
    (tmp_path / "huge.npy").write_bytes(raw[:8] + struct.pack("<H", len(header)) + header + raw[header_end:])
    r = run_cli("train", "--data", str(tmp_path / "huge.npy"), "--output", str(tmp_path / "m.bgm"))
    assert r.returncode == 1 and "corrupt .npy header" in r.stderr, r.stderr


@needs_cli
def test_cli_npy_columns_not_divisible_by_dim(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((64, 7)))
    r = run_cli("train", "--data", str(tmp_path / "x.npy"), "--dim", "2", "--output", str(tmp_path / "m.bgm"))
    assert r.returncode == 1 and "divisible by --dim 2, got 7 columns" in r.stderr, r.stderr


@needs_cli
@pytest.mark.parametrize("output", ["fifo", "missing-folder-file", "empty"])
def test_cli_bad_output_fails_before_training(tmp_path, output):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(64, 4, 2)))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "read-only").mkdir(mode=0o500)
    path = {"fifo": str(fifo), "missing-folder-file": str(tmp_path / "x.npy" / "m.bgm"), "empty": ""}[output]
    r = run_cli("train", "--data", str(tmp_path / "x.npy"), "--config", TINY, "--epochs", "50", "--output", path,
                "--checkpoint", "")
    assert r.returncode != 0, r.stderr
    assert "epoch" not in r.stderr.lower().replace("50 epochs", ""), "training ran before the output was checked"
    assert os.path.exists(fifo) and not os.path.isfile(fifo), "the FIFO was replaced"


@needs_cli
def test_cli_metrics_write_failure_is_loud(tmp_path):
    """A full disk (here RLIMIT_FSIZE: writes beyond 64 bytes fail with EFBIG) loses no metrics silently."""
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(64, 4, 2)))

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))

    r = run_cli("train", "--data", str(tmp_path / "x.npy"), "--config", TINY, "--epochs", "2", "--checkpoint", "",
                "--output", str(tmp_path / "m.bgm"), "--metrics", str(tmp_path / "metrics.jsonl"), preexec=small_files)
    assert r.returncode == 1 and "cannot write the metrics file" in r.stderr, r.stderr
