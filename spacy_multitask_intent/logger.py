"""A training logger: spaCy's console table plus a JSONL file with every loss
(the NER and intent losses separately), for training curves."""
import sys
from pathlib import Path
from typing import IO, Any, Callable, Dict, Optional, Tuple, Union

import srsly
from spacy.language import Language
from spacy.training.loggers import console_logger_v3
from spacy.util import registry


@registry.loggers("spacy_multitask_intent.LossLogger.v1")
def loss_logger(
    output_file: Optional[Union[str, Path]] = None, progress_bar: Optional[str] = None
):
    console = console_logger_v3(progress_bar=progress_bar, console_output=True)

    def setup(
        nlp: Language, stdout: IO = sys.stdout, stderr: IO = sys.stderr
    ) -> Tuple[Callable[[Optional[Dict[str, Any]]], None], Callable[[], None]]:
        log_console, finalize_console = console(nlp, stdout, stderr)
        stream = None
        if output_file is not None:
            Path(output_file).parent.mkdir(parents=True, exist_ok=True)
            stream = open(output_file, "w", encoding="utf8")

        def log_step(info: Optional[Dict[str, Any]]) -> None:
            log_console(info)
            if info is not None and stream is not None:
                record = {
                    "epoch": info["epoch"],
                    "step": info["step"],
                    "losses": {k: float(v) for k, v in info["losses"].items()},
                    "scores": {
                        k: float(v) for k, v in info["other_scores"].items()
                        if isinstance(v, (int, float))
                    },
                    "score": float(info["score"]),
                }
                stream.write(srsly.json_dumps(record) + "\n")
                stream.flush()

        def finalize() -> None:
            finalize_console()
            if stream is not None:
                stream.close()

        return log_step, finalize

    return setup
