/* SPDX-License-Identifier: MIT */
/*
 * smtpd-access.c - the SMTP server's access decisions (see smtpd-access.h), as Postfix's
 * smtpd_check.c, trivial-rewrite's resolve.c and the access(5) table format have them
 *
 * Networks: mynetworks entries are parsed into (family, address, prefix); a network with host
 * bits set is refused ("non-null host address bits", as Postfix's cidr_match.c says). A client
 * ::ffff:a.b.c.d is also matched as a.b.c.d against the IPv4 networks.
 *
 * Where a recipient goes: the address is taken apart right to left as trivial-rewrite does it.
 * The domain after the last '@' outside quotes decides; when it is local, the local part is
 * looked at again for routing: an unquoted '@', a bang path "site!user" (Postfix's
 * swap_bangpath = yes), with allow_percent_hack the last '%', and, when the local part holds
 * quotes or backslashes, its dequoted form (Postfix's resolve_dequoted = yes). Each step makes
 * the address shorter, so the work is bounded by its length (SMTPD_ADDR_MAX at most). A domain
 * that is neither a valid host name nor a well-formed literal is remote (resolve.c's
 * RESOLVE_FLAG_ERROR, which no permit_auth_destination accepts). A relay
 * domain whose local part still holds '@', '!' or '%' is remote: Postfix marks it
 * RESOLVE_FLAG_ROUTED and, with allow_untrusted_routing = no, permit_auth_destination skips it.
 *
 * Access tables: texthash ("key whitespace value", continuation lines starting with blanks,
 * '#' comments; duplicate keys refused, as dict_thash does by default) or inline ("{ key =
 * value }" groups for values with blanks). Keys are folded to lower case; the action is checked
 * when the table is parsed, so that a bad table stops the server at start and never reaches a
 * client. Lookups: exact key, then ".parent" for each parent domain (never for an IP address),
 * then, for client addresses, the address with its last octet (IPv4, '.') or group (IPv6, ':')
 * removed, as Postfix's check_addr_access; for recipients the whole address, its domain, and
 * "localpart@", as check_mail_access.
 *
 * Restriction lists: generic_checks() with Postfix's reply texts and codes (reject_code 554,
 * defer_code 450, relay_domains_reject_code 554, access_map_reject_code 554,
 * access_map_defer_code 450, unknown_client_reject_code 450); the enhanced status code's class
 * always follows the reply code, and an access table's X.1.Y code is adjusted to the reply class
 * as smtpd_dsn_fix() does. A reply is at most SMTPD_REPLY_MAX bytes, control characters blanked
 * (Postfix's printable()). An unknown restriction or a missing table gives Postfix's "451 4.3.5
 * Server configuration error", which warn_if_reject does not turn into a warning.
 *
 * Pure code: no I/O, no logging. Returns -errno.
 *
 * BUGS: with allow_percent_hack = no, "user%other@local" is LOCAL; Postfix 3.x also sets
 * RESOLVE_FLAG_ROUTED for it and reject_unauth_destination then refuses it. Partly quoted local
 * parts ("a@b"c) are dequoted as a whole, which is stricter than Postfix (it cracks open only a
 * local part that is one quoted string). No recipient_delimiter extension lookups, no
 * restriction classes, no actions other than OK/RELAY/DUNNO/REJECT/DEFER/NNN, and Postfix's
 * all-numerical "OK" is refused as a table error. warn_if_reject's warning is only handed back
 * (the last suppressed reply), never logged here.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "macro.h"
#include "smtpd-access.h"

/* the longest address looked at: Postfix's line_length_limit, no RCPT line can carry more */
#define SMTPD_ADDR_MAX 2048
/* the longest reply, RFC 5321's 512 less CRLF, as smtpd_check_reject() truncates it */
#define SMTPD_REPLY_MAX 510
/* room for "name[addr]": a host name (255) and an address literal */
#define SMTPD_NAMADDR_MAX 512
/* the longest enhanced status code, "5.999.999" */
#define SMTPD_DSN_MAX 9

/* Postfix's defaults for the reply codes of main.cf */
#define SMTPD_REJECT_CODE 554     /* reject_code */
#define SMTPD_DEFER_CODE 450      /* defer_code */
#define SMTPD_RELAY_CODE 554      /* relay_domains_reject_code */
#define SMTPD_MAP_REJECT_CODE 554 /* access_map_reject_code */
#define SMTPD_MAP_DEFER_CODE 450  /* access_map_defer_code */
#define SMTPD_UNK_CLIENT_CODE 450 /* unknown_client_reject_code */

