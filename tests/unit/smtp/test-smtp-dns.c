/* SPDX-License-Identifier: MIT */
/*
 * test-smtp-dns.c - nexthops, DNS answers, MX and address order (src/smtp/smtp-dns.c)
 *
 * Table-driven. smtp_nexthop_parse_list: SMTP and LMTP destinations, good (names, literals
 * with and without "ipv6:", ports by number and name, inet: and unix:, lists separated by commas
 * and whitespace) and bad (empty parts, brackets, ports 0, 65536, "", "25x", relative or SMTP
 * unix: paths), with the reason. DNS answers are built here by a small message builder (header,
 * question, records; names written out or compressed with pointers) and parsed by
 * smtp_dns_parse_mx / smtp_dns_parse_addr: several preferences, null MX, NODATA, NXDOMAIN,
 * SERVFAIL, REFUSED, TC, bad headers and question counts, CNAME chains (in and out of order, to
 * exactly SMTP_DNS_CNAME_MAX links and one more), CNAME loops, compression loops and pointers out
 * of the message, other owners, classes and types ignored, RDATA lengths, records past the end,
 * A and AAAA. Every case is then parsed again from every prefix of its message (each in a buffer
 * of exactly that size, so AddressSanitizer sees a read past it) - a prefix gives -EBADMSG or
 * the whole message's result - and with bytes changed one at a time (never a crash, and results
 * keep their shape). smtp_mx_sort: a property test over many seeds (groups by preference, each
 * group a permutation, every permutation of a 3-element group seen, roughly evenly), the same
 * seed the same order, duplicates and bad names dropped and freed. smtp_mx_is_null and
 * smtp_dns_addr_order ("ipv4", "ipv6" stable; "any" a permutation, every order seen).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
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
#include "macro.h"
#include "smtp-dns.h"

/* ---- nexthops ------------------------------------------------------------------------------ */

typedef struct NexthopCase {
        const char *text;
        bool lmtp;
        int ret;
        const char *want;   /* ret 0: the entries as format_nexthops() writes them */
        const char *reason; /* ret -EINVAL */
} NexthopCase;

/* format_nexthops - "example.com:25 mx", "[example.com]:25", "[192.0.2.1]:25 inet",
 * "[2001:db8::1]:24 inet6", "unix:/path", joined by ", " */
static void format_nexthops(const SmtpNexthop *a, size_t n, char *buf, size_t size)
{
        size_t len = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < n; i++) {
                const SmtpNexthop *h = &a[i];
                const char *sep = i ? ", " : "";
                int k;

                if (h->unix_path)
                        k = snprintf(buf + len, size - len, "%sunix:%s%s%s", sep, h->unix_path,
                                     h->host ? " HOST" : "", h->mx || h->literal ? " FLAGS" : "");
                else if (h->mx)
                        k = snprintf(buf + len, size - len, "%s%s:%u mx%s", sep, h->host, h->port,
                                     h->literal || h->family != AF_UNSPEC ? " LITERAL" : "");
                else
                        k = snprintf(buf + len, size - len, "%s[%s]:%u%s%s", sep, h->host, h->port,
                                     !h->literal             ? ""
                                     : h->family == AF_INET  ? " inet"
                                     : h->family == AF_INET6 ? " inet6"
                                                             : " FAMILY?",
                                     !h->literal && h->family != AF_UNSPEC ? " FAMILY" : "");
                assert_true(k > 0 && (size_t) k < size - len);
                len += (size_t) k;
        }
}

static void run_nexthop_cases(const NexthopCase *cases, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                const NexthopCase *t = &cases[i];
                SmtpNexthop *a = NULL;
                size_t count = 0;
                const char *reason = NULL;
                char got[1024];
                int r;

                r = smtp_nexthop_parse_list(t->text, t->lmtp, &a, &count, &reason);
                if (r != t->ret) {
                        if (r == 0)
                                format_nexthops(a, count, got, sizeof(got));
                        fail_msg("case %zu: %s \"%s\": want %d, got %d (%s)", i, t->lmtp ? "lmtp" : "smtp",
                                 t->text, t->ret, r, r == 0 ? got : strna(reason));
                }
                if (r < 0) {
                        if (!reason || !streq(reason, t->reason))
                                fail_msg("case %zu: %s \"%s\": want reason \"%s\", got \"%s\"", i,
                                         t->lmtp ? "lmtp" : "smtp", t->text, t->reason, strna(reason));
                        continue;
                }
                assert_non_null(a);
                assert_true(count >= 1);
                format_nexthops(a, count, got, sizeof(got));
                if (!streq(got, t->want))
                        fail_msg("case %zu: %s \"%s\": want \"%s\", got \"%s\"", i,
                                 t->lmtp ? "lmtp" : "smtp", t->text, t->want, got);
                smtp_nexthop_free_array(a, count);
        }
}

static void test_nexthop_smtp(void **state)
{
        static const NexthopCase cases[] = {
                {"example.com", false, 0, "example.com:25 mx"},
                {"Example.COM", false, 0, "example.com:25 mx"},
                {"example.com:587", false, 0, "example.com:587 mx"},
                {"example.com:smtp", false, 0, "example.com:25 mx"},
                {"example.com:lmtp", false, 0, "example.com:24 mx"},
                {"example.com:1", false, 0, "example.com:1 mx"},
                {"example.com:65535", false, 0, "example.com:65535 mx"},
                {"example.com:00025", false, 0, "example.com:25 mx"},
                {"[mail.Example.com]", false, 0, "[mail.example.com]:25"},
                {"[mail.example.com]:2525", false, 0, "[mail.example.com]:2525"},
                {"[192.0.2.1]", false, 0, "[192.0.2.1]:25 inet"},
                {"[192.0.2.1]:26", false, 0, "[192.0.2.1]:26 inet"},
                {"[2001:DB8::1]", false, 0, "[2001:db8::1]:25 inet6"},
                {"[ipv6:2001:db8::1]:587", false, 0, "[2001:db8::1]:587 inet6"},
                {"[IPv6:2001:DB8:0:0::1]", false, 0, "[2001:db8::1]:25 inet6"},
                {"[IPV6:::1]", false, 0, "[::1]:25 inet6"},
                {"[ipv6:::ffff:192.0.2.1]", false, 0, "[::ffff:192.0.2.1]:25 inet6"},
                {"inet:example.com", false, 0, "example.com:25 mx"},
                {"INET:[192.0.2.1]:25", false, 0, "[192.0.2.1]:25 inet"},
                {"  example.com  ", false, 0, "example.com:25 mx"},
                {"a_b.example", false, 0, "a_b.example:25 mx"},
                /* Postfix 3.5 lists: commas and/or whitespace */
                {"a.example,b.example", false, 0, "a.example:25 mx, b.example:25 mx"},
                {"a.example, [b.example]:26  c.example", false, 0,
                 "a.example:25 mx, [b.example]:26, c.example:25 mx"},
                {"a.example\t,\n[192.0.2.1]\r\n", false, 0, "a.example:25 mx, [192.0.2.1]:25 inet"},
                {"a.example a.example", false, 0, "a.example:25 mx, a.example:25 mx"},
                /* empty parts */
                {"", false, -EINVAL, NULL, "empty destination"},
                {" \t ", false, -EINVAL, NULL, "empty destination"},
                {",", false, -EINVAL, NULL, "empty destination"},
                {"a.example,", false, -EINVAL, NULL, "empty destination"},
                {"a.example, ", false, -EINVAL, NULL, "empty destination"},
                {",a.example", false, -EINVAL, NULL, "empty destination"},
                {"a.example,,b.example", false, -EINVAL, NULL, "empty destination"},
                {"a.example , , b.example", false, -EINVAL, NULL, "empty destination"},
                {":25", false, -EINVAL, NULL, "empty host"},
                {"inet:", false, -EINVAL, NULL, "empty host"},
                /* brackets */
                {"[", false, -EINVAL, NULL, "bad address literal"},
                {"[]", false, -EINVAL, NULL, "empty host"},
                {"[]:25", false, -EINVAL, NULL, "empty host"},
                {"[host", false, -EINVAL, NULL, "bad address literal"},
                {"[192.0.2.1", false, -EINVAL, NULL, "bad address literal"},
                {"[192.0.2.1]x", false, -EINVAL, NULL, "bad address literal"},
                {"[192.0.2.1]]", false, -EINVAL, NULL, "bad address literal"},
                {"[[192.0.2.1]]", false, -EINVAL, NULL, "bad address literal"},
                {"[192.0.2.256]", false, -EINVAL, NULL, "bad host name"},
                {"[192.0.2]", false, -EINVAL, NULL, "bad host name"},
                {"[ipv6:192.0.2.1]", false, -EINVAL, NULL, "bad IPv6 address"},
                {"[ipv6:]", false, -EINVAL, NULL, "bad IPv6 address"},
                {"[ipv6:example.com]", false, -EINVAL, NULL, "bad IPv6 address"},
                {"[2001:db8::1::2]", false, -EINVAL, NULL, "bad IPv6 address"},
                {"[fe80::1%eth0]", false, -EINVAL, NULL, "bad IPv6 address"},
                {"[-bad.example]", false, -EINVAL, NULL, "bad host name"},
                /* host names */
                {"192.0.2.1", false, -EINVAL, NULL, "bad host name"},
                {"2001:db8::1", false, -EINVAL, NULL, "bad host name"},
                {"example.com.", false, -EINVAL, NULL, "bad host name"},
                {"a..example", false, -EINVAL, NULL, "bad host name"},
                {"-a.example", false, -EINVAL, NULL, "bad host name"},
                {"a/b.example", false, -EINVAL, NULL, "bad host name"},
                {"user@example.com", false, -EINVAL, NULL, "bad host name"},
                {"good.example, bad..example", false, -EINVAL, NULL, "bad host name"},
                /* ports */
                {"example.com:0", false, -EINVAL, NULL, "bad port"},
                {"example.com:65536", false, -EINVAL, NULL, "bad port"},
                {"example.com:99999999999999999999", false, -EINVAL, NULL, "bad port"},
                {"example.com:", false, -EINVAL, NULL, "bad port"},
                {"example.com:25x", false, -EINVAL, NULL, "bad port"},
                {"example.com:+25", false, -EINVAL, NULL, "bad port"},
                {"example.com:-1", false, -EINVAL, NULL, "bad port"},
                {"example.com:SMTP", false, -EINVAL, NULL, "bad port"},
                {"example.com:submission", false, -EINVAL, NULL, "bad port"},
                {"example.com:25:26", false, -EINVAL, NULL, "bad port"},
                {"[192.0.2.1]:", false, -EINVAL, NULL, "bad port"},
                {"[192.0.2.1]:0", false, -EINVAL, NULL, "bad port"},
                {"[ipv6:::1]:65536", false, -EINVAL, NULL, "bad port"},
                /* unix: is LMTP's */
                {"unix:/run/lmtp", false, -EINVAL, NULL, "unix: destination is for LMTP only"},
                {"a.example, unix:/run/lmtp", false, -EINVAL, NULL, "unix: destination is for LMTP only"},
        };

        (void) state;
        run_nexthop_cases(cases, ELEMENTSOF(cases));
}

