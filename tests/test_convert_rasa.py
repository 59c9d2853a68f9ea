"""convert rasa: Rasa 3.x NLU YAML in, with file:line errors."""
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_multitask_intent.cli.convert import convert_cli
from spacy_multitask_intent.data.convert import ConvertStats, DataError, convert
from spacy_multitask_intent.data.rasa import parse_rasa_example, read_rasa
from conftest import assert_error, ents, intents

# every syntax the converter reads; the line numbers below are this file's lines
NLU = """\
version: "3.1"
nlu:
- intent: check_balance
  examples: |
    - what is my balance
    - balance of my [savings](account) account

    - show [NYC]{"entity": "city", "value": "New York City"} branches
    - fly from [Berlin]{"entity": "city", "role": "departure"} to [SF]{"entity": "city", "role": "destination"}
    - move it to [checking](account:checking_account) please
    - call [mom]{"entity": "contact", "group": "1"}
- synonym: New York City
  examples: |
    - NYC
    - new york
- regex: zipcode
  examples: |
    - \\d{5}
- lookup: city
  examples: |
    - Berlin
    - Paris
- intent: greet
  metadata: {owner: support}
  examples:
  - text: |
      hi [there](who)
    metadata:
      sentiment: neutral
  - text: hello

responses:
  utter_greet:
  - text: Hello!
"""


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf8")
    return path


def test_every_syntax(tmp_path, nlp):
    path = write(tmp_path / "nlu.yml", NLU)
    stats = ConvertStats()
    docs = read_rasa(path, nlp, stats=stats)
    assert [d.text for d in docs] == [
        "what is my balance",
        "balance of my savings account",
        "show NYC branches",
        "fly from Berlin to SF",
        "move it to checking please",
        "call mom",
        "hi there",
        "hello",
    ]
    assert [ents(d) for d in docs] == [
        [],
        [("savings", "account")],
        [("NYC", "city")],  # the value (synonym mapping) is not the span
        [("Berlin", "city.departure"), ("SF", "city.destination")],  # role kept in the label
        [("checking", "account")],
        [("mom", "contact")],  # group not kept
        [("there", "who")],
        [],
    ]
    assert [intents(d) for d in docs] == [["check_balance"]] * 6 + [["greet"]] * 2
    assert all(set(d.cats) == {"check_balance", "greet"} for d in docs)
    # each doc's location is its example's line in the file
    lines = [int(loc.rsplit(":", 1)[1]) for loc, _ in stats.doc_locations]
    assert lines == [5, 6, 8, 9, 10, 11, 27, 30]
    # what was not converted is counted and noted
    assert stats.skipped == {"synonym": 1, "regex": 1, "lookup": 1, "value": 2, "group": 1, "metadata": 2,
                             "section": 1}
    notes = " ".join(stats.notes)
    assert "1 synonym(s), 1 regex(es), 1 lookup table(s)" in notes
    assert "responses (1 file(s))" in notes
    assert "2 entity value(s)" in notes and "2 entity role(s)" in notes and "1 entity group(s)" in notes
    assert stats.n_docs == 8 and stats.n_ents == 7
    assert stats.entity_counts == {"account": 2, "city": 1, "city.departure": 1, "city.destination": 1,
                                   "contact": 1, "who": 1}


def test_parse_example_offsets():
    text, spans = parse_rasa_example('from [Berlin]{"entity": "city", "role": "from"} to [New York](city)')
    assert text == "from Berlin to New York"
    assert [(text[s:e], lab) for s, e, lab in spans] == [("Berlin", "city.from"), ("New York", "city")]


