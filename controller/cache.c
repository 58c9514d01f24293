/* SPDX-License-Identifier: Apache-2.0 */
#include "cache.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/reflector.h"
#include "log.h"
#include "names.h"
#include "stalepods.h"
#include "kube/types.h"
#include "util/hashmap.h"
#include "util/macro.h"
#include "util/strv.h"

/* Policy indexes: which policies a change of another object can affect. */
#define IDX_SECRET_NAME "secret-name"        /* names in spec.pullSecrets */
#define IDX_NS_REF      "namespace-ref"      /* names in spec.subjects.namespaces */
#define IDX_SELECTOR    "namespace-selector" /* "1" when spec has a namespaceSelector */
#define IDX_MERGE       "global-merge"       /* "1" when spec merges into the global secret */
#define IDX_MARKED      "marked-key"         /* names_marked_key(): what our objects' labels say */

enum {
        SRC_POLICIES,
        SRC_NAMESPACES,
        SRC_SERVICEACCOUNTS,
        SRC_COPIES,       /* full, label-selected */
        SRC_ROLEBINDINGS, /* label-selected */
        SRC_GLOBAL,       /* the global pull secret alone (metadata), field-selected */
        SRC_PODS,         /* Pending pods only (R13), field-selected, slim (stale_pod) */
        _SRC_MAX,
        /* Not in src[]: the secrets of one name that some policy names (metadata), one source
         * per name in pp_cache.named, opened and closed as policies come and go. */
        SRC_NAMED = _SRC_MAX,
};

/* What /readyz names until the watches of the names in the first policy list have listed. */
#define NAMED_SOURCES "secrets (named by policies)"

typedef struct source {
        pp_cache *cache;
        int which;
        const char *name;
        char *secret_name; /* SRC_NAMED: the name its field selector selects; the map key */
        kube_store *store;
        kube_reflector *reflector;
        bool synced;
} source;

/* The full form of a named secret, valid while its resourceVersion matches the metadata. */
typedef struct full_secret {
        char *key; /* "ns/name": the hashmap key */
        model_secret *secret;
} full_secret;

struct pp_cache_fetch {
        pp_cache *cache;
        pp_cache_fetch *next; /* in cache->fetches */
        unsigned pending;
        int result;
        struct fetch_req **qs; /* NULL once answered */
        size_t n_qs;
        void (*done)(void *ud, int r);
        void *ud;
};

typedef struct fetch_req {
        pp_cache_fetch *fetch;
        size_t slot;
        char *ns, *name;
        kube_request *req;
} fetch_req;

static void fetch_req_free(fetch_req *q) {
        if (!q) return;
        free(q->ns);
        free(q->name);
        free(q);
}

struct pp_cache {
        kube_client *client;
        char *namespace;
        char *global_ns, *global_name;
        pp_cache_enqueue_fn enqueue;
        void (*sa_changed)(void *ud, const model_sa *sa);
        void (*enqueue_namespace)(void *ud, const char *policy_key, const char *namespace);
        /* while a change that concerns one namespace's accounts is mapped: that namespace */
        const char *event_ns;
        void *userdata;
        source src[_SRC_MAX];
        hashmap *named;    /* secret name → source (SRC_NAMED) */
        bool started;      /* pp_cache_start() was called: new named sources start at once */
        bool named_synced; /* the named sources of the first policy list have synced */
        hashmap *full;     /* "ns/name" → full_secret */
        pp_cache_fetch *fetches;
        unsigned long secret_gets;
        double watch_timeout, idle_timeout;
        controller_metrics *metrics;
};

static void named_follow(pp_cache *c, const model_policy *before, const model_policy *after);
static void check_named_synced(pp_cache *c);
static void named_free(source *s);

/* ---- policy indexes ----------------------------------------------------------------- */

static int strv_from(char **names, size_t n, char ***ret_values, size_t *ret_n) {
        *ret_values = NULL;
        *ret_n = 0;
        int r = strv_copy(names, n, ret_values);
        if (r < 0) return r;
        *ret_n = n;
        return 0;
}

static int index_flag(bool on, char ***ret_values, size_t *ret_n) {
        static char *one[] = {(char *)"1"};
        return strv_from(one, on ? 1 : 0, ret_values, ret_n);
}

static int index_policy_secret_names(const void *obj, char ***ret_values, size_t *ret_n) {
        const model_policy *p = obj;
        *ret_values = NULL;
        *ret_n = 0;
        if (!p->spec || p->spec->n_pull_secrets == 0) return 0;
        char **v = calloc(p->spec->n_pull_secrets, sizeof(char *));
        if (!v) return -ENOMEM;
        for (size_t i = 0; i < p->spec->n_pull_secrets; i++) v[i] = p->spec->pull_secrets[i].name;
        int r = strv_from(v, p->spec->n_pull_secrets, ret_values, ret_n);
        free(v);
        return r;
}

static int index_policy_ns_refs(const void *obj, char ***ret_values, size_t *ret_n) {
        const model_policy *p = obj;
        if (!p->spec) {
                *ret_values = NULL;
                *ret_n = 0;
                return 0;
        }
        return strv_from(p->spec->namespaces, p->spec->n_namespaces, ret_values, ret_n);
}

static int index_policy_selector(const void *obj, char ***ret_values, size_t *ret_n) {
        const model_policy *p = obj;
        return index_flag(p->spec && p->spec->namespace_selector, ret_values, ret_n);
}

static int index_policy_merge(const void *obj, char ***ret_values, size_t *ret_n) {
        const model_policy *p = obj;
        /* A policy without a valid spec may still have merged entries to remove. */
        return index_flag(!p->spec || p->spec->merge, ret_values, ret_n);
}

static int index_policy_marked_key(const void *obj, char ***ret_values, size_t *ret_n) {
        const model_policy *p = obj;
        *ret_values = NULL;
        *ret_n = 0;
        char **v = calloc(1, sizeof(char *));
        if (!v) return -ENOMEM;
        int r = names_marked_key(p->meta.namespace, p->meta.name, &v[0]);
        if (r < 0) {
                free(v);
                return r == -ENOMEM ? r : 0;
        }
        *ret_values = v;
        *ret_n = 1;
        return 0;
}

