/* SPDX-License-Identifier: Apache-2.0 */
/* Small helpers for single C strings. */
#ifndef PP_UTIL_STR_H
#define PP_UTIL_STR_H

#include <stddef.h>

/*
 * Copies an optional string: NULL gives NULL. Returns 0 or -ENOMEM; *ret is
 * written only on success, so that a failure can be told apart from a NULL.
 */
int str_dup_opt(const char *s, char **ret);

/*
 * How many of the len bytes at s to keep so that at most max remain, cut back
 * to the start of a UTF-8 sequence so that none is split (len when it fits).
 * s need not be valid UTF-8: only continuation bytes (10xxxxxx) are stepped over.
 */
size_t str_utf8_cut(const char *s, size_t len, size_t max);

#endif
