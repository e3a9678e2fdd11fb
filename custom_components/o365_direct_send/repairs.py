"""Repair issues for problems that only a person (often the tenant's admin) can fix."""

from __future__ import annotations

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import CONF_TENANT_DOMAIN, DOMAIN
from .directsend import Attempt, ErrorKind, NotExchangeOnlineError, Outcome
from .directsend.diagnosis import ConnectionReport
from .directsend.replies import Repair, classify as classify_reply
from .models import DirectSendConfigEntry

UNKNOWN = "-"
# Microsoft answers these at MAIL FROM, which the connection test never sends:
# only a delivered message proves them gone.
_CLEARED_ONLY_BY_DELIVERY = frozenset({Repair.REJECT_DIRECT_SEND, Repair.IP_BLOCKED})
# The connection test checks SPF; a delivery says nothing about it.
_CLEARED_ONLY_BY_TEST = frozenset({Repair.SPF_NOT_AUTHORIZED})
# One connect timeout may be a passing outage; three in a row look like a block.
_PORT_BLOCKED_AFTER = 3

_REPAIR_OF_KIND = {
    ErrorKind.STARTTLS_UNAVAILABLE: Repair.TLS_INVALID,
    ErrorKind.TLS_FAILED: Repair.TLS_INVALID,
    ErrorKind.NOT_EXCHANGE_ONLINE: Repair.NOT_EXCHANGE_ONLINE,
}


def issue_id(entry: DirectSendConfigEntry, repair: Repair) -> str:
    """Return the issue id of a repair for an entry."""
    return f"{repair.value}_{entry.entry_id}"


@callback
def async_raise(
    hass: HomeAssistant,
    entry: DirectSendConfigEntry,
    repair: Repair,
    facts: dict[str, str],
) -> None:
    """Create or update the repair issue, with every placeholder filled."""
    placeholders = {
        "sender": entry.title,
        "domain": entry.data[CONF_TENANT_DOMAIN],
        "host": smart_host.host
        if (smart_host := entry.runtime_data.smart_host)
        else UNKNOWN,
        "client_ip": UNKNOWN,
        "code": UNKNOWN,
        "enhanced_code": UNKNOWN,
        "text": UNKNOWN,
        "error": UNKNOWN,
        "record": UNKNOWN,
        "suggested_record": UNKNOWN,
        "result": UNKNOWN,
    } | facts
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id(entry, repair),
        is_fixable=False,
        is_persistent=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=repair.value,
        translation_placeholders=placeholders,
    )


@callback
def async_clear(
    hass: HomeAssistant, entry: DirectSendConfigEntry, repairs: frozenset[Repair]
) -> None:
    """Delete the entry's repair issues of these kinds."""
    for repair in repairs:
        ir.async_delete_issue(hass, DOMAIN, issue_id(entry, repair))


@callback
def async_clear_all(hass: HomeAssistant, entry: DirectSendConfigEntry) -> None:
    """Delete every repair issue of the entry."""
    async_clear(hass, entry, frozenset(Repair))


@callback
def async_update_from_attempt(
    hass: HomeAssistant, entry: DirectSendConfigEntry, attempt: Attempt
) -> None:
    """Raise the repair a failed delivery calls for; clear them after a success."""
    if attempt.delivered:
        async_clear(hass, entry, frozenset(Repair) - _CLEARED_ONLY_BY_TEST)
    if attempt.outcome is Outcome.DELIVERED or (failure := attempt.failure) is None:
        return
    if failure.reply is not None:
        classification = classify_reply(failure.reply)
        if classification.repair is not None:
            async_raise(hass, entry, classification.repair, classification.placeholders)
        return
    if (
        failure.kind is ErrorKind.PORT_BLOCKED
        and attempt.attempts >= _PORT_BLOCKED_AFTER
    ):
        async_raise(hass, entry, Repair.PORT_BLOCKED, {})
    elif (repair := _REPAIR_OF_KIND.get(failure.kind)) is not None:
        facts = {"error": failure.error}
        if isinstance(attempt.error, NotExchangeOnlineError):
            facts["host"] = attempt.error.host
        async_raise(hass, entry, repair, facts)


@callback
def async_update_from_report(
    hass: HomeAssistant, entry: DirectSendConfigEntry, report: ConnectionReport
) -> None:
    """Raise what a connection test found; clear what it proved fixed."""
    found = set(report.repairs)
    for repair in found:
        async_raise(hass, entry, repair, _report_facts(report))
    async_clear(hass, entry, frozenset(Repair) - _CLEARED_ONLY_BY_DELIVERY - found)


def _report_facts(report: ConnectionReport) -> dict[str, str]:
    """Return the placeholders a connection test can fill."""
    facts = {
        "host": report.host or UNKNOWN,
        "client_ip": report.client_ip or UNKNOWN,
        "result": _spf_result(report),
        "record": report.spf.record or UNKNOWN,
        "suggested_record": report.spf.suggested_record or UNKNOWN,
    }
    if report.failure is not None:
        facts["error"] = report.failure.message
        if report.failure.reply is not None:
            facts |= report.failure.reply.placeholders
    return facts


def _spf_result(report: ConnectionReport) -> str:
    """Return the SPF result, with the evaluator's reason when it has one."""
    result = report.spf.result.value if report.spf.result else UNKNOWN
    return f"{result}: {report.spf.error}" if report.spf.error else result
