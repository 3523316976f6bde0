/* SPDX-License-Identifier: MIT */
/*
 * test-flush-site.c - fast flush sites: canonical names and logfile names (src/lib/flush-site.c)
 *
 * Table-driven. flush_site_canonical: ASCII names lower-cased, one trailing dot dropped (not
 * two), -EINVAL for empty input, input over FLUSH_SITE_INPUT_MAX bytes (also when it would
 * shrink to a short name), results over 255 bytes (ASCII, and IDNA growing a short input),
 * path and shell characters, empty labels, misplaced hyphens, all-numeric names;
 * -EADDRNOTAVAIL for a well-formed address literal, -EINVAL for a malformed one; IDNA2008 with UTS #46
 * (case folding, a fullwidth letter and an ideographic full stop mapped, a soft hyphen and a
 * zero-width space removed) and -EINVAL for bytes that are not UTF-8. flush_site_file_name:
 * Postfix's examples and the many-to-one mapping. flush_file_name_valid: the character set and
 * 255/256 bytes. A property test over a few hundred generated and edge inputs: whenever a site
 * is accepted, its canonical form is lower-case ASCII, a valid host name, canonical again as
 * itself, and its file name is a valid name with no '/' that is neither "." nor "..".
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test-util.h"

#include "domain-list.h"
#include "flush-site.h"
#include "macro.h"

typedef struct SiteCase {
        const char *site;
        int ret;               /* 0, -EINVAL, -EADDRNOTAVAIL */
        const char *canonical; /* when ret is 0 */
        const char *file;      /* when ret is 0 */
} SiteCase;

static void run_site_cases(const SiteCase *cases, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                const SiteCase *t = &cases[i];
                char canonical[FLUSH_SITE_MAX], file[FLUSH_SITE_MAX];
                int r;

                r = flush_site_canonical(t->site, canonical);
                if (r != t->ret)
                        fail_msg("case %zu: flush_site_canonical(\"%s\"): want %d, got %d%s%s", i, t->site,
                                 t->ret, r, r == 0 ? " " : "", r == 0 ? canonical : "");
                if (r < 0)
                        continue;
                if (!streq(canonical, t->canonical))
                        fail_msg("case %zu: flush_site_canonical(\"%s\"): want \"%s\", got \"%s\"", i,
                                 t->site, t->canonical, canonical);
                flush_site_file_name(canonical, file);
                if (!streq(file, t->file))
                        fail_msg("case %zu: flush_site_file_name(\"%s\"): want \"%s\", got \"%s\"", i,
                                 canonical, t->file, file);
                if (!flush_file_name_valid(file))
                        fail_msg("case %zu: file name \"%s\" of \"%s\" is not valid", i, file, t->site);
        }
}

static void test_ascii(void **state)
{
        static const SiteCase cases[] = {
                {"example.com", 0, "example.com", "example_com"},
                {"Example.COM", 0, "example.com", "example_com"},
                {"EXAMPLE.COM.", 0, "example.com", "example_com"},
                {"a-b.example", 0, "a-b.example", "a_b_example"},
                {"a.b.example", 0, "a.b.example", "a_b_example"},
                {"A_B.Example", 0, "a_b.example", "a_b_example"},
                {"localhost", 0, "localhost", "localhost"},
                {"x1.2.3.4", 0, "x1.2.3.4", "x1_2_3_4"},
                {"xn--bcher-kva.example", 0, "xn--bcher-kva.example", "xn__bcher_kva_example"},
                /* one trailing dot goes, not two; a lone dot stays (and is refused) */
                {"example.com..", -EINVAL},
                {".", -EINVAL},
                {"..", -EINVAL},
                {".example.com", -EINVAL},
                /* not a domain name */
                {"", -EINVAL},
                {"a/b", -EINVAL},
                {"../../etc/passwd", -EINVAL},
                {"a..b", -EINVAL},
                {"exa mple", -EINVAL},
                {"x;rm", -EINVAL},
                {"x$(id)", -EINVAL},
                {"a\nb", -EINVAL},
                {"a\\b", -EINVAL},
                {"user@example.com", -EINVAL},
                {"example.com:25", -EINVAL},
                {"-a.b", -EINVAL},
                {"a-.b", -EINVAL},
                {"a.b-", -EINVAL},
                {"1.2.3.4", -EINVAL},
                {"192.0.2.1.", -EINVAL},
                /* well-formed address literals are not eligible; malformed ones are invalid, so
                 * that garbage never makes a fast_flush_fallback queue run */
                {"[192.0.2.1]", -EADDRNOTAVAIL},
                {"[IPv6:2001:db8::1]", -EADDRNOTAVAIL},
                {"[ipv6:::1]", -EADDRNOTAVAIL},
                {"[junk", -EINVAL},
                {"[", -EINVAL},
                {"[]", -EINVAL},
                {"[192.0.2.1", -EINVAL},
                {"[cust1.test]", -EINVAL},
                {"[x;rm -rf]", -EINVAL},
                {"[2001:db8::1]", -EINVAL},
                /* a '[' later is just a bad character */
                {"a[1]", -EINVAL},
        };

        (void) state;
        run_site_cases(cases, ELEMENTSOF(cases));
}

