#include "openmmbg/training/FlowMatching.h"

#include "SharedLoopSettings.h"

#include "openmmbg/distributions/Distributions.h"
#include "openmmbg/ecnf/EquivariantCnfModel.h"
#include "openmmbg/evaluation/Evaluation.h"

#include <nlohmann/json.hpp>

namespace OpenMMBG {

namespace {

EquivariantCnfModel& cnfOf(Model& model) {
    auto* cnf = dynamic_cast<EquivariantCnfModel*>(&model);
    if (!cnf)
        throw std::invalid_argument("flow matching trains a continuous flow (family \"ecnf\"), not a model of family \"" +
                                    model.family() + "\"");
    return *cnf;
}

torch::Tensor configurations(const torch::Tensor& x, const Model& model, const char* what) {
    const int64_t N = model.numParticles(), D = model.dim();
    if (!x.defined() || x.dim() != 3 || x.size(1) != N || x.size(2) != D)
        throw std::invalid_argument(std::string("train: ") + what + " must be [n, " + std::to_string(N) + ", " +
                                    std::to_string(D) + "] (got " + (x.defined() ? c10::str(x.sizes()) : "none") + ")");
    const torch::Tensor y = x.to(model.options().dtype());
    return y - y.mean(1, true);
}

}  // namespace

FlowMatchingOptions flowMatchingOptionsFromJson(const std::string& text) {
    std::set<std::string> keys = maximumLikelihoodOptionKeys();
    keys.insert({"pairing", "sigma"});
    const JsonObjectReader j(text, keys);
    FlowMatchingOptions o;
    static_cast<MaximumLikelihoodOptions&>(o) = readMaximumLikelihoodOptions(j);
    j.read("pairing", o.pairing);
    j.read("sigma", o.sigma);
    pairingFromString(o.pairing);  // validates the name
    if (!(o.sigma >= 0 && o.sigma < 1e3))
        throw std::invalid_argument("training options: sigma must be in [0, 1000) (got " + std::to_string(o.sigma) + ")");
    return o;
}

FlowMatchingObjective::FlowMatchingObjective(Model& m, torch::Tensor trainData, torch::Tensor validationData,
                                             const FlowMatchingOptions& o)
    : model(cnfOf(m)), options(o), pairing(pairingFromString(o.pairing)) {
    train = configurations(trainData, m, "training data");
    if (train.size(0) < 1)
        throw std::invalid_argument("train: no training configurations");
    if (validationData.defined() && validationData.numel() > 0)
        validation = configurations(validationData, m, "validation data");
    if (!model.config().atomTypes.empty())
        particleTypes = torch::tensor(model.config().atomTypes, torch::kLong);
    if (!(o.sigma >= 0))
        throw std::invalid_argument("train: sigma must be non-negative");
}

std::string FlowMatchingObjective::signature() const {
    return nlohmann::json({{"batch_size", options.batchSize}, {"pairing", pairingName(pairing)}, {"sigma", options.sigma},
                           {"train", tensorHash(train)}, {"validation", tensorHash(validation)}})
        .dump();
}

void FlowMatchingObjective::iterate(TrainingLoop& loop) {
    torch::Generator& gen = loop.generator();
    const int64_t n = train.size(0), N = model.numParticles(), D = model.dim();
    const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
    const torch::Tensor order = torch::randperm(n, gen, torch::kLong);
    double costSum = 0;
    int64_t pairs = 0;
    for (int64_t begin = 0; begin < n; begin += options.batchSize) {
        const int64_t B = std::min<int64_t>(options.batchSize, n - begin);
        const torch::Tensor x1 = train.index_select(0, order.narrow(0, begin, B));
        // Noise is drawn in float64 on the CPU, so a seed gives the same run in either dtype.
        torch::Tensor x0 = CentreOfMassFreeGaussian::sample(B, N, D, gen, f64).to(x1.options());
        PairingResult paired = pairPriorWithData(x0, x1, pairing, particleTypes);
        x0 = paired.x0;
        costSum += paired.meanCost * double(B);
        pairs += B;
        const torch::Tensor t = torch::rand({B}, gen, torch::kFloat64).to(x1.options());
        const torch::Tensor eps = CentreOfMassFreeGaussian::sample(B, N, D, gen, f64).to(x1.options());
        const torch::Tensor tb = t.view({B, 1, 1});
        const torch::Tensor xt = (1 - tb) * x0 + tb * x1 + options.sigma * eps, target = x1 - x0;
        loop.update(
            [&](const torch::Tensor& idx) {
                auto pick = [&](const torch::Tensor& v) { return idx.defined() ? v.index_select(0, idx) : v; };
                const torch::Tensor v = model.field()->forward(pick(t), pick(xt));
                const torch::Tensor loss = (v - pick(target)).pow(2).mean({1, 2});
                // No log q here: a zero keeps every sample (the masking rule is for densities).
                return std::make_pair(loss, torch::zeros_like(loss));
            },
            B);
    }
    lastPairCost = costSum / double(std::max<int64_t>(pairs, 1));
}

double FlowMatchingObjective::evaluate(TrainingLoop& loop, TrainingReport& report) {
    if (!selectsModels())
        return std::numeric_limits<double>::quiet_NaN();
    report.validationNll = marginalNll(loop.model(), validation, 1, loop.evaluationGenerator()).first;
    return report.validationNll;
}

FlowMatchingTrainer::FlowMatchingTrainer(std::shared_ptr<Model> m, torch::Tensor train, torch::Tensor validation,
                                         FlowMatchingOptions o)
    : model(std::move(m)), options(std::move(o)) {
    if (!model)
        throw std::invalid_argument("train: needs a model");
    checkSharedLoopOptions(options);  // also for options built in C++ rather than read from JSON
    requireFiniteConfigurations(train, "train: the training data");
    requireFiniteConfigurations(validation, "train: the validation data");
    objective_ = std::make_shared<FlowMatchingObjective>(*model, train, validation, options);
    numTrain = train.size(0);
}

std::vector<TrainingReport> FlowMatchingTrainer::run(const std::function<void(const TrainingReport&)>& onEpoch) {
    TrainingLoop loop(model, objective_, MaximumLikelihoodObjective::loopSettings(options, numTrain), "epoch");
    return loop.run(onEpoch);
}

}  // namespace OpenMMBG
