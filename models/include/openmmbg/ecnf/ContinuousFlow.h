#pragma once
/**
 * A continuous normalizing flow on configurations x [B, N, D] with zero centroid, for any vector
 * field v(t, x) that is translation invariant with zero mean over particles (so x stays on the
 * zero-centroid subspace, and the trace of its ambient N D x N D Jacobian equals the trace on that
 * subspace). The base p0 at t = 0 is the standard Gaussian on the subspace
 * (CentreOfMassFreeGaussian), the data live at t = 1, and densities follow the instantaneous change
 * of variables d log p_t(x_t)/dt = -div v(t, x_t), accumulated in float64:
 *
 *   forward (sample):  log q(x1) = log p0(x0) - integral_0^1 div v dt
 *   backward (log q):  integrate x from t = 1 to 0 and add the same integral.
 *
 * The divergence is exact (N D vector-Jacobian products in one batched call) or Hutchinson's
 * estimate eps^T J eps for a given probe eps (an unbiased estimate of the trace for eps ~ N(0, I)).
 */
#include "openmmbg/ecnf/Ode.h"

#include <torch/torch.h>

#include <functional>

namespace OpenMMBG {

/** v(t, x): t a scalar or [B] tensor, x [B, N, D]; returns [B, N, D]. */
using VectorField = std::function<torch::Tensor(const torch::Tensor& t, const torch::Tensor& x)>;

/**
 * v(t, x) [B, N, D] and div v [B] (x's dtype): exact when `probe` is undefined, else Hutchinson's
 * estimate with that probe [B, N, D]. With grad mode on, both are differentiable (in the field's
 * parameters and in x); with it off they are plain values (autograd is still used internally).
 */
std::pair<torch::Tensor, torch::Tensor> fieldAndDivergence(const VectorField& field, const torch::Tensor& t,
                                                           const torch::Tensor& x, const torch::Tensor& probe = {});

/** What one integration did. */
struct IntegrationStatistics {
    int64_t functionEvaluations = 0;  ///< evaluations of the vector field (each with its divergence)
    int64_t acceptedSteps = 0, rejectedSteps = 0;
    double meanPathLength = 0;  ///< mean over the batch of the integral of |v(t, x_t)| dt (cnfSample only)
};

struct CnfResult {
    torch::Tensor x;     ///< the other end [B, N, D], centred
    torch::Tensor logQ;  ///< log q of the data end [B], float64
    IntegrationStatistics statistics;
};

/** From base points x0 [B, N, D] (centred here) at t = 0 to samples at t = 1 with their log q. */
CnfResult cnfSample(const VectorField& field, const torch::Tensor& x0, const OdeOptions& options,
                    const torch::Tensor& probe = {});
/** From data x1 [B, N, D] (centred here) at t = 1 back to t = 0: x is the base point, logQ = log q(x1). */
CnfResult cnfLogProb(const VectorField& field, const torch::Tensor& x1, const OdeOptions& options,
                     const torch::Tensor& probe = {});

}  // namespace OpenMMBG
