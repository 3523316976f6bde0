/* SPDX-License-Identifier: MIT */
/*
 * ctl-qmgr.c - `ternctl qmgr`: tern-qmgr's triggers and scheduler state (io.tern.Qmgr)
 *
 *   qmgr trigger REQUEST...   incoming (I), deferred (D), all (A), flushDead (F, or flush-dead),
 *                             wakeup (W): what Postfix's qmgr takes as trigger bytes on
 *                             public/qmgr. A word of capital letters is one request per letter,
 *                             so "AFD" forces a deferred run as the Postfix documents advise.
 *   qmgr status [--json]      messages and recipients in core against their limits, the scans,
 *                             then one line per transport and per destination queue (dead ones
 *                             with their reason and when they come back)
 *
 * Requests are checked here before anything is sent, so a typo changes nothing; the daemon
 * checks them again (InvalidRequest).
 */
#include <getopt.h>
#include <stdio.h>
#include <time.h>

#include "json-util.h"
#include "macro.h"
#include "queue-format.h"
#include "ternctl.h"

typedef struct TriggerRequest {
        char letter;
        const char *name;
} TriggerRequest;

static const TriggerRequest requests[] = {
        {'I', "incoming"}, {'D', "deferred"}, {'A', "all"}, {'F', "flushDead"}, {'W', "wakeup"},
};

/* trigger_name - the IDL's name for a request word: "deferred", "D", "flush-dead" */
static const char *trigger_name(const char *word)
{
        bool letter = word[0] != '\0' && word[1] == '\0';

        for (size_t i = 0; i < ELEMENTSOF(requests); i++)
                if (letter ? word[0] == requests[i].letter : streq(word, requests[i].name))
                        return requests[i].name;
        if (!letter && streq(word, "flush-dead"))
                return "flushDead";
        return NULL;
}

static int qmgr_trigger(CtlOptions *o, int argc, char **argv)
{
        _cleanup_(varlink_client_freep) VarlinkClient *client = NULL;
        json_t *list = json_array();
        VarlinkReply reply;
        int r;

        if (!list)
                return EX_OSERR_;
        for (int i = 2; i < argc; i++) {
                const char *name = trigger_name(argv[i]);

                if (!name && strspn(argv[i], "IDAFW") == strlen(argv[i]) && argv[i][0]) {
                        /* "AFD": one request per letter */
                        for (const char *c = argv[i]; *c; c++) {
                                char letter[2] = {*c, '\0'};
                                json_array_append_new(list, json_string(trigger_name(letter)));
                        }
                        continue;
                }
                if (!name) {
                        fprintf(stderr,
                                "ternctl: unknown trigger request \"%s\": incoming (I), deferred (D), all "
                                "(A), "
                                "flushDead (F), wakeup (W)\n",
                                argv[i]);
                        json_decref(list);
                        return EX_USAGE_;
                }
                json_array_append_new(list, json_string(name));
        }
        if (json_array_size(list) == 0) {
                fprintf(stderr, "Usage: ternctl qmgr trigger REQUEST...\n");
                json_decref(list);
                return EX_USAGE_;
        }
        r = ctl_connect(o, "qmgr", &client);
        if (r > 0) {
                json_decref(list);
                return r;
        }
        r = ctl_queue_call(client, "io.tern.Qmgr.Trigger", json_pack("{s:o}", "requests", list), &reply);
        if (r > 0)
                return r;
        varlink_reply_done(&reply);
        return 0;
}

static long long jint(json_t *o, const char *name)
{
        return (long long) json_integer_value(json_object_get(o, name));
}

static const char *jstr(json_t *o, const char *name)
{
        json_t *v = json_object_get(o, name);

        return json_is_string(v) ? json_string_value(v) : "";
}

