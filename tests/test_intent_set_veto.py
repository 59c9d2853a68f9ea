"""intent_set_veto: an entity whose label no training query with the doc's
decided intent set had is dropped at decoding. On in the shipped default, off
in the paper's setting (build_nlp) and in pipelines saved before it existed."""
import numpy
import pytest
import spacy
from spacy.tokens import Doc

from conftest import build_nlp, fresh_nlp, intent_ner_config, toy_examples

# [intents, labels, n queries with the set, n of them with each label]
TABLE = [
    [["add_to_cart"], ["PRODUCT"], 2, [2]],
    [["product_search"], ["PRODUCT"], 2, [2]],
    [["store_lookup"], ["STORE"], 4, [4]],
]


def _scores(proc, tags, intent_row):
    """NER probabilities that decode `tags` (one per word) and the same intent
    probabilities on every word."""
    index = {t: i for i, t in enumerate(proc.tags)}
    ner = numpy.full((len(tags), len(proc.tags)), 0.01, "f")
    for w, tag in enumerate(tags):
        ner[w, index[tag]] = 0.9
    intents = numpy.tile(numpy.asarray([intent_row[i] for i in proc.intent_labels], "f"), (len(tags), 1))
    return ner, intents


def _annotate(nlp, words, tags, intent_row):
    proc = nlp.get_pipe("intent_ner")
    doc = Doc(nlp.vocab, words=words)
    ner, intents = _scores(proc, tags, intent_row)
    proc.set_annotations([doc], ([ner], [intents]))
    return [(e.start, e.end, e.label_) for e in doc.ents]


STORE_Q = (["pickup", "at", "orange", "store"], ["O", "O", "B-STORE", "O"])
AS_STORE = {"store_lookup": 0.8, "product_search": 0.1, "add_to_cart": 0.1}
AS_PRODUCT = {"store_lookup": 0.1, "product_search": 0.8, "add_to_cart": 0.1}


def test_initialize_records_the_labels_of_each_intent_set(tiny_bert):
    nlp = fresh_nlp(tiny_bert)
    proc = nlp.get_pipe("intent_ner")
    assert proc.cfg["intent_set_veto"] is False
    assert proc.cfg["intent_set_labels"] == TABLE
    # Off in the paper's setting: a STORE under a product_search query stays.
    assert _annotate(nlp, *STORE_Q, AS_PRODUCT) == [(2, 3, "STORE")]


def test_the_factory_default_is_intent_sets_with_the_veto(tiny_bert):
    nlp = spacy.blank("en")
    nlp.add_pipe("intent_ner", config=intent_ner_config(tiny_bert))
    nlp.initialize(lambda: toy_examples(nlp))
    proc = nlp.get_pipe("intent_ner")
    assert proc.cfg["intent_loss"] == "softmax_sets" and proc.cfg["intent_set_veto"] is True
    assert _annotate(nlp, *STORE_Q, AS_PRODUCT) == []
    assert _annotate(nlp, *STORE_Q, AS_STORE) == [(2, 3, "STORE")]


def test_a_pipeline_saved_before_the_table_loads_without_the_veto(tiny_bert, tmp_path):
    import json

    nlp = fresh_nlp(tiny_bert, update_mode="joint", intent_set_veto=True)
    nlp.to_disk(tmp_path / "p")
    cfg_file = tmp_path / "p" / "intent_ner" / "cfg"
    saved = json.loads(cfg_file.read_text())
    for key in ("intent_set_veto", "intent_set_labels"):
        del saved[key]
    cfg_file.write_text(json.dumps(saved))
    (tmp_path / "p" / "config.cfg").write_text(
        (tmp_path / "p" / "config.cfg").read_text().replace("intent_set_veto = true\n", "")
    )
    loaded = spacy.load(tmp_path / "p")
    lproc = loaded.get_pipe("intent_ner")
    assert lproc.cfg["intent_set_veto"] is False and lproc.cfg["intent_set_labels"] is None
    assert _annotate(loaded, *STORE_Q, AS_PRODUCT) == [(2, 3, "STORE")]


def test_veto_drops_a_label_the_decided_set_never_had(tiny_bert):
    nlp = fresh_nlp(tiny_bert, intent_set_veto=True, intent_loss="softmax", update_mode="joint")
    assert _annotate(nlp, *STORE_Q, AS_STORE) == [(2, 3, "STORE")]
    assert _annotate(nlp, *STORE_Q, AS_PRODUCT) == []
    # Only the disallowed label goes: PRODUCT stays under product_search.
    words, tags = ["buy", "orange", "at", "orange", "store"], ["O", "B-PRODUCT", "O", "B-STORE", "O"]
    assert _annotate(nlp, words, tags, AS_PRODUCT) == [(1, 2, "PRODUCT")]


