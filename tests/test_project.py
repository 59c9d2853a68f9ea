"""Smoke run of the `all` workflow (generate -> ... -> package) on the tiny BERT."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_all_workflow_smoke(tiny_bert, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    for item in ("project.yml", "configs", "scripts", "assets"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copyfile)(src, project / item)
    env = dict(os.environ)
    env["SPACY_CONFIG_OVERRIDES"] = (
        f"--paths.encoder={tiny_bert} --training.max_steps=4 --training.eval_frequency=2"
    )
    env["HF_HUB_OFFLINE"] = "1"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        [sys.executable, "-m", "spacy", "project", "run", "all", ".", "--vars.n", "150"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    # Real training happened: both pipelines exist and were evaluated on test;
    # the saved scores are the model's (scoring model-best again gives them)
    # and hang together (F1 is the harmonic mean of P and R).
    from spacy_multitask_intent.evaluate import evaluate

    for name in ("ner_only", "multitask"):
        model = project / "training/store_lookup" / name / "model-best"
        assert (model / "config.cfg").exists()
        metrics = json.loads((project / f"metrics/store_lookup/{name}.json").read_text())
        again = evaluate(model, project / "corpus/store_lookup/test.spacy")
        for setting in ("gold_tokens", "raw_text"):
            s = metrics[setting]
            p, r = s["ents_p"], s["ents_r"]
            assert s["ents_f"] == pytest.approx(2 * p * r / (p + r) if p + r else 0.0)
            for key in ("ents_p", "ents_r", "ents_f"):
                assert again[setting][key] == pytest.approx(s[key]), (name, setting, key)
    mt = json.loads((project / "metrics/store_lookup/multitask.json").read_text())
    assert mt["gold_tokens"]["intent_acc"] is not None
    config = (project / "training/store_lookup/ner_only/model-best/config.cfg").read_text()
    assert 'update_mode = "ner_only"' in config
    # The comparison table was printed and written.
    table = (project / "metrics/store_lookup/table.md").read_text()
    assert "| NER-only |" in table and "| multitask |" in table
    assert "| NER-only |" in out
    wheels = list((project / "packages").glob("**/dist/*.whl"))
    assert wheels, "spacy package produced no wheel"
