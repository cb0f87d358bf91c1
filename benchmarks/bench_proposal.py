"""Cost of one BoltzmannGeneratorProposal proposal against one MD step.

    OMP_NUM_THREADS=1 scripts/python benchmarks/bench_proposal.py [--platform Reference] [--precision single]

For an LJ13-sized system (13 particles, LJ + tether custom forces, the default E-ACF architecture)
and an alanine-dipeptide-sized one (../shared/data/aldp, OBC1, 22 atoms; the paper's alanine
architecture: 20 blocks, EGNN MLPs [128, 128], float64): times plain Langevin MD steps, then the
same steps with one proposal per step, and reports the extra time per proposal as a ratio to the
plain MD step measured in the same run. Untrained flows: the cost does not depend on the weights.
"""
import argparse
import os
import tempfile
import time

import numpy as np
import openmm as mm
import openmm.app as app
import openmm.unit as unit

import openmmbg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def lj13_system():
    system = mm.System()
    pair = mm.CustomNonbondedForce("2*((1/r)^12 - 2*(1/r)^6)")
    pair.setNonbondedMethod(mm.CustomNonbondedForce.NoCutoff)
    tether = mm.CustomCentroidBondForce(2, "0.5*distance(g1,g2)^2")
    everyone = tether.addGroup(list(range(13)), [1.0] * 13)
    for i in range(13):
        system.addParticle(1.0)
        pair.addParticle([])
        tether.addBond([tether.addGroup([i], [1.0]), everyone], [])
    system.addForce(pair)
    system.addForce(tether)
    rng = np.random.default_rng(0)
    positions = rng.standard_normal((13, 3)) * 0.6
    config = {"num_particles": 13, "dim": 3, "projection": "spherical", "temperature": 120.27}
    return system, positions, config, 120.27


def aldp_system():
    prmtop = app.AmberPrmtopFile(os.path.join(ROOT, "..", "shared", "data", "aldp", "alanine-dipeptide-implicit.prmtop"))
    inpcrd = app.AmberInpcrdFile(os.path.join(ROOT, "..", "shared", "data", "aldp", "alanine-dipeptide-implicit.inpcrd"))
    system = prmtop.createSystem(implicitSolvent=app.OBC1, constraints=None, nonbondedMethod=app.NoCutoff)
    positions = inpcrd.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    config = {"num_particles": 22, "dim": 3, "projection": "spherical", "num_layers": 20,
              "egnn_mlp_units": [128, 128], "dtype": "float64", "aug_scale": 0.5, "atom_types": list(range(22)),
              "temperature": 300.0}
    return system, positions, config, 300.0


def time_steps(system, positions, temperature, platform, properties, steps):
    integrator = mm.LangevinMiddleIntegrator(temperature, 1.0, 0.001)
    context = mm.Context(system, integrator, mm.Platform.getPlatformByName(platform), properties)
    context.setPositions(positions)
    integrator.step(5)
    context.getState(getPositions=True)  # GPU platforms queue work: time only finished steps
    start = time.perf_counter()
    integrator.step(steps)
    context.getState(getPositions=True)
    return (time.perf_counter() - start) / steps, context


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--platform", default="Reference")
    p.add_argument("--precision", default=None, help="OpenCL/CUDA precision: single, mixed or double")
    args = p.parse_args()
    properties = {"Precision": args.precision} if args.precision else {}
    label = args.platform + (f" ({args.precision})" if args.precision else "")
    print(f"| system | platform | MD step | MD step + 1 proposal | proposal / MD step |")
    print("|---|---|--:|--:|--:|")
    for name, build, steps, proposal_steps in (("LJ13", lj13_system, 2000, 20), ("ALDP (OBC1)", aldp_system, 500, 3)):
        system, positions, config, temperature = build()
        md, _ = time_steps(system, positions, temperature, args.platform, properties, steps)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.bgm")
            openmmbg.Flow(config).save(path)
            move = openmmbg.BoltzmannGeneratorProposal(path)
            move.setFrequency(1)
            move.setTemperature(temperature)
            system.addForce(move)
            with_move, context = time_steps(system, positions, temperature, args.platform, properties, proposal_steps)
            assert move.getNumProposed(context) == proposal_steps + 5
        proposal = with_move - md
        print(f"| {name} | {label} | {md * 1e3:.3f} ms | {with_move * 1e3:.1f} ms | {proposal / md:.0f} |")


if __name__ == "__main__":
    main()
