/* SPDX-License-Identifier: MIT */
/*
 * test-conf.c - unit tests for src/lib/conf.c (main.cf reader)
 *
 * Table-driven: each case names itself, and a failure says what came and what was wanted.
 * Covers the pure parsers (every time unit, sizes, booleans), the table (sorted, defaults valid),
 * syntax (continuation, redefinition, comments, ';', line limits at and over inih's buffer,
 * line numbers), expansion ($name, ${}, $(), $$, conditionals, undefined names, loops direct and
 * indirect, nesting and size limits), sections, per-transport parameters, the [transport] table,
 * conf_load() on real files, the shipped conf/main.cf and man/tern.conf.5 against the table, and
 * every prefix of a sample file.
 *
 * Needs -DTERN_SOURCE_ROOT="/abs/path/to/source" to find conf/main.cf and man/tern.conf.5.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "macro.h"
#include "config.h"

#ifndef TERN_SOURCE_ROOT
#error "build with -DTERN_SOURCE_ROOT=\"/abs/path/to/source\" (to read conf/main.cf, man/tern.conf.5)"
#endif

/* the longest line the reader accepts: inih's buffer less the newline and the NUL */
#define LINE_MAX_BYTES (INI_MAX_LINE - 2)

static const char *const programs[] = {
        "flush", "qmgr", "scache", "smtp", "smtpd", "submit", "discard", "error", "ctl", "sendmail",
};

/* load - conf_load_string over a C string */
static int load(const char *text, const char *program, Conf **ret, char **ret_error)
{
        return conf_load_string(text, strlen(text), "main.cf", program, ret, ret_error);
}

/* must_load - load TEXT or fail the test with the error */
static Conf *must_load(const char *what, const char *text, const char *program)
{
        Conf *c = NULL;
        char *err = NULL;
        int r = load(text, program, &c, &err);

        if (r < 0)
                fail_msg("%s: conf_load_string: got %d (%s), want success", what, r, strna(err));
        assert_non_null(c);
        free(err);
        return c;
}

/* read_file - a whole file from the source tree, NUL-terminated */
static char *read_file(const char *relpath, size_t *ret_len)
{
        char path[PATH_MAX];
        FILE *f;
        char *buf;
        long n;

        snprintf(path, sizeof path, "%s/%s", TERN_SOURCE_ROOT, relpath);
        f = fopen(path, "re");
        if (!f)
                fail_msg("open %s: %s", path, strerror(errno));
        assert_int_equal(fseek(f, 0, SEEK_END), 0);
        n = ftell(f);
        assert_true(n >= 0);
        rewind(f);
        buf = malloc((size_t)n + 1);
        assert_non_null(buf);
        assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
        buf[n] = 0;
        fclose(f);
        if (ret_len)
                *ret_len = (size_t)n;
        return buf;
}

/* has_warning - whether a warning contains NEEDLE */
static bool has_warning(const Conf *c, const char *needle)
{
        const char *const *w;
        size_t n = conf_warnings(c, &w);

        for (size_t i = 0; i < n; i++)
                if (strstr(w[i], needle))
                        return true;
        return false;
}

/* ---- pure parsers ---- */

static void test_parse_time(void **state)
{
        static const struct {
                const char *in;
                char unit;
                int r;
                int64_t want;
        } cases[] = {
                {"0", 's', 0, 0},
                {"10", 's', 0, 10},
                {"10s", 'd', 0, 10},
                {"10m", 's', 0, 600},
                {"2h", 's', 0, 7200},
                {"5d", 's', 0, 5 * 86400},
                {"1w", 's', 0, 7 * 86400},
                {"5", 'd', 0, 5 * 86400},
                {"12", 'h', 0, 12 * 3600},
                {"3", 'm', 0, 180},
                {"2", 'w', 0, 14 * 86400},
                {"2147483647", 's', 0, 2147483647},
                {"2147483647s", 'd', 0, 2147483647},
                {"2147483648", 's', -ERANGE, 0},
                {"24855d", 's', 0, 24855LL * 86400},
                {"24855", 'd', 0, 24855LL * 86400},
                {"24856d", 's', -ERANGE, 0},
                {"3550w", 's', 0, 3550LL * 7 * 86400},
                {"24856w", 's', -ERANGE, 0},
                {"99999999999999999999999", 's', -ERANGE, 0},
                {"99999999999999999999999s", 's', -ERANGE, 0},
                {"99999999999999999999999x", 's', -EINVAL, 0},
                {"-5", 's', -ERANGE, 0},
                {"-5s", 's', -ERANGE, 0},
                {"", 's', -EINVAL, 0},
                {"s", 's', -EINVAL, 0},
                {"ten", 's', -EINVAL, 0},
                {"10S", 's', -EINVAL, 0},
                {"10M", 's', -EINVAL, 0},
                {"10H", 's', -EINVAL, 0},
                {"10D", 's', -EINVAL, 0},
                {"10W", 's', -EINVAL, 0},
                {"10y", 's', -EINVAL, 0},
                {"10ss", 's', -EINVAL, 0},
                {"1h30m", 's', -EINVAL, 0},
                {" 10", 's', -EINVAL, 0},
                {"10 ", 's', -EINVAL, 0},
                {"+10", 's', -EINVAL, 0},
                {"1.5h", 's', -EINVAL, 0},
                {"0x10", 's', -EINVAL, 0},
                {"10", 'x', -EINVAL, 0},
                {"10", 0, -EINVAL, 0},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int64_t v = -12345;
                int r = conf_parse_time(cases[i].in, cases[i].unit, &v);

                if (r != cases[i].r)
                        fail_msg("conf_parse_time(\"%s\", '%c'): got %d, want %d", cases[i].in,
                                 cases[i].unit ? cases[i].unit : '0', r, cases[i].r);
                if (r == 0 && v != cases[i].want)
                        fail_msg("conf_parse_time(\"%s\", '%c'): got %" PRId64 ", want %" PRId64,
                                 cases[i].in, cases[i].unit, v, cases[i].want);
                if (r < 0 && v != -12345)
                        fail_msg("conf_parse_time(\"%s\"): wrote *ret on failure", cases[i].in);
        }
        assert_int_equal(conf_parse_time(NULL, 's', &(int64_t){0}), -EINVAL);
}

static void test_parse_size(void **state)
{
        static const struct {
                const char *in;
                int r;
                uint64_t want;
        } cases[] = {
                {"0", 0, 0},
                {"10240000", 0, 10240000},
                {"1k", 0, 1024},
                {"1K", 0, 1024},
                {"10m", 0, 10485760},
                {"10M", 0, 10485760},
                {"2g", 0, 2147483648ULL},
                {"2G", 0, 2147483648ULL},
                {"9223372036854775807", 0, 9223372036854775807ULL},
                {"9223372036854775808", -ERANGE, 0},
                {"8589934592g", -ERANGE, 0},
                {"8589934591g", 0, 8589934591ULL << 30},
                {"99999999999999999999999", -ERANGE, 0},
                {"-1", -ERANGE, 0},
                {"", -EINVAL, 0},
                {"k", -EINVAL, 0},
                {"10kb", -EINVAL, 0},
                {"10t", -EINVAL, 0},
                {"1.5m", -EINVAL, 0},
                {"ten", -EINVAL, 0},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t v = 12345;
                int r = conf_parse_size(cases[i].in, &v);

                if (r != cases[i].r)
                        fail_msg("conf_parse_size(\"%s\"): got %d, want %d", cases[i].in, r, cases[i].r);
                if (r == 0 && v != cases[i].want)
                        fail_msg("conf_parse_size(\"%s\"): got %" PRIu64 ", want %" PRIu64, cases[i].in, v,
                                 cases[i].want);
                if (r < 0 && v != 12345)
                        fail_msg("conf_parse_size(\"%s\"): wrote *ret on failure", cases[i].in);
        }
}

static void test_parse_bool(void **state)
{
        static const struct {
                const char *in;
                int r;
                bool want;
        } cases[] = {
                {"yes", 0, true},          {"YES", 0, true},         {"Yes", 0, true},
                {"true", 0, true},         {"on", 0, true},          {"1", 0, true},
                {"no", 0, false},          {"NO", 0, false},         {"false", 0, false},
                {"off", 0, false},         {"0", 0, false},          {"", -EINVAL, false},
                {"y", -EINVAL, false},     {"yes ", -EINVAL, false}, {"2", -EINVAL, false},
                {"maybe", -EINVAL, false},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                bool v = !cases[i].want;
                int r = conf_parse_bool(cases[i].in, &v);

                if (r != cases[i].r)
                        fail_msg("conf_parse_bool(\"%s\"): got %d, want %d", cases[i].in, r, cases[i].r);
                if (r == 0 && v != cases[i].want)
                        fail_msg("conf_parse_bool(\"%s\"): got %d, want %d", cases[i].in, v, cases[i].want);
        }
}

