#pragma once
/**
 * Kernel interfaces of the openmm-bg plugin. Each platform provides an implementation; the
 * Reference one (also used by the CPU platform) works through ContextImpl's position, velocity and
 * energy methods, so GPU platforms can start from it and move the data handling onto the device.
 */
#include "BoltzmannGeneratorProposal.h"

#include "openmm/KernelImpl.h"
#include "openmm/System.h"
#include "openmm/internal/ContextImpl.h"

#include <string>

namespace OpenMMBG {

/** Makes the flow-proposal Metropolis-Hastings moves of a BoltzmannGeneratorProposal. */
class CalcBoltzmannGeneratorProposalKernel : public OpenMM::KernelImpl {
public:
    static std::string Name() { return "CalcBoltzmannGeneratorProposal"; }
    CalcBoltzmannGeneratorProposalKernel(const std::string& name, const OpenMM::Platform& platform)
        : OpenMM::KernelImpl(name, platform) {}
    /** Load the model and store the settings; particles are already validated. */
    virtual void initialize(const OpenMM::System& system, const BoltzmannGeneratorProposal& force,
                            const std::vector<int>& particles) = 0;
    /**
     * Make one attempt: getNumProposals() proposals from one batched flow call, each accepted or
     * rejected in turn at `temperature` (K). The Context is left exactly as it was unless a
     * proposal is accepted. Sets forcesInvalid.
     */
    virtual void attempt(OpenMM::ContextImpl& context, double temperature, bool& forcesInvalid) = 0;
    virtual long long getNumProposed() const = 0;
    virtual long long getNumAccepted() const = 0;
    virtual double getLastLogAcceptanceRatio() const = 0;
};

}  // namespace OpenMMBG
