// Pairing of prior draws with data for flow matching: the Hungarian algorithm against brute force,
// Kabsch rotations (proper, exact on rotated copies, never a reflection), and the three pairings
// (independent, minibatch OT, equivariant OT) with their invariants and costs.
#include "FlowTestUtils.h"
#include "openmmbg/training/Pairing.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>
#include <numeric>
#include <vector>

using namespace OpenMMBG;
using namespace OpenMMBG::testing;

namespace {

double assignmentCost(const torch::Tensor& cost, const torch::Tensor& perm) {
    return cost.to(torch::kFloat64).gather(1, perm.unsqueeze(1)).sum().item<double>();
}

double bruteForceMinimum(const torch::Tensor& cost) {
    const int64_t n = cost.size(0);
    std::vector<int64_t> perm(n);
    std::iota(perm.begin(), perm.end(), 0);
    auto c = cost.to(torch::kFloat64).contiguous();
    const double* entries = c.data_ptr<double>();
    double best = std::numeric_limits<double>::infinity();
    do {
        double total = 0;
        for (int64_t i = 0; i < n; i++)
            total += entries[i * n + perm[i]];
        best = std::min(best, total);
    } while (std::next_permutation(perm.begin(), perm.end()));
    return best;
}

void expectPermutation(const torch::Tensor& perm, int64_t n) {
    ASSERT_EQ(perm.scalar_type(), torch::kInt64);
    ASSERT_EQ(perm.dim(), 1);
    ASSERT_EQ(perm.size(0), n);
    EXPECT_TRUE(torch::equal(std::get<0>(perm.sort()), torch::arange(n, torch::kInt64)));
}

/** Zero-centroid Gaussian configurations [B, N, D]. */
torch::Tensor centredGaussian(int64_t B, int64_t N, int64_t D, torch::Generator& gen) {
    torch::Tensor x = torch::randn({B, N, D}, gen, torch::kFloat64);
    return x - x.mean(1, true);
}

/** sum_i ||x_i R^T - y_i||^2 per batch entry [B]. */
torch::Tensor rotationCost(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& R) {
    return (x.matmul(R.transpose(1, 2)) - y).pow(2).sum({1, 2});
}

/** Per row [B, N]: the particles' distances from the centroid, sorted (invariant under rotations and permutations). */
torch::Tensor sortedParticleNorms(const torch::Tensor& x) {
    return std::get<0>(x.norm(2, {2}).sort(1));
}

/**
 * For each row of `paired`, the row of `original` with the same sorted particle norms (within tol);
 * -1 where there is none.
 */
std::vector<int64_t> matchRowsByInvariants(const torch::Tensor& paired, const torch::Tensor& original, double tol) {
    torch::Tensor a = sortedParticleNorms(paired.to(torch::kFloat64));
    torch::Tensor b = sortedParticleNorms(original.to(torch::kFloat64));
    torch::Tensor distance = (a.unsqueeze(1) - b.unsqueeze(0)).abs().amax(2);  // [B, B]
    auto [minDistance, argmin] = distance.min(1);
    std::vector<int64_t> match(paired.size(0));
    for (int64_t i = 0; i < paired.size(0); i++)
        match[i] = minDistance[i].item<double>() < tol ? argmin[i].item<int64_t>() : -1;
    return match;
}

void expectDistinctMatches(std::vector<int64_t> match) {
    for (int64_t m : match)
        ASSERT_GE(m, 0) << "a paired row matches no input row";
    std::sort(match.begin(), match.end());
    EXPECT_EQ(std::adjacent_find(match.begin(), match.end()), match.end()) << "an input row was used twice";
}

}  // namespace

TEST(LinearSumAssignment, MatchesBruteForceOnRandomMatrices) {
    for (uint64_t seed = 0; seed < 4; seed++) {
        auto gen = generator(seed);
        for (int64_t n = 1; n <= 7; n++) {
            torch::Tensor cost = torch::randn({n, n}, gen, torch::kFloat64) * 10;
            torch::Tensor perm = linearSumAssignment(cost);
            expectPermutation(perm, n);
            EXPECT_NEAR(assignmentCost(cost, perm), bruteForceMinimum(cost), 1e-10) << "seed " << seed << ", n " << n;
            // Float32 input: solved in float64 on the float32 values.
            torch::Tensor cost32 = cost.to(torch::kFloat32);
            EXPECT_NEAR(assignmentCost(cost32, linearSumAssignment(cost32)), bruteForceMinimum(cost32), 1e-10);
        }
    }
}

