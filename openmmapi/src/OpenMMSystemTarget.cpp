#include "OpenMMSystemTarget.h"

#include "internal/OpenMMPlugins.h"
#include "internal/OpenMMSystemTargetImpl.h"
#include "openmmbg/Validation.h"
#include "openmm/Context.h"
#include "openmm/OpenMMException.h"
#include "openmm/Platform.h"
#include "openmm/State.h"
#include "openmm/VerletIntegrator.h"
#include "openmm/serialization/XmlSerializer.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <limits>
#include <mutex>
#include <sstream>
#include <thread>

namespace OpenMMBG {

using OpenMM::OpenMMException;

namespace {

[[noreturn]] void fail(const std::string& message) { throw OpenMMException("OpenMMSystemTarget: " + message); }

std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const std::string& item : items)
        out += (out.empty() ? "" : ", ") + item;
    return out;
}

/** The named platform, loading OpenMM's plugins if it is not registered (C++ programs start with Reference only). */
OpenMM::Platform& findPlatform(const std::string& name) {
    static std::mutex mutex;
    std::lock_guard<std::mutex> lock(mutex);
    auto registered = [&]() -> OpenMM::Platform* {
        for (int i = 0; i < OpenMM::Platform::getNumPlatforms(); i++)
            if (OpenMM::Platform::getPlatform(i).getName() == name)
                return &OpenMM::Platform::getPlatform(i);
        return nullptr;
    };
    if (OpenMM::Platform* platform = registered())
        return *platform;
    loadOpenMMPlugins();
    if (OpenMM::Platform* platform = registered())
        return *platform;
    std::vector<std::string> names;
    for (int i = 0; i < OpenMM::Platform::getNumPlatforms(); i++)
        names.push_back(OpenMM::Platform::getPlatform(i).getName());
    const std::string failures = joined(OpenMM::Platform::getPluginLoadFailures());
    fail("platform '" + name + "' is not available (available: " + joined(names) + "; plugins from '" +
         openmmPluginDirectory() + "'" + (failures.empty() ? "" : "; plugin load failures: " + failures) + ")");
}

std::unique_ptr<OpenMM::System> copySystem(const OpenMM::System& system) {
    try {
        return std::unique_ptr<OpenMM::System>(OpenMM::XmlSerializer::clone<OpenMM::System>(system));
    } catch (const std::exception& e) {
        fail(std::string("cannot copy the System through XML serialization: ") + e.what());
    }
}

}  // namespace

class OpenMMSystemTarget::ContextPool {
public:
    struct Worker {
        // The Context refers to the integrator: declared after it so that it is destroyed first.
        std::unique_ptr<OpenMM::VerletIntegrator> integrator;
        std::unique_ptr<OpenMM::Context> context;
        std::vector<OpenMM::Vec3> positions;
    };

    std::unique_ptr<OpenMM::System> system;  // outlives the Contexts
    double temperature = 0, kT = 0;
    std::vector<int> particles;
    std::vector<OpenMM::Vec3> reference;
    std::string platformName;
    bool hasVirtualSites = false;
    std::vector<Worker> workers;
    std::mutex mutex;

    /** Evaluates one configuration with worker w's Context. */
    void evaluateOne(int w, const double* x, double& energy, double* forces) {
        Worker& worker = workers[size_t(w)];
        const size_t n = particles.size();
        bool finite = true;
        for (size_t i = 0; i < n; i++) {
            OpenMM::Vec3& p = worker.positions[size_t(particles[i])];
            for (int d = 0; d < 3; d++) {
                p[d] = x[3 * i + d];
                finite = finite && std::isfinite(p[d]);
            }
        }
        if (finite) {
            worker.context->setPositions(worker.positions);
            if (hasVirtualSites)
                worker.context->computeVirtualSites();
            const OpenMM::State state =
                worker.context->getState(OpenMM::State::Energy | (forces ? OpenMM::State::Forces : 0));
            energy = state.getPotentialEnergy();
            finite = std::isfinite(energy);
            if (forces && finite) {
                const std::vector<OpenMM::Vec3>& f = state.getForces();
                for (size_t i = 0; i < n; i++)
                    for (int d = 0; d < 3; d++) {
                        forces[3 * i + d] = f[size_t(particles[i])][d];
                        finite = finite && std::isfinite(forces[3 * i + d]);
                    }
            }
        }
        if (!finite) {
            energy = std::numeric_limits<double>::infinity();
            if (forces)
                std::fill(forces, forces + 3 * n, 0.0);
        }
    }
};

