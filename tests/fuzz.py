"""Fuzz harness: every public kernel and every `Network` method, with generated arguments.

    python tests/fuzz.py --cases 100000 [--seed 0]

Arguments come from Hypothesis: arrays of every rank, of empty and huge dimensions (zero-stride
views whose size overflows 32 bits), of every dtype, C/Fortran/strided/negatively strided,
read-only, filled with NaN, inf, 1e4 or near the dtype's maximum; labels of every integer type
and out of range; `out` aliasing an input; lists (ragged ones too), scalars, None and strings
instead of arrays; arrays behind each protocol an array-like may offer (only `__array__`,
only `__array_interface__`, only `__dlpack__`), which must give the same results.
Each call must return what `denseprop.reference` returns, or raise ValueError, TypeError or
MemoryError with a message (training may raise FloatingPointError, and save/load OSError),
leaving the Network exactly as it was. The cases run in a child process that writes each one
to a log before calling it, so a crash is reported with the case that caused it.
"""

from __future__ import annotations

import collections
import os
import pathlib
import sys
import tempfile
from typing import Any, Callable

import numpy as np

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))
import fuzz_runner  # noqa: E402
from conftest import PROTOCOLS, ArrayLike  # noqa: E402

DTYPES = ["float32", "float64", "float16", "int8", "int16", "int32", "int64", "uint8",
          "uint16", "uint32", "uint64", "bool", "complex128", "object"]  # fmt: skip
LAYOUTS = ["c", "fortran", "strided", "negative", "readonly", "broadcast"]
FILLS = ["normal", "zeros", "identical rows", "nan", "inf", "1e4", "near max"]
SMALL = [1, 2, 3, 5, 7, 16]
# Zero-stride views this long cannot be copied: the call must fail with MemoryError or a shape
# error, never allocate them. (Sizes between 2**31 and memory would be honoured, slowly.)
HUGE = [2**40 + 1, 2**45, 2**62]
KERNELS = ["dense_forward", "dense_backward", "sigmoid", "sigmoid_backward", "softmax",
           "softmax_backward", "softmax_jacobian", "softmax_cross_entropy",
           "sigmoid_cross_entropy", "mse", "half_poisson_deviance", "activation_forward",
           "activation_backward", "activation_jacobian", "set_num_threads"]  # fmt: skip
METHODS = ["construct", "forward", "predict", "predict_proba", "score", "gradients",
           "per_sample_gradients", "per_sample_gradient_norms", "trace", "jacobian",
           "train_step", "fit", "partial_fit", "set_optimizer", "save_load"]  # fmt: skip
ERRORS = (ValueError, TypeError, MemoryError)
TRAINING = ("train_step", "fit", "partial_fit")
INSPECTION = ("per_sample_gradients", "per_sample_gradient_norms", "trace", "jacobian")


# -- building arguments from a recipe ------------------------------------------------------


def plain(value: Any) -> Any:
    """What an argument holds, as an ndarray when it is an array-like (for the reference)."""
    if isinstance(value, ArrayLike):
        return value.array
    if isinstance(value, list):
        try:
            return np.asarray(value)
        except ValueError:  # ragged: the kernel refused it
            return value
    return value



def build(spec: tuple[Any, ...], rng: np.random.Generator, base: list[Any]) -> Any:
    """The argument a spec describes. ``("array", shape, dtype, layout, fill)``, ``("labels",
    n, classes, dtype, offset)``, ``("alias", i)`` (argument i itself), ``("list", spec)``,
    ``("scalar", v)``, ``("none",)``, ``("str", s)``, ``("ragged",)``, ``("protocol", name,
    spec)`` (the array of spec behind one protocol)."""
    kind = spec[0]
    if kind == "array":
        return array(spec[1], spec[2], spec[3], spec[4], rng)
    if kind == "labels":
        _, n, classes, dtype, offset = spec
        if n > 2**20:
            return array((n,), dtype, "broadcast", "zeros", rng)
        info = np.iinfo(dtype)
        values = rng.integers(0, max(classes, 1), n) + offset
        return np.clip(values, info.min, info.max).astype(dtype)
    if kind == "alias":
        return base[spec[1]] if spec[1] < len(base) else None
    if kind == "list":
        value = build(spec[1], rng, base)
        small = isinstance(value, np.ndarray) and max(value.shape, default=0) < 10_000
        return value.tolist() if small and value.size < 10_000 else value  # (2**40, 0) is empty
    if kind == "protocol":
        value = build(spec[2], rng, base)
        return PROTOCOLS[spec[1]](value) if isinstance(value, np.ndarray) else value
    if kind == "ragged":
        return [[1.0, 2.0], [3.0]]
    if kind == "none":
        return None
    return spec[1]


