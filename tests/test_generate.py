from collections import Counter, defaultdict

import pytest
import spacy
import srsly

from spacy_multitask_intent.data.convert import ConvertStats, convert, read_jsonl
from spacy_multitask_intent.data.generate import AMBIGUOUS_STORES, INTENTS, generate, write_splits

N = 1500


@pytest.fixture(scope="module")
def records():
    return generate(N, seed=0)


def test_same_seed_identical(records):
    assert generate(N, seed=0) == records


def test_different_seed_differs(records):
    other = generate(N, seed=1)
    assert other != records
    assert len({r["text"] for r in other} ^ {r["text"] for r in records}) > N // 2


def test_size_unique_and_length(records):
    assert len(records) == N
    assert len({r["text"].lower() for r in records}) == N
    for r in records:
        assert 3 <= len(r["text"].split()) <= 15, r["text"]
        assert r["intents"] and all(i in INTENTS for i in r["intents"])


def test_intents_and_entities_present(records):
    intents = Counter(i for r in records for i in r["intents"])
    for intent in INTENTS:
        assert intents[intent] >= 0.05 * N, intents
    assert any(len(r["intents"]) > 1 for r in records)
    labels = Counter(s["label"] for r in records for s in r["spans"])
    assert labels["STORE"] > 0.2 * N and labels["PRODUCT"] > 0.2 * N


def span_texts(rec, label):
    return [rec["text"][s["start"]:s["end"]].lower() for s in rec["spans"] if s["label"] == label]


def test_store_only_in_store_queries(records):
    for r in records:
        if "store_lookup" not in r["intents"]:
            assert not span_texts(r, "STORE"), r


def test_hard_negatives(records):
    as_store = defaultdict(int)
    as_product = defaultdict(int)
    for r in records:
        if "store_lookup" in r["intents"]:
            for t in span_texts(r, "STORE"):
                as_store[t] += 1
        else:
            for t in span_texts(r, "PRODUCT"):
                as_product[t] += 1
    both = sorted(w for w in as_store if as_product.get(w))
    assert len(both) >= 3, both
    assert {"orange", "plum", "walnut"} <= set(both)
    # a store-like word that is neither STORE nor a standalone PRODUCT ("orange juice")
    assert any("orange juice" in span_texts(r, "PRODUCT") for r in records)
    # place names used in non-store queries are not tagged
    store_names = {s for s, _ in AMBIGUOUS_STORES}
    untagged_place = 0
    for r in records:
        if "store_lookup" in r["intents"]:
            continue
        tagged = set(span_texts(r, "PRODUCT"))
        text = r["text"].lower()
        if any(f" to {name}" in text and name not in tagged for name in store_names):
            untagged_place += 1
    assert untagged_place > 0


def test_variation(records):
    texts = [r["text"] for r in records]
    assert sum(t.isupper() for t in texts) > 0.03 * N
    assert sum(t.islower() for t in texts) > 0.5 * N
    assert sum(t.lower().startswith(("hey", "please", "can you", "hi ")) for t in texts) > 0.05 * N


def test_every_record_converts(records, tmp_path):
    path = tmp_path / "gen.jsonl"
    srsly.write_jsonl(path, records)
    stats = ConvertStats()
    docs = read_jsonl(path, spacy.blank("en"), stats=stats)
    assert len(docs) == N
    assert stats.n_ents == sum(len(r["spans"]) for r in records)
    for doc, rec in zip(docs, records):
        assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == [
            (s["start"], s["end"], s["label"]) for s in rec["spans"]
        ]
        assert {k for k, v in doc.cats.items() if v == 1.0} == set(rec["intents"])


def test_write_splits(tmp_path):
    counts = write_splits(tmp_path / "a", n=500, seed=3)
    assert counts == {"train": 350, "dev": 50, "test": 100}
    loaded = {k: list(srsly.read_jsonl(tmp_path / "a" / f"{k}.jsonl")) for k in counts}
    assert {k: len(v) for k, v in loaded.items()} == counts
    assert loaded["train"] + loaded["dev"] + loaded["test"] == generate(500, seed=3)
    texts = [r["text"].lower() for v in loaded.values() for r in v]
    assert len(set(texts)) == len(texts)  # no overlap between splits
    write_splits(tmp_path / "b", n=500, seed=3)
    for k in counts:
        assert (tmp_path / "a" / f"{k}.jsonl").read_bytes() == (tmp_path / "b" / f"{k}.jsonl").read_bytes()
    stats = convert("jsonl", tmp_path / "a" / "test.jsonl", tmp_path / "test.spacy", train=tmp_path / "a" / "train.jsonl")
    assert stats.n_docs == 100 and not stats.unseen_intents
