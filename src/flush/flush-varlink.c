/* SPDX-License-Identifier: MIT */
/*
 * flush-varlink.c - io.tern.Flush: requests in, through the site rules and flush-log.c
 *
 * Status mapping (Postfix's flush_clnt.h): ok is a reply; bad is InvalidSite/InvalidQueueId;
 * deny is NotEligible (or, with fast_flush_fallback = yes, a full queue run for SendSite);
 * fail is Failed. A site that is not a domain name is InvalidSite, so that garbage never makes a
 * full queue run. Who may ask: Add is the delivery path's (root, mail_owner or its group: an
 * Add from anyone else could fill the spool); the others follow authorized_flush_users, as
 * postqueue -s/-i and sendmail -qR/-qI do (tern checks it here, where the peer's credentials
 * are known, instead of in a set-gid client).
 */
#include <inttypes.h>
#include <string.h>

#include "flush.h"
#include "json-util.h"
#include "log.h"
#include "varlink-idl.h"

static int error_site(VarlinkCall *call, const char *error, const char *site)
{
        return varlink_call_error(call, error, json_pack("{s:s}", "site", site));
}

static int error_failed(VarlinkCall *call, int r)
{
        return varlink_call_error(call, "io.tern.Flush.Failed", json_pack("{s:s}", "reason", strerror(-r)));
}

static int not_authorized(VarlinkCall *call, const char *what)
{
        char buf[32];
        const char *user = varlink_peer_name(varlink_call_peer(call), buf);

        log_warning("%s: not authorized to %s", user, what);
        return varlink_call_error(call, "io.tern.Flush.NotAuthorized", json_pack("{s:s}", "user", user));
}

/* may_flush - authorized_flush_users, and always root and mail_owner (Postfix's postqueue) */
static bool may_flush(Flush *f, VarlinkCall *call)
{
        char buf[32];
        const struct ucred *peer = varlink_call_peer(call);

        return varlink_peer_is_admin(peer) ||
               conf_user_listed(conf_get_list(f->conf, "authorized_flush_users"), varlink_peer_name(peer, buf));
}

/* site_file - the logfile name of SITE, or an error already sent (returns 1 then): InvalidSite
 * for a name that is not a domain, NotEligible for one fast_flush_domains does not list
 * (*ret_eligible false, nothing sent, when the caller handles that itself) */
static int site_file(Flush *f, VarlinkCall *call, const char *site, char name[static FLUSH_SITE_MAX],
                     bool *ret_eligible)
{
        char canonical[FLUSH_SITE_MAX];
        int r;

        r = flush_site_canonical(site, canonical);
        if (r == -EINVAL)
                return error_site(call, "io.tern.Flush.InvalidSite", site) ?: 1;
        *ret_eligible = r >= 0 && !domain_list_empty(&f->domains) && domain_list_match(&f->domains, canonical);
        if (*ret_eligible)
                flush_site_file_name(canonical, name);
        return 0;
}

static int method_add(VarlinkCall *call, json_t *parameters, unsigned flags, void *userdata)
{
        Flush *f = userdata;
        struct {
                const char *site, *queue_id;
        } p = {};
        static const VarlinkField fields[] = {
                {"site", VARLINK_FIELD_STRING, offsetof(__typeof__(p), site), VARLINK_FIELD_MANDATORY},
                {"queueId", VARLINK_FIELD_STRING, offsetof(__typeof__(p), queue_id), VARLINK_FIELD_MANDATORY},
                {},
        };
        char name[FLUSH_SITE_MAX];
        bool eligible;
        int r;

        r = varlink_dispatch(call, parameters, fields, &p);
        if (r < 0)
                return r;
        if (!varlink_peer_is_admin(varlink_call_peer(call)))
                return not_authorized(call, "add to fast flush logfiles");
        if (!queue_id_valid(p.queue_id))
                return varlink_call_error(call, "io.tern.Flush.InvalidQueueId",
                                          json_pack("{s:s}", "queueId", p.queue_id));
        r = site_file(f, call, p.site, name, &eligible);
        if (r != 0)
                return r > 0 ? 0 : r;
        if (!eligible)
                return error_site(call, "io.tern.Flush.NotEligible", p.site);
        r = flush_log_add(f, name, p.queue_id);
        if (r < 0)
                return error_failed(call, r);
        return varlink_call_reply(call, NULL);
}

