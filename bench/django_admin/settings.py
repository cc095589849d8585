"""Settings of the Django project the bench measures: what `startproject` gives, minus what
the admin's changelist does not use, over the SQLite file named by BENCH_DJANGO_DATABASE.

The SQLite connection gets the settings Userdesk gives its own (WAL, synchronous NORMAL,
a 64 MiB page cache) and is kept across requests, so that the two read the same way.
"""

from __future__ import annotations

import os

SECRET_KEY = "bench-only-not-secret"  # noqa: S105 - a local bench, never served
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "bench.django_admin.urls"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["BENCH_DJANGO_DATABASE"],
        "CONN_MAX_AGE": None,
        "OPTIONS": {
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536;"
            ),
        },
    }
}

# Only the bench's superuser has a password, and it never signs in with it (the test
# client's force_login): the cheapest hasher keeps creating it instant.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
