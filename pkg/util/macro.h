/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small helpers shared by every module: scoped clean-up, array sizes,
 * overflow-checked sizes. Kept tiny on purpose; anything with state
 * belongs in a module of its own.
 */
#ifndef PP_UTIL_MACRO_H
#define PP_UTIL_MACRO_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define _unused_             __attribute__((unused))
#define _printf_(a, b)       __attribute__((format(printf, a, b)))
#define _warn_unused_result_ __attribute__((warn_unused_result))
#define _cleanup_(f)         __attribute__((cleanup(f)))

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

static inline void freep(void *p) {
        free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

/* Defines fooptr_freep() for a destructor foo_free(foo *) that accepts NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                    \
        static inline void func##p(type *p) {                                                      \
                if (*p) func(*p);                                                                  \
        }

/* Hands ownership out of a _cleanup_ variable. */
#define TAKE_PTR(p)                                                                                \
        ({                                                                                         \
                __typeof__(p) _p_ = (p);                                                           \
                (p) = NULL;                                                                        \
                _p_;                                                                               \
        })

/* strdup() that keeps NULL as NULL. */
static inline char *strdup_or_null(const char *s) {
        return s ? strdup(s) : NULL;
}

static inline int streq_ptr(const char *a, const char *b) {
        if (!a || !b) return a == b;
        return strcmp(a, b) == 0;
}
#define streq(a, b) (strcmp((a), (b)) == 0)

/* Grows *arr (of *cap elements of size sz) to hold need elements; 0 or -ENOMEM. */
static inline int grow_array(void **arr, size_t *cap, size_t need, size_t sz) {
        if (need <= *cap) return 0;
        size_t ncap = *cap ? *cap : 4;
        while (ncap < need) {
                if (ncap > SIZE_MAX / 2) return -ENOMEM;
                ncap *= 2;
        }
        if (ncap > SIZE_MAX / sz) return -ENOMEM;
        void *n = realloc(*arr, ncap * sz);
        if (!n) return -ENOMEM;
        *arr = n;
        *cap = ncap;
        return 0;
}
#define GROW(arr, cap, need) grow_array((void **)&(arr), &(cap), (need), sizeof(*(arr)))

#endif
