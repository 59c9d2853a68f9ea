"""The stock spaCy peer is a fair one: exclusive `textcat` (softmax, scored by
argmax) on single-label data, `textcat_multilabel` (scored by the multi-label
rule) on multi-label data, decided from the training corpus."""
import json

import pytest
import spacy
from spacy.tokens import DocBin
from spacy.training import Example

from spacy_multitask_intent.compare import parse_variant, run_compare, variant_config
from spacy_multitask_intent.configs import corpus_is_multi_label, exclusive_textcat, merge_config, stock_config
from spacy_multitask_intent.evaluate import _textcat_intent_scores

from conftest import ROOT_DIR, TOY, TOY_INTENTS, make_doc

STOCK = ROOT_DIR / "configs" / "stock.cfg"
# The toy set with one query given two intents: multi-label data.
TOY_MULTI = TOY[:-1] + [("add cherry pie to cart", [(1, 3, "PRODUCT")], ["add_to_cart", "product_search"])]


def write_corpus(path, data):
    nlp = spacy.blank("en")
    DocBin(docs=[make_doc(nlp.vocab, *row) for row in data]).to_disk(path)
    return path


def test_single_or_multi_label_is_decided_from_the_training_corpus(tmp_path):
    assert corpus_is_multi_label(write_corpus(tmp_path / "single.spacy", TOY)) is False
    assert corpus_is_multi_label(write_corpus(tmp_path / "multi.spacy", TOY_MULTI)) is True
    # A query with no gold intent at all also makes the data multi-label (as for intent_ner).
    none = TOY[:-1] + [("add cherry pie to cart", [(1, 3, "PRODUCT")], [])]
    assert corpus_is_multi_label(write_corpus(tmp_path / "none.spacy", none)) is True
    with pytest.raises(FileNotFoundError, match="missing.spacy"):
        corpus_is_multi_label(tmp_path / "missing.spacy")


def test_stock_config_is_exclusive_textcat_on_single_label_data(tmp_path):
    single = stock_config(STOCK, write_corpus(tmp_path / "single.spacy", TOY))
    assert single["nlp"]["pipeline"] == ["transformer", "ner", "textcat"]
    assert "textcat_multilabel" not in single["components"]
    textcat = single["components"]["textcat"]
    assert textcat["factory"] == "textcat"
    assert textcat["model"]["exclusive_classes"] is True
    assert textcat["scorer"] == {"@scorers": "spacy.textcat_scorer.v2"}
    # Same model and listener as the multi-label one otherwise.
    multi_block = merge_config(STOCK)["components"]["textcat_multilabel"]
    assert textcat["model"]["tok2vec"] == multi_block["model"]["tok2vec"]
    assert textcat["model"]["@architectures"] == multi_block["model"]["@architectures"]

    multi = stock_config(STOCK, write_corpus(tmp_path / "multi.spacy", TOY_MULTI))
    assert multi["nlp"]["pipeline"] == ["transformer", "ner", "textcat_multilabel"]
    assert multi["components"]["textcat_multilabel"]["factory"] == "textcat_multilabel"
    assert multi["components"]["textcat_multilabel"]["model"]["exclusive_classes"] is False
    assert "textcat" not in multi["components"]
    # No corpus: the config as written.
    assert stock_config(STOCK, None)["nlp"]["pipeline"][-1] == "textcat_multilabel"
    # The intent_ner configs have no textcat and are left alone.
    multitask = merge_config(ROOT_DIR / "configs" / "multitask.cfg")
    assert exclusive_textcat(multitask) == multitask


def test_exclusive_stock_config_builds_spacys_softmax_textcat(tmp_path):
    from spacy.pipeline import MultiLabel_TextCategorizer, TextCategorizer

    config = stock_config(STOCK, write_corpus(tmp_path / "single.spacy", TOY))
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    textcat = nlp.get_pipe("textcat")
    assert isinstance(textcat, TextCategorizer) and not isinstance(textcat, MultiLabel_TextCategorizer)
    assert textcat.model.attrs["multi_label"] is False


