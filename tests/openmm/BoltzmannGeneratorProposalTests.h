#pragma once
// BoltzmannGeneratorProposal tests shared by every platform: exactness against a known equilibrium
// average (and failure with any term of log alpha dropped), a hand-computed acceptance ratio,
// bit-identical state after rejections, step counting, the chirality guard and every setup error.
// Each platform's runner (Test<Platform>BoltzmannGeneratorProposal.cpp) defines testPlatform()
// and testProperties() and may add tests of its own, e.g. expectSameDecisionsAsReference().
#include "BoltzmannGeneratorProposal.h"
#include "OpenMMBGUnits.h"
#include "CommonBGKernels.h"
#include "internal/BoltzmannGeneratorProposalImpl.h"
#include "openmmbg/FlowModel.h"
#include "openmmbg/ic/InternalCoordinateFlowModel.h"
#include "openmmbg/io/ModelFile.h"

#include "openmm/Context.h"
#include "openmm/CustomExternalForce.h"
#include "openmm/HarmonicAngleForce.h"
#include "openmm/HarmonicBondForce.h"
#include "openmm/CustomIntegrator.h"
#include "openmm/LangevinMiddleIntegrator.h"
#include "openmm/NonbondedForce.h"
#include "openmm/OpenMMException.h"
#include "openmm/PeriodicTorsionForce.h"
#include "openmm/Platform.h"
#include "openmm/State.h"
#include "openmm/System.h"
#include "openmm/VerletIntegrator.h"
#include "openmm/VirtualSite.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <tuple>

using namespace OpenMM;
using namespace OpenMMBG;

/** The platform under test (its kernels registered by the runner). */
Platform& testPlatform();
/** Platform properties for every Context of the tests, e.g. the precision. */
std::map<std::string, std::string> testProperties();

/**
 * For the GPU runners: registers `factory` on the platform `name` and the common kernel on
 * Reference (for expectSameDecisionsAsReference) directly, not through the plugins' entry points
 * (tests/python/test_proposal.py loads those from a folder). OpenMM's plugins must be loaded.
 */
inline Platform& registerKernelsForComparison(const std::string& name, KernelFactory* factory) {
    Platform& platform = Platform::getPlatformByName(name);
    platform.registerKernelFactory(MoveModelledParticlesKernel::Name(), factory);
    Platform::getPlatformByName("Reference")
        .registerKernelFactory(MoveModelledParticlesKernel::Name(), new CommonBGKernelFactory());
    return platform;
}

/** {"Precision": $OPENMMBG_TEST_PRECISION} (single, mixed or double; default single). */
inline std::map<std::string, std::string> precisionFromEnvironment() {
    const char* precision = std::getenv("OPENMMBG_TEST_PRECISION");
    return {{"Precision", precision != nullptr ? precision : "single"}};
}

namespace {

const double BOLTZ = BOLTZMANN;

// The test seam of the move (BoltzmannGeneratorProposalImpl::evaluateLogAcceptanceRatio): an Impl
// that drops one term of log alpha (1 the energy, 2 log q, 3 log pi), which exactness tests must
// detect, or that fails at its `failAt`-th evaluation (with that trial in the Context), as a
// failing energy evaluation would.
class ImplUnderTest : public BoltzmannGeneratorProposalImpl {
public:
    ImplUnderTest(const BoltzmannGeneratorProposal& owner, int droppedTerm, int failAt)
        : BoltzmannGeneratorProposalImpl(owner), droppedTerm(droppedTerm), failAt(failAt) {}

protected:
    double evaluateLogAcceptanceRatio(const ExtendedState& current, const ExtendedState& trial, double kT) override {
        if (++calls == failAt)
            throw std::runtime_error("testing: failure injected at proposal " + std::to_string(calls));
        ExtendedState c = current, t = trial;
        for (ExtendedState* s : {&c, &t}) {
            if (droppedTerm == 1)
                s->energy = 0;
            if (droppedTerm == 2)
                s->logQ = 0;
            if (droppedTerm == 3)
                s->logAuxiliaryTarget = 0;
        }
        return logAcceptanceRatio(c, t, kT);
    }

private:
    int droppedTerm, failAt, calls = 0;
};

/** A BoltzmannGeneratorProposal whose Context uses ImplUnderTest. */
class ProposalUnderTest : public BoltzmannGeneratorProposal {
public:
    ProposalUnderTest(const std::string& modelFile, int droppedTerm, int failAt)
        : BoltzmannGeneratorProposal(modelFile), droppedTerm(droppedTerm), failAt(failAt) {}

protected:
    OpenMM::ForceImpl* createImpl() const override { return new ImplUnderTest(*this, droppedTerm, failAt); }

private:
    int droppedTerm, failAt;
};

// Positions of a single-precision Context are rounded to float; mixed keeps a correction term but
// is tested with the same loose tolerance.
bool roundsPositions() {
    auto p = testProperties();
    auto it = p.find("Precision");
    return it != p.end() && it->second != "double";
}

std::string modelFile(const std::string& name, const std::string& extra) {
    const std::string path = (std::filesystem::temp_directory_path() / ("openmmbg_bgp_" + name + ".bgm")).string();
    FlowModel(R"({"num_particles": 4, "dim": 3, "projection": "vector", "num_layers": 2, "dtype": "float64",
                  "egnn_blocks": 1, "egnn_mlp_units": [16, 16], "egnn_hidden_features": 16,
                  "egnn_output_features": 16, "head_mlp_units": [16, 16], "aug_scale": 0.3)" + extra + "}")
        .save(path);
    return path;
}

