# SPDX-License-Identifier: MIT
"""Local submission end to end: the real tern-submit on a real spool, fed by the real
tern-sendmail and by the independent Python varlink client (varlink.py), descriptors and all.

What is tested, by hand (`tern-submit -c main.cf`) and under `systemd-socket-activate
--fdname=varlink`:
   - a message is queued: the reply's queueId names incoming/<id>, a regular file of mode 0700,
    no temporary file left beside it; its records (read with the small decoder below: type byte,
    base-128 varint length, data) have S, R, the Received:/From:/Date:/Message-Id: headers, and
    E last; the daemon logs "ID: uid=UID from=<sender>" exactly (the sender as submitted, as
    Postfix's pickup logs it);
  - cleanup's rules: bare names qualified with $myorigin, -f '' (null sender), -t (recipients
    from To:/Cc:/Bcc:, Bcc: removed), a "." line ends the message without -i and not with it,
    CRLF stored without CR;
  - refusals, each with nothing queued: NUL byte (65), over message_size_limit (65), no
    recipients (64), a bad address (65), a write-only descriptor (UnreadableDescriptor), a pipe
    that ends before its promised size (InvalidMessage), a client SIGKILLed half-way through its
    pipe, a silent pipe (UnreadableDescriptor after ipc_timeout), authorized_submit_users (77 /
    NotAuthorized), a full disk (tmpfs spool in a private mount namespace: 75 / TemporaryFailure);
  - tern-sendmail -bp/-q/-qR/-qI without tern-qmgr/tern-flush: 69 and "... is not running";
  - the oneway io.tern.Qmgr.Trigger {"requests": ["incoming"]} to a fake qmgr after a commit;
  - 20 concurrent submissions: all queued, distinct IDs;
  - socket activation: READY=1, serving, idle exit after max_idle;
  - a crash: SIGKILL tern-submit while clients submit in a loop; every acknowledged ID is whole
    on disk, nothing half-written has a queue ID's name, and stale temporary files go at restart.
Every daemon that is not killed on purpose is stopped with SIGTERM: exit 0, and no sanitizer
report on its stderr.

Binaries: $TERN_SUBMIT, $TERN_SENDMAIL, $TERNCTL; the source tree: $TERN_SOURCE_ROOT (meson sets them).
"""
import errno
import json
import os
import re
import select
import socket
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
                     DaemonTestCase, base_env, write_conf, wait_until)

SUBMIT = os.environ.get("TERN_SUBMIT", os.path.join(SOURCE_ROOT, "build", "src", "submit", "tern-submit"))
SENDMAIL = os.environ.get("TERN_SENDMAIL", os.path.join(SOURCE_ROOT, "build", "src", "sendmail", "tern-sendmail"))

MAX_IDLE = 2            # seconds, main.cf max_idle
IPC_TIMEOUT = 2         # seconds, main.cf ipc_timeout
SIZE_LIMIT = 200000     # bytes, main.cf message_size_limit
UID = os.getuid()
USER = __import__("pwd").getpwuid(UID).pw_name

QUEUED_RE = re.compile(r"^tern/submit: ([A-Za-z0-9]+): uid=(\d+) from=<([^>]*)>$", re.M)
# Postfix long IDs: base-52 seconds (6+) and microseconds (4), 'z', base-51 inode (no 'z')
B52 = "0-9BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz"
QUEUE_ID_RE = re.compile(r"^[%s]{10,}z[%s]+$" % (B52, B52[:-1]))
TEMP_RE = re.compile(r"^\d+(\.\d+)+$")      # queue-store.c's temporary names

SIMPLE = b"Subject: hello\n\nbody line\n"


# ---- the queue file record format, decoded independently of src/lib/queue-file.c

def decode_records(data):
    """[(type, bytes)] of a whole queue file; raises ValueError on a torn or garbled one."""
    out, pos = [], 0
    while pos < len(data):
        rtype = chr(data[pos])
        pos += 1
        length, shift = 0, 0
        while True:
            if pos >= len(data):
                raise ValueError("record header cut at %d" % pos)
            b = data[pos]
            pos += 1
            length |= (b & 0x7f) << shift
            shift += 7
            if not b & 0x80:
                break
            if shift > 35:
                raise ValueError("varint too long at %d" % pos)
        if pos + length > len(data):
            raise ValueError("record %r data cut at %d (+%d of %d)" % (rtype, pos, length, len(data)))
        out.append((rtype, bytes(data[pos:pos + length])))
        pos += length
    return out


