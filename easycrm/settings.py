"""Easy CRM settings: one module, configured through environment variables.

Every setting has a safe embedded default (SQLite, local files, django-q2 ORM broker), so the
app runs with nothing but Python. `.env.example` lists every variable.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (see .env.example).")
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"  # noqa: S105 - DEBUG only

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_q",
    "django_htmx",
    "template_partials",
    "llm",
    "leads",
    "processing",
    "chatbot",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "easycrm.middleware.SecurityHeadersMiddleware",
    "easycrm.middleware.RequestSizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "easycrm.middleware.HtmxLoginRedirectMiddleware",
]

ROOT_URLCONF = "easycrm.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "processing.health.worker_warning_context",
            ],
            "builtins": ["template_partials.templatetags.partials"],
        },
    },
]

WSGI_APPLICATION = "easycrm.wsgi.application"

# --- Database -------------------------------------------------------------------------------
# SQLite needs WAL + IMMEDIATE transactions + a generous timeout to survive the worker processes
# writing concurrently (measured: the defaults lose acks and run tasks twice).
DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "var")))
DATA_DIR.mkdir(parents=True, exist_ok=True)
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'easycrm.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not shared-cache memory: tests run batches in threads, which shared-cache SQLite
    # answers with "table is locked" instead of waiting.
    DATABASES["default"]["TEST"] = {"NAME": env_str("SQLITE_TEST_NAME", str(DATA_DIR / "test.sqlite3"))}
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env_int("CONN_MAX_AGE", 60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache / broker -------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    # django-q2's monitoring needs a cache shared between processes: the database cache is one.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "easycrm_cache",
        }
    }

DEEPSEEK_CONCURRENCY = env_int("DEEPSEEK_CONCURRENCY", 5)
TASK_TIMEOUT = env_int("TASK_TIMEOUT", 900)

Q_CLUSTER = {
    "name": "easycrm",
    "workers": env_int("Q_WORKERS", 2),
    "timeout": TASK_TIMEOUT,
    # retry must exceed timeout, and a bounded number of attempts: the defaults retry forever.
    "retry": TASK_TIMEOUT + 60,
    "max_attempts": 3,
    "ack_failures": True,
    # Successful tasks are not kept (the batch rows are the record): with a limit, every result's save
    # locks and loads all kept rows to prune one — 14 ms CPU per task at 1,000, 1,000 tasks an import.
    "save_limit": -1,
    "catch_up": False,
    "poll": 0.2,
    "label": "Task queue",
    "sync": env_bool("Q_SYNC", False),
    # Batch standardization runs on its own cluster, one worker per allowed DeepSeek call:
    # Q_CLUSTER_NAME=deepseek python manage.py qcluster
    "ALT_CLUSTERS": {"deepseek": {"workers": DEEPSEEK_CONCURRENCY}},
}
# Broker: Amazon SQS when SQS_REGION is set (one queue per cluster, named after it: `easycrm` and
# `deepseek`, created if missing), else Redis when REDIS_URL is set, else the database (ORM broker).
# Credentials come from the usual AWS chain (instance role, AWS_* variables) unless SQS_ACCESS_KEY_ID
# is set; AWS_ENDPOINT_URL_SQS (read by boto3 itself) points it at an emulator.
SQS_REGION = env_str("SQS_REGION")
if SQS_REGION:
    Q_CLUSTER["sqs"] = {"aws_region": SQS_REGION}
    if env_str("SQS_ACCESS_KEY_ID"):
        Q_CLUSTER["sqs"]["aws_access_key_id"] = env_str("SQS_ACCESS_KEY_ID")
        Q_CLUSTER["sqs"]["aws_secret_access_key"] = env_str("SQS_SECRET_ACCESS_KEY")
    # Long polling: fewer empty receives (each is billed), at most this long to notice a new task.
    Q_CLUSTER["sqs"]["receive_message_wait_time_seconds"] = env_int("SQS_WAIT_SECONDS", 10)
elif REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Files ----------------------------------------------------------------------------------
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(DATA_DIR / "media")))
MEDIA_URL = "/media/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]

AWS_STORAGE_BUCKET_NAME = env_str("S3_BUCKET")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
if AWS_STORAGE_BUCKET_NAME:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env_str("S3_ENDPOINT_URL") or None,
            "access_key": env_str("S3_ACCESS_KEY_ID") or None,
            "secret_key": env_str("S3_SECRET_ACCESS_KEY") or None,
            "region_name": env_str("S3_REGION") or None,
            "addressing_style": env_str("S3_ADDRESSING_STYLE") or None,
            "default_acl": None,
            "file_overwrite": False,
            "querystring_auth": True,
            "signature_version": "s3v4",
        },
    }

MAX_UPLOAD_MB = env_int("MAX_UPLOAD_MB", 25)
# One upload may carry this many files, each up to MAX_UPLOAD_MB; a request body may therefore be
# MAX_UPLOAD_MB × MAX_UPLOAD_FILES (RequestSizeLimitMiddleware, docs/importing.md) unless set lower.
MAX_UPLOAD_FILES = env_int("MAX_UPLOAD_FILES", 20)
MAX_UPLOAD_REQUEST_MB = env_int("MAX_UPLOAD_REQUEST_MB", MAX_UPLOAD_MB * MAX_UPLOAD_FILES)
# With S3 storage the browser sends files straight to the bucket with a presigned POST
# (processing/direct_upload.py); the bucket needs CORS for this site (docs/deployment.md).
S3_DIRECT_UPLOAD = bool(AWS_STORAGE_BUCKET_NAME) and env_bool("S3_DIRECT_UPLOAD", True)
# How long a presigned POST may be started after it was issued.
S3_DIRECT_UPLOAD_EXPIRY_SECONDS = env_int("S3_DIRECT_UPLOAD_EXPIRY_SECONDS", 300)
MAX_IMPORT_ROWS = env_int("MAX_IMPORT_ROWS", 200_000)
# A file that could not be read is deleted from storage unless this is set (to look at it later).
KEEP_REJECTED_UPLOADS = env_bool("KEEP_REJECTED_UPLOADS", False)
# What one row of an uploaded file may carry; a file with a bigger row is refused (processing.parsing).
MAX_CELLS_PER_ROW = env_int("MAX_CELLS_PER_ROW", 1000)
MAX_CELL_CHARS = env_int("MAX_CELL_CHARS", 32_767)  # Excel's own limit for one cell
MAX_ROW_BYTES = env_int("MAX_ROW_BYTES", 128 * 1024)
# Files are read in a child process with this much address space and CPU time (processing.reader).
READER_MEMORY_MB = env_int("READER_MEMORY_MB", 2048)
READER_CPU_SECONDS = env_int("READER_CPU_SECONDS", 300)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# --- Lead processing ------------------------------------------------------------------------
LEAD_BATCH_SIZE = env_int("LEAD_BATCH_SIZE", 10)
# Offline (no model call), a worker stores up to this many queued batches of one import in one
# transaction with set-based SQL; batches stay the unit of progress (see docs/pipeline.md).
STORE_CHUNK_BATCHES = env_int("STORE_CHUNK_BATCHES", 200)
# When a web upload stops for a person to check the mapping and preview before any lead is written:
# always | when_unsure (unless every column was recognized with confidence or a saved mapping applies) |
# never. `import_leads` never stops (its --review prints the review instead). See docs/importing.md.
IMPORT_REVIEW = env_str("IMPORT_REVIEW", "always")
# A job left waiting for its review is discarded, with its stored file, this long after it was
# uploaded (by the sweeper, processing.review.reviews_expire).
IMPORT_REVIEW_EXPIRE_HOURS = env_int("IMPORT_REVIEW_EXPIRE_HOURS", 7 * 24)
# The review's "what will happen" counts run the real upsert (rolled back) over this many rows at most.
REVIEW_COUNT_ROWS = env_int("REVIEW_COUNT_ROWS", 5000)
# A row without an email updates the lead with its phone, or with its first + last name + company.
DEDUPE_WITHOUT_EMAIL = env_bool("DEDUPE_WITHOUT_EMAIL", True)
# Processes `import_leads` standardizes and stores with in offline mode (1: in its own process).
IMPORT_PROCESSES = env_int("IMPORT_PROCESSES", os.cpu_count() or 1)
DEFAULT_PHONE_REGION = env_str("DEFAULT_PHONE_REGION", "US")
# How long the lead table's total of a filter is reused, in seconds (leads/counts.py; 0: count every time).
LEAD_TOTAL_CACHE_SECONDS = env_int("LEAD_TOTAL_CACHE_SECONDS", 10)
# The stages of working a lead, in order; the first is what a new lead gets (leads.models.Lead.status).
LEAD_STATUSES = env_list("LEAD_STATUSES", "new,contacted,qualified,unqualified")
ENVIRONMENT = env_str("ENVIRONMENT", "development" if DEBUG else "production")
DEEPSEEK_API_KEY = env_str("DEEPSEEK_API_KEY")
DEEPSEEK_BASE_URL = env_str("DEEPSEEK_BASE_URL", "https://api.deepseek.com").rstrip("/")
DEEPSEEK_MODEL = env_str("DEEPSEEK_MODEL", "deepseek-flash")
DEEPSEEK_MAX_ATTEMPTS = env_int("DEEPSEEK_MAX_ATTEMPTS", 3)
DEEPSEEK_CONNECT_TIMEOUT = float(env_str("DEEPSEEK_CONNECT_TIMEOUT", "5"))
DEEPSEEK_READ_TIMEOUT = float(env_str("DEEPSEEK_READ_TIMEOUT", "120"))
# Base delay of the exponential backoff between attempts (seconds); tests shrink it.
DEEPSEEK_BACKOFF_SECONDS = float(env_str("DEEPSEEK_BACKOFF_SECONDS", "2"))
# rows: every batch goes to the model. columns: the model says once per sheet what its columns hold,
# rows are standardized with those roles, and only doubtful rows go to the model (README).
DEEPSEEK_MODE = env_str("DEEPSEEK_MODE", "rows").lower()
if DEEPSEEK_MODE not in ("rows", "columns"):
    raise ImproperlyConfigured(f"DEEPSEEK_MODE must be rows or columns, not {DEEPSEEK_MODE!r}.")
# A worker renews the lease of the batches it holds every BATCH_HEARTBEAT_SECONDS; a batch whose worker
# died is taken up again once its lease has run out (the sweeper looks every minute).
BATCH_LEASE_SECONDS = env_int("BATCH_LEASE_SECONDS", 45)
BATCH_HEARTBEAT_SECONDS = float(env_str("BATCH_HEARTBEAT_SECONDS", "15"))
# When no batch runs and none started or finished for this long, queued batches get fresh tasks (their
# broker messages were lost with a killed cluster).
STALLED_JOB_SECONDS = env_int("STALLED_JOB_SECONDS", 30)

# --- Auth / i18n ----------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# ModelBackend with a user's own and group permissions read in one query (easycrm/auth.py).
AUTHENTICATION_BACKENDS = ["easycrm.auth.PermissionsInOneQueryBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "leads:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
# easycrm/formats/en/formats.py: every date as 2026-12-01 14:05 UTC, whatever the template.
FORMAT_MODULE_PATH = ["easycrm.formats"]
# Dates are stored in UTC and shown in this zone, with its name next to them (e.g. Europe/Berlin).
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Also Django's defaults, stated because docs/deployment.md promises them: no Referer to other sites,
# and no window of another site keeps a handle on ours.
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Content-Security-Policy (easycrm.middleware.SecurityHeadersMiddleware): scripts, styles, images and
# requests only from this origin — no inline script, event handler or style attribute, no eval (htmx
# runs with allowEval off: templates/base.html). The shape of Django 6's SECURE_CSP, so the upgrade
# swaps the middleware and keeps this. The admin (Django 5.2) needs nothing more.
SECURE_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


def s3_upload_origins(options: dict) -> list[str]:
    """The origins boto3's presigned POST for the bucket goes to (processing/direct_upload.py)."""
    bucket, region, style = options["bucket_name"], options["region_name"], options["addressing_style"]
    if options["endpoint_url"]:
        # Another endpoint: path style unless "virtual", and boto3 keeps the path for an IP address.
        parts = urlsplit(options["endpoint_url"])
        hosts = [f"{bucket}.{parts.netloc}", parts.netloc] if style == "virtual" else [parts.netloc]
        return [f"{parts.scheme}://{host}" for host in hosts]
    prefix = "" if style == "path" else f"{bucket}."
    hosts = [f"{prefix}s3.amazonaws.com"] + ([f"{prefix}s3.{region}.amazonaws.com"] if region else [])
    return [f"https://{host}" for host in hosts]


