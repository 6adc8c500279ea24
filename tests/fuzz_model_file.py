"""Fuzz the model-file reader: every damaged or foreign file is a ValueError naming the file
(or an OSError), never another exception, never a crash.

    python tests/fuzz_model_file.py --cases 20000 [--seed 0]

The cases start from valid files of several networks (float32 and float64; sgd, adam and
dpsgd state; with and without loss curves) and damage them: truncated at every length class
(each length up to 64 bytes, around every zip and .npy header boundary, and at random), bytes
flipped (anywhere, and in the headers), keys missing, extra or renamed, arrays of the wrong
dtype or shape, object arrays, .npy headers that declare huge shapes, configurations that are
not JSON or break its schema, and foreign files (a zip of text, an .npz of other arrays, a
bare .npy, text, random bytes, an empty file). A file that still loads must give a Network
with finite parameters. Runs in a child process that names the case that crashed it.
"""

from __future__ import annotations

import collections
import io
import json
import os
import pathlib
import struct
import tempfile
import zipfile
from typing import Any, Callable

import fuzz_runner
import numpy as np

PREFIX = " is not a denseprop model file: "


def networks() -> list[Any]:
    import denseprop

    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 4))
    y = rng.integers(0, 3, 20)
    plain = denseprop.Network([4, 3], dtype="float32", seed=1)
    adam = denseprop.Network([4, 5, 3], "relu", dtype="float64", seed=2)
    adam.fit(x, y, epochs=2, optimizer="adam", lr=0.01, validation_data=(x, y), seed=0)
    dp = denseprop.Network([4, 3, 2, 3], "tanh", dtype="float32", seed=3)
    dp.fit(x.astype(np.float32), y, epochs=1, optimizer="dpsgd", lr=0.1, seed=0)
    regressor = denseprop.Network([4, 2, 1], "sigmoid", "mse", dtype="float64", seed=4)
    return [plain, adam, dp, regressor]