def array(shape: tuple[int, ...], dtype: str, layout: str, fill: str,
          rng: np.random.Generator) -> Any:  # fmt: skip
    if layout == "broadcast" or any(d > 2**20 for d in shape):
        try:
            return np.broadcast_to(np.ones((), dtype), shape)
        except ValueError:  # more than NumPy can describe: pass the shape itself
            return shape
    f64 = np.float64
    values: np.ndarray[Any, Any] = rng.standard_normal(shape)
    if fill == "zeros":
        values = np.zeros(shape)
    elif fill == "identical rows" and len(shape) >= 1 and shape[0] > 0:
        values = np.broadcast_to(values[:1], shape).copy()
    elif fill in ("nan", "inf") and values.size:
        values.flat[rng.integers(values.size)] = f64(fill)
    elif fill == "1e4":
        values *= 1e4
    elif fill == "near max" and dtype in ("float32", "float64"):
        values = np.asarray(np.sign(values) * float(np.finfo(dtype).max) / 2)  # 0-D stays an array
    with np.errstate(all="ignore"):
        a = values.astype(dtype) if dtype != "object" else values.astype(object)
    if layout == "fortran":
        a = np.asfortranarray(a)
    elif layout == "strided" and a.ndim:
        a = np.repeat(a, 2, axis=-1)[..., ::2]
    elif layout == "negative" and a.ndim:
        a = np.ascontiguousarray(a[::-1])[::-1]
    elif layout == "readonly":
        a.flags.writeable = False
    return a


# -- the cases -----------------------------------------------------------------------------


def strategy() -> Any:
    """Hypothesis strategy of recipes: (target, seed, argument specs, options)."""
    import denseprop
    from hypothesis import strategies as st

    activations = [a["name"] for a in denseprop.activations()]  # the table's, and one unknown
    optimizers = [o["name"] for o in denseprop.optimizers()]
    losses = [loss["name"] for loss in denseprop.losses()]
    dim = st.sampled_from(SMALL) | st.sampled_from([0, *HUGE])
    dims = st.lists(st.sampled_from([*SMALL, 0, *HUGE]), min_size=0, max_size=3).map(tuple)
    dtype = st.sampled_from(["float32", "float64"]) | st.sampled_from(DTYPES)
    layout = st.sampled_from(["c"]) | st.sampled_from(LAYOUTS)
    fill = st.sampled_from(["normal"]) | st.sampled_from(FILLS)
    wild = st.one_of(
        st.tuples(st.just("array"), dims, dtype, layout, fill),
        st.tuples(st.just("labels"), st.sampled_from(SMALL), st.sampled_from(SMALL),
                  st.sampled_from([d for d in DTYPES if d.startswith(("int", "uint"))]),
                  st.sampled_from([0, 0, 0, -1, 1, 7, 2**40])),
        st.tuples(st.just("list"), st.tuples(st.just("array"), dims, dtype, st.just("c"), fill)),
        st.tuples(st.just("scalar"), st.sampled_from([0, 1, -1, 2.5, 2**70, float("nan"), 1j])),
        st.tuples(st.just("none")),
        st.tuples(st.just("ragged")),
        st.tuples(st.just("protocol"), st.sampled_from(sorted(PROTOCOLS)),
                  st.tuples(st.just("array"), dims, dtype, layout, fill)),
        st.tuples(st.just("str"), st.sampled_from(["", "x", "softmax", "mean"])),
        st.tuples(st.just("alias"), st.integers(0, 3)),
    )

    @st.composite
    def recipe(draw: Any) -> tuple[Any, ...]:
        target = draw(st.sampled_from(KERNELS + METHODS))
        batch, n_in, n_out = draw(dim), draw(st.sampled_from(SMALL)), draw(st.sampled_from(SMALL))
        dt = draw(st.sampled_from(["float32", "float64"]))
        lay, fil = draw(layout), draw(fill)
        shapes = {"x": (batch, n_in), "w": (n_out, n_in), "b": (n_out,), "a": (batch, n_out),
                  "labels": batch}  # fmt: skip
        specs = [("array", shapes[k], dt, lay, fil) for k in ("x", "w", "b", "a", "a")]
        specs.append(("labels", batch, n_out, "int64", 0))
        for i in range(len(specs)):  # replace some arguments by anything at all
            if draw(st.integers(0, 9)) == 0:
                specs[i] = draw(wild)
        options = {
            "activation": draw(st.sampled_from([*activations, "bogus"])),
            "reduction": draw(st.sampled_from(["mean", "sum", "none", "bogus"])),
            "slope": draw(st.sampled_from([0.01, 0.0, 2.0, -1.0, float("nan")])),
            "out": draw(st.sampled_from(["none", "fresh", "alias x", "alias w", "wrong"])),
            "loss": draw(st.sampled_from(losses)),
            "optimizer": draw(st.sampled_from([*optimizers, "bogus"])),
            "lr": draw(st.sampled_from([1e-3, 0.1, 1e6, 0.0, -1.0, float("inf")])),
            "int": draw(st.sampled_from([1, 2, 7, 0, -3, 2**31, 2**64])),
            "hidden": draw(st.sampled_from([*SMALL, 0, 2 ** 31, 2 ** 33, 2 ** 64])),
            "compute": draw(st.sampled_from([None, "bfloat16", "bfloat16", "float16", 16])),
        }
        return target, draw(st.integers(0, 2**32 - 1)), tuple(specs), options

    return recipe()


