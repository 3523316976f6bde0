/* SPDX-License-Identifier: MIT */
/*
 * smtp.c - tern-smtp: Postfix's smtp(8) and lmtp(8) delivery agent
 *
 * Serves io.tern.Delivery.Deliver for the transports smtp and relay (SMTP) and lmtp (LMTP, with
 * -t lmtp): one process per tern-qmgr connection, one delivery at a time, many per process up to
 * max_use. The message comes as the queue file descriptor qmgr passes; the agent needs no spool
 * access. Each recipient's result is logged in Postfix's format ("to=<...>, relay=mx[addr]:25,
 * conn_use=2, delay=..., delays=a/b/c/d, dsn=2.0.0, status=sent (250 ...)") and answered to qmgr,
 * which keeps the queue file, the defer/bounce logs and the fast flush logs.
 *
 * Configuration: the smtp_* parameters, read from the [TRANSPORT] section's view of main.cf (so
 * an [lmtp] section sets the LMTP client's timeouts); see tern-smtp(8). Sessions are shared with
 * every other tern-smtp process through tern-scache (runtime_directory/scache).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "delivery-agent.h"
#include "domain-list.h"
#include "event.h"
#include "log.h"
#include "macro.h"
#include "smtp.h"

static SmtpConfig config;
static SmtpCache cache;

static uint64_t usec(const Conf *c, const char *name)
{
        return (uint64_t) conf_get_time(c, name) * USEC_PER_SEC;
}

int smtp_config_load(const Conf *c, const char *transport, SmtpConfig *ret)
{
        char *const *protocols = conf_get_list(c, "inet_protocols");
        SmtpConfig cfg = {
                .lmtp = streq(transport, "lmtp"),
                .service = transport,
                .helo_name = conf_get_string(c, "smtp_helo_name"),
                .connect_timeout = usec(c, "smtp_connect_timeout"),
                .helo_timeout = usec(c, "smtp_helo_timeout"),
                .mail_timeout = usec(c, "smtp_mail_timeout"),
                .rcpt_timeout = usec(c, "smtp_rcpt_timeout"),
                .data_init_timeout = usec(c, "smtp_data_init_timeout"),
                .data_xfer_timeout = usec(c, "smtp_data_xfer_timeout"),
                .data_done_timeout = usec(c, "smtp_data_done_timeout"),
                .rset_timeout = usec(c, "smtp_rset_timeout"),
                .quit_timeout = usec(c, "smtp_quit_timeout"),
                .mx_address_limit = (unsigned) conf_get_int(c, "smtp_mx_address_limit"),
                .mx_session_limit = (unsigned) conf_get_int(c, "smtp_mx_session_limit"),
                .address_preference = conf_get_string(c, "smtp_address_preference"),
                .bind_address = conf_get_string(c, "smtp_bind_address"),
                .bind_address6 = conf_get_string(c, "smtp_bind_address6"),
                .skip_5xx_greeting = conf_get_bool(c, "smtp_skip_5xx_greeting"),
                .defer_if_no_mx_address_found = conf_get_bool(c, "smtp_defer_if_no_mx_address_found"),
                .myhostname = conf_get_string(c, "myhostname"),
                .cache_destinations = conf_get_list(c, "smtp_connection_cache_destinations"),
                .cache_on_demand = conf_get_bool(c, "smtp_connection_cache_on_demand"),
                .cache_time_limit = conf_get_time(c, "smtp_connection_cache_time_limit"),
                .reuse_time_limit = conf_get_time(c, "smtp_connection_reuse_time_limit"),
                .reuse_count_limit = conf_get_int(c, "smtp_connection_reuse_count_limit"),
                .cache_protocol_timeout = usec(c, "connection_cache_protocol_timeout"),
        };
        int r;

        /* inet_protocols: all, or any of ipv4 and ipv6 */
        for (size_t i = 0; protocols && protocols[i]; i++) {
                if (strcasecmp(protocols[i], "all") == 0)
                        cfg.ipv4 = cfg.ipv6 = true;
                else if (strcasecmp(protocols[i], "ipv4") == 0)
                        cfg.ipv4 = true;
                else if (strcasecmp(protocols[i], "ipv6") == 0)
                        cfg.ipv6 = true;
                else {
                        log_error("bad inet_protocols value: %s (expected all, ipv4, ipv6)", protocols[i]);
                        return -EINVAL;
                }
        }
        if (!cfg.ipv4 && !cfg.ipv6) {
                log_error("inet_protocols enables no protocol");
                return -EINVAL;
        }
        if (!streq(cfg.address_preference, "any") && !streq(cfg.address_preference, "ipv4") &&
            !streq(cfg.address_preference, "ipv6")) {
                log_error("bad smtp_address_preference value: %s (expected any, ipv4, ipv6)",
                          cfg.address_preference);
                return -EINVAL;
        }
        if (isempty(cfg.helo_name) || strpbrk(cfg.helo_name, " \t\r\n")) {
                log_error("bad smtp_helo_name value: \"%s\"", strempty(cfg.helo_name));
                return -EINVAL;
        }
        r = service_runtime_path(c, "scache", &cfg.scache_path);
        if (r < 0)
                return r;
        *ret = cfg;
        return 0;
}

void smtp_config_done(SmtpConfig *cfg)
{
        cfg->scache_path = mfree(cfg->scache_path);
}

static int smtp_setup(DeliveryAgent *a, void *userdata)
{
        int r;

        r = smtp_config_load(delivery_agent_conf(a), delivery_agent_transport(a), &config);
        if (r < 0)
                return r;
        cache = (SmtpCache){.cfg = &config};
        return 0;
}

static int smtp_deliver_job(DeliveryJob *job, void *userdata)
{
        smtp_deliver(job, &config, &cache);
        return 0;
}

static void smtp_shutdown(DeliveryAgent *a, void *userdata)
{
        smtp_cache_done(&cache);
        smtp_config_done(&config);
}

int main(int argc, char **argv)
{
        static const DeliveryAgentSpec spec = {
                .program = "smtp",
                .description = "Deliver mail over SMTP (transports smtp, relay) or LMTP (-t lmtp), sharing "
                               "connections through tern-scache (io.tern.Delivery).",
                .setup = smtp_setup,
                .deliver = smtp_deliver_job,
                .shutdown = smtp_shutdown,
        };

        return delivery_agent_main(&spec, argc, argv);
}
