import json

import pytest

from spacy_multitask_intent.compare import aggregate, markdown, mean_sd, run_compare
from spacy_multitask_intent.data.convert import convert
from spacy_multitask_intent.data.generate import write_splits

from conftest import ROOT_DIR


def test_mean_sd_arithmetic():
    s = mean_sd([0.9, 0.92, 0.94])
    assert s["mean"] == pytest.approx(0.92)
    assert s["sd"] == pytest.approx(0.02)  # sample sd
    assert s["n"] == 3
    assert mean_sd([0.5]) == {"mean": 0.5, "sd": 0.0, "n": 1}
    assert mean_sd([None, None])["mean"] is None


def test_aggregate_and_markdown():
    runs = {
        "a": [
            {"gold_tokens": {"ents_p": 0.9, "ents_r": 0.8, "ents_f": 0.85, "intent_acc": 1.0, "frame_acc": 0.7}, "train_seconds": 10},
            {"gold_tokens": {"ents_p": 0.94, "ents_r": 0.78, "ents_f": 0.86, "intent_acc": 0.9, "frame_acc": 0.8}, "train_seconds": 14},
        ],
        "b": [{"gold_tokens": {"ents_p": 0.5, "ents_r": 0.5, "ents_f": 0.5, "intent_acc": None, "frame_acc": None}, "train_seconds": 3}],
    }
    table = aggregate(runs)
    assert table["a"]["ents_p"]["mean"] == pytest.approx(0.92)
    assert table["a"]["ents_p"]["sd"] == pytest.approx(0.0282842712)
    assert table["a"]["train_seconds"]["mean"] == pytest.approx(12)
    assert table["b"]["intent_acc"]["mean"] is None
    md = markdown(table)
    assert "| a | 92.00 ± 2.83 | 79.00 ± 1.41 | 85.50 ± 0.71 |" in md
    assert "| b | 50.00 ± 0.00 |" in md and "—" in md


@pytest.mark.slow
def test_run_compare_on_tiny_model(tiny_bert, tmp_path):
    raw = tmp_path / "raw"
    write_splits(raw, n=60, seed=1)
    for split in ("train", "dev", "test"):
        convert("jsonl", raw / f"{split}.jsonl", tmp_path / f"{split}.spacy", train=raw / "train.jsonl")
    out = tmp_path / "cmp"
    report = run_compare(
        tmp_path / "train.spacy",
        tmp_path / "dev.spacy",
        tmp_path / "test.spacy",
        out,
        configs_dir=ROOT_DIR / "configs",
        variants=["ner_only", "alternating", "stock"],
        seeds=[0, 1],
        overrides={"paths.encoder": str(tiny_bert), "training.max_steps": 2, "training.eval_frequency": 1},
    )
    assert set(report["gold_tokens"]) == {"ner_only", "alternating", "stock"}
    for name, rows in report["runs"].items():
        assert [r["seed"] for r in rows] == [0, 1]
    # The table's numbers are the mean of the per-seed metrics files.
    per_seed = [json.loads((out / "alternating" / f"seed{s}" / "metrics.json").read_text()) for s in (0, 1)]
    expected = sum(r["gold_tokens"]["ents_f"] for r in per_seed) / 2
    assert report["gold_tokens"]["alternating"]["ents_f"]["mean"] == pytest.approx(expected)
    assert (out / "compare.md").read_text().count("| ner_only |") == 2
    saved = (out / "configs" / "ner_only.cfg").read_text()
    assert 'update_mode = "ner_only"' in saved
