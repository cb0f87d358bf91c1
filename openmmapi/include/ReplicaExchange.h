#pragma once
/**
 * Temperature replica exchange (parallel tempering) for an OpenMM System: one Context per
 * temperature, Langevin dynamics between exchange attempts, Metropolis swaps of neighbouring
 * temperatures, per-temperature trajectories (DCD) and energies, and checkpoints that let a killed
 * run resume exactly. A BoltzmannGeneratorProposal in the System works in every replica: its
 * temperature parameter is set to each replica's temperature, and its statistics are kept per
 * replica. Public header: no LibTorch. See docs/replica-exchange.md.
 */
#include "openmm/Context.h"
#include "openmm/System.h"
#include "openmm/Vec3.h"

#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace OpenMMBG {

/** Settings of a replica-exchange run. Units: K, ps, 1/ps. */
struct ReplicaExchangeOptions {
    /** Temperatures (K), strictly increasing; the first is the temperature of interest. Required. */
    std::vector<double> temperatures;
    /** Integration time step (ps). Default 0.001. */
    double timestep = 0.001;
    /** Langevin friction (1/ps). Default 1. */
    double friction = 1.0;
    /** MD steps of every replica between exchange attempts. Default 500. */
    int stepsPerExchange = 500;
    /** Exchange attempts between saved frames (trajectories and energies). Default 1. */
    int exchangesPerFrame = 1;
    /** Exchange attempts between checkpoints (also written at the end of run()). Default 10. */
    int exchangesPerCheckpoint = 10;
    /** OpenMM platform name; empty: OpenMM's fastest available. Default empty. */
    std::string platform;
    /** Platform properties, e.g. {"Precision", "mixed"}. */
    std::map<std::string, std::string> platformProperties;
    /** Seed of the exchange decisions, the integrators and the initial velocities (0: from the clock). Default 0. */
    int randomSeed = 0;
    /**
     * Folder for trajectory_<i>.dcd, energies.csv, checkpoint.bin and statistics.json; created if
     * missing. If it holds a checkpoint of the same run, the run resumes from it. Required.
     */
    std::string outputDirectory;
};

class ReplicaExchange {
public:
    /**
     * Set up one Context per temperature. Resumes from outputDirectory/checkpoint.bin if it exists
     * (positions are then taken from the checkpoint). The System is copied.
     * @param positions starting positions (nm) for every replica; ignored when resuming
     * @throws OpenMM::OpenMMException naming the problem: bad temperatures, step counts, positions,
     *         a missing output folder that cannot be created, a checkpoint of a different run
     */
    ReplicaExchange(const OpenMM::System& system, const std::vector<OpenMM::Vec3>& positions,
                    const ReplicaExchangeOptions& options);
    ~ReplicaExchange();

    /**
     * Run until `totalExchanges` exchange attempts have been made in total (counting those done before
     * a resume): MD, then an exchange sweep, per attempt. progress(done, total), if given, is called
     * after every attempt.
     */
    void run(long long totalExchanges, const std::function<void(long long, long long)>& progress = nullptr);

    int getNumReplicas() const { return int(options.temperatures.size()); }
    const ReplicaExchangeOptions& getOptions() const { return options; }
    /** Exchange attempts made so far (sweeps; each tries every other neighbour pair). */
    long long getNumExchanges() const { return numExchanges; }
    /** Swaps attempted and accepted between temperatures i and i + 1. */
    long long getNumSwapsAttempted(int pair) const;
    long long getNumSwapsAccepted(int pair) const;
    /** The Context at temperature index i (its configuration changes as swaps are accepted). */
    OpenMM::Context& getContext(int replica);
    /** Potential energy (kJ/mol) of replica i after the last exchange attempt. */
    double getPotentialEnergy(int replica) const;
    /**
     * Proposals made and accepted by the System's BoltzmannGeneratorProposal (if any) in replica i,
     * summed over the run including the part before a resume. 0 without the Force.
     */
    long long getNumProposed(int replica) const;
    long long getNumProposalsAccepted(int replica) const;
    /** Statistics as JSON (temperatures, swaps and proposals per replica), as in statistics.json. */
    std::string getStatisticsJson() const;

protected:
    /**
     * log of the acceptance ratio of swapping the configurations of two replicas at inverse
     * temperatures betaI, betaJ (mol/kJ) with potential energies energyI, energyJ (kJ/mol):
     * (betaI - betaJ) (energyI - energyJ). The test-only seam of the exchange: tests override it in
     * a subclass to break the criterion, which their exactness tests must detect. Production code
     * never overrides it.
     */
    virtual double swapLogRatio(double betaI, double betaJ, double energyI, double energyJ) const {
        return (betaI - betaJ) * (energyI - energyJ);
    }

private:
    void attemptSwaps();
    void writeFrame();
    void writeCheckpoint();
    bool readCheckpoint();
    void openOutputs(bool resuming);
    std::string runSignature() const;

    ReplicaExchangeOptions options;
    std::unique_ptr<OpenMM::System> system;
    std::vector<std::unique_ptr<OpenMM::Integrator>> integrators;
    std::vector<std::unique_ptr<OpenMM::Context>> contexts;
    int proposalForce = -1;
    std::mt19937_64 random;
    long long numExchanges = 0, numFrames = 0;
    std::vector<long long> swapsAttempted, swapsAccepted;
    std::vector<long long> proposedBefore, acceptedBefore;  // proposal counts restored from a checkpoint
    std::vector<double> energies;
    struct Outputs;
    std::unique_ptr<Outputs> outputs;
};

}  // namespace OpenMMBG
