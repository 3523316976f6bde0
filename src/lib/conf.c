/* SPDX-License-Identifier: MIT */
/*
 * conf.c - main.cf reader: Postfix's parameter names, types and defaults, read with inih
 *
 * Format (man/tern.conf.5 is the reference):
 *      name = value            a parameter; the last definition of a name wins
 *          more value          a line that starts with white space continues the previous one;
 *                              the pieces are joined with one space, as Postfix does
 *      # comment               only at the start of a line (after optional white space)
 *      [program]               values that apply only when PROGRAM is that name (master.cf -o)
 *      [transport]             the transport(5) table: "domain = transport:nexthop"
 * Values are expanded ($name, ${name}, $(name), ${name?text}, ${name:text},
 * ${name?{text1}:{text2}}, $$) when the file is loaded, then checked against the parameter's
 * type; expansion in a [program] section sees that section's own values first.
 *
 * How inih is used: ini_parse_stream() with our own reader (line_reader) so that we see every
 * raw line. The reader counts lines, refuses lines that inih would silently cut (INI_MAX_LINE)
 * with -E2BIG, refuses bytes inih cannot carry (NUL, other control characters), checks the
 * line shapes that inih would accept but Postfix would not (`name: value`, text after a
 * `[section]`, a first line that starts with white space), and hides every ';' from inih
 * (CONF_MASK_SEMICOLON) so that inih's ';' comments and inline comments never apply: main.cf
 * has no ';' comments, as in Postfix. The handler puts the ';' back. inih hands continuation
 * lines over as separate calls with (a possibly truncated copy of) the previous name; the
 * reader tells the handler which lines are continuations, so the handler appends them to the
 * setting it made last and never trusts inih's copy of the name or of the section.
 *
 * Invariants: loading is all or nothing; every value in every section is expanded and checked
 * for every program (a broken value anywhere fails every program); ret_ outputs are written only
 * on success; this module never logs (warnings are collected for the caller).
 *
 * Limits: a physical line is at most INI_MAX_LINE - 2 bytes (198 with Debian's inih 55); a
 * joined or expanded value at most CONF_VALUE_MAX bytes; expansion nests at most
 * CONF_EXPAND_DEPTH_MAX levels; the file at most CONF_FILE_MAX bytes; times at most
 * CONF_TIME_MAX seconds; integers at most CONF_INT_MAX.
 *
 * Known bugs and differences from Postfix: ';' is an ordinary character (as in Postfix, unlike
 * INI files); a [transport] key cannot start with '[' (it would be a section header); settings
 * are looked up linearly, which is quadratic in the number of distinct names in one section (a
 * main.cf has about a hundred); mynetworks has a fixed default (no mynetworks_style); Postfix's
 * ${name==value?...} comparisons are not supported; myhostname and mydomain defaults come from
 * gethostname() at load time.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "config.h"
#include "macro.h"


/* main.cf is a few kilobytes; refuse to read anything that cannot be one into memory */
#define CONF_FILE_MAX (4u * 1024u * 1024u)
/* one joined (continued) or expanded value; longer lists do not belong in main.cf */
#define CONF_VALUE_MAX ((size_t)65536)
/* nested $name / ${...} levels: Postfix's "unreasonable macro call nesting" guard */
#define CONF_EXPAND_DEPTH_MAX 100
/* Postfix keeps times and integers in an int; consumers multiply times into usec_t */
#define CONF_TIME_MAX ((int64_t)INT32_MAX)
#define CONF_INT_MAX ((int64_t)INT32_MAX)
#define CONF_SIZE_MAX ((uint64_t)INT64_MAX)
/* stands in for ';' between our reader and our handler; control bytes never reach inih */
#define CONF_MASK_SEMICOLON '\x01'
/* how much of a bad value an error message quotes */
#define CONF_QUOTE_MAX 64

/* programs whose [section] is expected; others are a warning */
static const char *const known_sections[] = {
        "ctl",   "discard", "error",    "flush", "lmtp",  "qmgr",   "relay",
        "retry", "scache",  "sendmail", "smtp",  "smtpd", "submit",
};

#define R_ALL "flush qmgr scache smtp smtpd submit discard error ctl sendmail"
#define R_DAEMONS "flush qmgr scache smtp smtpd submit discard error"

#define P_STR(n, d, r, s)                                                                                   \
        {                                                                                                   \
                .name = n, .type = CONF_STRING, .default_value = d, .readers = r, .summary = s              \
        }
#define P_LIST(n, d, r, s)                                                                                  \
        {                                                                                                   \
                .name = n, .type = CONF_LIST, .default_value = d, .readers = r, .summary = s                \
        }
#define P_BOOL(n, d, r, s)                                                                                  \
        {                                                                                                   \
                .name = n, .type = CONF_BOOL, .default_value = d, .readers = r, .summary = s                \
        }
#define P_INT(n, d, lo, hi, r, s)                                                                           \
        {                                                                                                   \
                .name = n, .type = CONF_INT, .default_value = d, .min = lo, .max = hi, .readers = r,        \
                .summary = s                                                                                \
        }
#define P_SIZE(n, d, lo, hi, r, s)                                                                          \
        {                                                                                                   \
                .name = n, .type = CONF_SIZE, .default_value = d, .min = lo, .max = hi, .readers = r,       \
                .summary = s                                                                                \
        }
#define P_TIME(n, d, u, lo, hi, r, s)                                                                       \
        {                                                                                                   \
                .name = n, .type = CONF_TIME, .default_value = d, .default_unit = u, .min = lo, .max = hi,  \
                .readers = r, .summary = s                                                                  \
        }

/*
 * The table, sorted by name (bsearch; a unit test checks the order). max 0 means the type's own
 * limit. tools/gen-conf-doc.py reads the lines between the markers to write conf/main.cf and the
 * parameter part of man/tern.conf.5: keep one P_*() entry per item, string literals only.
 */
