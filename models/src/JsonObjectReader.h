#pragma once
// Reading options and configurations from a JSON object (private to the flow library): one reader
// for the training options and the model configurations that use it, so all give the same errors.
#include <nlohmann/json.hpp>

#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

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
    /** Sets `field` from `key` if present and not null; the JSON type must match the field's. */
    template <class T>
    void read(const char* key, T& field) const {
        if (!j.contains(key) || j[key].is_null())
            return;
        const nlohmann::json& v = j[key];
        bool ok = std::is_same_v<T, bool> ? v.is_boolean()
                  : std::is_integral_v<T> ? v.is_number_integer()
                  : std::is_floating_point_v<T> ? v.is_number()
                  : v.is_string();
        if (!ok)
            fail(std::string("'") + key + "' has the wrong type (" + v.dump() + ")");
        field = v.get<T>();
    }

    /** As above for an optional field: set when the key is present and not null. */
    template <class T>
    void read(const char* key, std::optional<T>& field) const {
        T value{};
        if (!j.contains(key) || j[key].is_null())
            return;
        read(key, value);
        field = value;
    }

private:
    std::string context;
    nlohmann::json j;
};

}  // namespace OpenMMBG
