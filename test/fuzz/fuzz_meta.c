/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube_meta_decode() / kube_meta_decode_full() on arbitrary JSON.
 *
 * Each input is decoded four times: without options, keeping no annotation,
 * keeping two prefixes, and keeping the empty prefix (everything). Checks:
 *   - success or failure does not depend on the filter (the limits count every
 *     annotation of the input, kept or not), nor does anything but annotations;
 *   - a decoded kube_meta keeps the header's limits, its maps are sorted with
 *     unique keys, and every label/annotation of the input is found by key
 *     with its value (annotations: exactly those that the filter keeps);
 *   - kube_meta_copy() is a deep, equal copy; the getters agree with the data.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "kube/meta.h"

static const char *const meta_keep_none[] = {NULL};
static const char *const meta_keep_some[] = {"pullpolicy.io/", "a", NULL};
static const char *const meta_keep_all[] = {"", NULL};

static bool meta_kept(const char *key, const char *const *keep) {
        if (!keep) return true;
        for (const char *const *p = keep; *p; p++)
                if (strncmp(key, *p, strlen(*p)) == 0) return true;
        return false;
}

static void meta_check_kvs(const kube_kvs *kvs, size_t value_max) {
        FUZZ_CHECK(kvs->n <= KUBE_META_KVS_MAX);
        FUZZ_CHECK((kvs->n == 0) || kvs->items != NULL);
        for (size_t i = 0; i < kvs->n; i++) {
                const kube_kv *kv = &kvs->items[i];
                FUZZ_CHECK(kv->key && kv->value);
                FUZZ_CHECK(*kv->key);
                FUZZ_CHECK(strlen(kv->key) <= KUBE_META_KEY_MAX);
                FUZZ_CHECK(strlen(kv->value) <= value_max);
                if (i > 0) FUZZ_CHECK(strcmp(kvs->items[i - 1].key, kv->key) < 0);
                FUZZ_CHECK(kube_kvs_get(kvs, kv->key) == kv->value);
        }
}

/* Every string member of the input's map is in kvs with the same value (if kept). */
static void meta_check_against_input(const kube_kvs *kvs, json_object *map,
                                     const char *const *keep) {
        size_t expected = 0;
        if (map && json_object_is_type(map, json_type_object)) {
                json_object_object_foreach(map, k, v) {
                        if (!meta_kept(k, keep)) {
                                FUZZ_CHECK(kube_kvs_get(kvs, k) == NULL);
                                continue;
                        }
                        expected++;
                        const char *got = kube_kvs_get(kvs, k);
                        FUZZ_CHECK(got != NULL);
                        FUZZ_CHECK(strcmp(got, json_object_get_string(v)) == 0);
                }
        }
        FUZZ_CHECK(kvs->n == expected);
}

