"""losses.py on hand-made logits: values and gradients (finite differences)."""
import numpy
import pytest

from spacy_multitask_intent.losses import (
    _sigmoid_bce,
    _softmax,
    _softmax_soft_xent,
    _softmax_xent,
    intent_activation,
    intent_probs,
    intent_xent,
)


def numeric_grad(f, x, eps=1e-3):
    g = numpy.zeros_like(x, dtype="f8")
    for idx in numpy.ndindex(*x.shape):
        hi, lo = x.astype("f8").copy(), x.astype("f8").copy()
        hi[idx] += eps
        lo[idx] -= eps
        g[idx] = (f(hi) - f(lo)) / (2 * eps)
    return g


def test_softmax_xent_value_gradient_and_unknown_words():
    rng = numpy.random.default_rng(0)
    logits = rng.normal(size=(4, 5)).astype("f")
    gold = numpy.array([0, 3, -1, 2])  # word 2: unknown tag, left out
    loss, d = _softmax_xent(logits, gold)
    p = _softmax(logits.astype("f8"))
    assert loss == pytest.approx(-numpy.mean(numpy.log(p[[0, 1, 3], [0, 3, 2]])), rel=1e-5)
    assert not d[2].any()
    num = numeric_grad(lambda x: _softmax_xent(x.astype("f"), gold)[0], logits)
    assert numpy.allclose(d, num, atol=1e-3)


def test_softmax_xent_with_no_known_word_is_zero():
    loss, d = _softmax_xent(numpy.zeros((3, 4), "f"), numpy.array([-1, -1, -1]))
    assert loss == 0.0 and not d.any()


def test_sigmoid_bce_value_gradient_and_mask():
    rng = numpy.random.default_rng(1)
    logits = rng.normal(size=(3, 4)).astype("f")
    y = (rng.random((3, 4)) > 0.5).astype("f")
    mask = numpy.array([[1], [0], [1]], "f")
    loss, d = _sigmoid_bce(logits, y, mask)
    p = 1 / (1 + numpy.exp(-logits.astype("f8")))
    per_word = -(y * numpy.log(p) + (1 - y) * numpy.log(1 - p)).sum(axis=1)
    assert loss == pytest.approx((per_word[0] + per_word[2]) / 2, rel=1e-4)
    assert not d[1].any()
    num = numeric_grad(lambda x: _sigmoid_bce(x.astype("f"), y, mask)[0], logits)
    assert numpy.allclose(d, num, atol=1e-3)


def test_soft_xent_splits_a_two_intent_target():
    logits = numpy.zeros((1, 4), "f")
    y = numpy.array([[1, 0, 1, 0]], "f")
    loss, d = _softmax_soft_xent(logits, y, numpy.ones((1, 1), "f"))
    assert loss == pytest.approx(numpy.log(4), rel=1e-5)
    assert d == pytest.approx(numpy.array([[-0.25, 0.25, -0.25, 0.25]]))


@pytest.mark.parametrize(
    "loss, multi, want",
    [("sigmoid_sum", False, "sigmoid"), ("sigmoid_mean", False, "sigmoid"), ("softmax", True, "softmax"),
     ("auto", False, "softmax"), ("auto", True, "sigmoid")],
)
def test_intent_activation(loss, multi, want):
    assert intent_activation(loss, multi) == want


def test_intent_xent_choices():
    rng = numpy.random.default_rng(2)
    logits = rng.normal(size=(5, 3)).astype("f")
    y = numpy.eye(3, dtype="f")[[0, 1, 2, 0, 1]]
    mask = numpy.ones((5, 1), "f")
    l_sum, d_sum = intent_xent(logits, y, mask, "sigmoid_sum", False)
    l_mean, d_mean = intent_xent(logits, y, mask, "sigmoid_mean", False)
    l_auto_multi, _ = intent_xent(logits, y, mask, "auto", True)
    l_soft, _ = intent_xent(logits, y, mask, "softmax", False)
    l_auto_single, _ = intent_xent(logits, y, mask, "auto", False)
    assert l_mean == pytest.approx(l_sum / 3, rel=1e-6) and numpy.allclose(d_mean, d_sum / 3)
    assert l_auto_multi == pytest.approx(l_mean)
    assert l_soft == pytest.approx(l_auto_single) == pytest.approx(_softmax_soft_xent(logits, y, mask)[0])
    assert l_soft != pytest.approx(l_sum)


