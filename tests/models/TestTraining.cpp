// Maximum-likelihood training: the warmup-cosine schedule, the gradient guard (skip, clip, never
// skip while the window fills), per-sample masking, and a short run that must lower the NLL.
#include "FlowTestUtils.h"
#include "openmmbg/eacf/AugmentedCouplingFlowModel.h"
#include "openmmbg/evaluation/Evaluation.h"
#include "openmmbg/io/ModelFile.h"
#include "openmmbg/io/TensorArchive.h"
#include "openmmbg/training/Training.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>

using namespace OpenMMBG;
using namespace OpenMMBG::testing;

TEST(WarmupCosineSchedule, EndpointsAndShape) {
    WarmupCosineSchedule s{2e-5, 2e-4, 2e-5, 30, 100};
    EXPECT_DOUBLE_EQ(s.at(0), 2e-5);
    EXPECT_DOUBLE_EQ(s.at(15), 2e-5 + 0.5 * (2e-4 - 2e-5));
    EXPECT_DOUBLE_EQ(s.at(30), 2e-4);
    EXPECT_NEAR(s.at(65), 0.5 * (2e-4 + 2e-5), 1e-15);
    EXPECT_NEAR(s.at(100), 2e-5, 1e-15);
    EXPECT_NEAR(s.at(500), 2e-5, 1e-15);
    for (int i = 30; i < 100; i++)
        EXPECT_GE(s.at(i), s.at(i + 1));
}

namespace {

std::vector<torch::Tensor> paramWithGrad(double norm) {
    torch::Tensor p = torch::zeros({4}, torch::kFloat64).requires_grad_(true);
    p.mutable_grad() = torch::full({4}, norm / 2.0, torch::kFloat64);  // |g| = norm
    return {p};
}

}  // namespace

TEST(GradientGuard, SkipsAndClipsByTheMedianOnceTheWindowIsFull) {
    GradientGuard guard(5, 10.0, 2.0);
    // While the window fills, even a huge norm is applied unclipped.
    for (double n : {1.0, 1.0, 100.0, 1.0}) {
        auto p = paramWithGrad(n);
        EXPECT_TRUE(guard.apply(p));
        EXPECT_NEAR(p[0].grad().norm().item<double>(), n, 1e-12);
    }
    auto p = paramWithGrad(1.0);
    EXPECT_TRUE(guard.apply(p));  // window now full: {1, 1, 100, 1, 1}, median 1
    EXPECT_DOUBLE_EQ(guard.median(), 1.0);
    auto big = paramWithGrad(10.5);
    EXPECT_FALSE(guard.apply(big)) << "a norm above 10x the median must be skipped";
    auto clip = paramWithGrad(5.0);
    EXPECT_TRUE(guard.apply(clip));
    EXPECT_NEAR(clip[0].grad().norm().item<double>(), 2.0, 1e-12) << "clipped to 2x the median";
    auto nan = paramWithGrad(NAN);
    EXPECT_FALSE(guard.apply(nan)) << "non-finite norms are skipped";
    EXPECT_EQ(guard.norms().size(), 5u);
}

