#pragma once
/**
 * The time-dependent E(n)-equivariant vector field v(t, x) of a continuous normalizing flow: an
 * EGNN (Satorras, Hoogeboom, Welling, ICML 2021) on the fully connected graph of N particles, in the
 * form used by equivariant flow matching (Klein et al. 2023; docs/ecnf.md):
 *
 *   h_i^0 = Linear([t, onehot(type_i)]),  e_ij = |x_i - x_j|^2 of the input positions,
 *   per layer: m_ij = phi_e(h_i, h_j, |x_i - x_j|^2, e_ij)               (2 x Linear + SiLU)
 *              x_i += sum_{j != i} (x_i - x_j) / (|x_i - x_j| + 1) phi_x(m_ij) / (N - 1)
 *              h_i += phi_h(h_i, sum_{j != i} m_ij / (N - 1))
 *   v = x_final - x_input, with its mean over particles removed.
 *
 * So v is equivariant to rotations, reflections and permutations of x (of particles of equal type),
 * invariant to translations, and has zero mean over particles. Shapes: t [B] (or a scalar), x
 * [B, N, D]; returns [B, N, D].
 */
#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace OpenMMBG {

struct EgnnVectorFieldOptions {
    int numParticles = 0;
    int dim = 3;
    int numLayers = 3;
    int hiddenUnits = 64;
    std::vector<int64_t> atomTypes;  ///< [N] type indices; empty: all particles of one type
};

class EgnnVectorFieldImpl : public torch::nn::Module {
public:
    explicit EgnnVectorFieldImpl(const EgnnVectorFieldOptions& options);
    torch::Tensor forward(const torch::Tensor& t, const torch::Tensor& x);
    const EgnnVectorFieldOptions& options() const { return options_; }

private:
    EgnnVectorFieldOptions options_;
    int64_t numTypes = 1;
    torch::Tensor typeFeatures;  // [N, numTypes] one-hot; not a buffer, so Module::to(dtype) leaves no stale copy
    torch::nn::Linear embedding{nullptr};
    torch::nn::ModuleList edgeIn, edgeOut, positionHidden, positionOut, nodeHidden, nodeOut;
};
TORCH_MODULE(EgnnVectorField);

}  // namespace OpenMMBG
