"""Evaluate an alanine dipeptide flow against held-out replica-exchange data at 300 K.

    OMP_NUM_THREADS=1 scripts/python scripts/evaluate-aldp.py --model models/pretrained/aldp-spherical.bgm \
        --test ~/.local/share/openmmbg/aldp/test/trajectory_0.dcd --output docs/figures/aldp-spherical

Metrics (estimators of docs/eacf-mapping.md#estimator-definitions, all on the L-form target: the force field
is reflection invariant, the molecule in the data is L-alanine, so a D-form flow sample has weight
zero; the fraction of L-form samples is reported beside):

- NLL: -mean log q_hat(x) over the test frames, K = 10 augmented samples per frame (the paper's K
  for alanine dipeptide), with its standard error over frames. Lengths in nm.
- Reverse ESS on --num-samples flow samples: log w = -U(x)/kT + log pi(a|x) - log q(x, a),
  ESS = 1 / sum softmax(log w)^2 / n. Unclipped.
- Forward ESS on the test frames (one a ~ pi(a|x) each): 1 / (mean w * mean 1/w).
- Ramachandran KLD(test || flow) and KLD(test || reweighted flow): 64 x 64 histograms, eps = 1e-10.
- A PNG of the phi/psi distributions of the test data, the flow and the reweighted flow.

U(x) comes from OpenMM (the System of ../shared/data/aldp with the model's implicit solvent) at the
model's temperature. Writes <output>.json (the metrics) and <output>.png; prints the metrics.
"""
import argparse
import json
import os
import sys

import numpy as np
import openmm as mm
import openmm.unit as unit

import openmmbg
from openmmbg import alanine_dipeptide as aldp

# k_B as in OpenMM and the reference (kJ/mol/K).
BOLTZ = (unit.BOLTZMANN_CONSTANT_kB * unit.AVOGADRO_CONSTANT_NA).value_in_unit(unit.kilojoule_per_mole / unit.kelvin)


def reduced_energies(system, x, temperature, platform="CPU"):
    """U(x) / kT for configurations x [n, 22, 3] in nm (inf where OpenMM gives a non-finite energy)."""
    context = mm.Context(system, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName(platform))
    u = np.empty(len(x))
    for i, xi in enumerate(x):
        context.setPositions(xi)
        u[i] = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    u /= BOLTZ * temperature
    u[~np.isfinite(u)] = np.inf
    return u


def reverse_ess(log_w):
    """1 / sum softmax(log w)^2 / n; zero weights (log w = -inf) count as samples."""
    finite = np.isfinite(log_w)
    if not finite.any():
        return 0.0
    w = np.exp(log_w[finite] - log_w[finite].max())
    return float(w.sum() ** 2 / (w**2).sum() / len(log_w))


def forward_ess(log_w):
    """1 / (mean w * mean 1/w) on data points (log w finite for data)."""
    log_w = log_w - np.max(log_w)
    return float(1.0 / (np.mean(np.exp(log_w)) * np.mean(np.exp(-log_w))))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a 22-atom .bgm model (lengths in nm)")
    p.add_argument("--test", required=True, help="held-out 300 K frames (.dcd, e.g. the test run's trajectory_0.dcd)")
    p.add_argument("--num-test", type=int, default=2000, help="test frames, evenly strided (default %(default)s)")
    p.add_argument("--num-samples", type=int, default=10000, help="flow samples (default %(default)s)")
    p.add_argument("--num-aug-samples", type=int, default=10, help="K of the NLL estimate (default %(default)s)")
    p.add_argument("--implicit-solvent", choices=["OBC1", "OBC2"],
                   help="default: the model's .json, else OBC1")
    p.add_argument("--temperature", type=float, help="K (default: the model's, else 300)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", required=True, help="path prefix for .json and .png")
    args = p.parse_args()

    meta = aldp.model_metadata(args.model)
    flow = openmmbg.Flow.load(args.model)
    if flow.num_particles != aldp.NUM_ATOMS or flow.dim != 3:
        sys.exit(f"evaluate-aldp: {args.model} describes {flow.num_particles} particles in {flow.dim}-D, not 22 in 3-D")
    solvent = args.implicit_solvent or meta.get("implicit_solvent", "OBC1")
    temperature = args.temperature or float(flow.config.get("temperature", 300.0))
    system, _, _ = aldp.create_system(solvent)

    frames = openmmbg.read_dcd(args.test)
    stride = max(1, len(frames) // args.num_test)
    test = frames[::stride][: args.num_test]
    test = test - test.mean(axis=1, keepdims=True)
    print(f"[openmmbg] {len(test)} test frames of {len(frames)} ({args.test}), {solvent}, {temperature} K", file=sys.stderr)

    log_q_test = flow.marginal_log_prob(test, num_aug_samples=args.num_aug_samples, seed=args.seed)
    nll, nll_sem = float(-log_q_test.mean()), float(log_q_test.std(ddof=1) / np.sqrt(len(test)))
    u_test = reduced_energies(system, test, temperature)
    log_w_forward = -u_test - flow.marginal_log_prob(test, num_aug_samples=1, seed=args.seed + 1)

    print(f"[openmmbg] drawing {args.num_samples} flow samples", file=sys.stderr)
    x, a, log_q = flow.sample(args.num_samples, seed=args.seed)
    l_form = aldp.chirality(x) == aldp.chirality(test[0])
    u = reduced_energies(system, x, temperature)
    log_w = -u + flow.log_augmented_target(x, a) - log_q
    log_w[~l_form] = -np.inf

    phi_test, psi_test = aldp.phi_psi(test)
    phi, psi = aldp.phi_psi(x[l_form])
    finite = np.isfinite(log_w[l_form])
    weights = np.zeros(int(l_form.sum()))
    weights[finite] = np.exp(log_w[l_form][finite] - log_w[l_form][finite].max())
    results = {
        "model": args.model, "test_data": args.test, "num_test": len(test), "num_samples": args.num_samples,
        "num_aug_samples": args.num_aug_samples, "seed": args.seed, "implicit_solvent": solvent,
        "temperature": temperature, "length_unit": "nm",
        "nll": nll, "nll_sem": nll_sem,
        "reverse_ess": reverse_ess(log_w), "forward_ess": forward_ess(log_w_forward),
        "l_form_fraction": float(l_form.mean()),
        "ramachandran_kld": aldp.ramachandran_kld((phi_test, psi_test), (phi, psi)),
        "ramachandran_kld_reweighted": aldp.ramachandran_kld((phi_test, psi_test), (phi, psi), model_weights=weights)
        if weights.sum() > 0 else None,
        "phi_positive_test": float(np.mean(phi_test > 0)),
        "phi_positive_flow": float(np.mean(phi > 0)) if len(phi) else None,
        "median_energy_test_kT": float(np.median(u_test)),
        "median_energy_flow_kT": float(np.median(u[l_form])) if l_form.any() else None,
    }
    aldp.plot_ramachandran([("test data (MD)", phi_test, psi_test), ("flow (L-form)", phi, psi),
                            ("flow, reweighted", phi, psi, weights)], args.output + ".png")
    with open(args.output + ".json.tmp", "w") as f:
        json.dump(results, f, indent=1)
    os.replace(args.output + ".json.tmp", args.output + ".json")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
