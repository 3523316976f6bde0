/* SPDX-License-Identifier: MIT */
/*
 * ternctl.h - what the verb files of ternctl share: options, addresses, exit codes, output
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "varlink.h"

/* sysexits(3) */
#define EX_OK_ 0
#define EX_FAILURE 1            /* the service answered with an error of its interface */
#define EX_USAGE_ 64
#define EX_DATAERR_ 65
#define EX_NOINPUT_ 66
#define EX_UNAVAILABLE_ 69
#define EX_SOFTWARE_ 70
#define EX_OSERR_ 71
#define EX_TEMPFAIL_ 75
#define EX_PROTOCOL_ 76
#define EX_NOPERM_ 77
#define EX_CONFIG_ 78

typedef struct CtlOptions {
        const char *config_path;        /* -c */
        bool json;                      /* --json: machine-readable output */
        uint64_t timeout_usec;          /* --timeout */
        Conf *conf;                     /* loaded on first use */
} CtlOptions;

typedef struct CtlVerb {
        const char *name;
        int (*run)(CtlOptions *o, int argc, char **argv);   /* argv[0] is the verb; parses its own options */
        const char *usage;
        const char *help;
} CtlVerb;

/* ctl_conf - the configuration: -c FILE (must exist), else the default file if it exists, else defaults */
int ctl_conf(CtlOptions *o, const Conf **ret);

/*
 * ctl_connect - connect to ADDRESS: a path (contains '/', or "unix:PATH") or a service name
 * ("flush" -> runtime_directory/flush). Failures are printed as a person reads them
 * ("tern-flush is not running: /run/tern/flush: No such file or directory") and returned as
 * an exit code (> 0).
 */
int ctl_connect(CtlOptions *o, const char *address, VarlinkClient **ret);

/*
 * ctl_call - one call; prints transport failures and error replies (with their parameters);
 * returns 0 with *ret filled on success, else an exit code.
 */
int ctl_call(CtlOptions *o, VarlinkClient *c, const char *method, json_t *parameters, VarlinkReply *ret);
/* ctl_transport_error - "ternctl: METHOD: timed out" for a failed call (-errno R); the exit code */
int ctl_transport_error(const char *method, int r);

/* ctl_exit_for_error - the exit code for a varlink error reply */
int ctl_exit_for_error(const char *error);
/* ctl_print_error - "Error: NAME {params}" on stderr */
void ctl_print_error(const VarlinkReply *r);
/* ctl_print_json - pretty, or one compact line with --json */
void ctl_print_json(const CtlOptions *o, json_t *j);

int ctl_verb_call(CtlOptions *o, int argc, char **argv);
int ctl_verb_introspect(CtlOptions *o, int argc, char **argv);
int ctl_verb_config(CtlOptions *o, int argc, char **argv);
int ctl_verb_scache(CtlOptions *o, int argc, char **argv);
int ctl_verb_queue(CtlOptions *o, int argc, char **argv);
int ctl_verb_qmgr(CtlOptions *o, int argc, char **argv);
int ctl_verb_flush(CtlOptions *o, int argc, char **argv);

/* ctl-queue.c: tern-qmgr's errors (io.tern.Queue, io.tern.Qmgr) as a person reads them */
int ctl_queue_error(const VarlinkReply *r);
int ctl_queue_call(VarlinkClient *c, const char *method, json_t *params, VarlinkReply *ret);
