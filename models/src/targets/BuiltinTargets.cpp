// The built-in targets DW4, LJ13 and LJ55 (see BuiltinTargets.h and docs/targets.md).
#include "openmmbg/targets/BuiltinTargets.h"

#include <stdexcept>

namespace OpenMMBG {

namespace {

/** Checks x is [B, N, D] floating point; throws std::invalid_argument naming the target. */
void checkInput(const torch::Tensor& x, int N, int D, const std::string& who) {
    if (!x.defined() || x.dim() != 3 || x.size(1) != N || x.size(2) != D)
        throw std::invalid_argument(who + ": expected positions of shape [B, " + std::to_string(N) + ", " +
                                    std::to_string(D) + "], got " +
                                    (x.defined() ? c10::str(x.sizes()) : std::string("an undefined tensor")));
    if (!x.is_floating_point())
        throw std::invalid_argument(who + ": positions must be floating point, got " + c10::str(x.scalar_type()));
}

/**
 * Squared distances over unordered pairs i < j: [B, N (N - 1) / 2]. There are no i == j entries, so
 * a sqrt of them stays differentiable for distinct particles.
 */
torch::Tensor pairSquaredDistances(const torch::Tensor& x) {
    const int64_t N = x.size(1);
    torch::Tensor idx = torch::triu_indices(N, N, 1, torch::TensorOptions().dtype(torch::kLong).device(x.device()));
    torch::Tensor diff = x.index_select(1, idx[0]) - x.index_select(1, idx[1]);  // [B, P, D]
    return diff.pow(2).sum(-1);
}

}  // namespace

DoubleWellTarget::DoubleWellTarget(int numParticles, int dim, double a, double b, double c, double d0, double tau)
    : numParticles_(numParticles), dim_(dim), a_(a), b_(b), c_(c), d0_(d0), tau_(tau) {
    if (numParticles < 2 || dim < 1)
        throw std::invalid_argument("DoubleWellTarget: need at least 2 particles and 1 dimension, got N = " +
                                    std::to_string(numParticles) + ", D = " + std::to_string(dim));
    if (!(tau > 0))
        throw std::invalid_argument("DoubleWellTarget: tau must be positive, got " + std::to_string(tau));
}

std::string DoubleWellTarget::name() const {
    bool standard = numParticles_ == 4 && dim_ == 2 && a_ == 0.0 && b_ == -4.0 && c_ == 0.9 && d0_ == 4.0 && tau_ == 1.0;
    return standard ? "dw4" : "double-well";
}

torch::Tensor DoubleWellTarget::energy(const torch::Tensor& x) {
    checkInput(x, numParticles_, dim_, "DoubleWellTarget");
    torch::Tensor s = pairSquaredDistances(x).sqrt() - d0_;
    torch::Tensor s2 = s * s;
    torch::Tensor pair = b_ * s2 + c_ * s2 * s2;
    if (a_ != 0.0)
        pair = pair + a_ * s;
    // 1/(2 tau) times the ordered-pair sum = 1/tau times the unordered-pair sum.
    return pair.sum(-1) / tau_;
}

LennardJonesTarget::LennardJonesTarget(int numParticles, double pairFactor, double eps, double rm, double tau,
                                       double tether, int dim)
    : numParticles_(numParticles), dim_(dim), pairFactor_(pairFactor), eps_(eps), rm_(rm), tau_(tau), tether_(tether) {
    if (numParticles < 2 || dim < 1)
        throw std::invalid_argument("LennardJonesTarget: need at least 2 particles and 1 dimension, got N = " +
                                    std::to_string(numParticles) + ", D = " + std::to_string(dim));
    if (!(rm > 0) || !(tau > 0))
        throw std::invalid_argument("LennardJonesTarget: rm and tau must be positive, got rm = " +
                                    std::to_string(rm) + ", tau = " + std::to_string(tau));
    if (!(pairFactor > 0))
        throw std::invalid_argument("LennardJonesTarget: pairFactor must be positive, got " +
                                    std::to_string(pairFactor));
}

std::string LennardJonesTarget::name() const {
    bool standard = dim_ == 3 && pairFactor_ == kDefaultPairFactor && eps_ == 1.0 && rm_ == 1.0 && tau_ == 1.0 &&
                    tether_ == 0.5;
    return standard ? "lj" + std::to_string(numParticles_) : "lennard-jones";
}

torch::Tensor LennardJonesTarget::energy(const torch::Tensor& x) {
    checkInput(x, numParticles_, dim_, "LennardJonesTarget");
    torch::Tensor r6 = (rm_ * rm_ / pairSquaredDistances(x)).pow(3);  // (rm/d)^6, no sqrt needed
    torch::Tensor lj = r6 * r6 - 2.0 * r6;
    // pairFactor times the ordered-pair sum = 2 pairFactor times the unordered-pair sum.
    torch::Tensor e = (2.0 * pairFactor_ * eps_ / tau_) * lj.sum(-1);
    if (tether_ != 0.0)
        e = e + tether_ * (x - x.mean(1, true)).pow(2).sum({1, 2});
    return e;
}

std::shared_ptr<Target> makeBuiltinTarget(const std::string& name) {
    if (name == "dw4")
        return std::make_shared<DoubleWellTarget>();
    if (name == "lj13")
        return std::make_shared<LennardJonesTarget>(13);
    if (name == "lj55")
        return std::make_shared<LennardJonesTarget>(55);
    throw std::invalid_argument("unknown target '" + name + "' (expected dw4, lj13 or lj55)");
}

}  // namespace OpenMMBG
