/* SPDX-License-Identifier: MIT */
/*
 * fuzz-smtpd-access.c - libFuzzer target for the SMTP server's access decisions
 * (src/smtpd/smtpd-access.c)
 *
 * The input, at most FUZZ_INPUT_MAX bytes, is split at \x01 bytes into parts: mynetworks
 * entries (split at blanks and commas), a client address, an access table's text, a recipient
 * address and a client name; a missing part is empty.
 *   - Networks: every entry is parsed alone and the list as a whole. A refused entry leaves the
 *     output alone and names itself with a reason; an accepted one has a family, a prefix in
 *     range and no host bits, matches its own address, still matches with a host bit flipped,
 *     and no longer matches with a network bit flipped. The client address is matched.
 *   - Tables: the text is parsed as texthash and as inline; a table that parses gives, for any
 *     key, only values that are one of the actions it accepts.
 *   - Where a recipient goes, with fixed lists and the percent hack on and off: LOCAL and RELAY
 *     only for a deciding domain that is listed, and (addresses without bang paths) only when
 *     every hop after the user part, with quotes removed, is a listed local domain: nothing is
 *     relayed by accident. A small domain buffer gives the same verdict and stays terminated.
 *   - Restriction lists, fixed, at a stage taken from the input: verdicts agree with the reply
 *     codes (5XX reject, 4XX defer), the dsn's class is the code's, the texts are terminated
 *     within the buffer, without control characters, and at most 510 bytes with the code;
 *     reject_unauth_destination always refuses a REMOTE recipient and never a LOCAL or RELAY one.
 * Never crash, never leak. Seeds: fuzz/corpus/smtpd-access/.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "domain-list.h"
#include "macro.h"
#include "smtpd-access.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* enough for a long table and a long address; more only slows the fuzzer down */
#define FUZZ_INPUT_MAX 8192
#define FUZZ_PARTS 5
#define FUZZ_ENTRIES_MAX 64

static const char *const mydest_patterns[] = {"local.example", "l2.example", NULL};
static const char *const relay_patterns[] = {"relay.example", NULL};
static const char *const local_addr_entries[] = {"192.0.2.1", "[::1]", NULL};

static DomainList mydestination, relay_domains;
static SmtpdNetList local_addrs;
static bool ready;

