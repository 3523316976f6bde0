/* SPDX-License-Identifier: MIT */
/* qmgr-varlink.h - the interfaces tern-qmgr serves (userdata: the Qmgr) */
#pragma once

#include "varlink.h"

extern const VarlinkInterface qmgr_interface;
extern const VarlinkInterface queue_interface;

/* qmgr_varlink_done - end the listings still in progress (shutdown) */
void qmgr_varlink_done(void);
