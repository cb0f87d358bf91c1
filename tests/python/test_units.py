"""openmm.unit Quantity inputs: converted to the model's length unit (nm by default)."""
import numpy as np
import pytest

from helpers import random_state, small_flow

unit = pytest.importorskip("openmm.unit")


def test_quantity_in_angstrom_equals_nanometre_values(rng):
    flow = small_flow(3, "spherical", num_particles=5)
    assert flow.config["length_unit"] == "nm"
    x_nm, a_nm = random_state(flow, 4, rng)
    x_A, a_A = unit.Quantity(x_nm * 10.0, unit.angstrom), unit.Quantity(a_nm * 10.0, unit.angstrom)
    expected = flow.log_prob(x_nm, a_nm)
    np.testing.assert_allclose(flow.log_prob(x_A, a_A), expected, rtol=1e-12, atol=1e-12)
    # Mixing a Quantity x with a plain a (taken in nm) works too.
    np.testing.assert_allclose(flow.log_prob(x_A, a_nm), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(flow.log_prob(x_nm * unit.nanometer, a_nm), expected, rtol=0, atol=0)
    np.testing.assert_allclose(flow.marginal_log_prob(x_A, 3, seed=2), flow.marginal_log_prob(x_nm, 3, seed=2),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(flow.log_augmented_target(x_A, a_A), flow.log_augmented_target(x_nm, a_nm), rtol=1e-12)
    # Angstrom values passed as a plain array are taken as nm: a different density.
    assert not np.allclose(flow.log_prob(x_nm * 10.0, a_nm * 10.0), expected)


def test_openmm_positions_list_of_vec3(rng):
    """State.getPositions() style input: a Quantity wrapping a list of Vec3 is one configuration."""
    import openmm

    flow = small_flow(3, "vector", num_particles=5)
    x, a = random_state(flow, 1, rng)
    positions = unit.Quantity([openmm.Vec3(*p) for p in x[0] * 10.0], unit.angstrom)
    np.testing.assert_allclose(flow.marginal_log_prob(positions, 2, seed=1), flow.marginal_log_prob(x, 2, seed=1),
                               rtol=1e-12)


def test_incompatible_quantity_raises(rng):
    flow = small_flow(2, "spherical")
    x, a = random_state(flow, 2, rng)
    with pytest.raises(ValueError, match="cannot express"):
        flow.log_prob(unit.Quantity(x, unit.kelvin), a)
