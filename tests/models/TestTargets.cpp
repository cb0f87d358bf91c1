// The built-in targets (DW4, LJ13, LJ55): energies against plain double loops over the formulas of
// docs/eacf-mapping.md#target-energies, hand-computed cases, forces against finite differences, symmetries, batching,
// float32 and the factory's errors.
#include "FlowTestUtils.h"
#include "openmmbg/targets/BuiltinTargets.h"

#include <cmath>
#include <stdexcept>
#include <vector>

using namespace OpenMMBG;
using namespace OpenMMBG::testing;

namespace {

/** |x_i - x_j| for a configuration stored as x[i * D + k]. */
double distance(const std::vector<double>& x, int i, int j, int D) {
    double d2 = 0.0;
    for (int k = 0; k < D; k++) {
        double dx = x[i * D + k] - x[j * D + k];
        d2 += dx * dx;
    }
    return std::sqrt(d2);
}

/** Plain-C++ DW4 energy of one configuration x[i * D + k]: 1/(2 tau) sum over ordered pairs. */
double referenceDoubleWell(const std::vector<double>& x, int N, int D, double a = 0.0, double b = -4.0,
                           double c = 0.9, double d0 = 4.0, double tau = 1.0) {
    double sum = 0.0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            if (i == j)
                continue;
            double s = distance(x, i, j, D) - d0;
            sum += a * s + b * s * s + c * s * s * s * s;
        }
    return sum / (2.0 * tau);
}

/** Plain-C++ LJ energy: pairFactor eps / tau sum over ordered pairs + tether sum_i |x_i - xbar|^2. */
double referenceLennardJones(const std::vector<double>& x, int N, int D, double pairFactor, double eps = 1.0,
                             double rm = 1.0, double tau = 1.0, double tether = 0.5) {
    double pair = 0.0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            if (i == j)
                continue;
            double q = rm / distance(x, i, j, D);
            pair += std::pow(q, 12) - 2.0 * std::pow(q, 6);
        }
    double osc = 0.0;
    for (int k = 0; k < D; k++) {
        double mean = 0.0;
        for (int i = 0; i < N; i++)
            mean += x[i * D + k];
        mean /= N;
        for (int i = 0; i < N; i++)
            osc += (x[i * D + k] - mean) * (x[i * D + k] - mean);
    }
    return pairFactor * eps / tau * pair + tether * osc;
}

std::vector<double> row(const torch::Tensor& x, int64_t b) {
    torch::Tensor r = x[b].to(torch::kFloat64).contiguous().reshape({-1});
    return std::vector<double>(r.data_ptr<double>(), r.data_ptr<double>() + r.numel());
}

/** Random DW4-scale configurations [B, N, D] (not centred, so translations matter). */
torch::Tensor randomDoubleWellStates(int64_t B, int N, int D, torch::Generator& gen) {
    return 2.5 * torch::randn({B, N, D}, gen, torch::kFloat64) + 3.0;
}

/**
 * Random LJ-like clusters [B, N, 3]: a cubic grid of spacing 1.1 with uniform jitter of +-0.15, then a
 * random rotation and shift, so every distance is >= 0.8 and energies and forces stay moderate.
 */
torch::Tensor randomClusters(int64_t B, int N, torch::Generator& gen) {
    int side = 1;
    while (side * side * side < N)
        side++;
    std::vector<torch::Tensor> out;
    for (int64_t b = 0; b < B; b++) {
        torch::Tensor perm = torch::randperm(side * side * side, gen, torch::kLong).narrow(0, 0, N);
        torch::Tensor ii = perm.floor_divide(side * side), jj = perm.floor_divide(side).remainder(side),
                      kk = perm.remainder(side);
        torch::Tensor grid = 1.1 * torch::stack({ii, jj, kk}, 1).to(torch::kFloat64);
        grid = grid + 0.3 * (torch::rand({N, 3}, gen, torch::kFloat64) - 0.5);
        torch::Tensor R = randomOrthogonal(3, false, gen);
        out.push_back(torch::matmul(grid, R.t()) + torch::randn({1, 3}, gen, torch::kFloat64));
    }
    return torch::stack(out);
}

