#include "openmmbg/Validation.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>

namespace OpenMMBG {

namespace {

std::string show(double value) {
    std::ostringstream s;
    s.precision(17);
    s << value;
    return s.str();
}

[[noreturn]] void fail(const std::string& what, const std::string& rule, const std::string& got) {
    throw std::invalid_argument(what + " must be " + rule + " (got " + got + ")");
}

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string trimmed(const std::string& text) {
    size_t begin = 0, end = text.size();
    while (begin < end && isSpace(text[begin]))
        begin++;
    while (end > begin && isSpace(text[end - 1]))
        end--;
    return text.substr(begin, end - begin);
}

}  // namespace

double requireFinite(const std::string& what, double value) {
    if (!std::isfinite(value))
        fail(what, "finite", show(value));
    return value;
}

double requirePositive(const std::string& what, double value) {
    if (!(std::isfinite(value) && value > 0))
        fail(what, "positive and finite", show(value));
    return value;
}

double requireNonNegative(const std::string& what, double value) {
    if (!(std::isfinite(value) && value >= 0))
        fail(what, ">= 0 and finite", show(value));
    return value;
}

double requireInRange(const std::string& what, double value, double min, double max) {
    if (!(std::isfinite(value) && value >= min && value <= max))
        fail(what, "in [" + show(min) + ", " + show(max) + "]", show(value));
    return value;
}

int64_t requireInRange(const std::string& what, int64_t value, int64_t min, int64_t max) {
    if (value < min || value > max)
        fail(what, "in [" + std::to_string(min) + ", " + std::to_string(max) + "]", std::to_string(value));
    return value;
}

int64_t requireInteger(const std::string& what, double value, int64_t min, int64_t max) {
    if (!(std::isfinite(value) && value == std::floor(value) && value >= double(min) && value <= double(max)))
        fail(what, "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]", show(value));
    return int64_t(value);
}

void requireDistinct(const std::string& what, const std::vector<int64_t>& values) {
    std::set<int64_t> seen;
    for (int64_t v : values)
        if (!seen.insert(v).second)
            throw std::invalid_argument(what + ": " + std::to_string(v) + " appears twice");
}

int64_t parseInteger(const std::string& what, const std::string& text, int64_t min, int64_t max) {
    const std::string t = trimmed(text);
    const char* begin = t.c_str();
    char* end = nullptr;
    errno = 0;
    const long long value = std::strtoll(begin, &end, 10);
    if (t.empty() || end != begin + t.size())
        fail(what, "an integer", "'" + text + "'");
    if (errno == ERANGE)
        fail(what, "in [" + std::to_string(min) + ", " + std::to_string(max) + "]", "'" + text + "'");
    return requireInRange(what, int64_t(value), min, max);
}

double parseNumber(const std::string& what, const std::string& text) {
    const std::string t = trimmed(text);
    const char* begin = t.c_str();
    char* end = nullptr;
    errno = 0;
    const double value = std::strtod(begin, &end);
    if (t.empty() || end != begin + t.size())
        fail(what, "a number", "'" + text + "'");
    if (!std::isfinite(value))
        fail(what, "finite", "'" + text + "'");
    return value;
}

int64_t checkedMultiply(const std::string& what, int64_t a, int64_t b) {
    int64_t out;
    if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &out))
        throw std::invalid_argument(what + " is too large (" + std::to_string(a) + " x " + std::to_string(b) + ")");
    return out;
}

void requireModelSize(const std::string& what, double numParameters) {
    if (!(numParameters <= double(Limits::kMaxModelParameters)))
        throw std::invalid_argument(what + ": a model of about " + show(std::round(numParameters)) +
                                    " parameters exceeds the limit of " + std::to_string(Limits::kMaxModelParameters));
}

}  // namespace OpenMMBG
