"""BoltzmannGeneratorProposal from Python: settings (with openmm.unit), System.addForce,
app.Simulation, XmlSerializer round trip and cast, statistics per Context, and errors."""
import numpy as np
import openmm as mm
import openmm.app as app
import openmm.unit as unit
import pytest

import openmmbg


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "three.bgm"
    openmmbg.Flow({"num_particles": 3, "dim": 3, "projection": "vector", "num_layers": 1, "dtype": "float64"}).save(path)
    return str(path)


def three_argon():
    top = app.Topology()
    residue = top.addResidue("AR", top.addChain())
    system = mm.System()
    well = mm.CustomExternalForce("0.5*k*(x^2+y^2+z^2)")
    well.addGlobalParameter("k", 2.5)  # kJ/mol/nm^2: kT at 300 K is 2.49 kJ/mol
    for i in range(3):
        top.addAtom("Ar", app.Element.getBySymbol("Ar"), residue)
        system.addParticle(39.9)
        well.addParticle(i, [])
    system.addForce(well)
    return top, system


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
    with pytest.raises(Exception, match="frequency must be >= 0"):
        move.setFrequency(-1)
    with pytest.raises(Exception, match="temperature must be positive"):
        move.setTemperature(-3 * unit.kelvin)
    with pytest.raises(Exception, match="cannot"):
        openmmbg.BoltzmannGeneratorProposal("/nonexistent.bgm")


def test_simulation_serialization_and_cast(model):
    top, system = three_argon()
    move = openmmbg.BoltzmannGeneratorProposal(model)
    move.setFrequency(5)
    move.setNumProposals(2)
    move.setRandomNumberSeed(1)
    system.addForce(move)
    integrator = mm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond, 0.002 * unit.picoseconds)
    sim = app.Simulation(top, system, integrator, mm.Platform.getPlatformByName("Reference"))
    sim.context.setPositions(np.array([[0.1, 0, 0], [-0.2, 0.3, 0], [0, -0.1, 0.2]]) * unit.nanometer)
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
    with pytest.raises(Exception, match="not a BoltzmannGeneratorProposal"):
        openmmbg.BoltzmannGeneratorProposal.cast(copy.getForce(0))


def test_context_creation_errors_name_the_problem(model):
    _, system = three_argon()
    move = openmmbg.BoltzmannGeneratorProposal(model)
    move.setParticles([0, 1])
    system.addForce(move)
    with pytest.raises(Exception, match="the model describes 3 particles but 2 were selected"):
        mm.Context(system, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName("Reference"))


@pytest.mark.parametrize("platform_name", ["CPU", "OpenCL"])
def test_plugins_loaded_by_import_serve_every_cpu_platform(model, platform_name):
    # `import openmmbg` loads build/plugins after OpenMM's own plugins: the Reference plugin covers
    # the CPU platform and the OpenCL plugin registers on OpenCL (PoCL on CI).
    platform = mm.Platform.getPlatformByName(platform_name)
    assert platform.supportsKernels(["MoveModelledParticles"])
    top, system = three_argon()
    move = openmmbg.BoltzmannGeneratorProposal(model)
    move.setFrequency(2)
    move.setNumProposals(2)
    move.setRandomNumberSeed(4)
    system.addForce(move)
    integrator = mm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond, 0.002 * unit.picoseconds)
    sim = app.Simulation(top, system, integrator, platform)
    sim.context.setPositions(np.array([[0.1, 0, 0], [-0.2, 0.3, 0], [0, -0.1, 0.2]]) * unit.nanometer)
    sim.step(20)
    assert move.getNumProposed(sim.context) == 20
    assert move.getNumAccepted(sim.context) > 0
