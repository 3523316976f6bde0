# SPDX-License-Identifier: MIT
"""Postfix interoperability of tern's queue files and queue IDs.

tern -> Postfix: queue files written with tern's codec (tests/queue/queue-tool.c) are read by
Postfix's own postcat(1): the exact output of `postcat -e -h -b`, of plain `postcat`, and of -h
and -b alone (sender, full name, recipients with an original and a done one, arrival and create
time, attributes, headers, body, a line cut into L records, a recipient appended through
pointer records); `postcat -q ID` finds a file that tern placed in a hashed deferred queue.

Postfix -> tern: Postfix's sendmail and postdrop, run by hand on a private queue directory
(no daemon; the pickup trigger fails harmlessly), write a maildrop file named with a long
queue ID; tern parses that ID (its inode must be the file's inode, and tern must spell the
same (time, inode) the same way) and reads the file's records.

postcat comes from $POSTCAT_ROOT (an unpacked postfix package), else
BUILD/postfix-root (tools/fetch-postfix.sh fills it), else the installed /usr/sbin/postcat.
Exit 77 (skip) only when none can be had.
"""
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import SOURCE_ROOT, TempDirTestCase, find_postfix_root  # noqa: E402

QUEUE_TOOL = os.environ.get("QUEUE_TOOL", "")
BUILD_ROOT = os.environ.get("TERN_BUILD_ROOT", os.path.join(SOURCE_ROOT, "build"))


POSTFIX_ROOT = find_postfix_root("postcat")


class PostfixEnv:
    """A private config and queue directory for Postfix's command-line programs."""

    def __init__(self, root, top):
        self.root = root
        self.cf = os.path.join(top, "cf")
        self.queue = os.path.join(top, "queue")
        os.makedirs(self.cf)
        for d in ("maildrop", "public", "pid", "deferred", "incoming"):
            os.makedirs(os.path.join(self.queue, d))
        sbin = os.path.join(root, "usr/sbin")
        lib = os.path.join(root, "usr/lib/postfix")
        with open(os.path.join(self.cf, "main.cf"), "w") as f:
            f.write(f"""compatibility_level = 3.6
queue_directory = {self.queue}
data_directory = {top}/data
meta_directory = {self.cf}
command_directory = {sbin}
daemon_directory = {lib}/sbin
shlib_directory = {lib}
mail_owner = daemon
default_privs = bin
setgid_group = mail
enable_long_queue_ids = yes
hash_queue_names = deferred, defer
hash_queue_depth = 2
import_environment = MAIL_CONFIG TZ LANG=C
export_environment = TZ MAIL_CONFIG LANG LD_LIBRARY_PATH
""")
        self.env = dict(os.environ, TZ="UTC", LANG="C", LC_ALL="C", MAIL_CONFIG=self.cf)
        if root != "/":
            self.env["LD_LIBRARY_PATH"] = lib
        self.sbin = sbin

    def run(self, prog, *args, stdin=None):
        return subprocess.run([os.path.join(self.sbin, prog), *args], input=stdin, env=self.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)

    def postcat(self, *args):
        p = self.run("postcat", "-c", self.cf, *args)
        if p.returncode != 0 or p.stderr:
            raise AssertionError(f"postcat {args}: exit {p.returncode}: {p.stderr.decode(errors='replace')}")
        return p.stdout.decode()


def tool(*args, stdin=b""):
    p = subprocess.run([QUEUE_TOOL, *args], input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       check=False)
    if p.returncode != 0:
        raise AssertionError(f"queue-tool {args}: exit {p.returncode}: {p.stderr.decode()}{p.stdout.decode()}")
    return p.stdout.decode()


def long_line_records(recs):
    """The L... N records that hold LONG, from queue-tool records output."""
    start = next(i for i, r in enumerate(recs) if r[2:12] == LONG[:10])
    end = next(i for i in range(start, len(recs)) if recs[i][0] != "L")
    return recs[start:end + 1]


LONG = "".join(chr(ord("a") + i % 26) for i in range(5000))
CONTENT = f"Subject: tern to postfix\nFrom: Charlie <s@example.org>\n\nbody line 1\n{LONG}\nlast\n"


class PostfixTestCase(TempDirTestCase):
    """A PostfixEnv (self.pf) in a temporary directory (self.tmp) per test."""

    def setUp(self):
        super().setUp()
        self.pf = PostfixEnv(POSTFIX_ROOT, self.tmp)


