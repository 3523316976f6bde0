/* SPDX-License-Identifier: MIT */
/*
 * queue-id.h - Postfix long queue IDs and the directory hashing that goes with them
 *
 * A long ID (Postfix enable_long_queue_ids = yes, global/mail_queue.c) is the creation time's
 * seconds in base 52 (at least 6 digits), exactly 4 base-52 digits of microseconds, 'z', and the
 * file's inode number in base 51. The digits are 0-9 and the consonants
 * "BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz" in ASCII order (base 51 leaves out 'z', which is
 * why 'z' can separate the fields). IDs sort by arrival (same-width seconds) and are never reused:
 * (seconds, microseconds, inode) names one file at one moment.
 *
 * Hashing (hash_queue_names, hash_queue_depth): the first DEPTH characters of the hash key name
 * one-character subdirectories: deferred/6/... For long IDs the key is the microseconds field
 * converted back to 5 uppercase hex digits, so short and long IDs hash alike (Postfix
 * mail_queue_path / dir_forest); a short ID is its own key, padded with '_'.
 *
 * Pure code; no I/O.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 6+ digits of seconds (11 cover 2^64), 4 of microseconds, 'z', 11 of a 64-bit inode in base 51,
 * and the NUL: 28. Valid names from elsewhere (Postfix short IDs, a carried-over queue) are at most
 * QUEUE_ID_MAX - 1 characters of [A-Za-z0-9_]. */
#define QUEUE_ID_MAX 32
#define QUEUE_HASH_DEPTH_MAX 16

/* queue_id_make - the long ID for a file created at SEC.USEC with INODE */
int queue_id_make(uint64_t sec, uint32_t usec, uint64_t inode, char ret[static QUEUE_ID_MAX]);
/* queue_id_parse - split a long ID; -EINVAL if ID is not one */
int queue_id_parse(const char *id, uint64_t *ret_sec, uint32_t *ret_usec, uint64_t *ret_inode);
/* queue_id_valid - [A-Za-z0-9_]{1,QUEUE_ID_MAX-1}: safe as a file name in any queue (long or short) */
bool queue_id_valid(const char *id);
/*
 * queue_id_hash_path - "6/8/" for DEPTH 2 (DEPTH 0: ""), written to RET (at least
 * 2 * QUEUE_HASH_DEPTH_MAX + 1 bytes); -EINVAL for an invalid ID or depth
 */
int queue_id_hash_path(const char *id, unsigned depth, char *ret, size_t size);
