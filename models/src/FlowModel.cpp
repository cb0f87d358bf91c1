#include "openmmbg/FlowModel.h"

#include "openmmbg/eacf/AugmentedCouplingFlowModel.h"
#include "openmmbg/training/EnergyTraining.h"
#include "openmmbg/evaluation/Evaluation.h"
#include "openmmbg/training/FlowMatching.h"
#include "openmmbg/ic/InternalCoordinates.h"
#include "openmmbg/io/ModelFile.h"
#include "openmmbg/io/TensorArchive.h"
#include "openmmbg/targets/Target.h"
#include "openmmbg/training/Training.h"

#include <iostream>

#include <nlohmann/json.hpp>

#include <stdexcept>

namespace OpenMMBG {

struct FlowModel::Impl {
    explicit Impl(std::shared_ptr<Model> m) : model(std::move(m)) {}
    std::shared_ptr<Model> model;
};

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

FlowModel::FlowModel(const std::string& configJson) : impl_(std::make_shared<Impl>(makeModel(configJson))) {}

FlowModel FlowModel::load(const std::string& path) {
    FlowModel m;
    m.impl_ = std::make_shared<Impl>(loadModel(path));
    return m;
}

FlowModel FlowModel::fromBytes(const std::string& bytes) {
    FlowModel m;
    m.impl_ = std::make_shared<Impl>(deserializeModel(bytes));
    return m;
}

void FlowModel::save(const std::string& path) const { saveModel(*impl_->model, path); }
std::string FlowModel::toBytes() const { return serializeModel(*impl_->model); }
std::string FlowModel::getConfigJson() const { return impl_->model->configJson(); }
std::string FlowModel::getFamily() const { return impl_->model->family(); }
int FlowModel::getNumParticles() const { return int(impl_->model->numParticles()); }
int FlowModel::getDim() const { return int(impl_->model->dim()); }
std::vector<long long> FlowModel::getAuxiliaryShape() const {
    const std::vector<int64_t> shape = impl_->model->auxiliaryShape();
    return std::vector<long long>(shape.begin(), shape.end());
}
std::shared_ptr<Model> FlowModel::model() const { return impl_->model; }

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
    impl_->model->to(target);
}

std::string FlowModel::getDevice() const { return impl_->model->options().device().str(); }

long long FlowModel::getNumParameters() const {
    long long n = 0;
    for (auto& p : impl_->model->module().parameters())
        n += p.numel();
    return n;
}

std::vector<double> FlowModel::sample(int n, long long seed) const {
    if (n < 1)
        throw std::invalid_argument("sample: n must be positive (got " + std::to_string(n) + ")");
    torch::NoGradGuard guard;
    torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    ModelSample s = impl_->model->sample(n, gen);
    std::vector<double> out = toHostDoubles(s.x), a = toHostDoubles(s.aux), logQ = toHostDoubles(s.logQ);
    out.insert(out.end(), a.begin(), a.end());
    out.insert(out.end(), logQ.begin(), logQ.end());
    return out;
}

namespace {

// x [n, N, D] of the model from flat values.
torch::Tensor configurations(const Model& model, const std::vector<double>& values, const char* name) {
    return fromVector(values, {0, model.numParticles(), model.dim()}, name, model.options());
}

// aux [n, ...] of the model for n configurations from flat values.
torch::Tensor auxiliaries(const FlowModel& flow, const std::vector<double>& values, int64_t n) {
    std::vector<int64_t> shape = {0};
    int64_t perConfiguration = 1;
    for (long long s : flow.getAuxiliaryShape()) {
        shape.push_back(s);
        perConfiguration *= s;
    }
    if (perConfiguration == 0) {  // a family without auxiliary variables: aux is [n, 0]
        if (!values.empty())
            throw std::invalid_argument("aux: the model has no auxiliary variables (got " + std::to_string(values.size()) +
                                        " values)");
        shape[0] = n;
        return torch::zeros(shape, flow.model()->options());
    }
    torch::Tensor aux = fromVector(values, shape, "aux", flow.model()->options());
    if (aux.size(0) != n)
        throw std::invalid_argument("x holds " + std::to_string(n) + " configurations but a holds " +
                                    std::to_string(aux.size(0)));
    return aux;
}

// Fails unless the model is on the CPU, where training runs.
void requireCpu(const FlowModel& flow, const std::string& who) {
    if (!flow.model()->options().device().is_cpu())
        throw std::invalid_argument(who + ": the flow is on " + flow.getDevice() +
                                    "; training runs on the CPU (setDevice(\"cpu\"))");
}

}  // namespace

