"""BIO tag sets and constrained (well-formed) decoding."""
from functools import lru_cache
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy

Span = Tuple[int, int, str]
NEG = numpy.float32(-1e9)  # the score of a forbidden transition or first tag


def bio_tags(labels: Sequence[str]) -> List[str]:
    """Tag inventory: O first, then B-X, I-X for each entity label."""
    tags = ["O"]
    for label in labels:
        tags.extend((f"B-{label}", f"I-{label}"))
    return tags


def transition_mask(tags: Sequence[str]) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """Allowed transitions (prev, next) and allowed start tags.

    I-X may only follow B-X or I-X, and may not start a sequence.  Cached per
    tag inventory (the arrays are read-only).
    """
    return _transition_mask(tuple(tags))


@lru_cache(maxsize=32)
def _tag_parts(tags: Tuple[str, ...]) -> Tuple[numpy.ndarray, numpy.ndarray, Tuple[str, ...]]:
    """Per tag: entity-label id (-1 for O), whether it is a B- tag; label names."""
    names: List[str] = []
    index = {}
    label_id = numpy.full((len(tags),), -1, dtype="i")
    is_begin = numpy.zeros((len(tags),), dtype=bool)
    for k, tag in enumerate(tags):
        if tag.startswith(("B-", "I-")):
            label = tag[2:]
            if label not in index:
                index[label] = len(names)
                names.append(label)
            label_id[k] = index[label]
            is_begin[k] = tag.startswith("B-")
    for a in (label_id, is_begin):
        a.setflags(write=False)
    return label_id, is_begin, tuple(names)


@lru_cache(maxsize=32)
def _transition_mask(tags: Tuple[str, ...]) -> Tuple[numpy.ndarray, numpy.ndarray]:
    label_id, is_begin, _ = _tag_parts(tags)
    inside = (label_id >= 0) & ~is_begin
    # prev -> next is allowed unless next is I-X and prev is not B-X / I-X.
    same = label_id[:, None] == label_id[None, :]
    allowed = ~inside[None, :] | (same & (label_id[:, None] >= 0))
    start = ~inside
    for a in (allowed, start):
        a.setflags(write=False)
    return allowed, start


def _decode(
    log_probs: List[numpy.ndarray], n_tags: int, start: numpy.ndarray, step, start_scores=None
) -> List[numpy.ndarray]:
    """The batched Viterbi loop shared by viterbi() and viterbi_bio().

    step(delta) -> (best, prev): for every doc and next tag, the best score
    over the allowed previous tags and that tag's index (B x K each).
    Loops over positions only; each step is one numpy operation over the
    whole batch.
    """
    if not log_probs:
        return []
    lengths = numpy.array([len(lp) for lp in log_probs])
    T, K, B = int(lengths.max(initial=0)), n_tags, len(log_probs)
    if T == 0:
        return [numpy.zeros((0,), dtype="i") for _ in log_probs]
    scores = numpy.zeros((B, T, K), dtype="f")
    for b, lp in enumerate(log_probs):
        scores[b, : len(lp)] = lp
    back = numpy.zeros((B, T, K), dtype="i")
    identity = numpy.arange(K, dtype="i")[None, :]
    first = numpy.where(start, 0 if start_scores is None else numpy.asarray(start_scores, dtype="f"), NEG).astype("f")
    delta = scores[:, 0] + first[None, :]
    for t in range(1, T):
        best, prev = step(delta)
        active = (t < lengths)[:, None]
        delta = numpy.where(active, best + scores[:, t], delta)
        back[:, t] = numpy.where(active, prev, identity)
    # Past a doc's end its back-pointers are the identity, so one batched
    # trace from the last position recovers every doc's path.
    path = numpy.zeros((B, T), dtype="i")
    path[:, T - 1] = delta.argmax(axis=1)
    rows = numpy.arange(B)
    for t in range(T - 1, 0, -1):
        path[:, t - 1] = back[rows, t, path[:, t]]
    return [path[b, : lengths[b]] for b in range(B)]


