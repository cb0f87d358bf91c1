#include "openmmbg/eacf/Projections.h"

#include <cmath>

namespace OpenMMBG {

namespace {

torch::Tensor rowDot(const torch::Tensor& a, const torch::Tensor& b) { return (a * b).sum(-1); }

torch::Tensor normalize(const torch::Tensor& v) {
    return v / torch::sqrt(rowDot(v, v)).clamp_min(1e-30).unsqueeze(-1);
}

// 90-degree rotation of 2-D vectors.
torch::Tensor rotate90(const torch::Tensor& v) { return torch::stack({-v.select(-1, 1), v.select(-1, 0)}, -1); }

// Sum everything but the batch axis.
torch::Tensor perSample(const torch::Tensor& t) { return t.reshape({t.size(0), -1}).sum(1); }

// Collinearity penalty -log(1 - |cos|) between u and v, with no penalty where 1 - |cos| < 1e-4 so
// gradients stay finite; averaged per sample.
torch::Tensor collinearityPenalty(const torch::Tensor& u, const torch::Tensor& v) {
    torch::Tensor c = rowDot(u, v) / (torch::sqrt(rowDot(u, u) * rowDot(v, v)).clamp_min(1e-30));
    torch::Tensor b = 1 - torch::abs(c);
    b = torch::where(b < 1e-4, torch::ones_like(b), b);
    torch::Tensor penalty = -torch::log(b);
    return penalty.reshape({penalty.size(0), -1}).mean(1);
}

}  // namespace

SphericalProjection::SphericalProjection(int dim, int numBins, double maxRadius)
    : dim(dim), radius(0.0, maxRadius, numBins), polar(0.0, M_PI, numBins), torsion(-M_PI, M_PI, numBins, true) {
    TORCH_CHECK(dim == 2 || dim == 3, "SphericalProjection: dim must be 2 or 3");
}

int SphericalProjection::numParams() const {
    return dim == 3 ? radius.numParams() + polar.numParams() + torsion.numParams()
                    : radius.numParams() + torsion.numParams();
}

ProjectionResult SphericalProjection::apply(const torch::Tensor& points, const torch::Tensor& anchors,
                                            const torch::Tensor& vectors, const torch::Tensor& params,
                                            bool inverse) const {
    torch::Tensor origin = anchors + vectors.select(-2, 0);
    torch::Tensor d = points - origin;
    const int nr = radius.numParams();
    torch::Tensor logDet;
    ProjectionResult result;
    if (dim == 2) {
        torch::Tensor ex = normalize(vectors.select(-2, 1) - vectors.select(-2, 0));
        torch::Tensor ey = rotate90(ex);
        torch::Tensor u = rowDot(d, ex), v = rowDot(d, ey);
        torch::Tensor r = torch::sqrt(u * u + v * v), phi = torch::atan2(v, u);
        auto [r2, lr] = radius.apply(r, params.narrow(-1, 0, nr), inverse);
        auto [phi2, lphi] = torsion.apply(phi, params.narrow(-1, nr, torsion.numParams()), inverse);
        torch::Tensor d2 = r2.unsqueeze(-1) * (torch::cos(phi2).unsqueeze(-1) * ex + torch::sin(phi2).unsqueeze(-1) * ey);
        // Cartesian <-> polar: |det| = r.
        result.points = origin + d2;
        result.logDet = perSample(lr + lphi + torch::log(r2) - torch::log(r));
        return result;
    }
    torch::Tensor zAxis = vectors.select(-2, 1) - vectors.select(-2, 0);
    torch::Tensor oAxis = vectors.select(-2, 2) - vectors.select(-2, 0);
    torch::Tensor ez = normalize(zAxis);
    torch::Tensor ex = normalize(oAxis - rowDot(oAxis, ez).unsqueeze(-1) * ez);
    torch::Tensor ey = normalize(torch::cross(ex, ez, -1));
    torch::Tensor u = rowDot(d, ex), v = rowDot(d, ey), w = rowDot(d, ez);
    torch::Tensor rho = torch::sqrt(u * u + v * v);
    torch::Tensor r = torch::sqrt(rho * rho + w * w);
    torch::Tensor theta = torch::atan2(rho, w), phi = torch::atan2(v, u);
    const int np = polar.numParams();
    auto [r2, lr] = radius.apply(r, params.narrow(-1, 0, nr), inverse);
    auto [theta2, ltheta] = polar.apply(theta, params.narrow(-1, nr, np), inverse);
    auto [phi2, lphi] = torsion.apply(phi, params.narrow(-1, nr + np, torsion.numParams()), inverse);
    torch::Tensor s2 = torch::sin(theta2);
    torch::Tensor d2 = r2.unsqueeze(-1) * ((s2 * torch::cos(phi2)).unsqueeze(-1) * ex +
                                           (s2 * torch::sin(phi2)).unsqueeze(-1) * ey +
                                           torch::cos(theta2).unsqueeze(-1) * ez);
    // Cartesian <-> spherical: |det| = r^2 sin(theta).
    torch::Tensor jacIn = 2 * torch::log(r) + torch::log(torch::sin(theta));
    torch::Tensor jacOut = 2 * torch::log(r2) + torch::log(s2);
    result.points = origin + d2;
    result.logDet = perSample(lr + ltheta + lphi + jacOut - jacIn);
    result.aux = collinearityPenalty(zAxis, oAxis);
    return result;
}

CartesianProjection::CartesianProjection(int dim, std::shared_ptr<ScalarTransform> transform)
    : dim(dim), transform(std::move(transform)) {
    TORCH_CHECK(dim == 2 || dim == 3, "CartesianProjection: dim must be 2 or 3");
}

ProjectionResult CartesianProjection::apply(const torch::Tensor& points, const torch::Tensor& anchors,
                                            const torch::Tensor& vectors, const torch::Tensor& params,
                                            bool inverse) const {
    torch::Tensor origin = anchors + vectors.select(-2, 0);
    torch::Tensor v1 = vectors.select(-2, 1);
    torch::Tensor e0 = normalize(v1);
    std::vector<torch::Tensor> basis = {e0};
    ProjectionResult result;
    if (dim == 2) {
        basis.push_back(rotate90(e0));
    } else {
        torch::Tensor v2 = normalize(vectors.select(-2, 2));
        torch::Tensor e1 = normalize(v2 - rowDot(v2, e0).unsqueeze(-1) * e0);
        basis.push_back(e1);
        basis.push_back(normalize(torch::cross(e0, e1, -1)));
        result.aux = collinearityPenalty(v1, vectors.select(-2, 2));
    }
    torch::Tensor d = points - origin;
    torch::Tensor out = origin;
    torch::Tensor logDet = torch::zeros({points.size(0)}, points.options());
    const int np = transform->numParams();
    for (int k = 0; k < dim; k++) {
        auto [uk, lk] = transform->apply(rowDot(d, basis[k]), params.narrow(-1, k * np, np), inverse);
        out = out + uk.unsqueeze(-1) * basis[k];
        logDet = logDet + perSample(lk);
    }
    result.points = out;
    result.logDet = logDet;
    return result;
}

VectorProjection::VectorProjection(int dim, int numBins, double maxRadius)
    : dim(dim), radius(0.0, maxRadius, numBins) {
    TORCH_CHECK(dim == 2 || dim == 3, "VectorProjection: dim must be 2 or 3");
}

ProjectionResult VectorProjection::apply(const torch::Tensor& points, const torch::Tensor& anchors,
                                         const torch::Tensor& vectors, const torch::Tensor& params,
                                         bool inverse) const {
    torch::Tensor p = points;
    torch::Tensor logDet = torch::zeros({points.size(0)}, points.options());
    const int np = radius.numParams();
    for (int step = 0; step < dim; step++) {
        int k = inverse ? dim - 1 - step : step;  // the inverse undoes the inner transforms in reverse order
        torch::Tensor ref = anchors + vectors.select(-2, k);
        torch::Tensor d = p - ref;
        torch::Tensor r = torch::sqrt(rowDot(d, d));
        auto [r2, lr] = radius.apply(r, params.narrow(-1, k * np, np), inverse);
        p = ref + d * (r2 / r).unsqueeze(-1);
        // Radial scaling in D dimensions: |det| = r'^(D-1) / r^(D-1) * dr'/dr.
        logDet = logDet + perSample(lr + (dim - 1) * (torch::log(r2) - torch::log(r)));
    }
    return {p, logDet, torch::Tensor()};
}

AmbientProjection::AmbientProjection(int dim, std::shared_ptr<ScalarTransform> transform)
    : dim(dim), transform(std::move(transform)) {}

ProjectionResult AmbientProjection::apply(const torch::Tensor& points, const torch::Tensor& anchors,
                                          const torch::Tensor& vectors, const torch::Tensor& params,
                                          bool inverse) const {
    const int np = transform->numParams();
    torch::Tensor p = params.view({params.size(0), params.size(1), params.size(2), dim, np});
    auto [u, l] = transform->apply(points - anchors, p, inverse);
    return {anchors + u, perSample(l), torch::Tensor()};
}

}  // namespace OpenMMBG
