# SPDX-License-Identifier: MIT
"""tern-qmgr's log lines as a whole: one scripted run, judged against a golden file and by
pflogsumm.

The run (QmgrLogRun.run_script) uses the real tern-qmgr, tern-discard, tern-error (as error and
as "-t retry") and tests/tern-testagent on a temporary spool, started by hand as test_qmgr.py
does; every address is in .test and every route goes to a local agent (default, relay and local
transports are discard; the [transport] table names the rest), so nothing can reach the
network. It runs one step at a time, each waited for before the next starts, so that queue IDs
appear in the same order on every run:

  1. delivered: two recipients through discard and one through the test agent;
  2. bounced: error: and the test agent's "bounce" local part bounce, a third recipient is
     delivered; the sender non-delivery notification is delivered to the sender;
  3. double bounce: a message from <> bounces; the postmaster notification (from
     double-bounce@$myhostname) bounces too, because postmaster@$myhostname routes to error:;
     no notice is made of it ("warning: ID: undeliverable
     postmaster notification discarded");
  4. deferred: retry: and the test agent's "defer" local part; the third recipient delivered;
  5. administration through io.tern.Queue (varlink.py): a second deferred message is held and
     released; the first is requeued (a second pass, deferred again); both are deleted;
  6. expiry: tern-qmgr is restarted with maximal_queue_lifetime = 0 (a global parameter, hence
     the restart): a message deferred at its first attempt is "expired, returned to sender".

test_golden_log: every line of the daemons' stderr, normalized (queue IDs become QID1, QID2, ...
in order of first appearance; delay= and delays= numbers become "D"; the sizes of the
notifications, which hold dates, become "N"), grouped per queue ID, is compared with
golden/qmgr-run.log. Within a group the order is the order of the log, except that a run of
consecutive "to=" lines (written by agents working in parallel) is sorted.
TERN_UPDATE_GOLDEN=1 rewrites the golden file instead (inspect the diff before committing it).

test_pflogsumm: the lines become syslog lines ("Nov 23 10:00:00 tern tern/qmgr[1001]: ...", one
pid per program) fed to pflogsumm --syslog-name=tern; its Grand Totals must equal what the
script did (counted from the script's own table of outcomes, not from the log). Skipped only
when pflogsumm (Debian package pflogsumm, tools/deps.sh --tests) is not installed.

Binaries: as test_qmgr.py ($TERN_QMGR, $TERN_DISCARD, $TERN_ERROR, $TERN_TESTAGENT, $QUEUE_TOOL).
"""
import os
import shutil
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_qmgr  # noqa: E402
from test_qmgr import DISCARD, ERROR, TESTAGENT  # noqa: E402
from harness import wait_until  # noqa: E402
import logcheck  # noqa: E402

GOLDEN = os.path.join(HERE, "golden", "qmgr-run.log")

SENDER = "sender@sender.test"

# Where each recipient goes, and what becomes of it there (the script's own account, used to
# count what pflogsumm must find; nothing here is read back from the log).
TRANSPORT = [("bounce.test", "error:5.1.1 mailbox unavailable"),
             ("defer.test", "retry:4.2.2 mailbox full"),
             ("agent.test", "testagent:"),
             ("postmaster@tern.test", "error:5.1.1 postmaster mailbox unavailable")]


def outcome(rcpt):
    """sent, bounced or deferred: what the routing above does to RCPT."""
    local, domain = rcpt.rsplit("@", 1)
    if domain == "bounce.test" or rcpt == "postmaster@tern.test":
        return "bounced"
    if domain == "defer.test":
        return "deferred"
    if domain == "agent.test":
        for prefix, result in (("defer", "deferred"), ("bounce", "bounced")):
            if local.startswith(prefix):
                return result
    return "sent"       # discard, the test agent's default, and qmgr's double-bounce discard


