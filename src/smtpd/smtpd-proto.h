/* SPDX-License-Identifier: MIT */
/*
 * smtpd-proto.h - the SMTP server's pure protocol code: input lines, commands, the MAIL and RCPT
 * arguments, the ETRN argument, and DATA's end and dot-unstuffing (RFC 5321, 1870, 6152, 3461,
 * 1985; Postfix's smtpd(8) where it is stricter or more lenient)
 *
 * Pure code over bytes, no I/O, no configuration reading: tern-smtpd feeds what the socket gave,
 * in any pieces, and gets whole lines; it passes the limits and policies it read from main.cf.
 * Every reply this code decides on is given as an SmtpdReply (code, enhanced code, text) with
 * Postfix's wording, so that the server only sends it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest reply text built from what the client sent ("Unsupported option: " and at most
 * 100 bytes of the option, as Postfix quotes "%.100s"), with its NUL */
#define SMTPD_REPLY_TEXT_MAX 128

/* A reply the server sends: "CODE DSN TEXT" ("501 5.1.7 Bad sender address syntax"). text is
 * static, or points into buf when it quotes the client (a copy of the struct still points into
 * the original's buf: pass replies by pointer); dsn may be "" (no enhanced code: 220, 250 to
 * HELO, 354). */
typedef struct SmtpdReply {
        int code;
        const char *dsn;
        const char *text;
        char buf[SMTPD_REPLY_TEXT_MAX];
} SmtpdReply;

/* ---- input lines ----------------------------------------------------------------------------- */

/*
 * The line reader. A line ends with CRLF or a bare LF; the CR of CRLF is not part of the line.
 * A line longer than the reader's limit (Postfix's line_length_limit, 2048) is cut: the first
 * LIMIT bytes come out as one line with .too_long set when the input line ends, and the rest of
 * that input line is read and dropped (never buffered without bound). Bytes are kept as they are,
 * NUL included (.has_nul says so: a command with a NUL is refused by the server).
 */
typedef struct SmtpdLine {
        const char *data;               /* points into the reader's buffer: valid until the next call */
        size_t len;
        bool bare_lf;                   /* ended with LF alone (smtpd_forbid_bare_newline decides) */
        bool too_long;                  /* cut at the limit */
        bool partial;                   /* pieces mode: a piece of a longer line, more follows */
        bool has_nul;
} SmtpdLine;

typedef struct SmtpdLineReader SmtpdLineReader;

int smtpd_line_reader_new(size_t limit, SmtpdLineReader **ret);
SmtpdLineReader *smtpd_line_reader_free(SmtpdLineReader *r);
/*
 * smtpd_line_next - consume bytes of BUF (LEN) up to the end of one line at most; *ret_used is how
 * many. 1 with *ret when a line is complete, 0 when all LEN bytes were consumed without one (the
 * partial line is kept), -ENOMEM.
 */
int smtpd_line_next(SmtpdLineReader *r, const char *buf, size_t len, size_t *ret_used, SmtpdLine *ret);
/*
 * smtpd_line_reader_set_pieces - DATA mode (Postfix's smtpd passes a long content line on in
 * pieces, REC_TYPE_CONT): a line longer than the limit comes out as pieces of LIMIT bytes with
 * .partial set, then its rest as an ordinary line; nothing is dropped. A CR of a CRLF is never
 * part of a piece.
 */
void smtpd_line_reader_set_pieces(SmtpdLineReader *r, bool pieces);
/* smtpd_line_pending - bytes of an unfinished line held (a client that stalls mid-line) */
size_t smtpd_line_pending(const SmtpdLineReader *r);

/* ---- commands -------------------------------------------------------------------------------- */

typedef enum SmtpdVerb {
        SMTPD_HELO,
        SMTPD_EHLO,
        SMTPD_MAIL,
        SMTPD_RCPT,
        SMTPD_DATA,
        SMTPD_RSET,
        SMTPD_NOOP,
        SMTPD_QUIT,
        SMTPD_VRFY,
        SMTPD_HELP,
        SMTPD_ETRN,
        SMTPD_UNKNOWN,          /* "502 5.5.2 Error: command not recognized" */
} SmtpdVerb;

/*
 * smtpd_command_parse - LINE (LEN bytes, no line end) as a command: the verb, case-insensitive,
 * after any blanks, ends at a blank or the end; ARG is the rest with leading and trailing blanks
 * skipped (NUL terminated copy in ARG_BUF, at most ARG_SIZE - 1 bytes: a longer argument is
 * -E2BIG). Blanks are Postfix's (white space: SP, HT, CR, VT, FF). An empty or blank line, or one
 * holding NUL, is SMTPD_UNKNOWN with an empty ARG.
 */
int smtpd_command_parse(const char *line, size_t len, SmtpdVerb *ret_verb, char *arg_buf, size_t arg_size);
const char *smtpd_verb_name(SmtpdVerb v);       /* "mail": the disconnect line's counter names */

/* ---- MAIL FROM and RCPT TO ----------------------------------------------------------------- */

