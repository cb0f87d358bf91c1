"""Alanine dipeptide at 300 K: Langevin MD with Boltzmann-generator proposals.

    scripts/python examples/aldp_md_with_proposals.py [--model PATH] [--minutes M] [--frequency STEPS]

Loads a trained 22-atom flow (default: the shipped models/pretrained/aldp-ic-fab.bgm), builds
the System of ../shared/data/aldp with the implicit solvent the model was trained with (its .json
says which; OBC1 otherwise), adds a BoltzmannGeneratorProposal that every --frequency steps draws --proposals independent flow
samples and accepts or rejects each in turn by Metropolis-Hastings against OpenMM's energy
(with the alpha carbon's chirality guard, so proposals stay L-alanine), and runs LangevinMiddle MD
(1 fs, friction 1/ps, no constraints, as the training data) for --minutes of wall time. It prints
the proposal counters every 10 ps (an openmmbg.ProposalReporter in simulation.reporters), then the
acceptance rate, the populations of the backbone basins and P(phi > 0) (next to the model's reference
value, when its .json has one; with --plain-md also plain MD's over the same wall time), and writes
the Ramachandran plot of the
run (PNG) and a JSON summary.

The flow runs on LibTorch's threads; OMP_NUM_THREADS=1 is fastest on a busy machine.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import openmm as mm
import openmm.app as app
import openmm.unit as unit

import openmmbg
from openmmbg import alanine_dipeptide as aldp

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
DEFAULT_MODEL = os.path.join(ROOT, "models", "pretrained", "aldp-ic-fab.bgm")


def wilson_interval(k, n, z=1.96):
    """95% interval of a binomial rate k/n (Wilson score)."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def batch_means(values, batches=20):
    """Mean of `values` and its standard error from `batches` batch means (NaN with too few values)."""
    values = np.asarray(values, dtype=np.float64)
    size = len(values) // batches
    if size == 0:
        return float(values.mean()) if len(values) else float("nan"), float("nan")
    means = values[: size * batches].reshape(batches, size).mean(axis=1)
    return float(values.mean()), float(means.std(ddof=1) / np.sqrt(batches))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="a 22-atom .bgm model, lengths in nm (default %(default)s)")
    parser.add_argument("--minutes", type=float, default=3.0, help="wall time of the MD run (default %(default)s)")
    parser.add_argument("--frequency", type=int, default=50, help="MD steps between proposal attempts (default %(default)s)")
    # 16 flow samples per attempt: one batched flow call costs about as much as one sample (LibTorch's
    # per-call overhead dominates), and 16 Metropolis-Hastings steps in turn move the chain about 3x
    # as often per second as one (docs/alanine-dipeptide.md).
    parser.add_argument("--proposals", type=int, default=16, help="flow samples per attempt (default %(default)s)")
    parser.add_argument("--temperature", type=float, default=300.0, help="K (default %(default)s)")
    # Reference: for these 22 atoms about 4x the CPU platform's steps per second on one thread.
    parser.add_argument("--platform", default="Reference", help="OpenMM platform (default %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the proposals and the integrator (default %(default)s)")
    parser.add_argument("--plain-md", action="store_true",
                        help="then run plain MD (no proposals) for the same wall time and print its P(phi > 0) too")
    parser.add_argument("--output", default=os.path.join("runs", "main", "aldp-md-with-proposals"),
                        help="path prefix of the .png and .json written (default %(default)s)")
    args = parser.parse_args()
    if args.minutes <= 0 or args.frequency < 1 or args.proposals < 1:
        parser.error("--minutes, --frequency and --proposals must be positive")
    if not os.path.isfile(args.model):
        print(f"aldp_md_with_proposals: no model at {args.model} (train one with scripts/train-aldp.sh)", file=sys.stderr)
        return 1

    meta = aldp.model_metadata(args.model)
    solvent = meta.get("implicit_solvent", "OBC1")
    system, topology, positions = aldp.create_system(solvent)
    temperature = args.temperature * unit.kelvin

    move = openmmbg.BoltzmannGeneratorProposal(args.model)
    if move.getNumModelParticles() != aldp.NUM_ATOMS:
        print(f"aldp_md_with_proposals: {args.model} describes {move.getNumModelParticles()} particles, "
              f"alanine dipeptide has {aldp.NUM_ATOMS}", file=sys.stderr)
        return 1
    move.setFrequency(args.frequency)
    move.setNumProposals(args.proposals)
    move.setTemperature(temperature)
    move.setRandomNumberSeed(args.seed)
    move.setChiralCenters([aldp.CHIRAL_CENTER])  # reject D-alanine proposals
    system.addForce(move)

    integrator = mm.LangevinMiddleIntegrator(temperature, 1 / unit.picosecond, 1 * unit.femtosecond)
    integrator.setRandomNumberSeed(args.seed)
    simulation = app.Simulation(topology, system, integrator, mm.Platform.getPlatformByName(args.platform))
    simulation.context.setPositions(positions)
    simulation.context.setVelocitiesToTemperature(temperature, args.seed)
    print(f"model {os.path.relpath(args.model)} ({meta.get('implicit_solvent', 'OBC1 (assumed)')}, trained at "
          f"{meta.get('temperature', '?')} K); MD at {args.temperature} K on {args.platform}, {args.proposals} "
          f"proposal(s) every {args.frequency} steps, {args.minutes} min of wall time")

    # Progress: the proposal counters every 10 ps (every few seconds on one core), as CSV on stdout.
    report_interval = max(1, 10000 // args.frequency) * args.frequency
    simulation.reporters.append(openmmbg.ProposalReporter(sys.stdout, report_interval, move))
    phi, psi = [], []
    start = time.perf_counter()
    steps = 0
    while time.perf_counter() - start < 60 * args.minutes:
        simulation.step(args.frequency)
        steps += args.frequency
        x = simulation.context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        f, s = aldp.phi_psi(x[None])
        phi.append(f[0])
        psi.append(s[0])

    wall = time.perf_counter() - start
    proposed, accepted = move.getNumProposed(simulation.context), move.getNumAccepted(simulation.context)
    rate = accepted / proposed if proposed else float("nan")
    low, high = wilson_interval(accepted, proposed)
    phi, psi = np.array(phi), np.array(psi)
    populations = aldp.basin_populations(phi, psi)
    print(f"\n{steps} MD steps ({steps / 1000:.1f} ps) in {wall:.0f} s; proposed {proposed}, accepted {accepted}: "
          f"acceptance rate {rate:.4f} (95% interval {low:.4f}-{high:.4f})")
    print(f"basin populations over {len(phi)} frames (one every {args.frequency} steps):")
    for name, fraction in populations.items():
        print(f"  {name:34s} {fraction:.3f}")
    p_phi, p_phi_sem = batch_means(phi > 0)
    line = f"P(phi > 0) = {p_phi:.4f} +- {p_phi_sem:.4f} (batch means)"
    reference = meta.get("phi_positive_reference")
    if reference:
        line += f"; reference {reference['value']:.4f} +- {reference['sem']:.4f} ({reference['source']})"
    print(line)
    plain = None
    if args.plain_md:
        plain_system, _, _ = aldp.create_system(solvent)
        plain_integrator = mm.LangevinMiddleIntegrator(temperature, 1 / unit.picosecond, 1 * unit.femtosecond)
        plain_integrator.setRandomNumberSeed(args.seed)
        context = mm.Context(plain_system, plain_integrator, mm.Platform.getPlatformByName(args.platform))
        context.setPositions(positions)
        context.setVelocitiesToTemperature(temperature, args.seed)
        plain_phi, plain_steps, start = [], 0, time.perf_counter()
        while time.perf_counter() - start < wall:  # the same wall time as MD with proposals
            plain_integrator.step(args.frequency)
            plain_steps += args.frequency
            x = context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
            plain_phi.append(aldp.phi_psi(x[None])[0][0])
        plain_p, plain_sem = batch_means(np.array(plain_phi) > 0)
        plain = {"md_steps": plain_steps, "phi_positive": plain_p, "phi_positive_sem": plain_sem}
        print(f"plain MD, same wall time ({plain_steps / 1000:.1f} ps): P(phi > 0) = {plain_p:.4f} +- {plain_sem:.4f}")

    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    aldp.plot_ramachandran([(f"MD + proposals, {steps / 1000:.0f} ps", phi, psi)], args.output + ".png")
    summary = {"model": args.model, "implicit_solvent": solvent, "temperature": args.temperature,
               "frequency": args.frequency, "proposals_per_attempt": args.proposals, "seed": args.seed,
               "platform": args.platform, "wall_time_s": wall, "md_steps": steps, "proposed": proposed,
               "accepted": accepted, "acceptance_rate": rate, "acceptance_rate_95": [low, high],
               "basin_populations": populations, "phi_positive": p_phi, "phi_positive_sem": p_phi_sem,
               "plain_md": plain}
    with open(args.output + ".json.tmp", "w") as f:
        json.dump(summary, f, indent=1)
    os.replace(args.output + ".json.tmp", args.output + ".json")
    print(f"wrote {args.output}.png and {args.output}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
