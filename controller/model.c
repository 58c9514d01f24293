/* SPDX-License-Identifier: Apache-2.0 */
#include "model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "names.h"
#include "util/base64.h"
#include "util/hash.h"
#include "util/hashmap.h"
#include "util/keytab.h"
#include "util/jsonutil.h"
#include "util/macro.h"
#include "util/memsize.h"
#include "util/strbuf.h"
#include "util/strv.h"
#include "util/timefmt.h"

/* ---- small helpers ----------------------------------------------------- */

static void wipe(void *p, size_t n) {
        if (p && n) explicit_bzero(p, n);
}

static bool policy_key_ok(const char *k) {
        const char *slash = k ? strchr(k, '/') : NULL;
        if (!slash || slash - k > 63) return false;
        char ns[64];
        memcpy(ns, k, (size_t)(slash - k));
        ns[slash - k] = 0;
        return names_is_dns1123_label(ns) && names_is_dns1123_subdomain(slash + 1);
}

/* ---- keyed hash ------------------------------------------------------------ */

uint64_t model_keyed_hash(const void *data, size_t len) {
        return hash_keyed(data, len);
}

/* ---- the link record ------------------------------------------------------ */

void model_links_done(model_links *l) {
        if (!l) return;
        for (size_t i = 0; i < l->n; i++) {
                free(l->items[i].policy);
                free(l->items[i].secret);
        }
        free(l->items);
        *l = (model_links){0};
}

static int link_cmp(const char *pa, const char *sa, const char *pb, const char *sb) {
        int c = strcmp(pa, pb);
        return c ? c : strcmp(sa, sb);
}

/* Index of (policy, secret), or -(insertion point)-1. */
static ssize_t links_find(const model_links *l, const char *policy, const char *secret) {
        size_t lo = 0, hi = l->n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = link_cmp(l->items[mid].policy, l->items[mid].secret, policy, secret);
                if (c == 0) return (ssize_t)mid;
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return -(ssize_t)lo - 1;
}

unsigned model_links_get(const model_links *l, const char *policy, const char *secret) {
        if (!l || !policy || !secret) return 0;
        ssize_t i = links_find(l, policy, secret);
        return i >= 0 ? l->items[i].for_mask : 0;
}

unsigned model_links_get_others(const model_links *l, const char *policy, const char *secret) {
        if (!l || !secret) return 0;
        unsigned m = 0;
        for (size_t i = 0; i < l->n; i++)
                if (streq(l->items[i].secret, secret) && !streq_ptr(l->items[i].policy, policy))
                        m |= l->items[i].for_mask;
        return m;
}

bool model_links_mentions(const model_links *l, const char *policy) {
        if (!l || !policy) return false;
        for (size_t i = 0; i < l->n; i++)
                if (streq(l->items[i].policy, policy)) return true;
        return false;
}

/* Does not check the names: parse and set do, each in their way. */
static int links_put(model_links *l, size_t *cap, const char *policy, const char *secret,
                     unsigned mask) {
        ssize_t i = links_find(l, policy, secret);
        if (i >= 0) {
                if (mask == 0) {
                        free(l->items[i].policy);
                        free(l->items[i].secret);
                        memmove(l->items + i, l->items + i + 1,
                                (l->n - (size_t)i - 1) * sizeof(model_link));
                        l->n--;
                } else {
                        l->items[i].for_mask = mask;
                }
                return 0;
        }
        if (mask == 0) return 0;
        if (l->n >= MODEL_LINKS_MAX) return -E2BIG;
        size_t at = (size_t)(-i - 1);
        size_t c = *cap ? *cap : l->n;
        if (GROW(l->items, c, l->n + 1) < 0) return -ENOMEM;
        *cap = c;
        model_link e = {strdup(policy), strdup(secret), mask};
        if (!e.policy || !e.secret) {
                free(e.policy);
                free(e.secret);
                return -ENOMEM;
        }
        memmove(l->items + at + 1, l->items + at, (l->n - at) * sizeof(model_link));
        l->items[at] = e;
        l->n++;
        return 0;
}

int model_links_set(model_links *l, const char *policy, const char *secret, unsigned mask) {
        if (!l || !policy_key_ok(policy) || !names_is_dns1123_subdomain(secret)) return -EINVAL;
        if (mask & ~(unsigned)(POLICY_FOR_PULL | POLICY_FOR_MOUNT)) return -EINVAL;
        size_t cap = 0; /* unknown: GROW() from n reallocates, which is fine */
        return links_put(l, &cap, policy, secret, mask);
}

static int parse_for_list(json_object *f, unsigned *ret) {
        if (!f || !json_object_is_type(f, json_type_array)) return -EINVAL;
        size_t n = json_object_array_length(f);
        if (n == 0 || n > 2) return -EINVAL;
        unsigned m = 0;
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(f, i);
                if (!json_object_is_type(e, json_type_string)) return -EINVAL;
                const char *s = json_object_get_string(e);
                unsigned bit = streq(s, "pull")    ? POLICY_FOR_PULL
                               : streq(s, "mount") ? POLICY_FOR_MOUNT
                                                   : 0;
                if (!bit || (m & bit)) return -EINVAL;
                m |= bit;
        }
        *ret = m;
        return 0;
}

/* Checks the common envelope {"v":1,"<list>":[...]} and returns the list. */
static int record_open(const char *text, const char *list, json_object **ret_root,
                       json_object **ret_list) {
        size_t len = strlen(text);
        if (len > MODEL_LINKS_TEXT_MAX) return -E2BIG;
        json_object *root = jsonutil_parse(text, len, 8);
        if (!root) return -EINVAL;
        json_object *v = jsonutil_member(root, "v"), *l = jsonutil_member(root, list);
        if (!json_object_is_type(root, json_type_object) || !v ||
            !json_object_is_type(v, json_type_int) || json_object_get_int64(v) != 1 || !l ||
            !json_object_is_type(l, json_type_array)) {
                json_object_put(root);
                return -EINVAL;
        }
        *ret_root = root;
        *ret_list = l;
        return 0;
}

int model_links_parse(const char *text, model_links *ret) {
        if (!ret) return -EINVAL;
        if (!text) {
                *ret = (model_links){0};
                return 0;
        }
        json_object *root = NULL, *arr = NULL;
        int r = record_open(text, "links", &root, &arr);
        if (r < 0) return r;
        model_links l = {0};
        size_t cap = 0, n = json_object_array_length(arr);
        r = n > MODEL_LINKS_MAX ? -E2BIG : 0;
        for (size_t i = 0; r == 0 && i < n; i++) {
                json_object *e = json_object_array_get_idx(arr, i);
                if (!json_object_is_type(e, json_type_object) ||
                    json_object_object_length(e) != 3) {
                        r = -EINVAL;
                        break;
                }
                const char *p = jsonutil_member_str(e, "policy"),
                           *s = jsonutil_member_str(e, "secret");
                unsigned m = 0;
                if (!policy_key_ok(p) || !names_is_dns1123_subdomain(s) ||
                    parse_for_list(jsonutil_member(e, "for"), &m) < 0) {
                        r = -EINVAL;
                        break;
                }
                /* the same pair twice: the union, as both claims were made */
                r = links_put(&l, &cap, p, s, m | model_links_get(&l, p, s));
        }
        json_object_put(root);
        if (r < 0) {
                model_links_done(&l);
                return r;
        }
        *ret = l;
        return 0;
}

