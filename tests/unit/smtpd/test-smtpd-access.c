/* SPDX-License-Identifier: MIT */
/*
 * test-smtpd-access.c - the SMTP server's access decisions (src/smtpd/smtpd-access.c)
 *
 * Table-driven. Networks: mynetworks entries that parse (IPv4, IPv6 with and without brackets,
 * prefixes outside the brackets, IPv4-mapped networks) and those refused with their reason
 * (host bits set, prefixes out of range, host names, type:table, /file, empty, negation);
 * matching at the prefix boundaries (/0, /7, /25, /32, /33, /104 mapped, /128) and IPv4-mapped
 * clients. Where a recipient goes: a table of addresses with every routing trick (quoted local
 * parts, the percent hack on and off, bang paths, address literals, trailing dots, relay_domains
 * parent matching, routed relay recipients), and a property test over random addresses from a
 * small alphabet checked against an oracle written independently here: nothing is judged local
 * or relay unless every hop after the user part is a listed local domain and the deciding domain
 * is listed. Access tables: texthash and inline parsing (comments, continuation lines, case,
 * CRLF), every kind of bad line with its line number, lookups with ".parent" keys. Restriction
 * lists: every restriction, first decision wins, the empty list, warn_if_reject, Postfix's exact
 * reply texts, configuration errors, and replies that do not fit the caller's buffer.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "domain-list.h"
#include "macro.h"
#include "smtpd-access.h"

#define MAX_ENTRIES 8

static const char *dest_name(SmtpdDest d)
{
        return d == SMTPD_DEST_LOCAL ? "LOCAL" : d == SMTPD_DEST_RELAY ? "RELAY" : "REMOTE";
}

static const char *verdict_name(SmtpdVerdict v)
{
        switch (v) {
        case SMTPD_DUNNO:
                return "DUNNO";
        case SMTPD_PERMIT:
                return "PERMIT";
        case SMTPD_REJECT:
                return "REJECT";
        case SMTPD_DEFER:
                return "DEFER";
        }
        return "?";
}

/* ---- networks ------------------------------------------------------------------------------- */

typedef struct NetGood {
        const char *entry;
        int family;
        const char *addr; /* the network address, as inet_ntop writes it */
        unsigned prefix;
} NetGood;

static void test_netlist_parse_good(void **state)
{
        static const NetGood cases[] = {
                {"127.0.0.0/8", AF_INET, "127.0.0.0", 8},
                {"192.0.2.1", AF_INET, "192.0.2.1", 32},
                {"192.0.2.1/32", AF_INET, "192.0.2.1", 32},
                {"[192.0.2.1]", AF_INET, "192.0.2.1", 32},
                {"0.0.0.0/0", AF_INET, "0.0.0.0", 0},
                {"10.0.0.0/7", AF_INET, "10.0.0.0", 7},
                {"[::1]", AF_INET6, "::1", 128},
                {"[::1]/128", AF_INET6, "::1", 128},
                {"::1", AF_INET6, "::1", 128},
                {"[2001:db8::]/32", AF_INET6, "2001:db8::", 32},
                {"2001:db8::/32", AF_INET6, "2001:db8::", 32},
                {"[::ffff:127.0.0.0]/104", AF_INET6, "::ffff:127.0.0.0", 104},
                {"[::]/0", AF_INET6, "::", 0},
                {"[fe80::]/10", AF_INET6, "fe80::", 10},
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *entries[] = {(char *) cases[i].entry, NULL}, text[INET6_ADDRSTRLEN];
                const char *bad = NULL, *reason = NULL;
                SmtpdNetList l = {};
                int r;

                r = smtpd_netlist_parse(entries, &l, &bad, &reason);
                if (r != 0)
                        fail_msg("\"%s\": want it parsed, got %d (%s)", cases[i].entry, r, strna(reason));
                assert_int_equal(l.n, 1);
                if (l.nets[0].family != cases[i].family || l.nets[0].prefix != cases[i].prefix)
                        fail_msg("\"%s\": want family %d /%u, got family %d /%u", cases[i].entry,
                                 cases[i].family, cases[i].prefix, l.nets[0].family, l.nets[0].prefix);
                assert_non_null(inet_ntop(l.nets[0].family, l.nets[0].addr, text, sizeof(text)));
                if (!streq(text, cases[i].addr))
                        fail_msg("\"%s\": want address %s, got %s", cases[i].entry, cases[i].addr, text);
                smtpd_netlist_done(&l);
                assert_null(l.nets);
        }
}

typedef struct NetBad {
        const char *entry;
        const char *reason; /* a part of the reason */
} NetBad;

static void test_netlist_parse_bad(void **state)
{
        static const NetBad cases[] = {
                {"10.0.0.1/8", "host address bits"},
                {"192.0.2.128/24", "host address bits"},
                {"[2001:db8::1]/32", "host address bits"},
                {"[::ffff:127.0.0.1]/104", "host address bits"},
                {"[::1]/129", "prefix"},
                {"1.2.3.4/33", "prefix"},
                {"1.2.3.4/", "prefix"},
                {"1.2.3.4/-1", "prefix"},
                {"1.2.3.4/+8", "prefix"},
                {"[::1]/0128", "prefix"},
                {"1.2.3.4/8x", "prefix"},
                {"example.com", "host name"},
                {"localhost", "host name"},
                {"hash:/etc/x", "table"},
                {"texthash:/etc/tern/mynetworks", "table"},
                {"/file", "file"},
                {"/etc/tern/mynetworks", "file"},
                {"", "empty"},
                {"!10.0.0.0/8", "negat"},
                {"[::1", "]"},
                {"[::1]x", "after"},
                {"[example.com]", "not an IP"},
                {"1.2.3", "not an IP"},
                {"256.0.0.1", "not an IP"},
                {"01.2.3.4", "not an IP"},
                {"::1::2", "not an IP"},
                {"1.2.3.4/8/8", "prefix"},
                {"[]", "not an IP"},
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *entries[] = {(char *) "127.0.0.0/8", (char *) cases[i].entry, NULL};
                const char *bad = NULL, *reason = NULL;
                SmtpdNetList l = {.nets = (SmtpdNet *) 0x1, .n = 77};
                int r;

                r = smtpd_netlist_parse(entries, &l, &bad, &reason);
                if (r != -EINVAL)
                        fail_msg("\"%s\": want -EINVAL, got %d", cases[i].entry, r);
                if (bad != entries[1])
                        fail_msg("\"%s\": want the bad entry named, got \"%s\"", cases[i].entry, strna(bad));
                if (!reason || !strcasestr(reason, cases[i].reason))
                        fail_msg("\"%s\": want a reason with \"%s\", got \"%s\"", cases[i].entry,
                                 cases[i].reason, strna(reason));
                /* the output is left alone on failure */
                assert_ptr_equal(l.nets, (SmtpdNet *) 0x1);
                assert_int_equal(l.n, 77);
        }
}

static void test_netlist_empty(void **state)
{
        char *none[] = {NULL};
        SmtpdNetList l = {};
        uint8_t a[4] = {127, 0, 0, 1};

        (void) state;
        assert_int_equal(smtpd_netlist_parse(none, &l, NULL, NULL), 0);
        assert_int_equal(l.n, 0);
        assert_false(smtpd_netlist_match(&l, AF_INET, a));
        smtpd_netlist_done(&l);
        assert_int_equal(smtpd_netlist_parse(NULL, &l, NULL, NULL), 0);
        assert_int_equal(l.n, 0);
        smtpd_netlist_done(&l);
        smtpd_netlist_done(&l);
        smtpd_netlist_done(NULL);
        assert_false(smtpd_netlist_match(NULL, AF_INET, a));
}

typedef struct MatchCase {
        const char *entries[MAX_ENTRIES];
        const char *client; /* an IPv4 address is given as AF_INET, any other as AF_INET6 */
        bool match;
} MatchCase;