static void test_nexthop_lmtp(void **state)
{
        static const NexthopCase cases[] = {
                {"unix:/run/dovecot/lmtp", true, 0, "unix:/run/dovecot/lmtp"},
                {"UNIX:/Run/LMTP", true, 0, "unix:/Run/LMTP"},
                {"example.com", true, 0, "[example.com]:24"},
                {"Example.com:2424", true, 0, "[example.com]:2424"},
                {"inet:localhost", true, 0, "[localhost]:24"},
                {"inet:localhost:smtp", true, 0, "[localhost]:25"},
                {"inet:127.0.0.1:24", true, 0, "[127.0.0.1]:24 inet"},
                {"192.0.2.1", true, 0, "[192.0.2.1]:24 inet"},
                {"[192.0.2.1]", true, 0, "[192.0.2.1]:24 inet"},
                {"inet:[ipv6:::1]:lmtp", true, 0, "[::1]:24 inet6"},
                {"[lmtp.example]", true, 0, "[lmtp.example]:24"},
                {"unix:/a b.example", true, 0, "unix:/a, [b.example]:24"},
                {"unix:/run/a,inet:b.example:2000 unix:/run/c", true, 0,
                 "unix:/run/a, [b.example]:2000, unix:/run/c"},
                {"unix:", true, -EINVAL, NULL, "unix: path not absolute"},
                {"unix:run/lmtp", true, -EINVAL, NULL, "unix: path not absolute"},
                {"", true, -EINVAL, NULL, "empty destination"},
                {"unix:/a,", true, -EINVAL, NULL, "empty destination"},
                {"192.0.2.1:0", true, -EINVAL, NULL, "bad port"},
                {"192.0.2.1:65536", true, -EINVAL, NULL, "bad port"},
                {"192.0.2.1:", true, -EINVAL, NULL, "bad port"},
                {"192.0.2.1:24x", true, -EINVAL, NULL, "bad port"},
                {"192.0.2", true, -EINVAL, NULL, "bad host name"},
                {"[", true, -EINVAL, NULL, "bad address literal"},
                {"[]", true, -EINVAL, NULL, "empty host"},
                {"[host", true, -EINVAL, NULL, "bad address literal"},
                {"a..b", true, -EINVAL, NULL, "bad host name"},
        };
        /* the longest path that fits sun_path (108 bytes with its NUL) */
        char path[128], want[140];
        SmtpNexthop *a = NULL;
        const char *reason = NULL;
        size_t n = 0;

        (void) state;
        run_nexthop_cases(cases, ELEMENTSOF(cases));

        strcpy(path, "unix:/");
        memset(path + 6, 'p', 106);
        path[112] = '\0';
        assert_int_equal(strlen(path + 5), 107);
        assert_int_equal(smtp_nexthop_parse_list(path, true, &a, &n, NULL), 0);
        snprintf(want, sizeof(want), "%s", path + 5);
        assert_int_equal(n, 1);
        assert_null(a[0].host);
        assert_string_equal(a[0].unix_path, want);
        smtp_nexthop_free_array(a, n);
        /* one byte more does not fit */
        strcat(path, "p");
        assert_int_equal(smtp_nexthop_parse_list(path, true, &a, &n, &reason), -EINVAL);
        assert_string_equal(reason, "unix: path too long");
        /* a NULL reason is allowed on failure too */
        assert_int_equal(smtp_nexthop_parse_list("[", true, &a, &n, NULL), -EINVAL);
}

/* a long list grows its array more than once */
static void test_nexthop_long_list(void **state)
{
        char text[64 * 16] = "";
        SmtpNexthop *a = NULL;
        size_t n = 0;

        (void) state;
        for (size_t i = 0; i < 50; i++) {
                char part[32];

                snprintf(part, sizeof(part), "%sh%zu.example", i % 2 ? " " : ",", i);
                strcat(text, i ? part : part + 1);
        }
        assert_int_equal(smtp_nexthop_parse_list(text, false, &a, &n, NULL), 0);
        assert_int_equal(n, 50);
        for (size_t i = 0; i < n; i++) {
                char want[32];

                snprintf(want, sizeof(want), "h%zu.example", i);
                if (!streq(a[i].host, want) || !a[i].mx || a[i].port != 25)
                        fail_msg("entry %zu: want %s:25 mx, got %s:%u%s", i, want, a[i].host, a[i].port,
                                 a[i].mx ? " mx" : "");
        }
        smtp_nexthop_free_array(a, n);
        smtp_nexthop_free_array(NULL, 0);
}

/* ---- a DNS message builder ----------------------------------------------------------------- */

#define NO_PTR SIZE_MAX
#define F_RESPONSE 0x8180 /* QR, RD, RA; opcode QUERY, NOERROR */
#define CLASS_IN 1
#define CLASS_CH 3
#define T_TXT 16

typedef struct Msg {
        uint8_t b[4096];
        size_t n;
} Msg;