def test_a_set_no_training_query_had_takes_what_its_intents_take(tiny_bert):
    nlp = fresh_nlp(tiny_bert, intent_set_veto=True, update_mode="joint", intent_threshold=0.3)
    proc = nlp.get_pipe("intent_ner")
    proc.cfg["multi_label"] = True  # as if trained on two-intent queries: intents by threshold
    both = {"store_lookup": 0.6, "product_search": 0.6, "add_to_cart": 0.0}
    assert sorted(proc.decide_intents(_doc_with_cats(nlp, both))) == ["product_search", "store_lookup"]
    words, tags = ["find", "tea", "at", "orange", "store"], ["O", "B-PRODUCT", "O", "B-STORE", "O"]
    assert _annotate(nlp, words, tags, both) == [(1, 2, "PRODUCT"), (3, 4, "STORE")]
    only_cart = {"store_lookup": 0.0, "product_search": 0.0, "add_to_cart": 0.9}
    assert _annotate(nlp, words, tags, only_cart) == [(1, 2, "PRODUCT")]


def _doc_with_cats(nlp, cats):
    doc = Doc(nlp.vocab, words=["x"])
    doc.cats = dict(cats)
    return doc


def test_round_trip_and_a_table_set_later(tiny_bert, tmp_path):
    nlp = fresh_nlp(tiny_bert, update_mode="joint")
    proc = nlp.get_pipe("intent_ner")
    proc.cfg["intent_set_labels"] = None  # as a pipeline trained before the table existed
    proc.cfg["intent_set_veto"] = True
    with pytest.warns(UserWarning, match="set_intent_set_labels"):
        assert _annotate(nlp, *STORE_Q, AS_PRODUCT) == [(2, 3, "STORE")]  # no table: no veto
    proc.set_intent_set_labels(toy_examples(nlp))
    assert proc.cfg["intent_set_labels"] == TABLE
    assert _annotate(nlp, *STORE_Q, AS_PRODUCT) == []
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    lproc = loaded.get_pipe("intent_ner")
    assert lproc.cfg["intent_set_veto"] is True and lproc.cfg["intent_set_labels"] == TABLE
    assert _annotate(loaded, *STORE_Q, AS_PRODUCT) == []
    assert _annotate(loaded, *STORE_Q, AS_STORE) == [(2, 3, "STORE")]


def test_ner_only_decodes_without_the_veto(tiny_bert):
    # Its intent head is not trained, so its intents decide nothing.
    nlp = fresh_nlp(tiny_bert, update_mode="ner_only", intent_set_veto=True)
    assert nlp.get_pipe("intent_ner").cfg["intent_set_veto"] is True
    assert _annotate(nlp, *STORE_Q, AS_PRODUCT) == [(2, 3, "STORE")]


def test_an_intent_the_table_never_saw_vetoes_nothing_and_an_empty_table_is_refused(tiny_bert):
    nlp = fresh_nlp(tiny_bert, update_mode="joint", intent_set_veto=True)
    proc = nlp.get_pipe("intent_ner")
    without_cart = [eg for eg in toy_examples(nlp) if not eg.reference.cats.get("add_to_cart")]
    proc.set_intent_set_labels(without_cart)
    cart = {"store_lookup": 0.1, "product_search": 0.1, "add_to_cart": 0.8}
    assert _annotate(nlp, *STORE_Q, cart) == [(2, 3, "STORE")]
    assert _annotate(nlp, *STORE_Q, AS_PRODUCT) == []
    with pytest.raises(ValueError, match="no example with gold intents"):
        proc.set_intent_set_labels([])


def test_calibration_fits_on_every_entity(tiny_bert):
    from spacy_multitask_intent.calibrate import _ungated

    nlp = fresh_nlp(tiny_bert, update_mode="joint", intent_set_veto=True)
    proc = nlp.get_pipe("intent_ner")
    with _ungated(nlp, "intent_ner"):
        assert proc.cfg["intent_set_veto"] is False and proc.cfg["gating"] == {}
        assert _annotate(nlp, *STORE_Q, AS_PRODUCT) == [(2, 3, "STORE")]
    assert proc.cfg["intent_set_veto"] is True
    assert _annotate(nlp, *STORE_Q, AS_PRODUCT) == []


