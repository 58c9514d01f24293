/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A cache of slim objects of one kind, keyed by "namespace/name" (or "name"
 * for cluster-scoped kinds), with secondary indexes: client-go's thread-less
 * cache.Store + cache.Indexer, fed by a reflector.
 *
 * The store is generic: a kube_store_kind vtable decodes server JSON into the
 * caller's slim struct, which embeds kube_meta (or only its kube_meta_core) as
 * its FIRST member (so that kind->meta is usually a cast). PartialObjectMetadata
 * objects need nothing special: the kind's decoder reads only .metadata.
 *
 * Ownership: the store owns the objects it holds. Pointers handed out by
 * getters, iterators and handlers stay valid until the next mutation of the
 * store (kube_store_replace/apply/free); the old object passed to a handler is
 * freed right after the handler returns. Nothing here copies objects out.
 *
 * Reentrancy: handlers and visitors may read the store (get, foreach, list)
 * but must not mutate it; a mutation attempted from inside one fails with
 * -EBUSY. Single-threaded, like the event loop it serves.
 *
 * Iteration order of the foreach functions is unspecified (hash order, and it
 * differs between processes); kube_store_list() returns objects sorted by key
 * for callers that need a deterministic order (planning, tests).
 *
 * Limits: at most max_objects objects (KUBE_STORE_DEFAULT_MAX_OBJECTS unless
 * set; apply/replace return -E2BIG beyond it and change nothing); at most
 * KUBE_STORE_MAX_INDEXES indexes; at most KUBE_STORE_INDEX_VALUES_MAX values
 * per object per index (-E2BIG).
 */
#ifndef PP_KUBE_STORE_H
#define PP_KUBE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "kube/meta.h"
#include "kube/types.h"

#define KUBE_STORE_DEFAULT_MAX_OBJECTS (1u << 20)
#define KUBE_STORE_MAX_INDEXES         16
#define KUBE_STORE_INDEX_VALUES_MAX    1024

/* The built-in index: namespace → objects of that namespace (cluster-scoped objects: none). */
#define KUBE_STORE_INDEX_NAMESPACE "namespace"

typedef struct kube_store kube_store;

typedef struct kube_store_kind {
        const char *name; /* e.g. "serviceaccounts", for messages */
        /*
         * Server JSON (a whole object) → a new slim object in *ret. Returns 0,
         * -ENOMEM (the store operation fails), or any other negative code,
         * which makes the store skip the object as invalid (and count it).
         */
        int (*decode)(json_object *obj, void **ret);
        void (*free)(void *obj);
        /*
         * The embedded metadata; must have a name. Its namespace and name must not be
         * longer than KUBE_META_NAME_MAX (else the object is refused, as over a limit).
         */
        const kube_meta_core *(*meta)(const void *obj);
        /* Heap bytes of obj including its own struct; NULL: kube_meta_core_mem() is used. */
        size_t (*mem)(const void *obj);
} kube_store_kind;

/*
 * Called after each change with both versions: (ADDED, NULL, new),
 * (MODIFIED, old, new), (DELETED, old, NULL). The type is what happened to
 * the store, so an ADDED watch event for a key already present is reported
 * as MODIFIED.
 */
typedef void (*kube_store_handler)(void *ud, kube_event_type type, const void *old_obj,
                                   const void *new_obj);

/*
 * Computes the index values of obj: a malloc()ed array of *ret_n malloc()ed
 * strings that the store takes over (the array may be NULL when *ret_n is 0).
 * Must be a pure function of obj. Duplicate values are folded. A negative
 * return fails the store operation that needed it, with that code; except
 * more than KUBE_STORE_INDEX_VALUES_MAX values, which makes apply and replace
 * treat the object as one the kind refuses.
 */
typedef int (*kube_store_index_fn)(const void *obj, char ***ret_values, size_t *ret_n);

/*
 * Called for each object skipped because the kind refused it (by
 * kube_store_apply() and kube_store_replace()): its namespace (NULL when
 * cluster-scoped) and name as the server sent them, and the kind's error
 * (-E2BIG: over one of the model's limits; -EINVAL: malformed). obj is the
 * server's JSON, borrowed for the call. For a warning and a metric: the store
 * must not be changed from inside it.
 */
typedef void (*kube_store_invalid_fn)(void *ud, const char *namespace, const char *name, int error,
                                      json_object *obj);

/* Visitor: return 0 to go on; anything else stops the iteration and is returned. */
typedef int (*kube_store_visit_fn)(const void *obj, void *ud);

typedef struct kube_store_stats {
        size_t objects;
        size_t mem;       /* kube_store_mem() */
        uint64_t invalid; /* objects skipped because the kind's decoder refused them */
        uint64_t added;   /* changes reported to the handler, by type */
        uint64_t modified;
        uint64_t deleted;
        uint64_t replaces; /* successful kube_store_replace() and ..._commit() calls */
        size_t staged;     /* new or changed objects held by a relist fed page by page */
} kube_store_stats;

/* A new empty store for kind (which must outlive it). 0, -EINVAL or -ENOMEM. */
int kube_store_new(const kube_store_kind *kind, kube_store **ret);

/* Frees the store and every object in it, without calling the handler. Accepts NULL. */
kube_store *kube_store_free(kube_store *s);

void kube_store_set_handler(kube_store *s, kube_store_handler fn, void *ud);

void kube_store_set_invalid_handler(kube_store *s, kube_store_invalid_fn fn, void *ud);