static void test_idna(void **state)
{
        static const SiteCase cases[] = {
                {"b\xc3\xbc"
                 "cher.example",
                 0, "xn--bcher-kva.example", "xn__bcher_kva_example"},
                /* UTS #46 folds case: "BÜCHER", "Bücher.EXAMPLE." */
                {"B\xc3\x9c"
                 "CHER.example",
                 0, "xn--bcher-kva.example", "xn__bcher_kva_example"},
                {"B\xc3\xbc"
                 "cher.EXAMPLE.",
                 0, "xn--bcher-kva.example", "xn__bcher_kva_example"},
                /* U+3002 ideographic full stop is a dot */
                {"b\xc3\xbc"
                 "cher\xe3\x80\x82"
                 "example",
                 0, "xn--bcher-kva.example", "xn__bcher_kva_example"},
                /* U+FF21 fullwidth A maps to "a" */
                {"\xef\xbc\xa1.example", 0, "a.example", "a_example"},
                /* U+00AD soft hyphen is mapped to nothing */
                {"a\xc2\xad"
                 "b.example",
                 0, "ab.example", "ab_example"},
                /* "Straße" keeps its ß (non-transitional) */
                {"Stra\xc3\x9f"
                 "e.de",
                 0, "xn--strae-oqa.de", "xn__strae_oqa_de"},
                /* not UTF-8 */
                {"\xff.example", -EINVAL},
                {"b\xc3", -EINVAL},
                {"b\xc3(cher.example", -EINVAL},
                {"\xc0\xaf.example", -EINVAL},
                /* bad characters survive IDNA and are refused after it */
                {"b\xc3\xbc/cher.example", -EINVAL},
                {"b\xc3\xbc cher.example", -EINVAL},
                {"b\xc3\xbc..example", -EINVAL},
                {"-b\xc3\xbc.example", -EINVAL},
                /* U+200B zero-width space alone is an empty label */
                {"\xe2\x80\x8b.example", -EINVAL},
        };

        (void) state;
        run_site_cases(cases, ELEMENTSOF(cases));
}

/* labels - LEN bytes of 50-byte labels of letters, separated by dots, into BUF */
static char *labels(char *buf, size_t len)
{
        for (size_t i = 0; i < len; i++)
                buf[i] = (i % 51 == 50 && i + 1 < len) ? '.' : (char) ('a' + i % 26);
        buf[len] = '\0';
        return buf;
}

