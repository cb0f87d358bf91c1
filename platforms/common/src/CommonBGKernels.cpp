#include "CommonBGKernels.h"

#include "openmmbg/FlowModelImpl.h"
#include "openmmbg/TensorArchive.h"

#include "openmm/Integrator.h"
#include "openmm/OpenMMException.h"
#include "openmm/internal/ContextImpl.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

using namespace OpenMM;

namespace OpenMMBG {

int CommonCalcBoltzmannGeneratorProposalKernel::testingDroppedTerm = 0;
int CommonCalcBoltzmannGeneratorProposalKernel::testingFailAfterProposals = 0;

namespace {

// Boltzmann's constant in kJ/mol/K (CODATA 2018, as OpenMM's BOLTZ).
const double BOLTZMANN = 1.380649e-23 * 6.02214076e23 / 1000.0;

// Whether the signed volume (x_b - x_a) . ((x_c - x_a) x (x_d - x_a)) of each centre is positive,
// for configurations x [B, n, 3] and centres [C, 4] (positions in the particle list): [B, C].
torch::Tensor positiveChirality(const torch::Tensor& x, const torch::Tensor& centres) {
    const int64_t B = x.size(0), C = centres.size(0);
    torch::Tensor p = x.index_select(1, centres.flatten()).view({B, C, 4, 3});
    torch::Tensor origin = p.select(2, 0);
    torch::Tensor b = p.select(2, 1) - origin, d1 = p.select(2, 2) - origin, d2 = p.select(2, 3) - origin;
    return (b * torch::linalg_cross(d1, d2, -1)).sum(-1) > 0;
}

}  // namespace

void CommonCalcBoltzmannGeneratorProposalKernel::initialize(const System& system,
                                                            const BoltzmannGeneratorProposal& force,
                                                            const std::vector<int>& selected) {
    try {
        model = std::make_unique<FlowModel>(FlowModel::fromBytes(force.getModelBytes()));
        runOnFlowDevice([&] { model->setDevice(getFlowDevice()); });
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
    std::vector<int64_t> centreRows;
    for (const auto& centre : force.getChiralCenters())
        for (int j = 0; j < 4; j++) {
            auto where = std::find(particles.begin(), particles.end(), centre[j]);
            if (where == particles.end())  // BoltzmannGeneratorProposalImpl checked this already
                throw OpenMMException("BoltzmannGeneratorProposal: chiral centre particle " + std::to_string(centre[j]) +
                                      " is not one of the modelled particles");
            centreRows.push_back(int64_t(where - particles.begin()));
        }
    chiralCentreRows = at::Tensor();
    if (!centreRows.empty())
        runOnFlowDevice([&] {
            chiralCentreRows = torch::tensor(centreRows, torch::kInt64).view({-1, 4}).to(torch::Device(getFlowDevice()));
        });
    numProposals = force.getNumProposals();
    redrawVelocities = force.getRedrawVelocities();
    const int seed = force.getRandomNumberSeed();
    random.seed(seed != 0 ? uint64_t(seed)
                          : uint64_t(std::chrono::high_resolution_clock::now().time_since_epoch().count()) ^
                                uint64_t(reinterpret_cast<uintptr_t>(this)));
    lastLogAcceptance = std::numeric_limits<double>::quiet_NaN();
}

namespace {

// The rows of `all` (one per System particle) that `particles` names, as float64 [n, 3] on `device`.
torch::Tensor gatherRows(const std::vector<Vec3>& all, const std::vector<int>& particles, const std::string& device) {
    std::vector<double> rows;
    rows.reserve(3 * particles.size());
    for (int p : particles)
        for (int d = 0; d < 3; d++)
            rows.push_back(all[p][d]);
    return torch::tensor(rows, torch::kFloat64).view({int64_t(particles.size()), 3}).to(torch::Device(device));
}

// Writes rows [n, 3] into the entries of `all` that `particles` names.
void scatterRows(const torch::Tensor& rows, const std::vector<int>& particles, std::vector<Vec3>& all) {
    const std::vector<double> values = toHostDoubles(rows);
    for (size_t i = 0; i < particles.size(); i++)
        all[particles[i]] = Vec3(values[3 * i], values[3 * i + 1], values[3 * i + 2]);
}

}  // namespace

torch::Tensor CommonCalcBoltzmannGeneratorProposalKernel::getModelledPositions(ContextImpl& context) {
    context.getPositions(hostPositions);
    return gatherRows(hostPositions, particles, getFlowDevice());
}

void CommonCalcBoltzmannGeneratorProposalKernel::setModelledPositions(ContextImpl& context, const torch::Tensor& positions) {
    std::vector<Vec3> all = hostPositions;
    scatterRows(positions, particles, all);
    context.setPositions(all);
}

torch::Tensor CommonCalcBoltzmannGeneratorProposalKernel::getModelledVelocities(ContextImpl& context) {
    std::vector<Vec3> all;
    context.getVelocities(all);
    return gatherRows(all, particles, getFlowDevice());
}

void CommonCalcBoltzmannGeneratorProposalKernel::setModelledVelocities(ContextImpl& context, const torch::Tensor& velocities) {
    std::vector<Vec3> all;
    context.getVelocities(all);
    scatterRows(velocities, particles, all);
    context.setVelocities(all);
}

void CommonCalcBoltzmannGeneratorProposalKernel::attempt(ContextImpl& context, double temperature,
                                                         bool& forcesInvalid) {
    const int n = int(particles.size()), P = numProposals;
    const double kT = BOLTZMANN * temperature;
    const int groups = context.getIntegrator().getIntegrationForceGroups();
    AugmentedCouplingFlow& flow = model->impl().flow;
    forcesInvalid = true;
    runOnFlowDevice([&] {
        torch::NoGradGuard noGrad;
        torch::Tensor original;  // [n, 3] float64, flow device
        try {
            original = getModelledPositions(context);
        } catch (const std::exception& e) {
            throw OpenMMException(std::string("BoltzmannGeneratorProposal: cannot read the positions: ") + e.what());
        }
        torch::Tensor originalVelocities;  // read before the first velocity redraw of this attempt
        try {
            torch::Tensor current = original;
            // The modelled particles' centroid stays fixed: proposals are placed around it.
            const torch::Tensor centroid = original.sum(0, true) * (1.0 / n);
            const torch::Tensor x = (original - centroid).to(flow->options()).unsqueeze(0);
            // The flow calls of this attempt: a Gibbs refresh of a with the current state's terms
            // of log alpha, and all proposals from one batched call. Noise is drawn on the CPU,
            // so a seed gives the same proposals on every platform.
            torch::Generator augmentedNoise = at::make_generator<at::CPUGeneratorImpl>((long long) (random() >> 1));
            const torch::Tensor a = flow->sampleAugmented(x, augmentedNoise);
            double logQ = flow->logProb(x, a).item<double>();
            double logPi = flow->logAugmentedTarget(x, a).item<double>();
            torch::Generator proposalNoise = at::make_generator<at::CPUGeneratorImpl>((long long) (random() >> 1));
            const FlowSample s = flow->sample(P, proposalNoise);
            const std::vector<double> logQs = toHostDoubles(s.logQ), logPis = toHostDoubles(flow->logAugmentedTarget(s.x, s.a));
            const torch::Tensor trials = s.x.to(torch::kFloat64) + centroid;  // [P, n, 3]
            std::vector<bool> allowed(P, true);
            if (chiralCentreRows.defined()) {
                const torch::Tensor same = (positiveChirality(trials, chiralCentreRows) ==
                                            positiveChirality(original.unsqueeze(0), chiralCentreRows))
                                               .all(1);
                const std::vector<double> sameHost = toHostDoubles(same);
                for (int k = 0; k < P; k++)
                    allowed[k] = sameHost[k] != 0.0;
            }
            double energy = context.calcForcesAndEnergy(false, true, groups);

            std::uniform_real_distribution<double> uniform(0.0, 1.0);
            for (int k = 0; k < P; k++) {
                double logAlpha = -std::numeric_limits<double>::infinity();
                double trialEnergy = std::numeric_limits<double>::infinity();
                if (allowed[k]) {
                    setModelledPositions(context, trials[k]);
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
                if (testingFailAfterProposals > 0 && k + 1 == testingFailAfterProposals)
                    throw std::runtime_error("testing: failure injected after proposal " + std::to_string(k + 1));
                if (logAlpha >= 0 || uniform(random) < std::exp(logAlpha)) {
                    numAccepted++;
                    current = trials[k];
                    energy = trialEnergy;
                    logQ = logQs[k];
                    logPi = logPis[k];
                    if (redrawVelocities) {
                        std::normal_distribution<double> normal(0.0, 1.0);
                        std::vector<double> v;
                        for (int p : particles) {
                            const double sigma = masses[p] > 0 ? std::sqrt(kT / masses[p]) : 0.0;
                            for (int d = 0; d < 3; d++)
                                v.push_back(sigma * normal(random));
                        }
                        if (!originalVelocities.defined())
                            originalVelocities = getModelledVelocities(context);
                        setModelledVelocities(context, torch::tensor(v, torch::kFloat64).view({n, 3}).to(original.device()));
                    }
                }
                if (allowed[k])
                    setModelledPositions(context, current);  // the accepted state, or the one before the trial
            }
        } catch (const std::exception& e) {
            // A failed attempt leaves the Context as it found it: positions, and velocities if an
            // accepted proposal of this attempt had redrawn them.
            try {
                setModelledPositions(context, original);
                if (originalVelocities.defined())
                    setModelledVelocities(context, originalVelocities);
            } catch (const std::exception& restoreError) {
                throw OpenMMException(std::string("BoltzmannGeneratorProposal: proposal failed (") + e.what() +
                                      ") and restoring the state failed too: " + restoreError.what());
            }
            throw OpenMMException(std::string("BoltzmannGeneratorProposal: proposal failed, state restored: ") + e.what());
        }
    });
}

KernelImpl* CommonBGKernelFactory::createKernelImpl(std::string name, const Platform& platform, ContextImpl&) const {
    if (name == CalcBoltzmannGeneratorProposalKernel::Name())
        return new CommonCalcBoltzmannGeneratorProposalKernel(name, platform);
    throw OpenMMException("CommonBGKernelFactory: no kernel named '" + name + "'");
}

}  // namespace OpenMMBG
