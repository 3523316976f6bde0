# SPDX-License-Identifier: MIT
"""The delivery agents end to end: tern-discard, tern-error (error and retry) and tern-testagent
on their real sockets, by hand (a parent that forks a child per connection) and under
`systemd-socket-activate --accept` (one process per connection, as Accept=yes units run them).

What is tested:
  - Deliver with a real queue file (tests/queue/queue-tool.c) passed as a descriptor, through
    the independent Python client (varlink.py) and through `ternctl call --fd`: the per-recipient
    results and the exact Postfix log lines on stderr (discard: status=sent with the nexthop as
    the reason; error: status=bounced; retry: status=deferred; relay=none; a leading enhanced
    status code in the nexthop is the dsn; a code of the wrong class is ignored with Postfix's
    warning; orig_to only when it differs);
  - bad requests get InvalidParameter naming the field (no fd, no recipients, a mistyped offset,
    an unknown field) or io.tern.Delivery.InvalidRequest (a pipe instead of a file, an empty
    nexthop), and the same connection is served on;
  - max_use: after the max_use'th reply the agent closes the connection (and its process exits);
    by hand the parent goes on accepting;
  - by hand: a child per connection (seen in /proc/PID/task/PID/children), children gone when
    their clients hang up, SIGTERM stops the parent and its children (exit 0);
  - socket activation with --accept: READY=1, service, exit 0 when the client hangs up, and
    after max_use; max_idle ends an idle connection;
  - tern-testagent's scripted outcomes and its TERN_TESTAGENT_LOG lines;
  - tern-error refuses a transport other than error and retry.
Every daemon not killed on purpose must exit 0 with no sanitizer report (harness.py).

Binaries: $TERN_DISCARD, $TERN_ERROR, $TERN_TESTAGENT, $TERNCTL, $QUEUE_TOOL.
"""
import json
import os
import re
import socket
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import varlink  # noqa: E402
from harness import (SOURCE_ROOT, START_TIMEOUT, EXIT_TIMEOUT, DaemonTestCase,  # noqa: E402
                     write_conf, wait_until)

BUILD = os.path.join(SOURCE_ROOT, "build")
DISCARD = os.environ.get("TERN_DISCARD", os.path.join(BUILD, "src", "discard", "tern-discard"))
ERROR = os.environ.get("TERN_ERROR", os.path.join(BUILD, "src", "error", "tern-error"))
TESTAGENT = os.environ.get("TERN_TESTAGENT", os.path.join(BUILD, "tests", "tern-testagent"))
TERNCTL = os.environ.get("TERNCTL", os.path.join(BUILD, "src", "ctl", "ternctl"))
QUEUE_TOOL = os.environ.get("QUEUE_TOOL", os.path.join(BUILD, "tests", "integration", "queue-tool"))

DELIVER = "io.tern.Delivery.Deliver"
INVALID_PARAMETER = "org.varlink.service.InvalidParameter"
INVALID_REQUEST = "io.tern.Delivery.InvalidRequest"
T0 = 1700000000000000
# A call on a connection the agent closed: refused on sending or on reading, by timing.
CLOSED = (varlink.ConnectionClosed, BrokenPipeError, ConnectionResetError)
QID = "4Yc2Xz1x2Wz9abc"
LINE_RE = (r"{prog}: {qid}: to=<{to}>{orig}, relay=none, delay=[0-9.]+, delays=0\.1/0\.1/0/[0-9.]+, "
           r"dsn={dsn}, status={status} \({text}\)\n")


def log_line(prog, to, dsn, status, text, orig=None):
    return re.compile(LINE_RE.format(prog=re.escape(prog), qid=QID, to=re.escape(to),
                                     orig=", orig_to=<%s>" % re.escape(orig) if orig else "",
                                     dsn=re.escape(dsn), status=status, text=re.escape(text)))


def request(nexthop, recipients, **extra):
    r = {"queueId": QID, "queueName": "active", "fd": 0, "dataOffset": 0, "size": 0, "nexthop": nexthop,
         "sender": "sender@example.org", "recipients": recipients, "arrivalTime": T0,
         "activeTime": T0 + 100000, "handoffTime": T0 + 200000}
    r.update(extra)
    return r


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


