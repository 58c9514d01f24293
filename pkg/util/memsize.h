/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Heap figures for tracked memory (kube_store_mem() and the sizes the store's
 * kinds report). memsize_block() measures a block the caller knows to be
 * malloc()ed (malloc_usable_size() plus glibc's chunk header); the string
 * figures are estimates (each block's bytes plus MEMSIZE_OVERHEAD), which also
 * accept strings that are not blocks of their own. test_compact checks that the
 * sum stays within 15% of the heap really used.
 */
#ifndef PP_UTIL_MEMSIZE_H
#define PP_UTIL_MEMSIZE_H

#include <stddef.h>

/* What malloc keeps beside each block on glibc x86-64, near enough for a tracked figure. */
#define MEMSIZE_OVERHEAD 16

/* The bytes the allocator holds for block p, a pointer malloc() returned; 0 for NULL. */
size_t memsize_block(const void *p);

/* A malloc()ed string: its bytes with the NUL, plus the overhead; 0 for NULL. */
size_t memsize_str(const char *s);

/* A string vector (util/strv.h): the array, when there is one, and its n strings. */
size_t memsize_strv(char *const *v, size_t n);

#endif
