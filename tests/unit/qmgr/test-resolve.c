/* SPDX-License-Identifier: MIT */
/*
 * test-resolve.c - recipient routing (src/qmgr/resolve.c)
 *
 * Table-driven: each case is a main.cf text (with its [transport] section), an address, and the
 * class, transport and nexthop expected. Covers: the three classes from myhostname,
 * mydestination, localhost, relay_domains (parent matching on by default, off when
 * parent_domain_matches_subdomains leaves relay_domains out), ".domain" entries, "!" negation;
 * transport parameters with and without a nexthop; relayhost (verbatim "[10.0.0.1]:2525") for
 * relay and default but not local; the [transport] table's order (full address before domain
 * before the nearest parent before "*"), parent entries never matching the domain itself, "*"
 * overriding local mail, empty transport / nexthop halves ("transport:", ":nexthop", ":");
 * upper case and a trailing dot; address literals; quoted local parts with '@'; the error
 * routes (empty address, control characters, over-long, bad domains). Also resolve_local_part
 * and that a Resolver outlives its Conf.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf.h"
#include "macro.h"
#include "resolve.h"

#define BASE "myhostname = mail.example.com\nmydomain = example.com\n"

typedef struct Case {
        const char *conf;       /* appended to BASE */
        const char *address;
        ResolveClass class;
        const char *transport, *nexthop;
} Case;

static const char *class_name(ResolveClass c)
{
        switch (c) {
        case RESOLVE_CLASS_LOCAL:
                return "local";
        case RESOLVE_CLASS_RELAY:
                return "relay";
        case RESOLVE_CLASS_DEFAULT:
                return "default";
        case RESOLVE_CLASS_ERROR:
                return "error";
        }
        return "?";
}

static Resolver *make_resolver(const char *conf_text)
{
        _cleanup_(freep) char *text = NULL, *error = NULL;
        Conf *c = NULL;
        Resolver *r = NULL;
        int k;

        assert_true(asprintf(&text, "%s%s", BASE, conf_text) > 0);
        k = conf_load_string(text, strlen(text), "main.cf", "qmgr", &c, &error);
        if (k < 0)
                fail_msg("conf_load_string(%s): %d %s", text, k, strempty(error));
        assert_int_equal(resolver_new(c, &r), 0);
        conf_free(c); /* the resolver keeps copies */
        return r;
}

static void run_cases(const Case *cases, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                const Case *t = &cases[i];
                Resolver *r = make_resolver(t->conf);
                Resolved res = {};

                assert_int_equal(resolve_address(r, t->address, &res), 0);
                if (res.class != t->class || !streq(res.transport, t->transport) ||
                    !streq(res.nexthop, t->nexthop))
                        fail_msg("case %zu <%s> with \"%s\": want %s %s:%s, got %s %s:%s", i, t->address,
                                 t->conf, class_name(t->class), t->transport, t->nexthop,
                                 class_name(res.class), res.transport, res.nexthop);
                resolved_done(&res);
                resolver_free(r);
        }
}

