#!/bin/sh
# SPDX-License-Identifier: MIT
#
# fetch-postfix.sh DIR - unpack Debian's postfix package into DIR without installing it, for
# tests/integration/test_postcat.py (postcat, sendmail, postdrop and their libraries). Nothing is
# configured, started or registered with dpkg; no MTA runs and port 25 stays free. The programs
# need libdb5.3, libicu72 and libnsl2 (tools/deps.sh --tests installs them). Needs apt-get's
# package lists and network access to the archive; exits non-zero when either is missing.
set -eu
dir=$1
[ -x "$dir/usr/sbin/postcat" ] && exit 0
command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1 || exit 1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download -q postfix >/dev/null 2>&1) || exit 1
mkdir -p "$dir"
dpkg -x "$tmp"/postfix_*.deb "$dir"
[ -x "$dir/usr/sbin/postcat" ]
