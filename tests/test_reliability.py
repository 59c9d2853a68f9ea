"""Reliability and security: odd input, faulty training data, damaged or
malicious model files, memory, determinism and concurrency.

Everything runs on the random 2-layer BERT of conftest (`tiny_bert`).
"""
import io
import math
import pickle
import shutil
import threading
import warnings
from pathlib import Path

import numpy
import pytest
import spacy
import srsly
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacy.tokens import Doc, Span
from spacy.training import Example

from conftest import ON_GPU, TOY, build_nlp, toy_examples, train

# --------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def trained(tiny_bert):
    """A pipeline trained for a few steps (probabilities not yet saturated)."""
    from thinc.api import fix_random_seed

    fix_random_seed(0)
    nlp = build_nlp(tiny_bert)
    nlp.initialize(lambda: toy_examples(nlp))
    train(nlp, toy_examples(nlp), steps=5)
    return nlp


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("saved") / "pipeline"
    trained.to_disk(path)
    return path


def check_doc(doc: Doc, intents) -> None:
    """The output invariants every processed doc must satisfy."""
    n = len(doc)
    ents = list(doc.ents)
    for ent in ents:
        assert 0 <= ent.start < ent.end <= n
        assert not any(t.is_space for t in ent), f"whitespace in entity {ent!r}"
    assert [(e.start, e.end) for e in ents] == sorted((e.start, e.end) for e in ents)
    for a, b in zip(ents, ents[1:]):
        assert a.end <= b.start
    for label, value in doc.cats.items():
        assert math.isfinite(value) and 0.0 <= value <= 1.0, (label, value)
    scores = doc._.intent_scores
    if n and all(t.is_space for t in doc):  # whitespace only: no entities, no intents
        assert not ents and not doc.cats and scores is None
    elif n:
        assert set(doc.cats) == set(intents)
        assert scores is not None
        scores = numpy.asarray(scores)
        assert scores.shape == (n, len(intents))
        assert numpy.isfinite(scores).all()
        assert ((scores >= 0) & (scores <= 1)).all()
        for token in doc:
            probs = token._.intent
            assert set(probs) == set(intents)
            assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in probs.values())
        for ent in ents:
            assert all(0.0 <= v <= 1.0 for v in ent._.intent.values())
    else:
        assert scores is None or numpy.asarray(scores).shape[0] == 0
        assert not ents


# ------------------------------------------------------- 1. odd input text

SPECIAL_CHARS = (
    "😀🎉👍🏽👨‍👩‍👧🇫🇷"  # emoji, skin tone, ZWJ sequence, flag
    "\x00\x01\x07\x1b\x7f\x85"  # control characters
    " \t\n\r\x0b\x0c\u00a0\u2028\u2029\u3000\u200b\u200d\ufeff"  # spaces
    "\u202e\u202d\u200f"  # bidi overrides
    "مرحبابالعالم"  # Arabic (RTL)
    "שלוםעולם"  # Hebrew (RTL)
    "你好世界東京한국어"  # CJK
    "e\u0301\u0308ñß"  # combining marks
    "orange store apple cart .,!?'-"
)

texts = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=200),
    st.text(st.sampled_from(SPECIAL_CHARS), max_size=200),
    st.lists(
        st.sampled_from([w for t, _, _ in TOY for w in t.split()] + ["😀", "שלום", "你好", "\n"]),
        max_size=40,
    ).map(" ".join),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=texts)
def test_any_text_gives_valid_output(trained, text):
    doc = trained(text)
    assert doc.text == text
    check_doc(doc, trained.get_pipe("intent_ner").intent_labels)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(texts, min_size=1, max_size=8))
