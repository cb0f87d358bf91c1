#pragma once
/**
 * A training target made from any OpenMM System: energies and forces of batches of configurations,
 * evaluated by a pool of OpenMM Contexts in parallel. Public header: no LibTorch. The LibTorch
 * adapter that makes it an OpenMMBG::Target (differentiable reduced energies for training) is
 * internal/OpenMMSystemTargetImpl.h.
 *
 * Units: positions nm, energies kJ/mol, forces kJ/mol/nm, temperature K. Reduced energies are
 * U / kT with kT = BOLTZMANN * temperature.
 */
#include "OpenMMBGUnits.h"
#include "openmm/System.h"
#include "openmm/Vec3.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace OpenMMBG {

/** Energies and forces of a batch of B configurations of N selected particles. */
struct OpenMMSystemTargetResult {
    /** Potential energies [B], kJ/mol; +inf for a configuration whose energy is not finite. */
    std::vector<double> energies;
    /** Reduced energies U/kT [B]. */
    std::vector<double> reducedEnergies;
    /** Forces on the selected particles [B * N * 3], kJ/mol/nm; empty when forces were not requested. */
    std::vector<double> forces;
};

/**
 * Evaluates an OpenMM System at batches of configurations of a selected set of its particles.
 *
 * - The System is copied (through OpenMM's XML serialization, so every Force in it needs a
 *   serialization proxy, as the standard ones have); later changes to the original do not matter.
 * - Particle subset: only the selected particles move; every other particle stays at its reference
 *   position. Energies include the interactions with the fixed particles; forces are returned for
 *   the selected particles only, in the order of the selection.
 * - Pool: one OpenMM Context (with a VerletIntegrator that never steps) per thread. A batch is
 *   spread over the threads, each thread evaluating configurations with its own Context. Calls to
 *   evaluate() on one object are serialised; separate objects are independent.
 * - Positions are set as given: constraints are not applied, and in a periodic System positions are
 *   not wrapped into the box (OpenMM applies periodic boundary conditions itself, with the System's
 *   default box vectors). Virtual sites, if any, are computed from their parent particles; they
 *   cannot be selected.
 * - A configuration with a non-finite position, energy or force (for example two overlapping atoms)
 *   gets energy +inf and zero forces instead of an error.
 *
 * Errors (wrong array sizes, a temperature that is not positive, bad particle indices, an unknown
 * platform) are OpenMM::OpenMMExceptions whose message starts with "OpenMMSystemTarget:".
 */
class OpenMMSystemTarget {
public:
    /**
     * @param system             the System to evaluate (copied)
     * @param temperature        K, > 0; sets kT for the reduced energies
     * @param particles          0-based indices of the particles that move, in the order positions
     *                           are given; empty (default) selects all particles in index order
     * @param referencePositions nm, one per particle of the System: the positions of the particles
     *                           that are not selected. Required when a subset is selected; may be
     *                           empty otherwise
     * @param platform           OpenMM platform name: "Reference" (default), "CPU", or any other
     *                           registered platform. OpenMM's plugins are loaded if it is not registered.
     * @param numThreads         threads (and Contexts) in the pool; 0 (default) means
     *                           std::thread::hardware_concurrency() (at least 1) on the Reference
     *                           and CPU platforms, and 1 on other (GPU) platforms
     * @param platformProperties properties for every Context. On the CPU platform "Threads" defaults
     *                           to "1", since the pool already runs one Context per thread
     */
    OpenMMSystemTarget(const OpenMM::System& system, double temperature, const std::vector<int>& particles = {},
                       const std::vector<OpenMM::Vec3>& referencePositions = {},
                       const std::string& platform = "Reference", int numThreads = 0,
                       const std::map<std::string, std::string>& platformProperties = {});
    /**
     * The same, from a System serialized with OpenMM's XmlSerializer (Python:
     * openmm.XmlSerializer.serialize(system)). Parameters as for the constructor.
     */
    static std::unique_ptr<OpenMMSystemTarget> fromXml(
        const std::string& systemXml, double temperature, const std::vector<int>& particles = {},
        const std::vector<OpenMM::Vec3>& referencePositions = {}, const std::string& platform = "Reference",
        int numThreads = 0, const std::map<std::string, std::string>& platformProperties = {});
    ~OpenMMSystemTarget();
    OpenMMSystemTarget(const OpenMMSystemTarget&) = delete;
    OpenMMSystemTarget& operator=(const OpenMMSystemTarget&) = delete;

    /** Number of selected particles N; a configuration holds N * 3 values. */
    int getNumParticles() const;
    /** Number of particles in the System. */
    int getSystemNumParticles() const;
    /** The selected particles' indices in the System. */
    const std::vector<int>& getParticles() const;
    /** The reference positions (nm) of all particles of the System; empty if none were given. */
    const std::vector<OpenMM::Vec3>& getReferencePositions() const;
    /** K. */
    double getTemperature() const;
    /** kT = BOLTZMANN * temperature, kJ/mol. */
    double getKT() const;
    /** Threads (and Contexts) in the pool. */
    int getNumThreads() const;
    /** The name of the platform the Contexts use. */
    const std::string& getPlatformName() const;
    /** The copy of the System that is evaluated. */
    const OpenMM::System& getSystem() const;

    /**
     * Evaluate a batch of configurations.
     * @param positions     nm, B * N * 3 values: configuration-major, then particle, then x, y, z
     * @param computeForces also compute forces (otherwise result.forces is empty)
     */
    OpenMMSystemTargetResult evaluate(const std::vector<double>& positions, bool computeForces = true);
    /**
     * Evaluate a batch into caller-owned buffers.
     * @param positions  nm, batchSize * N * 3 values
     * @param batchSize  B >= 0
     * @param energies   kJ/mol, B values written (+inf where not finite)
     * @param forces     kJ/mol/nm, B * N * 3 values written; nullptr to skip forces
     */
    void evaluate(const double* positions, int64_t batchSize, double* energies, double* forces);

private:
    class ContextPool;
    std::unique_ptr<ContextPool> pool;
};

}  // namespace OpenMMBG
