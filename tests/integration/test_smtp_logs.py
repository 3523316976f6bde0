# SPDX-License-Identifier: MIT
"""tern-smtp's log lines as a whole: one scripted run through tern-qmgr, judged against a golden
file and by pflogsumm.

The run (SmtpLogRun.run_script) uses the real tern-qmgr, tern-smtp and tern-scache, started by
hand on a temporary spool as test_qmgr.py does, and three servers on loopback:
  - SINK: Postfix's smtp-sink (as test_smtp.py finds and starts it), the relayhost
    ([127.0.0.1]:SINKPORT): default_transport and relay_transport are smtp, so every address
    that the [transport] table does not name goes there;
  - FAKE: test_smtp.py's FakeServer on [127.0.0.1]:FAKEPORT (fake.test), which answers
    "550 5.1.1 ... User unknown" to RCPT TO:<unknown@fake.test> and accepts the rest;
  - DEAD: [127.0.0.1]:DEADPORT (defer.test), a port where nothing listens.
Nothing else can be reached: the relayhost is a loopback literal, and every address is in .test.
smtp_connection_cache_destinations = 127.0.0.1 (with time limits well above the run's length), so
tern-smtp saves its sessions in tern-scache and reuses them: the sink's one session carries every
message sent to it, and its log lines say conn_use=2, 3, ... It runs one message at a time, each
waited for ("removed", or back in deferred/) before the next is queued, so that queue IDs and
conn_use counts are the same on every run:

  1. sent: one recipient through the sink (a new session);
  2. sent: two recipients in one transaction on the cached session (conn_use=2);
  3. bounced: through FAKE, unknown@fake.test refused with 550 at RCPT TO ("host ... said: ...
     (in reply to RCPT TO command)"), ok@fake.test sent in the same session; the sender
     non-delivery notification goes out through the sink (conn_use=3);
  4. deferred: user@defer.test, "connect to 127.0.0.1[127.0.0.1]:DEADPORT: Connection refused"
     with relay=none, while d@sent.test of the same message is sent through the sink
     (conn_use=4); the message stays in deferred/.
At the end tern-scache is stopped, and logs Postfix's scache statistics lines at exit.

test_golden_log: every line of the daemons' stderr, normalized (queue IDs become QID1, QID2, ...
in order of first appearance; delay= and delays= numbers become "D"; the three ports become
SINKPORT, FAKEPORT and DEADPORT; the size of the notification, which holds dates, becomes "N";
the scache statistics' start time becomes "TIME"), grouped per queue ID, is compared with
golden/smtp-run.log. Within a group the order is the order of the log, except that a run of
consecutive "to=" lines (of deliveries that may run in parallel) is sorted.
TERN_UPDATE_GOLDEN=1 rewrites the golden file instead (inspect the diff before committing it).
Besides the log: the sink received every message the script sent to it, in one session, and FAKE
got ok@fake.test only.

test_pflogsumm: the lines become syslog lines ("Nov 23 10:00:00 tern tern/smtp[1002]: ...", one
pid per program) fed to pflogsumm --syslog-name=tern; its Grand Totals must equal what the
script did (counted from the script's own table of outcomes, not from the log), and so must its
per-domain sent and deferred counts; the deferral must be filed under smtp with "Connection
refused", the bounce under FAKE's relay with smtpd's text, and pflogsumm must find no warnings,
fatal errors, panics or smtp delivery failures. Skipped only when pflogsumm (Debian package pflogsumm, tools/deps.sh --tests) is not installed.

Exits 77 (skipped) when smtp-sink cannot be had (importing test_smtp does that).

Binaries: $TERN_QMGR, $TERN_SMTP, $TERN_SCACHE, $QUEUE_TOOL; $TERN_BUILD_ROOT for postfix-root.
"""
import os
import re
import shutil
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_qmgr  # noqa: E402
import test_smtp  # noqa: E402  (exits 77 when smtp-sink cannot be had)
from harness import wait_until  # noqa: E402
import logcheck  # noqa: E402

SMTP = test_smtp.SMTP
SCACHE = test_smtp.SCACHE
LOOP = test_smtp.LOOP

GOLDEN = os.path.join(HERE, "golden", "smtp-run.log")

SENDER = "sender@sender.test"
UNKNOWN = "unknown@fake.test"
# Postfix smtpd's reply to an unknown local recipient
UNKNOWN_REPLY = "550 5.1.1 <%s>: Recipient address rejected: User unknown in local recipient table" % UNKNOWN


def outcome(rcpt):
    """sent, bounced or deferred: what the routing of the module's docstring does to RCPT."""
    if rcpt == UNKNOWN:
        return "bounced"
    if rcpt.endswith("@defer.test"):
        return "deferred"
    return "sent"


