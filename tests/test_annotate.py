"""annotate: the batch function, both engines, resume and an actor crash.
No row is lost: every input id comes out exactly once."""
import json
import os
import random

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pd = pytest.importorskip("pandas")

from spacy_multitask_intent.annotate import (  # noqa: E402
    CRASH_ONCE_ENV,
    AnnotateError,
    annotate_batch,
    read_output,
    run,
    shard_path,
)
from conftest import TOY, fresh_nlp, toy_examples, train  # noqa: E402

N_ROWS = 300
SUFFIXES = ["", " please", " today", " now", " near me", " 24", " for pickup"]


def _texts(n, seed=0):
    rnd = random.Random(seed)
    return [TOY[i % len(TOY)][0] + rnd.choice(SUFFIXES) for i in range(n)]


@pytest.fixture(scope="module")
def model_dir(tiny_bert, tmp_path_factory):
    nlp = fresh_nlp(tiny_bert, update_mode="joint")
    train(nlp, toy_examples(nlp), steps=25)
    path = tmp_path_factory.mktemp("annotate_model") / "model"
    nlp.to_disk(path)
    return path


@pytest.fixture(scope="module")
def nlp(model_dir):
    import spacy

    return spacy.load(model_dir)


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """300 rows over two Parquet files and one JSONL file (with an extra column)."""
    folder = tmp_path_factory.mktemp("logs")
    texts = _texts(N_ROWS)
    ids = [f"q{i:04d}" for i in range(N_ROWS)]
    pq.write_table(pa.table({"id": ids[:120], "text": texts[:120], "day": [i % 7 for i in range(120)]}), folder / "a.parquet", row_group_size=50)
    pq.write_table(pa.table({"id": ids[120:200], "text": texts[120:200], "day": [1] * 80}), folder / "b.parquet")
    with open(folder / "c.jsonl", "w", encoding="utf-8") as f:
        for i in range(200, N_ROWS):
            f.write(json.dumps({"id": ids[i], "text": texts[i], "day": 2}) + "\n")
    return folder, dict(zip(ids, texts))


def _check_against_pipe(nlp, rows):
    """Each annotated row equals nlp.pipe on its text."""
    pipe = nlp.get_pipe("intent_ner")
    docs = list(nlp.pipe([r["text"] for r in rows]))
    for row, doc in zip(rows, docs):
        assert row["error"] is None
        assert [(e["start"], e["end"], e["label"], e["text"]) for e in row["entities"]] == [
            (e.start_char, e.end_char, e.label_, e.text) for e in doc.ents
        ]
        for e, ent in zip(row["entities"], doc.ents):
            assert e["confidence"] == pytest.approx(ent._.confidence, abs=1e-5)
        assert row["intents"] == sorted(pipe.decide_intents(doc))
        scores = dict(row["intent_scores"])
        assert scores == pytest.approx(doc.cats, abs=1e-5) and set(scores) == set(doc.cats)


def _rows(table):
    rows = table.to_pylist()
    for r in rows:
        r["intent_scores"] = dict(r["intent_scores"])
    return rows


# --- the batch function ------------------------------------------------------


def test_batch_function_matches_pipe_on_both_types(nlp):
    texts = _texts(40, seed=1)
    table = pa.table({"id": list(range(40)), "text": texts})
    out = annotate_batch(nlp, table, batch_size=16)
    assert isinstance(out, pa.Table) and out.column_names == ["id", "text", "entities", "intents", "intent_scores", "error"]
    assert table.column_names == ["id", "text"]  # input untouched
    rows = _rows(out)
    _check_against_pipe(nlp, rows)
    assert any(r["entities"] for r in rows)  # the trained toy model finds entities
    df = annotate_batch(nlp, table.to_pandas(), batch_size=7)
    assert isinstance(df, pd.DataFrame)
    # Other batches pad differently: the same spans, confidences equal to float precision.
    spans = lambda ents: [(e["start"], e["end"], e["label"], e["text"]) for e in ents]  # noqa: E731
    assert [spans(e) for e in df["entities"]] == [spans(r["entities"]) for r in rows]
    for got, want in zip(df["entities"], rows):
        assert [e["confidence"] for e in got] == pytest.approx([e["confidence"] for e in want["entities"]], abs=1e-5)
    assert df["intents"].tolist() == [r["intents"] for r in rows]
    for got, want in zip(df["intent_scores"].tolist(), rows):
        assert dict(got) == pytest.approx(want["intent_scores"], abs=1e-5)