static bool meta_str_eq(const char *a, const char *b) {
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool meta_kvs_eq(const kube_kvs *a, const kube_kvs *b) {
        if (a->n != b->n) return false;
        for (size_t i = 0; i < a->n; i++)
                if (strcmp(a->items[i].key, b->items[i].key) ||
                    strcmp(a->items[i].value, b->items[i].value))
                        return false;
        return true;
}

/* Equal in everything but annotations. */
static bool meta_eq_but_annotations(const kube_meta *a, const kube_meta *b) {
        if (!meta_str_eq(a->namespace, b->namespace) || !meta_str_eq(a->name, b->name) ||
            !meta_str_eq(a->uid, b->uid) ||
            !meta_str_eq(a->resource_version, b->resource_version) ||
            a->generation != b->generation || a->deleting != b->deleting ||
            !meta_kvs_eq(&a->labels, &b->labels) || a->n_owners != b->n_owners ||
            a->n_finalizers != b->n_finalizers)
                return false;
        for (size_t i = 0; i < a->n_owners; i++) {
                const kube_owner_ref *x = &a->owners[i], *y = &b->owners[i];
                if (!meta_str_eq(x->api_version, y->api_version) ||
                    !meta_str_eq(x->kind, y->kind) || !meta_str_eq(x->name, y->name) ||
                    !meta_str_eq(x->uid, y->uid) || x->controller != y->controller)
                        return false;
        }
        for (size_t i = 0; i < a->n_finalizers; i++)
                if (!meta_str_eq(a->finalizers[i], b->finalizers[i])) return false;
        return true;
}

static void meta_check(const kube_meta *m, json_object *obj, const char *const *keep) {
        json_object *md = json_object_object_get(obj, "metadata");
        FUZZ_CHECK(m->name && *m->name && strlen(m->name) <= KUBE_META_NAME_MAX);
        if (m->namespace) FUZZ_CHECK(*m->namespace && strlen(m->namespace) <= KUBE_META_NAME_MAX);
        if (m->uid) FUZZ_CHECK(strlen(m->uid) <= KUBE_META_TOKEN_MAX);
        if (m->resource_version) FUZZ_CHECK(strlen(m->resource_version) <= KUBE_META_TOKEN_MAX);

        meta_check_kvs(&m->labels, KUBE_META_LABEL_VALUE_MAX);
        meta_check_kvs(&m->annotations, KUBE_META_ANNOTATIONS_TOTAL_MAX);
        size_t total = 0;
        for (size_t i = 0; i < m->annotations.n; i++)
                total +=
                    strlen(m->annotations.items[i].key) + strlen(m->annotations.items[i].value);
        FUZZ_CHECK(total <= KUBE_META_ANNOTATIONS_TOTAL_MAX);
        meta_check_against_input(&m->labels, json_object_object_get(md, "labels"), NULL);
        meta_check_against_input(&m->annotations, json_object_object_get(md, "annotations"), keep);
        for (size_t i = 0; i < m->labels.n; i++)
                FUZZ_CHECK(kube_meta_label(m, m->labels.items[i].key) == m->labels.items[i].value);
        for (size_t i = 0; i < m->annotations.n; i++)
                FUZZ_CHECK(kube_meta_annotation(m, m->annotations.items[i].key) ==
                           m->annotations.items[i].value);

        FUZZ_CHECK(m->n_owners <= KUBE_META_OWNERS_MAX);
        const kube_owner_ref *ctrl = NULL;
        for (size_t i = 0; i < m->n_owners; i++) {
                const kube_owner_ref *o = &m->owners[i];
                FUZZ_CHECK(o->api_version && o->kind && o->name && o->uid);
                if (o->controller && !ctrl) ctrl = o;
        }
        FUZZ_CHECK(kube_meta_controller_ref(m) == ctrl);
        FUZZ_CHECK(m->n_finalizers <= KUBE_META_FINALIZERS_MAX);
        for (size_t i = 0; i < m->n_finalizers; i++) {
                FUZZ_CHECK(m->finalizers[i] && strlen(m->finalizers[i]) <= KUBE_META_KEY_MAX);
                FUZZ_CHECK(kube_meta_has_finalizer(m, m->finalizers[i]));
        }

        char *key = kube_meta_key(m);
        FUZZ_CHECK(key != NULL);
        if (m->namespace) {
                size_t nl = strlen(m->namespace);
                FUZZ_CHECK(strncmp(key, m->namespace, nl) == 0 && key[nl] == '/' &&
                           strcmp(key + nl + 1, m->name) == 0);
        } else {
                FUZZ_CHECK(strcmp(key, m->name) == 0);
        }
        free(key);
        FUZZ_CHECK(kube_meta_mem(m) > 0);

        kube_meta c;
        int r = kube_meta_copy(m, &c);
        FUZZ_CHECK(r == 0 || r == -ENOMEM);
        if (r == 0) {
                FUZZ_CHECK(meta_eq_but_annotations(m, &c));
                FUZZ_CHECK(meta_kvs_eq(&m->annotations, &c.annotations));
                FUZZ_CHECK(c.name != m->name);
                FUZZ_CHECK(kube_meta_mem(&c) == kube_meta_mem(m));
                kube_meta_done(&c);
                FUZZ_CHECK(c.name == NULL && c.labels.n == 0);
        }
}

int fuzz_meta_one(const uint8_t *data, size_t size) {
        json_object *obj = fuzz_json(data, size);
        if (!obj) return 0;

        static const char *const *const keeps[] = {meta_keep_none, meta_keep_some, meta_keep_all};
        kube_meta base;
        memset(&base, 0x5a, sizeof(base));
        kube_meta untouched = base;
        int r0 = kube_meta_decode(obj, &base);
        FUZZ_CHECK(r0 == 0 || r0 == -EINVAL || r0 == -E2BIG || r0 == -ENOMEM);
        if (r0 < 0) FUZZ_CHECK(memcmp(&base, &untouched, sizeof(base)) == 0);
        if (r0 == 0) meta_check(&base, obj, NULL);

        for (size_t k = 0; k < sizeof(keeps) / sizeof(keeps[0]); k++) {
                kube_meta m;
                kube_meta_decode_opts o = {.annotation_keep = keeps[k]};
                int r = kube_meta_decode_full(obj, &o, &m);
                if (r == -ENOMEM || r0 == -ENOMEM) continue;
                FUZZ_CHECK(r == r0);
                if (r < 0) continue;
                meta_check(&m, obj, keeps[k]);
                FUZZ_CHECK(meta_eq_but_annotations(&base, &m));
                if (keeps[k] == meta_keep_all)
                        FUZZ_CHECK(meta_kvs_eq(&base.annotations, &m.annotations));
                kube_meta_done(&m);
        }
        if (r0 == 0) kube_meta_done(&base);
        json_object_put(obj);
        return 0;
}

#ifdef FUZZ_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        return fuzz_meta_one(data, size);
}
#endif
