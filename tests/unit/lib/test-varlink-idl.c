/* SPDX-License-Identifier: MIT */
/*
 * test-varlink-idl.c - varlink_idl_parse() (src/lib/varlink-idl-parse.c) and the rule that the
 * methods bound in C are exactly those of the IDL
 *
 * Covers: the shipped IDL files (each compiled-in text parses, names its interface and lists
 * its methods in file order), crafted texts (comments, indentation, multi-line signatures,
 * types and errors ignored, missing or invalid interface names, a method without a name or
 * without "(" right after it), and, for every interface table tern has, the method set of the
 * C table against its IDL in both directions, with no duplicates and the table's description
 * being the compiled-in text. org.varlink.service is checked by varlink_server_new() succeeding
 * (it binds the built-in table through the same check).
 *
 * Limits: a daemon's table is added to interface_tables[] when the daemon lands; the parser is
 * deliberately not a validator of the whole IDL grammar (see varlink-idl-parse.c): texts that are
 * not valid IDL but contain the right "interface" and "method" lines are accepted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "delivery-agent.h"
#include "macro.h"
#include "testd-varlink.h"
#include "varlink-idl.h"
#include "varlink.h"

/* Every interface table tern binds, with the IDL text it must match. */
static const struct {
        const VarlinkInterface *iface;
        const char *idl;
} interface_tables[] = {
        {&testd_interface, varlink_idl_io_tern_Test},
        {&delivery_interface, varlink_idl_io_tern_Delivery},
};

/* joined - "A,B,C" for a NULL-terminated list (static buffer; for messages and comparisons) */
static const char *joined(char **v)
{
        static char buf[1024];
        size_t n = 0;

        buf[0] = '\0';
        for (char **p = v; p && *p; p++)
                n += (size_t)snprintf(buf + n, sizeof(buf) - MIN(n, sizeof(buf)), "%s%s", p == v ? "" : ",",
                                      *p);
        return buf;
}

typedef struct IdlCase {
        const char *what;
        const char *text;
        int want;
        const char *interface;
        const char *methods; /* comma-joined, in order */
} IdlCase;

static const IdlCase idl_cases[] = {
        {"minimal", "interface a.b\nmethod M() -> ()\n", 0, "a.b", "M"},
        {"no trailing newline", "interface a.b\nmethod M() -> ()", 0, "a.b", "M"},
        {"no methods", "interface io.tern.Empty\n", 0, "io.tern.Empty", ""},
        {"comments are not declarations",
         "# interface x.y\n# method Hidden() -> ()\ninterface a.b\n#method Also() -> ()\nmethod Shown() -> "
         "()\n",
         0, "a.b", "Shown"},
        {"indentation and tabs",
         "  interface a.b\n\tmethod One() -> ()\n    method Two(x: int) -> (y: int)\n", 0, "a.b", "One,Two"},
        {"multi-line signatures",
         "interface a.b\nmethod Long(\n  a: string,\n  method: int\n) -> (\n  b: []string\n)\nmethod Next() "
         "-> ()\n",
         0, "a.b", "Long,Next"},
        {"types and errors are not methods",
         "interface a.b\ntype Method (method: string)\nerror Failed (method: string)\nmethod Real() -> ()\n",
         0, "a.b", "Real"},
        {"keywords are whole words",
         "interface a.b\nmethods Not() -> ()\nmethodical Nor() -> ()\nmethod Yes() -> ()\n", 0, "a.b",
         "Yes"},
        {"the first interface line counts", "interface a.b\ninterface c.d\nmethod M() -> ()\n", 0, "a.b",
         "M"},
        {"CRLF-free text with blank lines", "\n\ninterface a.b\n\n\nmethod M() -> ()\n\n", 0, "a.b", "M"},
        {"empty text", "", -EINVAL},
        {"no interface line", "method M() -> ()\n", -EINVAL},
        {"one-component interface name", "interface tern\nmethod M() -> ()\n", -EINVAL},
        {"interface name with an underscore", "interface io.tern_x.Y\n", -EINVAL},
        {"interface keyword without a name", "interface\nmethod M() -> ()\n", -EINVAL},
        {"method without a name", "interface a.b\nmethod () -> ()\n", -EINVAL},
        {"method without parameters", "interface a.b\nmethod M\n", -EINVAL},
        {"method name then something else", "interface a.b\nmethod M -> ()\n", -EINVAL},
        {"blanks before the parameters (the grammar allows them)", "interface a.b\nmethod M\t () -> ()\n", 0,
         "a.b", "M"},
        {"a field named method alone on its line", "interface a.b\nmethod M(\n  method: string\n) -> ()\n",
         0, "a.b", "M"},
};

static void test_crafted(void **state)
{
        for (size_t i = 0; i < ELEMENTSOF(idl_cases); i++) {
                const IdlCase *t = &idl_cases[i];
                char *iface = (char *)"untouched", **methods = (char **)1;
                int r = varlink_idl_parse(t->text, &iface, &methods);

                if (r != t->want)
                        fail_msg("%s: got %d want %d", t->what, r, t->want);
                if (r < 0) {
                        if (!streq(iface, "untouched") || methods != (char **)1)
                                fail_msg("%s: failed but wrote its outputs", t->what);
                        continue;
                }
                if (!streq(iface, t->interface))
                        fail_msg("%s: got interface \"%s\" want \"%s\"", t->what, iface, t->interface);
                if (!streq(joined(methods), t->methods))
                        fail_msg("%s: got methods \"%s\" want \"%s\"", t->what, joined(methods), t->methods);
                free(iface);
                varlink_strv_free(methods);
        }
}

