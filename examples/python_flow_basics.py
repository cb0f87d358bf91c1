"""The basics of openmmbg.Flow: build, sample, evaluate densities, save and reload.

Run with the freshly built module:

    scripts/python examples/python_flow_basics.py [model.bgm]

The flow is DW4-sized (4 particles in 2-D) with the spherical projection, untrained: with the
default identity initialisation q(x, a) is the base distribution, so the marginal log q(x) equals
the centre-of-mass-free Gaussian log-density. An optional argument names where to save the model
(a temporary directory otherwise).
"""
import math
import os
import sys
import tempfile

import numpy as np

import openmmbg


def main(path=None):
    # Only num_particles, dim and projection are required; every other key has a default.
    flow = openmmbg.Flow({"num_particles": 4, "dim": 2, "projection": "spherical", "init_seed": 1})
    print(flow)
    config = flow.config
    print(f"config: num_layers={config['num_layers']}, num_aug={config['num_aug']}, dtype={config['dtype']}, "
          f"aug_scale={config['aug_scale']} {config['length_unit']}, temperature={config['temperature']} K")

    # Samples: x [n, N, D] (zero centre of mass), a [n, N, A, D], and the joint log q(x, a) [n].
    x, a, log_q = flow.sample(5, seed=0)
    print(f"\nsample: x {x.shape}, a {a.shape}, log_q {log_q.shape}, dtype {x.dtype}")
    print("first configuration x[0] (nm):\n", np.array2string(x[0], precision=4))

    # The joint density of the samples agrees with the one returned by sample().
    log_p = flow.log_prob(x, a)
    print("\nlog q(x, a) from sample():   ", np.array2string(log_q, precision=5))
    print("log q(x, a) from log_prob(): ", np.array2string(log_p, precision=5))

    # Marginal log q(x) by importance sampling over a; exact here, as the flow is the identity.
    marginal = flow.marginal_log_prob(x, num_aug_samples=20, seed=0)
    N, D = flow.num_particles, flow.dim
    gaussian = -0.5 * (x**2).sum(axis=(1, 2)) - 0.5 * (N - 1) * D * math.log(2 * math.pi)
    print("marginal log q(x):           ", np.array2string(marginal, precision=5))
    print("CoM-free Gaussian log N(x):  ", np.array2string(gaussian, precision=5))
    print("log pi(a|x):                 ", np.array2string(flow.log_augmented_target(x, a), precision=5))

    # Save as a .bgm file and load it back: the densities are bit-identical.
    with tempfile.TemporaryDirectory() as tmp:
        target = path or os.path.join(tmp, "dw4-spherical.bgm")
        flow.save(target)
        loaded = openmmbg.Flow.load(target)
        same = np.array_equal(loaded.log_prob(x, a), log_p) and loaded.config == config
        print(f"\nsaved {target} ({os.path.getsize(target) / 1e6:.1f} MB); reloaded: {loaded}")
        print("reloaded model gives identical densities:", same)
    if not same:
        raise SystemExit("reloaded model differs")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
