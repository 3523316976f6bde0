/* SPDX-License-Identifier: MIT */
/*
 * crash-writer.c - the writer and the checker of the queue crash test (crash-test.sh) and of
 * the full-disk test (full-disk.sh)
 *
 *   crash-writer write DIR        queue messages forever, in batches of 1..5 through queue_new(),
 *                                 queue_buf_* and queue_store_commit(); print each committed ID
 *                                 on its own line, flushed, only after the commit returned
 *   crash-writer check DIR IDS [--no-temps]
 *                                 open the spool (which removes stale temporary files), then
 *                                 require: every name in incoming is a temporary name or a whole
 *                                 ready queue file that decodes; every whole line of IDS names
 *                                 one; with --no-temps, no temporary name is left
 *   crash-writer fill DIR         queue messages until the file system is full; require that the
 *                                 failure is -ENOSPC and that it left no temporary file and
 *                                 nothing of the failed message visible
 *
 * Exit status 0 when every requirement held, 1 otherwise (with the reason on stderr), 2 usage.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "queue-sample.h"
#include "queue-store.h"

static const char *const rcpts[] = { "one@example.com", "two@example.com", "three@example.net" };

/* write_split - BUF to FD in two writes, so that a kill can fall between them */
static int write_split(int fd, const uint8_t *buf, size_t size)
{
        size_t half = size / 2;

        if (write(fd, buf, half) != (ssize_t) half)
                return errno ? -errno : -EIO;
        if (write(fd, buf + half, size - half) != (ssize_t) (size - half))
                return errno ? -errno : -EIO;
        return 0;
}

/* do_write - the writer; never returns unless something fails */
static int do_write(const char *dir)
{
        QueueStore *s = NULL;
        QueueBuf b = {};
        int r;

        r = queue_store_open(dir, NULL, 0, &s);
        if (r < 0) {
                fprintf(stderr, "open %s: %s\n", dir, strerror(-r));
                return 1;
        }
        for (unsigned round = 0;; round++) {
                QueueNew *v[5] = {};
                size_t n = 1 + round % 5;

                for (size_t i = 0; i < n; i++) {
                        r = queue_new(s, &v[i]);
                        if (r < 0)
                                goto fail;
                        errno = 0;
                        r = queue_sample_build(&b, queue_new_id(v[i]), rcpts, 1 + i % 3,
                                               5 + 40 * (round % 7));
                        if (r >= 0)
                                r = write_split(queue_new_fd(v[i]), b.data, b.size);
                        if (r < 0)
                                goto fail;
                }
                r = queue_store_commit(s, v, n, NULL);
                if (r < 0)
                        goto fail;
                for (size_t i = 0; i < n; i++) {
                        printf("%s\n", queue_new_id(v[i]));
                        queue_new_free(v[i]);
                }
                fflush(stdout);
                continue;
        fail:
                fprintf(stderr, "write: %s\n", strerror(-r));
                return 1;
        }
}

/* temp_name - tern's (and Postfix's) temporary names hold a '.'; queue IDs never do */
static bool temp_name(const char *name)
{
        return strchr(name, '.') != NULL;
}

/* check_incoming - every name is a temporary one or a whole ready queue file; counts */
static int check_incoming(QueueStore *s, const char *dir, size_t *ret_temps, size_t *ret_files)
{
        char path[4096];
        struct dirent *de;
        size_t temps = 0, files = 0;
        DIR *d;
        int bad = 0;

        snprintf(path, sizeof(path), "%s/incoming", dir);
        d = opendir(path);
        if (!d) {
                fprintf(stderr, "%s: %m\n", path);
                return -1;
        }
        while ((de = readdir(d))) {
                QueueMessage *m = NULL;
                const char *reason = NULL;
                int r;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (temp_name(de->d_name)) {
                        temps++;
                        continue;
                }
                r = queue_message_open(s, QUEUE_INCOMING, de->d_name, &m, &reason);
                if (r < 0) {
                        fprintf(stderr, "incoming/%s: not a whole ready queue file: %s%s%s\n", de->d_name,
                                strerror(-r), reason ? ": " : "", strempty(reason));
                        bad = -1;
                        continue;
                }
                if (!m->envelope.complete || m->envelope.n_rcpts == 0) {
                        fprintf(stderr, "incoming/%s: incomplete envelope\n", de->d_name);
                        bad = -1;
                }
                queue_message_free(m);
                files++;
        }
        closedir(d);
        *ret_temps = temps;
        *ret_files = files;
        return bad;
}

