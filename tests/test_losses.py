"""The intent-loss options (issue: balance the two losses when there are many intents)."""
import numpy
import pytest

from spacy_multitask_intent.losses import _sigmoid_bce
from conftest import TOY, fresh_nlp, toy_examples, train


def test_sigmoid_mean_is_sum_over_labels(tiny_bert):
    nlp_sum = fresh_nlp(tiny_bert, update_mode="joint")
    nlp_mean = fresh_nlp(tiny_bert, update_mode="joint", intent_loss="sigmoid_mean")
    rng = numpy.random.default_rng(1)
    logits = rng.normal(size=(6, 3)).astype("f")
    y = (rng.random((6, 3)) > 0.5).astype("f")
    mask = numpy.ones((6, 1), "f")
    l_sum, d_sum = nlp_sum.get_pipe("intent_ner")._intent_xent(logits, y, mask)
    l_mean, d_mean = nlp_mean.get_pipe("intent_ner")._intent_xent(logits, y, mask)
    assert l_sum == pytest.approx(_sigmoid_bce(logits, y, mask)[0])
    assert l_mean == pytest.approx(l_sum / 3, rel=1e-5)
    assert numpy.allclose(d_mean, d_sum / 3)


def test_auto_takes_softmax_on_single_label_data_and_scores_sum_to_one(tiny_bert):
    nlp = fresh_nlp(tiny_bert, update_mode="joint", intent_loss="auto")
    pipe = nlp.get_pipe("intent_ner")
    assert pipe.intent_activation == "softmax"
    train(nlp, toy_examples(nlp), steps=40)
    doc = nlp(TOY[0][0])
    assert numpy.allclose(doc._.intent_scores.sum(axis=1), 1.0, atol=1e-5)
    assert pipe.decide_intents(doc) == ["store_lookup"]


def test_softmax_activation_survives_save_and_load(tiny_bert, tmp_path):
    import spacy

    nlp = fresh_nlp(tiny_bert, update_mode="joint", intent_loss="auto")
    train(nlp, toy_examples(nlp), steps=5)
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert loaded.get_pipe("intent_ner").intent_activation == "softmax"
    a, b = nlp(TOY[1][0]), loaded(TOY[1][0])
    assert numpy.allclose(a._.intent_scores, b._.intent_scores, atol=1e-6)


def test_softmax_on_multi_label_data_splits_the_target_and_auto_takes_sigmoid(tiny_bert):
    data = TOY[:-1] + [("add cherry pie to cart", [(1, 3, "PRODUCT")], ["add_to_cart", "product_search"])]
    from conftest import build_nlp

    nlp = build_nlp(tiny_bert, update_mode="joint", intent_loss="softmax")
    nlp.initialize(lambda: toy_examples(nlp, data))
    pipe = nlp.get_pipe("intent_ner")
    assert pipe.cfg["multi_label"] and pipe.intent_activation == "softmax"
    train(nlp, toy_examples(nlp, data), steps=60)
    scores = nlp("add cherry pie to cart").cats
    assert scores["add_to_cart"] > 0.2 and scores["product_search"] > 0.2
    assert sum(scores.values()) == pytest.approx(1.0, abs=1e-4)
    nlp = build_nlp(tiny_bert, update_mode="joint", intent_loss="auto")
    nlp.initialize(lambda: toy_examples(nlp, data))
    assert nlp.get_pipe("intent_ner").intent_activation == "sigmoid"


def test_warmup_scales_the_intent_loss_of_the_first_updates(tiny_bert):
    from thinc.api import Adam

    losses = {}
    for warmup in (0, 4):
        nlp = fresh_nlp(tiny_bert, update_mode="joint", intent_weight_warmup=warmup)
        out = {}
        nlp.update(toy_examples(nlp), sgd=Adam(0.0), losses=out)
        losses[warmup] = out["intent_ner_intent"]
    assert losses[4] == pytest.approx(losses[0] / 4, rel=1e-4)


def test_uncertainty_weighting_learns_log_variances_and_needs_joint(tiny_bert):
    with pytest.raises(ValueError, match="joint"):
        fresh_nlp(tiny_bert, update_mode="alternating", loss_balance="uncertainty")
    nlp = fresh_nlp(tiny_bert, update_mode="joint", loss_balance="uncertainty")
    pipe = nlp.get_pipe("intent_ner")
    assert not pipe._log_vars.any()
    history = train(nlp, toy_examples(nlp), steps=20)
    assert pipe._log_vars.any()
    assert history[-1]["intent_ner"] < history[0]["intent_ner"]


