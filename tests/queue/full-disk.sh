#!/bin/bash
# SPDX-License-Identifier: MIT
#
# full-disk.sh - queue onto a full file system: -ENOSPC, nothing half-written left visible
#
# As root, in a private mount namespace (unshare -m), mounts a 1 MiB tmpfs as the spool and runs
# `crash-writer fill`, which queues messages until one fails; it requires -ENOSPC, no temporary
# file left, exactly the committed messages in incoming, and the failed one not visible.
# Skipped (77) when not root or when mount namespaces are not available.
#
# Limits: on tmpfs the space runs out at the writer's write(), not inside queue_store_commit()
# (tmpfs needs no blocks to fsync or rename); the commit's own ENOSPC path (a directory that
# cannot grow) is covered by the unit test's injected rename failure, not by a real full disk.
set -eu

writer=${CRASH_WRITER:?CRASH_WRITER must name the crash-writer binary}
if [ "$(id -u)" -ne 0 ]; then
        echo "not root: skipped"
        exit 77
fi
if ! unshare -m true 2>/dev/null; then
        echo "no mount namespaces: skipped"
        exit 77
fi
mnt=$(mktemp -d /tmp/tern-full.XXXXXX)
trap 'rmdir "$mnt"' EXIT
unshare -m --propagation private sh -c '
        mount -t tmpfs -o size=1m,mode=0700 tmpfs "$1" || exit 77
        "$2" fill "$1"
' sh "$mnt" "$writer"
