// openmmbg remd: temperature replica exchange of an OpenMM System, resumable (docs/replica-exchange.md).
#include "commands.h"
#include "common.h"

#include "ReplicaExchange.h"
#include "openmmbg/Errors.h"
#include "openmmbg/io/Files.h"
#include "openmmbg/training/Training.h"

#include "openmm/State.h"
#include "openmm/System.h"
#include "openmm/serialization/XmlSerializer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

namespace OpenMMBG::Cli {

namespace {

struct RemdArgs {
    std::string system, state, temperatures, output, platform, precision;
    double tmin = 0, tmax = 0;
    long long numReplicas = 0;
    long long exchanges = 0;
    int stepsPerExchange = 500;
    double timestep = 0.001;
    double friction = 1.0;
    int exchangesPerFrame = 1;
    int checkpointEvery = 10;
    int seed = 0;
    CLI::Option *temperaturesOption = nullptr, *precisionOption = nullptr;
};

/** "300,332,367" -> {300, 332, 367}; throws UsageError. */
std::vector<double> parseTemperatures(const std::string& text) {
    std::vector<double> temperatures;
    std::stringstream list(text);
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

std::vector<double> temperatureLadder(const RemdArgs& args) {
    if (given(args.temperaturesOption))
        return parseTemperatures(args.temperatures);
    const double tmin = args.tmin, tmax = args.tmax;
    const long long n = args.numReplicas;
    if (!(tmin > 0) || !(tmax > tmin) || n < 2)
        throw UsageError("give --temperatures, or --tmin > 0, --tmax > tmin and --num-replicas >= 2");
    std::vector<double> temperatures;
    for (long long i = 0; i < n; i++)
        temperatures.push_back(tmin * std::pow(tmax / tmin, double(i) / double(n - 1)));
    return temperatures;
}

template <class T>
T* readXml(const std::string& path, const char* what) {
    std::string bytes;
    try {
        bytes = readFileBytes(path);  // regular files only
    } catch (const FileAccessError& e) {
        throw FileAccessError("cannot read " + std::string(what) + ": " + e.what());
    }
    std::istringstream in(bytes);
    try {
        return OpenMM::XmlSerializer::deserialize<T>(in);
    } catch (const std::exception& e) {
        throw std::runtime_error("'" + path + "' is not an OpenMM " + what + " in XML: " + e.what());
    }
}

int runRemd(const RemdArgs& args, const char* argv0) {
    ReplicaExchangeOptions options;
    options.temperatures = temperatureLadder(args);
    options.outputDirectory = args.output;
    const long long exchanges = args.exchanges;
    options.stepsPerExchange = args.stepsPerExchange;
    options.timestep = args.timestep;
    options.friction = args.friction;
    options.exchangesPerFrame = args.exchangesPerFrame;
    options.exchangesPerCheckpoint = args.checkpointEvery;
    options.platform = args.platform;
    if (given(args.precisionOption))
        options.platformProperties["Precision"] = args.precision;
    options.randomSeed = args.seed;
    loadPlugins(argv0);
    std::unique_ptr<OpenMM::System> system(readXml<OpenMM::System>(args.system, "System"));
    std::unique_ptr<OpenMM::State> state(readXml<OpenMM::State>(args.state, "State"));
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

Command addRemdCommand(CLI::App& parent, const char* argv0) {
    auto a = std::make_shared<RemdArgs>();
    CLI::App* app = parent.add_subcommand(
        "remd", "temperature replica exchange of an OpenMM System (docs/replica-exchange.md); rerun the same command "
                "to resume a killed run, with a larger --exchanges to extend it");
    addOption(app, "--system", a->system,
              "the System as XML (openmm.XmlSerializer.serialize(system)); a BoltzmannGeneratorProposal in it "
              "proposes in every replica")
        ->type_name("FILE")
        ->required();
    addOption(app, "--state", a->state,
              "starting positions: an OpenMM State as XML (nm), e.g. "
              "XmlSerializer.serialize(context.getState(getPositions=True))")
        ->type_name("FILE")
        ->required();
    a->temperaturesOption =
        addOption(app, "--temperatures", a->temperatures,
                  "the temperatures, increasing, e.g. 300,332,367 (or a geometric ladder: --tmin, --tmax, "
                  "--num-replicas)")
            ->type_name("LIST")
            ->check(CLI::Validator(
                [](std::string& value) {
                    try {
                        parseTemperatures(value);
                        return std::string();
                    } catch (const UsageError& e) {
                        const std::string message = e.what();
                        return message.substr(message.find(": ") + 2);  // CLI11 prefixes the option's name
                    }
                },
                ""));
    CLI::Option* tmin = addOption(app, "--tmin", a->tmin, "lowest temperature of a geometric ladder", false)
                            ->type_name("K")
                            ->check(positive());
    CLI::Option* tmax = addOption(app, "--tmax", a->tmax, "highest temperature of a geometric ladder", false)
                            ->type_name("K")
                            ->check(positive());
    CLI::Option* numReplicas =
        addOption(app, "--num-replicas", a->numReplicas, "number of temperatures of a geometric ladder", false)
            ->check(atLeast(2));
    for (CLI::Option* ladder : {tmin, tmax, numReplicas})
        a->temperaturesOption->excludes(ladder);
    addOption(app, "--exchanges", a->exchanges, "total exchange attempts to reach", false)->required()->check(positive());
    addOption(app, "--output", a->output,
              "folder for trajectory_<i>.dcd, energies.csv, statistics.json and checkpoint.bin")
        ->type_name("DIR")
        ->required();
    addOption(app, "--steps-per-exchange", a->stepsPerExchange, "MD steps of every replica between exchange attempts")
        ->check(positive());
    addOption(app, "--timestep", a->timestep, "integration time step")->type_name("PS")->check(positive());
    addOption(app, "--friction", a->friction, "Langevin friction")->type_name("PER_PS")->check(nonNegative());
    addOption(app, "--exchanges-per-frame", a->exchangesPerFrame, "exchange attempts between saved frames")
        ->check(positive());
    addOption(app, "--checkpoint-every", a->checkpointEvery, "exchange attempts between checkpoints")->check(positive());
    addOption(app, "--platform", a->platform, "OpenMM platform (default: OpenMM's fastest)")->type_name("NAME");
    a->precisionOption = addOption(app, "--precision", a->precision, "OpenCL and CUDA precision")
                             ->type_name("P")
                             ->check(oneOf({"single", "mixed", "double"}));
    addOption(app, "--seed", a->seed, "seed of exchanges, integrators and velocities; 0: from the clock")
        ->check(nonNegative());
    app->footer("Give --temperatures, or --tmin, --tmax and --num-replicas.");
    const std::string executable = argv0;
    return {app, [a, executable] { return runRemd(*a, executable.c_str()); }};
}

}  // namespace OpenMMBG::Cli
