/* SPDX-License-Identifier: MIT */
/*
 * test-domain-list.c - Postfix domain_list matching and valid_hostname (src/lib/domain-list.c)
 *
 * Table-driven: each case is a list (as main.cf would give it), the parent flag, a domain and the
 * expected match. Covers: exact matches; "domain" matching its subdomains only with parent
 * matching (parent_domain_matches_subdomains), never a mere suffix ("xexample.com"); ".domain"
 * matching subdomains but never the domain itself, with or without parent; "!pattern" with the
 * first matching pattern deciding (in both orders), "!!pattern"; type:table entries never
 * matching; the empty list; patterns lower-cased by domain_list_new (and the input array left
 * as it was). valid_hostname: empty, 255/256 bytes, labels of 63/64 bytes, hyphens at either
 * end of a label, all-numeric names, empty labels, underscores, UTF-8 and bad characters.
 * domain_list_from_conf over a real main.cf in a temporary directory: fast_flush_domains'
 * default $relay_domains, an explicit list, and parent matching following
 * parent_domain_matches_subdomains.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "test-util.h"

#include "conf.h"
#include "domain-list.h"
#include "macro.h"

#define MAX_PATTERNS 8

typedef struct MatchCase {
        const char *patterns[MAX_PATTERNS]; /* NULL-terminated */
        bool parent;
        const char *domain;
        bool match;
} MatchCase;

static char *join(const char *const *patterns)
{
        static char buf[512];
        size_t n = 0;

        buf[0] = '\0';
        for (size_t i = 0; patterns[i]; i++)
                n += (size_t) snprintf(buf + n, sizeof(buf) - n, "%s%s", i ? ", " : "", patterns[i]);
        return buf;
}

static void run_match_cases(const MatchCase *cases, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                const MatchCase *t = &cases[i];
                DomainList l = {};
                bool got;

                assert_int_equal(domain_list_new((char *const *) t->patterns, t->parent, &l), 0);
                got = domain_list_match(&l, t->domain);
                if (got != t->match)
                        fail_msg("case %zu: \"%s\" against [%s] (parent %s): want %s, got %s", i, t->domain,
                                 join(t->patterns), t->parent ? "on" : "off",
                                 t->match ? "match" : "no match", got ? "match" : "no match");
                domain_list_done(&l);
        }
}

static void test_exact_and_parent(void **state)
{
        static const MatchCase cases[] = {
                {{"example.com"}, false, "example.com", true},
                {{"example.com"}, true, "example.com", true},
                {{"example.com"}, false, "example.org", false},
                /* subdomains only with parent matching */
                {{"example.com"}, false, "a.example.com", false},
                {{"example.com"}, true, "a.example.com", true},
                {{"example.com"}, true, "a.b.example.com", true},
                /* a suffix that is not at a label boundary is not a parent match */
                {{"example.com"}, true, "xexample.com", false},
                {{"example.com"}, true, "x-example.com", false},
                {{"example.com"}, true, ".example.com", false},
                /* the parent of the pattern is not matched */
                {{"a.example.com"}, true, "example.com", false},
                {{"example.com"}, true, "com", false},
                /* later patterns are tried when earlier ones do not match */
                {{"one.test", "two.test", "example.com"}, false, "example.com", true},
                {{"one.test", "two.test", "example.com"}, true, "x.two.test", true},
                {{"one.test", "two.test"}, true, "three.test", false},
        };

        (void) state;
        run_match_cases(cases, ELEMENTSOF(cases));
}

static void test_dot_domain(void **state)
{
        static const MatchCase cases[] = {
                {{".example.com"}, false, "a.example.com", true},
                {{".example.com"}, false, "a.b.example.com", true},
                {{".example.com"}, false, "example.com", false},
                {{".example.com"}, true, "example.com", false},
                {{".example.com"}, true, "a.example.com", true},
                {{".example.com"}, false, "aexample.com", false},
                {{".example.com"}, false, "example.com.org", false},
                /* the pattern's own text is not a subdomain of it */
                {{".example.com"}, false, ".example.com", false},
                /* both forms together: the domain and its subdomains without parent matching */
                {{".example.com", "example.com"}, false, "example.com", true},
                {{".example.com", "example.com"}, false, "a.example.com", true},
        };

        (void) state;
        run_match_cases(cases, ELEMENTSOF(cases));
}