struct TargetCase {
    std::shared_ptr<Target> target;
    torch::Tensor x;
};

// Each built-in target with a batch of random configurations of the given sizes.
std::vector<TargetCase> builtinCases(torch::Generator& gen, int64_t dw4, int64_t lj13, int64_t lj55) {
    return {{makeBuiltinTarget("dw4"), randomDoubleWellStates(dw4, 4, 2, gen)},
            {makeBuiltinTarget("lj13"), randomClusters(lj13, 13, gen)},
            {makeBuiltinTarget("lj55"), randomClusters(lj55, 55, gen)}};
}


/** Central finite-difference forces -dU/dx of one configuration [1, N, D] (float64). */
torch::Tensor finiteDifferenceForces(Target& t, const torch::Tensor& x, double h) {
    torch::Tensor flat = x.reshape({-1});
    torch::Tensor f = torch::zeros_like(flat);
    for (int64_t i = 0; i < flat.numel(); i++) {
        torch::Tensor xp = flat.clone(), xm = flat.clone();
        xp[i] += h;
        xm[i] -= h;
        double ep = t.energy(xp.view_as(x)).item<double>(), em = t.energy(xm.view_as(x)).item<double>();
        f[i] = -(ep - em) / (2 * h);
    }
    return f.view_as(x);
}

double maxRelDiff(const torch::Tensor& a, const torch::Tensor& b) {
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item<double>();
}

}  // namespace

TEST(BuiltinTargets, FactoryNamesShapesAndUnknownName) {
    auto dw4 = makeBuiltinTarget("dw4");
    EXPECT_EQ(dw4->name(), "dw4");
    EXPECT_EQ(dw4->numParticles(), 4);
    EXPECT_EQ(dw4->dim(), 2);
    auto lj13 = makeBuiltinTarget("lj13");
    EXPECT_EQ(lj13->name(), "lj13");
    EXPECT_EQ(lj13->numParticles(), 13);
    EXPECT_EQ(lj13->dim(), 3);
    auto lj55 = makeBuiltinTarget("lj55");
    EXPECT_EQ(lj55->name(), "lj55");
    EXPECT_EQ(lj55->numParticles(), 55);
    EXPECT_EQ(lj55->dim(), 3);
    EXPECT_EQ(std::dynamic_pointer_cast<LennardJonesTarget>(lj13)->pairFactor(), LennardJonesTarget::kDefaultPairFactor);
    EXPECT_EQ(LennardJonesTarget(13, 0.5).name(), "lennard-jones");
    EXPECT_EQ(LennardJonesTarget(13, 1.0).name(), "lj13");

    try {
        makeBuiltinTarget("qm9");
        FAIL() << "expected std::invalid_argument";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("qm9"), std::string::npos) << e.what();
    }
    EXPECT_THROW(makeBuiltinTarget("LJ13"), std::invalid_argument);
    EXPECT_THROW(makeBuiltinTarget(""), std::invalid_argument);
}

TEST(BuiltinTargets, RejectsBadShapesAndIntegerInput) {
    auto dw4 = makeBuiltinTarget("dw4");
    EXPECT_THROW(dw4->energy(torch::zeros({2, 4, 3}, torch::kFloat64)), std::invalid_argument);
    EXPECT_THROW(dw4->energy(torch::zeros({4, 2}, torch::kFloat64)), std::invalid_argument);
    EXPECT_THROW(dw4->energy(torch::zeros({2, 4, 2}, torch::kLong)), std::invalid_argument);
    auto lj13 = makeBuiltinTarget("lj13");
    EXPECT_THROW(lj13->energy(torch::zeros({2, 12, 3}, torch::kFloat64)), std::invalid_argument);
}

