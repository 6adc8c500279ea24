"""Time per epoch on scikit-learn's digits: denseprop, the NumPy reference, PyTorch and
scikit-learn's MLPClassifier, all with the same network (64-32-10, sigmoid, plain SGD)."""

import warnings

import denseprop
import denseprop.reference as ref
import numpy as np
from peers import Missing, torch_mlp

LR = 0.1


def digits(dtype):
    """(x_train, x_test, y_train, y_test): X/16, test_size=0.25, random_state=0."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    return train_test_split((x / 16).astype(dtype), y, test_size=0.25, random_state=0)


class SklearnEpochs:
    """scikit-learn's MLPClassifier with the same settings, one epoch per call."""

    def __init__(self, x, y, batch_size):
        from sklearn.neural_network import MLPClassifier

        self.x, self.y = x, y
        self.clf = MLPClassifier(
            hidden_layer_sizes=(32,), activation="logistic", solver="sgd",
            learning_rate_init=LR, momentum=0.0, nesterovs_momentum=False, alpha=0.0,
            batch_size=batch_size, shuffle=True, random_state=0,
        )  # fmt: skip

    def __call__(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.clf.partial_fit(self.x, self.y, classes=np.arange(10))


def torch_epochs(params, x, y, batch_size):
    import torch

    model, opt = torch_mlp(params, LR)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(0)

    def epoch():
        order = torch.randperm(len(tx), generator=gen)
        for start in range(0, len(tx), batch_size):
            idx = order[start : start + batch_size]
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(tx[idx]), ty[idx]).backward()
            opt.step()

    return epoch


def runners(dtype, batch_size):
    """{name: one epoch over the digits' training split}, each with its own model."""
    x, _, y, _ = digits(dtype)
    net = denseprop.Network([64, 32, 10], dtype=dtype, seed=0)
    net.set_optimizer("sgd", LR)
    params = [(w.copy(), b.copy()) for w, b in zip(net.weights, net.biases)]
    rng = np.random.default_rng(0)
    found = {
        "denseprop": lambda: net.partial_fit(x, y, batch_size=batch_size),
        "numpy": lambda: ref.fit_epoch(params, x, y, rng.permutation(len(x)), batch_size,
                                       net.activations, net.loss, LR),
        "scikit-learn": SklearnEpochs(x, y, batch_size),
    }
    try:
        found["torch"] = torch_epochs(params, x, y, batch_size)
    except Missing:
        pass
    return found


def accuracies(dtype, epochs):
    """Test accuracy of denseprop and scikit-learn after ``epochs`` epochs at batch 32."""
    x, x_test, y, y_test = digits(dtype)
    net = denseprop.Network([64, 32, 10], dtype=dtype, seed=0)
    net.fit(x, y, epochs=epochs, batch_size=32, lr=LR, seed=0)
    sk = SklearnEpochs(x, y, 32)
    for _ in range(epochs):
        sk()
    return {"denseprop": net.score(x_test, y_test), "scikit-learn": sk.clf.score(x_test, y_test)}
