"""Alanine dipeptide at 300 K: how fast do MD with flow proposals, plain MD and replica exchange
(without proposals) estimate the phi > 0 population (the C7ax / alpha_L basins), on one core each?

    OMP_NUM_THREADS=1 scripts/python scripts/aldp_sampling_comparison.py --model models/pretrained/aldp-spherical.bgm \
        --reference ~/.local/share/openmmbg/aldp/train ~/.local/share/openmmbg/aldp/test --wall-time 600 --repeats 3 --output docs/figures/aldp-sampling

For every method and repeat (independent seeds) the script runs for --wall-time seconds of wall
time on one core (OpenMM CPU platform with one thread, LibTorch with one thread), starting from the
prmtop's structure, and records the running estimate p(t) of P(phi > 0) at 300 K. The reference
p_ref and its standard error come from long replica-exchange runs (--reference: `openmmbg remd`
folders whose trajectory_0.dcd holds 300 K frames, pooled after dropping the first 10% of each; standard error from
about 40 batch means of equal length). Output: <output>.json (the curves, p_ref, acceptance, the settings) and <output>.png
(root-mean-square error |p(t) - p_ref| over repeats against wall time, log-log). The speed-up of a
method over plain MD is the ratio of their mean squared errors at the final wall time (for
estimators whose variance falls as 1/t this is the ratio of the times needed for equal error); it is
reported whatever its sign.

Methods: "md" (LangevinMiddle, 1 fs, friction 1/ps), "md+proposals" (the same plus a
BoltzmannGeneratorProposal every --frequency steps with the alpha-carbon chirality guard), "remd"
(openmmbg.ReplicaExchange, 6 temperatures 300-600 K, 500 steps per exchange: the data generator's
settings; its 300 K replica only is used).
"""
import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("OPENMM_CPU_THREADS", "1")  # one core per method (read at Context creation)

import numpy as np
import openmm as mm
import openmm.unit as unit

import openmmbg
from openmmbg import alanine_dipeptide as aldp

TEMPERATURE = 300.0


