#pragma once
// The subcommands of the openmmbg tool, one source file each.
#include <CLI/CLI.hpp>

#include <functional>

namespace OpenMMBG::Cli {

/** A subcommand: its options, and what runs it once the command line is parsed (returns the exit status). */
struct Command {
    CLI::App* app = nullptr;
    std::function<int()> run;
};

Command addInfoCommand(CLI::App& parent);                         // info.cpp
Command addExportCommand(CLI::App& parent);                       // export.cpp
Command addTrainCommand(CLI::App& parent);                        // train.cpp (+ train_energy.cpp)
Command addEvaluateCommand(CLI::App& parent);                     // evaluate.cpp
Command addRemdCommand(CLI::App& parent, const char* argv0);      // remd.cpp

}  // namespace OpenMMBG::Cli
