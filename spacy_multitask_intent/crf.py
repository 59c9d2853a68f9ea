"""A linear-chain CRF over the NER head's per-word tag scores (Lafferty et al., 2001).

With ``crf = true`` in the model's config, the NER head's logits are a CRF's
emission scores and the head holds two more parameters: ``crf_trans[prev,
next]``, the score of each tag bigram, and ``crf_start[tag]``, the score of
each first tag.  They start at zero and train with the head (the NER step, at
the heads' learn rate).  The NER loss is the negative log-likelihood of the
gold tag path over all well-formed paths, in place of the per-word
cross-entropy; a word whose gold tag is unknown (misaligned, whitespace) may
take any tag in the gold lattice, so it is summed over rather than dropped.
Decoding is the constrained Viterbi of ``decoding.py`` with these scores, and
each word's confidence is the CRF's marginal probability of its decoded tag.

For training, the forward algorithm runs in torch, so autograd gives the
gradients of the emissions and both score tables.  At inference the marginals
come from forward-backward in numpy (``crf_marginals``).
"""
from typing import List, Optional, Sequence, Tuple

import numpy

from .decoding import transition_mask

CRF_TRANS, CRF_START = "crf_trans", "crf_start"  # param names on the NER head
FORBIDDEN = -1e4  # the score of a forbidden transition or first tag (exp() of it vanishes beside any allowed path)


def declare_crf(head) -> None:
    """Give a NER head node the CRF's two score tables, unset: the model
    sizes them at initialize, an export or a model file fills them."""
    for name in (CRF_TRANS, CRF_START):
        head.set_param(name, None)


def crf_params(head) -> Optional[Tuple[numpy.ndarray, numpy.ndarray]]:
    """(crf_trans, crf_start) of a NER head with a CRF, else None."""
    if not head.has_param(CRF_TRANS) or not head.has_param(CRF_START):
        return None
    return head.ops.to_numpy(head.get_param(CRF_TRANS)), head.ops.to_numpy(head.get_param(CRF_START))


def _log_partition(torch, emissions, lengths, trans, start, allowed, start_ok, keep=None):
    """log Z of each doc's chain: emissions (B x L x K, padded), lengths (B,);
    keep (B x L x K bool), when given, is the set of tags each word may take.

    Each step is one (B x K) @ (K x K) product in exp space, each alpha row
    rescaled by its maximum and the allowed transitions by theirs (a
    log-sum-exp over a (B x K x K) tensor per step costs seconds per batch on
    a CPU with a hundred tags or more, in the forward and again in the
    backward pass).  A tag that no tag still in play may step into takes the
    forbidden score, as in the log-sum-exp.  Terms further than about 745
    nats below a row's maximum vanish in exp space, so where the scores could
    spread that far (``_exp_space_fits``), ``crf_nll`` takes the exact
    log-sum-exp (``_log_partition_logsumexp``) instead."""
    zero = emissions.new_zeros(())
    forbid = emissions.new_full((), FORBIDDEN)
    top = trans.detach()[allowed].max() if bool(allowed.any()) else zero
    # exp() of the allowed scores only: a forbidden one far above them would be
    # inf, and its gradient 0 * inf
    exp_trans = torch.exp(torch.where(allowed, trans - top, emissions.new_full((), -numpy.inf)))
    first = start + torch.where(start_ok, zero, forbid)
    if keep is not None:
        emissions = emissions + torch.where(keep, zero, forbid)
    tiny = torch.finfo(emissions.dtype).tiny
    alpha = first[None, :] + emissions[:, 0]
    for t in range(1, emissions.shape[1]):
        m = alpha.detach().max(dim=1, keepdim=True).values
        x = torch.exp(alpha - m) @ exp_trans
        ok = x >= tiny  # else no tag in play steps into this one
        log_x = torch.where(ok, torch.log(torch.where(ok, x, torch.ones_like(x))) + m + top, forbid + m)
        alpha = torch.where((lengths > t)[:, None], log_x + emissions[:, t], alpha)
    return torch.logsumexp(alpha, dim=1)


# float64's exp() is subnormal below -708 and 0 below -745: a bound on how far
# an alpha row can spread that stays under this keeps every term the
# log-sum-exp would count
_EXP_SPAN = 600.0


