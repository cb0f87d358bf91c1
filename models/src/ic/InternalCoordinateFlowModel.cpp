#include "openmmbg/ic/InternalCoordinateFlowModel.h"

#include "openmmbg/distributions/Distributions.h"

#include <cmath>
#include <limits>
#include <stdexcept>

namespace OpenMMBG {

namespace {

// log of the Haar volume of SO(3), 8 pi^2: the density of a uniform orientation.
const double LOG_ROTATION_VOLUME = std::log(8.0 * M_PI * M_PI);

/** Rows [B] whose internal coordinates are those of a configuration: bonds > 0, angles in (0, pi), all finite. */
torch::Tensor validRows(const InternalCoordinates& ic) {
    return (ic.bonds > 0).all(1) & torch::isfinite(ic.bonds).all(1) & (ic.angles > 0).all(1) & (ic.angles < M_PI).all(1) &
           torch::isfinite(ic.dihedrals).all(1);
}

/**
 * `ic` with the rows outside the valid domain replaced by a valid point (unit bonds, right angles,
 * zero dihedrals), so that nothing computed from them is NaN: torch::where would pass a NaN from
 * the branch it does not take into the gradient.
 */
InternalCoordinates withValidRows(const InternalCoordinates& ic, const torch::Tensor& valid) {
    const torch::Tensor keep = valid.unsqueeze(1);
    return {torch::where(keep, ic.bonds, torch::ones_like(ic.bonds)),
            torch::where(keep, ic.angles, torch::full_like(ic.angles, M_PI / 2)),
            torch::where(keep, ic.dihedrals, torch::zeros_like(ic.dihedrals))};
}

}  // namespace

torch::Tensor InternalCoordinateFlowModel::logProbOf(const InternalCoordinates& ic, const torch::Tensor& logQz) const {
    const torch::Tensor valid = validRows(ic);
    const torch::Tensor logJ = flow_->transform().logVolumeElement(withValidRows(ic, valid));
    return torch::where(valid, logQz - logJ - LOG_ROTATION_VOLUME,
                        torch::full_like(logQz, -std::numeric_limits<double>::infinity()));
}

torch::Tensor InternalCoordinateFlowModel::sampleBase(int64_t n, torch::Generator& generator) {
    const torch::Tensor base = flow_->sampleBase(n, generator);
    const torch::Tensor rotation = randomRotations(n, 3, generator, options().device(generator.device()));
    return torch::cat({base, rotation.reshape({n, 9}).to(options().device())}, 1);
}

std::pair<ModelSample, torch::Tensor> InternalCoordinateFlowModel::baseToSample(const torch::Tensor& base) {
    const int64_t D = flow_->numFeatures();
    if (base.dim() != 2 || base.size(1) != D + 9)
        throw std::invalid_argument("baseToSample: base draws must be [n, " + std::to_string(D + 9) + "] (got " +
                                    c10::str(base.sizes()) + ")");
    const int64_t n = base.size(0);
    auto [ic, logQz] = flow_->fromBase(base.narrow(1, 0, D));
    const torch::Tensor rotation = base.narrow(1, D, 9).reshape({n, 3, 3});
    torch::Tensor x = torch::matmul(flow_->transform().toCanonical(ic), rotation.transpose(1, 2));
    x = x - x.mean(1, true);
    return {ModelSample{x, torch::zeros({n, 0}, options()), logProbOf(ic, logQz)}, torch::zeros({n}, options())};
}

ModelSample InternalCoordinateFlowModel::sample(int64_t n, torch::Generator& generator) {
    return baseToSample(sampleBase(n, generator)).first;
}

ModelDensity InternalCoordinateFlowModel::logProbAndPenalty(const torch::Tensor& x, const torch::Tensor& aux) {
    torch::Tensor logQ = logProb(x, aux);
    return {logQ, torch::zeros_like(logQ)};
}

void InternalCoordinateFlowModel::initialiseFromData(const torch::Tensor& x) {
    if (!flow_->statisticsFitted())
        flow_->fitStatistics(x);
}

torch::Tensor InternalCoordinateFlowModel::logProb(const torch::Tensor& x, const torch::Tensor& aux) {
    if (aux.defined() && (aux.dim() != 2 || aux.size(0) != x.size(0) || aux.size(1) != 0))
        throw std::invalid_argument("logProb: the family \"ic\" has no auxiliary variables; aux must be empty [" +
                                    std::to_string(x.size(0)) + ", 0] (got " + c10::str(aux.sizes()) + ")");
    const InternalCoordinates ic = flow_->transform().toInternal(x.to(options()));
    // The flow sees valid rows only; the others get -inf from logProbOf.
    return logProbOf(ic, flow_->logProb(withValidRows(ic, validRows(ic))));
}

torch::Tensor InternalCoordinateFlowModel::sampleAuxiliary(const torch::Tensor& x, torch::Generator&) {
    return torch::zeros({x.size(0), 0}, options());
}

torch::Tensor InternalCoordinateFlowModel::logAuxiliaryTarget(const torch::Tensor& x, const torch::Tensor&) {
    return torch::zeros({x.size(0)}, options());
}

torch::Tensor InternalCoordinateFlowModel::marginalLogProb(const torch::Tensor& x, int64_t, torch::Generator&) {
    return logProb(x, torch::Tensor());
}

std::vector<std::pair<std::string, torch::Tensor>> InternalCoordinateFlowModel::namedTensors() {
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    for (auto& item : flow_->named_parameters())
        tensors.emplace_back(item.key(), item.value());
    for (auto& item : flow_->named_buffers())
        tensors.emplace_back(item.key(), item.value());
    return tensors;
}

}  // namespace OpenMMBG
