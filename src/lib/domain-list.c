/* SPDX-License-Identifier: MIT */
/* domain-list.c - Postfix's domain_list matching and host name syntax (see domain-list.h) */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "domain-list.h"
#include "macro.h"

char *lowercase_ascii(char *s)
{
        for (char *p = s; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                        *p = (char) (*p - 'A' + 'a');
        return s;
}

bool conf_list_contains(char *const *list, const char *s)
{
        for (; list && *list; list++)
                if (strcasecmp(*list, s) == 0)
                        return true;
        return false;
}

void domain_list_done(DomainList *l)
{
        if (l->patterns)
                for (char **p = l->patterns; *p; p++)
                        free(*p);
        free(l->patterns);
        *l = (DomainList){};
}

int domain_list_new(char *const *patterns, bool parent, DomainList *ret)
{
        DomainList l = { .parent = parent };
        size_t n = 0;

        while (patterns && patterns[n])
                n++;
        l.patterns = calloc(n + 1, sizeof(char *));
        if (!l.patterns)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                l.patterns[i] = strdup(patterns[i]);
                if (!l.patterns[i]) {
                        domain_list_done(&l);
                        return -ENOMEM;
                }
                lowercase_ascii(l.patterns[i]);
        }
        *ret = l;
        return 0;
}

int domain_list_from_conf(const Conf *c, const char *name, DomainList *ret)
{
        return domain_list_new(conf_get_list(c, name),
                               conf_list_contains(conf_get_list(c, "parent_domain_matches_subdomains"), name),
                               ret);
}

bool domain_list_empty(const DomainList *l)
{
        return !l->patterns || !l->patterns[0];
}

bool domain_list_match(const DomainList *l, const char *domain)
{
        size_t dl = strlen(domain);

        for (char *const *list = l->patterns; list && *list; list++) {
                const char *pat = *list;
                bool negate = false, match = false;
                size_t pl;

                while (*pat == '!') {
                        negate = !negate;
                        pat++;
                }
                if (strchr(pat, ':') && pat[0] != '[')
                        continue; /* type:table */
                pl = strlen(pat);
                if (pl == 0)
                        continue;
                if (pat[0] == '.') {
                        /* ".example.com" matches a.example.com, not example.com */
                        match = dl > pl && streq(domain + dl - pl, pat);
                } else if (streq(domain, pat)) {
                        match = true;
                } else if (l->parent && dl > pl + 1 && domain[dl - pl - 1] == '.' &&
                           streq(domain + dl - pl, pat) && pat[0] != '[') {
                        match = true;
                }
                if (match)
                        return !negate;
        }
        return false;
}

bool valid_hostname(const char *name)
{
        size_t len = strlen(name), label = 0;
        bool non_numeric = false;

        if (len == 0 || len > DOMAIN_NAME_MAX)
                return false;
        for (const char *p = name; *p; p++) {
                unsigned char ch = (unsigned char) *p;

                if (ch == '.') {
                        if (label == 0 || p[-1] == '-')
                                return false;
                        label = 0;
                        continue;
                }
                if (!(isalnum(ch) || ch == '-' || ch == '_' || ch >= 0x80))
                        return false;
                if (ch == '-' && label == 0)
                        return false;
                if (++label > DOMAIN_LABEL_MAX)
                        return false;
                if (!isdigit(ch))
                        non_numeric = true;
        }
        if (label == 0 || name[len - 1] == '-')
                return false;
        return non_numeric;
}