TEST(BuiltinTargets, DoubleWellMatchesPlainLoops) {
    auto gen = generator(11);
    torch::Tensor x = randomDoubleWellStates(16, 4, 2, gen);
    torch::Tensor e = makeBuiltinTarget("dw4")->energy(x);
    ASSERT_EQ(e.sizes(), (std::vector<int64_t>{16}));
    ASSERT_EQ(e.scalar_type(), torch::kFloat64);
    for (int64_t b = 0; b < 16; b++) {
        double ref = referenceDoubleWell(row(x, b), 4, 2);
        EXPECT_NEAR(e[b].item<double>(), ref, 1e-10 * std::max(1.0, std::abs(ref))) << "b = " << b;
    }
    // Non-default parameters (a != 0, tau != 1, 3-D, 5 particles) exercise every term.
    DoubleWellTarget t(5, 3, 0.3, -2.0, 0.5, 2.5, 1.7);
    EXPECT_EQ(t.name(), "double-well");
    torch::Tensor y = randomDoubleWellStates(8, 5, 3, gen);
    torch::Tensor ey = t.energy(y);
    for (int64_t b = 0; b < 8; b++) {
        double ref = referenceDoubleWell(row(y, b), 5, 3, 0.3, -2.0, 0.5, 2.5, 1.7);
        EXPECT_NEAR(ey[b].item<double>(), ref, 1e-10 * std::max(1.0, std::abs(ref))) << "b = " << b;
    }
}

TEST(BuiltinTargets, LennardJonesMatchesPlainLoops) {
    auto gen = generator(12);
    for (int N : {13, 55}) {
        torch::Tensor x = randomClusters(6, N, gen);
        torch::Tensor e = makeBuiltinTarget("lj" + std::to_string(N))->energy(x);
        ASSERT_EQ(e.sizes(), (std::vector<int64_t>{6}));
        for (int64_t b = 0; b < 6; b++) {
            double ref = referenceLennardJones(row(x, b), N, 3, LennardJonesTarget::kDefaultPairFactor);
            EXPECT_NEAR(e[b].item<double>(), ref, 1e-10 * std::abs(ref)) << "N = " << N << ", b = " << b;
        }
    }
    // The other convention and non-default constants.
    torch::Tensor x = randomClusters(6, 13, gen);
    LennardJonesTarget other(13, 0.5, 1.3, 1.1, 0.8, 0.25);
    torch::Tensor e = other.energy(x);
    for (int64_t b = 0; b < 6; b++) {
        double ref = referenceLennardJones(row(x, b), 13, 3, 0.5, 1.3, 1.1, 0.8, 0.25);
        EXPECT_NEAR(e[b].item<double>(), ref, 1e-10 * std::abs(ref)) << "b = " << b;
    }
}

TEST(BuiltinTargets, DoubleWellSquareOfSideD0) {
    // Square of side 4 = d0: the four edges sit at s = d - d0 = 0 (zero), the two diagonals at
    // s = 4 (sqrt 2 - 1) contribute b s^2 + c s^4 each.
    torch::Tensor x = torch::tensor({0.0, 0.0, 4.0, 0.0, 4.0, 4.0, 0.0, 4.0}, torch::kFloat64).view({1, 4, 2});
    double s = 4.0 * (std::sqrt(2.0) - 1.0);
    double expected = 2.0 * (-4.0 * s * s + 0.9 * s * s * s * s);  // = -8.396643...
    EXPECT_NEAR(expected, -8.396643, 1e-6);
    EXPECT_NEAR(makeBuiltinTarget("dw4")->energy(x).item<double>(), expected, 1e-12);
    // All four particles on one point: s = -4 for all six pairs.
    torch::Tensor z = torch::zeros({1, 4, 2}, torch::kFloat64);
    EXPECT_NEAR(makeBuiltinTarget("dw4")->energy(z).item<double>(), 6 * (-4.0 * 16 + 0.9 * 256), 1e-12);
}