/* do_check - see the top */
static int do_check(const char *dir, const char *ids, bool no_temps)
{
        QueueStore *s = NULL;
        size_t temps, files, committed = 0;
        char line[256];
        FILE *f;
        int r, ret = 0;

        r = queue_store_open(dir, NULL, 0, &s);
        if (r < 0) {
                fprintf(stderr, "open %s: %s\n", dir, strerror(-r));
                return 1;
        }
        if (check_incoming(s, dir, &temps, &files) < 0)
                ret = 1;
        if (no_temps && temps > 0) {
                fprintf(stderr, "%zu stale temporary files left after queue_store_open()\n", temps);
                ret = 1;
        }

        f = fopen(ids, "re");
        if (!f) {
                fprintf(stderr, "%s: %m\n", ids);
                queue_store_free(s);
                return 1;
        }
        while (fgets(line, sizeof(line), f)) {
                size_t len = strlen(line);
                QueueMessage *m = NULL;
                const char *reason = NULL;

                if (len == 0 || line[len - 1] != '\n')
                        break;          /* a line cut by the kill: the ID was not yet reported */
                line[len - 1] = '\0';
                committed++;
                r = queue_message_open(s, QUEUE_INCOMING, line, &m, &reason);
                if (r < 0) {
                        fprintf(stderr, "committed %s: %s%s%s\n", line, strerror(-r), reason ? ": " : "",
                                strempty(reason));
                        ret = 1;
                        continue;
                }
                queue_message_free(m);
        }
        fclose(f);
        printf("incoming: %zu queue files, %zu temporary; %zu reported committed\n", files, temps,
               committed);
        queue_store_free(s);
        return ret;
}

/* do_fill - see the top */
static int do_fill(const char *dir)
{
        QueueStore *s = NULL;
        QueueBuf b = {};
        size_t committed = 0, temps, files;
        char failed_id[QUEUE_ID_MAX] = "";
        const char *stage = NULL;
        struct stat st;
        int r, ret = 0;

        r = queue_store_open(dir, NULL, 0, &s);
        if (r < 0) {
                fprintf(stderr, "open %s: %s\n", dir, strerror(-r));
                return 1;
        }
        for (;;) {
                QueueNew *n = NULL;

                r = queue_new(s, &n);
                if (r < 0) {
                        stage = "queue_new";
                        break;
                }
                strcpy(failed_id, queue_new_id(n));
                r = queue_sample_build(&b, queue_new_id(n), rcpts, 3, 200);
                if (r < 0) {
                        queue_new_free(n);
                        stage = "build";
                        break;
                }
                errno = 0;
                r = write_split(queue_new_fd(n), b.data, b.size);
                if (r < 0) {
                        queue_new_free(n);
                        stage = "write";
                        break;
                }
                r = queue_store_commit(s, &n, 1, NULL);
                queue_new_free(n);
                if (r < 0) {
                        stage = "queue_store_commit";
                        break;
                }
                committed++;
                failed_id[0] = '\0';
        }
        queue_buf_done(&b);
        printf("after %zu messages: %s: %s\n", committed, stage, strerror(-r));
        if (r != -ENOSPC) {
                fprintf(stderr, "expected ENOSPC\n");
                ret = 1;
        }
        if (check_incoming(s, dir, &temps, &files) < 0)
                ret = 1;
        if (temps > 0) {
                fprintf(stderr, "%zu temporary files left\n", temps);
                ret = 1;
        }
        if (files != committed) {
                fprintf(stderr, "%zu queue files, %zu committed\n", files, committed);
                ret = 1;
        }
        if (failed_id[0] && queue_store_stat(s, QUEUE_INCOMING, failed_id, &st) != -ENOENT) {
                fprintf(stderr, "the failed message %s is visible\n", failed_id);
                ret = 1;
        }
        queue_store_free(s);
        return ret;
}

int main(int argc, char **argv)
{
        if (argc == 3 && streq(argv[1], "write"))
                return do_write(argv[2]);
        if ((argc == 4 || argc == 5) && streq(argv[1], "check"))
                return do_check(argv[2], argv[3], argc == 5 && streq(argv[4], "--no-temps"));
        if (argc == 3 && streq(argv[1], "fill"))
                return do_fill(argv[2]);
        fprintf(stderr, "usage: %s write DIR | check DIR IDS [--no-temps] | fill DIR\n", argv[0]);
        return 2;
}
