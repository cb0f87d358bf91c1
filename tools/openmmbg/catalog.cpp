#include "catalog.h"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <stdexcept>

#ifndef OPENMMBG_CATALOG
#error "OPENMMBG_CATALOG (the path of catalog/builtin-systems.json) must be defined"
#endif

namespace OpenMMBG::Cli {

using nlohmann::json;

namespace {

/** Reads typed values out of the catalog's JSON, naming the offending key in its errors. */
class Reader {
public:
    explicit Reader(std::string path) : path_(std::move(path)) {}

    [[noreturn]] void fail(const std::string& key, const std::string& what) const {
        throw std::runtime_error("catalog of built-in systems '" + path_ + "': " + key + " " + what);
    }
    const json& member(const json& object, const std::string& key, const std::string& where) const {
        if (!object.contains(key))
            fail(where + "." + key, "is missing");
        return object.at(key);
    }
    const json& object(const json& parent, const std::string& key, const std::string& where) const {
        const json& value = member(parent, key, where);
        if (!value.is_object())
            fail(where + "." + key, "must be an object");
        return value;
    }
    /** An object or null (std::nullopt-like: returns nullptr for null). */
    const json* optionalObject(const json& parent, const std::string& key, const std::string& where) const {
        const json& value = member(parent, key, where);
        if (value.is_null())
            return nullptr;
        if (!value.is_object())
            fail(where + "." + key, "must be an object or null");
        return &value;
    }
    std::string string(const json& parent, const std::string& key, const std::string& where) const {
        const json& value = member(parent, key, where);
        if (!value.is_string() || value.get<std::string>().empty())
            fail(where + "." + key, "must be a non-empty string");
        return value.get<std::string>();
    }
    /** An integer >= min; null allowed (returns nullopt) when nullable. */
    std::optional<int64_t> integer(const json& parent, const std::string& key, const std::string& where, int64_t min,
                                   bool nullable = false) const {
        const json& value = member(parent, key, where);
        if (nullable && value.is_null())
            return std::nullopt;
        if (!value.is_number_integer() || value.get<int64_t>() < min)
            fail(where + "." + key, std::string("must be an integer >= ") + std::to_string(min) +
                                        (nullable ? " or null" : "") + " (got " + value.dump() + ")");
        return value.get<int64_t>();
    }
    DataSplit split(const json& data, const std::string& key, const std::string& where, bool withEnd) const {
        const json& s = object(data, key, where);
        const std::string here = where + "." + key;
        DataSplit out;
        out.file = string(s, "file", here);
        out.begin = *integer(s, "begin", here, 0);
        if (withEnd) {
            out.end = integer(s, "end", here, out.begin + 1, true).value_or(-1);
        }
        return out;
    }

private:
    std::string path_;
};

}  // namespace

Catalog::Catalog(const std::string& path) : path_(path) {
    std::ifstream in(path);
    if (!in)
        throw std::runtime_error("cannot read the catalog of built-in systems '" + path +
                                 "' (set OPENMMBG_CATALOG to the path of catalog/builtin-systems.json)");
    json root;
    try {
        root = json::parse(in);
    } catch (const json::exception& e) {
        throw std::runtime_error("catalog of built-in systems '" + path + "' is not valid JSON: " + e.what());
    }
    const Reader r(path);
    if (!root.is_object())
        r.fail("the top level", "must be an object");
    if (r.integer(root, "format_version", "catalog", 1) != 1)
        r.fail("catalog.format_version", "is not 1 (this build reads version 1)");
    const json& systems = r.object(root, "systems", "catalog");
    if (systems.empty())
        r.fail("catalog.systems", "is empty");
    for (const auto& [name, s] : systems.items()) {
        const std::string where = "systems." + name;
        if (!s.is_object())
            r.fail(where, "must be an object");
        BuiltinSystem b;
        b.name = name;
        b.description = r.string(s, "description", where);
        b.numParticles = int(*r.integer(s, "num_particles", where, 1));
        b.dim = int(*r.integer(s, "dim", where, 1));
        if (const json* data = r.optionalObject(s, "data", where)) {
            const std::string here = where + ".data";
            b.data = BuiltinSystem::Data{r.string(*data, "folder", here), r.split(*data, "train", here, false),
                                         r.split(*data, "validation", here, true), r.split(*data, "test", here, true)};
        }
        if (const json* ml = r.optionalObject(s, "maximum_likelihood", where)) {
            const std::string here = where + ".maximum_likelihood";
            b.maximumLikelihood = BuiltinSystem::MaximumLikelihood{int(*r.integer(*ml, "epochs", here, 1)),
                                                                   int(*r.integer(*ml, "epochs_projection_none", here, 1)),
                                                                   *r.integer(*ml, "num_train", here, 1)};
        }
        if (b.data.has_value() != b.maximumLikelihood.has_value())
            r.fail(where, "must have both or neither of data and maximum_likelihood");
        const json& energy = r.object(s, "energy_training", where);
        const std::string here = where + ".energy_training";
        if (auto iterations = r.integer(energy, "iterations", here, 1, true))
            b.energyTraining.iterations = int(*iterations);
        b.energyTraining.batchSize = int(*r.integer(energy, "batch_size", here, 1));
        b.energyTraining.numIntermediate = int(*r.integer(energy, "num_intermediate", here, 0));
        systems_.emplace(name, std::move(b));
    }
}

const BuiltinSystem* Catalog::find(const std::string& name) const {
    auto it = systems_.find(name);
    return it == systems_.end() ? nullptr : &it->second;
}

std::vector<std::string> Catalog::names() const {
    std::vector<std::string> out;
    for (const auto& entry : systems_)
        out.push_back(entry.first);
    return out;
}

std::string Catalog::describeNames(bool (*keep)(const BuiltinSystem&)) const {
    std::vector<std::string> kept;
    for (const auto& [name, system] : systems_)
        if (keep == nullptr || keep(system))
            kept.push_back(name);
    std::string out;
    for (size_t i = 0; i < kept.size(); i++)
        out += (i == 0 ? "" : i + 1 == kept.size() ? " or " : ", ") + kept[i];
    return out;
}

std::string catalogPath() {
    const char* env = std::getenv("OPENMMBG_CATALOG");
    return env != nullptr && *env != '\0' ? std::string(env) : std::string(OPENMMBG_CATALOG);
}

const Catalog& builtinCatalog() {
    static std::unique_ptr<Catalog> catalog;
    if (!catalog)
        catalog = std::make_unique<Catalog>(catalogPath());
    return *catalog;
}

}  // namespace OpenMMBG::Cli
