// OpenMMSystemTarget: energies and forces of an OpenMM System evaluated by a pool of Contexts.
// A 4-particle chain (HarmonicBondForce + a Lennard-Jones CustomNonbondedForce between non-bonded
// pairs): energies equal a Context's and an analytic formula, forces equal OpenMM's and finite
// differences, the autograd gradient of the reduced energy is -forces/kT, 1 and 4 threads agree,
// a particle subset holds the others fixed, overlapping atoms give +inf, and bad input is a clear
// OpenMMException. (Alanine dipeptide is not tested here: OpenMM's C++ API has no prmtop reader.)
// Also where OpenMM's platform plugins are looked for, and that they are loaded once.
#include "OpenMMSystemTarget.h"
#include "internal/OpenMMPlugins.h"
#include "internal/OpenMMSystemTargetImpl.h"
#include "openmm/Context.h"
#include "openmm/CustomNonbondedForce.h"
#include "openmm/HarmonicBondForce.h"
#include "openmm/OpenMMException.h"
#include "openmm/Platform.h"
#include "openmm/State.h"
#include "openmm/System.h"
#include "openmm/VerletIntegrator.h"
#include "openmm/serialization/XmlSerializer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

using namespace OpenMMBG;
using OpenMM::Vec3;

namespace {

constexpr int NUM_PARTICLES = 4;
constexpr double BOND_LENGTH = 0.15, BOND_K = 2000.0, SIGMA = 0.3, EPSILON = 0.8;
constexpr double TEMPERATURE = 300.0;
const std::vector<std::pair<int, int>> BONDS = {{0, 1}, {1, 2}, {2, 3}};

/** The chain: harmonic bonds 0-1-2-3 and LJ between the pairs that are not bonded. */
OpenMM::System makeSystem() {
    OpenMM::System system;
    for (int i = 0; i < NUM_PARTICLES; i++)
        system.addParticle(12.0);
    auto* bonds = new OpenMM::HarmonicBondForce();
    for (auto [i, j] : BONDS)
        bonds->addBond(i, j, BOND_LENGTH, BOND_K);
    system.addForce(bonds);
    auto* lj = new OpenMM::CustomNonbondedForce("4*epsilon*((sigma/r)^12-(sigma/r)^6)");
    lj->addGlobalParameter("sigma", SIGMA);
    lj->addGlobalParameter("epsilon", EPSILON);
    lj->setNonbondedMethod(OpenMM::CustomNonbondedForce::NoCutoff);
    for (int i = 0; i < NUM_PARTICLES; i++)
        lj->addParticle({});
    lj->createExclusionsFromBonds(BONDS, 1);
    system.addForce(lj);
    return system;
}

/** The energy of the chain by hand, kJ/mol; x holds 4 * 3 values in nm. */
double formulaEnergy(const double* x) {
    auto distance = [&](int i, int j) {
        double s = 0;
        for (int d = 0; d < 3; d++)
            s += (x[3 * i + d] - x[3 * j + d]) * (x[3 * i + d] - x[3 * j + d]);
        return std::sqrt(s);
    };
    double e = 0;
    for (auto [i, j] : BONDS)
        e += 0.5 * BOND_K * std::pow(distance(i, j) - BOND_LENGTH, 2);
    for (auto [i, j] : std::vector<std::pair<int, int>>{{0, 2}, {0, 3}, {1, 3}}) {
        const double s6 = std::pow(SIGMA / distance(i, j), 6);
        e += 4 * EPSILON * (s6 * s6 - s6);
    }
    return e;
}

/** B chain configurations near a zig-zag, flattened [B * 4 * 3], nm. */
std::vector<double> configurations(int batch, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> noise(0.0, 0.015);
    std::vector<double> x;
    for (int b = 0; b < batch; b++)
        for (int i = 0; i < NUM_PARTICLES; i++) {
            x.push_back(0.13 * i + noise(rng));
            x.push_back(0.08 * (i % 2) + noise(rng));
            x.push_back(noise(rng));
        }
    return x;
}

std::vector<Vec3> toVec3(const double* x, int n) {
    std::vector<Vec3> out;
    for (int i = 0; i < n; i++)
        out.emplace_back(x[3 * i], x[3 * i + 1], x[3 * i + 2]);
    return out;
}

/** Energy and forces from a plain Context on the Reference platform. */
std::pair<double, std::vector<Vec3>> contextEnergy(const OpenMM::System& system, const std::vector<Vec3>& positions) {
    OpenMM::VerletIntegrator integrator(0.001);
    OpenMM::Context context(system, integrator, OpenMM::Platform::getPlatformByName("Reference"));
    context.setPositions(positions);
    const OpenMM::State state = context.getState(OpenMM::State::Energy | OpenMM::State::Forces);
    return {state.getPotentialEnergy(), state.getForces()};
}

void expectOpenMMError(const std::function<void()>& f, const std::string& fragment) {
    try {
        f();
        ADD_FAILURE() << "no exception; expected one mentioning '" << fragment << "'";
    } catch (const OpenMM::OpenMMException& e) {
        const std::string message = e.what();
        EXPECT_EQ(message.rfind("OpenMMSystemTarget: ", 0), 0u) << message;
        EXPECT_NE(message.find(fragment), std::string::npos) << message;
    }
}

double kT() { return BOLTZMANN * TEMPERATURE; }

}  // namespace

