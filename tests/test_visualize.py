import json

import pytest

from spacy_multitask_intent.visualize import (
    entity_confidences,
    heatmap_html,
    heatmap_png,
    pr_curve,
    training_curves_png,
)

from conftest import toy_examples, train


def test_pr_curve_arithmetic():
    p, r = pr_curve([0.9, 0.1, 0.5], [True, False, True], n_gold=4)
    assert list(p) == pytest.approx([1.0, 1.0, 2 / 3])
    assert list(r) == pytest.approx([0.25, 0.5, 0.5])


def test_heatmaps_and_confidences(toy_nlp, tmp_path):
    examples = toy_examples(toy_nlp)
    train(toy_nlp, examples, steps=20, lr=3e-3)
    png = heatmap_png(toy_nlp, ["pickup my order at orange store", "buy orange at target"], tmp_path / "h.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = heatmap_html(toy_nlp, ["pickup my order at orange store"])
    assert "store_lookup" in html and "orange" in html
    conf, correct, n_gold = entity_confidences(toy_nlp, examples)
    assert n_gold == sum(len(eg.reference.ents) for eg in examples)
    assert len(conf) == len(correct) and all(0.0 <= c <= 1.0 for c in conf)


def test_training_curves(tmp_path):
    log = tmp_path / "train_log.jsonl"
    rows = [{"step": s, "losses": {"intent_ner_ner": 10.0 / (s + 1), "intent_ner_intent": 5.0 / (s + 1)}} for s in range(5)]
    log.write_text("\n".join(json.dumps(r) for r in rows))
    out = training_curves_png({"mt": log}, tmp_path / "c.png")
    assert out.exists() and out.stat().st_size > 1000
