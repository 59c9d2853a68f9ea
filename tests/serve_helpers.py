"""Shared by the serve tests: a tiny trained pipeline on disk, and a planted
`smi_test_fault` component that fails, stalls or blocks on marked texts so
the service's error paths run through a real pipeline."""
import threading
import time
from pathlib import Path

from spacy.language import Language

from conftest import fresh_nlp, toy_examples, train

GATE = threading.Event()  # texts containing GATEQ block until it is set
SLOW_S = 1.5  # texts containing SLOWQ take this long


@Language.component("smi_test_fault")
def smi_test_fault(doc):
    if "EXPLODE" in doc.text:
        raise ValueError("planted failure for EXPLODE")
    if "SLOWQ" in doc.text:
        time.sleep(SLOW_S)
    if "GATEQ" in doc.text:
        GATE.wait(30)
    return doc


def save_models(tiny_bert, root: Path, steps: int = 60):
    """(plain model dir, model dir with the fault component)."""
    nlp = fresh_nlp(tiny_bert, update_mode="joint")
    train(nlp, toy_examples(nlp), steps=steps)
    plain = root / "plain"
    nlp.to_disk(plain)
    nlp.add_pipe("smi_test_fault", last=True)
    faulty = root / "faulty"
    nlp.to_disk(faulty)
    return plain, faulty


def wait_ready(base: str, proc=None, limit_s: float = 120) -> None:
    """Poll GET {base}/ready until it answers 200; fail if `proc` (a server
    subprocess) exits first, or after `limit_s` seconds."""
    import httpx

    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the server exited ({proc.returncode}):\n{proc.stdout.read().decode()}")
        try:
            if httpx.get(base + "/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("the server did not become ready in time")
