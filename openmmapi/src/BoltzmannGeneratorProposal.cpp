#include "BoltzmannGeneratorProposal.h"

#include "internal/BoltzmannGeneratorProposalImpl.h"
#include "openmmbg/FlowModel.h"
#include "openmmbg/io/Files.h"

#include "openmm/OpenMMException.h"

#include <cmath>

using namespace OpenMM;

namespace OpenMMBG {

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
        numModelParticles = model.getNumParticles();
    } catch (const std::exception& e) {
        throw OpenMMException(std::string("BoltzmannGeneratorProposal: cannot use the model: ") + e.what());
    }
    modelBytes = bytes;
}

void BoltzmannGeneratorProposal::setFrequency(int steps) {
    if (steps < 0)
        throw OpenMMException("BoltzmannGeneratorProposal: the frequency must be >= 0 (got " + std::to_string(steps) + ")");
    frequency = steps;
}

void BoltzmannGeneratorProposal::setTemperature(double kelvin) {
    if (!(kelvin > 0) || !std::isfinite(kelvin))
        throw OpenMMException("BoltzmannGeneratorProposal: the temperature must be positive (got " +
                              std::to_string(kelvin) + " K)");
    defaultTemperature = kelvin;
}

void BoltzmannGeneratorProposal::setNumProposals(int n) {
    if (n < 1)
        throw OpenMMException("BoltzmannGeneratorProposal: the number of proposals must be >= 1 (got " +
                              std::to_string(n) + ")");
    numProposals = n;
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
