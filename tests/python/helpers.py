"""Helpers of the openmmbg Python tests: small float64 flows, random symmetry maps and a small OpenMM System."""
import json
import os

import numpy as np

import openmmbg

#: The repository's root folder.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def source_catalog():
    """The catalog of built-in systems of this source tree (catalog/builtin-systems.json), as a dict."""
    with open(os.path.join(ROOT, "catalog", "builtin-systems.json")) as f:
        return json.load(f)


def small_config(dim, projection, num_aug=1, num_particles=4, **overrides):
    """A small float64 flow with random final layers (identity_init False), fast to evaluate."""
    config = {
        "num_particles": num_particles,
        "dim": dim,
        "projection": projection,
        "num_aug": num_aug,
        "num_layers": 2,
        "dtype": "float64",
        "identity_init": False,
        "random_init_scale": 0.2,
        "egnn_blocks": 2,
        "egnn_mlp_units": [16, 16],
        "egnn_hidden_features": 16,
        "egnn_output_features": 16,
        "head_mlp_units": [16, 16],
        "transformer_layers": 1,
        "transformer_heads": 2,
        "transformer_head_features": 8,
        "transformer_mlp_units": [16, 16],
        "transformer_output_features": 16,
    }
    config.update(overrides)
    return config


def small_flow(dim, projection, num_aug=1, num_particles=4, **overrides):
    return openmmbg.Flow(small_config(dim, projection, num_aug, num_particles, **overrides))


def random_state(flow, n, rng):
    """x [n, N, D] with zero centre of mass and a [n, N, A, D] near it."""
    x = 1.5 * rng.standard_normal((n, flow.num_particles, flow.dim))
    x -= x.mean(axis=1, keepdims=True)
    a = x[:, :, None, :] + 0.3 * rng.standard_normal((n, flow.num_particles, flow.num_aug, flow.dim))
    return x, a


def random_rotation(dim, rng):
    """A random proper rotation matrix [D, D] (det +1)."""
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def transform(x, a, rotation, translation, permutation):
    """Apply p -> p R^T + t to x and a together, then permute the particles of both."""
    x2 = x @ rotation.T + translation
    a2 = a @ rotation.T + translation
    return x2[:, permutation], a2[:, permutation]


def three_particle_model(path):
    """Saves an untrained float64 flow over 3 particles in 3-D (one vector-proj layer) at `path`; returns
    the path as a str."""
    config = {"num_particles": 3, "dim": 3, "projection": "vector", "num_layers": 1, "dtype": "float64"}
    openmmbg.Flow(config).save(path)
    return str(path)


def three_argon():
    """(Topology, System) of three argon atoms in the harmonic well U = k/2 |x|^2, k = 2.5 kJ/mol/nm^2
    (kT at 300 K is 2.49 kJ/mol)."""
    # openmm is imported here, not above: the flow tests import this module and need no openmm.
    import openmm as mm
    import openmm.app as app

    top = app.Topology()
    residue = top.addResidue("AR", top.addChain())
    system = mm.System()
    well = mm.CustomExternalForce("0.5*k*(x^2+y^2+z^2)")
    well.addGlobalParameter("k", 2.5)
    for i in range(3):
        top.addAtom("Ar", app.Element.getBySymbol("Ar"), residue)
        system.addParticle(39.9)
        well.addParticle(i, [])
    system.addForce(well)
    return top, system


def three_argon_simulation(proposal, platform="Reference", seed=0):
    """An app.Simulation of three_argon with `proposal` (a BoltzmannGeneratorProposal) added: Langevin
    middle dynamics at 300 K, friction 1/ps, 2 fs steps, integrator seed `seed` (0: OpenMM picks one),
    on the named platform, from a fixed configuration."""
    import openmm as mm
    import openmm.app as app
    import openmm.unit as unit

    top, system = three_argon()
    system.addForce(proposal)
    integrator = mm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond, 0.002 * unit.picoseconds)
    integrator.setRandomNumberSeed(seed)
    sim = app.Simulation(top, system, integrator, mm.Platform.getPlatformByName(platform))
    sim.context.setPositions(np.array([[0.1, 0, 0], [-0.2, 0.3, 0], [0, -0.1, 0.2]]) * unit.nanometer)
    return sim
