# SPDX-License-Identifier: MIT
"""tern-smtp's real MX resolution, end to end, without a real name server or a real network.

src/smtp/smtp-resolve.c asks glibc's res_query(), which reads /etc/resolv.conf. To drive that
path as it runs in production, this script re-executes itself inside a private network and mount
namespace (`unshare --net --mount --fork`; root only), where:
  - the only interface is lo (brought up; every 127/8 address is local), so nothing this test
    does can reach a real DNS server or any non-loopback address;
  - a resolv.conf with "nameserver 127.0.0.1" and "options attempts:1 timeout:1" is bind-mounted
    over /etc/resolv.conf (in the namespace only: the host's file is untouched);
  - dns_server.py answers authoritatively for the zone ZONE below on 127.0.0.1:53 (UDP and TCP):
    MX, A, AAAA, CNAME and TXT records, NXDOMAIN for other names under .test, SERVFAIL for one name,
    and a truncated (TC) UDP answer for others so that glibc asks again over TCP;
  - Postfix's smtp-sink listens on 127.0.0.X:25 (and :2525, and [::1]:25) and dumps each message
    it takes into its own directory (-d DIR/%M.), which counts what it got;
  - tern-smtp is started by hand (inet_protocols = ipv4 unless the test is about AAAA,
    smtp_connect_timeout = 2s) and fed io.tern.Delivery.Deliver through varlink.py with a real
    queue file ($QUEUE_TOOL) and a nexthop that is a domain name, so that it looks up MX records.

What is tested (one method each): MX preference order past a dead server; random order among
equal preferences; no MX (the domain's own address); a null MX (5.1.0, Postfix's code); NXDOMAIN (5.4.4);
SERVFAIL (4.4.3 and a hop status); MX hosts without addresses (Postfix's default bounce, and
4.4.4 with smtp_defer_if_no_mx_address_found); MX targets behind a CNAME chain;
smtp_mx_address_limit; TC over UDP then TCP; a port in the nexthop; an IPv6-only MX host; a
domain with neither MX nor address records (NODATA).
The exact texts are Postfix's: NXDOMAIN on the MX query is "no MX", so the address lookup
follows and the text names type=A; NODATA is "Host found but no data record of requested type";
a null MX is 5.1.0. Where tern differs from Postfix (the text of 4.4.4 with
smtp_defer_if_no_mx_address_found), the test follows tern and says so. Every tern-smtp must exit 0 on SIGTERM with no sanitizer report (harness.py).

Skipped (exit 77, with the reason) when not root, when unshare or the bind mount fails, or when
smtp-sink can be had neither from $POSTCAT_ROOT, BUILD/postfix-root (tools/fetch-postfix.sh
fills it; fetched before entering the namespace, which has no network) nor /usr/sbin.

Binaries: $TERN_SMTP, $QUEUE_TOOL.
"""
import fcntl
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dns_server  # noqa: E402
import varlink  # noqa: E402
from harness import (SOURCE_ROOT, START_TIMEOUT, EXIT_TIMEOUT, DaemonTestCase, find_postfix_root,  # noqa: E402
                     write_conf, wait_until)

BUILD_ROOT = os.environ.get("TERN_BUILD_ROOT", os.path.join(SOURCE_ROOT, "build"))
SMTP = os.environ.get("TERN_SMTP", os.path.join(BUILD_ROOT, "src", "smtp", "tern-smtp"))
QUEUE_TOOL = os.environ.get("QUEUE_TOOL", os.path.join(BUILD_ROOT, "tests", "integration", "queue-tool"))

# Set in the environment of the re-executed script: it runs inside the namespace, and where
# smtp-sink's package root is.
INNER_ENV = "TERN_SMTP_MX_NAMESPACE"
ROOT_ENV = "TERN_SMTP_MX_POSTFIX_ROOT"
SKIP = 77

RESOLV_CONF = "nameserver 127.0.0.1\noptions attempts:1 timeout:1\n"

DELIVER = "io.tern.Delivery.Deliver"
QID = "4Yc2Xz1x2Wz9mxt"
RCPT = "rcpt@example.org"
CONTENT = b"Subject: mx test\n\nbody of the mx test\n"
# smtp-sink's reply to the end of DATA, as the result's text
SINK_OK = "250 2.0.0 Ok"