def reference_population(folders, num_batches=40):
    """P(phi > 0) pooled over independent replica-exchange runs (first 10% of each dropped), and
    its standard error from batch means: batches of one common length, about num_batches in all,
    cut within each run (a run's remainder shorter than a batch counts in the mean only)."""
    indicators = []
    for folder in folders:
        frames = openmmbg.read_dcd(os.path.join(folder, "trajectory_0.dcd"))
        phi, _ = aldp.phi_psi(frames[len(frames) // 10:])
        indicators.append((phi > 0).astype(float))
    pooled = np.concatenate(indicators)
    length = max(1, len(pooled) // num_batches)
    means = np.array([x[k : k + length].mean() for x in indicators for k in range(0, len(x) - length + 1, length)])
    return float(pooled.mean()), float(means.std(ddof=1) / np.sqrt(len(means))), len(pooled)


def run_md(system, positions, wall_time, seed, sample_every, move=None):
    integrator = mm.LangevinMiddleIntegrator(TEMPERATURE * unit.kelvin, 1 / unit.picosecond, 1 * unit.femtosecond)
    integrator.setRandomNumberSeed(seed)
    context = mm.Context(system, integrator, mm.Platform.getPlatformByName("CPU"), {"Threads": "1"})
    context.setPositions(positions)
    context.setVelocitiesToTemperature(TEMPERATURE * unit.kelvin, seed)
    times, positive = [], []
    start = time.perf_counter()
    while time.perf_counter() - start < wall_time:
        integrator.step(sample_every)
        x = context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        times.append(time.perf_counter() - start)
        positive.append(float(aldp.phi_psi(x[None])[0][0] > 0))
    stats = {}
    if move is not None:
        stats = {"proposed": move.getNumProposed(context), "accepted": move.getNumAccepted(context)}
    return np.array(times), np.array(positive), stats


def run_remd(system, positions, wall_time, seed):
    times, positive = [], []
    with tempfile.TemporaryDirectory() as folder:
        remd = openmmbg.ReplicaExchange(system, positions, np.geomspace(300, 600, 6) * unit.kelvin, folder,
                                        timestep=1 * unit.femtosecond, steps_per_exchange=500,
                                        exchanges_per_checkpoint=1000000, platform="CPU", seed=seed)
        start = time.perf_counter()
        while time.perf_counter() - start < wall_time:
            remd._remd.run(remd.num_exchanges + 1)  # one attempt; no checkpoint until the end
            x = remd.context(0).getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
            times.append(time.perf_counter() - start)
            positive.append(float(aldp.phi_psi(x[None])[0][0] > 0))
        stats = {"swap_acceptance": remd.swap_acceptance}
    return np.array(times), np.array(positive), stats


def error_curve(times, positive, grid, p_ref):
    """|running mean - p_ref| at the grid's wall times (NaN before the first sample)."""
    running = np.cumsum(positive) / np.arange(1, len(positive) + 1)
    index = np.searchsorted(times, grid, side="right") - 1
    return np.where(index >= 0, np.abs(running[np.maximum(index, 0)] - p_ref), np.nan)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--reference", required=True, nargs="+",
                   help="openmmbg remd folder(s) with 300 K frames (trajectory_0.dcd); several are pooled")
    p.add_argument("--wall-time", type=float, default=600.0, help="seconds per method and repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--frequency", type=int, default=50, help="MD steps between proposal attempts")
    p.add_argument("--implicit-solvent", default="OBC1", choices=["OBC1", "OBC2"])
    p.add_argument("--methods", default="md,md+proposals,remd")
    p.add_argument("--output", required=True, help="path prefix for .json and .png")
    args = p.parse_args()

    p_ref, p_ref_sem, n_ref = reference_population(args.reference)
    print(f"[openmmbg] reference P(phi > 0) = {p_ref:.4f} +- {p_ref_sem:.4f} ({n_ref} frames)", file=sys.stderr)
    grid = np.geomspace(args.wall_time / 100, args.wall_time, 25)
    results = {"p_ref": p_ref, "p_ref_sem": p_ref_sem, "reference_frames": n_ref, "wall_time": args.wall_time,
               "repeats": args.repeats, "frequency": args.frequency, "model": args.model,
               "implicit_solvent": args.implicit_solvent, "grid": grid.tolist(), "methods": {}}
    for method in args.methods.split(","):
        curves, stats = [], []
        for repeat in range(args.repeats):
            system, _, positions = aldp.create_system(args.implicit_solvent)
            seed = 1000 + repeat
            if method == "remd":
                t, s, st = run_remd(system, positions, args.wall_time, seed)
            else:
                move = None
                if method == "md+proposals":
                    move = openmmbg.BoltzmannGeneratorProposal(args.model)
                    move.setFrequency(args.frequency)
                    move.setTemperature(TEMPERATURE * unit.kelvin)
                    move.setRandomNumberSeed(seed)
                    move.setChiralCenters([aldp.CHIRAL_CENTER])
                    system.addForce(move)
                t, s, st = run_md(system, positions, args.wall_time, seed, args.frequency, move)
            st.update({"samples": int(len(s)), "estimate": float(s.mean())})
            curves.append(error_curve(t, s, grid, p_ref))
            stats.append(st)
            print(f"[openmmbg] {method} repeat {repeat}: {json.dumps(st)}", file=sys.stderr)
        curves = np.array(curves)
        rms = np.sqrt(np.nanmean(curves**2, axis=0))
        results["methods"][method] = {"rms_error": rms.tolist(), "runs": stats}
    if "md" in results["methods"]:
        final_md = results["methods"]["md"]["rms_error"][-1]
        for method, r in results["methods"].items():
            r["speedup_vs_md"] = float(final_md**2 / r["rms_error"][-1] ** 2) if r["rms_error"][-1] > 0 else None
    with open(args.output + ".json.tmp", "w") as f:
        json.dump(results, f, indent=1)
    os.replace(args.output + ".json.tmp", args.output + ".json")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for method, r in results["methods"].items():
        ax.loglog(grid, r["rms_error"], label=method)
    ax.axhline(p_ref_sem, color="grey", ls=":", label="reference sem")
    ax.set_xlabel("wall time (s, one core)")
    ax.set_ylabel("rms |p(t) - p_ref|, P(phi > 0)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.output + ".png", dpi=110)
    print(json.dumps({m: {"final_rms_error": r["rms_error"][-1], "speedup_vs_md": r.get("speedup_vs_md")}
                      for m, r in results["methods"].items()}, indent=1))


if __name__ == "__main__":
    main()
