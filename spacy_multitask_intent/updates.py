"""How one batch trains: the update strategies of `intent_ner`.

alternating: NER forward+backward, then intent forward+backward, each
  followed by its own optimizer step, the intent step at
  learn rate x intent_lr_factor.  With `sgd` given, the steps happen in
  update(), so the intent pass sees the NER-updated weights.  Without it
  (spaCy's training loop), both passes run at the batch's weights and
  finish_update() applies the two steps in order.
joint: one pass through the model's forward, loss = ner + intent_weight x
  intent (optionally balanced by learned uncertainties, Kendall et al., 2018,
  or with PCGrad's projection of the intent gradient at the shared word
  vectors: `loss_balance = "pcgrad"`).
ner_only: the NER pass alone; the intent head is never touched.

A strategy holds no state of its own: the pipe keeps the pending gradients,
the update count and the loss log-variances, so cfg can change between calls
(e.g. after from_disk).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Doc
from thinc.api import Model, Optimizer

from .layers import MIX_PARAMS, torch_modules
from .model import encode

UPDATE_MODES = ("alternating", "joint", "ner_only")
LOSS_BALANCES = ("fixed", "uncertainty", "pcgrad")
INTENT_KEY_SUFFIX = "::intent"  # optimizer keys of the intent step's own Adam state


class _ScaledLR:
    """An optimizer view whose every call uses lr_scale × the learn rate.

    With Adam, scaling a loss or gradient leaves the step size unchanged, so
    the intent step is made smaller by scaling the learning rate itself.
    """

    def __init__(self, optimizer: Optimizer, scale: float, key_suffix: str = "", mix_scale: float = 1.0):
        self.optimizer, self.scale, self.key_suffix, self.mix_scale = optimizer, scale, key_suffix, mix_scale

    def __call__(self, key, weights, gradient, *, lr_scale: float = 1.0):
        if key[1] in MIX_PARAMS:  # an encoder's scalar mix steps at the heads' rate
            lr_scale = lr_scale * self.mix_scale
        if self.key_suffix:
            # A key of its own: thinc's Adam keeps moments and the update
            # count per key, so this step no longer shares them.
            key = (key[0], f"{key[1]}{self.key_suffix}")
        return self.optimizer(key, weights, gradient, lr_scale=lr_scale * self.scale)

    def __getattr__(self, name):
        return getattr(self.optimizer, name)


def _step(pipe, sgd: Optimizer, names: Sequence[str], scale: float = 1.0, key_suffix: str = "") -> None:
    """One optimizer step of the model parts `names` at learn rate x scale;
    the heads (every part but the encoder) at learn rate x scale x
    head_lr_factor (and so does the encoder's scalar mix, when it has one)."""
    heads = float(pipe.cfg.get("head_lr_factor", 1.0))
    for name in names:
        s = scale if name == "encoder" else scale * heads
        opt = sgd if s == 1.0 and not key_suffix and heads == 1.0 else _ScaledLR(sgd, s, key_suffix, heads)
        pipe.model.get_ref(name).finish_update(opt)


def warmup(pipe) -> float:
    """The intent weight's ramp for the batch being trained: its number
    (counted from 1 by update()) / intent_weight_warmup, at most 1."""
    steps = int(pipe.cfg.get("intent_weight_warmup", 0))
    return 1.0 if steps <= 0 else min(1.0, max(pipe._n_updates, 1) / steps)


def _intent_step(pipe, sgd: Optimizer) -> None:
    separate = pipe.cfg.get("intent_optimizer_state", "shared") == "separate"
    factor = pipe.cfg["intent_lr_factor"] * warmup(pipe)
    _step(pipe, sgd, ("encoder", "intent_head"), factor, INTENT_KEY_SUFFIX if separate else "")


def _head_pass(pipe, docs: List[Doc], examples, targets, head: str) -> float:
    """Encoder + one head, forward and backward; the head's loss."""
    ops = pipe.model.ops
    X, lengths, bp_X = encode(pipe.model, docs, True)
    logits, bp_head = pipe.model.get_ref(head)(X, True)
    scores = (ops.to_numpy(logits), None) if head == "ner_head" else (None, ops.to_numpy(logits))
    (ner_loss, intent_loss), (d_ner, d_intent) = pipe.get_loss(examples, scores, targets=targets)
    bp_X(bp_head(ops.asarray2f(d_ner if head == "ner_head" else d_intent)))
    return ner_loss if head == "ner_head" else intent_loss


class NerOnly:
    @staticmethod
    def update(pipe, docs, examples, targets, sgd) -> Tuple[float, float]:
        ner_loss = _head_pass(pipe, docs, examples, targets, "ner_head")
        if sgd not in (None, False):
            _step(pipe, sgd, ("encoder", "ner_head"))
        return ner_loss, 0.0

    @staticmethod
    def finish_update(pipe, sgd: Optimizer) -> None:
        _step(pipe, sgd, ("encoder", "ner_head"))


class Alternating:
    @staticmethod
    def update(pipe, docs, examples, targets, sgd) -> Tuple[float, float]:
        enc = pipe.model.get_ref("encoder")
        prev_intent_grads = None
        if sgd in (None, False) and pipe._pending is not None:
            prev_intent_grads = _swap_grads(enc, None)
        ner_loss = _head_pass(pipe, docs, examples, targets, "ner_head")
        if sgd not in (None, False):
            _step(pipe, sgd, ("encoder", "ner_head"))
        else:
            # Keep the encoder's NER-pass gradient aside for finish_update();
            # restore intent gradients accumulated by earlier sub-batches
            # (accumulate_gradient > 1).
            ner_grads = _swap_grads(enc, prev_intent_grads)
            pipe._pending = _add_grads(pipe._pending, ner_grads)
        intent_loss = _head_pass(pipe, docs, examples, targets, "intent_head")
        if sgd not in (None, False):
            _intent_step(pipe, sgd)
        return ner_loss, intent_loss

    @staticmethod
    def finish_update(pipe, sgd: Optimizer) -> None:
        if pipe._pending is None:  # nothing computed since the last step
            return
        enc = pipe.model.get_ref("encoder")
        intent_grads = _swap_grads(enc, pipe._pending)
        pipe._pending = None
        _step(pipe, sgd, ("encoder", "ner_head"))
        _swap_grads(enc, intent_grads)
        _intent_step(pipe, sgd)


def project_conflicting(g_intent: numpy.ndarray, g_ner: numpy.ndarray) -> numpy.ndarray:
    """PCGrad's projection (Yu et al., 2020), row by row: where a word's
    intent gradient points against its NER gradient (negative dot product),
    its component along the NER gradient is removed, so the intent task can
    no longer undo the NER step at that word.  The NER gradient is kept whole
    (the product's promise is that intents never cost entities)."""
    dot = (g_intent * g_ner).sum(axis=1, keepdims=True)
    norm = (g_ner * g_ner).sum(axis=1, keepdims=True)
    coef = numpy.where(dot < 0, dot / numpy.maximum(norm, 1e-12), 0.0).astype(g_intent.dtype)
    return g_intent - coef * g_ner


def _pcgrad_pass(pipe, docs, examples, targets, w_ner: float, w: float) -> Tuple[float, float]:
    """The joint pass with the two heads' gradients at the word vectors
    combined by `project_conflicting` before the encoder's backward pass."""
    ops = pipe.model.ops
    X, lengths, bp_X = encode(pipe.model, docs, True)
    ner, bp_ner = pipe.model.get_ref("ner_head")(X, True)
    intent, bp_intent = pipe.model.get_ref("intent_head")(X, True)
    (ner_loss, intent_loss), (d_ner, d_intent) = pipe.get_loss(
        examples, (ops.to_numpy(ner), ops.to_numpy(intent)), targets=targets
    )
    g_ner = bp_ner(ops.asarray2f(d_ner * w_ner))
    g_intent = bp_intent(ops.asarray2f(d_intent * w))
    projected = project_conflicting(ops.to_numpy(g_intent), ops.to_numpy(g_ner))
    bp_X(g_ner + ops.asarray2f(projected))
    return ner_loss * w_ner, intent_loss * w


class Joint:
    @staticmethod
    def update(pipe, docs, examples, targets, sgd) -> Tuple[float, float]:
        ops = pipe.model.ops
        if pipe.cfg.get("loss_balance") == "pcgrad":
            losses = _pcgrad_pass(pipe, docs, examples, targets, 1.0, pipe.cfg["intent_weight"] * warmup(pipe))
            if sgd not in (None, False):
                Joint.finish_update(pipe, sgd)
            return losses
        (ner_out, intent_out), backprop = pipe.model(docs, is_train=True)
        lengths = [len(x) for x in ner_out]
        scores = (ops.to_numpy(ops.flatten(ner_out)), ops.to_numpy(ops.flatten(intent_out)))
        (ner_loss, intent_loss), (d_ner, d_intent) = pipe.get_loss(examples, scores, targets=targets)
        w_ner, w = 1.0, pipe.cfg["intent_weight"] * warmup(pipe)
        if pipe.cfg.get("loss_balance") == "uncertainty":
            # Kendall et al.: L = exp(-s_n) L_n + s_n + exp(-s_i) L_i + s_i;
            # the scales multiply the fixed weights.
            scale = numpy.exp(-pipe._log_vars)
            d_s = numpy.array([1.0 - scale[0] * ner_loss, 1.0 - scale[1] * intent_loss * w], "f")
            pipe._d_log_vars = d_s if pipe._d_log_vars is None else pipe._d_log_vars + d_s
            w_ner, w = float(scale[0]), w * float(scale[1])
        backprop(
            (
                ops.unflatten(ops.asarray2f(d_ner * w_ner), lengths),
                ops.unflatten(ops.asarray2f(d_intent * w), lengths),
            )
        )
        if sgd not in (None, False):
            Joint.finish_update(pipe, sgd)
        return ner_loss * w_ner, intent_loss * w

    @staticmethod
    def finish_update(pipe, sgd: Optimizer) -> None:
        _step(pipe, sgd, ("encoder", "ner_head", "intent_head"))
        if pipe._d_log_vars is not None:
            # The log-variances learn faster than the network (x100): at
            # the encoder's rate they would barely move within a run.
            log_vars, _ = sgd((pipe.model.id, "loss_log_vars"), pipe._log_vars, pipe._d_log_vars, lr_scale=100.0)
            pipe._log_vars = numpy.asarray(log_vars, "f")
            pipe._d_log_vars = None


STRATEGIES = {"alternating": Alternating, "joint": Joint, "ner_only": NerOnly}


# ------------------------------------------------------- gradient swapping
def _swap_grads(model: Model, new: Optional[Dict]) -> Dict:
    """Take the model's current gradients out, putting `new` (or nothing) in.

    Covers both PyTorch parameters inside shims and Thinc parameters.
    """
    old: Dict = {}
    for shim, module in torch_modules(model):
        for pname, param in module.named_parameters():
            key = ("shim", shim.id, pname)
            old[key] = param.grad
            param.grad = None if new is None else new.get(key)
    for node in model.walk():
        for pname in node.param_names:
            key = ("node", node.id, pname)
            if node.has_grad(pname):
                old[key] = node.get_grad(pname).copy()
                node.set_grad(pname, node.ops.alloc(node.get_grad(pname).shape))
            if new is not None and new.get(key) is not None:
                node.set_grad(pname, new[key])
    return old


def _add_grads(a: Optional[Dict], b: Dict) -> Dict:
    if a is None:
        return b
    out = dict(a)
    for key, g in b.items():
        if g is None:
            continue
        out[key] = g if out.get(key) is None else out[key] + g
    return out
