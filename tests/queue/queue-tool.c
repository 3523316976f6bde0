/* SPDX-License-Identifier: MIT */
/*
 * queue-tool.c - write and read queue files with tern's codec, for tests (never installed)
 *
 *   queue-tool write FILE [-t SEC.USEC] [-c CREATE_TIME] [-w WARN_TIME] [-F FULLNAME] [-f SENDER] [-a NAME=VALUE]...
 *                         [-o ORIG] [-r RCPT]... [-d RCPT]... [-P RCPT]...   < content
 *   queue-tool dump FILE        the envelope as queue_envelope_parse() sees it (exit 2: invalid)
 *   queue-tool records FILE     every record as rec_next() reads it, from the start
 *   queue-tool id SEC USEC INODE | parse-id ID | hash ID DEPTH
 *   queue-tool enqueue QUEUE_DIR QUEUE COUNT TEMPLATE [NEXT_ATTEMPT]
 *                               COUNT copies of the queue file TEMPLATE made real queue files
 *                               through queue-store (queue_new, durable group commits), then
 *                               moved to QUEUE (incoming, deferred, hold) with their mtime set
 *                               to NEXT_ATTEMPT (epoch seconds) when given; prints the IDs
 *
 * write lays a file out as tern's cleanup does (C T A F S A... O R... M N/L... X E, C rewritten
 * last); -o gives the next -r/-d an original recipient; -d writes a recipient and then marks it
 * done in place ('D' over the R byte, at the offset queue_envelope_parse() reports); -P appends a
 * recipient after E and links it the way Postfix's cleanup does for a milter's added recipient
 * (a p record in the envelope jumps to it, a p record after it jumps back). Content lines come
 * from stdin, split at '\n'.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "queue-file.h"
#include "queue-id.h"
#include "queue-store.h"

#define ARGS_MAX 256

static int die(const char *what, int r)
{
        fprintf(stderr, "queue-tool: %s: %s\n", what, strerror(r < 0 ? -r : r));
        exit(1);
}

#define CHECK(x)                                                                                            \
        do {                                                                                                \
                int _r = (x);                                                                               \
                if (_r < 0)                                                                                 \
                        die(#x, _r);                                                                        \
        } while (0)

static char *read_all(FILE *f, size_t *ret_size)
{
        char *buf = NULL;
        size_t size = 0, alloc = 0, k;

        do {
                if (size == alloc) {
                        alloc = alloc ? alloc * 2 : 65536;
                        buf = realloc(buf, alloc);
                        if (!buf)
                                die("realloc", -ENOMEM);
                }
                k = fread(buf + size, 1, alloc - size, f);
                size += k;
        } while (k > 0);
        *ret_size = size;
        return buf;
}

static int cmd_write(int argc, char **argv)
{
        const char *path = argv[2], *sender = "", *full = NULL, *orig = NULL;
        const char *attrs[ARGS_MAX], *rcpts[ARGS_MAX], *origs[ARGS_MAX], *appended[ARGS_MAX];
        bool done[ARGS_MAX];
        size_t n_attrs = 0, n_rcpts = 0, n_appended = 0;
        long long sec = 1700000000, usec = 0, ctime = -1, warn = -1;
        QueueBuf b = {};
        char blank[QUEUE_FILE_SIZE_REC_LEN], ptr[16];
        size_t ptr_at = 0, after_ptr = 0, data_offset, xtra, content_length = 0;
        int opt;

        optind = 3;
        while ((opt = getopt(argc, argv, "t:c:w:F:f:a:o:r:d:P:")) > 0) {
                switch (opt) {
                case 'w':
                        warn = atoll(optarg);
                        break;
                case 't':
                        if (sscanf(optarg, "%lld.%lld", &sec, &usec) < 1)
                                die("-t", -EINVAL);
                        break;
                case 'c':
                        ctime = atoll(optarg);
                        break;
                case 'F':
                        full = optarg;
                        break;
                case 'f':
                        sender = optarg;
                        break;
                case 'a':
                        if (n_attrs < ARGS_MAX)
                                attrs[n_attrs++] = optarg;
                        break;
                case 'o':
                        orig = optarg;
                        break;
                case 'r':
                case 'd':
                        if (n_rcpts < ARGS_MAX) {
                                done[n_rcpts] = opt == 'd';
                                origs[n_rcpts] = orig;
                                rcpts[n_rcpts++] = optarg;
                                orig = NULL;
                        }
                        break;
                case 'P':
                        if (n_appended < ARGS_MAX)
                                appended[n_appended++] = optarg;
                        break;
                default:
                        return 2;
                }
        }

        memset(blank, ' ', sizeof(blank));
        CHECK(queue_buf_put(&b, REC_TYPE_SIZE, blank, sizeof(blank)));
        CHECK(queue_buf_putf(&b, REC_TYPE_TIME, "%lld %lld", sec, usec));
        CHECK(queue_buf_putf(&b, REC_TYPE_ATTR, "create_time=%lld", ctime >= 0 ? ctime : sec));
        if (warn >= 0)
                CHECK(queue_buf_putf(&b, REC_TYPE_WARN, "%15lld", warn));
        if (full)
                CHECK(queue_buf_put(&b, REC_TYPE_FULL, full, strlen(full)));
        CHECK(queue_buf_put(&b, REC_TYPE_FROM, sender, strlen(sender)));
        for (size_t i = 0; i < n_attrs; i++)
                CHECK(queue_buf_put(&b, REC_TYPE_ATTR, attrs[i], strlen(attrs[i])));
        for (size_t i = 0; i < n_rcpts; i++) {
                if (origs[i])
                        CHECK(queue_buf_put(&b, REC_TYPE_ORCP, origs[i], strlen(origs[i])));
                CHECK(queue_buf_put(&b, REC_TYPE_RCPT, rcpts[i], strlen(rcpts[i])));
        }
        if (n_appended) {
                snprintf(ptr, sizeof(ptr), "%15d", 0);
                ptr_at = b.size + 2;
                CHECK(queue_buf_put(&b, REC_TYPE_PTR, ptr, 15));
                after_ptr = b.size;
        }
        CHECK(queue_buf_put(&b, REC_TYPE_MESG, "", 0));
        data_offset = b.size;
        {
                size_t size;
                char *text = read_all(stdin, &size), *p = text, *end = text + size;

                while (p < end) {
                        char *nl = memchr(p, '\n', (size_t)(end - p));
                        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);

                        CHECK(queue_buf_put_line(&b, p, len));
                        content_length += len + 1;
                        p += len + (nl ? 1 : 0);
                }
                free(text);
        }
        xtra = b.size;
        CHECK(queue_buf_put(&b, REC_TYPE_XTRA, "", 0));
        CHECK(queue_buf_put(&b, REC_TYPE_END, "", 0));
        if (n_appended) {
                snprintf(ptr, sizeof(ptr), "%15zu", b.size);
                memcpy(b.data + ptr_at, ptr, 15);
                for (size_t i = 0; i < n_appended; i++)
                        CHECK(queue_buf_put(&b, REC_TYPE_RCPT, appended[i], strlen(appended[i])));
                CHECK(queue_buf_putf(&b, REC_TYPE_PTR, "%15zu", after_ptr));
        }
        QueueSizeRecord s = {
                .content_size = (int64_t)(xtra - data_offset),
                .data_offset = (int64_t)data_offset,
                .rcpt_count = (int64_t)(n_rcpts + n_appended),
                .content_length = (int64_t)content_length,
        };
        queue_size_record_format(&s, (char *)b.data + 2);

        /* Mark the -d recipients done where the reader says their records are. */
        QueueEnvelope e;
        const char *reason = NULL;
        if (queue_envelope_parse(b.data, b.size, &e, &reason) < 0) {
                fprintf(stderr, "queue-tool: the file written does not read back: %s\n", reason);
                return 1;
        }
        for (size_t i = 0; i < n_rcpts; i++)
                if (done[i])
                        b.data[e.rcpts[i].offset] = REC_TYPE_DONE;
        queue_envelope_done(&e);

        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
        if (fd < 0 || write(fd, b.data, b.size) != (ssize_t)b.size || close(fd) < 0)
                die(path, -errno);
        queue_buf_done(&b);
        return 0;
}