def test_several_files_and_a_folder_are_merged(tmp_path, nlp):
    data = tmp_path / "data"
    write(data / "nlu" / "a.yml", "nlu:\n- intent: greet\n  examples: |\n    - hi\n")
    write(data / "nlu" / "b.yaml", "nlu:\n- intent: bye\n  examples: |\n    - see you [tomorrow](date)\n")
    write(data / "stories.yml", "version: '3.1'\nstories:\n- story: s\n  steps:\n  - intent: greet\n")
    stats = ConvertStats()
    docs = read_rasa([data], nlp, stats=stats)
    assert [d.text for d in docs] == ["hi", "see you tomorrow"]
    assert docs[0].cats == {"bye": 0.0, "greet": 1.0}
    assert stats.skipped == {"file without nlu": 1}
    assert any("stories.yml" in n for n in stats.notes)
    # two files given explicitly: same result, in the given order
    docs = read_rasa([data / "nlu" / "b.yaml", data / "nlu" / "a.yml"], nlp)
    assert [d.text for d in docs] == ["see you tomorrow", "hi"]


def test_explicit_file_without_nlu_is_an_error(tmp_path, nlp):
    path = write(tmp_path / "stories.yml", "stories:\n- story: s\n")
    with pytest.raises(DataError, match="no 'nlu:' section"):
        read_rasa(path, nlp)


BAD_HEAD = "nlu:\n- intent: a\n  examples: |\n    - fine [here](place)\n"  # example 1 on line 4


@pytest.mark.parametrize(
    "example,needle",
    [
        # the bracketed text does not end up in the example: markup left unparsed
        ("buy [orange now", "stray '['"),
        ("buy orange] now", "stray ']'"),
        ("buy [orange] now", "stray '['"),  # no (type)
        ("buy [orange](fruit now", "stray '['"),  # unclosed (
        ("buy [](fruit) now", "stray '['"),  # empty text
        ("buy [ ](fruit) now", "empty entity text"),
        ('buy [orange]{"entity": fruit} now', "not valid JSON"),
        ('buy [orange]{"role": "x"} now', "no \"entity\""),
        ('buy [orange]{"entity": "fruit", "colour": "o"} now', "unknown key"),
        ("buy [orange](fruit type) now", "contains whitespace"),
        # the span cuts a token: 'orange' inside 'oranges'
        ("buy [orange](fruit)s now", "does not align"),
        ("buy [orange ](fruit)now", "does not align"),
    ],
)
def test_bad_markup_names_the_line(tmp_path, nlp, example, needle):
    path = write(tmp_path / "bad.yml", BAD_HEAD + "\n    - ok\n    - " + example + "\n")
    with pytest.raises(DataError) as excinfo:
        read_rasa(path, nlp)
    assert_error(excinfo, path, 7)
    assert needle in str(excinfo.value)


@pytest.mark.parametrize(
    "text,line,needle",
    [
        (BAD_HEAD + "    just text\n", 5, "does not start with '-'"),
        (BAD_HEAD + "- intent: b\n", 5, "has no 'examples'"),
        (BAD_HEAD + "- intnet: b\n  examples: |\n    - x\n", 5, "exactly one of intent"),
        (BAD_HEAD + "- intent: b\n  examples: |\n    - x\n  example: y\n", 5, "unknown key"),
        (BAD_HEAD + "- intent: b\n  examples:\n  - txt: x\n", 7, "needs 'text'"),
        (BAD_HEAD + "- intent: b\n  examples: [x\n", 6, "invalid YAML"),
        ("nlu:\n- intent: a\n  examples: |\n    - ok\n  - buy\n", 5, "invalid YAML"),
    ],
)
def test_bad_structure_names_the_line(tmp_path, nlp, text, line, needle):
    path = write(tmp_path / "bad.yml", text)
    with pytest.raises(DataError) as excinfo:
        read_rasa(path, nlp)
    assert_error(excinfo, path, line)
    assert needle in str(excinfo.value)


