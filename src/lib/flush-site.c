/* SPDX-License-Identifier: MIT */
/* flush-site.c - fast flush sites: canonical names, logfile names (see flush-site.h) */
#include <arpa/inet.h>
#include <errno.h>
#include <idn2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "flush-site.h"
#include "macro.h"

static bool is_ascii(const char *s)
{
        for (; *s; s++)
                if ((unsigned char) *s >= 0x80)
                        return false;
        return true;
}

/* address_literal - "[192.0.2.1]" or "[IPv6:2001:db8::1]" (any case), well-formed */
static bool address_literal(const char *s, size_t len)
{
        char buf[64];
        unsigned char addr[sizeof(struct in6_addr)];

        if (len < 3 || s[0] != '[' || s[len - 1] != ']' || len - 2 >= sizeof(buf))
                return false;
        memcpy(buf, s + 1, len - 2);
        buf[len - 2] = '\0';
        if (strncasecmp(buf, "IPv6:", 5) == 0)
                return inet_pton(AF_INET6, buf + 5, addr) == 1;
        return inet_pton(AF_INET, buf, addr) == 1;
}

int flush_site_canonical(const char *site, char ret[static FLUSH_SITE_MAX])
{
        char buf[FLUSH_SITE_INPUT_MAX + 1], out[FLUSH_SITE_MAX];
        size_t len = strnlen(site, FLUSH_SITE_INPUT_MAX + 1);

        if (len == 0 || len > FLUSH_SITE_INPUT_MAX)
                return -EINVAL;
        if (site[0] == '[')
                return address_literal(site, len) ? -EADDRNOTAVAIL : -EINVAL;
        memcpy(buf, site, len + 1);
        if (len > 1 && buf[len - 1] == '.')
                buf[--len] = '\0';

        if (is_ascii(buf)) {
                if (len >= FLUSH_SITE_MAX)
                        return -EINVAL;
                memcpy(out, buf, len + 1);
        } else {
                char *ascii = NULL;
                int r;

                /* UTS #46 non-transitional mapping (folds case, NFC), then IDNA2008 ToASCII */
                r = idn2_to_ascii_8z(buf, &ascii, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
                if (r != IDN2_OK || !ascii)
                        return -EINVAL;
                len = strlen(ascii);
                if (len >= FLUSH_SITE_MAX) {
                        idn2_free(ascii);
                        return -EINVAL;
                }
                memcpy(out, ascii, len + 1);
                idn2_free(ascii);
        }
        lowercase_ascii(out);
        /* after ToASCII nothing but letters, digits, '-', '_' and dots may remain */
        if (!is_ascii(out) || !valid_hostname(out))
                return -EINVAL;
        memcpy(ret, out, strlen(out) + 1);
        return 0;
}

int flush_domains_from_conf(const Conf *c, DomainList *ret)
{
        DomainList l;
        int r;

        r = domain_list_from_conf(c, "fast_flush_domains", &l);
        if (r < 0)
                return r;
        for (char **p = l.patterns; *p; p++) {
                char *pat = *p, ascii[FLUSH_SITE_MAX], *copy;
                size_t prefix = strspn(pat, "!");

                if (is_ascii(pat))
                        continue;
                if (pat[prefix] == '.')
                        prefix++;
                if (flush_site_canonical(pat + prefix, ascii) < 0)
                        continue;
                if (asprintf(&copy, "%.*s%s", (int) prefix, pat, ascii) < 0) {
                        domain_list_done(&l);
                        return -ENOMEM;
                }
                free(pat);
                *p = copy;
        }
        *ret = l;
        return 0;
}

void flush_site_file_name(const char *canonical, char ret[static FLUSH_SITE_MAX])
{
        size_t i = 0;

        for (; canonical[i] && i < FLUSH_SITE_MAX - 1; i++) {
                char ch = canonical[i];

                if (ch >= 'A' && ch <= 'Z')
                        ch = (char) (ch - 'A' + 'a');
                ret[i] = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ? ch : '_';
        }
        ret[i] = '\0';
}

bool flush_file_name_valid(const char *name)
{
        size_t n = 0;

        for (; name[n]; n++) {
                char ch = name[n];

                if (n >= FLUSH_SITE_MAX - 1)
                        return false;
                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                      ch == '_'))
                        return false;
        }
        return n > 0;
}
