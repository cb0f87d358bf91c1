// Every coupling type (Spherical-, Cartesian-, Vector-proj and the Non-E-ACF affine) in 2-D and
// 3-D, with random non-identity parameters: inverse round trip, and log|det J| against autograd
// Jacobians, in ambient coordinates for the couplings and in a zero-CoM chart for the shift-CoM.
#include "FlowTestUtils.h"

using namespace OpenMMBG;
using namespace OpenMMBG::testing;

namespace {

struct Case {
    int dim;
    std::string projection;
    int numAug;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.projection << " " << c.dim << "-D, " << c.numAug << " aug"; }

std::string caseName(const ::testing::TestParamInfo<Case>& info) {
    return info.param.projection + std::to_string(info.param.dim) + "D_aug" + std::to_string(info.param.numAug);
}

class CouplingTest : public ::testing::TestWithParam<Case> {
protected:
    void SetUp() override {
        config = smallConfig(GetParam().dim, GetParam().projection, GetParam().numAug);
        flow = AugmentedCouplingFlow(config);
        auto gen = generator(11);
        std::tie(x, a) = randomState(config, 1, gen);
        z = joinState(x, a);
    }
    FlowConfig config;
    AugmentedCouplingFlow flow{nullptr};
    torch::Tensor x, a, z;
};

// Check a bijector on state z in full ambient coordinates.
void checkAmbient(BijectorImpl& b, const torch::Tensor& z, const char* what) {
    BijectorOutput out = b.forward(z);
    EXPECT_GT((out.z - z).abs().max().item<double>(), 1e-3) << what << ": coupling is (nearly) the identity";
    BijectorOutput back = b.inverse(out.z);
    EXPECT_LT((back.z - z).abs().max().item<double>(), 1e-6) << what << ": inverse round trip";
    EXPECT_NEAR((out.logDet + back.logDet).item<double>(), 0.0, 1e-8) << what << ": log-dets do not cancel";
    auto shape = z.sizes().vec();
    torch::Tensor J = jacobian([&](const torch::Tensor& flat) { return b.forward(flat.view(shape)).z; }, z.reshape({-1}));
    EXPECT_NEAR(logAbsDet(J), out.logDet.item<double>(), 1e-7) << what << ": forward log-det";
    torch::Tensor Ji =
        jacobian([&](const torch::Tensor& flat) { return b.inverse(flat.view(shape)).z; }, out.z.reshape({-1}));
    EXPECT_NEAR(logAbsDet(Ji), back.logDet.item<double>(), 1e-7) << what << ": inverse log-det";
}

// Map (u, a) in the chart (x = Q u on the zero-CoM subspace, a ambient) to a state and back.
struct Chart {
    torch::Tensor Q;
    int64_t N, D, A;
    torch::Tensor toState(const torch::Tensor& flat) const {
        torch::Tensor u = flat.narrow(0, 0, (N - 1) * D);
        torch::Tensor xs = torch::matmul(Q, u).view({1, N, D});
        torch::Tensor as = flat.narrow(0, (N - 1) * D, N * A * D).view({1, N, A, D});
        return joinState(xs, as);
    }
    torch::Tensor fromState(const torch::Tensor& s) const {
        torch::Tensor u = torch::matmul(Q.t(), s.select(2, 0).reshape({-1}));
        return torch::cat({u, s.narrow(2, 1, A).reshape({-1})});
    }
};

}  // namespace

TEST_P(CouplingTest, AugmentedCouplingAmbientLogDet) {
    checkAmbient(*flow->bijectors()[0], z, "coupling of a given x");
}

TEST_P(CouplingTest, PositionCouplingAmbientLogDet) {
    auto shift = std::dynamic_pointer_cast<ShiftCentreOfMassImpl>(flow->bijectors()[1]);
    ASSERT_TRUE(shift);
    checkAmbient(*shift->innerBijector(), z, "coupling of x given a");
}

TEST_P(CouplingTest, ShiftCentreOfMassCouplingChartLogDet) {
    BijectorImpl& b = *flow->bijectors()[1];
    Chart chart{zeroComBasis(config.numParticles, config.dim), config.numParticles, config.dim, config.numAug};
    BijectorOutput out = b.forward(z);
    // x stays on the zero-CoM subspace.
    EXPECT_LT(out.z.select(2, 0).mean(1).abs().max().item<double>(), 1e-12);
    BijectorOutput back = b.inverse(out.z);
    EXPECT_LT((back.z - z).abs().max().item<double>(), 1e-6);
    torch::Tensor J = jacobian([&](const torch::Tensor& f) { return chart.fromState(b.forward(chart.toState(f)).z); },
                               chart.fromState(z));
    ASSERT_EQ(J.size(0), J.size(1));
    EXPECT_NEAR(logAbsDet(J), out.logDet.item<double>(), 1e-7);
}

TEST_P(CouplingTest, WholeFlowLogDetInZeroComChart) {
    Chart chart{zeroComBasis(config.numParticles, config.dim), config.numParticles, config.dim, config.numAug};
    BijectorOutput out = flow->forwardMap(z);
    torch::Tensor J = jacobian([&](const torch::Tensor& f) { return chart.fromState(flow->forwardMap(chart.toState(f)).z); },
                               chart.fromState(z));
    EXPECT_NEAR(logAbsDet(J), out.logDet.item<double>(), 1e-6);
    BijectorOutput back = flow->inverseMap(out.z);
    EXPECT_LT((back.z - z).abs().max().item<double>(), 1e-6);
    EXPECT_NEAR((out.logDet + back.logDet).item<double>(), 0.0, 1e-7);
}

INSTANTIATE_TEST_SUITE_P(AllCouplings, CouplingTest,
                         ::testing::Values(Case{2, "spherical", 1}, Case{3, "spherical", 1}, Case{2, "cartesian", 1},
                                           Case{3, "cartesian", 1}, Case{2, "vector", 1}, Case{3, "vector", 1},
                                           Case{2, "none", 1}, Case{3, "none", 1}, Case{3, "spherical", 3},
                                           Case{3, "vector", 3}),
                         caseName);
