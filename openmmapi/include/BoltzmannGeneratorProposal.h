#pragma once
/**
 * BoltzmannGeneratorProposal: an OpenMM Force that, every `frequency` steps, proposes new
 * configurations of a set of particles drawn from a trained Boltzmann generator (an E-ACF flow)
 * and accepts each as an independent Metropolis-Hastings move on the augmented space, using the
 * Context's own potential energy. It adds no forces or energy to the System. Public header: no
 * LibTorch. See docs/boltzmann-generator-proposal.md.
 */
#include "openmm/Context.h"
#include "openmm/Force.h"

#include <array>
#include <string>
#include <vector>

namespace OpenMMBG {

class BoltzmannGeneratorProposal : public OpenMM::Force {
public:
    /** Name of the Context parameter holding the temperature (K) proposals are accepted at. */
    static const std::string& Temperature() {
        static const std::string name = "BoltzmannGeneratorProposalTemperature";
        return name;
    }
    /**
     * Create a proposal move from a model file (.bgm). Its bytes are embedded, so the Force (and a
     * serialized copy of it) does not depend on the file afterwards.
     * @throws OpenMM::OpenMMException if the file cannot be read or is not a valid model
     */
    explicit BoltzmannGeneratorProposal(const std::string& modelFile);
    /** Create from the bytes of a .bgm file (used by deserialization). */
    static BoltzmannGeneratorProposal* fromModelBytes(const std::string& bytes);

    /** The embedded model file's bytes. */
    const std::string& getModelBytes() const { return modelBytes; }
    /** Number of particles the model describes. */
    int getNumModelParticles() const { return numModelParticles; }
    /** The particles the model describes, in model order. Empty (the default) means 0..N-1. */
    const std::vector<int>& getParticles() const { return particles; }
    /** Set the particles the model describes, in model order (empty: the first N particles). */
    void setParticles(const std::vector<int>& indices) { particles = indices; }
    /** Steps between proposal attempts (0 disables). Default 10. */
    int getFrequency() const { return frequency; }
    /** Set the steps between proposal attempts (0 disables; negative is an error). */
    void setFrequency(int steps);
    /** Temperature (K): the default value of the Context parameter Temperature(). Default 300 K. */
    double getTemperature() const { return defaultTemperature; }
    /** Set the temperature (K, > 0): the default of the Context parameter Temperature(). */
    void setTemperature(double kelvin);
    /** Proposals per attempt: one batched flow call, then that many MH steps in turn. Default 1. */
    int getNumProposals() const { return numProposals; }
    /** Set the proposals per attempt (>= 1). */
    void setNumProposals(int n);
    /** Random number seed (0: a seed derived from the clock, different for each Context). Default 0. */
    int getRandomNumberSeed() const { return randomNumberSeed; }
    void setRandomNumberSeed(int seed) { randomNumberSeed = seed; }
    /** Whether accepted moves redraw the moved particles' velocities from Maxwell-Boltzmann. Default true. */
    bool getRedrawVelocities() const { return redrawVelocities; }
    void setRedrawVelocities(bool redraw) { redrawVelocities = redraw; }
    /**
     * Chiral centres: quadruples (a, b, c, d) of particle indices whose signed volume
     * (x_b - x_a) . ((x_c - x_a) x (x_d - x_a)) must keep its sign; a proposal flipping one is
     * rejected (exact for the target restricted to that chirality).
     */
    const std::vector<std::array<int, 4>>& getChiralCenters() const { return chiralCenters; }
    void setChiralCenters(const std::vector<std::array<int, 4>>& centers) { chiralCenters = centers; }
    /** Add a chiral centre; returns its index. */
    int addChiralCenter(int a, int b, int c, int d);

    /** Proposals made in this Context so far. */
    long long getNumProposed(const OpenMM::Context& context) const;
    /** Proposals accepted in this Context so far. */
    long long getNumAccepted(const OpenMM::Context& context) const;
    /** log of the acceptance ratio of the last proposal in this Context (NaN before the first). */
    double getLastLogAcceptanceRatio(const OpenMM::Context& context) const;

    bool usesPeriodicBoundaryConditions() const override { return false; }

protected:
    OpenMM::ForceImpl* createImpl() const override;

private:
    BoltzmannGeneratorProposal() = default;
    void setModelBytes(const std::string& bytes);
    std::string modelBytes;
    int numModelParticles = 0;
    std::vector<int> particles;
    int frequency = 10;
    double defaultTemperature = 300.0;
    int numProposals = 1;
    int randomNumberSeed = 0;
    bool redrawVelocities = true;
    std::vector<std::array<int, 4>> chiralCenters;
};

}  // namespace OpenMMBG