OpenMMSystemTarget::OpenMMSystemTarget(const OpenMM::System& system, double temperature,
                                       const std::vector<int>& particles,
                                       const std::vector<OpenMM::Vec3>& referencePositions, const std::string& platform,
                                       int numThreads, const std::map<std::string, std::string>& platformProperties)
    : pool(std::make_unique<ContextPool>()) {
    try {
        requirePositive("the temperature (K)", temperature);
    } catch (const std::invalid_argument& e) {
        fail(e.what());
    }
    if (numThreads < 0)
        fail("the number of threads must be 0 (one per core) or positive, got " + std::to_string(numThreads));
    const int numSystem = system.getNumParticles();
    if (numSystem == 0)
        fail("the System has no particles");

    std::vector<int> selected = particles;
    if (selected.empty()) {
        selected.resize(size_t(numSystem));
        for (int i = 0; i < numSystem; i++)
            selected[size_t(i)] = i;
    }
    std::vector<char> seen(size_t(numSystem), 0);
    for (int p : selected) {
        if (p < 0 || p >= numSystem)
            fail("particle index " + std::to_string(p) + " is out of range for a System of " +
                 std::to_string(numSystem) + " particles");
        if (seen[size_t(p)])
            fail("particle index " + std::to_string(p) + " is selected twice");
        seen[size_t(p)] = 1;
        if (system.isVirtualSite(p))
            fail("particle " + std::to_string(p) + " is a virtual site; select only real particles");
    }
    const bool subset = selected.size() < size_t(numSystem);
    if (subset && referencePositions.empty())
        fail(std::to_string(selected.size()) + " of " + std::to_string(numSystem) +
             " particles are selected: reference positions for all particles are required");
    if (!referencePositions.empty()) {
        if (referencePositions.size() != size_t(numSystem))
            fail("got " + std::to_string(referencePositions.size()) + " reference positions for a System of " +
                 std::to_string(numSystem) + " particles");
        for (size_t i = 0; i < referencePositions.size(); i++)
            for (int d = 0; d < 3; d++)
                if (!std::isfinite(referencePositions[i][d]))
                    fail("reference position of particle " + std::to_string(i) + " is not finite");
    }
    if (numThreads == 0)  // one Context per core on the CPU platforms; one GPU Context is enough elsewhere
        numThreads =
            platform == "Reference" || platform == "CPU" ? std::max(1, int(std::thread::hardware_concurrency())) : 1;

    ContextPool& p = *pool;
    p.system = copySystem(system);
    p.temperature = temperature;
    p.kT = BOLTZMANN * temperature;
    p.particles = selected;
    p.reference = referencePositions;
    p.platformName = platform;
    for (int i = 0; i < numSystem && !p.hasVirtualSites; i++)
        p.hasVirtualSites = system.isVirtualSite(i);

    OpenMM::Platform& plat = findPlatform(platform);
    std::map<std::string, std::string> properties = platformProperties;
    if (platform == "CPU" && properties.count("Threads") == 0)
        properties["Threads"] = "1";
    const std::vector<OpenMM::Vec3> initial =
        referencePositions.empty() ? std::vector<OpenMM::Vec3>(size_t(numSystem)) : referencePositions;
    p.workers.resize(size_t(numThreads));
    for (ContextPool::Worker& worker : p.workers) {
        worker.integrator = std::make_unique<OpenMM::VerletIntegrator>(0.001);
        worker.context = std::make_unique<OpenMM::Context>(*p.system, *worker.integrator, plat, properties);
        worker.positions = initial;
    }
}

