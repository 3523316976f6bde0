/* SPDX-License-Identifier: MIT */
/*
 * varlink-idl-parse.c - the little of varlink IDL that tern needs to read: the interface name
 * and the method names
 *
 * Used to check that the methods a daemon binds in C are exactly those its IDL file declares
 * (varlink_server_add_interface), so a method cannot be served without being described, or
 * described without being served. Comments (`#` to end of line) are skipped; `method NAME(`
 * and `interface NAME` are recognised only as the first word of a line. It is not a validator
 * of the whole grammar; the IDL texts it reads are tern's own, compiled in.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "varlink.h"

void varlink_strv_free(char **v)
{
        for (char **p = v; p && *p; p++)
                free(*p);
        free(v);
}

/* first_word - the word at the start of LINE (after white space) and what follows it */
static size_t first_word(const char *line, const char **ret_start)
{
        const char *p = line, *q;

        while (*p == ' ' || *p == '\t')
                p++;
        q = p;
        while (*q && (isalnum((unsigned char) *q) || *q == '.' || *q == '_' || *q == '-'))
                q++;
        *ret_start = p;
        return (size_t) (q - p);
}

int varlink_idl_parse(const char *text, char **ret_interface, char ***ret_methods)
{
        _cleanup_(freep) char *interface = NULL;
        char **methods = NULL;
        size_t n = 0;
        const char *line = text;
        int r = -EINVAL;

        while (line && *line) {
                const char *eol = strchr(line, '\n'), *w, *name;
                size_t len = first_word(line, &w), nlen;

                if (len == 9 && strneq(w, "interface", 9) && !interface) {
                        nlen = first_word(w + 9, &name);
                        interface = strndup(name, nlen);
                        if (!interface)
                                goto fail_nomem;
                } else if (len == 6 && strneq(w, "method", 6) && (w[6] == ' ' || w[6] == '\t')) {
                        /* "method" followed by a blank is the keyword; "method: int" inside a
                         * multi-line signature is a field of that name. */
                        const char *paren;
                        char **m;

                        nlen = first_word(w + 6, &name);
                        paren = name + nlen;
                        while (*paren == ' ' || *paren == '\t')
                                paren++;        /* the grammar allows "method Name (...)" */
                        if (nlen == 0 || *paren != '(')
                                goto fail;
                        m = realloc(methods, (n + 2) * sizeof(char *));
                        if (!m)
                                goto fail_nomem;
                        methods = m;
                        methods[n] = strndup(name, nlen);
                        if (!methods[n])
                                goto fail_nomem;
                        methods[++n] = NULL;
                }
                line = eol ? eol + 1 : NULL;
        }
        if (!interface || !varlink_interface_name_valid(interface))
                goto fail;
        if (!methods) {
                methods = calloc(1, sizeof(char *));
                if (!methods)
                        goto fail_nomem;
        }
        *ret_interface = TAKE_PTR(interface);
        *ret_methods = methods;
        return 0;

fail_nomem:
        r = -ENOMEM;
fail:
        varlink_strv_free(methods);
        return r;
}
