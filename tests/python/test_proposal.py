"""BoltzmannGeneratorProposal from Python: settings (with openmm.unit), System.addForce,
app.Simulation, XmlSerializer round trip and cast, statistics per Context, and errors."""
import numpy as np
import openmm as mm
import openmm.unit as unit
import pytest

import openmmbg
from helpers import three_argon, three_argon_simulation, three_particle_model


@pytest.fixture
def model(tmp_path):
    return three_particle_model(tmp_path / "three.bgm")


def test_settings_and_units(model):
    move = openmmbg.BoltzmannGeneratorProposal(model)
    assert move.getNumModelParticles() == 3
    import pathlib

    assert openmmbg.BoltzmannGeneratorProposal(pathlib.Path(model)).getNumModelParticles() == 3
    move.setTemperature(310 * unit.kelvin)
    assert move.getTemperature().value_in_unit(unit.kelvin) == pytest.approx(310)
    move.setTemperature(300)
    assert move.getTemperature() == 300 * unit.kelvin
    move.setFrequency(25)
    move.setNumProposals(4)
    move.setRandomNumberSeed(3)
    move.setRedrawVelocities(False)
    move.setParticles([2, 0, 1])
    move.setChiralCenters([(0, 1, 2, 0)])
    assert move.getFrequency() == 25 and move.getNumProposals() == 4 and move.getRandomNumberSeed() == 3
    assert not move.getRedrawVelocities()
    assert list(move.getParticles()) == [2, 0, 1]
    assert move.getChiralCenters() == [(0, 1, 2, 0)]
    assert openmmbg.BoltzmannGeneratorProposal.Temperature() == "BoltzmannGeneratorProposalTemperature"


def test_errors_are_openmm_exceptions(model, tmp_path):
    """As from OpenMM's own classes, the plugin's errors reach Python as openmm.OpenMMException,
    bad argument values included (the C++ type does not tell them apart)."""
    move = openmmbg.BoltzmannGeneratorProposal(model)
    with pytest.raises(mm.OpenMMException, match=r"frequency \(steps\) must be in \[0, "):
        move.setFrequency(-1)
    with pytest.raises(mm.OpenMMException, match=r"temperature \(K\) must be positive and finite"):
        move.setTemperature(-3 * unit.kelvin)
    with pytest.raises(mm.OpenMMException, match=r"temperature \(K\) must be positive and finite \(got inf\)"):
        move.setTemperature(float("inf"))
    with pytest.raises(mm.OpenMMException, match=r"number of proposals must be in \[1, "):
        move.setNumProposals(0)
    with pytest.raises(mm.OpenMMException, match="nonexistent.bgm"):
        openmmbg.BoltzmannGeneratorProposal(tmp_path / "nonexistent.bgm")
    (tmp_path / "garbage.bgm").write_bytes(b"not a model")
    with pytest.raises(mm.OpenMMException, match="cannot use the model"):
        openmmbg.BoltzmannGeneratorProposal(tmp_path / "garbage.bgm")
    with pytest.raises(mm.OpenMMException, match="not a BoltzmannGeneratorProposal"):
        openmmbg.BoltzmannGeneratorProposal.cast(mm.HarmonicBondForce())
    # A bad particle index is found when a Context is made (by OpenMM's own wrapper).
    _, system = three_argon()
    move.setParticles([0, 1, 7])
    system.addForce(move)
    with pytest.raises(mm.OpenMMException, match="particle index 7 is out of range"):
        mm.Context(system, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName("Reference"))


