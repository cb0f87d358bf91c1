"""The C++ DCD reader (OpenMMBG::readDcd) against files written by OpenMM's own DCDReporter.

A tiny openmm.app Simulation (3 particles, harmonic bonds, Topology built by hand) writes a DCD
file, with and without a periodic box, while a second reporter records the positions of the same
States. The reader is reached through the `dcd_dump` test program (tests/models/dcd_dump.cpp, whose
path ctest passes in OPENMMBG_DCD_DUMP), which prints what readDcd returns as JSON.
"""
import json
import os
import subprocess

import numpy as np
import pytest

openmm = pytest.importorskip("openmm")
from openmm import app, unit  # noqa: E402

DCD_DUMP = os.environ.get("OPENMMBG_DCD_DUMP")
pytestmark = pytest.mark.skipif(not DCD_DUMP, reason="OPENMMBG_DCD_DUMP is not set (ctest sets it)")

FRAMES = 5
INTERVAL = 3


class PositionRecorder:
    """A reporter that keeps the positions (nm) of the States it is given, as DCDReporter sees them."""

    def __init__(self, interval, periodic):
        self.interval = interval
        self.periodic = periodic
        self.positions = []

    def describeNextReport(self, simulation):
        steps = self.interval - simulation.currentStep % self.interval
        return {"steps": steps, "periodic": self.periodic, "include": ["positions"]}

    def report(self, simulation, state):
        self.positions.append(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer))


def simulate(path, periodic):
    """Write FRAMES frames of a 3-particle chain to path; return the reported positions [FRAMES, 3, 3] in nm."""
    topology = app.Topology()
    residue = topology.addResidue("MOL", topology.addChain())
    atoms = [topology.addAtom(f"C{i}", app.element.carbon, residue) for i in range(3)]
    topology.addBond(atoms[0], atoms[1])
    topology.addBond(atoms[1], atoms[2])
    system = openmm.System()
    for _ in atoms:
        system.addParticle(12.0)
    bonds = openmm.HarmonicBondForce()
    bonds.addBond(0, 1, 0.15, 1000.0)
    bonds.addBond(1, 2, 0.15, 1000.0)
    system.addForce(bonds)
    start = np.array([[0.0, 0.0, 0.0], [0.15, 0.0, 0.0], [0.28, 0.07, 0.01]])
    if periodic:
        box = [openmm.Vec3(1.2, 0, 0), openmm.Vec3(0, 1.3, 0), openmm.Vec3(0, 0, 1.4)] * unit.nanometer
        system.setDefaultPeriodicBoxVectors(*box)
        topology.setPeriodicBoxVectors(box)
        bonds.setUsesPeriodicBoundaryConditions(True)
        start += np.array([1.1, -0.2, 1.35])  # straddles the box, so wrapping matters
    integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond, 0.002 * unit.picoseconds)
    integrator.setRandomNumberSeed(7)
    simulation = app.Simulation(topology, system, integrator, openmm.Platform.getPlatformByName("Reference"))
    simulation.context.setPositions(start * unit.nanometer)
    simulation.context.setVelocitiesToTemperature(300 * unit.kelvin, 3)
    recorder = PositionRecorder(INTERVAL, periodic)
    reporter = app.DCDReporter(str(path), INTERVAL, enforcePeriodicBox=periodic)
    simulation.reporters += [reporter, recorder]
    simulation.step(FRAMES * INTERVAL)
    simulation.reporters.clear()
    del reporter  # closes the file
    positions = np.array(recorder.positions)
    assert positions.shape == (FRAMES, 3, 3)
    return positions


def dump(path, *args):
    """What readDcd returns for path, as a numpy array; raises CalledProcessError on a reader error."""
    result = subprocess.run([DCD_DUMP, str(path), *args], capture_output=True, text=True, check=True)
    out = json.loads(result.stdout)
    if "shape" not in out:
        return out
    return np.array(out["values"], dtype=np.float64).reshape(out["shape"])


def dump_error(path, *args):
    result = subprocess.run([DCD_DUMP, str(path), *args], capture_output=True, text=True)
    assert result.returncode == 1, result.stdout
    return result.stderr


def float32_nm(positions):
    """The values DCDFile stores (float32 angstrom), converted back to nm as the reader does."""
    return np.float32(10 * positions).astype(np.float64) / 10