def arrays_of(data: bytes) -> dict[str, np.ndarray[Any, Any]]:
    with np.load(io.BytesIO(data), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def savez(arrays: dict[str, Any], compressed: bool = False, pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w", method) as z:
        for key, value in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=pickle)
            z.writestr(key + ".npy", member.getvalue())
    return buffer.getvalue()


def npy_with_header(header: str, data: bytes) -> bytes:
    """A .npy whose header is ``header`` (a dict literal), padded as format 1.0 wants."""
    text = header.encode("latin1")
    pad = 64 - (10 + len(text) + 1) % 64
    text += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + data


def boundaries(data: bytes) -> list[int]:
    """Offsets where the zip's and each .npy's structures begin and end."""
    out = [0, len(data)]
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for info in z.infolist():
            start = info.header_offset
            local = 30 + len(info.filename.encode()) + len(info.extra)
            out += [start, start + local, start + local + 10, start + local + 128,
                    start + local + info.compress_size]  # fmt: skip
        out.append(z.start_dir if hasattr(z, "start_dir") else len(data) - 22)
    out.append(len(data) - 22)
    return [p for p in out if 0 <= p <= len(data)]


def mutate(config: str, rng: np.random.Generator) -> str:
    """A configuration that is not JSON, or JSON that breaks the schema."""
    c = json.loads(config)
    part = c[str(rng.choice(["network", "optimizer"]))]
    choice = int(rng.integers(9))
    if choice == 0:
        return config[: int(rng.integers(len(config)))]
    if choice == 1:
        return "[" * 100_000
    key = str(rng.choice(sorted(part)))
    if choice == 2:
        del part[key]
    elif choice == 3:
        part["unexpected"] = 1
    else:
        part[key] = [None, "x", -1, 0, 2**80, 1.5, [], {}, True, "nan", [0] * 3, float("nan")][
            int(rng.integers(12))
        ]
    if choice == 8:
        c = [c] if rng.integers(2) else "text"
    return json.dumps(c)


Case = tuple[str, bytes]


def cases(valid: list[bytes], rng: np.random.Generator) -> Callable[[], Case]:
    foreign = [
        ("empty", b""),
        ("text", b"W0 = [[1, 2], [3, 4]]\n" * 10),
        ("random bytes", rng.bytes(500)),
        ("zip of text", _zip_of_text()),
        ("npz of other arrays", savez({"weights": np.ones((3, 3)), "labels": np.arange(3)})),
        ("bare .npy", _npy(np.ones((2, 2)))),
        ("pickle", b"\x80\x04\x95" + rng.bytes(40)),
    ]

    def one() -> Case:
        base = valid[int(rng.integers(len(valid)))]
        arrays = arrays_of(base)
        key = str(rng.choice(sorted(arrays)))
        kind = int(rng.integers(12))
        if kind == 0:
            cut = int(rng.choice(
                [int(rng.integers(65)), int(rng.integers(len(base)))]
                + [p + int(rng.integers(-2, 3)) for p in boundaries(base)]))  # fmt: skip
            return f"truncated to {cut}", base[: max(cut, 0)]
        if kind == 1:
            damaged = bytearray(base)
            spots = boundaries(base)
            for _ in range(int(rng.integers(1, 4))):
                near = int(rng.choice(spots)) + int(rng.integers(0, 40))
                at = int(rng.integers(len(base))) if rng.integers(2) else min(near, len(base) - 1)
                damaged[at] ^= int(rng.integers(1, 256))
            return "flipped bytes", bytes(damaged)
        if kind == 2:
            del arrays[key]
            return f"missing {key}", savez(arrays)
        if kind == 3:
            arrays[str(rng.choice(["W9", "extra", "b0 ", "config2"]))] = np.ones(2)
            return "extra key", savez(arrays)
        if kind == 4:
            arrays[key + "_renamed"] = arrays.pop(key)
            return f"renamed {key}", savez(arrays)
        if kind == 5:
            dtype = str(rng.choice(["float16", "float32", "float64", ">f4", ">f8", "int32",
                                    "int64", "uint8", "bool", "complex128", "<U3"]))  # fmt: skip
            if key == "config":
                arrays[key] = np.frombuffer(str(arrays[key]).encode(), np.uint8)
            else:
                arrays[key] = arrays[key].astype(dtype)
            return f"{key} as {arrays[key].dtype}", savez(arrays)
        if kind == 6:
            a = arrays[key]
            shaped = [a.reshape(-1), a.reshape(1, -1), a[..., None], a.T, a.ravel()[:-1],
                      np.concatenate([a.ravel(), a.ravel()]), np.zeros((0,)), np.array(1.0)]
            arrays[key] = shaped[int(rng.integers(len(shaped)))]
            return f"{key} reshaped to {arrays[key].shape}", savez(arrays)
        if kind == 7:
            arrays[key] = np.array([None, {"a": 1}, "x"], dtype=object)
            return f"{key} as an object array", savez(arrays, pickle=True)
        if kind == 8:
            shape = [(2**40,), (2**62, 2), (2**31, 2**31), (-1,), (3, -5)][int(rng.integers(5))]
            dtype = arrays[key].dtype.str
            member = npy_with_header(f"{{'descr': '{dtype}', 'fortran_order': False, "
                                     f"'shape': {shape}, }}", b"\x00" * 64)  # fmt: skip
            out = io.BytesIO()
            with zipfile.ZipFile(out, "w") as z:
                for k, v in arrays.items():
                    z.writestr(k + ".npy", member if k == key else _npy(v))
            return f"{key} declares shape {shape}", out.getvalue()
        if kind == 9:
            arrays["config"] = np.array(mutate(str(arrays["config"]), rng))
            return "configuration broken", savez(arrays)
        if kind == 10:
            name, data = foreign[int(rng.integers(len(foreign)))]
            return name, data
        if key.startswith(("W", "b", "optimizer_f", "loss")) and arrays[key].size:
            a = arrays[key].copy()
            a.flat[int(rng.integers(a.size))] = [np.nan, np.inf, -np.inf][int(rng.integers(3))]
            arrays[key] = a
            return f"{key} holds a non-finite value", savez(arrays)
        return "compressed", savez(arrays, compressed=True)

    return one


def _npy(a: Any) -> bytes:
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


def _zip_of_text() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("readme.txt", "not a model")
        z.writestr("config.npy", "also not an array")
    return out.getvalue()


def check(path: str, data: bytes) -> str:
    """Loads ``data`` from ``path``; returns the outcome, or raises AssertionError."""
    import denseprop

    pathlib.Path(path).write_bytes(data)
    try:
        net = denseprop.Network.load(path)
    except ValueError as e:
        message = str(e)
        assert message.startswith(path + PREFIX), f"ValueError without the file: {message!r}"
        assert len(message) > len(path + PREFIX), "ValueError without saying what is wrong"
        return "ValueError"
    except OSError as e:
        assert str(e), "OSError without a message"
        return "OSError"
    assert np.isfinite(net._core.params).all(), "loaded non-finite parameters"
    return "loaded"


def child(n: int, seed: int, log: str) -> None:
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        valid = []
        for i, net in enumerate(networks()):
            path = os.path.join(tmp, f"valid{i}.npz")
            net.save(path)
            valid.append(pathlib.Path(path).read_bytes())
            assert check(path, valid[-1]) == "loaded"
        counts: collections.Counter[str] = collections.Counter()
        make = cases(valid, rng)
        path = os.path.join(tmp, "model.npz")
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        for i in range(n):
            name, data = make()
            os.pwrite(fd, f"case {i}: {name}, {len(data)} bytes\n".encode().ljust(200), 0)
            try:
                outcome = check(path, data)
            except Exception as e:
                pathlib.Path(log + ".bad").write_bytes(data)
                print(f"case {i} ({name}): {type(e).__name__}: {e}")
                raise
            counts[f"{name.split(' ')[0]}: {outcome}"] += 1
    for key in sorted(counts):
        print(f"  {key:40} {counts[key]}")
    print(f"fuzz model files: {n} cases, seed {seed}: each loaded or raised ValueError/OSError")


def run(cases: int, seed: int) -> tuple[int, str]:
    """Runs the cases in a child process; returns (exit status, report)."""
    return fuzz_runner.run(__file__, cases, seed, timeout=1800)


if __name__ == "__main__":
    fuzz_runner.main(__doc__, 2000, child, run)