static void test_negation(void **state)
{
        static const MatchCase cases[] = {
                /* the first pattern that matches decides */
                {{"!no.example.com", "example.com"}, true, "no.example.com", false},
                {{"!no.example.com", "example.com"}, true, "a.no.example.com", false},
                {{"!no.example.com", "example.com"}, true, "yes.example.com", true},
                {{"!no.example.com", "example.com"}, true, "example.com", true},
                {{"example.com", "!no.example.com"}, true, "no.example.com", true},
                {{"!.example.com", "example.com"}, true, "a.example.com", false},
                {{"!.example.com", "example.com"}, true, "example.com", true},
                /* a negation that matches ends the search: a later positive entry is not tried */
                {{"!example.com", "example.com"}, false, "example.com", false},
                /* a negation alone never makes a match */
                {{"!example.com"}, false, "example.org", false},
                {{"!example.com"}, false, "example.com", false},
                /* two '!' cancel out */
                {{"!!example.com"}, false, "example.com", true},
                /* a negated table entry never matches, and so never ends the search */
                {{"!hash:/etc/tern/no", "example.com"}, false, "example.com", true},
        };

        (void) state;
        run_match_cases(cases, ELEMENTSOF(cases));
}

static void test_tables_and_empty(void **state)
{
        static const MatchCase cases[] = {
                {{"hash:/etc/tern/relay"}, true, "hash", false},
                {{"hash:/etc/tern/relay"}, true, "hash:/etc/tern/relay", false},
                {{"hash:/etc/tern/relay"}, false, "example.com", false},
                {{"hash:/etc/tern/relay", "example.com"}, false, "example.com", true},
                {{"inline:{example.com=OK}"}, false, "example.com", false},
                {{""}, true, "example.com", false},
                {{"!"}, true, "example.com", false},
                {{""}, true, "", false},
        };
        static const char *const none[] = {NULL};
        DomainList l = {};

        (void) state;
        run_match_cases(cases, ELEMENTSOF(cases));

        /* a list with no patterns at all: empty, matches nothing */
        assert_int_equal(domain_list_new((char *const *) none, true, &l), 0);
        assert_true(domain_list_empty(&l));
        assert_false(domain_list_match(&l, "example.com"));
        assert_false(domain_list_match(&l, ""));
        domain_list_done(&l);
        assert_null(l.patterns);
        domain_list_done(&l); /* twice is harmless */

        assert_int_equal(domain_list_new(NULL, false, &l), 0);
        assert_true(domain_list_empty(&l));
        assert_false(domain_list_match(&l, "example.com"));
        domain_list_done(&l);

        /* a zero-initialized list is empty too */
        assert_true(domain_list_empty(&(DomainList){}));
        assert_false(domain_list_match(&(DomainList){}, "example.com"));

        assert_int_equal(
                domain_list_new((char *const *) (const char *const[]){"example.com", NULL}, false, &l), 0);
        assert_false(domain_list_empty(&l));
        domain_list_done(&l);
}

static void test_case(void **state)
{
        static const MatchCase cases[] = {
                {{"Example.COM"}, false, "example.com", true},
                {{".EXAMPLE.com"}, false, "a.example.com", true},
                {{"!NO.Example.Com", "EXAMPLE.COM"}, true, "no.example.com", false},
                {{"!NO.Example.Com", "EXAMPLE.COM"}, true, "yes.example.com", true},
        };
        char upper[] = "UPPER.Example";
        char *const patterns[] = {upper, NULL};
        DomainList l = {};

        (void) state;
        run_match_cases(cases, ELEMENTSOF(cases));

        /* the list holds lower-cased copies; the caller's strings are untouched */
        assert_int_equal(domain_list_new(patterns, false, &l), 0);
        assert_string_equal(upper, "UPPER.Example");
        assert_string_equal(l.patterns[0], "upper.example");
        assert_null(l.patterns[1]);
        assert_ptr_not_equal(l.patterns[0], upper);
        assert_false(l.parent);
        assert_true(domain_list_match(&l, "upper.example"));
        domain_list_done(&l);

        /* lowercase_ascii folds A-Z only; UTF-8 bytes stay */
        {
                char s[] = "AbC-\xc3\x9c.Z_9";

                assert_ptr_equal(lowercase_ascii(s), s);
                assert_string_equal(s, "abc-\xc3\x9c.z_9");
        }
        /* conf_list_contains ignores case */
        {
                const char *list[] = {"debug_peer_list", "Fast_Flush_Domains", NULL};

                assert_true(conf_list_contains((char *const *) list, "fast_flush_domains"));
                assert_true(conf_list_contains((char *const *) list, "DEBUG_PEER_LIST"));
                assert_false(conf_list_contains((char *const *) list, "relay_domains"));
                assert_false(conf_list_contains(NULL, "relay_domains"));
        }
}

