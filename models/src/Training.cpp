#include "openmmbg/Training.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace OpenMMBG {

double WarmupCosineSchedule::at(int64_t step) const {
    if (step < warmupSteps)
        return initial + (peak - initial) * double(step) / double(std::max<int64_t>(warmupSteps, 1));
    const double span = double(std::max<int64_t>(totalSteps - warmupSteps, 1));
    const double progress = std::min(1.0, double(step - warmupSteps) / span);
    return final + 0.5 * (peak - final) * (1 + std::cos(M_PI * progress));
}

double GradientGuard::median() const {
    if (history.empty())
        return std::numeric_limits<double>::quiet_NaN();
    std::vector<double> v(history.begin(), history.end());
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
}

bool GradientGuard::apply(const std::vector<torch::Tensor>& params) {
    double sq = 0;
    for (const auto& p : params)
        if (p.grad().defined())
            sq += p.grad().pow(2).sum().item<double>();
    const double norm = std::sqrt(sq);
    if (!std::isfinite(norm))
        return false;
    const bool full = int(history.size()) >= window;
    if (full) {
        const double med = median();
        if (norm > skipFactor * med)
            return false;
        const double limit = clipFactor * med;
        if (norm > limit) {
            torch::NoGradGuard guard;
            for (const auto& p : params)
                if (p.grad().defined())
                    p.mutable_grad().mul_(limit / norm);
        }
    }
    {
        torch::NoGradGuard guard;
        for (const auto& p : params)
            if (p.grad().defined())
                p.mutable_grad().nan_to_num_(0.0, 0.0, 0.0);
    }
    history.push_back(norm);
    while (int(history.size()) > window)
        history.pop_front();
    return true;
}

MaximumLikelihoodTrainer::MaximumLikelihoodTrainer(AugmentedCouplingFlow f, torch::Tensor trainData,
                                                   torch::Tensor validationData, MaximumLikelihoodOptions o)
    : flow(std::move(f)), options(o) {
    auto opts = flow->options();
    train = trainData.to(opts.dtype());
    train = train - train.mean(1, true);
    validation = validationData.defined() ? validationData.to(opts.dtype()) : torch::Tensor();
    TORCH_CHECK(train.dim() == 3 && train.size(1) == flow->config().numParticles && train.size(2) == flow->config().dim,
                "training data must be [n, ", flow->config().numParticles, ", ", flow->config().dim, "]");
    TORCH_CHECK(options.batchSize >= 1 && options.epochs >= 1, "batch size and epochs must be positive");
}

torch::Tensor randomRotations(int64_t n, int64_t dim, torch::Generator& generator, const torch::TensorOptions& options) {
    // QR of a Gaussian matrix with the signs of R's diagonal moved into Q is Haar on O(D); flipping
    // one column where det = -1 maps it onto SO(D).
    torch::Tensor g = torch::randn({n, dim, dim}, generator, options.dtype(torch::kFloat64));
    auto [q, r] = torch::linalg_qr(g);
    q = q * torch::sign(torch::diagonal(r, 0, -2, -1)).unsqueeze(-2);
    torch::Tensor flip = torch::ones({n, dim}, q.options());
    flip.select(1, 0).copy_(torch::sign(torch::linalg_det(q)));
    return (q * flip.unsqueeze(-2)).to(options.dtype());
}

double MaximumLikelihoodTrainer::trainStep(const torch::Tensor& data, torch::Generator& generator) {
    const double batchSize = double(data.size(0));
    torch::Tensor batch = data;
    if (options.randomRotations)
        batch = torch::matmul(data, randomRotations(data.size(0), data.size(2), generator, data.options()).transpose(1, 2));
    torch::Tensor a = flow->sampleAugmented(batch, generator);
    auto perSampleLoss = [&](const torch::Tensor& x, const torch::Tensor& aug, torch::Tensor& logQ) {
        FlowDensity d = flow->logProbWithAux(x, aug);
        logQ = d.logQ;
        return -d.logQ + flow->config().auxLossWeight * d.aux;
    };
    torch::Tensor logQ;
    torch::Tensor loss = perSampleLoss(batch, a, logQ);
    torch::Tensor keep = torch::isfinite(loss) & (logQ > options.minLogQ);
    const int64_t kept = keep.sum().item<int64_t>();
    if (kept == 0)
        return std::numeric_limits<double>::quiet_NaN();
    if (kept < batch.size(0)) {
        // Masking by torch::where would still back-propagate NaN from the dropped samples
        // (0 x NaN), so evaluate the kept samples again on their own.
        torch::Tensor idx = keep.nonzero().squeeze(1);
        loss = perSampleLoss(batch.index_select(0, idx), a.index_select(0, idx), logQ);
    }
    for (auto& p : flow->parameters())
        if (p.grad().defined())
            p.mutable_grad().zero_();
    // Sum of kept per-sample losses over the full batch size: dropped samples contribute zero.
    (loss.sum() / batchSize).backward();
    return loss.mean().item<double>();
}

