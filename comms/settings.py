"""The one settings module: everything comes from the environment and bad values fail loudly.

COMMS_ENV selects the defaults:
- ``development`` (the default): SQLite, in-process broker and worker, fake providers, demo secrets;
- ``test``: what the test suite runs under (bin/test points it at PostgreSQL and Redis);
- ``production``: every secret and the database must be given explicitly.

Longer than 400 lines on purpose: DESIGN §1 asks for one settings module that fails loudly on
bad values, so every setting sits here beside its check.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from comms.env import (
    check_secret,
    check_url,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_required,
    env_str,
)

# Lets the admin and forms be subscripted for typing (Admin[Model]) at run time.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
COMMS_ENV = env_choice("COMMS_ENV", "development", ("development", "test", "production"))
PRODUCTION = COMMS_ENV == "production"
TESTING = COMMS_ENV == "test"

DEBUG = env_bool("DJANGO_DEBUG", COMMS_ENV == "development")

# Demo secrets exist so a fresh checkout runs with no configuration; production refuses them.
_DEV_SECRET = "dev-only-insecure-secret-key-0123456789abcdefghijklmnop"
_DEV_ADDRESS_KEY = "dev-only-insecure-address-key-0123456789abcdefghijklmn"
if PRODUCTION:
    SECRET_KEY = check_secret(
        "DJANGO_SECRET_KEY", env_required("DJANGO_SECRET_KEY", reason="it signs sessions and links")
    )
    # The address key turns every email and phone number into the ledger's keyed hash. Changing it
    # orphans every suppression, so it is its own secret and is never rotated casually.
    ADDRESS_KEY_SECRET = check_secret(
        "COMMS_ADDRESS_KEY_SECRET",
        env_required("COMMS_ADDRESS_KEY_SECRET", reason="it keys the ledger's address hashes"),
    )
else:
    SECRET_KEY = check_secret("DJANGO_SECRET_KEY", env_str("DJANGO_SECRET_KEY", _DEV_SECRET) or _DEV_SECRET)
    ADDRESS_KEY_SECRET = check_secret(
        "COMMS_ADDRESS_KEY_SECRET",
        env_str("COMMS_ADDRESS_KEY_SECRET", _DEV_ADDRESS_KEY) or _DEV_ADDRESS_KEY,
    )
if PRODUCTION and SECRET_KEY == _DEV_SECRET:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY is the development key")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", [] if PRODUCTION else ["*"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must list the service's host names")
PUBLIC_BASE_URL = check_url(
    "COMMS_PUBLIC_BASE_URL",
    env_str("COMMS_PUBLIC_BASE_URL", "http://127.0.0.1:8000") or "",
    ("http", "https"),
)

INSTALLED_APPS = [
    "django_dramatiq",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "dramatiq_crontab",
    "ninja",
    "comms.contacts",
    "comms.suppression",
    "comms.campaigns",
    "comms.accounts",
    "comms.core",
    "comms.web",
    "comms.rights",
    "comms.studio",
    "comms.ops",
    "integrations.lifevision",
    "integrations.mailchimp",
    "django_htmx",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "comms.core.middleware.SecurityHeadersMiddleware",
    "comms.api_limits.ApiLimitsMiddleware",
    "comms.core.middleware.AdminLoginThrottleMiddleware",
]

ROOT_URLCONF = "comms.urls"
WSGI_APPLICATION = "comms.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "comms" / "templates"],
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

# --- database -------------------------------------------------------------------------------
_database_url = env_str("DATABASE_URL")
# Off behind a connection pooler in transaction mode that cannot keep prepared statements
# (PgBouncer before 1.21).
DB_PREPARED_STATEMENTS = env_bool("COMMS_DB_PREPARED_STATEMENTS", True)
if _database_url is None:
    if PRODUCTION:
        raise ImproperlyConfigured("DATABASE_URL must be set in production (PostgreSQL)")
    _database_url = f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
check_url("DATABASE_URL", _database_url, ("postgres", "postgresql", "sqlite"))
try:
    _db = dj_database_url.parse(_database_url, conn_max_age=env_int("DB_CONN_MAX_AGE", 0, minimum=0))
except ValueError as exc:  # dj-database-url raises ValueError on unknown schemes
    raise ImproperlyConfigured(f"DATABASE_URL is not usable: {exc}") from None
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock at BEGIN, so two writers queue instead of deadlocking on upgrade.
    _db["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
elif PRODUCTION and _db["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("production runs on PostgreSQL only")
if _db["ENGINE"] == "django.db.backends.postgresql" and DB_PREPARED_STATEMENTS:
    # Django turns psycopg's prepared statements off (prepare_threshold None). The ORM's
    # client-side cursors never prepare either way; this only lets the ledger's and the gate's
    # hot-path statements (comms.suppression.bulk.run, prepare=True) keep their plan per
    # connection. The threshold is never reached by anything else.
    _db.setdefault("OPTIONS", {})["prepare_threshold"] = 2**31 - 1
    # Those statements run with many different parameters and one right plan (index look-ups),
    # so they keep the generic plan instead of planning again for each call. Set for the
    # session at connect: a SET inside a transaction would be undone by its rollback.
    _options = str(_db["OPTIONS"].get("options", ""))
    _db["OPTIONS"]["options"] = f"{_options} -c plan_cache_mode=force_generic_plan".strip()
if _db["ENGINE"] == "django.db.backends.postgresql":
    # The planner's price of a random page read. PostgreSQL's default (4) is a spinning disk's:
    # with it the gate decided a 10,000-contact audience by reading all 1,000,000 state rows
    # (0.23 s) instead of looking 10,000 up (0.05 s; 1,000,000 contacts: 1.9 s -> 1.2 s), since
    # the state and the contacts a campaign reads sit in memory or on SSD. 1.1 is the usual SSD
    # setting; COMMS_DB_RANDOM_PAGE_COST=4 restores PostgreSQL's.
    DB_RANDOM_PAGE_COST = env_float("COMMS_DB_RANDOM_PAGE_COST", 1.1, minimum=0.1, maximum=100.0)
    _db.setdefault("OPTIONS", {})
    _options = str(_db["OPTIONS"].get("options", ""))
    _db["OPTIONS"]["options"] = f"{_options} -c random_page_cost={DB_RANDOM_PAGE_COST:g}".strip()
_db.setdefault("TEST", {})
DATABASES = {"default": _db}
# Least privilege (docs/deploy.md): DATABASE_URL is the service role, which may only do what the
# code does; DATABASE_MIGRATE_URL is the role that owns the tables, used only by `manage.py
# release` (migrations, then the service role's grants) as the database alias "owner".
_migrate_url = env_str("DATABASE_MIGRATE_URL")
if _migrate_url is not None:
    check_url("DATABASE_MIGRATE_URL", _migrate_url, ("postgres", "postgresql"))
    if _db["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_MIGRATE_URL needs DATABASE_URL on PostgreSQL")
    _owner = dj_database_url.parse(_migrate_url)
    if (_owner["NAME"], _owner["HOST"], _owner["PORT"]) != (_db["NAME"], _db["HOST"], _db["PORT"]):
        raise ImproperlyConfigured("DATABASE_MIGRATE_URL must name the same database as DATABASE_URL")
    if _owner["USER"] == _db["USER"]:
        raise ImproperlyConfigured(
            "DATABASE_MIGRATE_URL and DATABASE_URL must use different roles: the service must not own the tables"
        )
    _owner["TEST"] = {"MIRROR": "default"}
    DATABASES["owner"] = _owner
elif PRODUCTION:
    raise ImproperlyConfigured(
        "DATABASE_MIGRATE_URL must be set in production: migrations run as the owning role, "
        "the service (DATABASE_URL) as a role that cannot truncate or alter the ledger"
    )
# The alias migrations run on: the owner's when it is configured.
MIGRATE_DATABASE = "owner" if "owner" in DATABASES else "default"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, broker, cache -------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL is not None:
    check_url("REDIS_URL", REDIS_URL, ("redis", "rediss", "unix"))
elif PRODUCTION:
    raise ImproperlyConfigured("REDIS_URL must be set in production (the dramatiq broker)")

_DRAMATIQ_MIDDLEWARE = [
    "dramatiq.middleware.AgeLimit",
    "dramatiq.middleware.TimeLimit",
    "dramatiq.middleware.Callbacks",
    "dramatiq.middleware.Pipelines",
    "dramatiq.middleware.Retries",
    "django_dramatiq.middleware.DbConnectionsMiddleware",
]
# Tests always use the stub broker and drive workers themselves; production and any run with
# REDIS_URL use Redis; the zero-configuration run keeps the broker in-process (see `rundev`).
if REDIS_URL is not None and not TESTING:
    DRAMATIQ_BROKER = {
        "BROKER": "dramatiq.brokers.redis.RedisBroker",
        "OPTIONS": {"url": REDIS_URL},
        "MIDDLEWARE": _DRAMATIQ_MIDDLEWARE,
    }
    DRAMATIQ_CRONTAB = {"REDIS_URL": REDIS_URL}
else:
    DRAMATIQ_BROKER = {
        "BROKER": "dramatiq.brokers.stub.StubBroker",
        "OPTIONS": {},
        "MIDDLEWARE": _DRAMATIQ_MIDDLEWARE,
    }
    DRAMATIQ_CRONTAB = {}
DRAMATIQ_AUTODISCOVER_MODULES = ["tasks"]

if REDIS_URL is not None:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"comms-{COMMS_ENV}",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- auth, i18n, static ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "nb"
LANGUAGES = [("nb", "Norsk bokmål"), ("en", "English")]
TIME_ZONE = "Europe/Oslo"
USE_I18N = True
# The studio and the admin (comms/locale, English msgids); the member pages keep their own texts.
LOCALE_PATHS = [BASE_DIR / "comms" / "locale"]
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# Who may frame the public sign-up form (CSP frame-ancestors): list the brands' sites in
# production, e.g. "https://fit24.no https://www.klinikk24.no". Every other page refuses framing.
EMBED_FRAME_ANCESTORS = env_str("COMMS_EMBED_FRAME_ANCESTORS", "'self' https:") or "'self'"

# Lists are paginated; no page may ask for more than this many rows.
NINJA_PAGINATION_PER_PAGE = 100
NINJA_PAGINATION_MAX_LIMIT = 1000
NINJA_PAGINATION_MAX_OFFSET = 10_000_000

# --- the ledger and the gate ----------------------------------------------------------------
# Number of independent hash chains; events go to chain (contact id mod the count). The ledger
# keeps the count it runs on in one row (suppression.LedgerLayout), which every append follows:
# the release step sets it from here, and on a database no release has set the first append
# records this process's value. A process whose value differs appends as the row says (and logs
# a warning once), so processes never put one contact's events on two chains. 16 by default: one
# chain's head lock serialises every append (about 650-700 single appends/s on 2 cores), and a
# member base has many concurrent writers from day one (DESIGN: several chains).
LEDGER_CHAINS = env_int("COMMS_LEDGER_CHAINS", 16, minimum=1, maximum=1024)
# Threads a large consent import uses on PostgreSQL when there are several chains (each takes
# its own chains' heads and connection); 1 imports in the caller's thread. Four keep two cores
# busy: while one thread prepares its rows (Python, under the GIL) the others wait on the
# database (measured on 2 cores: 2 threads ~7,700 rows/s, 4 threads ~9,100).
IMPORT_WORKERS = env_int("COMMS_IMPORT_WORKERS", 4, minimum=1, maximum=16)
# Age of digital consent in Norway (personopplysningsloven § 5): 13.
DIGITAL_CONSENT_AGE = env_int("COMMS_DIGITAL_CONSENT_AGE", 13, minimum=13, maximum=16)
PHONE_DEFAULT_REGION = env_str("COMMS_PHONE_DEFAULT_REGION", "NO") or "NO"
# Uploaded proofs of consent (signed paper forms): where they are kept and how large they may be.
PROOF_DIR = Path(env_str("COMMS_PROOF_DIR", str(BASE_DIR / ".local" / "proofs")) or ".")
PROOF_MAX_BYTES = env_int("COMMS_PROOF_MAX_BYTES", 10 * 1024 * 1024, minimum=1024)
# Anchors (docs/deploy.md): every checkpoint is also logged as an HMAC-signed line, and appended
# to this file when set, somewhere the database role cannot rewrite; `verify_ledger --against`
# checks the database against them. Off in production until the secret is set.
_DEV_ANCHOR_SECRET = "dev-only-insecure-anchor-secret-0123456789abcdefghijkl"
LEDGER_ANCHOR_FILE = env_str("COMMS_LEDGER_ANCHOR_FILE")
LEDGER_ANCHOR_SECRET = env_str("COMMS_LEDGER_ANCHOR_SECRET", None if PRODUCTION else _DEV_ANCHOR_SECRET)
if LEDGER_ANCHOR_SECRET is not None:
    check_secret("COMMS_LEDGER_ANCHOR_SECRET", LEDGER_ANCHOR_SECRET)
    if PRODUCTION and LEDGER_ANCHOR_SECRET == _DEV_ANCHOR_SECRET:
        raise ImproperlyConfigured("COMMS_LEDGER_ANCHOR_SECRET is the development secret")
elif LEDGER_ANCHOR_FILE is not None:
    raise ImproperlyConfigured(
        "COMMS_LEDGER_ANCHOR_SECRET must be set with COMMS_LEDGER_ANCHOR_FILE (it signs the anchors)"
    )
# Largest bulk import accepted in one API request.
IMPORT_MAX_ROWS = env_int("COMMS_IMPORT_MAX_ROWS", 5000, minimum=1)


# --- sending --------------------------------------------------------------------------------
def _clock(name: str, default: str) -> tuple[int, int]:
    value = env_str(name, default) or default
    try:
        hour, minute = (int(part) for part in value.split(":"))
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be HH:MM, got {value!r}") from None
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise ImproperlyConfigured(f"{name} must be HH:MM, got {value!r}")
    return hour, minute


def _cap(name: str, default: str) -> tuple[int, int]:
    value = env_str(name, default) or default
    try:
        count, days = (int(part) for part in value.split("/"))
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be COUNT/DAYS (e.g. 4/7), got {value!r}") from None
    if count < 1 or days < 1:
        raise ImproperlyConfigured(f"{name} must be positive, got {value!r}")
    return count, days


# Marketing SMS only between these local times (Europe/Oslo); outside them SMS are deferred.
SMS_SEND_WINDOW: tuple[tuple[int, int], tuple[int, int]] | None = (
    _clock("COMMS_SMS_SEND_FROM", "08:00"),
    _clock("COMMS_SMS_SEND_UNTIL", "21:00"),
)
# COMMS_SMS_QUIET_HOURS=false: no send window at all (the benchmark runs at any hour).
if not env_bool("COMMS_SMS_QUIET_HOURS", True):
    SMS_SEND_WINDOW = None
# At most COUNT marketing messages per contact and channel within DAYS; more are deferred.
FREQUENCY_CAP = {
    "sms": _cap("COMMS_FREQUENCY_CAP_SMS", "4/7"),
    "email": _cap("COMMS_FREQUENCY_CAP_EMAIL", "7/7"),
}
# The studio's test sends reach staff only: these addresses (or "@domain" for e-mail) and the
# e-mail addresses of studio users. A test send is not gated, so it must never reach a member.
STUDIO_TEST_RECIPIENTS = env_list("COMMS_STUDIO_TEST_RECIPIENTS", [])
STUDIO_TEST_SEND_MAX = 5
SEND_BATCH_SIZE = env_int("COMMS_SEND_BATCH_SIZE", 200, minimum=1, maximum=1000)


def _duration(name: str, default: str, *, minimum: float = 0.0) -> float:
    """Seconds from ``90``, ``250ms``, ``30s``, ``15m``, ``6h`` or ``2d``."""
    value = (env_str(name, default) or default).strip().lower()
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    number, factor = value, 1.0
    for suffix in ("ms", "s", "m", "h", "d"):
        if value.endswith(suffix):
            number, factor = value[: -len(suffix)], units[suffix]
            break
    try:
        seconds = float(number) * factor
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a duration such as 30s, 15m or 6h, got {value!r}") from None
    if not seconds >= minimum or seconds == float("inf"):
        raise ImproperlyConfigured(f"{name} must be at least {minimum:g} seconds, got {value!r}")
    return seconds


def _rates(name: str, default: str) -> dict[str, int]:
    """``lifevision=50,mailchimp=10``: hand-off requests per second per provider."""
    rates: dict[str, int] = {}
    for item in env_list(name, []) or default.split(","):
        provider, sep, number = item.partition("=")
        try:
            rate = int(number)
        except ValueError:
            rate = 0
        if not sep or not provider.strip() or rate < 1:
            raise ImproperlyConfigured(f"{name} must look like lifevision=50,mailchimp=10, got {item!r}")
        rates[provider.strip()] = rate
    return rates


if env_str("COMMS_SEND_MAX_ATTEMPTS") is not None:
    raise ImproperlyConfigured(
        "COMMS_SEND_MAX_ATTEMPTS is gone: a failing message is retried for COMMS_SEND_RETRY_WINDOW (a time)"
    )
# A message whose provider fails transiently (5xx, timeout, no connection) is retried with
# exponential backoff and jitter for this long after its first failure, then recorded as failed
# (a marketer can retry it). A 429 never counts: it only slows the sender down.
SEND_RETRY_WINDOW = _duration("COMMS_SEND_RETRY_WINDOW", "6h", minimum=1)
SEND_BACKOFF_MIN = _duration("COMMS_SEND_BACKOFF_MIN", "2s", minimum=0.01)
SEND_BACKOFF_MAX = _duration("COMMS_SEND_BACKOFF_MAX", "300s", minimum=0.01)
if SEND_BACKOFF_MAX < SEND_BACKOFF_MIN:
    raise ImproperlyConfigured("COMMS_SEND_BACKOFF_MAX must not be shorter than COMMS_SEND_BACKOFF_MIN")
# The circuit breaker per provider: this many transient failures in a row open it; while open,
# nothing is sent to that provider but one probe every PROVIDER_PROBE_INTERVAL.
PROVIDER_BREAKER_FAILURES = env_int("COMMS_PROVIDER_BREAKER_FAILURES", 5, minimum=1)
PROVIDER_PROBE_INTERVAL = _duration("COMMS_PROVIDER_PROBE_INTERVAL", "30s", minimum=0.05)
# One shared rate limit per provider (requests per second, across every worker, on Redis);
# a 429 halves it for PROVIDER_THROTTLE_RECOVERY and pauses that provider for its Retry-After.
PROVIDER_RATE_LIMITS = _rates("COMMS_PROVIDER_RATE_LIMITS", "lifevision=100,mailchimp=100")
PROVIDER_THROTTLE_RECOVERY = _duration("COMMS_PROVIDER_THROTTLE_RECOVERY", "60s", minimum=1)
# The providers by the name a campaign's ``provider`` holds: the class that speaks to each
# (the contract is comms.campaigns.providers). Adding a provider is one more line here.
PROVIDERS = {
    "lifevision": "integrations.lifevision.provider.LifeVision",
    "mailchimp": "integrations.mailchimp.provider.Mailchimp",
}
# Replies to inbound SMS and the member pages' service messages go out through this one.
SERVICE_MESSAGE_PROVIDER = "lifevision"
# Queued deliveries untouched this long are re-enqueued by the sweep (the broker may lose ids).
# Longer than the send actor's longest retry backoff (COMMS_SEND_BACKOFF_MAX, and the probe
# interval of an open circuit), so a batch waiting to be retried is not enqueued a second time.
SEND_SWEEP_AFTER_SECONDS = env_int("COMMS_SEND_SWEEP_AFTER_SECONDS", 600, minimum=10)
# A queued or running audience preview whose run has not saved progress for this long lost its
# broker message (a range of COMMS_PREVIEW_STEP_IDS takes well under a second): the scheduler's
# tick sends it again, up to PREVIEW_MAX_RUNS runs (comms/campaigns/previews.py).
PREVIEW_SWEEP_AFTER_SECONDS = env_int("COMMS_PREVIEW_SWEEP_AFTER_SECONDS", 600, minimum=60)
# A campaign preview of more contacts than this runs as a job (progress in admin and API); at
# most this many are decided inside the web request (~0.2 s per 100,000 on 2 cores).
PREVIEW_INLINE_MAX = env_int("COMMS_PREVIEW_INLINE_MAX", 200_000, minimum=0)
# The job decides the audience this many contact ids at a time, saving its progress after each.
PREVIEW_STEP_IDS = env_int("COMMS_PREVIEW_STEP_IDS", 100_000, minimum=1)
MEMBER_LINK_MAX_AGE = env_int("COMMS_MEMBER_LINK_MAX_AGE_DAYS", 180, minimum=1) * 86400
# A follow-up goes out only within this many days of its visit (or of a member's lapse).
FOLLOWUP_WINDOW_DAYS = env_int("COMMS_FOLLOWUP_WINDOW_DAYS", 30, minimum=1, maximum=365)

# --- rights and retention (comms/rights) ----------------------------------------------------
# Guests who never became members are erased this long after their last visit or consent.
GUEST_RETENTION_DAYS = env_int("COMMS_GUEST_RETENTION_DAYS", 365, minimum=30)
# IP addresses in consent evidence are dropped this long after the event (12 months).
EVIDENCE_IP_RETENTION_DAYS = env_int("COMMS_EVIDENCE_IP_RETENTION_DAYS", 365, minimum=1)
# A lead (consent was the only basis) who has withdrawn every consent is erased this long after
# the last withdrawal, keeping the suppression (DESIGN §6). Also: a sign-up never confirmed.
LEAD_WITHDRAWN_GRACE_DAYS = env_int("COMMS_LEAD_WITHDRAWN_GRACE_DAYS", 30, minimum=0)
# The preference centre offers to renew a consent this many days before its lifetime ends.
CONSENT_REFRESH_WINDOW_DAYS = env_int("COMMS_CONSENT_REFRESH_WINDOW_DAYS", 60, minimum=0)
# A self-service rights link (export, erasure) sent to the address is valid this long.
RIGHTS_LINK_MAX_AGE = env_int("COMMS_RIGHTS_LINK_MAX_AGE_HOURS", 2, minimum=1) * 3600


# --- member pages (comms/web) ---------------------------------------------------------------
def _rate(name: str, default: str) -> tuple[int, int]:
    value = env_str(name, default) or default
    try:
        count, seconds = (int(part) for part in value.split("/"))
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be COUNT/SECONDS (e.g. 10/3600), got {value!r}") from None
    if count < 1 or seconds < 1:
        raise ImproperlyConfigured(f"{name} must be positive, got {value!r}")
    return count, seconds


# A double-opt-in confirmation link is valid this long after it was sent.
MEMBER_CONFIRM_MAX_AGE = env_int("COMMS_CONFIRM_LINK_MAX_AGE_HOURS", 48, minimum=1) * 3600
# The lost-link form: at most COUNT requests per client IP, and per address, within SECONDS.
LOST_LINK_LIMIT_PER_IP = _rate("COMMS_LOST_LINK_LIMIT_PER_IP", "10/3600")
LOST_LINK_LIMIT_PER_ADDRESS = _rate("COMMS_LOST_LINK_LIMIT_PER_ADDRESS", "3/3600")
# The public sign-up form and JSON endpoint: per client IP and per address, COUNT/SECONDS; a
# form posted sooner than SIGNUP_MIN_SECONDS after it was served is a bot's.
SIGNUP_LIMIT_PER_IP = _rate("COMMS_SIGNUP_LIMIT_PER_IP", "20/3600")
SIGNUP_LIMIT_PER_ADDRESS = _rate("COMMS_SIGNUP_LIMIT_PER_ADDRESS", "3/3600")
SIGNUP_MIN_SECONDS = env_int("COMMS_SIGNUP_MIN_SECONDS", 3, minimum=0)
SIGNUP_FORM_MAX_AGE = env_int("COMMS_SIGNUP_FORM_MAX_AGE_HOURS", 24, minimum=1) * 3600

# --- LifeVision (off until its URL and key are set; the zero-config run starts the fake) -------
LIFEVISION_BASE_URL = env_str("LIFEVISION_BASE_URL")
if LIFEVISION_BASE_URL is not None:
    check_url("LIFEVISION_BASE_URL", LIFEVISION_BASE_URL, ("http", "https"))
LIFEVISION_API_KEY = env_str("LIFEVISION_API_KEY")
LIFEVISION_WEBHOOK_SECRET = env_str("LIFEVISION_WEBHOOK_SECRET")
LIFEVISION_SMS_SENDER = env_str("LIFEVISION_SMS_SENDER")
if LIFEVISION_SMS_SENDER is not None and not (
    (LIFEVISION_SMS_SENDER.isalnum() and len(LIFEVISION_SMS_SENDER) <= 11) or LIFEVISION_SMS_SENDER.isdigit()
):
    raise ImproperlyConfigured("LIFEVISION_SMS_SENDER must be ≤ 11 letters and digits, or a short number")
if PRODUCTION and LIFEVISION_BASE_URL and not (LIFEVISION_API_KEY and LIFEVISION_WEBHOOK_SECRET):
    raise ImproperlyConfigured(
        "LIFEVISION_API_KEY and LIFEVISION_WEBHOOK_SECRET must be set with LIFEVISION_BASE_URL"
    )

# --- Mailchimp (off until the key is set; newsletters are sent through it) ---------------------
MAILCHIMP_API_KEY = env_str("MAILCHIMP_API_KEY")
# The data centre (us19); taken from the key's "-us19" suffix when not set.
MAILCHIMP_SERVER = env_str("MAILCHIMP_SERVER")
if MAILCHIMP_SERVER is None and MAILCHIMP_API_KEY and "-" in MAILCHIMP_API_KEY:
    MAILCHIMP_SERVER = MAILCHIMP_API_KEY.rsplit("-", 1)[1]
# Overrides https://<server>.api.mailchimp.com (the fake); must not contain the text "server".
MAILCHIMP_BASE_URL = env_str("MAILCHIMP_BASE_URL")
if MAILCHIMP_BASE_URL is not None:
    check_url("MAILCHIMP_BASE_URL", MAILCHIMP_BASE_URL, ("http", "https"))
    if "server" in MAILCHIMP_BASE_URL:
        raise ImproperlyConfigured('MAILCHIMP_BASE_URL must not contain "server" (the client rewrites it)')
MAILCHIMP_WEBHOOK_SECRET = env_str("MAILCHIMP_WEBHOOK_SECRET")


def _audiences(name: str) -> dict[str, str]:
    """``fit24=abc123,klinikk24=def456``: the Mailchimp audience (list id) of each brand."""
    audiences: dict[str, str] = {}
    for item in env_list(name, []):
        brand_key, sep, list_id = item.partition("=")
        if not sep or not brand_key.strip() or not list_id.strip():
            raise ImproperlyConfigured(f"{name} must look like fit24=abc123,klinikk24=def456, got {item!r}")
        audiences[brand_key.strip()] = list_id.strip()
    return audiences


MAILCHIMP_AUDIENCES = _audiences("MAILCHIMP_AUDIENCES")
if MAILCHIMP_API_KEY and not (MAILCHIMP_SERVER or MAILCHIMP_BASE_URL):
    raise ImproperlyConfigured("MAILCHIMP_SERVER must be set when the key has no -usNN suffix")
# All Mailchimp calls, across every worker, share this many connections (Mailchimp allows 10).
MAILCHIMP_MAX_CONNECTIONS = env_int("MAILCHIMP_MAX_CONNECTIONS", 10, minimum=1, maximum=10)
MAILCHIMP_FROM_NAME = env_str("MAILCHIMP_FROM_NAME")
MAILCHIMP_REPLY_TO = env_str("MAILCHIMP_REPLY_TO")

if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# --- operations and security (comms/core) ----------------------------------------------------
# /metrics answers only with "Authorization: Bearer <COMMS_METRICS_TOKEN>"; unset: disabled (403).
METRICS_TOKEN = env_str("COMMS_METRICS_TOKEN")
if METRICS_TOKEN is not None:
    check_secret("COMMS_METRICS_TOKEN", METRICS_TOKEN, min_length=16)
# Database figures in /metrics are recomputed at most this often (the scrape reads the cache).
METRICS_CACHE_SECONDS = env_int("COMMS_METRICS_CACHE_SECONDS", 0 if TESTING else 30, minimum=0)
# Failed admin logins allowed per client IP, and per username, within SECONDS; then 429.
ADMIN_LOGIN_LIMIT_PER_IP = _rate("COMMS_ADMIN_LOGIN_LIMIT_PER_IP", "20/900")
ADMIN_LOGIN_LIMIT_PER_USERNAME = _rate("COMMS_ADMIN_LOGIN_LIMIT_PER_USERNAME", "5/900")
SECURE_CONTENT_TYPE_NOSNIFF = True
# same-origin, not no-referrer: the member pages' CSRF check needs the Referer/Origin (comms/web).
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Load balancers probe /healthz over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Logs: "json" (one object per line, the production default) or "plain"; addresses are masked.
LOG_FORMAT = env_choice("COMMS_LOG_FORMAT", "json" if PRODUCTION else "plain", ("json", "plain"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            "()": "comms.core.logs.RedactingFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "json": {"()": "comms.core.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO") or "INFO"},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
