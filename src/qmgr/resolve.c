/* SPDX-License-Identifier: MIT */
/*
 * resolve.c - where a recipient goes: Postfix's trivial-rewrite resolve service and transport(5)
 *
 * What it does (trivial-rewrite/resolve.c, global/transport.c, resolve.h for the contract):
 *
 *   1. Split the address at its last '@' outside a quoted string; the domain is lower-cased
 *      and loses one trailing dot. An address with control characters, over
 *      RESOLVE_ADDRESS_MAX, with an unbalanced quote, or with a domain that is not a host name
 *      (labels of letters, digits, '-', '_' or UTF-8; no empty label; not all digits and dots)
 *      or not an address literal ("[1.2.3.4]", "[IPv6:...]") routes to error "5.1.3 bad
 *      address syntax", as Postfix's valid_hostname()/valid_mailhost_literal() checks do.
 *   2. The class: local if the domain is $myhostname, "localhost", matches mydestination, or
 *      is a loopback literal ([127.x.x.x], [IPv6:::1]: the only own addresses pure code
 *      knows); relay if it matches relay_domains; default otherwise. Lists match as Postfix's
 *      domain_list does: "domain" exactly (and its subdomains when the parameter is named in
 *      parent_domain_matches_subdomains, relay_domains by default), ".domain" its subdomains,
 *      "!pattern" negates, the first match wins.
 *   3. The class's transport parameter "transport[:nexthop]" gives the transport; its nexthop,
 *      else $relayhost (relay, default), else the domain (relay, default) or $myhostname
 *      (local). The nexthop text is kept verbatim: "[10.0.0.1]:2525" stays so.
 *   4. The [transport] table (transport(5)): the whole address (lower case), then the domain,
 *      then ".parent" for each parent from the nearest (or "parent" when transport_maps is in
 *      parent_domain_matches_subdomains), then "*". The first entry found replaces the
 *      transport and the nexthop, each only when not empty. An address without a domain is
 *      looked up as user@$myhostname (Postfix would have qualified it with $myorigin).
 *
 * Invariants: every address gets a route with a non-empty transport and nexthop; only -ENOMEM
 * fails. The Resolver holds copies, so the Conf may be freed after resolver_new().
 *
 * Limits and differences from Postfix: "type:table" entries in mydestination and relay_domains
 * never match (tern has no lookup tables); no recipient_delimiter, so the table is not asked
 * for "user+ext@domain" then "user@domain", only for the address as given; no percent hack,
 * bang paths or source routes (allow_percent_hack, swap_bangpath: tern has neither parameter);
 * no virtual_alias_domains / virtual_mailbox_domains classes; address literals are local only
 * for the loopback addresses (Postfix compares them with inet_interfaces); sender-dependent
 * relayhosts are not supported. An error route from the table keeps the table's text as it is.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "domain-list.h"
#include "macro.h"
#include "resolve.h"

#define RESOLVE_NULL_RECIPIENT "5.1.3 null recipient address"
#define RESOLVE_BAD_SYNTAX "5.1.3 bad address syntax"

typedef struct ResolveTableEntry {
        char *pattern, *transport, *nexthop;
} ResolveTableEntry;

struct Resolver {
        char *myhostname;
        char *relayhost;
        char *local_transport, *relay_transport, *default_transport;
        DomainList mydestination, relay_domains;
        bool transport_parent;
        ResolveTableEntry *table;
        size_t n_table;
};

Resolver *resolver_free(Resolver *r)
{
        if (!r)
                return NULL;
        free(r->myhostname);
        free(r->relayhost);
        free(r->local_transport);
        free(r->relay_transport);
        free(r->default_transport);
        domain_list_done(&r->mydestination);
        domain_list_done(&r->relay_domains);
        for (size_t i = 0; i < r->n_table; i++) {
                free(r->table[i].pattern);
                free(r->table[i].transport);
                free(r->table[i].nexthop);
        }
        free(r->table);
        free(r);
        return NULL;
}

static void resolver_freep(Resolver **r)
{
        resolver_free(*r);
}

/* resolver_new - copy the parameters and the [transport] table out of C */
int resolver_new(const Conf *c, Resolver **ret)
{
        _cleanup_(resolver_freep) Resolver *r = NULL;
        const ConfTransportEntry *entries;
        char *const *parents;
        size_t n;
        int k;

        r = calloc(1, sizeof(Resolver));
        if (!r)
                return -ENOMEM;
        r->myhostname = strdup(conf_get_string(c, "myhostname"));
        r->relayhost = strdup(conf_get_string(c, "relayhost"));
        r->local_transport = strdup(conf_get_string(c, "local_transport"));
        r->relay_transport = strdup(conf_get_string(c, "relay_transport"));
        r->default_transport = strdup(conf_get_string(c, "default_transport"));
        if (!r->myhostname || !r->relayhost || !r->local_transport || !r->relay_transport ||
            !r->default_transport)
                return -ENOMEM;
        lowercase_ascii(r->myhostname);
        k = domain_list_from_conf(c, "mydestination", &r->mydestination);
        if (k < 0)
                return k;
        k = domain_list_from_conf(c, "relay_domains", &r->relay_domains);
        if (k < 0)
                return k;
        parents = conf_get_list(c, "parent_domain_matches_subdomains");
        r->transport_parent = conf_list_contains(parents, "transport_maps");

        n = conf_transport(c, &entries);
        if (n > 0) {
                r->table = calloc(n, sizeof(ResolveTableEntry));
                if (!r->table)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                ResolveTableEntry *t = &r->table[r->n_table++];

                t->pattern = strdup(entries[i].pattern);
                t->transport = strdup(entries[i].transport);
                t->nexthop = strdup(entries[i].nexthop);
                if (!t->pattern || !t->transport || !t->nexthop)
                        return -ENOMEM;
                lowercase_ascii(t->pattern);
        }
        *ret = TAKE_PTR(r);
        return 0;
}

