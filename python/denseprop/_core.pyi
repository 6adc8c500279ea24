# Types of the compiled kernels: the same in every compiled variant (_core_portable,
# _core_x86_64_v3, ...), whichever _core re-exports. Arrays are float32 or float64, the same
# for all arrays of one call.
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

_F = TypeVar("_F", np.float32, np.float64)

def build_info() -> dict[str, Any]: ...
def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def _cpu_features() -> list[str]: ...
def activations() -> list[dict[str, Any]]: ...
def losses() -> list[dict[str, Any]]: ...
def optimizers() -> list[dict[str, Any]]: ...
def dense_forward(
    x: ArrayLike,
    w: ArrayLike,
    b: ArrayLike,
    activation: str = "identity",
    out: NDArray[Any] | None = None,
    *,
    negative_slope: float = 0.01,
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

class OptimizerSettings:
    """Every setting of a Network's optimizer, by name; checked when made."""

    def __init__(
        self,
        *,
        optimizer: str = "sgd",
        lr: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        clip_norm: float = 1.0,
        noise_multiplier: float = 1.0,
        seed: int | None = None,
    ) -> None: ...
    @property
    def optimizer(self) -> str: ...
    @property
    def lr(self) -> float: ...
    @property
    def momentum(self) -> float: ...
    @property
    def nesterov(self) -> bool: ...
    @property
    def beta1(self) -> float: ...
    @property
    def beta2(self) -> float: ...
    @property
    def eps(self) -> float: ...
    @property
    def weight_decay(self) -> float: ...
    @property
    def clip_norm(self) -> float: ...
    @property
    def noise_multiplier(self) -> float: ...
    @property
    def seed(self) -> int: ...
    def as_dict(self) -> dict[str, Any]: ...

class TrainingState:
    """What a run of train_epochs carries to the next (see training.hpp)."""

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
    def forward(self, x: ArrayLike) -> NDArray[_F]: ...
    def loss_and_gradients(self, x: ArrayLike, y: ArrayLike, reduction: str = "mean") -> Any: ...
    def per_sample_gradients(
        self, x: ArrayLike, y: ArrayLike
    ) -> list[tuple[NDArray[_F], NDArray[_F]]]: ...
    def per_sample_gradient_norms(self, x: ArrayLike, y: ArrayLike) -> NDArray[_F]: ...
    def check(self, x: ArrayLike, y: ArrayLike | None = None) -> None: ...
    def train_step(self, x: ArrayLike, y: ArrayLike) -> float: ...
    def fit_epoch(
        self,
        x: ArrayLike,
        y: ArrayLike,
        order: ArrayLike,
        batch_size: int,
        *,
        checked: bool = False,
    ) -> float: ...
    def workspace(self) -> tuple[int, list[int]]: ...
    def forward_csr(self, x: Any) -> NDArray[_F]: ...
    def set_learning_rate(self, lr: float) -> None: ...
    def loss_and_gradient(
        self, params: ArrayLike, x: Any, y: ArrayLike, sample_weight: ArrayLike | None, alpha: float
    ) -> tuple[float, NDArray[_F]]: ...
    def train_epochs(
        self,
        x: Any,
        y: ArrayLike,
        sample_weight: ArrayLike | None,
        validation: tuple[Any, ArrayLike, ArrayLike | None] | None,
        state: TrainingState,
        max_epochs: int,
        batch_size: int,
        shuffle: bool,
        alpha: float,
        data_scale: float,
        schedule: str,
        lr_init: float,
        power_t: float,
        tol: float,
        n_iter_no_change: float,
        best_params: NDArray[_F] | None,
        batch_penalty: bool = True,
        stop_when_diverged: bool = False,
        exact_match: bool = True,
    ) -> tuple[list[float], list[float], str, list[tuple[int, float]]]: ...

class NetworkF32(_Network[np.float32]): ...
class NetworkF64(_Network[np.float64]): ...