def viterbi(
    log_probs: List[numpy.ndarray],
    allowed: numpy.ndarray,
    start: numpy.ndarray,
    trans_scores: Optional[numpy.ndarray] = None,
    start_scores: Optional[numpy.ndarray] = None,
) -> List[numpy.ndarray]:
    """Best well-formed tag path for each doc, batched over docs.

    log_probs: one (n_tokens, n_tags) array per doc; allowed[prev, next]
    and start[tag] say which transitions and first tags are allowed;
    trans_scores[prev, next] and start_scores[tag], when given, are added to
    the allowed ones (e.g. ``tag_bigram_scores``).
    """
    zero = numpy.float32(0) if trans_scores is None else numpy.asarray(trans_scores, dtype="f")
    trans = numpy.where(allowed, zero, NEG).astype("f")

    def step(delta):
        cand = delta[:, :, None] + trans[None, :, :]  # B x prev x next
        prev = cand.argmax(axis=1)
        return numpy.take_along_axis(cand, prev[:, None, :], axis=1)[:, 0], prev

    return _decode(log_probs, allowed.shape[0], start, step, start_scores)


def tag_bigram_scores(
    paths: Iterable[Sequence[int]], tags: Sequence[str], alpha: float = 1.0
) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """Transition scores estimated from gold tag paths: log P(next | prev) and
    log P(first tag), with add-``alpha`` smoothing over the transitions and
    first tags ``transition_mask`` allows (the others get ``NEG``).  A tag id
    of -1 (unknown gold) breaks the chain: no transition into or out of it is
    counted."""
    allowed, start = transition_mask(tags)
    K = len(tags)
    pairs = numpy.zeros((K, K), dtype="f8")
    firsts = numpy.zeros((K,), dtype="f8")
    for path in paths:
        p = numpy.asarray(path, dtype="i").reshape(-1)
        if p.size and p[0] >= 0:
            firsts[p[0]] += 1
        if p.size > 1:
            a, b = p[:-1], p[1:]
            ok = (a >= 0) & (b >= 0)
            numpy.add.at(pairs, (a[ok], b[ok]), 1)
    pairs = numpy.where(allowed, pairs + alpha, 0.0)
    firsts = numpy.where(start, firsts + alpha, 0.0)
    with numpy.errstate(divide="ignore", invalid="ignore"):
        trans = numpy.log(pairs / numpy.maximum(pairs.sum(axis=1, keepdims=True), 1e-300))
        first = numpy.log(firsts / max(firsts.sum(), 1e-300))
    trans = numpy.where(allowed, trans, NEG).astype("f")
    first = numpy.where(start, first, NEG).astype("f")
    return trans, first


@lru_cache(maxsize=32)
def _bio_links(tags: Tuple[str, ...]):
    """I- tag indices and, for each, its B- tag's index; None when some I-X
    has no B-X (then only the general viterbi() applies)."""
    label_id, is_begin, _ = _tag_parts(tags)
    begin_index = {int(label_id[k]): k for k in range(len(tags)) if label_id[k] >= 0 and is_begin[k]}
    inside = numpy.flatnonzero((label_id >= 0) & ~is_begin)
    if any(int(label_id[k]) not in begin_index for k in inside):
        return None
    begin_of = numpy.array([begin_index[int(label_id[k])] for k in inside], dtype=inside.dtype)
    for a in (inside, begin_of):
        a.setflags(write=False)
    return inside, begin_of


