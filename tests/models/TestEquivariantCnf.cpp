// The model family "ecnf": the ODE solvers (against exact solutions), the exact divergence (against
// the autograd Jacobian's trace) and Hutchinson's estimate, the change of variables (a linear field
// against its analytic density), the EGNN vector field's symmetries, and the model behind the Model
// interface (sample/logProb agree, a round trip, invariances, configuration errors, model files),
// and flow-matching training (a 2-D mixture learnt, exact resume, the pairings' path costs).
#include "FlowTestUtils.h"
#include "openmmbg/distributions/Distributions.h"
#include "openmmbg/ecnf/EquivariantCnfModel.h"
#include "openmmbg/io/ModelFile.h"
#include "openmmbg/training/FlowMatching.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <map>

using namespace OpenMMBG;
using namespace OpenMMBG::testing;

namespace {

nlohmann::json smallConfig(int N = 4, int D = 3, const std::string& dtype = "float64") {
    return {{"family", "ecnf"}, {"num_particles", N}, {"dim", D}, {"num_layers", 2}, {"hidden_units", 16},
            {"dtype", dtype},   {"rtol", 1e-7},       {"atol", 1e-7}, {"init_seed", 3}};
}

std::shared_ptr<EquivariantCnfModel> makeCnf(const nlohmann::json& config) {
    auto model = std::dynamic_pointer_cast<EquivariantCnfModel>(makeModel(config.dump()));
    EXPECT_TRUE(model) << "makeModel did not build an EquivariantCnfModel";
    return model;
}

// The untrained field is nearly zero (its position updates start at Xavier gain 0.001): scale the
// last layers up so the flow is far from the identity.
void randomizeField(EquivariantCnfModel& model, double scale, uint64_t seed) {
    torch::NoGradGuard noGrad;
    torch::Generator g = generator(seed);
    for (auto& item : model.field()->named_parameters())
        if (item.key().find("position_out") != std::string::npos)
            item.value().normal_(0.0, scale, g);
}

torch::Tensor centred(torch::Tensor x) { return x - x.mean(1, true); }

}  // namespace

TEST(Ode, Dopri5AndRk4MatchExactSolutions) {
    // dy/dt = -y (y(0) = [1, 2]) and dz/dt = t (z(0) = 0): y(1) = y0 e^-1, z(1) = 1/2; backwards too.
    OdeFunction f = [](double t, const OdeState& y) -> OdeState {
        return {-y[0], torch::full_like(y[1], t)};
    };
    const OdeState y0 = {torch::tensor({1.0, 2.0}, torch::kFloat64), torch::zeros({1}, torch::kFloat64)};
    OdeOptions o;
    o.rtol = o.atol = 1e-9;
    OdeResult r = integrateOde(f, y0, 0.0, 1.0, o);
    EXPECT_LT((r.y[0] - y0[0] * std::exp(-1.0)).abs().max().item<double>(), 1e-8);
    EXPECT_NEAR(r.y[1].item<double>(), 0.5, 1e-9);
    EXPECT_GT(r.acceptedSteps, 3);
    EXPECT_EQ(r.functionEvaluations, 2 + 6 * (r.acceptedSteps + r.rejectedSteps)) << "FSAL: 6 per step + 2 to start";
    OdeResult back = integrateOde(f, r.y, 1.0, 0.0, o);
    EXPECT_LT((back.y[0] - y0[0]).abs().max().item<double>(), 1e-8);
    EXPECT_NEAR(back.y[1].item<double>(), 0.0, 1e-9);
    // Looser tolerances take fewer steps.
    OdeOptions loose = o;
    loose.rtol = loose.atol = 1e-3;
    EXPECT_LT(integrateOde(f, y0, 0.0, 1.0, loose).functionEvaluations, r.functionEvaluations);
    // RK4: global error O(h^4).
    OdeOptions rk = o;
    rk.method = "rk4";
    rk.fixedSteps = 20;
    OdeResult r4 = integrateOde(f, y0, 0.0, 1.0, rk);
    EXPECT_EQ(r4.functionEvaluations, 80);
    const double err20 = (r4.y[0] - y0[0] * std::exp(-1.0)).abs().max().item<double>();
    rk.fixedSteps = 40;
    const double err40 = (integrateOde(f, y0, 0.0, 1.0, rk).y[0] - y0[0] * std::exp(-1.0)).abs().max().item<double>();
    EXPECT_LT(err20, 1e-6);
    EXPECT_NEAR(err20 / err40, 16.0, 2.0) << "fourth order";
}

