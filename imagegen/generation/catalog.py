"""The model catalog: the models a deployment serves, by name (`IMAGEGEN_MODELS`).

    models:
      sd15:  {source: /models/sd15}
      sdxl:  {source: stabilityai/stable-diffusion-xl-base-1.0, revision: 462165984030d82259a11f4367a4eed129e94a7b,
              tiny_vae: /models/taesdxl}
      flux-schnell: {source: /models/flux-schnell, tiny_vae: /models/taef1}

A job names one (`model: sdxl`); a job that names none gets the deployment's default,
`IMAGEGEN_MODEL`: the catalog entry of that name, or else an entry of its own, named
`default`, from `IMAGEGEN_MODEL`, `IMAGEGEN_MODEL_REVISION` and `IMAGEGEN_TINY_VAE`. A
`source` is a model folder (absolute, or relative to the catalog file) or a hub id
(`owner/name`, read from the hub's cache where the weights are baked); `tiny_vae` is a local
folder only (the TAESD of the model's family, docs/models.md), never fetched at run time.

Read once per process (`Services.models`), checked as the app starts: a bad catalog stops
the start with the file, the field, the rule and the value.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from imagegen.core.documents import load_document
from imagegen.core.field_errors import fail, field_errors, show_value
from imagegen.core.settings import Settings
from imagegen.core.types import FieldError, JobValidationError
from imagegen.generation.families import HUB_ID, TINY_MODEL_ID

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")  # as job names: they travel in messages and URLs
DEFAULT_NAME = "default"  # the entry made from IMAGEGEN_MODEL when it names no catalog entry
SETTING = "IMAGEGEN_MODELS"


class CatalogEntry(BaseModel):
    """One model: where its weights are and which revision; its tiny VAE, if any."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(description="A model folder, or a hub id `owner/name`")
    revision: str | None = Field(None, description="A hub revision (commit, branch or tag); a folder has none")
    tiny_vae: str | None = Field(None, description="A local folder with the tiny VAE that fits the model's family")

    @property
    def has_tiny_vae(self) -> bool:
        """Whether jobs may ask for `speedups.tiny_vae`: the built-in tiny model has its own."""
        return self.tiny_vae is not None or self.source == TINY_MODEL_ID

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if not value.strip():
            raise fail("empty", "`{path}` must name a model folder or a hub id `owner/name`, got ''")
        return value


class Catalog(BaseModel):
    """The catalog file: `models`, by name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: dict[str, CatalogEntry] = Field(min_length=1)

    @field_validator("models")
    @classmethod
    def _names(cls, value: dict[str, CatalogEntry]) -> dict[str, CatalogEntry]:
        for name in value:
            if not NAME_PATTERN.fullmatch(name):
                raise fail("model_name", f"`{{path}}` names model {show_value(name)}; a name may use only a-z, 0-9, "
                           "'-', '_' and '.', starting with a letter or digit, at most 64 characters")
        return value


class Models(BaseModel):
    """The deployment's models: every entry by name, and the default's name."""

    model_config = ConfigDict(frozen=True)

    entries: dict[str, CatalogEntry]
    default: str

    def names(self) -> list[str]:
        return list(self.entries)

    def entry(self, name: str | None, *, path: str = "model") -> tuple[str, CatalogEntry]:
        """The entry `name` (None: the default) and its name; JobValidationError at `path`
        that lists the names when there is no such entry."""
        name = name or self.default
        if name not in self.entries:
            names = ", ".join(f"`{known}`" for known in self.entries)
            raise JobValidationError([FieldError(
                path=path, rule="unknown_model",
                message=f"`{path}` must name one of this deployment's models ({names}; GET /api/models), "
                        f"got {show_value(name)}")])
        return name, self.entries[name]


def read_catalog(path: str) -> Catalog:
    """The catalog file at `path`, checked; ValueError names the setting, file, field and rule."""
    file = Path(path)
    where = f"setting `{SETTING}` file {path!r}"
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise ValueError(f"{where} cannot be read: {error.strerror or error}") from None
    try:
        data = load_document(text, filename=file.name)
        return Catalog.model_validate(data)
    except JobValidationError as error:
        raise ValueError(f"{where}: {error}") from None
    except ValidationError as error:
        problems = "; ".join(problem.message for problem in field_errors(error, Catalog))
        raise ValueError(f"{where}: {problems}") from None


def resolve_entry(name: str, entry: CatalogEntry, folder: Path) -> CatalogEntry:
    """The entry with relative folders made absolute against the catalog's own folder; a
    source that is no folder must be a hub id, and a tiny VAE must be a folder."""
    where = f"setting `{SETTING}`: `models.{name}"  # the field's name and its closing backtick follow
    source = entry.source
    if source != TINY_MODEL_ID:
        candidate = Path(source) if Path(source).is_absolute() else folder / source
        if candidate.is_dir():
            source = str(candidate)
        elif not HUB_ID.fullmatch(source):
            raise ValueError(f"{where}.source` must be a model folder or a hub id `owner/name`, got "
                             f"{show_value(entry.source)}, which is neither")
    tiny_vae = entry.tiny_vae
    if tiny_vae is not None:
        candidate = Path(tiny_vae) if Path(tiny_vae).is_absolute() else folder / tiny_vae
        if not candidate.is_dir():
            raise ValueError(f"{where}.tiny_vae` must be a local folder (tiny VAEs are never downloaded at run "
                             f"time), got {show_value(tiny_vae)}, which is not one")
        tiny_vae = str(candidate)
    return entry.model_copy(update={"source": source, "tiny_vae": tiny_vae})


def deployment_models(settings: Settings) -> Models:
    """The catalog of `IMAGEGEN_MODELS` (if set) and the default model `IMAGEGEN_MODEL`."""
    entries: dict[str, CatalogEntry] = {}
    if settings.models:
        catalog = read_catalog(settings.models)
        folder = Path(settings.models).resolve().parent
        entries = {name: resolve_entry(name, entry, folder) for name, entry in catalog.models.items()}
    if settings.model in entries:
        return Models(entries=entries, default=settings.model)
    if DEFAULT_NAME in entries:
        raise ValueError(f"setting `{SETTING}`: `models.{DEFAULT_NAME}` is the name of the entry made from "
                         f"`IMAGEGEN_MODEL` ({settings.model!r}, not a catalog name); rename the entry, or set "
                         f"`IMAGEGEN_MODEL` to `{DEFAULT_NAME}`")
    default = CatalogEntry(source=settings.model, revision=settings.model_revision, tiny_vae=settings.tiny_vae)
    return Models(entries={DEFAULT_NAME: default, **entries}, default=DEFAULT_NAME)
