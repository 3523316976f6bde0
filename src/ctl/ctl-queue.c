/* SPDX-License-Identifier: MIT */
/*
 * ctl-queue.c - `ternctl queue` (and `mailq`): the mail queue, through tern-qmgr's io.tern.Queue
 *
 *   queue list [--json] [FILTER]          postqueue -p (mailq) text, or postqueue -j lines
 *   queue show QUEUEID [--json]           one message in full (postcat -q's view)
 *   queue hold|release|delete|requeue SELECTION [FILTER]
 *                                         postsuper -h/-H/-d/-r, done by the daemon
 *   queue summary [--json]                qshape's table, counts per queue, next retries
 *
 *   SELECTION: QUEUEID..., "-" (IDs on stdin, one per line: jq and awk pipelines), --all
 *   FILTER:    --sender S ("" the null sender), --recipient ADDRESS (exactly, case-insensitively),
 *              --recipient-domain D (".example" subdomains too), --queue Q, --older-than TIME
 *              (Postfix time units s m h d w; plain seconds)
 *
 * A change prints postsuper's summary on stderr ("ternctl: Deleted: 3 messages"; nothing when
 * nothing matched); --json prints the reply (count and queue IDs) instead. The conditions of a
 * filter all hold together, as io.tern.Queue.Filter says. Errors of the interface are printed
 * as a person reads them: NotAuthorized exits 77, NoSuchMessage 66, InvalidFilter 64.
 *
 * Limits: IDs from stdin must be valid queue file names (no '*' or '!' markers: strip them as
 * Postfix's own pipelines do, with tr -d '*!'); at most QUEUE_IDS_MAX of them per call.
 */
#include <getopt.h>
#include <stdio.h>

#include "json-util.h"
#include "macro.h"
#include "queue-format.h"
#include "queue-id.h"
#include "queue-list.h"
#include "ternctl.h"

/* IDs one change names: a whole queue's worth, still one bounded varlink message (~32 bytes each) */
#define QUEUE_IDS_MAX 100000U

typedef struct QueueArgs {
        json_t *filter; /* io.tern.Queue.Filter being built */
        json_t *ids;    /* queueIds */
        bool selected;  /* IDs, "-", --all or a condition were given */
        bool stdin_ids;
} QueueArgs;

typedef struct QueueChange {
        const char *verb;
        const char *method;
        const char *done; /* postsuper's words */
} QueueChange;

static const QueueChange changes[] = {
        {"hold", "io.tern.Queue.Hold", "Placed on hold"},
        {"release", "io.tern.Queue.Release", "Released from hold"},
        {"delete", "io.tern.Queue.Delete", "Deleted"},
        {"requeue", "io.tern.Queue.Requeue", "Requeued"},
};

/* ctl_queue_error - an error reply as a person reads it; returns the exit code */
int ctl_queue_error(const VarlinkReply *r)
{
        const char *p;

#define PARAM(name)                                                                                         \
        (json_is_string(json_object_get(r->parameters, name))                                               \
                 ? json_string_value(json_object_get(r->parameters, name))                                  \
                 : "?")
        if (streq(r->error, "io.tern.Queue.NotAuthorized")) {
                p = PARAM("user");
                fprintf(stderr,
                        "ternctl: permission denied: user %s may not do this: listing needs "
                        "authorized_mailq_users, changes need root or mail_owner\n",
                        p);
        } else if (streq(r->error, "io.tern.Queue.NoSuchMessage"))
                fprintf(stderr, "ternctl: %s: no such message in the queue\n", PARAM("queueId"));
        else if (streq(r->error, "io.tern.Queue.InvalidFilter"))
                fprintf(stderr, "ternctl: invalid filter: %s\n", PARAM("reason"));
        else if (streq(r->error, "io.tern.Qmgr.InvalidRequest"))
                fprintf(stderr, "ternctl: tern-qmgr does not know the trigger request \"%s\"\n",
                        PARAM("request"));
        else
                ctl_print_error(r);
#undef PARAM
        return ctl_exit_for_error(r->error);
}

