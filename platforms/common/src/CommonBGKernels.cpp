#include "CommonBGKernels.h"

#include "openmmbg/io/TensorArchive.h"

#include "openmm/OpenMMException.h"
#include "openmm/internal/ContextImpl.h"

#include <torch/torch.h>

using namespace OpenMM;

namespace OpenMMBG {

namespace {

// The rows of `all` (one per System particle) that `particles` names, as float64 [n, 3] on the CPU.
torch::Tensor gatherRows(const std::vector<Vec3>& all, const std::vector<int>& particles) {
    std::vector<double> rows;
    rows.reserve(3 * particles.size());
    for (int p : particles)
        for (int d = 0; d < 3; d++)
            rows.push_back(all[p][d]);
    return torch::tensor(rows, torch::kFloat64).view({int64_t(particles.size()), 3});
}

// Writes rows [n, 3] into the entries of `all` that `particles` names.
void scatterRows(const torch::Tensor& rows, const std::vector<int>& particles, std::vector<Vec3>& all) {
    const std::vector<double> values = toHostDoubles(rows);
    for (size_t i = 0; i < particles.size(); i++)
        all[particles[i]] = Vec3(values[3 * i], values[3 * i + 1], values[3 * i + 2]);
}

}  // namespace

void CommonMoveModelledParticlesKernel::initialize(const System&, const std::vector<int>& selected) {
    particles = selected;
}

torch::Tensor CommonMoveModelledParticlesKernel::getPositions(ContextImpl& context) {
    context.getPositions(hostPositions);
    return gatherRows(hostPositions, particles);
}

void CommonMoveModelledParticlesKernel::setPositions(ContextImpl& context, const torch::Tensor& positions) {
    std::vector<Vec3> all = hostPositions;
    scatterRows(positions, particles, all);
    context.setPositions(all);
}

torch::Tensor CommonMoveModelledParticlesKernel::getVelocities(ContextImpl& context) {
    std::vector<Vec3> all;
    context.getVelocities(all);
    return gatherRows(all, particles);
}

void CommonMoveModelledParticlesKernel::setVelocities(ContextImpl& context, const torch::Tensor& velocities) {
    std::vector<Vec3> all;
    context.getVelocities(all);
    scatterRows(velocities, particles, all);
    context.setVelocities(all);
}

KernelImpl* CommonBGKernelFactory::createKernelImpl(std::string name, const Platform& platform, ContextImpl&) const {
    if (name == MoveModelledParticlesKernel::Name())
        return new CommonMoveModelledParticlesKernel(name, platform);
    throw OpenMMException("CommonBGKernelFactory: no kernel named '" + name + "'");
}

}  // namespace OpenMMBG
