#!/usr/bin/env python3
"""Which energy convention do the DW4 and LJ13 data sets in ../shared/data/efm follow?

The LJ formula of the E-ACF paper (docs/eacf-mapping.md#target-energies) is

    U(x) = pairFactor * eps/tau * sum_{i != j} [(rm/d_ij)^12 - 2 (rm/d_ij)^6] + 0.5 sum_i |x_i - xbar|^2

with pairFactor = 0.5 (each unordered pair once) in some code bases and 1.0 (each pair twice) in
others. The two are different Boltzmann distributions exp(-U), so the data can follow at most one.
Three independent checks, each under both conventions:

1. Configurational temperature. For samples of p ~ exp(-U), integration by parts gives
   <|grad U|^2> = <laplacian U>, so T_conf = <|grad U|^2> / <laplacian U> must be 1 (kT = 1).
   No MCMC needed; computed on all data rows.
2. Long Metropolis MCMC under each convention (all-particle Gaussian moves projected onto the
   zero-centre-of-mass subspace, step adapted during burn-in only, many independent chains started
   from data configurations). The energy and nearest-neighbour distance distributions of the
   chains are compared with those of the data: mean +- standard error and the two-sample
   Kolmogorov-Smirnov distance. Under the right convention the chains start in equilibrium and
   stay there; under the wrong one they drift away from the data.
3. The energy histograms of data and MCMC on common bins.
4. A score-matching (Stein) fit: the coefficients theta of U = sum_k theta_k f_k (f = the pair sums
   over unordered pairs of d^-12 and d^-6, and the tether) that the data follow, from
   <grad f_k . grad U> = <laplacian f_k>. pairFactor 0.5 predicts (1, -2, 0.5), 1.0 predicts (2, -4, 0.5).

The same is done for DW4 (U = 1/(2 tau) sum_{i != j} [b (d-d0)^2 + c (d-d0)^4], a = 0, b = -4,
c = 0.9, d0 = 4, tau = 1; the data need centring), where the alternative is a factor 1 instead of
1/2 on the ordered-pair sum.

numpy only, one core, 3-4 minutes (--quick: about 30 s):

    OMP_NUM_THREADS=1 .venv/bin/python scripts/analysis/lj_convention.py [--data-dir DIR] [--quick]
"""
import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import time

import numpy as np


# ---------------------------------------------------------------------------------------------
# Energies, gradients and Laplacians (batched over configurations x [B, N, D])
# ---------------------------------------------------------------------------------------------

class PairSystem:
    """U(x) = f * sum_{i != j} phi(d_ij) + k * sum_i |x_i - xbar|^2, f = pair factor on ordered pairs."""

    def __init__(self, n, dim, phi, dphi, d2phi, pair_factor, tether):
        self.n, self.dim = n, dim
        self.phi, self.dphi, self.d2phi = phi, dphi, d2phi
        self.w = 2.0 * pair_factor  # weight of each unordered pair
        self.tether = tether
        self.iu, self.ju = np.triu_indices(n, 1)

    def energy(self, x):
        diff = x[:, self.iu] - x[:, self.ju]
        r = np.sqrt((diff * diff).sum(-1))
        e = self.w * self.phi(r).sum(-1)
        if self.tether:
            c = x - x.mean(1, keepdims=True)
            e = e + self.tether * (c * c).sum((1, 2))
        return e

    def grad_sq_and_laplacian(self, x):
        """|grad U|^2 [B] and laplacian U [B] (full R^{N D}; equal to the zero-CoM ones since U is translation invariant)."""
        diff = x[:, self.iu] - x[:, self.ju]          # [B, P, D]
        r = np.sqrt((diff * diff).sum(-1))            # [B, P]
        dp = self.w * self.dphi(r)
        g_pair = (dp / r)[..., None] * diff           # gradient w.r.t. x_i of the pair term; -that for x_j
        grad = np.zeros_like(x)
        np.add.at(grad, (slice(None), self.iu), g_pair)
        np.add.at(grad, (slice(None), self.ju), -g_pair)
        # laplacian of phi(|x_i - x_j|) w.r.t. x_i (and the same w.r.t. x_j): phi'' + (D - 1) phi'/r
        lap = 2.0 * (self.w * self.d2phi(r) + (self.dim - 1) * dp / r).sum(-1)
        if self.tether:
            grad = grad + 2.0 * self.tether * (x - x.mean(1, keepdims=True))
            lap = lap + 2.0 * self.tether * self.dim * (self.n - 1)
        return (grad * grad).sum((1, 2)), lap

    def nn_distance(self, x, chunk=5000):
        """Each particle's nearest-neighbour distance, flattened [B * N]."""
        out = []
        for i in range(0, len(x), chunk):
            diff = x[i:i + chunk, :, None, :] - x[i:i + chunk, None, :, :]
            r = np.sqrt((diff * diff).sum(-1))
            r[:, np.arange(self.n), np.arange(self.n)] = np.inf
            out.append(r.min(-1).reshape(-1))
        return np.concatenate(out)


