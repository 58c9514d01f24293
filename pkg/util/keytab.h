/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A hash set of records that carry their own string key at a fixed offset
 * (e.g. a struct ending in `char key[]`), or whose key a function composes from
 * their fields (keytab_new_fn()): open addressing, linear probing,
 * backward-shift deletion, keys hashed with util/hash.h's keyed SipHash as in
 * util/hashmap.h. A slot is one pointer, half of hashmap's key and value: the
 * store keeps one slot per cached object for the life of the process.
 *
 * Ownership: the table stores the record pointers and owns none; a record's
 * key must stay unchanged while it is in the table. keytab_free() frees only
 * the table. Iteration order is unspecified. Not thread-safe.
 *
 * Limits: at most KEYTAB_MAX_ENTRIES records (-E2BIG beyond).
 */
#ifndef PP_UTIL_KEYTAB_H
#define PP_UTIL_KEYTAB_H

#include <stdbool.h>
#include <stddef.h>

#define KEYTAB_MAX_ENTRIES (1u << 28)
#define KEYTAB_KEY_MAX     512 /* bytes of a key that a keytab_key_fn composes, NUL included */

typedef struct keytab keytab;

/*
 * For records whose key is not one string of theirs (the store's entries: "namespace/name"
 * of the object they hold): returns rec's key, either a string rec holds or one written to
 * buf. Must be a pure function of rec while rec is in the table, and fit KEYTAB_KEY_MAX.
 */
typedef const char *(*keytab_key_fn)(const void *ud, const void *rec, char buf[KEYTAB_KEY_MAX]);

/* An empty table whose records hold their key at key_offset; 0, -EINVAL or -ENOMEM. */
int keytab_new(size_t key_offset, keytab **ret);

/* An empty table whose records' keys key_fn(ud, rec, buf) gives; 0, -EINVAL or -ENOMEM. */
int keytab_new_fn(keytab_key_fn key_fn, const void *ud, keytab **ret);

/* Frees the table (not the records); accepts NULL; returns NULL. */
keytab *keytab_free(keytab *t);

/* Makes room for n more records, so that as many keytab_put() of new keys cannot fail. */
int keytab_reserve(keytab *t, size_t n);

/*
 * Inserts rec, or replaces the record with an equal key (returned in *ret_old
 * when ret_old is not NULL; NULL when new). 1 inserted, 0 replaced, -EINVAL,
 * -ENOMEM or -E2BIG (nothing changed).
 */
int keytab_put(keytab *t, void *rec, void **ret_old);

/* The record whose key is key, or NULL. */
void *keytab_get(const keytab *t, const char *key);

/* Removes and returns the record whose key is key (NULL when absent). Never allocates. */
void *keytab_remove(keytab *t, const char *key);

/* Shrinks the slot array to fit the current size, best effort. */
void keytab_trim(keytab *t);

size_t keytab_size(const keytab *t);

/* Heap bytes of the table itself (header and slots). */
size_t keytab_mem(const keytab *t);

/* Iterates: *state = 0 first; true and a record while there are more. No changes meanwhile. */
bool keytab_iterate(const keytab *t, size_t *state, void **ret);

#endif
