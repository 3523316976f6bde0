/* SPDX-License-Identifier: MIT */
/*
 * conf.h - main.cf: Postfix's parameter names, types and defaults, read with inih
 *
 * One file (default TERN_CONFIG_FILE, /etc/tern/main.cf), `name = value` lines, Postfix's
 * continuation lines (a line that starts with white space continues the previous one), `#`
 * comments, `$name` / `${name}` expansion, per-program `[section]` overrides (as master.cf's
 * -o did) and a `[transport]` section (the transport(5) table: `domain = transport:nexthop`).
 * See man/tern.conf.5.
 *
 * Loading is all or nothing: a bad value fails the whole load with an error text of the form
 * "main.cf:LINE: parameter NAME: ...", so a daemon never starts half-configured. Unknown
 * parameter names are not errors; they are collected as warnings for the caller to log.
 * This module does not log.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ConfType {
        CONF_STRING,    /* free text, expanded */
        CONF_BOOL,      /* yes/no (also true/false, on/off, 1/0) */
        CONF_INT,       /* decimal integer, within [min, max] */
        CONF_TIME,      /* integer + optional unit s m h d w; without a unit, the parameter's own default unit */
        CONF_SIZE,      /* bytes; an integer, optional suffix k/K m/M g/G (binary multiples) */
        CONF_LIST,      /* comma and/or white space separated list */
} ConfType;

typedef struct ConfParam {
        const char *name;       /* Postfix's name */
        ConfType type;
        const char *default_value; /* as Postfix writes it, may contain $name */
        char default_unit;      /* CONF_TIME only: 's', 'm', 'h', 'd' or 'w' */
        int64_t min, max;       /* CONF_INT, CONF_TIME (seconds), CONF_SIZE: accepted range; 0,0 = any >= 0;
                                   max 0 = the type's own limit (INT32_MAX for int and time) */
        const char *readers;    /* programs that read it, space separated: "flush qmgr" */
        const char *summary;    /* one line for ternctl config and the man page */
} ConfParam;

typedef struct Conf Conf;

typedef struct ConfTransportEntry {
        const char *pattern;    /* domain, ".domain" or "*", lower case */
        const char *transport;  /* may be "" (keep the default transport) */
        const char *nexthop;    /* may be "" */
        unsigned line;
} ConfTransportEntry;

/* The table of every known parameter, sorted by name. */
const ConfParam *conf_params(size_t *ret_n);
const ConfParam *conf_param_find(const char *name);

/*
 * conf_load - read PATH for PROGRAM ("flush", "qmgr", ...; NULL: no section applies)
 *
 * PATH NULL means defaults only. On failure returns -errno (-ENOENT, -EINVAL for a bad file,
 * -E2BIG for an over-long line, -ELOOP for a $name loop) and, when ret_error is not NULL, a
 * malloc'ed text "FILE:LINE: parameter NAME: reason" (or "FILE: strerror" for I/O errors).
 */
int conf_load(const char *path, const char *program, Conf **ret, char **ret_error);
/* conf_read_text - the whole file PATH (main.cf, an access table) into *RET (malloc'ed, NULL when
 * empty; not NUL-terminated) and *RET_LEN; -EFBIG over MAX bytes, -EISDIR, -errno */
int conf_read_text(const char *path, size_t max, char **ret, size_t *ret_len);

/* conf_load_string - the same over bytes in memory; FILENAME is used in messages only */
int conf_load_string(const char *text, size_t len, const char *filename, const char *program,
                     Conf **ret, char **ret_error);

Conf *conf_free(Conf *c);

/* Warnings gathered while loading ("main.cf:3: unknown parameter foo_bar"), in file order. */
size_t conf_warnings(const Conf *c, const char *const **ret);

/* Effective, expanded values. The name must be in conf_params(): anything else is a bug (abort). */
const char *conf_get_string(const Conf *c, const char *name);
bool conf_get_bool(const Conf *c, const char *name);
int64_t conf_get_int(const Conf *c, const char *name);
int64_t conf_get_time(const Conf *c, const char *name);         /* seconds */
uint64_t conf_get_size(const Conf *c, const char *name);        /* bytes */
/* NULL-terminated vector of the list's elements; owned by the Conf */
char *const *conf_get_list(const Conf *c, const char *name);

/* conf_user_listed - USER in an authorized_*_users list: "static:anyone" (or static:all),
 * names, "!name" to refuse; the first match wins, no match refuses */
bool conf_user_listed(char *const *list, const char *user);

/* The value as written (after joining continuation lines, before expansion), and where it came from */
const char *conf_get_raw(const Conf *c, const char *name);
bool conf_is_default(const Conf *c, const char *name);

/* Unknown names that were set (for `ternctl config` to show them, as postconf does with -n) */
size_t conf_unknown(const Conf *c, const char *const **ret_names, const char *const **ret_values);

/* The [transport] section in file order */
size_t conf_transport(const Conf *c, const ConfTransportEntry **ret);

/*
 * Per-transport overrides, Postfix's <transport>_<suffix> parameters, as the program's scope sees
 * them. SUFFIX (without the leading '_') is one of: destination_concurrency_limit,
 * destination_recipient_limit, initial_destination_concurrency,
 * destination_concurrency_failed_cohort_limit (int); destination_rate_delay, transport_rate_delay
 * (time, seconds); destination_concurrency_positive_feedback,
 * destination_concurrency_negative_feedback (string). Returns -ENOENT when
 * <transport>_<suffix> is not set (use the default_... parameter then), -EINVAL for an unknown
 * suffix or one of another type. *ret is owned by the Conf.
 */
int conf_get_transport_int(const Conf *c, const char *transport, const char *suffix, int64_t *ret);
int conf_get_transport_time(const Conf *c, const char *transport, const char *suffix, int64_t *ret);
int conf_get_transport_string(const Conf *c, const char *transport, const char *suffix, const char **ret);

/* conf_parse_time - parse "30s", "5m", "10" (with default unit), ... into seconds; pure */
int conf_parse_time(const char *s, char default_unit, int64_t *ret);
/* conf_parse_size - parse "10240000", "10m", ... into bytes; pure */
int conf_parse_size(const char *s, uint64_t *ret);
int conf_parse_bool(const char *s, bool *ret);

/* conf_path - the path to use: -c argument, else $TERN_CONFIG, else TERN_CONFIG_FILE */
const char *conf_path(const char *arg);

#define _cleanup_conf_ _cleanup_(conf_freep)
static inline void conf_freep(Conf **c)
{
        conf_free(*c);
}