def test_bad_rows_are_kept_with_an_error(nlp):
    good = "pickup my order at orange store"
    big = "store " * 200_000  # 1.2 MB
    values = [good, None, 3, "", "  \t", big, "caf\udce9 store", good]
    df = pd.DataFrame({"id": range(len(values)), "text": values})
    out = annotate_batch(nlp, df)
    assert out["id"].tolist() == list(range(len(values)))
    err = out["error"].tolist()
    assert err[0] is None and err[-1] is None
    assert err[1] == "null text"
    assert err[2] == "text is int, not a string"
    assert err[3] == err[4] == "empty text"
    assert "over the 1000000-byte limit" in err[5]
    assert err[6].startswith("invalid UTF-8")
    for i in range(1, 7):
        assert out["entities"][i] == [] and out["intents"][i] == [] and out["intent_scores"][i] == {}
    assert out["intent_scores"][0] == out["intent_scores"][7] != {}
    # raw bytes in an Arrow binary column: invalid UTF-8 is caught per row
    table = pa.table({"text": pa.array([good.encode(), b"bad \xff\xfe", None], type=pa.binary())})
    out = annotate_batch(nlp, table)
    assert out.column("error").to_pylist()[0] is None
    assert out.column("error").to_pylist()[1].startswith("invalid UTF-8")
    assert out.column("error").to_pylist()[2] == "null text"
    assert out.column("text").to_pylist() == table.column("text").to_pylist()


def test_bad_lines_in_a_file_are_kept_and_the_job_goes_on(model_dir, tmp_path):
    src = tmp_path / "log.jsonl"
    with open(src, "wb") as f:
        f.write(b'{"id": 1, "text": "pickup my order at orange store"}\n')
        f.write(b'{"id": 2, "text": "caf\xe9 store"}\n')  # latin-1 byte, not UTF-8
        f.write(b'{"id": 3, "text": 42}\n')
        f.write(b"not json at all\n")
        f.write(b'{"id": 5, "text": null}\n')
        f.write(b"\n")  # blank lines are not rows
        f.write(b'{"id": 6, "text": "find lemon cake"}\n')
    result = run(str(model_dir), str(src), str(tmp_path / "out"), fmt="jsonl", progress=False)
    rows = read_output(str(tmp_path / "out"))
    assert result.rows == len(rows) == 6 and result.errors == 4
    errors = [r["error"] for r in rows]
    assert errors[0] is None and errors[5] is None
    assert "invalid UTF-8" in errors[1] and "log.jsonl row 1" in errors[1]
    assert "text is int" in errors[2]
    assert "invalid JSON" in errors[3] and "row 3" in errors[3] and rows[3]["text"] == "not json at all"
    assert errors[4] == "null text"
    assert [r["id"] for r in rows] == [1, 2, 3, None, 5, 6]
    assert rows[0]["entities"] or rows[0]["intents"]


def test_csv_input_and_prodigy_output(model_dir, tmp_path):
    src = tmp_path / "log.csv"
    pd.DataFrame({"query": ["pickup my order at orange store", "", "find lemon cake"], "n": [1, 2, 3]}).to_csv(src, index=False)
    run(str(model_dir), str(src), str(tmp_path / "out"), text_column="query", fmt="prodigy", progress=False)
    tasks = read_output(str(tmp_path / "out"))
    assert [t["text"] for t in tasks] == ["pickup my order at orange store", "", "find lemon cake"]
    assert [t["meta"]["id"] for t in tasks] == ["log.csv:0", "log.csv:1", "log.csv:2"]  # added id
    assert tasks[1]["meta"]["error"] == "null text" and tasks[0]["meta"]["error"] is None
    assert tasks[0]["meta"]["n"] == "1"  # CSV values are read as strings
    assert all({"spans", "options", "accept", "answer"} <= set(t) for t in tasks)


# --- engines, resume, crash --------------------------------------------------


