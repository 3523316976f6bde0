# SPDX-License-Identifier: MIT
"""tern-flush end to end: fast flush / ETRN (Postfix's flush(8), postfix-semantics.md §1).

The real tern-flush on a temporary spool, by hand and under systemd-socket-activate, driven over
its socket by the independent varlink client (varlink.py), by `ternctl flush` and by
`tern-sendmail -qR/-qI`; with the real tern-qmgr, tern-error -t retry (which defers everything)
and tern-discard for the seed's "Testing the fast ETRN service" (ETRN_README), automated.

Nothing here can reach the network: every main.cf routes all mail to discard (default_transport,
relay_transport, local_transport), relayhost is empty, domains are in .test, and deferral comes
from a [transport] table that maps the customer domains to `retry:`.

What is tested:
  - Add: flush/<mapped name> ("Example.TEST" -> example_test, an IDN site -> xn__..., a subdomain
    of a relay domain), one line per add (no de-duplication on add);
  - SendSite on a site without a logfile (moved 0, nothing created); SendFile of a deferred
    message (moved to incoming, times now, S_IRGRP set) and of an ID that does not exist (ok);
  - Refresh/Purge answer at once; refresh removes an empty logfile older than
    fast_flush_purge_time and keeps a recent one, flushes a non-empty one not read for
    fast_flush_refresh_time and keeps a recently read one; purge flushes every non-empty one;
  - List (entries, size, read, updated; one site; List leaves the access time alone);
  - errors: InvalidSite, NotEligible (not listed, an address literal, fast_flush_domains empty),
    InvalidQueueId, a NUL in a string, missing parameters; nothing is ever created outside
    spool/flush; bad lines in a logfile are skipped with Postfix's warning; a logfile renamed
    over or removed by the operator between two adds, or while an add waits for its lock, gets
    the entry in the file the name has now; a symlink or directory as a logfile is refused,
    never followed; authorization (Add: root only; the rest: authorized_flush_users; exit 77);
  - 16 clients x 500 concurrent Adds for one site: exactly 8000 well-formed lines;
  - the seed's test with tern-qmgr: send-site (ternctl and sendmail -qR) opens exactly that
    site's messages, which are deferred and listed again; an eligible site without mail opens
    nothing; a non-eligible site flushes the whole queue (fast_flush_fallback = yes) or is refused
    with postqueue's message and exit code (no); bad sites, -qI, tern-flush not running;
    duplicate entries open a message once;
  - a flush racing tern-qmgr's deferred scan: every message delivered exactly once;
  - lifetime: by hand it binds runtime_directory/flush itself; socket-activated it exits after
    max_idle, is activated again (a new pid), and a background refresh holds off the idle exit
    (while requests are still answered at once); with a client that never leaves (a busy
    tern-qmgr), reaching max_use must not lock every later client out
    (test_max_use_with_a_busy_client: FAILS, a known bug, see its comment);
  - tern-qmgr without tern-flush: deferrals go on, "flush service failure" is logged once.

Binaries: $TERN_FLUSH, $TERN_QMGR, $TERN_DISCARD, $TERN_ERROR, $TERNCTL, $TERN_SENDMAIL,
$QUEUE_TOOL.
"""
import collections
import fcntl
import glob
import os
import re
import stat
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import varlink  # noqa: E402
from harness import (SOURCE_ROOT, SANITIZER_RE, START_TIMEOUT, EXIT_TIMEOUT,  # noqa: E402
                     DaemonTestCase, write_queue_conf, wait_until)

BUILD = os.path.join(SOURCE_ROOT, "build")
FLUSH = os.environ.get("TERN_FLUSH", os.path.join(BUILD, "src", "flush", "tern-flush"))
QMGR = os.environ.get("TERN_QMGR", os.path.join(BUILD, "src", "qmgr", "tern-qmgr"))
DISCARD = os.environ.get("TERN_DISCARD", os.path.join(BUILD, "src", "discard", "tern-discard"))
ERROR = os.environ.get("TERN_ERROR", os.path.join(BUILD, "src", "error", "tern-error"))
TERNCTL = os.environ.get("TERNCTL", os.path.join(BUILD, "src", "ctl", "ternctl"))
SENDMAIL = os.environ.get("TERN_SENDMAIL", os.path.join(BUILD, "src", "sendmail", "tern-sendmail"))
QUEUE_TOOL = os.environ.get("QUEUE_TOOL", os.path.join(BUILD, "tests", "integration", "queue-tool"))

RUN_TIMEOUT = 60
DAY = 86400

INVALID_PARAMETER = "org.varlink.service.InvalidParameter"
INVALID_SITE = "io.tern.Flush.InvalidSite"
INVALID_QUEUE_ID = "io.tern.Flush.InvalidQueueId"
NOT_ELIGIBLE = "io.tern.Flush.NotEligible"

# qmgr's and the agents' log lines (test_qmgr.py checks their exact form)
ACTIVE_RE = re.compile(r"^tern/qmgr: (\w+): from=<[^>]*>, size=\d+, nrcpt=\d+ \(queue active\)$", re.M)
DEFERRED_RE = re.compile(r"^tern/\w+: (\w+): to=<[^>]*>, .*status=deferred ", re.M)
REMOVED_RE = re.compile(r"^tern/qmgr: (\w+): removed$", re.M)
SENT_RE = re.compile(r"^tern/discard: (\w+): to=<[^>]*>, .*status=sent ", re.M)
ID_LINE_RE = re.compile(r"[A-Za-z0-9_]{1,31}")


