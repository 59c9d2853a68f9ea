import json

import pytest

from spacy_multitask_intent.compare import aggregate, markdown, mean_sd, parse_variant, run_compare
from spacy_multitask_intent.data.convert import convert
from spacy_multitask_intent.data.generate import write_splits

from conftest import ROOT_DIR


def test_mean_sd_arithmetic():
    s = mean_sd([0.9, 0.92, 0.94])
    assert s["mean"] == pytest.approx(0.92)
    assert s["sd"] == pytest.approx(0.02)  # sample sd
    assert s["n"] == 3
    assert mean_sd([0.5]) == {"mean": 0.5, "sd": None, "n": 1}
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
    assert "| b | 50.00 | 50.00 | 50.00 | — | — | 3 | 1 |" in md  # one seed: no sd


def test_gpu_runs_are_marked_and_left_out_of_cpu_time():
    def run(f1, seconds, device=None):
        r = {"gold_tokens": {"ents_p": f1, "ents_r": f1, "ents_f": f1, "intent_acc": None, "frame_acc": None},
             "train_seconds": seconds}
        if device:
            r["device"] = device
        return r

    gpu = "cuda:0 (NVIDIA H100 80GB HBM3)"
    table = aggregate({
        "mixed": [run(0.9, 900, "cpu"), run(0.92, 190, gpu), run(0.94, 180, gpu)],
        "cpu": [run(0.9, 800), run(0.9, 1000, "cpu")],
        "gpu": [run(0.9, 200, gpu)],
        "mixed2": [run(0.9, 900, "cpu"), run(0.9, 700, "cpu"), run(0.9, 190, gpu)],
    })
    assert table["mixed"]["ents_f"]["mean"] == pytest.approx(0.92)  # scores: every run
    assert table["mixed"]["train_seconds"] == {"mean": 900, "sd": None, "n": 1}  # time: the CPU run
    assert table["gpu"]["train_seconds"]["mean"] == 200
    assert "devices" not in table["cpu"]
    md = markdown(table)
    assert "| mixed ‡ | 92.00 ± 2.00 |" in md and "| 900 | 3 |" in md
    assert "‡ mixed: 2 of 3 runs trained on cuda:0 (NVIDIA H100 80GB HBM3); Train s is the CPU run's" in md
    assert "‡ gpu: 1 of 1 runs trained on cuda:0 (NVIDIA H100 80GB HBM3); Train s on that GPU" in md
    assert "| cpu | " in md
    assert "‡ mixed2: 1 of 3 runs trained on cuda:0 (NVIDIA H100 80GB HBM3); Train s is the mean of the 2 CPU runs" in md
    assert "| mixed2 ‡ | 90.00 ± 0.00 |" in md and "| 800 ± 141 | 3 |" in md


def test_parse_variant():
    assert parse_variant("ner_only") == ("ner_only", {})
    name, ov = parse_variant("joint+intent_weight=0.5+training.max_steps=900")
    assert name == "joint"
    assert ov == {"components.intent_ner.intent_weight": 0.5, "training.max_steps": 900}
    assert isinstance(ov["training.max_steps"], int)
    assert parse_variant("alternating+intent_lr_factor=0.01")[1] == {"components.intent_ner.intent_lr_factor": 0.01}
    with pytest.raises(ValueError, match="Unknown configuration 'jiont'"):
        parse_variant("jiont+intent_weight=0.5")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_variant("joint+intent_weight")
    with pytest.raises(ValueError, match="no intent_ner settings"):
        parse_variant("stock+intent_weight=1")


