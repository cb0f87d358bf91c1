#include "openmmbg/Model.h"

#include "openmmbg/Threads.h"

#include "openmmbg/eacf/AugmentedCouplingFlowModel.h"
#include "openmmbg/ecnf/EquivariantCnfModel.h"
#include "openmmbg/ic/InternalCoordinateFlowModel.h"

#include <nlohmann/json.hpp>

#include <stdexcept>

namespace OpenMMBG {

std::string modelFamilyOf(const std::string& configJson) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(configJson);
    } catch (const nlohmann::json::exception& e) {
        throw std::invalid_argument(std::string("flow config: not valid JSON: ") + e.what());
    }
    if (!j.is_object())
        throw std::invalid_argument("flow config: expected a JSON object");
    auto it = j.find("family");
    if (it == j.end() || it->is_null())
        return AugmentedCouplingFlowModel::familyName();
    if (!it->is_string())
        throw std::invalid_argument("flow config: key 'family' must be a string (got " + it->dump() + ")");
    return it->get<std::string>();
}

void requireOpenMMUnits(const Model& model, const std::string& context) {
    const nlohmann::json config = nlohmann::json::parse(model.configJson());
    const std::string lengthUnit = config.value("length_unit", "nm");
    if (lengthUnit != "nm" || model.dim() != 3)
        throw std::invalid_argument(context + ": an OpenMM System needs a 3-D model in nm (this one: " +
                                    std::to_string(model.dim()) + "-D, " + lengthUnit + ")");
}

std::shared_ptr<Model> makeModel(const std::string& configJson) {
    applyThreadPolicy();
    const std::string family = modelFamilyOf(configJson);
    if (family == AugmentedCouplingFlowModel::familyName())
        return std::make_shared<AugmentedCouplingFlowModel>(AugmentedCouplingFlow(FlowConfig::fromJson(configJson)));
    if (family == InternalCoordinateFlowModel::familyName())
        return std::make_shared<InternalCoordinateFlowModel>(
            InternalCoordinateFlow(InternalCoordinateFlowConfig::fromJson(configJson)));
    if (family == EquivariantCnfModel::familyName())
        return std::make_shared<EquivariantCnfModel>(EquivariantCnfConfig::fromJson(configJson));
    throw std::invalid_argument("flow config: unknown family \"" + family + "\" (known: \"eacf\", \"ic\", \"ecnf\")");
}

}  // namespace OpenMMBG
