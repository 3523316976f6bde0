/* SPDX-License-Identifier: MIT */
/*
 * sendmail.c - tern-sendmail: the sendmail(1) command line for tern (see man/tern-sendmail.1)
 *
 *   tern-sendmail [-t] [-i|-oi] [-f sender] [-F name] [-C main.cf] [-bm] [recipient...]
 *   tern-sendmail -bp              (mailq)   list the queue, in postqueue -p's text
 *   tern-sendmail -q               flush the queue (Postfix: postqueue -f, triggers F A D I)
 *   tern-sendmail -qR site         deliver site's mail (ETRN)
 *   tern-sendmail -qI queueid      deliver one message
 *
 * Mail mode reads the message from stdin into a memfd (so that tern-submit gets a complete file
 * with a known size: a sendmail that is killed half-way queues nothing) and calls
 * io.tern.Submit.Submit with it. Without -i a line "." ends the message, as sendmail's does; a
 * leading mbox "From " line is dropped.
 * The options real programs pass and tern has no use for (-oem, -odi, -v, -N, -B, ...) are
 * accepted and ignored, as Postfix's sendmail does.
 *
 * Exit status, as sendmail's callers expect (sysexits): 0 queued; 64 usage (and no recipients);
 * 65 a bad address or message (NUL bytes, too big); 69 the service asked for is not there
 * (queue listing and flushing before tern-qmgr/tern-flush exist); 75 temporary failure (tern-submit
 * unreachable, disk full): try again later; 77 not in authorized_submit_users (-bp:
 * authorized_mailq_users); 71 system error.
 *
 * -bp prints what `ternctl queue list` prints, with the same code (src/ctl/queue-format.c and
 * queue-list.c are compiled into both programs).
 */
#include <fcntl.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "conf.h"
#include "config.h"
#include "json-util.h"
#include "macro.h"
#include "queue-format.h"
#include "flush-request.h"
#include "queue-list.h"
#include "varlink.h"

#define EX_USAGE_ 64
#define EX_DATAERR_ 65
#define EX_UNAVAILABLE_ 69
#define EX_SOFTWARE_ 70
#define EX_OSERR_ 71
#define EX_PROTOCOL_ 76
#define EX_IOERR_ 74
#define EX_TEMPFAIL_ 75
#define EX_NOPERM_ 77
#define EX_CONFIG_ 78

/* A submission waits for the group commit: a generous limit against a wedged daemon. */
#define SENDMAIL_TIMEOUT_SEC 300

typedef enum Mode {
        MODE_MAIL,
        MODE_LIST,
        MODE_FLUSH,
        MODE_FLUSH_SITE,
        MODE_FLUSH_ID,
} Mode;

static const char *program = "sendmail";

static const char *runtime_path(const Conf *c, const char *name, char *buf, size_t size)
{
        snprintf(buf, size, "%s/%s", conf_get_string(c, "runtime_directory"), name);
        return buf;
}

/* connect_service - connect or say why not: "tern-flush is not running: PATH: ..." */
static int connect_service(const Conf *c, const char *name, VarlinkClient **ret)
{
        char path[4096];
        int r;

        r = varlink_client_connect(runtime_path(c, name, path, sizeof(path)), ret);
        if (r < 0) {
                fprintf(stderr, "%s: tern-%s is not running: %s: %s\n", program, name, path, strerror(-r));
                return r;
        }
        varlink_client_set_timeout(*ret, SENDMAIL_TIMEOUT_SEC * USEC_PER_SEC);
        return 0;
}

/* call_service - one call to a queue service for -bp/-q*: 0, or an exit status */
static int call_service(const Conf *c, const char *service, const char *method, json_t *params)
{
        _cleanup_(varlink_client_freep) VarlinkClient *client = NULL;
        VarlinkReply reply = {};
        int r;

        if (connect_service(c, service, &client) < 0) {
                json_decref(params);
                return EX_UNAVAILABLE_;
        }
        r = varlink_client_call(client, method, params, NULL, 0, 0, &reply);
        if (r < 0) {
                fprintf(stderr, "%s: %s: %s\n", program, method, strerror(-r));
                return EX_UNAVAILABLE_;
        }
        if (r > 0) {
                fprintf(stderr, "%s: %s: %s\n", program, method, reply.error);
                varlink_reply_done(&reply);
                return EX_UNAVAILABLE_;
        }
        varlink_reply_done(&reply);
        return 0;
}