def run_case(recipe: tuple[Any, ...]) -> str:
    """Runs one recipe and checks its outcome; returns the outcome's name."""
    import denseprop

    target, seed, specs, options = recipe
    rng = np.random.default_rng(seed)
    args: list[Any] = []
    for spec in specs:
        args.append(build(spec, rng, args))
    if target in KERNELS:
        call, check = kernel_call(target, args, options)
    else:
        call, check = network_call(target, args, options, rng)
    try:
        result = call()
    except FloatingPointError as e:
        assert target in TRAINING, f"{target} raised FloatingPointError: {e}"
        check(None)
        return "FloatingPointError"
    except OSError as e:
        assert target == "save_load", f"{target} raised {e!r}"
        return "OSError"
    except ERRORS as e:
        assert str(e), f"{type(e).__name__} without a message"
        check(None)
        return type(e).__name__
    check(result)
    del denseprop
    return "returned"


def floats(args: list[Any]) -> bool:
    """All arrays of one float dtype, finite and of moderate size: worth comparing values."""
    args = [plain(a) for a in args]
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    return (
        len(arrays) == len(args)
        and len({a.dtype for a in arrays}) == 1
        and arrays[0].dtype in (np.float32, np.float64)
        and all(np.isfinite(a).all() and np.abs(a).max(initial=0) < 1e3 for a in arrays)
    )


def compare(got: Any, want: Any, exact_values: bool, precision: Any = None) -> None:
    """``precision``: the tolerance's key in conftest.TOLERANCES (default: got's dtype)."""
    from conftest import assert_close

    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want)
        for g, w in zip(got, want):
            compare(g, w, exact_values, precision)
        return
    if want is None or isinstance(want, float):
        assert (got is None) == (want is None)
        if exact_values and want is not None:
            assert abs(got - want) <= 1e-4 * max(1.0, abs(want)), (got, want)
        return
    assert isinstance(got, np.ndarray) and got.shape == want.shape, (type(got), want.shape)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    if exact_values:
        assert_close(got, want, precision or got.dtype)


Call = tuple[Callable[[], Any], Callable[[Any], None]]  # the call, and the check of its result


