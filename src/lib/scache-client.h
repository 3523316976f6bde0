/* SPDX-License-Identifier: MIT */
/*
 * scache-client.h - the delivery agents' side of tern-scache (Postfix's scache_clnt.c)
 *
 * A synchronous client with Postfix's failure policy: a request that fails on the transport is
 * tried once more on a new connection (after retry_delay, Postfix's sleep(1)); when that fails
 * too, connection caching is off for the rest of the process and every later request answers
 * -EUNATCH at once. The warnings Postfix logs on the way ("problem talking to service %s: %m",
 * except EPIPE/ENOENT on the first try, and "disabling connection caching") go to the warn
 * callback: this library does not log.
 *
 * A save passes the caller's descriptor (the caller keeps and closes its own copy, as Postfix's
 * client always closes its copy); a find returns a descriptor the caller owns.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct ScacheClient ScacheClient;
typedef void (*ScacheWarnFn)(const char *text, void *userdata);

/* Postfix: connection_cache_protocol_timeout, sleep(1) between the two tries */
int scache_client_new(const char *socket_path, uint64_t timeout_usec, uint64_t retry_delay_usec,
                      ScacheClient **ret);
ScacheClient *scache_client_free(ScacheClient *c);
void scache_client_set_warn(ScacheClient *c, ScacheWarnFn fn, void *userdata);
bool scache_client_disabled(const ScacheClient *c);
/*
 * scache_client_set_oneway_saves - send SaveEndpoint/SaveDestination as varlink "oneway" calls:
 * no reply is awaited (a save costs no round trip), so a save the cache refuses goes unnoticed
 * and a save returns 0 once written. Requests on one connection are served in order, so a later
 * find sees every earlier save.
 */
void scache_client_set_oneway_saves(ScacheClient *c, bool b);

/* 0 saved; -EINVAL refused by the cache (bad request); -EUNATCH caching is off; other -errno: failed */
int scache_client_save_endpoint(ScacheClient *c, int64_t ttl, const char *endpoint, const char *props, int fd);
int scache_client_save_destination(ScacheClient *c, int64_t ttl, const char *destination, const char *props,
                                   const char *endpoint);
/* 0 and *ret_props (malloc'ed), *ret_fd (owned); -ENOENT a miss; -EUNATCH caching off; -errno */
int scache_client_find_endpoint(ScacheClient *c, const char *endpoint, char **ret_props, int *ret_fd);
int scache_client_find_destination(ScacheClient *c, const char *destination, char **ret_dest_props,
                                   char **ret_endp_props, int *ret_fd);
