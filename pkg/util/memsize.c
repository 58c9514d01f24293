/* SPDX-License-Identifier: Apache-2.0 */
#include "util/memsize.h"

#include <malloc.h>
#include <string.h>

/* glibc's chunk header beside the usable bytes (the size word). */
#define CHUNK_HEADER sizeof(size_t)

size_t memsize_block(const void *p) {
        return p ? malloc_usable_size((void *)p) + CHUNK_HEADER : 0;
}

size_t memsize_str(const char *s) {
        return s ? strlen(s) + 1 + MEMSIZE_OVERHEAD : 0;
}

size_t memsize_strv(char *const *v, size_t n) {
        if (n == 0) return 0;
        size_t m = n * sizeof(char *) + MEMSIZE_OVERHEAD;
        for (size_t i = 0; i < n; i++) m += memsize_str(v[i]);
        return m;
}
