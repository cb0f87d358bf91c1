// openmmbg export: the model a training checkpoint holds, as a .bgm model.
#include "commands.h"
#include "common.h"

#include "openmmbg/io/ModelFile.h"
#include "openmmbg/training/Training.h"

#include <iostream>
#include <memory>

namespace OpenMMBG::Cli {

namespace {

struct ExportArgs {
    std::string checkpoint, output;
};

int runExport(const ExportArgs& args) {
    bool fromBest = false;
    std::string progress;
    std::shared_ptr<Model> model = modelFromCheckpoint(args.checkpoint, &fromBest, &progress);
    json meta = json::parse(progress);
    meta["checkpoint"] = args.checkpoint;
    meta["parameters"] = fromBest ? "best validation NLL" : "current";
    saveModel(*model, args.output, {{"training", meta.dump()}});
    std::cerr << "openmmbg export: wrote " << args.output << " (" << meta["parameters"].get<std::string>()
              << " parameters; run at " << progress << ")" << std::endl;
    return 0;
}

}  // namespace

Command addExportCommand(CLI::App& parent) {
    auto args = std::make_shared<ExportArgs>();
    CLI::App* app = parent.add_subcommand(
        "export", "write the model a training checkpoint holds as a .bgm model (the best validation NLL so far, else "
                  "the current parameters), e.g. to look at a run that is still going");
    addOption(app, "--checkpoint", args->checkpoint, "a training checkpoint (of train, any objective)")
        ->type_name("FILE")
        ->required();
    addOption(app, "--output", args->output, "the .bgm model to write")->type_name("FILE")->required();
    return {app, [args] { return runExport(*args); }};
}

}  // namespace OpenMMBG::Cli