def test_named_stock_variants_fix_the_textcat_whatever_the_data(tmp_path):
    """`stock` follows the data; `stock_exclusive` and `stock_multilabel`
    keep their textcat on either kind of corpus (so a comparison can hold
    both peers, and each run's name says which one it was)."""
    single = write_corpus(tmp_path / "single.spacy", TOY)
    multi = write_corpus(tmp_path / "multi.spacy", TOY_MULTI)
    configs = ROOT_DIR / "configs"
    last = lambda name, train: variant_config(name, configs, train)["nlp"]["pipeline"][-1]
    assert [last("stock", single), last("stock", multi), last("stock", None)] == [
        "textcat", "textcat_multilabel", "textcat_multilabel"]
    assert [last("stock_exclusive", single), last("stock_exclusive", multi)] == ["textcat", "textcat"]
    assert [last("stock_multilabel", single), last("stock_multilabel", multi)] == [
        "textcat_multilabel", "textcat_multilabel"]
    with pytest.raises(ValueError, match="no intent_ner settings"):
        parse_variant("stock_exclusive+intent_weight=0.5")


# Intent scores the stock pipeline "predicts" for the toy queries: the gold
# intent is the argmax (0.45), but no label reaches 0.5.
def _below_half(intent):
    others = [label for label in TOY_INTENTS if label != intent]
    return {intent: 0.45, others[0]: 0.3, others[1]: 0.25}


def _fixed_textcat_pipeline(factory):
    """A blank pipeline with a textcat of `factory` whose predictions are
    replaced by fixed scores: the gold intent is the argmax at 0.45."""
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe(factory)
    for label in TOY_INTENTS:
        pipe.add_label(label)
    gold = {text: intents[0] for text, _, intents in TOY}

    @spacy.Language.component(f"fixed_scores_{factory}")
    def fixed_scores(doc):
        doc.cats = _below_half(gold[doc.text])
        return doc

    nlp.add_pipe(f"fixed_scores_{factory}")
    examples = [Example(nlp.make_doc(text), make_doc(nlp.vocab, text, ents, intents)) for text, ents, intents in TOY]
    nlp.initialize(lambda: examples)
    return nlp, examples


def test_below_half_scores_have_the_gold_intent_as_argmax():
    for text, _, intents in TOY:
        cats = _below_half(intents[0])
        assert max(cats, key=cats.get) == intents[0]
        assert max(cats.values()) < 0.5
        assert sum(v == max(cats.values()) for v in cats.values()) == 1


def test_exclusive_textcat_is_scored_by_argmax():
    """The gold intent is the argmax at 0.45: right under argmax. (The
    multi-label rule's fallback, the argmax when no label reaches 0.5, counts
    it right too; the rules differ where two labels reach 0.5, below.)"""
    nlp, examples = _fixed_textcat_pipeline("textcat")
    scores = _textcat_intent_scores(nlp, examples, batch_size=4)
    # The argmax is right for every query though none reaches 0.5.
    assert scores["intent_acc"] == 1.0
    assert scores["frame_acc"] == 0.0  # no ner: no entity is found


def test_textcat_multilabel_falls_back_to_the_argmax_when_no_label_reaches_half():
    nlp, examples = _fixed_textcat_pipeline("textcat_multilabel")
    assert _textcat_intent_scores(nlp, examples, batch_size=4)["intent_acc"] == 1.0


