"""BIO tag sets, constrained Viterbi decoding, span extraction, gold tag
conversion and the intent/frame scorer."""
import itertools

import numpy
import pytest
import spacy
from spacy.tokens import Doc, Span
from spacy.training import Example

from spacy_multitask_intent.decoding import (
    biluo_to_bio_ids,
    bio_tags,
    tags_to_spans,
    tags_to_spans_batch,
    transition_mask,
    viterbi,
    viterbi_bio,
)
from spacy_multitask_intent.scoring import decide_intents, gold_intents, score_intent_ner

TAGS = bio_tags(["A", "B"])  # O, B-A, I-A, B-B, I-B: K = 5


# ------------------------------------------------------------------ tag sets
def test_bio_tags():
    assert bio_tags([]) == ["O"]
    assert bio_tags(["STORE"]) == ["O", "B-STORE", "I-STORE"]
    assert TAGS == ["O", "B-A", "I-A", "B-B", "I-B"]


def test_transition_mask():
    allowed, start = transition_mask(TAGS)
    assert allowed.shape == (5, 5) and allowed.dtype == bool
    assert start.tolist() == [True, True, False, True, False]
    # I-X may only follow B-X or I-X; everything else is free.
    expected = numpy.ones((5, 5), dtype=bool)
    expected[:, 2] = [False, True, True, False, False]  # -> I-A
    expected[:, 4] = [False, False, False, True, True]  # -> I-B
    numpy.testing.assert_array_equal(allowed, expected)


def test_transition_mask_only_o():
    allowed, start = transition_mask(["O"])
    assert allowed.tolist() == [[True]] and start.tolist() == [True]


# ------------------------------------------------------------------- viterbi
def _well_formed(path, allowed, start) -> bool:
    if len(path) == 0:
        return True
    if not start[path[0]]:
        return False
    return all(allowed[a, b] for a, b in zip(path[:-1], path[1:]))


def _path_score(lp, path) -> float:
    return float(sum(lp[t, k] for t, k in enumerate(path)))


def _no_bad_inside(path, tags) -> bool:
    """No I-X at the start, after O, or after B-Y / I-Y with Y != X."""
    prev = "O"
    for t in path:
        tag = tags[t]
        if tag.startswith("I-"):
            if prev == "O" or prev[2:] != tag[2:]:
                return False
        prev = tag
    return True


def test_viterbi_empty_inputs():
    allowed, start = transition_mask(TAGS)
    assert viterbi([], allowed, start) == []
    out = viterbi([numpy.zeros((0, 5), "f")], allowed, start)
    assert len(out) == 1 and out[0].shape == (0,)
    out = viterbi([numpy.zeros((0, 5), "f")] * 3, allowed, start)
    assert [len(p) for p in out] == [0, 0, 0]


def test_viterbi_overrides_ill_formed_argmax():
    allowed, start = transition_mask(TAGS)
    # Argmax per position is I-A, I-A, I-B: ill-formed everywhere.
    lp = numpy.log(
        numpy.array(
            [
                [0.1, 0.3, 0.6, 0.0, 0.0],
                [0.1, 0.1, 0.8, 0.0, 0.0],
                [0.1, 0.1, 0.1, 0.0, 0.7],
            ]
        )
        + 1e-6
    ).astype("f")
    (path,) = viterbi([lp], allowed, start)
    assert _well_formed(path, allowed, start)
    assert [TAGS[t] for t in path] == ["B-A", "I-A", "O"]


def test_viterbi_property_random(seed=0):
    """Random log-probs over many shapes and batches of mixed lengths
    (including 0): every path is well-formed and has the right length, and
    decoding a doc alone gives the same path as decoding it in a batch."""
    rng = numpy.random.RandomState(seed)
    for labels in (["A"], ["A", "B"], ["A", "B", "C", "D"]):
        tags = bio_tags(labels)
        allowed, start = transition_mask(tags)
        K = len(tags)
        for _ in range(60):
            B = rng.randint(1, 7)
            lengths = rng.randint(0, 12, size=B)
            if rng.rand() < 0.3:
                lengths[rng.randint(B)] = 0
            # Peaked, strongly favouring I- tags, to provoke violations.
            bias = numpy.zeros(K, "f")
            bias[[i for i, t in enumerate(tags) if t.startswith("I-")]] = rng.rand() * 5
            lps = [
                (rng.randn(int(n), K) * rng.choice([0.1, 1.0, 10.0]) + bias).astype("f")
                for n in lengths
            ]
            paths = viterbi(lps, allowed, start)
            assert len(paths) == B
            for lp, path in zip(lps, paths):
                assert len(path) == len(lp)
                assert _well_formed(path, allowed, start)
                assert _no_bad_inside(path, tags)
                (alone,) = viterbi([lp], allowed, start)
                assert alone.tolist() == path.tolist()


