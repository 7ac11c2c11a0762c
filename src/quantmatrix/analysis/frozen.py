"""The base of every typed part of an analysis and a decision: frozen pydantic models.

Pydantic rather than frozen dataclasses because ``analysis.json`` is read back
(:func:`quantmatrix.analysis.model.read_analysis`): validation on load, ``extra="forbid"`` (a
misspelt or unknown key fails with its name) and the JSON dump come with the model.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer

JsonScalar = str | int | float | bool | None


class Frozen(BaseModel):
    """Immutable, and no field it does not declare."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def json_dict(self) -> dict[str, object]:
        """Plain JSON types, as ``analysis.json`` holds them (tuples become lists)."""
        return self.model_dump(mode="json", by_alias=True)


class Copied(Frozen):
    """A block copied from a log row, whose keys vary by backend: it dumps only the keys the row
    had (``analysis.json`` keeps the row's own shape), every declared key being optional."""

    @model_serializer(mode="wrap")
    def _only_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        data: dict[str, object] = handler(self)
        return {k: v for k, v in data.items() if k in self.model_fields_set}
