/* SPDX-License-Identifier: MIT */
/*
 * resolve.h - where a recipient goes: what Postfix's trivial-rewrite resolve service tells qmgr
 *
 * Pure code over the configuration (no I/O, no DNS). For a recipient address it gives the
 * transport and nexthop, in Postfix's order (trivial-rewrite/resolve.c, transport(5)):
 *   1. the address class from its domain (lower case, a trailing dot dropped; no domain: local):
 *      local  - the domain is $myhostname, in mydestination, or localhost: local_transport
 *               ("local:$myhostname");
 *      relay  - the domain is in relay_domains (or a subdomain of a ".domain" / parent entry):
 *               relay_transport ("relay");
 *      default - anything else: default_transport ("smtp");
 *      the nexthop is the one written in that transport parameter ("smtp:[10.0.0.1]:2525"),
 *      else, for relay and default, $relayhost when set, else the recipient domain; for
 *      local, $myhostname;
 *   2. the [transport] table overrides: lookups of the whole address, then the domain, then
 *      each parent ".domain" from the nearest, then "*"; the first match wins. Its value
 *      "transport:nexthop" replaces both; an empty transport keeps step 1's transport, an
 *      empty nexthop keeps step 1's nexthop (transport(5) "transport:", ":nexthop", ":").
 * Errors are routes too, as in Postfix: an empty address goes to "error" with nexthop
 * "5.1.3 null recipient address"; an address that is not one (control characters, an empty
 * or bracketed-garbage domain, over RESOLVE_ADDRESS_MAX) to "error" with "5.1.3 bad address
 * syntax". The error and retry transports' nexthop is "<dsn> <text>".
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"

#define RESOLVE_ADDRESS_MAX 2048U

typedef enum ResolveClass {
        RESOLVE_CLASS_LOCAL,
        RESOLVE_CLASS_RELAY,
        RESOLVE_CLASS_DEFAULT,
        RESOLVE_CLASS_ERROR,            /* an error route made by the resolver itself */
} ResolveClass;

typedef struct Resolver Resolver;

/* resolver_new - take what resolving needs from C (copies: C may go away) */
int resolver_new(const Conf *c, Resolver **ret);
Resolver *resolver_free(Resolver *r);

typedef struct Resolved {
        ResolveClass class;
        char *transport;                /* malloc'ed */
        char *nexthop;                  /* malloc'ed; never empty */
} Resolved;

/* resolve_address - route ADDRESS (-ENOMEM only: every address gets a route) */
int resolve_address(const Resolver *r, const char *address, Resolved *ret);
void resolved_done(Resolved *r);

/* resolve_local_part - ADDRESS's local part without the domain, in *ret (malloc'ed) */
int resolve_local_part(const char *address, char **ret);
