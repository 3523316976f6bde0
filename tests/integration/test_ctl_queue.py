# SPDX-License-Identifier: MIT
"""ternctl queue / ternctl qmgr / mailq / tern-sendmail -bp -q: the CLIENT side, against a fake tern-qmgr.

tern-qmgr is being written separately; this suite does NOT test it. It exercises what ternctl and
tern-sendmail do with io.tern.Queue and io.tern.Qmgr (src/lib/idl/): the streamed List call
("more", one message per reply), the parameters each verb sends, how replies are printed
(mailq text, postqueue -j lines, postsuper's summary lines) and how errors become messages and
exit codes. The daemon's own tests come with the daemon.

FakeQmgr is a minimal varlink server in this file (a thread per connection on a UNIX socket at
runtime_directory/qmgr): it records every call, answers from canned data, and can be told to
answer a method with an error or a broken reply. It knows nothing of tern's C code.

What is tested:
  - queue list: mailq text byte for byte (heading, markers * ! #, reasons, blank lines, trailer),
    "Mail queue is empty", List sent with "more" and without a filter; 2,000 messages streamed;
  - queue list --json: postqueue -j lines (member names, order, spacing), MAILER-DAEMON,
    next_attempt_time last;
  - filters: --sender, --recipient-domain, --queue, --older-than (Postfix units), IDs, "-";
  - mailq (ternctl invoked by that name) and tern-sendmail -bp print exactly what queue list does;
  - tern-sendmail -q sends postqueue -f's triggers F A D I; qmgr trigger names, letters, "AFD";
    an unknown request is refused before anything is sent;
  - hold/release/delete/requeue: the filter sent, IDs from stdin, postsuper's summary lines
    ("1 message", "N messages", nothing for 0), --json; no selection is a usage error;
  - show, summary, qmgr status: text and --json;
  - errors: NotAuthorized 77, NoSuchMessage 66, InvalidFilter 64, InvalidRequest 64, an error
    in the middle of a listing, a broken reply 76, tern-qmgr not running 69.

Binaries: $TERNCTL, $TERN_SENDMAIL.
"""
import json
import re
import os
import socket
import subprocess
import sys
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import SANITIZER_RE, TempDirTestCase, base_env, write_conf  # noqa: E402

TERNCTL = os.environ.get("TERNCTL", os.path.join(HERE, "..", "..", "build", "src", "ctl", "ternctl"))
SENDMAIL = os.environ.get("TERN_SENDMAIL",
                          os.path.join(HERE, "..", "..", "build", "src", "sendmail", "tern-sendmail"))

# 1732312345 = Fri Nov 22 21:52:25 2024 UTC (the children run with TZ=UTC)
REASON = "connect to mx.customer.tld[192.0.2.7]:25: Connection refused"
MESSAGES = [
    {"queueName": "active", "queueId": "4Wd9Xj1Bc2zD3", "arrivalTime": 1732312345, "messageSize": 1234,
     "forcedExpire": False, "sender": "a@example.org",
     "recipients": [{"origAddress": "u@customer.tld", "address": "u@customer.tld"}]},
    {"queueName": "deferred", "queueId": "4Wd9Xj1Bc2zD4", "arrivalTime": 1732312345, "messageSize": 2000,
     "forcedExpire": False, "sender": "MAILER-DAEMON",
     "recipients": [{"origAddress": "u@customer.tld", "address": "u@customer.tld", "delayReason": REASON},
                    {"origAddress": "w@other.tld", "address": "w@other.tld"}],
     "nextAttemptTime": 1732313000},
    {"queueName": "hold", "queueId": "4Wd9Xj1Bc2zD5", "arrivalTime": 1732312345, "messageSize": 10,
     "forcedExpire": True, "sender": "b@example.org",
     "recipients": [{"origAddress": "x@y.tld", "address": "x@y.tld"}]},
]
RCPT = " " * 47
MAILQ_TEXT = (
    "----Queue ID----- --Size-- ---Arrival Time---- --Sender/Recipient------\n"
    "4Wd9Xj1Bc2zD3*        1234 Fri Nov 22 21:52:25 a@example.org\n"
    + RCPT + "u@customer.tld\n"
    "\n"
    "4Wd9Xj1Bc2zD4         2000 Fri Nov 22 21:52:25 MAILER-DAEMON\n"
    + " " * 16 + "(" + REASON + ")\n"
    + RCPT + "u@customer.tld\n"
    + " " * 58 + "(reason unavailable)\n"
    + RCPT + "w@other.tld\n"
    "\n"
    "4Wd9Xj1Bc2zD5!#         10 Fri Nov 22 21:52:25 b@example.org\n"
    + RCPT + "x@y.tld\n"
    "\n"
    "-- 3 Kbytes in 3 Requests.\n")