TEST(Ode, ErrorsAreClear) {
    OdeFunction f = [](double, const OdeState& y) -> OdeState { return {y[0] * y[0]}; };  // blows up at t = 1
    const OdeState y0 = {torch::ones({1}, torch::kFloat64)};
    OdeOptions o;
    o.maxSteps = 50;
    EXPECT_THROW(integrateOde(f, y0, 0.0, 2.0, o), std::runtime_error);
    o.method = "euler";
    EXPECT_THROW(integrateOde(f, y0, 0.0, 0.5, o), std::invalid_argument);
    EXPECT_THROW(integrateOde(f, {}, 0.0, 0.5, OdeOptions()), std::invalid_argument);
}

TEST(ContinuousFlow, ExactDivergenceIsTheTraceOfTheAutogradJacobian) {
    auto model = makeCnf(smallConfig());
    randomizeField(*model, 0.5, 1);
    torch::Generator g = generator(2);
    const torch::Tensor x = centred(torch::randn({3, 4, 3}, g, torch::kFloat64));
    const torch::Tensor t = torch::tensor({0.1, 0.5, 0.9}, torch::kFloat64);
    torch::NoGradGuard noGrad;
    auto [v, div] = fieldAndDivergence(model->vectorField(), t, x);
    for (int64_t b = 0; b < 3; b++) {
        torch::AutoGradMode enable(true);
        torch::Tensor xb = x.narrow(0, b, 1).clone().requires_grad_(true);
        torch::Tensor vb = model->field()->forward(t.narrow(0, b, 1), xb).reshape({-1});
        double trace = 0;
        for (int64_t k = 0; k < vb.size(0); k++)
            trace += torch::autograd::grad({vb[k]}, {xb}, {}, true)[0].reshape({-1})[k].item<double>();
        EXPECT_NEAR(div[b].item<double>(), trace, 1e-10) << "configuration " << b;
        EXPECT_LT((v[b] - vb.detach().reshape({4, 3})).abs().max().item<double>(), 1e-12);
    }
    EXPECT_GT(div.abs().max().item<double>(), 1e-3) << "the field must have a divergence for the test to mean something";
    // Hutchinson: unbiased; the mean over many Gaussian probes approaches the exact trace.
    const int64_t probes = 4000;
    const torch::Tensor xr = x.narrow(0, 0, 1).expand({probes, 4, 3});
    const torch::Tensor eps = torch::randn({probes, 4, 3}, g, torch::kFloat64);
    auto [vh, divH] = fieldAndDivergence(model->vectorField(), torch::full({probes}, 0.1, torch::kFloat64), xr, eps);
    const double mean = divH.mean().item<double>(), sem = divH.std().item<double>() / std::sqrt(double(probes));
    EXPECT_NEAR(mean, div[0].item<double>(), 4 * sem + 1e-12);
}

TEST(ContinuousFlow, LinearFieldGivesItsAnalyticDensity) {
    // v(t, x) = a (x - mean x): x(t) = x0 e^(a t), div v = a (N - 1) D on the zero-centroid subspace,
    // so log q(x1) = log p0(x1 e^-a) - a (N - 1) D.
    const double a = 0.7;
    const int64_t N = 5, D = 3;
    VectorField field = [a](const torch::Tensor&, const torch::Tensor& x) { return a * (x - x.mean(1, true)); };
    torch::Generator g = generator(4);
    const torch::Tensor x1 = centred(torch::randn({6, N, D}, g, torch::kFloat64));
    const torch::Tensor analytic = CentreOfMassFreeGaussian::logProb(x1 * std::exp(-a)) - a * double((N - 1) * D);
    OdeOptions o;
    o.rtol = o.atol = 1e-10;
    CnfResult back = cnfLogProb(field, x1, o);
    EXPECT_LT((back.logQ - analytic).abs().max().item<double>(), 1e-8);
    EXPECT_LT((back.x - x1 * std::exp(-a)).abs().max().item<double>(), 1e-8);
    CnfResult forward = cnfSample(field, back.x, o);
    EXPECT_LT((forward.x - x1).abs().max().item<double>(), 1e-8);
    EXPECT_LT((forward.logQ - analytic).abs().max().item<double>(), 1e-8);
    // Path length: integral of |a x0 e^(a t)| dt = |x0| (e^a - 1).
    const double length = (back.x.pow(2).sum({1, 2}).sqrt() * (std::exp(a) - 1)).mean().item<double>();
    EXPECT_NEAR(forward.statistics.meanPathLength, length, 1e-6);
    o.method = "rk4";
    o.fixedSteps = 100;
    EXPECT_LT((cnfLogProb(field, x1, o).logQ - analytic).abs().max().item<double>(), 1e-6);
}