/* table_find - the [transport] entry for KEY, or NULL; the last definition of a pattern wins,
 * as conf.c keeps them (a redefinition is a warning there) */
static const ResolveTableEntry *table_find(const Resolver *r, const char *key)
{
        const ResolveTableEntry *found = NULL;

        for (size_t i = 0; i < r->n_table; i++)
                if (streq(r->table[i].pattern, key))
                        found = &r->table[i];
        return found;
}

/* literal_address - for "[1.2.3.4]" or "[ipv6:...]" (lower case), 4 or 6, and whether it is a
 * loopback address; 0 when DOMAIN is not a valid address literal */
static int literal_address(const char *domain, bool *ret_loopback)
{
        char buf[INET6_ADDRSTRLEN + sizeof("ipv6:")];
        size_t len = strlen(domain);
        struct in_addr a4;
        struct in6_addr a6;

        if (len < 3 || domain[0] != '[' || domain[len - 1] != ']' || len - 2 >= sizeof(buf))
                return 0;
        memcpy(buf, domain + 1, len - 2);
        buf[len - 2] = '\0';
        if (strneq(buf, "ipv6:", 5)) {
                if (inet_pton(AF_INET6, buf + 5, &a6) != 1)
                        return 0;
                *ret_loopback = IN6_IS_ADDR_LOOPBACK(&a6);
                return 6;
        }
        if (inet_pton(AF_INET, buf, &a4) != 1)
                return 0;
        *ret_loopback = (ntohl(a4.s_addr) >> 24) == 127;
        return 4;
}

/* address_split - the offset of the last '@' outside a quoted string (-1: none); -EINVAL for
 * control characters or an unbalanced quote */
static int address_split(const char *address, ssize_t *ret_at)
{
        bool quoted = false;
        ssize_t at = -1;

        for (const char *p = address; *p; p++) {
                unsigned char ch = (unsigned char) *p;

                if (ch < 0x20 || ch == 0x7f)
                        return -EINVAL;
                if (quoted && ch == '\\') {
                        if (!p[1])
                                return -EINVAL;
                        p++;
                        if ((unsigned char) *p < 0x20 || *p == 0x7f)
                                return -EINVAL;
                        continue;
                }
                if (ch == '"')
                        quoted = !quoted;
                else if (ch == '@' && !quoted)
                        at = p - address;
        }
        if (quoted)
                return -EINVAL;
        *ret_at = at;
        return 0;
}

