#pragma once
/**
 * The flow-proposal kernel shared by every platform. It works through ContextImpl (positions,
 * velocities, energies with the integrator's force groups), which handles each platform's atom
 * order and precision, so the Reference, CPU and OpenCL platforms use it as it is; the CUDA
 * platform runs the flow on the Context's GPU by overriding the two hooks below.
 */
#include "OpenMMBGKernels.h"
#include "openmmbg/FlowModel.h"

#include "openmm/KernelFactory.h"
#include "openmm/Platform.h"

#include <array>
#include <functional>
#include <memory>
#include <random>

namespace OpenMMBG {

/**
 * Reads positions, makes the proposals (one batched flow call), sets each trial with
 * ContextImpl::setPositions, evaluates the energy, and restores the saved positions on rejection.
 */
class CommonCalcBoltzmannGeneratorProposalKernel : public CalcBoltzmannGeneratorProposalKernel {
public:
    CommonCalcBoltzmannGeneratorProposalKernel(const std::string& name, const OpenMM::Platform& platform)
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

protected:
    /** The LibTorch device the flow runs on ("cpu" here). */
    virtual std::string getFlowDevice() const { return "cpu"; }
    /**
     * Runs the flow calls of one attempt. The CUDA platform makes LibTorch's CUDA context current
     * around them (OpenMM's own context is current otherwise).
     */
    virtual void runFlowCalls(const std::function<void()>& calls) { calls(); }

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

/** Creates CommonCalcBoltzmannGeneratorProposalKernel (Reference, CPU and OpenCL platforms). */
class CommonBGKernelFactory : public OpenMM::KernelFactory {
public:
    OpenMM::KernelImpl* createKernelImpl(std::string name, const OpenMM::Platform& platform,
                                         OpenMM::ContextImpl& context) const override;
};

}  // namespace OpenMMBG