def test_intent_probs():
    logits = numpy.array([[0.0, numpy.log(3.0)]], "f")
    assert intent_probs(logits, "softmax") == pytest.approx(numpy.array([[0.25, 0.75]]))
    assert intent_probs(logits, "sigmoid") == pytest.approx(numpy.array([[0.5, 0.75]]))


def test_softmax_soft_xent_gradient_matches_finite_differences():
    rng = numpy.random.default_rng(0)
    logits = rng.normal(size=(5, 4)).astype("f")
    y = numpy.zeros((5, 4), "f")
    y[[0, 1, 2, 3], [1, 2, 0, 3]] = 1.0
    y[3, 0] = 1.0  # two intents: target 0.5 / 0.5
    mask = numpy.array([[1], [1], [1], [1], [0]], "f")  # last word: no intents
    loss, d = _softmax_soft_xent(logits, y, mask)
    num = numeric_grad(lambda x: _softmax_soft_xent(x.astype("f"), y, mask)[0], logits)
    assert numpy.allclose(d, num, atol=1e-3)
    assert not d[4].any()
    # Per word: cross-entropy against the (one-hot or split) target; masked words left out.
    logp = numpy.log(numpy.exp(logits) / numpy.exp(logits).sum(1, keepdims=True))
    rows = [-logp[0, 1], -logp[1, 2], -logp[2, 0], -0.5 * logp[3, 3] - 0.5 * logp[3, 0]]
    assert loss == pytest.approx(numpy.mean(rows), rel=1e-4)


def test_project_conflicting_removes_only_the_opposing_part():
    from spacy_multitask_intent.updates import project_conflicting

    g_ner = numpy.array([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0], [0.0, 0.0]], "f")
    g_int = numpy.array([[-1.0, 1.0], [1.0, 1.0], [3.0, -4.0], [5.0, 5.0]], "f")
    out = project_conflicting(g_int, g_ner)
    # row 0 conflicts: the part along g_ner goes, the orthogonal part stays
    assert out[0].tolist() == pytest.approx([0.0, 1.0])
    # row 1 agrees with the NER gradient: unchanged
    assert out[1].tolist() == pytest.approx([1.0, 1.0])
    # row 2 conflicts: projected onto the plane normal to g_ner
    assert out[2].tolist() == pytest.approx([3.0, 0.0])
    # a zero NER gradient cannot conflict
    assert out[3].tolist() == pytest.approx([5.0, 5.0])
    assert ((out * g_ner).sum(axis=1) >= -1e-6).all()


def test_softmax_xent_label_smoothing_value_and_gradient():
    rng = numpy.random.default_rng(3)
    logits = rng.normal(size=(4, 5)).astype("f")
    gold = numpy.array([1, -1, 4, 0])
    loss, d = _softmax_xent(logits, gold, 0.1)
    p = _softmax(logits.astype("f8"))
    rows = [0, 2, 3]
    target = numpy.full((3, 5), 0.1 / 5)
    target[[0, 1, 2], gold[rows]] += 0.9
    assert loss == pytest.approx(-(target * numpy.log(p[rows])).sum() / 3, rel=1e-5)
    num = numeric_grad(lambda x: _softmax_xent(x.astype("f"), gold, 0.1)[0], logits)
    assert numpy.allclose(d, num, atol=1e-3)
    assert not d[1].any()
    assert _softmax_xent(logits, gold, 0.0)[0] == pytest.approx(_softmax_xent(logits, gold)[0])
    with pytest.raises(ValueError, match="label_smoothing"):
        _softmax_xent(logits, gold, 1.0)
