# SPDX-License-Identifier: MIT
"""tern-qmgr end to end: the real daemon on a temporary spool, with real delivery agents
(tern-discard, tern-error as error and retry, the scripted tern-testagent) run by hand on the
same runtime directory, real queue files (tests/queue/queue-tool.c enqueue: queue-store's own
durable writes), and its varlink interfaces (io.tern.Qmgr, io.tern.Queue) through varlink.py and
ternctl.

Nothing here can reach the network: every test's main.cf routes all mail to local agents
(default_transport, relay_transport and local_transport are discard unless a test says
otherwise, and the [transport] table names the rest); addresses are in .test / .example.

What is tested: delivery through discard with Postfix's log lines (queue active, status=sent,
removed), inotify pickup without a trigger, triggers and their errors, bounces with a
non-delivery notice queued to the sender and logged, deferral with a defer log and a backoff
time, expiry, a transport without an agent (dead for transport_retry_time, recipients deferred),
a destination failing at the connection level declared dead and revived by flushDead, an agent
that crashes, answers garbage or answers for a recipient it was not given, corrupt files saved to
corrupt/, slow start seen in the test agent's concurrency, incoming not starved by a deferred
backlog, queue administration (list, show, hold, release, delete, requeue, summary) and a
kill -9 in the middle of a 10,000-message run losing nothing.

Binaries: $TERN_QMGR, $TERN_DISCARD, $TERN_ERROR, $TERN_TESTAGENT, $TERNCTL, $QUEUE_TOOL.
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import varlink  # noqa: E402
from harness import (SOURCE_ROOT, START_TIMEOUT, DaemonTestCase, Daemon, base_env,  # noqa: E402
                     write_queue_conf, wait_until)

BUILD = os.path.join(SOURCE_ROOT, "build")
QMGR = os.environ.get("TERN_QMGR", os.path.join(BUILD, "src", "qmgr", "tern-qmgr"))
DISCARD = os.environ.get("TERN_DISCARD", os.path.join(BUILD, "src", "discard", "tern-discard"))
ERROR = os.environ.get("TERN_ERROR", os.path.join(BUILD, "src", "error", "tern-error"))
TESTAGENT = os.environ.get("TERN_TESTAGENT", os.path.join(BUILD, "tests", "tern-testagent"))
TERNCTL = os.environ.get("TERNCTL", os.path.join(BUILD, "src", "ctl", "ternctl"))
QUEUE_TOOL = os.environ.get("QUEUE_TOOL", os.path.join(BUILD, "tests", "integration", "queue-tool"))

RUN_TIMEOUT = 60


class QmgrTestCase(DaemonTestCase):
    DAEMON = "tern-qmgr"
    BINARY = QMGR
    SOCKET_NAME = "qmgr"
    STDERR_NAME = "daemons.log"
    STDERR_APPEND = True

    SETTINGS = []
    TRANSPORT = []

    def setUp(self):
        super().setUp()
        self.spool = os.path.join(self.tmp, "spool")
        os.mkdir(self.spool)
        self.agent_log = os.path.join(self.tmp, "agent.log")
        self.write_main_cf(self.SETTINGS, self.TRANSPORT)

    def write_main_cf(self, settings, transport):
        write_queue_conf(self.conf_path, "test_qmgr", self.spool, self.rt, settings, transport)

    def env(self):
        e = base_env()
        e["TERN_TESTAGENT_LOG"] = self.agent_log
        return e

    # ---- daemons

    def start_agent(self, binary, transport=None):
        argv = [binary, "-c", self.conf_path] + (["-t", transport] if transport else [])
        d = self.spawn(argv, self.env())
        path = os.path.join(self.rt, transport or os.path.basename(binary)[len("tern-"):])
        self.assertTrue(wait_until(lambda: os.path.exists(path) or not d.running(), START_TIMEOUT),
                        "agent did not bind " + path)
        return d

    def start_qmgr(self):
        d = self.spawn(self.daemon_argv(), self.env())
        self.assertTrue(wait_until(lambda: os.path.exists(self.socket_path) or not d.running(),
                                   START_TIMEOUT), "tern-qmgr did not start:\n" + self.stderr())
        self.assertTrue(d.running(), self.stderr())
        return d

    # ---- spool

    def template(self, sender="sender@sender.test", rcpts=("rcpt@dest.test",), body="Subject: test\n\nhello\n",
                 arrival=None, extra=()):
        path = os.path.join(self.tmp, "template-%d" % len(glob.glob(os.path.join(self.tmp, "template-*"))))
        argv = [QUEUE_TOOL, "write", path, "-f", sender]
        # arrived now, unless told: an old message would expire at its first deferral
        arrival = int(time.time()) if arrival is None else arrival
        argv += ["-t", "%d.0" % arrival, "-c", str(arrival)]
        argv += list(extra)
        for r in rcpts:
            argv += ["-r", r]
        subprocess.run(argv, input=body.encode(), check=True)
        return path

    def enqueue(self, template, count=1, queue="incoming", next_attempt=None):
        argv = [QUEUE_TOOL, "enqueue", self.spool, queue, str(count), template]
        if next_attempt is not None:
            argv.append(str(int(next_attempt)))
        out = subprocess.run(argv, check=True, stdout=subprocess.PIPE).stdout.decode()
        return out.split()

    def files(self, queue):
        n = []
        for root, _, names in os.walk(os.path.join(self.spool, queue)):
            n += [x for x in names if re.fullmatch(r"[A-Za-z0-9_]+", x)]
        return n

    def wait_queue_empty(self, queues=("incoming", "active"), timeout=RUN_TIMEOUT):
        ok = wait_until(lambda: all(not self.files(q) for q in queues), timeout, interval=0.05)
        self.assertTrue(ok, "queues %s not empty: %s\n%s" % (queues, {q: len(self.files(q)) for q in queues},
                                                             self.stderr()[-4000:]))

    def wait_log(self, pattern, count=1, timeout=RUN_TIMEOUT):
        rx = re.compile(pattern, re.M)
        ok = wait_until(lambda: len(rx.findall(self.stderr())) >= count, timeout, interval=0.05)
        self.assertTrue(ok, "no %d lines like %r in:\n%s" % (count, pattern, self.stderr()[-6000:]))
        return rx.findall(self.stderr())

    # ---- varlink

    def call(self, method, params=None):
        with varlink.connect(self.socket_path) as c:
            return c.call(method, params or {})

    def call_more(self, method, params=None):
        with varlink.connect(self.socket_path) as c:
            return list(c.call_more(method, params or {}))

    def ternctl(self, *args, check=True):
        p = subprocess.run([TERNCTL, "-c", self.conf_path] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=self.env())
        if check:
            self.assertEqual(p.returncode, 0, p.stderr.decode())
        return p


class TestDelivery(QmgrTestCase):
    def test_discard_logs_and_removes(self):
        self.start_agent(DISCARD)
        self.start_qmgr()
        t = self.template(rcpts=("a@dest.test", "b@dest.test"))
        ids = self.enqueue(t, 20)          # no trigger: inotify sees them arrive
        self.wait_queue_empty()
        err = self.stderr()
        for qid in ids:
            self.assertRegex(err, r"tern/qmgr: %s: from=<sender@sender\.test>, size=\d+, nrcpt=2 "
                                  r"\(queue active\)\n" % qid)
            self.assertRegex(err, r"tern/discard: %s: to=<a@dest\.test>, relay=none, delay=[0-9.]+, "
                                  r"delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+, dsn=2\.0\.0, "
                                  r"status=sent \(dest\.test\)\n" % qid)
            self.assertRegex(err, r"tern/qmgr: %s: removed\n" % qid)
        self.assertEqual(self.files("deferred"), [])

    def test_trigger_and_status(self):
        self.write_main_cf([("qmgr_message_active_limit", "5000")], [])
        self.start_qmgr()
        self.assertEqual(self.call("io.tern.Qmgr.Trigger", {"requests": ["incoming", "deferred", "all",
                                                                         "flushDead", "wakeup"]}), {})
        with self.assertRaises(varlink.VarlinkError) as e:
            self.call("io.tern.Qmgr.Trigger", {"requests": ["incoming", "bogus"]})
        self.assertEqual(e.exception.name, "io.tern.Qmgr.InvalidRequest")
        self.assertEqual(e.exception.parameters, {"request": "bogus"})
        st = self.call("io.tern.Qmgr.Status")
        for k in ("queues", "messages", "messageLimit", "recipients", "recipientLimit", "transports",
                  "destinations"):
            self.assertIn(k, st)
        self.assertEqual(st["messageLimit"], 5000)
        p = self.ternctl("qmgr", "trigger", "A", "F", "D")
        self.assertEqual(p.returncode, 0)

    def test_corrupt_file_saved(self):
        self.start_agent(DISCARD)
        os.makedirs(os.path.join(self.spool, "incoming"), exist_ok=True)
        self.start_qmgr()
        ids = self.enqueue(self.template())
        # a file with a good name but garbage inside
        bad = os.path.join(self.spool, "incoming", "4Yc2Xz1x2Wz9bad")
        with open(bad + ".tmp", "wb") as f:
            f.write(b"C\x05garbage that is no queue file")
        os.chmod(bad + ".tmp", 0o700)
        os.rename(bad + ".tmp", bad)
        self.wait_log(r'warning: saving corrupt file "4Yc2Xz1x2Wz9bad" from queue "active" to queue "corrupt"$')
        self.wait_queue_empty()
        self.assertEqual(self.files("corrupt"), ["4Yc2Xz1x2Wz9bad"])
        self.wait_log(r"%s: removed$" % ids[0])


class TestFailures(QmgrTestCase):
    TRANSPORT = [("bounce.test", "error:5.1.1 mailbox unavailable"),
                 ("defer.test", "retry:4.2.2 mailbox full"),
                 ("noagent.test", "nosuchagent:"),
                 ("agent.test", "testagent:")]

    def test_bounce_sends_notice(self):
        self.start_agent(DISCARD)
        self.start_agent(ERROR)
        self.start_qmgr()
        ids = self.enqueue(self.template(rcpts=("user@bounce.test", "ok@dest.test")))
        lines = self.wait_log(r"tern/qmgr: %s: sender non-delivery notification: (\w+)$" % ids[0])
        notice = lines[0]
        self.wait_log(r"tern/error: %s: to=<user@bounce\.test>, relay=none, .*dsn=5\.1\.1, "
                      r"status=bounced \(mailbox unavailable\)$" % ids[0])
        # the notice goes to the sender, from <>, and is delivered (to discard)
        self.wait_log(r"tern/qmgr: %s: from=<>, size=\d+, nrcpt=1 \(queue active\)$" % notice)
        self.wait_log(r"tern/discard: %s: to=<sender@sender\.test>, .*status=sent" % notice)
        self.wait_queue_empty()
        self.assertFalse(os.path.exists(os.path.join(self.spool, "bounce", ids[0])))

    def test_bounce_of_large_message_returns_headers(self):
        # over bounce_size_limit: the notice carries the original's headers only, labelled so
        self.write_main_cf([("bounce_size_limit", "100")],
                           self.TRANSPORT + [("held.test", "retry:4.2.2 kept for the test")])
        self.start_agent(ERROR)
        self.start_agent(ERROR, "retry")
        self.start_qmgr()
        body = "Subject: large\nX-Check: original header\n\n" + "a line of the body\n" * 50
        ids = self.enqueue(self.template(sender="s@held.test", rcpts=("user@bounce.test",), body=body))
        notice = self.wait_log(r"tern/qmgr: %s: sender non-delivery notification: (\w+)$" % ids[0])[0]
        self.wait_log(r"tern/(retry|error): %s: to=<s@held\.test>.*status=deferred" % notice)
        self.wait_queue_empty()
        path = glob.glob(os.path.join(self.spool, "deferred", "*", notice))[0]
        records = subprocess.run([QUEUE_TOOL, "records", path], stdout=subprocess.PIPE,
                                 check=True).stdout.decode()
        self.assertIn("Content-Type: text/rfc822-headers", records)
        self.assertNotIn("message/rfc822", records)
        self.assertIn("X-Check: original header", records)
        self.assertNotIn("a line of the body", records)

    def test_bounce_of_null_sender_goes_to_postmaster(self):
        self.start_agent(DISCARD)
        self.start_agent(ERROR)
        self.start_qmgr()
        ids = self.enqueue(self.template(sender="", rcpts=("user@bounce.test",)))
        lines = self.wait_log(r"tern/qmgr: %s: postmaster non-delivery notification: (\w+)$" % ids[0])
        self.wait_log(r"tern/qmgr: %s: from=<double-bounce@tern\.test>" % lines[0])
        self.wait_queue_empty()

    def test_defer_writes_log_and_backs_off(self):
        self.start_agent(DISCARD)
        self.start_agent(ERROR, "retry")
        self.start_qmgr()
        now = int(time.time())
        ids = self.enqueue(self.template(rcpts=("user@defer.test",), arrival=now))
        self.wait_log(r"tern/retry|tern/error: %s: to=<user@defer\.test>, relay=none, .*dsn=4\.2\.2, "
                      r"status=deferred \(mailbox full\)$" % ids[0])
        self.wait_queue_empty()
        deferred = glob.glob(os.path.join(self.spool, "deferred", "*", ids[0]))
        self.assertEqual(len(deferred), 1)
        # next attempt: now + max(age, minimal_backoff_time) = about now + 300
        self.assertAlmostEqual(os.stat(deferred[0]).st_mtime, now + 300, delta=30)
        self.assertTrue(glob.glob(os.path.join(self.spool, "defer", "*", ids[0])))
        listing = [r["message"] for r in self.call_more("io.tern.Queue.List") if "message" in r]
        self.assertEqual([m["queueId"] for m in listing], ids)
        self.assertEqual(listing[0]["queueName"], "deferred")
        self.assertEqual(listing[0]["recipients"][0]["delayReason"], "mailbox full")
        p = self.ternctl("queue", "list", "--json")
        j = json.loads(p.stdout.decode().splitlines()[0])
        self.assertEqual(list(j)[:7], ["queue_name", "queue_id", "arrival_time", "message_size",
                                       "forced_expire", "sender", "recipients"])

    def test_delay_warning_once(self):
        self.start_agent(DISCARD)
        self.start_agent(ERROR, "retry")
        self.start_qmgr()
        now = int(time.time())
        ids = self.enqueue(self.template(rcpts=("user@defer.test",), extra=("-w", str(now - 10))))
        notice = self.wait_log(r"tern/qmgr: %s: sender delay notification: (\w+)$" % ids[0])[0]
        self.wait_log(r"tern/discard: %s: to=<sender@sender\.test>, .*status=sent" % notice)
        self.wait_queue_empty()
        # a second pass defers it again, without a second notice (W was rewritten to -1)
        self.call("io.tern.Queue.Requeue", {"filter": {"queueIds": ids}})
        self.wait_log(r"tern/qmgr: %s: from=<sender@sender\.test>, size=\d+, nrcpt=1 \(queue active\)$" % ids[0],
                      count=2)
        self.wait_log(r"tern/(retry|error): %s: to=<user@defer\.test>.*status=deferred" % ids[0], count=2)
        self.wait_queue_empty()
        self.assertEqual(len(re.findall(r"sender delay notification", self.stderr())), 1)
        dump = subprocess.run([QUEUE_TOOL, "records", glob.glob(os.path.join(self.spool, "deferred", "*",
                                                                              ids[0]))[0]],
                              stdout=subprocess.PIPE, check=True).stdout.decode()
        self.assertRegex(dump, r"W.*-1")

    def test_expiry_returns_to_sender(self):
        self.write_main_cf([("maximal_queue_lifetime", "0"), ("bounce_queue_lifetime", "0")], self.TRANSPORT)
        self.start_agent(DISCARD)
        self.start_agent(ERROR, "retry")
        self.start_qmgr()
        ids = self.enqueue(self.template(rcpts=("user@defer.test",)))
        self.wait_log(r"tern/qmgr: %s: from=<sender@sender\.test>, status=expired, returned to sender$" % ids[0])
        self.wait_log(r"tern/qmgr: %s: sender non-delivery notification: \w+$" % ids[0])
        self.wait_log(r"tern/qmgr: %s: removed$" % ids[0])
        self.wait_queue_empty(("incoming", "active", "deferred"))

    def test_transport_without_agent(self):
        self.start_qmgr()
        ids = self.enqueue(self.template(rcpts=("user@noagent.test",)))
        self.wait_log(r"tern/qmgr: %s: to=<user@noagent\.test>, relay=none, .*dsn=4\.3\.0, status=deferred "
                      r"\(delivery temporarily suspended: mail transport unavailable\)$" % ids[0])
        st = self.call("io.tern.Qmgr.Status")
        t = [t for t in st["transports"] if t["name"] == "nosuchagent"][0]
        self.assertTrue(t["dead"])
        self.assertGreater(t["deadUntil"], time.time() + 30)

    def test_dead_destination_and_flush_dead(self):
        self.TRANSPORT = self.TRANSPORT + [("fail.test", "testagent:hopfail.test")]
        self.write_main_cf([], self.TRANSPORT)
        self.start_agent(TESTAGENT, "testagent")
        self.start_qmgr()
        ids = self.enqueue(self.template(rcpts=("user@fail.test",)), 10)
        self.wait_queue_empty()
        st = self.call("io.tern.Qmgr.Status")
        d = [d for d in st["destinations"] if d["nexthop"] == "hopfail.test"][0]
        self.assertTrue(d["dead"], d)
        self.assertIn("delivery temporarily suspended: connect to hopfail.test", d["reason"])
        # fewer deliveries than messages: the rest were deferred without trying
        with open(self.agent_log) as f:
            tried = len(f.readlines())
        self.assertLess(tried, 10)
        self.assertEqual(len(self.files("deferred")), 10)
        self.wait_log(r"tern/qmgr: \w+: to=<user@fail\.test>, relay=none, .*status=deferred "
                      r"\(delivery temporarily suspended: connect to hopfail\.test", count=10 - tried)
        # flushDead: alive again at once
        self.call("io.tern.Qmgr.Trigger", {"requests": ["flushDead"]})
        st = self.call("io.tern.Qmgr.Status")
        self.assertFalse([d for d in st["destinations"] if d["nexthop"] == "hopfail.test" and d["dead"]])
        del ids

    def test_agent_crash_garbage_foreign(self):
        self.start_agent(TESTAGENT, "testagent")
        self.start_qmgr()
        for who, warning in (("crash", r"transport testagent failure -- connection closed before an answer"),
                             ("garbage", r"malformed reply from transport testagent"),
                             ("foreign", r"answered for a recipient it was not given")):
            ids = self.enqueue(self.template(rcpts=("%s@agent.test" % who,)))
            self.wait_log(warning)
            self.wait_log(r"tern/qmgr: %s: to=<%s@agent\.test>, relay=none, .*dsn=4\.3\.0, status=deferred "
                          r"\(unknown mail transport error\)$" % (ids[0], who))
            self.call("io.tern.Qmgr.Trigger", {"requests": ["flushDead"]})
        self.wait_queue_empty()
        self.assertEqual(len(self.files("deferred")), 3)


class TestBadInput(QmgrTestCase):
    TRANSPORT = [("agent.test", "testagent:"), ("defer.test", "retry:4.2.2 mailbox full")]
    SETTINGS = [("daemon_timeout", "2s")]

    def test_hanging_agent_given_up(self):
        # the agent's own watchdog (its daemon_timeout) would end the call first: give it longer
        with open(self.conf_path, "a") as f:
            f.write("\n[testagent]\ndaemon_timeout = 100s\n")
        self.start_agent(TESTAGENT, "testagent")
        self.start_qmgr()
        ids = self.enqueue(self.template(rcpts=("hang@agent.test",)))
        self.wait_log(r"tern/qmgr: warning: %s: timeout receiving delivery status from transport: testagent$"
                      % ids[0])
        self.wait_log(r"tern/qmgr: %s: to=<hang@agent\.test>, relay=none, .*dsn=4\.3\.0, status=deferred "
                      r"\(unknown mail transport error\)$" % ids[0])
        self.wait_queue_empty()
        self.assertEqual(self.files("deferred"), ids)
        # qmgr goes on serving
        self.assertIn("transports", self.call("io.tern.Qmgr.Status"))

    def test_file_not_ready_waits(self):
        self.start_agent(DISCARD)
        os.makedirs(os.path.join(self.spool, "incoming"), exist_ok=True)
        self.start_qmgr()
        ids = self.enqueue(self.template(rcpts=("user@dest.test",)))
        self.wait_log(r"%s: removed$" % ids[0])
        # a writer that has not finished: mode 0600, not 0700; qmgr leaves it alone
        path = os.path.join(self.spool, "incoming", "4Yc2Xz1x2Wz9nrd")
        with open(self.template(rcpts=("late@dest.test",)), "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o600)
        self.call("io.tern.Qmgr.Trigger", {"requests": ["incoming"]})
        st = self.call("io.tern.Qmgr.Status")
        self.assertEqual(st["messages"], 0)
        self.assertTrue(os.path.exists(path))
        # made ready: taken on the next scan
        os.chmod(path, 0o700)
        self.call("io.tern.Qmgr.Trigger", {"requests": ["incoming"]})
        self.wait_log(r"4Yc2Xz1x2Wz9nrd: removed$")

    def test_deferred_directory_gone_loses_nothing(self):
        self.start_agent(ERROR, "retry")
        q = self.start_qmgr()
        ids = self.enqueue(self.template(rcpts=("user@defer.test",)))
        self.wait_queue_empty()
        shutil.rmtree(os.path.join(self.spool, "deferred"))
        ids += self.enqueue(self.template(rcpts=("user@defer.test",)))
        self.wait_log(r"tern/(retry|error): %s: to=<user@defer\.test>.*status=deferred" % ids[1])
        self.assertTrue(wait_until(lambda: not self.files("incoming"), 10))
        # wherever it is now, the message is still in the spool, and qmgr still serves
        self.assertIn("transports", self.call("io.tern.Qmgr.Status"))
        self.assertIn(ids[1], self.files("active") + self.files("deferred"))
        q.stop()
        self.start_qmgr()
        self.call("io.tern.Qmgr.Trigger", {"requests": ["all", "deferred"]})
        self.wait_log(r"tern/qmgr: %s: from=<sender@sender\.test>, size=\d+, nrcpt=1 \(queue active\)$" % ids[1],
                      count=2)


class TestScheduling(QmgrTestCase):
    TRANSPORT = [("slow.test", "testagent:"), ("fast.test", "testagent:")]

    def test_slow_start(self):
        self.start_agent(TESTAGENT, "testagent")
        self.start_qmgr()
        # 60 messages for one destination, each delivery takes 200 ms
        self.enqueue(self.template(rcpts=("sent-slow200@slow.test",)), 60)
        self.wait_queue_empty(timeout=120)
        with open(self.agent_log) as f:
            calls = [dict(kv.split("=", 1) for kv in line.split()) for line in f]
        spans = sorted((float(c["start"]), float(c["end"])) for c in calls)
        t0 = spans[0][0]

        def concurrency_at(t):
            return sum(1 for s, e in spans if s <= t < e)
        first = max(concurrency_at(s) for s, e in spans if s < t0 + 0.1)
        peak = max(concurrency_at(s) for s, e in spans)
        self.assertLessEqual(first, 5)              # initial_destination_concurrency
        self.assertGreater(peak, 5)                 # positive feedback grew the window
        self.assertLessEqual(peak, 20)              # default_destination_concurrency_limit

    def test_incoming_not_starved_by_deferred_backlog(self):
        self.start_agent(TESTAGENT, "testagent")
        # 300 deferred messages due now, each delivery slow; then one new message
        self.enqueue(self.template(rcpts=("sent-slow50@slow.test",)), 300, queue="deferred",
                     next_attempt=time.time() - 10)
        self.start_qmgr()
        new = self.enqueue(self.template(rcpts=("sent@fast.test",)))
        self.wait_log(r"tern/qmgr: %s: removed$" % new[0], timeout=30)
        # it was taken in long before the backlog was through
        self.assertGreater(len(self.files("deferred")) + len(self.files("active")), 100,
                           "the new message waited for the deferred backlog")
        self.wait_queue_empty(("incoming", "active", "deferred"), timeout=120)


class TestClog(QmgrTestCase):
    TRANSPORT = [("defer.test", "retry:4.2.2 mailbox full")]
    SETTINGS = [("qmgr_message_active_limit", "50")]

    def test_clog_warning_once(self):
        # no discard agent, and 30 messages waiting when qmgr starts: one import pass takes them
        # all in for one destination before the first hand-off finds the transport dead
        self.enqueue(self.template(rcpts=("user@dest.test",)), 30)
        self.start_qmgr()
        self.wait_log(r"tern/qmgr: warning: mail for dest\.test is using up \d+ of 50 active queue entries$")
        self.wait_log(r"tern/qmgr: warning: this may slow down other mail deliveries$")
        self.wait_queue_empty()
        self.assertEqual(len(re.findall(r"is using up", self.stderr())), 1)   # once per qmgr_clog_warn_time


class TestAdmin(QmgrTestCase):
    TRANSPORT = [("defer.test", "retry:4.2.2 mailbox full")]

    def test_hold_release_requeue_delete(self):
        self.start_agent(ERROR, "retry")
        self.start_qmgr()
        ids = self.enqueue(self.template(rcpts=("user@defer.test",)), 3)
        self.wait_queue_empty()
        self.assertEqual(sorted(self.files("deferred")), sorted(ids))
        r = self.call("io.tern.Queue.Hold", {"filter": {"queueIds": ids[:2]}})
        self.assertEqual(r["count"], 2)
        self.assertEqual(sorted(self.files("hold")), sorted(ids[:2]))
        self.wait_log(r"tern/qmgr: %s: placed on hold$" % ids[0])
        r = self.call("io.tern.Queue.Release", {"filter": {"queue": "hold", "all": True}})
        self.assertEqual(r["count"], 2)
        self.assertEqual(self.files("hold"), [])
        show = self.call("io.tern.Queue.Show", {"queueId": ids[0]})
        self.assertEqual(show["message"]["queueId"], ids[0])
        self.assertIn("Subject: test", show["headers"])
        self.assertEqual(show["recipients"][0]["reason"], "mailbox full")
        r = self.call("io.tern.Queue.Requeue", {"filter": {"queueIds": [ids[2]]}})
        self.assertEqual(r["count"], 1)
        self.wait_log(r"tern/qmgr: %s: requeued$" % ids[2])
        self.wait_log(r"tern/qmgr: %s: from=<sender@sender\.test>, size=\d+, nrcpt=1 \(queue active\)$" % ids[2],
                      count=2)
        summary = self.call("io.tern.Queue.Summary")
        dest = [d for d in summary["destinations"] if d["domain"] == "defer.test"][0]
        self.assertEqual(dest["recipients"], 3)
        self.assertEqual(dest["messages"], 3)
        self.assertEqual(len(dest["ages"]), 10)
        r = self.call("io.tern.Queue.Delete", {"filter": {"all": True}})
        self.assertEqual(r["count"], 3)
        self.wait_queue_empty(("incoming", "active", "deferred", "hold"))
        with self.assertRaises(varlink.VarlinkError) as e:
            self.call("io.tern.Queue.Delete", {"filter": {}})
        self.assertEqual(e.exception.name, "io.tern.Queue.InvalidFilter")
        with self.assertRaises(varlink.VarlinkError) as e:
            self.call("io.tern.Queue.Show", {"queueId": ids[0]})
        self.assertEqual(e.exception.name, "io.tern.Queue.NoSuchMessage")


class TestListing(QmgrTestCase):
    def test_list_in_batches(self):
        # more than one batch (256 per event-loop pass), and a filter by recipient
        ids = set(self.enqueue(self.template(rcpts=("a@one.test",)), 400, queue="hold"))
        ids |= set(self.enqueue(self.template(rcpts=("b@two.test",)), 200, queue="hold"))
        self.start_qmgr()
        listing = [r["message"] for r in self.call_more("io.tern.Queue.List") if "message" in r]
        self.assertEqual({m["queueId"] for m in listing}, ids)
        self.assertEqual(len(listing), 600)
        two = [r["message"] for r in self.call_more("io.tern.Queue.List", {"filter": {"recipient": "B@two.test"}})
               if "message" in r]
        self.assertEqual(len(two), 200)
        p = self.ternctl("queue", "list")
        self.assertIn("in 600 Requests.", p.stdout.decode())


class TestCrash(QmgrTestCase):
    def test_kill9_loses_nothing(self):
        self.start_agent(DISCARD)
        q = self.start_qmgr()
        ids = self.enqueue(self.template(), 10000)
        self.wait_log(r"tern/qmgr: \w+: removed$", count=1000)
        q.kill()
        left = set(self.files("incoming") + self.files("active"))
        self.assertTrue(left, "the run was over before the kill")
        os.unlink(self.socket_path)
        self.start_qmgr()
        self.wait_queue_empty(timeout=180)
        err = self.stderr()
        delivered = set(re.findall(r"tern/discard: (\w+): to=<rcpt@dest\.test>, .*status=sent", err))
        missing = set(ids) - delivered
        self.assertFalse(missing, "not delivered: %s\n%s" % (
            sorted(missing)[:5], "\n".join(l for l in err.splitlines() if any(m in l for m in sorted(missing)[:3]))))
        self.assertEqual(self.files("deferred") + self.files("corrupt"), [])


if __name__ == "__main__":
    unittest.main()
