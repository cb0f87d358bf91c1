#include "openmmbg/ecnf/ContinuousFlow.h"

#include "openmmbg/distributions/Distributions.h"

#include <algorithm>

namespace OpenMMBG {

namespace {

// Configurations per vector-field call of the exact divergence (each is repeated N D times), which
// bounds its memory.
constexpr int64_t kDivergenceRowsPerCall = 4096;

}  // namespace

std::pair<torch::Tensor, torch::Tensor> fieldAndDivergence(const VectorField& field, const torch::Tensor& t,
                                                           const torch::Tensor& x, const torch::Tensor& probe) {
    // With grad mode off the caller wants values only: the divergence still needs autograd on x.
    const bool track = torch::GradMode::is_enabled();
    torch::AutoGradMode enable(true);
    const int64_t B = x.size(0), N = x.size(1), D = x.size(2);
    const torch::Tensor xin = track && x.requires_grad() ? x : x.detach();
    auto done = [&](const torch::Tensor& v, const torch::Tensor& div) {
        return track ? std::make_pair(v, div) : std::make_pair(v.detach(), div.detach());
    };
    if (probe.defined()) {
        TORCH_CHECK(probe.sizes() == x.sizes(), "fieldAndDivergence: the probe must be shaped like x");
        torch::Tensor xg = xin.requires_grad() ? xin : xin.detach().requires_grad_(true);
        const torch::Tensor v = field(t, xg);
        const torch::Tensor eps = probe.to(v.options());
        const torch::Tensor g = torch::autograd::grad({v}, {xg}, {eps}, true, track)[0];
        return done(v, (g * eps).sum({1, 2}));
    }
    // Exact: the configuration repeated N D times, replica k contracted with the unit vector e_k;
    // the k-th component of replica k's vector-Jacobian product is J_kk.
    const int64_t K = N * D, rows = std::max<int64_t>(1, kDivergenceRowsPerCall / K);
    std::vector<torch::Tensor> vs, divs;
    for (int64_t b0 = 0; b0 < B; b0 += rows) {
        const int64_t nb = std::min(rows, B - b0);
        torch::Tensor xr = xin.narrow(0, b0, nb).unsqueeze(0).expand({K, nb, N, D}).reshape({K * nb, N, D});
        if (!xr.requires_grad())
            xr = xr.detach().requires_grad_(true);
        const torch::Tensor tr = t.dim() == 0 ? t : t.narrow(0, b0, nb).unsqueeze(0).expand({K, nb}).reshape({K * nb});
        const torch::Tensor v = field(tr, xr);
        const torch::Tensor unit = torch::eye(K, v.options()).view({K, 1, K}).expand({K, nb, K}).reshape({K * nb, N, D});
        const torch::Tensor g = torch::autograd::grad({v}, {xr}, {unit}, true, track)[0].reshape({K, nb, K});
        divs.push_back(g.diagonal(0, 0, 2).sum(-1));
        vs.push_back(v.reshape({K, nb, N, D}).select(0, 0));
    }
    return done(torch::cat(vs), torch::cat(divs));
}

CnfResult cnfSample(const VectorField& field, const torch::Tensor& x0In, const OdeOptions& options,
                    const torch::Tensor& probe) {
    const int64_t B = x0In.size(0);
    const torch::Tensor x0 = x0In - x0In.mean(1, true);
    const auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(x0.device());
    OdeFunction f = [&](double t, const OdeState& y) -> OdeState {
        auto [v, div] = fieldAndDivergence(field, torch::full({}, t, y[0].options()), y[0], probe);
        return {v, div.to(torch::kFloat64), v.pow(2).sum({1, 2}).sqrt().to(torch::kFloat64)};
    };
    const OdeResult r = integrateOde(f, {x0, torch::zeros({B}, f64), torch::zeros({B}, f64)}, 0.0, 1.0, options);
    CnfResult out;
    out.x = r.y[0] - r.y[0].mean(1, true);
    out.logQ = CentreOfMassFreeGaussian::logProb(x0.to(torch::kFloat64)) - r.y[1];
    out.statistics = {r.functionEvaluations, r.acceptedSteps, r.rejectedSteps,
                      B > 0 ? r.y[2].mean().item<double>() : 0.0};
    return out;
}

CnfResult cnfLogProb(const VectorField& field, const torch::Tensor& x1In, const OdeOptions& options,
                     const torch::Tensor& probe) {
    const int64_t B = x1In.size(0);
    const torch::Tensor x1 = x1In - x1In.mean(1, true);
    const auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(x1.device());
    OdeFunction f = [&](double t, const OdeState& y) -> OdeState {
        auto [v, div] = fieldAndDivergence(field, torch::full({}, t, y[0].options()), y[0], probe);
        return {v, div.to(torch::kFloat64)};
    };
    const OdeResult r = integrateOde(f, {x1, torch::zeros({B}, f64)}, 1.0, 0.0, options);
    CnfResult out;
    out.x = r.y[0] - r.y[0].mean(1, true);
    // dL/dt = div v integrated from 1 to 0 gives L(0) = -integral_0^1 div v dt.
    out.logQ = CentreOfMassFreeGaussian::logProb(out.x.to(torch::kFloat64)) + r.y[1];
    out.statistics = {r.functionEvaluations, r.acceptedSteps, r.rejectedSteps, 0.0};
    return out;
}

}  // namespace OpenMMBG
