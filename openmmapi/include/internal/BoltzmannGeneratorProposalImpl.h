#pragma once
/** The ForceImpl of BoltzmannGeneratorProposal (the MonteCarloBarostat pattern). */
#include "BoltzmannGeneratorProposal.h"
#include "OpenMMBGKernels.h"

#include "openmm/Kernel.h"
#include "openmm/internal/ForceImpl.h"

#include <map>
#include <string>
#include <vector>

namespace OpenMMBG {

class BoltzmannGeneratorProposalImpl : public OpenMM::ForceImpl {
public:
    explicit BoltzmannGeneratorProposalImpl(const BoltzmannGeneratorProposal& owner) : owner(owner) {}
    /** Validates the settings against the System (OpenMMException naming the problem) and loads the model. */
    void initialize(OpenMM::ContextImpl& context) override;
    const BoltzmannGeneratorProposal& getOwner() const override { return owner; }
    /** Counts steps; every `frequency` steps makes one proposal attempt. */
    void updateContextState(OpenMM::ContextImpl& context, bool& forcesInvalid) override;
    double calcForcesAndEnergy(OpenMM::ContextImpl&, bool, bool, int) override { return 0.0; }
    std::map<std::string, double> getDefaultParameters() override;
    std::vector<std::string> getKernelNames() override;
    CalcBoltzmannGeneratorProposalKernel& getKernel() { return kernel.getAs<CalcBoltzmannGeneratorProposalKernel>(); }
    const CalcBoltzmannGeneratorProposalKernel& getKernel() const {
        return kernel.getAs<CalcBoltzmannGeneratorProposalKernel>();
    }

private:
    const BoltzmannGeneratorProposal& owner;
    OpenMM::Kernel kernel;
    int step = 0;
};

}  // namespace OpenMMBG