TEST(LinearSumAssignment, MatchesBruteForceWithTies) {
    auto gen = generator(11);
    for (int64_t n = 1; n <= 7; n++) {
        // Small integer costs: many optimal assignments.
        torch::Tensor cost = torch::randint(0, 3, {n, n}, gen, torch::kFloat64);
        torch::Tensor perm = linearSumAssignment(cost);
        expectPermutation(perm, n);
        EXPECT_DOUBLE_EQ(assignmentCost(cost, perm), bruteForceMinimum(cost)) << "n " << n;
        // Every assignment is optimal; identical rows; a rank-one (sum) matrix where all are equal too.
        torch::Tensor constant = torch::full({n, n}, 2.5, torch::kFloat64);
        expectPermutation(linearSumAssignment(constant), n);
        torch::Tensor identicalRows = torch::randn({1, n}, gen, torch::kFloat64).expand({n, n}).contiguous();
        torch::Tensor p = linearSumAssignment(identicalRows);
        expectPermutation(p, n);
        EXPECT_NEAR(assignmentCost(identicalRows, p), bruteForceMinimum(identicalRows), 1e-12);
    }
    // A known unique optimum off the diagonal.
    torch::Tensor cost = torch::tensor({4.0, 1.0, 3.0, 2.0, 0.0, 5.0, 3.0, 2.0, 2.0}, torch::kFloat64).view({3, 3});
    EXPECT_TRUE(torch::equal(linearSumAssignment(cost), torch::tensor({1, 0, 2}, torch::kInt64)));
}

TEST(LinearSumAssignment, EmptyAndInvalidInput) {
    EXPECT_EQ(linearSumAssignment(torch::zeros({0, 0}, torch::kFloat64)).numel(), 0);
    EXPECT_THROW(linearSumAssignment(torch::zeros({2, 3}, torch::kFloat64)), std::invalid_argument);
    EXPECT_THROW(linearSumAssignment(torch::zeros({3}, torch::kFloat64)), std::invalid_argument);
    EXPECT_THROW(linearSumAssignment(torch::zeros({2, 2}, torch::kInt64)), std::invalid_argument);
    EXPECT_THROW(linearSumAssignment(torch::Tensor()), std::invalid_argument);
    const double infinity = std::numeric_limits<double>::infinity();
    for (double bad : {std::numeric_limits<double>::quiet_NaN(), infinity, -infinity}) {
        torch::Tensor cost = torch::zeros({3, 3}, torch::kFloat64);
        cost[1][2] = bad;
        EXPECT_THROW(linearSumAssignment(cost), std::invalid_argument);
    }
}

TEST(KabschRotation, ReturnsProperRotations) {
    auto gen = generator(3);
    for (int64_t D : {2, 3}) {
        torch::Tensor x = centredGaussian(16, 7, D, gen), y = centredGaussian(16, 7, D, gen);
        torch::Tensor R = kabschRotation(x, y);
        ASSERT_EQ(R.sizes(), (std::vector<int64_t>{16, D, D}));
        EXPECT_LT((torch::linalg_det(R) - 1).abs().max().item<double>(), 1e-12) << "D " << D;
        EXPECT_LT((R.matmul(R.transpose(1, 2)) - torch::eye(D, torch::kFloat64)).abs().max().item<double>(), 1e-12);
        // Optimal: no worse than the identity or any of a set of random proper rotations.
        torch::Tensor best = rotationCost(x, y, R);
        EXPECT_TRUE((best <= rotationCost(x, y, torch::eye(D, torch::kFloat64).expand({16, D, D})) + 1e-12)
                        .all().item<bool>());
        for (int trial = 0; trial < 20; trial++) {
            torch::Tensor other = randomOrthogonal(D, false, gen).expand({16, D, D});
            EXPECT_TRUE((best <= rotationCost(x, y, other) + 1e-12).all().item<bool>());
        }
    }
    // Float32 in, float32 out.
    torch::Tensor x32 = centredGaussian(2, 5, 3, gen).to(torch::kFloat32);
    EXPECT_EQ(kabschRotation(x32, x32).scalar_type(), torch::kFloat32);
    EXPECT_THROW(kabschRotation(torch::zeros({2, 5, 1}), torch::zeros({2, 5, 1})), std::invalid_argument);
    EXPECT_THROW(kabschRotation(torch::zeros({2, 5, 3}), torch::zeros({2, 4, 3})), std::invalid_argument);
}