def test_pcgrad_trains_both_heads_and_needs_joint(tiny_bert):
    with pytest.raises(ValueError, match="joint"):
        fresh_nlp(tiny_bert, update_mode="alternating", loss_balance="pcgrad")
    nlp = fresh_nlp(tiny_bert, update_mode="joint", loss_balance="pcgrad", intent_loss="softmax")
    history = train(nlp, toy_examples(nlp), steps=20)
    assert history[-1]["intent_ner_ner"] < history[0]["intent_ner_ner"]
    assert history[-1]["intent_ner_intent"] < history[0]["intent_ner_intent"]


@pytest.mark.parametrize("bad", [{"intent_loss": "hinge"}, {"loss_balance": "gradnorm"}, {"intent_weight_warmup": -1}])
def test_bad_loss_settings_are_refused(tiny_bert, bad):
    from conftest import build_nlp

    with pytest.raises(ValueError, match="intent_ner"):
        build_nlp(tiny_bert, update_mode="joint", **bad)


def test_the_shipped_default_is_joint_intent_sets_with_the_veto_and_the_paper_is_one_switch_away(tiny_bert):
    import spacy
    from thinc.api import Config

    from spacy_multitask_intent.compare import DEFAULT_VARIANTS
    from spacy_multitask_intent.configs import merge_config
    from conftest import ROOT_DIR

    nlp = spacy.blank("en")
    cfg = nlp.add_pipe("intent_ner", config={"model": {"encoder": {"name": str(tiny_bert)}}}).cfg
    shipped = ("joint", 0.1, "softmax_sets", 30.0, True)
    keys = ("update_mode", "intent_weight", "intent_loss", "head_lr_factor", "intent_set_veto")
    assert tuple(cfg[k] for k in keys) == shipped
    configs = ROOT_DIR / "configs"
    base = merge_config(configs / "multitask.cfg")["components"]["intent_ner"]
    assert tuple(base[k] for k in keys) == shipped
    # The variants whose results are stored keep the veto off, and NER-only one intent output per intent.
    for fragment in ("paper.cfg", "ner_only.cfg", "joint.cfg"):
        assert merge_config(configs / "multitask.cfg", configs / fragment)["components"]["intent_ner"]["intent_set_veto"] is False
    assert merge_config(configs / "multitask.cfg", configs / "ner_only.cfg")["components"]["intent_ner"]["intent_loss"] == "softmax"
    paper = merge_config(configs / "multitask.cfg", configs / "paper.cfg")["components"]["intent_ner"]
    assert (paper["update_mode"], paper["intent_lr_factor"], paper["intent_loss"]) == ("alternating", 0.1, "sigmoid_sum")
    # The paper, and the stored ner_only and joint results, step the heads at the learn rate.
    for fragment in ("paper.cfg", "ner_only.cfg", "joint.cfg"):
        assert merge_config(configs / "multitask.cfg", configs / fragment)["components"]["intent_ner"]["head_lr_factor"] == 1.0
    assert DEFAULT_VARIANTS["alternating"] == ("multitask.cfg", "paper.cfg")
    # The stored "joint" results were trained with the summed sigmoid head: the variant keeps it.
    joint = merge_config(configs / "multitask.cfg", configs / "joint.cfg")["components"]["intent_ner"]
    assert (joint["update_mode"], joint["intent_weight"], joint["intent_loss"]) == ("joint", 1.0, "sigmoid_sum")


MULTI = TOY[:-1] + [
    ("add cherry pie to cart", [(1, 3, "PRODUCT")], ["add_to_cart", "product_search"]),
    ("find and add apple juice", [(3, 5, "PRODUCT")], ["add_to_cart", "product_search"]),
]


def _sets_nlp(tiny_bert, data, seed=0, **cfg):
    from thinc.api import fix_random_seed

    from conftest import build_nlp

    fix_random_seed(seed)
    nlp = build_nlp(tiny_bert, update_mode="joint", intent_loss="softmax_sets", **cfg)
    nlp.initialize(lambda: toy_examples(nlp, data))
    return nlp


