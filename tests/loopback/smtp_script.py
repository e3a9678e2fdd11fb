"""The scripted faults of a SmartHost, consumed in the order they were added."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
import re
from typing import Literal

type Verb = Literal["EHLO", "STARTTLS", "MAIL", "RCPT", "DATA"]
VERBS: frozenset[str] = frozenset({"EHLO", "STARTTLS", "MAIL", "RCPT", "DATA"})
_REPLY = re.compile(r"[2-5]\d\d(?: [^\r\n]*)?\Z")
type _Matcher = Callable[[Fault], bool]


class FaultKind(StrEnum):
    """Say what a fault does."""

    REPLY = "reply"
    DISCONNECT = "disconnect"
    GREETING = "greeting"
    SILENT = "silent"


@dataclass(slots=True)
class Fault:
    """Describe a scripted fault and how many more times it applies (None: always)."""

    kind: FaultKind
    verb: str | None = None
    reply: str | None = None
    recipient: str | None = None
    remaining: int | None = 1


class FaultScript:
    """Hold the scripted faults and hand out the first one matching an event."""

    def __init__(self) -> None:
        """Start with no faults."""
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        """Append a fault after validating it."""
        problem = _problem(fault)
        if problem is not None:
            raise ValueError(problem)
        self._faults.append(fault)

    def clear(self) -> None:
        """Forget every fault."""
        self._faults.clear()

    def take_command(self, verb: str, recipient: str | None = None) -> Fault | None:
        """Consume and return the first reply or disconnect fault for the command."""
        return self._take(
            lambda fault: (
                fault.kind in {FaultKind.REPLY, FaultKind.DISCONNECT}
                and fault.verb == verb
                and (
                    fault.recipient is None
                    or (
                        recipient is not None
                        and fault.recipient.casefold() == recipient.casefold()
                    )
                )
            )
        )

    def take_connection(self) -> Fault | None:
        """Consume and return the first greeting or silent fault for a connection."""
        return self._take(
            lambda fault: fault.kind in {FaultKind.GREETING, FaultKind.SILENT}
        )

    def _take(self, matches: _Matcher) -> Fault | None:
        """Consume one use of the first matching fault."""
        for index, fault in enumerate(self._faults):
            if not matches(fault):
                continue
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining == 0:
                    del self._faults[index]
            return fault
        return None


def _problem(fault: Fault) -> str | None:
    """Say what is wrong with a fault, if anything."""
    if fault.remaining is not None and fault.remaining < 1:
        return f"times must be at least 1 or None, not {fault.remaining}"
    if fault.verb is not None and fault.verb not in VERBS:
        return f"Unknown verb {fault.verb!r}; expected one of {sorted(VERBS)}"
    if fault.reply is not None and not _REPLY.match(fault.reply):
        return f"Not a one-line SMTP reply: {fault.reply!r}"
    if fault.recipient is not None and fault.verb != "RCPT":
        return "Only a RCPT fault can name a recipient"
    return None