// Proposals alone: an integrator whose one step lets the Forces update the Context (the Monte Carlo
// move), so nothing but the proposals moves the particles. (The particles have mass: the Force
// refuses to move massless particles, which OpenMM keeps fixed.)
class ProposalsOnlyIntegrator : public CustomIntegrator {
public:
    ProposalsOnlyIntegrator() : CustomIntegrator(0.001) { addUpdateContextState(); }
};

// Four particles (moved by proposals alone, ProposalsOnlyIntegrator) in a harmonic well k/2 sum |x_i|^2.
System* wellSystem(double k) {
    System* system = new System();
    CustomExternalForce* well = new CustomExternalForce("0.5*k*(x^2+y^2+z^2)");
    well->addGlobalParameter("k", k);
    for (int i = 0; i < 4; i++) {
        system->addParticle(1.0);
        well->addParticle(i);
    }
    system->addForce(well);
    return system;
}

std::vector<Vec3> startPositions() {
    return {Vec3(0.3, 0.1, -0.2), Vec3(-0.4, 0.2, 0.1), Vec3(0.1, -0.5, 0.3), Vec3(0.2, 0.3, -0.1)};
}

double centredSquaredNorm(const std::vector<Vec3>& x) {
    Vec3 c = (x[0] + x[1] + x[2] + x[3]) * 0.25;
    double s = 0;
    for (int i = 0; i < 4; i++)
        s += (x[i] - c).dot(x[i] - c);
    return s;
}

// Mean of batch means and its standard error.
std::pair<double, double> meanAndSem(const std::vector<double>& batchMeans) {
    const double n = double(batchMeans.size());
    double mean = 0, var = 0;
    for (double m : batchMeans)
        mean += m / n;
    for (double m : batchMeans)
        var += (m - mean) * (m - mean) / (n - 1);
    return {mean, std::sqrt(var / n)};
}

// Run `batches` x `perBatch` samples of sum_i |x_i - centroid|^2, `stepsPerSample` steps apart;
// returns the mean and its batch-means standard error.
std::pair<double, double> sampleSpreadStatistics(Integrator& integrator, Context& context, int batches, int perBatch,
                                                 int stepsPerSample) {
    std::vector<double> batchMeans;
    for (int b = 0; b < batches; b++) {
        double sum = 0;
        for (int s = 0; s < perBatch; s++) {
            integrator.step(stepsPerSample);
            sum += centredSquaredNorm(context.getState(State::Positions).getPositions());
        }
        batchMeans.push_back(sum / perBatch);
    }
    return meanAndSem(batchMeans);
}

// Mean and batch-means standard error of sum_i |x_i - centroid|^2 sampled by proposals alone.
std::pair<double, double> sampleSpread(int droppedTerm, int steps) {
    const double T = 300.0, kT = BOLTZ * T, k = 2.0 * kT;  // exact spread: 3 (N - 1) kT / k = 4.5
    System* system = wellSystem(k);
    BoltzmannGeneratorProposal* move =
        new ProposalUnderTest(modelFile("exact", R"(, "identity_init": false, "random_init_scale": 0.1)"), droppedTerm, 0);
    move->setFrequency(1);
    move->setNumProposals(4);
    move->setTemperature(T);
    move->setRandomNumberSeed(1234);
    system->addForce(move);
    ProposalsOnlyIntegrator integrator;
    Context context(*system, integrator, testPlatform(), testProperties());
    context.setPositions(startPositions());
    auto statistics = sampleSpreadStatistics(integrator, context, 20, steps / 20, 1);
    EXPECT_GT(move->getNumAccepted(context), 30) << "too few accepted proposals to test anything";
    delete system;
    return statistics;
}

// A molecule-like test System for the internal-coordinate family: a chain 0-1-2-3-4 of particles
// (moved by proposals alone, ProposalsOnlyIntegrator) with harmonic bonds, harmonic angles and a periodic
// torsion on each dihedral. Along the chain every term depends on one internal coordinate and the
// volume element factorises (J = prod r^2 prod sin theta), so every coordinate's marginal is exact:
// p(r) ~ r^2 exp(-kb (r - r0)^2 / 2kT), p(theta) ~ sin theta exp(-ka (theta - theta0)^2 / 2kT),
// p(phi) ~ exp(-kt (1 + cos phi) / kT).
struct ChainMolecule {
    static constexpr int numAtoms = 5;
    double kT = BOLTZ * 300.0;
    double r0 = 0.15, kb = 0;      // nm; bond sd 0.02 nm, so log J's r^2 moves the mean by ~5 sd/sqrt(n)
    double theta0 = 1.9, ka = 0;   // rad; angle sd 0.15 rad
    double kt = 0;                 // torsion barrier: 1 kT
    ChainMolecule() : kb(kT / (0.02 * 0.02)), ka(kT / (0.15 * 0.15)), kt(kT) {}

