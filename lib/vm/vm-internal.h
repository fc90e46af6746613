/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the files of lib/vm share and nobody else needs.
 */
#pragma once

#include <stddef.h>

#include "lib/core/macro.h"

/* Formats one line into errmsg (when errmsg_size > 0) and returns r, so that
 * a failure reads `return vm_fail(errmsg, errmsg_size, -EINVAL, "...")`. */
int vm_fail(char *errmsg, size_t errmsg_size, int r, const char *fmt, ...) _printf_(4, 5);
