// Base densities are normalised: the CoM-free Gaussian on the zero-CoM subspace (quadrature in an
// orthonormal chart) and the conditional Gaussian of the augmented variables.
#include "FlowTestUtils.h"

#include <cmath>

using namespace OpenMMBG;
using namespace OpenMMBG::testing;

TEST(CentreOfMassFreeGaussian, NormalisedOnTheZeroComSubspace) {
    // N = 3 particles in D = 1: the subspace is 2-D; integrate on a grid in an orthonormal basis.
    torch::Tensor Q = zeroComBasis(3, 1);  // [3, 2]
    const int n = 201;
    const double L = 8.0, h = 2 * L / (n - 1);
    torch::Tensor g = torch::linspace(-L, L, n, torch::kFloat64);
    auto grid = torch::meshgrid({g, g}, "ij");
    torch::Tensor u = torch::stack({grid[0].reshape(-1), grid[1].reshape(-1)}, 1);  // [n^2, 2]
    torch::Tensor x = torch::matmul(u, Q.t()).view({-1, 3, 1});
    double integral = torch::exp(CentreOfMassFreeGaussian::logProb(x)).sum().item<double>() * h * h;
    EXPECT_NEAR(integral, 1.0, 1e-6);
}

TEST(CentreOfMassFreeGaussian, SamplesHaveZeroMeanAndUnitVarianceInTheSubspace) {
    auto gen = generator(1);
    torch::Tensor x = CentreOfMassFreeGaussian::sample(20000, 4, 3, gen, torch::kFloat64);
    EXPECT_LT(x.mean(1).abs().max().item<double>(), 1e-12);
    // E|x|^2 = (N - 1) D = 9; the standard error of the mean of |x|^2 is sqrt(2 * 9 / 20000) ~ 0.03.
    EXPECT_NEAR((x * x).sum({1, 2}).mean().item<double>(), 9.0, 0.15);
}

TEST(AugmentedGaussian, NormalisedAndCentredOnX) {
    AugmentedGaussian pi{0.3};
    // One particle, one augmented set, D = 1: integrate over a on a grid.
    torch::Tensor x = torch::full({1, 1, 1}, 0.7, torch::kFloat64);
    const int n = 4001;
    torch::Tensor g = torch::linspace(-5, 5, n, torch::kFloat64);
    torch::Tensor a = g.view({n, 1, 1, 1});
    double integral = torch::exp(pi.logProb(a, x.expand({n, 1, 1}))).sum().item<double>() * (10.0 / (n - 1));
    EXPECT_NEAR(integral, 1.0, 1e-9);
    auto gen = generator(2);
    torch::Tensor draws = pi.sample(x.expand({50000, 1, 1}), 3, gen);
    EXPECT_NEAR(draws.mean().item<double>(), 0.7, 0.01);
    EXPECT_NEAR(draws.std().item<double>(), 0.3, 0.01);
}
