// Rational-quadratic splines (ordinary and circular) and the affine transform: identity at zero
// parameters, monotonicity, boundary behaviour, inverse round trip and log-derivatives.
#include "FlowTestUtils.h"
#include "openmmbg/transforms/ScalarTransforms.h"

#include <cmath>

using namespace OpenMMBG;
using namespace OpenMMBG::testing;

namespace {

torch::Tensor randomParams(int64_t n, int numParams, uint64_t seed, double scale = 1.5) {
    auto gen = generator(seed);
    return scale * torch::randn({n, numParams}, gen, torch::kFloat64);
}

}  // namespace

TEST(RationalQuadraticSpline, ZeroParametersGiveIdentity) {
    RationalQuadraticSpline s(0.0, 10.0, 8);
    torch::Tensor x = torch::linspace(-2.0, 12.0, 57, torch::kFloat64);
    auto [y, logd] = s.apply(x, torch::zeros({57, s.numParams()}, torch::kFloat64), false);
    EXPECT_LT((y - x).abs().max().item<double>(), 1e-12);
    EXPECT_LT(logd.abs().max().item<double>(), 1e-12);
}

TEST(RationalQuadraticSpline, MonotoneWithFixedBoundariesAndLinearTails) {
    RationalQuadraticSpline s(-3.0, 5.0, 8);
    const int64_t n = 2001;
    torch::Tensor params = randomParams(1, s.numParams(), 1).expand({n, s.numParams()});
    torch::Tensor x = torch::linspace(-6.0, 8.0, n, torch::kFloat64);
    auto [y, logd] = s.apply(x, params, false);
    torch::Tensor dy = y.narrow(0, 1, n - 1) - y.narrow(0, 0, n - 1);
    EXPECT_GT(dy.min().item<double>(), 0.0) << "spline is not strictly increasing";
    // The boundaries map onto themselves.
    torch::Tensor ends = torch::tensor({-3.0, 5.0}, torch::kFloat64);
    auto [yEnds, unused] = s.apply(ends, params.narrow(0, 0, 2), false);
    EXPECT_NEAR(yEnds[0].item<double>(), -3.0, 1e-12);
    EXPECT_NEAR(yEnds[1].item<double>(), 5.0, 1e-12);
    // Outside: linear, with the boundary slopes (constant log-derivative there).
    torch::Tensor below = logd.masked_select(x < -3.0), above = logd.masked_select(x > 5.0);
    EXPECT_LT((below - below[0]).abs().max().item<double>(), 1e-12);
    EXPECT_LT((above - above[0]).abs().max().item<double>(), 1e-12);
}

TEST(RationalQuadraticSpline, InverseRoundTripAndLogDerivativeMatchAutograd) {
    for (bool circular : {false, true}) {
        RationalQuadraticSpline s(-M_PI, M_PI, 8, circular);
        const int64_t n = 500;
        auto gen = generator(2);
        torch::Tensor params = randomParams(n, s.numParams(), 3);
        torch::Tensor x = (torch::rand({n}, gen, torch::kFloat64) * 2 - 1) * 4.0;  // includes the tails
        torch::Tensor xg = x.clone().requires_grad_(true);
        auto [y, logd] = s.apply(xg, params, false);
        torch::Tensor grad = torch::autograd::grad({y.sum()}, {xg})[0];
        EXPECT_LT((torch::log(grad) - logd).abs().max().item<double>(), 1e-9) << "circular=" << circular;
        auto [xBack, logInv] = s.apply(y.detach(), params, true);
        EXPECT_LT((xBack - x).abs().max().item<double>(), 1e-9) << "circular=" << circular;
        EXPECT_LT((logInv + logd.detach()).abs().max().item<double>(), 1e-9) << "circular=" << circular;
    }
}

TEST(RationalQuadraticSpline, CircularSplineIsSmoothAcrossThePeriod) {
    RationalQuadraticSpline circ(-M_PI, M_PI, 8, true), plain(-M_PI, M_PI, 8, false);
    torch::Tensor params = randomParams(2, circ.numParams(), 4);
    torch::Tensor ends = torch::tensor({-M_PI, M_PI}, torch::kFloat64);
    auto [y, logd] = circ.apply(ends, params.narrow(0, 0, 1).expand({2, circ.numParams()}), false);
    EXPECT_NEAR(y[0].item<double>(), -M_PI, 1e-12);
    EXPECT_NEAR(y[1].item<double>(), M_PI, 1e-12);
    // The slope at the end equals the slope at the start, so the map of the circle is C1.
    EXPECT_NEAR(logd[0].item<double>(), logd[1].item<double>(), 1e-12);
    auto [yp, logdp] = plain.apply(ends, params.narrow(0, 0, 1).expand({2, plain.numParams()}), false);
    EXPECT_GT(std::abs(logdp[0].item<double>() - logdp[1].item<double>()), 1e-3)
        << "the non-circular spline should not tie the end slopes";
}

TEST(AffineTransform, IdentityInverseAndLogDerivative) {
    AffineTransform t;
    torch::Tensor x = torch::linspace(-3, 3, 11, torch::kFloat64);
    auto [y0, l0] = t.apply(x, torch::zeros({11, 2}, torch::kFloat64), false);
    EXPECT_LT((y0 - x).abs().max().item<double>(), 1e-12);
    EXPECT_LT(l0.abs().max().item<double>(), 1e-12);
    torch::Tensor params = randomParams(11, 2, 5);
    auto [y, l] = t.apply(x, params, false);
    torch::Tensor scale = torch::softplus(params.select(1, 0) + std::log(std::exp(1.0) - 1.0));
    EXPECT_LT((y - (x * scale + params.select(1, 1))).abs().max().item<double>(), 1e-12);
    EXPECT_LT((l - torch::log(scale)).abs().max().item<double>(), 1e-12);
    auto [xb, lb] = t.apply(y, params, true);
    EXPECT_LT((xb - x).abs().max().item<double>(), 1e-12);
    EXPECT_LT((lb + l).abs().max().item<double>(), 1e-12);
}