@unittest.skipIf(POSTFIX_ROOT is None, "postcat not found and Debian's postfix package not fetchable")
class TernToPostfix(PostfixTestCase):
    TMP_PREFIX = "tern-postcat-"

    def write(self, path, *args, content=CONTENT):
        tool("write", path, *args, stdin=content.encode())
        return path

    def test_envelope_header_body(self):
        path = self.write(os.path.join(self.tmp, "qf"), "-t", "1700000000.123456", "-c", "1700000001",
                          "-F", "Charlie Root", "-f", "s@example.org",
                          "-a", "log_client_name=localhost", "-a", "rewrite_context=local",
                          "-o", "Orig@example.com", "-r", "r1@example.com", "-d", "r2@example.com",
                          "-r", "r3@example.net", "-P", "added@example.com")
        dump = tool("dump", path)
        size_line = [l for l in dump.splitlines() if l.startswith("size: ")][0]
        f = [int(x) for x in size_line.split()[1:]]
        head = (f"*** ENVELOPE RECORDS {path} ***\n"
                "message_size: " + " ".join("%15d" % x for x in f) + "\n"
                "message_arrival_time: Tue Nov 14 22:13:20 2023\n"
                "create_time: Tue Nov 14 22:13:21 2023\n"
                "sender_fullname: Charlie Root\n"
                "sender: s@example.org\n"
                "named_attribute: log_client_name=localhost\n"
                "named_attribute: rewrite_context=local\n"
                "original_recipient: Orig@example.com\n"
                "recipient: r1@example.com\n"
                "done_recipient: r2@example.com\n"
                "recipient: r3@example.net\n"
                "recipient: added@example.com\n"
                f"*** MESSAGE CONTENTS {path} ***\n")
        headers = "Subject: tern to postfix\nFrom: Charlie <s@example.org>\n"
        body = f"\nbody line 1\n{LONG}\nlast\n"
        tail = f"*** HEADER EXTRACTED {path} ***\n*** MESSAGE FILE END {path} ***\n"
        want = head + headers + body + tail
        self.assertEqual(self.pf.postcat("-e", "-h", "-b", path), want)
        self.assertEqual(self.pf.postcat(path), want)
        self.assertEqual(self.pf.postcat("-h", path), headers)
        self.assertEqual(self.pf.postcat("-b", path), body)
        self.assertEqual(f[1], int([l for l in dump.splitlines() if l.startswith("content_offset")][0].split()[1]))
        # The 5000-byte line really is cut into L records (2048 + 2048) and an N.
        recs = tool("records", path).splitlines()
        cut = long_line_records(recs)
        self.assertEqual([(r[0], len(r) - 2) for r in cut], [("L", 2048), ("L", 2048), ("N", 904)])

    def test_null_sender_no_fullname(self):
        path = self.write(os.path.join(self.tmp, "qf2"), "-t", "86400.5", "-f", "", "-r", "x@y",
                          content="H: v\n\nb\n")
        out = self.pf.postcat("-e", path)
        self.assertIn("message_arrival_time: Fri Jan  2 00:00:00 1970\n", out)
        self.assertIn("\nsender: \nrecipient: x@y\n", out)
        self.assertNotIn("sender_fullname", out)

    def test_hashed_queue_lookup(self):
        qid = tool("id", "1700000000", "123456", "4242").strip()
        self.assertEqual(qid, "4SVLCh0sf8z1c9")
        sub = tool("hash", qid, "2").strip()
        self.assertEqual(sub, "1/E/")
        d = os.path.join(self.pf.queue, "deferred", sub)
        os.makedirs(d)
        self.write(os.path.join(d, qid), "-f", "s@x", "-r", "r@x", content="A: b\n\nc\n")
        out = self.pf.postcat("-q", "-e", qid)
        self.assertTrue(out.startswith(f"*** ENVELOPE RECORDS deferred/1/E/{qid} ***\n"), out)


@unittest.skipIf(POSTFIX_ROOT is None, "Postfix programs not found and not fetchable")
class PostfixToTern(PostfixTestCase):
    TMP_PREFIX = "tern-postdrop-"

    def test_maildrop_file(self):
        if os.geteuid() != 0:
            self.skipTest("postdrop needs root (or the setgid group) to write the maildrop queue")
        msg = f"Subject: postfix to tern\n\nhello\n{LONG}\n".encode()
        p = self.pf.run("sendmail", "-f", "a@b.example", "-F", "Full Name", "c@d.example", stdin=msg)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        names = os.listdir(os.path.join(self.pf.queue, "maildrop"))
        self.assertEqual(len(names), 1)
        name = names[0]
        path = os.path.join(self.pf.queue, "maildrop", name)
        sec, usec, inode = (int(x) for x in tool("parse-id", name).split())
        self.assertEqual(inode, os.stat(path).st_ino, f"{name}: got inode {inode}")
        self.assertEqual(tool("id", str(sec), str(usec), str(inode)).strip(), name)
        self.assertLess(abs(sec - os.stat(path).st_mtime), 120)
        recs = tool("records", path).splitlines()
        types = "".join(r[0] for r in recs)
        self.assertEqual(recs[0][0], "T")
        self.assertIn("S a@b.example", recs)
        self.assertIn("F Full Name", recs)
        self.assertIn("R c@d.example", recs)
        self.assertIn("N Subject: postfix to tern", recs)
        self.assertTrue(types.endswith("MNNNLLNXE"), types)
        self.assertEqual("".join(r[2:] for r in long_line_records(recs)), LONG)
        # A maildrop file is pickup's input, not a queue file: no C record, and tern says so.
        p = subprocess.run([QUEUE_TOOL, "dump", path], stdout=subprocess.PIPE, check=False)
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stdout.decode(), "invalid: first record is not the size record (C)\n")


if __name__ == "__main__":
    if POSTFIX_ROOT is None:
        print("postcat: not in PATH, $POSTCAT_ROOT or BUILD/postfix-root, and tools/fetch-postfix.sh failed: skipped")
        sys.exit(77)
    unittest.main(verbosity=2)
