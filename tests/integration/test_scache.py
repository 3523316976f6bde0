# SPDX-License-Identifier: MIT
"""The shared connection cache end to end: the real tern-scache, real TCP connections on loopback.

A small SMTP-ish peer (Peer, a thread in this process, 127.0.0.1 on an ephemeral port) greets
each connection with "220 peer N", answers each line with "250 N LINE", and records per
connection what it received and when it saw the connection end. Clients are the independent
Python varlink client (varlink.py), separate Python processes (HELPER), ternctl, and
tests/scache/scache-client-test.c on src/lib/scache-client.c.

What is tested, by hand (`tern-scache -c main.cf`) and under `systemd-socket-activate
--fdname=varlink`:
  - a process connects to the peer, says HELO, saves the connected socket (SaveEndpoint +
    SaveDestination) and exits; another process finds it (FindDestination) and talks through
    it: the peer sees both lines on the SAME connection, which never ended in between;
  - FIFO: sessions of one endpoint come back oldest first, then NotFound; FindDestination walks
    the bindings oldest first to the first endpoint with a session;
  - SaveDestination with the same endpoint and properties refreshes the binding's expiry;
  - expiry: with connection_cache_ttl_limit = 1s the daemon closes the session (the peer sees
    EOF, ~1 s after the save, also for ttl 100 and 2^58: the limit caps it) and a find gets
    NotFound;
  - bad input: missing, mistyped and unknown parameters (InvalidParameter), ttl <= 0
    (InvalidRequest ttl), SaveEndpoint without a descriptor (InvalidParameter fd), a pipe
    (InvalidRequest fd), two descriptors (InvalidRequest fd), a descriptor on FindEndpoint
    (InvalidParameter fd), a listening or unconnected socket (InvalidRequest fd), a label with
    \\u0000 (the connection is dropped, the daemon serves on), labels and properties over their
    limits (InvalidRequest), 5,000 sessions of one endpoint (all kept, handed back in order);
  - a full cache (RLIMIT_NOFILE 1100: 550 sessions) closes the oldest sessions first and warns once;
  - no leaked descriptor: /proc/PID/fd of tern-scache is back at its baseline after saves,
    finds, expiries, refusals and a client that leaves in the middle of a message with a
    descriptor already sent;
  - statistics: `ternctl scache stats` prints Postfix's four lines exactly for a known sequence,
    the same lines go to stderr at SIGTERM, and every connection_cache_status_update_time
    (then the counters start again);
  - `ternctl scache find-dest` / `find-endp`: the peer's address and the properties; the session
    is gone afterwards (the peer sees EOF; the next find is NotFound);
  - socket activation: READY=1, serving, idle exit after max_idle with cached sessions closed
    (the peer sees EOF), the exit statistics, and a new activation on the same socket;
  - src/lib/scache-client.c: save/find work; with the daemon killed the first failure is
    retried quietly, the second warns and disables caching, later calls are -EUNATCH at once.
Every daemon not killed on purpose is stopped with SIGTERM: exit 0, no sanitizer report.

Binaries: $TERN_SCACHE, $TERNCTL, $SCACHE_CLIENT_TEST; the source tree: $TERN_SOURCE_ROOT.
"""
import json
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import varlink  # noqa: E402
from harness import (SOURCE_ROOT, SANITIZER_RE, EXIT_TIMEOUT,  # noqa: E402
                     DaemonTestCase, base_env, write_conf, wait_until)

BUILD = os.path.join(SOURCE_ROOT, "build")
SCACHE = os.environ.get("TERN_SCACHE", os.path.join(BUILD, "src", "scache", "tern-scache"))
TERNCTL = os.environ.get("TERNCTL", os.path.join(BUILD, "src", "ctl", "ternctl"))
CLIENT_TEST = os.environ.get("SCACHE_CLIENT_TEST",
                             os.path.join(BUILD, "tests", "integration", "scache-client-test"))

TTL_LIMIT = 10          # seconds: connection_cache_ttl_limit, unless a test is about expiry
MAX_IDLE = 2            # seconds: max_idle (applies when socket-activated)
LABEL_MAX = 1024        # src/scache/scache.h SCACHE_LABEL_MAX
PROPS_MAX = 64 * 1024   # src/scache/scache.h SCACHE_PROPS_MAX
EOF_TIMEOUT = 5.0       # how long the peer may wait for an expiry's EOF

INVALID_PARAMETER = "org.varlink.service.InvalidParameter"
INVALID_REQUEST = "io.tern.Scache.InvalidRequest"
NOT_FOUND = "io.tern.Scache.NotFound"