class FlushTestCase(DaemonTestCase):
    TMP_PREFIX = "tern-flush-it-"
    DAEMON = "tern-flush"
    BINARY = FLUSH
    SOCKET_NAME = "flush"
    STDERR_NAME = "daemons.log"
    STDERR_APPEND = True

    SETTINGS = [("relay_domains", "example.test, cust1.test, cust2.test, cust3.test, xn--bcher-kva.test")]
    TRANSPORT = []

    def setUp(self):
        super().setUp()
        self.spool = os.path.join(self.tmp, "spool")
        os.mkdir(self.spool)
        self.flushdir = os.path.join(self.spool, "flush")
        self.qmgr_socket = os.path.join(self.rt, "qmgr")
        self.write_main_cf(self.SETTINGS, self.TRANSPORT)

    def write_main_cf(self, settings, transport):
        write_queue_conf(self.conf_path, "test_flush", self.spool, self.rt, settings, transport)

    # ---- daemons

    def start_flush(self):
        d = self.spawn(self.daemon_argv(), self.env())
        self.assertTrue(wait_until(lambda: os.path.exists(self.socket_path) or not d.running(), START_TIMEOUT),
                        "tern-flush did not bind %s:\n%s" % (self.socket_path, self.stderr()))
        self.assertTrue(d.running(), self.stderr())
        return d

    def start_agent(self, binary, transport=None):
        argv = [binary, "-c", self.conf_path] + (["-t", transport] if transport else [])
        d = self.spawn(argv, self.env())
        path = os.path.join(self.rt, transport or os.path.basename(binary)[len("tern-"):])
        self.assertTrue(wait_until(lambda: os.path.exists(path) or not d.running(), START_TIMEOUT),
                        "agent did not bind " + path)
        return d

    def start_qmgr(self):
        d = self.spawn([QMGR, "-c", self.conf_path], self.env())
        self.assertTrue(wait_until(lambda: os.path.exists(self.qmgr_socket) or not d.running(), START_TIMEOUT),
                        "tern-qmgr did not start:\n" + self.stderr())
        self.assertTrue(d.running(), self.stderr())
        return d

    # ---- spool

    def template(self, sender="sender@sender.test", rcpts=("rcpt@dest.test",)):
        path = os.path.join(self.tmp, "template-%d" % len(glob.glob(os.path.join(self.tmp, "template-*"))))
        now = int(time.time())
        argv = [QUEUE_TOOL, "write", path, "-f", sender, "-t", "%d.0" % now, "-c", str(now)]
        for r in rcpts:
            argv += ["-r", r]
        subprocess.run(argv, input=b"Subject: test\n\nhello\n", check=True)
        return path

    def enqueue(self, template, count=1, queue="incoming", next_attempt=None):
        argv = [QUEUE_TOOL, "enqueue", self.spool, queue, str(count), template]
        if next_attempt is not None:
            argv.append(str(int(next_attempt)))
        return subprocess.run(argv, check=True, stdout=subprocess.PIPE).stdout.decode().split()

    def files(self, queue):
        n = []
        for _, _, names in os.walk(os.path.join(self.spool, queue)):
            n += [x for x in names if re.fullmatch(r"[A-Za-z0-9_]+", x)]
        return n

    def queue_path(self, queue, qid):
        p = glob.glob(os.path.join(self.spool, queue, "**", qid), recursive=True)
        return p[0] if p else None

    def logfile(self, name):
        """The lines of flush/NAME, or None if it does not exist. Read without changing its access
        time, which is what refresh goes by."""
        try:
            fd = os.open(os.path.join(self.flushdir, name), os.O_RDONLY | os.O_NOATIME)
        except FileNotFoundError:
            return None
        with open(fd, "rb") as f:
            data = f.read().decode("ascii", "replace")
        return data.split("\n")[:-1] if data.endswith("\n") else data.split("\n") if data else []

    def write_logfile(self, name, lines, atime=None, mtime=None):
        os.makedirs(self.flushdir, exist_ok=True)
        path = os.path.join(self.flushdir, name)
        with open(path, "w") as f:
            f.write("".join(x + "\n" for x in lines))
        os.chmod(path, 0o600)
        st = os.stat(path)
        os.utime(path, (st.st_atime if atime is None else atime, st.st_mtime if mtime is None else mtime))
        return path

    def tree(self):
        out = set()
        for root, dirs, names in os.walk(self.tmp):
            for n in dirs + names:
                out.add(os.path.relpath(os.path.join(root, n), self.tmp))
        return out

    # ---- the log

    def mark(self):
        return len(self.stderr())

    def since(self, mark):
        return self.stderr()[mark:]

    def wait_log(self, pattern, count=1, timeout=RUN_TIMEOUT):
        rx = re.compile(pattern, re.M)
        ok = wait_until(lambda: len(rx.findall(self.stderr())) >= count, timeout, interval=0.05)
        self.assertTrue(ok, "no %d lines like %r in:\n%s" % (count, pattern, self.stderr()[-6000:]))
        return rx.findall(self.stderr())

    def activated(self, mark):
        """The IDs qmgr opened ("(queue active)") after MARK, with their counts."""
        return collections.Counter(ACTIVE_RE.findall(self.since(mark)))

    def wait_settled(self, ids, sites=None, mark=None, opened=(), timeout=RUN_TIMEOUT):
        """Every one of IDS deferred: in deferred/, nothing in incoming/ or active/; each of OPENED
        opened and deferred again after MARK; each logfile in SITES ({name: [id, ...]}) holds
        exactly those lines (in any order)."""
        def settled():
            if set(ids) - set(self.files("deferred")) or self.files("incoming") or self.files("active"):
                return False
            if opened:
                text = self.since(mark)
                if set(opened) - set(ACTIVE_RE.findall(text)) or set(opened) - set(DEFERRED_RE.findall(text)):
                    return False
            for name, want in (sites or {}).items():
                if collections.Counter(self.logfile(name) or []) != collections.Counter(want):
                    return False
            return True
        ok = wait_until(settled, timeout, interval=0.05)
        self.assertTrue(ok, "not settled: deferred %d/%d, incoming %s, active %s, logfiles %s (want %s)\n%s" % (
            len(set(ids) & set(self.files("deferred"))), len(ids), self.files("incoming"), self.files("active"),
            {n: self.logfile(n) for n in (sites or {})}, sites, self.stderr()[-6000:]))

    # ---- clients

    def call(self, method, params=None, path=None):
        if "." not in method:
            method = "io.tern.Flush." + method
        with varlink.connect(path or self.socket_path) as c:
            return c.call(method, params or {})

    def error(self, method, params=None):
        """The error reply to METHOD as (name, parameters); fails if it succeeds."""
        with self.assertRaises(varlink.VarlinkError, msg="%s %r succeeded" % (method, params)) as cm:
            self.call(method, params)
        return cm.exception.name, cm.exception.parameters

    def run_prog(self, argv):
        r = subprocess.run(argv, env=self.env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=60)
        self.assertNotRegex(r.stderr, SANITIZER_RE, "sanitizer report from %s" % argv[0])
        return r

    def ternctl(self, *args):
        return self.run_prog([TERNCTL, "-c", self.conf_path] + list(args))

    def sendmail(self, *args):
        return self.run_prog([SENDMAIL, "-C", self.conf_path] + list(args))


