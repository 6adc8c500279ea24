"""denseprop: batched dense neural networks on fused Eigen C++ kernels.

Arrays are batch-first and C-contiguous: x is (batch, features), weights are (out, in) as in
torch.nn.Linear. Every kernel has a NumPy twin of the same name in `denseprop.reference`.
"""

from importlib.metadata import version as _version
from typing import TYPE_CHECKING, Any

from . import _core
from ._native import build_info
from .network import Network

if TYPE_CHECKING:
    from .estimators import MLPClassifier as MLPClassifier
    from .estimators import MLPRegressor as MLPRegressor

__version__ = _version("denseprop")

activations = _core.activations
losses = _core.losses
optimizers = _core.optimizers
set_num_threads = _core.set_num_threads
get_num_threads = _core.get_num_threads

activation_forward = _core.activation_forward
activation_backward = _core.activation_backward
activation_jacobian = _core.activation_jacobian
dense_forward = _core.dense_forward
dense_backward = _core.dense_backward
sigmoid = _core.sigmoid
sigmoid_backward = _core.sigmoid_backward
softmax = _core.softmax
softmax_backward = _core.softmax_backward
softmax_jacobian = _core.softmax_jacobian
softmax_cross_entropy = _core.softmax_cross_entropy
sigmoid_cross_entropy = _core.sigmoid_cross_entropy
mse = _core.mse
half_poisson_deviance = _core.half_poisson_deviance

__all__ = [
    "Network",
    "__version__",
    "activation_backward",
    "activation_forward",
    "activation_jacobian",
    "activations",
    "build_info",
    "dense_backward",
    "dense_forward",
    "get_num_threads",
    "half_poisson_deviance",
    "losses",
    "mse",
    "optimizers",
    "set_num_threads",
    "sigmoid",
    "sigmoid_backward",
    "sigmoid_cross_entropy",
    "softmax",
    "softmax_backward",
    "softmax_cross_entropy",
    "softmax_jacobian",
]

# scikit-learn is optional: its estimators import it on first use, not with the package.
# They stay out of __all__ so that `from denseprop import *` works without it.
_ESTIMATORS = ("MLPClassifier", "MLPRegressor")


def __getattr__(name: str) -> Any:
    if name in _ESTIMATORS:
        from . import estimators

        return getattr(estimators, name)
    msg = f"module 'denseprop' has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted([*globals(), *_ESTIMATORS])
