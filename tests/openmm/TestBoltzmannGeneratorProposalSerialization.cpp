// XML round trip of BoltzmannGeneratorProposal: every setting and the embedded model survive, and
// the deserialized Force works in a Context without the original file.
#include "BoltzmannGeneratorProposal.h"
#include "openmmbg/FlowModel.h"

#include "openmm/Context.h"
#include "openmm/OpenMMException.h"
#include "openmm/Platform.h"
#include "openmm/System.h"
#include "openmm/VerletIntegrator.h"
#include "openmm/serialization/XmlSerializer.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <sstream>

extern "C" void registerKernelFactories();

using namespace OpenMM;
using namespace OpenMMBG;

TEST(BoltzmannGeneratorProposalSerialization, RoundTrip) {
    registerKernelFactories();
    const std::string path = (std::filesystem::temp_directory_path() / "openmmbg_serialize.bgm").string();
    FlowModel(R"({"num_particles": 3, "dim": 3, "projection": "vector", "num_layers": 1, "identity_init": false})").save(path);
    BoltzmannGeneratorProposal force(path);
    force.setParticles({4, 0, 2});
    force.setFrequency(17);
    force.setTemperature(310.5);
    force.setNumProposals(6);
    force.setRandomNumberSeed(99);
    force.setRedrawVelocities(false);
    force.addChiralCenter(0, 2, 4, 0);
    force.setForceGroup(3);
    force.setName("flow moves");
    std::stringstream buffer;
    XmlSerializer::serialize<BoltzmannGeneratorProposal>(&force, "Force", buffer);
    std::remove(path.c_str());  // the serialized copy must not need the file
    BoltzmannGeneratorProposal* copy = XmlSerializer::deserialize<BoltzmannGeneratorProposal>(buffer);
    EXPECT_EQ(copy->getModelBytes(), force.getModelBytes());
    EXPECT_EQ(copy->getParticles(), force.getParticles());
    EXPECT_EQ(copy->getFrequency(), 17);
    EXPECT_EQ(copy->getTemperature(), 310.5);
    EXPECT_EQ(copy->getNumProposals(), 6);
    EXPECT_EQ(copy->getRandomNumberSeed(), 99);
    EXPECT_FALSE(copy->getRedrawVelocities());
    ASSERT_EQ(copy->getChiralCenters().size(), 1u);
    EXPECT_EQ(copy->getChiralCenters()[0], (std::array<int, 4>{0, 2, 4, 0}));
    EXPECT_EQ(copy->getForceGroup(), 3);
    EXPECT_EQ(copy->getName(), "flow moves");
    EXPECT_EQ(copy->getNumModelParticles(), 3);

    // Works in a Context (through a System round trip too).
    System system;
    for (int i = 0; i < 5; i++)
        system.addParticle(1.0);
    copy->setChiralCenters({});
    copy->setFrequency(1);
    system.addForce(copy);
    std::stringstream systemXml;
    XmlSerializer::serialize<System>(&system, "System", systemXml);
    System* restored = XmlSerializer::deserialize<System>(systemXml);
    VerletIntegrator integrator(0.001);
    Context context(*restored, integrator, Platform::getPlatformByName("Reference"));
    context.setPositions({Vec3(0, 0, 0), Vec3(1, 0, 0), Vec3(0, 1, 0), Vec3(0, 0, 1), Vec3(1, 1, 1)});
    integrator.step(3);
    auto& move = dynamic_cast<BoltzmannGeneratorProposal&>(restored->getForce(0));
    EXPECT_EQ(move.getNumProposed(context), 18);
    delete restored;

    std::string bad = buffer.str();
    bad.replace(bad.find("version=\"1\""), 11, "version=\"7\"");
    std::stringstream badStream(bad);
    EXPECT_THROW(XmlSerializer::deserialize<BoltzmannGeneratorProposal>(badStream), OpenMMException);
}
