/* SPDX-License-Identifier: MIT */
/* json-util.h - jansson helpers (jansson >= 2.14 ships json_decrefp for _cleanup_) */
#pragma once

#include <jansson.h>
