"""Encryption at rest for registry passwords and other secrets.

Values are encrypted with Fernet (AES-128-CBC + HMAC-SHA256, from the
``cryptography`` package) under the keys in ``settings.FIELD_ENCRYPTION_KEYS``.
A MultiFernet encrypts with the first key and decrypts with any, which is what
makes key rotation possible (``manage.py rotate_secrets`` re-saves every secret).
"""

from __future__ import annotations

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

PREFIX = "fernet:"


@cache
def _cipher_for(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY must hold one or more comma-separated Fernet keys (32 url-safe base64 bytes)"
        ) from exc


def cipher() -> MultiFernet:
    return _cipher_for(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(value: str) -> str:
    return PREFIX + cipher().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    if not token.startswith(PREFIX):
        raise ImproperlyConfigured("a secret column holds a value that is not encrypted")
    try:
        return cipher().decrypt(token[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        # Never include the token: even encrypted, it has no place in an error.
        raise ImproperlyConfigured(
            "a stored secret cannot be decrypted with FIELD_ENCRYPTION_KEY; "
            "was the key changed without keeping the old one?"
        ) from None


class Secret(str):
    """A decrypted secret whose repr and str-in-f-string don't reveal it by accident.

    ``str(secret)`` still gives the value (the Docker SDK needs it); ``repr`` and
    debug pages show a mask.
    """

    def __repr__(self) -> str:
        return "Secret('********')" if self else "Secret('')"


class EncryptedTextField(models.TextField):
    """A text column stored encrypted; blank stays blank so "no password" is visible.

    Serialization (``dumpdata``) writes the encrypted token, never the secret,
    and ``loaddata`` accepts it back: ``to_python`` decrypts a value that is a
    token of ours.
    """

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return Secret(decrypt(value))

    def to_python(self, value):
        if value is None or isinstance(value, Secret):
            return value
        if isinstance(value, str) and value.startswith(PREFIX):
            try:
                return Secret(decrypt(value))
            except ImproperlyConfigured:
                pass  # not one of our tokens after all: a secret that happens to start like one
        return Secret(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(str(value))

    def value_to_string(self, obj) -> str:
        value = self.value_from_object(obj)
        return encrypt(str(value)) if value else ""
