# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# units-lib.sh - shared by verify-units.sh and run.sh (sourced, not run)
#
# Unit files name their programs where they are installed (@pkglibexecdir@/tern-flush,
# /usr/bin/ternctl, ...). To verify or run them before installation, unit_localize copies a
# unit and points every Exec*= program at the executable of the same name in the build tree.
# A program with no built executable of that name is left alone, so `systemd-analyze verify`
# still complains about it.

# build_executable BUILD_ROOT NAME - the build tree's executable NAME, relative to BUILD_ROOT
build_executable() {
        local root=$1 name=$2 found
        found=$(find "$root" -name '*.p' -prune -o -name meson-private -prune -o \
                     -type f -name "$name" -perm -u+x -print -quit)
        [ -n "$found" ] || return 1
        printf '%s\n' "${found#"$root"/}"
}

# unit_localize SRC DST BUILD_ROOT [SEEN_AS]
# Copy unit SRC to DST with each Exec*= program replaced by SEEN_AS/<its path in BUILD_ROOT>.
# SEEN_AS (default BUILD_ROOT) is where the build tree appears to the manager that loads the
# unit, e.g. a bind mount inside a container.
unit_localize() {
        local src=$1 dst=$2 root=$3 seen=${4:-$3}
        local line key flags prog rest rel
        # Exec prefixes (systemd.service(5): - @ : + ! !!), then the program: a path that starts
        # with a meson placeholder such as @pkglibexecdir@ (tried first, so that its "@" is not
        # taken for a prefix), an absolute path, or a bare name
        local re_placeholder='^(Exec[A-Za-z]*)=([-@:+!]*)(@[A-Za-z_]+@[^[:space:]]*)(.*)$'
        local re_program='^(Exec[A-Za-z]*)=([-@:+!]*)([^-@:+![:space:]][^[:space:]]*)(.*)$'

        : >"$dst"
        while IFS= read -r line || [ -n "$line" ]; do
                if [[ $line =~ $re_placeholder ]] || [[ $line =~ $re_program ]]; then
                        key=${BASH_REMATCH[1]} flags=${BASH_REMATCH[2]}
                        prog=${BASH_REMATCH[3]} rest=${BASH_REMATCH[4]}
                        if rel=$(build_executable "$root" "${prog##*/}"); then
                                line="$key=$flags$seen/$rel$rest"
                        fi
                fi
                printf '%s\n' "$line" >>"$dst"
        done <"$src"
}