# The zone. 127.0.0.2 is never listened on (connection refused); the others have smtp-sinks in
# the tests that use them.
ZONE = {
    # 1, 9, 11: a dead preferred MX and a live backup
    "mx.test": [("MX", (10, "mx1.test")), ("MX", (20, "mx2.test"))],
    "mx1.test": [("A", "127.0.0.2")],
    "mx2.test": [("A", "127.0.0.3")],
    # 2: equal preferences
    "equal.test": [("MX", (10, "a.test")), ("MX", (10, "b.test"))],
    "a.test": [("A", "127.0.0.5")],
    "b.test": [("A", "127.0.0.6")],
    # 3: no MX, an address
    "plain.test": [("A", "127.0.0.4")],
    # 4: RFC 7505
    "nullmx.test": [("MX", (0, "."))],
    # 7: an MX host that does not exist
    "noaddr-mx.test": [("MX", (10, "noaddr.test"))],
    # 8: an MX target behind two CNAMEs
    "cname.test": [("MX", (10, "mxalias.test"))],
    "mxalias.test": [("CNAME", "mxalias2.test")],
    "mxalias2.test": [("CNAME", "mx2.test")],
    # 10: answers that do not fit UDP (the server says TC for these names)
    "tc.test": [("MX", (10, "tcmx.test"))],
    "tcmx.test": [("A", "127.0.0.3")],
    # 12: IPv6 only
    "v6.test": [("MX", (10, "mx6.test"))],
    "mx6.test": [("AAAA", "::1")],
    # 13: a name that exists, with neither MX nor address records (NODATA for both)
    "nodata.test": [("TXT", "v=spf1 -all")],
}
SERVFAIL = {"servfail.test"}
TRUNCATE = {"tc.test", "tcmx.test"}

DNS = None


# ---- outside the namespace ----------------------------------------------------------------------

def skip(why):
    print("smtp-mx: skipped: %s" % why)
    sys.stdout.flush()
    return SKIP


def outer_main():
    """Check what the namespace needs, then run this script again inside one."""
    if os.geteuid() != 0:
        return skip("needs root (a private network and mount namespace, port 53, smtp-sink -u)")
    if not shutil.which("unshare"):
        return skip("no unshare(1)")
    if not os.path.isfile("/etc/resolv.conf"):
        return skip("no /etc/resolv.conf to bind-mount over")
    root = find_postfix_root("smtp-sink")
    if root is None:
        return skip("smtp-sink not in $POSTCAT_ROOT, BUILD/postfix-root or /usr/sbin, "
                    "and tools/fetch-postfix.sh failed")
    argv = ["unshare", "--net", "--mount", "--fork"]
    p = subprocess.run(argv + ["true"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if p.returncode != 0:
        return skip("unshare --net --mount failed: %s" % p.stderr.decode(errors="replace").strip())
    env = dict(os.environ)
    env[INNER_ENV] = "1"
    env[ROOT_ENV] = root
    sys.stdout.flush()
    os.execvpe("unshare", argv + ["--", sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)
    return 1


# ---- inside the namespace -----------------------------------------------------------------------

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def loopback_up():
    """lo up, with ip(8) when there is one, else with SIOCSIFFLAGS."""
    if shutil.which("ip"):
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        return
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, ifr)[:18])[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP))