static void test_netlist_match(void **state)
{
        static const MatchCase cases[] = {
                /* /0 matches every address of its family, and only of its family */
                {{"0.0.0.0/0"}, "203.0.113.5", true},
                {{"0.0.0.0/0"}, "::ffff:203.0.113.5", true},
                {{"0.0.0.0/0"}, "2001:db8::1", false},
                {{"[::]/0"}, "2001:db8::1", true},
                {{"[::]/0"}, "192.0.2.1", false},
                /* /32 and /128: the address alone */
                {{"192.0.2.1"}, "192.0.2.1", true},
                {{"192.0.2.1"}, "192.0.2.2", false},
                {{"192.0.2.1"}, "192.0.2.0", false},
                {{"192.0.2.1"}, "::ffff:192.0.2.1", true},
                {{"[::1]/128"}, "::1", true},
                {{"[::1]/128"}, "::2", false},
                {{"[::1]/128"}, "::", false},
                {{"[::1]"}, "127.0.0.1", false},
                /* boundaries inside a byte */
                {{"192.0.2.0/25"}, "192.0.2.127", true},
                {{"192.0.2.0/25"}, "192.0.2.128", false},
                {{"192.0.2.0/24"}, "192.0.3.0", false},
                {{"192.0.2.0/24"}, "192.0.1.255", false},
                {{"10.0.0.0/7"}, "11.255.255.255", true},
                {{"10.0.0.0/7"}, "10.0.0.0", true},
                {{"10.0.0.0/7"}, "12.0.0.0", false},
                {{"10.0.0.0/7"}, "9.255.255.255", false},
                {{"[2001:db8::]/32"}, "2001:db8:ffff:ffff::1", true},
                {{"[2001:db8::]/32"}, "2001:db9::", false},
                {{"[2001:db8::]/33"}, "2001:db8:7fff::1", true},
                {{"[2001:db8::]/33"}, "2001:db8:8000::", false},
                /* IPv4-mapped: an IPv6 network matches the mapped address as IPv6 */
                {{"[::ffff:127.0.0.0]/104"}, "::ffff:127.1.2.3", true},
                {{"[::ffff:127.0.0.0]/104"}, "::ffff:128.0.0.1", false},
                {{"[::ffff:127.0.0.0]/104"}, "127.1.2.3", false},
                {{"127.0.0.0/8"}, "::ffff:127.0.0.1", true},
                {{"127.0.0.0/8"}, "::ffff:126.255.255.255", false},
                /* IPv4-compatible (::a.b.c.d) is not mapped */
                {{"127.0.0.0/8"}, "::127.0.0.1", false},
                /* several networks: any one */
                {{"10.0.0.0/8", "[2001:db8::]/32", "192.0.2.1"}, "192.0.2.1", true},
                {{"10.0.0.0/8", "[2001:db8::]/32", "192.0.2.1"}, "2001:db8::5", true},
                {{"10.0.0.0/8", "[2001:db8::]/32", "192.0.2.1"}, "198.51.100.1", false},
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const MatchCase *t = &cases[i];
                SmtpdNetList l = {};
                uint8_t a[16] = {};
                int family = strchr(t->client, ':') ? AF_INET6 : AF_INET;
                bool got;

                assert_int_equal(smtpd_netlist_parse((char *const *) t->entries, &l, NULL, NULL), 0);
                assert_int_equal(inet_pton(family, t->client, a), 1);
                got = smtpd_netlist_match(&l, family, a);
                if (got != t->match)
                        fail_msg("case %zu: %s against %s...: want %s, got %s", i, t->client, t->entries[0],
                                 t->match ? "match" : "no match", got ? "match" : "no match");
                /* an unknown family never matches */
                assert_false(smtpd_netlist_match(&l, AF_UNIX, a));
                smtpd_netlist_done(&l);
        }
}

/* ---- where a recipient goes ----------------------------------------------------------------- */

typedef struct Domains {
        DomainList mydestination, relay_domains;
        SmtpdNetList local_addrs;
        SmtpdDomains d;
} Domains;

static void domains_init(Domains *x, const char *const *mydest, const char *const *relay, bool relay_parent,
                         const char *const *addrs)
{
        *x = (Domains){};
        assert_int_equal(domain_list_new((char *const *) mydest, false, &x->mydestination), 0);
        assert_int_equal(domain_list_new((char *const *) relay, relay_parent, &x->relay_domains), 0);
        assert_int_equal(smtpd_netlist_parse((char *const *) addrs, &x->local_addrs, NULL, NULL), 0);
        x->d = (SmtpdDomains){
                .mydestination = &x->mydestination,
                .relay_domains = &x->relay_domains,
                .local_addrs = &x->local_addrs,
                .allow_percent_hack = true,
        };
}

static void domains_done(Domains *x)
{
        domain_list_done(&x->mydestination);
        domain_list_done(&x->relay_domains);
        smtpd_netlist_done(&x->local_addrs);
}

typedef struct DestCase {
        const char *addr;
        bool percent_hack;
        SmtpdDest dest;
        const char *domain; /* the deciding domain */
} DestCase;