def _exp_space_fits(torch, emissions, trans, start, allowed, start_ok) -> bool:
    """Whether twice the allowed transition scores' spread, plus the widest
    spread of one word's emission scores, plus the allowed start scores'
    spread and log(tags), stays within _EXP_SPAN: then no term the exact
    forward algorithm counts is lost in exp space."""
    def spread(x):
        return float(x.max() - x.min()) if x.numel() else 0.0

    trans, start, emissions = trans.detach(), start.detach(), emissions.detach()
    words = float((emissions.max(dim=-1).values - emissions.min(dim=-1).values).max()) if emissions.numel() else 0.0
    bound = 2 * spread(trans[allowed]) + words + spread(start[start_ok]) + float(numpy.log(max(emissions.shape[-1], 1)))
    return bound <= _EXP_SPAN


def _log_partition_logsumexp(torch, emissions, lengths, trans, start, allowed, start_ok, keep=None):
    """log Z as ``_log_partition``, by a log-sum-exp over (B x K x K) per step."""
    zero = emissions.new_zeros(())
    forbid = emissions.new_full((), FORBIDDEN)
    trans = trans + torch.where(allowed, zero, forbid)
    first = start + torch.where(start_ok, zero, forbid)
    if keep is not None:
        emissions = emissions + torch.where(keep, zero, forbid)
    alpha = first[None, :] + emissions[:, 0]
    for t in range(1, emissions.shape[1]):
        step = torch.logsumexp(alpha[:, :, None] + trans[None, :, :], dim=1) + emissions[:, t]
        alpha = torch.where((lengths > t)[:, None], step, alpha)
    return torch.logsumexp(alpha, dim=1)


def _tensors(torch, flat: numpy.ndarray, lengths: Sequence[int], trans, start, tags):
    """float64 tensors for training's forward algorithm: its scores grow with
    a doc's length, and float32 loses the gradients (marginals minus gold) on
    long docs."""
    allowed, start_ok = transition_mask(tags)
    E = torch.tensor(numpy.asarray(flat, dtype="f8"), requires_grad=True)
    T = torch.tensor(numpy.asarray(trans, dtype="f8"), requires_grad=True)
    S = torch.tensor(numpy.asarray(start, dtype="f8"), requires_grad=True)
    padded = torch.nn.utils.rnn.pad_sequence(list(torch.split(E, list(lengths))), batch_first=True)
    return E, T, S, padded, torch.tensor(list(lengths)), torch.tensor(allowed), torch.tensor(start_ok)


