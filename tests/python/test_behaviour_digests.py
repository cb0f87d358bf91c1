"""Behaviour is unchanged: MD with proposals (Reference platform), the first losses of ML and FAB
runs and a shipped model's evaluation, for fixed seeds, against tests/python/data/behaviour-digests.json
(recorded by `scripts/python tests/python/behaviour_digests.py --record` before a refactor).

Counts of proposed and accepted moves must match exactly. Floats are compared to 1e-9 relative: on
the machine that recorded them they are bit-identical (compare the JSON output itself for that), and
the tolerance only absorbs a different CPU's vectorised rounding, far below any change of behaviour.
"""
import json
import math
import os

import pytest

import behaviour_digests

TOLERANCE = 1e-9


def _close(a, b):
    if a == b:
        return True
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b) or math.isinf(a) or math.isinf(b):
            return False
        return abs(a - b) <= TOLERANCE * max(1.0, abs(a), abs(b))
    return False


def _compare(recorded, fresh, path="", failures=None):
    """Collect the paths where fresh differs from recorded (strings holding floats compared as floats)."""
    failures = [] if failures is None else failures
    if isinstance(recorded, dict):
        if set(recorded) != set(fresh):
            failures.append(f"{path}: keys {sorted(recorded)} != {sorted(fresh)}")
        for key in recorded:
            if key in fresh and key != "sha256":
                _compare(recorded[key], fresh[key], f"{path}/{key}", failures)
    elif isinstance(recorded, list):
        if len(recorded) != len(fresh):
            failures.append(f"{path}: length {len(recorded)} != {len(fresh)}")
        for i, (r, f) in enumerate(zip(recorded, fresh)):
            _compare(r, f, f"{path}[{i}]", failures)
    elif isinstance(recorded, str):
        try:
            r, f = float(recorded), float(fresh)
        except ValueError:
            r, f = recorded, fresh
        if not (_close(r, f) or (isinstance(r, float) and math.isnan(r) and math.isnan(f))):
            failures.append(f"{path}: {recorded} != {fresh}")
    elif isinstance(recorded, float):
        if not _close(recorded, fresh):
            failures.append(f"{path}: {recorded!r} != {fresh!r}")
    elif recorded != fresh:
        failures.append(f"{path}: {recorded!r} != {fresh!r}")
    return failures


@pytest.fixture(scope="module")
def digests():
    if not os.path.isdir(os.path.join(behaviour_digests.data_dir(), "efm")):
        pytest.fail(f"the DW4/LJ13 data are missing from {behaviour_digests.data_dir()} (set OPENMMBG_DATA_DIR)")
    with open(behaviour_digests.RECORD) as f:
        recorded = json.load(f)
    return recorded, behaviour_digests.compute()


@pytest.mark.parametrize("name", ["md_harmonic_untrained", "md_lj13_shipped", "ml_first_losses", "fab_first_losses",
                                  "evaluation_dw4_spherical"])
def test_behaviour_matches_the_record(digests, name):
    recorded, fresh = digests
    failures = _compare(recorded[name], fresh[name], name)
    assert not failures, "\n".join(failures[:20])


def test_the_record_exercises_acceptance(digests):
    recorded, _ = digests
    md = recorded["md_harmonic_untrained"]
    assert 0 < md["accepted"] < md["proposed"], "the harmonic run must accept some proposals and reject others"


def test_the_comparison_has_power():
    recorded = {"a": "0.5", "b": [1, "2.0"]}
    assert _compare(recorded, {"a": "0.5", "b": [1, "2.0"]}) == []
    assert _compare(recorded, {"a": "0.5000001", "b": [1, "2.0"]})
    assert _compare(recorded, {"a": "0.5", "b": [2, "2.0"]})
