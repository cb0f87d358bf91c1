#include "openmmbg/ecnf/EquivariantCnfConfig.h"

#include "../JsonObjectReader.h"
#include "openmmbg/Validation.h"

#include <nlohmann/json.hpp>

#include <stdexcept>

namespace OpenMMBG {

namespace {

void require(bool condition, const std::string& message) {
    if (!condition)
        throw std::invalid_argument("flow config: " + message);
}

}  // namespace

EquivariantCnfConfig EquivariantCnfConfig::fromJson(const std::string& text) {
    const JsonObjectReader j(text,
                             {"family", "num_particles", "dim", "num_layers", "hidden_units", "atom_types", "solver",
                              "rtol", "atol", "rk4_steps", "max_steps", "divergence", "dtype", "init_seed",
                              "length_unit", "temperature"},
                             "flow config");
    for (const char* key : {"num_particles", "dim"})
        require(j.has(key), std::string("missing required key '") + key + "'");
    EquivariantCnfConfig c;
    j.read("family", c.family);
    j.read("num_particles", c.numParticles);
    j.read("dim", c.dim);
    j.read("num_layers", c.numLayers);
    j.read("hidden_units", c.hiddenUnits);
    j.read("atom_types", c.atomTypes);
    j.read("solver", c.solver);
    j.read("rtol", c.rtol);
    j.read("atol", c.atol);
    j.read("rk4_steps", c.rk4Steps);
    j.read("max_steps", c.maxSteps);
    j.read("divergence", c.divergence);
    j.read("dtype", c.dtype);
    j.read("init_seed", c.initSeed);
    j.read("length_unit", c.lengthUnit);
    j.read("temperature", c.temperature);
    c.validate();
    return c;
}

void EquivariantCnfConfig::validate() const {
    require(family == "ecnf", "family must be \"ecnf\" for an equivariant CNF (got \"" + family + "\")");
    require(numParticles >= 2 && numParticles <= 100000,
            "num_particles must be in [2, 100000] (got " + std::to_string(numParticles) + ")");
    require(dim == 2 || dim == 3, "dim must be 2 or 3 (got " + std::to_string(dim) + ")");
    require(numLayers >= 1 && numLayers <= 100, "num_layers must be in [1, 100] (got " + std::to_string(numLayers) + ")");
    require(hiddenUnits >= 1 && hiddenUnits <= 4096,
            "hidden_units must be in [1, 4096] (got " + std::to_string(hiddenUnits) + ")");
    require(atomTypes.empty() || int64_t(atomTypes.size()) == numParticles,
            "key 'atom_types' has " + std::to_string(atomTypes.size()) + " entries but num_particles is " +
                std::to_string(numParticles));
    for (int64_t t : atomTypes)
        require(t >= 0 && t < 1000, "key 'atom_types': types must be in [0, 1000) (got " + std::to_string(t) + ")");
    const double h = hiddenUnits;
    requireModelSize("flow config", double(numLayers) * 6 * (h + 1) * (h + 1));
    require(solver == "dopri5" || solver == "rk4", "solver must be \"dopri5\" or \"rk4\" (got \"" + solver + "\")");
    require(rtol > 0 && rtol < 1, "rtol must be in (0, 1) (got " + std::to_string(rtol) + ")");
    require(atol > 0 && atol < 1, "atol must be in (0, 1) (got " + std::to_string(atol) + ")");
    require(rk4Steps >= 1 && rk4Steps <= 100000, "rk4_steps must be in [1, 100000] (got " + std::to_string(rk4Steps) + ")");
    require(maxSteps >= 1 && maxSteps <= 1000000, "max_steps must be in [1, 1000000] (got " + std::to_string(maxSteps) + ")");
    require(divergence == "exact" || divergence == "hutchinson",
            "divergence must be \"exact\" or \"hutchinson\" (got \"" + divergence + "\")");
    require(dtype == "float32" || dtype == "float64", "dtype must be \"float32\" or \"float64\" (got \"" + dtype + "\")");
    require(lengthUnit == "nm" || lengthUnit == "angstrom",
            "length_unit must be \"nm\" or \"angstrom\" (got \"" + lengthUnit + "\")");
    require(temperature > 0 && temperature < 1e6, "temperature must be in (0, 1e6) K (got " + std::to_string(temperature) + ")");
}

std::string EquivariantCnfConfig::toJson() const {
    nlohmann::json j = {
        {"family", family},          {"num_particles", numParticles}, {"dim", dim},
        {"num_layers", numLayers},   {"hidden_units", hiddenUnits},   {"atom_types", atomTypes},
        {"solver", solver},          {"rtol", rtol},                  {"atol", atol},
        {"rk4_steps", rk4Steps},     {"max_steps", maxSteps},         {"divergence", divergence},
        {"dtype", dtype},            {"init_seed", initSeed},         {"length_unit", lengthUnit},
        {"temperature", temperature},
    };
    return j.dump();
}

}  // namespace OpenMMBG
