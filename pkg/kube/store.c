/* SPDX-License-Identifier: Apache-2.0 */
#include "kube/store.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/hashmap.h"
#include "util/keytab.h"
#include "util/jsonutil.h"
#include "util/macro.h"
#include "util/memsize.h"
#include "util/strv.h"

/*
 * An object's values for one index. Most objects have one value per index
 * (their namespace, the policy that links them): that one is held inline, not
 * in an array of its own, and the namespace index's borrows the object's own
 * namespace string (which lives as long as the object) instead of a copy.
 */
typedef struct idx_vals {
        union {
                char **v;  /* n > 1: sorted, unique */
                char *one; /* n == 1 */
        };
        uint32_t n;
        bool borrowed; /* one belongs to the object */
} idx_vals;

static const char *iv_at(const idx_vals *iv, size_t i) {
        return iv->n == 1 ? iv->one : iv->v[i];
}

/*
 * One cached object and its index values. The entry holds no key: its key,
 * "namespace/name" (or "name"), is composed from the object's metadata when a
 * table needs it (entry_key()), so that a store of many small objects does not
 * hold every namespace and name twice. The values of the namespace index
 * (index 0) are not kept either: they are the object's namespace, read from the
 * object when needed (entry_vals()), so vals[i - 1] holds index i's; and vals
 * is NULL while all of them are empty (most service accounts are linked by no
 * policy), making the common entry a 24-byte block.
 */
typedef struct entry {
        void *obj;
        idx_vals *vals; /* [s->n_indexes - 1] (or more), or NULL: all empty */
        uint32_t seen;  /* the staged relist (staging.gen) that listed it */
        uint32_t mem;   /* tracked bytes of this entry */
} entry;

/*
 * The objects filed under one index value: a small unordered array while
 * there are at most VSET_SMALL members (most namespaces hold a few service
 * accounts: a hash table each would cost more than the accounts' entries),
 * a table keyed by the entries' keys beyond (so that removing one of many
 * stays O(1)). The value string is in the same allocation.
 */
#define VSET_SMALL 16

typedef struct vset {
        entry **small; /* [cap], n used, while big is NULL */
        keytab *big;   /* entries by key, once more than VSET_SMALL joined */
        uint32_t n, cap;
        char value[];
} vset;

typedef struct store_index {
        char *name;
        kube_store_index_fn fn;
        keytab *map; /* vsets by their value */
} store_index;

typedef struct pending pending;

/*
 * A relist fed page by page (kube_store_replace_begin()): only what it
 * changes is held until the commit. An item whose resourceVersion matches the
 * stored object's just marks that entry as listed (entry.seen = gen) and is
 * freed at once, so a relist of an unchanged collection holds no second copy.
 */
typedef struct staging {
        bool active;
        uint32_t gen; /* never 0 (an entry's seen before any relist lists it) */
        pending *ps;  /* new or changed objects, in item order (obj NULL: overridden) */
        size_t n_ps, cap_ps;
        hashmap *by_key;      /* key → index + 1 in ps */
        size_t listed_stored; /* stored entries marked as listed */
        size_t held;          /* entries of ps still holding an object */
} staging;

struct kube_store {
        const kube_store_kind *kind;
        keytab *objects; /* entries by their key */
        store_index indexes[KUBE_STORE_MAX_INDEXES];
        size_t n_indexes;
        kube_store_handler handler;
        void *handler_ud;
        kube_store_invalid_fn invalid_fn;
        void *invalid_ud;
        size_t max_objects;
        size_t entries_mem;
        bool busy; /* inside a handler */
        bool synced;
        kube_store_stats stats;
        staging st;
};

/* The key of e in buf (or the object's own name, for cluster-scoped kinds). */
static const char *entry_key(const kube_store *s, const entry *e, char buf[KEYTAB_KEY_MAX]) {
        const kube_meta_core *m = s->kind->meta(e->obj);
        if (!m->namespace) return m->name;
        /* decode_pending() admits no longer names: both fit with '/' and the NUL */
        size_t a = strlen(m->namespace), b = strlen(m->name);
        memcpy(buf, m->namespace, a);
        buf[a] = '/';
        memcpy(buf + a + 1, m->name, b + 1);
        return buf;
}

static const char *entry_key_fn(const void *ud, const void *rec, char buf[KEYTAB_KEY_MAX]) {
        return entry_key(ud, rec, buf);
}

/* ---- index values ---------------------------------------------------------------- */

static void idx_vals_done(idx_vals *iv) {
        if (iv->n == 1) {
                if (!iv->borrowed) free(iv->one);
        } else
                strv_free(iv->v, iv->n);
        *iv = (idx_vals){};
}

static void vals_free(idx_vals *vals, size_t n) {
        if (!vals) return;
        for (size_t i = 0; i < n; i++) idx_vals_done(&vals[i]);
        free(vals);
}

