#pragma once
/**
 * The model interface of the flow library: a normalizing flow over configurations x [B, N, D] of
 * N particles in D dimensions, shaped like a distrax/nflows distribution. Every model family
 * implements it ("eacf": the E-ACF and Non-E-ACF augmented coupling flows; "ic": a flow on internal
 * coordinates, models/include/openmmbg/ic/InternalCoordinateFlowModel.h), and everything
 * that uses a trained model (the OpenMM Force, replica exchange, evaluation, the command-line tool
 * and the Python module) goes through it.
 *
 * Auxiliary variables. Augmented families (E-ACF) model x jointly with auxiliary variables `aux`
 * drawn from a fixed conditional pi(aux|x); the flow's density is the joint q(x, aux). Families
 * without auxiliary variables return an empty tensor [B, 0] for aux and log pi(aux|x) = 0, so one
 * Metropolis-Hastings formula on the extended space serves all of them:
 *
 *   log alpha = [-U(x')/kT + log pi(aux'|x') - log q(x', aux')] - [-U(x)/kT + log pi(aux|x) - log q(x, aux)]
 *
 * Shapes: x [B, N, D]; aux [B, ...] (family-defined, [B, N, A, D] for E-ACF); log-densities [B].
 * Lengths are in the model's length unit ("length_unit" of the configuration, nm by default).
 */
#include <torch/torch.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace OpenMMBG {

/** Configurations drawn from a model, with their auxiliary variables and joint log-density. */
struct ModelSample {
    torch::Tensor x;     ///< [n, N, D]
    torch::Tensor aux;   ///< [n, ...]; [n, 0] for families without auxiliary variables
    torch::Tensor logQ;  ///< joint log q(x, aux) [n]
};

/** A log-density with the family's training penalty, both per configuration [B]. */
struct ModelDensity {
    torch::Tensor logQ;     ///< joint log q(x, aux)
    /**
     * What the family adds to every training loss, already weighted (the E-ACF's auxiliary
     * collinearity loss times "aux_loss_weight"); zeros for families without one.
     */
    torch::Tensor penalty;
};

/** A model of any family; implementations: AugmentedCouplingFlowModel ("eacf"), InternalCoordinateFlowModel ("ic"). */
class Model {
public:
    virtual ~Model() = default;

    /** The family key of the configuration ("eacf", "ic"). */
    virtual std::string family() const = 0;
    /** The full configuration as a JSON object, including "family". */
    virtual std::string configJson() const = 0;
    virtual int64_t numParticles() const = 0;
    virtual int64_t dim() const = 0;
    /** The dtype and device of the parameters; inputs are converted to them. */
    virtual torch::TensorOptions options() const = 0;
    /** Move the parameters to a device (their dtype stays). */
    virtual void to(const torch::Device& device) = 0;

    /**
     * Draw n configurations with their auxiliary variables and joint log q(x, aux). Differentiable
     * with respect to the parameters unless called under torch::NoGradGuard.
     */
    virtual ModelSample sample(int64_t n, torch::Generator& generator) = 0;
    /** Joint log q(x, aux) [B]. */
    virtual torch::Tensor logProb(const torch::Tensor& x, const torch::Tensor& aux) = 0;
    /** The shape of one configuration's auxiliary variables ([N, A, D] for E-ACF, [0] without any). */
    virtual std::vector<int64_t> auxiliaryShape() const = 0;
    /** Whether the family has auxiliary variables (then marginalLogProb is an estimate). */
    virtual bool hasAuxiliary() const = 0;
    /** Draw aux ~ pi(aux|x): a Gibbs refresh of the auxiliary variables. [B, 0] when there are none. */
    virtual torch::Tensor sampleAuxiliary(const torch::Tensor& x, torch::Generator& generator) = 0;
    /** log pi(aux|x) [B]; zeros when there are no auxiliary variables. */
    virtual torch::Tensor logAuxiliaryTarget(const torch::Tensor& x, const torch::Tensor& aux) = 0;
    /**
     * log q(x) [B]: exact for families without auxiliary variables; otherwise the importance-sampling
     * estimate logsumexp_k [log q(x, aux_k) - log pi(aux_k|x)] - log K with aux_k ~ pi(aux|x).
     */
    virtual torch::Tensor marginalLogProb(const torch::Tensor& x, int64_t numAuxSamples, torch::Generator& generator) = 0;

    /**
     * Whether log q(x) is unchanged by rotating x (then training needs no rotation augmentation).
     * The E-ACF is; its Non-E-ACF baseline (projection "none") is not.
     */
    virtual bool rotationInvariant() const = 0;

    // Training.
    /**
     * Set what the family derives from training data (e.g. the internal-coordinate family's
     * standardisation statistics) if it is not set yet; nothing for families without such
     * statistics. Maximum-likelihood training calls it with the training configurations [n, N, D]
     * before the first epoch of a fresh run.
     */
    virtual void initialiseFromData(const torch::Tensor& /*x*/) {}
    // A reparameterised sample is baseToSample(sampleBase(n)): the trainers keep the base
    // draws so that a loss can be recomputed on a subset of a batch (masking, Training.h).
    /** Joint log q(x, aux) and the training penalty [B], differentiable. */
    virtual ModelDensity logProbAndPenalty(const torch::Tensor& x, const torch::Tensor& aux) = 0;
    /** Draws of the base distribution for n samples [n, ...] (family-defined layout). */
    virtual torch::Tensor sampleBase(int64_t n, torch::Generator& generator) = 0;
    /** The samples of base draws and their penalty [n]; differentiable in the parameters. */
    virtual std::pair<ModelSample, torch::Tensor> baseToSample(const torch::Tensor& base) = 0;

    /** The module holding the parameters (training mode, optimisers). */
    virtual torch::nn::Module& module() = 0;
    /** The tensors a model file stores, by name (parameters and any fixed statistics). */
    virtual std::vector<std::pair<std::string, torch::Tensor>> namedTensors() = 0;
};

/** Build an untrained model from a JSON configuration; "family" (default "eacf") picks the family. */
std::shared_ptr<Model> makeModel(const std::string& configJson);
/** The family named by a configuration: its "family" key, "eacf" when absent. Throws ConfigError. */
std::string modelFamilyOf(const std::string& configJson);

/**
 * Throws std::invalid_argument unless the model describes 3-D positions in nm, as an OpenMM System
 * needs (a model in angstrom would be fed positions 10x too small); `context` starts the message.
 */
void requireOpenMMUnits(const Model& model, const std::string& context);

}  // namespace OpenMMBG
