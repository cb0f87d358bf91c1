#include "ReplicaExchange.h"

#include "BoltzmannGeneratorProposal.h"
#include "OpenMMBGUnits.h"
#include "openmmbg/io/DcdWriter.h"
#include "openmmbg/Validation.h"
#include "openmmbg/io/Files.h"

#include "openmm/LangevinMiddleIntegrator.h"
#include "openmm/OpenMMException.h"
#include "openmm/Platform.h"
#include "openmm/State.h"
#include "openmm/serialization/XmlSerializer.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace OpenMM;

namespace OpenMMBG {

namespace {

const char CHECKPOINT_MAGIC[] = "OPENMMBG-REMD";
const int32_t CHECKPOINT_VERSION = 1;

[[noreturn]] void fail(const std::string& message) { throw OpenMMException("ReplicaExchange: " + message); }

void writeInt64(std::ostream& out, int64_t v) { out.write(reinterpret_cast<const char*>(&v), 8); }
void writeString(std::ostream& out, const std::string& s) {
    writeInt64(out, int64_t(s.size()));
    out.write(s.data(), std::streamsize(s.size()));
}
int64_t readInt64(std::istream& in) {
    int64_t v = 0;
    in.read(reinterpret_cast<char*>(&v), 8);
    if (!in)
        fail("the checkpoint is truncated");
    return v;
}
std::string readString(std::istream& in) {
    const int64_t n = readInt64(in);
    // The checkpoint is read whole (an istringstream): a section longer than what remains is corrupt,
    // and is refused before anything is allocated for it.
    if (n < 0 || n > int64_t(in.rdbuf()->in_avail()))
        fail("the checkpoint is corrupt (a section of " + std::to_string(n) + " bytes)");
    std::string s(size_t(n), '\0');
    in.read(s.data(), std::streamsize(n));
    if (!in)
        fail("the checkpoint is truncated");
    return s;
}

// Writes `bytes` atomically (the flow library's writeFileAtomically: a kill leaves the old or the
// new file, never a partial one), as an OpenMMException on failure.
void writeAtomically(const std::string& path, const std::string& bytes) {
    try {
        writeFileAtomically(path, bytes);
    } catch (const std::exception& e) {
        fail(e.what());
    }
}

}  // namespace

struct ReplicaExchange::Outputs {
    std::vector<std::unique_ptr<DcdWriter>> trajectories;
    std::ofstream energies;
    std::string directory;
    std::string checkpointPath() const { return directory + "/checkpoint.bin"; }
    std::string energiesPath() const { return directory + "/energies.csv"; }
    std::string statisticsPath() const { return directory + "/statistics.json"; }
    std::string trajectoryPath(int i) const { return directory + "/trajectory_" + std::to_string(i) + ".dcd"; }
};

namespace {

// Runs checks of the shared validation (openmmbg/Validation.h), failing as fail() does.
template <class Check>
void check(Check checks) {
    try {
        checks();
    } catch (const std::invalid_argument& e) {
        fail(e.what());
    }
}

}  // namespace

ReplicaExchange::ReplicaExchange(const System& sourceSystem, const std::vector<Vec3>& positions,
                                 const ReplicaExchangeOptions& settings)
    : options(settings), outputs(std::make_unique<Outputs>()) {
    const std::vector<double>& T = options.temperatures;
    if (T.empty())
        fail("no temperatures given");
    for (size_t i = 0; i < T.size(); i++) {
        check([&] { requirePositive("temperature " + std::to_string(i) + " (K)", T[i]); });
        if (i > 0 && !(T[i] > T[i - 1]))
            fail("temperatures must be strictly increasing (" + std::to_string(T[i - 1]) + " K then " +
                 std::to_string(T[i]) + " K)");
    }
    check([&] {
        requirePositive("the time step (ps)", options.timestep);
        requireNonNegative("the friction (1/ps)", options.friction);
    });
    if (options.stepsPerExchange < 1)
        fail("steps per exchange must be >= 1 (got " + std::to_string(options.stepsPerExchange) + ")");
    if (options.exchangesPerFrame < 1)
        fail("exchanges per frame must be >= 1 (got " + std::to_string(options.exchangesPerFrame) + ")");
    if (options.exchangesPerCheckpoint < 1)
        fail("exchanges per checkpoint must be >= 1 (got " + std::to_string(options.exchangesPerCheckpoint) + ")");
    if (options.outputDirectory.empty())
        fail("no output folder given");
    if (int(positions.size()) != sourceSystem.getNumParticles())
        fail("got " + std::to_string(positions.size()) + " positions for a System of " +
             std::to_string(sourceSystem.getNumParticles()) + " particles");
    for (size_t i = 0; i < positions.size(); i++)
        for (int d = 0; d < 3; d++)
            if (!std::isfinite(positions[i][d]))
                fail("the starting position of particle " + std::to_string(i) + " is not finite");
    std::error_code error;
    std::filesystem::create_directories(options.outputDirectory, error);
    if (error || !std::filesystem::is_directory(options.outputDirectory))
        fail("cannot create the output folder '" + options.outputDirectory + "'");
    outputs->directory = options.outputDirectory;

    system.reset(XmlSerializer::clone<System>(sourceSystem));
    for (int i = 0; i < system->getNumForces(); i++)
        if (dynamic_cast<BoltzmannGeneratorProposal*>(&system->getForce(i)) != nullptr)
            proposalForce = i;
    const int n = getNumReplicas();
    const uint64_t seed = options.randomSeed != 0
                              ? uint64_t(options.randomSeed)
                              : uint64_t(std::chrono::high_resolution_clock::now().time_since_epoch().count());
    random.seed(seed);
    for (int i = 0; i < n; i++) {
        auto* integrator = new LangevinMiddleIntegrator(T[i], options.friction, options.timestep);
        integrator->setRandomNumberSeed(int((seed + 7919 * uint64_t(i + 1)) % 2147483647));
        integrators.emplace_back(integrator);
        Context* context = options.platform.empty()
                               ? new Context(*system, *integrator)
                               : new Context(*system, *integrator, Platform::getPlatformByName(options.platform),
                                             options.platformProperties);
        contexts.emplace_back(context);
        if (proposalForce >= 0)
            context->setParameter(BoltzmannGeneratorProposal::Temperature(), T[i]);
    }
    swapsAttempted.assign(std::max(n - 1, 0), 0);
    swapsAccepted.assign(std::max(n - 1, 0), 0);
    proposedBefore.assign(n, 0);
    acceptedBefore.assign(n, 0);
    energies.assign(n, 0.0);
    const bool resuming = readCheckpoint();
    if (!resuming)
        for (int i = 0; i < n; i++) {
            contexts[i]->setPositions(positions);
            contexts[i]->setVelocitiesToTemperature(T[i], int((seed + 104729 * uint64_t(i + 1)) % 2147483647));
        }
    for (int i = 0; i < n; i++) {
        energies[i] = contexts[i]->getState(State::Energy).getPotentialEnergy();
        // A non-finite energy would make every exchange and proposal decision meaningless.
        if (!std::isfinite(energies[i]))
            fail("the starting state of replica " + std::to_string(i) + " has a non-finite energy (" +
                 std::to_string(energies[i]) + " kJ/mol): minimise or fix the positions first");
    }
    openOutputs(resuming);
}

ReplicaExchange::~ReplicaExchange() = default;

std::string ReplicaExchange::runSignature() const {
    nlohmann::json j = {{"num_particles", system->getNumParticles()},
                        {"temperatures", options.temperatures},
                        {"timestep", options.timestep},
                        {"friction", options.friction},
                        {"steps_per_exchange", options.stepsPerExchange},
                        {"exchanges_per_frame", options.exchangesPerFrame},
                        {"platform", contexts.front()->getPlatform().getName()}};
    return j.dump();
}

bool ReplicaExchange::readCheckpoint() {
    const std::string path = outputs->checkpointPath();
    if (!std::filesystem::exists(path))
        return false;
    std::istringstream in(readFileBytes(path));
    char magic[sizeof(CHECKPOINT_MAGIC)] = {};
    in.read(magic, sizeof(CHECKPOINT_MAGIC));
    if (!in || std::string(magic, sizeof(CHECKPOINT_MAGIC)) != std::string(CHECKPOINT_MAGIC, sizeof(CHECKPOINT_MAGIC)))
        fail("'" + path + "' is not a replica-exchange checkpoint");
    const int64_t version = readInt64(in);
    if (version < 1 || version > CHECKPOINT_VERSION)
        fail("'" + path + "' has version " + std::to_string(version) + "; this build reads up to " +
             std::to_string(CHECKPOINT_VERSION));
    const std::string signature = readString(in);
    if (signature != runSignature())
        fail("'" + path + "' belongs to a different run (" + signature + "; this run: " + runSignature() +
             "): use another output folder or the same settings");
    numExchanges = readInt64(in);
    numFrames = readInt64(in);
    std::istringstream rng(readString(in));
    rng >> random;
    for (size_t p = 0; p < swapsAttempted.size(); p++) {
        swapsAttempted[p] = readInt64(in);
        swapsAccepted[p] = readInt64(in);
    }
    for (int i = 0; i < getNumReplicas(); i++) {
        proposedBefore[i] = readInt64(in);
        acceptedBefore[i] = readInt64(in);
        std::istringstream state(readString(in));
        contexts[i]->loadCheckpoint(state);
    }
    return true;
}

void ReplicaExchange::writeCheckpoint() {
    for (auto& trajectory : outputs->trajectories)
        trajectory->flush();
    outputs->energies.flush();
    // The checkpoint promises these frames: a failed write (a full disk) must stop the run here.
    if (!outputs->energies)
        fail("cannot write '" + outputs->energiesPath() + "' (disk full?)");
    std::ostringstream out;
    out.write(CHECKPOINT_MAGIC, sizeof(CHECKPOINT_MAGIC));
    writeInt64(out, CHECKPOINT_VERSION);
    writeString(out, runSignature());
    writeInt64(out, numExchanges);
    writeInt64(out, numFrames);
    std::ostringstream rng;
    rng << random;
    writeString(out, rng.str());
    for (size_t p = 0; p < swapsAttempted.size(); p++) {
        writeInt64(out, swapsAttempted[p]);
        writeInt64(out, swapsAccepted[p]);
    }
    for (int i = 0; i < getNumReplicas(); i++) {
        writeInt64(out, getNumProposed(i));
        writeInt64(out, getNumProposalsAccepted(i));
        std::ostringstream state;
        contexts[i]->createCheckpoint(state);
        writeString(out, state.str());
    }
    writeAtomically(outputs->checkpointPath(), out.str());
    writeAtomically(outputs->statisticsPath(), getStatisticsJson() + "\n");
}

void ReplicaExchange::openOutputs(bool resuming) {
    const int n = getNumReplicas();
    const int64_t interval = int64_t(options.stepsPerExchange) * options.exchangesPerFrame;
    for (int i = 0; i < n; i++)
        outputs->trajectories.emplace_back(std::make_unique<DcdWriter>(outputs->trajectoryPath(i),
                                                                       system->getNumParticles(), interval, interval,
                                                                       options.timestep, resuming ? numFrames : -1));
    // energies.csv: a header line, then one line per frame; on resume keep exactly numFrames lines.
    std::string header = "exchange";
    for (int i = 0; i < n; i++)
        header += ",U_" + std::to_string(i) + " (kJ/mol, " + std::to_string(options.temperatures[i]) + " K)";
    std::string kept = header + "\n";
    if (resuming) {
        std::ifstream in(outputs->energiesPath());
        std::string line;
        std::getline(in, line);
        for (long long f = 0; f < numFrames; f++) {
            if (!std::getline(in, line))
                fail("'" + outputs->energiesPath() + "' holds fewer lines than the checkpoint's " +
                     std::to_string(numFrames) + " frames");
            kept += line + "\n";
        }
    }
    writeAtomically(outputs->energiesPath(), kept);
    outputs->energies.open(outputs->energiesPath(), std::ios::app);
    outputs->energies.precision(12);
    if (!outputs->energies)
        fail("cannot open '" + outputs->energiesPath() + "'");
}

void ReplicaExchange::run(long long totalExchanges, const std::function<void(long long, long long)>& progress) {
    const int n = getNumReplicas();
    while (numExchanges < totalExchanges) {
        for (int i = 0; i < n; i++) {
            integrators[i]->step(options.stepsPerExchange);
            energies[i] = contexts[i]->getState(State::Energy).getPotentialEnergy();
        }
        attemptSwaps();
        numExchanges++;
        if (numExchanges % options.exchangesPerFrame == 0)
            writeFrame();
        if (numExchanges % options.exchangesPerCheckpoint == 0)
            writeCheckpoint();
        if (progress)
            progress(numExchanges, totalExchanges);
    }
    writeCheckpoint();
}

void ReplicaExchange::attemptSwaps() {
    const std::vector<double>& T = options.temperatures;
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    // Even pairs (0-1, 2-3, ...) on even sweeps, odd pairs on odd sweeps.
    for (int p = int(numExchanges % 2); p + 1 < getNumReplicas(); p += 2) {
        const int i = p, j = p + 1;
        const double betaI = 1.0 / (BOLTZMANN * T[i]), betaJ = 1.0 / (BOLTZMANN * T[j]);
        const double logRatio = swapLogRatio(betaI, betaJ, energies[i], energies[j]);
        swapsAttempted[p]++;
        if (!(logRatio >= 0 || uniform(random) < std::exp(logRatio)))
            continue;
        swapsAccepted[p]++;
        // Swap configurations; velocities are rescaled to the new temperature.
        State a = contexts[i]->getState(State::Positions | State::Velocities);
        State b = contexts[j]->getState(State::Positions | State::Velocities);
        std::vector<Vec3> va = a.getVelocities(), vb = b.getVelocities();
        const double up = std::sqrt(T[j] / T[i]);
        for (auto& v : va)
            v *= up;
        for (auto& v : vb)
            v *= 1.0 / up;
        contexts[i]->setPositions(b.getPositions());
        contexts[i]->setVelocities(vb);
        contexts[j]->setPositions(a.getPositions());
        contexts[j]->setVelocities(va);
        std::swap(energies[i], energies[j]);
    }
}

void ReplicaExchange::writeFrame() {
    std::vector<double> xyz;
    for (int i = 0; i < getNumReplicas(); i++) {
        const State state = contexts[i]->getState(State::Positions);
        const std::vector<Vec3>& x = state.getPositions();
        xyz.resize(3 * x.size());
        for (size_t k = 0; k < x.size(); k++)
            for (int d = 0; d < 3; d++)
                xyz[3 * k + d] = x[k][d];
        outputs->trajectories[i]->writeFrame(xyz.data());
    }
    outputs->energies << numExchanges;
    for (double e : energies)
        outputs->energies << "," << e;
    outputs->energies << "\n";
    if (!outputs->energies)
        fail("cannot write '" + outputs->energiesPath() + "' (disk full?)");
    numFrames++;
}

long long ReplicaExchange::getNumSwapsAttempted(int pair) const {
    if (pair < 0 || pair >= int(swapsAttempted.size()))
        fail("pair index " + std::to_string(pair) + " is out of range");
    return swapsAttempted[pair];
}

long long ReplicaExchange::getNumSwapsAccepted(int pair) const {
    if (pair < 0 || pair >= int(swapsAccepted.size()))
        fail("pair index " + std::to_string(pair) + " is out of range");
    return swapsAccepted[pair];
}

Context& ReplicaExchange::getContext(int replica) {
    if (replica < 0 || replica >= getNumReplicas())
        fail("replica index " + std::to_string(replica) + " is out of range");
    return *contexts[replica];
}

double ReplicaExchange::getPotentialEnergy(int replica) const {
    if (replica < 0 || replica >= getNumReplicas())
        fail("replica index " + std::to_string(replica) + " is out of range");
    return energies[replica];
}

long long ReplicaExchange::getNumProposed(int replica) const {
    if (replica < 0 || replica >= getNumReplicas())
        fail("replica index " + std::to_string(replica) + " is out of range");
    if (proposalForce < 0)
        return 0;
    auto& force = dynamic_cast<const BoltzmannGeneratorProposal&>(system->getForce(proposalForce));
    return proposedBefore[replica] + force.getNumProposed(*contexts[replica]);
}

long long ReplicaExchange::getNumProposalsAccepted(int replica) const {
    if (replica < 0 || replica >= getNumReplicas())
        fail("replica index " + std::to_string(replica) + " is out of range");
    if (proposalForce < 0)
        return 0;
    auto& force = dynamic_cast<const BoltzmannGeneratorProposal&>(system->getForce(proposalForce));
    return acceptedBefore[replica] + force.getNumAccepted(*contexts[replica]);
}

std::string ReplicaExchange::getStatisticsJson() const {
    nlohmann::json replicas = nlohmann::json::array(), pairs = nlohmann::json::array();
    for (int i = 0; i < getNumReplicas(); i++) {
        const long long proposed = getNumProposed(i), accepted = getNumProposalsAccepted(i);
        replicas.push_back({{"temperature", options.temperatures[i]},
                            {"potential_energy", energies[i]},
                            {"proposals", proposed},
                            {"proposals_accepted", accepted},
                            {"proposal_acceptance", proposed > 0 ? double(accepted) / double(proposed) : 0.0}});
    }
    for (size_t p = 0; p < swapsAttempted.size(); p++)
        pairs.push_back({{"temperatures", {options.temperatures[p], options.temperatures[p + 1]}},
                         {"attempted", swapsAttempted[p]},
                         {"accepted", swapsAccepted[p]},
                         {"acceptance", swapsAttempted[p] > 0 ? double(swapsAccepted[p]) / double(swapsAttempted[p]) : 0.0}});
    nlohmann::json j = {{"exchanges", numExchanges}, {"frames", numFrames}, {"steps_per_exchange", options.stepsPerExchange},
                        {"timestep_ps", options.timestep}, {"replicas", replicas}, {"swaps", pairs}};
    return j.dump(2);
}

}  // namespace OpenMMBG
