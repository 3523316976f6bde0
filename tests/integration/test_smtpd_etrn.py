# SPDX-License-Identifier: MIT
"""tern-smtpd's ETRN end to end, and tern-smtpd's log lines as a whole.

SeedEtrn: ETRN_README's "Testing the fast ETRN service" (seed 001), step by step, against the
real tern-smtpd, tern-flush, tern-qmgr and tern-smtp on a temporary spool, over real TCP
connections to tern-smtpd (a raw socket client: every reply is checked whole). The main.cf is
test_flush.py's (write_queue_conf: default, relay and local transports are discard, no
relayhost), with relay_domains = some.customer.domain, some.other.customer.domain (so
fast_flush_domains too) and a [transport] table that sends some.customer.domain and
not.a.customer.domain to smtp:[127.0.0.1]:CLOSED, a loopback port where nothing listens until
the last step (the customer's site is offline: "connect to ...: Connection refused"). Nothing
can reach the network or look up a real name: every nexthop is a loopback literal.

  test_fast_etrn_over_smtp, the seed's steps in order:
    1. mail for both destinations comes in over SMTP (tern-smtpd, one session, five
       transactions) while tern-flush is not running yet: all of it deferred, no logfile;
    2. tern-flush started, `tern-sendmail -q` ("run sendmail -q so the per-site logfiles fill"):
       every message tried again; flush/some_customer_domain holds exactly that site's IDs and
       `ternctl flush list` shows it; not.a.customer.domain has no logfile;
    3. "helo my.client.tld", "etrn some.customer.domain": "250 Queuing started", tern-qmgr logs
       "ID: from=<...>, size=N, nrcpt=1 (queue active)" for exactly that site's IDs, each once;
       the site is still unreachable, so they are deferred and listed in its logfile again;
    4. "etrn some.other.customer.domain" (relayed, nothing queued): 250 and no message opened
       (the barrier: "etrn #some.customer.domain", RFC 1985's option character stripped, opens
       exactly the site's messages);
    5. "etrn not.a.customer.domain" with fast_flush_fallback = yes (the default): 250 and every
       deferred message opened, each once;
    6. fast_flush_fallback = no (tern-flush restarted): "459 <not.a.customer.domain>: service
       unavailable" and tern-smtpd's warning "reject: ETRN not.a.customer.domain... from
       localhost[127.0.0.1]"; nothing opened (barrier: "etrn @some.customer.domain");
    7. the site comes back (Postfix's smtp-sink on the formerly closed port): "etrn
       some.customer.domain" delivers the site's messages (status=sent through the sink),
       its logfile is empty, not.a.customer.domain's mail stays deferred.
    Each session's "disconnect from" line must count its commands (helo=1 etrn=N ...).
  test_etrn_command_errors: ETRN without HELO (smtpd_helo_required = yes) is "503 Error: send
    HELO/EHLO first"; inside MAIL "503 Error: MAIL transaction in progress"; no or two
    arguments "500 Syntax: ETRN domain"; a bad domain "501 Error: invalid parameter syntax";
    "@site" and "#site" are 250; EHLO announces ETRN.
  test_etrn_not_announced: smtpd_discard_ehlo_keywords = etrn hides it from EHLO; the command
    still works, as in Postfix.
  test_etrn_restrictions: smtpd_etrn_restrictions = permit_mynetworks, reject with the client
    outside mynetworks (192.0.2.0/24): "554 5.7.1 <some.customer.domain>: Etrn command
    rejected: Access denied" and Postfix's "NOQUEUE: reject: ETRN from localhost[127.0.0.1]:
    ...; proto=SMTP helo=<my.client.tld>"; inside mynetworks the same list permits.
  test_check_etrn_access: check_etrn_access texthash:FILE ("some.customer.domain OK",
    "bad.example REJECT no way"), reject: OK is 250, REJECT gives its text, a subdomain of
    bad.example matches it (parent_domain_matches_subdomains holds smtpd_access_maps), an
    unlisted domain falls through to reject.
  test_flush_unreachable: tern-flush not running (no socket), a stale socket nothing listens on,
    and a server that accepts and never answers (smtpd_timeout = 2s): "458 Unable to queue
    messages" and the warning "unable to talk to fast flush service" each time, and the session
    goes on; once tern-flush runs, 250.

SmtpdLogs: one scripted run of tern-smtpd with tern-qmgr, tern-discard and tern-flush (every
message is delivered by discard), each session waited for before the next, so that queue IDs
and lines come in the same order on every run:
  1. a message to one relay_domains recipient;
  2. a recipient refused ("NOQUEUE: reject: RCPT from ...: 554 5.7.1 <...>: Relay access
     denied; from=<...> to=<...> proto=ESMTP helo=<...>", the client is outside mynetworks), two
     accepted, a third refused after the queue file exists ("ID: reject: RCPT ..."), the
     message queued;
  3. "lost connection after DATA (N bytes)" (an accepted recipient: an "ID: client=" line, no
     message);
  4. "lost connection after MAIL";
  5. ETRN: refused by check_etrn_access (NOQUEUE: reject: ETRN), not eligible for fast flush
     with fast_flush_fallback = no (the warning "reject: ETRN ... from ..."), and accepted.
  test_golden_log: the daemons' stderr normalized by logcheck.normalize (message sizes, which
    hold the Received: header's date, become "N") equals golden/smtpd-run.log
    (TERN_UPDATE_GOLDEN=1 rewrites it).
  test_pflogsumm_grand_totals: as syslog lines through pflogsumm --syslog-name=tern: received
    (pflogsumm counts smtpd's "ID: client=" lines, so the lost DATA session counts, as with
    Postfix), delivered and rejected (smtpd's "reject:" lines) equal what the script did; the
    ETRN warning is filed under smtpd's warnings. Skipped only without pflogsumm.

Exits 77 (skipped) when smtp-sink cannot be had (importing test_smtp does that).

Binaries: $TERN_SMTPD, $TERN_QMGR, $TERN_SMTP, $TERN_FLUSH, $TERN_DISCARD, $TERNCTL,
$TERN_SENDMAIL; $TERN_BUILD_ROOT for postfix-root.
"""
import collections
import os
import re
import shutil
import socket
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_flush  # noqa: E402
import test_smtp  # noqa: E402  (exits 77 when smtp-sink cannot be had)
from test_flush import DEFERRED_RE, REMOVED_RE, RUN_TIMEOUT  # noqa: E402
from harness import SOURCE_ROOT, START_TIMEOUT, write_queue_conf, wait_until  # noqa: E402
import logcheck  # noqa: E402