def test_argmax_for_exclusive_textcat_and_the_multi_label_rule_for_textcat_multilabel():
    """Where the two rules differ: two labels >= 0.5. The multi-label rule
    predicts both (wrong on single-label gold); argmax predicts one."""
    def fixed(intent):
        other = next(label for label in TOY_INTENTS if label != intent)
        return {label: 0.9 if label == intent else 0.6 if label == other else 0.1 for label in TOY_INTENTS}

    results = {}
    for factory in ("textcat", "textcat_multilabel"):
        nlp = spacy.blank("en")
        pipe = nlp.add_pipe(factory)
        for label in TOY_INTENTS:
            pipe.add_label(label)
        gold = {text: intents[0] for text, _, intents in TOY}
        name = f"two_high_{factory}"

        @spacy.Language.component(name)
        def two_high(doc):
            doc.cats = fixed(gold[doc.text])
            return doc

        nlp.add_pipe(name)
        examples = [Example(nlp.make_doc(t), make_doc(nlp.vocab, t, e, i)) for t, e, i in TOY]
        nlp.initialize(lambda: examples)
        results[factory] = _textcat_intent_scores(nlp, examples, batch_size=4)["intent_acc"]
    assert results == {"textcat": 1.0, "textcat_multilabel": 0.0}


@pytest.mark.slow
def test_compare_trains_the_stock_peer_as_the_data_asks(tiny_bert, tmp_path):
    """compare's stock run: exclusive textcat on single-label data, and the
    saved model's intents are scored by argmax; textcat_multilabel on
    multi-label data."""
    train_single = write_corpus(tmp_path / "single.spacy", TOY)
    train_multi = write_corpus(tmp_path / "multi.spacy", TOY_MULTI)
    overrides = {"paths.encoder": str(tiny_bert), "training.max_steps": 2, "training.eval_frequency": 1,
                 "training.batcher.size": 8}
    for name, train, factory in (("single", train_single, "textcat"), ("multi", train_multi, "textcat_multilabel")):
        out = tmp_path / name
        report = run_compare(train, train, train, out, configs_dir=ROOT_DIR / "configs",
                             variants=["stock"], seeds=[0], overrides=overrides)
        assert f'factory = "{factory}"' in (out / "configs" / "stock.cfg").read_text()
        nlp = spacy.load(out / "stock" / "seed0" / "model-best")
        assert nlp.pipe_names == ["transformer", "ner", factory]
        assert report["gold_tokens"]["stock"]["intent_acc"]["n"] == 1
        metrics = json.loads((out / "stock" / "seed0" / "metrics.json").read_text())
        assert 0.0 <= metrics["gold_tokens"]["intent_acc"] <= 1.0
        # The saved model's scores follow its pipe's rule.
        from spacy_multitask_intent.corpus import read_examples
        from spacy_multitask_intent.scoring import decide_intents, gold_intents

        examples = read_examples(nlp, train)
        docs = list(nlp.pipe(eg.predicted.copy() for eg in examples))
        labels = sorted(nlp.get_pipe(factory).labels)
        expected = sum(
            decide_intents(doc.cats, labels, multi_label=(factory == "textcat_multilabel"))
            == gold_intents(eg.reference.cats)
            for doc, eg in zip(docs, examples)
        ) / len(examples)
        assert metrics["gold_tokens"]["intent_acc"] == pytest.approx(expected)


def test_config_command_builds_the_stock_peer_for_a_training_corpus(tmp_path):
    from typer.testing import CliRunner

    from spacy_multitask_intent.__main__ import app

    runner = CliRunner()
    single = write_corpus(tmp_path / "single.spacy", TOY)
    multi = write_corpus(tmp_path / "multi.spacy", TOY_MULTI)
    for name, args, factory in (
        ("plain", [], "textcat_multilabel"),
        ("single", ["--train", str(single)], "textcat"),
        ("multi", ["--train", str(multi)], "textcat_multilabel"),
    ):
        out = tmp_path / f"{name}.cfg"
        result = runner.invoke(app, ["config", str(STOCK), str(out), *args])
        assert result.exit_code == 0, result.output
        written = spacy.util.load_config(out, interpolate=False)
        assert written["nlp"]["pipeline"] == ["transformer", "ner", factory]
        assert written["components"][factory]["factory"] == factory
