/* SPDX-License-Identifier: MIT */
/*
 * flush-site.h - fast flush sites: canonical names, logfile names, eligibility
 *
 * A site is what ETRN, sendmail -qR and the delivery path name: a recipient domain. Postfix's
 * flush_site_to_path() (postfix-semantics.md §1.3) defines the mapping this follows:
 *   1. the site goes to ASCII: an internationalized name through IDNA2008 with UTS #46
 *      mapping (libidn2; case folded), an ASCII one is lower-cased; one trailing dot goes;
 *      the result must be a syntactically valid host name (valid_hostname());
 *   2. each byte of the result is kept if it is a letter or digit and becomes '_' otherwise:
 *      "Example.COM" -> "example_com", "a-b.example" -> "a_b_example" (two sites may share a
 *      file: harmless over-delivery).
 * Eligibility: the canonical name matches fast_flush_domains (a DomainList; an empty list turns
 * fast flush off). Address literals ("[192.0.2.1]") have no logfile, as in Postfix's EAI
 * builds: they are never eligible.
 *
 * The client library (Postfix's flush_clnt) checks eligibility before it calls tern-flush, and
 * tern-flush checks again. Pure code; no I/O.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "domain-list.h"

/* Input longer than this is refused before any conversion (a domain name has at most 255
 * bytes; UTF-8 input may be up to four times longer than its ASCII form's labels). */
#define FLUSH_SITE_INPUT_MAX 1024
/* A canonical site and a logfile name: at most 255 bytes, and the NUL */
#define FLUSH_SITE_MAX (DOMAIN_NAME_MAX + 1)

/*
 * flush_site_canonical - SITE (any case, UTF-8 or ASCII) as a lower-case ASCII host name in RET.
 * -EINVAL: not a domain name (empty, too long, bad characters, failed IDNA conversion);
 * -EADDRNOTAVAIL: a well-formed address literal "[192.0.2.1]", "[IPv6:...]" (never a logfile;
 * a malformed "[..." is -EINVAL).
 */
int flush_site_canonical(const char *site, char ret[static FLUSH_SITE_MAX]);
/*
 * flush_domains_from_conf - fast_flush_domains of C as a DomainList whose patterns are in the
 * ASCII form sites are compared in: a UTF-8 pattern ("bücher.example", "!.bücher.example") is
 * taken through the same IDNA conversion as a site (its "!" and leading "." kept); one that
 * does not convert stays as written (and can match nothing).
 */
int flush_domains_from_conf(const Conf *c, DomainList *ret);
/* flush_site_file_name - the logfile name of a canonical site (see above) */
void flush_site_file_name(const char *canonical, char ret[static FLUSH_SITE_MAX]);
/* flush_file_name_valid - [A-Za-z0-9_]{1,255}: a name that can only be a file in flush/ */
bool flush_file_name_valid(const char *name);