/* dead_state - "ok", or "dead until 18:22:12: reason" */
static void dead_state(json_t *o, char *buf, size_t size)
{
        json_t *until = json_object_get(o, "deadUntil");

        if (!json_is_true(json_object_get(o, "dead"))) {
                snprintf(buf, size, "ok");
                return;
        }
        if (json_is_integer(until)) {
                char when[32];
                queue_format_time(json_integer_value(until), when);
                /* "Thu Nov 24 18:22:12": the time of day is what an operator needs */
                snprintf(buf, size, "dead until %s%s%s", when + 11, *jstr(o, "reason") ? ": " : "",
                         jstr(o, "reason"));
        } else
                snprintf(buf, size, "dead%s%s", *jstr(o, "reason") ? ": " : "", jstr(o, "reason"));
}

static void status_print(json_t *p)
{
        json_t *q = json_object_get(p, "queues"), *t, *d, *v;
        const char *name;
        char state[1024];
        size_t i;

        printf("queues: incoming %lld active %lld deferred %lld hold %lld corrupt %lld\n",
               jint(q, "incoming"), jint(q, "active"), jint(q, "deferred"), jint(q, "hold"),
               jint(q, "corrupt"));
        printf("in core: messages %lld/%lld recipients %lld/%lld\n", jint(p, "messages"),
               jint(p, "messageLimit"), jint(p, "recipients"), jint(p, "recipientLimit"));
        json_object_foreach (json_object_get(p, "scans"), name, v) {
                _cleanup_(freep) char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
                printf("scan %s: %s\n", name, strempty(s));
        }

        printf("\n%-16s %6s %6s %8s %6s %s\n", "TRANSPORT", "AGENTS", "IDLE", "PENDING", "DESTS", "STATE");
        json_array_foreach (json_object_get(p, "transports"), i, t) {
                dead_state(t, state, sizeof(state));
                printf("%-16s %6lld %6lld %8lld %6lld %s\n", jstr(t, "name"), jint(t, "agents"),
                       jint(t, "idleAgents"), jint(t, "pending"), jint(t, "destinations"), state);
        }

        if (json_array_size(json_object_get(p, "destinations")) == 0)
                return;
        printf("\n%-16s %-32s %13s %6s %6s %s\n", "TRANSPORT", "NEXTHOP", "WINDOW/LIMIT", "BUSY", "TODO",
               "STATE");
        json_array_foreach (json_object_get(p, "destinations"), i, d) {
                char window[48];

                dead_state(d, state, sizeof(state));
                snprintf(window, sizeof(window), "%lld/%lld", jint(d, "window"), jint(d, "limit"));
                printf("%-16s %-32s %13s %6lld %6lld %s\n", jstr(d, "transport"), jstr(d, "nexthop"), window,
                       jint(d, "busy"), jint(d, "todo"), state);
        }
}

static int qmgr_status(CtlOptions *o, int argc, char **argv)
{
        _cleanup_(varlink_client_freep) VarlinkClient *client = NULL;
        VarlinkReply reply;
        int r;

        for (int i = 2; i < argc; i++) {
                if (!streq(argv[i], "--json")) {
                        fprintf(stderr, "Usage: ternctl qmgr status [--json]\n");
                        return EX_USAGE_;
                }
                o->json = true;
        }
        r = ctl_connect(o, "qmgr", &client);
        if (r > 0)
                return r;
        r = ctl_queue_call(client, "io.tern.Qmgr.Status", NULL, &reply);
        if (r > 0)
                return r;
        if (o->json)
                ctl_print_json(o, reply.parameters);
        else
                status_print(reply.parameters);
        varlink_reply_done(&reply);
        return 0;
}

int ctl_verb_qmgr(CtlOptions *o, int argc, char **argv)
{
        if (argc >= 2 && streq(argv[1], "trigger"))
                return qmgr_trigger(o, argc, argv);
        if (argc >= 2 && streq(argv[1], "status"))
                return qmgr_status(o, argc, argv);
        fprintf(stderr, "Usage: ternctl qmgr trigger REQUEST... | status [--json]\n");
        return EX_USAGE_;
}