TEST(EgnnVectorField, IsEquivariantAndCentroidFree) {
    for (int D : {2, 3}) {
        auto model = makeCnf(smallConfig(5, D));
        randomizeField(*model, 0.5, 5);
        torch::Generator g = generator(6);
        const torch::Tensor x = torch::randn({4, 5, D}, g, torch::kFloat64);
        const torch::Tensor t = torch::rand({4}, g, torch::kFloat64);
        torch::NoGradGuard noGrad;
        const torch::Tensor v = model->field()->forward(t, x);
        EXPECT_LT(v.mean(1).abs().max().item<double>(), 1e-12) << "zero mean over particles";
        EXPECT_GT(v.abs().max().item<double>(), 1e-3);
        // Rotations and reflections (O(D)), translations, permutations.
        torch::Tensor R = randomRotations(4, D, g, torch::kFloat64);
        R = torch::cat({R.narrow(0, 0, 2), R.narrow(0, 2, 2) * -1}, 0);  // two improper
        const torch::Tensor shift = torch::randn({4, 1, D}, g, torch::kFloat64);
        const torch::Tensor perm = torch::tensor({3, 0, 4, 1, 2}, torch::kLong);
        const torch::Tensor moved = torch::matmul(x, R.transpose(1, 2)).index_select(1, perm) + shift;
        const torch::Tensor expected = torch::matmul(v, R.transpose(1, 2)).index_select(1, perm);
        EXPECT_LT((model->field()->forward(t, moved) - expected).abs().max().item<double>(), 1e-10) << "D = " << D;
    }
    // Particles of different types are not interchangeable.
    nlohmann::json typed = smallConfig(3, 3);
    typed["atom_types"] = {0, 0, 1};
    auto model = makeCnf(typed);
    randomizeField(*model, 0.5, 7);
    torch::NoGradGuard noGrad;
    torch::Generator g = generator(8);
    const torch::Tensor x = torch::randn({2, 3, 3}, g, torch::kFloat64), t = torch::rand({2}, g, torch::kFloat64);
    const torch::Tensor v = model->field()->forward(t, x);
    const torch::Tensor swap01 = torch::tensor({1, 0, 2}, torch::kLong), swap02 = torch::tensor({2, 1, 0}, torch::kLong);
    EXPECT_LT((model->field()->forward(t, x.index_select(1, swap01)) - v.index_select(1, swap01)).abs().max().item<double>(),
              1e-10);
    EXPECT_GT((model->field()->forward(t, x.index_select(1, swap02)) - v.index_select(1, swap02)).abs().max().item<double>(),
              1e-6);
}

TEST(EquivariantCnfModel, SamplesRoundTripAndLogProbAgreesWithSample) {
    auto model = makeCnf(smallConfig());
    randomizeField(*model, 0.3, 9);
    torch::Generator g = generator(10);
    torch::NoGradGuard noGrad;
    const torch::Tensor base = model->sampleBase(5, g);
    auto [s, penalty] = model->baseToSample(base);
    EXPECT_GT(model->lastIntegration().functionEvaluations, 10);
    EXPECT_GT(model->lastIntegration().meanPathLength, 0);
    EXPECT_LT(s.x.mean(1).abs().max().item<double>(), 1e-12);
    EXPECT_EQ(s.aux.sizes(), (std::vector<int64_t>{5, 0}));
    EXPECT_EQ(s.logQ.scalar_type(), torch::kFloat64);
    const torch::Tensor x0 = centred(base.reshape({5, 4, 3}));
    EXPECT_GT((s.x - x0).abs().max().item<double>(), 1e-2) << "the flow must move the points";
    const torch::Tensor logQ = model->logProb(s.x, s.aux);
    EXPECT_LT((logQ - s.logQ).abs().max().item<double>(), 1e-5) << "logProb of a sample is its log q (rtol 1e-7)";
    CnfResult back = cnfLogProb(model->vectorField(), s.x, model->odeOptions());
    EXPECT_LT((back.x - x0).abs().max().item<double>(), 1e-5) << "integrating back returns the base point";
    // Invariance of log q: rotations, reflections, translations and permutations.
    const torch::Tensor R = randomRotations(5, 3, g, torch::kFloat64) * -1;  // improper
    const torch::Tensor moved =
        torch::matmul(s.x, R.transpose(1, 2)).index_select(1, torch::tensor({2, 0, 3, 1}, torch::kLong)) + 1.5;
    EXPECT_LT((model->logProb(moved, torch::Tensor()) - logQ).abs().max().item<double>(), 1e-6);
    EXPECT_THROW(model->logProb(s.x, torch::zeros({5, 1}, torch::kFloat64)), std::invalid_argument);
    EXPECT_THROW(model->logProb(torch::zeros({5, 3, 3}, torch::kFloat64), torch::Tensor()), std::invalid_argument);
}

