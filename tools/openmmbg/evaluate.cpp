// openmmbg evaluate: test NLL and effective sample sizes of a model, on a built-in system's test split
// or the user's own test configurations, against a built-in target or an OpenMM System.
#include "commands.h"
#include "common.h"

#include "openmmbg/training/EnergyTraining.h"
#include "openmmbg/ecnf/EquivariantCnfModel.h"
#include "openmmbg/evaluation/Evaluation.h"
#include "openmmbg/training/Fab.h"
#include "openmmbg/io/ModelFile.h"
#include "OpenMMSystemTargetImpl.h"

#include <algorithm>
#include <iostream>
#include <memory>

namespace OpenMMBG::Cli {

namespace {

struct EvaluateArgs {
    std::string model, system, dataDir, testData, particles, openmmSystem, platform = "Reference";
    int dim = 3;
    double temperature = 0;
    int numAugSamples = 20;
    long long numTest = -1;
    long long seed = 0;
    long long numEssSamples = 10000;
    long long aisSamples = 0;
    int aisIntermediate = 0;
    double aisStepSize = EnergyTrainingOptions().initialStepSize;
    long long aisBatchSize = 128;
    CLI::Option *systemOption = nullptr, *temperatureOption = nullptr, *platformOption = nullptr,
                *aisIntermediateOption = nullptr;
};

int runEvaluate(const EvaluateArgs& args) {
    const std::string& modelPath = args.model;
    const std::string& testPath = args.testData;
    const std::vector<int64_t> particles = parseParticles(args.particles);
    const bool hasSystem = given(args.systemOption);
    if (testPath.empty() && !hasSystem)
        throw UsageError("missing required option --system (or give --test-data)");
    const std::string& systemXmlPath = args.openmmSystem;
    if (!systemXmlPath.empty() && hasSystem)
        throw UsageError("give at most one of --system and --openmm-system");
    if (systemXmlPath.empty() && (given(args.temperatureOption) || given(args.platformOption)))
        throw UsageError("--temperature and --platform go with --openmm-system");
    const BuiltinSystem* system = hasSystem ? builtinCatalog().find(args.system) : nullptr;
    if (system && !system->data && testPath.empty())
        throw UsageError("system '" + system->name + "' has no test split: give --test-data");
    std::string systemName = system ? system->name : "user data";
    int numParticles = system ? system->numParticles : 0, dim = system ? system->dim : 0;
    const int K = args.numAugSamples;
    const uint64_t seed = uint64_t(args.seed);
    AisOptions aisOptions;
    aisOptions.alpha = 1.0;
    aisOptions.numIntermediate = given(args.aisIntermediateOption) ? args.aisIntermediate
                                 : system                           ? system->energyTraining.numIntermediate
                                                                    : kOpenMMSystemNumIntermediate;
    aisOptions.initialStepSize = args.aisStepSize;
    if (args.aisSamples > 0 && !hasSystem && systemXmlPath.empty())
        throw UsageError("--ais-samples needs a target (--system or --openmm-system)");
    std::shared_ptr<Model> model = loadModel(modelPath);
    const json config = json::parse(model->configJson());
    torch::Tensor test = testPath.empty() ? loadSplit(resolveDataDir(args.dataDir, system->data->folder),
                                                      system->data->test.file, *system, system->data->test.begin,
                                                      system->data->test.end)
                                          : loadConfigurations(testPath, particles, args.dim);
    if (!system) {
        numParticles = int(test.size(1));
        dim = int(test.size(2));
    }
    if (model->numParticles() != numParticles || model->dim() != dim || test.size(1) != numParticles ||
        test.size(2) != dim)
        throw std::runtime_error("model '" + modelPath + "' describes " + std::to_string(model->numParticles()) +
                                 " particles in " + std::to_string(model->dim()) + "-D, not the " + systemName +
                                 " system");
    if (args.numTest > 0)
        test = test.narrow(0, 0, std::min<int64_t>(args.numTest, test.size(0)));
    json out;
    std::shared_ptr<Target> target;
    if (system) {
        target = makeCatalogTarget(*system);
        out = json::parse(evaluateFlow(*model, *target, test, K, args.numEssSamples, seed).toJson());
    } else if (!systemXmlPath.empty()) {
        requireOpenMMUnits(*model, "--openmm-system");
        const double temperature = args.temperature > 0 ? args.temperature : config.at("temperature").get<double>();
        auto openmmSystem = std::shared_ptr<OpenMMSystemTarget>(
            OpenMMSystemTarget::fromXml(readFileBytes(systemXmlPath), temperature, {}, {}, args.platform));
        if (openmmSystem->getNumParticles() != model->numParticles())
            throw std::runtime_error("'" + systemXmlPath + "' has " + std::to_string(openmmSystem->getNumParticles()) +
                                     " particles but the model describes " + std::to_string(model->numParticles()));
        target = std::make_shared<OpenMMSystemTargetImpl>(openmmSystem);
        out = json::parse(evaluateFlow(*model, *target, test, K, args.numEssSamples, seed).toJson());
        out.update({{"openmm_system", systemXmlPath}, {"temperature", temperature}, {"test_data", testPath}});
    } else {
        // No target energy: only the likelihood of the test data can be estimated.
        model->module().eval();
        torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
        auto [nll, sem] = marginalNll(*model, test, K, gen);
        out = {{"nll", nll}, {"nll_sem", sem}, {"reverse_ess", nullptr}, {"forward_ess", nullptr},
               {"num_test", test.size(0)}, {"num_aug_samples", K}, {"test_data", testPath}};
    }
    if (args.aisSamples > 0) {
        // Its own generator, so adding AIS leaves the other estimates of this seed unchanged.
        model->module().eval();
        torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed + 1);
        AnnealedImportanceSampler sampler(aisOptions);
        std::cerr << "AIS: " << args.aisSamples << " samples, " << aisOptions.numIntermediate
                  << " intermediate distributions, passes of " << args.aisBatchSize << std::endl;
        out["ais_ess"] = aisEss(*model, target, args.aisSamples, sampler, gen, args.aisBatchSize, true).first;
        out.update({{"ais_samples", args.aisSamples}, {"ais_intermediate", aisOptions.numIntermediate},
                    {"ais_leapfrog_steps", aisOptions.numLeapfrog}, {"ais_initial_step_size", aisOptions.initialStepSize},
                    {"ais_final_step_sizes", sampler.stepSizes}});
    }
    if (auto* cnf = dynamic_cast<EquivariantCnfModel*>(model.get())) {
        // A continuous flow's cost and path: one sampling integration of up to 1000 configurations.
        torch::NoGradGuard noGrad;
        torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed + 2);
        cnf->sample(std::min<int64_t>(1000, std::max<int64_t>(args.numEssSamples, 1)), gen);
        const IntegrationStatistics& s = cnf->lastIntegration();
        out.update({{"mean_path_length", s.meanPathLength}, {"function_evaluations", s.functionEvaluations},
                    {"ode_steps", s.acceptedSteps + s.rejectedSteps}});
    }
    out.update({{"model", modelPath}, {"system", systemName}, {"seed", seed}});
    std::cout << out.dump(2) << std::endl;
    return 0;
}