static bool is_blank(char c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static char lower_ascii(char c)
{
        return c >= 'A' && c <= 'Z' ? (char) (c - 'A' + 'a') : c;
}

/* ---- networks ------------------------------------------------------------------------------- */

/* looks_like_table - "type:name" (hash:/etc/x, inline:{...}), not an IPv6 address */
static bool looks_like_table(const char *e)
{
        const char *colon = strchr(e, ':');
        bool non_hex = false;

        if (!colon || colon == e)
                return false;
        for (const char *p = e; p < colon; p++) {
                char c = lower_ascii(*p);

                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
                        return false;
                if (!((c >= 'a' && c <= 'f') || (c >= '0' && c <= '9')))
                        non_hex = true;
        }
        return non_hex;
}

static int net_parse_one(const char *e, SmtpdNet *ret, const char **ret_reason)
{
        char buf[INET6_ADDRSTRLEN + 1];
        const char *addr = e, *slash = NULL;
        SmtpdNet net = {};
        unsigned max, prefix;
        size_t alen;

        if (!*e) {
                *ret_reason = "empty entry";
                return -EINVAL;
        }
        if (e[0] == '!') {
                *ret_reason = "negated entries are not supported";
                return -EINVAL;
        }
        if (e[0] == '/') {
                *ret_reason = "file entries are not supported here";
                return -EINVAL;
        }
        if (e[0] == '[') {
                const char *end = strchr(e, ']');

                if (!end) {
                        *ret_reason = "missing ']'";
                        return -EINVAL;
                }
                addr = e + 1;
                alen = (size_t) (end - addr);
                if (end[1] == '/')
                        slash = end + 1;
                else if (end[1] != '\0') {
                        *ret_reason = "text after ']'";
                        return -EINVAL;
                }
        } else {
                slash = strchr(e, '/');
                alen = slash ? (size_t) (slash - e) : strlen(e);
        }

        if (alen > 0 && alen < sizeof(buf)) {
                memcpy(buf, addr, alen);
                buf[alen] = '\0';
        } else
                buf[0] = '\0';
        if (buf[0] && inet_pton(AF_INET, buf, net.addr) == 1) {
                net.family = AF_INET;
                max = 32;
        } else if (buf[0] && inet_pton(AF_INET6, buf, net.addr) == 1) {
                net.family = AF_INET6;
                max = 128;
        } else {
                if (e[0] != '[' && looks_like_table(e))
                        *ret_reason = "lookup tables are not supported here";
                else if (e[0] != '[' && !slash && valid_hostname(e))
                        *ret_reason = "host names are not supported here";
                else
                        *ret_reason = "not an IP address or network";
                return -EINVAL;
        }

        if (slash) {
                const char *p = slash + 1;
                size_t n = strspn(p, "0123456789");

                if (n == 0 || n > 3 || p[n] != '\0') {
                        *ret_reason = "bad network prefix";
                        return -EINVAL;
                }
                prefix = (unsigned) atoi(p);
                if (prefix > max) {
                        *ret_reason = "bad network prefix";
                        return -EINVAL;
                }
        } else
                prefix = max;

        for (unsigned bit = prefix; bit < max; bit++)
                if (net.addr[bit / 8] & (0x80 >> (bit % 8))) {
                        *ret_reason = "non-null host address bits";
                        return -EINVAL;
                }
        net.prefix = prefix;
        *ret = net;
        return 0;
}

int smtpd_netlist_parse(char *const *entries, SmtpdNetList *ret, const char **ret_bad,
                        const char **ret_reason)
{
        _cleanup_(freep) SmtpdNet *nets = NULL;
        size_t n = 0;

        while (entries && entries[n])
                n++;
        nets = calloc(n ? n : 1, sizeof(SmtpdNet));
        if (!nets)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const char *reason = NULL;
                int r = net_parse_one(entries[i], &nets[i], &reason);

                if (r < 0) {
                        if (ret_bad)
                                *ret_bad = entries[i];
                        if (ret_reason)
                                *ret_reason = reason;
                        return r;
                }
        }
        *ret = (SmtpdNetList){.nets = TAKE_PTR(nets), .n = n};
        return 0;
}

void smtpd_netlist_done(SmtpdNetList *l)
{
        if (!l)
                return;
        free(l->nets);
        *l = (SmtpdNetList){};
}

static bool net_match(const SmtpdNet *net, const uint8_t *a)
{
        unsigned full = net->prefix / 8, rem = net->prefix % 8;
        uint8_t mask;

        if (memcmp(net->addr, a, full) != 0)
                return false;
        if (rem == 0)
                return true;
        mask = (uint8_t) (0xff << (8 - rem));
        return (net->addr[full] & mask) == (a[full] & mask);
}

bool smtpd_netlist_match(const SmtpdNetList *l, int family, const void *addr)
{
        static const uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        const uint8_t *a = addr, *v4 = NULL;

        if (!l || !addr)
                return false;
        if (family == AF_INET)
                v4 = a;
        else if (family == AF_INET6) {
                if (memcmp(a, mapped_prefix, sizeof(mapped_prefix)) == 0)
                        v4 = a + 12;
        } else
                return false;

        for (size_t i = 0; i < l->n; i++) {
                const SmtpdNet *net = &l->nets[i];

                if (net->family == AF_INET && v4 && net_match(net, v4))
                        return true;
                if (net->family == AF_INET6 && family == AF_INET6 && net_match(net, a))
                        return true;
        }
        return false;
}

/* ---- where a recipient goes ----------------------------------------------------------------- */

/* find_unquoted - the first (or LAST) C in S outside a quoted string; a backslash takes the
 * next character literally, inside quotes and out */
static char *find_unquoted(char *s, char c, bool last)
{
        bool quoted = false;
        char *found = NULL;

        for (char *p = s; *p; p++) {
                if (*p == '\\') {
                        if (!p[1])
                                break;
                        p++;
                        continue;
                }
                if (*p == '"') {
                        quoted = !quoted;
                        continue;
                }
                if (!quoted && *p == c) {
                        found = p;
                        if (!last)
                                break;
                }
        }
        return found;
}

/* dequote - S without its quotes, and with backslash escapes resolved, in place */
static void dequote(char *s)
{
        char *w = s;

        for (char *p = s; *p; p++) {
                if (*p == '"')
                        continue;
                if (*p == '\\') {
                        if (!p[1])
                                break;
                        p++;
                }
                *w++ = *p;
        }
        *w = '\0';
}

/* domain_normalize - fold to lower case; drop one trailing dot, but not after a dot ("a..")
 * and not the only character (resolve.c's "strip trailing dot, but not dot-dot or at-dot") */
static void domain_normalize(char *d)
{
        size_t n = strlen(d);

        lowercase_ascii(d);
        if (n >= 2 && d[n - 1] == '.' && d[n - 2] != '.')
                d[n - 1] = '\0';
}

/* literal_addr - "[192.0.2.1]" or "[ipv6:2001:db8::1]" (any case) as an address; false for a
 * malformed literal */
