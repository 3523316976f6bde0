/* SPDX-License-Identifier: MIT */
/*
 * ctl-flush.c - `ternctl flush`: the operator's side of tern-flush (fast flush, ETRN)
 *
 *   flush send-site SITE     deliver SITE's deferred mail now (postqueue -s, sendmail -qR, ETRN)
 *   flush send-file ID       deliver one message now (postqueue -i, sendmail -qI)
 *   flush add SITE ID        list ID in SITE's logfile (what the delivery path does on a deferral)
 *   flush refresh            flush stale logfiles, remove old empty ones (what the timer runs)
 *   flush purge              flush every non-empty logfile
 *   flush list [SITE]        per-site logfiles: entries, last read (flushed), last updated
 *
 * Errors are postqueue's messages with its exit codes (flush-request.c).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "flush-request.h"
#include "json-util.h"
#include "macro.h"
#include "queue-format.h"
#include "ternctl.h"

static void print_time(long long t, char buf[static 32])
{
        struct tm tm;
        time_t tt = (time_t) t;

        if (t <= 0 || !localtime_r(&tt, &tm) || strftime(buf, 32, "%Y-%m-%d %H:%M:%S", &tm) == 0)
                snprintf(buf, 32, "-");
}

static void list_print(json_t *p)
{
        json_t *sites = json_object_get(p, "sites"), *s;
        size_t i;

        printf("%-40s %8s %10s  %-19s  %-19s\n", "logfile", "entries", "bytes", "last read", "last updated");
        json_array_foreach(sites, i, s) {
                char read[32], updated[32];

                print_time(json_integer_value(json_object_get(s, "read")), read);
                print_time(json_integer_value(json_object_get(s, "updated")), updated);
                printf("%-40s %8lld %10lld  %-19s  %-19s\n", json_string_value(json_object_get(s, "name")),
                       (long long) json_integer_value(json_object_get(s, "entries")),
                       (long long) json_integer_value(json_object_get(s, "size")), read, updated);
        }
}

int ctl_verb_flush(CtlOptions *o, int argc, char **argv)
{
        const char *verb = argc >= 2 ? argv[1] : "";
        const char *method = NULL, *arg = "";
        json_t *params = NULL, *reply = NULL;
        const Conf *c;
        int r;

        if (streq(verb, "send-site") && argc == 3) {
                method = "SendSite";
                arg = argv[2];
                params = json_pack("{s:s}", "site", arg);
        } else if (streq(verb, "send-file") && argc == 3) {
                method = "SendFile";
                arg = argv[2];
                params = json_pack("{s:s}", "queueId", arg);
        } else if (streq(verb, "add") && argc == 4) {
                method = "Add";
                arg = argv[2];
                params = json_pack("{s:s,s:s}", "site", argv[2], "queueId", argv[3]);
        } else if ((streq(verb, "refresh") || streq(verb, "purge")) && argc == 2) {
                method = streq(verb, "refresh") ? "Refresh" : "Purge";
        } else if (streq(verb, "list") && argc <= 3) {
                method = "List";
                if (argc == 3) {
                        arg = argv[2];
                        params = json_pack("{s:s}", "site", arg);
                }
        } else {
                fprintf(stderr, "Usage: ternctl flush send-site SITE | send-file ID | add SITE ID | refresh | "
                                "purge | list [SITE]\n");
                return EX_USAGE_;
        }
        r = ctl_conf(o, &c);
        if (r > 0) {
                json_decref(params);
                return r;
        }
        r = flush_request(c, "ternctl", method, params, arg, o->timeout_usec, &reply);
        if (r != 0)
                return r;
        if (o->json)
                ctl_print_json(o, reply);
        else if (streq(method, "List"))
                list_print(reply);
        else if (streq(method, "SendSite")) {
                if (json_is_true(json_object_get(reply, "wholeQueue")))
                        printf("%s: not eligible for fast flush: the whole queue is being flushed\n", arg);
                else
                        printf("%s: %lld messages moved to the incoming queue\n", arg,
                               (long long) json_integer_value(json_object_get(reply, "moved")));
        }
        json_decref(reply);
        return 0;
}