def test_unseen_intent_and_entity_type_counted_with_their_line(tmp_path, nlp):
    train = write(tmp_path / "train.yml", "nlu:\n- intent: greet\n  examples: |\n    - hi [bob](name)\n")
    test = write(
        tmp_path / "test.yml",
        "nlu:\n"
        "- intent: greet\n"
        "  examples: |\n"
        "    - hello [ann](name)\n"
        "    - hi from [paris](city)\n"  # line 5: entity type absent from train
        "- intent: bye\n"
        "  examples: |\n"
        "    - bye\n"  # line 8: intent absent from train
        "    - see you in [rome](city)\n",
    )
    out = tmp_path / "test.spacy"
    stats = convert("rasa", test, out, train=train)
    assert stats.unseen_intents == {"bye": 2}
    assert stats.unseen_entity_types == {"city": 2}
    assert len(stats.warnings) == 2
    assert f"{test}:8: intent 'bye' is not in train" in stats.warnings[0]
    assert f"{test}:5: entity type 'city' is not in train" in stats.warnings[1]
    docs = list(DocBin().from_disk(out).get_docs(nlp.vocab))
    assert [intents(d) for d in docs] == [["greet"], ["greet"], ["bye"], ["bye"]]
    assert all(set(d.cats) == {"bye", "greet"} for d in docs)


def test_cli(tmp_path, capsys):
    a = write(tmp_path / "a.yml", NLU)
    b = write(tmp_path / "b.yml", "nlu:\n- intent: bye\n  examples: |\n    - bye\n")
    out = tmp_path / "o.spacy"
    convert_cli("rasa", [a, b], out, train=None)
    printed = capsys.readouterr().out
    assert "Wrote 9 docs" in printed and "1 synonym(s)" in printed
    assert len(DocBin().from_disk(out)) == 9


def test_cli_stops_with_file_and_line(tmp_path, capsys):
    bad = write(tmp_path / "bad.yml", BAD_HEAD + "\n    - ok\n    - buy [orange](fruit)s now\n")
    with pytest.raises(SystemExit) as excinfo:
        convert_cli("rasa", [bad], tmp_path / "o.spacy", train=None)
    assert excinfo.value.code == 1
    assert f"{bad}:7:" in " ".join(capsys.readouterr().out.split())
    assert not (tmp_path / "o.spacy").exists()


def test_dash_without_space_and_blank_lines_as_in_rasa(tmp_path, nlp):
    path = write(tmp_path / "nlu.yml", "nlu:\n- intent: a\n  examples: |\n    -hi\n\n    - yo\n")
    stats = ConvertStats()
    docs = read_rasa(path, nlp, stats=stats)
    assert [d.text for d in docs] == ["hi", "yo"]
    assert [loc for loc, _ in stats.doc_locations] == [f"{path}:4", f"{path}:6"]


SHARED_DATA = Path(__file__).parents[2] / "shared" / "data"


def to_rasa_markup(doc) -> str:
    text, pos, parts = doc.text, 0, []
    for e in doc.ents:
        parts += [text[pos:e.start_char], f"[{e.text}]({e.label_})"]
        pos = e.end_char
    return "".join(parts + [text[pos:]])


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="shared ATIS data not available")
def test_atis_as_rasa_gives_the_same_docs(tmp_path, nlp):
    """ATIS test (bio) written as Rasa YAML converts back to the same texts, entities and intents."""
    convert("bio", SHARED_DATA / "atis" / "test", tmp_path / "bio.spacy")
    ref = [d for d in DocBin().from_disk(tmp_path / "bio.spacy").get_docs(nlp.vocab) if len(intents(d)) == 1]
    by_intent = {}
    for doc in ref:
        by_intent.setdefault(intents(doc)[0], []).append(doc)
    lines = ["nlu:"]
    for intent, docs in by_intent.items():
        lines += [f"- intent: {intent}", "  examples: |"] + [f"    - {to_rasa_markup(d)}" for d in docs]
    path = write(tmp_path / "nlu.yml", "\n".join(lines) + "\n")
    docs = read_rasa(path, nlp)
    expected = [d for group in by_intent.values() for d in group]
    assert len(docs) == len(expected) > 800

    def key(d):
        return d.text, [(e.start_char, e.end_char, e.label_) for e in d.ents], intents(d)

    assert [key(d) for d in docs] == [key(d) for d in expected]
