#include "openmmbg/distributions/Distributions.h"

#include <cmath>

namespace OpenMMBG {

static const double LOG_2PI = std::log(2.0 * M_PI);

torch::Tensor CentreOfMassFreeGaussian::logProb(const torch::Tensor& x) {
    const int64_t N = x.size(1), D = x.size(2);
    return -0.5 * (x * x).sum({1, 2}) - 0.5 * double((N - 1) * D) * LOG_2PI;
}

torch::Tensor CentreOfMassFreeGaussian::sample(int64_t n, int64_t N, int64_t D, torch::Generator& generator,
                                               const torch::TensorOptions& options) {
    // Noise is drawn on the generator's device and moved: a CPU generator gives the same draws
    // whichever device the flow runs on.
    torch::Tensor eps = torch::randn({n, N, D}, generator, options.device(generator.device())).to(options.device());
    return eps - eps.mean(1, true);
}

torch::Tensor AugmentedGaussian::logProb(const torch::Tensor& a, const torch::Tensor& x) const {
    torch::Tensor diff = (a - x.unsqueeze(2)) / sigma;
    const double count = double(a.size(1) * a.size(2) * a.size(3));
    return -0.5 * (diff * diff).sum({1, 2, 3}) - count * (std::log(sigma) + 0.5 * LOG_2PI);
}

torch::Tensor AugmentedGaussian::sample(const torch::Tensor& x, int64_t numAug, torch::Generator& generator) const {
    torch::Tensor eps =
        torch::randn({x.size(0), x.size(1), numAug, x.size(2)}, generator, x.options().device(generator.device()))
            .to(x.device());
    return x.unsqueeze(2) + sigma * eps;
}

torch::Tensor randomRotations(int64_t n, int64_t dim, torch::Generator& generator, const torch::TensorOptions& options) {
    // QR of a Gaussian matrix with the signs of R's diagonal moved into Q is Haar on O(D); flipping
    // one column where det = -1 maps it onto SO(D).
    torch::Tensor g = torch::randn({n, dim, dim}, generator, options.dtype(torch::kFloat64));
    auto [q, r] = torch::linalg_qr(g);
    q = q * torch::sign(torch::diagonal(r, 0, -2, -1)).unsqueeze(-2);
    torch::Tensor flip = torch::ones({n, dim}, q.options());
    flip.select(1, 0).copy_(torch::sign(torch::linalg_det(q)));
    return (q * flip.unsqueeze(-2)).to(options.dtype());
}

}  // namespace OpenMMBG
