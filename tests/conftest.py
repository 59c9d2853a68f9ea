import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import spacy  # noqa: E402
from spacy.tokens import Doc  # noqa: E402
from spacy.training import Example  # noqa: E402

import spacy_multitask_intent  # noqa: E402,F401

# Opt-in: run the whole suite on a GPU (e.g. SPACY_MULTITASK_INTENT_TEST_GPU=0).
# Unset, as in CI, everything runs on the CPU.
if os.environ.get("SPACY_MULTITASK_INTENT_TEST_GPU", "") != "":
    from thinc.api import require_gpu  # noqa: E402

    require_gpu(int(os.environ["SPACY_MULTITASK_INTENT_TEST_GPU"]))
ON_GPU = os.environ.get("SPACY_MULTITASK_INTENT_TEST_GPU", "") != ""

ROOT_DIR = Path(__file__).resolve().parents[1]

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

# (words, entities as (start, end, label) token offsets, intents)
TOY = [
    ("pickup my order at orange store", [(4, 5, "STORE")], ["store_lookup"]),
    ("buy orange at target", [(1, 2, "PRODUCT")], ["product_search"]),
    ("hours of the apple valley store", [(3, 5, "STORE")], ["store_lookup"]),
    ("add apple juice to my cart", [(1, 3, "PRODUCT")], ["add_to_cart"]),
    ("is the lemon grove store open", [(2, 4, "STORE")], ["store_lookup"]),
    ("find lemon cake", [(1, 3, "PRODUCT")], ["product_search"]),
    ("directions to cherry hill store", [(2, 4, "STORE")], ["store_lookup"]),
    ("add cherry pie to cart", [(1, 3, "PRODUCT")], ["add_to_cart"]),
]
TOY_INTENTS = ["add_to_cart", "product_search", "store_lookup"]


def make_doc(vocab, text, ents, intents, all_intents=TOY_INTENTS):
    words = text.split()
    doc = Doc(vocab, words=words)
    doc.set_ents([doc[s:e] for s, e, _ in []] or [])
    from spacy.tokens import Span

    doc.set_ents([Span(doc, s, e, label=l) for s, e, l in ents])
    doc.cats = {i: float(i in intents) for i in all_intents}
    return doc


def toy_examples(nlp, data=TOY):
    out = []
    for text, ents, intents in data:
        ref = make_doc(nlp.vocab, text, ents, intents)
        pred = Doc(nlp.vocab, words=text.split())
        out.append(Example(pred, ref))
    return out


def make_tiny_bert(path: Path, **config) -> Path:
    """Write a random 2-layer BERT (hidden 32) with a WordPiece vocab over the
    toy words to `path`; `config` overrides BertConfig settings (e.g. dropout)."""
    import torch
    from transformers import BertConfig, BertModel

    words = sorted({w for text, _, _ in TOY for w in text.split()})
    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789.,'?!-")
    vocab = SPECIAL + words + chars + ["##" + c for c in chars]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf8")
    (path / "tokenizer_config.json").write_text(
        '{"do_lower_case": true, "model_max_length": 512, "tokenizer_class": "BertTokenizer"}'
    )
    torch.manual_seed(0)
    settings = dict(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=512,
    )
    BertModel(BertConfig(**{**settings, **config})).save_pretrained(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A random 2-layer BERT (hidden 32) with a WordPiece vocab, on disk."""
    return make_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


def ents(doc):
    """(text, label) of each entity."""
    return [(e.text, e.label_) for e in doc.ents]


def intents(doc):
    """The doc's gold intents (cats of 1.0), sorted."""
    return sorted(k for k, v in doc.cats.items() if v == 1.0)


def assert_error(excinfo, path, line: int):
    """A DataError that names `path:line:`."""
    message = str(excinfo.value)
    assert f"{path}:{line}:" in message, message
    assert excinfo.value.line == line


PAPER = {
    "update_mode": "alternating",
    "intent_lr_factor": 0.1,
    "intent_weight": 1.0,
    "intent_loss": "sigmoid_sum",
    "head_lr_factor": 1.0,
    "intent_set_veto": False,
}


def intent_ner_config(encoder_path, model=None, encoder=None, **cfg):
    """The intent_ner component config on `encoder_path`: dropout 0 unless
    `model` says otherwise, `model` / `encoder` settings merged into the model
    config, `cfg` the component's own settings."""
    return {
        "model": {
            "@architectures": "spacy_multitask_intent.IntentNER.v1",
            "dropout": 0.0,
            **(model or {}),
            "encoder": {
                "@architectures": "spacy_multitask_intent.Encoder.v1",
                "name": str(encoder_path),
                **(encoder or {}),
            },
        },
        **cfg,
    }


def build_nlp(encoder_path, **cfg):
    """An intent_ner pipeline on `encoder_path`. Unless `cfg` says otherwise it
    trains as the paper does (alternating updates, sigmoid intent head), the
    setting most of the update-path tests were written for; the shipped
    default is tested on its own (tests/test_losses.py)."""
    cfg = {**PAPER, **cfg}
    nlp = spacy.blank("en")
    encoder = {"window": cfg.pop("window", 128), "stride": cfg.pop("stride", 96)}
    nlp.add_pipe("intent_ner", config=intent_ner_config(encoder_path, encoder=encoder, **cfg))
    return nlp


def fresh_nlp(encoder_path, seed=0, **cfg):
    """A pipeline built with `cfg` and initialized on the toy set (untrained)."""
    from thinc.api import fix_random_seed

    fix_random_seed(seed)
    nlp = build_nlp(encoder_path, **cfg)
    nlp.initialize(lambda: toy_examples(nlp))
    return nlp


@pytest.fixture
def toy_nlp(tiny_bert):
    """An initialized (untrained) pipeline on the tiny BERT."""
    return fresh_nlp(tiny_bert)


def train(nlp, examples, steps=30, lr=1e-3, seed=0):
    from thinc.api import Adam, fix_random_seed

    fix_random_seed(seed)
    random.seed(seed)
    opt = Adam(lr)
    history = []
    for _ in range(steps):
        losses = {}
        nlp.update(examples, sgd=opt, losses=losses)
        history.append(losses)
    return history


def pytest_collection_modifyitems(config, items):
    """Mark the tier that trains: every test that uses the tiny BERT (directly
    or through toy_nlp, trained, ...) gets the `trains` marker, so
    `pytest -m "not trains"` runs only what needs no encoder. tests/unit/ holds
    the fast tier (`make test-fast`)."""
    for item in items:
        if "tiny_bert" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.trains)