class TestRequests(FlushTestCase):
    """Each request by hand, over the socket."""

    def test_add_creates_mapped_logfiles(self):
        self.start_flush()
        self.assertTrue(stat.S_ISDIR(os.stat(self.flushdir).st_mode))
        self.assertEqual(self.call("Add", {"site": "Example.TEST", "queueId": "4Yc2Xz1AAAA"}), {})
        self.assertEqual(self.logfile("example_test"), ["4Yc2Xz1AAAA"])
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.flushdir, "example_test")).st_mode), 0o600)
        # one line per add, duplicates too; every spelling of the site is the same file
        for site, qid in (("example.test", "4Yc2Xz1BBBB"), ("EXAMPLE.test.", "4Yc2Xz1AAAA"),
                          ("example.TEST", "4Yc2Xz1CCCC")):
            self.assertEqual(self.call("Add", {"site": site, "queueId": qid}), {})
        self.assertEqual(self.logfile("example_test"), ["4Yc2Xz1AAAA", "4Yc2Xz1BBBB", "4Yc2Xz1AAAA", "4Yc2Xz1CCCC"])
        # an internationalized name goes through IDNA: bücher.test -> xn--bcher-kva.test
        self.assertEqual(self.call("Add", {"site": "bücher.test", "queueId": "4Yc2Xz1DDDD"}), {})
        self.assertEqual(self.call("Add", {"site": "BÜCHER.test", "queueId": "4Yc2Xz1EEEE"}), {})
        self.assertEqual(self.logfile("xn__bcher_kva_test"), ["4Yc2Xz1DDDD", "4Yc2Xz1EEEE"])
        # a subdomain of a listed domain (parent_domain_matches_subdomains has fast_flush_domains)
        self.assertEqual(self.call("Add", {"site": "mx.cust1.test", "queueId": "Q1"}), {})
        self.assertEqual(self.logfile("mx_cust1_test"), ["Q1"])
        # ternctl flush add does the same
        r = self.ternctl("flush", "add", "cust2.test", "Q2")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
        self.assertEqual(self.logfile("cust2_test"), ["Q2"])
        self.assertEqual(sorted(os.listdir(self.flushdir)),
                         ["cust2_test", "example_test", "mx_cust1_test", "xn__bcher_kva_test"])

    def test_send_site_without_logfile(self):
        self.start_flush()
        self.assertEqual(self.call("SendSite", {"site": "cust3.test"}), {"moved": 0})
        self.assertEqual(os.listdir(self.flushdir), [], "a send created a logfile")
        r = self.ternctl("flush", "send-site", "cust3.test")
        self.assertEqual((r.returncode, r.stdout), (0, "cust3.test: 0 messages moved to the incoming queue\n"),
                         r.stderr)
        self.assertEqual(os.listdir(self.flushdir), [])

    def test_send_file(self):
        self.start_flush()
        later = int(time.time()) + 3000
        ids = self.enqueue(self.template(rcpts=("u@cust1.test",)), 2, queue="deferred", next_attempt=later)
        path = self.queue_path("deferred", ids[0])
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode) & stat.S_IRGRP, 0)
        t0 = int(time.time())
        self.assertEqual(self.call("SendFile", {"queueId": ids[0]}), {})
        self.assertIsNone(self.queue_path("deferred", ids[0]))
        moved = os.path.join(self.spool, "incoming", ids[0])
        st = os.stat(moved)
        self.assertTrue(st.st_mode & stat.S_IRGRP, "the unthrottle bit: mode %o" % st.st_mode)
        self.assertEqual(stat.S_IMODE(st.st_mode) & 0o700, 0o700, "no longer ready: mode %o" % st.st_mode)
        self.assertGreaterEqual(st.st_mtime, t0 - 1)
        self.assertLess(st.st_mtime, later - 100, "the next attempt time was not set to now")
        # the other message was not touched
        other = self.queue_path("deferred", ids[1])
        self.assertEqual(int(os.stat(other).st_mtime), later)
        self.assertEqual(stat.S_IMODE(os.stat(other).st_mode) & stat.S_IRGRP, 0)
        # a message that is not there (any more) is no error; nor is one in incoming already
        self.assertEqual(self.call("SendFile", {"queueId": "4Yc2Xz1NOPE"}), {})
        self.assertEqual(self.call("SendFile", {"queueId": ids[0]}), {})
        self.assertTrue(os.path.exists(moved))
        r = self.sendmail("-qI", "4Yc2Xz1NOPE")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
        r = self.ternctl("flush", "send-file", ids[1])
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
        self.assertTrue(os.path.exists(os.path.join(self.spool, "incoming", ids[1])))
        self.assertEqual(os.listdir(self.flushdir), [], "SendFile touched the logfiles")

    def test_refresh_and_purge(self):
        self.start_flush()
        now = int(time.time())
        later = now + 3000
        ids = self.enqueue(self.template(rcpts=("u@cust1.test",)), 3, queue="deferred", next_attempt=later)
        stale = now - 13 * 3600          # fast_flush_refresh_time is 12h
        self.write_logfile("a_empty_old", [], mtime=now - 8 * DAY)         # fast_flush_purge_time is 7d
        self.write_logfile("b_empty_new", [], mtime=now - 60)
        self.write_logfile("c_unread", [ids[0]], atime=stale)
        self.write_logfile("d_read", [ids[1]], atime=now - 60)
        self.write_logfile("e_read", [ids[2]], atime=now - 60)
        # refresh goes through the logfiles in name order: the last one done means all are
        self.write_logfile("zz_last", ["4Yc2Xz1GONE"], atime=stale)
        t0 = time.monotonic()
        self.assertEqual(self.call("Refresh"), {})
        self.assertLess(time.monotonic() - t0, 2.0, "Refresh did not answer at once")
        self.assertTrue(wait_until(lambda: self.logfile("zz_last") == [], RUN_TIMEOUT), self.stderr())
        self.assertIsNone(self.logfile("a_empty_old"), "an empty logfile not updated for 8 days is kept")
        self.assertEqual(self.logfile("b_empty_new"), [], "a recent empty logfile was removed")
        self.assertEqual(self.logfile("c_unread"), [], "a logfile not read for 13h was not flushed")
        self.assertTrue(os.path.exists(os.path.join(self.spool, "incoming", ids[0])))
        self.assertEqual(self.logfile("d_read"), [ids[1]], "a logfile read a minute ago was flushed")
        self.assertIsNotNone(self.queue_path("deferred", ids[1]))
        self.assertGreaterEqual(os.stat(os.path.join(self.flushdir, "c_unread")).st_atime, now - 1,
                                "a flushed logfile is not marked read")
        # purge: every non-empty logfile is flushed, whenever it was read; an empty one stays
        # while it is recent; ternctl flush purge is the same request
        self.write_logfile("zz_last", ["4Yc2Xz1GONE"], atime=now - 60)
        r = self.ternctl("flush", "purge")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
        self.assertTrue(wait_until(lambda: self.logfile("zz_last") == [], RUN_TIMEOUT), self.stderr())
        self.assertEqual(self.logfile("d_read"), [])
        self.assertEqual(self.logfile("e_read"), [])
        self.assertEqual(sorted(self.files("incoming")), sorted(ids))
        self.assertEqual(self.files("deferred"), [])
        self.assertEqual(self.logfile("b_empty_new"), [])
        self.assertEqual(sorted(os.listdir(self.flushdir)),
                         ["b_empty_new", "c_unread", "d_read", "e_read", "zz_last"])
        r = self.ternctl("flush", "refresh")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))

    def test_list(self):
        self.start_flush()
        self.assertEqual(self.call("List"), {"sites": []})
        self.assertEqual(self.call("List", {"site": "cust1.test"}), {"sites": []})
        for qid in ("Q1", "Q2", "Q1"):
            self.call("Add", {"site": "cust1.test", "queueId": qid})
        self.call("Add", {"site": "cust2.test", "queueId": "Q3"})
        path = os.path.join(self.flushdir, "cust1_test")
        read, updated = int(time.time()) - 5000, int(time.time()) - 100
        os.utime(path, (read, updated))
        sites = self.call("List")["sites"]
        self.assertEqual([s["name"] for s in sites], ["cust1_test", "cust2_test"])
        self.assertEqual(sites[0], {"name": "cust1_test", "entries": 3, "size": 9, "read": read, "updated": updated})
        self.assertEqual((sites[1]["entries"], sites[1]["size"]), (1, 3))
        self.assertEqual(self.call("List", {"site": "CUST1.test"})["sites"], [sites[0]])
        # counting the entries is not reading: the access time is what refresh goes by
        self.assertEqual(os.stat(path).st_atime, read)
        r = self.ternctl("flush", "list")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"(?m)^cust1_test +3 +9  ")
        self.assertRegex(r.stdout, r"(?m)^cust2_test +1 +3  ")
        self.assertEqual(os.stat(path).st_atime, read)
        self.assertEqual(self.error("List", {"site": "other.test"}), (NOT_ELIGIBLE, {"site": "other.test"}))


