"""The analysis scripts whose numbers BENCHMARKS.md cites."""
import importlib.util
from pathlib import Path

import pytest
import spacy
from spacy.tokens import Doc, DocBin, Span

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_error_classes():
    eic = _load("error_intent_consistency")
    gold = {(2, 4, "CITY"), (6, 7, "DATE")}
    assert eic.classify((2, 4, "STATE"), gold) == "wrong label on a gold span"
    assert eic.classify((2, 3, "CITY"), gold) == "wrong boundaries"
    assert eic.classify((3, 5, "STATE"), gold) == "wrong boundaries and label"
    assert eic.classify((0, 1, "CITY"), gold) == "no gold entity there"
    # Touching is not overlapping: [4, 6) lies between the two gold spans.
    assert eic.classify((4, 6, "CITY"), gold) == "no gold entity there"


def test_labels_by_intent_counts_each_part_of_a_multi_intent_query(tmp_path):
    eic = _load("error_intent_consistency")
    nlp = spacy.blank("en")
    docs = []
    for words, ents, cats in [
        (["fly", "to", "boston"], [(2, 3, "CITY")], {"flight": 1.0, "fare": 0.0}),
        (["cheap", "to", "denver", "monday"], [(3, 4, "DATE")], {"flight": 1.0, "fare": 1.0}),
        (["hello"], [], {"flight": 0.0, "fare": 0.0}),
    ]:
        doc = Doc(nlp.vocab, words=words)
        doc.ents = [Span(doc, s, e, label=l) for s, e, l in ents]
        doc.cats = cats
        docs.append(doc)
    path = tmp_path / "train.spacy"
    DocBin(docs=docs).to_disk(path)
    seen = eic.labels_by_intent(str(path), nlp.vocab)
    assert seen["flight"] == {"CITY", "DATE"}
    assert seen["fare"] == {"DATE"}
    assert "CITY" not in seen["fare"]
    # By set: DATE occurs only with {flight, fare}, so it is never seen with {flight} alone.
    by_set = eic.labels_by_intent_set(str(path), nlp.vocab)
    assert by_set[frozenset({"flight"})] == {"CITY"}
    assert by_set[frozenset({"flight", "fare"})] == {"DATE"}
    assert by_set[frozenset()] == set()
    assert eic.prf(3, 1, 6) == {"p": 0.75, "r": 0.5, "f": 0.6, "false_positives": 1}
    assert eic.prf(0, 0, 0)["f"] == 0.0


def _doc(vocab, words, ents):
    doc = Doc(vocab, words=words)
    doc.ents = [Span(doc, s, e, label=l) for s, e, l in ents]
    return doc


def test_ambiguous_subsets_follow_the_entity_text():
    amb = _load("ambiguous_subset")
    vocab = spacy.blank("en").vocab
    train = [
        _doc(vocab, "pickup at orange store".split(), [(2, 3, "STORE")]),
        _doc(vocab, "buy orange juice".split(), [(1, 3, "PRODUCT")]),
        _doc(vocab, "this jacket in orange".split(), []),
        _doc(vocab, "hours of the austin store".split(), [(3, 4, "STORE")]),
    ]
    words, spans = amb.word_labels(train), amb.span_labels(train)
    assert spans["orange"] == {"STORE", "O"} and spans["orange juice"] == {"PRODUCT"}
    assert "jacket in orange" in spans and "store" in spans
    # "orange" as a STORE: its text is no entity in train -> every subset
    m = amb.subsets(words, spans, _doc(vocab, "orange store hours".split(), [(0, 1, "STORE")]))
    assert m == {"all": True, "ambiguous": True, "entity-or-nothing": True, "word-level": True}
    # "austin" is only ever a STORE: in none
    m = amb.subsets(words, spans, _doc(vocab, "austin store hours".split(), [(0, 1, "STORE")]))
    assert m == {"all": True, "ambiguous": False, "entity-or-nothing": False, "word-level": False}
    # "orange juice" is only ever a PRODUCT as a whole, but its word "orange" is not
    m = amb.subsets(words, spans, _doc(vocab, "add orange juice".split(), [(1, 3, "PRODUCT")]))
    assert m == {"all": True, "ambiguous": False, "entity-or-nothing": False, "word-level": True}