def test_local_engine_equals_pipe_and_resume_computes_only_missing_shards(model_dir, nlp, logs, tmp_path):
    folder, by_id = logs
    out = str(tmp_path / "out")
    first = run(str(model_dir), str(folder), out, shard_rows=50, batch_size=32, progress=False)
    assert first.shards == 3 + 2 + 2 and first.rows == N_ROWS and first.errors == 0
    table = read_output(out)
    rows = _rows(table)
    assert sorted(r["id"] for r in rows) == sorted(by_id)
    assert all(r["text"] == by_id[r["id"]] for r in rows)
    assert set(table.column_names) == {"id", "text", "day", "entities", "intents", "intent_scores", "error"}
    _check_against_pipe(nlp, rows)

    with pytest.raises(AnnotateError, match="--resume"):
        run(str(model_dir), str(folder), out, shard_rows=50, progress=False)
    with pytest.raises(AnnotateError, match="differ"):
        run(str(model_dir), str(folder), out, shard_rows=60, resume=True, progress=False)

    # a job killed halfway: two shards never written, one cut short, a temp file left
    names = sorted(first.computed_shards)
    gone, cut = names[1:3], names[4]
    for name in gone:
        os.remove(shard_path(out, name, "parquet"))
    data = open(shard_path(out, cut, "parquet"), "rb").read()
    open(shard_path(out, cut, "parquet"), "wb").write(data[: len(data) // 2])
    open(shard_path(out, names[5], "parquet") + ".tmp-999", "wb").write(data[:100])
    untouched = {n: os.path.getmtime(shard_path(out, n, "parquet")) for n in names if n not in gone + [cut]}

    second = run(str(model_dir), str(folder), out, shard_rows=50, batch_size=32, resume=True, progress=False)
    assert sorted(second.computed_shards) == sorted(gone + [cut])
    assert second.skipped_shards == len(names) - 3
    assert all(os.path.getmtime(shard_path(out, n, "parquet")) == t for n, t in untouched.items())
    assert not [n for n in os.listdir(out) if ".tmp-" in n]
    again = read_output(out)
    ids = again.column("id").to_pylist()
    assert len(ids) == len(set(ids)) == N_ROWS and set(ids) == set(by_id)
    assert _rows(again.sort_by("id")) == _rows(table.sort_by("id"))

    third = run(str(model_dir), str(folder), out, shard_rows=50, resume=True, progress=False)
    assert third.computed_shards == [] and third.rows == N_ROWS


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A local Ray cluster for this module. Its workers see CRASH_ONCE_ENV; the
    flag file it names does not exist until a test creates it."""
    ray = pytest.importorskip("ray")
    flag = tmp_path_factory.mktemp("crash") / "crash-once"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {CRASH_ONCE_ENV: str(flag)}})
    yield flag
    ray.shutdown()


def test_ray_engine_equals_local_engine(model_dir, logs, tmp_path, ray_cluster):
    folder, by_id = logs
    local = run(str(model_dir), str(folder), str(tmp_path / "local"), shard_rows=50, progress=False)
    on_ray = run(str(model_dir), str(folder), str(tmp_path / "ray"), engine="ray", workers=2, shard_rows=50)
    assert sorted(on_ray.computed_shards) == sorted(local.computed_shards)
    a, b = read_output(str(tmp_path / "local")), read_output(str(tmp_path / "ray"))
    assert a.column_names == b.column_names
    assert _rows(a) == _rows(b)  # same shards, same rows, same order


def test_ray_actor_crash_is_retried_and_no_row_is_lost(model_dir, logs, tmp_path, ray_cluster):
    folder, by_id = logs
    flag = ray_cluster
    flag.write_text("x")  # the first actor call to find it deletes it and dies
    result = run(str(model_dir), str(folder), str(tmp_path / "out"), engine="ray", workers=1, shard_rows=50)
    assert not flag.exists()  # an actor did die mid-job
    table = read_output(str(tmp_path / "out"))
    ids = table.column("id").to_pylist()
    assert len(ids) == len(set(ids)) == N_ROWS and set(ids) == set(by_id)
    assert len(result.computed_shards) == result.shards == 7
    assert table.column("error").null_count == N_ROWS
