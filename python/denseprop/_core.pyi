# Types of the compiled kernels: the same in every compiled variant (_core_portable,
# _core_x86_64_v3, ...), whichever _core re-exports. Arrays are float32 or float64, the same
# for all arrays of one call.
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

_F = TypeVar("_F", np.float32, np.float64)

def build_info() -> dict[str, Any]: ...
def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def _cpu_features() -> list[str]: ...
def _as_array(obj: Any, name: str) -> NDArray[Any]: ...
def _set_bf16_kernel(name: str) -> None: ...
def _bf16_kernel() -> str: ...
def _request_amx() -> str: ...
def _bf16_matmul(
    a: ArrayLike,
    b: ArrayLike,
    *,
    kernel: str,
    transpose_a: bool = False,
    transpose_b: bool = False,
    alpha: float = 1.0,
    c: ArrayLike | None = None,
) -> NDArray[np.float32]: ...
def activations() -> list[dict[str, Any]]: ...
def permutation(n: int, seed: int, k: int) -> NDArray[np.int64]: ...
def losses() -> list[dict[str, Any]]: ...
def optimizers() -> list[dict[str, Any]]: ...
def optimizer_settings() -> list[dict[str, Any]]: ...
def dense_forward(
    x: ArrayLike,
    w: ArrayLike,
    b: ArrayLike,
    activation: str = "identity",
    out: NDArray[Any] | None = None,
    *,
    negative_slope: float = 0.01,
    compute_dtype: str | None = None,
) -> NDArray[Any]: ...
def dense_backward(
    x: ArrayLike,
    w: ArrayLike,
    a: ArrayLike,
    grad_a: ArrayLike,
    activation: str = "identity",
    need_grad_x: bool = True,
    *,
    z: ArrayLike | None = None,
    negative_slope: float = 0.01,
    compute_dtype: str | None = None,
) -> tuple[NDArray[Any] | None, NDArray[Any], NDArray[Any]]: ...
def activation_forward(
    z: ArrayLike, activation: str, *, negative_slope: float = 0.01
) -> NDArray[Any]: ...
def activation_backward(
    a: ArrayLike,
    grad_a: ArrayLike,
    activation: str,
    *,
    z: ArrayLike | None = None,
    negative_slope: float = 0.01,
) -> NDArray[Any]: ...
def activation_jacobian(
    a: ArrayLike, activation: str, *, z: ArrayLike | None = None, negative_slope: float = 0.01
) -> NDArray[Any]: ...
def sigmoid(z: ArrayLike) -> NDArray[Any]: ...
def sigmoid_backward(a: ArrayLike, grad_a: ArrayLike) -> NDArray[Any]: ...
def softmax(z: ArrayLike) -> NDArray[Any]: ...
def softmax_backward(s: ArrayLike, grad_s: ArrayLike) -> NDArray[Any]: ...
def softmax_jacobian(s: ArrayLike) -> NDArray[Any]: ...
def softmax_cross_entropy(
    logits: ArrayLike, y: ArrayLike, reduction: str = "mean"
) -> tuple[Any, NDArray[Any]]: ...
def sigmoid_cross_entropy(
    logits: ArrayLike, y: ArrayLike, reduction: str = "mean"
) -> tuple[Any, NDArray[Any]]: ...
def mse(
    pred: ArrayLike, target: ArrayLike, reduction: str = "mean"
) -> tuple[Any, NDArray[Any]]: ...
def half_poisson_deviance(
    logits: ArrayLike, y: ArrayLike, reduction: str = "mean"
) -> tuple[Any, NDArray[Any]]: ...

class OptimizerSettings:
    """Every setting of a Network's optimizer, by name; checked when made."""

    def __init__(
        self, *, optimizer: str = "sgd", seed: int | None = None, **settings: float | bool
    ) -> None: ...
    @property
    def optimizer(self) -> str: ...
    @property
    def seed(self) -> int: ...
    def __getattr__(self, name: str) -> float | bool: ...
    def as_dict(self) -> dict[str, Any]: ...