def lj_system(n, pair_factor, eps=1.0, rm=1.0):
    def phi(r):
        q6 = (rm / r) ** 6
        return eps * (q6 * q6 - 2.0 * q6)

    def dphi(r):
        q6 = (rm / r) ** 6
        return eps * (-12.0 * q6 * q6 + 12.0 * q6) / r

    def d2phi(r):
        q6 = (rm / r) ** 6
        return eps * (156.0 * q6 * q6 - 84.0 * q6) / (r * r)

    return PairSystem(n, 3, phi, dphi, d2phi, pair_factor, tether=0.5)


def dw_system(pair_factor, b=-4.0, c=0.9, d0=4.0):
    def phi(r):
        s = r - d0
        return b * s ** 2 + c * s ** 4

    def dphi(r):
        s = r - d0
        return 2.0 * b * s + 4.0 * c * s ** 3

    def d2phi(r):
        s = r - d0
        return 2.0 * b + 12.0 * c * s ** 2

    return PairSystem(4, 2, phi, dphi, d2phi, pair_factor, tether=0.0)


# ---------------------------------------------------------------------------------------------
# Score-matching (Stein) fit of the potential's coefficients
# ---------------------------------------------------------------------------------------------

def _pairs(x):
    n = x.shape[1]
    i, j = np.triu_indices(n, 1)
    d = x[:, i] - x[:, j]
    return i, j, d, np.sqrt((d * d).sum(-1))


def radial_feature(dphi, d2phi):
    """f(x) = sum_{i<j} phi(d_ij): returns (grad f [B, N, D], laplacian f [B])."""
    def feature(x):
        i, j, d, r = _pairs(x)
        gp = (dphi(r) / r)[..., None] * d
        g = np.zeros_like(x)
        np.add.at(g, (slice(None), i), gp)
        np.add.at(g, (slice(None), j), -gp)
        return g, 2.0 * (d2phi(r) + (x.shape[2] - 1) * dphi(r) / r).sum(-1)
    return feature


def tether_feature(x):
    """f(x) = sum_i |x_i - xbar|^2."""
    n, dim = x.shape[1], x.shape[2]
    return 2.0 * (x - x.mean(1, keepdims=True)), np.full(len(x), 2.0 * dim * (n - 1))


def stein_fit(x, features, blocks=20):
    """Coefficients theta of U = sum_k theta_k f_k that the samples x follow: for p ~ exp(-U),
    <grad f_k . grad U> = <laplacian f_k> for every k (integration by parts), a linear system in
    theta (score matching). Returns theta and jackknife standard errors over contiguous blocks."""
    gs, ls = zip(*(f(x) for f in features))
    k = len(features)
    A = np.stack([np.stack([(gs[a] * gs[b]).sum((1, 2)) for b in range(k)], -1) for a in range(k)], 1)  # [B, k, k]
    L = np.stack(ls, -1)                                                                              # [B, k]
    theta = np.linalg.solve(A.mean(0), L.mean(0))
    m = len(x) // blocks
    Ab = A[: m * blocks].reshape(blocks, m, k, k).sum(1)
    Lb = L[: m * blocks].reshape(blocks, m, k).sum(1)
    jack = np.array([np.linalg.solve(Ab.sum(0) - Ab[i], Lb.sum(0) - Lb[i]) for i in range(blocks)])
    se = np.sqrt((blocks - 1) / blocks * ((jack - jack.mean(0)) ** 2).sum(0))
    return theta, se


