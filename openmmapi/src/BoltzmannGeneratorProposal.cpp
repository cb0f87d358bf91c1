#include "BoltzmannGeneratorProposal.h"

#include "internal/BoltzmannGeneratorProposalImpl.h"
#include "openmmbg/FlowModel.h"
#include "openmmbg/Model.h"
#include "openmmbg/Validation.h"
#include "openmmbg/io/Files.h"

#include "openmm/OpenMMException.h"

#include <cmath>
#include <cstdint>
#include <stdexcept>

using namespace OpenMM;

namespace OpenMMBG {

namespace {

// Runs a check of the shared validation (openmmbg/Validation.h), as an OpenMMException.
template <class Check>
auto checked(Check check) {
    try {
        return check();
    } catch (const std::invalid_argument& e) {
        throw OpenMMException(std::string("BoltzmannGeneratorProposal: ") + e.what());
    }
}

}  // namespace

BoltzmannGeneratorProposal::BoltzmannGeneratorProposal(const std::string& modelFile) {
    std::string bytes;
    try {
        bytes = readFileBytes(modelFile);
    } catch (const std::exception& e) {
        throw OpenMMException(std::string("BoltzmannGeneratorProposal: ") + e.what());
    }
    setModelBytes(bytes);
}

BoltzmannGeneratorProposal* BoltzmannGeneratorProposal::fromModelBytes(const std::string& bytes) {
    BoltzmannGeneratorProposal* force = new BoltzmannGeneratorProposal();
    try {
        force->setModelBytes(bytes);
    } catch (...) {
        delete force;
        throw;
    }
    return force;
}

void BoltzmannGeneratorProposal::setModelBytes(const std::string& bytes) {
    try {
        FlowModel model = FlowModel::fromBytes(bytes);
        // Positions reach the model in nm: a model in other units would run silently on wrong lengths.
        requireOpenMMUnits(*model.model(), "the model");
        numModelParticles = model.getNumParticles();
    } catch (const std::exception& e) {
        throw OpenMMException(std::string("BoltzmannGeneratorProposal: cannot use the model: ") + e.what());
    }
    modelBytes = bytes;
}

void BoltzmannGeneratorProposal::setFrequency(int steps) {
    frequency = int(checked([&] { return requireInRange("the frequency (steps)", int64_t(steps), 0, INT32_MAX); }));
}

void BoltzmannGeneratorProposal::setTemperature(double kelvin) {
    defaultTemperature = checked([&] { return requirePositive("the temperature (K)", kelvin); });
}

void BoltzmannGeneratorProposal::setNumProposals(int n) {
    numProposals = int(checked([&] { return requireInRange("the number of proposals", int64_t(n), 1, INT32_MAX); }));
}

int BoltzmannGeneratorProposal::addChiralCenter(int a, int b, int c, int d) {
    chiralCenters.push_back({a, b, c, d});
    return int(chiralCenters.size()) - 1;
}

// These use the const overload of getImplInContext: the non-const one is a non-const member
// function before OpenMM 8.0 (Debian's 7.7), so these const getters cannot call it there.
long long BoltzmannGeneratorProposal::getNumProposed(const Context& context) const {
    return dynamic_cast<const BoltzmannGeneratorProposalImpl&>(getImplInContext(context))
        .getNumProposed();
}

long long BoltzmannGeneratorProposal::getNumAccepted(const Context& context) const {
    return dynamic_cast<const BoltzmannGeneratorProposalImpl&>(getImplInContext(context))
        .getNumAccepted();
}

double BoltzmannGeneratorProposal::getLastLogAcceptanceRatio(const Context& context) const {
    return dynamic_cast<const BoltzmannGeneratorProposalImpl&>(getImplInContext(context))
        .getLastLogAcceptanceRatio();
}

ForceImpl* BoltzmannGeneratorProposal::createImpl() const { return new BoltzmannGeneratorProposalImpl(*this); }

}  // namespace OpenMMBG
