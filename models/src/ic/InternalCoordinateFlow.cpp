#include "openmmbg/ic/InternalCoordinateFlow.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

namespace OpenMMBG {

namespace {

const double LOG_2PI = std::log(2.0 * M_PI);
// The floor of a fitted standard deviation (length unit for bonds, radians for angles).
const double MIN_STD = 1e-3;

// The Z-matrix of a flow configuration, after checking all of it (so errors name the configuration key).
ZMatrix zmatrixOf(const InternalCoordinateFlowConfig& config) {
    config.validate();
    std::vector<ZMatrixRow> rows;
    for (const auto& r : config.zmatrix)
        rows.push_back({r[0], r[1], r[2], r[3]});
    return ZMatrix(std::move(rows));
}

torch::Tensor indexTensor(const std::vector<int64_t>& indices) { return torch::tensor(indices, torch::kLong); }

/**
 * The halves of the features for each pair of coupling layers: a permutation by Fisher-Yates from
 * a 64-bit Mersenne twister seeded with `seed` (both fully specified by the C++ standard, unlike
 * std::shuffle), so a configuration gives the same layers on every platform.
 */
std::vector<std::vector<int64_t>> randomHalves(int64_t numFeatures, int numPairs, int64_t seed) {
    std::mt19937_64 engine{uint64_t(seed)};
    std::vector<std::vector<int64_t>> halves;
    for (int p = 0; p < numPairs; p++) {
        std::vector<int64_t> order(numFeatures);
        for (int64_t i = 0; i < numFeatures; i++)
            order[i] = i;
        for (int64_t i = numFeatures - 1; i > 0; i--)
            std::swap(order[i], order[int64_t(engine() % uint64_t(i + 1))]);
        const auto middle = order.begin() + numFeatures / 2;
        std::vector<int64_t> first(order.begin(), middle), second(middle, order.end());
        std::sort(first.begin(), first.end());
        std::sort(second.begin(), second.end());
        halves.push_back(first);
        halves.push_back(second);
    }
    return halves;
}

}  // namespace

torch::Tensor wrapAngle(const torch::Tensor& angle) {
    return angle - (2 * M_PI) * torch::floor((angle + M_PI) / (2 * M_PI));
}

InternalCoordinateCouplingImpl::InternalCoordinateCouplingImpl(int64_t numLinear, int64_t numCircular,
                                                               const std::vector<int64_t>& transformed,
                                                               const InternalCoordinateFlowConfig& config)
    : linearSpline(-config.tailBound, config.tailBound, config.numBins),
      circularSpline(-M_PI, M_PI, config.numBins, true) {
    std::vector<bool> isTransformed(numLinear + numCircular, false);
    for (int64_t i : transformed)
        isTransformed[i] = true;
    std::vector<int64_t> changedLinear, changedCircular, givenLinear, givenCircular;
    for (int64_t i = 0; i < numLinear + numCircular; i++) {
        if (isTransformed[i])
            (i < numLinear ? changedLinear : changedCircular).push_back(i);
        else
            (i < numLinear ? givenLinear : givenCircular).push_back(i);
    }
    transformedLinear = indexTensor(changedLinear);
    transformedCircular = indexTensor(changedCircular);
    conditioningLinear = indexTensor(givenLinear);
    conditioningCircular = indexTensor(givenCircular);
    const int K = config.numBins;
    // Per bond/angle K widths, K heights and the K - 1 interior knot slopes (the end slopes are
    // fixed at 1 for identity tails); per dihedral K widths, K heights and K slopes (the last knot
    // is the first).
    const int64_t numInputs = int64_t(givenLinear.size() + 2 * givenCircular.size());
    const int64_t numOutputs = int64_t(changedLinear.size()) * (3 * K - 1) + int64_t(changedCircular.size()) * (3 * K);
    conditioner = register_module(
        "conditioner", ResidualNet(int(numInputs), config.hiddenUnits, config.numBlocks, int(numOutputs)));
    torch::NoGradGuard guard;
    conditioner->finalLayer->weight.zero_();
    conditioner->finalLayer->bias.zero_();
}

std::pair<torch::Tensor, torch::Tensor> InternalCoordinateCouplingImpl::apply(const torch::Tensor& u, bool inverse) {
    const int64_t B = u.size(0), K = linearSpline.numBins;
    const torch::Device device = u.device();
    const torch::Tensor linear = transformedLinear.to(device), circular = transformedCircular.to(device);
    const int64_t numLinear = linear.size(0), numCircular = circular.size(0);
    const torch::Tensor givenCircular = u.index_select(1, conditioningCircular.to(device));
    const torch::Tensor params = conditioner->forward(torch::cat(
        {u.index_select(1, conditioningLinear.to(device)), torch::cos(givenCircular), torch::sin(givenCircular)}, 1));
    torch::Tensor out = u, logDet = torch::zeros({B}, u.options());
    if (numLinear > 0) {
        const torch::Tensor p = params.narrow(1, 0, numLinear * (3 * K - 1)).view({B, numLinear, 3 * K - 1});
        const torch::Tensor endSlope = torch::zeros({B, numLinear, 1}, u.options());
        // Spline parameters: widths, heights, slope at the first knot, interior slopes, slope at the last.
        const torch::Tensor full = torch::cat({p.narrow(2, 0, 2 * K), endSlope, p.narrow(2, 2 * K, K - 1), endSlope}, 2);
        auto [y, logDeriv] = linearSpline.apply(u.index_select(1, linear), full, inverse);
        out = out.index_copy(1, linear, y);
        logDet = logDet + logDeriv.sum(1);
    }
    if (numCircular > 0) {
        const torch::Tensor p = params.narrow(1, numLinear * (3 * K - 1), numCircular * 3 * K).view({B, numCircular, 3 * K});
        // The circular spline reads K + 1 slopes and ties the last to the first: pad the unused one.
        const torch::Tensor full = torch::cat({p, torch::zeros({B, numCircular, 1}, u.options())}, 2);
        auto [y, logDeriv] = circularSpline.apply(u.index_select(1, circular), full, inverse);
        out = out.index_copy(1, circular, y);
        logDet = logDet + logDeriv.sum(1);
    }
    return {out, logDet};
}

InternalCoordinateFlowImpl::InternalCoordinateFlowImpl(const InternalCoordinateFlowConfig& config)
    : cfg(config), coordinates(zmatrixOf(config)) {
    const int64_t N = cfg.numParticles, numLinear = 2 * N - 3, numCircular = N - 3;
    // Until fitStatistics: standard units and no shift.
    bondMean = register_buffer("bond_mean", torch::zeros({N - 1}));
    bondStd = register_buffer("bond_std", torch::ones({N - 1}));
    angleMean = register_buffer("angle_mean", torch::zeros({N - 2}));
    angleStd = register_buffer("angle_std", torch::ones({N - 2}));
    dihedralShift = register_buffer("dihedral_shift", torch::zeros({N - 3}));
    statisticsFittedFlag = register_buffer("statistics_fitted", torch::zeros({1}));
    torch::manual_seed(cfg.initSeed);  // parameter initialisation draws from the global generator
    const auto halves = randomHalves(numFeatures(), (cfg.numLayers + 1) / 2, cfg.initSeed);
    for (int l = 0; l < cfg.numLayers; l++)
        layers.push_back(register_module("layer" + std::to_string(l),
                                         InternalCoordinateCoupling(numLinear, numCircular, halves[l], cfg)));
    if (cfg.dtype == "float64")
        to(torch::kFloat64);
}

torch::TensorOptions InternalCoordinateFlowImpl::options() const {
    return torch::TensorOptions()
        .dtype(cfg.dtype == "float64" ? torch::kFloat64 : torch::kFloat32)
        .device(bondMean.device());
}

void InternalCoordinateFlowImpl::fitStatistics(const torch::Tensor& x) {
    const int64_t N = cfg.numParticles;
    if (x.dim() != 3 || x.size(0) < 1 || x.size(1) != N || x.size(2) != 3)
        throw std::invalid_argument("fitStatistics: configurations must be [n >= 1, " + std::to_string(N) + ", 3] (got " +
                                    c10::str(x.sizes()) + ")");
    torch::NoGradGuard guard;
    // Statistics in float64 whatever the model's dtype, then stored in it.
    const InternalCoordinates ic = coordinates.toInternal(x.detach().to(torch::kCPU, torch::kFloat64));
    for (const torch::Tensor& v : {ic.bonds, ic.angles, ic.dihedrals})
        if (!torch::isfinite(v).all().item<bool>())
            throw std::invalid_argument("fitStatistics: a configuration has non-finite internal coordinates "
                                        "(coincident atoms or non-finite positions)");
    auto store = [&](torch::Tensor& buffer, const torch::Tensor& value) { buffer.copy_(value.to(buffer.options())); };
    // The population standard deviation: a single configuration gives 0, then the floor.
    auto deviation = [](const torch::Tensor& v) { return (v - v.mean(0)).square().mean(0).sqrt().clamp_min(MIN_STD); };
    store(bondMean, ic.bonds.mean(0));
    store(bondStd, deviation(ic.bonds));
    store(angleMean, ic.angles.mean(0));
    store(angleStd, deviation(ic.angles));
    store(dihedralShift, torch::atan2(torch::sin(ic.dihedrals).mean(0), torch::cos(ic.dihedrals).mean(0)));
    statisticsFittedFlag.fill_(1);
}

bool InternalCoordinateFlowImpl::statisticsFitted() const { return statisticsFittedFlag.item<double>() != 0; }

torch::Tensor InternalCoordinateFlowImpl::logScale() const {
    return torch::log(bondStd).sum() + torch::log(angleStd).sum();
}

std::pair<torch::Tensor, torch::Tensor> InternalCoordinateFlowImpl::standardize(const InternalCoordinates& ic) const {
    const torch::Tensor u = torch::cat({(ic.bonds - bondMean) / bondStd, (ic.angles - angleMean) / angleStd,
                                        wrapAngle(ic.dihedrals - dihedralShift)},
                                       1);
    return {u, -logScale().expand({u.size(0)})};
}

std::pair<InternalCoordinates, torch::Tensor> InternalCoordinateFlowImpl::unstandardize(const torch::Tensor& u) const {
    const int64_t N = cfg.numParticles;
    InternalCoordinates ic;
    ic.bonds = u.narrow(1, 0, N - 1) * bondStd + bondMean;
    ic.angles = u.narrow(1, N - 1, N - 2) * angleStd + angleMean;
    ic.dihedrals = wrapAngle(u.narrow(1, 2 * N - 3, N - 3) + dihedralShift);
    return {ic, logScale().expand({u.size(0)})};
}

std::pair<torch::Tensor, torch::Tensor> InternalCoordinateFlowImpl::applyCouplings(const torch::Tensor& u, bool inverse) {
    torch::Tensor out = u, logDet = torch::zeros({u.size(0)}, u.options());
    for (size_t i = 0; i < layers.size(); i++) {
        auto& layer = layers[inverse ? layers.size() - 1 - i : i];  // the inverse runs the layers backwards
        auto [next, step] = layer->apply(out, inverse);
        out = next;
        logDet = logDet + step;
    }
    return {out, logDet};
}

torch::Tensor InternalCoordinateFlowImpl::baseLogProb(const torch::Tensor& u) const {
    const int64_t numLinear = 2 * cfg.numParticles - 3, numCircular = cfg.numParticles - 3;
    const torch::Tensor gaussian = u.narrow(1, 0, numLinear);
    return -0.5 * (gaussian * gaussian).sum(1) - 0.5 * double(numLinear) * LOG_2PI - double(numCircular) * LOG_2PI;
}

torch::Tensor InternalCoordinateFlowImpl::sampleBase(int64_t n, torch::Generator& generator) const {
    const int64_t numLinear = 2 * cfg.numParticles - 3, numCircular = cfg.numParticles - 3;
    // Drawn on the generator's device and moved: a CPU generator gives the same draws on every device.
    const auto opts = options().device(generator.device());
    const torch::Tensor gaussian = torch::randn({n, numLinear}, generator, opts);
    const torch::Tensor uniform = (2 * M_PI) * torch::rand({n, numCircular}, generator, opts) - M_PI;
    return torch::cat({gaussian, uniform}, 1).to(options().device());
}

torch::Tensor InternalCoordinateFlowImpl::logProb(const InternalCoordinates& ic) {
    auto [u, logDetStandardize] = standardize(ic);
    auto [base, logDetCouplings] = applyCouplings(u, true);
    return baseLogProb(base) + logDetCouplings + logDetStandardize;
}

std::pair<InternalCoordinates, torch::Tensor> InternalCoordinateFlowImpl::fromBase(const torch::Tensor& base) {
    auto [u, logDetCouplings] = applyCouplings(base, false);
    auto [ic, logDetUnstandardize] = unstandardize(u);
    return {ic, baseLogProb(base) - logDetCouplings - logDetUnstandardize};
}

}  // namespace OpenMMBG
