"""Teams, groups, roles and the permissions a role holds."""

from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from userdesk.access.rules import RoleScope
from userdesk.db.base import Base, Id, OrgScoped, Timestamped


class Team(OrgScoped, Timestamped, Base):
    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


class Group(OrgScoped, Timestamped, Base):
    __tablename__ = "groups"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # What the identity provider calls the group (SCIM externalId; migration 0028).
    external_id: Mapped[str | None] = mapped_column(String(255))


class Role(OrgScoped, Timestamped, Base):
    __tablename__ = "roles"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(500), default="")
    scope: Mapped[str] = mapped_column(String(16), default=RoleScope.ORGANIZATION.value)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)

    # Named: on PostgreSQL the foreign key holds organization_id too (db.base).
    permission_rows: Mapped[list[RolePermission]] = relationship(
        foreign_keys="RolePermission.role_id",
        lazy="selectin",
        cascade="all, delete-orphan",
        order_by="RolePermission.permission",
    )

    @property
    def permissions(self) -> list[str]:
        return [row.permission for row in self.permission_rows]


class RolePermission(OrgScoped, Base):
    __tablename__ = "role_permissions"

    role_id: Mapped[int] = mapped_column(
        Id, ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True
    )
    permission: Mapped[str] = mapped_column(String(64), primary_key=True)
