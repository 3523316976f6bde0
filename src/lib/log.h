/* SPDX-License-Identifier: MIT */
/*
 * log.h - the journal, with Postfix's line text and tern's structured fields
 *
 * Every line goes to the journal through sd_journal_sendv() with SYSLOG_IDENTIFIER=
 * "$syslog_name/<program>" (tern/flush, as postfix/flush), SYSLOG_FACILITY= ($syslog_facility, mail),
 * PRIORITY=, CODE_FILE/CODE_LINE/CODE_FUNC and the TERN_* fields the caller adds. The MESSAGE
 * text is Postfix's: info lines bare, the other tiers prefixed "warning: ", "error: ",
 * "fatal: ", "panic: " exactly as msg_warn()/msg_error()/msg_fatal()/msg_panic() do.
 *
 * The same text goes to stderr ("tern/flush: warning: ...") when the program was started by hand
 * (stderr is not the journal stream systemd gave us) or when no journal is reachable.
 * TERN_LOG=journal|stderr|both overrides that choice.
 *
 * Tiers (Postfix's): warning - skip the item and go on; error - a failed request; fatal - the
 * environment is broken, exit(1) and let systemd restart us; panic - a broken invariant, abort().
 *
 * Library code (src/lib) logs at most with log_debug().
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <syslog.h>

#include "macro.h"

typedef enum LogTarget {
        LOG_TARGET_AUTO,
        LOG_TARGET_JOURNAL,
        LOG_TARGET_STDERR,
        LOG_TARGET_BOTH,
} LogTarget;

/* A test sink sees every line (priority, MESSAGE text, NULL-terminated "FIELD=value" list). */
typedef void (*LogSink)(int priority, const char *message, const char *const *fields, void *userdata);

/* log_open - set the identifier "SYSLOG_NAME/PROGRAM" and pick the target (LOG_TARGET_AUTO: see above) */
void log_open(const char *syslog_name, const char *program, LogTarget target);
const char *log_identifier(void);
/* log_set_facility - SYSLOG_FACILITY= by name ("mail", "local0", ...); -EINVAL if unknown */
int log_set_facility(const char *name);
void log_set_verbose(int level);
int log_get_verbose(void);
void log_set_sink(LogSink sink, void *userdata);

/*
 * log_internal - the one function behind the macros below. FIELDS is NULL or a NULL-terminated
 * list of "TERN_NAME=value" strings. Returns -abs(error) so callers can `return log_..._errno()`.
 * With error != 0, "%m" in FORMAT prints strerror(error).
 */
int log_internal(int priority, int error, const char *file, int line, const char *func,
                 const char *const *fields, const char *format, ...) _printf_(7, 8);
int log_internalv(int priority, int error, const char *file, int line, const char *func,
                  const char *const *fields, const char *format, va_list ap) _printf_(7, 0);

_noreturn_ void log_fatal_internal(int error, const char *file, int line, const char *func,
                                   const char *format, ...) _printf_(5, 6);
_noreturn_ void log_panic_internal(const char *file, int line, const char *func, const char *format, ...)
        _printf_(4, 5);

/* LOG_FIELDS("TERN_QUEUE_ID=%s" built by the caller, ...) - a NULL-terminated compound literal */
#define LOG_FIELDS(...) ((const char *const[]){ __VA_ARGS__, NULL })

#define log_full_errno(prio, err, fields, ...) \
        log_internal((prio), (err), __FILE__, __LINE__, __func__, (fields), __VA_ARGS__)

#define log_debug(...)                                                       \
        ({                                                                   \
                if (log_get_verbose() > 0)                                   \
                        log_full_errno(LOG_DEBUG, 0, NULL, __VA_ARGS__);     \
        })
#define log_info(...) log_full_errno(LOG_INFO, 0, NULL, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, NULL, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, NULL, __VA_ARGS__)
#define log_info_fields(fields, ...) log_full_errno(LOG_INFO, 0, (fields), __VA_ARGS__)
#define log_warning_fields(fields, ...) log_full_errno(LOG_WARNING, 0, (fields), __VA_ARGS__)

#define log_debug_errno(err, ...)                                                     \
        ({                                                                            \
                int _e_ = (err);                                                      \
                log_get_verbose() > 0 ? log_full_errno(LOG_DEBUG, _e_, NULL, __VA_ARGS__) \
                                      : -abs(_e_);                                    \
        })
#define log_warning_errno(err, ...) log_full_errno(LOG_WARNING, (err), NULL, __VA_ARGS__)
#define log_error_errno(err, ...) log_full_errno(LOG_ERR, (err), NULL, __VA_ARGS__)

#define log_fatal(...) log_fatal_internal(0, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_fatal_errno(err, ...) log_fatal_internal((err), __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_panic(...) log_panic_internal(__FILE__, __LINE__, __func__, __VA_ARGS__)