/* ---- the table ---- */

static void test_table(void **state)
{
        size_t n;
        const ConfParam *p = conf_params(&n);
        _cleanup_conf_ Conf *c = NULL;
        char *err = NULL;

        assert_true(n >= 100);
        for (size_t i = 0; i < n; i++) {
                if (i > 0 && strcmp(p[i - 1].name, p[i].name) >= 0)
                        fail_msg("table not sorted: \"%s\" before \"%s\"", p[i - 1].name, p[i].name);
                if (conf_param_find(p[i].name) != &p[i])
                        fail_msg("conf_param_find(\"%s\"): got %p, want %p", p[i].name,
                                 (const void *)conf_param_find(p[i].name), (const void *)&p[i]);
                if (!p[i].default_value || isempty(p[i].readers) || isempty(p[i].summary))
                        fail_msg("%s: missing default, readers or summary", p[i].name);
                if (p[i].type == CONF_TIME && !strchr("smhdw", p[i].default_unit))
                        fail_msg("%s: default unit '%c', want one of s m h d w", p[i].name,
                                 p[i].default_unit);
                if (p[i].type != CONF_TIME && p[i].default_unit)
                        fail_msg("%s: default unit on a non-time parameter", p[i].name);
                if (p[i].max != 0 && p[i].max < p[i].min)
                        fail_msg("%s: max %" PRId64 " < min %" PRId64, p[i].name, p[i].max, p[i].min);

                /* every reader is a tern program */
                _cleanup_(freep) char *readers = strdup(p[i].readers);
                assert_non_null(readers);
                for (char *s = NULL, *w = strtok_r(readers, " ", &s); w; w = strtok_r(NULL, " ", &s)) {
                        bool known = false;
                        for (size_t k = 0; k < ELEMENTSOF(programs); k++)
                                known = known || streq(programs[k], w);
                        if (!known)
                                fail_msg("%s: reader \"%s\" is not a tern program", p[i].name, w);
                }
        }
        assert_null(conf_param_find("no_such_parameter"));
        assert_null(conf_param_find(NULL));
        assert_null(
                conf_param_find("smtp_destination_concurrency_limit")); /* per-transport, not in the table */

        /* every default is valid for its type (defaults only) */
        assert_int_equal(conf_load(NULL, "flush", &c, &err), 0);
        assert_null(err);
        assert_int_equal(conf_warnings(c, NULL), 0);
        for (size_t i = 0; i < n; i++) {
                if (!conf_is_default(c, p[i].name))
                        fail_msg("%s: conf_is_default: got false, want true", p[i].name);
                if (!streq(p[i].name, "myhostname") && !streq(p[i].name, "mydomain") &&
                    !streq(conf_get_raw(c, p[i].name), p[i].default_value))
                        fail_msg("%s: raw got \"%s\", want \"%s\"", p[i].name, conf_get_raw(c, p[i].name),
                                 p[i].default_value);
        }
}

/* the defaults the brief names, with Postfix's values and units */
static void test_defaults(void **state)
{
        static const struct {
                const char *name;
                const char *value; /* expanded, as text */
                int64_t seconds;   /* time parameters; -1: not a time */
        } cases[] = {
                {"queue_directory", "/var/spool/tern", -1},
                {"runtime_directory", "/run/tern", -1},
                {"syslog_name", "tern", -1},
                {"mail_owner", "tern", -1},
                {"max_idle", "100s", 100},
                {"max_use", "100", -1},
                {"daemon_timeout", "18000s", 18000},
                {"ipc_timeout", "3600s", 3600},
                {"default_transport", "smtp", -1},
                {"relay_transport", "relay", -1},
                {"hash_queue_names", "deferred, defer", -1},
                {"hash_queue_depth", "1", -1},
                {"fast_flush_domains", "", -1},
                {"fast_flush_refresh_time", "12h", 12 * 3600},
                {"fast_flush_purge_time", "7d", 7 * 86400},
                {"fast_flush_fallback", "yes", -1},
                {"qmgr_message_active_limit", "20000", -1},
                {"qmgr_message_recipient_limit", "20000", -1},
                {"qmgr_fudge_factor", "100", -1},
                {"initial_destination_concurrency", "5", -1},
                {"default_destination_concurrency_limit", "20", -1},
                {"default_destination_recipient_limit", "50", -1},
                {"default_destination_concurrency_positive_feedback", "1", -1},
                {"default_destination_concurrency_negative_feedback", "1", -1},
                {"default_destination_concurrency_failed_cohort_limit", "1", -1},
                {"minimal_backoff_time", "300s", 300},
                {"maximal_backoff_time", "4000s", 4000},
                {"queue_run_delay", "300s", 300},
                {"maximal_queue_lifetime", "5d", 5 * 86400},
                {"bounce_queue_lifetime", "5d", 5 * 86400},
                {"transport_retry_time", "60s", 60},
                {"qmgr_clog_warn_time", "300s", 300},
                {"delay_warning_time", "0h", 0},
                {"connection_cache_ttl_limit", "2s", 2},
                {"connection_cache_status_update_time", "600s", 600},
                {"connection_cache_protocol_timeout", "5s", 5},
                {"smtp_connect_timeout", "30s", 30},
                {"smtp_helo_timeout", "300s", 300},
                {"smtp_mail_timeout", "300s", 300},
                {"smtp_rcpt_timeout", "300s", 300},
                {"smtp_data_init_timeout", "120s", 120},
                {"smtp_data_xfer_timeout", "180s", 180},
                {"smtp_data_done_timeout", "600s", 600},
                {"smtp_quit_timeout", "300s", 300},
                {"smtp_mx_address_limit", "5", -1},
                {"smtp_mx_session_limit", "2", -1},
                {"smtp_connection_cache_on_demand", "yes", -1},
                {"smtp_connection_cache_time_limit", "2s", 2},
                {"smtp_connection_reuse_time_limit", "300s", 300},
                {"smtp_connection_reuse_count_limit", "0", -1},
                {"smtpd_timeout", "300s", 300},
                {"smtpd_hard_error_limit", "20", -1},
                {"smtpd_soft_error_limit", "10", -1},
                {"smtpd_recipient_limit", "1000", -1},
                {"smtpd_client_connection_count_limit", "50", -1},
                {"smtpd_etrn_restrictions", "", -1},
                {"smtpd_listen", "", -1},
                {"message_size_limit", "10240000", -1},
                {"notify_classes", "resource, software", -1},
                {"double_bounce_sender", "double-bounce", -1},
                {"relay_domains", "", -1},
                {"relayhost", "", -1},
        };
        _cleanup_conf_ Conf *c = must_load("defaults", "myhostname = mx.example.com\n", "qmgr");

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const char *got = conf_get_string(c, cases[i].name);
                if (!streq(got, cases[i].value))
                        fail_msg("%s: got \"%s\", want \"%s\"", cases[i].name, got, cases[i].value);
                if (cases[i].seconds >= 0 && conf_get_time(c, cases[i].name) != cases[i].seconds)
                        fail_msg("%s: got %" PRId64 "s, want %" PRId64 "s", cases[i].name,
                                 conf_get_time(c, cases[i].name), cases[i].seconds);
        }
        assert_int_equal(conf_get_size(c, "message_size_limit"), 10240000);
        assert_int_equal(conf_get_int(c, "max_use"), 100);
        assert_true(conf_get_bool(c, "fast_flush_fallback"));
        assert_false(conf_get_bool(c, "allow_min_user"));
        assert_string_equal(conf_get_string(c, "myorigin"), "mx.example.com");
        assert_string_equal(conf_get_string(c, "mydomain"), "example.com");
        assert_string_equal(conf_get_string(c, "smtp_helo_name"), "mx.example.com");
        assert_string_equal(conf_get_string(c, "smtpd_banner"), "mx.example.com ESMTP tern");
        assert_string_equal(conf_get_string(c, "mydestination"),
                            "mx.example.com, localhost.example.com, localhost");
        assert_string_equal(conf_get_raw(c, "myorigin"), "$myhostname");

        char *const *l = conf_get_list(c, "hash_queue_names");
        assert_non_null(l);
        assert_string_equal(l[0], "deferred");
        assert_string_equal(l[1], "defer");
        assert_null(l[2]);
        l = conf_get_list(c, "relay_domains");
        assert_non_null(l);
        assert_null(l[0]);
}

