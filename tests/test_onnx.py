"""ONNX Runtime export (spacy_multitask_intent/onnx.py, `export` command):
the exported pipeline gives torch's logits and annotations, loads with
spacy.load, and refuses damaged or mismatched .onnx files."""
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import spacy

from conftest import ON_GPU, ROOT_DIR, TOY, build_nlp, fresh_nlp, toy_examples, train

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
if ON_GPU:
    pytest.skip("the ONNX export runs on CPU", allow_module_level=True)

from spacy_multitask_intent.inference import predict_heads
from spacy_multitask_intent.model import encode  # noqa: E402
from spacy_multitask_intent.onnx import ONNX_FILE, export_pipeline  # noqa: E402

TEXTS = [t for t, _, _ in TOY] + [
    "orange",
    "",
    "   ",
    "pickup my order at orange store " * 6,  # several strided windows (window 8)
    "buy  orange\tat target\n",  # whitespace tokens: words without sub-words
    "zzz qqq cherry ok",  # words of several sub-words
]


@pytest.fixture(scope="module")
def exported(tiny_bert, tmp_path_factory):
    """A trained tiny pipeline (short windows, so long docs are strided), saved
    with thresholds and gating, and its fp32 ONNX export."""
    nlp = fresh_nlp(tiny_bert, window=8, stride=6)
    train(nlp, toy_examples(nlp), steps=15)
    proc = nlp.get_pipe("intent_ner")
    proc.cfg["intent_thresholds"] = {"store_lookup": 0.3}
    proc.cfg["gating"] = {"STORE": ["store_lookup"]}
    proc.cfg["gate_thresholds"] = {"store_lookup": 0.45}
    base = tmp_path_factory.mktemp("onnx")
    nlp.to_disk(base / "torch")
    export_pipeline(base / "torch", base / "onnx")
    return base, nlp


def _torch_logits(proc, docs):
    X, lengths, _ = encode(proc.model, docs, False)
    ner, intent = predict_heads(X, [proc.model.get_ref("ner_head"), proc.model.get_ref("intent_head")])
    return [numpy.asarray(ner), numpy.asarray(intent)], lengths


def _annotations(doc):
    return (
        [(e.start, e.end, e.label_) for e in doc.ents],
        dict(doc.cats),
        [dict(t._.intent) for t in doc],
    )


def test_export_logits_match_torch(exported):
    base, nlp = exported
    onnx_nlp = spacy.load(base / "onnx")
    proc, oproc = nlp.get_pipe("intent_ner"), onnx_nlp.get_pipe("intent_ner")
    runtime = oproc.model.attrs["runtime"]
    assert runtime.session is not None
    texts = [t for t in TEXTS if t.strip()]
    docs = [nlp.make_doc(t) for t in texts]
    assert max(len(d) for d in docs) > 8  # a doc longer than the window
    (t_ner, t_int), t_len = _torch_logits(proc, docs)
    (o_ner, o_int), o_len = runtime.predict_logits([onnx_nlp.make_doc(t) for t in texts])
    assert o_len == t_len
    assert o_ner.shape == t_ner.shape and o_int.shape == t_int.shape
    numpy.testing.assert_allclose(o_ner, t_ner, atol=1e-4)
    numpy.testing.assert_allclose(o_int, t_int, atol=1e-4)
    # and through the component: same probabilities, per doc, any batch mix
    a, b = proc.predict(docs), oproc.predict([onnx_nlp.make_doc(t) for t in texts])
    for x, y in zip(a[0] + a[1], b[0] + b[1]):
        numpy.testing.assert_allclose(x, y, atol=1e-5)


