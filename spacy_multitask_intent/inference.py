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
from typing import List, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Doc
from thinc.api import Model, torch2xp
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


def pool_words(hidden, wp_index, word_index, word_count, first: bool):
    """Word vectors from the encoder's sub-word states (batch, length, width):
    the mean of each word's sub-words (rows ``wp_index`` of the flattened
    states, word ``word_index``, ``word_count`` per word), or with ``first``
    the first of them; zeros for a word without sub-words.  The torch fast
    path and the exported ONNX graph both pool with it (so it keeps to ops
    that export: ``scatter_add``, ``index_select``)."""
    import torch

    flat = hidden.reshape(-1, hidden.shape[-1])
    pieces = flat.index_select(0, wp_index)
    zeros = torch.zeros((word_count.shape[0], flat.shape[1]), dtype=flat.dtype, device=flat.device)
    if first:
        # The pairs are grouped by word: a word's first pair is at the running
        # count of the words before it.  Row 0 of `padded` is zeros, the vector
        # of a word without sub-words.
        counts = word_count.to(torch.int64)
        starts = torch.cumsum(counts, 0) - counts
        padded = torch.cat([zeros[:1], pieces], 0)
        return padded.index_select(0, torch.where(counts > 0, starts + 1, torch.zeros_like(starts)))
    index = word_index.unsqueeze(1).expand(-1, flat.shape[1])
    return zeros.scatter_add(0, index, pieces) / word_count.clamp(min=1.0).unsqueeze(1)


def fast_logits(model: Model, docs: List[Doc], heads: Sequence[Model]) -> Optional[Tuple[list, List[int]]]:
    """(logits of each head for the docs' words stacked, word counts) on the
    torch path, with the host side of ``wordpieces.batch_inputs`` and the
    encoder, pooling and heads in one ``inference_mode`` block, the same
    computation as ``encode`` + ``predict_heads``.  ``None`` when the batch
    is outside that path (a long doc, a slow tokenizer, mixed precision):
    the caller then takes spacy-transformers' path."""
    import torch
    from spacy_transformers.span_getters import get_strided_spans

    from .layers import transformer_of
    from .model import pooling_of
    from .wordpieces import batch_inputs

    encoder = model.get_ref("encoder")
    trf = transformer_of(encoder)
    shim = encoder_shim(encoder)
    get_spans = trf.attrs.get("get_spans")
    if getattr(get_spans, "func", None) is not get_strided_spans or getattr(shim, "_mixed_precision", False):
        return None
    window = get_spans.keywords["window"]
    hf = shim_module(shim)
    token_types = "token_type_ids" in getattr(trf.tokenizer, "model_input_names", ())
    feeds = batch_inputs(trf.tokenizer, docs, int(window), token_types)
    if feeds is None:
        return None
    first = pooling_of(encoder) == "first"
    modules = [head_module(h) for h in heads]
    device = _device(hf)
    with torch.inference_mode():
        if hf.training:
            hf.eval()
        kwargs = {k: torch.from_numpy(feeds[k]).to(device) for k in ("input_ids", "attention_mask", "token_type_ids") if k in feeds}
        hidden = hf(**kwargs).last_hidden_state
        index = {k: torch.from_numpy(feeds[k]).to(device) for k in ("wp_index", "word_index", "word_count")}
        vectors = pool_words(hidden, index["wp_index"], index["word_index"], index["word_count"], first)
        outputs = [torch2xp(m.project(vectors)) for m in modules]
    return outputs, [len(d) for d in docs]
