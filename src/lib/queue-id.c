/* SPDX-License-Identifier: MIT */
/*
 * queue-id.c - Postfix long queue IDs and queue directory hashing
 *
 * Format (Postfix global/mail_queue.h MQID_LG_*, global/safe_ultostr.c): the creation time's
 * seconds in base 52, zero-padded to at least 6 digits; its microseconds in base 52, exactly 4
 * digits; the separator 'z'; the inode number in base 51, not padded. The digit alphabet is
 * Postfix's safe_chars, "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz": ASCII order, so
 * for IDs whose seconds have the same width byte order is time order. Base 51 stops before 'z',
 * so the last 'z' of a long ID is the separator. Byte for byte what Postfix makes from the same
 * (seconds, microseconds, inode), including Postfix's quirk that inode 0 encodes as nothing.
 *
 * Seconds are 6 digits from the epoch up to 52^6 - 1 = 19770609663 (2596-07-06 UTC); from then
 * on they take 7 digits and a plain byte comparison no longer sorts across that boundary (a
 * 7-digit ID beginning "1" sorts before a 6-digit one beginning "z").
 *
 * Hashing follows Postfix mail_queue_dir(): when the name's last 'z' is at index 10 or later
 * (MQID_FIND_LG_INUM_SEPARATOR), the 4 characters before it are decoded as base-52 digits as far
 * as they are digits (safe_strtoul) and printed "%05X"; that string is the key. Otherwise the
 * name itself is. dir_forest() then takes one character per level, '_' once the key runs out.
 *
 * Limits: no I/O; valid names are at most QUEUE_ID_MAX - 1 characters (Postfix allows 255 for
 * flush logfile names in the same namespace; tern's flush logs use their own limit).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "queue-id.h"

#define MQID_LG_SEC_BASE 52
#define MQID_LG_SEC_PAD 6
#define MQID_LG_USEC_BASE 52
#define MQID_LG_USEC_PAD 4
#define MQID_LG_TIME_PAD (MQID_LG_SEC_PAD + MQID_LG_USEC_PAD)
#define MQID_LG_INUM_SEP 'z'
#define MQID_LG_INUM_BASE 51

static const char safe_chars[] = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz";

/* safe_digit - the value of C as a safe_chars digit, or -1 */
static int safe_digit(char c)
{
        const char *p;

        if (c == '\0')
                return -1;
        p = strchr(safe_chars, c);
        return p ? (int)(p - safe_chars) : -1;
}

/* safe_ultostr - append VAL in BASE, at least PAD digits, to OUT; returns the digits written */
static size_t safe_ultostr(char *out, uint64_t val, unsigned base, size_t pad)
{
        char tmp[65];
        size_t n = 0;

        while (val != 0) {
                tmp[n++] = safe_chars[val % base];
                val /= base;
        }
        while (n < pad)
                tmp[n++] = '0';
        for (size_t i = 0; i < n; i++)
                out[i] = tmp[n - 1 - i];
        return n;
}

/* safe_strtou64 - decode all of S[0..LEN) in BASE; -EINVAL for a non-digit or overflow */
static int safe_strtou64(const char *s, size_t len, unsigned base, uint64_t *ret)
{
        uint64_t v = 0;

        for (size_t i = 0; i < len; i++) {
                int d = safe_digit(s[i]);

                if (d < 0 || (unsigned)d >= base)
                        return -EINVAL;
                if (v > (UINT64_MAX - (unsigned)d) / base)
                        return -EINVAL;
                v = v * base + (unsigned)d;
        }
        *ret = v;
        return 0;
}