static int method_send_site(VarlinkCall *call, json_t *parameters, unsigned flags, void *userdata)
{
        Flush *f = userdata;
        struct {
                const char *site;
        } p = {};
        static const VarlinkField fields[] = {
                {"site", VARLINK_FIELD_STRING, offsetof(__typeof__(p), site), VARLINK_FIELD_MANDATORY},
                {},
        };
        char name[FLUSH_SITE_MAX];
        uint64_t moved = 0;
        bool eligible;
        int r;

        r = varlink_dispatch(call, parameters, fields, &p);
        if (r < 0)
                return r;
        if (!may_flush(f, call))
                return not_authorized(call, "flush the mail queue");
        r = site_file(f, call, p.site, name, &eligible);
        if (r != 0)
                return r > 0 ? 0 : r;
        if (!eligible) {
                if (!f->fallback)
                        return error_site(call, "io.tern.Flush.NotEligible", p.site);
                /* the seeds' "slow ETRN": what sendmail -q does (Postfix's mail_flush_deferred) */
                log_info("%s: not eligible for fast flush: flushing the whole queue (fast_flush_fallback)",
                         p.site);
                flush_trigger_qmgr(f, (const char *[]){ "flushDead", "all", "deferred", "incoming" }, 4);
                return varlink_call_reply(call, json_pack("{s:i,s:b}", "moved", 0, "wholeQueue", 1));
        }
        r = flush_log_send(f, name, FLUSH_SEND_SITE, &moved);
        if (r < 0)
                return error_failed(call, r);
        return varlink_call_reply(call, json_pack("{s:I}", "moved", (json_int_t) moved));
}

static int method_send_file(VarlinkCall *call, json_t *parameters, unsigned flags, void *userdata)
{
        Flush *f = userdata;
        struct {
                const char *queue_id;
        } p = {};
        static const VarlinkField fields[] = {
                {"queueId", VARLINK_FIELD_STRING, offsetof(__typeof__(p), queue_id), VARLINK_FIELD_MANDATORY},
                {},
        };
        int r;

        r = varlink_dispatch(call, parameters, fields, &p);
        if (r < 0)
                return r;
        if (!may_flush(f, call))
                return not_authorized(call, "flush the mail queue");
        if (!queue_id_valid(p.queue_id))
                return varlink_call_error(call, "io.tern.Flush.InvalidQueueId",
                                          json_pack("{s:s}", "queueId", p.queue_id));
        (void) flush_log_send_file(f, p.queue_id);
        return varlink_call_reply(call, NULL);
}

static int refresh(VarlinkCall *call, json_t *parameters, Flush *f, int64_t max_age)
{
        int r;

        r = varlink_dispatch(call, parameters, (const VarlinkField[]){ {} }, NULL);
        if (r < 0)
                return r;
        if (!may_flush(f, call))
                return not_authorized(call, "flush the mail queue");
        r = flush_refresh_start(f, max_age);
        if (r < 0)
                return error_failed(call, r);
        return varlink_call_reply(call, NULL);
}

static int method_refresh(VarlinkCall *call, json_t *parameters, unsigned flags, void *userdata)
{
        Flush *f = userdata;

        return refresh(call, parameters, f, f->refresh_time);
}

static int method_purge(VarlinkCall *call, json_t *parameters, unsigned flags, void *userdata)
{
        return refresh(call, parameters, userdata, 0);
}

static int method_list(VarlinkCall *call, json_t *parameters, unsigned flags, void *userdata)
{
        Flush *f = userdata;
        struct {
                const char *site;
        } p = {};
        static const VarlinkField fields[] = {
                {"site", VARLINK_FIELD_STRING, offsetof(__typeof__(p), site), VARLINK_FIELD_NULLABLE},
                {},
        };
        char name[FLUSH_SITE_MAX];
        char **names = NULL;
        json_t *sites;
        bool eligible;
        int r;

        r = varlink_dispatch(call, parameters, fields, &p);
        if (r < 0)
                return r;
        if (!may_flush(f, call))
                return not_authorized(call, "list fast flush logfiles");
        sites = json_array();
        if (!sites)
                return -ENOMEM;
        if (p.site) {
                r = site_file(f, call, p.site, name, &eligible);
                if (r != 0) {
                        json_decref(sites);
                        return r > 0 ? 0 : r;
                }
                if (!eligible) {
                        json_decref(sites);
                        return error_site(call, "io.tern.Flush.NotEligible", p.site);
                }
                names = calloc(2, sizeof(char *));
                if (!names || !(names[0] = strdup(name))) {
                        free(names);
                        json_decref(sites);
                        return -ENOMEM;
                }
        } else {
                r = flush_log_names(f, &names);
                if (r < 0) {
                        json_decref(sites);
                        return error_failed(call, r);
                }
        }
        for (char **n = names; *n; n++) {
                void *o;
                r = flush_log_stat(f, *n, &o);
                if (r == -ENOENT)
                        continue;       /* purged meanwhile, or (one site) no logfile yet */
                if (r < 0 || json_array_append_new(sites, o) < 0) {
                        flush_names_free(names);
                        json_decref(sites);
                        return r < 0 ? error_failed(call, r) : -ENOMEM;
                }
        }
        flush_names_free(names);
        return varlink_call_reply(call, json_pack("{s:o}", "sites", sites));
}

const VarlinkInterface flush_interface = {
        .name = "io.tern.Flush",
        .description = varlink_idl_io_tern_Flush,
        .methods = (const VarlinkMethod[]){
                { "Add", method_add, 0 },
                { "SendSite", method_send_site, 0 },
                { "SendFile", method_send_file, 0 },
                { "Refresh", method_refresh, 0 },
                { "Purge", method_purge, 0 },
                { "List", method_list, 0 },
                {},
        },
};
