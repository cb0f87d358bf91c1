#include "BoltzmannGeneratorProposalProxy.h"

#include "BoltzmannGeneratorProposal.h"
#include "openmmbg/Validation.h"

#include "openmm/OpenMMException.h"
#include "openmm/serialization/SerializationNode.h"
#include "openmm/serialization/SerializationProxy.h"

#include <cstdint>
#include <limits>
#include <stdexcept>

using namespace OpenMM;

namespace OpenMMBG {

namespace {

const char* ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64Encode(const std::string& in) {
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    for (size_t i = 0; i < in.size(); i += 3) {
        uint32_t v = uint8_t(in[i]) << 16;
        if (i + 1 < in.size()) v |= uint8_t(in[i + 1]) << 8;
        if (i + 2 < in.size()) v |= uint8_t(in[i + 2]);
        out += ALPHABET[(v >> 18) & 63];
        out += ALPHABET[(v >> 12) & 63];
        out += i + 1 < in.size() ? ALPHABET[(v >> 6) & 63] : '=';
        out += i + 2 < in.size() ? ALPHABET[v & 63] : '=';
    }
    return out;
}

std::string base64Decode(const std::string& in) {
    int table[256];
    for (int& t : table)
        t = -1;
    for (int i = 0; i < 64; i++)
        table[uint8_t(ALPHABET[i])] = i;
    if (in.size() % 4 != 0)
        throw OpenMMException("BoltzmannGeneratorProposal: the serialized model is not valid base64");
    std::string out;
    for (size_t i = 0; i < in.size(); i += 4) {
        uint32_t v = 0;
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            const char c = in[i + k];
            int d = 0;
            if (c == '=' && i + 4 == in.size() && k >= 2)
                pad++;
            else if ((d = table[uint8_t(c)]) < 0 || pad > 0)
                throw OpenMMException("BoltzmannGeneratorProposal: the serialized model is not valid base64");
            v = (v << 6) | uint32_t(d);
        }
        out += char((v >> 16) & 255);
        if (pad < 2) out += char((v >> 8) & 255);
        if (pad < 1) out += char(v & 255);
    }
    return out;
}

// Numbers are read strictly through the shared validation (OpenMM's own getters read a malformed
// number such as "12abc" or "x" as a prefix or 0): the whole text must be the number.
int intProperty(const SerializationNode& node, const std::string& name, int min, int max) {
    try {
        return int(parseInteger("BoltzmannGeneratorProposal XML: '" + name + "'", node.getStringProperty(name), min, max));
    } catch (const std::invalid_argument& e) {
        throw OpenMMException(e.what());
    }
}

double doubleProperty(const SerializationNode& node, const std::string& name) {
    try {
        return parseNumber("BoltzmannGeneratorProposal XML: '" + name + "'", node.getStringProperty(name));
    } catch (const std::invalid_argument& e) {
        throw OpenMMException(e.what());
    }
}

bool boolProperty(const SerializationNode& node, const std::string& name) {
    const std::string v = node.getStringProperty(name);
    if (v == "1" || v == "true")
        return true;
    if (v == "0" || v == "false")
        return false;
    throw OpenMMException("BoltzmannGeneratorProposal XML: '" + name + "' must be true or false (got '" + v + "')");
}

const int kIntMin = std::numeric_limits<int>::min(), kIntMax = std::numeric_limits<int>::max();

}  // namespace

BoltzmannGeneratorProposalProxy::BoltzmannGeneratorProposalProxy() : SerializationProxy("BoltzmannGeneratorProposal") {}

void BoltzmannGeneratorProposalProxy::serialize(const void* object, SerializationNode& node) const {
    node.setIntProperty("version", 1);
    const BoltzmannGeneratorProposal& force = *reinterpret_cast<const BoltzmannGeneratorProposal*>(object);
    node.setIntProperty("forceGroup", force.getForceGroup());
    node.setStringProperty("name", force.getName());
    node.setIntProperty("frequency", force.getFrequency());
    node.setDoubleProperty("temperature", force.getTemperature());
    node.setIntProperty("numProposals", force.getNumProposals());
    node.setIntProperty("randomSeed", force.getRandomNumberSeed());
    node.setBoolProperty("redrawVelocities", force.getRedrawVelocities());
    node.setStringProperty("model", base64Encode(force.getModelBytes()));
    SerializationNode& particles = node.createChildNode("Particles");
    for (int p : force.getParticles())
        particles.createChildNode("Particle").setIntProperty("index", p);
    SerializationNode& centers = node.createChildNode("ChiralCenters");
    for (const auto& c : force.getChiralCenters())
        centers.createChildNode("Center").setIntProperty("a", c[0]).setIntProperty("b", c[1]).setIntProperty("c", c[2]).setIntProperty("d", c[3]);
}

void* BoltzmannGeneratorProposalProxy::deserialize(const SerializationNode& node) const {
    const int version = intProperty(node, "version", kIntMin, kIntMax);
    if (version < 1 || version > 1)
        throw OpenMMException("BoltzmannGeneratorProposal: unsupported serialization version " + std::to_string(version));
    BoltzmannGeneratorProposal* force = BoltzmannGeneratorProposal::fromModelBytes(base64Decode(node.getStringProperty("model")));
    try {
        force->setForceGroup(node.hasProperty("forceGroup") ? intProperty(node, "forceGroup", 0, 31) : 0);
        force->setName(node.getStringProperty("name", force->getName()));
        force->setFrequency(intProperty(node, "frequency", 0, kIntMax));
        force->setTemperature(doubleProperty(node, "temperature"));
        force->setNumProposals(intProperty(node, "numProposals", 1, kIntMax));
        force->setRandomNumberSeed(intProperty(node, "randomSeed", kIntMin, kIntMax));
        force->setRedrawVelocities(boolProperty(node, "redrawVelocities"));
        std::vector<int> particles;
        for (const SerializationNode& p : node.getChildNode("Particles").getChildren())
            particles.push_back(intProperty(p, "index", 0, kIntMax));
        force->setParticles(particles);
        for (const SerializationNode& c : node.getChildNode("ChiralCenters").getChildren())
            force->addChiralCenter(intProperty(c, "a", 0, kIntMax), intProperty(c, "b", 0, kIntMax),
                                   intProperty(c, "c", 0, kIntMax), intProperty(c, "d", 0, kIntMax));
    } catch (...) {
        delete force;
        throw;
    }
    return force;
}

}  // namespace OpenMMBG

// Register the proxy when libOpenMMBG is loaded.
#if defined(__GNUC__)
__attribute__((constructor))
#endif
static void registerOpenMMBGSerializationProxies() {
    OpenMM::SerializationProxy::registerProxy(typeid(OpenMMBG::BoltzmannGeneratorProposal),
                                              new OpenMMBG::BoltzmannGeneratorProposalProxy());
}
