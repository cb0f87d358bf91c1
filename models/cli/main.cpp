// openmmbg: the command-line tool.
//
//   openmmbg info     --config JSON | --model FILE
//   openmmbg train    --system dw4|lj13 --projection P --data-dir DIR --output FILE [options]
//   openmmbg train    --objective fab|reverse-kl --system dw4|lj13|lj55 | --openmm-system FILE --output FILE [options]
//   openmmbg export   --checkpoint FILE --output FILE
//   openmmbg evaluate --model FILE --system dw4|lj13 --data-dir DIR [options]
//   openmmbg remd     --system FILE --state FILE --temperatures LIST --exchanges N --output DIR [options]
//
// Errors print one line "openmmbg: error: ..." and exit with status 1 (2 for usage errors).
#include "openmmbg/DataIO.h"
#include "openmmbg/DcdReader.h"
#include "openmmbg/EnergyTraining.h"
#include "openmmbg/Evaluation.h"
#include "openmmbg/FlowModelImpl.h"
#include "openmmbg/ModelFile.h"
#include "openmmbg/Training.h"
#include "OpenMMSystemTargetImpl.h"
#include "ReplicaExchange.h"

#include "openmm/Platform.h"
#include "openmm/State.h"
#include "openmm/serialization/XmlSerializer.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>

using namespace OpenMMBG;
using nlohmann::json;

