"""Model files: what `Network.save` writes and `Network.load` reads, checked before use.

A model file is an ``.npz`` (a zip archive of ``.npy`` arrays, uncompressed as ``numpy.savez``
writes it) that ``numpy.load(path, allow_pickle=False)`` also reads::

    format_version                     int64 ()      FORMAT_VERSION
    config                             str ()        JSON {"network": {...}, "optimizer": {...}}
    W0, b0, W1, b1, ...                dtype         (out, in) and (out,) per layer
    optimizer_first, optimizer_second  dtype         (parameters,): velocity or first moment,
                                                     second moment, laid out as the parameters
    optimizer_steps                    int64 ()
    loss_curve, validation_scores      float64       (epochs,)

``dtype`` is the network's, float32 or float64; the configuration's network holds settings
added after format 2 (`ADDED_LATER`: ``compute_dtype``, ``dropout``, ``label_smoothing``,
``dropout_seed``), which a file written before them lacks: each then reads as the value that
means what such a file meant. Reading checks all of it before a Network is
built: the archive and each array's header, the keys, the configuration's schema, every
dtype and shape against the configuration, and that parameters and optimizer state are
finite. The data of an array is read only once its header has been checked against the
configuration and against the bytes the archive holds for it, so a damaged file can never make
the reader allocate more than the file's own size (for a deflated copy, than deflate's largest
ratio allows). Any problem is a ValueError
"<path> is not a denseprop model file: <what>"; a file that cannot be opened is OSError.
Files of format 1 (the same arrays, the version inside the configuration) are read too.
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import numpy as np
from numpy.typing import NDArray

from . import _checks, _core, _training
from ._init import INITS
from ._seam import seam_of
from ._tables import ACTIVATIONS, HIDDEN, LOSSES, OPTIMIZER_SETTINGS, OPTIMIZERS

# The Network class, handed in by it: model files never import `network`.
_Net = TypeVar("_Net")

__all__ = ["FORMAT_VERSION", "from_state", "read", "state", "write"]

FORMAT_VERSION = 2
_READABLE = (1, 2)
_LARGEST_CONFIG = 1 << 20  # characters of the JSON configuration
_DEFLATE_RATIO = 1032  # the most deflate can shrink data by
# The network's settings a file of format 2 may lack, and what their absence means.
ADDED_LATER: dict[str, Any] = {"compute_dtype": None, "dropout": 0.0, "label_smoothing": 0.0,
                               "dropout_seed": 0}  # fmt: skip
_NETWORK_KEYS = {"sizes", "activation", "output_activation", "loss", "dtype", "init",
                 "negative_slope"}  # fmt: skip
# What an archive member or a zip reader raises on damaged bytes (an encrypted or unknown
# compression flag: RuntimeError, NotImplementedError).
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, struct.error,
               NotImplementedError, RuntimeError, ValueError, OverflowError, OSError)  # fmt: skip


class _Invalid(Exception):
    """What is wrong with a model file; `read` turns it into the ValueError users see."""


def _fail(what: str) -> NoReturn:
    raise _Invalid(what)


# -- writing -------------------------------------------------------------------------------


def state(net: Any) -> dict[str, NDArray[Any]]:
    """The arrays of a model file, as views of the `Network`'s own (also its pickled state)."""
    seam = seam_of(net)
    with seam.lock:
        first, second = seam.core.optimizer_state
        network = {**seam.config, "dropout_seed": seam.core.dropout_seed}
        config = {"network": network, "optimizer": net.optimizer}
        arrays = {"format_version": np.array(FORMAT_VERSION, np.int64),
                  "config": np.array(json.dumps(config))}  # fmt: skip
        for l, (w, b) in enumerate(zip(net.weights, net.biases)):
            arrays[f"W{l}"], arrays[f"b{l}"] = w, b
        arrays["optimizer_first"], arrays["optimizer_second"] = first, second
        arrays["optimizer_steps"] = np.array(seam.core.optimizer_steps, np.int64)
        arrays["loss_curve"] = np.array(net.loss_curve_, dtype=np.float64)
        arrays["validation_scores"] = np.array(net.validation_scores_, dtype=np.float64)
        return arrays


def write(net: Any, path: str | os.PathLike[str]) -> None:
    """Write ``net`` to ``path`` (used as given: no ".npz" is added)."""
    arrays: dict[str, Any] = state(net)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


# -- reading -------------------------------------------------------------------------------