def viterbi_bio(log_probs: List[numpy.ndarray], tags: Sequence[str]) -> List[numpy.ndarray]:
    """viterbi() under transition_mask(tags), in O(tags) per word, not O(tags²).

    With hard BIO constraints and no transition scores, the best predecessor
    of O or B-X is the best tag overall, and that of I-X is the better of B-X
    and I-X; so each step needs one argmax over tags and one comparison per
    label instead of a tags × tags table (ATIS: 159 tags, 25,281 pairs).
    Ties go to the lower tag index, as in viterbi() (between B-X and I-X: to
    B-X, which bio_tags() puts first), so with bio_tags() inventories the
    paths are the same wherever some well-formed path has a finite score.
    """
    links = _bio_links(tuple(tags))
    if links is None:
        return viterbi(log_probs, *transition_mask(tags))
    inside, begin_of = links
    _, start = transition_mask(tags)
    K = len(tags)

    def step(delta):
        top = delta.argmax(axis=1)
        best = numpy.repeat(delta[numpy.arange(len(delta)), top][:, None], K, axis=1)
        prev = numpy.repeat(top[:, None].astype("i"), K, axis=1)
        from_begin, from_inside = delta[:, begin_of], delta[:, inside]
        take_begin = from_begin >= from_inside  # B-X has the lower index
        best[:, inside] = numpy.where(take_begin, from_begin, from_inside)
        prev[:, inside] = numpy.where(take_begin, begin_of[None, :], inside[None, :])
        return best, prev

    return _decode(log_probs, K, start, step)


def tags_to_spans(path: Sequence[int], tags: Sequence[str]) -> List[Span]:
    """Token spans (start, end, label) from a BIO tag path, vectorised.

    A span starts at a B- tag, or at an I- tag that does not continue the
    previous word's label (an ill-formed path is read leniently); it runs
    over the following I- tags of the same label.
    """
    return tags_to_spans_batch([path], tags)[0]


def tags_to_spans_batch(paths: Sequence[Sequence[int]], tags: Sequence[str]) -> List[List[Span]]:
    """``tags_to_spans`` of every path, in one pass over their concatenation
    (a span never runs across two paths)."""
    label_id, is_begin, names = _tag_parts(tuple(tags))
    arrays = [numpy.asarray(p, dtype="i").reshape(-1) for p in paths]
    out: List[List[Span]] = [[] for _ in arrays]
    if not arrays:
        return out
    p = numpy.concatenate(arrays)
    if p.size == 0:
        return out
    lengths = numpy.fromiter((len(a) for a in arrays), dtype="int64", count=len(arrays))
    offsets = numpy.cumsum(lengths) - lengths
    lab = label_id[p]
    prev = numpy.empty_like(lab)
    prev[0] = -1
    prev[1:] = lab[:-1]
    prev[offsets[lengths > 0]] = -1  # a path's first word continues nothing
    tagged = lab >= 0
    cont = tagged & ~is_begin[p] & (lab == prev)
    starts = numpy.flatnonzero(tagged & ~cont)
    if starts.size == 0:
        return out
    breaks = numpy.union1d(numpy.flatnonzero(~cont), offsets + lengths)
    ends = breaks[numpy.searchsorted(breaks, starts, side="right")]
    which = numpy.searchsorted(offsets, starts, side="right") - 1
    # Paths of length 0 share their offset with the next path; side="right"
    # picks the last of them, the one that holds the word.
    base = offsets[which]
    for b, s, e, k in zip(which.tolist(), (starts - base).tolist(), (ends - base).tolist(), lab[starts].tolist()):
        out[b].append((s, e, names[k]))
    return out


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


def merge_glued(spans: Sequence[Span], doc) -> List[Span]:
    """Join a span to the previous one when both have the same label, touch,
    and no whitespace separates them in `doc`'s text. On raw text spaCy splits
    words such as "st." into "st" "."; a head trained on whitespace tokens
    tends to start a new entity at the split-off piece, and an entity should
    not start in the middle of a whitespace-delimited word that continues one.
    Only the boundaries of touching same-label spans are looked at."""
    out: List[Span] = []
    for s, e, label in spans:
        if out and out[-1][2] == label and out[-1][1] == s and not doc[s - 1].whitespace_:
            out[-1] = (out[-1][0], e, label)
        else:
            out.append((s, e, label))
    return out
