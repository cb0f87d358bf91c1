#pragma once
// Reading training options from a JSON object (private to the flow library): one reader for the
// maximum-likelihood and the energy-based options, so both give the same errors.
#include <nlohmann/json.hpp>

#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace OpenMMBG {

/**
 * Parses `text` as a JSON object whose keys must all be in `known`. Errors are
 * std::invalid_argument starting with "training options: " (not valid JSON, not an object, an
 * unknown key, a value of the wrong type).
 */
class JsonOptions {
public:
    JsonOptions(const std::string& text, const std::set<std::string>& known) {
        try {
            j = nlohmann::json::parse(text);
        } catch (const nlohmann::json::exception& e) {
            throw std::invalid_argument(std::string("training options: not valid JSON: ") + e.what());
        }
        if (!j.is_object())
            throw std::invalid_argument("training options: expected a JSON object");
        for (auto it = j.begin(); it != j.end(); ++it)
            if (!known.count(it.key()))
                throw std::invalid_argument("training options: unknown key '" + it.key() + "'");
    }
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
            throw std::invalid_argument(std::string("training options: '") + key + "' has the wrong type (" + v.dump() + ")");
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
    nlohmann::json j;
};

}  // namespace OpenMMBG