static bool literal_addr(const char *d, int *ret_family, uint8_t ret_addr[16])
{
        char buf[INET6_ADDRSTRLEN + 8];
        size_t n = strlen(d);
        const char *inner;

        if (n < 3 || d[0] != '[' || d[n - 1] != ']' || n - 2 >= sizeof(buf))
                return false;
        memcpy(buf, d + 1, n - 2);
        buf[n - 2] = '\0';
        if (strncasecmp(buf, "ipv6:", 5) == 0) {
                inner = buf + 5;
                *ret_family = AF_INET6;
        } else {
                inner = buf;
                *ret_family = AF_INET;
        }
        return *inner && inet_pton(*ret_family, inner, ret_addr) == 1;
}

/* domain_valid - a host name or a well-formed address literal, as resolve.c requires of the
 * domain that decides (valid_utf8_hostname, valid_mailhost_literal) */
static bool domain_valid(const char *domain)
{
        uint8_t addr[16];
        int family;

        if (domain[0] == '[')
                return literal_addr(domain, &family, addr);
        return valid_hostname(domain);
}

static bool domain_is_local(const SmtpdDomains *d, const char *domain)
{
        size_t n = strlen(domain);

        if (n >= 2 && domain[0] == '[' && domain[n - 1] == ']') {
                uint8_t addr[16] = {};
                int family;

                /* a literal is local only as one of this host's addresses, never by name */
                return literal_addr(domain, &family, addr) && d->local_addrs &&
                       smtpd_netlist_match(d->local_addrs, family, addr);
        }
        return d->mydestination && domain_list_match(d->mydestination, domain);
}

static void copy_out(char *buf, size_t size, const char *s)
{
        if (buf && size > 0)
                snprintf(buf, size, "%s", s);
}

SmtpdDest smtpd_rcpt_destination(const SmtpdDomains *d, const char *addr, char *domain_buf, size_t size)
{
        char work[SMTPD_ADDR_MAX + 1], local_domain[SMTPD_ADDR_MAX + 1] = "";
        size_t len;

        copy_out(domain_buf, size, "");
        if (!d || !addr)
                return SMTPD_DEST_REMOTE;
        len = strlen(addr);
        if (len > SMTPD_ADDR_MAX)
                return SMTPD_DEST_REMOTE;
        memcpy(work, addr, len + 1);

        /* every pass makes WORK shorter, or rewrites it into a form the next pass shortens */
        for (size_t pass = 0; pass <= 2 * SMTPD_ADDR_MAX + 2; pass++) {
                size_t n = strlen(work);
                char *at = find_unquoted(work, '@', true), *p;

                /* "user@" is "user", as trivial-rewrite strips a trailing '@' */
                if (at && at == work + n - 1) {
                        *at = '\0';
                        continue;
                }
                if (at) {
                        char *domain = at + 1;

                        *at = '\0';
                        domain_normalize(domain);
                        if (!domain_valid(domain)) {
                                /* resolve.c's RESOLVE_FLAG_ERROR: never local, never relay */
                                copy_out(domain_buf, size, domain);
                                return SMTPD_DEST_REMOTE;
                        }
                        if (!domain_is_local(d, domain)) {
                                copy_out(domain_buf, size, domain);
                                if (!d->relay_domains || !domain_list_match(d->relay_domains, domain))
                                        return SMTPD_DEST_REMOTE;
                                /* routing left in the local part: RESOLVE_FLAG_ROUTED */
                                if (strpbrk(work, "@!%"))
                                        return SMTPD_DEST_REMOTE;
                                return SMTPD_DEST_RELAY;
                        }
                        memmove(local_domain, domain, strlen(domain) + 1);
                }

                /* WORK is now a local part: of a local domain, or of an address without one;
                 * "u@v" left in it is an address again */
                if (find_unquoted(work, '@', false))
                        continue;
                p = find_unquoted(work, '!', false);
                if (p) {
                        /* site!user -> user@site */
                        char site[SMTPD_ADDR_MAX + 1];
                        size_t sl = (size_t) (p - work);

                        memcpy(site, work, sl);
                        site[sl] = '\0';
                        memmove(work, p + 1, strlen(p + 1) + 1);
                        n = strlen(work);
                        work[n] = '@';
                        memcpy(work + n + 1, site, sl + 1);
                        continue;
                }
                if (d->allow_percent_hack) {
                        p = find_unquoted(work, '%', true);
                        if (p) {
                                *p = '@';
                                continue;
                        }
                }
                if (strpbrk(work, "\"\\")) {
                        char plain[SMTPD_ADDR_MAX + 1];

                        memcpy(plain, work, strlen(work) + 1);
                        dequote(plain);
                        if (strpbrk(plain, d->allow_percent_hack ? "@!%" : "@!")) {
                                memcpy(work, plain, strlen(plain) + 1);
                                continue;
                        }
                }
                copy_out(domain_buf, size, local_domain);
                return SMTPD_DEST_LOCAL;
        }
        return SMTPD_DEST_REMOTE;
}

/* ---- access tables -------------------------------------------------------------------------- */

typedef struct AccessEntry {
        char *key; /* lower case */
        char *value;
} AccessEntry;

struct SmtpdAccessTable {
        AccessEntry *entries; /* sorted by key */
        size_t n;
        bool parent_style;    /* "domain" matches subdomains, not ".domain" */
};

typedef enum ActionKind {
        ACTION_OK,
        ACTION_DUNNO,
        ACTION_REJECT,
        ACTION_DEFER,
        ACTION_CODE,
} ActionKind;

typedef struct Action {
        ActionKind kind;
        int code;         /* ACTION_CODE */
        const char *text; /* after the keyword or code, blanks skipped */
} Action;

