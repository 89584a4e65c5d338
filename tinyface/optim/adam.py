"""Adam (L2 weight decay added to the gradient) and AdamW (decoupled weight decay).

The update is ``torch.optim.Adam`` / ``torch.optim.AdamW`` (amsgrad=False), step for
step (``p``: parameter, ``g``: gradient, ``m``/``v``: moment estimates, same shape;
``t``: this parameter's step count, starting at 1)::

    p = p * (1 - lr * weight_decay)          # AdamW only (decoupled decay)
    g = g + weight_decay * p                 # Adam only (L2 penalty in the gradient)
    m = m + (1 - beta1) * (g - m)            # = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)
"""
import math

import numpy as np

from .optimizer import Optimizer


class Adam(Optimizer):
    """Adam as ``torch.optim.Adam(params, lr, betas, eps, weight_decay)``.

    Args:
        params: list of ``(name, param, grad)`` triples (float32 arrays, same shape),
            or a ``Module``; filter with ``select_params`` to freeze layers.
        lr: learning rate, >= 0.
        betas: ``(beta1, beta2)``, each in [0, 1).
        eps: added to the denominator, >= 0.
        weight_decay: L2 penalty added to the gradient (AdamW decouples it instead).

    State per parameter: ``step`` (int), ``exp_avg`` and ``exp_avg_sq`` (shape of param).
    """

    hyper_names = ("lr", "betas", "eps", "weight_decay")
    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def _check(self):
        super()._check()
        b1, b2 = (float(b) for b in self.betas)
        self.betas, self.eps, self.weight_decay = (b1, b2), float(self.eps), float(self.weight_decay)
        for i, b in enumerate(self.betas):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"betas[{i}] must be in [0, 1), got {b}")
        if not self.eps >= 0.0:
            raise ValueError(f"eps must be >= 0, got {self.eps}")
        if not self.weight_decay >= 0.0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")

    def _update(self, name, p, g, state):
        lr, wd, eps = self.lr, self.weight_decay, self.eps
        b1, b2 = self.betas
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p)
            state["exp_avg_sq"] = np.zeros_like(p)
        state["step"] += 1
        step = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        t = self._work(name, p, 1)                       # scratch, (shape of p)

        if wd != 0.0:
            if self.decoupled:
                np.multiply(p, 1.0 - lr * wd, out=p)     # AdamW: p *= 1 - lr * wd
            else:
                gw = self._work(name, p, 0)
                np.multiply(p, wd, out=gw)
                np.add(g, gw, out=gw)                    # Adam: g = g + wd * p
                g = gw

        np.subtract(g, m, out=t)                         # t = g - m
        np.multiply(t, 1.0 - b1, out=t)
        np.add(m, t, out=m)                              # m += (1 - b1) * (g - m)
        np.multiply(v, b2, out=v)
        np.multiply(g, g, out=t)
        np.multiply(t, 1.0 - b2, out=t)
        np.add(v, t, out=v)                              # v = b2 * v + (1 - b2) * g^2

        step_size = lr / (1.0 - b1 ** step)              # bias correction of m
        bc2_sqrt = math.sqrt(1.0 - b2 ** step)           # bias correction of v
        np.sqrt(v, out=t)
        np.divide(t, bc2_sqrt, out=t)
        np.add(t, eps, out=t)                            # t = sqrt(v) / sqrt(bc2) + eps
        np.divide(m, t, out=t)
        np.multiply(t, step_size, out=t)
        np.subtract(p, t, out=p)                         # p -= step_size * m / denom


class AdamW(Adam):
    """AdamW as ``torch.optim.AdamW(params, lr, betas, eps, weight_decay=1e-2)``.

    Same arguments and state as ``Adam``, but ``weight_decay`` shrinks the parameter
    directly (``p *= 1 - lr * weight_decay``) before the Adam step instead of being
    added to the gradient, so it is not rescaled by the adaptive denominator.
    """

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