def test_viterbi_equals_brute_force():
    rng = numpy.random.RandomState(1)
    allowed, start = transition_mask(TAGS)
    K = len(TAGS)
    for T in (1, 2, 3, 4):
        all_paths = [
            p for p in itertools.product(range(K), repeat=T) if _well_formed(p, allowed, start)
        ]
        for _ in range(25):
            lps = [rng.randn(T, K).astype("f") * 3 for _ in range(3)]
            # Batch them with docs of other lengths to exercise padding.
            batch = lps + [rng.randn(rng.randint(0, 6), K).astype("f")]
            paths = viterbi(batch, allowed, start)
            for lp, path in zip(lps, paths[:3]):
                best = max(all_paths, key=lambda p: _path_score(lp, p))
                assert _path_score(lp, path) == pytest.approx(_path_score(lp, best), abs=1e-4)
                assert tuple(path.tolist()) == best


def test_viterbi_bio_equals_general_viterbi():
    """The O(tags) BIO decoder gives viterbi()'s paths: random log-probs,
    mixed lengths, whitespace-masked words (-1e9 on every entity tag), and
    tag sets up to ATIS's size (79 labels, 159 tags)."""
    rng = numpy.random.RandomState(3)
    for n_labels, rounds in ((1, 80), (2, 80), (4, 80), (79, 10)):
        tags = bio_tags([f"L{i}" for i in range(n_labels)])
        allowed, start = transition_mask(tags)
        K = len(tags)
        for _ in range(rounds):
            lengths = rng.randint(0, 14, size=rng.randint(1, 8))
            bias = numpy.zeros(K, "f")
            bias[[i for i, t in enumerate(tags) if t.startswith("I-")]] = rng.rand() * 5
            lps = [(rng.randn(int(n), K) * rng.choice([0.1, 1.0, 10.0]) + bias).astype("f") for n in lengths]
            for lp in lps:
                if len(lp) and rng.rand() < 0.5:
                    lp[rng.randint(len(lp)), 1:] = -1e9
            fast = viterbi_bio(lps, tags)
            slow = viterbi(lps, allowed, start)
            assert [p.tolist() for p in fast] == [p.tolist() for p in slow]
            assert all(_well_formed(p, allowed, start) for p in fast)
    assert viterbi_bio([], TAGS) == []
    assert [p.tolist() for p in viterbi_bio([numpy.zeros((0, len(TAGS)), "f")] * 2, TAGS)] == [[], []]


def test_viterbi_bio_brute_force_and_fallback():
    rng = numpy.random.RandomState(4)
    allowed, start = transition_mask(TAGS)
    K = len(TAGS)
    for T in (1, 2, 3):
        all_paths = [p for p in itertools.product(range(K), repeat=T) if _well_formed(p, allowed, start)]
        for _ in range(20):
            lp = rng.randn(T, K).astype("f") * 3
            (path,) = viterbi_bio([lp], TAGS)
            assert tuple(path.tolist()) == max(all_paths, key=lambda p: _path_score(lp, p))
    # An I- tag without its B- tag: the general decoder is used.
    odd = ["O", "B-A", "I-A", "I-B"]
    lp = rng.randn(5, 4).astype("f")
    assert viterbi_bio([lp], odd)[0].tolist() == viterbi([lp], *transition_mask(odd))[0].tolist()


# --------------------------------------------------------------- tag -> span
def test_tags_to_spans():
    ix = {t: i for i, t in enumerate(TAGS)}
    path = [ix[t] for t in ["B-A", "I-A", "O", "B-B", "B-B", "I-B", "O", "B-A"]]
    assert tags_to_spans(path, TAGS) == [(0, 2, "A"), (3, 4, "B"), (4, 6, "B"), (7, 8, "A")]
    assert tags_to_spans([], TAGS) == []
    assert tags_to_spans([0, 0, 0], TAGS) == []
    # Ill-formed input: a stray I- starts a span; I-B after B-A splits.
    path = [ix[t] for t in ["O", "I-A", "I-A", "I-B"]]
    assert tags_to_spans(path, TAGS) == [(1, 3, "A"), (3, 4, "B")]


