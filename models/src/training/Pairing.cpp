#include "openmmbg/training/Pairing.h"

#include <limits>
#include <map>
#include <stdexcept>
#include <vector>

namespace OpenMMBG {

namespace {

/**
 * The solver behind linearSumAssignment: one square problem on a row-major float64 cost [n * n],
 * writing columnOfRow[i] for every row. The workspace vectors are reused across calls
 * (equivariant OT solves B^2 small problems).
 *
 * Shortest augmenting paths with potentials (the O(n^3) form of Kuhn-Munkres): rows are added one
 * at a time; each addition grows a Dijkstra-like tree over the columns on reduced costs
 * cost[r][c] - rowPotential[r] - columnPotential[c] (kept >= 0, and 0 on assigned pairs) until it
 * reaches a free column, then flips the assignments along the path. Index 0 of the column arrays is
 * a virtual column holding the row being added; real rows and columns are 1-based in the arrays.
 */
class AssignmentSolver {
public:
    void solve(const double* cost, int64_t n, int64_t* columnOfRow) {
        const double infinity = std::numeric_limits<double>::infinity();
        rowPotential.assign(n + 1, 0.0);
        columnPotential.assign(n + 1, 0.0);
        rowOfColumn.assign(n + 1, 0);
        previousColumn.assign(n + 1, 0);
        for (int64_t row = 1; row <= n; row++) {
            rowOfColumn[0] = row;
            int64_t column = 0;  // the column the tree last reached
            minReducedCost.assign(n + 1, infinity);
            inTree.assign(n + 1, false);
            do {
                inTree[column] = true;
                const int64_t treeRow = rowOfColumn[column];
                const double* costRow = cost + (treeRow - 1) * n;
                double delta = infinity;
                int64_t nextColumn = 0;
                for (int64_t c = 1; c <= n; c++) {
                    if (inTree[c])
                        continue;
                    const double reduced = costRow[c - 1] - rowPotential[treeRow] - columnPotential[c];
                    if (reduced < minReducedCost[c]) {
                        minReducedCost[c] = reduced;
                        previousColumn[c] = column;
                    }
                    if (minReducedCost[c] < delta) {
                        delta = minReducedCost[c];
                        nextColumn = c;
                    }
                }
                // Shift the potentials so the tree's reduced costs stay zero and the cheapest edge
                // out of the tree (to nextColumn) becomes tight.
                for (int64_t c = 0; c <= n; c++) {
                    if (inTree[c]) {
                        rowPotential[rowOfColumn[c]] += delta;
                        columnPotential[c] -= delta;
                    } else {
                        minReducedCost[c] -= delta;
                    }
                }
                column = nextColumn;
            } while (rowOfColumn[column] != 0);
            // Augment: walk back from the free column, moving each row one column along the path.
            do {
                const int64_t previous = previousColumn[column];
                rowOfColumn[column] = rowOfColumn[previous];
                column = previous;
            } while (column != 0);
        }
        for (int64_t c = 1; c <= n; c++)
            columnOfRow[rowOfColumn[c] - 1] = c - 1;
    }

private:
    std::vector<double> rowPotential, columnPotential, minReducedCost;
    std::vector<int64_t> rowOfColumn, previousColumn;
    std::vector<bool> inTree;
};

void checkConfigurations(const torch::Tensor& t, const char* name, const char* function) {
    if (!t.defined() || t.dim() != 3 || !t.is_floating_point())
        throw std::invalid_argument(std::string(function) + ": " + name + " must be a floating tensor [B, N, D]");
}

// Squared Euclidean distances [R, C] between the rows of a [R, K] and b [C, K] (float64), by the
// expansion |a|^2 + |b|^2 - 2 a.b; clamped at 0 against rounding.
torch::Tensor squaredDistances(const torch::Tensor& a, const torch::Tensor& b) {
    return (a.pow(2).sum(1, true) + b.pow(2).sum(1).unsqueeze(0) - 2 * a.matmul(b.t())).clamp_min(0);
}

// The CPU float64 contiguous copy of a cost matrix, for the assignment solver.
torch::Tensor cpuCosts(const torch::Tensor& cost) {
    return cost.to(torch::kCPU, torch::kFloat64).contiguous();
}

}  // namespace

torch::Tensor linearSumAssignment(const torch::Tensor& cost) {
    if (!cost.defined() || cost.dim() != 2 || cost.size(0) != cost.size(1))
        throw std::invalid_argument("linearSumAssignment: the cost must be a square matrix [n, n]");
    if (!cost.is_floating_point())
        throw std::invalid_argument("linearSumAssignment: the cost must have a floating dtype");
    torch::NoGradGuard noGrad;
    const int64_t n = cost.size(0);
    torch::Tensor perm = torch::empty({n}, torch::kInt64);
    if (n == 0)
        return perm;
    torch::Tensor c = cpuCosts(cost);
    if (!torch::isfinite(c).all().item<bool>())
        throw std::invalid_argument("linearSumAssignment: the cost has non-finite entries");
    AssignmentSolver().solve(c.data_ptr<double>(), n, perm.data_ptr<int64_t>());
    return perm;
}

torch::Tensor kabschRotation(const torch::Tensor& x, const torch::Tensor& y) {
    checkConfigurations(x, "x", "kabschRotation");
    checkConfigurations(y, "y", "kabschRotation");
    if (x.sizes() != y.sizes() || x.size(2) < 2)
        throw std::invalid_argument("kabschRotation: x and y must have the same shape [B, N, D] with D >= 2");
    torch::NoGradGuard noGrad;
    const int64_t D = x.size(2);
    torch::Tensor x64 = x.to(torch::kFloat64), y64 = y.to(torch::kFloat64);
    // H = sum_i x_i y_i^T; tr(R H) = sum_i y_i . R x_i is what R maximises.
    torch::Tensor covariance = x64.transpose(1, 2).matmul(y64);  // [B, D, D]
    auto [u, singularValues, vh] = torch::linalg_svd(covariance, /*full_matrices=*/false);
    torch::Tensor v = vh.transpose(1, 2);
    // det(V U^T) is +-1; flipping the last singular direction (the smallest singular value) turns a
    // reflection into the best proper rotation.
    torch::Tensor sign = torch::where(torch::linalg_det(v.matmul(u.transpose(1, 2))) < 0, -1.0, 1.0);
    torch::Tensor correction = torch::ones({x.size(0), D}, x64.options());
    correction.select(1, D - 1).copy_(sign);
    torch::Tensor rotation = (v * correction.unsqueeze(1)).matmul(u.transpose(1, 2));
    return rotation.to(x.scalar_type());
}

Pairing pairingFromString(const std::string& name) {
    if (name == "independent")
        return Pairing::Independent;
    if (name == "ot")
        return Pairing::MinibatchOT;
    if (name == "equivariant-ot")
        return Pairing::EquivariantOT;
    throw std::invalid_argument("pairing must be \"independent\", \"ot\" or \"equivariant-ot\" (got \"" + name + "\")");
}

std::string pairingName(Pairing pairing) {
    switch (pairing) {
    case Pairing::Independent:
        return "independent";
    case Pairing::MinibatchOT:
        return "ot";
    case Pairing::EquivariantOT:
        return "equivariant-ot";
    }
    throw std::invalid_argument("pairingName: unknown pairing");
}

PairingResult pairPriorWithData(const torch::Tensor& x0, const torch::Tensor& x1, Pairing pairing,
                                const torch::Tensor& particleTypes) {
    checkConfigurations(x0, "x0", "pairPriorWithData");
    checkConfigurations(x1, "x1", "pairPriorWithData");
    if (x0.sizes() != x1.sizes() || x0.scalar_type() != x1.scalar_type() || x0.device() != x1.device())
        throw std::invalid_argument("pairPriorWithData: x0 and x1 must have the same shape, dtype and device");
    const int64_t B = x0.size(0), N = x0.size(1), D = x0.size(2);
    if (B == 0)
        throw std::invalid_argument("pairPriorWithData: the batch is empty");
    // Particle indices grouped by type; one group (all particles) when no types are given.
    std::vector<std::vector<int64_t>> typeGroups;
    if (particleTypes.defined() && particleTypes.numel() > 0) {
        if (particleTypes.dim() != 1 || particleTypes.size(0) != N || particleTypes.is_floating_point() ||
            particleTypes.scalar_type() == torch::kBool)
            throw std::invalid_argument("pairPriorWithData: particleTypes must be an integer tensor [N] with N = " +
                                        std::to_string(N));
        torch::Tensor types = particleTypes.to(torch::kCPU, torch::kInt64).contiguous();
        std::map<int64_t, size_t> groupOfType;
        for (int64_t p = 0; p < N; p++) {
            auto [it, added] = groupOfType.emplace(types.data_ptr<int64_t>()[p], typeGroups.size());
            if (added)
                typeGroups.emplace_back();
            typeGroups[it->second].push_back(p);
        }
    } else {
        typeGroups.emplace_back(N);
        for (int64_t p = 0; p < N; p++)
            typeGroups[0][p] = p;
    }

    torch::NoGradGuard noGrad;
    auto meanCostOf = [&](const torch::Tensor& paired) {
        return (paired.to(torch::kFloat64) - x1.to(torch::kFloat64)).pow(2).sum({1, 2}).mean().item<double>();
    };
    auto indexTensor = [&](const torch::Tensor& cpuIndices) { return cpuIndices.to(x0.device()); };
    if (pairing == Pairing::Independent)
        return {x0, meanCostOf(x0)};

    torch::Tensor x0f = x0.to(torch::kFloat64), x1f = x1.to(torch::kFloat64);
    if (pairing == Pairing::MinibatchOT) {
        // Rows: data; columns: prior draws. Data row i gets prior draw perm[i].
        torch::Tensor cost = squaredDistances(x1f.reshape({B, N * D}), x0f.reshape({B, N * D}));
        torch::Tensor paired = x0.index_select(0, indexTensor(linearSumAssignment(cost)));
        return {paired, meanCostOf(paired)};
    }

    // Equivariant OT. (1) Particle distances of every (data i, prior j) pair: [B, B, N, N] with
    // entry [i, j, k, l] = |x1_i,k - x0_j,l|^2, from one [B N, B N] matrix.
    torch::Tensor particleCosts = cpuCosts(
        squaredDistances(x1f.reshape({B * N, D}), x0f.reshape({B * N, D})).view({B, N, B, N}).permute({0, 2, 1, 3}));
    // particleOrder[i, j, k]: the particle of x0_j placed at position k to match x1_i,k.
    torch::Tensor particleOrder = torch::empty({B, B, N}, torch::kInt64);
    {
        const double* costs = particleCosts.data_ptr<double>();
        int64_t* order = particleOrder.data_ptr<int64_t>();
        AssignmentSolver solver;
        std::vector<double> blockCost;
        std::vector<int64_t> blockAssignment;
        for (int64_t pair = 0; pair < B * B; pair++) {
            const double* pairCost = costs + pair * N * N;
            int64_t* pairOrder = order + pair * N;
            if (typeGroups.size() == 1) {
                solver.solve(pairCost, N, pairOrder);
                continue;
            }
            for (const auto& group : typeGroups) {
                const int64_t n = int64_t(group.size());
                blockCost.resize(n * n);
                blockAssignment.resize(n);
                for (int64_t a = 0; a < n; a++)
                    for (int64_t b = 0; b < n; b++)
                        blockCost[a * n + b] = pairCost[group[a] * N + group[b]];
                solver.solve(blockCost.data(), n, blockAssignment.data());
                for (int64_t a = 0; a < n; a++)
                    pairOrder[group[a]] = group[blockAssignment[a]];
            }
        }
    }
    // permuted[i, j] = x0_j with its particles reordered for x1_i: [B, B, N, D].
    torch::Tensor order = indexTensor(particleOrder).unsqueeze(-1).expand({B, B, N, D});
    torch::Tensor permuted = x0f.unsqueeze(0).expand({B, B, N, D}).gather(2, order).reshape({B * B, N, D});
    torch::Tensor targets = x1f.unsqueeze(1).expand({B, B, N, D}).reshape({B * B, N, D});
    // (2) The best proper rotation of every permuted prior draw onto its data point, in one batched SVD.
    torch::Tensor rotations = kabschRotation(permuted, targets);
    torch::Tensor aligned = permuted.matmul(rotations.transpose(1, 2));  // [B B, N, D]
    torch::Tensor alignedCost = (aligned - targets).pow(2).sum({1, 2}).view({B, B});
    // (3) OT on the aligned costs; (4) data row i gets prior draw perm[i], aligned to it.
    torch::Tensor perm = indexTensor(linearSumAssignment(alignedCost));
    torch::Tensor pairIndex = torch::arange(B, perm.options()) * B + perm;
    torch::Tensor paired = aligned.index_select(0, pairIndex).to(x0.scalar_type());
    return {paired, meanCostOf(paired)};
}

}  // namespace OpenMMBG
