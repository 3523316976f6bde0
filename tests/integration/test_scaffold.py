# SPDX-License-Identifier: MIT
"""The service scaffold, end to end: the real tern-testd on a real socket, driven by ternctl and
by the independent Python client in varlink.py.

What is tested, each by hand (`tern-testd -c main.cf`, binding runtime_directory/test) and, where
the lifetime rules differ, under `systemd-socket-activate --fdname=varlink`:
  - introspection: GetInfo, GetInterfaceDescription (the IDL file byte for byte), ternctl introspect;
  - calls: Echo, Peer (SO_PEERCRED), oneway, "more", pipelining behind a deferred reply;
  - errors: MethodNotFound, InterfaceNotFound, InvalidParameter (unknown, missing, mistyped),
    ExpectedMore, io.tern.Test.Failed, with ternctl's exact stderr text and sysexits codes;
  - descriptors both ways (ReadFd with a pipe, OpenFd), and a descriptor where none is expected;
  - bad clients: malformed JSON, an oversize message, a client stalled mid-message or not reading
    (ipc_timeout), a client that leaves mid-reply; each dropped one is logged exactly once and
    the daemon keeps serving others;
  - lifetime: READY=1/STATUS= on NOTIFY_SOCKET, idle exit after max_idle when socket-activated
    and not by hand, max_use, SIGTERM (exit 0, own socket removed), a broken main.cf;
  - ternctl: service names resolved under runtime_directory, "not running" (exit 69), --json.
Every daemon is stopped with SIGTERM at the end of its test; its exit status must be 0 and its
stderr free of sanitizer reports (ASan, UBSan, LSan), so the suite doubles as a leak check.

Binaries come from $TERN_TESTD, $TERNCTL and the IDL from $TERN_SOURCE_ROOT (set by meson).
"""
import json
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import varlink  # noqa: E402
from harness import (SOURCE_ROOT, START_TIMEOUT, EXIT_TIMEOUT, SANITIZER_RE,  # noqa: E402
                     DaemonTestCase, write_conf, wait_until)

TESTD = os.environ.get("TERN_TESTD", os.path.join(SOURCE_ROOT, "build", "tests", "tern-testd"))
TERNCTL = os.environ.get("TERNCTL", os.path.join(SOURCE_ROOT, "build", "src", "ctl", "ternctl"))
IDL_FILE = os.path.join(SOURCE_ROOT, "src", "lib", "idl", "io.tern.Test.varlink")

MAX_IDLE = 2            # seconds, main.cf max_idle
IPC_TIMEOUT = 2         # seconds, main.cf ipc_timeout

WARNING_RE = re.compile(r"^tern/testd: warning: client pid=(\d+) uid=(\d+): (.+)$", re.M)