namespace {

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

const char* USAGE = R"(usage: openmmbg <command> [options]

commands:
  info      print a model's full configuration and parameter count as JSON
              --config JSON | --model FILE
  export    write the flow a training checkpoint holds as a .bgm model (best validation NLL
            so far, else the current parameters), e.g. to look at a run that is still going
              --checkpoint FILE --output FILE
  train     train a flow by maximum likelihood on a built-in data set or your own data
              --system dw4|lj13        built-in data set (../shared/data/efm splits), or:
              --data FILE              .npy ([n, N, D] or [n, N*D], float32/64) or .dcd (OpenMM
                                       DCDReporter; read in nm) configurations to train on
              --validation-data FILE   validation configurations (default: the last 10% of --data)
              --particles LIST         particle indices to keep, e.g. 0,1,4-9 (default all)
              --dim D                  spatial dimension of a flat [n, N*D] .npy (default 3)
              --data-dir DIR           folder holding efm/ (default: $OPENMMBG_DATA_DIR)
              --output FILE            where to write the .bgm model (written atomically)
              --projection P           spherical|cartesian|vector|none (default spherical)
              --config JSON            extra flow configuration keys (JSON object)
              --epochs N               default: the paper's (DW4 100, LJ13 400; 4x for none)
              --batch-size N           default 32
              --num-train N            training points (default 1000)
              --time-limit SECONDS     stop after the epoch that passes this wall time
              --validate-every N       epochs between validations (default 10)
              --num-validation N       validation points used for model selection (default 1000)
              --patience N             early stopping after N validations without improvement
              --seed N                 default 0
              --metrics FILE           JSON-lines log of every epoch (rewritten from the
                                       checkpoint's history on resume)
              --checkpoint FILE        default OUTPUT.checkpoint; resumed if present
              --checkpoint-every N     epochs between checkpoints (default 1)
              --objective ml           ml (default): maximum likelihood on data, as above;
                                       fab or reverse-kl: energy-based training, no data:
  train --objective fab|reverse-kl   train against the target's energy (docs/training.md)
              --system dw4|lj13|lj55   built-in target, or:
              --openmm-system FILE     an OpenMM System as XML (3-D, nm); with
              --temperature K          its temperature (default 300) and
              --platform NAME          the OpenMM platform of its energies (default Reference)
              --output FILE            where to write the .bgm model (written atomically)
              --projection P, --config JSON   the flow, as for ML training
              --iterations N           AIS passes (fab) or updates (reverse-kl); default DW4
                                       20000, LJ13 14000; required otherwise
              --batch-size N           default DW4 128, LJ13/LJ55 1024, OpenMM 128
              --num-intermediate N     AIS intermediate distributions (default DW4 2, else 8)
              --alpha A                AIS target p^A q^(1-A) (default 2)
              --leapfrog-steps N       per HMC transition (default 5)
              --updates-per-iteration N  gradient updates per AIS pass (default 8)
              --buffer-max-batches N   replay buffer capacity in batches (default 512)
              --buffer-min-batches N   pre-filled batches (default 64)
              --init-model FILE        start from this trained .bgm (fine-tuning, e.g. FAB
                                       after maximum likelihood); its configuration is kept
              --options JSON           any further option of docs/training.md (e.g.
                                       {"peak_learning_rate": 1e-4})
              --report-every N         iterations between progress/metrics lines (default 100)
              --evaluate-every N       iterations between reverse-ESS evaluations (default 1000; 0 never)
              --num-ess-samples N      flow samples per evaluation (default 10000)
              --time-limit SECONDS, --seed N, --metrics FILE, --checkpoint FILE (default
              OUTPUT.checkpoint; resumed if present), --checkpoint-every N (iterations, default 100)
  evaluate  evaluate a model on a test split; prints JSON
              --model FILE --system dw4|lj13 --data-dir DIR
              --test-data FILE         your own test configurations (.npy/.dcd; with
                                       --particles/--dim as for train); without --system only
                                       the NLL is computed (ESS needs a target)
              --openmm-system FILE     target: an OpenMM System serialized to XML (e.g. by
                                       openmm.XmlSerializer); positions in nm; gives ESS
                                       for --test-data
              --temperature K          temperature of that target (default: the model's)
              --platform NAME          OpenMM platform for its energies (default Reference)
              --num-aug-samples K      default 20
              --num-test N             default: the whole test split
              --num-ess-samples N      flow samples for the reverse ESS (default 10000)
              --ais-samples N          also the ESS of AIS from the flow to the target on N
                                       samples (default 0: not computed; needs a target)
              --ais-intermediate N     its intermediate distributions (default DW4 2, else 8)
              --ais-step-size S        its initial HMC step size (length units, default 1; give
                                       the one the FAB run ended with), adapted between passes
              --ais-batch-size N       samples per AIS pass (default 128)
              --seed N                 default 0
  remd      temperature replica exchange of an OpenMM System; rerun the same command to resume
            a killed run (and to extend it, with a larger --exchanges)
              --system FILE            the System as XML (openmm.XmlSerializer.serialize(system));
                                       a BoltzmannGeneratorProposal in it proposes in every replica
              --state FILE             starting positions: an OpenMM State as XML (nm), e.g.
                                       XmlSerializer.serialize(context.getState(getPositions=True))
              --temperatures LIST      K, increasing, e.g. 300,332,367; or a geometric ladder:
              --tmin K --tmax K --num-replicas N
              --exchanges N            total exchange attempts to reach
              --output DIR             trajectory_<i>.dcd, energies.csv, statistics.json, checkpoint.bin
              --steps-per-exchange N   default 500
              --timestep PS            default 0.001
              --friction PER_PS        Langevin friction, default 1
              --exchanges-per-frame N  default 1
              --checkpoint-every N     exchanges between checkpoints (default 10)
              --platform NAME          default: OpenMM's fastest (CPU)
              --precision P            single|mixed|double (OpenCL, CUDA)
              --seed N                 default 0: from the clock
)";

class Args {
public:
    Args(int argc, char** argv, int first) {
        for (int i = first; i < argc; i++) {
            std::string key = argv[i];
            if (key == "-h" || key == "--help") {
                values["help"] = "1";
                continue;
            }
            if (key.rfind("--", 0) != 0)
                throw UsageError("unexpected argument '" + key + "'");
            if (i + 1 >= argc)
                throw UsageError("option " + key + " needs a value");
            values[key.substr(2)] = argv[++i];
        }
    }
    bool has(const std::string& k) const { return values.count(k) > 0; }
    std::string get(const std::string& k, const std::string& def = "") {
        used.insert(k);
        auto it = values.find(k);
        return it == values.end() ? def : it->second;
    }
    std::string require(const std::string& k) {
        if (!has(k))
            throw UsageError("missing required option --" + k);
        return get(k);
    }
    long long getInt(const std::string& k, long long def) {
        std::string v = get(k);
        if (v.empty())
            return def;
        try {
            size_t pos;
            long long r = std::stoll(v, &pos);
            if (pos != v.size())
                throw std::invalid_argument(v);
            return r;
        } catch (const std::exception&) {
            throw UsageError("--" + k + " expects an integer, got '" + v + "'");
        }
    }
    double getDouble(const std::string& k, double def) {
        std::string v = get(k);
        if (v.empty())
            return def;
        try {
            size_t pos;
            double r = std::stod(v, &pos);
            if (pos != v.size())
                throw std::invalid_argument(v);
            return r;
        } catch (const std::exception&) {
            throw UsageError("--" + k + " expects a number, got '" + v + "'");
        }
    }
    void checkAllUsed() const {
        for (auto& [k, v] : values)
            if (!used.count(k) && k != "help")
                throw UsageError("unknown option --" + k);
    }

private:
    std::map<std::string, std::string> values;
    std::set<std::string> used;
};

/** Adds the keys of --config (a JSON object), if given, to a flow configuration. */
void mergeConfigOption(Args& args, json& config) {
    if (!args.has("config"))
        return;
    json extra;
    try {
        extra = json::parse(args.get("config"));
    } catch (const json::exception&) {
        throw UsageError("--config is not valid JSON");
    }
    if (!extra.is_object())
        throw UsageError("--config must be a JSON object");
    config.update(extra);
}

/** A built-in data set: files and splits of ../shared/data/efm. */
struct DataSet {
    std::string name;
    int numParticles, dim;
    std::string trainFile;
    int64_t trainBegin;
    std::string validationFile;
    int64_t validationBegin, validationEnd;  // -1: to the end
    std::string testFile;
    int defaultEpochs;
};

DataSet dataSet(const std::string& name) {
    if (name == "dw4")
        return {"dw4", 4, 2, "train_split_DW4.npy", 0, "val_split_DW4.npy", 0, -1, "test_split_DW4.npy", 100};
    if (name == "lj13")
        return {"lj13", 13, 3, "val_split_LJ13-1000.npy", 0, "val_split_LJ13-1000.npy", 1000, 2000,
                "test_split_LJ13-1000.npy", 400};
    throw UsageError("unknown system '" + name + "' (expected dw4 or lj13)");
}

/** AIS intermediate distributions of a target (eacf-reference.md: DW4 2, LJ13 8), for train and evaluate. */
int defaultNumIntermediate(const std::string& systemName) {
    return systemName == "dw4" ? 2 : 8;
}

// Resolve the data folder (--data-dir or $OPENMMBG_DATA_DIR) to its efm/ subfolder.
std::string resolveDataDir(std::string dir) {
    if (dir.empty()) {
        const char* env = std::getenv("OPENMMBG_DATA_DIR");
        if (!env)
            throw UsageError("give --data-dir or set OPENMMBG_DATA_DIR (the folder holding efm/)");
        dir = env;
    }
    std::filesystem::path efm = std::filesystem::path(dir) / "efm";
    if (!std::filesystem::is_directory(efm))
        throw std::runtime_error("data folder '" + efm.string() + "' does not exist");
    return efm.string();
}

torch::Tensor toTensor(const Array& a) {
    return torch::from_blob(const_cast<double*>(a.values.data()), a.shape, torch::kFloat64).clone();
}

torch::Tensor loadSplit(const std::string& dir, const std::string& file, const DataSet& ds, int64_t begin, int64_t end) {
    const std::string path = dir + "/" + file;
    Array raw = readNpy(path);
    if (end < 0)
        end = raw.rows();
    if (end > raw.rows())
        throw std::runtime_error("'" + path + "' has " + std::to_string(raw.rows()) + " rows, need " + std::to_string(end));
    return toTensor(asConfigurations(sliceRows(raw, begin, end), ds.numParticles, ds.dim, true, path));
}

// "0,1,4-9" -> {0, 1, 4, 5, 6, 7, 8, 9}
std::vector<int64_t> parseParticles(const std::string& text) {
    std::vector<int64_t> out;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
        try {
            size_t dash = item.find('-');
            if (dash == std::string::npos) {
                out.push_back(std::stoll(item));
            } else {
                int64_t a = std::stoll(item.substr(0, dash)), b = std::stoll(item.substr(dash + 1));
                if (b < a)
                    throw std::invalid_argument(item);
                for (int64_t i = a; i <= b; i++)
                    out.push_back(i);
            }
        } catch (const std::exception&) {
            throw UsageError("--particles: cannot read '" + item + "' (expected a list like 0,1,4-9)");
        }
    }
    return out;
}

// Configurations [n, N, D] from a .npy or .dcd file, optionally restricted to some particles.
torch::Tensor loadConfigurations(const std::string& path, const std::vector<int64_t>& particles, int dim) {
    const std::string ext = std::filesystem::path(path).extension().string();
    Array a;
    if (ext == ".dcd") {
        DcdReadOptions options;
        options.particles = particles;
        a = readDcd(path, options);
    } else if (ext == ".npy") {
        Array raw = readNpy(path);
        if (raw.shape.size() == 3)
            a = raw;
        else if (raw.shape.size() == 2 && raw.shape[1] % dim == 0)
            a = asConfigurations(raw, int(raw.shape[1] / dim), dim, false, path);
        else
            throw std::runtime_error("'" + path + "': expected an array [n, N, D] or [n, N*D], got " +
                                     std::to_string(raw.shape.size()) + " dimensions");
        if (!particles.empty()) {
            torch::Tensor t = toTensor(a);
            for (int64_t i : particles)
                if (i < 0 || i >= t.size(1))
                    throw std::runtime_error("'" + path + "': particle index " + std::to_string(i) + " is out of range (" +
                                             std::to_string(t.size(1)) + " particles)");
            a.values.clear();
            torch::Tensor selected = t.index_select(1, torch::tensor(particles, torch::kLong)).contiguous();
            a.shape = selected.sizes().vec();
            a.values.assign(selected.data_ptr<double>(), selected.data_ptr<double>() + selected.numel());
        }
    } else {
        throw std::runtime_error("'" + path + "': unknown data format '" + ext + "' (expected .npy or .dcd)");
    }
    torch::Tensor t = toTensor(a);
    if (!torch::isfinite(t).all().item<bool>())
        throw std::runtime_error("'" + path + "' holds non-finite coordinates");
    return t;
}

int commandExport(Args& args) {
    const std::string checkpoint = args.require("checkpoint"), output = args.require("output");
    args.checkAllUsed();
    bool fromBest = false;
    std::string progress;
    AugmentedCouplingFlow flow = flowFromCheckpoint(checkpoint, &fromBest, &progress);
    json meta = json::parse(progress);
    meta["checkpoint"] = checkpoint;
    meta["parameters"] = fromBest ? "best validation NLL" : "current";
    saveFlow(flow, output, {{"training", meta.dump()}});
    std::cerr << "openmmbg export: wrote " << output << " (" << meta["parameters"].get<std::string>()
              << " parameters; run at " << progress << ")" << std::endl;
    return 0;
}

int commandInfo(Args& args) {
    const std::string modelPath = args.get("model"), configJson = args.get("config");
    args.checkAllUsed();
    if (modelPath.empty() == configJson.empty())
        throw UsageError("give exactly one of --config and --model");
    AugmentedCouplingFlow flow = modelPath.empty() ? AugmentedCouplingFlow(FlowConfig::fromJson(configJson))
                                                   : loadFlow(modelPath);
    int64_t count = 0;
    for (auto& p : flow->parameters())
        count += p.numel();
    json out = {{"config", json::parse(flow->config().toJson())}, {"num_parameters", count}};
    std::cout << out.dump(2) << std::endl;
    return 0;
}

int commandTrainEnergy(Args& args, const std::string& objective);

int commandTrain(Args& args) {
    const std::string objective = args.get("objective", "ml");
    if (objective == "fab" || objective == "reverse-kl")
        return commandTrainEnergy(args, objective);
    if (objective != "ml")
        throw UsageError("--objective must be ml, fab or reverse-kl (got '" + objective + "')");
    const std::string dataPath = args.get("data"), validationPath = args.get("validation-data");
    const std::vector<int64_t> particles = parseParticles(args.get("particles"));
    const int flatDim = int(args.getInt("dim", 3));
    if (dataPath.empty() == !args.has("system"))
        throw UsageError("give exactly one of --system and --data");
    if (dataPath.empty() && (!validationPath.empty() || !particles.empty()))
        throw UsageError("--validation-data and --particles go with --data");
    DataSet ds = dataPath.empty() ? dataSet(args.get("system"))
                                  : DataSet{"user data", 0, 0, dataPath, 0, validationPath, 0, -1, "", 100};
    const std::string dataDirOption = args.get("data-dir");
    const std::string output = args.require("output");
    json config = {{"projection", args.get("projection", "spherical")}};
    if (dataPath.empty())
        config.update({{"num_particles", ds.numParticles}, {"dim", ds.dim}});
    mergeConfigOption(args, config);
    MaximumLikelihoodOptions o;
    // The Non-E-ACF baseline trains for 4x the epochs (eacf-reference.md).
    const int defaultEpochs = ds.defaultEpochs * (config["projection"] == "none" ? 4 : 1);
    o.epochs = int(args.getInt("epochs", defaultEpochs));
    o.batchSize = int(args.getInt("batch-size", 32));
    o.timeLimit = args.getDouble("time-limit", 0);
    o.validateEvery = int(args.getInt("validate-every", 10));
    o.patience = int(args.getInt("patience", 0));
    o.seed = uint64_t(args.getInt("seed", 0));
    const int64_t numTrain = args.getInt("num-train", 1000);
    const int64_t numValidation = args.getInt("num-validation", 1000);
    const std::string metricsPath = args.get("metrics");
    o.checkpointPath = args.get("checkpoint", output + ".checkpoint");
    o.checkpointEvery = int(args.getInt("checkpoint-every", 1));
    args.checkAllUsed();
    if (o.epochs < 1 || o.batchSize < 1 || numTrain < 1)
        throw UsageError("--epochs, --batch-size and --num-train must be positive");
    torch::Tensor train, validation;
    if (!dataPath.empty()) {
        train = loadConfigurations(dataPath, particles, flatDim);
        if (!validationPath.empty()) {
            validation = loadConfigurations(validationPath, particles, flatDim);
        } else {
            const int64_t held = std::max<int64_t>(1, train.size(0) / 10);
            if (train.size(0) < 2)
                throw std::runtime_error("'" + dataPath + "' holds fewer than 2 configurations");
            validation = train.narrow(0, train.size(0) - held, held);
            train = train.narrow(0, 0, train.size(0) - held);
        }
        if (args.has("num-train"))
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
    const std::string dir = dataPath.empty() ? resolveDataDir(dataDirOption) : "";
    if (dataPath.empty() && ds.trainFile == ds.validationFile && ds.trainBegin + numTrain > ds.validationBegin)
        throw UsageError("--num-train " + std::to_string(numTrain) + " would overlap the " + ds.name +
                         " validation rows starting at " + std::to_string(ds.validationBegin));

    FlowConfig cfg = FlowConfig::fromJson(config.dump());
    const std::filesystem::path outPath(output);
    if (outPath.has_parent_path())
        std::filesystem::create_directories(outPath.parent_path());
    // The Non-E-ACF baseline is not rotation equivariant: train it with random-rotation augmentation.
    o.randomRotations = cfg.projection == "none";
    if (dataPath.empty()) {
        train = loadSplit(dir, ds.trainFile, ds, ds.trainBegin, ds.trainBegin + numTrain);
        validation = loadSplit(dir, ds.validationFile, ds, ds.validationBegin, ds.validationEnd);
    }
    // Model selection uses the first --num-validation points to keep validation cheap.
    validation = validation.narrow(0, 0, std::min<int64_t>(std::max<int64_t>(numValidation, 1), validation.size(0)));
    AugmentedCouplingFlow flow(cfg);
    std::FILE* metrics = nullptr;
    if (!metricsPath.empty()) {
        metrics = std::fopen(metricsPath.c_str(), "w");
        if (!metrics)
            throw std::runtime_error("cannot open '" + metricsPath + "' for writing");
    }
    if (std::filesystem::exists(o.checkpointPath))
        std::cerr << "openmmbg train: resuming from " << o.checkpointPath << std::endl;
    std::cerr << "openmmbg train: " << ds.name << ", " << cfg.projection << "-proj, " << train.size(0)
              << " training / " << validation.size(0) << " validation points, " << o.epochs << " epochs"
              << (o.timeLimit > 0 ? " (time limit " + formatDuration(o.timeLimit) + ")" : "") << std::endl;
    MaximumLikelihoodTrainer trainer(flow, train, validation, o);
    auto reports = trainer.run([&](const EpochReport& r) {
        std::cerr << formatEpochReport(r) << std::endl;
        if (metrics) {
            std::fprintf(metrics, "%s\n", epochReportToJson(r).c_str());
            std::fflush(metrics);
        }
    });
    if (metrics)
        std::fclose(metrics);
    json meta = {{"system", ds.name}, {"epochs_run", reports.size()}, {"seed", o.seed},
                 {"best_validation_nll", reports.empty() ? NAN : reports.back().bestValidationNll}};
    saveFlow(flow, output, {{"training", meta.dump()}});
    std::cerr << "openmmbg train: wrote " << output << " (best validation NLL "
              << (reports.empty() ? NAN : reports.back().bestValidationNll) << ")" << std::endl;
    return 0;
}

// Energy-based training (FAB or reverse KL) against a built-in target or an OpenMM System.
int commandTrainEnergy(Args& args, const std::string& objective) {
    const std::string systemName = args.get("system"), systemXmlPath = args.get("openmm-system");
    if (systemName.empty() == systemXmlPath.empty())
        throw UsageError("--objective " + objective + " needs exactly one of --system and --openmm-system");
    if (systemXmlPath.empty() && (args.has("temperature") || args.has("platform")))
        throw UsageError("--temperature and --platform go with --openmm-system");
    const std::string output = args.require("output");
    // --init-model: fine-tune a trained flow (e.g. FAB after maximum likelihood); its file holds the
    // configuration, so --projection and --config would be ignored and are refused.
    const std::string initModel = args.get("init-model");
    if (!initModel.empty() && (args.has("projection") || args.has("config")))
        throw UsageError("--init-model takes the flow's configuration from the model file: drop --projection and --config");
    json config = {{"projection", args.get("projection", "spherical")}};
    mergeConfigOption(args, config);
    EnergyTrainingOptions o;
    json optionsJson = json::object();
    if (args.has("options")) {
        try {
            optionsJson = json::parse(args.get("options"));
            o = energyTrainingOptionsFromJson(optionsJson.dump());
        } catch (const std::exception& e) {
            throw UsageError(std::string("--options: ") + e.what());
        }
    }
    o.objective = objective;
    const bool builtin = !systemName.empty();
    if (builtin && systemName != "dw4" && systemName != "lj13" && systemName != "lj55")
        throw UsageError("unknown system '" + systemName + "' (expected dw4, lj13 or lj55)");
    const bool dw4 = systemName == "dw4";
    // A flag wins over --options, which wins over the target's default.
    auto pick = [&](const char* flag, const char* key, long long targetDefault, int current) {
        return int(args.getInt(flag, optionsJson.contains(key) ? current : targetDefault));
    };
    // eacf-reference.md: DW4 20000 iterations of batch 128, LJ13 14000 of batch 1024.
    o.iterations = pick("iterations", "iterations", dw4 ? 20000 : systemName == "lj13" ? 14000 : -1, o.iterations);
    if (o.iterations < 1)
        throw UsageError("give --iterations (positive) for this target");
    o.batchSize = pick("batch-size", "batch_size", dw4 || !builtin ? 128 : 1024, o.batchSize);
    o.numIntermediate = pick("num-intermediate", "num_intermediate", defaultNumIntermediate(systemName), o.numIntermediate);
    o.alpha = args.getDouble("alpha", o.alpha);
    o.numLeapfrog = int(args.getInt("leapfrog-steps", o.numLeapfrog));
    o.updatesPerIteration = int(args.getInt("updates-per-iteration", o.updatesPerIteration));
    o.bufferMaxBatches = int(args.getInt("buffer-max-batches", o.bufferMaxBatches));
    o.bufferMinBatches = int(args.getInt("buffer-min-batches", o.bufferMinBatches));
    o.reportEvery = int(args.getInt("report-every", o.reportEvery));
    o.evaluateEvery = int(args.getInt("evaluate-every", o.evaluateEvery));
    o.numEssSamples = int(args.getInt("num-ess-samples", o.numEssSamples));
    o.timeLimit = args.getDouble("time-limit", o.timeLimit);
    o.seed = uint64_t(args.getInt("seed", int64_t(o.seed)));
    const std::string metricsPath = args.get("metrics");
    o.checkpointPath = args.get("checkpoint", output + ".checkpoint");
    o.checkpointEvery = int(args.getInt("checkpoint-every", o.checkpointEvery));
    const double temperatureOption = args.getDouble("temperature", 300.0);
    const std::string platform = args.get("platform", "Reference");
    args.checkAllUsed();
    try {
        // The same validation as the JSON options (positive counts, buffer sizes in order, ...).
        json check = {{"objective", o.objective}, {"iterations", o.iterations}, {"batch_size", o.batchSize},
                      {"num_intermediate", o.numIntermediate}, {"num_leapfrog", o.numLeapfrog},
                      {"updates_per_iteration", o.updatesPerIteration}, {"buffer_max_batches", o.bufferMaxBatches},
                      {"buffer_min_batches", o.bufferMinBatches}, {"report_every", o.reportEvery},
                      {"evaluate_every", o.evaluateEvery}, {"num_ess_samples", o.numEssSamples},
                      {"checkpoint_every", o.checkpointEvery}};
        energyTrainingOptionsFromJson(check.dump());
    } catch (const std::invalid_argument& e) {
        throw UsageError(e.what());
    }

    std::shared_ptr<Target> target;
    std::string targetId;
    if (builtin) {
        target = makeBuiltinTarget(systemName);
        targetId = systemName;
    } else {
        const std::string xml = readFileBytes(systemXmlPath);
        auto system = std::shared_ptr<OpenMMSystemTarget>(
            OpenMMSystemTarget::fromXml(xml, temperatureOption, {}, {}, platform));
        target = std::make_shared<OpenMMSystemTargetImpl>(system);
        // A checkpoint is resumed only against the same System at the same temperature.
        targetId = "openmm-system:" + std::to_string(fnv1a64(xml.data(), xml.size())) + "@" + json(temperatureOption).dump();
        for (auto [key, value] : {std::pair<const char*, json>{"length_unit", "nm"}, {"dim", 3}})
            if (config.contains(key) && config[key] != value)
                throw std::runtime_error(std::string("--config ") + key + " = " + config[key].dump() +
                                         " but an OpenMM System needs " + value.dump());
        config["temperature"] = temperatureOption;
    }
    const std::string configSource = initModel.empty() ? "--config" : "--init-model " + initModel + ":";
    AugmentedCouplingFlow flow{nullptr};
    if (!initModel.empty()) {
        flow = loadFlow(initModel);
        json fromFile = json::parse(flow->config().toJson());
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
    FlowConfig cfg = FlowConfig::fromJson(config.dump());
    const std::filesystem::path outPath(output);
    if (outPath.has_parent_path())
        std::filesystem::create_directories(outPath.parent_path());
    if (initModel.empty())
        flow = AugmentedCouplingFlow(cfg);
    std::FILE* metrics = nullptr;
    if (!metricsPath.empty()) {
        metrics = std::fopen(metricsPath.c_str(), "w");
        if (!metrics)
            throw std::runtime_error("cannot open '" + metricsPath + "' for writing");
    }
    const bool resuming = std::filesystem::exists(o.checkpointPath);
    if (resuming)
        std::cerr << "openmmbg train: resuming from " << o.checkpointPath << std::endl;
    std::cerr << "openmmbg train: " << objective << " on " << (builtin ? systemName : systemXmlPath) << ", "
              << cfg.projection << "-proj, " << o.iterations << " iterations of batch " << o.batchSize
              << (objective == "fab" ? ", " + std::to_string(o.numIntermediate) + " intermediate distributions" : "")
              << (o.timeLimit > 0 ? " (time limit " + formatDuration(o.timeLimit) + ")" : "") << std::endl;
    if (objective == "fab" && !resuming)
        std::cerr << "openmmbg train: filling the replay buffer (" << o.bufferMinBatches << " AIS batches)" << std::endl;
    EnergyTrainer trainer(flow, target, o, targetId);
    const auto fillStart = std::chrono::steady_clock::now();
    int lastFillDecile = 0;
    auto reports = trainer.run(
        [&](const EnergyTrainingReport& r) {
            std::cerr << formatEnergyTrainingReport(r) << std::endl;
            if (metrics) {
                std::fprintf(metrics, "%s\n", energyTrainingReportToJson(r).c_str());
                std::fflush(metrics);
            }
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
    if (metrics)
        std::fclose(metrics);
    const int done = reports.empty() ? 0 : reports.back().iteration;
    if (done < o.iterations) {
        // Stopped by the time limit: the checkpoint holds the state; rerun the command to continue.
        std::cerr << "openmmbg train: stopped by the time limit after report " << done << "/" << o.iterations
                  << "; rerun the same command to continue from " << o.checkpointPath << std::endl;
    }
    json meta = {{"objective", objective}, {"target", targetId}, {"iterations_run", done}, {"seed", o.seed},
                 {"reverse_ess", reports.empty() || std::isnan(reports.back().reverseEss) ? json(nullptr)
                                                                                        : json(reports.back().reverseEss)}};
    saveFlow(flow, output, {{"training", meta.dump()}});
    std::cerr << "openmmbg train: wrote " << output << std::endl;
    return 0;
}

int commandEvaluate(Args& args) {
    const std::string modelPath = args.require("model");
    const std::string testPath = args.get("test-data");
    const std::vector<int64_t> particles = parseParticles(args.get("particles"));
    const int flatDim = int(args.getInt("dim", 3));
    if (testPath.empty() && !args.has("system"))
        throw UsageError("missing required option --system (or give --test-data)");
    const std::string systemXmlPath = args.get("openmm-system");
    const double temperatureOption = args.getDouble("temperature", 0);
    const std::string platform = args.get("platform", "Reference");
    if (!systemXmlPath.empty() && args.has("system"))
        throw UsageError("give at most one of --system and --openmm-system");
    if (systemXmlPath.empty() && (args.has("temperature") || args.has("platform")))
        throw UsageError("--temperature and --platform go with --openmm-system");
    const bool hasSystem = args.has("system");
    DataSet ds = hasSystem ? dataSet(args.get("system")) : DataSet{"user data", 0, 0, "", 0, "", 0, 0, testPath, 0};
    const std::string dataDirOption = args.get("data-dir");
    const int K = int(args.getInt("num-aug-samples", 20));
    const int64_t numTest = args.getInt("num-test", -1);
    const uint64_t seed = uint64_t(args.getInt("seed", 0));
    const int64_t numEss = args.getInt("num-ess-samples", 10000);
    const int64_t aisSamples = args.getInt("ais-samples", 0);
    AisOptions aisOptions;
    aisOptions.alpha = 1.0;
    aisOptions.numIntermediate = int(args.getInt("ais-intermediate", defaultNumIntermediate(args.get("system"))));
    aisOptions.initialStepSize = args.getDouble("ais-step-size", EnergyTrainingOptions().initialStepSize);
    const int64_t aisBatchSize = args.getInt("ais-batch-size", 128);
    args.checkAllUsed();
    if (numEss < 1)
        throw UsageError("--num-ess-samples must be positive");
    if (aisSamples < 0 || aisBatchSize < 1 || aisOptions.numIntermediate < 0 || !(aisOptions.initialStepSize > 0))
        throw UsageError("--ais-samples must be >= 0, --ais-batch-size and --ais-step-size positive, "
                         "--ais-intermediate >= 0");
    if (aisSamples > 0 && !hasSystem && systemXmlPath.empty())
        throw UsageError("--ais-samples needs a target (--system or --openmm-system)");
    if (K < 1)
        throw UsageError("--num-aug-samples must be positive");
    AugmentedCouplingFlow flow = loadFlow(modelPath);
    torch::Tensor test = testPath.empty() ? loadSplit(resolveDataDir(dataDirOption), ds.testFile, ds, 0, -1)
                                          : loadConfigurations(testPath, particles, flatDim);
    if (!hasSystem) {
        ds.numParticles = int(test.size(1));
        ds.dim = int(test.size(2));
    }
    if (flow->config().numParticles != ds.numParticles || flow->config().dim != ds.dim || test.size(1) != ds.numParticles ||
        test.size(2) != ds.dim)
        throw std::runtime_error("model '" + modelPath + "' describes " + std::to_string(flow->config().numParticles) +
                                 " particles in " + std::to_string(flow->config().dim) + "-D, not the " + ds.name +
                                 " system");
    if (numTest > 0)
        test = test.narrow(0, 0, std::min<int64_t>(numTest, test.size(0)));
    json out;
    std::shared_ptr<Target> target;
    if (hasSystem) {
        target = makeBuiltinTarget(ds.name);
        out = json::parse(evaluateFlow(flow, *target, test, K, numEss, seed).toJson());
    } else if (!systemXmlPath.empty()) {
        if (flow->config().lengthUnit != "nm" || flow->config().dim != 3)
            throw std::runtime_error("--openmm-system needs a 3-D model in nm (this one: " +
                                     std::to_string(flow->config().dim) + "-D, " + flow->config().lengthUnit + ")");
        const double temperature = temperatureOption > 0 ? temperatureOption : flow->config().temperature;
        auto system = std::shared_ptr<OpenMMSystemTarget>(
            OpenMMSystemTarget::fromXml(readFileBytes(systemXmlPath), temperature, {}, {}, platform));
        if (system->getNumParticles() != flow->config().numParticles)
            throw std::runtime_error("'" + systemXmlPath + "' has " + std::to_string(system->getNumParticles()) +
                                     " particles but the model describes " + std::to_string(flow->config().numParticles));
        target = std::make_shared<OpenMMSystemTargetImpl>(system);
        out = json::parse(evaluateFlow(flow, *target, test, K, numEss, seed).toJson());
        out.update({{"openmm_system", systemXmlPath}, {"temperature", temperature}, {"test_data", testPath}});
    } else {
        // No target energy: only the likelihood of the test data can be estimated.
        flow->eval();
        torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
        auto [nll, sem] = marginalNll(flow, test, K, gen);
        out = {{"nll", nll}, {"nll_sem", sem}, {"reverse_ess", nullptr}, {"forward_ess", nullptr},
               {"num_test", test.size(0)}, {"num_aug_samples", K}, {"test_data", testPath}};
    }
    if (aisSamples > 0) {
        // Its own generator, so adding AIS leaves the other estimates of this seed unchanged.
        flow->eval();
        torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed + 1);
        AnnealedImportanceSampler sampler(aisOptions);
        std::cerr << "AIS: " << aisSamples << " samples, " << aisOptions.numIntermediate
                  << " intermediate distributions, passes of " << aisBatchSize << std::endl;
        out["ais_ess"] = aisEss(flow, target, aisSamples, sampler, gen, aisBatchSize, true).first;
        out.update({{"ais_samples", aisSamples}, {"ais_intermediate", aisOptions.numIntermediate},
                    {"ais_leapfrog_steps", aisOptions.numLeapfrog}, {"ais_initial_step_size", aisOptions.initialStepSize},
                    {"ais_final_step_sizes", sampler.stepSizes}});
    }
    out.update({{"model", modelPath}, {"system", ds.name}, {"seed", seed}});
    std::cout << out.dump(2) << std::endl;
    return 0;
}

std::vector<double> temperatureLadder(Args& args) {
    std::vector<double> temperatures;
    if (args.has("temperatures")) {
        if (args.has("tmin") || args.has("tmax") || args.has("num-replicas"))
            throw UsageError("give either --temperatures or --tmin/--tmax/--num-replicas");
        std::stringstream list(args.get("temperatures"));
        std::string item;
        while (std::getline(list, item, ',')) {
            try {
                size_t pos;
                temperatures.push_back(std::stod(item, &pos));
                if (pos != item.size())
                    throw std::invalid_argument(item);
            } catch (const std::exception&) {
                throw UsageError("--temperatures: cannot read '" + item + "' (expected a list like 300,330,363)");
            }
        }
        return temperatures;
    }
    const double tmin = args.getDouble("tmin", 0), tmax = args.getDouble("tmax", 0);
    const long long n = args.getInt("num-replicas", 0);
    if (!(tmin > 0) || !(tmax > tmin) || n < 2)
        throw UsageError("give --temperatures, or --tmin > 0, --tmax > tmin and --num-replicas >= 2");
    for (long long i = 0; i < n; i++)
        temperatures.push_back(tmin * std::pow(tmax / tmin, double(i) / double(n - 1)));
    return temperatures;
}

template <class T>
T* readXml(const std::string& path, const char* what) {
    std::ifstream in(path);
    if (!in)
        throw std::runtime_error("cannot read " + std::string(what) + " '" + path + "'");
    try {
        return OpenMM::XmlSerializer::deserialize<T>(in);
    } catch (const std::exception& e) {
        throw std::runtime_error("'" + path + "' is not an OpenMM " + what + " in XML: " + e.what());
    }
}

// OpenMM's platforms (OPENMM_PLUGIN_DIR, else the folder found at build time) and ours (beside the
// executable, or OPENMMBG_PLUGIN_DIR), so a System holding a BoltzmannGeneratorProposal runs.
void loadPlugins(const char* argv0) {
    const char* openmmDir = std::getenv("OPENMM_PLUGIN_DIR");
    OpenMM::Platform::loadPluginsFromDirectory(openmmDir != nullptr ? openmmDir : OPENMM_PLUGIN_DIR);
    const char* ours = std::getenv("OPENMMBG_PLUGIN_DIR");
    std::filesystem::path dir = ours != nullptr ? std::filesystem::path(ours)
                                                : std::filesystem::absolute(argv0).parent_path() / "plugins";
    if (std::filesystem::is_directory(dir))
        OpenMM::Platform::loadPluginsFromDirectory(dir.string());
}

int commandRemd(Args& args, const char* argv0) {
    ReplicaExchangeOptions options;
    const std::string systemPath = args.require("system"), statePath = args.require("state");
    options.temperatures = temperatureLadder(args);
    options.outputDirectory = args.require("output");
    const long long exchanges = args.getInt("exchanges", -1);
    if (exchanges < 1)
        throw UsageError("--exchanges must be given and positive");
    options.stepsPerExchange = int(args.getInt("steps-per-exchange", 500));
    options.timestep = args.getDouble("timestep", 0.001);
    options.friction = args.getDouble("friction", 1.0);
    options.exchangesPerFrame = int(args.getInt("exchanges-per-frame", 1));
    options.exchangesPerCheckpoint = int(args.getInt("checkpoint-every", 10));
    options.platform = args.get("platform");
    if (args.has("precision"))
        options.platformProperties["Precision"] = args.get("precision");
    options.randomSeed = int(args.getInt("seed", 0));
    args.checkAllUsed();
    loadPlugins(argv0);
    std::unique_ptr<OpenMM::System> system(readXml<OpenMM::System>(systemPath, "System"));
    std::unique_ptr<OpenMM::State> state(readXml<OpenMM::State>(statePath, "State"));
    ReplicaExchange remd(*system, state->getPositions(), options);
    if (remd.getNumExchanges() > 0)
        std::cerr << "[openmmbg] resuming " << options.outputDirectory << " at exchange " << remd.getNumExchanges()
                  << std::endl;
    const auto start = std::chrono::steady_clock::now();
    const long long first = remd.getNumExchanges();
    long long lastPercent = -1;
    double lastPrintTime = -1e9;
    remd.run(exchanges, [&](long long done, long long total) {
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        // A line per percent of the run, and at least one a minute on long runs.
        const long long percent = 100 * done / std::max<long long>(total, 1);
        if (done == total || percent != lastPercent || elapsed - lastPrintTime >= 60) {
            lastPercent = percent;
            lastPrintTime = elapsed;
            const double perExchange = elapsed / double(std::max<long long>(done - first, 1));
            std::string swaps;
            for (int p = 0; p + 1 < remd.getNumReplicas(); p++) {
                const long long a = remd.getNumSwapsAttempted(p);
                swaps += (p ? " " : "") + std::to_string(a > 0 ? int(std::lround(100.0 * remd.getNumSwapsAccepted(p) / a)) : 0);
            }
            std::cerr << "[openmmbg] exchange " << done << "/" << total << "  swap acceptance % [" << swaps << "]  "
                      << formatDuration(elapsed) << " elapsed, ETA " << formatDuration(perExchange * double(total - done))
                      << std::endl;
        }
    });
    std::cout << remd.getStatisticsJson() << std::endl;
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << USAGE;
        return 2;
    }
    const std::string command = argv[1];
    try {
        if (command == "-h" || command == "--help" || command == "help") {
            std::cout << USAGE;
            return 0;
        }
        Args args(argc, argv, 2);
        if (args.has("help")) {
            std::cout << USAGE;
            return 0;
        }
        if (command == "info")
            return commandInfo(args);
        if (command == "export")
            return commandExport(args);
        if (command == "train")
            return commandTrain(args);
        if (command == "evaluate")
            return commandEvaluate(args);
        if (command == "remd")
            return commandRemd(args, argv[0]);
        throw UsageError("unknown command '" + command + "'");
    } catch (const UsageError& e) {
        std::cerr << "openmmbg: error: " << e.what() << " (see openmmbg --help)" << std::endl;
        return 2;
    } catch (const std::exception& e) {
        std::string message = e.what();
        // LibTorch errors carry a C++ backtrace after the first line: keep the message to one line.
        message = message.substr(0, message.find('\n'));
        std::cerr << "openmmbg: error: " << message << std::endl;
        return 1;
    }
}
