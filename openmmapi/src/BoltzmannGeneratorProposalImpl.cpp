#include "internal/BoltzmannGeneratorProposalImpl.h"

#include "OpenMMBGUnits.h"

#include "openmmbg/Model.h"
#include "openmmbg/Validation.h"
#include "openmmbg/io/ModelFile.h"
#include "openmmbg/io/TensorArchive.h"

#include "openmm/Integrator.h"
#include "openmm/OpenMMException.h"
#include "openmm/VirtualSite.h"
#include "openmm/internal/ContextImpl.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <set>

using namespace OpenMM;

namespace OpenMMBG {

namespace {

[[noreturn]] void fail(const std::string& message) { throw OpenMMException("BoltzmannGeneratorProposal: " + message); }

// The temperature of an attempt, through the shared validation: positive and finite (an infinite kT
// would accept any proposal and destroy the state).
double checkedTemperature(const std::string& what, double kelvin) {
    try {
        return requirePositive(what, kelvin);
    } catch (const std::invalid_argument& e) {
        fail(e.what());
    }
}

}  // namespace

BoltzmannGeneratorProposalImpl::BoltzmannGeneratorProposalImpl(const BoltzmannGeneratorProposal& owner)
    : owner(owner), lastLogAcceptance(std::numeric_limits<double>::quiet_NaN()) {}

BoltzmannGeneratorProposalImpl::~BoltzmannGeneratorProposalImpl() = default;

void BoltzmannGeneratorProposalImpl::initialize(ContextImpl& context) {
    const System& system = context.getSystem();
    const int numModel = owner.getNumModelParticles();
    if (owner.getFrequency() < 0)
        fail("the frequency must be >= 0 (got " + std::to_string(owner.getFrequency()) + ")");
    if (owner.getNumProposals() < 1)
        fail("the number of proposals must be >= 1 (got " + std::to_string(owner.getNumProposals()) + ")");
    checkedTemperature("the temperature (K)", owner.getTemperature());
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
    kernel = context.getPlatform().createKernel(MoveModelledParticlesKernel::Name(), context);
    getKernel().initialize(system, particles);
    try {
        model = deserializeModel(owner.getModelBytes());
        getKernel().runOnDevice([&] { model->to(torch::Device(getKernel().getDevice())); });
    } catch (const std::exception& e) {
        fail(std::string("cannot load the model: ") + e.what());
    }
    this->particles = particles;
    masses.clear();
    for (int p : particles) {
        // A massless particle is fixed in place by OpenMM's integrators; a proposal must not move it.
        if (!(system.getParticleMass(p) > 0))
            fail("modelled particle " + std::to_string(p) + " has zero mass (fixed particles cannot be modelled)");
        masses.push_back(system.getParticleMass(p));
    }
    chiralCentreRows.clear();
    for (const auto& centre : owner.getChiralCenters())
        for (int p : centre)
            chiralCentreRows.push_back(int64_t(std::find(particles.begin(), particles.end(), p) - particles.begin()));
    const int seed = owner.getRandomNumberSeed();
    random.seed(seed != 0 ? uint64_t(seed)
                          : uint64_t(std::chrono::high_resolution_clock::now().time_since_epoch().count()) ^
                                uint64_t(reinterpret_cast<uintptr_t>(this)));
    numProposed = numAccepted = 0;
    lastLogAcceptance = std::numeric_limits<double>::quiet_NaN();
}

void BoltzmannGeneratorProposalImpl::updateContextState(ContextImpl& context, bool& forcesInvalid) {
    const int frequency = owner.getFrequency();
    if (frequency == 0 || ++step < frequency)
        return;
    step = 0;
    const double temperature = checkedTemperature(
        "the temperature (Context parameter " + BoltzmannGeneratorProposal::Temperature() + ", K)",
        context.getParameter(BoltzmannGeneratorProposal::Temperature()));
    forcesInvalid = true;
    attempt(context, temperature);
}

namespace {

// Whether the signed volume (x_b - x_a) . ((x_c - x_a) x (x_d - x_a)) of each centre is positive,
// for configurations x [B, n, 3] and centres [C, 4] (rows of x): [B, C].
torch::Tensor positiveChirality(const torch::Tensor& x, const torch::Tensor& centres) {
    const int64_t B = x.size(0), C = centres.size(0);
    torch::Tensor p = x.index_select(1, centres.flatten()).view({B, C, 4, 3});
    torch::Tensor origin = p.select(2, 0);
    torch::Tensor b = p.select(2, 1) - origin, d1 = p.select(2, 2) - origin, d2 = p.select(2, 3) - origin;
    return (b * torch::linalg_cross(d1, d2, -1)).sum(-1) > 0;
}

}  // namespace

void BoltzmannGeneratorProposalImpl::attempt(ContextImpl& context, double temperature) {
    MoveModelledParticlesKernel& mover = getKernel();
    const int n = int(particles.size()), P = owner.getNumProposals();
    const double kT = BOLTZMANN * temperature;
    const int groups = context.getIntegrator().getIntegrationForceGroups();
    mover.runOnDevice([&] {
        torch::NoGradGuard noGrad;
        torch::Tensor original;  // [n, 3] float64 on the kernel's device
        try {
            original = mover.getPositions(context);
        } catch (const std::exception& e) {
            fail(std::string("cannot read the positions: ") + e.what());
        }
        torch::Tensor originalVelocities;  // read before the first velocity redraw of this attempt
        try {
            torch::Tensor current = original;
            // The modelled particles' centroid stays fixed: proposals are placed around it.
            const torch::Tensor centroid = original.sum(0, true) * (1.0 / n);
            const torch::Tensor x = (original - centroid).to(model->options()).unsqueeze(0);
            // The model calls of this attempt: a Gibbs refresh of the current state's auxiliary
            // variables (its terms of log alpha; none for families without them), and all
            // proposals from one batched call. Noise is
            // drawn on the CPU, so a seed gives the same proposals on every platform.
            torch::Generator auxiliaryNoise = at::make_generator<at::CPUGeneratorImpl>((long long) (random() >> 1));
            const torch::Tensor aux = model->sampleAuxiliary(x, auxiliaryNoise);
            ExtendedState state{context.calcForcesAndEnergy(false, true, groups),
                                model->logAuxiliaryTarget(x, aux).item<double>(), model->logProb(x, aux).item<double>()};
            // A non-finite current state has no meaningful acceptance ratio: refuse it rather than
            // move away from (or hide) a broken simulation.
            if (!std::isfinite(state.energy) || !torch::isfinite(original).all().item<bool>())
                fail("the current state is not finite (energy " + std::to_string(state.energy) +
                     " kJ/mol): the simulation has blown up or was started from bad positions");
            torch::Generator proposalNoise = at::make_generator<at::CPUGeneratorImpl>((long long) (random() >> 1));
            const ModelSample s = model->sample(P, proposalNoise);
            const std::vector<double> logQs = toHostDoubles(s.logQ),
                                      logPis = toHostDoubles(model->logAuxiliaryTarget(s.x, s.aux));
            const torch::Tensor trials = s.x.to(torch::kFloat64) + centroid;  // [P, n, 3]
            std::vector<bool> allowed(P, true);
            if (!chiralCentreRows.empty()) {
                const torch::Tensor centres =
                    torch::tensor(chiralCentreRows, torch::kInt64).view({-1, 4}).to(original.device());
                const std::vector<double> same = toHostDoubles(
                    (positiveChirality(trials, centres) == positiveChirality(original.unsqueeze(0), centres)).all(1));
                for (int k = 0; k < P; k++)
                    allowed[k] = same[k] != 0.0;
            }
            for (int k = 0; k < P; k++) {
                ExtendedState trial{std::numeric_limits<double>::infinity(), logPis[k], logQs[k]};
                double logAlpha = -std::numeric_limits<double>::infinity();
                if (allowed[k]) {
                    mover.setPositions(context, trials[k]);
                    trial.energy = context.calcForcesAndEnergy(false, true, groups);
                    logAlpha = evaluateLogAcceptanceRatio(state, trial, kT);
                }
                numProposed++;
                lastLogAcceptance = logAlpha;
                if (acceptMove(logAlpha, random)) {
                    numAccepted++;
                    current = trials[k];
                    state = trial;
                    if (owner.getRedrawVelocities()) {
                        std::normal_distribution<double> normal(0.0, 1.0);
                        std::vector<double> v;
                        for (int i = 0; i < n; i++) {
                            const double sigma = std::sqrt(kT / masses[i]);  // masses > 0 (initialize)
                            for (int d = 0; d < 3; d++)
                                v.push_back(sigma * normal(random));
                        }
                        if (!originalVelocities.defined())
                            originalVelocities = mover.getVelocities(context);
                        mover.setVelocities(context, torch::tensor(v, torch::kFloat64).view({n, 3}).to(original.device()));
                    }
                }
                if (allowed[k])
                    mover.setPositions(context, current);  // the accepted state, or the one before the trial
            }
        } catch (const std::exception& e) {
            // A failed attempt leaves the Context as it found it: positions, and velocities if an
            // accepted proposal of this attempt had redrawn them.
            try {
                mover.setPositions(context, original);
                if (originalVelocities.defined())
                    mover.setVelocities(context, originalVelocities);
            } catch (const std::exception& restoreError) {
                fail(std::string("proposal failed (") + e.what() + ") and restoring the state failed too: " +
                     restoreError.what());
            }
            fail(std::string("proposal failed, state restored: ") + e.what());
        }
    });
}

std::map<std::string, double> BoltzmannGeneratorProposalImpl::getDefaultParameters() {
    return {{BoltzmannGeneratorProposal::Temperature(), owner.getTemperature()}};
}

std::vector<std::string> BoltzmannGeneratorProposalImpl::getKernelNames() {
    return {MoveModelledParticlesKernel::Name()};
}

}  // namespace OpenMMBG
