/* SPDX-License-Identifier: MIT */
/*
 * varlink.h - varlink server and clients on sd-event, with descriptor passing
 *
 * Server: interfaces are tables of methods bound to an IDL text (checked against each other
 * when added). A connection handles one call at a time, in order: pipelined calls wait in the
 * input buffer until the call before them has its final reply, so replies always come back in
 * the order of the calls. A handler answers at once (varlink_call_reply/_error) or later: it
 * takes a reference (varlink_call_ref) and replies when its work is done. Calls with "more" get
 * any number of varlink_call_notify() before the final reply; "oneway" calls get no reply.
 * org.varlink.service (GetInfo, GetInterfaceDescription) is built in.
 *
 * Clients: a synchronous one (ternctl, tests) and an asynchronous one on sd-event (daemons that
 * call each other), over the same connection code.
 *
 * The module returns -errno and logs at most at debug level; the daemon decides what to say.
 * Framing and decoding are varlink-wire.c's.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "varlink-wire.h"

/* Connections one server process holds; beyond it new ones are closed at once. */
#define VARLINK_CONNECTIONS_MAX 4096U
/* Per peer uid, so one local user cannot take all of them. */
#define VARLINK_CONNECTIONS_PER_UID_MAX 1024U
/* Unsent output per connection before we stop reading its input (a client that does not read). */
#define VARLINK_OUTPUT_MAX (32U * 1024U * 1024U)
/* Interfaces per server: org.varlink.service plus a daemon's own few. */
#define VARLINK_INTERFACES_MAX 8U

#define VARLINK_ERROR_INTERFACE_NOT_FOUND "org.varlink.service.InterfaceNotFound"
#define VARLINK_ERROR_METHOD_NOT_FOUND "org.varlink.service.MethodNotFound"
#define VARLINK_ERROR_METHOD_NOT_IMPLEMENTED "org.varlink.service.MethodNotImplemented"
#define VARLINK_ERROR_INVALID_PARAMETER "org.varlink.service.InvalidParameter"
#define VARLINK_ERROR_PERMISSION_DENIED "org.varlink.service.PermissionDenied"
#define VARLINK_ERROR_EXPECTED_MORE "org.varlink.service.ExpectedMore"
/* A handler failed with an errno and said nothing else (as systemd's io.systemd.System). */
#define VARLINK_ERROR_SYSTEM "io.tern.System"

typedef struct VarlinkServer VarlinkServer;
typedef struct VarlinkCall VarlinkCall;
typedef struct VarlinkClient VarlinkClient;

enum {
        VARLINK_CALL_MORE = 1U << 0,
        VARLINK_CALL_ONEWAY = 1U << 1,
        /* varlink_client_invoke: the descriptors are not duplicated; the caller keeps them open
         * until the call's reply (or its failure) has come */
        VARLINK_CALL_BORROW_FDS = 1U << 2,
};

enum {
        VARLINK_METHOD_FDS = 1U << 0,           /* the method accepts descriptors */
        VARLINK_METHOD_MORE = 1U << 1,          /* the method streams: calls without "more" get ExpectedMore */
};

/* A handler returns 0 (replied, or kept a reference to reply later) or -errno (not replied: the
 * server answers io.tern.System with the errno). */
typedef int (*VarlinkMethodFn)(VarlinkCall *call, json_t *parameters, unsigned flags, void *userdata);

typedef struct VarlinkMethod {
        const char *name;               /* "SendSite" */
        VarlinkMethodFn fn;
        unsigned flags;
} VarlinkMethod;

typedef struct VarlinkInterface {
        const char *name;               /* "io.tern.Flush" */
        const char *description;        /* the IDL text, compiled in */
        const VarlinkMethod *methods;   /* terminated by an entry with name NULL */
} VarlinkInterface;

typedef enum VarlinkServerEvent {
        VARLINK_SERVER_CONNECT,
        VARLINK_SERVER_DISCONNECT,
        VARLINK_SERVER_CALL_TIMEOUT,    /* a call has been pending longer than the call timeout */
        VARLINK_SERVER_PROTOCOL_ERROR,  /* a client was dropped: *detail says why */
} VarlinkServerEvent;

typedef void (*VarlinkServerEventFn)(VarlinkServer *s, VarlinkServerEvent event, const struct ucred *peer,
                                     const char *detail, void *userdata);

int varlink_server_new(sd_event *event, VarlinkServer **ret);
VarlinkServer *varlink_server_free(VarlinkServer *s);
void varlink_server_set_info(VarlinkServer *s, const char *vendor, const char *product, const char *version,
                             const char *url);
