"""records.py: the one batch function, texts in and plain records out."""
import json

import pytest

from spacy_multitask_intent.records import parse_texts
from conftest import TOY, fresh_nlp, toy_examples, train


@pytest.fixture(scope="module")
def trained(tiny_bert):
    nlp = fresh_nlp(tiny_bert, update_mode="joint")
    train(nlp, toy_examples(nlp), steps=40)
    return nlp


def test_records_match_the_docs(trained):
    texts = [t for t, _, _ in TOY]
    records = parse_texts(trained, texts, tokens=True)
    assert [r["text"] for r in records] == texts
    json.dumps(records)  # plain JSON types only
    pipe = trained.get_pipe("intent_ner")
    for record, doc in zip(records, trained.pipe(texts)):
        assert [(e["start"], e["end"], e["label"]) for e in record["entities"]] == [
            (e.start_char, e.end_char, e.label_) for e in doc.ents
        ]
        assert record["intents"] == pipe.decide_intents(doc)
        ranked = list(record["intent_scores"].values())
        assert ranked == sorted(ranked, reverse=True)
        assert record["intent_scores"] == pytest.approx(doc.cats, abs=1e-5)
        for e in record["entities"]:
            assert 0.0 < e["confidence"] <= 1.0
            assert record["text"][e["start"] : e["end"]] == e["text"]
        assert [t["text"] for t in record["tokens"]] == [t.text for t in doc]
        assert record["tokens"][0]["intent"] == pytest.approx(doc[0]._.intent, abs=1e-5)


def test_whitespace_only_text_gets_no_entities_and_no_intents(trained):
    for text in ["   ", "\n\t ", ""]:
        (record,) = parse_texts(trained, [text])
        assert record["entities"] == [] and record["intents"] == [] and record["intent_scores"] == {}
    doc = trained("   ")
    assert not doc.cats and doc._.intent_scores is None


def test_non_string_is_refused_with_its_position(trained):
    with pytest.raises(TypeError, match="text 1 is int"):
        parse_texts(trained, ["hi", 3])
