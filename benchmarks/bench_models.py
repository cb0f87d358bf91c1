"""Cost of sampling and of log q per configuration for trained models of any family, side by side.

    OMP_NUM_THREADS=1 scripts/python benchmarks/bench_models.py NAME=MODEL.bgm [NAME=MODEL.bgm ...] \
        [--batches 1 32 256] [--rounds 3] [--output results.json]

For each model and batch size B: the wall time of one sample(B) call (configurations with their log q)
and of one log_prob call on B of its own samples (marginal_log_prob with one auxiliary draw for
families with auxiliary variables, which is the joint log q plus a draw), divided by B. Rounds are
interleaved (every model and batch once per round) and the median over rounds is reported, so
every figure comes from the same machine state; the first model at batch 32 is the baseline of the
ratios. A continuous flow's cost depends on its trained field (the adaptive solver's steps), so
only trained models give meaningful figures.
"""
import argparse
import json
import os
import statistics
import time

import openmmbg


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", metavar="NAME=MODEL.bgm")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32, 256])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", help="JSON file of the figures (written atomically)")
    args = parser.parse_args()
    flows = {}
    for item in args.models:
        name, sep, path = item.partition("=")
        if not sep or not name or not os.path.isfile(path):
            parser.error(f"expected NAME=MODEL.bgm with an existing file, got {item!r}")
        flows[name] = openmmbg.Flow.load(path)
    times = {(name, b, what): [] for name in flows for b in args.batches for what in ("sample", "log_prob")}
    for r in range(args.rounds):
        for name, flow in flows.items():
            for b in args.batches:
                start = time.perf_counter()
                x, a, _ = flow.sample(b, seed=r)
                times[(name, b, "sample")].append((time.perf_counter() - start) / b)
                start = time.perf_counter()
                flow.marginal_log_prob(x, num_aug_samples=1, seed=r) if flow.family == "eacf" else flow.log_prob(x)
                times[(name, b, "log_prob")].append((time.perf_counter() - start) / b)
        print(f"round {r + 1}/{args.rounds} done", flush=True)
    base_batch = 32 if 32 in args.batches else args.batches[0]
    base = statistics.median(times[(next(iter(flows)), base_batch, "log_prob")])
    rows = []
    print(f"\n| model | family | batch | sample, ms/conf | log q, ms/conf | log q / baseline |")
    print("|---|---|--:|--:|--:|--:|")
    for name, flow in flows.items():
        for b in args.batches:
            s = statistics.median(times[(name, b, "sample")]) * 1e3
            q = statistics.median(times[(name, b, "log_prob")]) * 1e3
            rows.append({"model": name, "family": flow.family, "batch": b, "sample_ms_per_configuration": s,
                         "log_prob_ms_per_configuration": q, "log_prob_ratio_to_baseline": q / (base * 1e3)})
            print(f"| {name} | {flow.family} | {b} | {s:.3f} | {q:.3f} | {q / (base * 1e3):.2f} |")
    if args.output:
        with open(args.output + ".tmp", "w") as f:
            json.dump({"baseline": f"{next(iter(flows))} log q at batch {base_batch}", "rows": rows,
                       "rounds": args.rounds, "models": args.models}, f, indent=1)
        os.replace(args.output + ".tmp", args.output)


if __name__ == "__main__":
    main()