class ScaffoldTestCase(DaemonTestCase):
    """A temporary runtime directory and main.cf per test; daemons checked and stopped at the end."""

    DAEMON = "tern-testd"
    BINARY = TESTD
    SOCKET_NAME = "test"
    STDERR_NAME = "testd.err"

    def setUp(self):
        super().setUp()
        self.configure()
        self.expected_warnings = 0      # "warning: client ..." lines the test's bad clients cause

    def tearDown(self):
        super().tearDown()
        warnings = self.warnings()
        self.assertEqual(len(warnings), self.expected_warnings,
                         "one warning line per dropped bad client, no others: %r" % warnings)
        for pid, uid, _ in warnings:
            self.assertEqual(int(uid), os.getuid())
            self.assertGreater(int(pid), 0)

    # ---- starting daemons

    def configure(self, **params):
        settings = {"runtime_directory": self.rt, "max_idle": "%ds" % MAX_IDLE, "ipc_timeout": "%ds" % IPC_TIMEOUT}
        settings.update(params)
        write_conf(self.conf_path, "tern integration test", settings)

    def start_by_hand(self):
        d = self.spawn(self.daemon_argv(), self.env())

        def serving():
            if not d.running():
                raise AssertionError("tern-testd exited with %s:\n%s" % (d.proc.returncode, d.stderr()))
            try:
                varlink.connect(self.socket_path, timeout=1).close()
                return True
            except (FileNotFoundError, ConnectionRefusedError):
                return False
        self.assertTrue(wait_until(serving, START_TIMEOUT), "no socket within %.0f s" % START_TIMEOUT)
        return d

    def connect(self):
        c = varlink.connect(self.socket_path)
        self.addCleanup(c.close)
        return c

    # ---- ternctl

    def ternctl(self, *args, config=True):
        argv = [TERNCTL] + (["-c", self.conf_path] if config else []) + list(args)
        r = subprocess.run(argv, env=self.env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=60)
        self.assertNotRegex(r.stderr, SANITIZER_RE, "sanitizer report in ternctl's stderr")
        return r

    def assertCtl(self, args, status, stdout=None, stderr=""):
        """Run ternctl ARGS; check the exit status, stderr exactly, and stdout exactly (if given)."""
        r = self.ternctl(*args)
        self.assertEqual((r.returncode, r.stderr), (status, stderr), "ternctl %s" % " ".join(args))
        if stdout is not None:
            self.assertEqual(r.stdout, stdout, "ternctl %s" % " ".join(args))
        return r

    def assertVarlinkError(self, conn, method, params, name, error_params, **kw):
        with self.assertRaises(varlink.VarlinkError) as cm:
            conn.call(method, params, **kw)
        self.assertEqual((cm.exception.name, cm.exception.parameters), (name, error_params))

    def assertClosedByDaemon(self, conn, timeout=EXIT_TIMEOUT):
        """The daemon closes CONN (any replies still on the way are read and dropped)."""
        conn.settimeout(timeout)
        with self.assertRaises(varlink.ConnectionClosed):
            while True:
                try:
                    conn.read_reply()
                except varlink.VarlinkError:
                    pass

    def warnings(self):
        return [m for d in self.daemons for m in WARNING_RE.findall(d.stderr())]


def idl_text():
    with open(IDL_FILE) as f:
        return f.read()


