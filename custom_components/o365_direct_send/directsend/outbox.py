"""The durable outbox: every alert is stored before it is sent, and retried until done."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
import logging
import random
import time
from typing import Any, Protocol
import uuid

from .client import DirectSendClient
from .errors import DirectSendError, RecipientsRefusedError, ReplyError
from .message import Envelope
from .pool import PooledSession, SessionPool
from .replies import Reply
from .retry import Disposition, ErrorKind, RetryPolicy, decide, error_kind
from .smarthost import SmartHost
from .transport import MAX_RECIPIENTS

_LOGGER = logging.getLogger(__name__)

type JsonDict = dict[str, Any]


class OutboxStorage(Protocol):
    """Where the outbox keeps its messages; saves must be atomic."""

    async def load(self) -> list[JsonDict] | None:
        """Return the saved messages, or None when nothing was ever saved."""

    async def save(self, items: list[JsonDict]) -> None:
        """Replace the saved messages with these."""


class Outcome(StrEnum):
    """How one attempt at a message ended."""

    # Every remaining recipient accepted: the message left the queue.
    DELIVERED = "delivered"
    # A temporary failure: the message stays queued for another attempt.
    QUEUED = "queued"
    # Some recipients refused for good; the others were delivered or stay queued.
    PARTIAL = "partial"
    # Refused for good and no recipient ever got it: the message left the queue.
    FAILED = "failed"
    # Older than the maximum age: the message left the queue undelivered.
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    """The last thing that went wrong, for status entities and events."""

    when: float
    message_id: str
    kind: ErrorKind
    reply: Reply | None
    error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """The outcome of one delivery attempt (or the expiry) of a queued message."""

    outcome: Outcome
    id: str
    message_id: str
    domain: str
    recipients: tuple[str, ...]
    delivered: tuple[str, ...] = ()
    failed: dict[str, Reply | None] = field(default_factory=dict)
    pending: tuple[str, ...] = ()
    expired: tuple[str, ...] = ()
    attempts: int
    next_attempt_at: float | None = None
    failure: Failure | None = None
    error: DirectSendError | None = None

    @property
    def finished(self) -> bool:
        """Return whether the message left the queue."""
        return not self.pending


@dataclass(slots=True, kw_only=True)
class QueuedMessage:
    """A rendered message and where each of its recipients stands."""

    id: str
    message_id: str
    domain: str
    sender: str
    recipients: tuple[str, ...]
    pending: list[str]
    delivered: list[str] = field(default_factory=list)
    failed: dict[str, Reply | None] = field(default_factory=dict)
    data: str
    created_at: float
    attempts: int = 0
    next_attempt_at: float
    last_error: str | None = None
    last_error_kind: ErrorKind | None = None
    last_reply: Reply | None = None

    def to_dict(self) -> JsonDict:
        """Return a JSON-safe copy that shares nothing mutable with the message."""
        return {
            "id": self.id,
            "message_id": self.message_id,
            "domain": self.domain,
            "sender": self.sender,
            "recipients": list(self.recipients),
            "pending": list(self.pending),
            "delivered": list(self.delivered),
            "failed": {
                address: _reply_to_dict(reply) for address, reply in self.failed.items()
            },
            "data": self.data,
            "created_at": self.created_at,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at,
            "last_error": self.last_error,
            "last_error_kind": self.last_error_kind,
            "last_reply": _reply_to_dict(self.last_reply),
        }

    @classmethod
    def from_dict(cls, item: Mapping[str, Any]) -> QueuedMessage:
        """Rebuild a message saved by to_dict; raise ValueError if it is malformed."""
        try:
            kind = item["last_error_kind"]
            last_error = item["last_error"]
            return cls(
                id=_str(item["id"]),
                message_id=_str(item["message_id"]),
                domain=_str(item["domain"]),
                sender=_str(item["sender"]),
                recipients=tuple(_strings(item["recipients"])),
                pending=_strings(item["pending"]),
                delivered=_strings(item["delivered"]),
                failed={
                    _str(address): _reply_from_dict(reply)
                    for address, reply in _dict(item["failed"]).items()
                },
                data=_str(item["data"]),
                created_at=_number(item["created_at"]),
                attempts=int(_number(item["attempts"])),
                next_attempt_at=_number(item["next_attempt_at"]),
                last_error=None if last_error is None else _str(last_error),
                last_error_kind=None if kind is None else ErrorKind(kind),
                last_reply=_reply_from_dict(item["last_reply"]),
            )
        except (KeyError, TypeError) as err:
            msg = f"Not a saved outbox message: {err!r}"
            raise ValueError(msg) from err


@dataclass(slots=True)
class _Progress:
    """What one attempt changed, recorded as the smart host answers."""

    delivered: list[str] = field(default_factory=list)
    failed: dict[str, Reply | None] = field(default_factory=dict)
    deferred: dict[str, Reply] = field(default_factory=dict)
    error: DirectSendError | None = None


class Outbox:
    """Store every message before sending it; retry until delivered, failed or stale."""

    def __init__(
        self,
        client: DirectSendClient,
        storage: OutboxStorage,
        *,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        listener: Callable[[Attempt], None] | None = None,
        pool: SessionPool | None = None,
    ) -> None:
        """Prepare an empty outbox; call load() to pick up saved messages."""
        self.policy = policy or RetryPolicy()
        self.clock = clock
        self._client = client
        self._storage = storage
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._listener = listener
        self._pool = pool or SessionPool(client)
        self._messages: dict[str, QueuedMessage] = {}
        self._in_flight: set[str] = set()
        self._save_lock = asyncio.Lock()
        self._changes = 0
        self._saved = 0
        self._closed = False
        # Calls of submit() and drain() under way; aclose() waits for them to end.
        self._busy_calls = 0
        self._idle = asyncio.Event()
        self._idle.set()
        # Set once aclose() has waited: from then on the queue is never saved
        # again, so a new outbox on the same storage owns it alone.
        self._stopped = False
        self.delivered = 0
        self.failed = 0
        self.expired = 0
        self.last_delivered_at: float | None = None
        self.last_failure: Failure | None = None
        self.problem = False

    @property
    def pending(self) -> int:
        """Return how many messages wait in the queue."""
        return len(self._messages)

    def queued(self) -> list[QueuedMessage]:
        """Return copies of the queued messages, oldest first."""
        return [QueuedMessage.from_dict(m.to_dict()) for m in self._messages.values()]

    def next_due(self) -> float | None:
        """Return the clock time of the next attempt or expiry, if any is waiting."""
        return min(
            (
                message.next_attempt_at
                for message in self._messages.values()
                if message.id not in self._in_flight
            ),
            default=None,
        )

    def next_due_in(self) -> float | None:
        """Return the seconds until the next attempt or expiry, if any is waiting."""
        due = self.next_due()
        return None if due is None else max(0.0, due - self.clock())

    async def load(self) -> None:
        """Add the saved messages to the queue; drop entries that cannot be read."""
        for item in await self._storage.load() or []:
            try:
                message = QueuedMessage.from_dict(item)
            except ValueError:
                _LOGGER.warning("Dropping an unreadable outbox entry: %.200r", item)
                continue
            self._messages.setdefault(message.id, message)

    async def submit(self, domain: str, envelope: Envelope) -> Attempt:
        """Store a message, then attempt it at once; return how that attempt ended.

        A closed outbox only stores the message and returns it QUEUED: it goes out
        after the next load(), for example when Home Assistant starts again.
        """
        if self._closed:
            return await self._store_while_closed(domain, envelope)
        message = self._enqueue(domain, envelope)
        with self._busy():
            try:
                await self._persist()
                attempts = await self._attempt(domain, [message])
            finally:
                self._in_flight.discard(message.id)
        if attempts:
            return attempts[0]
        # Closed before the first attempt: stored, it goes out after the next load().
        return self._not_attempted(message)

    async def drain(self) -> list[Attempt]:
        """Expire stale messages and attempt every due one; return the outcomes."""
        if self._closed:
            return []
        with self._busy():
            return await self._drain()

    async def _drain(self) -> list[Attempt]:
        """Expire and attempt, for drain()."""
        now = self.clock()
        idle = [m for m in self._messages.values() if m.id not in self._in_flight]
        stale = [m for m in idle if now >= m.created_at + self.policy.max_age]
        attempts = [self._expire(message) for message in stale]
        due = [m for m in idle if m.id in self._messages and m.next_attempt_at <= now]
        by_domain: dict[str, list[QueuedMessage]] = {}
        for message in due:
            by_domain.setdefault(message.domain, []).append(message)
            self._in_flight.add(message.id)
        try:
            if stale:
                await self._persist()
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(self._attempt(domain, messages))
                    for domain, messages in by_domain.items()
                ]
        finally:
            self._in_flight.difference_update(message.id for message in due)
        for task in tasks:
            attempts.extend(task.result())
        return attempts

    async def aclose(self) -> None:
        """Start no more attempts, wait for those under way, close the sessions.

        An attempt under way may finish its current transaction and records how it
        ended, so the stored queue never lists a message the host has accepted.
        Once this returns the outbox never saves its queue again: an outbox loaded
        from the same storage afterwards owns it alone.
        """
        self._closed = True
        await self._idle.wait()
        self._stopped = True
        await self._pool.aclose()

    @contextmanager
    def _busy(self) -> Iterator[None]:
        """Count a submit() or drain() as under way, for aclose() to wait on."""
        self._busy_calls += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._busy_calls -= 1
            if not self._busy_calls:
                self._idle.set()

    async def _store_while_closed(self, domain: str, envelope: Envelope) -> Attempt:
        """Add a message to the stored queue without attempting it."""
        message = self._enqueue(domain, envelope)
        self._in_flight.discard(message.id)
        try:
            async with self._save_lock:
                # Add to what is stored rather than saving this outbox's queue: once
                # closed, its snapshot may be older than the storage (a new outbox
                # may already have loaded it and delivered some of it).
                items = list(await self._storage.load() or [])
                items.append(message.to_dict())
                await self._storage.save(items)
        except BaseException:
            del self._messages[message.id]
            raise
        return self._not_attempted(message)

    @staticmethod
    def _not_attempted(message: QueuedMessage) -> Attempt:
        """Describe a stored message that was not attempted: it waits in the queue."""
        return Attempt(
            outcome=Outcome.QUEUED,
            id=message.id,
            message_id=message.message_id,
            domain=message.domain,
            recipients=message.recipients,
            pending=tuple(message.pending),
            attempts=message.attempts,
            next_attempt_at=message.next_attempt_at,
        )

    def _enqueue(self, domain: str, envelope: Envelope) -> QueuedMessage:
        """Queue a new message, held in flight until its first attempt ends."""
        try:
            data = envelope.data.decode("ascii")
        except UnicodeDecodeError as err:
            msg = "The rendered message must be 7-bit ASCII"
            raise ValueError(msg) from err
        recipients = tuple(dict.fromkeys(envelope.recipients))
        if not recipients:
            msg = "A message needs at least one recipient"
            raise ValueError(msg)
        now = self.clock()
        message = QueuedMessage(
            id=uuid.uuid4().hex,
            message_id=envelope.message_id,
            domain=domain,
            sender=envelope.sender,
            recipients=recipients,
            pending=list(recipients),
            data=data,
            created_at=now,
            next_attempt_at=now,
        )
        self._messages[message.id] = message
        self._in_flight.add(message.id)
        return message

    async def _persist(self) -> None:
        """Save the queue; callers that arrive during a write share the next one."""
        self._changes += 1
        wanted = self._changes
        async with self._save_lock:
            if self._saved >= wanted or self._stopped:
                return
            # Let the rest of a burst queue up in this loop turn: one write covers all.
            await asyncio.sleep(0)
            covered = self._changes
            items = [message.to_dict() for message in self._messages.values()]
            try:
                await self._storage.save(items)
            except Exception:
                # Sending matters more than storing: go on, and save again next time.
                _LOGGER.exception(
                    "Could not save the outbox of %d messages", len(items)
                )
                return
            self._saved = covered

    async def _attempt(
        self, domain: str, messages: list[QueuedMessage]
    ) -> list[Attempt]:
        """Attempt messages of one domain over pooled sessions of its smart host."""
        if self._closed:
            return []
        try:
            smart_host = await self._client.smart_host(domain)
        except DirectSendError as err:
            attempts = [self._conclude(m, _Progress(error=err)) for m in messages]
            await self._persist()
            return attempts
        return await self._deliver(smart_host, messages)

    async def _deliver(
        self, smart_host: SmartHost, messages: list[QueuedMessage]
    ) -> list[Attempt]:
        """Send messages over at most the pool's number of sessions per smart host."""
        work = deque(messages)
        attempts: list[Attempt] = []
        open_error: DirectSendError | None = None

        async def worker() -> None:
            """Send queued work over one session at a time until none is left."""
            nonlocal open_error
            while work and not self._closed:
                try:
                    async with self._pool.session(smart_host) as lent:
                        while work and lent.usable and not self._closed:
                            message = work.popleft()
                            progress = await self._send(message, lent)
                            attempts.append(self._conclude(message, progress))
                            await self._persist()
                except DirectSendError as err:
                    # Only opening a session raises here; another worker may still
                    # have a live one for the rest.
                    open_error = err
                    return

        async with asyncio.TaskGroup() as group:
            for _ in range(min(len(work), self._pool.max_sessions_per_host)):
                group.create_task(worker())
        if work and open_error is not None:
            error = open_error
            attempts.extend(
                self._conclude(message, _Progress(error=error)) for message in work
            )
            await self._persist()
        return attempts

    async def _send(self, message: QueuedMessage, lent: PooledSession) -> _Progress:
        """Send to the pending recipients, at most 200 per transaction."""
        progress = _Progress()
        data = message.data.encode("ascii")
        queue = list(message.pending)
        try:
            # Once closed, the transaction under way ends; no new one starts.
            while queue and not self._closed:
                chunk, queue = queue[:MAX_RECIPIENTS], queue[MAX_RECIPIENTS:]
                try:
                    result = await lent.transaction(message.sender, chunk, data)
                except RecipientsRefusedError as err:
                    refused = err.refused
                else:
                    refused = result.refused
                    queue[:0] = result.deferred
                    for address in result.accepted:
                        message.pending.remove(address)
                        message.delivered.append(address)
                        progress.delivered.append(address)
                for address, reply in refused.items():
                    if decide(reply) is Disposition.FAIL:
                        message.pending.remove(address)
                        message.failed[address] = progress.failed[address] = reply
                    else:
                        progress.deferred[address] = reply
        except DirectSendError as err:
            progress.error = err
        return progress

    def _conclude(self, message: QueuedMessage, progress: _Progress) -> Attempt:
        """Record an attempt's result, reschedule or retire the message, and tell."""
        now = self.clock()
        message.attempts += 1
        error = progress.error
        self._client.note_replies(message.domain, _replies(progress))
        if error is not None and decide(error) is Disposition.FAIL:
            reply = error.reply if isinstance(error, ReplyError) else None
            for address in message.pending:
                message.failed[address] = progress.failed[address] = reply
            message.pending.clear()
        failure = self._failure(message, progress, now)
        if progress.failed:
            finished_badly = not (message.delivered or message.pending)
            outcome = Outcome.FAILED if finished_badly else Outcome.PARTIAL
        else:
            outcome = Outcome.QUEUED if message.pending else Outcome.DELIVERED
        if progress.delivered:
            self.last_delivered_at = now
        if failure is not None:
            self.last_failure = failure
            message.last_error = failure.error
            message.last_error_kind = failure.kind
            message.last_reply = failure.reply
        self.problem = outcome is not Outcome.DELIVERED
        next_attempt_at: float | None = None
        if message.pending:
            delay = self.policy.delay(message.attempts, self._rng)
            expires_at = message.created_at + self.policy.max_age
            message.next_attempt_at = next_attempt_at = min(now + delay, expires_at)
        else:
            self._retire(message)
        return self._tell(
            Attempt(
                outcome=outcome,
                id=message.id,
                message_id=message.message_id,
                domain=message.domain,
                recipients=message.recipients,
                delivered=tuple(progress.delivered),
                failed=progress.failed,
                pending=tuple(message.pending),
                attempts=message.attempts,
                next_attempt_at=next_attempt_at,
                failure=failure,
                error=error,
            )
        )

    def _failure(
        self, message: QueuedMessage, progress: _Progress, now: float
    ) -> Failure | None:
        """Describe what went wrong in an attempt, if anything did."""
        if progress.error is not None:
            error = progress.error
            return Failure(
                when=now,
                message_id=message.message_id,
                kind=error_kind(error),
                reply=error.reply if isinstance(error, ReplyError) else None,
                error=str(error),
            )
        refusals = {**progress.failed, **progress.deferred}
        if not refusals:
            return None
        return Failure(
            when=now,
            message_id=message.message_id,
            kind=ErrorKind.RECIPIENTS_REFUSED,
            reply=next(iter(refusals.values())),
            error="; ".join(f"{rcpt}: {reply}" for rcpt, reply in refusals.items()),
        )

    def _expire(self, message: QueuedMessage) -> Attempt:
        """Retire a message that grew older than the maximum age."""
        failure = Failure(
            when=self.clock(),
            message_id=message.message_id,
            kind=ErrorKind.EXPIRED,
            reply=message.last_reply,
            error=message.last_error or "not attempted before it grew stale",
        )
        self.last_failure = failure
        self.problem = True
        del self._messages[message.id]
        self.expired += 1
        return self._tell(
            Attempt(
                outcome=Outcome.EXPIRED,
                id=message.id,
                message_id=message.message_id,
                domain=message.domain,
                recipients=message.recipients,
                expired=tuple(message.pending),
                attempts=message.attempts,
                failure=failure,
            )
        )

    def _retire(self, message: QueuedMessage) -> None:
        """Remove a finished message and count how it ended."""
        del self._messages[message.id]
        if message.failed:
            self.failed += 1
        else:
            self.delivered += 1

    def _tell(self, attempt: Attempt) -> Attempt:
        """Pass an outcome to the listener; a failing listener cannot stop delivery."""
        if self._listener is not None:
            try:
                self._listener(attempt)
            except Exception:
                _LOGGER.exception("Outbox listener failed on %s", attempt.outcome)
        return attempt


