#pragma once
/**
 * The acceptance rule of BoltzmannGeneratorProposal, as pure functions: an independence
 * Metropolis-Hastings move on the extended space (x, aux) of a flow proposal, with target
 * p(x) pi(aux|x) and proposal q(x, aux). Derivation: docs/boltzmann-generator-proposal.md.
 */
#include <cmath>
#include <limits>
#include <random>

namespace OpenMMBG {

/** What the acceptance rule needs of one state (x, aux). */
struct ExtendedState {
    double energy;              ///< U(x), kJ/mol: the Context's potential energy
    double logAuxiliaryTarget;  ///< log pi(aux|x) (0 for models without auxiliary variables)
    double logQ;                ///< log q(x, aux), the model's joint log-density
};

/**
 * log alpha = [-U(x')/kT + log pi(aux'|x') - log q(x', aux')] - [-U(x)/kT + log pi(aux|x) - log q(x, aux)]
 * for a move from `current` to `trial` at kT (kJ/mol). A trial whose energy is not finite, whose
 * log q is not finite, or a NaN ratio gives -infinity (always rejected). A model reports
 * log q = -inf for a draw outside its valid domain (e.g. a negative bond length of the
 * internal-coordinate family): such a draw is no proposal of the model's density, and rejecting it
 * keeps the move exact (the outside mass only adds rejections; docs/internal-coordinates.md).
 */
inline double logAcceptanceRatio(const ExtendedState& current, const ExtendedState& trial, double kT) {
    const double logAlpha = (-trial.energy / kT + trial.logAuxiliaryTarget - trial.logQ) -
                            (-current.energy / kT + current.logAuxiliaryTarget - current.logQ);
    if (!std::isfinite(trial.energy) || !std::isfinite(trial.logQ) || std::isnan(logAlpha))
        return -std::numeric_limits<double>::infinity();
    return logAlpha;
}

/**
 * Accept with probability min(1, exp(logAlpha)); one uniform number is drawn from `random`, and
 * only when logAlpha < 0.
 */
inline bool acceptMove(double logAlpha, std::mt19937_64& random) {
    if (logAlpha >= 0)
        return true;
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    return uniform(random) < std::exp(logAlpha);
}

}  // namespace OpenMMBG