# A separate process: "save" connects to the peer, says HELO, saves the socket and exits;
# "find" finds a destination and talks through the descriptor. One JSON line on stdout.
HELPER = r'''
import json, os, socket, sys
sys.path.insert(0, os.environ["VARLINK_PY_DIR"])
import varlink
mode, path = sys.argv[1], sys.argv[2]
if mode == "save":
    port, endpoint, destination = int(sys.argv[3]), sys.argv[4], sys.argv[5]
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb")
    greeting = f.readline().decode().strip()
    s.sendall(b"HELO saver\r\n")
    reply = f.readline().decode().strip()
    with varlink.connect(path) as c:
        c.call("io.tern.Scache.SaveEndpoint", {"ttl": 10, "endpoint": endpoint,
               "properties": "saved_by=%d\n" % os.getpid(), "fd": 0}, fds=[s.fileno()])
        c.call("io.tern.Scache.SaveDestination", {"ttl": 10, "destination": destination,
               "properties": "destination=%s\n" % destination, "endpoint": endpoint})
    print(json.dumps({"pid": os.getpid(), "greeting": greeting, "reply": reply}))
else:
    destination = sys.argv[3]
    with varlink.connect(path) as c:
        r = c.call("io.tern.Scache.FindDestination", {"destination": destination})
    s = socket.socket(fileno=r.fds[r["fd"]])
    s.settimeout(10)
    s.sendall(b"MAIL FROM:<finder>\r\n")
    reply = s.makefile("rb").readline().decode().strip()
    print(json.dumps({"pid": os.getpid(), "reply": reply, "peer": list(s.getpeername()),
                      "destinationProperties": r["destinationProperties"],
                      "endpointProperties": r["endpointProperties"], "nfds": len(r.fds)}))
    s.close()
'''


class Peer:
    """An SMTP-ish server on 127.0.0.1 in a thread: "220 peer N" to connection N (from 1), then
    "250 N LINE" for each LINE; records each connection's lines and when it ended (EOF)."""

    def __init__(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.cond = threading.Condition()
        self.conns = {}         # N -> {"lines": [...], "ended": monotonic time or None}
        self.stop_r, self.stop_w = os.pipe()
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.listener, selectors.EVENT_READ, "accept")
        self.sel.register(self.stop_r, selectors.EVENT_READ, "stop")
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        bufs = {}
        while True:
            for key, _ in self.sel.select():
                if key.data == "stop":
                    for s in list(bufs):
                        s.close()
                    return
                if key.data == "accept":
                    try:
                        s, _ = self.listener.accept()
                    except BlockingIOError:
                        continue
                    with self.cond:
                        n = len(self.conns) + 1
                        self.conns[n] = {"lines": [], "ended": None}
                    s.setblocking(True)
                    s.sendall(b"220 peer %d\r\n" % n)
                    bufs[s] = [n, b""]
                    self.sel.register(s, selectors.EVENT_READ, "conn")
                    continue
                s = key.fileobj
                n = bufs[s][0]
                try:
                    data = s.recv(65536)
                except ConnectionError:
                    data = b""
                if not data:
                    self.sel.unregister(s)
                    s.close()
                    del bufs[s]
                    with self.cond:
                        self.conns[n]["ended"] = time.monotonic()
                        self.cond.notify_all()
                    continue
                bufs[s][1] += data
                while b"\n" in bufs[s][1]:
                    line, _, bufs[s][1] = bufs[s][1].partition(b"\n")
                    line = line.rstrip(b"\r").decode()
                    with self.cond:
                        self.conns[n]["lines"].append(line)
                        self.cond.notify_all()
                    try:
                        s.sendall(b"250 %d %s\r\n" % (n, line.encode()))
                    except OSError:
                        pass

    def close(self):
        os.write(self.stop_w, b"x")
        self.thread.join(EXIT_TIMEOUT)
        self.sel.close()
        self.listener.close()
        os.close(self.stop_r)
        os.close(self.stop_w)

    def dial(self):
        """A connection to the peer, greeting read: (socket, its number N at the peer)."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=EXIT_TIMEOUT)
        greeting = recv_line(s)
        assert greeting.startswith("220 peer "), greeting
        return s, int(greeting.split()[2])

    def lines(self, n):
        with self.cond:
            return list(self.conns[n]["lines"])

    def ended(self, n):
        with self.cond:
            return self.conns[n]["ended"]

    def wait_ended(self, n, timeout=EOF_TIMEOUT):
        """When connection N ended (monotonic); AssertionError if it has not within TIMEOUT."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.conns[n]["ended"] is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("peer connection %d did not end within %.1f s" % (n, timeout))
                self.cond.wait(left)
            return self.conns[n]["ended"]


def recv_line(s):
    """One CRLF line from S, read a byte at a time (nothing beyond it is consumed)."""
    out = b""
    while not out.endswith(b"\r\n"):
        b = s.recv(1)
        if not b:
            raise ConnectionError("end of file after %r" % out)
        out += b
    return out[:-2].decode()


def say(s, text):
    """Send TEXT as a line on S; the peer's reply line."""
    s.sendall(text.encode() + b"\r\n")
    return recv_line(s)


def found_socket(fd):
    """The socket of a descriptor a find handed out. Blocking with a bound: the open file
    description is shared with whoever saved it, and Python's timeouts made it O_NONBLOCK."""
    s = socket.socket(fileno=fd)
    s.settimeout(EXIT_TIMEOUT)
    return s


def count_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def ctime15(t):
    """ctime(t) + 4, %.15s: "Mar  3 10:15:04" (TZ=UTC in the daemons' environment)."""
    return time.asctime(time.gmtime(t))[4:19]