static bool oracle_local(const char *d)
{
        size_t n = strlen(d);
        char inner[64];
        uint8_t a[16];

        if (streq(d, "local.example") || streq(d, "l2.example"))
                return true;
        if (n < 3 || d[0] != '[' || d[n - 1] != ']' || n - 2 >= sizeof(inner))
                return false;
        memcpy(inner, d + 1, n - 2);
        inner[n - 2] = '\0';
        if (strncasecmp(inner, "ipv6:", 5) == 0)
                return inet_pton(AF_INET6, inner + 5, a) == 1 &&
                       (memcmp(a, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16) == 0 ||
                        memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff\xc0\0\2\1", 16) == 0);
        return inet_pton(AF_INET, inner, a) == 1 && memcmp(a, "\xc0\0\2\1", 4) == 0;
}

static bool oracle_relay(const char *d)
{
        size_t n = strlen(d), s = strlen(".relay.example");

        return streq(d, "relay.example") || (n > s && streq(d + n - s, ".relay.example"));
}

static void oracle_norm(char *d)
{
        size_t n = strlen(d);

        for (char *p = d; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                        *p = (char) (*p - 'A' + 'a');
        if (n >= 2 && d[n - 1] == '.' && d[n - 2] != '.')
                d[n - 1] = '\0';
}

/* check_hops - the address without quotes and backslashes, split at its routing characters:
 * the deciding domain is the first hop after the user part, every later hop is local */
static void check_hops(const char *addr, bool hack, SmtpdDest got, const char *domain)
{
        static char s[FUZZ_INPUT_MAX + 1];
        const char *seps = got == SMTPD_DEST_RELAY || hack ? "@%" : "@";
        size_t nh = 0;
        char *w = s, *p;

        for (const char *q = addr; *q; q++)
                if (*q != '"' && *q != '\\')
                        *w++ = *q;
        *w = '\0';
        p = s + strcspn(s, seps);
        while (*p) {
                char *h = p + 1, save;
                size_t k = strcspn(h, seps);

                save = h[k];
                h[k] = '\0';
                if (k > 0) {
                        oracle_norm(h);
                        if (nh == 0 && !streq(h, domain))
                                abort();
                        if (nh > 0 && !oracle_local(h))
                                abort();
                        nh++;
                }
                h[k] = save;
                p = h + k;
        }
        if (nh == 0 && domain[0] != '\0')
                abort();
        if (nh > 0 && domain[0] == '\0')
                abort();
}

static void fuzz_destination(const char *addr)
{
        SmtpdDomains d = {
                .mydestination = &mydestination,
                .relay_domains = &relay_domains,
                .local_addrs = &local_addrs,
        };

        for (int hack = 0; hack < 2; hack++) {
                char domain[300], small[8];
                SmtpdDest got;

                d.allow_percent_hack = hack;
                got = smtpd_rcpt_destination(&d, addr, domain, sizeof(domain));
                if (got != SMTPD_DEST_LOCAL && got != SMTPD_DEST_RELAY && got != SMTPD_DEST_REMOTE)
                        abort();
                if (memchr(domain, '\0', sizeof(domain)) == NULL)
                        abort();
                if (smtpd_rcpt_destination(&d, addr, small, sizeof(small)) != got ||
                    strlen(small) >= sizeof(small))
                        abort();
                if (got == SMTPD_DEST_REMOTE)
                        continue;
                /* nothing relayed by accident: the deciding domain is listed */
                if (got == SMTPD_DEST_LOCAL && domain[0] && !oracle_local(domain))
                        abort();
                if (got == SMTPD_DEST_RELAY && (!oracle_relay(domain) || oracle_local(domain)))
                        abort();
                if (!strchr(addr, '!') && strlen(addr) <= FUZZ_INPUT_MAX)
                        check_hops(addr, hack, got, domain);
        }
}

/* ---- networks ------------------------------------------------------------------------------- */

static void flip(uint8_t *a, unsigned bit)
{
        a[bit / 8] ^= (uint8_t) (0x80 >> (bit % 8));
}

static void fuzz_one_net(char *entry)
{
        char *entries[] = {entry, NULL};
        SmtpdNetList l = {.n = 12345};
        const char *bad = NULL, *reason = NULL;
        unsigned max;
        uint8_t a[16];
        int r;

        r = smtpd_netlist_parse(entries, &l, &bad, &reason);
        if (r < 0) {
                if (r != -EINVAL || bad != entry || !reason || l.n != 12345 || l.nets)
                        abort();
                return;
        }
        if (r != 0 || l.n != 1)
                abort();
        max = l.nets[0].family == AF_INET ? 32 : l.nets[0].family == AF_INET6 ? 128 : 0;
        if (max == 0 || l.nets[0].prefix > max)
                abort();
        for (unsigned bit = l.nets[0].prefix; bit < max; bit++)
                if (l.nets[0].addr[bit / 8] & (0x80 >> (bit % 8)))
                        abort();
        memcpy(a, l.nets[0].addr, 16);
        if (!smtpd_netlist_match(&l, l.nets[0].family, a))
                abort();
        if (l.nets[0].prefix < max) {
                flip(a, max - 1);
                if (!smtpd_netlist_match(&l, l.nets[0].family, a))
                        abort();
                flip(a, max - 1);
        }
        if (l.nets[0].prefix > 0) {
                flip(a, l.nets[0].prefix - 1);
                if (smtpd_netlist_match(&l, l.nets[0].family, a))
                        abort();
        }
        smtpd_netlist_done(&l);
}

/* ---- tables --------------------------------------------------------------------------------- */

static void check_action(const char *v)
{
        size_t k;

        if (!v)
                return;
        k = strcspn(v, " \t");
        if (k == 0 || isspace((unsigned char) v[strlen(v) - 1]))
                abort();
        if ((k == 2 && strncasecmp(v, "OK", 2) == 0) || (k == 5 && strncasecmp(v, "RELAY", 5) == 0) ||
            (k == 5 && strncasecmp(v, "DUNNO", 5) == 0) || (k == 6 && strncasecmp(v, "REJECT", 6) == 0) ||
            (k == 5 && strncasecmp(v, "DEFER", 5) == 0))
                return;
        if (k == 3 && (v[0] == '4' || v[0] == '5') && isdigit((unsigned char) v[1]) &&
            isdigit((unsigned char) v[2]) && v[3] != '\0')
                return;
        abort();
}

static SmtpdAccessTable *fuzz_table(const char *text, size_t len, bool is_inline, const char *const *keys)
{
        SmtpdAccessTable *t = (SmtpdAccessTable *) 0x1;
        const char *reason = NULL;
        size_t line = 777;
        int r;

        r = smtpd_access_table_parse(text, len, is_inline, &t, &line, &reason);
        if (r < 0) {
                if (r != -EINVAL || !reason || t != (SmtpdAccessTable *) 0x1)
                        abort();
                return NULL;
        }
        if (!t)
                abort();
        /* both parent styles (".parent" and Postfix's default "parent"): each answer is an
         * action, and switching the style back gives the same answer again */
        for (size_t i = 0; keys[i]; i++) {
                const char *dot, *parent;

                smtpd_access_table_set_parent_style(t, false);
                dot = smtpd_access_table_lookup(t, keys[i]);
                check_action(dot);
                smtpd_access_table_set_parent_style(t, true);
                parent = smtpd_access_table_lookup(t, keys[i]);
                check_action(parent);
                smtpd_access_table_set_parent_style(t, false);
                if (dot && smtpd_access_table_lookup(t, keys[i]) != dot)
                        abort();
        }
        return t;
}

/* ---- restriction lists ---------------------------------------------------------------------- */

static void check_reply(SmtpdVerdict v, const SmtpdReply *r, const char *buf, size_t size)
{
        const char *texts[] = {r->dsn, r->text};

        if (v == SMTPD_REJECT && (r->code < 500 || r->code > 599))
                abort();
        if (v == SMTPD_DEFER && (r->code < 400 || r->code > 499))
                abort();
        if ((v == SMTPD_PERMIT || v == SMTPD_DUNNO) && r->code != 0 && (r->code < 400 || r->code > 599))
                abort();
        if (r->code == 0)
                return;
        for (size_t i = 0; i < ELEMENTSOF(texts); i++) {
                const char *s = texts[i];

                if (!s)
                        abort();
                if (*s == '\0')
                        continue;
                /* inside the buffer, terminated there */
                if (s < buf || s >= buf + size || !memchr(s, '\0', (size_t) (buf + size - s)))
                        abort();
                for (const char *p = s; *p; p++)
                        if ((unsigned char) *p < 0x20 || *p == 0x7f)
                                abort();
        }
        if (r->dsn[0] && r->dsn[0] != '0' + r->code / 100)
                abort();
        if (4 + strlen(r->dsn) + 1 + strlen(r->text) > 510)
                abort();
}

static void fuzz_restrictions(const SmtpdCheck *base, SmtpdStage stage)
{
        static const char *const lists[][16] = {
                {"permit_mynetworks", "check_client_access", "texthash:/fuzz", "check_recipient_access",
                 "texthash:/fuzz", "warn_if_reject", "reject_unknown_client_hostname",
                 "reject_unauth_destination", "check_etrn_access", "texthash:/fuzz",
                 "defer_unauth_destination", "permit_auth_destination", "reject", NULL},
                {"warn_if_reject", "check_recipient_access", "texthash:/fuzz", "defer", NULL},
                {"check_client_access", "inline:{fuzz}", "check_etrn_access", "inline:{fuzz}", "dunno",
                 NULL},
                {"warn_if_reject", "check_client_access", "inline:{fuzz}", "permit", NULL},
        };
        static const char *const relay_list[] = {"reject_unauth_destination", "permit", NULL};

        for (SmtpdDest dest = SMTPD_DEST_LOCAL; dest <= SMTPD_DEST_REMOTE; dest++) {
                SmtpdCheck c = *base;
                SmtpdReply reply;
                char buf[600];
                SmtpdVerdict v;

                c.stage = stage;
                c.dest = dest;
                for (size_t i = 0; i < ELEMENTSOF(lists); i++) {
                        if (smtpd_restrictions_valid((char *const *) lists[i], NULL) != 0)
                                abort();
                        v = smtpd_restrictions_eval((char *const *) lists[i], &c, buf, sizeof(buf), &reply);
                        if (v > SMTPD_DEFER)
                                abort();
                        check_reply(v, &reply, buf, sizeof(buf));
                }
                /* the relay decision itself */
                c.stage = SMTPD_STAGE_RECIPIENT;
                v = smtpd_restrictions_eval((char *const *) relay_list, &c, buf, sizeof(buf), &reply);
                check_reply(v, &reply, buf, sizeof(buf));
                if ((dest == SMTPD_DEST_REMOTE) != (v == SMTPD_REJECT))
                        abort();
                if (v == SMTPD_REJECT && reply.code != 554)
                        abort();
                /* the text is cut at 510 bytes, as Postfix cuts it */
                if (v == SMTPD_REJECT && strlen(strempty(c.object)) < 400 &&
                    !strstr(reply.text, ": Relay access denied"))
                        abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static char input[FUZZ_INPUT_MAX + 1];
        char *parts[FUZZ_PARTS], *entries[FUZZ_ENTRIES_MAX + 1];
        size_t lens[FUZZ_PARTS], n = MIN(size, FUZZ_INPUT_MAX), ne = 0;
        SmtpdAccessTable *hash, *inl;
        SmtpdNetList mynetworks = {};
        uint8_t client[16] = {};
        int family = AF_INET;
        bool in_mynetworks = false;
        char *p;

        if (!ready) {
                if (domain_list_new((char *const *) mydest_patterns, false, &mydestination) < 0 ||
                    domain_list_new((char *const *) relay_patterns, true, &relay_domains) < 0 ||
                    smtpd_netlist_parse((char *const *) local_addr_entries, &local_addrs, NULL, NULL) < 0)
                        abort();
                ready = true;
        }

        memcpy(input, data, n);
        input[n] = '\0';
        p = input;
        for (size_t i = 0; i < FUZZ_PARTS; i++) {
                char *end = memchr(p, '\x01', (size_t) (input + n - p));

                parts[i] = p;
                if (end) {
                        *end = '\0';
                        lens[i] = (size_t) (end - p);
                        p = end + 1;
                } else {
                        lens[i] = (size_t) (input + n - p);
                        p = input + n;
                }
        }

        /* networks: each entry alone, then the list */
        for (char *e = parts[0], *save = NULL; ne < FUZZ_ENTRIES_MAX && (e = strtok_r(e, " ,\t", &save));
             e = NULL)
                entries[ne++] = e;
        entries[ne] = NULL;
        for (size_t i = 0; i < ne; i++)
                fuzz_one_net(entries[i]);
        if (inet_pton(AF_INET6, parts[1], client) == 1)
                family = AF_INET6;
        else if (inet_pton(AF_INET, parts[1], client) != 1)
                memcpy(client, parts[1], MIN(strlen(parts[1]), sizeof(client)));
        if (smtpd_netlist_parse(entries, &mynetworks, NULL, NULL) == 0) {
                in_mynetworks = smtpd_netlist_match(&mynetworks, family, client);
                (void) smtpd_netlist_match(&mynetworks, family == AF_INET ? AF_INET6 : AF_INET, client);
                smtpd_netlist_done(&mynetworks);
        }

        /* tables, with the other parts as keys */
        {
                const char *keys[] = {parts[3], parts[4], parts[1], "example.com", "a.b.example", "", NULL};

                hash = fuzz_table(parts[2], lens[2], false, keys);
                inl = fuzz_table(parts[2], lens[2], true, keys);
        }

        fuzz_destination(parts[3]);

        {
                const SmtpdAccessTable *tables[] = {hash, inl, NULL};
                static const char *const names[] = {"texthash:/fuzz", "inline:{fuzz}", NULL};
                SmtpdCheck base = {
                        .client_in_mynetworks = in_mynetworks,
                        .client_name = parts[4],
                        .client_addr = parts[1],
                        .object = parts[3],
                        .tables = tables,
                        .table_names = (char *const *) names,
                };

                fuzz_restrictions(&base, (SmtpdStage) (n ? (unsigned char) data[0] % 5 : 0));
        }

        smtpd_access_table_free(hash);
        smtpd_access_table_free(inl);
        return 0;
}
