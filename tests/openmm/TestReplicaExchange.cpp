// ReplicaExchange: exact populations and energies of an asymmetric double well at the coldest
// temperature (which plain MD there cannot reach), failure when the exchange criterion is wrong,
// bit-exact resume after a stop (including frames a killed run wrote after its last checkpoint),
// a BoltzmannGeneratorProposal working in every replica, and the setup errors.
#include "ReplicaExchange.h"

#include "BoltzmannGeneratorProposal.h"
#include "OpenMMBGUnits.h"
#include "openmmbg/io/DcdReader.h"
#include "openmmbg/FlowModel.h"

#include "openmm/CustomExternalForce.h"
#include "openmm/OpenMMException.h"
#include "openmm/Platform.h"
#include "openmm/State.h"
#include "openmm/System.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

extern "C" void registerKernelFactories();

using namespace OpenMM;
using namespace OpenMMBG;

namespace {

const double BOLTZ = BOLTZMANN;
const double T0 = 300.0, KT0 = BOLTZ * T0;
// U = A (x^2 - 1)^2 + B x + K/2 (y^2 + z^2): wells at x = -1 (deeper) and x = +1, barrier A = 8 kT0.
const double A = 8 * KT0, B = 0.5 * KT0, K = 10 * KT0;

System* doubleWell(int numParticles = 1) {
    System* system = new System();
    auto* well = new CustomExternalForce("A*(x^2-1)^2 + B*x + 0.5*K*(y^2+z^2)");
    well->addGlobalParameter("A", A);
    well->addGlobalParameter("B", B);
    well->addGlobalParameter("K", K);
    for (int i = 0; i < numParticles; i++) {
        system->addParticle(10.0);
        well->addParticle(i);
    }
    system->addForce(well);
    return system;
}

// Exact P(x > 0) and <U> at temperature T by quadrature (the y, z part contributes kT).
std::pair<double, double> exactAverages(double T) {
    const double kT = BOLTZ * T;
    double z = 0, right = 0, energy = 0;
    for (double x = -3; x <= 3; x += 1e-4) {
        const double u = A * (x * x - 1) * (x * x - 1) + B * x, w = std::exp(-u / kT);
        z += w;
        energy += u * w;
        if (x > 0)
            right += w;
    }
    return {right / z, energy / z + kT};
}

std::string freshDirectory(const std::string& name) {
    const auto path = std::filesystem::temp_directory_path() / ("openmmbg_remd_" + name);
    std::filesystem::remove_all(path);
    return path.string();
}

ReplicaExchangeOptions ladderOptions(const std::string& directory) {
    ReplicaExchangeOptions o;
    o.temperatures = {300, 480, 770, 1230, 1970, 3150};
    o.timestep = 0.01;
    o.friction = 5.0;
    o.stepsPerExchange = 50;
    o.exchangesPerCheckpoint = 1000;
    o.platform = "Reference";
    o.randomSeed = 2024;
    o.outputDirectory = directory;
    return o;
}

// Batch-means mean and standard error of a series.
std::pair<double, double> batchMeans(const std::vector<double>& values, int batches) {
    const size_t per = values.size() / batches;
    std::vector<double> means;
    for (int b = 0; b < batches; b++) {
        double s = 0;
        for (size_t k = b * per; k < (b + 1) * per; k++)
            s += values[k];
        means.push_back(s / per);
    }
    double mean = 0, var = 0;
    for (double m : means)
        mean += m / batches;
    for (double m : means)
        var += (m - mean) * (m - mean) / (batches - 1);
    return {mean, std::sqrt(var / batches)};
}

struct ColdStatistics {
    std::pair<double, double> right, energy;
    double swapAcceptance;
};

// The test seam of the exchange criterion: a multiplier on its log ratio (1 is correct).
class ScaledReplicaExchange : public ReplicaExchange {
public:
    ScaledReplicaExchange(const System& system, const std::vector<Vec3>& positions, const ReplicaExchangeOptions& options,
                          double logRatioScale)
        : ReplicaExchange(system, positions, options), logRatioScale(logRatioScale) {}

protected:
    double swapLogRatio(double betaI, double betaJ, double energyI, double energyJ) const override {
        return logRatioScale * ReplicaExchange::swapLogRatio(betaI, betaJ, energyI, energyJ);
    }

private:
    double logRatioScale;
};

ColdStatistics sampleColdReplica(double logRatioScale, const std::string& name) {
    System* system = doubleWell();
    ScaledReplicaExchange remd(*system, {Vec3(-1, 0, 0)}, ladderOptions(freshDirectory(name)), logRatioScale);
    remd.run(200);  // equilibration
    std::vector<double> right, energy;
    for (int k = 0; k < 12000; k++) {
        remd.run(remd.getNumExchanges() + 1);
        right.push_back(remd.getContext(0).getState(State::Positions).getPositions()[0][0] > 0 ? 1.0 : 0.0);
        energy.push_back(remd.getPotentialEnergy(0));
    }
    delete system;
    return {batchMeans(right, 20), batchMeans(energy, 20),
            double(remd.getNumSwapsAccepted(0)) / double(remd.getNumSwapsAttempted(0))};
}

}  // namespace

