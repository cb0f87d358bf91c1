#pragma once
/** The LibTorch side of FlowModel (not part of the torch-free public interface). */
#include "openmmbg/AugmentedCouplingFlow.h"
#include "openmmbg/FlowModel.h"

namespace OpenMMBG {

struct FlowModel::Impl {
    explicit Impl(AugmentedCouplingFlow f) : flow(std::move(f)) {}
    AugmentedCouplingFlow flow;
};

}  // namespace OpenMMBG