    System* system() const {
        System* s = new System();
        auto* bonds = new HarmonicBondForce();
        auto* angles = new HarmonicAngleForce();
        auto* torsions = new PeriodicTorsionForce();
        for (int i = 0; i < numAtoms; i++)
            s->addParticle(1.0);
        for (int i = 0; i + 1 < numAtoms; i++)
            bonds->addBond(i, i + 1, r0, kb);
        for (int i = 0; i + 2 < numAtoms; i++)
            angles->addAngle(i, i + 1, i + 2, theta0, ka);
        for (int i = 0; i + 3 < numAtoms; i++)
            torsions->addTorsion(i, i + 1, i + 2, i + 3, 1, 0.0, kt);
        s->addForce(bonds);
        s->addForce(angles);
        s->addForce(torsions);
        return s;
    }

    // Exact means by quadrature: E[r], E[theta] and E[cos phi].
    double meanBond() const {
        return quadrature(0, r0 + 0.3, [&](double r) { return r * r * std::exp(-kb * (r - r0) * (r - r0) / (2 * kT)); });
    }
    double meanAngle() const {
        return quadrature(0, M_PI, [&](double t) { return std::sin(t) * std::exp(-ka * (t - theta0) * (t - theta0) / (2 * kT)); });
    }
    double meanCosDihedral() const {
        return quadrature(-M_PI, M_PI, [&](double p) { return std::exp(-kt * (1 + std::cos(p)) / kT); }, true);
    }

    // The Z-matrix along the chain, and the model file of an untrained internal-coordinate flow whose
    // statistics are fitted to a broad guess of the geometry (bonds and angles near the minimum,
    // dihedrals uniform): a proposal close enough to be accepted, far enough that only an exact
    // move recovers the marginals.
    std::string modelFile() const {
        nlohmann::json zmatrix = {{0, -1, -1, -1}, {1, 0, -1, -1}, {2, 1, 0, -1}, {3, 2, 1, 0}, {4, 3, 2, 1}};
        nlohmann::json config = {{"family", "ic"}, {"num_particles", numAtoms}, {"zmatrix", zmatrix},
                                 {"num_layers", 2}, {"hidden_units", 8}, {"dtype", "float64"}, {"temperature", 300.0}};
        auto model = std::dynamic_pointer_cast<InternalCoordinateFlowModel>(makeModel(config.dump()));
        torch::Generator g = at::make_generator<at::CPUGeneratorImpl>(5);
        const int64_t n = 2000;
        InternalCoordinates ic;
        ic.bonds = r0 + 0.025 * torch::randn({n, numAtoms - 1}, g, torch::kFloat64);
        ic.angles = theta0 + 0.18 * torch::randn({n, numAtoms - 2}, g, torch::kFloat64);
        ic.dihedrals = M_PI * (2 * torch::rand({n, numAtoms - 3}, g, torch::kFloat64) - 1);
        const torch::Tensor x = InternalCoordinateTransform(ZMatrix::fromBonds(numAtoms, {{0, 1}, {1, 2}, {2, 3}, {3, 4}},
                                                                                std::vector<bool>(numAtoms, true)))
                                    .toCartesian(ic, torch::eye(3, torch::kFloat64).expand({n, 3, 3}),
                                                 torch::zeros({n, 3}, torch::kFloat64));
        model->fitStatistics(x);
        const std::string path = (std::filesystem::temp_directory_path() / "openmmbg_bgp_chain_ic.bgm").string();
        saveModel(*model, path);
        return path;
    }

    std::vector<Vec3> startPositions() const {
        return {Vec3(0, 0, 0), Vec3(0.15, 0, 0), Vec3(0.2, 0.14, 0), Vec3(0.35, 0.16, 0.05), Vec3(0.4, 0.3, 0.08)};
    }

private:
    // Mean of the variable (or of cos of it, for `cosine`) under the unnormalised density f on [a, b]:
    // Simpson's rule on 20,000 intervals (far below the statistical tolerances).
    template <class F>
    static double quadrature(double a, double b, F f, bool cosine = false) {
        const int n = 20000;
        const double h = (b - a) / n;
        double num = 0, den = 0;
        for (int i = 0; i <= n; i++) {
            const double x = a + i * h, w = (i == 0 || i == n) ? 1 : (i % 2 ? 4 : 2), fx = f(x);
            num += w * fx * (cosine ? std::cos(x) : x);
            den += w * fx;
        }
        return num / den;
    }
};

double distance(const Vec3& a, const Vec3& b) { return std::sqrt((a - b).dot(a - b)); }
double angleAt(const Vec3& a, const Vec3& b, const Vec3& c) {
    const Vec3 u = a - b, v = c - b;
    return std::acos(u.dot(v) / std::sqrt(u.dot(u) * v.dot(v)));
}
double cosDihedral(const Vec3& a, const Vec3& b, const Vec3& c, const Vec3& d) {
    const Vec3 n1 = (b - a).cross(c - b), n2 = (c - b).cross(d - c);
    return n1.dot(n2) / std::sqrt(n1.dot(n1) * n2.dot(n2));
}

