"""Accuracy levers of intent_ner that change what the model is:
`hidden_width` (each head an MLP with one GELU hidden layer instead of a
linear layer), the encoder's `pooling` ("mean" of a word's sub-words, or
its "first" sub-word, as JointBERT does) and its `scalar_mix` (a learned mix
of its last hidden states)."""
import numpy
import pytest
import spacy
import torch
from spacy.training import Example
from thinc.api import Ragged, fix_random_seed, reduce_first

from conftest import ON_GPU, TOY, intent_ner_config, toy_examples, train
from spacy_multitask_intent.inference import predict_heads
from spacy_multitask_intent.layers import ScalarMixEncoder, encoder_module, head_module, torch_modules, transformer_of
from spacy_multitask_intent.model import encode, pooling_of, reduce_first_or_zero

TEXTS = [t for t, _, _ in TOY] + [
    "orange",
    "pickup my order at orange store " * 4,  # several strided windows at window 8
    "buy  orange\tat target\n",  # whitespace tokens: words without sub-words
    "zzz qqq cherry ok",  # words of several sub-words
]
LONG = " ".join(["pickup my order at orange store", "buy orange at target", "add apple juice to my cart"] * 2)


def arch_nlp(encoder_path, model=None, encoder=None, init=True, seed=0, **cfg):
    """An intent_ner pipeline with `model` / `encoder` settings merged into its
    model config (dropout 0 unless given), initialized on the toy set."""
    fix_random_seed(seed)
    nlp = spacy.blank("en")
    nlp.add_pipe("intent_ner", config=intent_ner_config(encoder_path, model, encoder, **cfg))
    if init:
        nlp.initialize(lambda: toy_examples(nlp))
    return nlp


def outputs(nlp, texts=TEXTS):
    return [
        ([(e.start, e.end, e.label_) for e in d.ents], numpy.asarray(d._.intent_scores, dtype="f"))
        for d in nlp.pipe(texts)
    ]


def assert_same_outputs(a, b):
    assert len(a) == len(b)
    for (ents_a, scores_a), (ents_b, scores_b) in zip(a, b):
        assert ents_a == ents_b
        numpy.testing.assert_allclose(scores_a, scores_b, rtol=1e-5, atol=1e-6)


def whitespace_examples(nlp):
    """Toy examples whose docs hold whitespace tokens, and one long doc."""
    out = []
    for text, ents, cats in [
        ("buy  orange at target", [(2, 3, "PRODUCT")], ["product_search"]),  # "buy", " ", "orange", ...
        ("find lemon cake\n", [(1, 3, "PRODUCT")], ["product_search"]),
    ]:
        ref = nlp.make_doc(text)
        ref.set_ents([ref.char_span(*_char(ref, s, e), label=l) for s, e, l in ents])
        ref.cats = {i: float(i in cats) for i in ("add_to_cart", "product_search", "store_lookup")}
        out.append(Example(nlp.make_doc(text), ref))
    ref = nlp.make_doc(LONG)
    ref.cats = {"add_to_cart": 0.0, "product_search": 1.0, "store_lookup": 0.0}
    out.append(Example(nlp.make_doc(LONG), ref))
    return out


def _char(doc, start, end):
    return doc[start].idx, doc[end - 1].idx + len(doc[end - 1])


# ------------------------------------------------------------ hidden_width
def test_hidden_width_heads_are_mlps_that_learn_and_round_trip(tiny_bert, tmp_path):
    nlp = arch_nlp(tiny_bert, model={"hidden_width": 16})
    proc = nlp.get_pipe("intent_ner")
    for name, n_out in (("ner_head", len(proc.tags)), ("intent_head", len(proc.intent_labels))):
        head = head_module(proc.model.get_ref(name))
        assert head.hidden_width == 16
        assert head.hidden.weight.shape == (16, 32) and head.linear.weight.shape == (n_out, 16)
        assert set(head.state_dict()) == {"hidden.weight", "hidden.bias", "linear.weight", "linear.bias"}
    history = train(nlp, toy_examples(nlp), steps=30)
    first, last = history[0]["intent_ner"], history[-1]["intent_ner"]
    assert numpy.isfinite(last) and last < 0.5 * first
    before = outputs(nlp)
    assert sum(len(e) for e, _ in before) > 0  # trained: entities found, so spans are compared
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert loaded.config["components"]["intent_ner"]["model"]["hidden_width"] == 16
    assert head_module(loaded.get_pipe("intent_ner").model.get_ref("ner_head")).hidden_width == 16
    assert_same_outputs(before, outputs(loaded))
    # from_bytes too, into a pipeline built from the same config
    again = arch_nlp(tiny_bert, model={"hidden_width": 16}, seed=3)
    again.from_bytes(nlp.to_bytes())
    assert_same_outputs(before, outputs(again))


