"""The `intent_ner` component: learning, the optimizer steps of each update
mode, NER-only mode, serialization, multiprocessing, long and empty input,
entity gating, errors, label data and the packaged MiniLM encoder.

Everything except the last test runs on the random 2-layer BERT of conftest.
"""
import json
import shutil
from collections import defaultdict

import numpy
import pytest
import spacy
import torch
from spacy.tokens import DocBin
from thinc.api import Adam, fix_random_seed, to_numpy

from conftest import ON_GPU, TOY, TOY_INTENTS, build_nlp, fresh_nlp, toy_examples, train
from spacy_multitask_intent.layers import head_module

TEXTS = [text for text, _, _ in TOY] + [
    "pickup my order at orange store",
    "buy orange at target",
    "find apple juice",
    "hours of the lemon grove store",
]


# --------------------------------------------------------------- helpers
class SpyOptimizer:
    """Forwards to a real optimizer, recording (key, lr_scale, gradient)."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.calls = []

    def __call__(self, key, weights, gradient, *, lr_scale=1.0):
        self.calls.append((key, lr_scale, numpy.array(to_numpy(gradient), copy=True)))
        return self.optimizer(key, weights, gradient, lr_scale=lr_scale)

    def __getattr__(self, name):
        return getattr(self.optimizer, name)

    def scales(self):
        out = defaultdict(list)
        for key, scale, _ in self.calls:
            out[key].append(scale)
        return out

    def grads(self):
        out = defaultdict(list)
        for key, _, grad in self.calls:
            out[key].append(grad)
        return out


def part_keys(model):
    """The optimizer keys of every parameter of a Thinc model (shim params
    are keyed by shim id, Thinc params by node id)."""
    from spacy_multitask_intent.layers import torch_modules

    keys = set()
    for shim, module in torch_modules(model):
        keys.update((shim.id, name) for name, _ in module.named_parameters())
    for node in model.walk():
        keys.update((node.id, name) for name in node.param_names)
    return keys


def keys_by_part(proc):
    parts = {name: part_keys(proc.model.get_ref(name)) for name in ("encoder", "ner_head", "intent_head")}
    assert not (parts["encoder"] & parts["ner_head"]) and not (parts["encoder"] & parts["intent_head"])
    # Parameters that get a gradient: all but BERT's unused pooler.
    trained_enc = {k for k in parts["encoder"] if not k[1].startswith("pooler.")}
    assert len(trained_enc) > 10
    return parts, trained_enc


def head_state(proc, name):
    return {k: v.detach().clone() for k, v in head_module(proc.model.get_ref(name)).state_dict().items()}


def same_state(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def ents_of(doc):
    return [(e.start, e.end, e.label_) for e in doc.ents]


def scores_of(doc):
    return numpy.asarray(doc._.intent_scores)


def eval_scores(nlp):
    scores = nlp.evaluate(toy_examples(nlp))
    scores.pop("speed", None)
    return scores


# -------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def det_bert(tiny_bert, tmp_path_factory):
    """The tiny BERT with dropout off, so forward passes are deterministic."""
    path = tmp_path_factory.mktemp("det_bert") / "bert"
    shutil.copytree(tiny_bert, path)
    config = json.loads((path / "config.json").read_text())
    config["hidden_dropout_prob"] = 0.0
    config["attention_probs_dropout_prob"] = 0.0
    (path / "config.json").write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module")
def trained_run(tiny_bert, tmp_path_factory):
    """Train on the toy set from a *copy* of the encoder directory, then
    delete the copy: nothing afterwards may need it."""
    src = tmp_path_factory.mktemp("encoder_copy") / "bert"
    shutil.copytree(tiny_bert, src)
    nlp = fresh_nlp(src)
    history = train(nlp, toy_examples(nlp), steps=40)
    shutil.rmtree(src)
    assert not src.exists()
    return nlp, history


@pytest.fixture(scope="module")
def trained(trained_run):
    return trained_run[0]


# ------------------------------------------------------------- 1. learning
def test_training_learns_the_toy_set(trained_run):
    nlp, history = trained_run
    first, last = history[0], history[-1]
    assert last["intent_ner_ner"] < 0.3 * first["intent_ner_ner"]
    assert last["intent_ner_intent"] < 0.8 * first["intent_ner_intent"]
    assert last["intent_ner"] == pytest.approx(last["intent_ner_ner"] + last["intent_ner_intent"])
    scores = eval_scores(nlp)
    assert scores["ents_f"] == 1.0
    assert scores["intent_acc"] == 1.0
    assert scores["frame_acc"] == 1.0


def test_trained_predictions(trained):
    doc = trained("pickup my order at orange store")
    assert [(e.text, e.label_) for e in doc.ents] == [("orange", "STORE")]
    doc2 = trained("buy orange at target")
    assert [(e.text, e.label_) for e in doc2.ents] == [("orange", "PRODUCT")]
    for d in (doc, doc2):
        assert set(d.cats) == set(TOY_INTENTS)
        matrix = scores_of(d)
        assert matrix.shape == (len(d), len(TOY_INTENTS))
        for token in d:
            intent = token._.intent
            assert set(intent) == set(TOY_INTENTS)
            assert all(0.0 <= v <= 1.0 for v in intent.values())
        # doc.cats is the mean of the word scores (cats_aggregation = "mean").
        mean = matrix.mean(axis=0)
        for i, label in enumerate(d._.intent_labels):
            assert d.cats[label] == pytest.approx(float(mean[i]), abs=1e-6)
        span = d.ents[0]
        assert span._.intent == pytest.approx(dict(zip(d._.intent_labels, matrix[span.start : span.end].mean(0).tolist())))
    assert max(doc.cats, key=doc.cats.get) == "store_lookup"
    assert max(doc2.cats, key=doc2.cats.get) == "product_search"


# ----------------------------------------------- 2. alternating optimizer steps
def _check_alternating_calls(spy, proc, factor):
    parts, trained_enc = keys_by_part(proc)
    scales = spy.scales()
    called = set(scales)
    assert trained_enc <= called
    assert called <= parts["encoder"] | parts["ner_head"] | parts["intent_head"]
    for key in parts["encoder"] & called:
        assert scales[key] == [1.0, factor], key
    assert {k for k in called if k in parts["ner_head"]} == parts["ner_head"]
    assert {k for k in called if k in parts["intent_head"]} == parts["intent_head"]
    for key in parts["ner_head"]:
        assert scales[key] == [1.0]
    for key in parts["intent_head"]:
        assert scales[key] == [factor]
    # The whole NER step comes first, then the whole intent step.
    seq = [scale for _, scale, _ in spy.calls]
    n_first = seq.count(1.0)
    assert seq == [1.0] * n_first + [factor] * (len(seq) - n_first)


def test_alternating_loop_path_two_steps(tiny_bert):
    """spaCy's training loop: update(sgd=False), then finish_update()."""
    nlp = fresh_nlp(tiny_bert, intent_lr_factor=0.25)
    proc = nlp.get_pipe("intent_ner")
    spy = SpyOptimizer(Adam(1e-3))
    losses = {}
    nlp.update(toy_examples(nlp), sgd=False, losses=losses)
    assert spy.calls == []
    assert losses["intent_ner_ner"] > 0 and losses["intent_ner_intent"] > 0
    proc.finish_update(spy)
    _check_alternating_calls(spy, proc, 0.25)
    # Nothing is pending any more: a second finish_update steps nothing.
    n = len(spy.calls)
    proc.finish_update(spy)
    assert len(spy.calls) == n


