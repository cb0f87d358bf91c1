"""openmmbg.alanine_dipeptide: the System, and dihedrals checked against OpenMM's own torsion."""
import math

import numpy as np
import openmm as mm
import openmm.unit as unit
import pytest

from openmmbg import alanine_dipeptide as aldp


def test_system_and_dihedrals_match_openmm():
    system, topology, positions = aldp.create_system("OBC1")
    assert system.getNumParticles() == aldp.NUM_ATOMS and system.getNumConstraints() == 0
    names = [a.name for a in topology.atoms()]
    assert [names[i] for i in aldp.PHI_ATOMS] == ["C", "N", "CA", "C"]
    assert [names[i] for i in aldp.PSI_ATOMS] == ["N", "CA", "C", "N"]
    assert [names[i] for i in aldp.CHIRAL_CENTER] == ["CA", "N", "C", "CB"]
    # OpenMM's torsion convention as the reference: theta of a CustomTorsionForce.
    rng = np.random.default_rng(0)
    x0 = positions.value_in_unit(unit.nanometer)
    for trial in range(5):
        x = x0 + 0.03 * rng.standard_normal(x0.shape)
        for atoms, ours in ((aldp.PHI_ATOMS, aldp.phi_psi(x)[0]), (aldp.PSI_ATOMS, aldp.phi_psi(x)[1])):
            s = mm.System()
            for _ in range(aldp.NUM_ATOMS):
                s.addParticle(1.0)
            f = mm.CustomTorsionForce("theta")
            f.addTorsion(*atoms, [])
            s.addForce(f)
            c = mm.Context(s, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName("Reference"))
            c.setPositions(x)
            theta = c.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
            assert math.isclose(float(ours), theta, abs_tol=1e-9)
    # The shipped structure is L-alanine; its mirror image flips the sign.
    assert aldp.chirality(x0) == -aldp.chirality(x0 * np.array([1, 1, -1]))
    with pytest.raises(ValueError, match="OBC1 or OBC2"):
        aldp.create_system("GBn2")


def test_ramachandran_kld_and_plot(tmp_path):
    rng = np.random.default_rng(1)
    phi, psi = rng.uniform(-np.pi, np.pi, 200000), rng.normal(0.5, 0.4, 200000)
    assert aldp.ramachandran_kld((phi, psi), (phi, psi)) == pytest.approx(0.0, abs=1e-12)
    # Two independent samples of the same distribution: small; a shifted distribution: large.
    phi2, psi2 = rng.uniform(-np.pi, np.pi, 200000), rng.normal(0.5, 0.4, 200000)
    same = aldp.ramachandran_kld((phi, psi), (phi2, psi2))
    shifted = aldp.ramachandran_kld((phi, psi), (phi2, psi2 + 0.8))
    assert 0 < same < 0.05 < 1.0 < shifted
    # Importance weights reweight the model: weighting a uniform psi by the data's density recovers it.
    psi_uniform = rng.uniform(-np.pi, np.pi, 400000)
    phi_uniform = rng.uniform(-np.pi, np.pi, 400000)
    w = np.exp(-0.5 * ((psi_uniform - 0.5) / 0.4) ** 2)
    assert aldp.ramachandran_kld((phi, psi), (phi_uniform, psi_uniform), model_weights=w) < 0.1
    aldp.plot_ramachandran([("data", phi, psi), ("model", phi2, psi2, np.ones_like(phi2))], tmp_path / "rama.png")
    assert (tmp_path / "rama.png").stat().st_size > 1000


def test_basin_populations_partition_the_plane():
    rng = np.random.default_rng(2)
    phi, psi = rng.uniform(-np.pi, np.pi, 100000), rng.uniform(-np.pi, np.pi, 100000)
    pops = aldp.basin_populations(phi, psi)
    assert sum(pops.values()) == pytest.approx(1.0, abs=1e-12)
    # Uniform on the torus: each basin's share is its area (radians) over (2 pi)^2, within 4 sigma.
    areas = {"C5/C7eq/PII (phi < 0, extended)": np.pi * (2 * np.pi - 4.5),
             "alpha_R (phi < 0, helical)": np.pi * 4.5, "C7ax/alpha_L (phi > 0)": np.pi * 2 * np.pi}
    for name, area in areas.items():
        expected = area / (2 * np.pi) ** 2
        assert abs(pops[name] - expected) < 4 * np.sqrt(expected * (1 - expected) / len(phi)), name
    # Weights: all weight on one point puts everything in its basin.
    w = np.zeros_like(phi)
    w[np.argmax(phi)] = 1.0
    assert aldp.basin_populations(phi, psi, w)["C7ax/alpha_L (phi > 0)"] == 1.0
    with pytest.raises(ValueError, match="positive weight"):
        aldp.basin_populations(phi, psi, np.zeros_like(phi))


def test_model_metadata_reads_the_json_beside_a_model(tmp_path):
    model = tmp_path / "m.bgm"
    model.write_bytes(b"")
    assert aldp.model_metadata(model) == {}
    (tmp_path / "m.json").write_text('{"implicit_solvent": "OBC2", "temperature": 310.0}')
    assert aldp.model_metadata(str(model)) == {"implicit_solvent": "OBC2", "temperature": 310.0}
