"""A real DNS server on 127.0.0.1, over UDP and TCP, with an editable zone."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
import errno
import socket

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset

from .server import LoopbackServer

LOOPBACK = "127.0.0.1"
# RFC 1035 limits a DNS message over UDP to 512 bytes unless the query offers EDNS.
_CLASSIC_UDP_SIZE = 512
_TXT_CHUNK = 255
_PORT_ATTEMPTS = 20


def _key(name: str) -> str:
    """Return the zone key of a name: lower case, no trailing dot."""
    return name.rstrip(".").lower()


@dataclass
class _RRSet:
    """Hold the records of one type at one name."""

    ttl: int
    rdatas: list[dns.rdata.Rdata] = field(default_factory=list)


class _Zone:
    """Hold the records and the scripted failures, and answer queries."""

    def __init__(self) -> None:
        """Start empty: every name is NXDOMAIN."""
        self.records: dict[str, dict[dns.rdatatype.RdataType, _RRSet]] = {}
        self.servfail: set[str] = set()
        self.drop: set[str] = set()
        self.queries: list[tuple[str, str]] = []

    def add(
        self, name: str, rdtype: str, ttl: int, rdatas: list[dns.rdata.Rdata]
    ) -> None:
        """Add records to a name's RRset of that type, which takes the new TTL."""
        rrsets = self.records.setdefault(_key(name), {})
        rrset = rrsets.setdefault(dns.rdatatype.from_text(rdtype), _RRSet(ttl))
        rrset.ttl = ttl
        rrset.rdatas.extend(rdata for rdata in rdatas if rdata not in rrset.rdatas)

    def answer(self, wire: bytes, max_size: int | None) -> bytes | None:
        """Return the wire response to a wire query, or None to stay silent."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        response = dns.message.make_response(query, recursion_available=True)
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire()
        question = query.question[0]
        name = _key(question.name.to_text())
        self.queries.append((name, dns.rdatatype.to_text(question.rdtype)))
        if name in self.drop:
            return None
        if name in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif name not in self.records:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif (rrset := self.records[name].get(question.rdtype)) is not None:
            response.answer.append(
                dns.rrset.from_rdata_list(question.name, rrset.ttl, rrset.rdatas)
            )
        if max_size is None:
            return response.to_wire()
        limit = (
            max(query.payload, _CLASSIC_UDP_SIZE)
            if query.edns >= 0
            else _CLASSIC_UDP_SIZE
        )
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            response.answer.clear()
            response.flags |= dns.flags.TC
            return response.to_wire()


class _UdpProtocol(asyncio.DatagramProtocol):
    """Answer DNS queries over UDP."""

    def __init__(self, zone: _Zone) -> None:
        """Serve the zone."""
        self._zone = zone
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport to reply on."""
        assert isinstance(transport, asyncio.DatagramTransport)
        self._transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        """Reply to one query."""
        reply = self._zone.answer(data, max_size=_CLASSIC_UDP_SIZE)
        if reply is not None and self._transport is not None:
            self._transport.sendto(reply, addr)