/* ---- mapping changes to policies -------------------------------------------------- */

typedef struct enqueue_ctx {
        pp_cache *cache;
} enqueue_ctx;

static void enqueue_key(pp_cache *c, const char *key) {
        if (!key) return;
        if (c->event_ns && c->enqueue_namespace)
                c->enqueue_namespace(c->userdata, key, c->event_ns);
        else if (c->enqueue)
                c->enqueue(c->userdata, key);
}

static void enqueue_policy_obj(pp_cache *c, const void *obj) {
        const model_policy *p = obj;
        _cleanup_free_ char *key = kube_meta_key(&p->meta);
        enqueue_key(c, key);
}

static int visit_enqueue(const void *obj, void *ud) {
        enqueue_policy_obj(ud, obj);
        return 0;
}

static void enqueue_indexed(pp_cache *c, const char *index, const char *value) {
        if (!value) return;
        kube_store_foreach_indexed(c->src[SRC_POLICIES].store, index, value, visit_enqueue, c);
}

static void enqueue_home(pp_cache *c, const char *ns) {
        if (!ns) return;
        kube_store_foreach_in_namespace(c->src[SRC_POLICIES].store, ns, visit_enqueue, c);
}

static bool indexed(pp_cache *c, int which, const char *index, const char *value) {
        const void **v = NULL;
        size_t n = 0;
        /* unsure (ENOMEM) counts as present: a needless sweep finds nothing to do */
        if (kube_store_list(c->src[which].store, index, value, &v, &n) < 0) return true;
        free(v);
        return n > 0;
}

/* Our objects name their policy by labels, which hold a shortened name past 63 bytes. */
static char *marked_key(const kube_meta *m) {
        const char *pn = kube_meta_label(m, NAMES_LABEL_POLICY_NAMESPACE);
        const char *plabel = kube_meta_label(m, NAMES_LABEL_POLICY);
        char *key = NULL;
        if (!pn || !plabel || asprintf(&key, "%s/%s", pn, plabel) < 0) return NULL;
        return key;
}

static void enqueue_marked(pp_cache *c, const kube_meta *m) {
        _cleanup_free_ char *key = marked_key(m);
        if (!key) return;
        enqueue_indexed(c, IDX_MARKED, key);
        /* marks of a policy that is gone: its key itself, for the orphan sweep */
        if (!indexed(c, SRC_POLICIES, IDX_MARKED, key)) enqueue_key(c, key);
}

/* Entries of the global pull secret's merge record whose policy is gone, for the sweep. */
static void enqueue_merged_orphans(pp_cache *c, const model_secret *g) {
        for (size_t i = 0; g && !g->merged_error && i < g->merged.n; i++)
                if (!kube_store_get_by_key(c->src[SRC_POLICIES].store, g->merged.items[i].policy))
                        enqueue_key(c, g->merged.items[i].policy);
}

/* A namespace or one of its service accounts changed: every policy it may concern. */
static void enqueue_for_namespace(pp_cache *c, const char *ns) {
        enqueue_home(c, ns);
        enqueue_indexed(c, IDX_NS_REF, ns);
        enqueue_indexed(c, IDX_SELECTOR, "1");
}

static void enqueue_sa_links(pp_cache *c, const model_sa *sa) {
        if (!sa) return;
        for (size_t i = 0; i < sa->links.n; i++)
                if (i == 0 || !streq(sa->links.items[i].policy, sa->links.items[i - 1].policy))
                        enqueue_key(c, sa->links.items[i].policy);
}

/*
 * A Pending pod changed: only a pod in the pull-error state (before or after) can be stale,
 * and only to the policies that linked a secret to its service account, which that
 * account's link record names. Other Pending pods (most of them) cause no reconcile.
 */
static void enqueue_for_pod(pp_cache *c, const stale_pod *old_pod, const stale_pod *new_pod) {
        const stale_pod *p = new_pod ? new_pod : old_pod;
        if (!(old_pod && old_pod->pull_error) && !(new_pod && new_pod->pull_error)) return;
        enqueue_sa_links(c, kube_store_get(c->src[SRC_SERVICEACCOUNTS].store, p->meta.namespace,
                                           p->service_account));
}

static void on_store_change(void *ud, kube_event_type type, const void *old_obj,
                            const void *new_obj) {
        source *s = ud;
        pp_cache *c = s->cache;
        const void *any = new_obj ? new_obj : old_obj;
        /* Every model type starts with a kube_meta_core (alone or as kube_meta's first part). */
        const kube_meta_core *m = any;
        switch (s->which) {
        case SRC_POLICIES:
                enqueue_policy_obj(c, any);
                named_follow(c, old_obj, new_obj);
                break;
        case SRC_NAMESPACES:
                enqueue_for_namespace(c, m->name);
                break;
        case SRC_SERVICEACCOUNTS:
                c->event_ns = m->namespace;
                enqueue_for_namespace(c, m->namespace);
                enqueue_sa_links(c, old_obj);
                enqueue_sa_links(c, new_obj);
                c->event_ns = NULL;
                if (new_obj && c->sa_changed) c->sa_changed(c->userdata, new_obj);
                break;
        case SRC_NAMED:
        case SRC_GLOBAL:
        case SRC_COPIES: {
                /* Sources by name (a home's or a foreign same-named secret), our copies by
                 * their marks, the global pull secret for the policies that merge. */
                enqueue_indexed(c, IDX_SECRET_NAME, m->name);
                if (old_obj) enqueue_marked(c, &((const model_secret *)old_obj)->meta);
                if (new_obj) enqueue_marked(c, &((const model_secret *)new_obj)->meta);
                if (m->namespace && streq(m->namespace, c->global_ns) &&
                    streq(m->name, c->global_name)) {
                        enqueue_indexed(c, IDX_MERGE, "1");
                        enqueue_merged_orphans(c, new_obj);
                }
                if (s->which != SRC_COPIES && type == KUBE_EVENT_DELETED) {
                        _cleanup_free_ char *key = kube_meta_key(m);
                        full_secret *f = key ? hashmap_remove(c->full, key) : NULL;
                        if (f) {
                                model_secret_free(f->secret);
                                free(f->key);
                                free(f);
                        }
                }
                break;
        }
        case SRC_PODS:
                enqueue_for_pod(c, old_obj, new_obj);
                break;
        case SRC_ROLEBINDINGS: {
                /* one subject namespace's binding (our own update of its subjects, usually) */
                const char *before =
                    old_obj ? kube_meta_label(&((const model_role_binding *)old_obj)->meta,
                                              NAMES_LABEL_SUBJECT_NAMESPACE)
                            : NULL;
                const char *after =
                    new_obj ? kube_meta_label(&((const model_role_binding *)new_obj)->meta,
                                              NAMES_LABEL_SUBJECT_NAMESPACE)
                            : NULL;
                if ((!old_obj || before) && (!new_obj || after) &&
                    (!before || !after || streq(before, after)))
                        c->event_ns = after ? after : before;
                if (old_obj) enqueue_marked(c, &((const model_role_binding *)old_obj)->meta);
                if (new_obj) enqueue_marked(c, &((const model_role_binding *)new_obj)->meta);
                c->event_ns = NULL;
                break;
        }
        }
}

