#include "openmmbg/FlowModel.h"

#include "openmmbg/FlowModelImpl.h"
#include "openmmbg/EnergyTraining.h"
#include "openmmbg/Evaluation.h"
#include "openmmbg/ModelFile.h"
#include "openmmbg/TensorArchive.h"
#include "openmmbg/Target.h"
#include "openmmbg/Training.h"

#include <iostream>

#include <stdexcept>

namespace OpenMMBG {

namespace {

torch::Tensor fromVector(const std::vector<double>& v, std::vector<int64_t> shape, const char* name,
                         const torch::TensorOptions& options) {
    int64_t per = 1;
    for (size_t i = 1; i < shape.size(); i++)
        per *= shape[i];
    if (v.empty() || v.size() % per != 0)
        throw std::invalid_argument(std::string(name) + " has " + std::to_string(v.size()) +
                                    " values, not a positive multiple of " + std::to_string(per));
    shape[0] = int64_t(v.size()) / per;
    return torch::from_blob(const_cast<double*>(v.data()), shape, torch::kFloat64).to(options);
}

}  // namespace

FlowModel::FlowModel(const std::string& configJson)
    : impl_(std::make_shared<Impl>(AugmentedCouplingFlow(FlowConfig::fromJson(configJson)))) {}

FlowModel FlowModel::load(const std::string& path) {
    FlowModel m;
    m.impl_ = std::make_shared<Impl>(loadFlow(path));
    return m;
}

FlowModel FlowModel::fromBytes(const std::string& bytes) {
    FlowModel m;
    m.impl_ = std::make_shared<Impl>(deserializeFlow(bytes));
    return m;
}

void FlowModel::save(const std::string& path) const { saveFlow(impl_->flow, path); }
std::string FlowModel::toBytes() const { return serializeFlow(impl_->flow); }
std::string FlowModel::getConfigJson() const { return impl_->flow->config().toJson(); }
int FlowModel::getNumParticles() const { return impl_->flow->config().numParticles; }
int FlowModel::getDim() const { return impl_->flow->config().dim; }
int FlowModel::getNumAug() const { return impl_->flow->config().numAug; }

void FlowModel::setDevice(const std::string& device) {
    torch::Device target = torch::kCPU;
    try {
        target = torch::Device(device);
    } catch (const std::exception&) {
        throw std::invalid_argument("setDevice: '" + device + "' is not a device name (use \"cpu\" or \"cuda:N\")");
    }
    if (target.is_cuda() && !at::hasCUDA())
        throw std::runtime_error("setDevice: '" + device + "' requested but this LibTorch has no CUDA support loaded");
    torch::NoGradGuard guard;
    impl_->flow->to(target);
}

std::string FlowModel::getDevice() const { return impl_->flow->options().device().str(); }

long long FlowModel::getNumParameters() const {
    long long n = 0;
    for (auto& p : impl_->flow->parameters())
        n += p.numel();
    return n;
}

std::vector<double> FlowModel::sample(int n, long long seed) const {
    if (n < 1)
        throw std::invalid_argument("sample: n must be positive (got " + std::to_string(n) + ")");
    torch::NoGradGuard guard;
    torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    FlowSample s = impl_->flow->sample(n, gen);
    std::vector<double> out = toHostDoubles(s.x), a = toHostDoubles(s.a), logQ = toHostDoubles(s.logQ);
    out.insert(out.end(), a.begin(), a.end());
    out.insert(out.end(), logQ.begin(), logQ.end());
    return out;
}

std::vector<double> FlowModel::logProb(const std::vector<double>& xv, const std::vector<double>& av) const {
    const FlowConfig& c = impl_->flow->config();
    torch::NoGradGuard guard;
    auto opts = impl_->flow->options();
    torch::Tensor x = fromVector(xv, {0, c.numParticles, c.dim}, "x", opts);
    torch::Tensor a = fromVector(av, {0, c.numParticles, c.numAug, c.dim}, "a", opts);
    if (x.size(0) != a.size(0))
        throw std::invalid_argument("x holds " + std::to_string(x.size(0)) + " configurations but a holds " +
                                    std::to_string(a.size(0)));
    return toHostDoubles(impl_->flow->logProb(x, a));
}

std::vector<double> FlowModel::marginalLogProb(const std::vector<double>& xv, int numAugSamples, long long seed) const {
    const FlowConfig& c = impl_->flow->config();
    if (numAugSamples < 1)
        throw std::invalid_argument("marginal_log_prob: num_aug_samples must be positive");
    torch::NoGradGuard guard;
    torch::Tensor x = fromVector(xv, {0, c.numParticles, c.dim}, "x", impl_->flow->options());
    torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    return toHostDoubles(impl_->flow->marginalLogProb(x, numAugSamples, gen));
}

std::vector<double> FlowModel::sampleAugmented(const std::vector<double>& xv, long long seed) const {
    const FlowConfig& c = impl_->flow->config();
    torch::NoGradGuard guard;
    torch::Tensor x = fromVector(xv, {0, c.numParticles, c.dim}, "x", impl_->flow->options());
    torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    return toHostDoubles(impl_->flow->sampleAugmented(x, gen));
}

std::vector<double> FlowModel::logAugmentedTarget(const std::vector<double>& xv, const std::vector<double>& av) const {
    const FlowConfig& c = impl_->flow->config();
    auto opts = impl_->flow->options();
    torch::Tensor x = fromVector(xv, {0, c.numParticles, c.dim}, "x", opts);
    torch::Tensor a = fromVector(av, {0, c.numParticles, c.numAug, c.dim}, "a", opts);
    return toHostDoubles(impl_->flow->logAugmentedTarget(x, a));
}

std::string FlowModel::trainMaximumLikelihood(const std::vector<double>& trainValues,
                                              const std::vector<double>& validationValues,
                                              const std::string& optionsJson, bool verbose) {
    const FlowConfig& c = impl_->flow->config();
    if (!impl_->flow->options().device().is_cpu())
        throw std::invalid_argument("train: the flow is on " + getDevice() + "; training runs on the CPU (setDevice(\"cpu\"))");
    MaximumLikelihoodOptions options = maximumLikelihoodOptionsFromJson(optionsJson);
    if (optionsJson.find("\"random_rotations\"") == std::string::npos)
        options.randomRotations = c.projection == "none";  // Non-E-ACF trains with rotation augmentation
    torch::Tensor train = fromVector(trainValues, {0, c.numParticles, c.dim}, "train", torch::kFloat64);
    torch::Tensor validation;
    if (!validationValues.empty())
        validation = fromVector(validationValues, {0, c.numParticles, c.dim}, "validation", torch::kFloat64);
    MaximumLikelihoodTrainer trainer(impl_->flow, train, validation, options);
    std::string reports = "[";
    trainer.run([&](const EpochReport& r) {
        if (verbose)
            std::cerr << formatEpochReport(r) << std::endl;
        reports += (reports.size() > 1 ? "," : "") + epochReportToJson(r);
    });
    return reports + "]";
}

std::string FlowModel::trainEnergy(const std::string& targetName, const std::string& optionsJson, bool verbose) {
    if (!impl_->flow->options().device().is_cpu())
        throw std::invalid_argument("train_energy: the flow is on " + getDevice() + "; training runs on the CPU (setDevice(\"cpu\"))");
    EnergyTrainingOptions options = energyTrainingOptionsFromJson(optionsJson);
    EnergyTrainer trainer(impl_->flow, makeBuiltinTarget(targetName), options);
    std::string reports = "[";
    trainer.run([&](const EnergyTrainingReport& r) {
        if (verbose)
            std::cerr << formatEnergyTrainingReport(r) << std::endl;
        reports += (reports.size() > 1 ? "," : "") + energyTrainingReportToJson(r);
    });
    return reports + "]";
}

std::string FlowModel::evaluate(const std::string& targetName, const std::vector<double>& testValues,
                                int numAugSamples, long long numEssSamples, long long seed) const {
    std::shared_ptr<Target> target = makeBuiltinTarget(targetName);
    const FlowConfig& c = impl_->flow->config();
    if (target->numParticles() != c.numParticles || target->dim() != c.dim)
        throw std::invalid_argument("evaluate: target '" + targetName + "' has " + std::to_string(target->numParticles()) +
                                    " particles in " + std::to_string(target->dim()) + "-D but the model describes " +
                                    std::to_string(c.numParticles) + " in " + std::to_string(c.dim) + "-D");
    if (numAugSamples < 1 || numEssSamples < 1)
        throw std::invalid_argument("evaluate: num_aug_samples and num_ess_samples must be positive");
    torch::Tensor test = fromVector(testValues, {0, c.numParticles, c.dim}, "test", torch::kFloat64);
    return evaluateFlow(impl_->flow, *target, test, numAugSamples, numEssSamples, uint64_t(seed)).toJson();
}

std::vector<double> builtinTargetEnergies(const std::string& targetName, const std::vector<double>& xValues) {
    std::shared_ptr<Target> target = makeBuiltinTarget(targetName);
    torch::NoGradGuard guard;
    torch::Tensor x = fromVector(xValues, {0, target->numParticles(), target->dim()}, "x", torch::kFloat64);
    return toHostDoubles(target->energy(x));
}

}  // namespace OpenMMBG