class QueueFile:
    """What the tests look at in a queue file: envelope, header lines, body lines."""

    def __init__(self, data):
        self.records = decode_records(data)
        types = [t for t, _ in self.records]
        if not types or types[0] != "C" or types[-1] != "E" or types.count("E") != 1:
            raise ValueError("not a whole queue file (C first, one E last): %r" % types)
        self.sender = next(d for t, d in self.records if t == "S").decode()
        self.recipients = [d.decode() for t, d in self.records if t == "R"]
        m, x = types.index("M"), types.index("X")
        lines, cont = [], b""
        for t, d in self.records[m + 1:x]:
            if t == "L":
                cont += d
            elif t == "N":
                lines.append(cont + d)
                cont = b""
            else:
                raise ValueError("record %r in the content" % t)
        self.lines = lines
        end = lines.index(b"") if b"" in lines else len(lines)
        self.headers = lines[:end]
        self.body = lines[end + 1:]

    def header(self, name):
        """The values of the headers NAME (continuation lines folded in)."""
        vals = []
        for line in self.headers:
            if line[:1] in (b" ", b"\t") and vals is not None and self._last == name.lower():
                vals[-1] += b"\n" + line
                continue
            k, _, v = line.partition(b":")
            self._last = k.decode(errors="replace").lower()
            if self._last == name.lower():
                vals.append(v.strip())
        return [v.decode(errors="replace") for v in vals]


# ---- processes

def open_pipes_and_sockets(pid):
    """The pipes and sockets PID holds, as "pipe:[inode]" (sd-event's timerfds and such come and stay)."""
    found = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except FileNotFoundError:
                continue
            if target.startswith(("pipe:", "socket:")):
                found.add(target)
    except FileNotFoundError:
        pass
    return found


def memfd_with(data):
    fd = os.memfd_create("tern-test", os.MFD_CLOEXEC)
    os.write(fd, data)
    return fd


class SubmitTestCase(DaemonTestCase):
    """A temporary spool, runtime directory and main.cf per test; daemons stopped and judged at the end."""

    TMP_PREFIX = "tern-submit-it-"
    DAEMON = "tern-submit"
    BINARY = SUBMIT
    SOCKET_NAME = "submit"
    STDERR_NAME = "submit.err"
    STDERR_APPEND = True

    def setUp(self):
        super().setUp()
        self.spool = os.path.join(self.tmp, "spool")
        os.mkdir(self.spool)
        self.incoming = os.path.join(self.spool, "incoming")
        self.configure()

    def configure(self, **params):
        settings = {"queue_directory": self.spool, "runtime_directory": self.rt, "myhostname": "tern.test",
                    "mydomain": "test", "myorigin": "tern.test", "ipc_timeout": "%ds" % IPC_TIMEOUT,
                    "max_idle": "%ds" % MAX_IDLE, "message_size_limit": str(SIZE_LIMIT)}
        settings.update(params)
        write_conf(self.conf_path, "tern-submit integration test", settings)

    # ---- daemons

    def start_by_hand(self, argv_prefix=(), notify=True):
        env = base_env()
        if notify:
            env["NOTIFY_SOCKET"] = self.listen_notify("notify.%d" % len(self.daemons)).path
        d = self.spawn(list(argv_prefix) + self.daemon_argv(), env)
        if notify:
            try:
                self.notify.wait_for("READY=1")
            except AssertionError:
                raise AssertionError("tern-submit not ready; exit %s, stderr:\n%s" % (d.proc.poll(), d.stderr()))
        self.assertTrue(os.path.exists(self.socket_path) or argv_prefix, "READY=1 but no socket")
        return d

    def connect(self, timeout=varlink.DEFAULT_TIMEOUT):
        c = varlink.connect(self.socket_path, timeout=timeout)
        self.addCleanup(c.close)
        return c

    # ---- clients

    def sendmail(self, args, data, status=0):
        """Run tern-sendmail ARGS with DATA on stdin; check the exit status; return the process."""
        r = subprocess.run([SENDMAIL, "-C", self.conf_path] + list(args), env=base_env(), input=data,
                           capture_output=True, timeout=60)
        err = r.stderr.decode(errors="replace")
        self.assertNotRegex(err, SANITIZER_RE, "sanitizer report in tern-sendmail's stderr")
        self.assertEqual(r.returncode, status, "tern-sendmail %s: stderr %r" % (" ".join(args), err))
        return r

    def submit(self, data, sender="", recipients=("user@example.com",), conn=None, **params):
        """io.tern.Submit.Submit with DATA in a memfd (and its size unless size=None): the Reply."""
        fd = memfd_with(data)
        try:
            p = {"sender": sender, "recipients": list(recipients), "fd": 0}
            p.update({"size": len(data)} if "size" not in params else {})
            p.update({k: v for k, v in params.items() if v is not None})
            if conn:
                return conn.call("io.tern.Submit.Submit", p, fds=[fd])
            with varlink.connect(self.socket_path) as c:      # closed at once: idle exits stay possible
                return c.call("io.tern.Submit.Submit", p, fds=[fd])
        finally:
            os.close(fd)

    def assertSubmitError(self, name, fn, *args, **kw):
        with self.assertRaises(varlink.VarlinkError) as cm:
            fn(*args, **kw)
        self.assertEqual(cm.exception.name, name, str(cm.exception))
        return cm.exception.parameters

    # ---- the spool

    def incoming_names(self):
        try:
            return sorted(os.listdir(self.incoming))
        except FileNotFoundError:
            return []

    def assertNothingQueued(self):
        self.assertEqual(self.incoming_names(), [], "incoming should be empty")

    def queued(self, queue_id):
        """incoming/QUEUE_ID, checked (regular, mode 0700, whole) and decoded."""
        self.assertRegex(queue_id, QUEUE_ID_RE)
        path = os.path.join(self.incoming, queue_id)
        st = os.lstat(path)
        self.assertTrue(stat.S_ISREG(st.st_mode), "%s is not a regular file" % path)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o700, "%s: mode %o" % (path, stat.S_IMODE(st.st_mode)))
        temps = [n for n in self.incoming_names() if TEMP_RE.match(n)]
        self.assertEqual(temps, [], "temporary files left in incoming")
        with open(path, "rb") as f:
            return QueueFile(f.read())

    def logged(self, queue_id):
        """The daemon's "ID: uid=N from=<sender>" line for QUEUE_ID: (uid, sender)."""
        found = [(int(u), s) for i, u, s in QUEUED_RE.findall(self.stderr()) if i == queue_id]
        self.assertEqual(len(found), 1, "one log line for %s in:\n%s" % (queue_id, self.stderr()))
        return found[0]

    def last_id(self):
        ids = QUEUED_RE.findall(self.stderr())
        self.assertTrue(ids, "no queued message logged:\n" + self.stderr())
        return ids[-1][0]