class ByHand(ScaffoldTestCase):
    """tern-testd started by hand: it binds runtime_directory/test itself."""

    def setUp(self):
        super().setUp()
        self.daemon = self.start_by_hand()

    def test_get_info(self):
        info = self.connect().call("org.varlink.service.GetInfo")
        self.assertEqual(sorted(info["interfaces"]), ["io.tern.Test", "org.varlink.service"])
        self.assertEqual((info["vendor"], info["product"]), ("tern", "testd"))
        for key in ("version", "url"):
            self.assertIsInstance(info[key], str)
        r = self.assertCtl(["call", "test", "org.varlink.service.GetInfo"], 0)
        self.assertEqual(json.loads(r.stdout), info)

    def test_interface_description_is_the_idl_file(self):
        c = self.connect()
        idl = idl_text()
        self.assertEqual(c.call("org.varlink.service.GetInterfaceDescription", {"interface": "io.tern.Test"}),
                         {"description": idl})
        svc = c.call("org.varlink.service.GetInterfaceDescription", {"interface": "org.varlink.service"})
        self.assertIn("\ninterface org.varlink.service\n", svc["description"])
        self.assertCtl(["introspect", "test", "io.tern.Test"], 0,
                       stdout=idl if idl.endswith("\n") else idl + "\n")
        # Without an interface: every interface GetInfo lists, one after the other.
        r = self.assertCtl(["introspect", self.socket_path], 0)
        self.assertIn(idl, r.stdout)
        self.assertIn(svc["description"], r.stdout)

    def test_interface_not_found(self):
        c = self.connect()
        self.assertVarlinkError(c, "org.varlink.service.GetInterfaceDescription", {"interface": "io.tern.Nope"},
                                "org.varlink.service.InterfaceNotFound", {"interface": "io.tern.Nope"})
        self.assertVarlinkError(c, "io.tern.Nope.Ping", {}, "org.varlink.service.InterfaceNotFound",
                                {"interface": "io.tern.Nope"})
        err = 'Error: org.varlink.service.InterfaceNotFound {"interface":"io.tern.Nope"}\n'
        self.assertCtl(["call", "test", "io.tern.Nope.Ping"], 64, stdout="", stderr=err)
        self.assertCtl(["introspect", "test", "io.tern.Nope"], 64, stdout="", stderr=err)

    def test_method_not_found(self):
        c = self.connect()
        self.assertVarlinkError(c, "io.tern.Test.Nope", {}, "org.varlink.service.MethodNotFound",
                                {"method": "io.tern.Test.Nope"})
        self.assertCtl(["call", "test", "io.tern.Test.Nope", "{}"], 64, stdout="",
                       stderr='Error: org.varlink.service.MethodNotFound {"method":"io.tern.Test.Nope"}\n')

    def test_echo(self):
        c = self.connect()
        self.assertEqual(c.call("io.tern.Test.Echo", {"text": "hello"}), {"text": "hello"})
        self.assertEqual(c.call("io.tern.Test.Echo", {"text": "h\u00e9\u2603 \"q\"\n", "number": -42}),
                         {"text": "h\u00e9\u2603 \"q\"\n", "number": -42})
        self.assertEqual(c.call("io.tern.Test.Echo", {"text": "x", "number": None}), {"text": "x"})
        self.assertEqual(c.call("io.tern.Test.Ping"), {})
        # A message far bigger than one read on either side.
        big = "0123456789abcdef" * (256 * 1024)
        self.assertEqual(c.call("io.tern.Test.Echo", {"text": big}), {"text": big})
        # ternctl by service name (resolved under runtime_directory), by path and unix:path
        for address in ("test", self.socket_path, "unix:" + self.socket_path):
            r = self.assertCtl(["call", address, "io.tern.Test.Echo", '{"text": "hi", "number": 7}'], 0)
            self.assertEqual(json.loads(r.stdout), {"text": "hi", "number": 7})

    def test_ternctl_json_is_one_line(self):
        self.assertCtl(["--json", "call", "test", "io.tern.Test.Echo", '{"text": "a b", "number": 7}'], 0,
                       stdout='{"text":"a b","number":7}\n')
        r = self.assertCtl(["--json", "call", "test", "org.varlink.service.GetInfo"], 0)
        self.assertEqual(r.stdout.count("\n"), 1, r.stdout)
        self.assertTrue(r.stdout.endswith("\n"))
        self.assertEqual(json.loads(r.stdout), self.connect().call("org.varlink.service.GetInfo"))

    def test_invalid_parameter(self):
        c = self.connect()
        cases = [
                ("io.tern.Test.Echo", {"text": "a", "bogus": 1}, "bogus"),     # unknown
                ("io.tern.Test.Echo", {}, "text"),                             # missing
                ("io.tern.Test.Echo", {"number": 1}, "text"),                  # missing
                ("io.tern.Test.Echo", {"text": 5}, "text"),                    # mistyped
                ("io.tern.Test.Echo", {"text": "a", "number": "7"}, "number"), # mistyped
                ("io.tern.Test.Sleep", {"milliseconds": 1.5}, "milliseconds"),
                ("io.tern.Test.Ping", {"x": True}, "x"),
                ("org.varlink.service.GetInterfaceDescription", {}, "interface"),
        ]
        for method, params, name in cases:
            with self.subTest(method=method, params=params):
                self.assertVarlinkError(c, method, params, "org.varlink.service.InvalidParameter",
                                        {"parameter": name})
                self.assertCtl(["call", "test", method, json.dumps(params)], 64, stdout="",
                               stderr='Error: org.varlink.service.InvalidParameter {"parameter":"%s"}\n' % name)
        # The connection is still good after all of them.
        self.assertEqual(c.call("io.tern.Test.Ping"), {})

    def test_fail_is_an_interface_error(self):
        self.assertVarlinkError(self.connect(), "io.tern.Test.Fail", {"reason": "x"}, "io.tern.Test.Failed",
                                {"reason": "x"})
        self.assertCtl(["call", "test", "io.tern.Test.Fail", '{"reason":"x"}'], 1, stdout="",
                       stderr='Error: io.tern.Test.Failed {"reason":"x"}\n')

    def test_expected_more(self):
        self.assertVarlinkError(self.connect(), "io.tern.Test.Count", {"count": 3},
                                "org.varlink.service.ExpectedMore", {})
        self.assertCtl(["call", "test", "io.tern.Test.Count", '{"count":3}'], 64, stdout="",
                       stderr="Error: org.varlink.service.ExpectedMore\n")

    def test_more(self):
        c = self.connect()
        replies = list(c.call_more("io.tern.Test.Count", {"count": 5}))
        self.assertEqual([dict(r) for r in replies], [{"index": i} for i in range(5)])
        self.assertEqual([r.continues for r in replies], [True] * 4 + [False])
        self.assertEqual(c.call("io.tern.Test.Count", {"count": 1}, more=True), [{"index": 0}])
        # "more" on a method that does not stream: one final reply
        self.assertEqual(c.call("io.tern.Test.Echo", {"text": "m"}, more=True), [{"text": "m"}])
        self.assertCtl(["--json", "call", "--more", "test", "io.tern.Test.Count", '{"count":3}'], 0,
                       stdout='{"index":0}\n{"index":1}\n{"index":2}\n')

    def test_oneway(self):
        c = self.connect()
        self.assertIsNone(c.call("io.tern.Test.Echo", {"text": "nobody reads this"}, oneway=True))
        self.assertIsNone(c.call("io.tern.Test.Fail", {"reason": "not sent either"}, oneway=True))
        # The next reply on the connection is the next call's: oneway calls got none.
        self.assertEqual(c.call("io.tern.Test.Echo", {"text": "second"}), {"text": "second"})
        self.assertCtl(["call", "--oneway", "test", "io.tern.Test.Echo", '{"text":"x"}'], 0, stdout="")

    def test_peer(self):
        self.assertEqual(self.connect().call("io.tern.Test.Peer"),
                         {"uid": os.getuid(), "gid": os.getgid(), "pid": os.getpid()})
        r = self.assertCtl(["call", "test", "io.tern.Test.Peer"], 0)
        peer = json.loads(r.stdout)
        self.assertEqual((peer["uid"], peer["gid"]), (os.getuid(), os.getgid()))
        self.assertNotIn(peer["pid"], (os.getpid(), self.daemon.pid))

    def test_pipelining_answers_in_order(self):
        c1, c2 = self.connect(), self.connect()
        calls = [("io.tern.Test.Echo", {"text": "a"}, False),
                 ("io.tern.Test.Sleep", {"milliseconds": 1000, "tag": "slept"}, False),
                 ("io.tern.Test.Echo", {"text": "b"}, False),
                 ("io.tern.Test.Count", {"count": 2}, True),
                 ("io.tern.Test.Fail", {"reason": "in line"}, False),
                 ("io.tern.Test.Ping", None, False)]
        c1.send_raw(b"".join(varlink.Connection.encode(m, p, more) for m, p, more in calls))
        # Another client is served while c1's Sleep is pending ...
        self.assertEqual(c2.call("io.tern.Test.Echo", {"text": "other"}), {"text": "other"})
        self.assertEqual(c1.read_reply(), {"text": "a"})
        # ... and the Sleep's answer has not come yet, nor anything queued behind it.
        self.assertNotIn(b"\0", c1._buf)
        self.assertEqual(select.select([c1], [], [], 0)[0], [], "the Sleep answered before c2 was served")
        self.assertEqual(c1.read_reply(), {"tag": "slept"})
        self.assertEqual(c1.read_reply(), {"text": "b"})
        self.assertEqual([(dict(r), r.continues) for r in (c1.read_reply(), c1.read_reply())],
                         [({"index": 0}, True), ({"index": 1}, False)])
        with self.assertRaises(varlink.VarlinkError) as cm:
            c1.read_reply()
        self.assertEqual(cm.exception.name, "io.tern.Test.Failed")
        self.assertEqual(c1.read_reply(), {})

    def test_pipelining_beyond_the_message_limit(self):
        # More than VARLINK_MESSAGE_MAX (16 MiB) of small calls queued behind a pending call is
        # many messages, not one oversize message: the server stops reading until the pending
        # call is answered (back pressure) and then serves every one of them, in order, however
        # long the stream lasts.
        c = self.connect()
        text = "x" * 200
        n = 17 * 1024 * 1024 // len(varlink.Connection.encode("io.tern.Test.Echo", {"text": text})) + 1
        head = varlink.Connection.encode("io.tern.Test.Sleep", {"milliseconds": 300, "tag": "first"})
        body = varlink.Connection.encode("io.tern.Test.Echo", {"text": text}) * n
        data = head + body
        slices = 32

        def send_slowly():
            # The stream lasts longer than ipc_timeout, with slices cut inside messages: steady
            # progress must keep pushing the io deadline out.
            step = len(data) // slices + 1
            for k in range(0, len(data), step):
                c.send_raw(data[k:k + step])
                time.sleep((IPC_TIMEOUT + 1.0) / slices)

        writer = threading.Thread(target=send_slowly)
        writer.start()
        try:
            self.assertEqual(c.read_reply(), {"tag": "first"})
            for i in range(n):
                self.assertEqual(c.read_reply(), {"text": text}, "reply %d of %d" % (i, n))
        finally:
            writer.join(timeout=60)
        self.assertFalse(writer.is_alive())

    def test_descriptors_in(self):
        c = self.connect()
        r, w = os.pipe()
        os.write(w, b"through a pipe\n")
        os.close(w)
        try:
            self.assertEqual(c.call("io.tern.Test.ReadFd", {"fd": 0}, fds=[r]), {"data": "through a pipe\n"})
        finally:
            os.close(r)
        path = os.path.join(self.tmp, "data.txt")
        with open(path, "w") as f:
            f.write("from a file")
        self.assertCtl(["--json", "call", "--fd", path, "test", "io.tern.Test.ReadFd", '{"fd":0}'], 0,
                       stdout='{"data":"from a file"}\n')
        # Indexes that name no descriptor that came with the call
        r2, w2 = os.pipe()
        os.close(w2)
        try:
            self.assertVarlinkError(c, "io.tern.Test.ReadFd", {"fd": 1}, "org.varlink.service.InvalidParameter",
                                    {"parameter": "fd"}, fds=[r2])
            self.assertVarlinkError(c, "io.tern.Test.ReadFd", {"fd": -1}, "org.varlink.service.InvalidParameter",
                                    {"parameter": "fd"}, fds=[r2])
        finally:
            os.close(r2)
        self.assertVarlinkError(c, "io.tern.Test.ReadFd", {"fd": 0}, "org.varlink.service.InvalidParameter",
                                {"parameter": "fd"})

    def test_descriptors_out(self):
        c = self.connect()
        reply = c.call("io.tern.Test.OpenFd", {"text": "back to you"})
        self.assertEqual(dict(reply), {"fd": 0})
        self.assertEqual(len(reply.fds), 1)
        with os.fdopen(reply.fds[0], "rb") as f:
            self.assertEqual(f.read(), b"back to you")
        # Two in a row, pipelined: each descriptor comes with its own reply.
        c.send_raw(c.encode("io.tern.Test.OpenFd", {"text": "one"}) + c.encode("io.tern.Test.OpenFd", {"text": "two"}))
        for text in (b"one", b"two"):
            reply = c.read_reply()
            self.assertEqual(len(reply.fds), 1)
            with os.fdopen(reply.fds[reply["fd"]], "rb") as f:
                self.assertEqual(f.read(), text)
        self.assertCtl(["--json", "call", "--read-fds", "test", "io.tern.Test.OpenFd", '{"text":"piped"}'], 0,
                       stdout='{"fd":0}\npiped')
        self.assertCtl(["--json", "call", "test", "io.tern.Test.OpenFd", '{"text":"piped"}'], 0,
                       stdout='{"fd":0}\n', stderr="ternctl: reply carried descriptor 0 (use --read-fds)\n")

    def test_descriptor_where_none_is_expected(self):
        c = self.connect()
        r, w = os.pipe()
        try:
            self.assertVarlinkError(c, "io.tern.Test.Echo", {"text": "x"}, "org.varlink.service.InvalidParameter",
                                    {"parameter": "fd"}, fds=[r])
        finally:
            os.close(r)
            os.close(w)
        # The daemon did not keep it: our write end sees no reader left.
        self.assertEqual(c.call("io.tern.Test.Ping"), {})
        path = os.path.join(self.tmp, "data.txt")
        open(path, "w").close()
        self.assertCtl(["call", "--fd", path, "test", "io.tern.Test.Echo", '{"text":"x"}'], 64, stdout="",
                       stderr='Error: org.varlink.service.InvalidParameter {"parameter":"fd"}\n')
        self.expected_warnings = 2
        pids = [int(pid) for pid, _, why in self.warnings() if why == "descriptor passed to a method that takes none"]
        self.assertEqual(len(pids), 2, self.warnings())
        self.assertEqual(pids[0], os.getpid())

    def test_descriptor_not_kept_when_refused(self):
        """An unwanted descriptor is closed at once: the other end of the pipe sees EOF."""
        c = self.connect()
        r, w = os.pipe()
        try:
            with self.assertRaises(varlink.VarlinkError):
                c.call("io.tern.Test.Ping", {}, fds=[w])
            os.close(w)
            w = -1
            self.assertEqual(os.read(r, 10), b"")     # blocks if the daemon still held the write end
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)
        self.expected_warnings = 1

    def test_malformed_messages_close_the_connection(self):
        bad = [b'{"method": nope}\0',
               b'\xff\xfe\0',
               b'[1, 2]\0',
               b'{"parameters": {}}\0',
               b'{"method": "NoDot"}\0',
               b'{"method": "io.tern.Test.Ping", "parameters": [1]}\0',
               b'{"method": "io.tern.Test.Ping", "more": "yes"}\0',
               b'{"method": "io.tern.Test.Echo", "parameters": {"text": "a\\u0000b"}}\0',   # NUL in a string
               b'{"method": "io.tern.Test.Ping", "method": "io.tern.Test.Ping"}\0']        # duplicate key
        for data in bad:
            with self.subTest(data=data):
                c = varlink.connect(self.socket_path)
                try:
                    c.send_raw(data)
                    self.assertClosedByDaemon(c)
                finally:
                    c.close()
                # The daemon serves the next client.
                self.assertEqual(self.connect().call("io.tern.Test.Echo", {"text": "ok"}), {"text": "ok"})
        # A good call before the bad message in the same write is still answered, then the close.
        c = self.connect()
        c.send_raw(c.encode("io.tern.Test.Echo", {"text": "first"}) + b"{garbage}\0" +
                   c.encode("io.tern.Test.Ping"))
        self.assertEqual(c.read_reply(), {"text": "first"})
        self.assertClosedByDaemon(c)
        self.expected_warnings = len(bad) + 1
        self.assertEqual([int(pid) for pid, _, _ in self.warnings()], [os.getpid()] * (len(bad) + 1))
        self.assertIn("message is not valid JSON", [why for _, _, why in self.warnings()])

    def test_oversize_message_closes_the_connection(self):
        c = self.connect()
        data = b'{"method":"io.tern.Test.Echo","parameters":{"text":"' + b"x" * (16 * 1024 * 1024 + 1)
        try:
            c.send_raw(data)
        except (BrokenPipeError, ConnectionResetError):
            pass        # the daemon hung up before we were done: that is what we want
        self.assertClosedByDaemon(c)
        self.assertEqual(self.connect().call("io.tern.Test.Ping"), {})
        self.expected_warnings = 1
        self.assertEqual([why for _, _, why in self.warnings()], ["message exceeds the maximum message size"])

    def test_client_leaves_mid_reply(self):
        for i in range(3):
            c = varlink.connect(self.socket_path)
            c.send("io.tern.Test.Count", {"count": 100000}, more=True)
            if i == 1:
                self.assertEqual(c.read_reply(), {"index": 0})
            c.close()
            c = varlink.connect(self.socket_path)       # half close: we read nothing, it writes on
            c.send("io.tern.Test.Count", {"count": 100000}, more=True)
            c.sock.shutdown(socket.SHUT_WR)
            c.close()
        c = varlink.connect(self.socket_path)
        c.send("io.tern.Test.Sleep", {"milliseconds": 200})
        c.close()                                       # gone before a deferred reply
        self.assertEqual(self.connect().call("io.tern.Test.Echo", {"text": "still here"}), {"text": "still here"})
        # A longer Sleep answers after the first one's timer fired into the closed connection.
        self.assertEqual(self.connect().call("io.tern.Test.Sleep", {"milliseconds": 400, "tag": "after"}),
                         {"tag": "after"})
        # Leaving is not misbehaving: nothing to warn about (tearDown counts the warnings).

    def test_stalled_clients_are_dropped_after_ipc_timeout(self):
        half, idle, other = self.connect(), self.connect(), self.connect()
        reader = self.connect()
        self.assertEqual(idle.call("io.tern.Test.Ping"), {})
        t0 = time.monotonic()
        half.send_raw(b'{"method":"io.tern.Test.Echo","parameters":{"text":"hal')
        reader.send("io.tern.Test.Count", {"count": 100000}, more=True)     # and never read
        # Served meanwhile, more than once
        for i in range(3):
            self.assertEqual(other.call("io.tern.Test.Echo", {"text": str(i)}), {"text": str(i)})
        self.assertClosedByDaemon(half, timeout=IPC_TIMEOUT + 5)
        elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, IPC_TIMEOUT - 0.5, "dropped before ipc_timeout")
        self.assertClosedByDaemon(reader, timeout=IPC_TIMEOUT + 5)
        # A client idle between messages is not stalled: it stays.
        self.assertEqual(idle.call("io.tern.Test.Echo", {"text": "idle ok"}), {"text": "idle ok"})
        self.assertEqual(other.call("io.tern.Test.Ping"), {})
        self.expected_warnings = 2
        self.assertEqual(sorted(why for _, _, why in self.warnings()),
                         ["timeout while receiving a message", "timeout while sending a reply: client does not read"])

    def test_no_idle_exit_by_hand(self):
        with varlink.connect(self.socket_path) as c:
            self.assertEqual(c.call("io.tern.Test.Ping"), {})
        with self.assertRaises(subprocess.TimeoutExpired):
            self.daemon.wait_exit(timeout=MAX_IDLE + 1)
        self.assertEqual(self.connect().call("io.tern.Test.Ping"), {})

    def test_sigterm_exits_cleanly_and_removes_the_socket(self):
        c = self.connect()
        self.assertEqual(c.call("io.tern.Test.Ping"), {})
        self.assertEqual(self.daemon.stop(), 0)
        self.assertFalse(os.path.exists(self.socket_path), "socket left behind")
        self.assertClosedByDaemon(c)
        self.assertCtl(["call", "test", "io.tern.Test.Ping"], 69, stdout="",
                       stderr="tern-testd is not running: %s: No such file or directory\n" % self.socket_path)