TEST(KabschRotation, RecoversAKnownRotation) {
    auto gen = generator(5);
    for (int64_t D : {2, 3, 4}) {
        const int64_t B = 6;
        torch::Tensor x = centredGaussian(B, 9, D, gen);
        std::vector<torch::Tensor> rotations;
        for (int64_t b = 0; b < B; b++)
            rotations.push_back(randomOrthogonal(D, false, gen));
        torch::Tensor R = torch::stack(rotations);
        torch::Tensor y = x.matmul(R.transpose(1, 2));
        EXPECT_LT((kabschRotation(x, y) - R).abs().max().item<double>(), 1e-10) << "D " << D;
    }
}

TEST(KabschRotation, NeverReturnsAReflection) {
    auto gen = generator(7);
    for (int64_t D : {2, 3}) {
        const int64_t B = 8;
        torch::Tensor x = centredGaussian(B, 6, D, gen);
        std::vector<torch::Tensor> reflections;
        for (int64_t b = 0; b < B; b++)
            reflections.push_back(randomOrthogonal(D, true, gen));
        torch::Tensor Q = torch::stack(reflections);
        torch::Tensor y = x.matmul(Q.transpose(1, 2));  // a mirror image: the best orthogonal map is Q, det -1
        torch::Tensor R = kabschRotation(x, y);
        EXPECT_LT((torch::linalg_det(R) - 1).abs().max().item<double>(), 1e-12) << "D " << D;
        torch::Tensor cost = rotationCost(x, y, R);
        EXPECT_TRUE((cost <= rotationCost(x, y, torch::eye(D, torch::kFloat64).expand({B, D, D})) + 1e-12)
                        .all().item<bool>());
        // The reflection itself would fit exactly; a proper rotation cannot.
        EXPECT_GT(cost.min().item<double>(), 1e-6);
    }
}

TEST(PairPriorWithData, IndependentLeavesX0Unchanged) {
    auto gen = generator(13);
    torch::Tensor x0 = centredGaussian(8, 4, 2, gen), x1 = centredGaussian(8, 4, 2, gen);
    PairingResult r = pairPriorWithData(x0, x1, Pairing::Independent);
    EXPECT_TRUE(torch::equal(r.x0, x0));
    EXPECT_NEAR(r.meanCost, (x0 - x1).pow(2).sum({1, 2}).mean().item<double>(), 1e-12);
}

TEST(PairPriorWithData, MinibatchOTPermutesRowsAndLowersTheCost) {
    auto gen = generator(17);
    for (auto [N, D] : std::vector<std::pair<int64_t, int64_t>>{{4, 2}, {13, 3}}) {
        const int64_t B = 64;
        torch::Tensor x0 = centredGaussian(B, N, D, gen), x1 = centredGaussian(B, N, D, gen);
        PairingResult independent = pairPriorWithData(x0, x1, Pairing::Independent);
        PairingResult ot = pairPriorWithData(x0, x1, Pairing::MinibatchOT);
        // Every output row is exactly one input row, each used once.
        torch::Tensor distance = (ot.x0.reshape({B, 1, -1}) - x0.reshape({1, B, -1})).abs().amax(2);
        auto [minDistance, source] = distance.min(1);
        EXPECT_EQ(minDistance.max().item<double>(), 0.0);
        expectPermutation(source, B);
        EXPECT_NEAR(ot.meanCost, (ot.x0 - x1).pow(2).sum({1, 2}).mean().item<double>(), 1e-10);
        EXPECT_LT(ot.meanCost, 0.95 * independent.meanCost) << "N " << N << ", D " << D;
        // Optimal among row permutations: no random reordering does better.
        for (int trial = 0; trial < 20; trial++) {
            torch::Tensor shuffled = x0.index_select(0, torch::randperm(B, gen, torch::kInt64));
            EXPECT_LE(ot.meanCost, (shuffled - x1).pow(2).sum({1, 2}).mean().item<double>() + 1e-12);
        }
    }
}