def test_batch_does_not_change_scores(trained, batch):
    """A doc's scores do not depend on the docs batched with it (padding)."""
    intents = trained.get_pipe("intent_ner").intent_labels
    piped = list(trained.pipe(batch, batch_size=8))
    for text, doc in zip(batch, piped):
        check_doc(doc, intents)
        alone = trained(text)
        if doc._.intent_scores is None:  # empty or whitespace only: no intents, alone or batched
            assert alone._.intent_scores is None
        else:
            numpy.testing.assert_allclose(
                doc._.intent_scores, alone._.intent_scores, atol=1e-4
            )


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "     ",
        "\n\t",
        "\n\n\n",
        "😀🎉👍🏽",
        "👨‍👩‍👧 🇫🇷",
        "\x00\x01\x02\x1b[31m\x7f",
        "\u202eorange store\u202c",
        "مرحبا بالعالم",
        "שלום עולם",
        "你好世界",
        "\ufeff\u200b",
        "x" * 5000,  # one token, longer than any word piece limit
        "1,2,3,4,5,6,7,8,9,0 " * 100,  # many word pieces per token
    ],
    ids=lambda t: repr(t[:12]),
)
def test_explicit_odd_texts(trained, text):
    doc = trained(text)
    check_doc(doc, trained.get_pipe("intent_ner").intent_labels)


def test_ten_thousand_words(trained):
    words = [w for t, _, _ in TOY for w in t.split()]
    text = " ".join(words[i % len(words)] for i in range(10_000))
    doc = trained(text)
    assert len(doc) == 10_000
    check_doc(doc, trained.get_pipe("intent_ner").intent_labels)


def test_whitespace_tokens_never_in_predicted_entities(trained):
    words = ["pickup", " ", "orange", "\n", "store", "  ", "apple", "valley", "store"]
    doc = trained(Doc(trained.vocab, words=words, spaces=[True] * len(words)))
    check_doc(doc, trained.get_pipe("intent_ner").intent_labels)


# ------------------------------------------------- 2. training-data faults


def _doc(nlp, words, ents=(), cats=None, spaces=None):
    doc = Doc(nlp.vocab, words=words, spaces=spaces)
    doc.set_ents([Span(doc, s, e, label=l) for s, e, l in ents])
    if cats is not None:
        doc.cats = cats
    return doc


def _eg(nlp, words, ents=(), cats=None, spaces=None):
    pred = Doc(nlp.vocab, words=words, spaces=spaces)
    return Example(pred, _doc(nlp, words, ents, cats, spaces))


def _finite(losses):
    return all(math.isfinite(v) for v in losses.values())


def _ner_weights(nlp):
    from spacy_multitask_intent.layers import head_module

    head = head_module(nlp.get_pipe("intent_ner").model.get_ref("ner_head"))
    return head.linear.weight.detach().clone()


def _intent_weights(nlp):
    from spacy_multitask_intent.layers import head_module

    head = head_module(nlp.get_pipe("intent_ner").model.get_ref("intent_head"))
    return head.linear.weight.detach().clone()


def test_doc_without_cats_warns_and_trains_ner(toy_nlp):
    from thinc.api import Adam

    eg = _eg(toy_nlp, "find lemon cake".split(), [(1, 3, "PRODUCT")])  # no cats
    assert not eg.reference.cats
    ner_before, intent_before = _ner_weights(toy_nlp), _intent_weights(toy_nlp)
    with pytest.warns(UserWarning, match=r"find lemon cake.*no doc\.cats"):
        losses = toy_nlp.update([eg], sgd=Adam(1e-2))
    assert _finite(losses)
    assert losses["intent_ner_ner"] > 0
    assert losses["intent_ner_intent"] == 0.0  # masked out, not trained on zeros
    assert not bool((_ner_weights(toy_nlp) == ner_before).all()), "NER head did not train"
    assert bool((_intent_weights(toy_nlp) == intent_before).all()), "intent head trained on a doc without cats"


def test_mixed_batch_with_and_without_cats(toy_nlp):
    from thinc.api import Adam

    egs = toy_examples(toy_nlp) + [_eg(toy_nlp, "find lemon cake".split(), [(1, 3, "PRODUCT")])]
    with pytest.warns(UserWarning, match="no doc.cats"):
        losses = toy_nlp.update(egs, sgd=Adam(1e-3))
    assert _finite(losses) and losses["intent_ner_intent"] > 0


