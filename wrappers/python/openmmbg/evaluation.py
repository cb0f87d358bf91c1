"""Evaluation plots: a flow's samples against data, as histograms of inter-particle distances and
of energies (PNG, via matplotlib's Agg backend)."""
import numpy as np

from ._flow import target_energies


def interparticle_distances(x):
    """All pairwise distances |x_i - x_j| (i < j) of configurations ``x`` ``[n, N, D]``, flattened."""
    x = np.asarray(x, dtype=np.float64)
    diff = x[:, :, None, :] - x[:, None, :, :]
    d = np.sqrt((diff**2).sum(-1))
    i, j = np.triu_indices(x.shape[1], k=1)
    return d[:, i, j].reshape(-1)


def plot_flow_against_data(flow, target, data, path, num_samples=10000, seed=0, bins=100):
    """Write a PNG comparing flow samples with ``data`` ``[n, N, D]`` for a built-in target.

    Left: histogram of inter-particle distances; right: histogram of reduced energies U/kT (flow
    samples, and flow samples reweighted by their importance weights). Returns the figure's data as
    a dict of arrays, so callers can test or re-plot it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, a, log_q = flow.sample(num_samples, seed=seed)
    energy_flow = target_energies(target, x)
    energy_data = target_energies(target, data)
    log_w = -energy_flow + flow.log_augmented_target(x, a) - log_q
    finite = np.isfinite(log_w)
    w = np.zeros_like(log_w)
    w[finite] = np.exp(log_w[finite] - log_w[finite].max())
    d_flow, d_data = interparticle_distances(x), interparticle_distances(data)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.hist(d_data, bins=bins, density=True, histtype="step", label="data")
    ax1.hist(d_flow, bins=bins, density=True, histtype="step", label="flow")
    ax1.set_xlabel("inter-particle distance")
    ax1.set_ylabel("density")
    ax1.legend()
    lo, hi = np.percentile(energy_data, [0.5, 99.5])
    span = hi - lo
    e_bins = np.linspace(lo - 0.2 * span, hi + 0.2 * span, bins)
    ax2.hist(energy_data, bins=e_bins, density=True, histtype="step", label="data")
    ax2.hist(energy_flow[finite], bins=e_bins, density=True, histtype="step", label="flow")
    if w.sum() > 0:
        ax2.hist(energy_flow, bins=e_bins, weights=w, density=True, histtype="step", label="flow, reweighted")
    ax2.set_xlabel("energy / kT")
    ax2.legend()
    fig.suptitle(f"{target}: {flow.config['projection']}-proj flow against data")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return {"distances_flow": d_flow, "distances_data": d_data, "energy_flow": energy_flow,
            "energy_data": energy_data, "log_weights": log_w}