/* varlink_server_add_interface - bind IFACE; -EINVAL if its methods differ from its IDL's */
int varlink_server_add_interface(VarlinkServer *s, const VarlinkInterface *iface, void *userdata);
/* varlink_server_listen_fd - serve a listening socket (taken over) */
int varlink_server_listen_fd(VarlinkServer *s, int fd);
/* varlink_server_add_connection_fd - serve an already connected socket (taken over, also on
 * failure) as if it had been accepted: systemd's Accept=yes hands one over */
int varlink_server_add_connection_fd(VarlinkServer *s, int fd);
/* varlink_server_listen_path - listen on PATH with MODE: bound and listening under a temporary name,
 * then renamed over PATH (a stale socket there is replaced; a live one is -EADDRINUSE) */
int varlink_server_listen_path(VarlinkServer *s, const char *path, mode_t mode);
/* varlink_listen_path - the same socket, bound and listening (non-blocking), returned as a descriptor
 * for a caller that accepts on its own (a delivery agent's parent run by hand) */
int varlink_listen_path(const char *path, mode_t mode);
/* varlink_server_set_accepting - stop or resume accepting connections (max_use) */
int varlink_server_set_accepting(VarlinkServer *s, bool b);
void varlink_server_set_event_callback(VarlinkServer *s, VarlinkServerEventFn fn, void *userdata);
/* ipc_timeout: a client that stalls inside a message, or does not read our output, is dropped */
void varlink_server_set_io_timeout(VarlinkServer *s, uint64_t usec);
/* daemon_timeout: a call pending longer raises VARLINK_SERVER_CALL_TIMEOUT */
void varlink_server_set_call_timeout(VarlinkServer *s, uint64_t usec);
size_t varlink_server_connections(const VarlinkServer *s);
uint64_t varlink_server_accepted(const VarlinkServer *s);
/* Calls that have been dispatched and are waiting for their final reply */
size_t varlink_server_pending_calls(const VarlinkServer *s);

/* Calls */
VarlinkCall *varlink_call_ref(VarlinkCall *c);
VarlinkCall *varlink_call_unref(VarlinkCall *c);
const char *varlink_call_method(const VarlinkCall *c);
unsigned varlink_call_flags(const VarlinkCall *c);
/* peer credentials (SO_PEERCRED at accept time) */
const struct ucred *varlink_call_peer(const VarlinkCall *c);
/* varlink_peer_name - the peer's user name, or its uid in BUF */
const char *varlink_peer_name(const struct ucred *peer, char buf[static 32]);
/* varlink_peer_is_admin - root, the daemon's own user (mail_owner), or its group (primary or
 * supplementary): who may change the queue */
bool varlink_peer_is_admin(const struct ucred *peer);
/* descriptors that came with the call: borrowed, or taken (the slot becomes -EBADF) */
size_t varlink_call_n_fds(const VarlinkCall *c);
int varlink_call_peek_fd(const VarlinkCall *c, size_t index);
int varlink_call_take_fd(VarlinkCall *c, size_t index);
/* varlink_call_push_fd - send FD (taken over) with the next reply; returns its index */
int varlink_call_push_fd(VarlinkCall *c, int fd);

/* The reply functions take over PARAMETERS (may be NULL for {}). -ENOTCONN when the client left. */
int varlink_call_reply(VarlinkCall *c, json_t *parameters);
int varlink_call_notify(VarlinkCall *c, json_t *parameters);
int varlink_call_error(VarlinkCall *c, const char *error, json_t *parameters);
int varlink_call_error_invalid_parameter(VarlinkCall *c, const char *name);
int varlink_call_error_errno(VarlinkCall *c, int error);
bool varlink_call_replied(const VarlinkCall *c);
/* varlink_call_connected - is the client still there (not hung up, not done sending)? A handler
 * that is about to make something permanent for a deferred call asks this first. */
bool varlink_call_connected(const VarlinkCall *c);

/* varlink_call_end_connection - C is the last call served on its connection: once its final
 * reply is sent the connection is closed (calls pipelined behind it are not served); max_use */
void varlink_call_end_connection(VarlinkCall *c);

/* Typed parameter decoding: a table per method. */
typedef enum VarlinkFieldType {
        VARLINK_FIELD_STRING,           /* const char * (borrowed from the parameters; no NUL inside) */
        VARLINK_FIELD_INT,              /* int64_t */
        VARLINK_FIELD_BOOL,             /* bool */
        VARLINK_FIELD_FLOAT,            /* double (an integer is accepted too) */
        VARLINK_FIELD_OBJECT,           /* json_t * (borrowed) */
        VARLINK_FIELD_ARRAY,            /* json_t * (borrowed) */
        VARLINK_FIELD_STRINGV,          /* json_t * array whose elements are all strings without NUL */
        VARLINK_FIELD_FD,               /* int: a descriptor that came with the call (borrowed), by index */
        VARLINK_FIELD_ANY,              /* json_t * (borrowed) */
} VarlinkFieldType;