/* myhostname and mydomain defaults are computed as Postfix does */
static void test_hostname_defaults(void **state)
{
        static const struct {
                const char *text, *myhostname, *mydomain;
        } cases[] = {
                {"myhostname = a.b.example\n", "a.b.example", "b.example"},
                {"myhostname = host.example\n", "host.example", "localdomain"},
                {"myhostname = host\n", "host", "localdomain"},
                {"myhostname = host\nmydomain = example.org\n", "host", "example.org"},
                {"mydomain = example.org\nmyhostname = mx.$mydomain\n", "mx.example.org", "example.org"},
        };
        char h[HOST_NAME_MAX + 1] = "";

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_conf_ Conf *c = must_load(cases[i].text, cases[i].text, NULL);
                if (!streq(conf_get_string(c, "myhostname"), cases[i].myhostname) ||
                    !streq(conf_get_string(c, "mydomain"), cases[i].mydomain))
                        fail_msg("%s: got myhostname \"%s\" mydomain \"%s\", want \"%s\" \"%s\"",
                                 cases[i].text, conf_get_string(c, "myhostname"),
                                 conf_get_string(c, "mydomain"), cases[i].myhostname, cases[i].mydomain);
        }

        /* the system's name, with .localdomain or .$mydomain when it has no dot */
        assert_int_equal(gethostname(h, sizeof h - 1), 0);
        {
                _cleanup_conf_ Conf *c = must_load("system", "", NULL);
                _cleanup_conf_ Conf *d = must_load("system+mydomain", "mydomain = example.net\n", NULL);
                char want[2 * sizeof h + 32];

                snprintf(want, sizeof want, "%s%s", h, strchr(h, '.') ? "" : ".localdomain");
                assert_string_equal(conf_get_string(c, "myhostname"), want);
                assert_string_equal(conf_get_raw(c, "myhostname"), want);
                assert_true(conf_is_default(c, "myhostname"));
                snprintf(want, sizeof want, "%s%s", h, strchr(h, '.') ? "" : ".example.net");
                assert_string_equal(conf_get_string(d, "myhostname"), want);
        }
}

/* ---- loading: one table of texts with the error or the values they must give ---- */

typedef struct LoadCase {
        const char *what;
        const char *text;
        const char *program;
        int r;                /* 0 or the -errno */
        const char *error;    /* exact error text when r < 0 */
        const char *name[4];  /* when r == 0: parameters to check ... */
        const char *value[4]; /* ... and their expanded values */
} LoadCase;

