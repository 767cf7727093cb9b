"""Settings for the dockyard sample app, read from the environment.

Variables:
  DJANGO_SECRET_KEY     required unless DJANGO_DEBUG is on
  DJANGO_DEBUG          1/true/yes/on to enable debug (default off)
  DJANGO_ALLOWED_HOSTS  comma-separated host names (default "*"); localhost and 127.0.0.1
                        are always allowed so that in-container health checks work
  DJANGO_DATA_DIR       writable directory for the sqlite database (default <app>/var)
  DJANGO_STATIC_ROOT    where collectstatic writes (default /app/staticfiles)
  DJANGO_LOG_LEVEL      log level of the app's loggers (default INFO)
  APP_ENV, APP_VERSION, APP_REVISION   shown by /health/ and the home page
  SAMPLE_FAIL_HEALTH    1 makes /health/ answer 503 (to test failing releases)

Works with Django 3.2 (Debian bookworm) and 4.x/5.x.
"""
import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in _TRUE


def env_list(name, default):
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        value = default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off"
        )
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "*")
for _local in ("localhost", "127.0.0.1"):
    if "*" not in ALLOWED_HOSTS and _local not in ALLOWED_HOSTS:
        ALLOWED_HOSTS.append(_local)

APP_ENV = os.environ.get("APP_ENV", "dev")
APP_VERSION = os.environ.get("APP_VERSION", "unknown")
APP_REVISION = os.environ.get("APP_REVISION", "unknown")
SAMPLE_FAIL_HEALTH = env_bool("SAMPLE_FAIL_HEALTH", False)

INSTALLED_APPS = [
    # users and groups: `inv app.createsuperuser`, `inv app.loaddata` (fixtures/groups.json)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "sample",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "sample.urls"
WSGI_APPLICATION = "sample.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
            ],
        },
    },
]

DATA_DIR = Path(os.environ.get("DJANGO_DATA_DIR") or BASE_DIR / "var")
try:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
except OSError:
    pass  # read-only: /health/ then reports the database as unavailable
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(DATA_DIR / "db.sqlite3"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = os.environ.get("DJANGO_STATIC_ROOT") or "/app/staticfiles"

# Behind nginx: trust its X-Forwarded-Proto to tell https requests apart.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        # replaces Django's default "django" logger (console only when DEBUG, and
        # propagating to the root logger, which would print everything twice)
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "sample": {"level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
    },
}