def test_default_heads_are_linear_and_configs_without_the_new_settings_load(tiny_bert, tmp_path):
    """hidden_width 0 and pooling "mean" are the defaults, and a pipeline saved
    before either setting existed (its config lacks both) loads unchanged."""
    nlp = arch_nlp(tiny_bert)
    proc = nlp.get_pipe("intent_ner")
    head = head_module(proc.model.get_ref("ner_head"))
    assert head.hidden is None and head.hidden_width == 0
    assert set(head.state_dict()) == {"linear.weight", "linear.bias"}
    assert pooling_of(proc.model.get_ref("encoder")) == "mean"
    filled = nlp.config["components"]["intent_ner"]["model"]
    assert filled["hidden_width"] == 0 and filled["encoder"]["pooling"] == "mean"
    train(nlp, toy_examples(nlp), steps=10)
    before = outputs(nlp)
    nlp.to_disk(tmp_path / "p")
    cfg = tmp_path / "p" / "config.cfg"
    text = cfg.read_text(encoding="utf8")
    old = "\n".join(line for line in text.splitlines() if not line.startswith(("hidden_width", "pooling"))) + "\n"
    assert old != text
    cfg.write_text(old, encoding="utf8")
    loaded = spacy.load(tmp_path / "p")
    assert pooling_of(loaded.get_pipe("intent_ner").model.get_ref("encoder")) == "mean"
    assert head_module(loaded.get_pipe("intent_ner").model.get_ref("ner_head")).hidden is None
    assert_same_outputs(before, outputs(loaded))


