/* SPDX-License-Identifier: MIT */
/*
 * log.c - journal and stderr logging with Postfix's line text (see log.h)
 *
 * One line is formatted once into a bounded buffer (LOG_LINE_MAX) and then handed to every
 * target. sd_journal_sendv() returns 0 and drops the line when journald is not running, so
 * "is a journal reachable" is decided once, at log_open(), from the socket's presence.
 *
 * Limits: a line longer than LOG_LINE_MAX is cut (Postfix's msg_vprintf does the same at
 * its own limit); the cut is marked with "...".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
/* Otherwise sd-journal.h makes sd_journal_sendv() a macro that adds log_emit()'s own CODE_FILE,
 * CODE_LINE and CODE_FUNC, and every entry would carry two of each (journalctl -o json: arrays). */
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-journal.h>

#include "log.h"

/* Longer than any Postfix log line, short enough to sit on the stack. */
#define LOG_LINE_MAX 4096
/* Fields beyond MESSAGE/PRIORITY/identity/CODE_*: enough for any tern line. */
#define LOG_FIELDS_MAX 16

static char log_ident[128] = "tern";
static bool log_to_journal = false;
static bool log_to_stderr = true;
static int log_verbose = 0;
static char log_facility_field[32] = "SYSLOG_FACILITY=2";   /* mail, as Postfix's default */
static LogSink log_sink = NULL;
static void *log_sink_userdata = NULL;

