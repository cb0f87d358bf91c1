#pragma once
// The catalog of built-in systems (catalog/builtin-systems.json): particle counts, data splits and
// the paper's default training hyper-parameters of DW4, LJ13 and LJ55, read at run time.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace OpenMMBG::Cli {

/** Rows [begin, end) of an .npy file of the data folder; end -1: to the end of the file. */
struct DataSplit {
    std::string file;
    int64_t begin = 0;
    int64_t end = -1;
};

struct BuiltinSystem {
    std::string name;
    std::string description;
    int numParticles = 0;
    int dim = 0;
    /** The data set; absent for a target without data (energy-based training only). */
    struct Data {
        std::string folder;       ///< subfolder of the data folder, e.g. "efm"
        DataSplit train;          ///< training rows: [train.begin, train.begin + num_train)
        DataSplit validation;
        DataSplit test;
    };
    std::optional<Data> data;
    /** Maximum-likelihood defaults; absent where there is no data set. */
    struct MaximumLikelihood {
        int epochs = 0;
        int epochsProjectionNone = 0;  ///< the Non-E-ACF baseline (projection "none") trains longer
        int64_t numTrain = 0;
    };
    std::optional<MaximumLikelihood> maximumLikelihood;
    /** Energy-based training (FAB, reverse KL) defaults. */
    struct EnergyTraining {
        std::optional<int> iterations;  ///< absent: no default, --iterations is required
        int batchSize = 0;
        int numIntermediate = 0;
    };
    EnergyTraining energyTraining;
};

class Catalog {
public:
    /** Reads and checks the catalog file; throws std::runtime_error naming the file and the problem. */
    explicit Catalog(const std::string& path);
    const std::string& path() const { return path_; }
    /** The system of this name; nullptr if there is none. */
    const BuiltinSystem* find(const std::string& name) const;
    std::vector<std::string> names() const;
    /** "dw4, lj13 or lj55" (all systems, or those passing `keep`). */
    std::string describeNames(bool (*keep)(const BuiltinSystem&) = nullptr) const;

private:
    std::string path_;
    std::map<std::string, BuiltinSystem> systems_;
};

/** The catalog's path: $OPENMMBG_CATALOG, else the one compiled in (OPENMMBG_CATALOG). */
std::string catalogPath();

/** The catalog, read on first use; throws std::runtime_error if it is missing or malformed. */
const Catalog& builtinCatalog();

}  // namespace OpenMMBG::Cli
