/* SPDX-License-Identifier: MIT */
/*
 * queue-format.c - mailq text, postqueue -j lines and a qshape-like summary, from io.tern.Queue
 *
 * Input: the JSON of io.tern.Queue.Message (queueName, queueId, arrivalTime, messageSize,
 * forcedExpire, sender, recipients[{origAddress, address, delayReason?, bounceReason?}],
 * nextAttemptTime?) and of the Summary reply. Output, byte for byte what Postfix prints:
 *
 *   mailq / postqueue -p (postqueue/showq_compat.c, long queue IDs, which tern always has):
 *     "%-17s %8s %-19s %s\n" heading; per message "%-17s %8ld %19.19s %s\n" with the queue ID
 *     followed by '*' (active) or '!' (hold), then '#' when forced to expire, the size, asctime's
 *     first 19 characters of the local arrival time and the sender; for each recipient its
 *     reason first when it differs from the previous recipient's, right-aligned as
 *     "%*s(%s)\n" with 76 - strlen(reason) spaces (no wrapping: Postfix does not wrap either;
 *     "(reason unavailable)" when the previous one had a reason and this one has none), then
 *     the address after 47 spaces. A blank line between messages; at the end
 *     "\n-- %lu Kbytes in %lu Request%s.\n" or "Mail queue is empty\n".
 *   postqueue -j (postqueue/showq_json.c, Postfix 3.11's members): one line per message,
 *     members in postqueue's order with its spacing (", " and ": "), strings escaped as
 *     quote_for_json does (\b \f \n \r \t, other controls and DEL as \u00XX); tern's
 *     next_attempt_time comes last, only when the message has one.
 *
 * The reason shown in mailq text is the delay reason, else the bounce reason (bounced, notice
 * not sent yet): Postfix's text format has one "why" per recipient.
 *
 * Invariants: nothing here writes anywhere but the FILE it is given; control characters in
 * addresses and reasons never reach a terminal (mailq text shows them as '?', as Postfix's
 * printable() does; JSON escapes them).
 * Limits: a message without queueId or queueName is refused (-EBADMSG) and prints nothing;
 * other missing members print as empty or 0, since the daemon's IDL promises them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "queue-format.h"

/* postqueue/showq_compat.c with enable_long_queue_ids = yes */
#define MAILQ_STRING_FORMAT "%-17s %8s %-19s %s\n"
#define MAILQ_SENDER_FORMAT "%-17s %8lld %19.19s %s\n"
#define MAILQ_HEADINGS "----Queue ID-----", "--Size--", "---Arrival Time----", "--Sender/Recipient------"
/* The reason line ends at column 78: padding = MAILQ_REASON_COLUMN - strlen(reason) */
#define MAILQ_REASON_COLUMN 76

static const char *json_str(json_t *o, const char *name)
{
        json_t *v = json_object_get(o, name);

        return json_is_string(v) ? json_string_value(v) : NULL;
}

static long long json_int(json_t *o, const char *name)
{
        return (long long) json_integer_value(json_object_get(o, name));
}

/* printable_dup - a copy with control characters as '?' (Postfix's printable(s, '?')) */
static char *printable_dup(const char *s)
{
        char *p = strdup(strempty(s));

        if (!p)
                return NULL;
        for (char *c = p; *c; c++)
                if ((unsigned char) *c < 0x20 || *c == 0x7f)
                        *c = '?';
        return p;
}

