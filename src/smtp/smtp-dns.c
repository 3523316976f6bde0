/* SPDX-License-Identifier: MIT */
/*
 * smtp-dns.c - where the SMTP/LMTP client connects: nexthops, DNS answers, MX and address order
 * (see smtp-dns.h)
 *
 * Pure code over strings and bytes: no I/O, no clock, no logging; randomness comes from the
 * caller's RAND, so that tests can seed it. smtp-resolve.c does the queries and the connects.
 *
 * Nexthops: Postfix's smtp(8)/lmtp(8) destination syntax, one destination or a list separated
 * by commas and/or whitespace (Postfix 3.5; ", \t\r\n", Postfix's CHARS_COMMA_SP). A comma
 * with nothing but whitespace before or after it is an empty destination, and so is an empty or
 * all-blank text. Forms, after an optional "inet:" (any case):
 *   name[:port]             SMTP: MX lookup; LMTP: the name's addresses, no MX
 *   [name][:port]           no MX lookup
 *   [192.0.2.1][:port]      an IPv4 literal; [2001:db8::1], [ipv6:2001:db8::1] (any case) IPv6
 *   192.0.2.1[:port]        LMTP only (a bare host is [host] there): an IPv4 literal
 *   unix:/path              LMTP only, absolute, shorter than sun_path
 * A port is 1..65535 in decimal (leading zeros allowed, no sign) or "smtp" (25) / "lmtp" (24).
 * Names must pass valid_hostname() and are lower-cased; addresses are kept in inet_ntop() form
 * ("[2001:DB8:0::1]" gives "2001:db8::1"). There is no trailing dot and no IPv6 zone.
 *
 * DNS answers: a whole response (as res_query() returns it), parsed with dn_expand(). In order:
 * a 12-byte header with QR set and opcode QUERY (else -EBADMSG), TC clear (else -EMSGSIZE),
 * RCODE NOERROR (NXDOMAIN -ENXIO, anything else -EAGAIN), exactly one question, which is skipped
 * (its name must expand); then every answer record is checked - its owner expands, its fixed part
 * and RDATA lie inside the message - and the RDATA of class-IN A (4 bytes), AAAA (16), MX (2 and
 * a name ending exactly at RDLENGTH) and CNAME (a name ending exactly at RDLENGTH) records, for
 * any owner. Only then is the CNAME chain from QNAME followed (at most SMTP_DNS_CNAME_MAX links,
 * a name seen twice or one link more is -ELOOP), and the records of the asked type, class IN,
 * owned by the chain's last name are returned, in the answer's order. Other records, and the
 * authority and additional sections, are ignored (never read: bytes after the answer section
 * may be missing). Names compare case-insensitively in dn_expand()'s text form, without a
 * trailing dot.
 *
 * Invariants: ret_ outputs are written only on success; every array and name handed out is
 * malloc'ed, and smtp_nexthop_free_array() / smtp_mx_free_array() / free() release them; MX
 * names are lower case ("" the root). smtp_mx_sort() frees what it drops and leaves NULL names
 * behind its new count. A NULL RAND means "no shuffle" (the order stays as it is); a PREFER
 * other than "ipv4" / "ipv6" (any case) counts as "any".
 *
 * Limits: names hold SMTP_DNS_NAME_MAX bytes (NS_MAXDNAME; dn_expand() itself refuses a name of
 * more than 255 bytes on the wire). The answer section is bounded by the message: RDLENGTH and
 * the record count are checked against its length before anything is allocated. Sorting and
 * duplicate removal are quadratic in the number of MX records, and the stable family partition
 * in the number of addresses; both are bounded by what fits in one DNS message (a few thousand
 * records at most, usually a handful).
 *
 * Bugs: names are compared in dn_expand()'s presentation form, so a label holding a '.' or a
 * byte outside printable ASCII compares as its escape ("a\.b", "\200"); such an MX exchange is
 * not a valid host name and smtp_mx_sort() drops it. A name with more than one CNAME in the
 * answer (not legal DNS) follows the first. Records of the asked type owned by a name earlier in
 * the chain than its end are ignored, as a resolver would. The question's name and type are not
 * compared with QNAME and TYPE (res_query() matched the reply to its query). The shuffles use
 * RAND modulo the group size, biased by at most n / 2^32.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "domain-list.h"
#include "macro.h"
#include "smtp-dns.h"

/* ---- nexthops ------------------------------------------------------------------------------ */

