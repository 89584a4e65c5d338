"""Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay.

The update is ``torch.optim.SGD``'s, step for step (``p``: parameter, ``g``: gradient,
``b``: momentum buffer, all the same shape)::

    d = g + weight_decay * p                      # if weight_decay != 0
    if momentum != 0:
        b = d                      on the first step (a copy: no dampening applied)
        b = momentum * b + (1 - dampening) * d    afterwards
        d = d + momentum * b       if nesterov
        d = b                      otherwise
    p = p - lr * d
"""
import numpy as np

from .optimizer import Optimizer


class SGD(Optimizer):
    """SGD as ``torch.optim.SGD(params, lr, momentum, dampening, weight_decay, nesterov)``.

    Args:
        params: list of ``(name, param, grad)`` triples (float32 arrays, same shape),
            or a ``Module``; filter with ``select_params`` to freeze layers.
        lr: learning rate, >= 0.
        momentum: momentum factor, >= 0.
        dampening: dampening for momentum (must be 0 with Nesterov).
        weight_decay: L2 penalty, added to the gradient.
        nesterov: use Nesterov momentum (needs momentum > 0 and dampening 0).

    State per parameter: ``momentum_buffer`` (same shape as the parameter), created on
    the first step when momentum != 0.
    """

    hyper_names = ("lr", "momentum", "dampening", "weight_decay", "nesterov")

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay, nesterov=nesterov)

    def _check(self):
        super()._check()
        self.momentum, self.dampening = float(self.momentum), float(self.dampening)
        self.weight_decay, self.nesterov = float(self.weight_decay), bool(self.nesterov)
        if not self.momentum >= 0.0:
            raise ValueError(f"momentum must be >= 0, got {self.momentum}")
        if not self.weight_decay >= 0.0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.nesterov and (self.momentum <= 0.0 or self.dampening != 0.0):
            raise ValueError("Nesterov momentum requires a momentum > 0 and zero dampening "
                             f"(got momentum={self.momentum}, dampening={self.dampening})")

    def _update(self, name, p, g, state):
        lr, mu, wd = self.lr, self.momentum, self.weight_decay
        d = g                                            # the step direction, (shape of p)
        if wd != 0.0:
            d = self._work(name, p, 0)
            np.multiply(p, wd, out=d)                    # d = wd * p
            np.add(d, g, out=d)                          # d = g + wd * p
        if mu != 0.0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = d.copy()  # first step: b = d, undampened
            else:
                np.multiply(buf, mu, out=buf)            # b = mu * b
                if self.dampening != 0.0:
                    t = self._work(name, p, 1)
                    np.multiply(d, 1.0 - self.dampening, out=t)
                    np.add(buf, t, out=buf)              # b += (1 - dampening) * d
                else:
                    np.add(buf, d, out=buf)              # b += d
            if self.nesterov:
                t = self._work(name, p, 1)
                np.multiply(buf, mu, out=t)              # t = mu * b
                np.add(d, t, out=t)                      # t = d + mu * b
                d = t
            else:
                d = buf
        t = self._work(name, p, 1)
        np.multiply(d, lr, out=t)                        # t = lr * d   (t may be d: fine)
        np.subtract(p, t, out=p)                         # p -= lr * d, in place