static void test_classes(void **state)
{
        static const Case cases[] = {
                /* local: $myhostname, mydestination's default list, localhost, no domain */
                {"", "user@mail.example.com", RESOLVE_CLASS_LOCAL, "local", "mail.example.com"},
                {"", "user@localhost.example.com", RESOLVE_CLASS_LOCAL, "local", "mail.example.com"},
                {"", "user@localhost", RESOLVE_CLASS_LOCAL, "local", "mail.example.com"},
                {"mydestination =\n", "user@localhost", RESOLVE_CLASS_LOCAL, "local", "mail.example.com"},
                {"", "user", RESOLVE_CLASS_LOCAL, "local", "mail.example.com"},
                {"", "user@[127.0.0.1]", RESOLVE_CLASS_LOCAL, "local", "mail.example.com"},
                {"", "user@[IPv6:::1]", RESOLVE_CLASS_LOCAL, "local", "mail.example.com"},
                {"mydestination = $myhostname, other.test\n", "u@other.test", RESOLVE_CLASS_LOCAL, "local",
                 "mail.example.com"},
                /* mydestination is not parent-matched by default; ".domain" matches subdomains */
                {"mydestination = other.test\n", "u@sub.other.test", RESOLVE_CLASS_DEFAULT, "smtp",
                 "sub.other.test"},
                {"mydestination = .other.test\n", "u@sub.other.test", RESOLVE_CLASS_LOCAL, "local",
                 "mail.example.com"},
                {"mydestination = .other.test\n", "u@other.test", RESOLVE_CLASS_DEFAULT, "smtp", "other.test"},
                {"mydestination = other.test\nparent_domain_matches_subdomains = mydestination\n",
                 "u@sub.other.test", RESOLVE_CLASS_LOCAL, "local", "mail.example.com"},
                /* local_transport's nexthop; without one, $myhostname */
                {"local_transport = lmtp:unix:/run/lmtp\n", "u@localhost", RESOLVE_CLASS_LOCAL, "lmtp",
                 "unix:/run/lmtp"},
                {"local_transport = local\n", "u@localhost", RESOLVE_CLASS_LOCAL, "local", "mail.example.com"},
                /* relay: relay_domains, parent matching on by default */
                {"relay_domains = relay.test\n", "u@relay.test", RESOLVE_CLASS_RELAY, "relay", "relay.test"},
                {"relay_domains = relay.test\n", "u@a.b.relay.test", RESOLVE_CLASS_RELAY, "relay",
                 "a.b.relay.test"},
                {"relay_domains = relay.test\n", "u@xrelay.test", RESOLVE_CLASS_DEFAULT, "smtp", "xrelay.test"},
                {"relay_domains = relay.test\nparent_domain_matches_subdomains =\n", "u@a.relay.test",
                 RESOLVE_CLASS_DEFAULT, "smtp", "a.relay.test"},
                {"relay_domains = !no.relay.test, relay.test\n", "u@no.relay.test", RESOLVE_CLASS_DEFAULT, "smtp",
                 "no.relay.test"},
                {"relay_domains = !no.relay.test, relay.test\n", "u@yes.relay.test", RESOLVE_CLASS_RELAY, "relay",
                 "yes.relay.test"},
                {"relay_domains = hash:/etc/relay, relay.test\n", "u@relay.test", RESOLVE_CLASS_RELAY, "relay",
                 "relay.test"},
                {"relay_domains = relay.test\nrelay_transport = relay:[gw.test]:26\n", "u@relay.test",
                 RESOLVE_CLASS_RELAY, "relay", "[gw.test]:26"},
                /* mydestination wins over relay_domains, as in Postfix */
                {"relay_domains = mail.example.com\n", "u@mail.example.com", RESOLVE_CLASS_LOCAL, "local",
                 "mail.example.com"},
                /* default */
                {"", "user@example.org", RESOLVE_CLASS_DEFAULT, "smtp", "example.org"},
                {"", "user@[192.0.2.1]", RESOLVE_CLASS_DEFAULT, "smtp", "[192.0.2.1]"},
                {"default_transport = smtp:[smarthost.test]\n", "user@example.org", RESOLVE_CLASS_DEFAULT, "smtp",
                 "[smarthost.test]"},
                {"default_transport = error:5.7.1 outbound mail disabled\n", "user@example.org",
                 RESOLVE_CLASS_DEFAULT, "error", "5.7.1 outbound mail disabled"},
        };

        run_cases(cases, ELEMENTSOF(cases));
}

