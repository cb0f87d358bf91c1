#include "openmmbg/transforms/ScalarTransforms.h"

#include <cmath>

namespace OpenMMBG {

namespace F = torch::nn::functional;

std::pair<torch::Tensor, torch::Tensor> AffineTransform::apply(const torch::Tensor& x, const torch::Tensor& params,
                                                               bool inverse) const {
    // softplus^-1(1) = log(e - 1): zero parameters give unit scale.
    static const double offset = std::log(std::exp(1.0) - 1.0);
    torch::Tensor scale = F::softplus(params.select(-1, 0) + offset);
    torch::Tensor shift = params.select(-1, 1);
    torch::Tensor logScale = torch::log(scale);
    if (!inverse)
        return {x * scale + shift, logScale};
    return {(x - shift) / scale, -logScale};
}

RationalQuadraticSpline::RationalQuadraticSpline(double lower, double upper, int numBins, bool circular)
    : lower(lower), upper(upper), numBins(numBins), circular(circular) {
    TORCH_CHECK(upper > lower && numBins > 0, "RationalQuadraticSpline: need upper > lower and numBins > 0");
}

namespace {

// Select, for every element, the entry of `table` [..., K(+1)] at index [...].
torch::Tensor gather(const torch::Tensor& table, const torch::Tensor& index) {
    return table.gather(-1, index.unsqueeze(-1)).squeeze(-1);
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> RationalQuadraticSpline::apply(const torch::Tensor& x,
                                                                       const torch::Tensor& params,
                                                                       bool inverse) const {
    const int K = numBins;
    const double range = upper - lower;
    const double minBin = range * 1e-4;
    const double minSlope = 1e-4;
    // softplus(s + log(e^(1 - minSlope) - 1)) + minSlope is 1 for s = 0.
    static const double slopeOffset = std::log(std::exp(1.0 - 1e-4) - 1.0);

    torch::Tensor widths = torch::softmax(params.narrow(-1, 0, K), -1) * (range - K * minBin) + minBin;
    torch::Tensor heights = torch::softmax(params.narrow(-1, K, K), -1) * (range - K * minBin) + minBin;
    torch::Tensor slopes = F::softplus(params.narrow(-1, 2 * K, K + 1) + slopeOffset) + minSlope;
    if (circular)
        slopes = torch::cat({slopes.narrow(-1, 0, K), slopes.narrow(-1, 0, 1)}, -1);

    auto knots = [&](const torch::Tensor& sizes) {
        torch::Tensor c = torch::cumsum(sizes, -1);
        auto zeroShape = sizes.sizes().vec();
        zeroShape.back() = 1;
        c = torch::cat({torch::zeros(zeroShape, sizes.options()), c}, -1) + lower;
        // Pin the last knot exactly on the upper boundary.
        c = torch::cat({c.narrow(-1, 0, K), torch::full(zeroShape, upper, sizes.options())}, -1);
        return c;
    };
    torch::Tensor xKnots = knots(widths);
    torch::Tensor yKnots = knots(heights);

    torch::Tensor inputKnots = inverse ? yKnots : xKnots;
    torch::Tensor inside = (x >= lower) & (x <= upper);
    // Evaluate the spline on a clamped copy so that outside points never produce NaNs (which would
    // poison gradients through torch::where); they take the linear branch below.
    torch::Tensor xc = torch::clamp(x, lower, upper);
    torch::Tensor bin = (xc.unsqueeze(-1) >= inputKnots.narrow(-1, 1, K - 1)).sum(-1);
    bin = bin.clamp(0, K - 1).to(torch::kLong);

    torch::Tensor x0 = gather(xKnots, bin), w = gather(widths, bin);
    torch::Tensor y0 = gather(yKnots, bin), h = gather(heights, bin);
    torch::Tensor d0 = gather(slopes, bin), d1 = gather(slopes, bin + 1);
    torch::Tensor s = h / w;

    torch::Tensor y, logDeriv;
    if (!inverse) {
        torch::Tensor xi = (xc - x0) / w;
        torch::Tensor xi1 = xi * (1 - xi);
        torch::Tensor denom = s + (d1 + d0 - 2 * s) * xi1;
        y = y0 + h * (s * xi * xi + d0 * xi1) / denom;
        torch::Tensor num = s * s * (d1 * xi * xi + 2 * s * xi1 + d0 * (1 - xi) * (1 - xi));
        logDeriv = torch::log(num) - 2 * torch::log(denom);
    } else {
        torch::Tensor dy = xc - y0;
        torch::Tensor c2 = d1 + d0 - 2 * s;
        torch::Tensor qa = h * (s - d0) + dy * c2;
        torch::Tensor qb = h * d0 - dy * c2;
        torch::Tensor qc = -s * dy;
        torch::Tensor disc = torch::clamp_min(qb * qb - 4 * qa * qc, 0);
        torch::Tensor xi = (2 * qc) / (-qb - torch::sqrt(disc));
        y = x0 + xi * w;
        torch::Tensor xi1 = xi * (1 - xi);
        torch::Tensor denom = s + c2 * xi1;
        torch::Tensor num = s * s * (d1 * xi * xi + 2 * s * xi1 + d0 * (1 - xi) * (1 - xi));
        logDeriv = -(torch::log(num) - 2 * torch::log(denom));
    }

    // Linear tails with the boundary slopes.
    torch::Tensor firstSlope = slopes.select(-1, 0), lastSlope = slopes.select(-1, K);
    torch::Tensor below = x < lower;
    torch::Tensor tailSlope = torch::where(below, firstSlope, lastSlope);
    torch::Tensor boundary = torch::where(below, torch::full_like(x, lower), torch::full_like(x, upper));
    torch::Tensor tailY = inverse ? boundary + (x - boundary) / tailSlope : boundary + (x - boundary) * tailSlope;
    torch::Tensor tailLog = inverse ? -torch::log(tailSlope) : torch::log(tailSlope);
    return {torch::where(inside, y, tailY), torch::where(inside, logDeriv, tailLog)};
}

}  // namespace OpenMMBG
