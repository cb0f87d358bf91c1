#include "openmmbg/training/Fab.h"

#include <cmath>

namespace OpenMMBG {

namespace {

// The zero-centre-of-mass projection of x-like tensors [B, N, D]: remove the mean over particles.
torch::Tensor projectCom(const torch::Tensor& v) { return v - v.mean(1, true); }

// where(mask, a, b) with mask [B] broadcast over a's trailing dimensions.
torch::Tensor select(const torch::Tensor& mask, const torch::Tensor& a, const torch::Tensor& b) {
    std::vector<int64_t> shape(a.dim(), 1);
    shape[0] = a.size(0);
    return torch::where(mask.view(shape), a, b);
}

}  // namespace

JointEvaluation FlowJointDensity::evaluate(const torch::Tensor& x, const torch::Tensor& a) {
    torch::AutoGradMode enable(true);
    torch::Tensor xg = x.detach().requires_grad_(true), ag = a.detach().requires_grad_(true);
    torch::Tensor logQ = model.logProb(xg, ag);
    // Only the inputs' gradients are computed: the parameters' .grad stay untouched. Families
    // without auxiliary variables leave the (empty) aux unused.
    auto grads = torch::autograd::grad({logQ.sum()}, {xg, ag}, {}, false, false, true);
    return {logQ.detach(), grads[0].defined() ? grads[0] : torch::zeros_like(x),
            grads[1].defined() ? grads[1] : torch::zeros_like(a), {}};
}

JointEvaluation TargetJointDensity::evaluate(const torch::Tensor& x, const torch::Tensor& a) {
    torch::Tensor x64 = x.detach().to(torch::kFloat64), a64 = a.detach().to(torch::kFloat64);
    torch::Tensor energy, forces;
    {
        // Target::energyAndForces may use autograd (the built-in targets do), whatever the caller's mode.
        torch::AutoGradMode enable(true);
        std::tie(energy, forces) = target->energyAndForces(x64);
    }
    // log pi(a|x) and its gradients by autograd (zeros, without a graph, for families without
    // auxiliary variables).
    torch::Tensor logAux, gradAuxX, gradAuxA;
    {
        torch::AutoGradMode enable(true);
        torch::Tensor xg = x64.clone().requires_grad_(true), ag = a64.clone().requires_grad_(true);
        logAux = model.logAuxiliaryTarget(xg, ag).to(torch::kFloat64);
        if (logAux.requires_grad()) {
            auto grads = torch::autograd::grad({logAux.sum()}, {xg, ag}, {}, false, false, true);
            gradAuxX = grads[0].defined() ? grads[0] : torch::zeros_like(x64);
            gradAuxA = grads[1].defined() ? grads[1] : torch::zeros_like(a64);
        } else {
            gradAuxX = torch::zeros_like(x64);
            gradAuxA = torch::zeros_like(a64);
        }
        logAux = logAux.detach();
    }
    torch::NoGradGuard noGrad;
    energy = energy.to(torch::kFloat64);
    forces = forces.to(torch::kFloat64);
    torch::Tensor logProb = -energy + logAux;
    torch::Tensor gradX = forces + gradAuxX, gradA = gradAuxA;
    // A non-finite energy must not leave a finite log-density behind (it would be accepted).
    logProb = torch::where(torch::isfinite(energy), logProb, torch::full_like(logProb, -INFINITY));
    return {logProb.to(x.scalar_type()), gradX.to(x.scalar_type()), gradA.to(a.scalar_type()), {}};
}

HmcResult hmcStep(const std::function<JointEvaluation(const torch::Tensor&, const torch::Tensor&)>& density,
                  const torch::Tensor& x0, const torch::Tensor& a0, const JointEvaluation& current, double eps,
                  int numLeapfrog, torch::Generator& generator) {
    TORCH_CHECK(numLeapfrog >= 1, "hmcStep: need at least one leapfrog step");
    torch::NoGradGuard noGrad;
    // Noise is drawn on the CPU generator in float64 and converted, so a seed gives the same chain
    // for float32 and float64 states up to rounding.
    auto normal = [&](const torch::Tensor& like) {
        return torch::randn(like.sizes(), generator, torch::kFloat64).to(like.options());
    };
    torch::Tensor px = projectCom(normal(x0)), pa = normal(a0);
    auto kinetic = [](const torch::Tensor& px, const torch::Tensor& pa) {
        return 0.5 * (px.pow(2).sum({1, 2}) + pa.pow(2).flatten(1).sum(1));
    };
    const torch::Tensor h0 = -current.logProb + kinetic(px, pa);
    torch::Tensor x = x0, a = a0;
    JointEvaluation e = current;
    px = px + 0.5 * eps * projectCom(e.gradX);
    pa = pa + 0.5 * eps * e.gradA;
    for (int l = 0; l < numLeapfrog; l++) {
        x = x + eps * px;
        a = a + eps * pa;
        e = density(x, a);
        const double scale = l == numLeapfrog - 1 ? 0.5 : 1.0;
        px = px + scale * eps * projectCom(e.gradX);
        pa = pa + scale * eps * e.gradA;
    }
    const torch::Tensor h1 = -e.logProb + kinetic(px, pa);
    torch::Tensor logU = torch::log(torch::rand({x0.size(0)}, generator, torch::kFloat64)).to(h0.device());
    // NaN (a diverged trajectory) compares false: rejected.
    torch::Tensor accept = (logU < (h0 - h1).to(torch::kFloat64)) & torch::isfinite(e.logProb);
    HmcResult r;
    r.x = select(accept, x, x0);
    r.a = select(accept, a, a0);
    r.evaluation.logProb = select(accept, e.logProb, current.logProb);
    r.evaluation.gradX = select(accept, e.gradX, current.gradX);
    r.evaluation.gradA = select(accept, e.gradA, current.gradA);
    TORCH_CHECK(e.parts.size() == current.parts.size(), "hmcStep: the density changed its number of parts");
    for (size_t i = 0; i < e.parts.size(); i++)
        r.evaluation.parts.push_back(select(accept, e.parts[i], current.parts[i]));
    r.accepted = accept;
    return r;
}

AnnealedImportanceSampler::AnnealedImportanceSampler(const AisOptions& o)
    : stepSizes(std::max(o.numIntermediate, 0), o.initialStepSize), opts(o) {
    if (!(o.numIntermediate >= 0 && o.numLeapfrog >= 1 && o.initialStepSize > 0 && o.stepSizeFactor >= 1))
        throw std::invalid_argument("AIS: need num_intermediate >= 0, leapfrog steps >= 1, a positive step size and a "
                                    "factor >= 1 (got " + std::to_string(o.numIntermediate) + ", " +
                                    std::to_string(o.numLeapfrog) + ", " + std::to_string(o.initialStepSize) + ", " +
                                    std::to_string(o.stepSizeFactor) + ")");
}

AisResult AnnealedImportanceSampler::run(JointLogDensity& base, JointLogDensity& target, const torch::Tensor& x0,
                                         const torch::Tensor& a0, torch::Generator& generator, bool adapt) {
    torch::NoGradGuard noGrad;
    const int n = opts.numIntermediate;
    const double alpha = opts.alpha;
    auto beta = [&](int j) { return double(j) / double(n + 1); };
    // Evaluate both ends once per state; parts = {log q, log p~, their gradients}, so the
    // interpolation at any beta needs no further evaluation.
    auto evaluateBoth = [&](const torch::Tensor& x, const torch::Tensor& a) {
        JointEvaluation q = base.evaluate(x, a), p = target.evaluate(x, a);
        JointEvaluation e;
        e.parts = {q.logProb, p.logProb, q.gradX, q.gradA, p.gradX, p.gradA};
        return e;
    };
    auto interpolate = [&](JointEvaluation e, double b) {
        const auto& v = e.parts;
        const double c = b * alpha;  // log pi_b = log q + b alpha (log p~ - log q)
        // Where log p~ = -inf and c = 0 the difference is NaN: the base alone defines pi_0.
        e.logProb = c == 0 ? v[0] : v[0] + c * (v[1] - v[0]);
        e.gradX = v[2] + c * (v[4] - v[2]);
        e.gradA = v[3] + c * (v[5] - v[3]);
        return e;
    };
    torch::Tensor x = x0.detach(), a = a0.detach();
    JointEvaluation e = evaluateBoth(x, a);
    torch::Tensor logW = torch::zeros({x.size(0)}, torch::kFloat64).to(x.device());
    AisResult r;
    for (int j = 1; j <= n + 1; j++) {
        const double dBeta = beta(j) - beta(j - 1);
        logW = logW + dBeta * alpha * (e.parts[1] - e.parts[0]).to(torch::kFloat64);
        if (j > n)
            break;
        const double b = beta(j);
        HmcResult h = hmcStep([&](const torch::Tensor& xp, const torch::Tensor& ap) {
                                  return interpolate(evaluateBoth(xp, ap), b);
                              },
                              x, a, interpolate(e, b), stepSizes[j - 1], opts.numLeapfrog, generator);
        x = h.x;
        a = h.a;
        e = h.evaluation;
        r.acceptance.push_back(h.accepted.to(torch::kFloat64).mean().item<double>());
    }
    if (adapt)
        for (int j = 0; j < n; j++)
            stepSizes[j] = r.acceptance[j] > opts.targetAcceptance ? stepSizes[j] * opts.stepSizeFactor
                                                                   : stepSizes[j] / opts.stepSizeFactor;
    r.x = x;
    r.a = a;
    r.logWeights = logW;
    r.logQ = e.parts[0].to(torch::kFloat64);
    return r;
}

AisResult AnnealedImportanceSampler::runFromFlow(Model& model, JointLogDensity& target, int64_t n,
                                                 torch::Generator& generator, bool adapt) {
    ModelSample s;
    {
        torch::NoGradGuard noGrad;
        s = model.sample(n, generator);
    }
    FlowJointDensity base(model);
    return run(base, target, s.x, s.aux, generator, adapt);
}

PrioritisedReplayBuffer::PrioritisedReplayBuffer(int64_t capacity) : cap(capacity) {
    TORCH_CHECK(capacity >= 1, "replay buffer: the capacity must be positive");
}

void PrioritisedReplayBuffer::add(const torch::Tensor& xNew, const torch::Tensor& aNew, const torch::Tensor& logWNew,
                                  const torch::Tensor& logQNew) {
    torch::NoGradGuard noGrad;
    int64_t n = xNew.size(0);
    TORCH_CHECK(aNew.size(0) == n && logWNew.size(0) == n && logQNew.size(0) == n,
                "replay buffer: x, a, log w and log q must hold the same number of samples");
    if (!x.defined()) {
        auto shape = [&](const torch::Tensor& t) {
            std::vector<int64_t> s = t.sizes().vec();
            s[0] = cap;
            return s;
        };
        x = torch::zeros(shape(xNew), xNew.options());
        a = torch::zeros(shape(aNew), aNew.options());
        logW = torch::full({cap}, -INFINITY, torch::kFloat64);
        logQOld = torch::zeros({cap}, torch::kFloat64);
    }
    int64_t first = 0;
    if (n > cap) {  // only the newest cap samples survive
        first = n - cap;
        n = cap;
    }
    torch::Tensor idx = (torch::arange(n, torch::kLong) + next) % cap;
    torch::Tensor w = logWNew.narrow(0, first, n).detach().to(torch::kCPU, torch::kFloat64);
    w = torch::where(torch::isnan(w), torch::full_like(w, -INFINITY), w);
    x.index_copy_(0, idx, xNew.narrow(0, first, n).detach().to(x.options()));
    a.index_copy_(0, idx, aNew.narrow(0, first, n).detach().to(a.options()));
    logW.index_copy_(0, idx, w);
    logQOld.index_copy_(0, idx, logQNew.narrow(0, first, n).detach().to(torch::kCPU, torch::kFloat64));
    next = (next + n) % cap;
    count = std::min(cap, count + n);
}

PrioritisedReplayBuffer::Batch PrioritisedReplayBuffer::sample(int64_t n, torch::Generator& generator) const {
    TORCH_CHECK(n >= 1 && n <= count, "replay buffer: cannot draw ", n, " distinct samples from ", count);
    torch::NoGradGuard noGrad;
    // Gumbel-top-k: the k largest of log w_i + G_i (G_i standard Gumbel) are distributed as k
    // sequential draws without replacement with probabilities proportional to w_i.
    torch::Tensor u = torch::rand({count}, generator, torch::kFloat64);
    torch::Tensor keys = logW.narrow(0, 0, count) - torch::log(-torch::log(u));
    torch::Tensor indices = std::get<1>(torch::topk(keys, n));
    return {x.index_select(0, indices), a.index_select(0, indices), logQOld.index_select(0, indices), indices};
}

void PrioritisedReplayBuffer::adjust(const torch::Tensor& indices, const torch::Tensor& logQNew, double alpha) {
    torch::NoGradGuard noGrad;
    torch::Tensor q = logQNew.detach().to(torch::kCPU, torch::kFloat64);
    torch::Tensor w = logW.index_select(0, indices) + (1 - alpha) * (q - logQOld.index_select(0, indices));
    // A sample the flow now gives no finite density would get weight +inf for alpha > 1: drop it.
    w = torch::where(torch::isnan(w) | torch::logical_not(torch::isfinite(q)), torch::full_like(w, -INFINITY), w);
    logW.index_copy_(0, indices, w);
    logQOld.index_copy_(0, indices, q);
}

void PrioritisedReplayBuffer::store(TensorArchive& archive, const std::string& prefix) const {
    archive.tensors.emplace_back(prefix + "/state", torch::tensor({cap, count, next}, torch::kLong));
    if (!x.defined())
        return;
    archive.tensors.emplace_back(prefix + "/x", x);
    archive.tensors.emplace_back(prefix + "/a", a);
    archive.tensors.emplace_back(prefix + "/log_w", logW);
    archive.tensors.emplace_back(prefix + "/log_q", logQOld);
}

void PrioritisedReplayBuffer::restore(const TensorArchive& archive, const std::string& prefix, const std::string& source) {
    // {capacity, count, next}: integers far below 2^53, exact in float64.
    const std::vector<double> s = archive.getDoubles(prefix + "/state", source);
    if (s.size() != 3)
        throw std::runtime_error("checkpoint '" + source + "': replay buffer state has " + std::to_string(s.size()) +
                                 " values, expected 3");
    if (int64_t(s[0]) != cap)
        throw std::runtime_error("checkpoint '" + source + "': replay buffer capacity " +
                                 std::to_string(int64_t(s[0])) + ", expected " + std::to_string(cap));
    count = int64_t(s[1]);
    next = int64_t(s[2]);
    if (!archive.has(prefix + "/x")) {
        x = a = logW = logQOld = torch::Tensor();
        return;
    }
    x = archive.get(prefix + "/x", source).clone();
    a = archive.get(prefix + "/a", source).clone();
    logW = archive.get(prefix + "/log_w", source).clone();
    logQOld = archive.get(prefix + "/log_q", source).clone();
}

}  // namespace OpenMMBG