static void test_rcpt_destination(void **state)
{
        static const char *const mydest[] = {"local.example", "localhost", "L2.example", NULL};
        static const char *const relay[] = {"relay.example", ".backup.example", NULL};
        static const char *const addrs[] = {"192.0.2.1", "[::1]", NULL};
        static const DestCase cases[] = {
                /* plain domains, any case, one trailing dot */
                {"user@local.example", true, SMTPD_DEST_LOCAL, "local.example"},
                {"user@LOCAL.Example", true, SMTPD_DEST_LOCAL, "local.example"},
                {"user@local.example.", true, SMTPD_DEST_LOCAL, "local.example"},
                {"user@l2.example", true, SMTPD_DEST_LOCAL, "l2.example"},
                {"user@localhost", true, SMTPD_DEST_LOCAL, "localhost"},
                {"user@sub.local.example", true, SMTPD_DEST_REMOTE, "sub.local.example"},
                {"user@local.example..", true, SMTPD_DEST_REMOTE, "local.example.."},
                {"user@.", true, SMTPD_DEST_REMOTE, "."},
                {"user@relay.example", true, SMTPD_DEST_RELAY, "relay.example"},
                {"user@Relay.Example.", true, SMTPD_DEST_RELAY, "relay.example"},
                {"user@sub.relay.example", true, SMTPD_DEST_RELAY, "sub.relay.example"},
                {"user@a.b.relay.example", true, SMTPD_DEST_RELAY, "a.b.relay.example"},
                {"user@xrelay.example", true, SMTPD_DEST_REMOTE, "xrelay.example"},
                {"user@x.backup.example", true, SMTPD_DEST_RELAY, "x.backup.example"},
                {"user@backup.example", true, SMTPD_DEST_REMOTE, "backup.example"},
                {"user@REMOTE.example.", true, SMTPD_DEST_REMOTE, "remote.example"},
                {"user@remote.example", false, SMTPD_DEST_REMOTE, "remote.example"},
                /* the percent hack */
                {"user%other.example@local.example", true, SMTPD_DEST_REMOTE, "other.example"},
                {"user%other.example@local.example", false, SMTPD_DEST_LOCAL, "local.example"},
                {"user%l2.example@local.example", true, SMTPD_DEST_LOCAL, "l2.example"},
                {"user%relay.example@local.example", true, SMTPD_DEST_RELAY, "relay.example"},
                {"u%v.example%l2.example@local.example", true, SMTPD_DEST_REMOTE, "v.example"},
                {"u%l2.example%localhost@local.example", true, SMTPD_DEST_LOCAL, "l2.example"},
                {"u%v%w@local.example", true, SMTPD_DEST_REMOTE, "w"},
                {"u%v%w@local.example", false, SMTPD_DEST_LOCAL, "local.example"},
                {"user%other.example", true, SMTPD_DEST_REMOTE, "other.example"},
                /* quoted local parts are cracked open */
                {"\"user@other.example\"@local.example", true, SMTPD_DEST_REMOTE, "other.example"},
                {"\"user@other.example\"@local.example", false, SMTPD_DEST_REMOTE, "other.example"},
                {"\"user%other.example\"@local.example", true, SMTPD_DEST_REMOTE, "other.example"},
                {"\"user%other.example\"@local.example", false, SMTPD_DEST_LOCAL, "local.example"},
                {"\"user@l2.example\"@local.example", true, SMTPD_DEST_LOCAL, "l2.example"},
                {"\"a b\"@local.example", true, SMTPD_DEST_LOCAL, "local.example"},
                {"\"\"@local.example", true, SMTPD_DEST_LOCAL, "local.example"},
                {"\"user\\\"@other.example\"@local.example", true, SMTPD_DEST_REMOTE, "other.example"},
                {"\"user@other.example\"", true, SMTPD_DEST_REMOTE, "other.example"},
                /* stricter than Postfix: a backslash-escaped '@' routes too */
                {"user\\@other.example@local.example", true, SMTPD_DEST_REMOTE, "other.example"},
                /* an '@' inside quotes is not the domain's */
                {"\"user@local.example\"@other.example", true, SMTPD_DEST_REMOTE, "other.example"},
                /* unquoted routing: user@a@b */
                {"user@other.example@local.example", true, SMTPD_DEST_REMOTE, "other.example"},
                {"user@local.example@other.example", true, SMTPD_DEST_REMOTE, "other.example"},
                {"user@relay.example@local.example", true, SMTPD_DEST_RELAY, "relay.example"},
                /* bang paths (swap_bangpath = yes) */
                {"other.example!user@local.example", true, SMTPD_DEST_REMOTE, "other.example"},
                {"l2.example!user@local.example", true, SMTPD_DEST_LOCAL, "l2.example"},
                {"other.example!user", false, SMTPD_DEST_REMOTE, "other.example"},
                /* address literals: local only as one of this host's addresses */
                {"user@[192.0.2.1]", true, SMTPD_DEST_LOCAL, "[192.0.2.1]"},
                {"user@[192.0.2.2]", true, SMTPD_DEST_REMOTE, "[192.0.2.2]"},
                {"user@[ipv6:::1]", true, SMTPD_DEST_LOCAL, "[ipv6:::1]"},
                {"user@[IPv6:::1]", true, SMTPD_DEST_LOCAL, "[ipv6:::1]"},
                {"user@[ipv6:::2]", true, SMTPD_DEST_REMOTE, "[ipv6:::2]"},
                {"user@[ipv6:0:0::1]", true, SMTPD_DEST_LOCAL, "[ipv6:0:0::1]"},
                {"user@[1.2.3]", true, SMTPD_DEST_REMOTE, "[1.2.3]"},
                {"user@[192.0.2.1", true, SMTPD_DEST_REMOTE, "[192.0.2.1"},
                {"user@[::1]", true, SMTPD_DEST_REMOTE, "[::1]"},
                {"user@[ipv6:192.0.2.1]", true, SMTPD_DEST_REMOTE, "[ipv6:192.0.2.1]"},
                {"user@[ipv6:::ffff:192.0.2.1]", true, SMTPD_DEST_LOCAL, "[ipv6:::ffff:192.0.2.1]"},
                {"user%[192.0.2.1]@local.example", true, SMTPD_DEST_LOCAL, "[192.0.2.1]"},
                {"user%[192.0.2.9]@local.example", true, SMTPD_DEST_REMOTE, "[192.0.2.9]"},
                /* routing left in a relay domain's local part: RESOLVE_FLAG_ROUTED */
                {"user%other.example@relay.example", true, SMTPD_DEST_REMOTE, "relay.example"},
                {"user%other.example@relay.example", false, SMTPD_DEST_REMOTE, "relay.example"},
                {"\"user@other.example\"@relay.example", true, SMTPD_DEST_REMOTE, "relay.example"},
                {"other.example!user@relay.example", true, SMTPD_DEST_REMOTE, "relay.example"},
                /* no domain: local, qualified with $myorigin */
                {"user", true, SMTPD_DEST_LOCAL, ""},
                {"user@", true, SMTPD_DEST_LOCAL, ""},
                {"\"a b\"", true, SMTPD_DEST_LOCAL, ""},
                {"@local.example", true, SMTPD_DEST_LOCAL, "local.example"},
                {"", true, SMTPD_DEST_LOCAL, ""},
        };
        Domains x;

        (void) state;
        domains_init(&x, mydest, relay, true, addrs);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const DestCase *t = &cases[i];
                char domain[256] = "garbage";
                SmtpdDest got;

                x.d.allow_percent_hack = t->percent_hack;
                got = smtpd_rcpt_destination(&x.d, t->addr, domain, sizeof(domain));
                if (got != t->dest || !streq(domain, t->domain))
                        fail_msg("case %zu: <%s> (percent hack %s): want %s \"%s\", got %s \"%s\"", i,
                                 t->addr, t->percent_hack ? "on" : "off", dest_name(t->dest), t->domain,
                                 dest_name(got), domain);
                /* without a buffer, the same verdict */
                assert_int_equal(smtpd_rcpt_destination(&x.d, t->addr, NULL, 0), t->dest);
        }

        /* a small buffer gets a truncated domain, never an overflow */
        {
                char small[6] = "xxxxx";

                x.d.allow_percent_hack = true;
                assert_int_equal(smtpd_rcpt_destination(&x.d, "user@local.example", small, sizeof(small)),
                                 SMTPD_DEST_LOCAL);
                assert_string_equal(small, "local");
        }
        /* an address longer than any RCPT line is remote */
        {
                size_t n = 5000;
                char *a = malloc(n + 1);

                assert_non_null(a);
                memset(a, 'u', n);
                memcpy(a + n - strlen("@local.example"), "@local.example", strlen("@local.example") + 1);
                assert_int_equal(smtpd_rcpt_destination(&x.d, a, NULL, 0), SMTPD_DEST_REMOTE);
                free(a);
        }
        /* no lists at all: everything with a domain is remote */
        {
                SmtpdDomains none = {.allow_percent_hack = true};

                assert_int_equal(smtpd_rcpt_destination(&none, "user@local.example", NULL, 0),
                                 SMTPD_DEST_REMOTE);
                assert_int_equal(smtpd_rcpt_destination(&none, "user@[192.0.2.1]", NULL, 0),
                                 SMTPD_DEST_REMOTE);
                assert_int_equal(smtpd_rcpt_destination(NULL, "user@local.example", NULL, 0),
                                 SMTPD_DEST_REMOTE);
                assert_int_equal(smtpd_rcpt_destination(&none, NULL, NULL, 0), SMTPD_DEST_REMOTE);
        }
        domains_done(&x);
}

/* the oracle's lists: mydestination "l", "l.l"; relay_domains "r" with parent matching; the
 * local addresses 1.2.3.4 and ::1 */