def test_bad_variant_fails_before_any_training(tmp_path):
    with pytest.raises(ValueError, match="KEY=VALUE"):
        run_compare(tmp_path / "t", tmp_path / "d", tmp_path / "x", tmp_path / "out",
                    configs_dir=ROOT_DIR / "configs", variants=["ner_only", "joint+oops"], seeds=[0])
    assert not (tmp_path / "out" / "ner_only").exists()


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
    # The stock peer's intents (textcat_multilabel) and frames are scored too.
    for setting in ("gold_tokens", "raw_text"):
        assert report[setting]["stock"]["intent_acc"]["n"] == 2
        assert report[setting]["stock"]["frame_acc"]["n"] == 2
        assert report[setting]["ner_only"]["intent_acc"]["n"] == 0
    for name, rows in report["runs"].items():
        assert [r["seed"] for r in rows] == [0, 1]
    # The table's numbers are the mean of the per-seed metrics files.
    per_seed = [json.loads((out / "alternating" / f"seed{s}" / "metrics.json").read_text()) for s in (0, 1)]
    expected = sum(r["gold_tokens"]["ents_f"] for r in per_seed) / 2
    assert report["gold_tokens"]["alternating"]["ents_f"]["mean"] == pytest.approx(expected)
    assert (out / "compare.md").read_text().count("| ner_only |") == 2
    saved = (out / "configs" / "ner_only.cfg").read_text()
    assert 'update_mode = "ner_only"' in saved

    # --resume reuses finished runs (their files are not rewritten) and
    # trains only what is new; a variant spec's settings reach the config.
    stamp = {s: (out / "ner_only" / f"seed{s}" / "metrics.json").stat().st_mtime_ns for s in (0, 1)}
    again = run_compare(
        tmp_path / "train.spacy",
        tmp_path / "dev.spacy",
        tmp_path / "test.spacy",
        out,
        configs_dir=ROOT_DIR / "configs",
        variants=["ner_only", "joint+intent_weight=0.5"],
        seeds=[0, 1],
        overrides={"paths.encoder": str(tiny_bert), "training.max_steps": 2, "training.eval_frequency": 1},
        resume=True,
        report_name="ablation",
    )
    for s in (0, 1):
        assert (out / "ner_only" / f"seed{s}" / "metrics.json").stat().st_mtime_ns == stamp[s]
    assert again["gold_tokens"]["ner_only"] == report["gold_tokens"]["ner_only"]
    run = json.loads((out / "joint+intent_weight=0.5" / "seed1" / "metrics.json").read_text())
    assert run["overrides"]["components.intent_ner.intent_weight"] == 0.5
    import torch

    assert run["torch_threads"] == torch.get_num_threads()  # the thread count changes float sums
    import spacy

    trained = spacy.load(out / "joint+intent_weight=0.5" / "seed1" / "model-best")
    assert trained.get_pipe("intent_ner").cfg["intent_weight"] == 0.5
    assert trained.get_pipe("intent_ner").cfg["update_mode"] == "joint"
    assert "| joint+intent_weight=0.5 |" in (out / "ablation.md").read_text()
    assert (out / "compare.md").exists()  # the first report is left alone

    # --collect trains nothing: missing runs are left out of the table.
    collected = run_compare(
        tmp_path / "train.spacy", tmp_path / "dev.spacy", tmp_path / "test.spacy", out,
        configs_dir=ROOT_DIR / "configs", variants=["ner_only", "joint+intent_weight=1.5"],
        seeds=[0, 1, 2], collect_only=True, report_name="collected",
    )
    assert set(collected["gold_tokens"]) == {"ner_only"}
    assert collected["gold_tokens"]["ner_only"]["ents_f"]["n"] == 2
    assert not (out / "joint+intent_weight=1.5").exists()
    assert not (out / "ner_only" / "seed2").exists()

    # --reevaluate scores the saved model again and keeps the training time;
    # a run whose model was not kept is left as it was.
    import shutil

    def tamper(seed):
        path = out / "ner_only" / f"seed{seed}" / "metrics.json"
        run = json.loads(path.read_text())
        truth = run["gold_tokens"]["ents_f"]
        run["gold_tokens"]["ents_f"] = -1.0
        run["train_seconds"] = 123.0
        path.write_text(json.dumps(run))
        return truth

    truth = tamper(0)
    tamper(1)
    shutil.rmtree(out / "ner_only" / "seed1" / "model-best")
    again = run_compare(
        tmp_path / "train.spacy", tmp_path / "dev.spacy", tmp_path / "test.spacy", out,
        configs_dir=ROOT_DIR / "configs", variants=["ner_only"], seeds=[0, 1],
        collect_only=True, reevaluate=True, report_name="reevaluated",
    )
    fresh = json.loads((out / "ner_only" / "seed0" / "metrics.json").read_text())
    assert fresh["gold_tokens"]["ents_f"] == truth
    assert fresh["train_seconds"] == 123.0 and fresh["seed"] == 0
    kept = json.loads((out / "ner_only" / "seed1" / "metrics.json").read_text())
    assert kept["gold_tokens"]["ents_f"] == -1.0
    assert again["gold_tokens"]["ner_only"]["ents_f"]["mean"] == (truth - 1.0) / 2
    assert "not_reevaluated" in kept and "not_reevaluated" not in fresh
    table = (out / "reevaluated.md").read_text()
    assert "| ner_only † |" in table and "† ner_only: 1 of 2 runs not scored again" in table
