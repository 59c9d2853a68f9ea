"""BIO tag sets and constrained (well-formed) decoding."""
from typing import List, Sequence, Tuple

import numpy

Span = Tuple[int, int, str]


def bio_tags(labels: Sequence[str]) -> List[str]:
    """Tag inventory: O first, then B-X, I-X for each entity label."""
    tags = ["O"]
    for label in labels:
        tags.extend((f"B-{label}", f"I-{label}"))
    return tags


def transition_mask(tags: Sequence[str]) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """Allowed transitions (prev, next) and allowed start tags.

    I-X may only follow B-X or I-X, and may not start a sequence.
    """
    n = len(tags)
    allowed = numpy.ones((n, n), dtype=bool)
    start = numpy.ones((n,), dtype=bool)
    for j, tag in enumerate(tags):
        if tag.startswith("I-"):
            label = tag[2:]
            start[j] = False
            for i, prev in enumerate(tags):
                allowed[i, j] = prev in (f"B-{label}", f"I-{label}")
    return allowed, start


def viterbi(
    log_probs: List[numpy.ndarray], allowed: numpy.ndarray, start: numpy.ndarray
) -> List[numpy.ndarray]:
    """Best well-formed tag path for each doc, batched over docs.

    log_probs: one (n_tokens, n_tags) array per doc.  Loops over positions
    only; each step is one numpy operation over the whole batch.
    """
    if not log_probs:
        return []
    lengths = numpy.array([len(lp) for lp in log_probs])
    T, K, B = int(lengths.max(initial=0)), allowed.shape[0], len(log_probs)
    if T == 0:
        return [numpy.zeros((0,), dtype="i") for _ in log_probs]
    neg = numpy.float32(-1e9)
    scores = numpy.zeros((B, T, K), dtype="f")
    for b, lp in enumerate(log_probs):
        scores[b, : len(lp)] = lp
    trans = numpy.where(allowed, numpy.float32(0), neg).astype("f")
    back = numpy.zeros((B, T, K), dtype="i")
    delta = scores[:, 0] + numpy.where(start, 0, neg)[None, :]
    for t in range(1, T):
        cand = delta[:, :, None] + trans[None, :, :]  # B x prev x next
        best_prev = cand.argmax(axis=1)
        new = numpy.take_along_axis(cand, best_prev[:, None, :], axis=1)[:, 0] + scores[:, t]
        active = (t < lengths)[:, None]
        delta = numpy.where(active, new, delta)
        back[:, t] = numpy.where(active, best_prev, numpy.arange(K)[None, :])
    # Past a doc's end its back-pointers are the identity, so one batched
    # trace from the last position recovers every doc's path.
    path = numpy.zeros((B, T), dtype="i")
    path[:, T - 1] = delta.argmax(axis=1)
    rows = numpy.arange(B)
    for t in range(T - 1, 0, -1):
        path[:, t - 1] = back[rows, t, path[:, t]]
    return [path[b, : lengths[b]] for b in range(B)]


def tags_to_spans(path: Sequence[int], tags: Sequence[str]) -> List[Span]:
    """Token spans (start, end, label) from a well-formed BIO tag path."""
    spans: List[Span] = []
    start, label = -1, ""
    for i, t in enumerate(path):
        tag = tags[t]
        if tag.startswith("I-") and start >= 0 and tag[2:] == label:
            continue
        if start >= 0:
            spans.append((start, i, label))
            start = -1
        if tag.startswith("B-") or tag.startswith("I-"):
            start, label = i, tag[2:]
    if start >= 0:
        spans.append((start, len(path), label))
    return spans


def biluo_to_bio_ids(biluo: Sequence, tag_index: dict) -> numpy.ndarray:
    """Gold BILUO tags (from Example.get_aligned_ner) to BIO ids; -1 = unknown.

    Unknown covers missing/misaligned tokens ('-' or None) and entity labels
    outside the component's label set.
    """
    ids = numpy.full((len(biluo),), -1, dtype="i")
    for i, tag in enumerate(biluo):
        if tag is None or tag == "-" or tag == "":
            continue
        if tag == "O":
            ids[i] = tag_index["O"]
            continue
        prefix, label = tag.split("-", 1)
        bio = ("B-" if prefix in ("B", "U") else "I-") + label
        ids[i] = tag_index.get(bio, -1)
    return ids
