// openmmbg train --objective fab|reverse-kl: energy-based training against a built-in target or an
// OpenMM System, without data (docs/training.md#energy-based-training-fab-and-reverse-kl).
#include "train.h"

#include "openmmbg/eacf/AugmentedCouplingFlowModel.h"
#include "openmmbg/training/EnergyTraining.h"
#include "openmmbg/eacf/FlowConfig.h"
#include "openmmbg/io/ModelFile.h"
#include "openmmbg/io/TensorArchive.h"
#include "openmmbg/training/Training.h"
#include "OpenMMSystemTargetImpl.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>

namespace OpenMMBG::Cli {

namespace {

const char* const kEnergyGroup = "Energy-based training (--objective fab or reverse-kl)";

}  // namespace

void addEnergyTrainingOptions(CLI::App* app, const TrainArgs& a, EnergyTrainArgs& e) {
    // The flags show the library's defaults (EnergyTrainingOptions) and win over --options, which wins
    // over them; --iterations, --batch-size and --num-intermediate default to the target's.
    auto energy = [&](CLI::Option* option) {
        option->group(kEnergyGroup);
        e.all.push_back(option);
        return option;
    };
    e.openmmSystemOption = energy(addOption(app, "--openmm-system", e.openmmSystem,
                                            "the target instead of --system: an OpenMM System as XML (3-D, nm)"))
                               ->type_name("FILE");
    e.temperatureOption = energy(addOption(app, "--temperature", e.temperature, "with --openmm-system: its temperature"))
                              ->type_name("K")
                              ->check(positive());
    e.platformOption = energy(addOption(app, "--platform", e.platform,
                                        "with --openmm-system: the OpenMM platform of its energies and forces"))
                           ->type_name("NAME");
    energy(addOption(app, "--init-model", e.initModel,
                     "start from this trained .bgm (fine-tuning, e.g. FAB after maximum likelihood); its configuration "
                     "is kept, so --projection and --config are refused"))
        ->type_name("FILE");
    e.optionsOption = energy(addOption(app, "--options", e.options,
                                       "any further option of docs/training.md as a JSON object, e.g. "
                                       "{\"peak_learning_rate\": 1e-4}; the flags win over it"))
                          ->type_name("JSON");
    e.iterationsOption =
        energy(addOption(app, "--iterations", e.iterations,
                         "AIS passes (fab) or updates (reverse-kl); default: " +
                             perSystemForHelp([](const BuiltinSystem& s) {
                                 return s.energyTraining.iterations
                                            ? std::optional(std::to_string(*s.energyTraining.iterations))
                                            : std::nullopt;
                             }) +
                             "; required otherwise",
                         false))
            ->check(positive());
    e.numIntermediateOption = energy(addOption(app, "--num-intermediate", e.numIntermediate,
                                               "AIS intermediate distributions; default: " +
                                                   perSystemForHelp([](const BuiltinSystem& s) {
                                                       return std::optional(
                                                           std::to_string(s.energyTraining.numIntermediate));
                                                   }) +
                                                   ", an OpenMM System " +
                                                   std::to_string(kOpenMMSystemNumIntermediate),
                                               false))
                                  ->check(nonNegative());
    using O = EnergyTrainingOptions;
    FlagOverrides<O>& flags = e.flags;
    energy(flags.add(app, "--alpha", e.alpha, &O::alpha, "AIS target p^A q^(1-A)"))->type_name("A");
    energy(flags.add(app, "--leapfrog-steps", e.leapfrogSteps, &O::numLeapfrog, "leapfrog steps per HMC transition"))
        ->check(positive());
    energy(flags.add(app, "--updates-per-iteration", e.updatesPerIteration, &O::updatesPerIteration,
                     "gradient updates per AIS pass"))
        ->check(positive());
    energy(flags.add(app, "--buffer-max-batches", e.bufferMaxBatches, &O::bufferMaxBatches,
                     "replay buffer capacity, in batches"))
        ->check(positive());
    energy(flags.add(app, "--buffer-min-batches", e.bufferMinBatches, &O::bufferMinBatches,
                     "replay buffer batches filled before training"))
        ->check(positive());
    energy(flags.add(app, "--report-every", e.reportEvery, &O::reportEvery,
                     "iterations between progress and metrics lines"))
        ->check(positive());
    energy(flags.add(app, "--evaluate-every", e.evaluateEvery, &O::evaluateEvery,
                     "iterations between reverse-ESS (and AIS-ESS) evaluations; 0: never"))
        ->check(nonNegative());
    energy(flags.add(app, "--num-ess-samples", e.numEssSamples, &O::numEssSamples, "flow samples per evaluation"))
        ->check(positive());
    // The flags of every objective that energy-based training takes as they are.
    flags.bind(a.timeLimitOption, a.timeLimit, &O::timeLimit);
    flags.bind(a.seedOption, a.seed, &O::seed);
    flags.bind(a.checkpointEveryOption, a.checkpointEvery, &O::checkpointEvery);
}

int runEnergyTraining(const TrainArgs& a, const EnergyTrainArgs& e) {
    const std::string& objective = a.objective;
    const std::string& systemName = a.system;
    const std::string& systemXmlPath = e.openmmSystem;
    if (systemName.empty() == systemXmlPath.empty())
        throw UsageError("--objective " + objective + " needs exactly one of --system and --openmm-system");
    if (systemXmlPath.empty() && (given(e.temperatureOption) || given(e.platformOption)))
        throw UsageError("--temperature and --platform go with --openmm-system");
    const std::string& output = a.output;
    // --init-model: fine-tune a trained flow (e.g. FAB after maximum likelihood); its file holds the
    // configuration, so --projection and --config would be ignored and are refused.
    const std::string& initModel = e.initModel;
    if (!initModel.empty() && (given(a.projectionOption) || given(a.configOption) || given(a.familyOption)))
        throw UsageError("--init-model takes the flow's configuration from the model file: drop --family, "
                         "--projection and --config");
    // Only an E-ACF starts here from scratch: a flow on internal coordinates needs data (its Z-matrix
    // and standardisation statistics), and a continuous flow is trained by flow matching first.
    if (initModel.empty() && a.family != AugmentedCouplingFlowModel::familyName())
        throw UsageError("--family " + a.family + " starts from data: train it by " +
                         (a.family == "ecnf" ? "--objective flow-matching" : "maximum likelihood (--objective ml)") +
                         " first, then fine-tune it here with --init-model");
    json config = {{"projection", a.projection}};
    mergeConfigOption(a.configOption, a.config, config);
    EnergyTrainingOptions o;
    json optionsJson = json::object();
    if (given(e.optionsOption)) {
        try {
            optionsJson = json::parse(e.options);
            o = energyTrainingOptionsFromJson(optionsJson.dump());
        } catch (const std::exception& error) {
            throw UsageError(std::string("--options: ") + error.what());
        }
    }
    o.objective = objective;
    const bool builtin = !systemName.empty();
    const BuiltinSystem* system = builtin ? builtinCatalog().find(systemName) : nullptr;
    // A flag wins over --options, which wins over the target's default.
    auto pick = [&](const CLI::Option* flag, int flagValue, const char* key, int targetDefault, int current) {
        return given(flag) ? flagValue : optionsJson.contains(key) ? current : targetDefault;
    };
    // The paper's settings per built-in target come from the catalog (docs/eacf-mapping.md#fab-settings).
    o.iterations = pick(e.iterationsOption, e.iterations, "iterations",
                        system ? system->energyTraining.iterations.value_or(-1) : -1, o.iterations);
    if (o.iterations < 1)
        throw UsageError("give --iterations (positive) for this target");
    o.batchSize = pick(a.batchSizeOption, a.batchSize, "batch_size",
                       system ? system->energyTraining.batchSize : kOpenMMSystemBatchSize, o.batchSize);
    o.numIntermediate = pick(e.numIntermediateOption, e.numIntermediate, "num_intermediate",
                             system ? system->energyTraining.numIntermediate : kOpenMMSystemNumIntermediate,
                             o.numIntermediate);
    e.flags.apply(o);
    const std::string& metricsPath = a.metrics;
    o.checkpointPath = given(a.checkpointOption) ? a.checkpoint : output + ".checkpoint";
    const double temperatureOption = e.temperature;
    const std::string& platform = e.platform;
    try {
        // The same validation as the JSON options (positive counts, buffer sizes in order, ...).
        json check = {{"objective", o.objective}, {"iterations", o.iterations}, {"batch_size", o.batchSize},
                      {"num_intermediate", o.numIntermediate}, {"num_leapfrog", o.numLeapfrog},
                      {"updates_per_iteration", o.updatesPerIteration}, {"buffer_max_batches", o.bufferMaxBatches},
                      {"buffer_min_batches", o.bufferMinBatches}, {"report_every", o.reportEvery},
                      {"evaluate_every", o.evaluateEvery}, {"num_ess_samples", o.numEssSamples},
                      {"checkpoint_every", o.checkpointEvery}};
        energyTrainingOptionsFromJson(check.dump());
    } catch (const std::invalid_argument& error) {
        throw UsageError(error.what());
    }

    std::shared_ptr<Target> target;
    std::string targetId;
    if (builtin) {
        target = makeCatalogTarget(*system);
        targetId = systemName;
    } else {
        const std::string xml = readFileBytes(systemXmlPath);
        auto openmmSystem = std::shared_ptr<OpenMMSystemTarget>(
            OpenMMSystemTarget::fromXml(xml, temperatureOption, {}, {}, platform));
        target = std::make_shared<OpenMMSystemTargetImpl>(openmmSystem);
        // A checkpoint is resumed only against the same System at the same temperature.
        targetId = "openmm-system:" + std::to_string(fnv1a64(xml.data(), xml.size())) + "@" + json(temperatureOption).dump();
        for (auto [key, value] : {std::pair<const char*, json>{"length_unit", "nm"}, {"dim", 3}})
            if (config.contains(key) && config[key] != value)
                throw std::runtime_error(std::string("--config ") + key + " = " + config[key].dump() +
                                         " but an OpenMM System needs " + value.dump());
        config["temperature"] = temperatureOption;
    }
    const std::string configSource = initModel.empty() ? "--config" : "--init-model " + initModel + ":";
    std::shared_ptr<Model> model;
    if (!initModel.empty()) {
        model = loadModel(initModel);
        json fromFile = json::parse(model->configJson());
        if (!builtin && fromFile.value("length_unit", "nm") != "nm")
            throw std::runtime_error(configSource + " length_unit = " + fromFile["length_unit"].dump() +
                                     " but an OpenMM System needs \"nm\"");
        // The saved model states the temperature it describes: refuse to silently retrain it at another.
        if (!builtin && fromFile["temperature"].get<double>() != temperatureOption)
            throw std::runtime_error(configSource + " the model describes " + fromFile["temperature"].dump() +
                                     " K but --temperature is " + json(temperatureOption).dump() + " K");
        config = fromFile;
    }
    for (auto [key, value] : {std::pair<const char*, int>{"num_particles", target->numParticles()}, {"dim", target->dim()}}) {
        if (config.contains(key) && config[key] != value)
            throw std::runtime_error(configSource + " " + key + " = " + config[key].dump() + " but the target has " +
                                     std::to_string(value));
        config[key] = value;
    }
    if (initModel.empty())
        model = std::make_shared<AugmentedCouplingFlowModel>(AugmentedCouplingFlow(FlowConfig::fromJson(config.dump())));
    // Before any long work, so that a bad path loses nothing. A checkpoint holds about four copies
    // of the parameters (current, best, Adam's two moments).
    checkOutput(output, modelBytes(*model));
    if (!o.checkpointPath.empty())
        checkOutput(o.checkpointPath, 4 * modelBytes(*model));
    MetricsFile metrics(metricsPath);
    const bool resuming = std::filesystem::exists(o.checkpointPath);
    if (resuming)
        std::cerr << "openmmbg train: resuming from " << o.checkpointPath << std::endl;
    std::cerr << "openmmbg train: " << objective << " on " << (builtin ? systemName : systemXmlPath) << ", "
              << describeModel(*model) << ", " << o.iterations << " iterations of batch " << o.batchSize
              << (objective == "fab" ? ", " + std::to_string(o.numIntermediate) + " intermediate distributions" : "")
              << (o.timeLimit > 0 ? " (time limit " + formatDuration(o.timeLimit) + ")" : "") << std::endl;
    if (objective == "fab" && !resuming)
        std::cerr << "openmmbg train: filling the replay buffer (" << o.bufferMinBatches << " AIS batches)" << std::endl;
    EnergyTrainer trainer(model, target, o, targetId);
    const auto fillStart = std::chrono::steady_clock::now();
    int lastFillDecile = 0;
    auto reports = trainer.run(
        [&](const TrainingReport& r) {
            std::cerr << formatTrainingReport(r) << std::endl;
            metrics.writeLine(trainingReportToJson(r));
        },
        [&](int filled, int total) {  // a line per 10% of the pre-fill
            const int decile = 10 * filled / std::max(1, total);
            if (decile == lastFillDecile && filled < total)
                return;
            lastFillDecile = decile;
            const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - fillStart).count();
            std::cerr << "openmmbg train: replay buffer " << progressBar(double(filled) / total) << " " << filled << "/"
                      << total << " AIS batches, " << formatDuration(seconds) << " elapsed, ETA "
                      << formatDuration(seconds / filled * std::max(0, total - filled)) << std::endl;
        });
    metrics.close();
    const int done = reports.empty() ? 0 : reports.back().iteration;
    if (done < o.iterations) {
        // Stopped by the time limit: the checkpoint holds the state; rerun the command to continue.
        std::cerr << "openmmbg train: stopped by the time limit after report " << done << "/" << o.iterations
                  << "; rerun the same command to continue from " << o.checkpointPath << std::endl;
    }
    json meta = {{"objective", objective}, {"target", targetId}, {"iterations_run", done}, {"seed", o.seed},
                 {"reverse_ess", reports.empty() || std::isnan(reports.back().reverseEss) ? json(nullptr)
                                                                                        : json(reports.back().reverseEss)}};
    saveModel(*model, output, {{"training", meta.dump()}});
    std::cerr << "openmmbg train: wrote " << output << std::endl;
    return 0;
}

}  // namespace OpenMMBG::Cli
