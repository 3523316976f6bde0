/* SPDX-License-Identifier: MIT */
/*
 * smtpd-access.h - the SMTP server's access decisions, pure: client networks (mynetworks), where
 * a recipient goes (for reject_unauth_destination), access tables, and the restriction lists
 * (smtpd_relay_restrictions, smtpd_recipient_restrictions, smtpd_etrn_restrictions, ...) as
 * Postfix's smtpd_check.c evaluates them
 *
 * tern must never be an open relay: every address form that Postfix's trivial-rewrite would send
 * elsewhere than the domain after the '@' is followed here (quoted local parts, the percent hack,
 * source routes already removed by the parser, address literals).
 * No I/O: the server reads main.cf and any table file and passes the values and text here.
 */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "domain-list.h"
#include "smtpd-proto.h"

/* ---- networks ------------------------------------------------------------------------------- */

typedef struct SmtpdNet {
        int family;                     /* AF_INET or AF_INET6 */
        uint8_t addr[16];               /* network order; 4 bytes used for AF_INET */
        unsigned prefix;                /* 0..32 or 0..128 */
} SmtpdNet;

typedef struct SmtpdNetList {
        SmtpdNet *nets;
        size_t n;
} SmtpdNetList;

/*
 * smtpd_netlist_parse - Postfix's mynetworks entries (already split on commas and blanks): an
 * IPv4 address or network ("192.0.2.1", "127.0.0.0/8"), an IPv6 one in brackets with or without
 * the prefix outside ("[::1]", "[2001:db8::]/32", "[::ffff:127.0.0.0]/104"; also accepted without
 * brackets). A network with non-zero host bits is refused as Postfix refuses it ("non-null host
 * address bits"); so are host names, "type:table" and "/file" entries (tern has no tables here),
 * and prefixes out of range. -EINVAL with *ret_bad (the entry) and *ret_reason (static text).
 */
int smtpd_netlist_parse(char *const *entries, SmtpdNetList *ret, const char **ret_bad, const char **ret_reason);
void smtpd_netlist_done(SmtpdNetList *l);
/* smtpd_netlist_match - is the client address ADDR (FAMILY) in L? An IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d) matches IPv4 networks as a.b.c.d, and IPv6 networks as itself. */
bool smtpd_netlist_match(const SmtpdNetList *l, int family, const void *addr);

/* ---- where a recipient goes ----------------------------------------------------------------- */

typedef enum SmtpdDest {
        SMTPD_DEST_LOCAL,               /* mydestination, or one of this host's address literals */
        SMTPD_DEST_RELAY,               /* relay_domains */
        SMTPD_DEST_REMOTE,              /* anywhere else: relaying */
} SmtpdDest;

typedef struct SmtpdDomains {
        const DomainList *mydestination;
        const DomainList *relay_domains;
        const SmtpdNetList *local_addrs;        /* this host's addresses (inet_interfaces, lo): an
                                                 * address literal "[a.b.c.d]" among them is local */
        bool allow_percent_hack;        /* Postfix's default yes */
} SmtpdDomains;

/*
 * smtpd_rcpt_destination - where ADDR (as smtpd_parse_rcpt gave it) goes, as Postfix resolves it
 * for reject_unauth_destination:
 *   - the domain is what follows the last '@' outside a quoted string; without one the address
 *     is local (qualified with $myorigin);
 *   - an address literal ("[192.0.2.1]", "[ipv6:...]") is local when it is one of local_addrs,
 *     remote otherwise; a malformed literal is remote;
 *   - a domain in mydestination is local, but then the local part (dequoted) is looked at again:
 *     "a@b" inside quotes, a bang path "site!user" (Postfix's swap_bangpath = yes), or with
 *     allow_percent_hack "user%other" (the last '%'), names another domain, which decides
 *     instead (repeatedly: "u%v%w@local");
 *   - a domain in relay_domains is relay, unless its local part still holds '@', '!' or '%'
 *     (Postfix's RESOLVE_FLAG_ROUTED with allow_untrusted_routing = no): then it is remote;
 *   - anything else is remote.
 * Domains are compared lower-cased, without a trailing dot. The domain that decided is copied
 * into DOMAIN_BUF (SIZE) unless it is NULL ("" for a local address without a domain).
 */
SmtpdDest smtpd_rcpt_destination(const SmtpdDomains *d, const char *addr, char *domain_buf, size_t size);

/* ---- access tables -------------------------------------------------------------------------- */

/*
 * A small access table (check_etrn_access and friends): "key action" pairs, keys lower-cased
 * domains (a key matches the domain and, with parent_domain_matches_subdomains semantics through
 * domain-list.h, its subdomains only as ".domain"). Actions: OK (or RELAY), REJECT [text], DUNNO,
 * DEFER [text], or a code "4NN text"/"5NN text"; anything else is refused by the parser.
 * smtpd_access_table_parse - TEXT in Postfix's texthash format (one "key value" per line, '#'
 * comments and empty lines skipped) or, with INLINE, the inside of "inline:{ key=value, ... }".
 * -EINVAL with *ret_line (1-based line or entry) and *ret_reason.
 */
