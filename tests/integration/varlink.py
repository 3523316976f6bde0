# SPDX-License-Identifier: MIT
"""A short, stdlib-only varlink client: the independent oracle for tern's integration tests.

It shares no code with tern's C varlink module. It speaks https://varlink.org over a UNIX
stream socket: one JSON object per message, each terminated by a NUL byte. Descriptors travel
as SCM_RIGHTS ancillary data with the first byte of the message that refers to them (as
systemd's varlink does), and are referred to by index.

    with varlink.connect(path) as c:
        reply = c.call("io.tern.Test.Echo", {"text": "hi"})      # dict (+ .fds, .continues)
        for r in c.call_more("io.tern.Test.Count", {"count": 3}): ...
        c.call("io.tern.Test.Ping", oneway=True)                   # returns None
        c.send_raw(b'{"method": nope}\\0')                         # negative tests

An error reply raises VarlinkError(name, parameters). A connection the peer closed raises
ConnectionClosed. Needs Python >= 3.9 (socket.send_fds / socket.recv_fds).
"""
import json
import os
import socket

DEFAULT_TIMEOUT = 10.0
# Enough for any descriptor batch a tern message may carry (VARLINK_FDS_MAX is 16).
MAX_FDS = 64
READ_CHUNK = 256 * 1024


class VarlinkError(Exception):
    """An error reply: NAME ("org.varlink.service.InvalidParameter") and its parameters."""

    def __init__(self, name, parameters=None, fds=()):
        super().__init__(name, parameters or {})
        self.name = name
        self.parameters = parameters or {}
        self.fds = list(fds)

    def __str__(self):
        return "%s %s" % (self.name, json.dumps(self.parameters, sort_keys=True))


class ConnectionClosed(ConnectionError):
    """The peer closed the connection (end of file, or a reset)."""


class Reply(dict):
    """A reply's parameters, with the descriptors that came with it and its "continues" flag."""

    def __init__(self, parameters, fds=(), continues=False):
        super().__init__(parameters)
        self.fds = list(fds)
        self.continues = continues


class Connection:
    def __init__(self, sock):
        self.sock = sock
        self._buf = bytearray()
        self._buf_offset = 0          # stream offset of _buf[0]
        self._fds_at = {}             # stream offset of a message's first byte -> its descriptors
        self._prev_byte_nul = True    # the byte before the next chunk ended a message (or none yet)

    # ---- plumbing

    def fileno(self):
        return self.sock.fileno()

    def close(self):
        for fds in self._fds_at.values():
            for fd in fds:
                os.close(fd)
        self._fds_at = {}
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def settimeout(self, seconds):
        self.sock.settimeout(seconds)

    def send_raw(self, data, fds=()):
        """Write bytes as they are (no NUL is added); FDS go with the first byte."""
        data = bytes(data)
        sent = 0
        if fds:
            sent = socket.send_fds(self.sock, [data], list(fds))
        if sent < len(data):
            self.sock.sendall(data[sent:])

    def _read_chunk(self):
        try:
            data, fds, flags, _ = socket.recv_fds(self.sock, READ_CHUNK, MAX_FDS)
        except ConnectionResetError as e:
            raise ConnectionClosed("connection reset by the peer") from e
        if flags & getattr(socket, "MSG_CTRUNC", 0x8):
            for fd in fds:
                os.close(fd)
            raise OSError("descriptors were truncated")
        if not data:
            for fd in fds:
                os.close(fd)
            raise ConnectionClosed("end of file")
        start = self._buf_offset + len(self._buf)
        if fds:
            # A sender puts descriptors on the first byte of their message, and the kernel ends a
            # read with the segment that carried them: they belong to the last message that
            # starts inside this chunk.
            starts = [start] if self._prev_byte_nul else []
            starts += [start + i + 1 for i, b in enumerate(data[:-1]) if b == 0]
            owner = max(starts) if starts else self._buf_offset + self._buf.rfind(b"\0") + 1
            self._fds_at.setdefault(owner, []).extend(fds)
        self._prev_byte_nul = data[-1] == 0
        self._buf += data

    def receive(self):
        """The next message as (dict, fds)."""
        while True:
            nul = self._buf.find(b"\0")
            if nul >= 0:
                break
            self._read_chunk()
        start = self._buf_offset
        raw = bytes(self._buf[:nul])
        del self._buf[: nul + 1]
        self._buf_offset += nul + 1
        fds = self._fds_at.pop(start, [])
        try:
            msg = json.loads(raw.decode("utf-8"))
        except ValueError:
            for fd in fds:
                os.close(fd)
            raise
        if not isinstance(msg, dict):
            raise ValueError("reply is not a JSON object: %r" % raw[:200])
        return msg, fds

    # ---- calls

    @staticmethod
    def encode(method, parameters=None, more=False, oneway=False):
        msg = {"method": method}
        if parameters is not None:
            msg["parameters"] = parameters
        if more:
            msg["more"] = True
        if oneway:
            msg["oneway"] = True
        return json.dumps(msg).encode("utf-8") + b"\0"

    def send(self, method, parameters=None, more=False, oneway=False, fds=()):
        self.send_raw(self.encode(method, parameters, more, oneway), fds)

    def read_reply(self):
        """One reply: a Reply, or raises VarlinkError for an error reply."""
        msg, fds = self.receive()
        params = msg.get("parameters", {})
        if "error" in msg:
            raise VarlinkError(msg["error"], params, fds)
        return Reply(params, fds, bool(msg.get("continues", False)))

    def call(self, method, parameters=None, more=False, oneway=False, fds=()):
        """Call METHOD. Returns a Reply; with more=True the list of every reply; None for oneway."""
        self.send(method, parameters, more=more, oneway=oneway, fds=fds)
        if oneway:
            return None
        if more:
            return list(self._more())
        return self.read_reply()

    def call_more(self, method, parameters=None, fds=()):
        """Call with "more" and yield each reply as it arrives."""
        self.send(method, parameters, more=True, fds=fds)
        return self._more()

    def _more(self):
        while True:
            r = self.read_reply()
            yield r
            if not r.continues:
                return


def connect(path, timeout=DEFAULT_TIMEOUT):
    """Connect to the varlink service at PATH ("unix:PATH" is accepted too)."""
    if path.startswith("unix:"):
        path = path[5:]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return Connection(sock)