class ByHandMaxUse(ScaffoldTestCase):
    def test_max_use_does_not_apply_by_hand(self):
        self.configure(max_use=3)
        d = self.start_by_hand()
        for i in range(6):
            with varlink.connect(self.socket_path) as c:
                self.assertEqual(c.call("io.tern.Test.Echo", {"text": str(i)}), {"text": str(i)})
        self.assertTrue(d.running())


class NotRunning(ScaffoldTestCase):
    """ternctl with no daemon, and a daemon that must not start."""

    def test_not_running(self):
        msg = "tern-testd is not running: %s: No such file or directory\n" % self.socket_path
        self.assertCtl(["call", "test", "io.tern.Test.Ping"], 69, stdout="", stderr=msg)
        self.assertCtl(["call", self.socket_path, "io.tern.Test.Ping"], 69, stdout="", stderr=msg)
        self.assertCtl(["introspect", "test"], 69, stdout="", stderr=msg)
        # A stale socket file with nobody behind it
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(self.socket_path)
        s.close()
        self.assertCtl(["call", "test", "io.tern.Test.Ping"], 69, stdout="",
                       stderr="tern-testd is not running: %s: Connection refused\n" % self.socket_path)

    def test_ternctl_usage(self):
        self.assertCtl(["call", "test"], 64, stdout="",
                       stderr="Usage: ternctl call [--more|--oneway] [--fd FILE]... ADDRESS METHOD [JSON]\n")
        self.assertCtl(["call", "--more", "--oneway", "test", "io.tern.Test.Ping"], 64, stdout="",
                       stderr="ternctl: --more and --oneway exclude each other\n")
        r = self.ternctl("call", "test", "io.tern.Test.Ping", "{nope")
        self.assertEqual((r.returncode, r.stdout), (65, ""))
        self.assertRegex(r.stderr, r"^ternctl: parameters must be a JSON object: \S.*\n$")
        self.assertCtl(["call", "test", "io.tern.Test.Ping", "[1]"], 65, stdout="",
                       stderr="ternctl: parameters must be a JSON object: not an object\n")
        self.assertCtl(["call", "a.b", "io.tern.Test.Ping"], 64, stdout="",
                       stderr='ternctl: invalid address "a.b": a socket path or a service name\n')

    def test_ternctl_bad_method_name(self):
        self.start_by_hand()
        self.assertCtl(["call", "test", "NoDot"], 64, stdout="",
                       stderr="ternctl: NoDot: not a valid interface.Method name\n")

    def test_broken_main_cf(self):
        with open(self.conf_path, "w") as f:
            f.write("# broken\nruntime_directory = %s\nmax_idle = ten\n" % self.rt)
        p = subprocess.run([TESTD, "-c", self.conf_path], env=self.env(), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=EXIT_TIMEOUT)
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stderr, r"main\.cf:3: parameter max_idle: \S")
        self.assertNotRegex(p.stderr, SANITIZER_RE)
        self.assertFalse(os.path.exists(self.socket_path), "socket created by a daemon that must not start")
        self.assertEqual(os.listdir(self.rt), [])
        # ternctl resolving a service name reads the same file: EX_CONFIG
        r = self.ternctl("call", "test", "io.tern.Test.Ping")
        self.assertEqual(r.returncode, 78)
        self.assertRegex(r.stderr, r"^ternctl: \S*main\.cf:3: parameter max_idle: \S")


