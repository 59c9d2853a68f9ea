"""convert prodigy: Prodigy JSONL in (merged NER + textcat exports, file:line
errors) and the round trip records -> record_to_prodigy -> convert prodigy."""
import json
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_multitask_intent.cli.convert import convert_cli
from spacy_multitask_intent.data.convert import ConvertStats, DataError, convert
from spacy_multitask_intent.data.prodigy import read_prodigy
from spacy_multitask_intent.records import parse_texts, record_to_prodigy
from conftest import TOY, assert_error, ents, fresh_nlp, intents, toy_examples, train

OPTIONS = [{"id": i, "text": i} for i in ("add_to_cart", "product_search", "store_lookup", "order_status")]


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf8")
    return path


def ner_row(text, spans, h, answer="accept", tokens=True):
    """A ner_manual export row: tokens as spaCy makes them, spans with token ids."""
    doc = spacy.blank("en").make_doc(text)
    row = {"text": text, "_input_hash": h, "_task_hash": h + 1000, "_view_id": "ner_manual", "answer": answer}
    if tokens:
        row["tokens"] = [{"text": t.text, "start": t.idx, "end": t.idx + len(t), "id": t.i, "ws": bool(t.whitespace_)}
                         for t in doc]
    out = []
    for start, end, label in spans:
        span = doc.char_span(start, end)
        sp = {"start": start, "end": end, "label": label}
        if span is not None:
            sp.update(token_start=span.start, token_end=span.end - 1)
        out.append(sp)
    row["spans"] = out
    return row


def test_ner_and_textcat_exports_merged_by_input_hash(tmp_path, nlp):
    ner = write_jsonl(tmp_path / "ner.jsonl", [
        ner_row("pickup my order at orange store", [(19, 25, "STORE")], 1),
        ner_row("buy apple juice", [(4, 15, "PRODUCT")], 2),
        ner_row("where is my order", [], 3),
        ner_row("buy a pie", [(6, 9, "PRODUCT")], 4, answer="reject"),
        ner_row("asdf", [], 5, answer="ignore"),
        ner_row("add lemon cake  to cart", [(4, 14, "PRODUCT")], 6),  # two spaces: a whitespace token
    ])
    textcat = write_jsonl(tmp_path / "textcat.jsonl", [
        # choice interface: the selected options
        {"text": "buy apple juice", "_input_hash": 2, "options": OPTIONS, "accept": ["add_to_cart", "product_search"],
         "_view_id": "choice", "answer": "accept"},
        {"text": "pickup my order at orange store", "_input_hash": 1, "options": OPTIONS, "accept": ["store_lookup"],
         "_view_id": "choice", "answer": "accept"},
        {"text": "where is my order", "_input_hash": 3, "options": OPTIONS, "accept": ["order_status"],
         "answer": "reject"},
        # binary textcat: label + answer; its spans only highlight a pattern match
        {"text": "where is my order", "_input_hash": 3, "label": "order_status", "answer": "accept",
         "_view_id": "classification", "spans": [{"start": 12, "end": 17, "label": "order_status"}]},
        {"text": "where is my order", "_input_hash": 3, "label": "store_lookup", "answer": "reject",
         "_view_id": "classification"},
        # no _input_hash: merged by the text
        {"text": "add lemon cake  to cart", "label": "add_to_cart", "answer": "accept"},
        # only in the textcat file: a doc with an intent and no entities
        {"text": "find lemon cake", "_input_hash": 7, "options": OPTIONS, "accept": ["product_search"],
         "answer": "accept"},
    ])
    stats = ConvertStats()
    docs = read_prodigy([ner, textcat], nlp, stats=stats)
    assert [d.text for d in docs] == [
        "pickup my order at orange store", "buy apple juice", "where is my order", "add lemon cake  to cart",
        "find lemon cake",
    ]
    assert [ents(d) for d in docs] == [
        [("orange", "STORE")], [("apple juice", "PRODUCT")], [], [("lemon cake", "PRODUCT")], [],
    ]
    assert [intents(d) for d in docs] == [
        ["store_lookup"], ["add_to_cart", "product_search"], ["order_status"], ["add_to_cart"], ["product_search"],
    ]
    # every option is a cats label, chosen or not
    assert all(set(d.cats) == {"add_to_cart", "order_status", "product_search", "store_lookup"} for d in docs)
    # the annotator's tokens, whitespace token included
    assert [t.text for t in docs[3]] == ["add", "lemon", "cake", " ", "to", "cart"]
    assert stats.skipped == {"reject": 3, "ignore": 1, "highlight spans": 1}
    assert any("Skipped 3 rejected and 1 ignored" in n for n in stats.notes)
    assert any("Merged 9 accepted row(s) into 5 doc(s)" in n for n in stats.notes)
    assert stats.n_docs == 5 and stats.n_no_intent == 0
    # locations: intents from the textcat file, entities from the ner file
    assert stats.doc_locations[1] == (f"{textcat}:1", f"{ner}:2")


