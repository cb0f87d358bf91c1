#include "molecule.h"

#include "openmmbg/ic/InternalCoordinates.h"
#include "openmmbg/io/Files.h"

#include <OpenMM.h>

#include <memory>
#include <set>
#include <sstream>

namespace OpenMMBG::Cli {

nlohmann::json zmatrixOfSystemFile(const std::string& path) {
    std::unique_ptr<OpenMM::System> system;
    try {
        std::istringstream in(readFileBytes(path));
        system.reset(OpenMM::XmlSerializer::deserialize<OpenMM::System>(in));
    } catch (const OpenMM::OpenMMException& e) {
        throw std::runtime_error("'" + path + "' is not an OpenMM System XML file: " + e.what());
    }
    const int n = system->getNumParticles();
    std::set<std::pair<int64_t, int64_t>> bonds;
    auto add = [&](int i, int j) { bonds.insert({std::min(i, j), std::max(i, j)}); };
    for (int f = 0; f < system->getNumForces(); f++)
        if (auto* harmonic = dynamic_cast<const OpenMM::HarmonicBondForce*>(&system->getForce(f)))
            for (int b = 0; b < harmonic->getNumBonds(); b++) {
                int i, j;
                double length, k;
                harmonic->getBondParameters(b, i, j, length, k);
                add(i, j);
            }
    for (int c = 0; c < system->getNumConstraints(); c++) {
        int i, j;
        double distance;
        system->getConstraintParameters(c, i, j, distance);
        add(i, j);
    }
    std::vector<bool> heavy(n);
    for (int i = 0; i < n; i++)
        heavy[i] = system->getParticleMass(i) >= kHydrogenMassLimit;
    try {
        ZMatrix zmatrix = ZMatrix::fromBonds(n, std::vector<std::pair<int64_t, int64_t>>(bonds.begin(), bonds.end()), heavy);
        nlohmann::json rows = nlohmann::json::array();
        for (const ZMatrixRow& r : zmatrix.rows())
            rows.push_back({r.atom, r.bond, r.angle, r.dihedral});
        return rows;
    } catch (const std::invalid_argument& e) {
        throw std::runtime_error("the molecule of '" + path + "': " + e.what());
    }
}

}  // namespace OpenMMBG::Cli
