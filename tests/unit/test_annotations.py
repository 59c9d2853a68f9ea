"""The component's decoding of hand-made score arrays: set_annotations,
aggregation and gating. No encoder is loaded and nothing is trained."""
import numpy
import pytest
import spacy
from spacy.tokens import Doc

import spacy_multitask_intent  # noqa: F401  (registers the factory)

ENTS = ["PRODUCT", "STORE"]
INTENTS = ["add_to_cart", "product_search", "store_lookup"]


def make_pipe(**cfg):
    """An intent_ner with labels but no weights: set_annotations needs none.
    Not initialized, so it has no intent-set table: the veto is off unless
    `cfg` says otherwise (tests/test_intent_set_veto.py)."""
    cfg = {"intent_set_veto": False, **cfg}
    nlp = spacy.blank("en")
    config = {
        "model": {
            "@architectures": "spacy_multitask_intent.IntentNER.v1",
            "encoder": {"@architectures": "spacy_multitask_intent.Encoder.v1", "name": "unused-in-unit-tests"},
        },
        **cfg,
    }
    pipe = nlp.add_pipe("intent_ner", config=config)
    for label in ENTS:
        pipe.add_label(label)
    for label in INTENTS:
        pipe.add_intent(label)
    return nlp, pipe


def tag_probs(pipe, tags, confidence=0.9):
    """One row per word: `confidence` on the named tag, the rest spread evenly."""
    n = len(pipe.tags)
    rows = numpy.full((len(tags), n), (1 - confidence) / (n - 1), "f")
    for i, tag in enumerate(tags):
        rows[i, pipe.tags.index(tag)] = confidence
    return rows


def intent_rows(values):
    return numpy.asarray(values, "f")


def annotate(pipe, doc, ner, intents):
    pipe.set_annotations([doc], ([ner], [intents]))
    return doc


def test_tag_inventory():
    _, pipe = make_pipe()
    assert pipe.tags == ["O", "B-PRODUCT", "I-PRODUCT", "B-STORE", "I-STORE"]


def test_entities_cats_and_tag_probs_from_score_arrays():
    nlp, pipe = make_pipe()
    doc = Doc(nlp.vocab, words="hours of the apple valley store".split())
    ner = tag_probs(pipe, ["O", "O", "O", "B-STORE", "I-STORE", "O"])
    intents = intent_rows([[0.1, 0.2, 0.9]] * 3 + [[0.0, 0.1, 1.0]] * 3)
    annotate(pipe, doc, ner, intents)
    assert [(e.start, e.end, e.label_) for e in doc.ents] == [(3, 5, "STORE")]
    assert doc.cats == pytest.approx({"add_to_cart": 0.05, "product_search": 0.15, "store_lookup": 0.95})
    assert doc._.tag_probs == pytest.approx([0.9] * 6)
    assert doc._.intent_scores is intents
    assert doc[3]._.intent["store_lookup"] == pytest.approx(1.0)
    assert pipe.decide_intents(doc) == ["store_lookup"]


def test_max_aggregation():
    nlp, pipe = make_pipe(cats_aggregation="max")
    doc = Doc(nlp.vocab, words="add apple juice".split())
    intents = intent_rows([[0.2, 0.7, 0.1], [0.9, 0.1, 0.0], [0.4, 0.3, 0.0]])
    annotate(pipe, doc, tag_probs(pipe, ["O", "B-PRODUCT", "I-PRODUCT"]), intents)
    assert doc.cats == pytest.approx({"add_to_cart": 0.9, "product_search": 0.7, "store_lookup": 0.1})


def test_ill_formed_argmax_is_decoded_to_a_valid_path():
    """An I- tag whose word has no B- before it is not left dangling: the
    constrained decoder gives a well-formed span or none."""
    nlp, pipe = make_pipe()
    doc = Doc(nlp.vocab, words="find lemon cake".split())
    ner = tag_probs(pipe, ["O", "I-PRODUCT", "I-PRODUCT"], confidence=0.5)
    ner[1, pipe.tags.index("B-PRODUCT")] = 0.4  # B- is the runner-up
    annotate(pipe, doc, ner, intent_rows([[0.1, 0.9, 0.1]] * 3))
    assert [(e.start, e.end, e.label_) for e in doc.ents] == [(1, 3, "PRODUCT")]
    path = [pipe.tags[int(numpy.argmax(r))] for r in ner]
    assert path[1] == "I-PRODUCT"  # the argmax alone would be ill-formed


def test_whitespace_token_is_never_an_entity():
    nlp, pipe = make_pipe()
    doc = Doc(nlp.vocab, words=["find", " ", "cake"], spaces=[False, False, False])
    ner = tag_probs(pipe, ["O", "B-PRODUCT", "B-PRODUCT"])
    annotate(pipe, doc, ner, intent_rows([[0.1, 0.9, 0.1]] * 3))
    assert [(e.start, e.end, e.label_) for e in doc.ents] == [(2, 3, "PRODUCT")]


