#pragma once
/**
 * Projections: how a coupling turns equivariant reference vectors into a local coordinate frame
 * for each transformed point, applies scalar transforms there, and maps back. Each projection is a
 * part given to a coupling (composition), so a new projection is a new class, not a new branch.
 *
 * Shapes: points and anchors [B, N, m, D]; vectors [B, N, m, numVectors(), D];
 * params [B, N, m, numParams()]. Anchors are the conditioning positions the reference points are
 * built from (x1_i in the paper).
 */
#include "openmmbg/transforms/ScalarTransforms.h"

#include <memory>
#include <vector>

namespace OpenMMBG {

struct ProjectionResult {
    torch::Tensor points;  ///< transformed points [B, N, m, D]
    torch::Tensor logDet;  ///< log|det J| of the map applied [B]
    torch::Tensor aux;     ///< collinearity penalty averaged over nodes, slots and frames [B]; undefined if none
};

class Projection {
public:
    virtual ~Projection() = default;
    virtual int numVectors() const = 0;
    virtual int numParams() const = 0;
    virtual ProjectionResult apply(const torch::Tensor& points, const torch::Tensor& anchors,
                                   const torch::Tensor& vectors, const torch::Tensor& params, bool inverse) const = 0;
};

/**
 * Spherical-proj. 3-D: origin = anchor + v0, polar axis towards anchor + v1, azimuth reference
 * towards anchor + v2; r (spline on [0, rMax]), polar angle (spline on [0, pi]) and torsion
 * (circular spline on [-pi, pi]). 2-D: polar coordinates about origin = anchor + v0 with axis
 * towards anchor + v1; r and a circular angle.
 */
class SphericalProjection : public Projection {
public:
    SphericalProjection(int dim, int numBins, double maxRadius);
    int numVectors() const override { return dim == 3 ? 3 : 2; }
    int numParams() const override;
    ProjectionResult apply(const torch::Tensor& points, const torch::Tensor& anchors, const torch::Tensor& vectors,
                           const torch::Tensor& params, bool inverse) const override;

private:
    int dim;
    RationalQuadraticSpline radius, polar, torsion;
};

/**
 * Cartesian-proj: origin = anchor + v0 and an orthonormal basis from v1, v2 (Gram-Schmidt, third
 * axis by cross product; in 2-D the second axis is v1 rotated by 90 degrees); each coordinate in
 * that frame is transformed by `transform`.
 */
class CartesianProjection : public Projection {
public:
    CartesianProjection(int dim, std::shared_ptr<ScalarTransform> transform);
    int numVectors() const override { return dim == 3 ? 3 : 2; }
    int numParams() const override { return dim * transform->numParams(); }
    ProjectionResult apply(const torch::Tensor& points, const torch::Tensor& anchors, const torch::Tensor& vectors,
                           const torch::Tensor& params, bool inverse) const override;

private:
    int dim;
    std::shared_ptr<ScalarTransform> transform;
};

/**
 * Vector-proj: D inner transforms; the k-th moves the point radially about anchor + v_k with a
 * spline on its distance [0, rMax]. Uses no cross product, so it is parity equivariant.
 */
class VectorProjection : public Projection {
public:
    VectorProjection(int dim, int numBins, double maxRadius);
    int numVectors() const override { return dim; }
    int numParams() const override { return dim * radius.numParams(); }
    ProjectionResult apply(const torch::Tensor& points, const torch::Tensor& anchors, const torch::Tensor& vectors,
                           const torch::Tensor& params, bool inverse) const override;

private:
    int dim;
    RationalQuadraticSpline radius;
};

/**
 * No projection (Non-E-ACF baseline): each Cartesian component of (point - anchor) is transformed
 * by `transform` in the lab frame. Translation equivariant, not rotation equivariant.
 */
class AmbientProjection : public Projection {
public:
    AmbientProjection(int dim, std::shared_ptr<ScalarTransform> transform);
    int numVectors() const override { return 0; }
    int numParams() const override { return dim * transform->numParams(); }
    ProjectionResult apply(const torch::Tensor& points, const torch::Tensor& anchors, const torch::Tensor& vectors,
                           const torch::Tensor& params, bool inverse) const override;

private:
    int dim;
    std::shared_ptr<ScalarTransform> transform;
};

}  // namespace OpenMMBG