static const LoadCase load_cases[] = {
        /* syntax */
        {"empty file", "", NULL, 0, NULL, {"max_idle"}, {"100s"}},
        {"comments and blanks",
         "# c\n\n   \n\t# indented comment\nmax_idle = 5\n",
         NULL,
         0,
         NULL,
         {"max_idle"},
         {"5"}},
        {"white space around =",
         "max_idle=5\nmax_use    =    7   \n",
         NULL,
         0,
         NULL,
         {"max_idle", "max_use"},
         {"5", "7"}},
        {"empty value", "relayhost =\n", NULL, 0, NULL, {"relayhost"}, {""}},
        {"= in value", "smtpd_banner = a=b\n", NULL, 0, NULL, {"smtpd_banner"}, {"a=b"}},
        {"# in value is literal", "smtpd_banner = a # b\n", NULL, 0, NULL, {"smtpd_banner"}, {"a # b"}},
        {"; in value is literal (no inline comments)",
         "smtpd_banner = a ; b;c\n",
         NULL,
         0,
         NULL,
         {"smtpd_banner"},
         {"a ; b;c"}},
        {"; in continuation", "smtpd_banner = a\n  ; b\n", NULL, 0, NULL, {"smtpd_banner"}, {"a ; b"}},
        {"CRLF", "max_idle = 5\r\nmax_use = 6\r\n", NULL, 0, NULL, {"max_idle", "max_use"}, {"5", "6"}},
        {"no final newline", "max_idle = 5", NULL, 0, NULL, {"max_idle"}, {"5"}},
        {"byte order mark", "\xEF\xBB\xBFmax_idle = 5\n", NULL, 0, NULL, {"max_idle"}, {"5"}},
        {"continuation", "relay_domains = a,\n  b,\n\tc\n", NULL, 0, NULL, {"relay_domains"}, {"a, b, c"}},
        {"continuation after comment and blank",
         "relay_domains = a\n# c\n\n  b\n",
         NULL,
         0,
         NULL,
         {"relay_domains"},
         {"a b"}},
        {"continuation of empty value", "relay_domains =\n  b\n", NULL, 0, NULL, {"relay_domains"}, {"b"}},
        {"continuation of a name longer than inih's buffer",
         "default_destination_concurrency_failed_cohort_limit =\n  3\n",
         NULL,
         0,
         NULL,
         {"default_destination_concurrency_failed_cohort_limit"},
         {"3"}},
        {"redefinition: last wins",
         "max_idle = 5\nmax_use = 1\nmax_idle = 6\n",
         NULL,
         0,
         NULL,
         {"max_idle"},
         {"6"}},
        {"redefinition is not a continuation",
         "relay_domains = a\n  b\nrelay_domains = c\n",
         NULL,
         0,
         NULL,
         {"relay_domains"},
         {"c"}},
        {"leading white space on the first line", "  max_idle = 5\n", NULL, -EINVAL,
         "main.cf:1: line starts with white space but there is no parameter to continue"},
        {"leading white space after a section", "[flush]\n  max_idle = 5\n", NULL, -EINVAL,
         "main.cf:2: line starts with white space but there is no parameter to continue"},
        {"no =", "max_idle\n", NULL, -EINVAL, "main.cf:1: expected \"name = value\""},
        {"; line is not a comment", "; comment\n", NULL, -EINVAL, "main.cf:1: expected \"name = value\""},
        {"colon separator", "max_idle: 5\n", NULL, -EINVAL,
         "main.cf:1: expected \"name = value\" (\":\" does not separate a name)"},
        {"colon and =", "max_idle: 5 = 6\n", NULL, -EINVAL,
         "main.cf:1: expected \"name = value\" (\":\" does not separate a name)"},
        {"colon after = is fine", "relayhost = [h]:25\n", NULL, 0, NULL, {"relayhost"}, {"[h]:25"}},
        {"empty name", "= 5\n", NULL, -EINVAL, "main.cf:1: missing parameter name before \"=\""},
        {"bad name", "max idle = 5\n", NULL, -EINVAL, "main.cf:1: invalid parameter name \"max idle\""},
        {"bad name with ;", "max;idle = 5\n", NULL, -EINVAL,
         "main.cf:1: invalid parameter name \"max;idle\""},
        {"control character", "max_idle = 5\nmax_use = \x02\n", NULL, -EINVAL,
         "main.cf:2: control character 0x02 in line"},
        {"CR inside a line", "max_use = 1\rx\n", NULL, -EINVAL, "main.cf:1: control character 0x0d in line"},
        {"section without ]", "[flush\n", NULL, -EINVAL, "main.cf:1: missing \"]\" in section header"},
        {"text after section", "[flush] x\n", NULL, -EINVAL, "main.cf:1: text after section header"},
        {"empty section", "[]\n", NULL, -EINVAL, "main.cf:1: empty section name"},
        {"bad section name", "[fl ush]\n", NULL, -EINVAL, "main.cf:1: invalid section name \"[fl ush]\""},
        {"section with trailing blanks",
         "[flush]  \t\nmax_idle = 5\n",
         "flush",
         0,
         NULL,
         {"max_idle"},
         {"5"}},
        /* error line numbers */
        {"line number after continuation lines", "relay_domains = a\n  b\n  c\nmax_idle = ten\n", NULL,
         -EINVAL,
         "main.cf:4: parameter max_idle: invalid time value \"ten\" (a number with an optional unit s, m, "
         "h, d or w; "
         "default unit s)"},
        {"line number of a continued bad value", "max_use = 1\nmax_idle = 10\n  s\n", NULL, -EINVAL,
         "main.cf:2: parameter max_idle: invalid time value \"10 s\" (a number with an optional unit s, m, "
         "h, d or "
         "w; default unit s)"},
        {"line number of the last definition", "max_idle = 5\nmax_idle = x\n", NULL, -EINVAL,
         "main.cf:2: parameter max_idle: invalid time value \"x\" (a number with an optional unit s, m, h, "
         "d or w; "
         "default unit s)"},
        {"line number after comments", "# a\n# b\n\nmax_use = -1\n", NULL, -EINVAL,
         "main.cf:4: parameter max_use: integer value \"-1\" out of range (at least 1)"},
        /* types */
        {"time units",
         "max_idle = 2m\nmaximal_queue_lifetime = 2\nfast_flush_refresh_time = 3\n"
         "minimal_backoff_time = 1w\n",
         NULL,
         0,
         NULL,
         {"max_idle", "maximal_queue_lifetime", "fast_flush_refresh_time", "minimal_backoff_time"},
         {"2m", "2", "3", "1w"}},
        {"upper-case unit", "max_idle = 5M\n", NULL, -EINVAL,
         "main.cf:1: parameter max_idle: invalid time value \"5M\" (a number with an optional unit s, m, h, "
         "d or w; "
         "default unit s)"},
        {"negative time", "max_idle = -5s\n", NULL, -EINVAL,
         "main.cf:1: parameter max_idle: time value \"-5s\" must not be negative"},
        {"time overflow", "max_idle = 99999999999999999999w\n", NULL, -EINVAL,
         "main.cf:1: parameter max_idle: time value \"99999999999999999999w\" out of range (at least 1s)"},
        {"time too big for an int", "max_idle = 24856d\n", NULL, -EINVAL,
         "main.cf:1: parameter max_idle: time value \"24856d\" out of range (at least 1s)"},
        {"time below minimum", "max_idle = 0\n", NULL, -EINVAL,
         "main.cf:1: parameter max_idle: time value \"0\" out of range (at least 1s)"},
        {"time zero allowed", "delay_warning_time = 0\n", NULL, 0, NULL, {"delay_warning_time"}, {"0"}},
        {"integer range", "qmgr_fudge_factor = 5\n", NULL, -EINVAL,
         "main.cf:1: parameter qmgr_fudge_factor: integer value \"5\" out of range (between 10 and 100)"},
        {"integer overflow", "max_use = 99999999999999999999\n", NULL, -EINVAL,
         "main.cf:1: parameter max_use: integer value \"99999999999999999999\" out of range (at least 1)"},
        {"integer past int", "max_use = 2147483648\n", NULL, -EINVAL,
         "main.cf:1: parameter max_use: integer value \"2147483648\" out of range (at least 1)"},
        {"integer junk", "max_use = 10x\n", NULL, -EINVAL,
         "main.cf:1: parameter max_use: invalid integer value \"10x\""},
        {"size suffix", "message_size_limit = 10m\n", NULL, 0, NULL, {"message_size_limit"}, {"10m"}},
        {"bad size", "message_size_limit = 10 MB\n", NULL, -EINVAL,
         "main.cf:1: parameter message_size_limit: invalid size value \"10 MB\" (bytes, optional suffix k, "
         "m or g)"},
        {"negative size", "message_size_limit = -1\n", NULL, -EINVAL,
         "main.cf:1: parameter message_size_limit: size value \"-1\" must not be negative"},
        {"bool", "fast_flush_fallback = no\n", NULL, 0, NULL, {"fast_flush_fallback"}, {"no"}},
        {"bad bool", "fast_flush_fallback = maybe\n", NULL, -EINVAL,
         "main.cf:1: parameter fast_flush_fallback: invalid boolean value \"maybe\" (yes or no)"},
        {"feedback",
         "default_destination_concurrency_positive_feedback = 1/concurrency\n"
         "default_destination_concurrency_negative_feedback = 1 / 8\n",
         NULL,
         0,
         NULL,
         {"default_destination_concurrency_positive_feedback"},
         {"1/concurrency"}},
        {"bad feedback", "default_destination_concurrency_negative_feedback = 2\n", NULL, -EINVAL,
         "main.cf:1: parameter default_destination_concurrency_negative_feedback: invalid feedback value "
         "\"2\" "
         "(x, x/y or x/concurrency, 0..1)"},
        {"bare newline enum", "smtpd_forbid_bare_newline = sometimes\n", NULL, -EINVAL,
         "main.cf:1: parameter smtpd_forbid_bare_newline: invalid value \"sometimes\" (normalize, yes, "
         "reject or no)"},
        {"long bad value is quoted short",
         "max_idle = 0123456789012345678901234567890123456789012345678901234567890123456789x\n", NULL,
         -EINVAL,
         "main.cf:1: parameter max_idle: invalid time value "
         "\"0123456789012345678901234567890123456789012345678901234567890123...\" (a number with an "
         "optional unit "
         "s, m, h, d or w; default unit s)"},
        /* expansion */
        {"$name",
         "relay_domains = a.example\nfast_flush_domains = $relay_domains, b\n",
         NULL,
         0,
         NULL,
         {"fast_flush_domains"},
         {"a.example, b"}},
        {"${name} and $(name)",
         "mail_name = X\nsmtpd_banner = ${mail_name}1 $(mail_name)2\n",
         NULL,
         0,
         NULL,
         {"smtpd_banner"},
         {"X1 X2"}},
        {"default referenced", "smtpd_banner = $max_idle\n", NULL, 0, NULL, {"smtpd_banner"}, {"100s"}},
        {"default of a default", "relay_domains = r\n", NULL, 0, NULL, {"fast_flush_domains"}, {"r"}},
        {"$$", "smtpd_banner = a$$b $$mail_name\n", NULL, 0, NULL, {"smtpd_banner"}, {"a$b $mail_name"}},
        {"undefined expands to nothing",
         "smtpd_banner = [$no_such]\n",
         NULL,
         0,
         NULL,
         {"smtpd_banner"},
         {"[]"}},
        {"later definition is seen",
         "smtpd_banner = $foo\nfoo = bar\n",
         NULL,
         0,
         NULL,
         {"smtpd_banner"},
         {"bar"}},
        {"expansion is type-checked", "max_idle = $foo\nfoo = ten\n", NULL, -EINVAL,
         "main.cf:1: parameter max_idle: invalid time value \"ten\" (a number with an optional unit s, m, "
         "h, d or w; "
         "default unit s)"},
        {"expansion gives a good time",
         "foo = 7\nmax_idle = ${foo}m\n",
         NULL,
         0,
         NULL,
         {"max_idle"},
         {"7m"}},
        {"${name?text}",
         "a = x\nsmtpd_banner = [${a?yes}][${no_such?yes}][${relayhost?yes}]\n",
         NULL,
         0,
         NULL,
         {"smtpd_banner"},
         {"[yes][][]"}},
        {"${name:text}",
         "a = x\nsmtpd_banner = [${a:no}][${no_such:no}][${relayhost:no}]\n",
         NULL,
         0,
         NULL,
         {"smtpd_banner"},
         {"[][no][no]"}},
        {"${name?{a}:{b}}",
         "a = x\nsmtpd_banner = ${a?{A $a}:{B}} ${no_such?{A}:{B $mail_name}}\n",
         NULL,
         0,
         NULL,
         {"smtpd_banner"},
         {"A x B tern"}},
        {"${name?{a}}", "a = x\nsmtpd_banner = ${a?{y}}${a:{z}}\n", NULL, 0, NULL, {"smtpd_banner"}, {"y"}},
        {"nested conditionals",
         "a = x\nsmtpd_banner = ${a?${b:${a}-}}\n",
         NULL,
         0,
         NULL,
         {"smtpd_banner"},
         {"x-"}},
        {"direct loop", "relay_domains = $relay_domains\n", NULL, -ELOOP,
         "main.cf:1: parameter relay_domains: loop in $name expansion: $relay_domains -> $relay_domains"},
        {"indirect loop through a default", "relay_domains = $fast_flush_domains\n", NULL, -ELOOP,
         "main.cf:1: parameter relay_domains: loop in $name expansion: $relay_domains -> "
         "$fast_flush_domains -> "
         "$relay_domains"},
        {"indirect loop through unknown names", "a = $b\nb = ${a}\nmax_use = $a\n", NULL, -ELOOP,
         "main.cf:3: parameter max_use: loop in $name expansion: $a -> $b -> $a"},
        {"loop in a conditional", "relayhost = ${relayhost?x}\n", NULL, -ELOOP,
         "main.cf:1: parameter relayhost: loop in $name expansion: $relayhost -> $relayhost"},
        {"loop through myhostname's default", "mydomain = $myhostname\n", NULL, -ELOOP, NULL},
        {"$ at end", "smtpd_banner = a$\n", NULL, -EINVAL,
         "main.cf:1: parameter smtpd_banner: \"$\" at the end of the value (write $$ for a literal $)"},
        {"$ before blank", "smtpd_banner = 5$ each\n", NULL, -EINVAL,
         "main.cf:1: parameter smtpd_banner: \"$\" must be followed by a name, \"{\", \"(\" or \"$\" (write "
         "$$ for "
         "a literal $)"},
        {"unclosed ${", "smtpd_banner = ${mail_name\n", NULL, -EINVAL,
         "main.cf:1: parameter smtpd_banner: missing \"}\" after \"${\""},
        {"empty ${}", "smtpd_banner = ${}\n", NULL, -EINVAL,
         "main.cf:1: parameter smtpd_banner: missing name after \"${\" or \"$(\""},
        {"bad ${x!y}", "smtpd_banner = ${a!b}\n", NULL, -EINVAL,
         "main.cf:1: parameter smtpd_banner: unexpected \"!\" after ${a"},
        {"syntax error reported where it is", "smtpd_banner = $a\na = ${b\n", NULL, -EINVAL,
         "main.cf:2: parameter a: missing \"}\" after \"${\""},
        /* per-transport parameters */
        {"transport override",
         "smtp_destination_concurrency_limit = 10\nrelay_destination_rate_delay = 1m\n",
         NULL,
         0,
         NULL,
         {"default_destination_concurrency_limit"},
         {"20"}},
        {"bad transport override", "smtp_destination_concurrency_limit = many\n", NULL, -EINVAL,
         "main.cf:1: parameter smtp_destination_concurrency_limit: invalid integer value \"many\""},
        {"bad transport override feedback", "smtp_destination_concurrency_positive_feedback = 1/x\n", NULL,
         -EINVAL,
         "main.cf:1: parameter smtp_destination_concurrency_positive_feedback: invalid feedback value "
         "\"1/x\" (x, x/y or x/concurrency, 0..1)"},
        {"unset transport override expands to default",
         "smtpd_banner = $lmtp_destination_recipient_limit\n",
         NULL,
         0,
         NULL,
         {"smtpd_banner"},
         {"50"}},
        /* sections */
        {"section applies", "max_idle = 5\n[flush]\nmax_idle = 6\n", "flush", 0, NULL, {"max_idle"}, {"6"}},
        {"section does not apply",
         "max_idle = 5\n[flush]\nmax_idle = 6\n",
         "qmgr",
         0,
         NULL,
         {"max_idle"},
         {"5"}},
        {"no program: global", "max_idle = 5\n[flush]\nmax_idle = 6\n", NULL, 0, NULL, {"max_idle"}, {"5"}},
        {"section merged",
         "[flush]\nmax_idle = 6\n[qmgr]\nmax_use = 2\n[flush]\nmax_use = 3\n",
         "flush",
         0,
         NULL,
         {"max_idle", "max_use"},
         {"6", "3"}},
        {"expansion sees the section",
         "myhostname = g.example\n[smtpd]\nmyhostname = s.example\n",
         "smtpd",
         0,
         NULL,
         {"smtpd_banner", "myorigin"},
         {"s.example ESMTP tern", "s.example"}},
        {"expansion outside the section",
         "myhostname = g.example\n[smtpd]\nmyhostname = s.example\n",
         "flush",
         0,
         NULL,
         {"smtpd_banner"},
         {"g.example ESMTP tern"}},
        {"section value checked for other programs", "[smtpd]\nsmtpd_timeout = ten\n", "flush", -EINVAL,
         "main.cf:2: parameter smtpd_timeout: invalid time value \"ten\" (a number with an optional unit s, "
         "m, h, d "
         "or w; default unit s)"},
        {"global value bad only in a section", "t = 5\nmax_idle = $t\n[flush]\nt = ten\n", "qmgr", -EINVAL,
         "main.cf:2: parameter max_idle: invalid time value \"ten\" (a number with an optional unit s, m, "
         "h, d or w; "
         "default unit s) (in [flush])"},
        {"unknown section values checked", "[nosuch]\nmax_use = x\n", NULL, -EINVAL,
         "main.cf:2: parameter max_use: invalid integer value \"x\""},
        {"unknown section applies to its program",
         "[nosuch]\nmax_use = 7\n",
         "nosuch",
         0,
         NULL,
         {"max_use"},
         {"7"}},
        {"continuation in a section",
         "[flush]\nrelay_domains = a\n  b\n",
         "flush",
         0,
         NULL,
         {"relay_domains"},
         {"a b"}},
        {"section ends a continuation", "relay_domains = a\n[flush]\n  b\n", NULL, -EINVAL,
         "main.cf:3: line starts with white space but there is no parameter to continue"},
        /* [transport] */
        {"empty transport value", "[transport]\nexample.com =\n", NULL, -EINVAL,
         "main.cf:2: [transport] example.com: empty value (want transport:nexthop)"},
        {"bad transport name", "[transport]\nexample.com = sm tp:x\n", NULL, -EINVAL,
         "main.cf:2: [transport] example.com: invalid transport name \"sm tp\""},
        {"white space in nexthop", "[transport]\nexample.com = smtp:a b\n", NULL, -EINVAL,
         "main.cf:2: [transport] example.com: white space in nexthop \"a b\""},
        {"unbalanced [", "[transport]\nexample.com = smtp:[a:25\n", NULL, -EINVAL,
         "main.cf:2: [transport] example.com: invalid nexthop \"[a:25\" (want [host] or [host]:port)"},
        {"bad pattern", "[transport]\nexa mple.com = smtp:\n", NULL, -EINVAL,
         "main.cf:2: invalid [transport] pattern \"exa mple.com\""},
        {"bad pattern .", "[transport]\n. = smtp:\n", NULL, -EINVAL,
         "main.cf:2: invalid [transport] pattern \".\""},
};

