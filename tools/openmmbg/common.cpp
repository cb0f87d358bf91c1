#include "common.h"

#include "OpenMMPlugins.h"
#include "openmmbg/eacf/AugmentedCouplingFlowModel.h"
#include "openmmbg/Errors.h"
#include "openmmbg/Validation.h"
#include "openmmbg/io/DcdReader.h"
#include "openmmbg/io/Files.h"

#include "openmm/Platform.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <memory>
#include <sstream>

namespace OpenMMBG::Cli {

namespace {

/** A validator that runs `check` (a CLI11 validator) and replaces its message by "<message>, got 'value'". */
CLI::Validator rephrase(const CLI::Validator& check, const std::string& description, const std::string& message) {
    CLI::Validator inner = check;
    return CLI::Validator(
        [inner, message](std::string& value) mutable {
            return inner(value).empty() ? std::string() : message + ", got '" + value + "'";
        },
        description);
}

/**
 * A validator of a number through the shared validation (openmmbg/Validation.h: parseNumber, then
 * `check`), with the message "<message>, got 'value'".
 */
CLI::Validator checkWith(const std::string& description, const std::string& message,
                         const std::function<void(double)>& check) {
    return CLI::Validator(
        [message, check](std::string& value) {
            try {
                check(parseNumber("value", value));
                return std::string();
            } catch (const std::invalid_argument&) {
                return message + ", got '" + value + "'";
            }
        },
        description);
}

std::string join(const std::vector<std::string>& values, const std::string& separator) {
    std::string out;
    for (size_t i = 0; i < values.size(); i++)
        out += (i ? separator : "") + values[i];
    return out;
}

/** Breaks text into lines of at most `width` characters at spaces (keeping its own line breaks). */
std::string wrap(const std::string& text, size_t width) {
    std::string out, line, word;
    std::stringstream lines(text);
    std::string paragraph;
    bool firstParagraph = true;
    while (std::getline(lines, paragraph)) {
        if (!firstParagraph)
            out += "\n";
        firstParagraph = false;
        std::stringstream words(paragraph);
        line.clear();
        while (words >> word) {
            if (!line.empty() && line.size() + 1 + word.size() > width) {
                out += line + "\n";
                line.clear();
            }
            line += (line.empty() ? "" : " ") + word;
        }
        out += line;
    }
    if (!text.empty() && text.back() == '\n')
        out += "\n";
    return out;
}

/** CLI11's formatter, with descriptions and footers wrapped to the help's width. */
class WrappingFormatter : public CLI::Formatter {
public:
    static constexpr size_t kWidth = 100;
    std::string make_option_desc(const CLI::Option* option) const override {
        return wrap(option->get_description(), descriptionWidth());
    }
    std::string make_subcommand(const CLI::App* sub) const override {
        std::stringstream out;
        CLI::detail::format_help(out, sub->get_display_name(true), wrap(sub->get_description(), descriptionWidth()),
                                 get_column_width());
        return out.str();
    }
    std::string make_description(const CLI::App* app) const override {
        return wrap(CLI::Formatter::make_description(app), kWidth);
    }
    std::string make_footer(const CLI::App* app) const override { return wrap(CLI::Formatter::make_footer(app), kWidth); }

private:
    size_t descriptionWidth() const { return kWidth - std::min<size_t>(get_column_width(), kWidth - 40); }
};

}  // namespace

CLI::Validator integerValue() {
    // Read in base 10 (CLI11's own conversion reads "010" as octal), 64-bit with overflow refused
    // (the shared parseInteger), and pass the number on in canonical form.
    return CLI::Validator(
        [](std::string& value) {
            try {
                value = std::to_string(parseInteger("value", value, std::numeric_limits<int64_t>::min(),
                                                    std::numeric_limits<int64_t>::max()));
                return std::string();
            } catch (const std::exception&) {
                return "expects an integer, got '" + value + "'";
            }
        },
        "");
}

CLI::Validator numberValue() {
    return CLI::Validator(
        [](std::string& value) {
            try {
                parseNumber("value", value);  // finite: nan and inf are refused here
                return std::string();
            } catch (const std::exception&) {
                return "expects a finite number, got '" + value + "'";
            }
        },
        "");
}

CLI::Validator positive() {
    return checkWith("POSITIVE", "must be positive", [](double v) { requirePositive("value", v); });
}

CLI::Validator nonNegative() {
    return checkWith("NONNEGATIVE", "must be >= 0", [](double v) { requireNonNegative("value", v); });
}

CLI::Validator atLeast(double min) {
    std::ostringstream text;
    text << min;
    return checkWith(">=" + text.str(), "must be >= " + text.str(),
                     [min](double v) { requireInRange("value", v, min, std::numeric_limits<double>::max()); });
}

CLI::Validator oneOf(const std::vector<std::string>& values) {
    return rephrase(CLI::IsMember(values), "{" + join(values, ",") + "}", "must be one of " + join(values, ", "));
}

CLI::Validator builtinSystem() {
    return CLI::Validator(
        [](std::string& value) {
            const Catalog& catalog = builtinCatalog();  // throws (exit 1) if the catalog is missing or malformed
            return catalog.find(value) != nullptr
                       ? std::string()
                       : "unknown system '" + value + "' (expected " + catalog.describeNames() + ")";
        },
        "");
}

std::string systemNamesForHelp(bool (*keep)(const BuiltinSystem&)) {
    try {
        return builtinCatalog().describeNames(keep);
    } catch (const std::exception&) {
        return "those of " + catalogPath();  // the error itself comes when --system is used
    }
}

std::string perSystemForHelp(const std::function<std::optional<std::string>(const BuiltinSystem&)>& value) {
    try {
        const Catalog& catalog = builtinCatalog();
        std::vector<std::string> parts;
        for (const std::string& name : catalog.names())
            if (std::optional<std::string> v = value(*catalog.find(name)))
                parts.push_back(name + " " + *v);
        return join(parts, ", ");
    } catch (const std::exception&) {
        return "see " + catalogPath();
    }
}

void configureApp(CLI::App& app) {
    // As the hand-written parser did: a repeated option takes its last value.
    app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    auto formatter = std::make_shared<WrappingFormatter>();
    formatter->column_width(40);
    formatter->label("REQUIRED", "(required)");
    app.formatter(formatter);
}

std::string resolveDataDir(const std::string& dataDir, const std::string& subfolder) {
    std::string dir = dataDir;
    if (dir.empty()) {
        const char* env = std::getenv("OPENMMBG_DATA_DIR");
        if (!env)
            throw UsageError("give --data-dir or set OPENMMBG_DATA_DIR (the folder holding " + subfolder + "/)");
        dir = env;
    }
    std::filesystem::path path = std::filesystem::path(dir) / subfolder;
    if (!std::filesystem::is_directory(path))
        throw std::runtime_error("data folder '" + path.string() + "' does not exist");
    return path.string();
}

torch::Tensor toTensor(const Array& a) {
    return torch::from_blob(const_cast<double*>(a.values.data()), a.shape, torch::kFloat64).clone();
}

std::shared_ptr<Target> makeCatalogTarget(const BuiltinSystem& system) {
    std::shared_ptr<Target> target = makeBuiltinTarget(system.name);
    if (target->numParticles() != system.numParticles || target->dim() != system.dim)
        throw std::runtime_error("the catalog " + builtinCatalog().path() + " describes " + system.name + " with " +
                                 std::to_string(system.numParticles) + " particles in " + std::to_string(system.dim) +
                                 "-D but its target has " + std::to_string(target->numParticles()) + " in " +
                                 std::to_string(target->dim()) + "-D");
    return target;
}

torch::Tensor loadSplit(const std::string& dir, const std::string& file, const BuiltinSystem& system, int64_t begin,
                        int64_t end) {
    const std::string path = dir + "/" + file;
    Array raw = readNpy(path);
    if (end < 0)
        end = raw.rows();
    if (end > raw.rows())
        throw std::runtime_error("'" + path + "' has " + std::to_string(raw.rows()) + " rows, need " + std::to_string(end));
    return toTensor(asConfigurations(sliceRows(raw, begin, end), system.numParticles, system.dim, true, path));
}

std::vector<int64_t> parseParticles(const std::string& text) {
    std::vector<int64_t> out = parseParticleItems(text);
    try {
        requireDistinct("--particles", out);
    } catch (const std::invalid_argument& e) {
        throw UsageError(std::string(e.what()) + " (each particle may be selected once)");
    }
    return out;
}

std::vector<int64_t> parseParticleItems(const std::string& text) {
    std::vector<int64_t> out;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
        try {
            const size_t dash = item.find('-', 1);
            if (dash == std::string::npos) {
                out.push_back(parseInteger("--particles", item, 0, Limits::kMaxParticles - 1));
            } else {
                const int64_t a = parseInteger("--particles", item.substr(0, dash), 0, Limits::kMaxParticles - 1),
                              b = parseInteger("--particles", item.substr(dash + 1), 0, Limits::kMaxParticles - 1);
                if (b < a)
                    throw std::invalid_argument(item);
                for (int64_t i = a; i <= b; i++)
                    out.push_back(i);
            }
        } catch (const std::exception&) {
            throw UsageError("--particles: cannot read '" + item + "' (expected a list like 0,1,4-9 of indices in [0, " +
                             std::to_string(Limits::kMaxParticles) + "))");
        }
    }
    return out;
}

