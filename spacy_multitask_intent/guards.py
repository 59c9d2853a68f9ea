"""Fork and thread guards for prediction.

- One prediction at a time per process (``predict_lock()``): a training step
  in another thread switches the shared torch modules to ``train()``, i.e.
  dropout on.  torch still uses all cores inside each prediction.
- A process forked from one that already ran torch (spaCy's
  ``nlp.pipe(n_process=...)`` forks on Linux) gets a fresh lock and one torch
  thread (``guard_forked_torch``); on a GPU such a process is refused with a
  clear error.
"""
import os
import threading

_TORCH_PID = os.getpid()
_PREDICT_LOCK = threading.RLock()


def _new_predict_lock() -> None:
    # A forked child (nlp.pipe(n_process=...)) must not inherit a lock that
    # another thread of the parent held at the moment of the fork.
    global _PREDICT_LOCK
    _PREDICT_LOCK = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_predict_lock)


def predict_lock() -> threading.RLock:
    """This process's prediction lock (a fresh one after a fork)."""
    return _PREDICT_LOCK


def guard_forked_torch(on_gpu: bool = False) -> None:
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
