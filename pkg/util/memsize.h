/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rough heap figures for tracked memory (kube_store_mem() and the sizes the
 * store's kinds report): each malloc()ed block counts its bytes plus
 * MEMSIZE_OVERHEAD. Estimates, not measurements: good for trends and limits.
 */
#ifndef PP_UTIL_MEMSIZE_H
#define PP_UTIL_MEMSIZE_H

#include <stddef.h>

/* What malloc keeps beside each block on glibc x86-64, near enough for a tracked figure. */
#define MEMSIZE_OVERHEAD 16

/* A malloc()ed string: its bytes with the NUL, plus the overhead; 0 for NULL. */
size_t memsize_str(const char *s);

/* A string vector (util/strv.h): the array, when there is one, and its n strings. */
size_t memsize_strv(char *const *v, size_t n);

#endif