/* ctl_queue_call - one call to tern-qmgr, its errors printed by ctl_queue_error */
int ctl_queue_call(VarlinkClient *c, const char *method, json_t *params, VarlinkReply *ret)
{
        int r;

        r = varlink_client_call(c, method, params, NULL, 0, 0, ret);
        if (r < 0)
                return ctl_transport_error(method, r);
        if (r > 0) {
                r = ctl_queue_error(ret);
                varlink_reply_done(ret);
                return r;
        }
        return 0;
}

/* read_stdin_ids - "-": queue IDs, one per line, blanks around them and empty lines ignored */
static int read_stdin_ids(json_t *ids)
{
        _cleanup_(freep) char *line = NULL;
        size_t size = 0;
        ssize_t n;

        while ((n = getline(&line, &size, stdin)) >= 0) {
                char *s = line, *e = line + n;

                while (s < e && strchr(" \t\r\n", *s))
                        s++;
                while (e > s && strchr(" \t\r\n", e[-1]))
                        e--;
                *e = '\0';
                if (!*s)
                        continue;
                if (!queue_id_valid(s)) {
                        fprintf(stderr, "ternctl: invalid queue ID on stdin: \"%s\"\n", s);
                        return EX_DATAERR_;
                }
                if (json_array_size(ids) >= QUEUE_IDS_MAX) {
                        fprintf(stderr, "ternctl: more than %u queue IDs; use a filter\n", QUEUE_IDS_MAX);
                        return EX_DATAERR_;
                }
                json_array_append_new(ids, json_string(s));
        }
        if (ferror(stdin)) {
                fprintf(stderr, "ternctl: reading queue IDs from stdin: %m\n");
                return EX_OSERR_;
        }
        return 0;
}

/*
 * parse_queue_args - the options and IDs after `queue VERB`: fills A (the caller frees
 * a->filter and a->ids); ALLOW_IDS: positional queue IDs and "-" are accepted. 0 or an exit code.
 */
static int parse_queue_args(CtlOptions *o, int argc, char **argv, bool allow_ids, QueueArgs *a)
{
        static const struct option options[] = {
                {"json", no_argument, NULL, 'j'},
                {"all", no_argument, NULL, 'a'},
                {"sender", required_argument, NULL, 's'},
                {"recipient", required_argument, NULL, 'r'},
                {"recipient-domain", required_argument, NULL, 'd'},
                {"queue", required_argument, NULL, 'q'},
                {"older-than", required_argument, NULL, 'o'},
                {},
        };
        int c, r;

        a->filter = json_object();
        a->ids = json_array();
        if (!a->filter || !a->ids)
                return EX_OSERR_;
        optind = 1;
        while ((c = getopt_long(argc, argv, "+", options, NULL)) >= 0) {
                switch (c) {
                case 'j':
                        o->json = true;
                        break;
                case 'a':
                        json_object_set_new(a->filter, "all", json_true());
                        break;
                case 's':
                        json_object_set_new(a->filter, "sender", json_string(optarg));
                        break;
                case 'r':
                        if (isempty(optarg)) {
                                fprintf(stderr, "ternctl: --recipient: an address is needed\n");
                                return EX_USAGE_;
                        }
                        json_object_set_new(a->filter, "recipient", json_string(optarg));
                        break;
                case 'd':
                        if (isempty(optarg)) {
                                fprintf(stderr, "ternctl: --recipient-domain: a domain is needed\n");
                                return EX_USAGE_;
                        }
                        json_object_set_new(a->filter, "recipientDomain", json_string(optarg));
                        break;
                case 'q':
                        json_object_set_new(a->filter, "queue", json_string(optarg));
                        break;
                case 'o': {
                        int64_t sec;
                        if (conf_parse_time(optarg, 's', &sec) < 0 || sec < 0) {
                                fprintf(stderr,
                                        "ternctl: invalid --older-than \"%s\": a time such as 30m, 2h, 1d\n",
                                        optarg);
                                return EX_USAGE_;
                        }
                        json_object_set_new(a->filter, "olderThan", json_integer(sec));
                        break;
                }
                default:
                        return EX_USAGE_;
                }
        }
        a->selected = json_object_size(a->filter) > 0;
        for (int i = optind; i < argc; i++) {
                if (!allow_ids) {
                        fprintf(stderr, "ternctl: queue %s: unexpected argument \"%s\"\n", argv[0], argv[i]);
                        return EX_USAGE_;
                }
                a->selected = true;
                if (streq(argv[i], "-")) {
                        if (a->stdin_ids)
                                continue;
                        a->stdin_ids = true;
                        r = read_stdin_ids(a->ids);
                        if (r > 0)
                                return r;
                        continue;
                }
                if (!queue_id_valid(argv[i])) {
                        fprintf(stderr, "ternctl: invalid queue ID \"%s\"\n", argv[i]);
                        return EX_DATAERR_;
                }
                json_array_append_new(a->ids, json_string(argv[i]));
        }
        if (json_array_size(a->ids) > 0 || a->stdin_ids)
                json_object_set(a->filter, "queueIds", a->ids);
        return 0;
}