/* name_of - LEN bytes of labels of LABEL bytes ('a'..), separated by dots, into BUF */
static char *name_of(char *buf, size_t len, size_t label)
{
        size_t in_label = 0;

        for (size_t i = 0; i < len; i++) {
                if (in_label == label && i + 1 < len) {
                        buf[i] = '.';
                        in_label = 0;
                } else {
                        buf[i] = (char) ('a' + (i % 26));
                        in_label++;
                }
        }
        buf[len] = '\0';
        return buf;
}

static void test_valid_hostname(void **state)
{
        static const struct {
                const char *name;
                bool valid;
        } cases[] = {
                {"", false},
                {"example.com", true},
                {"localhost", true},
                {"a", true},
                {"a.b", true},
                {"EXAMPLE.Com", true},
                {"a-b.example", true},
                {"a--b.example", true},
                {"a_b.example", true},
                {"_dmarc.example", true},
                {"1a.example", true},
                {"1.2.3.a", true},
                {"b\xc3\xbc"
                 "cher.example",
                 true},
                /* hyphens at either end of a label */
                {"-a.example", false},
                {"a.-b.example", false},
                {"a-.example", false},
                {"a.b-", false},
                {"-", false},
                /* all digits and dots */
                {"1.2.3.4", false},
                {"123", false},
                {"0", false},
                /* empty labels */
                {"a..b", false},
                {".a", false},
                {"a.", false},
                {".", false},
                {"..", false},
                /* characters outside the set */
                {"a b", false},
                {"a/b", false},
                {"a;b", false},
                {"[192.0.2.1]", false},
                {"a:b", false},
                {"a@b", false},
                {"a\tb", false},
        };
        char buf[512];

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                if (valid_hostname(cases[i].name) != cases[i].valid)
                        fail_msg("valid_hostname(\"%s\"): want %s", cases[i].name,
                                 cases[i].valid ? "valid" : "invalid");

        /* 255 bytes is the most; labels of 63 bytes */
        name_of(buf, DOMAIN_NAME_MAX, DOMAIN_LABEL_MAX);
        assert_int_equal(strlen(buf), 255);
        assert_true(valid_hostname(buf));
        name_of(buf, DOMAIN_NAME_MAX, 50);
        assert_true(valid_hostname(buf));
        /* one byte more, every label still short: too long as a whole */
        name_of(buf, DOMAIN_NAME_MAX + 1, 50);
        assert_int_equal(strlen(buf), 256);
        assert_false(valid_hostname(buf));
        name_of(buf, 400, 10);
        assert_false(valid_hostname(buf));

        /* a label of 63 bytes, and of 64 */
        name_of(buf, DOMAIN_LABEL_MAX, DOMAIN_LABEL_MAX);
        assert_true(valid_hostname(buf));
        strcat(buf, ".example");
        assert_true(valid_hostname(buf));
        name_of(buf, DOMAIN_LABEL_MAX + 1, DOMAIN_LABEL_MAX + 1);
        assert_null(strchr(buf, '.'));
        assert_false(valid_hostname(buf));
        strcat(buf, ".example");
        assert_false(valid_hostname(buf));
        memcpy(buf, "example.", 8);
        name_of(buf + 8, DOMAIN_LABEL_MAX + 1, DOMAIN_LABEL_MAX + 1);
        assert_false(valid_hostname(buf));
        name_of(buf + 8, DOMAIN_LABEL_MAX, DOMAIN_LABEL_MAX);
        assert_true(valid_hostname(buf));
}