def to_sink(rcpt):
    """Does RCPT go to the sink (the relayhost)?"""
    return not rcpt.endswith(("@fake.test", "@defer.test"))


class Tally(logcheck.Tally):
    """logcheck.Tally, and the messages the sink must have received."""

    def __init__(self):
        super().__init__(outcome)
        self.sink_messages = 0

    def attempt(self, qid, rcpts):
        """One delivery attempt of message QID to RCPTS."""
        super().attempt(qid, rcpts)
        # one transaction (and one dump) per message for the sink's recipients
        if any(to_sink(r) for r in rcpts):
            self.sink_messages += 1


class SmtpLogRun(test_qmgr.QmgrTestCase):
    def setUp(self):
        super().setUp()
        os.chmod(self.tmp, 0o755)          # smtp-sink (as nobody) writes below it
        self.sink = test_smtp.Sink(self.tmp)
        self.addCleanup(self.sink.stop)
        self.fake = test_smtp.FakeServer(lambda c: test_smtp.smtp_dialog(c, rcpt={UNKNOWN: UNKNOWN_REPLY}))
        self.addCleanup(self.fake.close)
        self.dead_port = test_smtp.free_port()
        self.ports = {self.sink.port: "SINKPORT", self.fake.port: "FAKEPORT", self.dead_port: "DEADPORT"}
        self.assertEqual(len(self.ports), 3, "two servers on one port")
        self.write_main_cf([
            # below any RLIMIT_NOFILE, so that tern-qmgr's warning about lowering it (which
            # depends on the machine) stays out of the log
            ("qmgr_message_active_limit", "1000"),
            ("default_transport", "smtp"), ("relay_transport", "smtp"),
            ("relayhost", "[%s]:%d" % (LOOP, self.sink.port)),
            ("inet_protocols", "ipv4"), ("smtp_connect_timeout", "2s"),
            ("smtp_connection_cache_destinations", LOOP),
            # far longer than the run: a cached session never expires in the middle of it
            ("smtp_connection_cache_time_limit", "60s"), ("connection_cache_ttl_limit", "60s"),
        ], [("fake.test", "smtp:[%s]:%d" % (LOOP, self.fake.port)),
            ("defer.test", "smtp:[%s]:%d" % (LOOP, self.dead_port))])

    def wait_one(self, pattern):
        """The first group of the first line like PATTERN (waited for)."""
        return self.wait_log(pattern)[0]

    def wait_deferred(self, qid):
        """QID is back in deferred/ and nothing is in core."""
        ok = wait_until(lambda: qid in self.files("deferred") and not self.files("active")
                        and not self.files("incoming"), test_qmgr.RUN_TIMEOUT, interval=0.05)
        self.assertTrue(ok, "%s not deferred:\n%s" % (qid, self.stderr()[-4000:]))

    def send(self, rcpts, t):
        """Queue one message to RCPTS; its queue ID, the attempt counted in T."""
        qid = self.enqueue(self.template(rcpts=rcpts))[0]
        t.attempt(qid, rcpts)
        return qid

    def run_script(self):
        """The scripted run; returns the Tally of what it did."""
        t = Tally()
        scache = self.start_agent(SCACHE)
        self.start_agent(SMTP)
        self.start_qmgr()

        # 1. sent, on a new session
        m1 = self.send(("a@sent.test",), t)
        self.wait_log(r"^tern/qmgr: %s: removed$" % m1)

        # 2. sent, two recipients on the cached session
        m2 = self.send(("b@sent.test", "c@sent.test"), t)
        self.wait_log(r"^tern/qmgr: %s: removed$" % m2)

        # 3. one recipient refused at RCPT TO, the other sent; the notice through the sink
        m3 = self.send((UNKNOWN, "ok@fake.test"), t)
        n3 = self.wait_one(r"^tern/qmgr: %s: sender non-delivery notification: (\w+)$" % m3)
        t.attempt(n3, (SENDER,))
        self.wait_log(r"^tern/qmgr: %s: removed$" % m3)
        self.wait_log(r"^tern/qmgr: %s: removed$" % n3)

        # 4. deferred (nothing listens), a second recipient sent
        m4 = self.send(("user@defer.test", "d@sent.test"), t)
        self.wait_log(r"^tern/smtp: %s: to=<d@sent\.test>, .*status=sent " % m4)
        self.wait_deferred(m4)

        # every session the sink saw ends when tern-scache closes the cached ones; its statistics
        # at exit are the last lines of the log
        self.assertEqual(scache.stop(), 0, self.stderr()[-4000:])
        self.assertEqual(len(self.wait_dumps(t.sink_messages)), t.sink_messages)
        self.assertEqual(self.sink_sessions(), (1, t.sink_messages),
                         "smtp-sink's (sessions, messages): not every message on one cached session")
        self.assertEqual([sorted(rcpts) for rcpts, _ in self.fake.messages], [["ok@fake.test"]])
        return t

    def wait_dumps(self, n):
        """The sink dumped N messages, each complete (smtp-sink ends a dump with an empty line)."""
        def done():
            d = self.sink.dumps()
            return len(d) >= n and all(x.endswith(b"\n\n") for x in d)
        self.assertTrue(wait_until(done, test_qmgr.START_TIMEOUT),
                        "smtp-sink got %d messages, not %d" % (self.sink.count(), n))
        return self.sink.dumps()

    def sink_sessions(self):
        """(sessions, messages) the sink saw, once every session has ended."""
        self.assertTrue(wait_until(lambda: self.sink.open_sessions() == 0, test_qmgr.START_TIMEOUT),
                        "smtp-sink still has %d open sessions" % self.sink.open_sessions())
        sess, _, mesg = self.sink.counters()
        return sess, mesg



