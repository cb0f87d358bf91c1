"""Summarise maximum-likelihood runs made by scripts/reproduce-ml.sh.

    scripts/python scripts/summarize-ml.py SYSTEM [--runs DIR] [--ship] [--figure PATH]

Prints a markdown table (per projection: test NLL mean +- standard error over seeds, the per-run
standard error over test points, reverse and forward ESS, epochs run and training time) next to the
paper's Table 6 value, and writes learning curves (validation NLL against epoch) as a PNG. With
--ship, copies the run with the best validation NLL of each projection to
models/pretrained/<system>-<projection>.bgm and writes the .json beside it (metrics, command, seed).
"""
import argparse
import json
import math
import os
import shutil
import statistics
import sys

import openmmbg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPER = {  # Table 6, 10^3 training samples (docs/eacf-mapping.md#paper-nll-values)
    "dw4": {"none": 10.07, "vector": 8.69, "cartesian": 8.82, "spherical": 8.61},
    "lj13": {"none": 33.32, "vector": 30.19, "cartesian": 30.89, "spherical": 30.33},
}
ORDER = ["none", "vector", "cartesian", "spherical"]
FULL_TEST = {"dw4": 10000, "lj13": 10000}


def paper_epochs(system, projection):
    """The paper's epochs of a built-in system, from the catalog as `openmmbg train` takes them (0: none)."""
    defaults = openmmbg.builtin_systems().get(system, {}).get("maximum_likelihood") or {}
    return defaults.get("epochs_projection_none" if projection == "none" else "epochs", 0)


LABEL = {"none": "Non-E-ACF", "vector": "Vector-proj", "cartesian": "Cartesian-proj", "spherical": "Spherical-proj"}


def load_runs(runs_dir, system):
    runs = {}
    base = os.path.join(runs_dir, "ml")
    for name in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        if not name.startswith(system + "-"):
            continue
        projection, seed = name[len(system) + 1:].rsplit("-s", 1)
        d = os.path.join(base, name)
        metrics = []
        if os.path.exists(os.path.join(d, "metrics.jsonl")):
            metrics = [json.loads(l) for l in open(os.path.join(d, "metrics.jsonl")) if l.strip()]
        run = {"dir": d, "seed": int(seed), "metrics": metrics, "done": os.path.exists(os.path.join(d, "done"))}
        if os.path.exists(os.path.join(d, "eval.json")):
            run["eval"] = json.load(open(os.path.join(d, "eval.json")))
        runs.setdefault(projection, []).append(run)
    return runs


def fmt(values, digits=2):
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values) / math.sqrt(len(values)):.{digits}f}"


def fmt_percent(values):
    """Mean percentage; values under 0.1 % in scientific notation, so they do not print as 0.0 %."""
    if not values:
        return "-"
    m = statistics.mean(values)
    return f"{m:.1f} %" if m >= 0.1 or m == 0 else f"{m:.1e} %"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("system")
    p.add_argument("--runs", default=os.environ.get("OPENMMBG_RUNS_DIR", os.path.expanduser("~/.local/share/openmmbg/runs")))
    p.add_argument("--ship", action="store_true")
    p.add_argument("--figure", default=None)
    args = p.parse_args()
    runs = load_runs(args.runs, args.system)
    print(f"| {args.system.upper()} | test NLL (mean ± sem over seeds) | sem over test points | reverse ESS | forward ESS | "
          f"seeds done | epochs | training time / run | paper NLL |")
    print("|---|---|---|---|---|---|---|---|---|")
    for projection in ORDER:
        evaluated = [r for r in runs.get(projection, []) if "eval" in r]
        nll = [r["eval"]["nll"] for r in evaluated]
        sem = [r["eval"]["nll_sem"] for r in evaluated]
        rev = [100 * r["eval"]["reverse_ess"] for r in evaluated]
        fwd = [100 * r["eval"]["forward_ess"] for r in evaluated]
        epochs = sorted({r["metrics"][-1]["epoch"] for r in evaluated if r["metrics"]})
        secs = [r["metrics"][-1]["elapsed_s" if "elapsed_s" in r["metrics"][-1] else "elapsed"] for r in evaluated if r["metrics"]]
        total = sorted({r["metrics"][-1].get("total_epochs", 0) for r in evaluated if r["metrics"]})
        reduced = any(t < paper_epochs(args.system, projection) for t in total)
        label = LABEL[projection] + (" (reduced)" if reduced else "")
        minutes = f"{statistics.mean(secs) / 60:.0f} min" if secs else "-"
        print(f"| {label} | {fmt(nll)} | {fmt(sem, 3)} | {fmt_percent(rev)} | {fmt_percent(fwd)} | "
              f"{len(evaluated)} | {', '.join(map(str, epochs)) or '-'} | "
              f"{minutes} | {PAPER.get(args.system, {}).get(projection, '-')} |")
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4.5))
        for i, projection in enumerate(ORDER):
            for r in runs.get(projection, []):
                pts = [(m["epoch"], m["validation_nll"]) for m in r["metrics"] if "validation_nll" in m]
                if pts:
                    ax.plot(*zip(*pts), color=f"C{i}", alpha=0.8, label=LABEL[projection] if r["seed"] == 0 else None)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation NLL (1000 points, K = 20)")
        ax.set_title(f"{args.system.upper()}: maximum-likelihood learning curves")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.figure, dpi=100)
    if args.ship:
        for projection, rs in runs.items():
            candidates = [r for r in rs if r["done"] and "eval" in r and r["metrics"]]
            if not candidates:
                continue
            best = min(candidates, key=lambda r: min(m.get("validation_nll", math.inf) for m in r["metrics"]))
            total_epochs = best["metrics"][-1].get("total_epochs", best["metrics"][-1]["epoch"])
            epochs_arg = "" if total_epochs == paper_epochs(args.system, projection) else f" --epochs {total_epochs}"
            num_test = best["eval"].get("num_test", 0)
            test_arg = "" if num_test >= FULL_TEST.get(args.system, 0) else f" --num-test {num_test}"
            stem = os.path.join(ROOT, "models", "pretrained", f"{args.system}-{projection}")
            os.makedirs(os.path.dirname(stem), exist_ok=True)
            shutil.copyfile(os.path.join(best["dir"], "model.bgm"), stem + ".bgm.tmp")
            os.replace(stem + ".bgm.tmp", stem + ".bgm")
            info = dict(best["eval"])
            info.update({
                "model": os.path.relpath(stem + ".bgm", ROOT),
                "system": args.system, "projection": projection, "seed": best["seed"],
                "epochs": best["metrics"][-1]["epoch"],
                "best_validation_nll": min(m.get("validation_nll", math.inf) for m in best["metrics"]),
                "reduced": total_epochs < paper_epochs(args.system, projection),
                "paper_epochs": paper_epochs(args.system, projection),
                "train_command": f"openmmbg train --system {args.system} --projection {projection} --seed {best['seed']} "
                                 f"--data-dir ../shared/data --output model.bgm --metrics metrics.jsonl{epochs_arg}",
                "evaluate_command": f"openmmbg evaluate --model model.bgm --system {args.system} --data-dir ../shared/data "
                                    f"--seed {best['seed']}{test_arg}",
                "selected_from_seeds": sorted(r["seed"] for r in candidates),
            })
            with open(stem + ".json.tmp", "w") as f:
                json.dump(info, f, indent=2)
                f.write("\n")
            os.replace(stem + ".json.tmp", stem + ".json")
            print(f"shipped {stem}.bgm (seed {best['seed']})", file=sys.stderr)


if __name__ == "__main__":
    main()