static size_t idx_vals_mem(const idx_vals *iv) {
        if (iv->n == 1) return iv->borrowed ? 0 : memsize_str(iv->one);
        return memsize_strv(iv->v, iv->n);
}

/* Runs an index function and normalizes its result (sorted, unique, checked). */
static int compute_vals(kube_store_index_fn fn, const void *obj, idx_vals *ret) {
        char **v = NULL;
        size_t n = 0;
        int r = fn(obj, &v, &n);
        if (r < 0) return r;
        if (n > 0 && !v) return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (!v[i]) {
                        strv_free(v, n);
                        return -EINVAL;
                }
        if (n > KUBE_STORE_INDEX_VALUES_MAX) {
                strv_free(v, n);
                return -E2BIG;
        }
        n = strv_sort_uniq(v, n);
        idx_vals iv = {.v = v, .n = (uint32_t)n};
        if (n <= 1) {
                iv.one = n == 1 ? v[0] : NULL;
                free(v);
        }
        *ret = iv;
        return 0;
}

/* The built-in namespace index (the one index without a function). */
static int namespace_vals(const kube_store *s, const void *obj, idx_vals *ret) {
        const kube_meta_core *m = s->kind->meta(obj);
        if (!m->namespace) {
                *ret = (idx_vals){};
                return 0;
        }
        *ret = (idx_vals){.one = m->namespace, .n = 1, .borrowed = true};
        return 0;
}

/* Computes the values of obj for every index of s into a new array. */
static int compute_all_vals(kube_store *s, const void *obj, idx_vals **ret) {
        idx_vals *vals = calloc(s->n_indexes, sizeof(idx_vals));
        if (!vals) return -ENOMEM;
        for (size_t i = 0; i < s->n_indexes; i++) {
                int r = s->indexes[i].fn ? compute_vals(s->indexes[i].fn, obj, &vals[i])
                                         : namespace_vals(s, obj, &vals[i]);
                if (r < 0) {
                        vals_free(vals, i);
                        return r;
                }
        }
        *ret = vals;
        return 0;
}

/* The values of entry e for index i (tmp: room for the namespace index's or none). */
static const idx_vals *entry_vals(const kube_store *s, const entry *e, size_t i, idx_vals *tmp) {
        if (i > 0 && e->vals) return &e->vals[i - 1];
        *tmp = (idx_vals){};
        if (i == 0) (void)namespace_vals(s, e->obj, tmp);
        return tmp;
}

/* Frees e's values (those of the indexes but the first n_indexes) and their array. */
static void entry_vals_free(entry *e, size_t n_indexes) {
        if (!e->vals) return;
        for (size_t i = 1; i < n_indexes; i++) idx_vals_done(&e->vals[i - 1]);
        free(e->vals);
        e->vals = NULL;
}

/*
 * Gives e the values vals (of every index, as compute_all_vals() made them), taking the
 * array over: the namespace index's (borrowed) are dropped, and so is the array when
 * all the others are empty. Never fails.
 */
static void entry_take_vals(const kube_store *s, entry *e, idx_vals *vals) {
        bool any = false;
        for (size_t i = 1; i < s->n_indexes; i++) any = any || vals[i].n > 0;
        if (!any) {
                free(vals); /* vals[0] borrows from the object; the others are empty */
                e->vals = NULL;
                return;
        }
        memmove(vals, vals + 1, (s->n_indexes - 1) * sizeof(idx_vals));
        idx_vals *shrunk = realloc(vals, (s->n_indexes - 1) * sizeof(idx_vals));
        e->vals = shrunk ? shrunk : vals; /* keeping the longer array is fine */
}

/* ---- index membership ------------------------------------------------------------- */

static vset *vset_free(vset *vs) {
        if (!vs) return NULL;
        keytab_free(vs->big);
        free(vs->small);
        free(vs);
        return NULL;
}

static vset *vset_new(const char *value) {
        size_t l = strlen(value) + 1;
        vset *vs = malloc(offsetof(vset, value) + l);
        if (!vs) return NULL;
        *vs = (vset){};
        memcpy(vs->value, value, l);
        return vs;
}

/* Makes room for one more member, so that vset_add() cannot fail. 0 or -ENOMEM. */
static int vset_reserve(const kube_store *s, vset *vs) {
        if (vs->big) return keytab_reserve(vs->big, 1);
        if (vs->n < vs->cap) return 0;
        if (vs->n < VSET_SMALL) {
                uint32_t ncap = vs->cap ? MIN(vs->cap * 2, (uint32_t)VSET_SMALL) : 2;
                entry **n = reallocarray(vs->small, ncap, sizeof(entry *));
                if (!n) return -ENOMEM;
                vs->small = n;
                vs->cap = ncap;
                return 0;
        }
        keytab *h;
        if (keytab_new_fn(entry_key_fn, s, &h) < 0) return -ENOMEM;
        if (keytab_reserve(h, vs->n + 1) < 0) {
                keytab_free(h);
                return -ENOMEM;
        }
        for (uint32_t i = 0; i < vs->n; i++) (void)keytab_put(h, vs->small[i], NULL);
        free(vs->small);
        vs->small = NULL;
        vs->cap = 0;
        vs->big = h;
        return 0;
}