/* queue_id_make - the long ID for a file created at SEC.USEC with INODE */
int queue_id_make(uint64_t sec, uint32_t usec, uint64_t inode, char ret[static QUEUE_ID_MAX])
{
        char buf[QUEUE_ID_MAX];
        size_t n;

        if (usec >= 1000000)
                return -EINVAL;
        n = safe_ultostr(buf, sec, MQID_LG_SEC_BASE, MQID_LG_SEC_PAD);
        n += safe_ultostr(buf + n, usec, MQID_LG_USEC_BASE, MQID_LG_USEC_PAD);
        buf[n++] = MQID_LG_INUM_SEP;
        n += safe_ultostr(buf + n, inode, MQID_LG_INUM_BASE, 0);
        buf[n] = '\0';
        memcpy(ret, buf, n + 1);
        return 0;
}

/* queue_id_parse - split a long ID; -EINVAL if ID is not one */
int queue_id_parse(const char *id, uint64_t *ret_sec, uint32_t *ret_usec, uint64_t *ret_inode)
{
        const char *sep;
        uint64_t sec, usec, inode;
        size_t time_len;

        if (!queue_id_valid(id))
                return -EINVAL;
        sep = strrchr(id, MQID_LG_INUM_SEP);
        if (!sep || (size_t)(sep - id) < MQID_LG_TIME_PAD)
                return -EINVAL;
        time_len = (size_t)(sep - id);
        if (safe_strtou64(id, time_len - MQID_LG_USEC_PAD, MQID_LG_SEC_BASE, &sec) < 0 ||
            safe_strtou64(sep - MQID_LG_USEC_PAD, MQID_LG_USEC_PAD, MQID_LG_USEC_BASE, &usec) < 0 ||
            safe_strtou64(sep + 1, strlen(sep + 1), MQID_LG_INUM_BASE, &inode) < 0)
                return -EINVAL;
        if (usec >= 1000000)
                return -EINVAL;
        /* Only the canonical spelling: more than 6 digits of seconds must not start with '0'. */
        if (time_len - MQID_LG_USEC_PAD > MQID_LG_SEC_PAD && id[0] == '0')
                return -EINVAL;
        if (sep[1] == '0')
                return -EINVAL;
        if (ret_sec)
                *ret_sec = sec;
        if (ret_usec)
                *ret_usec = (uint32_t)usec;
        if (ret_inode)
                *ret_inode = inode;
        return 0;
}

/* queue_id_valid - [A-Za-z0-9_]{1,QUEUE_ID_MAX-1}: safe as a file name in any queue */
bool queue_id_valid(const char *id)
{
        size_t n;

        if (!id)
                return false;
        for (n = 0; id[n]; n++) {
                char c = id[n];

                if (n >= QUEUE_ID_MAX - 1)
                        return false;
                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '_'))
                        return false;
        }
        return n > 0;
}

/* queue_id_hash_path - the subdirectories for ID at DEPTH, "6/8/" style, into RET */
int queue_id_hash_path(const char *id, unsigned depth, char *ret, size_t size)
{
        char key[16];
        const char *sep;

        if (!queue_id_valid(id) || depth > QUEUE_HASH_DEPTH_MAX || size < 2 * (size_t)depth + 1)
                return -EINVAL;

        sep = strrchr(id, MQID_LG_INUM_SEP);
        if (sep && (size_t)(sep - id) >= MQID_LG_TIME_PAD) {
                /* MQID_LG_GET_HEX_USEC: safe_strtoul stops at the first non-digit, keeping the prefix. */
                unsigned long usec = 0;

                for (const char *p = sep - MQID_LG_USEC_PAD; p < sep; p++) {
                        int d = safe_digit(*p);

                        if (d < 0 || d >= MQID_LG_USEC_BASE)
                                break;
                        usec = usec * MQID_LG_USEC_BASE + (unsigned)d;
                }
                (void)snprintf(key, sizeof(key), "%05lX", usec);
                id = key;
        }

        for (unsigned i = 0; i < depth; i++) {
                char c = *id;

                if (c == '\0')
                        c = '_';
                else
                        id++;
                ret[2 * i] = c;
                ret[2 * i + 1] = '/';
        }
        ret[2 * depth] = '\0';
        return 0;
}
