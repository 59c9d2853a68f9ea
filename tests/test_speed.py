"""The inference speed-ups (spacy_multitask_intent/inference.py, vectorised
decoding) give the same outputs as thinc's standard path and leave training
untouched.  Speed itself is measured in benchmarks/, not here."""
import numpy
import pytest
import torch
from thinc.shims import PyTorchShim

from spacy_multitask_intent.inference import enable_fast_predict
from spacy_multitask_intent.layers import torch_modules

from conftest import ON_GPU, TOY, fresh_nlp, toy_examples, train

TEXTS = [t for t, _, _ in TOY] + [
    "orange",
    "",
    "   ",
    "pickup my order at orange store " * 40,  # several strided windows
    "buy  orange\tat target\n",
]


def _reference_scores(proc, docs):
    """Tag and intent probabilities through thinc's own PyTorchShim.predict
    (eval() / no_grad / train() around every call) and the wrapped heads."""
    shims = [s for node in proc.model.walk() for s in node.shims]
    for shim in shims:
        shim.__dict__.pop("predict", None)  # back to the class's method
    assert all(s.predict.__func__ is PyTorchShim.predict for s in shims)
    ner_out, intent_out = [], []
    for doc in docs:
        if all(t.is_space for t in doc):  # empty or whitespace only: nothing to tag or classify
            ner_out.append(numpy.zeros((len(doc), len(proc.tags)), "f"))
            intent_out.append(None)
            continue
        (ner,), (intent,) = proc.model.predict([doc])
        ner, intent = proc.model.ops.to_numpy(ner), proc.model.ops.to_numpy(intent)
        e = numpy.exp(ner - ner.max(axis=1, keepdims=True))
        ner_out.append(e / e.sum(axis=1, keepdims=True))
        intent_out.append(1.0 / (1.0 + numpy.exp(-intent)))
    return ner_out, intent_out


def test_fast_predict_matches_thinc_path(tiny_bert):
    nlp = fresh_nlp(tiny_bert)
    train(nlp, toy_examples(nlp), steps=15)  # trained, so entities are found
    proc = nlp.get_pipe("intent_ner")
    docs = [nlp.make_doc(t) for t in TEXTS]

    fast_ner, fast_intent = proc.predict(docs)  # installs the fast path
    shims = [s for node in proc.model.walk() for s in node.shims]
    assert shims and all(s.predict.__func__ is not PyTorchShim.predict for s in shims)
    ref_ner, ref_intent = _reference_scores(proc, docs)
    for doc, a, b, ia, ib in zip(docs, fast_ner, ref_ner, fast_intent, ref_intent):
        assert a.shape == b.shape == (len(doc), len(proc.tags))
        numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        if all(t.is_space for t in doc):  # empty or whitespace only: no intent scores on either path
            assert ia is None and ib is None
        else:
            numpy.testing.assert_allclose(ia, ib, rtol=1e-5, atol=1e-6)

    # Same entities and cats from both score sets.
    fast_docs = [nlp.make_doc(t) for t in TEXTS]
    ref_docs = [nlp.make_doc(t) for t in TEXTS]
    proc.set_annotations(fast_docs, (fast_ner, fast_intent))
    proc.set_annotations(ref_docs, (ref_ner, ref_intent))
    found = 0
    for a, b in zip(fast_docs, ref_docs):
        assert [(e.start, e.end, e.label_) for e in a.ents] == [(e.start, e.end, e.label_) for e in b.ents]
        assert a.cats.keys() == b.cats.keys()
        for k in a.cats:
            assert abs(a.cats[k] - b.cats[k]) < 1e-6
        found += len(a.ents)
    assert found > 0


def test_pipe_batches_match_single_calls(tiny_bert):
    """Batching (one padded forward for many docs) changes nothing."""
    nlp = fresh_nlp(tiny_bert)
    train(nlp, toy_examples(nlp), steps=15)
    singles = [nlp(t) for t in TEXTS]
    batched = list(nlp.pipe(TEXTS, batch_size=len(TEXTS)))
    for a, b in zip(singles, batched):
        assert [(e.start, e.end, e.label_) for e in a.ents] == [(e.start, e.end, e.label_) for e in b.ents]
        if any(not t.is_space for t in a):
            numpy.testing.assert_allclose(a._.intent_scores, b._.intent_scores, atol=1e-5)
        else:  # empty or whitespace only: no intent scores
            assert a._.intent_scores is None and b._.intent_scores is None