/* ---- reflector → store ------------------------------------------------------------- */

static int on_replace(void *ud, json_object *items, const char *rv) {
        source *s = ud;
        int r = kube_store_replace(s->store, items);
        return r < 0 ? r : 0;
}

/* LISTs page by page: each page decoded into the store's objects and freed (issue 9). */
static int on_list_begin(void *ud) {
        return kube_store_replace_begin(((source *)ud)->store);
}

static int on_list_page(void *ud, json_object *items) {
        return kube_store_replace_add(((source *)ud)->store, items);
}

static int on_list_end(void *ud, const char *rv) {
        int r = kube_store_replace_commit(((source *)ud)->store);
        return r < 0 ? r : 0;
}

static void on_list_abort(void *ud) {
        kube_store_replace_abort(((source *)ud)->store);
}

static const kube_reflector_list_handlers list_handlers = {on_list_begin, on_list_page, on_list_end,
                                                           on_list_abort};

static int on_event(void *ud, kube_event_type type, json_object *obj) {
        source *s = ud;
        int r = kube_store_apply(s->store, type, obj);
        return r < 0 ? r : 0;
}

/* The kind of a source's objects, for logs, their resource, for the metric's label, and
 * the source's label in pullpolicy_cache_objects. */
static const struct {
        const char *kind, *resource, *metric;
} source_names[_SRC_MAX + 1] = {
    [SRC_POLICIES] = {"policy", "pullpolicies", "pullpolicies"},
    [SRC_NAMESPACES] = {"namespace", "namespaces", "namespaces"},
    [SRC_SERVICEACCOUNTS] = {"serviceaccount", "serviceaccounts", "serviceaccounts"},
    [SRC_COPIES] = {"secret", "secrets", "secrets-copies"},
    [SRC_ROLEBINDINGS] = {"rolebinding", "rolebindings", "rolebindings"},
    [SRC_GLOBAL] = {"secret", "secrets", "secrets-global"},
    [SRC_PODS] = {"pod", "pods", "pods-pending"},
    [SRC_NAMED] = {"secret", "secrets", "secrets-named"},
};

/*
 * An object the model refuses (over one of its limits) is skipped, by a relist
 * and a watch event alike, and never makes the reflector relist: one tenant's
 * object must not cost a list of the whole cluster's. It is as invisible to
 * the controller as a deleted one (the store dropped any older version), so
 * say so loudly. Only names and a fixed reason: never the object's content.
 */
static void on_invalid(void *ud, const char *ns, const char *name, int error, json_object *obj) {
        source *s = ud;
        const char *reason = model_refusal_reason(obj, error);
        log_warn(LOG_OBJ(source_names[s->which].kind, ns, name),
                 "skipped: the controller's model refuses this object, which is treated as absent",
                 LOG_STR("reason", reason));
        metrics_object_skipped(s->cache->metrics, source_names[s->which].resource, reason);
}

/*
 * A list's JSON is freed once its objects are in the store, but glibc keeps the freed pages
 * (a list of 20,000 objects leaves tens of MB): give them back, so that the steady RSS is
 * what the cache holds, not the list's peak. A few ms per list, lists are rare.
 */
static void release_list_heap(void) {
#ifdef __GLIBC__
        (void)malloc_trim(0);
#endif
}

static void on_synced(void *ud) {
        source *s = ud;
        s->synced = true;
        release_list_heap();
        /* policies naming it were put off until now (pp_cache_sources_synced()) */
        if (s->which == SRC_NAMED) enqueue_indexed(s->cache, IDX_SECRET_NAME, s->secret_name);
        if (s->which == SRC_NAMED || s->which == SRC_POLICIES) check_named_synced(s->cache);
}

static const kube_reflector_handlers reflector_handlers = {
    .on_replace = on_replace,
    .on_event = on_event,
    .on_synced = on_synced,
};

/* ---- construction -------------------------------------------------------------------- */

static int source_setup(pp_cache *c, source *s, int which, const char *name,
                        const kube_store_kind *kind, const kube_resource *res,
                        const char *namespace, const char *label_selector,
                        const char *field_selector, bool metadata_only) {
        s->cache = c;
        s->which = which;
        s->name = name;
        int r = kube_store_new(kind, &s->store);
        if (r < 0) return r;
        kube_store_set_handler(s->store, on_store_change, s);
        kube_store_set_invalid_handler(s->store, on_invalid, s);
        kube_reflector_opts o = {
            .resource = res,
            .namespace = namespace,
            .label_selector = label_selector,
            .field_selector = field_selector,
            .metadata_only = metadata_only,
            /* Streamed initial lists where the apiserver has them (issue 9), else paged. */
            .watch_list = true,
            .watch_timeout = c->watch_timeout,
            .idle_timeout = c->idle_timeout,
        };
        r = kube_reflector_new(c->client, &o, &reflector_handlers, s, &s->reflector);
        if (r < 0) return r;
        return kube_reflector_set_list_handlers(s->reflector, &list_handlers);
}

