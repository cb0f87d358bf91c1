#include "openmmbg/ic/InternalCoordinates.h"

#include <algorithm>
#include <deque>
#include <stdexcept>
#include <string>

namespace OpenMMBG {

namespace {

[[noreturn]] void fail(const std::string& message) { throw std::invalid_argument("Z-matrix: " + message); }

std::string describe(const ZMatrixRow& r) {
    return "(" + std::to_string(r.atom) + ", " + std::to_string(r.bond) + ", " + std::to_string(r.angle) + ", " +
           std::to_string(r.dihedral) + ")";
}

torch::Tensor normalized(const torch::Tensor& v) { return v / torch::linalg_vector_norm(v, 2, {-1}, true); }

}  // namespace

ZMatrix::ZMatrix(std::vector<ZMatrixRow> rows) : rows_(std::move(rows)) {
    const int64_t n = int64_t(rows_.size());
    if (n < 3)
        fail("needs at least 3 atoms (got " + std::to_string(n) + ")");
    std::vector<bool> placed(n, false);
    for (int64_t k = 0; k < n; k++) {
        const ZMatrixRow& r = rows_[k];
        if (r.atom < 0 || r.atom >= n)
            fail("row " + std::to_string(k) + " " + describe(r) + ": atom out of range [0, " + std::to_string(n) + ")");
        if (placed[r.atom])
            fail("row " + std::to_string(k) + " " + describe(r) + ": atom " + std::to_string(r.atom) + " is placed twice");
        const int64_t refs[3] = {r.bond, r.angle, r.dihedral};
        const int64_t needed = std::min<int64_t>(k, 3);
        for (int64_t j = 0; j < 3; j++) {
            if (j < needed) {
                if (refs[j] < 0 || refs[j] >= n || !placed[refs[j]])
                    fail("row " + std::to_string(k) + " " + describe(r) + ": reference " + std::to_string(refs[j]) +
                         " is not an atom of an earlier row");
                for (int64_t i = 0; i < j; i++)
                    if (refs[i] == refs[j])
                        fail("row " + std::to_string(k) + " " + describe(r) + ": repeats atom " + std::to_string(refs[j]));
            } else if (refs[j] != -1) {
                fail("row " + std::to_string(k) + " " + describe(r) + ": row " + std::to_string(k) + " has only " +
                     std::to_string(needed) + " reference(s); set the others to -1");
            }
        }
        placed[r.atom] = true;
    }
    if (rows_[2].bond != rows_[0].atom && rows_[2].bond != rows_[1].atom)
        fail("row 2 must be bonded to the atom of row 0 or row 1");
}

ZMatrix ZMatrix::fromBonds(int64_t numAtoms, const std::vector<std::pair<int64_t, int64_t>>& bonds,
                           const std::vector<bool>& heavy) {
    if (numAtoms < 3)
        fail("needs at least 3 atoms (got " + std::to_string(numAtoms) + ")");
    if (int64_t(heavy.size()) != numAtoms)
        fail("heavy flags for " + std::to_string(heavy.size()) + " atoms, expected " + std::to_string(numAtoms));
    std::vector<std::vector<int64_t>> neighbours(numAtoms);
    for (const auto& [a, b] : bonds) {
        if (a < 0 || b < 0 || a >= numAtoms || b >= numAtoms || a == b)
            fail("bond (" + std::to_string(a) + ", " + std::to_string(b) + ") is not between two atoms in [0, " +
                 std::to_string(numAtoms) + ")");
        neighbours[a].push_back(b);
        neighbours[b].push_back(a);
    }
    for (auto& list : neighbours) {
        std::sort(list.begin(), list.end());
        list.erase(std::unique(list.begin(), list.end()), list.end());
    }
    auto heavyDegree = [&](int64_t a) {
        return std::count_if(neighbours[a].begin(), neighbours[a].end(), [&](int64_t b) { return heavy[b]; });
    };
    // The root: the heavy atom with the most heavy neighbours (any atom if there is no heavy atom).
    int64_t root = -1;
    for (int64_t a = 0; a < numAtoms; a++)
        if ((heavy[a] || std::none_of(heavy.begin(), heavy.end(), [](bool h) { return h; })) &&
            (root < 0 || heavyDegree(a) > heavyDegree(root)))
            root = a;
    // Breadth-first over the heavy atoms, then each heavy atom's hydrogens in that order.
    std::vector<int64_t> order, parent(numAtoms, -1);
    std::vector<bool> seen(numAtoms, false);
    std::deque<int64_t> queue = {root};
    seen[root] = true;
    const bool anyHeavy = heavy[root];
    while (!queue.empty()) {
        const int64_t a = queue.front();
        queue.pop_front();
        order.push_back(a);
        for (int64_t b : neighbours[a])
            if (!seen[b] && (heavy[b] || !anyHeavy)) {
                seen[b] = true;
                parent[b] = a;
                queue.push_back(b);
            }
    }
    const size_t numHeavyPlaced = order.size();
    for (size_t k = 0; k < numHeavyPlaced; k++)
        for (int64_t h : neighbours[order[k]])
            if (!seen[h]) {
                seen[h] = true;
                parent[h] = order[k];
                order.push_back(h);
            }
    for (int64_t a = 0; a < numAtoms; a++)
        if (!seen[a])
            fail(std::string(heavy[a] ? "heavy atom " : "hydrogen ") + std::to_string(a) +
                 (heavy[a] ? " is not connected to the rest of the molecule" : " is bonded to no heavy atom of the molecule"));
    std::vector<int64_t> rowOf(numAtoms, -1);
    for (size_t k = 0; k < order.size(); k++)
        rowOf[order[k]] = int64_t(k);
    auto placedBefore = [&](int64_t a, int64_t row) { return rowOf[a] >= 0 && rowOf[a] < row; };
    // A placed neighbour of `a` (its parent first), other than the atoms in `not`.
    auto placedNeighbour = [&](int64_t a, int64_t row, std::initializer_list<int64_t> exclude) -> int64_t {
        auto allowed = [&](int64_t b) {
            return placedBefore(b, row) && std::find(exclude.begin(), exclude.end(), b) == exclude.end();
        };
        if (parent[a] >= 0 && allowed(parent[a]))
            return parent[a];
        for (int64_t b : neighbours[a])
            if (allowed(b))
                return b;
        return -1;
    };
    std::vector<ZMatrixRow> rows;
    for (int64_t k = 0; k < int64_t(order.size()); k++) {
        ZMatrixRow r{order[k]};
        if (k >= 1)
            r.bond = parent[r.atom];
        if (k >= 2) {
            r.angle = placedNeighbour(r.bond, k, {r.atom});
            if (r.angle < 0)
                fail("atom " + std::to_string(r.atom) + " has no angle partner (its bond atom " + std::to_string(r.bond) +
                     " has no other placed neighbour)");
        }
        if (k >= 3) {
            r.dihedral = placedNeighbour(r.angle, k, {r.atom, r.bond});
            if (r.dihedral < 0)  // an improper dihedral: another neighbour of the bond atom
                r.dihedral = placedNeighbour(r.bond, k, {r.atom, r.angle});
            if (r.dihedral < 0)
                fail("atom " + std::to_string(r.atom) + " has no dihedral partner near atoms " + std::to_string(r.bond) +
                     " and " + std::to_string(r.angle));
        }
        rows.push_back(r);
    }
    return ZMatrix(std::move(rows));
}

torch::Tensor dihedralAngle(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& c, const torch::Tensor& d) {
    const torch::Tensor b0 = a - b, b1 = c - b, b2 = d - c;
    const torch::Tensor axis = normalized(b1);
    const torch::Tensor v = b0 - (b0 * axis).sum(-1, true) * axis;
    const torch::Tensor w = b2 - (b2 * axis).sum(-1, true) * axis;
    const torch::Tensor x = (v * w).sum(-1);
    const torch::Tensor y = (torch::linalg_cross(axis, v, -1) * w).sum(-1);
    return torch::atan2(y, x);
}

InternalCoordinateTransform::InternalCoordinateTransform(ZMatrix zmatrix) : zmatrix_(std::move(zmatrix)) {}

InternalCoordinates InternalCoordinateTransform::toInternal(const torch::Tensor& x) const {
    const auto& rows = zmatrix_.rows();
    if (x.dim() != 3 || x.size(1) != zmatrix_.numAtoms() || x.size(2) != 3)
        throw std::invalid_argument("internal coordinates: positions must be [B, " + std::to_string(zmatrix_.numAtoms()) +
                                    ", 3] (got " + c10::str(x.sizes()) + ")");
    auto atom = [&](int64_t i) { return x.select(1, i); };
    std::vector<torch::Tensor> bonds, angles, dihedrals;
    for (size_t k = 1; k < rows.size(); k++) {
        const ZMatrixRow& r = rows[k];
        const torch::Tensor toBond = atom(r.bond) - atom(r.atom);
        bonds.push_back(torch::linalg_vector_norm(toBond, 2, {-1}));
        if (k >= 2) {
            const torch::Tensor u = normalized(atom(r.atom) - atom(r.bond)), v = normalized(atom(r.angle) - atom(r.bond));
            angles.push_back(torch::atan2(torch::linalg_vector_norm(torch::linalg_cross(u, v, -1), 2, {-1}), (u * v).sum(-1)));
        }
        if (k >= 3)
            dihedrals.push_back(dihedralAngle(atom(r.atom), atom(r.bond), atom(r.angle), atom(r.dihedral)));
    }
    InternalCoordinates ic;
    ic.bonds = torch::stack(bonds, 1);
    ic.angles = torch::stack(angles, 1);
    ic.dihedrals = dihedrals.empty() ? torch::zeros({x.size(0), 0}, x.options()) : torch::stack(dihedrals, 1);
    return ic;
}

torch::Tensor InternalCoordinateTransform::toCanonical(const InternalCoordinates& ic) const {
    const auto& rows = zmatrix_.rows();
    const int64_t n = zmatrix_.numAtoms(), B = ic.bonds.size(0);
    const auto opts = ic.bonds.options();
    std::vector<torch::Tensor> position(n);
    const torch::Tensor zero = torch::zeros({B}, opts);
    position[rows[0].atom] = torch::zeros({B, 3}, opts);
    position[rows[1].atom] = torch::stack({ic.bonds.select(1, 0), zero, zero}, 1);
    {
        // Row 2 lies in the xy plane (y > 0) at its angle from the axis towards the other atom.
        const ZMatrixRow& r = rows[2];
        const torch::Tensor length = ic.bonds.select(1, 1), theta = ic.angles.select(1, 0);
        const double sign = r.bond == rows[0].atom ? 1.0 : -1.0;  // from row 0 the axis is +x, from row 1 -x
        position[r.atom] = position[r.bond] + torch::stack({sign * length * torch::cos(theta), length * torch::sin(theta), zero}, 1);
    }
    for (int64_t k = 3; k < n; k++) {
        // The natural extension reference frame: the atom at distance r from b, angle theta
        // (atom, b, c) and dihedral phi (atom, b, c, d).
        const ZMatrixRow& r = rows[k];
        const torch::Tensor &b = position[r.bond], &c = position[r.angle], &d = position[r.dihedral];
        const torch::Tensor length = ic.bonds.select(1, k - 1).unsqueeze(1), theta = ic.angles.select(1, k - 2).unsqueeze(1),
                            phi = ic.dihedrals.select(1, k - 3).unsqueeze(1);
        const torch::Tensor bc = normalized(c - b);
        const torch::Tensor normal = normalized(torch::linalg_cross(d - c, bc, -1));
        const torch::Tensor inPlane = torch::linalg_cross(normal, bc, -1);
        // inPlane points away from d (perpendicular to bc), so phi = 0 puts the atom on d's side.
        position[r.atom] = b + length * (torch::cos(theta) * bc + torch::sin(theta) * (torch::sin(phi) * normal -
                                                                                         torch::cos(phi) * inPlane));
    }
    return torch::stack(position, 1);
}

torch::Tensor InternalCoordinateTransform::toCartesian(const InternalCoordinates& ic, const torch::Tensor& rotation,
                                                       const torch::Tensor& translation) const {
    return torch::matmul(toCanonical(ic), rotation.transpose(1, 2)) + translation.unsqueeze(1);
}

std::pair<torch::Tensor, torch::Tensor> InternalCoordinateTransform::frame(const torch::Tensor& x) const {
    const auto& rows = zmatrix_.rows();
    const torch::Tensor p0 = x.select(1, rows[0].atom), p1 = x.select(1, rows[1].atom), p2 = x.select(1, rows[2].atom);
    const torch::Tensor e1 = normalized(p1 - p0);
    const torch::Tensor v = p2 - p0;
    const torch::Tensor e2 = normalized(v - (v * e1).sum(-1, true) * e1);
    const torch::Tensor e3 = torch::linalg_cross(e1, e2, -1);
    return {torch::stack({e1, e2, e3}, 2), p0};  // columns: the canonical axes in the lab frame
}

torch::Tensor InternalCoordinateTransform::logVolumeElement(const InternalCoordinates& ic) const {
    return 2.0 * torch::log(ic.bonds).sum(1) + torch::log(torch::sin(ic.angles)).sum(1);
}

}  // namespace OpenMMBG
