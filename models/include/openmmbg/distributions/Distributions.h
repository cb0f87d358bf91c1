#pragma once
/**
 * Base and target densities on the augmented space, and the uniform (Haar) distribution of rotations. Shapes: x [B, N, D] with zero centre of mass,
 * a [B, N, A, D].
 */
#include <torch/torch.h>

namespace OpenMMBG {

/**
 * Standard Gaussian on the zero-centre-of-mass hyperplane of R^{N x D}:
 * log p(x) = -|x|^2 / 2 - (N - 1) D / 2 log(2 pi), normalised with respect to the Lebesgue measure
 * of that (N - 1) D-dimensional subspace in an orthonormal basis.
 */
struct CentreOfMassFreeGaussian {
    static torch::Tensor logProb(const torch::Tensor& x);
    /** Draw n samples [n, N, D]: standard normal with the mean over particles removed. */
    static torch::Tensor sample(int64_t n, int64_t N, int64_t D, torch::Generator& generator,
                                const torch::TensorOptions& options);
};

/**
 * a | x ~ N(x, sigma^2 I) independently for every augmented slot, particle and coordinate (the
 * centre of mass of a is unconstrained). Used as the base of a and as the augmented target pi(a|x).
 */
struct AugmentedGaussian {
    double sigma;
    torch::Tensor logProb(const torch::Tensor& a, const torch::Tensor& x) const;
    torch::Tensor sample(const torch::Tensor& x, int64_t numAug, torch::Generator& generator) const;
};

/** n rotation matrices [n, D, D] drawn uniformly (Haar measure on SO(D)). */
torch::Tensor randomRotations(int64_t n, int64_t dim, torch::Generator& generator, const torch::TensorOptions& options);

}  // namespace OpenMMBG
