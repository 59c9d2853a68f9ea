"""scripts/learning_curve.py: the train subsets of the learning curve and its report."""
import csv
import importlib.util
import math
from pathlib import Path

import pytest
import spacy
from spacy.tokens import Doc, DocBin, Span

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "learning_curve.py"
INTENTS = ("a", "b", "c")
SIZES = {"a": 10, "b": 20, "c": 40}


def _load():
    spec = importlib.util.spec_from_file_location("learning_curve", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lc = _load()


def _doc(vocab, text, intents, ents=()):
    doc = Doc(vocab, words=text.split())
    doc.ents = [Span(doc, s, e, label=l) for s, e, l in ents]
    doc.cats = {i: float(i in intents) for i in INTENTS}
    return doc


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """70 single-intent queries (10 a, 20 b, 40 c; every other one with an
    entity), one a+b query; dev and test of a few queries each."""
    root = tmp_path_factory.mktemp("corpus") / "toy"
    root.mkdir()
    vocab = spacy.blank("en").vocab
    train = []
    for intent, n in SIZES.items():
        for k in range(n):
            ents = [(1, 2, "CITY")] if k % 2 else []
            train.append(_doc(vocab, f"{intent} q{k} please", {intent}, ents))
    train.append(_doc(vocab, "both a and b", {"a", "b"}, [(1, 2, "THING")]))
    DocBin(docs=train, store_user_data=True).to_disk(root / "train.spacy")
    DocBin(docs=[_doc(vocab, "dev a", {"a"}), _doc(vocab, "dev c x", {"c"}, [(2, 3, "CITY")])]).to_disk(root / "dev.spacy")
    DocBin(docs=[_doc(vocab, "test b", {"b"})]).to_disk(root / "test.spacy")
    return root


def _texts(path):
    vocab = spacy.blank("en").vocab
    return [_text(d) for d in DocBin().from_disk(path).get_docs(vocab)]


def _text(doc):
    return " ".join(t.text for t in doc)


def _docs(path):
    return list(DocBin().from_disk(path).get_docs(spacy.blank("en").vocab))


def test_subsets_are_stratified_nested_and_complete(corpus, tmp_path):
    out = tmp_path / "out"
    summaries = lc.make_subsets(corpus, out, [5, 10, 25, 50], seed=0)
    assert [s["name"] for s in summaries] == ["toy_p05", "toy_p10", "toy_p25", "toy_p50"]
    full = _texts(corpus / "train.spacy")
    previous = set()
    for s, fraction in zip(summaries, (5, 10, 25, 50)):
        folder = out / s["name"]
        docs = _docs(folder / "train.spacy")
        # ceil(fraction x group size) per intent set; the one a+b query is always kept
        expected = sum(math.ceil(fraction / 100 * n) for n in SIZES.values()) + 1
        assert len(docs) == s["queries"] == expected
        per_set = {}
        for d in docs:
            key = tuple(sorted(k for k, v in d.cats.items() if v == 1.0))
            per_set[key] = per_set.get(key, 0) + 1
        assert per_set == {
            ("a",): math.ceil(fraction / 100 * 10),
            ("b",): math.ceil(fraction / 100 * 20),
            ("c",): math.ceil(fraction / 100 * 40),
            ("a", "b"): 1,
        }
        assert s["intents"] == s["of_intents"] == 3 and s["intent_sets"] == s["of_intent_sets"] == 4
        # cats and entities travel with the queries, which keep their original order
        texts = [_text(d) for d in docs]
        assert texts == [t for t in full if t in set(texts)]
        both = next(d for d in docs if _text(d) == "both a and b")
        assert [(e.text, e.label_) for e in both.ents] == [("a", "THING")]
        assert all(len(d.ents) == int(d[1].text[1:]) % 2 for d in docs if _text(d) != "both a and b")
        # nested: a smaller subset is part of every larger one
        assert previous <= set(texts)
        previous = set(texts)
        for split in ("dev", "test"):
            copy = folder / f"{split}.spacy"
            assert not copy.is_symlink()
            assert copy.read_bytes() == (corpus / f"{split}.spacy").read_bytes()


def test_subsets_follow_the_seed(corpus, tmp_path):
    picks = {}
    for name, seed in (("one", 0), ("again", 0), ("other", 1)):
        lc.make_subsets(corpus, tmp_path / name, [25], seed=seed)
        picks[name] = (tmp_path / name / "toy_p25" / "train.spacy").read_bytes()
    assert picks["one"] == picks["again"]
    assert picks["one"] != picks["other"]
    assert lc.choose([frozenset("a")] * 20, 25, 0) == lc.choose([frozenset("a")] * 20, 25, 0)
    assert lc.choose([frozenset("a")] * 20, 25, 0) != lc.choose([frozenset("a")] * 20, 25, 1)


@pytest.mark.parametrize("bad", ["0", "100", "150", "-5", "five"])
def test_bad_fraction_is_named(bad):
    with pytest.raises(ValueError, match=f"fraction '?{bad}"):
        lc.parse_fractions(f"5,{bad}")


def test_bad_fraction_in_make_subsets(corpus, tmp_path):
    with pytest.raises(ValueError, match="fraction 120 is outside"):
        lc.make_subsets(corpus, tmp_path, [5, 120])
    assert not list(tmp_path.iterdir())  # nothing written


def test_missing_or_broken_corpus_files_are_named(corpus, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere[/\\]dev\.spacy: missing"):
        lc.make_subsets(tmp_path / "nowhere", tmp_path / "out", [5])
    broken = tmp_path / "broken"
    broken.mkdir()
    for split in ("dev", "test"):
        (broken / f"{split}.spacy").write_bytes((corpus / f"{split}.spacy").read_bytes())
    (broken / "train.spacy").write_bytes(b"not a docbin")
    with pytest.raises(ValueError, match=r"broken[/\\]train\.spacy: not a readable \.spacy DocBin"):
        lc.make_subsets(broken, tmp_path / "out", [5])
    assert lc.main(["subsets", str(broken), str(tmp_path / "out"), "--fractions", "5"]) == 1


def test_dataset_fraction():
    assert lc.dataset_fraction("snips", "snips") == 100
    assert lc.dataset_fraction("snips_p05", "snips") == 5
    assert lc.dataset_fraction("snips_p2_5", "snips") == 2.5
    assert lc.dataset_fraction("snips_p05", "atis") is None
    assert lc.dataset_fraction("snips_hard", "snips") is None
    assert lc.fraction_suffix(5) == "p05" and lc.fraction_suffix(50.0) == "p50" and lc.fraction_suffix(2.5) == "p2_5"


MT = "joint+intent_weight=0.1+intent_loss=softmax"


def _write_csv(path, rows, device="cpu"):
    from spacy_multitask_intent.results_table import COLUMNS

    with path.open("w", newline="", encoding="utf8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for dataset, variant, seed, p, f1, acc in rows:
            writer.writerow({
                "dataset": dataset, "variant": variant, "seed": seed, "max_steps": 1500,
                "gold_ents_p": p, "gold_ents_r": f1, "gold_ents_f": f1, "gold_intent_acc": acc,
                "device": device if seed == 1 else "cpu",
            })


def test_report_means_sd_and_missing_cells(tmp_path):
    results = tmp_path / "results.csv"
    _write_csv(results, [
        # 10%: both variants, seeds 0 and 1
        ("toy_p10", "ner_only", 0, 0.80, 0.70, ""),
        ("toy_p10", "ner_only", 1, 0.82, 0.74, ""),
        ("toy_p10", MT, 0, 0.86, 0.75, 0.90),
        ("toy_p10", MT, 1, 0.90, 0.77, 0.92),
        # 100%: NER-only only (multitask missing)
        ("toy", "ner_only", 0, 0.95, 0.94, ""),
        ("toy", "ner_only", 1, 0.93, 0.92, ""),
        # another dataset, another seed and another variant are not read
        ("other_p10", "ner_only", 0, 0.10, 0.10, ""),
        ("toy_p10", "ner_only", 7, 0.10, 0.10, ""),
        ("toy_p10", "joint", 0, 0.10, 0.10, 0.1),
    ])
    md, png = tmp_path / "out" / "curve.md", tmp_path / "docs" / "curve.png"
    table = lc.report(results, ["toy"], ["ner_only", MT], [0, 1], md, png, fractions=[5, 10, 100])
    cells = table["toy"]
    assert list(cells) == [5, 10, 100]
    assert cells[10]["ner_only"]["p"]["mean"] == pytest.approx(0.81)
    assert cells[10]["ner_only"]["p"]["sd"] == pytest.approx(0.0141421356, rel=1e-6)  # sample sd
    assert cells[10][MT]["f"]["mean"] == pytest.approx(0.76)
    assert cells[10][MT]["intent_acc"]["mean"] == pytest.approx(0.91)
    assert cells[100][MT]["p"]["n"] == 0 and cells[5]["ner_only"]["seeds"] == []
    text = md.read_text(encoding="utf8")
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in text.splitlines() if line.startswith("| ") and not line.startswith("| % train")}
    # % train | steps | NER-only P | F1 | n | multitask P | F1 | intent acc | n | Δ P | Δ F1
    assert rows["10"] == ["1500", "81.00 ± 1.41", "72.00 ± 2.83", "2", "88.00 ± 2.83", "76.00 ± 1.41",
                          "91.00 ± 1.41", "2", "+7.00", "+4.00"]
    assert rows["100"] == ["1500", "94.00 ± 1.41", "93.00 ± 1.41", "2", "—", "—", "—", "0", "—", "—"]
    assert rows["5"] == ["—", "—", "—", "0", "—", "—", "—", "0", "—", "—"]
    assert "runs trained on" not in text  # all on the CPU
    assert png.is_file() and png.stat().st_size > 1000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_one_seed_has_no_sd(tmp_path):
    results = tmp_path / "results.csv"
    _write_csv(results, [("toy_p50", "ner_only", 0, 0.5, 0.4, ""), ("toy", "ner_only", 1, 0.6, 0.5, "")],
               device="cuda:0 (NVIDIA H200)")
    table = lc.report(results, ["toy"], ["ner_only"], [0, 1], tmp_path / "c.md", tmp_path / "c.png", fractions=[50])
    assert table["toy"][50]["ner_only"]["p"] == {"mean": 0.5, "sd": None, "n": 1}
    text = (tmp_path / "c.md").read_text(encoding="utf8")
    assert "| 50 | 1500 | 50.00 | 40.00 | 1 |" in text
    assert "| 100 | 1500 | 60.00 | 50.00 | 1 |" in text  # a share found in the CSV is shown too
    assert "1 of 2 runs trained on cuda:0 (NVIDIA H200)" in text


def test_jobs_lists_only_missing_runs(tmp_path):
    done = tmp_path / "toy_p05" / "ner_only" / "seed0"
    done.mkdir(parents=True)
    (done / "metrics.json").write_text("{}")
    lines = lc.jobs(tmp_path, ["toy"], ["ner_only", MT], [0, 1], [5, 100], 1500, per_line=3)
    runs = [r for line in lines for r in line.split(";")]
    assert "toy_p05 ner_only 0 1500" not in runs
    assert runs[0] == "toy_p05 ner_only 1 1500" and f"toy {MT} 1 1500" in runs
    assert len(runs) == 7 and [len(line.split(";")) for line in lines] == [3, 3, 1]


def test_short_names_call_the_one_baseline_ner_only_whatever_its_settings():
    ner30, mt30 = "ner_only+head_lr_factor=30", "joint+intent_weight=0.1+intent_loss=softmax+head_lr_factor=30"
    assert lc.short_names([ner30, mt30]) == {ner30: "NER-only", mt30: "multitask"}
    # Two baselines keep their own names, so the columns stay apart.
    names = lc.short_names(["ner_only", ner30, mt30])
    assert names["ner_only"] == "ner_only" and names[ner30] == ner30 and names[mt30] == "multitask"
