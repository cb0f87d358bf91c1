// The whole flow: joint-density invariance under rotation, translation and permutation (and
// reflection for Vector-proj), sample/log_prob agreement, the marginal estimator, the auxiliary
// loss and float32 support.
#include "FlowTestUtils.h"

#include <cmath>

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

class FlowTest : public ::testing::TestWithParam<Case> {
protected:
    void SetUp() override {
        config = smallConfig(GetParam().dim, GetParam().projection, GetParam().numAug, 5);
        flow = AugmentedCouplingFlow(config);
    }
    FlowConfig config;
    AugmentedCouplingFlow flow{nullptr};
};

// Apply x -> x Q^T + t and a permutation of the particles, to x [B, N, D] and a [B, N, A, D].
std::pair<torch::Tensor, torch::Tensor> transform(const torch::Tensor& x, const torch::Tensor& a, const torch::Tensor& Q,
                                                  const torch::Tensor& t, const torch::Tensor& perm) {
    torch::Tensor x2 = torch::matmul(x, Q.t()) + t;
    torch::Tensor a2 = torch::matmul(a, Q.t()) + t;
    return {x2.index_select(1, perm), a2.index_select(1, perm)};
}

}  // namespace

TEST_P(FlowTest, JointDensityIsInvariantUnderTheSymmetryGroup) {
    torch::NoGradGuard guard;
    auto gen = generator(21);
    auto [x, a] = randomState(config, 6, gen);
    torch::Tensor logq = flow->logProb(x, a);
    const bool rotationEquivariant = config.projection != "none";
    torch::Tensor t = 3.0 * torch::randn({config.dim}, gen, torch::kFloat64);
    torch::Tensor perm = torch::randperm(config.numParticles, gen, torch::kLong);
    torch::Tensor Q = rotationEquivariant ? randomOrthogonal(config.dim, false, gen) : torch::eye(config.dim, torch::kFloat64);
    auto [x2, a2] = transform(x, a, Q, t, perm);
    EXPECT_LT((flow->logProb(x2, a2) - logq).abs().max().item<double>(), 1e-8)
        << "log q changed under rotation, translation and permutation";

    torch::Tensor R = randomOrthogonal(config.dim, true, gen);
    auto [x3, a3] = transform(x, a, R, t, perm);
    double reflectionChange = (flow->logProb(x3, a3) - logq).abs().max().item<double>();
    if (config.projection == "vector")
        EXPECT_LT(reflectionChange, 1e-8) << "Vector-proj must be parity equivariant";
    else
        EXPECT_GT(reflectionChange, 1e-6) << "only Vector-proj is expected to be reflection invariant";
}

TEST_P(FlowTest, SampleAndLogProbAgree) {
    torch::NoGradGuard guard;
    auto gen = generator(5);
    FlowSample s = flow->sample(16, gen);
    EXPECT_LT(s.x.mean(1).abs().max().item<double>(), 1e-10) << "samples must have zero centre of mass";
    EXPECT_LT((flow->logProb(s.x, s.a) - s.logQ).abs().max().item<double>(), 1e-7);
    EXPECT_TRUE(torch::isfinite(s.logQ).all().item<bool>());
}

TEST_P(FlowTest, AuxLossIsDefinedForFrameProjectionsIn3D) {
    auto gen = generator(6);
    auto [x, a] = randomState(config, 4, gen);
    FlowDensity d = flow->logProbWithAux(x, a);
    const bool hasAux = config.dim == 3 && (config.projection == "spherical" || config.projection == "cartesian");
    if (hasAux) {
        EXPECT_GT(d.aux.min().item<double>(), 0.0);
        EXPECT_TRUE(torch::isfinite(d.aux).all().item<bool>());
        // The loss trains the conditioner: it has a finite, non-zero gradient.
        d.aux.sum().backward();
        double gradNorm = 0;
        for (auto& p : flow->parameters())
            if (p.grad().defined())
                gradNorm += p.grad().pow(2).sum().item<double>();
        EXPECT_TRUE(std::isfinite(gradNorm));
        EXPECT_GT(gradNorm, 0.0);
    } else {
        EXPECT_EQ(d.aux.abs().max().item<double>(), 0.0);
    }
}

INSTANTIATE_TEST_SUITE_P(AllFlows, FlowTest,
                         ::testing::Values(Case{2, "spherical", 1}, Case{3, "spherical", 1}, Case{2, "cartesian", 1},
                                           Case{3, "cartesian", 1}, Case{2, "vector", 1}, Case{3, "vector", 1},
                                           Case{2, "none", 1}, Case{3, "none", 1}, Case{3, "spherical", 3},
                                           Case{3, "cartesian", 3}, Case{3, "vector", 3}),
                         caseName);

TEST(Flow, IdentityFlowMarginalIsTheBaseDensity) {
    // With identity initialisation q(x, a) = N_com(x) pi(a|x), so every importance weight equals
    // N_com(x) and the marginal estimator is exact for any K.
    FlowConfig c = smallConfig(3, "spherical", 1, 6);
    c.identityInit = true;
    AugmentedCouplingFlow flow(c);
    torch::NoGradGuard guard;
    auto gen = generator(8);
    auto [x, a] = randomState(c, 5, gen);
    torch::Tensor translated = x + 2.0;  // the estimator centres x itself
    torch::Tensor marginal = flow->marginalLogProb(translated, 7, gen);
    EXPECT_LT((marginal - CentreOfMassFreeGaussian::logProb(x)).abs().max().item<double>(), 1e-9);
}