def read(path: str | os.PathLike[str], cls: Callable[..., _Net]) -> _Net:
    """The ``cls`` saved at ``path``, bitwise as it was; ValueError naming ``path`` if the file
    is not a valid model file, OSError if it cannot be read."""
    with open(path, "rb") as f:  # OSError (missing, a folder, no permission) as it is
        data = f.read()
    try:
        return _build(_Archive(data), cls)
    except _Invalid as e:
        msg = f"{os.fspath(path)} is not a denseprop model file: {e}"
        raise ValueError(msg) from None


def from_state(arrays: Mapping[str, Any], cls: Callable[..., _Net], source: str) -> _Net:
    """A ``cls`` from the arrays of a model file (a pickled Network's state), checked as
    `read` checks a file; ``source`` names them in the error."""
    if not isinstance(arrays, Mapping):
        msg = f"{source} is not a denseprop model: expected a dict of arrays"
        raise ValueError(msg)
    try:
        return _build(_Arrays(arrays), cls)
    except _Invalid as e:
        msg = f"{source} is not a denseprop model: {e}"
        raise ValueError(msg) from None


class _Arrays:
    """Arrays in memory, read as an archive is."""

    def __init__(self, arrays: Mapping[str, Any]) -> None:
        self._arrays = dict(arrays)
        for key, value in self._arrays.items():
            if not isinstance(value, np.ndarray):
                _fail(f"{key}: expected an array, got {type(value).__name__}")

    def keys(self) -> list[str]:
        return list(self._arrays)

    def header(self, key: str) -> tuple[np.dtype[Any], tuple[int, ...]]:
        a = self._arrays[key]
        return a.dtype, a.shape

    def data(self, key: str) -> NDArray[Any]:
        return np.asarray(self._arrays[key])


class _Archive:
    """The members of an ``.npz`` in memory: headers first, data once its header is checked."""

    def __init__(self, data: bytes) -> None:
        if not zipfile.is_zipfile(io.BytesIO(data)):
            kind = "an empty file" if not data else "not a zip archive (.npz)"
            _fail(kind)
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self._zip.infolist()
        except _ZIP_ERRORS as e:
            _fail(f"a damaged zip archive ({e})")
        self._infos: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            name = info.filename
            if not name.endswith(".npy"):
                _fail(f"holds {name!r}, which is not an array (.npy)")
            if name[:-4] in self._infos:
                _fail(f"holds {name!r} twice")
            # What a member declares must fit in what the file holds: no damaged size field
            # can make the reader allocate more than that.
            if info.compress_type == zipfile.ZIP_STORED:
                room = len(data)
            elif info.compress_type == zipfile.ZIP_DEFLATED:
                room = _DEFLATE_RATIO * info.compress_size + 64
            else:
                _fail(
                    f"{name}: compressed by method {info.compress_type}, expected none "
                    "(numpy.savez) or deflate (numpy.savez_compressed)"
                )
            if info.file_size > room:
                _fail(f"{name}: declares {info.file_size} bytes, more than the file holds")
            self._infos[name[:-4]] = info
        self._headers: dict[str, tuple[np.dtype[Any], tuple[int, ...], bool, int]] = {}

    def keys(self) -> list[str]:
        return list(self._infos)

    @contextmanager
    def _member(self, key: str) -> Iterator[Any]:
        try:
            with self._zip.open(self._infos[key]) as f:
                yield f
        except _ZIP_ERRORS as e:
            _fail(f"{key}: damaged ({type(e).__name__}: {e})")

    def header(self, key: str) -> tuple[np.dtype[Any], tuple[int, ...]]:
        if key not in self._headers:
            with self._member(key) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    _fail(f"{key}: .npy format {version} is not one numpy.savez writes")
                self._headers[key] = (dtype, shape, fortran, f.tell())
        dtype, shape, _, _ = self._headers[key]
        return dtype, shape

    def data(self, key: str) -> NDArray[Any]:
        dtype, shape, fortran, offset = self._headers[key]
        if dtype.hasobject or dtype.itemsize == 0:
            _fail(f"{key}: holds {dtype} data, not numbers or text")
        nbytes = math.prod(shape) * dtype.itemsize
        size = self._infos[key].file_size
        if size != offset + nbytes:
            _fail(
                f"{key}: its header declares {nbytes} bytes of data, the archive holds "
                f"{size - offset}"
            )
        with self._member(key) as f:
            f.read(offset)
            raw = f.read(nbytes)
            f.read(1)  # reaching the end checks the CRC-32
        if len(raw) != nbytes:
            _fail(f"{key}: truncated, {len(raw)} of {nbytes} bytes")
        return np.frombuffer(raw, dtype).reshape(shape, order="F" if fortran else "C")


_Source = Any  # _Archive or _Arrays: keys(), header(key) -> (dtype, shape), data(key)


