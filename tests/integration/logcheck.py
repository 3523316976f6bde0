# SPDX-License-Identifier: MIT
"""What the log suites (test_qmgr_logs.py, test_smtp_logs.py) share: the daemons' stderr as tern
log lines, their normalized golden text, the comparison with a golden file, and pflogsumm's view
of them.

normalize(): queue IDs become QID1, QID2, ... in order of first appearance; delay= and delays=
numbers become "D"; the temporary directory becomes "TMP"; the size of a notification (which
holds dates) becomes "N"; REWRITE (optional) changes each line further (ports, times). Lines are
grouped per queue ID ("# QIDn" headers, "# -" for lines without one); within a group the order
is the log's, except that a run of consecutive "to=" lines (deliveries that may run in parallel)
is sorted.
"""
import collections
import os
import re
import subprocess

UPDATE_GOLDEN = os.environ.get("TERN_UPDATE_GOLDEN") == "1"

# a queue ID (Postfix's long form: 10 or more of [0-9A-Za-z]); not tern-scache's "statistics:"
QID_SUBJECT = re.compile(r"^tern/[a-z0-9-]+: (?!statistics:)([0-9A-Za-z]{10,}): ")
QID_NEW = re.compile(r" notification: ([0-9A-Za-z]{10,})$")
DELAYS = re.compile(r"\bdelay=[0-9.]+, delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+,")

# syslog's host and date, fixed
SYSLOG_PREFIX = "Nov 23 10:00:00 tern "


class Tally:
    """What a scripted run did, as pflogsumm counts it: delivery lines by status, by domain and
    status, and the messages that had at least one deferral. OUTCOME(rcpt) says what the run's
    routing does to a recipient: "sent", "bounced" or "deferred"."""

    def __init__(self, outcome):
        self.outcome = outcome
        self.lines = collections.Counter()
        self.domains = collections.defaultdict(collections.Counter)     # domain -> status -> lines
        self.deferred_messages = set()

    def attempt(self, qid, rcpts):
        """One delivery attempt of message QID to RCPTS (those not yet done)."""
        for r in rcpts:
            status = self.outcome(r)
            self.lines[status] += 1
            self.domains[r.rsplit("@", 1)[1]][status] += 1
            if status == "deferred":
                self.deferred_messages.add(qid)


def log_lines(test):
    """Every line of TEST's daemons' stderr; each must be a "tern/PROGRAM: ..." line."""
    lines = test.stderr().splitlines()
    bad = [x for x in lines if not re.match(r"tern/[a-z0-9-]+: ", x)]
    test.assertFalse(bad, "lines that are not tern log lines:\n" + "\n".join(bad))
    return lines


def normalize(lines, tmp, rewrite=None):
    """The golden text of LINES (see the module's docstring)."""
    names = {}

    def name(qid):
        if qid not in names:
            names[qid] = "QID%d" % (len(names) + 1)
        return names[qid]

    groups = collections.OrderedDict()
    groups["-"] = []
    notices = set()
    for line in lines:
        m = QID_SUBJECT.match(line)
        subject = name(m.group(1)) if m else "-"
        new = QID_NEW.search(line)
        if new:
            notices.add(name(new.group(1)))
        for qid in list(names):
            line = line.replace(qid, names[qid])
        line = line.replace(tmp, "TMP")
        line = DELAYS.sub("delay=D, delays=D/D/D/D,", line)
        if rewrite:
            line = rewrite(line)
        if subject in notices:
            line = re.sub(r"\bsize=\d+,", "size=N,", line)
        groups.setdefault(subject, []).append(line)

    out = []
    for subject, group in groups.items():
        if not group:
            continue
        out.append("# %s" % subject)
        run = []
        for line in group + [None]:
            if line is not None and ": to=<" in line:
                run.append(line)
                continue
            out += sorted(run)
            run = []
            if line is not None:
                out.append(line)
    return "\n".join(out) + "\n"


def check_golden(test, path, got):
    """GOT equals the golden file PATH (TERN_UPDATE_GOLDEN=1 rewrites it instead)."""
    if UPDATE_GOLDEN:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(got)
        return
    with open(path) as f:
        want = f.read()
    test.maxDiff = None
    test.assertEqual(got, want, "the run's log differs from %s (TERN_UPDATE_GOLDEN=1 rewrites it; "
                                "check every changed line against Postfix's format first)" % path)


def to_syslog(lines, pids):
    """LINES ("tern/qmgr: text") as syslog writes them ("Nov 23 10:00:00 tern tern/qmgr[1001]:
    text"), with the pid PIDS gives the program (1999 for one it does not name)."""
    out = []
    for line in lines:
        m = re.match(r"(tern/([a-z0-9-]+)): (.*)$", line)
        pid = pids.get(m.group(2), 1999)
        out.append("%s%s[%d]: %s\n" % (SYSLOG_PREFIX, m.group(1), pid, m.group(3)))
    return "".join(out)


def pflogsumm(test, lines, pids):
    """pflogsumm --syslog-name=tern's report on LINES (as syslog lines, in TEST's temporary
    directory)."""
    log = os.path.join(test.tmp, "maillog")
    with open(log, "w") as f:
        f.write(to_syslog(lines, pids))
    p = subprocess.run(["pflogsumm", "--syslog-name=tern", log], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"})
    test.assertEqual(p.returncode, 0, p.stderr.decode())
    return p.stdout.decode()


def grand_totals(report):
    """{"received": N, "delivered": N, ..., "deferrals": N} from pflogsumm's Grand Totals."""
    section = report.split("Grand Totals", 1)[1].split("bytes received", 1)[0]
    totals = {}
    for count, label in re.findall(r"^\s*(\d+)\s+([a-z][a-z ]*[a-z])", section, re.M):
        totals[label] = int(count)
    m = re.search(r"^\s*\d+\s+deferred\s+\((\d+)\w?\s+deferrals\)", section, re.M)
    totals["deferrals"] = int(m.group(1)) if m else 0
    return totals