/* action_parse - an access table's right-hand side, as check_table_result() reads it */
static int action_parse(const char *value, Action *ret, const char **ret_reason)
{
        size_t klen = strcspn(value, " \t");
        const char *text = value + klen;
        Action a = {};

        while (*text == ' ' || *text == '\t')
                text++;
        a.text = text;
        if (klen == 0) {
                *ret_reason = "empty action";
                return -EINVAL;
        }
        if ((klen == 2 && strncasecmp(value, "OK", 2) == 0) ||
            (klen == 5 && strncasecmp(value, "RELAY", 5) == 0))
                a.kind = ACTION_OK;
        else if (klen == 5 && strncasecmp(value, "DUNNO", 5) == 0)
                a.kind = ACTION_DUNNO;
        else if (klen == 6 && strncasecmp(value, "REJECT", 6) == 0)
                a.kind = ACTION_REJECT;
        else if (klen == 5 && strncasecmp(value, "DEFER", 5) == 0)
                a.kind = ACTION_DEFER;
        else if (strspn(value, "0123456789") == strlen(value)) {
                *ret_reason = "all-numerical action (Postfix reads it as OK): write OK or \"NNN text\"";
                return -EINVAL;
        } else if (klen == 3 && (value[0] == '4' || value[0] == '5') && value[1] >= '0' && value[1] <= '9' &&
                   value[2] >= '0' && value[2] <= '9') {
                if (!*text) {
                        *ret_reason = "reply code without text";
                        return -EINVAL;
                }
                a.kind = ACTION_CODE;
                a.code = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
        } else {
                *ret_reason = "unknown action (OK, DUNNO, REJECT, DEFER or \"4NN/5NN text\")";
                return -EINVAL;
        }
        *ret = a;
        return 0;
}

SmtpdAccessTable *smtpd_access_table_free(SmtpdAccessTable *t)
{
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n; i++) {
                free(t->entries[i].key);
                free(t->entries[i].value);
        }
        free(t->entries);
        free(t);
        return NULL;
}

static void smtpd_access_table_freep(SmtpdAccessTable **t)
{
        smtpd_access_table_free(*t);
}

/* trim - S (LEN) without blanks at either end */
static const char *trim(const char *s, size_t *len)
{
        while (*len > 0 && is_blank(s[0])) {
                s++;
                (*len)--;
        }
        while (*len > 0 && is_blank(s[*len - 1]))
                (*len)--;
        return s;
}

/* table_add - KEY (KLEN) and VALUE (VLEN), both already trimmed and non-empty */
static int table_add(SmtpdAccessTable *t, size_t *cap, const char *key, size_t klen, const char *value,
                     size_t vlen, const char **ret_reason)
{
        _cleanup_(freep) char *k = NULL, *v = NULL;
        const char *reason;
        Action a;

        if (memchr(key, '\0', klen) || memchr(value, '\0', vlen)) {
                *ret_reason = "NUL byte";
                return -EINVAL;
        }
        k = strndup(key, klen);
        v = strndup(value, vlen);
        if (!k || !v)
                return -ENOMEM;
        lowercase_ascii(k);
        if (action_parse(v, &a, &reason) < 0) {
                *ret_reason = reason;
                return -EINVAL;
        }
        if (t->n == *cap) {
                size_t ncap = *cap ? 2 * *cap : 16;
                AccessEntry *e = reallocarray(t->entries, ncap, sizeof(AccessEntry));

                if (!e)
                        return -ENOMEM;
                t->entries = e;
                *cap = ncap;
        }
        t->entries[t->n++] = (AccessEntry){.key = TAKE_PTR(k), .value = TAKE_PTR(v)};
        return 0;
}

static int entry_cmp(const void *a, const void *b)
{
        return strcmp(((const AccessEntry *) a)->key, ((const AccessEntry *) b)->key);
}

/* parse_texthash - one logical line at a time: a line starting with blanks continues it */
static int parse_texthash(SmtpdAccessTable *t, size_t *cap, const char *text, size_t len, size_t *ret_line,
                          const char **ret_reason)
{
        _cleanup_(freep) char *logical = NULL;
        size_t llen = 0, lcap = 0, lline = 0, lineno = 0;
        const char *p = text, *end = text + len;

        for (;;) {
                const char *nl, *s = NULL;
                size_t n = 0;
                bool more = p < end, continuation = false;

                if (more) {
                        nl = memchr(p, '\n', (size_t) (end - p));
                        n = nl ? (size_t) (nl - p) : (size_t) (end - p);
                        lineno++;
                        s = p;
                        p = nl ? nl + 1 : end;
                        if (memchr(s, '\0', n)) {
                                *ret_line = lineno;
                                *ret_reason = "NUL byte";
                                return -EINVAL;
                        }
                        continuation = n > 0 && is_blank(s[0]);
                        s = trim(s, &n);
                        /* empty lines and comments are skipped, and do not end a logical line */
                        if (n == 0 || s[0] == '#')
                                continue;
                        if (continuation) {
                                if (!logical) {
                                        *ret_line = lineno;
                                        *ret_reason = "continuation line without an entry before it";
                                        return -EINVAL;
                                }
                        }
                }
                /* a new logical line, or the end: the one collected so far is complete */
                if (logical && (!more || !continuation)) {
                        size_t klen = strcspn(logical, " \t\r\n\v\f"), vlen;
                        const char *value = logical + klen;
                        int r;

                        vlen = llen - klen;
                        value = trim(value, &vlen);
                        if (vlen == 0) {
                                *ret_line = lline;
                                *ret_reason = "expected format: key whitespace value";
                                return -EINVAL;
                        }
                        r = table_add(t, cap, logical, klen, value, vlen, ret_reason);
                        if (r < 0) {
                                *ret_line = lline;
                                return r;
                        }
                        logical = mfree(logical);
                        llen = lcap = 0;
                }
                if (!more)
                        return 0;
                /* append S (N) to the logical line, with one blank before a continuation */
                if (llen + n + 2 > lcap) {
                        size_t ncap = MAX(2 * lcap, llen + n + 2);
                        char *b = realloc(logical, ncap);

                        if (!b)
                                return -ENOMEM;
                        logical = b;
                        lcap = ncap;
                }
                if (continuation)
                        logical[llen++] = ' ';
                else
                        lline = lineno;
                memcpy(logical + llen, s, n);
                llen += n;
                logical[llen] = '\0';
        }
}

