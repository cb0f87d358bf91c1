#pragma once
/** The LibTorch side of FlowModel (not part of the torch-free public interface). */
#include "openmmbg/AugmentedCouplingFlow.h"
#include "openmmbg/FlowModel.h"

namespace OpenMMBG {

struct FlowModel::Impl {
    explicit Impl(AugmentedCouplingFlow f) : flow(std::move(f)) {}
    AugmentedCouplingFlow flow;
};

/**
 * The values of a tensor (any device and dtype) as float64 on the host, in row-major order: the
 * form in which the torch-free interfaces (FlowModel, the plugin's kernels) hand results on.
 */
std::vector<double> toHostDoubles(const torch::Tensor& t);

}  // namespace OpenMMBG
