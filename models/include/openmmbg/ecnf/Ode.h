#pragma once
/**
 * Integration of an ODE dy/dt = f(t, y) whose state is a list of tensors (e.g. positions [B, N, D]
 * and a log-density accumulator [B]), for continuous normalizing flows. The whole state shares one
 * time grid (one step size for the batch, as torchdiffeq), so a batch integrates in lock step.
 *
 *  - "dopri5": the adaptive Dormand-Prince 5(4) pair (Dormand and Prince 1980; Hairer, Norsett and
 *    Wanner, Solving ODEs I, II.4-5): 7 stages with FSAL (6 evaluations per step), the 5th-order
 *    solution propagated, error = max over tensors and over the batch (each tensor's dimension 0)
 *    of the RMS over a sample's components of (y5 - y4) / (atol + rtol max(|y0|, |y1|)), so every
 *    sample meets the tolerance; step accepted when error <= 1, new step
 *    h 0.9 error^(-1/5) within [0.2 h, 10 h]; the first step by Hairer's starting-step heuristic.
 *  - "rk4": classical 4th-order Runge-Kutta with `fixedSteps` equal steps.
 *
 * Gradients flow through the steps (discretise-then-optimise) when the caller records them; the
 * step-size decisions themselves are not differentiated.
 */
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace OpenMMBG {

using OdeState = std::vector<torch::Tensor>;
/** The right-hand side f(t, y): a list of tensors shaped like y. */
using OdeFunction = std::function<OdeState(double t, const OdeState& y)>;

struct OdeOptions {
    std::string method = "dopri5";  ///< "dopri5" or "rk4"
    double rtol = 1e-5, atol = 1e-5;  ///< dopri5's tolerances
    int fixedSteps = 50;              ///< rk4's number of steps
    int maxSteps = 10000;             ///< dopri5: attempted steps before std::runtime_error
};

struct OdeResult {
    OdeState y;                      ///< the state at t1
    int64_t functionEvaluations = 0; ///< evaluations of f
    int64_t acceptedSteps = 0;
    int64_t rejectedSteps = 0;
};

/**
 * Integrate from t0 to t1 (t1 < t0 integrates backwards). Throws std::invalid_argument for an
 * unknown method or an empty state, and std::runtime_error when dopri5 exceeds maxSteps or its
 * error is not finite (a diverging field).
 */
OdeResult integrateOde(const OdeFunction& f, const OdeState& y0, double t0, double t1, const OdeOptions& options);

}  // namespace OpenMMBG
