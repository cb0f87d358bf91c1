// Internal coordinates: Z-matrices (explicit and from a bonded graph), the exact round trip
// Cartesian <-> internal, and the volume element log J against the autograd Jacobian in float64.
#include "FlowTestUtils.h"
#include "openmmbg/ic/InternalCoordinates.h"

#include <cmath>
#include <set>

using namespace OpenMMBG;
using namespace OpenMMBG::testing;

namespace {

// A branched 7-atom molecule: heavy chain 0-1-2-3 with 4 on 1 (heavy), hydrogens 5 (on 0) and 6 (on 3).
const std::vector<std::pair<int64_t, int64_t>> BONDS = {{0, 1}, {1, 2}, {2, 3}, {1, 4}, {0, 5}, {3, 6}};
const std::vector<bool> HEAVY = {true, true, true, true, true, false, false};

// Random but chemically plausible internal coordinates for B configurations (float64).
InternalCoordinates randomInternal(int64_t B, int64_t n, torch::Generator& g) {
    auto opts = torch::kFloat64;
    InternalCoordinates ic;
    ic.bonds = 0.1 + 0.05 * torch::rand({B, n - 1}, g, opts);
    ic.angles = 1.6 + 0.6 * torch::rand({B, n - 2}, g, opts);
    ic.dihedrals = M_PI * (2 * torch::rand({B, n - 3}, g, opts) - 1);
    return ic;
}

// Rotation R = Rz(alpha) Ry(beta) Rz(gamma) [B, 3, 3] from Euler angles [B, 3] (differentiable).
torch::Tensor euler(const torch::Tensor& angles) {
    auto rz = [](const torch::Tensor& t) {
        auto c = torch::cos(t), s = torch::sin(t), o = torch::zeros_like(t), l = torch::ones_like(t);
        return torch::stack({torch::stack({c, -s, o}, -1), torch::stack({s, c, o}, -1), torch::stack({o, o, l}, -1)}, -2);
    };
    auto ry = [](const torch::Tensor& t) {
        auto c = torch::cos(t), s = torch::sin(t), o = torch::zeros_like(t), l = torch::ones_like(t);
        return torch::stack({torch::stack({c, o, s}, -1), torch::stack({o, l, o}, -1), torch::stack({-s, o, c}, -1)}, -2);
    };
    return torch::matmul(torch::matmul(rz(angles.select(-1, 0)), ry(angles.select(-1, 1))), rz(angles.select(-1, 2)));
}

}  // namespace

TEST(ZMatrix, ExplicitRowsAreValidated) {
    EXPECT_NO_THROW(ZMatrix({{0}, {1, 0}, {2, 1, 0}, {3, 2, 1, 0}}));
    EXPECT_NO_THROW(ZMatrix({{0}, {1, 0}, {2, 0, 1}}));  // row 2 bonded to row 0
    EXPECT_THROW(ZMatrix({{0}, {1, 0}}), std::invalid_argument);                          // too few atoms
    EXPECT_THROW(ZMatrix({{0}, {1, 0}, {1, 0, 1}}), std::invalid_argument);               // atom placed twice
    EXPECT_THROW(ZMatrix({{0}, {1, 0}, {2, 1, 0}, {3, 4, 1, 0}, {4, 3, 2, 1}}), std::invalid_argument);  // not yet placed
    EXPECT_THROW(ZMatrix({{0}, {1, 0}, {2, 1, 1}}), std::invalid_argument);               // repeated reference
    EXPECT_THROW(ZMatrix({{0}, {1, 0, 2}, {2, 1, 0}}), std::invalid_argument);            // too many references
    EXPECT_THROW(ZMatrix({{0}, {1, 0}, {2, 1, 0}, {3, 2, 1}}), std::invalid_argument);    // missing dihedral
    try {
        ZMatrix({{0}, {1, 0}, {2, 1, 0}, {3, 9, 1, 0}});
        FAIL() << "an out-of-range reference was accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("row 3"), std::string::npos) << e.what();
    }
}