std::unique_ptr<OpenMMSystemTarget> OpenMMSystemTarget::fromXml(
    const std::string& systemXml, double temperature, const std::vector<int>& particles,
    const std::vector<OpenMM::Vec3>& referencePositions, const std::string& platform, int numThreads,
    const std::map<std::string, std::string>& platformProperties) {
    std::unique_ptr<OpenMM::System> system;
    try {
        std::istringstream in(systemXml);
        system.reset(OpenMM::XmlSerializer::deserialize<OpenMM::System>(in));
    } catch (const std::exception& e) {
        fail(std::string("cannot read the System from XML: ") + e.what());
    }
    if (!system)
        fail("cannot read the System from XML");
    return std::make_unique<OpenMMSystemTarget>(*system, temperature, particles, referencePositions, platform,
                                                numThreads, platformProperties);
}

OpenMMSystemTarget::~OpenMMSystemTarget() = default;

int OpenMMSystemTarget::getNumParticles() const { return int(pool->particles.size()); }
int OpenMMSystemTarget::getSystemNumParticles() const { return pool->system->getNumParticles(); }
const std::vector<int>& OpenMMSystemTarget::getParticles() const { return pool->particles; }
const std::vector<OpenMM::Vec3>& OpenMMSystemTarget::getReferencePositions() const { return pool->reference; }
double OpenMMSystemTarget::getTemperature() const { return pool->temperature; }
double OpenMMSystemTarget::getKT() const { return pool->kT; }
int OpenMMSystemTarget::getNumThreads() const { return int(pool->workers.size()); }
const std::string& OpenMMSystemTarget::getPlatformName() const { return pool->platformName; }
const OpenMM::System& OpenMMSystemTarget::getSystem() const { return *pool->system; }

OpenMMSystemTargetResult OpenMMSystemTarget::evaluate(const std::vector<double>& positions, bool computeForces) {
    const size_t per = 3 * pool->particles.size();
    if (positions.size() % per != 0)
        fail("got " + std::to_string(positions.size()) + " position values, not a multiple of " + std::to_string(per) +
             " (" + std::to_string(pool->particles.size()) + " particles x 3)");
    const int64_t batch = int64_t(positions.size() / per);
    OpenMMSystemTargetResult result;
    result.energies.resize(size_t(batch));
    if (computeForces)
        result.forces.resize(positions.size());
    evaluate(positions.data(), batch, result.energies.data(), computeForces ? result.forces.data() : nullptr);
    result.reducedEnergies.resize(size_t(batch));
    for (int64_t b = 0; b < batch; b++)
        result.reducedEnergies[size_t(b)] = result.energies[size_t(b)] / pool->kT;
    return result;
}

void OpenMMSystemTarget::evaluate(const double* positions, int64_t batchSize, double* energies, double* forces) {
    if (batchSize < 0)
        fail("the batch size must not be negative, got " + std::to_string(batchSize));
    if (batchSize == 0)
        return;
    if (!positions || !energies)
        fail("null position or energy buffer");
    ContextPool& p = *pool;
    std::lock_guard<std::mutex> lock(p.mutex);
    const int64_t per = 3 * int64_t(p.particles.size());
    std::atomic<int64_t> next{0};
    std::atomic<bool> failed{false};
    std::exception_ptr error;
    std::mutex errorMutex;
    auto work = [&](int w) {
        int64_t b = -1;
        try {
            while (!failed && (b = next++) < batchSize)
                p.evaluateOne(w, positions + b * per, energies[b], forces ? forces + b * per : nullptr);
        } catch (const std::exception& e) {
            std::lock_guard<std::mutex> guard(errorMutex);
            if (!error)
                error = std::make_exception_ptr(
                    OpenMMException("OpenMMSystemTarget: configuration " + std::to_string(b) + ": " + e.what()));
            failed = true;
        } catch (...) {
            std::lock_guard<std::mutex> guard(errorMutex);
            if (!error)
                error = std::current_exception();
            failed = true;
        }
    };
    const int numWorkers = int(std::min<int64_t>(int64_t(p.workers.size()), batchSize));
    std::vector<std::thread> threads;
    try {
        for (int w = 1; w < numWorkers; w++)
            threads.emplace_back(work, w);
    } catch (...) {
        failed = true;
        for (std::thread& t : threads)
            t.join();
        throw;
    }
    work(0);
    for (std::thread& t : threads)
        t.join();
    if (error)
        std::rethrow_exception(error);
}