def test_alternating_nlp_update_with_sgd(tiny_bert):
    nlp = fresh_nlp(tiny_bert, intent_lr_factor=0.25)
    proc = nlp.get_pipe("intent_ner")
    spy = SpyOptimizer(Adam(1e-3))
    nlp.update(toy_examples(nlp), sgd=spy, losses={})
    _check_alternating_calls(spy, proc, 0.25)


def test_alternating_component_update_with_sgd(tiny_bert):
    """proc.update(sgd=...) steps inline, NER step then intent step."""
    nlp = fresh_nlp(tiny_bert, intent_lr_factor=0.25)
    proc = nlp.get_pipe("intent_ner")
    spy = SpyOptimizer(Adam(1e-3))
    proc.update(toy_examples(nlp), sgd=spy, losses={})
    _check_alternating_calls(spy, proc, 0.25)
    n = len(spy.calls)
    proc.finish_update(spy)  # already applied: nothing pending
    assert len(spy.calls) == n


def test_alternating_separate_optimizer_state(tiny_bert):
    """intent_optimizer_state = "separate": the intent step uses keys of its
    own, so Adam keeps separate moments (and update counts) for it; the NER
    step's keys, scales and gradients are those of the shared setting."""
    from spacy_multitask_intent.updates import INTENT_KEY_SUFFIX

    runs = {}
    for state in ("shared", "separate"):
        nlp = fresh_nlp(tiny_bert, intent_lr_factor=0.25, intent_optimizer_state=state)
        proc = nlp.get_pipe("intent_ner")
        spy = SpyOptimizer(Adam(1e-3))
        nlp.update(toy_examples(nlp), sgd=False, losses={})
        proc.finish_update(spy)
        runs[state] = (spy, proc)
    shared, separate = runs["shared"][0], runs["separate"][0]
    parts, _ = keys_by_part(runs["separate"][1])
    ner_calls = [(k, s) for k, s, _ in separate.calls if s == 1.0]
    intent_calls = [(k, s) for k, s, _ in separate.calls if s != 1.0]
    assert ner_calls and intent_calls
    assert all(not k[1].endswith(INTENT_KEY_SUFFIX) for k, _ in ner_calls)
    assert all(k[1].endswith(INTENT_KEY_SUFFIX) and s == 0.25 for k, s in intent_calls)
    # Encoder weights get one NER-keyed and one intent-keyed entry in Adam.
    enc_keys = {k for k, _ in ner_calls} & parts["encoder"]
    assert enc_keys
    intent_enc = {(k[0], k[1][: -len(INTENT_KEY_SUFFIX)]) for k, _ in intent_calls} & parts["encoder"]
    assert intent_enc == enc_keys
    assert all(separate.optimizer.nr_update[k] == 1 for k in enc_keys)
    shared_enc = {k for k, s, _ in shared.calls if s == 1.0} & keys_by_part(runs["shared"][1])[0]["encoder"]
    assert len(shared_enc) == len(enc_keys)
    assert all(shared.optimizer.nr_update[k] == 2 for k in shared_enc)
    # Same seed, same batch: the NER step is identical in both settings.
    assert [k[1] for k, s, _ in shared.calls if s == 1.0] == [k[1] for k, _ in ner_calls]
    for (_, _, g1), (_, _, g2) in zip(
        [c for c in shared.calls if c[1] == 1.0], [c for c in separate.calls if c[1] == 1.0]
    ):
        numpy.testing.assert_allclose(g1, g2, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="intent_optimizer_state must be one of"):
        fresh_nlp(tiny_bert, intent_optimizer_state="own")


