/* SPDX-License-Identifier: Apache-2.0 */
#include "util/errmsg.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int errmsg_fail(char **reterr, int r, const char *fmt, ...) {
        if (reterr) {
                va_list ap;
                va_start(ap, fmt);
                char *m = NULL;
                if (vasprintf(&m, fmt, ap) < 0) m = NULL;
                va_end(ap);
                *reterr = m;
        }
        return r;
}

void errmsg_quote(const char *s, char out[ERRMSG_QUOTE_SIZE]) {
        size_t o = 0;
        for (size_t i = 0; s[i] && o < ERRMSG_QUOTE_MAX; i++) {
                unsigned char c = (unsigned char)s[i];
                out[o++] = (c >= 0x20 && c < 0x7f && c != '"') ? (char)c : '?';
        }
        if (strlen(s) > ERRMSG_QUOTE_MAX) {
                memcpy(out + o, "...", 3);
                o += 3;
        }
        out[o] = 0;
}