class TestErrors(FlushTestCase):
    BAD_SITES = ["", "a/b", "..", "../../etc/passwd", "a b", "x;rm -rf", "a" * 300, "cust1.test/../..",
                 ".", "/", "cust1..test", "-cust1.test", "cust1.test\n", "Q1\nQ2", "192.0.2.1"]
    BAD_IDS = ["../x", "", "A" * 40, "A" * 32, "a/b", "..", "Q1\nQ2", "Q-1", "Q 1"]

    def test_invalid_requests_create_nothing(self):
        self.start_flush()
        self.call("Add", {"site": "cust1.test", "queueId": "Q0"})
        before = self.tree()
        for site in self.BAD_SITES:
            for method, params in (("Add", {"site": site, "queueId": "Q1"}), ("SendSite", {"site": site}),
                                   ("List", {"site": site})):
                self.assertEqual(self.error(method, params), (INVALID_SITE, {"site": site}), (method, site))
        for site in ("other.test", "[192.0.2.1]", "[127.0.0.1]", "cust1.test.other.test", "xcust1.test"):
            for method, params in (("Add", {"site": site, "queueId": "Q1"}), ("List", {"site": site})):
                self.assertEqual(self.error(method, params), (NOT_ELIGIBLE, {"site": site}), (method, site))
        for qid in self.BAD_IDS:
            for method, params in (("Add", {"site": "cust1.test", "queueId": qid}),
                                   ("SendFile", {"queueId": qid})):
                self.assertEqual(self.error(method, params), (INVALID_QUEUE_ID, {"queueId": qid}), (method, qid))
        # the longest ID that is valid (31 characters) is taken
        self.assertEqual(self.call("Add", {"site": "cust1.test", "queueId": "A" * 31}), {})
        # missing and mistyped parameters
        for method, params in (("Add", {"site": "cust1.test"}), ("Add", {"queueId": "Q1"}),
                               ("Add", {"site": 1, "queueId": "Q1"}), ("SendSite", {}),
                               ("SendFile", {"queueId": None}), ("Refresh", {"x": 1})):
            name, _ = self.error(method, params)
            self.assertEqual(name, INVALID_PARAMETER, (method, params))
        after = self.tree()
        self.assertEqual(after - before, set(), "created by bad requests")
        self.assertEqual(before - after, set(), "removed by bad requests")
        self.assertEqual(self.logfile("cust1_test"), ["Q0", "A" * 31])
        # the clients' messages and exit codes (postqueue's)
        r = self.sendmail("-qR", "../../etc/passwd")
        self.assertEqual(r.returncode, 64, r.stderr)
        self.assertIn('Invalid request: "../../etc/passwd"', r.stderr)
        r = self.ternctl("flush", "send-file", "../x")
        self.assertEqual(r.returncode, 64, r.stderr)
        self.assertIn('Invalid request: "../x"', r.stderr)
        r = self.sendmail("-qI", "A" * 40)
        self.assertEqual(r.returncode, 64, r.stderr)
        self.assertEqual(self.tree(), after)

    def test_nul_in_a_string(self):
        self.start_flush()
        before = self.tree()
        for method, params in (("Add", '{"site":"cust1.test\\u0000/../../x","queueId":"Q1"}'),
                               ("Add", '{"site":"cust1.test","queueId":"Q1\\u0000../x"}'),
                               ("SendSite", '{"site":"cust1.test\\u0000"}'),
                               ("SendFile", '{"queueId":"Q\\u0000"}')):
            with varlink.connect(self.socket_path) as c:
                c.send_raw(('{"method":"io.tern.Flush.%s","parameters":%s}' % (method, params)).encode() + b"\0")
                # refused: an InvalidParameter error, or (tern's varlink: jansson does not take
                # \u0000) the connection dropped; never a success
                try:
                    reply = c.read_reply()
                    self.fail("%s %s accepted: %r" % (method, params, reply))
                except varlink.VarlinkError as e:
                    self.assertEqual(e.name, INVALID_PARAMETER, (method, params))
                except varlink.ConnectionClosed:
                    pass
        self.assertEqual(self.tree(), before)
        self.assertEqual(self.call("List"), {"sites": []}, "does not serve on")

    def test_not_eligible_fallback(self):
        # fast_flush_fallback = yes (the default): a send for a site without a logfile is a run
        # of the whole queue (the seeds' "slow ETRN"); an add is still refused
        self.write_main_cf([("relay_domains", "cust1.test")], [])
        self.start_flush()
        for site in ("other.test", "[192.0.2.1]", "Other.Test."):
            self.assertEqual(self.call("SendSite", {"site": site}), {"moved": 0, "wholeQueue": True}, site)
        self.assertEqual(self.error("Add", {"site": "other.test", "queueId": "Q1"}),
                         (NOT_ELIGIBLE, {"site": "other.test"}))
        self.assertEqual(self.error("SendSite", {"site": "a/b"}), (INVALID_SITE, {"site": "a/b"}),
                         "garbage made a whole queue run")
        r = self.sendmail("-qR", "other.test")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
        self.assertEqual(os.listdir(self.flushdir), [])

    def test_malformed_address_literal_is_invalid(self):
        # Only a well-formed literal ("[" IPv4 "]", "[IPv6:" address "]") is a site that is not
        # eligible (a fallback queue run); anything else in brackets is InvalidSite, so garbage
        # never makes a full queue run (Postfix's smtpd refuses it: valid_mailhost_literal, 501).
        self.write_main_cf([("relay_domains", "cust1.test")], [])
        self.start_flush()
        for site in ("[192.0.2.1]", "[IPv6:2001:db8::1]"):
            self.assertEqual(self.call("SendSite", {"site": site}), {"moved": 0, "wholeQueue": True}, site)
        for site in ("[x;rm -rf", "[../../etc/passwd]", "[]", "[192.0.2.1", "[cust1.test]"):
            self.assertEqual(self.error("SendSite", {"site": site}), (INVALID_SITE, {"site": site}),
                             "garbage made a whole queue run")

    def test_not_eligible(self):
        self.write_main_cf([("relay_domains", "cust1.test"), ("fast_flush_fallback", "no")], [])
        self.start_flush()
        self.assertEqual(self.error("SendSite", {"site": "other.test"}), (NOT_ELIGIBLE, {"site": "other.test"}))
        self.assertEqual(self.error("SendSite", {"site": "[192.0.2.1]"}), (NOT_ELIGIBLE, {"site": "[192.0.2.1]"}))
        self.assertEqual(self.call("SendSite", {"site": "cust1.test"}), {"moved": 0})
        self.assertEqual(os.listdir(self.flushdir), [])
        r = self.sendmail("-qR", "x.test")
        self.assertEqual(r.returncode, 69, r.stderr)
        self.assertIn('Flush service is not configured for destination "x.test"', r.stderr)
        self.assertEqual(os.listdir(self.flushdir), [])

    def test_fast_flush_off(self):
        # fast_flush_domains empty: no site has a logfile; with no fallback every send is refused
        self.write_main_cf([("relay_domains", "cust1.test"), ("fast_flush_domains", ""),
                            ("fast_flush_fallback", "no")], [])
        self.start_flush()
        for method, params in (("Add", {"site": "cust1.test", "queueId": "Q1"}), ("SendSite", {"site": "cust1.test"}),
                               ("List", {"site": "cust1.test"})):
            self.assertEqual(self.error(method, params), (NOT_ELIGIBLE, {"site": "cust1.test"}), method)
        r = self.ternctl("flush", "send-site", "cust1.test")
        self.assertEqual(r.returncode, 69, r.stderr)
        self.assertIn('Flush service is not configured for destination "cust1.test"', r.stderr)
        # send-file needs no eligibility (postqueue -i works with fast flush off)
        self.assertEqual(self.call("SendFile", {"queueId": "Q1"}), {})
        self.assertEqual(os.listdir(self.flushdir), [])

    @unittest.skipUnless(os.geteuid() == 0, "needs root to run clients as nobody")
    def test_authorization(self):
        # Add is the delivery path's (root, mail_owner); the others follow authorized_flush_users
        # (root always); the clients say so with postqueue's message and exit code 77
        os.chmod(self.tmp, 0o711)
        os.chmod(self.rt, 0o711)

        def as_nobody(*argv):
            r = subprocess.run(list(argv), env=self.env(), stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, timeout=60, user=65534, group=65534, extra_groups=[], cwd="/")
            self.assertNotRegex(r.stderr, SANITIZER_RE)
            return r
        for users, may in (("root", False), ("static:anyone", True)):
            self.write_main_cf(self.SETTINGS + [("authorized_flush_users", users)], [])
            os.chmod(self.conf_path, 0o644)
            d = self.start_flush()
            r = as_nobody(TERNCTL, "-c", self.conf_path, "flush", "add", "cust1.test", "Q1")
            self.assertEqual(r.returncode, 77, r.stderr)
            self.assertRegex(r.stderr, r"User (nobody|65534)\(65534\) is not allowed")
            for argv in ((SENDMAIL, "-C", self.conf_path, "-qR", "cust1.test"),
                         (SENDMAIL, "-C", self.conf_path, "-qI", "Q1"),
                         (TERNCTL, "-c", self.conf_path, "flush", "list"),
                         (TERNCTL, "-c", self.conf_path, "flush", "purge")):
                r = as_nobody(*argv)
                if may:
                    self.assertEqual((r.returncode, r.stderr), (0, ""), argv)
                else:
                    self.assertEqual(r.returncode, 77, (argv, r.stderr))
                    self.assertRegex(r.stderr, r"User (nobody|65534)\(65534\) is not allowed to flush the mail queue")
            self.assertEqual(self.call("SendSite", {"site": "cust1.test"}), {"moved": 0}, "root may always")
            self.assertEqual(os.listdir(self.flushdir), [])
            self.assertEqual(d.stop(), 0)

    def test_bad_lines_in_logfile(self):
        self.start_flush()
        ids = self.enqueue(self.template(rcpts=("u@cust1.test",)), 2, queue="deferred",
                           next_attempt=time.time() + 3000)
        long_line = "B" * 100
        self.write_logfile("cust1_test", ["../../x", "", long_line, ids[0], "a/b", ids[0]])
        r = self.call("SendSite", {"site": "cust1.test"})
        self.assertEqual(r, {"moved": 1})
        self.assertTrue(os.path.exists(os.path.join(self.spool, "incoming", ids[0])))
        self.assertIsNotNone(self.queue_path("deferred", ids[1]), "a message not listed was moved")
        self.assertEqual(self.logfile("cust1_test"), [])
        err = self.stderr()
        for shown in ("../../x", "", "B" * 30, "a/b"):
            self.assertRegex(err, r'(?m)^tern/flush: warning: bad queue id "%s\.\.\." in fast flush logfile '
                                  r'\S*cust1_test$' % re.escape(shown))
        self.assertNotIn("B" * 31, err)
        self.assertEqual(len(re.findall(r"bad queue id", err)), 4)
        # a last line without its newline (a writer that died) is still an entry
        with open(os.path.join(self.flushdir, "cust1_test"), "w") as f:
            f.write(ids[1])
        self.assertEqual(self.call("SendSite", {"site": "cust1.test"}), {"moved": 1})
        self.assertTrue(os.path.exists(os.path.join(self.spool, "incoming", ids[1])))

    def test_logfile_not_a_regular_file(self):
        # a symlink or a directory where a logfile belongs: refused (Failed), never followed
        self.start_flush()
        target = os.path.join(self.tmp, "target")
        with open(target, "w") as f:
            f.write("Q0\n")
        os.symlink(target, os.path.join(self.flushdir, "cust1_test"))
        os.mkdir(os.path.join(self.flushdir, "cust2_test"))
        for site in ("cust1.test", "cust2.test"):
            for method, params in (("Add", {"site": site, "queueId": "Q1"}), ("SendSite", {"site": site})):
                self.assertEqual(self.error(method, params)[0], "io.tern.Flush.Failed", (method, site))
        self.assertEqual(self.call("List"), {"sites": []})
        self.write_logfile("zz_last", ["Q2"], atime=int(time.time()) - 60)
        self.assertEqual(self.call("Purge"), {})
        self.assertTrue(wait_until(lambda: os.path.getsize(os.path.join(self.flushdir, "zz_last")) == 0,
                                   RUN_TIMEOUT))
        with open(target) as f:
            self.assertEqual(f.read(), "Q0\n")
        self.assertTrue(os.path.islink(os.path.join(self.flushdir, "cust1_test")))
        self.assertTrue(os.path.isdir(os.path.join(self.flushdir, "cust2_test")))
        # the longest names are fine: a 253-character subdomain of a relay domain
        site = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 50, "cust3.test"])
        self.assertEqual(len(site), 253)
        self.assertEqual(self.call("Add", {"site": site, "queueId": "Q3"}), {})
        self.assertEqual(self.logfile(site.replace(".", "_")), ["Q3"])

    def waiting_for_lock(self, path):
        """Is some process waiting for an flock() on PATH (/proc/locks shows waiters with "->")?"""
        ino = os.stat(path).st_ino
        with open("/proc/locks") as f:
            return any("->" in line and line.split()[-3].endswith(":%d" % ino) for line in f)

    def test_logfile_replaced_between_adds(self):
        self.start_flush()
        self.call("Add", {"site": "cust1.test", "queueId": "Q1"})
        path = os.path.join(self.flushdir, "cust1_test")
        old = open(path, "rb")
        self.addCleanup(old.close)
        new = os.path.join(self.flushdir, "cust1_test.new")
        with open(new, "w") as f:
            f.write("Q0\n")
        os.rename(new, path)
        self.call("Add", {"site": "cust1.test", "queueId": "Q2"})
        self.assertEqual(self.logfile("cust1_test"), ["Q0", "Q2"])
        self.assertEqual(old.read(), b"Q1\n", "the entry went to the file that was replaced")
        # and removed: the next add creates it again
        os.unlink(path)
        self.call("Add", {"site": "cust1.test", "queueId": "Q3"})
        self.assertEqual(self.logfile("cust1_test"), ["Q3"])

    def test_logfile_replaced_while_an_add_waits_for_its_lock(self):
        # another holder of the lock (an operator's tool) replaces, then removes, the logfile
        # while tern-flush waits for the lock: the entry must land in the file the name has now
        self.start_flush()
        path = os.path.join(self.flushdir, "cust1_test")
        for what in ("replace", "remove"):
            self.write_logfile("cust1_test", ["Q0"])
            held = os.open(path, os.O_RDWR)
            try:
                fcntl.flock(held, fcntl.LOCK_EX)
                with varlink.connect(self.socket_path) as c:
                    c.send("io.tern.Flush.Add", {"site": "cust1.test", "queueId": "Q1"})
                    self.assertTrue(wait_until(lambda: self.waiting_for_lock(path), START_TIMEOUT),
                                    "tern-flush does not wait for the lock")
                    if what == "replace":
                        with open(path + ".new", "w") as f:
                            f.write("Q9\n")
                        os.rename(path + ".new", path)
                    else:
                        os.unlink(path)
                    fcntl.flock(held, fcntl.LOCK_UN)
                    self.assertEqual(c.read_reply(), {})
                self.assertEqual(os.pread(held, 100, 0), b"Q0\n", "%s: the entry went to the old file" % what)
            finally:
                os.close(held)
            self.assertEqual(self.logfile("cust1_test"), ["Q9", "Q1"] if what == "replace" else ["Q1"], what)