static void put8(Msg *m, unsigned v)
{
        assert_true(m->n < sizeof(m->b));
        m->b[m->n++] = (uint8_t) v;
}

static void put16(Msg *m, unsigned v)
{
        put8(m, v >> 8 & 0xff);
        put8(m, v & 0xff);
}

static void put32(Msg *m, uint32_t v)
{
        put16(m, v >> 16);
        put16(m, v & 0xffff);
}

/* put_name_ptr - the labels of NAME ("" none), then a pointer to PTR, or the root if NO_PTR;
 * returns where the name starts */
static size_t put_name_ptr(Msg *m, const char *name, size_t ptr)
{
        size_t start = m->n;

        while (*name) {
                size_t len = strcspn(name, ".");

                assert_true(len > 0 && len < 64);
                put8(m, (unsigned) len);
                for (size_t i = 0; i < len; i++)
                        put8(m, (unsigned char) name[i]);
                name += len;
                if (*name == '.')
                        name++;
        }
        if (ptr == NO_PTR)
                put8(m, 0);
        else
                put16(m, 0xc000 | (unsigned) ptr);
        return start;
}

static size_t put_name(Msg *m, const char *name)
{
        return put_name_ptr(m, name, NO_PTR);
}

static void put_header(Msg *m, unsigned flags, unsigned qd, unsigned an, unsigned ns, unsigned ar)
{
        m->n = 0;
        put16(m, 0x1234);
        put16(m, flags);
        put16(m, qd);
        put16(m, an);
        put16(m, ns);
        put16(m, ar);
}

/* put_question - returns where its name starts (12, the usual target of pointers) */
static size_t put_question(Msg *m, const char *name, unsigned type)
{
        size_t at = put_name(m, name);

        put16(m, type);
        put16(m, CLASS_IN);
        return at;
}

/* rr_begin - after the owner: type, class, TTL and a RDLENGTH that rr_end() fills in */
static size_t rr_begin(Msg *m, unsigned type, unsigned class)
{
        size_t at;

        put16(m, type);
        put16(m, class);
        put32(m, 3600);
        at = m->n;
        put16(m, 0);
        return at;
}

static void rr_end(Msg *m, size_t at)
{
        size_t len = m->n - at - 2;

        m->b[at] = (uint8_t) (len >> 8);
        m->b[at + 1] = (uint8_t) len;
}

static void rr_mx(Msg *m, const char *owner, unsigned pref, const char *exchange)
{
        size_t at;

        put_name(m, owner);
        at = rr_begin(m, SMTP_DNS_T_MX, CLASS_IN);
        put16(m, pref);
        put_name(m, exchange);
        rr_end(m, at);
}

static void rr_cname(Msg *m, const char *owner, const char *target)
{
        size_t at;

        put_name(m, owner);
        at = rr_begin(m, SMTP_DNS_T_CNAME, CLASS_IN);
        put_name(m, target);
        rr_end(m, at);
}

static void rr_addr(Msg *m, const char *owner, const char *text)
{
        unsigned char a[16];
        bool v6 = strchr(text, ':');
        size_t at;

        assert_int_equal(inet_pton(v6 ? AF_INET6 : AF_INET, text, a), 1);
        put_name(m, owner);
        at = rr_begin(m, v6 ? SMTP_DNS_T_AAAA : SMTP_DNS_T_A, CLASS_IN);
        for (size_t i = 0; i < (v6 ? 16U : 4U); i++)
                put8(m, a[i]);
        rr_end(m, at);
}

/* ---- canned answers ------------------------------------------------------------------------ */

