// The model interface (Model.h): family dispatch, the "eacf" family behind it, and model files of
// any family, including files written before configurations named their family.
#include "FlowTestUtils.h"
#include "openmmbg/eacf/AugmentedCouplingFlowModel.h"
#include "openmmbg/Model.h"
#include "openmmbg/io/ModelFile.h"
#include "openmmbg/io/TensorArchive.h"

#include <nlohmann/json.hpp>

using namespace OpenMMBG;
using namespace OpenMMBG::testing;

namespace {

const char* SMALL = R"({"num_particles": 3, "dim": 3, "projection": "vector", "num_layers": 1, "dtype": "float64",
                        "egnn_blocks": 1, "egnn_mlp_units": [8, 8], "egnn_hidden_features": 8,
                        "egnn_output_features": 8, "head_mlp_units": [8, 8], "identity_init": false})";

}  // namespace

TEST(Model, FamilyDefaultsToEacfAndIsNamedInTheConfiguration) {
    EXPECT_EQ(modelFamilyOf(SMALL), "eacf");
    std::shared_ptr<Model> model = makeModel(SMALL);
    EXPECT_EQ(model->family(), "eacf");
    EXPECT_EQ(nlohmann::json::parse(model->configJson()).at("family"), "eacf");
    nlohmann::json explicitFamily = nlohmann::json::parse(SMALL);
    explicitFamily["family"] = "eacf";
    EXPECT_EQ(makeModel(explicitFamily.dump())->family(), "eacf");
    EXPECT_EQ(model->numParticles(), 3);
    EXPECT_EQ(model->dim(), 3);
    EXPECT_TRUE(model->hasAuxiliary());
}

TEST(Model, UnknownOrMistypedFamiliesAreRefusedByName) {
    nlohmann::json config = nlohmann::json::parse(SMALL);
    config["family"] = "glow";
    try {
        makeModel(config.dump());
        FAIL() << "an unknown family was accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("unknown family \"glow\""), std::string::npos) << e.what();
    }
    config["family"] = 3;
    EXPECT_THROW(makeModel(config.dump()), std::invalid_argument);
    EXPECT_THROW(makeModel("[1, 2]"), std::invalid_argument);
}

TEST(Model, TheEacfFamilyIsTheFlowBehindTheInterface) {
    std::shared_ptr<Model> model = makeModel(SMALL);
    AugmentedCouplingFlow& flow = augmentedCouplingFlowOf(*model, "test");
    torch::NoGradGuard noGrad;
    torch::Generator g1 = generator(3), g2 = generator(3);
    ModelSample s = model->sample(5, g1);
    FlowSample f = flow->sample(5, g2);
    EXPECT_TRUE(torch::equal(s.x, f.x));
    EXPECT_TRUE(torch::equal(s.aux, f.a));
    EXPECT_TRUE(torch::equal(s.logQ, f.logQ));
    EXPECT_EQ(s.aux.sizes(), (std::vector<int64_t>{5, 3, 1, 3}));
    EXPECT_TRUE(torch::allclose(model->logProb(s.x, s.aux), s.logQ, 1e-10, 1e-10));
    EXPECT_TRUE(torch::equal(model->logAuxiliaryTarget(s.x, s.aux), flow->logAugmentedTarget(s.x, s.aux)));
    torch::Generator g3 = generator(4), g4 = generator(4);
    EXPECT_TRUE(torch::equal(model->marginalLogProb(s.x, 7, g3), flow->marginalLogProb(s.x, 7, g4)));
    EXPECT_EQ(model->namedTensors().size(), flow->parameters().size());
    EXPECT_EQ(&model->module(), flow.get()) << "the interface and the flow must share one module";
}

TEST(ModelFile, FilesWithoutAFamilyAreEacfAndLoadUnchanged) {
    std::shared_ptr<Model> model = makeModel(SMALL);
    const std::string bytes = serializeModel(*model);
    // As an older build wrote it: the same file with no "family" in its configuration.
    TensorArchive archive = deserializeArchive(bytes, "test", "model file");
    nlohmann::json config = nlohmann::json::parse(archive.metadata.at("config"));
    config.erase("family");
    archive.metadata["config"] = config.dump();
    std::shared_ptr<Model> old = deserializeModel(serializeArchive(archive), "old.bgm");
    EXPECT_EQ(old->family(), "eacf");
    torch::NoGradGuard noGrad;
    torch::Generator g = generator(1);
    ModelSample s = model->sample(4, g);
    EXPECT_TRUE(torch::equal(old->logProb(s.x, s.aux), model->logProb(s.x, s.aux)));
    // And a round trip keeps every tensor.
    std::shared_ptr<Model> again = deserializeModel(bytes);
    EXPECT_TRUE(torch::equal(again->logProb(s.x, s.aux), model->logProb(s.x, s.aux)));
}