std::pair<double, double> marginalNll(AugmentedCouplingFlow& flow, const torch::Tensor& x, int numAugSamples,
                                      torch::Generator& generator) {
    torch::NoGradGuard guard;
    torch::Tensor nll = -flow->marginalLogProb(x.to(flow->options().dtype()), numAugSamples, generator).to(torch::kFloat64);
    const double n = double(nll.size(0));
    const double sem = n > 1 ? nll.std().item<double>() / std::sqrt(n) : std::numeric_limits<double>::quiet_NaN();
    return {nll.mean().item<double>(), sem};
}

double MaximumLikelihoodTrainer::validationNll(torch::Generator& generator) {
    return marginalNll(flow, validation, options.validationAugSamples, generator).first;
}

std::vector<EpochReport> MaximumLikelihoodTrainer::run(const std::function<void(const EpochReport&)>& onEpoch) {
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(options.seed);
    torch::Generator valGen = at::make_generator<at::CPUGeneratorImpl>(options.seed + 1);
    const int64_t n = train.size(0);
    const int64_t stepsPerEpoch = (n + options.batchSize - 1) / options.batchSize;
    const int64_t totalSteps = stepsPerEpoch * options.epochs;
    // The reference warms up for 30 of 100+ epochs; shorter runs warm up for 30% of their epochs.
    const int warmup = std::min(options.warmupEpochs, std::max(1, options.epochs * 3 / 10));
    WarmupCosineSchedule schedule{options.initialLearningRate, options.peakLearningRate, options.finalLearningRate,
                                  stepsPerEpoch * warmup, totalSteps};
    std::vector<torch::Tensor> params = flow->parameters();
    torch::optim::Adam optimizer(params, torch::optim::AdamOptions(options.initialLearningRate));
    GradientGuard guard(options.gradientWindow, options.skipFactor, options.clipFactor);
    std::vector<EpochReport> reports;
    std::vector<torch::Tensor> best;
    double bestNll = std::numeric_limits<double>::infinity();
    int sinceImprovement = 0;
    int64_t step = 0;
    flow->train();
    for (int epoch = 1; epoch <= options.epochs; epoch++) {
        torch::Tensor order = torch::randperm(n, gen, torch::kLong);
        double lossSum = 0;
        int lossCount = 0, skipped = 0;
        double lr = schedule.at(step);
        for (int64_t b = 0; b < stepsPerEpoch; b++, step++) {
            lr = schedule.at(step);
            for (auto& group : optimizer.param_groups())
                static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
            torch::Tensor idx = order.narrow(0, b * options.batchSize, std::min<int64_t>(options.batchSize, n - b * options.batchSize));
            double loss = trainStep(train.index_select(0, idx), gen);
            if (!guard.apply(params)) {
                skipped++;
                continue;
            }
            optimizer.step();
            if (std::isfinite(loss)) {
                lossSum += loss;
                lossCount++;
            }
        }
        EpochReport r;
        r.epoch = epoch;
        r.totalEpochs = options.epochs;
        r.trainLoss = lossCount > 0 ? lossSum / lossCount : std::numeric_limits<double>::quiet_NaN();
        r.learningRate = lr;
        r.skippedSteps = skipped;
        const double elapsedBeforeValidation = std::chrono::duration<double>(Clock::now() - start).count();
        const bool timeUp = options.timeLimit > 0 && elapsedBeforeValidation >= options.timeLimit;
        const bool last = epoch == options.epochs || timeUp;
        if (validation.defined() && validation.size(0) > 0 && (epoch % std::max(1, options.validateEvery) == 0 || last)) {
            flow->eval();
            r.validationNll = validationNll(valGen);
            flow->train();
            if (r.validationNll < bestNll) {
                bestNll = r.validationNll;
                sinceImprovement = 0;
                best.clear();
                for (auto& p : params)
                    best.push_back(p.detach().clone());
            } else {
                sinceImprovement++;
            }
        }
        r.bestValidationNll = bestNll;
        r.elapsed = std::chrono::duration<double>(Clock::now() - start).count();
        r.eta = r.elapsed / epoch * (options.epochs - epoch);
        if (options.timeLimit > 0)
            r.eta = std::min(r.eta, std::max(0.0, options.timeLimit - r.elapsed));
        reports.push_back(r);
        if (onEpoch)
            onEpoch(r);
        if (timeUp || (options.patience > 0 && sinceImprovement >= options.patience))
            break;
    }
    flow->eval();
    if (!best.empty()) {
        torch::NoGradGuard noGrad;
        for (size_t i = 0; i < params.size(); i++)
            params[i].copy_(best[i]);
    }
    return reports;
}

}  // namespace OpenMMBG