static void test_relayhost(void **state)
{
        static const Case cases[] = {
                {"relayhost = [10.0.0.1]:2525\n", "u@example.org", RESOLVE_CLASS_DEFAULT, "smtp",
                 "[10.0.0.1]:2525"},
                {"relayhost = [10.0.0.1]:2525\nrelay_domains = relay.test\n", "u@relay.test", RESOLVE_CLASS_RELAY,
                 "relay", "[10.0.0.1]:2525"},
                {"relayhost = [10.0.0.1]:2525\n", "u@localhost", RESOLVE_CLASS_LOCAL, "local",
                 "mail.example.com"},
                {"relayhost = gw.test\n", "u@example.org", RESOLVE_CLASS_DEFAULT, "smtp", "gw.test"},
                /* a transport parameter's own nexthop wins over relayhost */
                {"relayhost = gw.test\ndefault_transport = smtp:[other.test]\n", "u@example.org",
                 RESOLVE_CLASS_DEFAULT, "smtp", "[other.test]"},
                /* the table's nexthop wins over relayhost; its empty nexthop keeps relayhost */
                {"relayhost = gw.test\n[transport]\nexample.org = :[direct.test]\n", "u@example.org",
                 RESOLVE_CLASS_DEFAULT, "smtp", "[direct.test]"},
                {"relayhost = gw.test\n[transport]\nexample.org = bulk:\n", "u@example.org", RESOLVE_CLASS_DEFAULT,
                 "bulk", "gw.test"},
        };

        run_cases(cases, ELEMENTSOF(cases));
}

static void test_table(void **state)
{
        static const char *table = "[transport]\n"
                                   "user@a.b.example.org = full:[full.test]\n"
                                   "a.b.example.org = domain:[domain.test]\n"
                                   ".b.example.org = parent1:[parent1.test]\n"
                                   ".example.org = parent2:[parent2.test]\n"
                                   "* = star:[star.test]\n";
        static const Case order[] = {
                {NULL, "user@a.b.example.org", RESOLVE_CLASS_DEFAULT, "full", "[full.test]"},
                {NULL, "USER@A.B.Example.ORG.", RESOLVE_CLASS_DEFAULT, "full", "[full.test]"},
                {NULL, "other@a.b.example.org", RESOLVE_CLASS_DEFAULT, "domain", "[domain.test]"},
                {NULL, "u@x.a.b.example.org", RESOLVE_CLASS_DEFAULT, "parent1", "[parent1.test]"},
                {NULL, "u@c.b.example.org", RESOLVE_CLASS_DEFAULT, "parent1", "[parent1.test]"},
                {NULL, "u@b.example.org", RESOLVE_CLASS_DEFAULT, "parent2", "[parent2.test]"},
                /* ".example.org" does not match example.org itself */
                {NULL, "u@example.org", RESOLVE_CLASS_DEFAULT, "star", "[star.test]"},
                {NULL, "u@elsewhere.test", RESOLVE_CLASS_DEFAULT, "star", "[star.test]"},
                /* "*" applies to local mail too (transport(5)) */
                {NULL, "u@localhost", RESOLVE_CLASS_LOCAL, "star", "[star.test]"},
        };
        static const Case halves[] = {
                /* "transport:" keeps the nexthop, ":nexthop" the transport, ":" both */
                {"[transport]\nexample.org = bulk:\n", "u@example.org", RESOLVE_CLASS_DEFAULT, "bulk",
                 "example.org"},
                {"[transport]\nexample.org = :[mx.test]:587\n", "u@example.org", RESOLVE_CLASS_DEFAULT, "smtp",
                 "[mx.test]:587"},
                {"[transport]\nexample.org = :\n* = star:x.test\n", "u@example.org", RESOLVE_CLASS_DEFAULT,
                 "smtp", "example.org"},
                {"[transport]\nexample.org = bulk\n", "u@example.org", RESOLVE_CLASS_DEFAULT, "bulk",
                 "example.org"},
                /* the local exemption from transport(5)'s example */
                {"[transport]\nmail.example.com = :\n* = smtp:outbound.test\n", "u@mail.example.com",
                 RESOLVE_CLASS_LOCAL, "local", "mail.example.com"},
                {"[transport]\nlocalhost = :\n", "u@localhost", RESOLVE_CLASS_LOCAL, "local",
                 "mail.example.com"},
                /* relay class keeps its class under a table override */
                {"relay_domains = relay.test\n[transport]\nrelay.test = smtp:[backend.test]\n", "u@relay.test",
                 RESOLVE_CLASS_RELAY, "smtp", "[backend.test]"},
                /* an error route from the table: nexthop is the text */
                {"[transport]\nbad.test = error:5.1.2 no such domain here\n", "u@bad.test",
                 RESOLVE_CLASS_DEFAULT, "error", "5.1.2 no such domain here"},
                /* parent_domain_matches_subdomains = transport_maps: "domain" entries match subdomains */
                {"parent_domain_matches_subdomains = transport_maps\n[transport]\nexample.org = p:\n",
                 "u@a.example.org", RESOLVE_CLASS_DEFAULT, "p", "a.example.org"},
                {"[transport]\nexample.org = p:\n", "u@a.example.org", RESOLVE_CLASS_DEFAULT, "smtp",
                 "a.example.org"},
                /* unqualified addresses are looked up as user@$myhostname */
                {"[transport]\nuser@mail.example.com = lmtp:[store.test]\n", "user", RESOLVE_CLASS_LOCAL, "lmtp",
                 "[store.test]"},
                /* literals: looked up whole, no parents */
                {"[transport]\n.1 = nope:\n", "u@[192.0.2.1]", RESOLVE_CLASS_DEFAULT, "smtp", "[192.0.2.1]"},
        };
        Case cases[ELEMENTSOF(order)];

        for (size_t i = 0; i < ELEMENTSOF(order); i++) {
                cases[i] = order[i];
                cases[i].conf = table;
        }
        run_cases(cases, ELEMENTSOF(cases));
        run_cases(halves, ELEMENTSOF(halves));
}

