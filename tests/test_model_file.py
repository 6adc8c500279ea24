"""Model files refuse damage: `Network.load` checks everything before it builds a network,
and any problem is a ValueError "<path> is not a denseprop model file: <what>"."""

import collections
import io
import json
import os
import pickle
import re
import zipfile

import denseprop
import fuzz_model_file
import numpy as np
import pytest
from denseprop import model_file

CASES = int(os.environ.get("DENSEPROP_MODEL_FUZZ_CASES", "1500"))


@pytest.fixture
def saved(tmp_path, rng):
    net = denseprop.Network([4, 5, 3], "relu", dtype="float64", seed=0)
    x, y = rng.standard_normal((16, 4)), rng.integers(0, 3, 16)
    net.fit(x, y, epochs=2, optimizer="adam", lr=0.01, seed=0)
    path = tmp_path / "net.npz"
    net.save(path)
    return net, path


def rewrite(path, change):
    """Rewrites the model file at ``path`` with ``change(arrays)`` applied."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    change(arrays)
    path.write_bytes(fuzz_model_file.savez(arrays))


def refused(path, match):
    prefix = re.escape(f"{path} is not a denseprop model file: ")
    with pytest.raises(ValueError, match=f"^{prefix}{match}"):
        denseprop.Network.load(path)


def test_the_file_has_a_format_version_and_loads_without_pickle(saved):
    net, path = saved
    with np.load(path, allow_pickle=False) as f:
        assert int(f["format_version"]) == model_file.FORMAT_VERSION == 2
        assert set(json.loads(str(f["config"]))) == {"network", "optimizer"}
    same = denseprop.Network.load(path)
    assert same._core.params.tobytes() == net._core.params.tobytes()
    assert same.optimizer == net.optimizer and same.loss_curve_ == net.loss_curve_


def test_format_1_files_still_load(saved):
    net, path = saved

    def as_format_1(arrays):
        del arrays["format_version"]
        config = json.loads(str(arrays["config"]))
        arrays["config"] = np.array(json.dumps({"format": 1, **config}))

    rewrite(path, as_format_1)
    assert denseprop.Network.load(path)._core.params.tobytes() == net._core.params.tobytes()


def test_a_missing_file_is_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        denseprop.Network.load(tmp_path / "nothing.npz")
    with pytest.raises(IsADirectoryError):
        denseprop.Network.load(tmp_path)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "an empty file"),
        (b"W0 = [[1, 2]]\n", r"not a zip archive \(.npz\)"),
        (fuzz_model_file._npy(np.ones(3)), "not a zip archive"),
        (fuzz_model_file._zip_of_text(), r"holds 'readme.txt', which is not an array"),
        (fuzz_model_file.savez({"weights": np.ones(3)}), r"no configuration \(config\)"),
    ],
    ids=["empty", "text", "bare npy", "zip of text", "other npz"],
)
def test_foreign_files(tmp_path, data, match):
    path = tmp_path / "model.npz"
    path.write_bytes(data)
    refused(path, match)


def test_truncated_and_flipped(saved):
    _, path = saved
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    refused(path, "")
    flipped = bytearray(data)
    start = data.index(b"W0.npy") + 200  # inside W0's data: the CRC-32 catches it
    flipped[start] ^= 0x10
    path.write_bytes(bytes(flipped))
    refused(path, r"W0: damaged \(BadZipFile: Bad CRC-32")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda a: a.pop("W1"), "missing W1"),
        (lambda a: a.update(extra=np.ones(1)), "unexpected extra"),
        (lambda a: a.update(W0=a["W0"].astype(np.float32)), r"W0: dtype float32, expected float64"),
        (lambda a: a.update(b1=a["b1"][:2]), r"b1: shape \(2,\), expected \(3,\)"),
        (lambda a: a.update(W0=a["W0"].T), r"W0: shape \(4, 5\), expected \(5, 4\)"),
        (lambda a: a.update(optimizer_first=a["optimizer_first"][1:]),
         r"optimizer_first: shape \(42,\), expected \(43,\)"),
        (lambda a: a.update(optimizer_second=-a["optimizer_second"] - 1),
         "optimizer_second: a second moment is negative"),
        (lambda a: a.update(optimizer_steps=np.array(-3)), "optimizer_steps: -3"),
        (lambda a: a.update(loss_curve=np.array([np.nan])), "loss_curve: holds NaN or inf"),
        (lambda a: a.update(format_version=np.array(7)), "format version 7, this denseprop reads"),
        (lambda a: a.update(config=np.array("{not json")), "config: not JSON"),
        (lambda a: a.update(config=np.array(1.0)), "config: dtype float64, expected text"),
    ],
    ids=["missing key", "extra key", "dtype", "bias shape", "weight transposed", "state length",
         "negative moment", "steps", "nan curve", "version", "json", "config dtype"],
)  # fmt: skip
def test_arrays_checked_against_the_configuration(saved, change, match):
    _, path = saved
    rewrite(path, change)
    refused(path, match)


def config_change(part, key, value):
    def change(arrays):
        config = json.loads(str(arrays["config"]))
        if value is KeyError:
            del config[part][key]
        else:
            config[part][key] = value
        arrays["config"] = np.array(json.dumps(config))

    return change


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (config_change("network", "sizes", [4, 5]), "missing.*|unexpected"),
        (config_change("network", "sizes", "4-5-3"), "config: sizes must be a list"),
        (config_change("network", "sizes", [4, True, 3]), "config: sizes must be a list"),
        (config_change("network", "loss", KeyError), "config network: missing loss"),
        (config_change("network", "dtype", "float16"), "config: dtype must be float32 or"),
        (config_change("network", "activation", ["bogus"]), "configuration: activation: unknown"),
        (config_change("network", "output_activation", "relu"),
         "configuration: output_activation: cross_entropy is computed from softmax"),
        (config_change("optimizer", "lr", "fast"), "config: lr must be a number"),
        (config_change("optimizer", "lr", -1.0), "configuration: lr: must be a finite number"),
        (config_change("optimizer", "nesterov", 1), "config: nesterov must be true or false"),
        (config_change("optimizer", "optimizer", "lion"), "configuration: optimizer: unknown"),
        (config_change("optimizer", "seed", 5), "config: seed must be an integer for dpsgd"),
        (config_change("optimizer", "surprise", 1), "config optimizer: unexpected surprise"),
    ],
    ids=["sizes vs arrays", "sizes type", "bool size", "missing key", "dtype", "activation",
         "output pairing", "lr type", "lr value", "nesterov", "optimizer", "seed", "extra key"],
)  # fmt: skip
def test_the_configuration_schema(saved, change, match):
    _, path = saved
    rewrite(path, change)
    refused(path, match)


def test_a_huge_declared_shape_is_refused_before_allocating(saved):
    _, path = saved
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    out = io.BytesIO()
    huge = fuzz_model_file.npy_with_header(
        f"{{'descr': '<f8', 'fortran_order': False, 'shape': ({2**40},), }}", b"\x00" * 64
    )
    with zipfile.ZipFile(out, "w") as z:
        for k, v in arrays.items():
            z.writestr(k + ".npy", huge if k == "loss_curve" else fuzz_model_file._npy(v))
    path.write_bytes(out.getvalue())
    refused(path, r"loss_curve: its header declares 8796093022208 bytes of data, the archive "
            "holds 64")


def test_object_arrays_are_refused(saved):
    _, path = saved
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["W0"] = np.array([{"a": 1}], dtype=object)
    path.write_bytes(fuzz_model_file.savez(arrays, pickle=True))
    refused(path, r"W0: dtype object, expected float64")


def test_a_compressed_copy_loads(saved):
    net, path = saved
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    path.write_bytes(fuzz_model_file.savez(arrays, compressed=True))
    assert denseprop.Network.load(path)._core.params.tobytes() == net._core.params.tobytes()


def test_pickled_state_is_checked_too(saved):
    net, _ = saved
    same = pickle.loads(pickle.dumps(net))
    assert same._core.params.tobytes() == net._core.params.tobytes()
    state = net.__getstate__()
    del state["b0"]
    with pytest.raises(ValueError, match="a pickled Network is not a denseprop model: missing b0"):
        denseprop.Network.__new__(denseprop.Network).__setstate__(state)


def test_damaged_files_fuzzed():
    status, report = fuzz_model_file.run(CASES, seed=0)
    assert status == 0, report[-6000:]
    assert f"fuzz model files: {CASES} cases" in report, report[-6000:]


def test_every_truncation_and_every_flipped_byte_of_a_small_file(tmp_path):
    """Each length and each byte of one whole file: refused with a message, or, for a byte of
    a field zip readers ignore (the local headers' copies of sizes and CRCs, timestamps),
    loaded as the very same network."""
    path = tmp_path / "small.npz"
    net = denseprop.Network([2, 1], "tanh", "mse", seed=0)
    net.save(path)
    data = path.read_bytes()
    damaged = [data[:n] for n in range(len(data))]
    damaged += [data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :] for i in range(len(data))]
    outcomes = collections.Counter()
    for case in damaged:
        outcome = fuzz_model_file.check(str(path), case)
        if outcome == "loaded":
            same = denseprop.Network.load(path)
            assert same._core.params.tobytes() == net._core.params.tobytes()
            assert same.optimizer == net.optimizer
        outcomes[outcome] += 1
    assert outcomes["ValueError"] >= len(data), outcomes  # every truncation, most flips


def test_max_grad_norm_is_kept_and_a_file_without_it_loads_unbounded(saved, tmp_path):
    """JSON writes max_grad_norm's default, inf, as Infinity and reads it back; a file written
    before the setting existed loads with that default."""
    net, path = saved
    with np.load(path, allow_pickle=False) as f:
        assert '"max_grad_norm": Infinity' in str(f["config"])
    assert denseprop.Network.load(path).optimizer["max_grad_norm"] == float("inf")
    rewrite(path, config_change("optimizer", "max_grad_norm", KeyError))
    assert denseprop.Network.load(path).optimizer == net.optimizer
    net.set_optimizer("adam", 0.01, max_grad_norm=0.5)
    net.save(tmp_path / "clipped.npz")
    assert denseprop.Network.load(tmp_path / "clipped.npz").optimizer["max_grad_norm"] == 0.5