/* Names in records are checked DNS names: nothing in them needs JSON escaping. */
int model_links_serialize(const model_links *l, char **ret) {
        if (!l || !ret) return -EINVAL;
        if (l->n == 0) {
                *ret = NULL;
                return 0;
        }
        strbuf b = {0};
        strbuf_add(&b, "{\"v\":1,\"links\":[");
        for (size_t i = 0; i < l->n; i++) {
                const model_link *e = &l->items[i];
                strbuf_add(&b, i ? ",{\"policy\":\"" : "{\"policy\":\"");
                strbuf_add(&b, e->policy);
                strbuf_add(&b, "\",\"secret\":\"");
                strbuf_add(&b, e->secret);
                strbuf_add(&b, "\",\"for\":[");
                if (e->for_mask & POLICY_FOR_PULL) strbuf_add(&b, "\"pull\"");
                if ((e->for_mask & POLICY_FOR_PULL) && (e->for_mask & POLICY_FOR_MOUNT))
                        strbuf_add(&b, ",");
                if (e->for_mask & POLICY_FOR_MOUNT) strbuf_add(&b, "\"mount\"");
                strbuf_add(&b, "]}");
        }
        strbuf_add(&b, "]}");
        return strbuf_finish(&b, ret, NULL);
}

int model_links_copy(const model_links *src, model_links *ret) {
        if (!src || !ret) return -EINVAL;
        model_links l = {0};
        if (src->n) {
                l.items = calloc(src->n, sizeof(model_link));
                if (!l.items) return -ENOMEM;
        }
        for (size_t i = 0; i < src->n; i++) {
                l.items[i].policy = strdup(src->items[i].policy);
                l.items[i].secret = strdup(src->items[i].secret);
                l.items[i].for_mask = src->items[i].for_mask;
                l.n++;
                if (!l.items[i].policy || !l.items[i].secret) {
                        model_links_done(&l);
                        return -ENOMEM;
                }
        }
        *ret = l;
        return 0;
}

/* ---- the merge record ------------------------------------------------------ */

void model_merged_done(model_merged *m) {
        if (!m) return;
        for (size_t i = 0; i < m->n; i++) {
                free(m->items[i].policy);
                free(m->items[i].registry);
        }
        free(m->items);
        *m = (model_merged){0};
}

static ssize_t merged_find(const model_merged *m, const char *policy, const char *registry) {
        size_t lo = 0, hi = m->n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = link_cmp(m->items[mid].policy, m->items[mid].registry, policy, registry);
                if (c == 0) return (ssize_t)mid;
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return -(ssize_t)lo - 1;
}

/* Registry keys go into JSON unescaped: allow only what host[:port][/path] needs. */
static bool registry_ok(const char *r) {
        if (!r || !*r || strlen(r) > MODEL_REGISTRY_MAX) return false;
        for (const char *p = r; *p; p++) {
                unsigned char c = (unsigned char)*p;
                if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\') return false;
        }
        return true;
}

const char *model_merged_owner(const model_merged *m, const char *registry) {
        if (!m || !registry) return NULL;
        for (size_t i = 0; i < m->n; i++)
                if (streq(m->items[i].registry, registry)) return m->items[i].policy;
        return NULL;
}

int model_merged_set(model_merged *m, const char *policy, const char *registry, bool add) {
        if (!m || !policy_key_ok(policy) || !registry_ok(registry)) return -EINVAL;
        ssize_t i = merged_find(m, policy, registry);
        if (i >= 0) {
                if (!add) {
                        free(m->items[i].policy);
                        free(m->items[i].registry);
                        memmove(m->items + i, m->items + i + 1,
                                (m->n - (size_t)i - 1) * sizeof(model_merged_entry));
                        m->n--;
                }
                return 0;
        }
        if (!add) return 0;
        if (m->n >= MODEL_MERGED_MAX) return -E2BIG;
        size_t at = (size_t)(-i - 1), cap = m->n;
        if (GROW(m->items, cap, m->n + 1) < 0) return -ENOMEM;
        model_merged_entry e = {strdup(policy), strdup(registry)};
        if (!e.policy || !e.registry) {
                free(e.policy);
                free(e.registry);
                return -ENOMEM;
        }
        memmove(m->items + at + 1, m->items + at, (m->n - at) * sizeof(model_merged_entry));
        m->items[at] = e;
        m->n++;
        return 0;
}

int model_merged_parse(const char *text, model_merged *ret) {
        if (!ret) return -EINVAL;
        if (!text) {
                *ret = (model_merged){0};
                return 0;
        }
        json_object *root = NULL, *arr = NULL;
        int r = record_open(text, "entries", &root, &arr);
        if (r < 0) return r;
        model_merged m = {0};
        size_t n = json_object_array_length(arr);
        r = n > MODEL_MERGED_MAX ? -E2BIG : 0;
        for (size_t i = 0; r == 0 && i < n; i++) {
                json_object *e = json_object_array_get_idx(arr, i);
                if (!json_object_is_type(e, json_type_object) ||
                    json_object_object_length(e) != 2) {
                        r = -EINVAL;
                        break;
                }
                const char *p = jsonutil_member_str(e, "policy"),
                           *g = jsonutil_member_str(e, "registry");
                if (!policy_key_ok(p) || !registry_ok(g)) {
                        r = -EINVAL;
                        break;
                }
                /* one owner per registry key: two would make removal ambiguous */
                const char *o = model_merged_owner(&m, g);
                if (o && !streq(o, p)) {
                        r = -EINVAL;
                        break;
                }
                r = model_merged_set(&m, p, g, true);
        }
        json_object_put(root);
        if (r < 0) {
                model_merged_done(&m);
                return r;
        }
        *ret = m;
        return 0;
}

int model_merged_serialize(const model_merged *m, char **ret) {
        if (!m || !ret) return -EINVAL;
        if (m->n == 0) {
                *ret = NULL;
                return 0;
        }
        strbuf b = {0};
        strbuf_add(&b, "{\"v\":1,\"entries\":[");
        for (size_t i = 0; i < m->n; i++) {
                strbuf_add(&b, i ? ",{\"policy\":\"" : "{\"policy\":\"");
                strbuf_add(&b, m->items[i].policy);
                strbuf_add(&b, "\",\"registry\":\"");
                strbuf_add(&b, m->items[i].registry);
                strbuf_add(&b, "\"}");
        }
        strbuf_add(&b, "]}");
        return strbuf_finish(&b, ret, NULL);
}

int model_merged_copy(const model_merged *src, model_merged *ret) {
        if (!src || !ret) return -EINVAL;
        model_merged m = {0};
        for (size_t i = 0; i < src->n; i++) {
                int r = model_merged_set(&m, src->items[i].policy, src->items[i].registry, true);
                if (r < 0) {
                        model_merged_done(&m);
                        return r;
                }
        }
        *ret = m;
        return 0;
}

/* ---- interned namespace names ------------------------------------------------
 *
 * One copy of each namespace's name, shared by the Namespace object and every
 * cached object in that namespace: with thousands of namespaces of a few
 * service accounts each, a name per object is a large part of the cache. The
 * controller's caches live on one thread (the event loop); so does this table.
 */

typedef struct interned {
        uint32_t refs;
        char s[];
} interned;

static keytab *intern_table; /* interned blocks by their string; NULL when empty */

static interned *intern_block(const char *s) {
        return (interned *)(void *)((char *)s - offsetof(interned, s));
}