def test_unknown_intent_label_is_a_clear_error(toy_nlp):
    egs = toy_examples(toy_nlp)
    egs[2].reference.cats["cancel_order"] = 1.0
    with pytest.raises(ValueError, match=r"example 2.*cancel_order.*not initialized"):
        toy_nlp.update(egs)


def test_unknown_entity_label_is_a_clear_error(toy_nlp):
    """An entity type the component was not initialized with is not silently
    dropped from the training targets."""
    egs = toy_examples(toy_nlp)
    egs.append(_eg(toy_nlp, "buy red apples".split(), [(1, 2, "COLOR")], {"product_search": 1.0}))
    with pytest.raises(ValueError, match=r"example 8.*COLOR.*not initialized"):
        toy_nlp.update(egs)


@pytest.mark.parametrize("span", [(0, 3), (1, 2), (0, 2), (1, 3)])
def test_entities_on_whitespace_tokens(toy_nlp, span):
    """Gold entities covering whitespace tokens train without error; the
    whitespace tokens themselves are not trained (they are never tagged at
    inference), and predictions never put them in an entity."""
    from thinc.api import Adam

    words, spaces = ["hi", " ", "there"], [False, False, False]
    s, e = span
    egs = toy_examples(toy_nlp) + [
        _eg(toy_nlp, words, [(s, e, "STORE")], {"store_lookup": 1.0}, spaces)
    ]
    opt = Adam(1e-2)
    for _ in range(3):
        losses = toy_nlp.update(egs, sgd=opt)
        assert _finite(losses)
    ner = toy_nlp.get_pipe("intent_ner")
    tag_ids, _, _ = ner._targets(egs[-1:])
    assert tag_ids.tolist()[1] == -1  # the space token's gold tag is ignored
    check_doc(toy_nlp(Doc(toy_nlp.vocab, words=words, spaces=spaces)), ner.intent_labels)


def test_initialize_with_whitespace_entity(tiny_bert):
    nlp = build_nlp(tiny_bert)
    words, spaces = ["hi", " ", "there"], [False] * 3
    egs = toy_examples(nlp) + [_eg(nlp, words, [(0, 3, "STORE")], {"store_lookup": 1.0}, spaces)]
    nlp.initialize(lambda: egs)
    assert _finite(nlp.update(egs))


def test_zero_length_docs_in_batch(toy_nlp):
    from thinc.api import Adam

    empty_with_cats = _eg(toy_nlp, [], cats={"store_lookup": 1.0})
    empty_bare = _eg(toy_nlp, [])
    opt = Adam(1e-3)
    losses = toy_nlp.update(toy_examples(toy_nlp) + [empty_with_cats, empty_bare], sgd=opt)
    assert _finite(losses) and losses["intent_ner"] > 0
    only_empty = toy_nlp.update([empty_with_cats, empty_bare], sgd=opt)
    assert _finite(only_empty) and only_empty["intent_ner"] == 0.0
    # spaCy's own loop: update without sgd, then finish_update
    losses = toy_nlp.update([empty_bare] + toy_examples(toy_nlp)[:2])
    toy_nlp.get_pipe("intent_ner").finish_update(opt)
    assert _finite(losses)
    scores = toy_nlp.evaluate(toy_examples(toy_nlp) + [empty_with_cats])
    assert 0.0 <= scores["intent_acc"] <= 1.0


def test_dev_set_with_unseen_labels_counts_them_as_errors(trained):
    words = "find lemon cake".split()
    unseen = _eg(trained, words, [(1, 3, "COLOR")], {"cancel_order": 1.0, "product_search": 0.0})
    scores = trained.evaluate([unseen])
    assert scores["ents_per_type"]["COLOR"]["r"] == 0.0
    assert scores["ents_r"] == 0.0
    assert scores["intent_acc"] == 0.0
    assert scores["frame_acc"] == 0.0
    # mixed in with ordinary examples, it lowers the scores but breaks nothing
    base = trained.evaluate(toy_examples(trained))
    mixed = trained.evaluate(toy_examples(trained) + [unseen])
    assert mixed["intent_acc"] <= base["intent_acc"]
    assert "COLOR" in mixed["ents_per_type"]
    assert all(
        v is None or isinstance(v, dict) or math.isfinite(v) for v in mixed.values()
    )