static void check_load_case(const LoadCase *t)
{
        Conf *c = (Conf *)0x1;
        char *err = NULL;
        int r = load(t->text, t->program, &c, &err);

        if (r != t->r)
                fail_msg("%s: got %d (%s), want %d (%s)", t->what, r, strna(err), t->r, strna(t->error));
        if (r < 0) {
                if (c != (Conf *)0x1)
                        fail_msg("%s: *ret written on failure", t->what);
                if (!err)
                        fail_msg("%s: no error text", t->what);
                if (t->error && !streq(err, t->error))
                        fail_msg("%s: error\n got: %s\nwant: %s", t->what, err, t->error);
                free(err);
                return;
        }
        if (err)
                fail_msg("%s: error text on success: %s", t->what, err);
        for (size_t i = 0; i < ELEMENTSOF(t->name) && t->name[i]; i++) {
                const char *got = conf_get_string(c, t->name[i]);
                if (!streq(got, t->value[i]))
                        fail_msg("%s: %s: got \"%s\", want \"%s\"", t->what, t->name[i], got, t->value[i]);
        }
        conf_free(c);
}

static void test_load_cases(void **state)
{
        for (size_t i = 0; i < ELEMENTSOF(load_cases); i++)
                check_load_case(&load_cases[i]);
}