static void queue_args_done(QueueArgs *a)
{
        json_decref(a->filter);
        json_decref(a->ids);
}

typedef struct ListState {
        bool json;
        MailqState mailq;
} ListState;

static int list_one(json_t *message, void *userdata)
{
        ListState *s = userdata;
        int r;

        r = s->json ? queue_json_line(stdout, message) : mailq_message(&s->mailq, stdout, message);
        /* a listing can be long: let a pager (or jq) see each message as it comes */
        fflush(stdout);
        return r;
}

static int queue_list_verb(CtlOptions *o, VarlinkClient *client, QueueArgs *a)
{
        ListState s = {.json = o->json};
        VarlinkReply error;
        int r;

        r = queue_list(client, a->selected ? json_incref(a->filter) : NULL, list_one, &s, &error);
        if (r > 0) {
                r = ctl_queue_error(&error);
                varlink_reply_done(&error);
                return r;
        }
        if (r < 0)
                return ctl_transport_error("io.tern.Queue.List", r);
        if (!s.json)
                mailq_end(&s.mailq, stdout);
        return 0;
}

static void print_time_line(const char *label, json_t *t)
{
        char buf[32];

        if (!json_is_integer(t))
                return;
        queue_format_time(json_integer_value(t), buf);
        printf("%s: %s (%lld)\n", label, buf, (long long) json_integer_value(t));
}

static const char *jstr(json_t *o, const char *name)
{
        json_t *v = json_object_get(o, name);

        return json_is_string(v) ? json_string_value(v) : "";
}

static int queue_show_verb(CtlOptions *o, VarlinkClient *client, const char *queue_id)
{
        VarlinkReply reply;
        json_t *m, *v, *rcpt;
        const char *name;
        size_t i;
        int r;

        r = ctl_queue_call(client, "io.tern.Queue.Show", json_pack("{s:s}", "queueId", queue_id), &reply);
        if (r > 0)
                return r;
        if (o->json) {
                ctl_print_json(o, reply.parameters);
                varlink_reply_done(&reply);
                return 0;
        }

        /* postcat -q's sections, as a person reads them */
        m = json_object_get(reply.parameters, "message");
        printf("*** ENVELOPE %s/%s ***\n", jstr(m, "queueName"), jstr(m, "queueId"));
        printf("message_size: %lld\n", (long long) json_integer_value(json_object_get(m, "messageSize")));
        print_time_line("create_time", json_object_get(reply.parameters, "createTime"));
        print_time_line("arrival_time", json_object_get(m, "arrivalTime"));
        print_time_line("next_attempt_time", json_object_get(m, "nextAttemptTime"));
        if (json_is_true(json_object_get(m, "forcedExpire")))
                printf("forced_expire: yes\n");
        if (json_is_string(json_object_get(reply.parameters, "fullName")))
                printf("full_name: %s\n", jstr(reply.parameters, "fullName"));
        printf("sender: %s\n", jstr(m, "sender"));
        json_object_foreach (json_object_get(reply.parameters, "attributes"), name, v) {
                _cleanup_(freep) char *s =
                        json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
                printf("named_attribute: %s=%s\n", name,
                       json_is_string(v) ? json_string_value(v) : strempty(s));
        }
        json_array_foreach (json_object_get(reply.parameters, "recipients"), i, rcpt) {
                const char *orig = jstr(rcpt, "origAddress"), *addr = jstr(rcpt, "address");

                if (*orig && !streq(orig, addr))
                        printf("original_recipient: %s\n", orig);
                printf("recipient: %s", addr);
                if (json_is_true(json_object_get(rcpt, "done")))
                        printf(" (done)");
                else if (json_is_string(json_object_get(rcpt, "log")))
                        printf(" (%s %s: %s)", jstr(rcpt, "log"), jstr(rcpt, "status"),
                               jstr(rcpt, "reason"));
                printf("\n");
        }
        printf("*** MESSAGE HEADERS %s/%s ***\n", jstr(m, "queueName"), jstr(m, "queueId"));
        json_array_foreach (json_object_get(reply.parameters, "headers"), i, v)
                printf("%s\n", json_is_string(v) ? json_string_value(v) : "");
        varlink_reply_done(&reply);
        return 0;
}

