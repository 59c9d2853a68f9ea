"""ONNX Runtime export of an `intent_ner` pipeline, and the runtime that runs it.

``export_pipeline(MODEL, OUT)`` writes a pipeline whose ``intent_ner`` model is
the architecture ``spacy_multitask_intent.OnnxIntentNER.v1``.  Its component
directory holds

* ``model.onnx``: ONE graph, the HF encoder + the sub-word -> word pooling (the
  encoder's ``pooling``: mean, or first sub-word) + the NER head + the intent
  head (linear or MLP), with dynamic batch, length and word axes
  (optionally int8-quantized with ``onnxruntime.quantization.quantize_dynamic``);
* ``tokenizer/``: the encoder's HF tokenizer (``save_pretrained``).

The Python side of a prediction is the torch path's own: for short docs
``wordpieces.batch_inputs``; otherwise the strided span getter
(``window``/``stride`` from the original encoder config), spacy-transformers'
``huggingface_tokenize``, its alignment (offset mapping, or wordpiece strings
for slow tokenizers) and its ``truncate_oversize_splits``.
The graph then averages, for every word, all the sub-word vectors aligned to
it (in every window that holds it), exactly as the encoder's ``reduce_mean``
pooling does, or with ``pooling = "first"`` takes the first of them, as
``reduce_first_or_zero`` does, and applies both heads.  So long docs are handled by the same
windows as in torch, nothing is truncated that torch does not truncate.

The label sets are stored in the ``.onnx`` file's metadata; loading refuses a
file whose labels differ from the pipeline's ``cfg``.

onnxruntime and onnx are imported only inside the functions that need them:
``import spacy_multitask_intent`` does not import them.
"""
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy
import srsly
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.model import deserialize_attr, serialize_attr

from .crf import CRF_START, CRF_TRANS, crf_params, declare_crf

ARCHITECTURE = "spacy_multitask_intent.OnnxIntentNER.v1"
ONNX_FILE = "model.onnx"
TOKENIZER_DIR = "tokenizer"
FORMAT = "intent_ner-onnx-1"
META_PREFIX = "intent_ner."
INPUTS = ("input_ids", "attention_mask", "token_type_ids", "wp_index", "word_index", "word_count")
OUTPUTS = ("ner_logits", "intent_logits")