std::vector<double> FlowModel::logProb(const std::vector<double>& xv, const std::vector<double>& av) const {
    torch::NoGradGuard guard;
    torch::Tensor x = configurations(*impl_->model, xv, "x");
    torch::Tensor a = auxiliaries(*this, av, x.size(0));
    return toHostDoubles(impl_->model->logProb(x, a));
}

std::vector<double> FlowModel::marginalLogProb(const std::vector<double>& xv, int numAugSamples, long long seed) const {
    if (numAugSamples < 1)
        throw std::invalid_argument("marginal_log_prob: num_aug_samples must be positive");
    torch::NoGradGuard guard;
    torch::Tensor x = configurations(*impl_->model, xv, "x");
    torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    return toHostDoubles(impl_->model->marginalLogProb(x, numAugSamples, gen));
}

std::vector<double> FlowModel::sampleAugmented(const std::vector<double>& xv, long long seed) const {
    torch::NoGradGuard guard;
    torch::Tensor x = configurations(*impl_->model, xv, "x");
    torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    return toHostDoubles(impl_->model->sampleAuxiliary(x, gen));
}

std::vector<double> FlowModel::logAugmentedTarget(const std::vector<double>& xv, const std::vector<double>& av) const {
    torch::Tensor x = configurations(*impl_->model, xv, "x");
    torch::Tensor a = auxiliaries(*this, av, x.size(0));
    return toHostDoubles(impl_->model->logAuxiliaryTarget(x, a));
}

namespace {

// Training configurations [n, N, D] and validation configurations (undefined when none) from flat arrays.
std::pair<torch::Tensor, torch::Tensor> trainingData(const Model& model, const std::vector<double>& trainValues,
                                                     const std::vector<double>& validationValues) {
    const int64_t N = model.numParticles(), D = model.dim();
    torch::Tensor train = fromVector(trainValues, {0, N, D}, "train", torch::kFloat64);
    torch::Tensor validation;
    if (!validationValues.empty())
        validation = fromVector(validationValues, {0, N, D}, "validation", torch::kFloat64);
    return {train, validation};
}

// Runs a trainer of the one training loop: progress lines to stderr when verbose; the reports as a JSON array.
template <class Trainer>
std::string runCollectingReports(Trainer& trainer, bool verbose) {
    std::string reports = "[";
    trainer.run([&](const TrainingReport& r) {
        if (verbose)
            std::cerr << formatTrainingReport(r) << std::endl;
        reports += (reports.size() > 1 ? "," : "") + trainingReportToJson(r);
    });
    return reports + "]";
}

}  // namespace

std::string FlowModel::trainMaximumLikelihood(const std::vector<double>& trainValues,
                                              const std::vector<double>& validationValues,
                                              const std::string& optionsJson, bool verbose) {
    requireCpu(*this, "train");
    MaximumLikelihoodOptions options = maximumLikelihoodOptionsFromJson(optionsJson);
    auto [train, validation] = trainingData(*impl_->model, trainValues, validationValues);
    MaximumLikelihoodTrainer trainer(impl_->model, train, validation, options);
    return runCollectingReports(trainer, verbose);
}

std::string FlowModel::trainFlowMatching(const std::vector<double>& trainValues,
                                         const std::vector<double>& validationValues, const std::string& optionsJson,
                                         bool verbose) {
    requireCpu(*this, "train_flow_matching");
    FlowMatchingOptions options = flowMatchingOptionsFromJson(optionsJson);
    auto [train, validation] = trainingData(*impl_->model, trainValues, validationValues);
    FlowMatchingTrainer trainer(impl_->model, train, validation, options);
    return runCollectingReports(trainer, verbose);
}

