"""What the API takes and shows of the organization's user fields (users.fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from userdesk.users.models import UserField

FIELD_TYPES = ("text", "number", "boolean", "date", "choice", "choices", "email", "url")
# Who may see, or edit, a field's values: admins with users.read (users.update to edit)
# and API keys; the user too (on /me); nobody but an API key and the system.
AUDIENCES = ("admins", "self", "system")
REQUIRED_ON = ("invitation", "self")
KEY_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
LABEL_MAX = 100
OPTIONS_MAX = 200
OPTION_MAX = 100
PATTERN_MAX = 200


class FieldValidation(BaseModel):
    """Limits on a field's values: lengths (text), range (number, date: ISO dates),
    a regular expression the whole text matches (text; at most 200 characters)."""

    model_config = ConfigDict(extra="forbid")

    min_length: int | None = Field(default=None, ge=0, le=500)
    max_length: int | None = Field(default=None, ge=1, le=500)
    min: float | str | None = None
    max: float | str | None = None
    pattern: str | None = Field(default=None, max_length=PATTERN_MAX)


class UserFieldCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(
        json_schema_extra={"pattern": KEY_PATTERN},
        description=(
            "What the API, the query language (`plan:pro`) and exports call it: a lowercase "
            "slug, not a built-in filter's key; unique in the organization. Never changes."
        ),
    )
    label: str = Field(json_schema_extra={"maxLength": LABEL_MAX})
    type: str = Field(json_schema_extra={"enum": list(FIELD_TYPES)})
    options: list[str] | None = Field(
        default=None,
        json_schema_extra={"maxItems": OPTIONS_MAX},
        description="The choices of a `choice` or `choices` field.",
    )
    required_on: list[str] = Field(
        default=[], json_schema_extra={"items": {"enum": list(REQUIRED_ON)}}
    )
    visibility: str = Field(default="admins", json_schema_extra={"enum": list(AUDIENCES)})
    editable_by: str = Field(default="admins", json_schema_extra={"enum": list(AUDIENCES)})
    validation: FieldValidation = Field(default_factory=FieldValidation)
    searchable: bool = Field(
        default=False, strict=True, description="Free-text search covers it (text fields)."
    )
    position: int = Field(default=0, ge=0, le=10_000)


class UserFieldUpdate(BaseModel):
    """The settings to change; the key never changes. A new `type` (or fewer `options`)
    is refused with how many values would not convert, unless `drop_unconvertible`."""

    model_config = ConfigDict(extra="forbid")

    label: str | None = Field(default=None, json_schema_extra={"maxLength": LABEL_MAX})
    type: str | None = Field(default=None, json_schema_extra={"enum": list(FIELD_TYPES)})
    options: list[str] | None = Field(default=None, json_schema_extra={"maxItems": OPTIONS_MAX})
    required_on: list[str] | None = Field(
        default=None, json_schema_extra={"items": {"enum": list(REQUIRED_ON)}}
    )
    visibility: str | None = Field(default=None, json_schema_extra={"enum": list(AUDIENCES)})
    editable_by: str | None = Field(default=None, json_schema_extra={"enum": list(AUDIENCES)})
    validation: FieldValidation | None = None
    searchable: bool | None = Field(default=None, strict=True)
    position: int | None = Field(default=None, ge=0, le=10_000)
    drop_unconvertible: bool = Field(
        default=False,
        strict=True,
        description="With a new type or options: drop the values that do not fit.",
    )


class UserFieldRead(BaseModel):
    id: str
    key: str
    label: str
    type: str
    options: list[str] | None
    required_on: list[str]
    visibility: str
    editable_by: str
    validation: dict[str, Any]
    searchable: bool
    position: int
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, field: UserField) -> UserFieldRead:
        return cls(
            id=str(field.id),
            key=field.key,
            label=field.label,
            type=field.type,
            options=field.options,
            required_on=list(field.required_on or []),
            visibility=field.visibility,
            editable_by=field.editable_by,
            validation=dict(field.validation or {}),
            searchable=field.searchable,
            position=field.position,
            archived_at=field.archived_at,
            created_at=field.created_at,
            updated_at=field.updated_at,
        )


class UserFieldList(BaseModel):
    items: list[UserFieldRead]
