import json
import os
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_multitask_intent.data.convert import (
    ConvertStats,
    DataError,
    convert,
    parse_brackets,
    read_bio,
    read_brackets,
    read_jsonl,
)

def shared_data_dir() -> Path:
    """Where ATIS / SNIPS are shared beside the checkout: $SPACY_MULTITASK_INTENT_SHARED_DATA,
    else ../shared/data next to the repository root, else next to the main
    checkout when this is a git worktree (its .git file points there)."""
    env = os.environ.get("SPACY_MULTITASK_INTENT_SHARED_DATA")
    if env:
        return Path(env)
    root = Path(__file__).resolve().parents[1]
    candidates = [root.parent / "shared" / "data"]
    git = root / ".git"
    if git.is_file():  # a worktree: "gitdir: <main>/.git/worktrees/<name>"
        gitdir = Path(git.read_text().split("gitdir:", 1)[-1].strip())
        common = gitdir / "commondir"
        main_git = (gitdir / common.read_text().strip()).resolve() if common.exists() else gitdir.parents[1]
        candidates.append(main_git.parent.parent / "shared" / "data")
    return next((c for c in candidates if c.exists()), candidates[0])


SHARED_DATA = shared_data_dir()


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


def write_bio(folder: Path, seq_in, seq_out, label) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, lines in (("seq.in", seq_in), ("seq.out", seq_out), ("label", label)):
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf8")
    return folder


def write_lines(path: Path, lines) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    return path


def jl(**obj) -> str:
    return json.dumps(obj)


def ents(doc):
    return [(e.text, e.label_) for e in doc.ents]


def assert_error(excinfo, filename: str, line: int):
    message = str(excinfo.value)
    assert f"{filename}:{line}:" in message, message
    assert excinfo.value.line == line


# --------------------------------------------------------------------------- bio


def good_bio(tmp_path):
    return write_bio(
        tmp_path / "train",
        ["i want to fly from boston to new york", "fares to denver", "show ground transport in denver"],
        ["O O O O O B-from O B-to I-to", "O O B-to", "O O O O B-city"],
        ["flight", "airfare#flight", "ground_service"],
    )


def test_read_bio_good(tmp_path, nlp):
    stats = ConvertStats()
    docs = read_bio(good_bio(tmp_path), nlp.vocab, stats=stats)
    assert len(docs) == 3
    assert [t.text for t in docs[0]] == "i want to fly from boston to new york".split()
    assert docs[0].text == "i want to fly from boston to new york"
    assert ents(docs[0]) == [("boston", "from"), ("new york", "to")]
    assert ents(docs[2]) == [("denver", "city")]
    labels = {"airfare", "flight", "ground_service"}
    for doc in docs:
        assert set(doc.cats) == labels
    assert docs[0].cats == {"airfare": 0.0, "flight": 1.0, "ground_service": 0.0}
    assert docs[1].cats == {"airfare": 1.0, "flight": 1.0, "ground_service": 0.0}
    assert stats.n_docs == 3 and stats.n_ents == 4 and stats.n_multi_intent == 1
    assert stats.intent_counts == {"airfare": 1, "flight": 2, "ground_service": 1}
    assert stats.repaired_tags == 0 and stats.warnings == []


def test_read_bio_extra_intent_labels(tmp_path, nlp):
    docs = read_bio(good_bio(tmp_path), nlp.vocab, intent_labels=["zzz"])
    assert all(doc.cats["zzz"] == 0.0 for doc in docs)


def test_bio_stray_i_repaired_and_counted(tmp_path, nlp):
    folder = write_bio(
        tmp_path / "d",
        ["a b c d", "x y", "p q r"],
        ["O I-X I-X O", "B-Y I-Z", "B-X O I-X"],
        ["i1", "i2", "i1"],
    )
    stats = ConvertStats()
    docs = read_bio(folder, nlp.vocab, stats=stats)
    assert ents(docs[0]) == [("b c", "X")]
    assert ents(docs[1]) == [("x", "Y"), ("y", "Z")]
    assert ents(docs[2]) == [("p", "X"), ("r", "X")]
    assert stats.repaired_tags == 3
    assert stats.repaired_locations == [f"{folder / 'seq.out'}:1", f"{folder / 'seq.out'}:2", f"{folder / 'seq.out'}:3"]
    assert len(stats.warnings) == 1
    assert "3" in stats.warnings[0] and "seq.out:1" in stats.warnings[0]


