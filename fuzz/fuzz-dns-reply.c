/* SPDX-License-Identifier: MIT */
/*
 * fuzz-dns-reply.c - libFuzzer target for what DNS answers and what nexthops say
 * (src/smtp/smtp-dns.c)
 *
 * The input is a DNS response message, as res_query() would return it. It is parsed as an
 * answer for "example.com" (MX, A, AAAA) and for the name its question holds, when that expands
 * (MX, A): a result is either an error or records that keep their promises - MX names lower case
 * and shorter than SMTP_DNS_NAME_MAX, addresses of the asked family. The MX records go through
 * smtp_mx_sort() with a fixed random source: preferences ascending, no name twice, every name
 * valid or the root, nothing kept past the returned count; the addresses through
 * smtp_dns_addr_order() with "ipv4", "ipv6" and "any": the preferred family first, and always a
 * permutation. The same input, up to its first NUL, is then a nexthop list for smtp and for
 * lmtp: on success each entry is a unix: path (lmtp only, absolute) or a lower-case host that is
 * an address of its family or a valid host name, with a port. Never crash, never leak. Seeds:
 * fuzz/corpus/dns-reply/.
 */
#include <arpa/inet.h>
#include <resolv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "domain-list.h"
#include "macro.h"
#include "smtp-dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* the longest nexthop text tried: longer lists add nothing but time */
#define FUZZ_NEXTHOP_MAX 4096

static uint32_t fixed_rand(void *userdata)
{
        uint32_t *s = userdata;

        *s = *s * 1103515245U + 12345U;
        return *s >> 8;
}

static void check_mx(const uint8_t *data, size_t size, const char *qname)
{
        SmtpMx *mx = NULL;
        size_t n = 0, k;
        uint32_t seed = 1;

        if (smtp_dns_parse_mx(data, size, qname, &mx, &n) < 0)
                return;
        if ((n == 0) != (mx == NULL))
                abort();
        for (size_t i = 0; i < n; i++) {
                if (!mx[i].name || strlen(mx[i].name) >= SMTP_DNS_NAME_MAX)
                        abort();
                for (const char *p = mx[i].name; *p; p++)
                        if (*p >= 'A' && *p <= 'Z')
                                abort();
        }
        (void) smtp_mx_is_null(mx, n);

        k = smtp_mx_sort(mx, n, fixed_rand, &seed);
        if (k > n)
                abort();
        for (size_t i = 0; i < k; i++) {
                if (!mx[i].name || (mx[i].name[0] && !valid_hostname(mx[i].name)))
                        abort();
                if (i > 0 && mx[i - 1].pref > mx[i].pref)
                        abort();
                for (size_t j = 0; j < i; j++)
                        if (strcasecmp(mx[i].name, mx[j].name) == 0)
                                abort();
        }
        for (size_t i = k; i < n; i++)
                if (mx[i].name)
                        abort();
        smtp_mx_free_array(mx, k);
}

static void check_order(SmtpDnsAddr *a, size_t n, const char *prefer, int first)
{
        SmtpDnsAddr *copy = malloc(n * sizeof(*a));
        uint32_t seed = 7;
        size_t firsts = 0;

        if (!copy)
                abort();
        memcpy(copy, a, n * sizeof(*a));
        for (size_t i = 0; i < n; i++)
                if (a[i].family == first)
                        firsts++;
        smtp_dns_addr_order(copy, n, prefer, fixed_rand, &seed);
        /* the preferred family first */
        for (size_t i = 0; first != AF_UNSPEC && i < n; i++)
                if ((copy[i].family == first) != (i < firsts))
                        abort();
        /* a permutation: every address still there (count each one's copies) */
        for (size_t i = 0; i < n; i++) {
                size_t want = 0, got = 0;

                for (size_t j = 0; j < n; j++) {
                        if (memcmp(&a[j], &a[i], sizeof(*a)) == 0)
                                want++;
                        if (memcmp(&copy[j], &a[i], sizeof(*a)) == 0)
                                got++;
                }
                if (want != got)
                        abort();
        }
        free(copy);
}

static void check_addr(const uint8_t *data, size_t size, const char *qname, int type)
{
        SmtpDnsAddr *a = NULL, *all;
        size_t n = 0;
        int family = type == SMTP_DNS_T_A ? AF_INET : AF_INET6;

        if (smtp_dns_parse_addr(data, size, qname, type, &a, &n) < 0)
                return;
        if ((n == 0) != (a == NULL))
                abort();
        for (size_t i = 0; i < n; i++)
                if (a[i].family != family)
                        abort();

        /* both families, as smtp-resolve.c puts A and AAAA answers together */
        all = calloc(2 * n + 1, sizeof(*all));
        if (!all)
                abort();
        for (size_t i = 0; i < n; i++) {
                all[2 * i] = a[i];
                all[2 * i + 1] = (SmtpDnsAddr){.family = family == AF_INET ? AF_INET6 : AF_INET};
                all[2 * i + 1].in6.s6_addr[0] = (uint8_t) i;
        }
        check_order(all, 2 * n, "ipv4", AF_INET);
        check_order(all, 2 * n, "ipv6", AF_INET6);
        check_order(all, 2 * n, "any", AF_UNSPEC);
        free(all);
        free(a);
}

static void check_nexthops(const char *text, bool lmtp)
{
        SmtpNexthop *h = NULL;
        size_t n = 0;
        const char *reason = NULL;
        int r;

        r = smtp_nexthop_parse_list(text, lmtp, &h, &n, &reason);
        if (r == -EINVAL) {
                if (!reason)
                        abort();
                return;
        }
        if (r < 0)
                return;
        if (!h || n == 0)
                abort();
        for (size_t i = 0; i < n; i++) {
                unsigned char addr[sizeof(struct in6_addr)];

                if (h[i].unix_path) {
                        if (!lmtp || h[i].host || h[i].unix_path[0] != '/' || h[i].mx || h[i].literal)
                                abort();
                        continue;
                }
                if (!h[i].host || h[i].port == 0 || (h[i].mx && (lmtp || h[i].literal)))
                        abort();
                for (const char *p = h[i].host; *p; p++)
                        if (*p >= 'A' && *p <= 'Z')
                                abort();
                if (h[i].literal) {
                        if ((h[i].family != AF_INET && h[i].family != AF_INET6) ||
                            inet_pton(h[i].family, h[i].host, addr) != 1)
                                abort();
                } else if (h[i].family != AF_UNSPEC || !valid_hostname(h[i].host))
                        abort();
        }
        smtp_nexthop_free_array(h, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char qname[SMTP_DNS_NAME_MAX], *text;
        size_t len;

        check_mx(data, size, "example.com");
        check_addr(data, size, "example.com", SMTP_DNS_T_A);
        check_addr(data, size, "example.com", SMTP_DNS_T_AAAA);

        /* the question's own name, as a resolver would have asked it */
        if (size > 12 && dn_expand(data, data + size, data + 12, qname, sizeof(qname)) > 0) {
                check_mx(data, size, qname);
                check_addr(data, size, qname, SMTP_DNS_T_A);
        }

        len = strnlen((const char *) data, MIN(size, (size_t) FUZZ_NEXTHOP_MAX));
        text = malloc(len + 1);
        if (!text)
                abort();
        memcpy(text, data, len);
        text[len] = '\0';
        check_nexthops(text, false);
        check_nexthops(text, true);
        free(text);
        return 0;
}
