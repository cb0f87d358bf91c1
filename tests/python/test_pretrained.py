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
SYSTEMS = openmmbg.builtin_systems()  # dw4, lj13: sizes and test splits from the catalog
ALDP_SHAPE = (22, 3)  # alanine dipeptide is not a built-in system of the catalog


def shape(system):
    """(N, D) of a shipped model's system."""
    return ALDP_SHAPE if system == "aldp" else (SYSTEMS[system]["num_particles"], SYSTEMS[system]["dim"])


def test_models_are_shipped():
    assert MODELS, "no models in models/pretrained"


@pytest.mark.parametrize("path", MODELS, ids=[os.path.basename(p) for p in MODELS])
def test_shipped_model(path):
    name = os.path.basename(path)[: -len(".bgm")]
    system = name.split("-")[0]
    assert system == "aldp" or system in SYSTEMS, f"{name}: unknown system prefix"
    assert os.path.getsize(path) < 25 * 2**20
    with open(path[: -len(".bgm")] + ".json") as f:
        meta = json.load(f)
    for key in ("nll", "nll_sem", "reverse_ess", "forward_ess", "num_test"):
        assert key in meta, f"{name}.json lacks {key}"
    assert any(k in meta for k in ("train_command", "command")), f"{name}.json lacks the command"
    flow = openmmbg.Flow.load(path)
    assert (flow.num_particles, flow.dim) == shape(system)
    if system == "aldp":
        assert meta["implicit_solvent"] in ("OBC1", "OBC2") and meta["temperature"] == flow.config["temperature"]
        return
    data = SYSTEMS[system]["data"]
    test = data["test"]
    test_file = os.path.join(DATA, data["folder"], test["file"]) if DATA else None
    if test_file is None or not os.path.isfile(test_file):
        pytest.skip(f"no ../shared/data/{data['folder']} test split")
    x = np.load(test_file).astype(np.float64)
    # A continuous flow's exact log q costs N D divergence replicas per solver step (about 10 s per
    # LJ13 point on one core): fewer points for it, so that the test stays at a minute or so.
    num_points = min(100, 400 // (flow.num_particles * flow.dim)) if flow.family == "ecnf" else 100
    x = x.reshape(len(x), *shape(system))[test["begin"]:test["end"]][:num_points]
    x -= x.mean(axis=1, keepdims=True)
    log_q = flow.marginal_log_prob(x, num_aug_samples=20, seed=0)
    nll = -log_q.mean()
    sem = log_q.std(ddof=1) / np.sqrt(len(x))
    # The first num_points of the reported num_test points: their mean lies within 5 standard errors of the full mean.
    assert abs(nll - meta["nll"]) < 5 * sem, f"{name}: NLL {nll:.3f} on {len(x)} test points, reported {meta['nll']:.3f}"