def test_spacy_load_exported_annotates_like_torch(exported):
    base, nlp = exported
    onnx_nlp = spacy.load(base / "onnx")
    assert onnx_nlp.config["components"]["intent_ner"]["model"]["@architectures"] == (
        "spacy_multitask_intent.OnnxIntentNER.v1"
    )
    oproc = onnx_nlp.get_pipe("intent_ner")
    saved = spacy.load(base / "torch").get_pipe("intent_ner")
    for key in ("labels", "intents", "intent_thresholds", "gating", "gate_thresholds", "update_mode",
                "intent_set_veto", "intent_set_labels", "intent_set_veto_min_expected"):
        assert oproc.cfg[key] == saved.cfg[key]
    assert oproc.cfg["gating"] == {"STORE": ["store_lookup"]}
    n_ents = 0
    for d1, d2 in zip(nlp.pipe(TEXTS), onnx_nlp.pipe(TEXTS, batch_size=3)):
        e1, c1, i1 = _annotations(d1)
        e2, c2, i2 = _annotations(d2)
        assert e1 == e2
        assert c1.keys() == c2.keys()
        for k in c1:
            assert c1[k] == pytest.approx(c2[k], abs=1e-5)
        for a, b in zip(i1, i2):
            assert a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], abs=1e-5) for k in a)
        assert nlp.get_pipe("intent_ner").decide_intents(d1) == oproc.decide_intents(d2)
        n_ents += len(e1)
    assert n_ents > 0  # the trained model finds entities, so spans were compared
    # the batch function behind serve and annotate takes the exported pipeline as it is
    from spacy_multitask_intent.records import parse_texts

    for r1, r2 in zip(parse_texts(nlp, TEXTS, batch_size=4), parse_texts(onnx_nlp, TEXTS, batch_size=4)):
        assert [(e["start"], e["end"], e["label"]) for e in r1["entities"]] == [
            (e["start"], e["end"], e["label"]) for e in r2["entities"]
        ]
        assert r1["intents"] == r2["intents"]