TEST(ReplicaExchange, ColdReplicaSamplesTheExactDistribution) {
    auto [pRight, uMean] = exactAverages(T0);
    ColdStatistics s = sampleColdReplica(1.0, "exact");
    EXPECT_GT(s.swapAcceptance, 0.2);
    EXPECT_LT(s.right.second, 0.03) << "the test would have no power";
    std::cout << "P(x > 0) " << s.right.first << " +- " << s.right.second << " (exact " << pRight << "), <U> "
              << s.energy.first << " +- " << s.energy.second << " (exact " << uMean << "), swap acceptance "
              << s.swapAcceptance << std::endl;
    EXPECT_NEAR(s.right.first, pRight, 4 * s.right.second + 0.005) << "P(x > 0), exact " << pRight;
    EXPECT_NEAR(s.energy.first, uMean, 4 * s.energy.second + 0.01) << "<U>, exact " << uMean;
}

TEST(ReplicaExchange, AWrongExchangeCriterionIsDetected) {
    // Accepting every swap (scale 0) or using the inverted criterion (scale -1) must miss <U>.
    auto [pRight, uMean] = exactAverages(T0);
    (void) pRight;
    for (double scale : {0.0, -1.0}) {
        ColdStatistics s = sampleColdReplica(scale, "wrong");
        EXPECT_GT(std::abs(s.energy.first - uMean), 4 * s.energy.second + 0.01)
            << "scale " << scale << ": <U> " << s.energy.first << " +- " << s.energy.second << ", exact " << uMean;
    }
}

namespace {

std::string readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

ReplicaExchangeOptions smallOptions(const std::string& directory) {
    ReplicaExchangeOptions o = ladderOptions(directory);
    o.temperatures = {300, 600, 1200};
    o.stepsPerExchange = 20;
    o.exchangesPerFrame = 2;
    o.exchangesPerCheckpoint = 5;
    return o;
}

}  // namespace

TEST(ReplicaExchange, ResumeIsBitExactAndDropsFramesAfterTheCheckpoint) {
    System* system = doubleWell(2);
    const std::vector<Vec3> start = {Vec3(-1, 0, 0), Vec3(1, 0.1, 0)};
    const std::string straight = freshDirectory("straight"), resumed = freshDirectory("resumed");
    std::vector<Vec3> expected;
    {
        ReplicaExchange remd(*system, start, smallOptions(straight));
        remd.run(20);
        expected = remd.getContext(0).getState(State::Positions).getPositions();
    }
    {
        ReplicaExchange remd(*system, start, smallOptions(resumed));
        remd.run(10);
    }
    // What a run killed after its checkpoint leaves behind: extra frames and energy lines.
    {
        std::ofstream dcd(resumed + "/trajectory_0.dcd", std::ios::binary | std::ios::app);
        dcd << std::string(100, 'x');
        std::ofstream csv(resumed + "/energies.csv", std::ios::app);
        csv << "12,1,2,3\n";
    }
    {
        ReplicaExchange remd(*system, {Vec3(), Vec3()}, smallOptions(resumed));  // positions come from the checkpoint
        EXPECT_EQ(remd.getNumExchanges(), 10);
        remd.run(20);
        std::vector<Vec3> x = remd.getContext(0).getState(State::Positions).getPositions();
        for (int i = 0; i < 2; i++)
            for (int d = 0; d < 3; d++)
                EXPECT_EQ(x[i][d], expected[i][d]);
    }
    for (const std::string file : {"trajectory_0.dcd", "trajectory_1.dcd", "trajectory_2.dcd", "energies.csv", "statistics.json"})
        EXPECT_EQ(readFile(straight + "/" + file), readFile(resumed + "/" + file)) << file;
    EXPECT_EQ(readDcdHeader(straight + "/trajectory_0.dcd").numFrames, 10);
    // A checkpoint of another run is refused.
    ReplicaExchangeOptions other = smallOptions(resumed);
    other.stepsPerExchange = 21;
    try {
        ReplicaExchange remd(*system, start, other);
        ADD_FAILURE() << "a checkpoint of a different run was accepted";
    } catch (const OpenMMException& e) {
        EXPECT_NE(std::string(e.what()).find("different run"), std::string::npos) << e.what();
    }
    delete system;
}