TEST(OpenMMSystemTarget, BoltzmannConstantIsOpenMMs) {
    EXPECT_NEAR(BOLTZMANN, 8.314462618e-3, 1e-12);
    OpenMMSystemTarget target(makeSystem(), TEMPERATURE, {}, {}, "Reference", 1);
    EXPECT_DOUBLE_EQ(target.getKT(), BOLTZMANN * TEMPERATURE);
    EXPECT_EQ(target.getNumParticles(), NUM_PARTICLES);
    EXPECT_EQ(target.getSystemNumParticles(), NUM_PARTICLES);
    EXPECT_EQ(target.getPlatformName(), "Reference");
    EXPECT_EQ(target.getParticles(), (std::vector<int>{0, 1, 2, 3}));
    OpenMMSystemTarget defaults(makeSystem(), TEMPERATURE);
    EXPECT_EQ(defaults.getNumThreads(), std::max(1, int(std::thread::hardware_concurrency())));
}

TEST(OpenMMSystemTarget, EnergiesEqualContextAndFormula) {
    const OpenMM::System system = makeSystem();
    OpenMMSystemTarget target(system, TEMPERATURE, {}, {}, "Reference", 2);
    const int batch = 8;
    const std::vector<double> x = configurations(batch, 1);
    const OpenMMSystemTargetResult r = target.evaluate(x);
    ASSERT_EQ(r.energies.size(), size_t(batch));
    ASSERT_EQ(r.reducedEnergies.size(), size_t(batch));
    ASSERT_EQ(r.forces.size(), x.size());
    for (int b = 0; b < batch; b++) {
        const double* xb = x.data() + 3 * NUM_PARTICLES * b;
        const double expected = contextEnergy(system, toVec3(xb, NUM_PARTICLES)).first;
        EXPECT_DOUBLE_EQ(r.energies[b], expected);
        EXPECT_NEAR(r.energies[b], formulaEnergy(xb), 1e-10 * (1 + std::abs(expected)));
        EXPECT_DOUBLE_EQ(r.reducedEnergies[b], r.energies[b] / kT());
    }
    const OpenMMSystemTargetResult energyOnly = target.evaluate(x, false);
    EXPECT_TRUE(energyOnly.forces.empty());
    EXPECT_EQ(energyOnly.energies, r.energies);
}

TEST(OpenMMSystemTarget, ForcesEqualContextAndFiniteDifferences) {
    const OpenMM::System system = makeSystem();
    OpenMMSystemTarget target(system, TEMPERATURE, {}, {}, "Reference", 2);
    std::vector<double> x = configurations(1, 2);
    const OpenMMSystemTargetResult r = target.evaluate(x);
    const std::vector<Vec3> contextForces = contextEnergy(system, toVec3(x.data(), NUM_PARTICLES)).second;
    // Central differences of the energy, all 12 coordinates in one batch of 24.
    const double h = 1e-6;
    std::vector<double> displaced;
    for (size_t k = 0; k < x.size(); k++)
        for (double sign : {1.0, -1.0}) {
            std::vector<double> y = x;
            y[k] += sign * h;
            displaced.insert(displaced.end(), y.begin(), y.end());
        }
    const std::vector<double> e = target.evaluate(displaced, false).energies;
    double scale = 0;
    for (double f : r.forces)
        scale = std::max(scale, std::abs(f));
    ASSERT_GT(scale, 1.0);
    for (size_t k = 0; k < x.size(); k++) {
        EXPECT_DOUBLE_EQ(r.forces[k], contextForces[k / 3][k % 3]) << "coordinate " << k;
        const double fd = -(e[2 * k] - e[2 * k + 1]) / (2 * h);
        EXPECT_NEAR(r.forces[k], fd, 1e-6 * scale) << "coordinate " << k;
    }
}