class TestConcurrency(FlushTestCase):
    def test_concurrent_adds(self):
        clients, per_client = 16, 500
        self.start_flush()
        errors = []
        barrier = threading.Barrier(clients)

        def client(k):
            try:
                with varlink.connect(self.socket_path, timeout=120) as c:
                    barrier.wait()
                    for i in range(per_client):
                        params = {"site": "cust1.test" if i % 2 else "CUST1.test.", "queueId": "C%02dz%04d" % (k, i)}
                        # half the clients pipeline oneway calls, as tern-qmgr does
                        c.call("io.tern.Flush.Add", params, oneway=bool(k % 2))
                    c.call("io.tern.Flush.List", {"site": "cust1.test"})    # in order: all done
            except Exception as e:      # reported below, in the test's thread
                errors.append("client %d: %r" % (k, e))
        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        self.assertEqual(errors, [])
        lines = self.logfile("cust1_test")
        self.assertEqual(len(lines), clients * per_client)
        bad = [x for x in lines if not ID_LINE_RE.fullmatch(x)]
        self.assertEqual(bad, [], "interleaved or broken lines")
        want = {"C%02dz%04d" % (k, i) for k in range(clients) for i in range(per_client)}
        self.assertEqual(collections.Counter(lines), collections.Counter(want))
        # each client's entries in its own order
        for k in range(clients):
            mine = [x for x in lines if x.startswith("C%02dz" % k)]
            self.assertEqual(mine, sorted(mine))
        self.assertEqual(self.call("List", {"site": "cust1.test"})["sites"][0]["entries"], clients * per_client)


