// Effective-sample-size estimators: the formulas on hand-made weights, and the reverse/forward ESS
// of a flow whose density equals the target's (ESS = 1 exactly) or differs from it (ESS < 1, and
// the analytic value for a Gaussian pair).
#include "FlowTestUtils.h"
#include "openmmbg/eacf/AugmentedCouplingFlowModel.h"
#include "openmmbg/evaluation/Evaluation.h"

#include <cmath>
#include <cstdio>

using namespace OpenMMBG;
using namespace OpenMMBG::testing;

namespace {

// U(x)/kT = |x|^2 / (2 s^2) on the zero-CoM subspace.
class GaussianTarget : public Target {
public:
    GaussianTarget(int n, int d, double scale) : n(n), d(d), scale(scale) {}
    int numParticles() const override { return n; }
    int dim() const override { return d; }
    std::string name() const override { return "gaussian"; }
    torch::Tensor energy(const torch::Tensor& x) override {
        torch::Tensor c = x - x.mean(1, true);
        return 0.5 * (c * c).sum({1, 2}) / (scale * scale);
    }

private:
    int n, d;
    double scale;
};

}  // namespace

TEST(EffectiveSampleSize, Formulas) {
    EXPECT_NEAR(effectiveSampleSizeFraction(torch::zeros({10}, torch::kFloat64)), 1.0, 1e-12);
    torch::Tensor one = torch::full({10}, -1e9, torch::kFloat64);
    one[3] = 0;
    EXPECT_NEAR(effectiveSampleSizeFraction(one), 0.1, 1e-12);
    // Two weights 1 and 3: Kish ESS = (1 + 3)^2 / (1 + 9) = 1.6 of 2.
    torch::Tensor two = torch::log(torch::tensor({1.0, 3.0}, torch::kFloat64));
    EXPECT_NEAR(effectiveSampleSizeFraction(two), 0.8, 1e-12);
    // Forward: 1 / (mean(w) mean(1/w)) = 1 / (2 * (1 + 1/3) / 2) = 0.75.
    EXPECT_NEAR(forwardEffectiveSampleSizeFraction(two), 0.75, 1e-12);
    EXPECT_NEAR(forwardEffectiveSampleSizeFraction(two + 17.0), 0.75, 1e-12) << "must not depend on Z";
    torch::Tensor withNan = torch::tensor(std::vector<double>{0.0, std::nan("")}, torch::kFloat64);
    EXPECT_NEAR(effectiveSampleSizeFraction(withNan), 0.5, 1e-12);
    EXPECT_EQ(forwardEffectiveSampleSizeFraction(withNan), 0.0);
}

TEST(EffectiveSampleSize, PerfectFlowHasUnitEss) {
    // Identity-initialised flow: q(x, a) = N_com(x) pi(a|x), so against a unit Gaussian target
    // every weight is the same constant.
    FlowConfig c = smallConfig(3, "spherical", 1, 4);
    c.identityInit = true;
    AugmentedCouplingFlow flow(c);
    AugmentedCouplingFlowModel model(flow);
    GaussianTarget target(4, 3, 1.0);
    auto gen = generator(1);
    auto [rev, lw] = reverseEss(model, target, 500, gen, 128);
    EXPECT_NEAR(rev, 1.0, 1e-9);
    EXPECT_LT((lw - lw[0]).abs().max().item<double>(), 1e-9);
    torch::Tensor data = CentreOfMassFreeGaussian::sample(300, 4, 3, gen, torch::kFloat64);
    auto [fwd, lwf] = forwardEss(model, target, data, gen, 128);
    EXPECT_NEAR(fwd, 1.0, 1e-9);
}

TEST(EffectiveSampleSize, MismatchedGaussianMatchesTheory) {
    // q = N(0, I_k) and p = N(0, s^2 I_k) on k = (N-1) D = 6 dims: with normalised weights the
    // Kish ESS fraction tends to 1 / E_q[w^2], E_q[w^2] = (s^-2 / sqrt(2/s^2 - 1))^k; s = 1.1 gives
    // 0.874. Tolerance 0.015: about 4 standard errors of the estimate on 8000 samples.
    FlowConfig c = smallConfig(3, "vector", 1, 3);
    c.identityInit = true;
    c.numLayers = 1;
    AugmentedCouplingFlow flow(c);
    AugmentedCouplingFlowModel model(flow);
    const double s = 1.1;
    GaussianTarget target(3, 3, s);
    auto gen = generator(2);
    auto [rev, lw] = reverseEss(model, target, 8000, gen, 2000);
    const double k = 6.0;
    // E_q[(p/q)^2] for normalised p, q = prod over dims of s^-2 / sqrt(2/s^2 - 1).
    const double second = std::pow(1.0 / (s * s * std::sqrt(2.0 / (s * s) - 1.0)), k);
    EXPECT_NEAR(rev, 1.0 / second, 0.015);
    EXPECT_LT(rev, 0.99);
}

