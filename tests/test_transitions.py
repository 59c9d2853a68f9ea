"""transition_weight: the decoder adds tag-bigram log-probabilities estimated
from the training data; 0 (the default) decodes as before."""
import numpy
import pytest
import spacy

from spacy_multitask_intent.decoding import tag_bigram_scores, transition_mask, viterbi, viterbi_bio

from conftest import fresh_nlp, toy_examples, train

TAGS = ["O", "B-A", "I-A", "B-B", "I-B"]


def test_bigram_scores_are_smoothed_log_probabilities():
    # O O B-A I-A ; B-B O ; an unknown gold tag (-1) breaks the chain.
    trans, first = tag_bigram_scores([[0, 0, 1, 2], [3, 0], [0, -1, 2]], TAGS, alpha=1.0)
    allowed, start = transition_mask(TAGS)
    p = numpy.exp(trans)
    numpy.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    assert (trans[~allowed] < -1e8).all() and (first[~start] < -1e8).all()
    # From O: counts O->O 1, O->B-A 1 (+1 each over the 3 allowed next tags O, B-A, B-B).
    numpy.testing.assert_allclose(p[0, [0, 1, 3]], [2 / 5, 2 / 5, 1 / 5], rtol=1e-5)
    # First tags: O twice, B-B once (+1 over O, B-A, B-B).
    numpy.testing.assert_allclose(numpy.exp(first[[0, 1, 3]]), [3 / 6, 1 / 6, 2 / 6], rtol=1e-5)


def test_scores_change_the_path_and_zero_scores_do_not():
    # Word 2 is slightly more B-B than I-A; after B-A, I-A is far likelier in the data.
    lp = numpy.log(numpy.array([[0.05, 0.9, 0.02, 0.02, 0.01], [0.1, 0.01, 0.44, 0.45, 0.0]], "f") + 1e-9)
    allowed, start = transition_mask(TAGS)
    plain = viterbi([lp], allowed, start)[0].tolist()
    assert plain == viterbi_bio([lp], TAGS)[0].tolist() == [1, 3]
    zero = viterbi([lp], allowed, start, numpy.zeros((5, 5), "f"), numpy.zeros(5, "f"))[0].tolist()
    assert zero == plain
    trans, first = tag_bigram_scores([[1, 2]] * 20 + [[3, 0]], TAGS)
    assert viterbi([lp], allowed, start, trans, first)[0].tolist() == [1, 2]


def test_component_weight_round_trip(tiny_bert, tmp_path):
    nlp = fresh_nlp(tiny_bert, transition_weight=0.5)
    proc = nlp.get_pipe("intent_ner")
    stored = proc.cfg["transition_scores"]
    assert stored["tags"] == list(proc.tags) and len(stored["trans"]) == len(proc.tags)
    train(nlp, toy_examples(nlp), steps=15)
    texts = ["pickup my order at orange store", "buy orange at target"]
    before = [[(e.start, e.end, e.label_) for e in d.ents] for d in nlp.pipe(texts)]
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    lproc = loaded.get_pipe("intent_ner")
    assert lproc.cfg["transition_weight"] == 0.5 and lproc.cfg["transition_scores"]["tags"] == stored["tags"]
    for key in ("trans", "first"):  # the cfg file keeps 10 decimals
        numpy.testing.assert_allclose(lproc.cfg["transition_scores"][key], stored[key], rtol=1e-6)
    assert [[(e.start, e.end, e.label_) for e in d.ents] for d in loaded.pipe(texts)] == before


def test_weight_without_scores_is_a_clear_error(tiny_bert):
    nlp = fresh_nlp(tiny_bert)
    proc = nlp.get_pipe("intent_ner")
    assert proc.cfg["transition_scores"] is None
    list(nlp.pipe(["orange store"]))  # weight 0: no scores needed
    proc.cfg["transition_weight"] = 1.0
    with pytest.raises(ValueError, match="set_transition_scores"):
        list(nlp.pipe(["orange store"]))
    proc.set_transition_scores(toy_examples(nlp))
    assert list(nlp.pipe(["orange store"]))
