# SPDX-License-Identifier: MIT
"""What the integration suites share: running a real daemon and judging it afterwards.

  - base_env(): a child's whole environment (nothing leaks in from the caller but the sanitizer
    settings), with TERN_LOG=stderr;
  - write_conf(): a main.cf from a comment line and ordered settings;
  - wait_until(): bounded polling (never a bare sleep);
  - NotifySocket: a datagram NOTIFY_SOCKET receiver, as systemd's manager would have;
  - Daemon: one process started with Popen, its stderr in a file, stopped with SIGTERM;
  - TempDirTestCase: a temporary directory per test, removed afterwards;
  - DaemonTestCase: a runtime directory and main.cf per test, the daemon started by hand or under
    systemd-socket-activate; at the end every daemon that was not killed on purpose is stopped
    with SIGTERM and must exit 0, and no daemon's stderr may hold a sanitizer report.

Stdlib only; the suites find it as they find varlink.py (their own directory put on sys.path).
"""
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.environ.get("TERN_SOURCE_ROOT", os.path.normpath(os.path.join(HERE, "..", "..")))

# Bounds for waiting on conditions (never sleeps): generous, so that ASan builds pass.
START_TIMEOUT = 10.0
EXIT_TIMEOUT = 10.0

SANITIZER_RE = re.compile(r"ERROR: AddressSanitizer|LeakSanitizer|runtime error:|SUMMARY: \w*Sanitizer")
SANITIZER_ENV = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "MALLOC_PERTURB_")



