"""crf = true: a linear-chain CRF on the NER head (crf.py). The loss and the
marginals are checked against brute force over every well-formed path; the
component trains the CRF's scores, decodes with them, saves and loads them,
and an ONNX export keeps them."""
import itertools

import numpy
import pytest
import spacy
from thinc.api import Adam

from spacy_multitask_intent.crf import CRF_START, CRF_TRANS, crf_marginals, crf_nll
from spacy_multitask_intent.decoding import transition_mask

from conftest import fresh_nlp, toy_examples, train
from test_component import SpyOptimizer

TAGS = ["O", "B-A", "I-A", "B-B", "I-B"]


def _paths(n):
    """Every well-formed BIO path of n words over TAGS."""
    allowed, start = transition_mask(TAGS)
    for p in itertools.product(range(len(TAGS)), repeat=n):
        if start[p[0]] and all(allowed[a, b] for a, b in zip(p, p[1:])):
            yield p


def _score(e, p, trans, start):
    return start[p[0]] + sum(e[i, t] for i, t in enumerate(p)) + sum(trans[a, b] for a, b in zip(p, p[1:]))


def _logsumexp(xs):
    xs = numpy.array(list(xs), dtype="f8")
    return float(xs.max() + numpy.log(numpy.exp(xs - xs.max()).sum()))


@pytest.fixture
def problem():
    rng = numpy.random.default_rng(0)
    lengths = [3, 1, 4]
    logits = rng.normal(size=(sum(lengths), len(TAGS))).astype("f")
    trans = rng.normal(size=(len(TAGS), len(TAGS))).astype("f")
    start = rng.normal(size=(len(TAGS),)).astype("f")
    # doc 0: B-A I-A O; doc 1: unknown; doc 2: O, unknown, B-B I-B
    gold = numpy.array([1, 2, 0, -1, 0, -1, 3, 4], "i")
    return logits, lengths, gold, trans, start


def _brute_nll(logits, lengths, gold, trans, start):
    total, offset = 0.0, 0
    for n in lengths:
        e, g = logits[offset : offset + n].astype("f8"), gold[offset : offset + n]
        scores = {p: _score(e, p, trans, start) for p in _paths(n)}
        fits = [s for p, s in scores.items() if all(t < 0 or t == q for t, q in zip(g, p))]
        total += _logsumexp(scores.values()) - _logsumexp(fits)
        offset += n
    return total / int((gold >= 0).sum())


def test_nll_is_the_brute_force_negative_log_likelihood(problem):
    loss, *_ = crf_nll(*problem, TAGS)
    assert loss == pytest.approx(_brute_nll(*problem), rel=1e-4)


def test_gradients_match_finite_differences(problem):
    logits, lengths, gold, trans, start = problem
    _, d_logits, d_trans, d_start = crf_nll(*problem, TAGS)
    allowed, _ = transition_mask(TAGS)
    assert numpy.abs(d_trans[~allowed]).max() < 1e-6  # forbidden pairs take no part
    eps = 1e-3
    for array, grad, index in [(logits, d_logits, (5, 2)), (logits, d_logits, (0, 1)), (trans, d_trans, (1, 2)), (start, d_start, (3,))]:
        up, down = array.copy(), array.copy()
        up[index] += eps
        down[index] -= eps
        args = {id(logits): 0, id(trans): 3, id(start): 4}[id(array)]
        plus, minus = list(problem), list(problem)
        plus[args], minus[args] = up, down
        numeric = (_brute_nll(*plus) - _brute_nll(*minus)) / (2 * eps)
        assert grad[index] == pytest.approx(numeric, abs=2e-3)


def test_marginals_are_the_brute_force_ones(problem):
    logits, lengths, _, trans, start = problem
    docs = numpy.split(logits, numpy.cumsum(lengths)[:-1])
    marg = crf_marginals(docs + [logits[:0]], trans, start, TAGS)
    assert marg[-1].shape == (0, len(TAGS))
    e = docs[2].astype("f8")
    scores = {p: _score(e, p, trans, start) for p in _paths(4)}
    z = _logsumexp(scores.values())
    expected = numpy.zeros((4, len(TAGS)))
    for p, s in scores.items():
        for i, t in enumerate(p):
            expected[i, t] += numpy.exp(s - z)
    numpy.testing.assert_allclose(marg[2], expected, atol=1e-5)
    for m in marg[:3]:
        numpy.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-5)
        assert (m[0, [2, 4]] < 1e-6).all()  # an I- tag cannot start a doc


def test_a_gold_path_that_is_not_bio_is_a_clear_error(problem):
    logits, lengths, gold, trans, start = problem
    gold = gold.copy()
    gold[4] = 2  # doc 2 starts with I-A
    with pytest.raises(ValueError, match="gold tags of doc 2 of the batch are not a well-formed BIO path"):
        crf_nll(logits, lengths, gold, trans, start, TAGS)