TEST(MaximumLikelihoodTrainer, ShortRunLowersTheValidationNll) {
    // Data: a CoM-free Gaussian with a small scale, far from the unit base, so a few epochs of
    // training must lower the NLL substantially.
    FlowConfig c = smallConfig(2, "vector", 1, 3);
    c.dtype = "float32";
    c.identityInit = true;
    auto gen = generator(1);
    torch::Tensor data = 0.3 * torch::randn({512, 3, 2}, gen, torch::kFloat64);
    torch::Tensor valid = 0.3 * torch::randn({256, 3, 2}, gen, torch::kFloat64);
    AugmentedCouplingFlow flow(c);
    AugmentedCouplingFlowModel model(flow);
    torch::Generator g0 = generator(2);
    const double before = marginalNll(model, valid - valid.mean(1, true), 4, g0).first;
    MaximumLikelihoodOptions o;
    o.epochs = 6;
    o.batchSize = 32;
    o.validateEvery = 3;
    o.validationAugSamples = 4;
    o.peakLearningRate = 3e-3;
    o.initialLearningRate = 3e-4;
    o.finalLearningRate = 3e-4;
    MaximumLikelihoodTrainer trainer(asModel(flow), data, valid, o);
    std::vector<TrainingReport> reports = trainer.run();
    ASSERT_EQ(reports.size(), 6u);
    EXPECT_TRUE(std::isnan(reports[0].validationNll));
    EXPECT_FALSE(std::isnan(reports[2].validationNll));
    torch::Generator g1 = generator(2);
    const double after = marginalNll(model, valid - valid.mean(1, true), 4, g1).first;
    // The 2-D data at scale 0.3 has 4 effective dims: the base puts ~1.2 nats per dim too much; the
    // trained flow must recover at least 1 nat in total (the ideal gain is about 4.8 nats).
    EXPECT_LT(after, before - 1.0) << "before " << before << ", after " << after;
    // Model selection restored the best validated parameters.
    EXPECT_NEAR(after, reports.back().bestValidationNll, 0.2);
}

TEST(MaximumLikelihoodTrainer, NonFiniteSamplesAreMaskedOut) {
    FlowConfig c = smallConfig(2, "spherical", 1, 3);
    AugmentedCouplingFlow flow(c);
    auto gen = generator(3);
    torch::Tensor data = torch::randn({8, 3, 2}, gen, torch::kFloat64);
    // Finite data whose log q is below minLogQ (non-finite data are refused before training).
    data[3][0][0] = 1e4;
    MaximumLikelihoodOptions o;
    o.epochs = 1;
    o.batchSize = 8;
    MaximumLikelihoodTrainer trainer(asModel(flow), data, torch::Tensor(), o);
    auto before = flow->parameters()[0].detach().clone();
    std::vector<TrainingReport> reports = trainer.run();
    EXPECT_TRUE(std::isfinite(reports[0].loss));
    EXPECT_EQ(reports[0].skippedSteps, 0);
    for (auto& p : flow->parameters())
        EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
    EXPECT_FALSE(torch::equal(before, flow->parameters()[0].detach())) << "the step was not applied";
}

TEST(MaximumLikelihoodTrainer, NonFiniteDataAreRefusedBeforeTraining) {
    FlowConfig c = smallConfig(2, "vector", 1, 3);
    AugmentedCouplingFlow flow(c);
    torch::Tensor data = torch::zeros({8, 3, 2}, torch::kFloat64);
    data[5][1][1] = INFINITY;
    MaximumLikelihoodOptions o;
    try {
        MaximumLikelihoodTrainer(asModel(flow), data, torch::Tensor(), o);
        ADD_FAILURE() << "non-finite training data accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("1 of 8 configurations hold non-finite coordinates"), std::string::npos);
    }
    EXPECT_THROW(MaximumLikelihoodTrainer(asModel(flow), torch::zeros({8, 3, 2}, torch::kFloat64), data, o),
                 std::invalid_argument);
}

TEST(RandomRotations, ProperOrthogonalAndUnbiased) {
    auto gen = generator(4);
    for (int64_t dim : {2, 3}) {
        torch::Tensor R = randomRotations(4000, dim, gen, torch::kFloat64);
        torch::Tensor eye = torch::eye(dim, torch::kFloat64);
        EXPECT_LT((torch::matmul(R, R.transpose(1, 2)) - eye).abs().max().item<double>(), 1e-12);
        EXPECT_LT((torch::linalg_det(R) - 1).abs().max().item<double>(), 1e-12);
        // Haar: E[R] = 0; each entry has variance 1/D, so the mean's standard error is ~0.009.
        EXPECT_LT(R.mean(0).abs().max().item<double>(), 0.05) << "dim " << dim;
    }
}