TEST(EffectiveSampleSize, EvaluateFlowGivesLogZAndTheNllFloor) {
    // Perfect flow for a unit Gaussian on k = (N-1) D = 9 dims: Z = (2 pi)^(k/2) exactly, and the
    // floor E_p[U] + log Z is the Gaussian's entropy k/2 (1 + log 2 pi), which the marginal NLL of the
    // perfect flow estimates (statistically: tolerance 4 standard errors).
    FlowConfig c = smallConfig(3, "spherical", 1, 4);
    c.identityInit = true;
    AugmentedCouplingFlow flow(c);
    AugmentedCouplingFlowModel model(flow);
    GaussianTarget target(4, 3, 1.0);
    auto gen = generator(3);
    torch::Tensor data = CentreOfMassFreeGaussian::sample(2000, 4, 3, gen, torch::kFloat64);
    EvaluationResult r = evaluateFlow(model, target, data, 4, 500, 1);
    const double k = 9.0;
    EXPECT_NEAR(r.logZ, 0.5 * k * std::log(2 * M_PI), 1e-9);
    EXPECT_NEAR(r.nllFloor, r.nll, 1e-9) << "for the perfect flow the NLL is its own floor on the same points";
    EXPECT_NEAR(r.nll, 0.5 * k * (1 + std::log(2 * M_PI)), 4 * r.nllSem);
    EXPECT_NEAR(r.reverseEss, 1.0, 1e-9);
    EXPECT_NEAR(r.forwardEss, 1.0, 1e-9);
    EXPECT_EQ(r.numTest, 2000);
}

TEST(AisEffectiveSampleSize, WithoutIntermediateDistributionsItIsTheReverseEss) {
    // With no intermediate distribution AIS is plain importance sampling from the flow: the same
    // draws give the same weights as reverseEss.
    FlowConfig c = smallConfig(3, "vector", 1, 3);
    c.identityInit = true;
    AugmentedCouplingFlow flow(c);
    AugmentedCouplingFlowModel model(flow);
    auto target = std::make_shared<GaussianTarget>(3, 3, 1.2);
    auto gen = generator(4);
    auto [rev, lwRev] = reverseEss(model, *target, 300, gen, 100);
    AisOptions o;
    o.alpha = 1.0;
    o.numIntermediate = 0;
    AnnealedImportanceSampler sampler(o);
    auto genAis = generator(4);
    auto [ais, lwAis] = aisEss(model, target, 300, sampler, genAis, 100, true);
    EXPECT_LT((lwAis.to(torch::kFloat64) - lwRev.to(torch::kFloat64)).abs().max().item<double>(), 1e-9);
    EXPECT_NEAR(ais, rev, 1e-9);
    EXPECT_LT(rev, 0.99);
}

TEST(AisEffectiveSampleSize, TransitionsRaiseTheEssOfAMismatchedFlow) {
    // q = N(0, I) against the narrower p = N(0, 0.6^2 I) on 6 dims (bounded weights, so the ESS
    // estimates are precise): the flow's own ESS fraction tends to 1 / E_q[w^2] = 0.205 (formula as
    // above). Eight HMC-annealed intermediate distributions move the samples towards p, so AIS must
    // do clearly better on the same number of samples. pi(a|x) gets the same scale as p, so that
    // one HMC step size suits the joint space (with the default 0.1 the a directions are stiff and
    // mixing in x needs many more leapfrog steps). Seeded; the margins are several times the
    // spread of either estimate on 600 samples.
    FlowConfig c = smallConfig(3, "vector", 1, 3);
    c.identityInit = true;
    c.numLayers = 1;
    c.augScale = 0.6;
    AugmentedCouplingFlow flow(c);
    AugmentedCouplingFlowModel model(flow);
    const double s = 0.6;
    auto target = std::make_shared<GaussianTarget>(3, 3, s);
    auto gen = generator(5);
    const double rev = reverseEss(model, *target, 600, gen, 200).first;
    const double theory = 1.0 / std::pow(1.0 / (s * s * std::sqrt(2.0 / (s * s) - 1.0)), 6.0);
    EXPECT_NEAR(rev, theory, 0.06);
    AisOptions o;
    o.alpha = 1.0;
    o.numIntermediate = 8;
    o.initialStepSize = 0.3;
    AnnealedImportanceSampler sampler(o);
    const double ais = aisEss(model, target, 600, sampler, gen, 200, true).first;
    std::printf("reverse ESS %.3f (theory %.3f), AIS ESS %.3f\n", rev, theory, ais);
    EXPECT_GT(ais, rev + 0.3);
    ASSERT_EQ(sampler.stepSizes.size(), 8u);

    AisOptions fab = o;
    fab.alpha = 2.0;
    AnnealedImportanceSampler wrongAlpha(fab);
    EXPECT_THROW(aisEss(model, target, 10, wrongAlpha, gen, 10, false), std::invalid_argument);
}