/* A reference to the shared copy of s (made on first use); NULL on ENOMEM. */
static const char *intern_get(const char *s) {
        if (!intern_table && keytab_new(offsetof(interned, s), &intern_table) < 0) return NULL;
        interned *b = keytab_get(intern_table, s);
        if (b) {
                b->refs++;
                return b->s;
        }
        size_t n = strlen(s);
        b = malloc(sizeof(*b) + n + 1);
        if (!b) return NULL;
        b->refs = 1;
        memcpy(b->s, s, n + 1);
        if (keytab_put(intern_table, b, NULL) < 0) {
                free(b);
                return NULL;
        }
        return b->s;
}

/* Whether s is the table's copy (not merely an equal string someone else owns). */
static bool intern_owns(const char *s) {
        interned *b = s && intern_table ? keytab_get(intern_table, s) : NULL;
        return b && b->s == s;
}

/* Drops one reference taken by intern_get(); a string the table does not own is freed. */
static void intern_put(const char *s) {
        if (!s) return;
        if (!intern_owns(s)) {
                free((char *)s);
                return;
        }
        interned *b = intern_block(s);
        if (--b->refs > 0) return;
        keytab_remove(intern_table, b->s);
        free(b);
        if (keytab_size(intern_table) == 0) intern_table = keytab_free(intern_table);
}

size_t model_intern_count(void) {
        return keytab_size(intern_table);
}

size_t model_intern_mem(void) {
        size_t m = memsize_block(intern_table) + keytab_mem(intern_table);
        size_t st = 0;
        void *v;
        while (keytab_iterate(intern_table, &st, &v)) m += memsize_block(v);
        return m;
}

/* ---- packing: one block per object ------------------------------------------
 *
 * A cached Namespace or ServiceAccount is one allocation: its struct, then its
 * arrays (label and annotation items, the account's name lists), then their
 * strings. Sizes are computed first (pack_need()), then the block is filled
 * (pack_str(), pack_kvs()); nothing in it is freed on its own.
 */

/* Lists up to this long share equal names (OpenShift's dockercfg secret is in both lists). */
#define PACK_DEDUP_MAX 16

/*
 * Label keys that nearly every object carries, kept as these static strings instead of a
 * copy per object: Kubernetes labels every namespace with its own name.
 */
static const char *const common_keys[] = {"kubernetes.io/metadata.name"};

typedef struct packer {
        char *p; /* next free byte of the string area */
        const char *done[2 * PACK_DEDUP_MAX + 3];
        size_t n_done;
} packer;

static size_t pack_need(const char *s) {
        return s ? strlen(s) + 1 : 0;
}

/* Copies s into the string area, or finds an equal string copied before. */
static char *pack_str(packer *k, const char *s, bool dedup) {
        if (!s) return NULL;
        if (dedup)
                for (size_t i = 0; i < k->n_done; i++)
                        if (streq(k->done[i], s)) return (char *)k->done[i];
        size_t l = strlen(s) + 1;
        char *d = memcpy(k->p, s, l);
        k->p += l;
        if (dedup && k->n_done < ARRAY_SIZE(k->done)) k->done[k->n_done++] = d;
        return d;
}

static const char *common_key(const char *key) {
        for (size_t i = 0; i < ARRAY_SIZE(common_keys); i++)
                if (streq(key, common_keys[i])) return common_keys[i];
        return NULL;
}

/* The string bytes pack_kvs() copies for kvs (a value equal to same is not copied). */
static size_t kvs_need(const kube_kvs *kvs, const char *same) {
        size_t n = 0;
        for (size_t i = 0; i < kvs->n; i++) {
                if (!common_key(kvs->items[i].key)) n += pack_need(kvs->items[i].key);
                if (!streq_ptr(kvs->items[i].value, same)) n += pack_need(kvs->items[i].value);
        }
        return n;
}

/*
 * Copies kvs into items (room for kvs->n) and the string area; a value equal to same
 * (the interned name, which kubernetes.io/metadata.name's always is) points at same.
 */
static kube_kvs pack_kvs(packer *k, kube_kv *items, const kube_kvs *kvs, const char *same) {
        for (size_t i = 0; i < kvs->n; i++) {
                const char *ck = common_key(kvs->items[i].key);
                items[i].key = ck ? (char *)ck : pack_str(k, kvs->items[i].key, false);
                items[i].value = streq_ptr(kvs->items[i].value, same)
                                     ? (char *)same
                                     : pack_str(k, kvs->items[i].value, false);
        }
        return (kube_kvs){.items = kvs->n ? items : NULL, .n = kvs->n};
}

/* ---- Namespace -------------------------------------------------------------- */

static const char *const keep_none[] = {NULL};

void model_namespace_free(model_namespace *ns) {
        if (!ns) return;
        intern_put(ns->meta.name);
        free(ns);
}

int model_namespace_decode(json_object *obj, model_namespace **ret) {
        if (!ret) return -EINVAL;
        kube_meta m = {};
        kube_meta_decode_opts o = {.annotation_keep = keep_none};
        int r = kube_meta_decode_full(obj, &o, &m);
        if (r < 0) return r;
        const char *phase = jsonutil_member_str(jsonutil_member(obj, "status"), "phase");
        const char *name = intern_get(m.name);
        model_namespace *ns = NULL;
        if (name)
                ns = malloc(sizeof(*ns) + m.labels.n * sizeof(kube_kv) + kvs_need(&m.labels, name));
        if (!ns) {
                intern_put(name);
                kube_meta_done(&m);
                return -ENOMEM;
        }
        /* Namespaces are cluster-scoped: a metadata.namespace (hostile input) means nothing.
         * Their resourceVersion is never written back: only the name, labels and phase. */
        *ns = (model_namespace){
            .meta = {.name = (char *)name, .deleting = m.deleting},
            .terminating = m.deleting || streq_ptr(phase, "Terminating"),
        };
        kube_kv *items = (kube_kv *)(void *)(ns + 1);
        packer k = {.p = (char *)(items + m.labels.n)};
        ns->meta.labels = pack_kvs(&k, items, &m.labels, name);
        kube_meta_done(&m);
        *ret = ns;
        return 0;
}

/* ---- ServiceAccount ---------------------------------------------------------- */

static const char *const keep_sa[] = {NAMES_ANNOTATION_LINKS, NAMES_ANNOTATION_INTERNAL_REGISTRY,
                                      NULL};

void model_sa_free(model_sa *sa) {
        if (!sa) return;
        intern_put(sa->meta.namespace);
        model_links_done(&sa->links);
        free(sa);
}

/* What model_sa_decode() reads before packing it; every part its own allocation. */
typedef struct sa_parts {
        kube_meta m;
        char **secrets, **pull_secrets; /* decode_refs(): one block each */
        uint32_t n_secrets, n_pull_secrets;
        char *ref;
} sa_parts;

static void sa_parts_done(sa_parts *d) {
        kube_meta_done(&d->m);
        free(d->secrets);
        free(d->pull_secrets);
        free(d->ref);
}

/*
 * One allocation per account: the struct, both name arrays, the label and annotation
 * items, then the strings (name, resourceVersion, the internal-registry ref and the listed
 * names, equal ones once; labels, annotations). The namespace is the interned ns.
 * 0 or -ENOMEM.
 */