// ---- LibTorch adapter ----

namespace {

/** Positions [B, N, 3] as a contiguous float64 CPU tensor, after checking the shape. */
torch::Tensor checkedPositions(const torch::Tensor& x, int numParticles) {
    if (x.dim() != 3 || x.size(1) != numParticles || x.size(2) != 3) {
        std::ostringstream s;
        s << "positions must have shape [B, " << numParticles << ", 3], got " << x.sizes();
        fail(s.str());
    }
    if (!x.is_floating_point())
        fail("positions must be a floating-point tensor");
    return x.detach().to(torch::kCPU, torch::kFloat64).contiguous();
}

/** Reduced energies [B] and, if wanted, reduced forces [B, N, 3] (float64, CPU). */
std::pair<torch::Tensor, torch::Tensor> evaluateReduced(OpenMMSystemTarget& system, const torch::Tensor& x,
                                                        bool computeForces) {
    const torch::Tensor xd = checkedPositions(x, system.getNumParticles());
    const int64_t batch = xd.size(0);
    const auto options = torch::TensorOptions().dtype(torch::kFloat64);
    torch::Tensor energies = torch::empty({batch}, options);
    torch::Tensor forces = computeForces ? torch::empty({batch, xd.size(1), 3}, options) : torch::Tensor();
    system.evaluate(xd.data_ptr<double>(), batch, energies.data_ptr<double>(),
                    computeForces ? forces.data_ptr<double>() : nullptr);
    const double kT = system.getKT();
    energies.div_(kT);
    if (computeForces)
        forces.div_(kT);
    return {energies, forces};
}

struct OpenMMEnergyFunction : public torch::autograd::Function<OpenMMEnergyFunction> {
    static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                                 OpenMMSystemTarget* system) {
        auto [energies, forces] = evaluateReduced(*system, x, true);
        ctx->save_for_backward({forces.to(x.options())});
        return energies.to(x.options());
    }

    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list gradOutputs) {
        const torch::Tensor forces = ctx->get_saved_variables()[0];
        const torch::Tensor gradX = -forces * gradOutputs[0].to(forces.options()).view({-1, 1, 1});
        return {gradX, torch::Tensor()};
    }
};

}  // namespace

OpenMMSystemTargetImpl::OpenMMSystemTargetImpl(std::shared_ptr<OpenMMSystemTarget> system) : system(std::move(system)) {
    if (!this->system)
        fail("null OpenMMSystemTarget");
}

int OpenMMSystemTargetImpl::numParticles() const { return system->getNumParticles(); }

torch::Tensor OpenMMSystemTargetImpl::energy(const torch::Tensor& x) {
    if (torch::GradMode::is_enabled() && x.requires_grad())
        return OpenMMEnergyFunction::apply(x, system.get());
    return evaluateReduced(*system, x, false).first.to(x.options());
}

std::pair<torch::Tensor, torch::Tensor> OpenMMSystemTargetImpl::energyAndForces(const torch::Tensor& x) {
    auto [energies, forces] = evaluateReduced(*system, x, true);
    return {energies.to(x.options()), forces.to(x.options())};
}

}  // namespace OpenMMBG