LJ_FEATURES = (["sum_{i<j} d^-12", "sum_{i<j} d^-6", "sum_i |x_i - xbar|^2"],
               [radial_feature(lambda r: -12.0 * r ** -13, lambda r: 156.0 * r ** -14),
                radial_feature(lambda r: -6.0 * r ** -7, lambda r: 42.0 * r ** -8),
                tether_feature])
DW_FEATURES = (["sum_{i<j} (d-4)", "sum_{i<j} (d-4)^2", "sum_{i<j} (d-4)^4"],
               [radial_feature(lambda r: np.ones_like(r), lambda r: np.zeros_like(r)),
                radial_feature(lambda r: 2.0 * (r - 4.0), lambda r: np.full_like(r, 2.0)),
                radial_feature(lambda r: 4.0 * (r - 4.0) ** 3, lambda r: 12.0 * (r - 4.0) ** 2)])


def report_stein(label, x, features, expected):
    names, fs = features
    theta, se = stein_fit(x, fs)
    print(f"\n  score-matching fit of U = sum_k theta_k f_k to the {label} data ({len(x)} rows; jackknife s.e.):")
    for n, t, e in zip(names, theta, se):
        print(f"    {n:24s} theta = {t:8.4f} +- {e:.4f}")
    for conv, exp in expected.items():
        print(f"    expected under {conv}: " + ", ".join(f"{v:g}" for v in exp))
    return theta, se


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------

def ks_distance(a, b):
    """Two-sample Kolmogorov-Smirnov distance sup |F_a - F_b|."""
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    fa = np.searchsorted(a, grid, side="right") / len(a)
    fb = np.searchsorted(b, grid, side="right") / len(b)
    return float(np.abs(fa - fb).max())


def mean_se(v, blocks=50):
    """Mean and its standard error from block means (robust to serial correlation in the rows)."""
    v = np.asarray(v)
    m = len(v) // blocks
    bm = v[: m * blocks].reshape(blocks, m).mean(1)
    return float(v.mean()), float(bm.std(ddof=1) / np.sqrt(blocks))


def conf_temperature(system, x, chunk=2000):
    g2, lap = [], []
    for i in range(0, len(x), chunk):
        a, b = system.grad_sq_and_laplacian(x[i:i + chunk])
        g2.append(a)
        lap.append(b)
    g2, lap = np.concatenate(g2), np.concatenate(lap)
    t = g2.mean() / lap.mean()
    # delta-method standard error from block means of (g2, lap)
    blocks = 50
    m = len(g2) // blocks
    bg = g2[: m * blocks].reshape(blocks, m).mean(1)
    bl = lap[: m * blocks].reshape(blocks, m).mean(1)
    rb = bg / bl
    return float(t), float(rb.std(ddof=1) / np.sqrt(blocks))


# ---------------------------------------------------------------------------------------------
# Metropolis MCMC, vectorised over independent chains
# ---------------------------------------------------------------------------------------------