static int sa_pack(const sa_parts *d, const char *ns, model_sa **ret) {
        const kube_meta *m = &d->m;
        bool dedup = d->n_secrets <= PACK_DEDUP_MAX && d->n_pull_secrets <= PACK_DEDUP_MAX;
        size_t text = pack_need(m->name) + pack_need(m->resource_version) + pack_need(d->ref) +
                      kvs_need(&m->labels, NULL) + kvs_need(&m->annotations, NULL);
        for (size_t i = 0; i < d->n_secrets; i++) text += pack_need(d->secrets[i]);
        for (size_t i = 0; i < d->n_pull_secrets; i++) text += pack_need(d->pull_secrets[i]);
        size_t arrays = (d->n_secrets + d->n_pull_secrets) * sizeof(char *) +
                        (m->labels.n + m->annotations.n) * sizeof(kube_kv);
        model_sa *sa = malloc(sizeof(*sa) + arrays + text);
        if (!sa) return -ENOMEM;
        *sa = (model_sa){.meta = {.namespace = (char *)ns, .deleting = m->deleting}};
        char **v = (char **)(void *)(sa + 1);
        kube_kv *items = (kube_kv *)(void *)(v + d->n_secrets + d->n_pull_secrets);
        packer k = {.p = (char *)(items + m->labels.n + m->annotations.n)};
        sa->meta.name = pack_str(&k, m->name, false);
        sa->meta.resource_version = pack_str(&k, m->resource_version, false);
        sa->internal_registry_ref = pack_str(&k, d->ref, dedup);
        sa->secrets = d->n_secrets ? v : NULL;
        for (size_t i = 0; i < d->n_secrets; i++) v[i] = pack_str(&k, d->secrets[i], dedup);
        v += d->n_secrets;
        sa->pull_secrets = d->n_pull_secrets ? v : NULL;
        for (size_t i = 0; i < d->n_pull_secrets; i++)
                v[i] = pack_str(&k, d->pull_secrets[i], dedup);
        sa->n_secrets = (uint16_t)d->n_secrets; /* at most MODEL_SA_LIST_MAX */
        sa->n_pull_secrets = (uint16_t)d->n_pull_secrets;
        sa->meta.labels = pack_kvs(&k, items, &m->labels, NULL);
        sa->meta.annotations = pack_kvs(&k, items + m->labels.n, &m->annotations, NULL);
        *ret = sa;
        return 0;
}

/*
 * [{name: x}, ...] → names, the array and its strings in ONE block (freed by free());
 * entries without a string name are skipped. *plain is cleared when an entry is more than
 * {"name": "<non-empty>"}: then the names cannot rebuild the list.
 */
static int decode_refs(json_object *arr, char ***ret, uint32_t *ret_n, bool *plain) {
        *ret = NULL;
        *ret_n = 0;
        if (!arr) return 0;
        if (!json_object_is_type(arr, json_type_array)) return -EINVAL;
        size_t n = json_object_array_length(arr);
        if (n > MODEL_SA_LIST_MAX) return -E2BIG;
        if (n == 0) return 0;
        size_t got = 0, text = 0;
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(arr, i);
                const char *name = jsonutil_member_str(e, "name");
                if (!name || !*name || json_object_object_length(e) != 1) *plain = false;
                if (!name || !*name) continue;
                size_t l = strlen(name);
                if (l > KUBE_META_NAME_MAX) return -E2BIG;
                text += l + 1;
                got++;
        }
        if (got == 0) return 0;
        char **v = malloc(got * sizeof(char *) + text);
        if (!v) return -ENOMEM;
        char *p = (char *)(v + got);
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                const char *name = jsonutil_member_str(json_object_array_get_idx(arr, i), "name");
                if (!name || !*name) continue;
                size_t l = strlen(name) + 1;
                memcpy(p, name, l);
                v[k++] = p;
                p += l;
        }
        *ret = v;
        *ret_n = (uint32_t)got; /* got <= n <= MODEL_SA_LIST_MAX */
        return 0;
}

/* Takes the value of annotation key out of kvs into *ret (NULL when absent). */
static void kvs_take(kube_kvs *kvs, const char *key, char **ret) {
        *ret = NULL;
        for (size_t i = 0; i < kvs->n; i++) {
                if (!streq(kvs->items[i].key, key)) continue;
                *ret = kvs->items[i].value;
                free(kvs->items[i].key);
                memmove(&kvs->items[i], &kvs->items[i + 1], (kvs->n - i - 1) * sizeof(kube_kv));
                if (--kvs->n == 0) {
                        free(kvs->items);
                        kvs->items = NULL;
                }
                return;
        }
}

static long long decode_created(json_object *obj) {
        const char *ts = jsonutil_member_str(jsonutil_member(obj, "metadata"), "creationTimestamp");
        struct timespec t;
        if (!ts || timefmt_parse_rfc3339(ts, &t) < 0) return 0;
        return (long long)t.tv_sec;
}

int model_sa_decode(json_object *obj, model_sa **ret) {
        if (!ret) return -EINVAL;
        sa_parts d = {};
        kube_meta_decode_opts o = {.annotation_keep = keep_sa};
        int r = kube_meta_decode_full(obj, &o, &d.m);
        if (r < 0) return r;
        bool plain = true;
        r = decode_refs(jsonutil_member(obj, "secrets"), &d.secrets, &d.n_secrets, &plain);
        if (r >= 0)
                r = decode_refs(jsonutil_member(obj, "imagePullSecrets"), &d.pull_secrets,
                                &d.n_pull_secrets, &plain);
        if (r < 0) {
                sa_parts_done(&d);
                return r;
        }
        kvs_take(&d.m.annotations, NAMES_ANNOTATION_INTERNAL_REGISTRY, &d.ref);
        model_links links = {};
        int links_error =
            model_links_parse(kube_kvs_get(&d.m.annotations, NAMES_ANNOTATION_LINKS), &links);
        if (links_error == -ENOMEM) {
                sa_parts_done(&d);
                return links_error;
        }
        const char *ns = NULL;
        if (d.m.namespace && !(ns = intern_get(d.m.namespace))) {
                model_links_done(&links);
                sa_parts_done(&d);
                return -ENOMEM;
        }
        model_sa *sa = NULL;
        r = sa_pack(&d, ns, &sa);
        sa_parts_done(&d);
        if (r < 0) {
                intern_put(ns);
                model_links_done(&links);
                return r;
        }
        sa->created = decode_created(obj);
        sa->links = links;
        sa->links_error = (int16_t)(links_error < 0 ? links_error : 0);
        sa->refs_plain = plain;
        *ret = sa;
        return 0;
}

const char *model_sa_internal_registry_ref(const model_sa *sa) {
        return sa ? sa->internal_registry_ref : NULL;
}

bool model_sa_has_secret(const model_sa *sa, const char *name) {
        return sa && name && strv_contains(sa->secrets, sa->n_secrets, name);
}

bool model_sa_has_pull_secret(const model_sa *sa, const char *name) {
        return sa && name && strv_contains(sa->pull_secrets, sa->n_pull_secrets, name);
}

bool model_sa_provisioned(const model_sa *sa) {
        if (!sa || !sa->meta.name) return false;
        const char *ref = model_sa_internal_registry_ref(sa);
        if (ref && *ref && model_sa_has_pull_secret(sa, ref)) return true;
        char prefix[NAMES_DOCKERCFG_PREFIX_MAX + 1];
        names_dockercfg_prefix(sa->meta.name, prefix);
        size_t n = strlen(prefix);
        for (size_t i = 0; i < sa->n_secrets; i++) {
                const char *s = sa->secrets[i];
                if (strncmp(s, prefix, n) == 0 && model_sa_has_pull_secret(sa, s)) return true;
        }
        return false;
}

