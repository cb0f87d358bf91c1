// SWIG interface of the OpenMM-facing classes (BoltzmannGeneratorProposal). It imports OpenMM's
// own SWIG interface from the openmm wheel, so the wrapped Force is an openmm.Force: it can be
// added with System.addForce, serialized with XmlSerializer and recovered with cast().
%module(package="openmmbg") openmmbg_force

%import(module="openmm") "swig/OpenMMSwigHeaders.i"
%include "swig/typemaps.i"
%include <std_string.i>
%include <std_vector.i>
%template(IntVector) std::vector<int>;
%template(DoubleVector) std::vector<double>;

%{
#include "BoltzmannGeneratorProposal.h"
#include "ReplicaExchange.h"
#include "OpenMM.h"
#include "OpenMMAmoeba.h"
#include "OpenMMDrude.h"
#include "openmm/RPMDIntegrator.h"
#include "openmm/RPMDMonteCarloBarostat.h"
%}

// Errors surface as OpenMM's own do: its wrappers raise every C++ exception as openmm.OpenMMException
// (a subclass of Exception). The plugin throws OpenMM::OpenMMException for bad argument values too
// (a negative frequency, a missing model file), so the type cannot single those out as ValueError.
%{
namespace {

/** Sets openmm.OpenMMException with this message (or the error of importing it). */
void setOpenMMException(const char* message) {
    PyObject* openmm = PyImport_ImportModule("openmm");
    PyObject* type = openmm != nullptr ? PyObject_GetAttrString(openmm, "OpenMMException") : nullptr;
    Py_XDECREF(openmm);
    if (type == nullptr)
        return;
    PyErr_SetString(type, message);
    Py_DECREF(type);
}

}  // namespace
%}

%exception {
    try {
        $action
    } catch (const std::exception& e) {
        setOpenMMException(e.what());
        SWIG_fail;
    } catch (...) {
        setOpenMMException("unknown C++ exception in openmmbg");
        SWIG_fail;
    }
}

// Integer arguments are checked in Python before SWIG converts them to C++ int, so a value beyond
// int's range (e.g. a particle index 2**40) is the plugin's own clear error, not SWIG's TypeError.
%pythoncode %{
def _checked_int(value, what, minimum, maximum=2**31 - 1):
    import operator
    import openmm as _mm
    try:
        value = operator.index(value)
    except TypeError:
        raise _mm.OpenMMException(f"BoltzmannGeneratorProposal: {what} must be an integer (got {value!r})") from None
    if not minimum <= value <= maximum:
        raise _mm.OpenMMException(
            f"BoltzmannGeneratorProposal: {what} must be in [{minimum}, {maximum}] (got {value})")
    return value
%}
%pythonprepend OpenMMBG::BoltzmannGeneratorProposal::setParticles %{
    indices = [_checked_int(i, "a particle index", 0) for i in indices]
%}
%pythonprepend OpenMMBG::BoltzmannGeneratorProposal::setFrequency %{
    steps = _checked_int(steps, "the frequency (steps)", 0)
%}
%pythonprepend OpenMMBG::BoltzmannGeneratorProposal::setNumProposals %{
    n = _checked_int(n, "the number of proposals", 1)
%}
%pythonprepend OpenMMBG::BoltzmannGeneratorProposal::setRandomNumberSeed %{
    seed = _checked_int(seed, "the random number seed", -2**31)
%}
%pythonprepend OpenMMBG::BoltzmannGeneratorProposal::addChiralCenter %{
    a, b, c, d = (_checked_int(i, "a chiral centre's particle index", 0) for i in (a, b, c, d))
%}
%feature("pythonprepend") OpenMMBG::BoltzmannGeneratorProposal::BoltzmannGeneratorProposal(const std::string& modelFile) %{
    import os as _os
    if isinstance(modelFile, _os.PathLike):
        modelFile = _os.fspath(modelFile)
%}

%pythonprepend OpenMMBG::BoltzmannGeneratorProposal::setTemperature %{
    import openmm.unit as _unit
    if _unit.is_quantity(kelvin):
        kelvin = kelvin.value_in_unit(_unit.kelvin)
%}

// As OpenMM's own getters (LangevinIntegrator.getTemperature()): the temperature comes back as an
// openmm.unit.Quantity in kelvin, the unit setTemperature takes.
%pythonappend OpenMMBG::BoltzmannGeneratorProposal::getTemperature %{
    import openmm.unit as _unit
    val = _unit.Quantity(val, _unit.kelvin)
%}

namespace OpenMMBG {

class BoltzmannGeneratorProposal : public OpenMM::Force {
public:
    static const std::string& Temperature();
    explicit BoltzmannGeneratorProposal(const std::string& modelFile);
    int getNumModelParticles() const;
    const std::vector<int>& getParticles() const;
    void setParticles(const std::vector<int>& indices);
    int getFrequency() const;
    void setFrequency(int steps);
    double getTemperature() const;
    void setTemperature(double kelvin);
    int getNumProposals() const;
    void setNumProposals(int n);
    int getRandomNumberSeed() const;
    void setRandomNumberSeed(int seed);
    bool getRedrawVelocities() const;
    void setRedrawVelocities(bool redraw);
    int addChiralCenter(int a, int b, int c, int d);
    long long getNumProposed(const OpenMM::Context& context) const;
    long long getNumAccepted(const OpenMM::Context& context) const;
    double getLastLogAcceptanceRatio(const OpenMM::Context& context) const;
    bool usesPeriodicBoundaryConditions() const;
};

}  // namespace OpenMMBG