static void vset_add(vset *vs, entry *e) {
        if (vs->big) {
                if (keytab_put(vs->big, e, NULL) == 1) vs->n++;
                return;
        }
        for (uint32_t i = 0; i < vs->n; i++)
                if (vs->small[i] == e) return;
        vs->small[vs->n++] = e; /* vset_reserve() made the room */
}

static void vset_remove(const kube_store *s, vset *vs, const entry *e) {
        if (vs->big) {
                char buf[KEYTAB_KEY_MAX];
                if (keytab_remove(vs->big, entry_key(s, e, buf))) vs->n--;
                return;
        }
        for (uint32_t i = 0; i < vs->n; i++)
                if (vs->small[i] == e) {
                        vs->small[i] = vs->small[--vs->n];
                        return;
                }
}

/* Iterates the members: start with *state = 0. */
static bool vset_iterate(const vset *vs, size_t *state, entry **ret) {
        if (vs->big) {
                void *v;
                if (!keytab_iterate(vs->big, state, &v)) return false;
                *ret = v;
                return true;
        }
        if (*state >= vs->n) return false;
        *ret = vs->small[(*state)++];
        return true;
}

static size_t vset_mem(const vset *vs) {
        return offsetof(vset, value) + strlen(vs->value) + 1 + MEMSIZE_OVERHEAD +
               (vs->small ? vs->cap * sizeof(entry *) + MEMSIZE_OVERHEAD : 0) + keytab_mem(vs->big);
}

static void sweep_empty(store_index *idx, const idx_vals *iv);

/*
 * Makes sure adding one member under each value of iv cannot fail: creates
 * missing sets and reserves room. On failure, sets left empty are dropped.
 */
static int prepare_membership(const kube_store *s, store_index *idx, const idx_vals *iv) {
        for (size_t i = 0; i < iv->n; i++) {
                vset *vs = keytab_get(idx->map, iv_at(iv, i));
                if (!vs) {
                        vs = vset_new(iv_at(iv, i));
                        if (!vs) goto fail;
                        if (keytab_put(idx->map, vs, NULL) < 0) {
                                vset_free(vs);
                                goto fail;
                        }
                }
                if (vset_reserve(s, vs) < 0) goto fail;
        }
        return 0;
fail:
        sweep_empty(idx, iv);
        return -ENOMEM;
}

static void add_membership(store_index *idx, const idx_vals *iv, entry *e) {
        for (size_t i = 0; i < iv->n; i++) {
                /* prepare_membership() made the set and the room */
                vset_add(keytab_get(idx->map, iv_at(iv, i)), e);
        }
}

static void remove_membership(const kube_store *s, store_index *idx, const idx_vals *iv,
                              const entry *e) {
        for (size_t i = 0; i < iv->n; i++) {
                vset *vs = keytab_get(idx->map, iv_at(iv, i));
                if (vs) vset_remove(s, vs, e);
        }
}

/* Drops the sets of iv's values that have no members left. */
static void sweep_empty(store_index *idx, const idx_vals *iv) {
        for (size_t i = 0; i < iv->n; i++) {
                vset *vs = keytab_get(idx->map, iv_at(iv, i));
                if (vs && vs->n == 0) {
                        keytab_remove(idx->map, iv_at(iv, i));
                        vset_free(vs);
                }
        }
}

static void index_done(store_index *idx) {
        if (idx->map) {
                size_t st = 0;
                void *v;
                while (keytab_iterate(idx->map, &st, &v)) vset_free(v);
                keytab_free(idx->map);
        }
        free(idx->name);
        *idx = (store_index){};
}

/* ---- entries ---------------------------------------------------------------------- */

static size_t obj_mem(const kube_store *s, const void *obj) {
        if (s->kind->mem) return s->kind->mem(obj);
        return kube_meta_core_mem(s->kind->meta(obj));
}

static size_t entry_mem(const kube_store *s, const entry *e) {
        size_t sz = obj_mem(s, e->obj) + memsize_block(e);
        if (e->vals) {
                sz += memsize_block(e->vals);
                for (size_t i = 1; i < s->n_indexes; i++) sz += idx_vals_mem(&e->vals[i - 1]);
        }
        return sz;
}

static void entry_free(const kube_store *s, entry *e) {
        if (!e) return;
        if (e->obj) s->kind->free(e->obj);
        entry_vals_free(e, s->n_indexes);
        free(e);
}

static void notify(kube_store *s, kube_event_type type, const void *old_obj, const void *new_obj) {
        switch (type) {
        case KUBE_EVENT_ADDED:
                s->stats.added++;
                break;
        case KUBE_EVENT_MODIFIED:
                s->stats.modified++;
                break;
        case KUBE_EVENT_DELETED:
                s->stats.deleted++;
                break;
        default:
                break;
        }
        if (!s->handler) return;
        s->busy = true;
        s->handler(s->handler_ud, type, old_obj, new_obj);
        s->busy = false;
}