def kernel_call(name: str, args: list[Any], o: dict[str, Any]) -> Call:
    import denseprop
    import denseprop.reference as ref

    x, w, b, a, g, labels = args
    slope = o["slope"]
    if name == "set_num_threads":
        before = denseprop.get_num_threads()

        def set_threads() -> None:
            try:
                denseprop.set_num_threads(o["int"])
            finally:
                denseprop.set_num_threads(before)

        return set_threads, lambda result: None
    out = {"none": None, "alias x": x, "alias w": w, "wrong": g}.get(o["out"])
    if name != "dense_forward":
        out = None
    elif o["out"] == "fresh" and isinstance(a, np.ndarray) and a.ndim == 2 and a.size < 2**20:
        out = np.full_like(a, np.nan) if a.dtype.kind == "f" else a
    dense = {"negative_slope": slope, "compute_dtype": o["compute"]}
    calls: dict[str, tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], list[Any]]] = {
        "dense_forward": (denseprop.dense_forward, (x, w, b, o["activation"], out), dense,
                          [x, w, b]),
        "dense_backward": (denseprop.dense_backward, (x, w, a, g, o["activation"]), dense,
                           [x, w, a, g]),
        "sigmoid": (denseprop.sigmoid, (x,), {}, [x]),
        "sigmoid_backward": (denseprop.sigmoid_backward, (a, g), {}, [a, g]),
        "softmax": (denseprop.softmax, (x,), {}, [x]),
        "softmax_backward": (denseprop.softmax_backward, (a, g), {}, [a, g]),
        "softmax_jacobian": (denseprop.softmax_jacobian, (a,), {}, [a]),
        "softmax_cross_entropy": (denseprop.softmax_cross_entropy, (a, labels, o["reduction"]),
                                  {}, [a]),
        "sigmoid_cross_entropy": (denseprop.sigmoid_cross_entropy, (a, g, o["reduction"]), {},
                                  [a, g]),
        "mse": (denseprop.mse, (a, g, o["reduction"]), {}, [a, g]),
        "half_poisson_deviance": (denseprop.half_poisson_deviance, (a, g, o["reduction"]), {},
                                  [a, g]),
        "activation_forward": (denseprop.activation_forward, (x, o["activation"]),
                               {"negative_slope": slope}, [x]),
        "activation_backward": (denseprop.activation_backward, (a, g, o["activation"]),
                                {"negative_slope": slope}, [a, g]),
        "activation_jacobian": (denseprop.activation_jacobian, (a, o["activation"]),
                                {"negative_slope": slope}, [a]),
    }  # fmt: skip
    fn, call_args, kwargs, inputs = calls[name]
    copies = [np.array(v, copy=True) if isinstance(v, np.ndarray) and v.flags.writeable else v
              for v in call_args]  # fmt: skip

    def check(result: Any) -> None:
        for before, after in zip(copies, call_args):  # inputs are never written
            if isinstance(after, np.ndarray) and after is not out and after.flags.writeable:
                assert before.tobytes() == after.tobytes(), "an input changed"
        if result is None:
            return
        if out is not None:
            assert result is out, "out was given but a new array came back"
            if any(np.shares_memory(out, v) for v in inputs if isinstance(v, np.ndarray)):
                msg = "out overlaps an input and was accepted"
                raise AssertionError(msg)
        ref_args = [copies[i] if i < len(copies) and isinstance(copies[i], np.ndarray)
                    else plain(v) for i, v in enumerate(call_args)]  # fmt: skip
        if name == "dense_forward":
            ref_args[4] = None
        with np.errstate(all="ignore"):
            want = getattr(ref, name)(*ref_args, **kwargs)
        compare(result, want, floats(inputs), kwargs.get("compute_dtype"))

    return (lambda: fn(*call_args, **kwargs)), check