// Proposals alone (no MD) on the chain molecule: the batch means of the middle bond, the middle
// angle and the cosine of the first dihedral against their exact values, within 4.5 standard
// errors (fixed seed).
void expectChainMarginals(Platform& platform, const std::map<std::string, std::string>& properties) {
    const ChainMolecule molecule;
    System* system = molecule.system();
    auto* move = new BoltzmannGeneratorProposal(molecule.modelFile());
    move->setFrequency(1);
    move->setNumProposals(2);
    move->setRandomNumberSeed(99);
    system->addForce(move);
    ProposalsOnlyIntegrator integrator;
    Context context(*system, integrator, platform, properties);
    context.setPositions(molecule.startPositions());
    std::vector<double> bondMeans, angleMeans, cosMeans;
    const int batches = 20, perBatch = 150;
    for (int b = 0; b < batches; b++) {
        double bond = 0, angle = 0, cosine = 0;
        for (int s = 0; s < perBatch; s++) {
            integrator.step(1);
            const std::vector<Vec3> x = context.getState(State::Positions).getPositions();
            bond += distance(x[1], x[2]) / perBatch;
            angle += angleAt(x[1], x[2], x[3]) / perBatch;
            cosine += cosDihedral(x[0], x[1], x[2], x[3]) / perBatch;
        }
        bondMeans.push_back(bond);
        angleMeans.push_back(angle);
        cosMeans.push_back(cosine);
    }
    const double acceptance = double(move->getNumAccepted(context)) / move->getNumProposed(context);
    EXPECT_GT(acceptance, 0.05) << "too few accepted proposals to test anything";
    const double tolerance = roundsPositions() ? 1e-4 : 0;  // single precision rounds positions to ~1e-7 nm
    for (auto [name, means, exact] : {std::make_tuple("bond (nm)", bondMeans, molecule.meanBond()),
                                      std::make_tuple("angle (rad)", angleMeans, molecule.meanAngle()),
                                      std::make_tuple("cos dihedral", cosMeans, molecule.meanCosDihedral())}) {
        auto [mean, sem] = meanAndSem(means);
        EXPECT_NEAR(mean, exact, 4.5 * sem + tolerance) << name << ": sem " << sem << ", acceptance " << acceptance;
    }
    delete system;
}

}  // namespace

TEST(BoltzmannGeneratorProposal, InternalCoordinateProposalsAloneSampleTheExactMarginals) {
    expectChainMarginals(testPlatform(), testProperties());
}

TEST(BoltzmannGeneratorProposal, ProposalsAloneSampleTheBoltzmannDistribution) {
    // Exact: E[sum |x_i - c|^2] = 3 (N - 1) kT / k = 4.5 on the fixed-centroid fibre.
    auto [mean, sem] = sampleSpread(0, 1500);
    EXPECT_LT(sem, 0.2) << "the test would have no power";
    EXPECT_NEAR(mean, 4.5, 4 * sem + 0.02) << "sem " << sem;
}

TEST(BoltzmannGeneratorProposal, DroppingAnyTermOfLogAlphaIsDetected) {
    for (int term : {1, 2, 3}) {
        auto [mean, sem] = sampleSpread(term, 1500);
        EXPECT_GT(std::abs(mean - 4.5), 4 * sem + 0.02) << "dropping term " << term << " gave " << mean << " +- " << sem;
    }
}

namespace {

// n particles and no forces: U = 0 (moved by proposals alone, ProposalsOnlyIntegrator).
System* freeSystem(int n = 4) {
    System* system = new System();
    for (int i = 0; i < n; i++)
        system->addParticle(1.0);
    return system;
}

void expectError(System* system, BoltzmannGeneratorProposal* move, const std::string& fragment) {
    system->addForce(move);
    ProposalsOnlyIntegrator integrator;
    try {
        Context context(*system, integrator, testPlatform(), testProperties());
        ADD_FAILURE() << "no error; expected one mentioning '" << fragment << "'";
    } catch (const OpenMMException& e) {
        EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("BoltzmannGeneratorProposal"), std::string::npos) << e.what();
    }
    delete system;
}

}  // namespace

TEST(BoltzmannGeneratorProposal, AcceptanceRatioOfAHandBuiltCase) {
    // Identity flow (q(x, a) = N_com(x) pi(a|x)) and U = 0: log alpha = (|x'|^2 - |x|^2) / 2 for the
    // centred configurations, whatever a and a' are.
    System* system = freeSystem();
    auto* move = new BoltzmannGeneratorProposal(modelFile("identity", R"(, "identity_init": true)"));
    move->setFrequency(1);
    move->setRandomNumberSeed(5);
    system->addForce(move);
    ProposalsOnlyIntegrator integrator;
    Context context(*system, integrator, testPlatform(), testProperties());
    context.setPositions(startPositions());
    int checked = 0;
    for (int s = 0; s < 150; s++) {
        std::vector<Vec3> before = context.getState(State::Positions).getPositions();
        long long accepted = move->getNumAccepted(context);
        integrator.step(1);
        std::vector<Vec3> after = context.getState(State::Positions).getPositions();
        double logAlpha = move->getLastLogAcceptanceRatio(context);
        if (move->getNumAccepted(context) > accepted) {
            EXPECT_NEAR(logAlpha, 0.5 * (centredSquaredNorm(after) - centredSquaredNorm(before)),
                        roundsPositions() ? 1e-5 : 1e-8);
            Vec3 c0 = (before[0] + before[1] + before[2] + before[3]) * 0.25;
            Vec3 c1 = (after[0] + after[1] + after[2] + after[3]) * 0.25;
            EXPECT_LT((c1 - c0).dot(c1 - c0), roundsPositions() ? 1e-12 : 1e-20) << "the centroid moved";
            checked++;
        } else {
            EXPECT_LT(logAlpha, 0.0) << "a proposal with log alpha >= 0 must be accepted";
            for (int i = 0; i < 4; i++)
                EXPECT_EQ(before[i][0], after[i][0]);
        }
    }
    EXPECT_EQ(move->getNumProposed(context), 150);
    EXPECT_GT(checked, 5);
    delete system;
}