/* inih's line buffer: a line of exactly LINE_MAX_BYTES loads, one byte more is refused */
static void test_line_limit(void **state)
{
        static const struct {
                const char *what;
                const char *prefix; /* lines before the long one */
                const char *start;  /* the long line's start; padded with 'a' to LEN bytes */
                int extra;          /* LEN = LINE_MAX_BYTES + extra */
                const char *eol;
                int r;
                unsigned line;
        } cases[] = {
                {"value at the limit", "", "smtpd_banner = ", 0, "\n", 0, 0},
                {"value one over", "", "smtpd_banner = ", 1, "\n", -E2BIG, 1},
                {"value far over", "", "smtpd_banner = ", 500, "\n", -E2BIG, 1},
                {"CRLF at the limit", "", "smtpd_banner = ", 0, "\r\n", 0, 0},
                {"CRLF one over", "", "smtpd_banner = ", 1, "\r\n", -E2BIG, 1},
                {"last line without newline at the limit", "", "smtpd_banner = ", 0, "", 0, 0},
                {"last line without newline one over", "", "smtpd_banner = ", 1, "", -E2BIG, 1},
                {"continuation at the limit", "smtpd_banner = x\n", "  ", 0, "\n", 0, 0},
                {"continuation one over", "smtpd_banner = x\n", "  ", 1, "\n", -E2BIG, 2},
                {"comment one over", "# a\n\n", "#", 1, "\n", -E2BIG, 3},
                {"after continuation lines", "relay_domains = a\n  b\n  c\n", "smtpd_banner = ", 1, "\n",
                 -E2BIG, 4},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                size_t len = (size_t)(LINE_MAX_BYTES + cases[i].extra);
                size_t pl = strlen(cases[i].prefix), sl = strlen(cases[i].start), el = strlen(cases[i].eol);
                _cleanup_(freep) char *text = malloc(pl + len + el + 32);
                _cleanup_(freep) char *err = NULL;
                _cleanup_conf_ Conf *c = NULL;
                char want[128];
                int r;

                assert_non_null(text);
                memcpy(text, cases[i].prefix, pl);
                memcpy(text + pl, cases[i].start, sl);
                memset(text + pl + sl, 'a', len - sl);
                strcpy(text + pl + len, cases[i].eol);
                if (*cases[i].eol)
                        strcat(text, "max_use = 7\n");

                r = load(text, NULL, &c, &err);
                if (r != cases[i].r)
                        fail_msg("%s: got %d (%s), want %d", cases[i].what, r, strna(err), cases[i].r);
                if (r < 0) {
                        snprintf(want, sizeof want,
                                 "main.cf:%u: line too long (max %d bytes); use continuation lines",
                                 cases[i].line, LINE_MAX_BYTES);
                        if (!err || !streq(err, want))
                                fail_msg("%s: got \"%s\", want \"%s\"", cases[i].what, strna(err), want);
                        continue;
                }
                if (strneq(cases[i].start, "smtpd_banner", 12)) {
                        size_t got = strlen(conf_get_string(c, "smtpd_banner"));
                        if (got != len - sl)
                                fail_msg("%s: value length got %zu, want %zu (inih cut it?)", cases[i].what,
                                         got, len - sl);
                }
                if (!*cases[i].eol)
                        continue; /* "max_use" was glued to the long line */
                if (conf_get_int(c, "max_use") != 7)
                        fail_msg("%s: max_use got %" PRId64 ", want 7 (the rest of a cut line?)",
                                 cases[i].what, conf_get_int(c, "max_use"));
        }
}

/* a NUL byte in the middle of the text is refused with its line (conf_load_string takes a length) */
static void test_nul_byte(void **state)
{
        static const char text[] = "max_idle = 5\nmax_use = 1\0 2\n";
        _cleanup_(freep) char *err = NULL;
        Conf *c = NULL;

        assert_int_equal(conf_load_string(text, sizeof text - 1, "f", NULL, &c, &err), -EINVAL);
        assert_null(c);
        assert_string_equal(err, "f:2: NUL byte in line");
}

/* a joined value and an expanded value are bounded */
static void test_value_limits(void **state)
{
        _cleanup_(freep) char *text = NULL, *err = NULL;
        Conf *c = NULL;
        size_t n = 0, cap = 1024 * 1024;
        char line[200];

        /* continuation lines past CONF_VALUE_MAX (65536) */
        text = malloc(cap);
        assert_non_null(text);
        n += (size_t)sprintf(text, "relay_domains = a\n");
        memset(line, 'b', 100);
        line[0] = ' ';
        line[100] = '\n';
        line[101] = 0;
        for (int i = 0; i < 700; i++)
                n += (size_t)sprintf(text + n, "%s", line);
        assert_int_equal(conf_load_string(text, n, "main.cf", NULL, &c, &err), -E2BIG);
        assert_null(c);
        assert_non_null(err);
        assert_non_null(strstr(err, "parameter relay_domains: value too long (max 65536 bytes)"));
        free(TAKE_PTR(err));

        /* exponential expansion ("billion laughs") stops at the limit */
        n = (size_t)sprintf(text, "a0 = xxxxxxxxxxxxxxxx\n");
        for (int i = 1; i < 30; i++)
                n += (size_t)sprintf(text + n, "a%d = $a%d$a%d$a%d$a%d\n", i, i - 1, i - 1, i - 1, i - 1);
        n += (size_t)sprintf(text + n, "smtpd_banner = $a29\n");
        assert_int_equal(conf_load_string(text, n, "main.cf", NULL, &c, &err), -E2BIG);
        assert_null(c);
        assert_non_null(err);
        assert_non_null(strstr(err, "expanded value too long (max 65536 bytes)"));
        free(TAKE_PTR(err));

        /* deep nesting stops at the depth limit */
        n = (size_t)sprintf(text, "a0 = x\n");
        for (int i = 1; i < 150; i++)
                n += (size_t)sprintf(text + n, "a%d = $a%d\n", i, i - 1);
        n += (size_t)sprintf(text + n, "smtpd_banner = $a149\n");
        assert_int_equal(conf_load_string(text, n, "main.cf", NULL, &c, &err), -ELOOP);
        assert_null(c);
        assert_non_null(strstr(err, "nested too deeply"));
        free(TAKE_PTR(err));

        /* ... and 90 levels are fine */
        n = (size_t)sprintf(text, "a0 = x\n");
        for (int i = 1; i < 90; i++)
                n += (size_t)sprintf(text + n, "a%d = $a%d\n", i, i - 1);
        n += (size_t)sprintf(text + n, "smtpd_banner = $a89\n");
        assert_int_equal(conf_load_string(text, n, "main.cf", NULL, &c, &err), 0);
        assert_string_equal(conf_get_string(c, "smtpd_banner"), "x");
        c = conf_free(c);
}

static void test_warnings_and_unknown(void **state)
{
        static const char text[] = "foo_bar = 1 ; 2\n"
                                   "max_idle = 5\n"
                                   "smtpd_banner = $nothing_here\n"
                                   "smtp_destination_concurrency_limit = 3\n"
                                   "[nosuch]\n"
                                   "baz = $foo_bar\n"
                                   "[flush]\n"
                                   "qux = 2\n"
                                   "foo_bar = 9\n";
        const char *const *w, *const *names, *const *values;
        _cleanup_conf_ Conf *c = must_load("warnings", text, "flush");
        size_t n;

        n = conf_warnings(c, &w);
        static const char *const want[] = {
                "main.cf:1: unknown parameter foo_bar",
                "main.cf:3: parameter smtpd_banner: undefined parameter $nothing_here expands to nothing",
                "main.cf:5: unknown section [nosuch]",
                "main.cf:6: unknown parameter baz",
                "main.cf:8: unknown parameter qux",
                "main.cf:9: unknown parameter foo_bar",
        };
        if (n != ELEMENTSOF(want)) {
                for (size_t i = 0; i < n; i++)
                        print_message("warning: %s\n", w[i]);
                fail_msg("warnings: got %zu, want %zu", n, ELEMENTSOF(want));
        }
        for (size_t i = 0; i < n; i++)
                if (!streq(w[i], want[i]))
                        fail_msg("warning %zu: got \"%s\", want \"%s\"", i, w[i], want[i]);

        /* unknown names as the program sees them: global, then its section's, raw */
        n = conf_unknown(c, &names, &values);
        assert_int_equal(n, 2);
        assert_string_equal(names[0], "foo_bar");
        assert_string_equal(values[0], "9");
        assert_string_equal(names[1], "qux");
        assert_string_equal(values[1], "2");

        assert_false(conf_is_default(c, "max_idle"));
        assert_true(conf_is_default(c, "max_use"));
        assert_string_equal(conf_get_raw(c, "smtpd_banner"), "$nothing_here");
        assert_string_equal(conf_get_string(c, "smtpd_banner"), "");
}

