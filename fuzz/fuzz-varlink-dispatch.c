/* SPDX-License-Identifier: MIT */
/*
 * fuzz-varlink-dispatch.c - libFuzzer target for varlink_dispatch_check()
 *
 * The input is decoded as a varlink call (or, failing that, as a bare JSON object taken as the
 * parameters) and its parameters are checked against two field tables that cover every field
 * type: one with every field optional, one with every field mandatory and nullable. The
 * descriptor table has invalid (-1, -EBADF) and valid entries, so "fd" indexes hit both.
 * Whatever is decoded is read back (strings walked, types checked), so a wrong type written
 * into the output struct shows. Never crash, never leak. Seeds: fuzz/corpus/varlink-dispatch/.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>

#include "json-util.h"
#include "macro.h"
#include "varlink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct Out {
        const char *s;
        int64_t i;
        bool b;
        double d;
        json_t *o, *a, *sv, *any;
        int fd;
} Out;

#define FIELD(name, type, member, flags)                                                                    \
        {                                                                                                   \
                name, type, offsetof(Out, member), flags                                                    \
        }

static const VarlinkField optional_fields[] = {
        FIELD("s", VARLINK_FIELD_STRING, s, 0),    FIELD("i", VARLINK_FIELD_INT, i, 0),
        FIELD("b", VARLINK_FIELD_BOOL, b, 0),      FIELD("d", VARLINK_FIELD_FLOAT, d, 0),
        FIELD("o", VARLINK_FIELD_OBJECT, o, 0),    FIELD("a", VARLINK_FIELD_ARRAY, a, 0),
        FIELD("sv", VARLINK_FIELD_STRINGV, sv, 0), FIELD("fd", VARLINK_FIELD_FD, fd, 0),
        FIELD("any", VARLINK_FIELD_ANY, any, 0),   {},
};

static const VarlinkField mandatory_fields[] = {
        FIELD("s", VARLINK_FIELD_STRING, s, VARLINK_FIELD_MANDATORY | VARLINK_FIELD_NULLABLE),
        FIELD("i", VARLINK_FIELD_INT, i, VARLINK_FIELD_MANDATORY | VARLINK_FIELD_NULLABLE),
        FIELD("b", VARLINK_FIELD_BOOL, b, VARLINK_FIELD_MANDATORY | VARLINK_FIELD_NULLABLE),
        FIELD("d", VARLINK_FIELD_FLOAT, d, VARLINK_FIELD_MANDATORY),
        FIELD("o", VARLINK_FIELD_OBJECT, o, VARLINK_FIELD_MANDATORY),
        FIELD("a", VARLINK_FIELD_ARRAY, a, VARLINK_FIELD_MANDATORY | VARLINK_FIELD_NULLABLE),
        FIELD("sv", VARLINK_FIELD_STRINGV, sv, VARLINK_FIELD_MANDATORY),
        FIELD("fd", VARLINK_FIELD_FD, fd, VARLINK_FIELD_MANDATORY),
        FIELD("any", VARLINK_FIELD_ANY, any, VARLINK_FIELD_MANDATORY),
        {},
};

static int fds[4] = {-1, -EBADF, -EBADF, -EBADF};

static void check(json_t *parameters, const VarlinkField *fields)
{
        Out out = {.fd = -EBADF};
        const char *bad = NULL;
        int r;

        r = varlink_dispatch_check(parameters, fields, fds, ELEMENTSOF(fds), &out, &bad);
        if (r < 0) {
                if (r != -EINVAL || !bad)
                        abort();
                /* the offending name is a parameter given or a field of the table */
                if (!json_object_get(parameters, bad)) {
                        bool known = false;
                        for (const VarlinkField *f = fields; f->name; f++)
                                known = known || streq(f->name, bad);
                        if (!known)
                                abort();
                }
                return;
        }
        if (out.s && strlen(out.s) > json_string_length(json_object_get(parameters, "s")))
                abort();
        if ((out.o && !json_is_object(out.o)) || (out.a && !json_is_array(out.a)) ||
            (out.sv && !json_is_array(out.sv)))
                abort();
        if (out.sv) {
                size_t i;
                json_t *e;
                json_array_foreach(out.sv, i, e) if (!json_is_string(e) ||
                                                     strlen(json_string_value(e)) != json_string_length(e))
                        abort();
        }
        if (out.fd != -EBADF && out.fd < 0)
                abort();
        if (out.fd >= 0 && out.fd != fds[1] && out.fd != fds[3])
                abort();
        if (out.any)
                (void)json_typeof(out.any);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        VarlinkMessage m;
        json_t *parameters;

        if (fds[1] < 0) {
                fds[1] = open("/dev/null", O_RDONLY | O_CLOEXEC);
                fds[3] = fcntl(fds[1], F_DUPFD_CLOEXEC, 3);
                if (fds[1] < 0 || fds[3] < 0)
                        abort();
        }
        if (varlink_message_parse_call((const char *)data, size, &m, NULL) >= 0) {
                check(m.parameters, optional_fields);
                check(m.parameters, mandatory_fields);
                varlink_message_done(&m);
                return 0;
        }
        parameters = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
        if (parameters && json_is_object(parameters)) {
                check(parameters, optional_fields);
                check(parameters, mandatory_fields);
        }
        json_decref(parameters);
        return 0;
}