static int source_init_full(pp_cache *c, int which, const char *name, const kube_store_kind *kind,
                            const kube_resource *res, const char *namespace,
                            const char *label_selector, const char *field_selector,
                            bool metadata_only) {
        return source_setup(c, &c->src[which], which, name, kind, res, namespace, label_selector,
                            field_selector, metadata_only);
}

static int source_init(pp_cache *c, int which, const char *name, const kube_store_kind *kind,
                       const kube_resource *res, bool namespaced_watch, const char *label_selector,
                       bool metadata_only) {
        return source_init_full(c, which, name, kind, res, namespaced_watch ? c->namespace : NULL,
                                label_selector, NULL, metadata_only);
}

/* ---- the secrets of the names that policies name ------------------------------------------ */

/*
 * Not every secret of the cluster: one metadata watch per name in some policy's
 * spec.pullSecrets, selecting that name in every namespace (metadata.name=<name>). It holds
 * the sources in the homes, a same-named secret in a subject namespace (our copy, or
 * someone's: R5's Conflict, and its deletion, are seen without a write), and nothing else.
 */

static void named_free(source *s) {
        if (!s) return;
        kube_reflector_free(s->reflector);
        kube_store_free(s->store);
        free(s->secret_name);
        free(s);
}

static void drop_full_named(pp_cache *c, const char *name) {
        size_t st = 0;
        void *v;
        /* a removal restarts the walk: the map's order changes */
        while (hashmap_iterate(c->full, &st, NULL, &v)) {
                full_secret *f = v;
                const char *slash = strchr(f->key, '/');
                if (!slash || !streq(slash + 1, name)) continue;
                hashmap_remove(c->full, f->key);
                model_secret_free(f->secret);
                free(f->key);
                free(f);
                st = 0;
        }
}

static int named_open(pp_cache *c, const char *name) {
        if (hashmap_get(c->named, name)) return 0;
        _cleanup_free_ char *field = NULL;
        if (asprintf(&field, "metadata.name=%s", name) < 0) return -ENOMEM;
        source *s = calloc(1, sizeof(*s));
        if (!s) return -ENOMEM;
        s->secret_name = strdup(name);
        int r = s->secret_name ? 0 : -ENOMEM;
        if (r >= 0)
                r = source_setup(c, s, SRC_NAMED, NAMED_SOURCES, &model_kind_secret_meta,
                                 &KUBE_RES_SECRETS, c->namespace, NULL, field, true);
        if (r >= 0) r = hashmap_put(c->named, s->secret_name, s, NULL);
        if (r < 0) {
                named_free(s);
                return r;
        }
        if (c->started && (r = kube_reflector_start(s->reflector)) < 0) {
                hashmap_remove(c->named, s->secret_name);
                named_free(s);
                return r;
        }
        log_debug(LOG_COMPONENT("cache"), "watching the secrets of a name", LOG_STR("name", name));
        return 0;
}

static void named_close(pp_cache *c, const char *name) {
        source *s = hashmap_remove(c->named, name);
        if (!s) return;
        drop_full_named(c, name);
        log_debug(LOG_COMPONENT("cache"), "no longer watching the secrets of a name",
                  LOG_STR("name", name));
        named_free(s);
        /* The closed watch may be the last one readiness waited for (a policy of the first
         * list deleted before its names listed): nothing else would look again. */
        check_named_synced(c);
}

/* A policy changed: watch the names it now names, stop those that no policy names any more. */
static void named_follow(pp_cache *c, const model_policy *before, const model_policy *after) {
        for (size_t i = 0; after && after->spec && i < after->spec->n_pull_secrets; i++) {
                const char *name = after->spec->pull_secrets[i].name;
                int r = named_open(c, name);
                /* its policies wait; pp_cache_sources_synced() tries again */
                if (r < 0)
                        log_error(LOG_COMPONENT("cache"), "cannot watch the secrets of a name",
                                  LOG_STR("name", name), LOG_ERRNO(r));
        }
        for (size_t i = 0; before && before->spec && i < before->spec->n_pull_secrets; i++) {
                const char *name = before->spec->pull_secrets[i].name;
                if (kube_store_count_indexed(c->src[SRC_POLICIES].store, IDX_SECRET_NAME, name) ==
                    0)
                        named_close(c, name);
        }
}

/* Readiness waits once, for the names of the first policy list; never again afterwards. */
static void check_named_synced(pp_cache *c) {
        if (c->named_synced || !c->src[SRC_POLICIES].synced) return;
        size_t st = 0;
        void *v;
        while (hashmap_iterate(c->named, &st, NULL, &v))
                if (!((source *)v)->synced) return;
        c->named_synced = true;
}

int pp_cache_sources_synced(pp_cache *c, const model_policy *p) {
        int synced = 1;
        for (size_t i = 0; p && p->spec && i < p->spec->n_pull_secrets; i++) {
                const char *name = p->spec->pull_secrets[i].name;
                int r = named_open(c, name);
                if (r < 0) return r;
                const source *s = hashmap_get(c->named, name);
                if (!s->synced) synced = 0;
        }
        return synced;
}