def enter_namespace(top):
    """lo up and our resolv.conf over /etc/resolv.conf; a reason string when that cannot be done."""
    names = sorted(n for _, n in socket.if_nameindex())
    if names != ["lo"]:
        return "not in a private network namespace: interfaces %s" % names
    try:
        loopback_up()
    except (OSError, subprocess.CalledProcessError) as e:
        return "cannot bring up lo: %s" % e
    conf = os.path.join(top, "resolv.conf")
    with open(conf, "w") as f:
        f.write(RESOLV_CONF)
    p = subprocess.run(["mount", "--bind", conf, "/etc/resolv.conf"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, check=False)
    if p.returncode != 0:
        return "cannot bind-mount resolv.conf: %s" % p.stderr.decode(errors="replace").strip()
    with open("/etc/resolv.conf") as f:
        if f.read() != RESOLV_CONF:
            return "/etc/resolv.conf is not ours after the bind mount"
    return None


def setUpModule():
    global DNS
    if os.environ.get(INNER_ENV) != "1":
        raise unittest.SkipTest("run as a script: it needs a private network namespace")
    DNS = dns_server.DnsServer(ZONE, servfail=SERVFAIL, truncate=TRUNCATE).start()


def tearDownModule():
    if DNS is not None:
        DNS.stop()


def listening(addr, port):
    """Is there a TCP socket listening on ADDR:PORT (in this namespace's /proc/net/tcp*)?"""
    if ":" in addr:
        words = struct.unpack("=4I", socket.inet_pton(socket.AF_INET6, addr))
        local, table = "".join("%08X" % w for w in words), "/proc/net/tcp6"
    else:
        local, table = "%08X" % struct.unpack("=I", socket.inet_aton(addr))[0], "/proc/net/tcp"
    want = "%s:%04X" % (local, port)
    with open(table) as f:
        next(f)
        return any(line.split()[1] == want and line.split()[3] == "0A" for line in f)


class Sink:
    """Postfix's smtp-sink on ADDR:PORT, dumping each message into its own file in DIR."""

    def __init__(self, top, addr, port):
        root = os.environ[ROOT_ENV]
        self.addr, self.port = addr, port
        self.dir = os.path.join(top, "sink-%s-%d" % (addr.replace(":", "_"), port))
        os.mkdir(self.dir)
        os.chmod(self.dir, 0o777)          # smtp-sink writes as nobody
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
        if root != "/":
            env["LD_LIBRARY_PATH"] = os.path.join(root, "usr/lib/postfix")
        listen = "[%s]:%d" % (addr, port) if ":" in addr else "%s:%d" % (addr, port)
        self.err_path = self.dir + ".err"
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([os.path.join(root, "usr/sbin/smtp-sink"), "-u", "nobody",
                                          "-d", os.path.join(self.dir, "%M."), listen, "10"],
                                         env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=err)

    def wait_listening(self):
        ok = wait_until(lambda: self.proc.poll() is not None or listening(self.addr, self.port), START_TIMEOUT)
        if self.proc.poll() is not None or not ok:
            raise AssertionError("smtp-sink on %s:%d is not listening: %s" % (self.addr, self.port, self.stderr()))

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def messages(self):
        """The dumped messages, as text."""
        out = []
        for name in sorted(os.listdir(self.dir)):
            with open(os.path.join(self.dir, name), "rb") as f:
                out.append(f.read().decode(errors="replace"))
        return out

    def count(self):
        return len(os.listdir(self.dir))


class MxTestCase(DaemonTestCase):
    DAEMON = "tern-smtp"
    BINARY = SMTP
    SOCKET_NAME = "smtp"
    STDERR_NAME = "smtp.err"
    STDERR_APPEND = True                # a test that restarts tern-smtp keeps every process's stderr
    TMP_PREFIX = "tern-smtp-mx-"

    def setUp(self):
        super().setUp()
        os.chmod(self.tmp, 0o755)          # smtp-sink (as nobody) writes below it
        self.queue_file = os.path.join(self.tmp, "queuefile")
        p = subprocess.run([QUEUE_TOOL, "write", self.queue_file, "-f", "sender@example.com", "-r", RCPT],
                           input=CONTENT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.fd = os.open(self.queue_file, os.O_RDONLY | os.O_CLOEXEC)
        self.addCleanup(os.close, self.fd)
        self.sinks = []

    def tearDown(self):
        for s in self.sinks:
            s.stop()
        super().tearDown()

    # ---- helpers

    def start_smtp(self, **settings):
        conf = {"runtime_directory": self.rt, "queue_directory": os.path.join(self.tmp, "q"),
                "myhostname": "client.test", "inet_protocols": "ipv4", "smtp_connect_timeout": "2s",
                "max_use": 1000, "max_idle": "100s"}
        conf.update(settings)
        write_conf(self.conf_path, self.id(), conf)
        d = self.spawn([SMTP, "-c", self.conf_path], self.env())
        self.assertTrue(wait_until(lambda: os.path.exists(self.socket_path) or not d.running(), START_TIMEOUT))
        self.assertTrue(d.running(), d.stderr())
        return d

    def start_sink(self, addr, port=25):
        s = Sink(self.tmp, addr, port)
        self.sinks.append(s)
        s.wait_listening()
        return s

    def deliver(self, nexthop, conn=None):
        """One Deliver call for RCPT to NEXTHOP: the reply."""
        t0 = int(time.time() * 1000000) - 300000
        params = {"queueId": QID, "queueName": "active", "fd": 0, "dataOffset": 0, "size": len(CONTENT),
                  "nexthop": nexthop, "sender": "sender@example.com",
                  "recipients": [{"address": RCPT, "offset": 100}],
                  "arrivalTime": t0, "activeTime": t0 + 100000, "handoffTime": t0 + 200000}
        if conn is not None:
            return conn.call(DELIVER, params, fds=[self.fd])
        with varlink.connect(self.socket_path) as c:
            return c.call(DELIVER, params, fds=[self.fd])

    def assertResult(self, reply, status, dsn, text, relay):
        """REPLY holds one recipient with exactly STATUS, DSN, TEXT (a string or a compiled
        pattern that must match all of it) and RELAY."""
        self.assertEqual(len(reply["recipients"]), 1, reply)
        r = reply["recipients"][0]
        self.assertEqual((r["offset"], r["status"], r["dsn"], r["relay"]), (100, status, dsn, relay), reply)
        if isinstance(text, str):
            self.assertEqual(r["text"], text, reply)
        else:
            self.assertTrue(text.fullmatch(r["text"]), "%r does not match %r" % (r["text"], text.pattern))

    def wait_log(self, relay, dsn, status, text):
        """The agent's stderr shows Postfix's delivery line for RCPT."""
        pattern = re.compile(r"tern/smtp(\[\d+\])?: %s: to=<%s>, relay=%s, delay=[0-9.]+, "
                             r"delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+, dsn=%s, status=%s \(%s\)\n"
                             % (QID, re.escape(RCPT), re.escape(relay), re.escape(dsn), status, text))
        self.assertTrue(wait_until(lambda: pattern.search(self.stderr()), START_TIMEOUT),
                        "no %r in the agent's stderr:\n%s" % (pattern.pattern, self.stderr()))

    def wait_count(self, sink, n):
        self.assertTrue(wait_until(lambda: sink.count() >= n, START_TIMEOUT),
                        "smtp-sink on %s:%d got %d messages, not %d" % (sink.addr, sink.port, sink.count(), n))
        self.assertEqual(sink.count(), n)

    def assertSinkGotMessage(self, sink):
        self.wait_count(sink, 1)
        # the dump is complete once the file ends with the message and the empty line
        self.assertTrue(wait_until(lambda: sink.messages()[0].endswith("body of the mx test\n\n"), START_TIMEOUT),
                        sink.messages())
        m = sink.messages()[0]
        self.assertIn("\nX-Mail-Args: <sender@example.com>\n", m)
        self.assertIn("\nX-Rcpt-Args: <%s>\n" % RCPT, m)
        self.assertIn("\nSubject: mx test\n", m)


class MxLookup(MxTestCase):
    def test_01_mx_preference_order(self):
        """MX 10 mx1.test (nothing listens) then MX 20 mx2.test (smtp-sink): sent through mx2, and
        the refused connect logged as Postfix's info line."""
        sink = self.start_sink("127.0.0.3")
        self.start_smtp()
        first = len(DNS.queries)
        r = self.deliver("mx.test")
        self.assertResult(r, "sent", "2.0.0", SINK_OK, "mx2.test[127.0.0.3]:25")
        self.assertNotIn("hopStatus", r)
        self.wait_log("mx2.test[127.0.0.3]:25", "2.0.0", "sent", re.escape(SINK_OK))
        self.assertSinkGotMessage(sink)
        # the server passed over gets Postfix's info line, without a queue ID
        self.assertTrue(wait_until(lambda: "tern/smtp: connect to mx1.test[127.0.0.2]:25: Connection refused\n"
                                   in self.stderr(), START_TIMEOUT), self.stderr())
        # the MX records, then the hosts' addresses in preference order; never the domain's own
        asked = [q[1:] for q in DNS.queries[first:]]
        self.assertEqual(asked, [("mx.test", "MX"), ("mx1.test", "A"), ("mx2.test", "A")])

    def test_02_equal_preferences_random(self):
        """MX 10 a.test and MX 10 b.test: over 40 deliveries each gets some (P(fail) = 2^-39)."""
        a = self.start_sink("127.0.0.5")
        b = self.start_sink("127.0.0.6")
        self.start_smtp()
        relays = []
        with varlink.connect(self.socket_path) as c:
            for _ in range(40):
                r = self.deliver("equal.test", conn=c)
                self.assertEqual(r["recipients"][0]["status"], "sent", r)
                relays.append(r["recipients"][0]["relay"])
        self.assertEqual(set(relays), {"a.test[127.0.0.5]:25", "b.test[127.0.0.6]:25"}, relays)
        self.assertTrue(wait_until(lambda: a.count() + b.count() >= 40, START_TIMEOUT), (a.count(), b.count()))
        self.assertEqual((a.count(), b.count()), (relays.count("a.test[127.0.0.5]:25"),
                                                  relays.count("b.test[127.0.0.6]:25")))
        self.assertGreaterEqual(a.count(), 1)
        self.assertGreaterEqual(b.count(), 1)

    def test_03_no_mx_uses_address(self):
        """plain.test has no MX records, only an A record: delivered to plain.test itself."""
        sink = self.start_sink("127.0.0.4")
        self.start_smtp()
        r = self.deliver("plain.test")
        self.assertResult(r, "sent", "2.0.0", SINK_OK, "plain.test[127.0.0.4]:25")
        self.wait_log("plain.test[127.0.0.4]:25", "2.0.0", "sent", re.escape(SINK_OK))
        self.assertSinkGotMessage(sink)
        self.assertGreaterEqual(DNS.asked("plain.test", "MX"), 1)

    def test_04_null_mx_bounces(self):
        """MX 0 "." (RFC 7505): bounced at once, 5.1.0 as Postfix's smtp(8) says it, without an
        address lookup."""
        self.start_smtp()
        r = self.deliver("nullmx.test")
        text = "Domain nullmx.test does not accept mail (nullMX)"
        self.assertResult(r, "bounced", "5.1.0", text, "none")
        self.assertIn("does not accept mail (nullMX)", r["recipients"][0]["text"])
        self.assertNotIn("hopStatus", r)
        self.wait_log("none", "5.1.0", "bounced", re.escape(text))
        self.assertEqual(DNS.asked("nullmx.test", "A"), 0)

    def test_05_nxdomain_bounces(self):
        """nosuch.test does not exist: bounced, 5.4.4. As in Postfix, NXDOMAIN on the MX query
        counts as "no MX", the A record is asked for next, and the text names type=A."""
        self.start_smtp()
        r = self.deliver("nosuch.test")
        text = ("Host or domain name not found. Name service error for name=nosuch.test type=A: "
                "Host not found")
        self.assertResult(r, "bounced", "5.4.4", text, "none")
        self.assertNotIn("hopStatus", r)
        self.wait_log("none", "5.4.4", "bounced", re.escape(text))

    def test_06_servfail_defers(self):
        """SERVFAIL for the MX query: deferred, 4.4.3 "... try again", with a hop status."""
        self.start_smtp()
        r = self.deliver("servfail.test")
        text = ("Host or domain name not found. Name service error for name=servfail.test type=MX: "
                "Host not found, try again")
        self.assertResult(r, "deferred", "4.4.3", text, "none")
        self.assertEqual(r.get("hopStatus"), {"dsn": "4.4.3", "text": text}, r)
        self.wait_log("none", "4.4.3", "deferred", re.escape(text))

    def test_07_mx_host_without_address(self):
        """MX 10 noaddr.test, and noaddr.test does not exist: by default (Postfix's
        smtp_defer_if_no_mx_address_found = no) a bounce with the host's name service error;
        with smtp_defer_if_no_mx_address_found = yes, deferred 4.4.4."""
        d = self.start_smtp()
        r = self.deliver("noaddr-mx.test")
        text = ("Host or domain name not found. Name service error for name=noaddr.test type=A: "
                "Host not found")
        self.assertResult(r, "bounced", "5.4.4", text, "none")
        self.assertNotIn("hopStatus", r)
        self.assertEqual(d.stop(), 0, d.stderr())

        # tern's own text (smtp-resolve.c); Postfix keeps the host's name service error as the
        # text, turns its 5.4.4 into 4.4.4, and logs "no MX host ..." as a warning
        self.start_smtp(smtp_defer_if_no_mx_address_found="yes")
        r = self.deliver("noaddr-mx.test")
        text = "no MX host for noaddr-mx.test has a valid address record"
        self.assertResult(r, "deferred", "4.4.4", text, "none")
        self.assertEqual(r.get("hopStatus"), {"dsn": "4.4.4", "text": text}, r)
        self.wait_log("none", "4.4.4", "deferred", re.escape(text))

    def test_08_mx_target_behind_cname_chain(self):
        """cname.test MX -> mxalias.test CNAME mxalias2.test CNAME mx2.test A: followed."""
        sink = self.start_sink("127.0.0.3")
        self.start_smtp()
        r = self.deliver("cname.test")
        # the server is named as the MX record names it (Postfix's smtp_cname_overrides_servername = no)
        self.assertResult(r, "sent", "2.0.0", SINK_OK, "mxalias.test[127.0.0.3]:25")
        self.assertSinkGotMessage(sink)
        self.assertGreaterEqual(DNS.asked("mxalias.test", "A"), 1)

    def test_09_mx_address_limit(self):
        """smtp_mx_address_limit = 1: only the dead preferred MX is tried, and the mail is deferred."""
        sink = self.start_sink("127.0.0.3")
        self.start_smtp(smtp_mx_address_limit=1)
        r = self.deliver("mx.test")
        text = "connect to mx1.test[127.0.0.2]:25: Connection refused"
        self.assertResult(r, "deferred", "4.4.1", text, "none")
        self.assertEqual(r.get("hopStatus"), {"dsn": "4.4.1", "text": text}, r)
        self.wait_log("none", "4.4.1", "deferred", re.escape(text))
        self.assertEqual(sink.count(), 0)

    def test_10_truncated_udp_answer_retried_over_tcp(self):
        """The server answers TC over UDP for tc.test and tcmx.test: glibc asks again over TCP."""
        sink = self.start_sink("127.0.0.3")
        self.start_smtp()
        r = self.deliver("tc.test")
        self.assertResult(r, "sent", "2.0.0", SINK_OK, "tcmx.test[127.0.0.3]:25")
        self.assertSinkGotMessage(sink)
        for name, qtype in (("tc.test", "MX"), ("tcmx.test", "A")):
            asked = [q for q in DNS.queries if q[1:] == (name, qtype)]
            self.assertGreaterEqual(DNS.asked(name, qtype, "udp"), 1, asked)
            self.assertGreaterEqual(DNS.asked(name, qtype, "tcp"), 1, asked)

    def test_11_port_in_nexthop(self):
        """mx.test:2525: the MX hosts, on port 2525."""
        sink = self.start_sink("127.0.0.3", 2525)
        self.start_smtp()
        r = self.deliver("mx.test:2525")
        self.assertResult(r, "sent", "2.0.0", SINK_OK, "mx2.test[127.0.0.3]:2525")
        self.wait_log("mx2.test[127.0.0.3]:2525", "2.0.0", "sent", re.escape(SINK_OK))
        self.assertSinkGotMessage(sink)

    def test_12_ipv6_only_mx_host(self):
        """MX 10 mx6.test with only an AAAA record (::1): with inet_protocols = all, delivered over
        IPv6; with ipv4 only, the host has no usable address (a bounce, as Postfix by default)."""
        sink = self.start_sink("::1")
        d = self.start_smtp(inet_protocols="all")
        r = self.deliver("v6.test")
        self.assertResult(r, "sent", "2.0.0", SINK_OK, "mx6.test[::1]:25")
        self.assertSinkGotMessage(sink)
        self.assertGreaterEqual(DNS.asked("mx6.test", "AAAA"), 1)
        self.assertEqual(d.stop(), 0, d.stderr())

        # (the text's end, NODATA's wording, is test_13's)
        self.start_smtp(inet_protocols="ipv4")
        r = self.deliver("v6.test")
        self.assertResult(r, "bounced", "5.4.4", re.compile(r"Host or domain name not found\. Name service error "
                                                            r"for name=mx6\.test type=A: .*"), "none")
        self.assertEqual(sink.count(), 1)

    def test_13_no_mx_no_address_nodata(self):
        """nodata.test exists with neither MX nor A records (NODATA, not NXDOMAIN): bounced 5.4.4
        with Postfix's text for NO_DATA (dns_strerror(): "Host found but no data record of
        requested type"), as Postfix logs it for a domain without MX and A records."""
        self.start_smtp()
        r = self.deliver("nodata.test")
        text = ("Host or domain name not found. Name service error for name=nodata.test type=A: "
                "Host found but no data record of requested type")
        self.assertResult(r, "bounced", "5.4.4", text, "none")
        self.assertGreaterEqual(DNS.asked("nodata.test", "MX"), 1)
        self.assertGreaterEqual(DNS.asked("nodata.test", "A"), 1)


if __name__ == "__main__":
    if os.environ.get(INNER_ENV) != "1":
        sys.exit(outer_main())
    top = tempfile.mkdtemp(prefix="tern-smtp-mx-ns-")
    try:
        why = enter_namespace(top)
        if why:
            sys.exit(skip(why))
        unittest.main(verbosity=2)
    finally:
        shutil.rmtree(top, True)
