"""openmmbg.Flow: shapes, densities, symmetries, configuration and errors."""
import math

import numpy as np
import pytest

import openmmbg
from helpers import random_rotation, random_state, small_config, small_flow, transform

DEFAULT = {"num_particles": 4, "dim": 2, "projection": "spherical"}


# ---- Shapes and dtypes ----


@pytest.mark.parametrize("dim,num_aug", [(2, 1), (3, 3)])
def test_sample_shapes_and_dtypes(dim, num_aug):
    flow = small_flow(dim, "spherical", num_aug=num_aug, num_particles=5)
    x, a, log_q = flow.sample(7, seed=1)
    assert x.shape == (7, 5, dim)
    assert a.shape == (7, 5, num_aug, dim)
    assert log_q.shape == (7,)
    for arr in (x, a, log_q):
        assert arr.dtype == np.float64
        assert arr.flags.c_contiguous and arr.flags.writeable
        assert np.all(np.isfinite(arr))
    # Samples have zero centre of mass.
    np.testing.assert_allclose(x.mean(axis=1), 0.0, atol=1e-12)
    assert flow.log_prob(x, a).shape == (7,)
    assert flow.marginal_log_prob(x, num_aug_samples=3).shape == (7,)
    assert flow.log_augmented_target(x, a).shape == (7,)


def test_properties_and_repr():
    flow = small_flow(3, "vector", num_aug=3, num_particles=6)
    assert (flow.num_particles, flow.dim, flow.num_aug) == (6, 3, 3)
    assert isinstance(flow.num_parameters, int) and flow.num_parameters > 1000
    text = repr(flow)
    assert text.startswith("openmmbg.Flow(")
    for part in ("num_particles=6", "dim=3", "projection='vector'", "num_aug=3", f"num_parameters={flow.num_parameters}"):
        assert part in text


def test_sample_is_reproducible_with_a_seed():
    flow = small_flow(2, "spherical")
    x1, a1, q1 = flow.sample(4, seed=5)
    x2, a2, q2 = flow.sample(4, seed=5)
    x3, _, _ = flow.sample(4, seed=6)
    assert np.array_equal(x1, x2) and np.array_equal(a1, a2) and np.array_equal(q1, q2)
    assert not np.allclose(x1, x3)
    # numpy integers are integers too.
    x4, _, _ = flow.sample(np.int64(4), seed=np.int32(5))
    assert np.array_equal(x1, x4)


def test_empty_batches():
    flow = small_flow(2, "spherical")
    x, a, log_q = flow.sample(0)
    assert x.shape == (0, 4, 2) and a.shape == (0, 4, 1, 2) and log_q.shape == (0,)
    assert flow.log_prob(x, a).shape == (0,)
    assert flow.marginal_log_prob(x).shape == (0,)
    with pytest.raises(ValueError, match="non-negative"):
        flow.sample(-1)


# ---- Densities ----


@pytest.mark.parametrize(
    "dim,projection,num_aug",
    [(2, "spherical", 1), (3, "spherical", 1), (3, "cartesian", 1), (2, "vector", 1), (3, "vector", 3), (2, "none", 1)],
)
def test_sample_and_log_prob_agree(dim, projection, num_aug):
    flow = small_flow(dim, projection, num_aug=num_aug)
    x, a, log_q = flow.sample(16, seed=2)
    log_p = flow.log_prob(x, a)
    np.testing.assert_allclose(log_p, log_q, rtol=0, atol=1e-7)
    # Not a constant: the samples have different densities.
    assert np.ptp(log_q) > 1e-3


