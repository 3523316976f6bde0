/* SPDX-License-Identifier: MIT */
/*
 * fuzz-delivery-reply.c - libFuzzer target for io.tern.Delivery's decoders (src/lib/delivery.c)
 *
 * The input is parsed as JSON and given to delivery_reply_from_json() (what qmgr does with an
 * agent's answer) and delivery_request_from_json() (what an agent does with qmgr's call, with a
 * descriptor table of valid and invalid entries). A decode either fails with its documented
 * error and a reason or field, or yields a value that obeys the decoder's promises (statuses
 * known, dsn classes matching, offsets distinct, the fd one of the valid ones) and that survives
 * encode + decode unchanged. The first 8 bytes also go through format_delay(), whose output must
 * be a short decimal number. Never crash, never leak. Seeds: fuzz/corpus/delivery-reply/.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>

#include "delivery.h"
#include "json-util.h"
#include "macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fds[3] = { -EBADF, -1, -EBADF };

static void check_reply(json_t *params)
{
        DeliveryReply r = {}, again = {};
        const char *reason = NULL;
        json_t *encoded;
        int k;

        k = delivery_reply_from_json(params, &r, &reason);
        if (k < 0) {
                if ((k != -EBADMSG && k != -ENOMEM) || (k == -EBADMSG && !reason))
                        abort();
                return;
        }
        for (size_t i = 0; i < r.n_results; i++) {
                const DeliveryResult *p = &r.results[i];
                if (!delivery_status_to_string(p->status) || !dsn_valid(p->dsn) || p->offset < 0)
                        abort();
                for (size_t j = 0; j < i; j++)
                        if (r.results[j].offset == p->offset)
                                abort();
        }
        if (r.hop_failed && (!dsn_valid(r.hop_dsn) || !r.hop_text))
                abort();
        encoded = delivery_reply_to_json(&r);
        if (encoded) {
                if (delivery_reply_from_json(encoded, &again, &reason) < 0 || again.n_results != r.n_results ||
                    again.hop_failed != r.hop_failed)
                        abort();
                for (size_t i = 0; i < r.n_results; i++)
                        if (again.results[i].offset != r.results[i].offset ||
                            again.results[i].status != r.results[i].status ||
                            !streq(again.results[i].text, r.results[i].text))
                                abort();
                delivery_reply_done(&again);
                json_decref(encoded);
        }
        delivery_reply_done(&r);
}

static void check_request(json_t *params)
{
        DeliveryRequest r = {}, again = {};
        const char *field = NULL;
        json_t *encoded;
        int k;

        k = delivery_request_from_json(params, fds, ELEMENTSOF(fds), &r, &field);
        if (k < 0) {
                if ((k != -EINVAL && k != -ENOMEM) || (k == -EINVAL && !field))
                        abort();
                return;
        }
        if (r.fd != fds[0] && r.fd != fds[2])
                abort();
        if (r.n_recipients == 0 || r.n_recipients > DELIVERY_RECIPIENTS_MAX)
                abort();
        encoded = delivery_request_to_json(&r);
        if (encoded) {
                /* the encoder names the descriptor 0 */
                if (delivery_request_from_json(encoded, fds, ELEMENTSOF(fds), &again, &field) < 0 ||
                    again.n_recipients != r.n_recipients || !streq(again.queue_id, r.queue_id) ||
                    !streq(again.sender, r.sender) || again.arrival_usec != r.arrival_usec)
                        abort();
                for (size_t i = 0; i < r.n_recipients; i++)
                        if (again.recipients[i].offset != r.recipients[i].offset ||
                            !streq(again.recipients[i].address, r.recipients[i].address))
                                abort();
                delivery_request_done(&again);
                json_decref(encoded);
        }
        delivery_request_done(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        json_t *params;

        if (fds[0] < 0) {
                fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
                fds[2] = fcntl(fds[0], F_DUPFD_CLOEXEC, 3);
                if (fds[0] < 0 || fds[2] < 0)
                        abort();
        }
        if (size >= 8) {
                char buf[DELAY_STRING_MAX];
                int64_t v;

                memcpy(&v, data, sizeof(v));
                format_delay(v, buf);
                if (strlen(buf) == 0 || strlen(buf) >= DELAY_STRING_MAX || strspn(buf, "0123456789.") != strlen(buf))
                        abort();
        }
        params = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES, NULL);
        if (params) {
                check_reply(params);
                check_request(params);
        }
        json_decref(params);
        return 0;
}
