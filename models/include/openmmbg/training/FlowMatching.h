#pragma once
/**
 * Flow-matching training of a continuous normalizing flow (family "ecnf"), simulation-free: the
 * objective "flow-matching" of the one training loop (TrainingLoop.h; docs/ecnf.md).
 *
 * One step on a batch of data x1 [B, N, D] (zero centroid): prior draws x0 ~ p0 (the zero-centroid
 * Gaussian), paired with the data (Pairing.h: independent, minibatch OT or equivariant OT),
 * t ~ U(0, 1) per pair, x_t = (1 - t) x0 + t x1 + sigma eps with eps ~ p0, target u = x1 - x0, loss
 * per pair mean over particles and dimensions of |v(t, x_t) - u|^2 (the conditional flow-matching
 * path of Klein et al.'s code, bgflow's FlowMatchingTrainer). An iteration is an epoch; evaluations
 * compute the validation set's NLL with the model's exact log q (which selects the model), as for
 * maximum likelihood.
 */
#include "openmmbg/training/Pairing.h"
#include "openmmbg/training/Training.h"

namespace OpenMMBG {

class EquivariantCnfModel;

/**
 * The data-training options of maximum likelihood (epochs, batch, learning-rate schedule, gradient
 * guard, validation, patience, time limit, seed, checkpoints) plus the path's. Defaults as
 * MaximumLikelihoodOptions; validation_aug_samples, min_log_q and random_rotations do not apply.
 */
struct FlowMatchingOptions : MaximumLikelihoodOptions {
    std::string pairing = "equivariant-ot";  ///< "independent", "ot" or "equivariant-ot"
    double sigma = 0.01;                     ///< standard deviation of the path's noise (length units)
};

/** Options from a JSON object: the keys of maximumLikelihoodOptionsFromJson plus pairing and sigma. */
FlowMatchingOptions flowMatchingOptionsFromJson(const std::string& json);

class FlowMatchingObjective : public TrainingObjective {
public:
    /**
     * @param model      an "ecnf" model (std::invalid_argument otherwise), which must outlive this
     * @param train      training configurations [n, N, D] (centred here)
     * @param validation validation configurations [m, N, D] (may be empty: no model selection)
     */
    FlowMatchingObjective(Model& model, torch::Tensor train, torch::Tensor validation, const FlowMatchingOptions& options);
    std::string name() const override { return "flow-matching"; }
    std::string signature() const override;
    void iterate(TrainingLoop& loop) override;
    bool selectsModels() const override { return validation.defined() && validation.size(0) > 0; }
    double evaluate(TrainingLoop& loop, TrainingReport& report) override;
    /** Mean pair cost |x0 - x1|^2 of the pairing over the last iteration (for reports and tests). */
    double lastMeanPairCost() const { return lastPairCost; }

private:
    EquivariantCnfModel& model;
    torch::Tensor train, validation, particleTypes;
    FlowMatchingOptions options;
    Pairing pairing;
    double lastPairCost = 0;
};

/** Flow-matching training of an "ecnf" model: the one training loop with the flow-matching objective. */
class FlowMatchingTrainer {
public:
    FlowMatchingTrainer(std::shared_ptr<Model> model, torch::Tensor train, torch::Tensor validation,
                        FlowMatchingOptions options);
    /** Train; calls onEpoch after every epoch. Restores the parameters with the best validation NLL. */
    std::vector<TrainingReport> run(const std::function<void(const TrainingReport&)>& onEpoch = {});
    const FlowMatchingObjective& objective() const { return *objective_; }

private:
    std::shared_ptr<Model> model;
    std::shared_ptr<FlowMatchingObjective> objective_;
    FlowMatchingOptions options;
    int64_t numTrain;
};

}  // namespace OpenMMBG