enum {
        VARLINK_FIELD_MANDATORY = 1U << 0,
        VARLINK_FIELD_NULLABLE = 1U << 1,       /* null is accepted and leaves the field as it was */
};

typedef struct VarlinkField {
        const char *name;
        VarlinkFieldType type;
        size_t offset;
        unsigned flags;
} VarlinkField;

/*
 * varlink_dispatch - decode PARAMETERS into OUT with FIELDS (terminated by name NULL). Unknown
 * parameters, missing mandatory ones and mistyped ones are answered with InvalidParameter
 * {"parameter": name} and -EINVAL is returned: the handler just returns that.
 */
int varlink_dispatch(VarlinkCall *c, json_t *parameters, const VarlinkField fields[], void *out);
/* varlink_dispatch_check - the same without a call: returns -EINVAL and the offending name */
int varlink_dispatch_check(json_t *parameters, const VarlinkField fields[], const int *fds, size_t n_fds,
                           void *out, const char **ret_bad);

/* Clients */
typedef struct VarlinkReply {
        json_t *root;
        json_t *parameters;             /* never NULL: {} when absent */
        const char *error;              /* NULL for a successful reply */
        bool continues;
        int fds[VARLINK_FDS_MAX];
        size_t n_fds;
} VarlinkReply;

void varlink_reply_done(VarlinkReply *r);  /* closes descriptors not taken (set to -EBADF to take) */

/* varlink_client_connect - connect to a UNIX socket PATH ("unix:PATH" is accepted too) */
int varlink_client_connect(const char *path, VarlinkClient **ret);
int varlink_client_new_from_fd(int fd, VarlinkClient **ret);
VarlinkClient *varlink_client_free(VarlinkClient *c);
/* sync calls: the longest the peer may stay silent while we wait to send or for a reply
 * (-ETIMEDOUT); 0: no limit */
void varlink_client_set_timeout(VarlinkClient *c, uint64_t usec);
int varlink_client_fd(const VarlinkClient *c);

/* Synchronous use: send calls (pipelining allowed), then read their replies in order. FDS are sent
 * as they are (the call is written before send returns); the caller keeps its own. PARAMETERS
 * are taken over (NULL: {}). */
int varlink_client_send(VarlinkClient *c, const char *method, json_t *parameters, const int *fds, size_t n_fds,
                        unsigned flags);
int varlink_client_read(VarlinkClient *c, VarlinkReply *ret);
/* send + read: returns 0 on a successful reply, 1 on an error reply (ret->error), -errno */
int varlink_client_call(VarlinkClient *c, const char *method, json_t *parameters, const int *fds, size_t n_fds,
                        unsigned flags, VarlinkReply *ret);

/* Asynchronous use on sd-event. The callback gets each reply (REPLY->continues for "more"), or
 * REPLY NULL and ERROR < 0 when the connection failed; it owns nothing it is given except what
 * it takes out of REPLY (descriptors: set the slot to -EBADF). */
typedef int (*VarlinkReplyFn)(VarlinkClient *c, VarlinkReply *reply, int error, void *userdata);
int varlink_client_attach_event(VarlinkClient *c, sd_event *event, int64_t priority);
/* varlink_client_connect_event - varlink_client_connect() and varlink_client_attach_event() */
int varlink_client_connect_event(const char *path, sd_event *event, int64_t priority, VarlinkClient **ret);
int varlink_client_invoke(VarlinkClient *c, const char *method, json_t *parameters, const int *fds,
                          size_t n_fds, unsigned flags, VarlinkReplyFn fn, void *userdata);
size_t varlink_client_pending(const VarlinkClient *c);
/* varlink_client_idle - nothing left to send and no reply awaited: the client may be freed
 * without losing a oneway call */
bool varlink_client_idle(const VarlinkClient *c);
/* varlink_client_failed - the asynchronous connection broke (invoke returns -ENOTCONN) */
bool varlink_client_failed(const VarlinkClient *c);

/* IDL helpers (varlink-idl-parse.c) */
int varlink_idl_parse(const char *text, char **ret_interface, char ***ret_methods);
void varlink_strv_free(char **v);

static inline void varlink_client_freep(VarlinkClient **c)
{
        varlink_client_free(*c);
}

static inline void varlink_server_freep(VarlinkServer **s)
{
        varlink_server_free(*s);
}

static inline void varlink_call_unrefp(VarlinkCall **c)
{
        varlink_call_unref(*c);
}
