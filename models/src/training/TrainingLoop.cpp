#include "openmmbg/training/TrainingLoop.h"

#include "openmmbg/io/Files.h"
#include "openmmbg/training/Training.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

namespace OpenMMBG {

using nlohmann::json;

namespace {

json number(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }
double numberOf(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_number() ? it->get<double>() : std::numeric_limits<double>::quiet_NaN();
}

bool isEpoch(const TrainingReport& r) { return r.unit == "epoch"; }

// Every field, non-finite values as null: the form kept in checkpoints (and read back exactly).
json reportToJson(const TrainingReport& r) {
    const std::string& u = r.unit;
    json j = {{u, r.iteration}, {"total_" + u + "s", r.totalIterations}, {isEpoch(r) ? "train_loss" : "loss", number(r.loss)},
              {"learning_rate", number(r.learningRate)}, {"skipped_steps", r.skippedSteps}, {"elapsed", r.elapsed},
              {"validation_nll", number(r.validationNll)}, {"best_validation_nll", number(r.bestValidationNll)},
              {"reverse_ess", number(r.reverseEss)}, {"ais_ess", number(r.aisEss)}};
    if (!r.stepSizes.empty() || !r.acceptance.empty()) {
        j["step_sizes"] = r.stepSizes;
        j["acceptance"] = r.acceptance;
        j["ais_log_w_mean"] = number(r.aisLogWeightMean);
    }
    if (r.bufferSize >= 0)
        j["buffer_size"] = r.bufferSize;
    return j;
}

TrainingReport reportFromJson(const json& j, const std::string& unit) {
    TrainingReport r;
    r.unit = unit;
    r.iteration = j.at(unit).get<int>();
    r.totalIterations = j.at("total_" + unit + "s").get<int>();
    r.loss = numberOf(j, unit == "epoch" ? "train_loss" : "loss");
    r.learningRate = numberOf(j, "learning_rate");
    r.skippedSteps = j.at("skipped_steps").get<int>();
    r.elapsed = j.at("elapsed").get<double>();
    r.validationNll = numberOf(j, "validation_nll");
    r.bestValidationNll = numberOf(j, "best_validation_nll");
    r.reverseEss = numberOf(j, "reverse_ess");
    r.aisEss = numberOf(j, "ais_ess");
    if (j.contains("step_sizes")) {
        r.stepSizes = j.at("step_sizes").get<std::vector<double>>();
        r.acceptance = j.at("acceptance").get<std::vector<double>>();
        r.aisLogWeightMean = numberOf(j, "ais_log_w_mean");
    }
    if (j.contains("buffer_size"))
        r.bufferSize = j.at("buffer_size").get<int64_t>();
    r.resumed = true;
    return r;
}

std::string formatList(const std::vector<double>& v, const char* format) {
    std::string out;
    char buf[32];
    for (size_t i = 0; i < v.size(); i++) {
        std::snprintf(buf, sizeof(buf), format, v[i]);
        out += (i ? "," : "") + std::string(buf);
    }
    return out;
}

}  // namespace

std::string trainingReportToJson(const TrainingReport& r) {
    json j = reportToJson(r);
    for (auto it = j.begin(); it != j.end();)
        it = it->is_null() ? j.erase(it) : std::next(it);
    return j.dump();
}

std::string formatTrainingReport(const TrainingReport& r) {
    char line[512];
    std::string out = progressBar(double(r.iteration) / std::max(1, r.totalIterations));
    std::snprintf(line, sizeof(line), " %s %d/%d  loss %.4f", isEpoch(r) ? "epoch" : "it", r.iteration,
                  r.totalIterations, r.loss);
    out += line;
    if (isEpoch(r)) {  // a fixed-width validation column, so the epochs' lines align
        char nll[32] = "   -   ";
        if (!std::isnan(r.validationNll))
            std::snprintf(nll, sizeof(nll), "%.4f", r.validationNll);
        out += std::string("  val NLL ") + nll;
    }
    std::snprintf(line, sizeof(line), "  lr %.2e", r.learningRate);
    out += line;
    if (!std::isnan(r.reverseEss)) {
        std::snprintf(line, sizeof(line), "  ESS %.3f", r.reverseEss);
        out += line;
    }
    if (!std::isnan(r.aisEss)) {
        std::snprintf(line, sizeof(line), "  AIS ESS %.3f", r.aisEss);
        out += line;
    }
    if (!r.stepSizes.empty())
        out += "  step [" + formatList(r.stepSizes, "%.3g") + "]  acc [" + formatList(r.acceptance, "%.2f") + "]";
    out += "  " + formatDuration(r.elapsed) + " elapsed, ETA " + formatDuration(r.eta);
    if (r.skippedSteps)
        out += " (" + std::to_string(r.skippedSteps) + " steps skipped)";
    if (r.resumed)
        out += "  (from checkpoint)";
    return out;
}

/** What the loop accumulates and optimises; lives from run() to run(). */
struct TrainingLoop::State {
    std::vector<torch::Tensor> params;
    AdamOptimizer optimizer;
    GradientGuard guard;
    WarmupCosineSchedule schedule;
    double lastLearningRate = std::numeric_limits<double>::quiet_NaN();
    // Since the last report: loss sum and count of applied updates, skipped updates.
    double lossSum = 0;
    int64_t lossCount = 0, skipped = 0;
    State(std::vector<torch::Tensor> p, const TrainingLoopSettings& s)
        : params(p), optimizer(p), guard(s.gradientWindow, s.skipFactor, s.clipFactor),
          schedule{s.initialLearningRate, s.peakLearningRate, s.finalLearningRate,
                   s.warmupIterations * s.updatesPerIteration, int64_t(s.iterations) * s.updatesPerIteration} {}
};

TrainingLoop::TrainingLoop(std::shared_ptr<Model> model, std::shared_ptr<TrainingObjective> objective,
                           TrainingLoopSettings settings, std::string unit)
    : model_(std::move(model)), objective_(std::move(objective)), settings_(std::move(settings)), unit_(std::move(unit)),
      generator_(at::make_generator<at::CPUGeneratorImpl>(settings_.seed)),
      evaluationGenerator_(at::make_generator<at::CPUGeneratorImpl>(settings_.seed + 1)) {
    const TrainingLoopSettings& s = settings_;
    if (!model_ || !objective_)
        throw std::invalid_argument("training: needs a model and an objective");
    if (s.iterations < 1 || s.updatesPerIteration < 1 || s.reportEvery < 1 || s.evaluateEvery < 0 || s.checkpointEvery < 1 ||
        s.gradientWindow < 1 || s.warmupIterations < 0 || s.patience < 0)
        throw std::invalid_argument("training: iterations, updates per iteration, report_every, checkpoint_every and "
                                    "gradient_window must be positive, evaluate_every, warmup and patience non-negative");
}

double TrainingLoop::update(
    const std::function<std::pair<torch::Tensor, torch::Tensor>(const torch::Tensor& indices)>& perSample,
    int64_t batchSize) {
    State& s = *state_;
    const double lr = s.schedule.at(step_);
    s.lastLearningRate = lr;
    step_++;
    zeroGradients(s.params);
    const double loss = maskedBackward(perSample, batchSize, settings_.minLogQ);
    if (std::isnan(loss) || !s.guard.apply(s.params)) {  // NaN: every sample of the batch was masked
        s.skipped++;
        return std::numeric_limits<double>::quiet_NaN();
    }
    s.optimizer.step(lr);
    s.lossSum += loss;
    s.lossCount++;
    return loss;
}

std::vector<TrainingReport> TrainingLoop::run(const std::function<void(const TrainingReport&)>& onReport) {
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    const TrainingLoopSettings& o = settings_;
    torch::nn::Module& module = model_->module();
    state_ = std::make_shared<State>(module.parameters(), o);
    State& s = *state_;
    std::vector<TrainingReport> reports;
    std::vector<torch::Tensor> best;
    double bestScore = std::numeric_limits<double>::infinity();
    int sinceImprovement = 0, firstIteration = 1;
    double elapsedBefore = 0;  // training seconds of earlier runs of this checkpoint
    step_ = 0;

    // Everything that must match for a checkpoint to be resumed by this run. Patience, the time
    // limit and the checkpoint schedule may change between the parts of a run.
    std::string initialTensors;
    for (auto& [name, tensor] : model_->namedTensors())
        initialTensors += name + ":" + tensorHash(tensor.to(torch::kCPU)) + ";";
    const json signatureJson = {
        {"objective", objective_->name()}, {"config", json::parse(model_->configJson())},
        {"initial_model", std::to_string(fnv1a64(initialTensors.data(), initialTensors.size()))},
        {"iterations", o.iterations}, {"updates_per_iteration", o.updatesPerIteration}, {"warmup", o.warmupIterations},
        {"lr", {o.initialLearningRate, o.peakLearningRate, o.finalLearningRate}},
        {"guard", {o.gradientWindow, o.skipFactor, o.clipFactor}}, {"min_log_q", o.minLogQ},
        {"report_every", o.reportEvery}, {"evaluate_every", o.evaluateEvery}, {"seed", o.seed},
        {"objective_options", json::parse(objective_->signature())}};
    const std::string signature = signatureJson.dump();

    auto saveCheckpoint = [&](int iteration) {
        TensorArchive a = newCheckpoint(signature);
        a.metadata.insert({{"objective", objective_->name()}, {"unit", unit_}, {"iteration", std::to_string(iteration)},
                           {"step", std::to_string(step_)}, {"best_score", number(bestScore).dump()},
                           {"since_improvement", std::to_string(sinceImprovement)}});
        json history = json::array();
        for (auto& r : reports)
            history.push_back(reportToJson(r));
        a.metadata["reports"] = history.dump();
        for (auto& [name, tensor] : model_->namedTensors())
            a.tensors.emplace_back("model/" + name, tensor);
        storeOptimizerState(a, s.optimizer, s.guard);
        for (size_t i = 0; i < best.size(); i++)
            a.tensors.emplace_back("best/" + std::to_string(i), best[i]);
        a.tensors.emplace_back("rng/train", generator_.get_state());
        a.tensors.emplace_back("rng/evaluation", evaluationGenerator_.get_state());
        a.tensors.emplace_back("accumulators",
                               torch::tensor({s.lossSum, double(s.lossCount), double(s.skipped)}, torch::kFloat64));
        objective_->store(a);
        writeFileAtomically(o.checkpointPath, serializeArchive(a));
    };

    const bool resuming = !o.checkpointPath.empty() && std::filesystem::exists(o.checkpointPath);
    if (resuming) {
        const std::string& path = o.checkpointPath;
        TensorArchive a = readCheckpoint(path, signature);
        {
            torch::NoGradGuard noGrad;
            for (auto& [name, tensor] : model_->namedTensors())
                tensor.copy_(a.get("model/" + name, path));
        }
        restoreOptimizerState(a, path, s.optimizer, s.guard);
        for (size_t i = 0; i < s.params.size() && a.has("best/" + std::to_string(i)); i++)
            best.push_back(a.get("best/" + std::to_string(i), path).to(s.params[i].dtype()));
        generator_.set_state(a.get("rng/train", path));
        evaluationGenerator_.set_state(a.get("rng/evaluation", path));
        const std::vector<double> acc = a.getDoubles("accumulators", path);
        if (acc.size() != 3)
            throw std::runtime_error("checkpoint '" + path + "': accumulators hold " + std::to_string(acc.size()) +
                                     " values, expected 3");
        s.lossSum = acc[0];
        s.lossCount = int64_t(acc[1]);
        s.skipped = int64_t(acc[2]);
        step_ = std::stoll(a.metadata.at("step"));
        firstIteration = std::stoi(a.metadata.at("iteration")) + 1;
        const json bestJson = json::parse(a.metadata.at("best_score"));
        bestScore = bestJson.is_number() ? bestJson.get<double>() : std::numeric_limits<double>::infinity();
        sinceImprovement = std::stoi(a.metadata.at("since_improvement"));
        for (auto& j : json::parse(a.metadata.at("reports")))
            reports.push_back(reportFromJson(j, unit_));
        objective_->restore(a, path);
        if (!reports.empty())
            elapsedBefore = reports.back().elapsed;
        if (onReport)
            for (auto& r : reports)
                onReport(r);
    }

    module.train();
    if (!resuming)
        objective_->prepare(*this);

    // The ETA extrapolates the iterations of this run only, not the objective's preparation.
    const auto loopStart = Clock::now();
    bool stoppedEarly = o.patience > 0 && sinceImprovement >= o.patience;
    for (int it = firstIteration; it <= o.iterations && !stoppedEarly; it++) {
        objective_->iterate(*this);
        const double runSeconds = std::chrono::duration<double>(Clock::now() - start).count();
        const bool timeUp = o.timeLimit > 0 && runSeconds >= o.timeLimit;
        const bool last = it == o.iterations;
        // Reports and evaluations follow their schedule only: one added when a run is cut short
        // would consume evaluation draws and split the accumulators, breaking exact resumption.
        const bool evaluate = o.evaluateEvery > 0 && (it % o.evaluateEvery == 0 || last);
        if (it % o.reportEvery == 0 || evaluate || last) {
            TrainingReport r;
            r.unit = unit_;
            r.iteration = it;
            r.totalIterations = o.iterations;
            r.loss = s.lossCount > 0 ? s.lossSum / double(s.lossCount) : std::numeric_limits<double>::quiet_NaN();
            r.learningRate = s.lastLearningRate;
            r.skippedSteps = int(s.skipped);
            objective_->completeReport(r);
            if (evaluate) {
                module.eval();
                const double score = objective_->evaluate(*this, r);
                module.train();
                if (objective_->selectsModels()) {
                    if (score < bestScore) {
                        bestScore = score;
                        sinceImprovement = 0;
                        best.clear();
                        for (auto& p : s.params)
                            best.push_back(p.detach().clone());
                    } else {
                        sinceImprovement++;
                    }
                }
            }
            if (objective_->selectsModels())
                r.bestValidationNll = bestScore;
            const double runElapsed = std::chrono::duration<double>(Clock::now() - start).count();
            const double loopElapsed = std::chrono::duration<double>(Clock::now() - loopStart).count();
            r.elapsed = elapsedBefore + runElapsed;
            r.eta = loopElapsed / (it - firstIteration + 1) * (o.iterations - it);
            if (o.timeLimit > 0)
                r.eta = std::min(r.eta, std::max(0.0, o.timeLimit - runElapsed));
            reports.push_back(r);
            s.lossSum = 0;
            s.lossCount = s.skipped = 0;
            stoppedEarly = o.patience > 0 && sinceImprovement >= o.patience;
            if (onReport)
                onReport(r);
        }
        const bool stop = timeUp || it == o.stopAfterIteration;
        if (!o.checkpointPath.empty() && (it % o.checkpointEvery == 0 || last || stop || stoppedEarly))
            saveCheckpoint(it);
        if (stop)
            break;
    }
    module.eval();
    if (!best.empty()) {
        torch::NoGradGuard noGrad;
        for (size_t i = 0; i < s.params.size(); i++)
            s.params[i].copy_(best[i]);
    }
    return reports;
}

}  // namespace OpenMMBG