/* files per queue_store_commit(): one group commit for each */
#define ENQUEUE_BATCH 256

static int cmd_enqueue(const char *dir, const char *queue, long long count, const char *template,
                       long long next_attempt)
{
        char *const hashed[] = { (char *) "deferred", (char *) "defer", NULL };
        QueueStore *s = NULL;
        QueueNew *batch[ENQUEUE_BATCH];
        QueueName to = queue_name_from_string(queue);
        FILE *f = fopen(template, "re");
        size_t size;
        char *data;

        if (!f)
                die(template, -errno);
        if (to < 0 || to == QUEUE_ACTIVE || to == QUEUE_CORRUPT)
                die(queue, -EINVAL);
        data = read_all(f, &size);
        fclose(f);
        CHECK(queue_store_open(dir, hashed, 1, &s));
        for (long long done = 0; done < count;) {
                size_t n = (size_t) MIN((long long) ENQUEUE_BATCH, count - done);
                for (size_t i = 0; i < n; i++) {
                        CHECK(queue_new(s, &batch[i]));
                        if (write(queue_new_fd(batch[i]), data, size) != (ssize_t) size)
                                die("write", -errno);
                }
                CHECK(queue_store_commit(s, batch, n, NULL));
                for (size_t i = 0; i < n; i++) {
                        char id[QUEUE_ID_MAX];
                        snprintf(id, sizeof(id), "%s", queue_new_id(batch[i]));
                        queue_new_free(batch[i]);
                        if (to != QUEUE_INCOMING)
                                CHECK(queue_store_move(s, QUEUE_INCOMING, id, to, next_attempt));
                        printf("%s\n", id);
                }
                done += (long long) n;
        }
        free(data);
        queue_store_free(s);
        return fflush(stdout) == 0 ? 0 : 1;
}