namespace {

MaximumLikelihoodOptions resumeOptions(const std::string& checkpoint, int validateEvery = 1) {
    MaximumLikelihoodOptions o;
    o.epochs = 4;
    o.batchSize = 16;
    o.validateEvery = validateEvery;
    o.validationAugSamples = 2;
    o.checkpointPath = checkpoint;
    return o;
}

}  // namespace

TEST(MaximumLikelihoodTrainer, ResumeFromACheckpointIsExact) {
    FlowConfig c = smallConfig(2, "spherical", 1, 3);
    auto gen = generator(5);
    torch::Tensor data = torch::randn({64, 3, 2}, gen, torch::kFloat64);
    torch::Tensor valid = torch::randn({16, 3, 2}, gen, torch::kFloat64);
    const std::string dir = (std::filesystem::temp_directory_path() / "openmmbg_resume").string();
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);

    AugmentedCouplingFlow straight(c);
    auto reference = MaximumLikelihoodTrainer(asModel(straight), data, valid, resumeOptions("")).run();

    // "Killed" after epoch 2, then resumed by a fresh process-like trainer and flow.
    MaximumLikelihoodOptions first = resumeOptions(dir + "/run.checkpoint");
    first.stopAfterEpoch = 2;
    AugmentedCouplingFlow interrupted(c);
    auto partial = MaximumLikelihoodTrainer(asModel(interrupted), data, valid, first).run();
    ASSERT_EQ(partial.size(), 2u);
    AugmentedCouplingFlow resumed(c);
    std::vector<bool> restored;
    auto full = MaximumLikelihoodTrainer(asModel(resumed), data, valid, resumeOptions(dir + "/run.checkpoint"))
                    .run([&](const TrainingReport& r) { restored.push_back(r.resumed); });
    ASSERT_EQ(full.size(), 4u);
    EXPECT_EQ(restored, (std::vector<bool>{true, true, false, false}));
    for (size_t e = 0; e < 4; e++) {
        EXPECT_EQ(full[e].loss, reference[e].loss) << "epoch " << e + 1;
        EXPECT_EQ(full[e].validationNll, reference[e].validationNll) << "epoch " << e + 1;
    }
    auto p1 = straight->parameters(), p2 = resumed->parameters();
    for (size_t i = 0; i < p1.size(); i++)
        ASSERT_TRUE(torch::equal(p1[i], p2[i])) << "parameter " << i << " differs after resume";

    // A checkpoint from a different run is refused, not silently mixed in.
    MaximumLikelihoodOptions other = resumeOptions(dir + "/run.checkpoint");
    other.seed = 7;
    AugmentedCouplingFlow f(c);
    EXPECT_THROW(MaximumLikelihoodTrainer(asModel(f), data, valid, other).run(), std::runtime_error);
    std::filesystem::remove_all(dir);
}

