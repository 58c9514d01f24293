/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A growing string for building output piece by piece. Adding never fails
 * outright: on ENOMEM the buffer remembers it and drops further text, and
 * strbuf_finish() reports it once, so that builders need no check per piece.
 *
 *     strbuf b = {0};
 *     strbuf_add(&b, "a");
 *     r = strbuf_finish(&b, &text, NULL);
 */
#ifndef PP_UTIL_STRBUF_H
#define PP_UTIL_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct strbuf {
        char *s;    /* NUL-terminated once anything was added; NULL before */
        size_t len; /* without the NUL */
        size_t cap;
        bool oom; /* an add failed (set it to fail the build for another reason) */
} strbuf;

void strbuf_add(strbuf *b, const char *t);
void strbuf_add_mem(strbuf *b, const char *t, size_t n);

/*
 * Hands the text out: 0, a new string in *ret ("" when nothing was added) and
 * its length in *ret_len (if non-NULL). -ENOMEM when an add failed; the text is
 * freed then. Either way b is left empty.
 */
int strbuf_finish(strbuf *b, char **ret, size_t *ret_len);

#endif
