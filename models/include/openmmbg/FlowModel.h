#pragma once
/**
 * A trained or untrained model of any family behind a small, LibTorch-free interface: what the
 * Python bindings use. Arrays are flat, row-major float64: x is [n, N, D], the auxiliary variables
 * a are [n, getAuxiliaryShape()...] ([n, N, A, D] for E-ACF, empty for families without them),
 * log-densities are [n]. Lengths are in the model's length unit (config "length_unit", nm by
 * default). Library code that can use LibTorch works with the Model behind it (model()).
 */
#include <memory>
#include <string>
#include <vector>

namespace OpenMMBG {

class Model;

class FlowModel {
public:
    /** Build an untrained flow from a JSON configuration (see docs/flow-config.md). */
    explicit FlowModel(const std::string& configJson);
    /** Load a .bgm model file. */
    static FlowModel load(const std::string& path);
    /** Rebuild a flow from the bytes of a .bgm file. */
    static FlowModel fromBytes(const std::string& bytes);
    /** Save to a .bgm file (written atomically). */
    void save(const std::string& path) const;
    /** The bytes of the .bgm file. */
    std::string toBytes() const;
    /** The full configuration as JSON. */
    std::string getConfigJson() const;
    /** The model family ("eacf", ...). */
    std::string getFamily() const;
    int getNumParticles() const;
    int getDim() const;
    /** The shape of one configuration's auxiliary variables ([N, A, D] for E-ACF; [0] when there are none). */
    std::vector<long long> getAuxiliaryShape() const;
    /**
     * Move the flow to a LibTorch device: "cpu" (the default) or "cuda:N" (needs a CUDA LibTorch
     * loaded in the process, as the CUDA plugin does). Sampling and densities then run there; the
     * inputs and outputs of this interface stay host arrays, and a seed gives the same draws on
     * every device (noise is drawn on the CPU). Training runs on the CPU only.
     */
    void setDevice(const std::string& device);
    /** The device the flow runs on, e.g. "cpu" or "cuda:0". */
    std::string getDevice() const;
    /** Number of trainable parameters. */
    long long getNumParameters() const;

    /**
     * Draw n samples. Returns x ([n, N, D]), then a ([n, N, A, D]), then log q ([n]),
     * concatenated in one array.
     */
    std::vector<double> sample(int n, long long seed) const;
    /** Joint log q(x, a) [n] for x [n, N, D] and a [n, N, A, D]. */
    std::vector<double> logProb(const std::vector<double>& x, const std::vector<double>& a) const;
    /** Marginal log q(x) [n] by importance sampling with numAugSamples draws of a ~ pi(a|x). */
    std::vector<double> marginalLogProb(const std::vector<double>& x, int numAugSamples, long long seed) const;
    /** Draw a ~ pi(a|x) [n, N, A, D] for x [n, N, D] (a Gibbs refresh of the augmented variables). */
    std::vector<double> sampleAugmented(const std::vector<double>& x, long long seed) const;
    /** The augmented target log pi(a|x) [n]. */
    std::vector<double> logAugmentedTarget(const std::vector<double>& x, const std::vector<double>& a) const;

    /**
     * Train by maximum likelihood on configurations train [n, N, D] (validation [m, N, D] may be
     * empty: no model selection). Options as JSON (see maximumLikelihoodOptionsFromJson in
     * Training.h). Progress lines go to stderr when verbose. Returns the epoch reports as a JSON
     * array; afterwards the model holds the parameters with the best validation NLL.
     */
    std::string trainMaximumLikelihood(const std::vector<double>& train, const std::vector<double>& validation,
                                       const std::string& optionsJson, bool verbose);
    /**
     * Train a continuous flow (family "ecnf") by flow matching on configurations train [n, N, D]
     * (validation [m, N, D] may be empty: no model selection). Options as JSON (see
     * flowMatchingOptionsFromJson in FlowMatching.h: those of maximum likelihood plus "pairing"
     * and "sigma"). Returns the epoch reports as a JSON array; afterwards the model holds the
     * parameters with the best validation NLL.
     */
    std::string trainFlowMatching(const std::vector<double>& train, const std::vector<double>& validation,
                                  const std::string& optionsJson, bool verbose);
    /**
     * Train against a built-in target ("dw4", "lj13", "lj55") from its energy alone, without data:
     * FAB (flow annealed importance sampling bootstrap) or reverse KL, chosen by the option
     * "objective" ("fab" by default). Options as JSON (see energyTrainingOptionsFromJson in
     * EnergyTraining.h and docs/training.md); a "checkpoint" path makes the run resumable. Progress
     * lines go to stderr when verbose. Returns the reports as a JSON array; afterwards the model
     * holds the final parameters.
     */
    std::string trainEnergy(const std::string& target, const std::string& optionsJson, bool verbose);
    /**
     * Evaluate against a built-in target ("dw4", "lj13", "lj55") on test configurations [n, N, D]:
     * returns JSON with nll, nll_sem, reverse_ess, forward_ess, num_test, num_aug_samples and
     * num_ess_samples.
     */
    std::string evaluate(const std::string& target, const std::vector<double>& test, int numAugSamples,
                         long long numEssSamples, long long seed) const;

    /** The model behind this interface (LibTorch types: see Model.h). */
    std::shared_ptr<Model> model() const;

private:
    struct Impl;
    FlowModel() = default;
    std::shared_ptr<Impl> impl_;
};

/**
 * Reduced energies U(x)/kT [n] of a built-in target ("dw4", "lj13", "lj55") for x [n, N, D]
 * (flat, row-major).
 */
std::vector<double> builtinTargetEnergies(const std::string& target, const std::vector<double>& x);

/**
 * The Z-matrix of a molecule from its bonded graph (ZMatrix::fromBonds, docs/internal-coordinates.md).
 * @param moleculeJson the molecule, {"num_atoms": N, "bonds": [[i, j], ...], "heavy": [true|false per atom]}
 * @return the rows as JSON, [[atom, bond, angle, dihedral], ...] with -1 where a row has none: the
 *         "zmatrix" of an internal-coordinate model's configuration
 */
std::string zmatrixFromBonds(const std::string& moleculeJson);

/**
 * Rethrows the exception being handled as one of the library's error types (openmmbg/Errors.h), for
 * bindings that map errors by type: LibTorch's out-of-memory errors become std::bad_alloc (Python
 * MemoryError), other LibTorch errors std::runtime_error with the first line of their message (no C++
 * backtrace); every other exception is rethrown unchanged. Call only inside a catch block.
 */
[[noreturn]] void rethrowAsLibraryError();

}  // namespace OpenMMBG