TEST(EquivariantCnfModel, DensityIsNormalised) {
    // Two particles in 2-D: the zero-centroid subspace is x = (u, -u)/sqrt(2), u in R^2 with |x| = |u|;
    // the integral of q over u on a grid (midpoint rule, +-7 covers the tails) must be 1.
    nlohmann::json config = smallConfig(2, 2);
    config["rtol"] = config["atol"] = 1e-5;
    auto model = makeCnf(config);
    randomizeField(*model, 0.15, 11);
    const int G = 41;
    const double L = 6.0, h = 2 * L / G;
    const torch::Tensor u1 = torch::arange(G, torch::kFloat64) * h - L + h / 2;
    auto grid = torch::meshgrid({u1, u1}, "ij");
    const torch::Tensor u = torch::stack({grid[0].reshape({-1}), grid[1].reshape({-1})}, 1);
    const torch::Tensor x = torch::stack({u, -u}, 1) / std::sqrt(2.0);
    torch::NoGradGuard noGrad;
    const torch::Tensor logQ = model->logProb(x, torch::Tensor());
    const double mass = (logQ.exp() * h * h).sum().item<double>();
    const torch::Tensor base = CentreOfMassFreeGaussian::logProb(x);
    std::printf("integral of q: %.6f; max |log q - log p0| = %.3f; %lld evaluations\n", mass,
                (logQ - base).abs().max().item<double>(), (long long)model->lastIntegration().functionEvaluations);
    EXPECT_NEAR(mass, 1.0, 2e-3);
    EXPECT_GT((logQ - base).abs().max().item<double>(), 0.05) << "the flow must differ from its base";
}

TEST(EquivariantCnfModel, GradientsReachTheParametersAndModelFilesRoundTrip) {
    auto model = makeCnf(smallConfig(3, 2));
    randomizeField(*model, 0.3, 12);
    torch::Generator g = generator(13);
    const torch::Tensor x = centred(torch::randn({4, 3, 2}, g, torch::kFloat64));
    model->module().zero_grad();
    model->logProb(x, torch::Tensor()).sum().backward();
    double gradNorm = 0;
    for (auto& p : model->module().parameters())
        if (p.grad().defined())
            gradNorm += p.grad().pow(2).sum().item<double>();
    EXPECT_GT(gradNorm, 0) << "log q must be differentiable in the parameters (through the solver)";
    auto loaded = deserializeModel(serializeModel(*model));
    EXPECT_EQ(loaded->family(), "ecnf");
    EXPECT_EQ(loaded->configJson(), model->configJson());
    torch::NoGradGuard noGrad;
    EXPECT_TRUE(torch::equal(loaded->logProb(x, torch::Tensor()), model->logProb(x, torch::Tensor())));
}