/* parse_inline - "key=value, { key = value with blanks }", as dict_inline with mystrtokq() */
static int parse_inline(SmtpdAccessTable *t, size_t *cap, const char *text, size_t len, size_t *ret_line,
                        const char **ret_reason)
{
        const char *p = text, *end = text + len;
        size_t entry = 0;

        for (;;) {
                const char *tok, *eq, *key, *value;
                size_t tlen, klen, vlen;
                int depth = 0, r;

                while (p < end && (is_blank(*p) || *p == ','))
                        p++;
                if (p >= end)
                        break;
                entry++;
                tok = p;
                for (; p < end; p++) {
                        if (*p == '{')
                                depth++;
                        else if (*p == '}') {
                                if (--depth < 0)
                                        break;
                        } else if (depth == 0 && (is_blank(*p) || *p == ','))
                                break;
                }
                if (depth != 0) {
                        *ret_line = entry;
                        *ret_reason = "unbalanced '{' or '}'";
                        return -EINVAL;
                }
                tlen = (size_t) (p - tok);
                if (tok[0] == '{') {
                        if (tok[tlen - 1] != '}') {
                                *ret_line = entry;
                                *ret_reason = "text after '}'";
                                return -EINVAL;
                        }
                        tok++;
                        tlen -= 2;
                        tok = trim(tok, &tlen);
                }
                eq = memchr(tok, '=', tlen);
                if (!eq) {
                        *ret_line = entry;
                        *ret_reason = "missing '=' in \"key=value\"";
                        return -EINVAL;
                }
                klen = (size_t) (eq - tok);
                key = trim(tok, &klen);
                vlen = tlen - (size_t) (eq + 1 - tok);
                value = trim(eq + 1, &vlen);
                if (klen == 0 || vlen == 0) {
                        *ret_line = entry;
                        *ret_reason = klen == 0 ? "missing key" : "missing value";
                        return -EINVAL;
                }
                r = table_add(t, cap, key, klen, value, vlen, ret_reason);
                if (r < 0) {
                        *ret_line = entry;
                        return r;
                }
        }
        if (entry == 0) {
                *ret_line = 0;
                *ret_reason = "empty table";
                return -EINVAL;
        }
        return 0;
}

