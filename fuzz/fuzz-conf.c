/* SPDX-License-Identifier: MIT */
/*
 * fuzz-conf.c - libFuzzer target for the main.cf reader (src/lib/conf.c)
 *
 * Feeds the bytes to conf_load_string() as the file of program "flush", then reads every
 * parameter, the per-transport overrides, the warnings, the unknown names and the [transport]
 * table back, and frees everything. Must never crash, leak or trip a sanitizer, whatever the
 * input: it either loads or fails with an error text. Seeds: fuzz/corpus/conf/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const ConfTransportEntry *t;
        const char *const *w, *const *names, *const *values;
        const ConfParam *p;
        const char *s;
        Conf *c = NULL;
        char *err = NULL;
        int64_t v;
        size_t n;
        int r;

        r = conf_load_string((const char *)data, size, "main.cf", "flush", &c, &err);
        if (r < 0) {
                if (!err || c)
                        abort(); /* a failure always explains itself (short of ENOMEM) and returns no Conf */
                free(err);
                return 0;
        }
        if (err || !c)
                abort();

        p = conf_params(&n);
        for (size_t i = 0; i < n; i++) {
                if (!conf_get_string(c, p[i].name) || !conf_get_raw(c, p[i].name))
                        abort();
                (void)conf_is_default(c, p[i].name);
                switch (p[i].type) {
                case CONF_BOOL:
                        (void)conf_get_bool(c, p[i].name);
                        break;
                case CONF_INT:
                        if (conf_get_int(c, p[i].name) < p[i].min)
                                abort();
                        break;
                case CONF_TIME:
                        if (conf_get_time(c, p[i].name) < p[i].min)
                                abort();
                        break;
                case CONF_SIZE:
                        (void)conf_get_size(c, p[i].name);
                        break;
                case CONF_LIST:
                        for (char *const *l = conf_get_list(c, p[i].name); *l; l++)
                                if (!**l)
                                        abort(); /* no empty elements */
                        break;
                case CONF_STRING:
                        break;
                }
        }
        (void)conf_get_transport_int(c, "smtp", "destination_concurrency_limit", &v);
        (void)conf_get_transport_time(c, "smtp", "destination_rate_delay", &v);
        (void)conf_get_transport_string(c, "smtp", "destination_concurrency_positive_feedback", &s);

        n = conf_warnings(c, &w);
        for (size_t i = 0; i < n; i++)
                (void)strlen(w[i]);
        n = conf_unknown(c, &names, &values);
        for (size_t i = 0; i < n; i++)
                (void)(strlen(names[i]) + strlen(values[i]));
        n = conf_transport(c, &t);
        for (size_t i = 0; i < n; i++)
                (void)(strlen(t[i].pattern) + strlen(t[i].transport) + strlen(t[i].nexthop));

        conf_free(c);
        return 0;
}
