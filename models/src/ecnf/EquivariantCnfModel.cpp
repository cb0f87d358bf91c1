#include "openmmbg/ecnf/EquivariantCnfModel.h"

#include "openmmbg/distributions/Distributions.h"

#include <algorithm>
#include <stdexcept>

namespace OpenMMBG {

namespace {

EgnnVectorFieldOptions fieldOptions(const EquivariantCnfConfig& c) {
    EgnnVectorFieldOptions o;
    o.numParticles = c.numParticles;
    o.dim = c.dim;
    o.numLayers = c.numLayers;
    o.hiddenUnits = c.hiddenUnits;
    o.atomTypes = c.atomTypes;
    return o;
}

}  // namespace

EquivariantCnfModel::EquivariantCnfModel(const EquivariantCnfConfig& config)
    : config_(config), probeGenerator_(at::detail::createCPUGenerator(uint64_t(config.initSeed))) {
    config_.validate();
    torch::manual_seed(config_.initSeed);
    field_ = EgnnVectorField(fieldOptions(config_));
    field_->to(config_.dtype == "float64" ? torch::kFloat64 : torch::kFloat32);
}

torch::TensorOptions EquivariantCnfModel::options() const {
    const torch::Tensor w = field_->parameters().front();
    return torch::TensorOptions().dtype(w.scalar_type()).device(w.device());
}

VectorField EquivariantCnfModel::vectorField() {
    EgnnVectorField field = field_;
    return [field](const torch::Tensor& t, const torch::Tensor& x) mutable { return field->forward(t, x); };
}

OdeOptions EquivariantCnfModel::odeOptions() const {
    OdeOptions o;
    o.method = config_.solver;
    o.rtol = config_.rtol;
    o.atol = config_.atol;
    o.fixedSteps = config_.rk4Steps;
    o.maxSteps = config_.maxSteps;
    return o;
}

torch::Tensor EquivariantCnfModel::sampleBase(int64_t n, torch::Generator& generator) {
    const int64_t N = config_.numParticles, D = config_.dim;
    const auto where = torch::TensorOptions().dtype(torch::kFloat64).device(generator.device());
    torch::Tensor base = CentreOfMassFreeGaussian::sample(n, N, D, generator, where).reshape({n, N * D});
    if (config_.divergence == "hutchinson")
        base = torch::cat({base, torch::randn({n, N * D}, generator, where)}, 1);
    return base.to(options().device());
}

std::pair<ModelSample, torch::Tensor> EquivariantCnfModel::baseToSample(const torch::Tensor& base) {
    const int64_t N = config_.numParticles, D = config_.dim, K = N * D;
    const bool hutchinson = config_.divergence == "hutchinson";
    if (base.dim() != 2 || base.size(1) != (hutchinson ? 2 : 1) * K)
        throw std::invalid_argument("baseToSample: base draws must be [n, " + std::to_string((hutchinson ? 2 : 1) * K) +
                                    "] (got " + c10::str(base.sizes()) + ")");
    const int64_t n = base.size(0);
    const torch::Tensor x0 = base.narrow(1, 0, K).reshape({n, N, D}).to(options());
    const torch::Tensor probe = hutchinson ? base.narrow(1, K, K).reshape({n, N, D}).to(options()) : torch::Tensor();
    CnfResult r = cnfSample(vectorField(), x0, odeOptions(), probe);
    last_ = r.statistics;
    return {ModelSample{r.x, torch::zeros({n, 0}, options()), r.logQ}, torch::zeros({n}, options())};
}

ModelSample EquivariantCnfModel::sample(int64_t n, torch::Generator& generator) {
    return baseToSample(sampleBase(n, generator)).first;
}

torch::Tensor EquivariantCnfModel::logProb(const torch::Tensor& xIn, const torch::Tensor& aux) {
    const int64_t N = config_.numParticles, D = config_.dim;
    if (xIn.dim() != 3 || xIn.size(1) != N || xIn.size(2) != D)
        throw std::invalid_argument("logProb: x must be [B, " + std::to_string(N) + ", " + std::to_string(D) + "] (got " +
                                    c10::str(xIn.sizes()) + ")");
    if (aux.defined() && (aux.dim() != 2 || aux.size(0) != xIn.size(0) || aux.size(1) != 0))
        throw std::invalid_argument("logProb: the family \"ecnf\" has no auxiliary variables; aux must be empty [" +
                                    std::to_string(xIn.size(0)) + ", 0] (got " + c10::str(aux.sizes()) + ")");
    torch::Tensor probe;
    if (config_.divergence == "hutchinson") {
        // logProb has no generator: the probes come from the model's own stream (seeded by init_seed).
        probe = torch::randn({xIn.size(0), N, D}, probeGenerator_, torch::kFloat64).to(options());
    }
    CnfResult r = cnfLogProb(vectorField(), xIn.to(options()), odeOptions(), probe);
    last_ = r.statistics;
    return r.logQ;
}

ModelDensity EquivariantCnfModel::logProbAndPenalty(const torch::Tensor& x, const torch::Tensor& aux) {
    torch::Tensor logQ = logProb(x, aux);
    return {logQ, torch::zeros_like(logQ)};
}

torch::Tensor EquivariantCnfModel::sampleAuxiliary(const torch::Tensor& x, torch::Generator&) {
    return torch::zeros({x.size(0), 0}, options());
}

torch::Tensor EquivariantCnfModel::logAuxiliaryTarget(const torch::Tensor& x, const torch::Tensor&) {
    return torch::zeros({x.size(0)}, options());
}

torch::Tensor EquivariantCnfModel::marginalLogProb(const torch::Tensor& x, int64_t, torch::Generator&) {
    return logProb(x, torch::Tensor());
}

std::vector<std::pair<std::string, torch::Tensor>> EquivariantCnfModel::namedTensors() {
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    for (auto& item : field_->named_parameters())
        tensors.emplace_back(item.key(), item.value());
    return tensors;
}

}  // namespace OpenMMBG
