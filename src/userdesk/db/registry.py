"""Imports every model so that Base.metadata knows all tables (for Alembic and tests)."""

from userdesk.access import models as access_models
from userdesk.activity import models as activity_models
from userdesk.audit import models as audit_models
from userdesk.auth import models as auth_models
from userdesk.db.base import Base
from userdesk.mail import models as mail_models
from userdesk.organizations import models as organization_models
from userdesk.users import models as user_models

metadata = Base.metadata

__all__ = [
    "access_models",
    "activity_models",
    "audit_models",
    "auth_models",
    "mail_models",
    "metadata",
    "organization_models",
    "user_models",
]