def _spans_reference(path, tags):
    """The plain per-word reading of a BIO path that the vectorised
    tags_to_spans must reproduce exactly."""
    spans, start, label = [], -1, ""
    for i, t in enumerate(path):
        tag = tags[t]
        if tag.startswith("I-") and start >= 0 and tag[2:] == label:
            continue
        if start >= 0:
            spans.append((start, i, label))
            start = -1
        if tag[:2] in ("B-", "I-"):
            start, label = i, tag[2:]
    if start >= 0:
        spans.append((start, len(path), label))
    return spans


def _mask_reference(tags):
    n = len(tags)
    allowed, start = numpy.ones((n, n), bool), numpy.ones((n,), bool)
    for j, tag in enumerate(tags):
        if tag.startswith("I-"):
            start[j] = False
            for i, prev in enumerate(tags):
                allowed[i, j] = prev in ("B-" + tag[2:], "I-" + tag[2:])
    return allowed, start


def test_vectorised_decoding_matches_per_word_reference():
    """tags_to_spans and transition_mask are vectorised (no per-word Python
    loop at inference); on random, also ill-formed, paths over several tag
    inventories they give exactly the per-word reference results."""
    rng = numpy.random.RandomState(3)
    for labels in (["A"], ["A", "B"], ["LOC", "LOC.city", "X-Y", "B"], [f"L{i}" for i in range(70)]):
        tags = bio_tags(labels)
        allowed, start = transition_mask(tags)
        ref_allowed, ref_start = _mask_reference(tags)
        assert (allowed == ref_allowed).all() and (start == ref_start).all()
        assert not allowed.flags.writeable  # cached: callers cannot corrupt it
        paths = []
        for _ in range(300):
            n = rng.randint(0, 15)
            # Mostly a few tags, so that runs and label repeats are common.
            pool = rng.choice(len(tags), size=min(len(tags), 5), replace=False)
            path = rng.choice(pool, size=n).tolist()
            assert tags_to_spans(path, tags) == _spans_reference(path, tags)
            assert tags_to_spans(numpy.asarray(path, "i"), tags) == _spans_reference(path, tags)
            paths.append(path)
        # The batched form (one pass over all paths, empty ones included):
        # no span runs from one path into the next.
        assert tags_to_spans_batch(paths, tags) == [_spans_reference(p, tags) for p in paths]
        assert tags_to_spans_batch([], tags) == []


def test_biluo_to_bio_ids():
    index = {t: i for i, t in enumerate(TAGS)}
    biluo = ["U-A", "B-B", "I-B", "L-B", "O", "-", None, "", "U-C", "B-A", "L-A"]
    ids = biluo_to_bio_ids(biluo, index)
    assert ids.tolist() == [
        index["B-A"],
        index["B-B"],
        index["I-B"],
        index["I-B"],
        index["O"],
        -1,
        -1,
        -1,
        -1,  # label C is not in the tag set
        index["B-A"],
        index["I-A"],
    ]
    assert biluo_to_bio_ids([], index).shape == (0,)


# ------------------------------------------------------------------- scoring
LABELS = ["a", "b", "c"]


@pytest.fixture(scope="module")
def vocab():
    return spacy.blank("en").vocab


def _eg(vocab, pred_cats, gold_cats, pred_ents=((0, 1, "X"),), gold_ents=((0, 1, "X"),)):
    words = ["w0", "w1", "w2", "w3"]
    pred, ref = Doc(vocab, words=words), Doc(vocab, words=words)
    pred.set_ents([Span(pred, s, e, label=l) for s, e, l in pred_ents])
    ref.set_ents([Span(ref, s, e, label=l) for s, e, l in gold_ents])
    pred.cats = dict(pred_cats)
    ref.cats = dict(gold_cats)
    return Example(pred, ref)


def _onehot(*labels, all_labels=LABELS):
    return {l: float(l in labels) for l in all_labels}


def test_decide_intents():
    cats = {"a": 0.8, "b": 0.6, "c": 0.1}
    assert decide_intents(cats, LABELS, False) == {"a"}
    assert decide_intents(cats, LABELS, True) == {"a", "b"}
    assert decide_intents(cats, LABELS, True, {"b": 0.7}) == {"a"}
    assert decide_intents(cats, LABELS, True, {"c": 0.05}) == {"a", "b", "c"}
    # Nothing above threshold: argmax fallback.
    assert decide_intents({"a": 0.2, "b": 0.4, "c": 0.3}, LABELS, True) == {"b"}
    # The default threshold applies to labels without one of their own.
    assert decide_intents({"a": 0.45, "b": 0.42, "c": 0.13}, LABELS, True) == {"a"}
    assert decide_intents({"a": 0.45, "b": 0.42, "c": 0.13}, LABELS, True, default=0.4) == {"a", "b"}
    assert decide_intents({"a": 0.45, "b": 0.42, "c": 0.13}, LABELS, True, {"b": 0.5}, default=0.4) == {"a"}
    # Labels outside `labels` are ignored; no scores -> empty.
    assert decide_intents({"z": 0.99, "a": 0.1}, LABELS, False) == {"a"}
    assert decide_intents({}, LABELS, True) == set()
    assert gold_intents({"a": 1.0, "b": 0.0, "c": 0.5}) == {"a", "c"}


