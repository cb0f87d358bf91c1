#pragma once
/**
 * The ForceImpl of BoltzmannGeneratorProposal. As OpenMM's MonteCarloBarostatImpl, it makes every
 * decision of the move: it loads the model once, draws the proposals, evaluates log alpha
 * (MetropolisHastings.h), owns the random generator and the counters, and restores the state when
 * an attempt fails. The platform kernel (MoveModelledParticlesKernel) only reads and writes the
 * modelled particles' positions and velocities. LibTorch appears in the implementation only.
 */
#include "BoltzmannGeneratorProposal.h"
#include "MetropolisHastings.h"
#include "OpenMMBGKernels.h"

#include "openmm/Kernel.h"
#include "openmm/internal/ForceImpl.h"

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace OpenMMBG {

class Model;

class BoltzmannGeneratorProposalImpl : public OpenMM::ForceImpl {
public:
    explicit BoltzmannGeneratorProposalImpl(const BoltzmannGeneratorProposal& owner);
    ~BoltzmannGeneratorProposalImpl() override;
    /** Validates the settings against the System (OpenMMException naming the problem), loads the model. */
    void initialize(OpenMM::ContextImpl& context) override;
    const BoltzmannGeneratorProposal& getOwner() const override { return owner; }
    /** Counts steps; every `frequency` steps makes one attempt. */
    void updateContextState(OpenMM::ContextImpl& context, bool& forcesInvalid) override;
    double calcForcesAndEnergy(OpenMM::ContextImpl&, bool, bool, int) override { return 0.0; }
    std::map<std::string, double> getDefaultParameters() override;
    std::vector<std::string> getKernelNames() override;

    /** Proposals made in this Context so far. */
    long long getNumProposed() const { return numProposed; }
    /** Proposals accepted in this Context so far. */
    long long getNumAccepted() const { return numAccepted; }
    /** log alpha of the last proposal (NaN before the first). */
    double getLastLogAcceptanceRatio() const { return lastLogAcceptance; }

protected:
    /**
     * log alpha of a move from `current` to `trial` at kT (kJ/mol): logAcceptanceRatio(). The one
     * test-only seam of the move: tests override it in a subclass (created by a subclass of the
     * Force) to drop a term of the rule or to inject a failure in the middle of an attempt.
     * Production code never overrides it.
     */
    virtual double evaluateLogAcceptanceRatio(const ExtendedState& current, const ExtendedState& trial, double kT) {
        return logAcceptanceRatio(current, trial, kT);
    }

private:
    /** One attempt: getNumProposals() proposals from one batched model call, each accepted or rejected in turn. */
    void attempt(OpenMM::ContextImpl& context, double temperature);
    MoveModelledParticlesKernel& getKernel() { return kernel.getAs<MoveModelledParticlesKernel>(); }

    const BoltzmannGeneratorProposal& owner;
    OpenMM::Kernel kernel;
    std::shared_ptr<Model> model;
    std::vector<int> particles;   // System indices, in model order
    std::vector<double> masses;   // of the modelled particles (amu), in model order
    // Chiral centres as rows of the modelled particles (the Force stores System indices): [C x 4].
    std::vector<int64_t> chiralCentreRows;
    std::mt19937_64 random;
    int step = 0;
    long long numProposed = 0, numAccepted = 0;
    double lastLogAcceptance;
};

}  // namespace OpenMMBG
