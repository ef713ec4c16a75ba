"""Settings for the conversation replay project, configured from the environment."""

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("REPLAY_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def secret_key_from_file(path: Path) -> str:
    """The key kept in `path` (readable by its owner only), made on first use."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(50))
        try:
            os.link(draft, path)  # atomic: of processes starting together, one key wins
        except FileExistsError:
            pass
        finally:
            draft.unlink()
        mode = path.stat().st_mode
    if mode & 0o077:
        raise ImproperlyConfigured(
            f"{path} holds the secret key but others may read it: chmod 600 {path}"
        )
    return path.read_text().strip()


DEBUG = env_bool("DEBUG")
# The production profile (see README, "Production"): no defaults that only suit a laptop.
PRODUCTION = env_bool("REPLAY_PRODUCTION")
# The demo shop (the `demo` app at /demo/): for development and `make run`. Read once, here:
# it decides INSTALLED_APPS. Production, which refuses DEBUG, has it only with REPLAY_DEMO=1.
REPLAY_DEMO = env_bool("REPLAY_DEMO") or DEBUG

if os.environ.get("SECRET_KEY"):
    SECRET_KEY = os.environ["SECRET_KEY"]
elif PRODUCTION:
    raise ImproperlyConfigured(
        "REPLAY_PRODUCTION is on but SECRET_KEY is not set: set it to a long random value "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))') and keep it secret."
    )
elif DEBUG:
    SECRET_KEY = "insecure-development-key-set-SECRET_KEY-in-production"
else:
    # `make run` and other single-machine setups: a random key kept beside the database.
    SECRET_KEY = secret_key_from_file(VAR_DIR / "secret_key")

if PRODUCTION:
    if DEBUG:
        raise ImproperlyConfigured("REPLAY_PRODUCTION is on: turn DEBUG off.")
    if not os.environ.get("ALLOWED_HOSTS"):
        raise ImproperlyConfigured(
            "REPLAY_PRODUCTION is on but ALLOWED_HOSTS is not set: list the host names staff "
            "and shops reach this server by, comma-separated."
        )
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

if PRODUCTION:
    # Behind a TLS-terminating proxy that sets X-Forwarded-Proto (and strips it from clients).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # Load balancers ask for /healthz over plain HTTP, from inside.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", 365 * 24 * 3600))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "conversations",
    *(["demo"] if REPLAY_DEMO else []),
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files (WhiteNoise: compressed, content-hashed names cached for a year) are answered
    # before Django, on the event loop: replay/static.py, in front of it in replay/asgi.py.
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# Sign-in throttling (django-axes): after REPLAY_LOGIN_FAILURE_LIMIT failures for one username
# from one address, that pair is locked out for REPLAY_LOGIN_COOLOFF_MINUTES; failures and
# lockouts go to the audit log. The address is REMOTE_ADDR (see README, "Production").
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("REPLAY_LOGIN_FAILURE_LIMIT", 5))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("REPLAY_LOGIN_COOLOFF_MINUTES", 15)))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "conversations.audit.client_ip"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False  # the audit log records failures and lockouts; keep commands quiet

ROOT_URLCONF = "replay.urls"
ASGI_APPLICATION = "replay.asgi.application"

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


def _database() -> dict:
    url = os.environ.get("DATABASE_URL")
    if not url:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{VAR_DIR / 'replay.sqlite3'}"
    config = dj_database_url.parse(url, conn_max_age=600, conn_health_checks=True)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # WAL lets readers (staff pages) run beside the ingest writer; IMMEDIATE takes the
        # write lock at BEGIN so concurrent writers wait instead of failing mid-transaction.
        config["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
        # A file, not memory, so a Daphne process started by the tests shares the test data.
        # One per test run, so runs side by side don't share it.
        config.setdefault("TEST", {})["NAME"] = os.environ.get("REPLAY_TEST_SQLITE_NAME") or str(
            VAR_DIR / f"test-replay-{os.getpid()}.sqlite3"
        )
    return config


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if os.environ.get("REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            # channels_redis's layer with a pool that waits when full (replay/layers.py).
            "BACKEND": "replay.layers.RedisChannelLayer",
            "CONFIG": {
                # channels_redis waits for a consumer's messages with a BZPOPMIN that blocks
                # for 5 s (RedisChannelLayer.brpop_timeout) and then asks again; redis-py 8
                # gives every connection a 5 s read timeout by default, which expires just
                # before Redis answers "nothing yet", so a quiet socket's receive raised
                # TimeoutError and its consumer died. Reads must outlast the block; 15 s still
                # gives up on a Redis that stopped answering.
                # At most 100 connections a process (redis-py's default); a request beyond
                # them waits up to 20 s for one to come back.
                "hosts": [
                    {
                        "address": os.environ["REDIS_URL"],
                        "socket_timeout": 15,
                        "max_connections": 100,
                        "timeout": 20,
                    }
                ],
                "prefix": os.environ.get("REPLAY_CHANNEL_PREFIX", "replay"),
                # channels_redis queues every message for a process's sockets under one key
                # and drops what comes beyond its capacity (100 by default): with a hundred
                # pages watching, one slow second of a server lost live updates for good.
                # Messages are small (a live update carries at most
                # REPLAY_LIVE_PUSH_MAX_BYTES) and expire after 60 s.
                "capacity": 1000,
            },
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            # channels' in-memory layer, able to say which groups have members.
            "BACKEND": "replay.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": 1000},  # a socket's queue; as for Redis above
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Filled by `manage.py collectstatic` (`make run` and `make production` run it): each file
# under its own name and a content-hashed one, with a gzip copy beside it. Pages link the
# hashed names, which WhiteNoise serves with a year's caching; the reference client, which
# shops link by its plain name (static/dist/client.js), is served under that too.
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT") or VAR_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Recordings are untrusted DOM replayed inside our pages: no script may run but our own bundle.
# Styles stay inline-capable because replayed pages carry their own. Images, fonts and media
# come from our origin only: recordings are served with their URLs pointing at the asset
# proxy (conversations/assets.py), so a replay makes no staff browser contact a third party.
# The replay iframe is additionally sandboxed without scripts.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:", "blob:"],
    "font-src": [CSP.SELF, "data:"],
    "media-src": [CSP.SELF, "data:", "blob:"],
    "connect-src": [CSP.SELF],
    "frame-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "daphne": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}

# Project settings (REPLAY_*) and their defaults live in conversations/conf.py and are read
# at call time. Any of them can be set from the environment with an integer or float value.
for _name in (
    "REPLAY_MAX_FRAME_BYTES",
    "REPLAY_HARD_MAX_FRAME_BYTES",
    "REPLAY_SOCKET_QUEUE_BYTES",
    "REPLAY_PART_TTL",
    "REPLAY_REJECT_LIMIT",
    "REPLAY_FLUSH_MAX_FRAMES",
    "REPLAY_RETENTION_DAYS",
    "REPLAY_PACK_IDLE",
    "REPLAY_PACK_INTERVAL",
    "REPLAY_WORKER_MAX_ENTRIES",
    "REPLAY_HEALTH_MAX_LAG",
    "REPLAY_KEY_FRAMES_PER_SECOND",
    "REPLAY_KEY_BYTES_PER_SECOND",
    "REPLAY_KEY_MAX_CONNECTIONS",
    "REPLAY_KEY_NEW_CONVERSATIONS_PER_MINUTE",
    "REPLAY_CONNECTION_FRAMES_PER_SECOND",
    "REPLAY_CONNECTION_BYTES_PER_SECOND",
    "REPLAY_PENDING_MAX_BYTES_PER_SOURCE",
):
    if _value := os.environ.get(_name):
        globals()[_name] = float(_value) if "." in _value else int(_value)
if os.environ.get("REPLAY_ASSET_ALLOW_HOSTS"):
    REPLAY_ASSET_ALLOW_HOSTS = env_list("REPLAY_ASSET_ALLOW_HOSTS", "")
if os.environ.get("REPLAY_EMBEDDED_WORKER") is not None:
    REPLAY_EMBEDDED_WORKER = env_bool("REPLAY_EMBEDDED_WORKER")
