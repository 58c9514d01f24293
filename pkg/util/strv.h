/* SPDX-License-Identifier: Apache-2.0 */
/*
 * String vectors as the API types keep them: an array v of n malloc()ed strings,
 * with the count beside it (no NULL terminator). A vector of 0 strings may be a
 * NULL array. The vector owns its strings; strv_free() releases both.
 */
#ifndef PP_UTIL_STRV_H
#define PP_UTIL_STRV_H

#include <stdbool.h>
#include <stddef.h>

/* Frees the n strings of v and v itself. NULL is fine (n is then ignored). */
void strv_free(char **v, size_t n);

/*
 * Appends a copy of s to *v (*n strings, room for *cap), growing the array as
 * GROW() does. 0 or -ENOMEM; on failure no string is added.
 */
int strv_push(char ***v, size_t *n, size_t *cap, const char *s);

/* Whether one of the n strings of v equals s. */
bool strv_contains(char *const *v, size_t n, const char *s);

/*
 * Copies the n strings of v into a new array of exactly n elements (NULL when n
 * is 0). 0 or -ENOMEM; *ret is written only on success.
 */
int strv_copy(char *const *v, size_t n, char ***ret);

/* strcmp() order of two char * elements: a comparator for qsort() and bsearch(). */
int strv_qsort_cmp(const void *a, const void *b);

/*
 * Sorts the n strings of v in strcmp() order and frees repeats, moving the rest
 * together. Returns the new count; the array keeps its allocation.
 */
size_t strv_sort_uniq(char **v, size_t n);

#endif
