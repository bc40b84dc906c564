"""The truth of a labelled recording: what each replayed frame shows and what each asset's sensors record.

A labels file (YAML or JSON) names, per asset, the condition of every frame its folder camera
replays (in name order, looping, one frame per check) and the condition its sensor recordings
hold throughout. A check's truth is the worse of the two: a machine is faulty when either the
camera or the sensors see a fault. This is the same pairing the demo scores its verdicts with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError

from edge.config.loader import first_problem
from edge.config.section import ConfigPath, Section
from edge.errors import InputError
from edge.evidence import Condition

ConditionName = Literal["ok", "warning", "fault"]


class AssetLabels(Section):
    """One asset's truth."""

    frames: dict[str, ConditionName] = Field(
        default_factory=dict, description="Condition each frame file shows, by file name; checks replay them in "
        "name order and loop.")
    sensors: ConditionName = Field("ok", description="Condition the asset's sensor recordings hold throughout.")
    frames_dir: ConfigPath | None = Field(
        None, description="Folder holding the frames (relative to the labels file); default: the asset's folder "
        "camera in the config.")
    case: str = Field("", description="A name for the situation this asset stands for, reported per case.")


    def folder(self, camera_folder: Path | None) -> Path | None:
        """Where the labelled frames are: ``frames_dir`` when given, else the asset's folder camera."""
        return self.frames_dir if self.frames_dir is not None else camera_folder


class Labels(Section):
    """A labels file: the truth per asset id."""

    assets: dict[str, AssetLabels] = Field(description="Labels per asset id (ids as in the config).")


@dataclass(frozen=True)
class Truth:
    """What one check should have found."""

    camera: Condition | None  # what the frame shows; None when the asset has no labelled frames
    sensors: Condition
    frame: Path | None  # the frame file the check judged

    @property
    def condition(self) -> Condition:
        return Condition.worst([self.sensors] + ([self.camera] if self.camera is not None else []))


def load_labels(path: Path) -> Labels:
    """Read and validate a labels file; a clear InputError names what is wrong."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read the labels file {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise InputError(f"labels file {path} is not valid YAML/JSON: {exc}") from exc
    try:
        return Labels.model_validate(document, context={"config_dir": path.resolve().parent})
    except ValidationError as exc:
        raise InputError(f"labels file {path}: {first_problem(exc, Labels)}") from exc


def truth_of_check(labels: AssetLabels, camera_folder: Path | None, index: int) -> Truth:
    """The truth of an asset's ``index``-th check (0-based): frame ``index`` modulo the frames, in name order."""
    sensors = Condition(labels.sensors)
    if not labels.frames:
        return Truth(None, sensors, None)
    name = sorted(labels.frames)[index % len(labels.frames)]
    folder = labels.folder(camera_folder)
    return Truth(Condition(labels.frames[name]), sensors, None if folder is None else folder / name)