static int queue_change_verb(CtlOptions *o, VarlinkClient *client, const QueueChange *ch, QueueArgs *a)
{
        VarlinkReply reply;
        long long count;
        int r;

        /* "-" with nothing on stdin names no message: nothing to do, as postsuper -d - does */
        if (a->stdin_ids && json_array_size(a->ids) == 0)
                return 0;
        r = ctl_queue_call(client, ch->method, json_pack("{s:O}", "filter", a->filter), &reply);
        if (r > 0)
                return r;
        count = (long long) json_integer_value(json_object_get(reply.parameters, "count"));
        if (o->json)
                ctl_print_json(o, reply.parameters);
        else if (count > 0)
                fprintf(stderr, "ternctl: %s: %lld message%s\n", ch->done, count, count > 1 ? "s" : "");
        varlink_reply_done(&reply);
        return 0;
}

static int queue_summary_verb(CtlOptions *o, VarlinkClient *client)
{
        VarlinkReply reply;
        int r;

        r = ctl_queue_call(client, "io.tern.Queue.Summary", NULL, &reply);
        if (r > 0)
                return r;
        if (o->json)
                ctl_print_json(o, reply.parameters);
        else
                queue_summary_print(stdout, reply.parameters, time(NULL));
        varlink_reply_done(&reply);
        return 0;
}

static void queue_usage(void)
{
        fprintf(stderr, "Usage: ternctl queue list [--json] [QUEUEID...|-] [FILTER]\n"
                        "       ternctl queue show QUEUEID [--json]\n"
                        "       ternctl queue hold|release|delete|requeue QUEUEID...|-|--all [FILTER]\n"
                        "       ternctl queue summary [--json]\n"
                        "FILTER: [--sender S] [--recipient ADDRESS] [--recipient-domain D] [--queue Q]\n"
                        "        [--older-than TIME]\n");
}

int ctl_verb_queue(CtlOptions *o, int argc, char **argv)
{
        _cleanup_(varlink_client_freep) VarlinkClient *client = NULL;
        QueueArgs a = {};
        const QueueChange *ch = NULL;
        const char *sub = argc >= 2 ? argv[1] : "";
        int r;

        for (size_t i = 0; i < ELEMENTSOF(changes); i++)
                if (streq(sub, changes[i].verb))
                        ch = &changes[i];
        if (!ch && !streq(sub, "list") && !streq(sub, "show") && !streq(sub, "summary")) {
                queue_usage();
                return EX_USAGE_;
        }
        /* argv[1] (the sub-verb) is the argv[0] of its own options */
        r = parse_queue_args(o, argc - 1, argv + 1, !streq(sub, "summary"), &a);
        if (r > 0)
                goto out;
        r = EX_USAGE_;
        if (streq(sub, "show") &&
            (json_object_size(a.filter) != 1 || json_array_size(a.ids) != 1 || a.stdin_ids)) {
                fprintf(stderr, "Usage: ternctl queue show QUEUEID [--json]\n");
                goto out;
        }
        if (ch && !a.selected) {
                fprintf(stderr,
                        "ternctl: queue %s: which messages? Name them (QUEUEID..., - for stdin), or say "
                        "--all, or give a filter\n",
                        ch->verb);
                goto out;
        }

        r = ctl_connect(o, "qmgr", &client);
        if (r > 0)
                goto out;
        if (streq(sub, "list"))
                r = queue_list_verb(o, client, &a);
        else if (streq(sub, "show"))
                r = queue_show_verb(o, client, json_string_value(json_array_get(a.ids, 0)));
        else if (streq(sub, "summary"))
                r = queue_summary_verb(o, client);
        else
                r = queue_change_verb(o, client, ch, &a);
out:
        queue_args_done(&a);
        return r;
}