# ----------------------------------------------------------- 3. model files


def _copy(saved: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "pipeline"
    shutil.copytree(saved, dst)
    return dst


def _chain(err: BaseException) -> str:
    parts = []
    while err is not None:
        parts.append(f"{type(err).__name__}: {err}")
        err = err.__cause__ or err.__context__
    return "\n".join(parts)


def test_saved_pipeline_roundtrips(trained, saved):
    loaded = spacy.load(saved)
    text = "pickup my order at orange store"
    a, b = trained(text), loaded(text)
    assert [(e.start, e.end, e.label_) for e in a.ents] == [(e.start, e.end, e.label_) for e in b.ents]
    numpy.testing.assert_allclose(a._.intent_scores, b._.intent_scores, atol=1e-5)
    # and through bytes
    again = spacy.blank("en").from_config(trained.config)
    again.from_bytes(trained.to_bytes())
    numpy.testing.assert_allclose(again(text)._.intent_scores, a._.intent_scores, atol=1e-5)


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.999])
def test_truncated_model_file(saved, tmp_path, fraction):
    path = _copy(saved, tmp_path)
    model = path / "intent_ner" / "model"
    data = model.read_bytes()
    model.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ValueError) as info:
        spacy.load(path)
    msg = str(info.value)
    assert "intent_ner" in msg and str(model) in msg
    assert "truncated or damaged" in msg


def test_garbage_model_file(saved, tmp_path):
    path = _copy(saved, tmp_path)
    (path / "intent_ner" / "model").write_bytes(b"\x93NUMPY not a model" * 50)
    with pytest.raises(ValueError, match="truncated or damaged"):
        spacy.load(path)


def test_missing_module_is_not_called_damage(saved, monkeypatch):
    """A file that needs a module this install lacks (seen on a pruned
    transformers) names the module and is not called truncated or damaged."""
    from thinc.api import Model

    def no_module(self, data):
        raise ModuleNotFoundError("No module named 'transformers.models.align'")

    monkeypatch.setattr(Model, "from_bytes", no_module)
    with pytest.raises(ImportError) as info:
        spacy.load(saved)
    msg = str(info.value)
    assert "transformers.models.align" in msg and "intent_ner" in msg
    assert "damaged" not in msg


