"""Safe deserialization of the component's model.

Every PyTorch weights blob in a model file (the heads' and the encoder's) is
first checked with ``torch.load(weights_only=True)``: spacy-transformers
loads the encoder's blob without an explicit ``weights_only``, which the
environment variable TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD can turn off.  Errors
say what is wrong with the file instead of surfacing deep in torch or msgpack.
"""
import pickle
from io import BytesIO

import srsly
from spacy.errors import Errors
from thinc.api import Model


def check_torch_blobs(data: bytes) -> None:
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


def load_model_bytes(model: Model, data: bytes, where) -> None:
    """Load `model` from `data` (read from `where`: a path, or "<bytes>"),
    with errors that say what is wrong with the file."""
    try:
        check_torch_blobs(data)
        model.from_bytes(data)
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
    except ValueError as err:
        if str(err).startswith("intent_ner:"):  # says what is wrong; add where
            raise ValueError(f"{str(err).rstrip('.')} (model file {where})") from err
        raise _damaged(where, err) from err
    except Exception as err:
        raise _damaged(where, err) from err


def _damaged(where, err: Exception) -> ValueError:
    return ValueError(
        f"intent_ner: cannot load model file {where}: {str(err).rstrip('.')}. The file is "
        "truncated or damaged; re-save or re-train the pipeline."
    )
