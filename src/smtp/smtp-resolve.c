/* SPDX-License-Identifier: MIT */
/*
 * smtp-resolve.c - the servers of one destination, from DNS (res_query) or from the literal
 *
 * RFC 5321 5.1 as Postfix's smtp_addr.c does it: MX records in preference order, random among
 * equal preferences; each exchange's addresses (A and/or AAAA as inet_protocols allows, ordered
 * by smtp_address_preference); no MX records: the domain's own addresses; a null MX (RFC 7505):
 * the domain takes no mail, a bounce. At most smtp_mx_address_limit addresses in all. The answers
 * are parsed by smtp-dns.c (pure, unit-tested on canned answers, fuzzed); this file only asks.
 *
 * Name service errors have Postfix's text and class: a name that does not exist bounces (5.4.4
 * "Host or domain name not found. Name service error for name=N type=T: Host not found"), a
 * failure to get an answer defers (4.4.3 "..., try again").
 *
 * Limits: no smtp_host_lookup=native (/etc/hosts), no check that an MX host is this host itself
 * (Postfix's "mail for X loops back to myself"): qmgr routes local domains elsewhere. res_query()
 * blocks, bounded by resolv.conf's timeout and attempts.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "smtp.h"

/* A DNS message over TCP is at most this long. */
#define SMTP_DNS_ANSWER_MAX 65536U

static uint32_t random_u32(void *userdata)
{
        return arc4random();
}

static const char *type_name(int type)
{
        return type == SMTP_DNS_T_MX ? "MX" : type == SMTP_DNS_T_AAAA ? "AAAA" : "A";
}

/* query - res_query for NAME/TYPE: the answer's length, or -ENXIO (no such name), -ENODATA (no
 * records of TYPE), -EAGAIN (no answer) */
static int query(const char *name, int type, uint8_t *answer, size_t size)
{
        int n;

        h_errno = 0;
        n = res_query(name, ns_c_in, type, answer, (int) size);
        if (n >= 0)
                return MIN(n, (int) size);
        switch (h_errno) {
        case HOST_NOT_FOUND:
                return -ENXIO;
        case NO_DATA:
                return -ENODATA;
        default:
                return -EAGAIN;
        }
}

static void dns_why(SmtpWhy *why, int r, const char *name, int type)
{
        if (r == -ENODATA)
                smtp_why_set(why, "5.4.4",
                             "Host or domain name not found. Name service error for name=%s type=%s: "
                             "Host found but no data record of requested type",
                             name, type_name(type));
        else if (r == -ENXIO)
                smtp_why_set(why, "5.4.4",
                             "Host or domain name not found. Name service error for name=%s type=%s: "
                             "Host not found",
                             name, type_name(type));
        else if (r == -EBADMSG || r == -ELOOP || r == -EMSGSIZE)
                smtp_why_set(why, "4.4.3",
                             "Host or domain name not found. Name service error for name=%s type=%s: "
                             "malformed or unexpected name server reply",
                             name, type_name(type));
        else
                smtp_why_set(why, "4.4.3",
                             "Host or domain name not found. Name service error for name=%s type=%s: "
                             "Host not found, try again",
                             name, type_name(type));
}

typedef struct ServerList {
        SmtpServer *a;
        size_t n, alloc;
} ServerList;

static int server_add(ServerList *l, const char *host, const SmtpDnsAddr *addr, uint16_t port, uint16_t pref)
{
        char *h;

        if (l->n == l->alloc) {
                size_t n = MAX(l->alloc * 2, 8U);
                SmtpServer *p = reallocarray(l->a, n, sizeof(*p));

                if (!p)
                        return -ENOMEM;
                l->a = p;
                l->alloc = n;
        }
        h = strdup(host);
        if (!h)
                return -ENOMEM;
        l->a[l->n++] = (SmtpServer){.host = h, .addr = *addr, .port = port, .pref = pref};
        return 0;
}

void smtp_server_free_array(SmtpServer *a, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(a[i].host);
        free(a);
}

/*
 * host_addrs - HOST's addresses (A and/or AAAA) appended to L in smtp_address_preference order;
 * 0 (some or none added: *ret_found), or a name service error with WHY set
 */
static int host_addrs(const SmtpConfig *cfg, const char *host, uint16_t port, uint16_t pref, uint8_t *buf,
                      ServerList *l, SmtpWhy *why)
{
        int types[2], n_types = 0, r, hard = 0, soft = 0, last_type = SMTP_DNS_T_A, last_error = 0;
        int soft_type = SMTP_DNS_T_A, soft_error = 0;
        SmtpDnsAddr *all = NULL;
        size_t n_all = 0;

        if (cfg->ipv4)
                types[n_types++] = SMTP_DNS_T_A;
        if (cfg->ipv6)
                types[n_types++] = SMTP_DNS_T_AAAA;
        for (int t = 0; t < n_types; t++) {
                SmtpDnsAddr *a = NULL, *p;
                size_t n = 0;

                r = query(host, types[t], buf, SMTP_DNS_ANSWER_MAX);
                if (r >= 0)
                        r = smtp_dns_parse_addr(buf, (size_t) r, host, types[t], &a, &n);
                if (r < 0 || n == 0) {
                        if (r == 0)
                                r = -ENODATA;
                        last_type = types[t];
                        last_error = r;
                        if (r == -ENXIO || r == -ENODATA)
                                hard++;
                        else {
                                soft++;
                                soft_type = types[t];
                                soft_error = r;
                        }
                        continue;
                }
                p = reallocarray(all, n_all + n, sizeof(*p));
                if (!p) {
                        free(a);
                        free(all);
                        return -ENOMEM;
                }
                all = p;
                memcpy(all + n_all, a, n * sizeof(*a));
                n_all += n;
                free(a);
        }
        if (n_all == 0) {
                free(all);
                /* one lookup that failed for now makes it a temporary failure, whatever the
                 * other said: never a bounce while an answer may still come */
                if (soft > 0)
                        dns_why(why, soft_error, host, soft_type);
                else
                        dns_why(why, last_error ? last_error : -ENODATA, host, last_type);
                return soft > 0 || hard == 0 ? -EAGAIN : -ENXIO;
        }
        smtp_dns_addr_order(all, n_all, cfg->address_preference, random_u32, NULL);
        for (size_t i = 0; i < n_all; i++) {
                r = server_add(l, host, &all[i], port, pref);
                if (r < 0) {
                        free(all);
                        return r;
                }
        }
        free(all);
        return 0;
}