TEST(MaximumLikelihoodTrainer, Version1CheckpointsAreRefusedWithAReasonAndStillExport) {
    // Checkpoints of the trainers before the one training loop (format 1) cannot be resumed: the
    // run is refused with a message saying why, and the model they hold can still be exported.
    FlowConfig c = smallConfig(2, "spherical", 1, 3);
    auto gen = generator(6);
    torch::Tensor data = torch::randn({48, 3, 2}, gen, torch::kFloat64);
    torch::Tensor valid = torch::randn({16, 3, 2}, gen, torch::kFloat64);
    const std::string path = (std::filesystem::temp_directory_path() / "openmmbg_version1.checkpoint").string();
    std::filesystem::remove(path);
    MaximumLikelihoodOptions first = resumeOptions(path);
    first.stopAfterEpoch = 2;
    AugmentedCouplingFlow interrupted(c);
    MaximumLikelihoodTrainer(asModel(interrupted), data, valid, first).run();
    // Rewrite the checkpoint as the earlier trainers wrote it: version 1, parameters as param/i,
    // a signature with the configuration, the epoch in the metadata.
    TensorArchive archive = deserializeArchive(readFileBytes(path), path, "checkpoint");
    TensorArchive old = newCheckpoint(nlohmann::json({{"config", nlohmann::json::parse(c.toJson())}}).dump());
    old.metadata["format_version"] = "1";
    old.metadata["epoch"] = archive.metadata.at("iteration");
    auto params = interrupted->parameters();
    for (size_t i = 0; i < params.size(); i++)
        old.tensors.emplace_back("param/" + std::to_string(i), archive.get("model/" + interrupted->named_parameters()[i].key(), path));
    writeFileAtomically(path, serializeArchive(old));
    AugmentedCouplingFlow resumed(c);
    try {
        MaximumLikelihoodTrainer(asModel(resumed), data, valid, resumeOptions(path)).run();
        FAIL() << "a version-1 checkpoint was resumed";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("checkpoint format 1"), std::string::npos) << e.what();
    }
    bool fromBest = true;
    std::string progress;
    std::shared_ptr<Model> exported = modelFromCheckpoint(path, &fromBest, &progress);
    EXPECT_FALSE(fromBest);
    EXPECT_EQ(nlohmann::json::parse(progress)["epoch"], 2);
    auto exportedParams = exported->module().named_parameters();
    for (auto& item : exportedParams)
        EXPECT_TRUE(torch::equal(item.value(), archive.get("model/" + item.key(), path))) << item.key();
    std::filesystem::remove(path);
}

TEST(ModelFromCheckpoint, HoldsTheConfigurationAndTheBestOrCurrentParameters) {
    FlowConfig c = smallConfig(2, "spherical", 1, 3);
    auto gen = generator(6);
    torch::Tensor data = torch::randn({32, 3, 2}, gen, torch::kFloat64);
    torch::Tensor valid = torch::randn({8, 3, 2}, gen, torch::kFloat64);
    const std::string dir = (std::filesystem::temp_directory_path() / "openmmbg_flow_from_checkpoint").string();
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    torch::Tensor x = torch::randn({5, 3, 2}, gen, torch::kFloat64);
    torch::Tensor a = torch::randn({5, 3, 1, 2}, gen, torch::kFloat64);
    // With validation, the trained flow ends with the best parameters: the checkpoint holds the same.
    for (bool validate : {true, false}) {
        MaximumLikelihoodOptions o = resumeOptions(dir + "/run" + std::to_string(validate) + ".checkpoint");
        o.epochs = 3;
        AugmentedCouplingFlow trained(c);
        MaximumLikelihoodTrainer(asModel(trained), data, validate ? valid : torch::Tensor(), o).run();
        bool fromBest = !validate;
        std::string progress;
        std::shared_ptr<Model> exported = modelFromCheckpoint(o.checkpointPath, &fromBest, &progress);
        EXPECT_EQ(fromBest, validate);
        EXPECT_EQ(exported->configJson(), c.toJson());
        EXPECT_EQ(nlohmann::json::parse(progress)["epoch"], 3);
        trained->eval();
        EXPECT_TRUE(torch::equal(exported->logProb(x, a), trained->logProb(x, a))) << "validate " << validate;
    }
    // A file that is not a checkpoint is refused with its name in the message.
    AugmentedCouplingFlow f(c);
    saveFlow(f, dir + "/model.bgm");
    try {
        modelFromCheckpoint(dir + "/model.bgm");
        FAIL() << "a model file was read as a checkpoint";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("model.bgm"), std::string::npos) << e.what();
    }
    std::filesystem::remove_all(dir);
}

