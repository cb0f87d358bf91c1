// openmmbg: the command-line tool (docs/cli.md).
//
//   openmmbg info     --config JSON | --model FILE
//   openmmbg export   --checkpoint FILE --output FILE
//   openmmbg train    --system NAME | --data FILE  --output FILE [options]            (train.cpp)
//   openmmbg train    --objective fab|reverse-kl --system NAME | --openmm-system FILE --output FILE [options]
//                                                                                      (train_energy.cpp)
//   openmmbg evaluate --model FILE --system NAME | --test-data FILE [options]
//   openmmbg remd     --system FILE --state FILE --temperatures LIST --exchanges N --output DIR [options]
//
// Options are declared with CLI11, each once with its type, range and help. The built-in systems
// (DW4, LJ13, LJ55) come from catalog/builtin-systems.json (catalog.h).
//
// Errors print one line "openmmbg: error: ..." and exit with status 1, or 2 for usage errors (CLI11's
// parse errors and UsageError). --help prints help to stdout; no arguments print it to stderr, status 2.
#include "commands.h"
#include "common.h"

#include "openmmbg/Threads.h"

#include <iostream>
#include <string>
#include <vector>

using namespace OpenMMBG::Cli;

int main(int argc, char** argv) {
    OpenMMBG::applyThreadPolicy();  // one LibTorch thread unless OPENMMBG_NUM_THREADS / OMP_NUM_THREADS say more
    CLI::App app("openmmbg: Boltzmann generators for OpenMM. Inspect, train and evaluate augmented coupling flows, "
                 "and run replica exchange.",
                 "openmmbg");
    configureApp(app);  // before the subcommands, which inherit its settings
    app.require_subcommand(1);
    app.allow_extras();  // unmatched arguments are reported below, by name
    std::vector<Command> commands = {addInfoCommand(app), addExportCommand(app), addTrainCommand(app),
                                     addEvaluateCommand(app), addRemdCommand(app, argv[0])};
    for (const Command& command : commands)
        command.app->allow_extras();
    app.footer("Run 'openmmbg <command> --help' for a command's options (docs/cli.md). Results (JSON) go to stdout, "
               "progress and errors to stderr.\nExit status: 0 success, 1 an error while running, 2 a usage error.\n"
               "Built-in systems: " + catalogPath() + " (override with $OPENMMBG_CATALOG).");

    const std::string first = argc > 1 ? argv[1] : "";
    auto findCommand = [&](const std::string& name) -> const Command* {
        for (const Command& command : commands)
            if (command.app->get_name() == name)
                return &command;
        return nullptr;
    };
    if (argc < 2) {
        std::cerr << app.help();
        return 2;
    }
    // Where a usage error points to for help.
    const std::string helpHint = findCommand(first) ? "openmmbg " + first + " --help" : "openmmbg --help";
    try {
        if (first == "help") {  // `openmmbg help [command]`
            const Command* command = argc > 2 ? findCommand(argv[2]) : nullptr;
            if (argc > 2 && command == nullptr)
                throw UsageError("unknown command '" + std::string(argv[2]) + "'");
            std::cout << (command ? command->app->help("openmmbg") : app.help());
            return 0;
        }
        if (first.rfind("-", 0) != 0 && findCommand(first) == nullptr)
            throw UsageError("unknown command '" + first + "'");
        try {
            app.parse(argc, argv);
        } catch (const CLI::CallForHelp&) {
            std::cout << app.help();  // the help of the subcommand given, if any
            return 0;
        } catch (const CLI::CallForAllHelp&) {
            std::cout << app.help("", CLI::AppFormatMode::All);
            return 0;
        }
        // Arguments CLI11 did not match (allow_extras, so the message can name the first of them).
        for (const std::string& extra : app.remaining(true))
            if (extra.rfind("-", 0) == 0 && extra.size() > 1)
                throw UsageError("unknown option " + extra.substr(0, extra.find('=')));
        if (!app.remaining(true).empty())
            throw UsageError("unexpected argument '" + app.remaining(true).front() + "'");
        for (const Command& command : commands)
            if (command.app->parsed())
                return command.run();
        throw UsageError("no command given");
    } catch (const CLI::ParseError& e) {
        std::cerr << "openmmbg: error: " << e.what() << " (see " << helpHint << ")" << std::endl;
        return 2;
    } catch (const UsageError& e) {
        std::cerr << "openmmbg: error: " << e.what() << " (see " << helpHint << ")" << std::endl;
        return 2;
    } catch (const std::exception& e) {
        std::string message = e.what();
        // LibTorch errors carry a C++ backtrace after the first line: keep the message to one line.
        message = message.substr(0, message.find('\n'));
        std::cerr << "openmmbg: error: " << message << std::endl;
        return 1;
    }
}