TEST(ZMatrix, FromBondsPlacesHeavyAtomsFirstAndEveryAtomByABond) {
    ZMatrix z = ZMatrix::fromBonds(7, BONDS, HEAVY);
    const auto& rows = z.rows();
    ASSERT_EQ(rows.size(), 7u);
    EXPECT_EQ(rows[0].atom, 1) << "the root is the heavy atom with the most heavy neighbours";
    std::set<std::pair<int64_t, int64_t>> bonded;
    for (auto [a, b] : BONDS) {
        bonded.insert({a, b});
        bonded.insert({b, a});
    }
    bool hydrogenSeen = false;
    for (size_t k = 0; k < rows.size(); k++) {
        if (!HEAVY[rows[k].atom])
            hydrogenSeen = true;
        else
            EXPECT_FALSE(hydrogenSeen) << "heavy atom " << rows[k].atom << " placed after a hydrogen";
        if (k >= 1)
            EXPECT_TRUE(bonded.count({rows[k].atom, rows[k].bond})) << "row " << k;
        if (k >= 2)
            EXPECT_TRUE(bonded.count({rows[k].bond, rows[k].angle})) << "row " << k;
        if (k >= 3)
            EXPECT_TRUE(bonded.count({rows[k].angle, rows[k].dihedral}) || bonded.count({rows[k].bond, rows[k].dihedral}))
                << "row " << k;
    }
}

TEST(ZMatrix, FromBondsRefusesDisconnectedMolecules) {
    EXPECT_THROW(ZMatrix::fromBonds(4, {{0, 1}, {1, 2}}, {true, true, true, true}), std::invalid_argument);
    EXPECT_THROW(ZMatrix::fromBonds(4, {{0, 1}, {1, 2}, {3, 3}}, {true, true, true, false}), std::invalid_argument);
    EXPECT_THROW(ZMatrix::fromBonds(4, {{0, 1}, {1, 2}, {2, 7}}, {true, true, true, false}), std::invalid_argument);
    try {
        ZMatrix::fromBonds(4, {{0, 1}, {1, 2}}, {true, true, true, false});
        FAIL() << "a free hydrogen was accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("hydrogen 3"), std::string::npos) << e.what();
    }
}

TEST(InternalCoordinateTransform, RoundTripsAreExact) {
    InternalCoordinateTransform t(ZMatrix::fromBonds(7, BONDS, HEAVY));
    torch::Generator g = generator(1);
    InternalCoordinates ic = randomInternal(64, 7, g);
    // Internal -> Cartesian (random orientation and position) -> internal.
    torch::Tensor R = euler(torch::rand({64, 3}, g, torch::kFloat64) * 6.0);
    torch::Tensor shift = torch::randn({64, 3}, g, torch::kFloat64);
    torch::Tensor x = t.toCartesian(ic, R, shift);
    InternalCoordinates back = t.toInternal(x);
    EXPECT_LT((back.bonds - ic.bonds).abs().max().item<double>(), 1e-12);
    EXPECT_LT((back.angles - ic.angles).abs().max().item<double>(), 1e-10);
    torch::Tensor dphi = torch::remainder(back.dihedrals - ic.dihedrals + M_PI, 2 * M_PI) - M_PI;
    EXPECT_LT(dphi.abs().max().item<double>(), 1e-10);
    // Cartesian -> (internal, frame) -> Cartesian: under 1e-6 nm by far.
    auto [R2, t2] = t.frame(x);
    torch::Tensor again = t.toCartesian(back, R2, t2);
    EXPECT_LT((again - x).abs().max().item<double>(), 1e-12);
    EXPECT_LT((R2 - R).abs().max().item<double>(), 1e-10);
    // The canonical frame: row 0 at the origin, row 1 on +x, row 2 in the xy plane with y > 0.
    const auto& rows = t.zmatrix().rows();
    torch::Tensor canonical = t.toCanonical(ic);
    EXPECT_LT(canonical.select(1, rows[0].atom).abs().max().item<double>(), 1e-15);
    EXPECT_LT(canonical.select(1, rows[1].atom).narrow(1, 1, 2).abs().max().item<double>(), 1e-15);
    EXPECT_LT(canonical.select(1, rows[2].atom).select(1, 2).abs().max().item<double>(), 1e-15);
    EXPECT_GT(canonical.select(1, rows[2].atom).select(1, 1).min().item<double>(), 0.0);
    // Also in float32 (the flow's usual precision): well under 1e-6 nm.
    torch::Tensor x32 = x.to(torch::kFloat32);
    auto [R32, t32] = t.frame(x32);
    EXPECT_LT((t.toCartesian(t.toInternal(x32), R32, t32).to(torch::kFloat64) - x).abs().max().item<double>(), 1e-6);
}