if S3_DIRECT_UPLOAD:
    _S3_ORIGINS = env_list("S3_UPLOAD_ORIGINS") or s3_upload_origins(STORAGES["default"]["OPTIONS"])
    SECURE_CSP["connect-src"] = ["'self'", *_S3_ORIGINS]
    SECURE_CSP["form-action"] = ["'self'", *_S3_ORIGINS]
# Browser features no page of ours uses, switched off for the page and anything it embeds.
PERMISSIONS_POLICY = {
    feature: []
    for feature in (
        "camera",
        "microphone",
        "geolocation",
        "payment",
        "usb",
        "serial",
        "bluetooth",
        "hid",
        "midi",
        "accelerometer",
        "gyroscope",
        "magnetometer",
        "display-capture",
        "browsing-topics",
    )
}
# HTTPS=1 when users reach the app over TLS (docs/deployment.md): redirect http to https, send HSTS,
# and keep the session and CSRF cookies off plain http. Off by default for `make run` on http://127.0.0.1.
HTTPS = env_bool("HTTPS", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", HTTPS)
# The load balancer's health check may come over plain http.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", HTTPS)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", HTTPS)
# Behind a TLS-terminating proxy: the header it sets to "https" (e.g. X-Forwarded-Proto). Only when the
# proxy always sets or strips it — a client could otherwise claim https.
_PROXY_SSL_HEADER = env_str("SECURE_PROXY_SSL_HEADER")
if _PROXY_SSL_HEADER:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _PROXY_SSL_HEADER.upper().replace("-", "_"), "https")

# --- Mail -----------------------------------------------------------------------------------
# Password reset mails need an SMTP server: EMAIL_HOST turns mail on (or EMAIL_BACKEND, e.g. the
# console backend while developing). Without either, no mail is sent and the reset link is hidden.
EMAIL_HOST = env_str("EMAIL_HOST")
_MAIL_BACKEND = "smtp" if EMAIL_HOST else "dummy"
EMAIL_BACKEND = env_str("EMAIL_BACKEND", f"django.core.mail.backends.{_MAIL_BACKEND}.EmailBackend")
EMAIL_ENABLED = bool(EMAIL_HOST) or bool(env_str("EMAIL_BACKEND"))
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", EMAIL_PORT == 587)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", EMAIL_PORT == 465)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "easycrm@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "easycrm.logging.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "easycrm": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "django_q": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}