/* stderr_is_journal - is fd 2 the stream systemd connected to the journal for us? */
static bool stderr_is_journal(void)
{
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

/* log_open - set the identifier and the targets */
void log_open(const char *syslog_name, const char *program, LogTarget target)
{
        const char *e;

        if (program)
                snprintf(log_ident, sizeof(log_ident), "%s/%s", isempty(syslog_name) ? "tern" : syslog_name,
                         program);
        else
                snprintf(log_ident, sizeof(log_ident), "%s", isempty(syslog_name) ? "tern" : syslog_name);

        e = getenv("TERN_LOG");
        if (target == LOG_TARGET_AUTO && e) {
                if (streq(e, "journal"))
                        target = LOG_TARGET_JOURNAL;
                else if (streq(e, "stderr"))
                        target = LOG_TARGET_STDERR;
                else if (streq(e, "both"))
                        target = LOG_TARGET_BOTH;
        }

        switch (target) {
        case LOG_TARGET_JOURNAL:
                log_to_journal = true, log_to_stderr = false;
                break;
        case LOG_TARGET_STDERR:
                log_to_journal = false, log_to_stderr = true;
                break;
        case LOG_TARGET_BOTH:
                log_to_journal = true, log_to_stderr = true;
                break;
        case LOG_TARGET_AUTO:
        default:
                if (stderr_is_journal()) {
                        log_to_journal = true, log_to_stderr = false;
                } else {
                        log_to_journal = access("/run/systemd/journal/socket", W_OK) >= 0;
                        log_to_stderr = true;
                }
                break;
        }
}

/* log_set_facility - syslog_facility by name, as syslog.conf names them */
int log_set_facility(const char *name)
{
        static const struct {
                const char *name;
                int facility;
        } table[] = {
                { "kern", 0 },    { "user", 1 },    { "mail", 2 },    { "daemon", 3 },  { "auth", 4 },
                { "syslog", 5 },  { "lpr", 6 },     { "news", 7 },    { "uucp", 8 },    { "cron", 9 },
                { "authpriv", 10 }, { "ftp", 11 },  { "local0", 16 }, { "local1", 17 }, { "local2", 18 },
                { "local3", 19 }, { "local4", 20 }, { "local5", 21 }, { "local6", 22 }, { "local7", 23 },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (streq(table[i].name, name)) {
                        snprintf(log_facility_field, sizeof(log_facility_field), "SYSLOG_FACILITY=%d",
                                 table[i].facility);
                        return 0;
                }
        return -EINVAL;
}

const char *log_identifier(void)
{
        return log_ident;
}

void log_set_verbose(int level)
{
        log_verbose = level;
}

int log_get_verbose(void)
{
        return log_verbose;
}

void log_set_sink(LogSink sink, void *userdata)
{
        log_sink = sink;
        log_sink_userdata = userdata;
}

/* tier_prefix - Postfix's msg_* prefixes */
static const char *tier_prefix(int priority)
{
        switch (priority) {
        case LOG_WARNING:
                return "warning: ";
        case LOG_ERR:
                return "error: ";
        case LOG_CRIT:
                return "fatal: ";
        case LOG_ALERT:
        case LOG_EMERG:
                return "panic: ";
        case LOG_DEBUG:
                return "debug: ";
        default:
                return "";
        }
}

/* log_emit - hand one formatted line to every target */
static void log_emit(int priority, const char *file, int line, const char *func, const char *const *fields,
                     const char *message)
{
        if (log_sink)
                log_sink(priority, message, fields, log_sink_userdata);

        if (log_to_journal) {
                char prio[16], code_line[32], *msg = NULL, *ident = NULL, *code_file = NULL,
                                              *code_func = NULL;
                struct iovec iov[8 + LOG_FIELDS_MAX];
                size_t n = 0;

                snprintf(prio, sizeof(prio), "PRIORITY=%d", priority);
                snprintf(code_line, sizeof(code_line), "CODE_LINE=%d", line);
                if (asprintf(&msg, "MESSAGE=%s", message) >= 0 &&
                    asprintf(&ident, "SYSLOG_IDENTIFIER=%s", log_ident) >= 0 &&
                    asprintf(&code_file, "CODE_FILE=%s", file) >= 0 &&
                    asprintf(&code_func, "CODE_FUNC=%s", func) >= 0) {
                        iov[n++] = (struct iovec){ msg, strlen(msg) };
                        iov[n++] = (struct iovec){ prio, strlen(prio) };
                        iov[n++] = (struct iovec){ ident, strlen(ident) };
                        iov[n++] = (struct iovec){ log_facility_field, strlen(log_facility_field) };
                        iov[n++] = (struct iovec){ code_file, strlen(code_file) };
                        iov[n++] = (struct iovec){ code_line, strlen(code_line) };
                        iov[n++] = (struct iovec){ code_func, strlen(code_func) };
                        for (size_t i = 0; fields && fields[i] && i < LOG_FIELDS_MAX; i++)
                                iov[n++] = (struct iovec){ (char *) fields[i], strlen(fields[i]) };
                        (void) sd_journal_sendv(iov, (int) n);
                }
                free(msg);
                free(ident);
                free(code_file);
                free(code_func);
        }

        if (log_to_stderr) {
                /* One write(2), so that lines of concurrent processes do not interleave. */
                char buf[LOG_LINE_MAX + 256];
                int k = snprintf(buf, sizeof(buf), "%s: %s\n", log_ident, message);
                if (k > 0)
                        (void) !write(STDERR_FILENO, buf, MIN((size_t) k, sizeof(buf) - 1));
        }
}

int log_internalv(int priority, int error, const char *file, int line, const char *func,
                  const char *const *fields, const char *format, va_list ap)
{
        char body[LOG_LINE_MAX], message[LOG_LINE_MAX + 16];
        int saved_errno = errno;
        int k;

        if (priority == LOG_DEBUG && log_verbose <= 0)
                return -abs(error);

        errno = abs(error);     /* for %m */
        k = vsnprintf(body, sizeof(body), format, ap);
        if (k >= (int) sizeof(body))
                memcpy(body + sizeof(body) - 4, "...", 4);
        snprintf(message, sizeof(message), "%s%s", tier_prefix(priority), body);
        log_emit(priority, file, line, func, fields, message);
        errno = saved_errno;
        return -abs(error);
}

int log_internal(int priority, int error, const char *file, int line, const char *func,
                 const char *const *fields, const char *format, ...)
{
        va_list ap;
        int r;

        va_start(ap, format);
        r = log_internalv(priority, error, file, line, func, fields, format, ap);
        va_end(ap);
        return r;
}

void log_fatal_internal(int error, const char *file, int line, const char *func, const char *format, ...)
{
        va_list ap;

        va_start(ap, format);
        (void) log_internalv(LOG_CRIT, error, file, line, func, NULL, format, ap);
        va_end(ap);
        exit(EXIT_FAILURE);
}

void log_panic_internal(const char *file, int line, const char *func, const char *format, ...)
{
        va_list ap;

        va_start(ap, format);
        (void) log_internalv(LOG_ALERT, 0, file, line, func, NULL, format, ap);
        va_end(ap);
        abort();
}
