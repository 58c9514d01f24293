/* SPDX-License-Identifier: Apache-2.0 */
#include "kube/meta.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/jsonutil.h"
#include "util/macro.h"
#include "util/memsize.h"
#include "util/str.h"
#include "util/strv.h"

/* Copies an optional string field of at most max bytes into *ret (NULL when absent). */
static int dup_string(json_object *o, const char *key, size_t max, bool empty_is_null, char **ret) {
        json_object *v = jsonutil_member(o, key);
        if (!v) {
                *ret = NULL;
                return 0;
        }
        if (!json_object_is_type(v, json_type_string)) return -EINVAL;
        size_t len = (size_t)json_object_get_string_len(v);
        if (len > max) return -E2BIG;
        const char *s = json_object_get_string(v);
        if (len == 0 && empty_is_null) {
                *ret = NULL;
                return 0;
        }
        if (memchr(s, '\0', len)) return -EINVAL; /* "\u0000" would truncate silently */
        char *c = strndup(s, len);
        if (!c) return -ENOMEM;
        *ret = c;
        return 0;
}

const char *kube_kvs_get(const kube_kvs *kvs, const char *key) {
        if (!kvs || !key) return NULL;
        size_t lo = 0, hi = kvs->n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(kvs->items[mid].key, key);
                if (c == 0) return kvs->items[mid].value;
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

void kube_kvs_done(kube_kvs *kvs) {
        if (!kvs) return;
        for (size_t i = 0; i < kvs->n; i++) {
                free(kvs->items[i].key);
                free(kvs->items[i].value);
        }
        free(kvs->items);
        kvs->items = NULL;
        kvs->n = 0;
}

static int kv_cmp(const void *a, const void *b) {
        return strcmp(((const kube_kv *)a)->key, ((const kube_kv *)b)->key);
}

static bool keep_key(const char *key, const char *const *keep) {
        if (!keep) return true;
        for (const char *const *p = keep; *p; p++)
                if (strncmp(key, *p, strlen(*p)) == 0) return true;
        return false;
}

/*
 * Decodes a string map. value_max bounds each value, total_max (0 = none)
 * bounds the sum of key and value lengths over all entries of the input.
 */
static int decode_kvs(json_object *o, size_t value_max, size_t total_max, const char *const *keep,
                      kube_kvs *ret) {
        kube_kvs kvs = {};
        int r;

        if (!o) {
                *ret = kvs;
                return 0;
        }
        if (!json_object_is_type(o, json_type_object)) return -EINVAL;
        size_t n = (size_t)json_object_object_length(o);
        if (n > KUBE_META_KVS_MAX) return -E2BIG;

        size_t total = 0;
        json_object_object_foreach(o, key, val) {
                if (!val || !json_object_is_type(val, json_type_string)) {
                        r = -EINVAL;
                        goto fail;
                }
                size_t klen = strlen(key);
                size_t vlen = (size_t)json_object_get_string_len(val);
                const char *v = json_object_get_string(val);
                if (klen == 0 || memchr(v, '\0', vlen)) {
                        r = -EINVAL;
                        goto fail;
                }
                if (klen > KUBE_META_KEY_MAX || vlen > value_max) {
                        r = -E2BIG;
                        goto fail;
                }
                total += klen + vlen;
                if (total_max > 0 && total > total_max) {
                        r = -E2BIG;
                        goto fail;
                }
                if (!keep_key(key, keep)) continue;
                if (!kvs.items) {
                        kvs.items = calloc(n, sizeof(kube_kv));
                        if (!kvs.items) return -ENOMEM;
                }
                kube_kv *kv = &kvs.items[kvs.n];
                kv->key = strdup(key);
                kv->value = strndup(v, vlen);
                kvs.n++;
                if (!kv->key || !kv->value) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        if (kvs.n > 0 && kvs.n < n) {
                /* Filtering kept few: give back the rest, the figure of kube_meta_mem() counts n.
                 */
                kube_kv *shrunk = realloc(kvs.items, kvs.n * sizeof(kube_kv));
                if (shrunk) kvs.items = shrunk;
        }
        if (kvs.n > 1) qsort(kvs.items, kvs.n, sizeof(kube_kv), kv_cmp);
        *ret = kvs;
        return 0;
fail:
        kube_kvs_done(&kvs);
        return r;
}

static void owner_ref_done(kube_owner_ref *o) {
        free(o->api_version);
        free(o->kind);
        free(o->name);
        free(o->uid);
}

static void owners_free(kube_owner_ref *owners, size_t n) {
        for (size_t i = 0; i < n; i++) owner_ref_done(&owners[i]);
        free(owners);
}

static int decode_owner(json_object *o, kube_owner_ref *ret) {
        kube_owner_ref ref = {};
        int r;

        if (!o || !json_object_is_type(o, json_type_object)) return -EINVAL;
        if ((r = dup_string(o, "apiVersion", KUBE_META_NAME_MAX, false, &ref.api_version)) < 0 ||
            (r = dup_string(o, "kind", KUBE_META_NAME_MAX, false, &ref.kind)) < 0 ||
            (r = dup_string(o, "name", KUBE_META_NAME_MAX, false, &ref.name)) < 0 ||
            (r = dup_string(o, "uid", KUBE_META_TOKEN_MAX, false, &ref.uid)) < 0)
                goto fail;
        if (!ref.api_version || !ref.kind || !ref.name || !ref.uid) {
                r = -EINVAL;
                goto fail;
        }
        json_object *c = jsonutil_member(o, "controller");
        if (c) {
                if (!json_object_is_type(c, json_type_boolean)) {
                        r = -EINVAL;
                        goto fail;
                }
                ref.controller = json_object_get_boolean(c);
        }
        *ret = ref;
        return 0;
fail:
        owner_ref_done(&ref);
        return r;
}

static int decode_owners(json_object *a, kube_owner_ref **ret, size_t *ret_n) {
        *ret = NULL;
        *ret_n = 0;
        if (!a) return 0;
        if (!json_object_is_type(a, json_type_array)) return -EINVAL;
        size_t n = json_object_array_length(a);
        if (n > KUBE_META_OWNERS_MAX) return -E2BIG;
        if (n == 0) return 0;

        kube_owner_ref *owners = calloc(n, sizeof(kube_owner_ref));
        if (!owners) return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                int r = decode_owner(json_object_array_get_idx(a, i), &owners[i]);
                if (r < 0) {
                        owners_free(owners, i);
                        return r;
                }
        }
        *ret = owners;
        *ret_n = n;
        return 0;
}

static int decode_finalizers(json_object *a, char ***ret, size_t *ret_n) {
        *ret = NULL;
        *ret_n = 0;
        if (!a) return 0;
        if (!json_object_is_type(a, json_type_array)) return -EINVAL;
        size_t n = json_object_array_length(a);
        if (n > KUBE_META_FINALIZERS_MAX) return -E2BIG;
        if (n == 0) return 0;

        char **v = calloc(n, sizeof(char *));
        if (!v) return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *s = json_object_array_get_idx(a, i);
                int r = 0;
                if (!s || !json_object_is_type(s, json_type_string))
                        r = -EINVAL;
                else if ((size_t)json_object_get_string_len(s) > KUBE_META_KEY_MAX)
                        r = -E2BIG;
                else if (strlen(json_object_get_string(s)) != (size_t)json_object_get_string_len(s))
                        r = -EINVAL; /* an embedded NUL */
                else if (!(v[i] = strdup(json_object_get_string(s))))
                        r = -ENOMEM;
                if (r < 0) {
                        strv_free(v, i);
                        return r;
                }
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

void kube_meta_done(kube_meta *m) {
        if (!m) return;
        free(m->namespace);
        free(m->name);
        free(m->uid);
        free(m->resource_version);
        kube_kvs_done(&m->labels);
        kube_kvs_done(&m->annotations);
        owners_free(m->owners, m->n_owners);
        strv_free(m->finalizers, m->n_finalizers);
        *m = (kube_meta){};
}

int kube_meta_decode_full(json_object *obj, const kube_meta_decode_opts *opts, kube_meta *ret) {
        kube_meta m = {};
        int r;

        if (!obj || !ret || !json_object_is_type(obj, json_type_object)) return -EINVAL;
        json_object *md = jsonutil_member(obj, "metadata");
        if (!md || !json_object_is_type(md, json_type_object)) return -EINVAL;

        if ((r = dup_string(md, "name", KUBE_META_NAME_MAX, true, &m.name)) < 0) goto fail;
        if (!m.name) {
                r = -EINVAL;
                goto fail;
        }
        if ((r = dup_string(md, "namespace", KUBE_META_NAME_MAX, true, &m.namespace)) < 0 ||
            (r = dup_string(md, "uid", KUBE_META_TOKEN_MAX, true, &m.uid)) < 0 ||
            (r = dup_string(md, "resourceVersion", KUBE_META_TOKEN_MAX, true,
                            &m.resource_version)) < 0)
                goto fail;

        json_object *g = jsonutil_member(md, "generation");
        if (g) {
                if (!json_object_is_type(g, json_type_int)) {
                        r = -EINVAL;
                        goto fail;
                }
                m.generation = (long long)json_object_get_int64(g);
        }

        json_object *dt = jsonutil_member(md, "deletionTimestamp");
        if (dt) {
                if (!json_object_is_type(dt, json_type_string)) {
                        r = -EINVAL;
                        goto fail;
                }
                m.deleting = true;
        }

        if ((r = decode_kvs(jsonutil_member(md, "labels"), KUBE_META_LABEL_VALUE_MAX, 0, NULL,
                            &m.labels)) < 0 ||
            (r = decode_kvs(jsonutil_member(md, "annotations"), KUBE_META_ANNOTATIONS_TOTAL_MAX,
                            KUBE_META_ANNOTATIONS_TOTAL_MAX, opts ? opts->annotation_keep : NULL,
                            &m.annotations)) < 0 ||
            (r = decode_owners(jsonutil_member(md, "ownerReferences"), &m.owners, &m.n_owners)) <
                0 ||
            (r = decode_finalizers(jsonutil_member(md, "finalizers"), &m.finalizers,
                                   &m.n_finalizers)) < 0)
                goto fail;

        *ret = m;
        return 0;
fail:
        kube_meta_done(&m);
        return r;
}

int kube_meta_decode(json_object *obj, kube_meta *ret) {
        return kube_meta_decode_full(obj, NULL, ret);
}

static int copy_kvs(const kube_kvs *src, kube_kvs *dst) {
        *dst = (kube_kvs){};
        if (src->n == 0) return 0;
        dst->items = calloc(src->n, sizeof(kube_kv));
        if (!dst->items) return -ENOMEM;
        for (size_t i = 0; i < src->n; i++) {
                dst->items[i].key = strdup(src->items[i].key);
                dst->items[i].value = strdup(src->items[i].value);
                dst->n++;
                if (!dst->items[i].key || !dst->items[i].value) return -ENOMEM;
        }
        return 0;
}

int kube_meta_copy(const kube_meta *src, kube_meta *ret) {
        kube_meta m = {};

        if (!src || !ret) return -EINVAL;
        if (str_dup_opt(src->namespace, &m.namespace) < 0 || str_dup_opt(src->name, &m.name) < 0 ||
            str_dup_opt(src->uid, &m.uid) < 0 ||
            str_dup_opt(src->resource_version, &m.resource_version) < 0 ||
            copy_kvs(&src->labels, &m.labels) < 0 ||
            copy_kvs(&src->annotations, &m.annotations) < 0)
                goto fail;
        m.generation = src->generation;
        m.deleting = src->deleting;

        if (src->n_owners > 0) {
                m.owners = calloc(src->n_owners, sizeof(kube_owner_ref));
                if (!m.owners) goto fail;
                for (size_t i = 0; i < src->n_owners; i++) {
                        const kube_owner_ref *s = &src->owners[i];
                        kube_owner_ref *d = &m.owners[i];
                        m.n_owners++;
                        if (str_dup_opt(s->api_version, &d->api_version) < 0 ||
                            str_dup_opt(s->kind, &d->kind) < 0 ||
                            str_dup_opt(s->name, &d->name) < 0 || str_dup_opt(s->uid, &d->uid) < 0)
                                goto fail;
                        d->controller = s->controller;
                }
        }
        if (strv_copy(src->finalizers, src->n_finalizers, &m.finalizers) < 0) goto fail;
        m.n_finalizers = src->n_finalizers;
        *ret = m;
        return 0;
fail:
        kube_meta_done(&m);
        return -ENOMEM;
}

static size_t kvs_mem(const kube_kvs *kvs) {
        if (kvs->n == 0) return 0;
        size_t sz = kvs->n * sizeof(kube_kv) + MEMSIZE_OVERHEAD;
        for (size_t i = 0; i < kvs->n; i++)
                sz += memsize_str(kvs->items[i].key) + memsize_str(kvs->items[i].value);
        return sz;
}

size_t kube_meta_core_mem(const kube_meta_core *m) {
        if (!m) return 0;
        return memsize_str(m->namespace) + memsize_str(m->name) + memsize_str(m->resource_version) +
               kvs_mem(&m->labels) + kvs_mem(&m->annotations);
}

size_t kube_meta_mem(const kube_meta *m) {
        if (!m) return 0;
        size_t sz = kube_meta_core_mem(&m->core) + memsize_str(m->uid);
        if (m->n_owners > 0) {
                sz += m->n_owners * sizeof(kube_owner_ref) + MEMSIZE_OVERHEAD;
                for (size_t i = 0; i < m->n_owners; i++)
                        sz += memsize_str(m->owners[i].api_version) +
                              memsize_str(m->owners[i].kind) + memsize_str(m->owners[i].name) +
                              memsize_str(m->owners[i].uid);
        }
        return sz + memsize_strv(m->finalizers, m->n_finalizers);
}

char *kube_meta_key_(const kube_meta_core *m) {
        if (!m || !m->name) return NULL;
        char *k = NULL;
        if (m->namespace) {
                if (asprintf(&k, "%s/%s", m->namespace, m->name) < 0) return NULL;
                return k;
        }
        return strdup(m->name);
}

const char *kube_meta_label_(const kube_meta_core *m, const char *key) {
        return m ? kube_kvs_get(&m->labels, key) : NULL;
}

const char *kube_meta_annotation_(const kube_meta_core *m, const char *key) {
        return m ? kube_kvs_get(&m->annotations, key) : NULL;
}

bool kube_meta_has_finalizer(const kube_meta *m, const char *finalizer) {
        if (!m || !finalizer) return false;
        for (size_t i = 0; i < m->n_finalizers; i++)
                if (streq(m->finalizers[i], finalizer)) return true;
        return false;
}

const kube_owner_ref *kube_meta_controller_ref(const kube_meta *m) {
        if (!m) return NULL;
        for (size_t i = 0; i < m->n_owners; i++)
                if (m->owners[i].controller) return &m->owners[i];
        return NULL;
}