static void test_transport_overrides(void **state)
{
        static const char text[] =
                "smtp_destination_concurrency_limit = 10\n"
                "relay_destination_recipient_limit = $smtp_destination_concurrency_limit\n"
                "smtp-x_initial_destination_concurrency = 2\n"
                "relay_destination_rate_delay = 2m\n"
                "relay_destination_concurrency_positive_feedback = 1/concurrency\n"
                "relay_transport_rate_delay = 3\n"
                "[qmgr]\n"
                "smtp_destination_concurrency_limit = 4\n";
        _cleanup_conf_ Conf *g = must_load("overrides", text, NULL);
        _cleanup_conf_ Conf *q = must_load("overrides", text, "qmgr");
        const char *s = NULL;
        int64_t v = -1;

        assert_int_equal(conf_warnings(g, NULL), 0);
        assert_int_equal(conf_unknown(g, NULL, NULL), 0);
        assert_int_equal(conf_get_transport_int(g, "smtp", "destination_concurrency_limit", &v), 0);
        assert_int_equal(v, 10);
        assert_int_equal(conf_get_transport_int(q, "smtp", "destination_concurrency_limit", &v), 0);
        assert_int_equal(v, 4);
        /* expansion in [qmgr] sees the section's value */
        assert_int_equal(conf_get_transport_int(q, "relay", "destination_recipient_limit", &v), 0);
        assert_int_equal(v, 4);
        assert_int_equal(conf_get_transport_int(g, "relay", "destination_recipient_limit", &v), 0);
        assert_int_equal(v, 10);
        assert_int_equal(conf_get_transport_int(g, "smtp-x", "initial_destination_concurrency", &v), 0);
        assert_int_equal(v, 2);
        assert_int_equal(conf_get_transport_time(g, "relay", "destination_rate_delay", &v), 0);
        assert_int_equal(v, 120);
        assert_int_equal(conf_get_transport_time(g, "relay", "transport_rate_delay", &v), 0);
        assert_int_equal(v, 3);
        assert_int_equal(
                conf_get_transport_string(g, "relay", "destination_concurrency_positive_feedback", &s), 0);
        assert_string_equal(s, "1/concurrency");

        v = -7;
        assert_int_equal(conf_get_transport_int(g, "lmtp", "destination_concurrency_limit", &v), -ENOENT);
        assert_int_equal(conf_get_transport_int(g, "smt", "destination_concurrency_limit", &v), -ENOENT);
        assert_int_equal(conf_get_transport_int(g, "smtp", "no_such_suffix", &v), -EINVAL);
        assert_int_equal(conf_get_transport_int(g, "smtp", "destination_rate_delay", &v), -EINVAL);
        assert_int_equal(conf_get_transport_time(g, "smtp", "destination_concurrency_limit", &v), -EINVAL);
        assert_int_equal(conf_get_transport_int(g, "", "destination_concurrency_limit", &v), -EINVAL);
        assert_int_equal(v, -7);
}

static void test_transport_table(void **state)
{
        static const char text[] = "default_transport = smtp\n"
                                   "[transport]\n"
                                   "Example.COM = smtp:[127.0.0.1]:2525\n"
                                   ".example.org = relay:\n"
                                   "local.example = :[mx.example.net]\n"
                                   "bad.example = error:5.1.1 no such domain: gone ; really\n"
                                   "slow.example = retry:4.3.0 try\n"
                                   "  later\n"
                                   "plain.example = discard\n"
                                   "user@x.example = smtp:[::1]:25\n"
                                   "* = :\n"
                                   "[flush]\n"
                                   "max_idle = 5\n"
                                   "[transport]\n"
                                   "example.com = lmtp:unix\n";
        static const struct {
                const char *pattern, *transport, *nexthop;
                unsigned line;
        } want[] = {
                {"example.com", "lmtp", "unix", 15},
                {".example.org", "relay", "", 4},
                {"local.example", "", "[mx.example.net]", 5},
                {"bad.example", "error", "5.1.1 no such domain: gone ; really", 6},
                {"slow.example", "retry", "4.3.0 try later", 7},
                {"plain.example", "discard", "", 9},
                {"user@x.example", "smtp", "[::1]:25", 10},
                {"*", "", "", 11},
        };
        _cleanup_conf_ Conf *c = must_load("transport", text, "qmgr");
        const ConfTransportEntry *t;
        size_t n = conf_transport(c, &t);

        if (n != ELEMENTSOF(want))
                fail_msg("entries: got %zu, want %zu", n, ELEMENTSOF(want));
        for (size_t i = 0; i < n; i++)
                if (!streq(t[i].pattern, want[i].pattern) || !streq(t[i].transport, want[i].transport) ||
                    !streq(t[i].nexthop, want[i].nexthop) || t[i].line != want[i].line)
                        fail_msg("entry %zu: got %s = \"%s\" : \"%s\" (line %u), want %s = \"%s\" : \"%s\" "
                                 "(line %u)",
                                 i, t[i].pattern, t[i].transport, t[i].nexthop, t[i].line, want[i].pattern,
                                 want[i].transport, want[i].nexthop, want[i].line);
        assert_true(has_warning(c, "main.cf:15: [transport] pattern example.com redefined (line 3)"));
        assert_false(has_warning(c, "unknown"));
        /* [transport] keys are not parameters, and ${} is not expanded there */
        assert_int_equal(conf_unknown(c, NULL, NULL), 0);

        _cleanup_conf_ Conf *e = must_load("empty", "", NULL);
        assert_int_equal(conf_transport(e, &t), 0);

        /* a key longer than inih's name buffer (50) still gets its continuation lines */
        _cleanup_conf_ Conf *l =
                must_load("long key",
                          "[transport]\n"
                          "some.very.long.customer.domain.name.example.com.with.more.labels = error:5.1.1\n"
                          "  gone away\n",
                          NULL);
        assert_int_equal(conf_transport(l, &t), 1);
        assert_string_equal(t[0].pattern,
                            "some.very.long.customer.domain.name.example.com.with.more.labels");
        assert_string_equal(t[0].nexthop, "5.1.1 gone away");
}

/* conf_load on real files */
static void test_load_file(void **state)
{
        char dir[] = "/tmp/test-conf-XXXXXX", path[PATH_MAX];
        _cleanup_(freep) char *err = NULL;
        Conf *c = (Conf *)0x1;
        FILE *f;

        assert_int_equal(conf_load("/nonexistent/tern/main.cf", NULL, &c, &err), -ENOENT);
        assert_ptr_equal(c, (Conf *)0x1);
        assert_string_equal(err, "/nonexistent/tern/main.cf: No such file or directory");
        free(TAKE_PTR(err));

        assert_non_null(mkdtemp(dir));
        assert_int_equal(conf_load(dir, NULL, &c, &err), -EISDIR);
        assert_non_null(err);
        free(TAKE_PTR(err));

        snprintf(path, sizeof path, "%s/main.cf", dir);
        f = fopen(path, "we");
        assert_non_null(f);
        fputs("max_idle = 5\n[flush]\nmax_idle = ten\n", f);
        fclose(f);
        assert_int_equal(conf_load(path, "qmgr", &c, &err), -EINVAL);
        {
                char want[PATH_MAX + 200];
                snprintf(want, sizeof want,
                         "%s:3: parameter max_idle: invalid time value \"ten\" (a number with an optional "
                         "unit s, m, "
                         "h, d or w; default unit s)",
                         path);
                assert_string_equal(err, want);
        }
        free(TAKE_PTR(err));

        f = fopen(path, "we");
        assert_non_null(f);
        fputs("max_idle = 5\n[flush]\nmax_idle = 7\n", f);
        fclose(f);
        assert_int_equal(conf_load(path, "flush", &c, &err), 0);
        assert_null(err);
        assert_int_equal(conf_get_time(c, "max_idle"), 7);
        c = conf_free(c);

        /* an empty file: all defaults */
        f = fopen(path, "we");
        assert_non_null(f);
        fclose(f);
        assert_int_equal(conf_load(path, "flush", &c, NULL), 0);
        assert_true(conf_is_default(c, "max_idle"));
        c = conf_free(c);

        /* errors without ret_error */
        assert_int_equal(conf_load("/nonexistent", NULL, &c, NULL), -ENOENT);
        assert_int_equal(load("max_idle = x\n", NULL, &c, NULL), -EINVAL);
        assert_null(conf_free(NULL));

        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(dir), 0);
}

static void test_conf_path(void **state)
{
        assert_int_equal(unsetenv("TERN_CONFIG"), 0);
        assert_string_equal(conf_path("/x/main.cf"), "/x/main.cf");
        assert_string_equal(conf_path(NULL), TERN_CONFIG_FILE);
        assert_string_equal(conf_path(""), TERN_CONFIG_FILE);
        assert_int_equal(setenv("TERN_CONFIG", "/env/main.cf", 1), 0);
        assert_string_equal(conf_path(NULL), "/env/main.cf");
        assert_string_equal(conf_path("/x/main.cf"), "/x/main.cf");
        assert_int_equal(setenv("TERN_CONFIG", "", 1), 0);
        assert_string_equal(conf_path(NULL), TERN_CONFIG_FILE);
        assert_int_equal(unsetenv("TERN_CONFIG"), 0);
}

/* ---- the shipped files against the table ---- */

