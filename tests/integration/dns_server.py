# SPDX-License-Identifier: MIT
"""A tiny authoritative DNS server for tests: stdlib only, UDP and TCP, one zone given as a dict.

It exists so that tern-smtp's real resolver path (glibc res_query(), reading /etc/resolv.conf)
can be driven end to end inside a private network namespace, without ever asking a real name
server (tests/integration/test_smtp_mx.py).

    zone = {
        "mx.test":      [("MX", (10, "mx1.test")), ("MX", (20, "mx2.test"))],
        "mx1.test":     [("A", "127.0.0.2")],
        "alias.test":   [("CNAME", "mx1.test")],
        "nullmx.test":  [("MX", (0, "."))],
        "v6.test":      [("AAAA", "::1")],
        "txt.test":     [("TXT", "v=spf1 -all")],
    }
    with DnsServer(zone, servfail={"broken.test"}, truncate={"big.test"}) as dns:
        ...                       # dns.queries: [("udp", "mx.test", "MX"), ...]

What it answers, for the one question of a standard query (opcode QUERY, class IN):
  - a name in SERVFAIL: RCODE SERVFAIL, no records;
  - a name in TRUNCATE, asked over UDP: TC set and no records, so that the resolver asks again
    over TCP, where the full answer is given;
  - a name in the zone: the records of the asked type (AA set), following CNAMEs inside the zone
    (each CNAME in the answer, then the target's records, as an authoritative server does), at
    most MAX_CNAME_CHAIN links; no records of the type is NODATA (NOERROR, no answers, the SOA in
    the authority section);
  - a name under the zone's suffix that is not in the zone, or a CNAME pointing at one: NXDOMAIN
    with the SOA; a name outside the suffix: REFUSED (we are not a recursive server);
  - anything that is not a well-formed single-question query: FORMERR (or NOTIMP for an opcode
    other than QUERY). A query too short to carry an ID is dropped.
The question is echoed byte for byte (its case too); RD is copied, RA is clear. Names in the
answer are compressed (COMPRESS=True, the default) against every name already written, so the
client's dn_expand() gets pointers to follow. A UDP answer longer than 512 bytes is truncated (TC).

Limits: no EDNS (an OPT record in the query is ignored, the answer has none), no wildcards, no
delegation, no zone transfers, one question per message; record types MX, A, AAAA, CNAME, TXT
(and the SOA it makes itself).
"""
import socket
import socketserver
import struct
import threading

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28, "ANY": 255}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
CLASS_IN = 1

RCODE_NOERROR, RCODE_FORMERR, RCODE_SERVFAIL, RCODE_NXDOMAIN, RCODE_NOTIMP, RCODE_REFUSED = 0, 1, 2, 3, 4, 5
FLAG_QR, FLAG_AA, FLAG_TC, FLAG_RD = 0x8000, 0x0400, 0x0200, 0x0100

# A UDP answer is at most this long without EDNS (RFC 1035 4.2.1).
UDP_MAX = 512
# CNAME links followed inside the zone before the answer stops (a loop ends there too).
MAX_CNAME_CHAIN = 8
TTL = 300


def normalize(name):
    """NAME as the zone keys it: lower case, no trailing dot; the root is ""."""
    return name.rstrip(".").lower()


class FormatError(Exception):
    pass


def read_name(msg, off):
    """The name at OFF in MSG (pointers followed): (name, offset after it where it was found)."""
    labels, end, seen = [], None, set()
    while True:
        if off >= len(msg):
            raise FormatError("name runs past the end")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if off + 1 >= len(msg):
                raise FormatError("truncated pointer")
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            if off in seen:
                raise FormatError("compression loop")
            seen.add(off)
            continue
        if n & 0xC0:
            raise FormatError("bad label type")
        if n == 0:
            return ".".join(labels), (end if end is not None else off + 1)
        if off + 1 + n > len(msg):
            raise FormatError("label runs past the end")
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n