def test_simulation_serialization_and_cast(model):
    move = openmmbg.BoltzmannGeneratorProposal(model)
    move.setFrequency(5)
    move.setNumProposals(2)
    move.setRandomNumberSeed(1)
    sim = three_argon_simulation(move)
    system = sim.system
    sim.step(50)
    assert move.getNumProposed(sim.context) == 20
    assert 0 <= move.getNumAccepted(sim.context) <= 20
    assert np.isfinite(move.getLastLogAcceptanceRatio(sim.context)) or move.getLastLogAcceptanceRatio(sim.context) == -np.inf
    assert sim.context.getParameter(openmmbg.BoltzmannGeneratorProposal.Temperature()) == 300
    copy = mm.XmlSerializer.deserialize(mm.XmlSerializer.serialize(system))
    force = copy.getForce(copy.getNumForces() - 1)
    assert openmmbg.BoltzmannGeneratorProposal.isinstance(force)
    recovered = openmmbg.BoltzmannGeneratorProposal.cast(force)
    assert recovered.getFrequency() == 5 and recovered.getNumProposals() == 2
    with pytest.raises(mm.OpenMMException, match="not a BoltzmannGeneratorProposal"):
        openmmbg.BoltzmannGeneratorProposal.cast(copy.getForce(0))


def test_context_creation_errors_name_the_problem(model):
    _, system = three_argon()
    move = openmmbg.BoltzmannGeneratorProposal(model)
    move.setParticles([0, 1])
    system.addForce(move)
    with pytest.raises(mm.OpenMMException, match="the model describes 3 particles but 2 were selected"):
        mm.Context(system, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName("Reference"))


@pytest.mark.parametrize("platform_name", ["CPU", "OpenCL"])
def test_plugins_loaded_by_import_serve_every_cpu_platform(model, platform_name):
    # `import openmmbg` loads build/plugins after OpenMM's own plugins: the Reference plugin covers
    # the CPU platform and the OpenCL plugin registers on OpenCL (PoCL on CI).
    assert mm.Platform.getPlatformByName(platform_name).supportsKernels(["MoveModelledParticles"])
    move = openmmbg.BoltzmannGeneratorProposal(model)
    move.setFrequency(2)
    move.setNumProposals(2)
    move.setRandomNumberSeed(4)
    sim = three_argon_simulation(move, platform_name)
    sim.step(20)
    assert move.getNumProposed(sim.context) == 20
    assert move.getNumAccepted(sim.context) > 0


@pytest.mark.parametrize("platform_name", ["Reference", "CPU"])
def test_an_ecnf_model_proposes_in_md(tmp_path, platform_name):
    """A continuous flow (family ecnf) in the Force: proposals are made and accepted through the
    same model interface, and the Context stays finite."""
    path = tmp_path / "ecnf.bgm"
    openmmbg.Flow({"family": "ecnf", "num_particles": 3, "dim": 3, "num_layers": 1, "hidden_units": 8,
                   "dtype": "float64"}).save(path)
    move = openmmbg.BoltzmannGeneratorProposal(str(path))
    move.setFrequency(2)
    move.setNumProposals(2)
    move.setRandomNumberSeed(4)
    sim = three_argon_simulation(move, platform_name)
    sim.step(20)
    assert move.getNumProposed(sim.context) == 20
    assert move.getNumAccepted(sim.context) > 0
    positions = sim.context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    assert np.all(np.isfinite(positions))


@pytest.mark.parametrize("family_config", [{"projection": "vector"}, {"family": "ecnf", "hidden_units": 8}],
                         ids=["eacf", "ecnf"])
def test_lj13_example_runs_with_any_family(tmp_path, family_config):
    """examples/proposal_lj13.py with a small untrained model of either particle family: it checks
    the OpenMM energy against the lj13 target, runs MD with proposals and reports their cost."""
    import os
    import subprocess
    import sys

    from helpers import ROOT

    path = tmp_path / "lj13.bgm"
    openmmbg.Flow({"num_particles": 13, "dim": 3, "num_layers": 1, "dtype": "float32", **family_config}).save(path)
    r = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "proposal_lj13.py"), "--model", str(path),
                        "--steps", "200", "--frequency", "50"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "max |difference|" in r.stdout
    assert "proposed 4, accepted" in r.stdout
    assert "ms per attempt of 1 proposal(s)" in r.stdout