def network_call(name: str, args: list[Any], o: dict[str, Any],
                 rng: np.random.Generator) -> Call:  # fmt: skip
    import denseprop
    import denseprop.reference as ref
    from conftest import assert_unchanged, snapshot

    x, _w, _, a, g, labels = args
    px, pa = plain(x), plain(a)

    def width(v: Any, default: int) -> int:
        small = isinstance(v, np.ndarray) and v.ndim == 2 and 0 < v.shape[1] < 99
        return int(v.shape[1]) if small else default

    n_in, n_out = width(px, 3), width(pa, 4)
    floating = isinstance(px, np.ndarray) and px.dtype in (np.float32, np.float64)
    dtype = px.dtype if floating else "float64"
    loss = o["loss"]
    y = labels if loss == "cross_entropy" and o["int"] != 0 else g
    if name == "construct":
        sizes = [n_in, o["hidden"], n_out]
        return (lambda: denseprop.Network(sizes, loss=loss, dtype=dtype,
                                          compute_dtype=o["compute"])), lambda result: None
    # bf16 products where the network can take them (a float32 one), the others checked above
    compute = "bfloat16" if o["compute"] == "bfloat16" and dtype == np.float32 else None
    net = denseprop.Network([n_in, 4, n_out], "tanh", loss, dtype=dtype, seed=int(rng.integers(9)),
                            compute_dtype=compute)  # fmt: skip
    before = snapshot(net)
    lr, count = o["lr"], o["int"]
    calls: dict[str, Callable[[], Any]] = {
        "forward": lambda: net.forward(x),
        "predict": lambda: net.predict(x),
        "predict_proba": lambda: net.predict_proba(x),
        "score": lambda: net.score(x, y),
        "gradients": lambda: net.gradients(x, y, o["reduction"]),
        "per_sample_gradients": lambda: net.per_sample_gradients(x, y),
        "per_sample_gradient_norms": lambda: net.per_sample_gradient_norms(x, y),
        "trace": lambda: net.trace(x, y, o["reduction"]),
        "jacobian": lambda: net.jacobian(x),
        "train_step": lambda: net.train_step(x, y),
        "fit": lambda: net.fit(x, y, epochs=min(abs(count), 3) or 1, batch_size=count, lr=lr,
                               optimizer=o["optimizer"]),
        "partial_fit": lambda: net.partial_fit(x, y, batch_size=count),
        "set_optimizer": lambda: net.set_optimizer(o["optimizer"], lr),
        "save_load": lambda: save_load(net),
    }  # fmt: skip

    def check(result: Any) -> None:
        if result is None:  # an error: nothing changed but a workspace grown by training
            if name in TRAINING:
                before.pop("workspace")
            assert_unchanged(net, before)
            return
        assert np.isfinite(net._core.params).all(), "non-finite parameters"
        if name in INSPECTION:  # they only look: the model is as it was
            before.pop("workspace")
            assert_unchanged(net, before)
        if name == "per_sample_gradient_norms" and floats([x]):
            layers = net.per_sample_gradients(x, y)
            squares = sum((gw**2).sum(axis=(1, 2)) + (gb**2).sum(axis=1) for gw, gb in layers)
            compare(result, np.sqrt(squares), True)
        if name in ("forward", "predict_proba") and floats([x]):
            with np.errstate(all="ignore"):
                want = ref.network_forward(net.weights, net.biases, np.asarray(px, net.dtype),
                                           net.activations, compute_dtype=compute)[-1]  # fmt: skip
            compare(result, want.astype(net.dtype), True, compute)
        if name == "save_load":
            assert result._core.params.tobytes() == net._core.params.tobytes()

    return calls[name], check


def save_load(net: Any) -> Any:
    import denseprop

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "net.npz")
        net.save(path)
        return denseprop.Network.load(path)


# -- running: the child runs the cases, the parent watches it ------------------------------


def child(cases: int, seed: int, log: str) -> None:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    counts: collections.Counter[str] = collections.Counter()
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)

    @hypothesis_seed(seed)
    @settings(max_examples=cases, database=None, deadline=None,
              phases=[Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck))
    @given(strategy())
    def fuzz(recipe: tuple[Any, ...]) -> None:
        line = repr(recipe).encode() + b"\n"
        os.pwrite(fd, line.ljust(4096), 0)  # the last case, in place, before it runs
        counts[f"{recipe[0]}: {run_case(recipe)}"] += 1

    fuzz()
    total = sum(counts.values())
    for key in sorted(counts):
        print(f"  {key:40} {counts[key]}")
    print(f"fuzz: {total} cases, seed {seed}: all returned correct results or clear errors")


def run(cases: int, seed: int) -> tuple[int, str]:
    """Runs the cases in a child process; returns (exit status, report)."""
    return fuzz_runner.run(__file__, cases, seed)


if __name__ == "__main__":
    fuzz_runner.main(__doc__, 10_000, child, run)
