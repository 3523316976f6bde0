/* SPDX-License-Identifier: MIT */
/* submit-varlink.h - io.tern.Submit's method table and what its handler needs */
#pragma once

#include "submit-queue.h"
#include "varlink.h"

typedef struct SubmitContext {
        Submitter *submitter;
        char *const *authorized_users;  /* authorized_submit_users */
        uint64_t message_size_limit;
        uint64_t recipient_limit;
} SubmitContext;

extern const VarlinkInterface submit_interface;
