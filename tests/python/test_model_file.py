"""Saving and loading: .bgm files, bytes, pickling, corrupt files, and reading the format with numpy."""
import json
import pathlib
import pickle

import numpy as np
import pytest

import openmmbg
from helpers import random_state, small_flow


@pytest.fixture
def flow():
    return small_flow(3, "spherical", num_aug=3, num_particles=5)


@pytest.fixture
def saved(flow, tmp_path):
    path = tmp_path / "model.bgm"
    flow.save(path)
    return path


def header_and_data(raw):
    """(header dict, data section) of .bgm bytes: 8-byte little-endian length, JSON header, data."""
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_len].decode("utf-8"))
    return header, raw[8 + header_len :], 8 + header_len


def test_save_load_round_trip_is_bit_identical(flow, saved, rng):
    x, a = random_state(flow, 5, rng)
    loaded = openmmbg.Flow.load(saved)  # os.PathLike
    assert loaded.config == flow.config
    assert np.array_equal(loaded.log_prob(x, a), flow.log_prob(x, a))
    assert np.array_equal(loaded.marginal_log_prob(x, 4, seed=1), flow.marginal_log_prob(x, 4, seed=1))
    again = openmmbg.Flow.load(str(saved))  # str
    assert again.to_bytes() == flow.to_bytes() == saved.read_bytes()
    # Loading the saved file of the loaded model gives the same bytes again.
    path2 = saved.with_name("again.bgm")
    loaded.save(str(path2))
    assert path2.read_bytes() == saved.read_bytes()


def test_bytes_and_pickle_round_trip(flow, rng):
    x, a = random_state(flow, 3, rng)
    raw = flow.to_bytes()
    assert isinstance(raw, bytes)
    for copy in (openmmbg.Flow.from_bytes(raw), openmmbg.Flow.from_bytes(bytearray(raw)),
                 openmmbg.Flow.from_bytes(memoryview(raw)), pickle.loads(pickle.dumps(flow))):
        assert isinstance(copy, openmmbg.Flow)
        assert copy.config == flow.config
        assert np.array_equal(copy.log_prob(x, a), flow.log_prob(x, a))
    with pytest.raises(TypeError, match="bytes-like"):
        openmmbg.Flow.from_bytes("not bytes")


def test_file_is_readable_with_numpy_alone(flow, saved):
    """The format is torch-free: safetensors-like, every tensor a slice of the data section."""
    raw = saved.read_bytes()
    header, data, data_start = header_and_data(raw)
    assert data_start % 8 == 0
    meta = header.pop("__metadata__")
    assert meta["format"] == "openmmbg-flow"
    assert json.loads(meta["config"]) == flow.config
    assert header, "no tensors in the file"
    total = 0
    ends = []
    for name, entry in header.items():
        assert entry["dtype"] == "F64"  # the model is float64
        begin, end = entry["data_offsets"]
        tensor = np.frombuffer(data[begin:end], dtype="<f8").reshape(entry["shape"])
        assert tensor.size == int(np.prod(entry["shape"]))
        assert np.all(np.isfinite(tensor)), name
        total += tensor.size
        ends.append(end)
    assert total == flow.num_parameters
    assert max(ends) == len(data)
    assert meta["checksum"].startswith("fnv1a64:") and len(meta["checksum"]) == len("fnv1a64:") + 16


def fnv1a64(data, basis=0xCBF29CE484222325):
    h = basis
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def test_checksum_is_standard_fnv1a64_of_the_data_section(tmp_path):
    flow = small_flow(2, "none", num_particles=2, num_layers=1)
    header, data, _ = header_and_data(flow.to_bytes())
    assert header["__metadata__"]["checksum"] == f"fnv1a64:{fnv1a64(data):016x}"


def test_header_checksum_is_fnv1a64_of_the_canonical_header(tmp_path):
    """The documented recipe (docs/model-format.md) reproduces the writer's header checksum."""
    flow = small_flow(2, "none", num_particles=2, num_layers=1)
    header, _, _ = header_and_data(flow.to_bytes())
    stored = header["__metadata__"].pop("header_checksum")
    assert header["__metadata__"]["format_version"] == "2"
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert stored == f"fnv1a64:{fnv1a64(text):016x}"


def test_float32_model_file_holds_float32_tensors(tmp_path):
    flow = small_flow(2, "spherical", dtype="float32")
    path = tmp_path / "f32.bgm"
    flow.save(path)
    header, data, _ = header_and_data(path.read_bytes())
    del header["__metadata__"]
    name, entry = next(iter(header.items()))
    assert entry["dtype"] == "F32"
    begin, end = entry["data_offsets"]
    assert np.frombuffer(data[begin:end], dtype="<f4").reshape(entry["shape"]).dtype == np.float32


def test_truncated_file_raises(saved, tmp_path):
    raw = saved.read_bytes()
    bad = tmp_path / "truncated.bgm"
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(RuntimeError, match="truncated"):
        openmmbg.Flow.load(bad)
    with pytest.raises(RuntimeError, match="truncated"):
        openmmbg.Flow.from_bytes(raw[:4])


def test_flipped_data_byte_gives_checksum_error(saved, tmp_path):
    raw = bytearray(saved.read_bytes())
    _, data, data_start = header_and_data(bytes(raw))
    raw[data_start + len(data) // 2] ^= 0xFF
    bad = tmp_path / "flipped.bgm"
    bad.write_bytes(bytes(raw))
    with pytest.raises(RuntimeError, match="checksum mismatch"):
        openmmbg.Flow.load(bad)


def test_not_a_model_file_raises(tmp_path):
    bad = tmp_path / "text.bgm"
    bad.write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(RuntimeError, match="no __metadata__"):
        openmmbg.Flow.load(bad)
    bad.write_bytes(b"\xff" * 64)
    with pytest.raises(RuntimeError, match="implausible"):
        openmmbg.Flow.load(bad)


def test_missing_file_and_directory(flow, tmp_path):
    missing = tmp_path / "missing.bgm"
    with pytest.raises(FileNotFoundError, match="missing.bgm"):
        openmmbg.Flow.load(missing)
    with pytest.raises(OSError):
        openmmbg.Flow.load(tmp_path)  # a directory
    with pytest.raises(FileNotFoundError, match="no_such_dir"):
        flow.save(tmp_path / "no_such_dir" / "model.bgm")
    with pytest.raises(TypeError, match="os.PathLike"):
        openmmbg.Flow.load(3)


def test_save_overwrites_atomically(flow, saved):
    other = small_flow(2, "vector")
    other.save(saved)
    assert openmmbg.Flow.load(saved).config == other.config
    assert sorted(p.name for p in pathlib.Path(saved).parent.iterdir()) == ["model.bgm"]  # no temporary left