static void test_case_and_dots(void **state)
{
        static const Case cases[] = {
                {"", "User@MAIL.Example.COM", RESOLVE_CLASS_LOCAL, "local", "mail.example.com"},
                {"", "user@mail.example.com.", RESOLVE_CLASS_LOCAL, "local", "mail.example.com"},
                {"", "user@Example.ORG.", RESOLVE_CLASS_DEFAULT, "smtp", "example.org"},
                {"relay_domains = Relay.Test\n", "u@RELAY.test", RESOLVE_CLASS_RELAY, "relay", "relay.test"},
                /* quoted local parts: the last '@' outside quotes splits */
                {"", "\"a@b\"@example.org", RESOLVE_CLASS_DEFAULT, "smtp", "example.org"},
                {"", "\"a\\\"@b\"@localhost", RESOLVE_CLASS_LOCAL, "local", "mail.example.com"},
                {"", "a@b@example.org", RESOLVE_CLASS_DEFAULT, "smtp", "example.org"},
                /* UTF-8 domains pass */
                {"", "u@b\xc3\xbc"
                     "cher.test",
                 RESOLVE_CLASS_DEFAULT, "smtp", "b\xc3\xbc"
                                                "cher.test"},
        };

        run_cases(cases, ELEMENTSOF(cases));
}

static void test_errors(void **state)
{
        static const Case cases[] = {
                {"", "", RESOLVE_CLASS_ERROR, "error", "5.1.3 null recipient address"},
                {"", "user@", RESOLVE_CLASS_ERROR, "error", "5.1.3 bad address syntax"},
                {"", "user@.", RESOLVE_CLASS_ERROR, "error", "5.1.3 bad address syntax"},
                {"", "user@example.org..", RESOLVE_CLASS_ERROR, "error", "5.1.3 bad address syntax"},
                {"", "user@a..b", RESOLVE_CLASS_ERROR, "error", "5.1.3 bad address syntax"},
                {"", "user@.example.org", RESOLVE_CLASS_ERROR, "error", "5.1.3 bad address syntax"},
                {"", "user@-a.example.org", RESOLVE_CLASS_ERROR, "error", "5.1.3 bad address syntax"},
                {"", "user@a-.example.org", RESOLVE_CLASS_ERROR, "error", "5.1.3 bad address syntax"},
                {"", "user@exa mple.org", RESOLVE_CLASS_ERROR, "error", "5.1.3 bad address syntax"},
                {"", "user@1.2.3.4", RESOLVE_CLASS_ERROR, "error", "5.1.3 bad address syntax"},
                {"", "user@[garbage]", RESOLVE_CLASS_ERROR, "error", "5.1.3 bad address syntax"},
                {"", "user@[]", RESOLVE_CLASS_ERROR, "error", "5.1.3 bad address syntax"},
                {"", "user@[1.2.3.4", RESOLVE_CLASS_ERROR, "error", "5.1.3 bad address syntax"},
                {"", "user@[IPv6:zz::1]", RESOLVE_CLASS_ERROR, "error", "5.1.3 bad address syntax"},
                {"", "us\ter@example.org", RESOLVE_CLASS_ERROR, "error", "5.1.3 bad address syntax"},
                {"", "user@example.org\r", RESOLVE_CLASS_ERROR, "error", "5.1.3 bad address syntax"},
                {"", "us\x7f"
                     "er@example.org",
                 RESOLVE_CLASS_ERROR, "error", "5.1.3 bad address syntax"},
                {"", "\"user@example.org", RESOLVE_CLASS_ERROR, "error", "5.1.3 bad address syntax"},
                /* error routes are not overridden by "*" */
                {"[transport]\n* = star:\n", "user@", RESOLVE_CLASS_ERROR, "error", "5.1.3 bad address syntax"},
        };

        run_cases(cases, ELEMENTSOF(cases));
}