static int cmd_dump(const char *path)
{
        FILE *f = fopen(path, "re");
        size_t size;
        char *buf;
        QueueEnvelope e;
        const char *reason = NULL;

        if (!f)
                die(path, -errno);
        buf = read_all(f, &size);
        fclose(f);
        if (queue_envelope_parse(buf, size, &e, &reason) < 0) {
                printf("invalid: %s\n", reason);
                free(buf);
                return 2;
        }
        printf("size: %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 "\n",
               e.size_rec.content_size, e.size_rec.data_offset, e.size_rec.rcpt_count, e.size_rec.qmgr_flags,
               e.size_rec.content_length, e.size_rec.sendopts);
        printf("arrival: %" PRId64 ".%06" PRId64 "\n", e.arrival_sec, e.arrival_usec);
        printf("create_time: %" PRId64 "\n", e.create_time);
        if (e.full_name)
                printf("full_name: %s\n", e.full_name);
        printf("sender: %s\n", e.sender);
        for (size_t i = 0; i < e.n_attrs; i++)
                printf("attr: %s=%s\n", e.attr_names[i], e.attr_values[i]);
        for (size_t i = 0; i < e.n_rcpts; i++)
                printf("rcpt: %s orig=%s done=%d\n", e.rcpts[i].address, e.rcpts[i].orig_address,
                       e.rcpts[i].done);
        printf("content_offset: %" PRIu64 "\nxtra_offset: %" PRIu64 "\n", e.content_offset, e.xtra_offset);
        queue_envelope_done(&e);
        free(buf);
        return 0;
}

static int cmd_records(const char *path)
{
        FILE *f = fopen(path, "re");
        size_t size;
        char *buf;
        RecReader rd;
        QueueRecord rec;
        int r;

        if (!f)
                die(path, -errno);
        buf = read_all(f, &size);
        fclose(f);
        rec_reader_init(&rd, buf, size, 0);
        while ((r = rec_next(&rd, &rec)) == 1)
                printf("%c %.*s\n", rec.type, (int)rec.size, (const char *)rec.data);
        free(buf);
        if (r < 0) {
                printf("error: %s\n", strerror(-r));
                return 2;
        }
        return 0;
}

int main(int argc, char **argv)
{
        if (argc >= 3 && streq(argv[1], "write")) {
                return cmd_write(argc, argv);
        }
        if ((argc == 6 || argc == 7) && streq(argv[1], "enqueue"))
                return cmd_enqueue(argv[2], argv[3], atoll(argv[4]), argv[5], argc == 7 ? atoll(argv[6]) : -1);
        if (argc == 3 && streq(argv[1], "dump"))
                return cmd_dump(argv[2]);
        if (argc == 3 && streq(argv[1], "records"))
                return cmd_records(argv[2]);
        if (argc == 5 && streq(argv[1], "id")) {
                char id[QUEUE_ID_MAX];

                CHECK(queue_id_make(strtoull(argv[2], NULL, 10), (uint32_t)strtoul(argv[3], NULL, 10),
                                    strtoull(argv[4], NULL, 10), id));
                printf("%s\n", id);
                return 0;
        }
        if (argc == 3 && streq(argv[1], "parse-id")) {
                uint64_t sec, inode;
                uint32_t usec;

                CHECK(queue_id_parse(argv[2], &sec, &usec, &inode));
                printf("%" PRIu64 " %" PRIu32 " %" PRIu64 "\n", sec, usec, inode);
                return 0;
        }
        if (argc == 4 && streq(argv[1], "hash")) {
                char path[2 * QUEUE_HASH_DEPTH_MAX + 1];

                CHECK(queue_id_hash_path(argv[2], (unsigned)atoi(argv[3]), path, sizeof(path)));
                printf("%s\n", path);
                return 0;
        }
        fprintf(stderr, "usage: queue-tool write|dump|records|id|parse-id|hash ...\n");
        return 2;
}
