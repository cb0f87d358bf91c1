#pragma once
/**
 * The full configuration of a model of family "ecnf": the E(n)-equivariant continuous normalizing
 * flow of equivariant flow matching (Klein, Kraemer, Noe, NeurIPS 2023), docs/ecnf.md. This header
 * does not depend on LibTorch.
 *
 * Architecture defaults: the vector field is an EGNN (Satorras et al. 2021) of 3 message-passing
 * layers as in the E-ACF paper's E-CNF baseline for DW4 and LJ13 (3 layers; its MLPs have 128 units,
 * ours default to 64 to keep the exact divergence affordable on a CPU: the log-density costs N D
 * vector-Jacobian products per function evaluation). Solver defaults: adaptive Dormand-Prince 5(4)
 * with rtol = atol = 1e-5 (the E-ACF paper's E-CNF baseline).
 */
#include <cstdint>
#include <string>
#include <vector>

namespace OpenMMBG {

struct EquivariantCnfConfig {
    std::string family = "ecnf";  ///< "family": this configuration is that of "ecnf"
    // Required.
    int numParticles = 0;  ///< "num_particles": N (>= 2)
    int dim = 3;           ///< "dim": D, 2 or 3
    // Vector field.
    int numLayers = 3;             ///< "num_layers": EGNN message-passing layers
    int hiddenUnits = 64;          ///< "hidden_units": width of node features and of every MLP layer
    std::vector<int64_t> atomTypes;  ///< "atom_types": per-particle type index (default all 0: identical particles)
    // Integration of the ODE from the base (t = 0) to the data (t = 1).
    std::string solver = "dopri5";  ///< "solver": "dopri5" (adaptive Dormand-Prince 5(4)) or "rk4" (fixed steps)
    double rtol = 1e-5;             ///< "rtol": dopri5's relative tolerance
    double atol = 1e-5;             ///< "atol": dopri5's absolute tolerance
    int rk4Steps = 50;              ///< "rk4_steps": rk4's number of steps over [0, 1]
    int maxSteps = 10000;           ///< "max_steps": dopri5 gives up (std::runtime_error) after this many attempted steps
    /**
     * "divergence": "exact" (the trace of the N D x N D Jacobian, N D vector-Jacobian products per
     * evaluation; the density the Force's Metropolis-Hastings rule needs) or "hutchinson" (one
     * Gaussian probe per integration: an unbiased estimate of the divergence, for large systems;
     * log q is then stochastic and the Force refuses the model).
     */
    std::string divergence = "exact";
    std::string dtype = "float32";  ///< "dtype" of the vector field: "float32" or "float64" (log q accumulates in float64)
    int64_t initSeed = 0;           ///< "init_seed": seed of the parameter initialisation
    std::string lengthUnit = "nm";  ///< "length_unit": "nm" or "angstrom"
    double temperature = 120.27;    ///< "temperature" (K) the model describes; 120.27 K gives kT = 1 kJ/mol

    /** Parse a JSON object, fill defaults and validate; throws std::invalid_argument naming the bad key. */
    static EquivariantCnfConfig fromJson(const std::string& json);
    /** The full configuration as a JSON object with every key. */
    std::string toJson() const;
    /** Check ranges; throws std::invalid_argument ("flow config: ...") naming the key. */
    void validate() const;
};

}  // namespace OpenMMBG
