"""A wrapper for decrypted secrets that does not show its content by accident."""

from __future__ import annotations

import hmac

MASK = "********"


class Secret:
    """A plaintext secret whose ``str``, ``repr`` and format output are masked.

    Call ``reveal()`` at the moment the plaintext is needed, for example when
    building an outbound request, and do not keep the result around.
    """

    __slots__ = ("_value", "key_name")

    def __init__(self, value: str, key_name: str = ""):
        self._value = value
        self.key_name = key_name

    def reveal(self) -> str:
        """Return the plaintext."""
        return self._value

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret({self.key_name!r}, {MASK!r})" if self.key_name else f"Secret({MASK!r})"

    def __format__(self, spec: str) -> str:
        return format(MASK, spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode("utf-8"), other._value.encode("utf-8"))

    def __hash__(self) -> int:
        return hash((Secret, self.key_name))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self):
        raise TypeError("a Secret cannot be pickled; pass the tenant and key name instead")
