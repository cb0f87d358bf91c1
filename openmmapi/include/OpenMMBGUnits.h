#pragma once
/** Physical constants of the openmm-bg plugin (one home for each). Units: nm, ps, kJ/mol, K, amu. */

namespace OpenMMBG {

/**
 * Boltzmann's constant, kJ/mol/K: k_B N_A / 1000 from the exact SI values (CODATA 2018), the same
 * expression as OpenMM's BOLTZ (openmm/reference/SimTKOpenMMRealType.h), so kT agrees with
 * OpenMM's to the last bit; the value of openmm.unit.MOLAR_GAS_CONSTANT_R, 8.31446261815324e-3.
 */
constexpr double BOLTZMANN = 1.380649e-23 * 6.02214076e23 / 1000.0;

}  // namespace OpenMMBG
