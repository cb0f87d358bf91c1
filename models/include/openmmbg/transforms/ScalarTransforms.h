#pragma once
/**
 * Elementwise one-dimensional bijections whose parameters come from a conditioner: the inner
 * transforms of the coupling layers.
 *
 * Shapes: inputs `x` are [...], parameters are [..., numParams()] with the same leading shape.
 * `apply` returns the transformed values and the elementwise log|dy/dx| of the map that was applied
 * (for inverse=true, the log-derivative of the inverse map).
 */
#include <torch/torch.h>

#include <memory>
#include <utility>

namespace OpenMMBG {

class ScalarTransform {
public:
    virtual ~ScalarTransform() = default;
    /** Number of conditioner outputs this transform consumes per scalar. */
    virtual int numParams() const = 0;
    /** Transform x elementwise. Returns (y, log|dy/dx|) with y and the log-derivative shaped like x. */
    virtual std::pair<torch::Tensor, torch::Tensor> apply(const torch::Tensor& x, const torch::Tensor& params,
                                                          bool inverse) const = 0;
};

/**
 * RealNVP-style affine map y = scale * x + shift with scale = softplus(s + softplus^-1(1)), so zero
 * parameters give the identity. Parameters: [s, shift].
 */
class AffineTransform : public ScalarTransform {
public:
    int numParams() const override { return 2; }
    std::pair<torch::Tensor, torch::Tensor> apply(const torch::Tensor& x, const torch::Tensor& params,
                                                  bool inverse) const override;
};

/**
 * Monotonic rational-quadratic spline (Durkan et al. 2019) mapping [lower, upper] onto itself with
 * `numBins` bins, linear with the boundary slope outside the interval. Parameters: numBins widths,
 * numBins heights, numBins + 1 knot slopes (3K+1); zero parameters give the identity.
 *
 * In the circular variant (for angles on [lower, upper) with upper - lower the period) the slope at
 * the last knot is tied to the first, so the map is smooth across the periodic boundary; the last
 * slope parameter is then unused.
 */
class RationalQuadraticSpline : public ScalarTransform {
public:
    RationalQuadraticSpline(double lower, double upper, int numBins, bool circular = false);
    int numParams() const override { return 3 * numBins + 1; }
    std::pair<torch::Tensor, torch::Tensor> apply(const torch::Tensor& x, const torch::Tensor& params,
                                                  bool inverse) const override;
    double lower, upper;
    int numBins;
    bool circular;
};

}  // namespace OpenMMBG