static void test_shipped(void **state)
{
        static const struct {
                const char *text;
                const char *interface;
                const char *methods;
        } shipped[] = {
                {varlink_idl_io_tern_Test, "io.tern.Test",
                 "Echo,Ping,Sleep,Count,ReadFd,OpenFd,Fail,Peer,Log"},
                {varlink_idl_io_tern_Delivery, "io.tern.Delivery", "Deliver"},
                {varlink_idl_io_tern_Qmgr, "io.tern.Qmgr", "Trigger,Status"},
                {varlink_idl_io_tern_Queue, "io.tern.Queue", "List,Show,Hold,Release,Delete,Requeue,Summary"},
        };

        for (size_t i = 0; i < ELEMENTSOF(shipped); i++) {
                char *iface = NULL, **methods = NULL;

                assert_int_equal(varlink_idl_parse(shipped[i].text, &iface, &methods), 0);
                if (!streq(iface, shipped[i].interface))
                        fail_msg("shipped IDL %zu: got interface %s want %s", i, iface,
                                 shipped[i].interface);
                if (!streq(joined(methods), shipped[i].methods))
                        fail_msg("%s: got methods %s want %s", iface, joined(methods), shipped[i].methods);
                /* The compiled-in text is the file, byte for byte. */
                {
                        char path[512], *file;
                        FILE *f;
                        long size;

                        snprintf(path, sizeof(path), "%s/src/lib/idl/%s.varlink", TERN_SOURCE_ROOT, iface);
                        f = fopen(path, "re");
                        if (!f)
                                fail_msg("cannot open %s", path);
                        fseek(f, 0, SEEK_END);
                        size = ftell(f);
                        rewind(f);
                        file = calloc(1, (size_t)size + 1);
                        assert_non_null(file);
                        assert_int_equal(fread(file, 1, (size_t)size, f), (size_t)size);
                        fclose(f);
                        if (!streq(file, shipped[i].text))
                                fail_msg("%s: the compiled-in text differs from %s", iface, path);
                        free(file);
                }
                free(iface);
                varlink_strv_free(methods);
        }
}

/* The rule: for each table, the methods bound in C are exactly those in the IDL. */
static void test_tables_match_idl(void **state)
{
        for (size_t i = 0; i < ELEMENTSOF(interface_tables); i++) {
                const VarlinkInterface *iface = interface_tables[i].iface;
                char *name = NULL, **methods = NULL;

                assert_ptr_equal(iface->description, interface_tables[i].idl);
                assert_int_equal(varlink_idl_parse(iface->description, &name, &methods), 0);
                if (!streq(name, iface->name))
                        fail_msg("table %s: its IDL declares interface %s", iface->name, name);

                for (char **m = methods; *m; m++) {
                        bool bound = false;
                        for (const VarlinkMethod *b = iface->methods; b->name; b++)
                                bound = bound || streq(b->name, *m);
                        if (!bound)
                                fail_msg("%s: method %s is in the IDL but not bound in C", iface->name, *m);
                }
                for (const VarlinkMethod *b = iface->methods; b->name; b++) {
                        bool declared = false;

                        for (char **m = methods; *m; m++)
                                declared = declared || streq(b->name, *m);
                        if (!declared)
                                fail_msg("%s: method %s is bound in C but not in the IDL", iface->name,
                                         b->name);
                        if (!b->fn)
                                fail_msg("%s: method %s has no function", iface->name, b->name);
                        if (!varlink_member_name_valid(b->name))
                                fail_msg("%s: method name %s is not a valid varlink member name",
                                         iface->name, b->name);
                        for (const VarlinkMethod *o = b + 1; o->name; o++)
                                if (streq(o->name, b->name))
                                        fail_msg("%s: method %s is bound twice", iface->name, b->name);
                }
                free(name);
                varlink_strv_free(methods);
        }
}

/* And the server agrees: every table binds, org.varlink.service included. */
static void test_server_binds_all(void **state)
{
        sd_event *e = NULL;
        VarlinkServer *s = NULL;

        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(varlink_server_new(e, &s), 0); /* binds org.varlink.service, checked */
        for (size_t i = 0; i < ELEMENTSOF(interface_tables); i++) {
                int r = varlink_server_add_interface(s, interface_tables[i].iface, e);
                if (r < 0)
                        fail_msg("%s: varlink_server_add_interface got %d want 0",
                                 interface_tables[i].iface->name, r);
        }
        varlink_server_free(s);
        sd_event_unref(e);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_crafted),
                cmocka_unit_test(test_shipped),
                cmocka_unit_test(test_tables_match_idl),
                cmocka_unit_test(test_server_binds_all),
        };

        return cmocka_run_group_tests_name("varlink-idl", tests, NULL, NULL);
}