/* Undoes prepare_membership() for every index. */
static void sweep_all(kube_store *s, const idx_vals *vals) {
        for (size_t i = 0; i < s->n_indexes; i++) sweep_empty(&s->indexes[i], &vals[i]);
}

/* Drops the sets that e's values no longer fill. */
static void sweep_entry(kube_store *s, const entry *e) {
        idx_vals tmp;
        for (size_t i = 0; i < s->n_indexes; i++)
                sweep_empty(&s->indexes[i], entry_vals(s, e, i, &tmp));
}

/*
 * Inserts or replaces obj (whose key is key and index values vals). Takes
 * ownership of all three, on failure too. Returns the change type or a
 * negative error; nothing changes on failure.
 */
static int upsert(kube_store *s, void *obj, char *key, idx_vals *vals) {
        entry *e = keytab_get(s->objects, key);
        entry *fresh = NULL;
        int r;

        if (!e) {
                if (keytab_size(s->objects) >= s->max_objects) {
                        r = -E2BIG;
                        goto fail;
                }
                fresh = malloc(sizeof(entry));
                if (!fresh || keytab_reserve(s->objects, 1) < 0) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        for (size_t i = 0; i < s->n_indexes; i++) {
                r = prepare_membership(s, &s->indexes[i], &vals[i]);
                if (r < 0) {
                        sweep_all(s, vals);
                        goto fail;
                }
        }

        /* Nothing below can fail. */
        free(key); /* an entry's key is its object's namespace and name */
        if (fresh) {
                *fresh = (entry){.obj = obj};
                (void)keytab_put(s->objects, fresh, NULL);
                for (size_t i = 0; i < s->n_indexes; i++)
                        add_membership(&s->indexes[i], &vals[i], fresh);
                entry_take_vals(s, fresh, vals);
                fresh->mem = (uint32_t)entry_mem(s, fresh);
                s->entries_mem += fresh->mem;
                notify(s, KUBE_EVENT_ADDED, NULL, obj);
                return KUBE_EVENT_ADDED;
        }

        void *old_obj = e->obj;
        idx_vals tmp;
        for (size_t i = 0; i < s->n_indexes; i++) {
                remove_membership(s, &s->indexes[i], entry_vals(s, e, i, &tmp), e);
                add_membership(&s->indexes[i], &vals[i], e);
        }
        sweep_entry(s, e); /* still with the old object and values */
        e->obj = obj;      /* the same key: tables holding e stay sound */
        notify(s, KUBE_EVENT_MODIFIED, old_obj, obj);
        s->kind->free(old_obj);
        entry_vals_free(e, s->n_indexes);
        entry_take_vals(s, e, vals);
        s->entries_mem -= e->mem;
        e->mem = (uint32_t)entry_mem(s, e);
        s->entries_mem += e->mem;
        return KUBE_EVENT_MODIFIED;
fail:
        free(fresh);
        s->kind->free(obj);
        free(key);
        vals_free(vals, s->n_indexes);
        return r;
}

/* Removes e, which is in the store. */
static void remove_entry(kube_store *s, entry *e) {
        char buf[KEYTAB_KEY_MAX];
        keytab_remove(s->objects, entry_key(s, e, buf));
        idx_vals tmp;
        for (size_t i = 0; i < s->n_indexes; i++) {
                const idx_vals *iv = entry_vals(s, e, i, &tmp);
                remove_membership(s, &s->indexes[i], iv, e);
                sweep_empty(&s->indexes[i], iv);
        }
        s->entries_mem -= e->mem;
        notify(s, KUBE_EVENT_DELETED, e->obj, NULL);
        entry_free(s, e);
}

/* Removes the entry under key; 1 when there was one. */
static int remove_key(kube_store *s, const char *key) {
        entry *e = keytab_get(s->objects, key);
        if (!e) return 0;
        remove_entry(s, e);
        return 1;
}

/* ---- decoding --------------------------------------------------------------------- */

struct pending {
        void *obj;
        char *key;
        idx_vals *vals;
};

/*
 * The namespace and name of obj as the server sent them, read without the
 * kind: an object the kind refuses (over a limit of its model) still has a
 * usable key. 0, or -EINVAL when there is none (no name, a wrong type, a name
 * longer than any Kubernetes name).
 */
static int object_names(json_object *obj, const char **ret_ns, const char **ret_name) {
        json_object *md = jsonutil_member(obj, "metadata");
        const char *name = jsonutil_member_str(md, "name");
        json_object *nsv = jsonutil_member(md, "namespace");
        const char *ns = jsonutil_member_str(md, "namespace");
        if (!name || !*name || strlen(name) > KUBE_META_NAME_MAX) return -EINVAL;
        if (nsv && (!ns || strlen(ns) > KUBE_META_NAME_MAX)) return -EINVAL;
        *ret_ns = ns && *ns ? ns : NULL;
        *ret_name = name;
        return 0;
}

/* The store key of obj (see object_names()): 0, -EINVAL or -ENOMEM. */
static int object_key(json_object *obj, char **ret) {
        const char *ns, *name;
        int r = object_names(obj, &ns, &name);
        if (r < 0) return r;
        kube_meta m = {.namespace = (char *)ns, .name = (char *)name};
        char *key = kube_meta_key(&m);
        if (!key) return -ENOMEM;
        *ret = key;
        return 0;
}

/* Counts an object the kind refused and reports it to the invalid handler. */
static void refused(kube_store *s, json_object *obj, int error) {
        const char *ns = NULL, *name = NULL;
        s->stats.invalid++;
        if (!s->invalid_fn) return;
        (void)object_names(obj, &ns, &name);
        s->busy = true;
        s->invalid_fn(s->invalid_ud, ns, name, error, obj);
        s->busy = false;
}

/*
 * Decodes obj with the kind and computes its key and index values. Returns 0,
 * -ENOMEM, an index function's error, or -EINVAL for an object the kind
 * refuses or that has more index values than allowed (counted and reported).
 */
static int decode_pending(kube_store *s, json_object *obj, pending *ret) {
        void *o = NULL;
        int r = s->kind->decode(obj, &o);
        if (r == -ENOMEM) return r;
        if (r < 0 || !o) {
                refused(s, obj, r < 0 ? r : -EINVAL);
                return -EINVAL;
        }
        const kube_meta_core *m = s->kind->meta(o);
        if (!m || !m->name || !*m->name) {
                s->kind->free(o);
                refused(s, obj, -EINVAL);
                return -EINVAL;
        }
        /* Kubernetes' own limit, which entry_key() relies on */
        if (strlen(m->name) > KUBE_META_NAME_MAX ||
            (m->namespace && strlen(m->namespace) > KUBE_META_NAME_MAX)) {
                s->kind->free(o);
                refused(s, obj, -E2BIG);
                return -EINVAL;
        }
        char *key = kube_meta_key(m);
        if (!key) {
                s->kind->free(o);
                return -ENOMEM;
        }
        idx_vals *vals = NULL;
        r = compute_all_vals(s, o, &vals);
        if (r < 0) {
                free(key);
                s->kind->free(o);
                /* Too many values is the object's doing, like any other limit of the model. */
                if (r == -E2BIG) {
                        refused(s, obj, r);
                        return -EINVAL;
                }
                return r;
        }
        *ret = (pending){o, key, vals};
        return 0;
}

static void pending_done(kube_store *s, pending *p) {
        if (p->obj) s->kind->free(p->obj);
        free(p->key);
        vals_free(p->vals, s->n_indexes);
        *p = (pending){};
}

/* ---- public API ------------------------------------------------------------------- */

/* ---- public API ------------------------------------------------------------------- */

int kube_store_new(const kube_store_kind *kind, kube_store **ret) {
        if (!kind || !kind->decode || !kind->free || !kind->meta || !ret) return -EINVAL;
        kube_store *s = calloc(1, sizeof(kube_store));
        if (!s) return -ENOMEM;
        s->kind = kind;
        s->max_objects = KUBE_STORE_DEFAULT_MAX_OBJECTS;
        s->indexes[0].name = strdup(KUBE_STORE_INDEX_NAMESPACE);
        s->n_indexes = 1;
        if (!s->indexes[0].name || keytab_new_fn(entry_key_fn, s, &s->objects) < 0 ||
            keytab_new(offsetof(vset, value), &s->indexes[0].map) < 0) {
                kube_store_free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

static void staging_drop(kube_store *s);

kube_store *kube_store_free(kube_store *s) {
        if (!s) return NULL;
        staging_drop(s);
        if (s->objects) {
                size_t st = 0;
                void *e;
                while (keytab_iterate(s->objects, &st, &e)) entry_free(s, e);
                keytab_free(s->objects);
        }
        for (size_t i = 0; i < s->n_indexes; i++) index_done(&s->indexes[i]);
        free(s);
        return NULL;
}

void kube_store_set_handler(kube_store *s, kube_store_handler fn, void *ud) {
        if (!s) return;
        s->handler = fn;
        s->handler_ud = ud;
}

void kube_store_set_invalid_handler(kube_store *s, kube_store_invalid_fn fn, void *ud) {
        if (!s) return;
        s->invalid_fn = fn;
        s->invalid_ud = ud;
}

void kube_store_set_max_objects(kube_store *s, size_t max) {
        if (!s) return;
        s->max_objects = max ? max : KUBE_STORE_DEFAULT_MAX_OBJECTS;
}

static const store_index *find_index(const kube_store *s, const char *name) {
        if (!name) return NULL;
        for (size_t i = 0; i < s->n_indexes; i++)
                if (streq(s->indexes[i].name, name)) return &s->indexes[i];
        return NULL;
}

int kube_store_add_index(kube_store *s, const char *name, kube_store_index_fn fn) {
        if (!s || !name || !*name || !fn) return -EINVAL;
        if (s->busy) return -EBUSY;
        if (find_index(s, name)) return -EEXIST;
        if (s->n_indexes >= KUBE_STORE_MAX_INDEXES) return -E2BIG;

        size_t k = s->n_indexes;
        store_index idx = {.fn = fn};
        size_t st;
        void *v;
        int r = -ENOMEM;

        idx.name = strdup(name);
        if (!idx.name || keytab_new(offsetof(vset, value), &idx.map) < 0) goto fail;

        /* Room for the new slot in every entry that has values; a larger array left
         * behind on failure is harmless. */
        st = 0;
        while (keytab_iterate(s->objects, &st, &v)) {
                entry *e = v;
                if (!e->vals) continue;
                idx_vals *n = realloc(e->vals, k * sizeof(idx_vals));
                if (!n) goto fail;
                e->vals = n;
                e->vals[k - 1] = (idx_vals){};
        }

        st = 0;
        while (keytab_iterate(s->objects, &st, &v)) {
                entry *e = v;
                idx_vals iv;
                r = compute_vals(fn, e->obj, &iv);
                if (r < 0) goto fail_vals;
                if (iv.n > 0 && !e->vals && !(e->vals = calloc(k, sizeof(idx_vals)))) {
                        idx_vals_done(&iv);
                        r = -ENOMEM;
                        goto fail_vals;
                }
                if (e->vals) e->vals[k - 1] = iv; /* else empty: nothing to keep */
                r = prepare_membership(s, &idx, &iv);
                if (r < 0) goto fail_vals;
                add_membership(&idx, &iv, e);
        }

        s->indexes[k] = idx;
        s->n_indexes++;
        st = 0;
        while (keytab_iterate(s->objects, &st, &v)) {
                entry *e = v;
                s->entries_mem -= e->mem;
                e->mem = (uint32_t)entry_mem(s, e);
                s->entries_mem += e->mem;
        }
        return 0;

fail_vals:
        /* (an entry given an array above keeps it, all empty: harmless) */
        st = 0;
        while (keytab_iterate(s->objects, &st, &v))
                if (((entry *)v)->vals) idx_vals_done(&((entry *)v)->vals[k - 1]);
fail:
        index_done(&idx);
        return r;
}

int kube_store_apply(kube_store *s, kube_event_type type, json_object *obj) {
        int r;

        if (!s) return -EINVAL;
        if (s->busy) return -EBUSY;
        switch (type) {
        case KUBE_EVENT_BOOKMARK:
                return 0;
        case KUBE_EVENT_ADDED:
        case KUBE_EVENT_MODIFIED: {
                pending p;
                _cleanup_free_ char *key = NULL;
                r = decode_pending(s, obj, &p);
                if (r == -EINVAL) {
                        int k = object_key(obj, &key);
                        if (k == -ENOMEM) return k;
                        /* Skipped, as a relist skips it. Its older version goes as if
                         * deleted: kept, it would be acted on as the object's state,
                         * while the object has changed in ways we cannot see. */
                        if (k >= 0) return remove_key(s, key);
                }
                if (r < 0) return r;
                r = upsert(s, p.obj, p.key, p.vals);
                return r < 0 ? r : 1;
        }
        case KUBE_EVENT_DELETED: {
                /* Only the key matters: don't ask the kind, which may refuse the
                 * object's last state (over a limit) that the event carries. */
                _cleanup_free_ char *key = NULL;
                r = object_key(obj, &key);
                if (r == -ENOMEM) return r;
                if (r < 0) {
                        s->stats.invalid++;
                        return -EINVAL;
                }
                return remove_key(s, key);
        }
        default:
                return -EINVAL;
        }
}

/* qsort_r() order of entries by key. */
static int entry_key_cmp(const void *a, const void *b, void *ud) {
        char ba[KEYTAB_KEY_MAX], bb[KEYTAB_KEY_MAX];
        return strcmp(entry_key(ud, *(entry *const *)a, ba), entry_key(ud, *(entry *const *)b, bb));
}

static bool same_version(const kube_store *s, const void *a, const void *b) {
        const char *ra = s->kind->meta(a)->resource_version;
        const char *rb = s->kind->meta(b)->resource_version;
        return ra && rb && *ra && streq(ra, rb);
}

static void staging_drop(kube_store *s) {
        staging *st = &s->st;
        for (size_t i = 0; i < st->n_ps; i++) pending_done(s, &st->ps[i]);
        free(st->ps);
        hashmap_free(st->by_key);
        uint32_t gen = st->gen;
        *st = (staging){.gen = gen};
}

int kube_store_replace_begin(kube_store *s) {
        if (!s) return -EINVAL;
        if (s->busy) return -EBUSY;
        staging_drop(s);
        int r = hashmap_new(&s->st.by_key);
        if (r < 0) return r;
        s->st.active = true;
        if (++s->st.gen == 0) s->st.gen = 1;
        return 0;
}

void kube_store_replace_abort(kube_store *s) {
        if (!s || s->busy) return;
        staging_drop(s);
}

/* Stages one valid decoded item (taking it over): see struct staging. */
static int stage(kube_store *s, pending *p) {
        staging *st = &s->st;
        uintptr_t earlier = (uintptr_t)hashmap_get(st->by_key, p->key);
        entry *e = keytab_get(s->objects, p->key);

        if (e && same_version(s, e->obj, p->obj)) {
                if (earlier) { /* the later item wins: nothing changes for this key */
                        hashmap_remove(st->by_key, p->key);
                        pending_done(s, &st->ps[earlier - 1]);
                        st->held--;
                }
                if (e->seen != st->gen) {
                        e->seen = st->gen;
                        st->listed_stored++;
                }
                pending_done(s, p);
                return 0;
        }
        if (st->n_ps >= st->cap_ps) {
                size_t ncap = st->cap_ps ? st->cap_ps * 2 : 64;
                pending *n = reallocarray(st->ps, ncap, sizeof(pending));
                if (!n) goto nomem;
                st->ps = n;
                st->cap_ps = ncap;
        }
        if (hashmap_put(st->by_key, p->key, (void *)(uintptr_t)(st->n_ps + 1), NULL) < 0)
                goto nomem;
        if (earlier) {
                pending_done(s, &st->ps[earlier - 1]); /* its key is no longer in by_key */
                st->held--;
        }
        if (e && e->seen != st->gen) {
                e->seen = st->gen;
                st->listed_stored++;
        }
        st->ps[st->n_ps++] = *p;
        st->held++;
        return 0;
nomem:
        pending_done(s, p);
        return -ENOMEM;
}

int kube_store_replace_add(kube_store *s, json_object *items) {
        if (!s || !items || !json_object_is_type(items, json_type_array)) return -EINVAL;
        if (s->busy) return -EBUSY;
        if (!s->st.active) return -EINVAL;
        size_t n = json_object_array_length(items);
        for (size_t i = 0; i < n; i++) {
                pending p;
                int r = decode_pending(s, json_object_array_get_idx(items, i), &p);
                if (r == -EINVAL) continue;
                if (r == 0) r = stage(s, &p);
                if (r < 0) {
                        staging_drop(s);
                        return r;
                }
        }
        return 0;
}

int kube_store_replace_commit(kube_store *s) {
        if (!s) return -EINVAL;
        if (s->busy) return -EBUSY;
        staging *st = &s->st;
        if (!st->active) return -EINVAL;

        size_t fresh = 0, n_gone = 0;
        for (size_t i = 0; i < st->n_ps; i++)
                if (st->ps[i].obj && !keytab_get(s->objects, st->ps[i].key)) fresh++;
        entry **gone = NULL;
        int r, changes = 0;
        if (st->listed_stored + fresh > s->max_objects) {
                r = -E2BIG;
                goto out;
        }
        size_t it = 0;
        void *v;
        if (keytab_size(s->objects) > st->listed_stored &&
            !(gone = malloc((keytab_size(s->objects) - st->listed_stored) * sizeof(entry *)))) {
                r = -ENOMEM;
                goto out;
        }
        while (keytab_iterate(s->objects, &it, &v))
                if (((entry *)v)->seen != st->gen) gone[n_gone++] = v;
        if (n_gone > 1) qsort_r(gone, n_gone, sizeof(entry *), entry_key_cmp, s);

        /* From here on the store changes. */
        for (size_t i = 0; i < n_gone; i++) {
                remove_entry(s, gone[i]);
                changes++;
        }
        for (size_t i = 0; i < st->n_ps; i++) {
                pending *p = &st->ps[i];
                if (!p->obj) continue;
                const entry *e = keytab_get(s->objects, p->key);
                if (e && same_version(s, e->obj, p->obj)) {
                        pending_done(s, p);
                        continue;
                }
                r = upsert(s, p->obj, p->key, p->vals);
                *p = (pending){};
                if (r < 0) goto out;
                changes++;
        }
        /* A relist is where mass deletions show up; watch events shrink nothing, so
         * that a key going and coming back cannot make the tables thrash. */
        keytab_trim(s->objects);
        for (size_t i = 0; i < s->n_indexes; i++) keytab_trim(s->indexes[i].map);
        s->synced = true;
        s->stats.replaces++;
        r = changes;
out:
        free(gone);
        staging_drop(s);
        return r;
}

int kube_store_replace(kube_store *s, json_object *items) {
        if (!s || !items || !json_object_is_type(items, json_type_array)) return -EINVAL;
        if (s->busy) return -EBUSY;
        int r = kube_store_replace_begin(s);
        if (r < 0) return r;
        r = kube_store_replace_add(s, items);
        if (r < 0) return r; /* staging already dropped */
        return kube_store_replace_commit(s);
}

const void *kube_store_get_by_key(const kube_store *s, const char *key) {
        if (!s || !key) return NULL;
        const entry *e = keytab_get(s->objects, key);
        return e ? e->obj : NULL;
}

const void *kube_store_get(const kube_store *s, const char *namespace, const char *name) {
        char buf[2 * KUBE_META_NAME_MAX + 2];
        int l;

        if (!s || !name) return NULL;
        if (namespace)
                l = snprintf(buf, sizeof buf, "%s/%s", namespace, name);
        else
                l = snprintf(buf, sizeof buf, "%s", name);
        if (l < 0 || (size_t)l >= sizeof buf) return NULL; /* longer than any stored key */
        return kube_store_get_by_key(s, buf);
}

size_t kube_store_count(const kube_store *s) {
        return s ? keytab_size(s->objects) : 0;
}

size_t kube_store_mem(const kube_store *s) {
        if (!s) return 0;
        size_t sz = sizeof(*s) + s->entries_mem + keytab_mem(s->objects);
        for (size_t i = 0; i < s->n_indexes; i++) {
                const store_index *idx = &s->indexes[i];
                sz += strlen(idx->name) + 1 + keytab_mem(idx->map);
                size_t st = 0;
                void *v;
                while (keytab_iterate(idx->map, &st, &v)) sz += vset_mem(v);
        }
        return sz;
}

void kube_store_get_stats(const kube_store *s, kube_store_stats *ret) {
        if (!s || !ret) return;
        *ret = s->stats;
        ret->objects = kube_store_count(s);
        ret->mem = kube_store_mem(s);
        ret->staged = s->st.held;
}

bool kube_store_has_synced(const kube_store *s) {
        return s && s->synced;
}

int kube_store_foreach(const kube_store *s, kube_store_visit_fn fn, void *ud) {
        if (!s || !fn) return -EINVAL;
        size_t st = 0;
        void *v;
        while (keytab_iterate(s->objects, &st, &v)) {
                int r = fn(((const entry *)v)->obj, ud);
                if (r != 0) return r;
        }
        return 0;
}

/* The members of index_name under value: NULL for none, or -ENOENT in *ret_err. */
static const vset *members_of(const kube_store *s, const char *index_name, const char *value,
                              int *ret_err) {
        *ret_err = 0;
        const store_index *idx = find_index(s, index_name);
        if (!idx) {
                *ret_err = -ENOENT;
                return NULL;
        }
        if (!value) return NULL;
        return keytab_get(idx->map, value);
}

int kube_store_foreach_indexed(const kube_store *s, const char *index_name, const char *value,
                               kube_store_visit_fn fn, void *ud) {
        if (!s || !fn) return -EINVAL;
        int err;
        const vset *vs = members_of(s, index_name, value, &err);
        if (err < 0) return err;
        if (!vs) return 0;
        size_t st = 0;
        entry *e;
        while (vset_iterate(vs, &st, &e)) {
                int r = fn(e->obj, ud);
                if (r != 0) return r;
        }
        return 0;
}

int kube_store_foreach_in_namespace(const kube_store *s, const char *namespace,
                                    kube_store_visit_fn fn, void *ud) {
        return kube_store_foreach_indexed(s, KUBE_STORE_INDEX_NAMESPACE, namespace, fn, ud);
}

size_t kube_store_count_indexed(const kube_store *s, const char *index_name, const char *value) {
        if (!s) return 0;
        int err;
        const vset *vs = members_of(s, index_name, value, &err);
        return vs ? vs->n : 0;
}

int kube_store_list(const kube_store *s, const char *index_name, const char *value,
                    const void ***ret, size_t *ret_n) {
        if (!s || !ret || !ret_n) return -EINVAL;
        const vset *vs = NULL;
        if (index_name) {
                int err;
                vs = members_of(s, index_name, value, &err);
                if (err < 0) return err;
        }
        size_t n = index_name ? (vs ? vs->n : 0) : keytab_size(s->objects);
        if (n == 0) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        entry **es = malloc(n * sizeof(entry *));
        const void **objs = malloc(n * sizeof(void *));
        if (!es || !objs) {
                free(es);
                free(objs);
                return -ENOMEM;
        }
        size_t st = 0, i = 0;
        if (index_name) {
                entry *e;
                while (vset_iterate(vs, &st, &e)) es[i++] = e;
        } else {
                void *v;
                while (keytab_iterate(s->objects, &st, &v)) es[i++] = v;
        }
        qsort_r(es, n, sizeof(entry *), entry_key_cmp, (void *)s);
        for (i = 0; i < n; i++) objs[i] = es[i]->obj;
        free(es);
        *ret = objs;
        *ret_n = n;
        return 0;
}
