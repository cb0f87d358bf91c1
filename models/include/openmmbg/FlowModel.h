#pragma once
/**
 * A trained or untrained flow behind a small, LibTorch-free interface: what the Python bindings,
 * the command-line tool and the OpenMM plugin use. Arrays are flat, row-major float64:
 * x is [n, N, D], a is [n, N, A, D], log-densities are [n]. Lengths are in the model's length
 * unit (config "length_unit", nm by default).
 */
#include <memory>
#include <string>
#include <vector>

namespace OpenMMBG {

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
    int getNumParticles() const;
    int getDim() const;
    int getNumAug() const;
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
    /** The augmented target log pi(a|x) [n]. */
    std::vector<double> logAugmentedTarget(const std::vector<double>& x, const std::vector<double>& a) const;

    struct Impl;
    /** The implementation (LibTorch types); for library code only. */
    Impl& impl() const { return *impl_; }

private:
    FlowModel() = default;
    std::shared_ptr<Impl> impl_;
};

}  // namespace OpenMMBG
