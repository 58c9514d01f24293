/* SPDX-License-Identifier: Apache-2.0 */
#include "util/str.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int str_dup_opt(const char *s, char **ret) {
        char *d = NULL;
        if (s && !(d = strdup(s))) return -ENOMEM;
        *ret = d;
        return 0;
}

size_t str_utf8_cut(const char *s, size_t len, size_t max) {
        if (len <= max) return len;
        while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80) max--;
        return max;
}