BUILD = os.environ.get("TERN_BUILD_ROOT", os.path.join(SOURCE_ROOT, "build"))
SMTPD = os.environ.get("TERN_SMTPD", os.path.join(BUILD, "src", "smtpd", "tern-smtpd"))
SMTP = test_smtp.SMTP
DISCARD = test_flush.DISCARD
LOOP = test_smtp.LOOP

GOLDEN = os.path.join(HERE, "golden", "smtpd-run.log")

SENDER = "sender@sender.test"
CUSTOMER = "some.customer.domain"
EMPTY_CUSTOMER = "some.other.customer.domain"
NOT_CUSTOMER = "not.a.customer.domain"
CLIENT = "localhost[127.0.0.1]"         # how tern-smtpd names us (127.0.0.1 is localhost in /etc/hosts)

QUEUING_STARTED = "250 Queuing started"
UNABLE = "458 Unable to queue messages"


class SmtpClient:
    """A raw SMTP client on a real TCP connection: one command line at a time, each reply read
    whole (a multi-line reply is returned with "\\n" between its lines, without CRLFs)."""

    def __init__(self, port, timeout=RUN_TIMEOUT):
        self.sock = socket.create_connection((LOOP, port), timeout=timeout)
        self.buf = b""
        self.greeting = self.reply()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    def reply(self):
        lines = []
        while True:
            while b"\n" not in self.buf:
                data = self.sock.recv(65536)
                if not data:
                    raise EOFError("the server closed the connection; reply so far %r" % lines)
                self.buf += data
            line, _, self.buf = self.buf.partition(b"\n")
            if not line.endswith(b"\r"):
                raise AssertionError("reply line without CRLF: %r" % line)
            lines.append(line[:-1].decode())
            if len(lines[-1]) < 4 or lines[-1][3] != "-":
                return "\n".join(lines)

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def quit(self):
        """QUIT: 221, then the server closes the connection."""
        r = self.cmd("QUIT")
        if r != "221 2.0.0 Bye":
            raise AssertionError("QUIT: %r" % r)
        if self.sock.recv(1):
            raise AssertionError("data after 221")
        self.close()

    def mail(self, test, rcpts, sender=SENDER, body="hello\r\n"):
        """One transaction that must succeed: MAIL, RCPT for each of RCPTS, DATA; the queue ID."""
        test.assertEqual(self.cmd("MAIL FROM:<%s>" % sender), "250 2.1.0 Ok")
        for r in rcpts:
            test.assertEqual(self.cmd("RCPT TO:<%s>" % r), "250 2.1.5 Ok", r)
        test.assertEqual(self.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>")
        self.send("Subject: test\r\nFrom: <%s>\r\n\r\n%s.\r\n" % (sender, body))
        r = self.reply()
        m = re.fullmatch(r"250 2\.0\.0 Ok: queued as ([0-9A-Za-z]{10,})", r)
        test.assertTrue(m, "end of DATA: %r" % r)
        return m.group(1)


class SmtpdCase(test_flush.FlushTestCase):
    """test_flush.py's case (a spool, tern-flush, tern-qmgr, agents, the log helpers) with
    tern-smtpd listening on 127.0.0.1:self.smtpd_port."""

    TMP_PREFIX = "tern-smtpd-etrn-"
    SETTINGS = [("relay_domains", "%s, %s" % (CUSTOMER, EMPTY_CUSTOMER)),
                ("smtpd_helo_required", "yes")]
    TRANSPORT = []

    def setUp(self):
        self.smtpd_port = test_smtp.free_port()
        self.closed_port = test_smtp.free_port()
        self.assertNotEqual(self.smtpd_port, self.closed_port)
        super().setUp()
        os.chmod(self.tmp, 0o755)          # smtp-sink (as nobody) writes below it

    def write_main_cf(self, settings, transport):
        base = [("smtpd_listen", "%s:%d" % (LOOP, self.smtpd_port)), ("inet_protocols", "ipv4"),
                ("smtp_connect_timeout", "2s"),
                # below any RLIMIT_NOFILE: tern-qmgr's warning about lowering it stays out of the log
                ("qmgr_message_active_limit", "1000")]
        write_queue_conf(self.conf_path, self.id(), self.spool, self.rt, base + list(settings), transport)

    def configure(self, *settings):
        """main.cf again with SETTINGS (pairs) over the class's (daemons read it when they start)."""
        keys = dict(self.SETTINGS)
        keys.update(settings)
        self.write_main_cf(list(keys.items()), self.TRANSPORT)

    def start_smtpd(self):
        d = self.spawn([SMTPD, "-c", self.conf_path], self.env())
        ok = wait_until(lambda: "0A" in test_smtp.tcp_sockets(self.smtpd_port) or not d.running(), START_TIMEOUT)
        self.assertTrue(ok and d.running(), "tern-smtpd is not listening on port %d:\n%s" % (
            self.smtpd_port, self.stderr()[-4000:]))
        return d

    def smtp(self, helo="HELO my.client.tld"):
        """A new session (greeted), after HELO unless HELO is None."""
        c = SmtpClient(self.smtpd_port)
        self.addCleanup(c.close)
        self.assertEqual(c.greeting, "220 tern.test ESMTP tern")
        if helo:
            self.assertRegex(c.cmd(helo), r"^250[ -]tern\.test")
        return c

    def wait_disconnect(self, count, mark=0):
        """COUNT "disconnect from" lines after MARK (tern-smtpd logs it once the session ended);
        their text."""
        rx = re.compile(r"^tern/smtpd: (disconnect from .*)$", re.M)
        ok = wait_until(lambda: len(rx.findall(self.since(mark))) >= count, START_TIMEOUT)
        self.assertTrue(ok, "not %d disconnect lines:\n%s" % (count, self.since(mark)[-4000:]))
        return rx.findall(self.since(mark))

    def wait_log(self, pattern, count=1, timeout=RUN_TIMEOUT, mark=0):
        rx = re.compile(pattern, re.M)
        ok = wait_until(lambda: len(rx.findall(self.since(mark))) >= count, timeout, interval=0.02)
        self.assertTrue(ok, "no %d lines like %r in:\n%s" % (count, pattern, self.since(mark)[-6000:]))
        return rx.findall(self.since(mark))


class SeedEtrn(SmtpdCase):
    TRANSPORT = [(CUSTOMER, "smtp:[%s]:CLOSED" % LOOP), (NOT_CUSTOMER, "smtp:[%s]:CLOSED" % LOOP)]

    def write_main_cf(self, settings, transport):
        super().write_main_cf(settings, [(k, v.replace("CLOSED", str(self.closed_port))) for k, v in transport])

    def test_fast_etrn_over_smtp(self):
        self.start_agent(SMTP)
        self.start_qmgr()
        self.start_smtpd()

        # 1. the mail comes in over SMTP; the site is offline and tern-flush is not running yet
        c = self.smtp("EHLO my.client.tld")
        c1 = [c.mail(self, ["user%d@%s" % (i, CUSTOMER)]) for i in range(3)]
        other = [c.mail(self, ["user%d@%s" % (i, NOT_CUSTOMER)]) for i in range(2)]
        c.quit()
        everything = c1 + other
        self.assertEqual(len(set(everything)), 5)
        for qid in everything:
            self.assertRegex(self.stderr(), r"(?m)^tern/smtpd: %s: client=%s$" % (qid, re.escape(CLIENT)))
        self.wait_settled(everything)
        self.assertRegex(self.stderr(), r"(?m)^tern/smtp: %s: to=<user0@%s>, relay=none, .*dsn=4\.4\.1, "
                                        r"status=deferred \(connect to 127\.0\.0\.1\[127\.0\.0\.1\]:%d: "
                                        r"Connection refused\)$" % (c1[0], re.escape(CUSTOMER), self.closed_port))
        self.assertIsNone(self.logfile("some_customer_domain"))
        self.assertEqual(self.wait_disconnect(1),
                         ["disconnect from %s ehlo=1 mail=5 rcpt=5 data=5 quit=1 commands=17" % CLIENT])

        # 2. "sendmail -q" once tern-flush runs: every deferred message is tried, the site's
        # logfile fills (not.a.customer.domain is not eligible: no logfile)
        flush = self.start_flush()
        mark = self.mark()
        r = self.sendmail("-q")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
        self.wait_settled(everything, {"some_customer_domain": c1}, mark, opened=everything)
        self.assertEqual(self.activated(mark), collections.Counter(everything))
        self.assertEqual(sorted(os.listdir(self.flushdir)), ["some_customer_domain"])
        r = self.ternctl("flush", "list")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"(?m)^some_customer_domain +3 +%d +" % sum(len(q) + 1 for q in c1))

        # 3. helo my.client.tld / etrn some.customer.domain: the site's messages are opened ("queue
        # active"), deferred again (still unreachable) and listed again
        c = self.smtp()
        mark = self.mark()
        self.assertEqual(c.cmd("ETRN %s" % CUSTOMER), QUEUING_STARTED)
        self.wait_settled(everything, {"some_customer_domain": c1}, mark, opened=c1)
        self.assertEqual(self.activated(mark), collections.Counter(c1))
        for qid in c1:
            self.assertRegex(self.since(mark), r"(?m)^tern/qmgr: %s: from=<%s>, size=\d+, nrcpt=1 \(queue active\)$"
                             % (qid, re.escape(SENDER)))

        # 4. etrn some.other.customer.domain: relayed, nothing queued: nothing at all is opened.
        # The barrier: the site again, with RFC 1985's '#' (tern-flush answers and triggers in order)
        mark = self.mark()
        self.assertEqual(c.cmd("ETRN %s" % EMPTY_CUSTOMER), QUEUING_STARTED)
        self.assertIsNone(self.logfile("some_other_customer_domain"))
        self.assertEqual(c.cmd("ETRN #%s" % CUSTOMER), QUEUING_STARTED)
        self.wait_settled(everything, {"some_customer_domain": c1}, mark, opened=c1)
        self.assertEqual(self.activated(mark), collections.Counter(c1))

        # 5. etrn not.a.customer.domain, fast_flush_fallback = yes: the whole queue is tried (the
        # logfile is not emptied: each of the site's messages is listed once more)
        mark = self.mark()
        self.assertEqual(c.cmd("ETRN %s" % NOT_CUSTOMER), QUEUING_STARTED)
        self.wait_settled(everything, {"some_customer_domain": c1 * 2}, mark, opened=everything)
        self.assertEqual(self.activated(mark), collections.Counter(everything))
        c.quit()
        self.assertEqual(self.wait_disconnect(2)[1], "disconnect from %s helo=1 etrn=4 quit=1 commands=6" % CLIENT)

        # 6. fast_flush_fallback = no: 459 and the warning; nothing opened
        self.assertEqual(flush.stop(), 0)
        self.configure(("fast_flush_fallback", "no"))
        flush = self.start_flush()
        c = self.smtp()
        mark = self.mark()
        self.assertEqual(c.cmd("ETRN %s" % NOT_CUSTOMER), "459 <%s>: service unavailable" % NOT_CUSTOMER)
        self.assertRegex(self.since(mark), r"(?m)^tern/smtpd: warning: reject: ETRN %s\.\.\. from %s$"
                         % (re.escape(NOT_CUSTOMER), re.escape(CLIENT)))
        self.assertEqual(c.cmd("ETRN @%s" % CUSTOMER), QUEUING_STARTED)
        self.wait_settled(everything, {"some_customer_domain": c1}, mark, opened=c1)
        self.assertEqual(self.activated(mark), collections.Counter(c1), "opened once each, duplicates or not")
        c.quit()
        self.assertEqual(self.wait_disconnect(3)[2],
                         "disconnect from %s helo=1 etrn=1/2 quit=1 commands=3/4" % CLIENT)

        # 7. the site is back: the site's mail is delivered, the rest stays deferred
        sink = test_smtp.Sink(self.tmp, port=self.closed_port)
        self.addCleanup(sink.stop)
        c = self.smtp("EHLO my.client.tld")
        mark = self.mark()
        self.assertEqual(c.cmd("ETRN %s" % CUSTOMER), QUEUING_STARTED)
        c.quit()

        def delivered():
            return set(c1) <= set(REMOVED_RE.findall(self.since(mark))) and \
                not self.files("incoming") and not self.files("active")
        self.assertTrue(wait_until(delivered, RUN_TIMEOUT, 0.05), self.since(mark)[-6000:])
        for i, qid in enumerate(c1):
            self.assertRegex(self.since(mark), r"(?m)^tern/smtp: %s: to=<user%d@%s>, relay=%s, .*dsn=2\.0\.0, "
                             r"status=sent \(250 2\.0\.0 Ok\)$" % (qid, i, re.escape(CUSTOMER), re.escape(sink.relay)))
        self.assertEqual(self.activated(mark), collections.Counter(c1))
        self.assertEqual(DEFERRED_RE.findall(self.since(mark)), [])
        self.assertEqual(self.logfile("some_customer_domain"), [])
        self.assertEqual(sorted(self.files("deferred")), sorted(other))
        self.assertTrue(wait_until(lambda: sink.count() >= len(c1), START_TIMEOUT), "smtp-sink got %d" % sink.count())
        self.assertEqual(self.wait_disconnect(4)[3], "disconnect from %s ehlo=1 etrn=1 quit=1 commands=3" % CLIENT)
        self.assertNotRegex(self.stderr(), r"(?m)^tern/smtpd: (warning|error|fatal): (?!reject: ETRN )")