@pytest.mark.parametrize("dim,projection", [(3, "spherical"), (2, "vector")])
def test_joint_density_is_invariant_under_rotation_translation_permutation(dim, projection, rng):
    flow = small_flow(dim, projection, num_particles=5)
    x, a = random_state(flow, 6, rng)
    log_q = flow.log_prob(x, a)
    rotation = random_rotation(dim, rng)
    translation = rng.standard_normal(dim)
    permutation = rng.permutation(flow.num_particles)
    x2, a2 = transform(x, a, rotation, translation, permutation)
    np.testing.assert_allclose(flow.log_prob(x2, a2), log_q, rtol=0, atol=1e-8)
    # The check can fail: rotating x but not a changes the density.
    x3 = (x @ rotation.T)[:, permutation]
    assert np.abs(flow.log_prob(x3, a2) - log_q).max() > 1e-4


@pytest.mark.parametrize("dim", [2, 3])
def test_non_equivariant_flow_is_invariant_under_translation_and_permutation(dim, rng):
    flow = small_flow(dim, "none", num_particles=5)
    x, a = random_state(flow, 6, rng)
    log_q = flow.log_prob(x, a)
    translation = rng.standard_normal(dim)
    permutation = rng.permutation(flow.num_particles)
    x2, a2 = transform(x, a, np.eye(dim), translation, permutation)
    np.testing.assert_allclose(flow.log_prob(x2, a2), log_q, rtol=0, atol=1e-8)
    # ... but not under rotation (the "none" projection is the non-equivariant baseline).
    x3, a3 = transform(x, a, random_rotation(dim, rng), translation, permutation)
    assert np.abs(flow.log_prob(x3, a3) - log_q).max() > 1e-4


def test_identity_flow_marginal_is_the_centre_of_mass_free_gaussian(rng):
    n, N, D = 5, 6, 3
    flow = openmmbg.Flow(small_config(D, "spherical", num_particles=N, identity_init=True))
    x = 1.5 * rng.standard_normal((n, N, D)) + 2.0  # not centred: the flow centres x itself
    x_c = x - x.mean(axis=1, keepdims=True)
    expected = -0.5 * (x_c**2).sum(axis=(1, 2)) - 0.5 * (N - 1) * D * math.log(2 * math.pi)
    for k, seed in [(1, 0), (7, 3)]:
        np.testing.assert_allclose(flow.marginal_log_prob(x, num_aug_samples=k, seed=seed), expected, rtol=1e-12, atol=1e-10)


def test_marginal_log_prob_seed(rng):
    flow = small_flow(2, "spherical")
    x, _ = random_state(flow, 4, rng)
    m1 = flow.marginal_log_prob(x, num_aug_samples=5, seed=11)
    m2 = flow.marginal_log_prob(x, num_aug_samples=5, seed=11)
    m3 = flow.marginal_log_prob(x, num_aug_samples=5, seed=12)
    assert np.array_equal(m1, m2)
    assert not np.allclose(m1, m3, rtol=0, atol=1e-8)
    assert np.all(np.isfinite(m1))
    with pytest.raises(ValueError, match="num_aug_samples"):
        flow.marginal_log_prob(x, num_aug_samples=0)


def test_log_augmented_target_is_the_gaussian_around_x(rng):
    flow = small_flow(3, "spherical", num_aug=3, aug_scale=0.25)
    x, a = random_state(flow, 3, rng)
    x = x + 1.0  # pi(a|x) is translation invariant: x and a are shifted together
    a = a + 1.0
    sigma, count = 0.25, flow.num_particles * flow.num_aug * flow.dim
    expected = -0.5 * (((a - x[:, :, None, :]) / sigma) ** 2).sum(axis=(1, 2, 3)) - count * (
        math.log(sigma) + 0.5 * math.log(2 * math.pi)
    )
    np.testing.assert_allclose(flow.log_augmented_target(x, a), expected, rtol=1e-12)


def test_single_configuration_is_a_batch_of_one(rng):
    flow = small_flow(2, "vector")
    x, a = random_state(flow, 3, rng)
    single = flow.log_prob(x[1], a[1])
    assert single.shape == (1,)
    assert single[0] == pytest.approx(flow.log_prob(x, a)[1], abs=1e-12)
    assert flow.marginal_log_prob(x[1], num_aug_samples=2).shape == (1,)