SCACHE_START = re.compile(r"^(tern/scache: statistics: start interval )[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d$")


def rewrite(ports):
    """For logcheck.normalize: PORTS (port -> name) and scache's start time made constant."""
    def line_rewrite(line):
        for port, label in ports.items():
            line = re.sub(r"(?<=\]):%d\b" % port, ":" + label, line)
        return SCACHE_START.sub(r"\1TIME", line)
    return line_rewrite


class TestSmtpLogs(SmtpLogRun):
    def test_golden_log(self):
        self.run_script()
        logcheck.check_golden(self, GOLDEN, logcheck.normalize(logcheck.log_lines(self), self.tmp,
                                                               rewrite(self.ports)))


# One pid per program, as syslog would show them (logcheck.to_syslog).
SYSLOG_PIDS = {"qmgr": 1001, "smtp": 1002, "scache": 1003}


def section(report, title):
    """The text of pflogsumm's section TITLE, up to the next empty line after its underline."""
    text = report.split("\n%s" % title, 1)[1]
    body = text.split("\n", 2)[2]
    return body.split("\n\n", 1)[0]


def domain_summary(report):
    """{domain: (sent, defers)} from pflogsumm's "Host/Domain Summary: Message Delivery"."""
    out = {}
    for line in section(report, "Host/Domain Summary: Message Delivery").splitlines():
        m = re.match(r"^\s*(\d+)\s+\d+[km]?\s+(\d+)\s+[\d.]+ [smhd]\s+[\d.]+ [smhd]\s+(\S+)$", line)
        if m:
            out[m.group(3)] = (int(m.group(1)), int(m.group(2)))
    return out


class TestPflogsumm(SmtpLogRun):
    @unittest.skipUnless(shutil.which("pflogsumm"), "pflogsumm is not installed (Debian package pflogsumm)")
    def test_pflogsumm_grand_totals(self):
        tally = self.run_script()
        report = logcheck.pflogsumm(self, logcheck.log_lines(self), SYSLOG_PIDS)
        totals = logcheck.grand_totals(report)
        want = {
            # no message came in through pickup or smtpd: the script wrote them into incoming/
            "received": 0,
            "delivered": tally.lines["sent"],
            "forwarded": 0,
            "deferred": len(tally.deferred_messages),
            "deferrals": tally.lines["deferred"],
            "bounced": tally.lines["bounced"],
            "rejected": 0,
            "held": 0,
        }
        # the script must have done each thing at least once, or the comparison proves nothing
        for k in ("delivered", "deferred", "deferrals", "bounced"):
            self.assertGreater(want[k], 0, k)
        self.assertEqual({k: totals.get(k) for k in want}, want, report)
        # per domain: lines with status=sent, and with status=deferred
        self.assertEqual(domain_summary(report),
                         {d: (c["sent"], c["deferred"]) for d, c in tally.domains.items()
                          if c["sent"] or c["deferred"]}, report)
        # the reasons, as pflogsumm files them: the deferral under its transport, the bounce under
        # the relay that refused it
        self.assertRegex(section(report, "message deferral detail"),
                         r"^  smtp \(total: %d\)\n +%d +127\.0\.0\.1\[127\.0\.0\.1\]:%d: Connection refused$"
                         % (tally.lines["deferred"], tally.lines["deferred"], self.dead_port))
        self.assertRegex(section(report, "message bounce detail (by relay)"),
                         r"^  127\.0\.0\.1\[127\.0\.0\.1\]:%d \(total: %d\)\n +%d +User unknown in local "
                         r"recipient table" % (self.fake.port, tally.lines["bounced"], tally.lines["bounced"]))
        # nothing in the log that pflogsumm takes for trouble
        for title in ("Warnings", "Fatal Errors", "Panics", "smtp delivery failures"):
            self.assertIn("\n%s: none\n" % title, report)


if __name__ == "__main__":
    unittest.main()
