#pragma once
/**
 * Internal coordinates of a molecule: a Z-matrix (torsion tree) and the exact transform between
 * Cartesian positions and bond lengths, bond angles and dihedrals.
 *
 * Row k of a Z-matrix places one atom: row 0 is the root; row 1 is placed by its distance to row 0;
 * row 2 by its distance to row 0 or row 1 and the angle with the other; every later row by a
 * distance (atom, bond), an angle (atom, bond, angle) and a dihedral (atom, bond, angle, dihedral),
 * all to atoms of earlier rows. N atoms have N - 1 distances, N - 2 angles and N - 3 dihedrals:
 * 3N - 6 internal coordinates; the other 6 are the position and orientation of the molecule.
 *
 * The volume element. With the row-0 atom at t, the orientation R in SO(3) and internal
 * coordinates z, the Cartesian volume element is dx = J(z) dR dt, where dR is the Haar measure of
 * SO(3) of total volume 8 pi^2 and
 *
 *   J(z) = prod_{rows k >= 1} r_k^2 * prod_{rows k >= 2} sin(theta_k)
 *
 * (spherical coordinates of each atom about the atom it is bonded to; row 1's direction and row 2's
 * azimuth about the row-0/row-1 axis are the orientation). logVolumeElement() returns log J.
 *
 * Units: lengths in the caller's unit, angles in radians; angles in [0, pi], dihedrals in [-pi, pi).
 */
#include <torch/torch.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace OpenMMBG {

/** One row of a Z-matrix: `atom` placed from `bond`, `angle`, `dihedral` (-1 where the row has none). */
struct ZMatrixRow {
    int64_t atom;
    int64_t bond = -1;
    int64_t angle = -1;
    int64_t dihedral = -1;
};

class ZMatrix {
public:
    /**
     * A Z-matrix from explicit rows. Throws std::invalid_argument naming the row if an atom is
     * missing or repeated, a reference is not an atom of an earlier row, a row has too few or too
     * many references for its place, or a row's references repeat an atom.
     */
    explicit ZMatrix(std::vector<ZMatrixRow> rows);
    /**
     * Built from the bonded graph of a molecule: heavy atoms first (breadth-first from the heavy atom
     * with the most heavy neighbours, lowest index on ties), then each heavy atom's hydrogens; every
     * atom is placed by a bond to an atom placed before it, the angle with that atom's own parent (or
     * another placed neighbour), and the dihedral with the next atom up the tree (or, where the tree
     * has none yet, another placed neighbour: an improper dihedral).
     * @param numAtoms number of atoms (>= 3)
     * @param bonds    pairs of bonded atoms (indices in [0, numAtoms))
     * @param heavy    per atom: true for heavy atoms, false for hydrogens
     * Throws std::invalid_argument if the molecule is not connected, a hydrogen is bonded to no
     * heavy atom, or an index is out of range.
     */
    static ZMatrix fromBonds(int64_t numAtoms, const std::vector<std::pair<int64_t, int64_t>>& bonds,
                             const std::vector<bool>& heavy);

    const std::vector<ZMatrixRow>& rows() const { return rows_; }
    int64_t numAtoms() const { return int64_t(rows_.size()); }

private:
    std::vector<ZMatrixRow> rows_;
};

/** Internal coordinates of a batch, in Z-matrix row order. */
struct InternalCoordinates {
    torch::Tensor bonds;      ///< [B, N - 1]: distances of rows 1..N-1 to their bond atoms
    torch::Tensor angles;     ///< [B, N - 2]: angles (rad, [0, pi]) of rows 2..N-1
    torch::Tensor dihedrals;  ///< [B, N - 3]: dihedrals (rad, [-pi, pi)) of rows 3..N-1
};

/** The Cartesian <-> internal coordinate transform of a Z-matrix (differentiable, any float dtype). */
class InternalCoordinateTransform {
public:
    explicit InternalCoordinateTransform(ZMatrix zmatrix);
    const ZMatrix& zmatrix() const { return zmatrix_; }

    /** Internal coordinates of positions x [B, N, 3] (atom order; invariant to rotations and translations). */
    InternalCoordinates toInternal(const torch::Tensor& x) const;
    /**
     * Positions [B, N, 3] (atom order) in the canonical frame: the row-0 atom at the origin, the
     * row-1 atom on the +x axis, the row-2 atom in the xy plane with y > 0.
     */
    torch::Tensor toCanonical(const InternalCoordinates& ic) const;
    /** Positions [B, N, 3] = canonical positions rotated by R [B, 3, 3] (x = R x_canonical) and shifted by t [B, 3]. */
    torch::Tensor toCartesian(const InternalCoordinates& ic, const torch::Tensor& rotation, const torch::Tensor& translation) const;
    /** The frame of positions x [B, N, 3]: R [B, 3, 3] and t [B, 3] with x = R toCanonical(toInternal(x)) + t. */
    std::pair<torch::Tensor, torch::Tensor> frame(const torch::Tensor& x) const;
    /** log J(z) [B] of the volume element dx = J(z) dR dt (see the header comment). */
    torch::Tensor logVolumeElement(const InternalCoordinates& ic) const;

private:
    ZMatrix zmatrix_;
};

/** Dihedral angle (rad, [-pi, pi)) of points a-b-c-d [..., 3], IUPAC sign convention. */
torch::Tensor dihedralAngle(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& c, const torch::Tensor& d);

}  // namespace OpenMMBG