void queue_format_time(int64_t t, char buf[static 32])
{
        static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
        static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        time_t tt = (time_t) t;
        struct tm tm;

        /* asctime()'s layout without its year, and without its locale or static buffer */
        if (!localtime_r(&tt, &tm) || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 || tm.tm_mon > 11) {
                snprintf(buf, 32, "%-19s", "?");
                return;
        }
        snprintf(buf, 32, "%.3s %.3s%3d %.2d:%.2d:%.2d", days[tm.tm_wday], months[tm.tm_mon], tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* recipient_reason - the "why" Postfix's text format shows: the delay reason, else the bounce reason */
static const char *recipient_reason(json_t *r)
{
        const char *why = json_str(r, "delayReason");

        if (isempty(why))
                why = json_str(r, "bounceReason");
        return strempty(why);
}

int mailq_message(MailqState *s, FILE *f, json_t *message)
{
        const char *queue_name = json_str(message, "queueName"), *queue_id = json_str(message, "queueId");
        _cleanup_(freep) char *sender = NULL, *id_status = NULL, *saved_reason = NULL;
        long long size = json_int(message, "messageSize");
        json_t *recipients = json_object_get(message, "recipients"), *r;
        char arrival[32];
        size_t i;

        if (!queue_name || !queue_id)
                return -EBADMSG;
        sender = printable_dup(json_str(message, "sender"));
        if (!sender || asprintf(&id_status, "%s%s%s", queue_id,
                                streq(queue_name, "active") ? "*"
                                : streq(queue_name, "hold") ? "!"
                                                            : "",
                                json_is_true(json_object_get(message, "forcedExpire")) ? "#" : "") < 0) {
                id_status = NULL;
                return -ENOMEM;
        }
        for (char *c = id_status; *c; c++)
                if ((unsigned char) *c < 0x20 || *c == 0x7f)
                        *c = '?';

        if (s->messages > 0)
                fputc('\n', f);
        else
                fprintf(f, MAILQ_STRING_FORMAT, MAILQ_HEADINGS);
        queue_format_time(json_int(message, "arrivalTime"), arrival);
        fprintf(f, MAILQ_SENDER_FORMAT, id_status, size, arrival, sender);

        /* A "(reason)" line when the reason changes from the previous recipient's; none while
         * no recipient has one; "(reason unavailable)" after one that had a reason. */
        saved_reason = strdup("");
        if (!saved_reason)
                return -ENOMEM;
        json_array_foreach (recipients, i, r) {
                _cleanup_(freep) char *addr = printable_dup(json_str(r, "address"));
                const char *why = recipient_reason(r);

                if (!addr)
                        return -ENOMEM;
                if (!streq(saved_reason, why)) {
                        int padding;

                        free(saved_reason);
                        saved_reason = printable_dup(why);
                        if (!saved_reason)
                                return -ENOMEM;
                        const char *show = *saved_reason ? saved_reason : "reason unavailable";
                        padding = MAILQ_REASON_COLUMN - (int) strlen(show);
                        fprintf(f, "%*s(%s)\n", MAX(padding, 0), "", show);
                }
                fprintf(f, MAILQ_STRING_FORMAT, "", "", "", addr);
        }
        s->messages++;
        s->bytes += size > 0 ? (uint64_t) size : 0;
        return 0;
}

void mailq_end(const MailqState *s, FILE *f)
{
        if (s->messages == 0)
                fputs("Mail queue is empty\n", f);
        else
                fprintf(f, "\n-- %llu Kbytes in %llu Request%s.\n", (unsigned long long) (s->bytes / 1024),
                        (unsigned long long) s->messages, s->messages == 1 ? "" : "s");
}

/* json_quote - a JSON string as Postfix's quote_for_json writes it */
static void json_quote(FILE *f, const char *s)
{
        fputc('"', f);
        for (const unsigned char *c = (const unsigned char *) strempty(s); *c; c++) {
                switch (*c) {
                case '\b':
                        fputs("\\b", f);
                        break;
                case '\f':
                        fputs("\\f", f);
                        break;
                case '\n':
                        fputs("\\n", f);
                        break;
                case '\r':
                        fputs("\\r", f);
                        break;
                case '\t':
                        fputs("\\t", f);
                        break;
                case '"':
                case '\\':
                        fputc('\\', f);
                        fputc(*c, f);
                        break;
                default:
                        if (*c < 0x20 || *c == 0x7f)
                                fprintf(f, "\\u%04X", *c);
                        else
                                fputc(*c, f);
                }
        }
        fputc('"', f);
}

int queue_json_line(FILE *f, json_t *message)
{
        const char *queue_name = json_str(message, "queueName"), *queue_id = json_str(message, "queueId");
        json_t *recipients = json_object_get(message, "recipients"), *r, *next;
        size_t i;

        if (!queue_name || !queue_id)
                return -EBADMSG;
        fputs("{\"queue_name\": ", f);
        json_quote(f, queue_name);
        fputs(", \"queue_id\": ", f);
        json_quote(f, queue_id);
        fprintf(f, ", \"arrival_time\": %lld, \"message_size\": %lld, \"forced_expire\": %s, \"sender\": ",
                json_int(message, "arrivalTime"), json_int(message, "messageSize"),
                json_is_true(json_object_get(message, "forcedExpire")) ? "true" : "false");
        json_quote(f, json_str(message, "sender"));
        fputs(", \"recipients\": [", f);
        json_array_foreach (recipients, i, r) {
                const char *address = json_str(r, "address"), *orig = json_str(r, "origAddress");
                const char *delay = json_str(r, "delayReason"), *bounce = json_str(r, "bounceReason");

                fputs(i > 0 ? ", {\"orig_address\": " : "{\"orig_address\": ", f);
                json_quote(f, orig ? orig : address);
                fputs(", \"address\": ", f);
                json_quote(f, address);
                if (!isempty(delay)) {
                        fputs(", \"delay_reason\": ", f);
                        json_quote(f, delay);
                }
                if (!isempty(bounce)) {
                        fputs(", \"bounce_reason\": ", f);
                        json_quote(f, bounce);
                }
                fputc('}', f);
        }
        fputc(']', f);
        next = json_object_get(message, "nextAttemptTime");
        if (json_is_integer(next))
                fprintf(f, ", \"next_attempt_time\": %lld", (long long) json_integer_value(next));
        fputs("}\n", f);
        return 0;
}

/* format_duration - "3d4h", "2h5m", "4m12s", "9s" */
static void format_duration(int64_t sec, char *buf, size_t size)
{
        if (sec < 0)
                sec = 0;
        if (sec >= 86400)
                snprintf(buf, size, "%lldd%lldh", (long long) (sec / 86400),
                         (long long) (sec % 86400 / 3600));
        else if (sec >= 3600)
                snprintf(buf, size, "%lldh%lldm", (long long) (sec / 3600), (long long) (sec % 3600 / 60));
        else if (sec >= 60)
                snprintf(buf, size, "%lldm%llds", (long long) (sec / 60), (long long) (sec % 60));
        else
                snprintf(buf, size, "%llds", (long long) sec);
}

static int number_width(long long n)
{
        char buf[32];

        return snprintf(buf, sizeof(buf), "%lld", n);
}

void queue_summary_print(FILE *f, json_t *summary, time_t now)
{
        static const char *const headings[1 + QUEUE_SUMMARY_BUCKETS] = {
                "T", "5", "10", "20", "40", "80", "160", "320", "640", "1280", "1280+",
        };
        static const char *const queue_order[] = {"incoming", "active", "deferred", "hold", "corrupt"};
        json_t *dests = json_object_get(summary, "destinations"), *d, *queues, *v, *oldest;
        long long totals[1 + QUEUE_SUMMARY_BUCKETS] = {};
        int width[1 + QUEUE_SUMMARY_BUCKETS], domain_width = (int) strlen("TOTAL");
        const char *name;
        bool first = true;
        size_t i;

        /* qshape: recipients per destination, by age (minutes), and the total (T) */
        json_array_foreach (dests, i, d) {
                json_t *ages = json_object_get(d, "ages");

                totals[0] += json_int(d, "recipients");
                for (size_t b = 0; b < QUEUE_SUMMARY_BUCKETS; b++)
                        totals[1 + b] += (long long) json_integer_value(json_array_get(ages, b));
                domain_width = MAX(domain_width, (int) strlen(strempty(json_str(d, "domain"))));
        }
        for (size_t c = 0; c <= QUEUE_SUMMARY_BUCKETS; c++)
                width[c] = MAX((int) strlen(headings[c]), number_width(totals[c]));

        fprintf(f, "%*s", domain_width, "");
        for (size_t c = 0; c <= QUEUE_SUMMARY_BUCKETS; c++)
                fprintf(f, " %*s", width[c], headings[c]);
        fprintf(f, "\n%*s", domain_width, "TOTAL");
        for (size_t c = 0; c <= QUEUE_SUMMARY_BUCKETS; c++)
                fprintf(f, " %*lld", width[c], totals[c]);
        fputc('\n', f);
        json_array_foreach (dests, i, d) {
                _cleanup_(freep) char *domain = printable_dup(json_str(d, "domain"));
                json_t *ages = json_object_get(d, "ages");

                fprintf(f, "%*s %*lld", domain_width, domain ? domain : "?", width[0],
                        json_int(d, "recipients"));
                for (size_t b = 0; b < QUEUE_SUMMARY_BUCKETS; b++)
                        fprintf(f, " %*lld", width[1 + b],
                                (long long) json_integer_value(json_array_get(ages, b)));
                fputc('\n', f);
        }

        /* Messages per queue, in the order Postfix's queues are scanned, then any others */
        queues = json_object_get(summary, "queues");
        fputs("\nqueues:", f);
        for (size_t q = 0; q < ELEMENTSOF(queue_order); q++)
                if ((v = json_object_get(queues, queue_order[q])))
                        fprintf(f, " %s %lld", queue_order[q], (long long) json_integer_value(v));
        json_object_foreach (queues, name, v) {
                bool known = false;
                for (size_t q = 0; q < ELEMENTSOF(queue_order); q++)
                        known = known || streq(name, queue_order[q]);
                if (!known)
                        fprintf(f, " %s %lld", name, (long long) json_integer_value(v));
        }
        fputc('\n', f);
        oldest = json_object_get(summary, "oldestArrival");
        if (json_is_integer(oldest)) {
                char when[32], age[32];

                queue_format_time(json_integer_value(oldest), when);
                format_duration((int64_t) now - json_integer_value(oldest), age, sizeof(age));
                fprintf(f, "oldest: %s (%s ago)\n", when, age);
        }

        /* Per destination: messages, the oldest, the next retry, its state and last reason */
        json_array_foreach (dests, i, d) {
                _cleanup_(freep) char *domain = printable_dup(json_str(d, "domain"));
                _cleanup_(freep) char *reason = printable_dup(json_str(d, "reason"));
                json_t *next = json_object_get(d, "nextAttempt");
                char oldest_age[32], retry[40];

                if (first)
                        fprintf(f, "\n%-*s %8s %8s %-10s %-5s %s\n", domain_width, "DOMAIN", "MESSAGES",
                                "OLDEST", "NEXT RETRY", "STATE", "REASON");
                first = false;
                format_duration((int64_t) now - json_int(d, "oldest"), oldest_age, sizeof(oldest_age));
                if (!json_is_integer(next))
                        snprintf(retry, sizeof(retry), "-");
                else if (json_integer_value(next) <= now)
                        snprintf(retry, sizeof(retry), "now");
                else {
                        char in[32];
                        format_duration(json_integer_value(next) - (int64_t) now, in, sizeof(in));
                        snprintf(retry, sizeof(retry), "in %s", in);
                }
                fprintf(f, "%-*s %8lld %8s %-10s %-5s %s\n", domain_width, domain ? domain : "?",
                        json_int(d, "messages"), oldest_age, retry,
                        json_is_true(json_object_get(d, "dead")) ? "dead" : "ok", reason ? reason : "");
        }
}