TEST(Flow, MarginalEstimatorIsALogMeanOfImportanceWeights) {
    FlowConfig c = smallConfig(2, "vector", 1, 4);
    AugmentedCouplingFlow flow(c);
    torch::NoGradGuard guard;
    auto gen0 = generator(9);
    auto [x, a] = randomState(c, 3, gen0);
    const int K = 4;
    auto gen1 = generator(10), gen2 = generator(10);
    torch::Tensor marginal = flow->marginalLogProb(x, K, gen1, /*batchSize=*/5);
    // Recompute by hand with the same random stream.
    torch::Tensor xr = x.repeat_interleave(K, 0);
    torch::Tensor ar = flow->sampleAugmented(xr, gen2);
    torch::Tensor logw = (flow->logProb(xr, ar) - flow->logAugmentedTarget(xr, ar)).view({3, K});
    torch::Tensor expected = torch::log(torch::exp(logw).mean(1));
    EXPECT_LT((marginal - expected).abs().max().item<double>(), 1e-10);
}

TEST(Flow, Float32FlowMatchesFloat64) {
    FlowConfig c64 = smallConfig(3, "spherical", 1, 5);
    FlowConfig c32 = c64;
    c32.dtype = "float32";
    AugmentedCouplingFlow f64(c64), f32(c32);
    EXPECT_EQ(f32->parameters().front().scalar_type(), torch::kFloat32);
    torch::NoGradGuard guard;
    auto gen = generator(12);
    auto [x, a] = randomState(c64, 4, gen);
    torch::Tensor l64 = f64->logProb(x, a);
    torch::Tensor l32 = f32->logProb(x.to(torch::kFloat32), a.to(torch::kFloat32));
    EXPECT_EQ(l32.scalar_type(), torch::kFloat32);
    EXPECT_LT((l32.to(torch::kFloat64) - l64).abs().max().item<double>(), 1e-3 * (1 + l64.abs().max().item<double>()));
}

TEST(Flow, AtomTypesChangeTheDensity) {
    FlowConfig c = smallConfig(3, "spherical", 1, 4);
    FlowConfig typed = c;
    typed.atomTypes = {0, 1, 2, 1};
    AugmentedCouplingFlow plain(c), withTypes(typed);
    torch::NoGradGuard guard;
    auto gen = generator(13);
    auto [x, a] = randomState(c, 3, gen);
    // Same initialisation seed, different node embeddings: the densities differ, and permuting
    // particles of different types is no longer a symmetry.
    EXPECT_GT((plain->logProb(x, a) - withTypes->logProb(x, a)).abs().max().item<double>(), 1e-6);
    torch::Tensor swap = torch::tensor({1, 0, 2, 3}, torch::kLong);
    EXPECT_GT((withTypes->logProb(x.index_select(1, swap), a.index_select(1, swap)) - withTypes->logProb(x, a))
                  .abs().max().item<double>(), 1e-6);
    torch::Tensor sameType = torch::tensor({0, 3, 2, 1}, torch::kLong);  // particles 1 and 3 share type 1
    EXPECT_LT((withTypes->logProb(x.index_select(1, sameType), a.index_select(1, sameType)) - withTypes->logProb(x, a))
                  .abs().max().item<double>(), 1e-8);
}

TEST(Networks, PairwiseForwardEqualsForwardOfTheConcatenation) {
    torch::manual_seed(3);
    const int64_t B = 2, N = 5, F = 6, E = 2, P = 3;
    StableMLP mlp(int(2 * F + E + 2 * P), std::vector<int>{16, 16}, 4);
    mlp->to(torch::kFloat64);
    auto opts = torch::TensorOptions().dtype(torch::kFloat64);
    torch::Tensor h = torch::randn({B, N, F}, opts), edge = torch::randn({B, N, N, E}, opts);
    torch::Tensor cross = torch::randn({B, N, P}, opts);
    auto rows = [&](const torch::Tensor& t) { return t.unsqueeze(2).expand({B, N, N, t.size(-1)}); };
    auto cols = [&](const torch::Tensor& t) { return t.unsqueeze(1).expand({B, N, N, t.size(-1)}); };
    torch::Tensor expected = mlp->forward(torch::cat({rows(h), cols(h), edge, rows(cross), cols(cross)}, -1));
    using Part = StableMLPImpl::PairPart;
    torch::Tensor got = mlp->forwardPairwise(
        {{Part::Row, h}, {Part::Column, h}, {Part::Edge, edge}, {Part::Row, cross}, {Part::Column, cross}});
    ASSERT_EQ(got.sizes(), expected.sizes());
    EXPECT_LT((got - expected).abs().max().item<double>(), 1e-12);
    // Parts that do not add up to the input layer's width are refused.
    EXPECT_THROW(mlp->forwardPairwise({{Part::Row, h}, {Part::Column, h}}), c10::Error);
}
