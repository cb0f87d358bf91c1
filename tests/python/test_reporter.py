"""openmmbg.ProposalReporter in app.Simulation.reporters (header, lines, counters, paths and file
objects, errors), and getters that return openmm.unit Quantities where the setters take them."""
import gc
import io
import math
import pathlib

import numpy as np
import openmm as mm
import openmm.unit as unit
import pytest

import openmmbg
from helpers import three_argon_simulation, three_particle_model

HEADER = '#"Step","Proposed","Accepted","Acceptance Rate","Last Log Acceptance Ratio"'


@pytest.fixture
def model(tmp_path):
    return three_particle_model(tmp_path / "three.bgm")


def simulation_with_proposal(model, frequency=5, proposals=2):
    """three_argon with a BoltzmannGeneratorProposal, on Reference, seeded."""
    move = openmmbg.BoltzmannGeneratorProposal(model)
    move.setFrequency(frequency)
    move.setNumProposals(proposals)
    move.setRandomNumberSeed(1)
    return three_argon_simulation(move, seed=1), move


def parse(text):
    """Header line and the rows of a report as (int, int, int, float, float)."""
    lines = text.splitlines()
    rows = []
    for line in lines[1:]:
        columns = line.split(",")
        assert len(columns) == 5, line
        rows.append((int(columns[0]), int(columns[1]), int(columns[2]), float(columns[3]), float(columns[4])))
    return lines[0], rows


def test_report_to_a_file_object(model):
    sim, move = simulation_with_proposal(model, frequency=5, proposals=2)
    out = io.StringIO()
    reporter = openmmbg.ProposalReporter(out, 10, move)
    sim.reporters.append(reporter)
    sim.step(50)
    header, rows = parse(out.getvalue())
    assert header == HEADER
    assert [r[0] for r in rows] == [10, 20, 30, 40, 50]
    assert [r[1] for r in rows] == [4, 8, 12, 16, 20]  # 2 proposals every 5 steps
    for step, proposed, accepted, rate, _ in rows:
        assert 0 <= accepted <= proposed
        assert rate == pytest.approx(accepted / proposed, rel=1e-15)
    assert all(a[2] <= b[2] for a, b in zip(rows, rows[1:]))
    step, proposed, accepted, rate, log_ratio = rows[-1]
    assert proposed == move.getNumProposed(sim.context) == 20
    assert accepted == move.getNumAccepted(sim.context)
    last = move.getLastLogAcceptanceRatio(sim.context)
    assert log_ratio == last or (math.isnan(log_ratio) and math.isnan(last))
    # A second run continues from the Simulation's step count; the reporter keeps its one header.
    sim.step(15)
    header, rows = parse(out.getvalue())
    assert [r[0] for r in rows] == [10, 20, 30, 40, 50, 60]
    assert out.getvalue().count("#") == 1
    del reporter
    sim.reporters.clear()
    gc.collect()
    assert not out.closed, "a file object passed in is not closed by the reporter"


@pytest.mark.parametrize("as_path", [str, pathlib.Path])
def test_report_to_a_path_is_flushed_and_closed(model, tmp_path, as_path):
    sim, move = simulation_with_proposal(model, frequency=4, proposals=1)
    path = tmp_path / "proposals.csv"
    reporter = openmmbg.ProposalReporter(as_path(path), 8, move)
    sim.reporters.append(reporter)
    sim.step(24)
    header, rows = parse(path.read_text())  # flushed: readable while the reporter is alive
    assert header == HEADER
    assert [(r[0], r[1]) for r in rows] == [(8, 2), (16, 4), (24, 6)]
    assert rows[-1][2] == move.getNumAccepted(sim.context)
    handle = reporter._out
    assert not handle.closed
    del reporter
    sim.reporters.clear()
    gc.collect()
    assert handle.closed, "a file the reporter opened is closed when it is deleted"


def test_append_separator_and_nothing_proposed_yet(model, tmp_path):
    sim, move = simulation_with_proposal(model, frequency=100)
    path = tmp_path / "proposals.tsv"
    path.write_text("existing line\n")
    sim.reporters.append(openmmbg.ProposalReporter(path, 10, move, separator="\t", append=True))
    sim.step(20)
    lines = path.read_text().splitlines()
    assert lines == ["existing line", "10\t0\t0\tnan\tnan", "20\t0\t0\tnan\tnan"]