class QmgrLogRun(test_qmgr.QmgrTestCase):
    # below any RLIMIT_NOFILE, so that tern-qmgr's warning about lowering it (which depends on
    # the machine) stays out of the log
    SETTINGS = [("qmgr_message_active_limit", "1000")]
    TRANSPORT = TRANSPORT

    def wait_one(self, pattern, timeout=test_qmgr.RUN_TIMEOUT):
        """The first group of the first line like PATTERN (waited for)."""
        found = self.wait_log(pattern, timeout=timeout)
        return found[0]

    def wait_deferred(self, qid):
        """QID is back in deferred/ and nothing is in core."""
        ok = wait_until(lambda: qid in self.files("deferred") and not self.files("active")
                        and not self.files("incoming"), test_qmgr.RUN_TIMEOUT, interval=0.05)
        self.assertTrue(ok, "%s not deferred:\n%s" % (qid, self.stderr()[-4000:]))

    def admin(self, method, ids):
        r = self.call("io.tern.Queue." + method, {"filter": {"queueIds": list(ids)}})
        self.assertEqual(sorted(r["queueIds"]), sorted(ids), method)
        return r

    def run_script(self):
        """The scripted run; returns the Tally of what it did."""
        t = logcheck.Tally(outcome)
        self.start_agent(DISCARD)
        self.start_agent(ERROR)
        self.start_agent(ERROR, "retry")
        self.start_agent(TESTAGENT, "testagent")
        qmgr = self.start_qmgr()

        # 1. delivered
        rcpts = ("a@sent.test", "b@sent.test", "sent@agent.test")
        m1 = self.enqueue(self.template(rcpts=rcpts))[0]
        t.attempt(m1, rcpts)
        self.wait_log(r"^tern/qmgr: %s: removed$" % m1)

        # 2. bounced, and the notification delivered to the sender
        rcpts = ("user@bounce.test", "bounce@agent.test", "ok@sent.test")
        m2 = self.enqueue(self.template(rcpts=rcpts))[0]
        t.attempt(m2, rcpts)
        n2 = self.wait_one(r"^tern/qmgr: %s: sender non-delivery notification: (\w+)$" % m2)
        t.attempt(n2, (SENDER,))
        self.wait_log(r"^tern/qmgr: %s: removed$" % m2)
        self.wait_log(r"^tern/qmgr: %s: removed$" % n2)

        # 3. a bounce from <> goes to postmaster; that one bounces too (postmaster -> error:), and
        # no notice is made of it: bounce(8)'s "undeliverable postmaster notification discarded"
        m3 = self.enqueue(self.template(sender="", rcpts=("user@bounce.test",)))[0]
        t.attempt(m3, ("user@bounce.test",))
        p3 = self.wait_one(r"^tern/qmgr: %s: postmaster non-delivery notification: (\w+)$" % m3)
        t.attempt(p3, ("postmaster@tern.test",))
        self.wait_log(r"^tern/qmgr: warning: %s: undeliverable postmaster notification discarded$" % p3)
        for qid in (m3, p3):
            self.wait_log(r"^tern/qmgr: %s: removed$" % qid)

        # 4. deferred (retry: and the test agent), one recipient delivered
        rcpts = ("user@defer.test", "defer@agent.test", "sent@agent.test")
        m4 = self.enqueue(self.template(rcpts=rcpts))[0]
        t.attempt(m4, rcpts)
        self.wait_deferred(m4)

        # 5. administration: hold and release m5; requeue m4 (a second pass); delete both
        m5 = self.enqueue(self.template(rcpts=("user@defer.test",)))[0]
        t.attempt(m5, ("user@defer.test",))
        self.wait_deferred(m5)
        self.admin("Hold", [m5])
        self.assertEqual(self.files("hold"), [m5])
        self.wait_log(r"^tern/qmgr: %s: placed on hold$" % m5)
        self.admin("Release", [m5])
        self.wait_log(r"^tern/qmgr: %s: released from hold$" % m5)
        self.assertIn(m5, self.files("deferred"))
        self.admin("Requeue", [m4])
        t.attempt(m4, ("user@defer.test", "defer@agent.test"))
        self.wait_log(r"^tern/qmgr: %s: requeued$" % m4)
        self.wait_log(r"^tern/qmgr: %s: from=<[^>]*>, size=\d+, nrcpt=\d+ \(queue active\)$" % m4, count=2)
        self.wait_deferred(m4)
        self.admin("Delete", [m4, m5])
        self.wait_log(r"^tern/qmgr: %s: removed$" % m4)
        self.wait_log(r"^tern/qmgr: %s: removed$" % m5)
        self.wait_queue_empty(("incoming", "active", "deferred", "hold"))

        # 6. expiry: maximal_queue_lifetime is global, so tern-qmgr starts again with it at 0
        self.assertEqual(qmgr.stop(), 0, self.stderr()[-4000:])
        self.assertTrue(wait_until(lambda: not os.path.exists(self.socket_path), test_qmgr.START_TIMEOUT),
                        "tern-qmgr left its socket behind")
        self.write_main_cf(self.SETTINGS + [("maximal_queue_lifetime", "0"), ("bounce_queue_lifetime", "0")],
                           self.TRANSPORT)
        self.start_qmgr()
        rcpts = ("user@defer.test", "defer@agent.test", "sent@agent.test")
        m6 = self.enqueue(self.template(rcpts=rcpts))[0]
        t.attempt(m6, rcpts)
        self.wait_log(r"^tern/qmgr: %s: from=<sender@sender\.test>, status=expired, returned to sender$" % m6)
        n6 = self.wait_one(r"^tern/qmgr: %s: sender non-delivery notification: (\w+)$" % m6)
        t.attempt(n6, (SENDER,))
        self.wait_log(r"^tern/qmgr: %s: removed$" % m6)
        self.wait_log(r"^tern/qmgr: %s: removed$" % n6)
        self.wait_queue_empty(("incoming", "active", "deferred", "hold", "corrupt"))
        return t



class TestQmgrLogs(QmgrLogRun):
    def test_golden_log(self):
        self.run_script()
        logcheck.check_golden(self, GOLDEN, logcheck.normalize(logcheck.log_lines(self), self.tmp))


# One pid per program, as syslog would show them (logcheck.to_syslog).
SYSLOG_PIDS = {"qmgr": 1001, "discard": 1002, "error": 1003, "retry": 1004, "testagent": 1005}


class TestPflogsumm(QmgrLogRun):
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
            # pflogsumm's "held" counts cleanup and smtpd HOLD actions, not postsuper -h (nor the
            # io.tern.Queue.Hold of step 5, logged as postsuper logs it)
            "held": 0,
        }
        # the script must have done each thing at least once, or the comparison proves nothing
        for k in ("delivered", "deferred", "deferrals", "bounced"):
            self.assertGreater(want[k], 0, k)
        self.assertEqual({k: totals.get(k) for k in want}, want, report)


if __name__ == "__main__":
    unittest.main()
