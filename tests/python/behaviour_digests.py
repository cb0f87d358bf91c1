"""Digests of the project's observable behaviour for fixed seeds, to show that a refactor changes
nothing: MD with flow proposals on the Reference platform (a broad untrained flow whose proposals
are accepted, and a shipped model), the first losses of short maximum-likelihood and FAB runs, and
a shipped model's evaluation figures.

    scripts/python tests/python/behaviour_digests.py --record   # rewrite tests/python/data/behaviour-digests.json
    scripts/python tests/python/behaviour_digests.py            # print the digests as JSON

tests/python/test_behaviour_digests.py compares a fresh run with the recorded file. Floats are
stored with repr (all 17 digits), so two runs on one machine can be compared bit for bit; arrays as
the SHA-256 of their float64 bytes plus a few summary values that a tolerance can compare.
Run with OMP_NUM_THREADS=1 (as ctest does): LibTorch's reductions depend on the thread count.
"""
import argparse
import hashlib
import json
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
RECORD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "behaviour-digests.json")
PRETRAINED = os.path.join(ROOT, "models", "pretrained")


def data_dir():
    return os.environ.get("OPENMMBG_DATA_DIR") or os.path.join(ROOT, os.pardir, "shared", "data")


def array_digest(values):
    values = np.ascontiguousarray(np.asarray(values, dtype=np.float64))
    return {"sha256": hashlib.sha256(values.tobytes()).hexdigest(), "sum": float(values.sum()),
            "abs_sum": float(np.abs(values).sum()), "shape": list(values.shape)}