def test_float32_model_takes_and_returns_float64(rng):
    config = small_config(3, "spherical", num_particles=5)
    flow32 = openmmbg.Flow(dict(config, dtype="float32"))
    flow64 = openmmbg.Flow(config)
    x, a, log_q = flow32.sample(6, seed=4)
    assert x.dtype == a.dtype == log_q.dtype == np.float64
    # float32 arithmetic: sample and log_prob agree to float32 rounding of a ~10-term sum.
    np.testing.assert_allclose(flow32.log_prob(x, a), log_q, rtol=1e-3, atol=1e-3)
    # float32 inputs and nested lists are converted.
    lp32 = flow32.log_prob(x.astype(np.float32), a.tolist())
    assert lp32.dtype == np.float64
    np.testing.assert_allclose(lp32, log_q, rtol=1e-3, atol=1e-3)
    # Same initialisation seed: the float32 model is the float64 one up to rounding.
    np.testing.assert_allclose(flow64.log_prob(x, a), log_q, rtol=0, atol=1e-3 * (1 + np.abs(log_q).max()))


def test_non_contiguous_inputs_are_accepted(rng):
    flow = small_flow(2, "spherical")
    x, a = random_state(flow, 4, rng)
    expected = flow.log_prob(x, a)
    x_f = np.asfortranarray(x)
    a_strided = np.repeat(a, 2, axis=0)[::2]
    assert not x_f.flags.c_contiguous and not a_strided.flags.c_contiguous
    np.testing.assert_array_equal(flow.log_prob(x_f, a_strided), expected)


# ---- Configuration ----


def test_family_picks_the_model_and_unknown_families_are_refused():
    flow = openmmbg.Flow(dict(DEFAULT, family="eacf"))
    assert flow.family == "eacf" and "family='eacf'" in repr(flow)
    with pytest.raises(ValueError, match='unknown family "glow"'):
        openmmbg.Flow(dict(DEFAULT, family="glow"))
    with pytest.raises(ValueError, match="family"):
        openmmbg.Flow(dict(DEFAULT, family=1))


def test_config_defaults_are_filled():
    flow = openmmbg.Flow(DEFAULT)
    config = flow.config
    assert config["num_aug"] == 1
    assert config["num_layers"] == 12
    assert config["dtype"] == "float32"
    assert config["aug_scale"] == pytest.approx(0.1)
    assert config["identity_init"] is True
    assert config["length_unit"] == "nm"
    assert config["temperature"] == pytest.approx(120.27)
    assert config["atom_types"] == [0, 0, 0, 0]
    assert (flow.num_particles, flow.dim, flow.num_aug) == (4, 2, 1)
    assert config["family"] == "eacf" and flow.family == "eacf"
    # config is a fresh dict each time: changing it does not change the model.
    config["num_layers"] = 1
    assert flow.config["num_layers"] == 12


def test_config_accepts_numpy_values():
    flow = openmmbg.Flow({"num_particles": np.int64(4), "dim": 2, "projection": "none", "head_mlp_units": np.array([8, 8]),
                          "num_layers": 1})
    assert flow.config["head_mlp_units"] == [8, 8]


