/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Messages about invalid user input (API objects, label selectors). They end up
 * in status conditions and logs, so quoted input is kept short and printable:
 * a hostile value can neither flood nor garble them.
 */
#ifndef PP_UTIL_ERRMSG_H
#define PP_UTIL_ERRMSG_H

#include "util/macro.h"

#define ERRMSG_QUOTE_MAX  63 /* bytes of input kept by errmsg_quote() */
#define ERRMSG_QUOTE_SIZE 72 /* its buffer: the bytes kept, "..." and the NUL */

/*
 * Formats a message into a new *reterr (NULL on ENOMEM) when reterr is non-NULL
 * and returns r, so that a parser can write `return errmsg_fail(reterr, -EINVAL,
 * ...)`. *reterr is overwritten, not freed: pass a fresh one.
 */
_printf_(3, 4) int errmsg_fail(char **reterr, int r, const char *fmt, ...);

/*
 * The first ERRMSG_QUOTE_MAX bytes of s with each byte that is not printable
 * ASCII, and each '"', shown as '?'; "..." follows when s is longer.
 */
void errmsg_quote(const char *s, char out[ERRMSG_QUOTE_SIZE]);

#endif