class ByHand(SubmitTestCase):
    """tern-submit started by hand: it binds runtime_directory/submit itself."""

    def setUp(self):
        super().setUp()
        self.daemon = self.start_by_hand()

    def test_varlink_submission_is_queued_durably(self):
        reply = self.submit(SIMPLE, sender="alice@example.org", recipients=["bob@example.net"])
        qid = reply["queueId"]
        self.assertEqual((reply["sender"], reply["recipients"]), ("alice@example.org", ["bob@example.net"]))
        self.assertIsInstance(reply["size"], int)
        q = self.queued(qid)
        self.assertEqual(self.incoming_names(), [qid])
        self.assertEqual((q.sender, q.recipients), ("alice@example.org", ["bob@example.net"]))
        for name in ("Received", "From", "Date", "Message-Id"):
            self.assertEqual(len(q.header(name)), 1, "one %s: header in %r" % (name, q.headers))
        self.assertIn("tern.test", q.header("Received")[0])
        self.assertIn(qid, q.header("Received")[0])
        self.assertIn("alice@example.org", q.header("From")[0])
        self.assertRegex(q.header("Message-Id")[0], r"^<\d{14}\.%s@tern\.test>$" % qid)
        self.assertEqual(q.header("Subject"), ["hello"])
        self.assertEqual(q.headers[0][:9], b"Received:", "Received: comes first")
        self.assertEqual(q.body, [b"body line"])
        self.assertEqual(q.records[-1][0], "E")
        self.assertEqual(self.logged(qid), (UID, "alice@example.org"))
        self.assertIn("%s: uid=%d from=<alice@example.org>\n" % (qid, UID), self.stderr())

    def test_sendmail_submission(self):
        r = self.sendmail(["someone@example.com"], SIMPLE)
        self.assertEqual(r.stdout, b"")
        qid = self.last_id()
        q = self.queued(qid)
        self.assertEqual((q.sender, q.recipients), ("%s@tern.test" % USER, ["someone@example.com"]))
        # Postfix pickup logs the sender as submitted (cleanup qualifies it in the file)
        self.assertEqual(self.logged(qid), (UID, USER))
        self.assertRegex(self.stderr(), r"(?m)^tern/submit: %s: uid=%d from=<%s>$" % (qid, UID, USER))
        for name in ("Received", "From", "Date", "Message-Id"):
            self.assertEqual(len(q.header(name)), 1, "%s: in %r" % (name, q.headers))
        # Headers the sender wrote are kept, not doubled.
        self.sendmail(["someone@example.com"], b"From: Me <me@example.org>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n"
                      b"Message-Id: <x@y>\n\nhi\n")
        q = self.queued(self.last_id())
        self.assertEqual((q.header("From"), q.header("Date"), q.header("Message-Id")),
                         (["Me <me@example.org>"], ["Mon, 1 Jan 2024 00:00:00 +0000"], ["<x@y>"]))
        self.assertEqual(len(self.incoming_names()), 2)

    def test_bare_names_are_qualified(self):
        self.sendmail(["-f", "operator", "bob", "carol@example.com"], SIMPLE)
        q = self.queued(self.last_id())
        self.assertEqual((q.sender, q.recipients), ("operator@tern.test", ["bob@tern.test", "carol@example.com"]))
        reply = self.submit(SIMPLE, sender="dave", recipients=["erin"])
        self.assertEqual((reply["sender"], reply["recipients"]), ("dave@tern.test", ["erin@tern.test"]))
        self.assertEqual(self.logged(reply["queueId"]), (UID, "dave"))     # pickup: as submitted

    def test_null_sender(self):
        self.sendmail(["-f", "", "user@example.com"], SIMPLE)
        qid = self.last_id()
        q = self.queued(qid)
        self.assertEqual(q.sender, "")
        self.assertEqual(self.logged(qid), (UID, ""))
        self.assertIn("MAILER-DAEMON", q.header("From")[0])
        self.assertEqual(self.submit(SIMPLE, sender="")["sender"], "")

    def test_extract_recipients_removes_bcc(self):
        msg = (b"To: To One <to1@example.com>, to2\nCc: cc@example.org\nBcc: hidden@example.net\n"
               b"Subject: t\n\nbody\nBcc: not a header\n")
        self.sendmail(["-t"], msg)
        q = self.queued(self.last_id())
        self.assertEqual(sorted(q.recipients),
                         sorted(["to1@example.com", "to2@tern.test", "cc@example.org", "hidden@example.net"]))
        self.assertEqual(q.header("Bcc"), [])
        self.assertEqual(q.header("Cc"), ["cc@example.org"])
        self.assertIn(b"Bcc: not a header", q.body, "the body is not touched")
        reply = self.submit(msg, recipients=[], extractRecipients=True)
        self.assertEqual(len(reply["recipients"]), 4)
        self.assertEqual(self.queued(reply["queueId"]).header("Bcc"), [])

    def test_mbox_from_line_is_dropped(self):
        self.sendmail(["user@example.com"], b"From someone@example.com Mon Nov 23 08:00:00 2026\n"
                                            b"Subject: mbox\n\nbody\n")
        q = self.queued(self.last_id())
        self.assertEqual(q.header("Subject"), ["mbox"])
        self.assertFalse([h for h in q.headers if h.startswith(b"From someone")], q.headers)
        self.assertEqual(q.body, [b"body"])
        # Not at the start: an ordinary body line.
        self.sendmail(["user@example.com"], b"Subject: x\n\nFrom here on\n")
        self.assertEqual(self.queued(self.last_id()).body, [b"From here on"])

    def test_dot_line(self):
        msg = b"Subject: dots\n\nfirst\n..double\n.\nafter the dot\n"
        self.sendmail(["user@example.com"], msg)
        q = self.queued(self.last_id())
        self.assertEqual(q.body, [b"first", b"..double"])
        for flag in ("-i", "-oi"):
            self.sendmail([flag, "user@example.com"], msg)
            q = self.queued(self.last_id())
            self.assertEqual(q.body, [b"first", b"..double", b".", b"after the dot"], flag)
        # Through varlink: ignoreDots decides the same way in tern-submit itself.
        reply = self.submit(msg, size=None)
        self.assertEqual(self.queued(reply["queueId"]).body, [b"first", b"..double"])
        reply = self.submit(msg, ignoreDots=True)
        self.assertEqual(self.queued(reply["queueId"]).body, [b"first", b"..double", b".", b"after the dot"])
        # CRLF after the dot ends it too
        self.sendmail(["user@example.com"], b"Subject: x\r\n\r\nline\r\n.\r\nmore\r\n")
        self.assertEqual(self.queued(self.last_id()).body, [b"line"])

    def test_crlf_is_stored_without_cr(self):
        msg = b"Subject: crlf\r\nX-Mixed: yes\n\r\nline one\r\nline two\nline three\r\n"
        self.sendmail(["user@example.com"], msg)
        q = self.queued(self.last_id())
        self.assertEqual(q.body, [b"line one", b"line two", b"line three"])
        self.assertEqual(q.header("Subject"), ["crlf"])
        self.assertEqual(q.header("X-Mixed"), ["yes"])
        for t, d in q.records:
            if t in "NL":
                self.assertNotIn(b"\r\n", d)
                self.assertFalse(d.endswith(b"\r"), d)

    def test_nul_byte_is_refused(self):
        r = self.sendmail(["user@example.com"], b"Subject: nul\n\nbad \0 byte\n", status=65)
        self.assertIn(b"io.tern.Submit.InvalidMessage", r.stderr)
        self.assertSubmitError("io.tern.Submit.InvalidMessage", self.submit, b"Subject: x\n\n\0\n")
        self.assertNothingQueued()

    def test_message_size_limit(self):
        big = b"Subject: big\n\n" + (b"x" * 99 + b"\n") * (SIZE_LIMIT // 100 + 10)
        r = self.sendmail(["user@example.com"], big, status=65)
        self.assertIn(b"message_size_limit", r.stderr)
        params = self.assertSubmitError("io.tern.Submit.MessageTooBig", self.submit, big)
        self.assertEqual(params, {"limit": SIZE_LIMIT})
        # and through a pipe: refused while it streams, not after it is all read
        rfd, wfd = os.pipe()
        writer = threading.Thread(target=lambda: (self._write_ignoring_epipe(wfd, big), os.close(wfd)))
        writer.start()
        try:
            with self.assertRaises(varlink.VarlinkError) as cm:
                self.connect().call("io.tern.Submit.Submit", {"sender": "", "recipients": ["a@b.c"], "fd": 0,
                                                              "size": len(big)}, fds=[rfd])
            self.assertEqual(cm.exception.name, "io.tern.Submit.MessageTooBig")
        finally:
            os.close(rfd)
            writer.join(timeout=EXIT_TIMEOUT)
        self.assertNothingQueued()
        # just under the limit is fine
        ok = b"Subject: ok\n\n" + b"y" * (SIZE_LIMIT // 2) + b"\n"
        self.queued(self.submit(ok)["queueId"])

    @staticmethod
    def _write_ignoring_epipe(fd, data):
        try:
            os.write(fd, data) if len(data) < 65536 else [os.write(fd, data[i:i + 65536])
                                                           for i in range(0, len(data), 65536)]
        except BrokenPipeError:
            pass

    def test_no_recipients(self):
        r = self.sendmail([], SIMPLE, status=64)
        self.assertIn(b"Recipient addresses must be specified", r.stderr)
        r = self.sendmail(["-t"], b"Subject: nobody\n\nx\n", status=64)
        self.assertIn(b"io.tern.Submit.NoRecipients", r.stderr)
        self.assertSubmitError("io.tern.Submit.NoRecipients", self.submit, SIMPLE, recipients=[])
        self.assertNothingQueued()

    def test_bad_address(self):
        r = self.sendmail(["not an address@"], SIMPLE, status=65)
        self.assertIn(b"io.tern.Submit.InvalidAddress", r.stderr)
        self.sendmail(["-f", "a b@c d", "user@example.com"], SIMPLE, status=65)
        self.assertSubmitError("io.tern.Submit.InvalidAddress", self.submit, SIMPLE, recipients=["<x@y>>"])
        self.assertSubmitError("io.tern.Submit.InvalidAddress", self.submit, SIMPLE, recipients=["ok@x", "a@@b"])
        self.assertNothingQueued()

    def test_invalid_parameters(self):
        c = self.connect()
        fd = memfd_with(SIMPLE)
        try:
            for params, name in (({"recipients": ["a@b"], "fd": 0}, "sender"),
                                 ({"sender": "", "recipients": ["a@b"]}, "fd"),
                                 ({"sender": "", "recipients": ["a@b"], "fd": 1}, "fd"),
                                 ({"sender": "", "recipients": "a@b", "fd": 0}, "recipients"),
                                 ({"sender": "", "recipients": ["a@b"], "fd": 0, "size": -5}, "size")):
                with self.assertRaises(varlink.VarlinkError) as cm:
                    c.call("io.tern.Submit.Submit", params, fds=[fd])
                self.assertEqual((cm.exception.name, cm.exception.parameters),
                                 ("org.varlink.service.InvalidParameter", {"parameter": name}), params)
        finally:
            os.close(fd)
        self.assertNothingQueued()

    def test_fd_index_names_the_descriptor(self):
        """"fd" is an index into the descriptors that came with the call: the second one here."""
        a, b = memfd_with(b"Subject: first\n\nnot me\n"), memfd_with(b"Subject: second\n\nme\n")
        try:
            reply = self.connect().call("io.tern.Submit.Submit", {"sender": "", "recipients": ["a@b.c"], "fd": 1},
                                        fds=[a, b])
        finally:
            os.close(a)
            os.close(b)
        self.assertEqual(self.queued(reply["queueId"]).body, [b"me"])

    def test_write_only_descriptor(self):
        rfd, wfd = os.pipe()
        try:
            with self.assertRaises(varlink.VarlinkError) as cm:
                self.connect().call("io.tern.Submit.Submit", {"sender": "", "recipients": ["a@b.c"], "fd": 0},
                                    fds=[wfd])
            self.assertEqual(cm.exception.name, "io.tern.Submit.UnreadableDescriptor")
        finally:
            os.close(rfd)
            os.close(wfd)
        m = memfd_with(SIMPLE)
        wo = os.open("/proc/self/fd/%d" % m, os.O_WRONLY)
        try:
            with self.assertRaises(varlink.VarlinkError) as cm:
                self.connect().call("io.tern.Submit.Submit", {"sender": "", "recipients": ["a@b.c"], "fd": 0},
                                    fds=[wo])
            self.assertEqual(cm.exception.name, "io.tern.Submit.UnreadableDescriptor")
        finally:
            os.close(wo)
            os.close(m)
        self.assertNothingQueued()

    def test_pipe_submission(self):
        """A pipe read to its end, with its size: queued. Without a size: refused, since the end of
        a pipe cannot tell a finished writer from one that died half-way."""
        message = b"Subject: pipe\n\nthrough a pipe\n"
        rfd, wfd = os.pipe()
        c = self.connect()
        c.send("io.tern.Submit.Submit", {"sender": "p@example.com", "recipients": ["q@example.com"], "fd": 0,
                                         "size": len(message)}, fds=[rfd])
        os.close(rfd)
        os.write(wfd, message[:15])
        os.write(wfd, message[15:])
        os.close(wfd)
        q = self.queued(c.read_reply()["queueId"])
        self.assertEqual(q.body, [b"through a pipe"])

        rfd, wfd = os.pipe()
        os.write(wfd, message)
        os.close(wfd)
        try:
            with self.assertRaises(varlink.VarlinkError) as cm:
                self.connect().call("io.tern.Submit.Submit", {"sender": "", "recipients": ["a@b.c"], "fd": 0},
                                    fds=[rfd])
        finally:
            os.close(rfd)
        self.assertEqual((cm.exception.name, dict(cm.exception.parameters)),
                         ("org.varlink.service.InvalidParameter", {"parameter": "size"}))

    def test_pipe_shorter_than_its_size(self):
        rfd, wfd = os.pipe()
        c = self.connect()
        c.send("io.tern.Submit.Submit", {"sender": "", "recipients": ["a@b.c"], "fd": 0, "size": 1000}, fds=[rfd])
        os.close(rfd)
        os.write(wfd, b"Subject: short\n\nonly this\n")
        os.close(wfd)
        with self.assertRaises(varlink.VarlinkError) as cm:
            c.read_reply()
        self.assertEqual(cm.exception.name, "io.tern.Submit.InvalidMessage")
        self.assertIn("reason", cm.exception.parameters)
        # a memfd shorter than its size too
        self.assertSubmitError("io.tern.Submit.InvalidMessage", self.submit, SIMPLE, size=len(SIMPLE) + 1)
        self.assertNothingQueued()

    def test_client_killed_mid_message(self):
        """A client that dies after half its message: nothing queued, no temp file."""
        before = open_pipes_and_sockets(self.daemon.pid)
        child = subprocess.Popen([sys.executable, "-c", KILLED_CLIENT, self.socket_path], stdout=subprocess.PIPE,
                                 env=base_env())
        try:
            self.assertEqual(select.select([child.stdout], [], [], START_TIMEOUT)[0], [child.stdout],
                             "the client did not get going")
            self.assertEqual(child.stdout.readline(), b"sent\n")
            # The daemon holds the client's connection and pipe now.
            self.assertTrue(wait_until(lambda: len(open_pipes_and_sockets(self.daemon.pid) - before) >= 2,
                                       EXIT_TIMEOUT), "the daemon never took the pipe")
        finally:
            child.kill()
            child.wait()
            child.stdout.close()
        # The daemon notices (the pipe ends, the connection goes) and lets both go.
        self.assertTrue(wait_until(lambda: not open_pipes_and_sockets(self.daemon.pid) - before, EXIT_TIMEOUT),
                        "the daemon still holds the dead client's descriptors")
        self.assertNothingQueued()
        # A commit after it queues only the new message.
        qid = self.submit(SIMPLE)["queueId"]
        self.assertEqual(self.incoming_names(), [qid])
        self.assertEqual(len(QUEUED_RE.findall(self.stderr())), 1)

    def test_silent_pipe_times_out(self):
        rfd, wfd = os.pipe()
        c = self.connect(timeout=IPC_TIMEOUT + EXIT_TIMEOUT)
        t0 = time.monotonic()
        try:
            with self.assertRaises(varlink.VarlinkError) as cm:
                c.call("io.tern.Submit.Submit", {"sender": "", "recipients": ["a@b.c"], "fd": 0, "size": 100},
                       fds=[rfd])
            self.assertEqual(cm.exception.name, "io.tern.Submit.UnreadableDescriptor")
            self.assertGreaterEqual(time.monotonic() - t0, IPC_TIMEOUT - 0.5, "gave up before ipc_timeout")
        finally:
            os.close(rfd)
            os.close(wfd)
        self.assertNothingQueued()
        # served meanwhile and after
        self.queued(self.submit(SIMPLE)["queueId"])

    def test_queue_services_not_running(self):
        for args, service in ((["-bp"], "qmgr"), (["-q"], "qmgr"), (["-q30m"], "qmgr"),
                              (["-qR", "example.com"], "flush"), (["-qRexample.com"], "flush"),
                              (["-qI", "ABCDEF"], "flush")):
            r = self.sendmail(args, b"", status=69)
            path = os.path.join(self.rt, service)
            if service == "flush":
                # postqueue -s/-i's message, after what was wrong
                want = ("tern-sendmail: warning: tern-flush is not running: %s: No such file or directory\n"
                        "tern-sendmail: fatal: Cannot flush mail queue - mail system is down\n" % path)
            else:
                want = "tern-sendmail: tern-%s is not running: %s: No such file or directory\n" % (service, path)
            self.assertEqual(r.stderr.decode(), want, args)
        # mailq is -bp by its name
        link = os.path.join(self.tmp, "mailq")
        os.symlink(SENDMAIL, link)
        r = subprocess.run([link, "-C", self.conf_path], env=base_env(), capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 69, r.stderr)
        self.assertIn(b"tern-qmgr is not running", r.stderr)

    def test_qmgr_is_triggered(self):
        qmgr = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(qmgr.close)
        qmgr.bind(os.path.join(self.rt, "qmgr"))
        qmgr.listen(8)
        qmgr.settimeout(EXIT_TIMEOUT)
        qid = self.submit(SIMPLE)["queueId"]
        self.queued(qid)
        conn, _ = qmgr.accept()
        with conn:
            conn.settimeout(EXIT_TIMEOUT)
            data = b""
            while b"\0" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
        msg = json.loads(data.split(b"\0")[0])
        self.assertEqual(msg, {"method": "io.tern.Qmgr.Trigger", "parameters": {"requests": ["incoming"]},
                               "oneway": True})

    def test_concurrent_submissions(self):
        n = 20
        results, errors = [None] * n, []
        barrier = threading.Barrier(n)

        def one(i):
            try:
                c = varlink.connect(self.socket_path)
                with c:
                    barrier.wait(timeout=EXIT_TIMEOUT)
                    results[i] = self.submit(b"Subject: %d\n\nmessage %d\n" % (i, i), recipients=["r%d" % i],
                                             conn=c)["queueId"]
            except Exception as e:      # noqa: BLE001 - reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        self.assertEqual(errors, [])
        self.assertEqual(len(set(results)), n, results)
        self.assertEqual(self.incoming_names(), sorted(results))
        for i, qid in enumerate(results):
            q = self.queued(qid)
            self.assertEqual((q.recipients, q.body), (["r%d@tern.test" % i], [b"message %d" % i]))

    def test_sigterm(self):
        self.queued(self.submit(SIMPLE)["queueId"])
        self.assertEqual(self.daemon.stop(), 0)
        self.assertFalse(os.path.exists(self.socket_path), "socket left behind")
        r = self.sendmail(["a@b.c"], SIMPLE, status=75)
        self.assertEqual(r.stderr.decode(), "tern-sendmail: tern-submit is not running: %s: No such file or directory\n"
                         % self.socket_path)


# The client of test_client_killed_mid_message: submits a pipe with the message's size (as
# tern-sendmail does), writes half of it, says so, waits to die. Without a size, a pipe that ends
# is a message that ends: a client killed between two lines cannot be told from one that is done.
KILLED_CLIENT = r"""
import os, socket, sys, json, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
r, w = os.pipe()
msg = json.dumps({"method": "io.tern.Submit.Submit",
                  "parameters": {"sender": "", "recipients": ["a@b.c"], "fd": 0, "size": 4096}}).encode() + b"\0"
socket.send_fds(s, [msg], [r])
os.close(r)
os.write(w, b"Subject: half\n\nthe first half of a messa")
sys.stdout.write("sent\n")
sys.stdout.flush()
time.sleep(3600)
"""


class Authorization(SubmitTestCase):
    def test_not_authorized(self):
        if UID != 0:
            self.skipTest("needs to run as root (the test refuses root)")
        self.configure(authorized_submit_users="!root, static:anyone")
        self.start_by_hand()
        r = self.sendmail(["a@b.c"], SIMPLE, status=77)
        self.assertIn(b"io.tern.Submit.NotAuthorized", r.stderr)
        params = self.assertSubmitError("io.tern.Submit.NotAuthorized", self.submit, SIMPLE)
        self.assertEqual(params, {"user": "root"})
        self.assertNothingQueued()
        self.assertIn("not authorized to submit mail", self.stderr())


class FullDisk(SubmitTestCase):
    """tern-submit in its own mount namespace with a 256 KiB tmpfs as the spool."""

    def test_enospc_is_a_temporary_failure(self):
        if UID != 0:
            self.skipTest("mounting a tmpfs spool needs root")
        probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
        if probe.returncode != 0:
            self.skipTest("unshare -m is not available here: %s" % probe.stderr.decode().strip())
        self.configure(message_size_limit=str(4 * 1024 * 1024))        # the disk, not the limit, refuses
        script = 'mount -t tmpfs -o size=256k,mode=0700 tern-test-spool "$0" && exec "$@"'
        d = self.start_by_hand(argv_prefix=["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                                            self.spool])
        # Our view of the spool is the daemon's: its mount namespace, through /proc/PID/root.
        self.incoming = "/proc/%d/root%s/incoming" % (d.pid, self.spool)
        self.assertTrue(wait_until(lambda: os.path.isdir(self.incoming), START_TIMEOUT))
        self.assertEqual(os.listdir(os.path.join(self.tmp, "spool")), [], "the tmpfs is not private")
        big = b"Subject: big\n\n" + (b"z" * 99 + b"\n") * (512 * 1024 // 100)     # 512 KiB
        r = self.sendmail(["a@b.c"], big, status=75)
        self.assertIn(b"io.tern.Submit.TemporaryFailure", r.stderr)
        self.assertNothingQueued()
        params = self.assertSubmitError("io.tern.Submit.TemporaryFailure", self.submit, big)
        self.assertIn("reason", params)
        self.assertNothingQueued()
        # A small message still fits: the failed ones left no space taken.
        self.queued(self.submit(SIMPLE)["queueId"])
        self.assertIn("cannot queue a message from uid=0", self.stderr())


class SocketActivated(SubmitTestCase):
    """tern-submit behind systemd-socket-activate --fdname=varlink, with a NOTIFY_SOCKET."""

    def test_submission_and_idle_exit(self):
        d = self.start_activated()
        self.sendmail(["a@example.com"], SIMPLE)      # the first connection starts it
        self.notify.wait_for("READY=1")
        self.assertEqual(self.notify.wait_for("STATUS=Serving"),
                         "STATUS=Serving on %s (socket-activated)" % self.socket_path)
        qid = self.last_id()
        self.assertEqual(self.queued(qid).recipients, ["a@example.com"])
        reply = self.submit(SIMPLE, sender="x", recipients=["y"])
        self.assertEqual(self.queued(reply["queueId"]).sender, "x@tern.test")
        t0 = time.monotonic()
        self.assertEqual(d.proc.wait(timeout=MAX_IDLE + EXIT_TIMEOUT), 0)
        self.assertGreaterEqual(time.monotonic() - t0, MAX_IDLE - 0.5, "exited before max_idle")
        self.notify.wait_for("STOPPING=1")
        self.assertTrue(os.path.exists(self.socket_path), "an activated daemon removed a socket it does not own")
        self.assertEqual(sorted([qid, reply["queueId"]]), self.incoming_names())


class Crash(SubmitTestCase):
    """SIGKILL tern-submit under load: what clients were told is on disk, whole; nothing else pretends to be."""

    CLIENTS = 6

    def test_sigkill_under_load(self):
        d = self.start_by_hand()
        acked, stop, errors = [], threading.Event(), []
        lock = threading.Lock()

        def client(i):
            k = 0
            while not stop.is_set():
                try:
                    with varlink.connect(self.socket_path, timeout=EXIT_TIMEOUT) as c:
                        while not stop.is_set():
                            body = b"Subject: crash %d.%d\n\n" % (i, k) + b"%d.%d\n" % (i, k) * 200
                            qid = self.submit(body, recipients=["c%d@example.com" % i], conn=c)["queueId"]
                            with lock:
                                acked.append((qid, i, k))
                            k += 1
                except (varlink.ConnectionClosed, ConnectionError, FileNotFoundError, socket.timeout, OSError):
                    return      # the daemon is gone
                except Exception as e:      # noqa: BLE001
                    errors.append(repr(e))
                    return

        threads = [threading.Thread(target=client, args=(i,)) for i in range(self.CLIENTS)]
        for t in threads:
            t.start()
        self.assertTrue(wait_until(lambda: len(acked) >= 200 or errors, 30), "too few acknowledged: %d" % len(acked))
        d.kill()
        stop.set()
        for t in threads:
            t.join(timeout=EXIT_TIMEOUT)
        self.assertEqual(errors, [])
        names = self.incoming_names()
        by_id = {qid: (i, k) for qid, i, k in acked}
        for qid, (i, k) in by_id.items():
            self.assertIn(qid, names, "acknowledged %s is not in incoming" % qid)
        temps = []
        for n in names:
            if TEMP_RE.match(n):
                temps.append(n)
                continue
            self.assertRegex(n, QUEUE_ID_RE, "a name in incoming that is neither a queue ID nor temporary")
            st = os.lstat(os.path.join(self.incoming, n))
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o700, n)
            with open(os.path.join(self.incoming, n), "rb") as f:
                q = QueueFile(f.read())         # raises if it is not whole
            if n in by_id:
                i, k = by_id[n]
                self.assertEqual(q.body[0], b"%d.%d" % (i, k))
                self.assertEqual(len(q.body), 200)
        # Restart: a temporary file counts as stale after a day; make the dead writer's look that old.
        for n in temps:
            old = time.time() - 2 * 86400
            os.utime(os.path.join(self.incoming, n), (old, old))
        os.unlink(self.socket_path) if os.path.exists(self.socket_path) else None
        self.start_by_hand()
        self.assertEqual([n for n in self.incoming_names() if TEMP_RE.match(n)], [], "stale temporary files kept")
        self.assertEqual(len(self.incoming_names()), len(names) - len(temps))
        self.queued(self.submit(SIMPLE)["queueId"])
        sys.stderr.write("[%d acknowledged, %d queue files, %d temporary files at the kill] " %
                         (len(by_id), len(names) - len(temps), len(temps)))


if __name__ == "__main__":
    unittest.main()