class ScacheTestCase(DaemonTestCase):
    TMP_PREFIX = "tern-scache-it-"
    DAEMON = "tern-scache"
    BINARY = SCACHE
    SOCKET_NAME = "scache"
    STDERR_NAME = "scache.err"
    STDERR_APPEND = True

    def setUp(self):
        super().setUp()
        self.peer = Peer()
        self.addCleanup(self.peer.close)
        self.configure()

    def configure(self, **params):
        settings = {"runtime_directory": self.rt, "max_idle": "%ds" % MAX_IDLE,
                    "connection_cache_ttl_limit": "%ds" % TTL_LIMIT}
        settings.update(params)
        write_conf(self.conf_path, "tern-scache integration test", settings)

    def env(self):
        env = base_env()
        env["TZ"] = "UTC"       # the "start interval" line is local time
        return env

    def start_by_hand(self):
        env = self.env()
        env["NOTIFY_SOCKET"] = self.listen_notify("notify.%d" % len(self.daemons)).path
        d = self.spawn(self.daemon_argv(), env)
        try:
            self.notify.wait_for("READY=1")
        except AssertionError:
            raise AssertionError("tern-scache not ready; exit %s, stderr:\n%s" % (d.proc.poll(), d.stderr()))
        return d

    def connect(self):
        c = varlink.connect(self.socket_path)
        self.addCleanup(c.close)
        return c

    # ---- requests

    def save_endpoint(self, c, endpoint, props, fd, ttl=TTL_LIMIT):
        return c.call("io.tern.Scache.SaveEndpoint",
                      {"ttl": ttl, "endpoint": endpoint, "properties": props, "fd": 0}, fds=[fd])

    def save_destination(self, c, destination, props, endpoint, ttl=TTL_LIMIT):
        return c.call("io.tern.Scache.SaveDestination",
                      {"ttl": ttl, "destination": destination, "properties": props, "endpoint": endpoint})

    def find_endpoint(self, c, endpoint):
        """(properties, socket) of ENDPOINT's oldest session."""
        r = c.call("io.tern.Scache.FindEndpoint", {"endpoint": endpoint})
        self.assertEqual(len(r.fds), 1, "one descriptor with the reply")
        return r["properties"], found_socket(r.fds[r["fd"]])

    def find_destination(self, c, destination):
        """(destination properties, endpoint properties, socket)."""
        r = c.call("io.tern.Scache.FindDestination", {"destination": destination})
        self.assertEqual(len(r.fds), 1, "one descriptor with the reply")
        return r["destinationProperties"], r["endpointProperties"], found_socket(r.fds[r["fd"]])

    def save_session(self, c, endpoint, text, ttl=TTL_LIMIT, props=None):
        """A new peer connection that said TEXT, saved under ENDPOINT (our copy closed): its N."""
        s, n = self.peer.dial()
        self.assertEqual(say(s, text), "250 %d %s" % (n, text))
        self.save_endpoint(c, endpoint, props if props is not None else "n=%d\n" % n, s.fileno(), ttl=ttl)
        s.close()
        return n

    def assertError(self, name, params, fn, *args, **kw):
        with self.assertRaises(varlink.VarlinkError) as cm:
            fn(*args, **kw)
        for fd in cm.exception.fds:
            os.close(fd)
        self.assertEqual((cm.exception.name, cm.exception.parameters), (name, params))

    def assertNotFound(self, c, method, params):
        self.assertError(NOT_FOUND, {}, c.call, method, params)

    def helper(self, *args):
        env = base_env()
        env["VARLINK_PY_DIR"] = HERE
        r = subprocess.run([sys.executable, "-c", HELPER] + list(args), env=env, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0, "helper %s: %s" % (args[0], r.stderr))
        return json.loads(r.stdout)

    def ternctl(self, *args):
        r = subprocess.run([TERNCTL, "-c", self.conf_path] + list(args), env=self.env(),
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        self.assertNotRegex(r.stderr, SANITIZER_RE, "sanitizer report in ternctl's stderr")
        return r

    def stats(self):
        with varlink.connect(self.socket_path) as c:
            return c.call("io.tern.Scache.Statistics")

    def handoff(self):
        """The saving process exits; another one finds the session and talks through it."""
        saved = self.helper("save", self.socket_path, str(self.peer.port), "smtp\n127.0.0.1\nep", "smtp\ndest")
        n = int(saved["greeting"].split()[2])
        self.assertEqual(saved["reply"], "250 %d HELO saver" % n)
        self.assertIsNone(self.peer.ended(n), "the connection ended when its saver exited")
        found = self.helper("find", self.socket_path, "smtp\ndest")
        self.assertNotEqual(found["pid"], saved["pid"])
        self.assertEqual(found["reply"], "250 %d MAIL FROM:<finder>" % n)
        self.assertEqual(found["peer"], ["127.0.0.1", self.peer.port])
        self.assertEqual((found["destinationProperties"], found["endpointProperties"], found["nfds"]),
                         ("destination=smtp\ndest\n", "saved_by=%d\n" % saved["pid"], 1))
        self.assertEqual(self.peer.lines(n), ["HELO saver", "MAIL FROM:<finder>"])
        self.peer.wait_ended(n)         # the finder closed it: nobody else holds it
        with varlink.connect(self.socket_path) as c:
            self.assertNotFound(c, "io.tern.Scache.FindDestination", {"destination": "smtp\ndest"})
            self.assertNotFound(c, "io.tern.Scache.FindEndpoint", {"endpoint": "smtp\n127.0.0.1\nep"})


class ByHand(ScacheTestCase):
    def test_session_outlives_the_process_that_saved_it(self):
        self.start_by_hand()
        self.handoff()

    def test_fifo(self):
        self.start_by_hand()
        c = self.connect()
        ns = [self.save_session(c, "ep", "HELO %d" % i) for i in range(3)]
        for i, n in enumerate(ns):
            props, s = self.find_endpoint(c, "ep")
            self.assertEqual(props, "n=%d\n" % n, "find %d: the oldest session first" % i)
            self.assertEqual(say(s, "RSET"), "250 %d RSET" % n)
            s.close()
            self.peer.wait_ended(n)
        self.assertNotFound(c, "io.tern.Scache.FindEndpoint", {"endpoint": "ep"})
        # Bindings oldest first, to the first endpoint that still has a session.
        a1 = self.save_session(c, "a", "HELO a1")
        b1 = self.save_session(c, "b", "HELO b1")
        b2 = self.save_session(c, "b", "HELO b2")
        self.save_destination(c, "d", "via=a\n", "a")
        self.save_destination(c, "d", "via=b\n", "b")
        got = []
        for _ in range(3):
            dprops, eprops, s = self.find_destination(c, "d")
            got.append((dprops, eprops))
            s.close()
        self.assertEqual(got, [("via=a\n", "n=%d\n" % a1), ("via=b\n", "n=%d\n" % b1), ("via=b\n", "n=%d\n" % b2)])
        self.assertNotFound(c, "io.tern.Scache.FindDestination", {"destination": "d"})
        st = self.stats()
        self.assertEqual((st["sessions"], st["endpoints"], st["destinations"]), (0, 0, 1))

    def test_save_destination_refreshes_its_binding(self):
        self.configure(connection_cache_ttl_limit="2s")
        self.start_by_hand()
        c = self.connect()
        self.save_destination(c, "refreshed", "p\n", "ep", ttl=2)
        self.save_destination(c, "control", "p\n", "ep", ttl=2)
        t0 = time.monotonic()           # both bindings expire at t0 + 2 s at the latest
        wait_until(lambda: time.monotonic() >= t0 + 1.0, 2)
        t1 = time.monotonic()
        self.save_destination(c, "refreshed", "p\n", "ep", ttl=2)      # now until t1 + 2 s at least
        n = self.save_session(c, "ep", "HELO one")
        self.save_session(c, "ep", "HELO two")
        wait_until(lambda: time.monotonic() >= t0 + 2.3, 3)
        self.assertLess(time.monotonic(), t1 + 1.8, "too slow to tell a refresh from none")
        self.assertNotFound(c, "io.tern.Scache.FindDestination", {"destination": "control"})
        dprops, eprops, s = self.find_destination(c, "refreshed")
        self.assertEqual((dprops, eprops), ("p\n", "n=%d\n" % n))
        s.close()
        self.assertEqual(self.stats()["destinations"], 1)

    def test_expiry_closes_the_session(self):
        self.configure(connection_cache_ttl_limit="1s")
        d = self.start_by_hand()
        c = self.connect()
        c.call("io.tern.Scache.Statistics")     # accepted: counted in the baseline
        base = count_fds(d.pid)
        for ttl in (1, 100, 2 ** 58):   # capped at the limit (2^58 s in usec wraps around to 0)
            t0 = time.monotonic()
            n = self.save_session(c, "ep%d" % ttl, "HELO %d" % ttl, ttl=ttl)
            self.save_destination(c, "d%d" % ttl, "", "ep%d" % ttl, ttl=ttl)
            ended = self.peer.wait_ended(n)
            self.assertGreaterEqual(ended - t0, 0.9, "ttl %d: closed before the ttl" % ttl)
            self.assertLess(ended - t0, 3.0, "ttl %d: not closed at connection_cache_ttl_limit" % ttl)
            self.assertEqual(self.peer.lines(n), ["HELO %d" % ttl])
            self.assertNotFound(c, "io.tern.Scache.FindEndpoint", {"endpoint": "ep%d" % ttl})
            self.assertNotFound(c, "io.tern.Scache.FindDestination", {"destination": "d%d" % ttl})
        st = self.stats()
        self.assertEqual((st["sessions"], st["endpoints"], st["destinations"]), (0, 0, 0))
        self.assertTrue(wait_until(lambda: count_fds(d.pid) == base, EXIT_TIMEOUT),
                        "descriptors: %d, baseline %d" % (count_fds(d.pid), base))

    def test_bad_input(self):
        self.start_by_hand()
        c = self.connect()
        s, n = self.peer.dial()
        self.addCleanup(s.close)
        fd = s.fileno()
        ok = {"ttl": 2, "endpoint": "ep", "properties": "", "fd": 0}
        save = "io.tern.Scache.SaveEndpoint"
        for drop in ("ttl", "endpoint", "properties", "fd"):
            p = {k: v for k, v in ok.items() if k != drop}
            self.assertError(INVALID_PARAMETER, {"parameter": drop}, c.call, save, p, fds=[fd])
        for name, bad in (("ttl", "2"), ("ttl", 2.5), ("endpoint", 5), ("properties", None), ("fd", "0")):
            self.assertError(INVALID_PARAMETER, {"parameter": name}, c.call, save, dict(ok, **{name: bad}),
                             fds=[fd])
        self.assertError(INVALID_PARAMETER, {"parameter": "extra"}, c.call, save, dict(ok, extra=1), fds=[fd])
        self.assertError(INVALID_PARAMETER, {"parameter": "destination"}, c.call,
                         "io.tern.Scache.FindDestination", {})
        self.assertError(INVALID_PARAMETER, {"parameter": "endpoint"}, c.call,
                         "io.tern.Scache.SaveDestination", {"ttl": 1, "destination": "d", "properties": ""})
        # ttl <= 0
        for ttl in (0, -1):
            self.assertError(INVALID_REQUEST, {"parameter": "ttl"}, c.call, save, dict(ok, ttl=ttl), fds=[fd])
            self.assertError(INVALID_REQUEST, {"parameter": "ttl"}, self.save_destination, c, "d", "", "ep",
                             ttl=ttl)
        # descriptors: none, not a socket, two, one where none belongs
        self.assertError(INVALID_PARAMETER, {"parameter": "fd"}, c.call, save, ok)
        self.assertError(INVALID_PARAMETER, {"parameter": "fd"}, c.call, save, dict(ok, fd=1), fds=[fd])
        r, w = os.pipe()
        try:
            self.assertError(INVALID_REQUEST, {"parameter": "fd"}, c.call, save, ok, fds=[r])
        finally:
            os.close(r)
            os.close(w)
        s2, _ = self.peer.dial()
        with s2:
            self.assertError(INVALID_REQUEST, {"parameter": "fd"}, c.call, save, ok, fds=[fd, s2.fileno()])
        self.assertError(INVALID_PARAMETER, {"parameter": "fd"}, c.call, "io.tern.Scache.FindEndpoint",
                         {"endpoint": "ep"}, fds=[fd])
        # a socket, but no connection: listening, or never connected
        with socket.socket() as listening, socket.socket() as unconnected:
            listening.bind(("127.0.0.1", 0))
            listening.listen()
            for x in (listening, unconnected):
                self.assertError(INVALID_REQUEST, {"parameter": "fd"}, c.call, save, ok, fds=[x.fileno()])
        # lengths: at the limit accepted, one byte more refused
        long_label, too_long = "x" * LABEL_MAX, "x" * (LABEL_MAX + 1)
        self.save_endpoint(c, long_label, "p" * PROPS_MAX, fd)
        self.assertError(INVALID_REQUEST, {"parameter": "endpoint"}, self.save_endpoint, c, too_long, "", fd)
        self.assertError(INVALID_REQUEST, {"parameter": "properties"}, self.save_endpoint, c, "ep",
                         "p" * (PROPS_MAX + 1), fd)
        self.assertError(INVALID_REQUEST, {"parameter": "destination"}, self.save_destination, c, too_long, "",
                         "ep")
        self.assertError(INVALID_REQUEST, {"parameter": "endpoint"}, self.save_destination, c, "d", "", too_long)
        self.assertError(INVALID_REQUEST, {"parameter": "properties"}, self.save_destination, c, "d",
                         "p" * (PROPS_MAX + 1), "ep")
        self.assertError(INVALID_REQUEST, {"parameter": "endpoint"}, c.call, "io.tern.Scache.FindEndpoint",
                         {"endpoint": too_long})
        self.assertError(INVALID_REQUEST, {"parameter": "destination"}, c.call,
                         "io.tern.Scache.FindDestination", {"destination": too_long})
        props, found = self.find_endpoint(c, long_label)
        self.assertEqual(props, "p" * PROPS_MAX)
        self.assertEqual(say(found, "NOOP"), "250 %d NOOP" % n)
        found.close()
        # NUL in a label: jansson refuses the message, the connection goes, the daemon serves on.
        for method, params in (("FindEndpoint", '{"endpoint":"a\\u0000b"}'),
                               ("SaveEndpoint", '{"ttl":1,"endpoint":"a\\u0000b","properties":"","fd":0}')):
            with varlink.connect(self.socket_path) as nul:
                msg = ('{"method":"io.tern.Scache.%s","parameters":%s}' % (method, params)).encode() + b"\0"
                nul.send_raw(msg, fds=[fd] if method == "SaveEndpoint" else ())
                with self.assertRaises(varlink.ConnectionClosed):
                    nul.read_reply()
        self.assertEqual(c.call("io.tern.Scache.Statistics")["sessions"], 0)
        self.assertNotFound(c, "io.tern.Scache.FindEndpoint", {"endpoint": "a"})

    def test_many_sessions_of_one_endpoint(self):
        count, batch = 5000, 200
        d = self.start_by_hand()
        c = self.connect()
        c.call("io.tern.Scache.Statistics")     # accepted: counted in the baseline
        base = count_fds(d.pid)
        for start in range(0, count, batch):
            for i in range(start, start + batch):
                a, b = socket.socketpair()
                c.send("io.tern.Scache.SaveEndpoint",
                       {"ttl": TTL_LIMIT, "endpoint": "busy", "properties": str(i), "fd": 0}, fds=[a.fileno()])
                a.close()
                b.close()
            for i in range(batch):
                c.read_reply()
        st = self.stats()
        self.assertEqual((st["sessions"], st["endpoints"], st["evicted"]), (count, 1, 0))
        self.assertGreaterEqual(count_fds(d.pid), base + count)
        got = []
        for start in range(0, count, batch):
            for i in range(batch):
                c.send("io.tern.Scache.FindEndpoint", {"endpoint": "busy"})
            for i in range(batch):
                r = c.read_reply()
                got.append(int(r["properties"]))
                for fd in r.fds:
                    os.close(fd)
        self.assertEqual(got, list(range(count)), "handed back oldest first")
        self.assertNotFound(c, "io.tern.Scache.FindEndpoint", {"endpoint": "busy"})
        self.assertTrue(wait_until(lambda: count_fds(d.pid) == base, EXIT_TIMEOUT),
                        "descriptors: %d, baseline %d" % (count_fds(d.pid), base))

    def test_full_cache_closes_the_oldest(self):
        # RLIMIT_NOFILE 1100: below 2 * SCACHE_FD_RESERVE the daemon caches at most half of it.
        nofile, limit = 1100, 550
        env = self.env()
        env["NOTIFY_SOCKET"] = self.listen_notify("notify").path
        d = self.spawn(["prlimit", "--nofile=%d:%d" % (nofile, nofile), "--"] + self.daemon_argv(), env)
        self.notify.wait_for("READY=1")
        c = self.connect()
        kept = []               # our ends of the first two sessions
        for i in range(limit + 10):
            a, b = socket.socketpair()
            c.send("io.tern.Scache.SaveEndpoint", {"ttl": TTL_LIMIT, "endpoint": "ep%d" % (i % 7),
                                                   "properties": str(i), "fd": 0}, fds=[a.fileno()])
            a.close()
            if i < 2:
                b.settimeout(EXIT_TIMEOUT)
                kept.append(b)
            else:
                b.close()
            if i % 100 == 99:
                for _ in range(100):
                    c.read_reply()
        for _ in range((limit + 10) % 100):
            c.read_reply()
        st = self.stats()
        self.assertEqual((st["sessions"], st["evicted"]), (limit, 10))
        self.assertLess(count_fds(d.pid), nofile)
        for b in kept:
            self.assertEqual(b.recv(1), b"", "the oldest sessions were closed")
            b.close()
        props, s = self.find_endpoint(c, "ep3")
        self.assertEqual(props, "10", "sessions 0-9 went, 10 is ep3's oldest")
        s.close()
        self.assertEqual(d.stderr().count("connection cache full"), 1, d.stderr())
        self.assertIn("tern/scache: warning: connection cache full (%d sessions): closing the oldest session to "
                      "make room; this is said once per connection_cache_status_update_time" % limit, d.stderr())

    def test_no_descriptor_leaks(self):
        self.configure(connection_cache_ttl_limit="1s")
        d = self.start_by_hand()
        c = varlink.connect(self.socket_path)
        # Counted after a reply, less the one connection: READY=1 arrives while sd_notify() may
        # still hold its socket, so a count taken right after it can be one too high.
        c.call("io.tern.Scache.Statistics", {})
        base = count_fds(d.pid) - 1
        found = [self.save_session(c, "f", "HELO f%d" % i) for i in range(5)]
        expiring = [self.save_session(c, "e", "HELO e%d" % i) for i in range(5)]
        self.save_destination(c, "d", "", "f")
        for n in found:
            _, _, s = self.find_destination(c, "d")
            s.close()
            self.peer.wait_ended(n)
        s, n = self.peer.dial()
        with s:
            r, w = os.pipe()
            for fds in ([r], [s.fileno(), s.fileno()], [s.fileno()] * 3):
                with self.assertRaises(varlink.VarlinkError):
                    c.call("io.tern.Scache.SaveEndpoint", {"ttl": 1, "endpoint": "x", "properties": "", "fd": 0},
                           fds=fds)
            with self.assertRaises(varlink.VarlinkError):
                c.call("io.tern.Scache.FindEndpoint", {"endpoint": "x"}, fds=[r, w])
            with self.assertRaises(varlink.VarlinkError):
                c.call("io.tern.Scache.SaveEndpoint", {"ttl": 0, "endpoint": "x", "properties": "", "fd": 0},
                       fds=[s.fileno()])
            os.close(r)
            os.close(w)
            # A client that leaves in the middle of its message, the descriptor sent already.
            gone = varlink.connect(self.socket_path)
            gone.send_raw(b'{"method":"io.tern.Scache.SaveEndpoint","parameters":{"ttl":1,', fds=[s.fileno()])
            gone.close()
        # Our copy is closed: only the daemon could be holding that connection now.
        self.peer.wait_ended(n)
        for e in expiring:
            self.peer.wait_ended(e)
        c.close()
        self.assertTrue(wait_until(lambda: count_fds(d.pid) == base, EXIT_TIMEOUT),
                        "descriptors: %d, baseline %d" % (count_fds(d.pid), base))

    def test_statistics(self):
        t_start = int(time.time())
        d = self.start_by_hand()
        c = self.connect()
        s1 = self.save_session(c, "A", "HELO 1")
        s2 = self.save_session(c, "A", "HELO 2")
        self.save_session(c, "B", "HELO 3")
        self.save_destination(c, "D", "", "A")
        self.save_destination(c, "D", "", "A")          # a refresh: still one domain
        self.save_destination(c, "E", "", "B")
        _, eprops, s = self.find_destination(c, "D")
        self.assertEqual(eprops, "n=%d\n" % s1)
        s.close()
        self.assertNotFound(c, "io.tern.Scache.FindDestination", {"destination": "X"})
        _, s = self.find_endpoint(c, "B")
        s.close()
        self.assertNotFound(c, "io.tern.Scache.FindEndpoint", {"endpoint": "Z"})
        self.assertNotFound(c, "io.tern.Scache.FindEndpoint", {"endpoint": "Z"})
        st = self.stats()
        self.assertTrue(t_start <= st["start"] <= time.time(), st["start"])
        lines = ["statistics: start interval " + ctime15(st["start"]),
                 "statistics: domain lookup hits=1 miss=1 success=50%",
                 "statistics: address lookup hits=1 miss=2 success=33%",
                 "statistics: max simultaneous domains=2 addresses=2 connection=3"]
        self.assertEqual(st["lines"], lines)
        self.assertEqual({k: st[k] for k in ("domainHits", "domainMisses", "addressHits", "addressMisses",
                                             "maxDomains", "maxAddresses", "maxConnections", "sessions",
                                             "endpoints", "destinations", "evicted")},
                         {"domainHits": 1, "domainMisses": 1, "addressHits": 1, "addressMisses": 2,
                          "maxDomains": 2, "maxAddresses": 2, "maxConnections": 3, "sessions": 1,
                          "endpoints": 1, "destinations": 2, "evicted": 0})
        r = self.ternctl("scache", "stats")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(r.stdout, "".join(l + "\n" for l in lines)
                         + "cached now: sessions=1 endpoints=1 destinations=2\n")
        self.assertIsNone(self.peer.ended(s2))
        # At exit: the same lines on stderr; the cached session is closed.
        self.assertEqual(d.stop(), 0)
        logged = [l[len("tern/scache: "):] for l in d.stderr().splitlines() if l.startswith("tern/scache: statistics:")]
        self.assertEqual(logged, lines)
        self.peer.wait_ended(s2)

    def test_statistics_every_status_update_time(self):
        self.configure(connection_cache_status_update_time="2s")
        d = self.start_by_hand()
        t0 = time.monotonic()
        c = self.connect()
        self.save_session(c, "A", "HELO")
        self.assertNotFound(c, "io.tern.Scache.FindDestination", {"destination": "X"})
        want = "tern/scache: statistics: domain lookup hits=0 miss=1 success=0%"
        self.assertTrue(wait_until(lambda: want in d.stderr(), 2 + EXIT_TIMEOUT), d.stderr())
        self.assertGreaterEqual(time.monotonic() - t0, 1.5, "dumped before connection_cache_status_update_time")
        self.assertIn("tern/scache: statistics: max simultaneous domains=0 addresses=1 connection=1", d.stderr())
        # The counters start again: nothing to say until something happens.
        r = self.ternctl("scache", "stats")
        self.assertEqual((r.returncode, r.stdout), (0, "cached now: sessions=1 endpoints=1 destinations=0\n"))
        self.assertNotFound(c, "io.tern.Scache.FindEndpoint", {"endpoint": "Z"})
        want = "tern/scache: statistics: address lookup hits=0 miss=1 success=0%"
        self.assertTrue(wait_until(lambda: want in d.stderr(), 2 + EXIT_TIMEOUT), d.stderr())
        self.assertEqual(d.stderr().count("statistics: domain lookup"), 1)

    def test_ternctl_find(self):
        self.start_by_hand()
        c = self.connect()
        n = self.save_session(c, "smtp\n127.0.0.1\n25", "HELO ctl", props="reuse_count=0\n")
        self.save_destination(c, "smtp\nexample.com", "destination=example.com\n", "smtp\n127.0.0.1\n25")
        r = self.ternctl("scache", "find-dest", "smtp\\nexample.com")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(r.stdout, "peer: 127.0.0.1:%d\n" % self.peer.port
                         + "destination properties:\ndestination=example.com\n\n"
                         + "endpoint properties:\nreuse_count=0\n\n"
                         + "(the session was taken out of the cache and is now closed)\n")
        self.peer.wait_ended(n)
        r = self.ternctl("scache", "find-dest", "smtp\\nexample.com")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (1, "", "Error: %s\n" % NOT_FOUND))

        n = self.save_session(c, "smtp\n127.0.0.1\n25", "HELO ctl2", props="reuse_count=1\n")
        r = self.ternctl("--json", "scache", "find-endp", "smtp\\n127.0.0.1\\n25")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(json.loads(r.stdout),
                         {"properties": "reuse_count=1\n", "peer": "127.0.0.1:%d" % self.peer.port})
        self.peer.wait_ended(n)
        r = self.ternctl("scache", "find-endp", "smtp\\n127.0.0.1\\n25")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (1, "", "Error: %s\n" % NOT_FOUND))
        self.assertEqual(self.peer.lines(n), ["HELO ctl2"])

    def test_client_library(self):
        d = self.start_by_hand()
        p = subprocess.Popen([CLIENT_TEST, "live", self.socket_path, "300"], env=self.env(), text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out = []
        try:
            while not out or out[-1] != "kill the daemon":
                line = p.stdout.readline()
                if not line:
                    break
                out.append(line.rstrip("\n"))
            self.assertEqual(out, ["save-endpoint: 0", "save-destination: 0", "find-destination: 0",
                                   "destination properties: destination=example.com",
                                   "endpoint properties: reuse_count=0", "same connection: yes",
                                   "find-endpoint again: ENOENT", "save-endpoint ttl 0: EINVAL", "disabled: no",
                                   "kill the daemon"], p.stderr.read() if p.poll() is not None else "")
            d.kill()
            rest, err = p.communicate("go\n", timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertNotRegex(err, SANITIZER_RE)
        self.assertEqual((p.returncode, rest.splitlines()), (0, [
            # the first try failed with EPIPE on the dead connection: quiet, as Postfix
            "warn: problem talking to service %s: Connection refused" % self.socket_path,
            "warn: disabling connection caching",
            "find-endpoint: ECONNREFUSED", "waited the retry delay: yes", "disabled: yes",
            "save-endpoint: EUNATCH at once", "find-destination: EUNATCH at once",
            "descriptors as at the start: yes"]), err)

    def test_client_library_no_service(self):
        r = subprocess.run([CLIENT_TEST, "absent", self.socket_path, "300"], env=self.env(), text=True,
                           capture_output=True, timeout=30)
        self.assertEqual((r.returncode, r.stdout.splitlines()), (0, [
            # ENOENT on the first try is quiet, on the second it is not
            "warn: problem talking to service %s: No such file or directory" % self.socket_path,
            "warn: disabling connection caching",
            "find-endpoint: ENOENT", "waited the retry delay: yes", "disabled: yes",
            "save-endpoint: EUNATCH at once", "find-destination: EUNATCH at once",
            "descriptors as at the start: yes"]), r.stderr)


class SocketActivated(ScacheTestCase):
    """tern-scache behind systemd-socket-activate --fdname=varlink, with a NOTIFY_SOCKET."""

    def test_handoff_idle_exit_and_reactivation(self):
        self.configure(max_idle="%ds" % MAX_IDLE, connection_cache_ttl_limit="30s")
        d = self.start_activated()
        self.handoff()                  # the first connection starts it
        self.notify.wait_for("READY=1")
        self.assertEqual(self.notify.wait_for("STATUS=Serving"),
                         "STATUS=Serving on %s (socket-activated)" % self.socket_path)
        with varlink.connect(self.socket_path) as c:
            n = self.save_session(c, "kept", "HELO kept", ttl=30)
        t0 = time.monotonic()
        self.assertEqual(d.wait_exit(timeout=MAX_IDLE + EXIT_TIMEOUT), 0)
        self.assertGreaterEqual(time.monotonic() - t0, MAX_IDLE - 0.5, "exited before max_idle")
        self.notify.wait_for("STOPPING=1")
        # Cached sessions are closed at exit, long before their ttl.
        self.assertLess(self.peer.wait_ended(n) - t0, MAX_IDLE + EXIT_TIMEOUT)
        logged = [l for l in d.stderr().splitlines() if l.startswith("tern/scache: statistics:")]
        self.assertEqual(logged[1:], ["tern/scache: statistics: domain lookup hits=1 miss=1 success=50%",
                                      "tern/scache: statistics: address lookup hits=0 miss=1 success=0%",
                                      "tern/scache: statistics: max simultaneous domains=1 addresses=1 connection=1"])
        self.assertTrue(os.path.exists(self.socket_path), "an activated daemon removed a socket it does not own")
        # Activated again on the same socket: a new process with an empty cache, serving.
        os.unlink(self.notify.path)     # start_activated() binds its NOTIFY_SOCKET anew
        self.stderr_path = os.path.join(self.tmp, "scache.2.err")     # and waits for "Listening on" there
        d2 = self.start_activated()
        with varlink.connect(self.socket_path) as c:
            self.assertNotFound(c, "io.tern.Scache.FindEndpoint", {"endpoint": "kept"})
        self.handoff()
        self.assertNotEqual(d2.pid, d.pid)
        self.assertEqual(d2.stop(), 0)


if __name__ == "__main__":
    unittest.main()