class Writer:
    """A DNS message under construction, with name compression."""

    def __init__(self, compress):
        self.buf = bytearray()
        self.compress = compress
        self.offsets = {}       # a name suffix (normalized) -> where it was written

    def name(self, name):
        labels = [l for l in name.rstrip(".").split(".") if l] if name not in ("", ".") else []
        for i in range(len(labels)):
            suffix = normalize(".".join(labels[i:]))
            if self.compress and suffix in self.offsets:
                self.buf += struct.pack("!H", 0xC000 | self.offsets[suffix])
                return
            if len(self.buf) < 0x4000:
                self.offsets.setdefault(suffix, len(self.buf))
            raw = labels[i].encode("ascii")
            if not 0 < len(raw) < 64:
                raise ValueError("bad label in %r" % name)
            self.buf += bytes([len(raw)]) + raw
        self.buf += b"\0"

    def rr(self, owner, rtype, value):
        self.name(owner)
        self.buf += struct.pack("!HHIH", TYPES[rtype], CLASS_IN, TTL, 0)
        start = len(self.buf)
        if rtype == "A":
            self.buf += socket.inet_pton(socket.AF_INET, value)
        elif rtype == "AAAA":
            self.buf += socket.inet_pton(socket.AF_INET6, value)
        elif rtype == "MX":
            self.buf += struct.pack("!H", value[0])
            self.name(value[1])
        elif rtype == "CNAME":
            self.name(value)
        elif rtype == "TXT":
            for chunk in [value[i:i + 255] for i in range(0, len(value), 255)] or [""]:
                raw = chunk.encode()
                self.buf += bytes([len(raw)]) + raw
        elif rtype == "SOA":
            mname, rname, serial = value
            self.name(mname)
            self.name(rname)
            self.buf += struct.pack("!IIIII", serial, 3600, 600, 86400, TTL)
        else:
            raise ValueError("unsupported record type %s" % rtype)
        struct.pack_into("!H", self.buf, start - 2, len(self.buf) - start)


