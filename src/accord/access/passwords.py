"""Argon2id password hashing and opaque random secrets (tokens, session ids)."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from accord.core.settings import get_settings

# The test environment uses cheap parameters so that suites can create many users quickly.
_hasher = (PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
           if get_settings().environment == "test" else PasswordHasher())
# Verify against a real hash when the user does not exist, so timing does not reveal accounts.
_DUMMY = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
