#pragma once
/**
 * Neural networks used as coupling conditioners. They know nothing about densities or bijectors.
 *
 * Shapes: B = batch, N = particles (nodes), C = position channels, D = spatial dimension,
 * F = invariant features.
 */
#include <torch/torch.h>

#include <vector>

namespace OpenMMBG {

/**
 * "Stable" MLP: Linear(in, units[0]) -> act, then for each further width a residual block
 * act(Linear(LayerNorm(h))) + h (all widths equal). Optionally a final Linear to `outFeatures`.
 */
class StableMLPImpl : public torch::nn::Module {
public:
    StableMLPImpl(int inFeatures, const std::vector<int>& units, int outFeatures = 0);
    torch::Tensor forward(torch::Tensor h);

    /** Where a part of a pairwise input lives: on the row node i, the column node j, or the pair (i, j). */
    enum class PairPart { Row, Column, Edge };
    /**
     * forward() of the concatenation, along the last axis and in the given order, of the parts for
     * every pair (i, j), without building it: the input layer is split by columns,
     * W [u_i, v_j, e_ij] = W_u u_i + W_v v_j + W_e e_ij, so node parts cost O(N), not O(N^2).
     * Row/Column parts are [B, N, F], Edge parts [B, N, N, F]; returns [B, N, N, out], equal to
     * forward(cat(...)) up to rounding.
     */
    torch::Tensor forwardPairwise(const std::vector<std::pair<PairPart, torch::Tensor>>& parts);

    /** The final linear layer (null when outFeatures == 0). */
    torch::nn::Linear finalLayer{nullptr};

private:
    torch::Tensor fromInputLayer(torch::Tensor preActivation);
    torch::nn::Linear input{nullptr};
    torch::nn::ModuleList norms, linears;
};
TORCH_MODULE(StableMLP);

/**
 * The residual network of neural spline flows (nflows' ResidualNet, the conditioner of the FAB
 * alanine-dipeptide flow): Linear(in, hidden), then `numBlocks` residual blocks
 * h + Linear(relu(Linear(relu(h)))), then a final Linear(hidden, out). As in nflows, the last
 * layer of each block starts near zero (uniform in [-1e-3, 1e-3]), so each block starts near the
 * identity.
 */
class ResidualNetImpl : public torch::nn::Module {
public:
    ResidualNetImpl(int inFeatures, int hiddenFeatures, int numBlocks, int outFeatures);
    torch::Tensor forward(torch::Tensor h);

    /** The final linear layer. */
    torch::nn::Linear finalLayer{nullptr};

private:
    torch::nn::Linear input{nullptr};
    torch::nn::ModuleList blocks;
};
TORCH_MODULE(ResidualNet);

/** Output of a conditioner network. */
struct ConditionerOutput {
    torch::Tensor vectors;     ///< equivariant, translation-invariant vectors [B, N, C_out, D] (C_out may be 0)
    torch::Tensor invariants;  ///< invariant per-node features [B, N, F_out]
};

/** A network from the positions of the conditioning half to per-node vectors and features. */
class ConditionerImpl : public torch::nn::Module {
public:
    /** @param positions conditioning positions [B, N, m_in, D] (not centred) */
    virtual ConditionerOutput forward(const torch::Tensor& positions) = 0;
    /** Number of invariant output features per node. */
    virtual int numFeatures() const = 0;
};

struct EGNNOptions {
    int numBlocks = 3;
    std::vector<int> mlpUnits = {64, 64};
    int hiddenFeatures = 128;
    int outputFeatures = 128;
    double normalizationConstant = 1.0;
    std::vector<int64_t> atomTypes;  ///< per-particle type index (node embedding row), [N]
};

/**
 * The multi-channel E(n)-equivariant graph network of the E-ACF paper (fully connected graph).
 * The input channels are mean-centred over nodes and repeated to `numOutputChannels` position
 * channels; the outputs are the position displacements x_final - x_initial per channel and
 * Linear(softmax(h)) invariant features.
 */
class EGNNImpl : public ConditionerImpl {
public:
    EGNNImpl(int numInputChannels, int numOutputChannels, const EGNNOptions& options);
    ConditionerOutput forward(const torch::Tensor& positions) override;
    int numFeatures() const override { return options.outputFeatures; }

private:
    int numInputChannels, numChannels;
    EGNNOptions options;
    torch::Tensor atomTypes;  // not a buffer: Module::to(dtype) would convert it
    torch::nn::Embedding embedding{nullptr};
    torch::nn::ModuleList edgeMLPs, positionMLPs, crossMLPs, gateLayers, nodeMLPs;
    torch::nn::Linear output{nullptr};
};

struct TransformerOptions {
    int numLayers = 3;
    int numHeads = 4;
    int headFeatures = 16;
    std::vector<int> mlpUnits = {64, 64};
    int outputFeatures = 128;
    std::vector<int64_t> atomTypes;  ///< per-particle type index (node embedding row), [N]
};

/**
 * Permutation-equivariant transformer over nodes acting on centred positions: the conditioner of
 * the Non-E-ACF baseline. Produces no equivariant vectors (it is not rotation equivariant).
 */
class TransformerImpl : public ConditionerImpl {
public:
    TransformerImpl(int numInputChannels, int dim, const TransformerOptions& options);
    ConditionerOutput forward(const torch::Tensor& positions) override;
    int numFeatures() const override { return options.outputFeatures; }

private:
    TransformerOptions options;
    int model;
    torch::Tensor atomTypes;
    torch::nn::Embedding embedding{nullptr};
    torch::nn::Linear input{nullptr}, output{nullptr};
    torch::nn::ModuleList attnNorms, qkv, attnOut, mlpNorms, mlps;
};

}  // namespace OpenMMBG
