"""One long run of MD with Boltzmann-generator proposals on alanine dipeptide (300 K, OBC2,
Reference platform, one core): P(phi > 0) every 5 minutes, the entries into phi > 0 and how many of
them came with an accepted proposal (the rest came by MD). The mixing diagnostic of docs/results.md.

    OMP_NUM_THREADS=1 scripts/python scripts/aldp-proposal-mixing.py MODEL SECONDS SEED PROPOSALS_PER_ATTEMPT

(e.g. models/pretrained/aldp-ic.bgm 1500 11 16; a proposal attempt every 50 steps, chirality guard on.)
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aldp_sampling_comparison import md_context, phi_positive  # noqa: E402

if len(sys.argv) != 5:
    sys.exit("usage: aldp-proposal-mixing.py MODEL SECONDS SEED PROPOSALS_PER_ATTEMPT")
model, T, seed, K = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ctx, move = md_context("OBC2", "Reference", seed, model, frequency=50, proposals=K)
integ = ctx.getIntegrator()
s = []; t = time.perf_counter(); last = 0; acc_in = 0; prev = False
while time.perf_counter() - t < T:
    a0 = move.getNumAccepted(ctx)
    integ.step(50)
    cur = phi_positive(ctx)
    if cur and not prev and move.getNumAccepted(ctx) > a0: acc_in += 1
    prev = cur; s.append(cur)
    if time.perf_counter() - t > last + 300:
        last += 300; x = np.array(s, float)
        print(f"{last:.0f} s: samples {len(x)} estimate {x.mean():.5f} entries {int((np.diff(x) > 0).sum())} (with an acceptance in the attempt: {acc_in}) acc {move.getNumAccepted(ctx)}/{move.getNumProposed(ctx)}", flush=True)
x = np.array(s, float)
print(f"final: samples {len(x)} estimate {x.mean():.5f} entries {int((np.diff(x) > 0).sum())} acc {move.getNumAccepted(ctx)}/{move.getNumProposed(ctx)}", flush=True)
