#include "openmmbg/eacf/FlowConfig.h"

#include "../JsonObjectReader.h"
#include "openmmbg/Validation.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>
#include <type_traits>
#include <stdexcept>

namespace OpenMMBG {

using nlohmann::json;

namespace {

void require(bool condition, const std::string& message) {
    if (!condition)
        throw std::invalid_argument("flow config: " + message);
}

}  // namespace

FlowConfig FlowConfig::fromJson(const std::string& text) {
    const JsonObjectReader j(text,
                             {"family", "num_particles", "dim", "projection", "num_aug", "num_layers", "dtype", "aug_scale", "identity_init", "random_init_scale", "init_seed", "length_unit", "temperature", "num_bins", "max_radius", "cartesian_transform", "cartesian_spline_bound", "egnn_blocks", "egnn_mlp_units", "egnn_hidden_features", "egnn_output_features", "egnn_normalization_constant", "head_mlp_units", "transformer_layers", "transformer_heads", "transformer_head_features", "transformer_mlp_units", "transformer_output_features", "atom_types", "aux_loss_weight"},
                             "flow config");
    for (const char* key : {"num_particles", "dim", "projection"})
        require(j.has(key), std::string("missing required key '") + key + "'");
    FlowConfig c;
    j.read("family", c.family);
    j.read("num_particles", c.numParticles);
    j.read("dim", c.dim);
    j.read("projection", c.projection);
    j.read("num_aug", c.numAug);
    j.read("num_layers", c.numLayers);
    j.read("dtype", c.dtype);
    j.read("aug_scale", c.augScale);
    j.read("identity_init", c.identityInit);
    j.read("random_init_scale", c.randomInitScale);
    j.read("init_seed", c.initSeed);
    j.read("length_unit", c.lengthUnit);
    j.read("temperature", c.temperature);
    j.read("num_bins", c.numBins);
    j.read("max_radius", c.maxRadius);
    j.read("cartesian_transform", c.cartesianTransform);
    j.read("cartesian_spline_bound", c.cartesianSplineBound);
    j.read("egnn_blocks", c.egnnBlocks);
    j.read("egnn_mlp_units", c.egnnMlpUnits);
    j.read("egnn_hidden_features", c.egnnHiddenFeatures);
    j.read("egnn_output_features", c.egnnOutputFeatures);
    j.read("egnn_normalization_constant", c.egnnNormalizationConstant);
    j.read("head_mlp_units", c.headMlpUnits);
    j.read("transformer_layers", c.transformerLayers);
    j.read("transformer_heads", c.transformerHeads);
    j.read("transformer_head_features", c.transformerHeadFeatures);
    j.read("transformer_mlp_units", c.transformerMlpUnits);
    j.read("transformer_output_features", c.transformerOutputFeatures);
    j.read("atom_types", c.atomTypes);
    j.read("aux_loss_weight", c.auxLossWeight);
    c.validate();
    return c;
}

void FlowConfig::validate() {
    require(family == "eacf", "family must be \"eacf\" for an augmented coupling flow (got \"" + family + "\")");
    require(numParticles >= 2 && numParticles <= Limits::kMaxParticles,
            "num_particles must be in [2, " + std::to_string(Limits::kMaxParticles) + "] (got " +
                std::to_string(numParticles) + ")");
    require(dim == 2 || dim == 3, "dim must be 2 or 3 (got " + std::to_string(dim) + ")");
    require(projection == "spherical" || projection == "cartesian" || projection == "vector" || projection == "none",
            "projection must be \"spherical\", \"cartesian\", \"vector\" or \"none\" (got \"" + projection + "\")");
    require(numAug >= 1 && numAug % 2 == 1 && numAug < 100,
            "num_aug must be a positive odd number below 100 (got " + std::to_string(numAug) + ")");
    require(numLayers >= 1 && numLayers <= Limits::kMaxLayers,
            "num_layers must be in [1, " + std::to_string(Limits::kMaxLayers) + "] (got " + std::to_string(numLayers) + ")");
    require(dtype == "float32" || dtype == "float64", "dtype must be \"float32\" or \"float64\" (got \"" + dtype + "\")");
    require(augScale > 0, "aug_scale must be positive");
    require(randomInitScale > 0, "random_init_scale must be positive");
    require(temperature > 0, "temperature must be positive");
    require(numBins >= 1 && numBins <= 1000, "num_bins must be in [1, 1000] (got " + std::to_string(numBins) + ")");
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
        require(t >= 0 && t < Limits::kMaxParticles, "atom_types entries must be in [0, " +
                                                         std::to_string(Limits::kMaxParticles) + ")");
    for (int size : {egnnBlocks, transformerLayers})
        require(size <= Limits::kMaxLayers, "block and layer counts must be at most " + std::to_string(Limits::kMaxLayers));
    for (int size : {egnnHiddenFeatures, egnnOutputFeatures, transformerHeads, transformerHeadFeatures,
                     transformerOutputFeatures, int(egnnMlpUnits.size()), int(headMlpUnits.size()),
                     int(transformerMlpUnits.size()), egnnMlpUnits.front(), headMlpUnits.front(),
                     transformerMlpUnits.front()})
        require(size <= Limits::kMaxWidth, "network widths must be at most " + std::to_string(Limits::kMaxWidth));
    // An upper estimate of the parameter count (every block's networks at their widest), checked
    // before any parameter is allocated.
    const double w = std::max({double(egnnHiddenFeatures), double(egnnOutputFeatures), double(egnnMlpUnits.front()),
                               double(headMlpUnits.front()), double(transformerMlpUnits.front()),
                               double(transformerHeads) * transformerHeadFeatures, double(transformerOutputFeatures)});
    const double depth = double(egnnBlocks) * (egnnMlpUnits.size() + 4) + headMlpUnits.size() + 4 +
                         double(transformerLayers) * (transformerMlpUnits.size() + 4);
    requireModelSize("flow config", 2.0 * numLayers * numAug * (depth * (w + 1) * (w + 1) + w * (numBins + 8) * 8));
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
