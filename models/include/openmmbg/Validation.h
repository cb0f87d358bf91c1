#pragma once
/**
 * The one validation of numbers and sizes that users give, shared by the flow library, the
 * command-line tool, the Python package and the OpenMM plugin, so every entry point refuses the same
 * values with the same words. Errors are std::invalid_argument "<what> must be ... (got <value>)".
 * LibTorch-free.
 */
#include <cstdint>
#include <string>
#include <vector>

namespace OpenMMBG {

/**
 * Limits on what a configuration, a file or an option may ask for, checked before anything is
 * allocated for it (docs/checks.md lists them).
 */
namespace Limits {
/** Particles of a model or data set. */
constexpr int64_t kMaxParticles = 100000;
/** Parameters of one model (about 2 GiB in float64): a configuration asking for more is refused. */
constexpr int64_t kMaxModelParameters = int64_t(1) << 28;
/** Dimensions of one stored tensor. */
constexpr int64_t kMaxTensorRank = 8;
/** Width of any network layer (hidden units, features). */
constexpr int64_t kMaxWidth = 1 << 16;
/** Layers, blocks or coupling steps of one kind in a model. */
constexpr int64_t kMaxLayers = 1000;
}  // namespace Limits

/** `value` if it is finite; else throws "<what> must be finite (got nan)". */
double requireFinite(const std::string& what, double value);
/** `value` if it is finite and > 0. */
double requirePositive(const std::string& what, double value);
/** `value` if it is finite and >= 0. */
double requireNonNegative(const std::string& what, double value);
/** `value` if it is finite and in [min, max]. */
double requireInRange(const std::string& what, double value, double min, double max);
/** `value` if it is in [min, max]. */
int64_t requireInRange(const std::string& what, int64_t value, int64_t min, int64_t max);
/** `value` if it is a whole number in [min, max] (e.g. a count given as a float), as an integer. */
int64_t requireInteger(const std::string& what, double value, int64_t min, int64_t max);
/** Throws "<what>: <value> appears twice" if `values` holds a duplicate. */
void requireDistinct(const std::string& what, const std::vector<int64_t>& values);

/**
 * A decimal integer read from the whole of `text` (surrounding spaces allowed, nothing else), in
 * [min, max]; 64-bit, so an out-of-range value is refused, never wrapped.
 */
int64_t parseInteger(const std::string& what, const std::string& text, int64_t min, int64_t max);
/** A finite decimal number read from the whole of `text`. */
double parseNumber(const std::string& what, const std::string& text);

/** a * b, or throws "<what> is too large" if the product overflows int64 (a, b >= 0). */
int64_t checkedMultiply(const std::string& what, int64_t a, int64_t b);

/** Throws "<what>: a model of about <n> parameters exceeds the limit of ..." if n > kMaxModelParameters. */
void requireModelSize(const std::string& what, double numParameters);

}  // namespace OpenMMBG
