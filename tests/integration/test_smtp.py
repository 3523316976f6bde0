# SPDX-License-Identifier: MIT
"""tern-smtp (Postfix's smtp(8)/lmtp(8)) end to end, on loopback only.

The real tern-smtp serves io.tern.Delivery.Deliver on runtime_directory/smtp (or /lmtp with
-t lmtp), by hand (a child per varlink connection) and under `systemd-socket-activate --accept`
(a process per connection). It is fed real queue files ($QUEUE_TOOL) as descriptors through the
independent Python varlink client (varlink.py), and delivers to:
  - Postfix's own smtp-sink (Debian's postfix package unpacked by tools/fetch-postfix.sh into
    BUILD/postfix-root, or $POSTCAT_ROOT, or an installed /usr/sbin/smtp-sink), which dumps each
    message into its own file (-d DIR/%M.), counts sessions and messages (-c), speaks LMTP (-L),
    listens on a UNIX socket (unix:PATH), and refuses commands with 4XX (-r) or 5XX (-f);
  - FakeServer, a scripted SMTP server in this process that misbehaves on purpose: per-recipient
    replies, a 421 greeting, no greeting at all, a stall after DATA, 100 kB reply lines, replies
    that never end, garbage, connections closed half-way.
Every nexthop is a loopback literal ([127.0.0.1]:PORT, ports found by binding port 0) or a UNIX
socket: nothing here can reach a real name or the network.

What is tested (numbered as the methods are):
  1. delivery by hand: per-recipient results (sent, 2.0.0, smtp-sink's "250 2.0.0 Ok", relay
     127.0.0.1[127.0.0.1]:PORT), Postfix's exact log lines, and the message byte for byte in the
     dump (lines starting with '.', '..' and a lone '.', a 3000-byte line, 8-bit bytes,
     LF-only input), with BODY=8BITMIME; DSN parameters (RET, ENVID, NOTIFY, ORCPT in xtext);
     HELO when EHLO is refused; a lone '.', a '..' and a CRLF line end on the 64 KiB boundaries
     where the agent encodes the content in pieces, and content without a last newline;
  2. systemd-socket-activate --accept: READY=1, one delivery, the process exits 0;
  3. 4XX and 5XX replies: one recipient refused (5XX bounced with "host ... said: ... (in reply to
     RCPT TO command)", the other sent, and only it in the transaction); every RCPT 4XX
     (deferred); MAIL FROM, DATA and end of DATA, 4XX (deferred) and 5XX (bounced), without
     PIPELINING (smtp-sink -r/-f) and with it (FakeServer); SIZE= on MAIL FROM, and a message
     over the server's SIZE bounced 5.3.4 without a transaction;
  4. the next server: a dead port then a live one, a 421 greeting then a live one; only dead or
     refusing servers: deferred with "connect to ...: Connection refused" and a hop status, also
     when the last server refuses with a 421 greeting; smtp_mx_session_limit counted per
     destination of a nexthop list; a 5XX greeting (smtp_skip_5xx_greeting yes and no);
  5. LMTP (tern-smtp -t lmtp) against smtp-sink -L over TCP and over a UNIX socket, and the
     per-recipient replies after DATA (sent, bounced at RCPT, deferred at the end of DATA);
  6. timeouts: no greeting (smtp_helo_timeout), no reply after the message
     (smtp_data_done_timeout), a server that stops reading the message (smtp_data_xfer_timeout),
     a connection that is never accepted (smtp_connect_timeout): deferred within a few seconds,
     with Postfix's texts;
  7. broken servers: 100 kB reply lines, a reply of more than 100 lines, garbage, a connection
     closed in the middle of DATA or right after the greeting: deferred (4.X.X) with a clear
     reason, never sent, and the next delivery on the same connection works;
  8. a queue file that reads short (truncated copies): deferred, "error reading message";
  9. connection reuse through tern-scache across two agent processes (qmgr's connCacheStore /
     connCacheLoad hints, and smtp_connection_cache_destinations): one smtp-sink session for two
     messages, conn_use=2; a cached session the server has closed meanwhile is given up for a
     new one; without tern-scache delivery still works, Postfix's warnings once;
 10. the whole path: tern-sendmail -> tern-submit -> tern-qmgr -> tern-smtp (+ tern-scache) ->
     smtp-sink for 50 messages (all dumped, the queue empty, fewer sessions than messages); then a
     destination that defers (nothing listening), its tern-flush logfile, and `ternctl flush
     send-site` once a sink listens: delivered.
Every daemon not killed on purpose must exit 0 on SIGTERM with no sanitizer report (harness.py).

Three methods FAIL on purpose, for differences from Postfix that tern-smtp has (see each one's
docstring): test_03c_size (the 5.3.4 text names the server with its port),
test_04b_refusing_greeting_is_a_hop_failure (a 4.3.X greeting refusal on the last server gives
no hop status, so qmgr never throttles that destination), test_04c_session_limit_per_destination
(smtp_mx_session_limit is counted over the whole nexthop list, so a third destination is never
tried).

Exits 77 (skipped) when smtp-sink cannot be had.

Binaries: $TERN_SMTP, $TERN_SCACHE, $TERN_FLUSH, $TERN_QMGR, $TERN_SUBMIT, $TERNCTL,
$TERN_SENDMAIL, $QUEUE_TOOL; $TERN_BUILD_ROOT for postfix-root.
"""
import concurrent.futures
import os
import re
import select
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import varlink  # noqa: E402
from harness import (SOURCE_ROOT, SANITIZER_RE, START_TIMEOUT, EXIT_TIMEOUT,  # noqa: E402
                     DaemonTestCase, find_postfix_root, write_conf, write_queue_conf,
                     wait_until)

BUILD_ROOT = os.environ.get("TERN_BUILD_ROOT", os.path.join(SOURCE_ROOT, "build"))
SMTP = os.environ.get("TERN_SMTP", os.path.join(BUILD_ROOT, "src", "smtp", "tern-smtp"))
SCACHE = os.environ.get("TERN_SCACHE", os.path.join(BUILD_ROOT, "src", "scache", "tern-scache"))
FLUSH = os.environ.get("TERN_FLUSH", os.path.join(BUILD_ROOT, "src", "flush", "tern-flush"))
QMGR = os.environ.get("TERN_QMGR", os.path.join(BUILD_ROOT, "src", "qmgr", "tern-qmgr"))
SUBMIT = os.environ.get("TERN_SUBMIT", os.path.join(BUILD_ROOT, "src", "submit", "tern-submit"))
TERNCTL = os.environ.get("TERNCTL", os.path.join(BUILD_ROOT, "src", "ctl", "ternctl"))
SENDMAIL = os.environ.get("TERN_SENDMAIL", os.path.join(BUILD_ROOT, "src", "sendmail", "tern-sendmail"))
QUEUE_TOOL = os.environ.get("QUEUE_TOOL", os.path.join(BUILD_ROOT, "tests", "integration", "queue-tool"))

DELIVER = "io.tern.Delivery.Deliver"
QID = "4Yc2Xz1x2Wz9smt"
SENDER = "sender@example.org"
RCPTS = ("a@example.com", "b@example.com")
LOOP = "127.0.0.1"
# smtp-sink's replies: to the end of DATA, and to any command refused with -r (4XX) or -f (5XX)
SINK_OK = "250 2.0.0 Ok"
SINK_SOFT = "450 4.3.0 Error: command failed"
SINK_HARD = "500 5.3.0 Error: command failed"
FAKE_OK = "250 2.0.0 Ok: queued as FAKE"
RUN_TIMEOUT = 60
# How long a test lets a delivery that should fail fast (a timeout of 1 s, a malformed reply) take
FAST = 5.0

# The message of test 1: what must come out of smtp-sink's dump byte for byte. LF line ends only;
# lines that start with '.' (dot-stuffed on the wire, unstuffed by the sink), a lone '.', a line
# longer than Postfix's 2048-byte line_length_limit, 8-bit bytes, an empty line.
LONG_LINE = b"long: " + b"".join(bytes([0x61 + i % 26]) for i in range(3000))
CONTENT = (b"Subject: tern-smtp test\nFrom: <sender@example.org>\nTo: <a@example.com>\n\n"
           b".starts with a dot\n..starts with two dots\n.\n. a dot and a space\n" + LONG_LINE +
           b"\nhalf 8-bit: caf\xc3\xa9 \xff\xfe\x80\n\n...\nlast line\n")
SMALL = b"Subject: small\n\nhello\n"


# ---- smtp-sink --------------------------------------------------------------------------------

SINK_ROOT = find_postfix_root("smtp-sink")
if SINK_ROOT is None:
    print("smtp: smtp-sink not in $POSTCAT_ROOT, BUILD/postfix-root or /usr/sbin, "
          "and tools/fetch-postfix.sh failed: skipped")
    sys.stdout.flush()
    sys.exit(77)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOP, 0))
        return s.getsockname()[1]


