#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""gen-conf-doc.py - write conf/main.cf and the parameter list of man/tern.conf.5 from conf.c's table

The table in src/lib/conf.c (between "conf-table-begin" and "conf-table-end") is the one source
of parameter names, types, defaults, units, ranges, readers and summaries. This script parses it
(P_STR/P_LIST/P_BOOL/P_INT/P_SIZE/P_TIME entries; string literals and the R_* reader macros),
then
  - writes conf/main.cf: every parameter, commented out with its default, grouped by program;
  - replaces the lines between '.\\" BEGIN GENERATED PARAMETERS' and '.\\" END GENERATED
    PARAMETERS' in man/tern.conf.5.
With --check it writes nothing and exits 1 when either file is out of date.
tests/unit/lib/test-conf.c checks the same coverage against the compiled table.

usage: tools/gen-conf-doc.py [--check] [--root DIR]
"""

import argparse
import os
import re
import sys

TOKEN = re.compile(r'''
    (?P<ws>\s+) |
    (?P<comment>/\*.*?\*/) |
    (?P<string>"(?:[^"\\]|\\.)*") |
    (?P<char>'(?:[^'\\]|\\.)') |
    (?P<number>-?\d+) |
    (?P<ident>[A-Za-z_][A-Za-z0-9_]*) |
    (?P<punct>[(),])
''', re.VERBOSE | re.DOTALL)

GROUPS = [
    ("common", "Common to all programs"),
    ("qmgr", "tern-qmgr: queue manager, routing, bounces"),
    ("flush", "tern-flush: fast flush (ETRN, sendmail -qR)"),
    ("scache", "tern-scache: shared connection cache"),
    ("smtp", "tern-smtp: SMTP/LMTP delivery agent"),
    ("smtpd", "tern-smtpd: SMTP server"),
    ("submit", "tern-submit: local submission"),
    ("discard", "tern-discard"),
    ("error", "tern-error"),
    ("ctl", "ternctl"),
    ("sendmail", "tern-sendmail"),
]

TYPE_NAMES = {"P_STR": "string", "P_LIST": "list", "P_BOOL": "boolean", "P_INT": "integer",
              "P_SIZE": "size", "P_TIME": "time"}

INT_MAX = 2147483647
SIZE_MAX = 9223372036854775807


def c_string(lit):
    body = lit[1:-1]
    return bytes(body, "utf-8").decode("unicode_escape")


def parse_table(path):
    text = open(path, encoding="utf-8").read()
    macros = {}
    for m in re.finditer(r'^#define\s+(R_[A-Z_]+)\s+(".*")\s*$', text, re.M):
        macros[m.group(1)] = c_string(m.group(2))
    try:
        begin = text.index("conf-table-begin")
        end = text.index("conf-table-end")
    except ValueError:
        sys.exit(f"{path}: table markers not found")
    body = text[text.index("*/", begin) + 2:text.rindex("/*", 0, end)]

    tokens = []
    pos = 0
    while pos < len(body):
        m = TOKEN.match(body, pos)
        if not m:
            sys.exit(f"{path}: cannot parse the table near {body[pos:pos + 40]!r}")
        pos = m.end()
        kind = m.lastgroup
        if kind in ("ws", "comment"):
            continue
        tokens.append((kind, m.group(kind)))

    params = []
    i = 0
    while i < len(tokens):
        kind, val = tokens[i]
        if kind != "ident" or val not in TYPE_NAMES:
            sys.exit(f"{path}: expected a P_* entry, got {val!r}")
        if tokens[i + 1] != ("punct", "("):
            sys.exit(f"{path}: expected '(' after {val}")
        i += 2
        args, cur = [], []
        while tokens[i] != ("punct", ")"):
            if tokens[i] == ("punct", ","):
                args.append(cur)
                cur = []
            else:
                cur.append(tokens[i])
            i += 1
        args.append(cur)
        i += 1
        if i < len(tokens) and tokens[i] == ("punct", ","):
            i += 1

        def value(arg):
            out = None
            for k, v in arg:
                if k == "string":
                    out = (out or "") + c_string(v)
                elif k == "ident" and v in macros:
                    out = (out or "") + macros[v]
                elif k == "number":
                    return int(v)
                elif k == "char":
                    return v[1:-1]
                else:
                    sys.exit(f"{path}: cannot evaluate {v!r}")
            return out

        vals = [value(a) for a in args]
        p = {"kind": val, "type": TYPE_NAMES[val], "name": vals[0], "default": vals[1]}
        if val in ("P_STR", "P_LIST", "P_BOOL"):
            p.update(readers=vals[2], summary=vals[3])
        elif val in ("P_INT", "P_SIZE"):
            p.update(min=vals[2], max=vals[3], readers=vals[4], summary=vals[5])
        else:
            p.update(unit=vals[2], min=vals[3], max=vals[4], readers=vals[5], summary=vals[6])
        params.append(p)
    return params


def group_of(p):
    readers = p["readers"].split()
    return "common" if len(readers) >= 8 else readers[0]


def type_text(p):
    t = p["type"]
    if t == "time":
        lo, hi = p["min"], p["max"] or INT_MAX
        rng = f"at least {lo}s" if hi == INT_MAX else f"{lo}s to {hi}s"
        return f"time, default unit {p['unit']}, {rng}"
    if t == "integer":
        lo, hi = p["min"], p["max"] or INT_MAX
        return f"integer, at least {lo}" if hi == INT_MAX else f"integer, {lo} to {hi}"
    if t == "size":
        return "size in bytes (suffix k, m, g)"
    if t == "boolean":
        return "yes or no"
    return t


def main_cf(params):
    out = []
    out.append("""\