TEST(ReplicaExchange, ProposalsRunInEveryReplicaAtItsTemperature) {
    registerKernelFactories();
    const std::string model = (std::filesystem::temp_directory_path() / "openmmbg_remd_model.bgm").string();
    FlowModel(R"({"num_particles": 2, "dim": 3, "projection": "vector", "num_layers": 1, "dtype": "float64"})").save(model);
    System* system = doubleWell(2);
    auto* move = new BoltzmannGeneratorProposal(model);
    move->setFrequency(5);
    move->setNumProposals(2);
    move->setRandomNumberSeed(3);
    system->addForce(move);
    const std::string directory = freshDirectory("proposals");
    {
        ReplicaExchange remd(*system, {Vec3(-1, 0, 0), Vec3(1, 0, 0)}, smallOptions(directory));
        for (int i = 0; i < 3; i++)
            EXPECT_EQ(remd.getContext(i).getParameter(BoltzmannGeneratorProposal::Temperature()),
                      remd.getOptions().temperatures[i]);
        remd.run(20);
        long long accepted = 0;
        for (int i = 0; i < 3; i++) {
            EXPECT_EQ(remd.getNumProposed(i), 20 * 20 / 5 * 2);
            accepted += remd.getNumProposalsAccepted(i);
        }
        EXPECT_GT(accepted, 0);
        EXPECT_NE(remd.getStatisticsJson().find("\"proposal_acceptance\""), std::string::npos);
    }
    ReplicaExchange resumed(*system, {Vec3(), Vec3()}, smallOptions(directory));
    resumed.run(25);
    EXPECT_EQ(resumed.getNumProposed(0), 25 * 20 / 5 * 2) << "counts continue across a resume";
    delete system;
}

TEST(ReplicaExchange, SetupErrorsNameTheProblem) {
    System* system = doubleWell();
    auto expectError = [&](ReplicaExchangeOptions o, const std::vector<Vec3>& x, const std::string& fragment) {
        try {
            ReplicaExchange remd(*system, x, o);
            ADD_FAILURE() << "no error; expected one mentioning '" << fragment << "'";
        } catch (const OpenMMException& e) {
            EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
        }
    };
    const std::vector<Vec3> x = {Vec3(-1, 0, 0)};
    ReplicaExchangeOptions o = smallOptions(freshDirectory("errors"));
    auto with = [&](auto change) {
        ReplicaExchangeOptions c = o;
        change(c);
        return c;
    };
    expectError(with([](auto& c) { c.temperatures = {}; }), x, "no temperatures");
    expectError(with([](auto& c) { c.temperatures = {300, 300}; }), x, "strictly increasing");
    expectError(with([](auto& c) { c.temperatures = {-5, 300}; }), x, "must be positive");
    expectError(with([](auto& c) { c.timestep = 0; }), x, "time step");
    expectError(with([](auto& c) { c.friction = -1; }), x, "friction");
    expectError(with([](auto& c) { c.stepsPerExchange = 0; }), x, "steps per exchange");
    expectError(with([](auto& c) { c.exchangesPerFrame = 0; }), x, "exchanges per frame");
    expectError(with([](auto& c) { c.outputDirectory = ""; }), x, "no output folder");
    expectError(with([](auto& c) { c.outputDirectory = "/proc/openmmbg"; }), x, "cannot create the output folder");
    expectError(o, {Vec3(), Vec3()}, "2 positions for a System of 1 particles");
    delete system;
}
