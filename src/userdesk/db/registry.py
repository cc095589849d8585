"""Imports every model so that Base.metadata knows all tables (for Alembic and tests)."""

from userdesk.access import models as access_models
from userdesk.activity import models as activity_models
from userdesk.audit import models as audit_models
from userdesk.auth import models as auth_models
from userdesk.churn import models as churn_models
from userdesk.dashboard import models as dashboard_models
from userdesk.db.base import Base
from userdesk.impersonation import models as impersonation_models
from userdesk.imports import models as import_models
from userdesk.invitations import models as invitation_models
from userdesk.jobs import models as job_models
from userdesk.mail import models as mail_models
from userdesk.organizations import models as organization_models
from userdesk.outreach import models as outreach_models
from userdesk.scim import models as scim_models
from userdesk.segments import models as segment_models
from userdesk.two_step import models as two_step_models
from userdesk.users import models as user_models
from userdesk.webhooks import models as webhook_models

metadata = Base.metadata

# Made by the migrations with raw SQL, not by the models: SQLite's FTS5 tables (and their
# shadow tables) and PostgreSQL's full-text indexes.
NOT_MODELED = ("users_fts", "users_words", "ix_users_search_")

__all__ = [
    "NOT_MODELED",
    "access_models",
    "activity_models",
    "audit_models",
    "auth_models",
    "churn_models",
    "dashboard_models",
    "impersonation_models",
    "import_models",
    "invitation_models",
    "job_models",
    "mail_models",
    "metadata",
    "organization_models",
    "outreach_models",
    "scim_models",
    "segment_models",
    "two_step_models",
    "user_models",
    "webhook_models",
]
