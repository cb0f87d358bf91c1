#include "openmmbg/eacf/FlowConfig.h"

#include <nlohmann/json.hpp>

#include <set>
#include <type_traits>
#include <stdexcept>

namespace OpenMMBG {

using nlohmann::json;

namespace {

template <class T>
void read(const json& j, const char* key, T& value, std::set<std::string>& seen) {
    seen.insert(key);
    auto it = j.find(key);
    if (it == j.end() || it->is_null())
        return;
    try {
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
            if (!it->is_number_integer())
                throw std::invalid_argument(std::string("flow config: key '") + key + "' must be an integer (got " +
                                            it->dump() + ")");
        } else if constexpr (std::is_same_v<T, bool>) {
            if (!it->is_boolean())
                throw std::invalid_argument(std::string("flow config: key '") + key + "' must be true or false (got " +
                                            it->dump() + ")");
        } else if constexpr (std::is_same_v<T, std::vector<int>> || std::is_same_v<T, std::vector<int64_t>>) {
            if (!it->is_array())
                throw std::invalid_argument(std::string("flow config: key '") + key + "' must be a list of integers");
            for (const auto& e : *it)
                if (!e.is_number_integer())
                    throw std::invalid_argument(std::string("flow config: key '") + key +
                                                "' must be a list of integers (got " + it->dump() + ")");
        }
        value = it->get<T>();
    } catch (const json::exception&) {
        throw std::invalid_argument(std::string("flow config: key '") + key + "' has the wrong type (" +
                                    it->dump() + ")");
    }
}

void require(bool condition, const std::string& message) {
    if (!condition)
        throw std::invalid_argument("flow config: " + message);
}

}  // namespace

FlowConfig FlowConfig::fromJson(const std::string& text) {
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {
        throw std::invalid_argument(std::string("flow config: not valid JSON: ") + e.what());
    }
    require(j.is_object(), "expected a JSON object");
    for (const char* key : {"num_particles", "dim", "projection"})
        require(j.contains(key), std::string("missing required key '") + key + "'");
    FlowConfig c;
    std::set<std::string> seen;
    read(j, "family", c.family, seen);
    read(j, "num_particles", c.numParticles, seen);
    read(j, "dim", c.dim, seen);
    read(j, "projection", c.projection, seen);
    read(j, "num_aug", c.numAug, seen);
    read(j, "num_layers", c.numLayers, seen);
    read(j, "dtype", c.dtype, seen);
    read(j, "aug_scale", c.augScale, seen);
    read(j, "identity_init", c.identityInit, seen);
    read(j, "random_init_scale", c.randomInitScale, seen);
    read(j, "init_seed", c.initSeed, seen);
    read(j, "length_unit", c.lengthUnit, seen);
    read(j, "temperature", c.temperature, seen);
    read(j, "num_bins", c.numBins, seen);
    read(j, "max_radius", c.maxRadius, seen);
    read(j, "cartesian_transform", c.cartesianTransform, seen);
    read(j, "cartesian_spline_bound", c.cartesianSplineBound, seen);
    read(j, "egnn_blocks", c.egnnBlocks, seen);
    read(j, "egnn_mlp_units", c.egnnMlpUnits, seen);
    read(j, "egnn_hidden_features", c.egnnHiddenFeatures, seen);
    read(j, "egnn_output_features", c.egnnOutputFeatures, seen);
    read(j, "egnn_normalization_constant", c.egnnNormalizationConstant, seen);
    read(j, "head_mlp_units", c.headMlpUnits, seen);
    read(j, "transformer_layers", c.transformerLayers, seen);
    read(j, "transformer_heads", c.transformerHeads, seen);
    read(j, "transformer_head_features", c.transformerHeadFeatures, seen);
    read(j, "transformer_mlp_units", c.transformerMlpUnits, seen);
    read(j, "transformer_output_features", c.transformerOutputFeatures, seen);
    read(j, "atom_types", c.atomTypes, seen);
    read(j, "aux_loss_weight", c.auxLossWeight, seen);
    for (auto it = j.begin(); it != j.end(); ++it)
        require(seen.count(it.key()) == 1, "unknown key '" + it.key() + "'");
    c.validate();
    return c;
}