def test_truncated_model_bytes(trained):
    data = trained.get_pipe("intent_ner").to_bytes()
    toy_nlp = spacy.blank("en").from_config(trained.config).get_pipe("intent_ner")
    with pytest.raises(ValueError, match=r"intent_ner: cannot load .*truncated or damaged"):
        toy_nlp.from_bytes(data[: len(data) // 2])
    msg = srsly.msgpack_loads(data)
    msg["model"] = msg["model"][: len(msg["model"]) // 2]
    with pytest.raises(ValueError, match=r"intent_ner: cannot load model file <bytes>.*truncated"):
        toy_nlp.from_bytes(srsly.msgpack_dumps(msg))


def test_missing_model_file(saved, tmp_path):
    path = _copy(saved, tmp_path)
    model = path / "intent_ner" / "model"
    model.unlink()
    with pytest.raises(FileNotFoundError) as info:
        spacy.load(path)
    assert str(model) in str(info.value) and "missing" in str(info.value)


class _Evil:
    """Unpickling this creates a marker file (a stand-in for any code)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _payloads(marker):
    raw = pickle.dumps(_Evil(marker))
    buf = io.BytesIO()
    import torch

    torch.save({"linear.weight": _Evil(marker)}, buf)  # torch's zip format
    return {"pickle": raw, "torch_zip": buf.getvalue()}


def test_payloads_do_run_code_when_unpickled(tmp_path):
    """The malicious blobs are real: unpickling them unsafely makes the marker."""
    import torch

    marker = tmp_path / "pwned"
    payloads = _payloads(marker)
    pickle.loads(payloads["pickle"])
    assert marker.exists()
    marker.unlink()
    torch.load(io.BytesIO(payloads["torch_zip"]), weights_only=False)
    assert marker.exists()


def _poison(model_file: Path, payload: bytes, which: str) -> int:
    """Replace the torch weights blob(s) of the heads or of the HF encoder."""
    msg = srsly.msgpack_loads(model_file.read_bytes())
    n = 0
    for i, shims in enumerate(msg["shims"]):
        new = []
        for blob in shims:
            shim = srsly.msgpack_loads(blob)
            is_hf = "tokenizer" in shim
            if shim.get("state") and (is_hf == (which == "encoder")):
                shim["state"] = payload
                n += 1
            new.append(srsly.msgpack_dumps(shim))
        msg["shims"][i] = new
    model_file.write_bytes(srsly.msgpack_dumps(msg))
    return n


@pytest.mark.parametrize("which", ["heads", "encoder"])
@pytest.mark.parametrize("kind", ["pickle", "torch_zip"])
@pytest.mark.parametrize("force_unsafe_env", [False, True])
def test_malicious_pickle_never_runs(saved, tmp_path, monkeypatch, which, kind, force_unsafe_env):
    """A model file whose weights are a code-running pickle is refused.

    With TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1, torch.load calls without an
    explicit weights_only (spacy-transformers' HFShim) unpickle anything; the
    component checks every blob with weights_only=True first.
    """
    if force_unsafe_env:
        monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "pwned"
    path = _copy(saved, tmp_path)
    replaced = _poison(path / "intent_ner" / "model", _payloads(marker)[kind], which)
    assert replaced == (2 if which == "heads" else 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError) as info:
            spacy.load(path)
    assert not marker.exists(), "unpickling the model file ran code"
    assert "refused" in str(info.value)
    assert "UnpicklingError" in _chain(info.value)


# ---------------------------------------------------------------- 4. memory


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    pytest.skip("no /proc/self/status")


def test_memory_is_flat_over_many_docs(trained):
    """5,000 short docs in batches of 256, in a spaCy memory zone: after
    warm-up, RSS does not keep growing.  Extension values (doc.user_data)
    work inside the zone."""
    words = [w for t, _, _ in TOY for w in t.split()]
    rng = numpy.random.default_rng(0)
    # new strings each time, so without memory_zone the StringStore would grow
    texts = [
        " ".join(rng.choice(words, 6)) + f" order{i} x{i * 7}" for i in range(5_000)
    ]
    intents = trained.get_pipe("intent_ner").intent_labels
    n_strings = len(trained.vocab.strings)

    def run(chunk):
        seen = 0
        with trained.memory_zone():
            for doc in trained.pipe(chunk, batch_size=256):
                assert doc._.intent_scores.shape == (len(doc), len(intents))
                assert set(doc[0]._.intent) == set(intents)
                seen += 1
        return seen

    assert run(texts[:2_500]) == 2_500
    rss_warm = _rss_mb()
    assert run(texts[2_500:]) == 2_500
    growth = _rss_mb() - rss_warm
    assert growth < 30, f"RSS grew by {growth:.1f} MB over 2,500 docs"
    # transient strings were freed; the labels survived
    assert len(trained.vocab.strings) <= n_strings + 10
    assert trained("pickup my order at orange store").cats


# ----------------------------------------------------------- 5. determinism


def _build_with_dropout(tiny_bert, dropout=0.2):
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "intent_ner",
        config={
            "model": {
                "@architectures": "spacy_multitask_intent.IntentNER.v1",
                "dropout": dropout,
                "encoder": {
                    "@architectures": "spacy_multitask_intent.Encoder.v1",
                    "name": str(tiny_bert),
                    "window": 128,
                    "stride": 96,
                },
            }
        },
    )
    return nlp


def _train_run(tiny_bert, mode):
    from thinc.api import fix_random_seed

    fix_random_seed(0)
    nlp = _build_with_dropout(tiny_bert)
    nlp.get_pipe("intent_ner").cfg["update_mode"] = mode
    nlp.initialize(lambda: toy_examples(nlp))
    history = train(nlp, toy_examples(nlp), steps=4, lr=1e-3, seed=0)
    scores = nlp.evaluate(toy_examples(nlp))
    scores.pop("speed")
    return history, scores, nlp("add apple juice to my cart")._.intent_scores


@pytest.mark.parametrize("mode", ["alternating", "joint"])
def test_same_seed_same_training(tiny_bert, mode):
    h1, s1, p1 = _train_run(tiny_bert, mode)
    h2, s2, p2 = _train_run(tiny_bert, mode)
    assert h1 == h2  # exact, with dropout 0.2 in the heads
    assert s1 == s2
    numpy.testing.assert_array_equal(p1, p2)


# ----------------------------------------------------------- 6. concurrency

CONC_TEXTS = [t for t, _, _ in TOY] + ["", "😀 orange", "hours of the lemon grove store today"]


def _result(doc):
    scores = doc._.intent_scores
    return (
        [(e.start, e.end, e.label_) for e in doc.ents],
        None if scores is None else numpy.asarray(scores).copy(),
    )


def _same(a, b, atol=1e-5):
    if a[0] != b[0]:
        return False
    if a[1] is None or b[1] is None:
        return a[1] is None and b[1] is None
    return numpy.allclose(a[1], b[1], atol=atol)


def test_pipe_with_two_processes(saved):
    nlp = spacy.load(saved)
    serial = [_result(d) for d in nlp.pipe(CONC_TEXTS)]
    if ON_GPU:  # see test_component.test_pipe_n_process_2
        with pytest.raises(ValueError, match="CUDA cannot run in a forked process"):
            list(nlp.pipe(CONC_TEXTS, n_process=2, batch_size=4))
        return
    parallel = [_result(d) for d in nlp.pipe(CONC_TEXTS * 2, n_process=2, batch_size=4)]
    assert len(parallel) == 2 * len(CONC_TEXTS)
    for a, b in zip(serial * 2, parallel):
        assert _same(a, b)
    for doc in nlp.pipe(CONC_TEXTS[:4], n_process=2, batch_size=2):
        check_doc(doc, nlp.get_pipe("intent_ner").intent_labels)


def test_threads_share_one_pipeline(trained):
    """Inference from 4 threads at once on one `nlp` gives the serial results
    (finding: safe for inference; training is not meant to be threaded)."""
    texts = CONC_TEXTS
    serial = {t: _result(trained(t)) for t in texts}
    errors, mismatches = [], []
    barrier = threading.Barrier(4)

    def worker(k):
        try:
            barrier.wait()
            for i in range(50):
                text = texts[(i + k) % len(texts)]
                if not _same(_result(trained(text)), serial[text]):
                    mismatches.append((k, i, text))
        except Exception as err:  # pragma: no cover - reported below
            errors.append(repr(err))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not any(th.is_alive() for th in threads), "a thread hung"
    assert not errors, errors
    assert not mismatches, mismatches[:5]


def test_forked_gpu_worker_gets_a_clear_error(monkeypatch):
    """A GPU pipeline in a process forked from a CUDA process (nlp.pipe with
    n_process > 1) stops with an error that says what to do, before torch
    fails inside the encoder. Checked on a real GPU by benchmarks/gpu/check.sh
    (test_pipe_with_two_processes); here torch's fork flag is simulated."""
    import torch

    from spacy_multitask_intent.guards import guard_forked_torch

    monkeypatch.setattr(torch.cuda, "_is_in_bad_fork", lambda: True)
    with pytest.raises(RuntimeError, match="On a GPU use n_process=1"):
        guard_forked_torch(on_gpu=True)
    guard_forked_torch(on_gpu=False)  # a CPU pipeline goes on