class _TcpProtocol(asyncio.Protocol):
    """Answer length-prefixed DNS queries over TCP."""

    def __init__(self, zone: _Zone) -> None:
        """Serve the zone."""
        self._zone = zone
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport to reply on."""
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        """Reply to every complete query in the buffer."""
        self._buffer.extend(data)
        while len(self._buffer) >= 2:
            size = int.from_bytes(self._buffer[:2], "big")
            if len(self._buffer) < 2 + size:
                return
            wire = bytes(self._buffer[2 : 2 + size])
            del self._buffer[: 2 + size]
            reply = self._zone.answer(wire, max_size=None)
            if reply is not None and self._transport is not None:
                self._transport.write(len(reply).to_bytes(2, "big") + reply)


class DnsResponder(LoopbackServer):
    """Serve an editable zone on 127.0.0.1: NXDOMAIN, NODATA as DNS says."""

    def __init__(self, port: int = 0) -> None:
        """Prepare a responder on the port, or on a free one when 0."""
        self.host = LOOPBACK
        self.port = port
        self._zone = _Zone()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    @property
    def queries(self) -> list[tuple[str, str]]:
        """Return (name, type) of every query; names lower case, no final dot."""
        return self._zone.queries

    async def start(self) -> None:
        """Listen on UDP and TCP on the same port in the current event loop."""
        loop = asyncio.get_running_loop()
        for _ in range(_PORT_ATTEMPTS):
            udp, _protocol = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self._zone), local_addr=(self.host, self.port)
            )
            port: int = udp.get_extra_info("sockname")[1]
            try:
                self._tcp = await loop.create_server(
                    lambda: _TcpProtocol(self._zone),
                    self.host,
                    port,
                    family=socket.AF_INET,
                )
            except OSError as err:
                udp.close()
                # A port free on UDP can be taken on TCP: try another, unless chosen.
                if err.errno != errno.EADDRINUSE or self.port:
                    raise
                continue
            self._udp = udp
            self.port = port
            return
        raise OSError(errno.EADDRINUSE, "No port free on both UDP and TCP")

    async def close(self) -> None:
        """Stop listening and drop open TCP connections."""
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            self._tcp.abort_clients()
            await self._tcp.wait_closed()
            self._tcp = None

    def add_mx(
        self, domain: str, records: list[tuple[int, str]], ttl: int = 300
    ) -> None:
        """Add MX records (preference, exchange host) to the domain."""
        self._add(
            domain, "MX", ttl, [f"{pref} {_absolute(host)}" for pref, host in records]
        )

    def add_a(self, name: str, address: str, ttl: int = 300) -> None:
        """Add an IPv4 address record to the name."""
        self._add(name, "A", ttl, [address])

    def add_aaaa(self, name: str, address: str, ttl: int = 300) -> None:
        """Add an IPv6 address record to the name."""
        self._add(name, "AAAA", ttl, [address])

    def add_txt(self, domain: str, texts: list[str], ttl: int = 300) -> None:
        """Add one TXT record per text, split into the 255-byte strings DNS requires."""
        rdatas: list[dns.rdata.Rdata] = []
        for text in texts:
            raw = text.encode()
            chunks = [
                raw[i : i + _TXT_CHUNK] for i in range(0, len(raw), _TXT_CHUNK)
            ] or [b""]
            rdatas.append(
                dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, chunks)
            )
        self._zone.add(domain, "TXT", ttl, rdatas)

    def tenant(
        self, domain: str, mx_host: str, ip: str = LOOPBACK, ttl: int = 300
    ) -> None:
        """Add a tenant: MX domain -> mx_host (preference 10) and A mx_host -> ip."""
        self.add_mx(domain, [(10, mx_host)], ttl=ttl)
        self.add_a(mx_host, ip, ttl=ttl)

    def remove(self, name: str, rdtype: str | None = None) -> None:
        """Forget a name's records (of one type if given) and scripted failures."""
        key = _key(name)
        if rdtype is None:
            self._zone.records.pop(key, None)
            self._zone.servfail.discard(key)
            self._zone.drop.discard(key)
            return
        rrsets = self._zone.records.get(key, {})
        rrsets.pop(dns.rdatatype.from_text(rdtype), None)

    def servfail(self, name: str) -> None:
        """Answer SERVFAIL for the name until it is removed."""
        self._zone.servfail.add(_key(name))

    def drop(self, name: str) -> None:
        """Never answer queries for the name until it is removed: clients time out."""
        self._zone.drop.add(_key(name))

    def _add(self, name: str, rdtype: str, ttl: int, texts: list[str]) -> None:
        """Parse record texts of one type and add them to the name."""
        rrset = dns.rrset.from_text_list(_absolute(name), ttl, "IN", rdtype, texts)
        self._zone.add(name, rdtype, ttl, list(rrset))


def _absolute(name: str) -> str:
    """Return the name with a trailing dot."""
    return name if name.endswith(".") else f"{name}."
