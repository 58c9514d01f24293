/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Slim object metadata: the parts of metav1.ObjectMeta the controller reads,
 * decoded from a whole object's JSON (".metadata"), so that cached objects do
 * not keep whole JSON documents alive.
 *
 * Typed caches embed kube_meta, or only its first part kube_meta_core (the kinds
 * cached by the thousand), as their FIRST member, so a pointer to the slim object
 * is also a pointer to its metadata.
 *
 * Ownership: every string and array inside a kube_meta is owned by it and
 * freed by kube_meta_done(). Values returned by the getters point into the
 * kube_meta and live as long as it does.
 *
 * Limits (input from the server is trusted to be valid, but a cache must not
 * grow without bound because of one odd object; the figures are Kubernetes'
 * own validation limits, or generous bounds where it has none):
 *   name, namespace ................ KUBE_META_NAME_MAX (253) bytes
 *   uid, resourceVersion ........... KUBE_META_TOKEN_MAX (128) bytes
 *   label/annotation key ........... KUBE_META_KEY_MAX (317 = 253 prefix + '/' + 63 name)
 *   label value .................... KUBE_META_LABEL_VALUE_MAX (63)
 *   annotations, keys + values ..... KUBE_META_ANNOTATIONS_TOTAL_MAX (256 KiB), counted over
 *                                    all annotations of the input, kept or not
 *   labels, annotations ............ KUBE_META_KVS_MAX (1024) entries each
 *   owner references ............... KUBE_META_OWNERS_MAX (64), fields NAME_MAX/TOKEN_MAX
 *   finalizers ..................... KUBE_META_FINALIZERS_MAX (64), each KUBE_META_KEY_MAX
 */
#ifndef PP_KUBE_META_H
#define PP_KUBE_META_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#define KUBE_META_NAME_MAX              253
#define KUBE_META_TOKEN_MAX             128
#define KUBE_META_KEY_MAX               317
#define KUBE_META_LABEL_VALUE_MAX       63
#define KUBE_META_ANNOTATIONS_TOTAL_MAX (256 * 1024)
#define KUBE_META_KVS_MAX               1024
#define KUBE_META_OWNERS_MAX            64
#define KUBE_META_FINALIZERS_MAX        64

typedef struct kube_kv {
        char *key;
        char *value;
} kube_kv;

/* A string map, items sorted by key (strcmp order) for binary search; keys unique. */
typedef struct kube_kvs {
        kube_kv *items;
        size_t n;
} kube_kvs;

typedef struct kube_owner_ref {
        char *api_version;
        char *kind;
        char *name;
        char *uid;
        bool controller;
} kube_owner_ref;

/*
 * The part of the metadata that every cached kind keeps, and all that the store
 * reads: kube_meta's first member (through the anonymous union below, so that
 * m->name still names it). Kinds cached by the thousand (Namespaces,
 * ServiceAccounts: issue 9) embed only this; a pointer to any kube_meta is also
 * a pointer to its kube_meta_core.
 */
#define KUBE_META_CORE_FIELDS                                                                      \
        char *namespace; /* NULL for cluster-scoped objects (absent or "") */                      \
        char *name;                                                                                \
        char *resource_version; /* NULL when absent */                                             \
        kube_kvs labels;                                                                           \
        kube_kvs annotations; /* possibly filtered, see kube_meta_decode_opts */                   \
        bool deleting;        /* deletionTimestamp set */

typedef struct kube_meta_core {
        KUBE_META_CORE_FIELDS
} kube_meta_core;

typedef struct kube_meta {
        union {
                kube_meta_core core;
                struct {
                        KUBE_META_CORE_FIELDS
                };
        };
        char *uid;            /* NULL when absent */
        long long generation; /* 0 when absent */
        kube_owner_ref *owners;
        size_t n_owners;
        char **finalizers;
        size_t n_finalizers;
} kube_meta;

/*
 * The kube_meta_core of m, a kube_meta or kube_meta_core pointer (const or not):
 * lets the getters below take either.
 */
#ifdef __CPPCHECK__
/* cppcheck (2.10) cannot parse _Generic: the same conversion, unchecked, for it alone */
#define KUBE_META_CORE(m) ((const kube_meta_core *)(const void *)(m))
#else
#define KUBE_META_CORE(m)                                                                          \
        _Generic((m),                                                                              \
            kube_meta *: (const kube_meta_core *)(const void *)(m),                                \
            const kube_meta *: (const kube_meta_core *)(const void *)(m),                          \
            kube_meta_core *: (const kube_meta_core *)(m),                                         \
            const kube_meta_core *: (const kube_meta_core *)(m))
#endif

typedef struct kube_meta_decode_opts {
        /*
         * NULL-terminated list of key prefixes; only annotations whose key
         * starts with one of them are kept (an exact key is its own prefix).
         * NULL keeps all annotations; an empty list keeps none.
         */
        const char *const *annotation_keep;
} kube_meta_decode_opts;

/* The value stored under key, or NULL. O(log n). */
const char *kube_kvs_get(const kube_kvs *kvs, const char *key);

/* Frees the items of kvs and empties it. */
void kube_kvs_done(kube_kvs *kvs);

/*
 * Decodes obj's ".metadata" (obj is a whole object such as a ServiceAccount or a
 * PartialObjectMetadata) into *ret, keeping all annotations. Absent and JSON-null
 * optional fields decode as empty. Returns 0, -EINVAL (obj not an object, no
 * metadata or no/empty name, a field of the wrong type, an owner reference
 * without apiVersion/kind/name/uid), -E2BIG (a limit above exceeded) or -ENOMEM.
 * *ret is untouched on failure.
 */
int kube_meta_decode(json_object *obj, kube_meta *ret);

/* The same with options; opts may be NULL (= defaults). */
int kube_meta_decode_full(json_object *obj, const kube_meta_decode_opts *opts, kube_meta *ret);

/* Deep copy of src into *ret: 0 or -ENOMEM (then *ret is untouched). */
int kube_meta_copy(const kube_meta *src, kube_meta *ret);

/* Frees the members of m (not m itself) and zeroes it; m may be NULL. */
void kube_meta_done(kube_meta *m);

/*
 * Approximate heap bytes owned by m (strings, arrays, plus a fixed allocator
 * overhead per allocation), not counting sizeof(*m) itself, which lives in the
 * embedding object. For the store's tracked memory figure. kube_meta_core_mem():
 * the same for the core's fields alone.
 */
size_t kube_meta_mem(const kube_meta *m);
size_t kube_meta_core_mem(const kube_meta_core *m);

/* A new string "namespace/name", or "name" for cluster-scoped objects; NULL on ENOMEM. */
char *kube_meta_key_(const kube_meta_core *m);
#define kube_meta_key(m) kube_meta_key_(KUBE_META_CORE(m))

/* Convenience lookups; NULL/false when absent. m: a kube_meta or a kube_meta_core. */
const char *kube_meta_label_(const kube_meta_core *m, const char *key);
const char *kube_meta_annotation_(const kube_meta_core *m, const char *key);
#define kube_meta_label(m, key)      kube_meta_label_(KUBE_META_CORE(m), key)
#define kube_meta_annotation(m, key) kube_meta_annotation_(KUBE_META_CORE(m), key)
bool kube_meta_has_finalizer(const kube_meta *m, const char *finalizer);
/* The owner reference with controller=true, or NULL. */
const kube_owner_ref *kube_meta_controller_ref(const kube_meta *m);

#endif
