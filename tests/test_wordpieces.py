"""wordpieces.py: the host side of a prediction as arrays gives exactly
spacy-transformers' tokenizer inputs and sub-word -> word alignment, and
leaves the cases it does not cover to spacy-transformers' path."""
import numpy
import pytest
import spacy
from spacy_transformers.align import get_alignment_via_offset_mapping
from spacy_transformers.layers.transformer_model import huggingface_tokenize

from spacy_multitask_intent.inference import fast_logits
from spacy_multitask_intent.wordpieces import batch_inputs

from conftest import PAPER, intent_ner_config, toy_examples, train

TEXTS = [
    "pickup my order at orange store",
    "Hi  there, don't go st. louis ",  # double space (a whitespace token), a split contraction, trailing space
    "buy orange\tat target\n",
    "naïve café – 10:30pm?!",
    "x",
    "ORANGE St.Louis store#12 (open)",
    "  leading spaces",
]


@pytest.fixture(scope="module")
def tokenizer(tiny_bert):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_bert), use_fast=True)


@pytest.mark.parametrize("state", ["fresh", "unpadded", "padded", "truncating"])
def test_inputs_and_alignment_equal_spacy_transformers(tiny_bert, state):
    """Whatever padding / truncation state the tokenizer's last call left in
    its Rust backend (read straight, or the tokenizer's own call when it
    truncates), the inputs are spacy-transformers' own."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert), use_fast=True)
    if state != "fresh":
        tokenizer(["a b c", "d"], padding=state == "padded", truncation=state == "truncating", max_length=4)
    nlp = spacy.blank("en")
    docs = [nlp.make_doc(t) for t in TEXTS]
    feeds = batch_inputs(tokenizer, docs, window=128)
    assert feeds is not None
    spans = [d[:] for d in docs]
    ref = huggingface_tokenize(tokenizer, [s.text for s in spans])
    numpy.testing.assert_array_equal(feeds["input_ids"], ref["input_ids"])
    numpy.testing.assert_array_equal(feeds["attention_mask"], ref["attention_mask"])
    numpy.testing.assert_array_equal(feeds["token_type_ids"], ref["token_type_ids"])
    align = get_alignment_via_offset_mapping(spans, ref["offset_mapping"])
    numpy.testing.assert_array_equal(feeds["wp_index"], numpy.asarray(align.dataXd).reshape(-1))
    numpy.testing.assert_array_equal(feeds["word_count"], align.lengths)
    numpy.testing.assert_array_equal(feeds["word_index"], numpy.repeat(numpy.arange(len(align.lengths)), align.lengths))
    # Whitespace tokens have no sub-word; every other word has one.
    words = [t for d in docs for t in d]
    assert [t.text for t, n in zip(words, feeds["word_count"]) if n == 0] == [" ", "\t", "\n", "  "]


def test_outside_the_fast_path_is_none(tokenizer, tiny_bert):
    from transformers import AutoTokenizer

    nlp = spacy.blank("en")
    short = nlp.make_doc("pickup my order")
    long = nlp.make_doc("orange " * 20)
    assert batch_inputs(tokenizer, [short, long], window=10) is None  # a doc longer than the window
    assert batch_inputs(tokenizer, [short, nlp.make_doc("")], window=128) is None  # an empty doc
    slow = AutoTokenizer.from_pretrained(str(tiny_bert), use_fast=False)
    assert batch_inputs(slow, [short], window=128) is None
    assert batch_inputs(tokenizer, [short, long], window=128) is not None


@pytest.mark.parametrize("encoder", [{"pooling": "mean"}, {"pooling": "first"}, {"scalar_mix": 2}], ids=["mean", "first", "mix"])
def test_fast_logits_equal_encoder_path(tiny_bert, encoder):
    """The torch fast path (encoder, pooling and heads on the arrays) gives the
    logits of the encoder + heads path, for both poolings and a scalar mix."""
    from spacy_multitask_intent.inference import predict_heads
    from spacy_multitask_intent.model import encode

    nlp = spacy.blank("en")
    nlp.add_pipe("intent_ner", config=intent_ner_config(tiny_bert, encoder=encoder, **PAPER))
    nlp.initialize(lambda: toy_examples(nlp))
    train(nlp, toy_examples(nlp), steps=5)
    proc = nlp.get_pipe("intent_ner")
    heads = [proc.model.get_ref("ner_head"), proc.model.get_ref("intent_head")]
    docs = [nlp.make_doc(t) for t in TEXTS]
    fast, lengths = fast_logits(proc.model, docs, heads)
    assert lengths == [len(d) for d in docs]
    X, ref_lengths, _ = encode(proc.model, docs, False)
    ref = predict_heads(X, heads)
    assert list(ref_lengths) == lengths
    for a, b in zip(fast, ref):
        numpy.testing.assert_allclose(numpy.asarray(a), numpy.asarray(b), rtol=1e-4, atol=1e-5)
    # A doc longer than the encoder's window goes to spacy-transformers' path.
    assert fast_logits(proc.model, [nlp.make_doc("orange " * 200)], heads) is None
