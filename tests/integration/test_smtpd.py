# SPDX-License-Identifier: MIT
"""tern-smtpd (Postfix's smtpd(8)) over real TCP on loopback, with a temporary spool.

tern-smtpd is started by hand on a free 127.0.0.1 port (smtpd_listen) or under
`systemd-socket-activate -l 127.0.0.1:PORT`, and driven by raw sockets in this process, by swaks
and by Postfix's own smtp-source; the queue files it writes are read back with Postfix's own
postcat (Debian's postfix package unpacked by tools/fetch-postfix.sh into BUILD/postfix-root, or
$POSTCAT_ROOT, or an installed /usr/sbin). Every address is in .test/.example or a loopback
literal, every nexthop is [127.0.0.1]:PORT: nothing here can reach the network (the client's name
is looked up as tern-smtpd does it, for 127.0.0.1, which /etc/hosts answers).

What is tested (numbered as the methods are):
  1. the ESMTP dialogue, each reply exact: the greeting (smtpd_banner), the EHLO keywords and
     smtpd_discard_ehlo_keywords, HELO, MAIL (SIZE, BODY, RET, ENVID), RCPT (NOTIFY, ORCPT),
     DATA, RSET, NOOP, VRFY (252; 502 with disable_vrfy_command), HELP, QUIT, an unknown
     command, commands out of order (503), smtpd_helo_required (MAIL and ETRN), SIZE over
     message_size_limit and content over it (552);
  2. the queue file, read with postcat: sender, recipients, Postfix smtpd's Received: header
     (one and two recipients, ESMTP and SMTP), the log_* and DSN attributes, the body byte for
     byte (dot-unstuffing, a 5000-byte line and header with line_length_limit = 100, 8-bit bytes,
     a lone CR, lines around the piece length in 1-byte writes), Message-Id:/Date:/From: added
     for a loopback client and not for a remote one (local_header_rewrite_clients), the HELO
     name neutered as Postfix does it;
  3. relay control from outside mynetworks for every address form (percent hack, source
     route, quoted local part, bang paths, address literals): 554 with reject_unauth_destination,
     454 with the default defer_unauth_destination, Postfix's NOQUEUE log line, and no queue file
     holding a remote recipient; from inside mynetworks everything is accepted;
  4. bad input: a pipelined transaction split at every byte (fresh connections) and sent a byte at
     a time; over-long command lines; 32 MB without LF; NUL bytes; non-ASCII addresses;
     unbalanced '<'; 10,000 RCPTs; the recipient overshoot; a client stalling mid-DATA
     (smtpd_timeout), one that never speaks, one disconnecting mid-DATA; ETRN arguments;
     smtpd_hard_error_limit and smtpd_soft_error_limit; smtpd_forbid_bare_newline normalize,
     reject (and its exclusions), no; two transactions in one write; replies queued behind a
     client that reads slowly; 300 clients that connect and vanish. After each the server still
     serves a new session, nothing half-received is queued, no temporary file is left;
  5. limits: 150 concurrent sessions with default_process_limit = 100 (the rest wait in the
     backlog and are served later); smtpd_client_connection_count_limit;
  6. real clients: swaks, Postfix's smtp-source (50 messages, 50 queue files);
  7. the whole path tern-smtpd -> tern-qmgr (triggered by tern-smtpd) -> tern-smtp -> smtp-sink;
  8. under systemd-socket-activate: the passed socket is served (and nothing else bound), the
     dialogue works, SIGTERM with a session open stops it cleanly; a UNIX socket is refused;
  9. configuration errors stop the daemon at start, naming the parameter;
 10. a full spool (a tmpfs in a private mount namespace; root only): 451 at the end of DATA, no
     250, nothing left, and the next small message still fits.
Every daemon must exit 0 on SIGTERM with no sanitizer report (harness.py), and no temporary file
may be left in incoming/ when a test ends.

Five methods began as failing tests of differences from Postfix, since fixed in tern-smtpd:
test_02f_helo_name_neutered, test_04h_recipient_overshoot, test_04q_replies_before_quit_are_kept,
test_04s_soft_error_limit, test_09c_missing_table.

Binaries: $TERN_SMTPD, $TERN_QMGR, $TERN_SMTP; $TERN_BUILD_ROOT for postfix-root.
"""
import concurrent.futures
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import (SOURCE_ROOT, SANITIZER_RE, START_TIMEOUT, EXIT_TIMEOUT,  # noqa: E402
                     DaemonTestCase, base_env, find_postfix_root, write_conf, write_queue_conf,
                     wait_until)
from test_postcat import PostfixEnv  # noqa: E402

BUILD_ROOT = os.environ.get("TERN_BUILD_ROOT", os.path.join(SOURCE_ROOT, "build"))
SMTPD = os.environ.get("TERN_SMTPD", os.path.join(BUILD_ROOT, "src", "smtpd", "tern-smtpd"))
QMGR = os.environ.get("TERN_QMGR", os.path.join(BUILD_ROOT, "src", "qmgr", "tern-qmgr"))
SMTP = os.environ.get("TERN_SMTP", os.path.join(BUILD_ROOT, "src", "smtp", "tern-smtp"))

POSTFIX_ROOT = find_postfix_root("postcat")
SINK_ROOT = find_postfix_root("smtp-sink")
SOURCE_ROOT_PF = find_postfix_root("smtp-source")
SWAKS = "/usr/bin/swaks"

LOOP = "127.0.0.1"
HOST = "mail.test"
BANNER = "220 mail.test ESMTP tern"
EHLO_REPLY = ("250-mail.test\n250-PIPELINING\n250-SIZE 10240000\n250-VRFY\n250-ETRN\n"
              "250-ENHANCEDSTATUSCODES\n250-8BITMIME\n250 DSN")
CLIENT_TIMEOUT = 20.0
QUEUED_RE = re.compile(r"^250 2\.0\.0 Ok: queued as ([0-9A-Za-z]{10,})$")
DATE_RE = r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000 \(UTC\)"
QID_RE = r"[0-9A-Za-z]{10,}"


def client_name(addr=LOOP):
    """The name tern-smtpd gives ADDR (as Postfix: the PTR name if it resolves back to ADDR, else
    "unknown"); for 127.0.0.1 /etc/hosts answers, normally "localhost"."""
    try:
        name = socket.getnameinfo((addr, 0), socket.NI_NAMEREQD)[0]
        found = {a[4][0] for a in socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)}
    except OSError:
        return "unknown"
    return name.lower() if addr in found else "unknown"


CLIENT = client_name()
NAMADDR = "%s[%s]" % (CLIENT, LOOP)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOP, 0))
        return s.getsockname()[1]


def tcp_states(port):
    """The states (hex, /proc/net/tcp) of the sockets whose local end is 127.0.0.1:PORT."""
    want = "%08X:%04X" % (struct.unpack("=I", socket.inet_aton(LOOP))[0], port)
    with open("/proc/net/tcp") as f:
        next(f)
        return [w[3] for w in (line.split() for line in f) if w[1] == want]


def listening(port):
    return "0A" in tcp_states(port)


def vm_rss(pid):
    """The resident memory of process PID, in bytes."""
    with open("/proc/%d/status" % pid) as f:
        return int(next(x for x in f if x.startswith("VmRSS:")).split()[1]) * 1024


def postfix_env(root):
    """LD_LIBRARY_PATH for the programs of an unpacked postfix package."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
    if root != "/":
        env["LD_LIBRARY_PATH"] = os.path.join(root, "usr/lib/postfix")
    return env


# ---- an SMTP client on a raw socket ----------------------------------------------------------------

class Client:
    """One TCP connection to tern-smtpd: bytes out, reply lines in."""

    def __init__(self, port, timeout=CLIENT_TIMEOUT, connect=True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.buf = b""
        if connect:
            self.sock.connect((LOOP, port))

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data.encode("latin-1") if isinstance(data, str) else data)

    def line(self):
        """The next reply line without its CRLF; EOFError when the server has closed."""
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("connection closed; pending %r" % self.buf)
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        if not line.endswith(b"\r"):
            raise AssertionError("reply line without CR: %r" % line)
        return line[:-1].decode("latin-1")

    def reply(self):
        """One whole reply, its lines joined with "\\n"."""
        lines = [self.line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self.line())
        return "\n".join(lines)

    def replies(self, n):
        return [self.reply() for _ in range(n)]

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def rest(self):
        """Everything up to the server's close (a reset counts as a close)."""
        out = self.buf
        self.buf = b""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                out += data
        except ConnectionResetError:
            pass
        return out.decode("latin-1")

    def closed(self):
        """Has the server closed the connection (nothing more to read)?"""
        return self.rest() == ""


def lines_of(replies):
    """Replies as CRLF lines, for comparing whole conversations."""
    return "".join(r.replace("\n", "\r\n") + "\r\n" for r in replies)


# ---- smtp-sink, for the whole path -----------------------------------------------------------------

class Sink:
    """Postfix's smtp-sink on 127.0.0.1:PORT, dumping each message into DIR (-d DIR/%M.)."""

    def __init__(self, top):
        self.port = free_port()
        self.dir = os.path.join(top, "sink")
        os.mkdir(self.dir)
        os.chmod(self.dir, 0o777)          # smtp-sink writes as nobody
        argv = [os.path.join(SINK_ROOT, "usr/sbin/smtp-sink"), "-d", os.path.join(self.dir, "%M.")]
        if os.geteuid() == 0:
            argv += ["-u", "nobody"]
        argv += ["%s:%d" % (LOOP, self.port), "100"]
        self.err_path = os.path.join(top, "sink.err")
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(argv, env=postfix_env(SINK_ROOT), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err)
        ok = wait_until(lambda: self.proc.poll() is not None or listening(self.port), START_TIMEOUT)
        if self.proc.poll() is not None or not ok:
            self.stop()
            with open(self.err_path, "rb") as f:
                raise AssertionError("smtp-sink is not listening: %s" % f.read().decode(errors="replace"))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def dumps(self):
        """Every complete dump (smtp-sink ends one with an empty line)."""
        out = []
        for n in sorted(os.listdir(self.dir)):
            with open(os.path.join(self.dir, n), "rb") as f:
                out.append(f.read())
        return [d for d in out if d.endswith(b"\n\n")]


# ---- the tests' base --------------------------------------------------------------------------------