/* 0 means KUBE_STORE_DEFAULT_MAX_OBJECTS. Lowering it below the count evicts nothing. */
void kube_store_set_max_objects(kube_store *s, size_t max);

/*
 * Adds a named index; existing objects are indexed at once. 0, -EEXIST (name
 * taken, including KUBE_STORE_INDEX_NAMESPACE), -E2BIG (too many indexes or
 * values), -EINVAL, -ENOMEM or the index function's error; on failure the
 * store is unchanged.
 */
int kube_store_add_index(kube_store *s, const char *name, kube_store_index_fn fn);

/*
 * A full relist: items is the "items" array of a list response. Objects
 * absent from items are removed (DELETED), new ones ADDED, present ones with
 * a different resourceVersion MODIFIED; an identical (non-empty)
 * resourceVersion changes nothing. Deletions are reported first, in key
 * order, then additions and modifications in the order of items (a key given
 * twice: the later item wins). Items the kind refuses are skipped, counted and
 * reported to the invalid handler (a stored version of one is removed, as it
 * is absent from the valid items).
 *
 * Returns the number of changes, or -EINVAL (items not an array), -E2BIG
 * (more valid items than max_objects), -EBUSY, -ENOMEM or an index function's
 * error. Up to the first change nothing is modified; a failure after that
 * (only -ENOMEM or an index function's error) leaves the store consistent
 * but only partly updated, and the caller should relist.
 */
int kube_store_replace(kube_store *s, json_object *items);

/*
 * The same relist fed page by page, so that a LIST is never held whole:
 * kube_store_replace_begin(), then kube_store_replace_add() with each page's
 * "items" as it arrives (the caller frees the page afterwards), then
 * kube_store_replace_commit(), which has kube_store_replace()'s result,
 * semantics and order of changes (items of all pages in order). Each item is
 * decoded at once; one whose resourceVersion equals the stored object's is
 * freed at once and only marks that object as listed, so beyond the store
 * itself only the new and changed objects are held (stats.staged) and never
 * two copies of an unchanged collection. Nothing in the store changes before
 * the commit; lookups keep answering from the previous state.
 *
 * begin drops an unfinished earlier relist; add fails with -EINVAL without a
 * begin (and after any failure of add, which drops what was staged);
 * kube_store_replace_abort() drops it (NULL and no relist are fine); so does
 * the commit, whatever its result, and kube_store_free(). The store should not
 * be changed by kube_store_apply() between begin and commit: the commit would
 * still leave it consistent, with the listed state. -EBUSY from inside a
 * handler, as every mutation.
 */
int kube_store_replace_begin(kube_store *s);
int kube_store_replace_add(kube_store *s, json_object *items);
int kube_store_replace_commit(kube_store *s);
void kube_store_replace_abort(kube_store *s);

/*
 * Applies one watch event: ADDED and MODIFIED insert or replace (whatever the
 * resourceVersions: they are opaque), DELETED removes (by the key of obj; an
 * unknown key is no change), BOOKMARK is ignored. Returns 1 when the store
 * changed, 0 when not, or -EINVAL (ERROR or unknown type, an object without a
 * readable name), -E2BIG (a new key beyond max_objects), -EBUSY, -ENOMEM or an
 * index function's error; on failure nothing changed.
 *
 * An ADDED or MODIFIED object the kind refuses (e.g. over a limit of its
 * model) is skipped as kube_store_replace() skips it: counted in
 * stats.invalid, reported to the invalid handler, and not an error, so that a
 * reflector goes on instead of relisting the whole resource for one object.
 * A version of it already stored is removed (reported DELETED): the store
 * never serves an object's stale state as its current one. A DELETED event is
 * applied by namespace and name alone, whatever the kind thinks of the rest.
 */
int kube_store_apply(kube_store *s, kube_event_type type, json_object *obj);

/* Lookups; namespace NULL for cluster-scoped objects. NULL when absent. */
const void *kube_store_get(const kube_store *s, const char *namespace, const char *name);
const void *kube_store_get_by_key(const kube_store *s, const char *key);

size_t kube_store_count(const kube_store *s);

/* Tracked heap bytes: objects (kind->mem), keys, index values and the tables. */
size_t kube_store_mem(const kube_store *s);

void kube_store_get_stats(const kube_store *s, kube_store_stats *ret);

/* True once a kube_store_replace() has succeeded (client-go's HasSynced). */
bool kube_store_has_synced(const kube_store *s);

/* Visits every object. Returns 0 or the visitor's first non-zero return. */
int kube_store_foreach(const kube_store *s, kube_store_visit_fn fn, void *ud);

/* Visits the objects of one namespace. */
int kube_store_foreach_in_namespace(const kube_store *s, const char *namespace,
                                    kube_store_visit_fn fn, void *ud);

/*
 * Visits the objects whose index_name values include value. Returns 0, the
 * visitor's first non-zero return, or -ENOENT for an unknown index.
 */
int kube_store_foreach_indexed(const kube_store *s, const char *index_name, const char *value,
                               kube_store_visit_fn fn, void *ud);

/* How many objects foreach_indexed would visit (0 for an unknown index). */
size_t kube_store_count_indexed(const kube_store *s, const char *index_name, const char *value);

/*
 * A malloc()ed array of the objects (all of them when index_name is NULL,
 * else those under value), sorted by key; the caller frees the array only.
 * An empty result is *ret = NULL, *ret_n = 0. 0, -ENOENT or -ENOMEM.
 */
int kube_store_list(const kube_store *s, const char *index_name, const char *value,
                    const void ***ret, size_t *ret_n);

#endif