static const ConfParam params[] = {
        /* conf-table-begin */
        P_STR("2bounce_notice_recipient", "postmaster", "qmgr",
              "Recipient of undeliverable mail that cannot be returned to the sender (double bounces)"),
        P_BOOL("allow_min_user", "no", "qmgr smtpd submit sendmail",
               "Allow a sender or recipient address to begin with '-'"),
        P_BOOL("allow_percent_hack", "yes", "smtpd",
               "Treat user%domain in a local address as user@domain (relay control follows it)"),
        P_LIST("authorized_flush_users", "static:anyone", "flush ctl sendmail",
               "Users who may flush the queue (sendmail -q, -qR, -qI; ternctl flush)"),
        P_LIST("authorized_mailq_users", "static:anyone", "qmgr ctl sendmail",
               "Users who may list the queue (mailq, ternctl queue list)"),
        P_LIST("authorized_submit_users", "static:anyone", "submit sendmail",
               "Users who may submit mail with tern-sendmail or io.tern.Submit"),
        P_BOOL("backwards_bounce_logfile_compatibility", "yes", "qmgr smtp discard error",
               "Write the old \"<recipient>: reason\" line in defer/ and bounce/ logs too"),
        P_STR("bounce_notice_recipient", "postmaster", "qmgr",
              "Recipient of postmaster notices about bounced mail (notify_classes bounce)"),
        P_TIME("bounce_queue_lifetime", "5d", 'd', 0, 0, "qmgr",
               "How long a bounce message (null sender) stays queued before it is given up"),
        P_INT("bounce_size_limit", "50000", 1, 0, "qmgr",
              "Largest amount of the original message returned in a non-delivery notification, bytes"),
        P_TIME("connection_cache_protocol_timeout", "5s", 's', 1, 0, "scache smtp",
               "Time limit for a request to tern-scache"),
        P_TIME("connection_cache_status_update_time", "600s", 's', 1, 0, "scache",
               "How often tern-scache logs its statistics"),
        P_TIME("connection_cache_ttl_limit", "2s", 's', 1, 0, "scache",
               "Longest time a connection may stay in tern-scache"),
        P_TIME("daemon_timeout", "18000s", 's', 1, 0, R_DAEMONS,
               "How long a daemon may take for one request before its watchdog ends it"),
        P_INT("default_destination_concurrency_failed_cohort_limit", "1", 0, 0, "qmgr",
              "Failed connection cohorts after which a destination is marked dead (0: never)"),
        P_INT("default_destination_concurrency_limit", "20", 0, 0, "qmgr",
              "Default parallel deliveries to one destination (0: no limit)"),
        P_STR("default_destination_concurrency_negative_feedback", "1", "qmgr",
              "Concurrency decrement after a failed delivery: x, x/y or x/concurrency, 0..1"),
        P_STR("default_destination_concurrency_positive_feedback", "1", "qmgr",
              "Concurrency increment after a good delivery: x, x/y or x/concurrency, 0..1"),
        P_TIME("default_destination_rate_delay", "0s", 's', 0, 0, "qmgr",
               "Default pause between deliveries to one destination (0: none)"),
        P_INT("default_destination_recipient_limit", "50", 0, 0, "qmgr",
              "Default recipients per delivery request (0: no limit)"),
        P_INT("default_process_limit", "100", 1, 0, "smtpd",
              "Most simultaneous SMTP sessions tern-smtpd serves (Postfix: smtpd processes)"),
        P_STR("default_transport", "smtp", "qmgr",
              "Transport for destinations that are neither local nor relay_domains"),
        P_TIME("default_transport_rate_delay", "0s", 's', 0, 0, "qmgr",
               "Default pause between deliveries through one transport (0: none)"),
        P_LIST("defer_transports", "", "qmgr",
               "Transports whose mail is deferred until a flush (ternctl qmgr trigger flushDead)"),
        P_STR("delay_notice_recipient", "postmaster", "qmgr",
              "Recipient of postmaster notices about delayed mail (notify_classes delay)"),
        P_TIME("delay_warning_time", "0h", 'h', 0, 0, "qmgr",
               "When to tell the sender that mail is delayed (0: never)"),
        P_BOOL("destination_concurrency_feedback_debug", "no", "qmgr",
               "Log every change of a destination's concurrency"),
        P_BOOL("disable_vrfy_command", "no", "smtpd", "Refuse the SMTP VRFY command"),
        P_STR("double_bounce_sender", "double-bounce", "qmgr submit smtpd",
              "Sender address of postmaster notices; mail to it that bounces is discarded"),
        P_STR("error_notice_recipient", "postmaster", "qmgr smtpd",
              "Recipient of postmaster notices about software and resource errors"),
        P_LIST("fast_flush_domains", "$relay_domains", "flush qmgr smtp smtpd discard error ctl sendmail",
               "Destinations that get a fast flush logfile (empty: fast flush off)"),
        P_BOOL("fast_flush_fallback", "yes", "flush smtpd ctl sendmail",
               "Flush the whole queue when a site is not eligible for fast flush (tern)"),
        P_TIME("fast_flush_purge_time", "7d", 'd', 1, 0, "flush",
               "Age after which an empty fast flush logfile is deleted"),
        P_TIME("fast_flush_refresh_time", "12h", 'h', 1, 0, "flush",
               "Age after which a non-empty, unread fast flush logfile is flushed"),
        P_INT("hash_queue_depth", "1", 1, 16, "qmgr flush submit smtpd ctl sendmail",
              "Levels of subdirectories below the queues in hash_queue_names"),
        P_LIST("hash_queue_names", "deferred, defer", "qmgr flush submit smtpd ctl sendmail",
               "Queue directories that are split into subdirectories"),
        P_INT("header_size_limit", "102400", 1, 0, "submit smtpd qmgr", "Largest message header, bytes"),
        P_INT("hopcount_limit", "50", 1, 0, "submit smtpd",
              "Most Received: headers a message may have before it bounces"),
        P_LIST("inet_interfaces", "all", "smtpd smtp", "Network addresses tern-smtpd listens on"),
        P_LIST("inet_protocols", "all", "smtpd smtp", "Internet protocols to use: all, ipv4, ipv6"),
        P_INT("initial_destination_concurrency", "5", 1, 0, "qmgr",
              "Parallel deliveries to a destination when it is first tried"),
        P_TIME("ipc_timeout", "3600s", 's', 1, 0, R_DAEMONS " ctl",
               "Time limit for one exchange with another tern program"),
        P_INT("line_length_limit", "2048", 1, 0, "smtpd submit",
              "Longest line of a received message kept in one piece, bytes"),
        P_LIST("local_header_rewrite_clients", "permit_inet_interfaces", "smtpd",
               "SMTP clients whose mail gets missing Message-Id:, Date: and From: headers: "
               "permit_inet_interfaces, permit_mynetworks, static:all"),
        P_STR("local_transport", "local:$myhostname", "qmgr",
              "Transport for mydestination; tern ships no local delivery agent"),
        P_STR("mail_name", "tern", "smtpd submit qmgr",
              "The mail system's name in the SMTP greeting and in notices"),
        P_STR("mail_owner", "tern", R_ALL, "The user that owns the queue and runs the daemons"),
        P_TIME("max_idle", "100s", 's', 1, 0, R_DAEMONS,
               "How long an idle daemon waits for a client before it exits"),
        P_INT("max_use", "100", 1, 0, R_DAEMONS, "Requests a daemon serves before it exits"),
        P_TIME("maximal_backoff_time", "4000s", 's', 1, 0, "qmgr",
               "Longest time between delivery attempts of deferred mail"),
        P_TIME("maximal_queue_lifetime", "5d", 'd', 0, 0, "qmgr",
               "How long mail stays queued before it is returned as undeliverable"),
        P_SIZE("message_size_limit", "10240000", 0, 0, "submit smtpd smtp sendmail",
               "Largest message, bytes (0: no limit)"),
        P_TIME("minimal_backoff_time", "300s", 's', 1, 0, "qmgr",
               "Shortest time between delivery attempts; also how long a destination stays dead"),
        P_LIST("mydestination", "$myhostname, localhost.$mydomain, localhost", "qmgr smtpd submit",
               "Domains this host delivers locally"),
        P_STR("mydomain", "", "qmgr smtpd submit smtp",
              "Internet domain of this host (default: myhostname less its first label, or localdomain)"),
        P_STR("myhostname", "", "qmgr smtpd submit smtp",
              "Fully-qualified host name (default: the system's host name, .localdomain added)"),
        P_LIST("mynetworks", "127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128", "smtpd",
               "Trusted client networks that may relay"),
        P_STR("myorigin", "$myhostname", "submit smtpd qmgr sendmail",
              "Domain that locally submitted mail appears to come from"),
        P_LIST("notify_classes", "resource, software", "qmgr smtpd",
               "Problems reported to the postmaster: bounce, 2bounce, delay, policy, protocol, resource, "
               "software"),
        P_LIST("parent_domain_matches_subdomains",
               "debug_peer_list,fast_flush_domains,mynetworks,permit_mx_backup_networks,"
               "qmqpd_authorized_clients,relay_domains,smtpd_access_maps",
               "flush qmgr smtpd ctl sendmail", "Parameters where domain.tld also matches its subdomains"),
        P_TIME("qmgr_clog_warn_time", "300s", 's', 0, 0, "qmgr",
               "Least time between warnings that one destination clogs the active queue (0: never)"),
        P_TIME("qmgr_daemon_timeout", "1000s", 's', 1, 0, "qmgr",
               "tern-qmgr's watchdog: longest time for one step"),
        P_INT("qmgr_fudge_factor", "100", 10, 100, "qmgr",
              "Percent of delivery resources one large mailing may take"),
        P_TIME("qmgr_ipc_timeout", "60s", 's', 1, 0, "qmgr",
               "tern-qmgr's time limit for one exchange with another program"),
        P_INT("qmgr_message_active_limit", "20000", 1, 0, "qmgr", "Most messages in the active queue"),
        P_INT("qmgr_message_recipient_limit", "20000", 1, 0, "qmgr", "Most recipients held in memory"),
        P_INT("qmgr_message_recipient_minimum", "10", 1, 0, "qmgr",
              "Least recipients read from a message at a time"),
        P_STR("queue_directory", "/var/spool/tern", R_ALL,
              "The queue: incoming, active, deferred, hold, corrupt, defer, bounce, flush"),
        P_TIME("queue_run_delay", "300s", 's', 1, 0, "qmgr", "Time between scans of the deferred queue"),
        P_LIST("relay_domains", "", "qmgr smtpd flush",
               "Domains this host relays mail to (backup MX, ETRN customers)"),
        P_STR("relay_transport", "relay", "qmgr", "Transport for relay_domains"),
        P_STR("relayhost", "", "qmgr",
              "Next hop for non-local mail: host, [host], [host]:port (empty: direct delivery)"),
        P_STR("runtime_directory", "/run/tern", R_ALL, "Where the daemons' sockets are (tern)"),
        P_STR("smtp_address_preference", "any", "smtp",
              "Which address family to try first for a host with both: any (random), ipv4, ipv6"),
        P_STR("smtp_bind_address", "", "smtp", "Local IPv4 address for outgoing SMTP connections"),
        P_STR("smtp_bind_address6", "", "smtp", "Local IPv6 address for outgoing SMTP connections"),
        P_TIME("smtp_connect_timeout", "30s", 's', 0, 0, "smtp",
               "Time limit for making an SMTP connection (0: the system's)"),
        P_LIST("smtp_connection_cache_destinations", "", "smtp",
               "Destinations whose SMTP connections are always cached"),
        P_BOOL("smtp_connection_cache_on_demand", "yes", "smtp",
               "Cache connections to destinations that have a backlog"),
        P_TIME("smtp_connection_cache_time_limit", "2s", 's', 1, 0, "smtp",
               "How long an unused SMTP connection stays cached"),
        P_INT("smtp_connection_reuse_count_limit", "0", 0, 0, "smtp",
              "Most reuses of one SMTP connection (0: no limit)"),
        P_TIME("smtp_connection_reuse_time_limit", "300s", 's', 1, 0, "smtp",
               "How long one SMTP connection may be reused"),
        P_TIME("smtp_data_done_timeout", "600s", 's', 1, 0, "smtp",
               "Time limit for the reply to the final \".\""),
        P_TIME("smtp_data_init_timeout", "120s", 's', 1, 0, "smtp", "Time limit for the reply to DATA"),
        P_TIME("smtp_data_xfer_timeout", "180s", 's', 1, 0, "smtp",
               "Time limit for sending each part of the message"),
        P_BOOL("smtp_defer_if_no_mx_address_found", "no", "smtp",
               "Defer, instead of bounce, mail whose MX hosts have no address"),
        P_STR("smtp_helo_name", "$myhostname", "smtp", "Host name sent in EHLO or HELO"),
        P_TIME("smtp_helo_timeout", "300s", 's', 1, 0, "smtp",
               "Time limit for the greeting and the reply to EHLO or HELO"),
        P_TIME("smtp_mail_timeout", "300s", 's', 1, 0, "smtp", "Time limit for the reply to MAIL FROM"),
        P_INT("smtp_mx_address_limit", "5", 0, 0, "smtp",
              "Most addresses tried for one delivery (0: no limit)"),
        P_INT("smtp_mx_session_limit", "2", 0, 0, "smtp",
              "Most SMTP sessions tried for one delivery (0: no limit)"),
        P_TIME("smtp_quit_timeout", "300s", 's', 1, 0, "smtp", "Time limit for the reply to QUIT"),
        P_TIME("smtp_rcpt_timeout", "300s", 's', 1, 0, "smtp", "Time limit for the reply to RCPT TO"),
        P_TIME("smtp_rset_timeout", "20s", 's', 1, 0, "smtp",
               "Time limit for the reply to RSET (probe of a cached connection)"),
        P_BOOL("smtp_skip_5xx_greeting", "yes", "smtp",
               "Treat a 5XX greeting as a temporary failure and try the next server"),
        P_STR("smtpd_banner", "$myhostname ESMTP $mail_name", "smtpd",
              "Text after the 220 code of the SMTP greeting"),
        P_INT("smtpd_client_connection_count_limit", "50", 0, 0, "smtpd",
              "Most simultaneous connections from one client (0: no limit)"),
        P_LIST("smtpd_client_event_limit_exceptions", "$mynetworks", "smtpd",
               "Clients exempt from smtpd_client_connection_count_limit"),
        P_LIST("smtpd_client_restrictions", "", "smtpd", "Restrictions applied when a client connects"),
        P_BOOL("smtpd_delay_reject", "yes", "smtpd",
               "Apply client and HELO restrictions at RCPT TO (and ETRN)"),
        P_LIST("smtpd_discard_ehlo_keywords", "", "smtpd",
               "EHLO keywords not announced (e.g. etrn, pipelining)"),
        P_TIME("smtpd_error_sleep_time", "1s", 's', 0, 0, "smtpd",
               "Pause before an error reply once the soft error limit is reached"),
        P_LIST("smtpd_etrn_restrictions", "", "smtpd", "Restrictions on the ETRN command (empty: permit)"),
        P_STR("smtpd_forbid_bare_newline", "normalize", "smtpd",
              "Bare LF in SMTP input: normalize, yes (as normalize), reject or no"),
        P_LIST("smtpd_forbid_bare_newline_exclusions", "$mynetworks", "smtpd",
               "Clients exempt from smtpd_forbid_bare_newline"),
        P_INT("smtpd_hard_error_limit", "20", 1, 0, "smtpd", "Errors after which a client is disconnected"),
        P_BOOL("smtpd_helo_required", "no", "smtpd", "Require EHLO or HELO before MAIL FROM and ETRN"),
        P_LIST("smtpd_helo_restrictions", "", "smtpd", "Restrictions applied at EHLO or HELO"),
        P_INT("smtpd_junk_command_limit", "100", 1, 0, "smtpd",
              "Most NOOP, VRFY, ETRN and RSET commands in one session"),
        P_LIST("smtpd_listen", "", "smtpd",
               "Addresses host:port tern-smtpd binds when run by hand (empty: inet_interfaces, port 25) "
               "(tern)"),
        P_BOOL("smtpd_peername_lookup", "yes", "smtpd", "Look up the client's host name in the DNS"),
        P_INT("smtpd_recipient_limit", "1000", 1, 0, "smtpd submit",
              "Most recipients of one message (SMTP, and local submission)"),
        P_INT("smtpd_recipient_overshoot_limit", "1000", 0, 0, "smtpd",
              "Recipients past smtpd_recipient_limit that are refused without counting as errors"),
        P_LIST("smtpd_recipient_restrictions", "", "smtpd",
               "Restrictions applied at RCPT TO, after smtpd_relay_restrictions"),
        P_LIST("smtpd_relay_restrictions",
               "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination", "smtpd",
               "Relay control at RCPT TO"),
        P_LIST("smtpd_sender_restrictions", "", "smtpd", "Restrictions applied at MAIL FROM"),
        P_INT("smtpd_soft_error_limit", "10", 1, 0, "smtpd",
              "Errors after which each error reply is delayed by smtpd_error_sleep_time"),
        P_TIME("smtpd_timeout", "300s", 's', 1, 0, "smtpd",
               "Time limit for a client to send a command or data"),
        P_BOOL("strict_rfc821_envelopes", "no", "smtpd",
               "Require <> around MAIL FROM and RCPT TO addresses"),
        P_STR("syslog_facility", "mail", R_ALL, "Syslog facility of the log records"),
        P_STR("syslog_name", "tern", R_ALL, "Prefix of the log identifier: tern/qmgr"),
        P_TIME("transport_retry_time", "60s", 's', 1, 0, "qmgr",
               "How long a transport whose delivery agent cannot be reached stays dead"),
        /* conf-table-end */
};

