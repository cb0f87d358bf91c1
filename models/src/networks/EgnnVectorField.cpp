#include "openmmbg/networks/EgnnVectorField.h"

#include <algorithm>

namespace OpenMMBG {

namespace nn = torch::nn;

EgnnVectorFieldImpl::EgnnVectorFieldImpl(const EgnnVectorFieldOptions& o) : options_(o) {
    TORCH_CHECK(o.numParticles >= 2 && o.numLayers >= 1 && o.hiddenUnits >= 1, "EgnnVectorField: invalid options");
    TORCH_CHECK(o.atomTypes.empty() || int64_t(o.atomTypes.size()) == o.numParticles,
                "EgnnVectorField: atom_types must have one entry per particle");
    std::vector<int64_t> types = o.atomTypes.empty() ? std::vector<int64_t>(o.numParticles, 0) : o.atomTypes;
    numTypes = *std::max_element(types.begin(), types.end()) + 1;
    typeFeatures = torch::one_hot(torch::tensor(types, torch::kLong), numTypes).to(torch::kFloat64);
    const int H = o.hiddenUnits;
    embedding = register_module("embedding", nn::Linear(1 + numTypes, H));
    edgeIn = register_module("edge_in", nn::ModuleList());
    edgeOut = register_module("edge_out", nn::ModuleList());
    positionHidden = register_module("position_hidden", nn::ModuleList());
    positionOut = register_module("position_out", nn::ModuleList());
    nodeHidden = register_module("node_hidden", nn::ModuleList());
    nodeOut = register_module("node_out", nn::ModuleList());
    for (int l = 0; l < o.numLayers; l++) {
        edgeIn->push_back(nn::Linear(2 * H + 2, H));
        edgeOut->push_back(nn::Linear(H, H));
        positionHidden->push_back(nn::Linear(H, H));
        // As in the EGNN reference code: the position update starts small (Xavier with gain 0.001),
        // so the untrained field is close to zero and training starts from a near-identity flow.
        nn::Linear out(nn::LinearOptions(H, 1).bias(false));
        {
            torch::NoGradGuard noGrad;
            nn::init::xavier_uniform_(out->weight, 0.001);
        }
        positionOut->push_back(out);
        nodeHidden->push_back(nn::Linear(2 * H, H));
        nodeOut->push_back(nn::Linear(H, H));
    }
}

torch::Tensor EgnnVectorFieldImpl::forward(const torch::Tensor& tIn, const torch::Tensor& xIn) {
    const int64_t B = xIn.size(0), N = xIn.size(1);
    TORCH_CHECK(xIn.dim() == 3 && N == options_.numParticles && xIn.size(2) == options_.dim,
                "EgnnVectorField: x must be [B, ", options_.numParticles, ", ", options_.dim, "] (got ", xIn.sizes(), ")");
    const auto opts = embedding->weight.options();
    const torch::Tensor x0 = xIn.to(opts);
    torch::Tensor t = tIn.to(opts);
    t = t.dim() == 0 ? t.expand({B}) : t;
    // Node features [B, N, H] from the time and the particle type.
    const torch::Tensor types = typeFeatures.to(opts).unsqueeze(0).expand({B, N, numTypes});
    torch::Tensor h = embedding->forward(torch::cat({t.view({B, 1, 1}).expand({B, N, 1}), types}, 2));
    // Pairs without self-pairs; the diagonal gets a distance of 1 so that its square root stays
    // differentiable (the pair is masked out anyway).
    const torch::Tensor offDiagonal = (1 - torch::eye(N, opts)).view({1, N, N, 1});
    const torch::Tensor eye = torch::eye(N, opts).view({1, N, N});
    auto squaredDistances = [&](const torch::Tensor& x) {
        const torch::Tensor r = x.unsqueeze(2) - x.unsqueeze(1);  // r_ij = x_i - x_j [B, N, N, D]
        return std::make_pair(r, r.pow(2).sum(-1) + eye);
    };
    const torch::Tensor e = squaredDistances(x0).second.unsqueeze(-1);
    const double norm = 1.0 / double(N - 1);
    torch::Tensor x = x0;
    const int H = options_.hiddenUnits;
    for (int l = 0; l < options_.numLayers; l++) {
        auto [r, d2] = squaredDistances(x);
        // phi_e's input layer split by columns: W [h_i, h_j, d2, e] = W_i h_i + W_j h_j + w_d d2 + w_e e,
        // so the node parts cost O(N) rather than O(N^2).
        const auto& in = edgeIn[l]->as<nn::Linear>()->weight;
        const auto& bias = edgeIn[l]->as<nn::Linear>()->bias;
        const torch::Tensor pre = torch::matmul(h, in.narrow(1, 0, H).t()).unsqueeze(2) +
                                  torch::matmul(h, in.narrow(1, H, H).t()).unsqueeze(1) +
                                  d2.unsqueeze(-1) * in.narrow(1, 2 * H, 1).t() + e * in.narrow(1, 2 * H + 1, 1).t() +
                                  bias;
        const torch::Tensor m = torch::silu(edgeOut[l]->as<nn::Linear>()->forward(torch::silu(pre))) * offDiagonal;
        const torch::Tensor weight = positionOut[l]->as<nn::Linear>()->forward(
            torch::silu(positionHidden[l]->as<nn::Linear>()->forward(m)));  // [B, N, N, 1]
        x = x + (r / (d2.sqrt().unsqueeze(-1) + 1) * weight * offDiagonal).sum(2) * norm;
        const torch::Tensor aggregated = m.sum(2) * norm;
        h = h + nodeOut[l]->as<nn::Linear>()->forward(
                    torch::silu(nodeHidden[l]->as<nn::Linear>()->forward(torch::cat({h, aggregated}, 2))));
    }
    const torch::Tensor v = x - x0;
    return v - v.mean(1, true);
}

}  // namespace OpenMMBG
