#include "openmmbg/networks/Networks.h"

#include <algorithm>
#include <cmath>

namespace OpenMMBG {

namespace nn = torch::nn;

StableMLPImpl::StableMLPImpl(int inFeatures, const std::vector<int>& units, int outFeatures) {
    TORCH_CHECK(!units.empty(), "StableMLP needs at least one hidden layer");
    input = register_module("input", nn::Linear(inFeatures, units[0]));
    norms = register_module("norms", nn::ModuleList());
    linears = register_module("linears", nn::ModuleList());
    for (size_t i = 1; i < units.size(); i++) {
        TORCH_CHECK(units[i] == units[0], "StableMLP: all hidden widths must be equal (residual blocks)");
        norms->push_back(nn::LayerNorm(nn::LayerNormOptions({units[0]})));
        linears->push_back(nn::Linear(units[0], units[i]));
    }
    if (outFeatures > 0)
        finalLayer = register_module("final", nn::Linear(units.back(), outFeatures));
}

torch::Tensor StableMLPImpl::forward(torch::Tensor h) { return fromInputLayer(input->forward(h)); }

torch::Tensor StableMLPImpl::forwardPairwise(const std::vector<std::pair<PairPart, torch::Tensor>>& parts) {
    torch::Tensor pre;
    int64_t column = 0;
    for (const auto& [where, x] : parts) {
        const int64_t width = x.size(-1);
        torch::Tensor term = torch::matmul(x, input->weight.narrow(1, column, width).t());
        column += width;
        if (where == PairPart::Row)
            term = term.unsqueeze(2);  // [B, N, 1, U]: the same for every j
        else if (where == PairPart::Column)
            term = term.unsqueeze(1);  // [B, 1, N, U]: the same for every i
        pre = pre.defined() ? pre + term : term;
    }
    TORCH_CHECK(column == input->weight.size(1), "StableMLP::forwardPairwise: the parts have ", column,
                " features, the input layer takes ", input->weight.size(1));
    return fromInputLayer(pre + input->bias);
}

torch::Tensor StableMLPImpl::fromInputLayer(torch::Tensor h) {
    h = torch::silu(h);
    for (size_t i = 0; i < linears->size(); i++) {
        torch::Tensor normed = norms[i]->as<nn::LayerNorm>()->forward(h);
        h = torch::silu(linears[i]->as<nn::Linear>()->forward(normed)) + h;
    }
    if (finalLayer)
        h = finalLayer->forward(h);
    return h;
}

ResidualNetImpl::ResidualNetImpl(int inFeatures, int hiddenFeatures, int numBlocks, int outFeatures) {
    TORCH_CHECK(numBlocks >= 1, "ResidualNet needs at least one residual block");
    input = register_module("input", nn::Linear(inFeatures, hiddenFeatures));
    blocks = register_module("blocks", nn::ModuleList());
    torch::NoGradGuard guard;
    for (int b = 0; b < numBlocks; b++) {
        nn::Sequential block(nn::Linear(hiddenFeatures, hiddenFeatures), nn::Linear(hiddenFeatures, hiddenFeatures));
        auto last = block->ptr<nn::LinearImpl>(1);
        last->weight.uniform_(-1e-3, 1e-3);
        last->bias.uniform_(-1e-3, 1e-3);
        blocks->push_back(block);
    }
    finalLayer = register_module("final", nn::Linear(hiddenFeatures, outFeatures));
}

torch::Tensor ResidualNetImpl::forward(torch::Tensor h) {
    h = input->forward(h);
    for (const auto& module : *blocks) {
        auto* block = module->as<nn::Sequential>();
        h = h + block->ptr<nn::LinearImpl>(1)->forward(torch::relu(block->ptr<nn::LinearImpl>(0)->forward(torch::relu(h))));
    }
    return finalLayer->forward(h);
}

namespace {

// Variance-scaling initialisation (fan_avg, uniform) with the given scale.
void varianceScalingInit(nn::Linear& layer, double scale) {
    torch::NoGradGuard guard;
    double fanAvg = 0.5 * (layer->weight.size(0) + layer->weight.size(1));
    double limit = std::sqrt(3.0 * scale / fanAvg);
    layer->weight.uniform_(-limit, limit);
    layer->bias.zero_();
}

// Pairs (c, c') with c != c', ordered: [numChannels * (numChannels - 1)] index lists.
std::pair<torch::Tensor, torch::Tensor> orderedChannelPairs(int numChannels, const torch::Device& device) {
    std::vector<int64_t> first, second;
    for (int c = 0; c < numChannels; c++)
        for (int d = 0; d < numChannels; d++)
            if (c != d) {
                first.push_back(c);
                second.push_back(d);
            }
    return {torch::tensor(first, torch::kLong).to(device), torch::tensor(second, torch::kLong).to(device)};
}

int numAtomTypes(const std::vector<int64_t>& types) {
    TORCH_CHECK(!types.empty(), "conditioner: atom types must be given for every particle");
    return int(*std::max_element(types.begin(), types.end())) + 1;
}

}  // namespace

EGNNImpl::EGNNImpl(int numInputChannels, int numOutputChannels, const EGNNOptions& options)
    : numInputChannels(numInputChannels), numChannels(numOutputChannels), options(options) {
    TORCH_CHECK(numOutputChannels % numInputChannels == 0,
                "EGNN: output channels must be a multiple of input channels");
    const int C = numChannels, F = options.hiddenFeatures, M = options.mlpUnits.back();
    const int numPairs = C * (C - 1) / 2;
    atomTypes = torch::tensor(options.atomTypes, torch::kLong);
    embedding = register_module("embedding", nn::Embedding(numAtomTypes(options.atomTypes), F));
    edgeMLPs = register_module("edge_mlps", nn::ModuleList());
    positionMLPs = register_module("position_mlps", nn::ModuleList());
    crossMLPs = register_module("cross_mlps", nn::ModuleList());
    gateLayers = register_module("gates", nn::ModuleList());
    nodeMLPs = register_module("node_mlps", nn::ModuleList());
    for (int b = 0; b < options.numBlocks; b++) {
        edgeMLPs->push_back(StableMLP(2 * F + C + 2 * numPairs, options.mlpUnits));
        StableMLP phiX(M, options.mlpUnits, C);
        varianceScalingInit(phiX->finalLayer, 0.001);
        positionMLPs->push_back(phiX);
        if (C > 1) {
            StableMLP phiCross(M, options.mlpUnits, C * (C - 1));
            varianceScalingInit(phiCross->finalLayer, 0.001);
            crossMLPs->push_back(phiCross);
        }
        gateLayers->push_back(nn::Linear(M, 1));
        nodeMLPs->push_back(StableMLP(M + F, options.mlpUnits, F));
    }
    output = register_module("output", nn::Linear(F, options.outputFeatures));
}

ConditionerOutput EGNNImpl::forward(const torch::Tensor& positions) {
    const int64_t B = positions.size(0), N = positions.size(1), D = positions.size(3);
    const int C = numChannels;
    const double normC = options.normalizationConstant;
    TORCH_CHECK(N >= 2, "EGNN needs at least two particles");
    torch::Tensor centred = positions - positions.mean(1, true);
    // Each input channel repeated C / m_in times: (c0, c0, ..., c1, c1, ...).
    torch::Tensor X0 = centred.repeat_interleave(C / numInputChannels, 2);  // [B, N, C, D]
    torch::Tensor X = X0;
    torch::Tensor h = embedding->forward(atomTypes.to(positions.device())).unsqueeze(0).expand({B, N, options.hiddenFeatures});
    auto opts = positions.options();
    torch::Tensor offDiagonal = (1 - torch::eye(N, opts)).view({1, N, N, 1});  // j != i
    torch::Tensor eyeN = torch::eye(N, opts).view({1, N, N, 1});
    torch::Tensor pairA, pairB;
    std::tie(pairA, pairB) = orderedChannelPairs(C, positions.device());
    torch::Tensor upperA, upperB;  // unordered pairs c < c'
    {
        std::vector<int64_t> a, b;
        for (int c = 0; c < C; c++)
            for (int d = c + 1; d < C; d++) {
                a.push_back(c);
                b.push_back(d);
            }
        upperA = torch::tensor(a, torch::kLong).to(positions.device());
        upperB = torch::tensor(b, torch::kLong).to(positions.device());
    }
    for (int blk = 0; blk < options.numBlocks; blk++) {
        torch::Tensor xij = X.unsqueeze(2) - X.unsqueeze(1);  // [B, N, N, C, D]: x_i - x_j
        torch::Tensor sqij = (xij * xij).sum(-1);             // [B, N, N, C]
        // Edge input cat(h_i, h_j, |x_i - x_j|^2 per channel, channel-pair distances of i and of j),
        // with the node parts through the input layer once per node rather than once per edge.
        using Part = StableMLPImpl::PairPart;
        std::vector<std::pair<Part, torch::Tensor>> edgeIn = {{Part::Row, h}, {Part::Column, h}, {Part::Edge, sqij}};
        if (C > 1) {
            torch::Tensor diff = X.index_select(2, upperA) - X.index_select(2, upperB);  // [B, N, P, D]
            torch::Tensor cross = (diff * diff).sum(-1);                                  // [B, N, P]
            edgeIn.push_back({Part::Row, cross});
            edgeIn.push_back({Part::Column, cross});
        }
        torch::Tensor m = edgeMLPs[blk]->as<StableMLP>()->forwardPairwise(edgeIn);  // [B, N, N, M]

        // Position update per channel; the diagonal has x_ii = 0 and is kept out of the norm's sqrt.
        torch::Tensor phiX = positionMLPs[blk]->as<StableMLP>()->forward(m) * offDiagonal;  // [B, N, N, C]
        torch::Tensor dist = torch::sqrt(sqij + eyeN);
        torch::Tensor dX = ((phiX / (normC + dist)).unsqueeze(-1) * xij).sum(2) / double(N - 1);
        if (C > 1) {
            torch::Tensor w = crossMLPs[blk]->as<StableMLP>()->forward((m * offDiagonal).sum(2));  // [B, N, C(C-1)], no self-edge
            torch::Tensor diff = X.index_select(2, pairA) - X.index_select(2, pairB);  // [B, N, C(C-1), D]
            torch::Tensor sq = (diff * diff).sum(-1, true);
            torch::Tensor contrib = w.unsqueeze(-1) * diff / (normC + sq);
            torch::Tensor summed = torch::zeros_like(X).index_add(2, pairA, contrib);
            dX = dX + summed / double(C - 1);
        }

        // Feature update with attention-like gates.
        torch::Tensor gate = torch::sigmoid(gateLayers[blk]->as<nn::Linear>()->forward(m)) * offDiagonal;
        torch::Tensor mi = (gate * m).sum(2) / std::sqrt(double(N - 1));
        h = h + nodeMLPs[blk]->as<StableMLP>()->forward(torch::cat({mi, h}, -1));
        X = X + dX;
    }
    (void) D;
    return {X - X0, output->forward(torch::softmax(h, -1))};
}

TransformerImpl::TransformerImpl(int numInputChannels, int dim, const TransformerOptions& options)
    : options(options), model(options.numHeads * options.headFeatures) {
    const int E = 32;
    atomTypes = torch::tensor(options.atomTypes, torch::kLong);
    embedding = register_module("embedding", nn::Embedding(numAtomTypes(options.atomTypes), E));
    input = register_module("input", nn::Linear(numInputChannels * dim + E, model));
    attnNorms = register_module("attn_norms", nn::ModuleList());
    qkv = register_module("qkv", nn::ModuleList());
    attnOut = register_module("attn_out", nn::ModuleList());
    mlpNorms = register_module("mlp_norms", nn::ModuleList());
    mlps = register_module("mlps", nn::ModuleList());
    for (int l = 0; l < options.numLayers; l++) {
        attnNorms->push_back(nn::LayerNorm(nn::LayerNormOptions({model})));
        qkv->push_back(nn::Linear(model, 3 * model));
        attnOut->push_back(nn::Linear(model, model));
        mlpNorms->push_back(nn::LayerNorm(nn::LayerNormOptions({model})));
        mlps->push_back(StableMLP(model, options.mlpUnits, model));
    }
    output = register_module("output", nn::Linear(model, options.outputFeatures));
}

ConditionerOutput TransformerImpl::forward(const torch::Tensor& positions) {
    const int64_t B = positions.size(0), N = positions.size(1), D = positions.size(3);
    const int H = options.numHeads, Dh = options.headFeatures;
    torch::Tensor centred = (positions - positions.mean(1, true)).reshape({B, N, -1});
    torch::Tensor e = embedding->forward(atomTypes.to(positions.device())).unsqueeze(0).expand({B, N, -1});
    torch::Tensor h = input->forward(torch::cat({centred, e}, -1));
    for (int l = 0; l < options.numLayers; l++) {
        torch::Tensor q = qkv[l]->as<nn::Linear>()->forward(attnNorms[l]->as<nn::LayerNorm>()->forward(h));
        auto parts = q.view({B, N, 3, H, Dh}).permute({2, 0, 3, 1, 4});  // [3, B, H, N, Dh]
        torch::Tensor att = torch::softmax(torch::matmul(parts[0], parts[1].transpose(-1, -2)) / std::sqrt(double(Dh)), -1);
        torch::Tensor ctx = torch::matmul(att, parts[2]).permute({0, 2, 1, 3}).reshape({B, N, model});
        h = h + attnOut[l]->as<nn::Linear>()->forward(ctx);
        h = h + mlps[l]->as<StableMLP>()->forward(mlpNorms[l]->as<nn::LayerNorm>()->forward(h));
    }
    return {torch::zeros({B, N, 0, D}, positions.options()), output->forward(h)};
}

}  // namespace OpenMMBG