def test_alternating_gradient_accumulation(tiny_bert):
    nlp = fresh_nlp(tiny_bert, intent_lr_factor=0.25)
    proc = nlp.get_pipe("intent_ner")
    spy = SpyOptimizer(Adam(1e-3))
    examples = toy_examples(nlp)
    nlp.update(examples[:4], sgd=False, losses={})
    nlp.update(examples[4:], sgd=False, losses={})
    proc.finish_update(spy)
    _check_alternating_calls(spy, proc, 0.25)


def test_alternating_steps_use_the_right_gradients(det_bert):
    """With a deterministic encoder, the loop path's first encoder step uses
    exactly the NER gradient (as in ner_only mode) and the two steps together
    the joint gradient, also when gradients accumulate over sub-batches."""

    def grads(mode, batches):
        nlp = fresh_nlp(det_bert, update_mode=mode, intent_lr_factor=0.25)
        proc = nlp.get_pipe("intent_ner")
        enc = part_keys(proc.model.get_ref("encoder"))
        spy = SpyOptimizer(Adam(1e-3))
        examples = toy_examples(nlp)
        for sl in batches:
            nlp.update(examples[sl], sgd=False, losses={})
        proc.finish_update(spy)
        # Shim ids differ between pipelines: key the gradients by name.
        return {k[1]: v for k, v in spy.grads().items() if k in enc}

    for batches in ([slice(0, 8)], [slice(0, 3), slice(3, 8)]):
        alt = grads("alternating", batches)
        ner = grads("ner_only", batches)
        joint = grads("joint", batches)
        assert alt.keys() == ner.keys() == joint.keys() and alt
        for key in alt:
            g_ner, g_intent = alt[key]
            (g_ner_only,) = ner[key]
            (g_joint,) = joint[key]
            numpy.testing.assert_allclose(g_ner, g_ner_only, rtol=1e-4, atol=1e-7)
            numpy.testing.assert_allclose(g_ner + g_intent, g_joint, rtol=1e-3, atol=1e-6)
        assert any(numpy.abs(alt[k][1]).max() > 0 for k in alt)


