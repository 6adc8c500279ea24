"""The implementations compared: each ``make_*`` returns a callable that runs one training
step (or one inference) on fixed data, or raises ``Missing`` when its library is absent.

All train an MLP (sigmoid hidden layers unless ``activation`` says otherwise) with a softmax
cross-entropy output by plain SGD, from the same initial weights, on the same batch.
`BF16_PEERS` compare bfloat16 products: denseprop's ``compute_dtype="bfloat16"`` against
PyTorch under ``torch.autocast("cpu", dtype=torch.bfloat16)``, as its users run it for speed,
each beside its own float32 step.
"""

import denseprop
import denseprop.reference as ref
import numpy as np

LR = 0.01


class Missing(Exception):
    """The peer's library is not installed; the message says which."""


def initial(sizes, dtype, seed=0):
    net = denseprop.Network(sizes, dtype=dtype, seed=seed)
    return [(w.copy(), b.copy()) for w, b in zip(net.weights, net.biases)]


def make_denseprop(sizes, x, y, params, train=True, activation="sigmoid", compute_dtype=None):
    net = denseprop.Network(sizes, activation, dtype=x.dtype, seed=0, compute_dtype=compute_dtype)
    for (w, b), (w0, b0) in zip(zip(net.weights, net.biases), params):
        w[...], b[...] = w0, b0
    net.set_optimizer("sgd", LR)
    if train:
        return lambda: net.train_step(x, y)
    return lambda: net.forward(x)


def make_numpy(sizes, x, y, params, train=True, activation="sigmoid"):
    params = [(w.copy(), b.copy()) for w, b in params]
    acts = [activation] * (len(sizes) - 2) + ["softmax"]

    def step():
        _, grads = ref.network_loss_and_gradients(
            [w for w, _ in params], [b for _, b in params], x, y, acts, "cross_entropy"
        )
        ref.sgd_step(params, grads, None, LR)

    if train:
        return step
    return lambda: ref.network_forward([w for w, _ in params], [b for _, b in params], x, acts)


def gemm_floor(sizes, x, params):
    """The step's matrix products alone, in NumPy (OpenBLAS), into preallocated outputs:
    forward A[l] = A[l-1] W[l]ᵀ; backward dW[l] = dZ[l]ᵀ A[l-1] and dA[l-1] = dZ[l] W[l]."""
    batch = x.shape[0]
    acts = [x] + [np.ones((batch, n), x.dtype) for n in sizes[1:]]
    dws = [np.empty_like(w) for w, _ in params]
    das = [np.empty((batch, n), x.dtype) for n in sizes[:-1]]

    def products():
        for l, (w, _) in enumerate(params):
            np.matmul(acts[l], w.T, out=acts[l + 1])
        for l in range(len(params) - 1, -1, -1):
            np.matmul(acts[l + 1].T, acts[l], out=dws[l])
            if l > 0:
                np.matmul(acts[l + 1], params[l][0], out=das[l])

    return products


def torch_mlp(params, lr, activation="sigmoid"):
    """A torch.nn.Sequential of Linear + activation layers holding ``params``, and its SGD."""
    try:
        import torch
    except ImportError as e:
        msg = "torch is not installed"
        raise Missing(msg) from e
    layers = []
    for l, (w, b) in enumerate(params):
        linear = torch.nn.Linear(w.shape[1], w.shape[0], dtype=torch.from_numpy(w).dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w))
            linear.bias.copy_(torch.from_numpy(b))
        layers.append(linear)
        if l < len(params) - 1:
            layers.append(torch.nn.Sigmoid() if activation == "sigmoid" else torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    return model, torch.optim.SGD(model.parameters(), lr=lr)


def make_torch(sizes, x, y, params, train=True, activation="sigmoid", autocast=False):
    """Eager PyTorch; with ``autocast``, the forward and loss under
    ``torch.autocast("cpu", dtype=torch.bfloat16)`` (its products in bf16 on oneDNN), the
    backward and the step outside it, as PyTorch's documentation shows."""
    model, opt = torch_mlp(params, LR, activation)
    import torch

    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    cast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast)

    def step():
        opt.zero_grad(set_to_none=True)
        with cast:
            loss = torch.nn.functional.cross_entropy(model(tx), ty)
        loss.backward()
        opt.step()

    def infer():
        with torch.no_grad(), cast:
            return torch.softmax(model(tx), dim=1)

    return step if train else infer


def make_jax(sizes, x, y, params, train=True, activation="sigmoid"):
    try:
        import jax
        import jax.numpy as jnp
    except ImportError as e:
        msg = "jax is not installed"
        raise Missing(msg) from e
    if x.dtype == np.float64:
        jax.config.update("jax_enable_x64", True)
    p = [(jnp.asarray(w), jnp.asarray(b)) for w, b in params]
    jx, jy = jnp.asarray(x), jnp.asarray(y)

    g = jax.nn.sigmoid if activation == "sigmoid" else jax.nn.relu

    def logits(p, x):
        for w, b in p[:-1]:
            x = g(x @ w.T + b)
        w, b = p[-1]
        return x @ w.T + b

    def loss(p, x, y):
        z = logits(p, x)
        return jnp.mean(jax.nn.logsumexp(z, axis=1) - jnp.take_along_axis(z, y[:, None], 1)[:, 0])

    @jax.jit
    def update(p, x, y):
        value, grads = jax.value_and_grad(loss)(p, x, y)
        return value, jax.tree_util.tree_map(lambda a, g: a - LR * g, p, grads)

    predict = jax.jit(lambda p, x: jax.nn.softmax(logits(p, x), axis=1))
    state = {"p": p}

    def step():
        value, state["p"] = update(state["p"], jx, jy)
        value.block_until_ready()

    return step if train else (lambda: predict(state["p"], jx).block_until_ready())


PEERS = {"denseprop": make_denseprop, "numpy": make_numpy, "torch": make_torch, "jax": make_jax}


def _bf16(make, **options):
    return lambda sizes, x, y, params, train=True: make(sizes, x, y, params, train, "relu",
                                                        **options)  # fmt: skip


# relu hidden layers, float32 data and parameters; numpy (float32) stays the baseline.
BF16_PEERS = {
    "denseprop bf16": _bf16(make_denseprop, compute_dtype="bfloat16"),
    "torch autocast bf16": _bf16(make_torch, autocast=True),
    "denseprop": _bf16(make_denseprop),
    "torch": _bf16(make_torch),
    "numpy": _bf16(make_numpy),
}