int pp_cache_new(const pp_cache_opts *o, pp_cache **ret) {
        if (!o || !o->client || !o->global_ns || !o->global_name || !ret) return -EINVAL;
        pp_cache *c = calloc(1, sizeof(*c));
        if (!c) return -ENOMEM;
        c->client = o->client;
        c->enqueue = o->enqueue;
        c->sa_changed = o->sa_changed;
        c->enqueue_namespace = o->enqueue_namespace;
        c->userdata = o->userdata;
        c->watch_timeout = o->watch_timeout;
        c->idle_timeout = o->idle_timeout;
        c->metrics = o->metrics;
        c->namespace = strdup_or_null(o->namespace);
        c->global_ns = strdup(o->global_ns);
        c->global_name = strdup(o->global_name);
        int r = -ENOMEM;
        if ((o->namespace && !c->namespace) || !c->global_ns || !c->global_name) goto fail;
        r = hashmap_new(&c->full);
        if (r < 0) goto fail;
        r = hashmap_new(&c->named);
        if (r < 0) goto fail;

        const char *managed = NAMES_LABEL_MANAGED_BY "=" NAMES_MANAGED_BY_VALUE;
        if ((r = source_init(c, SRC_POLICIES, "pullpolicies", &model_kind_policy,
                             &KUBE_RES_PULLPOLICIES, true, NULL, false)) < 0 ||
            (r = source_init(c, SRC_NAMESPACES, "namespaces", &model_kind_namespace,
                             &KUBE_RES_NAMESPACES, false, NULL, false)) < 0 ||
            (r = source_init(c, SRC_SERVICEACCOUNTS, "serviceaccounts", &model_kind_service_account,
                             &KUBE_RES_SERVICEACCOUNTS, true, NULL, false)) < 0 ||
            (r = source_init(c, SRC_COPIES, "secrets (copies)", &model_kind_secret,
                             &KUBE_RES_SECRETS, true, managed, false)) < 0 ||
            (r = source_init(c, SRC_ROLEBINDINGS, "rolebindings", &model_kind_role_binding,
                             &KUBE_RES_ROLEBINDINGS, true, managed, false)) < 0)
                goto fail;
        /* The global pull secret (R6) by itself: no other secret of its namespace is read,
         * and watching one namespace must not hide it. */
        {
                _cleanup_free_ char *field = NULL;
                if (asprintf(&field, "metadata.name=%s", c->global_name) < 0) {
                        r = -ENOMEM;
                        goto fail;
                }
                r = source_init_full(c, SRC_GLOBAL, "secrets (global pull secret)",
                                     &model_kind_secret_meta, &KUBE_RES_SECRETS, c->global_ns, NULL,
                                     field, true);
                if (r < 0) goto fail;
        }

        /* R13: Pending pods only; a running pod is never sent, so the cache does not grow with
         * the cluster's workload (issue 11) */
        r = source_init_full(c, SRC_PODS, "pods (pending)", &stale_pod_kind, &KUBE_RES_PODS,
                             c->namespace, NULL, "status.phase=Pending", false);
        if (r < 0) goto fail;
        r = kube_store_add_index(c->src[SRC_PODS].store, STALE_POD_INDEX_SA, stale_pod_index_sa);
        if (r < 0) goto fail;

        kube_store *ps = c->src[SRC_POLICIES].store;
        if ((r = kube_store_add_index(ps, IDX_SECRET_NAME, index_policy_secret_names)) < 0 ||
            (r = kube_store_add_index(ps, IDX_NS_REF, index_policy_ns_refs)) < 0 ||
            (r = kube_store_add_index(ps, IDX_SELECTOR, index_policy_selector)) < 0 ||
            (r = kube_store_add_index(ps, IDX_MERGE, index_policy_merge)) < 0 ||
            (r = kube_store_add_index(ps, IDX_MARKED, index_policy_marked_key)) < 0)
                goto fail;
        if ((r = kube_store_add_index(c->src[SRC_SERVICEACCOUNTS].store,
                                      MODEL_INDEX_LINKED_POLICIES,
                                      model_index_sa_linked_policies)) < 0 ||
            (r = kube_store_add_index(c->src[SRC_COPIES].store, MODEL_INDEX_MARKED_POLICY,
                                      model_index_marked_policy)) < 0 ||
            (r = kube_store_add_index(c->src[SRC_ROLEBINDINGS].store, MODEL_INDEX_MARKED_POLICY,
                                      model_index_marked_policy)) < 0)
                goto fail;
        *ret = c;
        return 0;
fail:
        pp_cache_free(c);
        return r;
}

pp_cache *pp_cache_free(pp_cache *c) {
        if (!c) return NULL;
        while (c->fetches) pp_cache_fetch_cancel(c->fetches);
        for (int i = 0; i < _SRC_MAX; i++) {
                kube_reflector_free(c->src[i].reflector);
                kube_store_free(c->src[i].store);
        }
        if (c->named) {
                size_t st = 0;
                void *v;
                while (hashmap_iterate(c->named, &st, NULL, &v)) named_free(v);
                hashmap_free(c->named);
        }
        if (c->full) {
                size_t st = 0;
                void *v;
                while (hashmap_iterate(c->full, &st, NULL, &v)) {
                        full_secret *f = v;
                        model_secret_free(f->secret);
                        free(f->key);
                        free(f);
                }
                hashmap_free(c->full);
        }
        free(c->namespace);
        free(c->global_ns);
        free(c->global_name);
        free(c);
        return NULL;
}

int pp_cache_start(pp_cache *c) {
        c->started = true;
        for (int i = 0; i < _SRC_MAX; i++) {
                if (!c->src[i].reflector) continue;
                int r = kube_reflector_start(c->src[i].reflector);
                if (r < 0) return r;
        }
        return 0;
}

const char *pp_cache_not_synced(const pp_cache *c) {
        for (int i = 0; i < _SRC_MAX; i++)
                if (c->src[i].reflector && !c->src[i].synced) return c->src[i].name;
        /* Later names do not make the process unready: only the policies naming them wait
         * (pp_cache_sources_synced()). */
        return c->named_synced ? NULL : NAMED_SOURCES;
}

bool pp_cache_synced(const pp_cache *c) {
        return pp_cache_not_synced(c) == NULL;
}

const model_policy *pp_cache_policy(const pp_cache *c, const char *key) {
        return kube_store_get_by_key(c->src[SRC_POLICIES].store, key);
}

typedef struct foreach_ctx {
        pp_cache_enqueue_fn fn;
        pp_cache_policy_visit visit;
        void *ud;
} foreach_ctx;

