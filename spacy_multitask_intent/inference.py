"""Fast inference for the PyTorch parts of the model.

Thinc's ``PyTorchShim.predict`` switches the wrapped module to ``eval()``
before each call and back to ``train()`` after it.  For a six-layer BERT that
is a walk over ~100 modules twice per call (about 0.5 ms of a short query's
~7 ms), and the switch back is also what made concurrent predictions unsafe.
The replacement keeps the module in eval mode between predictions (every
``begin_update`` sets ``train()`` again before a training forward pass, so
training is unaffected) and runs under ``torch.inference_mode``.

The two heads are run directly on the word vectors in one
``inference_mode`` block instead of through two wrapper calls: at inference
a head is its ``project`` (the head without dropout, which is the identity in
eval mode).

Outputs are identical to thinc's path; ``tests/test_speed.py`` checks it.
"""
from types import MethodType
from typing import Sequence

import numpy
from thinc.api import Model
from thinc.shims import PyTorchShim

from .layers import encoder_module, encoder_shim, head_module, head_shim, set_shim_module, shim_module, torch_modules


def _inference_predict(self: PyTorchShim, inputs):
    import torch

    module = shim_module(self)
    if module.training:
        module.eval()
    with torch.inference_mode():
        with torch.autocast(device_type="cuda", enabled=self._mixed_precision):
            return module(*inputs.args, **inputs.kwargs)


def enable_fast_predict(model: Model) -> None:
    """Give every PyTorch shim under ``model`` the eval-mode, inference-mode
    predict (idempotent)."""
    for shim, _ in torch_modules(model):
        if isinstance(shim, PyTorchShim) and getattr(shim.predict, "__func__", None) is not _inference_predict:
            shim.predict = MethodType(_inference_predict, shim)


def predict_heads(X: numpy.ndarray, heads: Sequence[Model]) -> list:
    """Logits of each token head for word vectors X, in one inference block."""
    import torch
    from thinc.api import torch2xp, xp2torch

    modules = [head_module(h) for h in heads]
    device = _device(modules[0])
    with torch.inference_mode():
        Xt = xp2torch(X, device=device)
        return [torch2xp(m.project(Xt)) for m in modules]


def _device(module):
    for t in module.parameters():
        return t.device
    import torch

    return torch.device("cpu")  # int8-quantized modules hold packed params, not parameters


def quantize_int8(pipe) -> None:
    """Opt-in dynamic int8 quantization (CPU inference only) of every Linear
    layer of an ``intent_ner`` component: the transformer and both heads
    (with ``hidden_width > 0``, both layers of each head).

    In place; training the quantized pipe afterwards is not supported.  The
    accuracy change is measured in BENCHMARKS.md (``bench.py --int8``).
    """
    import warnings

    import torch

    def q(module):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch >= 2.9 deprecates eager-mode quantization
            qd = getattr(getattr(torch, "ao", None), "quantization", torch.quantization).quantize_dynamic
            return qd(module, {torch.nn.Linear}, dtype=torch.qint8)

    encoder = pipe.model.get_ref("encoder")
    if _device(encoder_module(encoder)).type != "cpu":
        raise ValueError("quantize_int8: dynamic int8 quantization runs on CPU only; load the pipeline without a GPU")
    set_shim_module(encoder_shim(encoder), q(encoder_module(encoder)))
    for name in ("ner_head", "intent_head"):
        head = pipe.model.get_ref(name)
        set_shim_module(head_shim(head), q(head_module(head)))
