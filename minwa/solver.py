"""Solver: Caffe's SGD (with Nesterov and Adam variants) and its learning-rate policies.

The update arithmetic lives in an ``UpdateRule`` that works on any arrays, so the
data-parallel code can apply it to one rank's slice of a flat gradient bucket
(``lr_mult``/``decay_mult`` may then be per-element arrays). The solver itself
never talks to MPI.
"""
import math

import numpy

from . import backend
from .errors import ConfigError
from .schema.solver_block import LR_POLICIES, SOLVER, SOLVER_TYPES  # noqa: F401 - LR_POLICIES re-exported
from .sgd_kernel import fusable, sgd_update

#: Caffe SolverParameter fields minwa reads, with Caffe's defaults (declared in minwa.schema.solver_block).
SOLVER_DEFAULTS = SOLVER.defaults()


def normalize_solver_config(cfg):
    """Check against the declared solver schema, fill Caffe's defaults; raises ConfigError naming the field."""
    cfg = dict(cfg or {})
    legacy = cfg.pop("solver_type", None)
    out = SOLVER.check(cfg, "solver", fill=True)
    if legacy is not None:
        kind = SOLVER.fields["solver_type"].check(legacy, "solver.solver_type")
        if "type" in cfg and out["type"].upper() != kind:
            raise ConfigError(f"solver: 'type: {out['type']}' and 'solver_type: {legacy}' disagree")
        out["type"] = {t.upper(): t for t in SOLVER_TYPES}[kind]
    for key in ("stepvalue", "test_iter"):
        if not isinstance(out[key], list):
            out[key] = [] if out[key] in ((), None) else [out[key]]
    if len(out["test_iter"]) > 1:
        raise ConfigError(f"solver.test_iter: {len(out['test_iter'])} values given; minwa runs one test net")
    out["test_iter"] = out["test_iter"][0] if out["test_iter"] else 0
    if out["lr_policy"] == "step" and out["stepsize"] <= 0:
        raise ConfigError("solver.stepsize: lr_policy 'step' needs stepsize > 0")
    if out["stepvalue"] != sorted(out["stepvalue"]):
        raise ConfigError(f"solver.stepvalue: must be increasing, got {out['stepvalue']}")
    return out


