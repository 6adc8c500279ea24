"""`Network`: a multilayer perceptron whose training step is one call into C++.

The parameters live in one C++ buffer; ``Network.weights`` and ``Network.biases`` are
NumPy views of it. Every method checks its arguments before the model is touched, so a
bad argument raises and leaves the network exactly as it was. The compiled module checks
what it is given (sizes, names, hyperparameters) with the messages raised here; the class
holds the Pythonic surface, and its concerns live beside it: `_learning` (its optimizer and
training methods, a base class), `_checks` (shared argument checks), `_init` (initial
weights), `_training` (the one training loop's Python side), `_metrics`, `_plot`,
`model_file` (saving and loading) and `onnx_export`; the adapters reach it through `_seam`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _checks, _core, _metrics, _plot, backprop, model_file
from ._init import INITS, initialise
from ._learning import Learning, _one_at_a_time
from ._seam import Seam
from ._tables import LOSSES
from .sparse import is_sparse

__all__ = ["Network"]


class Network(Learning):
    """A multilayer perceptron: dense layers, one fused C++ call per training step.

    Parameters
    ----------
    sizes : sequence of int
        Inputs, then each layer's outputs, e.g. ``[64, 32, 10]``.
    activation : str or sequence of str
        Of the hidden layers: any name of ``denseprop.activations()`` whose
        "hidden" is true (all but softmax and exp); one name for all, or one per hidden layer.
    loss : {"cross_entropy", "binary_cross_entropy", "mse", "poisson"}
        Cross-entropy over classes (softmax output), independent binary
        cross-entropies (sigmoid outputs), half the squared error
        (regression, identity output), or half the Poisson deviance (counts or
        rates ``y >= 0``, exp output: the log link). Each is the mean over the batch.
    output_activation : str, optional
        Defaults to the one the loss is fused with; "mse" may take any.
    dtype : {"float32", "float64"}
    seed : int or numpy.random.Generator, optional
        Seeds the initial weights.
    init : {"auto", "glorot", "he"}
        Glorot uniform or He normal; "auto" takes each layer's activation's "init"
        in ``denseprop.activations()`` (He for the relu family and the smooth ones
        after it, Glorot for the others). Biases start at 0.
    negative_slope : float
        The slope of leaky_relu below 0.
    compute_dtype : {None, "bfloat16"}
        None: every product in ``dtype``. "bfloat16" (float32 networks): each layer's three
        products (``Z = X Wᵀ``, ``dX = dZ W``, ``dW = dZᵀ X``) take bfloat16 operands, rounded
        to nearest even, and accumulate in float32, on the CPU's matrix units where it has
        them (AMX, AVX512_BF16; ``build_info()["bf16_kernel"]``). Parameters, optimizer
        state, activations, losses and softmax stay float32. DP-SGD's clipped sums,
        per-sample gradients and a sparse first layer keep float32 products.
    dropout : float or sequence of float
        Inverted dropout on the hidden layers' outputs, one probability for all or one per
        hidden layer, each in [0, 1): in training steps only (`train_step`, `fit`,
        `partial_fit`, the data-parallel steps, DP-SGD's), each unit zeroed with probability
        ``p`` and the others scaled by ``1 / (1 - p)``. Everything else is the evaluation
        model, as PyTorch's ``model.eval()``: `forward`, `predict`, `score`, `gradients`,
        `per_sample_gradients`, `loss_and_gradient`, `trace`, `jacobian` and the exports. The
        masks come from ``seed`` (then from each `fit`'s), the optimizer's step count and the
        layer: the same for any thread count, different on every MPI rank
        (`denseprop.reference.dropout_mask` draws them in NumPy).
    label_smoothing : float
        ε in [0, 1) for ``loss="cross_entropy"``: the targets become ``(1 - ε) y + ε / classes``,
        as ``torch.nn.functional.cross_entropy(..., label_smoothing=ε)``, in the loss and its
        gradient everywhere (steps, `gradients`, `trace`), fused in the softmax cross-entropy.

    Notes
    -----
    Arrays are batch-first: ``x: (batch, sizes[0])``; ``y`` is integer labels
    ``(batch,)`` or one-hot/probabilities ``(batch, classes)`` for
    cross-entropy, ``(batch, outputs)`` otherwise.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str | Sequence[str] = "sigmoid",
        loss: str = "cross_entropy",
        *,
        output_activation: str | None = None,
        dtype: Any = "float32",
        seed: Any = None,
        init: str = "auto",
        negative_slope: float = 0.01,
        compute_dtype: str | None = None,
        dropout: float | Sequence[float] = 0.0,
        label_smoothing: float = 0.0,
    ) -> None:
        sequence = hasattr(sizes, "__len__") and not isinstance(sizes, (str, bytes))
        hidden = len(sizes) - 2 if sequence else 0
        activations = [activation] * hidden if isinstance(activation, str) else list(activation)
        if output_activation is None and loss in LOSSES:
            output_activation = LOSSES[loss]["default_output"]
        dt = _checks.dtype(dtype)
        _checks.name(init, "init", INITS)
        kind = _core.NetworkF32 if dt == np.float32 else _core.NetworkF64
        # sizes, the names, the pairing of loss and output and the slope are checked here
        self._core: _core.NetworkF32 | _core.NetworkF64 = kind(
            sizes, activations, output_activation, negative_slope, loss
        )
        self._core.compute_dtype = compute_dtype  # checked there: None, or bfloat16 on float32
        self._core.label_smoothing = label_smoothing  # checked there, against the loss's entry
        dropouts = _checks.dropout(dropout, hidden)
        self._core.dropout = [*dropouts, 0.0]  # each checked there
        self._config: dict[str, Any] = {
            "sizes": [int(s) for s in sizes],
            "activation": activations,
            "output_activation": output_activation,
            "loss": loss,
            "dtype": dt.name,
            "init": init,
            "negative_slope": float(negative_slope),
            "compute_dtype": compute_dtype,
            "dropout": dropouts,
            "label_smoothing": float(label_smoothing),
        }
        self._lock = threading.RLock()
        self._seam = self._make_seam()
        self._dtype: np.dtype[Any] = dt
        layers = self._core.layers(self._core.params)
        self.weights = [w for w, _ in layers]
        self.biases = [b for _, b in layers]
        rng = np.random.default_rng(seed)
        initialise(layers, self.activations, init, rng)
        self._core.dropout_seed = int(rng.integers(2**63))  # the masks' stream, after the weights
        self.set_optimizer()
        self.loss_curve_: list[float] = []
        self.validation_scores_: list[float] = []

    # -- what the network is ---------------------------------------------------------------

    @property
    def sizes(self) -> list[int]:
        """Inputs, then each layer's outputs."""
        return list(self._config["sizes"])

    @property
    def activations(self) -> list[str]:
        """One activation name per layer, the output layer's last."""
        return [*self._config["activation"], self._config["output_activation"]]

    @property
    def loss(self) -> str:
        """The loss: "cross_entropy", "binary_cross_entropy", "mse" or "poisson"."""
        return str(self._config["loss"])

    @property
    def dtype(self) -> np.dtype[Any]:
        """float32 or float64, of the parameters and of every array the network returns."""
        return self._dtype

    @property
    def compute_dtype(self) -> str | None:
        """None (products in `dtype`) or "bfloat16" (bfloat16 operands, float32 sums).
        Assignable: a network trained in float32 can infer on bfloat16 products, and back."""
        compute: str | None = self._config["compute_dtype"]
        return compute

    @compute_dtype.setter
    def compute_dtype(self, compute: str | None) -> None:
        with self._lock:
            self._core.compute_dtype = compute  # checked there, as in the constructor
            self._config["compute_dtype"] = compute

    @property
    def is_classifier(self) -> bool:
        """Whether the loss is a cross-entropy (else it is "mse" or "poisson", regression)."""
        return bool(LOSSES[self.loss]["classifier"])

    def __repr__(self) -> str:
        c = self._config
        extra = "" if c["compute_dtype"] is None else f", compute_dtype={c['compute_dtype']!r}"
        extra += f", dropout={c['dropout']}" if any(c["dropout"]) else ""
        extra += f", label_smoothing={c['label_smoothing']}" if c["label_smoothing"] else ""
        return (
            f"Network({c['sizes']}, activation={c['activation']}, "
            f"output_activation={c['output_activation']!r}, loss={c['loss']!r}, "
            f"dtype={c['dtype']!r}{extra})"
        )

    # -- input coercion --------------------------------------------------------------------

    def _cast(self, a: ArrayLike, name: str) -> NDArray[Any]:
        """``a`` as an array of the network's dtype, if it casts without changing kind. Any
        array-like reads as the kernels read it (a view of its memory when it can be)."""
        a = _core._as_array(a, name)
        if a.dtype == self._dtype:
            return a
        if not np.can_cast(a.dtype, self._dtype, "same_kind"):
            msg = f"{name}: dtype {a.dtype} cannot be cast safely to the network's {self._dtype}"
            raise TypeError(msg)
        return a.astype(self._dtype)

    def _x(self, x: ArrayLike) -> NDArray[Any]:
        if type(x) is np.ndarray and x.ndim == 2 and x.dtype == self._dtype:
            return x  # the common case, at batch 1 a tenth of the call: C++ checks the rest
        if is_sparse(x):  # CSR of the network's dtype (CSC and other dtypes converted)
            m: Any = x
            if m.dtype != self._dtype and not np.can_cast(m.dtype, self._dtype, "same_kind"):
                msg = f"x: dtype {m.dtype} cannot be cast safely to the network's {self._dtype}"
                raise TypeError(msg)
            return m.tocsr().astype(self._dtype, copy=False)  # type: ignore[no-any-return]
        x = self._cast(x, "x")
        if x.ndim == 1 and x.shape[0] == self.sizes[0]:
            msg = (
                f"x: expected a 2-D array (batch, {self.sizes[0]}), got a 1-D one; "
                "use x[None, :] for one sample"
            )
            raise ValueError(msg)
        return x

    def _y(self, y: ArrayLike) -> NDArray[Any]:
        """y as the C++ loss reads it: int labels (cross-entropy) or (batch, outputs) floats."""
        y = _core._as_array(y, "y")
        if LOSSES[self.loss]["labels"] and y.ndim == 1:
            return y  # labels: dtype and range are checked in C++
        y = self._cast(y, "y")
        if y.ndim == 1 and self.sizes[-1] == 1:
            y = y[:, None]
        return y

    def _checked(self, x: ArrayLike, y: ArrayLike) -> tuple[NDArray[Any], NDArray[Any]]:
        """``(x, y)`` coerced and checked as a training step would check them."""
        x, y = self._x(x), self._y(y)
        self._core.check(x, y)
        return x, y

    # -- inference -------------------------------------------------------------------------

    def forward(self, x: ArrayLike) -> NDArray[Any]:
        """The network's output: ``x: (batch, inputs)`` -> ``(batch, outputs)``.

        Probabilities for the classification losses, values for "mse" and "poisson" (the
        means ``exp(Z[L])``). ``x`` may be a
        scipy.sparse CSR or CSC matrix: the first layer then multiplies its non-zeros only.
        """
        x = self._x(x)
        return self._core.forward(x) if type(x) is np.ndarray else self._core.forward_csr(x)

    @property
    def params(self) -> NDArray[Any]:
        """Every parameter in one flat view, layer after layer: ``W[l]`` ``(out, in)``
        row-major, then ``b[l]``; writeable (`weights` and `biases` view the same memory)."""
        return self._core.params

    def loss_and_gradient(
        self,
        params: ArrayLike,
        x: ArrayLike,
        y: ArrayLike,
        *,
        sample_weight: ArrayLike | None = None,
        alpha: float = 0.0,
    ) -> tuple[float, NDArray[Any]]:
        """The objective of full-batch optimisers (L-BFGS) at the flat ``params``: the mean loss
        of ``(x, y)``, weighted by ``sample_weight (batch,)`` (``Σ w_i ℓ_i / Σ w_i``), plus the
        L2 term ``alpha / (2 Σw) ||W||²``; and its gradient ``(parameters,)``, laid out as
        `params`. ``x`` dense or scipy.sparse. One C++ call with the GIL released; the network
        is unchanged.
        """
        params = self._cast(params, "params")
        weights = None if sample_weight is None else self._cast(sample_weight, "sample_weight")
        with self._lock:
            loss, grad = self._core.loss_and_gradient(params, self._x(x), self._y(y), weights,
                                                      float(alpha))  # fmt: skip
        return float(loss), grad

    def predict_proba(self, x: ArrayLike) -> NDArray[Any]:
        """Class probabilities ``(batch, classes)``; for binary cross-entropy one
        probability per output."""
        if not self.is_classifier:
            msg = f"predict_proba: the network is a regressor (loss={self.loss!r})"
            raise ValueError(msg)
        return self.forward(x)

    def predict(self, x: ArrayLike) -> NDArray[Any]:
        """Class labels ``(batch,)`` for cross-entropy, 0/1 per output for binary
        cross-entropy, values ``(batch, outputs)`` for "mse" and "poisson"."""
        out = self.forward(x)
        if self.loss == "cross_entropy":
            labels: NDArray[Any] = out.argmax(axis=1)
            return labels
        if self.loss == "binary_cross_entropy":
            return (out > 0.5).astype(np.int64)
        return out

    def score(self, x: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Accuracy for classification (labels or one-hot ``y``); for regression R², the mean
        over outputs as scikit-learn's ``r2_score``. ``sample_weight: (batch,)`` weighs each
        sample as scikit-learn's ``accuracy_score`` and ``r2_score`` do; checked as a training
        step checks it (finite, >= 0), and not all 0."""
        x, y = self._x(x), _core._as_array(y, "y")
        labels = bool(LOSSES[self.loss]["labels"]) and y.ndim == 1
        _metrics.check_targets(y, x.shape[0] if x.ndim else 0, self.sizes[-1], labels)
        weights = None
        if sample_weight is not None:
            self._core.check(x, self._y(y), self._weights(sample_weight))
            weights = _checks.weights(sample_weight)
        return _metrics.score(self.loss, self.forward(x), y, weights)

    # -- learning --------------------------------------------------------------------------

    @_one_at_a_time
    def gradients(
        self, x: ArrayLike, y: ArrayLike, reduction: str = "mean"
    ) -> tuple[float, list[tuple[NDArray[Any], NDArray[Any]]]]:
        """The loss of ``(x, y)`` and each layer's ``(grad_w, grad_b)``; the model is unchanged.

        ``grad_w: (out, in)``, ``grad_b: (out,)``, copies. ``reduction`` is
        "mean" (over the batch, as training uses) or "sum".
        """
        _checks.name(reduction, "reduction", ("mean", "sum"))
        loss = self._core.loss_and_gradients(self._x(x), self._y(y), reduction)
        grads = self._core.layers(self._core.grads)
        return loss, [(gw.copy(), gb.copy()) for gw, gb in grads]

    def per_sample_gradients(
        self, x: NDArray[np.floating], y: NDArray[np.generic]
    ) -> list[tuple[NDArray[np.floating], NDArray[np.floating]]]:
        """The gradient of each sample's own loss, per layer: ``[(grad_w, grad_b), ...]``.

        ``grad_w: (batch, out, in)``, ``grad_b: (batch, out)``. Summed over the batch they give
        ``gradients(x, y, reduction="sum")``, averaged ``gradients(x, y)`` (the mean). Computed
        in C++ from one backward pass; the model is unchanged.
        """
        layers = self._core.per_sample_gradients(self._x(x), self._y(y))
        return [(grad_w, grad_b) for grad_w, grad_b in layers]

    def per_sample_gradient_norms(
        self, x: NDArray[np.floating], y: NDArray[np.generic]
    ) -> NDArray[np.floating]:
        """The L2 norm of each sample's gradient over all parameters, ``(batch,)``.

        Equal to the norms of `per_sample_gradients`, without forming them: a dense layer's
        per-sample gradient is the outer product ``dz aᵀ`` (and ``dz`` for the bias), so its
        squared norm is ``‖dz‖² (‖a‖² + 1)``. Costs about one `gradients` call.
        """
        return self._core.per_sample_gradient_norms(self._x(x), self._y(y))

    @_one_at_a_time
    def trace(
        self, x: NDArray[np.floating], y: NDArray[np.generic], reduction: str = "mean"
    ) -> backprop.Trace:
        """Every term of one forward and backward pass on ``(x, y)``, with shapes and equations.

        ``Z[l], A[l], dA[l], dZ[l], dW[l], db[l]`` for layers ``l = 1..L`` (``A[0] = X``), in the
        order they are computed; ``print`` it for a table. Its ``dW``, ``db`` equal
        `gradients`. The model is unchanged.
        """
        _checks.name(reduction, "reduction", ("mean", "sum"))
        x, y = self._checked(x, y)
        return backprop.trace(
            self.weights, self.biases, self.activations, self.loss, x, y, reduction,
            negative_slope=self._config["negative_slope"], compute_dtype=self.compute_dtype,
            label_smoothing=self._config["label_smoothing"],
        )  # fmt: skip

    @_one_at_a_time
    def jacobian(self, x: NDArray[np.floating]) -> NDArray[np.floating]:
        """The Jacobian of `forward`'s outputs with respect to the inputs, per sample (with
        ``compute_dtype="bfloat16"``, of the float32 network: rounding has no derivative).

        ``x: (batch, inputs)`` -> ``(batch, outputs, inputs)``.
        """
        x = self._x(x)
        self._core.check(x)
        return backprop.jacobian(self.weights, self.biases, self.activations, x,
                                 negative_slope=self._config["negative_slope"])  # fmt: skip

    def plot_loss_curve(self, path: str | os.PathLike[str] | None = None) -> Any:
        """Plot ``loss_curve_`` (and ``validation_scores_`` on a second axis).

        Returns the matplotlib Figure; with ``path`` also saves it there (PNG, SVG, ...).
        Needs matplotlib (``pip install "denseprop[plot]"``).
        """
        return _plot.loss_curve_figure(
            self.loss_curve_, self.validation_scores_,
            title=f"Network({self.sizes}), {' / '.join(self.activations)}, {self.loss}",
            loss=self.loss, score="accuracy" if self.is_classifier else "R²", path=path,
        )  # fmt: skip

    # -- saving and export ------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write weights, biases, optimizer state and configuration (JSON) to a ``.npz``.

        The file loads with ``numpy.load(path, allow_pickle=False)``; its layout is in
        `denseprop.model_file`.
        """
        model_file.write(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Network:
        """The network saved at ``path``, bitwise as it was, dtype and optimizer state included.

        Everything in the file is checked before the network is built: a damaged or foreign
        file raises ValueError "<path> is not a denseprop model file: <what>"; one that cannot
        be opened, OSError.
        """
        return model_file.read(path, cls)

    def to_onnx(self, path: str | os.PathLike[str] | None = None) -> Any:
        """The network as an ONNX model computing `forward` (Gemm and activation ops, Softmax
        for probabilities), written to ``path`` when given; returns the ``onnx.ModelProto``.

        Input ``x: (batch, inputs)``, output ``(batch, outputs)``, in the network's dtype.
        Needs onnx (``pip install "denseprop[onnx]"``); see `denseprop.onnx_export`.
        """
        from . import onnx_export

        return onnx_export.network_to_onnx(self, path)

    def __getstate__(self) -> dict[str, NDArray[Any]]:
        return model_file.state(self)

    def __setstate__(self, state: dict[str, NDArray[Any]]) -> None:
        self.__dict__.update(model_file.from_state(state, type(self), "a pickled Network").__dict__)
        self._seam = self._make_seam()  # bound to this object, not the one built to load it

    def _make_seam(self) -> Seam:
        """The internal interface the package's adapters use (see `denseprop._seam`)."""
        return Seam(self._core, self._lock, self._config, self._x, self._y, self._restore)