@pytest.mark.parametrize("periodic", [False, True])
def test_reader_returns_the_reported_positions(tmp_path, periodic):
    path = tmp_path / "traj.dcd"
    positions = simulate(path, periodic)
    header = dump(path, "--header")
    assert header["num_particles"] == 3
    assert header["num_frames"] == FRAMES
    assert header["header_frames"] == FRAMES
    assert header["has_unit_cell"] is periodic
    assert header["partial_last_frame"] is False
    assert header["first_step"] == INTERVAL
    assert header["interval"] == INTERVAL

    x = dump(path)
    assert x.shape == (FRAMES, 3, 3)
    np.testing.assert_allclose(x, positions, rtol=0, atol=1e-6)  # float32 precision in angstrom
    np.testing.assert_array_equal(x, float32_nm(positions))  # and exactly what was stored
    if periodic:
        # Wrapped into the box by the reporter: the raw start position lay outside it.
        assert (x[:, :, 0].mean(axis=1) < 1.2).all()


def test_particle_subset_and_frame_range(tmp_path):
    path = tmp_path / "traj.dcd"
    positions = simulate(path, periodic=True)
    x = dump(path, "--particles", "2,0", "--begin", "1", "--end", "5", "--stride", "2", "--expected", "3")
    np.testing.assert_array_equal(x, float32_nm(positions[1:5:2][:, [2, 0]]))


def test_reader_errors(tmp_path):
    path = tmp_path / "traj.dcd"
    positions = simulate(path, periodic=False)
    assert "the file holds 3 particles but 22 were expected" in dump_error(path, "--expected", "22")
    assert "particle index 3 is out of range for a file of 3 particles" in dump_error(path, "--particles", "0,3")

    truncated = tmp_path / "truncated.dcd"
    truncated.write_bytes(path.read_bytes()[:-7])
    assert "truncated: frame 4 (0-based) is incomplete" in dump_error(truncated)
    x = dump(truncated, "--allow-truncated")
    np.testing.assert_array_equal(x, float32_nm(positions[:4]))

    not_dcd = tmp_path / "not.dcd"
    not_dcd.write_text("HETATM    1  C   MOL A   1       0.000   0.000   0.000\n" * 10)
    assert "not a DCD file" in dump_error(not_dcd)


def test_python_read_dcd_matches_openmm_positions(tmp_path):
    """openmmbg.read_dcd: the positions OpenMM wrote, in nm, with a particle subset and a stride."""
    import numpy as np
    import openmm.app as app
    import openmm.unit as unit

    import openmmbg

    top = app.Topology()
    residue = top.addResidue("X", top.addChain())
    for _ in range(5):
        top.addAtom("Ar", app.Element.getBySymbol("Ar"), residue)
    frames = np.random.default_rng(1).standard_normal((7, 5, 3))
    with open(tmp_path / "t.dcd", "wb") as f:
        dcd = app.DCDFile(f, top, 0.002 * unit.picoseconds)
        for frame in frames:
            dcd.writeModel(frame * unit.nanometer)
    everything = openmmbg.read_dcd(tmp_path / "t.dcd")
    assert everything.shape == (7, 5, 3)
    np.testing.assert_allclose(everything, frames.astype(np.float32), rtol=1e-6, atol=1e-6)
    some = openmmbg.read_dcd(tmp_path / "t.dcd", particles=[4, 0], begin=1, stride=3)
    np.testing.assert_allclose(some, frames[1::3][:, [4, 0]].astype(np.float32), rtol=1e-6, atol=1e-6)
    import pytest

    with pytest.raises(RuntimeError, match="out of range"):
        openmmbg.read_dcd(tmp_path / "t.dcd", particles=[9])


def test_python_read_dcd_errors(tmp_path):
    import pytest

    import openmmbg

    with pytest.raises(FileNotFoundError):
        openmmbg.read_dcd(tmp_path / "missing.dcd")
    (tmp_path / "bad.dcd").write_bytes(b"not a dcd file at all, clearly")
    with pytest.raises(RuntimeError):
        openmmbg.read_dcd(tmp_path / "bad.dcd")
    with pytest.raises(ValueError, match="particles is empty"):
        openmmbg.read_dcd(tmp_path / "bad.dcd", particles=[])
