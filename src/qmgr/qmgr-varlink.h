/* SPDX-License-Identifier: MIT */
/* qmgr-varlink.h - the interfaces tern-qmgr serves (userdata: the Qmgr) */
#pragma once

#include "varlink.h"

extern const VarlinkInterface qmgr_interface;
extern const VarlinkInterface queue_interface;