def test_min_expected_vetoes_only_a_pair_independence_would_have_shown(tiny_bert):
    # 8 toy queries: STORE in 4 (all store_lookup), PRODUCT in 4; product_search 2, store_lookup 4.
    # Independence expects STORE with product_search 4 * 2 / 8 = 1.0 times, PRODUCT with store_lookup 2.0.
    nlp = fresh_nlp(tiny_bert, update_mode="joint", intent_set_veto=True)
    proc = nlp.get_pipe("intent_ner")
    product_q = (["find", "tea", "at", "orange"], ["O", "B-PRODUCT", "O", "O"])
    for min_expected, store_under_product, product_under_store in ((0.0, [], []), (1.0, [], []), (1.5, [(2, 3, "STORE")], []),
                                                                   (2.5, [(2, 3, "STORE")], [(1, 2, "PRODUCT")])):
        proc.cfg["intent_set_veto_min_expected"] = min_expected
        assert _annotate(nlp, *STORE_Q, AS_PRODUCT) == store_under_product, min_expected
        assert _annotate(nlp, *product_q, AS_STORE) == product_under_store, min_expected
        assert _annotate(nlp, *STORE_Q, AS_STORE) == [(2, 3, "STORE")]  # an allowed label stays


def test_a_table_without_counts_vetoes_whatever_min_expected(tiny_bert):
    # A table saved before the counts were kept: [intents, labels] only.
    nlp = fresh_nlp(tiny_bert, update_mode="joint", intent_set_veto=True, intent_set_veto_min_expected=100.0)
    proc = nlp.get_pipe("intent_ner")
    assert _annotate(nlp, *STORE_Q, AS_PRODUCT) == [(2, 3, "STORE")]  # expected 1.0 < 100
    proc.cfg["intent_set_labels"] = [entry[:2] for entry in TABLE]
    with pytest.warns(UserWarning, match="has no counts"):
        assert _annotate(nlp, *STORE_Q, AS_PRODUCT) == []


def test_a_negative_min_expected_is_refused(tiny_bert):
    with pytest.raises(ValueError, match="intent_set_veto_min_expected must be >= 0"):
        build_nlp(tiny_bert, intent_set_veto_min_expected=-1.0)


def test_min_expected_for_a_set_no_training_query_had(tiny_bert):
    # {product_search, store_lookup} was never a gold set: it takes PRODUCT and STORE, and its n(set)
    # is the 6 queries whose set shares an intent with it. A label outside both (none in the toy
    # table) cannot be tested, so check the count the veto uses.
    from spacy_multitask_intent.component import VetoTable

    table = VetoTable(TABLE)
    both = frozenset({"product_search", "store_lookup"})
    assert table.allowed(both) == {"PRODUCT", "STORE"}
    assert table.expected(both, "STORE") == 4 * 6 / 8
    assert table.expected(frozenset({"product_search"}), "STORE") == 4 * 2 / 8
    assert not table.vetoes(both, "STORE", 100.0)
    assert table.vetoes(frozenset({"product_search"}), "STORE", 1.0)
    assert not table.vetoes(frozenset({"product_search"}), "STORE", 1.5)
    assert table.allowed(frozenset({"checkout"})) is None  # an intent never seen: no veto
    assert not table.vetoes(frozenset({"checkout"}), "STORE")
    # One entry without counts makes the whole table strict.
    mixed = VetoTable([TABLE[0][:2]] + TABLE[1:])
    assert not mixed.counted and mixed.vetoes(frozenset({"product_search"}), "STORE", 100.0)


def test_min_expected_and_the_counts_survive_a_round_trip(tiny_bert, tmp_path):
    nlp = fresh_nlp(tiny_bert, update_mode="joint", intent_set_veto=True, intent_set_veto_min_expected=1.5)
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    lproc = loaded.get_pipe("intent_ner")
    assert lproc.cfg["intent_set_veto_min_expected"] == 1.5
    assert lproc.cfg["intent_set_labels"] == TABLE
    assert all(type(n) is int for entry in lproc.cfg["intent_set_labels"] for n in [entry[2], *entry[3]])
    assert _annotate(loaded, *STORE_Q, AS_PRODUCT) == [(2, 3, "STORE")]  # expected 1.0 < 1.5