def test_buckets_side_by_side_give_the_same_answers(exported):
    """With several workers the runtime cuts a batch into two buckets per
    worker and runs them side by side on a one-thread session: the same
    probabilities, per doc, as one bucket at a time."""
    base, _ = exported
    onnx_nlp = spacy.load(base / "onnx")
    oproc = onnx_nlp.get_pipe("intent_ner")
    runtime = oproc.model.attrs["runtime"]
    texts = [t for t in TEXTS if t.strip()] * 3
    runtime.workers = 1
    assert runtime.bucket_size(len(texts), 32) == 32
    in_turn = oproc.predict([onnx_nlp.make_doc(t) for t in texts])
    assert runtime._single is None  # one worker: the session's own thread pool, no second session
    runtime.workers = 3
    assert runtime.bucket_size(len(texts), 32) == -(-len(texts) // 6)
    assert runtime.bucket_size(len(texts), 4) == 4  # never above the component's bucket_size
    assert runtime.bucket_size(1, 32) == 1
    side = oproc.predict([onnx_nlp.make_doc(t) for t in texts])
    assert runtime._single is not None
    for x, y in zip(in_turn[0] + in_turn[1], side[0] + side[1]):
        numpy.testing.assert_allclose(x, y, atol=1e-5)
    # the buckets come back in order, whichever thread finishes first
    docs = [[onnx_nlp.make_doc(t)] for t in texts[:6]]
    for (out, lengths), (ref, ref_lengths) in zip(runtime.predict_many(docs), [runtime.predict_logits(d) for d in docs]):
        assert lengths == ref_lengths
        numpy.testing.assert_allclose(out[0], ref[0], atol=1e-5)


def test_exported_pipe_with_two_processes(exported):
    """nlp.pipe(n_process=2) on an exported pipeline whose parent already ran
    buckets side by side: each forked worker opens its own one-thread session
    and runs its buckets in turn, with the parent's answers."""
    base, _ = exported
    onnx_nlp = spacy.load(base / "onnx")
    runtime = onnx_nlp.get_pipe("intent_ner").model.attrs["runtime"]
    runtime.workers = 2
    texts = [t for t in TEXTS if t.strip()] * 2
    serial = [_annotations(d) for d in onnx_nlp.pipe(texts, batch_size=8)]
    assert runtime._single is not None  # the parent ran its buckets side by side
    runtime.workers = None
    parallel = [_annotations(d) for d in onnx_nlp.pipe(texts, n_process=2, batch_size=4)]
    assert len(parallel) == len(serial)
    for (e1, c1, _), (e2, c2, _) in zip(serial, parallel):
        assert e1 == e2
        assert c1.keys() == c2.keys() and all(c1[k] == pytest.approx(c2[k], abs=1e-5) for k in c1)


def test_session_threads_follow_torch(exported):
    """The session gets torch's thread count, which serve and annotate set per
    process before loading, and the buckets as many workers."""
    import torch

    base, _ = exported
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        runtime = spacy.load(base / "onnx").get_pipe("intent_ner").model.attrs["runtime"]
        assert runtime.session.get_session_options().intra_op_num_threads == 1
        assert runtime.n_workers() == 1
        torch.set_num_threads(2)
        runtime = spacy.load(base / "onnx").get_pipe("intent_ner").model.attrs["runtime"]
        assert runtime.session.get_session_options().intra_op_num_threads == 2
        assert runtime.n_workers() == 2
    finally:
        torch.set_num_threads(before)


def test_exported_gating_applies(exported, tmp_path):
    """The saved gating is used by the exported pipeline: with a gate no
    score can pass, its STORE entities are dropped, as in torch."""
    base, _ = exported
    onnx_nlp = spacy.load(base / "onnx")
    text = "directions to cherry hill store"
    open_gate = [e.label_ for e in onnx_nlp(text).ents]
    onnx_nlp.get_pipe("intent_ner").cfg["gate_thresholds"] = {"store_lookup": 1.01}
    assert "STORE" not in [e.label_ for e in onnx_nlp(text).ents]
    # Re-saving an exported pipeline keeps the .onnx file and the new cfg.
    onnx_nlp.to_disk(tmp_path / "resaved")
    assert (tmp_path / "resaved" / "intent_ner" / ONNX_FILE).is_file()
    again = spacy.load(tmp_path / "resaved")
    assert again.get_pipe("intent_ner").cfg["gate_thresholds"] == {"store_lookup": 1.01}
    assert [e.label_ for e in again(text).ents] == [e.label_ for e in onnx_nlp(text).ents]
    assert isinstance(open_gate, list)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_damaged_onnx_file_is_named(exported, tmp_path, damage):
    import shutil

    base, _ = exported
    shutil.copytree(base / "onnx", tmp_path / "p")
    path = tmp_path / "p" / "intent_ner" / ONNX_FILE
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not an onnx model" * 100)
    with pytest.raises(ValueError, match=rf"{ONNX_FILE}.*truncated or damaged") as err:
        spacy.load(tmp_path / "p")
    assert str(path) in str(err.value)


def test_missing_onnx_file_is_named(exported, tmp_path):
    import shutil

    base, _ = exported
    shutil.copytree(base / "onnx", tmp_path / "p")
    (tmp_path / "p" / "intent_ner" / ONNX_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="model.onnx is missing"):
        spacy.load(tmp_path / "p")


def test_other_label_set_is_refused(exported, tiny_bert, tmp_path):
    """A .onnx exported from a model with other labels than the pipeline's
    cfg (here: no PRODUCT entities, two intents) is refused on load."""
    import shutil

    base, _ = exported
    data = [(t, [e for e in ents if e[2] == "STORE"], i) for t, ents, i in TOY if "add_to_cart" not in i]
    other = build_nlp(tiny_bert, window=8, stride=6)
    other.initialize(lambda: toy_examples(other, data))
    other.to_disk(tmp_path / "other")
    export_pipeline(tmp_path / "other", tmp_path / "other_onnx")
    shutil.copytree(base / "onnx", tmp_path / "p")
    shutil.copyfile(tmp_path / "other_onnx" / "intent_ner" / ONNX_FILE, tmp_path / "p" / "intent_ner" / ONNX_FILE)
    with pytest.raises(ValueError, match="was exported with tags") as err:
        spacy.load(tmp_path / "p")
    assert str(tmp_path / "p" / "intent_ner" / ONNX_FILE) in str(err.value)


def test_export_int8_per_tensor_keeps_one_scale_per_matrix(exported, tmp_path):
    import onnx

    base, _ = exported
    path = export_pipeline(base / "torch", tmp_path / "pt", int8=True, per_channel=False)
    proto = onnx.load(str(path))
    scales = [list(i.dims) for i in proto.graph.initializer if i.name.endswith("_scale")]
    assert scales and all(d in ([], [1]) for d in scales), scales
    assert {p.key: p.value for p in proto.metadata_props}["intent_ner.int8_scales"] == '"tensor"'
    spacy.load(tmp_path / "pt")  # loads and runs like any export
    result = subprocess.run(
        [sys.executable, "-m", "spacy_multitask_intent", "export", str(base / "torch"), str(tmp_path / "x"), "--per-tensor"],
        cwd=ROOT_DIR, capture_output=True, text=True,
    )
    assert result.returncode == 1 and "--per-tensor only applies with --int8" in result.stderr


def test_export_int8_can_keep_the_feed_forward_outputs_fp32(exported, tmp_path):
    import onnx

    from spacy_multitask_intent.onnx import ffn_down_projections

    base, nlp = exported
    full = export_pipeline(base / "torch", tmp_path / "q", int8=True)
    kept = export_pipeline(base / "torch", tmp_path / "k", int8=True, fp32_ffn_out=True)
    # The tiny BERT's two layers each map their 37-wide feed-forward layer back to 32.
    fp32_graph = base / "onnx" / "intent_ner" / ONNX_FILE
    names = ffn_down_projections(fp32_graph, 32)
    assert len(names) == 2 and all("output" in n and "attention" not in n for n in names), names

    def plain_matmuls(path):
        return sorted(n.name for n in onnx.load(str(path)).graph.node if n.op_type == "MatMul")

    # Those two stay plain fp32 MatMuls (their weights fp32), every other weight is int8.
    assert set(names) <= set(plain_matmuls(kept)) and not set(names) & set(plain_matmuls(full))
    meta = {p.key: p.value for p in onnx.load(str(kept)).metadata_props}
    assert meta["intent_ner.int8_fp32_nodes"] == "2"
    q = spacy.load(tmp_path / "k")
    for d, r in zip(q.pipe(TEXTS), nlp.pipe(TEXTS)):
        assert set(d.cats) == set(r.cats) and all(abs(d.cats[k] - r.cats[k]) < 0.1 for k in r.cats)
    with pytest.raises(ValueError, match="fp32_ffn_out only applies with int8"):
        export_pipeline(base / "torch", tmp_path / "x", fp32_ffn_out=True)
    result = subprocess.run(
        [sys.executable, "-m", "spacy_multitask_intent", "export", str(base / "torch"), str(tmp_path / "y"), "--fp32-ffn-out"],
        cwd=ROOT_DIR, capture_output=True, text=True,
    )
    assert result.returncode == 1 and "--fp32-ffn-out only applies with --int8" in result.stderr


def test_export_int8_can_keep_chosen_layers_feed_forward_outputs_fp32(exported, tmp_path):
    import onnx

    from spacy_multitask_intent.onnx import ffn_down_projections

    base, nlp = exported
    names = ffn_down_projections(base / "onnx" / "intent_ner" / ONNX_FILE, 32)  # layer 0's, then layer 1's
    assert "layer.0" in names[0] and "layer.1" in names[1], names
    kept = export_pipeline(base / "torch", tmp_path / "k1", int8=True, fp32_ffn_out=[1])
    plain = {n.name for n in onnx.load(str(kept)).graph.node if n.op_type == "MatMul"}
    assert names[1] in plain and names[0] not in plain  # only layer 1's projection stays fp32
    meta = {p.key: p.value for p in onnx.load(str(kept)).metadata_props}
    assert meta["intent_ner.int8_fp32_nodes"] == "1"
    q = spacy.load(tmp_path / "k1")
    for d, r in zip(q.pipe(TEXTS), nlp.pipe(TEXTS)):
        assert set(d.cats) == set(r.cats) and all(abs(d.cats[k] - r.cats[k]) < 0.1 for k in r.cats)
    with pytest.raises(ValueError, match=r"layer\(s\) \[2\] out of range.*has 2 layers"):
        export_pipeline(base / "torch", tmp_path / "bad", int8=True, fp32_ffn_out=[0, 2])
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ValueError, match="names no layer"):
        export_pipeline(base / "torch", tmp_path / "none", int8=True, fp32_ffn_out=[])
    with pytest.raises(TypeError, match="sequence of layer indices"):
        export_pipeline(base / "torch", tmp_path / "int", int8=True, fp32_ffn_out=1)

    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "spacy_multitask_intent", "export", str(base / "torch"), *map(str, args)],
            cwd=ROOT_DIR, capture_output=True, text=True,
        )

    done = cli(tmp_path / "c", "--int8", "--fp32-ffn-layers", "0")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "feed-forward outputs of layer(s) 0 fp32" in done.stdout
    proto = onnx.load(str(tmp_path / "c" / "intent_ner" / ONNX_FILE))
    plain = {n.name for n in proto.graph.node if n.op_type == "MatMul"}
    assert names[0] in plain and names[1] not in plain
    done = cli(tmp_path / "d", "--int8", "--fp32-ffn-layers", "5")
    assert done.returncode == 1 and "out of range" in done.stderr and "Traceback" not in done.stderr
    for bad in ("one", ","):
        done = cli(tmp_path / "e", "--int8", "--fp32-ffn-layers", bad)
        assert done.returncode == 1 and "not a comma-separated list" in done.stderr, bad
    done = cli(tmp_path / "f", "--int8", "--fp32-ffn-out", "--fp32-ffn-layers", "0")
    assert done.returncode == 1 and "not both" in done.stderr
    done = cli(tmp_path / "g", "--fp32-ffn-layers", "0")
    assert done.returncode == 1 and "--fp32-ffn-layers only applies with --int8" in done.stderr