bool hasDataSet(const BuiltinSystem& system) { return system.data.has_value(); }

}  // namespace

Command addEvaluateCommand(CLI::App& parent) {
    auto a = std::make_shared<EvaluateArgs>();
    CLI::App* app = parent.add_subcommand(
        "evaluate", "evaluate a model: test NLL, reverse and forward ESS and log Z against a target, on a built-in "
                    "test split or your own test configurations; prints JSON");
    addOption(app, "--model", a->model, "the .bgm model")->type_name("FILE")->required();
    a->systemOption = addOption(app, "--system", a->system,
                                "built-in target (" + systemNamesForHelp() + "); without --test-data also its test "
                                "split (" + systemNamesForHelp(hasDataSet) + ")")
                          ->type_name("NAME")
                          ->check(builtinSystem());
    addOption(app, "--data-dir", a->dataDir, "with --system: the folder holding efm/ (default $OPENMMBG_DATA_DIR)")
        ->type_name("DIR");
    addOption(app, "--test-data", a->testData,
              "your own test configurations (.npy/.dcd, read as train --data); without a target only the NLL")
        ->type_name("FILE");
    addOption(app, "--particles", a->particles, "with --test-data: particle indices to keep, e.g. 0,1,4-9 (default all)")
        ->type_name("LIST")
        ->check(particleList());
    addOption(app, "--dim", a->dim, "with --test-data: the spatial dimension of a flat [n, N*D] .npy")
        ->type_name("D")
        ->check(positive());
    addOption(app, "--openmm-system", a->openmmSystem,
              "with --test-data, the target: an OpenMM System as XML (openmm.XmlSerializer), positions in nm")
        ->type_name("FILE");
    a->temperatureOption = addOption(app, "--temperature", a->temperature,
                                     "with --openmm-system: its temperature (default: the model's)", false)
                               ->type_name("K")
                               ->check(positive());
    a->platformOption = addOption(app, "--platform", a->platform, "with --openmm-system: the OpenMM platform")
                            ->type_name("NAME");
    addOption(app, "--num-aug-samples", a->numAugSamples, "augmented samples per test point")->type_name("K")->check(positive());
    addOption(app, "--num-test", a->numTest, "use the first N test points (default: all)", false)->check(positive());
    addOption(app, "--num-ess-samples", a->numEssSamples, "flow samples for the reverse ESS and log Z")->check(positive());
    addOption(app, "--ais-samples", a->aisSamples,
              "also the ESS of AIS from the flow to the target on N samples (needs a target); 0: not computed")
        ->check(nonNegative());
    a->aisIntermediateOption =
        addOption(app, "--ais-intermediate", a->aisIntermediate,
                  "its intermediate distributions; default: " +
                      perSystemForHelp([](const BuiltinSystem& s) {
                          return std::optional(std::to_string(s.energyTraining.numIntermediate));
                      }) +
                      ", an OpenMM System " + std::to_string(kOpenMMSystemNumIntermediate),
                  false)
            ->check(nonNegative());
    addOption(app, "--ais-step-size", a->aisStepSize,
              "its initial HMC step size (length units; give the one a FAB run ended with), adapted between passes")
        ->type_name("S")
        ->check(positive());
    addOption(app, "--ais-batch-size", a->aisBatchSize, "samples per AIS pass")->check(positive());
    addOption(app, "--seed", a->seed, "seed of all random draws (AIS has its own stream)")->check(nonNegative());
    app->footer("Give --system, --test-data, or both.");
    return {app, [a] { return runEvaluate(*a); }};
}

}  // namespace OpenMMBG::Cli
