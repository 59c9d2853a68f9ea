"""PyTorch heads wrapped as Thinc layers, and the one way in to the torch modules.

Thinc keeps a wrapped PyTorch module (a head's, or the HF transformer inside
the encoder) on a shim as ``shim._model``.  Only this module reads or
replaces it; everything else (prediction, quantization, gradient swapping,
dropout) goes through ``shim_module`` / ``set_shim_module`` /
``torch_modules`` / ``head_module`` / ``encoder_module`` / ``set_dropout``.

Each head is a token-level ``Dropout -> Linear`` over the encoder's word
vectors, returning logits; with ``hidden_width > 0`` it is a small MLP,
``Dropout -> Linear(n_in, hidden) -> GELU -> Dropout -> Linear``.  The output size depends on the labels, which are
only known at ``initialize``; the head therefore starts as a 1x1 placeholder
and is rebuilt to its real shape by the layer's init, or, when a trained
pipeline is loaded, from the shape of the saved weights.
"""
from io import BytesIO
from typing import Iterator, Optional, Tuple

import torch
from thinc.api import Model, PyTorchWrapper_v3
from thinc.types import Floats2d


class TokenHead(torch.nn.Module):
    """``Dropout -> Linear``, or with ``hidden > 0`` ``Dropout -> Linear(n_in,
    hidden) -> GELU -> Dropout -> Linear(hidden, n_out)``.  Without the hidden
    layer the state dict holds only ``linear.weight``/``linear.bias``, as it
    always has, so saved heads load unchanged."""

    def __init__(self, n_in: int, n_out: int, dropout: float = 0.1, hidden: int = 0):
        super().__init__()
        if hidden < 0:
            raise ValueError(f"intent_ner: hidden_width must be >= 0, got {hidden}")
        self.dropout = torch.nn.Dropout(dropout)
        if hidden:
            self.hidden = torch.nn.Linear(n_in, hidden)
            self.hidden_dropout = torch.nn.Dropout(dropout)
            n_in = hidden
        else:
            self.hidden = None
        self.linear = torch.nn.Linear(n_in, n_out)

    @property
    def hidden_width(self) -> int:
        return 0 if self.hidden is None else int(self.hidden.out_features)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        X = self.dropout(X)
        if self.hidden is not None:
            X = self.hidden_dropout(torch.nn.functional.gelu(self.hidden(X)))
        return self.linear(X)

    def project(self, X: torch.Tensor) -> torch.Tensor:
        """The logits without dropout (the head at inference), for paths that
        run the head outside its Thinc wrapper (inference.py, onnx.py)."""
        if self.hidden is not None:
            X = torch.nn.functional.gelu(self.hidden(X))
        return self.linear(X)


def _deserialize_head(model: TokenHead, state_bytes: bytes, device) -> TokenHead:
    """Rebuild the head to the saved shape (with its hidden layer, if the
    state has one), then load it.

    ``weights_only=True``: a pickle in a model file cannot run code here.
    """
    state = torch.load(BytesIO(state_bytes), map_location=device, weights_only=True)
    if "linear.weight" not in state:
        raise ValueError(
            "Saved head weights lack 'linear.weight': the model file is not an "
            "intent_ner head or is damaged."
        )
    n_out = int(state["linear.weight"].shape[0])
    if "hidden.weight" in state:
        hidden, n_in = (int(n) for n in state["hidden.weight"].shape)
    else:
        hidden, n_in = 0, int(state["linear.weight"].shape[1])
    head = TokenHead(n_in, n_out, model.dropout.p, hidden)
    head.load_state_dict(state)
    head.to(device)
    return head


def TorchTokenHead(
    nO: Optional[int] = None, nI: Optional[int] = None, dropout: float = 0.1, hidden_width: int = 0
) -> Model[Floats2d, Floats2d]:
    """A PyTorch head over token vectors (rows) giving logits: linear, or an
    MLP with one GELU hidden layer of ``hidden_width`` units."""
    if hidden_width < 0:
        raise ValueError(f"intent_ner: hidden_width must be >= 0, got {hidden_width}")
    wrapper = PyTorchWrapper_v3(
        TokenHead(1, 1, dropout), deserialize_model=_deserialize_head
    )
    return Model(
        "torch_token_head",
        _forward,
        init=_init,
        layers=[wrapper],
        dims={"nO": nO, "nI": nI},
        attrs={"dropout": dropout, "hidden_width": int(hidden_width)},
    )


def _forward(model: Model, X: Floats2d, is_train: bool):
    return model.layers[0](X, is_train)


def _init(model: Model, X: Optional[Floats2d] = None, Y=None) -> None:
    if X is not None and model.get_dim("nI") is None:
        model.set_dim("nI", X.shape[1])
    nI, nO = model.get_dim("nI"), model.get_dim("nO")
    if nI is None or nO is None:
        raise ValueError(
            f"Cannot initialize {model.name}: nI={nI}, nO={nO}. The component "
            "sets nO from its labels; nI comes from the encoder's width."
        )
    shim = head_shim(model)
    device = next(shim_module(shim).parameters()).device
    head = TokenHead(nI, nO, model.attrs["dropout"], model.attrs.get("hidden_width", 0))
    set_shim_module(shim, head.to(device))


# ------------------------------------------------- access to torch modules
def shim_module(shim) -> torch.nn.Module:
    """The PyTorch module a Thinc shim wraps."""
    return shim._model


def set_shim_module(shim, module: torch.nn.Module) -> None:
    """Replace the module a shim wraps (e.g. by its int8-quantized copy)."""
    shim._model = module
    hf = getattr(shim, "_hfmodel", None)
    if hf is not None and hasattr(hf, "transformer"):
        hf.transformer = module  # spacy-transformers' HFShim keeps the module in both places


