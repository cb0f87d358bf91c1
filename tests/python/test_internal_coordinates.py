"""The internal-coordinate family from Python: the Z-matrix of a Topology, a model configuration,
sampling and log-densities that agree, training by maximum likelihood (with the statistics fitted
from the data) and model files."""
import numpy as np
import pytest

import openmmbg

app = pytest.importorskip("openmm.app")
elem = pytest.importorskip("openmm.app.element")


def ethane():
    """Ethane: C0-C1, three hydrogens on each carbon (atoms 2-4 on C0, 5-7 on C1)."""
    topology = app.Topology()
    residue = topology.addResidue("ETH", topology.addChain())
    carbons = [topology.addAtom(f"C{i}", elem.carbon, residue) for i in range(2)]
    topology.addBond(carbons[0], carbons[1])
    for c in (0, 1):
        for h in range(3):
            topology.addBond(carbons[c], topology.addAtom(f"H{c}{h}", elem.hydrogen, residue))
    return topology


def ethane_configurations(n, seed=0):
    """Staggered ethane with thermal-like noise [n, 8, 3] (nm), random orientations."""
    rng = np.random.default_rng(seed)
    cc, ch, angle = 0.153, 0.109, np.deg2rad(111.0)
    x = np.zeros((8, 3))
    x[1] = [cc, 0, 0]
    for c, sign, phase in ((0, -1, 0.0), (1, 1, np.pi / 3)):
        for h in range(3):
            t = phase + 2 * np.pi * h / 3
            # H-C-C angle `angle`: the C-H bond leans away from the other carbon.
            x[2 + 3 * c + h] = x[c] + ch * np.array([-sign * np.cos(angle), np.sin(angle) * np.cos(t),
                                                     np.sin(angle) * np.sin(t)])
    out = x + 0.004 * rng.standard_normal((n, 8, 3))
    q, _ = np.linalg.qr(rng.standard_normal((n, 3, 3)))
    return np.einsum("nij,nkj->nki", q, out)


def test_zmatrix_places_heavy_atoms_first_and_every_atom_once():
    rows = openmmbg.internal_coordinates.zmatrix(ethane())
    assert [r[0] for r in rows][:2] in ([0, 1], [1, 0])
    assert sorted(r[0] for r in rows) == list(range(8))
    for k, (atom, bond, angle, dihedral) in enumerate(rows):
        refs = [bond, angle, dihedral][: min(k, 3)]
        assert all(r >= 0 for r in refs) and [bond, angle, dihedral][min(k, 3):] == [-1] * (3 - min(k, 3))


def test_disconnected_molecule_is_refused():
    topology = app.Topology()
    residue = topology.addResidue("X", topology.addChain())
    for i in range(4):
        topology.addAtom(f"C{i}", elem.carbon, residue)
    with pytest.raises(ValueError, match="connected"):
        openmmbg.internal_coordinates.zmatrix(topology)


def test_ic_flow_samples_scores_trains_and_saves(tmp_path):
    config = openmmbg.internal_coordinates.config(ethane(), num_layers=2, hidden_units=16, dtype="float64")
    flow = openmmbg.Flow(config)
    assert flow.family == "ic" and flow.num_particles == 8 and flow.dim == 3
    data = ethane_configurations(600)
    reports = flow.train(data[:500], validation=data[500:], epochs=3, batch_size=64, verbose=False)
    assert len(reports) == 3 and np.isfinite(reports[-1]["validation_nll"])
    # Fitted statistics: the data's NLL is far below the unfitted model's (standard units).
    assert reports[-1]["validation_nll"] < -20
    x, a, log_q = flow.sample(100, seed=1)
    assert a.shape == (100, 0)
    np.testing.assert_allclose(x.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(flow.log_prob(x, a), log_q, rtol=0, atol=1e-8)
    np.testing.assert_array_equal(flow.log_prob(x), flow.log_prob(x, a))  # no auxiliary variables to give
    np.testing.assert_allclose(flow.marginal_log_prob(x), log_q, rtol=0, atol=1e-8)
    path = tmp_path / "ethane-ic.bgm"
    flow.save(path)
    loaded = openmmbg.Flow.load(path)
    np.testing.assert_array_equal(loaded.log_prob(x, a), flow.log_prob(x, a))


def test_ic_flow_proposes_in_every_replica_of_replica_exchange(tmp_path):
    """Replica exchange with an ic model's proposals in each replica: every replica attempts them at
    its own temperature, and the trajectories stay finite (rejected proposals leave them as they were)."""
    mm = pytest.importorskip("openmm")
    unit = pytest.importorskip("openmm.unit")
    topology = ethane()
    flow = openmmbg.Flow(openmmbg.internal_coordinates.config(topology, num_layers=2, hidden_units=16, dtype="float64"))
    data = ethane_configurations(300)
    flow.train(data, epochs=2, batch_size=64, verbose=False)
    model = tmp_path / "ethane-ic.bgm"
    flow.save(model)
    system = mm.System()
    bonds = mm.HarmonicBondForce()
    for atom in topology.atoms():
        system.addParticle(12.0 if atom.element is elem.carbon else 1.0)
    for a, b in topology.bonds():
        length = 0.153 if a.element is b.element else 0.109
        bonds.addBond(a.index, b.index, length, 2.0e5)
    system.addForce(bonds)
    move = openmmbg.BoltzmannGeneratorProposal(str(model))
    move.setFrequency(5)
    move.setRandomNumberSeed(3)
    system.addForce(move)
    remd = openmmbg.ReplicaExchange(system, data[0], [300, 450] * unit.kelvin, tmp_path / "out",
                                    timestep=0.5 * unit.femtosecond, steps_per_exchange=10,
                                    platform="Reference", seed=1)
    remd.run(6, progress=False)
    assert [r["proposals"] for r in remd.statistics["replicas"]] == [12, 12]
    assert remd.context(1).getParameter(openmmbg.BoltzmannGeneratorProposal.Temperature()) == 450
    for k in range(2):
        x = remd.context(k).getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        assert np.all(np.isfinite(x))