def tcp_sockets(port):
    """The states (hex, /proc/net/tcp) of the sockets whose local end is 127.0.0.1:PORT."""
    want = "%08X:%04X" % (struct.unpack("=I", socket.inet_aton(LOOP))[0], port)
    with open("/proc/net/tcp") as f:
        next(f)
        return [w[3] for w in (line.split() for line in f) if w[1] == want]


def unix_listening(path):
    """Is there a listening UNIX stream socket bound to PATH (/proc/net/unix flags __SO_ACCEPTCON)?"""
    with open("/proc/net/unix") as f:
        next(f)
        return any(len(w) >= 8 and w[7] == path and w[3] == "00010000" for w in (line.split() for line in f))


class Sink:
    """Postfix's smtp-sink on 127.0.0.1:PORT (or unix:PATH), dumping each message into its own
    file in DIR (-d DIR/%M.) and counting sessions and messages (-c, on its stdout)."""

    COUNT_RE = re.compile(r"sess=(\d+) quit=(\d+) mesg=(\d+)")

    def __init__(self, top, port=None, unix=None, options=()):
        self.port, self.unix = (None, unix) if unix else (port or free_port(), None)
        self.name = "sink-%s" % (self.port or os.path.basename(unix))
        self.dir = os.path.join(top, self.name)
        os.mkdir(self.dir)
        os.chmod(self.dir, 0o777)          # smtp-sink writes as nobody
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
        if SINK_ROOT != "/":
            env["LD_LIBRARY_PATH"] = os.path.join(SINK_ROOT, "usr/lib/postfix")
        argv = [os.path.join(SINK_ROOT, "usr/sbin/smtp-sink"), "-c", "-d", os.path.join(self.dir, "%M.")]
        if os.geteuid() == 0:
            argv += ["-u", "nobody"]
        argv += list(options)
        argv += ["unix:" + unix if unix else "%s:%d" % (LOOP, self.port), "100"]
        self.err_path = os.path.join(top, self.name + ".err")
        self.out_path = os.path.join(top, self.name + ".out")
        with open(self.err_path, "wb") as err, open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        ok = wait_until(lambda: self.proc.poll() is not None or self.listening(), START_TIMEOUT)
        if self.proc.poll() is not None or not ok:
            self.stop()
            raise AssertionError("smtp-sink %s is not listening: %s" % (argv, self.stderr()))

    @property
    def nexthop(self):
        return "unix:" + self.unix if self.unix else "[%s]:%d" % (LOOP, self.port)

    @property
    def relay(self):
        """How tern-smtp names this server in relay= (Postfix: host[addr]:port, MYHOSTNAME[path])."""
        return "client.test[%s]" % self.unix if self.unix else "%s[%s]:%d" % (LOOP, LOOP, self.port)

    def listening(self):
        if self.unix:
            return unix_listening(self.unix)
        return "0A" in tcp_sockets(self.port)

    def open_sessions(self):
        """Server-side sessions not yet ended (ESTABLISHED or CLOSE_WAIT); TCP only."""
        return sum(1 for st in tcp_sockets(self.port) if st in ("01", "08"))

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode(errors="replace")

    def counters(self):
        """The last (sessions ended, QUITs, messages) that -c printed, or (0, 0, 0)."""
        with open(self.out_path, "rb") as f:
            found = self.COUNT_RE.findall(f.read().decode(errors="replace"))
        return tuple(int(x) for x in found[-1]) if found else (0, 0, 0)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def names(self):
        return sorted(os.listdir(self.dir))

    def count(self):
        return len(self.names())

    def dumps(self):
        """Every dump file's bytes."""
        out = []
        for n in self.names():
            with open(os.path.join(self.dir, n), "rb") as f:
                out.append(f.read())
        return out


# ---- a server that misbehaves on purpose -------------------------------------------------------

class FakeConn:
    """One connection to FakeServer, as its handler sees it."""

    def __init__(self, server, sock):
        self.server = server
        self.sock = sock
        self.buf = b""
        self.commands = []          # the command lines the client sent (not message content)

    def send(self, data):
        self.sock.sendall(data.encode("latin-1") if isinstance(data, str) else data)

    def reply(self, text):
        """TEXT's lines, each ended with CRLF."""
        self.send("".join(line + "\r\n" for line in text.split("\n")))

    def readline(self):
        """The next line without its end; EOFError when the client has gone."""
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        return line[:-1] if line.endswith(b"\r") else line

    def read_message(self):
        """The content up to the "." line, unstuffed, with LF line ends."""
        lines = []
        while True:
            line = self.readline()
            if line == b".":
                return b"".join(x + b"\n" for x in lines)
            lines.append(line[1:] if line.startswith(b".") else line)

    def hang(self):
        """Read and drop whatever comes until the client leaves (or the server closes)."""
        while self.sock.recv(65536):
            pass


class Replied(str):
    """What a dialog step returns when it has sent its reply itself: the reply's code."""


def act(c, what, arg=None):
    """Answer with WHAT: a reply (lines separated by "\\n"), or a callable(c, arg) that returns
    one, or sends its own and returns Replied(code), or does what it likes and returns None. The
    reply, or None: the dialog ends."""
    if callable(what):
        what = what(c, arg)
        if what is None:
            return None
    if not isinstance(what, Replied):
        c.reply(what)
    return what


def hang(c, arg):
    """A dialog step: say nothing more, read until the client leaves."""
    c.hang()
    return None


EHLO_OK = "250-fake.test\n250-PIPELINING\n250-8BITMIME\n250 ENHANCEDSTATUSCODES"


def smtp_dialog(c, greeting="220 fake.test ESMTP", ehlo=EHLO_OK, mail="250 2.1.0 Ok", rcpt="250 2.1.5 Ok",
                data="354 End data with <CR><LF>.<CR><LF>", dot=FAKE_OK):
    """An SMTP server's side of a session, each reply scripted (see act()); RCPT may also be a dict
    address -> reply (others get 250). Keeps state as Postfix's smtpd does: RCPT after a refused
    MAIL, DATA without an accepted RCPT get 503/554."""
    if act(c, greeting) is None:
        return
    mail_ok, accepted = False, []
    while True:
        line = c.readline()
        c.commands.append(line)
        verb = line[:4].upper()
        if verb in (b"EHLO", b"HELO", b"LHLO"):
            r = act(c, ehlo, line)
        elif verb == b"MAIL":
            r = act(c, mail, line)
            mail_ok = r is not None and r.startswith("2")
            accepted = []
        elif verb == b"RCPT":
            addr = line[line.find(b"<") + 1:line.find(b">")].decode()
            if not mail_ok:
                r = act(c, "503 5.5.1 Error: need MAIL command")
            else:
                r = act(c, rcpt.get(addr, "250 2.1.5 Ok") if isinstance(rcpt, dict) else rcpt, addr)
                if r is not None and r.startswith("2"):
                    accepted.append(addr)
        elif verb == b"DATA":
            if not mail_ok:
                r = act(c, "503 5.5.1 Error: need RCPT command")
            elif not accepted:
                r = act(c, "554 5.5.1 Error: no valid recipients")
            else:
                r = act(c, data, line)
                if r is not None and r.startswith("354"):
                    message = c.read_message()
                    c.server.messages.append((list(accepted), message))
                    r = act(c, dot, message)
            mail_ok, accepted = False, []
        elif verb == b"RSET":
            mail_ok, accepted = False, []
            r = act(c, "250 2.0.0 Ok")
        elif verb == b"QUIT":
            act(c, "221 2.0.0 Bye")
            return
        elif verb == b"NOOP":
            r = act(c, "250 2.0.0 Ok")
        else:
            r = act(c, "502 5.5.2 Error: command not recognized")
        if r is None:
            return