int smtp_resolve(const SmtpConfig *cfg, const SmtpNexthop *d, SmtpServer **ret, size_t *ret_n, SmtpWhy *why)
{
        _cleanup_(freep) uint8_t *buf = NULL;
        ServerList l = {};
        SmtpMx *mx = NULL;
        size_t n_mx = 0;
        int r;

        if (d->literal) {
                SmtpDnsAddr a = {.family = d->family};

                if ((d->family == AF_INET && !cfg->ipv4) || (d->family == AF_INET6 && !cfg->ipv6)) {
                        smtp_why_set(why, "4.4.4", "%s: address family disabled by inet_protocols", d->host);
                        return -EAFNOSUPPORT;
                }
                if (inet_pton(d->family, d->host, d->family == AF_INET ? (void *) &a.in : (void *) &a.in6) !=
                    1) {
                        smtp_why_set(why, "4.3.5", "bad address literal: %s", d->host);
                        return -EINVAL;
                }
                r = server_add(&l, d->host, &a, d->port, 0);
                if (r < 0)
                        goto fail;
                *ret = l.a;
                *ret_n = l.n;
                return 0;
        }

        buf = malloc(SMTP_DNS_ANSWER_MAX);
        if (!buf)
                return -ENOMEM;
        if (d->mx) {
                r = query(d->host, SMTP_DNS_T_MX, buf, SMTP_DNS_ANSWER_MAX);
                if (r >= 0)
                        r = smtp_dns_parse_mx(buf, (size_t) r, d->host, &mx, &n_mx);
                /* no MX records, or no such name: the name's own addresses are asked for next
                 * (so a name that does not exist is reported as Postfix does, "type=A: Host
                 * not found") */
                if (r == -ENODATA || r == -ENXIO)
                        r = 0, n_mx = 0;
                if (r < 0) {
                        dns_why(why, r, d->host, SMTP_DNS_T_MX);
                        return r == -ENXIO ? -ENXIO : -EAGAIN;
                }
                if (smtp_mx_is_null(mx, n_mx)) {
                        smtp_mx_free_array(mx, n_mx);
                        smtp_why_set(why, "5.1.0", "Domain %s does not accept mail (nullMX)", d->host);
                        return -ENXIO;
                }
                if (n_mx > 0) {
                        n_mx = smtp_mx_sort(mx, n_mx, random_u32, NULL);
                        /* MX records exist but none names a valid host: never the domain's own
                         * address instead (RFC 5321 5.1) */
                        if (n_mx == 0) {
                                smtp_mx_free_array(mx, 0);
                                smtp_why_set(why, "4.4.3",
                                             "Host or domain name not found. Name service error for name=%s "
                                             "type=MX: "
                                             "malformed or unexpected name server reply",
                                             d->host);
                                return -EAGAIN;
                        }
                }
        }

        if (n_mx == 0) {
                /* no MX: the host itself, RFC 5321 5.1's implicit MX */
                r = host_addrs(cfg, d->host, d->port, 0, buf, &l, why);
                if (r < 0)
                        goto fail;
        } else {
                bool soft = false;
                int last = 0;

                for (size_t i = 0; i < n_mx; i++) {
                        SmtpWhy w;

                        if (cfg->mx_address_limit > 0 && l.n >= cfg->mx_address_limit)
                                break;
                        last = host_addrs(cfg, mx[i].name, d->port, mx[i].pref, buf, &l, &w);
                        if (last == -ENOMEM) {
                                r = last;
                                goto fail;
                        }
                        if (last == -EAGAIN && !soft) {
                                soft = true; /* the first temporary failure is the reason */
                                *why = w;
                        } else if (last < 0 && !soft)
                                *why = w;
                }
                if (soft)
                        last = -EAGAIN;
                if (l.n == 0) {
                        /* MX hosts that do not exist: returned as undeliverable with the last
                         * host's name service error (Postfix's default), or deferred with
                         * smtp_defer_if_no_mx_address_found; a failure for now always defers */
                        if (last == -ENXIO && cfg->defer_if_no_mx_address_found) {
                                smtp_why_set(why, "4.4.4", "no MX host for %s has a valid address record",
                                             d->host);
                                last = -EAGAIN;
                        }
                        r = last == -ENXIO ? -ENXIO : -EAGAIN;
                        goto fail;
                }
        }
        if (cfg->mx_address_limit > 0 && l.n > cfg->mx_address_limit) {
                for (size_t i = cfg->mx_address_limit; i < l.n; i++)
                        free(l.a[i].host);
                l.n = cfg->mx_address_limit;
        }
        smtp_mx_free_array(mx, n_mx);
        *ret = l.a;
        *ret_n = l.n;
        return 0;

fail:
        if (r == -ENOMEM)
                smtp_why_set(why, "4.3.0", "out of memory");
        smtp_mx_free_array(mx, n_mx);
        smtp_server_free_array(l.a, l.n);
        return r;
}