/* ---- Secret ------------------------------------------------------------------- */

static const char *const keep_pullpolicy[] = {"pullpolicy.io/", NULL};

const char *model_secret_validity_to_string(model_secret_validity v) {
        switch (v) {
        case MODEL_SECRET_UNKNOWN:
                return "the payload has not been read yet";
        case MODEL_SECRET_VALID:
                return "valid";
        case MODEL_SECRET_WRONG_TYPE:
                return "the type is neither kubernetes.io/dockerconfigjson nor "
                       "kubernetes.io/dockercfg";
        case MODEL_SECRET_NO_DATA:
                return "the data key of its type (.dockerconfigjson or .dockercfg) is missing";
        case MODEL_SECRET_BAD_BASE64:
                return "the payload is not valid base64";
        case MODEL_SECRET_BAD_JSON:
                return "the payload is not a JSON object";
        case MODEL_SECRET_NO_AUTHS:
                return "the payload has no \"auths\" object";
        case MODEL_SECRET_BAD_ENTRY:
                return "a registry entry of the payload is not an object";
        case MODEL_SECRET_TOO_BIG:
                return "the payload is over the controller's size limits";
        }
        return "unknown";
}

void model_secret_free(model_secret *s) {
        if (!s) return;
        kube_meta_done(&s->meta);
        free(s->type);
        for (size_t i = 0; i < s->n_registries; i++) free(s->registries[i].host);
        free(s->registries);
        model_merged_done(&s->merged);
        free(s);
}

/*
 * Standard base64 with padding (what the apiserver writes). 0, -EINVAL, -E2BIG, -ENOMEM.
 * The size limit counts whole groups, padding included, and is checked before the
 * characters are.
 */
static int b64_decode(const char *in, size_t len, char **ret, size_t *ret_len) {
        if (len % 4 != 0) return -EINVAL;
        if (len / 4 * 3 > MODEL_SECRET_PAYLOAD_MAX) return -E2BIG;
        void *out;
        int r = base64_decode(in, len, 0, MODEL_SECRET_PAYLOAD_MAX, &out, ret_len);
        if (r < 0) return r;
        *ret = out;
        return 0;
}

/*
 * Decodes and checks the payload of a whole Secret. On VALID, *ret_auths (if
 * non-NULL) is a new reference to the registry map; the rest of the payload is
 * released. Returns 0 (then *ret_validity says how it went) or -ENOMEM.
 */
static int decode_payload(json_object *obj, const char *type, json_object **ret_auths,
                          model_secret_validity *ret_validity) {
        const char *key;
        bool cfgjson = streq_ptr(type, MODEL_SECRET_TYPE_DOCKERCONFIGJSON);
        if (cfgjson)
                key = ".dockerconfigjson";
        else if (streq_ptr(type, MODEL_SECRET_TYPE_DOCKERCFG))
                key = ".dockercfg";
        else {
                *ret_validity = MODEL_SECRET_WRONG_TYPE;
                return 0;
        }
        json_object *d = jsonutil_member(jsonutil_member(obj, "data"), key);
        if (!d || !json_object_is_type(d, json_type_string)) {
                *ret_validity = MODEL_SECRET_NO_DATA;
                return 0;
        }
        char *raw = NULL;
        size_t raw_len = 0;
        int r = b64_decode(json_object_get_string(d), (size_t)json_object_get_string_len(d), &raw,
                           &raw_len);
        if (r == -ENOMEM) return r;
        if (r < 0) {
                *ret_validity = r == -E2BIG ? MODEL_SECRET_TOO_BIG : MODEL_SECRET_BAD_BASE64;
                return 0;
        }
        json_object *root = jsonutil_parse(raw, raw_len, MODEL_JSON_DEPTH);
        base64_free_wiped(raw, raw_len);
        if (!root || !json_object_is_type(root, json_type_object)) {
                json_object_put(root);
                *ret_validity = MODEL_SECRET_BAD_JSON;
                return 0;
        }
        json_object *auths = cfgjson ? jsonutil_member(root, "auths") : root;
        model_secret_validity v = MODEL_SECRET_VALID;
        if (!auths || !json_object_is_type(auths, json_type_object)) {
                v = MODEL_SECRET_NO_AUTHS;
        } else if (json_object_object_length(auths) > MODEL_SECRET_REGISTRIES_MAX) {
                v = MODEL_SECRET_TOO_BIG;
        } else {
                json_object_object_foreach(auths, host, entry) {
                        if (!json_object_is_type(entry, json_type_object)) {
                                v = MODEL_SECRET_BAD_ENTRY;
                                break;
                        }
                        if (!registry_ok(host)) {
                                v = MODEL_SECRET_TOO_BIG;
                                break;
                        }
                }
        }
        if (v == MODEL_SECRET_VALID && ret_auths) *ret_auths = json_object_get(auths);
        json_object_put(root);
        *ret_validity = v;
        return 0;
}

int model_secret_payload_auths(json_object *secret, json_object **ret_auths,
                               model_secret_validity *ret_validity) {
        if (!secret || !ret_auths) return -EINVAL;
        model_secret_validity v;
        json_object *auths = NULL;
        int r = decode_payload(secret, jsonutil_member_str(secret, "type"), &auths, &v);
        if (r < 0) return r;
        if (ret_validity) *ret_validity = v;
        if (v != MODEL_SECRET_VALID) return -EINVAL;
        *ret_auths = auths;
        return 0;
}

static int cmp_registry(const void *a, const void *b) {
        return strcmp(((const model_registry *)a)->host, ((const model_registry *)b)->host);
}

