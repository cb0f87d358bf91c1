#!/usr/bin/env python3
"""Turn BenchmarkFlow's JSON output into the markdown tables of docs/benchmarks.md.

Usage: benchmark_table.py RESULTS.json [--baseline NAME]

Every throughput is also given as a ratio to the baseline benchmark of the same run (default
LogProb/DW4/spherical/batch:32), so tables from different machines or loads compare by ratio:
"ratio (wall)" from wall-clock throughput, "ratio (CPU)" from process CPU time per configuration
(with one LibTorch thread, the compute time, which other jobs on a shared machine do not inflate).
"""
import argparse
import json
import sys

DEFAULT_BASELINE = "LogProb/DW4/spherical/batch:32"


def short_name(name):
    """Drop the suffixes Google Benchmark appends for the timing mode."""
    return name.replace("/process_time", "").replace("/real_time", "")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="JSON written by --benchmark_out=... --benchmark_out_format=json")
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="benchmark the ratios are taken against")
    args = parser.parse_args()

    with open(args.results) as f:
        data = json.load(f)
    context = data["context"]
    runs = [b for b in data["benchmarks"] if b.get("run_type", "iteration") == "iteration"]
    by_name = {short_name(b["name"]): b for b in runs}
    if args.baseline not in by_name:
        sys.exit(f"baseline {args.baseline} is not in {args.results}")
    baseline = by_name[args.baseline]
    base_wall = baseline["items_per_second"]
    base_cpu_per_item = baseline["cpu_time"] / int(args.baseline.rsplit(":", 1)[1])

    print(f"Run of {context.get('date', '?')} on {context.get('num_cpus', '?')} CPUs, "
          f"load average before the run {', '.join(f'{x:.2f}' for x in context.get('load_avg', []))}; "
          f"torch {context.get('torch_version', '?')}, intra-op threads {context.get('torch_intraop_threads', '?')}, "
          f"inter-op threads {context.get('torch_interop_threads', '?')}, "
          f"OMP_NUM_THREADS={context.get('OMP_NUM_THREADS', '?')}.")
    print(f"Baseline: `{args.baseline}`, {base_wall:.1f} configurations/s (wall), "
          f"{base_cpu_per_item:.2f} CPU ms per configuration.")
    print()
    print("| operation | system | projection | batch | parameters | wall ms / call | CPU ms / call "
          "| configurations / s (wall) | CPU ms / configuration | ratio (wall) | ratio (CPU) |")
    print("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for b in runs:
        name = short_name(b["name"])
        op, system, projection, batch = name.split("/")
        batch = batch.split(":")[1]
        if b.get("error_occurred"):
            print(f"| {op} | {system} | {projection} | {batch} | | error: {b.get('error_message', '')} | | | | | |")
            continue
        assert b["time_unit"] == "ms", b["time_unit"]
        ips = b["items_per_second"]  # from wall time (UseRealTime)
        cpu_per_item = b["cpu_time"] / int(batch)
        print(f"| {op} | {system} | {projection} | {batch} | {int(b['params']):,} "
              f"| {b['real_time']:.1f} | {b['cpu_time']:.1f} | {ips:.1f} | {cpu_per_item:.2f} "
              f"| {ips / base_wall:.3g} | {base_cpu_per_item / cpu_per_item:.3g} |")

if __name__ == "__main__":
    main()
