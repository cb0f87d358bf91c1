#include "openmmbg/ic/InternalCoordinateFlowConfig.h"

#include "openmmbg/ic/InternalCoordinates.h"

#include <nlohmann/json.hpp>

#include <set>
#include <stdexcept>
#include <type_traits>

namespace OpenMMBG {

using nlohmann::json;

namespace {

[[noreturn]] void fail(const std::string& message) { throw std::invalid_argument("flow config: " + message); }

void require(bool condition, const std::string& message) {
    if (!condition)
        fail(message);
}

// Sets `value` from `key` when present and not null; the JSON type must match the field's.
template <class T>
void read(const json& j, const char* key, T& value, std::set<std::string>& seen) {
    seen.insert(key);
    auto it = j.find(key);
    if (it == j.end() || it->is_null())
        return;
    const char* expected = std::is_integral_v<T> ? "an integer" : std::is_floating_point_v<T> ? "a number" : "a string";
    const bool ok = std::is_integral_v<T> ? it->is_number_integer()
                    : std::is_floating_point_v<T> ? it->is_number()
                    : it->is_string();
    require(ok, std::string("key '") + key + "' must be " + expected + " (got " + it->dump() + ")");
    value = it->get<T>();
}

void readZMatrix(const json& j, std::vector<std::array<int64_t, 4>>& rows, std::set<std::string>& seen) {
    seen.insert("zmatrix");
    const json& list = j.at("zmatrix");
    const std::string shapeError = "key 'zmatrix' must be a list of rows [atom, bond, angle, dihedral] of integers, "
                                   "-1 where a row has no such reference (got ";
    require(list.is_array(), shapeError + list.dump() + ")");
    for (const json& row : list) {
        require(row.is_array() && row.size() == 4, shapeError + "row " + row.dump() + ")");
        std::array<int64_t, 4> r;
        for (size_t i = 0; i < 4; i++) {
            require(row[i].is_number_integer(), shapeError + "row " + row.dump() + ")");
            r[i] = row[i].get<int64_t>();
        }
        rows.push_back(r);
    }
}

}  // namespace

InternalCoordinateFlowConfig InternalCoordinateFlowConfig::fromJson(const std::string& text) {
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {
        fail(std::string("not valid JSON: ") + e.what());
    }
    require(j.is_object(), "expected a JSON object");
    for (const char* key : {"num_particles", "zmatrix"})
        require(j.contains(key) && !j.at(key).is_null(), std::string("missing required key '") + key + "'");
    InternalCoordinateFlowConfig c;
    std::set<std::string> seen;
    read(j, "family", c.family, seen);
    read(j, "num_particles", c.numParticles, seen);
    readZMatrix(j, c.zmatrix, seen);
    read(j, "dim", c.dim, seen);
    read(j, "num_layers", c.numLayers, seen);
    read(j, "hidden_units", c.hiddenUnits, seen);
    read(j, "num_blocks", c.numBlocks, seen);
    read(j, "num_bins", c.numBins, seen);
    read(j, "tail_bound", c.tailBound, seen);
    read(j, "dtype", c.dtype, seen);
    read(j, "init_seed", c.initSeed, seen);
    read(j, "length_unit", c.lengthUnit, seen);
    read(j, "temperature", c.temperature, seen);
    for (auto it = j.begin(); it != j.end(); ++it)
        require(seen.count(it.key()) == 1, "unknown key '" + it.key() + "'");
    c.validate();
    return c;
}

void InternalCoordinateFlowConfig::validate() const {
    require(family == "ic", "family must be \"ic\" for an internal-coordinate flow (got \"" + family + "\")");
    require(numParticles >= 3, "num_particles must be at least 3 (got " + std::to_string(numParticles) + ")");
    require(dim == 3, "dim must be 3 for internal coordinates (got " + std::to_string(dim) + ")");
    require(int64_t(zmatrix.size()) == numParticles, "key 'zmatrix' has " + std::to_string(zmatrix.size()) +
                                                         " rows but num_particles is " + std::to_string(numParticles));
    std::vector<ZMatrixRow> rows;
    for (const auto& r : zmatrix)
        rows.push_back({r[0], r[1], r[2], r[3]});
    try {
        ZMatrix checked(std::move(rows));
    } catch (const std::invalid_argument& e) {
        fail(std::string("key 'zmatrix': ") + e.what());
    }
    require(numLayers >= 1, "num_layers must be at least 1 (got " + std::to_string(numLayers) + ")");
    require(hiddenUnits >= 1, "hidden_units must be at least 1 (got " + std::to_string(hiddenUnits) + ")");
    require(numBlocks >= 1, "num_blocks must be at least 1 (got " + std::to_string(numBlocks) + ")");
    require(numBins >= 1, "num_bins must be at least 1 (got " + std::to_string(numBins) + ")");
    require(tailBound > 0, "tail_bound must be positive (got " + std::to_string(tailBound) + ")");
    require(dtype == "float32" || dtype == "float64", "dtype must be \"float32\" or \"float64\" (got \"" + dtype + "\")");
    require(lengthUnit == "nm" || lengthUnit == "angstrom",
            "length_unit must be \"nm\" or \"angstrom\" (got \"" + lengthUnit + "\")");
    require(temperature > 0, "temperature must be positive (got " + std::to_string(temperature) + ")");
}

std::string InternalCoordinateFlowConfig::toJson() const {
    json rows = json::array();
    for (const auto& r : zmatrix)
        rows.push_back({r[0], r[1], r[2], r[3]});
    json j = {
        {"family", family},
        {"num_particles", numParticles},
        {"dim", dim},
        {"zmatrix", rows},
        {"num_layers", numLayers},
        {"hidden_units", hiddenUnits},
        {"num_blocks", numBlocks},
        {"num_bins", numBins},
        {"tail_bound", tailBound},
        {"dtype", dtype},
        {"init_seed", initSeed},
        {"length_unit", lengthUnit},
        {"temperature", temperature},
    };
    return j.dump();
}

}  // namespace OpenMMBG
