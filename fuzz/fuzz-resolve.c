/* SPDX-License-Identifier: MIT */
/*
 * fuzz-resolve.c - libFuzzer target for recipient routing (src/qmgr/resolve.c)
 *
 * Two modes, chosen by the first byte:
 *   - anything but 0x01: the whole input, as a NUL-terminated copy, is a recipient address
 *     routed by resolve_address() over a fixed configuration: mydestination with a ".domain",
 *     relay_domains with a negation and parent matching, and a [transport] table with "*",
 *     ".parent" entries, domain and whole-address keys, error and retry routes and empty fields (a key cannot be an address
 *     literal: "[...]" opens a section);
 *   - 0x01: the rest up to the first NUL byte is a main.cf text for conf_load_string(), the
 *     bytes after it the address (0x01 is a control character, which no valid address has, so
 *     the first mode loses nothing by giving it up).
 * Every address must get a route (only -ENOMEM may fail): a non-empty transport and nexthop,
 * a known class, "error" for the resolver's own error routes; the same route again when
 * resolved twice and when its ASCII letters are upper-cased (domains, table keys and the
 * local part of a table key are compared without case); resolve_local_part() gives a prefix
 * of the address. Never crash, never leak. Seeds: fuzz/corpus/resolve/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "macro.h"
#include "resolve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MODE_CONF 0x01

static const char fixed_conf[] =
        "myhostname = mail.example.org\n"
        "mydestination = $myhostname, localhost, .local.example\n"
        "relay_domains = !no.relay.example, relay.example, .backup.example\n"
        "parent_domain_matches_subdomains = relay_domains\n"
        "local_transport = local:$myhostname\n"
        "[transport]\n"
        "* = smtp:[fallback.example]:2525\n"
        ".parent.example = relay:\n"
        "parent.example = :[parent-mx.example]\n"
        "example.com = :[mx.example.com]\n"
        "special.example = smtp\n"
        "user@special.example = error:5.1.1 mailbox unavailable\n"
        "Full@Address.example = lmtp:unix:/run/lmtp\n"
        "empty.example = :\n"
        "later.example = retry:4.3.2 try later\n";

static Resolver *fixed;

static Resolver *resolver_from(const char *text, size_t len)
{
        Conf *c = NULL;
        Resolver *r = NULL;
        char *err = NULL;

        if (conf_load_string(text, len, "main.cf", "qmgr", &c, &err) < 0) {
                free(err);
                return NULL;
        }
        if (resolver_new(c, &r) < 0)
                r = NULL;
        conf_free(c);
        return r;
}

static void check_route(const char *address, const Resolved *res)
{
        if (!res->transport || !res->nexthop || !*res->transport || !*res->nexthop)
                abort();
        if (res->class != RESOLVE_CLASS_LOCAL && res->class != RESOLVE_CLASS_RELAY &&
            res->class != RESOLVE_CLASS_DEFAULT && res->class != RESOLVE_CLASS_ERROR)
                abort();
        if (res->class == RESOLVE_CLASS_ERROR && !streq(res->transport, "error"))
                abort();
        if (!*address && res->class != RESOLVE_CLASS_ERROR)
                abort();
}

static bool same_route(const Resolved *a, const Resolved *b)
{
        return a->class == b->class && streq(a->transport, b->transport) && streq(a->nexthop, b->nexthop);
}

static void check(const Resolver *r, const char *address)
{
        Resolved res = {}, again = {};
        char *upper, *local = NULL;

        if (resolve_address(r, address, &res) < 0)
                return;         /* -ENOMEM only */
        check_route(address, &res);

        if (resolve_address(r, address, &again) >= 0) {
                if (!same_route(&res, &again))
                        abort();
                resolved_done(&again);
        }

        upper = strdup(address);
        if (upper) {
                for (char *p = upper; *p; p++)
                        if (*p >= 'a' && *p <= 'z')
                                *p = (char) (*p - 'a' + 'A');
                if (resolve_address(r, upper, &again) >= 0) {
                        if (!same_route(&res, &again))
                                abort();
                        resolved_done(&again);
                }
                free(upper);
        }

        if (resolve_local_part(address, &local) >= 0) {
                if (strncmp(local, address, strlen(local)) != 0)
                        abort();
                free(local);
        }
        resolved_done(&res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const uint8_t *nul;
        char *address;

        if (!fixed) {
                fixed = resolver_from(fixed_conf, strlen(fixed_conf));
                if (!fixed)
                        abort();        /* the fixed configuration must load */
        }

        if (size > 0 && data[0] == MODE_CONF) {
                Resolver *r;

                nul = memchr(data + 1, '\0', size - 1);
                if (!nul)
                        return 0;
                r = resolver_from((const char *) data + 1, (size_t) (nul - data - 1));
                if (!r)
                        return 0;
                address = strndup((const char *) nul + 1, size - (size_t) (nul + 1 - data));
                if (address)
                        check(r, address);
                free(address);
                resolver_free(r);
                return 0;
        }

        address = strndup((const char *) data, size);
        if (!address)
                return 0;
        check(fixed, address);
        free(address);
        return 0;
}