TEST(EquivariantCnfConfig, DefaultsRoundTripAndErrorsNameTheKey) {
    EquivariantCnfConfig c = EquivariantCnfConfig::fromJson(R"({"num_particles": 13, "dim": 3})");
    EXPECT_EQ(c.numLayers, 3);
    EXPECT_EQ(c.solver, "dopri5");
    EXPECT_EQ(c.rtol, 1e-5);
    EXPECT_EQ(c.divergence, "exact");
    EXPECT_EQ(EquivariantCnfConfig::fromJson(c.toJson()).toJson(), c.toJson());
    auto errorOf = [](const std::string& json) -> std::string {
        try {
            EquivariantCnfConfig::fromJson(json);
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
        return "";
    };
    EXPECT_NE(errorOf(R"({"dim": 3})").find("'num_particles'"), std::string::npos);
    EXPECT_NE(errorOf(R"({"num_particles": 4, "dim": 3, "solver": "euler"})").find("solver"), std::string::npos);
    EXPECT_NE(errorOf(R"({"num_particles": 4, "dim": 3, "divergence": "x"})").find("divergence"), std::string::npos);
    EXPECT_NE(errorOf(R"({"num_particles": 4, "dim": 3, "rtol": 0})").find("rtol"), std::string::npos);
    EXPECT_NE(errorOf(R"({"num_particles": 4, "dim": 4})").find("dim"), std::string::npos);
    EXPECT_NE(errorOf(R"({"num_particles": 4, "dim": 3, "atom_types": [0, 1]})").find("atom_types"), std::string::npos);
    EXPECT_NE(errorOf(R"({"num_particles": 4, "dim": 3, "colour": 1})").find("unknown key 'colour'"), std::string::npos);
    EXPECT_EQ(errorOf(R"({"num_particles": 4, "dim": 3, "colour": 1})").rfind("flow config: ", 0), 0u);
}

namespace {

// Two particles in 2-D with their relative vector u = x_0 - x_1 (scaled: x = (u, -u)/sqrt(2), so
// |x| = |u|) on two rings: |u| ~ 0.5 N(1, 0.15^2) + 0.5 N(2.5, 0.15^2), direction uniform. The
// density on the zero-centroid subspace is p(u) = p_r(|u|) / (2 pi |u|).
torch::Tensor twoRings(int64_t n, torch::Generator& g, torch::Tensor* logP = nullptr) {
    const torch::Tensor which = torch::rand({n}, g, torch::kFloat64) < 0.5;
    const torch::Tensor r = torch::where(which, torch::full({n}, 1.0, torch::kFloat64), torch::full({n}, 2.5, torch::kFloat64)) +
                            0.15 * torch::randn({n}, g, torch::kFloat64);
    const torch::Tensor angle = 2 * M_PI * torch::rand({n}, g, torch::kFloat64);
    const torch::Tensor u = torch::stack({r * torch::cos(angle), r * torch::sin(angle)}, 1);
    if (logP) {
        const torch::Tensor ra = r.abs();
        auto normal = [&](double mean) {
            return torch::exp(-0.5 * (ra - mean).pow(2) / (0.15 * 0.15)) / (0.15 * std::sqrt(2 * M_PI));
        };
        // |u| = |r|; the density of |u| folds r < 0 onto r > 0 (negligible here, included anyway).
        const torch::Tensor pr = 0.5 * (normal(1.0) + normal(2.5)) + 0.5 * (normal(-1.0) + normal(-2.5));
        *logP = torch::log(pr) - torch::log(2 * M_PI * ra);
    }
    return torch::stack({u, -u}, 1) / std::sqrt(2.0);
}

}  // namespace

TEST(FlowMatching, LearnsATwoRingMixtureAndResumesExactly) {
    // Equivariant flow matching on a rotation-invariant 2-D mixture: the test NLL (exact log q)
    // must come within 0.1 nats of the true density's (the entropy of the data, estimated on the
    // same 1000 test points) and far below the base's. Seeded; the margin is several standard
    // errors of the NLL difference.
    torch::Generator g = generator(21);
    const torch::Tensor train = twoRings(2000, g), validation = twoRings(200, g);
    torch::Tensor logPTest;
    const torch::Tensor test = twoRings(1000, g, &logPTest);
    nlohmann::json config = {{"family", "ecnf"}, {"num_particles", 2}, {"dim", 2}, {"num_layers", 2},
                             {"hidden_units", 32}, {"dtype", "float64"}};
    FlowMatchingOptions o;
    o.epochs = 40;
    o.batchSize = 64;
    o.peakLearningRate = 3e-3;
    o.validateEvery = 40;
    auto model = makeModel(config.dump());
    FlowMatchingTrainer trainer(model, train, validation, o);
    auto reports = trainer.run();
    ASSERT_EQ(reports.size(), 40u);
    torch::Tensor logQ;
    {
        torch::NoGradGuard noGrad;
        logQ = model->logProb(test, torch::Tensor());
    }
    const double nll = -logQ.mean().item<double>(), truth = -logPTest.mean().item<double>();
    const double base = -CentreOfMassFreeGaussian::logProb(test).mean().item<double>();
    const double sem = (logPTest - logQ).std().item<double>() / std::sqrt(1000.0);
    std::printf("two rings: NLL %.4f (truth %.4f, base %.4f, sem of the difference %.4f), validation NLL %.4f\n", nll,
                truth, base, sem, reports.back().validationNll);
    EXPECT_LT(nll - truth, 0.1);
    EXPECT_GT(nll - truth, -4 * sem) << "an NLL below the data's entropy means a wrong density";
    EXPECT_LT(nll, base - 0.5);
    EXPECT_NEAR(reports.back().validationNll, nll, 0.3);

    // Resume: killed after epoch 2 of 3, rebuilt, resumed; the same parameters as a straight run.
    const std::string path = (std::filesystem::temp_directory_path() / "openmmbg_fm_resume.checkpoint").string();
    std::filesystem::remove(path);
    FlowMatchingOptions r = o;
    r.epochs = 3;
    r.validateEvery = 1;
    auto small = [&] { return makeModel(config.dump()); };
    auto straight = small();
    auto reference = FlowMatchingTrainer(straight, train.narrow(0, 0, 256), validation.narrow(0, 0, 20), r).run();
    FlowMatchingOptions first = r;
    first.checkpointPath = path;
    first.stopAfterEpoch = 2;
    FlowMatchingTrainer(small(), train.narrow(0, 0, 256), validation.narrow(0, 0, 20), first).run();
    auto resumed = small();
    FlowMatchingOptions second = r;
    second.checkpointPath = path;
    auto full = FlowMatchingTrainer(resumed, train.narrow(0, 0, 256), validation.narrow(0, 0, 20), second).run();
    ASSERT_EQ(full.size(), 3u);
    EXPECT_EQ(full[2].loss, reference[2].loss);
    EXPECT_EQ(full[2].validationNll, reference[2].validationNll);
    auto p1 = straight->module().parameters(), p2 = resumed->module().parameters();
    for (size_t i = 0; i < p1.size(); i++)
        EXPECT_TRUE(torch::equal(p1[i], p2[i])) << "parameter " << i;
    std::filesystem::remove(path);
}

TEST(FlowMatching, PairingsShortenThePairsAndOnlyEcnfModelsTrain) {
    torch::Generator g = generator(22);
    const torch::Tensor train = centred(torch::randn({256, 5, 3}, g, torch::kFloat64) * 0.5 + 1.0);
    nlohmann::json config = {{"family", "ecnf"}, {"num_particles", 5}, {"dim", 3}, {"num_layers", 1},
                             {"hidden_units", 8}, {"dtype", "float64"}};
    std::map<std::string, double> cost;
    for (const std::string pairing : {"independent", "ot", "equivariant-ot"}) {
        FlowMatchingOptions o;
        o.epochs = 1;
        o.batchSize = 64;
        o.pairing = pairing;
        auto model = makeModel(config.dump());
        FlowMatchingTrainer trainer(model, train, torch::Tensor(), o);
        auto reports = trainer.run();
        EXPECT_TRUE(std::isfinite(reports.back().loss)) << pairing;
        cost[pairing] = trainer.objective().lastMeanPairCost();
    }
    std::printf("mean pair cost: independent %.3f, ot %.3f, equivariant-ot %.3f\n", cost["independent"], cost["ot"],
                cost["equivariant-ot"]);
    EXPECT_LT(cost["ot"], cost["independent"]);
    EXPECT_LT(cost["equivariant-ot"], cost["ot"]);
    FlowMatchingOptions bad;
    bad.pairing = "nearest";
    EXPECT_THROW(FlowMatchingTrainer(makeModel(config.dump()), train, torch::Tensor(), bad), std::invalid_argument);
    nlohmann::json ic = {{"family", "ic"}, {"num_particles", 5},
                         {"zmatrix", {{0, -1, -1, -1}, {1, 0, -1, -1}, {2, 1, 0, -1}, {3, 2, 1, 0}, {4, 3, 2, 1}}}};
    try {
        FlowMatchingTrainer(makeModel(ic.dump()), train, torch::Tensor(), FlowMatchingOptions());
        ADD_FAILURE() << "an ic model was accepted by flow matching";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("\"ecnf\""), std::string::npos) << e.what();
    }
    const FlowMatchingOptions parsed = flowMatchingOptionsFromJson(R"({"pairing": "ot", "sigma": 0.05, "epochs": 7})");
    EXPECT_EQ(parsed.pairing, "ot");
    EXPECT_EQ(parsed.sigma, 0.05);
    EXPECT_EQ(parsed.epochs, 7);
    EXPECT_THROW(flowMatchingOptionsFromJson(R"({"pairing": "x"})"), std::invalid_argument);
    EXPECT_THROW(flowMatchingOptionsFromJson(R"({"sigma": -1})"), std::invalid_argument);
    EXPECT_THROW(flowMatchingOptionsFromJson(R"({"sigmaa": 1})"), std::invalid_argument);
}