TEST(MaximumLikelihoodTrainer, EarlyStoppingAfterPatienceValidationsWithoutImprovement) {
    // Identity flow and zero learning rate: every validation NLL is the same exact value (the
    // marginal estimator is exact for the identity flow), so nothing improves after epoch 1.
    FlowConfig c = smallConfig(2, "vector", 1, 3);
    c.identityInit = true;
    AugmentedCouplingFlow flow(c);
    auto gen = generator(9);
    MaximumLikelihoodOptions o;
    o.epochs = 10;
    o.batchSize = 8;
    o.validateEvery = 1;
    o.validationAugSamples = 2;
    o.patience = 2;
    o.initialLearningRate = o.peakLearningRate = o.finalLearningRate = 0.0;
    auto reports = MaximumLikelihoodTrainer(asModel(flow), torch::randn({16, 3, 2}, gen, torch::kFloat64),
                                            torch::randn({8, 3, 2}, gen, torch::kFloat64), o)
                       .run();
    // The NLLs agree to rounding (~1e-15), so the best may move in the first epochs; once two
    // validations in a row fail to improve, training stops, well before epoch 10.
    ASSERT_GE(reports.size(), 3u);
    ASSERT_LT(reports.size(), 10u);
    const size_t n = reports.size();
    EXPECT_NEAR(reports[0].validationNll, reports[n - 1].validationNll, 1e-12);
    for (size_t i = n - 2; i < n; i++)
        EXPECT_GE(reports[i].validationNll, reports[i].bestValidationNll) << "epoch " << i + 1 << " improved";
    EXPECT_EQ(reports[n - 3].bestValidationNll, reports[n - 1].bestValidationNll);
}

TEST(MaximumLikelihoodTrainer, ResumeIsExactWhenStoppedBetweenValidations) {
    // Stopped after epoch 1 with validations every 2 epochs: the stop must not add a validation
    // (it would consume validation draws and change every later validation NLL).
    FlowConfig c = smallConfig(2, "vector", 1, 3);
    auto gen = generator(6);
    torch::Tensor data = torch::randn({48, 3, 2}, gen, torch::kFloat64);
    torch::Tensor valid = torch::randn({16, 3, 2}, gen, torch::kFloat64);
    const std::string path = (std::filesystem::temp_directory_path() / "openmmbg_resume_between.checkpoint").string();
    std::filesystem::remove(path);
    AugmentedCouplingFlow straight(c);
    auto reference = MaximumLikelihoodTrainer(asModel(straight), data, valid, resumeOptions("", 2)).run();
    MaximumLikelihoodOptions first = resumeOptions(path, 2);
    first.stopAfterEpoch = 1;
    AugmentedCouplingFlow interrupted(c);
    auto partial = MaximumLikelihoodTrainer(asModel(interrupted), data, valid, first).run();
    EXPECT_TRUE(std::isnan(partial[0].validationNll));
    AugmentedCouplingFlow resumed(c);
    auto full = MaximumLikelihoodTrainer(asModel(resumed), data, valid, resumeOptions(path, 2)).run();
    ASSERT_EQ(full.size(), reference.size());
    for (size_t e = 0; e < full.size(); e++)
        if (!std::isnan(reference[e].validationNll))
            EXPECT_EQ(full[e].validationNll, reference[e].validationNll) << "epoch " << e + 1;
    std::filesystem::remove(path);
}

TEST(MaximumLikelihoodTrainer, BatchWithEverySampleMaskedIsSkipped) {
    FlowConfig c = smallConfig(2, "vector", 1, 3);
    AugmentedCouplingFlow flow(c);
    torch::Tensor data = torch::full({8, 3, 2}, 1e4, torch::kFloat64);  // every log q below minLogQ
    data.select(1, 0).fill_(-1e4);  // not all at one point: a spread configuration
    MaximumLikelihoodOptions o;
    o.epochs = 2;
    o.batchSize = 8;
    std::vector<torch::Tensor> before;
    for (auto& p : flow->parameters())
        before.push_back(p.detach().clone());
    auto reports = MaximumLikelihoodTrainer(asModel(flow), data, torch::Tensor(), o).run();
    EXPECT_EQ(reports[0].skippedSteps, 1);
    EXPECT_EQ(reports[1].skippedSteps, 1);
    auto after = flow->parameters();
    for (size_t i = 0; i < before.size(); i++)
        EXPECT_TRUE(torch::equal(before[i], after[i])) << "parameter " << i << " moved";
}
