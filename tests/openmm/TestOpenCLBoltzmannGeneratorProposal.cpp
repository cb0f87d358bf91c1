// BoltzmannGeneratorProposal on the OpenCL platform (on CI through PoCL), at the precision named by
// OPENMMBG_TEST_PRECISION (single, mixed or double; default single): the shared tests, and the
// same decisions as the Reference platform for the same seed.
#include "BoltzmannGeneratorProposalTests.h"

Platform& testPlatform() {
    static Platform& platform = []() -> Platform& {
        Platform::loadPluginsFromDirectory(OPENMM_PLUGIN_DIR);
        return registerKernelsForComparison("OpenCL", new CommonBGKernelFactory());
    }();
    return platform;
}

std::map<std::string, std::string> testProperties() { return precisionFromEnvironment(); }

TEST(BoltzmannGeneratorProposal, SameDecisionsAsTheReferencePlatform) {
    testPlatform();
    expectSameDecisionsAsReference();
}
