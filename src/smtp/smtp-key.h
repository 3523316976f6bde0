/* SPDX-License-Identifier: MIT */
/*
 * smtp-key.h - connection cache labels (Postfix's smtp_key.c); pure
 *
 * Fields joined by "\n", each ending with "\n", an empty field "*", a field holding "\n" or "*"
 * base64-encoded. Destination: service, the destination as written, TLS level, REQUIRETLS,
 * SMTPUTF8 (always 0 0 0: tern-smtp has no TLS). Endpoint: service, address, port, 0, 0, 0.
 * *ret malloc'ed; -ENOMEM.
 */
#pragma once

#include <stdint.h>

int smtp_cache_dest_label(const char *service, const char *destination, char **ret);
int smtp_cache_endp_label(const char *service, const char *addr, uint16_t port, char **ret);
