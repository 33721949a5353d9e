"""A UDP DNS server on 127.0.0.1 that answers from a table, for the DNS source tests.

Built on dnspython's message API in a thread. A name with no records at all gets
NXDOMAIN, a name with records of other types gets an empty NOERROR answer, and a
CNAME is followed one step within the table. With ``silent`` set the server reads
queries and never answers, so tests can run into the resolver's timeout.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset


class LoopbackDns:
    def __init__(self) -> None:
        self.records: dict[tuple[str, str], list[str]] = {}
        self.rcodes: dict[str, dns.rcode.Rcode] = {}
        self.silent = False
        # (name, type) of every question received, in order.
        self.queries: list[tuple[str, str]] = []
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.05)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        """The server as a ``dns_servers`` entry: ``127.0.0.1:<port>``."""
        host, port = self._socket.getsockname()[:2]
        return f"{host}:{port}"

    def add(self, name: str, rdtype: str, *values: str) -> None:
        """Answer ``rdtype`` questions for ``name`` with ``values`` (zone-file text)."""
        self.records[(name.lower(), rdtype)] = list(values)

    def fail_with(self, name: str, rcode: dns.rcode.Rcode = dns.rcode.REFUSED) -> None:
        """Respond to every question for ``name`` with ``rcode`` and no records."""
        self.rcodes[name.lower()] = rcode

    def queried(self, rdtype: str = "A") -> list[str]:
        """Return the names queried with ``rdtype``, in order."""
        return [name for name, kind in self.queries if kind == rdtype]

    def start(self) -> LoopbackDns:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=2)
        self._socket.close()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                wire, peer = self._socket.recvfrom(65535)
            except TimeoutError:
                continue
            response = self._answer(dns.message.from_wire(wire))
            if response is not None:
                self._socket.sendto(response.to_wire(), peer)

    def _answer(self, query: dns.message.Message) -> dns.message.Message | None:
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rdtype))
        if self.silent:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.RA
        if name in self.rcodes:
            response.set_rcode(self.rcodes[name])
            return response
        if not any(known == name for known, _ in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response
        owner = question.name
        alias = self.records.get((name, "CNAME"))
        if alias and rdtype != "CNAME":
            response.answer.append(
                dns.rrset.from_text_list(owner, 60, "IN", "CNAME", alias)
            )
            owner = dns.name.from_text(alias[0])
            name = owner.to_text(omit_final_dot=True).lower()
        values = self.records.get((name, rdtype))
        if values:
            response.answer.append(
                dns.rrset.from_text_list(owner, 60, "IN", rdtype, values)
            )
        return response


@contextmanager
def running_dns() -> Iterator[LoopbackDns]:
    """Run a LoopbackDns for the length of the block."""
    server = LoopbackDns().start()
    try:
        yield server
    finally:
        server.stop()
