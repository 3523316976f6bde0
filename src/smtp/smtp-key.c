/* SPDX-License-Identifier: MIT */
/*
 * smtp-key.c - connection cache labels as Postfix's smtp_key.c builds them (pure)
 *
 * A label is its fields in a fixed order, each followed by "\n"; an empty field is "*", and a
 * field that holds the delimiter or the placeholder is base64-encoded, so that two different
 * field lists never give the same label. tern-smtp has no TLS, SASL or SMTPUTF8, so those
 * fields are always "0": a Postfix smtp(8) without TLS writes the same.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "smtp-key.h"

static int base64(const char *in, char **ret)
{
        static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        size_t n = strlen(in), o = 0;
        char *out = malloc((n + 2) / 3 * 4 + 1);

        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t) (uint8_t) in[i] << 16;

                if (i + 1 < n)
                        v |= (uint32_t) (uint8_t) in[i + 1] << 8;
                if (i + 2 < n)
                        v |= (uint8_t) in[i + 2];
                out[o++] = tab[(v >> 18) & 63];
                out[o++] = tab[(v >> 12) & 63];
                out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
                out[o++] = i + 2 < n ? tab[v & 63] : '=';
        }
        out[o] = '\0';
        *ret = out;
        return 0;
}

/* label - FIELDS (N) as smtp_key.c joins them: "field\n" each, "*" for an empty one, base64 for
 * one that holds the delimiter or the placeholder */
static int label(const char *const *fields, size_t n, char **ret)
{
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const char *v = fields[i];

                if (isempty(v))
                        fputs("*", f);
                else if (strpbrk(v, "\n*")) {
                        char *b;

                        if (base64(v, &b) < 0) {
                                fclose(f);
                                free(buf);
                                return -ENOMEM;
                        }
                        fputs(b, f);
                        free(b);
                } else
                        fputs(v, f);
                fputc('\n', f);
        }
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        return 0;
}

int smtp_cache_dest_label(const char *service, const char *destination, char **ret)
{
        /* service, request nexthop, TLS level (none), REQUIRETLS, SMTPUTF8 */
        const char *fields[] = {service, destination, "0", "0", "0"};

        return label(fields, ELEMENTSOF(fields), ret);
}

int smtp_cache_endp_label(const char *service, const char *addr, uint16_t port, char **ret)
{
        char p[8];
        const char *fields[] = {service, addr, p, "0", "0", "0"};

        snprintf(p, sizeof(p), "%u", port);
        return label(fields, ELEMENTSOF(fields), ret);
}