/* Postfix's CHARS_COMMA_SP: what separates the destinations of one list */
#define NEXTHOP_SEPARATORS ", \t\r\n"
#define NEXTHOP_BLANKS " \t\r\n"

#define SMTP_PORT_DEFAULT 25
#define LMTP_PORT_DEFAULT 24

/* A unix: path must fit struct sockaddr_un, NUL included */
#define NEXTHOP_UNIX_PATH_MAX (sizeof(((struct sockaddr_un *) NULL)->sun_path))

static int nexthop_fail(const char **ret_reason, const char *reason)
{
        if (ret_reason)
                *ret_reason = reason;
        return -EINVAL;
}

/* nexthop_port - "25", "smtp", "lmtp" */
static int nexthop_port(const char *s, uint16_t *ret)
{
        unsigned v = 0;

        if (streq(s, "smtp")) {
                *ret = SMTP_PORT_DEFAULT;
                return 0;
        }
        if (streq(s, "lmtp")) {
                *ret = LMTP_PORT_DEFAULT;
                return 0;
        }
        if (!*s)
                return -EINVAL;
        for (; *s; s++) {
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned) (*s - '0');
                if (v > UINT16_MAX)
                        return -EINVAL;
        }
        if (v == 0)
                return -EINVAL;
        *ret = (uint16_t) v;
        return 0;
}

/* nexthop_address - HOST as an IPv4 or IPv6 address, in inet_ntop() form, into H */
static int nexthop_address(const char *host, int family, SmtpNexthop *h)
{
        unsigned char addr[sizeof(struct in6_addr)];
        char text[INET6_ADDRSTRLEN];

        if (inet_pton(family, host, addr) != 1)
                return -EINVAL;
        if (!inet_ntop(family, addr, text, sizeof(text)))
                return -EINVAL;
        h->host = strdup(text);
        if (!h->host)
                return -ENOMEM;
        h->literal = true;
        h->family = family;
        return 0;
}

/* nexthop_name - a host name, lower-cased, into H */
static int nexthop_name(const char *host, SmtpNexthop *h)
{
        if (!valid_hostname(host))
                return -EINVAL;
        h->host = strdup(host);
        if (!h->host)
                return -ENOMEM;
        lowercase_ascii(h->host);
        return 0;
}

/* nexthop_parse_one - the LEN bytes at S (no separators in them) as one destination */
static int nexthop_parse_one(const char *s, size_t len, bool lmtp, SmtpNexthop *ret, const char **ret_reason)
{
        _cleanup_(freep) char *buf = strndup(s, len);
        SmtpNexthop h = {.family = AF_UNSPEC, .port = lmtp ? LMTP_PORT_DEFAULT : SMTP_PORT_DEFAULT};
        char *host, *port = NULL;
        int r;

        if (!buf)
                return -ENOMEM;

        if (strncasecmp(buf, "unix:", 5) == 0) {
                const char *path = buf + 5;

                if (!lmtp)
                        return nexthop_fail(ret_reason, "unix: destination is for LMTP only");
                if (path[0] != '/')
                        return nexthop_fail(ret_reason, "unix: path not absolute");
                if (strlen(path) >= NEXTHOP_UNIX_PATH_MAX)
                        return nexthop_fail(ret_reason, "unix: path too long");
                h.unix_path = strdup(path);
                if (!h.unix_path)
                        return -ENOMEM;
                h.port = 0;
                *ret = h;
                return 0;
        }

        host = buf;
        if (strncasecmp(host, "inet:", 5) == 0)
                host += 5;

        if (host[0] == '[') {
                char *end = strchr(host, ']');
                const char *v6 = NULL;

                if (!end)
                        return nexthop_fail(ret_reason, "bad address literal");
                if (end[1] == ':')
                        port = end + 2;
                else if (end[1] != '\0')
                        return nexthop_fail(ret_reason, "bad address literal");
                *end = '\0';
                host++;
                if (!*host)
                        return nexthop_fail(ret_reason, "empty host");
                /* "[ipv6:...]"; without the prefix a ':' still means IPv6 (no name has one) */
                if (strncasecmp(host, "ipv6:", 5) == 0)
                        v6 = host + 5;
                else if (strchr(host, ':'))
                        v6 = host;
                if (v6) {
                        r = nexthop_address(v6, AF_INET6, &h);
                        if (r == -EINVAL)
                                return nexthop_fail(ret_reason, "bad IPv6 address");
                } else {
                        r = nexthop_address(host, AF_INET, &h);
                        if (r == -EINVAL)
                                r = nexthop_name(host, &h);
                }
                if (r == -EINVAL)
                        return nexthop_fail(ret_reason, "bad host name");
                if (r < 0)
                        return r;
        } else {
                char *colon = strchr(host, ':');

                if (colon) {
                        *colon = '\0';
                        port = colon + 1;
                }
                if (!*host)
                        return nexthop_fail(ret_reason, "empty host");
                r = -EINVAL;
                if (lmtp)
                        r = nexthop_address(host, AF_INET, &h);
                if (r == -EINVAL)
                        r = nexthop_name(host, &h);
                if (r == -EINVAL)
                        return nexthop_fail(ret_reason, "bad host name");
                if (r < 0)
                        return r;
                h.mx = !lmtp;
        }

        if (port && nexthop_port(port, &h.port) < 0) {
                free(h.host);
                return nexthop_fail(ret_reason, "bad port");
        }
        *ret = h;
        return 0;
}

