/* SPDX-License-Identifier: MIT */
/* testd-varlink.h - io.tern.Test's method table; bind it with the sd_event as userdata */
#pragma once

#include "varlink.h"

extern const VarlinkInterface testd_interface;