def test_softmax_sets_makes_each_training_combination_one_class(tiny_bert):
    nlp = _sets_nlp(tiny_bert, MULTI)
    pipe = nlp.get_pipe("intent_ner")
    assert pipe.cfg["intent_sets"] == [["add_to_cart", "product_search"]]
    assert pipe.intent_classes == ["add_to_cart", "product_search", "store_lookup", "add_to_cart + product_search"]
    assert pipe.model.get_ref("intent_head").get_dim("nO") == 4
    assert pipe.default_intent_threshold == 0.5
    _, y, mask = pipe._targets(toy_examples(nlp, MULTI))
    assert y.shape[1] == 4
    # a two-intent query's words: one-hot on the set's class; a one-intent query's: on its intent
    assert y[-1].tolist() == [0, 0, 0, 1] and y[0].tolist() == [0, 0, 1, 0]
    # a combination not seen at initialize: an even split over its intents, as with softmax
    unseen = [("find store and add cake", [(4, 5, "PRODUCT")], ["add_to_cart", "store_lookup"])]
    _, y, _ = pipe._targets(toy_examples(nlp, unseen))
    assert y[0].tolist() == [1, 0, 1, 0]
    train(nlp, toy_examples(nlp, MULTI), steps=60)
    doc = nlp("add cherry pie to cart")
    # an intent's score sums the sets that hold it: the combination counts for both
    assert doc.cats["add_to_cart"] > 0.5 and doc.cats["product_search"] > 0.5
    assert pipe.decide_intents(doc) == ["add_to_cart", "product_search"]
    assert list(doc._.intent_labels) == list(pipe.intent_labels) and doc._.intent_scores.shape == (5, 3)
    assert pipe.decide_intents(nlp(TOY[0][0])) == ["store_lookup"]
    assert pipe.decide_intents(nlp("buy orange at target")) == ["product_search"]


def test_softmax_sets_survives_save_and_load(tiny_bert, tmp_path):
    import spacy

    nlp = _sets_nlp(tiny_bert, MULTI)
    train(nlp, toy_examples(nlp, MULTI), steps=10)
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert loaded.get_pipe("intent_ner").intent_classes == nlp.get_pipe("intent_ner").intent_classes
    for text in ("add cherry pie to cart", TOY[0][0]):
        assert numpy.allclose(nlp(text)._.intent_scores, loaded(text)._.intent_scores, atol=1e-6)


def test_softmax_sets_is_softmax_on_single_label_data(tiny_bert):
    a = _sets_nlp(tiny_bert, TOY)
    from thinc.api import fix_random_seed

    from conftest import build_nlp

    fix_random_seed(0)
    b = build_nlp(tiny_bert, update_mode="joint", intent_loss="softmax")
    b.initialize(lambda: toy_examples(b))
    assert a.get_pipe("intent_ner").cfg["intent_sets"] == []
    assert a.get_pipe("intent_ner").intent_classes == list(b.get_pipe("intent_ner").intent_labels)
    train(a, toy_examples(a), steps=10)
    train(b, toy_examples(b), steps=10)
    for text in (TOY[0][0], TOY[3][0]):
        numpy.testing.assert_array_equal(a(text)._.intent_scores, b(text)._.intent_scores)


def test_softmax_sets_takes_its_sets_from_the_examples_when_labels_are_given(tiny_bert):
    """`spacy init labels` gives the intents; the sets still come from the
    examples, and only those made of given intents count."""
    from conftest import build_nlp

    nlp = build_nlp(tiny_bert, update_mode="joint", intent_loss="softmax_sets")
    labels = {"ents": ["PRODUCT", "STORE"], "intents": ["add_to_cart", "product_search", "store_lookup"]}
    nlp.get_pipe("intent_ner").initialize(lambda: toy_examples(nlp, MULTI), nlp=nlp, labels=labels)
    assert nlp.get_pipe("intent_ner").cfg["intent_sets"] == [["add_to_cart", "product_search"]]
    nlp = build_nlp(tiny_bert, update_mode="joint", intent_loss="softmax_sets")
    labels = {"ents": ["PRODUCT", "STORE"], "intents": ["add_to_cart", "store_lookup"]}
    nlp.get_pipe("intent_ner").initialize(lambda: toy_examples(nlp, MULTI), nlp=nlp, labels=labels)
    assert nlp.get_pipe("intent_ner").cfg["intent_sets"] == []