def test_describe_next_report(model):
    sim, move = simulation_with_proposal(model)
    reporter = openmmbg.ProposalReporter(io.StringIO(), 10, move)
    assert reporter.reportInterval == 10
    description = reporter.describeNextReport(sim)
    if isinstance(description, dict):  # OpenMM >= 8
        assert description == {"steps": 10, "periodic": None, "include": []}
    else:
        assert description == (10, False, False, False, False)
    sim.step(3)
    steps = reporter.describeNextReport(sim)
    assert (steps["steps"] if isinstance(steps, dict) else steps[0]) == 7


def test_a_generic_force_that_is_a_proposal_is_accepted(model):
    sim, _ = simulation_with_proposal(model)
    force = sim.system.getForce(sim.system.getNumForces() - 1)
    out = io.StringIO()
    reporter = openmmbg.ProposalReporter(out, 5, force)
    assert isinstance(reporter.proposal, openmmbg.BoltzmannGeneratorProposal)
    sim.reporters.append(reporter)
    sim.step(5)
    assert out.getvalue().splitlines()[1].startswith("5,2,")


@pytest.mark.parametrize("interval", [0, -5, 2.5, 10.0, True, "10", None])
def test_bad_report_interval(model, interval):
    _, move = simulation_with_proposal(model)
    with pytest.raises(ValueError, match="reportInterval must be an integer >= 1"):
        openmmbg.ProposalReporter(io.StringIO(), interval, move)


def test_bad_proposal_and_file(model, tmp_path):
    sim, move = simulation_with_proposal(model)
    for wrong in (None, "model.bgm", sim.system.getForce(0), mm.HarmonicBondForce()):
        with pytest.raises(ValueError, match="proposal must be the openmmbg.BoltzmannGeneratorProposal"):
            openmmbg.ProposalReporter(io.StringIO(), 10, wrong)
    with pytest.raises(ValueError, match="file must be a path or an open file object"):
        openmmbg.ProposalReporter(42, 10, move)
    # Arguments are checked before a path is opened: no file is left behind.
    with pytest.raises(ValueError):
        openmmbg.ProposalReporter(tmp_path / "never.csv", 0, move)
    assert not (tmp_path / "never.csv").exists()
    assert openmmbg.ProposalReporter(io.StringIO(), np.int64(7), move).reportInterval == 7


def test_proposal_temperature_is_a_quantity(model):
    move = openmmbg.BoltzmannGeneratorProposal(model)
    temperature = move.getTemperature()
    assert unit.is_quantity(temperature) and temperature.unit == unit.kelvin
    assert temperature == 300 * unit.kelvin
    move.setTemperature(310 * unit.kelvin)
    assert move.getTemperature().value_in_unit(unit.kelvin) == pytest.approx(310)
    move.setTemperature(320.5)  # a float is still taken in K
    assert move.getTemperature() == 320.5 * unit.kelvin
    move.setTemperature(move.getTemperature())  # what the getter returns the setter takes
    assert move.getTemperature() == 320.5 * unit.kelvin
    # As OpenMM's own getters do, e.g. LangevinIntegrator.getTemperature().
    integrator = mm.LangevinIntegrator(move.getTemperature(), 1 / unit.picosecond, 0.001)
    assert integrator.getTemperature() == move.getTemperature()
    system = mm.System()
    system.addForce(move)
    copy = mm.XmlSerializer.deserialize(mm.XmlSerializer.serialize(system))
    assert openmmbg.BoltzmannGeneratorProposal.cast(copy.getForce(0)).getTemperature() == 320.5 * unit.kelvin


def test_replica_exchange_temperatures_are_a_quantity(tmp_path):
    system = mm.System()
    well = mm.CustomExternalForce("5*(x^2+y^2+z^2)")
    system.addParticle(12.0)
    well.addParticle(0, [])
    system.addForce(well)
    remd = openmmbg.ReplicaExchange(system, [[0.1, 0, 0]], [300, 330.0, 363] * unit.kelvin, tmp_path / "out",
                                    platform="Reference", seed=1)
    temperatures = remd.temperatures
    assert unit.is_quantity(temperatures) and temperatures.unit == unit.kelvin
    assert temperatures.value_in_unit(unit.kelvin) == [300, 330, 363]
    assert temperatures[1] == 330 * unit.kelvin
    # Plain numbers (K) in, a Quantity out; a copy, so changing it does not change the run.
    remd = openmmbg.ReplicaExchange(system, [[0.1, 0, 0]], [300, 400], tmp_path / "out2", platform="Reference")
    assert remd.temperatures == [300, 400] * unit.kelvin
    remd.temperatures.value_in_unit(unit.kelvin).append(500)
    assert len(remd.temperatures) == 2
