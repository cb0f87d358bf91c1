#pragma once
/**
 * The full configuration of a model of family "ic": a normalizing flow on the internal coordinates
 * of a molecule (InternalCoordinateFlow). docs/internal-coordinates.md documents the family and
 * docs/flow-config.md its JSON keys. This header does not depend on LibTorch.
 *
 * The architecture defaults are those of the flow of FAB's alanine-dipeptide experiment (Midgley
 * et al., "Flow Annealed Importance Sampling Bootstrap", ICLR 2023, its experiment and appendix on
 * alanine dipeptide), read from the authors' released configuration (lollcat/fab-torch,
 * experiments/aldp/config/{ml,fab_buff}.yaml: flow type circular-coup-nsf, blocks 12,
 * blocks_per_layer 1, hidden_units 256, num_bins 8; the tail bound 5 of the non-circular splines is
 * set in experiments/make_flow/make_aldp_model.py).
 */
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace OpenMMBG {

struct InternalCoordinateFlowConfig {
    std::string family = "ic";  ///< "family": this configuration is that of "ic"
    // Required.
    int numParticles = 0;  ///< "num_particles": N atoms (>= 3)
    /**
     * "zmatrix": N rows [atom, bond, angle, dihedral] in placement order, -1 where a row has no
     * such reference (rows 0, 1, 2); checked as a ZMatrix (models/include/openmmbg/ic/InternalCoordinates.h).
     */
    std::vector<std::array<int64_t, 4>> zmatrix;
    int dim = 3;  ///< "dim": must be 3
    // Flow layout (FAB alanine-dipeptide defaults).
    int numLayers = 12;      ///< "num_layers": spline coupling layers
    int hiddenUnits = 256;   ///< "hidden_units": width of the conditioners' residual networks
    int numBlocks = 1;       ///< "num_blocks": residual blocks (two linear layers each) per conditioner
    int numBins = 8;         ///< "num_bins": bins of every rational-quadratic spline
    double tailBound = 5.0;  ///< "tail_bound": bond/angle splines act on [-b, b] (standardized units), identity outside
    std::string dtype = "float32";  ///< "dtype": "float32" or "float64"
    int64_t initSeed = 0;           ///< "init_seed": seed of the parameter initialisation and the coupling masks
    std::string lengthUnit = "nm";  ///< "length_unit": "nm" or "angstrom"
    double temperature = 300.0;     ///< "temperature" (K) the model describes

    /** Parse a JSON object, fill defaults and validate; throws std::invalid_argument naming the bad key. */
    static InternalCoordinateFlowConfig fromJson(const std::string& json);
    /** The full configuration as a JSON object with every key. */
    std::string toJson() const;
    /** Check ranges and the Z-matrix; throws std::invalid_argument naming the key. */
    void validate() const;
};

}  // namespace OpenMMBG
