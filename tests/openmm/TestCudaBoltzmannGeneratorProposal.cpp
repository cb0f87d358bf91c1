// BoltzmannGeneratorProposal on the CUDA platform, with the flow on the Context's GPU, at the
// precision named by OPENMMBG_TEST_PRECISION (single, mixed or double; default single): the shared
// tests, the same decisions as the Reference platform for the same seed, and the flow on the GPU
// against the flow on the CPU. They need a GPU (scripts/check-cuda-build.sh runs them where one is).
#include "BoltzmannGeneratorProposalTests.h"
#include "CudaBGKernels.h"

Platform& testPlatform() {
    static Platform& platform = []() -> Platform& {
        Platform::loadPluginsFromDirectory(OPENMM_PLUGIN_DIR);
        if (std::string(OPENMM_CUDA_PLUGIN_DIR) != OPENMM_PLUGIN_DIR)
            Platform::loadPluginLibrary(std::string(OPENMM_CUDA_PLUGIN_DIR) + "/libOpenMMCUDA.so");
        return registerKernelsForComparison("CUDA", new CudaBGKernelFactory());
    }();
    return platform;
}

std::map<std::string, std::string> testProperties() { return precisionFromEnvironment(); }

TEST(BoltzmannGeneratorProposal, SameDecisionsAsTheReferencePlatform) {
    testPlatform();
    expectSameDecisionsAsReference();
}

TEST(BoltzmannGeneratorProposal, FlowOnTheGpuMatchesTheCpu) {
    testPlatform();  // loads LibTorch's CUDA backend with the plugin
    const std::string path = modelFile("exact", R"(, "identity_init": false, "random_init_scale": 0.1)");
    FlowModel cpu = FlowModel::load(path), gpu = FlowModel::load(path);
    gpu.setDevice("cuda:0");
    EXPECT_EQ(gpu.getDevice(), "cuda:0");
    const std::vector<double> a = cpu.sample(8, 5), b = gpu.sample(8, 5);  // same seed: same CPU noise
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); i++)
        EXPECT_NEAR(a[i], b[i], 1e-9) << "element " << i;
}
