/* SPDX-License-Identifier: MIT */
/*
 * fuzz-varlink-wire.c - libFuzzer target for varlink framing and message decoding
 *
 * The input drives a VarlinkWire the way a socket would: byte 0 picks the message size limit
 * (small ones mostly, so that -EMSGSIZE is reached; >= 128 means the real limit), then each
 * control byte says how many of the following bytes arrive in the next read (0-63, times 17
 * when bit 6 is set) and, with bit 7, that a descriptor comes with it (a duplicate of
 * /dev/null, so descriptor leaks would exhaust the table and show). After every read all
 * complete frames are pulled and decoded as a call and as a reply; a decoded message is encoded
 * again and must decode to the same JSON (an abort() otherwise).
 *
 * Never crash, never leak (LeakSanitizer). Seeds: fuzz/corpus/varlink-wire/.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "json-util.h"
#include "macro.h"
#include "varlink-wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int devnull = -EBADF;

/* check_round_trip - encode M's root; it must decode (the same way) to an equal object */
static void check_round_trip(const VarlinkMessage *m, bool call)
{
        _cleanup_(freep) char *text = NULL;
        VarlinkMessage again;
        size_t n;
        int r;

        r = varlink_message_encode(m->root, &text, &n);
        if (r < 0)
                abort();
        if (n != strlen(text) + 1)
                abort();
        r = call ? varlink_message_parse_call(text, n - 1, &again, NULL)
                 : varlink_message_parse_reply(text, n - 1, &again, NULL);
        if (r < 0) {
                fprintf(stderr, "encoded message does not decode again: %s\n", text);
                abort();
        }
        if (!json_equal(m->root, again.root) || again.more != m->more || again.oneway != m->oneway ||
            again.continues != m->continues || !streq(strempty(again.method), strempty(m->method)) ||
            !streq(strempty(again.error), strempty(m->error))) {
                fprintf(stderr, "encoded message decodes differently: %s\n", text);
                abort();
        }
        varlink_message_done(&again);
}

static void decode_frame(const VarlinkFrame *frame)
{
        VarlinkMessage m;
        const char *reason = NULL;

        if (varlink_message_parse_call(frame->data, frame->size, &m, &reason) >= 0) {
                if (!m.method || !m.parameters || !json_is_object(m.parameters))
                        abort();
                check_round_trip(&m, true);
                varlink_message_done(&m);
        } else if (!reason)
                abort();
        reason = NULL;
        if (varlink_message_parse_reply(frame->data, frame->size, &m, &reason) >= 0) {
                if (!m.parameters || !json_is_object(m.parameters))
                        abort();
                check_round_trip(&m, false);
                varlink_message_done(&m);
        } else if (!reason)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        VarlinkWire w;
        size_t off = 1, max_message;

        if (size < 1)
                return 0;
        if (devnull < 0) {
                devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (devnull < 0)
                        abort();
        }
        max_message = data[0] < 128 ? 1 + (size_t)data[0] * 4 : 0;
        varlink_wire_init(&w, max_message);

        while (off < size) {
                uint8_t ctl = data[off++];
                size_t n = (size_t)(ctl & 0x3f) * ((ctl & 0x40) ? 17 : 1);
                int fd = -EBADF, r;

                n = MIN(n, size - off);
                if (ctl & 0x80) {
                        fd = fcntl(devnull, F_DUPFD_CLOEXEC, 3);
                        if (fd < 0)
                                abort(); /* the table is full: something leaks */
                }
                r = varlink_wire_feed(&w, data + off, n, &fd, fd >= 0 ? 1 : 0);
                off += n;
                if (r == -EMSGSIZE || r == -ENOMEM)
                        break;
                if (r < 0 && r != -E2BIG && r != -EBADMSG)
                        abort();

                for (;;) {
                        VarlinkFrame frame;

                        r = varlink_wire_next(&w, &frame);
                        if (r <= 0)
                                break;
                        if (frame.size > w.max_message || frame.data[frame.size] != '\0' ||
                            memchr(frame.data, '\0', frame.size))
                                abort();
                        decode_frame(&frame);
                        close_many(frame.fds, frame.n_fds);
                }
                if (r < 0) {
                        if (r != -EMSGSIZE)
                                abort();
                        break;
                }
        }
        varlink_wire_done(&w);
        return 0;
}