typedef struct SmtpdAccessTable SmtpdAccessTable;

int smtpd_access_table_parse(const char *text, size_t len, bool is_inline, SmtpdAccessTable **ret,
                             size_t *ret_line, const char **ret_reason);
SmtpdAccessTable *smtpd_access_table_free(SmtpdAccessTable *t);
/* smtpd_access_table_set_parent_style - PARENT_STYLE (smtpd_access_maps listed in
 * parent_domain_matches_subdomains, Postfix's default): a key "domain" also matches its
 * subdomains; otherwise (the parser's default) only a key ".domain" does */
void smtpd_access_table_set_parent_style(SmtpdAccessTable *t, bool parent_style);
/* smtpd_access_table_lookup - the action for DOMAIN (exact, then each parent as the style says), or NULL */
const char *smtpd_access_table_lookup(const SmtpdAccessTable *t, const char *domain);

/* ---- restriction lists ---------------------------------------------------------------------- */

typedef enum SmtpdVerdict {
        SMTPD_DUNNO,                    /* the list ended without a decision: permit */
        SMTPD_PERMIT,
        SMTPD_REJECT,                   /* *reply set: 5XX */
        SMTPD_DEFER,                    /* *reply set: 4XX */
} SmtpdVerdict;

/* What a restriction list is evaluated for (the "reply class" in Postfix's texts). */
typedef enum SmtpdStage {
        SMTPD_STAGE_CLIENT,             /* "Client host" */
        SMTPD_STAGE_HELO,               /* "Helo command" */
        SMTPD_STAGE_SENDER,             /* "Sender address" */
        SMTPD_STAGE_RECIPIENT,          /* "Recipient address" */
        SMTPD_STAGE_ETRN,               /* "Etrn command" */
} SmtpdStage;

typedef struct SmtpdCheck {
        SmtpdStage stage;
        bool client_in_mynetworks;
        const char *client_name;        /* "host.example" or "unknown" */
        const char *client_addr;        /* "192.0.2.1" */
        const char *object;             /* what the reply names: the recipient, sender, ETRN
                                         * domain or HELO name (without <>) */
        SmtpdDest dest;                 /* RECIPIENT: smtpd_rcpt_destination()'s verdict */
        const SmtpdAccessTable *const *tables;  /* the check_*_access tables named in the list,
                                                 * in the order of TABLE_NAMES */
        char *const *table_names;       /* NULL-terminated "texthash:/etc/tern/etrn" ... */
} SmtpdCheck;

/*
 * smtpd_restrictions_valid - is every entry of LIST a restriction this module knows (for the
 * server to refuse a bad main.cf at start): permit, reject, defer, dunno, permit_mynetworks,
 * reject_unauth_destination, defer_unauth_destination, permit_auth_destination,
 * reject_unknown_client_hostname (client_name "unknown"), check_etrn_access TABLE,
 * check_recipient_access TABLE, check_client_access TABLE (the next entry is the table name),
 * warn_if_reject (the next restriction only logs), permit_sasl_authenticated (never permits:
 * tern has no SASL; it is in Postfix's default smtpd_relay_restrictions). -EINVAL with *ret_bad naming the entry.
 */
int smtpd_restrictions_valid(char *const *list, const char **ret_bad);

/*
 * smtpd_restrictions_eval - LIST in order until one decides, as Postfix's generic_checks():
 * permit/reject/defer decide; permit_mynetworks permits a client in mynetworks;
 * reject_unauth_destination / defer_unauth_destination reject / defer a RECIPIENT whose dest is
 * remote ("554 5.7.1 <object>: Relay access denied" / "454 4.7.1 <object>: Relay access
 * denied"); permit_auth_destination permits one that is local or relay; check_*_access looks the
 * object's domain (etrn: the domain itself; client: the client name and address) up in its table
 * and acts on OK/REJECT/DEFER/DUNNO/"NNN text". A reject without text is Postfix's generic one:
 * "554 5.7.1 <object>: Recipient address rejected: Access denied" (the stage's class name; at
 * the CLIENT stage, and for check_client_access, the object is "client_name[client_addr]" and
 * the class "Client host"); an access table's text replaces "Access denied", its DEFER is
 * "450 4.7.1 ...", its "NNN text" is "NNN N.7.1 <object>: ... rejected: text" (N.7.1 unless the
 * text starts with an enhanced code). The restriction "defer" is "450 4.3.2 <object>: ...
 * rejected: Try again later"; reject_unknown_client_hostname is "450 4.7.25 Client host
 * rejected: cannot find your hostname, [client_addr]" (SMTPD_DEFER); an unknown restriction or
 * a table missing from TABLE_NAMES is "451 4.3.5 Server configuration error" (SMTPD_DEFER).
 * The reply's dsn and text are written into BUF (SIZE) and *ret_reply points there. With
 * SMTPD_PERMIT or SMTPD_DUNNO, *ret_reply holds the last reply that warn_if_reject turned into a
 * warning (for the server to log as "reject_warning"), or code 0.
 */
SmtpdVerdict smtpd_restrictions_eval(char *const *list, const SmtpdCheck *check, char *buf, size_t size,
                                     SmtpdReply *ret_reply);
