"""Alanine dipeptide at 300 K: the error of P(phi > 0) (the C7ax / alpha_L basins) against wall time,
on one core each, for plain MD, replica exchange and MD with Boltzmann-generator proposals.

    OMP_NUM_THREADS=1 scripts/python scripts/aldp_sampling_comparison.py \
        --models ic=models/pretrained/aldp-ic.bgm eacf=models/pretrained/aldp-spherical.bgm \
        --methods md,remd,md+ic,md+eacf --wall-time 300 --repeats 4 --work runs/aldp-comparison \
        --reference docs/figures/aldp-phi-reference.json --remd-run ~/.local/share/openmmbg/aldp-obc2/train \
        --output docs/figures/aldp-sampling

Every method and repeat (seed 1000 + repeat) runs for --wall-time seconds on one core (OpenMM's
Reference platform, the fastest here for 22 atoms: about 4x the CPU platform with one thread;
LibTorch with one thread) from the prmtop's structure, and records whether phi > 0 every
--frequency MD steps (after every exchange for replica exchange); p(t) is the running mean.
Methods: "md" (LangevinMiddle 300 K, 1 fs, 1/ps; the System of --implicit-solvent), "remd"
(openmmbg.ReplicaExchange, 6 temperatures 300-600 K, 500 steps per exchange: the data generator's
settings; its 300 K replica), and "md+NAME" for every --models NAME=PATH (the same MD plus a
BoltzmannGeneratorProposal every --frequency steps, --proposals flow samples per attempt, the
alpha-carbon chirality guard).

Each finished run is saved in --work (resumable; two invocations with disjoint --methods and
--run-only use both cores, a third with --analyse-only analyses what is there). The analysis judges against
--reference (the .json of scripts/aldp-umbrella-reference.py: umbrella sampling and MBAR,
independent of every method here). The time a method needs for a +-10 % relative error assumes
the 1/sqrt(t) law of a converging Monte Carlo average: t10 = T * MSE(T) / (0.1 p_ref)^2, with
MSE(T) the mean squared error against the reference of the repeats at their final time T
(model-free; it holds bias, the skew of estimates that rarely visit phi > 0 but then stay long,
and the reference's own error; with R repeats it is known to a factor of about 1 +- sqrt(2/R)).
The variance between repeats is reported beside: smaller than the MSE when every repeat misses the
same rare long visits. For replica exchange, whose
short runs see too few visits to phi > 0, --remd-run adds the long data-generation run (its
300 K frames, first 10 % dropped): the variance of its mean from 20 batch means, its wall time
from the cost per exchange measured here, t10 = t_run * var / (0.1 p_ref)^2. A method whose runs
entered phi > 0 fewer than 5 times in all has not begun to converge: its t10 is reported as a
lower bound. Output: <output>.json (curves, estimates, t10, speed-ups, settings) and <output>.png.
"""
import argparse
import json
import os
import sys
import tempfile
import time
import warnings

os.environ.setdefault("OPENMM_CPU_THREADS", "1")

import numpy as np
import openmm as mm
import openmm.unit as unit

import openmmbg
from openmmbg import alanine_dipeptide as aldp

TEMPERATURE = 300.0
MIN_ENTRIES = 5


def phi_positive(context):
    x = context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    return bool(aldp.dihedral(x[None], aldp.PHI_ATOMS)[0] > 0)


def md_context(implicit_solvent, platform, seed, model=None, frequency=50, proposals=16):
    """Langevin MD of alanine dipeptide at 300 K from the prmtop's structure, with a
    BoltzmannGeneratorProposal of `model` (chirality guard on) when one is given: (context, move or None)."""
    system, _, positions = aldp.create_system(implicit_solvent)
    move = None
    if model is not None:
        move = openmmbg.BoltzmannGeneratorProposal(model)
        move.setFrequency(frequency)
        move.setNumProposals(proposals)
        move.setTemperature(TEMPERATURE * unit.kelvin)
        move.setRandomNumberSeed(seed)
        move.setChiralCenters([aldp.CHIRAL_CENTER])
        system.addForce(move)
    integrator = mm.LangevinMiddleIntegrator(TEMPERATURE * unit.kelvin, 1 / unit.picosecond, 1 * unit.femtosecond)
    integrator.setRandomNumberSeed(seed)
    context = mm.Context(system, integrator, mm.Platform.getPlatformByName(platform))
    context.setPositions(positions)
    context.setVelocitiesToTemperature(TEMPERATURE * unit.kelvin, seed)
    return context, move


def run_md(args, seed, model=None):
    context, move = md_context(args.implicit_solvent, args.platform, seed, model, args.frequency, args.proposals)
    integrator = context.getIntegrator()
    times, positive = [], []
    start = time.perf_counter()
    while time.perf_counter() - start < args.wall_time:
        integrator.step(args.frequency)
        times.append(time.perf_counter() - start)
        positive.append(phi_positive(context))
    stats = {"md_steps": len(times) * args.frequency}
    if move is not None:
        stats.update(proposed=move.getNumProposed(context), accepted=move.getNumAccepted(context))
    return times, positive, stats


