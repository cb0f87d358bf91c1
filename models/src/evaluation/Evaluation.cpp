#include "openmmbg/evaluation/Evaluation.h"

#include "openmmbg/training/Training.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>
#include <stdexcept>

namespace OpenMMBG {

namespace {

torch::Tensor finiteOrMinusInf(const torch::Tensor& logWeights) {
    torch::Tensor lw = logWeights.to(torch::kFloat64);
    return torch::where(torch::isnan(lw), torch::full_like(lw, -INFINITY), lw);
}

}  // namespace

double effectiveSampleSizeFraction(const torch::Tensor& logWeights) {
    torch::Tensor lw = finiteOrMinusInf(logWeights);
    if (!torch::isfinite(lw).any().item<bool>())
        return 0.0;
    torch::Tensor p = torch::softmax(lw, 0);
    return 1.0 / (p * p).sum().item<double>() / double(lw.size(0));
}

double forwardEffectiveSampleSizeFraction(const torch::Tensor& logWeights) {
    torch::Tensor lw = finiteOrMinusInf(logWeights);
    const double logN = std::log(double(lw.size(0)));
    // A zero weight on a target sample makes mean(1/w) infinite: the flow misses that region.
    if (!torch::isfinite(lw).all().item<bool>())
        return 0.0;
    const double logMeanW = torch::logsumexp(lw, 0).item<double>() - logN;
    const double logMeanInvW = torch::logsumexp(-lw, 0).item<double>() - logN;
    return std::exp(-(logMeanW + logMeanInvW));
}

torch::Tensor logImportanceWeights(Model& model, Target& target, const torch::Tensor& x, const torch::Tensor& a,
                                   const torch::Tensor& logQ) {
    torch::Tensor energies = target.energy(x.to(torch::kFloat64)).to(torch::kFloat64);
    return -energies + model.logAuxiliaryTarget(x, a).to(torch::kFloat64) - logQ.to(torch::kFloat64);
}

std::pair<double, torch::Tensor> reverseEss(Model& model, Target& target, int64_t n, torch::Generator& generator,
                                            int64_t batchSize) {
    torch::NoGradGuard guard;
    std::vector<torch::Tensor> parts;
    for (int64_t done = 0; done < n; done += batchSize) {
        ModelSample s = model.sample(std::min(batchSize, n - done), generator);
        parts.push_back(logImportanceWeights(model, target, s.x, s.aux, s.logQ));
    }
    torch::Tensor lw = torch::cat(parts);
    return {effectiveSampleSizeFraction(lw), lw};
}

std::pair<double, torch::Tensor> aisEss(Model& model, const std::shared_ptr<Target>& target, int64_t n,
                                        AnnealedImportanceSampler& sampler, torch::Generator& generator,
                                        int64_t batchSize, bool adaptStepSizes) {
    if (sampler.options().alpha != 1.0)
        throw std::invalid_argument("aisEss: the sampler's alpha is " + std::to_string(sampler.options().alpha) +
                                    "; the ESS of AIS is defined for the target itself (alpha = 1)");
    if (n < 1 || batchSize < 1)
        throw std::invalid_argument("aisEss: the number of samples and the batch size must be positive");
    TargetJointDensity joint(target, model);
    std::vector<torch::Tensor> parts;
    for (int64_t done = 0; done < n; done += batchSize)
        parts.push_back(
            sampler.runFromFlow(model, joint, std::min(batchSize, n - done), generator, adaptStepSizes).logWeights);
    torch::Tensor lw = torch::cat(parts);
    return {effectiveSampleSizeFraction(lw), lw};
}

std::pair<double, torch::Tensor> forwardEss(Model& model, Target& target, const torch::Tensor& xData,
                                            torch::Generator& generator, int64_t batchSize) {
    torch::NoGradGuard guard;
    torch::Tensor x = xData.to(model.options());
    x = x - x.mean(1, true);
    std::vector<torch::Tensor> parts;
    for (int64_t start = 0; start < x.size(0); start += batchSize) {
        torch::Tensor xb = x.narrow(0, start, std::min(batchSize, x.size(0) - start));
        torch::Tensor a = model.sampleAuxiliary(xb, generator);
        parts.push_back(logImportanceWeights(model, target, xb, a, model.logProb(xb, a)));
    }
    torch::Tensor lw = torch::cat(parts);
    return {forwardEffectiveSampleSizeFraction(lw), lw};
}

std::string EvaluationResult::toJson() const {
    nlohmann::json j = {{"nll", nll}, {"nll_sem", nllSem}, {"reverse_ess", reverseEss}, {"forward_ess", forwardEss},
                        {"log_z", logZ}, {"nll_floor", nllFloor},
                        {"num_test", numTest}, {"num_aug_samples", numAugSamples}, {"num_ess_samples", numEssSamples}};
    return j.dump();
}

std::pair<double, double> marginalNll(Model& model, const torch::Tensor& x, int numAugSamples,
                                      torch::Generator& generator) {
    torch::NoGradGuard guard;
    torch::Tensor nll = -model.marginalLogProb(x.to(model.options().dtype()), numAugSamples, generator).to(torch::kFloat64);
    const double n = double(nll.size(0));
    const double sem = n > 1 ? nll.std().item<double>() / std::sqrt(n) : std::numeric_limits<double>::quiet_NaN();
    return {nll.mean().item<double>(), sem};
}

EvaluationResult evaluateFlow(Model& model, Target& target, const torch::Tensor& test, int numAugSamples,
                              int64_t numEssSamples, uint64_t seed) {
    if (numAugSamples < 1 || numEssSamples < 1)
        throw std::invalid_argument("evaluate: the sample counts must be positive (got " + std::to_string(numAugSamples) +
                                    " augmented, " + std::to_string(numEssSamples) + " ESS samples)");
    requireFiniteConfigurations(test, "evaluate: the test data");
    if (test.dim() != 3 || test.size(1) != target.numParticles() || test.size(2) != target.dim())
        throw std::invalid_argument("evaluate: test data must be [n, " + std::to_string(target.numParticles()) + ", " +
                                    std::to_string(target.dim()) + "] (got " + c10::str(test.sizes()) + ")");
    model.module().eval();
    torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    EvaluationResult r;
    std::tie(r.nll, r.nllSem) = marginalNll(model, test, numAugSamples, gen);
    torch::Tensor reverseLogW;
    std::tie(r.reverseEss, reverseLogW) = reverseEss(model, target, numEssSamples, gen);
    torch::Tensor finiteLogW = finiteOrMinusInf(reverseLogW);
    r.logZ = torch::logsumexp(finiteLogW, 0).item<double>() - std::log(double(finiteLogW.size(0)));
    {
        torch::NoGradGuard noGrad;
        r.nllFloor = target.energy(test.to(torch::kFloat64)).mean().item<double>() + r.logZ;
    }
    r.forwardEss = forwardEss(model, target, test, gen).first;
    r.numTest = test.size(0);
    r.numAugSamples = numAugSamples;
    r.numEssSamples = numEssSamples;
    return r;
}

}  // namespace OpenMMBG
