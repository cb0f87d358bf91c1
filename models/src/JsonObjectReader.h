#pragma once
// Reading options and configurations from a JSON object (private to the flow library): one reader
// for the training options and the model configurations that use it, so all give the same errors.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace OpenMMBG {

/**
 * Parses `text` as a JSON object whose keys must all be in `known`. Errors are
 * std::invalid_argument starting with "<context>: " (not valid JSON, not an object, an unknown key,
 * a value of the wrong type), e.g. "training options: unknown key 'x'".
 */
class JsonObjectReader {
public:
    JsonObjectReader(const std::string& text, const std::set<std::string>& known,
                     std::string context = "training options")
        : context(std::move(context)) {
        try {
            j = nlohmann::json::parse(text);
        } catch (const nlohmann::json::exception& e) {
            fail(std::string("not valid JSON: ") + e.what());
        }
        if (!j.is_object())
            fail("expected a JSON object");
        for (auto it = j.begin(); it != j.end(); ++it)
            if (!known.count(it.key()))
                fail("unknown key '" + it.key() + "'");
    }
    /** Whether `key` is present and not null. */
    bool has(const char* key) const { return j.contains(key) && !j[key].is_null(); }
    /** The value of `key` (null when absent). */
    const nlohmann::json& at(const char* key) const {
        static const nlohmann::json null;
        return j.contains(key) ? j[key] : null;
    }
    /** Throws std::invalid_argument "<context>: <message>". */
    [[noreturn]] void fail(const std::string& message) const { throw std::invalid_argument(context + ": " + message); }
    /**
     * Sets `field` from `key` if present and not null; the JSON type must match the field's, and an
     * integer must fit the field (64-bit parsing, range checked: never wrapped to 32 bits).
     */
    template <class T>
    void read(const char* key, T& field) const {
        if (!j.contains(key) || j[key].is_null())
            return;
        field = value<T>(key, j[key]);
    }

    /** As above for an optional field: set when the key is present and not null. */
    template <class T>
    void read(const char* key, std::optional<T>& field) const {
        T v{};
        if (!j.contains(key) || j[key].is_null())
            return;
        read(key, v);
        field = v;
    }

    /** As above for a list (JSON array) of values of one type. */
    template <class T>
    void read(const char* key, std::vector<T>& field) const {
        if (!j.contains(key) || j[key].is_null())
            return;
        const nlohmann::json& list = j[key];
        if (!list.is_array())
            fail(std::string("'") + key + "' has the wrong type: must be a list (got " + list.dump() + ")");
        std::vector<T> out;
        for (const nlohmann::json& v : list)
            out.push_back(value<T>(key, v));
        field = std::move(out);
    }

    /** `v` (the value of `key`) as a T, with the checks of read(). */
    template <class T>
    T value(const char* key, const nlohmann::json& v) const {
        auto wrongType = [&](const char* expected) {
            fail(std::string("'") + key + "' has the wrong type: must be " + expected + " (got " + v.dump() + ")");
        };
        if constexpr (std::is_same_v<T, bool>) {
            if (!v.is_boolean())
                wrongType("true or false");
            return v.get<bool>();
        } else if constexpr (std::is_integral_v<T>) {
            if (!v.is_number_integer())
                wrongType("an integer");
            const bool fits = v.is_number_unsigned()
                                  ? v.get<uint64_t>() <= uint64_t(std::numeric_limits<T>::max())
                                  : v.get<int64_t>() >= int64_t(std::numeric_limits<T>::min()) &&
                                        (std::is_unsigned_v<T> || v.get<int64_t>() <= int64_t(std::numeric_limits<T>::max()));
            if (!fits)
                fail(std::string("'") + key + "' is out of range (got " + v.dump() + ")");
            return v.get<T>();
        } else if constexpr (std::is_floating_point_v<T>) {
            if (!v.is_number())
                wrongType("a number");
            return v.get<T>();
        } else {
            if (!v.is_string())
                wrongType("a string");
            return v.get<T>();
        }
    }

private:
    std::string context;
    nlohmann::json j;
};

}  // namespace OpenMMBG
