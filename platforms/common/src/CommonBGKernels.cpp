#include "CommonBGKernels.h"

#include "openmm/Integrator.h"
#include "openmm/OpenMMException.h"
#include "openmm/internal/ContextImpl.h"

#include <chrono>
#include <cmath>
#include <limits>

using namespace OpenMM;

namespace OpenMMBG {

int CommonCalcBoltzmannGeneratorProposalKernel::testingDroppedTerm = 0;

namespace {

// Boltzmann's constant in kJ/mol/K (CODATA 2018, as OpenMM's BOLTZ).
const double BOLTZMANN = 1.380649e-23 * 6.02214076e23 / 1000.0;

double signedVolume(const std::vector<Vec3>& x, const std::array<int, 4>& c) {
    Vec3 b = x[c[1]] - x[c[0]], d1 = x[c[2]] - x[c[0]], d2 = x[c[3]] - x[c[0]];
    return b.dot(d1.cross(d2));
}

}  // namespace

void CommonCalcBoltzmannGeneratorProposalKernel::initialize(const System& system,
                                                            const BoltzmannGeneratorProposal& force,
                                                            const std::vector<int>& selected) {
    try {
        model = std::make_unique<FlowModel>(FlowModel::fromBytes(force.getModelBytes()));
        runFlowCalls([&] { model->setDevice(getFlowDevice()); });
    } catch (const std::exception& e) {
        throw OpenMMException(std::string("BoltzmannGeneratorProposal: cannot load the model: ") + e.what());
    }
    if (model->getDim() != 3)
        throw OpenMMException("BoltzmannGeneratorProposal: the model is " + std::to_string(model->getDim()) +
                              "-D; molecular systems need a 3-D model");
    particles = selected;
    masses.clear();
    for (int i = 0; i < system.getNumParticles(); i++)
        masses.push_back(system.getParticleMass(i));
    chiralCenters = force.getChiralCenters();
    numProposals = force.getNumProposals();
    redrawVelocities = force.getRedrawVelocities();
    const int seed = force.getRandomNumberSeed();
    random.seed(seed != 0 ? uint64_t(seed)
                          : uint64_t(std::chrono::high_resolution_clock::now().time_since_epoch().count()) ^
                                uint64_t(reinterpret_cast<uintptr_t>(this)));
    lastLogAcceptance = std::numeric_limits<double>::quiet_NaN();
}

void CommonCalcBoltzmannGeneratorProposalKernel::attempt(ContextImpl& context, double temperature,
                                                         bool& forcesInvalid) {
    const int n = int(particles.size()), A = model->getNumAug(), P = numProposals;
    const double kT = BOLTZMANN * temperature;
    const int groups = context.getIntegrator().getIntegrationForceGroups();
    std::vector<Vec3> current;
    context.getPositions(current);
    const std::vector<Vec3> original = current;
    forcesInvalid = true;
    try {
        // The modelled particles' centroid stays fixed: proposals are placed around it.
        Vec3 centroid;
        for (int p : particles)
            centroid += current[p];
        centroid *= 1.0 / n;
        std::vector<double> x(3 * n);
        for (int i = 0; i < n; i++)
            for (int d = 0; d < 3; d++)
                x[3 * i + d] = current[particles[i]][d] - centroid[d];
        // The flow calls of this attempt: a Gibbs refresh of a with the current state's terms of
        // log alpha, and all proposals from one batched call.
        std::vector<double> a, s, logPis;
        double logQ, logPi;
        runFlowCalls([&] {
            a = model->sampleAugmented(x, (long long) (random() >> 1));
            logQ = model->logProb(x, a)[0];
            logPi = model->logAugmentedTarget(x, a)[0];
            s = model->sample(P, (long long) (random() >> 1));
            const std::vector<double> proposedX(s.data(), s.data() + size_t(P) * n * 3);
            const std::vector<double> proposedA(s.data() + size_t(P) * n * 3, s.data() + size_t(P) * n * (A + 1) * 3);
            logPis = model->logAugmentedTarget(proposedX, proposedA);
        });
        const double* xs = s.data();
        const double* logQs = xs + size_t(P) * n * (A + 1) * 3;
        double energy = context.calcForcesAndEnergy(false, true, groups);
        std::vector<double> signs;
        for (const auto& c : chiralCenters)
            signs.push_back(signedVolume(current, c) > 0 ? 1.0 : -1.0);

        std::uniform_real_distribution<double> uniform(0.0, 1.0);
        for (int k = 0; k < P; k++) {
            std::vector<Vec3> trial = current;
            for (int i = 0; i < n; i++)
                for (int d = 0; d < 3; d++)
                    trial[particles[i]][d] = xs[size_t(k) * n * 3 + 3 * i + d] + centroid[d];
            bool allowed = true;
            for (size_t c = 0; c < chiralCenters.size(); c++)
                if ((signedVolume(trial, chiralCenters[c]) > 0 ? 1.0 : -1.0) != signs[c])
                    allowed = false;
            double logAlpha = -std::numeric_limits<double>::infinity();
            double trialEnergy = std::numeric_limits<double>::infinity();
            if (allowed) {
                context.setPositions(trial);
                trialEnergy = context.calcForcesAndEnergy(false, true, groups);
                const double dropEnergy = testingDroppedTerm == 1 ? 0.0 : 1.0;
                const double dropQ = testingDroppedTerm == 2 ? 0.0 : 1.0;
                const double dropPi = testingDroppedTerm == 3 ? 0.0 : 1.0;
                logAlpha = (-dropEnergy * trialEnergy / kT + dropPi * logPis[k] - dropQ * logQs[k]) -
                           (-dropEnergy * energy / kT + dropPi * logPi - dropQ * logQ);
                if (!std::isfinite(trialEnergy) || std::isnan(logAlpha))
                    logAlpha = -std::numeric_limits<double>::infinity();
            }
            numProposed++;
            lastLogAcceptance = logAlpha;
            if (logAlpha >= 0 || uniform(random) < std::exp(logAlpha)) {
                numAccepted++;
                current = trial;
                energy = trialEnergy;
                logQ = logQs[k];
                logPi = logPis[k];
                if (redrawVelocities) {
                    std::vector<Vec3> velocities;
                    context.getVelocities(velocities);
                    std::normal_distribution<double> normal(0.0, 1.0);
                    for (int p : particles) {
                        const double sigma = masses[p] > 0 ? std::sqrt(kT / masses[p]) : 0.0;
                        velocities[p] = Vec3(sigma * normal(random), sigma * normal(random), sigma * normal(random));
                    }
                    context.setVelocities(velocities);
                }
            }
            if (allowed)
                context.setPositions(current);  // the accepted state, or the one before the trial
        }
    } catch (const std::exception& e) {
        context.setPositions(original);
        throw OpenMMException(std::string("BoltzmannGeneratorProposal: proposal failed, state restored: ") + e.what());
    }
}

KernelImpl* CommonBGKernelFactory::createKernelImpl(std::string name, const Platform& platform, ContextImpl&) const {
    if (name == CalcBoltzmannGeneratorProposalKernel::Name())
        return new CommonCalcBoltzmannGeneratorProposalKernel(name, platform);
    throw OpenMMException("CommonBGKernelFactory: no kernel named '" + name + "'");
}

}  // namespace OpenMMBG