TEST(OpenMMSystemTarget, AutogradGradientIsMinusForcesOverKT) {
    auto target = std::make_shared<OpenMMSystemTarget>(makeSystem(), TEMPERATURE, std::vector<int>{},
                                                       std::vector<Vec3>{}, "Reference", 2);
    OpenMMSystemTargetImpl impl(target);
    EXPECT_EQ(impl.numParticles(), NUM_PARTICLES);
    EXPECT_EQ(impl.dim(), 3);
    EXPECT_EQ(impl.name(), "openmm-system");
    const int batch = 6;
    const std::vector<double> values = configurations(batch, 3);
    const torch::Tensor x0 =
        torch::from_blob(const_cast<double*>(values.data()), {batch, NUM_PARTICLES, 3}, torch::kFloat64).clone();
    const OpenMMSystemTargetResult r = target->evaluate(values);
    const torch::Tensor energies = torch::tensor(r.reducedEnergies, torch::kFloat64);
    const torch::Tensor forces =
        torch::tensor(r.forces, torch::kFloat64).view({batch, NUM_PARTICLES, 3}) / target->getKT();

    torch::Tensor x = x0.clone().requires_grad_(true);
    torch::Tensor e = impl.energy(x);
    ASSERT_TRUE(e.requires_grad());
    EXPECT_TRUE(torch::allclose(e.detach(), energies, 1e-14, 0));
    const torch::Tensor weights = torch::linspace(0.5, 2.0, batch, torch::kFloat64);
    (e * weights).sum().backward();
    EXPECT_TRUE(torch::allclose(x.grad(), -forces * weights.view({-1, 1, 1}), 1e-12, 1e-12));

    // energyAndForces (one evaluation) and the base class's autograd version agree.
    auto [e1, f1] = impl.energyAndForces(x0);
    auto [e2, f2] = impl.Target::energyAndForces(x0);
    EXPECT_TRUE(torch::allclose(e1, energies, 1e-14, 0));
    EXPECT_TRUE(torch::allclose(f1, forces, 1e-12, 1e-12));
    EXPECT_TRUE(torch::allclose(e2, energies, 1e-14, 0));
    EXPECT_TRUE(torch::allclose(f2, forces, 1e-12, 1e-12));

    // Without grad, and in float32: same values, x's dtype.
    {
        torch::NoGradGuard noGrad;
        torch::Tensor e3 = impl.energy(x0.clone().requires_grad_(true));
        EXPECT_FALSE(e3.requires_grad());
        EXPECT_TRUE(torch::allclose(e3, energies, 1e-14, 0));
    }
    torch::Tensor xf = x0.to(torch::kFloat32).requires_grad_(true);
    torch::Tensor ef = impl.energy(xf);
    EXPECT_EQ(ef.scalar_type(), torch::kFloat32);
    ef.sum().backward();
    EXPECT_EQ(xf.grad().scalar_type(), torch::kFloat32);
    EXPECT_TRUE(torch::allclose(ef.to(torch::kFloat64), impl.energy(xf.detach().to(torch::kFloat64)), 1e-6, 1e-6));
}

TEST(OpenMMSystemTarget, OneAndFourThreadsGiveTheSameResults) {
    const OpenMM::System system = makeSystem();
    OpenMMSystemTarget one(system, TEMPERATURE, {}, {}, "Reference", 1);
    OpenMMSystemTarget four(system, TEMPERATURE, {}, {}, "Reference", 4);
    EXPECT_EQ(one.getNumThreads(), 1);
    EXPECT_EQ(four.getNumThreads(), 4);
    const std::vector<double> x = configurations(64, 4);
    const OpenMMSystemTargetResult a = one.evaluate(x), b = four.evaluate(x);
    EXPECT_EQ(a.energies, b.energies);
    EXPECT_EQ(a.forces, b.forces);
    for (int k = 0; k < 64; k++)
        EXPECT_NEAR(a.energies[k], formulaEnergy(x.data() + 12 * k), 1e-10 * (1 + std::abs(a.energies[k])));
    // A batch smaller than the pool, and an empty batch.
    const std::vector<double> two(x.begin(), x.begin() + 24);
    EXPECT_EQ(four.evaluate(two).energies, std::vector<double>(a.energies.begin(), a.energies.begin() + 2));
    EXPECT_TRUE(four.evaluate(std::vector<double>{}).energies.empty());
}