JSON_LINES = (
    '{"queue_name": "active", "queue_id": "4Wd9Xj1Bc2zD3", "arrival_time": 1732312345, "message_size": 1234, '
    '"forced_expire": false, "sender": "a@example.org", "recipients": [{"orig_address": "u@customer.tld", '
    '"address": "u@customer.tld"}]}\n'
    '{"queue_name": "deferred", "queue_id": "4Wd9Xj1Bc2zD4", "arrival_time": 1732312345, "message_size": 2000, '
    '"forced_expire": false, "sender": "MAILER-DAEMON", "recipients": [{"orig_address": "u@customer.tld", '
    '"address": "u@customer.tld", "delay_reason": "' + REASON + '"}, {"orig_address": "w@other.tld", '
    '"address": "w@other.tld"}], "next_attempt_time": 1732313000}\n'
    '{"queue_name": "hold", "queue_id": "4Wd9Xj1Bc2zD5", "arrival_time": 1732312345, "message_size": 10, '
    '"forced_expire": true, "sender": "b@example.org", "recipients": [{"orig_address": "x@y.tld", '
    '"address": "x@y.tld"}]}\n')
POSTFIX_JSON_MEMBERS = ["queue_name", "queue_id", "arrival_time", "message_size", "forced_expire", "sender",
                        "recipients"]


class FakeQmgr:
    """A varlink server on PATH serving io.tern.Queue and io.tern.Qmgr from canned data.

    calls: [(method, parameters, more)] in arrival order. messages: what List streams.
    errors: method -> (error name, parameters) answered instead. change_count: Hold/... count.
    broken: methods answered with a reply that breaks the IDL."""

    def __init__(self, path):
        self.path = path
        self.calls = []
        self.messages = list(MESSAGES)
        self.errors = {}
        self.broken = set()
        self.change_count = 2
        self.list_error_after = None
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(16)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def close(self):
        if self.sock.fileno() < 0:
            return
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)

    def methods(self):
        return [c[0] for c in self.calls]

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        buf = b""
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                buf += data
                while b"\0" in buf:
                    raw, buf = buf.split(b"\0", 1)
                    call = json.loads(raw)
                    for reply in self._answer(call):
                        conn.sendall(json.dumps(reply).encode() + b"\0")

    def _answer(self, call):
        method, params, more = call["method"], call.get("parameters", {}), call.get("more", False)
        self.calls.append((method, params, more))
        if method in self.errors:
            name, p = self.errors[method]
            return [{"error": name, "parameters": p}]
        if method in self.broken:
            return [{"parameters": {"message": "not an object"}, "continues": True}, {"parameters": {}}]
        if method == "io.tern.Queue.List":
            if not more:
                return [{"error": "org.varlink.service.ExpectedMore", "parameters": {}}]
            out = []
            for i, m in enumerate(self.messages):
                if self.list_error_after is not None and i == self.list_error_after:
                    out.append({"error": "io.tern.Queue.NotAuthorized", "parameters": {"user": "nobody"}})
                    return out
                out.append({"parameters": {"message": m}, "continues": True})
            return out + [{"parameters": {}}]
        if method == "io.tern.Queue.Show":
            for m in self.messages:
                if m["queueId"] == params.get("queueId"):
                    return [{"parameters": {
                        "message": m, "createTime": m["arrivalTime"] - 1, "fullName": "Ann Example",
                        "attributes": {"rewrite_context": "local"},
                        "recipients": [dict(r, offset=100 + i, done=False) for i, r in enumerate(m["recipients"])],
                        "headers": ["Subject: hello", "Received: from a\n\tby b"]}}]
            return [{"error": "io.tern.Queue.NoSuchMessage", "parameters": {"queueId": params.get("queueId")}}]
        if method in ("io.tern.Queue.Hold", "io.tern.Queue.Release", "io.tern.Queue.Delete",
                      "io.tern.Queue.Requeue"):
            ids = ["4Wd9Xj1Bc2zD%d" % i for i in range(self.change_count)]
            return [{"parameters": {"count": self.change_count, "queueIds": ids}}]
        if method == "io.tern.Queue.Summary":
            return [{"parameters": {
                "queues": {"incoming": 0, "active": 1, "deferred": 1, "hold": 1, "corrupt": 0},
                "oldestArrival": 1732312345,
                "destinations": [{"domain": "customer.tld", "recipients": 1, "messages": 1,
                                  "ages": [0, 0, 0, 0, 0, 0, 0, 0, 0, 1], "oldest": 1732312345,
                                  "nextAttempt": 1732313000, "reason": REASON, "dead": True}]}}]
        if method == "io.tern.Qmgr.Trigger":
            for r in params.get("requests", []):
                if r not in ("incoming", "deferred", "all", "flushDead", "wakeup"):
                    return [{"error": "io.tern.Qmgr.InvalidRequest", "parameters": {"request": r}}]
            return [{"parameters": {}}]
        if method == "io.tern.Qmgr.Status":
            return [{"parameters": {
                "queues": {"incoming": 0, "active": 1, "deferred": 1, "hold": 1, "corrupt": 0},
                "messages": 1, "messageLimit": 20000, "recipients": 1, "recipientLimit": 20000,
                "scans": {"incoming": {"running": False}},
                "transports": [{"name": "smtp", "agents": 1, "idleAgents": 0, "pending": 0, "dead": False,
                                "destinations": 1}],
                "destinations": [{"transport": "smtp", "nexthop": "customer.tld", "window": 5, "limit": 20,
                                  "busy": 0, "todo": 1, "dead": True, "reason": REASON,
                                  "deadUntil": 1732313000}]}}]
        return [{"error": "org.varlink.service.MethodNotFound", "parameters": {"method": method}}]


