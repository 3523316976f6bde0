/* SPDX-License-Identifier: MIT */
/*
 * smtpd-config.c - tern-smtpd's configuration, decoded once at start into the Smtpd state
 * (see smtpd.h): limits, networks, domains, restriction lists and their access tables, the
 * queue store and its group commit. Anything wrong stops the daemon with the parameter's name.
 */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>

#include "event.h"
#include "log.h"
#include "smtpd.h"

static int netlist_from_conf(const Conf *c, const char *name, SmtpdNetList *ret)
{
        const char *bad = NULL, *reason = NULL;
        int r = smtpd_netlist_parse(conf_get_list(c, name), ret, &bad, &reason);

        if (r == -EINVAL)
                return log_error_errno(r, "parameter %s: bad entry \"%s\": %s", name, strempty(bad),
                                       strempty(reason));
        if (r < 0)
                return log_error_errno(r, "parameter %s: %m", name);
        return 0;
}

/* local_addresses - this host's addresses (permit_inet_interfaces, local address literals) */
static int local_addresses(SmtpdNetList *ret)
{
        struct ifaddrs *ifa = NULL;
        char **entries = NULL;
        size_t n = 0;
        int r;

        if (getifaddrs(&ifa) < 0)
                ifa = NULL;     /* loopback below still counts */
        for (struct ifaddrs *i = ifa; i; i = i->ifa_next)
                n++;
        entries = calloc(n + 3, sizeof(char *));
        if (!entries) {
                freeifaddrs(ifa);
                return -ENOMEM;
        }
        n = 0;
        entries[n++] = strdup("127.0.0.1");
        entries[n++] = strdup("[::1]");
        for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
                char text[INET6_ADDRSTRLEN + 2];

                if (!i->ifa_addr || (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
                        continue;
                if (i->ifa_addr->sa_family == AF_INET)
                        inet_ntop(AF_INET, &((struct sockaddr_in *) i->ifa_addr)->sin_addr, text, sizeof(text));
                else {
                        const struct in6_addr *a = &((struct sockaddr_in6 *) i->ifa_addr)->sin6_addr;
                        if (IN6_IS_ADDR_LINKLOCAL(a))
                                continue;       /* a scope the text form cannot carry */
                        text[0] = '[';
                        inet_ntop(AF_INET6, a, text + 1, sizeof(text) - 2);
                        strcat(text, "]");
                }
                entries[n++] = strdup(text);
        }
        freeifaddrs(ifa);
        r = 0;
        for (size_t i = 0; i < n; i++)
                if (!entries[i])
                        r = -ENOMEM;
        if (r >= 0)
                r = smtpd_netlist_parse(entries, ret, NULL, NULL);
        for (size_t i = 0; i < n; i++)
                free(entries[i]);
        free(entries);
        return r;
}

/* The longest access table read (a texthash file is for a few hundred sites, not a database). */
#define SMTPD_TABLE_MAX (16U * 1024U * 1024U)

/* load_tables - every check_*_access table that the restriction lists LISTS (parameters NAMES)
 * name: texthash:/path only, each read once */
static int load_tables(Smtpd *d, const char *const *names, char *const *const *lists, size_t n_lists)
{
        bool parent_style = conf_list_contains(conf_get_list(d->conf, "parent_domain_matches_subdomains"),
                                               "smtpd_access_maps");
        size_t n = 0;

        for (size_t i = 0; i < n_lists; i++)
                for (char *const *p = lists[i]; p && *p; p++)
                        n++;
        d->table_names = calloc(n + 1, sizeof(char *));
        d->tables = calloc(n + 1, sizeof(SmtpdAccessTable *));
        if (!d->table_names || !d->tables)
                return -ENOMEM;
        n = 0;
        for (size_t i = 0; i < n_lists; i++)
                for (char *const *p = lists[i]; p && *p; p++) {
                        const char *table = p[1], *reason = NULL;
                        _cleanup_(freep) char *text = NULL;
                        size_t len = 0, line = 0;
                        int r;

                        if (strncasecmp(*p, "check_", 6) != 0 || !table)
                                continue;
                        p++;
                        if (conf_list_contains(d->table_names, table))
                                continue;
                        if (strncmp(table, "texthash:", 9) != 0)
                                return log_error_errno(EINVAL, "parameter %s: table %s: only texthash:/path "
                                                               "tables are supported", names[i], table);
                        r = conf_read_text(table + 9, SMTPD_TABLE_MAX, &text, &len);
                        if (r < 0)
                                return log_error_errno(r, "parameter %s: table %s: %m", names[i], table);
                        r = smtpd_access_table_parse(text, len, false, &d->tables[n], &line, &reason);
                        if (r < 0)
                                return log_error_errno(r, "parameter %s: table %s, line %zu: %s", names[i], table,
                                                       line, strempty(reason));
                        smtpd_access_table_set_parent_style(d->tables[n], parent_style);
                        d->table_names[n] = strdup(table);
                        if (!d->table_names[n])
                                return -ENOMEM;
                        n++;
                }
        return 0;
}

int smtpd_configure(Smtpd *d, const Conf *c, sd_event *event)
{
        _cleanup_(freep) char *qmgr_socket = NULL;
        static const char *const restriction_params[] = {
                "smtpd_client_restrictions", "smtpd_helo_restrictions", "smtpd_sender_restrictions",
                "smtpd_relay_restrictions",  "smtpd_recipient_restrictions", "smtpd_etrn_restrictions",
        };
        char *const *lists[ELEMENTSOF(restriction_params)];
        const char *mode, *bad;
        int r;

        d->conf = c;
        d->event = event;
        d->myhostname = conf_get_string(c, "myhostname");
        d->myorigin = conf_get_string(c, "myorigin");
        d->banner = conf_get_string(c, "smtpd_banner");
        d->timeout_usec = (uint64_t) conf_get_time(c, "smtpd_timeout") * USEC_PER_SEC;
        d->error_sleep_usec = (uint64_t) conf_get_time(c, "smtpd_error_sleep_time") * USEC_PER_SEC;
        d->ipc_timeout_usec = (uint64_t) conf_get_time(c, "ipc_timeout") * USEC_PER_SEC;
        d->delay_warning_time = conf_get_time(c, "delay_warning_time");
        d->hard_error_limit = (unsigned) conf_get_int(c, "smtpd_hard_error_limit");
        d->soft_error_limit = (unsigned) conf_get_int(c, "smtpd_soft_error_limit");
        d->junk_command_limit = (unsigned) conf_get_int(c, "smtpd_junk_command_limit");
        d->recipient_limit = (size_t) conf_get_int(c, "smtpd_recipient_limit");
        d->recipient_overshoot_limit = (size_t) conf_get_int(c, "smtpd_recipient_overshoot_limit");
        d->line_length_limit = (size_t) conf_get_int(c, "line_length_limit");
        d->session_limit = (size_t) conf_get_int(c, "default_process_limit");
        d->client_connection_limit = (size_t) conf_get_int(c, "smtpd_client_connection_count_limit");
        d->message_size_limit = conf_get_size(c, "message_size_limit");
        d->helo_required = conf_get_bool(c, "smtpd_helo_required");
        d->delay_reject = conf_get_bool(c, "smtpd_delay_reject");
        d->disable_vrfy = conf_get_bool(c, "disable_vrfy_command");
        d->strict_rfc821 = conf_get_bool(c, "strict_rfc821_envelopes");
        d->peername_lookup = conf_get_bool(c, "smtpd_peername_lookup");
        d->allow_min_user = conf_get_bool(c, "allow_min_user");
        d->discard_ehlo_keywords = conf_get_list(c, "smtpd_discard_ehlo_keywords");

        mode = conf_get_string(c, "smtpd_forbid_bare_newline");
        if (strcasecmp(mode, "normalize") == 0 || strcasecmp(mode, "yes") == 0)
                d->bare_lf = SMTPD_BARE_LF_NORMALIZE;
        else if (strcasecmp(mode, "reject") == 0)
                d->bare_lf = SMTPD_BARE_LF_REJECT;
        else if (strcasecmp(mode, "no") == 0)
                d->bare_lf = SMTPD_BARE_LF_NO;
        else
                return log_error_errno(EINVAL, "parameter smtpd_forbid_bare_newline: bad value \"%s\": "
                                               "expected normalize, yes, reject or no", mode);

        for (char *const *p = conf_get_list(c, "local_header_rewrite_clients"); p && *p; p++) {
                if (strcasecmp(*p, "permit_inet_interfaces") == 0)
                        d->header_rewrite |= SMTPD_REWRITE_INET_INTERFACES;
                else if (strcasecmp(*p, "permit_mynetworks") == 0)
                        d->header_rewrite |= SMTPD_REWRITE_MYNETWORKS;
                else if (strcasecmp(*p, "static:all") == 0)
                        d->header_rewrite |= SMTPD_REWRITE_ALL;
                else
                        return log_error_errno(EINVAL, "parameter local_header_rewrite_clients: unsupported "
                                                       "entry \"%s\"", *p);
        }

        if ((r = netlist_from_conf(c, "mynetworks", &d->mynetworks)) < 0 ||
            (r = netlist_from_conf(c, "smtpd_forbid_bare_newline_exclusions", &d->bare_lf_exclusions)) < 0 ||
            (r = netlist_from_conf(c, "smtpd_client_event_limit_exceptions", &d->event_limit_exceptions)) < 0)
                return r;
        r = local_addresses(&d->local_addrs);
        if (r < 0)
                return log_error_errno(r, "cannot list this host's addresses: %m");
        if ((r = domain_list_from_conf(c, "mydestination", &d->mydestination)) < 0 ||
            (r = domain_list_from_conf(c, "relay_domains", &d->relay_domains)) < 0)
                return log_error_errno(r, "cannot read mydestination or relay_domains: %m");
        d->domains = (SmtpdDomains){
                .mydestination = &d->mydestination,
                .relay_domains = &d->relay_domains,
                .local_addrs = &d->local_addrs,
                .allow_percent_hack = conf_get_bool(c, "allow_percent_hack"),
        };

        for (size_t i = 0; i < ELEMENTSOF(restriction_params); i++) {
                lists[i] = conf_get_list(c, restriction_params[i]);
                if (smtpd_restrictions_valid(lists[i], &bad) < 0)
                        return log_error_errno(EINVAL, "parameter %s: unknown restriction \"%s\"",
                                               restriction_params[i], strempty(bad));
        }
        d->client_restrictions = lists[0];
        d->helo_restrictions = lists[1];
        d->sender_restrictions = lists[2];
        d->relay_restrictions = lists[3];
        d->recipient_restrictions = lists[4];
        d->etrn_restrictions = lists[5];
        /* Never an open relay: with both lists empty Postfix refuses to run (it requires one of
         * them to hold reject_unauth_destination or the like); so does tern. */
        if ((!lists[3] || !*lists[3]) && (!lists[4] || !*lists[4]))
                return log_error_errno(EINVAL, "smtpd_relay_restrictions and smtpd_recipient_restrictions "
                                               "are both empty: that would be an open relay");
        r = load_tables(d, restriction_params, lists, ELEMENTSOF(lists));
        if (r < 0)
                return r;

        r = queue_store_open(conf_get_string(c, "queue_directory"), conf_get_list(c, "hash_queue_names"),
                             (unsigned) conf_get_int(c, "hash_queue_depth"), &d->store);
        if (r < 0)
                return log_error_errno(r, "cannot open the queue %s: %m", conf_get_string(c, "queue_directory"));
        if ((r = service_runtime_path(c, "qmgr", &qmgr_socket)) < 0 ||
            (r = service_runtime_path(c, "flush", &d->flush_socket)) < 0)
                return r;
        return queue_committer_new(d->event, d->store, qmgr_socket, d->ipc_timeout_usec, &d->committer);
}

void smtpd_done(Smtpd *d)
{
        for (size_t i = 0; i < d->n_listeners; i++)
                sd_event_source_disable_unref(d->listeners[i]);
        free(d->listeners);
        smtpd_session_free_all(d);
        d->committer = queue_committer_free(d->committer);
        d->store = queue_store_free(d->store);
        free(d->flush_socket);
        for (size_t i = 0; d->table_names && d->table_names[i]; i++) {
                free(d->table_names[i]);
                smtpd_access_table_free(d->tables[i]);
        }
        free(d->table_names);
        free(d->tables);
        smtpd_netlist_done(&d->mynetworks);
        smtpd_netlist_done(&d->bare_lf_exclusions);
        smtpd_netlist_done(&d->event_limit_exceptions);
        smtpd_netlist_done(&d->local_addrs);
        domain_list_done(&d->mydestination);
        domain_list_done(&d->relay_domains);
}