class FakeServer:
    """An SMTP server on 127.0.0.1 (an ephemeral port) in this process: HANDLER(conn) runs in a
    thread per connection; the connection is closed when it returns (or fails)."""

    def __init__(self, handler, rcvbuf=None):
        self.handler = handler
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            # inherited by accepted sockets; a fixed size turns off receive buffer autotuning
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.listener.bind((LOOP, 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.conns = []
        self.messages = []         # (accepted recipients, content) per transaction
        self.threads = []
        self.stop_r, self.stop_w = os.pipe()
        self.closed = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def nexthop(self):
        return "[%s]:%d" % (LOOP, self.port)

    @property
    def relay(self):
        return "%s[%s]:%d" % (LOOP, LOOP, self.port)

    def _accept(self):
        while True:
            r, _, _ = select.select([self.listener, self.stop_r], [], [])
            if self.stop_r in r:
                return
            s, _ = self.listener.accept()
            c = FakeConn(self, s)
            with self.lock:
                self.conns.append(c)
            t = threading.Thread(target=self._serve, args=(c,), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, c):
        try:
            self.handler(c)
        except (EOFError, OSError):
            pass
        finally:
            c.sock.close()

    def connections(self):
        with self.lock:
            return len(self.conns)

    def close(self):
        if self.closed:
            return
        self.closed = True
        os.write(self.stop_w, b"x")
        self.thread.join(EXIT_TIMEOUT)
        self.listener.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for t in self.threads:
            t.join(EXIT_TIMEOUT)
        os.close(self.stop_r)
        os.close(self.stop_w)


# ---- the tests' base --------------------------------------------------------------------------

def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


class QueueFile:
    """A queue file written by queue-tool, open for reading; its content's offset and size."""

    def __init__(self, path, content, rcpts, sender=SENDER):
        argv = [QUEUE_TOOL, "write", path, "-f", sender]
        for r in rcpts:
            argv += ["-r", r]
        p = subprocess.run(argv, input=content, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if p.returncode != 0:
            raise AssertionError("queue-tool write: %s" % p.stderr.decode(errors="replace"))
        dump = subprocess.run([QUEUE_TOOL, "dump", path], stdout=subprocess.PIPE, check=True).stdout.decode()
        size = re.search(r"^size: (\d+) (\d+) ", dump, re.M)
        self.path = path
        self.size, self.data_offset = int(size.group(1)), int(size.group(2))
        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)

    def close(self):
        os.close(self.fd)


class SmtpTestCase(DaemonTestCase):
    TMP_PREFIX = "tern-smtp-it-"
    DAEMON = "tern-smtp"
    BINARY = SMTP
    SOCKET_NAME = "smtp"
    STDERR_NAME = "daemons.err"
    STDERR_APPEND = True
    TRANSPORT = None            # -t TRANSPORT

    def setUp(self):
        super().setUp()
        os.chmod(self.tmp, 0o755)          # smtp-sink (as nobody) writes below it
        self.sinks = []
        self.fakes = []
        self.configure()
        self.qf = self.queue_file("queuefile", CONTENT, RCPTS)

    def tearDown(self):
        for s in self.sinks:
            s.stop()
        for f in self.fakes:
            f.close()
        super().tearDown()

    def configure(self, **settings):
        conf = {"runtime_directory": self.rt, "queue_directory": os.path.join(self.tmp, "q"),
                "myhostname": "client.test", "inet_protocols": "ipv4", "smtp_connect_timeout": "2s",
                "max_use": 100, "max_idle": "100s"}
        conf.update(settings)
        write_conf(self.conf_path, self.id(), conf)

    def queue_file(self, name, content, rcpts):
        qf = QueueFile(os.path.join(self.tmp, name), content, rcpts)
        self.addCleanup(qf.close)
        return qf

    # ---- daemons and servers

    def daemon_argv(self):
        return [SMTP, "-c", self.conf_path] + (["-t", self.TRANSPORT] if self.TRANSPORT else [])

    def start_by_hand(self):
        d = self.spawn(self.daemon_argv(), self.env())
        self.assertTrue(wait_until(lambda: os.path.exists(self.socket_path) or not d.running(), START_TIMEOUT))
        self.assertTrue(d.running(), d.stderr())
        return d

    def start_scache(self):
        path = os.path.join(self.rt, "scache")
        d = self.spawn([SCACHE, "-c", self.conf_path], self.env())
        self.assertTrue(wait_until(lambda: os.path.exists(path) or not d.running(), START_TIMEOUT),
                        "tern-scache did not bind %s:\n%s" % (path, self.stderr()))
        self.assertTrue(d.running(), self.stderr())
        return d

    def sink(self, *options, unix=None, port=None):
        s = Sink(self.tmp, port=port, unix=unix, options=options)
        self.sinks.append(s)
        return s

    def fake(self, handler=None, rcvbuf=None, **dialog):
        """A FakeServer running HANDLER, or smtp_dialog with DIALOG's replies."""
        f = FakeServer(handler or (lambda c: smtp_dialog(c, **dialog)), rcvbuf=rcvbuf)
        self.fakes.append(f)
        return f

    # ---- requests

    def request(self, nexthop, qf=None, rcpts=RCPTS, **extra):
        qf = qf or self.qf
        arrival = int(time.time() * 1000000) - 300000
        r = {"queueId": QID, "queueName": "active", "fd": 0, "dataOffset": qf.data_offset, "size": qf.size,
             "nexthop": nexthop, "sender": SENDER,
             "recipients": [{"address": a, "offset": 100 * (i + 1)} for i, a in enumerate(rcpts)],
             "arrivalTime": arrival, "activeTime": arrival + 100000, "handoffTime": arrival + 200000}
        r.update(extra)
        return r

    def deliver(self, conn, nexthop, qf=None, rcpts=RCPTS, **extra):
        """One Deliver call on CONN (a varlink connection, or None for a new one): the reply."""
        params = self.request(nexthop, qf, rcpts, **extra)
        fd = (qf or self.qf).fd
        if conn is not None:
            return conn.call(DELIVER, params, fds=[fd])
        with varlink.connect(self.socket_path) as c:
            return c.call(DELIVER, params, fds=[fd])

    def connect(self):
        c = varlink.connect(self.socket_path, timeout=RUN_TIMEOUT)
        self.addCleanup(c.close)
        return c

    # ---- judging

    def assertResults(self, reply, status, dsn, text, relay, rcpts=RCPTS):
        """Every recipient of REPLY has STATUS, DSN, RELAY and TEXT (a string, or a compiled
        pattern that must match all of it)."""
        self.assertEqual([r["offset"] for r in reply["recipients"]], [100 * (i + 1) for i in range(len(rcpts))],
                         reply)
        for r in reply["recipients"]:
            self.assertEqual((r["status"], r["dsn"], r["relay"]), (status, dsn, relay), reply)
            if isinstance(text, str):
                self.assertEqual(r["text"], text, reply)
            else:
                self.assertTrue(text.fullmatch(r["text"]), "%r does not match %r" % (r["text"], text.pattern))

    def log_re(self, to, relay, dsn, status, text, conn_use=None):
        """Postfix's delivery line for TO (TEXT a regular expression)."""
        return re.compile(r"(?m)^tern/smtp: %s: to=<%s>, relay=%s%s, delay=[0-9.]+, "
                          r"delays=0\.1/0\.1/[0-9.]+/[0-9.]+, dsn=%s, status=%s \(%s\)$"
                          % (QID, re.escape(to), re.escape(relay),
                             ", conn_use=%d" % conn_use if conn_use else "", re.escape(dsn), status, text))

    def wait_log(self, pattern, count=1):
        self.assertTrue(wait_until(lambda: len(pattern.findall(self.stderr())) >= count, START_TIMEOUT),
                        "not %d lines like %r in stderr:\n%s" % (count, pattern.pattern, self.stderr()[-4000:]))

    def wait_dumps(self, sink, n):
        """SINK dumped N messages, each complete (smtp-sink ends a dump with an empty line)."""
        def done():
            d = sink.dumps()
            return len(d) >= n and all(x.endswith(b"\n\n") for x in d)
        self.assertTrue(wait_until(done, START_TIMEOUT), "%s got %d messages, not %d" % (sink.name, sink.count(), n))
        self.assertEqual(sink.count(), n)
        return sink.dumps()

    def sessions(self, sink):
        """(sessions, messages) SINK saw, once every session has ended."""
        self.assertTrue(wait_until(lambda: sink.open_sessions() == 0, START_TIMEOUT),
                        "%s still has %d open sessions" % (sink.name, sink.open_sessions()))
        sess, _, mesg = sink.counters()
        return sess, mesg


def dumped_content(dump):
    """The message in an smtp-sink dump: after its X- headers and its Received: header (with its
    continuation lines), without the empty line the sink adds at the end."""
    j = dump.index(b"\n", dump.index(b"\nReceived: ") + 1) + 1
    while dump[j:j + 1] in (b"\t", b" "):
        j = dump.index(b"\n", j) + 1
    assert dump.endswith(b"\n\n"), dump[-100:]
    return dump[j:-1]


# ---- 1, 2: delivery by hand and socket-activated --------------------------------------------

class Delivery(SmtpTestCase):
    def test_01_by_hand_byte_for_byte(self):
        """Deliver by hand to smtp-sink: each recipient sent (2.0.0, the sink's 250 reply, relay
        127.0.0.1[127.0.0.1]:PORT), Postfix's log line per recipient, no hop status, and the
        message byte for byte in the sink's dump (dots, a 3000-byte line, 8-bit, LF input), with
        BODY=8BITMIME and both recipients in one transaction."""
        sink = self.sink()
        self.start_by_hand()
        r = self.deliver(None, sink.nexthop)
        self.assertResults(r, "sent", "2.0.0", SINK_OK, sink.relay)
        self.assertNotIn("hopStatus", r)
        for to in RCPTS:
            self.wait_log(self.log_re(to, sink.relay, "2.0.0", "sent", re.escape(SINK_OK)))
        dump = self.wait_dumps(sink, 1)[0]
        self.assertEqual(dumped_content(dump), CONTENT)
        head = dump[:dump.index(b"\nReceived: ")].decode()
        self.assertIn("X-Helo-Args: client.test\n", head)
        self.assertIn("X-Mail-Args: <%s> BODY=8BITMIME\n" % SENDER, head)
        self.assertEqual(re.findall(r"X-Rcpt-Args: <([^>]*)>", head), list(RCPTS))
        self.assertEqual(self.sessions(sink), (1, 1))

    def test_01b_dsn_parameters(self):
        """To a server that announces DSN (smtp-sink): RET and ENVID on MAIL FROM, NOTIFY and ORCPT
        on each RCPT TO, as Postfix sends them (xtext: "+" "=" and blanks as +XX)."""
        sink = self.sink()
        self.start_by_hand()
        rcpts = [{"address": "a@example.com", "offset": 100, "notifyFlags": 2 | 8,
                  "dsnOrigRcpt": "rfc822;A+x=y@Example.COM"},
                 {"address": "b@example.com", "offset": 200, "notifyFlags": 1},
                 {"address": "c@example.com", "offset": 300, "notifyFlags": 4 | 8, "origAddress": "list@example.com"}]
        params = self.request(sink.nexthop, envelopeId="env id+=1", retFlags=2)
        params["recipients"] = rcpts
        with varlink.connect(self.socket_path) as c:
            r = c.call(DELIVER, params, fds=[self.qf.fd])
        self.assertEqual([x["status"] for x in r["recipients"]], ["sent"] * 3, r)
        head = self.wait_dumps(sink, 1)[0].decode(errors="replace")
        self.assertIn("X-Mail-Args: <%s> BODY=8BITMIME RET=HDRS ENVID=env+20id+2B+3D1\n" % SENDER, head)
        self.assertEqual(re.findall(r"X-Rcpt-Args: (.*)\n", head),
                         ["<a@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;A+2Bx+3Dy@Example.COM",
                          "<b@example.com> NOTIFY=NEVER", "<c@example.com> NOTIFY=DELAY,FAILURE"])
        self.wait_log(re.compile(r"(?m)^tern/smtp: %s: to=<c@example\.com>, orig_to=<list@example\.com>, "
                                 r"relay=%s, .*status=sent " % (QID, re.escape(sink.relay))))

    def test_01c_helo_fallback(self):
        """A server without ESMTP (smtp-sink -e refuses EHLO): HELO, no extensions (no BODY=, no
        pipelining), delivered intact."""
        sink = self.sink("-e")
        self.start_by_hand()
        r = self.deliver(None, sink.nexthop)
        self.assertResults(r, "sent", "2.0.0", SINK_OK, sink.relay)
        dump = self.wait_dumps(sink, 1)[0]
        self.assertEqual(dumped_content(dump), CONTENT)
        self.assertIn(b"X-Client-Proto: SMTP\n", dump)
        self.assertIn(b"X-Mail-Args: <%s>\n" % SENDER.encode(), dump)

    def test_01d_chunk_boundaries(self):
        """tern-smtp encodes the content 64 KiB at a time (smtp-deliver.c SMTP_DATA_CHUNK): a lone
        "." line starting exactly at 64 KiB (unstuffed, it would end the message early), a ".."
        line at 128 KiB, a CR as the last byte of a chunk with its LF the first of the next (one
        line end, as "\\r\\n" is), and content that does not end with a newline: the dump holds
        the message whole."""
        chunk = 65536
        content = b"Subject: chunk boundaries\n\n"

        def fill_to(offset):
            nonlocal content
            while offset - len(content) > 100:
                content += b"x" * 99 + b"\n"
            content += b"y" * (offset - len(content) - 1) + b"\n"
        fill_to(chunk)
        content += b".\n"
        fill_to(2 * chunk)
        content += b"..two dots at 128k\n"
        fill_to(3 * chunk - 3)
        content += b"cr\r\nafter the crlf\n"
        content += b"no newline at the end"
        self.assertEqual(content[chunk:chunk + 2], b".\n")
        self.assertEqual(content[3 * chunk - 1:3 * chunk + 1], b"\r\n")
        qf = self.queue_file("qf-chunks", content, RCPTS)
        sink = self.sink()
        self.start_by_hand()
        self.assertResults(self.deliver(None, sink.nexthop, qf=qf), "sent", "2.0.0", SINK_OK, sink.relay)
        got = dumped_content(self.wait_dumps(sink, 1)[0])
        self.assertEqual(got, content.replace(b"cr\r\n", b"cr\n") + b"\n")

    def test_02_socket_activated_accept(self):
        """Under systemd-socket-activate --accept (a process per connection, as an Accept=yes unit):
        READY=1, one delivery sent, the process exits 0 when the client hangs up."""
        sink = self.sink()
        self.listen_notify("notify")
        argv = ["systemd-socket-activate", "-l", self.socket_path, "--accept",
                "-E", "NOTIFY_SOCKET=" + self.notify.path]
        for kv in sorted(self.env().items()):
            if kv[0] != "PATH":
                argv += ["-E", "%s=%s" % kv]
        d = self.spawn(argv + self.daemon_argv(), self.env())
        # systemd-socket-activate --accept dies of SIGTERM: the agent is judged by "Child N died
        # with code 0" instead.
        d.killed = True
        self.addCleanup(lambda: (d.proc.terminate(), d.proc.wait(EXIT_TIMEOUT)))
        self.assertTrue(wait_until(lambda: "Listening on %s" % self.socket_path in d.stderr(), START_TIMEOUT),
                        d.stderr())
        with varlink.connect(self.socket_path) as c:
            r = self.deliver(c, sink.nexthop)
            self.notify.wait_for("READY=1")
        self.assertResults(r, "sent", "2.0.0", SINK_OK, sink.relay)
        self.assertTrue(wait_until(lambda: re.search(r"Child \d+ died with code 0", d.stderr()), EXIT_TIMEOUT),
                        d.stderr())
        self.assertNotRegex(d.stderr(), SANITIZER_RE)
        self.wait_log(self.log_re(RCPTS[1], sink.relay, "2.0.0", "sent", re.escape(SINK_OK)))
        self.assertEqual(dumped_content(self.wait_dumps(sink, 1)[0]), CONTENT)


# ---- 3: negative replies ------------------------------------------------------------------------

def said(reply, command):
    return "host %s[%s] said: %s (in reply to %s command)" % (LOOP, LOOP, reply, command)


class Replies(SmtpTestCase):
    def test_03a_one_recipient_refused(self):
        """5XX to one RCPT: that recipient bounced with "host 127.0.0.1[127.0.0.1] said: 550 ...
        (in reply to RCPT TO command)", the other sent with the end of DATA's reply, and only it
        in the transaction; a 4XX to one RCPT: that one deferred. No hop status: the server
        answered."""
        refuse = "550 5.1.1 <b@example.com>: Recipient address rejected: User unknown"
        later = "451 4.3.0 <c@example.com>: Temporary lookup failure"
        f = self.fake(rcpt={"b@example.com": refuse, "c@example.com": later})
        self.start_by_hand()
        c = self.connect()
        r = self.deliver(c, f.nexthop)
        self.assertNotIn("hopStatus", r)
        self.assertEqual(r["recipients"], [
            {"offset": 100, "status": "sent", "dsn": "2.0.0", "text": FAKE_OK, "relay": f.relay},
            {"offset": 200, "status": "bounced", "dsn": "5.1.1", "text": said(refuse, "RCPT TO"), "relay": f.relay}])
        self.assertEqual(f.messages, [(["a@example.com"], CONTENT)])
        self.wait_log(self.log_re("a@example.com", f.relay, "2.0.0", "sent", re.escape(FAKE_OK)))
        self.wait_log(self.log_re("b@example.com", f.relay, "5.1.1", "bounced",
                                  re.escape(said(refuse, "RCPT TO"))))
        qf = self.queue_file("qf-ac", SMALL, ("a@example.com", "c@example.com"))
        r = self.deliver(c, f.nexthop, qf=qf, rcpts=("a@example.com", "c@example.com"))
        self.assertEqual([(x["status"], x["dsn"], x["text"]) for x in r["recipients"]],
                         [("sent", "2.0.0", FAKE_OK), ("deferred", "4.3.0", said(later, "RCPT TO"))])
        self.assertEqual(f.messages[1], (["a@example.com"], SMALL))

    def test_03b_refused_commands(self):
        """smtp-sink refusing every RCPT, MAIL FROM, DATA or end of DATA with 4XX (-r: deferred) or
        5XX (-f: bounced), every recipient with "host 127.0.0.1[127.0.0.1] said: REPLY (in reply to
        COMMAND command)" and no hop status; nothing is delivered; and the same agent connection
        delivers to a willing sink afterwards."""
        cases = [("-r", "rcpt", "RCPT TO"), ("-f", "rcpt", "RCPT TO"),
                 ("-r", "mail", "MAIL FROM"), ("-f", "mail", "MAIL FROM"),
                 ("-r", "data", "DATA"), ("-f", "data", "DATA"),
                 ("-r", ".", "end of DATA"), ("-f", ".", "end of DATA")]
        self.start_by_hand()
        c = self.connect()
        for option, command, said_to in cases:
            with self.subTest(option=option, command=command):
                sink = self.sink(option, command)
                r = self.deliver(c, sink.nexthop)
                soft = option == "-r"
                reply = SINK_SOFT if soft else SINK_HARD
                self.assertResults(r, "deferred" if soft else "bounced", "4.3.0" if soft else "5.3.0",
                                   said(reply, said_to), sink.relay)
                self.assertNotIn("hopStatus", r)
                self.wait_log(self.log_re(RCPTS[0], sink.relay, "4.3.0" if soft else "5.3.0",
                                          "deferred" if soft else "bounced", re.escape(said(reply, said_to))))
                # smtp-sink makes its dump file at the first RCPT and removes it when the session
                # ends without a message: judge once the session (QUIT, not waited for) is over
                sessions, messages = self.sessions(sink)
                self.assertEqual(sessions, 1)
                if command != ".":
                    self.assertEqual((messages, sink.count()), (0, 0),
                                     "%s %s: a message was delivered" % (option, command))
                sink.stop()
        good = self.sink()
        self.assertResults(self.deliver(c, good.nexthop), "sent", "2.0.0", SINK_OK, good.relay)


    def test_03c_size(self):
        """A server that announces SIZE: MAIL FROM carries SIZE=<the request's size>; one whose
        SIZE limit is smaller than the message: every recipient bounced 5.3.4 without a mail
        transaction, with Postfix's text "message size N exceeds size limit L of server
        127.0.0.1[127.0.0.1]" (smtp_proto.c: the server's namaddr, without the port)."""
        roomy = self.fake(ehlo="250-fake.test\n250-PIPELINING\n250-8BITMIME\n250 SIZE 10240000")
        tight = self.fake(ehlo="250-fake.test\n250-PIPELINING\n250 SIZE 1000")
        self.start_by_hand()
        c = self.connect()
        r = self.deliver(c, roomy.nexthop)
        self.assertResults(r, "sent", "2.0.0", FAKE_OK, roomy.relay)
        mail = [x for x in roomy.conns[0].commands if x.startswith(b"MAIL")]
        self.assertEqual(mail, [b"MAIL FROM:<%s> SIZE=%d BODY=8BITMIME" % (SENDER.encode(), self.qf.size)])
        r = self.deliver(c, tight.nexthop)
        text = "message size %d exceeds size limit 1000 of server %s[%s]" % (self.qf.size, LOOP, LOOP)
        self.assertEqual(r["recipients"][0]["status"], "bounced", r)
        self.assertEqual(tight.messages, [])
        self.assertFalse([x for x in tight.conns[0].commands if x.startswith((b"MAIL", b"RCPT", b"DATA"))],
                         tight.conns[0].commands)
        self.assertResults(r, "bounced", "5.3.4", text, tight.relay)
        self.assertNotIn("hopStatus", r)

    def test_03d_refusals_when_pipelining(self):
        """To a server that announces PIPELINING (MAIL, RCPT and DATA go in one write, and the
        server answers each): a 4XX/5XX to MAIL FROM (RCPT and DATA then get 503), every RCPT
        refused (DATA then gets 554, which changes nothing), a 4XX/5XX to DATA: each recipient
        deferred or bounced with the reply "(in reply to COMMAND command)", nothing delivered, and
        the agent's connection serves on."""
        cases = [({"mail": "452 4.3.1 Insufficient system storage"}, "deferred", "4.3.1", "MAIL FROM"),
                 ({"mail": "553 5.7.1 <sender@example.org>: Sender address rejected"}, "bounced", "5.7.1",
                  "MAIL FROM"),
                 ({"rcpt": "550 5.1.1 User unknown"}, "bounced", "5.1.1", "RCPT TO"),
                 ({"rcpt": "450 4.2.0 Greylisted"}, "deferred", "4.2.0", "RCPT TO"),
                 ({"data": "451 4.3.0 Error: queue file write error"}, "deferred", "4.3.0", "DATA"),
                 ({"data": "554 5.7.1 Data refused"}, "bounced", "5.7.1", "DATA")]
        self.start_by_hand()
        c = self.connect()
        for dialog, status, dsn, command in cases:
            with self.subTest(dialog=dialog):
                f = self.fake(**dialog)
                r = self.deliver(c, f.nexthop)
                self.assertResults(r, status, dsn, said(list(dialog.values())[0], command), f.relay)
                self.assertNotIn("hopStatus", r)
                self.assertEqual(f.messages, [])
                verbs = [x[:4] for x in f.conns[0].commands]
                self.assertEqual(verbs[:5], [b"EHLO", b"MAIL", b"RCPT", b"RCPT", b"DATA"], f.conns[0].commands)
        good = self.fake()
        self.assertResults(self.deliver(c, good.nexthop), "sent", "2.0.0", FAKE_OK, good.relay)


# ---- 4: the next server -------------------------------------------------------------------------

def greet_421(c, arg):
    c.reply("421 4.3.2 fake.test Service not available, closing transmission channel")
    return None


class NextServer(SmtpTestCase):
    def test_04_next_server(self):
        """A nexthop list (Postfix 3.5): "[127.0.0.1]:DEAD, [127.0.0.1]:GOOD" is delivered by the
        second (no hop status); a server that greets with 421 then smtp-sink: by smtp-sink. Only
        dead or refusing servers: every recipient deferred with the last failure ("connect to
        127.0.0.1[127.0.0.1]:DEAD: Connection refused", relay=none, or the 421 greeting) and a hop
        status, so that qmgr throttles the destination."""
        sink = self.sink()
        f421 = self.fake(greeting=greet_421)
        dead, dead2 = free_port(), free_port()
        self.start_by_hand()
        c = self.connect()

        r = self.deliver(c, "[%s]:%d, [%s]:%d" % (LOOP, dead, LOOP, sink.port))
        self.assertResults(r, "sent", "2.0.0", SINK_OK, sink.relay)
        self.assertNotIn("hopStatus", r)
        r = self.deliver(c, "%s, %s" % (f421.nexthop, sink.nexthop))
        self.assertResults(r, "sent", "2.0.0", SINK_OK, sink.relay)
        self.assertEqual(f421.connections(), 1)
        self.assertEqual(len(self.wait_dumps(sink, 2)), 2)

        refused = "connect to %s[%s]:%d: Connection refused" % (LOOP, LOOP, dead2)
        for nexthop in ("[%s]:%d, [%s]:%d" % (LOOP, dead, LOOP, dead2), "%s [%s]:%d" % (f421.nexthop, LOOP, dead2)):
            with self.subTest(nexthop=nexthop):
                r = self.deliver(c, nexthop)
                self.assertResults(r, "deferred", "4.4.1", refused, "none")
                self.assertEqual(r.get("hopStatus"), {"dsn": "4.4.1", "text": refused})
                self.wait_log(self.log_re(RCPTS[1], "none", "4.4.1", "deferred", re.escape(refused)))
        self.assertEqual(f421.connections(), 2)
        self.assertEqual(sink.count(), 2)

    def test_04b_refusing_greeting_is_a_hop_failure(self):
        """Only a dead server and one that greets with "421 4.3.2 ...": deferred with the greeting
        ("host 127.0.0.1[127.0.0.1] refused to talk to me: 421 4.3.2 ...") and a hop status, as
        Postfix's smtp_site_fail() throttles the destination for any soft handshake failure (the
        4.3.2 is the server's, not a local problem); smtp-deliver.c's own header says the same."""
        f421 = self.fake(greeting=greet_421)
        dead = free_port()
        self.start_by_hand()
        greeting = ("host %s[%s] refused to talk to me: 421 4.3.2 fake.test Service not available, closing "
                    "transmission channel" % (LOOP, LOOP))
        r = self.deliver(None, "[%s]:%d, %s" % (LOOP, dead, f421.nexthop))
        self.assertResults(r, "deferred", "4.3.2", greeting, f421.relay)
        self.wait_log(self.log_re(RCPTS[0], f421.relay, "4.3.2", "deferred", re.escape(greeting)))
        self.assertEqual(f421.connections(), 1)
        self.assertEqual(r.get("hopStatus"), {"dsn": "4.3.2", "text": greeting},
                         "a destination whose only server refuses to talk is not throttled")

    def test_04c_session_limit_per_destination(self):
        """"[A], [B], [C]" where A and B take the session and answer every RCPT with 450: the
        recipients are kept for the next destination and C (smtp-sink) gets them. Postfix
        enforces smtp_mx_session_limit (2) per destination of the list (smtp_connect.c:
        sess_count is reset for each next-hop), so two busy destinations never hide a third."""
        a = self.fake(rcpt="450 4.2.0 A is busy")
        b = self.fake(rcpt="450 4.2.0 B is busy")
        sink = self.sink()
        self.start_by_hand()
        r = self.deliver(None, "%s, %s, %s" % (a.nexthop, b.nexthop, sink.nexthop))
        self.assertEqual((a.connections(), b.connections()), (1, 1))
        self.assertResults(r, "sent", "2.0.0", SINK_OK, sink.relay)
        self.assertEqual(len(self.wait_dumps(sink, 1)), 1)

    def test_04d_5xx_greeting(self):
        """The only server greets with 554: with smtp_skip_5xx_greeting = yes (the default) it is
        a soft failure (4.7.1, deferred, a hop status; the reply's text as the server sent it);
        with no, every recipient bounces (5.7.1)."""
        f = self.fake(greeting=lambda c, a: c.reply("554 5.7.1 fake.test no service for you"))
        text = "host %s[%s] refused to talk to me: 554 5.7.1 fake.test no service for you" % (LOOP, LOOP)
        d = self.start_by_hand()
        r = self.deliver(None, f.nexthop)
        self.assertResults(r, "deferred", "4.7.1", text, f.relay)
        self.assertEqual(r.get("hopStatus"), {"dsn": "4.7.1", "text": text})
        self.assertEqual(d.stop(), 0)
        self.configure(smtp_skip_5xx_greeting="no")
        self.start_by_hand()
        r = self.deliver(None, f.nexthop)
        self.assertResults(r, "bounced", "5.7.1", text, f.relay)
        self.assertEqual(f.connections(), 2)


# ---- 5: LMTP ----------------------------------------------------------------------------------

class Lmtp(SmtpTestCase):
    SOCKET_NAME = "lmtp"
    TRANSPORT = "lmtp"

    def test_05_lmtp_tcp_and_unix(self):
        """tern-smtp -t lmtp (socket runtime_directory/lmtp) against smtp-sink -L over TCP
        ([127.0.0.1]:PORT) and over a UNIX socket (unix:/path, relay=MYHOSTNAME[/path]): every
        recipient sent with its own reply after DATA, the message intact."""
        rcpts = ("a@example.com", "b@example.com", "c@example.com")
        qf = self.queue_file("qf3", CONTENT, rcpts)
        tcp = self.sink("-L")
        unix = self.sink("-L", unix=os.path.join(self.tmp, "lmtp.sock"))
        self.start_by_hand()
        c = self.connect()
        for sink in (tcp, unix):
            with self.subTest(nexthop=sink.nexthop):
                r = self.deliver(c, sink.nexthop, qf=qf, rcpts=rcpts)
                self.assertResults(r, "sent", "2.2.0", "250 2.2.0 Ok", sink.relay, rcpts=rcpts)
                for to in rcpts:
                    self.wait_log(self.log_re(to, sink.relay, "2.2.0", "sent", re.escape("250 2.2.0 Ok")))
                dump = self.wait_dumps(sink, 1)[0]
                self.assertEqual(dumped_content(dump), CONTENT)
                self.assertIn(b"X-Client-Proto: LMTP\n", dump)
                self.assertIn(b"X-Helo-Args: client.test\n", dump)


    def test_05b_lmtp_reply_per_recipient(self):
        """LMTP to a server that refuses one RCPT (550) and, after DATA, accepts one recipient and
        defers the other (452): sent, bounced "(in reply to RCPT TO command)", deferred "(in reply
        to end of DATA command)", each with its own reply."""
        rcpts = ("a@example.com", "b@example.com", "c@example.com")
        qf = self.queue_file("qf3", SMALL, rcpts)
        refuse = "550 5.1.1 <b@example.com>: Recipient address rejected: User unknown"
        full = "452 4.2.2 <c@example.com>: mailbox full"

        def per_recipient(c, message):
            c.send("250 2.1.5 <a@example.com> delivered\r\n%s\r\n" % full)
            return Replied("250")
        f = self.fake(ehlo="250-fake.test\n250-PIPELINING\n250 ENHANCEDSTATUSCODES",
                      rcpt={"b@example.com": refuse}, dot=per_recipient)
        self.start_by_hand()
        r = self.deliver(None, f.nexthop, qf=qf, rcpts=rcpts)
        self.assertEqual([(x["status"], x["dsn"], x["text"]) for x in r["recipients"]],
                         [("sent", "2.1.5", "250 2.1.5 <a@example.com> delivered"),
                          ("bounced", "5.1.1", said(refuse, "RCPT TO")),
                          ("deferred", "4.2.2", said(full, "end of DATA"))])
        self.assertEqual(f.messages, [(["a@example.com", "c@example.com"], SMALL)])
        self.assertTrue(f.conns[0].commands[0].startswith(b"LHLO "), f.conns[0].commands)


# ---- 6: timeouts --------------------------------------------------------------------------------

class Timeouts(SmtpTestCase):
    def test_06a_no_greeting(self):
        """A server that accepts and never greets, smtp_helo_timeout = 1s: deferred within a few
        seconds, 4.4.2 "conversation with 127.0.0.1[127.0.0.1] timed out while receiving the
        initial server greeting", and a hop status."""
        self.configure(smtp_helo_timeout="1s")
        f = self.fake(greeting=hang)
        self.start_by_hand()
        t = time.monotonic()
        r = self.deliver(None, f.nexthop)
        took = time.monotonic() - t
        text = "conversation with %s[%s] timed out while receiving the initial server greeting" % (LOOP, LOOP)
        self.assertResults(r, "deferred", "4.4.2", text, f.relay)
        self.assertEqual(r.get("hopStatus"), {"dsn": "4.4.2", "text": text})
        self.assertGreaterEqual(took, 0.9)
        self.assertLess(took, FAST)
        self.wait_log(self.log_re(RCPTS[0], f.relay, "4.4.2", "deferred", re.escape(text)))

    def test_06b_stall_after_data(self):
        """A server that takes the whole message and never answers its end,
        smtp_data_done_timeout = 1s: deferred within a few seconds, "conversation with
        127.0.0.1[127.0.0.1] timed out while sending end of data -- message may be sent more than
        once" (4.4.2), no hop status (the server took part in the transaction)."""
        self.configure(smtp_data_done_timeout="1s")
        f = self.fake(dot=hang)
        self.start_by_hand()
        t = time.monotonic()
        r = self.deliver(None, f.nexthop)
        took = time.monotonic() - t
        text = ("conversation with %s[%s] timed out while sending end of data -- message may be sent more "
                "than once" % (LOOP, LOOP))
        self.assertResults(r, "deferred", "4.4.2", text, f.relay)
        self.assertNotIn("hopStatus", r)
        self.assertEqual(f.messages, [(list(RCPTS), CONTENT)])
        self.assertGreaterEqual(took, 0.9)
        self.assertLess(took, FAST)


    def test_06c_server_stops_reading(self):
        """A server that says 354 and then stops reading an 8 MB message (a small, fixed receive
        buffer), smtp_data_xfer_timeout = 1s: deferred within a few seconds, "conversation with
        127.0.0.1[127.0.0.1] timed out while sending message body" (4.4.2)."""
        self.configure(smtp_data_xfer_timeout="1s")
        big = self.queue_file("qf-big", b"Subject: big\n\n" + b"0123456789abcdef" * 64 * 8192, RCPTS)

        def stop_reading(c, arg):
            c.reply("354 End data with <CR><LF>.<CR><LF>")
            wait_until(lambda: c.server.closed, RUN_TIMEOUT, interval=0.05)
            return None
        f = self.fake(data=stop_reading, rcvbuf=65536)
        self.start_by_hand()
        t = time.monotonic()
        r = self.deliver(None, f.nexthop, qf=big)
        took = time.monotonic() - t
        text = "conversation with %s[%s] timed out while sending message body" % (LOOP, LOOP)
        self.assertResults(r, "deferred", "4.4.2", text, f.relay)
        self.assertNotIn("hopStatus", r)
        self.assertGreaterEqual(took, 0.9)
        self.assertLess(took, FAST)

    def test_06d_connect_timeout(self):
        """A server whose accept queue is full (listen(0) and one connection waiting: the kernel
        drops further SYNs), smtp_connect_timeout = 1s: deferred within a few seconds, 4.4.1
        "connect to 127.0.0.1[127.0.0.1]:PORT: Connection timed out", relay=none, a hop status."""
        self.configure(smtp_connect_timeout="1s")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(listener.close)
        listener.bind((LOOP, 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(filler.close)
        filler.setblocking(False)
        filler.connect_ex((LOOP, port))
        self.assertTrue(wait_until(lambda: select.select([], [filler], [], 0)[1], START_TIMEOUT))
        self.start_by_hand()
        t = time.monotonic()
        r = self.deliver(None, "[%s]:%d" % (LOOP, port))
        took = time.monotonic() - t
        text = "connect to %s[%s]:%d: Connection timed out" % (LOOP, LOOP, port)
        self.assertResults(r, "deferred", "4.4.1", text, "none")
        self.assertEqual(r.get("hopStatus"), {"dsn": "4.4.1", "text": text})
        self.assertGreaterEqual(took, 0.9)
        self.assertLess(took, FAST)


# ---- 7: broken servers ----------------------------------------------------------------------------

def long_lines(c, arg):
    """A greeting with a 100 kB continuation line (Postfix skips what is over line_length_limit)."""
    c.send("220-" + "y" * 100000 + "\r\n220 fake.test ESMTP\r\n")
    return Replied("220")


def long_refusal(c, arg):
    c.send("452 4.3.1 " + "z" * 100000 + "\r\n")
    return Replied("452")


def endless(c, arg):
    """More than 100 lines of "250-x", and no last line ever."""
    c.send("250-x\r\n" * 150)
    c.hang()
    return None


def garbage(c, arg):
    c.send("hello\r\n")
    c.hang()
    return None


def close_mid_data(c, arg):
    c.reply("354 End data with <CR><LF>.<CR><LF>")
    c.sock.recv(1000)
    return None


def close_after_greeting(c, arg):
    c.reply("220 fake.test ESMTP")
    return None


class BrokenServers(SmtpTestCase):
    BIG = b"Subject: big\n\n" + b"".join(b"%07d %s\n" % (i, b"m" * 90) for i in range(40000))

    def broken(self, dialog, dsn, text, hop, content=None):
        """A delivery to a FakeServer with DIALOG: every recipient deferred with DSN and TEXT (a
        pattern), a hop status when HOP; then, on the same varlink connection, smtp-sink gets the
        next delivery."""
        self.configure(smtp_helo_timeout="10s", smtp_data_done_timeout="10s")
        f = self.fake(**dialog)
        sink = self.sink()
        d = self.start_by_hand()
        c = self.connect()
        qf = self.queue_file("qf-broken", content, RCPTS) if content else None
        t = time.monotonic()
        r = self.deliver(c, f.nexthop, qf=qf)
        self.assertLess(time.monotonic() - t, FAST, "a broken server was not given up on at once")
        self.assertResults(r, "deferred", dsn, re.compile(text), f.relay)
        self.assertLess(len(r["recipients"][0]["text"]), 4096, "the reason is not bounded")
        if hop:
            self.assertEqual(r.get("hopStatus"), {"dsn": dsn, "text": r["recipients"][0]["text"]})
        else:
            self.assertNotIn("hopStatus", r)
        self.assertNotRegex(self.stderr(), r"status=sent")
        self.assertTrue(d.running())
        self.assertResults(self.deliver(c, sink.nexthop), "sent", "2.0.0", SINK_OK, sink.relay)
        self.wait_log(self.log_re(RCPTS[0], f.relay, dsn, "deferred", text))
        self.assertEqual(len(re.findall(r"status=sent", self.stderr())), 2)
        return f

    def test_07a_long_reply_lines(self):
        """A 100 kB line in a multi-line greeting (skipped past, as Postfix does), then a 100 kB
        452 reply to MAIL FROM: deferred 4.3.1, the server's text cut short in the reason."""
        self.broken({"greeting": long_lines, "mail": long_refusal}, "4.3.1",
                    re.escape("host %s[%s] said: 452 4.3.1 zzzz" % (LOOP, LOOP)) + r"z*( \(in reply to MAIL FROM "
                    r"command\))?", hop=False)

    def test_07b_endless_reply(self):
        """150 lines of "250-x" to EHLO and no last line: a malformed reply at once (not a timeout),
        deferred 4.5.0 with a hop status."""
        self.broken({"ehlo": endless}, "4.5.0",
                    r"127\.0\.0\.1\[127\.0\.0\.1\] sent a malformed reply while performing the EHLO "
                    r"handshake: .+", hop=True)

    def test_07c_garbage(self):
        """A greeting of "hello": malformed, deferred 4.5.0 with a hop status."""
        self.broken({"greeting": garbage}, "4.5.0",
                    r"127\.0\.0\.1\[127\.0\.0\.1\] sent a malformed reply while receiving the initial "
                    r"server greeting: .+", hop=True)

    def test_07d_close_mid_data(self):
        """A server that closes after the first 1000 bytes of a 4 MB message: deferred 4.4.2 "lost
        connection", never sent."""
        self.broken({"data": close_mid_data}, "4.4.2",
                    r"lost connection with 127\.0\.0\.1\[127\.0\.0\.1\] while sending (message body|end of "
                    r"data -- message may be sent more than once)", hop=False, content=self.BIG)

    def test_07e_close_after_greeting(self):
        """A server that closes right after its greeting: deferred 4.4.2 "lost connection ... while
        performing the EHLO handshake", with a hop status."""
        self.broken({"greeting": close_after_greeting}, "4.4.2",
                    r"lost connection with 127\.0\.0\.1\[127\.0\.0\.1\] while performing the EHLO handshake",
                    hop=True)


# ---- 8: a queue file that reads short ---------------------------------------------------------------

class ShortQueueFile(SmtpTestCase):
    def test_08_truncated_queue_file(self):
        """Truncated copies of a queue file (10 bytes, into the envelope, into the content, all but
        the last byte): every recipient deferred, 4.3.0 "error reading message: ...", relay=none,
        no hop status (not the destination's fault), nothing sent to the server, and the next
        delivery on the same connection works."""
        sink = self.sink()
        self.start_by_hand()
        c = self.connect()
        with open(self.qf.path, "rb") as f:
            whole = f.read()
        for cut in (10, self.qf.data_offset - 20, self.qf.data_offset + 100, len(whole) - 1):
            with self.subTest(cut=cut):
                path = os.path.join(self.tmp, "short-%d" % cut)
                with open(path, "wb") as f:
                    f.write(whole[:cut])
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    params = self.request(sink.nexthop)
                    r = c.call(DELIVER, params, fds=[fd])
                finally:
                    os.close(fd)
                self.assertResults(r, "deferred", "4.3.0", re.compile(r"error reading message: .+"), "none")
                self.assertNotIn("hopStatus", r)
                self.wait_log(self.log_re(RCPTS[1], "none", "4.3.0", "deferred", r"error reading message: .+"))
        self.assertRegex(self.stderr(), r"(?m)^tern/smtp: warning: %s: error reading message: .+$" % QID)
        self.assertEqual(sink.count(), 0)
        self.assertEqual(self.sessions(sink), (0, 0))
        self.assertResults(self.deliver(c, sink.nexthop), "sent", "2.0.0", SINK_OK, sink.relay)


# ---- 9: connection reuse through tern-scache ---------------------------------------------------------

class ConnectionCache(SmtpTestCase):
    def configure(self, **settings):
        base = {"smtp_connection_cache_time_limit": "30s", "connection_cache_ttl_limit": "30s"}
        base.update(settings)
        super().configure(**base)

    def two_processes(self, sink, first, second):
        """Deliver on connection A with FIRST's extra parameters, then on connection B (another
        process) with SECOND's: the replies."""
        d = self.start_by_hand()
        a, b = self.connect(), self.connect()
        ra = self.deliver(a, sink.nexthop, **first)
        rb = self.deliver(b, sink.nexthop, **second)
        self.assertEqual(len(children(d.pid)), 2, "not a process per connection")
        for r in (ra, rb):
            self.assertResults(r, "sent", "2.0.0", SINK_OK, sink.relay)
        return ra, rb

    def test_09a_reuse_across_processes(self):
        """tern-scache by hand; agent process A delivers with connCacheStore and saves its session,
        process B delivers with connCacheLoad over that same session: smtp-sink saw one session for
        two messages, and B's log lines say conn_use=2."""
        sink = self.sink()
        scache = self.start_scache()
        self.two_processes(sink, {"connCacheStore": True}, {"connCacheLoad": True})
        for to in RCPTS:
            self.wait_log(self.log_re(to, sink.relay, "2.0.0", "sent", re.escape(SINK_OK)))
            self.wait_log(self.log_re(to, sink.relay, "2.0.0", "sent", re.escape(SINK_OK), conn_use=2))
        self.assertEqual(len(self.wait_dumps(sink, 2)), 2)
        self.assertEqual(scache.stop(), 0)
        self.assertEqual(self.sessions(sink), (1, 2))
        self.assertNotRegex(self.stderr(), r"tern/smtp: warning")

    def test_09b_cache_destinations(self):
        """smtp_connection_cache_destinations = 127.0.0.1 instead of the request's hints: the same,
        one session for two messages in two processes, conn_use=2."""
        self.configure(smtp_connection_cache_destinations=LOOP)
        sink = self.sink()
        scache = self.start_scache()
        self.two_processes(sink, {}, {})
        self.wait_log(self.log_re(RCPTS[1], sink.relay, "2.0.0", "sent", re.escape(SINK_OK), conn_use=2))
        self.assertEqual(len(self.wait_dumps(sink, 2)), 2)
        self.assertEqual(scache.stop(), 0)
        self.assertEqual(self.sessions(sink), (1, 2))

    def test_09c_without_scache(self):
        """tern-scache not running, the requests asking for the cache: three deliveries sent (a
        session each), Postfix's "problem talking to service" and "disabling connection caching"
        warnings once, not per delivery."""
        sink = self.sink()
        self.start_by_hand()
        c = self.connect()
        for _ in range(3):
            r = self.deliver(c, sink.nexthop, connCacheLoad=True, connCacheStore=True)
            self.assertResults(r, "sent", "2.0.0", SINK_OK, sink.relay)
        self.assertEqual(len(self.wait_dumps(sink, 3)), 3)
        self.assertEqual(self.sessions(sink), (3, 3))
        err = self.stderr()
        self.assertLessEqual(len(re.findall(r"(?m)^tern/smtp: warning: problem talking to service .*scache", err)), 1,
                             err)
        self.assertEqual(len(re.findall(r"(?m)^tern/smtp: warning: disabling connection caching$", err)), 1, err)

    def test_09d_stale_cached_session(self):
        """A cached session that the server has closed meanwhile (as an idle timeout would): process
        B's RSET probe finds it gone, B connects afresh and delivers (no conn_use), nothing lost."""
        f = self.fake()
        self.start_scache()
        d = self.start_by_hand()
        a, b = self.connect(), self.connect()
        self.assertResults(self.deliver(a, f.nexthop, connCacheStore=True), "sent", "2.0.0", FAKE_OK, f.relay)
        self.assertTrue(wait_until(lambda: f.connections() == 1, START_TIMEOUT))
        # the server closes the idle session (its end of the connection, as an idle timeout would)
        f.conns[0].sock.shutdown(socket.SHUT_RDWR)
        self.assertTrue(wait_until(lambda: not f.threads[0].is_alive(), START_TIMEOUT))
        r = self.deliver(b, f.nexthop, connCacheLoad=True)
        self.assertResults(r, "sent", "2.0.0", FAKE_OK, f.relay)
        self.assertEqual(len(children(d.pid)), 2)
        self.assertEqual(f.connections(), 2)
        self.assertEqual(len(f.messages), 2)
        self.assertNotRegex(self.stderr(), r"conn_use=")


# ---- 10: the whole path ---------------------------------------------------------------------------------

class WholePath(SmtpTestCase):
    MESSAGES = 50
    LATER = 5

    def setUp(self):
        super().setUp()
        self.spool = os.path.join(self.tmp, "spool")
        os.mkdir(self.spool)

    def start(self, binary, socket_name, *args):
        path = os.path.join(self.rt, socket_name)
        d = self.spawn([binary, "-c", self.conf_path] + list(args), self.env())
        self.assertTrue(wait_until(lambda: os.path.exists(path) or not d.running(), START_TIMEOUT),
                        "%s did not bind %s:\n%s" % (binary, path, self.stderr()[-4000:]))
        self.assertTrue(d.running(), self.stderr()[-4000:])
        return d

    def files(self, queue):
        n = []
        for _, _, names in os.walk(os.path.join(self.spool, queue)):
            n += [x for x in names if re.fullmatch(r"[A-Za-z0-9_]+", x)]
        return n

    def run_prog(self, argv, data=None):
        r = subprocess.run(argv, env=self.env(), input=data, capture_output=True, timeout=RUN_TIMEOUT)
        self.assertNotRegex(r.stderr.decode(errors="replace"), SANITIZER_RE, "sanitizer report from %s" % argv[0])
        return r

    def sendmail(self, i, rcpt):
        msg = (b"Subject: message %d\n\nbody of message %d\n.a line with a dot\n..\nend\n" % (i, i))
        r = self.run_prog([SENDMAIL, "-C", self.conf_path, "-f", "sender@tern.test", "-i", rcpt], msg)
        return r.returncode, r.stderr.decode(errors="replace")

    def submit(self, n, rcpt):
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            results = list(ex.map(lambda i: self.sendmail(i, rcpt), range(n)))
        self.assertEqual([x for x in results if x[0] != 0], [])

    def wait_for(self, what, predicate, timeout=RUN_TIMEOUT):
        self.assertTrue(wait_until(predicate, timeout, interval=0.05),
                        "%s; log:\n%s" % (what, self.stderr()[-6000:]))

    def test_10_whole_path(self):
        """tern-sendmail -> tern-submit -> tern-qmgr -> tern-smtp (+ tern-scache) -> smtp-sink: 50
        messages, relayhost = [127.0.0.1]:SINKPORT, all dumped with their bodies intact, all
        removed, `ternctl queue list` empty, fewer sink sessions than messages (qmgr's cache hints
        under a backlog). Then later.test (relay_domains, so fast flush) routed to a port where
        nothing listens: its messages deferred and listed in tern-flush's logfile; a sink starts on
        that port, `ternctl flush send-site later.test`: delivered, the queue empty."""
        sink = self.sink()
        later_port = free_port()
        write_queue_conf(self.conf_path, "test_smtp whole path", self.spool, self.rt, [
            ("default_transport", "smtp"), ("relay_transport", "smtp"),
            ("relayhost", "[%s]:%d" % (LOOP, sink.port)), ("relay_domains", "later.test"),
            ("inet_protocols", "ipv4"), ("smtp_connect_timeout", "2s"), ("myorigin", "tern.test"),
        ], [("later.test", "smtp:[%s]:%d" % (LOOP, later_port))])
        scache = self.start(SCACHE, "scache")
        self.start(SMTP, "smtp")
        self.start(FLUSH, "flush")
        self.start(SUBMIT, "submit")

        # a backlog: everything queued before tern-qmgr starts (tern-submit's trigger finds no
        # qmgr, harmlessly), so that qmgr's cache hints come into play
        self.submit(self.MESSAGES, "rcpt@remote.example")
        self.assertEqual(len(self.files("incoming")), self.MESSAGES)
        self.start(QMGR, "qmgr")
        self.wait_for("not every message dumped", lambda: sink.count() >= self.MESSAGES)
        self.wait_for("not every message removed",
                      lambda: len(re.findall(r"(?m)^tern/qmgr: \w+: removed$", self.stderr())) >= self.MESSAGES)
        dumps = self.wait_dumps(sink, self.MESSAGES)
        bodies = sorted(int(re.search(rb"\nSubject: message (\d+)\n", d).group(1)) for d in dumps)
        self.assertEqual(bodies, list(range(self.MESSAGES)))
        for d in dumps:
            i = int(re.search(rb"\nSubject: message (\d+)\n", d).group(1))
            self.assertTrue(d.endswith(b"\n\nbody of message %d\n.a line with a dot\n..\nend\n\n" % i), d[-200:])
            self.assertIn(b"X-Rcpt-Args: <rcpt@remote.example>\n", d)
        sent = re.findall(r"(?m)^tern/smtp: \w+: to=<rcpt@remote\.example>, relay=%s(?:, conn_use=\d+)?, .*"
                          r"status=sent \(250 2\.0\.0 Ok\)$" % re.escape(sink.relay), self.stderr())
        self.assertEqual(len(sent), self.MESSAGES)
        r = self.run_prog([TERNCTL, "-c", self.conf_path, "queue", "list"])
        self.assertEqual((r.returncode, r.stdout), (0, b"Mail queue is empty\n"), r.stderr)

        # later.test: deferred (connection refused), listed for fast flush
        self.submit(self.LATER, "user@later.test")
        self.wait_for("later.test's messages not deferred and listed",
                      lambda: len(self.files("deferred")) == self.LATER and not self.files("incoming") and
                      not self.files("active") and self.flush_log() is not None and
                      sorted(self.flush_log()) == sorted(self.files("deferred")))
        deferred = self.files("deferred")
        self.assertRegex(self.stderr(), r"(?m)^tern/smtp: \w+: to=<user@later\.test>, relay=none, .*dsn=4\.4\.1, "
                                        r"status=deferred \(connect to 127\.0\.0\.1\[127\.0\.0\.1\]:%d: Connection "
                                        r"refused\)$" % later_port)
        later = self.sink(port=later_port)
        r = self.run_prog([TERNCTL, "-c", self.conf_path, "flush", "send-site", "later.test"])
        self.assertEqual((r.returncode, r.stdout.decode()),
                         (0, "later.test: %d messages moved to the incoming queue\n" % self.LATER), r.stderr)
        self.wait_for("later.test's messages not delivered after the flush",
                      lambda: later.count() >= self.LATER and not any(self.files(q) for q in
                                                                        ("incoming", "active", "deferred")))
        self.assertEqual(len(self.wait_dumps(later, self.LATER)), self.LATER)
        for qid in deferred:
            self.assertRegex(self.stderr(), r"(?m)^tern/smtp: %s: to=<user@later\.test>, relay=%s, .*status=sent "
                                            % (qid, re.escape(later.relay)))
        r = self.run_prog([TERNCTL, "-c", self.conf_path, "queue", "list"])
        self.assertEqual((r.returncode, r.stdout), (0, b"Mail queue is empty\n"), r.stderr)

        # every session ended (tern-scache's cached ones when it stops): fewer than messages
        self.assertEqual(scache.stop(), 0)
        sessions, messages = self.sessions(sink)
        self.assertEqual(messages, self.MESSAGES)
        self.assertLess(sessions, self.MESSAGES, "no session was reused")

    def flush_log(self):
        try:
            with open(os.path.join(self.spool, "flush", "later_test")) as f:
                return f.read().split()
        except FileNotFoundError:
            return None


if __name__ == "__main__":
    unittest.main(verbosity=2)