enum {
        SMTPD_BODY_NONE = 0,
        SMTPD_BODY_7BIT,
        SMTPD_BODY_8BITMIME,
};

/* DSN bits, as Postfix's (global/dsn_mask.h) and the queue file's */
#define SMTPD_NOTIFY_NEVER (1 << 0)
#define SMTPD_NOTIFY_SUCCESS (1 << 1)
#define SMTPD_NOTIFY_DELAY (1 << 2)
#define SMTPD_NOTIFY_FAILURE (1 << 3)
#define SMTPD_RET_FULL (1 << 0)
#define SMTPD_RET_HDRS (1 << 1)

typedef struct SmtpdPath {
        char *addr;                     /* malloc'ed: the address without <>, a source route removed,
                                         * quotes kept as the client wrote them; "" the null path */
        uint64_t size;                  /* MAIL: SIZE=, 0 if none */
        int body;                       /* MAIL: SMTPD_BODY_* */
        int ret;                        /* MAIL: SMTPD_RET_* or 0 */
        char *envid;                    /* MAIL: ENVID= decoded from xtext, malloc'ed, or NULL */
        int notify;                     /* RCPT: SMTPD_NOTIFY_* or 0 */
        char *orcpt;                    /* RCPT: ORCPT= as "type;address" with the address decoded
                                         * from xtext, malloc'ed, or NULL */
} SmtpdPath;

void smtpd_path_done(SmtpdPath *p);

/*
 * smtpd_parse_mail / smtpd_parse_rcpt - the argument of MAIL ("FROM:<a@b> SIZE=10") or RCPT
 * ("TO:<a@b> NOTIFY=NEVER"), split into words as Postfix's smtpd_token() splits them (blanks
 * inside <> or "" do not split). "FROM:"/"TO:" any case; blanks after the colon allowed; the path
 * in <>, or without them as Postfix allows unless STRICT (strict_rfc821_envelopes); a source route
 * ("<@a,@b:user@c>") is removed; an address must pass addr_valid() (cleanup.h). RCPT's null path
 * "<>" is refused. Parameters: MAIL takes SIZE (decimal), BODY (7BIT, 8BITMIME), RET (FULL, HDRS),
 * ENVID (xtext); RCPT takes NOTIFY (NEVER alone, or SUCCESS/DELAY/FAILURE), ORCPT (type;xtext);
 * any case; each at most once.
 * 0 with *ret, or a reply with Postfix's wording in *ret_reply and -EINVAL:
 *   "501 5.5.4 Syntax: MAIL FROM:<address>" / "501 5.5.4 Syntax: RCPT TO:<address>",
 *   "501 5.1.7 Bad sender address syntax" / "501 5.1.3 Bad recipient address syntax",
 *   "501 5.5.4 Bad message size syntax", "552 5.3.4 Message size exceeds file system imposed
 *   limit" (SIZE above INT64_MAX, Postfix's off_t), "501 5.5.4 Bad RET parameter syntax",
 *   "501 5.5.4 Bad ENVID parameter syntax", "501 5.5.4 Error: Bad NOTIFY parameter syntax",
 *   "501 5.5.4 Error: Bad ORCPT parameter syntax", "501 5.5.4 Bad BODY parameter syntax" (a
 *   second BODY, which Postfix takes; another value is Postfix's "Unsupported option: BODY=..."),
 *   "555 5.5.4 Unsupported option: NAME" (text in ret_reply->buf).
 * -ENOMEM.
 */
int smtpd_parse_mail(const char *arg, bool strict, SmtpdPath *ret, SmtpdReply *ret_reply);
int smtpd_parse_rcpt(const char *arg, bool strict, SmtpdPath *ret, SmtpdReply *ret_reply);

/* smtpd_addr_domain - the domain of ADDR (after the last '@' outside quotes), lower-cased into
 * BUF (SIZE); "" for an address without one. -ENAMETOOLONG if it does not fit. */
int smtpd_addr_domain(const char *addr, char *buf, size_t size);

/*
 * smtpd_parse_etrn - ETRN's argument as Postfix checks it: one leading '@' or '#' is removed;
 * what is left must be a valid host name (domain-list.h: valid_hostname) or an address literal
 * in brackets ("[192.0.2.1]", "[ipv6:2001:db8::1]"). 0 with the site (without the option
 * character) copied into SITE (SIZE), or a reply: "500 Syntax: ETRN domain" (no argument, or
 * more than one word, split as smtpd_token() splits), "501 Error: invalid parameter syntax". No
 * path separator, '..' or shell character can pass. -ENAMETOOLONG if the site does not fit SIZE.
 */
int smtpd_parse_etrn(const char *arg, char *site, size_t size, SmtpdReply *ret_reply);

/* ---- DATA -------------------------------------------------------------------------------- */

/*
 * smtpd_data_line - one input line of the message content: 1 for the end ("." alone), else 0
 * with *ret_data and *ret_len the line with one leading '.' removed (dot-unstuffing).
 */
int smtpd_data_line(const char *line, size_t len, const char **ret_data, size_t *ret_len);
