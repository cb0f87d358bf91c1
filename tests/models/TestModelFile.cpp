// The .bgm model file: save/load round trip to identical outputs, metadata, atomic writes, and a
// clear error (never a crash) for every kind of bad file.
#include "FlowTestUtils.h"
#include "ModelFileParts.h"
#include "openmmbg/FlowModel.h"
#include "openmmbg/io/ModelFile.h"
#include "openmmbg/io/TensorArchive.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

using namespace OpenMMBG;
using namespace OpenMMBG::testing;
using nlohmann::json;

namespace {

std::string tempPath(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("openmmbg_test_" + name)).string();
}

// Expect deserialisation to throw std::runtime_error whose message contains `expected`.
void expectError(const std::string& bytes, const std::string& expected) {
    try {
        deserializeFlow(bytes, "test.bgm");
        ADD_FAILURE() << "no error raised; expected one mentioning '" << expected << "'";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << "message was: " << e.what();
        EXPECT_NE(std::string(e.what()).find("test.bgm"), std::string::npos) << "message does not name the file";
    }
}

class ModelFileTest : public ::testing::Test {
protected:
    void SetUp() override {
        FlowConfig c = smallConfig(3, "spherical", 1, 5);
        flow = AugmentedCouplingFlow(c);
        bytes = serializeFlow(flow, {{"note", "test"}});
    }
    AugmentedCouplingFlow flow{nullptr};
    std::string bytes;
};

}  // namespace

TEST_F(ModelFileTest, RoundTripGivesIdenticalOutputs) {
    const std::string path = tempPath("roundtrip.bgm");
    saveFlow(flow, path, {{"note", "test"}});
    AugmentedCouplingFlow loaded = loadFlow(path);
    EXPECT_EQ(loaded->config().toJson(), flow->config().toJson());
    torch::NoGradGuard guard;
    auto gen = generator(3);
    auto [x, a] = randomState(flow->config(), 8, gen);
    EXPECT_TRUE(torch::equal(loaded->logProb(x, a), flow->logProb(x, a)));
    auto g1 = generator(4), g2 = generator(4);
    EXPECT_TRUE(torch::equal(loaded->sample(4, g1).x, flow->sample(4, g2).x));
    EXPECT_EQ(readFlowMetadata(readFileBytes(path))["note"], "test");
    std::remove(path.c_str());
}

TEST_F(ModelFileTest, HeaderIsSafetensorsLayout) {
    ModelFileParts p = splitModelFile(bytes);
    EXPECT_EQ(p.header["__metadata__"]["format"], "openmmbg-flow");
    EXPECT_EQ(p.header["__metadata__"]["format_version"], "2");
    EXPECT_EQ(json::parse(p.header["__metadata__"]["config"].get<std::string>())["num_particles"], 5);
    uint64_t n;
    std::memcpy(&n, bytes.data(), 8);
    EXPECT_EQ((8 + n) % 8, 0u) << "data section is not 8-byte aligned";
    size_t total = 0;
    for (auto& item : flow->named_parameters()) {
        auto entry = p.header[item.key()];
        EXPECT_EQ(entry["dtype"], "F64");
        EXPECT_EQ(entry["shape"].get<std::vector<int64_t>>(), item.value().sizes().vec());
        total += item.value().numel() * 8;
    }
    EXPECT_EQ(p.data.size(), total);
}

TEST_F(ModelFileTest, AtomicSaveLeavesNoTemporaryFiles) {
    const std::string dir = tempPath("atomic_dir");
    std::filesystem::create_directories(dir);
    saveFlow(flow, dir + "/m.bgm");
    saveFlow(flow, dir + "/m.bgm");  // overwrite
    int count = 0;
    for (auto& e : std::filesystem::directory_iterator(dir)) {
        (void) e;
        count++;
    }
    EXPECT_EQ(count, 1);
    EXPECT_THROW(saveFlow(flow, dir + "/no/such/dir/m.bgm"), std::runtime_error);
    std::filesystem::remove_all(dir);
}

TEST_F(ModelFileTest, MissingFile) { EXPECT_THROW(loadFlow(tempPath("does-not-exist.bgm")), std::runtime_error); }

TEST_F(ModelFileTest, EmptyAndTruncatedFiles) {
    expectError("", "truncated");
    expectError(bytes.substr(0, 5), "truncated");
    expectError(bytes.substr(0, 100), "truncated");
    expectError(bytes.substr(0, bytes.size() - 1), "truncated");
}

TEST_F(ModelFileTest, CorruptHeader) {
    std::string b = bytes;
    b[10] = '#';
    expectError(b, "corrupt header");
    std::string huge = bytes;
    uint64_t n = uint64_t(1) << 62;
    std::memcpy(&huge[0], &n, 8);
    expectError(huge, "implausible");
}

TEST_F(ModelFileTest, CorruptDataFailsTheChecksum) {
    std::string b = bytes;
    b[b.size() - 3] ^= 0x40;
    expectError(b, "checksum");
}

TEST_F(ModelFileTest, NotAModelAndUnsupportedVersion) {
    ModelFileParts p = splitModelFile(bytes);
    p.header["__metadata__"]["format"] = "something-else";
    expectError(joinModelFile(p), "not an openmmbg model");
    p = splitModelFile(bytes);
    p.header["__metadata__"]["format_version"] = "99";
    expectError(joinModelFile(p), "version 99");
    p = splitModelFile(bytes);
    p.header.erase("__metadata__");
    expectError(joinModelFile(p), "__metadata__");
}