static void test_lengths(void **state)
{
        char in[2 * FLUSH_SITE_INPUT_MAX], out[FLUSH_SITE_MAX], want[FLUSH_SITE_MAX];
        size_t n;

        (void) state;
        /* an ASCII result of 255 bytes, with or without its trailing dot; 256 is too long */
        labels(in, DOMAIN_NAME_MAX);
        assert_int_equal(flush_site_canonical(in, out), 0);
        assert_string_equal(out, in);
        strcpy(want, in);
        strcat(in, ".");
        assert_int_equal(flush_site_canonical(in, out), 0);
        assert_string_equal(out, want);
        labels(in, DOMAIN_NAME_MAX + 1);
        assert_int_equal(flush_site_canonical(in, out), -EINVAL);
        labels(in, FLUSH_SITE_INPUT_MAX);
        assert_int_equal(flush_site_canonical(in, out), -EINVAL);
        labels(in, FLUSH_SITE_INPUT_MAX + 1);
        assert_int_equal(flush_site_canonical(in, out), -EINVAL);

        /* the input bound holds before any conversion: FLUSH_SITE_INPUT_MAX bytes that IDNA would
         * shrink to "a.example" are converted, one byte more is refused */
        n = 0;
        in[n++] = 'a';
        while (n + 2 + strlen(".example") <= FLUSH_SITE_INPUT_MAX) {
                in[n++] = '\xc2';
                in[n++] = '\xad';
        }
        strcpy(in + n, ".example");
        n += strlen(".example");
        assert_int_equal(n, FLUSH_SITE_INPUT_MAX - 1);
        assert_int_equal(flush_site_canonical(in, out), 0);
        assert_string_equal(out, "a.example");
        memmove(in + 1, in, n + 1);
        in[0] = 'b';
        assert_int_equal(strlen(in), FLUSH_SITE_INPUT_MAX);
        assert_int_equal(flush_site_canonical(in, out), 0);
        assert_string_equal(out, "ba.example");
        memmove(in + 1, in, n + 2);
        in[0] = 'c';
        assert_int_equal(strlen(in), FLUSH_SITE_INPUT_MAX + 1);
        assert_int_equal(flush_site_canonical(in, out), -EINVAL);

        /* a short UTF-8 input whose ASCII form is over 255 bytes: "ü." is 3 bytes, "xn--tda." 8 */
        in[0] = '\0';
        for (size_t i = 0; i < 40; i++)
                strcat(in, "\xc3\xbc.");
        strcat(in, "example");
        assert_true(strlen(in) < DOMAIN_NAME_MAX);
        assert_int_equal(flush_site_canonical(in, out), -EINVAL);
        /* 31 of them and a 5-byte label make 31 * 8 + 5 = 253 bytes, the most libidn2 gives
         * (the DNS limit for a name in text form; ASCII input may have up to 255) */
        in[0] = '\0';
        want[0] = '\0';
        for (size_t i = 0; i < 31; i++) {
                strcat(in, "\xc3\xbc.");
                strcat(want, "xn--tda.");
        }
        strcat(in, "abcde");
        strcat(want, "abcde");
        assert_int_equal(strlen(want), DOMAIN_NAME_MAX - 2);
        assert_int_equal(flush_site_canonical(in, out), 0);
        assert_string_equal(out, want);
}

static void test_file_name(void **state)
{
        static const struct {
                const char *canonical, *file;
        } cases[] = {
                {"example.com", "example_com"}, {"a-b.example", "a_b_example"},
                {"a.b.example", "a_b_example"}, {"a_b.example", "a_b_example"},
                {"Example.COM", "example_com"}, {"x9.example", "x9_example"},
                {"localhost", "localhost"},
        };
        char file[FLUSH_SITE_MAX], in[2 * FLUSH_SITE_MAX];

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                flush_site_file_name(cases[i].canonical, file);
                if (!streq(file, cases[i].file))
                        fail_msg("flush_site_file_name(\"%s\"): want \"%s\", got \"%s\"", cases[i].canonical,
                                 cases[i].file, file);
        }
        /* never more than 255 bytes, whatever it is given */
        memset(in, 'a', sizeof(in) - 1);
        in[sizeof(in) - 1] = '\0';
        flush_site_file_name(in, file);
        assert_int_equal(strlen(file), FLUSH_SITE_MAX - 1);
        assert_true(flush_file_name_valid(file));
        /* anything but a letter or digit becomes '_', also '/' and bytes >= 0x80 */
        flush_site_file_name("../a/\xc3\xbc", file);
        assert_string_equal(file, "___a___");
        assert_true(flush_file_name_valid(file));
}