TEST(BoltzmannGeneratorProposal, RejectedProposalsLeaveTheStateBitIdentical) {
    // Stiff bonds: every flow proposal has an enormous energy and is rejected. The trajectory with
    // the Force must equal the trajectory without it, bit for bit.
    auto build = [](bool withMove) {
        System* system = new System();
        HarmonicBondForce* bonds = new HarmonicBondForce();
        for (int i = 0; i < 4; i++)
            system->addParticle(12.0);
        for (int i = 0; i < 3; i++)
            bonds->addBond(i, i + 1, 0.15, 1e6);
        system->addForce(bonds);
        if (withMove) {
            auto* move = new BoltzmannGeneratorProposal(modelFile("identity", R"(, "identity_init": true)"));
            move->setFrequency(1);
            move->setNumProposals(3);
            system->addForce(move);
        }
        return system;
    };
    std::vector<Vec3> start = {Vec3(0, 0, 0), Vec3(0.15, 0, 0), Vec3(0.15, 0.15, 0), Vec3(0.3, 0.15, 0.05)};
    System* a = build(true);
    System* b = build(false);
    // Verlet: deterministic, and free of the process-global random stream that two Langevin
    // Contexts in one process would share.
    VerletIntegrator ia(0.0005), ib(0.0005);
    Context ca(*a, ia, testPlatform(), testProperties()), cb(*b, ib, testPlatform(), testProperties());
    const std::vector<Vec3> velocities = {Vec3(0.3, -0.2, 0.1), Vec3(-0.1, 0.4, 0), Vec3(0.2, 0.1, -0.3), Vec3(0, -0.2, 0.2)};
    for (Context* c : {&ca, &cb}) {
        c->setPositions(start);
        c->setVelocities(velocities);
    }
    ia.step(25);
    ib.step(25);
    auto* move = dynamic_cast<BoltzmannGeneratorProposal*>(&a->getForce(1));
    EXPECT_EQ(move->getNumProposed(ca), 75);
    EXPECT_EQ(move->getNumAccepted(ca), 0);
    State sa = ca.getState(State::Positions | State::Velocities | State::Forces | State::Energy);
    State sb = cb.getState(State::Positions | State::Velocities | State::Forces | State::Energy);
    for (int i = 0; i < 4; i++)
        for (int d = 0; d < 3; d++) {
            EXPECT_EQ(sa.getPositions()[i][d], sb.getPositions()[i][d]);
            EXPECT_EQ(sa.getVelocities()[i][d], sb.getVelocities()[i][d]);
            EXPECT_EQ(sa.getForces()[i][d], sb.getForces()[i][d]);
        }
    EXPECT_EQ(sa.getPotentialEnergy(), sb.getPotentialEnergy());
    delete a;
    delete b;
}

TEST(BoltzmannGeneratorProposal, AFailedAttemptLeavesTheStateAsItWas) {
    // Identity flow and U = 0 (the hand-built case): from a compact start, log alpha = (|x'|^2 -
    // |x|^2) / 2 is large, so the first proposals are accepted and redraw the velocities. A failure
    // injected at the third proposal (its trial is in the Context then) must put back positions and
    // velocities bit for bit, and leave a Context that runs on.
    System* system = new System();
    for (int i = 0; i < 4; i++)
        system->addParticle(12.0);
    auto* move = new ProposalUnderTest(modelFile("identity", R"(, "identity_init": true)"), 0, 3);
    move->setFrequency(1);
    move->setNumProposals(4);
    move->setRandomNumberSeed(11);
    system->addForce(move);
    VerletIntegrator integrator(0.001);
    Context context(*system, integrator, testPlatform(), testProperties());
    context.setPositions(startPositions());
    context.setVelocities({Vec3(0.3, -0.2, 0.1), Vec3(-0.1, 0.4, 0), Vec3(0.2, 0.1, -0.3), Vec3(0, -0.2, 0.2)});
    const State before = context.getState(State::Positions | State::Velocities);
    try {
        integrator.step(1);
        ADD_FAILURE() << "the injected failure did not surface";
    } catch (const OpenMMException& e) {
        EXPECT_NE(std::string(e.what()).find("state restored"), std::string::npos) << e.what();
    }
    EXPECT_GT(move->getNumAccepted(context), 0) << "nothing was accepted before the failure: velocities untested";
    const State after = context.getState(State::Positions | State::Velocities);
    for (int i = 0; i < 4; i++)
        for (int d = 0; d < 3; d++) {
            EXPECT_EQ(after.getPositions()[i][d], before.getPositions()[i][d]) << "particle " << i;
            EXPECT_EQ(after.getVelocities()[i][d], before.getVelocities()[i][d]) << "particle " << i;
        }
    integrator.step(1);
    // The failed proposal is not counted: two before it, then a whole attempt of four.
    EXPECT_EQ(move->getNumProposed(context), 2 + 4);
    delete system;
}