typedef struct ConfCase {
        const char *conf;
        const char *domain;
        bool match;
} ConfCase;

static void test_from_conf(void **state)
{
        static const ConfCase cases[] = {
                /* the default: $relay_domains, parent matching on for fast_flush_domains */
                {"relay_domains = Relay.Example, .backup.example\n", "relay.example", true},
                {"relay_domains = Relay.Example, .backup.example\n", "a.relay.example", true},
                {"relay_domains = Relay.Example, .backup.example\n", "x.backup.example", true},
                {"relay_domains = Relay.Example, .backup.example\n", "backup.example", false},
                {"relay_domains = Relay.Example, .backup.example\n", "other.example", false},
                /* an explicit reference to $relay_domains, with more after it */
                {"relay_domains = relay.example\nfast_flush_domains = $relay_domains, !no.flush.example, "
                 "flush.example\n",
                 "a.flush.example", true},
                {"relay_domains = relay.example\nfast_flush_domains = $relay_domains, !no.flush.example, "
                 "flush.example\n",
                 "no.flush.example", false},
                {"relay_domains = relay.example\nfast_flush_domains = $relay_domains, !no.flush.example, "
                 "flush.example\n",
                 "relay.example", true},
                /* fast_flush_domains left out of parent_domain_matches_subdomains */
                {"relay_domains = relay.example\nparent_domain_matches_subdomains = relay_domains\n",
                 "a.relay.example", false},
                {"relay_domains = relay.example\nparent_domain_matches_subdomains = relay_domains\n",
                 "relay.example", true},
                /* its own list, independent of relay_domains */
                {"relay_domains = relay.example\nfast_flush_domains = flush.example\n", "relay.example",
                 false},
                {"relay_domains = relay.example\nfast_flush_domains = flush.example\n", "b.flush.example",
                 true},
                /* nothing configured: fast flush is off */
                {"", "relay.example", false},
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Conf *c = test_conf_from_text(cases[i].conf);
                DomainList l = {};
                bool got;

                assert_int_equal(domain_list_from_conf(c, "fast_flush_domains", &l), 0);
                got = domain_list_match(&l, cases[i].domain);
                if (got != cases[i].match)
                        fail_msg("case %zu: \"%s\" with \"%s\": want %s, got %s", i, cases[i].domain,
                                 cases[i].conf, cases[i].match ? "match" : "no match",
                                 got ? "match" : "no match");
                domain_list_done(&l);
                conf_free(c);
        }
}

static void test_from_conf_shape(void **state)
{
        Conf *c;
        DomainList l = {};

        (void) state;
        c = test_conf_from_text("relay_domains = Relay.Example, .backup.example\n");
        assert_int_equal(domain_list_from_conf(c, "fast_flush_domains", &l), 0);
        assert_true(l.parent);
        assert_non_null(l.patterns);
        assert_string_equal(l.patterns[0], "relay.example");
        assert_string_equal(l.patterns[1], ".backup.example");
        assert_null(l.patterns[2]);
        domain_list_done(&l);

        /* mydestination is not in the default parent_domain_matches_subdomains */
        assert_int_equal(domain_list_from_conf(c, "mydestination", &l), 0);
        assert_false(l.parent);
        domain_list_done(&l);
        conf_free(c);

        /* empty relay_domains: the default fast_flush_domains is empty */
        c = test_conf_from_text("myhostname = mail.example\n");
        assert_int_equal(domain_list_from_conf(c, "fast_flush_domains", &l), 0);
        assert_true(domain_list_empty(&l));
        domain_list_done(&l);
        conf_free(c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_exact_and_parent),
                cmocka_unit_test(test_dot_domain),
                cmocka_unit_test(test_negation),
                cmocka_unit_test(test_tables_and_empty),
                cmocka_unit_test(test_case),
                cmocka_unit_test(test_valid_hostname),
                cmocka_unit_test(test_from_conf),
                cmocka_unit_test(test_from_conf_shape),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