def crf_nll(
    logits: numpy.ndarray,
    lengths: Sequence[int],
    gold: numpy.ndarray,
    trans: numpy.ndarray,
    start: numpy.ndarray,
    tags: Sequence[str],
) -> Tuple[float, numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """The CRF's negative log-likelihood of the gold paths, per known word.

    logits: the NER head's flattened rows (sum(lengths) x n_tags); gold: the
    gold tag id per row (-1: unknown, any tag).  Returns (loss, d_logits,
    d_trans, d_start); the loss and every gradient are divided by the number
    of words with a known gold tag, as the per-word cross-entropy is.
    """
    import torch

    lengths = [int(n) for n in lengths]
    if sum(lengths) != len(logits) or len(gold) != len(logits):
        raise ValueError(
            f"crf_nll: {len(logits)} logit rows and {len(gold)} gold tags for docs of {sum(lengths)} words"
        )
    doc_ids = [i for i, n in enumerate(lengths) if n]
    keep_docs = [lengths[i] for i in doc_ids]
    d_trans = numpy.zeros_like(numpy.asarray(trans, dtype="f"))
    d_start = numpy.zeros_like(numpy.asarray(start, dtype="f"))
    if not keep_docs:
        return 0.0, numpy.zeros_like(numpy.asarray(logits, dtype="f")), d_trans, d_start
    gold = numpy.asarray(gold, dtype="i")
    n_known = max(int((gold >= 0).sum()), 1)
    # The gold lattice: a known word keeps its gold tag, an unknown one any tag.
    keep = numpy.ones(logits.shape, dtype=bool)
    known = gold >= 0
    keep[known] = False
    keep[numpy.flatnonzero(known), gold[known]] = True
    splits = numpy.cumsum(keep_docs)[:-1]
    for i, doc_keep in zip(doc_ids, numpy.split(keep, splits)):
        if not _has_path(doc_keep, tags):
            raise ValueError(
                f"intent_ner: the gold tags of doc {i} of the batch are not a well-formed BIO path "
                "(an I- tag that does not follow its B- tag), so the CRF cannot score them."
            )
    with torch.inference_mode(False), torch.enable_grad():
        E, T, S, padded, lens, allowed, start_ok = _tensors(torch, logits, keep_docs, trans, start, tags)
        keep_t = torch.nn.utils.rnn.pad_sequence(
            list(torch.split(torch.tensor(keep), keep_docs)), batch_first=True, padding_value=True
        )
        # one choice for both chains: the gold lattice only forbids more tags
        exp_space = _exp_space_fits(torch, padded, T, S, allowed, start_ok)
        forward = _log_partition if exp_space else _log_partition_logsumexp
        log_z = forward(torch, padded, lens, T, S, allowed, start_ok)
        log_gold = forward(torch, padded, lens, T, S, allowed, start_ok, keep_t)
        loss = (log_z - log_gold).sum() / n_known
        loss.backward()
    return (
        float(loss.detach()),
        E.grad.numpy().astype("f"),
        T.grad.numpy().astype("f"),
        S.grad.numpy().astype("f"),
    )


def _has_path(keep: numpy.ndarray, tags: Sequence[str]) -> bool:
    """Whether some well-formed tag path takes, at each word, a tag that
    `keep` (n_words x n_tags, bool) allows."""
    allowed, start_ok = transition_mask(tags)
    step = allowed.astype("f")
    reach = start_ok & keep[0]
    for row in keep[1:]:
        reach = ((reach.astype("f") @ step) > 0) & row
    return bool(reach.any())


def crf_marginals(
    log_scores: List[numpy.ndarray], trans: numpy.ndarray, start: numpy.ndarray, tags: Sequence[str]
) -> List[numpy.ndarray]:
    """Each word's marginal tag probabilities under the CRF (one array per doc,
    n_words x n_tags), by forward-backward in numpy, float64.

    Inference needs no gradient, so this is not torch's autograd of log Z:
    each step is one (docs x tags) @ (tags x tags) product in exp space,
    rescaled by each row's maximum, which keeps long docs exact."""
    out = [numpy.zeros((0, len(tags)), "f") for _ in log_scores]
    doc_ids = [i for i, x in enumerate(log_scores) if len(x)]
    if not doc_ids:
        return out
    allowed, start_ok = transition_mask(tags)
    trans = numpy.asarray(trans, dtype="f8")
    top = float(trans[allowed].max()) if allowed.any() else 0.0
    # exp(trans - top) on allowed transitions, 0 on forbidden ones; the same in log space.
    expT = numpy.where(allowed, numpy.exp(numpy.minimum(trans - top, 0.0)), 0.0)
    logT = numpy.where(allowed, trans - top, -numpy.inf)
    first = numpy.where(start_ok, numpy.asarray(start, dtype="f8"), -numpy.inf)
    lens = numpy.array([len(log_scores[i]) for i in doc_ids])
    B, L, K = len(doc_ids), int(lens.max()), len(tags)
    E = numpy.zeros((B, L, K), dtype="f8")
    for b, i in enumerate(doc_ids):
        E[b, : lens[b]] = log_scores[i]
    alpha = numpy.empty((B, L, K), dtype="f8")
    beta = numpy.zeros((B, L, K), dtype="f8")  # log 1 at each doc's last word

    def step(v: numpy.ndarray, matrix: numpy.ndarray, log_matrix: numpy.ndarray) -> numpy.ndarray:
        # log(exp(v) @ exp(trans)) row by row, v's rows rescaled by their maximum
        m = v.max(axis=1, keepdims=True)
        scores = numpy.log(numpy.exp(v - m) @ matrix) + m
        bad = ~numpy.isfinite(scores).all(axis=1)
        if bad.any():
            # Allowed scores more than ~745 nats apart underflow in exp space:
            # those rows again as a log-sum-exp over (prev, next).
            x = v[bad][:, :, None] + log_matrix[None]
            mx = x.max(axis=1)
            scores[bad] = numpy.log(numpy.exp(x - mx[:, None, :]).sum(axis=1)) + mx
        return scores + top

    with numpy.errstate(divide="ignore", invalid="ignore"):
        alpha[:, 0] = first + E[:, 0]
        for t in range(1, L):
            # a doc's rows past its last word keep its last alpha
            alpha[:, t] = numpy.where((lens > t)[:, None], step(alpha[:, t - 1], expT, logT) + E[:, t], alpha[:, t - 1])
        for t in range(L - 2, -1, -1):
            inside = (lens - 1 > t)[:, None]  # t is not the doc's last word
            beta[:, t] = numpy.where(inside, step(E[:, t + 1] + beta[:, t + 1], expT.T, logT.T), 0.0)
    last = alpha[numpy.arange(B), lens - 1]
    m = last.max(axis=1, keepdims=True)
    log_z = numpy.log(numpy.exp(last - m).sum(axis=1, keepdims=True)) + m
    for b, i in enumerate(doc_ids):
        n = lens[b]
        out[i] = numpy.exp(alpha[b, :n] + beta[b, :n] - log_z[b]).astype("f")
    return out