static void test_file_name_valid(void **state)
{
        static const struct {
                const char *name;
                bool valid;
        } cases[] = {
                {"", false},    {"abc_DEF_09", true}, {"example_com", true}, {"_", true},
                {"a/b", false}, {"..", false},        {".", false},          {"a.b", false},
                {"a-b", false}, {"a b", false},       {"b\xc3\xbc", false},  {"a\n", false},
        };
        char name[FLUSH_SITE_MAX + 2];

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                if (flush_file_name_valid(cases[i].name) != cases[i].valid)
                        fail_msg("flush_file_name_valid(\"%s\"): want %s", cases[i].name,
                                 cases[i].valid ? "valid" : "invalid");

        memset(name, 'x', FLUSH_SITE_MAX - 1);
        name[FLUSH_SITE_MAX - 1] = '\0';
        assert_int_equal(strlen(name), 255);
        assert_true(flush_file_name_valid(name));
        name[FLUSH_SITE_MAX - 1] = 'x';
        name[FLUSH_SITE_MAX] = '\0';
        assert_int_equal(strlen(name), 256);
        assert_false(flush_file_name_valid(name));
        /* a bad character at the very end is seen */
        memset(name, 'x', FLUSH_SITE_MAX - 1);
        name[FLUSH_SITE_MAX - 2] = '/';
        name[FLUSH_SITE_MAX - 1] = '\0';
        assert_false(flush_file_name_valid(name));
}

/* xorshift64 - deterministic pseudo-random numbers */
static uint64_t xorshift64(uint64_t *s)
{
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        return *s;
}

/* check_property - when SITE is accepted, its canonical form and file name keep their promises;
 * returns whether it was accepted */
static bool check_property(const char *site)
{
        char canonical[FLUSH_SITE_MAX], again[FLUSH_SITE_MAX], file[FLUSH_SITE_MAX];
        int r;

        r = flush_site_canonical(site, canonical);
        if (r == -EINVAL || r == -EADDRNOTAVAIL)
                return false;
        if (r != 0)
                fail_msg("flush_site_canonical(\"%s\"): unexpected %d", site, r);
        if (strlen(canonical) >= FLUSH_SITE_MAX || !valid_hostname(canonical))
                fail_msg("canonical \"%s\" of \"%s\" is not a valid host name", canonical, site);
        for (const char *p = canonical; *p; p++)
                if ((unsigned char) *p >= 0x80 || (*p >= 'A' && *p <= 'Z'))
                        fail_msg("canonical \"%s\" of \"%s\" is not lower-case ASCII", canonical, site);
        if (flush_site_canonical(canonical, again) != 0 || !streq(again, canonical))
                fail_msg("canonical \"%s\" of \"%s\" is not its own canonical form", canonical, site);
        flush_site_file_name(canonical, file);
        if (!flush_file_name_valid(file) || strchr(file, '/') || streq(file, ".") || streq(file, ".."))
                fail_msg("file name \"%s\" of \"%s\" is not a safe name", file, site);
        if (strlen(file) != strlen(canonical))
                fail_msg("file name \"%s\" of \"%s\" has another length", file, site);
        return true;
}

