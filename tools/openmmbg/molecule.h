#pragma once
// The bonded graph of a molecule described by an OpenMM System, for the internal-coordinate family's
// Z-matrix (docs/internal-coordinates.md).
#include <nlohmann/json.hpp>

#include <string>

namespace OpenMMBG::Cli {

/**
 * Hydrogens are the particles lighter than this (amu): a hydrogen keeps less than 4.5 amu even with
 * hydrogen mass repartitioning (typically 3-4 amu), and the lightest heavy atom in biomolecules
 * (carbon, 12 amu, minus what repartitioning moves to its hydrogens) stays above it.
 */
constexpr double kHydrogenMassLimit = 4.5;

/**
 * The Z-matrix rows ([[atom, bond, angle, dihedral], ...], -1 where a row has none) of the molecule
 * in an OpenMM System XML file: its bonds are those of its HarmonicBondForces and its constraints,
 * its hydrogens the particles lighter than kHydrogenMassLimit; built by ZMatrix::fromBonds.
 * Throws std::runtime_error naming the file if it is not a System or its molecule is not connected.
 */
nlohmann::json zmatrixOfSystemFile(const std::string& path);

}  // namespace OpenMMBG::Cli