@pytest.mark.parametrize("mean", [-30.0, 10.0])
def test_long_docs_keep_exact_marginals_and_the_gold_check(mean):
    """Scores of either sign over 600 words: the marginals still sum to one,
    a valid gold path is accepted and one that starts with I-A is refused."""
    rng = numpy.random.default_rng(1)
    n = 600
    logits = (mean + rng.normal(size=(n, len(TAGS)))).astype("f")
    trans = (5 * rng.normal(size=(len(TAGS), len(TAGS)))).astype("f")
    start = numpy.zeros(len(TAGS), "f")
    gold = numpy.zeros(n, "i")  # all O
    loss, d_logits, _, _ = crf_nll(logits, [n], gold, trans, start, TAGS)
    assert numpy.isfinite(loss) and loss > 0
    numpy.testing.assert_allclose(d_logits.sum(axis=1), 0.0, atol=1e-6)  # marginal - gold: rows sum to 0
    marg = crf_marginals([logits], trans, start, TAGS)[0]
    numpy.testing.assert_allclose(marg.sum(axis=1), 1.0, atol=1e-6)
    # The numpy forward-backward against torch's autograd of log Z: with a
    # known gold path, the loss gradient is (marginals - one-hot gold) / n.
    numpy.testing.assert_allclose(marg, n * d_logits + numpy.eye(len(TAGS))[gold], atol=1e-4)
    bad = gold.copy()
    bad[0] = 2
    with pytest.raises(ValueError, match="not a well-formed BIO path"):
        crf_nll(logits, [n], bad, trans, start, TAGS)
    bad = gold.copy()
    bad[300] = 2  # I-A after O
    with pytest.raises(ValueError, match="not a well-formed BIO path"):
        crf_nll(logits, [n], bad, trans, start, TAGS)
    ok = gold.copy()
    ok[299], ok[300] = -1, 2  # I-A after an unknown word, which may be B-A
    crf_nll(logits, [n], ok, trans, start, TAGS)


def _both_forwards(monkeypatch, *args):
    """crf_nll by the exp-space forward algorithm and by the log-sum-exp one,
    and whether the exp-space one ran."""
    from spacy_multitask_intent import crf

    ran = []
    fits = crf._exp_space_fits
    monkeypatch.setattr(crf, "_exp_space_fits", lambda *a: ran.append(fits(*a)) or ran[-1])
    fast = crf_nll(*args)
    monkeypatch.setattr(crf, "_log_partition", crf._log_partition_logsumexp)
    exact = crf_nll(*args)
    monkeypatch.undo()
    return fast, exact, all(ran) and bool(ran)


def _assert_same(fast, exact):
    assert fast[0] == pytest.approx(exact[0], rel=1e-12)
    for got, want in zip(fast[1:], exact[1:]):
        assert numpy.isfinite(got).all()
        numpy.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("spread", [3.0, 20.0])
def test_the_exp_space_forward_is_the_log_sum_exp_one(monkeypatch, spread):
    """A batch of 32 docs of 1-24 words over 159 tags (79 labels, as ATIS has),
    gold entities of one and two words, a fifth of the gold tags unknown,
    emission and transition scores of either spread (transitions up to ~150
    nats apart): the loss and every gradient of the exp-space forward
    algorithm are those of the log-sum-exp over (B x K x K) per step."""
    tags = ["O"] + [f"{p}-L{i}" for i in range(79) for p in "BI"]
    rng = numpy.random.default_rng(1)
    lengths = [int(n) for n in rng.integers(1, 25, size=32)]
    n, k = sum(lengths), len(tags)
    logits = (spread * rng.normal(size=(n, k))).astype("f")
    trans = (spread * rng.normal(size=(k, k))).astype("f")
    start = rng.normal(size=k).astype("f")
    gold = numpy.zeros(n, "i")
    offset = 0
    for length in lengths:  # B-Lx (I-Lx) at a random place in each doc
        i, label = offset + int(rng.integers(length)), int(rng.integers(79))
        gold[i] = 1 + 2 * label
        if i + 1 < offset + length:
            gold[i + 1] = 2 + 2 * label
        offset += length
    gold[rng.random(n) < 0.2] = -1
    fast, exact, ran = _both_forwards(monkeypatch, logits, lengths, gold, trans, start, tags)
    assert ran  # the exp-space path ran
    _assert_same(fast, exact)


