"""The losses of the two heads, on flattened per-word logits (numpy).

Each function returns ``(loss, gradient of the logits)``; the gradient is
already divided by the number of words that count, as the loss is.

- NER: per-word softmax cross-entropy against the gold BIO tag
  (``gold < 0``: unknown, left out).
- Intents: chosen by the component's ``intent_loss`` setting (see
  ``intent_activation`` and ``intent_xent``):
    sigmoid_sum  - per word, binary cross-entropy summed over the intent labels
                   (the paper's head); its size grows with the number of intents
    sigmoid_mean - the same, averaged over the labels
    softmax      - per word, cross-entropy over the labels (as JointBERT); a query with
                   several intents is trained towards an even split between them
    auto         - softmax for single-label data, sigmoid_mean for multi-label data
    softmax_sets - per word, cross-entropy over the intent sets of the training data:
                   each intent, and each combination of intents a training query has
                   (as JointBERT's `atis_flight#atis_airfare`); an intent's score is
                   the sum of the probabilities of the sets that hold it.  On
                   single-label data it is softmax.
"""
from typing import Tuple

import numpy

INTENT_LOSSES = ("sigmoid_sum", "sigmoid_mean", "softmax", "auto", "softmax_sets")


def _softmax(x: numpy.ndarray) -> numpy.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    e = numpy.exp(x)
    return (e / e.sum(axis=-1, keepdims=True)).astype("f")


def _sigmoid(x: numpy.ndarray) -> numpy.ndarray:
    return (1.0 / (1.0 + numpy.exp(-x))).astype("f")


def _softmax_xent(
    logits: numpy.ndarray, gold: numpy.ndarray, smoothing: float = 0.0
) -> Tuple[float, numpy.ndarray]:
    """Mean cross-entropy over words with a known gold tag; gradient of logits.

    smoothing: label smoothing (Szegedy et al., 2016): the target puts
    1 - smoothing on the gold tag and spreads smoothing evenly over all tags.
    """
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"intent_ner: label_smoothing must be in [0, 1), got {smoothing}")
    probs = _softmax(logits)
    known = gold >= 0
    n = max(int(known.sum()), 1)
    rows = numpy.nonzero(known)[0]
    target = numpy.zeros_like(probs)
    target[rows] = smoothing / probs.shape[1]
    target[rows, gold[rows]] += 1.0 - smoothing
    d = probs - target
    d[~known] = 0.0
    loss = -(target[rows] * numpy.log(numpy.clip(probs[rows], 1e-9, 1.0))).sum() / n
    return float(loss), (d / n).astype("f")


def _softmax_soft_xent(logits: numpy.ndarray, y: numpy.ndarray, mask: numpy.ndarray):
    """Mean (over words) cross-entropy against the intent distribution y/sum(y); gradient."""
    probs = _softmax(logits)
    total = y.sum(axis=1, keepdims=True)
    target = numpy.divide(y, total, out=numpy.zeros_like(y), where=total > 0)
    known = mask * (total > 0)
    n = max(float(known.sum()), 1.0)
    d = (probs - target) * known / n
    loss = -(known * target * numpy.log(numpy.clip(probs, 1e-9, 1.0))).sum() / n
    return float(loss), d.astype("f")


def _sigmoid_bce(logits: numpy.ndarray, y: numpy.ndarray, mask: numpy.ndarray):
    """Mean (over words) summed-over-labels binary cross-entropy; gradient."""
    p = 1.0 / (1.0 + numpy.exp(-logits))
    n = max(float(mask.sum()), 1.0)
    d = (p - y) * mask / n
    eps = 1e-7
    loss = -(mask * (y * numpy.log(p + eps) + (1 - y) * numpy.log(1 - p + eps))).sum() / n
    return float(loss), d.astype("f")


def intent_activation(intent_loss: str, multi_label: bool) -> str:
    """"softmax" or "sigmoid": how intent logits become scores."""
    if intent_loss in ("softmax", "softmax_sets") or (intent_loss == "auto" and not multi_label):
        return "softmax"
    return "sigmoid"


# The default decision threshold on multi-label data, by head.  A softmax head
# trained towards an even split puts about 1/k on each of a query's k intents,
# so 0.5 would drop one of two; 0.4 was the best of 0.2-0.5 on the pooled dev
# sets of store lookup, ATIS and the merged ATIS+SNIPS set
# (benchmarks/results/multidomain/threshold.md).
DEFAULT_INTENT_THRESHOLD = {"sigmoid": 0.5, "softmax": 0.4}
# softmax_sets: an intent's score is a sum over whole sets, so a query whose
# best set holds two intents scores each of them at least that set's
# probability; 0.5 keeps an intent only when the sets that hold it are more
# likely than not.
SETS_INTENT_THRESHOLD = 0.5


def intent_probs(logits: numpy.ndarray, activation: str) -> numpy.ndarray:
    """Intent scores from intent logits (per word)."""
    return _softmax(logits) if activation == "softmax" else _sigmoid(logits)


def intent_xent(logits: numpy.ndarray, y: numpy.ndarray, mask: numpy.ndarray, intent_loss: str, multi_label: bool):
    """The intent loss chosen by `intent_loss`, and its gradient.

    y: per word, the query's intent vector; mask: 1 for words of queries
    that have intents, 0 for the others (they do not count)."""
    if intent_activation(intent_loss, multi_label) == "softmax":
        return _softmax_soft_xent(logits, y, mask)
    loss, d = _sigmoid_bce(logits, y, mask)
    if intent_loss != "sigmoid_sum":
        k = max(logits.shape[1], 1)
        loss, d = loss / k, d / k
    return loss, d
