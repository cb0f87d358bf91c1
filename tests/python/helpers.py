"""Helpers of the openmmbg Python tests: small float64 flows and random symmetry maps."""
import numpy as np

import openmmbg


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