@pytest.mark.parametrize(
    "case",
    ["an unknown word's I-A 800 nats above the rest", "allowed transitions 800 below the forbidden ones", "transitions 700 apart"],
)
def test_scores_far_apart_keep_the_log_sum_exp_answer(monkeypatch, case):
    """Scores that exp() cannot hold side by side: the loss and gradients are
    still the log-sum-exp's, finite, whichever path runs."""
    logits = numpy.zeros((2, len(TAGS)), "f")
    trans = numpy.zeros((len(TAGS), len(TAGS)), "f")
    start = numpy.zeros(len(TAGS), "f")
    gold = numpy.array([0, -1], "i")  # O, then any tag
    allowed, _ = transition_mask(TAGS)
    if case.startswith("an unknown word"):
        logits[1, 2] = 800.0  # I-A, which cannot follow the gold O
    elif case.startswith("allowed"):
        trans[allowed] = -800.0
    else:
        trans[0, 1] = 700.0
    fast, exact, _ = _both_forwards(monkeypatch, logits, [2], gold, trans, start, TAGS)
    _assert_same(fast, exact)


@pytest.mark.parametrize("mode", ["alternating", "joint", "ner_only"])
def test_the_crf_scores_step_once_per_batch_of_accumulated_updates(tiny_bert, mode):
    nlp = fresh_nlp(tiny_bert, model={"crf": True}, update_mode=mode)
    proc = nlp.get_pipe("intent_ner")
    head = proc.model.get_ref("ner_head")
    examples = toy_examples(nlp)
    spy = SpyOptimizer(Adam(1e-3))
    nlp.update(examples[:4], sgd=False, losses={})
    nlp.update(examples[4:], sgd=False, losses={})
    proc.finish_update(spy)
    grads = spy.grads()
    assert len(grads[(head.id, CRF_TRANS)]) == 1 and len(grads[(head.id, CRF_START)]) == 1
    assert numpy.abs(grads[(head.id, CRF_START)][0]).sum() > 0
    assert not head.has_grad(CRF_TRANS) or not head.get_grad(CRF_TRANS).any()  # spent


def test_get_loss_of_a_crf_model_needs_the_examples_and_its_settings(tiny_bert):
    nlp = fresh_nlp(tiny_bert, model={"crf": True}, update_mode="joint")
    proc = nlp.get_pipe("intent_ner")
    examples = toy_examples(nlp)
    targets = proc._targets(examples)
    logits = numpy.zeros((len(targets[0]), len(proc.tags)), "f")
    with pytest.raises(ValueError, match="needs the batch's examples"):
        proc.get_loss([], (logits, None), targets=targets)
    (loss, _), (d, _) = proc.get_loss(examples, (logits, None), targets=targets)
    assert loss > 0 and d.shape == logits.shape
    proc.cfg["loss_balance"] = "uncertainty"
    with pytest.raises(ValueError, match="not built for a model with crf = true"):
        proc.get_loss(examples, (logits, None), targets=targets)


def test_the_component_trains_the_crf_scores_at_the_heads_rate(tiny_bert):
    nlp = fresh_nlp(tiny_bert, model={"crf": True}, update_mode="joint", head_lr_factor=10.0)
    proc = nlp.get_pipe("intent_ner")
    head = proc.model.get_ref("ner_head")
    k = len(proc.tags)
    assert head.get_param(CRF_TRANS).shape == (k, k) and not head.get_param(CRF_TRANS).any()
    assert head.get_param(CRF_START).shape == (k,)
    spy = SpyOptimizer(Adam(1e-3))
    nlp.update(toy_examples(nlp), sgd=False, losses={})
    assert head.has_grad(CRF_TRANS) and head.has_grad(CRF_START)
    proc.finish_update(spy)
    scales = spy.scales()
    assert set(scales[(head.id, CRF_TRANS)]) == {10.0} and set(scales[(head.id, CRF_START)]) == {10.0}
    assert head.get_param(CRF_TRANS).any()


