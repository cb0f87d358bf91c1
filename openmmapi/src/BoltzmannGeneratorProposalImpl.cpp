#include "internal/BoltzmannGeneratorProposalImpl.h"

#include "openmm/OpenMMException.h"
#include "openmm/VirtualSite.h"
#include "openmm/internal/ContextImpl.h"

#include <set>

using namespace OpenMM;

namespace OpenMMBG {

namespace {

[[noreturn]] void fail(const std::string& message) { throw OpenMMException("BoltzmannGeneratorProposal: " + message); }

}  // namespace

void BoltzmannGeneratorProposalImpl::initialize(ContextImpl& context) {
    const System& system = context.getSystem();
    const int numModel = owner.getNumModelParticles();
    if (owner.getFrequency() < 0)
        fail("the frequency must be >= 0 (got " + std::to_string(owner.getFrequency()) + ")");
    if (owner.getNumProposals() < 1)
        fail("the number of proposals must be >= 1 (got " + std::to_string(owner.getNumProposals()) + ")");
    if (!(owner.getTemperature() > 0))
        fail("the temperature must be positive (got " + std::to_string(owner.getTemperature()) + " K)");
    if (system.usesPeriodicBoundaryConditions())
        fail("periodic systems are not supported yet");
    std::vector<int> particles = owner.getParticles();
    if (particles.empty()) {
        if (system.getNumParticles() < numModel)
            fail("the model describes " + std::to_string(numModel) + " particles but the System has only " +
                 std::to_string(system.getNumParticles()));
        for (int i = 0; i < numModel; i++)
            particles.push_back(i);
    }
    if (int(particles.size()) != numModel)
        fail("the model describes " + std::to_string(numModel) + " particles but " + std::to_string(particles.size()) +
             " were selected");
    std::set<int> modelled;
    for (int p : particles) {
        if (p < 0 || p >= system.getNumParticles())
            fail("particle index " + std::to_string(p) + " is out of range (the System has " +
                 std::to_string(system.getNumParticles()) + " particles)");
        if (!modelled.insert(p).second)
            fail("particle " + std::to_string(p) + " is selected twice");
    }
    for (int i = 0; i < system.getNumConstraints(); i++) {
        int a, b;
        double d;
        system.getConstraintParameters(i, a, b, d);
        if (modelled.count(a) || modelled.count(b))
            fail("constraint " + std::to_string(i) + " involves modelled particles " + std::to_string(a) + " and " +
                 std::to_string(b) + " (constraints are not supported on modelled particles)");
    }
    for (int i = 0; i < system.getNumParticles(); i++) {
        if (!system.isVirtualSite(i))
            continue;
        if (modelled.count(i))
            fail("modelled particle " + std::to_string(i) + " is a virtual site");
        const VirtualSite& site = system.getVirtualSite(i);
        for (int k = 0; k < site.getNumParticles(); k++)
            if (modelled.count(site.getParticle(k)))
                fail("virtual site " + std::to_string(i) + " is defined by modelled particle " +
                     std::to_string(site.getParticle(k)));
    }
    for (const auto& center : owner.getChiralCenters())
        for (int p : center)
            if (!modelled.count(p))
                fail("chiral centre particle " + std::to_string(p) + " is not one of the modelled particles");
    kernel = context.getPlatform().createKernel(CalcBoltzmannGeneratorProposalKernel::Name(), context);
    getKernel().initialize(system, owner, particles);
}

void BoltzmannGeneratorProposalImpl::updateContextState(ContextImpl& context, bool& forcesInvalid) {
    const int frequency = owner.getFrequency();
    if (frequency == 0 || ++step < frequency)
        return;
    step = 0;
    const double temperature = context.getParameter(BoltzmannGeneratorProposal::Temperature());
    if (!(temperature > 0))
        fail("the temperature must be positive (Context parameter " + BoltzmannGeneratorProposal::Temperature() +
             " = " + std::to_string(temperature) + ")");
    getKernel().attempt(context, temperature, forcesInvalid);
}

std::map<std::string, double> BoltzmannGeneratorProposalImpl::getDefaultParameters() {
    return {{BoltzmannGeneratorProposal::Temperature(), owner.getTemperature()}};
}

std::vector<std::string> BoltzmannGeneratorProposalImpl::getKernelNames() {
    return {CalcBoltzmannGeneratorProposalKernel::Name()};
}

}  // namespace OpenMMBG
