"""The `intent_ner` trainable component (Shah & Siskind's multi-task model).

One encoder, two token-level heads: BIO entity tags (softmax) and intents
(sigmoid, one output per intent label).  Every word of a query is trained
towards the query's intent vector; at inference each word has its own intent
scores, and `doc.cats` aggregates them.
"""
import os
import pickle
import threading
import warnings
from io import BytesIO
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
import srsly
from spacy import util
from spacy.attrs import IS_SPACE
from spacy.errors import Errors
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.pipeline.pipe import deserialize_config
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer

from .decoding import biluo_to_bio_ids, bio_tags, merge_glued, tags_to_spans, viterbi_bio
from .extensions import LABELS_ATTR, SCORES_ATTR, TAG_PROBS_ATTR, install_extensions
from .inference import enable_fast_predict, predict_heads
from .scoring import decide_intents, score_intent_ner

UPDATE_MODES = ("alternating", "joint", "ner_only")
AGGREGATIONS = ("mean", "max")
OPTIMIZER_STATES = ("shared", "separate")
# How the intent head's loss is formed:
#   sigmoid_sum  - per word, binary cross-entropy summed over the intent labels (the paper's head);
#                  its size grows with the number of intents
#   sigmoid_mean - the same, averaged over the labels (one label's worth, whatever their number)
#   softmax      - per word, cross-entropy over the labels (as JointBERT); a query with
#                  several intents is trained towards an even split between them
#   auto         - softmax for single-label data, sigmoid_mean for multi-label data
INTENT_LOSSES = ("sigmoid_sum", "sigmoid_mean", "softmax", "auto")
LOSS_BALANCES = ("fixed", "uncertainty")
INTENT_KEY_SUFFIX = "::intent"  # optimizer keys of the intent step's own Adam state

DEFAULT_MODEL_CONFIG = """
[model]
@architectures = "spacy_multitask_intent.IntentNER.v1"
dropout = 0.1

[model.encoder]
@architectures = "spacy_multitask_intent.Encoder.v1"
name = "all-MiniLM-L6-v2"
window = 128
stride = 96
"""
DEFAULT_MODEL = Config().from_str(DEFAULT_MODEL_CONFIG)["model"]


@Language.factory(
    "intent_ner",
    assigns=["doc.ents", "doc.cats", "token._.intent"],
    default_config={
        "model": DEFAULT_MODEL,
        "update_mode": "alternating",
        "intent_lr_factor": 0.1,
        "intent_optimizer_state": "shared",
        "intent_weight": 1.0,
        "intent_loss": "sigmoid_sum",
        "intent_weight_warmup": 0,
        "loss_balance": "fixed",
        "cats_aggregation": "mean",
        "intent_thresholds": {},
        "gating": {},
        "gate_thresholds": {},
        "bucket_size": 32,
        "scorer": {"@scorers": "spacy_multitask_intent.intent_ner_scorer.v1"},
    },
    default_score_weights={
        "ents_f": 0.5,
        "intent_acc": 0.25,
        "frame_acc": 0.25,
        "ents_p": 0.0,
        "ents_r": 0.0,
        "cats_micro_f": None,
        "cats_macro_f": None,
        "cats_macro_auc": None,
        "ents_per_type": None,
    },
)
def make_intent_ner(
    nlp: Language,
    name: str,
    model: Model,
    update_mode: str,
    intent_lr_factor: float,
    intent_optimizer_state: str,
    intent_weight: float,
    intent_loss: str,
    intent_weight_warmup: int,
    loss_balance: str,
    cats_aggregation: str,
    intent_thresholds: Dict[str, float],
    gating: Dict[str, List[str]],
    gate_thresholds: Dict[str, float],
    bucket_size: int,
    scorer: Optional[Callable],
) -> "IntentNER":
    return IntentNER(
        nlp.vocab,
        model,
        name,
        update_mode=update_mode,
        intent_lr_factor=intent_lr_factor,
        intent_optimizer_state=intent_optimizer_state,
        intent_weight=intent_weight,
        intent_loss=intent_loss,
        intent_weight_warmup=intent_weight_warmup,
        loss_balance=loss_balance,
        cats_aggregation=cats_aggregation,
        intent_thresholds=intent_thresholds,
        gating=gating,
        gate_thresholds=gate_thresholds,
        bucket_size=bucket_size,
        scorer=scorer,
    )


