"""The per-run results table (benchmarks/results.csv) and `compare --collect --table`."""
import importlib.util
import json

import pytest

from spacy_multitask_intent import results_table
from spacy_multitask_intent.compare import aggregate, markdown, run_compare

from conftest import ROOT_DIR


def metrics(seed, f1, device=None, steps=1500, **extra):
    m = {
        "model": f"benchmarks/results/atis/SPEC/seed{seed}/model-best",
        "data": "corpus/atis/test.spacy",
        "gold_tokens": {"ents_p": f1 + 0.01, "ents_r": f1 - 0.01, "ents_f": f1, "intent_acc": 0.97 + seed / 1000,
                        "frame_acc": 0.86, "ents_per_type": {"x": {"p": 1.0}}},
        "raw_text": {"ents_p": f1, "ents_r": f1 - 0.02, "ents_f": f1 - 0.01, "intent_acc": 0.97 + seed / 1000,
                     "frame_acc": 0.85},
        "train_seconds": 1000.0 + seed,
        "seed": seed,
        "overrides": {"system.seed": seed, "training.max_steps": steps},
        **extra,
    }
    if device:
        m["device"] = device
    return m


def write_runs(results, dataset, spec, runs):
    for m in runs:
        path = results / dataset / spec / f"seed{m['seed']}" / "metrics.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(m))


def test_csv_round_trip_gives_the_same_tables(tmp_path):
    gpu = "cuda:0 (NVIDIA H100 80GB HBM3)"
    runs = {
        "ner_only": [metrics(0, 0.9512345678901234), metrics(1, 0.95, gpu)],
        "joint+intent_weight=0.5": [metrics(0, 0.9411, not_reevaluated="not scored again (model-best not kept)")],
    }
    rows = [results_table.row_from_metrics("atis", spec, m) for spec, ms in runs.items() for m in ms]
    path = results_table.write_csv(rows, tmp_path / "results.csv")
    back = results_table.read_csv(path)
    assert back == rows  # no rounding: floats come back bit for bit
    assert back[0]["gold_ents_f"] == 0.9512345678901234
    selected = results_table.select(back, "atis", list(runs), [0, 1, 2])
    for setting in ("gold_tokens", "raw_text"):
        assert aggregate(selected, setting) == aggregate(runs, setting)
        assert markdown(aggregate(selected, setting)) == markdown(aggregate(runs, setting))
    assert "†" in markdown(aggregate(selected)) and "‡" in markdown(aggregate(selected))
    assert results_table.select(back, "snips", list(runs), [0, 1]) == {}


def test_command_reproduces_the_run():
    row = results_table.row_from_metrics("snips", "ner_only", metrics(2, 0.9, "cuda:0 (NVIDIA H100 80GB HBM3)"))
    assert row["command"] == (
        "python -m spacy_multitask_intent compare corpus/atis/train.spacy corpus/atis/dev.spacy "
        "corpus/atis/test.spacy benchmarks/results/atis --variants ner_only --seeds 2 --max-steps 1500 "
        "--gpu-id 0 --resume"
    )
    spec = "joint+intent_weight=0.5+training.max_steps=3000"
    row = results_table.row_from_metrics("atis", spec, metrics(0, 0.9, steps=3000), "benchmarks/results/atis")
    assert row["max_steps"] == 3000
    assert f"--variants {spec} --seeds 0 --resume" in row["command"]  # the spec sets the steps
    assert "--max-steps" not in row["command"] and "--gpu-id" not in row["command"]


def test_scan_finds_every_dataset_and_names_bad_files(tmp_path):
    results = tmp_path / "results"
    write_runs(results, "atis", "ner_only", [metrics(0, 0.95), metrics(1, 0.96)])
    write_runs(results, "newdata", "joint+intent_weight=0.5", [metrics(0, 0.9)])
    (results / "atis" / "compare.md").write_text("a table, not a run")
    (results / "atis" / "ner_only" / "seed0" / "train_log.jsonl").write_text("{}\n")
    rows = results_table.scan(results)
    assert [(r["dataset"], r["variant"], r["seed"]) for r in rows] == [
        ("atis", "ner_only", 0), ("atis", "ner_only", 1), ("newdata", "joint+intent_weight=0.5", 0)]
    assert rows[0]["command"].split()[7] == str(results / "atis")

    bad = results / "atis" / "stock" / "seed0" / "metrics.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="stock/seed0/metrics.json: not valid JSON"):
        results_table.scan(results)
    bad.write_text(json.dumps(metrics(1, 0.9)))
    with pytest.raises(ValueError, match="its seed is 1, its folder seed0"):
        results_table.scan(results)
    bad.write_text(json.dumps({"seed": 0, "gold_tokens": {}}))
    with pytest.raises(ValueError, match="atis/stock: the run's metrics have no 'raw_text' scores"):
        results_table.scan(results)