class CtlQueueTest(TempDirTestCase):
    def setUp(self):
        super().setUp()
        self.rt = os.path.join(self.tmp, "run")
        os.mkdir(self.rt)
        self.conf = os.path.join(self.tmp, "main.cf")
        write_conf(self.conf, "ternctl queue tests", {"runtime_directory": self.rt})
        self.qmgr = FakeQmgr(os.path.join(self.rt, "qmgr"))
        self.addCleanup(self.qmgr.close)

    def run_prog(self, argv, stdin=None):
        env = base_env()
        env["TZ"] = "UTC"
        p = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, timeout=60)
        self.assertNotRegex(p.stderr, SANITIZER_RE, "sanitizer report from %s" % argv)
        return p

    def ternctl(self, *args, stdin=None):
        return self.run_prog([TERNCTL, "-c", self.conf] + list(args), stdin=stdin)

    def sendmail(self, *args):
        return self.run_prog([SENDMAIL, "-C", self.conf] + list(args))

    def last(self, method):
        calls = [c for c in self.qmgr.calls if c[0] == method]
        self.assertTrue(calls, "no %s call; calls: %r" % (method, self.qmgr.calls))
        return calls[-1]

    # ---- listing

    def test_list_text(self):
        p = self.ternctl("queue", "list")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, MAILQ_TEXT)
        self.assertEqual(self.last("io.tern.Queue.List"), ("io.tern.Queue.List", {}, True))

    def test_list_empty(self):
        self.qmgr.messages = []
        p = self.ternctl("queue", "list")
        self.assertEqual((p.returncode, p.stdout), (0, "Mail queue is empty\n"), p.stderr)

    def test_list_json(self):
        p = self.ternctl("queue", "list", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, JSON_LINES)
        for line in p.stdout.splitlines():
            obj = json.loads(line)
            self.assertEqual(list(obj)[:7], POSTFIX_JSON_MEMBERS)
            for r in obj["recipients"]:
                self.assertEqual(list(r)[:2], ["orig_address", "address"])
        # the global --json works the same
        self.assertEqual(self.ternctl("--json", "queue", "list").stdout, JSON_LINES)

    def test_list_streams_many(self):
        self.qmgr.messages = [dict(MESSAGES[0], queueId="4Wd9Xj1Bc%04d" % i, messageSize=1024)
                              for i in range(2000)]
        p = self.ternctl("queue", "list")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.endswith("\n-- 2000 Kbytes in 2000 Requests.\n"), p.stdout[-200:])
        self.assertEqual(p.stdout.count("*        1024 "), 2000)
        p = self.ternctl("queue", "list", "--json")
        self.assertEqual(len(p.stdout.splitlines()), 2000)

    def test_list_filters(self):
        p = self.ternctl("queue", "list", "--sender", "", "--recipient-domain", ".example", "--queue",
                         "deferred", "--older-than", "2h", "4Wd9Xj1Bc2zD4", "-", stdin="4Wd9Xj1Bc2zD5\n\n  X1 \n")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.last("io.tern.Queue.List")[1], {"filter": {
            "sender": "", "recipientDomain": ".example", "queue": "deferred", "olderThan": 7200,
            "queueIds": ["4Wd9Xj1Bc2zD4", "4Wd9Xj1Bc2zD5", "X1"]}})
        for bad in (["--older-than", "soon"], ["--older-than", "-5m"], ["4Wd9*"]):
            n = len(self.qmgr.calls)
            p = self.ternctl("queue", "list", *bad)
            self.assertIn(p.returncode, (64, 65), (bad, p.stderr))
            self.assertEqual(len(self.qmgr.calls), n, "a bad filter was sent: %r" % bad)

    def test_mailq_and_sendmail_bp(self):
        mailq = os.path.join(self.tmp, "mailq")
        os.symlink(os.path.abspath(TERNCTL), mailq)
        # mailq takes no -c: the configuration comes through $TERN_CONFIG
        env = base_env()
        env.update(TZ="UTC", TERN_CONFIG=self.conf)
        p = subprocess.run([mailq], capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual((p.returncode, p.stdout), (0, MAILQ_TEXT), p.stderr)
        p = self.sendmail("-bp")
        self.assertEqual((p.returncode, p.stdout), (0, MAILQ_TEXT), p.stderr)
        self.qmgr.messages = []
        p = self.sendmail("-bp")
        self.assertEqual((p.returncode, p.stdout), (0, "Mail queue is empty\n"), p.stderr)

    # ---- triggers

    def test_sendmail_q_is_postqueue_f(self):
        p = self.sendmail("-q")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.last("io.tern.Qmgr.Trigger")[1],
                         {"requests": ["flushDead", "all", "deferred", "incoming"]})

    def test_qmgr_trigger(self):
        for args, want in ((["deferred", "all"], ["deferred", "all"]),
                           (["A", "F", "D", "I", "W"], ["all", "flushDead", "deferred", "incoming", "wakeup"]),
                           (["AFD"], ["all", "flushDead", "deferred"]),
                           (["flush-dead", "incoming"], ["flushDead", "incoming"])):
            p = self.ternctl("qmgr", "trigger", *args)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(self.last("io.tern.Qmgr.Trigger")[1], {"requests": want}, args)
        n = len(self.qmgr.calls)
        for bad in (["later"], ["AFX"], []):
            p = self.ternctl("qmgr", "trigger", *bad)
            self.assertEqual(p.returncode, 64, (bad, p.stderr))
        self.assertEqual(len(self.qmgr.calls), n)

    # ---- changes

    def test_changes(self):
        for verb, method, words in (("hold", "Hold", "Placed on hold"), ("release", "Release", "Released from hold"),
                                    ("delete", "Delete", "Deleted"), ("requeue", "Requeue", "Requeued")):
            p = self.ternctl("queue", verb, "-", stdin="4Wd9Xj1Bc2zD4\n4Wd9Xj1Bc2zD5\n")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stderr, "ternctl: %s: 2 messages\n" % words)
            self.assertEqual(self.last("io.tern.Queue." + method)[1],
                             {"filter": {"queueIds": ["4Wd9Xj1Bc2zD4", "4Wd9Xj1Bc2zD5"]}})
        self.qmgr.change_count = 1
        p = self.ternctl("queue", "delete", "--all", "--older-than", "1d")
        self.assertEqual(p.stderr, "ternctl: Deleted: 1 message\n")
        self.assertEqual(self.last("io.tern.Queue.Delete")[1], {"filter": {"all": True, "olderThan": 86400}})
        self.qmgr.change_count = 0
        p = self.ternctl("queue", "hold", "--sender", "spam@example.net", "--queue", "deferred")
        self.assertEqual((p.returncode, p.stderr), (0, ""))
        p = self.ternctl("queue", "requeue", "--json", "4Wd9Xj1Bc2zD4")
        self.assertEqual(json.loads(p.stdout), {"count": 0, "queueIds": []})
        # no selection: refused before anything is sent; "-" with an empty stdin sends nothing
        n = len(self.qmgr.calls)
        self.assertEqual(self.ternctl("queue", "delete").returncode, 64)
        p = self.ternctl("queue", "delete", "-", stdin="")
        self.assertEqual((p.returncode, p.stderr), (0, ""))
        p = self.ternctl("queue", "delete", "-", stdin="4Wd9*\n")
        self.assertEqual(p.returncode, 65, p.stderr)
        self.assertEqual(len(self.qmgr.calls), n)

    # ---- show, summary, status

    def test_show(self):
        p = self.ternctl("queue", "show", "4Wd9Xj1Bc2zD4")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("*** ENVELOPE deferred/4Wd9Xj1Bc2zD4 ***\n", p.stdout)
        self.assertIn("sender: MAILER-DAEMON\n", p.stdout)
        self.assertIn("recipient: u@customer.tld\n", p.stdout)
        self.assertIn("Received: from a\n\tby b\n", p.stdout)
        p = self.ternctl("queue", "show", "--json", "4Wd9Xj1Bc2zD4")
        self.assertEqual(json.loads(p.stdout)["message"]["queueId"], "4Wd9Xj1Bc2zD4")
        p = self.ternctl("queue", "show", "4Wd9Xj1Bc2zD9")
        self.assertEqual(p.returncode, 66)
        self.assertEqual(p.stderr, "ternctl: 4Wd9Xj1Bc2zD9: no such message in the queue\n")
        self.assertEqual(self.ternctl("queue", "show").returncode, 64)
        self.assertEqual(self.ternctl("queue", "show", "a", "b").returncode, 64)

    def test_summary_and_status(self):
        p = self.ternctl("queue", "summary")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("T 5 10 20 40 80 160 320 640 1280 1280+\n", p.stdout)
        self.assertIn("customer.tld 1 0  0  0  0  0   0   0   0    0     1\n", p.stdout)
        self.assertIn("queues: incoming 0 active 1 deferred 1 hold 1 corrupt 0\n", p.stdout)
        self.assertIn(REASON, p.stdout)
        self.assertEqual(json.loads(self.ternctl("queue", "summary", "--json").stdout)["queues"]["hold"], 1)
        p = self.ternctl("qmgr", "status")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("in core: messages 1/20000 recipients 1/20000\n", p.stdout)
        self.assertRegex(p.stdout, r"\nsmtp +1 +0 +0 +1 ok\n")
        self.assertRegex(p.stdout, r"smtp +customer\.tld +5/20 +0 +1 dead until 22:03:20: " + re.escape(REASON))
        self.assertEqual(json.loads(self.ternctl("qmgr", "status", "--json").stdout)["messageLimit"], 20000)

    # ---- errors

    def test_errors(self):
        self.qmgr.errors["io.tern.Queue.List"] = ("io.tern.Queue.NotAuthorized", {"user": "nobody"})
        p = self.ternctl("queue", "list")
        self.assertEqual(p.returncode, 77)
        self.assertIn("permission denied: user nobody", p.stderr)
        p = self.sendmail("-bp")
        self.assertEqual(p.returncode, 77)
        self.assertIn("user nobody may not list the mail queue", p.stderr)
        self.qmgr.errors["io.tern.Queue.Delete"] = ("io.tern.Queue.InvalidFilter", {"reason": "unknown queue"})
        p = self.ternctl("queue", "delete", "--queue", "nope")
        self.assertEqual((p.returncode, p.stderr), (64, "ternctl: invalid filter: unknown queue\n"))
        self.qmgr.errors["io.tern.Qmgr.Trigger"] = ("io.tern.Qmgr.InvalidRequest", {"request": "wakeup"})
        p = self.ternctl("qmgr", "trigger", "W")
        self.assertEqual(p.returncode, 64)
        self.assertIn('does not know the trigger request "wakeup"', p.stderr)

    def test_error_mid_listing(self):
        self.qmgr.list_error_after = 1
        p = self.ternctl("queue", "list")
        self.assertEqual(p.returncode, 77)
        self.assertTrue(p.stdout.startswith(MAILQ_TEXT.split("\n\n")[0]), p.stdout)
        self.assertNotIn("Kbytes", p.stdout)

    def test_broken_reply(self):
        self.qmgr.broken.add("io.tern.Queue.List")
        p = self.ternctl("queue", "list")
        self.assertEqual(p.returncode, 76, p.stderr)
        self.assertIn("invalid reply", p.stderr)
        p = self.sendmail("-bp")
        self.assertEqual(p.returncode, 76, p.stderr)

    def test_not_running(self):
        self.qmgr.close()
        os.unlink(os.path.join(self.rt, "qmgr"))
        p = self.ternctl("queue", "list")
        self.assertEqual(p.returncode, 69)
        self.assertEqual(p.stderr, "tern-qmgr is not running: %s/qmgr: No such file or directory\n" % self.rt)
        self.assertEqual(self.ternctl("qmgr", "status").returncode, 69)
        p = self.sendmail("-bp")
        self.assertEqual(p.returncode, 69)
        self.assertIn("tern-qmgr is not running", p.stderr)


if __name__ == "__main__":
    unittest.main()