static void test_length_limit(void **state)
{
        Resolver *r = make_resolver("");
        Resolved res = {};
        char *a = malloc(RESOLVE_ADDRESS_MAX + 2);

        assert_non_null(a);
        /* exactly the limit: routed; one more: bad syntax */
        memset(a, 'x', RESOLVE_ADDRESS_MAX);
        memcpy(a + RESOLVE_ADDRESS_MAX - strlen("@example.org"), "@example.org", strlen("@example.org"));
        a[RESOLVE_ADDRESS_MAX] = '\0';
        assert_int_equal(resolve_address(r, a, &res), 0);
        assert_int_equal(res.class, RESOLVE_CLASS_DEFAULT);
        assert_string_equal(res.nexthop, "example.org");
        resolved_done(&res);

        memmove(a + 1, a, RESOLVE_ADDRESS_MAX + 1);
        assert_int_equal(resolve_address(r, a, &res), 0);
        assert_int_equal(res.class, RESOLVE_CLASS_ERROR);
        assert_string_equal(res.nexthop, "5.1.3 bad address syntax");
        resolved_done(&res);

        /* a label over 63 bytes */
        assert_int_equal(resolve_address(r, "u@xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.test",
                                         &res),
                         0);
        assert_int_equal(res.class, RESOLVE_CLASS_ERROR);
        resolved_done(&res);
        resolved_done(&res); /* twice is harmless */
        free(a);
        resolver_free(r);
        assert_null(resolver_free(NULL));
}

/* An unqualified address with myhostname set empty: a domain of nothing, no parents to look up
 * (the fuzzer's find: the parent walk read past the end of the empty domain) */
static void test_empty_myhostname(void **state)
{
        Resolver *r = make_resolver("myhostname =\n[transport]\n* = :\n");
        Resolved res = {};

        assert_int_equal(resolve_address(r, "user", &res), 0);
        assert_false(isempty(res.transport));
        assert_false(isempty(res.nexthop));
        resolved_done(&res);
        resolver_free(r);
}

static void test_local_part(void **state)
{
        static const struct {
                const char *address, *local;
        } cases[] = {
                {"user@example.org", "user"},
                {"User.Name@example.org", "User.Name"},
                {"\"a@b\"@example.org", "\"a@b\""},
                {"a@b@example.org", "a@b"},
                {"double-bounce", "double-bounce"},
                {"", ""},
                {"@example.org", ""},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(freep) char *s = NULL;

                assert_int_equal(resolve_local_part(cases[i].address, &s), 0);
                if (!streq(s, cases[i].local))
                        fail_msg("local part of <%s>: want \"%s\", got \"%s\"", cases[i].address, cases[i].local,
                                 s);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_classes),       cmocka_unit_test(test_relayhost),
                cmocka_unit_test(test_table),         cmocka_unit_test(test_case_and_dots),
                cmocka_unit_test(test_errors),        cmocka_unit_test(test_length_limit),
                cmocka_unit_test(test_empty_myhostname),
                cmocka_unit_test(test_local_part),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