%extend OpenMMBG::BoltzmannGeneratorProposal {
    /** Replace the chiral centres by quadruples given as a flat list [a0, b0, c0, d0, a1, ...]. */
    void _setChiralCentersFlat(const std::vector<int>& flat) {
        if (flat.size() % 4 != 0)
            throw OpenMM::OpenMMException("BoltzmannGeneratorProposal: chiral centres need four indices each");
        std::vector<std::array<int, 4>> centers;
        for (size_t i = 0; i < flat.size(); i += 4)
            centers.push_back({flat[i], flat[i + 1], flat[i + 2], flat[i + 3]});
        $self->setChiralCenters(centers);
    }
    /** The chiral centres as a flat list [a0, b0, c0, d0, a1, ...]. */
    std::vector<int> _getChiralCentersFlat() const {
        std::vector<int> flat;
        for (const auto& c : $self->getChiralCenters())
            flat.insert(flat.end(), c.begin(), c.end());
        return flat;
    }
    /** Recover a BoltzmannGeneratorProposal from an openmm.Force (e.g. after deserialization). */
    static OpenMMBG::BoltzmannGeneratorProposal& cast(OpenMM::Force& force) {
        auto* p = dynamic_cast<OpenMMBG::BoltzmannGeneratorProposal*>(&force);
        if (p == nullptr)
            throw OpenMM::OpenMMException("BoltzmannGeneratorProposal.cast: the Force is not a BoltzmannGeneratorProposal");
        return *p;
    }
    /** Whether an openmm.Force is a BoltzmannGeneratorProposal. */
    static bool isinstance(OpenMM::Force& force) {
        return dynamic_cast<OpenMMBG::BoltzmannGeneratorProposal*>(&force) != nullptr;
    }
    %pythoncode %{
    def setChiralCenters(self, centers):
        """Set the chiral centres: quadruples (a, b, c, d) of particle indices whose signed volume
        must keep its sign (proposals flipping one are rejected)."""
        flat = [_checked_int(i, "a chiral centre's particle index", 0) for center in centers for i in center]
        if any(len(center) != 4 for center in centers):
            raise ValueError("each chiral centre needs exactly four particle indices")
        self._setChiralCentersFlat(flat)

    def getChiralCenters(self):
        """The chiral centres as a list of (a, b, c, d) tuples."""
        flat = list(self._getChiralCentersFlat())
        return [tuple(flat[i:i + 4]) for i in range(0, len(flat), 4)]
    %}
}



// ---- ReplicaExchange (the Python class openmmbg.ReplicaExchange wraps it with units) ----
%nodefaultctor OpenMMBG::ReplicaExchange;
namespace OpenMMBG {

class ReplicaExchange {
public:
    ~ReplicaExchange();
    void run(long long totalExchanges);
    int getNumReplicas() const;
    long long getNumExchanges() const;
    long long getNumSwapsAttempted(int pair) const;
    long long getNumSwapsAccepted(int pair) const;
    OpenMM::Context& getContext(int replica);
    double getPotentialEnergy(int replica) const;
    long long getNumProposed(int replica) const;
    long long getNumProposalsAccepted(int replica) const;
    std::string getStatisticsJson() const;
};

}  // namespace OpenMMBG

%newobject _newReplicaExchange;
%inline %{
/** Builds a ReplicaExchange from plain values (flat positions in nm, K, ps, 1/ps); see openmmbg.ReplicaExchange. */
OpenMMBG::ReplicaExchange* _newReplicaExchange(const OpenMM::System& system, const std::vector<double>& flatPositions,
                                               const std::vector<double>& temperatures, const std::string& outputDirectory,
                                               double timestep, double friction, int stepsPerExchange,
                                               int exchangesPerFrame, int exchangesPerCheckpoint,
                                               const std::string& platform, const std::string& precision, int seed) {
    OpenMMBG::ReplicaExchangeOptions o;
    o.temperatures = temperatures;
    o.outputDirectory = outputDirectory;
    o.timestep = timestep;
    o.friction = friction;
    o.stepsPerExchange = stepsPerExchange;
    o.exchangesPerFrame = exchangesPerFrame;
    o.exchangesPerCheckpoint = exchangesPerCheckpoint;
    o.platform = platform;
    if (!precision.empty())
        o.platformProperties["Precision"] = precision;
    o.randomSeed = seed;
    if (flatPositions.size() % 3 != 0)
        throw OpenMM::OpenMMException("ReplicaExchange: positions must have three coordinates each");
    std::vector<OpenMM::Vec3> positions;
    for (size_t i = 0; i < flatPositions.size(); i += 3)
        positions.emplace_back(flatPositions[i], flatPositions[i + 1], flatPositions[i + 2]);
    return new OpenMMBG::ReplicaExchange(system, positions, o);
}
%}
