/* SPDX-License-Identifier: MIT */
/*
 * ctl-varlink.c - `ternctl call` and `ternctl introspect`: generic varlink verbs
 *
 *   call [--more|--oneway] [--fd FILE]... [--read-fds] ADDRESS METHOD [JSON]
 *   introspect ADDRESS [INTERFACE]
 *
 * `call` prints each reply's parameters as JSON (one compact line per reply with --json);
 * descriptors passed with --fd are numbered 0, 1, ... in the order given, as the method's fd
 * parameters expect. Descriptors that come back are read to stdout with --read-fds (and
 * otherwise only counted on stderr), since a descriptor cannot be printed.
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>

#include "json-util.h"
#include "macro.h"
#include "ternctl.h"

/* read_fd_to_stdout - copy what a received descriptor holds */
static int read_fd_to_stdout(int fd)
{
        char buf[4096];

        for (;;) {
                ssize_t k = read(fd, buf, sizeof(buf));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return 0;
                if (fwrite(buf, 1, (size_t) k, stdout) != (size_t) k)
                        return -EIO;
        }
}

int ctl_verb_call(CtlOptions *o, int argc, char **argv)
{
        static const struct option options[] = {
                { "more", no_argument, NULL, 'm' },
                { "oneway", no_argument, NULL, 'o' },
                { "fd", required_argument, NULL, 'f' },
                { "read-fds", no_argument, NULL, 'r' },
                {},
        };
        _cleanup_(varlink_client_freep) VarlinkClient *client = NULL;
        int fds[VARLINK_FDS_MAX];
        size_t n_fds = 0;
        unsigned flags = 0;
        bool read_fds = false;
        json_t *params = NULL;
        int c, r, ret = 0;

        optind = 1;
        while ((c = getopt_long(argc, argv, "+", options, NULL)) >= 0) {
                switch (c) {
                case 'm':
                        flags |= VARLINK_CALL_MORE;
                        break;
                case 'o':
                        flags |= VARLINK_CALL_ONEWAY;
                        break;
                case 'r':
                        read_fds = true;
                        break;
                case 'f':
                        if (n_fds >= VARLINK_FDS_MAX) {
                                fprintf(stderr, "ternctl: at most %u descriptors\n", VARLINK_FDS_MAX);
                                ret = EX_USAGE_;
                                goto out;
                        }
                        fds[n_fds] = open(optarg, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                        if (fds[n_fds] < 0) {
                                fprintf(stderr, "ternctl: %s: %s\n", optarg, strerror(errno));
                                ret = EX_NOINPUT_;
                                goto out;
                        }
                        n_fds++;
                        break;
                default:
                        ret = EX_USAGE_;
                        goto out;
                }
        }
        if ((flags & VARLINK_CALL_MORE) && (flags & VARLINK_CALL_ONEWAY)) {
                fprintf(stderr, "ternctl: --more and --oneway exclude each other\n");
                ret = EX_USAGE_;
                goto out;
        }
        if (argc - optind < 2 || argc - optind > 3) {
                fprintf(stderr,
                        "Usage: ternctl call [--more|--oneway] [--fd FILE]... ADDRESS METHOD [JSON]\n");
                ret = EX_USAGE_;
                goto out;
        }
        if (argc - optind == 3) {
                json_error_t err;

                params = json_loads(argv[optind + 2], JSON_REJECT_DUPLICATES, &err);
                if (!params || !json_is_object(params)) {
                        fprintf(stderr, "ternctl: parameters must be a JSON object: %s\n",
                                params ? "not an object" : err.text);
                        json_decref(params);
                        params = NULL;
                        ret = EX_DATAERR_;
                        goto out;
                }
        }

        ret = ctl_connect(o, argv[optind], &client);
        if (ret > 0)
                goto out;
        r = varlink_client_send(client, argv[optind + 1], TAKE_PTR(params), fds, n_fds, flags);
        if (r < 0) {
                fprintf(stderr, "ternctl: %s: %s\n", argv[optind + 1],
                        r == -EINVAL ? "not a valid interface.Method name" : strerror(-r));
                ret = r == -EINVAL ? EX_USAGE_ : EX_UNAVAILABLE_;
                goto out;
        }
        if (flags & VARLINK_CALL_ONEWAY)
                goto out;

        for (;;) {
                VarlinkReply reply;

                r = varlink_client_read(client, &reply);
                if (r < 0) {
                        fprintf(stderr, "ternctl: %s: %s\n", argv[optind + 1],
                                r == -ETIMEDOUT   ? "timed out"
                                : r == -EBADMSG   ? "invalid reply"
                                : r == -ECONNRESET ? "connection closed by the daemon"
                                                  : strerror(-r));
                        ret = r == -ETIMEDOUT ? EX_TEMPFAIL_
                              : r == -EBADMSG ? EX_PROTOCOL_
                                              : EX_UNAVAILABLE_;
                        break;
                }
                if (reply.error) {
                        ctl_print_error(&reply);
                        ret = ctl_exit_for_error(reply.error);
                        varlink_reply_done(&reply);
                        break;
                }
                ctl_print_json(o, reply.parameters);
                for (size_t i = 0; i < reply.n_fds; i++) {
                        if (read_fds) {
                                fflush(stdout);
                                if (read_fd_to_stdout(reply.fds[i]) < 0)
                                        ret = EX_OSERR_;
                        } else
                                fprintf(stderr, "ternctl: reply carried descriptor %zu (use --read-fds)\n",
                                        i);
                }
                bool last = !reply.continues;
                varlink_reply_done(&reply);
                if (last)
                        break;
        }
out:
        close_many(fds, n_fds);
        return ret;
}

int ctl_verb_introspect(CtlOptions *o, int argc, char **argv)
{
        _cleanup_(varlink_client_freep) VarlinkClient *client = NULL;
        VarlinkReply info = {};
        json_t *ifaces, *iface;
        size_t i;
        int ret;

        if (argc < 2 || argc > 3) {
                fprintf(stderr, "Usage: ternctl introspect ADDRESS [INTERFACE]\n");
                return EX_USAGE_;
        }
        ret = ctl_connect(o, argv[1], &client);
        if (ret > 0)
                return ret;

        if (argc == 3)
                ifaces = json_pack("[s]", argv[2]);
        else {
                ret = ctl_call(o, client, "org.varlink.service.GetInfo", NULL, &info);
                if (ret > 0)
                        return ret;
                ifaces = json_incref(json_object_get(info.parameters, "interfaces"));
                if (!json_is_array(ifaces)) {
                        fprintf(stderr, "ternctl: GetInfo: reply without an interface list\n");
                        json_decref(ifaces);
                        varlink_reply_done(&info);
                        return EX_PROTOCOL_;
                }
        }

        json_array_foreach(ifaces, i, iface) {
                VarlinkReply d;
                json_t *text;

                ret = ctl_call(o, client, "org.varlink.service.GetInterfaceDescription",
                               json_pack("{s:O}", "interface", iface), &d);
                if (ret > 0)
                        break;
                text = json_object_get(d.parameters, "description");
                if (o->json)
                        ctl_print_json(o, d.parameters);
                else if (json_is_string(text))
                        printf("%s%s%s", i > 0 ? "\n" : "", json_string_value(text),
                               json_string_length(text) > 0 &&
                                               json_string_value(text)[json_string_length(text) - 1] == '\n'
                                       ? ""
                                       : "\n");
                varlink_reply_done(&d);
        }
        json_decref(ifaces);
        varlink_reply_done(&info);
        return ret;
}
