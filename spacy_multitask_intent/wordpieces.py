"""The host side of a prediction as arrays: the tokenizer call and the
sub-word -> word alignment, for a batch of short docs.

spacy-transformers' encoder computes the same things through objects built
for training (``WordpieceBatch`` with the sub-word strings, a Python set per
word for the alignment, ``FullTransformerBatch`` split back per doc); for a
batch of short queries that host work is a tenth of the time a 6-layer
encoder takes.  ``batch_inputs`` produces the same numbers with one tokenizer
call and a few numpy operations, and ``intent_ner`` uses it at inference in
both runtimes: the torch path (``inference.fast_logits``) and ONNX Runtime
(``onnx.OnnxRuntime``).

It covers the common case only, and returns ``None`` otherwise so that the
caller takes spacy-transformers' path:

* every doc has at most ``window`` tokens (one strided span per doc: the
  whole doc, as ``get_strided_spans`` makes it);
* the tokenizer is a fast one (character offsets give the alignment);
* the longest doc has at most ``model_max_length`` sub-words (nothing to
  truncate).

The alignment is the one ``spacy_transformers.align.get_alignment_via_offset_mapping``
computes: a sub-word is aligned to every word whose characters, extended by
one character past the word's end (a later word taking a shared position),
its character offsets cover.  ``tests/test_wordpieces.py`` checks equality
with it.
"""
from typing import Optional, Sequence

import numpy
from spacy.attrs import IDX, LENGTH, SPACY
from spacy.tokens import Doc


def batch_inputs(tokenizer, docs: Sequence[Doc], window: int, token_types: bool = True) -> Optional[dict]:
    """The encoder's inputs and the alignment of a batch of non-empty docs:
    ``input_ids``, ``attention_mask`` (and ``token_type_ids`` when
    ``token_types``), each (docs, sub-words) int64, and the alignment as
    ``wp_index`` (flat sub-word rows), ``word_index`` (the word of each row,
    words numbered across the batch) and ``word_count`` (sub-words per word,
    float32).  ``None`` when the batch is outside the fast path (see the
    module docstring)."""
    if not getattr(tokenizer, "is_fast", False) or not docs:
        return None
    if any(len(d) > window or not len(d) for d in docs):
        return None
    arrays = [d.to_array([IDX, LENGTH, SPACY]) for d in docs]
    # What spacy-transformers tokenizes, doc[:].text: the doc's text without
    # the last token's trailing space (SPACY: the token is followed by one).
    texts = [d.text[:-1] if a[-1, 2] else d.text for d, a in zip(docs, arrays)]
    enc = _encode(tokenizer, texts)
    input_ids = enc["input_ids"]
    n_docs, width = input_ids.shape
    max_len = getattr(tokenizer, "model_max_length", None)
    if max_len is not None and width > max_len:
        return None
    feeds = {
        "input_ids": input_ids.astype("int64", copy=False),
        "attention_mask": enc["attention_mask"].astype("int64", copy=False),
    }
    if token_types:
        tt = enc.get("token_type_ids")
        feeds["token_type_ids"] = numpy.zeros_like(feeds["input_ids"]) if tt is None else tt.astype("int64", copy=False)
    feeds.update(align_offsets([a[:, :2] for a in arrays], texts, enc["offset_mapping"]))
    return feeds


def _encode(tokenizer, texts: Sequence[str]) -> dict:
    """The tokenizer's ids, attention mask, token types and offsets, padded to
    the longest text: straight from its Rust backend when the backend's
    state allows it (no truncation, right padding to the longest at most),
    else through the tokenizer's own call (spacy-transformers' arguments).
    The backend's state is whatever the tokenizer's last call left; it is
    read here, never changed."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    padding = getattr(backend, "padding", None) or {}
    if (
        backend is None
        or backend.truncation is not None
        or padding.get("length") is not None
        or padding.get("pad_to_multiple_of")
        or getattr(tokenizer, "padding_side", "right") != "right"
        or tokenizer.pad_token_id is None
    ):
        return tokenizer(
            list(texts),
            add_special_tokens=True,
            return_attention_mask=True,
            return_offsets_mapping=True,
            return_token_type_ids=True,
            padding="longest",
            return_tensors="np",
        )
    encodings = backend.encode_batch(list(texts), add_special_tokens=True)
    width = max(len(e.ids) for e in encodings)
    n = len(encodings)
    ids = numpy.full((n, width), tokenizer.pad_token_id, dtype="int64")
    mask = numpy.zeros((n, width), dtype="int64")
    types = numpy.full((n, width), getattr(tokenizer, "pad_token_type_id", 0), dtype="int64")
    offsets = numpy.zeros((n, width, 2), dtype="int64")
    for i, e in enumerate(encodings):
        k = len(e.ids)
        ids[i, :k] = e.ids
        mask[i, :k] = e.attention_mask
        types[i, :k] = e.type_ids
        offsets[i, :k] = e.offsets
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types, "offset_mapping": offsets}


def align_offsets(words: Sequence[numpy.ndarray], texts: Sequence[str], offsets: numpy.ndarray) -> dict:
    """``wp_index``, ``word_index`` and ``word_count`` from the sub-words'
    character ``offsets`` (docs, sub-words, 2); ``words`` holds each doc's
    (character offset, length) per word, ``texts`` the tokenized strings."""
    n_docs, width = offsets.shape[:2]
    # Every doc's characters on one axis: doc i starts at base[i], and its
    # positions run to len(text) inclusive (the position after the text).
    sizes = numpy.fromiter((len(t) + 1 for t in texts), dtype="int64", count=n_docs)
    base = numpy.concatenate([[0], numpy.cumsum(sizes)[:-1]])
    n_words = numpy.fromiter((len(a) for a in words), dtype="int64", count=n_docs)
    word_base = numpy.repeat(base, n_words)
    flat = numpy.concatenate(words).astype("int64", copy=False)
    starts = flat[:, 0] + word_base
    ends = starts + flat[:, 1]  # a word covers [start, start + length], one past its end
    # Each sub-word's characters [s, e), then the word covering each character:
    # the last word starting at or before it, if it reaches that far.
    s = offsets[..., 0].astype("int64").reshape(-1)
    e = offsets[..., 1].astype("int64").reshape(-1)
    e = numpy.minimum(e, numpy.repeat(sizes, width))  # positions past the text belong to no word
    count = numpy.maximum(e - s, 0)
    wp = numpy.repeat(numpy.arange(n_docs * width, dtype="int64"), count)
    first = numpy.repeat(s + numpy.repeat(base, width), count)
    step = numpy.arange(len(wp), dtype="int64") - numpy.repeat(numpy.cumsum(count) - count, count)
    chars = first + step
    word = numpy.searchsorted(starts, chars, side="right") - 1
    ok = (word >= 0) & (chars <= ends[numpy.maximum(word, 0)])
    key = numpy.unique(word[ok] * (n_docs * width) + wp[ok])
    word_index = key // (n_docs * width)
    total_words = int(n_words.sum())
    return {
        "wp_index": key % (n_docs * width),
        "word_index": word_index,
        "word_count": numpy.bincount(word_index, minlength=total_words).astype("float32"),
    }