def test_without_tokens_the_text_is_tokenised(tmp_path, nlp):
    path = write_jsonl(tmp_path / "a.jsonl", [
        {"text": "buy oranges, please!", "spans": [{"start": 4, "end": 11, "label": "PRODUCT"}], "accept": ["buy"]},
    ])
    (doc,) = read_prodigy(path, nlp)
    assert ents(doc) == [("oranges", "PRODUCT")] and intents(doc) == ["buy"]
    assert [t.text for t in doc] == ["buy", "oranges", ",", "please", "!"]


@pytest.mark.parametrize(
    "rows,bad_line,needle",
    [
        # overlapping spans in one row
        ([{"text": "ok", "accept": ["a"]},
          {"text": "apple valley store", "spans": [{"start": 0, "end": 12, "label": "STORE"},
                                                   {"start": 6, "end": 18, "label": "X"}], "accept": ["a"]}],
         2, "overlapping"),
        # offsets that cut a token: 'orang' in 'oranges'
        ([{"text": "buy oranges now", "spans": [{"start": 4, "end": 9, "label": "P"}], "accept": ["a"]}],
         1, "does not align"),
        # ... and with the annotator's tokens given
        ([{"text": "ok"}, ner_row("buy oranges now", [(4, 9, "P")], 1)], 2, "does not align"),
        # token_start/token_end disagree with the offsets
        ([{**ner_row("buy apple juice", [(4, 15, "P")], 1),
           "spans": [{"start": 4, "end": 15, "label": "P", "token_start": 1, "token_end": 1}]}], 1, "token_end"),
        # tokens that do not match the text
        ([{"text": "buy apples", "tokens": [{"text": "buy", "start": 0, "end": 3}, {"text": "apple", "start": 4, "end": 9}],
           "accept": ["a"]}], 1, "not covered by any token"),
        ([{"text": "buy apples", "tokens": [{"text": "bye", "start": 0, "end": 3}]}], 1, "does not match the text"),
        ([{"text": "buy", "answer": "maybe"}], 1, "'answer'"),
        ([{"text": "buy", "accept": "a"}], 1, "'accept'"),
        ([{"text": "buy", "options": OPTIONS, "accept": ["checkout"]}], 1, "not one of the options"),
        ([{"text": "buy", "options": [{"id": 1, "text": "Positive"}], "accept": []}], 1, "intent name"),
        ([{"text": "buy", "label": ""}], 1, "'label'"),
        ([{"text": "buy", "spans": [{"start": 0, "end": 9, "label": "P"}]}], 1, "out of range"),
        ([{"text": "", "accept": ["a"]}], 1, "'text'"),
        (['{"text": "buy", '], 1, "invalid JSON"),
        ([{"text": "a", "_input_hash": 5}, {"text": "b", "_input_hash": 5}], 2, "different text"),
    ],
)
def test_bad_rows_name_the_line(tmp_path, nlp, rows, bad_line, needle):
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError) as excinfo:
        read_prodigy(path, nlp)
    assert_error(excinfo, path, bad_line)
    assert needle in str(excinfo.value)


def test_overlap_across_merged_files_names_both_rows(tmp_path, nlp):
    a = write_jsonl(tmp_path / "a.jsonl", [ner_row("apple valley store", [(0, 12, "STORE")], 9)])
    b = write_jsonl(tmp_path / "b.jsonl", [{"text": "x"}, ner_row("apple valley store", [(6, 18, "STORE")], 9)])
    with pytest.raises(DataError) as excinfo:
        read_prodigy([a, b], nlp)
    assert_error(excinfo, b, 2)
    assert f"from {a}:1" in str(excinfo.value) and "overlapping" in str(excinfo.value)


def test_same_span_twice_is_one_entity(tmp_path, nlp):
    a = write_jsonl(tmp_path / "a.jsonl", [ner_row("buy apple juice", [(4, 15, "P")], 2)])
    b = write_jsonl(tmp_path / "b.jsonl", [ner_row("buy apple juice", [(4, 15, "P")], 2)])
    (doc,) = read_prodigy([a, b], nlp)
    assert ents(doc) == [("apple juice", "P")]


def test_unseen_intent_and_entity_type_counted_with_their_line(tmp_path, nlp):
    train_file = write_jsonl(tmp_path / "train.jsonl", [
        {"text": "buy apples", "spans": [{"start": 4, "end": 10, "label": "PRODUCT"}], "accept": ["buy"]},
    ])
    dev = write_jsonl(tmp_path / "dev.jsonl", [
        {"text": "buy pears", "spans": [{"start": 4, "end": 9, "label": "PRODUCT"}], "accept": ["buy"]},
        {"text": "return pears in size m", "spans": [{"start": 21, "end": 22, "label": "SIZE"}], "accept": ["return"]},
    ])
    out = tmp_path / "dev.spacy"
    stats = convert("prodigy", dev, out, train=[train_file])
    assert stats.unseen_intents == {"return": 1} and stats.unseen_entity_types == {"SIZE": 1}
    assert f"{dev}:2: intent 'return' is not in train" in stats.warnings[0]
    assert f"{dev}:2: entity type 'SIZE' is not in train" in stats.warnings[1]
    docs = list(DocBin().from_disk(out).get_docs(nlp.vocab))
    assert [d.cats for d in docs] == [{"buy": 1.0, "return": 0.0}, {"buy": 0.0, "return": 1.0}]


