#pragma once
/**
 * The built-in targets of docs/eacf-mapping.md#target-energies: the DW4 double well and the LJ13/LJ55
 * Lennard-Jones clusters with a harmonic tether to the centroid. Energies are reduced (kT = 1);
 * one length unit is 1 nm and one energy unit 1 kJ/mol (kT = 1 kJ/mol at 120.27 K). See
 * docs/targets.md for the formulas and for the pair-sum convention of the LJ data.
 *
 * Shapes: x [B, N, D] of any floating dtype on any device; energies [B] in x's dtype and device.
 * Energies are differentiable with respect to x through autograd.
 */
#include "openmmbg/targets/Target.h"

#include <string>

namespace OpenMMBG {

/**
 * Double-well pair potential (DW4 for N = 4, D = 2):
 *   U(x) = 1/(2 tau) sum_{i != j} [a (d_ij - d0) + b (d_ij - d0)^2 + c (d_ij - d0)^4],
 * i.e. (1/tau) times the sum over unordered pairs; d_ij = |x_i - x_j|. Translation, rotation and
 * permutation invariant.
 */
class DoubleWellTarget : public Target {
public:
    /**
     * @param numParticles N (default 4)
     * @param dim          D (default 2)
     * @param a, b, c      polynomial coefficients (defaults 0, -4, 0.9)
     * @param d0           well offset distance (default 4)
     * @param tau          temperature factor (default 1)
     */
    explicit DoubleWellTarget(int numParticles = 4, int dim = 2, double a = 0.0, double b = -4.0, double c = 0.9,
                              double d0 = 4.0, double tau = 1.0);
    int numParticles() const override { return numParticles_; }
    int dim() const override { return dim_; }
    /** "dw4" for the default 4-particle 2-D target, else "double-well". */
    std::string name() const override;
    torch::Tensor energy(const torch::Tensor& x) override;

private:
    int numParticles_, dim_;
    double a_, b_, c_, d0_, tau_;
};

/**
 * Lennard-Jones cluster with a harmonic tether to the centroid (LJ13 for N = 13, LJ55 for N = 55):
 *   U(x) = pairFactor * eps / tau * sum_{i != j} [(rm/d_ij)^12 - 2 (rm/d_ij)^6]
 *          + tether * sum_i |x_i - xbar|^2,   xbar = mean_i x_i.
 * pairFactor = 1.0 (the default) counts each unordered pair twice: a dimer at d = rm has pair
 * energy -2 eps. This is the convention the LJ13 data in ../shared/data/efm follows (checked by
 * scripts/analysis/lj_convention.py; docs/targets.md). pairFactor = 0.5 is the textbook convention
 * of the E-ACF paper's formula (docs/eacf-mapping.md#target-energies), eps/(2 tau) sum_{i != j} (each unordered pair once, dimer -eps);
 * it is a different distribution (that of pairFactor 1.0 at twice the temperature for the pair term).
 * Translation (the tether uses the centroid), rotation and permutation invariant.
 */
class LennardJonesTarget : public Target {
public:
    /** The pair factor of the built-in lj13/lj55 targets (1.0: each unordered pair twice, as the data). */
    static constexpr double kDefaultPairFactor = 1.0;
    /**
     * @param numParticles N (>= 2)
     * @param pairFactor   factor on the ordered-pair sum (1.0 = kDefaultPairFactor, as the LJ13 data; 0.5 = each unordered pair once)
     * @param eps          well depth (default 1)
     * @param rm           distance of the pair minimum (default 1)
     * @param tau          temperature factor on the pair term (default 1)
     * @param tether       coefficient of sum_i |x_i - xbar|^2 (default 0.5; 0 disables)
     * @param dim          D (default 3)
     */
    explicit LennardJonesTarget(int numParticles, double pairFactor = kDefaultPairFactor, double eps = 1.0,
                                double rm = 1.0, double tau = 1.0, double tether = 0.5, int dim = 3);
    int numParticles() const override { return numParticles_; }
    int dim() const override { return dim_; }
    /** "lj<N>" (e.g. "lj13") for the default parameters in 3-D, else "lennard-jones". */
    std::string name() const override;
    torch::Tensor energy(const torch::Tensor& x) override;
    double pairFactor() const { return pairFactor_; }

private:
    int numParticles_, dim_;
    double pairFactor_, eps_, rm_, tau_, tether_;
};

}  // namespace OpenMMBG
