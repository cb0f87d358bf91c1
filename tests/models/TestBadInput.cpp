// Bad input to the flow library, by class (docs/checks.md): numbers and sizes (the shared
// validation), files that are not regular files, writes that must not replace anything but regular
// files, and model files mutated at random (a few hundred seeded mutations: each a clean error or a
// load, never a crash, std::bad_alloc or more than a stated memory bound; a hang is caught by the
// test's ctest TIMEOUT).
#include "FlowTestUtils.h"
#include "ModelFileParts.h"
#include "openmmbg/Errors.h"
#include "openmmbg/Validation.h"
#include "openmmbg/io/Files.h"
#include "openmmbg/io/ModelFile.h"
#include "openmmbg/io/TensorArchive.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace OpenMMBG;
using namespace OpenMMBG::testing;
using nlohmann::json;

namespace {

template <class F>
std::string errorOf(F f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

std::string tempDir(const std::string& name) {
    const auto dir = std::filesystem::temp_directory_path() / ("openmmbg_badinput_" + name + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir.string();
}

// Peak resident memory of this process in bytes.
int64_t peakRss() {
    struct rusage usage;
    ::getrusage(RUSAGE_SELF, &usage);
    return int64_t(usage.ru_maxrss) * 1024;
}

}  // namespace

TEST(Validation, NumbersAreFiniteAndInRange) {
    EXPECT_EQ(requirePositive("t", 300.0), 300.0);
    for (double bad : std::vector<double>{0.0, -300.0, NAN, INFINITY, -INFINITY})
        EXPECT_NE(errorOf([&] { requirePositive("the temperature", bad); }).find("the temperature must be positive"),
                  std::string::npos);
    EXPECT_NE(errorOf([&] { requireNonNegative("x", -1e-300); }).find("must be >= 0"), std::string::npos);
    EXPECT_NE(errorOf([&] { requireFinite("x", NAN); }).find("(got nan)"), std::string::npos);
    EXPECT_EQ(requireInteger("n", 3.0, 0, 10), 3);
    EXPECT_FALSE(errorOf([&] { requireInteger("n", 3.5, 0, 10); }).empty());
    EXPECT_FALSE(errorOf([&] { requireInteger("n", 1e30, 0, INT64_MAX); }).empty());
    EXPECT_FALSE(errorOf([&] { requireInRange("n", int64_t(11), 0, 10); }).empty());
    EXPECT_NE(errorOf([&] { requireDistinct("--particles", {0, 0, 1}); }).find("0 appears twice"), std::string::npos);
}

TEST(Validation, TextIsParsedWholeIn64BitsNeverWrapped) {
    EXPECT_EQ(parseInteger("n", " 42 ", 0, 100), 42);
    EXPECT_EQ(parseInteger("n", "4294967300", 0, INT64_MAX), 4294967300LL);
    for (const char* bad : {"", "x", "12abc", "1.5", "99999999999999999999999"})
        EXPECT_FALSE(errorOf([&] { parseInteger("n", bad, INT64_MIN, INT64_MAX); }).empty()) << bad;
    EXPECT_NE(errorOf([&] { parseInteger("the index", "4294967300", 0, INT32_MAX); }).find("the index must be in"),
              std::string::npos);
    EXPECT_EQ(parseNumber("x", "1e-3"), 1e-3);
    for (const char* bad : {"", "nan", "inf", "-inf", "1e999", "3 K", "0x"})
        EXPECT_FALSE(errorOf([&] { parseNumber("x", bad); }).empty()) << bad;
    EXPECT_FALSE(errorOf([&] { checkedMultiply("size", int64_t(1) << 40, int64_t(1) << 40); }).empty());
    EXPECT_NE(errorOf([&] { requireModelSize("flow config", 1e12); }).find("exceeds the limit"), std::string::npos);
}

TEST(Files, ReadsRegularFilesOnlyAndNeverBlocks) {
    const std::string dir = tempDir("read");
    EXPECT_NE(errorOf([&] { readFileBytes(dir); }).find("it is a directory"), std::string::npos);
    EXPECT_NE(errorOf([&] { readFileBytes("/dev/zero"); }).find("it is a character device"), std::string::npos);
    const std::string fifo = dir + "/fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    EXPECT_NE(errorOf([&] { readFileBytes(fifo); }).find("it is a FIFO"), std::string::npos);  // would block in open()
    EXPECT_NE(errorOf([&] { loadModel(fifo); }).find("FIFO"), std::string::npos);
    EXPECT_NE(errorOf([&] { loadModel(dir); }).find("directory"), std::string::npos);
    EXPECT_NE(errorOf([&] { readFileBytes(dir + "/missing"); }).find("cannot open"), std::string::npos);
    writeFileAtomically(dir + "/small", "12345");
    EXPECT_EQ(readFileBytes(dir + "/small"), "12345");
    EXPECT_NE(errorOf([&] { readFileBytes(dir + "/small", 4); }).find("exceeds the limit"), std::string::npos);
    std::filesystem::remove_all(dir);
}

TEST(Files, WritesReplaceRegularFilesOnly) {
    const std::string dir = tempDir("write");
    const std::string fifo = dir + "/fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    // A device node or FIFO at the target is refused and left as it was (never replaced by a file).
    EXPECT_THROW(writeFileAtomically(fifo, "x"), FileAccessError);
    EXPECT_THROW(checkWritableFile(fifo), FileAccessError);
    EXPECT_THROW(checkWritableFile("/dev/null"), FileAccessError);
    struct stat st;
    ASSERT_EQ(::stat(fifo.c_str(), &st), 0);
    EXPECT_TRUE(S_ISFIFO(st.st_mode));
    EXPECT_THROW(writeFileAtomically(dir, "x"), FileAccessError);  // a directory
    EXPECT_NE(errorOf([&] { checkWritableFile(dir + "/no/such/folder/m.bgm"); }).find("does not exist"),
              std::string::npos);
    EXPECT_NE(errorOf([&] { checkWritableFile(""); }).find("empty path"), std::string::npos);
    EXPECT_NE(errorOf([&] { checkWritableFile(dir + "/m.bgm", uint64_t(1) << 62); }).find("are free"), std::string::npos);
    checkWritableFile(dir + "/m.bgm");  // a writable folder: no error, and nothing left behind
    EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator()), 1);
    std::filesystem::remove_all(dir);
}

