#pragma once
// openmmbg train: the options both objectives share (train.cpp) and the energy-based objectives'
// own options (train_energy.cpp).
#include "common.h"

#include "openmmbg/training/EnergyTraining.h"

#include <string>
#include <vector>

namespace OpenMMBG::Cli {

/** Options of `train` for every objective. */
struct TrainArgs {
    std::string objective = "ml";
    std::string system;
    std::string output;
    std::string family = "eacf";
    std::string projection = "spherical";
    std::string config;
    int batchSize = 32;           ///< maximum likelihood's default; energy-based: per target
    double timeLimit = 0;
    long long seed = 0;
    std::string metrics;
    std::string checkpoint;       ///< default OUTPUT.checkpoint
    int checkpointEvery = 1;      ///< maximum likelihood's default (epochs); energy-based: 100 iterations
    CLI::Option *systemOption = nullptr, *familyOption = nullptr, *projectionOption = nullptr, *configOption = nullptr,
                *batchSizeOption = nullptr, *timeLimitOption = nullptr, *seedOption = nullptr,
                *checkpointOption = nullptr, *checkpointEveryOption = nullptr;
};

/** Options of `train --objective fab|reverse-kl` only. */
struct EnergyTrainArgs {
    std::string openmmSystem;
    double temperature = 300;
    std::string platform = "Reference";
    std::string initModel;
    std::string options;          ///< JSON object of further EnergyTrainingOptions
    int iterations = 0, numIntermediate = 0, leapfrogSteps = 0, updatesPerIteration = 0, bufferMaxBatches = 0,
        bufferMinBatches = 0, reportEvery = 0, evaluateEvery = 0, numEssSamples = 0;
    double alpha = 0;
    CLI::Option *openmmSystemOption = nullptr, *temperatureOption = nullptr, *platformOption = nullptr,
                *optionsOption = nullptr, *iterationsOption = nullptr, *numIntermediateOption = nullptr;
    /** The flags that set an EnergyTrainingOptions field as they are, where given. */
    FlagOverrides<EnergyTrainingOptions> flags;
    /** Every option above, to refuse them with --objective ml. */
    std::vector<CLI::Option*> all;
};

/**
 * Adds the options of the energy-based objectives to the `train` subcommand, whose options for
 * every objective (`args`) are added already.
 */
void addEnergyTrainingOptions(CLI::App* train, const TrainArgs& args, EnergyTrainArgs& energy);

/** Trains by FAB or reverse KL (args.objective) against a built-in target or an OpenMM System. */
int runEnergyTraining(const TrainArgs& args, const EnergyTrainArgs& energy);

}  // namespace OpenMMBG::Cli