TEST_F(ModelFileTest, TensorsThatDoNotMatchTheConfiguration) {
    ModelFileParts p = splitModelFile(bytes);
    json config = json::parse(p.header["__metadata__"]["config"].get<std::string>());
    config["num_layers"] = 3;
    p.header["__metadata__"]["config"] = config.dump();
    expectError(joinModelFile(p), "missing");

    p = splitModelFile(bytes);
    config = json::parse(p.header["__metadata__"]["config"].get<std::string>());
    config["egnn_hidden_features"] = 17;
    p.header["__metadata__"]["config"] = config.dump();
    expectError(joinModelFile(p), "shape");

    p = splitModelFile(bytes);
    config = json::parse(p.header["__metadata__"]["config"].get<std::string>());
    config["dtype"] = "float32";
    p.header["__metadata__"]["config"] = config.dump();
    expectError(joinModelFile(p), "dtype");

    p = splitModelFile(bytes);
    p.header["extra.tensor"] = {{"dtype", "F64"}, {"shape", {1}}, {"data_offsets", {0, 8}}};
    expectError(joinModelFile(p), "holds");

    p = splitModelFile(bytes);
    config = json::parse(p.header["__metadata__"]["config"].get<std::string>());
    config["projection"] = "helical";
    p.header["__metadata__"]["config"] = config.dump();
    expectError(joinModelFile(p), "bad configuration");
}

TEST_F(ModelFileTest, HeaderEditsFailTheHeaderChecksum) {
    // A configuration value edited in the header (same tensors, different densities) is refused.
    ModelFileParts p = splitModelFile(bytes);
    json config = json::parse(p.header["__metadata__"]["config"].get<std::string>());
    config["aug_scale"] = 0.9;
    p.header["__metadata__"]["config"] = config.dump();
    expectError(joinModelFile(p, false), "header checksum mismatch");
    p = splitModelFile(bytes);
    p.header["__metadata__"]["note"] = "edited";
    expectError(joinModelFile(p, false), "header checksum mismatch");
    // A version 2 file without the header checksum is refused; a version 1 file without it loads.
    p = splitModelFile(bytes);
    p.header["__metadata__"].erase("header_checksum");
    expectError(joinModelFile(p, false), "must carry a header checksum");
    p.header["__metadata__"]["format_version"] = "1";
    EXPECT_NO_THROW(deserializeFlow(joinModelFile(p, false), "v1.bgm"));
}

TEST_F(ModelFileTest, HugeOrNegativeSizesAreRefusedBeforeAllocation) {
    const std::string name = flow->named_parameters().begin()->key();
    for (const json& shape : {json::parse("[1180591620717411303424]"), json::parse("[-1]"), json::parse("[4294967297, 4294967297]"),
                              json::parse("[1.5]"), json::parse("[1,1,1,1,1,1,1,1,1]"), json::parse("\"x\"")}) {
        ModelFileParts p = splitModelFile(bytes);
        p.header[name]["shape"] = shape;
        try {
            deserializeFlow(joinModelFile(p), "test.bgm");
            ADD_FAILURE() << "shape " << shape.dump() << " loaded";
        } catch (const std::runtime_error& e) {
            EXPECT_NE(std::string(e.what()).find("corrupt header"), std::string::npos) << e.what();
        }
    }
    // Integers of the configuration beyond their range are refused, never wrapped to 32 bits.
    for (const char* edit : {R"({"num_particles": 4294967300})", R"({"num_layers": 4294967297})",
                             R"({"num_layers": 100000})", R"({"egnn_hidden_features": 1000000})"}) {
        ModelFileParts p = splitModelFile(bytes);
        json config = json::parse(p.header["__metadata__"]["config"].get<std::string>());
        config.update(json::parse(edit));
        p.header["__metadata__"]["config"] = config.dump();
        expectError(joinModelFile(p), "bad configuration");
    }
}

TEST_F(ModelFileTest, InconsistentOffsets) {
    ModelFileParts p = splitModelFile(bytes);
    std::string name = flow->named_parameters().begin()->key();
    p.header[name]["data_offsets"] = {0, 3};
    expectError(joinModelFile(p), "data offsets");
}

TEST(FlowModel, TorchFreeInterfaceRoundTrip) {
    FlowModel m(R"({"num_particles": 4, "dim": 2, "projection": "vector", "num_layers": 2, "dtype": "float64",
                    "identity_init": false})");
    EXPECT_EQ(m.getNumParticles(), 4);
    EXPECT_EQ(m.getDim(), 2);
    EXPECT_EQ(m.getFamily(), "eacf");
    EXPECT_EQ(m.getAuxiliaryShape(), (std::vector<long long>{4, 1, 2}));
    std::vector<double> s = m.sample(3, 7);
    ASSERT_EQ(s.size(), size_t(3 * 8 + 3 * 8 + 3));
    std::vector<double> x(s.begin(), s.begin() + 24), a(s.begin() + 24, s.begin() + 48), logq(s.begin() + 48, s.end());
    std::vector<double> lp = m.logProb(x, a);
    for (int i = 0; i < 3; i++)
        EXPECT_NEAR(lp[i], logq[i], 1e-8);
    FlowModel copy = FlowModel::fromBytes(m.toBytes());
    EXPECT_EQ(copy.logProb(x, a), lp);
    EXPECT_THROW(m.logProb(std::vector<double>(7), a), std::invalid_argument);
    EXPECT_THROW(FlowModel(R"({"dim": 2, "projection": "vector"})"), std::invalid_argument);
    EXPECT_THROW(FlowModel(R"({"num_particles": 4, "dim": 2, "projection": "vector", "bogus": 1})"), std::invalid_argument);
    EXPECT_THROW(FlowModel(R"({"num_particles": 4, "dim": 2, "projection": "vector", "num_aug": 2})"), std::invalid_argument);
}
