"""SMTP replies as values: code, enhanced status code and server text."""

from __future__ import annotations

from dataclasses import dataclass
import re

_ENHANCED_CODE = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})\b")


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply from the smart host."""

    code: int
    text: str

    @property
    def enhanced_code(self) -> str | None:
        """Return the RFC 3463 enhanced status code at the start of the text."""
        match = _ENHANCED_CODE.match(self.text)
        return match.group(1) if match else None

    @property
    def is_temporary(self) -> bool:
        """Return whether the reply is a 4xx that a later attempt may overcome."""
        return 400 <= self.code < 500  # noqa: PLR2004

    @property
    def is_permanent(self) -> bool:
        """Return whether the reply is a 5xx that no retry will change."""
        return 500 <= self.code < 600  # noqa: PLR2004

    def __str__(self) -> str:
        """Render the reply as the server sent it."""
        return f"{self.code} {self.text}"
