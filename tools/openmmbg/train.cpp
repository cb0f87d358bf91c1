// openmmbg train: the subcommand, the options every objective shares, and maximum-likelihood
// training (--objective ml, the default) on a built-in data set or the user's own configurations.
// The energy-based objectives (fab, reverse-kl) are in train_energy.cpp.
#include "commands.h"
#include "molecule.h"
#include "train.h"

#include "openmmbg/eacf/AugmentedCouplingFlowModel.h"
#include "openmmbg/ecnf/EquivariantCnfModel.h"
#include "openmmbg/training/FlowMatching.h"
#include "openmmbg/eacf/FlowConfig.h"
#include "openmmbg/io/ModelFile.h"
#include "openmmbg/training/Training.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>

namespace OpenMMBG::Cli {

namespace {

const char* const kMaximumLikelihoodGroup = "Maximum likelihood (--objective ml, the default)";

// Defaults for the user's own data (--data); those of the built-in data sets are in the catalog.
constexpr int kUserDataEpochs = 100;
// The Non-E-ACF baseline (projection none) trains for 4x the epochs
// (docs/eacf-mapping.md#non-e-acf-transformer; the catalog states it per built-in system).
constexpr int kProjectionNoneEpochsFactor = 4;

/** Options of `train --objective ml` only. */
struct MaximumLikelihoodArgs {
    std::string data, validationData, particles, dataDir, molecule;
    int dim = 3;
    int epochs = 0;
    long long numTrain = 1000;  // the built-in systems' default comes from the catalog
    int validateEvery = 10;
    long long numValidation = 1000;
    int patience = 0;
    double peakLearningRate = MaximumLikelihoodOptions().peakLearningRate;
    CLI::Option *epochsOption = nullptr, *numTrainOption = nullptr;
    std::vector<CLI::Option*> all;
    // --objective flow-matching only.
    std::string pairing = FlowMatchingOptions().pairing;
    double sigma = FlowMatchingOptions().sigma;
    std::vector<CLI::Option*> flowMatching;
};

bool hasDataSet(const BuiltinSystem& system) { return system.data.has_value(); }

int runMaximumLikelihood(const TrainArgs& a, const MaximumLikelihoodArgs& m) {
    const std::vector<int64_t> particles = parseParticles(m.particles);
    if (m.data.empty() == !given(a.systemOption))
        throw UsageError("give exactly one of --system and --data");
    if (m.data.empty() && (!m.validationData.empty() || !particles.empty()))
        throw UsageError("--validation-data and --particles go with --data");
    const BuiltinSystem* system = nullptr;
    if (m.data.empty()) {
        system = builtinCatalog().find(a.system);
        if (!system->data)
            throw UsageError("system '" + a.system + "' has no data set for maximum likelihood (" +
                             builtinCatalog().describeNames(hasDataSet) + " have one); train it with --objective fab "
                                                                          "or reverse-kl");
    }
    const std::string systemName = system ? system->name : "user data";
    // Flow matching trains the continuous flow: --family defaults to ecnf there and must be it.
    const bool flowMatching = a.objective == "flow-matching";
    const std::string family = flowMatching && !given(a.familyOption) ? EquivariantCnfModel::familyName() : a.family;
    if (flowMatching && family != EquivariantCnfModel::familyName())
        throw UsageError("--objective flow-matching trains --family ecnf (a continuous flow), not --family " + family);
    if (!flowMatching && family == EquivariantCnfModel::familyName())
        throw UsageError("--family ecnf trains by --objective flow-matching");
    const bool eacf = family == AugmentedCouplingFlowModel::familyName();
    if (!eacf && given(a.projectionOption))
        throw UsageError("--projection goes with --family eacf");
    if (!m.molecule.empty() && family != "ic")
        throw UsageError("--molecule goes with --family ic");
    if (!m.molecule.empty() && !particles.empty())
        throw UsageError("--molecule describes every particle of the data: drop --particles");
    json config = eacf ? json{{"projection", a.projection}} : json{{"family", family}};
    if (system)
        config.update({{"num_particles", system->numParticles}, {"dim", system->dim}});
    if (!m.molecule.empty())
        config["zmatrix"] = zmatrixOfSystemFile(m.molecule);
    mergeConfigOption(a.configOption, a.config, config);
    MaximumLikelihoodOptions o;
    const bool projectionNone = config.value("projection", "") == "none";
    const int defaultEpochs =
        system ? (projectionNone ? system->maximumLikelihood->epochsProjectionNone : system->maximumLikelihood->epochs)
               : kUserDataEpochs * (projectionNone ? kProjectionNoneEpochsFactor : 1);
    o.epochs = given(m.epochsOption) ? m.epochs : defaultEpochs;
    o.batchSize = a.batchSize;
    o.timeLimit = a.timeLimit;
    o.validateEvery = m.validateEvery;
    o.patience = m.patience;
    o.peakLearningRate = m.peakLearningRate;
    o.seed = uint64_t(a.seed);
    const int64_t numTrain = given(m.numTrainOption) || !system ? m.numTrain : system->maximumLikelihood->numTrain;
    o.checkpointPath = given(a.checkpointOption) ? a.checkpoint : a.output + ".checkpoint";
    o.checkpointEvery = a.checkpointEvery;
    torch::Tensor train, validation;
    if (!m.data.empty()) {
        train = loadConfigurations(m.data, particles, m.dim);
        if (!m.validationData.empty()) {
            validation = loadConfigurations(m.validationData, particles, m.dim);
        } else {
            const int64_t held = std::max<int64_t>(1, train.size(0) / 10);
            if (train.size(0) < 2)
                throw std::runtime_error("'" + m.data + "' holds fewer than 2 configurations");
            validation = train.narrow(0, train.size(0) - held, held);
            train = train.narrow(0, 0, train.size(0) - held);
        }
        if (given(m.numTrainOption))
            train = train.narrow(0, 0, std::min<int64_t>(numTrain, train.size(0)));
        for (auto [key, value] : {std::pair<const char*, int64_t>{"num_particles", train.size(1)}, {"dim", train.size(2)}}) {
            if (config.contains(key) && config[key] != value)
                throw std::runtime_error(std::string("--config ") + key + " = " + config[key].dump() + " but the data have " +
                                         std::to_string(value));
            config[key] = value;
        }
        if (validation.size(1) != train.size(1) || validation.size(2) != train.size(2))
            throw std::runtime_error("validation data have " + std::to_string(validation.size(1)) +
                                     " particles in " + std::to_string(validation.size(2)) + "-D, training data " +
                                     std::to_string(train.size(1)) + " in " + std::to_string(train.size(2)) + "-D");
    }
    const std::string dir = system ? resolveDataDir(m.dataDir, system->data->folder) : "";
    if (system) {
        const BuiltinSystem::Data& data = *system->data;
        if (data.train.file == data.validation.file && data.train.begin + numTrain > data.validation.begin)
            throw UsageError("--num-train " + std::to_string(numTrain) + " would overlap the " + systemName +
                             " validation rows starting at " + std::to_string(data.validation.begin));
    }

    std::shared_ptr<Model> model = makeModel(config.dump());
    // Before any long work, so that a bad path loses nothing. A checkpoint holds about four copies
    // of the parameters (current, best, Adam's two moments).
    checkOutput(a.output, modelBytes(*model));
    if (!o.checkpointPath.empty())
        checkOutput(o.checkpointPath, 4 * modelBytes(*model));
    if (system) {
        const BuiltinSystem::Data& data = *system->data;
        train = loadSplit(dir, data.train.file, *system, data.train.begin, data.train.begin + numTrain);
        validation = loadSplit(dir, data.validation.file, *system, data.validation.begin, data.validation.end);
    }
    // Model selection uses the first --num-validation points to keep validation cheap.
    validation = validation.narrow(0, 0, std::min<int64_t>(std::max<int64_t>(m.numValidation, 1), validation.size(0)));
    MetricsFile metrics(a.metrics);
    if (std::filesystem::exists(o.checkpointPath))
        std::cerr << "openmmbg train: resuming from " << o.checkpointPath << std::endl;
    std::cerr << "openmmbg train: " << systemName << ", " << describeModel(*model) << ", " << train.size(0)
              << " training / " << validation.size(0) << " validation points, " << o.epochs << " epochs"
              << (flowMatching ? ", flow matching with " + m.pairing + " pairing" : "")
              << (o.timeLimit > 0 ? " (time limit " + formatDuration(o.timeLimit) + ")" : "") << std::endl;
    auto onEpoch = [&](const TrainingReport& r) {
        std::cerr << formatTrainingReport(r) << std::endl;
        metrics.writeLine(trainingReportToJson(r));
    };
    std::vector<TrainingReport> reports;
    if (flowMatching) {
        FlowMatchingOptions fo;
        static_cast<MaximumLikelihoodOptions&>(fo) = o;
        fo.pairing = m.pairing;
        fo.sigma = m.sigma;
        reports = FlowMatchingTrainer(model, train, validation, fo).run(onEpoch);
    } else {
        reports = MaximumLikelihoodTrainer(model, train, validation, o).run(onEpoch);
    }
    metrics.close();
    json meta = {{"system", systemName}, {"objective", flowMatching ? "flow-matching" : "ml"},
                 {"epochs_run", reports.size()}, {"seed", o.seed},
                 {"best_validation_nll", reports.empty() ? NAN : reports.back().bestValidationNll}};
    saveModel(*model, a.output, {{"training", meta.dump()}});
    std::cerr << "openmmbg train: wrote " << a.output << " (best validation NLL "
              << (reports.empty() ? NAN : reports.back().bestValidationNll) << ")" << std::endl;
    return 0;
}

/** Refuses the options of the other objective, as the hand-written parser refused unread options. */
void refuseOptions(const std::vector<CLI::Option*>& options, const std::string& objective, const std::string& theirs) {
    for (const CLI::Option* option : options)
        if (given(option))
            throw UsageError(option->get_name() + " goes with " + theirs + ", not --objective " + objective);
}

}  // namespace

Command addTrainCommand(CLI::App& parent) {
    auto a = std::make_shared<TrainArgs>();
    auto m = std::make_shared<MaximumLikelihoodArgs>();
    auto e = std::make_shared<EnergyTrainArgs>();
    CLI::App* app = parent.add_subcommand(
        "train", "train a flow: by maximum likelihood on a built-in data set or your own configurations (--objective "
                 "ml), or against a target's energy without data (--objective fab or reverse-kl); resumable from its "
                 "checkpoint by rerunning the same command");

    // Every objective.
    addOption(app, "--objective", a->objective,
              "ml: maximum likelihood on data; flow-matching: simulation-free training of an ecnf flow on data "
              "(docs/ecnf.md; the data options of ml apply); fab or reverse-kl: energy-based training "
              "(docs/training.md)")
        ->type_name("NAME")
        ->check(oneOf({"ml", "fab", "reverse-kl", "flow-matching"}));
    a->systemOption = addOption(app, "--system", a->system,
                                "built-in system (catalog/builtin-systems.json): " + systemNamesForHelp() +
                                    ". ml: its data set (" + systemNamesForHelp(hasDataSet) +
                                    "); fab, reverse-kl: its target energy")
                          ->type_name("NAME")
                          ->check(builtinSystem());
    addOption(app, "--output", a->output, "the .bgm model to write (atomically; parent folders are created)")
        ->type_name("FILE")
        ->required();
    a->familyOption = addOption(app, "--family", a->family,
                                "the model family: eacf (the E-ACF, Non-E-ACF with --projection none), ic (a flow "
                                "on internal coordinates, docs/internal-coordinates.md) or ecnf (the equivariant "
                                "continuous flow, docs/ecnf.md; trained by --objective flow-matching, its default "
                                "there)")
                          ->type_name("NAME")
                          ->check(oneOf({"eacf", "ic", "ecnf"}));
    a->projectionOption = addOption(app, "--projection", a->projection, "the E-ACF's projection (none: Non-E-ACF)")
                              ->type_name("NAME")
                              ->check(oneOf({"spherical", "cartesian", "vector", "none"}));
    a->configOption = addOption(app, "--config", a->config,
                                "further flow configuration keys (JSON object, docs/flow-config.md), merged over "
                                "num_particles, dim and projection")
                          ->type_name("JSON");
    a->batchSizeOption = addOption(app, "--batch-size", a->batchSize,
                                   "default: ml 32; fab, reverse-kl: " +
                                       perSystemForHelp([](const BuiltinSystem& s) {
                                           return std::optional(std::to_string(s.energyTraining.batchSize));
                                       }) +
                                       ", an OpenMM System " + std::to_string(kOpenMMSystemBatchSize),
                                   false)
                             ->check(positive());
    a->timeLimitOption = addOption(app, "--time-limit", a->timeLimit,
                                   "stop after the epoch (iteration) that passes this wall time, checkpointed; 0: "
                                   "none")
                             ->type_name("SECONDS")
                             ->check(nonNegative());
    a->seedOption = addOption(app, "--seed", a->seed, "seed of the training's random draws")->check(nonNegative());
    addOption(app, "--metrics", a->metrics,
              "JSON-lines log, a line per epoch (iteration report); rewritten from the checkpoint's history on resume")
        ->type_name("FILE");
    a->checkpointOption = addOption(app, "--checkpoint", a->checkpoint,
                                    "training checkpoint, resumed if present (default OUTPUT.checkpoint; \"\": none)")
                              ->type_name("FILE");
    a->checkpointEveryOption =
        addOption(app, "--checkpoint-every", a->checkpointEvery,
                  "epochs (ml, default 1) or iterations (fab, reverse-kl, default 100) between checkpoints", false)
            ->check(positive());

    // Maximum likelihood only.
    auto ml = [&](CLI::Option* option) {
        option->group(kMaximumLikelihoodGroup);
        m->all.push_back(option);
        return option;
    };
    ml(addOption(app, "--data", m->data,
                 "your own training configurations instead of --system: .npy ([n, N, D] or [n, N*D], float32/64) "
                 "or .dcd (OpenMM DCDReporter; read in nm)"))
        ->type_name("FILE");
    ml(addOption(app, "--validation-data", m->validationData,
                 "validation configurations for --data (default: its last 10%)"))
        ->type_name("FILE");
    ml(addOption(app, "--particles", m->particles, "with --data: particle indices to keep, e.g. 0,1,4-9 (default all)"))
        ->type_name("LIST")
        ->check(particleList());
    ml(addOption(app, "--dim", m->dim, "with --data: the spatial dimension of a flat [n, N*D] .npy"))
        ->type_name("D")
        ->check(positive());
    ml(addOption(app, "--molecule", m->molecule,
                 "with --family ic: an OpenMM System XML of the molecule the data sample; its bonds "
                 "(HarmonicBondForce, constraints) and hydrogens (mass < 4.5 amu) give the Z-matrix"))
        ->type_name("FILE");
    ml(addOption(app, "--data-dir", m->dataDir, "with --system: the folder holding efm/ (default $OPENMMBG_DATA_DIR)"))
        ->type_name("DIR");
    m->epochsOption = ml(addOption(app, "--epochs", m->epochs,
                                   "default: " +
                                       perSystemForHelp([](const BuiltinSystem& s) {
                                           return s.maximumLikelihood
                                                      ? std::optional(std::to_string(s.maximumLikelihood->epochs))
                                                      : std::nullopt;
                                       }) +
                                       ", own data " + std::to_string(kUserDataEpochs) + "; for projection none " +
                                       perSystemForHelp([](const BuiltinSystem& s) {
                                           return s.maximumLikelihood
                                                      ? std::optional(std::to_string(
                                                            s.maximumLikelihood->epochsProjectionNone))
                                                      : std::nullopt;
                                       }) +
                                       ", own data " + std::to_string(kUserDataEpochs * kProjectionNoneEpochsFactor),
                                   false))
                          ->check(positive());
    m->numTrainOption = ml(addOption(app, "--num-train", m->numTrain,
                                     "training points, the first N of the training rows (default: " +
                                         perSystemForHelp([](const BuiltinSystem& s) {
                                             return s.maximumLikelihood
                                                        ? std::optional(std::to_string(s.maximumLikelihood->numTrain))
                                                        : std::nullopt;
                                         }) +
                                         ", own data all)",
                                     false))
                            ->check(positive());
    ml(addOption(app, "--validate-every", m->validateEvery, "epochs between validations (the last is always validated)"))
        ->check(positive());
    ml(addOption(app, "--num-validation", m->numValidation, "validation points used for model selection"))
        ->check(positive());
    ml(addOption(app, "--peak-learning-rate", m->peakLearningRate,
                 "the learning rate at the end of the warmup, before its cosine decay"))
        ->type_name("LR")
        ->check(positive());
    ml(addOption(app, "--patience", m->patience, "stop after N validations without improvement; 0: never"))
        ->check(nonNegative());

    // Flow matching only (it also takes the data options above).
    auto fm = [&](CLI::Option* option) {
        option->group("Flow matching (--objective flow-matching)");
        m->flowMatching.push_back(option);
        return option;
    };
    fm(addOption(app, "--pairing", m->pairing,
                 "how prior draws are paired with data: independent, ot (minibatch optimal transport) or "
                 "equivariant-ot (also permutes identical particles and rotates)"))
        ->type_name("NAME")
        ->check(oneOf({"independent", "ot", "equivariant-ot"}));
    fm(addOption(app, "--sigma", m->sigma, "standard deviation of the probability path's noise (length units)"))
        ->check(nonNegative());

    addEnergyTrainingOptions(app, *a, *e);
    app->footer("Without --objective, or with --objective ml, give one of --system and --data. With --objective fab "
                "or reverse-kl give one of --system and --openmm-system.");
    return {app, [a, m, e] {
                if (a->objective == "ml" || a->objective == "flow-matching") {
                    refuseOptions(e->all, a->objective, "--objective fab or reverse-kl");
                    if (a->objective == "ml")
                        refuseOptions(m->flowMatching, a->objective, "--objective flow-matching");
                    return runMaximumLikelihood(*a, *m);
                }
                refuseOptions(m->all, a->objective, "--objective ml");
                refuseOptions(m->flowMatching, a->objective, "--objective flow-matching");
                return runEnergyTraining(*a, *e);
            }};
}

}  // namespace OpenMMBG::Cli