def test_intent_lr_factor_zero_freezes_intent_head(tiny_bert):
    nlp = fresh_nlp(tiny_bert, intent_lr_factor=0.0)
    proc = nlp.get_pipe("intent_ner")
    intent0, ner0 = head_state(proc, "intent_head"), head_state(proc, "ner_head")
    opt = Adam(1e-3)
    nlp.update(toy_examples(nlp), sgd=opt, losses={})
    proc.update(toy_examples(nlp), sgd=opt, losses={})
    assert same_state(intent0, head_state(proc, "intent_head"))
    assert not same_state(ner0, head_state(proc, "ner_head"))


# ------------------------------------------------------------------ 3. joint
def test_joint_one_step_per_parameter(tiny_bert):
    nlp = fresh_nlp(tiny_bert, update_mode="joint", intent_lr_factor=0.25)
    proc = nlp.get_pipe("intent_ner")
    parts, trained_enc = keys_by_part(proc)
    for path in ("loop", "nlp_sgd", "proc_sgd"):
        spy = SpyOptimizer(Adam(1e-3))
        if path == "loop":
            nlp.update(toy_examples(nlp), sgd=False, losses={})
            proc.finish_update(spy)
        elif path == "nlp_sgd":
            nlp.update(toy_examples(nlp), sgd=spy, losses={})
        else:
            proc.update(toy_examples(nlp), sgd=spy, losses={})
        scales = spy.scales()
        assert trained_enc | parts["ner_head"] | parts["intent_head"] <= set(scales)
        assert all(v == [1.0] for v in scales.values()), path


def test_joint_trains_the_toy_set(tiny_bert):
    nlp = fresh_nlp(tiny_bert, update_mode="joint")
    history = train(nlp, toy_examples(nlp), steps=30)
    assert history[-1]["intent_ner_ner"] < 0.3 * history[0]["intent_ner_ner"]
    assert history[-1]["intent_ner_intent"] < 0.8 * history[0]["intent_ner_intent"]
    scores = eval_scores(nlp)
    assert scores["ents_f"] == 1.0 and scores["intent_acc"] == 1.0


def test_joint_intent_weight_zero(tiny_bert):
    nlp = fresh_nlp(tiny_bert, update_mode="joint", intent_weight=0.0)
    proc = nlp.get_pipe("intent_ner")
    intent0 = head_state(proc, "intent_head")
    losses = {}
    nlp.update(toy_examples(nlp), sgd=Adam(1e-3), losses=losses)
    assert losses["intent_ner_intent"] == 0.0 and losses["intent_ner_ner"] > 0
    # A zero gradient: Adam's first step leaves the head where it was.
    assert same_state(intent0, head_state(proc, "intent_head"))


