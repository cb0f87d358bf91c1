#pragma once
// Helpers shared by the flow-library tests: small float64 configurations with random
// (non-identity) parameters, autograd Jacobians and random symmetry transformations.
#include "openmmbg/eacf/AugmentedCouplingFlowModel.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

namespace OpenMMBG {
namespace testing {

/** A small float64 flow with random final layers (identity_init = false). */
/** The model-interface view of a flow (sharing its parameters), for the trainers. */
inline std::shared_ptr<Model> asModel(const AugmentedCouplingFlow& flow) {
    return std::make_shared<AugmentedCouplingFlowModel>(flow);
}

inline FlowConfig smallConfig(int dim, const std::string& projection, int numAug = 1, int numParticles = 4) {
    FlowConfig c;
    c.numParticles = numParticles;
    c.dim = dim;
    c.projection = projection;
    c.numAug = numAug;
    c.numLayers = 2;
    c.dtype = "float64";
    c.identityInit = false;
    c.randomInitScale = 0.2;
    c.egnnBlocks = 2;
    c.egnnMlpUnits = {16, 16};
    c.egnnHiddenFeatures = 16;
    c.egnnOutputFeatures = 16;
    c.headMlpUnits = {16, 16};
    c.transformerLayers = 1;
    c.transformerHeads = 2;
    c.transformerHeadFeatures = 8;
    c.transformerMlpUnits = {16, 16};
    c.transformerOutputFeatures = 16;
    c.validate();
    return c;
}

/** Jacobian d f / d input of a function between flat vectors, by reverse-mode autograd, row by row. */
template <class F>
torch::Tensor jacobian(F f, const torch::Tensor& input) {
    torch::Tensor in = input.detach().clone().requires_grad_(true);
    torch::Tensor out = f(in).reshape({-1});
    std::vector<torch::Tensor> rows;
    for (int64_t i = 0; i < out.size(0); i++) {
        auto g = torch::autograd::grad({out[i]}, {in}, {}, /*retain_graph=*/true, /*create_graph=*/false,
                                       /*allow_unused=*/true);
        rows.push_back(g[0].defined() ? g[0].reshape({-1}) : torch::zeros({in.numel()}, in.options()));
    }
    return torch::stack(rows);
}

inline double logAbsDet(const torch::Tensor& m) { return std::get<1>(torch::linalg_slogdet(m)).item<double>(); }

/**
 * Orthonormal basis [N D, (N-1) D] of the zero-centre-of-mass subspace of R^{N x D} (flattened
 * particle-major).
 */
inline torch::Tensor zeroComBasis(int64_t N, int64_t D) {
    torch::Tensor P = torch::eye(N, torch::kFloat64) - 1.0 / N;  // projector onto zero-mean vectors
    auto qr = torch::linalg_qr(P);
    torch::Tensor Q = std::get<0>(qr).narrow(1, 0, N - 1).contiguous();       // [N, N-1], orthonormal, orthogonal to ones
    return torch::kron(Q, torch::eye(D, torch::kFloat64));        // [N D, (N-1) D]
}

/** A random rotation (det +1) or, with reflect, a random improper rotation (det -1). */
inline torch::Tensor randomOrthogonal(int64_t D, bool reflect, torch::Generator& gen) {
    torch::Tensor q = std::get<0>(torch::linalg_qr(torch::randn({D, D}, gen, torch::kFloat64)));
    double det = torch::det(q).item<double>();
    if ((det < 0) != reflect)
        q.select(1, 0).mul_(-1);
    return q;
}

/** A random configuration x [B, N, D] (zero CoM) and a [B, N, A, D] near it. */
inline std::pair<torch::Tensor, torch::Tensor> randomState(const FlowConfig& c, int64_t B, torch::Generator& gen) {
    torch::Tensor x = 1.5 * torch::randn({B, c.numParticles, c.dim}, gen, torch::kFloat64);
    x = x - x.mean(1, true);
    torch::Tensor a = x.unsqueeze(2) + 0.3 * torch::randn({B, c.numParticles, c.numAug, c.dim}, gen, torch::kFloat64);
    return {x, a};
}

inline torch::Generator generator(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

}  // namespace testing
}  // namespace OpenMMBG