@pytest.mark.parametrize(
    "seq_in,seq_out,label,bad_file,bad_line",
    [
        # word/tag count mismatch on line 2
        (["a b", "c d e", "f"], ["O O", "O O", "O"], ["x", "x", "x"], "seq.out", 2),
        # label file one line short
        (["a", "b", "c"], ["O", "O", "O"], ["x", "x"], "label", 3),
        # seq.out one line short
        (["a", "b", "c"], ["O", "O"], ["x", "x", "x"], "seq.out", 3),
        # blank line in seq.in
        (["a", "", "c"], ["O", "O", "O"], ["x", "x", "x"], "seq.in", 2),
        # blank line in label
        (["a", "b", "c"], ["O", "O", "O"], ["x", "x", "  "], "label", 3),
        # invalid tag
        (["a b", "c d"], ["O O", "O X-loc"], ["x", "x"], "seq.out", 2),
        (["a b", "c d"], ["B- O", "O O"], ["x", "x"], "seq.out", 1),
        # empty intent part
        (["a", "b"], ["O", "O"], ["x", "x#"], "label", 2),
    ],
)
def test_bio_errors(tmp_path, nlp, seq_in, seq_out, label, bad_file, bad_line):
    folder = write_bio(tmp_path / "bad", seq_in, seq_out, label)
    with pytest.raises(DataError) as excinfo:
        read_bio(folder, nlp.vocab)
    assert_error(excinfo, str(folder / bad_file), bad_line)


# ------------------------------------------------------------------------- jsonl


def test_read_jsonl_good(tmp_path, nlp):
    path = write_lines(
        tmp_path / "train.jsonl",
        [
            jl(text="pickup my order at orange store", spans=[{"start": 19, "end": 25, "label": "STORE"}],
               intents=["store_lookup"]),
            jl(text="buy oranges, please!", spans=[{"start": 4, "end": 11, "label": "PRODUCT"}],
               intents=["add_to_cart", "product_search"]),
            jl(text="where is my order", spans=[], intents=["order_status"]),
        ],
    )
    stats = ConvertStats()
    docs = read_jsonl(path, nlp, stats=stats)
    assert [d.text for d in docs][1] == "buy oranges, please!"
    assert ents(docs[0]) == [("orange", "STORE")]
    assert ents(docs[1]) == [("oranges", "PRODUCT")]
    assert ents(docs[2]) == []
    labels = {"store_lookup", "add_to_cart", "product_search", "order_status"}
    assert all(set(d.cats) == labels for d in docs)
    assert docs[1].cats == {"add_to_cart": 1.0, "order_status": 0.0, "product_search": 1.0, "store_lookup": 0.0}
    assert stats.entity_counts == {"PRODUCT": 1, "STORE": 1}
    assert stats.n_multi_intent == 1


@pytest.mark.parametrize(
    "lines,bad_line,needle",
    [
        # misaligned span: "orang" is part of a token
        ([jl(text="ok", spans=[], intents=["a"]),
          jl(text="buy oranges now", spans=[{"start": 4, "end": 9, "label": "P"}], intents=["a"])],
         2, "'orang' [4:9]"),
        # span including trailing whitespace
        ([jl(text="buy oranges now", spans=[{"start": 4, "end": 12, "label": "P"}], intents=["a"])],
         1, "[4:12]"),
        # overlapping spans
        ([jl(text="ok", spans=[], intents=["a"]), jl(text="ok", spans=[], intents=["a"]),
          jl(text="apple valley store", spans=[{"start": 0, "end": 12, "label": "STORE"},
                                               {"start": 6, "end": 12, "label": "X"}], intents=["a"])],
         3, "overlapping"),
        # invalid JSON
        ([jl(text="ok", spans=[], intents=["a"]), '{"text": "oops", "spans": [}'], 2, "invalid JSON"),
        # blank line
        ([jl(text="ok", spans=[], intents=["a"]), "", jl(text="ok", spans=[], intents=["a"])], 2, "blank line"),
        # span out of range
        ([jl(text="ok", spans=[{"start": 0, "end": 5, "label": "P"}], intents=["a"])], 1, "out of range"),
        # missing intents
        ([jl(text="ok", spans=[])], 1, "intents"),
    ],
)
def test_jsonl_errors(tmp_path, nlp, lines, bad_line, needle):
    path = write_lines(tmp_path / "bad.jsonl", lines)
    with pytest.raises(DataError) as excinfo:
        read_jsonl(path, nlp)
    assert_error(excinfo, str(path), bad_line)
    assert needle in str(excinfo.value)


# ---------------------------------------------------------------------- brackets


def test_parse_brackets():
    text, spans = parse_brackets("wake me up at [time : five am] [date : tomorrow]")
    assert text == "wake me up at five am tomorrow"
    assert [(text[s:e], lab) for s, e, lab in spans] == [("five am", "time"), ("tomorrow", "date")]


def test_read_brackets_good(tmp_path, nlp):
    path = write_lines(
        tmp_path / "massive.jsonl",
        [
            jl(annot_utt="wake me up at [time : five am] please", intent="alarm_set"),
            jl(annot_utt="what's the weather in [place_name : new york]", intent="weather_query"),
            jl(annot_utt="olly quiet", intent="audio_volume_mute"),
        ],
    )
    docs = read_brackets(path, nlp)
    assert docs[0].text == "wake me up at five am please"
    assert ents(docs[0]) == [("five am", "time")]
    assert ents(docs[1]) == [("new york", "place_name")]
    assert ents(docs[2]) == []
    assert docs[2].cats == {"alarm_set": 0.0, "audio_volume_mute": 1.0, "weather_query": 0.0}