# --------------------------------------------------------------- 4. ner_only
def test_ner_only_never_touches_intent_head(tiny_bert):
    nlp = fresh_nlp(tiny_bert, update_mode="ner_only")
    proc = nlp.get_pipe("intent_ner")
    parts, _ = keys_by_part(proc)
    intent0, ner0 = head_state(proc, "intent_head"), head_state(proc, "ner_head")
    spy = SpyOptimizer(Adam(1e-3))
    for _ in range(2):
        losses = {}
        nlp.update(toy_examples(nlp), sgd=spy, losses=losses)
        assert losses["intent_ner_intent"] == 0.0
        proc.update(toy_examples(nlp), sgd=spy, losses={})
        nlp.update(toy_examples(nlp), sgd=False, losses={})
        proc.finish_update(spy)
    assert not set(spy.scales()) & parts["intent_head"]
    assert all(v == [1.0] * 6 for v in spy.scales().values())
    assert same_state(intent0, head_state(proc, "intent_head"))
    assert not same_state(ner0, head_state(proc, "ner_head"))
    doc = nlp("pickup my order at orange store")
    assert doc.cats == {}
    assert doc._.intent_scores is None
    assert all(token._.intent == {} for token in doc)
    scores = eval_scores(nlp)
    assert "intent_acc" not in scores


def test_ner_only_config_differs_only_in_update_mode():
    a = spacy.blank("en")
    a.add_pipe("intent_ner")
    b = spacy.blank("en")
    b.add_pipe("intent_ner", config={"update_mode": "ner_only"})
    ca = dict(a.config["components"]["intent_ner"])
    cb = dict(b.config["components"]["intent_ner"])
    assert ca["update_mode"] == "joint" and cb["update_mode"] == "ner_only"
    assert {k for k in ca.keys() | cb.keys() if ca.get(k) != cb.get(k)} == {"update_mode"}


# ---------------------------------------------------------- 5. serialization
def _assert_same_pipeline(a, b):
    for da, db in zip(a.pipe(TEXTS), b.pipe(TEXTS)):
        assert ents_of(da) == ents_of(db)
        numpy.testing.assert_allclose(scores_of(da), scores_of(db), atol=1e-6)
        assert da.cats.keys() == db.cats.keys()
    assert eval_scores(a) == eval_scores(b)


def test_to_disk_and_load(trained, tmp_path):
    proc = trained.get_pipe("intent_ner")
    saved_cfg = {k: proc.cfg[k] for k in ("intent_thresholds", "gating", "gate_thresholds")}
    try:
        proc.cfg["intent_thresholds"] = {"store_lookup": 0.4}
        proc.cfg["gating"] = {"STORE": ["store_lookup"]}
        proc.cfg["gate_thresholds"] = {"store_lookup": 0.0}
        trained.to_disk(tmp_path / "pipeline")
        loaded = spacy.load(tmp_path / "pipeline")
        lproc = loaded.get_pipe("intent_ner")
        for key in ("labels", "intents", "multi_label", "intent_thresholds", "gating", "gate_thresholds", "update_mode"):
            assert lproc.cfg[key] == proc.cfg[key], key
        assert lproc.labels == ("PRODUCT", "STORE")
        assert lproc.intent_labels == tuple(TOY_INTENTS)
        _assert_same_pipeline(trained, loaded)
    finally:
        proc.cfg.update(saved_cfg)


def test_to_bytes_from_bytes(trained):
    fresh = spacy.util.load_model_from_config(trained.config, auto_fill=True)
    assert not fresh.get_pipe("intent_ner").labels
    fresh.from_bytes(trained.to_bytes())
    proc, fproc = trained.get_pipe("intent_ner"), fresh.get_pipe("intent_ner")
    assert fproc.cfg == proc.cfg
    _assert_same_pipeline(trained, fresh)
    # The component alone, into a pipeline built from the config.
    fresh2 = spacy.util.load_model_from_config(trained.config, auto_fill=True)
    fresh2.get_pipe("intent_ner").from_bytes(proc.to_bytes())
    _assert_same_pipeline(trained, fresh2)