def _read(source: _Source, key: str, dtype: Any, shape: tuple[int | None, ...]) -> NDArray[Any]:
    """Array ``key`` after its header is checked: ``dtype`` (a kind, "i" for any integer, or a
    dtype) and ``shape`` (None for any length)."""
    found, found_shape = source.header(key)
    if dtype == "i":
        matches = found.kind in "iu"
    elif dtype == "U":
        matches = found.kind == "U"
    else:
        matches = found == np.dtype(dtype)
    if not matches:
        want = {"i": "an integer dtype", "U": "text"}.get(dtype, str(np.dtype(dtype)))
        _fail(f"{key}: dtype {found}, expected {want}")
    if len(found_shape) != len(shape) or any(
        want is not None and n != want for n, want in zip(found_shape, shape)
    ):
        parts = ["n" if n is None else str(n) for n in shape]
        expected = "(" + ", ".join(parts) + "," * (len(parts) == 1) + ")"
        _fail(f"{key}: shape {found_shape}, expected {expected}")
    data: NDArray[Any] = source.data(key)
    return data


def _build(source: _Source, cls: Callable[..., _Net]) -> _Net:
    keys = set(source.keys())
    if "config" not in keys:
        _fail("no configuration (config) in it")
    config_header = source.header("config")
    if config_header[0].kind == "U" and config_header[0].itemsize > 4 * _LARGEST_CONFIG:
        _fail(f"config: {config_header[0].itemsize // 4} characters, too long")
    config = _config(str(_read(source, "config", "U", ())[()]))
    try:  # each value's rules are the C++ checks' (settings) and the tables' (names)
        settings = _core.OptimizerSettings(**config["optimizer"])
        _names(config["network"])
    except (TypeError, ValueError) as e:
        _fail(f"configuration: {e}")
    version = config.pop("format", None)  # format 1 kept it in the configuration
    if "format_version" in keys:
        version = int(_read(source, "format_version", "i", ())[()])
    elif version is None:
        _fail("no format_version in it")
    if version not in _READABLE:
        readable = " and ".join(map(str, _READABLE))
        _fail(f"format version {version}, this denseprop reads {readable}")
    c = {**ADDED_LATER, **config["network"]}
    sizes = c["sizes"]
    layers = list(zip(sizes, sizes[1:]))
    parameters = sum(n_out * (n_in + 1) for n_in, n_out in layers)
    expected = {"config", "optimizer_first", "optimizer_second", "optimizer_steps",
                "loss_curve", "validation_scores"}  # fmt: skip
    expected |= {f"{k}{l}" for l in range(len(layers)) for k in "Wb"}
    if version >= 2:
        expected.add("format_version")
    if keys != expected:
        missing, extra = sorted(expected - keys), sorted(keys - expected)
        what = [f"missing {', '.join(missing)}"] * bool(missing)
        what += [f"unexpected {', '.join(extra)}"] * bool(extra)
        _fail(" and ".join(what))
    dtype = c["dtype"]
    params = [_finite(_read(source, f"{k}{l}", dtype, shape), f"{k}{l}")
              for l, (n_in, n_out) in enumerate(layers)
              for k, shape in (("W", (n_out, n_in)), ("b", (n_out,)))]  # fmt: skip
    first = _finite(_read(source, "optimizer_first", dtype, (parameters,)), "optimizer_first")
    second = _finite(_read(source, "optimizer_second", dtype, (parameters,)), "optimizer_second")
    if (second < 0).any():
        _fail("optimizer_second: a second moment is negative")
    steps = int(_read(source, "optimizer_steps", "i", ())[()])
    if not 0 <= steps < 2**63:
        _fail(f"optimizer_steps: {steps} is not a step count")
    losses = _finite(_read(source, "loss_curve", np.float64, (None,)), "loss_curve")
    scores = _finite(_read(source, "validation_scores", np.float64, (None,)), "validation_scores")
    try:  # what only the C++ network checks: the pairing of loss and output, the sizes' bounds
        net = cls(
            sizes,
            c["activation"],
            c["loss"],
            output_activation=c["output_activation"],
            dtype=dtype,
            init=c["init"],
            negative_slope=c["negative_slope"],
            seed=0,
            compute_dtype=c["compute_dtype"],
            dropout=c["dropout"],
            label_smoothing=c["label_smoothing"],
        )
    except (TypeError, ValueError) as e:
        _fail(f"configuration: {e}")
    seam_of(net).core.dropout_seed = c["dropout_seed"]
    seam_of(net).restore(_training.Snapshot(np.concatenate([p.ravel() for p in params]),
                                            settings, first, second, steps, losses.tolist(),
                                            scores.tolist()))  # fmt: skip
    return net


