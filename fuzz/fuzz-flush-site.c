/* SPDX-License-Identifier: MIT */
/*
 * fuzz-flush-site.c - libFuzzer target for fast flush sites (src/lib/flush-site.c) and
 * domain_list matching (src/lib/domain-list.c)
 *
 * The input, up to its first NUL byte and at most FLUSH_SITE_INPUT_MAX + 1 bytes (one more than
 * is accepted, so that the bound is exercised), is a site as ETRN, sendmail -qR or a varlink
 * caller would name it. flush_site_canonical() either refuses it (-EINVAL; -EADDRNOTAVAIL
 * only for a bracketed literal "[...]") or gives a name that is lower-case ASCII, a valid host name
 * of at most 255 bytes, and its own canonical form; its logfile name has the same length and
 * passes flush_file_name_valid() (so it holds no '/' and is not "." or ".."). Both the raw input
 * and the canonical name are matched against two fixed DomainLists (parent matching on and
 * off); for the canonical name the result must agree with the list's meaning, written out here
 * by hand. Never crash, never leak. Seeds: fuzz/corpus/flush-site/.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "domain-list.h"
#include "flush-site.h"
#include "macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const patterns[] = {
        "!no.example.com",      "example.com",           ".sub.example.org",
        "hash:/etc/tern/flush", "XN--BCHER-KVA.example", NULL,
};

static DomainList with_parent, without_parent;
static bool lists_ready;

/* is_or_under - D is SUFFIX or a subdomain of it */
static bool is_or_under(const char *d, const char *suffix)
{
        size_t dl = strlen(d), sl = strlen(suffix);

        if (streq(d, suffix))
                return true;
        return dl > sl + 1 && d[dl - sl - 1] == '.' && streq(d + dl - sl, suffix);
}

/* under - D is a proper subdomain of SUFFIX */
static bool under(const char *d, const char *suffix)
{
        return !streq(d, suffix) && is_or_under(d, suffix);
}

static bool expected_match(const char *d, bool parent)
{
        /* "!no.example.com" first */
        if (streq(d, "no.example.com") || (parent && under(d, "no.example.com")))
                return false;
        if (streq(d, "example.com") || (parent && under(d, "example.com")))
                return true;
        /* ".sub.example.org": subdomains only; its leading dot makes "x.sub.example.org" match */
        if (under(d, "sub.example.org"))
                return true;
        /* the table never matches; the upper-case pattern was lower-cased */
        return streq(d, "xn--bcher-kva.example") || (parent && under(d, "xn--bcher-kva.example"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char site[FLUSH_SITE_INPUT_MAX + 2], canonical[FLUSH_SITE_MAX], again[FLUSH_SITE_MAX];
        char file[FLUSH_SITE_MAX];
        size_t n = MIN(size, sizeof(site) - 1), len;
        int r;

        if (!lists_ready) {
                if (domain_list_new((char *const *) patterns, true, &with_parent) < 0 ||
                    domain_list_new((char *const *) patterns, false, &without_parent) < 0)
                        abort();
                lists_ready = true;
        }

        memcpy(site, data, n);
        site[n] = '\0';
        len = strlen(site);

        /* any string may be matched without harm (callers pass lower case; this one may not be) */
        (void) domain_list_match(&with_parent, site);
        (void) domain_list_match(&without_parent, site);
        (void) valid_hostname(site);

        r = flush_site_canonical(site, canonical);
        if (r == -EADDRNOTAVAIL) {
                /* only a well-formed literal: "[...]" around an address */
                if (site[0] != '[' || len < 3 || site[len - 1] != ']' || len > FLUSH_SITE_INPUT_MAX)
                        abort();
                return 0;
        }
        if (r == -EINVAL)
                return 0;
        if (r != 0 || len == 0 || len > FLUSH_SITE_INPUT_MAX || site[0] == '[')
                abort();

        /* lower-case ASCII, a valid host name, and canonical as itself */
        if (strlen(canonical) >= FLUSH_SITE_MAX || !valid_hostname(canonical))
                abort();
        for (const char *p = canonical; *p; p++)
                if ((unsigned char) *p >= 0x80 || (*p >= 'A' && *p <= 'Z'))
                        abort();
        if (flush_site_canonical(canonical, again) != 0 || !streq(again, canonical))
                abort();

        /* a logfile name that can only be a file in flush/ */
        flush_site_file_name(canonical, file);
        if (!flush_file_name_valid(file) || strchr(file, '/') || streq(file, ".") || streq(file, ".."))
                abort();
        if (strlen(file) != strlen(canonical))
                abort();
        for (size_t i = 0; file[i]; i++)
                if ((file[i] == '_') != !((canonical[i] >= 'a' && canonical[i] <= 'z') ||
                                          (canonical[i] >= '0' && canonical[i] <= '9')))
                        abort();

        /* eligibility as the lists mean it */
        if (domain_list_match(&with_parent, canonical) != expected_match(canonical, true))
                abort();
        if (domain_list_match(&without_parent, canonical) != expected_match(canonical, false))
                abort();
        return 0;
}
