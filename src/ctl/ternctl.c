/* SPDX-License-Identifier: MIT */
/*
 * ternctl.c - the operator's varlink client: a table of verbs (see man/ternctl.1)
 *
 *   ternctl [-c FILE] [--json] [--timeout SEC] VERB [ARGS...]
 *
 * Every verb talks to a daemon over its varlink socket and prints what a person needs, or
 * JSON with --json. Exit codes follow sysexits(3): 64 usage, 65 bad input data, 69 the daemon
 * is not running, 75 timeout, 76 the peer broke the protocol, 77 permission denied, 78 bad
 * configuration; 1 when the daemon answered with an error of its interface (but tern's
 * NotAuthorized is 77, NoSuchMessage 66, InvalidFilter and InvalidRequest 64).
 *
 * Invoked as `mailq` it is `ternctl queue list` (postqueue -p text).
 *
 * This file holds the verb table and what every verb shares (configuration, addresses, calls,
 * errors, output); each verb group lives in its own ctl-*.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "json-util.h"
#include "macro.h"
#include "ternctl.h"

/* A call that takes longer than this is reported as a timeout (--timeout changes it). */
#define CTL_DEFAULT_TIMEOUT_SEC 60

static const CtlVerb verbs[] = {
        { "call", ctl_verb_call, "call [--more|--oneway] [--fd FILE]... [--read-fds] ADDRESS METHOD [JSON]",
          "call METHOD with JSON parameters and print the reply" },
        { "introspect", ctl_verb_introspect, "introspect ADDRESS [INTERFACE]",
          "print a daemon's interfaces in varlink IDL" },
        { "config", ctl_verb_config, "config [-n|-d] [--program NAME] [NAME...]",
          "print the effective configuration, like postconf" },
        { "scache", ctl_verb_scache, "scache stats | find-dest LABEL | find-endp LABEL",
          "tern-scache's statistics; take a cached session out (and close it)" },
        { "queue", ctl_verb_queue, "queue list|show|hold|release|delete|requeue|summary [ARGS...]",
          "the mail queue: mailq and postqueue -j, postsuper's changes, qshape" },
        { "qmgr", ctl_verb_qmgr, "qmgr trigger REQUEST... | status",
          "wake tern-qmgr's scans (postqueue -f is \"trigger A F D I\"); its scheduler state" },
        { "flush", ctl_verb_flush, "flush send-site SITE | send-file ID | add SITE ID | refresh | purge | list [SITE]",
          "fast flush: deliver one site's mail (postqueue -s, ETRN) or one message; per-site logfiles" },
};

int ctl_conf(CtlOptions *o, const Conf **ret)
{
        _cleanup_(freep) char *error = NULL;
        const char *path = conf_path(o->config_path);
        int r;

        if (!o->conf) {
                /* Without -c or $TERN_CONFIG a missing default file means defaults: ternctl works on
                 * a host where tern is only half installed. */
                if (!o->config_path && isempty(getenv("TERN_CONFIG")) && access(path, F_OK) < 0)
                        path = NULL;
                r = conf_load(path, "ctl", &o->conf, &error);
                if (r < 0) {
                        fprintf(stderr, "ternctl: %s\n", error ? error : strerror(-r));
                        return EX_CONFIG_;
                }
        }
        *ret = o->conf;
        return 0;
}

/* service_program - "tern-flush" for the socket named flush */
static void service_program(const char *path, char *buf, size_t size)
{
        const char *base = strrchr(path, '/');

        base = base ? base + 1 : path;
        if (streq(base, "test"))
                snprintf(buf, size, "tern-testd");
        else
                snprintf(buf, size, "tern-%s", base);
}

int ctl_connect(CtlOptions *o, const char *address, VarlinkClient **ret)
{
        _cleanup_(freep) char *path = NULL;
        char program[128];
        int r;

        if (strneq(address, "unix:", 5))
                address += 5;
        if (strchr(address, '/'))
                path = strdup(address);
        else {
                const Conf *c;

                if (isempty(address) || strchr(address, '.')) {
                        fprintf(stderr, "ternctl: invalid address \"%s\": a socket path or a service name\n",
                                address);
                        return EX_USAGE_;
                }
                r = ctl_conf(o, &c);
                if (r > 0)
                        return r;
                if (asprintf(&path, "%s/%s", conf_get_string(c, "runtime_directory"), address) < 0)
                        path = NULL;
        }
        if (!path) {
                fprintf(stderr, "ternctl: out of memory\n");
                return EX_OSERR_;
        }

        r = varlink_client_connect(path, ret);
        if (r < 0) {
                service_program(path, program, sizeof(program));
                if (r == -ENOENT || r == -ECONNREFUSED) {
                        fprintf(stderr, "%s is not running: %s: %s\n", program, path, strerror(-r));
                        return EX_UNAVAILABLE_;
                }
                if (r == -EACCES || r == -EPERM) {
                        fprintf(stderr, "ternctl: cannot connect to %s: %s\n", path, strerror(-r));
                        return EX_NOPERM_;
                }
                fprintf(stderr, "ternctl: cannot connect to %s: %s\n", path, strerror(-r));
                return EX_UNAVAILABLE_;
        }
        varlink_client_set_timeout(*ret, o->timeout_usec);
        return 0;
}