def test_export_cli_int8_loads_and_runs(exported, tmp_path):
    base, nlp = exported
    out = tmp_path / "int8"
    result = subprocess.run(
        [sys.executable, "-m", "spacy_multitask_intent", "export", str(base / "torch"), str(out), "--int8"],
        cwd=ROOT_DIR,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "int8" in result.stdout
    import onnx

    proto = onnx.load(str(out / "intent_ner" / ONNX_FILE))
    graph = proto.graph
    assert any(n.op_type in ("DynamicQuantizeLinear", "MatMulInteger", "DynamicQuantizeMatMul") for n in graph.node)
    # int8 weights get one scale per output column by default (closer to fp32)
    scales = [list(i.dims) for i in graph.initializer if i.name.endswith("_scale")]
    assert any(len(d) == 1 and d[0] > 1 for d in scales), scales
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["intent_ner.int8_scales"] == '"channel"'
    q = spacy.load(out)
    docs = list(q.pipe(TEXTS))
    ref = list(nlp.pipe(TEXTS))
    for d, r in zip(docs, ref):
        assert set(d.cats) == set(r.cats)
        for k in r.cats:  # int8 weights: close to fp32, not equal
            assert abs(d.cats[k] - r.cats[k]) < 0.1
    # a second export into a non-empty directory is refused
    again = subprocess.run(
        [sys.executable, "-m", "spacy_multitask_intent", "export", str(base / "torch"), str(out)],
        cwd=ROOT_DIR,
        capture_output=True,
        text=True,
    )
    assert again.returncode != 0 and "not empty" in again.stderr


def test_import_does_not_load_onnxruntime():
    code = "import sys, spacy_multitask_intent; print('onnxruntime' in sys.modules, 'onnx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT_DIR, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "False"]


def test_export_keeps_the_crf_scores(tiny_bert, tmp_path):
    from spacy_multitask_intent.crf import CRF_START, CRF_TRANS

    nlp = fresh_nlp(tiny_bert, model={"crf": True}, update_mode="joint")
    train(nlp, toy_examples(nlp), steps=15)
    head = nlp.get_pipe("intent_ner").model.get_ref("ner_head")
    head.set_param(CRF_START, head.get_param(CRF_START) + numpy.linspace(-2, 2, len(head.get_param(CRF_START)), dtype="f"))
    nlp.to_disk(tmp_path / "torch")
    export_pipeline(tmp_path / "torch", tmp_path / "onnx")
    onnx_nlp = spacy.load(tmp_path / "onnx")
    assert onnx_nlp.config["components"]["intent_ner"]["model"]["crf"] is True
    ohead = onnx_nlp.get_pipe("intent_ner").model.get_ref("ner_head")
    for name in (CRF_TRANS, CRF_START):
        numpy.testing.assert_array_equal(ohead.get_param(name), head.get_param(name))
    n_ents = 0
    for d1, d2 in zip(nlp.pipe(TEXTS), onnx_nlp.pipe(TEXTS)):
        assert [(e.start, e.end, e.label_) for e in d1.ents] == [(e.start, e.end, e.label_) for e in d2.ents]
        assert [e._.confidence for e in d1.ents] == pytest.approx([e._.confidence for e in d2.ents], abs=1e-4)
        n_ents += len(d1.ents)
    assert n_ents > 0


def test_export_keeps_the_intent_sets(tiny_bert, tmp_path):
    """intent_loss = "softmax_sets": the graph's intent outputs are the sets,
    and the exported pipeline sums them into intents as torch does."""
    data = TOY[:-1] + [("add cherry pie to cart", [(1, 3, "PRODUCT")], ["add_to_cart", "product_search"])]
    nlp = build_nlp(tiny_bert, update_mode="joint", intent_loss="softmax_sets")
    nlp.initialize(lambda: toy_examples(nlp, data))
    train(nlp, toy_examples(nlp, data), steps=15)
    nlp.to_disk(tmp_path / "torch")
    export_pipeline(tmp_path / "torch", tmp_path / "onnx")
    onnx_nlp = spacy.load(tmp_path / "onnx")
    proc = onnx_nlp.get_pipe("intent_ner")
    assert proc.intent_classes[-1] == "add_to_cart + product_search"
    for d1, d2 in zip(nlp.pipe(TEXTS), onnx_nlp.pipe(TEXTS)):
        assert d1.cats == pytest.approx(d2.cats, abs=1e-4)
        if d1._.intent_scores is not None:
            assert d2._.intent_scores.shape == d1._.intent_scores.shape == (len(d1), 3)