void FlowConfig::validate() {
    require(family == "eacf", "family must be \"eacf\" for an augmented coupling flow (got \"" + family + "\")");
    require(numParticles >= 2, "num_particles must be at least 2 (got " + std::to_string(numParticles) + ")");
    require(dim == 2 || dim == 3, "dim must be 2 or 3 (got " + std::to_string(dim) + ")");
    require(projection == "spherical" || projection == "cartesian" || projection == "vector" || projection == "none",
            "projection must be \"spherical\", \"cartesian\", \"vector\" or \"none\" (got \"" + projection + "\")");
    require(numAug >= 1 && numAug % 2 == 1, "num_aug must be a positive odd number (got " + std::to_string(numAug) + ")");
    require(numLayers >= 1, "num_layers must be at least 1");
    require(dtype == "float32" || dtype == "float64", "dtype must be \"float32\" or \"float64\" (got \"" + dtype + "\")");
    require(augScale > 0, "aug_scale must be positive");
    require(randomInitScale > 0, "random_init_scale must be positive");
    require(temperature > 0, "temperature must be positive");
    require(numBins >= 1, "num_bins must be at least 1");
    require(maxRadius > 0, "max_radius must be positive");
    require(cartesianTransform == "affine" || cartesianTransform == "spline",
            "cartesian_transform must be \"affine\" or \"spline\"");
    require(cartesianSplineBound > 0, "cartesian_spline_bound must be positive");
    require(egnnBlocks >= 1 && !egnnMlpUnits.empty() && egnnHiddenFeatures >= 1 && egnnOutputFeatures >= 1,
            "EGNN sizes must be positive");
    require(!headMlpUnits.empty(), "head_mlp_units must not be empty");
    // Stable MLPs are residual after their first layer, so every width in a list must be equal.
    for (auto [name, units] : {std::pair<const char*, const std::vector<int>*>{"egnn_mlp_units", &egnnMlpUnits},
                               {"head_mlp_units", &headMlpUnits},
                               {"transformer_mlp_units", &transformerMlpUnits}}) {
        for (int u : *units)
            require(u == units->front() && u > 0,
                    std::string(name) + " must hold equal positive widths (residual blocks)");
    }
    require(lengthUnit == "nm" || lengthUnit == "angstrom",
            "length_unit must be \"nm\" or \"angstrom\" (got \"" + lengthUnit + "\")");
    require(transformerLayers >= 1 && transformerHeads >= 1 && transformerHeadFeatures >= 1 &&
                !transformerMlpUnits.empty() && transformerOutputFeatures >= 1,
            "transformer sizes must be positive");
    if (atomTypes.empty())
        atomTypes.assign(numParticles, 0);
    require(int(atomTypes.size()) == numParticles, "atom_types has " + std::to_string(atomTypes.size()) +
                                                       " entries but num_particles is " + std::to_string(numParticles));
    for (int64_t t : atomTypes)
        require(t >= 0, "atom_types entries must be non-negative");
    if (auxLossWeight < 0)
        auxLossWeight = (dim == 2 ? 0.0 : 10.0);
}

std::string FlowConfig::toJson() const {
    json j = {
        {"family", family},
        {"num_particles", numParticles},
        {"dim", dim},
        {"projection", projection},
        {"num_aug", numAug},
        {"num_layers", numLayers},
        {"dtype", dtype},
        {"aug_scale", augScale},
        {"identity_init", identityInit},
        {"random_init_scale", randomInitScale},
        {"init_seed", initSeed},
        {"length_unit", lengthUnit},
        {"temperature", temperature},
        {"num_bins", numBins},
        {"max_radius", maxRadius},
        {"cartesian_transform", cartesianTransform},
        {"cartesian_spline_bound", cartesianSplineBound},
        {"egnn_blocks", egnnBlocks},
        {"egnn_mlp_units", egnnMlpUnits},
        {"egnn_hidden_features", egnnHiddenFeatures},
        {"egnn_output_features", egnnOutputFeatures},
        {"egnn_normalization_constant", egnnNormalizationConstant},
        {"head_mlp_units", headMlpUnits},
        {"transformer_layers", transformerLayers},
        {"transformer_heads", transformerHeads},
        {"transformer_head_features", transformerHeadFeatures},
        {"transformer_mlp_units", transformerMlpUnits},
        {"transformer_output_features", transformerOutputFeatures},
        {"atom_types", atomTypes},
        {"aux_loss_weight", auxLossWeight},
    };
    return j.dump();
}

}  // namespace OpenMMBG