def test_no_intent_scores_leaves_cats_empty():
    """ner_only predictions carry no intent arrays."""
    nlp, pipe = make_pipe(update_mode="ner_only")
    doc = Doc(nlp.vocab, words="find lemon cake".split())
    annotate(pipe, doc, tag_probs(pipe, ["O", "B-PRODUCT", "I-PRODUCT"]), None)
    assert doc.cats == {}
    assert doc._.intent_scores is None
    assert [(e.start, e.end, e.label_) for e in doc.ents] == [(1, 3, "PRODUCT")]


def test_empty_doc():
    nlp, pipe = make_pipe()
    doc = Doc(nlp.vocab, words=[])
    pipe.set_annotations([doc], ([numpy.zeros((0, len(pipe.tags)), "f")], [None]))
    assert doc.ents == () and doc.cats == {}


@pytest.mark.parametrize(
    "store_score, threshold, kept",
    [(0.9, 0.5, True), (0.2, 0.5, False), (0.2, 0.1, True), (0.6, 0.7, False)],
)
def test_gating_keeps_an_entity_only_when_a_licensing_intent_scores_high_enough(store_score, threshold, kept):
    nlp, pipe = make_pipe(gating={"STORE": ["store_lookup"]}, gate_thresholds={"store_lookup": threshold})
    doc = Doc(nlp.vocab, words="pickup my order at orange store".split())
    ner = tag_probs(pipe, ["O", "O", "O", "O", "B-STORE", "O"])
    intents = intent_rows([[0.5, 0.1, 0.9]] * 4 + [[0.5, 0.1, store_score]] + [[0.5, 0.1, 0.9]])
    annotate(pipe, doc, ner, intents)
    assert [(e.start, e.end, e.label_) for e in doc.ents] == ([(4, 5, "STORE")] if kept else [])


def test_gating_reads_the_mean_over_the_span_words_and_leaves_other_labels_alone():
    nlp, pipe = make_pipe(gating={"STORE": ["store_lookup"]})
    doc = Doc(nlp.vocab, words="add apple valley store pie".split())
    ner = tag_probs(pipe, ["O", "B-STORE", "I-STORE", "O", "B-PRODUCT"])
    # store_lookup on the two STORE words: 0.7 and 0.2, mean 0.45 < 0.5
    intents = intent_rows([[0.9, 0, 0.9], [0.9, 0, 0.7], [0.9, 0, 0.2], [0.9, 0, 0.9], [0.9, 0, 0.0]])
    annotate(pipe, doc, ner, intents)
    assert [(e.start, e.end, e.label_) for e in doc.ents] == [(4, 5, "PRODUCT")]
    intents[2, 2] = 0.4  # mean 0.55
    doc2 = Doc(nlp.vocab, words="add apple valley store pie".split())
    annotate(pipe, doc2, ner, intents)
    assert [(e.start, e.end, e.label_) for e in doc2.ents] == [(1, 3, "STORE"), (4, 5, "PRODUCT")]


def test_intent_thresholds_decide_intents():
    nlp, pipe = make_pipe(intent_thresholds={"store_lookup": 0.8})
    pipe.cfg["multi_label"] = True
    doc = Doc(nlp.vocab, words="store hours".split())
    annotate(pipe, doc, tag_probs(pipe, ["O", "O"]), intent_rows([[0.6, 0.1, 0.75]] * 2))
    assert pipe.decide_intents(doc) == ["add_to_cart"]
    pipe.cfg["intent_thresholds"] = {"store_lookup": 0.7}
    assert pipe.decide_intents(doc) == ["add_to_cart", "store_lookup"]


@pytest.mark.parametrize(
    "cfg,expected",
    [
        # softmax head: two intents share the mass, 0.45 and 0.42; the default 0.4 keeps both
        ({}, ["add_to_cart", "store_lookup"]),
        # the paper's sigmoid head: the default is 0.5, so only the argmax
        ({"intent_loss": "sigmoid_sum"}, ["store_lookup"]),
        # an explicit default, and a calibrated threshold over it
        ({"intent_threshold": 0.44}, ["store_lookup"]),
        ({"intent_threshold": 0.3, "intent_thresholds": {"add_to_cart": 0.5}}, ["store_lookup"]),
    ],
)
def test_default_intent_threshold_follows_the_head(cfg, expected):
    nlp, pipe = make_pipe(**cfg)
    pipe.cfg["multi_label"] = True
    doc = Doc(nlp.vocab, words="find store and add pie".split())
    annotate(pipe, doc, tag_probs(pipe, ["O"] * 5), intent_rows([[0.42, 0.13, 0.45]] * 5))
    assert pipe.decide_intents(doc) == expected
    # score() decides by the same rule: the gold pair is right only if both are kept
    from spacy.training import Example

    gold = Doc(nlp.vocab, words=doc.text.split())
    gold.cats = {"add_to_cart": 1.0, "product_search": 0.0, "store_lookup": 1.0}
    scores = pipe.score([Example(doc, gold)])
    assert scores["intent_acc"] == (1.0 if len(expected) == 2 else 0.0)


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5])
def test_intent_threshold_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match="intent_threshold must be in"):
        make_pipe(intent_threshold=bad)