def test_training_after_fast_predict_is_unchanged(tiny_bert):
    """The fast path leaves the torch modules in eval mode between
    predictions; a training step must still run them in train mode (dropout
    on).  Same seed, with and without predictions interleaved: same losses."""
    def run(predict_between):
        nlp = fresh_nlp(tiny_bert, seed=3)
        examples = toy_examples(nlp)
        proc = nlp.get_pipe("intent_ner")
        hist = []
        for step in range(4):
            if predict_between:
                nlp("pickup my order at orange store")
                state = torch.random.get_rng_state()
            hist.append(train(nlp, examples, steps=1, seed=step)[0])
            if predict_between:
                torch.random.set_rng_state(state)
        trf = [m for _, m in torch_modules(proc.model)]
        return hist, trf

    plain, _ = run(False)
    mixed, modules = run(True)
    assert mixed == plain
    # The encoder has dropout (the tiny BERT's hidden_dropout_prob is 0.1):
    # after the last update it is in train mode again.
    assert all(m.training for m in modules)


def test_enable_fast_predict_is_idempotent(tiny_bert):
    nlp = fresh_nlp(tiny_bert)
    proc = nlp.get_pipe("intent_ner")
    enable_fast_predict(proc.model)
    first = [s.predict for node in proc.model.walk() for s in node.shims]
    enable_fast_predict(proc.model)
    again = [s.predict for node in proc.model.walk() for s in node.shims]
    assert [m.__func__ for m in first] == [m.__func__ for m in again]
    assert all(m.__self__ is s for m, s in zip(again, [s for n in proc.model.walk() for s in n.shims]))


def test_length_buckets_keep_order_and_outputs(tiny_bert):
    """predict sorts docs by length and encodes them bucket_size at a time;
    every doc still gets its own scores, whatever the bucket size."""
    nlp = fresh_nlp(tiny_bert)
    train(nlp, toy_examples(nlp), steps=15)
    proc = nlp.get_pipe("intent_ner")
    texts = [t for t, _, _ in TOY] + ["orange", "", "buy orange at target " * 9, "find lemon cake store"]
    docs = [nlp.make_doc(t) for t in texts]
    results = {}
    for size in (1, 2, 5, 1000):
        proc.cfg["bucket_size"] = size
        results[size] = proc.predict(docs)
    for size in (1, 2, 5):
        for doc, a, b in zip(docs, results[size][0], results[1000][0]):
            assert a.shape == (len(doc), len(proc.tags))
            numpy.testing.assert_allclose(a, b, atol=1e-5)
        for a, b in zip(results[size][1], results[1000][1]):
            assert (a is None) == (b is None)
            if a is not None:
                numpy.testing.assert_allclose(a, b, atol=1e-5)


def test_bucket_size_must_be_positive(tiny_bert):
    import pytest
    from conftest import build_nlp

    with pytest.raises(ValueError, match="bucket_size must be >= 1"):
        build_nlp(tiny_bert, bucket_size=0)


def test_int8_quantization_is_opt_in_and_bounded(tiny_bert):
    """quantize_int8 swaps every Linear for a dynamic int8 one; predictions
    stay close to fp32 (the measured effect on a trained MiniLM is in
    BENCHMARKS.md) and the pipeline still annotates docs."""
    from spacy_multitask_intent.inference import quantize_int8

    nlp = fresh_nlp(tiny_bert)
    train(nlp, toy_examples(nlp), steps=15)
    proc = nlp.get_pipe("intent_ner")
    docs = [nlp.make_doc(t) for t in TEXTS]
    fp32 = proc.predict(docs)
    if ON_GPU:  # dynamic int8 is a CPU feature: refused with a clear error
        with pytest.raises(ValueError, match="runs on CPU only"):
            quantize_int8(proc)
        return
    quantize_int8(proc)
    linear = [m for _, module in torch_modules(proc.model) for m in module.modules() if type(m) is torch.nn.Linear]
    assert linear == []  # all replaced
    int8 = proc.predict(docs)
    for a, b in zip(fp32[0], int8[0]):
        assert a.shape == b.shape
        assert numpy.isfinite(b).all()
        if len(a):
            assert numpy.abs(a - b).max() < 0.05
    for a, b in zip(fp32[1], int8[1]):
        if a is not None:
            assert numpy.abs(a - b).max() < 0.05
    doc = nlp("pickup my order at orange store")
    assert set(doc.cats) == set(proc.intent_labels)