@pytest.mark.parametrize(
    "config,exception,message",
    [
        ({"dim": 2, "projection": "spherical"}, ValueError, "missing required key 'num_particles'"),
        ({"num_particles": 4, "projection": "spherical"}, ValueError, "missing required key 'dim'"),
        ({**DEFAULT, "bogus_key": 1}, ValueError, "unknown key 'bogus_key'"),
        ({**DEFAULT, "projection": "polar"}, ValueError, 'projection must be'),
        ({**DEFAULT, "dim": 4}, ValueError, "dim must be 2 or 3"),
        ({**DEFAULT, "num_aug": 2}, ValueError, "num_aug must be a positive odd number"),
        ({**DEFAULT, "dtype": "float16"}, ValueError, "dtype"),
        ({**DEFAULT, "num_layers": "many"}, ValueError, "'num_layers' has the wrong type: must be an integer"),
        ({**DEFAULT, "num_particles": 4.7}, ValueError, "'num_particles' has the wrong type: must be an integer"),
        ({**DEFAULT, "identity_init": 1}, ValueError, "'identity_init' has the wrong type: must be true or false"),
        ({**DEFAULT, "egnn_mlp_units": [64, 32]}, ValueError, "egnn_mlp_units must hold equal positive widths"),
        ({**DEFAULT, "head_mlp_units": [0]}, ValueError, "head_mlp_units must hold equal positive widths"),
        ({**DEFAULT, "length_unit": "furlong"}, ValueError, "length_unit must be"),
        ({**DEFAULT, "aug_scale": "wide"}, ValueError, "'aug_scale' has the wrong type"),
        ({**DEFAULT, "atom_types": [0, 1]}, ValueError, "atom_types"),
    ],
)
def test_bad_config_raises_a_clear_error(config, exception, message):
    with pytest.raises(exception) as info:
        openmmbg.Flow(config)
    assert message in str(info.value)


def test_config_must_be_a_dict():
    with pytest.raises(TypeError, match="must be a dict"):
        openmmbg.Flow('{"num_particles": 4}')


# ---- Shape and type errors ----


def test_wrong_shapes_raise_value_error(rng):
    flow = small_flow(2, "spherical", num_particles=4)
    x, a = random_state(flow, 3, rng)
    with pytest.raises(ValueError, match=r"x has shape \(3, 3, 2\), expected \[n, N, D\] = \[n, 4, 2\]"):
        flow.log_prob(x[:, :3], a)
    with pytest.raises(ValueError, match=r"x has shape \(3, 4, 3\)"):
        flow.marginal_log_prob(np.zeros((3, 4, 3)))
    with pytest.raises(ValueError, match=r"a has shape \(3, 4, 2\), expected \[n, N, A, D\]"):
        flow.log_prob(x, a[:, :, 0])
    with pytest.raises(ValueError, match="x holds 3 configurations but a holds 2"):
        flow.log_prob(x, a[:2])
    with pytest.raises(ValueError, match="x has shape"):
        flow.log_prob(x.reshape(-1), a)
    with pytest.raises(ValueError, match="x: cannot convert to a float64 array"):
        flow.log_prob("not an array", a)
    with pytest.raises(TypeError, match="n must be an integer"):
        flow.sample(2.5)


def test_low_level_module_checks_buffers():
    """The SWIG layer itself rejects non-float64 and non-contiguous buffers with TypeError."""
    from openmmbg import openmmbg_swig

    model = openmmbg_swig.FlowModel('{"num_particles": 2, "dim": 2, "projection": "none", "num_layers": 1}')
    good = np.zeros((1, 2, 2))
    good_a = np.zeros((1, 2, 1, 2))
    assert len(model.logProb(good, good_a)) == 8  # bytes of one float64
    with pytest.raises(TypeError, match="float64"):
        model.logProb(good.astype(np.float32), good_a)
    with pytest.raises(TypeError, match="C-contiguous"):
        model.logProb(np.zeros((2, 2, 2))[:, :, 0], good_a)
    with pytest.raises(TypeError, match="C-contiguous"):
        model.logProb([0.0, 0.0, 0.0, 0.0], good_a)
    with pytest.raises(ValueError, match="not a positive multiple of 4"):
        model.logProb(np.zeros(3), good_a)
    with pytest.raises(ValueError, match="n must be positive"):
        model.sample(0, 0)


def test_log_prob_needs_the_augmented_variables_of_an_augmented_flow():
    flow = small_flow(2, "vector", 1)
    x, a, log_q = flow.sample(3, seed=0)
    with pytest.raises(ValueError, match="a is required"):
        flow.log_prob(x)
