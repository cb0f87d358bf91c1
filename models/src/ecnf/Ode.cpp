#include "openmmbg/ecnf/Ode.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace OpenMMBG {

namespace {

// y + h sum_k c_k k_k, tensor by tensor (c_k = 0 terms skipped).
OdeState combine(const OdeState& y, double h, const std::vector<std::pair<double, const OdeState*>>& terms) {
    OdeState out;
    out.reserve(y.size());
    for (size_t i = 0; i < y.size(); i++) {
        torch::Tensor sum;
        for (const auto& [c, k] : terms) {
            if (c == 0)
                continue;
            torch::Tensor term = (*k)[i] * (h * c);
            sum = sum.defined() ? sum + term : term;
        }
        out.push_back(sum.defined() ? y[i] + sum : y[i]);
    }
    return out;
}

// The error norm: max over tensors and over the batch (dimension 0) of the RMS over one sample's
// components of v / (atol + rtol max(|a|, |b|)), in float64 and without gradients. Per sample, so
// that every sample of a batch meets the tolerance (an RMS over the whole batch would let a few
// hard samples through).
double scaledNorm(const OdeState& v, const OdeState& a, const OdeState& b, double rtol, double atol) {
    torch::NoGradGuard noGrad;
    double norm = 0;
    for (size_t i = 0; i < v.size(); i++) {
        if (v[i].numel() == 0)
            continue;
        const torch::Tensor scale =
            atol + rtol * torch::maximum(a[i].detach().abs(), b[i].detach().abs()).to(torch::kFloat64);
        const torch::Tensor ratio = (v[i].detach().to(torch::kFloat64) / scale).pow(2);
        const torch::Tensor perSample = ratio.dim() == 0 ? ratio : ratio.reshape({ratio.size(0), -1}).mean(1);
        const double rms = perSample.max().sqrt().item<double>();
        if (std::isnan(rms))
            return rms;
        norm = std::max(norm, rms);
    }
    return norm;
}

// Dormand-Prince 5(4) tableau.
constexpr double C2 = 1.0 / 5, C3 = 3.0 / 10, C4 = 4.0 / 5, C5 = 8.0 / 9;
constexpr double A21 = 1.0 / 5;
constexpr double A31 = 3.0 / 40, A32 = 9.0 / 40;
constexpr double A41 = 44.0 / 45, A42 = -56.0 / 15, A43 = 32.0 / 9;
constexpr double A51 = 19372.0 / 6561, A52 = -25360.0 / 2187, A53 = 64448.0 / 6561, A54 = -212.0 / 729;
constexpr double A61 = 9017.0 / 3168, A62 = -355.0 / 33, A63 = 46732.0 / 5247, A64 = 49.0 / 176, A65 = -5103.0 / 18656;
// 5th-order weights (also the 7th stage's row: FSAL).
constexpr double B1 = 35.0 / 384, B3 = 500.0 / 1113, B4 = 125.0 / 192, B5 = -2187.0 / 6784, B6 = 11.0 / 84;
// Error weights: 5th minus 4th order.
constexpr double E1 = 71.0 / 57600, E3 = -71.0 / 16695, E4 = 71.0 / 1920, E5 = -17253.0 / 339200, E6 = 22.0 / 525,
                 E7 = -1.0 / 40;

OdeResult dopri5(const OdeFunction& f, const OdeState& y0, double t0, double t1, const OdeOptions& o) {
    OdeResult r;
    const double direction = t1 > t0 ? 1.0 : -1.0, span = std::abs(t1 - t0);
    auto eval = [&](double t, const OdeState& y) {
        r.functionEvaluations++;
        return f(t, y);
    };
    OdeState y = y0, k1 = eval(t0, y0);
    // Hairer's starting step (Solving ODEs I, II.4): from the sizes of y0, f(y0) and a trial Euler step.
    double h;
    {
        const double d0 = scaledNorm(y0, y0, y0, o.rtol, o.atol), d1 = scaledNorm(k1, y0, y0, o.rtol, o.atol);
        double h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
        h0 = std::min(h0, span);
        const OdeState y1 = combine(y0, direction * h0, {{1.0, &k1}});
        const OdeState f1 = eval(t0 + direction * h0, y1);
        OdeState diff;
        for (size_t i = 0; i < f1.size(); i++)
            diff.push_back((f1[i] - k1[i]) / h0);
        const double d2 = scaledNorm(diff, y0, y0, o.rtol, o.atol);
        const double h1 = std::max(d1, d2) <= 1e-15 ? std::max(1e-6, h0 * 1e-3) : std::pow(0.01 / std::max(d1, d2), 1.0 / 5);
        h = std::min({100 * h0, h1, span});
    }
    double t = t0;
    while (direction * (t1 - t) > 0) {
        if (r.acceptedSteps + r.rejectedSteps >= o.maxSteps)
            throw std::runtime_error("ODE solver dopri5: more than " + std::to_string(o.maxSteps) +
                                     " steps (max_steps) between t = " + std::to_string(t0) + " and " +
                                     std::to_string(t1) + "; reached t = " + std::to_string(t));
        h = std::min(h, std::abs(t1 - t));
        const double s = direction * h;
        const OdeState k2 = eval(t + C2 * s, combine(y, s, {{A21, &k1}}));
        const OdeState k3 = eval(t + C3 * s, combine(y, s, {{A31, &k1}, {A32, &k2}}));
        const OdeState k4 = eval(t + C4 * s, combine(y, s, {{A41, &k1}, {A42, &k2}, {A43, &k3}}));
        const OdeState k5 = eval(t + C5 * s, combine(y, s, {{A51, &k1}, {A52, &k2}, {A53, &k3}, {A54, &k4}}));
        const OdeState k6 = eval(t + s, combine(y, s, {{A61, &k1}, {A62, &k2}, {A63, &k3}, {A64, &k4}, {A65, &k5}}));
        const OdeState y5 = combine(y, s, {{B1, &k1}, {B3, &k3}, {B4, &k4}, {B5, &k5}, {B6, &k6}});
        const OdeState k7 = eval(t + s, y5);
        OdeState error;
        for (size_t i = 0; i < y.size(); i++)
            error.push_back(s * (E1 * k1[i] + E3 * k3[i] + E4 * k4[i] + E5 * k5[i] + E6 * k6[i] + E7 * k7[i]));
        const double norm = scaledNorm(error, y, y5, o.rtol, o.atol);
        if (!std::isfinite(norm))
            throw std::runtime_error("ODE solver dopri5: the error estimate is not finite at t = " + std::to_string(t) +
                                     " (the vector field diverged)");
        if (norm <= 1) {
            t = std::abs(t1 - (t + s)) < 1e-12 * std::max(1.0, span) ? t1 : t + s;
            y = y5;
            k1 = k7;  // first same as last
            r.acceptedSteps++;
        } else {
            r.rejectedSteps++;
        }
        const double factor = norm == 0 ? 10.0 : std::clamp(0.9 * std::pow(norm, -1.0 / 5), 0.2, 10.0);
        h *= norm <= 1 ? factor : std::min(1.0, factor);
    }
    r.y = y;
    return r;
}

OdeResult rk4(const OdeFunction& f, const OdeState& y0, double t0, double t1, const OdeOptions& o) {
    OdeResult r;
    const double h = (t1 - t0) / o.fixedSteps;
    OdeState y = y0;
    for (int step = 0; step < o.fixedSteps; step++) {
        const double t = t0 + step * h;
        const OdeState k1 = f(t, y);
        const OdeState k2 = f(t + h / 2, combine(y, h, {{0.5, &k1}}));
        const OdeState k3 = f(t + h / 2, combine(y, h, {{0.5, &k2}}));
        const OdeState k4 = f(t + h, combine(y, h, {{1.0, &k3}}));
        y = combine(y, h, {{1.0 / 6, &k1}, {1.0 / 3, &k2}, {1.0 / 3, &k3}, {1.0 / 6, &k4}});
        r.functionEvaluations += 4;
        r.acceptedSteps++;
    }
    r.y = y;
    return r;
}

}  // namespace

OdeResult integrateOde(const OdeFunction& f, const OdeState& y0, double t0, double t1, const OdeOptions& options) {
    if (y0.empty())
        throw std::invalid_argument("ODE solver: the state is empty");
    if (!(options.rtol > 0 && options.atol > 0 && options.fixedSteps >= 1 && options.maxSteps >= 1))
        throw std::invalid_argument("ODE solver: rtol, atol, fixed steps and max steps must be positive");
    if (t0 == t1) {
        OdeResult r;
        r.y = y0;
        return r;
    }
    if (options.method == "dopri5")
        return dopri5(f, y0, t0, t1, options);
    if (options.method == "rk4")
        return rk4(f, y0, t0, t1, options);
    throw std::invalid_argument("ODE solver: unknown method \"" + options.method + "\" (expected \"dopri5\" or \"rk4\")");
}

}  // namespace OpenMMBG
