/* SPDX-License-Identifier: Apache-2.0 */
#include "util/strbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/macro.h"

void strbuf_add_mem(strbuf *b, const char *t, size_t n) {
        if (b->oom) return;
        if (n > SIZE_MAX - 1 - b->len || GROW(b->s, b->cap, b->len + n + 1) < 0) {
                b->oom = true;
                return;
        }
        memcpy(b->s + b->len, t, n);
        b->len += n;
        b->s[b->len] = 0;
}

void strbuf_add(strbuf *b, const char *t) {
        strbuf_add_mem(b, t, strlen(t));
}

int strbuf_finish(strbuf *b, char **ret, size_t *ret_len) {
        if (!b->oom && !b->s) strbuf_add_mem(b, "", 0);
        if (b->oom) {
                free(b->s);
                *b = (strbuf){0};
                return -ENOMEM;
        }
        *ret = b->s;
        if (ret_len) *ret_len = b->len;
        *b = (strbuf){0};
        return 0;
}