void smtp_nexthop_free_array(SmtpNexthop *a, size_t n)
{
        if (!a)
                return;
        for (size_t i = 0; i < n; i++) {
                free(a[i].host);
                free(a[i].unix_path);
        }
        free(a);
}

int smtp_nexthop_parse_list(const char *text, bool lmtp, SmtpNexthop **ret, size_t *ret_n,
                            const char **ret_reason)
{
        SmtpNexthop *a = NULL;
        size_t n = 0, allocated = 0;
        const char *p = text;
        int r;

        p += strspn(p, NEXTHOP_BLANKS);
        for (;;) {
                size_t len = strcspn(p, NEXTHOP_SEPARATORS);

                if (len == 0) {
                        r = nexthop_fail(ret_reason, "empty destination");
                        goto fail;
                }
                if (n == allocated) {
                        size_t more = allocated ? allocated * 2 : 4;
                        SmtpNexthop *b = reallocarray(a, more, sizeof(*a));

                        if (!b) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        a = b;
                        allocated = more;
                }
                r = nexthop_parse_one(p, len, lmtp, &a[n], ret_reason);
                if (r < 0)
                        goto fail;
                n++;

                p += len;
                p += strspn(p, NEXTHOP_BLANKS);
                if (*p == ',') {
                        /* another destination must follow */
                        p++;
                        p += strspn(p, NEXTHOP_BLANKS);
                        continue;
                }
                if (!*p)
                        break;
        }
        *ret = a;
        *ret_n = n;
        return 0;

fail:
        smtp_nexthop_free_array(a, n);
        return r;
}

/* ---- DNS answers --------------------------------------------------------------------------- */

#define DNS_HEADER_SIZE 12
/* type, class, TTL, RDLENGTH after a record's owner */
#define DNS_RR_FIXED_SIZE 10
/* the smallest record: the root as owner, then the fixed part */
#define DNS_RR_MIN_SIZE (1 + DNS_RR_FIXED_SIZE)

#define DNS_FLAG_QR 0x8000U
#define DNS_FLAG_TC 0x0200U
#define DNS_OPCODE_SHIFT 11
#define DNS_OPCODE_MASK 0xfU
#define DNS_RCODE_MASK 0xfU
#define DNS_OPCODE_QUERY 0
#define DNS_RCODE_NOERROR 0
#define DNS_RCODE_NXDOMAIN 3
#define DNS_CLASS_IN 1

/* one answer record, checked: offsets into the message */
typedef struct DnsRr {
        size_t owner;
        uint16_t type, class;
        size_t rdata;
        uint16_t rdlength;
} DnsRr;

static uint16_t get16(const uint8_t *p)
{
        return (uint16_t) (p[0] << 8 | p[1]);
}

/* dns_name - the name at OFF in MSG, expanded into NAME; *ret_size the bytes it takes at OFF */
static int dns_name(const uint8_t *msg, size_t len, size_t off, char name[static SMTP_DNS_NAME_MAX],
                    size_t *ret_size)
{
        int n;

        if (off >= len)
                return -EBADMSG;
        n = dn_expand(msg, msg + len, msg + off, name, SMTP_DNS_NAME_MAX);
        if (n <= 0)
                return -EBADMSG;
        if (ret_size)
                *ret_size = (size_t) n;
        return 0;
}

