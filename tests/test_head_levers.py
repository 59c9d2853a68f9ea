"""Accuracy levers of intent_ner that change how it trains, not what it is:
`head_lr_factor` (the heads step at a multiple of the encoder's learn rate)
and `label_smoothing` (NER targets)."""
import numpy
import pytest
import spacy
from thinc.api import Adam

from conftest import fresh_nlp, toy_examples
from test_component import SpyOptimizer, keys_by_part


@pytest.mark.parametrize("mode", ["joint", "ner_only", "alternating"])
def test_heads_step_at_head_lr_factor_and_the_encoder_at_the_learn_rate(tiny_bert, mode):
    nlp = fresh_nlp(tiny_bert, update_mode=mode, head_lr_factor=10.0, intent_lr_factor=0.25)
    proc = nlp.get_pipe("intent_ner")
    spy = SpyOptimizer(Adam(1e-3))
    nlp.update(toy_examples(nlp), sgd=False, losses={})
    proc.finish_update(spy)
    parts, trained_enc = keys_by_part(proc)
    scales = spy.scales()
    assert trained_enc <= set(scales)
    ner = [s for k in parts["ner_head"] for s in scales[k]]
    intent = [s for k in parts["intent_head"] for s in scales[k]]
    enc = {s for k in trained_enc for s in scales[k]}
    assert ner and set(ner) == {10.0}
    if mode == "ner_only":
        assert not intent and enc == {1.0}
    elif mode == "joint":
        assert set(intent) == {10.0} and enc == {1.0}
    else:  # alternating: the intent step is at intent_lr_factor, its head x10 on top
        assert intent and all(s == pytest.approx(2.5) for s in intent) and enc == {1.0, 0.25}


def test_head_lr_factor_one_is_the_plain_step(tiny_bert):
    nlp = fresh_nlp(tiny_bert, update_mode="joint", head_lr_factor=1.0)
    proc = nlp.get_pipe("intent_ner")
    assert proc.cfg["head_lr_factor"] == 1.0 and proc.cfg["label_smoothing"] == 0.0
    spy = SpyOptimizer(Adam(1e-3))
    nlp.update(toy_examples(nlp), sgd=False, losses={})
    proc.finish_update(spy)
    assert {s for _, s, _ in spy.calls} == {1.0}


def test_label_smoothing_raises_the_ner_loss_of_a_confident_model_and_is_saved(tiny_bert, tmp_path):
    plain = fresh_nlp(tiny_bert, update_mode="joint")
    smooth = fresh_nlp(tiny_bert, update_mode="joint", label_smoothing=0.2)
    pipe = smooth.get_pipe("intent_ner")
    tags = numpy.array([0, 1, 2, -1])
    logits = numpy.full((4, 3), -8.0, "f")
    logits[[0, 1, 2], [0, 1, 2]] = 8.0  # right and sure of it
    targets = (tags, numpy.zeros((4, 1), "f"), numpy.zeros((4, 1), "f"))
    (l_plain, _), _ = plain.get_pipe("intent_ner").get_loss([], (logits, None), targets=targets)
    (l_smooth, _), (d, _) = pipe.get_loss([], (logits, None), targets=targets)
    assert l_plain < 1e-3 < l_smooth
    assert (d[[0, 1, 2], [0, 1, 2]] > 0).all()  # pushed back from certainty
    assert not d[3].any()
    smooth.to_disk(tmp_path / "p")
    assert spacy.load(tmp_path / "p").get_pipe("intent_ner").cfg["label_smoothing"] == 0.2


@pytest.mark.parametrize("bad", [{"head_lr_factor": 0}, {"head_lr_factor": -1.0}, {"label_smoothing": 1.0}, {"label_smoothing": -0.1}])
def test_bad_lever_settings_are_refused(tiny_bert, bad):
    with pytest.raises(ValueError, match="intent_ner: (head_lr_factor|label_smoothing)"):
        fresh_nlp(tiny_bert, **bad)
