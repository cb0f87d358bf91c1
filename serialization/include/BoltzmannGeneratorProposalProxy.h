#pragma once
/**
 * XML serialization of BoltzmannGeneratorProposal (OpenMM's XmlSerializer). The node carries an
 * integer "version" (currently 1); readers accept every older version. The model file's bytes are
 * embedded base64-encoded, so a serialized System is self-contained.
 */
#include "openmm/serialization/SerializationProxy.h"

namespace OpenMMBG {

class BoltzmannGeneratorProposalProxy : public OpenMM::SerializationProxy {
public:
    BoltzmannGeneratorProposalProxy();
    void serialize(const void* object, OpenMM::SerializationNode& node) const override;
    void* deserialize(const OpenMM::SerializationNode& node) const override;
};

}  // namespace OpenMMBG