static int visit_policy_key(const void *obj, void *ud) {
        foreach_ctx *f = ud;
        _cleanup_free_ char *key = kube_meta_key(&((const model_policy *)obj)->meta);
        if (key) f->fn(f->ud, key);
        return 0;
}

void pp_cache_foreach_policy(pp_cache *c, pp_cache_enqueue_fn fn, void *ud) {
        foreach_ctx f = {.fn = fn, .ud = ud};
        kube_store_foreach(c->src[SRC_POLICIES].store, visit_policy_key, &f);
}

static int visit_policy_obj(const void *obj, void *ud) {
        foreach_ctx *f = ud;
        f->visit(obj, f->ud);
        return 0;
}

void pp_cache_visit_policies(pp_cache *c, pp_cache_policy_visit fn, void *ud) {
        foreach_ctx f = {.visit = fn, .ud = ud};
        kube_store_foreach(c->src[SRC_POLICIES].store, visit_policy_obj, &f);
}

void pp_cache_get_stats(const pp_cache *c, pp_cache_stats *ret) {
        pp_cache_stats st = {.secret_gets = c->secret_gets};
        for (int i = 0; i < _SRC_MAX; i++) {
                if (!c->src[i].store) continue;
                st.objects += kube_store_count(c->src[i].store);
                st.mem += kube_store_mem(c->src[i].store);
                kube_reflector_stats rs;
                kube_reflector_get_stats(c->src[i].reflector, &rs);
                st.lists += rs.lists;
                st.watches += rs.watches;
                st.relists_gone += rs.relists_gone;
        }
        size_t it = 0;
        void *v;
        while (hashmap_iterate(c->named, &it, NULL, &v)) {
                const source *s = v;
                st.objects += kube_store_count(s->store);
                st.mem += kube_store_mem(s->store);
                kube_reflector_stats rs;
                kube_reflector_get_stats(s->reflector, &rs);
                st.lists += rs.lists;
                st.watches += rs.watches;
                st.relists_gone += rs.relists_gone;
        }
        st.objects += hashmap_size(c->full);
        st.mem += hashmap_mem(c->full);
        *ret = st;
}

static size_t full_mem(const pp_cache *c) {
        size_t mem = hashmap_mem(c->full);
        size_t st = 0;
        void *v;
        while (hashmap_iterate(c->full, &st, NULL, &v)) {
                const full_secret *f = v;
                mem += sizeof(*f) + strlen(f->key) + 1 +
                       (model_kind_secret.mem ? model_kind_secret.mem(f->secret)
                                              : kube_meta_mem(&f->secret->meta));
        }
        return mem;
}

void pp_cache_publish_metrics(const pp_cache *c) {
        if (!c->metrics) return;
        static const char *const kinds[] = {"policy", "namespace",   "serviceaccount",
                                            "secret", "rolebinding", "pod"};
        size_t bytes[ARRAY_SIZE(kinds)] = {0};
        unsigned long gone = 0;
        for (int i = 0; i < _SRC_MAX; i++) {
                if (!c->src[i].store) continue;
                kube_reflector_stats rs;
                kube_reflector_get_stats(c->src[i].reflector, &rs);
                gone += rs.relists_gone;
                metrics_set_cache_objects(c->metrics, source_names[i].metric,
                                          kube_store_count(c->src[i].store));
                for (size_t k = 0; k < ARRAY_SIZE(kinds); k++)
                        if (streq(kinds[k], source_names[i].kind))
                                bytes[k] += kube_store_mem(c->src[i].store);
        }
        size_t named = 0, it = 0;
        void *v;
        while (hashmap_iterate(c->named, &it, NULL, &v)) {
                const source *s = v;
                named += kube_store_count(s->store);
                bytes[3] += kube_store_mem(s->store);
        }
        metrics_set_cache_objects(c->metrics, source_names[SRC_NAMED].metric, named);
        metrics_set_cache_objects(c->metrics, "secrets-read", hashmap_size(c->full));
        bytes[3] += full_mem(c);
        bytes[1] += model_intern_mem(); /* the namespace names that cached objects share */
        for (size_t k = 0; k < ARRAY_SIZE(kinds); k++)
                metrics_set_cache_bytes(c->metrics, kinds[k], bytes[k]);
        /* the named sources come and go with policies: their counts would not add up */
        metrics_set_cache_relists(c->metrics, "gone", gone);
}

/* ---- the planner's snapshot ------------------------------------------------------------- */

static const model_namespace *snap_namespace_get(void *ud, const char *name) {
        pp_cache *c = ud;
        return kube_store_get(c->src[SRC_NAMESPACES].store, NULL, name);
}

static int snap_namespace_list(void *ud, const model_namespace ***ret, size_t *n) {
        pp_cache *c = ud;
        return kube_store_list(c->src[SRC_NAMESPACES].store, NULL, NULL, (const void ***)ret, n);
}

static int snap_sa_list(void *ud, const char *ns, const model_sa ***ret, size_t *n) {
        pp_cache *c = ud;
        return kube_store_list(c->src[SRC_SERVICEACCOUNTS].store, KUBE_STORE_INDEX_NAMESPACE, ns,
                               (const void ***)ret, n);
}

static int snap_sa_list_linked(void *ud, const char *key, const model_sa ***ret, size_t *n) {
        pp_cache *c = ud;
        return kube_store_list(c->src[SRC_SERVICEACCOUNTS].store, MODEL_INDEX_LINKED_POLICIES, key,
                               (const void ***)ret, n);
}

/*
 * The freshest form of a secret: our own copies are watched in full; the
 * sources and the global pull secret are in full while the GET we made is as
 * new as the metadata watch; anything else is metadata only.
 */
