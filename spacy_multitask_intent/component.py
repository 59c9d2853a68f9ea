"""The `intent_ner` trainable component (Shah & Siskind's multi-task model).

One encoder, two token-level heads: BIO entity tags (softmax) and intents
(sigmoid, one output per intent label).  Every word of a query is trained
towards the query's intent vector; at inference each word has its own intent
scores, and `doc.cats` aggregates them.
"""
import warnings
from collections import Counter
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import numpy
import srsly
from spacy import util
from spacy.attrs import IS_SPACE
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.pipeline.pipe import deserialize_config
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer

from .crf import CRF_START, CRF_TRANS, crf_marginals, crf_nll, crf_params
from .decoding import (
    biluo_to_bio_ids,
    bio_tags,
    merge_glued,
    tag_bigram_scores,
    tags_to_spans_batch,
    transition_mask,
    viterbi,
    viterbi_bio,
)
from .extensions import LABELS_ATTR, SCORES_ATTR, TAG_PROBS_ATTR, install_extensions
from .guards import guard_forked_torch, predict_lock
from .inference import enable_fast_predict, fast_logits, predict_heads
from .layers import set_dropout
from .loading import load_model_bytes
from .losses import DEFAULT_INTENT_THRESHOLD, INTENT_LOSSES, SETS_INTENT_THRESHOLD, _softmax, _softmax_xent, intent_activation, intent_probs, intent_xent
from .model import encode
from .scoring import decide_intents, gold_intents, needs_multi_label, score_intent_ner
from .updates import LOSS_BALANCES, STRATEGIES, UPDATE_MODES

AGGREGATIONS = ("mean", "max")
OPTIMIZER_STATES = ("shared", "separate")

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
        "update_mode": "joint",
        "intent_lr_factor": 0.1,
        "intent_optimizer_state": "shared",
        "intent_weight": 0.1,
        "intent_loss": "softmax_sets",
        "intent_weight_warmup": 0,
        "loss_balance": "fixed",
        "head_lr_factor": 30.0,
        "label_smoothing": 0.0,
        "cats_aggregation": "mean",
        "intent_thresholds": {},
        "intent_threshold": None,
        "gating": {},
        "gate_thresholds": {},
        "bucket_size": 32,
        "transition_weight": 0.0,
        "intent_set_veto": True,
        "intent_set_veto_min_expected": 0.0,
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
    head_lr_factor: float,
    label_smoothing: float,
    cats_aggregation: str,
    intent_thresholds: Dict[str, float],
    intent_threshold: Optional[float],
    gating: Dict[str, List[str]],
    gate_thresholds: Dict[str, float],
    bucket_size: int,
    transition_weight: float,
    intent_set_veto: bool,
    intent_set_veto_min_expected: float,
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
        head_lr_factor=head_lr_factor,
        label_smoothing=label_smoothing,
        cats_aggregation=cats_aggregation,
        intent_thresholds=intent_thresholds,
        intent_threshold=intent_threshold,
        gating=gating,
        gate_thresholds=gate_thresholds,
        bucket_size=bucket_size,
        transition_weight=transition_weight,
        intent_set_veto=intent_set_veto,
        intent_set_veto_min_expected=intent_set_veto_min_expected,
        scorer=scorer,
    )