static int registries_from(json_object *auths, model_secret *s) {
        size_t n = (size_t)json_object_object_length(auths);
        if (n == 0) return 0;
        s->registries = calloc(n, sizeof(model_registry));
        if (!s->registries) return -ENOMEM;
        json_object_object_foreach(auths, host, entry) {
                size_t len = 0;
                const char *txt = json_object_to_json_string_length(
                    entry, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
                if (!txt) return -ENOMEM;
                model_registry *g = &s->registries[s->n_registries];
                g->hash = model_keyed_hash(txt, len);
                /* json-c caches the serialization in the entry: do not leave it lying around */
                wipe((char *)txt, len);
                g->host = strdup(host);
                if (!g->host) return -ENOMEM;
                s->n_registries++;
        }
        qsort(s->registries, s->n_registries, sizeof(model_registry), cmp_registry);
        return 0;
}

/* Keyed hash of the type and every data key and value, in key order. */
static int content_hash(json_object *obj, const char *type, uint64_t *ret) {
        json_object *data = jsonutil_member(obj, "data");
        size_t n = data && json_object_is_type(data, json_type_object)
                       ? (size_t)json_object_object_length(data)
                       : 0;
        const char **keys = n ? calloc(n, sizeof(char *)) : NULL;
        if (n && !keys) return -ENOMEM;
        size_t k = 0, total = strlen(type ? type : "") + 1;
        if (n) {
                json_object_object_foreach(data, key, val) {
                        keys[k++] = key;
                        total += strlen(key) + 2 +
                                 (json_object_is_type(val, json_type_string)
                                      ? (size_t)json_object_get_string_len(val)
                                      : 0);
                }
                qsort(keys, k, sizeof(char *), strv_qsort_cmp);
        }
        char *buf = malloc(total + 1);
        if (!buf) {
                free(keys);
                return -ENOMEM;
        }
        size_t o = 0;
        const char *t = type ? type : "";
        memcpy(buf, t, strlen(t) + 1);
        o += strlen(t) + 1;
        for (size_t i = 0; i < k; i++) {
                json_object *val = jsonutil_member(data, keys[i]);
                size_t kl = strlen(keys[i]);
                memcpy(buf + o, keys[i], kl + 1);
                o += kl + 1;
                if (val && json_object_is_type(val, json_type_string)) {
                        size_t vl = (size_t)json_object_get_string_len(val);
                        memcpy(buf + o, json_object_get_string(val), vl);
                        o += vl;
                }
                buf[o++] = 0;
        }
        *ret = model_keyed_hash(buf, o);
        wipe(buf, total + 1);
        free(buf);
        free(keys);
        return 0;
}

bool model_secret_json_belongs_to_sa(json_object *secret) {
        if (!secret || !json_object_is_type(secret, json_type_object)) return true;
        json_object *meta = jsonutil_member(secret, "metadata");
        if (meta && !json_object_is_type(meta, json_type_object)) return true;
        json_object *type = jsonutil_member(secret, "type");
        if (type && json_object_is_type(type, json_type_string) &&
            streq(json_object_get_string(type), MODEL_SECRET_TYPE_SA_TOKEN))
                return true;
        json_object *ann = meta ? jsonutil_member(meta, "annotations") : NULL;
        if (ann && json_object_is_type(ann, json_type_object)) {
                json_object_object_foreach(ann, k, v) {
                        (void)v;
                        if (streq(k, "kubernetes.io/service-account.name") ||
                            strncmp(k, "openshift.io/internal-registry-",
                                    strlen("openshift.io/internal-registry-")) == 0)
                                return true;
                }
        }
        json_object *owners = meta ? jsonutil_member(meta, "ownerReferences") : NULL;
        if (owners && json_object_is_type(owners, json_type_array)) {
                size_t n = json_object_array_length(owners);
                for (size_t i = 0; i < n; i++) {
                        json_object *o = json_object_array_get_idx(owners, i);
                        if (!json_object_is_type(o, json_type_object)) return true;
                        if (streq_ptr(jsonutil_member_str(o, "kind"), "ServiceAccount"))
                                return true;
                }
        }
        return false;
}

static int secret_decode_common(json_object *obj, bool full, model_secret **ret) {
        if (!ret) return -EINVAL;
        model_secret *s = calloc(1, sizeof(*s));
        if (!s) return -ENOMEM;
        kube_meta_decode_opts o = {.annotation_keep = keep_pullpolicy};
        int r = kube_meta_decode_full(obj, &o, &s->meta);
        if (r < 0) {
                free(s);
                return r;
        }
        r = model_merged_parse(kube_meta_annotation(&s->meta, NAMES_ANNOTATION_MERGED), &s->merged);
        if (r == -ENOMEM) goto fail;
        s->merged_error = r < 0 ? r : 0;
        r = 0;
        s->sa_owned = model_secret_json_belongs_to_sa(obj);
        const char *type = jsonutil_member_str(obj, "type");
        if (full) {
                /* a Secret without type is Opaque, as the apiserver defaults it */
                s->type = strdup(type ? type : "Opaque");
                if (!s->type) {
                        r = -ENOMEM;
                        goto fail;
                }
                s->full = true;
                json_object *auths = NULL;
                r = decode_payload(obj, s->type, &auths, &s->validity);
                if (r < 0) goto fail;
                if (auths) {
                        r = registries_from(auths, s);
                        json_object_put(auths);
                        if (r < 0) goto fail;
                }
                r = content_hash(obj, s->type, &s->content_hash);
                if (r < 0) goto fail;
        } else {
                s->validity = MODEL_SECRET_UNKNOWN;
        }
        *ret = s;
        return 0;
fail:
        model_secret_free(s);
        return r;
}

int model_secret_decode(json_object *obj, model_secret **ret) {
        return secret_decode_common(obj, true, ret);
}

int model_secret_decode_meta(json_object *obj, model_secret **ret) {
        return secret_decode_common(obj, false, ret);
}

const model_registry *model_secret_registry(const model_secret *s, const char *host) {
        if (!s || !host) return NULL;
        model_registry key = {.host = (char *)host};
        return bsearch(&key, s->registries, s->n_registries, sizeof(model_registry), cmp_registry);
}

/* ---- RoleBinding ---------------------------------------------------------------- */

static void subject_done(model_subject *s) {
        free(s->kind);
        free(s->api_group);
        free(s->name);
        free(s->namespace);
}

void model_role_binding_free(model_role_binding *rb) {
        if (!rb) return;
        kube_meta_done(&rb->meta);
        free(rb->role_api_group);
        free(rb->role_kind);
        free(rb->role_name);
        for (size_t i = 0; i < rb->n_subjects; i++) subject_done(&rb->subjects[i]);
        free(rb->subjects);
        free(rb);
}

/* Copies a string member (NULL stays NULL); false on ENOMEM. */
static bool dup_member(json_object *obj, const char *key, char **ret) {
        const char *v = jsonutil_member_str(obj, key);
        *ret = v ? strdup(v) : NULL;
        return !v || *ret;
}

int model_role_binding_decode(json_object *obj, model_role_binding **ret) {
        if (!ret) return -EINVAL;
        model_role_binding *rb = calloc(1, sizeof(*rb));
        if (!rb) return -ENOMEM;
        kube_meta_decode_opts o = {.annotation_keep = keep_none};
        int r = kube_meta_decode_full(obj, &o, &rb->meta);
        if (r < 0) {
                free(rb);
                return r;
        }
        json_object *ref = jsonutil_member(obj, "roleRef");
        r = -ENOMEM;
        if (!dup_member(ref, "apiGroup", &rb->role_api_group) ||
            !dup_member(ref, "kind", &rb->role_kind) || !dup_member(ref, "name", &rb->role_name))
                goto fail;
        json_object *subj = jsonutil_member(obj, "subjects");
        if (subj) {
                r = -EINVAL;
                if (!json_object_is_type(subj, json_type_array)) goto fail;
                size_t n = json_object_array_length(subj);
                r = -E2BIG;
                if (n > MODEL_SUBJECTS_MAX) goto fail;
                r = -ENOMEM;
                if (n && !(rb->subjects = calloc(n, sizeof(model_subject)))) goto fail;
                for (size_t i = 0; i < n; i++) {
                        json_object *e = json_object_array_get_idx(subj, i);
                        model_subject *s = &rb->subjects[rb->n_subjects++];
                        if (!dup_member(e, "kind", &s->kind) ||
                            !dup_member(e, "apiGroup", &s->api_group) ||
                            !dup_member(e, "name", &s->name) ||
                            !dup_member(e, "namespace", &s->namespace))
                                goto fail;
                }
        }
        *ret = rb;
        return 0;
fail:
        model_role_binding_free(rb);
        return r;
}

/* ---- PullPolicy ----------------------------------------------------------------- */

static void problem_done(model_problem *p) {
        free(p->namespace);
        free(p->name);
        free(p->reason);
        free(p->message);
}

void model_condition_done(model_condition *c) {
        if (!c) return;
        free(c->status);
        free(c->reason);
        free(c->message);
        free(c->last_transition);
        *c = (model_condition){.observed_generation = -1};
}

int model_condition_copy(const model_condition *c, model_condition *ret) {
        if (!c || !ret) return -EINVAL;
        model_condition n = {.observed_generation = c->observed_generation};
        if ((c->status && !(n.status = strdup(c->status))) ||
            (c->reason && !(n.reason = strdup(c->reason))) ||
            (c->message && !(n.message = strdup(c->message))) ||
            (c->last_transition && !(n.last_transition = strdup(c->last_transition)))) {
                model_condition_done(&n);
                return -ENOMEM;
        }
        *ret = n;
        return 0;
}

static void status_done(model_policy_status *st) {
        free(st->ready_status);
        free(st->ready_reason);
        free(st->ready_message);
        free(st->ready_last_transition);
        free(st->dockercfg_form);
        model_condition_done(&st->credentials);
        for (size_t i = 0; i < st->n_problems; i++) problem_done(&st->problems[i]);
        free(st->problems);
}

void model_policy_free(model_policy *p) {
        if (!p) return;
        kube_meta_done(&p->meta);
        policy_spec_free(p->spec);
        free(p->spec_error);
        status_done(&p->status);
        free(p);
}

static long long member_int(json_object *obj, const char *key) {
        json_object *v = jsonutil_member(obj, key);
        if (!v || !json_object_is_type(v, json_type_int)) return -1;
        return (long long)json_object_get_int64(v);
}

static int decode_status(json_object *st, model_policy_status *ret) {
        model_policy_status s = {.observed_generation = -1,
                                 .ready_observed_generation = -1,
                                 .namespaces = -1,
                                 .role_bindings = -1,
                                 .linked = -1,
                                 .waiting = -1,
                                 .stale_pods = -1,
                                 .credentials.observed_generation = -1};
        *ret = s;
        if (!st || !json_object_is_type(st, json_type_object)) return 0;
        ret->observed_generation = member_int(st, "observedGeneration");
        ret->namespaces = member_int(st, "namespaces");
        ret->role_bindings = member_int(st, "roleBindings");
        ret->linked = member_int(st, "linkedServiceAccounts");
        ret->waiting = member_int(st, "waitingServiceAccounts");
        ret->stale_pods = member_int(st, "stalePods");
        if (!dup_member(st, "dockercfgForm", &ret->dockercfg_form)) return -ENOMEM;
        json_object *conds = jsonutil_member(st, "conditions");
        if (conds && json_object_is_type(conds, json_type_array)) {
                size_t n = json_object_array_length(conds);
                for (size_t i = 0; i < n; i++) {
                        json_object *c = json_object_array_get_idx(conds, i);
                        const char *type = jsonutil_member_str(c, "type");
                        if (streq_ptr(type, "CredentialsVerified") && !ret->has_credentials) {
                                model_condition *cv = &ret->credentials;
                                if (!dup_member(c, "status", &cv->status) ||
                                    !dup_member(c, "reason", &cv->reason) ||
                                    !dup_member(c, "message", &cv->message) ||
                                    !dup_member(c, "lastTransitionTime", &cv->last_transition))
                                        return -ENOMEM;
                                cv->observed_generation = member_int(c, "observedGeneration");
                                ret->has_credentials =
                                    cv->status && cv->reason && cv->last_transition;
                                continue;
                        }
                        if (ret->has_ready || !streq_ptr(type, "Ready")) continue;
                        if (!dup_member(c, "status", &ret->ready_status) ||
                            !dup_member(c, "reason", &ret->ready_reason) ||
                            !dup_member(c, "message", &ret->ready_message) ||
                            !dup_member(c, "lastTransitionTime", &ret->ready_last_transition))
                                return -ENOMEM;
                        ret->ready_observed_generation = member_int(c, "observedGeneration");
                        ret->has_ready = true;
                }
        }
        json_object *probs = jsonutil_member(st, "problems");
        if (probs && json_object_is_type(probs, json_type_array)) {
                size_t n = json_object_array_length(probs);
                if (n > MODEL_PROBLEMS_MAX) {
                        ret->problems_truncated = true;
                        n = MODEL_PROBLEMS_MAX;
                }
                if (n && !(ret->problems = calloc(n, sizeof(model_problem)))) return -ENOMEM;
                for (size_t i = 0; i < n; i++) {
                        json_object *e = json_object_array_get_idx(probs, i);
                        model_problem *p = &ret->problems[ret->n_problems++];
                        if (!dup_member(e, "namespace", &p->namespace) ||
                            !dup_member(e, "name", &p->name) ||
                            !dup_member(e, "reason", &p->reason) ||
                            !dup_member(e, "message", &p->message))
                                return -ENOMEM;
                }
        }
        return 0;
}

int model_policy_decode(json_object *obj, model_policy **ret) {
        if (!ret) return -EINVAL;
        model_policy *p = calloc(1, sizeof(*p));
        if (!p) return -ENOMEM;
        kube_meta_decode_opts o = {.annotation_keep = keep_none};
        int r = kube_meta_decode_full(obj, &o, &p->meta);
        if (r < 0) {
                free(p);
                return r;
        }
        char *err = NULL;
        json_object *spec = NULL;
        json_object_object_get_ex(obj, "spec", &spec);
        r = policy_spec_parse(spec, &p->spec, &err);
        if (r == -ENOMEM) goto fail;
        if (r < 0) {
                p->spec_error = err ? err : strdup("the spec is invalid");
                if (!p->spec_error) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        r = decode_status(jsonutil_member(obj, "status"), &p->status);
        if (r < 0) goto fail;
        *ret = p;
        return 0;
fail:
        model_policy_free(p);
        return r;
}

/* ---- store vtables ---------------------------------------------------------------- */

static const kube_meta_core *any_meta(const void *obj) {
        /* every model type starts with its kube_meta, or with a kube_meta_core, which is
         * kube_meta's first member */
        return (const kube_meta_core *)obj;
}

static size_t member_count(json_object *obj, const char *key, json_type type) {
        json_object *v = jsonutil_member(obj, key);
        if (!json_object_is_type(v, type)) return 0;
        return type == json_type_array ? json_object_array_length(v)
                                       : (size_t)json_object_object_length(v);
}

const char *model_refusal_reason(json_object *obj, int error) {
        if (error != -E2BIG) return "malformed";
        json_object *md = jsonutil_member(obj, "metadata");
        if (member_count(md, "finalizers", json_type_array) > KUBE_META_FINALIZERS_MAX)
                return "too_many_finalizers";
        if (member_count(md, "ownerReferences", json_type_array) > KUBE_META_OWNERS_MAX)
                return "too_many_owner_references";
        if (member_count(md, "labels", json_type_object) > KUBE_META_KVS_MAX)
                return "too_many_labels";
        if (member_count(md, "annotations", json_type_object) > KUBE_META_KVS_MAX)
                return "too_many_annotations";
        if (member_count(obj, "secrets", json_type_array) > MODEL_SA_LIST_MAX ||
            member_count(obj, "imagePullSecrets", json_type_array) > MODEL_SA_LIST_MAX)
                return "too_many_secret_references";
        return "over_limit";
}

#define DEFINE_VTABLE_FUNCS(type, decode_fn, free_fn)                                              \
        static int type##_vdecode(json_object *obj, void **ret) {                                  \
                type *x = NULL;                                                                    \
                int r = decode_fn(obj, &x);                                                        \
                if (r < 0) return r;                                                               \
                *ret = x;                                                                          \
                return 0;                                                                          \
        }                                                                                          \
        static void type##_vfree(void *obj) {                                                      \
                free_fn(obj);                                                                      \
        }

