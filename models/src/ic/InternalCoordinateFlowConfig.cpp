#include "openmmbg/ic/InternalCoordinateFlowConfig.h"

#include "openmmbg/ic/InternalCoordinates.h"

#include "../JsonObjectReader.h"
#include "openmmbg/Validation.h"

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

void readZMatrix(const JsonObjectReader& j, std::vector<std::array<int64_t, 4>>& rows) {
    const json& list = j.at("zmatrix");
    const std::string shapeError = "key 'zmatrix' must be a list of rows [atom, bond, angle, dihedral] of integers, "
                                   "-1 where a row has no such reference (got ";
    require(list.is_array(), shapeError + list.dump() + ")");
    for (const json& row : list) {
        require(row.is_array() && row.size() == 4, shapeError + "row " + row.dump() + ")");
        std::array<int64_t, 4> r;
        for (size_t i = 0; i < 4; i++) {
            require((row[i].is_number_integer() && !row[i].is_number_unsigned()) ||
                        (row[i].is_number_unsigned() && row[i].get<uint64_t>() < uint64_t(Limits::kMaxParticles)),
                    shapeError + "row " + row.dump() + ")");
            r[i] = row[i].get<int64_t>();
        }
        rows.push_back(r);
    }
}

}  // namespace

InternalCoordinateFlowConfig InternalCoordinateFlowConfig::fromJson(const std::string& text) {
    const JsonObjectReader j(text,
                             {"family", "num_particles", "zmatrix", "dim", "num_layers", "hidden_units", "num_blocks",
                              "num_bins", "tail_bound", "dtype", "init_seed", "length_unit", "temperature"},
                             "flow config");
    for (const char* key : {"num_particles", "zmatrix"})
        require(j.has(key), std::string("missing required key '") + key + "'");
    InternalCoordinateFlowConfig c;
    j.read("family", c.family);
    j.read("num_particles", c.numParticles);
    readZMatrix(j, c.zmatrix);
    j.read("dim", c.dim);
    j.read("num_layers", c.numLayers);
    j.read("hidden_units", c.hiddenUnits);
    j.read("num_blocks", c.numBlocks);
    j.read("num_bins", c.numBins);
    j.read("tail_bound", c.tailBound);
    j.read("dtype", c.dtype);
    j.read("init_seed", c.initSeed);
    j.read("length_unit", c.lengthUnit);
    j.read("temperature", c.temperature);
    c.validate();
    return c;
}

void InternalCoordinateFlowConfig::validate() const {
    require(family == "ic", "family must be \"ic\" for an internal-coordinate flow (got \"" + family + "\")");
    require(numParticles >= 3 && numParticles <= Limits::kMaxParticles,
            "num_particles must be in [3, " + std::to_string(Limits::kMaxParticles) + "] (got " +
                std::to_string(numParticles) + ")");
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
    require(numLayers <= Limits::kMaxLayers && numBlocks <= Limits::kMaxLayers && numBins <= 1000 &&
                hiddenUnits <= Limits::kMaxWidth,
            "num_layers and num_blocks must be at most " + std::to_string(Limits::kMaxLayers) +
                ", num_bins at most 1000, hidden_units at most " + std::to_string(Limits::kMaxWidth));
    // An upper estimate of the parameter count, checked before any parameter is allocated.
    const double h = hiddenUnits, features = 3.0 * numParticles;
    requireModelSize("flow config", double(numLayers) * ((numBlocks + 2) * (h + 1) * (h + 1) +
                                                         2 * features * (h + 1) * (3 * numBins + 2)));
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
