// openmmbg info: a model's full configuration and parameter count as JSON.
#include "commands.h"
#include "common.h"

#include "openmmbg/Model.h"
#include "openmmbg/io/ModelFile.h"

#include <iostream>
#include <memory>

namespace OpenMMBG::Cli {

namespace {

struct InfoArgs {
    std::string config, model;
};

int runInfo(const InfoArgs& args) {
    if (args.model.empty() == args.config.empty())
        throw UsageError("give exactly one of --config and --model");
    std::shared_ptr<Model> model = args.model.empty() ? makeModel(args.config) : loadModel(args.model);
    int64_t count = 0;
    for (auto& p : model->module().parameters())
        count += p.numel();
    json out = {{"config", json::parse(model->configJson())}, {"num_parameters", count}};
    std::cout << out.dump(2) << std::endl;
    return 0;
}

}  // namespace

Command addInfoCommand(CLI::App& parent) {
    auto args = std::make_shared<InfoArgs>();
    CLI::App* app = parent.add_subcommand(
        "info", "print a model's full configuration (every key, derived defaults filled in) and its number of "
                "trainable parameters, as JSON");
    addOption(app, "--config", args->config, "a flow configuration (JSON object, docs/flow-config.md)")->type_name("JSON");
    addOption(app, "--model", args->model, "a saved model (.bgm)")->type_name("FILE");
    app->footer("Give exactly one of --config and --model.");
    return {app, [args] { return runInfo(*args); }};
}

}  // namespace OpenMMBG::Cli