TEST(PairPriorWithData, EquivariantOTRotatesAndPermutesWithALowerCost) {
    auto gen = generator(19);
    for (auto [N, D] : std::vector<std::pair<int64_t, int64_t>>{{4, 2}, {13, 3}}) {
        const int64_t B = 64;
        torch::Tensor x0 = centredGaussian(B, N, D, gen), x1 = centredGaussian(B, N, D, gen);
        PairingResult ot = pairPriorWithData(x0, x1, Pairing::MinibatchOT);
        const auto start = std::chrono::steady_clock::now();
        PairingResult eot = pairPriorWithData(x0, x1, Pairing::EquivariantOT);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::printf("[ timing   ] equivariant OT pairing, B = %lld, N = %lld, D = %lld: %.1f ms\n", (long long)B,
                    (long long)N, (long long)D, 1e3 * seconds);
        ASSERT_EQ(eot.x0.sizes(), x0.sizes());
        ASSERT_EQ(eot.x0.scalar_type(), torch::kFloat64);
        // Rotations and permutations keep each row's particle norms: every output row is one input
        // row moved, each used once (norms of random data are distinct).
        expectDistinctMatches(matchRowsByInvariants(eot.x0, x0, 1e-10));
        EXPECT_LT(eot.x0.mean(1).abs().max().item<double>(), 1e-12);
        EXPECT_NEAR(eot.meanCost, (eot.x0 - x1).pow(2).sum({1, 2}).mean().item<double>(), 1e-10);
        EXPECT_LE(eot.meanCost, ot.meanCost + 1e-10);
        EXPECT_LT(eot.meanCost, 0.95 * ot.meanCost) << "N " << N << ", D " << D;
    }
}

TEST(PairPriorWithData, EquivariantOTUndoesParticlePermutations) {
    // x1 = a row-shuffled, particle-permuted copy of x0: equivariant OT pairs with zero cost,
    // minibatch OT cannot. (Not rotated as well: the permutation is chosen before the rotation, on
    // the unrotated positions, so a large rotation combined with a permutation need not be undone.)
    auto gen = generator(23);
    const int64_t B = 10, N = 6, D = 3;
    torch::Tensor x0 = centredGaussian(B, N, D, gen);
    torch::Tensor rows = torch::randperm(B, gen, torch::kInt64);
    std::vector<torch::Tensor> moved;
    for (int64_t b = 0; b < B; b++)
        moved.push_back(x0[rows[b].item<int64_t>()].index_select(0, torch::randperm(N, gen, torch::kInt64)));
    torch::Tensor x1 = torch::stack(moved);
    EXPECT_LT(pairPriorWithData(x0, x1, Pairing::EquivariantOT).meanCost, 1e-20);
    EXPECT_GT(pairPriorWithData(x0, x1, Pairing::MinibatchOT).meanCost, 1.0);
    // A rotated copy without permutation is undone too (for a small rotation the identity stays the
    // best permutation).
    torch::Tensor smallRotation = torch::tensor({std::cos(0.05), -std::sin(0.05), 0.0, std::sin(0.05), std::cos(0.05),
                                                 0.0, 0.0, 0.0, 1.0}, torch::kFloat64).view({3, 3});
    EXPECT_LT(pairPriorWithData(x0, x0.matmul(smallRotation.t()), Pairing::EquivariantOT).meanCost, 1e-20);
}