static int list_one(json_t *message, void *userdata)
{
        int r = mailq_message(userdata, stdout, message);

        fflush(stdout);
        return r;
}

/* list_queue - -bp (mailq): io.tern.Queue.List in postqueue -p's text; 0 or an exit status */
static int list_queue(const Conf *c)
{
        _cleanup_(varlink_client_freep) VarlinkClient *client = NULL;
        MailqState state = {};
        VarlinkReply error;
        int r;

        if (connect_service(c, "qmgr", &client) < 0)
                return EX_UNAVAILABLE_;
        r = queue_list(client, NULL, list_one, &state, &error);
        if (r > 0) {
                json_t *user = json_object_get(error.parameters, "user");

                if (streq(error.error, "io.tern.Queue.NotAuthorized")) {
                        fprintf(stderr, "%s: user %s may not list the mail queue (authorized_mailq_users)\n",
                                program, json_is_string(user) ? json_string_value(user) : "?");
                        r = EX_NOPERM_;
                } else {
                        fprintf(stderr, "%s: io.tern.Queue.List: %s\n", program, error.error);
                        r = EX_UNAVAILABLE_;
                }
                varlink_reply_done(&error);
                return r;
        }
        if (r < 0) {
                fprintf(stderr, "%s: io.tern.Queue.List: %s\n", program,
                        r == -EBADMSG ? "invalid reply" : strerror(-r));
                return r == -EBADMSG ? EX_PROTOCOL_ : r == -ETIMEDOUT ? EX_TEMPFAIL_ : EX_UNAVAILABLE_;
        }
        mailq_end(&state, stdout);
        return 0;
}

/* copy_message - stdin into a memfd, up to LIMIT+1 bytes; stops at a "." line unless IGNORE_DOTS */
static int copy_message(uint64_t limit, bool ignore_dots, int *ret_fd, uint64_t *ret_size)
{
        _cleanup_(closep) int fd = memfd_create("tern-sendmail", MFD_CLOEXEC);
        char buf[65536], out[65536 + 3];
        uint64_t total = 0;
        int state = 0;          /* 0 line start, 1 inside a line, 2 after a line-start ".", 3 after ".\r" */
        bool done = false, first_line = true;

        if (fd < 0)
                return -errno;
        while (!done) {
                ssize_t k = read(STDIN_FILENO, buf, sizeof(buf));
                size_t n = 0;

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                if (first_line) {
                        /* A leading mbox "From " line is not part of the message (Postfix's
                         * sendmail drops it too). Only looked for in the first read. */
                        first_line = false;
                        if (k >= 5 && memcmp(buf, "From ", 5) == 0) {
                                char *nl = memchr(buf, '\n', (size_t) k);
                                if (nl) {
                                        size_t skip = (size_t) (nl - buf) + 1;
                                        memmove(buf, buf + skip, (size_t) k - skip);
                                        k -= (ssize_t) skip;
                                }
                        }
                }
                for (ssize_t i = 0; i < k && !done; i++) {
                        char ch = buf[i];

                        if (!ignore_dots && state == 3) {
                                if (ch == '\n') {
                                        done = true;    /* ".\r\n": the end */
                                        break;
                                }
                                out[n++] = '.';
                                out[n++] = '\r';
                                state = 1;
                        }
                        if (!ignore_dots && state == 2) {
                                if (ch == '\n') {
                                        done = true;    /* "." alone: the end */
                                        break;
                                }
                                if (ch == '\r') {
                                        state = 3;      /* the \n may come in the next read */
                                        continue;
                                }
                                out[n++] = '.';
                                state = 1;
                        }
                        if (!ignore_dots && state == 0 && ch == '.') {
                                state = 2;
                                continue;
                        }
                        out[n++] = ch;
                        state = ch == '\n' ? 0 : 1;
                }
                if (n > 0) {
                        if (write(fd, out, n) != (ssize_t) n)
                                return -errno ?: -EIO;
                        total += n;
                }
                if (limit > 0 && total > limit)
                        return -EFBIG;
        }
        /* state 2 here: a "." at the very end without a line end ends the message too */
        *ret_fd = TAKE_FD(fd);
        *ret_size = total;
        return 0;
}