static void test_property(void **state)
{
        static const char *const edge[] = {
                "",
                ".",
                "..",
                "...",
                "/",
                "./",
                "../",
                "a/..",
                "a/../b",
                "..a",
                "a..",
                "_",
                "-",
                "_._",
                "a_",
                "_a",
                "0",
                "0.a",
                "a.0",
                "\\",
                "%2e%2e",
                "a%2fb",
                "[",
                "]",
                "a]",
                "\xc3\xbc",
                "\xc3\xbc.",
                "\xc3\xbc..",
                ".\xc3\xbc",
                "\xe3\x80\x82",
                "a\xe3\x80\x82",
                "\xe3\x80\x82\xe3\x80\x82",
                "\xef\xbc\x8e\xef\xbc\x8e", /* fullwidth full stops */
                "\xef\xbc\x8f",             /* fullwidth solidus */
                "\xe2\x88\x95",             /* division slash */
                ("a\xe2\x81\x84"
                 "b"), /* fraction slash */
                "xn--",
                "xn--a",
                "xn--.example",
                "XN--ZZZZ",
                "a.xn--",
        };
        /* pieces that generated sites are made of */
        static const char *const pieces[] = {
                "a",
                "Z",
                "9",
                "0",
                "-",
                "_",
                ".",
                "..",
                "/",
                " ",
                ";",
                "[",
                "xn--",
                "example",
                "COM",
                "\xc3\xbc",
                "\xc3\x9c",
                "\xc3\x9f",
                "\xe3\x80\x82",
                "\xef\xbc\xa1",
                "\xef\xbc\x8e",
                "\xef\xbc\x8f",
                "\xc2\xad",
                "\xe2\x80\x8b",
                "\xff",
                "\xc3",
                "\x80",
                "\xf0\x9f\x98\x80",
                "\xe2\x80\xae",
                "\xd9\x85",
                "\xd7\x90",
                "1",
        };
        uint64_t seed = 0x2545f4914f6cdd1dULL;
        size_t accepted = 0, total = 0;
        char site[FLUSH_SITE_INPUT_MAX + 64];

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(edge); i++, total++)
                accepted += check_property(edge[i]);

        for (size_t i = 0; i < 600; i++, total++) {
                size_t n = xorshift64(&seed) % 24 + 1, len = 0;

                /* a third of them from a valid name with pieces mixed in, so that many succeed */
                if (i % 3 == 0) {
                        strcpy(site, "host.example");
                        len = strlen(site);
                }
                for (size_t k = 0; k < n; k++) {
                        const char *p;
                        uint64_t x = xorshift64(&seed);

                        /* letters more often than the rest */
                        p = x % 3 == 0 ? pieces[x / 3 % ELEMENTSOF(pieces)] : pieces[x / 3 % 4];
                        if (len + strlen(p) >= sizeof(site))
                                break;
                        if (i % 3 == 0 && x % 2 == 0) {
                                /* insert at the front: the tail stays a valid name */
                                memmove(site + strlen(p), site, len + 1);
                                memcpy(site, p, strlen(p));
                        } else
                                strcpy(site + len, p);
                        len += strlen(p);
                }
                site[len] = '\0';
                accepted += check_property(site);
        }
        /* the generator must reach both outcomes, or the property says little */
        if (accepted < 50 || accepted > total - 50)
                fail_msg("%zu of %zu generated sites accepted: the generator is off", accepted, total);
}

/* fast_flush_domains in UTF-8 match sites as their ASCII form does; "!" and "." are kept */
static void test_domains_idna(void **state)
{
        /* the first pattern that matches decides: the exception comes first */
        Conf *c = test_conf_from_text("relay_domains = !.privat.bücher.example, bücher.example, "
                                      ".Straße.example, xn--bad-\n");
        DomainList l;
        char site[FLUSH_SITE_MAX];

        (void) state;
        assert_int_equal(flush_domains_from_conf(c, &l), 0);
        assert_string_equal(l.patterns[0], "!.privat.xn--bcher-kva.example");
        assert_string_equal(l.patterns[1], "xn--bcher-kva.example");
        assert_string_equal(l.patterns[2], ".xn--strae-oqa.example");
        assert_int_equal(flush_site_canonical("BÜCHER.example", site), 0);
        assert_true(domain_list_match(&l, site));
        assert_int_equal(flush_site_canonical("mx.bücher.example", site), 0);
        assert_true(domain_list_match(&l, site));       /* parent matching: relay_domains' default */
        assert_int_equal(flush_site_canonical("a.privat.bücher.example", site), 0);
        assert_false(domain_list_match(&l, site));
        assert_int_equal(flush_site_canonical("mx.straße.example", site), 0);
        assert_true(domain_list_match(&l, site));
        domain_list_done(&l);
        conf_free(c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ascii),           cmocka_unit_test(test_idna),
                cmocka_unit_test(test_lengths),         cmocka_unit_test(test_file_name),
                cmocka_unit_test(test_file_name_valid), cmocka_unit_test(test_property),
                cmocka_unit_test(test_domains_idna),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
