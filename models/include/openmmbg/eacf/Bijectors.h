#pragma once
/**
 * Bijectors on the augmented state z = [x, a_1, ..., a_A] of shape [B, N, 1 + A, D] (slot 0 holds
 * the positions x). forward/inverse return the transformed state and log|det J| [B] of the map
 * they applied, plus an optional auxiliary loss.
 */
#include "openmmbg/networks/Networks.h"
#include "openmmbg/eacf/Projections.h"

#include <memory>
#include <vector>

namespace OpenMMBG {

struct BijectorOutput {
    torch::Tensor z;       ///< transformed state [B, N, 1 + A, D]
    torch::Tensor logDet;  ///< log|det J| [B]
    torch::Tensor aux;     ///< auxiliary loss per sample [B]; undefined if the bijector has none
};

class BijectorImpl : public torch::nn::Module {
public:
    virtual BijectorOutput forward(const torch::Tensor& z) = 0;
    virtual BijectorOutput inverse(const torch::Tensor& z) = 0;
};
using Bijector = std::shared_ptr<BijectorImpl>;

/**
 * Equivariant coupling: the slots `transformed` are moved, per node and slot, by `projection`
 * using vectors and parameters computed by `conditioner` from the slots `conditioning`. The
 * parameters come from a per-node head MLP whose last layer starts at zero (identity) unless a
 * random initialisation scale is given.
 */
class CouplingImpl : public BijectorImpl {
public:
    /**
     * @param randomInitScale 0 for the identity initialisation; otherwise the standard deviation of
     *        the normal distribution the head's final weights and biases are drawn from
     */
    CouplingImpl(std::vector<int64_t> transformed, std::vector<int64_t> conditioning,
                 std::shared_ptr<ConditionerImpl> conditioner, std::shared_ptr<Projection> projection,
                 const std::vector<int>& headUnits, double randomInitScale);
    BijectorOutput forward(const torch::Tensor& z) override { return apply(z, false); }
    BijectorOutput inverse(const torch::Tensor& z) override { return apply(z, true); }

private:
    BijectorOutput apply(const torch::Tensor& z, bool inverse);
    torch::Tensor transformed, conditioning, anchorSlots;
    std::shared_ptr<ConditionerImpl> conditioner;
    std::shared_ptr<Projection> projection;
    StableMLP head{nullptr};
};
TORCH_MODULE(Coupling);

/**
 * Shift-CoM wrapper: re-centre every slot on the centre of mass of slot `centreSlot` (the first
 * slot of the inner coupling's conditioning half), apply `inner`, then re-centre on the centre of
 * mass of x (slot 0). On the space where x has zero CoM this is a bijection with unit Jacobian, and
 * its inverse has the same form with the inner inverse.
 */
class ShiftCentreOfMassImpl : public BijectorImpl {
public:
    ShiftCentreOfMassImpl(int64_t centreSlot, Bijector inner);
    BijectorOutput forward(const torch::Tensor& z) override { return apply(z, false); }
    BijectorOutput inverse(const torch::Tensor& z) override { return apply(z, true); }
    /** The wrapped coupling. */
    const Bijector& innerBijector() const { return inner; }

private:
    BijectorOutput apply(const torch::Tensor& z, bool inverse);
    int64_t centreSlot;
    Bijector inner{nullptr};
};
TORCH_MODULE(ShiftCentreOfMass);

/** Subtract, from every slot, the mean over particles of slot `slot`. */
torch::Tensor centreOn(const torch::Tensor& z, int64_t slot);

}  // namespace OpenMMBG