CLI::Validator particleList() {
    return CLI::Validator(
        [](std::string& value) {
            try {
                parseParticles(value);
            } catch (const UsageError& e) {
                // CLI11 prefixes the option's name.
                std::string message = e.what();
                return message.substr(message.find(": ") + 2);
            }
            return std::string();
        },
        "");
}

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
        else if (raw.shape.size() == 2)
            throw std::runtime_error("'" + path + "': an array [n, N*D] needs a number of columns divisible by --dim " +
                                     std::to_string(dim) + ", got " + std::to_string(raw.shape[1]) + " columns");
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

void mergeConfigOption(const CLI::Option* option, const std::string& text, json& config) {
    if (!given(option))
        return;
    json extra;
    try {
        extra = json::parse(text);
    } catch (const json::exception&) {
        throw UsageError("--config is not valid JSON");
    }
    if (!extra.is_object())
        throw UsageError("--config must be a JSON object");
    config.update(extra);
}

MetricsFile::MetricsFile(const std::string& path) : path_(path) {
    if (path.empty())
        return;
    createParentDirectories(path);
    checkWritableFile(path);  // refuses a device, FIFO or directory before fopen could block on it
    file_ = std::fopen(path.c_str(), "w");
    if (!file_)
        throw FileAccessError("cannot open '" + path + "' for writing: " + std::strerror(errno));
}