def test_score_single_label(vocab):
    examples = [
        # intent right, ents right -> frame right
        _eg(vocab, {"a": 0.7, "b": 0.2, "c": 0.1}, _onehot("a")),
        # intent wrong
        _eg(vocab, {"a": 0.3, "b": 0.6, "c": 0.1}, _onehot("a")),
        # intent right (argmax, below 0.5), ents wrong label -> frame wrong
        _eg(vocab, {"a": 0.4, "b": 0.3, "c": 0.3}, _onehot("a"), pred_ents=[(0, 1, "Y")]),
        # gold intent never seen in training -> an error
        _eg(vocab, {"a": 0.9, "b": 0.05, "c": 0.05}, {"z": 1.0}),
    ]
    s = score_intent_ner(examples, intent_labels=LABELS, multi_label=False)
    assert s["intent_acc"] == pytest.approx(2 / 4)
    assert s["frame_acc"] == pytest.approx(1 / 4)
    assert s["ents_p"] == pytest.approx(3 / 4)
    assert s["ents_r"] == pytest.approx(3 / 4)
    assert set(s["ents_per_type"]) == {"X", "Y"}
    for key in ("cats_micro_f", "cats_macro_f"):
        assert 0.0 <= s[key] <= 1.0


def test_score_multi_label(vocab):
    examples = [
        _eg(vocab, {"a": 0.8, "b": 0.6, "c": 0.1}, _onehot("a", "b")),  # set match
        _eg(vocab, {"a": 0.8, "b": 0.1, "c": 0.1}, _onehot("a", "b")),  # subset: wrong
        _eg(vocab, {"a": 0.4, "b": 0.3, "c": 0.1}, _onehot("a")),  # fallback {a}: right
        _eg(vocab, {"a": 0.8, "b": 0.6, "c": 0.7}, _onehot("a", "b")),  # superset: wrong
        _eg(vocab, {"a": 0.8, "b": 0.6, "c": 0.1}, _onehot("a", "b"), gold_ents=[]),  # frame wrong
    ]
    s = score_intent_ner(examples, intent_labels=LABELS, multi_label=True)
    assert s["intent_acc"] == pytest.approx(3 / 5)
    assert s["frame_acc"] == pytest.approx(2 / 5)
    # Per-label threshold: b needs 0.7, so example 0 and 4 now lose b.
    s = score_intent_ner(examples, intent_labels=LABELS, multi_label=True, thresholds={"b": 0.7})
    assert s["intent_acc"] == pytest.approx(1 / 5)
    assert s["frame_acc"] == pytest.approx(1 / 5)


def test_score_without_intents_and_empty(vocab):
    eg = _eg(vocab, {"a": 1.0}, _onehot("a"))
    s = score_intent_ner([eg], intent_labels=())
    assert "intent_acc" not in s and "frame_acc" not in s
    assert s["ents_f"] == 1.0
    s = score_intent_ner([], intent_labels=LABELS)
    assert s["intent_acc"] is None and s["frame_acc"] is None


def test_merge_glued_joins_pieces_of_one_word_only():
    from spacy_multitask_intent.decoding import merge_glued

    vocab = spacy.blank("en").vocab
    # "from st. louis": spaCy tokens from|st|.|louis, "." glued to "st".
    glued = Doc(vocab, words=["from", "st", ".", "louis"], spaces=[True, False, True, False])
    spans = [(1, 2, "CITY"), (2, 4, "CITY")]
    assert merge_glued(spans, glued) == [(1, 4, "CITY")]
    # Whitespace between the spans: two entities stay two.
    spaced = Doc(vocab, words=["from", "st", ".", "louis"], spaces=[True, True, True, False])
    assert merge_glued(spans, spaced) == spans
    # A different label is not joined.
    assert merge_glued([(1, 2, "CITY"), (2, 4, "STATE")], glued) == [(1, 2, "CITY"), (2, 4, "STATE")]