def test_mlp_head_fast_path_equals_the_thinc_path(tiny_bert):
    """predict_heads runs each head's `project`: the same logits as the head's
    own forward in eval mode, with the hidden layer and without dropout."""
    nlp = arch_nlp(tiny_bert, model={"hidden_width": 16, "dropout": 0.3})
    train(nlp, toy_examples(nlp), steps=5)
    proc = nlp.get_pipe("intent_ner")
    heads = [proc.model.get_ref("ner_head"), proc.model.get_ref("intent_head")]
    docs = [nlp.make_doc(t) for t in TEXTS]
    X, _, _ = encode(proc.model, docs, False)
    fast = predict_heads(X, heads)
    for head, a in zip(heads, fast):
        b = head.predict(X)  # thinc's PyTorchShim: module.eval(), forward
        assert a.shape == b.shape == (X.shape[0], head.get_dim("nO"))
        numpy.testing.assert_allclose(proc.model.ops.to_numpy(a), proc.model.ops.to_numpy(b), rtol=1e-5, atol=1e-6)
    # and they are the MLP's: Linear(GELU(Linear(X)))
    module = head_module(heads[0])
    with torch.no_grad():
        Xt = torch.from_numpy(proc.model.ops.to_numpy(X))
        mlp = module.linear(torch.nn.functional.gelu(module.hidden(Xt))).numpy()
    numpy.testing.assert_allclose(proc.model.ops.to_numpy(fast[0]), mlp, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(ON_GPU, reason="dynamic int8 quantization runs on CPU")
def test_mlp_head_int8_quantizes_both_layers_of_each_head(tiny_bert):
    from spacy_multitask_intent.inference import quantize_int8

    nlp = arch_nlp(tiny_bert, model={"hidden_width": 16})
    train(nlp, toy_examples(nlp), steps=15)
    proc = nlp.get_pipe("intent_ner")
    docs = [nlp.make_doc(t) for t in TEXTS]
    fp32 = proc.predict(docs)
    quantize_int8(proc)
    modules = [m for _, module in torch_modules(proc.model) for m in module.modules()]
    assert not [m for m in modules if type(m) is torch.nn.Linear]  # all replaced
    head = head_module(proc.model.get_ref("ner_head"))
    assert "quantized" in type(head.hidden).__module__ and "quantized" in type(head.linear).__module__
    int8 = proc.predict(docs)
    for a, b in zip(fp32[0] + fp32[1], int8[0] + int8[1]):
        if a is None:
            assert b is None
            continue
        assert a.shape == b.shape and numpy.isfinite(b).all()
        if len(a):
            assert numpy.abs(a - b).max() < 0.1
    doc = nlp("pickup my order at orange store")
    assert set(doc.cats) == set(proc.intent_labels)


@pytest.mark.parametrize("bad", [-1, -16])
def test_negative_hidden_width_is_refused(tiny_bert, bad):
    with pytest.raises(ValueError, match="hidden_width"):
        arch_nlp(tiny_bert, model={"hidden_width": bad}, init=False)


# ----------------------------------------------------------------- pooling
def test_reduce_first_or_zero_forward_and_backprop():
    """First row of each sequence, zeros (and no gradient) for empty ones;
    where no sequence is empty it is thinc's reduce_first."""
    layer = reduce_first_or_zero()
    X = numpy.arange(12, dtype="f").reshape(6, 2)
    lengths = numpy.array([2, 0, 3, 0, 1], dtype="i")
    Y, backprop = layer(Ragged(X, lengths), True)
    numpy.testing.assert_array_equal(Y, [[0, 1], [0, 0], [4, 5], [0, 0], [10, 11]])
    dY = numpy.arange(1, 11, dtype="f").reshape(5, 2)
    dX = backprop(dY)
    numpy.testing.assert_array_equal(dX.lengths, lengths)
    numpy.testing.assert_array_equal(dX.dataXd, [[1, 2], [0, 0], [5, 6], [0, 0], [0, 0], [9, 10]])
    # all empty, and nothing at all
    Y, backprop = layer(Ragged(numpy.zeros((0, 2), "f"), numpy.array([0, 0], "i")), True)
    assert Y.shape == (2, 2) and not Y.any()
    assert backprop(numpy.ones((2, 2), "f")).dataXd.shape == (0, 2)
    # the same as thinc's reduce_first when every sequence has rows
    full = numpy.array([2, 3, 1], dtype="i")
    Y1, bp1 = layer(Ragged(X, full), True)
    Y2, bp2 = reduce_first()(Ragged(X, full), True)
    numpy.testing.assert_array_equal(Y1, Y2)
    d = numpy.ones_like(Y1)
    numpy.testing.assert_array_equal(bp1(d).dataXd, bp2(d).dataXd)


def _first_subword_rows(encoder, docs):
    """The expected vectors: the transformer's output at each word's first
    aligned sub-word (zeros for a word without one)."""
    batch = transformer_of(encoder).predict(docs)
    out = []
    for trf_data in batch.split_by_doc():
        hidden = numpy.asarray(trf_data.model_output.last_hidden_state).reshape(-1, trf_data.width)
        align = trf_data.align
        rows, start = [], 0
        for n in align.lengths:
            rows.append(hidden[align.dataXd[start]] if n else numpy.zeros(trf_data.width, "f"))
            start += n
        out.append(numpy.asarray(rows, dtype="f").reshape(len(rows), -1))
    return out


def test_first_pooling_gives_each_word_its_first_subword(tiny_bert):
    nlp = arch_nlp(tiny_bert, encoder={"pooling": "first", "window": 8, "stride": 6})
    encoder = nlp.get_pipe("intent_ner").model.get_ref("encoder")
    assert pooling_of(encoder) == "first"
    docs = [
        nlp.make_doc("buy  orange\tat zzzq target\n"),  # whitespace tokens; "zzzq": several sub-words
        nlp.make_doc(" ".join(["pickup", "my", "order", "at", "orange", "store", "zzz"] * 3)[:-4]),  # 20 words
        nlp.make_doc("\n"),
    ]
    assert len(docs[1]) == 20 and len(docs[2]) == 1
    vectors, _ = encoder(docs, False)
    expected = _first_subword_rows(encoder, docs)
    for doc, v, e in zip(docs, vectors, expected):
        v = numpy.asarray(v)
        assert v.shape == (len(doc), 32)  # one vector per word, windows or not
        numpy.testing.assert_allclose(v, e, rtol=1e-6, atol=1e-6)
        for token, row in zip(doc, v):
            assert row.any() != token.is_space, (token.text, doc.text)
    # A word of several sub-words is not their mean: the mean-pooled encoder,
    # with the same weights, differs at that word and nowhere else in doc 0.
    mean = arch_nlp(tiny_bert, encoder={"window": 8, "stride": 6}).get_pipe("intent_ner").model.get_ref("encoder")
    encoder_module(mean).load_state_dict(encoder_module(encoder).state_dict())
    assert pooling_of(mean) == "mean"
    m, _ = mean([docs[0]], False)
    differs = [t.text for t, a, b in zip(docs[0], numpy.asarray(vectors[0]), numpy.asarray(m[0])) if not numpy.allclose(a, b, atol=1e-6)]
    assert "zzzq" in differs and "orange" not in differs and "target" not in differs


def test_first_pooling_trains_with_whitespace_and_windows_and_round_trips(tiny_bert, tmp_path):
    nlp = arch_nlp(tiny_bert, encoder={"pooling": "first", "window": 8, "stride": 6})
    examples = toy_examples(nlp) + whitespace_examples(nlp)
    assert any(t.is_space for ex in examples for t in ex.predicted)
    assert max(len(ex.predicted) for ex in examples) > 8
    history = train(nlp, examples, steps=30)
    first, last = history[0]["intent_ner"], history[-1]["intent_ner"]
    assert numpy.isfinite(last) and last < 0.5 * first
    before = outputs(nlp, TEXTS + [LONG])
    assert sum(len(e) for e, _ in before) > 0
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert loaded.config["components"]["intent_ner"]["model"]["encoder"]["pooling"] == "first"
    assert pooling_of(loaded.get_pipe("intent_ner").model.get_ref("encoder")) == "first"
    assert_same_outputs(before, outputs(loaded, TEXTS + [LONG]))


@pytest.mark.parametrize("bad", ["max", "MEAN", ""])
def test_unknown_pooling_is_refused(tiny_bert, bad):
    with pytest.raises(ValueError, match=r"pooling must be one of 'mean', 'first'"):
        arch_nlp(tiny_bert, encoder={"pooling": bad}, init=False)


# -------------------------------------------------------------- scalar mix
def test_scalar_mix_starts_as_the_mean_of_the_last_hidden_states(tiny_bert):
    nlp = arch_nlp(tiny_bert, encoder={"scalar_mix": 2})
    hf = encoder_module(nlp.get_pipe("intent_ner").model.get_ref("encoder"))
    assert isinstance(hf, ScalarMixEncoder) and hf.n_mixed == 2
    hf.eval()
    ids = torch.tensor([[2, 5, 7, 9, 3]])
    with torch.no_grad():
        mixed = hf(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
        states = hf.model(input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True).hidden_states
    numpy.testing.assert_allclose(mixed.numpy(), ((states[-1] + states[-2]) / 2).numpy(), rtol=1e-5, atol=1e-6)
    assert not numpy.allclose(mixed.numpy(), states[-1].numpy(), atol=1e-3)  # not the last layer alone


def test_scalar_mix_trains_at_the_heads_rate_and_round_trips(tiny_bert, tmp_path):
    from thinc.api import Adam

    from test_component import SpyOptimizer

    nlp = arch_nlp(tiny_bert, encoder={"scalar_mix": 3}, update_mode="joint", head_lr_factor=7.0)
    proc = nlp.get_pipe("intent_ner")
    hf = encoder_module(proc.model.get_ref("encoder"))
    spy = SpyOptimizer(Adam(1e-3))
    nlp.update(toy_examples(nlp), sgd=False, losses={})
    proc.finish_update(spy)
    scales = {key[1]: s for key, s, _ in spy.calls}
    assert scales["mix_weights"] == scales["mix_gamma"] == 7.0
    assert scales["model.encoder.layer.0.attention.self.query.weight"] == 1.0
    assert hf.mix_weights.detach().abs().sum() > 0  # moved off equal weights
    train(nlp, toy_examples(nlp), steps=10)
    before = outputs(nlp)
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert loaded.config["components"]["intent_ner"]["model"]["encoder"]["scalar_mix"] == 3
    lhf = encoder_module(loaded.get_pipe("intent_ner").model.get_ref("encoder"))
    assert isinstance(lhf, ScalarMixEncoder)
    numpy.testing.assert_array_equal(lhf.mix_weights.detach().numpy(), hf.mix_weights.detach().numpy())
    numpy.testing.assert_array_equal(lhf.mix_gamma.detach().numpy(), hf.mix_gamma.detach().numpy())
    assert_same_outputs(outputs(loaded), before)


def test_a_saved_mix_loaded_under_another_scalar_mix_is_refused(tiny_bert, tmp_path):
    """Weights saved with a mix cannot load into an encoder without one (or
    with another), which would leave the encoder untrained; nor the reverse."""
    for saved, asked in ((2, 0), (0, 3), (2, 3)):
        nlp = arch_nlp(tiny_bert, encoder={"scalar_mix": saved})
        nlp.to_disk(tmp_path / f"p{saved}")
        with pytest.raises(ValueError, match=f"the saved encoder's scalar_mix is {saved} but the pipeline's config sets {asked}.*model file"):
            spacy.load(tmp_path / f"p{saved}", config={"components": {"intent_ner": {"model": {"encoder": {"scalar_mix": asked}}}}})


@pytest.mark.parametrize("bad", [-1, 1.5, "2", True])
def test_bad_scalar_mix_is_refused(tiny_bert, bad):
    with pytest.raises(ValueError, match="scalar_mix"):  # ours, or the config's type check
        arch_nlp(tiny_bert, encoder={"scalar_mix": bad}, init=False)


def test_scalar_mix_beyond_the_encoders_layers_is_refused(tiny_bert):
    # the tiny BERT has 2 layers: 3 hidden states with the embeddings'
    arch_nlp(tiny_bert, encoder={"scalar_mix": 3})
    with pytest.raises(ValueError, match=r"scalar_mix must be 0 \(off\) or 1-3 \(the encoder's 2 layers and its embeddings\), got 4"):
        arch_nlp(tiny_bert, encoder={"scalar_mix": 4})


# -------------------------------------------------------------------- ONNX
@pytest.mark.skipif(ON_GPU, reason="the ONNX export runs on CPU")
@pytest.mark.parametrize(
    "model,encoder",
    [({"hidden_width": 16}, {}), ({}, {"pooling": "first"}), ({"hidden_width": 8}, {"pooling": "first"}), ({}, {"scalar_mix": 3})],
    ids=["mlp", "first", "mlp+first", "mix"],
)
def test_onnx_export_of_the_levers_matches_torch(tiny_bert, tmp_path, model, encoder):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from spacy_multitask_intent.onnx import export_pipeline

    nlp = arch_nlp(tiny_bert, model=model, encoder={"window": 8, "stride": 6, **encoder})
    train(nlp, toy_examples(nlp), steps=15)
    nlp.to_disk(tmp_path / "torch")
    export_pipeline(tmp_path / "torch", tmp_path / "onnx")
    onnx_nlp = spacy.load(tmp_path / "onnx")
    runtime = onnx_nlp.get_pipe("intent_ner").model.attrs["runtime"]
    assert runtime.meta["pooling"] == encoder.get("pooling", "mean")
    assert runtime.meta["hidden_width"] == model.get("hidden_width", 0)
    proc = nlp.get_pipe("intent_ner")
    texts = TEXTS + [LONG]
    docs = [nlp.make_doc(t) for t in texts]
    assert max(len(d) for d in docs) > 8 and any(t.is_space for d in docs for t in d)
    X, lengths, _ = encode(proc.model, docs, False)
    t_ner, t_int = (numpy.asarray(a) for a in predict_heads(X, [proc.model.get_ref("ner_head"), proc.model.get_ref("intent_head")]))
    (o_ner, o_int), o_len = runtime.predict_logits([onnx_nlp.make_doc(t) for t in texts])
    assert o_len == lengths
    assert o_ner.shape == t_ner.shape and o_int.shape == t_int.shape
    numpy.testing.assert_allclose(o_ner, t_ner, atol=1e-4)
    numpy.testing.assert_allclose(o_int, t_int, atol=1e-4)
    a, b = outputs(nlp, texts), outputs(onnx_nlp, texts)
    for (ents_a, s_a), (ents_b, s_b) in zip(a, b):
        assert ents_a == ents_b
        numpy.testing.assert_allclose(s_a, s_b, atol=1e-4)
