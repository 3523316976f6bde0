#!/bin/bash
# SPDX-License-Identifier: MIT
#
# crash-test.sh - kill the queue writer with SIGKILL at random moments and check the spool
#
# Runs crash-writer (tests/queue/crash-writer.c) against one temporary spool KILLS times, each
# time for a random 0-20 ms (the sleep is the test: it picks the moment of the kill, it is not a
# wait for a condition), then SIGKILL. After each kill `crash-writer check` requires that every
# name in incoming is a temporary name or a whole ready queue file that decodes, and that every
# ID the writer reported as committed is there and whole. Then the temporary files are aged past
# QUEUE_STORE_STALE_TEMP_SEC (mtime two days back) and a second check requires that
# queue_store_open() removed them all. Total run time is bounded (about KILLS * 0.1 s).
#
# Limits: a process kill, not a power cut: what reaches the disk's platter is not tested here.
set -eu

writer=${CRASH_WRITER:?CRASH_WRITER must name the crash-writer binary}
kills=${CRASH_KILLS:-50}
spool=$(mktemp -d /tmp/tern-crash.XXXXXX)
trap 'rm -rf "$spool"' EXIT
ids="$spool/committed"
: >"$ids"
mkdir "$spool/q"
total_temps_aged=0

for ((i = 1; i <= kills; i++)); do
        "$writer" write "$spool/q" >>"$ids" 2>"$spool/writer.err" &
        pid=$!
        # 0..20 ms
        sleep "0.0$(printf '%02d' $((RANDOM % 21)))"
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        if [ -s "$spool/writer.err" ]; then
                echo "kill $i: the writer failed by itself:" >&2
                cat "$spool/writer.err" >&2
                exit 1
        fi
        # A kill can cut the last reported line: drop a partial last line (never a reported ID).
        if [ -s "$ids" ] && [ "$(tail -c1 "$ids" | od -An -c | tr -d ' ')" != '\n' ]; then
                head -n "$(wc -l <"$ids")" "$ids" >"$ids.tmp" && mv "$ids.tmp" "$ids"
        fi
        if [ ! -d "$spool/q/incoming" ]; then
                continue        # killed before the spool existed
        fi
        if ! out=$("$writer" check "$spool/q" "$ids"); then
                echo "kill $i: spool check failed" >&2
                exit 1
        fi
        echo "kill $i: $out"
        temps=$(find "$spool/q/incoming" -maxdepth 1 -name '*.*' -type f | wc -l)
        if [ "$temps" -gt 0 ]; then
                find "$spool/q/incoming" -maxdepth 1 -name '*.*' -type f -exec touch -d '2 days ago' {} +
                total_temps_aged=$((total_temps_aged + temps))
                if ! "$writer" check "$spool/q" "$ids" --no-temps >/dev/null; then
                        echo "kill $i: stale temporary files not removed" >&2
                        exit 1
                fi
        fi
done

committed=$(wc -l <"$ids")
echo "$kills kills, $committed messages reported committed," \
        "$total_temps_aged temporary files left by kills (all removed once stale)"
if [ "$committed" -eq 0 ]; then
        echo "the writer never committed anything: the test tested nothing" >&2
        exit 1
fi