#define N_PARAMS ELEMENTSOF(params)

/*
 * <transport>_<suffix> parameters (Postfix's per-transport overrides, which depend on
 * master.cf service names). Not set: the caller uses default_name's value.
 */
typedef struct TransportSuffix {
        const char *suffix;
        ConfType type;
        int64_t min, max;
        const char *default_name;
} TransportSuffix;

static const TransportSuffix transport_suffixes[] = {
        {"destination_concurrency_limit", CONF_INT, 0, 0, "default_destination_concurrency_limit"},
        {"destination_recipient_limit", CONF_INT, 0, 0, "default_destination_recipient_limit"},
        {"initial_destination_concurrency", CONF_INT, 1, 0, "initial_destination_concurrency"},
        {"destination_concurrency_positive_feedback", CONF_STRING, 0, 0,
         "default_destination_concurrency_positive_feedback"},
        {"destination_concurrency_negative_feedback", CONF_STRING, 0, 0,
         "default_destination_concurrency_negative_feedback"},
        {"destination_concurrency_failed_cohort_limit", CONF_INT, 0, 0,
         "default_destination_concurrency_failed_cohort_limit"},
        {"destination_rate_delay", CONF_TIME, 0, 0, "default_destination_rate_delay"},
        {"transport_rate_delay", CONF_TIME, 0, 0, "default_transport_rate_delay"},
};

/* ---- small helpers ---- */

typedef struct Buf {
        char *p;
        size_t n, cap;
} Buf;

/* buf_add - append N bytes; -E2BIG past CONF_VALUE_MAX */
static int buf_add(Buf *b, const char *s, size_t n)
{
        if (n > CONF_VALUE_MAX || b->n > CONF_VALUE_MAX - n)
                return -E2BIG;
        if (b->n + n + 1 > b->cap) {
                size_t cap = MAX(MAX(b->cap * 2, b->n + n + 1), (size_t)64);
                char *p = realloc(b->p, cap);
                if (!p)
                        return -ENOMEM;
                b->p = p;
                b->cap = cap;
        }
        memcpy(b->p + b->n, s, n);
        b->n += n;
        b->p[b->n] = 0;
        return 0;
}

/* buf_steal - hand the text over (an empty string when nothing was added) */
static char *buf_steal(Buf *b)
{
        if (!b->p)
                return strdup("");
        b->n = b->cap = 0;
        return TAKE_PTR(b->p);
}

/* grow - make room for NEED elements in *P (array of SIZE-byte elements, *ALLOCATED of them) */
static int grow(void *p, size_t *allocated, size_t need, size_t size)
{
        void **pp = p;
        size_t n;
        void *q;

        if (need <= *allocated)
                return 0;
        n = MAX(need, *allocated * 2);
        n = MAX(n, (size_t)8);
        if (n > SIZE_MAX / size)
                return -ENOMEM;
        q = realloc(*pp, n * size);
        if (!q)
                return -ENOMEM;
        *pp = q;
        *allocated = n;
        return 0;
}

/* quote - a bounded, printable copy of S for an error message, or NULL */
static char *quote(const char *s)
{
        size_t n = strlen(s);
        char *q;

        if (n <= CONF_QUOTE_MAX)
                return strdup(s);
        if (asprintf(&q, "%.*s...", CONF_QUOTE_MAX, s) < 0)
                return NULL;
        return q;
}

