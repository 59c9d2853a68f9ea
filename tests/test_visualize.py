import json

import pytest

from spacy_multitask_intent.visualize import (
    entity_confidences,
    heatmap_html,
    heatmap_png,
    intent_matrix,
    pr_curve,
    training_curves_png,
)

from conftest import toy_examples, train


def test_pr_curve_arithmetic():
    p, r = pr_curve([0.9, 0.1, 0.5], [True, False, True], n_gold=4)
    assert list(p) == pytest.approx([1.0, 1.0, 2 / 3])
    assert list(r) == pytest.approx([0.25, 0.5, 0.5])


@pytest.fixture
def recorded_figures(monkeypatch):
    """What each saved figure drew: per axes, its lines and images."""
    from matplotlib.figure import Figure

    drawn = []
    original = Figure.savefig

    def savefig(self, *args, **kwargs):
        drawn.append([{"lines": len(ax.lines), "images": [im.get_array().shape for im in ax.images]} for ax in self.axes])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return drawn


def test_heatmaps_and_confidences(toy_nlp, tmp_path, recorded_figures):
    examples = toy_examples(toy_nlp)
    train(toy_nlp, examples, steps=20, lr=3e-3)
    queries = ["pickup my order at orange store", "buy orange at target"]
    # The heat map's data: one row of intent scores per word, the store query's
    # words leaning to store_lookup.
    words, labels, scores = intent_matrix(toy_nlp, queries[0])
    assert labels == ["add_to_cart", "product_search", "store_lookup"]
    assert scores.shape == (len(words), 3)
    assert labels[int(scores.mean(axis=0).argmax())] == "store_lookup"
    png = heatmap_png(toy_nlp, queries, tmp_path / "h.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    panels = [ax["images"] for ax in recorded_figures[-1] if ax["images"]]
    assert panels == [[(3, 6)], [(3, 4)]]  # intents x words, one panel per query
    html = heatmap_html(toy_nlp, [queries[0]])
    # An entity box and each word's intent scores were rendered, and the
    # doc.cats line leads with the predicted intent.
    assert ">STORE</span>" in html
    assert html.count("store_lookup: ") == len(words)
    assert "doc.cats: store_lookup" in html
    conf, correct, n_gold = entity_confidences(toy_nlp, examples)
    assert n_gold == sum(len(eg.reference.ents) for eg in examples)
    assert len(conf) == len(correct) and all(0.0 <= c <= 1.0 for c in conf)
    assert sum(correct) >= n_gold // 2  # entities were predicted, and most of them right
    p, r = pr_curve(conf, correct, n_gold)
    assert r[-1] == pytest.approx(sum(correct) / n_gold) and r[-1] > 0


def test_training_curves(tmp_path, recorded_figures):
    log = tmp_path / "train_log.jsonl"
    rows = [{"step": s, "losses": {"intent_ner_ner": 10.0 / (s + 1), "intent_ner_intent": 5.0 / (s + 1)}} for s in range(5)]
    log.write_text("\n".join(json.dumps(r) for r in rows))
    ner_only = tmp_path / "ner_only_log.jsonl"
    ner_only.write_text("\n".join(json.dumps({"step": r["step"], "losses": {"intent_ner_ner": 1.0}}) for r in rows))
    out = training_curves_png({"mt": log, "ner": ner_only}, tmp_path / "c.png")
    assert out.exists() and out.stat().st_size > 1000
    assert recorded_figures[-1][0]["lines"] == 3  # mt: ner + intent loss; ner: ner loss
