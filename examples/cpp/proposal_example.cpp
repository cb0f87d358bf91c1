// BoltzmannGeneratorProposal from C++: four particles in a harmonic well, Langevin dynamics with a
// flow proposal every 10 steps.
//
//   build-ex/proposal_example [model.bgm]
//
// Without an argument the program saves an untrained 4-particle 3-D float64 flow to a temporary
// file and uses it. An untrained flow starts as the identity, so q(x) is the zero-centroid standard
// Gaussian (1 nm per coordinate). With the well stiffness k = kT / nm^2 used here, that is exactly
// the Boltzmann distribution of the well given the centroid, so every proposal is accepted
// (log alpha = 0 up to rounding). A model given on the command line must describe 4 particles in
// 3-D, in nm.
#include "BoltzmannGeneratorProposal.h"
#include "openmmbg/FlowModel.h"

#include "OpenMM.h"

#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

// The plugin's entry point (libOpenMMBGReference, linked): registers the Reference/CPU kernel.
// Instead, a program that does not link the plugin can call
// OpenMM::Platform::loadPluginsFromDirectory("<build>/plugins").
extern "C" void registerKernelFactories();

using namespace OpenMM;

// Boltzmann's constant in kJ/mol/K (CODATA 2018), the value OpenMM and the plugin use.
const double BOLTZMANN = 1.380649e-23 * 6.02214076e23 / 1000.0;

int main(int argc, char** argv) {
    try {
        std::string model;
        if (argc > 1) {
            model = argv[1];
        } else {
            model = (std::filesystem::temp_directory_path() / "openmmbg_proposal_example.bgm").string();
            OpenMMBG::FlowModel(R"({"num_particles": 4, "dim": 3, "projection": "spherical", "num_layers": 2, "dtype": "float64"})")
                .save(model);
        }
        registerKernelFactories();

        const double temperature = 300.0;                        // K
        const double kT = BOLTZMANN * temperature;               // kJ/mol
        const double k = kT;                                     // kJ/mol/nm^2
        System system;
        auto* well = new CustomExternalForce("0.5*k*(x^2+y^2+z^2)");
        well->addGlobalParameter("k", k);
        for (int i = 0; i < 4; i++) {
            system.addParticle(12.0);  // amu
            well->addParticle(i);
        }
        system.addForce(well);

        auto* move = new OpenMMBG::BoltzmannGeneratorProposal(model);  // the System owns it
        move->setFrequency(10);          // steps between attempts
        move->setNumProposals(4);        // proposals per attempt
        move->setTemperature(temperature);
        move->setRandomNumberSeed(42);   // 0 (the default) would seed from the clock
        system.addForce(move);

        LangevinMiddleIntegrator integrator(temperature, 1.0, 0.002);  // K, 1/ps, ps
        integrator.setRandomNumberSeed(42);
        Context context(system, integrator, Platform::getPlatformByName("Reference"));
        context.setPositions({Vec3(0.3, 0.1, -0.2), Vec3(-0.4, 0.2, 0.1), Vec3(0.1, -0.5, 0.3), Vec3(0.2, 0.3, -0.1)});
        context.setVelocitiesToTemperature(temperature, 42);
        std::printf("model %s: %d particles; the Context parameter %s = %g K\n", model.c_str(),
                    move->getNumModelParticles(), OpenMMBG::BoltzmannGeneratorProposal::Temperature().c_str(),
                    context.getParameter(OpenMMBG::BoltzmannGeneratorProposal::Temperature()));

        // The spread sum_i |x_i - centroid|^2 has the exact average 3 (N - 1) kT / k = 9 nm^2.
        // One sample after every 10 steps (one proposal attempt each).
        double spread = 0;
        const int samples = 200, stepsPerSample = 10;
        for (int s = 1; s <= samples; s++) {
            integrator.step(stepsPerSample);
            State state = context.getState(State::Positions | State::Energy);
            const std::vector<Vec3>& x = state.getPositions();
            const Vec3 c = (x[0] + x[1] + x[2] + x[3]) * 0.25;
            for (const Vec3& p : x)
                spread += (p - c).dot(p - c) / samples;
            if (s % 50 == 0)
                std::printf("step %5d  potential energy %8.3f kJ/mol  proposed %3lld  accepted %3lld  last log alpha %.3g\n",
                            s * stepsPerSample, state.getPotentialEnergy(), move->getNumProposed(context),
                            move->getNumAccepted(context), move->getLastLogAcceptanceRatio(context));
        }
        const long long proposed = move->getNumProposed(context), accepted = move->getNumAccepted(context);
        std::printf("proposed %lld, accepted %lld (acceptance %.3f)\n", proposed, accepted,
                    proposed > 0 ? double(accepted) / proposed : 0.0);
        std::printf("mean spread sum_i |x_i - centroid|^2 = %.2f nm^2 over %d samples (exact 9)\n", spread, samples);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "proposal_example: %s\n", e.what());
        return 1;
    }
}