static bool oracle_local(const char *d)
{
        size_t n = strlen(d);
        char inner[64];
        uint8_t a[16];

        if (streq(d, "l") || streq(d, "l.l"))
                return true;
        if (n < 3 || d[0] != '[' || d[n - 1] != ']' || n - 2 >= sizeof(inner))
                return false;
        memcpy(inner, d + 1, n - 2);
        inner[n - 2] = '\0';
        if (strncasecmp(inner, "ipv6:", 5) == 0)
                return inet_pton(AF_INET6, inner + 5, a) == 1 &&
                       (memcmp(a, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16) == 0 ||
                        memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff\1\2\3\4", 16) == 0);
        return inet_pton(AF_INET, inner, a) == 1 && memcmp(a, "\1\2\3\4", 4) == 0;
}

static bool oracle_relay(const char *d)
{
        size_t n = strlen(d);

        return streq(d, "r") || (n >= 3 && streq(d + n - 2, ".r"));
}

/* oracle_norm - a hop as the oracle sees it: lower case, one trailing dot dropped */
static void oracle_norm(char *d)
{
        size_t n = strlen(d);

        for (char *p = d; *p; p++)
                *p = (char) tolower((unsigned char) *p);
        if (n >= 2 && d[n - 1] == '.' && d[n - 2] != '.')
                d[n - 1] = '\0';
}

/*
 * oracle_check - with every quote and backslash removed, the address split at each routing
 * character ('@', and '%' where it routes) is "user, hop, hop, ..." read right to left: a LOCAL
 * or RELAY verdict is only right when the deciding domain is the first hop after the user part
 * and every hop after it is a listed local domain. Empty hops are left out (trailing '@').
 */
static void oracle_check(const char *addr, bool hack, SmtpdDest got, const char *domain)
{
        char s[256], *hops[128];
        size_t nh = 0;
        const char *seps = got == SMTPD_DEST_RELAY ? "@%!" : hack ? "@%!" : "@!";
        char *p, *w = s;

        if (got == SMTPD_DEST_REMOTE)
                return;
        for (const char *q = addr; *q; q++)
                if (*q != '"' && *q != '\\')
                        *w++ = *q;
        *w = '\0';
        /* the user part, then the hops */
        p = s + strcspn(s, seps);
        while (*p) {
                size_t k;
                char save;

                p++;
                k = strcspn(p, seps);
                save = p[k];
                p[k] = '\0';
                if (k > 0) {
                        assert_true(nh < ELEMENTSOF(hops));
                        hops[nh] = strdup(p);
                        assert_non_null(hops[nh]);
                        oracle_norm(hops[nh++]);
                }
                p[k] = save;
                p += k;
        }

        if (got == SMTPD_DEST_LOCAL && domain[0] == '\0') {
                if (nh != 0)
                        fail_msg("<%s> (hack %d): LOCAL without a domain, but it has %zu hops, the last "
                                 "\"%s\"",
                                 addr, hack, nh, hops[nh - 1]);
        } else {
                if (nh == 0 || !streq(hops[0], domain))
                        fail_msg("<%s> (hack %d): %s \"%s\" is not the first hop (\"%s\")", addr, hack,
                                 dest_name(got), domain, nh ? hops[0] : "");
                if (got == SMTPD_DEST_LOCAL ? !oracle_local(domain)
                                            : !oracle_relay(domain) || oracle_local(domain))
                        fail_msg("<%s> (hack %d): %s \"%s\", which is not listed as such", addr, hack,
                                 dest_name(got), domain);
                for (size_t i = 1; i < nh; i++)
                        if (!oracle_local(hops[i]))
                                fail_msg("<%s> (hack %d): %s \"%s\", but it passes \"%s\", which is not "
                                         "local",
                                         addr, hack, dest_name(got), domain, hops[i]);
        }
        for (size_t i = 0; i < nh; i++)
                free(hops[i]);
}

static void test_rcpt_destination_property(void **state)
{
        static const char *const mydest[] = {"l", "l.l", NULL};
        static const char *const relay[] = {"r", NULL};
        static const char *const addrs[] = {"1.2.3.4", "[::1]", NULL};
        static const char *const tokens[] = {
                "@",  "%",  "\"",  ".",   "[",         "]",          ":",
                "\\", "l",  "r",   "x",   "u",         "L",          "@",
                "%",  "\"", "l.l", "x.r", "[1.2.3.4]", "[ipv6:::1]", "[IPv6:::ffff:1.2.3.4]",
        };
        unsigned seed = 20240611, counts[3] = {};
        Domains x;

        (void) state;
        domains_init(&x, mydest, relay, true, addrs);
        for (unsigned iter = 0; iter < 200000; iter++) {
                char addr[200], domain[256];
                size_t n = 0, len;
                bool hack = iter & 1;
                SmtpdDest got;

                len = (size_t) (rand_r(&seed) % 14);
                addr[0] = '\0';
                for (size_t i = 0; i < len; i++) {
                        const char *t = tokens[(size_t) rand_r(&seed) % ELEMENTSOF(tokens)];
                        size_t tl = strlen(t);

                        if (n + tl >= sizeof(addr))
                                break;
                        memcpy(addr + n, t, tl + 1);
                        n += tl;
                }
                x.d.allow_percent_hack = hack;
                got = smtpd_rcpt_destination(&x.d, addr, domain, sizeof(domain));
                counts[got]++;
                oracle_check(addr, hack, got, domain);
        }
        /* the generator reaches every verdict, so the checks above were exercised */
        if (counts[SMTPD_DEST_LOCAL] < 1000 || counts[SMTPD_DEST_RELAY] < 1000 ||
            counts[SMTPD_DEST_REMOTE] < 1000)
                fail_msg("want every verdict often, got local %u relay %u remote %u",
                         counts[SMTPD_DEST_LOCAL], counts[SMTPD_DEST_RELAY], counts[SMTPD_DEST_REMOTE]);
        domains_done(&x);
}

/* ---- access tables -------------------------------------------------------------------------- */

typedef struct Lookup {
        const char *key;
        const char *value; /* NULL: not found */
} Lookup;

static void check_lookups(const SmtpdAccessTable *t, const char *what, const Lookup *l, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                const char *got = smtpd_access_table_lookup(t, l[i].key);

                if (!l[i].value != !got || (got && !streq(got, l[i].value)))
                        fail_msg("%s: lookup \"%s\": want \"%s\", got \"%s\"", what, l[i].key,
                                 strna(l[i].value), strna(got));
        }
}

static void test_table_texthash(void **state)
{
        static const char text[] = "# an access table\n"
                                   "   # an indented comment\n"
                                   "\n"
                                   "Example.COM   OK\n"
                                   ".sub.example.org\tREJECT no\n"
                                   "  thanks\n"
                                   "# a comment inside a continued entry\n"
                                   "\tat all\n"
                                   "192.0.2   DEFER\n"
                                   "user@example.net  550 5.1.1 gone   \n"
                                   "dunno.example dunno\n"
                                   "relay.example RELAY\n"
                                   "last.example 450 no newline at the end";
        static const Lookup lookups[] = {
                {"example.com", "OK"},
                {"EXAMPLE.com", "OK"},
                {"a.example.com", NULL},
                {"a.sub.example.org", "REJECT no thanks at all"},
                {"x.y.sub.example.org", "REJECT no thanks at all"},
                {"sub.example.org", NULL},
                {"example.org", NULL},
                {"192.0.2", "DEFER"},
                {"192.0.2.1", NULL},
                {"user@example.net", "550 5.1.1 gone"},
                {"dunno.example", "dunno"},
                {"relay.example", "RELAY"},
                {"last.example", "450 no newline at the end"},
                {"", NULL},
                {".", NULL},
                {"com", NULL},
        };
        SmtpdAccessTable *t = NULL;
        size_t line = 99;
        const char *reason = NULL;

        (void) state;
        assert_int_equal(smtpd_access_table_parse(text, strlen(text), false, &t, &line, &reason), 0);
        check_lookups(t, "texthash", lookups, ELEMENTSOF(lookups));

        /* Postfix's default parent style (smtpd_access_maps in parent_domain_matches_subdomains):
         * "example.com" matches its subdomains, ".sub.example.org" matches nothing but itself */
        {
                static const Lookup parent[] = {
                        {"example.com", "OK"},
                        {"a.example.com", "OK"},
                        {"x.a.example.com", "OK"},
                        {"a.sub.example.org", NULL},
                        {".sub.example.org", "REJECT no thanks at all"},
                        {"dunno.example", "dunno"},
                        {"x.dunno.example", "dunno"},
                        {"com", NULL},
                        {"192.0.2", "DEFER"},
                };

                smtpd_access_table_set_parent_style(t, true);
                check_lookups(t, "texthash parent style", parent, ELEMENTSOF(parent));
                smtpd_access_table_set_parent_style(t, false);
        }
        assert_null(smtpd_access_table_lookup(t, NULL));
        assert_null(smtpd_access_table_lookup(NULL, "example.com"));
        t = smtpd_access_table_free(t);
        assert_null(t);

        /* CRLF line ends; an empty table */
        assert_int_equal(
                smtpd_access_table_parse("a.example OK\r\nb.example REJECT\r\n", 32, false, &t, NULL, NULL),
                0);
        {
                static const Lookup l[] = {{"a.example", "OK"}, {"b.example", "REJECT"}};

                check_lookups(t, "texthash CRLF", l, ELEMENTSOF(l));
        }
        t = smtpd_access_table_free(t);
        assert_int_equal(smtpd_access_table_parse("", 0, false, &t, NULL, NULL), 0);
        assert_null(smtpd_access_table_lookup(t, "example.com"));
        t = smtpd_access_table_free(t);
        assert_int_equal(smtpd_access_table_parse("# only comments\n\n", 17, false, &t, NULL, NULL), 0);
        t = smtpd_access_table_free(t);
        /* LEN counts, not the NUL: the second entry is outside */
        assert_int_equal(smtpd_access_table_parse("a.example OK\nb.example OK\n", 13, false, &t, NULL, NULL),
                         0);
        assert_non_null(smtpd_access_table_lookup(t, "a.example"));
        assert_null(smtpd_access_table_lookup(t, "b.example"));
        smtpd_access_table_free(t);
        assert_null(smtpd_access_table_free(NULL));
}