/* dns_rdata_name - a name filling the RDATA of RR from SKIP on exactly */
static int dns_rdata_name(const uint8_t *msg, size_t len, const DnsRr *rr, size_t skip,
                          char name[static SMTP_DNS_NAME_MAX])
{
        size_t size;
        int r;

        if (rr->rdlength <= skip)
                return -EBADMSG;
        r = dns_name(msg, len, rr->rdata + skip, name, &size);
        if (r < 0)
                return r;
        return size == rr->rdlength - skip ? 0 : -EBADMSG;
}

/* dns_rdata_check - RDATA that does not fit the type (of those we read) is a malformed message */
static int dns_rdata_check(const uint8_t *msg, size_t len, const DnsRr *rr)
{
        char name[SMTP_DNS_NAME_MAX];

        if (rr->class != DNS_CLASS_IN)
                return 0;
        switch (rr->type) {
        case SMTP_DNS_T_A:
                return rr->rdlength == sizeof(struct in_addr) ? 0 : -EBADMSG;
        case SMTP_DNS_T_AAAA:
                return rr->rdlength == sizeof(struct in6_addr) ? 0 : -EBADMSG;
        case SMTP_DNS_T_MX:
                return dns_rdata_name(msg, len, rr, 2, name);
        case SMTP_DNS_T_CNAME:
                return dns_rdata_name(msg, len, rr, 0, name);
        default:
                return 0;
        }
}