def test_read_csv_names_the_line(tmp_path):
    rows = [results_table.row_from_metrics("atis", "ner_only", metrics(s, 0.9)) for s in (0, 1)]
    path = results_table.write_csv(rows, tmp_path / "r.csv")
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace("0.9,", "0.9x,", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"r.csv:3: gold_ents_f '0.9x' is not a number"):
        results_table.read_csv(path)
    with pytest.raises(FileNotFoundError, match="no results table"):
        results_table.read_csv(tmp_path / "missing.csv")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="no column"):
        results_table.read_csv(tmp_path / "other.csv")


def test_merge_replaces_the_same_run():
    old = [results_table.row_from_metrics("atis", "ner_only", metrics(s, 0.9)) for s in (0, 1)]
    new = [results_table.row_from_metrics("atis", "ner_only", metrics(1, 0.8)),
           results_table.row_from_metrics("atis", "stock", metrics(0, 0.7))]
    merged = results_table.merge(old, new)
    assert [(r["variant"], r["seed"], r["gold_ents_f"]) for r in merged] == [
        ("ner_only", 0, 0.9), ("ner_only", 1, 0.8), ("stock", 0, 0.7)]


def test_compare_collect_reads_the_table_and_resume_writes_it(tmp_path):
    out = tmp_path / "atis"
    write_runs(tmp_path, "atis", "ner_only", [metrics(0, 0.95), metrics(1, 0.96)])
    write_runs(tmp_path, "atis", "joint+intent_weight=0.5", [metrics(0, 0.94), metrics(1, 0.93)])
    table = tmp_path / "results.csv"
    args = (tmp_path / "t.spacy", tmp_path / "d.spacy", tmp_path / "x.spacy", out)
    # --resume reuses the finished runs (nothing trains) and merges them into the table.
    first = run_compare(*args, configs_dir=ROOT_DIR / "configs", variants=["ner_only", "joint+intent_weight=0.5"],
                        seeds=[0, 1], resume=True, table=table)
    assert len(results_table.read_csv(table)) == 4
    assert not list(out.glob("*.json"))  # no aggregate JSON beside the Markdown table
    md = (out / "compare.md").read_text()
    # --collect --table reads the rows, not the metrics files.
    for path in out.glob("*/seed*/metrics.json"):
        path.unlink()
    again = run_compare(*args, configs_dir=ROOT_DIR / "configs", variants=["ner_only", "joint+intent_weight=0.5", "stock"],
                        seeds=[0, 1, 2], collect_only=True, table=table, report_name="again")
    assert again["gold_tokens"] == first["gold_tokens"]
    assert (out / "again.md").read_text() == md
    assert again["gold_tokens"]["ner_only"]["ents_f"]["mean"] == pytest.approx(0.955)


def test_collect_script_builds_csv_and_tables_for_a_new_dataset(tmp_path):
    spec = importlib.util.spec_from_file_location("collect", ROOT_DIR / "benchmarks" / "collect.py")
    collect = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(collect)
    results = tmp_path / "results"
    write_runs(results, "newdata", "ner_only", [metrics(0, 0.95), metrics(1, 0.96)])
    write_runs(results, "newdata", "joint+intent_weight=0.5", [metrics(1, 0.94)])
    table = tmp_path / "results.csv"
    assert collect.main(["--results", str(results), "--table", str(table), "--quiet"]) == 0
    rows = results_table.read_csv(table)
    assert [(r["dataset"], r["variant"], r["seed"]) for r in rows] == [
        ("newdata", "joint+intent_weight=0.5", 1), ("newdata", "ner_only", 0), ("newdata", "ner_only", 1)]
    md = (results / "newdata" / "compare.md").read_text()
    assert "| ner_only | 96.50 ± 0.71 |" in md and "| joint+intent_weight=0.5 | 95.00 |" in md
