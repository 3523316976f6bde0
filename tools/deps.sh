#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# deps.sh [--tests|--sink] - install the Debian 12 packages tern needs, if any is missing.
#
# Build: meson, ninja, pkg-config, a compiler, libsystemd, inih, jansson, libidn2.
# --tests adds what the test suites use: cmocka, clang with its sanitizer and
# libFuzzer runtimes, systemd-container (systemd as PID 1 in nspawn),
# varlink-go (the independent varlink peer), groff/man-db (man page checks),
# pflogsumm (the qmgr-logs suite sums tern's log lines up with it), swaks (an independent
# SMTP client for the smtpd suite).
# --sink adds only the libraries of Postfix's smtp-sink (tools/run-local.sh's destination).
# Run as root (it calls apt-get); as another user it only reports what is missing.
set -euo pipefail

pkgs=(meson ninja-build pkg-config gcc python3 libsystemd-dev libinih-dev libjansson-dev libidn2-dev systemd)
# Postfix's smtp-sink, smtp-source and postcat (tools/fetch-postfix.sh unpacks the postfix
# package without installing it) need these libraries.
postfix_libs=(libdb5.3 libicu72 libnsl2)
case "${1:-}" in
--tests)
        pkgs+=(libcmocka-dev clang libclang-rt-14-dev systemd-container varlink-go groff-base man-db
                "${postfix_libs[@]}" pflogsumm swaks)
        ;;
--sink)
        pkgs+=("${postfix_libs[@]}")
        ;;
esac

missing=()
for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
        echo "deps.sh: missing Debian packages: ${missing[*]}" >&2
        echo "deps.sh: run as root, or: sudo apt-get install ${missing[*]}" >&2
        exit 1
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