static int exit_for_error(const char *error)
{
        if (streq(error, "io.tern.Submit.InvalidAddress") || streq(error, "io.tern.Submit.InvalidMessage") ||
            streq(error, "io.tern.Submit.MessageTooBig") ||
            streq(error, "io.tern.Submit.UnreadableDescriptor"))
                return EX_DATAERR_;
        if (streq(error, "io.tern.Submit.NoRecipients") || streq(error, "io.tern.Submit.TooManyRecipients"))
                return EX_USAGE_;
        if (streq(error, "io.tern.Submit.NotAuthorized"))
                return EX_NOPERM_;
        if (streq(error, "io.tern.Submit.TemporaryFailure"))
                return EX_TEMPFAIL_;
        return EX_SOFTWARE_;
}

static int send_mail(const Conf *c, const char *sender, const char *full_name, char **rcpts, size_t n_rcpts,
                     bool extract, bool ignore_dots)
{
        _cleanup_(varlink_client_freep) VarlinkClient *client = NULL;
        _cleanup_(closep) int fd = -EBADF;
        VarlinkReply reply = {};
        json_t *params, *list;
        uint64_t size;
        char path[4096];
        int r;

        if (n_rcpts == 0 && !extract) {
                fprintf(stderr,
                        "%s: Recipient addresses must be specified on the command line or via the -t "
                        "option\n",
                        program);
                return EX_USAGE_;
        }
        r = copy_message(conf_get_size(c, "message_size_limit"), ignore_dots, &fd, &size);
        if (r == -EFBIG) {
                fprintf(stderr, "%s: message is larger than message_size_limit (%llu bytes)\n", program,
                        (unsigned long long) conf_get_size(c, "message_size_limit"));
                return EX_DATAERR_;
        }
        if (r < 0) {
                fprintf(stderr, "%s: cannot read the message: %s\n", program, strerror(-r));
                return EX_IOERR_;
        }

        list = json_array();
        for (size_t i = 0; list && i < n_rcpts; i++)
                json_array_append_new(list, json_string(rcpts[i]));
        params = json_pack("{s:s,s:o,s:i,s:I,s:b,s:b}", "sender", sender, "recipients",
                           list ? list : json_array(), "fd", 0, "size", (json_int_t) size,
                           "extractRecipients", extract, "ignoreDots", true);
        if (!params)
                return EX_OSERR_;
        if (full_name)
                json_object_set_new(params, "fullName", json_string(full_name));

        r = varlink_client_connect(runtime_path(c, "submit", path, sizeof(path)), &client);
        if (r < 0) {
                fprintf(stderr, "%s: tern-submit is not running: %s: %s\n", program, path, strerror(-r));
                json_decref(params);
                return EX_TEMPFAIL_;
        }
        varlink_client_set_timeout(client, SENDMAIL_TIMEOUT_SEC * USEC_PER_SEC);
        /* The "." rule was applied while copying: the server must take the copy as it is. */
        r = varlink_client_call(client, "io.tern.Submit.Submit", params, &fd, 1, 0, &reply);
        if (r < 0) {
                fprintf(stderr, "%s: io.tern.Submit.Submit: %s\n", program, strerror(-r));
                return EX_TEMPFAIL_;
        }
        if (r > 0) {
                json_t *reason = json_object_get(reply.parameters, "reason");
                fprintf(stderr, "%s: %s%s%s\n", program, reply.error, json_is_string(reason) ? ": " : "",
                        json_is_string(reason) ? json_string_value(reason) : "");
                r = exit_for_error(reply.error);
                varlink_reply_done(&reply);
                return r;
        }
        varlink_reply_done(&reply);
        return 0;
}

static void usage(void)
{
        fprintf(stderr,
                "Usage: %s [-t] [-i] [-f sender] [-F full name] [-C main.cf] [recipient...] < message\n"
                "       %s -bp | -q | -qR site | -qI queueid\n",
                program, program);
}