TEST(BoltzmannGeneratorProposal, RejectedProposalsAmongReorderedAtomsLeaveTheTrajectoryUnchanged) {
    // The modelled chain (the last four particles, in reverse model order) sits among 48
    // Lennard-Jones particles with a cutoff, so the GPU platforms reorder atoms (CUDA and OpenCL
    // every 250 steps when a cutoff is used): a platform that reads and writes its own arrays must
    // find the chain through its atom order. All proposals are rejected (stiff bonds), so the
    // trajectory must match the one without the Force; the tolerance allows for rounding where a
    // platform's position round trip is not exact (single precision).
    auto build = [&](bool withMove) {
        System* system = new System();
        NonbondedForce* lj = new NonbondedForce();
        lj->setNonbondedMethod(NonbondedForce::CutoffNonPeriodic);
        lj->setCutoffDistance(0.6);
        for (int i = 0; i < 52; i++) {
            system->addParticle(12.0);
            lj->addParticle(0.0, 0.25, 0.1);
        }
        HarmonicBondForce* bonds = new HarmonicBondForce();
        std::vector<std::pair<int, int>> bonded;
        for (int i = 48; i < 51; i++) {
            bonds->addBond(i, i + 1, 0.15, 1e6);
            bonded.emplace_back(i, i + 1);
        }
        lj->createExceptionsFromBonds(bonded, 0.0, 0.0);
        system->addForce(lj);
        system->addForce(bonds);
        if (withMove) {
            auto* move = new BoltzmannGeneratorProposal(modelFile("identity", R"(, "identity_init": true)"));
            move->setParticles({51, 50, 49, 48});
            move->setFrequency(1);
            move->setNumProposals(2);
            system->addForce(move);
        }
        return system;
    };
    std::vector<Vec3> start;
    for (int i = 0; i < 4; i++)  // x planes 0.22 ... 1.54: the chain (x 1.9 ... 2.2) stays clear
        for (int j = 0; j < 4; j++)
            for (int k = 0; k < 3; k++)
                start.push_back(Vec3(0.22 + 0.44 * i, 0.22 + 0.55 * j, 0.3 + 0.7 * k));
    for (Vec3 chain : {Vec3(1.9, 1.0, 1.0), Vec3(2.05, 1.0, 1.0), Vec3(2.05, 1.15, 1.0), Vec3(2.2, 1.15, 1.05)})
        start.push_back(chain);
    System* a = build(true);
    System* b = build(false);
    VerletIntegrator ia(0.0005), ib(0.0005);
    Context ca(*a, ia, testPlatform(), testProperties()), cb(*b, ib, testPlatform(), testProperties());
    for (Context* c : {&ca, &cb}) {
        c->setPositions(start);
        c->setVelocitiesToTemperature(100.0, 7);
    }
    ia.step(300);
    ib.step(300);
    auto* move = dynamic_cast<BoltzmannGeneratorProposal*>(&a->getForce(2));
    EXPECT_EQ(move->getNumProposed(ca), 600);
    EXPECT_EQ(move->getNumAccepted(ca), 0);
    State sa = ca.getState(State::Positions | State::Velocities);
    State sb = cb.getState(State::Positions | State::Velocities);
    for (int i = 0; i < 52; i++)
        for (int d = 0; d < 3; d++) {
            EXPECT_NEAR(sa.getPositions()[i][d], sb.getPositions()[i][d], 1e-4) << "particle " << i;
            EXPECT_NEAR(sa.getVelocities()[i][d], sb.getVelocities()[i][d], 1e-2) << "particle " << i;
        }
    EXPECT_NEAR(sa.getPositions()[48][0], 1.9, 0.1);  // the chain moved less than 0.1 nm
    delete a;
    delete b;
}

TEST(BoltzmannGeneratorProposal, FrequencyAndStepCounting) {
    for (int frequency : {0, 1, 3}) {
        System* system = freeSystem();
        auto* move = new BoltzmannGeneratorProposal(modelFile("identity", R"(, "identity_init": true)"));
        move->setFrequency(frequency);
        move->setNumProposals(2);
        system->addForce(move);
        ProposalsOnlyIntegrator integrator;
        Context context(*system, integrator, testPlatform(), testProperties());
        context.setPositions(startPositions());
        integrator.step(10);
        EXPECT_EQ(move->getNumProposed(context), frequency == 0 ? 0 : 2 * (10 / frequency)) << "frequency " << frequency;
        delete system;
    }
    BoltzmannGeneratorProposal move(modelFile("identity", R"(, "identity_init": true)"));
    EXPECT_THROW(move.setFrequency(-1), OpenMMException);
    EXPECT_THROW(move.setNumProposals(0), OpenMMException);
    EXPECT_THROW(move.setTemperature(0), OpenMMException);
    EXPECT_THROW(move.setTemperature(-5), OpenMMException);
}

TEST(BoltzmannGeneratorProposal, MasslessModelledParticlesAreRefused) {
    System* system = freeSystem();
    system->setParticleMass(2, 0.0);
    expectError(system, new BoltzmannGeneratorProposal(modelFile("identity", R"(, "identity_init": true)")),
                "modelled particle 2 has zero mass");
}

