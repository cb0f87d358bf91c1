#pragma once
/**
 * The full configuration of an augmented coupling flow. Every field has the DW4/LJ13 default of
 * the E-ACF reference implementation; docs/flow-config.md documents the JSON keys.
 * This header does not depend on LibTorch.
 */
#include <cstdint>
#include <string>
#include <vector>

namespace OpenMMBG {

struct FlowConfig {
    std::string family = "eacf";  ///< "family": the model family; this configuration is that of "eacf"
    // Required.
    int numParticles = 0;     ///< "num_particles"
    int dim = 0;              ///< "dim": 2 or 3
    std::string projection;   ///< "projection": "spherical", "cartesian", "vector" or "none" (Non-E-ACF)
    // Flow layout.
    int numAug = 1;           ///< "num_aug": number of augmented sets (odd)
    int numLayers = 12;       ///< "num_layers": blocks of (a-coupling, x-coupling)
    std::string dtype = "float32";  ///< "dtype": "float32" or "float64"
    double augScale = 0.1;    ///< "aug_scale": sigma of pi(a|x) and of the base of a (length units)
    bool identityInit = true; ///< "identity_init"
    double randomInitScale = 0.1;  ///< "random_init_scale": std of the head's final layer when identity_init is false
    int64_t initSeed = 0;     ///< "init_seed": seed of the parameter initialisation
    std::string lengthUnit = "nm";  ///< "length_unit"
    double temperature = 120.27;    ///< "temperature" (K) the model describes; 120.27 K gives kT = 1 kJ/mol
    // Inner transforms.
    int numBins = 8;          ///< "num_bins": rational-quadratic spline bins
    double maxRadius = 10.0;  ///< "max_radius": upper end of radial splines (length units)
    std::string cartesianTransform = "affine";  ///< "cartesian_transform": "affine" or "spline"
    double cartesianSplineBound = 10.0;  ///< "cartesian_spline_bound": spline range [-b, b]
    // Conditioners.
    int egnnBlocks = 3;                 ///< "egnn_blocks"
    std::vector<int> egnnMlpUnits = {64, 64};  ///< "egnn_mlp_units"
    int egnnHiddenFeatures = 128;       ///< "egnn_hidden_features"
    int egnnOutputFeatures = 128;       ///< "egnn_output_features"
    double egnnNormalizationConstant = 1.0;  ///< "egnn_normalization_constant"
    std::vector<int> headMlpUnits = {64, 64};  ///< "head_mlp_units"
    int transformerLayers = 3;          ///< "transformer_layers" (Non-E-ACF)
    int transformerHeads = 4;           ///< "transformer_heads"
    int transformerHeadFeatures = 16;   ///< "transformer_head_features"
    std::vector<int> transformerMlpUnits = {64, 64};  ///< "transformer_mlp_units"
    int transformerOutputFeatures = 128;  ///< "transformer_output_features"
    std::vector<int64_t> atomTypes;     ///< "atom_types": per-particle feature index (default all 0)
    // Training.
    double auxLossWeight = -1;  ///< "aux_loss_weight": default 0 for dim 2 (DW4), 10 for dim 3 (LJ13)

    /** Parse a JSON object, fill defaults and validate; throws std::invalid_argument naming the bad key. */
    static FlowConfig fromJson(const std::string& json);
    /** The full configuration as a JSON object with every key. */
    std::string toJson() const;
    /** Fill derived defaults and check ranges; throws std::invalid_argument. */
    void validate();
};

}  // namespace OpenMMBG
