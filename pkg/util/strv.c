/* SPDX-License-Identifier: Apache-2.0 */
#include "util/strv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/macro.h"

void strv_free(char **v, size_t n) {
        if (!v) return;
        for (size_t i = 0; i < n; i++) free(v[i]);
        free(v);
}

int strv_push(char ***v, size_t *n, size_t *cap, const char *s) {
        if (GROW(*v, *cap, *n + 1) < 0) return -ENOMEM;
        char *d = strdup(s);
        if (!d) return -ENOMEM;
        (*v)[(*n)++] = d;
        return 0;
}

bool strv_contains(char *const *v, size_t n, const char *s) {
        for (size_t i = 0; i < n; i++)
                if (streq(v[i], s)) return true;
        return false;
}

int strv_copy(char *const *v, size_t n, char ***ret) {
        if (n == 0) {
                *ret = NULL;
                return 0;
        }
        char **d = calloc(n, sizeof(char *));
        if (!d) return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                d[i] = strdup(v[i]);
                if (!d[i]) {
                        strv_free(d, i);
                        return -ENOMEM;
                }
        }
        *ret = d;
        return 0;
}

int strv_qsort_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t strv_sort_uniq(char **v, size_t n) {
        if (n < 2) return n;
        qsort(v, n, sizeof(char *), strv_qsort_cmp);
        size_t o = 1;
        for (size_t i = 1; i < n; i++) {
                if (streq(v[i], v[o - 1]))
                        free(v[i]);
                else
                        v[o++] = v[i];
        }
        return o;
}
