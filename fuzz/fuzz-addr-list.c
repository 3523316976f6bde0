/* SPDX-License-Identifier: MIT */
/*
 * fuzz-addr-list.c - libFuzzer target for the address helpers of src/lib/cleanup.c
 *
 * The bytes are an address-list header value for addr_list_parse(); every address it returns
 * goes through addr_valid() and addr_qualify(), and so does the whole input as one string (up to
 * its first NUL). Checks: a parse failure returns no vector; a valid bare local part qualifies to
 * an address that contains '@'; qualifying a valid address twice changes nothing. Must never crash, leak or
 * trip a sanitizer. Seeds: fuzz/corpus/addr-list/.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_addr(const char *a)
{
        char *q = NULL, *q2 = NULL;
        bool valid = addr_valid(a);

        if (addr_qualify(a, "example.com", &q) < 0)
                abort();
        if (valid && *a && !strchr(q, '@'))
                abort();
        if (addr_qualify(q, "example.com", &q2) < 0 || (valid && strcmp(q, q2) != 0))
                abort();
        (void)addr_valid(q);
        free(q);
        free(q2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char **v = NULL, *s;
        int r;

        r = addr_list_parse((const char *)data, size, &v);
        if (r < 0) {
                if (v || r != -EINVAL)
                        abort();
        } else {
                for (size_t i = 0; v[i]; i++) {
                        if (!*v[i])
                                abort();
                        check_addr(v[i]);
                        free(v[i]);
                }
                free(v);
        }

        s = strndup((const char *)data, size);
        if (!s)
                return 0;
        check_addr(s);
        free(s);
        return 0;
}