class TestSeed(FlushTestCase):
    """ETRN_README "Testing the fast ETRN service", with tern-qmgr, tern-error -t retry, tern-discard."""

    SETTINGS = [("relay_domains", "cust1.test, cust2.test, cust3.test")]
    TRANSPORT = [("cust1.test", "retry:4.4.1 customer is offline"),
                 ("cust2.test", "retry:4.4.1 customer is offline"),
                 ("cust3.test", "retry:4.4.1 customer is offline"),
                 ("other.test", "retry:4.4.1 not a customer")]

    def test_fast_etrn(self):
        self.start_agent(ERROR, "retry")
        self.start_agent(DISCARD)
        flush = self.start_flush()
        self.start_qmgr()
        ids = {d: self.enqueue(self.template(rcpts=("user@%s.test" % d,)), 4) for d in ("cust1", "cust2", "other")}
        c1, c2, other = ids["cust1"], ids["cust2"], ids["other"]
        everything = c1 + c2 + other
        # deferred, and each listed in its site's logfile (qmgr adds once the file is back);
        # other.test has none (not in relay_domains)
        self.wait_settled(everything, {"cust1_test": c1, "cust2_test": c2})
        self.assertEqual(sorted(os.listdir(self.flushdir)), ["cust1_test", "cust2_test"])

        # ETRN cust1.test, as ternctl flush send-site and as sendmail -qR: exactly cust1's mail is
        # opened, deferred again and listed again (the logfile was emptied by the send)
        for how in ("ternctl", "sendmail"):
            mark = self.mark()
            if how == "ternctl":
                r = self.ternctl("flush", "send-site", "cust1.test")
                self.assertEqual(r.stdout, "cust1.test: 4 messages moved to the incoming queue\n", r.stderr)
            else:
                r = self.sendmail("-qR", "cust1.test")
                self.assertEqual(r.stdout, "")
            self.assertEqual((r.returncode, r.stderr), (0, ""), how)
            self.wait_settled(everything, {"cust1_test": c1, "cust2_test": c2}, mark, opened=c1)
            self.assertEqual(self.activated(mark), collections.Counter(c1), how)

        # an eligible site without mail: nothing at all is opened. The barrier: a sendmail -qI of
        # one cust2 message after it (tern-flush answers in order, its triggers go in order)
        mark = self.mark()
        self.assertEqual(self.call("SendSite", {"site": "cust3.test"}), {"moved": 0})
        self.assertIsNone(self.logfile("cust3_test"))
        r = self.sendmail("-qI", c2[0])
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
        self.wait_settled(everything, {"cust1_test": c1, "cust2_test": c2 + [c2[0]]}, mark, opened=[c2[0]])
        self.assertEqual(self.activated(mark), collections.Counter([c2[0]]))

        # a site that is not eligible, fast_flush_fallback = yes (the default): the whole queue
        # (the logfiles are not emptied: each message is listed once more)
        mark = self.mark()
        r = self.ternctl("flush", "send-site", "other.test")
        self.assertEqual((r.returncode, r.stdout), (0, "other.test: not eligible for fast flush: the whole queue "
                                                       "is being flushed\n"), r.stderr)
        self.wait_settled(everything, {"cust1_test": c1 * 2, "cust2_test": c2 * 2 + [c2[0]]}, mark,
                          opened=everything)
        self.assertEqual(set(self.activated(mark)), set(everything))

        # duplicates in a logfile: the message is opened once (Postfix's duplicate filter)
        self.write_logfile("cust2_test", [c2[1]] * 5)
        mark = self.mark()
        self.assertEqual(self.call("SendSite", {"site": "cust2.test"}), {"moved": 1})
        self.wait_settled(everything, {"cust1_test": c1 * 2, "cust2_test": [c2[1]]}, mark, opened=[c2[1]])
        self.assertEqual(self.activated(mark), collections.Counter([c2[1]]))

        # fast_flush_fallback = no: refused with postqueue's message and exit code
        self.assertEqual(flush.stop(), 0)
        self.assertFalse(os.path.exists(self.socket_path), "tern-flush by hand left its socket behind")
        self.write_main_cf(self.SETTINGS + [("fast_flush_fallback", "no")], self.TRANSPORT)
        flush = self.start_flush()
        mark = self.mark()
        self.assertEqual(self.error("SendSite", {"site": "other.test"}), (NOT_ELIGIBLE, {"site": "other.test"}))
        r = self.sendmail("-qR", "other.test")
        self.assertEqual((r.returncode, r.stdout), (69, ""))
        self.assertIn('fatal: Flush service is not configured for destination "other.test"', r.stderr)
        r = self.sendmail("-qR", "x.test")
        self.assertEqual(r.returncode, 69)
        self.assertIn('Flush service is not configured for destination "x.test"', r.stderr)
        r = self.ternctl("flush", "send-site", "other.test")
        self.assertEqual(r.returncode, 69)
        self.assertIn('Flush service is not configured for destination "other.test"', r.stderr)
        r = self.sendmail("-qR", "a/b")
        self.assertEqual(r.returncode, 64)
        self.assertIn('Invalid request: "a/b"', r.stderr)
        r = self.sendmail("-qI", c1[0])
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
        self.wait_settled(everything, {"cust1_test": c1 * 2 + [c1[0]], "cust2_test": [c2[1]]}, mark,
                          opened=[c1[0]])
        self.assertEqual(self.activated(mark), collections.Counter([c1[0]]))

        # tern-flush not running: the mail system is down
        self.assertEqual(flush.stop(), 0)
        for args in (("-qR", "cust1.test"), ("-qI", c1[0])):
            r = self.sendmail(*args)
            self.assertEqual(r.returncode, 69, args)
            self.assertIn("Cannot flush mail queue - mail system is down", r.stderr)
        r = self.ternctl("flush", "send-site", "cust1.test")
        self.assertEqual(r.returncode, 69)
        self.assertIn("Cannot flush mail queue - mail system is down", r.stderr)