# --------------------------------------------------------------- runtime
class OnnxRuntime:
    """The ONNX session, tokenizer and span getter of an exported ``intent_ner``.

    Lives in the model's ``attrs["runtime"]``.  The component loads it from
    its directory (``from_disk``), writes it back (``to_disk``) and calls
    ``predict_logits`` instead of its torch encoder and heads.
    """

    def __init__(self, window: int = 128, stride: int = 96):
        if not 0 < stride <= window:
            raise ValueError(f"OnnxIntentNER needs 0 < stride <= window, got stride={stride}, window={window}")
        self.window, self.stride = int(window), int(stride)
        self.session = None
        self.tokenizer = None
        self.meta: dict = {}
        self.source: Optional[Path] = None  # the component directory it was loaded from
        self._pid = os.getpid()
        self._lock = threading.Lock()
        # Buckets run side by side, each on one core (predict_many): None =
        # as many as torch has threads (n_workers); 1 = one bucket at a time
        # on the session's own thread pool.
        self.workers: Optional[int] = None
        self._single = None  # the one-thread session the side-by-side buckets share
        self._pool, self._pool_size = None, 0  # the threads that run them, kept between calls
        # In a forked worker process (one thread, one bucket at a time): the
        # parent's sessions, never freed (_session); empty in the parent.
        self._inherited = ()
        from spacy_transformers.span_getters import configure_strided_spans

        self.get_spans = configure_strided_spans(self.window, self.stride)

    # ------------------------------------------------------------ loading
    def from_disk(self, path: Union[str, Path], tags: Sequence[str], intents: Sequence[str]) -> None:
        """Load ``model.onnx`` and ``tokenizer/`` from the component directory
        ``path``; refuse a file whose label sets differ from ``tags``/``intents``
        (the pipeline's cfg)."""
        path = Path(path)
        onnx_path = path / ONNX_FILE
        if not onnx_path.is_file():
            raise FileNotFoundError(
                f"intent_ner: ONNX model file {onnx_path} is missing; the exported pipeline "
                "directory is incomplete. Re-export it with `python -m spacy_multitask_intent export`."
            )
        tok_path = path / TOKENIZER_DIR
        if not tok_path.is_dir():
            raise FileNotFoundError(
                f"intent_ner: tokenizer directory {tok_path} is missing; the exported pipeline "
                "directory is incomplete. Re-export it with `python -m spacy_multitask_intent export`."
            )
        import torch

        # As many threads as torch has (what serve and annotate set per
        # process before loading), not ONNX Runtime's default of one per
        # physical core.
        session = _new_session(onnx_path, threads=max(1, torch.get_num_threads()))
        meta = _read_meta(session, onnx_path)
        want = {"tags": list(tags), "intents": list(intents) or [""]}
        have = {"tags": meta.get("tags"), "intents": meta.get("intents") or [""]}
        for key in ("tags", "intents"):
            if have[key] != want[key]:
                raise ValueError(
                    f"intent_ner: ONNX model file {onnx_path} was exported with {key} {have[key]}, "
                    f"but the pipeline's config ({path / 'cfg'}) has {want[key]}. The file belongs "
                    "to another model; re-export this pipeline with `python -m spacy_multitask_intent export`."
                )
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(tok_path), use_fast=bool(meta.get("fast", True)))
        except Exception as err:  # noqa: BLE001 - re-raised with the path
            raise ValueError(f"intent_ner: cannot load the tokenizer in {tok_path}: {err}") from err
        self.session, self.tokenizer, self.meta, self.source = session, tokenizer, meta, path
        self._pid = os.getpid()
        self._single = None

    def to_disk(self, path: Union[str, Path]) -> None:
        """Write ``model.onnx`` and ``tokenizer/`` into the component directory."""
        if self.source is None:
            raise ValueError(
                "intent_ner: this ONNX pipeline has no model file to save: load it with "
                "spacy.load(DIR) from an exported directory first."
            )
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if path.resolve() == self.source.resolve():
            return
        shutil.copyfile(self.source / ONNX_FILE, path / ONNX_FILE)
        if (path / TOKENIZER_DIR).exists():
            shutil.rmtree(path / TOKENIZER_DIR)
        shutil.copytree(self.source / TOKENIZER_DIR, path / TOKENIZER_DIR)
        self.source = path

    # ---------------------------------------------------------- prediction
    def _session(self):
        if self.session is None:
            raise ValueError(
                "intent_ner: the ONNX model is not loaded. An exported pipeline is loaded from "
                "its directory with spacy.load(DIR); nlp.from_bytes() does not carry the .onnx file."
            )
        pid = os.getpid()
        if pid != self._pid:
            # A forked child (nlp.pipe(n_process=...)) must not share the
            # parent's thread pool: one fresh single-threaded session per worker.
            with self._lock:
                if pid != self._pid:
                    # The parent's sessions are kept, not freed: freeing one in
                    # the child waits on a condition variable of a thread the
                    # child does not have, and hangs.
                    self._inherited = (self.session, self._single)
                    self.session = _new_session(self.source / ONNX_FILE, threads=1)
                    self._single, self._pool = None, None  # the pool's threads stayed in the parent
                    self._pid = pid
        return self.session

    def n_workers(self) -> int:
        """How many buckets run side by side: ``workers`` if set, by default
        torch's thread count (``torch.set_num_threads``, ``OMP_NUM_THREADS``;
        ``serve`` sets it in each of its worker processes, ``annotate
        --threads`` in each process), so that both runtimes use the same
        cores; 1 in a forked worker process (whose session has one thread:
        its siblings have the other cores)."""
        if self.workers is not None:
            return max(1, int(self.workers))
        if os.getpid() != self._pid or self._inherited or self.session is None:
            return 1
        import torch

        return max(1, torch.get_num_threads())

    def bucket_size(self, n_docs: int, size: int) -> int:
        """The bucket size for ``n_docs`` docs: at most ``size`` (the
        component's ``bucket_size``), and small enough that every worker gets
        two buckets.  The buckets are sorted by length, so they cost unlike
        amounts; a worker done with a short one takes the next (one bucket per
        worker leaves a core idle while the longest finishes)."""
        workers = self.n_workers()
        return max(1, min(size, -(-n_docs // (2 * workers)))) if workers > 1 else size

    def predict_many(self, buckets: List[List[Doc]]) -> List[Tuple[List[numpy.ndarray], List[int]]]:
        """``predict_logits`` for each bucket of docs, in order.  With one
        bucket, or one worker, the buckets run in turn on the session's own
        thread pool (every core on one bucket).  Otherwise they run side by
        side, each on one core, in a pool of ``n_workers()`` threads sharing
        one one-thread session (ONNX Runtime's ``run`` is thread-safe and
        releases the GIL): for a batch of short queries, a bucket per core
        keeps the cores busier than every core on each small matrix product
        in turn (docs/onnx.md, "Buckets side by side")."""
        session = self._session()
        workers = min(self.n_workers(), len(buckets))
        if workers <= 1:
            return [self._run(session, docs) for docs in buckets]
        with self._lock:
            if self._single is None:
                self._single = _new_session(self.source / ONNX_FILE, threads=1)
            if self._pool is None or self._pool_size < workers:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="intent_ner-onnx")
                self._pool_size = workers
            single, pool = self._single, self._pool
        return list(pool.map(lambda docs: self._run(single, docs), buckets))

    def inputs(self, docs: List[Doc]) -> dict:
        """The graph's inputs for non-empty docs: for short docs the arrays of
        ``wordpieces.batch_inputs`` (the torch path's own fast host side);
        otherwise the encoder's own span getter, tokenizer call, alignment and
        truncation (spacy-transformers), then the alignment as (sub-word
        index, word index, count) triples.  Both give the same numbers."""
        from .wordpieces import batch_inputs

        feeds = batch_inputs(self.tokenizer, docs, self.window, self.meta.get("token_types", True))
        if feeds is not None:
            return feeds
        from spacy_transformers.align import get_alignment, get_alignment_via_offset_mapping
        from spacy_transformers.data_classes import WordpieceBatch
        from spacy_transformers.layers.transformer_model import huggingface_tokenize
        from spacy_transformers.truncate import truncate_oversize_splits

        tokenizer = self.tokenizer
        flat_spans = [span for doc_spans in self.get_spans(docs) for span in doc_spans]
        batch_encoding = huggingface_tokenize(tokenizer, [span.text for span in flat_spans])
        wordpieces = WordpieceBatch.from_batch_encoding(batch_encoding)
        if "offset_mapping" in batch_encoding:
            align = get_alignment_via_offset_mapping(flat_spans, batch_encoding["offset_mapping"])
        else:
            align = get_alignment(flat_spans, wordpieces.strings, tokenizer.all_special_tokens)
        wordpieces, align = truncate_oversize_splits(wordpieces, align, tokenizer.model_max_length)
        n_words = sum(len(d) for d in docs)
        lengths = numpy.asarray(align.lengths, dtype="int64")
        if len(lengths) != n_words:
            raise ValueError(
                f"intent_ner: the encoder's alignment covers {len(lengths)} words but the batch has "
                f"{n_words}; cannot map sub-words to words."
            )
        feeds = {
            "input_ids": numpy.asarray(wordpieces.input_ids, dtype="int64"),
            "attention_mask": numpy.asarray(wordpieces.attention_mask, dtype="int64"),
            "wp_index": numpy.asarray(align.dataXd, dtype="int64").reshape(-1),
            "word_index": numpy.repeat(numpy.arange(n_words, dtype="int64"), lengths),
            "word_count": lengths.astype("float32"),
        }
        if self.meta.get("token_types", True):
            tt = wordpieces.token_type_ids
            feeds["token_type_ids"] = (
                numpy.zeros_like(feeds["input_ids"]) if tt is None else numpy.asarray(tt, dtype="int64")
            )
        return feeds

    def predict_logits(self, docs: List[Doc]) -> Tuple[List[numpy.ndarray], List[int]]:
        """([NER logits, intent logits] for the docs' words stacked, word counts
        per doc), the same as the torch encoder + ``predict_heads``."""
        return self._run(self._session(), docs)

    def _run(self, session, docs: List[Doc]) -> Tuple[List[numpy.ndarray], List[int]]:
        feeds = self.inputs(docs)
        if "inputs" in self.meta:  # only the graph's own inputs (see _read_meta)
            feeds = {k: v for k, v in feeds.items() if k in self.meta["inputs"]}
        ner, intent = session.run(list(OUTPUTS), feeds)
        return [ner, intent], [len(d) for d in docs]


def _new_session(onnx_path: Path, threads: int = 0):
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise ImportError(
            f"intent_ner: the pipeline runs {onnx_path} in ONNX Runtime, which is not installed: "
            "pip install 'spacy-multitask-intent[onnx]' (onnxruntime, onnx)."
        ) from err
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 - ORT raises its own exception classes
        raise ValueError(
            f"intent_ner: cannot load ONNX model file {onnx_path}: {str(err).strip()[:300]}. "
            "The file is truncated or damaged; re-export the pipeline with "
            "`python -m spacy_multitask_intent export`."
        ) from err


def _read_meta(session, onnx_path: Path) -> dict:
    props = session.get_modelmeta().custom_metadata_map
    try:
        meta = {k[len(META_PREFIX):]: json.loads(v) for k, v in props.items() if k.startswith(META_PREFIX)}
    except ValueError:
        meta = {}
    if meta.get("format") != FORMAT:
        raise ValueError(
            f"intent_ner: ONNX model file {onnx_path} is not an intent_ner export (its metadata lacks "
            f"{META_PREFIX}format = {FORMAT}); re-export the pipeline with `python -m spacy_multitask_intent export`."
        )
    names = {i.name for i in session.get_inputs()}
    # token_type_ids: not every encoder takes them; word_index: first-sub-word
    # pooling does not use it, so the exporter drops it from the graph.
    optional = {"token_type_ids"} | ({"word_index"} if meta.get("pooling") == "first" else set())
    missing = [n for n in INPUTS if n not in names and n not in optional]
    if missing:
        raise ValueError(f"intent_ner: ONNX model file {onnx_path} lacks the inputs {missing}; re-export it.")
    meta["token_types"] = "token_type_ids" in names
    meta["inputs"] = sorted(names)
    return meta


# ------------------------------------------------------------ architecture
@registry.architectures(ARCHITECTURE)
def build_onnx_intent_ner(window: int = 128, stride: int = 96, crf: bool = False) -> Model:
    """The exported ``intent_ner`` model: encoder and both heads in one ONNX
    graph run by ONNX Runtime (inference only).  The ``.onnx`` file and the
    tokenizer are loaded from the component's directory by ``spacy.load``.
    ``window``/``stride``: the original encoder's strided windows.  ``crf``:
    the NER head keeps the original's CRF scores (crf.py) for decoding."""
    ner_head = Model("onnx_ner_head", _no_forward, dims={"nO": None})
    if crf:
        declare_crf(ner_head)
    intent_head = Model("onnx_intent_head", _no_forward, dims={"nO": None})
    return Model(
        "intent_ner_onnx",
        _forward,
        layers=[ner_head, intent_head],
        refs={"ner_head": ner_head, "intent_head": intent_head},
        attrs={"runtime": OnnxRuntime(window, stride)},
    )


def _no_forward(model, X, is_train):
    raise NotImplementedError(f"{model.name}: the heads of an ONNX export run inside the ONNX graph")


def _forward(model: Model, docs: List[Doc], is_train: bool):
    if is_train:
        raise ValueError("intent_ner: an ONNX-exported pipeline is for inference only; train the torch pipeline")
    keep = [d for d in docs if len(d)]
    (ner, intent), lengths = model.attrs["runtime"].predict_logits(keep) if keep else ([None, None], [])
    out_ner, out_intent, start = [], [], 0
    it = iter(lengths)
    for d in docs:
        n = next(it) if len(d) else 0
        out_ner.append(ner[start : start + n] if n else numpy.zeros((0, model.get_ref("ner_head").get_dim("nO")), "f"))
        out_intent.append(
            intent[start : start + n] if n else numpy.zeros((0, model.get_ref("intent_head").get_dim("nO")), "f")
        )
        start += n
    return (out_ner, out_intent), lambda d: []


@serialize_attr.register(OnnxRuntime)
def _serialize_runtime(_, value: OnnxRuntime, name: str, model: Model) -> bytes:
    # The .onnx file and tokenizer live beside the model file (to_disk).
    return srsly.msgpack_dumps({"window": value.window, "stride": value.stride})


@deserialize_attr.register(OnnxRuntime)
def _deserialize_runtime(_, value: bytes, name: str, model: Model) -> OnnxRuntime:
    cfg = srsly.msgpack_loads(value)
    return OnnxRuntime(cfg["window"], cfg["stride"])


# ----------------------------------------------------------------- export
def _find_pipe(nlp):
    from .component import IntentNER

    for name, proc in nlp.pipeline:
        if isinstance(proc, IntentNER):
            return name, proc
    raise ValueError("export: the pipeline has no intent_ner component")


def _export_module(pipe):
    """The torch module exported to ONNX: HF encoder -> the encoder's pooling
    of the sub-words aligned to each word (mean, or the first) -> both heads
    (each head's ``project``: the head without dropout, linear or MLP)."""
    import torch

    from .inference import pool_words
    from .layers import encoder_module, head_module, transformer_of
    from .model import pooling_of

    encoder = pipe.model.get_ref("encoder")
    trf = transformer_of(encoder)
    hf = encoder_module(encoder)
    ner = head_module(pipe.model.get_ref("ner_head"))
    intent = head_module(pipe.model.get_ref("intent_head"))
    first = pooling_of(encoder) == "first"

    class IntentNEROnnx(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder, self.ner, self.intent = hf, ner, intent

        def forward(self, input_ids, attention_mask, token_type_ids, wp_index, word_index, word_count):
            kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                kwargs["token_type_ids"] = token_type_ids
            hidden = self.encoder(**kwargs).last_hidden_state
            # scatter_add exports as ScatterElements(reduction="add") (opset >= 16)
            vectors = pool_words(hidden, wp_index, word_index, word_count, first)
            return self.ner.project(vectors), self.intent.project(vectors)

    return IntentNEROnnx().eval(), trf


def export_onnx(pipe, onnx_path: Path, *, tokenizer, opset: int = 17) -> None:
    """Export the component's encoder + heads to ``onnx_path`` (fp32)."""
    if opset < 16:
        raise ValueError(f"export: opset {opset} is too old; the word pooling needs ScatterElements(add), opset >= 16")
    import warnings

    import onnx
    import torch

    module, trf = _export_module(pipe)
    hf = module.encoder
    sample = [Doc(pipe.vocab, words=["hello", "world", "again"]), Doc(pipe.vocab, words=["a", "b"])]
    probe = OnnxRuntime(128, 96)
    probe.tokenizer = tokenizer
    token_types = "token_type_ids" in tokenizer.model_input_names
    probe.meta = {"token_types": token_types}
    feeds = probe.inputs(sample)
    args = tuple(torch.from_numpy(feeds[n]) if n in feeds else None for n in INPUTS)
    names = [n for n in INPUTS if n in feeds]
    dynamic = {
        "input_ids": {0: "batch", 1: "length"},
        "attention_mask": {0: "batch", 1: "length"},
        "token_type_ids": {0: "batch", 1: "length"},
        "wp_index": {0: "pairs"},
        "word_index": {0: "pairs"},
        "word_count": {0: "words"},
        "ner_logits": {0: "words"},
        "intent_logits": {0: "words"},
    }
    attn = getattr(hf.config, "_attn_implementation", None)
    try:
        if attn is not None:
            hf.config._attn_implementation = "eager"  # the plain graph exports on every opset
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                args,
                str(onnx_path),
                input_names=names,
                output_names=list(OUTPUTS),
                dynamic_axes={k: v for k, v in dynamic.items() if k in names or k in OUTPUTS},
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
    finally:
        if attn is not None:
            hf.config._attn_implementation = attn
    model = onnx.load(str(onnx_path))
    onnx.checker.check_model(model)


def _set_meta(onnx_path: Path, meta: dict) -> None:
    import onnx

    model = onnx.load(str(onnx_path))
    keep = [p for p in model.metadata_props if not p.key.startswith(META_PREFIX)]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = META_PREFIX + key, json.dumps(value)
    onnx.save(model, str(onnx_path))


def ffn_down_projections(onnx_path: Path, width: int) -> List[str]:
    """The MatMul nodes of the graph whose constant weight maps a wider layer
    down to the encoder's ``width`` (shape [n, width], n > width): in a
    BERT-family encoder, each layer's feed-forward output projection.  Found
    by shape, not by name, so any such encoder's export works."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    shapes = {i.name: list(i.dims) for i in model.graph.initializer}
    return [
        node.name
        for node in model.graph.node
        if node.op_type == "MatMul"
        and any(len(shapes.get(x, [])) == 2 and shapes[x][1] == width and shapes[x][0] > width for x in node.input)
    ]


def quantize_onnx(src: Path, dst: Path, per_channel: bool = False, keep_fp32: Sequence[str] = ()) -> None:
    """Dynamic int8 quantization of the graph's MatMul/Gemm weights; with
    `per_channel`, one scale per output column instead of one per matrix;
    the nodes named in `keep_fp32` stay fp32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(src), str(dst), weight_type=QuantType.QInt8, per_channel=per_channel, nodes_to_exclude=list(keep_fp32)
    )


def export_pipeline(
    model: Union[str, Path],
    out: Union[str, Path],
    *,
    int8: bool = False,
    per_channel: bool = True,
    fp32_ffn_out: Union[bool, Sequence[int]] = False,
    opset: int = 17,
) -> Path:
    """Write the pipeline at ``model`` to ``out`` with its ``intent_ner`` run
    by ONNX Runtime (see the module docstring).  Returns the .onnx path.
    ``int8``: dynamic int8 weights, with one scale per output column unless
    ``per_channel`` is False (per-channel keeps the decoded entities and
    intents closer to fp32; docs/onnx.md).  ``fp32_ffn_out`` (with ``int8``):
    True keeps every encoder layer's feed-forward output projection in fp32
    (answers closer to fp32, a larger and slower graph; docs/onnx.md); a
    sequence of layer indices (0 = the layer nearest the input) keeps only
    those layers' projections in fp32."""
    if isinstance(fp32_ffn_out, (bool, numpy.bool_)):
        fp32_ffn_out = bool(fp32_ffn_out)
    else:
        if isinstance(fp32_ffn_out, (int, numpy.integer, str)):
            raise TypeError(
                f"export: fp32_ffn_out is True, False or a sequence of layer indices (e.g. [0, 1]), got {fp32_ffn_out!r}"
            )
        fp32_ffn_out = sorted({int(i) for i in fp32_ffn_out})
        if not fp32_ffn_out:
            raise ValueError("export: fp32_ffn_out (--fp32-ffn-layers) names no layer")
    if fp32_ffn_out and not int8:
        raise ValueError("export: fp32_ffn_out only applies with int8")
    import copy

    import spacy
    from spacy import util

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"export: output directory {out} exists and is not empty")
    nlp = spacy.load(model)
    name, pipe = _find_pipe(nlp)
    if not pipe.model.get_ref("ner_head").has_dim("nO"):
        raise ValueError(f"export: the intent_ner component of {model} is not initialized")
    from .layers import head_module, transformer_of
    from .model import pooling_of

    trf = transformer_of(pipe.model.get_ref("encoder"))
    tokenizer = trf.tokenizer
    enc_cfg = nlp.config.interpolate()["components"][name]["model"].get("encoder", {})
    window, stride = int(enc_cfg.get("window", 128)), int(enc_cfg.get("stride", 96))

    config = nlp.config.copy()
    crf = crf_params(pipe.model.get_ref("ner_head"))
    config["components"][name]["model"] = {
        "@architectures": ARCHITECTURE,
        "window": window,
        "stride": stride,
        "crf": crf is not None,
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fp32 = tmp / "fp32.onnx"
        export_onnx(pipe, fp32, tokenizer=tokenizer, opset=opset)
        final = fp32
        if int8:
            final = tmp / ONNX_FILE
            keep = ffn_down_projections(fp32, int(trf.get_dim("nO"))) if fp32_ffn_out else []
            if fp32_ffn_out and not keep:
                raise ValueError(f"export: found no feed-forward output projection in the encoder of {model}")
            if isinstance(fp32_ffn_out, list):
                wrong = [i for i in fp32_ffn_out if not 0 <= i < len(keep)]
                if wrong:
                    raise ValueError(
                        f"export: fp32_ffn_out (--fp32-ffn-layers) layer(s) {wrong} out of range: the encoder of {model} "
                        f"has {len(keep)} layers (0-{len(keep) - 1})"
                    )
                keep = [keep[i] for i in fp32_ffn_out]
            quantize_onnx(fp32, final, per_channel=per_channel, keep_fp32=keep)
        meta = {
            "format": FORMAT,
            "tags": list(pipe.tags),
            "intents": list(pipe.intent_classes) or [""],
            "int8": bool(int8),
            "int8_scales": ("channel" if per_channel else "tensor") if int8 else None,
            "int8_fp32_nodes": len(keep) if int8 else None,
            "fast": bool(getattr(tokenizer, "is_fast", True)),
            "width": int(trf.get_dim("nO")),
            "pooling": pooling_of(pipe.model.get_ref("encoder")),
            "hidden_width": int(head_module(pipe.model.get_ref("ner_head")).hidden_width),
        }
        _set_meta(final, meta)
        tok_dir = tmp / TOKENIZER_DIR
        tokenizer.save_pretrained(str(tok_dir))
        if final != tmp / ONNX_FILE:
            final.rename(tmp / ONNX_FILE)

        new = util.load_model_from_config(config, auto_fill=False, validate=True)
        new.from_bytes(nlp.to_bytes(exclude=[name]), exclude=[name])
        new.meta.update(copy.deepcopy(nlp.meta))
        new_pipe = new.get_pipe(name)
        new_pipe.cfg = copy.deepcopy(pipe.cfg)
        new_pipe.model.get_ref("ner_head").set_dim("nO", pipe.model.get_ref("ner_head").get_dim("nO"), force=True)
        new_pipe.model.get_ref("intent_head").set_dim(
            "nO", pipe.model.get_ref("intent_head").get_dim("nO"), force=True
        )
        if crf is not None:
            new_head = new_pipe.model.get_ref("ner_head")
            new_head.set_param(CRF_TRANS, new_head.ops.asarray2f(crf[0]))
            new_head.set_param(CRF_START, new_head.ops.asarray1f(crf[1]))
        new_pipe.model.attrs["runtime"].from_disk(tmp, new_pipe.tags, new_pipe.intent_classes)
        new.to_disk(out)
    return out / name / ONNX_FILE