static void test_table_inline(void **state)
{
        static const char text[] = "a.example=OK, { b.example = REJECT go away, now }, .c.example=DUNNO,"
                                   "  {192.0.2=DEFER}  d.example = 550 5.7.1 no";
        static const Lookup lookups[] = {
                {"a.example", "OK"},      {"b.example", "REJECT go away, now"},
                {"x.c.example", "DUNNO"}, {"c.example", NULL},
                {"192.0.2", "DEFER"},     {"d.example", NULL},
        };
        SmtpdAccessTable *t = NULL;
        const char *reason = NULL;
        size_t line = 0;
        int r;

        (void) state;
        /* "d.example = 550 ..." without braces is three words: the parse fails on "d.example" */
        r = smtpd_access_table_parse(text, strlen(text), true, &t, &line, &reason);
        assert_int_equal(r, -EINVAL);
        assert_null(t);
        assert_int_equal(line, 5);
        assert_non_null(strstr(reason, "="));

        r = smtpd_access_table_parse(text, strlen(text) - strlen("  d.example = 550 5.7.1 no"), true, &t,
                                     &line, &reason);
        if (r != 0)
                fail_msg("inline: want it parsed, got %d at entry %zu (%s)", r, line, strna(reason));
        check_lookups(t, "inline", lookups, ELEMENTSOF(lookups));
        smtpd_access_table_free(t);
}

typedef struct BadTable {
        const char *text;
        bool is_inline;
        size_t line;
        const char *reason; /* a part of it */
} BadTable;

static void test_table_bad(void **state)
{
        static const BadTable cases[] = {
                {"example.com\n", false, 1, "key whitespace value"},
                {"ok.example OK\nnovalue\n", false, 2, "key whitespace value"},
                {"ok.example OK\n\n# c\nnovalue   \n", false, 4, "key whitespace value"},
                {"  leading.example OK\n", false, 1, "continuation"},
                {"a.example FOO\n", false, 1, "unknown action"},
                {"a.example PERMIT\n", false, 1, "unknown action"},
                {"a.example 123\n", false, 1, "numerical"},
                {"a.example 550\n", false, 1, "numerical"},
                {"a.example 250 ok\n", false, 1, "unknown action"},
                {"a.example 55 x\n", false, 1, "unknown action"},
                {"a.example 5x0 x\n", false, 1, "unknown action"},
                {"a.example 650 x\n", false, 1, "unknown action"},
                {"a.example OK\nb.example OK\nA.EXAMPLE REJECT\n", false, 0, "duplicate"},
                {"a.example OK\nb.ex\0ample OK\n", false, 2, "NUL"},
                {"a.example", true, 1, "="},
                {"=OK", true, 1, "key"},
                {"a.example=", true, 1, "value"},
                {"a.example=OK, { b.example = OK", true, 2, "unbalanced"},
                {"a.example=OK}", true, 1, "unbalanced"},
                {"{a.example=OK}x", true, 1, "after"},
                {"", true, 0, "empty"},
                {" , ,", true, 0, "empty"},
                {"a=FOO", true, 1, "unknown action"},
                {"a=OK, b=OK, a=DUNNO", true, 0, "duplicate"},
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const BadTable *c = &cases[i];
                size_t len = i == 13 ? 27 : strlen(c->text), line = 999;
                SmtpdAccessTable *t = NULL;
                const char *reason = NULL;
                int r;

                r = smtpd_access_table_parse(c->text, len, c->is_inline, &t, &line, &reason);
                if (r != -EINVAL || t)
                        fail_msg("case %zu \"%s\": want -EINVAL, got %d", i, c->text, r);
                if (line != c->line || !reason || !strcasestr(reason, c->reason))
                        fail_msg("case %zu \"%s\": want line %zu \"%s\", got line %zu \"%s\"", i, c->text,
                                 c->line, c->reason, line, strna(reason));
        }
}

/* ---- restriction lists ---------------------------------------------------------------------- */

static void test_restrictions_valid(void **state)
{
        static const char *const good[][MAX_ENTRIES] = {
                {NULL},
                {"permit"},
                {"PERMIT_MYNETWORKS", "Reject_Unauth_Destination"},
                {"permit_mynetworks", "defer_unauth_destination", "permit_auth_destination", "dunno",
                 "defer", "reject"},
                {"reject_unknown_client_hostname", "warn_if_reject", "reject"},
                {"check_etrn_access", "texthash:/etc/tern/etrn", "reject"},
                {"check_recipient_access", "inline:{a=OK}", "check_client_access", "texthash:/x"},
                {"warn_if_reject"},
                /* Postfix's default smtpd_relay_restrictions */
                {"permit_mynetworks", "permit_sasl_authenticated", "defer_unauth_destination"},
        };
        static const struct {
                const char *list[MAX_ENTRIES];
                size_t bad; /* index of the entry named */
        } bad[] = {
                {{"permit", "frobnicate"}, 1},        {{"reject_unverified_recipient"}, 0},
                {{"check_client_access"}, 0},         {{"reject", "check_recipient_access"}, 1},
                {{"check_etrn_access", "reject"}, 0}, {{"check_etrn_access", "/etc/tern/etrn"}, 0},
                {{"texthash:/etc/tern/access"}, 0},   {{""}, 0},
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                const char *b = NULL;
                int r = smtpd_restrictions_valid((char *const *) good[i], &b);

                if (r != 0)
                        fail_msg("good list %zu: want 0, got %d at \"%s\"", i, r, strna(b));
        }
        assert_int_equal(smtpd_restrictions_valid(NULL, NULL), 0);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                const char *b = NULL;
                int r = smtpd_restrictions_valid((char *const *) bad[i].list, &b);

                if (r != -EINVAL || b != bad[i].list[bad[i].bad])
                        fail_msg("bad list %zu: want -EINVAL at \"%s\", got %d at \"%s\"", i,
                                 bad[i].list[bad[i].bad], r, strna(b));
        }
}

static const char rcpt_table[] = "# recipients\n"
                                 "bad.example      REJECT\n"
                                 ".sub.bad.example REJECT Go away\n"
                                 "defer.example    DEFER\n"
                                 "defer2.example   DEFER 4.2.2 Mailbox full\n"
                                 "code.example     550 5.1.1 No such user here\n"
                                 "code4.example    450 Try later\n"
                                 "codemix.example  550 4.7.0 mixed class\n"
                                 "codedsn.example  550 5.1.8\n"
                                 "ok.example       OK\n"
                                 "dunno.example    DUNNO\n"
                                 "user@mixed.example  OK\n"
                                 "mixed.example    REJECT\n"
                                 "postmaster@      OK\n"
                                 "ctrl.example     REJECT a\001b\n";
static const char client_table[] = "{ 192.0.2 = REJECT }, { bad.host.example = 554 5.7.1 Go away }, "
                                   "198.51.100.7=OK, {2001:db8:1 = DEFER}, { .dunno.example = DUNNO }";
static const char etrn_table[] = "allowed.example OK\n.allowed.example OK\nexample.org REJECT\n";

typedef struct EvalCase {
        const char *list[MAX_ENTRIES];
        SmtpdStage stage;
        bool mynetworks;
        const char *client_name, *client_addr, *object;
        SmtpdDest dest;
        SmtpdVerdict verdict;
        const char *reply; /* "code dsn text"; NULL: code 0 */
} EvalCase;

#define RCPT_ACCESS "check_recipient_access", "texthash:/etc/tern/rcpt"
#define CLIENT_ACCESS "check_client_access", "inline:{client}"
#define ETRN_ACCESS "check_etrn_access", "texthash:/etc/tern/etrn"
#define HOST "host.example", "192.0.2.9"

static void run_eval_cases(const EvalCase *cases, size_t n)
{
        static const char *const names[] = {"texthash:/etc/tern/rcpt", "inline:{client}",
                                            "texthash:/etc/tern/etrn", "texthash:/etc/tern/missing", NULL};
        SmtpdAccessTable *tables[4] = {};

        assert_int_equal(
                smtpd_access_table_parse(rcpt_table, strlen(rcpt_table), false, &tables[0], NULL, NULL), 0);
        assert_int_equal(
                smtpd_access_table_parse(client_table, strlen(client_table), true, &tables[1], NULL, NULL),
                0);
        assert_int_equal(
                smtpd_access_table_parse(etrn_table, strlen(etrn_table), false, &tables[2], NULL, NULL), 0);

        for (size_t i = 0; i < n; i++) {
                const EvalCase *t = &cases[i];
                SmtpdCheck check = {
                        .stage = t->stage,
                        .client_in_mynetworks = t->mynetworks,
                        .client_name = t->client_name,
                        .client_addr = t->client_addr,
                        .object = t->object,
                        .dest = t->dest,
                        .tables = (const SmtpdAccessTable *const *) tables,
                        .table_names = (char *const *) names,
                };
                SmtpdReply reply = {.code = -1};
                char buf[600], got[700];
                SmtpdVerdict v;

                memset(buf, 'Z', sizeof(buf));
                v = smtpd_restrictions_eval((char *const *) t->list, &check, buf, sizeof(buf), &reply);
                if (reply.code == 0)
                        snprintf(got, sizeof(got), "(none)");
                else
                        snprintf(got, sizeof(got), "%d %s %s", reply.code, reply.dsn, reply.text);
                if (v != t->verdict || !streq(got, t->reply ? t->reply : "(none)"))
                        fail_msg("case %zu (%s ...): want %s \"%s\", got %s \"%s\"", i, strna(t->list[0]),
                                 verdict_name(t->verdict), t->reply ? t->reply : "(none)", verdict_name(v),
                                 got);
                /* the verdict and the reply code agree */
                if ((v == SMTPD_REJECT && reply.code / 100 != 5) ||
                    (v == SMTPD_DEFER && reply.code / 100 != 4))
                        fail_msg("case %zu: %s with code %d", i, verdict_name(v), reply.code);
        }
        for (size_t i = 0; i < ELEMENTSOF(tables); i++)
                smtpd_access_table_free(tables[i]);
}