TEST(BuiltinTargets, LennardJonesDimerAtMinimum) {
    // Dimer at d = rm = 1 along x: pair energy -2 eps with pairFactor 1.0 (the default: each pair twice,
    // as the LJ13 data), -eps with pairFactor 0.5; tether 0.5 * (0.5^2 + 0.5^2) = 0.25.
    torch::Tensor x = torch::tensor({-0.5, 0.0, 0.0, 0.5, 0.0, 0.0}, torch::kFloat64).view({1, 2, 3});
    EXPECT_EQ(LennardJonesTarget::kDefaultPairFactor, 1.0);
    EXPECT_NEAR(LennardJonesTarget(2).energy(x).item<double>(), -2.0 + 0.25, 1e-14);
    EXPECT_NEAR(LennardJonesTarget(2, 0.5).energy(x).item<double>(), -1.0 + 0.25, 1e-14);
    EXPECT_NEAR(LennardJonesTarget(2, 1.0).energy(x).item<double>(), -2.0 + 0.25, 1e-14);
    // The pair force vanishes at the minimum; only the tether pulls each particle to the centre.
    auto [e, f] = LennardJonesTarget(2).energyAndForces(x);
    torch::Tensor expected = torch::tensor({0.5, 0.0, 0.0, -0.5, 0.0, 0.0}, torch::kFloat64).view({1, 2, 3});
    EXPECT_LT((f - expected).abs().max().item<double>(), 1e-12);
    // eps, rm and tau scale as they should: d = rm = 2, eps = 3, tau = 1.5, no tether.
    torch::Tensor y = 2.0 * x;
    EXPECT_NEAR(LennardJonesTarget(2, 0.5, 3.0, 2.0, 1.5, 0.0).energy(y).item<double>(), -2.0, 1e-13);
}

TEST(BuiltinTargets, ForcesMatchFiniteDifferences) {
    auto gen = generator(13);
    std::vector<TargetCase> cases = builtinCases(gen, 3, 3, 1);
    cases.push_back({std::make_shared<LennardJonesTarget>(13, 0.5), randomClusters(2, 13, gen)});
    for (auto& c : cases) {
        auto [e, f] = c.target->energyAndForces(c.x);
        ASSERT_EQ(f.sizes(), c.x.sizes());
        EXPECT_LT(maxRelDiff(e, c.target->energy(c.x)), 1e-14);
        for (int64_t b = 0; b < c.x.size(0); b++) {
            torch::Tensor fd = finiteDifferenceForces(*c.target, c.x.narrow(0, b, 1), 1e-5);
            EXPECT_LT(maxRelDiff(f.narrow(0, b, 1), fd), 1e-6) << c.target->name() << ", b = " << b;
        }
    }
}

TEST(BuiltinTargets, EnergyIsDifferentiableInsideAGraph) {
    // Gradients flow back through an upstream operation (as in training), including second order.
    auto gen = generator(14);
    torch::Tensor x0 = randomClusters(2, 13, gen);
    torch::Tensor scale = torch::ones({1}, torch::kFloat64).requires_grad_(true);
    auto lj13 = makeBuiltinTarget("lj13");
    torch::Tensor e = lj13->energy(x0 * scale).sum();
    torch::Tensor g = torch::autograd::grad({e}, {scale}, {}, true, true)[0];
    // dU/dscale at scale = 1 is sum x . dU/dx = -sum x . F.
    auto [unused, f] = lj13->energyAndForces(x0);
    EXPECT_NEAR(g.item<double>(), -(x0 * f).sum().item<double>(), 1e-9 * std::abs(g.item<double>()));
    torch::Tensor g2 = torch::autograd::grad({g.sum()}, {scale})[0];
    EXPECT_TRUE(std::isfinite(g2.item<double>()));
}

TEST(BuiltinTargets, ForcesUnderNoGradGuard) {
    // Samplers call energyAndForces with gradients off (NoGradGuard); forces must still come back.
    auto gen = generator(16);
    torch::Tensor x = randomClusters(2, 13, gen);
    auto lj13 = makeBuiltinTarget("lj13");
    auto [e0, f0] = lj13->energyAndForces(x);
    torch::NoGradGuard guard;
    auto [e1, f1] = lj13->energyAndForces(x);
    EXPECT_TRUE(torch::equal(e0, e1));
    EXPECT_TRUE(torch::equal(f0, f1));
}