def learning_rate(cfg, it):
    """Caffe's SGDSolver::GetLearningRate for iteration ``it``."""
    base, policy, gamma, power = cfg["base_lr"], cfg["lr_policy"], cfg["gamma"], cfg["power"]
    if policy == "fixed":
        return base
    if policy == "step":
        return base * gamma ** (it // cfg["stepsize"])
    if policy == "exp":
        return base * gamma ** it
    if policy == "inv":
        return base * (1.0 + gamma * it) ** (-power)
    if policy == "multistep":
        return base * gamma ** sum(1 for v in cfg["stepvalue"] if it >= v)
    if policy == "poly":
        return base * (1.0 - it / float(cfg["max_iter"])) ** power
    if policy == "sigmoid":
        return base / (1.0 + math.exp(-gamma * (it - cfg["stepsize"])))
    raise ConfigError(f"solver.lr_policy {policy!r} is not supported")


class UpdateRule:
    """One optimiser's arithmetic on arrays: ``apply`` mutates data and state in place."""

    state_names = ()

    def __init__(self, cfg):
        self.cfg = cfg

    def init_state(self, data):
        xp = backend.xp_of(data)
        return {name: xp.zeros_like(data) for name in self.state_names}

    def regularize(self, data, grad, decay):
        """Caffe's Regularize: weight decay folded into the gradient."""
        if self.cfg["weight_decay"] == 0:
            return grad
        xp = backend.xp_of(data)
        if str(self.cfg["regularization_type"]).upper() == "L1":
            return grad + decay * xp.sign(data)
        return grad + decay * data

    def apply(self, data, grad, state, lr, lr_mult=1.0, decay_mult=1.0, it=0):
        raise NotImplementedError


class SGDRule(UpdateRule):
    """history = momentum*history + lr*lr_mult*(grad + wd*decay_mult*w); w -= history."""

    state_names = ("history",)

    def apply(self, data, grad, state, lr, lr_mult=1.0, decay_mult=1.0, it=0):
        history, decay = state["history"], self.cfg["weight_decay"] * decay_mult
        if str(self.cfg["regularization_type"]).upper() == "L2" and fusable(data, grad, history, lr_mult, decay):
            sgd_update(data, grad, history, self.cfg["momentum"], lr * lr_mult, decay)  # same arithmetic, fused
            return
        grad = self.regularize(data, grad, decay)
        history *= self.cfg["momentum"]
        history += (lr * lr_mult) * grad
        data -= history


class NesterovRule(UpdateRule):
    """Caffe's Nesterov: w -= (1+m)*h_new - m*h_old."""

    state_names = ("history",)

    def apply(self, data, grad, state, lr, lr_mult=1.0, decay_mult=1.0, it=0):
        grad = self.regularize(data, grad, self.cfg["weight_decay"] * decay_mult)
        momentum = self.cfg["momentum"]
        history = state["history"]
        previous = history.copy()
        history *= momentum
        history += (lr * lr_mult) * grad
        data -= (1.0 + momentum) * history - momentum * previous


class AdamRule(UpdateRule):
    """Caffe's Adam: bias-corrected moments; step size lr*sqrt(1-b2^t)/(1-b1^t)."""

    state_names = ("m", "v")

    def apply(self, data, grad, state, lr, lr_mult=1.0, decay_mult=1.0, it=0):
        xp = backend.xp_of(data)
        grad = self.regularize(data, grad, self.cfg["weight_decay"] * decay_mult)
        beta1, beta2, eps = self.cfg["momentum"], self.cfg["momentum2"], self.cfg["delta"]
        m, v = state["m"], state["v"]
        m *= beta1
        m += (1.0 - beta1) * grad
        v *= beta2
        v += (1.0 - beta2) * grad * grad
        t = it + 1
        correction = math.sqrt(1.0 - beta2 ** t) / (1.0 - beta1 ** t)
        data -= (lr * lr_mult * correction) * m / (xp.sqrt(v) + eps)


RULES = {"SGD": SGDRule, "Nesterov": NesterovRule, "Adam": AdamRule}


class Solver:
    """Applies the configured update rule to every parameter of a net, Caffe-style."""

    def __init__(self, net_or_params, cfg=None):
        self.params = list(getattr(net_or_params, "params", net_or_params))
        self.cfg = normalize_solver_config(cfg)
        self.rule = RULES[self.cfg["type"]](self.cfg)
        self.iter = 0
        self.state = {}

    def learning_rate(self, it=None):
        return learning_rate(self.cfg, self.iter if it is None else it)

    def state_for(self, param):
        if param.name not in self.state:
            self.state[param.name] = self.rule.init_state(param.data)
        return self.state[param.name]

    def clip_scale(self):
        """Caffe's ClipGradients: scale all grads when their global L2 norm exceeds clip_gradients.

        Blobs with lr_mult 0 are not counted (Caffe computes no diff for them, so they add 0).
        With ``iter_size`` > 1 the gradients here are already averaged over the batches
        (GradientAccumulator) while Caffe clips their sum: the limit is divided to match.
        """
        limit = self.cfg["clip_gradients"] / self.cfg.get("iter_size", 1)
        if limit < 0:
            return 1.0
        total = 0.0
        for p in self.params:
            if p.grad is not None and p.lr_mult != 0:
                xp = backend.xp_of(p.grad)
                total += float(xp.sum(p.grad.astype("float64") ** 2))
        norm = math.sqrt(total)
        return limit / norm if norm > limit else 1.0

    def update(self, params=None):
        """Apply one update to ``params`` (default: all) from their current gradients."""
        lr = self.learning_rate()
        scale = self.clip_scale()
        for param in self.params if params is None else params:
            if param.lr_mult == 0 or param.grad is None:
                continue
            grad = param.grad if scale == 1.0 else param.grad * scale
            self.rule.apply(param.data, grad, self.state_for(param), lr, param.lr_mult, param.decay_mult, self.iter)

    def step(self):
        """Update every parameter, then advance the iteration counter."""
        self.update()
        self.iter += 1

    def state_dict(self):
        """Iteration and per-parameter optimiser state as host arrays (for checkpoints)."""
        state = {name: {k: numpy.array(backend.to_host(v)) for k, v in slots.items()}
                 for name, slots in self.state.items()}
        return {"iter": self.iter, "state": state}

    def load_state_dict(self, saved):
        self.iter = int(saved["iter"])
        names = {p.name: p for p in self.params}
        self.state = {}
        for name, slots in saved.get("state", {}).items():
            if name not in names:
                raise ConfigError(f"solver state names parameter {name!r}, which the net does not have")
            self.state[name] = {k: backend.to_device(numpy.array(v)) for k, v in slots.items()}
