"""The shipped models (models/pretrained): each loads, describes the system its name says, stays under
25 MB, has a .json with the reported metrics and the command that made them, and (DW4, LJ13, with
the shared data present) its NLL on the first test points agrees with the reported one."""
import glob
import json
import os

import numpy as np
import pytest

import openmmbg

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = sorted(glob.glob(os.path.join(ROOT, "models", "pretrained", "*.bgm")))
DATA = os.environ.get("OPENMMBG_DATA_DIR")
PARTICLES = {"dw4": (4, 2), "lj13": (13, 3), "aldp": (22, 3)}
TEST_SPLIT = {"dw4": "test_split_DW4.npy", "lj13": "test_split_LJ13-1000.npy"}


def test_models_are_shipped():
    assert MODELS, "no models in models/pretrained"


@pytest.mark.parametrize("path", MODELS, ids=[os.path.basename(p) for p in MODELS])
def test_shipped_model(path):
    name = os.path.basename(path)[: -len(".bgm")]
    system = name.split("-")[0]
    assert system in PARTICLES, f"{name}: unknown system prefix"
    assert os.path.getsize(path) < 25 * 2**20
    with open(path[: -len(".bgm")] + ".json") as f:
        meta = json.load(f)
    for key in ("nll", "nll_sem", "reverse_ess", "forward_ess", "num_test"):
        assert key in meta, f"{name}.json lacks {key}"
    assert any(k in meta for k in ("train_command", "command")), f"{name}.json lacks the command"
    flow = openmmbg.Flow.load(path)
    assert (flow.num_particles, flow.dim) == PARTICLES[system]
    if system == "aldp":
        assert meta["implicit_solvent"] in ("OBC1", "OBC2") and meta["temperature"] == flow.config["temperature"]
        return
    if not DATA or not os.path.isfile(os.path.join(DATA, "efm", TEST_SPLIT[system])):
        pytest.skip("no ../shared/data/efm test split")
    x = np.load(os.path.join(DATA, "efm", TEST_SPLIT[system])).astype(np.float64)
    x = x.reshape(len(x), *PARTICLES[system])[:100]
    x -= x.mean(axis=1, keepdims=True)
    log_q = flow.marginal_log_prob(x, num_aug_samples=20, seed=0)
    nll = -log_q.mean()
    sem = log_q.std(ddof=1) / np.sqrt(len(x))
    # 100 of the reported num_test points: their mean lies within 5 standard errors of the full mean.
    assert abs(nll - meta["nll"]) < 5 * sem, f"{name}: NLL {nll:.3f} on 100 test points, reported {meta['nll']:.3f}"
