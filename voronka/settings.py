"""Voronka settings: one module, configured by VORONKA_* environment variables.

Every variable also accepts a ``*_FILE`` twin naming a file that holds the value
(for secrets mounted by an orchestrator).
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str | None = None) -> str | None:
    key = f"VORONKA_{name}"
    file_path = os.environ.get(f"{key}_FILE")
    if file_path:
        return Path(file_path).read_text().strip()
    return os.environ.get(key, default)


def env_bool(name: str, default: bool) -> bool:
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


VAR_DIR = Path(env("VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    configured = env("SECRET_KEY")
    if configured:
        return configured
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = [h.strip() for h in (env("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver") or "").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in (env("CSRF_TRUSTED_ORIGINS", "") or "").split(",") if o.strip()]
# how many reverse proxies stand in front (docs/deploy.md: nginx → 1): the client's address is then read from
# X-Forwarded-For (voronka/core/clientip.py) and HTTPS from X-Forwarded-Proto; 0: both headers are ignored
VORONKA_TRUSTED_PROXIES = int(env("TRUSTED_PROXIES", "0") or 0)
if VORONKA_TRUSTED_PROXIES:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "ninja",  # serves Swagger UI's files itself, so /api/v1/docs works offline
    "django_tasks",
    "django_tasks_db",
    "voronka.core",
    "voronka.identity",
    "voronka.customfields",
    "voronka.parties",
    "voronka.pipelines",
    "voronka.leads",
    "voronka.deals",
    "voronka.activities",
    "voronka.items",
    "voronka.links",
    "voronka.calendars",
    "voronka.automation",
    "voronka.distribution",
    "voronka.intake",
    "voronka.imports",
    "voronka.analytics",
    "voronka.api",
    "voronka.compat_b24",
    "voronka.ui",
    "voronka.benchsupport",
]

MIDDLEWARE = [
    "voronka.api.middleware.TokenApiStack",  # a token API call takes API_TOKEN_MIDDLEWARE instead of the list below
    "voronka.intake.middleware.FormDoorStack",  # a public form's request takes FORM_DOOR_MIDDLEWARE instead
    "voronka.core.config_cache.VersionsMiddleware",  # the settings/rights/token versions: read once per request
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # sessions, the session user and flash messages: skipped for API calls with a token (voronka/api/middleware.py)
    "voronka.api.middleware.ApiSessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "voronka.api.middleware.ApiAuthenticationMiddleware",
    "voronka.ui.middleware.UserTimeZoneMiddleware",
    "voronka.api.middleware.ApiMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

# The stack of an API call authenticated by a token (`/api/` with `Authorization: Bearer …` or `X-Api-Key`): no
# static files, session, CSRF cookie, session user, flash messages or htmx (voronka/api/middleware.py). A new
# middleware that API calls need goes into both lists.
API_TOKEN_MIDDLEWARE = [
    "voronka.core.config_cache.VersionsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "voronka.api.middleware.ApiLocaleMiddleware",  # LocaleMiddleware, its choice kept per cookie/Accept-Language
    "django.middleware.common.CommonMiddleware",
    "voronka.api.middleware.DefaultTimeZoneMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# The stack of a public web form's requests (`/f/…`: its page, submissions, CORS preflight, embed script): anonymous,
# CSRF-exempt and cookie-free, so no static files, session, CSRF cookie, session user, flash messages or htmx
# (voronka/intake/middleware.py); the rate limit and CORS are the view's. A new middleware the form door needs goes
# into both lists.
FORM_DOOR_MIDDLEWARE = [
    "voronka.core.config_cache.VersionsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "voronka.api.middleware.ApiLocaleMiddleware",  # LocaleMiddleware, its choice kept per cookie/Accept-Language
    "django.middleware.common.CommonMiddleware",
    "voronka.api.middleware.DefaultTimeZoneMiddleware",  # the default time zone, an anonymous request.user
    "django.middleware.clickjacking.XFrameOptionsMiddleware",  # the form's page is exempt; the rest keeps its header
]

ROOT_URLCONF = "voronka.urls"
WSGI_APPLICATION = "voronka.wsgi.application"
AUTH_USER_MODEL = "identity.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "voronka" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]


def _database() -> dict:
    url = env("DATABASE_URL")
    if url:
        import dj_database_url

        db = dj_database_url.parse(url, conn_max_age=int(env("CONN_MAX_AGE", "600") or 600), conn_health_checks=True)
        return db
    return {
        "ENGINE": "voronka.core.db_sqlite",  # Django's backend with a prompt cross-process write-lock hand-over
        "NAME": str(VAR_DIR / "voronka.sqlite3"),
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                "PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY; PRAGMA mmap_size=268435456;"
            ),
        },
        "CONN_MAX_AGE": int(env("CONN_MAX_AGE", "600") or 600),
        "TEST": {"NAME": env("TEST_SQLITE_NAME")},
    }


DATABASES = {"default": _database()}
# PostgreSQL: the hot path's own statements (a create's INSERTs, the versions and token reads) are prepared once per
# connection (voronka/core/bound.py). Behind PgBouncer in transaction mode older than 1.21 (or with
# max_prepared_statements = 0) set VORONKA_PG_PREPARE=0.
VORONKA_PG_PREPARE = env_bool("PG_PREPARE", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TASKS = {
    "default": {
        "BACKEND": env("TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": [],
    }
}

AUTHENTICATION_BACKENDS = ["voronka.identity.auth.RateLimitedBackend"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = env("LANGUAGE", "ru") or "ru"
LANGUAGES = [("ru", _("Russian")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "voronka" / "locale"]
TIME_ZONE = env("TIME_ZONE", "Europe/Moscow") or "Europe/Moscow"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
# Serve app static files straight from the packages too, so a fresh checkout works before collectstatic.
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(VAR_DIR / "media")}},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
SESSION_COOKIE_AGE = int(env("SESSION_AGE", str(12 * 3600)) or 43200)

# Domain defaults
VORONKA_DEFAULT_REGION = env("PHONE_REGION", "RU") or "RU"
VORONKA_DEFAULT_CURRENCY = env("CURRENCY", "RUB") or "RUB"
VORONKA_API_PAGE_MAX = 500
VORONKA_BULK_MAX = 500
# Listing more rows than this through the API, page after page, counts as an export (needs the right).
VORONKA_EXPORT_THRESHOLD = int(env("EXPORT_THRESHOLD", "2000") or 2000)

# Intake (docs/intake.md)
VORONKA_DUPLICATE_NAME_THRESHOLD = int(env("DUPLICATE_NAME_THRESHOLD", "88") or 88)  # rapidfuzz score, 0..100
VORONKA_INTAKE_DUPLICATE_POLICY = env("INTAKE_DUPLICATE_POLICY", "attach") or "attach"  # merge | attach | flag
VORONKA_FORM_RATE_LIMIT = int(env("FORM_RATE_LIMIT", "10") or 10)  # submissions per address per minute
VORONKA_INTAKE_BATCH = int(env("INTAKE_BATCH", "200") or 200)  # queued web-form payloads a worker claims at a time
VORONKA_CALLBACK_MINUTES = int(env("CALLBACK_MINUTES", "15") or 15)  # deadline of a missed call's call-back task
VORONKA_SMTPD = env("SMTPD", "") or ""  # host:port of the built-in SMTP endpoint (`voronka mail-smtpd`); empty: off
VORONKA_MAIL_MAX_BYTES = int(env("MAIL_MAX_BYTES", str(25 * 1024 * 1024)) or 25 * 1024 * 1024)  # one message

EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")

# Deliver outbox events in the web process right after commit (besides the worker's sweep). Off by default:
# the consumers (automation) only plan work the worker does anyway, so delivering in the request would add
# four queries to every write and gain no latency.
# Bitrix24-compatible API: plain HTTP is accepted from loopback always, from elsewhere only with this flag
VORONKA_B24_ALLOW_HTTP = env("B24_ALLOW_HTTP", "0") == "1"
VORONKA_B24_EVENT_MAX_ATTEMPTS = int(env("B24_EVENT_MAX_ATTEMPTS", "8") or 8)
# event handlers on loopback or private addresses (the server would post into its own network): off by default
VORONKA_B24_EVENT_PRIVATE_HANDLERS = env("B24_EVENT_PRIVATE_HANDLERS", "0") == "1"
VORONKA_OUTBOX_DISPATCH_ON_COMMIT = env("OUTBOX_DISPATCH_ON_COMMIT", "0") == "1"

# Automation (docs/automation.md): how many rule-caused hops a chain may make, how long a worker's claim on a run
# lasts, how often an external effect is tried, the SMS provider (a class with send(phone, text, key)).
VORONKA_AUTOMATION_MAX_DEPTH = int(env("AUTOMATION_MAX_DEPTH", "5") or 5)
VORONKA_AUTOMATION_LEASE_SECONDS = int(env("AUTOMATION_LEASE_SECONDS", "300") or 300)
VORONKA_AUTOMATION_MAX_ATTEMPTS = int(env("AUTOMATION_MAX_ATTEMPTS", "5") or 5)
VORONKA_AUTOMATION_BACKOFF_SECONDS = int(env("AUTOMATION_BACKOFF_SECONDS", "30") or 30)
VORONKA_SMS_PROVIDER = env("SMS_PROVIDER", "voronka.automation.effects.LogSmsProvider")
# The address clients reach this installation at (tracking pixels and links in robots' e-mails, trigger URLs).
VORONKA_PUBLIC_URL = env("PUBLIC_URL", "http://localhost:8000") or "http://localhost:8000"
VORONKA_EMAIL_TRACKING = env_bool("EMAIL_TRACKING", True)
# SMS.ru (VORONKA_SMS_PROVIDER=voronka.automation.sms.SmsRuProvider): the API key, the sender name, the base URL.
VORONKA_SMSRU_API_ID = env("SMSRU_API_ID", "")
VORONKA_SMSRU_SENDER = env("SMSRU_SENDER", "")
VORONKA_SMSRU_URL = env("SMSRU_URL", "https://sms.ru") or "https://sms.ru"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "WARNING")},
}

TESTING = env_bool("TESTING", False) or "pytest" in sys.modules
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