TEST(BoltzmannGeneratorProposal, TemperatureIsAContextParameter) {
    System* system = freeSystem();
    auto* move = new BoltzmannGeneratorProposal(modelFile("identity", R"(, "identity_init": true)"));
    move->setTemperature(250);
    system->addForce(move);
    ProposalsOnlyIntegrator integrator;
    Context context(*system, integrator, testPlatform(), testProperties());
    EXPECT_EQ(context.getParameter(BoltzmannGeneratorProposal::Temperature()), 250);
    context.setParameter(BoltzmannGeneratorProposal::Temperature(), -1);
    context.setPositions(startPositions());
    move->setFrequency(1);
    EXPECT_THROW(integrator.step(10), OpenMMException) << "frequency changes need reinitialize; temperature check";
    // +inf would accept every proposal: refused, and the positions are kept.
    context.reinitialize(true);
    context.setParameter(BoltzmannGeneratorProposal::Temperature(), INFINITY);
    const std::vector<Vec3> before = context.getState(State::Positions).getPositions();
    try {
        integrator.step(1);
        ADD_FAILURE() << "an infinite temperature was accepted";
    } catch (const OpenMMException& e) {
        EXPECT_NE(std::string(e.what()).find("must be positive and finite (got inf)"), std::string::npos) << e.what();
    }
    const std::vector<Vec3> kept = context.getState(State::Positions).getPositions();
    for (int i = 0; i < 4; i++)
        for (int d = 0; d < 3; d++)
            EXPECT_EQ(kept[i][d], before[i][d]);
    delete system;
}

TEST(BoltzmannGeneratorProposal, ChiralityGuardKeepsTheSign) {
    System* system = freeSystem();
    auto* move = new BoltzmannGeneratorProposal(modelFile("identity", R"(, "identity_init": true)"));
    move->setFrequency(1);
    move->setNumProposals(4);
    move->setRandomNumberSeed(11);
    move->addChiralCenter(0, 1, 2, 3);
    system->addForce(move);
    ProposalsOnlyIntegrator integrator;
    Context context(*system, integrator, testPlatform(), testProperties());
    context.setPositions(startPositions());
    auto volume = [&]() {
        std::vector<Vec3> x = context.getState(State::Positions).getPositions();
        return (x[1] - x[0]).dot((x[2] - x[0]).cross(x[3] - x[0]));
    };
    const double sign = volume() > 0 ? 1 : -1;
    for (int s = 0; s < 50; s++) {
        integrator.step(1);
        EXPECT_GT(sign * volume(), 0) << "step " << s;
    }
    EXPECT_GT(move->getNumAccepted(context), 5);
    delete system;
}

TEST(BoltzmannGeneratorProposal, SetupErrors) {
    const std::string model = modelFile("identity", R"(, "identity_init": true)");
    {
        auto* move = new BoltzmannGeneratorProposal(model);
        move->setParticles({0, 1, 2});
        expectError(freeSystem(), move, "the model describes 4 particles but 3 were selected");
    }
    {
        auto* move = new BoltzmannGeneratorProposal(model);
        move->setParticles({0, 1, 2, 9});
        expectError(freeSystem(), move, "out of range");
    }
    {
        auto* move = new BoltzmannGeneratorProposal(model);
        move->setParticles({0, 1, 1, 2});
        expectError(freeSystem(), move, "selected twice");
    }
    expectError(freeSystem(3), new BoltzmannGeneratorProposal(model), "has only 3");
    {
        System* system = freeSystem();
        system->addConstraint(0, 1, 0.1);
        expectError(system, new BoltzmannGeneratorProposal(model), "constraint");
    }
    {
        System* system = freeSystem(5);
        system->setParticleMass(4, 0.0);  // OpenMM requires virtual sites to be massless
        system->setVirtualSite(4, new TwoParticleAverageSite(0, 1, 0.5, 0.5));
        expectError(system, new BoltzmannGeneratorProposal(model), "virtual site 4");
    }
    {
        System* system = freeSystem();
        system->setDefaultPeriodicBoxVectors(Vec3(2, 0, 0), Vec3(0, 2, 0), Vec3(0, 0, 2));
        CustomExternalForce* f = new CustomExternalForce("0");
        system->addForce(f);
        HarmonicBondForce* periodic = new HarmonicBondForce();
        periodic->setUsesPeriodicBoundaryConditions(true);
        periodic->addBond(0, 1, 0.1, 1.0);
        system->addForce(periodic);
        expectError(system, new BoltzmannGeneratorProposal(model), "periodic");
    }
    {
        auto* move = new BoltzmannGeneratorProposal(model);
        move->addChiralCenter(0, 1, 2, 5);
        expectError(freeSystem(6), move, "chiral centre particle 5");
    }
    {
        const std::string twoD = (std::filesystem::temp_directory_path() / "openmmbg_bgp_2d.bgm").string();
        FlowModel(R"({"num_particles": 4, "dim": 2, "projection": "vector", "num_layers": 1})").save(twoD);
        // Refused at construction (before any System sees it), as is a model in other units than nm.
        EXPECT_THROW(BoltzmannGeneratorProposal{twoD}, OpenMMException);
        const std::string angstrom = (std::filesystem::temp_directory_path() / "openmmbg_bgp_angstrom.bgm").string();
        FlowModel(R"({"num_particles": 4, "dim": 3, "projection": "vector", "num_layers": 1, "length_unit": "angstrom"})")
            .save(angstrom);
        try {
            BoltzmannGeneratorProposal move(angstrom);
            ADD_FAILURE() << "a model in angstrom was accepted";
        } catch (const OpenMMException& e) {
            EXPECT_NE(std::string(e.what()).find("needs a 3-D model in nm (this one: 3-D, angstrom)"), std::string::npos)
                << e.what();
        }
    }
    EXPECT_THROW(BoltzmannGeneratorProposal("/nonexistent/model.bgm"), OpenMMException);
    const std::string corrupt = (std::filesystem::temp_directory_path() / "openmmbg_bgp_corrupt.bgm").string();
    {
        std::string bytes = FlowModel(R"({"num_particles": 4, "dim": 3, "projection": "vector", "num_layers": 1})").toBytes();
        bytes[bytes.size() - 2] ^= 0x11;
        std::FILE* f = std::fopen(corrupt.c_str(), "wb");
        std::fwrite(bytes.data(), 1, bytes.size(), f);
        std::fclose(f);
    }
    try {
        BoltzmannGeneratorProposal bad(corrupt);
        ADD_FAILURE() << "a corrupt model was accepted";
    } catch (const OpenMMException& e) {
        EXPECT_NE(std::string(e.what()).find("checksum"), std::string::npos) << e.what();
    }
}