def test_hard_split_subsets():
    hs = _load("hard_split_subsets")
    records = [
        # Plano is held out of train for data seed 0, and so is "is {store} open"
        {"text": "is plano open", "spans": [{"start": 3, "end": 8, "label": "STORE"}], "intents": ["store_lookup"]},
        {"text": "hey what time does the orange store open", "spans": [{"start": 23, "end": 29, "label": "STORE"}],
         "intents": ["store_lookup"]},
        {"text": "add plums to my cart", "spans": [{"start": 4, "end": 9, "label": "PRODUCT"}], "intents": ["add_to_cart"]},
    ]
    groups = hs.subsets(records, data_seed=0)
    assert groups == {"all": [0, 1, 2], "unseen store": [0], "seen store": [1], "unseen phrasing": [0]}
    gold = [{(3, 8, "STORE")}, {(23, 29, "STORE")}, {(4, 9, "PRODUCT")}]
    pred = [{(3, 8, "PRODUCT")}, {(23, 29, "STORE")}, {(4, 9, "PRODUCT"), (0, 3, "STORE")}]
    p, r, f = hs.prf(gold, pred, [0, 1, 2])
    assert (p, r) == (0.5, 2 / 3) and abs(f - 2 * 0.5 * (2 / 3) / (0.5 + 2 / 3)) < 1e-12
    assert hs.prf(gold, pred, [0]) == (0.0, 0.0, 0.0)


def test_onnx_bench_isolated_targets_are_medians_of_each_rounds_ratios():
    """``onnx_bench.py --isolated``: throughput is the best of the rounds,
    p50 / p99 the median of the rounds, and each target's value the median of
    the rounds' own ratios, not a ratio of two bests from different rounds."""
    import sys

    benchmarks = SCRIPTS.parent / "benchmarks"
    saved = list(sys.path)
    sys.path.insert(0, str(benchmarks))
    try:
        spec = importlib.util.spec_from_file_location("onnx_bench", benchmarks / "onnx_bench.py")
        ob = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(ob)
    finally:
        sys.path[:] = saved

    def system(qps32, p50):
        thr = {str(b): {"qps": qps32 * (b / 32) ** 0.1, "seconds": 1.0} for b in (1, 32, 256)}
        return {"throughput": thr, "latency": {"p50_ms": p50, "p99_ms": 2 * p50, "n": 10}}

    # torch fp32 is fastest in round 0, ORT int8 in round 2: the ratio of the
    # bests (1,200 / 500 = 2.4) is in no round.
    rows = [(500, 400, 1000, 10.0, 2.0, 9.0), (400, 390, 1000, 12.0, 2.4, 9.5), (450, 430, 1200, 11.0, 3.3, 10.0)]
    rounds = [{"torch_fp32": system(t, tl), "torch_int8": system(2 * t, tl / 2), "ort_fp32": system(1.1 * t, tl / 3),
               "ort_int8": system(o, ol), "floor": system(f, fl)} for t, f, o, tl, ol, fl in rows]
    R = {}
    ob.summarize_isolated(R, rounds)
    assert R["throughput"]["torch_fp32"]["32"]["qps"] == 500
    assert R["throughput"]["ort_int8"]["32"]["qps"] == 1200
    assert R["throughput"]["ort_int8"]["32"]["rounds_qps"] == [1000, 1000, 1200]
    assert R["latency"]["torch_fp32"]["p50_ms"] == 11.0
    assert R["latency"]["ort_int8"]["p99_ms"] == 2 * 2.4
    assert R["isolated_ratios"]["ort_int8_b32_vs_torch_fp32"] == [2.0, 2.5, 1200 / 450]
    T = ob.targets(R)
    assert T["ort_int8_b32_vs_torch_fp32"]["value"] == 2.5  # the median round, not 1,200 / 500
    assert not T["ort_int8_b32_vs_torch_fp32"]["met"]
    assert T["ort_int8_p50_vs_torch_fp32"]["value"] == pytest.approx(0.2)  # 2.0 / 10, 2.4 / 12, 3.3 / 11
    assert T["ort_int8_p50_vs_torch_fp32"]["met"]
    assert T["torch_fp32_b32_vs_floor"]["value"] == pytest.approx(450 / 430)  # of 1.25, 1.026, 1.047
    R.update(command="onnx_bench.py --isolated", isolated_rounds=rounds, rss={}, size_on_disk={}, targets=T)
    text = ob.render_markdown(R)
    assert "3 rounds" in text and "ort_int8_b32_vs_torch_fp32 2.000, 2.500, 2.667" in text
    assert "| ort_int8_b32_vs_torch_fp32 >= 3.0 | 2.500 | missed |" in text


def test_intent_errors_tally_splits_single_and_multi_intent_queries():
    ie = _load("intent_errors")
    pairs = [
        (["flight"], ["flight"]),
        (["flight"], ["airfare"]),
        (["airfare", "flight"], ["flight"]),  # one of two intents: wrong
        (["flight", "airfare"], ["airfare", "flight"]),  # order does not matter
        (["airfare", "flight"], ["airfare", "flight", "meal"]),  # one too many: wrong
        ([], []),
    ]
    out = ie.tally(pairs)
    assert out["single"] == {"queries": 2, "errors": 1}
    assert out["multi"] == {"queries": 3, "errors": 2}
    assert out["none"] == {"queries": 1, "errors": 0}
    assert out["intent_acc"] == pytest.approx(3 / 6)
    assert out["intent_acc_if_multi_right"] == pytest.approx(5 / 6)
