import pytest
import spacy

from spacy_multitask_intent.calibrate import best_threshold, calibrate, infer_gating

from conftest import toy_examples, train


def test_best_threshold_f1_exact():
    scores = [0.9, 0.8, 0.7, 0.4, 0.3, 0.1]
    labels = [True, True, False, True, False, False]
    thr, stats = best_threshold(scores, labels, "f1")
    # Cutting after 0.4 gives p=3/4, r=1, f=6/7: the best of all cuts.
    assert 0.3 < thr < 0.4
    assert stats["p"] == pytest.approx(0.75)
    assert stats["r"] == pytest.approx(1.0)
    assert stats["f"] == pytest.approx(6 / 7)


def test_best_threshold_recall_at_precision():
    scores = [0.9, 0.8, 0.7, 0.4, 0.3, 0.1]
    labels = [True, True, False, True, False, False]
    thr, stats = best_threshold(scores, labels, "recall_at_precision", min_precision=1.0)
    assert 0.7 < thr < 0.8  # only the top two keep precision at 1.0
    assert stats["p"] == 1.0 and stats["r"] == pytest.approx(2 / 3)
    # Unreachable gold positives lower recall.
    _, stats = best_threshold(scores, labels, "f1", n_positive=6)
    assert stats["r"] <= 0.5


def test_best_threshold_ties_are_not_split():
    thr, stats = best_threshold([0.5, 0.5, 0.2], [True, False, False], "f1")
    assert thr < 0.5 and stats["p"] == 0.5


def test_best_threshold_keeps_everything_when_every_candidate_is_right():
    # A gate fitted to dev entities that were all correct must not drop a test
    # entity that scores a little below the lowest dev score.
    thr, stats = best_threshold([0.999, 0.998, 0.996], [True, True, True], "f1")
    assert thr <= 0.0 and stats["p"] == 1.0 and stats["r"] == 1.0
    thr, _ = best_threshold([0.999, 0.996], [True, True], "recall_at_precision", min_precision=0.99)
    assert thr <= 0.0
    # A wrong candidate below the right ones still sets a cut above it.
    thr, _ = best_threshold([0.999, 0.996, 0.5], [True, True, False], "f1")
    assert 0.5 < thr < 0.996


def test_infer_gating(toy_nlp):
    gating = infer_gating(toy_examples(toy_nlp))
    assert gating == {"STORE": ["store_lookup"]}


def test_calibrate_round_trips_through_spacy_load(toy_nlp, tmp_path):
    examples = toy_examples(toy_nlp)
    train(toy_nlp, examples, steps=30, lr=3e-3)
    result = calibrate(toy_nlp, examples, min_support=1)
    proc = toy_nlp.get_pipe("intent_ner")
    assert set(result["intent_thresholds"]) == set(proc.intent_labels)
    assert proc.cfg["gating"] == {"STORE": ["store_lookup"]}
    assert "store_lookup" in proc.cfg["gate_thresholds"]
    toy_nlp.to_disk(tmp_path / "m")
    loaded = spacy.load(tmp_path / "m")
    lp = loaded.get_pipe("intent_ner")
    assert lp.cfg["intent_thresholds"] == pytest.approx(proc.cfg["intent_thresholds"])
    assert lp.cfg["gate_thresholds"] == pytest.approx(proc.cfg["gate_thresholds"])
    assert loaded.config["components"]["intent_ner"]["gating"] == {"STORE": ["store_lookup"]}
    # The loaded thresholds act: an impossible gate drops every STORE.
    lp.cfg["gate_thresholds"]["store_lookup"] = 1.01
    doc = loaded("pickup my order at orange store")
    assert all(e.label_ != "STORE" for e in doc.ents)


def test_calibrate_refuses_ner_only(tiny_bert):
    from conftest import build_nlp

    nlp = build_nlp(tiny_bert, update_mode="ner_only")
    nlp.initialize(lambda: toy_examples(nlp))
    with pytest.raises(ValueError, match="nothing to calibrate"):
        calibrate(nlp, toy_examples(nlp))


def test_calibrate_cli_saves_to_a_new_nested_dir(toy_nlp, tmp_path):
    import json

    from spacy.tokens import DocBin

    from spacy_multitask_intent.cli.calibrate import calibrate_cli

    examples = toy_examples(toy_nlp)
    train(toy_nlp, examples, steps=30, lr=3e-3)
    toy_nlp.to_disk(tmp_path / "model")
    DocBin(docs=[eg.reference for eg in examples], store_user_data=True).to_disk(tmp_path / "dev.spacy")
    out = tmp_path / "not" / "yet" / "there"
    report = tmp_path / "reports" / "cal.json"
    calibrate_cli(
        tmp_path / "model", tmp_path / "dev.spacy", output=out, objective="f1",
        min_precision=0.9, gate=[], test=tmp_path / "dev.spacy", report=report, name="intent_ner",
        min_support=1,
    )
    saved = json.loads(report.read_text())
    assert set(saved["test_before"]) == {"ents_p", "ents_r", "ents_f", "intent_acc", "frame_acc"}
    loaded = spacy.load(out)
    assert loaded.get_pipe("intent_ner").cfg["intent_thresholds"] == pytest.approx(saved["intent_thresholds"])


def test_calibrate_leaves_rare_intents_and_labels_at_the_default(toy_nlp):
    # Toy dev: store_lookup 4 queries (4 STORE entities), the other intents 2 each.
    examples = toy_examples(toy_nlp)
    train(toy_nlp, examples, steps=30, lr=3e-3)
    result = calibrate(toy_nlp, examples, min_support=3)
    assert set(result["intent_thresholds"]) == {"store_lookup"}
    assert result["not_calibrated"]["intents"] == {"add_to_cart": 2, "product_search": 2}
    proc = toy_nlp.get_pipe("intent_ner")
    assert "add_to_cart" not in proc.cfg["intent_thresholds"]  # decide_intents uses the default
    assert proc.cfg["gating"] == {"STORE": ["store_lookup"]}
    # Above the STORE support: no inferred gating, no gate threshold.
    toy_nlp.get_pipe("intent_ner").cfg["gating"] = {}
    result = calibrate(toy_nlp, examples, min_support=5)
    assert result["intent_thresholds"] == {} and result["gating"] == {}
    assert result["gate_thresholds"] == {}
    # A gating the user names is kept; its rare label just adds no threshold.
    result = calibrate(toy_nlp, examples, min_support=5, gating={"STORE": ["store_lookup"]})
    assert result["not_calibrated"]["entity_labels"] == {"STORE": 4}
    assert result["gate_thresholds"] == {}
    with pytest.raises(ValueError, match="min_support"):
        calibrate(toy_nlp, examples, min_support=0)