class TrainingState:
    """What a run of run_epochs carries to the next (see training.hpp)."""

    seed: int
    shuffles: int
    lr: float
    t: int
    no_improvement: int
    best_loss: float
    best_score: float
    def __init__(self) -> None: ...

class _Network(Generic[_F]):
    """NetworkF32 and NetworkF64: one C++ network each; denseprop.Network wraps them."""

    def __init__(
        self,
        sizes: Sequence[int],
        activation: Sequence[str],
        output_activation: str | None,
        negative_slope: float,
        loss: str,
    ) -> None: ...
    @property
    def params(self) -> NDArray[_F]: ...
    @property
    def grads(self) -> NDArray[_F]: ...
    @property
    def optimizer_state(self) -> tuple[NDArray[_F], NDArray[_F]]: ...
    @property
    def optimizer_steps(self) -> int: ...
    @optimizer_steps.setter
    def optimizer_steps(self, t: int) -> None: ...
    def layers(self, buffer: NDArray[Any]) -> list[tuple[NDArray[Any], NDArray[Any]]]: ...
    def set_optimizer(self, settings: OptimizerSettings) -> None: ...
    @property
    def optimizer(self) -> OptimizerSettings: ...
    @property
    def compute_dtype(self) -> str | None: ...
    @compute_dtype.setter
    def compute_dtype(self, compute: str | None) -> None: ...
    def forward(self, x: ArrayLike) -> NDArray[_F]: ...
    def loss_and_gradients(self, x: ArrayLike, y: ArrayLike, reduction: str = "mean") -> Any: ...
    def per_sample_gradients(
        self, x: ArrayLike, y: ArrayLike
    ) -> list[tuple[NDArray[_F], NDArray[_F]]]: ...
    def per_sample_gradient_norms(self, x: ArrayLike, y: ArrayLike) -> NDArray[_F]: ...
    def check(
        self, x: ArrayLike, y: ArrayLike | None = None, sample_weight: ArrayLike | None = None
    ) -> None: ...
    def train_step(
        self, x: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> float: ...
    def workspace(self) -> tuple[int, list[int]]: ...
    def forward_csr(self, x: Any) -> NDArray[_F]: ...
    def set_learning_rate(self, lr: float) -> None: ...
    def loss_and_gradient(
        self, params: ArrayLike, x: Any, y: ArrayLike, sample_weight: ArrayLike | None, alpha: float
    ) -> tuple[float, NDArray[_F]]: ...
    def run_epochs(
        self,
        x: Any,
        y: ArrayLike,
        sample_weight: ArrayLike | None = None,
        *,
        state: TrainingState,
        max_epochs: int,
        batch_size: int,
        shuffle: bool = True,
        stop: str = "none",
        tol: float = 1e-4,
        n_iter_no_change: float = 10.0,
        schedule: str = "constant",
        lr_init: float = 1e-3,
        power_t: float = 0.5,
        alpha: float | None = None,
        data_scale: float = 1.0,
        validation: tuple[Any, ArrayLike, ArrayLike | None] | None = None,
        after_epoch: Callable[[int, float], float | None] | None = None,
        scored: bool = False,
        best_params: NDArray[Any] | None = None,
        reduce: Callable[[float, int, float], tuple[float, int, float]] | None = None,
        steps: int = 0,
        stop_when_diverged: bool = True,
        exact_match: bool = True,
        checked: bool = False,
    ) -> tuple[list[float], list[float], str, list[tuple[int, float]]]: ...
    @property
    def gradient_buffer(self) -> NDArray[_F]: ...
    def distributed_step(
        self,
        x: Any,
        y: ArrayLike | None,
        reduce: Callable[[float, int, float], tuple[float, int, float]],
        sample_weight: ArrayLike | None = None,
    ) -> tuple[float, int]: ...

class NetworkF32(_Network[np.float32]): ...
class NetworkF64(_Network[np.float64]): ...