int main(int argc, char **argv)
{
        const char *sender = NULL, *full_name = NULL, *config = NULL, *arg = NULL;
        _cleanup_(freep) char *error = NULL;
        _cleanup_conf_ Conf *conf = NULL;
        bool extract = false, ignore_dots = false;
        char login[256];
        Mode mode = MODE_MAIL;
        const char *base;
        int c, r;

        base = strrchr(argv[0], '/');
        base = base ? base + 1 : argv[0];
        program = base;         /* messages say "tern-sendmail: ..." or "sendmail: ..." as invoked */
        if (streq(base, "mailq"))
                mode = MODE_LIST;

        /* Sendmail's option syntax: "-oi" "-odi" "-bp" "-qR site" "-qRsite" "-fuser" ... */
        opterr = 0;
        while ((c = getopt(argc, argv, "+A:B:C:F:GL:N:O:R:UV:X:b:ce:f:h:imno:p:q:r:tvx")) >= 0) {
                switch (c) {
                case 'C':
                        config = optarg;
                        break;
                case 'F':
                        full_name = optarg;
                        break;
                case 'f':
                case 'r':
                        sender = optarg;
                        break;
                case 't':
                        extract = true;
                        break;
                case 'i':
                        ignore_dots = true;
                        break;
                case 'o':
                        if (streq(optarg, "i"))
                                ignore_dots = true;
                        /* -oem -oee -odi -odb -om -oQ... -oX...: nothing for tern to do */
                        break;
                case 'b':
                        if (streq(optarg, "m"))
                                mode = MODE_MAIL;
                        else if (streq(optarg, "p"))
                                mode = MODE_LIST;
                        else {
                                fprintf(stderr, "%s: -b%s is not supported by tern\n", program, optarg);
                                return EX_USAGE_;
                        }
                        break;
                case 'q':
                        if (optarg[0] == 'R') {
                                mode = MODE_FLUSH_SITE;
                                arg = optarg[1] ? optarg + 1 : (optind < argc ? argv[optind++] : NULL);
                        } else if (optarg[0] == 'I') {
                                mode = MODE_FLUSH_ID;
                                arg = optarg[1] ? optarg + 1 : (optind < argc ? argv[optind++] : NULL);
                        } else
                                mode = MODE_FLUSH;     /* -q, -q30m: the interval means nothing to tern */
                        if ((mode == MODE_FLUSH_SITE || mode == MODE_FLUSH_ID) && isempty(arg)) {
                                usage();
                                return EX_USAGE_;
                        }
                        break;
                case 'A': case 'B': case 'G': case 'L': case 'N': case 'O': case 'R': case 'U': case 'V':
                case 'X': case 'c': case 'e': case 'h': case 'm': case 'n': case 'p': case 'v': case 'x':
                        break;          /* accepted and ignored, as Postfix's sendmail does */
                case '?':
                        /* bare -q takes no argument in getopt's eyes */
                        if (optopt == 'q') {
                                mode = MODE_FLUSH;
                                break;
                        }
                        fprintf(stderr, "%s: unknown option -%c\n", program, optopt);
                        usage();
                        return EX_USAGE_;
                default:
                        usage();
                        return EX_USAGE_;
                }
        }

        r = conf_load(conf_path(config), "sendmail", &conf, &error);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", program, error ? error : strerror(-r));
                return EX_CONFIG_;
        }

        switch (mode) {
        case MODE_LIST:
                return list_queue(conf);
        case MODE_FLUSH:
                /* postqueue -f (mail_flush_deferred): F A D I, unthrottle and scan everything now */
                return call_service(conf, "qmgr", "io.tern.Qmgr.Trigger",
                                    json_pack("{s:[s,s,s,s]}", "requests", "flushDead", "all", "deferred",
                                              "incoming"));
        case MODE_FLUSH_SITE:
                /* postqueue -s: Postfix's messages and exit codes (flush-request.c) */
                return flush_request(conf, program, "SendSite", json_pack("{s:s}", "site", arg), arg,
                                     SENDMAIL_TIMEOUT_SEC * USEC_PER_SEC, NULL);
        case MODE_FLUSH_ID:
                return flush_request(conf, program, "SendFile", json_pack("{s:s}", "queueId", arg), arg,
                                     SENDMAIL_TIMEOUT_SEC * USEC_PER_SEC, NULL);
        case MODE_MAIL:
                break;
        }

        if (!sender) {
                struct passwd *pw = getpwuid(getuid());
                snprintf(login, sizeof(login), "%s", pw ? pw->pw_name : "nobody");
                sender = login;
                if (!full_name && !isempty(getenv("NAME")))
                        full_name = getenv("NAME");
                if (!full_name && pw && !isempty(pw->pw_gecos)) {
                        /* the GECOS field's first part */
                        static char gecos[256];
                        snprintf(gecos, sizeof(gecos), "%.*s", (int) strcspn(pw->pw_gecos, ","),
                                 pw->pw_gecos);
                        if (gecos[0])
                                full_name = gecos;
                }
        }
        return send_mail(conf, sender, full_name, argv + optind, (size_t) (argc - optind), extract,
                         ignore_dots);
}