def _names(network: dict[str, Any]) -> None:
    """The configuration's names, each in its table."""
    for a in network["activation"]:
        _checks.name(a, "activation", HIDDEN)
    _checks.name(network["output_activation"], "output_activation", tuple(ACTIVATIONS))
    _checks.name(network["loss"], "loss", tuple(LOSSES))
    _checks.name(network["init"], "init", INITS)


def _finite(a: NDArray[Any], key: str) -> NDArray[Any]:
    if not np.isfinite(a).all():
        _fail(f"{key}: holds NaN or inf")
    return a


def _config(text: str) -> dict[str, Any]:
    """The configuration's JSON, its schema checked: keys, and the type of every value."""
    try:
        config = json.loads(text)
    except ValueError as e:  # json.JSONDecodeError, and RecursionError's kin below
        _fail(f"config: not JSON ({e})")
    except RecursionError:
        _fail("config: nested too deeply")
    _keys(config, "config", {"network", "optimizer"}, {"format"})
    network, optimizer = config["network"], config["optimizer"]
    _keys(network, "config network", _NETWORK_KEYS, set(ADDED_LATER))
    # a setting added after the file was written takes its default
    _keys(optimizer, "config optimizer", {"optimizer", "seed"}, set(OPTIMIZER_SETTINGS))
    sizes = network["sizes"]
    if not (isinstance(sizes, list) and len(sizes) >= 2 and all(_is_int(s) for s in sizes)):
        _fail(f"config: sizes must be a list of at least 2 integers, got {sizes!r:.80}")
    if not all(s >= 1 for s in sizes):  # the upper bound is the arrays': they are in the file
        _fail(f"config: sizes must be >= 1, got {sizes!r:.80}")
    activation = network["activation"]
    if not (isinstance(activation, list) and all(isinstance(a, str) for a in activation)):
        _fail(f"config: activation must be a list of names, got {activation!r:.80}")
    for key in ("output_activation", "loss", "dtype", "init", "optimizer"):
        value = (network if key != "optimizer" else optimizer)[key]
        if not isinstance(value, str):
            _fail(f"config: {key} must be a name, got {value!r:.80}")
    if network["dtype"] not in ("float32", "float64"):
        _fail(f"config: dtype must be float32 or float64, got {network['dtype']!r:.80}")
    if network.get("compute_dtype") not in (None, "bfloat16"):
        compute = network["compute_dtype"]
        _fail(f"config: compute_dtype must be null or bfloat16, got {compute!r:.80}")
    numbers = [("negative_slope", network["negative_slope"])]
    if "label_smoothing" in network:
        numbers.append(("label_smoothing", network["label_smoothing"]))
    masks = network.get("dropout_seed", ADDED_LATER["dropout_seed"])
    if not (_is_int(masks) and 0 <= masks < 2**64):
        _fail(f"config: dropout_seed must be an integer in [0, 2**64), got {masks!r:.80}")
    flags = [k for k, s in OPTIMIZER_SETTINGS.items() if s["flag"] and k in optimizer]
    numbers += [(k, optimizer[k]) for k in sorted(set(OPTIMIZER_SETTINGS) - set(flags))
                if k in optimizer]  # fmt: skip
    for key, value in numbers:
        if not (_is_int(value) or isinstance(value, float)):
            _fail(f"config: {key} must be a number, got {value!r:.80}")
    for key in flags:
        if not isinstance(optimizer[key], bool):
            _fail(f"config: {key} must be true or false, got {optimizer[key]!r}")
    seed = optimizer["seed"]
    if not (seed is None or (_is_int(seed) and 0 <= seed < 2**64)):
        _fail(f"config: seed must be null or an integer in [0, 2**64), got {seed!r:.80}")
    noisy = [name for name, o in OPTIMIZERS.items() if o["per_sample"]]  # they draw noise
    if (seed is None) == (optimizer["optimizer"] in noisy):
        _fail(f"config: seed must be an integer for {' and '.join(noisy)} and null otherwise")
    return dict(config)


def _keys(value: Any, where: str, required: set[str], optional: set[str] | None = None) -> None:
    if not isinstance(value, dict):
        _fail(f"{where}: expected an object, got {type(value).__name__}")
    missing, extra = required - set(value), set(value) - required - (optional or set())
    if missing or extra:
        what = [f"missing {', '.join(sorted(missing))}"] * bool(missing)
        what += [f"unexpected {', '.join(sorted(extra))}"] * bool(extra)
        _fail(f"{where}: {' and '.join(what)}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