def run_remd(args, seed):
    system, _, positions = aldp.create_system(args.implicit_solvent)
    times, positive = [], []
    with tempfile.TemporaryDirectory() as folder:
        remd = openmmbg.ReplicaExchange(system, positions, np.geomspace(300, 600, 6) * unit.kelvin, folder,
                                        timestep=1 * unit.femtosecond, steps_per_exchange=500,
                                        exchanges_per_checkpoint=10**9, platform=args.platform, seed=seed)
        start = time.perf_counter()
        while time.perf_counter() - start < args.wall_time:
            remd._remd.run(remd.num_exchanges + 1)  # one attempt, no checkpoint
            times.append(time.perf_counter() - start)
            positive.append(phi_positive(remd.context(0)))
        stats = {"exchanges": len(times), "swap_acceptance": list(remd.swap_acceptance)}
    return times, positive, stats


def run_path(work, method, repeat):
    return os.path.join(work, f"{method.replace('+', '-')}-repeat{repeat}.json")


def run_missing(args, models):
    os.makedirs(args.work, exist_ok=True)
    for method in args.methods:
        for repeat in range(args.repeats):
            path = run_path(args.work, method, repeat)
            if os.path.exists(path):
                continue
            seed = 1000 + repeat
            if method == "remd":
                times, positive, stats = run_remd(args, seed)
            else:
                times, positive, stats = run_md(args, seed, models[method[3:]] if method != "md" else None)
            record = {"method": method, "repeat": repeat, "seed": seed, "wall_time": args.wall_time,
                      "platform": args.platform, "frequency": args.frequency, "proposals": args.proposals,
                      "implicit_solvent": args.implicit_solvent, "model": models.get(method[3:]),
                      "stats": stats, "times": times, "positive": [int(s) for s in positive]}
            with open(path + ".tmp", "w") as f:
                json.dump(record, f)
            os.replace(path + ".tmp", path)
            p = np.array(positive, float)
            print(f"[openmmbg] {method} repeat {repeat}: P(phi > 0) = {p.mean():.5f}, "
                  f"{int((np.diff(p) > 0).sum())} entries, {json.dumps(stats)}", file=sys.stderr, flush=True)


def batch_means_variance(s, num_batches=20):
    """Variance of the mean of a correlated series from batch means (0 for a constant series)."""
    num_batches = min(num_batches, len(s))
    length = len(s) // num_batches
    means = s[: length * num_batches].reshape(num_batches, length).mean(axis=1)
    return float(means.var(ddof=1) / num_batches) if num_batches > 1 else float("nan")


