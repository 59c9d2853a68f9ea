"""Build a full training config from the base file and a variant fragment."""
from pathlib import Path
from typing import Optional

from thinc.api import Config


def merge_config(base: Path, variant: Optional[Path] = None) -> Config:
    """The base config with the variant's settings laid over it.

    Variants hold only what differs (e.g. `update_mode = "ner_only"`), so the
    configurations cannot drift apart in anything else.
    """
    config = Config().from_disk(base, interpolate=False)
    if variant is not None:
        config = config.merge(Config().from_disk(variant, interpolate=False))
    return config
