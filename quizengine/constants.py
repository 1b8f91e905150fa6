"""Numbers the whole package agrees on, in one place (each says who reads it).

A leaf module: it imports nothing of the package, so every layer (bank/, services/, web/, the
CLI and the server) may read it. calc/ does not: it stands alone.
"""

from __future__ import annotations

from datetime import timedelta

VERSION = "0.1.0"  # quizengine.__version__, `quizengine --version`, the OpenAPI document

# Passwords: Argon2id at OWASP's parameters (19 MiB, 2 passes, 1 lane); config's PASSWORD_METHOD and
# the defaults of passwords.py and the account services. A login's check costs about CHECK_CPU_S of
# CPU (libsodium's Argon2id, its 19 MiB mapped afresh each time; measured on the 2-core AMD EPYC
# machine, where a new hash with argon2-cffi takes about 0.05 s and PBKDF2 at 600,000 iterations 0.3 s).
PASSWORD_METHOD = "argon2id:m=19456,t=2,p=1"
CHECK_CPU_S = 0.030
# A server worker starts at most this many password checks per second (QUIZENGINE_LOGINS_PER_SECOND):
# one core's worth of checks, the CPU budget of the earlier 3 per second at 0.3 s each, and as many
# as the worker's one hashing thread can do (so the limit holds back floods, never a class).
LOGINS_PER_SECOND = round(1 / CHECK_CPU_S)

# Seeds whose variants are built to check a parametrized item: `quizengine validate` (its
# --seeds default), the editor's check before a save, and the instructor's stress test.
VALIDATION_SEEDS = 200

# A login lasts this long whatever the activity (config's PERMANENT_SESSION_LIFETIME, the CSRF
# and API token lifetimes); user_session rows older than this are tidied away.
SESSION_LIFETIME = timedelta(hours=12)

# `quizengine serve` submits attempts whose time is up every EXPIRY_SWEEP_S seconds by default
# (QUIZENGINE_EXPIRY_SWEEP_SECONDS, read by config and used by server.sweeper); a sweep starts no
# new attempt after SWEEP_BUDGET_S, and gives up on one attempt after ATTEMPT_BUDGET_S (doubled
# each time it failed before).
EXPIRY_SWEEP_S = 15.0
SWEEP_BUDGET_S = 10.0
ATTEMPT_BUDGET_S = 2.0

# Input bounds checked before anything is stored.
ID_MAX = 2**31 - 1  # ids live in INTEGER columns: a larger value fails on PostgreSQL
SEQ_MAX = 2**53 - 1  # seq is a BIGINT (older pages sent Date.now() in ms); JSON numbers are exact to 2^53
DEPTH_MAX = 32  # a response nests lists this deep at most (a matrix answer is 2)
MAX_RESPONSE_BYTES = 8 * 1024  # one response as JSON

# The grades CSV formats: `export-grades --format`, the gradebook's buttons, the API's ?format=
# (services/gradebook.py writes each).
GRADE_FORMATS = ("plain", "canvas", "moodle")