def long_remd_variance(folder, seconds_per_exchange, num_batches=20):
    """Variance of the mean of a long replica-exchange run's 300 K indicator (batch means), its wall time."""
    frames = openmmbg.read_dcd(os.path.join(folder, "trajectory_0.dcd"))
    s = (aldp.phi_psi(frames[len(frames) // 10:])[0] > 0).astype(float)
    if len(s) < 2:
        raise SystemExit(f"[openmmbg] error: {folder} holds fewer than 2 frames after the first 10 %")
    return {"frames": len(s), "estimate": float(s.mean()), "variance_of_mean": batch_means_variance(s, num_batches),
            "entries": int((np.diff(s) > 0).sum()), "wall_time": float(len(s) * seconds_per_exchange)}


def analyse(args):
    with open(args.reference) as f:
        reference = json.load(f)
    p_ref, p_ref_se = reference["p_phi_positive"], reference["standard_error"]
    target = 0.1 * p_ref
    grid = np.geomspace(args.wall_time / 100, args.wall_time, 30)
    results = {"p_ref": p_ref, "p_ref_standard_error": p_ref_se, "reference": args.reference,
               "grid": grid.tolist(), "methods": {}}
    for method in args.methods:
        records = []
        for repeat in range(args.repeats):
            path = run_path(args.work, method, repeat)
            if os.path.exists(path):
                with open(path) as f:
                    records.append(json.load(f))
        if not records:
            continue
        errors, estimates, entries = [], [], 0
        for r in records:
            t, s = np.array(r["times"]), np.array(r["positive"], float)
            running = np.cumsum(s) / np.arange(1, len(s) + 1)
            index = np.searchsorted(t, grid, side="right") - 1
            errors.append(np.where(index >= 0, running[np.maximum(index, 0)] - p_ref, np.nan))
            estimates.append(float(s.mean()))
            entries += int((np.diff(s) > 0).sum())
        errors = np.array(errors)
        with warnings.catch_warnings():  # grid times before a run's first sample are NaN in every repeat
            warnings.simplefilter("ignore", RuntimeWarning)
            rms = np.sqrt(np.nanmean(errors**2, axis=0))
        wall_time = float(np.mean([r["times"][-1] for r in records]))
        mse = float(np.mean((np.array(estimates) - p_ref) ** 2))
        spread = float(np.var(estimates, ddof=1)) if len(records) > 1 else None
        entry = {"repeats": len(records), "estimates": estimates, "entries_into_phi_positive": entries,
                 "rms_error": rms.tolist(), "final_wall_time": wall_time, "final_rms_error": float(np.sqrt(mse)),
                 "variance_between_repeats": spread, "t10_seconds": wall_time * mse / target**2,
                 "t10_is_lower_bound": entries < MIN_ENTRIES, "t10_source": "mean squared error of the repeats",
                 "runs": [r["stats"] for r in records], "settings": {k: records[0][k] for k in (
                     "platform", "frequency", "proposals", "implicit_solvent", "model")}}
        if method == "remd":
            exchanges = sum(r["stats"]["exchanges"] for r in records)
            seconds = sum(r["times"][-1] for r in records)
            entry["seconds_per_exchange"] = seconds / exchanges
            if args.remd_run:
                long = long_remd_variance(args.remd_run, entry["seconds_per_exchange"])
                long["folder"] = args.remd_run
                entry["long_run"] = long
                entry["t10_seconds"] = long["wall_time"] * long["variance_of_mean"] / target**2
                entry["t10_is_lower_bound"] = long["entries"] < MIN_ENTRIES
                entry["t10_source"] = "long run, batch means"
        if "proposed" in records[0]["stats"]:
            proposed = sum(r["stats"]["proposed"] for r in records)
            entry["acceptance"] = sum(r["stats"]["accepted"] for r in records) / max(proposed, 1)
        results["methods"][method] = entry
    for baseline in ("remd", "md"):
        if baseline in results["methods"]:
            base = results["methods"][baseline]
            for method, entry in results["methods"].items():
                entry[f"speedup_vs_{baseline}"] = base["t10_seconds"] / entry["t10_seconds"] if entry["t10_seconds"] > 0 else None
    with open(args.output + ".json.tmp", "w") as f:
        json.dump(results, f, indent=1)
    os.replace(args.output + ".json.tmp", args.output + ".json")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    for method, entry in results["methods"].items():
        line, = ax.loglog(grid, np.array(entry["rms_error"]) / p_ref, label=f"{method} (t10 = {entry['t10_seconds'] / 60:.3g} min)")
        tt = np.geomspace(grid[0], max(grid[-1], entry["t10_seconds"]) * 1.5, 50)
        ax.loglog(tt, 0.1 * np.sqrt(entry["t10_seconds"] / tt), ls="--", lw=0.8, color=line.get_color())
    ax.axhline(0.1, color="black", lw=0.8, ls=":", label="+-10 %")
    ax.axhline(p_ref_se / p_ref, color="grey", lw=0.8, ls="-.", label="reference's standard error")
    ax.set_xlabel("wall time (s, one core)")
    ax.set_ylabel("relative RMS error of P(phi > 0)")
    ax.set_title(f"alanine dipeptide, 300 K: P(phi > 0) = {p_ref:.5f} +- {p_ref_se:.5f}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.output + ".png", dpi=110)
    print(json.dumps({m: {k: e.get(k) for k in ("estimates", "entries_into_phi_positive", "t10_seconds",
                                                "t10_is_lower_bound", "speedup_vs_remd", "speedup_vs_md", "acceptance")}
                      for m, e in results["methods"].items()}, indent=1))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=[], metavar="NAME=PATH", help="flows proposing in method md+NAME")
    p.add_argument("--methods", default="md,remd", help="comma-separated: md, remd, md+NAME (default %(default)s)")
    p.add_argument("--wall-time", type=float, default=300.0, help="seconds per method and repeat (default %(default)s)")
    p.add_argument("--repeats", type=int, default=4)
    p.add_argument("--frequency", type=int, default=50, help="MD steps between samples and proposal attempts")
    p.add_argument("--proposals", type=int, default=64, help="flow samples per proposal attempt (default %(default)s)")
    p.add_argument("--implicit-solvent", default="OBC2", choices=["OBC1", "OBC2"])
    p.add_argument("--platform", default="Reference")
    p.add_argument("--work", required=True, help="folder of finished runs (resumable)")
    p.add_argument("--run-only", action="store_true", help="run the missing runs, do not analyse")
    p.add_argument("--analyse-only", action="store_true", help="analyse the runs in --work, run nothing")
    p.add_argument("--reference", help="reference .json of scripts/aldp-umbrella-reference.py (needed to analyse)")
    p.add_argument("--remd-run", help="a long `openmmbg remd` folder for replica exchange's variance")
    p.add_argument("--output", help="path prefix for .json and .png (needed to analyse)")
    args = p.parse_args()
    args.methods = args.methods.split(",")
    models = {}
    for item in args.models:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            p.error(f"--models takes NAME=PATH, got '{item}'")
        models[name] = path
    for method in args.methods:
        if method not in ("md", "remd") and not (method.startswith("md+") and method[3:] in models):
            p.error(f"unknown method '{method}' (md, remd, or md+NAME with NAME=PATH in --models)")
    if not args.run_only and not (args.reference and args.output):
        p.error("--reference and --output are needed to analyse (or pass --run-only)")
    if not args.analyse_only:
        run_missing(args, models)
    if not args.run_only:
        analyse(args)


if __name__ == "__main__":
    main()
