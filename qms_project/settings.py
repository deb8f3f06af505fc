"""Settings for QMS, read from the environment in this one place.

Defaults give the embedded run (SQLite, in-memory queue store and channel
layer, in-process admission loop); `DATABASE_URL` and `QMS_REDIS_URL` switch
to the production components.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
import redis
from django.core.exceptions import ImproperlyConfigured
from redis.driver_info import DriverInfo

from qms_project import redis_config
from qms_project.staticfiles import collected_is_current

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = _env_bool("DJANGO_DEBUG", False)
# Served over HTTPS (behind a TLS-terminating proxy): secure cookies, HSTS, redirect.
# `manage.py check --deploy` passes with DJANGO_SECURE=1 and a real DJANGO_SECRET_KEY.
if _env_bool("DJANGO_SECURE", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
# The embedded default is public (it is in this file): Django's "django-insecure-" prefix makes
# `check --deploy` refuse it (security.W009) when DJANGO_SECURE=1 is set without a key of one's own.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY",
                            "django-insecure-qms-embedded-secret-key-change-me-in-production-0123456789")
ALLOWED_HOSTS = _env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver,[::1]")
CSRF_TRUSTED_ORIGINS = _env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "events",
    "queues",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "qms_project.middleware.PageLocaleMiddleware",  # Accept-Language picks a page's language; the API speaks English
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "qms_project.urls"
ASGI_APPLICATION = "qms_project.asgi.application"
WSGI_APPLICATION = None

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
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
    )
}
# PostgreSQL: a psycopg connection pool per process (DATABASE_POOL_MAX_SIZE connections). Not persistent
# per-thread connections (CONN_MAX_AGE): under ASGI Django runs each HTTP request's sync code in a new
# thread, so those piled up one connection per request until PostgreSQL refused more (verify endpoint under
# load: "too many clients already", bench/verify_path.py). DATABASE_POOL=0 turns the pool off (PgBouncer).
DATABASE_POOL = _env_bool("DATABASE_POOL", True)
if (DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and DATABASE_POOL
        and not DATABASES["default"]["CONN_MAX_AGE"]):
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1, "max_size": int(os.environ.get("DATABASE_POOL_MAX_SIZE", "16")),
        # Waiting longer for a connection than this fails (PoolTimeout, an OperationalError): well inside the
        # tick task's soft time limit, so a database outage fails ticks cleanly rather than killing them.
        "timeout": 3}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several threads (server, admission loop) share the file: wait for locks. One connection per worker thread,
    # kept: closed after every call (CONN_MAX_AGE=0), each socket's database_sync_to_async opened the file anew
    # (4% of make run's profile in a storm). A file has no connection limit to run into, unlike PostgreSQL (pool).
    DATABASES["default"]["CONN_MAX_AGE"] = None
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    # A transaction that reads before it writes (the webhook sweep, the tick's confirm) takes the write lock at
    # BEGIN: with SQLite's default (DEFERRED) its upgrade fails at once with "database is locked", timeout or not.
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get("DJANGO_TEST_SQLITE_NAME", "")}

if os.environ.get("DJANGO_TEST_DATABASE_NAME"):  # lets two test runs share one PostgreSQL server
    DATABASES["default"]["TEST"] = {"NAME": os.environ["DJANGO_TEST_DATABASE_NAME"]}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
API_LANGUAGE_CODE = "en"  # every /api/ answer (docs/API.md): clients branch on `code`, not on words
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# collectstatic writes here (`make run`, `make run-prod`): hashed names, gzip copies, a manifest; served with
# far-future caching by WhiteNoise (embedded) or nginx (production). Until that copy is current, WhiteNoise serves
# static/ as it is (qms_project/staticfiles.py). WhiteNoise warns at every start when STATIC_ROOT does not exist,
# so STATIC_ROOT names it only once collected; collectstatic finds it through STORAGES.
_COLLECTED_STATIC = Path(os.environ.get("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATIC_ROOT = _COLLECTED_STATIC if _COLLECTED_STATIC.is_dir() else None
_STATIC_CURRENT = collected_is_current(_COLLECTED_STATIC, STATICFILES_DIRS)
WHITENOISE_USE_FINDERS = not _STATIC_CURRENT
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "qms_project.staticfiles.CollectedStaticFilesStorage",
                    "OPTIONS": {"location": _COLLECTED_STATIC, "current": _STATIC_CURRENT}},
}

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

# --- the queue -------------------------------------------------------------

QMS_REDIS_URL = os.environ.get("QMS_REDIS_URL", "")
# High availability (docs/DEPLOYMENT.md, "Redis"): a master that these sentinels follow, instead of QMS_REDIS_URL.
QMS_REDIS = redis_config.RedisLocation(
    url=QMS_REDIS_URL, sentinels=redis_config.parse_sentinels(os.environ.get("QMS_REDIS_SENTINELS", "")),
    master=os.environ.get("QMS_REDIS_SENTINEL_MASTER", ""), db=int(os.environ.get("QMS_REDIS_DB", "0")),
    password=os.environ.get("QMS_REDIS_PASSWORD", ""),
    sentinel_password=os.environ.get("QMS_REDIS_SENTINEL_PASSWORD", ""))
# The queue store alone on a Redis Cluster (a seed node's URL): many sales spread over its masters.
QMS_REDIS_CLUSTER_URL = os.environ.get("QMS_REDIS_CLUSTER_URL", "")
# Joins and ticks wait (WAIT) for this many replicas, at most this long: docs/RELIABILITY.md, "Failover".
QMS_REDIS_WAIT_REPLICAS = int(os.environ.get("QMS_REDIS_WAIT_REPLICAS", "0"))
QMS_REDIS_WAIT_TIMEOUT_MS = int(os.environ.get("QMS_REDIS_WAIT_TIMEOUT_MS", "100"))
QMS_KEY_PREFIX = os.environ.get("QMS_KEY_PREFIX", "qms")

# Channel-layer connections per server process, and the socket joins (and leaves) in flight at once per
# process, each of which holds a few of them: past the limit a storm's sockets wait instead of failing.
QMS_CHANNEL_MAX_CONNECTIONS = int(os.environ.get("QMS_CHANNEL_MAX_CONNECTIONS", "1000"))
QMS_JOINS_AT_ONCE = int(os.environ.get("QMS_JOINS_AT_ONCE", str(max(1, QMS_CHANNEL_MAX_CONNECTIONS // 4))))

if QMS_REDIS.configured:
    QMS_STORE = {
        "BACKEND": "queues.store.redis.RedisQueueStore",
        "PREFIX": QMS_KEY_PREFIX,
        **redis_config.store_options(QMS_REDIS, cluster_url=QMS_REDIS_CLUSTER_URL,
                                     wait_replicas=QMS_REDIS_WAIT_REPLICAS, wait_timeout_ms=QMS_REDIS_WAIT_TIMEOUT_MS),
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # Hosts as dicts: redis-py 8's default pool (100) raises
                # MaxConnectionsError in connection storms and its 5 s socket
                # timeout races channels_redis's 5 s BZPOPMIN.
                "hosts": [
                    redis_config.channel_host(
                        QMS_REDIS,
                        max_connections=QMS_CHANNEL_MAX_CONNECTIONS,
                        socket_timeout=None,
                        socket_connect_timeout=5,
                        retry_on_timeout=True,
                        # Given, not looked up: redis-py 8 otherwise reads its version with
                        # importlib.metadata for every new connection, which was 8% of a Daphne's
                        # CPU while its pool grew during a connection storm (bench/load.py, py-spy).
                        driver_info=DriverInfo(lib_version=redis.__version__),
                    )
                ],
                "prefix": f"{QMS_KEY_PREFIX}:asgi",
                "capacity": 1000,
                # All sockets of one Daphne process share one Redis list: during a storm its
                # backlog is thousands deep, and a full list silently drops messages.
                "channel_capacity": {"specific.*": 100000},
                "expiry": 60,
                "group_expiry": 86400,
            },
        }
    }
    CELERY_BROKER_URL, _SENTINEL_BROKER_OPTIONS = redis_config.celery_broker(QMS_REDIS)
    # Shared by every process: DRF throttles count across all Daphnes.
    CACHES = {"default": redis_config.cache(QMS_REDIS, key_prefix=f"{QMS_KEY_PREFIX}:cache")}
else:
    QMS_STORE = {"BACKEND": "queues.store.memory.MemoryQueueStore"}
    CHANNEL_LAYERS = {"default": {"BACKEND": "queues.realtime.memory_layer.MemoryChannelLayer"}}
    CELERY_BROKER_URL, _SENTINEL_BROKER_OPTIONS = "memory://", {}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Run the admission tick inside the server process (embedded default) or
# leave it to Celery beat (production).
QMS_EMBEDDED_TICK = _env_bool("QMS_EMBEDDED_TICK", not QMS_REDIS.configured)
QMS_TICK_SECONDS = float(os.environ.get("QMS_TICK_SECONDS", "1.0"))
QMS_TICK_LEASE_SECONDS = float(os.environ.get("QMS_TICK_LEASE_SECONDS", "10"))
QMS_WS_HANDSHAKE_TIMEOUT = float(os.environ.get("QMS_WS_HANDSHAKE_TIMEOUT", "30"))
QMS_HEALTH_POLL_SECONDS = float(os.environ.get("QMS_HEALTH_POLL_SECONDS", "5"))
QMS_HEALTH_TIMEOUT_SECONDS = float(os.environ.get("QMS_HEALTH_TIMEOUT_SECONDS", "2"))
QMS_ABANDON_GRACE_SECONDS = float(os.environ.get("QMS_ABANDON_GRACE_SECONDS", "120"))

QMS_SIGNING_KEY = os.environ.get("QMS_SIGNING_KEY", "")
QMS_SIGNING_KEY_FILE = os.environ.get("QMS_SIGNING_KEY_FILE", "")
if not QMS_SIGNING_KEY and QMS_SIGNING_KEY_FILE:
    QMS_SIGNING_KEY = Path(QMS_SIGNING_KEY_FILE).read_text()
# With no key configured (the embedded default), tokens are signed with a key generated once into this
# owner-only file, so they still verify after a restart (`make run-prod` keeps its key in the same file). Only
# this file is generated: an explicit QMS_SIGNING_KEY_FILE must exist (a key per host would split a deployment).
QMS_GENERATED_SIGNING_KEY_FILE = os.environ.get("QMS_GENERATED_SIGNING_KEY_FILE",
                                                str(BASE_DIR / "var" / "signing-key.pem"))
# Public keys (PEM, separated by blank lines) still listed in the JWKS after a
# rotation, so tokens signed with them verify until they expire.
QMS_EXTRA_VERIFICATION_KEYS = os.environ.get("QMS_EXTRA_VERIFICATION_KEYS", "")
QMS_TOKEN_ISSUER = os.environ.get("QMS_TOKEN_ISSUER", "qms")
QMS_TOKEN_AUDIENCE = os.environ.get("QMS_TOKEN_AUDIENCE", "reservation")
# A key directory shared by every process (docs/DEPLOYMENT.md, "Key rotation"): the signing key, the
# next one (already published) and retired public keys; `manage.py qms_rotate_key` rotates it.
QMS_SIGNING_KEY_DIR = os.environ.get("QMS_SIGNING_KEY_DIR", "")

# --- the gate (forward auth in front of a protected site, queues/gate/) ---------------------------------
# Peers whose X-Forwarded-For / X-Real-IP the gate believes (CIDRs): the proxies in front of QMS.
QMS_TRUSTED_PROXIES = _env_list("QMS_TRUSTED_PROXIES", "127.0.0.1/32,::1/128")
# Where visitors reach QMS (https://queue.example.com): the gate sends them to its waiting room. Empty: the
# protected site's own host, which serves QMS under the same proxy (as `qms_gate_config` generates).
QMS_PUBLIC_URL = os.environ.get("QMS_PUBLIC_URL", "").rstrip("/")
# Signs the gate's session cookies (HMAC-SHA256); empty: derived from SECRET_KEY. Same in every process.
QMS_GATE_COOKIE_KEY = os.environ.get("QMS_GATE_COOKIE_KEY", "")

# --- webhooks (docs/API.md "Webhooks", docs/DEPLOYMENT.md) ---------------------------------------------

# Host names or addresses exempt from the guard that refuses receivers on loopback, private, link-local,
# multicast and reserved addresses (a receiver on the operator's own network), comma-separated.
QMS_WEBHOOK_ALLOWED_HOSTS = _env_list("QMS_WEBHOOK_ALLOWED_HOSTS", "")
QMS_WEBHOOK_CONNECT_TIMEOUT = float(os.environ.get("QMS_WEBHOOK_CONNECT_TIMEOUT", "3"))
QMS_WEBHOOK_TIMEOUT = float(os.environ.get("QMS_WEBHOOK_TIMEOUT", "10"))  # the whole exchange
QMS_WEBHOOK_CONCURRENCY = int(os.environ.get("QMS_WEBHOOK_CONCURRENCY", "16"))  # deliveries in flight per worker
QMS_WEBHOOK_PER_ENDPOINT = int(os.environ.get("QMS_WEBHOOK_PER_ENDPOINT", "4"))  # of them to one endpoint
QMS_WEBHOOK_RETRY_HOURS = float(os.environ.get("QMS_WEBHOOK_RETRY_HOURS", "24"))  # then the delivery is failed
# Failed attempts in a row after which an endpoint backs off as a whole (one probe per backoff, not every row).
QMS_WEBHOOK_BREAKER_FAILURES = int(os.environ.get("QMS_WEBHOOK_BREAKER_FAILURES", "5"))
QMS_WEBHOOK_RETENTION_DAYS = float(os.environ.get("QMS_WEBHOOK_RETENTION_DAYS", "7"))  # delivered/failed rows kept

# --- operations ----------------------------------------------------------------

# Set in every process (Daphne, Celery) to one emptied directory: /metrics then adds up all of them.
PROMETHEUS_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
QMS_LOG_FORMAT = os.environ.get("QMS_LOG_FORMAT", "plain")  # "json": one JSON object per line

# --- Celery ------------------------------------------------------------------

CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None  # a Redis restart must never end the worker's retries
# Detect a dead broker connection (Redis restarted) instead of waiting on it forever.
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_keepalive": True, "socket_timeout": 10, "health_check_interval": 5,
                                   "retry_on_timeout": True, **_SENTINEL_BROKER_OPTIONS}
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_TASK_IGNORE_RESULT = True
# One queue per deployment prefix: two deployments may share a Redis database.
CELERY_TASK_DEFAULT_QUEUE = f"{QMS_KEY_PREFIX}.celery"
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_BEAT_SCHEDULE = {
    "admission-ticks": {"task": "queues.tasks.schedule_ticks", "schedule": QMS_TICK_SECONDS},
    # One delivery run at a time (a lock): it sends while work is due, so this only restarts it.
    "webhook-deliveries": {"task": "queues.tasks.deliver_webhooks", "schedule": 1.0, "options": {"expires": 2.0}},
    # The draw's record, written after the opening tick froze it (queues/draw.py); resumed if a run died.
    "draw-records": {"task": "queues.tasks.record_draws", "schedule": 1.0, "options": {"expires": 2.0}},
}

# --- DRF ---------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # First: it steps aside for SimpleJWT's own (HS256) tokens, which JWTAuthentication would refuse.
        "queues.oidc.OidcAuthentication",
        # SimpleJWT's, with the user from the per-process memory the socket uses: a status poll makes no user query.
        "queues.authentication.RememberedUserJWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "queues.errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    # Bot defence: joins per user (429 with Retry-After). Not per address: thousands of fans share one NAT
    # address at an on-sale (docs/DEPLOYMENT.md, "Login defence"); logins are guarded by queues/login_defence.py.
    "DEFAULT_THROTTLE_RATES": {
        "join_user": os.environ.get("QMS_JOIN_RATE_PER_USER", "30/min"),
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "QMS waiting room API",
    "DESCRIPTION": (
        "Join a queue, follow your place, receive and verify admission tokens. "
        "WebSocket `/ws/events/{id}/queue/` documents its messages in docs/API.md."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and Redoc served from our own static files: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # A webhook endpoint's `event_types` and a delivery's `event_type` share one choice set: one schema name.
    "ENUM_NAME_OVERRIDES": {"WebhookEventTypeEnum": "queues.models.WebhookEventType"},
}

# Login defence (queues/login_defence.py): FAILED logins are counted, never successful ones. A username locks after
# this many failures for this long (from every address); an address after its own, higher count (a spray over many
# usernames) waits out its window. 0 failures per address switches the address count off.
QMS_LOGIN_FAILURES_PER_USERNAME = int(os.environ.get("QMS_LOGIN_FAILURES_PER_USERNAME", "10"))
QMS_LOGIN_USERNAME_LOCK_SECONDS = int(os.environ.get("QMS_LOGIN_USERNAME_LOCK_SECONDS", "900"))
QMS_LOGIN_FAILURES_PER_ADDRESS = int(os.environ.get("QMS_LOGIN_FAILURES_PER_ADDRESS", "100"))
QMS_LOGIN_ADDRESS_LOCK_SECONDS = int(os.environ.get("QMS_LOGIN_ADDRESS_LOCK_SECONDS", "60"))
# Guessing defence of access codes and enqueue tokens (queues/entry_guessing.py): refused ones are counted, per fan
# (locked at every event, the right code too) and per address (higher: a NAT's honest typos); 0 per address: off.
QMS_ENTRY_FAILURES_PER_USER = int(os.environ.get("QMS_ENTRY_FAILURES_PER_USER", "10"))
QMS_ENTRY_USER_LOCK_SECONDS = int(os.environ.get("QMS_ENTRY_USER_LOCK_SECONDS", "900"))
QMS_ENTRY_FAILURES_PER_ADDRESS = int(os.environ.get("QMS_ENTRY_FAILURES_PER_ADDRESS", "300"))
QMS_ENTRY_ADDRESS_LOCK_SECONDS = int(os.environ.get("QMS_ENTRY_ADDRESS_LOCK_SECONDS", "60"))

SIMPLE_JWT = {
    "AUTH_HEADER_TYPES": ("Bearer",),
    # Fans log in before the on-sale (docs/DEPLOYMENT.md, runbook): a refresh, unlike a login, hashes no password.
    "REFRESH_TOKEN_LIFETIME": timedelta(hours=float(os.environ.get("QMS_JWT_REFRESH_HOURS", "24"))),
}

# A platform with its own login: QMS accepts its OpenID Connect provider's access tokens (RS256/ES256), verified
# offline against the provider's JWKS (queues/oidc.py). Off unless QMS_OIDC_ISSUER is set; then all three are needed.
QMS_OIDC_ISSUER = os.environ.get("QMS_OIDC_ISSUER", "")
QMS_OIDC_AUDIENCE = os.environ.get("QMS_OIDC_AUDIENCE", "")
QMS_OIDC_JWKS_URL = os.environ.get("QMS_OIDC_JWKS_URL", "")
if QMS_OIDC_ISSUER and not (QMS_OIDC_AUDIENCE and QMS_OIDC_JWKS_URL):
    raise ImproperlyConfigured("QMS_OIDC_ISSUER needs QMS_OIDC_AUDIENCE and QMS_OIDC_JWKS_URL")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"()": "queues.logs.KeyValueFormatter", "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "queues.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler",
                             "formatter": "json" if QMS_LOG_FORMAT == "json" else "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("QMS_LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}

# Where `manage.py serve` (make run) listens.
QMS_HOST = os.environ.get("HOST", "127.0.0.1")
QMS_PORT = int(os.environ.get("PORT", "8000"))