static const model_secret *snap_secret_get(void *ud, const char *ns, const char *name) {
        pp_cache *c = ud;
        const model_secret *meta = kube_store_get(c->src[SRC_GLOBAL].store, ns, name);
        if (!meta) {
                const source *s = hashmap_get(c->named, name);
                if (s) meta = kube_store_get(s->store, ns, name);
        }
        const model_secret *copy = kube_store_get(c->src[SRC_COPIES].store, ns, name);
        if (copy && (!meta || streq_ptr(copy->meta.resource_version, meta->meta.resource_version)))
                return copy;
        if (!meta) return NULL;
        char key[2 * KUBE_META_NAME_MAX + 2];
        snprintf(key, sizeof(key), "%s/%s", ns, name);
        const full_secret *f = hashmap_get(c->full, key);
        if (f && streq_ptr(f->secret->meta.resource_version, meta->meta.resource_version))
                return f->secret;
        return meta;
}

static int snap_secret_list_marked(void *ud, const char *key, const model_secret ***ret,
                                   size_t *n) {
        pp_cache *c = ud;
        return kube_store_list(c->src[SRC_COPIES].store, MODEL_INDEX_MARKED_POLICY, key,
                               (const void ***)ret, n);
}

static const model_role_binding *snap_rb_get(void *ud, const char *ns, const char *name) {
        pp_cache *c = ud;
        return kube_store_get(c->src[SRC_ROLEBINDINGS].store, ns, name);
}

static int snap_rb_list_marked(void *ud, const char *key, const model_role_binding ***ret,
                               size_t *n) {
        pp_cache *c = ud;
        return kube_store_list(c->src[SRC_ROLEBINDINGS].store, MODEL_INDEX_MARKED_POLICY, key,
                               (const void ***)ret, n);
}

static int snap_policy_list(void *ud, const char *ns, const model_policy ***ret, size_t *n) {
        pp_cache *c = ud;
        return kube_store_list(c->src[SRC_POLICIES].store, KUBE_STORE_INDEX_NAMESPACE, ns,
                               (const void ***)ret, n);
}

static int snap_pod_list(void *ud, const char *ns, const char *sa, const stale_pod ***ret,
                         size_t *n) {
        pp_cache *c = ud;
        char key[2 * KUBE_META_NAME_MAX + 2];
        snprintf(key, sizeof(key), "%s/%s", ns, sa);
        return kube_store_list(c->src[SRC_PODS].store, STALE_POD_INDEX_SA, key, (const void ***)ret,
                               n);
}

static const plan_snapshot_ops snapshot_ops = {
    .namespace_get = snap_namespace_get,
    .namespace_list = snap_namespace_list,
    .sa_list = snap_sa_list,
    .sa_list_linked = snap_sa_list_linked,
    .secret_get = snap_secret_get,
    .secret_list_marked = snap_secret_list_marked,
    .role_binding_get = snap_rb_get,
    .role_binding_list_marked = snap_rb_list_marked,
    .policy_list = snap_policy_list,
    .pod_list = snap_pod_list,
};

plan_snapshot pp_cache_snapshot(pp_cache *c) {
        return (plan_snapshot){.ops = &snapshot_ops, .ud = c};
}

/* ---- full reads of named secrets ---------------------------------------------------------- */

static bool needs_fetch(pp_cache *c, const char *ns, const char *name) {
        const model_secret *s = snap_secret_get(c, ns, name);
        /* a service account's secret is never a source: its token is not read (R11) */
        return s && !s->full && !s->sa_owned;
}

static void fetch_unlink(pp_cache_fetch *f) {
        for (pp_cache_fetch **p = &f->cache->fetches; *p; p = &(*p)->next)
                if (*p == f) {
                        *p = f->next;
                        break;
                }
}

/* Cancels what is still in flight (no callbacks) and frees the set. */
static void fetch_free(pp_cache_fetch *f) {
        for (size_t i = 0; i < f->n_qs; i++)
                if (f->qs[i]) {
                        kube_request_cancel(f->qs[i]->req);
                        fetch_req_free(f->qs[i]);
                }
        free(f->qs);
        free(f);
}

static void store_full(pp_cache *c, const char *ns, const char *name, const kube_response *r) {
        /* its name is no longer wanted (the policies naming it went meanwhile): no data kept */
        if (!kube_store_get(c->src[SRC_GLOBAL].store, ns, name) && !hashmap_get(c->named, name))
                return;
        json_object *obj = json_tokener_parse(r->body ? r->body : "");
        if (!obj) return;
        model_secret *s = NULL;
        int k = model_secret_decode(obj, &s);
        json_object_put(obj);
        if (k < 0) return;
        full_secret *f = calloc(1, sizeof(*f));
        if (!f || asprintf(&f->key, "%s/%s", ns, name) < 0) {
                free(f);
                model_secret_free(s);
                return;
        }
        f->secret = s;
        void *old = NULL;
        if (hashmap_put(c->full, f->key, f, &old) < 0) {
                model_secret_free(s);
                free(f->key);
                free(f);
                return;
        }
        if (old) {
                full_secret *o = old;
                model_secret_free(o->secret);
                free(o->key);
                free(o);
        }
}

static void fetch_one_done(kube_client *client, const kube_response *r, void *userdata) {
        fetch_req *q = userdata;
        pp_cache_fetch *f = q->fetch;
        f->qs[q->slot] = NULL;
        if (r->error == 0)
                store_full(f->cache, q->ns, q->name, r);
        else if (!kube_error_is_not_found(r->error) && f->result == 0)
                f->result = r->error;
        fetch_req_free(q);
        if (--f->pending > 0) return;
        fetch_unlink(f);
        void (*done)(void *, int) = f->done;
        void *ud = f->ud;
        int result = f->result;
        fetch_free(f);
        done(ud, result);
}