/* dns_answer_records - the header checked, the question skipped, every answer record checked */
static int dns_answer_records(const uint8_t *msg, size_t len, DnsRr **ret, size_t *ret_n)
{
        _cleanup_(freep) DnsRr *rr = NULL;
        char name[SMTP_DNS_NAME_MAX];
        uint16_t flags, qdcount, ancount;
        size_t pos = DNS_HEADER_SIZE, size;
        int r;

        if (!msg || len < DNS_HEADER_SIZE)
                return -EBADMSG;
        flags = get16(msg + 2);
        if (!(flags & DNS_FLAG_QR) || ((flags >> DNS_OPCODE_SHIFT) & DNS_OPCODE_MASK) != DNS_OPCODE_QUERY)
                return -EBADMSG;
        if (flags & DNS_FLAG_TC)
                return -EMSGSIZE;
        if ((flags & DNS_RCODE_MASK) == DNS_RCODE_NXDOMAIN)
                return -ENXIO;
        if ((flags & DNS_RCODE_MASK) != DNS_RCODE_NOERROR)
                return -EAGAIN;
        qdcount = get16(msg + 4);
        ancount = get16(msg + 6);
        if (qdcount != 1)
                return -EBADMSG;

        /* the question: a name, its type and class */
        r = dns_name(msg, len, pos, name, &size);
        if (r < 0)
                return r;
        pos += size;
        if (len - pos < 4)
                return -EBADMSG;
        pos += 4;

        /* more records than could fit is a record past the end, before anything is allocated */
        if (ancount > (len - pos) / DNS_RR_MIN_SIZE)
                return -EBADMSG;
        if (ancount > 0) {
                rr = calloc(ancount, sizeof(*rr));
                if (!rr)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < ancount; i++) {
                DnsRr *e = &rr[i];

                e->owner = pos;
                r = dns_name(msg, len, pos, name, &size);
                if (r < 0)
                        return r;
                pos += size;
                if (len - pos < DNS_RR_FIXED_SIZE)
                        return -EBADMSG;
                e->type = get16(msg + pos);
                e->class = get16(msg + pos + 2);
                e->rdlength = get16(msg + pos + 8);
                pos += DNS_RR_FIXED_SIZE;
                if (len - pos < e->rdlength)
                        return -EBADMSG;
                e->rdata = pos;
                pos += e->rdlength;
                r = dns_rdata_check(msg, len, e);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(rr);
        *ret_n = ancount;
        return 0;
}

/* dns_owner_is - is the owner of RR NAME? */
static bool dns_owner_is(const uint8_t *msg, size_t len, const DnsRr *rr, const char *name)
{
        char owner[SMTP_DNS_NAME_MAX];

        return dns_name(msg, len, rr->owner, owner, NULL) >= 0 && strcasecmp(owner, name) == 0;
}

/* dns_qname - QNAME as the parser compares it: without one trailing dot */
static int dns_qname(const char *qname, char ret[static SMTP_DNS_NAME_MAX])
{
        size_t n = 0;

        if (!qname)
                return -EINVAL;
        n = strnlen(qname, SMTP_DNS_NAME_MAX);
        if (n >= SMTP_DNS_NAME_MAX)
                return -EINVAL;
        memcpy(ret, qname, n + 1);
        if (n > 0 && ret[n - 1] == '.')
                ret[n - 1] = '\0';
        return 0;
}

/* dns_follow_cnames - the end of the CNAME chain that starts at QNAME (QNAME when there is none) */
static int dns_follow_cnames(const uint8_t *msg, size_t len, const DnsRr *rr, size_t n, const char *qname,
                             char ret[static SMTP_DNS_NAME_MAX])
{
        /* every name of the chain, to tell a loop */
        char chain[SMTP_DNS_CNAME_MAX + 1][SMTP_DNS_NAME_MAX];
        size_t links = 0;

        strcpy(chain[0], qname);
        for (;;) {
                const DnsRr *cname = NULL;
                int r;

                for (size_t i = 0; i < n && !cname; i++)
                        if (rr[i].type == SMTP_DNS_T_CNAME && rr[i].class == DNS_CLASS_IN &&
                            dns_owner_is(msg, len, &rr[i], chain[links]))
                                cname = &rr[i];
                if (!cname)
                        break;
                if (links == SMTP_DNS_CNAME_MAX)
                        return -ELOOP;
                r = dns_rdata_name(msg, len, cname, 0, chain[links + 1]);
                if (r < 0)
                        return r;
                for (size_t k = 0; k <= links; k++)
                        if (strcasecmp(chain[k], chain[links + 1]) == 0)
                                return -ELOOP;
                links++;
        }
        strcpy(ret, chain[links]);
        return 0;
}

/* dns_answers - the checked records of MSG, and the name whose TYPE records answer QNAME */
static int dns_answers(const uint8_t *msg, size_t len, const char *qname, DnsRr **ret, size_t *ret_n,
                       char ret_owner[static SMTP_DNS_NAME_MAX])
{
        _cleanup_(freep) DnsRr *rr = NULL;
        char name[SMTP_DNS_NAME_MAX];
        size_t n = 0;
        int r;

        r = dns_qname(qname, name);
        if (r < 0)
                return r;
        r = dns_answer_records(msg, len, &rr, &n);
        if (r < 0)
                return r;
        r = dns_follow_cnames(msg, len, rr, n, name, ret_owner);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(rr);
        *ret_n = n;
        return 0;
}

static bool dns_wanted(const uint8_t *msg, size_t len, const DnsRr *rr, int type, const char *owner)
{
        return rr->type == type && rr->class == DNS_CLASS_IN && dns_owner_is(msg, len, rr, owner);
}

void smtp_mx_free_array(SmtpMx *a, size_t n)
{
        if (!a)
                return;
        for (size_t i = 0; i < n; i++)
                free(a[i].name);
        free(a);
}

int smtp_dns_parse_mx(const uint8_t *msg, size_t len, const char *qname, SmtpMx **ret, size_t *ret_n)
{
        _cleanup_(freep) DnsRr *rr = NULL;
        char owner[SMTP_DNS_NAME_MAX], name[SMTP_DNS_NAME_MAX];
        SmtpMx *mx = NULL;
        size_t n = 0, count = 0, k = 0;
        int r;

        r = dns_answers(msg, len, qname, &rr, &n, owner);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (dns_wanted(msg, len, &rr[i], SMTP_DNS_T_MX, owner))
                        count++;
        if (count > 0) {
                mx = calloc(count, sizeof(*mx));
                if (!mx)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < n && k < count; i++) {
                if (!dns_wanted(msg, len, &rr[i], SMTP_DNS_T_MX, owner))
                        continue;
                /* checked by dns_rdata_check() already */
                r = dns_rdata_name(msg, len, &rr[i], 2, name);
                if (r < 0)
                        goto fail;
                mx[k].pref = get16(msg + rr[i].rdata);
                mx[k].name = strdup(name);
                if (!mx[k].name) {
                        r = -ENOMEM;
                        goto fail;
                }
                lowercase_ascii(mx[k].name);
                k++;
        }
        *ret = mx;
        *ret_n = k;
        return 0;

fail:
        smtp_mx_free_array(mx, k);
        return r;
}

int smtp_dns_parse_addr(const uint8_t *msg, size_t len, const char *qname, int type, SmtpDnsAddr **ret,
                        size_t *ret_n)
{
        _cleanup_(freep) DnsRr *rr = NULL;
        char owner[SMTP_DNS_NAME_MAX];
        SmtpDnsAddr *a = NULL;
        size_t n = 0, count = 0, k = 0;
        int r;

        if (type != SMTP_DNS_T_A && type != SMTP_DNS_T_AAAA)
                return -EINVAL;
        r = dns_answers(msg, len, qname, &rr, &n, owner);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (dns_wanted(msg, len, &rr[i], type, owner))
                        count++;
        if (count > 0) {
                a = calloc(count, sizeof(*a));
                if (!a)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < n && k < count; i++) {
                if (!dns_wanted(msg, len, &rr[i], type, owner))
                        continue;
                /* the RDATA length was checked by dns_rdata_check() */
                if (type == SMTP_DNS_T_A) {
                        a[k].family = AF_INET;
                        memcpy(&a[k].in, msg + rr[i].rdata, sizeof(a[k].in));
                } else {
                        a[k].family = AF_INET6;
                        memcpy(&a[k].in6, msg + rr[i].rdata, sizeof(a[k].in6));
                }
                k++;
        }
        *ret = a;
        *ret_n = k;
        return 0;
}

/* ---- MX and address order ------------------------------------------------------------------ */

bool smtp_mx_is_null(const SmtpMx *mx, size_t n)
{
        return n == 1 && mx && mx[0].name && mx[0].name[0] == '\0';
}

/* shuffle - Fisher-Yates over N elements of SIZE bytes at BASE */
static void shuffle(void *base, size_t n, size_t size, uint32_t (*rng)(void *userdata), void *userdata)
{
        unsigned char *b = base;

        if (!rng)
                return;
        for (size_t i = n; i > 1; i--) {
                size_t j = (size_t) rng(userdata) % i;

                if (j == i - 1)
                        continue;
                for (size_t k = 0; k < size; k++) {
                        unsigned char t = b[(i - 1) * size + k];

                        b[(i - 1) * size + k] = b[j * size + k];
                        b[j * size + k] = t;
                }
        }
}

size_t smtp_mx_sort(SmtpMx *mx, size_t n, uint32_t (*rng)(void *userdata), void *userdata)
{
        size_t k = 0;

        if (!mx)
                return 0;

        /* stable insertion sort by preference: equal preferences stay in the answer's order */
        for (size_t i = 1; i < n; i++) {
                SmtpMx t = mx[i];
                size_t j = i;

                for (; j > 0 && mx[j - 1].pref > t.pref; j--)
                        mx[j] = mx[j - 1];
                mx[j] = t;
        }

        /* drop bad names and duplicates; the first of a name is its best preference */
        for (size_t i = 0; i < n; i++) {
                bool keep = mx[i].name && (mx[i].name[0] == '\0' || valid_hostname(mx[i].name));

                for (size_t j = 0; keep && j < k; j++)
                        if (strcasecmp(mx[j].name, mx[i].name) == 0)
                                keep = false;
                if (!keep) {
                        mx[i].name = mfree(mx[i].name);
                        continue;
                }
                mx[k++] = mx[i];
        }
        for (size_t i = k; i < n; i++)
                mx[i].name = NULL;

        /* random order within each preference */
        for (size_t i = 0; i < k;) {
                size_t end = i + 1;

                while (end < k && mx[end].pref == mx[i].pref)
                        end++;
                shuffle(mx + i, end - i, sizeof(*mx), rng, userdata);
                i = end;
        }
        return k;
}

void smtp_dns_addr_order(SmtpDnsAddr *a, size_t n, const char *prefer, uint32_t (*rng)(void *userdata),
                         void *userdata)
{
        int first;

        if (!a)
                return;
        if (prefer && strcasecmp(prefer, "ipv4") == 0)
                first = AF_INET;
        else if (prefer && strcasecmp(prefer, "ipv6") == 0)
                first = AF_INET6;
        else {
                shuffle(a, n, sizeof(*a), rng, userdata);
                return;
        }

        /* stable partition: FIRST's addresses to the front, both families in their order */
        for (size_t i = 0, k = 0; i < n; i++) {
                SmtpDnsAddr t;

                if (a[i].family != first)
                        continue;
                if (i != k) {
                        t = a[i];
                        memmove(a + k + 1, a + k, (i - k) * sizeof(*a));
                        a[k] = t;
                }
                k++;
        }
}