TEST(OpenMMSystemTarget, SubsetHoldsOtherParticlesFixed) {
    const OpenMM::System system = makeSystem();
    const std::vector<double> ref = configurations(1, 5);
    const std::vector<Vec3> reference = toVec3(ref.data(), NUM_PARTICLES);
    const std::vector<int> subset = {3, 1};
    OpenMMSystemTarget target(system, TEMPERATURE, subset, reference, "Reference", 3);
    OpenMMSystemTarget full(system, TEMPERATURE, {}, {}, "Reference", 1);
    EXPECT_EQ(target.getNumParticles(), 2);
    EXPECT_EQ(target.getSystemNumParticles(), 4);
    EXPECT_EQ(target.getParticles(), subset);
    const int batch = 10;
    // Positions of the moving particles 3 and 1: their reference positions plus noise.
    std::mt19937 rng(6);
    std::normal_distribution<double> noise(0.0, 0.02);
    std::vector<double> x;
    for (int b = 0; b < batch; b++)
        for (int k = 0; k < 2; k++)
            for (int d = 0; d < 3; d++)
                x.push_back(ref[3 * subset[k] + d] + noise(rng));
    std::vector<double> expandedPositions;
    for (int b = 0; b < batch; b++) {
        std::vector<double> y = ref;
        for (int k = 0; k < 2; k++)
            for (int d = 0; d < 3; d++)
                y[3 * subset[k] + d] = x[6 * b + 3 * k + d];
        expandedPositions.insert(expandedPositions.end(), y.begin(), y.end());
    }
    const OpenMMSystemTargetResult r = target.evaluate(x);
    const OpenMMSystemTargetResult expected = full.evaluate(expandedPositions);
    ASSERT_EQ(r.forces.size(), size_t(batch * 2 * 3));
    for (int b = 0; b < batch; b++) {
        EXPECT_DOUBLE_EQ(r.energies[b], expected.energies[b]);
        EXPECT_NEAR(r.energies[b], formulaEnergy(expandedPositions.data() + 12 * b),
                    1e-10 * (1 + std::abs(r.energies[b])));
        for (int k = 0; k < 2; k++)
            for (int d = 0; d < 3; d++)
                EXPECT_DOUBLE_EQ(r.forces[6 * b + 3 * k + d], expected.forces[12 * b + 3 * subset[k] + d]);
    }
    // Evaluating again after other configurations gives the same energies: the rest stayed put.
    EXPECT_EQ(target.evaluate(x).energies, r.energies);
}

TEST(OpenMMSystemTarget, SystemIsCopied) {
    OpenMM::System system = makeSystem();
    OpenMMSystemTarget target(system, TEMPERATURE, {}, {}, "Reference", 1);
    const std::vector<double> x = configurations(1, 7);
    const double before = target.evaluate(x).energies[0];
    dynamic_cast<OpenMM::HarmonicBondForce&>(system.getForce(0)).setBondParameters(0, 0, 1, 0.5, 1e5);
    EXPECT_EQ(target.evaluate(x).energies[0], before);
}

TEST(OpenMMSystemTarget, FromXmlMatchesTheSystem) {
    const OpenMM::System system = makeSystem();
    std::stringstream xml;
    OpenMM::XmlSerializer::serialize<OpenMM::System>(&system, "System", xml);
    auto target = OpenMMSystemTarget::fromXml(xml.str(), TEMPERATURE, {}, {}, "Reference", 2);
    const std::vector<double> x = configurations(4, 8);
    const OpenMMSystemTargetResult r = target->evaluate(x);
    for (int b = 0; b < 4; b++)
        EXPECT_NEAR(r.energies[b], formulaEnergy(x.data() + 12 * b), 1e-10);
    expectOpenMMError([] { OpenMMSystemTarget::fromXml("<System", TEMPERATURE); }, "cannot read the System from XML");
}

