/* SPDX-License-Identifier: MIT */
/*
 * smtp-wire.h - the SMTP client's pure protocol code: server replies, EHLO features, the message
 * as DATA sends it, and xtext for DSN parameters (RFC 5321, 2920, 1870, 6152, 2034, 3461)
 *
 * Pure code over bytes, no I/O: tern-smtp feeds whatever the socket gave, in any pieces (one
 * byte at a time works the same as everything at once), and gets whole replies out.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest reply line kept (Postfix's line_length_limit); the rest of a longer line is read and
 * dropped, and the reply is marked truncated. */
#define SMTP_REPLY_LINE_MAX 2048U
/* Most lines in one reply: a multi-line reply that does not end by then is malformed. */
#define SMTP_REPLY_LINES_MAX 100U

/*
 * One complete server reply. code: 200..599. dsn: the enhanced status code of the last line
 * when it has one whose class is the code's ("5.1.1"), else synthesized as Postfix does: the
 * code's class and ".0.0" ("4.0.0"). text: the reply's lines as the server sent them, codes
 * included, joined with single spaces and without line ends ("550-5.1.1 no such user 550 5.1.1
 * ask elsewhere") - what Postfix logs in "host X said: ...". lines/line_len: each line (code
 * included) separately, for EHLO keywords. Control characters in the text other than tab are
 * replaced by '?', so that the text may go into a log line and a delivery result as it is.
 */
typedef struct SmtpReply {
        int code;
        char dsn[16];
        char *text;   /* malloc'ed, NUL-terminated */
        char **lines; /* malloc'ed array of malloc'ed NUL-terminated lines */
        size_t n_lines;
        bool truncated; /* a line was longer than SMTP_REPLY_LINE_MAX */
} SmtpReply;

void smtp_reply_done(SmtpReply *r);

/*
 * The reply parser: feed it bytes as they arrive. Lines end with CRLF or a bare LF. Every line is
 * "DDD" then '-' (more lines follow), ' ' or the line's end (the last line); the first digit is
 * 2..5. The codes of the lines should agree; the last line's code is the reply's.
 */
typedef struct SmtpReplyParser SmtpReplyParser;

int smtp_reply_parser_new(SmtpReplyParser **ret);
SmtpReplyParser *smtp_reply_parser_free(SmtpReplyParser *p);
/* smtp_reply_parser_reset - forget any partial reply (a new session) */
void smtp_reply_parser_reset(SmtpReplyParser *p);

/*
 * smtp_reply_parser_feed - consume bytes of BUF (LEN) up to the end of one complete reply at
 * most; *ret_used is how many were consumed (the rest belongs to the next reply: pipelining).
 * Returns 1 when a reply is complete (take it with smtp_reply_parser_take), 0 when all LEN bytes
 * were consumed without completing one, -EBADMSG for a malformed reply (*ret_reason, static
 * text: "malformed reply code", "reply has too many lines", ...; the parser must be reset before
 * further use), -ENOMEM (likewise). *ret_used is written only when 0 or 1 is returned.
 */
int smtp_reply_parser_feed(SmtpReplyParser *p, const char *buf, size_t len, size_t *ret_used,
                           const char **ret_reason);
/* smtp_reply_parser_take - move the completed reply into *RET (the parser is ready for the next) */
void smtp_reply_parser_take(SmtpReplyParser *p, SmtpReply *ret);

/* What the server announced in its EHLO reply (the first line is the greeting, not a keyword). */
enum {
        SMTP_FEATURE_ESMTP = 1U << 0, /* the EHLO reply was positive */
        SMTP_FEATURE_PIPELINING = 1U << 1,
        SMTP_FEATURE_SIZE = 1U << 2,
        SMTP_FEATURE_8BITMIME = 1U << 3,
        SMTP_FEATURE_ENHANCEDSTATUSCODES = 1U << 4,
        SMTP_FEATURE_DSN = 1U << 5,
        SMTP_FEATURE_SMTPUTF8 = 1U << 6,
        SMTP_FEATURE_STARTTLS = 1U << 7,
};

typedef struct SmtpFeatures {
        unsigned flags;
        uint64_t size_limit; /* SIZE's argument; 0: none given (no limit) */
} SmtpFeatures;

/*
 * smtp_ehlo_features - the keywords of a 250 EHLO reply, case-insensitively; unknown ones are
 * ignored, and so is a SIZE argument that is not a decimal number (SIZE still announced, no limit).
 */
void smtp_ehlo_features(const SmtpReply *r, SmtpFeatures *ret);

/*
 * The DATA encoder: message content (lines ending with "\n"; a "\r\n" end counts as one line
 * end) becomes what goes on the wire between "DATA" and ".": every line end is "\r\n", a line
 * that starts with '.' gets another '.', and the one CR right before a line end is dropped (so a
 * "\r\n" end never becomes "\r\r\n"); any other CR is sent as it is - content "\r\r\n" is a
 * line holding one CR and goes out as "\r\r\n", as Postfix sends it (dropping every CR of a run
 * would need unbounded look-ahead). Streaming: the content may come in pieces split anywhere.
 */
typedef struct SmtpDataEncoder {
        bool mid_line;   /* inside a line (not at its start) */
        bool cr_pending; /* a CR was seen and held back */
} SmtpDataEncoder;

void smtp_data_encoder_init(SmtpDataEncoder *e);
/* smtp_data_encode - encode IN (N bytes) into OUT, which has room for 2 * N + 1 bytes; returns
 * the bytes written */
size_t smtp_data_encode(SmtpDataEncoder *e, const char *in, size_t n, char *out);
/* smtp_data_finish - the end: a "\r\n" if the content did not end a line (a CR held back at the
 * very end is dropped: it is right before that line end), then ".\r\n"; returns the bytes written
 * into OUT (room for 8). The encoder is then as smtp_data_encoder_init() left it. */
size_t smtp_data_finish(SmtpDataEncoder *e, char out[static 8]);

/*
 * smtp_xtext - RFC 3461 xtext of IN (for ENVID= and ORCPT=rfc822;...): '+', '=', and bytes
 * outside '!'..'~' become "+XX" (upper-case hex). *ret malloc'ed; -ENOMEM.
 */
int smtp_xtext(const char *in, char **ret);