# /etc/tern/main.cf - tern's configuration (tern.conf(5))
#
# Every parameter is listed below, commented out, with its default value. To change one,
# remove the '#' and edit the value. Syntax, as in Postfix's main.cf:
#
#   name = value        the last definition of a name wins
#       more value      a line that starts with white space continues the previous line
#   # comment           '#' only at the start of a line; ';' is an ordinary character
#   $name ${name}       the value of another parameter; $$ is a literal '$'
#   ${name?text}        text if $name is not empty; ${name:text}: text if it is empty
#   30s 5m 12h 7d 1w    time units; a number without a unit takes the parameter's own unit
#
# A physical line is at most 198 bytes; use continuation lines for longer values.
#
# Per-program overrides (as master.cf's -o did) go at the end, in sections:
#
#   [flush]
#   max_idle = 300s
#
# Per-transport overrides need no section: smtp_destination_concurrency_limit = 10,
# relay_destination_recipient_limit = 20, ... (see tern.conf(5)).
#
# The transport(5) table is the [transport] section:
#
#   [transport]
#   example.com = smtp:[192.0.2.1]:2525
#   .example.com = relay:
#   old.example = error:5.1.1 this domain no longer accepts mail
""")
    for key, title in GROUPS:
        group = [p for p in params if group_of(p) == key]
        if not group:
            continue
        out.append("")
        out.append("# " + "=" * 96)
        out.append(f"# {title}")
        out.append("# " + "=" * 96)
        for p in group:
            out.append("")
            out.append(f"# {p['summary']} ({type_text(p)})")
            default = p["default"]
            out.append(f"#{p['name']} = {default}".rstrip() if default else f"#{p['name']} =")
    out.append("")
    return "\n".join(out)


def troff(s):
    s = s.replace("\\", "\\e").replace("-", "\\-")
    if s.startswith(".") or s.startswith("'"):
        s = "\\&" + s
    return s


def man_params(params):
    out = []
    for p in sorted(params, key=lambda p: p["name"]):
        default = p["default"]
        if p["name"] in ("myhostname", "mydomain"):
            shown = "computed, see below"
        elif default == "":
            shown = "empty"
        else:
            shown = "\\fB" + troff(default).replace(",", ",\\:") + "\\fR"  # \: lets a long list break
        readers = ", ".join(p["readers"].split())
        out.append(".TP")
        out.append(f".B {troff(p['name'])}")
        out.append(f"{troff(type_text(p))}; default {shown}; read by {readers}.")
        out.append(".br")
        out.append(troff(p["summary"]) + ".")
    return "\n".join(out) + "\n"


def replace_between(text, begin, end, new):
    b = text.index(begin)
    e = text.index(end)
    b = text.index("\n", b) + 1
    return text[:b] + new + text[e:]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the files are out of date")
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    args = ap.parse_args()

    params = parse_table(os.path.join(args.root, "src/lib/conf.c"))
    names = [p["name"] for p in params]
    if names != sorted(names):
        sys.exit("src/lib/conf.c: the table is not sorted by name")

    targets = {}
    targets[os.path.join(args.root, "conf/main.cf")] = main_cf(params)
    man = os.path.join(args.root, "man/tern.conf.5")
    text = open(man, encoding="utf-8").read()
    targets[man] = replace_between(text, '.\\" BEGIN GENERATED PARAMETERS',
                                   '.\\" END GENERATED PARAMETERS', man_params(params))

    stale = []
    for path, content in targets.items():
        old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
        if old != content:
            stale.append(path)
            if not args.check:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(content)
    if args.check and stale:
        print("out of date: " + ", ".join(stale) + " (run tools/gen-conf-doc.py)", file=sys.stderr)
        return 1
    print(f"{len(params)} parameters" + ("" if args.check else f"; wrote {len(stale)} file(s)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
