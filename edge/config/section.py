"""Shared pydantic base for every config section: unknown keys are an error, every field documented."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _relative_to_config(path: Path, info: ValidationInfo) -> Path:
    """Relative paths in a config file are relative to that file, not to the working directory."""
    base = (info.context or {}).get("config_dir")
    path = path.expanduser()
    return path if path.is_absolute() or base is None else base / path


ConfigPath = Annotated[Path, AfterValidator(_relative_to_config)]


def require_unique(names: Iterable[str], what: str) -> None:
    """Raise (inside a validator) naming every repeated name: 'sensor names must be unique, repeated: a, b'."""
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if repeated:
        raise ValueError(f"{what} must be unique, repeated: {', '.join(repeated)}")