/* strv_free - free a NULL-terminated vector of N strings (N may be smaller than the vector) */
static void strv_free_n(char **v, size_t n)
{
        if (!v)
                return;
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

/* panic - a caller asked for something that cannot exist: a bug, not a configuration problem */
_noreturn_ static void panic(const char *what, const char *name)
{
        fprintf(stderr, "conf: BUG: %s: %s\n", what, strna(name));
        abort();
}

/* is_name_char - Postfix parameter name characters ($name ends at anything else) */
static bool is_name_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* param_index_n - index of the LEN-byte name in params[], or -1 */
static ssize_t param_index_n(const char *name, size_t len)
{
        size_t lo = 0, hi = N_PARAMS;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                const char *p = params[mid].name;
                int d = strncmp(p, name, len);

                if (d == 0)
                        d = p[len] ? 1 : 0;
                if (d == 0)
                        return (ssize_t)mid;
                if (d < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return -1;
}

/* transport_suffix_match - the suffix if NAME is "<word>_<suffix>", word [A-Za-z0-9_-]+ */
static const TransportSuffix *transport_suffix_match(const char *name, size_t len, size_t *ret_word_len)
{
        for (size_t i = 0; i < ELEMENTSOF(transport_suffixes); i++) {
                const char *suffix = transport_suffixes[i].suffix;
                size_t sl = strlen(suffix), wl;

                if (len < sl + 2 || name[len - sl - 1] != '_' || memcmp(name + len - sl, suffix, sl) != 0)
                        continue;
                wl = len - sl - 1;
                for (size_t k = 0; k < wl; k++)
                        if (!is_name_char(name[k]) && name[k] != '-')
                                return NULL;
                if (ret_word_len)
                        *ret_word_len = wl;
                return &transport_suffixes[i];
        }
        return NULL;
}

/* conf_params - the table, sorted by name */
const ConfParam *conf_params(size_t *ret_n)
{
        if (ret_n)
                *ret_n = N_PARAMS;
        return params;
}

/* conf_param_find - the table entry of NAME, or NULL */
const ConfParam *conf_param_find(const char *name)
{
        ssize_t i;

        if (!name)
                return NULL;
        i = param_index_n(name, strlen(name));
        return i < 0 ? NULL : &params[i];
}

/* ---- pure value parsers ---- */

/* parse_digits - decimal digits only into *RET; -EINVAL for no digits or junk, -ERANGE past MAX */
static int parse_digits(const char *s, const char **ret_end, uint64_t max, uint64_t *ret)
{
        uint64_t v = 0;
        bool over = false;
        const char *p = s;

        if (!isdigit((unsigned char)*p))
                return -EINVAL;
        for (; isdigit((unsigned char)*p); p++) {
                unsigned d = (unsigned)(*p - '0');
                if (v > (max - d) / 10)
                        over = true;
                else
                        v = v * 10 + d;
        }
        *ret_end = p;
        if (over)
                return -ERANGE;
        *ret = v;
        return 0;
}

/* time_unit - seconds per unit letter (lower case only, as Postfix), 0 if none */
static int64_t time_unit(char u)
{
        switch (u) {
        case 's':
                return 1;
        case 'm':
                return 60;
        case 'h':
                return 3600;
        case 'd':
                return 86400;
        case 'w':
                return 7 * 86400;
        default:
                return 0;
        }
}

/* conf_parse_time - digits and one optional lower-case unit s m h d w; at most CONF_TIME_MAX seconds */
int conf_parse_time(const char *s, char default_unit, int64_t *ret)
{
        const char *end;
        uint64_t v;
        int64_t mult;
        char unit;
        int r;

        if (!s || !ret || time_unit(default_unit) == 0)
                return -EINVAL;
        if (s[0] == '-' && isdigit((unsigned char)s[1]))
                return -ERANGE;
        r = parse_digits(s, &end, UINT64_MAX, &v);
        if (r == -ERANGE) {
                /* all digits, too many of them: still check that the rest is a unit */
                end = s + strspn(s, "0123456789");
                if (*end && (time_unit(*end) == 0 || end[1]))
                        return -EINVAL;
                return -ERANGE;
        }
        if (r < 0)
                return r;
        unit = *end ? *end : default_unit;
        if (*end && end[1])
                return -EINVAL;
        mult = time_unit(unit);
        if (mult == 0)
                return -EINVAL;
        if (v > (uint64_t)(CONF_TIME_MAX / mult))
                return -ERANGE;
        *ret = (int64_t)v * mult;
        return 0;
}

/* conf_parse_size - digits and an optional k/K m/M g/G (binary); at most CONF_SIZE_MAX */
int conf_parse_size(const char *s, uint64_t *ret)
{
        const char *end;
        uint64_t v, mult = 1;
        int r;

        if (!s || !ret)
                return -EINVAL;
        if (s[0] == '-' && isdigit((unsigned char)s[1]))
                return -ERANGE;
        r = parse_digits(s, &end, UINT64_MAX, &v);
        if (r == -ERANGE) {
                end = s + strspn(s, "0123456789");
                if (*end && (!strchr("kKmMgG", *end) || end[1]))
                        return -EINVAL;
                return -ERANGE;
        }
        if (r < 0)
                return r;
        if (*end) {
                if (end[1])
                        return -EINVAL;
                switch (*end) {
                case 'k':
                case 'K':
                        mult = UINT64_C(1) << 10;
                        break;
                case 'm':
                case 'M':
                        mult = UINT64_C(1) << 20;
                        break;
                case 'g':
                case 'G':
                        mult = UINT64_C(1) << 30;
                        break;
                default:
                        return -EINVAL;
                }
        }
        if (v > CONF_SIZE_MAX / mult)
                return -ERANGE;
        *ret = v * mult;
        return 0;
}

/* conf_parse_bool - yes/no, true/false, on/off, 1/0, any case */
int conf_parse_bool(const char *s, bool *ret)
{
        static const char *const yes[] = {"yes", "true", "on", "1"};
        static const char *const no[] = {"no", "false", "off", "0"};

        if (!s || !ret)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

/* parse_int - optional '-', decimal digits; -ERANGE past int64 */
static int parse_int(const char *s, int64_t *ret)
{
        bool neg = s[0] == '-';
        const char *end;
        uint64_t v;
        int r;

        r = parse_digits(s + neg, &end, neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, &v);
        if (r == -ERANGE)
                return *(s + neg + strspn(s + neg, "0123456789")) ? -EINVAL : -ERANGE;
        if (r < 0)
                return r;
        if (*end)
                return -EINVAL;
        *ret = neg ? (int64_t)(0 - v) : (int64_t)v;
        return 0;
}

/* feedback_ok - Postfix's concurrency feedback: "x", "x/y" (y >= 1) or "x/concurrency", in 0..1 */
static bool feedback_ok(const char *s)
{
        char *end;
        double x, y = 1;

        if (!isdigit((unsigned char)*s) && *s != '.')
                return false;
        x = strtod(s, &end);
        s = end + strspn(end, " \t");
        if (*s == '/') {
                s += 1 + strspn(s + 1, " \t");
                if (strneq(s, "concurrency", strlen("concurrency"))) {
                        s += strlen("concurrency");
                } else {
                        if (!isdigit((unsigned char)*s) && *s != '.')
                                return false;
                        y = strtod(s, &end);
                        s = end;
                        if (!(y >= 1))
                                return false;
                }
                s += strspn(s, " \t");
        }
        if (*s)
                return false;
        return x / y >= 0 && x / y <= 1;
}

/* ---- the loader ---- */

typedef struct Setting {
        char *name;    /* parameter name, or [transport] pattern (lower case) */
        char *raw;     /* joined continuation lines, ';' restored */
        unsigned line; /* line of the "name = value" line */
} Setting;

typedef struct Section {
        char *name; /* NULL: the global part before any section */
        Setting *settings;
        size_t n_settings, allocated;
} Section;

typedef struct Load {
        const char *filename;
        const char *text;
        size_t len, pos;

        unsigned lineno;
        bool have_prev;      /* a "name = value" line since the last section header */
        bool continuation;   /* the line inih is handling continues the previous setting */
        bool in_transport;   /* current section is [transport] */
        size_t cur;          /* current section (index into sections) */
        size_t last_section; /* the setting continuation lines append to */
        size_t last_index;
        bool last_transport;

        Section *sections;
        size_t n_sections, allocated_sections;
        Setting *transport;
        size_t n_transport, allocated_transport;

        char **warnings;
        size_t n_warnings, allocated_warnings;

        char *hostname; /* gethostname(), computed once */

        int r;
        char *error;
} Load;

/* setting_done - free a setting's strings */
static void setting_done(Setting *s)
{
        free(s->name);
        free(s->raw);
}

/* load_done - free everything a Load owns */
static void load_done(Load *l)
{
        for (size_t i = 0; i < l->n_sections; i++) {
                for (size_t k = 0; k < l->sections[i].n_settings; k++)
                        setting_done(&l->sections[i].settings[k]);
                free(l->sections[i].settings);
                free(l->sections[i].name);
        }
        free(l->sections);
        for (size_t i = 0; i < l->n_transport; i++)
                setting_done(&l->transport[i]);
        free(l->transport);
        strv_free_n(l->warnings, l->n_warnings);
        free(l->hostname);
        free(l->error);
}

/* fail - record the first error as "FILE:LINE: text" (LINE 0: "FILE: text"); returns R */
_printf_(4, 5) static int fail(Load *l, int r, unsigned line, const char *fmt, ...)
{
        _cleanup_(freep) char *msg = NULL;
        va_list ap;
        int k;

        if (l->r < 0)
                return l->r;
        l->r = r;
        va_start(ap, fmt);
        k = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (k < 0) {
                msg = NULL;
                l->r = -ENOMEM;
                return -ENOMEM;
        }
        if (line > 0)
                k = asprintf(&l->error, "%s:%u: %s", l->filename, line, msg);
        else
                k = asprintf(&l->error, "%s: %s", l->filename, msg);
        if (k < 0) {
                l->error = NULL;
                l->r = -ENOMEM;
                return -ENOMEM;
        }
        return r;
}

/* warn - add "FILE:LINE: text" to the warnings unless the same text is there already */
_printf_(3, 4) static int warn(Load *l, unsigned line, const char *fmt, ...)
{
        _cleanup_(freep) char *msg = NULL;
        char *w;
        va_list ap;
        int k;

        va_start(ap, fmt);
        k = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (k < 0)
                return fail(l, -ENOMEM, 0, "out of memory");
        if ((line > 0 ? asprintf(&w, "%s:%u: %s", l->filename, line, msg)
                      : asprintf(&w, "%s: %s", l->filename, msg)) < 0)
                return fail(l, -ENOMEM, 0, "out of memory");
        for (size_t i = 0; i < l->n_warnings; i++)
                if (streq(l->warnings[i], w)) {
                        free(w);
                        return 0;
                }
        if (grow(&l->warnings, &l->allocated_warnings, l->n_warnings + 1, sizeof(char *)) < 0) {
                free(w);
                return fail(l, -ENOMEM, 0, "out of memory");
        }
        l->warnings[l->n_warnings++] = w;
        return 0;
}

/* warning_line - the LINE of a "FILE:LINE: text" warning (0 for "FILE: text") */
static unsigned long warning_line(const Load *l, const char *w)
{
        const char *p = w + strlen(l->filename);

        return p[0] == ':' && isdigit((unsigned char)p[1]) ? strtoul(p + 1, NULL, 10) : 0;
}

/* warnings_sort - file order: parse warnings and expansion warnings interleaved by line (stable) */
static void warnings_sort(Load *l)
{
        for (size_t i = 1; i < l->n_warnings; i++) {
                char *w = l->warnings[i];
                unsigned long line = warning_line(l, w);
                size_t k = i;

                for (; k > 0 && warning_line(l, l->warnings[k - 1]) > line; k--)
                        l->warnings[k] = l->warnings[k - 1];
                l->warnings[k] = w;
        }
}

/* section_find_or_add - index of section NAME (NULL: global), created when new */
static int section_find_or_add(Load *l, const char *name, size_t *ret)
{
        char *copy = NULL;

        for (size_t i = 0; i < l->n_sections; i++) {
                const char *n = l->sections[i].name;
                if ((!n && !name) || (n && name && streq(n, name))) {
                        *ret = i;
                        return 0;
                }
        }
        if (name) {
                copy = strdup(name);
                if (!copy)
                        return -ENOMEM;
        }
        if (grow(&l->sections, &l->allocated_sections, l->n_sections + 1, sizeof(Section)) < 0) {
                free(copy);
                return -ENOMEM;
        }
        l->sections[l->n_sections] = (Section){.name = copy};
        *ret = l->n_sections++;
        return 0;
}

/* is_known_section - a program name tern ships, or "transport" */
static bool is_known_section(const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(known_sections); i++)
                if (streq(known_sections[i], name))
                        return true;
        return false;
}

/* reader_section - a "[name]" line: check its shape, switch the current section */
static int reader_section(Load *l, const char *s, size_t n)
{
        _cleanup_(freep) char *name = NULL;
        const char *close = memchr(s, ']', n);
        size_t k;
        int r;

        if (!close)
                return fail(l, -EINVAL, l->lineno, "missing \"]\" in section header");
        for (const char *p = close + 1; p < s + n; p++)
                if (*p != ' ' && *p != '\t')
                        return fail(l, -EINVAL, l->lineno, "text after section header");
        k = (size_t)(close - s - 1);
        if (k == 0)
                return fail(l, -EINVAL, l->lineno, "empty section name");
        for (size_t i = 1; i <= k; i++)
                if (!is_name_char(s[i]) && s[i] != '-' && s[i] != '.')
                        return fail(l, -EINVAL, l->lineno, "invalid section name \"[%.*s]\"",
                                    (int)MIN(k, (size_t)CONF_QUOTE_MAX), s + 1);
        name = strndup(s + 1, k);
        if (!name)
                return fail(l, -ENOMEM, 0, "out of memory");

        l->have_prev = false;
        l->in_transport = streq(name, "transport");
        if (l->in_transport)
                return 0;
        if (!is_known_section(name)) {
                r = warn(l, l->lineno, "unknown section [%s]", name);
                if (r < 0)
                        return r;
        }
        r = section_find_or_add(l, name, &l->cur);
        if (r < 0)
                return fail(l, r, 0, "out of memory");
        return 0;
}

/* reader_check_line - classify one physical line (N bytes, no newline); 0 or an error */
static int reader_check_line(Load *l, const char *line, size_t n)
{
        const char *start = line, *s, *end = line + n, *eq, *colon;

        if (l->lineno == 1 && n >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0)
                start += 3; /* inih skips a UTF-8 byte order mark too */

        for (const char *p = start; p < end; p++) {
                unsigned char c = (unsigned char)*p;
                if (c == 0)
                        return fail(l, -EINVAL, l->lineno, "NUL byte in line");
                if ((c < 0x20 && c != '\t') || c == 0x7f)
                        return fail(l, -EINVAL, l->lineno, "control character 0x%02x in line", c);
        }

        l->continuation = false;
        s = start;
        while (s < end && (*s == ' ' || *s == '\t'))
                s++;
        if (s == end || *s == '#')
                return 0; /* blank or comment: inih ignores it and keeps its previous name */
        if (s > start) {
                if (!l->have_prev)
                        return fail(l, -EINVAL, l->lineno,
                                    "line starts with white space but there is no parameter to continue");
                l->continuation = true;
                return 0;
        }
        if (*s == '[')
                return reader_section(l, s, (size_t)(end - s));

        eq = memchr(s, '=', (size_t)(end - s));
        colon = memchr(s, ':', (size_t)(end - s));
        if (colon && (!eq || colon < eq))
                return fail(l, -EINVAL, l->lineno,
                            "expected \"name = value\" (\":\" does not separate a name)");
        if (!eq)
                return fail(l, -EINVAL, l->lineno, "expected \"name = value\"");
        l->have_prev = true;
        return 0;
}

/* line_reader - inih's fgets(): one whole line per call, or NULL at the end or on an error */
static char *line_reader(char *buf, int num, void *stream)
{
        Load *l = stream;
        const char *p, *nl;
        size_t rest, n, next, max;

        if (l->r < 0 || l->pos >= l->len)
                return NULL;
        if (num < 3) {
                fail(l, -EINVAL, l->lineno, "line buffer too small");
                return NULL;
        }
        max = (size_t)num - 2; /* room for '\n' and the terminating NUL */

        p = l->text + l->pos;
        rest = l->len - l->pos;
        nl = memchr(p, '\n', rest);
        n = nl ? (size_t)(nl - p) : rest;
        next = nl ? n + 1 : rest;
        if (n > 0 && p[n - 1] == '\r')
                n--; /* CRLF line end */
        if (l->lineno == UINT_MAX) {
                fail(l, -E2BIG, 0, "too many lines");
                return NULL;
        }
        l->lineno++;

        if (n > max) {
                fail(l, -E2BIG, l->lineno, "line too long (max %zu bytes); use continuation lines", max);
                return NULL;
        }
        if (reader_check_line(l, p, n) < 0)
                return NULL;

        for (size_t i = 0; i < n; i++)
                buf[i] = p[i] == ';' ? CONF_MASK_SEMICOLON : p[i];
        buf[n] = '\n';
        buf[n + 1] = 0;
        l->pos += next;
        return buf;
}

/* unmask - a copy of S with ';' restored */
static char *unmask(const char *s)
{
        char *c = strdup(s);

        if (!c)
                return NULL;
        for (char *p = c; *p; p++)
                if (*p == CONF_MASK_SEMICOLON)
                        *p = ';';
        return c;
}

/* valid_param_name - [A-Za-z0-9_-]+ */
static bool valid_param_name(const char *s)
{
        if (!*s)
                return false;
        for (; *s; s++)
                if (!is_name_char(*s) && *s != '-')
                        return false;
        return true;
}

/* valid_transport_pattern - "*", ".domain", "domain" or "user@domain"; lower-cased already */
static bool valid_transport_pattern(const char *s)
{
        if (streq(s, "*"))
                return true;
        if (s[0] == '.')
                s++;
        if (!*s)
                return false;
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                if (!(isalnum(c) || c >= 0x80 || strchr(".-_@+", c)))
                        return false;
        }
        return true;
}

/* handle_continuation - append VALUE to the setting the last "name = value" line made */
static int handle_continuation(Load *l, const char *value)
{
        Setting *s = l->last_transport ? &l->transport[l->last_index]
                                       : &l->sections[l->last_section].settings[l->last_index];
        size_t old = strlen(s->raw), add = strlen(value), sep = old > 0;
        char *joined;

        if (old + sep + add > CONF_VALUE_MAX)
                return fail(l, -E2BIG, l->lineno, "parameter %s: value too long (max %zu bytes)", s->name,
                            CONF_VALUE_MAX);
        joined = malloc(old + sep + add + 1);
        if (!joined)
                return fail(l, -ENOMEM, 0, "out of memory");
        memcpy(joined, s->raw, old);
        if (sep)
                joined[old] = ' ';
        memcpy(joined + old + sep, value, add + 1);
        free(s->raw);
        s->raw = joined;
        return 0;
}

/* handle_setting - a "name = value" line: define or redefine (the last one wins); takes *NAME, *VALUE */
static int handle_setting(Load *l, char **pname, char **pvalue)
{
        char *name = *pname;
        Setting *list;
        size_t *n, *allocated;
        int r;

        if (strlen(*pvalue) > CONF_VALUE_MAX)
                return fail(l, -E2BIG, l->lineno, "parameter %s: value too long (max %zu bytes)", name,
                            CONF_VALUE_MAX);
        if (l->in_transport) {
                for (char *p = name; *p; p++)
                        *p = (char)tolower((unsigned char)*p);
                if (!valid_transport_pattern(name))
                        return fail(l, -EINVAL, l->lineno, "invalid [transport] pattern \"%.*s\"",
                                    CONF_QUOTE_MAX, name);
                list = l->transport;
                n = &l->n_transport;
                allocated = &l->allocated_transport;
        } else {
                if (!*name)
                        return fail(l, -EINVAL, l->lineno, "missing parameter name before \"=\"");
                if (!valid_param_name(name))
                        return fail(l, -EINVAL, l->lineno, "invalid parameter name \"%.*s\"", CONF_QUOTE_MAX,
                                    name);
                if (!conf_param_find(name) && !transport_suffix_match(name, strlen(name), NULL)) {
                        r = warn(l, l->lineno, "unknown parameter %s", name);
                        if (r < 0)
                                return r;
                }
                list = l->sections[l->cur].settings;
                n = &l->sections[l->cur].n_settings;
                allocated = &l->sections[l->cur].allocated;
        }

        for (size_t i = 0; i < *n; i++)
                if (streq(list[i].name, name)) {
                        if (l->in_transport) {
                                r = warn(l, l->lineno, "[transport] pattern %s redefined (line %u)", name,
                                         list[i].line);
                                if (r < 0)
                                        return r;
                        }
                        free(list[i].raw);
                        list[i].raw = TAKE_PTR(*pvalue);
                        list[i].line = l->lineno;
                        l->last_transport = l->in_transport;
                        l->last_section = l->cur;
                        l->last_index = i;
                        return 0;
                }

        if (l->in_transport)
                r = grow(&l->transport, allocated, *n + 1, sizeof(Setting));
        else
                r = grow(&l->sections[l->cur].settings, allocated, *n + 1, sizeof(Setting));
        if (r < 0)
                return fail(l, -ENOMEM, 0, "out of memory");
        list = l->in_transport ? l->transport : l->sections[l->cur].settings;
        list[*n] = (Setting){.name = TAKE_PTR(*pname), .raw = TAKE_PTR(*pvalue), .line = l->lineno};
        l->last_transport = l->in_transport;
        l->last_section = l->cur;
        l->last_index = (*n)++;
        return 0;
}

/* line_handler - inih's callback; SECTION and, for continuations, NAME are inih's (untrusted) copies */
static int line_handler(void *user, const char *section, const char *name, const char *value)
{
        Load *l = user;
        _cleanup_(freep) char *n = NULL, *v = NULL;

        if (l->r < 0)
                return 0;
        v = unmask(value);
        n = l->continuation ? NULL : unmask(name);
        if (!v || (!l->continuation && !n)) {
                fail(l, -ENOMEM, 0, "out of memory");
                return 0;
        }
        if (l->continuation)
                return handle_continuation(l, v) >= 0;
        return handle_setting(l, &n, &v) >= 0;
}

/* ---- expansion and checks, per scope ---- */

typedef struct Def {
        const char *name;
        const char *raw;               /* as written or the default; not owned */
        unsigned line;                 /* 0: not set */
        bool in_section;               /* set in the scope's own [section] */
        const ConfParam *param;        /* NULL: unknown or per-transport */
        const TransportSuffix *suffix; /* per-transport parameter */
        size_t word_len;               /* length of its transport name */
        enum { EXP_NONE, EXP_BUSY, EXP_DONE } state;
        char *expanded;
        int64_t i; /* CONF_INT, CONF_TIME */
        uint64_t size;
        bool b;
} Def;

typedef struct Env {
        Load *load;
        const Section *section; /* NULL: global scope */
        Def *defs;              /* N_PARAMS table entries, then the other names that are set */
        size_t n_defs;
        Def *stack[CONF_EXPAND_DEPTH_MAX + 2];
        size_t n_stack;
        Def *err_def; /* whose text the error is in */
        char *reason; /* what is wrong, for fail() */
} Env;

/* env_done - free an Env's expansions */
static void env_done(Env *e)
{
        for (size_t i = 0; i < e->n_defs; i++)
                free(e->defs[i].expanded);
        free(e->defs);
        free(e->reason);
}

/* env_reason - set the error reason once; returns R */
_printf_(3, 4) static int env_reason(Env *e, int r, const char *fmt, ...)
{
        va_list ap;

        if (e->reason || r == -ENOMEM)
                return r;
        va_start(ap, fmt);
        if (vasprintf(&e->reason, fmt, ap) < 0) {
                e->reason = NULL;
                r = -ENOMEM;
        }
        va_end(ap);
        return r;
}

/* env_find - the Def of the LEN-byte NAME, or NULL */
static Def *env_find(Env *e, const char *name, size_t len)
{
        ssize_t i = param_index_n(name, len);

        if (i >= 0)
                return &e->defs[i];
        for (size_t k = N_PARAMS; k < e->n_defs; k++)
                if (strlen(e->defs[k].name) == len && memcmp(e->defs[k].name, name, len) == 0)
                        return &e->defs[k];
        return NULL;
}

/* env_apply - put one section's settings into the Env */
static void env_apply(Env *e, const Section *sec, bool in_section)
{
        for (size_t k = 0; k < sec->n_settings; k++) {
                const Setting *s = &sec->settings[k];
                size_t len = strlen(s->name);
                Def *d = env_find(e, s->name, len);

                if (!d) {
                        d = &e->defs[e->n_defs++];
                        *d = (Def){.name = s->name};
                        d->suffix = transport_suffix_match(s->name, len, &d->word_len);
                }
                d->raw = s->raw;
                d->line = s->line;
                d->in_section = in_section;
        }
}

/* env_init - the names as the program of SECTION (NULL: global) sees them */
static int env_init(Env *e, Load *l, const Section *section)
{
        const Section *global = &l->sections[0];
        size_t n = N_PARAMS + global->n_settings + (section ? section->n_settings : 0);

        *e = (Env){.load = l, .section = section};
        e->defs = calloc(n, sizeof(Def));
        if (!e->defs)
                return -ENOMEM;
        for (size_t i = 0; i < N_PARAMS; i++)
                e->defs[i] =
                        (Def){.name = params[i].name, .raw = params[i].default_value, .param = &params[i]};
        e->n_defs = N_PARAMS;
        env_apply(e, global, false);
        if (section)
                env_apply(e, section, true);
        return 0;
}

static int expand_def(Env *e, Def *d, unsigned depth);

/* env_lookup - the expanded value of the LEN-byte NAME, or NULL when undefined */
static int env_lookup(Env *e, const char *name, size_t len, unsigned depth, const char **ret)
{
        Def *d = env_find(e, name, len);
        int r;

        if (!d) {
                const TransportSuffix *ts = transport_suffix_match(name, len, NULL);
                if (ts)
                        d = env_find(e, ts->default_name, strlen(ts->default_name));
        }
        if (!d) {
                *ret = NULL;
                return 0;
        }
        r = expand_def(e, d, depth + 1);
        if (r < 0)
                return r;
        *ret = d->expanded;
        return 0;
}

/* find_close - the bracket that closes the one at S[0] (same kind nests), or NULL */
static const char *find_close(const char *s, const char *end)
{
        char open = *s, close = open == '{' ? '}' : ')';
        unsigned level = 0;

        for (const char *p = s; p < end; p++) {
                if (*p == open)
                        level++;
                else if (*p == close && --level == 0)
                        return p;
        }
        return NULL;
}

static int expand_text(Env *e, const char *s, size_t n, unsigned depth, Buf *out);

/* expand_braced - the inside of ${...} or $(...): name, name?text, name:text, name?{a}:{b} */
static int expand_braced(Env *e, const char *s, size_t n, unsigned depth, Buf *out)
{
        const char *end = s + n, *p = s, *value;
        const char *t1 = NULL, *t2 = NULL;
        size_t n1 = 0, n2 = 0, len;
        char op;
        int r;

        while (p < end && is_name_char(*p))
                p++;
        len = (size_t)(p - s);
        if (len == 0)
                return env_reason(e, -EINVAL, "missing name after \"${\" or \"$(\"");

        r = env_lookup(e, s, len, depth, &value);
        if (r < 0)
                return r;
        if (p == end) {
                if (!value) {
                        Def *top = e->stack[e->n_stack - 1];
                        r = warn(e->load, top->line,
                                 "parameter %s: undefined parameter $%.*s expands to nothing", top->name,
                                 (int)len, s);
                        if (r < 0)
                                return r;
                        return 0;
                }
                return buf_add(out, value, strlen(value));
        }

        op = *p++;
        if (op != '?' && op != ':')
                return env_reason(e, -EINVAL, "unexpected \"%c\" after ${%.*s", op,
                                  (int)MIN(len, (size_t)64), s);
        if (p < end && *p == '{') {
                const char *c = find_close(p, end);
                if (!c)
                        return env_reason(e, -EINVAL, "missing \"}\" in ${%.*s%c{...}",
                                          (int)MIN(len, (size_t)64), s, op);
                t1 = p + 1;
                n1 = (size_t)(c - t1);
                p = c + 1;
                if (op == '?' && p < end && *p == ':') {
                        p++;
                        if (p >= end || *p != '{' || !(c = find_close(p, end)) || c + 1 != end)
                                return env_reason(e, -EINVAL, "expected ${name?{text}:{text}}");
                        t2 = p + 1;
                        n2 = (size_t)(c - t2);
                        p = c + 1;
                }
                if (p != end)
                        return env_reason(e, -EINVAL, "text after \"}\" in ${%.*s%c{...}}",
                                          (int)MIN(len, (size_t)64), s, op);
        } else {
                t1 = p;
                n1 = (size_t)(end - p);
        }

        if (op == ':') {
                /* ${name:text}: text when name is empty or undefined */
                if (isempty(value))
                        return expand_text(e, t1, n1, depth + 1, out);
                return 0;
        }
        if (!isempty(value))
                return expand_text(e, t1, n1, depth + 1, out);
        if (t2)
                return expand_text(e, t2, n2, depth + 1, out);
        return 0;
}

/* expand_text - expand N bytes of S into OUT */
static int expand_text(Env *e, const char *s, size_t n, unsigned depth, Buf *out)
{
        const char *end = s + n, *p = s;
        int r;

        if (depth > CONF_EXPAND_DEPTH_MAX)
                return env_reason(e, -ELOOP, "$name expansion nested too deeply (max %d levels)",
                                  CONF_EXPAND_DEPTH_MAX);
        while (p < end) {
                const char *dollar = memchr(p, '$', (size_t)(end - p));

                if (!dollar)
                        return buf_add(out, p, (size_t)(end - p));
                r = buf_add(out, p, (size_t)(dollar - p));
                if (r < 0)
                        return r;
                p = dollar + 1;
                if (p == end)
                        return env_reason(e, -EINVAL,
                                          "\"$\" at the end of the value (write $$ for a literal $)");
                if (*p == '$') {
                        r = buf_add(out, "$", 1);
                        p++;
                } else if (*p == '{' || *p == '(') {
                        const char *c = find_close(p, end);
                        if (!c)
                                return env_reason(e, -EINVAL, "missing \"%c\" after \"$%c\"",
                                                  *p == '{' ? '}' : ')', *p);
                        r = expand_braced(e, p + 1, (size_t)(c - p - 1), depth + 1, out);
                        p = c + 1;
                } else if (is_name_char(*p)) {
                        const char *q = p, *value;
                        while (q < end && is_name_char(*q))
                                q++;
                        r = env_lookup(e, p, (size_t)(q - p), depth, &value);
                        if (r >= 0 && !value) {
                                Def *top = e->stack[e->n_stack - 1];
                                r = warn(e->load, top->line,
                                         "parameter %s: undefined parameter $%.*s expands to nothing",
                                         top->name, (int)MIN((size_t)(q - p), (size_t)64), p);
                        } else if (r >= 0)
                                r = buf_add(out, value, strlen(value));
                        p = q;
                } else
                        return env_reason(e, -EINVAL,
                                          "\"$\" must be followed by a name, \"{\", \"(\" or \"$\" (write "
                                          "$$ for a literal $)");
                if (r < 0)
                        return r;
        }
        return 0;
}

/* computed_default - myhostname (gethostname, .localdomain added) and mydomain (myhostname less a label) */
static int computed_default(Env *e, Def *d, unsigned depth, Buf *out)
{
        Load *l = e->load;
        const char *v, *dot;
        int r;

        if (streq(d->name, "myhostname")) {
                if (!l->hostname) {
                        char h[HOST_NAME_MAX + 1] = "";
                        if (gethostname(h, sizeof h - 1) < 0 || !*h)
                                strcpy(h, "localhost");
                        l->hostname = strdup(h);
                        if (!l->hostname)
                                return -ENOMEM;
                }
                r = buf_add(out, l->hostname, strlen(l->hostname));
                if (r < 0 || strchr(l->hostname, '.'))
                        return r;
                v = NULL;
                if (e->defs[param_index_n("mydomain", strlen("mydomain"))].line > 0) {
                        r = env_lookup(e, "mydomain", strlen("mydomain"), depth, &v);
                        if (r < 0)
                                return r;
                }
                r = buf_add(out, ".", 1);
                if (r < 0)
                        return r;
                v = isempty(v) ? "localdomain" : v;
                return buf_add(out, v, strlen(v));
        }
        /* mydomain: Postfix takes myhostname less its first label only if that still has a dot */
        r = env_lookup(e, "myhostname", strlen("myhostname"), depth, &v);
        if (r < 0)
                return r;
        dot = v ? strchr(v, '.') : NULL;
        if (!dot || !strchr(dot + 1, '.'))
                return buf_add(out, "localdomain", strlen("localdomain"));
        return buf_add(out, dot + 1, strlen(dot + 1));
}

/* loop_reason - "loop in $name expansion: $a -> $b -> $a" from the stack */
static int loop_reason(Env *e, Def *d)
{
        Buf b = {};
        size_t start = 0;
        int r = 0;

        for (size_t i = 0; i < e->n_stack; i++)
                if (e->stack[i] == d) {
                        start = i;
                        break;
                }
        for (size_t i = start; i < e->n_stack && r >= 0; i++) {
                r = buf_add(&b, "$", 1);
                if (r >= 0)
                        r = buf_add(&b, e->stack[i]->name, strlen(e->stack[i]->name));
                if (r >= 0)
                        r = buf_add(&b, " -> ", 4);
        }
        if (r >= 0)
                r = buf_add(&b, "$", 1);
        if (r >= 0)
                r = buf_add(&b, d->name, strlen(d->name));
        if (r == -ENOMEM) {
                free(b.p);
                return -ENOMEM;
        }
        r = env_reason(e, -ELOOP, "loop in $name expansion: %s", b.p ? b.p : d->name);
        free(b.p);
        e->err_def = e->stack[0];
        return r;
}

/* expand_def - expand D once (memoized); a Def met again while busy is a loop */
static int expand_def(Env *e, Def *d, unsigned depth)
{
        Buf b = {};
        int r;

        if (d->state == EXP_DONE)
                return 0;
        if (d->state == EXP_BUSY)
                return loop_reason(e, d);
        if (depth > CONF_EXPAND_DEPTH_MAX || e->n_stack >= ELEMENTSOF(e->stack))
                return env_reason(e, -ELOOP, "$name expansion nested too deeply (max %d levels)",
                                  CONF_EXPAND_DEPTH_MAX);

        d->state = EXP_BUSY;
        e->stack[e->n_stack++] = d;
        if (d->line == 0 && d->param && (streq(d->name, "myhostname") || streq(d->name, "mydomain")))
                r = computed_default(e, d, depth, &b);
        else
                r = expand_text(e, d->raw, strlen(d->raw), depth, &b);
        if (r < 0) {
                if (!e->err_def && r != -ELOOP)
                        e->err_def = d; /* the innermost text that is wrong */
                if (r == -E2BIG)
                        env_reason(e, r, "expanded value too long (max %zu bytes)", CONF_VALUE_MAX);
                free(b.p);
                return r;
        }
        e->n_stack--;
        d->expanded = buf_steal(&b);
        if (!d->expanded)
                return -ENOMEM;
        d->state = EXP_DONE;
        return 0;
}

/* range_text - "between A and B" / "at least A" (no own maximum) for an error message */
static void range_text(char *buf, size_t size, int64_t min, int64_t max, bool own_max, const char *unit)
{
        if (!own_max)
                snprintf(buf, size, "at least %" PRId64 "%s", min, unit);
        else
                snprintf(buf, size, "between %" PRId64 "%s and %" PRId64 "%s", min, unit, max, unit);
}

/* check_typed - parse D's expanded value as TYPE within [MIN, MAX] (max 0: the type's limit) */
static int check_typed(Env *e, Def *d, ConfType type, char unit, int64_t min, int64_t max)
{
        _cleanup_(freep) char *q = quote(d->expanded);
        const char *v = d->expanded;
        bool own_max = max != 0;
        char range[96];
        int r;

        if (!q)
                return -ENOMEM;
        switch (type) {
        case CONF_STRING:
        case CONF_LIST:
                if (strstr(d->name, "_destination_concurrency_positive_feedback") ||
                    strstr(d->name, "_destination_concurrency_negative_feedback")) {
                        if (!feedback_ok(v))
                                return env_reason(
                                        e, -EINVAL,
                                        "invalid feedback value \"%s\" (x, x/y or x/concurrency, 0..1)", q);
                } else if (streq(d->name, "smtpd_forbid_bare_newline")) {
                        if (!streq(v, "normalize") && !streq(v, "yes") && !streq(v, "reject") &&
                            !streq(v, "no"))
                                return env_reason(e, -EINVAL,
                                                  "invalid value \"%s\" (normalize, yes, reject or no)", q);
                }
                return 0;

        case CONF_BOOL:
                if (conf_parse_bool(v, &d->b) < 0)
                        return env_reason(e, -EINVAL, "invalid boolean value \"%s\" (yes or no)", q);
                return 0;

        case CONF_INT:
                if (max == 0)
                        max = CONF_INT_MAX;
                range_text(range, sizeof range, min, max, own_max, "");
                r = parse_int(v, &d->i);
                if (r == -EINVAL)
                        return env_reason(e, r, "invalid integer value \"%s\"", q);
                if (r < 0 || d->i < min || d->i > max)
                        return env_reason(e, -EINVAL, "integer value \"%s\" out of range (%s)", q, range);
                return 0;

        case CONF_TIME:
                if (max == 0)
                        max = CONF_TIME_MAX;
                range_text(range, sizeof range, min, max, own_max, "s");
                r = conf_parse_time(v, unit, &d->i);
                if (r == -EINVAL)
                        return env_reason(
                                e, r,
                                "invalid time value \"%s\" (a number with an optional unit s, m, h, d or w; "
                                "default unit %c)",
                                q, unit);
                if (r < 0 && v[0] == '-')
                        return env_reason(e, -EINVAL, "time value \"%s\" must not be negative", q);
                if (r < 0 || d->i < min || d->i > max)
                        return env_reason(e, -EINVAL, "time value \"%s\" out of range (%s)", q, range);
                return 0;

        case CONF_SIZE:
                if (max == 0)
                        max = (int64_t)CONF_SIZE_MAX;
                range_text(range, sizeof range, min, max, own_max, "");
                r = conf_parse_size(v, &d->size);
                if (r == -EINVAL)
                        return env_reason(e, r,
                                          "invalid size value \"%s\" (bytes, optional suffix k, m or g)", q);
                if (r < 0 && v[0] == '-')
                        return env_reason(e, -EINVAL, "size value \"%s\" must not be negative", q);
                if (r < 0 || d->size < (uint64_t)min || d->size > (uint64_t)max)
                        return env_reason(e, -EINVAL, "size value \"%s\" out of range (%s bytes)", q, range);
                return 0;
        }
        return 0;
}

/* check_def - expand and type-check one Def; errors become "FILE:LINE: parameter NAME: reason" */
static int check_def(Env *e, Def *d)
{
        const Def *where;
        int r;

        e->n_stack = 0;
        e->err_def = NULL;
        r = expand_def(e, d, 0);
        if (r >= 0) {
                if (d->param)
                        r = check_typed(e, d, d->param->type, d->param->default_unit, d->param->min,
                                        d->param->max);
                else if (d->suffix)
                        r = check_typed(e, d, d->suffix->type, 's', d->suffix->min, d->suffix->max);
        }
        if (r >= 0)
                return 0;
        if (r == -ENOMEM || e->load->r < 0)
                return fail(e->load, r == -ENOMEM ? r : e->load->r, 0, "out of memory");

        where = e->err_def && e->err_def->line > 0 ? e->err_def : d;
        return fail(e->load, r, where->line, "parameter %s: %s%s%s%s", where->name, strna(e->reason),
                    e->section && !where->in_section ? " (in [" : "",
                    e->section && !where->in_section ? e->section->name : "",
                    e->section && !where->in_section ? "])" : "");
}

/* def_line_cmp - set Defs in file order */
static int def_line_cmp(const void *a, const void *b)
{
        const Def *x = *(Def *const *)a, *y = *(Def *const *)b;

        return (x->line > y->line) - (x->line < y->line);
}

/* env_check - expand and check every known name: set ones in file order first, then defaults */
static int env_check(Env *e)
{
        _cleanup_(freep) Def **order = calloc(e->n_defs, sizeof(Def *));
        size_t n = 0;
        int r;

        if (!order)
                return fail(e->load, -ENOMEM, 0, "out of memory");
        for (size_t i = 0; i < e->n_defs; i++)
                if (e->defs[i].line > 0 && (e->defs[i].param || e->defs[i].suffix))
                        order[n++] = &e->defs[i];
        qsort(order, n, sizeof(Def *), def_line_cmp);
        for (size_t i = 0; i < n; i++) {
                r = check_def(e, order[i]);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < N_PARAMS; i++)
                if (e->defs[i].line == 0) {
                        r = check_def(e, &e->defs[i]);
                        if (r < 0)
                                return r;
                }
        return 0;
}

/* ---- the result ---- */

typedef struct ConfValue {
        char *raw;
        char *expanded;
        char **list;
        int64_t i;
        uint64_t size;
        bool b;
        bool is_default;
} ConfValue;

typedef struct ConfOverride {
        char *name;
        size_t word_len;
        const TransportSuffix *suffix;
        char *expanded;
        int64_t i;
} ConfOverride;

struct Conf {
        ConfValue values[N_PARAMS];
        char **warnings;
        size_t n_warnings;
        char **unknown_names;
        char **unknown_values;
        size_t n_unknown;
        ConfTransportEntry *transport;
        size_t n_transport;
        ConfOverride *overrides;
        size_t n_overrides;
};

/* conf_free - free C and everything it owns; returns NULL */
Conf *conf_free(Conf *c)
{
        if (!c)
                return NULL;
        for (size_t i = 0; i < N_PARAMS; i++) {
                free(c->values[i].raw);
                free(c->values[i].expanded);
                free(c->values[i].list);
        }
        strv_free_n(c->warnings, c->n_warnings);
        strv_free_n(c->unknown_names, c->n_unknown);
        strv_free_n(c->unknown_values, c->n_unknown);
        for (size_t i = 0; i < c->n_transport; i++) {
                free((char *)c->transport[i].pattern);
                free((char *)c->transport[i].transport);
                free((char *)c->transport[i].nexthop);
        }
        free(c->transport);
        for (size_t i = 0; i < c->n_overrides; i++) {
                free(c->overrides[i].name);
                free(c->overrides[i].expanded);
        }
        free(c->overrides);
        free(c);
        return NULL;
}

/* split_list - one allocation: the vector, then the elements (separators: comma and white space) */
static char **split_list(const char *s)
{
        static const char sep[] = ", \t\r\n";
        size_t len = strlen(s), n = 0;
        char **v, *text;

        for (const char *p = s + strspn(s, sep); *p; p += strspn(p, sep)) {
                n++;
                p += strcspn(p, sep);
        }
        v = malloc((n + 1) * sizeof(char *) + len + 1);
        if (!v)
                return NULL;
        text = (char *)(v + n + 1);
        memcpy(text, s, len + 1);
        n = 0;
        for (char *p = text + strspn(text, sep); *p; p += strspn(p, sep)) {
                size_t k = strcspn(p, sep);
                v[n++] = p;
                if (!p[k])
                        break;
                p[k] = 0;
                p += k + 1;
        }
        v[n] = NULL;
        return v;
}

/* conf_take_scope - move the checked values of the program's scope into C */
static int conf_take_scope(Conf *c, Env *e)
{
        size_t n_extra = e->n_defs - N_PARAMS;

        for (size_t i = 0; i < N_PARAMS; i++) {
                Def *d = &e->defs[i];
                ConfValue *v = &c->values[i];

                v->is_default = d->line == 0;
                v->raw = strdup(d->line == 0 && (streq(d->name, "myhostname") || streq(d->name, "mydomain"))
                                        ? d->expanded
                                        : d->raw);
                if (!v->raw)
                        return -ENOMEM;
                v->expanded = TAKE_PTR(d->expanded);
                v->i = d->i;
                v->size = d->size;
                v->b = d->b;
                if (params[i].type == CONF_LIST) {
                        v->list = split_list(v->expanded);
                        if (!v->list)
                                return -ENOMEM;
                }
        }

        c->unknown_names = calloc(n_extra + 1, sizeof(char *));
        c->unknown_values = calloc(n_extra + 1, sizeof(char *));
        c->overrides = calloc(n_extra + 1, sizeof(ConfOverride));
        if (!c->unknown_names || !c->unknown_values || !c->overrides)
                return -ENOMEM;
        for (size_t k = N_PARAMS; k < e->n_defs; k++) {
                Def *d = &e->defs[k];

                if (d->suffix) {
                        ConfOverride *o = &c->overrides[c->n_overrides];
                        o->name = strdup(d->name);
                        if (!o->name)
                                return -ENOMEM;
                        o->word_len = d->word_len;
                        o->suffix = d->suffix;
                        o->expanded = TAKE_PTR(d->expanded);
                        o->i = d->i;
                        c->n_overrides++;
                } else {
                        char *name = strdup(d->name), *value = strdup(d->raw);
                        if (!name || !value) {
                                free(name);
                                free(value);
                                return -ENOMEM;
                        }
                        c->unknown_names[c->n_unknown] = name;
                        c->unknown_values[c->n_unknown++] = value;
                }
        }
        return 0;
}

/* conf_take_transport - parse the [transport] entries (transport(5): transport:nexthop) */
static int conf_take_transport(Conf *c, Load *l)
{
        c->transport = calloc(l->n_transport + 1, sizeof(ConfTransportEntry));
        if (!c->transport)
                return fail(l, -ENOMEM, 0, "out of memory");
        for (size_t i = 0; i < l->n_transport; i++) {
                const Setting *s = &l->transport[i];
                const char *v = s->raw, *colon = strchr(v, ':');
                size_t tl = colon ? (size_t)(colon - v) : strlen(v);
                const char *nexthop = colon ? colon + 1 : "";
                ConfTransportEntry *t = &c->transport[i];
                bool is_error;

                if (!*v)
                        return fail(l, -EINVAL, s->line,
                                    "[transport] %s: empty value (want transport:nexthop)", s->name);
                for (size_t k = 0; k < tl; k++)
                        if (!is_name_char(v[k]) && v[k] != '-' && v[k] != '.')
                                return fail(l, -EINVAL, s->line,
                                            "[transport] %s: invalid transport name \"%.*s\"", s->name,
                                            (int)MIN(tl, (size_t)CONF_QUOTE_MAX), v);
                is_error = (tl == 5 && strneq(v, "error", 5)) || (tl == 5 && strneq(v, "retry", 5));
                if (!is_error) {
                        if (strpbrk(nexthop, " \t"))
                                return fail(l, -EINVAL, s->line,
                                            "[transport] %s: white space in nexthop \"%.*s\"", s->name,
                                            CONF_QUOTE_MAX, nexthop);
                        if (nexthop[0] == '[') {
                                const char *close = strchr(nexthop, ']');
                                if (!close || close == nexthop + 1 ||
                                    (close[1] && (close[1] != ':' || !close[2])))
                                        return fail(l, -EINVAL, s->line,
                                                    "[transport] %s: invalid nexthop \"%.*s\" (want [host] "
                                                    "or [host]:port)",
                                                    s->name, CONF_QUOTE_MAX, nexthop);
                        }
                }
                t->pattern = strdup(s->name);
                t->transport = strndup(v, tl);
                t->nexthop = strdup(nexthop);
                t->line = s->line;
                c->n_transport++;
                if (!t->pattern || !t->transport || !t->nexthop)
                        return fail(l, -ENOMEM, 0, "out of memory");
        }
        return 0;
}

/* conf_load_string - parse, expand and check LEN bytes of TEXT for PROGRAM */
int conf_load_string(const char *text, size_t len, const char *filename, const char *program, Conf **ret,
                     char **ret_error)
{
        _cleanup_(conf_freep) Conf *c = NULL;
        Load l = {
                .filename = filename ? filename : "main.cf",
                .text = text ? text : "",
                .len = text ? len : 0,
        };
        size_t global;
        int r;

        if (!ret)
                return -EINVAL;
        c = calloc(1, sizeof(Conf));
        if (!c) {
                r = -ENOMEM;
                goto finish;
        }
        r = section_find_or_add(&l, NULL, &global);
        if (r < 0) {
                fail(&l, r, 0, "out of memory");
                goto finish;
        }

        r = ini_parse_stream(line_reader, &l, line_handler, &l);
        if (l.r >= 0 && r == -2)
                fail(&l, -ENOMEM, 0, "out of memory");
        else if (l.r >= 0 && r != 0)
                fail(&l, -EINVAL, r > 0 ? (unsigned)r : 0, "syntax error");
        if (l.r < 0)
                goto finish;

        r = conf_take_transport(c, &l);
        if (r < 0)
                goto finish;

        /* every scope is checked; the program's own scope is the one kept */
        for (size_t i = 0; i < l.n_sections; i++) {
                const Section *sec = i == 0 ? NULL : &l.sections[i];
                bool mine = false;
                Env e;

                if (i == 0) {
                        mine = true;
                        for (size_t k = 1; k < l.n_sections; k++)
                                if (program && streq(l.sections[k].name, program))
                                        mine = false;
                } else
                        mine = program && streq(sec->name, program);

                r = env_init(&e, &l, sec);
                if (r < 0) {
                        fail(&l, r, 0, "out of memory");
                        goto finish;
                }
                r = env_check(&e);
                if (r >= 0 && mine) {
                        r = conf_take_scope(c, &e);
                        if (r < 0)
                                fail(&l, r, 0, "out of memory");
                }
                env_done(&e);
                if (l.r < 0)
                        goto finish;
        }

        warnings_sort(&l);
        c->warnings = TAKE_PTR(l.warnings);
        c->n_warnings = l.n_warnings;
        l.n_warnings = 0;
        *ret = TAKE_PTR(c);
        load_done(&l);
        return 0;

finish:
        if (l.r < 0)
                r = l.r;
        if (r >= 0)
                r = -EINVAL;
        if (ret_error)
                *ret_error = TAKE_PTR(l.error);
        load_done(&l);
        return r;
}

/* conf_read_text - see conf.h */
int conf_read_text(const char *path, size_t max, char **ret, size_t *ret_len)
{
        _cleanup_(closep) int fd = -EBADF;
        _cleanup_(freep) char *text = NULL;
        struct stat st;
        size_t n = 0, allocated = 0;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        for (;;) {
                ssize_t k;

                if (n == allocated) {
                        if (allocated >= max)
                                return -EFBIG;
                        r = grow(&text, &allocated, MIN(MAX(allocated * 2, (size_t)4096), max), 1);
                        if (r < 0)
                                return r;
                }
                k = read(fd, text + n, allocated - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t)k;
        }
        *ret = TAKE_PTR(text);
        *ret_len = n;
        return 0;
}

/* conf_load - read PATH into memory and load it (PATH NULL: defaults only) */
int conf_load(const char *path, const char *program, Conf **ret, char **ret_error)
{
        _cleanup_(freep) char *text = NULL;
        size_t n = 0;
        int r;

        if (!ret)
                return -EINVAL;
        if (!path)
                return conf_load_string("", 0, "(defaults)", program, ret, ret_error);

        r = conf_read_text(path, CONF_FILE_MAX, &text, &n);
        if (r == -EFBIG) {
                if (ret_error && asprintf(ret_error, "%s: file too large (max %u bytes)", path, CONF_FILE_MAX) < 0)
                        *ret_error = NULL;
                return r;
        }
        if (r < 0) {
                if (ret_error && asprintf(ret_error, "%s: %s", path, strerror(-r)) < 0)
                        *ret_error = NULL;
                return r;
        }
        return conf_load_string(text ? text : "", n, path, program, ret, ret_error);
}

/* conf_warnings - the warnings gathered while loading */
size_t conf_warnings(const Conf *c, const char *const **ret)
{
        assert(c);
        if (ret)
                *ret = (const char *const *)c->warnings;
        return c->n_warnings;
}

/* value_of - the value of a known NAME; WANT is the type the getter reads (or -1: any) */
static const ConfValue *value_of(const Conf *c, const char *name, int want)
{
        ssize_t i;

        if (!c)
                panic("NULL Conf", name);
        if (!name)
                panic("NULL parameter name", name);
        i = param_index_n(name, strlen(name));
        if (i < 0)
                panic("unknown parameter", name);
        if (want >= 0 && params[i].type != (ConfType)want)
                panic("parameter read with the wrong type", name);
        return &c->values[i];
}

/* conf_get_string - the expanded value of any parameter, as text */
const char *conf_get_string(const Conf *c, const char *name)
{
        return value_of(c, name, -1)->expanded;
}

/* conf_get_bool - a CONF_BOOL parameter */
bool conf_get_bool(const Conf *c, const char *name)
{
        return value_of(c, name, CONF_BOOL)->b;
}

/* conf_get_int - a CONF_INT parameter */
int64_t conf_get_int(const Conf *c, const char *name)
{
        return value_of(c, name, CONF_INT)->i;
}

/* conf_get_time - a CONF_TIME parameter, in seconds */
int64_t conf_get_time(const Conf *c, const char *name)
{
        return value_of(c, name, CONF_TIME)->i;
}

/* conf_get_size - a CONF_SIZE parameter, in bytes */
uint64_t conf_get_size(const Conf *c, const char *name)
{
        return value_of(c, name, CONF_SIZE)->size;
}

/* conf_get_list - a CONF_LIST parameter as a NULL-terminated vector */
char *const *conf_get_list(const Conf *c, const char *name)
{
        return value_of(c, name, CONF_LIST)->list;
}

/* conf_get_raw - the value as written (joined, not expanded), or the default */
const char *conf_get_raw(const Conf *c, const char *name)
{
        return value_of(c, name, -1)->raw;
}

/* conf_is_default - whether the program's scope leaves NAME unset */
bool conf_is_default(const Conf *c, const char *name)
{
        return value_of(c, name, -1)->is_default;
}

/* conf_unknown - unknown names set in the program's scope, with their raw values */
size_t conf_unknown(const Conf *c, const char *const **ret_names, const char *const **ret_values)
{
        assert(c);
        if (ret_names)
                *ret_names = (const char *const *)c->unknown_names;
        if (ret_values)
                *ret_values = (const char *const *)c->unknown_values;
        return c->n_unknown;
}

/* conf_transport - the [transport] entries in file order */
size_t conf_transport(const Conf *c, const ConfTransportEntry **ret)
{
        assert(c);
        if (ret)
                *ret = c->transport;
        return c->n_transport;
}

/* transport_override - the set <transport>_<suffix> of type WANT, or NULL; -EINVAL for a bad suffix */
static int transport_override(const Conf *c, const char *transport, const char *suffix, ConfType want,
                              const ConfOverride **ret)
{
        size_t tl;

        if (!c || isempty(transport) || isempty(suffix))
                return -EINVAL;
        tl = strlen(transport);
        for (size_t i = 0; i < ELEMENTSOF(transport_suffixes); i++) {
                if (!streq(transport_suffixes[i].suffix, suffix))
                        continue;
                if (transport_suffixes[i].type != want)
                        return -EINVAL;
                for (size_t k = 0; k < c->n_overrides; k++) {
                        const ConfOverride *o = &c->overrides[k];
                        if (o->suffix == &transport_suffixes[i] && o->word_len == tl &&
                            strneq(o->name, transport, tl)) {
                                *ret = o;
                                return 0;
                        }
                }
                return -ENOENT;
        }
        return -EINVAL;
}

/* conf_get_transport_int - <transport>_<suffix> of an integer suffix; -ENOENT when not set */
int conf_get_transport_int(const Conf *c, const char *transport, const char *suffix, int64_t *ret)
{
        const ConfOverride *o;
        int r = transport_override(c, transport, suffix, CONF_INT, &o);

        if (r < 0)
                return r;
        if (ret)
                *ret = o->i;
        return 0;
}

/* conf_get_transport_time - <transport>_<suffix> of a time suffix, seconds; -ENOENT when not set */
int conf_get_transport_time(const Conf *c, const char *transport, const char *suffix, int64_t *ret)
{
        const ConfOverride *o;
        int r = transport_override(c, transport, suffix, CONF_TIME, &o);

        if (r < 0)
                return r;
        if (ret)
                *ret = o->i;
        return 0;
}

/* conf_get_transport_string - <transport>_<suffix> of a string suffix; -ENOENT when not set */
int conf_get_transport_string(const Conf *c, const char *transport, const char *suffix, const char **ret)
{
        const ConfOverride *o;
        int r = transport_override(c, transport, suffix, CONF_STRING, &o);

        if (r < 0)
                return r;
        if (ret)
                *ret = o->expanded;
        return 0;
}

/* conf_path - -c argument, else $TERN_CONFIG (secure_getenv), else TERN_CONFIG_FILE */
const char *conf_path(const char *arg)
{
        const char *e;

        if (!isempty(arg))
                return arg;
        e = secure_getenv("TERN_CONFIG");
        if (!isempty(e))
                return e;
        return TERN_CONFIG_FILE;
}

bool conf_user_listed(char *const *list, const char *user)
{
        for (char *const *p = list; p && *p; p++) {
                if (streq(*p, "static:anyone") || streq(*p, "static:all"))
                        return true;
                if ((*p)[0] == '!' && streq(*p + 1, user))
                        return false;
                if (streq(*p, user))
                        return true;
        }
        return false;
}
