// BoltzmannGeneratorProposal on the Reference platform (the shared tests), and a check that the
// plugin's registration also covers the CPU platform.
#include "BoltzmannGeneratorProposalTests.h"

extern "C" void registerKernelFactories();

// As in a user's process: OpenMM's own plugins first, then ours (the plugin's entry point).
Platform& testPlatform() {
    static const bool registered = (Platform::loadPluginsFromDirectory(OPENMM_PLUGIN_DIR), registerKernelFactories(), true);
    (void) registered;
    return Platform::getPlatformByName("Reference");
}

std::map<std::string, std::string> testProperties() { return {}; }

TEST(BoltzmannGeneratorProposal, InternalCoordinateProposalsOnTheCpuPlatform) {
    testPlatform();
    expectChainMarginals(Platform::getPlatformByName("CPU"), {});
}

TEST(BoltzmannGeneratorProposal, CpuPlatformUsesTheSameKernel) {
    testPlatform();
    Platform& cpu = Platform::getPlatformByName("CPU");
    ASSERT_TRUE(cpu.supportsKernels({MoveModelledParticlesKernel::Name()}));
    System* system = freeSystem();
    auto* move = new BoltzmannGeneratorProposal(modelFile("identity", R"(, "identity_init": true)"));
    move->setFrequency(2);
    move->setNumProposals(3);
    system->addForce(move);
    VerletIntegrator integrator(0.001);
    Context context(*system, integrator, cpu);
    context.setPositions(startPositions());
    integrator.step(10);
    EXPECT_EQ(move->getNumProposed(context), 15);
    EXPECT_GT(move->getNumAccepted(context), 0);
    delete system;
}