class TestRace(FlushTestCase):
    SETTINGS = [("relay_domains", "cust1.test, cust2.test, cust3.test")]
    TRANSPORT = [("cust1.test", "retry:4.4.1 offline"), ("cust2.test", "retry:4.4.1 offline"),
                 ("cust3.test", "retry:4.4.1 offline")]

    def concurrently(self, *calls):
        """Run each of CALLS (method, params) to tern-flush or tern-qmgr at the same moment."""
        barrier = threading.Barrier(len(calls))
        out, errors = [None] * len(calls), []

        def run(i, path, method, params):
            try:
                with varlink.connect(path) as c:
                    barrier.wait()
                    out[i] = c.call(method, params)
            except Exception as e:
                errors.append("%s: %r" % (method, e))
        threads = [threading.Thread(target=run, args=(i,) + call) for i, call in enumerate(calls)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        return out

    def test_flush_while_qmgr_scans_deferred(self):
        per_site = 150
        self.start_agent(ERROR, "retry")
        self.start_agent(DISCARD)
        self.start_flush()
        qmgr = self.start_qmgr()
        ids = {s: self.enqueue(self.template(rcpts=("u@%s" % s, "v@%s" % s)), per_site) for s in
               ("cust1.test", "cust2.test", "cust3.test")}
        everything = sum(ids.values(), [])
        self.wait_settled(everything, {"cust1_test": ids["cust1.test"], "cust2_test": ids["cust2.test"],
                                       "cust3_test": ids["cust3.test"]}, timeout=120)
        # the flush phase: the customers are reachable (everything goes to discard)
        qmgr.stop()
        self.write_main_cf(self.SETTINGS, [])
        self.start_qmgr()
        mark = self.mark()
        # a deferred scan (whose files are not due: it skips them, or takes one that a send just
        # touched) racing two site flushes that move files out from under it
        out = self.concurrently((self.qmgr_socket, "io.tern.Qmgr.Trigger", {"requests": ["deferred"]}),
                                (self.socket_path, "io.tern.Flush.SendSite", {"site": "cust1.test"}),
                                (self.socket_path, "io.tern.Flush.SendSite", {"site": "cust2.test"}))
        flushed = ids["cust1.test"] + ids["cust2.test"]

        def delivered(want):
            text = self.since(mark)
            return set(want) <= set(REMOVED_RE.findall(text)) and not self.files("incoming") and \
                not self.files("active")
        self.assertTrue(wait_until(lambda: delivered(flushed), RUN_TIMEOUT, 0.05), self.stderr()[-4000:])
        self.assertLessEqual(out[1]["moved"] + out[2]["moved"], 2 * per_site)
        self.assertEqual(sorted(self.files("deferred")), sorted(ids["cust3.test"]), "cust3 was not flushed")
        # a scan of everything (all: due or not) with the last site's flush started once the scan
        # has taken its first file: the two move the same files out of deferred/ at once
        mark3 = self.mark()
        self.assertEqual(self.call("io.tern.Qmgr.Trigger", {"requests": ["all", "deferred"]},
                                   path=self.qmgr_socket), {})
        self.assertTrue(wait_until(lambda: ACTIVE_RE.search(self.since(mark3)), RUN_TIMEOUT, 0.001))
        moved = self.call("SendSite", {"site": "cust3.test"})["moved"]
        self.assertLessEqual(moved, per_site)
        self.assertTrue(wait_until(lambda: delivered(everything) and not self.files("deferred"), RUN_TIMEOUT,
                                   0.05), self.stderr()[-4000:])
        text = self.since(mark)
        removed = collections.Counter(REMOVED_RE.findall(text))
        self.assertEqual(removed, collections.Counter(everything), "removed once each")
        sent = collections.Counter(SENT_RE.findall(text))
        self.assertEqual(sent, collections.Counter({i: 2 for i in everything}), "each recipient delivered once")
        self.assertEqual(self.activated(mark), collections.Counter(everything), "opened once each")
        for q in ("incoming", "active", "deferred", "hold", "corrupt"):
            self.assertEqual(self.files(q), [], q)
        self.assertNotRegex(text, r"tern/(qmgr|flush): (warning|error|fatal): (?!RLIMIT_NOFILE)")
        for name in ("cust1_test", "cust2_test", "cust3_test"):
            self.assertEqual(self.logfile(name), [], name)


class TestNoFlushService(FlushTestCase):
    SETTINGS = [("relay_domains", "cust1.test")]
    TRANSPORT = [("cust1.test", "retry:4.4.1 offline")]

    def test_deferrals_without_tern_flush(self):
        self.start_agent(ERROR, "retry")
        self.start_qmgr()
        first = self.enqueue(self.template(rcpts=("u@cust1.test",)), 10)
        self.wait_settled(first)
        self.assertEqual(len(DEFERRED_RE.findall(self.stderr())), 10)
        failures = re.findall(r"(?m)^tern/qmgr: warning: (\w+): flush service failure: .*$", self.stderr())
        self.assertEqual(len(failures), 1, "once per interval, not per message:\n" + self.stderr())
        self.assertIn(failures[0], first)
        # tern-flush back: the next deferrals are listed
        self.start_flush()
        more = self.enqueue(self.template(rcpts=("u@cust1.test",)), 5)
        self.wait_settled(first + more, {"cust1_test": more})
        self.assertEqual(len(re.findall(r"flush service failure", self.stderr())), 1)


class TestLifetime(FlushTestCase):
    def test_by_hand_binds_its_socket(self):
        d = self.start_flush()
        self.assertTrue(stat.S_ISSOCK(os.stat(self.socket_path).st_mode))
        self.assertEqual(self.call("List"), {"sites": []})
        self.assertEqual(d.stop(), 0)
        self.assertFalse(os.path.exists(self.socket_path), "the socket it bound is left behind")
        r = self.sendmail("-qR", "cust1.test")
        self.assertEqual(r.returncode, 69)
        self.assertIn("Cannot flush mail queue - mail system is down", r.stderr)

    def activate(self, n):
        if self.notify:
            os.unlink(self.notify.path)         # start_activated() binds its NOTIFY_SOCKET anew
        self.stderr_path = os.path.join(self.tmp, "flush.%d.err" % n)     # and waits for "Listening on"
        return self.start_activated()

    def test_idle_exit_and_reactivation(self):
        max_idle = 2
        self.write_main_cf(self.SETTINGS + [("max_idle", "%ds" % max_idle)], [])
        d = self.activate(1)
        self.assertEqual(self.call("Add", {"site": "cust1.test", "queueId": "Q1"}), {})
        self.notify.wait_for("READY=1")
        t0 = time.monotonic()
        self.assertEqual(d.wait_exit(timeout=max_idle + EXIT_TIMEOUT), 0, d.stderr())
        idle = time.monotonic() - t0
        self.assertGreaterEqual(idle, max_idle - 0.5, "exited before max_idle")
        self.assertLess(idle, max_idle + 3, "exited long after max_idle")
        self.assertTrue(os.path.exists(self.socket_path), "an activated daemon removed a socket it does not own")
        self.assertEqual(self.logfile("cust1_test"), ["Q1"])
        d2 = self.activate(2)
        self.assertEqual(self.call("List", {"site": "cust1.test"})["sites"][0]["entries"], 1)
        self.assertEqual(self.call("Add", {"site": "cust1.test", "queueId": "Q2"}), {})
        self.assertNotEqual(d2.pid, d.pid)
        self.assertEqual(self.logfile("cust1_test"), ["Q1", "Q2"])
        self.assertEqual(d2.wait_exit(timeout=max_idle + EXIT_TIMEOUT), 0, d2.stderr())

    def test_max_use_with_a_busy_client(self):
        # max_use does not apply to tern-flush: tern-qmgr keeps its connection for as long as it
        # defers mail more often than every 2 s (FLUSH_CLIENT_IDLE_USEC), and a process that stopped
        # accepting to drain would keep every other client (ternctl flush, sendmail -qR, ETRN) in
        # the listen backlog meanwhile.
        max_use = 3
        self.write_main_cf(self.SETTINGS + [("max_use", str(max_use))], [])
        d = self.activate(1)
        stop = threading.Event()
        added = []

        def busy_qmgr():            # what tern-qmgr's flush client does: oneway Adds, one connection
            with varlink.connect(self.socket_path) as c:
                while not stop.is_set():
                    added.append("P%d" % len(added))
                    c.call("io.tern.Flush.Add", {"site": "cust1.test", "queueId": added[-1]}, oneway=True)
                    stop.wait(0.2)
        t = threading.Thread(target=busy_qmgr)
        t.start()
        failed = None
        try:
            self.assertTrue(wait_until(lambda: self.logfile("cust1_test"), START_TIMEOUT))
            for i in range(max_use + 2):
                t0 = time.monotonic()
                try:
                    with varlink.connect(self.socket_path, timeout=5) as c:
                        c.call("io.tern.Flush.List", {"site": "cust1.test"})
                except (TimeoutError, OSError) as e:
                    failed = "connection %d (the busy client's is 1, max_use %d) not served within %.1f s: %r; " \
                             "tern-flush still running: %s" % (i + 2, max_use, time.monotonic() - t0, e, d.running())
                    break
        finally:
            stop.set()
            t.join(EXIT_TIMEOUT)
            # a daemon that drains exits now that its last client has gone: let it, rather than
            # race its exit with the SIGTERM at the end of the test
            wait_until(lambda: not d.running(), 2.0)
        if failed:
            self.fail(failed)

    def test_refresh_holds_off_idle_exit(self):
        max_idle, count, lines = 1, 2000, 100
        self.write_main_cf(self.SETTINGS + [("max_idle", "%ds" % max_idle)], [])
        stale = int(time.time()) - 13 * 3600
        names = ["s%05d_test" % i for i in range(count)]
        for i, name in enumerate(names):
            self.write_logfile(name, ["QQQQQQ%04dz%05d" % (i, j) for j in range(lines)], atime=stale)
        d = self.activate(1)
        t0 = time.monotonic()
        self.assertEqual(self.call("Refresh"), {})
        answered = time.monotonic() - t0
        self.assertLess(answered, 1.0, "Refresh did not answer at once")
        last = os.path.join(self.flushdir, names[-1])
        # requests go first: an add in the middle of the refresh is answered at once
        t1 = time.monotonic()
        self.assertEqual(self.call("Add", {"site": "cust1.test", "queueId": "Q1"}), {})
        self.assertLess(time.monotonic() - t1, 1.0, "an Add waited behind the refresh")
        # the logfiles are done in name order: the last one empty means all are
        self.assertTrue(wait_until(lambda: os.path.getsize(last) == 0 or not d.running(), 120, 0.01))
        done = time.monotonic()
        self.assertTrue(d.running(), "exited %.1f s into the refresh, with %d logfiles not done:\n%s" % (
            time.monotonic() - t0, sum(1 for n in names if os.path.getsize(os.path.join(self.flushdir, n))),
            d.stderr()[-2000:]))
        self.assertEqual(d.wait_exit(timeout=max_idle + EXIT_TIMEOUT), 0)
        self.assertGreaterEqual(time.monotonic() - done, max_idle - 0.5, "exited before max_idle after the refresh")
        self.assertEqual([n for n in names if self.logfile(n) != []], [])
        if done - t0 <= max_idle:
            print("note: the refresh took %.1f s, not longer than max_idle: the hold was not tested" % (done - t0),
                  file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