def test_cli_merges_files(tmp_path, capsys):
    a = write_jsonl(tmp_path / "ner.jsonl", [ner_row("buy apple juice", [(4, 15, "PRODUCT")], 2)])
    b = write_jsonl(tmp_path / "cat.jsonl", [{"text": "buy apple juice", "_input_hash": 2, "label": "buy",
                                               "answer": "accept"}])
    out = tmp_path / "o.spacy"
    convert_cli("prodigy", [a, b], out, train=None)
    printed = capsys.readouterr().out
    assert "Wrote 1 docs" in printed and "Merged 2 accepted row(s) into 1 doc(s)" in printed


def test_several_inputs_refused_for_one_input_formats(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [{"text": "x", "intents": ["a"]}])
    with pytest.raises(ValueError, match="reads one input"):
        convert("jsonl", [a, a], tmp_path / "o.spacy")


# --------------------------------------------------------------------------- round trip


@pytest.fixture(scope="module")
def trained(tiny_bert):
    nlp = fresh_nlp(tiny_bert, update_mode="joint")
    train(nlp, toy_examples(nlp), steps=40)
    return nlp


ROUND_TRIP_TEXTS = [t for t, _, _ in TOY] + [
    "pickup my order at orange store!",
    "buy  orange at target",  # two spaces
    "add apple juice to my cart, please",
]


@pytest.mark.parametrize("with_tokens", [False, True])
def test_round_trip_records_to_prodigy_and_back(trained, tmp_path, with_tokens):
    records = parse_texts(trained, ROUND_TRIP_TEXTS, tokens=with_tokens)
    labels = trained.get_pipe("intent_ner").intent_labels
    # the trained model finds entities and intents, so the round trip has something to carry
    assert sum(len(r["entities"]) for r in records) >= len(TOY) // 2
    assert all(r["intents"] for r in records)
    tasks = [record_to_prodigy(r, labels) for r in records]
    if with_tokens:
        assert all("token_start" in sp for task in tasks for sp in task["spans"])
    path = write_jsonl(tmp_path / "review.jsonl", tasks)
    out = tmp_path / "review.spacy"
    stats = convert("prodigy", path, out)
    assert stats.warnings == [] and stats.skipped == {}
    docs = list(DocBin().from_disk(out).get_docs(trained.vocab))
    assert [d.text for d in docs] == ROUND_TRIP_TEXTS
    for record, doc in zip(records, docs):
        assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == [
            (e["start"], e["end"], e["label"]) for e in record["entities"]
        ]
        assert intents(doc) == record["intents"]
        assert set(doc.cats) == set(labels)
    # and the pipeline's tokens come back as they were
    assert [[t.text for t in d] for d in docs] == [[t.text for t in trained.make_doc(x)] for x in ROUND_TRIP_TEXTS]


def test_cli_refuses_several_inputs_for_one_input_formats(tmp_path, capsys):
    a = write_jsonl(tmp_path / "a.jsonl", [{"text": "x", "intents": ["a"]}])
    with pytest.raises(SystemExit):
        convert_cli("jsonl", [a, a], tmp_path / "o.spacy", train=None)
    assert "reads one input" in capsys.readouterr().out


SHARED_DATA = Path(__file__).parents[2] / "shared" / "data"


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="shared ATIS data not available")
def test_atis_as_prodigy_ner_and_textcat_files_gives_the_same_docs(tmp_path, nlp):
    """ATIS test (bio) written as a Prodigy NER export and a choice export merges back to the same docs."""
    convert("bio", SHARED_DATA / "atis" / "test", tmp_path / "bio.spacy")
    ref = list(DocBin().from_disk(tmp_path / "bio.spacy").get_docs(nlp.vocab))
    ner = write_jsonl(tmp_path / "ner.jsonl", [
        {"text": d.text, "_input_hash": i, "answer": "accept",
         "spans": [{"start": e.start_char, "end": e.end_char, "label": e.label_} for e in d.ents]}
        for i, d in enumerate(ref)
    ])
    cat = write_jsonl(tmp_path / "cat.jsonl", [
        {"text": d.text, "_input_hash": i, "answer": "accept", "options": [{"id": k, "text": k} for k in d.cats],
         "accept": intents(d)}
        for i, d in enumerate(ref)
    ])
    convert("prodigy", [ner, cat], tmp_path / "prodigy.spacy")
    docs = list(DocBin().from_disk(tmp_path / "prodigy.spacy").get_docs(nlp.vocab))
    assert len(docs) == len(ref) == 893

    def key(d):
        return d.text, [(e.start_char, e.end_char, e.label_) for e in d.ents], d.cats

    assert [key(d) for d in docs] == [key(d) for d in ref]