int resolve_local_part(const char *address, char **ret)
{
        ssize_t at = -1;
        char *s;

        if (address_split(address, &at) < 0 || at < 0)
                at = (ssize_t) strlen(address);
        s = strndup(address, (size_t) at);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

void resolved_done(Resolved *r)
{
        if (!r)
                return;
        free(r->transport);
        free(r->nexthop);
        *r = (Resolved){};
}

/* resolved_set - fill RET from TRANSPORT and NEXTHOP (lengths given) */
static int resolved_set(Resolved *ret, ResolveClass class, const char *transport, size_t tl,
                        const char *nexthop, size_t nl)
{
        char *t = strndup(transport, tl), *n = strndup(nexthop, nl);

        if (!t || !n) {
                free(t);
                free(n);
                return -ENOMEM;
        }
        *ret = (Resolved){.class = class, .transport = t, .nexthop = n};
        return 0;
}

static int resolve_error(Resolved *ret, const char *text)
{
        return resolved_set(ret, RESOLVE_CLASS_ERROR, "error", 5, text, strlen(text));
}

/* table_lookup - transport(5): the address, the domain, its parents, then "*" */
static const ResolveTableEntry *table_lookup(const Resolver *r, const char *key_address, const char *domain)
{
        const ResolveTableEntry *t;

        if (r->n_table == 0)
                return NULL;
        t = table_find(r, key_address);
        if (t)
                return t;
        t = table_find(r, domain);
        if (t)
                return t;
        /* parents: none for an address literal or an empty domain (myhostname set empty) */
        if (domain[0] != '[' && domain[0] != '\0')
                for (const char *p = strchr(domain + 1, '.'); p; p = strchr(p + 1, '.')) {
                        t = table_find(r, r->transport_parent ? p + 1 : p);
                        if (t)
                                return t;
                }
        return table_find(r, "*");
}

int resolve_address(const Resolver *r, const char *address, Resolved *ret)
{
        _cleanup_(freep) char *domain = NULL, *key = NULL;
        const char *param, *colon, *transport, *nexthop;
        size_t tl, nl, dl;
        const ResolveTableEntry *t;
        ResolveClass class;
        bool loopback = false;
        ssize_t at = -1;

        if (!address || !*address)
                return resolve_error(ret, RESOLVE_NULL_RECIPIENT);
        if (strlen(address) > RESOLVE_ADDRESS_MAX || address_split(address, &at) < 0)
                return resolve_error(ret, RESOLVE_BAD_SYNTAX);

        /* The domain: lower case, one trailing dot dropped; none: this host's. */
        domain = strdup(at >= 0 ? address + at + 1 : r->myhostname);
        if (!domain)
                return -ENOMEM;
        lowercase_ascii(domain);
        dl = strlen(domain);
        if (dl > 0 && domain[dl - 1] == '.')
                domain[--dl] = '\0';
        if (at >= 0 && (domain[0] == '[' ? literal_address(domain, &loopback) == 0 : !valid_hostname(domain)))
                return resolve_error(ret, RESOLVE_BAD_SYNTAX);

        /* 1. the class and its transport parameter */
        if (at < 0 || streq(domain, r->myhostname) || streq(domain, "localhost") || loopback ||
            domain_list_match(&r->mydestination, domain)) {
                class = RESOLVE_CLASS_LOCAL;
                param = r->local_transport;
        } else if (domain_list_match(&r->relay_domains, domain)) {
                class = RESOLVE_CLASS_RELAY;
                param = r->relay_transport;
        } else {
                class = RESOLVE_CLASS_DEFAULT;
                param = r->default_transport;
        }
        colon = strchr(param, ':');
        transport = param;
        tl = colon ? (size_t) (colon - param) : strlen(param);
        if (colon && colon[1]) {
                nexthop = colon + 1;
        } else if (class == RESOLVE_CLASS_LOCAL) {
                nexthop = r->myhostname;
        } else if (*r->relayhost) {
                nexthop = r->relayhost;
        } else {
                nexthop = domain;
        }
        nl = strlen(nexthop);

        /* 2. the [transport] table; the key is the whole address, qualified and lower case */
        if (asprintf(&key, "%.*s@%s", (int) (at >= 0 ? at : (ssize_t) strlen(address)), address, domain) < 0) {
                key = NULL;
                return -ENOMEM;
        }
        lowercase_ascii(key);
        t = table_lookup(r, key, domain);
        if (t) {
                if (*t->transport) {
                        transport = t->transport;
                        tl = strlen(transport);
                }
                if (*t->nexthop) {
                        nexthop = t->nexthop;
                        nl = strlen(nexthop);
                }
        }

        /* An empty transport parameter ("local_transport =") or host name: never an empty route. */
        if (tl == 0) {
                transport = class == RESOLVE_CLASS_LOCAL ? "local" : "smtp";
                tl = strlen(transport);
        }
        if (nl == 0) {
                nexthop = *domain ? domain : "localhost";
                nl = strlen(nexthop);
        }
        return resolved_set(ret, class, transport, tl, nexthop, nl);
}