def _replies(progress: _Progress) -> list[Reply | None]:
    """Return every reply an attempt met: refusals of recipients and of commands."""
    replies: list[Reply | None] = [
        *progress.failed.values(),
        *progress.deferred.values(),
    ]
    error = progress.error
    if isinstance(error, ReplyError):
        replies.append(error.reply)
    elif isinstance(error, RecipientsRefusedError):
        replies.extend(error.refused.values())
    return replies


def _str(value: object) -> str:
    """Return the value if it is a string, or raise TypeError."""
    if not isinstance(value, str):
        msg = f"{value!r} is not a string"
        raise TypeError(msg)
    return value


def _number(value: object) -> float:
    """Return the value as a float if it is a number, or raise TypeError."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        msg = f"{value!r} is not a number"
        raise TypeError(msg)
    return float(value)


def _dict(value: object) -> dict[Any, Any]:
    """Return the value if it is a dict, or raise TypeError."""
    if not isinstance(value, dict):
        msg = f"{value!r} is not an object"
        raise TypeError(msg)
    return value


def _strings(value: object) -> list[str]:
    """Return a list of strings, or raise TypeError."""
    if not isinstance(value, list):
        msg = f"{value!r} is not a list"
        raise TypeError(msg)
    return [_str(item) for item in value]


def _reply_to_dict(reply: Reply | None) -> JsonDict | None:
    """Return a reply as JSON."""
    return None if reply is None else {"code": reply.code, "text": reply.text}


def _reply_from_dict(value: object) -> Reply | None:
    """Rebuild a reply saved by _reply_to_dict."""
    if value is None:
        return None
    item = _dict(value)
    return Reply(int(_number(item["code"])), _str(item["text"]))