class EtrnChecks(SmtpdCase):
    def test_etrn_command_errors(self):
        self.start_flush()
        self.start_smtpd()
        c = self.smtp(helo=None)
        self.assertEqual(c.cmd("ETRN %s" % CUSTOMER), "503 Error: send HELO/EHLO first")
        ehlo = c.cmd("EHLO my.client.tld")
        self.assertRegex(ehlo, r"(?m)^250-ETRN$")
        self.assertEqual(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("ETRN %s" % CUSTOMER), "503 Error: MAIL transaction in progress")
        self.assertEqual(c.cmd("RSET"), "250 2.0.0 Ok")
        self.assertEqual(c.cmd("ETRN"), "500 Syntax: ETRN domain")
        self.assertEqual(c.cmd("ETRN %s %s" % (CUSTOMER, EMPTY_CUSTOMER)), "500 Syntax: ETRN domain")
        for bad in ("some..customer.domain", "@", "#", "some_customer!domain", "@@%s" % CUSTOMER):
            self.assertEqual(c.cmd("ETRN %s" % bad), "501 Error: invalid parameter syntax", bad)
        for good in (CUSTOMER, "@" + CUSTOMER, "#" + CUSTOMER, "SOME.Customer.DOMAIN"):
            self.assertEqual(c.cmd("ETRN %s" % good), QUEUING_STARTED, good)
        c.quit()
        self.assertEqual(self.wait_disconnect(1),
                         ["disconnect from %s ehlo=1 mail=1 rset=1 etrn=4/13 quit=1 commands=8/17" % CLIENT])
        self.assertIsNone(self.logfile("some_customer_domain"), "an ETRN created a logfile")

    def test_etrn_not_announced(self):
        self.configure(("smtpd_discard_ehlo_keywords", "etrn"))
        self.start_flush()
        self.start_smtpd()
        c = self.smtp("EHLO my.client.tld")
        ehlo = c.cmd("EHLO my.client.tld")
        self.assertNotRegex(ehlo, r"(?mi)^250.ETRN")
        self.assertRegex(ehlo, r"(?m)^250 ")
        # Postfix only hides the keyword: the command is still served
        self.assertEqual(c.cmd("ETRN %s" % CUSTOMER), QUEUING_STARTED)
        c.quit()

    def test_etrn_restrictions(self):
        self.configure(("mynetworks", "192.0.2.0/24"), ("smtpd_etrn_restrictions", "permit_mynetworks, reject"))
        self.start_flush()
        smtpd = self.start_smtpd()
        for helo, proto in (("HELO", "SMTP"), ("EHLO", "ESMTP")):
            c = self.smtp("%s my.client.tld" % helo)
            mark = self.mark()
            self.assertEqual(c.cmd("ETRN %s" % CUSTOMER),
                             "554 5.7.1 <%s>: Etrn command rejected: Access denied" % CUSTOMER)
            self.assertEqual(self.wait_log(r"^tern/smtpd: (NOQUEUE: reject: ETRN .*)$", mark=mark),
                             ["NOQUEUE: reject: ETRN from %s: 554 5.7.1 <%s>: Etrn command rejected: Access denied; "
                              "proto=%s helo=<my.client.tld>" % (CLIENT, CUSTOMER, proto)])
            c.quit()
        self.assertNotRegex(self.stderr(), r"warning: (reject: ETRN|unable to talk)")
        # inside mynetworks the same list permits
        self.assertEqual(smtpd.stop(), 0)
        self.configure(("mynetworks", "192.0.2.0/24, 127.0.0.0/8"),
                       ("smtpd_etrn_restrictions", "permit_mynetworks, reject"))
        self.start_smtpd()
        c = self.smtp()
        self.assertEqual(c.cmd("ETRN %s" % CUSTOMER), QUEUING_STARTED)
        c.quit()

    def test_check_etrn_access(self):
        table = os.path.join(self.tmp, "etrn_access")
        with open(table, "w") as f:
            f.write("# ETRN access\n%s OK\nbad.example REJECT no way\n" % CUSTOMER)
        self.configure(("smtpd_etrn_restrictions", "check_etrn_access texthash:%s, reject" % table))
        self.start_flush()
        self.start_smtpd()
        c = self.smtp()
        mark = self.mark()
        self.assertEqual(c.cmd("ETRN %s" % CUSTOMER), QUEUING_STARTED)
        self.assertEqual(c.cmd("ETRN bad.example"), "554 5.7.1 <bad.example>: Etrn command rejected: no way")
        self.assertEqual(c.cmd("ETRN BAD.Example"), "554 5.7.1 <BAD.Example>: Etrn command rejected: no way")
        self.assertEqual(c.cmd("ETRN sub.bad.example"), "554 5.7.1 <sub.bad.example>: Etrn command rejected: no way")
        self.assertEqual(c.cmd("ETRN %s" % EMPTY_CUSTOMER),
                         "554 5.7.1 <%s>: Etrn command rejected: Access denied" % EMPTY_CUSTOMER)
        c.quit()
        self.assertEqual(self.wait_log(r"^tern/smtpd: (NOQUEUE: reject: ETRN .*)$", count=4, mark=mark), [
            "NOQUEUE: reject: ETRN from %s: 554 5.7.1 <%s>: Etrn command rejected: %s; proto=SMTP "
            "helo=<my.client.tld>" % (CLIENT, site, text)
            for site, text in (("bad.example", "no way"), ("BAD.Example", "no way"),
                               ("sub.bad.example", "no way"), (EMPTY_CUSTOMER, "Access denied"))])

    def test_flush_unreachable(self):
        self.configure(("smtpd_timeout", "2s"))
        self.start_smtpd()
        flush_socket = os.path.join(self.rt, "flush")
        warning = re.compile(r"(?m)^tern/smtpd: warning: unable to talk to fast flush service$")

        def etrn_458(why):
            c = self.smtp()
            mark = self.mark()
            self.assertEqual(c.cmd("ETRN %s" % CUSTOMER), UNABLE, why)
            self.assertTrue(wait_until(lambda: warning.search(self.since(mark)), START_TIMEOUT), why)
            self.assertEqual(c.cmd("NOOP"), "250 2.0.0 Ok", why)
            c.quit()

        # no tern-flush, no socket
        etrn_458("no socket")
        # a socket that nothing listens on (tern-flush killed)
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(flush_socket)
        stale.close()
        etrn_458("stale socket")
        os.unlink(flush_socket)
        # a server that accepts and never answers: given up after smtpd_timeout
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as mute:
            mute.bind(flush_socket)
            mute.listen(8)
            t0 = time.monotonic()
            etrn_458("a server that never answers")
            self.assertLess(time.monotonic() - t0, 10)
        os.unlink(flush_socket)
        self.assertEqual(len(self.wait_disconnect(3)), 3)
        self.assertEqual(len(warning.findall(self.stderr())), 3)
        # tern-flush back: 250
        self.start_flush()
        c = self.smtp()
        self.assertEqual(c.cmd("ETRN %s" % CUSTOMER), QUEUING_STARTED)
        c.quit()