class AgentTestCase(DaemonTestCase):
    DAEMON = "delivery agent"
    STDERR_NAME = "agent.err"
    STDERR_APPEND = True
    SOCKET_NAME = "discard"
    BINARY = DISCARD
    ARGS = []
    MAX_USE = 100
    MAX_IDLE = "100s"

    def setUp(self):
        super().setUp()
        write_conf(self.conf_path, "test_agents", {"runtime_directory": self.rt,
                                                    "queue_directory": os.path.join(self.tmp, "q"),
                                                    "max_use": self.MAX_USE, "max_idle": self.MAX_IDLE})
        self.queue_file = os.path.join(self.tmp, "queuefile")
        p = subprocess.run([QUEUE_TOOL, "write", self.queue_file, "-f", "sender@example.org",
                            "-r", "a@example.com", "-r", "b@example.com"],
                           input=b"Subject: test\n\nbody\n", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.fd = os.open(self.queue_file, os.O_RDONLY | os.O_CLOEXEC)
        self.addCleanup(os.close, self.fd)

    def daemon_argv(self):
        return [self.BINARY, "-c", self.conf_path] + self.ARGS

    def start_by_hand(self):
        d = self.spawn(self.daemon_argv(), self.env())
        self.assertTrue(wait_until(lambda: os.path.exists(self.socket_path) or not d.running(), START_TIMEOUT))
        self.assertTrue(d.running(), d.stderr())
        return d

    def start_accept(self):
        """systemd-socket-activate --accept: a process per connection, as an Accept=yes unit."""
        self.listen_notify("notify")
        argv = ["systemd-socket-activate", "-l", self.socket_path, "--accept",
                "-E", "NOTIFY_SOCKET=" + self.notify.path]
        for kv in sorted(self.env().items()):
            if kv[0] != "PATH":
                argv += ["-E", "%s=%s" % kv]
        d = self.spawn(argv + self.daemon_argv(), self.env())
        # With --accept, systemd-socket-activate stays the parent and dies of SIGTERM: the agents
        # are judged by its "Child N died with code 0" lines instead of its exit status.
        d.killed = True
        self.addCleanup(lambda: (d.proc.terminate(), d.proc.wait(EXIT_TIMEOUT)))
        self.assertTrue(wait_until(lambda: "Listening on %s" % self.socket_path in d.stderr(), START_TIMEOUT),
                        d.stderr())
        return d

    def deliver(self, conn, nexthop, recipients, fds=None, **extra):
        return conn.call(DELIVER, request(nexthop, recipients, **extra), fds=[self.fd] if fds is None else fds)

    def wait_stderr(self, pattern):
        self.assertTrue(wait_until(lambda: pattern.search(self.stderr()), START_TIMEOUT),
                        "no %r in stderr:\n%s" % (pattern.pattern, self.stderr()))


RCPTS = [{"address": "a@example.com", "offset": 100},
         {"address": "b@example.com", "origAddress": "list@example.com", "offset": 200},
         {"address": "C@Example.com", "origAddress": "c@example.COM", "offset": 300}]


class Discard(AgentTestCase):
    def test_discard_by_hand(self):
        self.start_by_hand()
        with varlink.connect(self.socket_path) as c:
            r = self.deliver(c, "silently", RCPTS)
            self.assertEqual(r, {"recipients": [
                {"offset": o, "status": "sent", "dsn": "2.0.0", "text": "silently", "relay": "none"}
                for o in (100, 200, 300)]})
            r = self.deliver(c, "2.7.0 spam trap", RCPTS[:1])
            self.assertEqual(r["recipients"][0]["dsn"], "2.7.0")
            self.assertEqual(r["recipients"][0]["text"], "spam trap")
            r = self.deliver(c, "5.1.1 wrong class", RCPTS[:1])
            self.assertEqual((r["recipients"][0]["dsn"], r["recipients"][0]["text"]), ("2.0.0", "wrong class"))
        self.wait_stderr(log_line("tern/discard", "a@example.com", "2.0.0", "sent", "silently"))
        self.wait_stderr(log_line("tern/discard", "b@example.com", "2.0.0", "sent", "silently",
                                  orig="list@example.com"))
        self.wait_stderr(log_line("tern/discard", "C@Example.com", "2.0.0", "sent", "silently"))
        self.wait_stderr(log_line("tern/discard", "a@example.com", "2.7.0", "sent", "spam trap"))
        self.wait_stderr(re.compile(r'tern/discard: warning: sent: ignoring dsn code "5\.1\.1"\n'))

    def test_ternctl_call_fd(self):
        self.start_by_hand()
        p = subprocess.run([TERNCTL, "call", "--fd", self.queue_file, self.socket_path, DELIVER,
                            json.dumps(request("example.com", RCPTS[:1]))],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env(), timeout=EXIT_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["recipients"][0]["text"], "example.com")
        self.wait_stderr(log_line("tern/discard", "a@example.com", "2.0.0", "sent", "example.com"))

    def test_bad_requests(self):
        self.start_by_hand()
        r0 = [{"address": "a@example.com", "offset": 1}]
        bad = [
            ("no descriptor", request("x", r0), [], INVALID_PARAMETER, {"parameter": "fd"}),
            ("no recipients", request("x", []), None, INVALID_PARAMETER, {"parameter": "recipients"}),
            ("mistyped offset", request("x", [{"address": "a@b", "offset": "1"}]), None, INVALID_PARAMETER,
             {"parameter": "recipients[0].offset"}),
            ("unknown field", request("x", r0, bogus=1), None, INVALID_PARAMETER, {"parameter": "bogus"}),
            ("mistyped sender", request("x", r0, sender=5), None, INVALID_PARAMETER, {"parameter": "sender"}),
            ("empty nexthop", request("", r0), None, INVALID_REQUEST, {"reason": "empty nexthop"}),
        ]
        rd, wr = os.pipe()
        self.addCleanup(os.close, rd)
        self.addCleanup(os.close, wr)
        bad.append(("a pipe", request("x", r0), [rd], INVALID_REQUEST, {"reason": "fd: not a regular file"}))
        wo = os.open(self.queue_file, os.O_WRONLY | os.O_CLOEXEC)
        self.addCleanup(os.close, wo)
        bad.append(("write-only", request("x", r0), [wo], INVALID_REQUEST, {"reason": "fd: not open for reading"}))
        with varlink.connect(self.socket_path) as c:
            for what, params, fds, error, eparams in bad:
                with self.assertRaises(varlink.VarlinkError, msg=what) as cm:
                    c.call(DELIVER, params, fds=[self.fd] if fds is None else fds)
                self.assertEqual((cm.exception.name, cm.exception.parameters), (error, eparams), what)
                # and the connection goes on serving
                self.assertEqual(self.deliver(c, "ok", r0)["recipients"][0]["status"], "sent", what)

    def test_max_use_by_hand(self):
        write_conf(self.conf_path, "max_use", {"runtime_directory": self.rt, "max_use": 2})
        d = self.start_by_hand()
        for _ in range(2):      # a fresh process per connection, each good for two calls
            with varlink.connect(self.socket_path) as c:
                self.assertTrue(wait_until(lambda: len(children(d.pid)) == 1, START_TIMEOUT))
                self.deliver(c, "x", RCPTS[:1])
                self.deliver(c, "x", RCPTS[:1])
                with self.assertRaises(CLOSED):
                    self.deliver(c, "x", RCPTS[:1])
            self.assertTrue(wait_until(lambda: children(d.pid) == [], EXIT_TIMEOUT), children(d.pid))
        self.assertTrue(d.running())

    def test_children_and_sigterm(self):
        d = self.start_by_hand()
        conns = [varlink.connect(self.socket_path) for _ in range(3)]
        try:
            for c in conns:
                self.deliver(c, "x", RCPTS[:1])
            self.assertEqual(len(children(d.pid)), 3)
            conns.pop().close()
            self.assertTrue(wait_until(lambda: len(children(d.pid)) == 2, EXIT_TIMEOUT))
            kids = children(d.pid)
            self.assertEqual(d.stop(), 0, d.stderr())
            for k in kids:
                self.assertFalse(os.path.exists("/proc/%d" % k) and
                                 open("/proc/%d/stat" % k).read().split()[2] != "Z", "child %d survived" % k)
            for c in conns:
                with self.assertRaises(varlink.ConnectionClosed):
                    c.receive()
            self.assertFalse(os.path.exists(self.socket_path), "the socket bound by hand is left behind")
        finally:
            for c in conns:
                c.close()

    def test_accept(self):
        d = self.start_accept()
        with varlink.connect(self.socket_path) as c:
            self.assertEqual(self.deliver(c, "silently", RCPTS[:2])["recipients"][1]["status"], "sent")
            self.notify.wait_for("READY=1")
        self.assertTrue(wait_until(lambda: re.search(r"Child \d+ died with code 0", d.stderr()), EXIT_TIMEOUT),
                        d.stderr())
        self.wait_stderr(log_line("tern/discard", "b@example.com", "2.0.0", "sent", "silently",
                                  orig="list@example.com"))

    def test_accept_max_use_and_idle(self):
        write_conf(self.conf_path, "max_use", {"runtime_directory": self.rt, "max_use": 1, "max_idle": "1s"})
        d = self.start_accept()
        with varlink.connect(self.socket_path) as c:
            self.deliver(c, "x", RCPTS[:1])
            with self.assertRaises(CLOSED):
                self.deliver(c, "x", RCPTS[:1])
        # an idle connection ends after max_idle
        with varlink.connect(self.socket_path) as c:
            c.call("org.varlink.service.GetInfo")
            t = time.monotonic()
            with self.assertRaises(varlink.ConnectionClosed):
                c.receive()
            self.assertLess(time.monotonic() - t, 5)
        self.assertTrue(wait_until(lambda: len(re.findall(r"Child \d+ died with code 0", d.stderr())) == 2,
                                   EXIT_TIMEOUT), d.stderr())


class Error(AgentTestCase):
    SOCKET_NAME = "error"
    BINARY = ERROR

    def test_error_bounces(self):
        self.start_by_hand()
        with varlink.connect(self.socket_path) as c:
            r = self.deliver(c, "5.1.1 mailbox unavailable", RCPTS[:2])
            self.assertEqual(r["recipients"], [
                {"offset": o, "status": "bounced", "dsn": "5.1.1", "text": "mailbox unavailable", "relay": "none"}
                for o in (100, 200)])
            self.assertNotIn("hopStatus", r)
            r = self.deliver(c, "no such user here", RCPTS[:1])
            self.assertEqual(r["recipients"][0]["dsn"], "5.0.0")
            r = self.deliver(c, "4.7.1 not a bounce code", RCPTS[:1])
            self.assertEqual(r["recipients"][0]["dsn"], "5.0.0")
        self.wait_stderr(log_line("tern/error", "a@example.com", "5.1.1", "bounced", "mailbox unavailable"))
        self.wait_stderr(log_line("tern/error", "a@example.com", "5.0.0", "bounced", "no such user here"))
        self.wait_stderr(re.compile(r'tern/error: warning: bounce_append: ignoring dsn code "4\.7\.1"\n'))

    def test_accept(self):
        d = self.start_accept()
        with varlink.connect(self.socket_path) as c:
            self.assertEqual(self.deliver(c, "gone", RCPTS[:1])["recipients"][0]["status"], "bounced")
        self.assertTrue(wait_until(lambda: re.search(r"Child \d+ died with code 0", d.stderr()), EXIT_TIMEOUT))

    def test_bad_transport(self):
        p = subprocess.run([ERROR, "-c", self.conf_path, "-t", "smtp"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=self.env(), timeout=EXIT_TIMEOUT)
        self.assertEqual(p.returncode, 64)
        self.assertIn(b'does not serve transport "smtp"', p.stderr)


class Retry(AgentTestCase):
    SOCKET_NAME = "retry"
    BINARY = ERROR
    ARGS = ["-t", "retry"]

    def test_retry_defers(self):
        self.start_by_hand()
        with varlink.connect(self.socket_path) as c:
            r = self.deliver(c, "try again later", RCPTS[:1])
            self.assertEqual(r["recipients"][0], {"offset": 100, "status": "deferred", "dsn": "4.0.0",
                                                  "text": "try again later", "relay": "none"})
            r = self.deliver(c, "4.3.2 system not accepting", RCPTS[:1])
            self.assertEqual(r["recipients"][0]["dsn"], "4.3.2")
            r = self.deliver(c, "5.0.0 x", RCPTS[:1])
            self.assertEqual(r["recipients"][0]["dsn"], "4.0.0")
        # the log identifier is the program's, whatever the transport
        self.wait_stderr(log_line("tern/error", "a@example.com", "4.0.0", "deferred", "try again later"))
        self.wait_stderr(re.compile(r'tern/error: warning: defer_append: ignoring dsn code "5\.0\.0"\n'))

    def test_accept(self):
        d = self.start_accept()
        with varlink.connect(self.socket_path) as c:
            self.assertEqual(self.deliver(c, "later", RCPTS[:1])["recipients"][0]["status"], "deferred")
        self.assertTrue(wait_until(lambda: re.search(r"Child \d+ died with code 0", d.stderr()), EXIT_TIMEOUT))


class TestAgent(AgentTestCase):
    SOCKET_NAME = "testagent"
    BINARY = TESTAGENT

    def env(self):
        e = super().env()
        e["TERN_TESTAGENT_LOG"] = os.path.join(self.tmp, "calls.log")
        return e

    def calls(self):
        try:
            with open(os.path.join(self.tmp, "calls.log")) as f:
                return [dict(kv.split("=", 1) for kv in line.split()) for line in f]
        except FileNotFoundError:
            return []

    def test_scripted(self):
        d = self.start_by_hand()
        rc = [{"address": a, "offset": i} for i, a in
              enumerate(["sent1@x", "defer1@x", "bounce1@x", "other@x"], start=10)]
        with varlink.connect(self.socket_path) as c:
            r = self.deliver(c, "example.com", rc)
            self.assertEqual([(x["status"], x["dsn"]) for x in r["recipients"]],
                             [("sent", "2.0.0"), ("deferred", "4.2.0"), ("bounced", "5.1.1"), ("sent", "2.0.0")])
            r = self.deliver(c, "hopfail.example", rc[:1])
            self.assertEqual(r["hopStatus"]["dsn"], "4.4.1")
            self.assertEqual(r["recipients"][0]["status"], "deferred")
            r = self.deliver(c, "x", [{"address": "garbage@x", "offset": 1}])
            self.assertEqual(r["recipients"][0]["status"], "exploded")
            r = self.deliver(c, "x", [{"address": "foreign@x", "offset": 1}, {"address": "sent@x", "offset": 2}])
            self.assertEqual([x["offset"] for x in r["recipients"]], [1000001, 2])
            t = time.monotonic()
            self.deliver(c, "x", [{"address": "sent-slow300@x", "offset": 1}])
            self.assertGreaterEqual(time.monotonic() - t, 0.3)
        with varlink.connect(self.socket_path) as c:
            c.settimeout(0.5)
            with self.assertRaises(socket.timeout):
                self.deliver(c, "x", [{"address": "hang@x", "offset": 1}])
        with varlink.connect(self.socket_path) as c:
            with self.assertRaises(CLOSED):
                self.deliver(c, "x", [{"address": "crash@x", "offset": 1}])
        self.wait_stderr(re.compile(r"warning: process tern-testagent pid \d+ killed by signal 6"))
        self.assertTrue(wait_until(lambda: len(self.calls()) == 7, EXIT_TIMEOUT), self.calls())
        calls = self.calls()
        self.assertEqual([x["outcome"] for x in calls],
                         ["answered", "answered", "garbage", "foreign", "answered", "hang", "crash"])
        self.assertEqual(calls[0]["recipients"], "sent1@x,defer1@x,bounce1@x,other@x")
        self.assertEqual(calls[0]["queue_id"], QID)
        self.assertEqual(calls[5]["end"], "-")
        self.assertLessEqual(float(calls[4]["start"]) + 0.3, float(calls[4]["end"]))
        self.assertNotEqual(calls[0]["pid"], calls[5]["pid"])
        self.assertNotEqual(calls[0]["pid"], str(d.pid))


if __name__ == "__main__":
    unittest.main()
