"""PyTorch heads wrapped as Thinc layers.

Each head is a token-level ``Dropout -> Linear`` over the encoder's word
vectors, returning logits.  The output size depends on the labels, which are
only known at ``initialize``; the head therefore starts as a 1x1 placeholder
and is rebuilt to its real shape by the layer's init, or, when a trained
pipeline is loaded, from the shape of the saved weights.
"""
from io import BytesIO
from typing import Optional

import torch
from thinc.api import Model, PyTorchWrapper_v3
from thinc.types import Floats2d


class TokenHead(torch.nn.Module):
    def __init__(self, n_in: int, n_out: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = torch.nn.Dropout(dropout)
        self.linear = torch.nn.Linear(n_in, n_out)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(X))


def _deserialize_head(model: TokenHead, state_bytes: bytes, device) -> TokenHead:
    """Rebuild the head to the saved shape, then load it.

    ``weights_only=True``: a pickle in a model file cannot run code here.
    """
    state = torch.load(BytesIO(state_bytes), map_location=device, weights_only=True)
    if "linear.weight" not in state:
        raise ValueError(
            "Saved head weights lack 'linear.weight': the model file is not an "
            "intent_ner head or is damaged."
        )
    n_out, n_in = state["linear.weight"].shape
    head = TokenHead(int(n_in), int(n_out), model.dropout.p)
    head.load_state_dict(state)
    head.to(device)
    return head


def TorchTokenHead(
    nO: Optional[int] = None, nI: Optional[int] = None, dropout: float = 0.1
) -> Model[Floats2d, Floats2d]:
    """A PyTorch linear head over token vectors (rows) giving logits."""
    wrapper = PyTorchWrapper_v3(
        TokenHead(1, 1, dropout), deserialize_model=_deserialize_head
    )
    return Model(
        "torch_token_head",
        _forward,
        init=_init,
        layers=[wrapper],
        dims={"nO": nO, "nI": nI},
        attrs={"dropout": dropout},
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
    shim = model.layers[0].shims[0]
    device = next(shim._model.parameters()).device
    shim._model = TokenHead(nI, nO, model.attrs["dropout"]).to(device)


def head_module(model: Model) -> TokenHead:
    return model.layers[0].shims[0]._model
