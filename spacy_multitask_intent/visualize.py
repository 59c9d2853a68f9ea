"""Plots: per-word intent heat maps (PNG and displaCy-style HTML), entity
precision-recall curves as a threshold sweeps, and training curves."""
import html
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy
import spacy
from spacy.language import Language

from .corpus import read_examples

DEFAULT_QUERIES = [
    "pickup my order at orange target store",
    "buy an orange",
    "is the apple valley store open today",
    "add apple juice to my cart",
]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ------------------------------------------------------------- heat maps
def intent_matrix(nlp: Language, text: str) -> Tuple[List[str], List[str], numpy.ndarray]:
    doc = nlp(text)
    labels = list(doc._.intent_labels or [])
    scores = numpy.asarray(doc._.intent_scores if doc._.intent_scores is not None else numpy.zeros((len(doc), 0)))
    return [t.text for t in doc], labels, scores


def heatmap_png(nlp: Language, queries: Sequence[str], path: Path) -> Path:
    """One panel per query: words (columns) x intents (rows), like the paper's Figure 1."""
    plt = _plt()
    mats = [intent_matrix(nlp, q) for q in queries]
    n_int = max(len(m[1]) for m in mats) or 1
    fig, axes = plt.subplots(len(mats), 1, figsize=(9, 1.0 + 0.45 * n_int * len(mats)), squeeze=False)
    for ax, (words, labels, scores) in zip(axes[:, 0], mats):
        im = ax.imshow(scores.T, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(words)), words, fontsize=9)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        for (j, i), v in numpy.ndenumerate(scores.T):
            ax.text(i, j, f"{v:.2f}", ha="center", va="center", fontsize=7, color="w" if v < 0.6 else "k")
    fig.colorbar(im, ax=axes[:, 0].tolist(), shrink=0.8, label="intent probability")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def heatmap_html(nlp: Language, queries: Sequence[str], path: Optional[Path] = None) -> str:
    """displaCy-style HTML: entity boxes over words, each word's intent scores below."""
    parts = ["<div style='font-family: -apple-system, sans-serif; line-height: 1.4'>"]
    for q in queries:
        doc = nlp(q)
        labels = list(doc._.intent_labels or [])
        ent_of = {t.i: e.label_ for e in doc.ents for t in e}
        parts.append("<div style='margin: 1em 0; padding: 0.5em; border-bottom: 1px solid #ddd'>")
        for tok in doc:
            scores = tok._.intent
            bg = "#ddd"
            if scores:
                top = max(scores, key=scores.get)
                alpha = scores[top]
                bg = f"rgba(124, 170, 255, {alpha:.2f})"
            ent = ent_of.get(tok.i)
            ent_html = (
                f"<span style='font-size:0.7em;font-weight:bold;margin-left:0.3em'>{html.escape(ent)}</span>"
                if ent else ""
            )
            rows = "".join(
                f"<div style='font-size:0.65em'>{html.escape(l)}: {scores[l]:.2f}</div>" for l in labels
            )
            parts.append(
                f"<span style='display:inline-block;vertical-align:top;margin:0 0.25em;padding:0.2em 0.4em;"
                f"border-radius:0.3em;background:{bg}'>"
                f"<div>{html.escape(tok.text)}{ent_html}</div>{rows}</span>"
            )
        cats = ", ".join(f"{k} {v:.2f}" for k, v in sorted(doc.cats.items(), key=lambda kv: -kv[1]))
        parts.append(f"<div style='font-size:0.75em;color:#555'>doc.cats: {html.escape(cats)}</div></div>")
    parts.append("</div>")
    out = "\n".join(parts)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"<!DOCTYPE html><html><body>{out}</body></html>", encoding="utf8")
    return out


# ------------------------------------------------------------ PR curves
def entity_confidences(nlp: Language, examples, name: str = "intent_ner") -> Tuple[List[float], List[bool], int]:
    """Each predicted entity's confidence and correctness, plus the gold count.

    Confidence: the mean probability of the entity's BIO tags; with an intent
    head it is multiplied by the gating score (max over licensing intents of
    the entity words' mean intent score; gating inferred from the data if
    unset), so sweeping it traces what intent gating buys.
    """
    from .calibrate import _ungated, infer_gating

    proc = nlp.get_pipe(name)
    gating = proc.cfg["gating"] or (infer_gating(examples) if proc.uses_intents else {})
    tag_index = {t: i for i, t in enumerate(proc.tags)}
    with _ungated(nlp, name):
        docs = list(nlp.pipe([eg.predicted for eg in examples]))
    ner_probs, _ = proc.predict(docs)
    conf, correct, n_gold = [], [], 0
    for doc, eg, probs in zip(docs, examples, ner_probs):
        gold = {(e.start_char, e.end_char, e.label_) for e in eg.reference.ents}
        n_gold += len(gold)
        for ent in doc.ents:
            tags = [tag_index[("B-" if i == ent.start else "I-") + ent.label_] for i in range(ent.start, ent.end)]
            c = float(numpy.mean(probs[numpy.arange(ent.start, ent.end), tags]))
            lic = gating.get(ent.label_)
            if proc.uses_intents and lic:
                c *= max(ent._.intent.get(i, 0.0) for i in lic)
            conf.append(c)
            correct.append((ent.start_char, ent.end_char, ent.label_) in gold)
    return conf, correct, n_gold


def pr_curve(conf: Sequence[float], correct: Sequence[bool], n_gold: int):
    order = numpy.argsort(-numpy.asarray(conf, dtype="f"), kind="stable")
    y = numpy.asarray(correct, dtype=bool)[order]
    tp = numpy.cumsum(y)
    p = tp / numpy.arange(1, len(y) + 1)
    r = tp / max(n_gold, 1)
    return p, r


def pr_png(models: Dict[str, Path], data: Path, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for label, model in models.items():
        nlp = spacy.load(model)
        examples = read_examples(nlp, data)
        p, r = pr_curve(*entity_confidences(nlp, examples))
        ax.plot(r, p, label=label)
    ax.set_xlabel("entity recall")
    ax.set_ylabel("entity precision")
    ax.set_title("Entity P/R as the threshold sweeps\n(confidence: tag probability; multitask: x gating intent score)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


# ------------------------------------------------------ training curves
def training_curves_png(logs: Dict[str, Path], path: Path, name: str = "intent_ner") -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, log in logs.items():
        rows = [json.loads(l) for l in Path(log).read_text().splitlines() if l.strip()]
        steps = [r["step"] for r in rows]
        # Logged losses are sums since the previous evaluation: per-step means.
        spans = [max(s - p, 1) for s, p in zip(steps, [-1] + steps[:-1])]
        for key, style in ((f"{name}_ner", "-"), (f"{name}_intent", "--")):
            vals = [
                None if r["losses"].get(key) is None else r["losses"][key] / n
                for r, n in zip(rows, spans)
            ]
            if any(v for v in vals):
                ax.plot(steps, vals, style, label=f"{label}: {key.rsplit('_', 1)[-1]} loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss per step (mean since the last evaluation)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
