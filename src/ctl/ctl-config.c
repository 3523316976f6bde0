/* SPDX-License-Identifier: MIT */
/*
 * ctl-config.c - `ternctl config`: the effective configuration, as postconf(1) prints it
 *
 *   config [-n] [-d] [-x] [--program NAME] [NAME...]
 *
 * Without options every known parameter as `name = value`, the value as written (defaults as
 * Postfix writes them, with $name unexpanded), sorted by name. -n: only parameters set in the
 * file; -d: defaults, ignoring the file; -x: expand $name; --program: apply that program's
 * [section] (default: none). --json prints one object. Unknown NAMEs are warned about, as
 * postconf does, and make the exit status EX_USAGE.
 */
#include <getopt.h>
#include <stdio.h>

#include "json-util.h"
#include "macro.h"
#include "ternctl.h"

typedef struct ConfigArgs {
        bool non_default, defaults, expand;
} ConfigArgs;

static const char *config_value(const Conf *c, const ConfParam *p, const ConfigArgs *a)
{
        if (a->defaults)
                return p->default_value;
        return a->expand ? conf_get_string(c, p->name) : conf_get_raw(c, p->name);
}

static void config_emit(const CtlOptions *o, json_t *out, const char *name, const char *value)
{
        if (o->json)
                json_object_set_new(out, name, json_string(value));
        else
                printf("%s = %s\n", name, value);
}

int ctl_verb_config(CtlOptions *o, int argc, char **argv)
{
        static const struct option options[] = {
                { "program", required_argument, NULL, 'p' },
                {},
        };
        _cleanup_(freep) char *error = NULL;
        _cleanup_(json_decrefp) json_t *out = NULL;
        _cleanup_conf_ Conf *conf = NULL;
        const char *program = NULL, *path;
        ConfigArgs a = {};
        const ConfParam *params;
        size_t n;
        int c, r, ret = 0;

        optind = 1;
        while ((c = getopt_long(argc, argv, "+ndx", options, NULL)) >= 0) {
                switch (c) {
                case 'n':
                        a.non_default = true;
                        break;
                case 'd':
                        a.defaults = true;
                        break;
                case 'x':
                        a.expand = true;
                        break;
                case 'p':
                        program = optarg;
                        break;
                default:
                        return EX_USAGE_;
                }
        }
        if (a.non_default && a.defaults) {
                fprintf(stderr, "ternctl: -n and -d exclude each other\n");
                return EX_USAGE_;
        }

        path = conf_path(o->config_path);
        if (!o->config_path && isempty(getenv("TERN_CONFIG")) && access(path, F_OK) < 0)
                path = NULL;
        r = conf_load(a.defaults ? NULL : path, program, &conf, &error);
        if (r < 0) {
                fprintf(stderr, "ternctl: %s\n", error ? error : strerror(-r));
                return EX_CONFIG_;
        }
        out = json_object();
        if (!out)
                return EX_OSERR_;

        if (optind < argc) {
                for (int i = optind; i < argc; i++) {
                        const ConfParam *p = conf_param_find(argv[i]);
                        if (!p) {
                                fprintf(stderr, "ternctl: warning: %s: unknown parameter\n", argv[i]);
                                ret = EX_USAGE_;
                                continue;
                        }
                        config_emit(o, out, p->name, config_value(conf, p, &a));
                }
        } else {
                params = conf_params(&n);
                for (size_t i = 0; i < n; i++) {
                        if (a.non_default && conf_is_default(conf, params[i].name))
                                continue;
                        config_emit(o, out, params[i].name, config_value(conf, &params[i], &a));
                }
                if (a.non_default && !a.defaults) {
                        const char *const *names, *const *values;
                        size_t k = conf_unknown(conf, &names, &values);
                        for (size_t i = 0; i < k; i++)
                                config_emit(o, out, names[i], values[i]);
                }
        }
        if (o->json) {
                _cleanup_(freep) char *s = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
                if (s)
                        printf("%s\n", s);
        }
        return ret;
}