# ------------------------------------------------ 6. DocBin and multiprocessing
def test_token_intent_survives_docbin(trained):
    docs = list(trained.pipe(TEXTS))
    data = DocBin(store_user_data=True, docs=docs).to_bytes()
    restored = list(DocBin().from_bytes(data).get_docs(trained.vocab))
    assert len(restored) == len(docs)
    for a, b in zip(docs, restored):
        assert ents_of(a) == ents_of(b)
        assert a.cats == pytest.approx(b.cats)
        for ta, tb in zip(a, b):
            assert tb._.intent.keys() == ta._.intent.keys() == set(TOY_INTENTS)
            assert tb._.intent == pytest.approx(ta._.intent, abs=1e-6)


def test_pipe_n_process_2(trained):
    texts = TEXTS * 2
    single = list(trained.pipe(texts, n_process=1))
    if ON_GPU:  # forked workers cannot use CUDA: a clear error, not one from torch
        with pytest.raises(ValueError, match="forked process. On a GPU use n_process=1"):
            list(trained.pipe(texts, n_process=2, batch_size=4))
        return
    multi = list(trained.pipe(texts, n_process=2, batch_size=4))
    assert [d.text for d in multi] == texts
    for a, b in zip(single, multi):
        assert ents_of(a) == ents_of(b)
        numpy.testing.assert_allclose(scores_of(a), scores_of(b), atol=1e-5)
        assert [t._.intent.keys() for t in b] == [set(TOY_INTENTS)] * len(b)


# --------------------------------------------------- 7. long and empty input
def test_long_text_many_windows(tiny_bert):
    nlp = fresh_nlp(tiny_bert, window=16, stride=12)
    rng = numpy.random.RandomState(0)
    vocab = sorted({w for text, _, _ in TOY for w in text.split()}) + ["zyx", "qq", "7"]
    words = [vocab[i] for i in rng.randint(len(vocab), size=3000)]
    doc = nlp(" ".join(words))
    assert len(doc) == 3000
    matrix = scores_of(doc)
    assert matrix.shape == (len(doc), len(TOY_INTENTS))
    assert numpy.isfinite(matrix).all() and (matrix >= 0).all() and (matrix <= 1).all()
    assert all(len(t._.intent) == 3 for t in list(doc)[::97])
    # A short doc inside one window scores the same alone and in a batch.
    short = "pickup my order at orange store"
    alone = nlp(short)
    (batched, _) = nlp.pipe([short, " ".join(words[:50])])
    numpy.testing.assert_allclose(scores_of(alone), scores_of(batched), atol=1e-5)


def test_empty_and_whitespace_text(trained):
    for text in ("", "   ", "\n\n"):
        doc = trained(text)
        assert list(doc.ents) == []
        for token in doc:
            assert all(numpy.isfinite(v) for v in token._.intent.values())
    docs = list(trained.pipe(["", "buy orange at target", "   "]))
    assert [e.label_ for e in docs[1].ents] == ["PRODUCT"]
    assert docs[0].cats == {} and docs[2].cats == {} and list(docs[2].ents) == []
    # A leading whitespace token does not make a doc whitespace-only.
    lead = trained("  buy orange at target")
    assert lead[0].is_space and lead.cats and [e.label_ for e in lead.ents] == ["PRODUCT"]


# ------------------------------------------------------------------ 8. gating
def test_gating(trained, tmp_path):
    proc = trained.get_pipe("intent_ner")
    saved_cfg = {k: proc.cfg[k] for k in ("gating", "gate_thresholds")}
    texts = TEXTS
    ungated = [ents_of(d) for d in trained.pipe(texts)]
    assert any(l == "STORE" for ents in ungated for _, _, l in ents)
    assert any(l == "PRODUCT" for ents in ungated for _, _, l in ents)
    try:
        proc.cfg["gating"] = {"STORE": ["store_lookup"]}
        proc.cfg["gate_thresholds"] = {"store_lookup": 1.01}
        gated = [ents_of(d) for d in trained.pipe(texts)]
        for before, after in zip(ungated, gated):
            assert after == [e for e in before if e[2] != "STORE"]
        trained.to_disk(tmp_path / "gated")
        loaded = spacy.load(tmp_path / "gated")
        assert [ents_of(d) for d in loaded.pipe(texts)] == gated
        proc.cfg["gate_thresholds"] = {"store_lookup": 0.0}
        assert [ents_of(d) for d in trained.pipe(texts)] == ungated
    finally:
        proc.cfg.update(saved_cfg)
    assert [ents_of(d) for d in trained.pipe(texts)] == ungated


