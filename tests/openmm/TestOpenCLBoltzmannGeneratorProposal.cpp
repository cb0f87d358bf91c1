// BoltzmannGeneratorProposal on the OpenCL platform (on CI through PoCL), at the precision named by
// OPENMMBG_TEST_PRECISION (single, mixed or double; default single): the shared tests, and the
// same decisions as the Reference platform for the same seed.
#include "BoltzmannGeneratorProposalTests.h"

#include <cstdlib>

// The kernel factory is registered directly (on OpenCL, and on Reference for the comparison); the
// plugin's entry point is exercised by tests/python/test_proposal.py, which loads it from a folder.
Platform& testPlatform() {
    static Platform& platform = []() -> Platform& {
        Platform::loadPluginsFromDirectory(OPENMM_PLUGIN_DIR);
        Platform& opencl = Platform::getPlatformByName("OpenCL");
        opencl.registerKernelFactory(CalcBoltzmannGeneratorProposalKernel::Name(), new CommonBGKernelFactory());
        Platform::getPlatformByName("Reference")
            .registerKernelFactory(CalcBoltzmannGeneratorProposalKernel::Name(), new CommonBGKernelFactory());
        return opencl;
    }();
    return platform;
}

std::map<std::string, std::string> testProperties() {
    const char* precision = std::getenv("OPENMMBG_TEST_PRECISION");
    return {{"Precision", precision != nullptr ? precision : "single"}};
}

TEST(BoltzmannGeneratorProposal, SameDecisionsAsTheReferencePlatform) {
    testPlatform();
    expectSameDecisionsAsReference();
}
