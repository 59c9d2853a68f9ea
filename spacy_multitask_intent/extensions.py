"""Custom attributes: the score matrix lives on the Doc, token dicts are views."""
from typing import Dict, Optional

import numpy
from spacy.tokens import Doc, Span, Token

SCORES_ATTR = "intent_scores"
LABELS_ATTR = "intent_labels"
TAG_PROBS_ATTR = "tag_probs"  # per word: the probability of its decoded BIO tag


def install_extensions() -> None:
    """Register the extensions once; safe to call any number of times."""
    if not Doc.has_extension(SCORES_ATTR):
        Doc.set_extension(SCORES_ATTR, default=None)
    if not Doc.has_extension(LABELS_ATTR):
        Doc.set_extension(LABELS_ATTR, default=None)
    if not Doc.has_extension(TAG_PROBS_ATTR):
        Doc.set_extension(TAG_PROBS_ATTR, default=None)
    if not Span.has_extension("confidence"):
        Span.set_extension("confidence", getter=_span_confidence)
    if not Token.has_extension("intent"):
        Token.set_extension("intent", getter=_token_intent)
    if not Span.has_extension("intent"):
        Span.set_extension("intent", getter=_span_intent)


def _matrix(doc: Doc) -> Optional[numpy.ndarray]:
    scores = doc._.get(SCORES_ATTR)
    if scores is None:
        return None
    return numpy.asarray(scores, dtype="f").reshape(len(doc), -1)


def _token_intent(token: Token) -> Dict[str, float]:
    """{intent: probability} for this word (empty if the doc has no scores)."""
    scores = _matrix(token.doc)
    labels = token.doc._.get(LABELS_ATTR)
    if scores is None or not labels:
        return {}
    return dict(zip(labels, scores[token.i].tolist()))


def _span_intent(span: Span) -> Dict[str, float]:
    """Mean of the span's word scores."""
    scores = _matrix(span.doc)
    labels = span.doc._.get(LABELS_ATTR)
    if scores is None or not labels or len(span) == 0:
        return {}
    return dict(zip(labels, scores[span.start : span.end].mean(axis=0).tolist()))


def _span_confidence(span: Span) -> Optional[float]:
    """Mean probability of the span's decoded BIO tags (None if not predicted)."""
    probs = span.doc._.get(TAG_PROBS_ATTR)
    if probs is None or len(span) == 0:
        return None
    return float(numpy.asarray(probs, dtype="f")[span.start : span.end].mean())