int smtpd_access_table_parse(const char *text, size_t len, bool is_inline, SmtpdAccessTable **ret,
                             size_t *ret_line, const char **ret_reason)
{
        _cleanup_(smtpd_access_table_freep) SmtpdAccessTable *t = NULL;
        const char *reason = NULL;
        size_t cap = 0, line = 0;
        int r;

        if (!text && len > 0)
                return -EINVAL;
        t = calloc(1, sizeof(SmtpdAccessTable));
        if (!t)
                return -ENOMEM;
        if (!text)
                text = "";
        r = is_inline ? parse_inline(t, &cap, text, len, &line, &reason)
                      : parse_texthash(t, &cap, text, len, &line, &reason);
        if (r >= 0 && t->n > 1) {
                qsort(t->entries, t->n, sizeof(AccessEntry), entry_cmp);
                for (size_t i = 1; i < t->n; i++)
                        if (streq(t->entries[i - 1].key, t->entries[i].key)) {
                                reason = "duplicate entry";
                                line = 0;
                                r = -EINVAL;
                                break;
                        }
        }
        if (r == -EINVAL) {
                if (ret_line)
                        *ret_line = line;
                if (ret_reason)
                        *ret_reason = reason;
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(t);
        return 0;
}

/* key_cmp - KEY (KLEN bytes, any case) against an entry's lower-case key */
static int key_cmp(const char *key, size_t klen, const char *entry_key)
{
        for (size_t i = 0; i < klen; i++) {
                unsigned char a = (unsigned char) lower_ascii(key[i]), b = (unsigned char) entry_key[i];

                if (b == 0)
                        return 1;
                if (a != b)
                        return a < b ? -1 : 1;
        }
        return entry_key[klen] ? -1 : 0;
}

static const char *table_find(const SmtpdAccessTable *t, const char *key, size_t klen)
{
        size_t lo = 0, hi = t->n;

        if (klen == 0)
                return NULL;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = key_cmp(key, klen, t->entries[mid].key);

                if (c == 0)
                        return t->entries[mid].value;
                if (c < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return NULL;
}

/* is_numeric_host - an IP address or a literal: no parent-domain lookups for it */
static bool is_numeric_host(const char *d)
{
        uint8_t a[16];
        char buf[INET6_ADDRSTRLEN + 1];
        size_t n = strlen(d);

        if (d[0] == '[')
                return true;
        if (n >= sizeof(buf))
                return false;
        memcpy(buf, d, n + 1);
        return inet_pton(AF_INET, buf, a) == 1 || inet_pton(AF_INET6, buf, a) == 1;
}

/* domain_find - D (DLEN), then each parent as check_domain_access() looks it up: "parent" when
 * smtpd_access_maps is in parent_domain_matches_subdomains (Postfix's default), else ".parent" */
static const char *domain_find(const SmtpdAccessTable *t, const char *d, size_t dlen)
{
        const char *v = table_find(t, d, dlen);
        char buf[SMTPD_ADDR_MAX + 1];

        if (v || dlen == 0 || dlen > SMTPD_ADDR_MAX)
                return v;
        memcpy(buf, d, dlen);
        buf[dlen] = '\0';
        if (is_numeric_host(buf))
                return NULL;
        /* "a.b.c": ".b.c", ".c" or "b.c", "c" (strchr(name + 1, '.') in check_domain_access) */
        for (size_t i = 1; i < dlen; i++)
                if (d[i] == '.') {
                        size_t skip = t->parent_style ? 1 : 0;

                        if (i + skip >= dlen)
                                break;
                        v = table_find(t, d + i + skip, dlen - i - skip);
                        if (v)
                                return v;
                }
        return NULL;
}

void smtpd_access_table_set_parent_style(SmtpdAccessTable *t, bool parent_style)
{
        t->parent_style = parent_style;
}

const char *smtpd_access_table_lookup(const SmtpdAccessTable *t, const char *domain)
{
        if (!t || !domain)
                return NULL;
        return domain_find(t, domain, strlen(domain));
}

/* addr_find - a client address, then its parent networks ("192.0.2", "192.0", "192") */
static const char *addr_find(const SmtpdAccessTable *t, const char *addr)
{
        size_t n = strlen(addr);
        char delim = strchr(addr, ':') ? ':' : '.';

        while (n > 0) {
                const char *v = table_find(t, addr, n), *p;

                if (v)
                        return v;
                p = NULL;
                for (size_t i = n; i > 0; i--)
                        if (addr[i - 1] == delim) {
                                p = addr + i - 1;
                                break;
                        }
                if (!p)
                        break;
                n = (size_t) (p - addr);
        }
        return NULL;
}

/* mail_find - a recipient: the whole address, its domain (and parents), "localpart@" */
static const char *mail_find(const SmtpdAccessTable *t, const char *addr)
{
        char buf[SMTPD_ADDR_MAX + 2];
        size_t n = strlen(addr), llen, dlen;
        const char *v;
        char *at;

        v = table_find(t, addr, n);
        if (v || n > SMTPD_ADDR_MAX)
                return v;
        memcpy(buf, addr, n + 1);
        at = find_unquoted(buf, '@', true);
        if (!at)
                return NULL;
        dlen = strlen(at + 1);
        if (dlen >= 2 && at[dlen] == '.' && at[dlen - 1] != '.')
                dlen--;
        v = domain_find(t, at + 1, dlen);
        if (v)
                return v;
        llen = (size_t) (at - buf) + 1;
        return llen > 1 ? table_find(t, buf, llen) : NULL;
}

/* ---- restriction lists ---------------------------------------------------------------------- */

typedef enum RestrictionKind {
        R_PERMIT,
        R_REJECT,
        R_DEFER,
        R_DUNNO,
        R_PERMIT_MYNETWORKS,
        R_REJECT_UNAUTH_DEST,
        R_DEFER_UNAUTH_DEST,
        R_PERMIT_AUTH_DEST,
        R_REJECT_UNKNOWN_CLIENT,
        R_CHECK_ETRN,
        R_CHECK_RECIPIENT,
        R_CHECK_CLIENT,
        R_WARN_IF_REJECT,
} RestrictionKind;

static const struct {
        const char *name;
        RestrictionKind kind;
        bool table; /* the next entry names a table */
} restrictions[] = {
        {"permit", R_PERMIT, false},
        {"reject", R_REJECT, false},
        {"defer", R_DEFER, false},
        {"dunno", R_DUNNO, false},
        {"permit_mynetworks", R_PERMIT_MYNETWORKS, false},
        {"reject_unauth_destination", R_REJECT_UNAUTH_DEST, false},
        {"defer_unauth_destination", R_DEFER_UNAUTH_DEST, false},
        {"permit_auth_destination", R_PERMIT_AUTH_DEST, false},
        {"reject_unknown_client_hostname", R_REJECT_UNKNOWN_CLIENT, false},
        {"check_etrn_access", R_CHECK_ETRN, true},
        {"check_recipient_access", R_CHECK_RECIPIENT, true},
        {"check_client_access", R_CHECK_CLIENT, true},
        {"warn_if_reject", R_WARN_IF_REJECT, false},
        /* in Postfix's default smtpd_relay_restrictions; tern has no SASL: it never permits */
        {"permit_sasl_authenticated", R_DUNNO, false},
};

static int restriction_find(const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(restrictions); i++)
                if (strcasecmp(restrictions[i].name, name) == 0)
                        return (int) i;
        return -1;
}

int smtpd_restrictions_valid(char *const *list, const char **ret_bad)
{
        for (char *const *p = list; p && *p; p++) {
                int i = restriction_find(*p);

                if (i < 0 || (restrictions[i].table && (!p[1] || !strchr(p[1], ':')))) {
                        if (ret_bad)
                                *ret_bad = *p;
                        return -EINVAL;
                }
                if (restrictions[i].table)
                        p++;
        }
        return 0;
}

static const char *stage_class(SmtpdStage s)
{
        switch (s) {
        case SMTPD_STAGE_CLIENT:
                return "Client host";
        case SMTPD_STAGE_HELO:
                return "Helo command";
        case SMTPD_STAGE_SENDER:
                return "Sender address";
        case SMTPD_STAGE_RECIPIENT:
                return "Recipient address";
        case SMTPD_STAGE_ETRN:
                return "Etrn command";
        }
        return "Client host";
}

/* dsn_valid - the length of an RFC 3463 code "D.DDD.DDD" at the start of TEXT, followed by a
 * blank or the end; 0 if there is none (Postfix's dsn_valid) */
static size_t dsn_valid(const char *text)
{
        const char *p = text;
        size_t n;

        if (*p != '2' && *p != '4' && *p != '5')
                return 0;
        p++;
        for (int part = 0; part < 2; part++) {
                if (*p++ != '.')
                        return 0;
                n = strspn(p, "0123456789");
                if (n == 0 || n > 3)
                        return 0;
                p += n;
        }
        if (*p && !is_blank(*p))
                return 0;
        return (size_t) (p - text);
}

/* dsn_fix - an address status X.1.Y made right for what is rejected (smtpd_dsn_fix) */
static const char *dsn_fix(const char *status, const char *reply_class)
{
        static const struct {
                const char *micro, *sender, *rcpt;
        } map[] = {
                {"1", "4.1.0", "4.1.1"}, {"2", "4.1.8", "4.1.2"}, {"3", "4.1.7", "4.1.3"},
                {"4", "4.1.0", "4.1.4"}, {"5", "4.1.0", "4.1.5"}, {"6", "4.1.0", "4.1.6"},
                {"7", "4.1.7", "4.1.3"}, {"8", "4.1.8", "4.1.2"},
        };
        bool sender = streq(reply_class, "Sender address"), rcpt = streq(reply_class, "Recipient address");

        if (strncmp(status + 1, ".1.", 3) != 0)
                return status;
        if (!sender && !rcpt)
                return "4.0.0";
        for (size_t i = 0; i < ELEMENTSOF(map); i++)
                if (streq(status + 4, map[i].micro))
                        return sender ? map[i].sender : map[i].rcpt;
        return "4.1.0";
}

typedef struct ReplyBuf {
        char *buf;
        size_t size;
        SmtpdReply *reply;
} ReplyBuf;

/* reply_set - CODE, DSN (its class made CODE's) and the formatted text into R's buffer:
 * "dsn\0text\0", at most SMTPD_REPLY_MAX bytes as "code dsn text", control characters blanked */
_printf_(4, 5) static SmtpdVerdict
        reply_set(const ReplyBuf *r, int code, const char *dsn, const char *fmt, ...)
{
        size_t dlen = strlen(dsn), room;
        char *text;
        va_list ap;

        if (dlen > SMTPD_DSN_MAX)
                dlen = SMTPD_DSN_MAX;
        if (!r->buf || r->size < dlen + 2) {
                *r->reply = (SmtpdReply){.code = code, .dsn = "", .text = ""};
        } else {
                memcpy(r->buf, dsn, dlen);
                r->buf[0] = (char) ('0' + code / 100);
                r->buf[dlen] = '\0';
                text = r->buf + dlen + 1;
                room = MIN(r->size - dlen - 1, SMTPD_REPLY_MAX - 4 - dlen - 1 + 1);
                va_start(ap, fmt);
                (void) vsnprintf(text, room, fmt, ap);
                va_end(ap);
                for (char *p = text; *p; p++)
                        if ((unsigned char) *p < 0x20 || *p == 0x7f)
                                *p = ' ';
                *r->reply = (SmtpdReply){.code = code, .dsn = r->buf, .text = text};
        }
        return code >= 500 ? SMTPD_REJECT : SMTPD_DEFER;
}

/* an internal verdict for configuration errors, which warn_if_reject leaves as they are */
#define SMTPD_SERVER_ERROR ((SmtpdVerdict) 100)

static SmtpdVerdict server_error(const ReplyBuf *r)
{
        reply_set(r, 451, "4.3.5", "Server configuration error");
        return SMTPD_SERVER_ERROR;
}

/* table_result - an access table's action, as check_table_result() */
static SmtpdVerdict table_result(const ReplyBuf *r, const char *value, const char *reply_name,
                                 const char *reply_class)
{
        char dsn[SMTPD_DSN_MAX + 1];
        const char *reason, *text;
        size_t dlen;
        Action a;
        int code;

        if (action_parse(value, &a, &reason) < 0)
                return server_error(r);
        switch (a.kind) {
        case ACTION_OK:
                return SMTPD_PERMIT;
        case ACTION_DUNNO:
                return SMTPD_DUNNO;
        case ACTION_REJECT:
                code = SMTPD_MAP_REJECT_CODE;
                break;
        case ACTION_DEFER:
                code = SMTPD_MAP_DEFER_CODE;
                break;
        case ACTION_CODE:
                code = a.code;
                break;
        default:
                return server_error(r);
        }
        /* dsn_split(): an enhanced code at the start of the text, or X.7.1 */
        text = a.text;
        dlen = dsn_valid(text);
        if (dlen > 0 && dlen <= SMTPD_DSN_MAX) {
                memcpy(dsn, text, dlen);
                dsn[dlen] = '\0';
                text += dlen;
                while (is_blank(*text))
                        text++;
        } else
                snprintf(dsn, sizeof(dsn), "%c.7.1", code >= 500 ? '5' : '4');
        return reply_set(r, code, dsn_fix(dsn, reply_class), "<%s>: %s rejected: %s", reply_name,
                         reply_class, *text ? text : "Access denied");
}

static const SmtpdAccessTable *table_named(const SmtpdCheck *check, const char *name)
{
        for (size_t i = 0; check->table_names && check->table_names[i]; i++)
                if (streq(check->table_names[i], name))
                        return check->tables ? check->tables[i] : NULL;
        return NULL;
}

/* routed - a recipient that goes elsewhere with routing left in its local part, whose OK from
 * check_recipient_access Postfix ignores (SUSPICIOUS() in check_mail_access) */
static bool routed(const char *addr)
{
        char buf[SMTPD_ADDR_MAX + 1];
        size_t n = strlen(addr);
        char *at;

        if (n > SMTPD_ADDR_MAX)
                return true;
        memcpy(buf, addr, n + 1);
        at = find_unquoted(buf, '@', true);
        if (at)
                *at = '\0';
        return strpbrk(buf, "@!%") != NULL;
}

static SmtpdVerdict eval_one(RestrictionKind kind, const char *table_name, const SmtpdCheck *c,
                             const char *reply_name, const char *reply_class, const char *namaddr,
                             const ReplyBuf *r)
{
        const char *object = strempty(c->object), *client_addr = c->client_addr ? c->client_addr : "unknown";
        const SmtpdAccessTable *t = NULL;
        const char *v;
        SmtpdVerdict verdict;

        if (table_name) {
                t = table_named(c, table_name);
                if (!t)
                        return server_error(r);
        }
        switch (kind) {
        case R_PERMIT:
                return SMTPD_PERMIT;
        case R_REJECT:
                return reply_set(r, SMTPD_REJECT_CODE, "5.7.1", "<%s>: %s rejected: Access denied",
                                 reply_name, reply_class);
        case R_DEFER:
                return reply_set(r, SMTPD_DEFER_CODE, "4.3.2", "<%s>: %s rejected: Try again later",
                                 reply_name, reply_class);
        case R_DUNNO:
        case R_WARN_IF_REJECT:
                return SMTPD_DUNNO;
        case R_PERMIT_MYNETWORKS:
                return c->client_in_mynetworks ? SMTPD_PERMIT : SMTPD_DUNNO;
        case R_REJECT_UNAUTH_DEST:
        case R_DEFER_UNAUTH_DEST:
                if (c->stage != SMTPD_STAGE_RECIPIENT || c->dest != SMTPD_DEST_REMOTE)
                        return SMTPD_DUNNO;
                if (kind == R_REJECT_UNAUTH_DEST)
                        return reply_set(r, SMTPD_RELAY_CODE, "5.7.1", "<%s>: Relay access denied", object);
                return reply_set(r, SMTPD_RELAY_CODE - 100, "4.7.1", "<%s>: Relay access denied", object);
        case R_PERMIT_AUTH_DEST:
                return c->stage == SMTPD_STAGE_RECIPIENT && c->dest != SMTPD_DEST_REMOTE ? SMTPD_PERMIT
                                                                                         : SMTPD_DUNNO;
        case R_REJECT_UNKNOWN_CLIENT:
                if (c->client_name && *c->client_name && strcasecmp(c->client_name, "unknown") != 0)
                        return SMTPD_DUNNO;
                return reply_set(r, SMTPD_UNK_CLIENT_CODE, "4.7.25",
                                 "Client host rejected: cannot find your hostname, [%s]", client_addr);
        case R_CHECK_ETRN:
                if (c->stage != SMTPD_STAGE_ETRN || !c->object)
                        return SMTPD_DUNNO;
                v = smtpd_access_table_lookup(t, c->object);
                return v ? table_result(r, v, c->object, "Etrn command") : SMTPD_DUNNO;
        case R_CHECK_RECIPIENT:
                if (c->stage != SMTPD_STAGE_RECIPIENT || !c->object)
                        return SMTPD_DUNNO;
                v = mail_find(t, c->object);
                if (!v)
                        return SMTPD_DUNNO;
                verdict = table_result(r, v, c->object, "Recipient address");
                if (verdict == SMTPD_PERMIT && c->dest != SMTPD_DEST_LOCAL && routed(c->object))
                        return SMTPD_DUNNO;
                return verdict;
        case R_CHECK_CLIENT:
                v = c->client_name ? smtpd_access_table_lookup(t, c->client_name) : NULL;
                if (!v && c->client_addr)
                        v = addr_find(t, c->client_addr);
                return v ? table_result(r, v, namaddr, "Client host") : SMTPD_DUNNO;
        }
        return server_error(r);
}

SmtpdVerdict smtpd_restrictions_eval(char *const *list, const SmtpdCheck *check, char *buf, size_t size,
                                     SmtpdReply *ret_reply)
{
        SmtpdReply dummy, warned = {.code = 0, .dsn = "", .text = ""};
        ReplyBuf r = {.buf = buf, .size = size, .reply = ret_reply ? ret_reply : &dummy};
        char namaddr[SMTPD_NAMADDR_MAX];
        const char *reply_name, *reply_class;
        bool warn = false;

        if (buf && size > 0)
                buf[0] = '\0';
        *r.reply = warned;
        if (!check)
                return SMTPD_DUNNO;
        snprintf(namaddr, sizeof(namaddr), "%s[%s]", check->client_name ? check->client_name : "unknown",
                 check->client_addr ? check->client_addr : "unknown");
        reply_class = stage_class(check->stage);
        reply_name = check->stage == SMTPD_STAGE_CLIENT ? namaddr : strempty(check->object);

        for (char *const *p = list; p && *p; p++) {
                int i = restriction_find(*p);
                const char *table_name = NULL;
                SmtpdVerdict v;

                if (i < 0) {
                        (void) server_error(&r);
                        return SMTPD_DEFER;
                }
                if (restrictions[i].kind == R_WARN_IF_REJECT) {
                        warn = true;
                        continue;
                }
                if (restrictions[i].table) {
                        if (!p[1] || !strchr(p[1], ':')) {
                                (void) server_error(&r);
                                return SMTPD_DEFER;
                        }
                        table_name = *++p;
                }
                v = eval_one(restrictions[i].kind, table_name, check, reply_name, reply_class, namaddr, &r);
                if (v == SMTPD_SERVER_ERROR)
                        return SMTPD_DEFER;
                if ((v == SMTPD_REJECT || v == SMTPD_DEFER) && warn) {
                        /* warn_if_reject: the reply is only a warning, and the list goes on */
                        warned = *r.reply;
                        v = SMTPD_DUNNO;
                }
                warn = false;
                if (v != SMTPD_DUNNO) {
                        if (v == SMTPD_PERMIT)
                                *r.reply = warned;
                        return v;
                }
                *r.reply = warned;
        }
        return SMTPD_DUNNO;
}
