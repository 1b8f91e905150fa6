"""Services: the operations the CLI and the web app call; nothing here knows about Flask.

Who owns a transaction: the caller. A view or a CLI command opens it (``db.read()`` or
``db.write()``) and hands the Session to a service, which reads and writes through it and never
commits, rolls back or opens another. The one exception is a service that must compute something
slow between a read and a write (grading at submit and expiry, a save's checks, a regrade, a
login's password hash, a roster's hashes, a bank file's validation): it takes the ``Database``
and opens its own short transactions, so that nothing slow runs while the write lock is held.
Those functions say so in their docstrings; their first parameter is ``db``, never ``s``.

Services receive who acts as a ``Principal`` (id and role), raise ``ServiceError`` (an HTTP
status and a message) for what the rules refuse, and take the time as a parameter where it matters.
"""
