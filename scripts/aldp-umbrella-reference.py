"""The reference P(phi > 0) of alanine dipeptide at 300 K, by umbrella sampling on (phi, psi) and MBAR.

    OMP_NUM_THREADS=1 scripts/python scripts/aldp-umbrella-reference.py --implicit-solvent OBC2 \
        --repeats 2 --output docs/figures/aldp-phi-reference

Independent of every method it judges (no replica exchange, no flow): each repeat is one umbrella
sampling run over a --grid x --grid lattice of windows on the Ramachandran torus, each restraining
phi and psi with 0.5 k (angle - centre)^2 (periodic difference, k = --force-constant kJ/mol/rad^2),
LangevinMiddle at 300 K (1 fs, 1/ps: the data generator's settings) on the Reference platform. The
windows are visited in a snake order from the prmtop's structure (each starts from the previous
window's last configuration; --equilibration ps are discarded), and (phi, psi) is recorded every
--sample-every steps. Restraining psi as well as phi is what makes this converge: with phi alone,
150 ps windows leave psi unrelaxed (its basins exchange on the ns scale at phi > 0) and the estimate
comes out about 2x low. MBAR (solved here by Newton's method, f_0 = 0) turns the pooled samples of
a repeat into weights under the unbiased state, hence P(phi > 0) and the Ramachandran free energy.
The repeats use independent seeds and alternate the snake's direction; the reference is their mean,
its error the standard error over repeats (hysteresis and unrelaxed windows show up as disagreement
between repeats, which one MBAR covariance would not catch).

Resumable: every finished window is saved (--work folder, default
~/.local/share/openmmbg/aldp-umbrella-<solvent>); re-running skips it, and --repeat N runs only the
windows of repeat N (start one per core, then run without it to analyse). Outputs <output>.json
(the value, its error, the per-repeat values, the settings) and <output>.png (free energy of phi).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import openmm as mm
import openmm.unit as unit

from openmmbg import alanine_dipeptide as aldp

TEMPERATURE = 300.0
KT = 0.0083144626 * TEMPERATURE  # kJ/mol


def periodic_difference(a, b):
    return (a - b + np.pi) % (2 * np.pi) - np.pi


def run_window(system, positions, centre, args, seed):
    """Equilibrate and sample one window; returns ((phi, psi) samples [n, 2], last positions)."""
    bias = mm.CustomTorsionForce("0.5*k_umbrella*d^2; d = min(dt, 2*pi - dt); dt = abs(theta - theta0);"
                                 " pi = 3.141592653589793")
    bias.addGlobalParameter("k_umbrella", args.force_constant)
    bias.addPerTorsionParameter("theta0")
    bias.addTorsion(*aldp.PHI_ATOMS, [centre[0]])
    bias.addTorsion(*aldp.PSI_ATOMS, [centre[1]])
    index = system.addForce(bias)
    try:
        integrator = mm.LangevinMiddleIntegrator(TEMPERATURE * unit.kelvin, 1 / unit.picosecond, 1 * unit.femtosecond)
        integrator.setRandomNumberSeed(seed)
        context = mm.Context(system, integrator, mm.Platform.getPlatformByName("Reference"))
        context.setPositions(positions)
        context.setVelocitiesToTemperature(TEMPERATURE * unit.kelvin, seed)
        integrator.step(int(round(args.equilibration * 1000)))
        samples = int(round(args.production * 1000)) // args.sample_every
        angles = np.empty((samples, 2))
        for i in range(samples):
            integrator.step(args.sample_every)
            x = context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
            phi, psi = aldp.phi_psi(x[None])
            angles[i] = phi[0], psi[0]
        return angles, x
    finally:
        system.removeForce(index)


def mbar_weights(angles_by_window, centres, force_constant, tolerance=1e-8, max_iterations=500):
    """Normalised MBAR weights of the pooled samples under the unbiased state.

    Solves the MBAR equations by Newton's method on their convex objective
    F(f) = sum_n log sum_k N_k exp(f_k - b_k(x_n)) - sum_k N_k f_k, with f_0 = 0 and a backtracking
    line search (the self-consistent iteration needs thousands of sweeps for 72 states)."""
    angles = np.concatenate(angles_by_window)  # [N, 2]
    counts = np.array([len(a) for a in angles_by_window], dtype=float)
    bias = sum(0.5 * force_constant * periodic_difference(angles[None, :, i], centres[:, None, i]) ** 2
               for i in range(2)) / KT  # (K, N) reduced
    log_counts = np.log(counts)

    def log_denominator(f):
        a = log_counts[:, None] + f[:, None] - bias
        m = a.max(axis=0)
        return m + np.log(np.exp(a - m).sum(axis=0)), a

    def objective(f):
        return log_denominator(f)[0].sum() - counts @ f

    f = np.zeros(len(centres))
    for _ in range(max_iterations):
        log_den, a = log_denominator(f)
        weights = np.exp(a - log_den[None, :])  # W_kn, each column sums to 1
        gradient = weights.sum(axis=1) - counts
        if np.max(np.abs(gradient[1:]) / counts[1:]) < tolerance:
            break
        hessian = np.diag(weights.sum(axis=1)) - weights @ weights.T
        step = np.zeros_like(f)
        step[1:] = -np.linalg.solve(hessian[1:, 1:], gradient[1:])
        value, scale = log_den.sum() - counts @ f, 1.0
        while objective(f + scale * step) > value and scale > 1e-8:
            scale /= 2
        f = f + scale * step
    else:
        raise RuntimeError("MBAR did not converge")
    log_w = -log_denominator(f)[0]
    w = np.exp(log_w - log_w.max())
    return angles, w / w.sum()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--implicit-solvent", default="OBC2", choices=["OBC1", "OBC2"])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--repeat", type=int, help="run only this repeat's windows, do not analyse")
    p.add_argument("--grid", type=int, default=24, help="windows per angle (default %(default)s: 15 degrees apart)")
    p.add_argument("--force-constant", type=float, default=100.0, help="kJ/mol/rad^2 (default %(default)s)")
    p.add_argument("--equilibration", type=float, default=5.0, help="ps per window (default %(default)s)")
    p.add_argument("--production", type=float, default=50.0, help="ps per window (default %(default)s)")
    p.add_argument("--sample-every", type=int, default=250, help="steps (default %(default)s)")
    p.add_argument("--work", default=None, help="folder of finished windows (resumable)")
    p.add_argument("--output", help="path prefix for .json and .png (needed unless --repeat)")
    args = p.parse_args()
    if args.repeat is None and not args.output:
        p.error("--output is needed to analyse (or pass --repeat N)")
    work = args.work or os.path.expanduser(f"~/.local/share/openmmbg/aldp-umbrella-{args.implicit_solvent.lower()}")
    os.makedirs(work, exist_ok=True)
    settings = {k: getattr(args, k) for k in ("implicit_solvent", "grid", "force_constant", "equilibration",
                                               "production", "sample_every")}
    settings_path = os.path.join(work, "settings.json")
    if os.path.exists(settings_path):
        with open(settings_path) as f:
            if json.load(f) != settings:
                sys.exit(f"[openmmbg] error: {work} holds windows run with other settings; use another --work")
    else:
        with open(settings_path + ".tmp", "w") as f:
            json.dump(settings, f)
        os.replace(settings_path + ".tmp", settings_path)

    system, _, start = aldp.create_system(args.implicit_solvent)
    start = np.asarray(start.value_in_unit(unit.nanometer))
    axis = -np.pi + 2 * np.pi * np.arange(args.grid) / args.grid
    # Snake order: phi row by row, psi back and forth, so consecutive windows are neighbours.
    snake = [(i, j if i % 2 == 0 else args.grid - 1 - j) for i in range(args.grid) for j in range(args.grid)]
    centres = np.array([(axis[i], axis[j]) for i, j in snake])
    values, profiles = [], []
    for repeat in range(args.repeats) if args.repeat is None else [args.repeat]:
        order = range(len(snake)) if repeat % 2 == 0 else range(len(snake) - 1, -1, -1)
        positions = start
        angles_by_window = [None] * len(snake)
        begin = time.perf_counter()
        for done, k in enumerate(order):
            i, j = snake[k]
            path = os.path.join(work, f"repeat{repeat}-phi{i:02d}-psi{j:02d}.npz")
            if os.path.exists(path):
                saved = np.load(path)
                angles_by_window[k], positions = saved["angles"], saved["positions"]
                continue
            angles, positions = run_window(system, positions, centres[k], args, seed=1 + 100000 * repeat + k)
            np.savez(path + ".tmp.npz", angles=angles, positions=positions)
            os.replace(path + ".tmp.npz", path)
            angles_by_window[k] = angles
            if (done + 1) % args.grid == 0:
                print(f"[openmmbg] repeat {repeat}: {done + 1}/{len(snake)} windows, {time.perf_counter() - begin:.0f} s",
                      file=sys.stderr, flush=True)
        if args.repeat is not None:
            return
        angles, w = mbar_weights(angles_by_window, centres, args.force_constant)
        values.append(float(w[angles[:, 0] > 0].sum()))
        histogram, edges = np.histogram(angles[:, 0], bins=72, range=(-np.pi, np.pi), weights=w)
        profiles.append(histogram)
        print(f"[openmmbg] repeat {repeat}: P(phi > 0) = {values[-1]:.5f}", file=sys.stderr, flush=True)
    values = np.array(values)
    result = {"p_phi_positive": float(values.mean()),
              "standard_error": float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else None,
              "repeats": values.tolist(), "temperature": TEMPERATURE, "settings": settings,
              "method": "umbrella sampling on (phi, psi), MBAR; error: standard error over independent repeats"}
    with open(args.output + ".json.tmp", "w") as f:
        json.dump(result, f, indent=1)
    os.replace(args.output + ".json.tmp", args.output + ".json")
    print(json.dumps({k: result[k] for k in ("p_phi_positive", "standard_error", "repeats")}))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    centres_deg = np.degrees(0.5 * (edges[1:] + edges[:-1]))
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for repeat, histogram in enumerate(profiles):
        with np.errstate(divide="ignore"):
            free_energy = -np.log(histogram)
        ax.plot(centres_deg, free_energy - free_energy.min(), lw=1, label=f"repeat {repeat}")
    ax.set_xlabel("phi (degrees)")
    ax.set_ylabel("free energy (kT)")
    ax.set_title(f"P(phi > 0) = {result['p_phi_positive']:.5f} +- {result['standard_error'] or 0:.5f}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.output + ".png", dpi=110)


if __name__ == "__main__":
    main()
