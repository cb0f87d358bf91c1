#pragma once
/**
 * The flow-proposal kernel shared by every platform. The Metropolis-Hastings move is written once,
 * on LibTorch tensors on the flow's device; a platform supplies only how the modelled particles'
 * positions and velocities are read from and written to its Context (the four hooks below).
 * The default hooks go through ContextImpl (which handles each platform's atom order and
 * precision), so the Reference, CPU and OpenCL platforms use them as they are; the CUDA platform
 * overrides them to read and write its device buffers directly, with the flow on the same GPU.
 *
 * Internal to the plugins (not an installed header), so LibTorch types may appear here.
 */
#include "OpenMMBGKernels.h"
#include "openmmbg/FlowModel.h"

#include "openmm/KernelFactory.h"
#include "openmm/Platform.h"
#include "openmm/Vec3.h"

#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <random>

namespace OpenMMBG {

/**
 * Makes the proposals of an attempt (one batched flow call), sets each allowed trial into the
 * Context, evaluates the energy, and writes back the previous state on rejection.
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
    /**
     * For tests of the failure path only: when > 0, an attempt throws after evaluating this many
     * proposals, as a failing energy evaluation would. Never set in production.
     */
    static int testingFailAfterProposals;

protected:
    /** The LibTorch device the flow runs on ("cpu" here). */
    virtual std::string getFlowDevice() const { return "cpu"; }
    /**
     * Runs one attempt's work (flow calls and the hooks below). The CUDA platform makes LibTorch's
     * CUDA context current around it; OpenMM's own calls select their context as usual.
     */
    virtual void runOnFlowDevice(const std::function<void()>& work) { work(); }
    /**
     * The positions (nm) of the modelled particles, in the order of getParticles(): a float64
     * tensor [n, 3] on the flow's device, unwrapped (as Context::getState returns them).
     * Called once at the start of each attempt.
     */
    virtual at::Tensor getModelledPositions(OpenMM::ContextImpl& context);
    /** Writes positions [n, 3] (nm, float64) of the modelled particles; all others are unchanged. */
    virtual void setModelledPositions(OpenMM::ContextImpl& context, const at::Tensor& positions);
    /** The velocities (nm/ps) of the modelled particles: float64 [n, 3] on the flow's device. */
    virtual at::Tensor getModelledVelocities(OpenMM::ContextImpl& context);
    /** Writes velocities [n, 3] (nm/ps, float64) of the modelled particles; all others are unchanged. */
    virtual void setModelledVelocities(OpenMM::ContextImpl& context, const at::Tensor& velocities);
    /** The System indices of the modelled particles, in the flow's particle order. */
    const std::vector<int>& getParticles() const { return particles; }

private:
    std::unique_ptr<FlowModel> model;
    std::vector<int> particles;
    std::vector<double> masses;
    // Chiral centres as positions in `particles` (the Force stores System indices): int64 [C, 4]
    // on the flow's device, built once in initialize; undefined when there are none.
    at::Tensor chiralCentreRows;
    int numProposals = 1;
    bool redrawVelocities = true;
    std::mt19937_64 random;
    long long numProposed = 0, numAccepted = 0;
    double lastLogAcceptance;
    // All positions of the Context as read by the default getModelledPositions: the default
    // setModelledPositions writes them back with the modelled particles replaced.
    std::vector<OpenMM::Vec3> hostPositions;
};

/** Creates CommonCalcBoltzmannGeneratorProposalKernel (Reference, CPU and OpenCL platforms). */
class CommonBGKernelFactory : public OpenMM::KernelFactory {
public:
    OpenMM::KernelImpl* createKernelImpl(std::string name, const OpenMM::Platform& platform,
                                         OpenMM::ContextImpl& context) const override;
};

}  // namespace OpenMMBG