TEST(InternalCoordinateTransform, DihedralSignFollowsIupac) {
    // a above the plane of b-c-d on the side that makes a clockwise turn seen along b -> c: +90 deg.
    auto p = [](double x, double y, double z) { return torch::tensor({x, y, z}, torch::kFloat64); };
    EXPECT_NEAR(dihedralAngle(p(1, 0, 0), p(0, 0, 0), p(0, 0, 1), p(1, 0, 1)).item<double>(), 0.0, 1e-12);
    EXPECT_NEAR(std::abs(dihedralAngle(p(1, 0, 0), p(0, 0, 0), p(0, 0, 1), p(-1, 0, 1)).item<double>()), M_PI, 1e-12);
    EXPECT_NEAR(dihedralAngle(p(1, 0, 0), p(0, 0, 0), p(0, 0, 1), p(0, 1, 1)).item<double>(), M_PI / 2, 1e-12);
}

TEST(InternalCoordinateTransform, VolumeElementMatchesTheAutogradJacobian) {
    // x = R(alpha, beta, gamma) canonical(z) + t is a bijection of (t, Euler angles, z) onto R^{3N}
    // (away from singular points) with |det dx/d(t, angles, z)| = J(z) sin(beta): the Haar measure
    // of SO(3) in ZYZ Euler angles is sin(beta) d alpha d beta d gamma.
    const int64_t n = 7;
    InternalCoordinateTransform t(ZMatrix::fromBonds(n, BONDS, HEAVY));
    torch::Generator g = generator(2);
    for (int trial = 0; trial < 3; trial++) {
        InternalCoordinates ic = randomInternal(1, n, g);
        torch::Tensor angles = torch::tensor({0.7, 1.1, -0.4}, torch::kFloat64) + 0.3 * trial;
        torch::Tensor shift = torch::randn({3}, g, torch::kFloat64);
        torch::Tensor inputs = torch::cat({shift, angles, ic.bonds[0], ic.angles[0], ic.dihedrals[0]}).requires_grad_(true);
        auto f = [&](const torch::Tensor& in) {
            InternalCoordinates z;
            z.bonds = in.narrow(0, 6, n - 1).unsqueeze(0);
            z.angles = in.narrow(0, 6 + n - 1, n - 2).unsqueeze(0);
            z.dihedrals = in.narrow(0, 6 + 2 * n - 3, n - 3).unsqueeze(0);
            return t.toCartesian(z, euler(in.narrow(0, 3, 3).unsqueeze(0)), in.narrow(0, 0, 3).unsqueeze(0)).reshape(-1);
        };
        torch::Tensor out = f(inputs);
        ASSERT_EQ(out.size(0), 3 * n);
        std::vector<torch::Tensor> rowsOfJ;
        for (int64_t i = 0; i < out.size(0); i++)
            rowsOfJ.push_back(torch::autograd::grad({out[i]}, {inputs}, {}, true)[0]);
        const double logDet = std::get<1>(torch::linalg_slogdet(torch::stack(rowsOfJ))).item<double>();
        const double expected = t.logVolumeElement(ic).item<double>() + std::log(std::sin(angles[1].item<double>()));
        EXPECT_NEAR(logDet, expected, 1e-9) << "trial " << trial;
    }
}