static int fetch_start(pp_cache_fetch *f, const char *ns, const char *name) {
        pp_cache *c = f->cache;
        _cleanup_free_ char *path = NULL;
        int r = kube_resource_path(&KUBE_RES_SECRETS, ns, name, NULL, &path);
        if (r < 0) return r;
        fetch_req *q = calloc(1, sizeof(*q));
        if (!q) return -ENOMEM;
        q->fetch = f;
        q->slot = f->n_qs;
        q->ns = strdup(ns);
        q->name = strdup(name);
        fetch_req **nq = realloc(f->qs, (f->n_qs + 1) * sizeof(*nq));
        if (nq) f->qs = nq;
        if (!q->ns || !q->name || !nq) {
                fetch_req_free(q);
                return -ENOMEM;
        }
        kube_request_opts o = {
            .method = KUBE_GET,
            .path = path,
            .timeout_ms = 30000,
            .on_done = fetch_one_done,
            .userdata = q,
        };
        r = kube_client_request(c->client, &o, &q->req);
        if (r < 0) {
                fetch_req_free(q);
                return r;
        }
        f->qs[f->n_qs++] = q;
        f->pending++;
        c->secret_gets++;
        return 0;
}

/* Whether the global pull secret's merge record, as the metadata watch has it, names key. */
static bool global_mentions(pp_cache *c, const char *key) {
        const model_secret *g = snap_secret_get(c, c->global_ns, c->global_name);
        for (size_t i = 0; key && g && !g->merged_error && i < g->merged.n; i++)
                if (streq(g->merged.items[i].policy, key)) return true;
        return false;
}

/* ---- orphans: marks and records of policies that do not exist ------------------------------ */

/* With --namespace, policies of other homes are another controller's business. */
static bool in_scope(const pp_cache *c, const char *key) {
        if (!c->namespace) return true;
        size_t n = strlen(c->namespace);
        return strncmp(key, c->namespace, n) == 0 && key[n] == '/';
}

bool pp_cache_orphaned(pp_cache *c, const char *key) {
        const char *slash = key ? strchr(key, '/') : NULL;
        if (!slash || slash == key || !slash[1] || !in_scope(c, key)) return false;
        /* a policy answers to its key, and a long-named one also to its marks' shortened key */
        if (pp_cache_policy(c, key) || indexed(c, SRC_POLICIES, IDX_MARKED, key)) return false;
        _cleanup_free_ char *home = strndup(key, (size_t)(slash - key)), *mkey = NULL;
        if (!home || names_marked_key(home, slash + 1, &mkey) < 0) return false;
        return indexed(c, SRC_SERVICEACCOUNTS, MODEL_INDEX_LINKED_POLICIES, key) ||
               indexed(c, SRC_ROLEBINDINGS, MODEL_INDEX_MARKED_POLICY, mkey) ||
               indexed(c, SRC_COPIES, MODEL_INDEX_MARKED_POLICY, mkey) || global_mentions(c, key);
}

typedef struct orphan_ctx {
        pp_cache *cache;
        pp_cache_enqueue_fn fn;
        void *ud;
} orphan_ctx;

static void orphan_offer(orphan_ctx *o, const char *key) {
        if (key && pp_cache_orphaned(o->cache, key)) o->fn(o->ud, key);
}

static int visit_sa_orphans(const void *obj, void *ud) {
        const model_sa *sa = obj;
        for (size_t i = 0; i < sa->links.n; i++)
                if (i == 0 || !streq(sa->links.items[i].policy, sa->links.items[i - 1].policy))
                        orphan_offer(ud, sa->links.items[i].policy);
        return 0;
}

static int visit_marked_orphans(const void *obj, void *ud) {
        /* every model type embeds kube_meta first */
        _cleanup_free_ char *key = marked_key(obj);
        orphan_offer(ud, key);
        return 0;
}

void pp_cache_foreach_orphan(pp_cache *c, pp_cache_enqueue_fn fn, void *ud) {
        orphan_ctx o = {.cache = c, .fn = fn, .ud = ud};
        kube_store_foreach(c->src[SRC_SERVICEACCOUNTS].store, visit_sa_orphans, &o);
        kube_store_foreach(c->src[SRC_ROLEBINDINGS].store, visit_marked_orphans, &o);
        kube_store_foreach(c->src[SRC_COPIES].store, visit_marked_orphans, &o);
        const model_secret *g = snap_secret_get(c, c->global_ns, c->global_name);
        for (size_t i = 0; g && !g->merged_error && i < g->merged.n; i++)
                if (i == 0 || !streq(g->merged.items[i].policy, g->merged.items[i - 1].policy))
                        orphan_offer(&o, g->merged.items[i].policy);
}

int pp_cache_prefetch(pp_cache *c, const model_policy *p, bool global,
                      void (*done)(void *ud, int r), void *ud, pp_cache_fetch **ret) {
        const char *home = p->meta.namespace;
        _cleanup_free_ char *key = kube_meta_key(&p->meta);
        /* Removing what a policy merged is always allowed, whatever the distribution
         * list says now: its entries are read even when it may no longer merge (R6, R7). */
        bool want_global =
            (global || global_mentions(c, key)) && needs_fetch(c, c->global_ns, c->global_name);
        size_t n_src = 0;
        if (p->spec)
                for (size_t i = 0; i < p->spec->n_pull_secrets; i++)
                        if (needs_fetch(c, home, p->spec->pull_secrets[i].name)) n_src++;
        if (n_src == 0 && !want_global) return 0;

        pp_cache_fetch *f = calloc(1, sizeof(*f));
        if (!f) return -ENOMEM;
        f->cache = c;
        f->done = done;
        f->ud = ud;
        /* Counted up front so that a request finishing early cannot complete the set. */
        f->pending = 1;
        int r = 0;
        if (p->spec)
                for (size_t i = 0; i < p->spec->n_pull_secrets && r >= 0; i++)
                        if (needs_fetch(c, home, p->spec->pull_secrets[i].name))
                                r = fetch_start(f, home, p->spec->pull_secrets[i].name);
        if (r >= 0 && want_global) r = fetch_start(f, c->global_ns, c->global_name);
        f->pending--;
        if (r < 0 || f->pending == 0) {
                /* Nothing in flight (or a start failed): undo the started ones. */
                fetch_free(f);
                return r < 0 ? r : 0;
        }
        f->next = c->fetches;
        c->fetches = f;
        if (ret) *ret = f;
        return 1;
}

void pp_cache_fetch_cancel(pp_cache_fetch *f) {
        if (!f) return;
        fetch_unlink(f);
        fetch_free(f);
}