class IntentNER(TrainablePipe):
    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "intent_ner",
        *,
        update_mode: str = "joint",
        intent_lr_factor: float = 0.1,
        intent_optimizer_state: str = "shared",
        intent_weight: float = 0.1,
        intent_loss: str = "softmax_sets",
        intent_weight_warmup: int = 0,
        loss_balance: str = "fixed",
        head_lr_factor: float = 30.0,
        label_smoothing: float = 0.0,
        cats_aggregation: str = "mean",
        intent_thresholds: Optional[Dict[str, float]] = None,
        intent_threshold: Optional[float] = None,
        gating: Optional[Dict[str, List[str]]] = None,
        gate_thresholds: Optional[Dict[str, float]] = None,
        bucket_size: int = 32,
        transition_weight: float = 0.0,
        intent_set_veto: bool = True,
        intent_set_veto_min_expected: float = 0.0,
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
        if loss_balance != "fixed" and update_mode != "joint":
            raise ValueError(
                f"intent_ner: loss_balance = \"{loss_balance}\" combines the two losses of one joint "
                f"pass; it needs update_mode = \"joint\", got '{update_mode}'"
            )
        if int(intent_weight_warmup) < 0:
            raise ValueError(f"intent_ner: intent_weight_warmup must be >= 0, got {intent_weight_warmup}")
        if not float(head_lr_factor) > 0:
            raise ValueError(f"intent_ner: head_lr_factor must be > 0, got {head_lr_factor}")
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(f"intent_ner: label_smoothing must be in [0, 1), got {label_smoothing}")
        if intent_lr_factor < 0 or intent_weight < 0:
            raise ValueError("intent_ner: intent_lr_factor and intent_weight must be >= 0")
        if intent_threshold is not None and not 0.0 < float(intent_threshold) <= 1.0:
            raise ValueError(f"intent_ner: intent_threshold must be in (0, 1], got {intent_threshold}")
        if int(bucket_size) < 1:
            raise ValueError(f"intent_ner: bucket_size must be >= 1, got {bucket_size}")
        if not float(transition_weight) >= 0.0:
            raise ValueError(f"intent_ner: transition_weight must be >= 0, got {transition_weight}")
        if not float(intent_set_veto_min_expected) >= 0.0:
            raise ValueError(
                f"intent_ner: intent_set_veto_min_expected must be >= 0, got {intent_set_veto_min_expected}"
            )
        install_extensions()
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.cfg = {
            "labels": [],
            "intents": [],
            # intent_loss = "softmax_sets": the combinations of two or more
            # intents that training queries have, each sorted; with the single
            # intents they are the intent head's classes (intent_classes).
            "intent_sets": [],
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
            # "pcgrad": at each word vector, the intent gradient loses its
            # component against the NER gradient (updates.project_conflicting).
            "loss_balance": loss_balance,
            # The two heads step at learn rate x head_lr_factor, the encoder
            # at the learn rate (and x intent_lr_factor in the intent step).
            "head_lr_factor": float(head_lr_factor),
            # NER targets: 1 - label_smoothing on the gold tag, the rest spread
            # evenly over the tags.
            "label_smoothing": float(label_smoothing),
            "cats_aggregation": cats_aggregation,
            "intent_thresholds": dict(intent_thresholds or {}),
            # Multi-label data: the threshold of an intent that has no
            # calibrated one.  None: by head (DEFAULT_INTENT_THRESHOLD).
            "intent_threshold": None if intent_threshold is None else float(intent_threshold),
            "gating": {k: list(v) for k, v in (gating or {}).items()},
            "gate_thresholds": dict(gate_thresholds or {}),
            # Inference: docs are sorted by length and encoded this many at a
            # time, so each forward pass pads to similar lengths.
            "bucket_size": int(bucket_size),
            # Decoding: transition_weight x the tag-bigram log-probabilities
            # of the training data (set by initialize when the weight is > 0,
            # or by set_transition_scores) added to the constrained decoder.
            "transition_weight": float(transition_weight),
            "transition_scores": None,
            # Decoding: drop an entity whose label no training query with the
            # doc's decided intent set had ("STORE" under {product_search}).
            # The table is set by initialize, or by set_intent_set_labels.
            # No effect with update_mode = "ner_only" (its intents are not
            # trained); off for a pipeline saved before the table existed.
            "intent_set_veto": bool(intent_set_veto),
            "intent_set_labels": None,
            # 0: drop every such entity. Above 0: drop it only where the
            # training data should have shown the label with that set this
            # many times if labels and intent sets were independent
            # (n(label) * n(set) / n(queries)): a rare label, or a rare set,
            # unseen together is weak evidence that they never go together.
            "intent_set_veto_min_expected": float(intent_set_veto_min_expected),
        }
        self._pending: Optional[Dict] = None  # NER-pass gradients awaiting finish_update
        self._n_updates = 0  # update() calls so far (for intent_weight_warmup)
        self._log_vars = numpy.zeros((2,), "f")  # loss_balance="uncertainty": s_ner, s_intent
        self._d_log_vars: Optional[numpy.ndarray] = None
        self._check_crf_settings()

    def _first_time(self, key: str) -> bool:
        """True the first time this component asks about `key` (a warning given
        once), False after; the keys live in self._warned."""
        warned = self.__dict__.setdefault("_warned", set())
        if key in warned:
            return False
        warned.add(key)
        return True

    def _check_crf_settings(self) -> None:
        """Refuse the settings that act on the per-word NER loss, which a model
        with crf = true does not have."""
        head = self.model.get_ref("ner_head") if self.model.has_ref("ner_head") else None
        if head is None or CRF_TRANS not in head.param_names:
            return
        if self.cfg.get("label_smoothing"):
            raise ValueError(
                "intent_ner: label_smoothing applies to the per-word NER loss; a model with "
                "crf = true trains on whole tag paths. Set one of them only."
            )
        if self.cfg.get("loss_balance") == "uncertainty":
            raise ValueError(
                'intent_ner: loss_balance = "uncertainty" rescales the per-word NER gradient '
                'and is not built for a model with crf = true; use "fixed" or "pcgrad".'
            )

    # ------------------------------------------------------------------ labels
    @property
    def labels(self) -> Tuple[str, ...]:
        """Entity labels."""
        return tuple(self.cfg["labels"])

    @property
    def intent_labels(self) -> Tuple[str, ...]:
        return tuple(self.cfg["intents"])

    @property
    def intent_classes(self) -> List[str]:
        """The intent head's outputs: each intent, then (intent_loss =
        "softmax_sets") each combination of intents, as "a + b"."""
        return list(self.cfg["intents"]) + [" + ".join(s) for s in self.cfg.get("intent_sets") or []]

    def _sets_matrix(self) -> Optional[numpy.ndarray]:
        """classes x intents, 1 where a class holds the intent; None when the
        classes are the intents alone."""
        sets = self.cfg.get("intent_sets") or []
        if not sets:
            return None
        cached = getattr(self, "_sets_cache", None)
        key = (tuple(self.cfg["intents"]), tuple(map(tuple, sets)))
        if cached is None or cached[0] != key:
            index = {l: i for i, l in enumerate(self.cfg["intents"])}
            m = numpy.zeros((len(self.cfg["intents"]) + len(sets), len(index)), "f")
            m[numpy.arange(len(index)), numpy.arange(len(index))] = 1.0
            for k, labels in enumerate(sets):
                m[len(index) + k, [index[l] for l in labels]] = 1.0
            cached = (key, m)
            self._sets_cache = cached
        return cached[1]

    @property
    def label_data(self) -> Dict[str, List[str]]:
        return {"ents": list(self.labels), "intents": list(self.intent_labels)}

    @property
    def tags(self) -> List[str]:
        return bio_tags(self.labels)

    @property
    def intent_activation(self) -> str:
        """"softmax" or "sigmoid": how intent logits become scores."""
        return intent_activation(self.cfg.get("intent_loss", "sigmoid_sum"), self.cfg["multi_label"])

    @property
    def default_intent_threshold(self) -> float:
        """Multi-label data: the threshold of an intent with no calibrated one."""
        value = self.cfg.get("intent_threshold")
        if value is not None:
            return float(value)
        if self.cfg.get("intent_sets"):  # softmax_sets with combinations: scores are sums over sets
            return SETS_INTENT_THRESHOLD
        return DEFAULT_INTENT_THRESHOLD[self.intent_activation]

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
        combos = set()
        by_set: Dict[Tuple[str, ...], list] = {}
        n_with_cats = 0
        sample: List[Doc] = []
        for eg in get_examples():
            ents.update(e.label_ for e in eg.reference.ents)
            intents.update(eg.reference.cats)
            if eg.reference.cats:
                n_with_cats += 1
            multi = multi or needs_multi_label(eg.reference.cats)
            gold = gold_intents(eg.reference.cats)
            if len(gold) > 1:
                combos.add(tuple(sorted(gold)))
            _add_set_labels(by_set, gold, eg.reference)
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
        sets = sorted(c for c in combos if set(c) <= intents) if self.cfg["intent_loss"] == "softmax_sets" else []
        self.cfg["intent_sets"] = [list(c) for c in sets]
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
        self.model.get_ref("intent_head").set_dim("nO", max(1, len(self.intent_classes)), force=True)
        self.model.initialize(X=sample or None)
        self.cfg["intent_set_labels"] = _set_table(by_set)
        if self.cfg.get("transition_weight"):
            self.set_transition_scores(get_examples())

    def set_intent_set_labels(self, examples: Iterable[Example]) -> None:
        """Record, for each set of gold intents in ``examples``, the entity
        labels that occur with it: the table ``intent_set_veto`` decodes with
        (initialize records it from the training data)."""
        by_set: Dict[Tuple[str, ...], list] = {}
        for eg in examples:
            _add_set_labels(by_set, gold_intents(eg.reference.cats), eg.reference)
        if not by_set:
            raise ValueError(
                "intent_ner: set_intent_set_labels got no example with gold intents (doc.cats), "
                "so there is no table to record; pass the training examples."
            )
        self.cfg["intent_set_labels"] = _set_table(by_set)
        self._veto_table = None

    def _allowed_labels(self):
        """The veto's table (_veto_tables) when intent_set_veto applies, else
        None."""
        if not self.cfg.get("intent_set_veto") or not self.uses_intents:
            return None
        table = self._veto_tables()
        if table is None and self._first_time("no_veto_table"):
            warnings.warn(
                "intent_ner: intent_set_veto = true but the component holds no table of the labels "
                "each intent set takes (it was not made by nlp.initialize()), so entities are decoded "
                "without the veto; set_intent_set_labels(examples) records the table."
            )
        elif (
            table is not None
            and not table.counted
            and self.cfg.get("intent_set_veto_min_expected")
            and self._first_time("no_counts")
        ):
            warnings.warn(
                "intent_ner: intent_set_veto_min_expected > 0 but the component's table of the labels "
                "each intent set takes has no counts (it was recorded before they were kept), so the "
                "veto drops every label unseen with the decided set; set_intent_set_labels(examples) "
                "records the table with its counts."
            )
        return table

    def _veto_tables(self):
        """A VetoTable of cfg "intent_set_labels" (None without a table)."""
        stored = self.cfg.get("intent_set_labels")
        if stored is None:
            return None
        cached = getattr(self, "_veto_table", None)
        if cached is None or cached[0] is not stored:
            cached = (stored, VetoTable(stored))
            self._veto_table = cached
        return cached[1]

    def _vetoed(self, doc: Doc, spans, table: "VetoTable"):
        """The spans whose label the doc's decided intent set allows."""
        decided = frozenset(self.decide_intents(doc))
        if not decided:
            return spans
        min_expected = self.cfg.get("intent_set_veto_min_expected") or 0.0
        return [sp for sp in spans if not table.vetoes(decided, sp[2], min_expected)]

    def set_transition_scores(self, examples: Iterable[Example], alpha: float = 1.0) -> None:
        """Estimate the decoder's transition scores from gold examples: the
        log-probability of each tag given the previous word's tag, and of each
        first tag (add-``alpha`` smoothed over the well-formed transitions).
        ``transition_weight`` scales them at decoding; 0 leaves them unused."""
        tag_index = {t: i for i, t in enumerate(self.tags)}
        paths = [biluo_to_bio_ids(eg.get_aligned_ner(), tag_index) for eg in examples]
        trans, first = tag_bigram_scores(paths, self.tags, alpha)
        self.cfg["transition_scores"] = {"tags": list(self.tags), "trans": trans.tolist(), "first": first.tolist()}
        self._transitions = None

    def _transition_scores(self):
        """(trans, first) arrays scaled by transition_weight, or None."""
        weight = float(self.cfg.get("transition_weight") or 0.0)
        if not weight:
            return None
        stored = self.cfg.get("transition_scores")
        if not stored or stored.get("tags") != list(self.tags):
            raise ValueError(
                f"intent_ner: transition_weight = {weight} but the component holds no transition scores "
                "for its tags; they are estimated by nlp.initialize() when transition_weight > 0, or by "
                "set_transition_scores(examples) on a trained pipeline."
            )
        cached = getattr(self, "_transitions", None)
        if cached is None or cached[0] != (weight, id(stored)):
            trans = numpy.asarray(stored["trans"], dtype="f")
            first = numpy.asarray(stored["first"], dtype="f")
            cached = ((weight, id(stored)), weight * trans, weight * first)
            self._transitions = cached
        return cached[1], cached[2]

    # --------------------------------------------------------------- forward
    def predict(self, docs: Iterable[Doc]):
        """(tag probabilities, intent probabilities or None) per doc."""
        runtime = self._runtime()
        if runtime is None:
            guard_forked_torch(self.model.ops.device_type == "gpu")
        docs = list(docs)
        n_tags = len(self.tags)
        ner_out: List[numpy.ndarray] = [numpy.zeros((len(d), n_tags), "f") for d in docs]
        intent_out: List[Optional[numpy.ndarray]] = [None] * len(docs)
        # A doc of whitespace only has nothing to tag or classify: it gets no
        # entities and no intent scores (rather than scores read off a space).
        idx = [i for i, d in enumerate(docs) if _has_words(d)]
        if not idx or not self.model.get_ref("ner_head").has_dim("nO"):
            return ner_out, intent_out
        heads = [self.model.get_ref("ner_head")]
        if self.uses_intents:
            heads.append(self.model.get_ref("intent_head"))
        # Sorted by length, then cut into buckets: a forward pass pads every
        # doc to its longest one, so mixing a 3-word and a 40-word query in one
        # pass computes 37 padding positions for the short one.
        idx.sort(key=lambda i: len(docs[i]))
        size = max(1, int(self.cfg.get("bucket_size", 32)))
        if runtime is not None:  # encoder + heads in one ONNX graph (onnx.py)
            size = runtime.bucket_size(len(idx), size)
        buckets = [idx[b : b + size] for b in range(0, len(idx), size)]
        if runtime is not None:
            # Buckets side by side, one core each (OnnxRuntime.predict_many).
            with predict_lock():
                results = runtime.predict_many([[docs[i] for i in bucket] for bucket in buckets])
        else:
            results = (self._torch_logits([docs[i] for i in bucket], heads) for bucket in buckets)
        for bucket, (outputs, lengths) in zip(buckets, results):
            splits = numpy.cumsum(lengths)[:-1]
            for i, part in zip(bucket, numpy.split(_softmax(outputs[0]), splits)):
                ner_out[i] = part
            if self.uses_intents:
                probs = intent_probs(outputs[1], self.intent_activation)
                sets = self._sets_matrix()
                if sets is not None:  # each intent: the sum over the sets that hold it
                    probs = probs @ sets
                for i, part in zip(bucket, numpy.split(probs, splits)):
                    intent_out[i] = part
        return ner_out, intent_out

    def _torch_logits(self, docs: List[Doc], heads: List[Model]) -> Tuple[list, List[int]]:
        """(logits of each head for the docs' words stacked, word counts) on
        the torch encoder."""
        ops = self.model.ops
        # One prediction at a time per process (torch still uses all cores
        # inside each one): a training step in another thread switches the
        # shared torch modules to train(), i.e. dropout on.
        with predict_lock():
            enable_fast_predict(self.model)  # eval + inference_mode; see inference.py
            fast = fast_logits(self.model, docs, heads)
            if fast is not None:  # short docs: wordpieces.py's arrays, one torch block
                return [ops.to_numpy(y) for y in fast[0]], fast[1]
            X, lengths, _ = encode(self.model, docs, False)
            return [ops.to_numpy(y) for y in predict_heads(X, heads)], lengths

    def set_annotations(self, docs: Iterable[Doc], scores) -> None:
        docs = list(docs)
        ner_probs, intent_probs = scores
        tags = self.tags
        lengths = [len(doc) for doc in docs]
        # The whole batch's words in one array: one log, one mask, one
        # gather, and one pass for the spans (a short query's per-doc numpy
        # calls cost more than the arithmetic).
        probs_all = numpy.concatenate(ner_probs) if docs else numpy.zeros((0, len(tags)), "f")
        crf = crf_params(self.model.get_ref("ner_head"))
        # A CRF's emissions are the head's raw scores, and a gap between two
        # tags' scores counts in full against the transition scores: the
        # floor is float32's smallest normal number (a gap of 87 nats), not
        # the 1e-9 (21 nats) that is plenty for the per-word softmax.
        floor = numpy.finfo("f").tiny if crf is not None else 1e-9
        log_all = numpy.log(numpy.clip(probs_all, floor, 1.0))
        if len(log_all):
            # Whitespace tokens are never part of an entity.
            space = numpy.concatenate([_is_space(doc) for doc in docs])
            log_all[space, 1:] = -1e9
        splits = numpy.cumsum(lengths)[:-1]
        scored = self._transition_scores()
        if crf is not None and scored is not None:
            scored = (crf[0] + scored[0], crf[1] + scored[1])
        elif crf is not None:
            scored = crf
        if not docs:
            paths = []
        elif scored is None:
            paths = viterbi_bio(numpy.split(log_all, splits), tags)
        else:
            paths = viterbi(numpy.split(log_all, splits), *transition_mask(tags), *scored)
        path_all = numpy.concatenate(paths) if paths else numpy.zeros((0,), "i")
        if crf is not None and docs:
            # A word's confidence: its tag's marginal probability under the
            # scores the path was decoded with.
            probs_all = numpy.concatenate(crf_marginals(numpy.split(log_all, splits), *scored, tags))
        chosen = numpy.split(probs_all[numpy.arange(len(path_all)), path_all].astype("f"), splits)
        all_spans = tags_to_spans_batch(paths, tags)
        intents = self.intent_labels
        mean = self.cfg["cats_aggregation"] != "max"
        gating = self.cfg["gating"]
        gate_thr = self.cfg["gate_thresholds"]
        veto = self._allowed_labels()
        for doc, n, spans, iprobs, tag_probs in zip(docs, lengths, all_spans, intent_probs, chosen):
            ext = doc._
            if n:
                ext.set(TAG_PROBS_ATTR, tag_probs)
            spans = merge_glued(spans, doc)
            if iprobs is not None and n:
                ext.set(SCORES_ATTR, iprobs)
                ext.set(LABELS_ATTR, intents)
                cats = numpy.add.reduce(iprobs, axis=0) / n if mean else numpy.max(iprobs, axis=0)
                doc.cats.update(zip(intents, cats.tolist()))
                if gating:
                    spans = [s for s in spans if self._licensed(s, iprobs, gating, gate_thr)]
                if veto is not None:
                    spans = self._vetoed(doc, spans, veto)
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
        sets = self.cfg.get("intent_sets") or []
        set_index = {tuple(c): len(intent_index) + k for k, c in enumerate(sets)}
        for n, eg in enumerate(examples):
            vec = numpy.zeros((len(intent_index) + len(sets),), "f")
            cats = eg.reference.cats
            unknown = [l for l in cats if l not in intent_index]
            if unknown and self.uses_intents:
                raise ValueError(
                    f"intent_ner: example {n} of the batch ('{eg.reference.text[:60]}') has "
                    f"intents {unknown} that the component was not initialized with "
                    f"(known: {list(intent_index)}). Re-run nlp.initialize() on data that "
                    "contains them, or add them with add_intent() before initializing."
                )
            whole = set_index.get(tuple(sorted(gold_intents(cats)))) if set_index else None
            if whole is not None:  # softmax_sets: the query's set of intents is one class
                vec[whole] = 1.0
            else:
                for label, value in cats.items():
                    if label in intent_index:
                        vec[intent_index[label]] = float(value)
            n_tok = len(eg.predicted)
            rows.append(numpy.repeat(vec[None, :], n_tok, axis=0))
            masks.append(numpy.full((n_tok, 1), 1.0 if cats else 0.0, "f"))
            if not cats and self.uses_intents and self._first_time("no_cats"):
                warnings.warn(
                    f"intent_ner: example '{eg.reference.text[:60]}' has no doc.cats; "
                    "examples without intents train the NER head only."
                )
        width = max(1, len(intent_index) + len(sets))
        intent_y = numpy.concatenate(rows) if rows else numpy.zeros((0, width), "f")
        intent_mask = numpy.concatenate(masks) if masks else numpy.zeros((0, 1), "f")
        return tag_ids, intent_y.reshape(-1, width), intent_mask

    def get_loss(
        self, examples: Iterable[Example], scores, *, targets: Optional[Tuple] = None
    ) -> Tuple[Tuple[Optional[float], Optional[float]], Tuple]:
        """Losses and gradients of the logits of both heads (flattened rows).

        scores: (NER logits, intent logits), either may be None (that head
        is not scored, e.g. one pass of the alternating update).
        targets: `_targets(examples)`, when already computed for the batch.
        Returns ((ner_loss, intent_loss), (d_ner, d_intent)); the parts of a
        head that was not scored are None.
        With crf = true the NER loss is the CRF's (crf.py), and the gradient of
        its score tables is added to the NER head's, for the next optimizer
        step: call it to train, once per batch, as update() does.
        """
        examples = list(examples)
        ner_logits, intent_logits = scores
        tag_ids, intent_y, intent_mask = targets if targets is not None else self._targets(examples)
        ner_loss = d_ner = intent_loss = d_intent = None
        if ner_logits is not None:
            head = self.model.get_ref("ner_head")
            crf = crf_params(head)
            if crf is None:
                ner_loss, d_ner = _softmax_xent(ner_logits, tag_ids, self.cfg.get("label_smoothing", 0.0))
            else:
                # The CRF's score tables are the NER head's own parameters:
                # their gradient waits on the head for its optimizer step.
                self._check_crf_settings()
                lengths = [len(eg.predicted) for eg in examples]
                if sum(lengths) != len(ner_logits):
                    raise ValueError(
                        f"intent_ner: get_loss of a model with crf = true needs the batch's examples "
                        f"(for each doc's length): got {len(examples)} examples of {sum(lengths)} words "
                        f"for {len(ner_logits)} rows of NER scores"
                    )
                ner_loss, d_ner, d_trans, d_start = crf_nll(ner_logits, lengths, tag_ids, *crf, self.tags)
                head.inc_grad(CRF_TRANS, head.ops.asarray2f(d_trans))
                head.inc_grad(CRF_START, head.ops.asarray1f(d_start))
        if intent_logits is not None:
            intent_loss, d_intent = self._intent_xent(intent_logits, intent_y, intent_mask)
        return (ner_loss, intent_loss), (d_ner, d_intent)

    def _intent_xent(self, logits: numpy.ndarray, y: numpy.ndarray, mask: numpy.ndarray):
        """The intent loss chosen by `intent_loss`, and its gradient."""
        return intent_xent(logits, y, mask, self.cfg.get("intent_loss", "sigmoid_sum"), self.cfg["multi_label"])

    @property
    def _mode(self) -> str:
        return self.cfg["update_mode"] if self.uses_intents else "ner_only"

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: Optional[float] = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Train on a batch, with the strategy of `update_mode` (see updates.py).

        drop: the dropout rate of this update, as in spaCy's components
          ([training] dropout). It is set on every torch Dropout of the
          encoder and both heads (the encoder's own config rates and the
          model's `dropout` are replaced); None leaves the rates as they are.
        sgd: given, the optimizer steps happen here; without it (spaCy's
          training loop), finish_update() applies them.
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
        targets = self._targets(examples)
        self._n_updates += 1
        set_dropout(self.model, drop)
        ner_loss, intent_loss = STRATEGIES[self._mode].update(self, docs, examples, targets, sgd)
        losses[f"{self.name}_ner"] += ner_loss
        losses[f"{self.name}_intent"] += intent_loss
        losses[self.name] += ner_loss + intent_loss
        return losses

    def finish_update(self, sgd: Optimizer) -> None:
        """Apply the pending optimizer steps (see `update`)."""
        STRATEGIES[self._mode].finish_update(self, sgd)

    # -------------------------------------------------------- serialization
    def from_bytes(self, bytes_data, *, exclude=tuple()):
        """Load the component from bytes; see loading.py for the model."""
        self._validate_serialization_attrs()
        deserialize = {
            "cfg": lambda b: self._load_cfg(srsly.json_loads(b)),
            "vocab": lambda b: self.vocab.from_bytes(b, exclude=exclude),
            "model": lambda b: load_model_bytes(self.model, b, "<bytes>"),
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
        """Load the component from a directory; see loading.py for the model."""
        self._validate_serialization_attrs()

        def load_model(p):
            p = Path(p)
            if not p.is_file():
                raise FileNotFoundError(
                    f"intent_ner: model file {p} is missing; the pipeline directory "
                    "is incomplete. Re-save or re-train the pipeline."
                )
            load_model_bytes(self.model, p.read_bytes(), p)

        deserialize = {
            "cfg": lambda p: self._load_cfg(deserialize_config(p)),
            "vocab": lambda p: self.vocab.from_disk(p, exclude=exclude),
            "model": load_model,
        }
        util.from_disk(path, deserialize, exclude)
        if self._runtime() is not None and "model" not in exclude:
            self._runtime().from_disk(path, self.tags, self.intent_classes)
        return self

    def _load_cfg(self, saved: Dict) -> None:
        self.cfg.update(saved)
        if "intent_set_labels" not in saved:
            # Saved before intent_set_veto existed: it decodes as it was trained.
            self.cfg["intent_set_veto"] = False
            self.cfg["intent_set_labels"] = None

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

    # -------------------------------------------------------------- scoring
    def score(self, examples: Iterable[Example], **kwargs) -> Dict:
        validate_examples(examples, "IntentNER.score")
        return self.scorer(
            examples,
            intent_labels=self.intent_labels if self.uses_intents else (),
            multi_label=self.cfg["multi_label"],
            thresholds=self.cfg["intent_thresholds"],
            default_threshold=self.default_intent_threshold,
            **kwargs,
        )

    def decide_intents(self, doc: Doc) -> List[str]:
        """The intents predicted for a processed doc (thresholds from cfg)."""
        return sorted(
            decide_intents(
                doc.cats,
                self.intent_labels,
                self.cfg["multi_label"],
                self.cfg["intent_thresholds"],
                self.default_intent_threshold,
            )
        )


# ---------------------------------------------------------------- helpers
def _add_set_labels(by_set: Dict[Tuple[str, ...], list], intents, reference: Doc) -> None:
    """Count a gold doc under its set of intents, and each entity label it has
    (once per doc); a query without intents says nothing about which intents
    take a label."""
    if intents:
        entry = by_set.setdefault(tuple(sorted(intents)), [0, Counter()])
        entry[0] += 1
        entry[1].update({e.label_ for e in reference.ents})


def _set_table(by_set: Dict[Tuple[str, ...], list]) -> List[list]:
    """[[sorted intents, sorted labels, n queries, n queries with each label],
    ...] (JSON-serialisable, for cfg)."""
    table = []
    for key, (n, labels) in sorted(by_set.items()):
        names = sorted(labels)
        table.append([list(key), names, n, [labels[name] for name in names]])
    return table


class VetoTable:
    """cfg "intent_set_labels" read for decoding: the labels each intent set
    of the training data took, and how often. Entries saved with intents and
    labels only (before the counts were kept) make the whole table veto as
    if every count were large: without them n(queries) is unknown."""

    def __init__(self, stored: List[list]):
        self.by_set: Dict[frozenset, frozenset] = {}
        self.set_n: Dict[frozenset, float] = {}
        self.by_intent: Dict[str, set] = {}
        self.intent_sets: Dict[str, set] = {}
        self.label_n: Counter = Counter()
        self.counted = all(len(entry) >= 4 for entry in stored)
        for entry in stored:
            key, labels = frozenset(entry[0]), entry[1]
            self.by_set[key] = frozenset(labels)
            if self.counted:
                self.set_n[key] = entry[2]
                self.label_n.update(dict(zip(labels, entry[3])))
            for intent in key:
                self.by_intent.setdefault(intent, set()).update(labels)
                self.intent_sets.setdefault(intent, set()).add(key)
        self.n = sum(self.set_n.values())

    def allowed(self, decided: frozenset) -> Optional[frozenset]:
        """The labels the set takes; for a set no training query had, what its
        intents take in any set; None if an intent was never seen (no veto)."""
        allowed = self.by_set.get(decided)
        if allowed is None:
            if not all(i in self.by_intent for i in decided):
                return None
            allowed = frozenset().union(*(self.by_intent[i] for i in decided))
        return allowed

    def expected(self, decided: frozenset, label: str) -> float:
        """How often the training data would hold the label with the set if
        the two were independent (a set no training query had counts the
        queries whose set shares an intent with it)."""
        if not self.counted or not self.n:
            return float("inf")
        n_set = self.set_n.get(decided)
        if n_set is None:
            keys = set().union(*(self.intent_sets.get(i, set()) for i in decided))
            n_set = sum(self.set_n[k] for k in keys)
        return self.label_n.get(label, 0) * n_set / self.n

    def vetoes(self, decided: frozenset, label: str, min_expected: float = 0.0) -> bool:
        allowed = self.allowed(decided)
        if allowed is None or label in allowed:
            return False
        return min_expected <= 0 or self.expected(decided, label) >= min_expected


def _is_space(doc: Doc) -> numpy.ndarray:
    return doc.to_array(IS_SPACE).astype(bool)


def _has_words(doc: Doc) -> bool:
    """Whether the doc has a token that is not whitespace (stops at the first
    one, usually the doc's first token)."""
    return any(not token.is_space for token in doc)