class SocketActivated(ScaffoldTestCase):
    """tern-testd behind systemd-socket-activate --fdname=varlink, with a NOTIFY_SOCKET."""

    def test_ready_status_and_serving(self):
        d = self.start_activated()
        c = self.connect()
        self.assertEqual(c.call("io.tern.Test.Peer"), {"uid": os.getuid(), "gid": os.getgid(), "pid": os.getpid()})
        self.notify.wait_for("READY=1")
        self.assertEqual(self.notify.wait_for("STATUS="), "STATUS=Serving on %s (socket-activated)" % self.socket_path)
        self.assertEqual(d.stderr().count("Execing"), 1)
        reply = c.call("io.tern.Test.OpenFd", {"text": "activated"})
        with os.fdopen(reply.fds[0], "rb") as f:
            self.assertEqual(f.read(), b"activated")
        self.assertVarlinkError(c, "io.tern.Test.Fail", {"reason": "y"}, "io.tern.Test.Failed", {"reason": "y"})
        self.assertCtl(["--json", "call", "test", "io.tern.Test.Echo", '{"text":"sa"}'], 0, stdout='{"text":"sa"}\n')
        self.assertEqual(self.connect().call("org.varlink.service.GetInterfaceDescription",
                                             {"interface": "io.tern.Test"}), {"description": idl_text()})
        # SIGTERM: clean exit, STOPPING=1; the socket is systemd's, so it stays.
        self.assertEqual(d.stop(), 0)
        self.notify.wait_for("STOPPING=1")
        self.assertTrue(os.path.exists(self.socket_path), "an activated daemon removed a socket it does not own")

    def test_idle_exit(self):
        d = self.start_activated()
        c = varlink.connect(self.socket_path)
        self.assertEqual(c.call("io.tern.Test.Echo", {"text": "wake"}), {"text": "wake"})
        self.notify.wait_for("READY=1")
        # A connected client keeps it alive, however quiet it is.
        with self.assertRaises(subprocess.TimeoutExpired):
            d.wait_exit(timeout=MAX_IDLE + 1)
        self.assertEqual(c.call("io.tern.Test.Ping"), {})
        c.close()
        t0 = time.monotonic()
        self.assertEqual(d.wait_exit(timeout=MAX_IDLE + EXIT_TIMEOUT), 0)
        self.assertGreaterEqual(time.monotonic() - t0, MAX_IDLE - 0.5, "exited before max_idle")
        self.assertEqual(self.notify.wait_for("STATUS=Idle"), "STATUS=Idle for %d s, exiting" % MAX_IDLE)
        self.notify.wait_for("STOPPING=1")

    def test_max_use(self):
        self.configure(max_use=3)
        d = self.start_activated()
        conns = [varlink.connect(self.socket_path) for _ in range(3)]
        for i, c in enumerate(conns):
            self.assertEqual(c.call("io.tern.Test.Echo", {"text": str(i)}), {"text": str(i)})
        self.assertEqual(self.notify.wait_for("STATUS=max_use"), "STATUS=max_use (3) reached, finishing")
        conns[0].close()
        conns[1].close()
        # Still serving the last one, and still there for it.
        self.assertEqual(conns[2].call("io.tern.Test.Ping"), {})
        with self.assertRaises(subprocess.TimeoutExpired):
            d.wait_exit(timeout=0.5)
        conns[2].close()
        self.assertEqual(d.wait_exit(), 0)


if __name__ == "__main__":
    unittest.main()