TEST(OpenMMSystemTarget, OverlappingAtomsGiveInfiniteEnergy) {
    auto target = std::make_shared<OpenMMSystemTarget>(makeSystem(), TEMPERATURE, std::vector<int>{},
                                                       std::vector<Vec3>{}, "Reference", 2);
    std::vector<double> x = configurations(3, 9);
    for (int d = 0; d < 3; d++)
        x[12 + 3 * 2 + d] = x[12 + d];                     // configuration 1: particles 0 and 2 (an LJ pair) coincide
    x[24 + 5] = std::numeric_limits<double>::quiet_NaN();  // configuration 2: a NaN position
    const OpenMMSystemTargetResult r = target->evaluate(x);
    EXPECT_TRUE(std::isfinite(r.energies[0]));
    EXPECT_NEAR(r.energies[0], formulaEnergy(x.data()), 1e-9);
    for (int b : {1, 2}) {
        EXPECT_EQ(r.energies[b], std::numeric_limits<double>::infinity()) << b;
        EXPECT_EQ(r.reducedEnergies[b], std::numeric_limits<double>::infinity()) << b;
        for (int k = 0; k < 12; k++)
            EXPECT_EQ(r.forces[12 * b + k], 0.0);
    }
    // Through autograd: +inf energy and a zero (not NaN) gradient for those configurations.
    OpenMMSystemTargetImpl impl(target);
    torch::Tensor xt = torch::tensor(x, torch::kFloat64).view({3, NUM_PARTICLES, 3}).requires_grad_(true);
    torch::Tensor e = impl.energy(xt);
    EXPECT_TRUE(std::isinf(e[1].item<double>()));
    torch::Tensor mask = torch::isfinite(e);
    torch::where(mask, e, torch::zeros_like(e)).sum().backward();
    EXPECT_TRUE(torch::isfinite(xt.grad()).all().item<bool>());
    EXPECT_EQ(xt.grad()[1].abs().sum().item<double>(), 0.0);
}

TEST(OpenMMSystemTarget, PeriodicSystemsAreEvaluatedWithoutWrapping) {
    OpenMM::System system;
    const double box = 2.0;
    system.setDefaultPeriodicBoxVectors(Vec3(box, 0, 0), Vec3(0, box, 0), Vec3(0, 0, box));
    auto* lj = new OpenMM::CustomNonbondedForce("4*0.5*((0.3/r)^12-(0.3/r)^6)");
    lj->setNonbondedMethod(OpenMM::CustomNonbondedForce::CutoffPeriodic);
    lj->setCutoffDistance(0.9);
    for (int i = 0; i < 3; i++) {
        system.addParticle(1.0);
        lj->addParticle({});
    }
    system.addForce(lj);
    OpenMMSystemTarget target(system, TEMPERATURE, {}, {}, "Reference", 2);
    std::vector<double> x = {0.1, 0.1, 0.1, 0.45, 0.1, 0.1, 0.1, 1.75, 0.1};  // 0-2 interact across the boundary
    std::vector<double> shifted = x;
    shifted[3] += box;      // particle 1 one box further in x
    shifted[8] -= 2 * box;  // particle 2 two boxes back in z
    std::vector<double> both = x;
    both.insert(both.end(), shifted.begin(), shifted.end());
    const OpenMMSystemTargetResult r = target.evaluate(both);
    const double expected = contextEnergy(system, toVec3(x.data(), 3)).first;
    EXPECT_DOUBLE_EQ(r.energies[0], expected);
    EXPECT_NEAR(r.energies[1], expected, 1e-10);
    auto lj12 = [](double d) { return 2.0 * (std::pow(0.3 / d, 12) - std::pow(0.3 / d, 6)); };
    EXPECT_NEAR(expected, lj12(0.35) + lj12(0.35) + lj12(std::hypot(0.35, 0.35)), 1e-9);
}

TEST(OpenMMSystemTarget, CpuPlatformAgreesWithReference) {
    const OpenMM::System system = makeSystem();
    std::unique_ptr<OpenMMSystemTarget> cpu;
    try {
        cpu = std::make_unique<OpenMMSystemTarget>(system, TEMPERATURE, std::vector<int>{}, std::vector<Vec3>{}, "CPU",
                                                   2);
    } catch (const OpenMM::OpenMMException& e) {
        GTEST_SKIP() << e.what();
    }
    EXPECT_EQ(cpu->getPlatformName(), "CPU");
    OpenMMSystemTarget reference(system, TEMPERATURE, {}, {}, "Reference", 1);
    const std::vector<double> x = configurations(16, 10);
    const OpenMMSystemTargetResult a = cpu->evaluate(x), b = reference.evaluate(x);
    for (int k = 0; k < 16; k++)
        EXPECT_NEAR(a.energies[k], b.energies[k], 1e-4 * (1 + std::abs(b.energies[k])));
    for (size_t k = 0; k < a.forces.size(); k++)
        EXPECT_NEAR(a.forces[k], b.forces[k], 1e-3 * (1 + std::abs(b.forces[k])));
}