/* MX example.com: 20 mx2, 10 mx1, 10 MX1B (upper case), names written out */
static void build_mx_several(Msg *m)
{
        put_header(m, F_RESPONSE, 1, 3, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
        rr_mx(m, "example.com", 20, "mx2.example.com");
        rr_mx(m, "example.com", 10, "mx1.example.com");
        rr_mx(m, "Example.COM", 10, "MX1B.Example.com");
}

/* the same with compression: owners point at the question, exchanges at earlier names */
static void build_mx_compressed(Msg *m)
{
        size_t q, at, owner;

        put_header(m, F_RESPONSE, 1, 3, 0, 0);
        q = put_question(m, "example.com", SMTP_DNS_T_MX);
        owner = put_name_ptr(m, "", q);
        at = rr_begin(m, SMTP_DNS_T_MX, CLASS_IN);
        put16(m, 20);
        put_name_ptr(m, "mx2", q);
        rr_end(m, at);
        put_name_ptr(m, "", q);
        at = rr_begin(m, SMTP_DNS_T_MX, CLASS_IN);
        put16(m, 10);
        put_name_ptr(m, "mx1", q);
        rr_end(m, at);
        /* an owner that is a pointer to a pointer */
        put_name_ptr(m, "", owner);
        at = rr_begin(m, SMTP_DNS_T_MX, CLASS_IN);
        put16(m, 10);
        put_name_ptr(m, "MX1B", q);
        rr_end(m, at);
}

/* an exchange that is a pointer to the exchange of an earlier record, which is itself compressed */
static void build_mx_ptr_chain(Msg *m)
{
        size_t q, at, mx2;

        put_header(m, F_RESPONSE, 1, 2, 0, 0);
        q = put_question(m, "example.com", SMTP_DNS_T_MX);
        put_name_ptr(m, "", q);
        at = rr_begin(m, SMTP_DNS_T_MX, CLASS_IN);
        put16(m, 5);
        mx2 = put_name_ptr(m, "mx2", q);
        rr_end(m, at);
        put_name_ptr(m, "", q);
        at = rr_begin(m, SMTP_DNS_T_MX, CLASS_IN);
        put16(m, 7);
        put_name_ptr(m, "backup", mx2);
        rr_end(m, at);
}

static void build_null_mx(Msg *m)
{
        put_header(m, F_RESPONSE, 1, 1, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
        rr_mx(m, "example.com", 0, "");
}

static void build_nodata(Msg *m)
{
        put_header(m, F_RESPONSE, 1, 0, 1, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
        /* an SOA in the authority section: never read */
        put_name(m, "example.com");
        rr_end(m, rr_begin(m, 6, CLASS_IN));
}

static void build_nxdomain(Msg *m)
{
        put_header(m, F_RESPONSE | 3, 1, 0, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
}

static void build_servfail(Msg *m)
{
        put_header(m, F_RESPONSE | 2, 1, 0, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
}

static void build_refused(Msg *m)
{
        put_header(m, F_RESPONSE | 5, 1, 0, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
}

/* TC set: the rest may be anything, the answer is too short to trust */
static void build_truncated(Msg *m)
{
        put_header(m, F_RESPONSE | 0x0200, 1, 1, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
}

static void build_not_response(Msg *m)
{
        put_header(m, 0x0100, 1, 0, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
}

static void build_bad_opcode(Msg *m)
{
        put_header(m, F_RESPONSE | 2 << 11, 1, 0, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
}

static void build_no_question(Msg *m)
{
        put_header(m, F_RESPONSE, 0, 1, 0, 0);
        rr_mx(m, "example.com", 10, "mx.example.com");
}

/* two questions and nothing else: not NODATA */
static void build_two_questions_only(Msg *m)
{
        put_header(m, F_RESPONSE, 2, 0, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
        put_question(m, "example.com", SMTP_DNS_T_MX);
}

static void build_two_questions(Msg *m)
{
        put_header(m, F_RESPONSE, 2, 1, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
        put_question(m, "example.com", SMTP_DNS_T_MX);
        rr_mx(m, "example.com", 10, "mx.example.com");
}

/* example.com -> a.example.net -> b.example.org, MX there */
static void build_cname_mx(Msg *m)
{
        put_header(m, F_RESPONSE, 1, 4, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
        rr_cname(m, "example.com", "a.example.net");
        rr_cname(m, "A.Example.NET", "b.example.org");
        rr_mx(m, "b.example.org", 10, "mx.example.org");
        /* the original owner's records are not the answer once it is an alias */
        rr_mx(m, "a.example.net", 5, "wrong.example.net");
}

/* the same chain, records in reverse order */
static void build_cname_mx_reversed(Msg *m)
{
        put_header(m, F_RESPONSE, 1, 3, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
        rr_mx(m, "b.example.org", 10, "mx.example.org");
        rr_cname(m, "a.example.net", "B.example.org");
        rr_cname(m, "example.com", "a.example.net");
}

/* a chain of LINKS CNAMEs from example.com to c<LINKS>.example, then its MX */
static void build_cname_chain(Msg *m, size_t links)
{
        char owner[32], target[32];

        put_header(m, F_RESPONSE, 1, (unsigned) links + 1, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
        strcpy(owner, "example.com");
        for (size_t i = 1; i <= links; i++) {
                snprintf(target, sizeof(target), "c%zu.example", i);
                rr_cname(m, owner, target);
                strcpy(owner, target);
        }
        rr_mx(m, owner, 10, "mx.example");
}

static void build_cname_chain_max(Msg *m)
{
        build_cname_chain(m, SMTP_DNS_CNAME_MAX);
}

static void build_cname_chain_too_long(Msg *m)
{
        build_cname_chain(m, SMTP_DNS_CNAME_MAX + 1);
}

static void build_cname_loop(Msg *m)
{
        put_header(m, F_RESPONSE, 1, 3, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
        rr_cname(m, "example.com", "a.example");
        rr_cname(m, "a.example", "b.example");
        rr_cname(m, "b.example", "A.EXAMPLE");
}

static void build_cname_self(Msg *m)
{
        put_header(m, F_RESPONSE, 1, 1, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
        rr_cname(m, "example.com", "example.com");
}

/* a CNAME back to the query name */
static void build_cname_back(Msg *m)
{
        put_header(m, F_RESPONSE, 1, 2, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
        rr_cname(m, "example.com", "a.example");
        rr_cname(m, "a.example", "example.com");
}

/* a CNAME that goes nowhere: NODATA */
static void build_cname_dangling(Msg *m)
{
        put_header(m, F_RESPONSE, 1, 2, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
        rr_cname(m, "example.com", "a.example");
        rr_mx(m, "example.com", 10, "mx.example.com");
}

/* an owner name that is a pointer to itself */
static void build_ptr_loop(Msg *m)
{
        size_t at;

        put_header(m, F_RESPONSE, 1, 1, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
        at = m->n;
        put16(m, 0xc000 | (unsigned) at);
        rr_end(m, rr_begin(m, SMTP_DNS_T_MX, CLASS_IN));
}

/* two pointers to each other, in an exchange */
static void build_ptr_loop2(Msg *m)
{
        size_t at, rd;

        put_header(m, F_RESPONSE, 1, 1, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
        put_name_ptr(m, "", 12);
        at = rr_begin(m, SMTP_DNS_T_MX, CLASS_IN);
        put16(m, 10);
        rd = m->n;
        put16(m, 0xc000 | (unsigned) (rd + 2));
        put16(m, 0xc000 | (unsigned) rd);
        rr_end(m, at);
}

static void build_ptr_out_of_range(Msg *m)
{
        size_t at;

        put_header(m, F_RESPONSE, 1, 1, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
        put_name_ptr(m, "", 12);
        at = rr_begin(m, SMTP_DNS_T_MX, CLASS_IN);
        put16(m, 10);
        put_name_ptr(m, "mx", 0x3fff);
        rr_end(m, at);
}

/* a pointer in the question past the end */
static void build_question_ptr_out(Msg *m)
{
        put_header(m, F_RESPONSE, 1, 0, 0, 0);
        put_name_ptr(m, "", 200);
        put16(m, SMTP_DNS_T_MX);
        put16(m, CLASS_IN);
}

/* a label type other than 00 and 11 */
static void build_bad_label_type(Msg *m)
{
        put_header(m, F_RESPONSE, 1, 1, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
        put8(m, 0x41);
        put8(m, 0);
        rr_end(m, rr_begin(m, SMTP_DNS_T_MX, CLASS_IN));
}

/* records of other owners, classes and types around the answer */
static void build_other_owners(Msg *m)
{
        size_t at;

        put_header(m, F_RESPONSE, 1, 6, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
        rr_mx(m, "other.example", 1, "mx.other.example");
        rr_mx(m, "sub.example.com", 2, "mx.sub.example.com");
        rr_mx(m, "com", 3, "mx.com");
        put_name(m, "example.com");
        at = rr_begin(m, SMTP_DNS_T_MX, CLASS_CH);
        put16(m, 4);
        put_name(m, "chaos.example.com");
        rr_end(m, at);
        put_name(m, "example.com");
        at = rr_begin(m, T_TXT, CLASS_IN);
        put8(m, 3);
        put8(m, 'a');
        put8(m, 'b');
        put8(m, 'c');
        rr_end(m, at);
        rr_mx(m, "example.com", 30, "mx.example.com");
}

/* an A record among MX records is checked but not returned */
static void build_mx_and_a(Msg *m)
{
        put_header(m, F_RESPONSE, 1, 2, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
        rr_addr(m, "example.com", "192.0.2.1");
        rr_mx(m, "example.com", 10, "mx.example.com");
}

/* MX RDATA one byte longer than its name */
static void build_mx_rdlength_long(Msg *m)
{
        size_t at;

        put_header(m, F_RESPONSE, 1, 1, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
        put_name(m, "example.com");
        at = rr_begin(m, SMTP_DNS_T_MX, CLASS_IN);
        put16(m, 10);
        put_name(m, "mx.example.com");
        put8(m, 0);
        rr_end(m, at);
}

/* MX RDATA that ends inside its name (the name runs on into the next record) */
static void build_mx_rdlength_short(Msg *m)
{
        size_t at;

        put_header(m, F_RESPONSE, 1, 2, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
        put_name(m, "example.com");
        at = rr_begin(m, SMTP_DNS_T_MX, CLASS_IN);
        put16(m, 10);
        put_name(m, "mx.example.com");
        rr_end(m, at);
        m->b[at + 1] = (uint8_t) (m->b[at + 1] - 4);
        /* what the short RDLENGTH makes of the rest */
        put_name(m, "x");
        rr_end(m, rr_begin(m, T_TXT, CLASS_IN));
}

/* MX RDATA of only a preference */
static void build_mx_rdlength_two(Msg *m)
{
        size_t at;

        put_header(m, F_RESPONSE, 1, 1, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
        put_name(m, "example.com");
        at = rr_begin(m, SMTP_DNS_T_MX, CLASS_IN);
        put16(m, 10);
        rr_end(m, at);
}

/* CNAME RDATA longer than its name */
static void build_cname_rdlength(Msg *m)
{
        size_t at;

        put_header(m, F_RESPONSE, 1, 1, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
        put_name(m, "example.com");
        at = rr_begin(m, SMTP_DNS_T_CNAME, CLASS_IN);
        put_name(m, "a.example");
        put8(m, 0);
        rr_end(m, at);
}

/* two answers announced, one present */
static void build_record_missing(Msg *m)
{
        put_header(m, F_RESPONSE, 1, 2, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
        rr_mx(m, "example.com", 10, "mx.example.com");
}

/* RDLENGTH past the end of the message */
static void build_rdata_past_end(Msg *m)
{
        size_t at;

        put_header(m, F_RESPONSE, 1, 1, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
        put_name(m, "example.com");
        at = rr_begin(m, SMTP_DNS_T_MX, CLASS_IN);
        put16(m, 10);
        put_name(m, "mx.example.com");
        rr_end(m, at);
        m->b[at + 1]++;
}

/* 65535 answers announced in a short message */
static void build_huge_ancount(Msg *m)
{
        put_header(m, F_RESPONSE, 1, 0xffff, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
        rr_mx(m, "example.com", 10, "mx.example.com");
}

/* bytes after the answer section (an additional section cut short) are never read */
static void build_trailing_garbage(Msg *m)
{
        put_header(m, F_RESPONSE, 1, 1, 0, 3);
        put_question(m, "example.com", SMTP_DNS_T_MX);
        rr_mx(m, "example.com", 10, "mx.example.com");
        put8(m, 0xc0);
        put8(m, 0xff);
        put8(m, 0x07);
}

/* a name of 255 bytes on the wire: the longest there is */
static void build_long_names(Msg *m)
{
        char name[300] = "";

        /* 4 labels of 62 bytes and one of 1: 4 * 63 + 2 + 1 = 255 bytes on the wire */
        for (size_t i = 0; i < 4; i++) {
                memset(name + strlen(name), 'a' + (int) i, 62);
                name[63 * (i + 1) - 1] = '.';
                name[63 * (i + 1)] = '\0';
        }
        strcat(name, "z");
        put_header(m, F_RESPONSE, 1, 1, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_MX);
        rr_mx(m, "example.com", 10, name);
}

/* A example.com: two addresses, an AAAA ignored */
static void build_a(Msg *m)
{
        put_header(m, F_RESPONSE, 1, 3, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_A);
        rr_addr(m, "example.com", "192.0.2.1");
        rr_addr(m, "example.com", "2001:db8::9");
        rr_addr(m, "EXAMPLE.com", "198.51.100.7");
}

static void build_aaaa(Msg *m)
{
        put_header(m, F_RESPONSE, 1, 3, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_AAAA);
        rr_addr(m, "example.com", "2001:db8::1");
        rr_addr(m, "example.com", "192.0.2.1");
        rr_addr(m, "example.com", "::ffff:192.0.2.2");
}

static void build_a_cname(Msg *m)
{
        size_t q, at, alias;

        put_header(m, F_RESPONSE, 1, 3, 0, 0);
        q = put_question(m, "www.example.com", SMTP_DNS_T_A);
        put_name_ptr(m, "", q);
        at = rr_begin(m, SMTP_DNS_T_CNAME, CLASS_IN);
        alias = put_name_ptr(m, "web", q + 4);
        rr_end(m, at);
        put_name_ptr(m, "", alias);
        at = rr_begin(m, SMTP_DNS_T_A, CLASS_IN);
        put32(m, 0xc0000205);
        rr_end(m, at);
        rr_addr(m, "www.example.com", "192.0.2.99");
}

static void build_a_rdlength(Msg *m)
{
        size_t at;

        put_header(m, F_RESPONSE, 1, 1, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_A);
        put_name(m, "example.com");
        at = rr_begin(m, SMTP_DNS_T_A, CLASS_IN);
        put32(m, 0xc0000201);
        put8(m, 0);
        rr_end(m, at);
}

static void build_aaaa_rdlength(Msg *m)
{
        size_t at;

        put_header(m, F_RESPONSE, 1, 1, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_AAAA);
        put_name(m, "example.com");
        at = rr_begin(m, SMTP_DNS_T_AAAA, CLASS_IN);
        put32(m, 0xc0000201);
        rr_end(m, at);
}

/* an A record of class CH with 5 bytes: other classes are not checked */
static void build_a_other_class(Msg *m)
{
        size_t at;

        put_header(m, F_RESPONSE, 1, 2, 0, 0);
        put_question(m, "example.com", SMTP_DNS_T_A);
        put_name(m, "example.com");
        at = rr_begin(m, SMTP_DNS_T_A, CLASS_CH);
        put32(m, 0xc0000201);
        put8(m, 0);
        rr_end(m, at);
        rr_addr(m, "example.com", "192.0.2.2");
}

typedef struct DnsCase {
        const char *what;
        void (*build)(Msg *m);
        const char *qname;
        int type;
        int ret;
        const char *want; /* ret 0: as format_mx() / format_addr() write it */
} DnsCase;

static const DnsCase dns_cases[] = {
        {"several preferences", build_mx_several, "example.com", SMTP_DNS_T_MX, 0,
         "20 mx2.example.com, 10 mx1.example.com, 10 mx1b.example.com"},
        {"compressed", build_mx_compressed, "example.com", SMTP_DNS_T_MX, 0,
         "20 mx2.example.com, 10 mx1.example.com, 10 mx1b.example.com"},
        {"pointer to a compressed name", build_mx_ptr_chain, "example.com", SMTP_DNS_T_MX, 0,
         "5 mx2.example.com, 7 backup.mx2.example.com"},
        {"qname in upper case with a dot", build_mx_several, "EXAMPLE.com.", SMTP_DNS_T_MX, 0,
         "20 mx2.example.com, 10 mx1.example.com, 10 mx1b.example.com"},
        {"other qname", build_mx_several, "example.org", SMTP_DNS_T_MX, 0, ""},
        {"null MX", build_null_mx, "example.com", SMTP_DNS_T_MX, 0, "0 ."},
        {"NODATA", build_nodata, "example.com", SMTP_DNS_T_MX, 0, ""},
        {"NXDOMAIN", build_nxdomain, "example.com", SMTP_DNS_T_MX, -ENXIO, NULL},
        {"SERVFAIL", build_servfail, "example.com", SMTP_DNS_T_MX, -EAGAIN, NULL},
        {"REFUSED", build_refused, "example.com", SMTP_DNS_T_MX, -EAGAIN, NULL},
        {"TC", build_truncated, "example.com", SMTP_DNS_T_MX, -EMSGSIZE, NULL},
        {"QR clear", build_not_response, "example.com", SMTP_DNS_T_MX, -EBADMSG, NULL},
        {"opcode STATUS", build_bad_opcode, "example.com", SMTP_DNS_T_MX, -EBADMSG, NULL},
        {"no question", build_no_question, "example.com", SMTP_DNS_T_MX, -EBADMSG, NULL},
        {"two questions", build_two_questions, "example.com", SMTP_DNS_T_MX, -EBADMSG, NULL},
        {"two questions only", build_two_questions_only, "example.com", SMTP_DNS_T_MX, -EBADMSG, NULL},
        {"CNAME chain", build_cname_mx, "example.com", SMTP_DNS_T_MX, 0, "10 mx.example.org"},
        {"CNAME chain reversed", build_cname_mx_reversed, "example.com", SMTP_DNS_T_MX, 0,
         "10 mx.example.org"},
        {"CNAME chain asked from its middle", build_cname_mx, "a.example.net", SMTP_DNS_T_MX, 0,
         "10 mx.example.org"},
        {"CNAME chain of the most links", build_cname_chain_max, "example.com", SMTP_DNS_T_MX, 0,
         "10 mx.example"},
        {"CNAME chain one link too long", build_cname_chain_too_long, "example.com", SMTP_DNS_T_MX, -ELOOP,
         NULL},
        {"CNAME loop", build_cname_loop, "example.com", SMTP_DNS_T_MX, -ELOOP, NULL},
        {"CNAME to itself", build_cname_self, "example.com", SMTP_DNS_T_MX, -ELOOP, NULL},
        {"CNAME back to the qname", build_cname_back, "Example.Com.", SMTP_DNS_T_MX, -ELOOP, NULL},
        {"CNAME dangling", build_cname_dangling, "example.com", SMTP_DNS_T_MX, 0, ""},
        {"compression loop", build_ptr_loop, "example.com", SMTP_DNS_T_MX, -EBADMSG, NULL},
        {"compression loop of two", build_ptr_loop2, "example.com", SMTP_DNS_T_MX, -EBADMSG, NULL},
        {"pointer out of range", build_ptr_out_of_range, "example.com", SMTP_DNS_T_MX, -EBADMSG, NULL},
        {"question pointer out of range", build_question_ptr_out, "example.com", SMTP_DNS_T_MX, -EBADMSG,
         NULL},
        {"bad label type", build_bad_label_type, "example.com", SMTP_DNS_T_MX, -EBADMSG, NULL},
        {"other owners ignored", build_other_owners, "example.com", SMTP_DNS_T_MX, 0, "30 mx.example.com"},
        {"A among MX", build_mx_and_a, "example.com", SMTP_DNS_T_MX, 0, "10 mx.example.com"},
        {"MX RDATA too long", build_mx_rdlength_long, "example.com", SMTP_DNS_T_MX, -EBADMSG, NULL},
        {"MX RDATA too short", build_mx_rdlength_short, "example.com", SMTP_DNS_T_MX, -EBADMSG, NULL},
        {"MX RDATA without a name", build_mx_rdlength_two, "example.com", SMTP_DNS_T_MX, -EBADMSG, NULL},
        {"CNAME RDATA too long", build_cname_rdlength, "example.com", SMTP_DNS_T_MX, -EBADMSG, NULL},
        {"record missing", build_record_missing, "example.com", SMTP_DNS_T_MX, -EBADMSG, NULL},
        {"RDATA past the end", build_rdata_past_end, "example.com", SMTP_DNS_T_MX, -EBADMSG, NULL},
        {"65535 answers announced", build_huge_ancount, "example.com", SMTP_DNS_T_MX, -EBADMSG, NULL},
        {"garbage after the answers", build_trailing_garbage, "example.com", SMTP_DNS_T_MX, 0,
         "10 mx.example.com"},
        {"255-byte exchange", build_long_names, "example.com", SMTP_DNS_T_MX, 0,
         "10 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
         "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb."
         "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc."
         "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd.z"},
        {"A", build_a, "example.com", SMTP_DNS_T_A, 0, "192.0.2.1, 198.51.100.7"},
        {"AAAA", build_aaaa, "example.com", SMTP_DNS_T_AAAA, 0, "2001:db8::1, ::ffff:192.0.2.2"},
        {"A asked, AAAA there", build_aaaa, "example.com", SMTP_DNS_T_A, 0, "192.0.2.1"},
        {"AAAA from an MX answer", build_mx_several, "example.com", SMTP_DNS_T_AAAA, 0, ""},
        {"A through a CNAME", build_a_cname, "www.example.com", SMTP_DNS_T_A, 0, "192.0.2.5"},
        {"A RDATA of 5 bytes", build_a_rdlength, "example.com", SMTP_DNS_T_A, -EBADMSG, NULL},
        {"AAAA RDATA of 4 bytes", build_aaaa_rdlength, "example.com", SMTP_DNS_T_AAAA, -EBADMSG, NULL},
        {"A RDATA of 5 bytes in an MX answer", build_a_rdlength, "example.com", SMTP_DNS_T_MX, -EBADMSG,
         NULL},
        {"A of class CH", build_a_other_class, "example.com", SMTP_DNS_T_A, 0, "192.0.2.2"},
        {"A NXDOMAIN", build_nxdomain, "example.com", SMTP_DNS_T_A, -ENXIO, NULL},
        {"AAAA CNAME loop", build_cname_loop, "example.com", SMTP_DNS_T_AAAA, -ELOOP, NULL},
};

static void format_mx(const SmtpMx *mx, size_t n, char *buf, size_t size)
{
        size_t len = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < n; i++) {
                int k = snprintf(buf + len, size - len, "%s%u %s", i ? ", " : "", mx[i].pref,
                                 !mx[i].name     ? "NULL"
                                 : mx[i].name[0] ? mx[i].name
                                                 : ".");

                assert_true(k > 0 && (size_t) k < size - len);
                len += (size_t) k;
        }
}

static void format_addr(const SmtpDnsAddr *a, size_t n, char *buf, size_t size)
{
        size_t len = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < n; i++) {
                char text[INET6_ADDRSTRLEN] = "?";
                int k;

                assert_non_null(inet_ntop(a[i].family,
                                          a[i].family == AF_INET ? (const void *) &a[i].in
                                                                 : (const void *) &a[i].in6,
                                          text, sizeof(text)));
                k = snprintf(buf + len, size - len, "%s%s", i ? ", " : "", text);
                assert_true(k > 0 && (size_t) k < size - len);
                len += (size_t) k;
        }
}

/* parse - MSG as an answer of T's type; the result formatted into GOT when 0 */
static int parse(const DnsCase *t, const uint8_t *msg, size_t len, char *got, size_t size)
{
        int r;

        got[0] = '\0';
        if (t->type == SMTP_DNS_T_MX) {
                SmtpMx *mx = (SmtpMx *) 0x1;
                size_t n = 4242;

                r = smtp_dns_parse_mx(msg, len, t->qname, &mx, &n);
                if (r < 0) {
                        /* outputs only on success */
                        assert_ptr_equal(mx, (SmtpMx *) 0x1);
                        assert_int_equal(n, 4242);
                        return r;
                }
                assert_true(n == 0 ? mx == NULL : mx != NULL);
                for (size_t i = 0; i < n; i++) {
                        assert_non_null(mx[i].name);
                        for (const char *p = mx[i].name; *p; p++)
                                assert_false(*p >= 'A' && *p <= 'Z');
                        assert_true(strlen(mx[i].name) < SMTP_DNS_NAME_MAX);
                }
                format_mx(mx, n, got, size);
                smtp_mx_free_array(mx, n);
        } else {
                SmtpDnsAddr *a = (SmtpDnsAddr *) 0x1;
                size_t n = 4242;

                r = smtp_dns_parse_addr(msg, len, t->qname, t->type, &a, &n);
                if (r < 0) {
                        assert_ptr_equal(a, (SmtpDnsAddr *) 0x1);
                        assert_int_equal(n, 4242);
                        return r;
                }
                assert_true(n == 0 ? a == NULL : a != NULL);
                for (size_t i = 0; i < n; i++)
                        assert_int_equal(a[i].family, t->type == SMTP_DNS_T_A ? AF_INET : AF_INET6);
                format_addr(a, n, got, size);
                free(a);
        }
        return r;
}

/* parse_copy - parse from a buffer of exactly LEN bytes, so that reading past it is caught */
static int parse_copy(const DnsCase *t, const uint8_t *msg, size_t len, char *got, size_t size)
{
        _cleanup_(freep) uint8_t *copy = malloc(len ? len : 1);

        assert_non_null(copy);
        memcpy(copy, msg, len);
        return parse(t, copy, len, got, size);
}

static void test_dns_answers(void **state)
{
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(dns_cases); i++) {
                const DnsCase *t = &dns_cases[i];
                Msg m = {};
                char got[2048];
                int r;

                t->build(&m);
                r = parse_copy(t, m.b, m.n, got, sizeof(got));
                if (r != t->ret)
                        fail_msg("case %zu (%s): want %d, got %d \"%s\"", i, t->what, t->ret, r, got);
                if (r == 0 && !streq(got, t->want))
                        fail_msg("case %zu (%s): want \"%s\", got \"%s\"", i, t->what, t->want, got);
        }
}

/* every prefix of every message: -EBADMSG, or (the part after the answers cut) the same result */
static void test_dns_prefixes(void **state)
{
        size_t prefixes = 0, same = 0;

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(dns_cases); i++) {
                const DnsCase *t = &dns_cases[i];
                Msg m = {};
                char whole[2048], got[2048];
                int rw;

                t->build(&m);
                rw = parse_copy(t, m.b, m.n, whole, sizeof(whole));
                for (size_t len = 0; len < m.n; len++, prefixes++) {
                        int r = parse_copy(t, m.b, len, got, sizeof(got));

                        if (r == -EBADMSG)
                                continue;
                        if (r != rw || (r == 0 && !streq(got, whole)))
                                fail_msg("case %zu (%s), %zu of %zu bytes: want -EBADMSG or %d \"%s\", "
                                         "got %d \"%s\"",
                                         i, t->what, len, m.n, rw, rw == 0 ? whole : "", r, got);
                        same++;
                }
        }
        /* header-only errors survive truncation after the header; so do cut-off trailers */
        assert_true(prefixes > 2000);
        assert_true(same > 0);
}

/* each byte changed: never a crash (ASan), and results keep their promises (checked in parse) */
static void test_dns_mutations(void **state)
{
        static const uint8_t values[] = {0x00, 0x01, 0x0c, 0x3f, 0x40, 0x80, 0xc0, 0xff};
        size_t ok = 0, failed = 0;

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(dns_cases); i++) {
                const DnsCase *t = &dns_cases[i];
                Msg m = {};

                t->build(&m);
                for (size_t pos = 0; pos < m.n; pos++) {
                        uint8_t saved = m.b[pos];

                        for (size_t v = 0; v <= ELEMENTSOF(values); v++) {
                                char got[2048];

                                m.b[pos] = v < ELEMENTSOF(values) ? values[v] : (uint8_t) (saved ^ 0x20);
                                if (parse_copy(t, m.b, m.n, got, sizeof(got)) == 0)
                                        ok++;
                                else
                                        failed++;
                        }
                        m.b[pos] = saved;
                }
        }
        assert_true(ok > 0 && failed > 0);
}

static void test_dns_bad_arguments(void **state)
{
        Msg m = {};
        SmtpDnsAddr *a = NULL;
        SmtpMx *mx = NULL;
        size_t n = 0;
        char qname[SMTP_DNS_NAME_MAX + 1];

        (void) state;
        build_a(&m);
        assert_int_equal(smtp_dns_parse_addr(m.b, m.n, "example.com", SMTP_DNS_T_MX, &a, &n), -EINVAL);
        assert_int_equal(smtp_dns_parse_addr(m.b, m.n, "example.com", SMTP_DNS_T_CNAME, &a, &n), -EINVAL);
        assert_int_equal(smtp_dns_parse_addr(m.b, m.n, NULL, SMTP_DNS_T_A, &a, &n), -EINVAL);
        memset(qname, 'a', SMTP_DNS_NAME_MAX);
        qname[SMTP_DNS_NAME_MAX] = '\0';
        assert_int_equal(smtp_dns_parse_mx(m.b, m.n, qname, &mx, &n), -EINVAL);
        assert_int_equal(smtp_dns_parse_mx(NULL, 0, "example.com", &mx, &n), -EBADMSG);
        assert_null(a);
        assert_null(mx);
        smtp_mx_free_array(NULL, 0);
}

/* ---- MX order ------------------------------------------------------------------------------ */

typedef struct Rand {
        uint64_t state;
        size_t calls;
} Rand;

/* xorshift64 - deterministic pseudo-random numbers for the injected RAND */
static uint32_t test_rand(void *userdata)
{
        Rand *s = userdata;

        s->calls++;
        s->state ^= s->state << 13;
        s->state ^= s->state >> 7;
        s->state ^= s->state << 17;
        return (uint32_t) (s->state >> 32);
}

typedef struct MxIn {
        unsigned pref;
        const char *name;
} MxIn;

static SmtpMx *mx_new(const MxIn *in, size_t n)
{
        SmtpMx *mx = calloc(n, sizeof(*mx));

        assert_non_null(mx);
        for (size_t i = 0; i < n; i++) {
                mx[i].pref = (uint16_t) in[i].pref;
                mx[i].name = strdup(in[i].name);
                assert_non_null(mx[i].name);
        }
        return mx;
}

/* the index of the permutation of "a", "b", "c" that MX holds */
static size_t perm_index(const SmtpMx *mx)
{
        static const char *const perms[6] = {"abc", "acb", "bac", "bca", "cab", "cba"};
        char got[4] = {mx[0].name[0], mx[1].name[0], mx[2].name[0], '\0'};

        for (size_t i = 0; i < 6; i++)
                if (streq(got, perms[i]))
                        return i;
        fail_msg("want a permutation of a, b, c, got \"%s\"", got);
        return 0;
}

static void test_mx_sort_property(void **state)
{
        static const MxIn in[] = {
                {20, "d.example"}, {10, "a.example"}, {30, "f.example"},
                {10, "b.example"}, {20, "e.example"}, {10, "c.example"},
        };
        enum { SEEDS = 600 };
        size_t perms[6] = {}, de = 0;

        (void) state;
        for (uint64_t seed = 1; seed <= SEEDS; seed++) {
                Rand rnd = {.state = seed * 0x9e3779b97f4a7c15ULL};
                SmtpMx *mx = mx_new(in, ELEMENTSOF(in));
                char got[256];
                size_t n;

                n = smtp_mx_sort(mx, ELEMENTSOF(in), test_rand, &rnd);
                format_mx(mx, n, got, sizeof(got));
                if (n != ELEMENTSOF(in))
                        fail_msg("seed %" PRIu64 ": want %zu records, got %zu \"%s\"", seed, ELEMENTSOF(in),
                                 n, got);
                /* preference order across groups, each group a permutation of its names */
                for (size_t i = 0; i < n; i++) {
                        unsigned want = i < 3 ? 10 : i < 5 ? 20 : 30;
                        const char *set = i < 3 ? "abc" : i < 5 ? "de" : "f";

                        if (mx[i].pref != want || !strchr(set, mx[i].name[0]) ||
                            !streq(mx[i].name + 1, ".example"))
                                fail_msg("seed %" PRIu64
                                         ": entry %zu: want preference %u and one of %s, got \"%s\"",
                                         seed, i, want, set, got);
                }
                perms[perm_index(mx)]++;
                if (mx[3].name[0] == 'd')
                        de++;
                if (mx[3].name[0] == mx[4].name[0])
                        fail_msg("seed %" PRIu64 ": a name twice: \"%s\"", seed, got);
                /* a shuffle of 3 and of 2 takes 2 + 1 numbers; the single one none */
                if (rnd.calls != 3)
                        fail_msg("seed %" PRIu64 ": want 3 calls of RAND, got %zu", seed, rnd.calls);
                smtp_mx_free_array(mx, n);
        }
        /* every permutation appears, and about as often as the others (expected 100 each) */
        for (size_t i = 0; i < 6; i++)
                if (perms[i] < SEEDS / 6 / 2 || perms[i] > SEEDS / 6 * 3 / 2)
                        fail_msg("permutation %zu appeared %zu times in %d seeds, want about %d", i,
                                 perms[i], SEEDS, SEEDS / 6);
        if (de < SEEDS / 4 || de > SEEDS * 3 / 4)
                fail_msg("d before e %zu times in %d seeds, want about %d", de, SEEDS, SEEDS / 2);
}

static void test_mx_sort_deterministic(void **state)
{
        static const MxIn in[] = {
                {10, "a.example"}, {10, "b.example"}, {10, "c.example"}, {10, "d.example"},
                {5, "e.example"},  {5, "f.example"},  {10, "g.example"},
        };
        char first[256] = "", got[256];

        (void) state;
        for (size_t round = 0; round < 3; round++) {
                Rand rnd = {.state = 42};
                SmtpMx *mx = mx_new(in, ELEMENTSOF(in));
                size_t n = smtp_mx_sort(mx, ELEMENTSOF(in), test_rand, &rnd);

                format_mx(mx, n, got, sizeof(got));
                if (round == 0)
                        strcpy(first, got);
                else if (!streq(got, first))
                        fail_msg("round %zu: the same seed gave \"%s\", then \"%s\"", round, first, got);
                smtp_mx_free_array(mx, n);
        }
}

typedef struct SortCase {
        const char *what;
        MxIn in[8];
        size_t n;
        const char *want; /* groups of one name each: the order is fixed */
} SortCase;

static void test_mx_sort_drops(void **state)
{
        static const SortCase cases[] = {
                {"sorted by preference",
                 {{30, "c.example"}, {10, "a.example"}, {20, "b.example"}},
                 3,
                 "10 a.example, 20 b.example, 30 c.example"},
                {"duplicate keeps its best preference",
                 {{20, "a.example"}, {10, "b.example"}, {5, "A.Example"}, {30, "b.example"}},
                 4,
                 "5 A.Example, 10 b.example"},
                {"duplicate in one preference", {{10, "a.example"}, {10, "a.example"}}, 2, "10 a.example"},
                {"bad names dropped",
                 {{10, "bad..example"},
                  {20, "1.2.3.4"},
                  {30, "a\\.b.example"},
                  {40, "-x.example"},
                  {50, "good.example"},
                  {60, "example.com."},
                  {70, "a b"}},
                 7,
                 "50 good.example"},
                {"root kept", {{0, ""}}, 1, "0 ."},
                {"root among others kept", {{10, "mx.example"}, {0, ""}, {20, ""}}, 3, "0 ., 10 mx.example"},
                {"all but the root dropped", {{10, "x..y"}, {20, ""}, {30, "..."}}, 3, "20 ."},
                {"nothing", {{0, NULL}}, 0, ""},
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const SortCase *t = &cases[i];
                Rand rnd = {.state = 7};
                SmtpMx *mx = t->n ? mx_new(t->in, t->n) : NULL;
                char got[256];
                size_t n;

                n = smtp_mx_sort(mx, t->n, test_rand, &rnd);
                format_mx(mx, n, got, sizeof(got));
                if (!streq(got, t->want))
                        fail_msg("case %zu (%s): want \"%s\", got \"%s\"", i, t->what, t->want, got);
                /* what was dropped is freed, and nothing behind the count is left to free twice */
                for (size_t k = n; k < t->n; k++)
                        if (mx[k].name)
                                fail_msg("case %zu (%s): entry %zu behind the count is not NULL", i, t->what,
                                         k);
                smtp_mx_free_array(mx, n);
        }
}

/* the parser's and the sorter's results together: the first case's answer in MX order */
static void test_mx_parse_then_sort(void **state)
{
        Msg m = {};
        SmtpMx *mx = NULL;
        size_t n = 0;
        Rand rnd = {.state = 99};
        char got[256];

        (void) state;
        build_mx_several(&m);
        assert_int_equal(smtp_dns_parse_mx(m.b, m.n, "example.com", &mx, &n), 0);
        n = smtp_mx_sort(mx, n, test_rand, &rnd);
        format_mx(mx, n, got, sizeof(got));
        if (!streq(got, "10 mx1.example.com, 10 mx1b.example.com, 20 mx2.example.com") &&
            !streq(got, "10 mx1b.example.com, 10 mx1.example.com, 20 mx2.example.com"))
                fail_msg("want the two preference 10 records, then mx2, got \"%s\"", got);
        smtp_mx_free_array(mx, n);

        /* without RAND the order within a preference stays */
        build_mx_several(&m);
        assert_int_equal(smtp_dns_parse_mx(m.b, m.n, "example.com", &mx, &n), 0);
        n = smtp_mx_sort(mx, n, NULL, NULL);
        format_mx(mx, n, got, sizeof(got));
        assert_string_equal(got, "10 mx1.example.com, 10 mx1b.example.com, 20 mx2.example.com");
        smtp_mx_free_array(mx, n);
}

static void test_mx_is_null(void **state)
{
        static const struct {
                MxIn in[2];
                size_t n;
                bool null;
        } cases[] = {
                {{{0, ""}}, 1, true},
                {{{10, ""}}, 1, true},
                {{{0, "mx.example"}}, 1, false},
                {{{0, ""}, {10, "mx.example"}}, 2, false},
                {{{0, ""}, {0, ""}}, 2, false},
                {{{0, NULL}}, 0, false},
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                SmtpMx *mx = cases[i].n ? mx_new(cases[i].in, cases[i].n) : NULL;
                bool got = smtp_mx_is_null(mx, cases[i].n);

                if (got != cases[i].null)
                        fail_msg("case %zu: want %s, got %s", i, cases[i].null ? "null MX" : "not null MX",
                                 got ? "null MX" : "not null MX");
                smtp_mx_free_array(mx, cases[i].n);
        }
}

/* ---- address order ------------------------------------------------------------------------- */

/* addrs_new - "192.0.2.1 2001:db8::1 ..." as an array */
static size_t addrs_new(const char *text, SmtpDnsAddr *a, size_t max)
{
        char buf[512], *save = NULL;
        size_t n = 0;

        snprintf(buf, sizeof(buf), "%s", text);
        for (char *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
                assert_true(n < max);
                a[n] = (SmtpDnsAddr){};
                a[n].family = strchr(w, ':') ? AF_INET6 : AF_INET;
                assert_int_equal(inet_pton(a[n].family, w,
                                           a[n].family == AF_INET ? (void *) &a[n].in : (void *) &a[n].in6),
                                 1);
                n++;
        }
        return n;
}

static void test_addr_order(void **state)
{
        static const struct {
                const char *prefer, *in, *want;
        } cases[] = {
                {"ipv4", "2001:db8::1 192.0.2.1 2001:db8::2 192.0.2.2 192.0.2.3",
                 "192.0.2.1, 192.0.2.2, 192.0.2.3, 2001:db8::1, 2001:db8::2"},
                {"ipv6", "192.0.2.1 2001:db8::1 192.0.2.2 2001:db8::2",
                 "2001:db8::1, 2001:db8::2, 192.0.2.1, 192.0.2.2"},
                {"IPv6", "192.0.2.1 2001:db8::1", "2001:db8::1, 192.0.2.1"},
                {"ipv4", "192.0.2.1 192.0.2.2", "192.0.2.1, 192.0.2.2"},
                {"ipv4", "2001:db8::2 2001:db8::1", "2001:db8::2, 2001:db8::1"},
                {"ipv6", "", ""},
                {"any", "192.0.2.1", "192.0.2.1"},
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                SmtpDnsAddr a[8];
                Rand rnd = {.state = 3};
                size_t n = addrs_new(cases[i].in, a, ELEMENTSOF(a));
                char got[512];

                smtp_dns_addr_order(a, n, cases[i].prefer, test_rand, &rnd);
                format_addr(a, n, got, sizeof(got));
                if (!streq(got, cases[i].want))
                        fail_msg("case %zu: prefer %s \"%s\": want \"%s\", got \"%s\"", i, cases[i].prefer,
                                 cases[i].in, cases[i].want, got);
                if (!streq(cases[i].prefer, "any") && rnd.calls != 0)
                        fail_msg("case %zu: prefer %s called RAND %zu times", i, cases[i].prefer, rnd.calls);
        }
        smtp_dns_addr_order(NULL, 0, "any", test_rand, NULL);
}

/* "any": a permutation, and every order of three addresses over the seeds */
static void test_addr_order_any(void **state)
{
        static const char *const orders[6] = {
                "192.0.2.1, 2001:db8::1, 192.0.2.2", "192.0.2.1, 192.0.2.2, 2001:db8::1",
                "2001:db8::1, 192.0.2.1, 192.0.2.2", "2001:db8::1, 192.0.2.2, 192.0.2.1",
                "192.0.2.2, 192.0.2.1, 2001:db8::1", "192.0.2.2, 2001:db8::1, 192.0.2.1",
        };
        size_t seen[6] = {};

        (void) state;
        for (uint64_t seed = 1; seed <= 300; seed++) {
                for (size_t p = 0; p < 2; p++) {
                        SmtpDnsAddr a[3];
                        Rand rnd = {.state = seed * 0x2545f4914f6cdd1dULL};
                        size_t n = addrs_new("192.0.2.1 2001:db8::1 192.0.2.2", a, 3), k;
                        char got[256];

                        /* an unknown preference is "any" */
                        smtp_dns_addr_order(a, n, p ? "any" : "whatever", test_rand, &rnd);
                        format_addr(a, n, got, sizeof(got));
                        for (k = 0; k < 6 && !streq(got, orders[k]); k++)
                                ;
                        if (k == 6)
                                fail_msg("seed %" PRIu64 ": want a permutation, got \"%s\"", seed, got);
                        seen[k]++;
                }
        }
        for (size_t k = 0; k < 6; k++)
                if (seen[k] < 50)
                        fail_msg("order \"%s\" seen %zu times in 600 shuffles, want about 100", orders[k],
                                 seen[k]);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_nexthop_smtp),
                cmocka_unit_test(test_nexthop_lmtp),
                cmocka_unit_test(test_nexthop_long_list),
                cmocka_unit_test(test_dns_answers),
                cmocka_unit_test(test_dns_prefixes),
                cmocka_unit_test(test_dns_mutations),
                cmocka_unit_test(test_dns_bad_arguments),
                cmocka_unit_test(test_mx_sort_property),
                cmocka_unit_test(test_mx_sort_deterministic),
                cmocka_unit_test(test_mx_sort_drops),
                cmocka_unit_test(test_mx_parse_then_sort),
                cmocka_unit_test(test_mx_is_null),
                cmocka_unit_test(test_addr_order),
                cmocka_unit_test(test_addr_order_any),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