class _ScaledLR:
    """An optimizer view whose every call uses lr_scale × the learn rate.

    With Adam, scaling a loss or gradient leaves the step size unchanged, so
    the intent step is made smaller by scaling the learning rate itself.
    """

    def __init__(self, optimizer: Optimizer, scale: float, key_suffix: str = ""):
        self.optimizer, self.scale, self.key_suffix = optimizer, scale, key_suffix

    def __call__(self, key, weights, gradient, *, lr_scale: float = 1.0):
        if self.key_suffix:
            # A key of its own: thinc's Adam keeps moments and the update
            # count per key, so this step no longer shares them.
            key = (key[0], f"{key[1]}{self.key_suffix}")
        return self.optimizer(key, weights, gradient, lr_scale=lr_scale * self.scale)

    def __getattr__(self, name):
        return getattr(self.optimizer, name)


class IntentNER(TrainablePipe):
    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "intent_ner",
        *,
        update_mode: str = "alternating",
        intent_lr_factor: float = 0.1,
        intent_optimizer_state: str = "shared",
        intent_weight: float = 1.0,
        intent_loss: str = "sigmoid_sum",
        intent_weight_warmup: int = 0,
        loss_balance: str = "fixed",
        cats_aggregation: str = "mean",
        intent_thresholds: Optional[Dict[str, float]] = None,
        gating: Optional[Dict[str, List[str]]] = None,
        gate_thresholds: Optional[Dict[str, float]] = None,
        bucket_size: int = 32,
        scorer: Optional[Callable] = score_intent_ner,
    ):
        if update_mode not in UPDATE_MODES:
            raise ValueError(
                f"intent_ner: update_mode must be one of {UPDATE_MODES}, got '{update_mode}'"
            )
        if cats_aggregation not in AGGREGATIONS:
            raise ValueError(
                f"intent_ner: cats_aggregation must be one of {AGGREGATIONS}, got '{cats_aggregation}'"
            )
        if intent_optimizer_state not in OPTIMIZER_STATES:
            raise ValueError(
                f"intent_ner: intent_optimizer_state must be one of {OPTIMIZER_STATES}, "
                f"got '{intent_optimizer_state}'"
            )
        if intent_loss not in INTENT_LOSSES:
            raise ValueError(f"intent_ner: intent_loss must be one of {INTENT_LOSSES}, got '{intent_loss}'")
        if loss_balance not in LOSS_BALANCES:
            raise ValueError(f"intent_ner: loss_balance must be one of {LOSS_BALANCES}, got '{loss_balance}'")
        if loss_balance == "uncertainty" and update_mode != "joint":
            raise ValueError(
                "intent_ner: loss_balance = \"uncertainty\" weighs the two losses of one joint "
                f"pass; it needs update_mode = \"joint\", got '{update_mode}'"
            )
        if int(intent_weight_warmup) < 0:
            raise ValueError(f"intent_ner: intent_weight_warmup must be >= 0, got {intent_weight_warmup}")
        if intent_lr_factor < 0 or intent_weight < 0:
            raise ValueError("intent_ner: intent_lr_factor and intent_weight must be >= 0")
        if int(bucket_size) < 1:
            raise ValueError(f"intent_ner: bucket_size must be >= 1, got {bucket_size}")
        install_extensions()
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.cfg = {
            "labels": [],
            "intents": [],
            "multi_label": False,
            "update_mode": update_mode,
            "intent_lr_factor": float(intent_lr_factor),
            # alternating: "separate" gives the intent step its own Adam
            # moments (as a second optimizer would); "shared" lets both steps
            # update one set of moments per encoder weight.
            "intent_optimizer_state": intent_optimizer_state,
            "intent_weight": float(intent_weight),
            "intent_loss": intent_loss,
            # The intent weight (joint) or learn-rate factor (alternating)
            # ramps up linearly from 0 over this many updates.
            "intent_weight_warmup": int(intent_weight_warmup),
            # "uncertainty": joint loss = sum_t exp(-s_t) L_t + s_t with a
            # learned log-variance s_t per task (Kendall et al., 2018).
            "loss_balance": loss_balance,
            "cats_aggregation": cats_aggregation,
            "intent_thresholds": dict(intent_thresholds or {}),
            "gating": {k: list(v) for k, v in (gating or {}).items()},
            "gate_thresholds": dict(gate_thresholds or {}),
            # Inference: docs are sorted by length and encoded this many at a
            # time, so each forward pass pads to similar lengths.
            "bucket_size": int(bucket_size),
        }
        self._pending: Optional[Dict] = None  # NER-pass gradients awaiting finish_update
        self._n_updates = 0  # update() calls so far (for intent_weight_warmup)
        self._log_vars = numpy.zeros((2,), "f")  # loss_balance="uncertainty": s_ner, s_intent
        self._d_log_vars: Optional[numpy.ndarray] = None
        self._warned_no_cats = False

    # ------------------------------------------------------------------ labels
    @property
    def labels(self) -> Tuple[str, ...]:
        """Entity labels."""
        return tuple(self.cfg["labels"])

    @property
    def intent_labels(self) -> Tuple[str, ...]:
        return tuple(self.cfg["intents"])

    @property
    def label_data(self) -> Dict[str, List[str]]:
        return {"ents": list(self.labels), "intents": list(self.intent_labels)}

    @property
    def tags(self) -> List[str]:
        return bio_tags(self.labels)

    @property
    def intent_activation(self) -> str:
        """"softmax" or "sigmoid": how intent logits become scores."""
        loss = self.cfg.get("intent_loss", "sigmoid_sum")
        if loss == "softmax" or (loss == "auto" and not self.cfg["multi_label"]):
            return "softmax"
        return "sigmoid"

    @property
    def uses_intents(self) -> bool:
        return self.cfg["update_mode"] != "ner_only" and bool(self.cfg["intents"])

    def _check_resizable(self, what: str) -> None:
        if self.model.get_ref("ner_head").has_dim("nO"):
            raise ValueError(
                f"intent_ner: cannot add {what} after the model is initialized; "
                "add labels before nlp.initialize()."
            )

    def add_label(self, label: str) -> int:
        """Add an entity label. Returns 1 if added, 0 if already present."""
        if not isinstance(label, str) or not label:
            raise ValueError(f"intent_ner: entity label must be a non-empty string, got {label!r}")
        if label in self.cfg["labels"]:
            return 0
        self._check_resizable(f"entity label '{label}'")
        self.cfg["labels"].append(label)
        self.vocab.strings.add(label)
        return 1

    def add_intent(self, label: str) -> int:
        if not isinstance(label, str) or not label:
            raise ValueError(f"intent_ner: intent label must be a non-empty string, got {label!r}")
        if label in self.cfg["intents"]:
            return 0
        self._check_resizable(f"intent '{label}'")
        self.cfg["intents"].append(label)
        return 1

    # -------------------------------------------------------------- initialize
    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Dict[str, List[str]]] = None,
    ) -> None:
        """Collect labels (or take `labels` from `spacy init labels`), load
        the encoder weights and size both heads."""
        validate_get_examples(get_examples, "IntentNER.initialize")
        ents, intents, multi = set(), set(), False
        n_with_cats = 0
        sample: List[Doc] = []
        for eg in get_examples():
            ents.update(e.label_ for e in eg.reference.ents)
            gold = [k for k, v in eg.reference.cats.items() if v >= 0.5]
            intents.update(eg.reference.cats)
            if eg.reference.cats:
                n_with_cats += 1
                multi = multi or len(gold) != 1
            if len(sample) < 10 and len(eg.predicted):
                sample.append(eg.predicted)
        if labels is not None:
            ents, intents = set(labels.get("ents", [])), set(labels.get("intents", []))
        self.cfg["labels"], self.cfg["intents"] = [], []
        for label in sorted(ents):
            self.add_label(label)
        for label in sorted(intents):
            self.add_intent(label)
        self.cfg["multi_label"] = bool(multi)
        if not self.cfg["labels"]:
            raise ValueError(
                "intent_ner: the training examples hold no entities (doc.ents), so "
                "there is no entity label to learn. Check the training corpus."
            )
        if self.cfg["update_mode"] != "ner_only" and not self.cfg["intents"]:
            raise ValueError(
                "intent_ner: the training examples hold no intents (doc.cats is empty "
                f"in all of them) but update_mode='{self.cfg['update_mode']}'. Add "
                "intents as doc.cats, or set update_mode = \"ner_only\"."
            )
        self.model.get_ref("ner_head").set_dim("nO", len(self.tags), force=True)
        self.model.get_ref("intent_head").set_dim("nO", max(1, len(self.cfg["intents"])), force=True)
        self.model.initialize(X=sample or None)

    # --------------------------------------------------------------- forward
    def _encode(self, docs: List[Doc], is_train: bool):
        vectors, bp = self.model.get_ref("encoder")(docs, is_train)
        lengths = [len(v) for v in vectors]
        X = self.model.ops.flatten(vectors, pad=0)
        return X, lengths, bp

    def predict(self, docs: Iterable[Doc]):
        """(tag probabilities, intent probabilities or None) per doc."""
        runtime = self._runtime()
        if runtime is None:
            _guard_forked_torch(self.model.ops.device_type == "gpu")
        docs = list(docs)
        ner_out: List[numpy.ndarray] = [numpy.zeros((len(d), len(self.tags)), "f") for d in docs]
        intent_out: List[Optional[numpy.ndarray]] = [None] * len(docs)
        # A doc of whitespace only has nothing to tag or classify: it gets no
        # entities and no intent scores (rather than scores read off a space).
        idx = [i for i, d in enumerate(docs) if len(d) and not _is_space(d).all()]
        if not idx or not self.model.get_ref("ner_head").has_dim("nO"):
            return ner_out, intent_out
        ops = self.model.ops
        heads = [self.model.get_ref("ner_head")]
        if self.uses_intents:
            heads.append(self.model.get_ref("intent_head"))
        # Sorted by length, then cut into buckets: a forward pass pads every
        # doc to its longest one, so mixing a 3-word and a 40-word query in one
        # pass computes 37 padding positions for the short one.
        idx.sort(key=lambda i: len(docs[i]))
        size = max(1, int(self.cfg.get("bucket_size", 32)))
        for b in range(0, len(idx), size):
            bucket = idx[b : b + size]
            # One prediction at a time per process (torch still uses all
            # cores inside each one): a training step in another thread
            # switches the shared torch modules to train(), i.e. dropout on.
            with _PREDICT_LOCK:
                if runtime is not None:  # encoder + heads in one ONNX graph (onnx.py)
                    outputs, lengths = runtime.predict_logits([docs[i] for i in bucket])
                else:
                    enable_fast_predict(self.model)  # eval + inference_mode; see inference.py
                    X, lengths, _ = self._encode([docs[i] for i in bucket], False)
                    outputs = [ops.to_numpy(y) for y in predict_heads(X, heads)]
            splits = numpy.cumsum(lengths)[:-1]
            for i, part in zip(bucket, numpy.split(_softmax(outputs[0]), splits)):
                ner_out[i] = part
            if self.uses_intents:
                if self.intent_activation == "softmax":
                    probs = _softmax(outputs[1])
                else:
                    probs = (1.0 / (1.0 + numpy.exp(-outputs[1]))).astype("f")
                for i, part in zip(bucket, numpy.split(probs, splits)):
                    intent_out[i] = part
        return ner_out, intent_out

    def set_annotations(self, docs: Iterable[Doc], scores) -> None:
        docs = list(docs)
        ner_probs, intent_probs = scores
        tags = self.tags
        log_probs = []
        for doc, probs in zip(docs, ner_probs):
            lp = numpy.log(numpy.clip(probs, 1e-9, 1.0))
            if len(doc):
                # Whitespace tokens are never part of an entity.
                lp[_is_space(doc), 1:] = -1e9
            log_probs.append(lp)
        paths = viterbi_bio(log_probs, tags) if log_probs else []
        intents = self.intent_labels
        agg = numpy.max if self.cfg["cats_aggregation"] == "max" else numpy.mean
        gating = self.cfg["gating"]
        gate_thr = self.cfg["gate_thresholds"]
        for doc, path, iprobs, probs in zip(docs, paths, intent_probs, ner_probs):
            if len(doc):
                doc._.set(TAG_PROBS_ATTR, probs[numpy.arange(len(doc)), path].astype("f"))
            spans = tags_to_spans(path, tags)
            spans = merge_glued(spans, doc)
            if iprobs is not None and len(doc):
                doc._.set(SCORES_ATTR, iprobs)
                doc._.set(LABELS_ATTR, intents)
                cats = agg(iprobs, axis=0)
                doc.cats.update(zip(intents, cats.tolist()))
                if gating:
                    spans = [s for s in spans if self._licensed(s, iprobs, gating, gate_thr)]
            doc.set_ents([Span(doc, s, e, label=l) for s, e, l in spans])

    def _licensed(self, span, iprobs, gating, gate_thr) -> bool:
        start, end, label = span
        licensing = gating.get(label)
        if not licensing:
            return True
        index = {l: i for i, l in enumerate(self.intent_labels)}
        word_scores = iprobs[start:end].mean(axis=0)
        return any(
            word_scores[index[intent]] >= gate_thr.get(intent, 0.5)
            for intent in licensing
            if intent in index
        )

    # ------------------------------------------------------------------ update
    def _targets(self, examples: List[Example]):
        tag_index = {t: i for i, t in enumerate(self.tags)}
        intent_index = {l: i for i, l in enumerate(self.intent_labels)}
        known_ents = set(self.labels)
        tag_rows = []
        for n, eg in enumerate(examples):
            unknown = sorted({e.label_ for e in eg.reference.ents} - known_ents)
            if unknown:
                raise ValueError(
                    f"intent_ner: example {n} of the batch ('{eg.reference.text[:60]}') has "
                    f"entity labels {unknown} that the component was not initialized with "
                    f"(known: {sorted(known_ents)}). Re-run nlp.initialize() on data that "
                    "contains them, or add them with add_label() before initializing."
                )
            ids = biluo_to_bio_ids(eg.get_aligned_ner(), tag_index)
            # Whitespace tokens are never tagged at inference (set_annotations
            # forces them to O), so they are not trained either: their gold
            # tag is treated as unknown, whatever the annotation says.
            space = _is_space(eg.predicted)
            ids[space] = -1
            tag_rows.append(ids)
        tag_ids = numpy.concatenate(tag_rows) if tag_rows else numpy.zeros((0,), "i")
        rows, masks = [], []
        for n, eg in enumerate(examples):
            vec = numpy.zeros((len(intent_index),), "f")
            cats = eg.reference.cats
            unknown = [l for l in cats if l not in intent_index]
            if unknown and self.uses_intents:
                raise ValueError(
                    f"intent_ner: example {n} of the batch ('{eg.reference.text[:60]}') has "
                    f"intents {unknown} that the component was not initialized with "
                    f"(known: {list(intent_index)}). Re-run nlp.initialize() on data that "
                    "contains them, or add them with add_intent() before initializing."
                )
            for label, value in cats.items():
                if label in intent_index:
                    vec[intent_index[label]] = float(value)
            n_tok = len(eg.predicted)
            rows.append(numpy.repeat(vec[None, :], n_tok, axis=0))
            masks.append(numpy.full((n_tok, 1), 1.0 if cats else 0.0, "f"))
            if not cats and self.uses_intents and not self._warned_no_cats:
                warnings.warn(
                    f"intent_ner: example '{eg.reference.text[:60]}' has no doc.cats; "
                    "examples without intents train the NER head only."
                )
                self._warned_no_cats = True
        width = max(1, len(intent_index))
        intent_y = numpy.concatenate(rows) if rows else numpy.zeros((0, width), "f")
        intent_mask = numpy.concatenate(masks) if masks else numpy.zeros((0, 1), "f")
        return tag_ids, intent_y.reshape(-1, width), intent_mask

    def get_loss(self, examples: Iterable[Example], scores) -> Tuple[float, Tuple]:
        """Loss and gradient of the logits for both heads (flattened rows)."""
        ner_logits, intent_logits = scores
        tag_ids, intent_y, intent_mask = self._targets(list(examples))
        ner_loss, d_ner = _softmax_xent(ner_logits, tag_ids)
        if intent_logits is None:
            return ner_loss, (d_ner, None)
        intent_loss, d_intent = self._intent_xent(intent_logits, intent_y, intent_mask)
        return ner_loss + intent_loss, (d_ner, d_intent)

    def _intent_xent(self, logits: numpy.ndarray, y: numpy.ndarray, mask: numpy.ndarray):
        """The intent loss chosen by `intent_loss`, and its gradient."""
        if self.intent_activation == "softmax":
            return _softmax_soft_xent(logits, y, mask)
        loss, d = _sigmoid_bce(logits, y, mask)
        if self.cfg.get("intent_loss", "sigmoid_sum") != "sigmoid_sum":
            k = max(logits.shape[1], 1)
            loss, d = loss / k, d / k
        return loss, d

    def _warmup(self) -> float:
        """The intent weight's ramp for the batch being trained: its number
        (counted from 1 by update()) / intent_weight_warmup, at most 1."""
        steps = int(self.cfg.get("intent_weight_warmup", 0))
        return 1.0 if steps <= 0 else min(1.0, max(self._n_updates, 1) / steps)

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Train on a batch.

        alternating: NER forward+backward, then intent forward+backward, each
          followed by its own optimizer step, the intent step at
          learn rate x intent_lr_factor.  With `sgd` given, the steps happen
          here, so the intent pass sees the NER-updated weights.  Without it
          (spaCy's training loop), both passes run at the batch's weights and
          finish_update() applies the two steps in order.
        joint: one pass, loss = ner + intent_weight x intent.
        ner_only: the NER pass alone; the intent head is never touched.
        """
        if losses is None:
            losses = {}
        for key in (self.name, f"{self.name}_ner", f"{self.name}_intent"):
            losses.setdefault(key, 0.0)
        validate_examples(examples, "IntentNER.update")
        examples = [eg for eg in examples if len(eg.predicted)]
        if not examples:
            return losses
        docs = [eg.predicted for eg in examples]
        tag_ids, intent_y, intent_mask = self._targets(examples)
        self._n_updates += 1
        mode = self.cfg["update_mode"]
        if not self.uses_intents:
            mode = "ner_only"
        ner_head = self.model.get_ref("ner_head")
        intent_head = self.model.get_ref("intent_head")
        enc = self.model.get_ref("encoder")
        ops = self.model.ops
        ner_loss = intent_loss = 0.0
        if mode == "joint":
            X, lengths, bp_enc = self._encode(docs, True)
            ner_logits, bp_ner = ner_head(X, True)
            intent_logits, bp_intent = intent_head(X, True)
            ner_loss, d_ner = _softmax_xent(ops.to_numpy(ner_logits), tag_ids)
            intent_loss, d_intent = self._intent_xent(ops.to_numpy(intent_logits), intent_y, intent_mask)
            w_ner, w = 1.0, self.cfg["intent_weight"] * self._warmup()
            if self.cfg.get("loss_balance") == "uncertainty":
                # Kendall et al.: L = exp(-s_n) L_n + s_n + exp(-s_i) L_i + s_i;
                # the scales multiply the fixed weights.
                scale = numpy.exp(-self._log_vars)
                d_s = numpy.array([1.0 - scale[0] * ner_loss, 1.0 - scale[1] * intent_loss * w], "f")
                self._d_log_vars = d_s if self._d_log_vars is None else self._d_log_vars + d_s
                w_ner, w = float(scale[0]), w * float(scale[1])
            dX = bp_ner(ops.asarray2f(d_ner * w_ner)) + bp_intent(ops.asarray2f(d_intent * w))
            bp_enc(ops.unflatten(dX, lengths))
            intent_loss *= w
            ner_loss *= w_ner
            if sgd not in (None, False):
                self.finish_update(sgd)
        else:
            prev_intent_grads = None
            if mode == "alternating" and sgd in (None, False) and self._pending is not None:
                prev_intent_grads = _swap_grads(enc, None)
            X, lengths, bp_enc = self._encode(docs, True)
            ner_logits, bp_ner = ner_head(X, True)
            ner_loss, d_ner = _softmax_xent(ops.to_numpy(ner_logits), tag_ids)
            bp_enc(ops.unflatten(bp_ner(ops.asarray2f(d_ner)), lengths))
            if mode == "alternating":
                if sgd not in (None, False):
                    self._step(sgd, [enc, ner_head], 1.0)
                else:
                    # Keep the encoder's NER-pass gradient aside for
                    # finish_update(); restore intent gradients accumulated
                    # by earlier sub-batches (accumulate_gradient > 1).
                    ner_grads = _swap_grads(enc, prev_intent_grads)
                    self._pending = _add_grads(self._pending, ner_grads)
                X, lengths, bp_enc = self._encode(docs, True)
                intent_logits, bp_intent = intent_head(X, True)
                intent_loss, d_intent = self._intent_xent(ops.to_numpy(intent_logits), intent_y, intent_mask)
                bp_enc(ops.unflatten(bp_intent(ops.asarray2f(d_intent)), lengths))
                if sgd not in (None, False):
                    self._intent_step(sgd, enc, intent_head)
            elif sgd not in (None, False):
                self._step(sgd, [enc, ner_head], 1.0)
        losses[f"{self.name}_ner"] += ner_loss
        losses[f"{self.name}_intent"] += intent_loss
        losses[self.name] += ner_loss + intent_loss
        return losses

    def finish_update(self, sgd: Optimizer) -> None:
        """Apply the pending optimizer steps (see `update`)."""
        enc = self.model.get_ref("encoder")
        ner_head = self.model.get_ref("ner_head")
        intent_head = self.model.get_ref("intent_head")
        mode = self.cfg["update_mode"] if self.uses_intents else "ner_only"
        if mode == "alternating":
            if self._pending is None:  # nothing computed since the last step
                return
            intent_grads = _swap_grads(enc, self._pending)
            self._pending = None
            self._step(sgd, [enc, ner_head], 1.0)
            _swap_grads(enc, intent_grads)
            self._intent_step(sgd, enc, intent_head)
        elif mode == "joint":
            self._step(sgd, [enc, ner_head, intent_head], 1.0)
            if self._d_log_vars is not None:
                # The log-variances learn faster than the network (x100): at
                # the encoder's rate they would barely move within a run.
                self._log_vars, _ = sgd((self.model.id, "loss_log_vars"), self._log_vars, self._d_log_vars, lr_scale=100.0)
                self._log_vars = numpy.asarray(self._log_vars, "f")
                self._d_log_vars = None
        else:
            self._step(sgd, [enc, ner_head], 1.0)

    def _intent_step(self, sgd: Optimizer, enc: Model, intent_head: Model) -> None:
        separate = self.cfg.get("intent_optimizer_state", "shared") == "separate"
        factor = self.cfg["intent_lr_factor"] * self._warmup()
        self._step(sgd, [enc, intent_head], factor, INTENT_KEY_SUFFIX if separate else "")

    @staticmethod
    def _step(sgd: Optimizer, parts: Sequence[Model], scale: float, key_suffix: str = "") -> None:
        opt = sgd if scale == 1.0 and not key_suffix else _ScaledLR(sgd, scale, key_suffix)
        for part in parts:
            part.finish_update(opt)

    # -------------------------------------------------------- serialization
    def from_bytes(self, bytes_data, *, exclude=tuple()):
        """Load the component from bytes; see `_load_model_bytes` for the model."""
        self._validate_serialization_attrs()
        deserialize = {
            "cfg": lambda b: self.cfg.update(srsly.json_loads(b)),
            "vocab": lambda b: self.vocab.from_bytes(b, exclude=exclude),
            "model": lambda b: self._load_model_bytes(b, "<bytes>"),
        }
        try:
            util.from_bytes(bytes_data, deserialize, exclude)
        except ValueError as err:
            if str(err).startswith(("intent_ner:", "[E149]")):
                raise
            raise ValueError(
                f"intent_ner: cannot load the component from bytes: {str(err).rstrip('.')}. "
                "The data is truncated or damaged; re-save or re-train the pipeline."
            ) from err
        return self

    def from_disk(self, path, *, exclude=tuple()):
        """Load the component from a directory; see `_load_model_bytes`."""
        self._validate_serialization_attrs()

        def load_model(p):
            p = Path(p)
            if not p.is_file():
                raise FileNotFoundError(
                    f"intent_ner: model file {p} is missing; the pipeline directory "
                    "is incomplete. Re-save or re-train the pipeline."
                )
            self._load_model_bytes(p.read_bytes(), p)

        deserialize = {
            "cfg": lambda p: self.cfg.update(deserialize_config(p)),
            "vocab": lambda p: self.vocab.from_disk(p, exclude=exclude),
            "model": load_model,
        }
        util.from_disk(path, deserialize, exclude)
        if self._runtime() is not None and "model" not in exclude:
            self._runtime().from_disk(path, self.tags, self.intent_labels)
        return self

    # ------------------------------------------ external runtime (onnx.py)
    # An exported pipeline's model (OnnxIntentNER.v1) carries attrs["runtime"]:
    # it runs the encoder and both heads (predict_logits) and keeps its files
    # (model.onnx, tokenizer/) in the component's directory.  None for torch.
    def _runtime(self):
        return self.model.attrs.get("runtime")

    def to_disk(self, path, *, exclude=tuple()):
        super().to_disk(path, exclude=exclude)
        if self._runtime() is not None and "model" not in exclude:
            self._runtime().to_disk(path)

    def _load_model_bytes(self, data: bytes, where) -> None:
        """Load the model, with errors that say what is wrong with the file.

        Every PyTorch weights blob in it (the heads' and the encoder's) is
        first checked with ``torch.load(weights_only=True)``: spacy-transformers
        loads the encoder's blob without an explicit ``weights_only``, which the
        environment variable TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD can turn off.
        """
        try:
            _check_torch_blobs(data)
            self.model.from_bytes(data)
        except pickle.UnpicklingError as err:
            raise ValueError(
                f"intent_ner: refused to load model file {where}: its weights hold "
                f"pickled objects other than tensors ({err.__class__.__name__}), so "
                "loading them could run code. Only load pipelines from sources you "
                "trust; re-save or re-train the pipeline."
            ) from err
        except AttributeError:
            raise ValueError(Errors.E149) from None
        except ImportError as err:
            # Not the file's fault: e.g. a transformers install without the
            # encoder's tokenizer or model code.
            raise ImportError(
                f"intent_ner: cannot load model file {where}: {err}. The file needs this "
                "module; install the package that provides it (see setup.cfg's requirements)."
            ) from err
        except Exception as err:
            raise ValueError(
                f"intent_ner: cannot load model file {where}: {str(err).rstrip('.')}. The file is "
                "truncated or damaged; re-save or re-train the pipeline."
            ) from err

    # -------------------------------------------------------------- scoring
    def score(self, examples: Iterable[Example], **kwargs) -> Dict:
        validate_examples(examples, "IntentNER.score")
        return self.scorer(
            examples,
            intent_labels=self.intent_labels if self.uses_intents else (),
            multi_label=self.cfg["multi_label"],
            thresholds=self.cfg["intent_thresholds"],
            **kwargs,
        )

    def decide_intents(self, doc: Doc) -> List[str]:
        """The intents predicted for a processed doc (thresholds from cfg)."""
        return sorted(
            decide_intents(doc.cats, self.intent_labels, self.cfg["multi_label"], self.cfg["intent_thresholds"])
        )


# ---------------------------------------------------------------- helpers
def _check_torch_blobs(data: bytes) -> None:
    """Unpickle every shim's ``state`` blob with ``weights_only=True``.

    Thinc stores one msgpack blob per shim under ``msg["shims"]``; both
    PyTorchShim and spacy-transformers' HFShim keep their torch.save output
    under the key ``state``.  Raises pickle.UnpicklingError for anything that
    is not plain tensors/containers.
    """
    import torch

    msg = srsly.msgpack_loads(data)
    if not isinstance(msg, dict):
        raise ValueError("not a Thinc model (no msgpack mapping)")
    for node_shims in msg.get("shims", []):
        for blob in node_shims:
            shim_msg = srsly.msgpack_loads(blob)
            state = shim_msg.get("state") if isinstance(shim_msg, dict) else None
            if state:
                torch.load(BytesIO(state), map_location="cpu", weights_only=True)


_TORCH_PID = os.getpid()
_PREDICT_LOCK = threading.RLock()


def _new_predict_lock() -> None:
    # A forked child (nlp.pipe(n_process=...)) must not inherit a lock that
    # another thread of the parent held at the moment of the fork.
    global _PREDICT_LOCK
    _PREDICT_LOCK = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_predict_lock)


def _guard_forked_torch(on_gpu: bool = False) -> None:
    """In a process forked from one that already ran torch (spaCy's
    `nlp.pipe(n_process=...)` forks on Linux), torch's OpenMP thread pool is
    unusable and the first parallel op hangs.  Use one thread per worker.
    CUDA cannot run in such a process at all: say so instead of letting torch
    fail deep inside the encoder."""
    global _TORCH_PID
    import torch  # already loaded by the encoder: a dict lookup, not an import

    if on_gpu and getattr(torch.cuda, "_is_in_bad_fork", lambda: False)():
        raise RuntimeError(
            "intent_ner: this pipeline is on a GPU, and this process was forked from one that "
            "uses CUDA (nlp.pipe(n_process=N) with N > 1 forks on Linux); CUDA cannot run in a "
            "forked process. On a GPU use n_process=1 (batch_size sets how many docs share a "
            "forward pass), or load the pipeline without a GPU for multi-process inference."
        )
    pid = os.getpid()
    if pid != _TORCH_PID:
        torch.set_num_threads(1)
        _TORCH_PID = pid


def _is_space(doc: Doc) -> numpy.ndarray:
    return doc.to_array(IS_SPACE).astype(bool)


def _softmax(x: numpy.ndarray) -> numpy.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    e = numpy.exp(x)
    return (e / e.sum(axis=-1, keepdims=True)).astype("f")


def _softmax_xent(logits: numpy.ndarray, gold: numpy.ndarray):
    """Mean cross-entropy over words with a known gold tag; gradient of logits."""
    probs = _softmax(logits)
    known = gold >= 0
    n = max(int(known.sum()), 1)
    d = probs.copy()
    rows = numpy.nonzero(known)[0]
    d[rows, gold[rows]] -= 1.0
    d[~known] = 0.0
    loss = -numpy.log(numpy.clip(probs[rows, gold[rows]], 1e-9, 1.0)).sum() / n
    return float(loss), (d / n).astype("f")


def _softmax_soft_xent(logits: numpy.ndarray, y: numpy.ndarray, mask: numpy.ndarray):
    """Mean (over words) cross-entropy against the intent distribution y/sum(y); gradient."""
    probs = _softmax(logits)
    total = y.sum(axis=1, keepdims=True)
    target = numpy.divide(y, total, out=numpy.zeros_like(y), where=total > 0)
    known = mask * (total > 0)
    n = max(float(known.sum()), 1.0)
    d = (probs - target) * known / n
    loss = -(known * target * numpy.log(numpy.clip(probs, 1e-9, 1.0))).sum() / n
    return float(loss), d.astype("f")


def _sigmoid_bce(logits: numpy.ndarray, y: numpy.ndarray, mask: numpy.ndarray):
    """Mean (over words) summed-over-labels binary cross-entropy; gradient."""
    p = 1.0 / (1.0 + numpy.exp(-logits))
    n = max(float(mask.sum()), 1.0)
    d = (p - y) * mask / n
    eps = 1e-7
    loss = -(mask * (y * numpy.log(p + eps) + (1 - y) * numpy.log(1 - p + eps))).sum() / n
    return float(loss), d.astype("f")


def _swap_grads(model: Model, new: Optional[Dict]) -> Dict:
    """Take the model's current gradients out, putting `new` (or nothing) in.

    Covers both PyTorch parameters inside shims and Thinc parameters.
    """
    old: Dict = {}
    for node in model.walk():
        for shim in node.shims:
            for pname, param in shim._model.named_parameters():
                key = ("shim", shim.id, pname)
                old[key] = param.grad
                param.grad = None if new is None else new.get(key)
        for pname in node.param_names:
            key = ("node", node.id, pname)
            if node.has_grad(pname):
                old[key] = node.get_grad(pname).copy()
                node.set_grad(pname, node.ops.alloc(node.get_grad(pname).shape))
            if new is not None and new.get(key) is not None:
                node.set_grad(pname, new[key])
    return old


def _add_grads(a: Optional[Dict], b: Dict) -> Dict:
    if a is None:
        return b
    out = dict(a)
    for key, g in b.items():
        if g is None:
            continue
        out[key] = g if out.get(key) is None else out[key] + g
    return out