MetricsFile::~MetricsFile() {
    if (file_)
        std::fclose(file_);
}

void MetricsFile::writeLine(const std::string& line) {
    if (!file_)
        return;
    if (std::fprintf(file_, "%s\n", line.c_str()) < 0 || std::fflush(file_) != 0)
        throw FileAccessError("cannot write the metrics file '" + path_ + "': " + std::strerror(errno));
}

void MetricsFile::close() {
    if (!file_)
        return;
    std::FILE* f = file_;
    file_ = nullptr;
    if (std::fclose(f) != 0)
        throw FileAccessError("cannot write the metrics file '" + path_ + "': " + std::strerror(errno));
}

void checkOutput(const std::string& path, uint64_t expectedBytes) {
    if (!path.empty())
        createParentDirectories(path);
    checkWritableFile(path, expectedBytes);
}

uint64_t modelBytes(Model& model) {
    uint64_t bytes = 0;
    for (const auto& [name, tensor] : model.namedTensors())
        bytes += uint64_t(tensor.numel()) * uint64_t(tensor.element_size());
    return bytes;
}

void createParentDirectories(const std::string& path) {
    const std::filesystem::path p(path);
    if (p.has_parent_path())
        std::filesystem::create_directories(p.parent_path());
}

void loadPlugins(const char* argv0) {
    loadOpenMMPlugins();
    const char* ours = std::getenv("OPENMMBG_PLUGIN_DIR");
    std::filesystem::path dir = ours != nullptr ? std::filesystem::path(ours)
                                                : std::filesystem::absolute(argv0).parent_path() / "plugins";
    if (std::filesystem::is_directory(dir))
        OpenMM::Platform::loadPluginsFromDirectory(dir.string());
}

std::string describeModel(const Model& model) {
    const json config = json::parse(model.configJson());
    return model.family() == AugmentedCouplingFlowModel::familyName()
               ? config.at("projection").get<std::string>() + "-proj"
               : "family " + model.family();
}

}  // namespace OpenMMBG::Cli
