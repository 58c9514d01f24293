/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small string-keyed hash table (open addressing, linear probing,
 * backward-shift deletion, so no tombstones pile up under churn).
 *
 * Keys are hashed with SipHash-2-4 under a per-process random key: the store
 * keys objects by names that cluster users choose, and a fixed hash would let
 * them make every lookup collide.
 *
 * Ownership: the table stores the key and value POINTERS it is given and owns
 * neither; a key must stay valid and unchanged while its entry exists
 * (typically the key lives inside the value). hashmap_free() frees only the
 * table. Iteration order is unspecified and differs between processes.
 * Not thread-safe (the process-wide hash key is set up lazily on first use).
 *
 * Limits: at most HASHMAP_MAX_ENTRIES entries (-E2BIG beyond), far above what
 * the store admits; memory otherwise bounded by the caller.
 */
#ifndef PP_UTIL_HASHMAP_H
#define PP_UTIL_HASHMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HASHMAP_MAX_ENTRIES (1u << 28)

typedef struct hashmap hashmap;

/* An empty table; 0 or -ENOMEM. */
int hashmap_new(hashmap **ret);

/* Frees the table (not keys or values); accepts NULL; returns NULL. */
hashmap *hashmap_free(hashmap *h);

/*
 * Makes room for n more entries so that as many hashmap_put() calls of new
 * keys cannot fail. 0, -ENOMEM or -E2BIG.
 */
int hashmap_reserve(hashmap *h, size_t n);

/*
 * Inserts or replaces. On replace, the stored key pointer becomes key and the
 * previous value is returned in *ret_old (if ret_old is not NULL; NULL when the
 * key was new). Returns 1 when inserted, 0 when replaced, -ENOMEM or -E2BIG
 * (then nothing changed). Never fails after a successful hashmap_reserve()
 * that covers it.
 */
int hashmap_put(hashmap *h, const char *key, void *value, void **ret_old);

/* The value under key, or NULL. */
void *hashmap_get(const hashmap *h, const char *key);

/* Whether key is present (a NULL value is a value). */
bool hashmap_contains(const hashmap *h, const char *key);

/*
 * Removes key and returns its value (NULL when absent). Never allocates nor
 * shrinks the table, so a preceding hashmap_reserve() stays valid.
 */
void *hashmap_remove(hashmap *h, const char *key);

/* Shrinks the slot array to fit the current size, best effort (after mass removals). */
void hashmap_trim(hashmap *h);

size_t hashmap_size(const hashmap *h);

/* Heap bytes held by the table itself (slot array and header). */
size_t hashmap_mem(const hashmap *h);

/*
 * Iterates: start with *state = 0; returns true and an entry while there are
 * more. The table must not be modified during an iteration (collect keys
 * first); ret_key and ret_value may be NULL.
 */
bool hashmap_iterate(const hashmap *h, size_t *state, const char **ret_key, void **ret_value);

/* SipHash-2-4 of data under a 16-byte key; exposed for tests. */
uint64_t hashmap_siphash24(const void *data, size_t len, const uint8_t key[16]);

#endif