class SmtpdTestCase(DaemonTestCase):
    TMP_PREFIX = "tern-smtpd-it-"
    DAEMON = "tern-smtpd"
    BINARY = SMTPD
    SOCKET_NAME = "qmgr"
    STDERR_NAME = "daemons.err"
    STDERR_APPEND = True
    SETTINGS = {}               # a class's own main.cf settings (over the base ones)

    def setUp(self):
        super().setUp()
        os.chmod(self.tmp, 0o755)
        self.spool = os.path.join(self.tmp, "spool")
        os.mkdir(self.spool)
        self.port = free_port()
        self.clients = []
        self.pf = None

    def tearDown(self):
        for c in self.clients:
            c.close()
        super().tearDown()
        # every daemon stopped: nothing half-received may stay behind
        self.assertEqual(self.temp_files(), [], "temporary files left in incoming/")

    # ---- main.cf and the daemon

    def settings(self, extra):
        conf = {"queue_directory": self.spool, "runtime_directory": self.rt, "myhostname": HOST,
                "mydestination": HOST, "relay_domains": "relay.test",
                "smtpd_listen": "%s:%d" % (LOOP, self.port), "smtpd_error_sleep_time": "0"}
        conf.update(self.SETTINGS)
        conf.update(extra)
        return conf

    def configure(self, **extra):
        write_conf(self.conf_path, self.id(), self.settings(extra))

    def start(self, **extra):
        """tern-smtpd by hand with the base settings, the class's SETTINGS and EXTRA; once it listens."""
        self.configure(**extra)
        d = self.spawn([SMTPD, "-c", self.conf_path], self.env())
        self.assertTrue(wait_until(lambda: listening(self.port) or not d.running(), START_TIMEOUT),
                        "tern-smtpd does not listen on %d:\n%s" % (self.port, self.stderr()))
        self.assertTrue(d.running(), self.stderr())
        return d

    def connect(self, greeting=BANNER, port=None):
        """A new session, its greeting checked (unless GREETING is None)."""
        c = Client(port or self.port)
        self.clients.append(c)
        if greeting is not None:
            self.assertEqual(c.reply(), greeting)
        return c

    # ---- the spool

    def walk(self, queue="incoming"):
        out = []
        for top, _, names in os.walk(os.path.join(self.spool, queue)):
            out += [os.path.join(top, n) for n in names]
        return out

    def queued(self, queue="incoming"):
        """The queue IDs of the finished files in QUEUE."""
        return sorted(os.path.basename(p) for p in self.walk(queue) if re.fullmatch(QID_RE, os.path.basename(p)))

    def temp_files(self):
        return sorted(os.path.basename(p) for p in self.walk("incoming") if "." in os.path.basename(p))

    def path_of(self, qid):
        paths = [p for p in self.walk("incoming") if os.path.basename(p) == qid]
        self.assertEqual(len(paths), 1, "queue file %s: %r" % (qid, paths))
        return paths[0]

    def assertClean(self):
        """Every session has ended and left no temporary file; then a new one still works."""
        self.assertTrue(wait_until(lambda: not self.temp_files(), START_TIMEOUT),
                        "temporary files left: %r" % self.temp_files())
        self.assertServing()

    def assertServing(self):
        """A new session can still queue a message."""
        before = len(self.queued())
        qid = self.send_message(b"Subject: still serving\r\n\r\nyes\r\n")
        self.assertIn(qid, self.queued())
        self.assertEqual(len(self.queued()), before + 1)

    # ---- whole transactions

    def send_message(self, wire, sender="s@client.test", rcpts=("u@mail.test",), helo="EHLO client.test",
                     mail_params="", rcpt_params=None, quit=True):
        """One transaction in a new session, each reply checked; WIRE is the content as sent
        (dot-stuffed by the caller), without the final ".". The queue ID."""
        c = self.connect()
        self.assertTrue(c.cmd(helo).startswith("250"))
        self.assertEqual(c.cmd("MAIL FROM:<%s>%s" % (sender, mail_params)), "250 2.1.0 Ok")
        for i, r in enumerate(rcpts):
            params = rcpt_params[i] if rcpt_params else ""
            self.assertEqual(c.cmd("RCPT TO:<%s>%s" % (r, params)), "250 2.1.5 Ok")
        self.assertEqual(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>")
        c.send(wire + b".\r\n")
        m = QUEUED_RE.match(c.reply())
        self.assertTrue(m, "no queue ID")
        if quit:
            self.assertEqual(c.cmd("QUIT"), "221 2.0.0 Bye")
            self.assertTrue(c.closed())
        return m.group(1)

    # ---- the log

    def wait_log(self, pattern, count=1, timeout=START_TIMEOUT):
        rx = re.compile(pattern, re.M)
        self.assertTrue(wait_until(lambda: len(rx.findall(self.stderr())) >= count, timeout),
                        "not %d lines like %r in the log:\n%s" % (count, pattern, self.stderr()[-4000:]))

    # ---- postcat

    def postcat(self, qid, *options):
        """postcat OPTIONS on queue file QID: its output (bytes)."""
        if POSTFIX_ROOT is None:
            self.skipTest("postcat not found and Debian's postfix package not fetchable")
        if self.pf is None:
            self.pf = PostfixEnv(POSTFIX_ROOT, os.path.join(self.tmp, "postfix"))
            # Postfix waits (up to 2 s) for a main.cf modified within the last second to settle
            old = time.time() - 60
            os.utime(os.path.join(self.pf.cf, "main.cf"), (old, old))
        p = self.pf.run("postcat", "-c", self.pf.cf, *options, self.path_of(qid))
        self.assertEqual((p.returncode, p.stderr), (0, b""), "postcat %s" % (options,))
        return p.stdout

    def envelope(self, qid):
        """postcat -e's envelope lines, after the message_size line (which is checked)."""
        out = self.postcat(qid, "-e").decode()
        lines = out.split("\n")
        self.assertEqual(lines[0], "*** ENVELOPE RECORDS %s ***" % self.path_of(qid))
        self.assertRegex(lines[1], r"^message_size: +\d+ +\d+ +\d+ +0 +\d+ +0$")
        self.assertRegex(lines[2], r"^message_arrival_time: \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$")
        self.assertRegex(lines[3], r"^create_time: \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$")
        end = lines.index("*** MESSAGE CONTENTS %s ***" % self.path_of(qid))
        return lines[4:end]

    def recipients(self, qid):
        return [x[len("recipient: "):] for x in self.envelope(qid) if x.startswith("recipient: ")]


# ---- 1: the dialogue ------------------------------------------------------------------------------------

class Dialogue(SmtpdTestCase):
    def test_01a_greeting_ehlo_helo(self):
        """smtpd_banner, Postfix's EHLO keyword list in its order, HELO's one line, EHLO/HELO
        without an argument, QUIT closing the connection; Postfix's connect/disconnect lines."""
        self.start()
        c = self.connect()
        self.assertEqual(c.cmd("EHLO client.test"), EHLO_REPLY)
        self.assertEqual(c.cmd("HELO client.test"), "250 mail.test")
        self.assertEqual(c.cmd("EHLO"), "501 Syntax: EHLO hostname")
        self.assertEqual(c.cmd("HELO"), "501 Syntax: HELO hostname")
        self.assertEqual(c.cmd("ehlo other.test"), EHLO_REPLY)
        self.assertEqual(c.cmd("QUIT"), "221 2.0.0 Bye")
        self.assertTrue(c.closed())
        self.wait_log(r"^tern/smtpd: disconnect from %s helo=1/2 ehlo=2/3 quit=1 commands=4/6$"
                      % re.escape(NAMADDR))
        self.assertIn("tern/smtpd: connect from %s\n" % NAMADDR, self.stderr())

        # another banner and size
        self.daemons[0].stop()
        self.start(smtpd_banner="$myhostname ESMTP ready", message_size_limit="0")
        c = self.connect("220 mail.test ESMTP ready")
        self.assertEqual(c.cmd("EHLO client.test"), EHLO_REPLY.replace("SIZE 10240000", "SIZE"))

    def test_01b_discard_ehlo_keywords(self):
        """smtpd_discard_ehlo_keywords takes keywords out of the EHLO reply (any case); with all
        of them gone the reply is one line."""
        self.start(smtpd_discard_ehlo_keywords="pipelining, DSN, etrn, 8bitmime")
        c = self.connect()
        self.assertEqual(c.cmd("EHLO client.test"),
                         "250-mail.test\n250-SIZE 10240000\n250-VRFY\n250 ENHANCEDSTATUSCODES")
        c.close()
        self.daemons[0].stop()
        self.start(smtpd_discard_ehlo_keywords="pipelining size vrfy etrn enhancedstatuscodes 8bitmime dsn")
        c = self.connect()
        self.assertEqual(c.cmd("EHLO client.test"), "250 mail.test")

    def test_01c_transaction(self):
        """A whole transaction with every ESMTP parameter, one command at a time, and the other
        commands in between: RSET (the transaction is gone), NOOP, VRFY, HELP."""
        self.start()
        c = self.connect()
        self.assertEqual(c.cmd("EHLO client.test"), EHLO_REPLY)
        self.assertEqual(c.cmd("NOOP"), "250 2.0.0 Ok")
        self.assertEqual(c.cmd("VRFY u@mail.test"), "252 2.0.0 Send some mail, I'll try my best")
        self.assertEqual(c.cmd("VRFY"), "501 5.5.4 Syntax: VRFY address")
        self.assertEqual(c.cmd("HELP"),
                         "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY ETRN HELP")
        self.assertEqual(c.cmd("MAIL FROM:<first@client.test>"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("RCPT TO:<gone@mail.test>"), "250 2.1.5 Ok")
        self.assertEqual(c.cmd("RSET"), "250 2.0.0 Ok")
        self.assertEqual(c.cmd("RSET now"), "501 5.5.4 Syntax: RSET")
        self.assertEqual(c.cmd("DATA"), "503 5.5.1 Error: need RCPT command")
        self.assertEqual(c.cmd("MAIL FROM:<s@client.test> SIZE=300 BODY=8BITMIME RET=HDRS ENVID=env+2Bid"),
                         "250 2.1.0 Ok")
        self.assertEqual(c.cmd("RCPT TO:<u@mail.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;orig+2Bu@mail.test"),
                         "250 2.1.5 Ok")
        self.assertEqual(c.cmd("RCPT TO:<v@relay.test> NOTIFY=NEVER"), "250 2.1.5 Ok")
        self.assertEqual(c.cmd("NOOP"), "250 2.0.0 Ok")
        self.assertEqual(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>")
        c.send(b"Subject: transaction\r\n\r\n..dot\r\nplain\r\n.\r\n")
        m = QUEUED_RE.match(c.reply())
        self.assertTrue(m)
        self.assertEqual(c.cmd("NOOP"), "250 2.0.0 Ok")
        self.assertEqual(c.cmd("QUIT"), "221 2.0.0 Bye")
        self.assertTrue(c.closed())
        self.assertEqual(self.queued(), [m.group(1)])
        self.wait_log(r"^tern/smtpd: disconnect from %s ehlo=1 mail=2 rcpt=3 data=1/2 rset=1/2 noop=3 vrfy=1/2 "
                      r"help=1 quit=1 commands=14/17$" % re.escape(NAMADDR))
        self.assertRegex(self.stderr(), r"(?m)^tern/smtpd: %s: client=%s$" % (m.group(1), re.escape(NAMADDR)))
        if POSTFIX_ROOT:
            self.assertEqual(self.recipients(m.group(1)), ["u@mail.test", "v@relay.test"])
            self.assertEqual(self.postcat(m.group(1), "-b"), b"\n.dot\nplain\n")

    def test_01d_out_of_order_and_unknown(self):
        """503 for RCPT before MAIL, DATA before MAIL, MAIL inside a transaction; 554 for DATA
        after MAIL without a recipient (Postfix's "no valid recipients"); 502 for an unknown
        command; the session goes on and a transaction still works."""
        self.start()
        c = self.connect()
        self.assertEqual(c.cmd("RCPT TO:<u@mail.test>"), "503 5.5.1 Error: need MAIL command")
        self.assertEqual(c.cmd("DATA"), "503 5.5.1 Error: need RCPT command")
        self.assertEqual(c.cmd("XYZZY plugh"), "502 5.5.2 Error: command not recognized")
        self.assertEqual(c.cmd(""), "502 5.5.2 Error: command not recognized")
        self.assertEqual(c.cmd("MAIL FROM:<s@client.test>"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("MAIL FROM:<s@client.test>"), "503 5.5.1 Error: nested MAIL command")
        self.assertEqual(c.cmd("DATA"), "554 5.5.1 Error: no valid recipients")
        self.assertEqual(c.cmd("RCPT TO:<u@mail.test>"), "250 2.1.5 Ok")
        self.assertEqual(c.cmd("DATA extra"), "501 5.5.4 Syntax: DATA")
        self.assertEqual(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>")
        c.send(b"Subject: after errors\r\n\r\nbody\r\n.\r\n")
        self.assertRegex(c.reply(), QUEUED_RE)
        self.assertEqual(len(self.queued()), 1)

    def test_01e_vrfy_disabled(self):
        """disable_vrfy_command = yes: VRFY is not announced and gets 502 5.5.1."""
        self.start(disable_vrfy_command="yes")
        c = self.connect()
        self.assertEqual(c.cmd("EHLO client.test"), EHLO_REPLY.replace("250-VRFY\n", ""))
        self.assertEqual(c.cmd("VRFY u@mail.test"), "502 5.5.1 VRFY command is disabled")
        self.assertEqual(c.cmd("VRFY"), "502 5.5.1 VRFY command is disabled")

    def test_01f_helo_required(self):
        """smtpd_helo_required = yes: MAIL and ETRN before HELO/EHLO get 503 (MAIL's with 5.5.1,
        ETRN's without, as Postfix); after HELO both proceed."""
        self.start(smtpd_helo_required="yes")
        c = self.connect()
        self.assertEqual(c.cmd("MAIL FROM:<s@client.test>"), "503 5.5.1 Error: send HELO/EHLO first")
        self.assertEqual(c.cmd("ETRN relay.test"), "503 Error: send HELO/EHLO first")
        self.assertEqual(c.cmd("NOOP"), "250 2.0.0 Ok")
        self.assertEqual(c.cmd("HELO client.test"), "250 mail.test")
        self.assertEqual(c.cmd("MAIL FROM:<s@client.test>"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("RSET"), "250 2.0.0 Ok")
        # no tern-flush runs: the ETRN gets as far as asking it
        self.assertEqual(c.cmd("ETRN relay.test"), "458 Unable to queue messages")

    def test_01g_message_size_limit(self):
        """message_size_limit = 2000: announced, a larger SIZE= refused (552 5.3.4) and the
        transaction not started; content over the limit refused at its end, nothing queued."""
        self.start(message_size_limit="2000")
        c = self.connect()
        self.assertEqual(c.cmd("EHLO client.test"), EHLO_REPLY.replace("SIZE 10240000", "SIZE 2000"))
        self.assertEqual(c.cmd("MAIL FROM:<s@client.test> SIZE=2001"),
                         "552 5.3.4 Message size exceeds fixed limit")
        self.assertEqual(c.cmd("RCPT TO:<u@mail.test>"), "503 5.5.1 Error: need MAIL command")
        self.assertEqual(c.cmd("MAIL FROM:<s@client.test> SIZE=2000"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("RCPT TO:<u@mail.test>"), "250 2.1.5 Ok")
        self.assertEqual(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>")
        c.send(b"Subject: big\r\n\r\n" + b"0123456789" * 300 + b"\r\n.\r\n")
        self.assertEqual(c.reply(), "552 5.3.4 Message size exceeds fixed limit")
        self.assertEqual(c.cmd("NOOP"), "250 2.0.0 Ok")
        self.assertEqual(self.queued(), [])
        self.assertClean()


# ---- 2: the queue file ----------------------------------------------------------------------------------

@unittest.skipIf(POSTFIX_ROOT is None, "postcat not found and Debian's postfix package not fetchable")
class QueueFile(SmtpdTestCase):
    def received(self, qid):
        """The queue file's header lines (postcat -h), and the date of its Received: header."""
        headers = self.postcat(qid, "-h").decode("latin-1").split("\n")
        m = re.search(r"(?:; |^\t)(%s)$" % DATE_RE, "\n".join(headers[:3]), re.M)
        self.assertTrue(m, headers[:3])
        return headers, m.group(1)

    def test_02a_envelope_esmtp_one_recipient(self):
        """Sender, the log_* attributes, envelope_id and ret_flags, dsn_orig_rcpt and notify_flags
        (Postfix's numbers: RET=HDRS 2, NOTIFY=SUCCESS,FAILURE 2|8), the recipient; smtpd's
        Received: header for one recipient ("for <rcpt>"), then the message's headers and the
        three added ones in Postfix's order."""
        self.start()
        qid = self.send_message(b"Subject: envelope\r\nTo: u@mail.test\r\n\r\nbody\r\n",
                                mail_params=" SIZE=100 BODY=8BITMIME RET=HDRS ENVID=env+2Bid",
                                rcpt_params=[" NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;orig+2Bu@mail.test"])
        self.assertEqual(self.envelope(qid), [
            "sender: s@client.test",
            "named_attribute: log_client_name=%s" % CLIENT,
            "named_attribute: log_client_address=127.0.0.1",
            "named_attribute: log_message_origin=%s" % NAMADDR,
            "named_attribute: log_helo_name=client.test",
            "named_attribute: log_protocol_name=ESMTP",
            "named_attribute: envelope_id=env+id",
            "named_attribute: ret_flags=2",
            "named_attribute: dsn_orig_rcpt=rfc822;orig+u@mail.test",
            "named_attribute: notify_flags=10",
            "recipient: u@mail.test",
        ])
        headers, date = self.received(qid)
        stamp = time.strftime("%Y%m%d%H%M%S", time.strptime(date[5:25], "%d %b %Y %H:%M:%S"))
        self.assertEqual(headers, [
            "Received: from client.test (%s [127.0.0.1])" % CLIENT,
            "\tby mail.test (tern) with ESMTP id %s" % qid,
            "\tfor <u@mail.test>; %s" % date,
            "Subject: envelope",
            "To: u@mail.test",
            "Message-Id: <%s.%s@mail.test>" % (stamp, qid),
            "Date: %s" % date,
            "From: s@client.test",
            "",
        ])
        self.assertEqual(self.postcat(qid, "-b"), b"\nbody\n")

    def test_02b_helo_two_recipients(self):
        """HELO: protocol SMTP; two recipients: the Received: header has no "for" clause and ends
        its "by" line with ';'; the null sender; headers the client sent are kept, none added."""
        self.start()
        qid = self.send_message(b"From: <x@client.test>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
                                b"Message-ID: <own@client.test>\r\n\r\nb\r\n",
                                sender="", rcpts=("one@mail.test", "two@relay.test"), helo="HELO old.client.test")
        env = self.envelope(qid)
        self.assertEqual(env[0], "sender: ")
        self.assertIn("named_attribute: log_protocol_name=SMTP", env)
        self.assertIn("named_attribute: log_helo_name=old.client.test", env)
        self.assertEqual(self.recipients(qid), ["one@mail.test", "two@relay.test"])
        headers, date = self.received(qid)
        self.assertEqual(headers, [
            "Received: from old.client.test (%s [127.0.0.1])" % CLIENT,
            "\tby mail.test (tern) with SMTP id %s;" % qid,
            "\t%s" % date,
            "From: <x@client.test>",
            "Date: Mon, 1 Jan 2024 00:00:00 +0000",
            "Message-ID: <own@client.test>",
            "",
        ])

    def test_02c_body_byte_for_byte(self):
        """The body as sent, byte for byte: dot-unstuffed lines (".x", "..", a line that is only
        "."), a 5000-byte line and a 5000-byte header with line_length_limit = 100 (content lines
        are never cut), 8-bit bytes, a CR inside a line, blank and white-space lines."""
        self.start(line_length_limit="100")
        long_line = bytes(0x61 + i % 26 for i in range(5000))
        wire = (b"Subject: bytes\r\nX-Long: " + long_line + b"\r\n\r\n"
                b"..leading dot\r\n...\r\n..\r\n" + long_line + b"\r\n"
                b"caf\xc3\xa9 \xff\xfe\x80\r\nmid\rCR\r\n\r\n \t \r\nlast\r\n")
        qid = self.send_message(wire)
        # (postcat -b alone cannot be used: after a header line in L records it starts the body
        # at the second one; Postfix's own queue files have that too)
        headers, date = self.received(qid)
        stamp = time.strftime("%Y%m%d%H%M%S", time.strptime(date[5:25], "%d %b %Y %H:%M:%S"))
        whole = self.postcat(qid, "-h", "-b")
        self.assertEqual(whole.split(b"\n", 3)[3],
                         b"Subject: bytes\nX-Long: " + long_line + b"\n" +
                         b"Message-Id: <%s.%s@mail.test>\nDate: %s\nFrom: s@client.test\n" % (
                             stamp.encode(), qid.encode(), date.encode()) +
                         b"\n.leading dot\n..\n.\n" + long_line +
                         b"\ncaf\xc3\xa9 \xff\xfe\x80\nmid\rCR\n\n \t \nlast\n")

    def test_02d_no_headers_added_for_remote_clients(self):
        """local_header_rewrite_clients = permit_mynetworks with 127.0.0.1 outside mynetworks:
        no Message-Id:, Date: or From: is added (Postfix leaves a remote client's mail alone)."""
        self.start(local_header_rewrite_clients="permit_mynetworks", mynetworks="192.0.2.0/24")
        qid = self.send_message(b"Subject: remote\r\n\r\nbody\r\n")
        headers, date = self.received(qid)
        self.assertEqual(headers[3:], ["Subject: remote", ""])
        self.assertEqual(self.postcat(qid, "-b"), b"\nbody\n")

    def test_02e_headers_added_for_mynetworks(self):
        """local_header_rewrite_clients = permit_mynetworks with 127.0.0.1 inside: added."""
        self.start(local_header_rewrite_clients="permit_mynetworks", mynetworks="127.0.0.0/8")
        qid = self.send_message(b"Subject: inside\r\n\r\nbody\r\n", sender="")
        headers, date = self.received(qid)
        self.assertEqual(headers[3], "Subject: inside")
        self.assertRegex(headers[4], r"^Message-Id: <\d{14}\.%s@mail\.test>$" % qid)
        self.assertEqual(headers[5:], ["Date: %s" % date, "From: MAILER-DAEMON", ""])


    def test_02f_helo_name_neutered(self):
        """The HELO/EHLO argument cannot forge a part of the Received: header or split header
        and log lines: as Postfix's helo_cmd(), it is kept as printable(arg, '?') then
        neuter(" <>()\\\";@", '?'), so "EHLO evil.test (trusted.test [10.0.0.1])" gives
        "Received: from evil.test??trusted.test?[10.0.0.1]? (NAME [ADDR])" and a CR in the
        argument becomes '?'."""
        self.start()
        qid = self.send_message(b"Subject: forged\r\n\r\nbody\r\n",
                                helo="EHLO evil.test (trusted.test [10.0.0.1])")
        qid2 = self.send_message(b"Subject: cr\r\n\r\nbody\r\n", helo="EHLO a\rX-Injected: yes")
        self.assertEqual(self.received(qid)[0][0],
                         "Received: from evil.test??trusted.test?[10.0.0.1]? (%s [127.0.0.1])" % CLIENT)
        self.assertIn("named_attribute: log_helo_name=evil.test??trusted.test?[10.0.0.1]?", self.envelope(qid))
        self.assertEqual(self.received(qid2)[0][0], "Received: from a?X-Injected:?yes (%s [127.0.0.1])" % CLIENT)

    def test_02g_long_lines_at_piece_boundaries(self):
        """line_length_limit = 100: content lines around the piece length (99, 100, 101, 200
        bytes), a '.' that falls at the start of the second piece (not unstuffed, not the end),
        dot-stuffed lines of 100 bytes, a CR at the boundary, all sent in 101-byte and in 1-byte
        writes: the body byte for byte."""
        self.start(line_length_limit="100")
        lines = [b"a" * 99, b"b" * 100, b"c" * 101, b"d" * 100 + b".", b"e" * 100 + b".x", b"." + b"f" * 99,
                 b".." + b"g" * 99, b"h" * 200, b"i" * 100 + b"\r", b"j" * 99 + b"\r", b"k" * 100, b"."]
        wire = b"Subject: boundaries\r\n\r\n" + b"".join(
            (b"." + x if x.startswith(b".") else x) + b"\r\n" for x in lines) + b".\r\n"
        want = b"\n" + b"".join(x + b"\n" for x in lines)
        for step in (101, 1):
            c = self.connect()
            c.send(b"EHLO client.test\r\nMAIL FROM:<s@client.test>\r\nRCPT TO:<u@mail.test>\r\nDATA\r\n")
            self.assertEqual(c.replies(4)[3], "354 End data with <CR><LF>.<CR><LF>")
            for i in range(0, len(wire), step):
                c.send(wire[i:i + step])
            qid = QUEUED_RE.match(c.reply()).group(1)
            self.assertEqual(c.cmd("QUIT"), "221 2.0.0 Bye")
            self.assertEqual(self.postcat(qid, "-b"), want, "in %d-byte writes" % step)


# ---- 3: relay control ------------------------------------------------------------------------------------

# (address, what happens): every form that could carry mail elsewhere ("relay": refused from
# outside mynetworks), the local and relay ones ("ok"), and forms tern refuses as bad syntax from
# anyone ("syntax"; Postfix takes them as addresses: the first is then refused as a relay, the
# second is user@mail.test)
RELAY_CASES = [
    ("user@elsewhere.example", "relay"),
    ("user@[192.0.2.9]", "relay"),
    ("user%elsewhere.example@mail.test", "relay"),
    ("user%elsewhere.example@relay.test", "relay"),
    ("@mail.test:user@elsewhere.example", "relay"),
    ("@mail.test,@relay.test:user@elsewhere.example", "relay"),
    ('"user@elsewhere.example"@mail.test', "relay"),
    ('"user%elsewhere.example"@relay.test', "relay"),
    ("user!elsewhere.example@mail.test", "relay"),
    ("elsewhere.example!user@mail.test", "relay"),
    ("elsewhere.example!user@relay.test", "relay"),
    ("user@elsewhere.example@mail.test", "syntax"),
    ("user@mail.test.", "syntax"),
    ("USER@MAIL.TEST", "ok"),
    ("user@mail.test", "ok"),
    ("user@relay.test", "ok"),
    ("user@[127.0.0.1]", "ok"),
]
SYNTAX = "501 5.1.3 Bad recipient address syntax"


def reply_name(addr):
    """How the reply names ADDR: the address with any source route removed."""
    return addr.split(":", 1)[1] if addr.startswith("@") else addr


def is_remote(rcpt):
    """Would RCPT leave this host (anything but a plain local or relay_domains address)?"""
    return not re.fullmatch(r"[a-z0-9.]+@(mail\.test|relay\.test|\[127\.0\.0\.1\])", rcpt.lower())


class Relay(SmtpdTestCase):
    SETTINGS = {"mynetworks": "192.0.2.0/24", "smtpd_hard_error_limit": "100"}

    def relay_run(self, code, dsn):
        """Every RELAY_CASES address from outside mynetworks, pipelined: the replies, the log
        lines; then DATA for the accepted ones: the queue file holds exactly those."""
        c = self.connect()
        self.assertEqual(c.cmd("EHLO client.test"), EHLO_REPLY)
        self.assertEqual(c.cmd("MAIL FROM:<s@client.test>"), "250 2.1.0 Ok")
        c.send("".join("RCPT TO:<%s>\r\n" % a for a, _ in RELAY_CASES))
        want = [{"ok": "250 2.1.5 Ok", "syntax": SYNTAX,
                 "relay": "%d %s <%s>: Relay access denied" % (code, dsn, reply_name(a))}[kind]
                for a, kind in RELAY_CASES]
        self.assertEqual(c.replies(len(RELAY_CASES)), want)
        self.assertEqual(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>")
        c.send(b"Subject: relay\r\n\r\nbody\r\n.\r\n")
        m = QUEUED_RE.match(c.reply())
        self.assertTrue(m)
        self.assertEqual(c.cmd("QUIT"), "221 2.0.0 Bye")
        for a, kind in RELAY_CASES:
            if kind != "relay":
                continue
            self.assertIn("tern/smtpd: NOQUEUE: reject: RCPT from %s: %d %s <%s>: Relay access denied; "
                          "from=<s@client.test> to=<%s> proto=ESMTP helo=<client.test>\n"
                          % (NAMADDR, code, dsn, reply_name(a), reply_name(a)), self.stderr())
        ok = sum(1 for _, kind in RELAY_CASES if kind == "ok")
        self.wait_log(r"^tern/smtpd: disconnect from %s ehlo=1 mail=1 rcpt=%d/%d data=1 quit=1 commands=%d/%d$"
                      % (re.escape(NAMADDR), ok, len(RELAY_CASES), ok + 4, len(RELAY_CASES) + 4))
        # nothing relayed: the only queue file holds only the accepted recipients
        self.assertEqual(self.queued(), [m.group(1)])
        if POSTFIX_ROOT:
            for qid in self.queued():
                self.assertEqual([r for r in self.recipients(qid) if is_remote(r)], [])
        if POSTFIX_ROOT:
            self.assertEqual(self.recipients(m.group(1)),
                             ["USER@MAIL.TEST", "user@mail.test", "user@relay.test", "user@[127.0.0.1]"])

    def test_03a_reject_unauth_destination(self):
        """smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination: 554 5.7.1."""
        self.start(smtpd_relay_restrictions="permit_mynetworks, reject_unauth_destination")
        self.relay_run(554, "5.7.1")

    def test_03b_defer_unauth_destination(self):
        """The default smtpd_relay_restrictions (defer_unauth_destination): 454 4.7.1."""
        self.start()
        self.relay_run(454, "4.7.1")

    def test_03c_recipient_restrictions_only(self):
        """The relay check in smtpd_recipient_restrictions alone (Postfix < 2.10 style, with an
        empty smtpd_relay_restrictions): the same refusals."""
        self.start(smtpd_relay_restrictions="",
                   smtpd_recipient_restrictions="permit_mynetworks, reject_unauth_destination")
        self.relay_run(554, "5.7.1")

    def test_03d_inside_mynetworks(self):
        """The client inside mynetworks (the default 127.0.0.0/8): every address is accepted."""
        self.start(mynetworks="127.0.0.0/8 [::1]/128")
        c = self.connect()
        self.assertEqual(c.cmd("EHLO client.test"), EHLO_REPLY)
        self.assertEqual(c.cmd("MAIL FROM:<s@client.test>"), "250 2.1.0 Ok")
        c.send("".join("RCPT TO:<%s>\r\n" % a for a, _ in RELAY_CASES))
        self.assertEqual(c.replies(len(RELAY_CASES)),
                         [SYNTAX if kind == "syntax" else "250 2.1.5 Ok" for _, kind in RELAY_CASES])
        self.assertNotIn("reject:", self.stderr())


# ---- 4: bad input ---------------------------------------------------------------------------------------

PIPELINED = (b"EHLO client.test\r\nMAIL FROM:<s@client.test>\r\nRCPT TO:<a@mail.test>\r\n"
             b"RCPT TO:<b@mail.test>\r\nRCPT TO:<c@relay.test>\r\nDATA\r\n")
PIPELINED_CONTENT = b"Subject: pipelined\r\n\r\n..body\r\n.\r\nQUIT\r\n"
PIPELINED_REPLIES = lines_of([EHLO_REPLY, "250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok",
                              "354 End data with <CR><LF>.<CR><LF>", "250 2.0.0 Ok: queued as ID",
                              "221 2.0.0 Bye"])


class BadInput(SmtpdTestCase):
    def conversation(self, pieces, sync=True):
        """A new session fed PIECES, one send each; with SYNC, the replies to the complete lines
        sent so far are read before the next piece (so the server surely saw the pieces apart).
        Every reply to the end, queue IDs replaced by "ID"."""
        c = self.connect()
        sent, read = b"", 0
        out = []
        for p in pieces:
            c.send(p)
            sent += p
            if sync:
                head = sent[:len(PIPELINED)] if len(sent) >= len(PIPELINED) else sent
                complete = head.count(b"\n")
                if len(sent) >= len(PIPELINED) + len(PIPELINED_CONTENT) - len(b"QUIT\r\n"):
                    complete += 1           # the end of DATA's reply
                while read < complete:
                    out.append(c.reply())
                    read += 1
        rest = c.rest()
        c.close()
        text = lines_of(out) + rest
        return re.sub(r"queued as %s" % QID_RE, "queued as ID", text)

    def test_04a_pipelining_split_everywhere(self):
        """The pipelined transaction (EHLO, MAIL, three RCPTs, DATA in one go, then the content
        and QUIT) split in two at every byte, on fresh connections, and sent a byte at a time:
        identical replies every time, one queue file per run."""
        self.start()
        wire = PIPELINED + PIPELINED_CONTENT
        self.assertEqual(self.conversation([PIPELINED, PIPELINED_CONTENT], sync=False), PIPELINED_REPLIES)
        runs = 1
        for k in range(1, len(wire)):
            self.assertEqual(self.conversation([wire[:k], wire[k:]]), PIPELINED_REPLIES, "split at %d" % k)
            runs += 1
        self.assertEqual(self.conversation([wire[i:i + 1] for i in range(len(wire))]), PIPELINED_REPLIES)
        runs += 1
        self.assertTrue(wait_until(lambda: len(self.queued()) == runs, START_TIMEOUT))
        self.assertEqual(len(self.queued()), runs)
        self.assertClean()

    def test_04b_long_command_lines(self):
        """A command line longer than line_length_limit gets 500 5.5.2 (and is not executed, even
        when its start is a valid command); the session goes on. An argument that fits the line
        but not the server's 4 kB argument buffer gets 501 5.5.4."""
        self.start(smtpd_hard_error_limit="100")
        c = self.connect()
        self.assertEqual(c.cmd("EHLO client.test"), EHLO_REPLY)
        self.assertEqual(c.cmd("NOOP " + "x" * 3000), "500 5.5.2 Error: line too long")
        self.assertEqual(c.cmd("MAIL FROM:<" + "a" * 3000 + "@client.test>"), "500 5.5.2 Error: line too long")
        self.assertEqual(c.cmd("RCPT TO:<u@mail.test>"), "503 5.5.1 Error: need MAIL command")
        self.assertEqual(c.cmd("NOOP " + "x" * 2040), "250 2.0.0 Ok")
        c.close()
        self.wait_log(r"^tern/smtpd: disconnect from .* unknown=0/2 ")
        self.daemons[0].stop()
        self.start(line_length_limit="10000")
        c = self.connect()
        self.assertEqual(c.cmd("NOOP " + "x" * 5000), "501 5.5.4 Error: argument too long")
        self.assertEqual(c.cmd("NOOP"), "250 2.0.0 Ok")
        self.assertClean()

    def test_04c_megabytes_without_lf(self):
        """32 MB without a line end (and 1 MB in another session): the server keeps reading
        without buffering it (its resident memory grows by less than 8 MB), serves other
        sessions meanwhile, and answers 500 5.5.2 once the line ends."""
        d = self.start()
        c = self.connect()
        self.assertEqual(c.cmd("EHLO client.test"), EHLO_REPLY)
        c2 = self.connect()
        c2.send(b"NOOP " + b"y" * (1 << 20))
        before = vm_rss(d.pid)
        c.send(b"MAIL FROM:<" + b"x" * (32 << 20))
        self.assertServing()
        self.assertLess(vm_rss(d.pid) - before, 8 << 20)
        self.assertEqual(c.cmd(""), "500 5.5.2 Error: line too long")
        self.assertEqual(c.cmd("NOOP"), "250 2.0.0 Ok")
        self.assertEqual(c2.cmd(""), "500 5.5.2 Error: line too long")
        self.assertTrue(d.running())

    def test_04d_nul_bytes(self):
        """A command holding a NUL is not recognized (502), whatever its verb; a message with a
        NUL in its content is refused at its end (tern's cleanup), nothing queued."""
        self.start()
        c = self.connect()
        self.assertEqual(c.cmd("EHLO client.test"), EHLO_REPLY)
        self.assertEqual(c.cmd("NOOP\0"), "502 5.5.2 Error: command not recognized")
        self.assertEqual(c.cmd("MAIL FROM:<s\0@client.test>"), "502 5.5.2 Error: command not recognized")
        self.assertEqual(c.cmd("\0"), "502 5.5.2 Error: command not recognized")
        self.assertEqual(c.cmd("MAIL FROM:<s@client.test>"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("RCPT TO:<u\0@mail.test>"), "502 5.5.2 Error: command not recognized")
        self.assertEqual(c.cmd("RCPT TO:<u@mail.test>"), "250 2.1.5 Ok")
        self.assertEqual(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>")
        c.send(b"Subject: nul\r\n\r\nbefore\0after\r\n.\r\n")
        self.assertEqual(c.reply(), "550 5.6.0 Error: message content rejected: NUL bytes are not allowed")
        self.assertEqual(c.cmd("QUIT"), "221 2.0.0 Bye")
        self.assertEqual(self.queued(), [])
        self.assertClean()

    def test_04e_non_ascii_and_unbalanced_addresses(self):
        """Non-ASCII addresses without SMTPUTF8: 553 5.6.7; SMTPUTF8 itself is unsupported;
        unbalanced '<' and '>' and other bad syntax: Postfix's 501 texts."""
        self.start(smtpd_hard_error_limit="100")
        c = self.connect()
        self.assertEqual(c.cmd("EHLO client.test"), EHLO_REPLY)
        for line, want in [
                ("MAIL FROM:<s\xc3\xa9@client.test>", "553 5.6.7 Must declare SMTPUTF8 to send unicode address"),
                ("MAIL FROM:<s@cli\xe9nt.test>", "553 5.6.7 Must declare SMTPUTF8 to send unicode address"),
                ("MAIL FROM:<s@client.test> SMTPUTF8", "555 5.5.4 Unsupported option: SMTPUTF8"),
                ("MAIL FROM:<s@client.test", "501 5.1.7 Bad sender address syntax"),
                ("MAIL FROM:<<s@client.test>", "501 5.1.7 Bad sender address syntax"),
                ("MAIL FROM:s@client.test>", "501 5.1.7 Bad sender address syntax"),
                ("MAIL FROM:", "501 5.5.4 Syntax: MAIL FROM:<address>"),
                ("MAIL <s@client.test>", "501 5.5.4 Syntax: MAIL FROM:<address>"),
                ("MAIL FROM:<s@client.test>", "250 2.1.0 Ok"),
                ("RCPT TO:<\xfc@mail.test>", "553 5.6.7 Must declare SMTPUTF8 to send unicode address"),
                ("RCPT TO:<u@mail.test", "501 5.1.3 Bad recipient address syntax"),
                ("RCPT TO:u@mail.test>", "501 5.1.3 Bad recipient address syntax"),
                ("RCPT TO:<>", "501 5.1.3 Bad recipient address syntax"),
                ("RCPT TO:", "501 5.5.4 Syntax: RCPT TO:<address>"),
                ("RCPT TO:<u@mail.test> NOTIFY=SOMETIMES", "501 5.5.4 Error: Bad NOTIFY parameter syntax"),
                ("RCPT TO:<u@mail.test>", "250 2.1.5 Ok")]:
            self.assertEqual(c.cmd(line), want, line)
        c.close()
        self.assertClean()

    def rcpt_flood(self, n):
        """EHLO, MAIL, N distinct RCPTs, DATA and a message in one stream (sent from a thread
        while the replies are read): the replies, in order, up to the end or the close."""
        c = self.connect()
        wire = (b"EHLO client.test\r\nMAIL FROM:<s@client.test>\r\n" +
                b"".join(b"RCPT TO:<u%d@mail.test>\r\n" % i for i in range(n)) +
                b"DATA\r\nSubject: many\r\n\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\n")
        errors = []

        def send():
            try:
                c.send(wire)
            except OSError as e:
                errors.append(e)
        t = threading.Thread(target=send, daemon=True)
        t.start()
        out = []
        try:
            while True:
                out.append(c.reply())
        except (EOFError, ConnectionResetError):
            pass
        t.join(CLIENT_TIMEOUT)
        return out

    def test_04f_ten_thousand_recipients(self):
        """10,000 RCPTs (smtpd_recipient_limit = 1000; a hard error limit the 452s cannot reach):
        1000 accepted, then "452 4.5.3 Error: too many recipients"; the session still works: the
        message is queued for the first 1000, NOOP and QUIT are answered."""
        self.start(smtpd_hard_error_limit="20000")
        out = self.rcpt_flood(10000)
        self.assertEqual(out[:2], [EHLO_REPLY, "250 2.1.0 Ok"])
        self.assertEqual(out[2:1002], ["250 2.1.5 Ok"] * 1000)
        self.assertEqual(out[1002:10002], ["452 4.5.3 Error: too many recipients"] * 9000)
        self.assertEqual(out[10002], "354 End data with <CR><LF>.<CR><LF>")
        qid = QUEUED_RE.match(out[10003]).group(1)
        self.assertEqual(out[10004:], ["250 2.0.0 Ok", "221 2.0.0 Bye"])
        self.assertEqual(self.queued(), [qid])
        if POSTFIX_ROOT:
            self.assertEqual(self.recipients(qid), ["u%d@mail.test" % i for i in range(1000)])
        self.assertClean()

    def test_04g_ten_thousand_recipients_default_limits(self):
        """10,000 RCPTs with the default limits: the server survives, and the session ends with
        "421 4.7.0 mail.test Error: too many errors" (Postfix: after 1000 accepted, 1000
        overshoot 452s that are not errors, and 20 that are); nothing queued."""
        d = self.start()
        out = self.rcpt_flood(10000)
        self.assertEqual(out[2:1002], ["250 2.1.5 Ok"] * 1000)
        self.assertEqual(out[-1], "421 4.7.0 mail.test Error: too many errors")
        self.assertEqual(set(out[1002:-1]), {"452 4.5.3 Error: too many recipients"})
        self.assertTrue(d.running())
        self.wait_log(r"^tern/smtpd: too many errors after RCPT from %s$" % re.escape(NAMADDR))
        self.assertEqual(self.queued(), [])
        self.assertClean()

    def test_04h_recipient_overshoot(self):
        """1500 RCPTs with the default limits: as Postfix, the 500 beyond smtpd_recipient_limit
        get 452 4.5.3 without counting as errors up to smtpd_recipient_overshoot_limit (1000), so
        the transaction goes on and the message is queued for the first 1000 (the client sends
        the rest later), instead of the session ending at smtpd_hard_error_limit with the
        message lost for all 1000."""
        self.start()
        out = self.rcpt_flood(1500)
        self.assertEqual(out[2:1002], ["250 2.1.5 Ok"] * 1000)
        self.assertEqual(out[1002:1502], ["452 4.5.3 Error: too many recipients"] * 500,
                         "the session ended after %d replies: %r" % (len(out), out[-2:]))
        self.assertEqual(out[1502], "354 End data with <CR><LF>.<CR><LF>")
        self.assertRegex(out[1503], QUEUED_RE)

    def test_04i_stall_mid_data(self):
        """smtpd_timeout = 2s and a client that stops in the middle of its content: after the
        timeout "421 4.4.2 mail.test Error: timeout exceeded", the connection closed, Postfix's
        "timeout after DATA (N bytes)" line; nothing queued, no temporary file; the session does
        not stop others meanwhile. A client that never sends anything times out as well
        ("timeout after CONNECT")."""
        self.start(smtpd_timeout="2s")
        silent = self.connect()
        c = self.connect()
        c.send(b"EHLO client.test\r\nMAIL FROM:<s@client.test>\r\nRCPT TO:<u@mail.test>\r\nDATA\r\n")
        self.assertEqual(c.replies(4), [EHLO_REPLY, "250 2.1.0 Ok", "250 2.1.5 Ok",
                                        "354 End data with <CR><LF>.<CR><LF>"])
        start = time.monotonic()
        c.send(b"Subject: stall\r\n\r\npart of a li")
        self.assertEqual(len(self.temp_files()), 1)     # the file under way
        self.assertServing()
        self.assertEqual(c.rest(), "421 4.4.2 mail.test Error: timeout exceeded\r\n")
        elapsed = time.monotonic() - start
        self.assertGreater(elapsed, 1.5)
        self.assertLess(elapsed, 10)
        self.wait_log(r"^tern/smtpd: timeout after DATA \(18 bytes\) from %s$" % re.escape(NAMADDR))
        self.wait_log(r"^tern/smtpd: disconnect from %s ehlo=1 mail=1 rcpt=1 data=0/1 commands=3/4$"
                      % re.escape(NAMADDR))
        self.assertEqual(len(self.queued()), 1)         # only assertServing()'s
        self.assertEqual(self.temp_files(), [])
        # the one that never said anything timed out too
        self.assertEqual(silent.rest(), "421 4.4.2 mail.test Error: timeout exceeded\r\n")
        self.wait_log(r"^tern/smtpd: timeout after CONNECT from %s$" % re.escape(NAMADDR))

    def test_04j_disconnect_mid_data(self):
        """A client that closes (FIN) or resets (RST) in the middle of its content: "lost
        connection after DATA (N bytes)", nothing queued, no temporary file."""
        self.start()
        for reset in (False, True):
            c = self.connect()
            c.send(b"EHLO client.test\r\nMAIL FROM:<s@client.test>\r\nRCPT TO:<u@mail.test>\r\nDATA\r\n")
            self.assertEqual(len(c.replies(4)), 4)
            c.send(b"Subject: gone\r\n\r\n" + b"line\r\n" * 100 + b"half")
            self.assertTrue(wait_until(lambda: len(self.temp_files()) == 1, START_TIMEOUT))
            if reset:
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
            self.wait_log(r"^tern/smtpd: lost connection after DATA \(%d bytes\) from %s$"
                          % (15 + 2 + 600, re.escape(NAMADDR)), count=2 if reset else 1)
            self.assertTrue(wait_until(lambda: not self.temp_files(), START_TIMEOUT))
        self.assertEqual(self.queued(), [])
        self.assertClean()

    def test_04k_etrn_arguments(self):
        """ETRN with a path, "..", shell characters, blanks: 501 Error: invalid parameter syntax;
        without an argument: 500 Syntax: ETRN domain; inside a transaction: 503; a good site with
        no tern-flush running: 458 and a warning. None of it reaches the file system."""
        self.start(smtpd_hard_error_limit="100")
        c = self.connect()
        self.assertEqual(c.cmd("EHLO client.test"), EHLO_REPLY)
        for arg in ("a/b", "../../etc/passwd", "..", "a..b", "relay.test/..", "$(reboot)", "`id`", "a;b",
                    "a|b", "a&b", "@../x", "#a/b", "<relay.test>", "[1.2.3]", "-rf", "'x'", "a\\b", "*"):
            self.assertEqual(c.cmd("ETRN " + arg), "501 Error: invalid parameter syntax", arg)
        self.assertEqual(c.cmd("ETRN"), "500 Syntax: ETRN domain")
        self.assertEqual(c.cmd("ETRN relay.test other.test"), "500 Syntax: ETRN domain")
        self.assertEqual(c.cmd("ETRN relay.test"), "458 Unable to queue messages")
        self.assertEqual(c.cmd("ETRN @relay.test"), "458 Unable to queue messages")
        self.assertEqual(c.cmd("MAIL FROM:<s@client.test>"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("ETRN relay.test"), "503 Error: MAIL transaction in progress")
        self.assertIn("tern/smtpd: warning: unable to talk to fast flush service\n", self.stderr())
        self.assertEqual(sorted(os.listdir(self.rt)), [])
        self.assertClean()

    def test_04l_hard_error_limit(self):
        """smtpd_hard_error_limit = 3: the third error reply is followed by "421 4.7.0 mail.test
        Error: too many errors" and the close; Postfix's log line."""
        self.start(smtpd_hard_error_limit="3")
        c = self.connect()
        self.assertEqual(c.cmd("VRFY"), "501 5.5.4 Syntax: VRFY address")
        self.assertEqual(c.cmd("ETRN"), "500 Syntax: ETRN domain")
        self.assertEqual(c.cmd("NOOP"), "250 2.0.0 Ok")
        c.send("HELO\r\n")
        self.assertEqual(c.rest(), "501 Syntax: HELO hostname\r\n421 4.7.0 mail.test Error: too many errors\r\n")
        self.wait_log(r"^tern/smtpd: too many errors after HELO from %s$" % re.escape(NAMADDR))
        self.wait_log(r"^tern/smtpd: disconnect from %s helo=0/1 noop=1 vrfy=0/1 etrn=0/1 commands=1/4$"
                      % re.escape(NAMADDR))
        self.assertClean()

    def bare_lf_message(self, c, content):
        """MAIL, RCPT, DATA on C (after EHLO), then CONTENT as it is."""
        self.assertEqual(c.cmd("MAIL FROM:<s@client.test>"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("RCPT TO:<u@mail.test>"), "250 2.1.5 Ok")
        self.assertEqual(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>")
        c.send(content)

    def test_04m_bare_newline_normalize(self):
        """smtpd_forbid_bare_newline = normalize (the default), client not excluded: commands
        may end in a bare LF; in DATA a bare-LF "." does not end the content, only
        <CR><LF>.<CR><LF> does; the lines are stored as if they ended in CRLF."""
        self.start(smtpd_forbid_bare_newline_exclusions="")
        c = self.connect()
        c.send("EHLO client.test\nNOOP\n")
        self.assertEqual(c.replies(2), [EHLO_REPLY, "250 2.0.0 Ok"])
        self.bare_lf_message(c, b"Subject: bare\n\nline1\n.\nline2\r\n.\nline3\r\n.\r\n")
        qid = QUEUED_RE.match(c.reply()).group(1)
        self.assertEqual(c.cmd("NOOP"), "250 2.0.0 Ok")
        if POSTFIX_ROOT:
            body = self.postcat(qid, "-b")
            self.assertTrue(body.startswith(b"\nline1\n") and body.endswith(b"\nline3\n"), body)
            self.assertIn(b"\nline2\n", body)
            self.assertEqual(body.count(b"\n"), 6, body)    # the two bare-LF "." lines stay lines
        self.assertClean()

    def test_04n_bare_newline_reject(self):
        """smtpd_forbid_bare_newline = reject: a bare LF in a command, or in the content, gets
        "550 5.5.2 Error: bare <LF> received" and the connection is closed; nothing queued. A
        client in smtpd_forbid_bare_newline_exclusions is exempt (and a bare-LF "." ends its
        content, as before Postfix 3.9)."""
        self.start(smtpd_forbid_bare_newline="reject", smtpd_forbid_bare_newline_exclusions="")
        c = self.connect()
        self.assertEqual(c.cmd("EHLO client.test"), EHLO_REPLY)
        c.send("NOOP\n")
        self.assertEqual(c.rest(), "550 5.5.2 Error: bare <LF> received\r\n")
        c = self.connect()
        self.assertEqual(c.cmd("EHLO client.test"), EHLO_REPLY)
        self.bare_lf_message(c, b"Subject: bare\r\n\r\nline1\nline2\r\n.\r\n")
        self.assertEqual(c.rest(), "550 5.5.2 Error: bare <LF> received\r\n")
        self.wait_log(r"^tern/smtpd: %s: reject: END-OF-MESSAGE from %s: 550 5.5.2 Error: bare <LF> received; "
                      r"from=<s@client\.test> proto=ESMTP helo=<client\.test>$" % (QID_RE, re.escape(NAMADDR)))
        self.assertEqual(self.queued(), [])
        self.assertClean()

        self.daemons[0].stop()
        self.start(smtpd_forbid_bare_newline="reject", smtpd_forbid_bare_newline_exclusions="127.0.0.0/8")
        c = self.connect()
        c.send("EHLO client.test\n")
        self.assertEqual(c.reply(), EHLO_REPLY)
        self.bare_lf_message(c, b"Subject: exempt\n\nline1\n.\n")
        qid = QUEUED_RE.match(c.reply()).group(1)
        self.assertEqual(c.cmd("QUIT"), "221 2.0.0 Bye")
        if POSTFIX_ROOT:
            self.assertEqual(self.postcat(qid, "-b"), b"\nline1\n")

    def test_04o_bare_newline_no(self):
        """smtpd_forbid_bare_newline = no: a bare LF ends a line anywhere, also the "." that
        ends the content; what follows it is a command."""
        self.start(smtpd_forbid_bare_newline="no", smtpd_forbid_bare_newline_exclusions="")
        c = self.connect()
        self.assertEqual(c.cmd("EHLO client.test"), EHLO_REPLY)
        self.bare_lf_message(c, b"Subject: no\n\nline1\n.\nNOOP\n")
        qid = QUEUED_RE.match(c.reply()).group(1)
        self.assertEqual(c.reply(), "250 2.0.0 Ok")
        if POSTFIX_ROOT:
            self.assertEqual(self.postcat(qid, "-b"), b"\nline1\n")
        self.assertClean()


class MoreInput(SmtpdTestCase):
    def test_04p_two_transactions_in_one_write(self):
        """Two whole transactions and QUIT in one write: the second waits, unread, while the
        first is committed; both are queued, the replies come in order."""
        self.start()
        c = self.connect()
        txn = (b"MAIL FROM:<s@client.test>\r\nRCPT TO:<u@mail.test>\r\nDATA\r\n"
               b"Subject: pipelined %d\r\n\r\nbody\r\n.\r\n")
        c.send(b"EHLO client.test\r\n" + txn % 1 + txn % 2 + b"NOOP\r\nQUIT\r\n")
        out = c.replies(10)
        self.assertEqual(out[:4], [EHLO_REPLY, "250 2.1.0 Ok", "250 2.1.5 Ok",
                                   "354 End data with <CR><LF>.<CR><LF>"])
        self.assertEqual(out[5:8], ["250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>"])
        self.assertEqual(out[9], "250 2.0.0 Ok")
        ids = [QUEUED_RE.match(out[4]).group(1), QUEUED_RE.match(out[8]).group(1)]
        self.assertEqual(c.rest(), "221 2.0.0 Bye\r\n")
        self.assertEqual(self.queued(), sorted(ids))
        if POSTFIX_ROOT:
            self.assertEqual([self.postcat(i, "-h").split(b"\n")[3] for i in ids],
                             [b"Subject: pipelined 1", b"Subject: pipelined 2"])

    def test_04q_replies_before_quit_are_kept(self):
        """No reply is lost at QUIT: a client with a small receive buffer pipelines EHLOs and QUIT
        whose replies come to some 300 kB more than the kernel's socket buffers take (measured
        here first), and reads nothing for a moment. The replies still queued when QUIT comes
        are fewer than the server's 256 kB output bound, so the server reads everything. Every
        reply, the 221 included, must still come when the client reads, as from Postfix (which
        writes its replies blocking)."""
        # how much a loopback socket takes towards a peer with this receive buffer that reads nothing
        with socket.socket() as l, socket.socket() as peer:
            l.bind((LOOP, 0))
            l.listen(1)
            peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            peer.connect(l.getsockname())
            a, _ = l.accept()
            with a:
                a.setblocking(False)
                absorbed = 0
                try:
                    while True:
                        absorbed += a.send(b"x" * 65536)
                except BlockingIOError:
                    pass
        reply_len = len(EHLO_REPLY) + EHLO_REPLY.count("\n") + 2
        n = (absorbed + 300000) // reply_len + 1
        self.start()
        c = Client(self.port, connect=False)
        self.clients.append(c)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.sock.connect((LOOP, self.port))
        self.assertEqual(c.reply(), BANNER)
        wire = (b"EHLO " + b"x" * 51 + b"\r\n") * n + b"QUIT\r\n"
        t = threading.Thread(target=c.send, args=(wire,), daemon=True)
        t.start()
        # a moment without reading (cut short when the server has closed the session)
        done = r"(?m)^tern/smtpd: disconnect from %s ehlo=%d quit=1 commands=%d$" % (re.escape(NAMADDR), n, n + 1)
        wait_until(lambda: re.search(done, self.stderr()), 2.0)
        out = c.rest()
        t.join(CLIENT_TIMEOUT)
        self.assertEqual((out.count("\r\n250 DSN\r\n"), out[-15:]), (n, "221 2.0.0 Bye\r\n"),
                         "%d bytes of replies, %d expected" % (len(out), n * reply_len + 15))
        self.wait_log(done)
        self.assertServing()

    def test_04r_connect_and_vanish(self):
        """300 clients that connect and go away at once, some with a reset, some after a byte,
        while the server may still be looking up their name: it survives (no sanitizer report),
        logs no transaction, and serves the next one."""
        d = self.start()
        for i in range(300):
            s = socket.create_connection((LOOP, self.port))
            if i % 3 == 1:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif i % 3 == 2:
                s.send(b"E")
            s.close()
        self.assertServing()
        self.assertTrue(d.running())
        self.assertNotIn("reject:", self.stderr())
        self.assertNotIn("warning:", self.stderr())

    def test_04s_soft_error_limit(self):
        """smtpd_soft_error_limit = 1, smtpd_error_sleep_time = 1s: as Postfix's
        smtpd_chat_reply() ("sleep-on-anything"), every reply once the session's error count
        has reached the soft limit waits, so each NOOP after the first error is answered a
        second late."""
        self.start(smtpd_soft_error_limit="1", smtpd_error_sleep_time="1s")
        c = self.connect()
        self.assertEqual(c.cmd("XYZZY"), "502 5.5.2 Error: command not recognized")
        times = []
        for _ in range(2):
            start = time.monotonic()
            self.assertEqual(c.cmd("NOOP"), "250 2.0.0 Ok")
            times.append(time.monotonic() - start)
        self.assertGreater(min(times), 0.9, "reply delays %r" % times)


# ---- 5: limits ----------------------------------------------------------------------------------------

class Limits(SmtpdTestCase):
    def test_05a_150_concurrent_sessions(self):
        """150 connections at once with default_process_limit = 100: exactly 100 are greeted, the
        other 50 wait in the listen backlog; as sessions end they are served; all 150 queue a
        message."""
        self.start()
        n = 150
        clients = [Client(self.port) for _ in range(n)]
        self.clients += clients

        def greeted():
            return [c for c in clients if select.select([c.sock], [], [], 0)[0]]
        self.assertTrue(wait_until(lambda: len(greeted()) >= 100, START_TIMEOUT), len(greeted()))
        first = greeted()
        self.assertEqual(len(first), 100)

        def session(c):
            assert c.reply() == BANNER
            c.send(b"EHLO client.test\r\nMAIL FROM:<s@client.test>\r\nRCPT TO:<u@mail.test>\r\nDATA\r\n")
            assert c.replies(4)[3].startswith("354")
            c.send(b"Subject: concurrent\r\n\r\nbody\r\n.\r\nQUIT\r\n")
            m = QUEUED_RE.match(c.reply())
            assert c.reply() == "221 2.0.0 Bye"
            return m.group(1)
        # the greeted ones first, so that the waiting ones are served only as those end
        order = first + [c for c in clients if c not in first]
        with concurrent.futures.ThreadPoolExecutor(n) as ex:
            ids = list(ex.map(session, order))
        self.assertEqual(len(set(ids)), n)
        self.assertTrue(wait_until(lambda: len(self.queued()) == n, START_TIMEOUT))
        self.assertEqual(sorted(ids), self.queued())
        self.assertClean()

    def test_05b_client_connection_count_limit(self):
        """smtpd_client_connection_count_limit = 2 and no exceptions: a third concurrent session
        from 127.0.0.1 gets "421 4.7.0 mail.test Error: too many connections from 127.0.0.1" and
        is closed, with Postfix's warning; once one ends, a new one is served."""
        self.start(smtpd_client_connection_count_limit="2", smtpd_client_event_limit_exceptions="")
        c1 = self.connect()
        c2 = self.connect()
        c3 = self.connect(greeting=None)
        self.assertEqual(c3.rest(), "421 4.7.0 mail.test Error: too many connections from 127.0.0.1\r\n")
        self.assertIn("tern/smtpd: warning: Connection concurrency limit exceeded: 3 from %s for service smtp\n"
                      % NAMADDR, self.stderr())
        self.assertEqual(c2.cmd("NOOP"), "250 2.0.0 Ok")
        self.assertEqual(c1.cmd("QUIT"), "221 2.0.0 Bye")
        self.assertTrue(c1.closed())
        self.wait_log(r"^tern/smtpd: disconnect from %s quit=1 commands=1$" % re.escape(NAMADDR))
        c4 = self.connect()
        self.assertEqual(c4.cmd("NOOP"), "250 2.0.0 Ok")


# ---- 6: real clients -----------------------------------------------------------------------------------

class RealClients(SmtpdTestCase):
    @unittest.skipUnless(os.access(SWAKS, os.X_OK), "swaks not installed")
    def test_06a_swaks(self):
        """swaks delivers a message (queued, as postcat shows); with --quit-after RCPT nothing is
        queued and no file is left."""
        self.start()
        argv = [SWAKS, "--server", "%s:%d" % (LOOP, self.port), "--to", "u@mail.test", "--from", "s@client.test",
                "--helo", "client.test", "--timeout", "20"]
        p = subprocess.run(argv + ["--header", "Subject: from swaks", "--body", "hello from swaks"],
                           capture_output=True, timeout=60, env=base_env())
        out = p.stdout.decode(errors="replace")
        self.assertEqual(p.returncode, 0, out + p.stderr.decode(errors="replace"))
        m = re.search(r"<-  250 2\.0\.0 Ok: queued as (%s)\n" % QID_RE, out)
        self.assertTrue(m, out)
        self.assertIn("<-  221 2.0.0 Bye", out)
        self.assertEqual(self.queued(), [m.group(1)])
        if POSTFIX_ROOT:
            self.assertEqual(self.recipients(m.group(1)), ["u@mail.test"])
            self.assertIn(b"Subject: from swaks\n", self.postcat(m.group(1), "-h"))
            self.assertIn(b"\nhello from swaks\n", self.postcat(m.group(1), "-b"))
        p = subprocess.run(argv + ["--quit-after", "RCPT"], capture_output=True, timeout=60, env=base_env())
        self.assertEqual(p.returncode, 0, p.stdout.decode(errors="replace"))
        self.wait_log(r"^tern/smtpd: disconnect from %s ehlo=1 mail=1 rcpt=1 quit=1 commands=4$"
                      % re.escape(NAMADDR))
        self.assertEqual(self.queued(), [m.group(1)])
        self.assertClean()

    @unittest.skipIf(SOURCE_ROOT_PF is None, "smtp-source not found and Debian's postfix package not fetchable")
    def test_06b_smtp_source(self):
        """Postfix's smtp-source, 5 sessions at once, 50 messages of 1 kB: exactly 50 queue files,
        50 "client=" lines."""
        self.start()
        argv = [os.path.join(SOURCE_ROOT_PF, "usr/sbin/smtp-source"), "-s", "5", "-m", "50", "-l", "1024",
                "-f", "s@client.test", "-t", "u@mail.test", "%s:%d" % (LOOP, self.port)]
        p = subprocess.run(argv, capture_output=True, timeout=120, env=postfix_env(SOURCE_ROOT_PF))
        self.assertEqual((p.returncode, p.stderr), (0, b""), p.stdout)
        self.assertTrue(wait_until(lambda: len(self.queued()) >= 50, START_TIMEOUT))
        self.assertEqual(len(self.queued()), 50)
        self.wait_log(r"^tern/smtpd: disconnect from ", count=5)
        self.assertEqual(len(re.findall(r"(?m)^tern/smtpd: %s: client=%s$" % (QID_RE, re.escape(NAMADDR)),
                                        self.stderr())), 50)
        if POSTFIX_ROOT:
            self.assertEqual(self.recipients(self.queued()[0]), ["u@mail.test"])
        self.assertClean()


# ---- 7: the whole path -------------------------------------------------------------------------------

@unittest.skipIf(SINK_ROOT is None, "smtp-sink not found and Debian's postfix package not fetchable")
class WholePath(SmtpdTestCase):
    def start_unix(self, argv, socket_name):
        path = os.path.join(self.rt, socket_name)
        d = self.spawn(argv, self.env())
        self.assertTrue(wait_until(lambda: os.path.exists(path) or not d.running(), START_TIMEOUT),
                        "%s did not bind %s:\n%s" % (argv[0], path, self.stderr()[-4000:]))
        self.assertTrue(d.running(), self.stderr()[-4000:])
        return d

    def test_07_smtpd_qmgr_smtp_sink(self):
        """A message sent over SMTP to tern-smtpd reaches smtp-sink through tern-qmgr and
        tern-smtp (relayhost = [127.0.0.1]:SINKPORT). tern-qmgr runs before the message comes and
        its queue_run_delay is 300s: only tern-smtpd's trigger after the commit can make it look.
        The qmgr log shows "(queue active)", the smtp log status=sent; the queue ends empty."""
        sink = Sink(self.tmp)
        self.addCleanup(sink.stop)
        write_queue_conf(self.conf_path, "test_smtpd whole path", self.spool, self.rt, [
            ("default_transport", "smtp"), ("relay_transport", "smtp"),
            ("relayhost", "[%s]:%d" % (LOOP, sink.port)), ("smtp_connect_timeout", "2s"),
            ("myhostname", HOST), ("smtpd_listen", "%s:%d" % (LOOP, self.port)),
        ], [])
        self.start_unix([SMTP, "-c", self.conf_path], "smtp")
        self.start_unix([QMGR, "-c", self.conf_path], "qmgr")
        d = self.spawn([SMTPD, "-c", self.conf_path], self.env())
        self.assertTrue(wait_until(lambda: listening(self.port) or not d.running(), START_TIMEOUT), self.stderr())

        qid = self.send_message(b"Subject: whole path\r\n\r\n..dotted\r\nend\r\n", rcpts=("rcpt@remote.example",))
        self.assertTrue(wait_until(lambda: sink.dumps(), 15),
                        "nothing reached smtp-sink:\n" + self.stderr()[-4000:])
        dump = sink.dumps()[0]
        self.assertIn(b"\nReceived: from client.test (%s [127.0.0.1])\n\tby mail.test (tern) with ESMTP id %s\n"
                      b"\tfor <rcpt@remote.example>; " % (CLIENT.encode(), qid.encode()), dump)
        self.assertTrue(dump.endswith(b"\n\n.dotted\nend\n\n"), dump[-200:])
        self.wait_log(r"^tern/qmgr: %s: removed$" % qid)
        log = self.stderr()
        active = re.search(r"(?m)^tern/qmgr: %s: from=<s@client\.test>, size=\d+, nrcpt=1 \(queue active\)$"
                           % qid, log)
        sent = re.search(r"(?m)^tern/smtp: %s: to=<rcpt@remote\.example>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d, "
                         r".*status=sent \(250 2\.0\.0 Ok\)$" % (qid, sink.port), log)
        self.assertTrue(active and sent, log[-4000:])
        self.assertLess(active.start(), sent.start())
        self.assertLess(log.index("tern/smtpd: %s: client=" % qid), active.start())
        self.assertEqual(self.queued(), [])
        self.assertEqual(self.queued("active"), [])


# ---- 8: systemd-socket-activate ---------------------------------------------------------------------

class SocketActivated(SmtpdTestCase):
    def test_08_socket_activated(self):
        """systemd-socket-activate -l 127.0.0.1:PORT: tern-smtpd takes the passed socket (its own
        smtpd_listen port stays unbound), the dialogue works, and SIGTERM with a session open in
        the middle of a transaction stops it with status 0: the client hears no 250, nothing is
        queued, no temporary file is left."""
        other = free_port()
        self.configure(smtpd_listen="%s:%d" % (LOOP, other))
        argv = ["systemd-socket-activate", "-l", "%s:%d" % (LOOP, self.port)]
        for kv in sorted(self.env().items()):
            if kv[0] != "PATH":
                argv += ["-E", "%s=%s" % kv]
        d = self.spawn(argv + [SMTPD, "-c", self.conf_path], self.env())
        self.assertTrue(wait_until(lambda: "Listening on %s:%d" % (LOOP, self.port) in self.stderr()
                                   or not d.running(), START_TIMEOUT), self.stderr())
        self.assertTrue(d.running(), self.stderr())

        qid = self.send_message(b"Subject: activated\r\n\r\nbody\r\n")
        self.assertEqual(self.queued(), [qid])
        self.assertTrue(os.readlink("/proc/%d/exe" % d.pid).endswith("tern-smtpd"))
        self.assertFalse(listening(other), "tern-smtpd bound smtpd_listen although it was given a socket")

        c = self.connect()
        c.send(b"EHLO client.test\r\nMAIL FROM:<s@client.test>\r\nRCPT TO:<u@mail.test>\r\nDATA\r\n")
        self.assertEqual(len(c.replies(4)), 4)
        c.send(b"Subject: interrupted\r\n\r\nhalf")
        self.assertTrue(wait_until(lambda: len(self.temp_files()) == 1, START_TIMEOUT))
        d.proc.send_signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(), 0, self.stderr())
        self.assertEqual(c.rest(), "")
        self.assertEqual(self.queued(), [qid])
        self.assertEqual(self.temp_files(), [])

    def test_08b_unix_socket_refused(self):
        """A UNIX socket passed by mistake stops tern-smtpd at start: a client's address decides
        what it may do, and a UNIX socket has none (it must not become a loopback client)."""
        self.configure()
        path = os.path.join(self.tmp, "smtpd.sock")
        argv = ["systemd-socket-activate", "-l", path]
        for kv in sorted(self.env().items()):
            if kv[0] != "PATH":
                argv += ["-E", "%s=%s" % kv]
        p = subprocess.Popen(argv + [SMTPD, "-c", self.conf_path], env=self.env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        try:
            # systemd-socket-activate starts the program at the first connection
            self.assertTrue(wait_until(lambda: os.path.exists(path), START_TIMEOUT))
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as u:
                u.connect(path)
                _, err = p.communicate(timeout=EXIT_TIMEOUT)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        err = err.decode(errors="replace")
        self.assertNotEqual(p.returncode, 0, err)
        self.assertIn("is not a listening TCP socket", err)
        self.assertNotRegex(err, SANITIZER_RE)


# ---- 10: a full spool -------------------------------------------------------------------------------

class FullDisk(SmtpdTestCase):
    def test_10_full_disk(self):
        """tern-smtpd in its own mount namespace with a 256 KiB tmpfs as the spool: a 512 KiB
        message gets "451 4.3.0 Error: queue file write error" at the end of DATA (never a 250
        for a file that is not on disk), nothing of it is left, and a small message still goes
        in afterwards."""
        if os.getuid() != 0:
            self.skipTest("mounting a tmpfs spool needs root")
        probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
        if probe.returncode != 0:
            self.skipTest("unshare -m is not available here: %s" % probe.stderr.decode().strip())
        self.configure(message_size_limit=str(4 * 1024 * 1024))        # the disk, not the limit, refuses
        script = 'mount -t tmpfs -o size=256k,mode=0700 tern-test-spool "$0" && exec "$@"'
        d = self.spawn(["unshare", "-m", "--propagation", "private", "sh", "-c", script, self.spool,
                        SMTPD, "-c", self.conf_path], self.env())
        self.assertTrue(wait_until(lambda: listening(self.port) or not d.running(), START_TIMEOUT), self.stderr())
        self.assertTrue(d.running(), self.stderr())
        # the daemon's view of the spool: its mount namespace, through /proc/PID/root
        incoming = "/proc/%d/root%s/incoming" % (d.pid, self.spool)
        self.assertTrue(wait_until(lambda: os.path.isdir(incoming), START_TIMEOUT))
        self.assertEqual(os.listdir(self.spool), [], "the tmpfs is not private")

        c = self.connect()
        c.send(b"EHLO client.test\r\nMAIL FROM:<s@client.test>\r\nRCPT TO:<u@mail.test>\r\nDATA\r\n")
        self.assertEqual(c.replies(4)[-1], "354 End data with <CR><LF>.<CR><LF>")
        c.send(b"Subject: big\r\n\r\n" + (b"z" * 98 + b"\r\n") * (512 * 1024 // 100) + b".\r\n")
        self.assertEqual(c.reply(), "451 4.3.0 Error: queue file write error")
        self.assertEqual(os.listdir(incoming), [])
        self.assertIn("cannot write the queue file", self.stderr())
        # the session goes on, and a small message fits: the failed one took no space with it
        self.assertEqual(c.cmd("MAIL FROM:<s@client.test>"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("RCPT TO:<u@mail.test>"), "250 2.1.5 Ok")
        self.assertEqual(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>")
        c.send(b"Subject: small\r\n\r\nfits\r\n.\r\n")
        m = QUEUED_RE.match(c.reply())
        self.assertTrue(m, "no queue ID")
        self.assertEqual(os.listdir(incoming), [m.group(1)])


# ---- 9: configuration errors ----------------------------------------------------------------------

class ConfigErrors(SmtpdTestCase):
    def refused(self, settings, *needles):
        """tern-smtpd with SETTINGS exits non-zero at once, without listening, its stderr naming
        every one of NEEDLES."""
        self.configure(**settings)
        p = subprocess.run([SMTPD, "-c", self.conf_path], env=self.env(), capture_output=True,
                           timeout=EXIT_TIMEOUT)
        err = p.stderr.decode(errors="replace")
        self.assertNotEqual(p.returncode, 0, err)
        self.assertNotRegex(err, SANITIZER_RE)
        for n in needles:
            self.assertIn(n, err)
        self.assertFalse(listening(self.port))
        return err

    def test_09a_bad_mynetworks(self):
        self.refused({"mynetworks": "127.0.0.0/8 192.0.2.0/33"}, "parameter mynetworks", '"192.0.2.0/33"')
        self.refused({"mynetworks": "127.0.0.1/8"}, "parameter mynetworks", '"127.0.0.1/8"')
        self.refused({"mynetworks": "bogus!"}, "parameter mynetworks", '"bogus!"')

    def test_09b_unknown_restriction(self):
        self.refused({"smtpd_relay_restrictions": "permit_mynetworks, reject_everything"},
                     "parameter smtpd_relay_restrictions", '"reject_everything"')
        self.refused({"smtpd_recipient_restrictions": "check_recipient_access"},
                     "parameter smtpd_recipient_restrictions", '"check_recipient_access"')

    def test_09c_missing_table(self):
        """A check_*_access table that does not exist stops the daemon with a message that names
        the table and the parameter that refers to it (Postfix itself does not stop; it answers
        451 4.3.5 at run time)."""
        table = os.path.join(self.tmp, "no-such-table")
        self.refused({"smtpd_recipient_restrictions": "check_recipient_access texthash:" + table},
                     "texthash:" + table, "No such file or directory", "smtpd_recipient_restrictions")

    def test_09d_open_relay(self):
        self.refused({"smtpd_relay_restrictions": "", "smtpd_recipient_restrictions": ""},
                     "smtpd_relay_restrictions and smtpd_recipient_restrictions are both empty")


if __name__ == "__main__":
    unittest.main(verbosity=2)