def torch_modules(model: Model) -> Iterator[Tuple[object, torch.nn.Module]]:
    """(shim, module) for every PyTorch module under a Thinc model."""
    for node in model.walk():
        for shim in node.shims:
            yield shim, shim_module(shim)


def head_shim(model: Model):
    """The shim of a TorchTokenHead layer."""
    return model.layers[0].shims[0]


def head_module(model: Model) -> TokenHead:
    """The TokenHead of a TorchTokenHead layer."""
    return shim_module(head_shim(model))


def transformer_of(encoder: Model) -> Model:
    """The spacy-transformers TransformerModel inside the encoder."""
    for node in encoder.walk():
        if node.name == "transformer":
            return node
    raise ValueError("intent_ner: the encoder holds no spacy-transformers TransformerModel")


def encoder_shim(encoder: Model):
    """The shim of the HF transformer inside the encoder."""
    return transformer_of(encoder).layers[0].shims[0]


def encoder_module(encoder: Model) -> torch.nn.Module:
    """The HF transformer module inside the encoder."""
    return shim_module(encoder_shim(encoder))


def set_dropout(model: Model, rate: Optional[float]) -> None:
    """Set the dropout rate of every torch module under `model`: each
    ``torch.nn.Dropout``'s ``p`` and the ``dropout_prob`` of HF attention
    modules that pass it to ``scaled_dot_product_attention``.  ``None``
    leaves the rates as they are.  The rate applies in training mode only."""
    if rate is None:
        return
    rate = float(rate)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"intent_ner: dropout rate must be in [0, 1), got {rate}")
    for _, module in torch_modules(model):
        for sub in module.modules():
            if isinstance(sub, torch.nn.Dropout):
                sub.p = rate
            elif isinstance(getattr(sub, "dropout_prob", None), float):
                sub.dropout_prob = rate


# ------------------------------------------------------------- scalar mix
MIX_PARAMS = ("mix_weights", "mix_gamma")  # the mix's own parameters (step at the heads' rate)
MIX_CONFIG_KEY = "scalar_mix_layers"  # kept in the HF config, so a saved encoder rebuilds its mix


class ScalarMixEncoder(torch.nn.Module):
    """An HF encoder whose output is a learned mix of its last ``n`` hidden
    states (Peters et al., 2018): ``gamma x sum_i softmax(w)_i h_i``, the
    weights starting equal and gamma at 1.  It stands where spacy-transformers
    expects the HF model (``last_hidden_state`` is the mix), so gradients
    reach every mixed layer through torch's own autograd; ``n = 1`` is the
    last layer, scaled."""

    def __init__(self, model: torch.nn.Module, n: int):
        super().__init__()
        states = int(model.config.num_hidden_layers) + 1  # the embeddings' output and each layer's
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= states:
            raise ValueError(
                f"intent_ner: scalar_mix must be 0 (off) or 1-{states} (the encoder's {states - 1} "
                f"layers and its embeddings), got {n!r}"
            )
        self.model = model
        self.config = model.config
        setattr(self.config, MIX_CONFIG_KEY, n)
        self.mix_weights = torch.nn.Parameter(torch.zeros(n))
        self.mix_gamma = torch.nn.Parameter(torch.ones(1))  # 1-d: thinc's optimizer takes no scalars

    @property
    def device(self) -> torch.device:
        return self.mix_weights.device

    @property
    def n_mixed(self) -> int:
        return int(self.mix_weights.shape[0])

    def forward(self, **inputs):
        from transformers.modeling_outputs import BaseModelOutput

        out = self.model(**inputs, output_hidden_states=True, return_dict=True)
        states = torch.stack(out.hidden_states[-self.n_mixed :], dim=0)
        weights = torch.softmax(self.mix_weights, dim=0).to(states.dtype)
        mixed = self.mix_gamma * (weights[:, None, None, None] * states).sum(dim=0)
        return BaseModelOutput(last_hidden_state=mixed)


class ScalarMixAutoModel:
    """``model_cls`` for spacy-transformers' shim: loading a saved encoder
    rebuilds the mix its HF config names (none: the plain HF model), and
    refuses an encoder whose mix is not the one the pipeline's config sets
    (loading the weights into another shape would leave it untrained)."""

    def __init__(self, expected: int):
        self.expected = int(expected)

    def from_config(self, config) -> torch.nn.Module:
        from transformers import AutoModel

        n = int(getattr(config, MIX_CONFIG_KEY, 0) or 0)
        if n != self.expected:
            raise ValueError(
                f"intent_ner: the saved encoder's scalar_mix is {n} but the pipeline's config sets "
                f"{self.expected}; load the pipeline with the config it was saved with"
            )
        model = AutoModel.from_config(config)
        return ScalarMixEncoder(model, n) if n else model


def use_scalar_mix(transformer: Model, n: int) -> None:
    """Make a spacy-transformers TransformerModel build and load its HF model
    inside a ``ScalarMixEncoder`` of ``n`` hidden states (``n = 0``: the plain
    HF model, checked on load to have no mix)."""
    from spacy_transformers.data_classes import HFObjects

    transformer.layers[0].shims[0].model_cls = ScalarMixAutoModel(n)
    if not n:
        return
    set_transformer = transformer.attrs["set_transformer"]

    def set_mixed(model: Model, hf: "HFObjects") -> None:
        mixed = ScalarMixEncoder(hf.transformer, n)
        set_transformer(
            model,
            HFObjects(hf.tokenizer, mixed, hf.vocab_file_contents, hf._init_tokenizer_config, hf._init_transformer_config),
        )

    transformer.attrs["set_transformer"] = set_mixed