class DnsServer:
    """An authoritative server for ZONE (name -> [(type, value)]) on ADDRESS:PORT, UDP and TCP.

    SUFFIX is the zone's apex: names under it that are not in ZONE do not exist (NXDOMAIN).
    SERVFAIL and TRUNCATE are sets of names (any type); COMPRESS=False writes every name in full.
    Every question asked is appended to self.queries as (transport, name, type name), in the
    order they came."""

    def __init__(self, zone, address="127.0.0.1", port=53, suffix="test", servfail=(), truncate=(),
                 compress=True):
        self.zone = {normalize(k): list(v) for k, v in zone.items()}
        self.address, self.port = address, port
        self.suffix = normalize(suffix)
        self.servfail = {normalize(n) for n in servfail}
        self.truncate = {normalize(n) for n in truncate}
        self.compress = compress
        self.queries = []
        self._lock = threading.Lock()
        self._servers = []
        self._threads = []

    # ---- answers (pure: bytes in, bytes out)

    def in_suffix(self, name):
        return name == self.suffix or name.endswith("." + self.suffix)

    def soa(self):
        return (self.suffix, "SOA", ("ns." + self.suffix, "hostmaster." + self.suffix, 1))

    def lookup(self, name, qtype):
        """(rcode, answer records, authority records) for NAME/QTYPE."""
        answers, seen = [], set()
        for _ in range(MAX_CNAME_CHAIN + 1):
            records = self.zone.get(name)
            if records is None:
                if not answers and not self.in_suffix(name):
                    return RCODE_REFUSED, [], []
                return RCODE_NXDOMAIN, answers, [self.soa()]
            cname = [v for t, v in records if t == "CNAME"]
            if cname and qtype not in (TYPES["CNAME"], TYPES["ANY"]):
                answers.append((name, "CNAME", cname[0]))
                seen.add(name)
                name = normalize(cname[0])
                if name in seen:
                    break
                continue
            found = [(name, t, v) for t, v in records if qtype == TYPES["ANY"] or TYPES[t] == qtype]
            answers += found
            return RCODE_NOERROR, answers, ([] if found else [self.soa()])
        return RCODE_NOERROR, answers, []

    def answer(self, query, transport="udp"):
        """The response to QUERY (bytes) asked over TRANSPORT ("udp" or "tcp"); None to drop it."""
        if len(query) < 12:
            return None
        qid, flags, qdcount = struct.unpack("!HHH", query[:6])
        rd = flags & FLAG_RD
        opcode = (flags >> 11) & 0xF
        question = b""
        qname = None
        try:
            if flags & FLAG_QR or qdcount != 1:
                raise FormatError("not a single-question query")
            qname, end = read_name(query, 12)
            if end + 4 > len(query):
                raise FormatError("question runs past the end")
            qtype, qclass = struct.unpack("!HH", query[end:end + 4])
            question = query[12:end + 4]
        except FormatError:
            return self._message(qid, FLAG_QR | rd | (opcode << 11) | RCODE_FORMERR, question, [], [])
        name = normalize(qname)
        with self._lock:
            self.queries.append((transport, name, TYPE_NAMES.get(qtype, str(qtype))))
        if opcode != 0:
            return self._message(qid, FLAG_QR | rd | (opcode << 11) | RCODE_NOTIMP, question, [], [])
        if qclass != CLASS_IN:
            return self._message(qid, FLAG_QR | rd | RCODE_REFUSED, question, [], [])
        if name in self.servfail:
            return self._message(qid, FLAG_QR | rd | RCODE_SERVFAIL, question, [], [])
        if name in self.truncate and transport == "udp":
            return self._message(qid, FLAG_QR | FLAG_AA | FLAG_TC | rd, question, [], [])
        rcode, answers, authority = self.lookup(name, qtype)
        aa = FLAG_AA if rcode != RCODE_REFUSED else 0
        msg = self._message(qid, FLAG_QR | aa | rd | rcode, question, answers, authority)
        if transport == "udp" and len(msg) > UDP_MAX:
            msg = self._message(qid, FLAG_QR | aa | FLAG_TC | rd | rcode, question, [], [])
        return msg

    def _message(self, qid, flags, question, answers, authority):
        w = Writer(self.compress)
        w.buf += struct.pack("!HHHHHH", qid, flags, 1 if question else 0, len(answers), len(authority), 0)
        if question:
            # echoed as asked; its name is the first compression target
            qname, end = read_name(bytes(question), 0)
            labels = normalize(qname).split(".") if qname else []
            if end == sum(1 + len(l.encode("ascii")) for l in labels) + 1:
                # written without pointers: each of its suffixes is a compression target
                off = 12
                for i in range(len(labels)):
                    w.offsets.setdefault(".".join(labels[i:]), off)
                    off += 1 + len(labels[i].encode("ascii"))
            w.buf += question
        for owner, rtype, value in answers + authority:
            w.rr(owner, rtype, value)
        return bytes(w.buf)

    # ---- I/O

    def start(self):
        server = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self):
                data, sock = self.request
                reply = server.answer(data, "udp")
                if reply is not None:
                    sock.sendto(reply, self.client_address)

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self):
                f = self.request.makefile("rb")
                while True:
                    head = f.read(2)
                    if len(head) < 2:
                        return
                    (n,) = struct.unpack("!H", head)
                    data = f.read(n)
                    if len(data) < n:
                        return
                    reply = server.answer(data, "tcp")
                    if reply is None:
                        return
                    self.request.sendall(struct.pack("!H", len(reply)) + reply)

        class UdpServer(socketserver.ThreadingUDPServer):
            allow_reuse_address = True
            daemon_threads = True
            address_family = socket.AF_INET6 if ":" in self.address else socket.AF_INET

        class TcpServer(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True
            address_family = socket.AF_INET6 if ":" in self.address else socket.AF_INET

        self._servers = [UdpServer((self.address, self.port), Udp)]
        try:
            self._servers.append(TcpServer((self.address, self.port), Tcp))
        except OSError:
            self._servers.pop().server_close()
            raise
        for s in self._servers:
            t = threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self):
        for s in self._servers:
            s.shutdown()
            s.server_close()
        for t in self._threads:
            t.join()
        self._servers, self._threads = [], []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def asked(self, name, qtype=None, transport=None):
        """How often NAME (of QTYPE, over TRANSPORT, when given) was asked."""
        name = normalize(name)
        with self._lock:
            return sum(1 for t, n, q in self.queries
                       if n == name and (qtype is None or q == qtype) and (transport is None or t == transport))