int ctl_exit_for_error(const char *error)
{
        const char *dot = strrchr(error, '.');

        /* tern's own interfaces name their errors alike */
        if (dot && strneq(error, "io.tern.", 8)) {
                if (streq(dot, ".NotAuthorized"))
                        return EX_NOPERM_;
                if (streq(dot, ".NoSuchMessage"))
                        return EX_NOINPUT_;
                if (streq(dot, ".InvalidFilter") || streq(dot, ".InvalidRequest"))
                        return EX_USAGE_;
        }
        if (streq(error, VARLINK_ERROR_METHOD_NOT_FOUND) ||
            streq(error, VARLINK_ERROR_INTERFACE_NOT_FOUND) ||
            streq(error, VARLINK_ERROR_INVALID_PARAMETER) || streq(error, VARLINK_ERROR_EXPECTED_MORE) ||
            streq(error, VARLINK_ERROR_METHOD_NOT_IMPLEMENTED))
                return EX_USAGE_;
        if (streq(error, VARLINK_ERROR_PERMISSION_DENIED))
                return EX_NOPERM_;
        if (streq(error, VARLINK_ERROR_SYSTEM))
                return EX_SOFTWARE_;
        return EX_FAILURE;
}

void ctl_print_error(const VarlinkReply *r)
{
        _cleanup_(freep) char *p = NULL;

        if (r->parameters && json_object_size(r->parameters) > 0)
                p = json_dumps(r->parameters, JSON_COMPACT | JSON_SORT_KEYS);
        fprintf(stderr, "Error: %s%s%s\n", r->error, p ? " " : "", p ? p : "");
}

void ctl_print_json(const CtlOptions *o, json_t *j)
{
        _cleanup_(freep) char *s = json_dumps(j, o->json ? JSON_COMPACT : JSON_INDENT(2));

        if (s)
                printf("%s\n", s);
}

int ctl_transport_error(const char *method, int r)
{
        fprintf(stderr, "ternctl: %s: %s\n", method,
                r == -ETIMEDOUT    ? "timed out"
                : r == -EBADMSG    ? "invalid reply"
                : r == -ECONNRESET ? "connection closed by the daemon"
                                   : strerror(-r));
        return r == -ETIMEDOUT ? EX_TEMPFAIL_ : r == -EBADMSG ? EX_PROTOCOL_ : EX_UNAVAILABLE_;
}

int ctl_call(CtlOptions *o, VarlinkClient *c, const char *method, json_t *parameters, VarlinkReply *ret)
{
        int r;

        r = varlink_client_call(c, method, parameters, NULL, 0, 0, ret);
        if (r < 0)
                return ctl_transport_error(method, r);
        if (r > 0) {
                ctl_print_error(ret);
                r = ctl_exit_for_error(ret->error);
                varlink_reply_done(ret);
                return r;
        }
        return 0;
}

static void help(void)
{
        printf("Usage: ternctl [-c FILE] [--json] [--timeout SEC] VERB [ARGS...]\n\n"
               "Control tern's daemons over varlink.\n\n"
               "Verbs:\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                printf("  %-72s\n      %s\n", verbs[i].usage, verbs[i].help);
        printf("\nOptions:\n"
               "  -c FILE        configuration file (default %s, or $TERN_CONFIG)\n"
               "  --json         machine-readable output\n"
               "  --timeout SEC  give up on a call after SEC seconds (default %d; 0: wait forever)\n"
               "  -h, --help     this help\n"
               "  --version      print the version\n",
               TERN_CONFIG_FILE, CTL_DEFAULT_TIMEOUT_SEC);
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "json", no_argument, NULL, 'j' },
                { "timeout", required_argument, NULL, 't' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        CtlOptions o = { .timeout_usec = CTL_DEFAULT_TIMEOUT_SEC * USEC_PER_SEC };
        const char *base = strrchr(argv[0], '/');
        int c, r;

        /* Invoked as mailq: `ternctl queue list` with mailq's arguments (--json too) */
        base = base ? base + 1 : argv[0];
        if (streq(base, "mailq")) {
                _cleanup_(freep) char **args = calloc((size_t) argc + 2, sizeof(char *));

                if (!args) {
                        fprintf(stderr, "mailq: out of memory\n");
                        return EX_OSERR_;
                }
                args[0] = (char *) "queue";
                args[1] = (char *) "list";
                for (int i = 1; i < argc; i++)
                        args[i + 1] = argv[i];
                r = ctl_verb_queue(&o, argc + 1, args);
                conf_free(o.conf);
                return r;
        }

        /* "+": stop at the verb; verbs parse their own options. */
        while ((c = getopt_long(argc, argv, "+c:h", options, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        o.config_path = optarg;
                        break;
                case 'j':
                        o.json = true;
                        break;
                case 't': {
                        char *end;
                        unsigned long long sec = strtoull(optarg, &end, 10);
                        if (*optarg == '\0' || *end != '\0' || sec > 86400ULL * 365) {
                                fprintf(stderr, "ternctl: invalid --timeout \"%s\": seconds expected\n",
                                        optarg);
                                return EX_USAGE_;
                        }
                        o.timeout_usec = sec * USEC_PER_SEC;
                        break;
                }
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("tern %s\n", TERN_VERSION);
                        return 0;
                default:
                        return EX_USAGE_;
                }
        }
        if (optind >= argc) {
                help();
                return EX_USAGE_;
        }

        r = EX_USAGE_;
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                const CtlVerb *v = &verbs[i];

                if (!streq(v->name, argv[optind]))
                        continue;
                r = v->run(&o, argc - optind, argv + optind);
                goto done;
        }
        fprintf(stderr, "ternctl: unknown verb \"%s\"; see ternctl --help\n", argv[optind]);
done:
        conf_free(o.conf);
        return r;
}
