#include "openmmbg/eacf/AugmentedCouplingFlow.h"

#include <cmath>

namespace OpenMMBG {

torch::Tensor joinState(const torch::Tensor& x, const torch::Tensor& a) { return torch::cat({x.unsqueeze(2), a}, 2); }

namespace {

std::vector<int64_t> range(int64_t begin, int64_t end) {
    std::vector<int64_t> r;
    for (int64_t i = begin; i < end; i++)
        r.push_back(i);
    return r;
}

std::shared_ptr<Projection> makeProjection(const FlowConfig& c) {
    if (c.projection == "spherical")
        return std::make_shared<SphericalProjection>(c.dim, c.numBins, c.maxRadius);
    if (c.projection == "vector")
        return std::make_shared<VectorProjection>(c.dim, c.numBins, c.maxRadius);
    if (c.projection == "cartesian") {
        std::shared_ptr<ScalarTransform> t;
        if (c.cartesianTransform == "spline")
            t = std::make_shared<RationalQuadraticSpline>(-c.cartesianSplineBound, c.cartesianSplineBound, c.numBins);
        else
            t = std::make_shared<AffineTransform>();
        return std::make_shared<CartesianProjection>(c.dim, t);
    }
    return std::make_shared<AmbientProjection>(c.dim, std::make_shared<AffineTransform>());
}

std::shared_ptr<ConditionerImpl> makeConditioner(const FlowConfig& c, int numInputSlots, int numOutputChannels) {
    if (c.projection == "none") {
        TransformerOptions o;
        o.numLayers = c.transformerLayers;
        o.numHeads = c.transformerHeads;
        o.headFeatures = c.transformerHeadFeatures;
        o.mlpUnits = c.transformerMlpUnits;
        o.outputFeatures = c.transformerOutputFeatures;
        o.atomTypes = c.atomTypes;
        return std::make_shared<TransformerImpl>(numInputSlots, c.dim, o);
    }
    EGNNOptions o;
    o.numBlocks = c.egnnBlocks;
    o.mlpUnits = c.egnnMlpUnits;
    o.hiddenFeatures = c.egnnHiddenFeatures;
    o.outputFeatures = c.egnnOutputFeatures;
    o.normalizationConstant = c.egnnNormalizationConstant;
    o.atomTypes = c.atomTypes;
    return std::make_shared<EGNNImpl>(numInputSlots, numOutputChannels, o);
}

}  // namespace

AugmentedCouplingFlowImpl::AugmentedCouplingFlowImpl(const FlowConfig& config) : cfg(config) {
    cfg.validate();
    augmented.sigma = cfg.augScale;
    torch::manual_seed(cfg.initSeed);  // parameter initialisation draws from the global generator
    const int64_t M = 1 + cfg.numAug;
    const int64_t split = (cfg.numAug + 1) / 2;  // slots [0, split) hold x (and the first augmented sets)
    const std::vector<int64_t> first = range(0, split), second = range(split, M);
    const double initScale = cfg.identityInit ? 0.0 : cfg.randomInitScale;
    auto coupling = [&](const std::vector<int64_t>& transformed, const std::vector<int64_t>& conditioning) {
        std::shared_ptr<Projection> projection = makeProjection(cfg);
        int channels = int(transformed.size()) * projection->numVectors();
        if (channels == 0)
            channels = int(conditioning.size());
        auto conditioner = makeConditioner(cfg, int(conditioning.size()), channels);
        return Coupling(transformed, conditioning, conditioner, projection, cfg.headMlpUnits, initScale);
    };
    for (int l = 0; l < cfg.numLayers; l++) {
        Coupling augCoupling = coupling(second, first);
        ShiftCentreOfMass posCoupling(second.front(), coupling(first, second).ptr());
        layers.push_back(register_module("layer" + std::to_string(l) + "_aug", augCoupling.ptr()));
        layers.push_back(register_module("layer" + std::to_string(l) + "_pos", posCoupling.ptr()));
    }
    if (cfg.dtype == "float64")
        to(torch::kFloat64);
}

torch::TensorOptions AugmentedCouplingFlowImpl::options() const {
    return torch::TensorOptions()
        .dtype(cfg.dtype == "float64" ? torch::kFloat64 : torch::kFloat32)
        .device(layers.front()->parameters().front().device());
}

torch::Tensor AugmentedCouplingFlowImpl::baseLogProb(const torch::Tensor& z) const {
    torch::Tensor x = z.select(2, 0);
    return CentreOfMassFreeGaussian::logProb(x) + augmented.logProb(z.narrow(2, 1, cfg.numAug), x);
}

BijectorOutput AugmentedCouplingFlowImpl::applyLayers(const torch::Tensor& z, bool inverse) {
    BijectorOutput out{z, torch::zeros({z.size(0)}, z.options()), torch::zeros({z.size(0)}, z.options())};
    int numAux = 0;
    for (size_t i = 0; i < layers.size(); i++) {
        Bijector& layer = layers[inverse ? layers.size() - 1 - i : i];  // the inverse runs the layers backwards
        BijectorOutput step = inverse ? layer->inverse(out.z) : layer->forward(out.z);
        out.z = step.z;
        out.logDet = out.logDet + step.logDet;
        if (step.aux.defined()) {
            out.aux = out.aux + step.aux;
            numAux++;
        }
    }
    if (numAux > 0)
        out.aux = out.aux / double(numAux);
    return out;
}

FlowSample AugmentedCouplingFlowImpl::sample(int64_t n, torch::Generator& generator) {
    auto opts = options();
    torch::Tensor x0 = CentreOfMassFreeGaussian::sample(n, cfg.numParticles, cfg.dim, generator, opts);
    torch::Tensor a0 = augmented.sample(x0, cfg.numAug, generator);
    torch::Tensor z0 = joinState(x0, a0);
    BijectorOutput out = forwardMap(z0);
    torch::Tensor z = out.z;
    return {z.select(2, 0), z.narrow(2, 1, cfg.numAug), baseLogProb(z0) - out.logDet};
}

FlowDensity AugmentedCouplingFlowImpl::logProbWithAux(const torch::Tensor& x, const torch::Tensor& a) {
    torch::Tensor z = centreOn(joinState(x, a), 0);
    BijectorOutput out = inverseMap(z);
    return {baseLogProb(out.z) + out.logDet, out.aux};
}

torch::Tensor AugmentedCouplingFlowImpl::logAugmentedTarget(const torch::Tensor& x, const torch::Tensor& a) const {
    // pi(a|x) is translation invariant, so centring both on the CoM of x changes nothing.
    return augmented.logProb(a, x);
}

torch::Tensor AugmentedCouplingFlowImpl::sampleAugmented(const torch::Tensor& x, torch::Generator& generator) const {
    return augmented.sample(x, cfg.numAug, generator);
}

torch::Tensor AugmentedCouplingFlowImpl::marginalLogProb(const torch::Tensor& x, int64_t K,
                                                         torch::Generator& generator, int64_t batchSize) {
    TORCH_CHECK(K >= 1, "marginalLogProb: need at least one augmented sample");
    const int64_t n = x.size(0);
    torch::Tensor xc = x - x.mean(1, true);
    torch::Tensor xr = xc.repeat_interleave(K, 0);  // [n K, N, D], the K copies of each point adjacent
    torch::Tensor a = sampleAugmented(xr, generator);
    std::vector<torch::Tensor> logW;
    for (int64_t start = 0; start < n * K; start += batchSize) {
        int64_t len = std::min(batchSize, n * K - start);
        torch::Tensor xb = xr.narrow(0, start, len), ab = a.narrow(0, start, len);
        logW.push_back(logProb(xb, ab) - logAugmentedTarget(xb, ab));
    }
    torch::Tensor w = torch::cat(logW).view({n, K});
    return torch::logsumexp(w, 1) - std::log(double(K));
}

}  // namespace OpenMMBG
