#pragma once
/** Reference (and CPU) platform kernels of the openmm-bg plugin. */
#include "OpenMMBGKernels.h"
#include "openmmbg/FlowModel.h"

#include "openmm/Platform.h"
#include "openmm/KernelFactory.h"

#include <array>
#include <memory>
#include <random>

namespace OpenMMBG {

/**
 * The flow-proposal move through ContextImpl: read positions, evaluate the flow on the CPU (LibTorch
 * behind FlowModel), set trial positions, evaluate the energy with the integrator's force groups,
 * and restore the saved positions on rejection.
 */
class ReferenceCalcBoltzmannGeneratorProposalKernel : public CalcBoltzmannGeneratorProposalKernel {
public:
    ReferenceCalcBoltzmannGeneratorProposalKernel(const std::string& name, const OpenMM::Platform& platform)
        : CalcBoltzmannGeneratorProposalKernel(name, platform) {}
    void initialize(const OpenMM::System& system, const BoltzmannGeneratorProposal& force,
                    const std::vector<int>& particles) override;
    void attempt(OpenMM::ContextImpl& context, double temperature, bool& forcesInvalid) override;
    long long getNumProposed() const override { return numProposed; }
    long long getNumAccepted() const override { return numAccepted; }
    double getLastLogAcceptanceRatio() const override { return lastLogAcceptance; }

    /**
     * For tests of the acceptance rule only: drop one term of log alpha (0 none, 1 the energy,
     * 2 log q, 3 log pi), which must make exactness tests fail. Never set in production.
     */
    static int testingDroppedTerm;

private:
    std::unique_ptr<FlowModel> model;
    std::vector<int> particles;
    std::vector<double> masses;
    std::vector<std::array<int, 4>> chiralCenters;
    int numProposals = 1;
    bool redrawVelocities = true;
    std::mt19937_64 random;
    long long numProposed = 0, numAccepted = 0;
    double lastLogAcceptance;
};

class ReferenceBGKernelFactory : public OpenMM::KernelFactory {
public:
    OpenMM::KernelImpl* createKernelImpl(std::string name, const OpenMM::Platform& platform,
                                         OpenMM::ContextImpl& context) const override;
};

}  // namespace OpenMMBG