TEST(BuiltinTargets, TranslationRotationAndPermutationInvariance) {
    auto gen = generator(15);
    std::vector<TargetCase> cases = builtinCases(gen, 8, 4, 2);
    for (auto& c : cases) {
        const int64_t N = c.target->numParticles(), D = c.target->dim();
        torch::Tensor e = c.target->energy(c.x);
        torch::Tensor shift = 5.0 * torch::randn({c.x.size(0), 1, D}, gen, torch::kFloat64);
        EXPECT_LT(maxRelDiff(c.target->energy(c.x + shift), e), 1e-12) << c.target->name() << ": translation";
        for (bool reflect : {false, true}) {
            torch::Tensor R = randomOrthogonal(D, reflect, gen);
            EXPECT_LT(maxRelDiff(c.target->energy(torch::matmul(c.x, R.t())), e), 1e-12)
                << c.target->name() << (reflect ? ": reflection" : ": rotation");
        }
        torch::Tensor perm = torch::randperm(N, gen, torch::kLong);
        EXPECT_LT(maxRelDiff(c.target->energy(c.x.index_select(1, perm)), e), 1e-12) << c.target->name()
                                                                                       << ": permutation";
    }
}

TEST(BuiltinTargets, BatchEqualsOneAtATime) {
    auto gen = generator(16);
    std::vector<TargetCase> cases = builtinCases(gen, 7, 5, 3);
    for (auto& c : cases) {
        auto [e, f] = c.target->energyAndForces(c.x);
        for (int64_t b = 0; b < c.x.size(0); b++) {
            auto [eb, fb] = c.target->energyAndForces(c.x.narrow(0, b, 1));
            EXPECT_NEAR(eb.item<double>(), e[b].item<double>(), 1e-12 * std::max(1.0, std::abs(eb.item<double>())));
            EXPECT_LT(maxRelDiff(fb[0], f[b]), 1e-12) << c.target->name() << ", b = " << b;
        }
        // An empty batch gives empty outputs.
        EXPECT_EQ(c.target->energy(c.x.narrow(0, 0, 0)).numel(), 0);
    }
}

TEST(BuiltinTargets, Float32) {
    auto gen = generator(17);
    std::vector<TargetCase> cases = builtinCases(gen, 8, 4, 2);
    for (auto& c : cases) {
        torch::Tensor x32 = c.x.to(torch::kFloat32);
        auto [e32, f32] = c.target->energyAndForces(x32);
        EXPECT_EQ(e32.scalar_type(), torch::kFloat32);
        EXPECT_EQ(f32.scalar_type(), torch::kFloat32);
        // Compare with float64 at the float32-rounded positions.
        auto [e64, f64] = c.target->energyAndForces(x32.to(torch::kFloat64));
        EXPECT_LT(maxRelDiff(e32.to(torch::kFloat64), e64), 1e-4) << c.target->name();
        EXPECT_LT(maxRelDiff(f32.to(torch::kFloat64), f64), 1e-4) << c.target->name();
    }
}

TEST(BuiltinTargets, FollowsTheInputDevice) {
    if (!torch::cuda::is_available())
        GTEST_SKIP() << "no CUDA device";
    auto gen = generator(18);
    for (const char* name : {"dw4", "lj13", "lj55"}) {
        auto t = makeBuiltinTarget(name);
        torch::Tensor x = t->name() == "dw4" ? randomDoubleWellStates(4, 4, 2, gen)
                                             : randomClusters(4, t->numParticles(), gen);
        auto [e, f] = t->energyAndForces(x.to(torch::kCUDA));
        EXPECT_TRUE(e.is_cuda());
        EXPECT_TRUE(f.is_cuda());
        auto [ec, fc] = t->energyAndForces(x);
        EXPECT_LT(maxRelDiff(e.cpu(), ec), 1e-12) << name;
        EXPECT_LT(maxRelDiff(f.cpu(), fc), 1e-10) << name;
    }
}