# ------------------------------------------------------------------ 9. errors
def test_unknown_intent_in_update_raises(toy_nlp):
    examples = toy_examples(toy_nlp)
    examples[0].reference.cats = {"refund_request": 1.0}
    with pytest.raises(ValueError, match="refund_request"):
        toy_nlp.update(examples, sgd=Adam(1e-3))


def test_initialize_without_cats(tiny_bert):
    nlp = build_nlp(tiny_bert)
    examples = toy_examples(nlp)
    for eg in examples:
        eg.reference.cats = {}
    with pytest.raises(ValueError, match="ner_only"):
        nlp.initialize(lambda: examples)
    nlp = build_nlp(tiny_bert, update_mode="ner_only")
    nlp.initialize(lambda: examples)
    assert nlp.get_pipe("intent_ner").labels == ("PRODUCT", "STORE")


def test_bad_update_mode_raises(tiny_bert):
    with pytest.raises(ValueError, match="update_mode"):
        build_nlp(tiny_bert, update_mode="sideways")


def test_add_label_after_initialize_raises(toy_nlp):
    proc = toy_nlp.get_pipe("intent_ner")
    assert proc.add_label("STORE") == 0
    with pytest.raises(ValueError, match="NEW_LABEL"):
        proc.add_label("NEW_LABEL")
    with pytest.raises(ValueError, match="new_intent"):
        proc.add_intent("new_intent")
    assert proc.labels == ("PRODUCT", "STORE")


# -------------------------------------------------------------- 10. labels
def test_label_data_round_trip(trained, tiny_bert, tmp_path):
    """As `spacy init labels` does: write label_data, initialize from it."""
    label_data = trained.get_pipe("intent_ner").label_data
    assert label_data == {"ents": ["PRODUCT", "STORE"], "intents": TOY_INTENTS}
    path = tmp_path / "intent_ner.json"
    path.write_text(json.dumps(label_data))
    nlp = build_nlp(tiny_bert)
    nlp.config["initialize"]["components"]["intent_ner"] = {
        "labels": {"@readers": "spacy.read_labels.v1", "path": str(path)}
    }
    # Only STORE / store_lookup in the examples: the rest comes from the file.
    subset = [t for t in TOY if t[2] == ["store_lookup"]]
    nlp.initialize(lambda: toy_examples(nlp, subset))
    proc = nlp.get_pipe("intent_ner")
    assert proc.label_data == label_data
    assert proc.tags == ["O", "B-PRODUCT", "I-PRODUCT", "B-STORE", "I-STORE"]
    assert proc.model.get_ref("ner_head").get_dim("nO") == 5
    assert proc.model.get_ref("intent_head").get_dim("nO") == 3


# ---------------------------------------------------------- 11. MiniLM encoder
def test_packaged_minilm_encoder():
    fix_random_seed(0)
    nlp = spacy.blank("en")
    proc = nlp.add_pipe("intent_ner")
    nlp.initialize(lambda: toy_examples(nlp))
    assert proc.model.get_ref("ner_head").get_dim("nI") == 384
    assert proc.model.get_ref("intent_head").get_dim("nI") == 384
    losses = {}
    nlp.update(toy_examples(nlp)[:2], sgd=Adam(1e-4), losses=losses)
    assert losses["intent_ner_ner"] > 0 and losses["intent_ner_intent"] > 0
    doc = nlp("buy orange at target")
    assert scores_of(doc).shape == (4, 3)
    assert set(doc.cats) == set(TOY_INTENTS)
    assert all(e.label_ in ("PRODUCT", "STORE") for e in doc.ents)
