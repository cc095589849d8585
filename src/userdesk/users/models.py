"""The user table and its links to groups and roles."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    FetchedValue,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from userdesk.db.base import Base, Id, OrgScoped, Timestamped, UTCDateTime, utcnow
from userdesk.users.rules import UserStatus, display_name

if TYPE_CHECKING:
    from userdesk.access.models import Group, Role, Team


SEARCH_TEXT_SQL = "first_name || ' ' || last_name || ' ' || email"
# A list of ids: PostgreSQL's bigint[] (its operators && and @> test it), SQLite's JSON.
ROLE_IDS = JSON().with_variant(ARRAY(BigInteger()), "postgresql")
# The custom fields' values: PostgreSQL's jsonb, SQLite's JSON.
ATTRIBUTES = JSON().with_variant(JSONB(), "postgresql")
# How a person's pages are colored (chosen on /me): as their system says, light or dark.
COLOR_SCHEMES = ("system", "light", "dark")


class User(OrgScoped, Timestamped, Base):
    __tablename__ = "users"
    organization_indexed = False
    __table_args__ = (
        UniqueConstraint("organization_id", "email_normalized"),
        # One index per sort, with and without the status the list is usually filtered by.
        # The sorts by name and by created time hold the times and flags filters test, so
        # that a page read along them tests an entry before reading its row (0040).
        Index(
            "ix_users_org_name",
            *("organization_id", "first_name", "last_name", "id", "last_seen_at", "created_at"),
            *("last_login_at", "validated_at", "email_verified_at", "team_id"),
        ),
        Index(
            "ix_users_org_status_name", "organization_id", "status", "first_name", "last_name", "id"
        ),
        Index("ix_users_org_status_email", "organization_id", "status", "email_normalized"),
        Index(
            "ix_users_org_created",
            *("organization_id", "created_at", "id", "last_seen_at", "last_login_at"),
            *("validated_at", "email_verified_at", "team_id"),
        ),
        Index("ix_users_org_status_created", "organization_id", "status", "created_at", "id"),
        # With the flags login:never and validated:no test, so that a page by last seen
        # tests them on the index entry, not the row (migration 0026).
        Index(
            "ix_users_org_last_seen",
            *("organization_id", "last_seen_at", "id", "last_login_at", "validated_at"),
        ),
        Index("ix_users_org_status_last_seen", "organization_id", "status", "last_seen_at", "id"),
        # login:never by last seen, in that order from the index, validated:no tested on
        # the entry (migration 0038).
        Index(
            "ix_users_org_last_login",
            *("organization_id", "last_login_at", "last_seen_at", "id", "validated_at"),
        ),
        # The counts of the list's tabs, read from the index alone (migration 0021).
        Index("ix_users_org_status_login", "organization_id", "status", "last_login_at"),
        # A user found by id with what those counts need, the row left unread: a count on a
        # custom field finds its matches so (migration 0036).
        Index("ix_users_tally", "id", "organization_id", "status", "last_login_at"),
        Index("ix_users_org_churn", "organization_id", "churn_level"),
        # The list sorted by risk (sort=churn / -churn).
        Index("ix_users_org_churn_probability", "organization_id", "churn_probability", "id"),
        Index("ix_users_status_until", "status", "status_until"),  # bans that run out
        # A team is one organization's: the team leads, for team filters in the usual sorts.
        Index("ix_users_team_name", "team_id", "first_name", "last_name", "id"),
        Index("ix_users_team_last_seen", "team_id", "last_seen_at", "id"),
        # SCIM's externalId, filterable per organization (migration 0028).
        Index(
            "ix_users_org_external_id",
            "organization_id",
            "external_id",
            sqlite_where=text("external_id IS NOT NULL"),
            postgresql_where=text("external_id IS NOT NULL"),
        ),
        # Free-text search over search_text is indexed by the migrations, per database:
        # SQLite's FTS5 tables users_fts and users_words, PostgreSQL's GIN indexes
        # ix_users_search_trgm and ix_users_search_words.
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    email_normalized: Mapped[str] = mapped_column(String(254))
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(16), default=UserStatus.PENDING.value)
    status_reason: Mapped[str | None] = mapped_column(String(500))
    status_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status_changed_by_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("users.id", ondelete="SET NULL")
    )
    previous_status: Mapped[str | None] = mapped_column(String(16))
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    validated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    team_id: Mapped[int | None] = mapped_column(Id, ForeignKey("teams.id", ondelete="SET NULL"))
    created_via: Mapped[str] = mapped_column(String(32), default="admin")
    churn_level: Mapped[str | None] = mapped_column(String(8))  # low | medium | high
    # The probability behind the level (0 to 1, to 3 decimals), written with it by scoring.
    churn_probability: Mapped[float | None] = mapped_column(Float)
    # A support agent's own business hours (availability.rules); None: the organization's.
    business_hours: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # A new address waiting for its owner to confirm it; the email changes only then.
    pending_email: Mapped[str | None] = mapped_column(String(254))
    # What free text is matched against: "first last email", kept by the database.
    search_text: Mapped[str] = mapped_column(
        Text, Computed(SEARCH_TEXT_SQL, persisted=True), deferred=True
    )
    # The user's role ids in increasing order, as user_roles has them: written by the
    # database alone (migration 0025's triggers on user_roles), never by the ORM. On
    # PostgreSQL the Users list's covering indexes hold it, so that a page with a role
    # filter tests it from its sort's index alone (userdesk.query.builder).
    role_ids: Mapped[list[int]] = mapped_column(
        ROLE_IDS, server_default=FetchedValue(), deferred=True
    )
    # One of COLOR_SCHEMES (migration 0027); the base template applies it, a display
    # preference of the person's own (not bumping version: it is no change of the user's).
    color_scheme: Mapped[str] = mapped_column(
        String(8),
        CheckConstraint(
            "color_scheme IN (" + ", ".join(f"'{s}'" for s in COLOR_SCHEMES) + ")",
            name="color_scheme",
        ),
        default="system",
        server_default="system",
    )
    # The custom fields (their keys) a person shows as extra columns of the Users list,
    # a display preference of their own like color_scheme (migration 0032; segments.columns).
    list_columns: Mapped[list[str] | None] = mapped_column(JSON, deferred=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    # What the identity provider calls the user (SCIM externalId), kept as it sent it.
    external_id: Mapped[str | None] = mapped_column(String(255))
    # The organization's own fields (users.fields), {key: value}: what reads show, as
    # users.attributes writes it with the index rows of user_field_values (migration 0029).
    attributes: Mapped[dict[str, Any] | None] = mapped_column(ATTRIBUTES)
    # Bumped by every change an admin makes (not by sign-ins): the ETag for If-Match.
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    # Links are written as UserGroup / UserRole rows (they carry organization_id); these
    # relationships only read them. Each names its join: on PostgreSQL a foreign key holds
    # organization_id too (db.base.distribute_keys), which is no column to relate on.
    team: Mapped[Team | None] = relationship(lazy="raise", foreign_keys=[team_id])
    groups: Mapped[list[Group]] = relationship(
        secondary="user_groups",
        primaryjoin="User.id == UserGroup.user_id",
        secondaryjoin="Group.id == UserGroup.group_id",
        lazy="raise",
        order_by="Group.name",
        viewonly=True,
    )
    roles: Mapped[list[Role]] = relationship(
        secondary="user_roles",
        primaryjoin="User.id == UserRole.user_id",
        secondaryjoin="Role.id == UserRole.role_id",
        lazy="raise",
        order_by="Role.name",
        viewonly=True,
    )

    @property
    def name(self) -> str:
        return display_name(self.first_name, self.last_name, self.email)

    @property
    def status_enum(self) -> UserStatus:
        return UserStatus(self.status)


class UserGroup(OrgScoped, Base):
    __tablename__ = "user_groups"
    # A group's users, from the index alone (group filters: see userdesk.query.builder).
    __table_args__ = (Index("ix_user_groups_group_user", "group_id", "user_id"),)

    user_id: Mapped[int] = mapped_column(
        Id, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[int] = mapped_column(
        Id, ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )


class UserRole(OrgScoped, Base):
    __tablename__ = "user_roles"
    # A role's users, from the index alone (role filters: see userdesk.query.builder).
    __table_args__ = (Index("ix_user_roles_role_user", "role_id", "user_id"),)

    user_id: Mapped[int] = mapped_column(
        Id, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role_id: Mapped[int] = mapped_column(
        Id, ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True
    )


class UserField(OrgScoped, Timestamped, Base):
    """A field of the organization's user profile schema (users.fields)."""

    __tablename__ = "user_fields"
    # A key is unique in its organization while the field exists (archived included).
    __table_args__ = (UniqueConstraint("organization_id", "key"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    key: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(16))
    options: Mapped[list[str] | None] = mapped_column(JSON)
    required_on: Mapped[list[str]] = mapped_column(JSON, default=list)
    visibility: Mapped[str] = mapped_column(String(8), default="admins")
    editable_by: Mapped[str] = mapped_column(String(8), default="admins")
    validation: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    searchable: Mapped[bool] = mapped_column(Boolean, default=False)
    position: Mapped[int] = mapped_column(Integer, default=0)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class UserFieldValue(OrgScoped, Base):
    """One value of a user's custom field, as the query language looks it up: text
    (case-folded), a number (booleans 0 and 1) or a date; a field of several choices has
    a row per choice. Written only with users.attributes (users.attributes.write)."""

    __tablename__ = "user_field_values"
    organization_indexed = False  # its rows are found by field or by user
    __table_args__ = (
        Index("ix_user_field_values_text", "field_id", "text_value", "user_id"),
        Index("ix_user_field_values_number", "field_id", "number_value", "user_id"),
        Index("ix_user_field_values_date", "field_id", "date_value", "user_id"),
        Index("ix_user_field_values_user", "user_id"),
        # A field's values by user: a block of ids, or one user, whatever the comparison
        # (migration 0036).
        Index(
            "ix_user_field_values_field_user",
            *("field_id", "user_id", "text_value", "number_value", "date_value"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    field_id: Mapped[int] = mapped_column(Id, ForeignKey("user_fields.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(Id, ForeignKey("users.id", ondelete="CASCADE"))
    text_value: Mapped[str | None] = mapped_column(String(500))
    number_value: Mapped[float | None] = mapped_column(Float)
    date_value: Mapped[date | None] = mapped_column(Date)
