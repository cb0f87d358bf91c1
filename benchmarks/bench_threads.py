"""The thread policy measured: the same flow work with 1 and 2 LibTorch threads, on idle cores and on
cores kept busy by other processes (as an OpenMM simulation or a second run would).

    scripts/python benchmarks/bench_threads.py [--busy 2] [--repeats 2] [--output results.json]

Workloads (each run in a fresh process, so each sees its own thread settings):

- `cli-evaluate`: `openmmbg evaluate` of the shipped DW4 E-ACF on 200 test points with 2,000 ESS
  samples (the step that stalled the README's main job on a busy machine). The command-line tool
  does not set OMP_WAIT_POLICY, so this is LibTorch's default OpenMP waiting;
- `python-log-prob`: `Flow.log_prob` of the shipped LJ13 E-ACF on 5 x 64 of its own samples
  (the Python package sets OMP_WAIT_POLICY=PASSIVE unless the environment sets it).

Threads are set with OPENMMBG_NUM_THREADS (1: the default policy). Busy cores: `--busy` processes
spinning in pure Python. Reports the median wall time over the repeats and its ratio to 1 thread
on idle cores.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = os.environ.get("OPENMMBG_CLI", os.path.join(ROOT, "build", "openmmbg"))
PYTHON = os.path.join(ROOT, "scripts", "python")

WORKLOADS = {
    "cli-evaluate": [CLI, "evaluate", "--model", os.path.join(ROOT, "models/pretrained/dw4-spherical.bgm"),
                     "--system", "dw4", "--num-test", "200", "--num-aug-samples", "5", "--num-ess-samples", "2000",
                     "--seed", "0"],
    "python-log-prob": [PYTHON, "-c",
                        "import openmmbg, sys\n"
                        f"flow = openmmbg.Flow.load('{os.path.join(ROOT, 'models/pretrained/lj13-vector.bgm')}')\n"
                        "x, _, _ = flow.sample(64, seed=0)\n"
                        "for k in range(5):\n"
                        "    flow.marginal_log_prob(x, num_aug_samples=1, seed=k)\n"],
}


def timed(command, threads):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENMMBG_NUM_THREADS")}
    env["OPENMMBG_NUM_THREADS"] = str(threads)
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=3600)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--busy", type=int, default=os.cpu_count() or 2, help="spinning processes for the busy runs")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output", help="JSON file of the figures (written atomically)")
    args = parser.parse_args()
    rows = []
    for load in ("idle", "busy"):
        spinners = []
        if load == "busy":
            spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
            time.sleep(1)
        try:
            for name, command in WORKLOADS.items():
                for threads in (1, 2):
                    times = [timed(command, threads) for _ in range(args.repeats)]
                    rows.append({"workload": name, "load": load, "threads": threads, "seconds": statistics.median(times),
                                 "all_seconds": times})
                    print(f"{name:16s} {load:5s} threads={threads}: {statistics.median(times):8.2f} s", flush=True)
        finally:
            for p in spinners:
                p.kill()
    base = {r["workload"]: r["seconds"] for r in rows if r["load"] == "idle" and r["threads"] == 1}
    print("\n| workload | cores | threads | wall time, s | / 1 thread on idle cores |")
    print("|---|---|--:|--:|--:|")
    for r in rows:
        r["ratio_to_one_thread_idle"] = r["seconds"] / base[r["workload"]]
        print(f"| {r['workload']} | {r['load']} | {r['threads']} | {r['seconds']:.2f} | {r['ratio_to_one_thread_idle']:.2f} |")
    if args.output:
        with open(args.output + ".tmp", "w") as f:
            json.dump({"busy_processes": args.busy, "repeats": args.repeats, "cpu_count": os.cpu_count(), "rows": rows},
                      f, indent=1)
        os.replace(args.output + ".tmp", args.output)


if __name__ == "__main__":
    main()
