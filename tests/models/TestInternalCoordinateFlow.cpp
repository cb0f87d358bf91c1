// The model family "ic": the flow on internal coordinates (its couplings invert exactly and their
// log-determinants match the autograd Jacobian; q_z integrates to 1), the model behind the Model
// interface (sample/logProb agree, invariances, the untrained model's analytic density, -inf and
// never NaN outside the valid domain), its configuration and its model files, and energy-based
// training of it (FAB's AIS on its joint space, FAB and reverse KL resumable exactly).
#include "FlowTestUtils.h"
#include "openmmbg/distributions/Distributions.h"
#include "openmmbg/ic/InternalCoordinateFlowModel.h"
#include "openmmbg/io/ModelFile.h"
#include "openmmbg/training/EnergyTraining.h"
#include "openmmbg/training/Fab.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

using namespace OpenMMBG;
using namespace OpenMMBG::testing;

namespace {

const int64_t N = 6;
// A 6-atom Z-matrix whose rows are not in atom order (row k does not place atom k).
const nlohmann::json ZMATRIX = {{2, -1, -1, -1}, {0, 2, -1, -1}, {4, 0, 2, -1}, {1, 4, 0, 2}, {5, 1, 4, 0}, {3, 0, 4, 1}};

// A small configuration: 4 layers of width 16, 4 bins, and a tail bound of 2 so that the tails are
// exercised.
nlohmann::json smallConfig(const std::string& dtype = "float64") {
    return {{"family", "ic"}, {"num_particles", N}, {"zmatrix", ZMATRIX}, {"num_layers", 4},  {"hidden_units", 16},
            {"num_blocks", 1}, {"num_bins", 4},     {"tail_bound", 2.0},  {"dtype", dtype}, {"init_seed", 3}};
}

std::shared_ptr<InternalCoordinateFlowModel> makeIcModel(const nlohmann::json& config) {
    auto model = std::dynamic_pointer_cast<InternalCoordinateFlowModel>(makeModel(config.dump()));
    EXPECT_TRUE(model) << "makeModel did not build an InternalCoordinateFlowModel";
    return model;
}

// Molecule-like configurations [B, N, 3] (float64, nm): bonds 0.12 +- 0.005, angles 1.9 +- 0.05,
// one dihedral spread across the wrap point pi, one narrow at -1, one broad; random orientations
// and positions.
torch::Tensor moleculeData(const ZMatrix& zmatrix, int64_t B, torch::Generator& g) {
    InternalCoordinates ic;
    ic.bonds = 0.12 + 0.005 * torch::randn({B, N - 1}, g, torch::kFloat64);
    ic.angles = 1.9 + 0.05 * torch::randn({B, N - 2}, g, torch::kFloat64);
    ic.dihedrals = wrapAngle(torch::stack({M_PI + 0.2 * torch::randn({B}, g, torch::kFloat64),
                                           -1.0 + 0.1 * torch::randn({B}, g, torch::kFloat64),
                                           1.0 * torch::randn({B}, g, torch::kFloat64)},
                                          1));
    const torch::Tensor rotation = randomRotations(B, 3, g, torch::kFloat64);
    const torch::Tensor translation = torch::randn({B, 3}, g, torch::kFloat64);
    return InternalCoordinateTransform(zmatrix).toCartesian(ic, rotation, translation);
}

// Random (non-identity) conditioner outputs: the final layers drawn from N(0, scale^2).
void randomizeFinalLayers(InternalCoordinateFlow& flow, double scale, uint64_t seed) {
    torch::NoGradGuard noGrad;
    torch::Generator g = generator(seed);
    for (auto& layer : flow->couplings()) {
        layer->conditioner->finalLayer->weight.normal_(0.0, scale, g);
        layer->conditioner->finalLayer->bias.normal_(0.0, scale, g);
    }
}

// A float64 model with statistics fitted to moleculeData and random final layers.
std::shared_ptr<InternalCoordinateFlowModel> fittedModel(const std::string& dtype = "float64") {
    auto model = makeIcModel(smallConfig(dtype));
    torch::Generator g = generator(11);
    model->fitStatistics(moleculeData(model->flow()->transform().zmatrix(), 500, g));
    randomizeFinalLayers(model->flow(), 0.1, 12);
    return model;
}

// Largest difference of features [B, D] whose last N - 3 are angles, those compared on the circle.
double featureDistance(const torch::Tensor& a, const torch::Tensor& b) {
    const torch::Tensor d = a - b;
    const torch::Tensor linear = d.narrow(1, 0, 2 * N - 3), circular = wrapAngle(d.narrow(1, 2 * N - 3, N - 3));
    return std::max(linear.abs().max().item<double>(), circular.abs().max().item<double>());
}

std::string errorOf(const nlohmann::json& config) {
    try {
        InternalCoordinateFlowConfig::fromJson(config.dump());
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(InternalCoordinateFlow, CouplingsInvertExactlyIncludingTheDihedralWrap) {
    auto model = fittedModel();
    InternalCoordinateFlow& flow = model->flow();
    torch::NoGradGuard noGrad;
    torch::Generator g = generator(1);
    torch::Tensor base = flow->sampleBase(256, g);
    // Dihedral features on both sides of the wrap point, and bonds/angles in both tails.
    base.index_put_({0, 2 * N - 3}, -M_PI);
    base.index_put_({1, 2 * N - 3}, M_PI - 1e-12);
    base.index_put_({2, 2 * N - 2}, -M_PI + 1e-12);
    base.index_put_({3, 0}, -4.0);
    base.index_put_({4, 2 * N - 4}, 6.0);
    auto [u, logDetForward] = flow->applyCouplings(base, false);
    auto [back, logDetInverse] = flow->applyCouplings(u, true);
    EXPECT_LT(featureDistance(back, base), 1e-10);
    EXPECT_LT((logDetForward + logDetInverse).abs().max().item<double>(), 1e-10);
    EXPECT_GT((u - base).abs().max().item<double>(), 0.1) << "the random couplings should not be the identity";

    // Through the internal coordinates: unstandardize wraps the dihedrals (the fitted shift of the
    // first dihedral is near pi, so its values cross the wrap point), standardize undoes it.
    const torch::Tensor shifted = u.select(1, 2 * N - 3) + flow->named_buffers()["dihedral_shift"][0];
    EXPECT_TRUE((shifted.abs() > M_PI).any().item<bool>()) << "no value crossed the wrap point";
    auto [ic, logDetUnstandardize] = flow->unstandardize(u);
    EXPECT_TRUE(((ic.dihedrals >= -M_PI) & (ic.dihedrals < M_PI)).all().item<bool>());
    auto [u2, logDetStandardize] = flow->standardize(ic);
    auto [base2, logDetInverse2] = flow->applyCouplings(u2, true);
    EXPECT_LT(featureDistance(base2, base), 1e-10);
    EXPECT_LT((logDetUnstandardize + logDetStandardize).abs().max().item<double>(), 1e-12);
}

TEST(InternalCoordinateFlow, LogDeterminantsMatchTheAutogradJacobian) {
    auto model = fittedModel();
    InternalCoordinateFlow& flow = model->flow();
    torch::Generator g = generator(2);
    torch::Tensor points = flow->sampleBase(4, g);
    points.index_put_({0, 1}, 3.0);  // a bond feature in the identity tail
    for (int64_t i = 0; i < points.size(0); i++) {
        const torch::Tensor point = points.narrow(0, i, 1);
        for (bool inverse : {false, true}) {
            auto map = [&](const torch::Tensor& v) { return flow->applyCouplings(v.view({1, -1}), inverse).first; };
            const double expected = logAbsDet(jacobian(map, point));
            const double logDet = flow->applyCouplings(point, inverse).second.item<double>();
            EXPECT_NEAR(logDet, expected, 1e-9) << "point " << i << (inverse ? " (inverse)" : " (forward)");
        }
        // The whole base -> internal coordinate map, standardisation included.
        auto toInternal = [&](const torch::Tensor& v) {
            const InternalCoordinates ic = flow->unstandardize(flow->applyCouplings(v.view({1, -1}), false).first).first;
            return torch::cat({ic.bonds, ic.angles, ic.dihedrals}, 1);
        };
        auto [u, logDetCouplings] = flow->applyCouplings(point, false);
        const double logDet = (logDetCouplings + flow->unstandardize(u).second).item<double>();
        EXPECT_NEAR(logDet, logAbsDet(jacobian(toInternal, point)), 1e-9) << "point " << i;
    }
}

TEST(InternalCoordinateFlow, TheDensityOfInternalCoordinatesIntegratesToOne) {
    // Importance sampling of the integral of q_z over bonds and angles (R) and dihedrals
    // ([-pi, pi)), from a proposal 1.2 times as wide as the fitted statistics (Gaussian) and
    // uniform in the dihedrals. q_z's tails are the base's Gaussian tails (the splines are the
    // identity outside [-tail_bound, tail_bound]), so the weights have finite variance; milder
    // random couplings than elsewhere (final layers of scale 0.05) keep it small in 12 dimensions.
    auto model = fittedModel();
    InternalCoordinateFlow& flow = model->flow();
    randomizeFinalLayers(flow, 0.05, 12);
    torch::NoGradGuard noGrad;
    torch::Generator g = generator(5);
    const torch::Tensor base = flow->sampleBase(1000, g);
    EXPECT_GT((flow->applyCouplings(base, false).first - base).abs().max().item<double>(), 0.05)
        << "the random couplings should not be the identity";
    const torch::Tensor bondMean = flow->named_buffers()["bond_mean"], bondStd = flow->named_buffers()["bond_std"];
    const torch::Tensor angleMean = flow->named_buffers()["angle_mean"], angleStd = flow->named_buffers()["angle_std"];
    const int64_t M = 100000;
    const double width = 1.2;
    const torch::Tensor eb = torch::randn({M, N - 1}, g, torch::kFloat64), ea = torch::randn({M, N - 2}, g, torch::kFloat64);
    InternalCoordinates ic;
    ic.bonds = bondMean + width * bondStd * eb;
    ic.angles = angleMean + width * angleStd * ea;
    ic.dihedrals = 2 * M_PI * torch::rand({M, N - 3}, g, torch::kFloat64) - M_PI;
    const torch::Tensor logProposal = -0.5 * (eb * eb).sum(1) - 0.5 * (ea * ea).sum(1) -
                                      torch::log(width * bondStd).sum() - torch::log(width * angleStd).sum() -
                                      0.5 * double(2 * N - 3) * std::log(2 * M_PI) - double(N - 3) * std::log(2 * M_PI);
    const torch::Tensor w = torch::exp(flow->logProb(ic) - logProposal);
    const double estimate = w.mean().item<double>(), standardError = (w.std() / std::sqrt(double(M))).item<double>();
    EXPECT_LT(standardError, 0.01);
    EXPECT_NEAR(estimate, 1.0, 0.03) << "standard error " << standardError;
}

TEST(InternalCoordinateFlowModel, LogProbOfSamplesIsTheirLogQ) {
    for (const char* dtype : {"float64", "float32"}) {
        auto model = fittedModel(dtype);
        torch::NoGradGuard noGrad;
        torch::Generator g = generator(7);
        ModelSample s = model->sample(64, g);
        EXPECT_EQ(s.x.scalar_type(), model->options().dtype().toScalarType());
        EXPECT_EQ(s.aux.sizes(), (std::vector<int64_t>{64, 0}));
        ASSERT_TRUE(torch::isfinite(s.logQ).all().item<bool>());
        const double tolerance = std::string(dtype) == "float64" ? 1e-8 : 1e-4;
        const torch::Tensor logQ = model->logProb(s.x, s.aux);
        EXPECT_LT((logQ - s.logQ).abs().max().item<double>(), tolerance) << dtype;
    }
}

TEST(InternalCoordinateFlowModel, SamplesAreCentroidFreeAndLogProbIsRotationAndTranslationInvariant) {
    auto model = fittedModel();
    torch::NoGradGuard noGrad;
    torch::Generator g = generator(8);
    ModelSample s = model->sample(16, g);
    EXPECT_LT(s.x.mean(1).abs().max().item<double>(), 1e-12);
    const torch::Tensor rotation = randomRotations(16, 3, g, torch::kFloat64);
    const torch::Tensor moved = torch::matmul(s.x, rotation.transpose(1, 2)) + torch::randn({16, 1, 3}, g, torch::kFloat64);
    EXPECT_LT((model->logProb(moved, s.aux) - s.logQ).abs().max().item<double>(), 1e-9);
    // The orientations are not those of the canonical frame.
    EXPECT_GT(s.x.select(1, 2).select(1, 2).abs().max().item<double>(), 1e-3);
}

TEST(InternalCoordinateFlowModel, UntrainedModelWithFittedStatisticsIsGaussianAndUniform) {
    auto model = makeIcModel(smallConfig());
    const ZMatrix& zmatrix = model->flow()->transform().zmatrix();
    torch::Generator g = generator(9);
    const torch::Tensor data = moleculeData(zmatrix, 200, g);
    model->fitStatistics(data);
    // By hand, in doubles: log q(x) = sum over bonds and angles of log N(v; mean, std) (the mean
    // and population standard deviation over the data) - (N - 3) log 2 pi (uniform dihedrals)
    // - log J(z) - log 8 pi^2, for the first configuration.
    const InternalCoordinates ic = InternalCoordinateTransform(zmatrix).toInternal(data);
    auto logNormal = [](const torch::Tensor& column, double value) {
        const double mean = column.mean().item<double>();
        const double variance = ((column - mean) * (column - mean)).mean().item<double>();
        return -0.5 * (value - mean) * (value - mean) / variance - 0.5 * std::log(2 * M_PI * variance);
    };
    double expected = -double(N - 3) * std::log(2 * M_PI) - std::log(8 * M_PI * M_PI);
    for (int64_t k = 0; k < N - 1; k++) {
        const double r = ic.bonds[0][k].item<double>();
        expected += logNormal(ic.bonds.select(1, k), r) - 2 * std::log(r);
    }
    for (int64_t k = 0; k < N - 2; k++) {
        const double theta = ic.angles[0][k].item<double>();
        expected += logNormal(ic.angles.select(1, k), theta) - std::log(std::sin(theta));
    }
    torch::NoGradGuard noGrad;
    EXPECT_NEAR(model->logProb(data.narrow(0, 0, 1), torch::Tensor()).item<double>(), expected, 1e-9);
}

TEST(InternalCoordinateFlowModel, OutsideTheValidDomainLogQIsMinusInfinityNeverNaN) {
    auto model = fittedModel();
    torch::Generator g = generator(10);
    const torch::Tensor x = moleculeData(model->flow()->transform().zmatrix(), 4, g);
    torch::Tensor bad = x.clone();
    bad[0][0] = bad[0][2];  // atom 0 on atom 2: a zero bond
    // Atoms 2, 0, 4 on a line along x (their y and z equal exactly): the angle (4, 0, 2) is pi.
    const torch::Tensor step = torch::tensor({0.12, 0.0, 0.0}, torch::kFloat64);
    bad[1][0] = bad[1][2] + step;
    bad[1][4] = bad[1][2] + 2 * step;
    bad[2][5] = std::numeric_limits<double>::quiet_NaN();  // non-finite positions
    const torch::Tensor logQ = model->logProb(bad, torch::Tensor());
    EXPECT_EQ(logQ[0].item<double>(), -std::numeric_limits<double>::infinity());
    EXPECT_EQ(logQ[1].item<double>(), -std::numeric_limits<double>::infinity());
    EXPECT_EQ(logQ[2].item<double>(), -std::numeric_limits<double>::infinity());
    EXPECT_TRUE(std::isfinite(logQ[3].item<double>()));

    // A bond standard deviation of 0.08 nm around 0.12 nm puts a few percent of the sampled bonds
    // below zero: those samples get -inf, the others their density, and gradients stay finite.
    auto wide = fittedModel();
    {
        torch::NoGradGuard noGrad;
        wide->flow()->named_buffers()["bond_std"].fill_(0.08);
    }
    ModelSample s = wide->sample(64, g);
    const torch::Tensor valid = torch::isfinite(s.logQ);
    EXPECT_FALSE(torch::isnan(s.logQ).any().item<bool>());
    EXPECT_GT(valid.logical_not().sum().item<int64_t>(), 0);
    EXPECT_GT(valid.sum().item<int64_t>(), 0);
    EXPECT_TRUE((s.logQ.masked_select(valid.logical_not()) == -std::numeric_limits<double>::infinity()).all().item<bool>());
    s.logQ.masked_select(valid).sum().backward();
    for (auto& p : wide->module().parameters())
        EXPECT_TRUE(p.grad().defined() && torch::isfinite(p.grad()).all().item<bool>());
    torch::NoGradGuard noGrad;
    const torch::Tensor again = wide->logProb(s.x, s.aux);
    EXPECT_LT((again.masked_select(valid) - s.logQ.masked_select(valid)).abs().max().item<double>(), 1e-8);
}

TEST(InternalCoordinateFlowModel, IsDifferentiableInItsParametersUnlessUnderNoGrad) {
    auto model = fittedModel();
    torch::Generator g = generator(14);
    ModelSample s = model->sample(8, g);
    ASSERT_TRUE(s.logQ.requires_grad());
    const torch::Tensor data = moleculeData(model->flow()->transform().zmatrix(), 8, g);
    (s.logQ.sum() + model->logProb(data, torch::Tensor()).sum()).backward();
    double gradNorm = 0;
    for (auto& p : model->module().parameters())
        gradNorm += p.grad().norm().item<double>();
    EXPECT_GT(gradNorm, 0.0);
    EXPECT_TRUE(std::isfinite(gradNorm));
    // A sample is a function of its base draws: a subset of kept draws gives the same samples.
    torch::Generator g1 = generator(17), g2 = generator(17);
    const torch::Tensor base = model->sampleBase(6, g1);
    ModelSample all = model->sample(6, g2), some = model->baseToSample(base.narrow(0, 2, 3)).first;
    EXPECT_TRUE(torch::allclose(some.x, all.x.narrow(0, 2, 3), 0, 1e-14));
    EXPECT_TRUE(torch::allclose(some.logQ, all.logQ.narrow(0, 2, 3), 0, 1e-12));
    torch::NoGradGuard noGrad;
    EXPECT_FALSE(model->sample(2, g).logQ.requires_grad());
}

TEST(InternalCoordinateFlowModel, IsAModelWithoutAuxiliaryVariables) {
    auto model = fittedModel();
    EXPECT_EQ(modelFamilyOf(smallConfig().dump()), "ic");
    EXPECT_EQ(model->family(), "ic");
    EXPECT_EQ(model->numParticles(), N);
    EXPECT_EQ(model->dim(), 3);
    EXPECT_FALSE(model->hasAuxiliary());
    torch::NoGradGuard noGrad;
    torch::Generator g = generator(15);
    const torch::Tensor x = moleculeData(model->flow()->transform().zmatrix(), 5, g);
    const torch::Tensor aux = model->sampleAuxiliary(x, g);
    EXPECT_EQ(aux.sizes(), (std::vector<int64_t>{5, 0}));
    EXPECT_TRUE(torch::equal(model->logAuxiliaryTarget(x, aux), torch::zeros({5}, torch::kFloat64)));
    EXPECT_TRUE(torch::equal(model->marginalLogProb(x, 3, g), model->logProb(x, aux)));
    EXPECT_TRUE(torch::equal(model->logProb(x, torch::Tensor()), model->logProb(x, aux)));
    EXPECT_THROW(model->logProb(x, torch::zeros({5, 1}, torch::kFloat64)), std::invalid_argument);
}

TEST(InternalCoordinateFlowModel, ModelFilesKeepParametersAndStatistics) {
    auto model = fittedModel();
    const std::string path = (std::filesystem::temp_directory_path() / "openmmbg-test-ic-model.bgm").string();
    saveModel(*model, path);
    std::shared_ptr<Model> loaded = loadModel(path);
    std::filesystem::remove(path);
    EXPECT_EQ(loaded->family(), "ic");
    EXPECT_EQ(loaded->configJson(), model->configJson());
    const auto names = model->namedTensors();
    EXPECT_TRUE(std::any_of(names.begin(), names.end(), [](const auto& item) { return item.first == "dihedral_shift"; }));
    torch::NoGradGuard noGrad;
    torch::Generator g1 = generator(16), g2 = generator(16);
    ModelSample s = model->sample(32, g1), t = loaded->sample(32, g2);
    EXPECT_TRUE(torch::equal(s.x, t.x));
    EXPECT_TRUE(torch::equal(loaded->logProb(s.x, s.aux), model->logProb(s.x, s.aux)));
    // A fresh model of the same configuration differs until the file's tensors are loaded.
    EXPECT_FALSE(torch::equal(makeModel(model->configJson())->logProb(s.x, s.aux), model->logProb(s.x, s.aux)));
}

TEST(InternalCoordinateFlowConfig, DefaultsAreTheFabAlanineDipeptideFlowAndRoundTrip) {
    nlohmann::json minimal = {{"family", "ic"}, {"num_particles", N}, {"zmatrix", ZMATRIX}};
    const InternalCoordinateFlowConfig c = InternalCoordinateFlowConfig::fromJson(minimal.dump());
    EXPECT_EQ(c.numLayers, 12);
    EXPECT_EQ(c.hiddenUnits, 256);
    EXPECT_EQ(c.numBlocks, 1);
    EXPECT_EQ(c.numBins, 8);
    EXPECT_EQ(c.tailBound, 5.0);
    EXPECT_EQ(c.temperature, 300.0);
    EXPECT_EQ(c.dim, 3);
    EXPECT_EQ(nlohmann::json::parse(InternalCoordinateFlowConfig::fromJson(c.toJson()).toJson()),
              nlohmann::json::parse(c.toJson()));
}

TEST(InternalCoordinateFlowConfig, ErrorsNameTheKey) {
    auto with = [](const char* key, const nlohmann::json& value) {
        nlohmann::json config = smallConfig();
        config[key] = value;
        return config;
    };
    nlohmann::json missing = smallConfig();
    missing.erase("zmatrix");
    const std::vector<std::pair<nlohmann::json, std::string>> cases = {
        {with("colour", 1), "unknown key 'colour'"},
        {missing, "'zmatrix'"},
        {with("num_layers", "12"), "'num_layers' has the wrong type: must be an integer"},
        {with("tail_bound", "wide"), "'tail_bound' has the wrong type: must be a number"},
        {with("dtype", 64), "'dtype' has the wrong type: must be a string"},
        {with("num_particles", 2), "num_particles"},
        {with("dim", 2), "dim must be 3"},
        {with("num_layers", 0), "num_layers"},
        {with("hidden_units", 0), "hidden_units"},
        {with("num_blocks", 0), "num_blocks"},
        {with("num_bins", 0), "num_bins"},
        {with("tail_bound", -1.0), "tail_bound"},
        {with("dtype", "float16"), "dtype"},
        {with("length_unit", "bohr"), "length_unit"},
        {with("temperature", 0), "temperature"},
        {with("family", "eacf"), "family"},
        {with("zmatrix", 3), "'zmatrix'"},
        {with("zmatrix", nlohmann::json::array({{0, -1, -1}})), "'zmatrix'"},
        {with("zmatrix", nlohmann::json::array(
                             {{0, -1, -1, -1}, {1, 0, -1, -1}, {2, 1, 0, -1}, {3, 2, 1, 0}, {4, 3, 2, 1}, {5, 9, 2, 1}})),
         "'zmatrix': Z-matrix: row 5"},
        {with("zmatrix", nlohmann::json::array({{0, -1, -1, -1}, {1, 0, -1, -1}, {2, 1, 0, -1}})), "'zmatrix' has 3 rows"},
    };
    for (const auto& [config, expected] : cases) {
        const std::string message = errorOf(config);
        EXPECT_NE(message.find(expected), std::string::npos) << "expected '" << expected << "' in '" << message << "'";
        EXPECT_EQ(message.rfind("flow config: ", 0), 0u) << message;
    }
    EXPECT_THROW(makeModel(with("num_bins", 0).dump()), std::invalid_argument);
}

TEST(InternalCoordinateFlowModel, InitialiseFromDataFitsOnlyAnUnfittedModel) {
    // Maximum-likelihood training calls initialiseFromData before a fresh run: an untrained model
    // takes its statistics from the data, a fitted (trained or loaded) one keeps its own.
    auto model = makeIcModel(smallConfig());
    torch::Generator g = generator(21);
    const ZMatrix& zmatrix = model->flow()->transform().zmatrix();
    const torch::Tensor first = moleculeData(zmatrix, 200, g), second = 1.5 * moleculeData(zmatrix, 200, g);
    EXPECT_FALSE(model->flow()->statisticsFitted());
    model->initialiseFromData(first);
    EXPECT_TRUE(model->flow()->statisticsFitted());
    auto reference = makeIcModel(smallConfig());
    reference->fitStatistics(first);
    const torch::Tensor x = moleculeData(zmatrix, 5, g);
    EXPECT_TRUE(torch::equal(model->logProb(x, torch::Tensor()), reference->logProb(x, torch::Tensor())));
    model->initialiseFromData(second);  // scaled bonds: other statistics, if they were taken
    EXPECT_TRUE(torch::equal(model->logProb(x, torch::Tensor()), reference->logProb(x, torch::Tensor())));
    // The flag travels with the model file.
    auto loaded = deserializeModel(serializeModel(*model));
    EXPECT_TRUE(std::dynamic_pointer_cast<InternalCoordinateFlowModel>(loaded)->flow()->statisticsFitted());
}

namespace {

// A target with a known normalising constant on the zero-centroid subspace: Z times the density of
// another internal-coordinate model (normalised there), U(x)/kT = -log q_ref(x) - log Z; forces by
// autograd (Target's default).
class IcModelTarget : public Target {
public:
    IcModelTarget(std::shared_ptr<Model> reference, double logZ) : reference(std::move(reference)), logZ(logZ) {}
    int numParticles() const override { return int(N); }
    int dim() const override { return 3; }
    std::string name() const override { return "ic-model"; }
    torch::Tensor energy(const torch::Tensor& x) override {
        return -(reference->logProb(x.to(torch::kFloat64), torch::Tensor()) + logZ);
    }

private:
    std::shared_ptr<Model> reference;
    double logZ;
};

std::shared_ptr<IcModelTarget> icModelTarget(double logZ) {
    // The untrained model with the test data's statistics: Gaussian bonds and angles, uniform dihedrals.
    auto reference = makeIcModel(smallConfig());
    torch::Generator g = generator(11);
    reference->fitStatistics(moleculeData(reference->flow()->transform().zmatrix(), 500, g));
    return std::make_shared<IcModelTarget>(reference, logZ);
}

}  // namespace

TEST(InternalCoordinateFlowModel, AisFromItIsUnbiasedForZ) {
    // FAB's sampler on the family's joint space (x with no auxiliary variables, centroid fixed):
    // with alpha = 1, E[w] = Z for any number of intermediate distributions. The flow (random final
    // layers) differs from the target's density, so the weights vary and the HMC transitions matter.
    // Statistical tolerance: 4 standard errors, the error itself below 5 %.
    const double logZ = 1.3;
    auto target = icModelTarget(logZ);
    auto model = makeIcModel(smallConfig());
    torch::Generator g = generator(11);
    model->fitStatistics(moleculeData(model->flow()->transform().zmatrix(), 500, g));
    randomizeFinalLayers(model->flow(), 0.03, 12);
    AisOptions o;
    o.alpha = 1.0;
    o.numIntermediate = 2;
    // nm, unit masses: the stiffest directions of these densities need steps below ~0.001 nm
    // (acceptance 0.77 / 0.90 at 0.0005 nm, 0.04 / 0.20 at 0.002 nm).
    o.initialStepSize = 0.0005;
    AnnealedImportanceSampler ais(o);
    TargetJointDensity p(target, *model);
    const int64_t n = 1000;
    AisResult r = ais.runFromFlow(*model, p, n, g);
    EXPECT_EQ(r.a.sizes(), (std::vector<int64_t>{n, 0}));
    torch::Tensor w = torch::exp(r.logWeights - logZ);
    const double mean = w.mean().item<double>(), sem = w.std().item<double>() / std::sqrt(double(n));
    std::printf("ic AIS: mean w / Z = %.4f +- %.4f, acceptance %.3f %.3f, step sizes %.4f %.4f\n", mean, sem,
                r.acceptance[0], r.acceptance[1], ais.stepSizes[0], ais.stepSizes[1]);
    EXPECT_LT(sem, 0.05);
    EXPECT_NEAR(mean, 1.0, 4 * sem) << "mean w / Z";
    EXPECT_GT(r.acceptance[0], 0.3) << "the HMC transitions must move";
    EXPECT_GT(w.std().item<double>(), 0.05) << "the flow must differ from the target for the test to mean something";
    EXPECT_LT(r.x.mean(1).abs().max().item<double>(), 1e-12) << "x left the zero-centroid subspace";
}

TEST(InternalCoordinateFlowModel, FabAndReverseKlTrainItAndResumeExactly) {
    const std::string path =
        (std::filesystem::temp_directory_path() / "openmmbg_ic_energy_resume.checkpoint").string();
    for (const std::string objective : {"fab", "reverse-kl"}) {
        std::filesystem::remove(path);
        auto options = [&](const std::string& checkpoint) {
            EnergyTrainingOptions o;
            o.objective = objective;
            o.iterations = 4;
            o.batchSize = 16;
            o.numIntermediate = 2;
            o.initialStepSize = 0.0005;
            o.updatesPerIteration = 2;
            o.bufferMinBatches = 2;
            o.bufferMaxBatches = 4;
            o.reportEvery = 1;
            o.evaluateEvery = 2;
            o.numEssSamples = 32;
            o.aisEss = false;
            o.peakLearningRate = 1e-3;
            o.checkpointPath = checkpoint;
            o.checkpointEvery = 1;
            return o;
        };
        auto target = icModelTarget(0.0);
        auto straight = fittedModel();
        auto reference = EnergyTrainer(straight, target, options("")).run();
        ASSERT_EQ(reference.size(), 4u);
        EnergyTrainingOptions first = options(path);
        first.stopAfterIteration = 2;
        EXPECT_EQ(EnergyTrainer(fittedModel(), target, first).run().size(), 2u);
        auto resumed = fittedModel();
        auto full = EnergyTrainer(resumed, target, options(path)).run();
        ASSERT_EQ(full.size(), 4u);
        for (size_t i = 0; i < 4; i++) {
            EXPECT_TRUE(std::isfinite(reference[i].loss)) << objective << " iteration " << i + 1;
            EXPECT_EQ(full[i].loss, reference[i].loss) << objective << " iteration " << i + 1;
            EXPECT_EQ(full[i].acceptance, reference[i].acceptance) << objective << " iteration " << i + 1;
        }
        EXPECT_TRUE(std::isfinite(reference[3].reverseEss)) << objective;
        if (objective == "fab") {
            ASSERT_EQ(reference[3].acceptance.size(), 2u);
            EXPECT_GT(reference[3].acceptance[0], 0.0) << "HMC never accepted";
        }
        auto initial = fittedModel();
        auto p1 = straight->module().parameters(), p2 = resumed->module().parameters(),
             p0 = initial->module().parameters();
        bool moved = false;
        for (size_t i = 0; i < p1.size(); i++) {
            ASSERT_TRUE(torch::equal(p1[i], p2[i])) << objective << ": parameter " << i << " differs after resume";
            moved = moved || !torch::equal(p1[i], p0[i]);
        }
        EXPECT_TRUE(moved) << objective << ": training did not change the parameters";
    }
    std::filesystem::remove(path);
}