TEST(PairPriorWithData, ParticleTypesRestrictPermutations) {
    auto gen = generator(29);
    const int64_t B = 12, N = 6, D = 3;
    torch::Tensor types = torch::tensor({0, 1, 0, 1, 0, 1}, torch::kInt64);
    torch::Tensor x0 = centredGaussian(B, N, D, gen), x1 = centredGaussian(B, N, D, gen);
    PairingResult typed = pairPriorWithData(x0, x1, Pairing::EquivariantOT, types);
    // Each output row is an input row whose type-0 particles stayed type-0 particles (and so for
    // type 1): the sorted norms of each type block match the input row's.
    std::vector<int64_t> match = matchRowsByInvariants(typed.x0, x0, 1e-10);
    expectDistinctMatches(match);
    for (int64_t type : {0, 1}) {
        torch::Tensor block = torch::nonzero(types == type).flatten();
        torch::Tensor outputNorms = sortedParticleNorms(typed.x0.index_select(1, block));
        torch::Tensor inputNorms = sortedParticleNorms(x0.index_select(1, block));
        for (int64_t i = 0; i < B; i++)
            EXPECT_LT((outputNorms[i] - inputNorms[match[i]]).abs().max().item<double>(), 1e-10)
                << "row " << i << " mixed the types";
    }
    // The restriction costs something on random data; without types the mixing is free to lower it.
    PairingResult untyped = pairPriorWithData(x0, x1, Pairing::EquivariantOT);
    EXPECT_LT(untyped.meanCost, typed.meanCost - 1e-6);
    // A single type (or an empty tensor) is the same as no types.
    EXPECT_TRUE(torch::allclose(pairPriorWithData(x0, x1, Pairing::EquivariantOT, torch::zeros({N}, torch::kInt64)).x0,
                                untyped.x0, 0, 1e-12));
    EXPECT_TRUE(torch::allclose(pairPriorWithData(x0, x1, Pairing::EquivariantOT, torch::empty({0}, torch::kInt64)).x0,
                                untyped.x0, 0, 1e-12));

    // A copy of x0 with particles 0 and 1 (different types) swapped: exact without types, impossible
    // with them.
    torch::Tensor swap = torch::tensor({1, 0, 2, 3, 4, 5}, torch::kInt64);
    torch::Tensor swapped = x0.index_select(1, swap);
    EXPECT_LT(pairPriorWithData(x0, swapped, Pairing::EquivariantOT).meanCost, 1e-20);
    EXPECT_GT(pairPriorWithData(x0, swapped, Pairing::EquivariantOT, types).meanCost, 1e-3);

    EXPECT_THROW(pairPriorWithData(x0, x1, Pairing::EquivariantOT, torch::zeros({N - 1}, torch::kInt64)),
                 std::invalid_argument);
    EXPECT_THROW(pairPriorWithData(x0, x1, Pairing::EquivariantOT, torch::zeros({N}, torch::kFloat64)),
                 std::invalid_argument);
}

TEST(PairPriorWithData, KeepsTheDtypeAndRejectsMismatches) {
    auto gen = generator(31);
    torch::Tensor x0 = centredGaussian(8, 5, 3, gen), x1 = centredGaussian(8, 5, 3, gen);
    for (Pairing pairing : {Pairing::Independent, Pairing::MinibatchOT, Pairing::EquivariantOT}) {
        PairingResult r = pairPriorWithData(x0.to(torch::kFloat32), x1.to(torch::kFloat32), pairing);
        EXPECT_EQ(r.x0.scalar_type(), torch::kFloat32) << pairingName(pairing);
        EXPECT_NEAR(r.meanCost, pairPriorWithData(x0, x1, pairing).meanCost, 1e-4) << pairingName(pairing);
    }
    EXPECT_THROW(pairPriorWithData(x0, x1.to(torch::kFloat32), Pairing::MinibatchOT), std::invalid_argument);
    EXPECT_THROW(pairPriorWithData(x0, x1.narrow(1, 0, 4), Pairing::MinibatchOT), std::invalid_argument);
    EXPECT_THROW(pairPriorWithData(x0.narrow(0, 0, 0), x1.narrow(0, 0, 0), Pairing::MinibatchOT),
                 std::invalid_argument);
}

TEST(PairingNames, RoundTripAndRejectUnknown) {
    for (Pairing pairing : {Pairing::Independent, Pairing::MinibatchOT, Pairing::EquivariantOT})
        EXPECT_EQ(pairingFromString(pairingName(pairing)), pairing);
    EXPECT_EQ(pairingName(Pairing::Independent), "independent");
    EXPECT_EQ(pairingName(Pairing::MinibatchOT), "ot");
    EXPECT_EQ(pairingName(Pairing::EquivariantOT), "equivariant-ot");
    try {
        pairingFromString("foo");
        FAIL() << "\"foo\" was accepted";
    } catch (const std::invalid_argument& e) {
        const std::string message = e.what();
        for (const char* accepted : {"independent", "\"ot\"", "equivariant-ot", "foo"})
            EXPECT_NE(message.find(accepted), std::string::npos) << message;
    }
}