/* conf/main.cf loads cleanly for every program: no warnings, everything at its default */
static void test_shipped_main_cf(void **state)
{
        char path[PATH_MAX];
        size_t n;
        const ConfParam *p = conf_params(&n);

        snprintf(path, sizeof path, "%s/conf/main.cf", TERN_SOURCE_ROOT);
        for (size_t k = 0; k < ELEMENTSOF(programs); k++) {
                _cleanup_(freep) char *err = NULL;
                _cleanup_conf_ Conf *c = NULL;
                int r = conf_load(path, programs[k], &c, &err);

                if (r < 0)
                        fail_msg("%s for %s: got %d (%s), want success", path, programs[k], r, strna(err));
                if (conf_warnings(c, NULL) != 0)
                        fail_msg("%s: got %zu warnings, want none", path, conf_warnings(c, NULL));
                for (size_t i = 0; i < n; i++)
                        if (!conf_is_default(c, p[i].name))
                                fail_msg("%s: %s is set, want every parameter commented out", path,
                                         p[i].name);
        }
}

/* every parameter appears in main.cf as "#name = default" and, uncommented, loads as the default */
static void test_main_cf_covers_table(void **state)
{
        _cleanup_(freep) char *text = read_file("conf/main.cf", NULL);
        _cleanup_(freep) char *uncommented = malloc(strlen(text) + 1);
        _cleanup_(freep) char *err = NULL;
        _cleanup_conf_ Conf *c = NULL;
        size_t n, u = 0;
        const ConfParam *p = conf_params(&n);

        assert_non_null(uncommented);
        for (size_t i = 0; i < n; i++) {
                char want[512];
                const char *hit;

                snprintf(want, sizeof want, "\n#%s =", p[i].name);
                hit = strstr(text, want);
                if (!hit)
                        fail_msg("conf/main.cf: no \"#%s =\" line", p[i].name);
                hit += strlen(want);
                if (*p[i].default_value) {
                        size_t dl = strlen(p[i].default_value);
                        if (hit[0] != ' ' || strncmp(hit + 1, p[i].default_value, dl) != 0 ||
                            hit[1 + dl] != '\n')
                                fail_msg("conf/main.cf: %s: got \"%.*s\", want \"%s\"", p[i].name,
                                         (int)strcspn(hit, "\n"), hit, p[i].default_value);
                } else if (*hit != '\n')
                        fail_msg("conf/main.cf: %s: got \"%.*s\", want an empty default", p[i].name,
                                 (int)strcspn(hit, "\n"), hit);
        }

        /* uncomment every "#name = value" line (not myhostname/mydomain: computed) and load it */
        for (const char *line = text; *line;) {
                const char *nl = strchr(line, '\n');
                size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line);
                bool param = line[0] == '#' &&
                             ((line[1] >= 'a' && line[1] <= 'z') || (line[1] >= '0' && line[1] <= '9')) &&
                             !strneq(line, "#myhostname ", 12) && !strneq(line, "#mydomain ", 10);

                memcpy(uncommented + u, line + param, len - param);
                u += len - param;
                line += len;
        }
        uncommented[u] = 0;
        if (load(uncommented, "qmgr", &c, &err) < 0)
                fail_msg("uncommented conf/main.cf: got %s, want success", strna(err));
        assert_int_equal(conf_warnings(c, NULL), 0);
        for (size_t i = 0; i < n; i++) {
                if (streq(p[i].name, "myhostname") || streq(p[i].name, "mydomain"))
                        continue;
                if (conf_is_default(c, p[i].name))
                        fail_msg("uncommented conf/main.cf: %s still at its default, want set", p[i].name);
                if (!streq(conf_get_raw(c, p[i].name), p[i].default_value))
                        fail_msg("uncommented conf/main.cf: %s: got \"%s\", want \"%s\"", p[i].name,
                                 conf_get_raw(c, p[i].name), p[i].default_value);
        }
}

/* every parameter appears in man/tern.conf.5 as a ".B name" entry, with its default */
static void test_man_page_covers_table(void **state)
{
        _cleanup_(freep) char *text = read_file("man/tern.conf.5", NULL);
        size_t n;
        const ConfParam *p = conf_params(&n);

        for (size_t i = 0; i < n; i++) {
                char want[512];
                const char *hit;

                snprintf(want, sizeof want, "\n.B %s\n", p[i].name);
                hit = strstr(text, want);
                if (!hit)
                        fail_msg("man/tern.conf.5: no \".B %s\" entry", p[i].name);
                if (p[i].type == CONF_TIME) {
                        char unit[32];
                        snprintf(unit, sizeof unit, "default unit %c", p[i].default_unit);
                        if (!strstr(hit, unit) || strstr(hit, unit) > strstr(hit + 1, "\n.TP"))
                                fail_msg("man/tern.conf.5: %s: no \"%s\"", p[i].name, unit);
                }
                if (!strstr(hit, p[i].readers[0] == 'f' ? "read by f" : "read by "))
                        fail_msg("man/tern.conf.5: %s: no readers", p[i].name);
        }
        assert_non_null(strstr(text, "_destination_concurrency_limit"));
        assert_non_null(strstr(text, "[transport]"));
        assert_non_null(strstr(text, "line too long (max 198 bytes)"));
}

/* every prefix of a sample file either loads or fails with an error text; nothing else */
static void test_prefixes(void **state)
{
        _cleanup_(freep) char *sample = NULL;
        size_t n;
        static const char extra[] = "# sample\n"
                                    "myhostname = mx.example.com\n"
                                    "relay_domains = a.example,\n"
                                    "    b.example ; c.example\n"
                                    "fast_flush_domains = ${relay_domains?$relay_domains}\n"
                                    "max_idle = ${x:10}m\n"
                                    "smtpd_banner = $$ $myhostname $(mail_name)\n"
                                    "foo = $bar\n"
                                    "bar = $foo\n"
                                    "smtp_destination_concurrency_limit = 7\n"
                                    "[flush]\n"
                                    "max_idle = 5\n"
                                    "[nosuch]\n"
                                    "max_use = 3\n"
                                    "[transport]\n"
                                    "example.com = smtp:[127.0.0.1]:2525\n"
                                    "* = error:5.1.1 go\n"
                                    "   away\n";
        _cleanup_(freep) char *shipped = read_file("conf/main.cf", &n);

        size_t ok = 0, from = n - MIN(n, (size_t)2000);

        /* the end of the shipped file, from a line start, uncommented, then the sample above */
        while (from > 0 && shipped[from - 1] != '\n')
                from++;
        sample = malloc(n - from + sizeof extra);
        assert_non_null(sample);
        n = 0;
        for (const char *p = shipped + from; *p; p++)
                if (!(*p == '#' && p[-1] == '\n' && p[1] >= 'a' && p[1] <= 'z'))
                        sample[n++] = *p;
        memcpy(sample + n, extra, sizeof extra);
        n = strlen(sample);

        for (size_t len = 0; len <= n; len++) {
                _cleanup_(freep) char *copy = malloc(len + 1); /* exactly LEN bytes for ASan */
                _cleanup_(freep) char *err = NULL;
                Conf *c = NULL;
                int r;

                assert_non_null(copy);
                memcpy(copy, sample, len);
                r = conf_load_string(copy, len, "main.cf", "flush", &c, &err);
                if (r < 0 && (!err || c))
                        fail_msg("prefix %zu: got %d with error %s and conf %p", len, r, strna(err),
                                 (void *)c);
                if (r == 0 && (err || !c))
                        fail_msg("prefix %zu: success with error %s and conf %p", len, strna(err),
                                 (void *)c);
                if (c) {
                        /* read everything back */
                        size_t np;
                        const ConfParam *p = conf_params(&np);
                        for (size_t i = 0; i < np; i++)
                                assert_non_null(conf_get_string(c, p[i].name));
                        ok++;
                }
                conf_free(c);
                if (len == n && r < 0)
                        fail_msg("the whole sample: got %d (%s), want success", r, strna(err));
        }
        /* most prefixes end in a complete line or a valid shorter value */
        if (ok < n / 4)
                fail_msg("prefixes that loaded: got %zu of %zu, want at least a quarter", ok, n + 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_time),
                cmocka_unit_test(test_parse_size),
                cmocka_unit_test(test_parse_bool),
                cmocka_unit_test(test_table),
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_hostname_defaults),
                cmocka_unit_test(test_load_cases),
                cmocka_unit_test(test_line_limit),
                cmocka_unit_test(test_nul_byte),
                cmocka_unit_test(test_value_limits),
                cmocka_unit_test(test_warnings_and_unknown),
                cmocka_unit_test(test_transport_overrides),
                cmocka_unit_test(test_transport_table),
                cmocka_unit_test(test_load_file),
                cmocka_unit_test(test_conf_path),
                cmocka_unit_test(test_shipped_main_cf),
                cmocka_unit_test(test_main_cf_covers_table),
                cmocka_unit_test(test_man_page_covers_table),
                cmocka_unit_test(test_prefixes),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
