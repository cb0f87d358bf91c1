"""One long run of MD with Boltzmann-generator proposals on alanine dipeptide (300 K, OBC2,
Reference platform, one core): P(phi > 0) every 5 minutes, the entries into phi > 0 and how many of
them came with an accepted proposal (the rest came by MD). The mixing diagnostic of docs/results.md.

    OMP_NUM_THREADS=1 scripts/python scripts/aldp-proposal-mixing.py MODEL SECONDS SEED PROPOSALS_PER_ATTEMPT

(e.g. models/pretrained/aldp-ic.bgm 1500 11 16; a proposal attempt every 50 steps, chirality guard on.)
"""
import sys, time, numpy as np, openmm as mm, openmm.unit as unit, openmmbg
from openmmbg import alanine_dipeptide as aldp
if len(sys.argv) != 5:
    sys.exit("usage: aldp-proposal-mixing.py MODEL SECONDS SEED PROPOSALS_PER_ATTEMPT")
model, T, seed, K = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
system, _, pos = aldp.create_system("OBC2")
move = openmmbg.BoltzmannGeneratorProposal(model); move.setFrequency(50); move.setNumProposals(K)
move.setTemperature(300*unit.kelvin); move.setRandomNumberSeed(seed); move.setChiralCenters([aldp.CHIRAL_CENTER]); system.addForce(move)
integ = mm.LangevinMiddleIntegrator(300*unit.kelvin, 1/unit.picosecond, 1*unit.femtosecond); integ.setRandomNumberSeed(seed)
ctx = mm.Context(system, integ, mm.Platform.getPlatformByName("Reference")); ctx.setPositions(pos); ctx.setVelocitiesToTemperature(300*unit.kelvin, seed)
s = []; t = time.perf_counter(); last = 0; acc_in = 0; prev = False
while time.perf_counter() - t < T:
    a0 = move.getNumAccepted(ctx)
    integ.step(50)
    y = ctx.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    cur = aldp.dihedral(y[None], aldp.PHI_ATOMS)[0] > 0
    if cur and not prev and move.getNumAccepted(ctx) > a0: acc_in += 1
    prev = cur; s.append(cur)
    if time.perf_counter() - t > last + 300:
        last += 300; x = np.array(s, float)
        print(f"{last:.0f} s: samples {len(x)} estimate {x.mean():.5f} entries {int((np.diff(x) > 0).sum())} (with an acceptance in the attempt: {acc_in}) acc {move.getNumAccepted(ctx)}/{move.getNumProposed(ctx)}", flush=True)
x = np.array(s, float)
print(f"final: samples {len(x)} estimate {x.mean():.5f} entries {int((np.diff(x) > 0).sum())} acc {move.getNumAccepted(ctx)}/{move.getNumProposed(ctx)}", flush=True)
