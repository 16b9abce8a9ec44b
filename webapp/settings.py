"""One env-driven settings module with safe development defaults.

Every knob is an environment variable; production sets DEBUG=0, SECRET_KEY, ALLOWED_HOSTS,
DATABASE_URL, CELERY_BROKER_URL and ARTIFACT_STORAGE. Problems are reported by system checks
(webapp/core/checks.py), never by crashing at import.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url

from webapp.private_files import install_secret


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value.strip() else default
    except ValueError:
        return default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    try:
        return float(value) if value.strip() else default
    except ValueError:
        return default


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("PIPELINES_DATA_DIR", str(BASE_DIR / ".pipelines-data"))).resolve()
# SQLite and local artifacts live here; create it so a fresh checkout works at once. It is
# private to its owner (webapp/private_files.py), whatever the umask.
try:
    DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    (DATA_DIR / "staticfiles").mkdir(mode=0o700, exist_ok=True)
except OSError:
    pass  # reported by the system checks when something needs it

DEBUG = env_bool("DEBUG", False)
# SECRET_KEY from the environment wins; otherwise each install has its own, made on first
# start in the data dir (0600) and read by every process of the install. The public
# development key is the last resort, when that file can be neither read nor made: the
# system checks refuse it outside DEBUG (pipelines.E002), so the server does not start.
DEV_SECRET_KEY = "dev-insecure-pipelines-secret-key-change-me-in-production-0123456789"  # noqa: S105
SECRET_KEY_FILE = DATA_DIR / "secret_key"
SECRET_KEY_PROBLEM = ""
SECRET_KEY = env_str("SECRET_KEY").strip()
if not SECRET_KEY:
    try:
        SECRET_KEY = install_secret(SECRET_KEY_FILE)
    except (OSError, ValueError) as error:
        SECRET_KEY, SECRET_KEY_PROBLEM = DEV_SECRET_KEY, str(error)
# Older keys still accepted for sessions while they end (rotation, docs/deploying.md).
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS", "")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "axes",
    # Swagger UI and Redoc served from our own static files: /api/docs/ works offline.
    "drf_spectacular_sidecar",
    "webapp.core.apps.CoreConfig",
    "webapp.api.apps.ApiConfig",
    "webapp.dashboard.apps.DashboardConfig",
    "webapp.compat.apps.CompatConfig",
    "webapp.automation.apps.AutomationConfig",
]

# Dashboard plugins, in tab order of appearance; each is also an installed app. Extra
# (third-party) plugins are appended from PIPELINES_EXTRA_PLUGINS, comma-separated.
DASHBOARD_PLUGINS = [
    "webapp.plugins.execution",
    "webapp.plugins.configuration",
    "webapp.plugins.artifacts",
    "webapp.plugins.models",
    "webapp.plugins.info",
    "webapp.plugins.console",
    "webapp.plugins.pipeline_graph",
    "webapp.plugins.scalars",
    "webapp.plugins.plots",
    "webapp.plugins.debug_samples",
    *env_list("PIPELINES_EXTRA_PLUGINS", ""),
]
INSTALLED_APPS += DASHBOARD_PLUGINS

MIDDLEWARE = [
    # First: a body over DATA_UPLOAD_MAX_MEMORY_SIZE is refused before anything reads it.
    "webapp.bodylimit.RequestBodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "webapp.api.idempotency.IdempotencyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out login into its 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "webapp.urls"
WSGI_APPLICATION = "webapp.wsgi.application"

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
        env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'db.sqlite3'}"),
        conn_max_age=60,
        # A kept connection is checked before its first use in each request: after a database
        # outage (or restart) a thread that sat idle through it would otherwise answer its
        # next request with a 503 from the dead socket it still holds.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside one writer; IMMEDIATE takes the write lock at BEGIN so two
    # writers queue on the busy timeout instead of failing with "database is locked" mid-way.
    # Connections are kept (one per server thread): opening one costs ~2 ms of setup, and
    # closing the last one checkpoints the WAL into the database and deletes it, with an
    # fsync, on every request. synchronous=NORMAL in WAL mode cannot corrupt the database;
    # a power loss (not a process crash) may lose the last commits before a checkpoint.
    DATABASES["default"]["CONN_MAX_AGE"] = 600
    DATABASES["default"]["OPTIONS"] = {
        "timeout": env_int("SQLITE_BUSY_TIMEOUT", 30),
        "transaction_mode": "IMMEDIATE",
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;"
        ),
    }

# The web server (`pipelines server`, webapp/serve.py): waitress in WEB_PROCESSES processes
# on one socket (webapp/prefork.py), each with WEB_THREADS threads and up to
# WEB_CONNECTION_LIMIT open connections. One process runs Python on one core at a time, so
# the default is one per core.
WEB_PROCESSES = max(1, env_int("WEB_PROCESSES", os.cpu_count() or 1))
WEB_THREADS = max(1, env_int("WEB_THREADS", 8))
WEB_CONNECTION_LIMIT = max(10, env_int("WEB_CONNECTION_LIMIT", 2000))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

# Failed credentials, counted per client address (webapp/core/lockout.py). Behind N reverse
# proxies that append to X-Forwarded-For, set TRUSTED_PROXY_COUNT=N; with the default 0 the
# header is ignored, so a client cannot pick the address it is counted under.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
# Passwords (dashboard and admin login form) go through django-axes, whose backend comes
# first: a locked-out client is refused before its password is hashed (PBKDF2's million
# rounds cost a server thread about 0.3 CPU-seconds per try). LOGIN_FAILURE_LIMIT failures
# lock the address out for LOGIN_LOCKOUT_SECONDS; a try during the lockout starts it again.
AUTHENTICATION_BACKENDS = [
    "webapp.core.lockout.LoginLockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(seconds=env_float("LOGIN_LOCKOUT_SECONDS", 300.0))
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_CLIENT_IP_CALLABLE = "webapp.core.lockout.client_address"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
# API keys (REST API, ClearML tokens and auth.login): past API_KEY_FAILURE_LIMIT keys that
# match nothing from one address within API_KEY_LOCKOUT_SECONDS, its failed keys answer 429
# until that window ends; valid keys are always served (a key check is as cheap as a
# refusal). Revoked or expired keys are not guesses and are not counted. Counted in the
# default cache, which is in the database so that every server process and machine shares
# it (webapp/core/cache.py; its table is made by a migration).
CACHES = {
    "default": {
        "BACKEND": "webapp.core.cache.SharedCache",
        "LOCATION": "pipelines_cache",
        "OPTIONS": {"MAX_ENTRIES": 10_000},
    }
}
API_KEY_FAILURE_LIMIT = env_int("API_KEY_FAILURE_LIMIT", 50)
API_KEY_LOCKOUT_SECONDS = env_int("API_KEY_LOCKOUT_SECONDS", 60)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
# Serve app static files straight from the finders, so no collectstatic step is needed.
WHITENOISE_USE_FINDERS = True

ARTIFACT_STORAGE = env_str("ARTIFACT_STORAGE", "file")
_ARTIFACT_BACKENDS = {
    "file": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(DATA_DIR / "artifacts")},
    },
    "s3": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("AWS_STORAGE_BUCKET_NAME", "pipelines-artifacts"),
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL") or None,
            "region_name": env_str("AWS_S3_REGION_NAME") or None,
            "location": env_str("AWS_LOCATION", "artifacts"),
            "file_overwrite": True,
            "default_acl": None,
            "querystring_auth": False,
        },
    },
    "gcs": {
        "BACKEND": "storages.backends.gcloud.GoogleCloudStorage",
        "OPTIONS": {"bucket_name": env_str("GS_BUCKET_NAME", "pipelines-artifacts")},
    },
    "azure": {
        "BACKEND": "storages.backends.azure_storage.AzureStorage",
        "OPTIONS": {"azure_container": env_str("AZURE_CONTAINER", "pipelines-artifacts")},
    },
}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "artifacts": _ARTIFACT_BACKENDS.get(ARTIFACT_STORAGE, _ARTIFACT_BACKENDS["file"]),
}

# Uploads above this are refused with 413 before any byte reaches the artifact storage.
ARTIFACT_MAX_BYTES = env_int("ARTIFACT_MAX_BYTES", 5 * 1024**3)
# The largest media file (debug sample: image, audio, video, HTML) a task may report.
MAX_MEDIA_BYTES = env_int("MAX_MEDIA_BYTES", 50 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# Every request body but the uploads' (artifacts, debug samples, the ClearML file server),
# JSON included: larger ones are a 413 before they are read (webapp/bodylimit.py).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 20 * 1024 * 1024)
FILE_UPLOAD_TEMP_DIR = None
# Django's FileSystemStorage chmods what it saves to 0644 by default, whatever the umask.
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700
# Django's own default, stated: more files in one multipart body is a 400 (CVE-2023-24580).
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("DATA_UPLOAD_MAX_NUMBER_FILES", 100)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "webapp.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "webapp.api.permissions.Policy",
    ],
    # JSON bodies within the size limit, 32 levels deep at most, finite numbers only.
    "DEFAULT_PARSER_CLASSES": [
        "webapp.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "webapp.api.pagination.Pagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "webapp.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": STATIC_URL + "dashboard/favicon.svg",
    "REDOC_DIST": "SIDECAR",
    "TITLE": "pipelines API",
    "DESCRIPTION": "Projects, tasks, artifacts, queues, workers and pipelines.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Several "status" fields with different choices: name each set (else W001 in checks).
    "ENUM_NAME_OVERRIDES": {
        "TaskStatusEnum": "webapp.core.choices.TaskStatus",
        "PipelineStatusEnum": "webapp.core.choices.PipelineStatus",
        "NodeStatusEnum": "webapp.core.choices.NodeStatus",
        "FinishStatusEnum": ["completed", "failed", "stopped"],
        "FiringStateEnum": "webapp.automation.choices.FiringState",
        "ArtifactStateEnum": "webapp.core.choices.ArtifactState",
    },
}

LOGIN_URL = "dashboard:login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "dashboard:login"

# Celery. Unset CELERY_BROKER_URL means the embedded Redis that `pipelines up` starts on a
# unix socket under the data dir.
EMBEDDED_REDIS_SOCKET = DATA_DIR / "redis.sock"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", f"redis+socket://{EMBEDDED_REDIS_SOCKET}")
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
# Celery otherwise builds its (disabled, stateless) result backend once per thread, and
# every send needs it: each server thread's first enqueue would scan every installed
# package's entry points, about 5 ms.
CELERY_RESULT_BACKEND_THREAD_SAFE = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The server worker reconnects for as long as the broker is away (Celery's default gives up
# after 100 tries, about 50 minutes, and the worker exits).
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# Longer than any task's time limit, so a slow step's message is not redelivered mid-run.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("VISIBILITY_TIMEOUT", 43200)}
# Server-side tasks (engine, sweeps) travel on their own queue, so step workers never get
# them; a unique name lets several installations share one broker.
PIPELINES_SERVER_QUEUE = env_str("PIPELINES_SERVER_QUEUE", "server")
CELERY_TASK_DEFAULT_QUEUE = PIPELINES_SERVER_QUEUE
CELERY_TASK_ROUTES = {
    "core.*": {"queue": PIPELINES_SERVER_QUEUE},
    "automation.*": {"queue": PIPELINES_SERVER_QUEUE},
}
CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False

# Liveness: a running task whose worker has not heartbeated for this long is reaped.
TASK_LEASE_SECONDS = env_float("TASK_LEASE_SECONDS", 30.0)
# Tasks a user's own process runs (Task.init outside a worker, start_locally) ping instead
# of heartbeating; a laptop that sleeps should not lose its run, so their lease is longer.
LOCAL_RUN_LEASE_SECONDS = env_float("LOCAL_RUN_LEASE_SECONDS", 600.0)
# How often the server worker reaps leases, re-publishes lost messages and advances runs
# (0 turns its built-in sweeper off, e.g. when `celery beat` schedules core.sweep instead):
# six times a lease (5 s for 30 s), so a lost worker's task moves on within 1.2 leases.
SWEEP_INTERVAL_SECONDS = env_float("SWEEP_INTERVAL_SECONDS", TASK_LEASE_SECONDS / 6)
# A queued task nobody claimed for this long is published again (a broker may lose messages).
QUEUED_REPUBLISH_SECONDS = env_float("QUEUED_REPUBLISH_SECONDS", 10.0)
# A worker silent for this long (killed, or its machine gone) leaves the workers list; until
# then it shows as gone. One that reports again is listed again.
WORKER_FORGET_SECONDS = env_float("WORKER_FORGET_SECONDS", 600.0)
TASK_MAX_ATTEMPTS = env_int("TASK_MAX_ATTEMPTS", 1)
# Schedules (webapp/automation): a tick seen more than this late passed while no server
# worker ran, and the schedule's `missed` policy decides (Quartz's misfire threshold is 60 s
# too); at most this many missed ticks are run by `run_all`; at most this many firings wait
# for the run before them (`overlap: queue`), later ticks are skipped.
SCHEDULE_MISFIRE_GRACE_SECONDS = env_float("SCHEDULE_MISFIRE_GRACE_SECONDS", 60.0)
SCHEDULE_MAX_CATCHUP = env_int("SCHEDULE_MAX_CATCHUP", 100)
SCHEDULE_MAX_WAITING = env_int("SCHEDULE_MAX_WAITING", 10)
# How long the history of schedule and trigger firings is kept.
AUTOMATION_HISTORY_DAYS = env_int("AUTOMATION_HISTORY_DAYS", 30)
CONSOLE_MAX_LINES = env_int("CONSOLE_MAX_LINES", 200_000)

# ClearML wire compatibility (webapp/compat): lifetime of the tokens auth.login hands out
# (the SDK renews them before they end), and how long a silent ClearML worker stays listed.
CLEARML_TOKEN_SECONDS = env_int("CLEARML_TOKEN_SECONDS", 24 * 3600)
CLEARML_WORKER_TIMEOUT_SECONDS = env_int("CLEARML_WORKER_TIMEOUT_SECONDS", 600)
# How long the machine statistics ClearML agents report are kept, and how many of one worker
# (compat/models.py, WorkerStatsReport).
CLEARML_WORKER_STATS_HOURS = env_int("CLEARML_WORKER_STATS_HOURS", 24)
CLEARML_WORKER_STATS_ROWS = env_int("CLEARML_WORKER_STATS_ROWS", 20_000)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

if not DEBUG:
    SESSION_COOKIE_HTTPONLY = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"
# HTTPS. PIPELINES_ENV=production turns every switch on (what `manage.py check --deploy`
# asks for); each one can still be set by its own variable. Development keeps them off so
# http://127.0.0.1 works. Behind a TLS-terminating proxy set
# SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO (and make the proxy set that header).
PIPELINES_ENV = env_str("PIPELINES_ENV", "development").strip().lower()
PRODUCTION = PIPELINES_ENV in ("production", "prod")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
# Load balancers probe the health URL over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", PRODUCTION)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", PRODUCTION)
if env_str("SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = (env_str("SECURE_PROXY_SSL_HEADER"), "https")
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