DEFINE_VTABLE_FUNCS(model_namespace, model_namespace_decode, model_namespace_free)
DEFINE_VTABLE_FUNCS(model_sa, model_sa_decode, model_sa_free)
DEFINE_VTABLE_FUNCS(model_secret, model_secret_decode, model_secret_free)
DEFINE_VTABLE_FUNCS(model_role_binding, model_role_binding_decode, model_role_binding_free)
DEFINE_VTABLE_FUNCS(model_policy, model_policy_decode, model_policy_free)

static int secret_meta_vdecode(json_object *obj, void **ret) {
        model_secret *x = NULL;
        int r = model_secret_decode_meta(obj, &x);
        if (r < 0) return r;
        *ret = x;
        return 0;
}

/* The interned name is the table's (model_intern_mem()), not the object's. */
static size_t namespace_mem(const void *obj) {
        return memsize_block(obj); /* packed: labels inside */
}

static size_t links_mem(const model_links *l) {
        size_t m = l->n ? l->n * sizeof(model_link) + MEMSIZE_OVERHEAD : 0;
        for (size_t i = 0; i < l->n; i++)
                m += memsize_str(l->items[i].policy) + memsize_str(l->items[i].secret);
        return m;
}

/* A packed account: its block (labels and annotations inside), plus its parsed links. */
static size_t sa_mem(const void *obj) {
        const model_sa *sa = obj;
        return memsize_block(sa) + links_mem(&sa->links);
}

