/* SPDX-License-Identifier: MIT */
/*
 * smtpd-peer.h - the client's host name, as Postfix's smtpd_peer.c finds it: the address's PTR
 * name, kept only when that name resolves back to the address (else "unknown")
 *
 * getnameinfo() and getaddrinfo() block, and one slow DNS server must not stall every other
 * session of the one event loop, so each lookup runs in a thread of its own and reports through
 * an eventfd that the loop watches. A session that goes away before the answer abandons the
 * lookup; the thread finishes and frees it.
 */
#pragma once

#include <stdbool.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "domain-list.h"

typedef struct SmtpdPeerLookup SmtpdPeerLookup;

typedef struct SmtpdPeerResult {
        char name[DOMAIN_NAME_MAX + 1];         /* verified name, or "unknown" */
        char warning[512];                      /* Postfix's warning text, or "" */
} SmtpdPeerResult;

typedef void (*SmtpdPeerDoneFn)(const SmtpdPeerResult *result, void *userdata);

/* smtpd_peer_lookup_start - look ADDR up; DONE runs once from EVENT, unless abandoned first */
int smtpd_peer_lookup_start(sd_event *event, const struct sockaddr *addr, socklen_t len, SmtpdPeerDoneFn done,
                            void *userdata, SmtpdPeerLookup **ret);
/* smtpd_peer_lookup_abandon - no callback; the lookup frees itself when its thread ends */
void smtpd_peer_lookup_abandon(SmtpdPeerLookup *l);