TEST(OpenMMSystemTarget, BadInputIsAClearError) {
    const OpenMM::System system = makeSystem();
    const std::vector<Vec3> reference(NUM_PARTICLES, Vec3(0.1, 0.2, 0.3));
    expectOpenMMError([&] { OpenMMSystemTarget t(system, 0.0); }, "temperature (K) must be positive and finite (got 0)");
    expectOpenMMError([&] { OpenMMSystemTarget t(system, -5.0); }, "(got -5)");
    expectOpenMMError([&] { OpenMMSystemTarget t(system, std::nan("")); }, "temperature (K) must be positive");
    expectOpenMMError(
        [&] {
            OpenMMSystemTarget t(system, TEMPERATURE, {0, 4}, reference);
        },
        "particle index 4 is out of range for a System of 4 particles");
    expectOpenMMError([&] { OpenMMSystemTarget t(system, TEMPERATURE, {-1}, reference); },
                      "particle index -1 is out of range");
    expectOpenMMError(
        [&] {
            OpenMMSystemTarget t(system, TEMPERATURE, {1, 2, 1}, reference);
        },
        "particle index 1 is selected twice");
    expectOpenMMError(
        [&] {
            OpenMMSystemTarget t(system, TEMPERATURE, {1, 2});
        },
        "2 of 4 particles are selected: reference positions for all particles are required");
    expectOpenMMError(
        [&] {
            OpenMMSystemTarget t(system, TEMPERATURE, {1, 2}, {Vec3()});
        },
        "got 1 reference positions for a System of 4 particles");
    expectOpenMMError([&] { OpenMMSystemTarget t(system, TEMPERATURE, {}, {}, "NoSuchPlatform", 1); },
                      "platform 'NoSuchPlatform' is not available");
    expectOpenMMError([&] { OpenMMSystemTarget t(system, TEMPERATURE, {}, {}, "Reference", -1); },
                      "number of threads must be 0 (one per core) or positive, got -1");

    auto target = std::make_shared<OpenMMSystemTarget>(system, TEMPERATURE, std::vector<int>{}, std::vector<Vec3>{},
                                                       "Reference", 1);
    expectOpenMMError([&] { target->evaluate(std::vector<double>(7, 0.1)); },
                      "got 7 position values, not a multiple of 12 (4 particles x 3)");
    OpenMMSystemTargetImpl impl(target);
    expectOpenMMError(
        [&] {
            impl.energy(torch::zeros({2, 3, 3}, torch::kFloat64));
        },
        "positions must have shape [B, 4, 3], got [2, 3, 3]");
    expectOpenMMError([&] { impl.energy(torch::zeros({4, 3}, torch::kFloat64)); }, "got [4, 3]");
}

// OpenMM's plugin folder (internal/OpenMMPlugins.h): the one home of the search that OpenMMSystemTarget
// and the openmmbg tool share.
TEST(OpenMMPlugins, FolderIsTheVariableElseTheOneBesideLibOpenMM) {
    const char* set = std::getenv("OPENMM_PLUGIN_DIR");
    const std::optional<std::string> saved = set ? std::optional<std::string>(set) : std::nullopt;
    ::unsetenv("OPENMM_PLUGIN_DIR");
    // Beside the libOpenMM.so this test loaded: the folder CMake found beside the one it linked.
    const std::string found = openmmPluginDirectory();
    EXPECT_TRUE(std::filesystem::equivalent(found, OPENMM_PLUGIN_DIR)) << found << " vs " << OPENMM_PLUGIN_DIR;
    ::setenv("OPENMM_PLUGIN_DIR", "/elsewhere/plugins", 1);
    EXPECT_EQ(openmmPluginDirectory(), "/elsewhere/plugins");
    if (saved)
        ::setenv("OPENMM_PLUGIN_DIR", saved->c_str(), 1);
    else
        ::unsetenv("OPENMM_PLUGIN_DIR");
}

TEST(OpenMMPlugins, LoadedOncePerProcess) {
    loadOpenMMPlugins();
    EXPECT_NO_THROW(OpenMM::Platform::getPlatformByName("CPU"));
    const int numPlatforms = OpenMM::Platform::getNumPlatforms();
    loadOpenMMPlugins();  // a second load of the folder would register its platforms again
    EXPECT_EQ(OpenMM::Platform::getNumPlatforms(), numPlatforms);
}
