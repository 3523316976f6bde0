/* SPDX-License-Identifier: MIT */
/*
 * domain-list.h - Postfix's domain_list matching and host name syntax
 *
 * A DomainList is one list parameter (relay_domains, fast_flush_domains, mydestination), lower
 * cased, with Postfix's semantics (util/match_list.c, global/domain_list.c):
 *   - "domain" matches the domain itself, and its subdomains when the parameter is named in
 *     parent_domain_matches_subdomains;
 *   - ".domain" matches its subdomains (never the domain itself);
 *   - "!pattern" turns a match into a no-match; the first pattern that matches decides;
 *   - "type:table" entries never match (tern has no lookup tables).
 * An empty list matches nothing.
 *
 * Pure code; no I/O.
 */
#pragma once

#include <stdbool.h>

#include "conf.h"

/* RFC 1035 limits, as Postfix's valid_hostname() applies them */
#define DOMAIN_LABEL_MAX 63
#define DOMAIN_NAME_MAX 255

typedef struct DomainList {
        char **patterns;                /* NULL-terminated, lower case */
        bool parent;                    /* named in parent_domain_matches_subdomains */
} DomainList;

/* domain_list_from_conf - the list parameter NAME of C */
int domain_list_from_conf(const Conf *c, const char *name, DomainList *ret);
/* domain_list_new - from PATTERNS (NULL-terminated; copied) with PARENT */
int domain_list_new(char *const *patterns, bool parent, DomainList *ret);
void domain_list_done(DomainList *l);
bool domain_list_empty(const DomainList *l);
/* domain_list_match - DOMAIN (lower case) against L */
bool domain_list_match(const DomainList *l, const char *domain);

/* valid_hostname - labels of [A-Za-z0-9_-] or UTF-8, 1..63 bytes, not starting or ending with
 * '-', at most 255 bytes, not all digits and dots (Postfix's valid_hostname) */
bool valid_hostname(const char *name);
/* lowercase_ascii - fold A-Z in place (UTF-8 bytes stay as they are); returns S */
char *lowercase_ascii(char *s);
/* conf_list_contains - is S (any case) in the NULL-terminated LIST? */
bool conf_list_contains(char *const *list, const char *s);
