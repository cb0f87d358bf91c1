#pragma once
/**
 * A normalizing flow on the internal coordinates z = (bonds [N-1], angles [N-2], dihedrals [N-3])
 * of a molecule (Z-matrix row order; docs/internal-coordinates.md).
 *
 * Features. Internal coordinates are mapped to D = 3N - 6 features u = [bonds | angles | dihedrals]
 * by fixed statistics: u = (v - mean) / std for every bond and angle (log|du/dz| = -sum log std)
 * and u = wrap(phi - shift) for every dihedral, with `shift` its circular mean and wrap into
 * [-pi, pi) (a translation on the circle: log-det 0), so a narrow dihedral sits in the middle of
 * the interval rather than on its wrap point.
 *
 * Base: a standard normal for the 2N - 3 bond and angle features, uniform on [-pi, pi) for the
 * N - 3 dihedral features.
 *
 * Couplings: each layer transforms one half of the features with splines whose parameters a
 * residual network computes from the other half (dihedrals fed as cos and sin, so the conditioner
 * is periodic in them). Bonds and angles: RationalQuadraticSpline(-tail_bound, tail_bound, bins)
 * with unit slopes at the ends, so the identity outside; dihedrals: the circular
 * RationalQuadraticSpline(-pi, pi, bins). Layers come in pairs: a pair splits the features into
 * two halves by a permutation drawn from init_seed, its first layer transforms one half and its
 * second the other. The conditioners' final layers start at zero, so the untrained flow is the
 * identity on the base.
 *
 * Shapes: features [B, D]; log-densities and log-determinants [B]. Lengths in the configuration's
 * length unit, angles in radians.
 */
#include "openmmbg/ic/InternalCoordinateFlowConfig.h"
#include "openmmbg/ic/InternalCoordinates.h"
#include "openmmbg/networks/Networks.h"
#include "openmmbg/transforms/ScalarTransforms.h"

#include <utility>
#include <vector>

namespace OpenMMBG {

/**
 * One spline coupling layer on the features [B, D] (the first `numLinear` are bonds and angles, the
 * rest dihedrals): the features in `transformed` change, conditioned on all the others.
 */
class InternalCoordinateCouplingImpl : public torch::nn::Module {
public:
    InternalCoordinateCouplingImpl(int64_t numLinear, int64_t numCircular, const std::vector<int64_t>& transformed,
                                   const InternalCoordinateFlowConfig& config);
    /**
     * Apply the layer (the inverse when `inverse`). Returns the new features [B, D] and
     * log|det| [B] of the map applied.
     */
    std::pair<torch::Tensor, torch::Tensor> apply(const torch::Tensor& u, bool inverse);

    /** The conditioner (its final layer starts at zero). */
    ResidualNet conditioner{nullptr};

private:
    // Feature indices, kept out of the module's buffers so that Module::to(dtype) leaves them integers.
    torch::Tensor transformedLinear, transformedCircular, conditioningLinear, conditioningCircular;
    RationalQuadraticSpline linearSpline, circularSpline;
};
TORCH_MODULE(InternalCoordinateCoupling);

/** The density model q_z on internal coordinates. */
class InternalCoordinateFlowImpl : public torch::nn::Module {
public:
    explicit InternalCoordinateFlowImpl(const InternalCoordinateFlowConfig& config);
    const InternalCoordinateFlowConfig& config() const { return cfg; }
    const InternalCoordinateTransform& transform() const { return coordinates; }
    /** The dtype (config "dtype") and device of the flow's parameters. */
    torch::TensorOptions options() const;
    /** D = 3N - 6, the number of features. */
    int64_t numFeatures() const { return 3 * cfg.numParticles - 6; }

    /**
     * Set the standardisation from configurations x [n, N, 3] (n >= 1): per bond and angle the mean
     * and standard deviation over the n configurations, the standard deviation floored at 1e-3
     * (length unit for bonds, radians for angles) so that a constrained or fixed coordinate keeps
     * a finite density; per dihedral the circular mean atan2(mean sin, mean cos). Throws
     * std::invalid_argument if x is not [n, N, 3] or has non-finite internal coordinates
     * (coincident atoms).
     */
    void fitStatistics(const torch::Tensor& x);
    /** Whether fitStatistics has set the statistics (the buffer "statistics_fitted", kept in the model file). */
    bool statisticsFitted() const;

    /** Features u [B, D] of internal coordinates, with log|du/dz| [B]. */
    std::pair<torch::Tensor, torch::Tensor> standardize(const InternalCoordinates& ic) const;
    /** Internal coordinates of features u [B, D] (dihedrals wrapped into [-pi, pi)), with log|dz/du| [B]. */
    std::pair<InternalCoordinates, torch::Tensor> unstandardize(const torch::Tensor& u) const;
    /** The couplings from base to feature space (inverse: back), with log|det| [B] of the map applied. */
    std::pair<torch::Tensor, torch::Tensor> applyCouplings(const torch::Tensor& u, bool inverse);
    /** log density of the base at features u [B, D]. */
    torch::Tensor baseLogProb(const torch::Tensor& u) const;
    /** Draw n base points [n, D]; the noise comes from `generator`'s device and moves to the flow's. */
    torch::Tensor sampleBase(int64_t n, torch::Generator& generator) const;

    /** log q_z(z) [B]: the density of internal coordinates (bonds and angles per length unit and radian). */
    torch::Tensor logProb(const InternalCoordinates& ic);
    /** The internal coordinates of base points [B, D] (sampleBase) with their log q_z [B]. */
    std::pair<InternalCoordinates, torch::Tensor> fromBase(const torch::Tensor& base);

    /** The couplings, in the order from base to data. */
    const std::vector<InternalCoordinateCoupling>& couplings() const { return layers; }

private:
    /** sum of log std over bonds and angles: log|dz/du| of the standardisation. */
    torch::Tensor logScale() const;
    InternalCoordinateFlowConfig cfg;
    InternalCoordinateTransform coordinates;
    // The fixed statistics (buffers: a model file stores them, Module::to moves them).
    torch::Tensor bondMean, bondStd, angleMean, angleStd, dihedralShift, statisticsFittedFlag;
    std::vector<InternalCoordinateCoupling> layers;
};
TORCH_MODULE(InternalCoordinateFlow);

/** Angles wrapped into [-pi, pi). */
torch::Tensor wrapAngle(const torch::Tensor& angle);

}  // namespace OpenMMBG