namespace {

// Small models of every family, as .bgm bytes.
std::vector<std::pair<std::string, std::string>> smallModelFiles() {
    std::vector<std::pair<std::string, std::string>> out;
    out.emplace_back("eacf", serializeModel(*asModel(AugmentedCouplingFlow(smallConfig(3, "spherical", 1, 4)))));
    out.emplace_back("ecnf", serializeModel(*makeModel(
                                 R"({"family": "ecnf", "num_particles": 4, "dim": 2, "num_layers": 2, "hidden_units": 8})")));
    out.emplace_back("ic", serializeModel(*makeModel(
                               R"({"family": "ic", "num_particles": 4, "num_layers": 2, "hidden_units": 8,
                                   "zmatrix": [[0, -1, -1, -1], [1, 0, -1, -1], [2, 1, 0, -1], [3, 2, 1, 0]]})")));
    return out;
}

// Values a careless edit or a damaged file puts in a header field.
json nastyValue(std::mt19937_64& rng) {
    static const std::vector<json> values = {
        0, -1, 1, 2, 3, 7, 1000, 100000, 1000000, 2147483647, 2147483648LL, 4294967297LL, 4294967300LL,
        INT64_MAX, json::parse("18446744073709551615"), json::parse("1180591620717411303424"), 1.5, -0.0, 1e300,
        -1e300, 1e-300, "x", "", "float16", "nm", "angstrom", nullptr, true, false, json::array(), json::array({1}),
        json::array({-1, 2}), json::object(), json::array({1000000, 1000000})};
    return values[rng() % values.size()];
}

// One seeded mutation of a model file's bytes.
std::string mutate(const std::string& bytes, std::mt19937_64& rng) {
    const int kind = int(rng() % 6);
    if (kind == 0) {  // raw byte flips anywhere (the checksums must catch them)
        std::string b = bytes;
        for (int k = 0, n = 1 + int(rng() % 4); k < n; k++)
            b[rng() % b.size()] ^= char(1 + rng() % 255);
        return b;
    }
    if (kind == 1)  // truncation
        return bytes.substr(0, rng() % bytes.size());
    if (kind == 2) {  // the header length itself
        std::string b = bytes;
        const uint64_t n = rng() % 3 == 0 ? rng() : rng() % (bytes.size() + 64);
        std::memcpy(&b[0], &n, 8);
        return b;
    }
    ModelFileParts p = splitModelFile(bytes);
    if (kind == 3) {  // a configuration value, header re-checksummed (reaches the configuration checks)
        json config = json::parse(p.header["__metadata__"]["config"].get<std::string>());
        std::vector<std::string> keys;
        for (auto it = config.begin(); it != config.end(); ++it)
            keys.push_back(it.key());
        config[keys[rng() % keys.size()]] = nastyValue(rng);
        p.header["__metadata__"]["config"] = config.dump();
        return joinModelFile(p, true);
    }
    if (kind == 4) {  // a tensor entry's shape, offsets or dtype, re-checksummed
        std::vector<std::string> names;
        for (auto it = p.header.begin(); it != p.header.end(); ++it)
            if (it.key() != "__metadata__")
                names.push_back(it.key());
        json& entry = p.header[names[rng() % names.size()]];
        const int field = int(rng() % 4);
        if (field == 0)
            entry["shape"] = nastyValue(rng);
        else if (field == 1)
            entry["shape"][rng() % std::max<size_t>(1, entry["shape"].size())] = nastyValue(rng);
        else if (field == 2)
            entry["data_offsets"][rng() % 2] = nastyValue(rng);
        else
            entry["dtype"] = nastyValue(rng);
        return joinModelFile(p, true);
    }
    // Data values changed and re-checksummed: a valid file with other parameters (loads).
    for (int k = 0, n = 1 + int(rng() % 4); k < n && !p.data.empty(); k++)
        p.data[rng() % p.data.size()] ^= char(1 + rng() % 255);
    return joinModelFile(p, true);
}

}  // namespace

TEST(ModelFileFuzz, SeededMutationsAreCleanErrorsOrLoads) {
    // 3 families x 120 mutations. Memory bound: the peak resident memory may grow by at most 256 MiB
    // over the whole run (the models are ~100 kB; a mutation that allocated on the word of the
    // header would show here or as std::bad_alloc).
    constexpr int kMutationsPerFamily = 120;
    constexpr int64_t kMemoryBound = int64_t(256) << 20;
    const auto files = smallModelFiles();
    const int64_t before = peakRss();
    int loads = 0, errors = 0;
    std::mt19937_64 rng(20261208);
    for (const auto& [family, bytes] : files) {
        ASSERT_NO_THROW(deserializeModel(bytes, "intact.bgm")) << family;
        for (int i = 0; i < kMutationsPerFamily; i++) {
            const std::string mutated = mutate(bytes, rng);
            try {
                deserializeModel(mutated, "fuzz.bgm");
                loads++;
            } catch (const std::bad_alloc&) {
                ADD_FAILURE() << family << " mutation " << i << ": std::bad_alloc (allocated on the word of the file)";
            } catch (const std::exception& e) {
                errors++;
                EXPECT_NE(std::string(e.what()).find("fuzz.bgm"), std::string::npos)
                    << family << " mutation " << i << ": the error does not name the file: " << e.what();
            }
        }
    }
    EXPECT_EQ(loads + errors, 3 * kMutationsPerFamily);
    EXPECT_GT(errors, 2 * kMutationsPerFamily) << "most mutations must be refused";
    EXPECT_GT(loads, 0) << "re-checksummed data changes are valid files";
    EXPECT_LT(peakRss() - before, kMemoryBound);
    std::cout << "[fuzz] " << loads << " loads, " << errors << " clean errors, peak RSS growth "
              << (peakRss() - before) / (1 << 20) << " MiB" << std::endl;
}
