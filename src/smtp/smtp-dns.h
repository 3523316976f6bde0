/* SPDX-License-Identifier: MIT */
/*
 * smtp-dns.h - where the SMTP client connects: nexthops, DNS answers, MX order (pure code)
 *
 * The I/O (res_query, connect) is smtp-resolve.c's; everything here works on bytes and values
 * that tests give directly (canned DNS answers, a seeded random source).
 */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- nexthops ------------------------------------------------------------------------------ */

/*
 * One destination of a delivery request's nexthop. Postfix's forms (smtp(8), "SMTP DESTINATION
 * SYNTAX" and "LMTP DESTINATION SYNTAX"):
 *   domain, domain:port      SMTP: MX lookup, then the host's addresses when there is no MX
 *   [host], [host]:port      no MX lookup: host is a name (its addresses) or an IP address
 *   [ipv6:2001:db8::1]:port  an IPv6 address (the "ipv6:" prefix optional, any case)
 *   inet:...                 the same, the prefix ignored (LMTP's form; accepted for SMTP too)
 *   unix:/path               LMTP only: a UNIX-domain socket, no lookup at all
 * For LMTP there are never MX lookups (a bare host is looked up as [host]). port is a decimal
 * 1..65535 or "smtp" (25) / "lmtp" (24); without one the default is 25 (SMTP) or 24 (LMTP).
 * host is lower-cased and without brackets, and must be a valid host name (domain-list.h:
 * valid_hostname) or an IP address in brackets.
 */
typedef struct SmtpNexthop {
        char *host;                     /* malloc'ed: "example.com", "10.0.0.1", "2001:db8::1" */
        uint16_t port;
        bool mx;                        /* look up MX records (SMTP, no brackets) */
        bool literal;                   /* host is an IP address (in brackets) */
        int family;                     /* literal: AF_INET or AF_INET6, else AF_UNSPEC */
        char *unix_path;                /* unix:/path (LMTP): malloc'ed, host NULL */
} SmtpNexthop;

/*
 * smtp_nexthop_parse_list - a request's nexthop: one destination, or several separated by
 * commas and/or whitespace (Postfix 3.5: tried in order until one delivers). -EINVAL with
 * *ret_reason (static text, e.g. "bad port", "bad host name", "empty destination") when any
 * part is malformed; *ret is a malloc'ed array of *ret_n (>= 1) entries.
 */
int smtp_nexthop_parse_list(const char *text, bool lmtp, SmtpNexthop **ret, size_t *ret_n,
                            const char **ret_reason);
void smtp_nexthop_free_array(SmtpNexthop *a, size_t n);

/* ---- DNS answers --------------------------------------------------------------------------- */

/* RR types the client asks for (arpa/nameser.h values) */
#define SMTP_DNS_T_A 1
#define SMTP_DNS_T_CNAME 5
#define SMTP_DNS_T_MX 15
#define SMTP_DNS_T_AAAA 28

/* Longest name kept, NUL included (NS_MAXDNAME). */
#define SMTP_DNS_NAME_MAX 1025U
/* Most CNAMEs followed inside one answer before it counts as a loop. */
#define SMTP_DNS_CNAME_MAX 10U

typedef struct SmtpMx {
        uint16_t pref;
        char *name;                     /* malloc'ed, lower case, no trailing dot; "" the root (null MX) */
} SmtpMx;

typedef struct SmtpDnsAddr {
        int family;                     /* AF_INET or AF_INET6 */
        union {
                struct in_addr in;
                struct in6_addr in6;
        };
} SmtpDnsAddr;

/*
 * A whole DNS response message (what res_query() returns) to a question for QNAME of TYPE
 * (SMTP_DNS_T_MX, _A or _AAAA), parsed with dn_expand(): the header (QR set, opcode QUERY, TC
 * clear: a truncated answer is -EMSGSIZE; RCODE: NXDOMAIN -ENXIO, SERVFAIL and others -EAGAIN),
 * the question section skipped (it must be one question), then the answer section: records of
 * TYPE class IN whose owner is QNAME, or the target of a CNAME chain that starts at QNAME (at most
 * SMTP_DNS_CNAME_MAX links; a loop is -ELOOP). Other records are ignored. Names are compared
 * case-insensitively without a trailing dot. Anything malformed - a name that does not expand (a
 * compression loop, a pointer out of the message), RDATA whose length does not fit its type, a
 * record past the end - is -EBADMSG.
 * 0 with *ret_n records (0: NODATA) in a malloc'ed *ret (NULL when none).
 */
int smtp_dns_parse_mx(const uint8_t *msg, size_t len, const char *qname, SmtpMx **ret, size_t *ret_n);
int smtp_dns_parse_addr(const uint8_t *msg, size_t len, const char *qname, int type, SmtpDnsAddr **ret,
                        size_t *ret_n);
void smtp_mx_free_array(SmtpMx *a, size_t n);

/*
 * smtp_mx_is_null - RFC 7505: the domain's only MX record has the root as its exchange (any
 * preference) - the domain accepts no mail.
 */
bool smtp_mx_is_null(const SmtpMx *mx, size_t n);

/*
 * smtp_mx_sort - RFC 5321 5.1: order by preference, lowest first, and randomly among records of
 * equal preference (RAND(USERDATA) gives uniformly distributed 32-bit values: tests seed it).
 * Duplicate names keep their first (best) entry only. Records whose name is not a valid host name
 * (or the root) are dropped. Returns the new count.
 */
size_t smtp_mx_sort(SmtpMx *mx, size_t n, uint32_t (*rand)(void *userdata), void *userdata);

/*
 * smtp_dns_addr_order - the address order for one host: with PREFER "any" random between the
 * families (shuffled with RAND); "ipv4" / "ipv6" that family's addresses first, each family in
 * the answers' order. Postfix's smtp_address_preference.
 */
void smtp_dns_addr_order(SmtpDnsAddr *a, size_t n, const char *prefer, uint32_t (*rand)(void *userdata),
                         void *userdata);