std::string FlowModel::trainEnergy(const std::string& targetName, const std::string& optionsJson, bool verbose) {
    requireCpu(*this, "train_energy");
    EnergyTrainingOptions options = energyTrainingOptionsFromJson(optionsJson);
    EnergyTrainer trainer(impl_->model, makeBuiltinTarget(targetName), options);
    return runCollectingReports(trainer, verbose);
}

std::string FlowModel::evaluate(const std::string& targetName, const std::vector<double>& testValues,
                                int numAugSamples, long long numEssSamples, long long seed) const {
    std::shared_ptr<Target> target = makeBuiltinTarget(targetName);
    const Model& model = *impl_->model;
    if (target->numParticles() != model.numParticles() || target->dim() != model.dim())
        throw std::invalid_argument("evaluate: target '" + targetName + "' has " + std::to_string(target->numParticles()) +
                                    " particles in " + std::to_string(target->dim()) + "-D but the model describes " +
                                    std::to_string(model.numParticles()) + " in " + std::to_string(model.dim()) + "-D");
    if (numAugSamples < 1 || numEssSamples < 1)
        throw std::invalid_argument("evaluate: num_aug_samples and num_ess_samples must be positive");
    torch::Tensor test = fromVector(testValues, {0, model.numParticles(), model.dim()}, "test", torch::kFloat64);
    return evaluateFlow(*impl_->model, *target, test, numAugSamples, numEssSamples, uint64_t(seed)).toJson();
}

std::vector<double> builtinTargetEnergies(const std::string& targetName, const std::vector<double>& xValues) {
    std::shared_ptr<Target> target = makeBuiltinTarget(targetName);
    torch::NoGradGuard guard;
    torch::Tensor x = fromVector(xValues, {0, target->numParticles(), target->dim()}, "x", torch::kFloat64);
    return toHostDoubles(target->energy(x));
}

std::string zmatrixFromBonds(const std::string& moleculeJson) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(moleculeJson);
        const int64_t n = j.at("num_atoms").get<int64_t>();
        const auto bonds = j.at("bonds").get<std::vector<std::pair<int64_t, int64_t>>>();
        const auto heavy = j.at("heavy").get<std::vector<bool>>();
        if (int64_t(heavy.size()) != n)
            throw std::invalid_argument("zmatrix: 'heavy' has " + std::to_string(heavy.size()) + " entries for " +
                                        std::to_string(n) + " atoms");
        const ZMatrix zmatrix = ZMatrix::fromBonds(n, bonds, heavy);  // named: rows() refers into it
        nlohmann::json rows = nlohmann::json::array();
        for (const ZMatrixRow& r : zmatrix.rows())
            rows.push_back({r.atom, r.bond, r.angle, r.dihedral});
        return rows.dump();
    } catch (const nlohmann::json::exception& e) {
        throw std::invalid_argument(std::string("zmatrix: the molecule must be {\"num_atoms\": N, \"bonds\": [[i, j], ...], "
                                                "\"heavy\": [bool, ...]} (") + e.what() + ")");
    }
}

void rethrowAsLibraryError() {
    try {
        throw;
    } catch (const c10::OutOfMemoryError&) {  // a device allocator's
        throw std::bad_alloc();
    } catch (const c10::Error& e) {
        const std::string message = e.what_without_backtrace();
        // LibTorch's CPU allocator reports a failed allocation as a plain c10::Error (an enforce
        // failure); its message is the only mark it has.
        if (message.find("DefaultCPUAllocator: can't allocate memory") != std::string::npos ||
            message.find("DefaultCPUAllocator: not enough memory") != std::string::npos)
            throw std::bad_alloc();
        // Any other LibTorch error: its first line, without the C++ backtrace.
        throw std::runtime_error(message.substr(0, message.find('\n')));
    }
}

}  // namespace OpenMMBG
