#pragma once
// What the commands of the openmmbg tool share: the usage error, CLI11 helpers (typed, range-checked
// options with readable one-line errors), data loading and OpenMM plugin loading.
#include "catalog.h"

#include "openmmbg/io/DataIO.h"
#include "openmmbg/Model.h"
#include "openmmbg/targets/Target.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace OpenMMBG::Cli {

using nlohmann::json;

/** Bad usage (an invalid combination of options): exit status 2, like CLI11's own parse errors. */
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Defaults for a target given as an OpenMM System (--openmm-system); the built-in systems' are in
// the catalog (catalog/builtin-systems.json).
constexpr int kOpenMMSystemBatchSize = 128;      ///< train --objective fab|reverse-kl --batch-size
constexpr int kOpenMMSystemNumIntermediate = 8;  ///< train --num-intermediate, evaluate --ais-intermediate

// --- CLI11 helpers ---------------------------------------------------------------------------

/** Whether an option was given on the command line. */
inline bool given(const CLI::Option* option) { return option->count() > 0; }

/** The value is an integer ("expects an integer, got 'x'"). */
CLI::Validator integerValue();
/** The value is a number ("expects a number, got 'x'"). */
CLI::Validator numberValue();
/** CLI::PositiveNumber, CLI::NonNegativeNumber and CLI::IsMember with a readable message. */
CLI::Validator positive();
CLI::Validator nonNegative();
CLI::Validator atLeast(double min);
CLI::Validator oneOf(const std::vector<std::string>& values);
/** A built-in system of the catalog (the catalog is read when the option is given). */
CLI::Validator builtinSystem();
/** For help texts: the catalog's systems ("dw4, lj13 or lj55", those passing `keep`), or where the catalog is. */
std::string systemNamesForHelp(bool (*keep)(const BuiltinSystem&) = nullptr);
/** For help texts: a per-system default from the catalog, "dw4 100, lj13 400" (systems without one left out). */
std::string perSystemForHelp(const std::function<std::optional<std::string>(const BuiltinSystem&)>& value);

/**
 * Adds an option bound to `value`, typed (integers and numbers are checked before any range) and
 * with its current value shown as the default in the help unless `showDefault` is false (for
 * defaults that depend on the system, described in the help text instead).
 */
template <class T>
CLI::Option* addOption(CLI::App* app, const std::string& name, T& value, const std::string& help,
                       bool showDefault = true) {
    CLI::Option* option = app->add_option(name, value, help);
    if constexpr (std::is_integral_v<T>) {
        option->transform(integerValue());  // transform: it rewrites the value (check() may not)
        option->type_name("N");
    } else if constexpr (std::is_floating_point_v<T>) {
        option->check(numberValue());
        option->type_name("X");
    } else {
        option->type_name("TEXT");
    }
    if (showDefault)
        option->capture_default_str();
    return option;
}

/**
 * Flags that set fields of an options struct (e.g. EnergyTrainingOptions) only where given on the
 * command line, so that what lies underneath (the library's defaults, --options) stays otherwise.
 * Each flag is listed once, with the field it sets; apply() copies those given.
 */
template <class Options>
class FlagOverrides {
public:
    /** Adds a flag (addOption) that sets `field` when given; `value` starts at, and the help shows, its default. */
    template <class Value, class Field>
    CLI::Option* add(CLI::App* app, const std::string& name, Value& value, Field Options::*field,
                     const std::string& help) {
        value = Value(Options().*field);
        CLI::Option* option = addOption(app, name, value, help);
        bind(option, value, field);
        return option;
    }
    /** Makes a flag added elsewhere, bound to `value`, set `field` when given. */
    template <class Value, class Field>
    void bind(const CLI::Option* option, const Value& value, Field Options::*field) {
        copies_.push_back([option, &value, field](Options& options) {
            if (given(option))
                options.*field = Field(value);
        });
    }
    void apply(Options& options) const {
        for (const auto& copy : copies_)
            copy(options);
    }

private:
    std::vector<std::function<void(Options&)>> copies_;
};

/** Sets up the formatting and error behaviour every (sub)command shares. */
void configureApp(CLI::App& app);

// --- data ------------------------------------------------------------------------------------

/** The data folder (--data-dir, else $OPENMMBG_DATA_DIR) joined with `subfolder` (e.g. efm/); it must exist. */
std::string resolveDataDir(const std::string& dataDir, const std::string& subfolder);

torch::Tensor toTensor(const Array& a);

/** The target energy of a built-in system (makeBuiltinTarget), checked against the catalog's size. */
std::shared_ptr<Target> makeCatalogTarget(const BuiltinSystem& system);

/** Rows [begin, end) (end -1: to the end) of a built-in system's data file, as configurations [n, N, D]. */
torch::Tensor loadSplit(const std::string& dir, const std::string& file, const BuiltinSystem& system, int64_t begin,
                        int64_t end);

/** "0,1,4-9" -> {0, 1, 4, 5, 6, 7, 8, 9}; throws UsageError (also for a particle listed twice). */
std::vector<int64_t> parseParticles(const std::string& text);
/** As parseParticles, duplicates allowed (the list as written). */
std::vector<int64_t> parseParticleItems(const std::string& text);
/** The --particles validator (parseParticles' message). */
CLI::Validator particleList();

/** Configurations [n, N, D] from a .npy or .dcd file, optionally restricted to some particles. */
torch::Tensor loadConfigurations(const std::string& path, const std::vector<int64_t>& particles, int dim);

/** Adds the keys of --config (a JSON object), if given, to a flow configuration; throws UsageError. */
void mergeConfigOption(const CLI::Option* option, const std::string& text, json& config);

/**
 * A JSON-lines metrics file (--metrics): opened when the command starts, before any long work; every
 * line is written and flushed at once, and a failed write (e.g. a full disk) is an error, never a
 * silent loss. An empty path: no file.
 */
class MetricsFile {
public:
    explicit MetricsFile(const std::string& path);
    ~MetricsFile();
    MetricsFile(const MetricsFile&) = delete;
    MetricsFile& operator=(const MetricsFile&) = delete;
    /** Appends `line` and a newline, flushed; throws FileAccessError if the write fails. */
    void writeLine(const std::string& line);
    /** Closes the file; throws FileAccessError if the last data cannot be written. */
    void close();

private:
    std::string path_;
    std::FILE* file_ = nullptr;
};

/**
 * Checks, before any long work, that an output file can be written (its parent folders are created
 * first): a non-empty path, regular files only, a writable folder and, when `expectedBytes` is
 * given, that much free space (openmmbg/io/Files.h checkWritableFile). Throws FileAccessError.
 */
void checkOutput(const std::string& path, uint64_t expectedBytes = 0);

/** The bytes of a model's tensors: the size of its .bgm file, less the header. */
uint64_t modelBytes(Model& model);

/** A model's family in a progress line: "spherical-proj" (E-ACF: its projection) or "family ic". */
std::string describeModel(const Model& model);

/** Creates the parent folders of an output file. */
void createParentDirectories(const std::string& path);

// --- OpenMM ----------------------------------------------------------------------------------

/**
 * Loads OpenMM's platforms (loadOpenMMPlugins, openmmapi/include/internal/OpenMMPlugins.h) and ours
 * (OPENMMBG_PLUGIN_DIR, else plugins/ beside the executable), so a System holding a
 * BoltzmannGeneratorProposal runs.
 */
void loadPlugins(const char* argv0);

}  // namespace OpenMMBG::Cli