def md_digest(system, model_path, positions, steps, frequency, proposals, proposal_seed, temperature, masses_nonzero=True):
    import openmm as mm
    import openmm.unit as unit
    import openmmbg

    move = openmmbg.BoltzmannGeneratorProposal(model_path)
    move.setFrequency(frequency)
    move.setNumProposals(proposals)
    move.setTemperature(temperature * unit.kelvin)
    move.setRandomNumberSeed(proposal_seed)
    system.addForce(move)
    integrator = mm.LangevinMiddleIntegrator(temperature * unit.kelvin, 5.0 / unit.picosecond, 0.002 * unit.picoseconds)
    integrator.setRandomNumberSeed(17)
    context = mm.Context(system, integrator, mm.Platform.getPlatformByName("Reference"))
    context.setPositions(positions)
    context.setVelocitiesToTemperature(temperature * unit.kelvin, 5)
    log_ratios = []
    for _ in range(steps // frequency):
        integrator.step(frequency)
        log_ratios.append(move.getLastLogAcceptanceRatio(context))
    state = context.getState(getPositions=True, getVelocities=True)
    x = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    v = state.getVelocities(asNumpy=True).value_in_unit(unit.nanometer / unit.picosecond)
    finite = [r for r in log_ratios if np.isfinite(r)]
    return {"proposed": int(move.getNumProposed(context)), "accepted": int(move.getNumAccepted(context)),
            "positions": array_digest(x), "velocities": array_digest(v),
            "log_ratios": {"repr": [repr(float(r)) for r in log_ratios], "finite": array_digest(finite)}}


def harmonic_untrained(tmp):
    """Four 12-amu particles in the well k = 2 kT/nm^2 with a broad untrained flow: proposals are accepted."""
    import openmm as mm
    import openmmbg

    kT = 0.0083144626181532 * 300.0
    system = mm.System()
    well = mm.CustomExternalForce("0.5*k*(x^2+y^2+z^2)")
    well.addGlobalParameter("k", 2.0 * kT)
    for i in range(4):
        system.addParticle(12.0)
        well.addParticle(i, [])
    system.addForce(well)
    path = os.path.join(tmp, "broad.bgm")
    openmmbg.Flow({"num_particles": 4, "dim": 3, "projection": "vector", "num_layers": 2, "dtype": "float64",
                   "egnn_blocks": 1, "egnn_mlp_units": [16, 16], "egnn_hidden_features": 16,
                   "egnn_output_features": 16, "head_mlp_units": [16, 16], "aug_scale": 0.3,
                   "identity_init": False, "random_init_scale": 0.1}).save(path)
    positions = [(0.3, 0.1, -0.2), (-0.4, 0.2, 0.1), (0.1, -0.5, 0.3), (0.2, 0.3, -0.1)]
    return md_digest(system, path, positions, steps=400, frequency=5, proposals=4, proposal_seed=4321, temperature=300.0)


def lj13_shipped():
    """13 Lennard-Jones particles (eps = 1 kJ/mol, sigma = 1 nm, kT = 1 kJ/mol) with the shipped LJ13 model."""
    import openmm as mm

    system = mm.System()
    lj = mm.CustomNonbondedForce("4*(r^-12 - r^-6)")
    for i in range(13):
        system.addParticle(1.0)
        lj.addParticle([])
    system.addForce(lj)
    test = np.load(os.path.join(data_dir(), "efm", "test_split_LJ13-1000.npy")).reshape(-1, 13, 3)
    return md_digest(system, os.path.join(PRETRAINED, "lj13-spherical.bgm"), [tuple(p) for p in test[0]],
                     steps=60, frequency=10, proposals=2, proposal_seed=99, temperature=120.27)


def dw4_data(name, n):
    return np.load(os.path.join(data_dir(), "efm", name)).reshape(-1, 4, 2)[:n]


SMALL_DW4 = {"num_particles": 4, "dim": 2, "projection": "spherical", "num_layers": 2, "egnn_blocks": 1,
             "egnn_mlp_units": [16, 16], "egnn_hidden_features": 16, "egnn_output_features": 16,
             "head_mlp_units": [16, 16]}


def ml_first_losses():
    import openmmbg

    flow = openmmbg.Flow(SMALL_DW4)
    reports = flow.train(dw4_data("train_split_DW4.npy", 256), validation=dw4_data("val_split_DW4.npy", 64),
                         verbose=False, epochs=2, batch_size=64, validate_every=2, validation_aug_samples=2, seed=3)
    keys = ("train_loss", "validation_nll", "learning_rate")
    return [{k: repr(r.get(k)) for k in keys} for r in reports]


def fab_first_losses():
    import openmmbg

    flow = openmmbg.Flow(SMALL_DW4)
    reports = flow.train_energy("dw4", objective="fab", verbose=False, iterations=4, batch_size=16,
                                buffer_min_batches=2, buffer_max_batches=8, updates_per_iteration=2,
                                report_every=1, evaluate_every=0, seed=5)
    return [{k: repr(r.get(k)) for k in ("iteration", "loss", "learning_rate")} for r in reports]


def shipped_evaluation():
    import openmmbg

    flow = openmmbg.Flow.load(os.path.join(PRETRAINED, "dw4-spherical.bgm"))
    out = flow.evaluate("dw4", dw4_data("test_split_DW4.npy", 100), num_aug_samples=4, num_ess_samples=500, seed=2)
    return {k: repr(float(v)) for k, v in sorted(out.items()) if isinstance(v, (int, float))}


def compute():
    with tempfile.TemporaryDirectory() as tmp:
        return {"md_harmonic_untrained": harmonic_untrained(tmp), "md_lj13_shipped": lj13_shipped(),
                "ml_first_losses": ml_first_losses(), "fab_first_losses": fab_first_losses(),
                "evaluation_dw4_spherical": shipped_evaluation()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", action="store_true", help=f"write {os.path.relpath(RECORD, ROOT)}")
    args = parser.parse_args()
    digests = compute()
    text = json.dumps(digests, indent=1, sort_keys=True) + "\n"
    if args.record:
        os.makedirs(os.path.dirname(RECORD), exist_ok=True)
        with open(RECORD + ".tmp", "w") as f:
            f.write(text)
        os.replace(RECORD + ".tmp", RECORD)
        print(f"wrote {RECORD}", file=sys.stderr)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