def metropolis(system, x0, rng, burn, steps, every, step0, target_acc=0.35):
    """All-particle Gaussian moves in the zero-CoM subspace. Returns recorded configurations
    [steps // every, C, N, D], their energies [steps // every, C], the burn-in energy trace and the
    production acceptance rate. The step size is adapted during burn-in only."""
    x = x0 - x0.mean(1, keepdims=True)
    e = system.energy(x)
    step = step0
    trace = []
    acc_window = []
    recs, erecs = [], []
    acc_prod = 0.0
    for t in range(burn + steps):
        prop = x + step * rng.standard_normal(x.shape)
        prop -= prop.mean(1, keepdims=True)
        ep = system.energy(prop)
        accept = np.log(rng.random(len(e))) < (e - ep)
        x[accept] = prop[accept]
        e[accept] = ep[accept]
        a = accept.mean()
        if t < burn:
            acc_window.append(a)
            if len(acc_window) == 100:
                step *= np.exp(np.mean(acc_window) - target_acc)
                acc_window = []
            if t % max(1, burn // 10) == 0:
                trace.append((t, float(e.mean())))
        else:
            acc_prod += a
            if (t - burn) % every == every - 1:
                recs.append(x.copy())
                erecs.append(e.copy())
    trace.append((burn, float(e.mean())))
    return np.array(recs), np.array(erecs), trace, acc_prod / steps, step


def chain_mean_se(erecs):
    """Mean over all records and the standard error from the spread of per-chain means (chains independent)."""
    per_chain = erecs.mean(0)
    return float(erecs.mean()), float(per_chain.std(ddof=1) / np.sqrt(len(per_chain)))


def histogram_table(data_e, mcmc_e, bins=12):
    lo, hi = np.quantile(np.concatenate([data_e, mcmc_e]), [0.002, 0.998])
    edges = np.linspace(lo, hi, bins + 1)
    hd, _ = np.histogram(data_e, edges, density=True)
    hm, _ = np.histogram(mcmc_e, edges, density=True)
    lines = ["      bin centre   data density   MCMC density"]
    for c, a, b in zip(0.5 * (edges[1:] + edges[:-1]), hd, hm):
        lines.append(f"      {c:10.3f}   {a:12.4f}   {b:12.4f}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------

def short_pair_fraction(x, threshold):
    """Fraction of pair distances below threshold (for DW4: pairs in the inner well, d < d0)."""
    return float((_pairs(x)[3] < threshold).mean())


def study(label, data, conventions, rng, chains, burn, steps, every, step0, n_data_energy, pair_threshold=None):
    print(f"\n=== {label}: {len(data)} data configurations, {data.shape[1]} particles x {data.shape[2]} ===")
    results = {}
    nn_data = None
    for name, system in conventions:
        t0 = time.time()
        e_data = system.energy(data[:n_data_energy])
        tc, tc_se = conf_temperature(system, data[:n_data_energy])
        starts = data[rng.choice(len(data), chains, replace=False)].copy()
        recs, erecs, trace, acc, step = metropolis(system, starts, rng, burn, steps, every, step0)
        e_mcmc = erecs.reshape(-1)
        m_data, se_data = mean_se(e_data)
        m_mcmc, se_mcmc = chain_mean_se(erecs)
        half = len(erecs) // 2
        m1, _ = chain_mean_se(erecs[:half])
        m2, _ = chain_mean_se(erecs[half:])
        ks_e = ks_distance(e_data, e_mcmc)
        if nn_data is None:
            nn_data = system.nn_distance(data[:n_data_energy])
        flat = recs.reshape(-1, *recs.shape[2:])
        nn_mcmc = system.nn_distance(flat[:: max(1, len(flat) // 40000)])
        ks_nn = ks_distance(nn_data, nn_mcmc)
        results[name] = dict(m_data=m_data, se_data=se_data, m_mcmc=m_mcmc, se_mcmc=se_mcmc, ks_e=ks_e,
                             ks_nn=ks_nn, tc=tc, tc_se=tc_se)
        print(f"\n  convention {name}")
        print(f"    configurational temperature of the data <|grad U|^2>/<lap U> = {tc:.4f} +- {tc_se:.4f}"
              "  (1 if the data follow this U)")
        print(f"    MCMC: {chains} chains from data rows, {burn} burn-in + {steps} production all-particle steps,"
              f" step {step:.4f}, acceptance {acc:.3f}, {time.time() - t0:.0f} s")
        print("    burn-in mean-energy trace (step: <U>): " + ", ".join(f"{t}: {v:.2f}" for t, v in trace))
        print(f"    production halves: <U> = {m1:.3f} / {m2:.3f}")
        print(f"    <U> data = {m_data:.3f} +- {se_data:.3f}   MCMC = {m_mcmc:.3f} +- {se_mcmc:.3f}"
              f"   difference = {m_mcmc - m_data:+.3f} +- {np.hypot(se_data, se_mcmc):.3f}")
        print(f"    mean NN distance: data = {nn_data.mean():.4f}   MCMC = {nn_mcmc.mean():.4f}")
        print(f"    KS distance data vs MCMC: energy {ks_e:.4f}, nearest-neighbour distance {ks_nn:.4f}")
        if pair_threshold is not None:
            sub = flat[:: max(1, len(flat) // 40000)]
            print(f"    fraction of pair distances < {pair_threshold:g}: data = {short_pair_fraction(data, pair_threshold):.4f}"
                  f"   MCMC = {short_pair_fraction(sub, pair_threshold):.4f}")
        print("    energy histograms:\n" + histogram_table(e_data, e_mcmc))
    return results


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=os.environ.get("OPENMMBG_DATA_DIR",
                                                         os.path.join(here, "..", "..", "..", "shared", "data")))
    ap.add_argument("--quick", action="store_true", help="short chains (smoke test, ~30 s)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    efm = os.path.join(args.data_dir, "efm")
    scale = 10 if args.quick else 1
    t0 = time.time()

    lj = np.concatenate([np.load(os.path.join(efm, f)) for f in ("val_split_LJ13-1000.npy", "test_split_LJ13-1000.npy")])
    lj = lj.astype(np.float64).reshape(-1, 13, 3)
    print(f"LJ13 data: max |centre of mass| = {np.abs(lj.mean(1)).max():.2e}")
    lj_theta = report_stein("LJ13", lj, LJ_FEATURES, {"pairFactor 0.5": (1, -2, 0.5), "pairFactor 1.0": (2, -4, 0.5)})
    lj_res = study("LJ13", lj, [("pairFactor 0.5 (each unordered pair once)", lj_system(13, 0.5)),
                                ("pairFactor 1.0 (each pair twice)", lj_system(13, 1.0))],
                   rng, chains=256, burn=10000 // scale, steps=100000 // scale, every=100, step0=0.05,
                   n_data_energy=len(lj))

    dw = np.load(os.path.join(efm, "train_split_DW4.npy")).astype(np.float64).reshape(-1, 4, 2)
    print(f"\nDW4 data: max |centre of mass| before centring = {np.abs(dw.mean(1)).max():.2f}")
    dw = dw - dw.mean(1, keepdims=True)
    dw_theta = report_stein("DW4 (train split, centred)", dw, DW_FEATURES,
                            {"1/2 on the ordered-pair sum": (0, -4, 0.9), "1 on the ordered-pair sum": (0, -8, 1.8)})
    dw_res = study("DW4", dw, [("1/2 on the ordered-pair sum (= unordered pairs once)", dw_system(0.5)),
                               ("1 on the ordered-pair sum", dw_system(1.0))],
                   rng, chains=256, burn=5000 // scale, steps=60000 // scale, every=50, step0=0.2,
                   n_data_energy=len(dw), pair_threshold=4.0)

    print("\n=== summary ===")
    for label, res in (("LJ13", lj_res), ("DW4", dw_res)):
        for name, r in res.items():
            print(f"{label:5s} {name:52s} T_conf {r['tc']:.4f}+-{r['tc_se']:.4f}  <U> data {r['m_data']:8.3f}+-{r['se_data']:.3f}"
                  f"  MCMC {r['m_mcmc']:8.3f}+-{r['se_mcmc']:.3f}  KS(U) {r['ks_e']:.4f}  KS(NN) {r['ks_nn']:.4f}")
    for label, (theta, se) in (("LJ13", lj_theta), ("DW4", dw_theta)):
        print(f"{label:5s} score-matching coefficients: " + ", ".join(f"{t:.4f}+-{e:.4f}" for t, e in zip(theta, se)))
    print(f"total time {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
