/* SPDX-License-Identifier: MIT */
/* scache-varlink.h - io.tern.Scache's method table; bind it with the Scache as userdata */
#pragma once

#include "varlink.h"

extern const VarlinkInterface scache_interface;