@pytest.mark.parametrize(
    "annot,needle",
    [
        ("wake me up at [time : five am", "unbalanced '['"),
        ("wake me up at time : five am]", "unbalanced ']'"),
        ("wake me [time : at [date : five] am]", "nested"),
        ("wake me up at [five am]", "' : '"),
        ("wake me up at [time : ]", "empty"),
        ("buy [product : orange]s now", "does not align"),
    ],
)
def test_brackets_errors(tmp_path, nlp, annot, needle):
    path = write_lines(
        tmp_path / "bad.jsonl",
        [jl(annot_utt="ok [time : now]", intent="a"), jl(annot_utt="fine", intent="b"), jl(annot_utt=annot, intent="a")],
    )
    with pytest.raises(DataError) as excinfo:
        read_brackets(path, nlp)
    assert_error(excinfo, str(path), 3)
    assert needle in str(excinfo.value)


# ----------------------------------------------------------------------- convert


def test_convert_unseen_labels_and_round_trip(tmp_path, nlp):
    train = write_lines(
        tmp_path / "train.jsonl",
        [
            jl(text="orange store hours", spans=[{"start": 0, "end": 6, "label": "STORE"}], intents=["store_lookup"]),
            jl(text="buy plums", spans=[{"start": 4, "end": 9, "label": "PRODUCT"}], intents=["add_to_cart"]),
        ],
    )
    test = write_lines(
        tmp_path / "test.jsonl",
        [
            jl(text="plum store hours", spans=[{"start": 0, "end": 4, "label": "STORE"}], intents=["store_lookup"]),
            jl(text="return orange sweater in size m",
               spans=[{"start": 7, "end": 21, "label": "PRODUCT"}, {"start": 30, "end": 31, "label": "SIZE"}],
               intents=["return_item"]),
        ],
    )
    out = tmp_path / "nested" / "dir" / "test.spacy"
    stats = convert("jsonl", test, out, train=train)
    assert out.exists()
    assert stats.n_docs == 2 and stats.n_ents == 3
    assert stats.unseen_intents == {"return_item": 1}
    assert stats.unseen_entity_types == {"SIZE": 1}
    assert len(stats.warnings) == 2
    assert stats.labels == ["add_to_cart", "return_item", "store_lookup"]

    docs = list(DocBin().from_disk(out).get_docs(nlp.vocab))
    assert [d.text for d in docs] == ["plum store hours", "return orange sweater in size m"]
    assert ents(docs[0]) == [("plum", "STORE")]
    assert ents(docs[1]) == [("orange sweater", "PRODUCT"), ("m", "SIZE")]
    # complete cats: train's add_to_cart is present (0.0) although the input never uses it
    assert docs[0].cats == {"add_to_cart": 0.0, "return_item": 0.0, "store_lookup": 1.0}
    assert docs[1].cats == {"add_to_cart": 0.0, "return_item": 1.0, "store_lookup": 0.0}


def test_convert_bio_round_trip_without_train(tmp_path, nlp):
    out = tmp_path / "out.spacy"
    stats = convert("bio", good_bio(tmp_path), out)
    assert stats.unseen_intents == {} and stats.warnings == []
    docs = list(DocBin().from_disk(out).get_docs(nlp.vocab))
    assert len(docs) == 3
    assert ents(docs[0]) == [("boston", "from"), ("new york", "to")]
    assert docs[1].cats == {"airfare": 1.0, "flight": 1.0, "ground_service": 0.0}


def test_convert_unknown_format(tmp_path):
    with pytest.raises(ValueError):
        convert("conll", tmp_path, tmp_path / "x.spacy")


def test_convert_error_in_train_names_train_file(tmp_path):
    train = write_lines(tmp_path / "train.jsonl", [jl(text="ok", intents=["a"]), "{bad"])
    test = write_lines(tmp_path / "test.jsonl", [jl(text="ok", intents=["a"])])
    with pytest.raises(DataError) as excinfo:
        convert("jsonl", test, tmp_path / "t.spacy", train=train)
    assert_error(excinfo, str(train), 2)
    assert not (tmp_path / "t.spacy").exists()


def test_convert_cli_runs(tmp_path, capsys):
    from spacy_multitask_intent.cli.convert import convert_cli

    out = tmp_path / "o.spacy"
    convert_cli("bio", good_bio(tmp_path), out, train=None)
    assert out.exists()
    assert "3 docs" in capsys.readouterr().out


@pytest.mark.skipif(not (SHARED_DATA / "atis").exists(), reason=f"shared ATIS data not available at {SHARED_DATA}")
def test_real_atis_test_split(tmp_path):
    atis = SHARED_DATA / "atis"
    stats = convert("bio", atis / "test", tmp_path / "atis_test.spacy", train=atis / "train")
    assert stats.n_docs == 893
    assert "atis_day_name" in stats.unseen_intents
    assert stats.unseen_entity_types  # ATIS test has entity types never seen in train
    assert any("atis_day_name" in w for w in stats.warnings)
    docs = list(DocBin().from_disk(tmp_path / "atis_test.spacy").get_docs(spacy.blank("en").vocab))
    assert len(docs) == 893
    assert all(set(d.cats) == set(stats.labels) for d in docs)
    assert all(sum(d.cats.values()) >= 1 for d in docs)