# ---- the log of one scripted run ---------------------------------------------------------------

RELAY = "relay.test"
DENIED = "denied.test"
NOT_ELIGIBLE = "not.eligible.test"
HELO = "client.test"


class SmtpdLogRun(SmtpdCase):
    SETTINGS = [("relay_domains", RELAY), ("mynetworks", "192.0.2.0/24"),
                ("smtpd_relay_restrictions", "permit_mynetworks, reject_unauth_destination"),
                ("fast_flush_fallback", "no")]

    def setUp(self):
        super().setUp()
        table = os.path.join(self.tmp, "etrn_access")
        with open(table, "w") as f:
            f.write("%s REJECT\n" % DENIED)
        self.configure(("smtpd_etrn_restrictions", "check_etrn_access texthash:%s" % table))

    def run_script(self):
        """The scripted run; returns what it did: {"received": N, "delivered": N, "rejected": N}."""
        did = collections.Counter()
        self.start_agent(DISCARD)
        self.start_flush()
        self.start_qmgr()
        self.start_smtpd()
        sessions = 0

        def end_session(c=None):
            nonlocal sessions
            if c:
                c.quit()
            sessions += 1
            self.wait_disconnect(sessions)

        def wait_removed(qid):
            self.wait_log(r"^tern/qmgr: %s: removed$" % qid)

        # 1. one message, one recipient
        c = self.smtp("EHLO %s" % HELO)
        q1 = c.mail(self, ["bob@%s" % RELAY])
        did.update(received=1, delivered=1)
        end_session(c)
        wait_removed(q1)

        # 2. refused before and after the queue file exists, two recipients accepted
        c = self.smtp("EHLO %s" % HELO)
        self.assertEqual(c.cmd("MAIL FROM:<alice@sender.test>"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("RCPT TO:<x@elsewhere.example>"),
                         "554 5.7.1 <x@elsewhere.example>: Relay access denied")
        self.assertEqual(c.cmd("RCPT TO:<carol@%s>" % RELAY), "250 2.1.5 Ok")
        self.assertEqual(c.cmd("RCPT TO:<dave@%s>" % RELAY), "250 2.1.5 Ok")
        self.assertEqual(c.cmd("RCPT TO:<y@elsewhere.example>"),
                         "554 5.7.1 <y@elsewhere.example>: Relay access denied")
        self.assertEqual(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>")
        c.send("Subject: two\r\n\r\nhello\r\n.\r\n")
        q2 = re.fullmatch(r"250 2\.0\.0 Ok: queued as (\w+)", c.reply()).group(1)
        did.update(received=1, delivered=2, rejected=2, relay_denied=2)
        end_session(c)
        wait_removed(q2)

        # 3. the client goes away in the middle of DATA (35 bytes in, whole lines: Postfix's act_size)
        c = self.smtp("HELO %s" % HELO)
        self.assertEqual(c.cmd("MAIL FROM:<alice@sender.test>"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("RCPT TO:<erin@%s>" % RELAY), "250 2.1.5 Ok")
        self.assertEqual(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>")
        c.send("Subject: never ends\r\n\r\nfirst line\r\n")
        c.close()
        did.update(received=1)          # pflogsumm counts the "client=" line
        end_session()

        # 4. ... and after MAIL
        c = self.smtp("EHLO %s" % HELO)
        self.assertEqual(c.cmd("MAIL FROM:<alice@sender.test>"), "250 2.1.0 Ok")
        c.close()
        end_session()

        # 5. ETRN: refused by the access table, not eligible, accepted
        c = self.smtp("HELO %s" % HELO)
        self.assertEqual(c.cmd("ETRN %s" % DENIED), "554 5.7.1 <%s>: Etrn command rejected: Access denied" % DENIED)
        self.assertEqual(c.cmd("ETRN %s" % NOT_ELIGIBLE), "459 <%s>: service unavailable" % NOT_ELIGIBLE)
        self.assertEqual(c.cmd("ETRN %s" % RELAY), QUEUING_STARTED)
        did.update(rejected=1)
        end_session(c)
        self.assertEqual(len(REMOVED_RE.findall(self.stderr())), 2)
        return did


def rewrite(line):
    """For logcheck.normalize: a message's size holds the Received: header's date (its length
    varies), so every size= becomes N."""
    return re.sub(r"\bsize=\d+,", "size=N,", line)


class SmtpdLogs(SmtpdLogRun):
    def test_golden_log(self):
        self.run_script()
        logcheck.check_golden(self, GOLDEN, logcheck.normalize(logcheck.log_lines(self), self.tmp, rewrite))

    @unittest.skipUnless(shutil.which("pflogsumm"), "pflogsumm is not installed (Debian package pflogsumm)")
    def test_pflogsumm_grand_totals(self):
        did = self.run_script()
        report = logcheck.pflogsumm(self, logcheck.log_lines(self),
                                    {"smtpd": 1001, "qmgr": 1002, "discard": 1003, "flush": 1004})
        totals = logcheck.grand_totals(report)
        want = {"received": did["received"], "delivered": did["delivered"], "forwarded": 0, "deferred": 0,
                "bounced": 0, "rejected": did["rejected"], "held": 0, "discarded": 0}
        self.assertEqual({k: totals.get(k) for k in want}, want, report)
        for k in ("received", "delivered", "rejected"):
            self.assertGreater(want[k], 0, k)
        # the relay refusals filed under RCPT with their reason
        self.assertRegex(report, r"(?m)^  RCPT\n +Relay access denied \(total: %d\)$" % did["relay_denied"])
        # the ETRN warning, under smtpd; nothing else pflogsumm takes for trouble
        self.assertRegex(report, r"(?m)^  smtpd \(total: 1\)\n +1 +reject: ETRN %s\.\.\. from %s$"
                         % (re.escape(NOT_ELIGIBLE), re.escape(CLIENT)))
        for title in ("Fatal Errors", "Panics"):
            self.assertIn("\n%s: none\n" % title, report)


if __name__ == "__main__":
    unittest.main()
