"""openmmbg.ReplicaExchange from Python: units, outputs, resume, proposals in every replica."""
import json

import numpy as np
import openmm as mm
import openmm.unit as unit
import pytest

import openmmbg


def well_system(n=2):
    system = mm.System()
    well = mm.CustomExternalForce("10*(x^2-1)^2 + 5*(y^2+z^2)")
    for _ in range(n):
        system.addParticle(12.0)
        well.addParticle(_, [])
    system.addForce(well)
    return system


def test_run_outputs_and_resume(tmp_path):
    system = well_system()
    positions = np.array([[-1.0, 0, 0], [1.0, 0, 0]]) * unit.nanometer
    kwargs = dict(timestep=2 * unit.femtosecond, steps_per_exchange=10, exchanges_per_checkpoint=3,
                  platform="Reference", seed=9)
    remd = openmmbg.ReplicaExchange(system, positions, [300, 400, 530] * unit.kelvin, tmp_path / "out", **kwargs)
    assert remd.num_replicas == 3
    remd.run(5, progress=False)
    assert remd.num_exchanges == 5
    assert all(0 <= a <= 1 for a in remd.swap_acceptance)
    assert remd.potential_energy(0).unit == unit.kilojoule_per_mole
    assert remd.context(1).getState(getEnergy=True).getPotentialEnergy() == remd.potential_energy(1)
    assert [r["temperature"] for r in remd.statistics["replicas"]] == [300, 400, 530]
    stats = remd.statistics
    assert stats["exchanges"] == 5 and stats["timestep_ps"] == pytest.approx(0.002)
    del remd
    again = openmmbg.ReplicaExchange(system, positions, [300, 400, 530] * unit.kelvin, tmp_path / "out", **kwargs)
    assert again.num_exchanges == 5
    again.run(8, progress=False)
    assert json.loads((tmp_path / "out" / "statistics.json").read_text())["exchanges"] == 8
    frames = openmmbg.read_dcd(str(tmp_path / "out" / "trajectory_2.dcd"))
    assert frames.shape == (8, 2, 3)
    # The last frame is the configuration at 530 K after the last exchange (float32 in the file).
    last = again.context(2).getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    np.testing.assert_allclose(frames[-1], last, atol=1e-6)
    assert np.all(np.abs(frames[:, :, 0]) > 0.3), "particles sit in the wells at x = +-1"
    with pytest.raises(mm.OpenMMException, match="strictly increasing"):  # as OpenMM's own errors
        openmmbg.ReplicaExchange(system, positions, [300, 300], tmp_path / "bad", platform="Reference")


# Replica exchange reaches the flow only through the Force, so every family that the Force takes
# must work in every replica (the ic family needs a molecule: tests/python/test_internal_coordinates.py).
FAMILY_CONFIGS = {
    "eacf": {"projection": "vector", "num_layers": 1},
    "ecnf": {"family": "ecnf", "num_layers": 1, "hidden_units": 8},
}


@pytest.mark.parametrize("family", sorted(FAMILY_CONFIGS))
def test_proposal_acceptance_per_replica(tmp_path, family):
    model = tmp_path / "two.bgm"
    openmmbg.Flow({"num_particles": 2, "dim": 3, "dtype": "float64", **FAMILY_CONFIGS[family]}).save(model)
    assert openmmbg.Flow.load(model).family == family
    system = well_system()
    move = openmmbg.BoltzmannGeneratorProposal(str(model))
    move.setFrequency(5)
    move.setRandomNumberSeed(2)
    system.addForce(move)
    remd = openmmbg.ReplicaExchange(system, [[-1, 0, 0], [1, 0, 0]], [300, 600], tmp_path / "out",
                                    steps_per_exchange=10, platform="Reference", seed=1)
    remd.run(10, progress=False)
    assert len(remd.proposal_acceptance) == 2
    assert [r["proposals"] for r in remd.statistics["replicas"]] == [20, 20]
    assert remd.context(1).getParameter(openmmbg.BoltzmannGeneratorProposal.Temperature()) == 600