TEST(BoltzmannGeneratorProposal, LangevinDynamicsWithProposalsSamplesTheBoltzmannDistribution) {
    // Four 12-amu particles in the harmonic well k = 2 kT / nm^2: Langevin MD (which also moves the
    // centroid) plus proposals every 5 steps must keep E[sum |x_i - c|^2] = 3 (N - 1) kT / k = 4.5.
    const double T = 300.0, kT = BOLTZ * T;
    System* system = wellSystem(2.0 * kT);
    for (int i = 0; i < 4; i++)
        system->setParticleMass(i, 12.0);
    auto* move = new BoltzmannGeneratorProposal(modelFile("exact", R"(, "identity_init": false, "random_init_scale": 0.1)"));
    move->setFrequency(5);
    move->setNumProposals(4);
    move->setTemperature(T);
    move->setRandomNumberSeed(4321);
    system->addForce(move);
    LangevinMiddleIntegrator integrator(T, 5.0, 0.01);
    integrator.setRandomNumberSeed(17);
    Context context(*system, integrator, testPlatform(), testProperties());
    context.setPositions(startPositions());
    context.setVelocitiesToTemperature(T, 5);
    integrator.step(200);
    auto [mean, sem] = sampleSpreadStatistics(integrator, context, 20, 150, 5);
    EXPECT_GT(move->getNumAccepted(context), 30);
    EXPECT_LT(sem, 0.2);
    EXPECT_NEAR(mean, 4.5, 4 * sem + 0.02) << "sem " << sem;
    delete system;
}

// The same seed makes the same accept/reject decisions on the platform under test as on the
// Reference platform: the flow runs on the CPU for both, so only the energies' precision differs.
inline void expectSameDecisionsAsReference() {
    const double T = 300.0, kT = BOLTZ * T;
    auto run = [&](Platform& platform, const std::map<std::string, std::string>& properties) {
        System* system = wellSystem(2.0 * kT);
        auto* move = new BoltzmannGeneratorProposal(modelFile("exact", R"(, "identity_init": false, "random_init_scale": 0.1)"));
        move->setFrequency(1);
        move->setNumProposals(4);
        move->setTemperature(T);
        move->setRandomNumberSeed(99);
        system->addForce(move);
        ProposalsOnlyIntegrator integrator;
        Context context(*system, integrator, platform, properties);
        context.setPositions(startPositions());
        std::vector<std::pair<long long, double>> decisions;
        for (int s = 0; s < 60; s++) {
            integrator.step(1);
            decisions.emplace_back(move->getNumAccepted(context), move->getLastLogAcceptanceRatio(context));
        }
        std::vector<Vec3> positions = context.getState(State::Positions).getPositions();
        delete system;
        return std::make_pair(decisions, positions);
    };
    auto [reference, referencePositions] = run(Platform::getPlatformByName("Reference"), {});
    auto [tested, testedPositions] = run(testPlatform(), testProperties());
    const double tolerance = roundsPositions() ? 1e-3 : 1e-7;
    ASSERT_EQ(reference.size(), tested.size());
    EXPECT_GT(reference.back().first, 10) << "too few acceptances to compare";
    for (size_t s = 0; s < reference.size(); s++) {
        ASSERT_EQ(reference[s].first, tested[s].first) << "accepted counts differ after step " << s;
        if (std::isfinite(reference[s].second))
            EXPECT_NEAR(reference[s].second, tested[s].second, tolerance) << "step " << s;
    }
    for (int i = 0; i < 4; i++)
        for (int d = 0; d < 3; d++)
            EXPECT_NEAR(referencePositions[i][d], testedPositions[i][d], roundsPositions() ? 1e-5 : 1e-10);
}