static void test_restrictions_generic(void **state)
{
        static const EvalCase cases[] = {
                /* tern has no SASL: permit_sasl_authenticated never permits, the list goes on */
                {{"permit_sasl_authenticated", "defer_unauth_destination"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@remote.example",
                 SMTPD_DEST_REMOTE,
                 SMTPD_DEFER,
                 "454 4.7.1 <u@remote.example>: Relay access denied"},
                /* the empty list decides nothing */
                {{NULL},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@remote.example",
                 SMTPD_DEST_REMOTE,
                 SMTPD_DUNNO,
                 NULL},
                {{"permit"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@x.example",
                 SMTPD_DEST_REMOTE,
                 SMTPD_PERMIT,
                 NULL},
                {{"dunno"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@x.example",
                 SMTPD_DEST_REMOTE,
                 SMTPD_DUNNO,
                 NULL},
                /* the reply class and name of each stage */
                {{"reject"},
                 SMTPD_STAGE_CLIENT,
                 false,
                 HOST,
                 NULL,
                 SMTPD_DEST_REMOTE,
                 SMTPD_REJECT,
                 "554 5.7.1 <host.example[192.0.2.9]>: Client host rejected: Access denied"},
                {{"reject"},
                 SMTPD_STAGE_CLIENT,
                 false,
                 NULL,
                 NULL,
                 NULL,
                 SMTPD_DEST_REMOTE,
                 SMTPD_REJECT,
                 "554 5.7.1 <unknown[unknown]>: Client host rejected: Access denied"},
                {{"reject"},
                 SMTPD_STAGE_HELO,
                 false,
                 HOST,
                 "helo.example",
                 SMTPD_DEST_REMOTE,
                 SMTPD_REJECT,
                 "554 5.7.1 <helo.example>: Helo command rejected: Access denied"},
                {{"reject"},
                 SMTPD_STAGE_SENDER,
                 false,
                 HOST,
                 "s@example.com",
                 SMTPD_DEST_REMOTE,
                 SMTPD_REJECT,
                 "554 5.7.1 <s@example.com>: Sender address rejected: Access denied"},
                {{"reject"},
                 SMTPD_STAGE_SENDER,
                 false,
                 HOST,
                 "",
                 SMTPD_DEST_REMOTE,
                 SMTPD_REJECT,
                 "554 5.7.1 <>: Sender address rejected: Access denied"},
                {{"REJECT"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@x.example",
                 SMTPD_DEST_LOCAL,
                 SMTPD_REJECT,
                 "554 5.7.1 <u@x.example>: Recipient address rejected: Access denied"},
                {{"reject"},
                 SMTPD_STAGE_ETRN,
                 false,
                 HOST,
                 "etrn.example",
                 SMTPD_DEST_REMOTE,
                 SMTPD_REJECT,
                 "554 5.7.1 <etrn.example>: Etrn command rejected: Access denied"},
                {{"defer"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@x.example",
                 SMTPD_DEST_LOCAL,
                 SMTPD_DEFER,
                 "450 4.3.2 <u@x.example>: Recipient address rejected: Try again later"},
                /* the first decision wins */
                {{"permit", "reject"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@x",
                 SMTPD_DEST_REMOTE,
                 SMTPD_PERMIT,
                 NULL},
                {{"reject", "permit"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@x",
                 SMTPD_DEST_REMOTE,
                 SMTPD_REJECT,
                 "554 5.7.1 <u@x>: Recipient address rejected: Access denied"},
                {{"dunno", "defer", "reject"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@x",
                 SMTPD_DEST_REMOTE,
                 SMTPD_DEFER,
                 "450 4.3.2 <u@x>: Recipient address rejected: Try again later"},
                /* permit_mynetworks, at any stage */
                {{"permit_mynetworks", "reject"},
                 SMTPD_STAGE_RECIPIENT,
                 true,
                 HOST,
                 "u@x",
                 SMTPD_DEST_REMOTE,
                 SMTPD_PERMIT,
                 NULL},
                {{"permit_mynetworks", "reject"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@x",
                 SMTPD_DEST_REMOTE,
                 SMTPD_REJECT,
                 "554 5.7.1 <u@x>: Recipient address rejected: Access denied"},
                {{"permit_mynetworks"},
                 SMTPD_STAGE_ETRN,
                 true,
                 HOST,
                 "x",
                 SMTPD_DEST_REMOTE,
                 SMTPD_PERMIT,
                 NULL},
                /* the relay restrictions */
                {{"reject_unauth_destination"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@remote.example",
                 SMTPD_DEST_REMOTE,
                 SMTPD_REJECT,
                 "554 5.7.1 <u@remote.example>: Relay access denied"},
                {{"reject_unauth_destination"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@relay.example",
                 SMTPD_DEST_RELAY,
                 SMTPD_DUNNO,
                 NULL},
                {{"reject_unauth_destination"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@local.example",
                 SMTPD_DEST_LOCAL,
                 SMTPD_DUNNO,
                 NULL},
                {{"defer_unauth_destination"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@remote.example",
                 SMTPD_DEST_REMOTE,
                 SMTPD_DEFER,
                 "454 4.7.1 <u@remote.example>: Relay access denied"},
                {{"defer_unauth_destination", "permit"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@local.example",
                 SMTPD_DEST_LOCAL,
                 SMTPD_PERMIT,
                 NULL},
                {{"permit_mynetworks", "reject_unauth_destination"},
                 SMTPD_STAGE_RECIPIENT,
                 true,
                 HOST,
                 "u@remote.example",
                 SMTPD_DEST_REMOTE,
                 SMTPD_PERMIT,
                 NULL},
                {{"permit_auth_destination", "reject"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@local.example",
                 SMTPD_DEST_LOCAL,
                 SMTPD_PERMIT,
                 NULL},
                {{"permit_auth_destination", "reject"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@relay.example",
                 SMTPD_DEST_RELAY,
                 SMTPD_PERMIT,
                 NULL},
                {{"permit_auth_destination", "reject"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@remote.example",
                 SMTPD_DEST_REMOTE,
                 SMTPD_REJECT,
                 "554 5.7.1 <u@remote.example>: Recipient address rejected: Access denied"},
                /* recipient restrictions outside the RCPT stage are skipped */
                {{"reject_unauth_destination", "permit_auth_destination"},
                 SMTPD_STAGE_ETRN,
                 false,
                 HOST,
                 "etrn.example",
                 SMTPD_DEST_REMOTE,
                 SMTPD_DUNNO,
                 NULL},
                {{"reject_unauth_destination"},
                 SMTPD_STAGE_SENDER,
                 false,
                 HOST,
                 "s@remote.example",
                 SMTPD_DEST_REMOTE,
                 SMTPD_DUNNO,
                 NULL},
                /* reject_unknown_client_hostname */
                {{"reject_unknown_client_hostname"},
                 SMTPD_STAGE_CLIENT,
                 false,
                 "unknown",
                 "192.0.2.9",
                 NULL,
                 SMTPD_DEST_REMOTE,
                 SMTPD_DEFER,
                 "450 4.7.25 Client host rejected: cannot find your hostname, [192.0.2.9]"},
                {{"reject_unknown_client_hostname"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 "UNKNOWN",
                 "2001:db8::1",
                 "u@x",
                 SMTPD_DEST_LOCAL,
                 SMTPD_DEFER,
                 "450 4.7.25 Client host rejected: cannot find your hostname, [2001:db8::1]"},
                {{"reject_unknown_client_hostname", "permit"},
                 SMTPD_STAGE_CLIENT,
                 false,
                 HOST,
                 NULL,
                 SMTPD_DEST_REMOTE,
                 SMTPD_PERMIT,
                 NULL},
                /* configuration errors */
                {{"permit_mynetworks", "frobnicate", "permit"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@x",
                 SMTPD_DEST_LOCAL,
                 SMTPD_DEFER,
                 "451 4.3.5 Server configuration error"},
                {{"check_client_access", "hash:/etc/tern/unknown"},
                 SMTPD_STAGE_CLIENT,
                 false,
                 HOST,
                 NULL,
                 SMTPD_DEST_REMOTE,
                 SMTPD_DEFER,
                 "451 4.3.5 Server configuration error"},
                {{"check_client_access", "texthash:/etc/tern/missing"},
                 SMTPD_STAGE_CLIENT,
                 false,
                 HOST,
                 NULL,
                 SMTPD_DEST_REMOTE,
                 SMTPD_DEFER,
                 "451 4.3.5 Server configuration error"},
                {{"check_client_access"},
                 SMTPD_STAGE_CLIENT,
                 false,
                 HOST,
                 NULL,
                 SMTPD_DEST_REMOTE,
                 SMTPD_DEFER,
                 "451 4.3.5 Server configuration error"},
                {{"check_client_access", "permit"},
                 SMTPD_STAGE_CLIENT,
                 false,
                 HOST,
                 NULL,
                 SMTPD_DEST_REMOTE,
                 SMTPD_DEFER,
                 "451 4.3.5 Server configuration error"},
        };

        (void) state;
        run_eval_cases(cases, ELEMENTSOF(cases));
}

static void test_restrictions_tables(void **state)
{
        static const EvalCase cases[] = {
                /* check_recipient_access: the domain */
                {{RCPT_ACCESS},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@bad.example",
                 SMTPD_DEST_LOCAL,
                 SMTPD_REJECT,
                 "554 5.7.1 <u@bad.example>: Recipient address rejected: Access denied"},
                {{RCPT_ACCESS},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@BAD.Example.",
                 SMTPD_DEST_LOCAL,
                 SMTPD_REJECT,
                 "554 5.7.1 <u@BAD.Example.>: Recipient address rejected: Access denied"},
                /* "domain" keys do not match subdomains; ".domain" keys do, and only them */
                {{RCPT_ACCESS},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@a.bad.example",
                 SMTPD_DEST_LOCAL,
                 SMTPD_DUNNO,
                 NULL},
                {{RCPT_ACCESS},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@x.sub.bad.example",
                 SMTPD_DEST_LOCAL,
                 SMTPD_REJECT,
                 "554 5.7.1 <u@x.sub.bad.example>: Recipient address rejected: Go away"},
                {{RCPT_ACCESS},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@y.x.sub.bad.example",
                 SMTPD_DEST_LOCAL,
                 SMTPD_REJECT,
                 "554 5.7.1 <u@y.x.sub.bad.example>: Recipient address rejected: Go away"},
                {{RCPT_ACCESS},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@sub.bad.example",
                 SMTPD_DEST_LOCAL,
                 SMTPD_DUNNO,
                 NULL},
                /* DEFER, with and without an enhanced code */
                {{RCPT_ACCESS},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@defer.example",
                 SMTPD_DEST_LOCAL,
                 SMTPD_DEFER,
                 "450 4.7.1 <u@defer.example>: Recipient address rejected: Access denied"},
                {{RCPT_ACCESS},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@defer2.example",
                 SMTPD_DEST_LOCAL,
                 SMTPD_DEFER,
                 "450 4.2.2 <u@defer2.example>: Recipient address rejected: Mailbox full"},
                /* "NNN text": the code, N.7.1 or the text's enhanced code with the code's class */
                {{RCPT_ACCESS},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@code.example",
                 SMTPD_DEST_LOCAL,
                 SMTPD_REJECT,
                 "550 5.1.1 <u@code.example>: Recipient address rejected: No such user here"},
                {{RCPT_ACCESS},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@code4.example",
                 SMTPD_DEST_LOCAL,
                 SMTPD_DEFER,
                 "450 4.7.1 <u@code4.example>: Recipient address rejected: Try later"},
                {{RCPT_ACCESS},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@codemix.example",
                 SMTPD_DEST_LOCAL,
                 SMTPD_REJECT,
                 "550 5.7.0 <u@codemix.example>: Recipient address rejected: mixed class"},
                /* a sender's X.1.8 becomes the recipient's X.1.2 (smtpd_dsn_fix); no text left */
                {{RCPT_ACCESS},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@codedsn.example",
                 SMTPD_DEST_LOCAL,
                 SMTPD_REJECT,
                 "550 5.1.2 <u@codedsn.example>: Recipient address rejected: Access denied"},
                /* control characters in a reply are blanked */
                {{RCPT_ACCESS},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@ctrl.example",
                 SMTPD_DEST_LOCAL,
                 SMTPD_REJECT,
                 "554 5.7.1 <u@ctrl.example>: Recipient address rejected: a b"},
                /* OK, and OK ignored for a routed recipient that goes elsewhere */
                {{RCPT_ACCESS, "reject"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@ok.example",
                 SMTPD_DEST_RELAY,
                 SMTPD_PERMIT,
                 NULL},
                {{RCPT_ACCESS, "reject_unauth_destination"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u%evil.example@ok.example",
                 SMTPD_DEST_REMOTE,
                 SMTPD_REJECT,
                 "554 5.7.1 <u%evil.example@ok.example>: Relay access denied"},
                {{RCPT_ACCESS, "reject"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u%v@ok.example",
                 SMTPD_DEST_LOCAL,
                 SMTPD_PERMIT,
                 NULL},
                /* DUNNO ends the table's lookups, not the list */
                {{RCPT_ACCESS, "reject"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@dunno.example",
                 SMTPD_DEST_LOCAL,
                 SMTPD_REJECT,
                 "554 5.7.1 <u@dunno.example>: Recipient address rejected: Access denied"},
                /* the whole address before the domain; "localpart@" after it */
                {{RCPT_ACCESS},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "user@mixed.example",
                 SMTPD_DEST_LOCAL,
                 SMTPD_PERMIT,
                 NULL},
                {{RCPT_ACCESS},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "User@Mixed.Example",
                 SMTPD_DEST_LOCAL,
                 SMTPD_PERMIT,
                 NULL},
                {{RCPT_ACCESS},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "other@mixed.example",
                 SMTPD_DEST_LOCAL,
                 SMTPD_REJECT,
                 "554 5.7.1 <other@mixed.example>: Recipient address rejected: Access denied"},
                {{RCPT_ACCESS, "reject"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "postmaster@any.example",
                 SMTPD_DEST_LOCAL,
                 SMTPD_PERMIT,
                 NULL},
                {{RCPT_ACCESS, "reject"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "postmaster@bad.example",
                 SMTPD_DEST_LOCAL,
                 SMTPD_REJECT,
                 "554 5.7.1 <postmaster@bad.example>: Recipient address rejected: Access denied"},
                {{RCPT_ACCESS},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@nowhere.example",
                 SMTPD_DEST_LOCAL,
                 SMTPD_DUNNO,
                 NULL},
                /* check_recipient_access outside RCPT is skipped */
                {{RCPT_ACCESS},
                 SMTPD_STAGE_SENDER,
                 false,
                 HOST,
                 "u@bad.example",
                 SMTPD_DEST_LOCAL,
                 SMTPD_DUNNO,
                 NULL},
                /* check_client_access: the name (and parents), then the address (and its networks) */
                {{CLIENT_ACCESS},
                 SMTPD_STAGE_CLIENT,
                 false,
                 "unknown",
                 "192.0.2.55",
                 NULL,
                 SMTPD_DEST_REMOTE,
                 SMTPD_REJECT,
                 "554 5.7.1 <unknown[192.0.2.55]>: Client host rejected: Access denied"},
                {{CLIENT_ACCESS},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 "bad.host.example",
                 "203.0.113.1",
                 "u@x",
                 SMTPD_DEST_LOCAL,
                 SMTPD_REJECT,
                 "554 5.7.1 <bad.host.example[203.0.113.1]>: Client host rejected: Go away"},
                {{CLIENT_ACCESS},
                 SMTPD_STAGE_CLIENT,
                 false,
                 "unknown",
                 "2001:db8:1:2::5",
                 NULL,
                 SMTPD_DEST_REMOTE,
                 SMTPD_DEFER,
                 "450 4.7.1 <unknown[2001:db8:1:2::5]>: Client host rejected: Access denied"},
                {{CLIENT_ACCESS, "reject"},
                 SMTPD_STAGE_CLIENT,
                 false,
                 "mail.example",
                 "198.51.100.7",
                 NULL,
                 SMTPD_DEST_REMOTE,
                 SMTPD_PERMIT,
                 NULL},
                {{CLIENT_ACCESS},
                 SMTPD_STAGE_CLIENT,
                 false,
                 "mail.example",
                 "198.51.100.70",
                 NULL,
                 SMTPD_DEST_REMOTE,
                 SMTPD_DUNNO,
                 NULL},
                /* a DUNNO for the name stops before the address */
                {{CLIENT_ACCESS},
                 SMTPD_STAGE_CLIENT,
                 false,
                 "x.dunno.example",
                 "192.0.2.55",
                 NULL,
                 SMTPD_DEST_REMOTE,
                 SMTPD_DUNNO,
                 NULL},
                /* check_etrn_access */
                {{ETRN_ACCESS, "reject"},
                 SMTPD_STAGE_ETRN,
                 false,
                 HOST,
                 "allowed.example",
                 SMTPD_DEST_REMOTE,
                 SMTPD_PERMIT,
                 NULL},
                {{ETRN_ACCESS, "reject"},
                 SMTPD_STAGE_ETRN,
                 false,
                 HOST,
                 "a.b.allowed.example",
                 SMTPD_DEST_REMOTE,
                 SMTPD_PERMIT,
                 NULL},
                {{ETRN_ACCESS},
                 SMTPD_STAGE_ETRN,
                 false,
                 HOST,
                 "example.org",
                 SMTPD_DEST_REMOTE,
                 SMTPD_REJECT,
                 "554 5.7.1 <example.org>: Etrn command rejected: Access denied"},
                {{ETRN_ACCESS, "reject"},
                 SMTPD_STAGE_ETRN,
                 false,
                 HOST,
                 "other.example",
                 SMTPD_DEST_REMOTE,
                 SMTPD_REJECT,
                 "554 5.7.1 <other.example>: Etrn command rejected: Access denied"},
                {{ETRN_ACCESS},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@example.org",
                 SMTPD_DEST_LOCAL,
                 SMTPD_DUNNO,
                 NULL},
        };

        (void) state;
        run_eval_cases(cases, ELEMENTSOF(cases));
}

static void test_restrictions_warn_if_reject(void **state)
{
        static const EvalCase cases[] = {
                /* the reject is only a warning: the list goes on, the reply is handed back */
                {{"warn_if_reject", "reject"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@x",
                 SMTPD_DEST_LOCAL,
                 SMTPD_DUNNO,
                 "554 5.7.1 <u@x>: Recipient address rejected: Access denied"},
                {{"warn_if_reject", "reject_unauth_destination", "permit"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@remote.example",
                 SMTPD_DEST_REMOTE,
                 SMTPD_PERMIT,
                 "554 5.7.1 <u@remote.example>: Relay access denied"},
                {{"warn_if_reject", RCPT_ACCESS, "permit"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@defer.example",
                 SMTPD_DEST_LOCAL,
                 SMTPD_PERMIT,
                 "450 4.7.1 <u@defer.example>: Recipient address rejected: Access denied"},
                /* only for the next restriction */
                {{"warn_if_reject", "dunno", "reject"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@x",
                 SMTPD_DEST_LOCAL,
                 SMTPD_REJECT,
                 "554 5.7.1 <u@x>: Recipient address rejected: Access denied"},
                {{"warn_if_reject", "defer", "reject"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@x",
                 SMTPD_DEST_LOCAL,
                 SMTPD_REJECT,
                 "554 5.7.1 <u@x>: Recipient address rejected: Access denied"},
                /* a permit after it is a permit */
                {{"warn_if_reject", "permit", "reject"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@x",
                 SMTPD_DEST_LOCAL,
                 SMTPD_PERMIT,
                 NULL},
                /* at the end, harmless */
                {{"permit_mynetworks", "warn_if_reject"},
                 SMTPD_STAGE_RECIPIENT,
                 false,
                 HOST,
                 "u@x",
                 SMTPD_DEST_LOCAL,
                 SMTPD_DUNNO,
                 NULL},
                /* configuration errors are never warnings */
                {{"warn_if_reject", "check_client_access", "hash:/nope", "permit"},
                 SMTPD_STAGE_CLIENT,
                 false,
                 HOST,
                 NULL,
                 SMTPD_DEST_REMOTE,
                 SMTPD_DEFER,
                 "451 4.3.5 Server configuration error"},
                {{"warn_if_reject", "frobnicate", "permit"},
                 SMTPD_STAGE_CLIENT,
                 false,
                 HOST,
                 NULL,
                 SMTPD_DEST_REMOTE,
                 SMTPD_DEFER,
                 "451 4.3.5 Server configuration error"},
        };

        (void) state;
        run_eval_cases(cases, ELEMENTSOF(cases));
}

static void test_restrictions_buffers(void **state)
{
        static const char *const reject[] = {"reject", NULL};
        SmtpdCheck check = {.stage = SMTPD_STAGE_RECIPIENT,
                            .client_name = "h",
                            .client_addr = "192.0.2.1",
                            .object = "u@x"};
        SmtpdReply reply = {};
        char small[4], buf[1024];
        char *big;
        size_t n = 2000;

        (void) state;
        /* a buffer too small for anything: the code still comes, with empty texts */
        assert_int_equal(
                smtpd_restrictions_eval((char *const *) reject, &check, small, sizeof(small), &reply),
                SMTPD_REJECT);
        assert_int_equal(reply.code, 554);
        assert_string_equal(reply.dsn, "");
        assert_string_equal(reply.text, "");
        assert_int_equal(smtpd_restrictions_eval((char *const *) reject, &check, NULL, 0, &reply),
                         SMTPD_REJECT);
        assert_int_equal(reply.code, 554);
        assert_int_equal(smtpd_restrictions_eval((char *const *) reject, &check, buf, sizeof(buf), NULL),
                         SMTPD_REJECT);
        /* a buffer just big enough for the dsn: the text is cut */
        assert_int_equal(smtpd_restrictions_eval((char *const *) reject, &check, buf, 12, &reply),
                         SMTPD_REJECT);
        assert_string_equal(reply.dsn, "5.7.1");
        assert_string_equal(reply.text, "<u@x>");
        assert_true(reply.text + strlen(reply.text) < buf + 12);

        /* a long object: the whole reply stays within 510 bytes */
        big = malloc(n + 1);
        assert_non_null(big);
        memset(big, 'a', n);
        big[n] = '\0';
        check.object = big;
        assert_int_equal(smtpd_restrictions_eval((char *const *) reject, &check, buf, sizeof(buf), &reply),
                         SMTPD_REJECT);
        if (4 + strlen(reply.dsn) + 1 + strlen(reply.text) != 510)
                fail_msg("want a reply of 510 bytes, got %zu",
                         4 + strlen(reply.dsn) + 1 + strlen(reply.text));
        free(big);

        /* no check: nothing decided */
        assert_int_equal(smtpd_restrictions_eval((char *const *) reject, NULL, buf, sizeof(buf), &reply),
                         SMTPD_DUNNO);
        assert_int_equal(reply.code, 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_netlist_parse_good),
                cmocka_unit_test(test_netlist_parse_bad),
                cmocka_unit_test(test_netlist_empty),
                cmocka_unit_test(test_netlist_match),
                cmocka_unit_test(test_rcpt_destination),
                cmocka_unit_test(test_rcpt_destination_property),
                cmocka_unit_test(test_table_texthash),
                cmocka_unit_test(test_table_inline),
                cmocka_unit_test(test_table_bad),
                cmocka_unit_test(test_restrictions_valid),
                cmocka_unit_test(test_restrictions_generic),
                cmocka_unit_test(test_restrictions_tables),
                cmocka_unit_test(test_restrictions_warn_if_reject),
                cmocka_unit_test(test_restrictions_buffers),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