static size_t secret_mem(const void *obj) {
        const model_secret *s = obj;
        size_t m = sizeof(*s) + MEMSIZE_OVERHEAD + kube_meta_mem(&s->meta) + memsize_str(s->type);
        if (s->n_registries) m += s->n_registries * sizeof(model_registry) + MEMSIZE_OVERHEAD;
        for (size_t i = 0; i < s->n_registries; i++) m += memsize_str(s->registries[i].host);
        if (s->merged.n) m += s->merged.n * sizeof(model_merged_entry) + MEMSIZE_OVERHEAD;
        for (size_t i = 0; i < s->merged.n; i++)
                m += memsize_str(s->merged.items[i].policy) +
                     memsize_str(s->merged.items[i].registry);
        return m;
}

static size_t role_binding_mem(const void *obj) {
        const model_role_binding *rb = obj;
        size_t m = sizeof(*rb) + MEMSIZE_OVERHEAD + kube_meta_mem(&rb->meta) +
                   memsize_str(rb->role_api_group) + memsize_str(rb->role_kind) +
                   memsize_str(rb->role_name);
        if (rb->n_subjects) m += rb->n_subjects * sizeof(model_subject) + MEMSIZE_OVERHEAD;
        for (size_t i = 0; i < rb->n_subjects; i++) {
                const model_subject *s = &rb->subjects[i];
                m += memsize_str(s->kind) + memsize_str(s->api_group) + memsize_str(s->name) +
                     memsize_str(s->namespace);
        }
        return m;
}

static size_t policy_mem(const void *obj) {
        const model_policy *p = obj;
        size_t m =
            sizeof(*p) + MEMSIZE_OVERHEAD + kube_meta_mem(&p->meta) + memsize_str(p->spec_error);
        if (p->spec) {
                const policy_spec *s = p->spec;
                m += sizeof(*s) + MEMSIZE_OVERHEAD + memsize_strv(s->namespaces, s->n_namespaces) +
                     memsize_strv(s->service_accounts, s->n_service_accounts) +
                     memsize_str(s->cluster_role);
                for (size_t i = 0; i < s->n_pull_secrets; i++)
                        m += sizeof(policy_pull_secret) + memsize_str(s->pull_secrets[i].name);
                /* selectors: a fixed estimate per requirement */
                if (s->namespace_selector) m += 64 + s->namespace_selector->n_reqs * 96;
                if (s->sa_selector) m += 64 + s->sa_selector->n_reqs * 96;
        }
        const model_policy_status *st = &p->status;
        m += memsize_str(st->ready_status) + memsize_str(st->ready_reason) +
             memsize_str(st->ready_message) + memsize_str(st->ready_last_transition) +
             memsize_str(st->dockercfg_form) + memsize_str(st->credentials.status) +
             memsize_str(st->credentials.reason) + memsize_str(st->credentials.message) +
             memsize_str(st->credentials.last_transition);
        for (size_t i = 0; i < st->n_problems; i++)
                m += sizeof(model_problem) + memsize_str(st->problems[i].namespace) +
                     memsize_str(st->problems[i].name) + memsize_str(st->problems[i].reason) +
                     memsize_str(st->problems[i].message);
        return m;
}

const kube_store_kind model_kind_namespace = {
    .name = "namespaces",
    .decode = model_namespace_vdecode,
    .free = model_namespace_vfree,
    .meta = any_meta,
    .mem = namespace_mem,
};

const kube_store_kind model_kind_service_account = {
    .name = "serviceaccounts",
    .decode = model_sa_vdecode,
    .free = model_sa_vfree,
    .meta = any_meta,
    .mem = sa_mem,
};

const kube_store_kind model_kind_secret_meta = {
    .name = "secrets (metadata)",
    .decode = secret_meta_vdecode,
    .free = model_secret_vfree,
    .meta = any_meta,
    .mem = secret_mem,
};

const kube_store_kind model_kind_secret = {
    .name = "secrets",
    .decode = model_secret_vdecode,
    .free = model_secret_vfree,
    .meta = any_meta,
    .mem = secret_mem,
};

const kube_store_kind model_kind_role_binding = {
    .name = "rolebindings",
    .decode = model_role_binding_vdecode,
    .free = model_role_binding_vfree,
    .meta = any_meta,
    .mem = role_binding_mem,
};

const kube_store_kind model_kind_policy = {
    .name = "pullpolicies",
    .decode = model_policy_vdecode,
    .free = model_policy_vfree,
    .meta = any_meta,
    .mem = policy_mem,
};

/* ---- indexes ----------------------------------------------------------------------- */

int model_index_sa_linked_policies(const void *obj, char ***ret_values, size_t *ret_n) {
        const model_sa *sa = obj;
        *ret_values = NULL;
        *ret_n = 0;
        if (!sa || sa->links.n == 0) return 0;
        char **v = calloc(sa->links.n, sizeof(char *));
        if (!v) return -ENOMEM;
        size_t n = 0;
        for (size_t i = 0; i < sa->links.n; i++) {
                /* items are sorted by policy: skip repeats */
                if (n > 0 && streq(v[n - 1], sa->links.items[i].policy)) continue;
                v[n] = strdup(sa->links.items[i].policy);
                if (!v[n]) {
                        strv_free(v, n);
                        return -ENOMEM;
                }
                n++;
        }
        *ret_values = v;
        *ret_n = n;
        return 0;
}

int model_index_marked_policy(const void *obj, char ***ret_values, size_t *ret_n) {
        const kube_meta *m = obj;
        *ret_values = NULL;
        *ret_n = 0;
        const char *home = kube_kvs_get(&m->labels, NAMES_LABEL_POLICY_NAMESPACE);
        const char *name = kube_kvs_get(&m->labels, NAMES_LABEL_POLICY);
        if (!home || !name || !names_marked_by(m, home, name)) return 0;
        char **v = calloc(1, sizeof(char *));
        if (!v) return -ENOMEM;
        int r = names_policy_key(home, name, &v[0]);
        if (r < 0) {
                free(v);
                return r == -ENOMEM ? r : 0; /* an empty label marks nothing */
        }
        *ret_values = v;
        *ret_n = 1;
        return 0;
}