def find_postfix_root(program):
    """The root of Debian's postfix package holding usr/sbin/PROGRAM (smtp-sink, postcat, ...):
    $POSTCAT_ROOT, else BUILD/postfix-root (unpacked there by tools/fetch-postfix.sh when
    missing), else "/" when Postfix is installed; None when none can be had. Its programs need
    LD_LIBRARY_PATH=ROOT/usr/lib/postfix unless ROOT is "/"."""
    build_root = os.environ.get("TERN_BUILD_ROOT", os.path.join(SOURCE_ROOT, "build"))
    local = os.path.join(build_root, "postfix-root")
    candidates = [os.environ["POSTCAT_ROOT"]] if os.environ.get("POSTCAT_ROOT") else []
    candidates.append(local)
    for root in candidates:
        path = os.path.join(root, "usr/sbin", program)
        if not os.access(path, os.X_OK) and root == local:
            subprocess.run([os.path.join(SOURCE_ROOT, "tools/fetch-postfix.sh"), local],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        if os.access(path, os.X_OK):
            return root
    if os.access(os.path.join("/usr/sbin", program), os.X_OK):
        return "/"
    return None

def base_env():
    """The whole environment of a child: nothing leaks in from the caller (NOTIFY_SOCKET, ...)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TERN_LOG": "stderr"}
    for name in SANITIZER_ENV:
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def write_conf(path, comment, settings):
    """A main.cf at PATH: "# COMMENT", then one "name = value" line per SETTINGS item, in order."""
    with open(path, "w") as f:
        f.write("# %s\n" % comment)
        f.write("".join("%s = %s\n" % kv for kv in settings.items()))


def wait_until(predicate, timeout, interval=0.01):
    """Poll PREDICATE until it returns a true value or TIMEOUT passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


class NotifySocket:
    """A datagram NOTIFY_SOCKET receiver, as systemd's manager would have."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.bind(path)
        self.lines = []

    def close(self):
        self.sock.close()

    def wait_for(self, prefix, timeout=START_TIMEOUT):
        """The first line that starts with PREFIX (already received or arriving within TIMEOUT)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for line in self.lines[seen:]:
                if line.startswith(prefix):
                    return line
            seen = len(self.lines)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r on NOTIFY_SOCKET within %.1f s; got %r" % (prefix, timeout, self.lines))
            if select.select([self.sock], [], [], left)[0]:
                self.lines += self.sock.recv(65536).decode().split("\n")


class Daemon:
    """One daemon process (by hand, behind systemd-socket-activate, or inside unshare) and its stderr.

    Its stderr goes to STDERR_PATH, truncated first, or appended to when APPEND (one file for
    all the daemons of a test)."""

    def __init__(self, argv, env, stderr_path, append=False):
        self.stderr_path = stderr_path
        with open(stderr_path, "ab" if append else "wb") as err:
            self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=err, close_fds=True)
        self.killed = False

    @property
    def pid(self):
        return self.proc.pid

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def running(self):
        return self.proc.poll() is None

    def wait_exit(self, timeout=EXIT_TIMEOUT):
        """The exit status; raises subprocess.TimeoutExpired if it does not exit within TIMEOUT."""
        return self.proc.wait(timeout=timeout)

    def kill(self):
        """SIGKILL on purpose: the daemon's exit status is not judged at the end of the test."""
        self.killed = True
        self.proc.kill()
        self.proc.wait(timeout=EXIT_TIMEOUT)

    def stop(self):
        """SIGTERM (if still running) and the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("pid %d did not exit within %.0f s of SIGTERM" % (self.pid, EXIT_TIMEOUT))
        return self.proc.returncode


class TempDirTestCase(unittest.TestCase):
    """self.tmp: a temporary directory per test (its name starts with TMP_PREFIX), removed afterwards."""

    TMP_PREFIX = "tern-it-"

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix=self.TMP_PREFIX)
        self.addCleanup(shutil.rmtree, self.tmp, True)


class DaemonTestCase(TempDirTestCase):
    """A runtime directory (self.rt) and main.cf (self.conf_path) per test; daemons judged at the end.

    A subclass names its daemon: DAEMON (its name in messages), BINARY (its path), SOCKET_NAME
    (the socket under runtime_directory), STDERR_NAME and STDERR_APPEND (its stderr file in
    self.tmp, and whether each daemon of a test appends to it)."""

    DAEMON = None
    BINARY = None
    SOCKET_NAME = None
    STDERR_NAME = None
    STDERR_APPEND = False

    def setUp(self):
        super().setUp()
        self.rt = os.path.join(self.tmp, "run")
        os.mkdir(self.rt)
        self.socket_path = os.path.join(self.rt, self.SOCKET_NAME)
        self.conf_path = os.path.join(self.tmp, "main.cf")
        self.stderr_path = os.path.join(self.tmp, self.STDERR_NAME)
        self.daemons = []
        self.notify = None

    def tearDown(self):
        # Stop every daemon before judging any of them, so that none outlives a failure.
        statuses = []
        for d in self.daemons:
            try:
                statuses.append(None if d.killed else d.stop())
            except AssertionError as e:
                statuses.append(str(e))
        for d, status in zip(self.daemons, statuses):
            err = d.stderr()
            self.assertNotRegex(err, SANITIZER_RE, "sanitizer report in %s's stderr" % self.DAEMON)
            if not d.killed:
                self.assertEqual(status, 0, "%s exit status; stderr:\n%s" % (self.DAEMON, err))

    def env(self):
        return base_env()

    def daemon_argv(self):
        return [self.BINARY, "-c", self.conf_path]

    def stderr(self):
        """The daemons' stderr file (of the last one, unless STDERR_APPEND)."""
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def listen_notify(self, name):
        """A NotifySocket self.tmp/NAME as self.notify, closed at the end of the test."""
        self.notify = NotifySocket(os.path.join(self.tmp, name))
        self.addCleanup(self.notify.close)
        return self.notify

    def spawn(self, argv, env):
        """Start ARGV as a Daemon, to be stopped and judged at the end of the test."""
        d = Daemon(argv, env, self.stderr_path, append=self.STDERR_APPEND)
        self.daemons.append(d)
        return d

    def start_activated(self):
        """systemd-socket-activate listens on the socket; the daemon starts at the first connection."""
        self.listen_notify("notify")
        argv = ["systemd-socket-activate", "-l", self.socket_path, "--fdname=varlink",
                "-E", "NOTIFY_SOCKET=" + self.notify.path]
        for kv in sorted(self.env().items()):
            if kv[0] != "PATH":
                argv += ["-E", "%s=%s" % kv]
        d = self.spawn(argv + self.daemon_argv(), self.env())

        def listening():
            if not d.running():
                raise AssertionError("systemd-socket-activate exited:\n" + d.stderr())
            return "Listening on %s" % self.socket_path in d.stderr()
        self.assertTrue(wait_until(listening, START_TIMEOUT), "not listening: " + d.stderr())
        return d


def write_queue_conf(path, name, spool, rt, settings, transport):
    """main.cf for a queue test: nothing can reach the network (every transport is discard,
    no relayhost) unless SETTINGS (pairs) say otherwise; TRANSPORT pairs make a [transport]
    table."""
    base = [("queue_directory", spool), ("runtime_directory", rt),
            ("myhostname", "tern.test"), ("mydestination", "localhost"),
            ("default_transport", "discard"), ("relay_transport", "discard"),
            ("local_transport", "discard"), ("relayhost", ""),
            ("queue_run_delay", "300s"), ("max_idle", "100s")]
    keys = dict(settings)
    lines = [(k, keys.pop(k) if k in keys else v) for k, v in base] + list(keys.items())
    write_conf(path, name, dict(lines))
    if transport:
        with open(path, "a") as f:
            f.write("\n[transport]\n")
            for k, v in transport:
                f.write("%s = %s\n" % (k, v))
