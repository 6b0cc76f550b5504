"""Partial updates: a field left out keeps its value; ``null`` is refused, because no
stored field may become nothing (a null list or URL would break every later read)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


def _without_null(schema: dict[str, Any]) -> None:
    """The JSON schema says what is accepted: each property's type without ``null``."""
    for prop in schema.get("properties", {}).values():
        options = prop.get("anyOf")
        if options is not None:
            kept = [o for o in options if o != {"type": "null"}]
            del prop["anyOf"]
            if len(kept) == 1:
                prop.update(kept[0])
            else:
                prop["anyOf"] = kept
        if prop.get("default", 0) is None:
            del prop["default"]


class Patch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_without_null)

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null (leave the field out to keep its value)")
        return value