def test_a_trained_crf_tags_the_toy_set_and_round_trips(tiny_bert, tmp_path):
    nlp = fresh_nlp(tiny_bert, model={"crf": True}, update_mode="joint")
    examples = toy_examples(nlp)
    history = train(nlp, examples, steps=40)
    assert history[-1]["intent_ner_ner"] < 0.5 * history[0]["intent_ner_ner"]
    # The scores learned what the toy data shows: every query starts with O,
    # and every two-word entity goes on from its B- tag to its I- tag.
    proc = nlp.get_pipe("intent_ner")
    tags, start, trans = list(proc.tags), *(proc.model.get_ref("ner_head").get_param(n) for n in (CRF_START, CRF_TRANS))
    assert start[tags.index("O")] > max(start[tags.index(f"B-{label}")] for label in proc.labels)
    for label in proc.labels:
        b, i = tags.index(f"B-{label}"), tags.index(f"I-{label}")
        assert trans[b, i] > 0 and trans[b, i] > trans[b, tags.index("O")]
    gold = [[(e.start, e.end, e.label_) for e in eg.reference.ents] for eg in examples]
    texts = [eg.reference.text for eg in examples]
    docs = list(nlp.pipe(texts))
    got = [[(e.start, e.end, e.label_) for e in d.ents] for d in docs]
    assert got == gold
    for doc in docs:  # confidences are CRF marginals: probabilities
        for ent in doc.ents:
            assert 0.0 < ent._.confidence <= 1.0 + 1e-6
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    head, lhead = (p.get_pipe("intent_ner").model.get_ref("ner_head") for p in (nlp, loaded))
    numpy.testing.assert_array_equal(lhead.get_param(CRF_TRANS), head.get_param(CRF_TRANS))
    numpy.testing.assert_array_equal(lhead.get_param(CRF_START), head.get_param(CRF_START))
    assert [[(e.start, e.end, e.label_) for e in d.ents] for d in loaded.pipe(texts)] == gold


def test_decoding_follows_the_crf_scores(tiny_bert):
    nlp = fresh_nlp(tiny_bert, model={"crf": True})
    proc = nlp.get_pipe("intent_ner")
    head = proc.model.get_ref("ner_head")
    tags, k = list(proc.tags), len(proc.tags)
    text = "pickup my order at orange store"
    for label in proc.labels:
        # Every doc must be "B-label I-label O O ...": the scores dwarf the
        # untrained head's emissions.
        begin, inside, out = tags.index(f"B-{label}"), tags.index(f"I-{label}"), tags.index("O")
        start = numpy.full((k,), -50.0, "f")
        start[begin] = 50.0
        trans = numpy.full((k, k), -50.0, "f")
        trans[begin, inside] = trans[inside, out] = trans[out, out] = 50.0
        head.set_param(CRF_START, start)
        head.set_param(CRF_TRANS, trans)
        doc = nlp(text)
        assert [(e.start, e.end, e.label_) for e in doc.ents] == [(0, 2, label)]
        assert doc.ents[0]._.confidence == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(
    "cfg, message",
    [
        ({"label_smoothing": 0.1}, "label_smoothing applies to the per-word NER loss"),
        ({"update_mode": "joint", "loss_balance": "uncertainty"}, "not built for a model with crf = true"),
    ],
)
def test_settings_the_crf_cannot_use_are_refused(tiny_bert, cfg, message):
    with pytest.raises(ValueError, match=message):
        fresh_nlp(tiny_bert, model={"crf": True}, **cfg)


def test_crf_must_be_a_boolean(tiny_bert):
    with pytest.raises(Exception, match="crf"):
        fresh_nlp(tiny_bert, model={"crf": "yes"})


def test_without_crf_the_head_has_no_crf_scores(toy_nlp):
    head = toy_nlp.get_pipe("intent_ner").model.get_ref("ner_head")
    assert CRF_TRANS not in head.param_names and CRF_START not in head.param_names



def _torch_marginals(logits, trans, start):
    """The reference: the gradient of log Z by torch's autograd through the
    log-sum-exp forward algorithm."""
    import torch

    from spacy_multitask_intent.crf import _log_partition_logsumexp, _tensors

    E, T, S, padded, lens, allowed, start_ok = _tensors(torch, logits, [len(logits)], trans, start, TAGS)
    with torch.enable_grad():
        _log_partition_logsumexp(torch, padded, lens, T, S, allowed, start_ok).sum().backward()
    return E.grad.numpy()


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("scale", [1.0, 1000.0])
def test_marginals_of_mixed_lengths_whitespace_and_extreme_scores(scale):
    """A batch of a 3-word and a 300-word doc, whitespace rows at -1e9 (as
    set_annotations writes them), transition scores all high (the short doc's
    padding must not run on) or thousands of nats apart: no warning, and each
    doc's marginals are torch's on that doc alone."""
    rng = numpy.random.default_rng(3)
    trans = (5.0 + scale * rng.normal(size=(len(TAGS), len(TAGS)))).astype("f")
    start = rng.normal(size=len(TAGS)).astype("f")
    docs = [rng.normal(size=(n, len(TAGS))).astype("f") for n in (3, 300)]
    docs[1][[0, 150, 299], 1:] = -1e9  # whitespace: O only
    marg = crf_marginals(docs, trans, start, TAGS)
    for logits, m in zip(docs, marg):
        assert numpy.isfinite(m).all()
        numpy.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-5)
        numpy.testing.assert_allclose(m, _torch_marginals(logits, trans, start), atol=1e-5)
    assert marg[1][[0, 150, 299], 0] == pytest.approx(1.0)
