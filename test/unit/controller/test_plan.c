/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The planner on hand-built snapshots. A small "world" holds objects as the
 * server would return them (JSON) plus their decoded models; world_apply()
 * plays the apply step (runs the writes in order, writes status), so that
 * tests can check both single plans and convergence (R10: once converged, a
 * plan has no writes and the status does not change).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"
#include "names.h"
#include "plan.h"
#include "util/macro.h"

#define NOW 1800000000LL

/* ---- the world ---------------------------------------------------------------- */

typedef enum kind { K_NS, K_SA, K_SECRET, K_RB, K_POLICY } kind;

typedef struct obj {
        kind k;
        json_object *json;
        void *model;
} obj;

typedef struct world {
        obj objs[512];
        size_t n;
        int rv;
        const char *allowed[4];
        const char *dist[4];
        plan_settings set;
} world;

static const char *jstr(json_object *o, const char *a, const char *b) {
        json_object *x = NULL, *y = NULL;
        if (!json_object_object_get_ex(o, a, &x)) return NULL;
        if (!b) return json_object_get_string(x);
        if (!json_object_object_get_ex(x, b, &y)) return NULL;
        return json_object_get_string(y);
}

static void model_free(kind k, void *m) {
        switch (k) {
        case K_NS:
                model_namespace_free(m);
                break;
        case K_SA:
                model_sa_free(m);
                break;
        case K_SECRET:
                model_secret_free(m);
                break;
        case K_RB:
                model_role_binding_free(m);
                break;
        case K_POLICY:
                model_policy_free(m);
                break;
        }
}

static void *model_decode(kind k, json_object *j) {
        void *m = NULL;
        int r = -1;
        switch (k) {
        case K_NS:
                r = model_namespace_decode(j, (model_namespace **)&m);
                break;
        case K_SA:
                r = model_sa_decode(j, (model_sa **)&m);
                break;
        case K_SECRET:
                r = model_secret_decode(j, (model_secret **)&m);
                break;
        case K_RB:
                r = model_role_binding_decode(j, (model_role_binding **)&m);
                break;
        case K_POLICY:
                r = model_policy_decode(j, (model_policy **)&m);
                break;
        }
        if (r < 0) fail_msg("decode failed: %d %s", r, json_object_to_json_string(j));
        return m;
}

static obj *world_find(world *w, kind k, const char *ns, const char *name) {
        for (size_t i = 0; i < w->n; i++) {
                obj *o = &w->objs[i];
                if (o->k == k && streq_ptr(jstr(o->json, "metadata", "namespace"), ns) &&
                    streq(jstr(o->json, "metadata", "name"), name))
                        return o;
        }
        return NULL;
}

static json_object *world_json(world *w, kind k, const char *ns, const char *name) {
        obj *o = world_find(w, k, ns, name);
        return o ? o->json : NULL;
}

static void *world_model(world *w, kind k, const char *ns, const char *name) {
        obj *o = world_find(w, k, ns, name);
        return o ? o->model : NULL;
}

/* Stores j (taking the reference) with a fresh resourceVersion, as the server would. */
static void world_put(world *w, kind k, json_object *j) {
        json_object *meta = NULL;
        assert_true(json_object_object_get_ex(j, "metadata", &meta));
        char rv[32];
        snprintf(rv, sizeof(rv), "%d", ++w->rv);
        json_object_object_add(meta, "resourceVersion", json_object_new_string(rv));
        if (!json_object_object_get_ex(meta, "uid", NULL)) {
                char uid[64];
                snprintf(uid, sizeof(uid), "uid-%d", w->rv);
                json_object_object_add(meta, "uid", json_object_new_string(uid));
        }
        if (!json_object_object_get_ex(meta, "creationTimestamp", NULL))
                json_object_object_add(meta, "creationTimestamp",
                                       json_object_new_string("2020-01-01T00:00:00Z"));
        const char *ns = jstr(j, "metadata", "namespace"), *name = jstr(j, "metadata", "name");
        obj *o = world_find(w, k, ns, name);
        if (!o) {
                assert_true(w->n < ARRAY_SIZE(w->objs));
                o = &w->objs[w->n++];
        } else {
                model_free(o->k, o->model);
                json_object_put(o->json);
        }
        o->k = k;
        o->json = j;
        o->model = model_decode(k, j);
}

static void world_put_str(world *w, kind k, const char *json) {
        json_object *j = json_tokener_parse(json);
        if (!j) fail_msg("bad test JSON: %s", json);
        world_put(w, k, j);
}

static bool world_del(world *w, kind k, const char *ns, const char *name) {
        obj *o = world_find(w, k, ns, name);
        if (!o) return false;
        model_free(o->k, o->model);
        json_object_put(o->json);
        *o = w->objs[--w->n];
        return true;
}

static void world_init(world *w) {
        memset(w, 0, sizeof(*w));
        w->allowed[0] = "system:image-puller";
        w->dist[0] = "pullpolicy-system";
        w->set = (plan_settings){
            .allowed_cluster_roles = w->allowed,
            .n_allowed_cluster_roles = 1,
            .distribution_namespaces = w->dist,
            .n_distribution_namespaces = 1,
            .image_api_served = false,
            .now = NOW,
        };
}

static void world_done(world *w) {
        for (size_t i = 0; i < w->n; i++) {
                model_free(w->objs[i].k, w->objs[i].model);
                json_object_put(w->objs[i].json);
        }
        w->n = 0;
}

static int world_setup(void **state) {
        world *w = malloc(sizeof(world));
        assert_non_null(w);
        world_init(w);
        *state = w;
        return 0;
}

static int world_teardown(void **state) {
        world_done(*state);
        free(*state);
        return 0;
}

/* ---- builders ------------------------------------------------------------------- */

static void ns_add(world *w, const char *name, const char *labels) {
        char *j = NULL;
        assert_true(asprintf(&j,
                             "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":"
                             "{\"name\":\"%s\",\"labels\":%s},\"status\":{\"phase\":\"Active\"}}",
                             name, labels ? labels : "{}") > 0);
        world_put_str(w, K_NS, j);
        free(j);
}

/*
 * A service account; secrets/pulls are JSON arrays of names like ["a","b"] (NULL:
 * none); created is Unix seconds; extra is more metadata members (may be NULL).
 */
static void sa_add(world *w, const char *ns, const char *name, const char *labels,
                   const char *secrets, const char *pulls, long long created, const char *extra) {
        char ts[64];
        time_t t = (time_t)created;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_object *j = json_object_new_object(), *meta = json_object_new_object();
        json_object_object_add(meta, "name", json_object_new_string(name));
        json_object_object_add(meta, "namespace", json_object_new_string(ns));
        json_object_object_add(meta, "creationTimestamp", json_object_new_string(ts));
        if (labels) json_object_object_add(meta, "labels", json_tokener_parse(labels));
        if (extra) {
                json_object *e = json_tokener_parse(extra);
                assert_non_null(e);
                json_object_object_foreach(e, k, v)
                    json_object_object_add(meta, k, json_object_get(v));
                json_object_put(e);
        }
        json_object_object_add(j, "apiVersion", json_object_new_string("v1"));
        json_object_object_add(j, "kind", json_object_new_string("ServiceAccount"));
        json_object_object_add(j, "metadata", meta);
        const char *lists[2] = {secrets, pulls};
        const char *members[2] = {"secrets", "imagePullSecrets"};
        for (int i = 0; i < 2; i++) {
                if (!lists[i]) continue;
                json_object *names = json_tokener_parse(lists[i]), *arr = json_object_new_array();
                assert_non_null(names);
                for (size_t k = 0; k < json_object_array_length(names); k++) {
                        json_object *e = json_object_new_object();
                        json_object_object_add(
                            e, "name", json_object_get(json_object_array_get_idx(names, k)));
                        json_object_array_add(arr, e);
                }
                json_object_put(names);
                json_object_object_add(j, members[i], arr);
        }
        world_put(w, K_SA, j);
}

static void sa_simple(world *w, const char *ns, const char *name) {
        sa_add(w, ns, name, NULL, NULL, NULL, NOW - 100000, NULL);
}

static char *b64(const char *in, size_t n) {
        static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char *out = malloc(n / 3 * 4 + 8), *o = out;
        assert_non_null(out);
        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
                if (i + 1 < n) v |= (uint32_t)(unsigned char)in[i + 1] << 8;
                if (i + 2 < n) v |= (uint32_t)(unsigned char)in[i + 2];
                *o++ = t[v >> 18 & 63];
                *o++ = t[v >> 12 & 63];
                *o++ = i + 1 < n ? t[v >> 6 & 63] : '=';
                *o++ = i + 2 < n ? t[v & 63] : '=';
        }
        *o = 0;
        return out;
}

/* A kubernetes.io/dockerconfigjson secret whose payload is {"auths": auths}. */
static void secret_add(world *w, const char *ns, const char *name, const char *auths,
                       const char *extra_meta) {
        char *payload = NULL, *j = NULL;
        assert_true(asprintf(&payload, "{\"auths\":%s}", auths) > 0);
        char *e = b64(payload, strlen(payload));
        assert_true(asprintf(&j,
                             "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"type\":"
                             "\"kubernetes.io/dockerconfigjson\",\"metadata\":{\"name\":\"%s\","
                             "\"namespace\":\"%s\"%s%s},\"data\":{\".dockerconfigjson\":\"%s\"}}",
                             name, ns, extra_meta ? "," : "", extra_meta ? extra_meta : "", e) > 0);
        world_put_str(w, K_SECRET, j);
        free(j);
        free(e);
        free(payload);
}

static void secret_opaque(world *w, const char *ns, const char *name) {
        char *j = NULL;
        assert_true(asprintf(&j,
                             "{\"type\":\"Opaque\",\"metadata\":{\"name\":\"%s\","
                             "\"namespace\":\"%s\"},\"data\":{\"x\":\"eA==\"}}",
                             name, ns) > 0);
        world_put_str(w, K_SECRET, j);
        free(j);
}

static void policy_add(world *w, const char *ns, const char *name, const char *spec,
                       bool finalizer) {
        char *j = NULL;
        assert_true(asprintf(&j,
                             "{\"apiVersion\":\"pullpolicy.io/v1alpha1\",\"kind\":\"PullPolicy\","
                             "\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\","
                             "\"generation\":1%s},\"spec\":%s}",
                             name, ns,
                             finalizer ? ",\"finalizers\":[\"pullpolicy.io/cleanup\"]" : "",
                             spec) > 0);
        world_put_str(w, K_POLICY, j);
        free(j);
}

/* Changes a policy's spec, bumping its generation; status stays. */
static void policy_set_spec(world *w, const char *ns, const char *name, const char *spec) {
        json_object *j = json_object_get(world_json(w, K_POLICY, ns, name));
        assert_non_null(j);
        json_object *meta = NULL, *gen = NULL;
        json_object_object_get_ex(j, "metadata", &meta);
        json_object_object_get_ex(meta, "generation", &gen);
        json_object_object_add(meta, "generation",
                               json_object_new_int64(json_object_get_int64(gen) + 1));
        json_object_object_add(j, "spec", json_tokener_parse(spec));
        world_put(w, K_POLICY, j);
}

static void policy_mark_deleting(world *w, const char *ns, const char *name) {
        json_object *j = json_object_get(world_json(w, K_POLICY, ns, name));
        json_object *meta = NULL;
        json_object_object_get_ex(j, "metadata", &meta);
        json_object_object_add(meta, "deletionTimestamp",
                               json_object_new_string("2027-01-01T00:00:00Z"));
        world_put(w, K_POLICY, j);
}

static void set_labels(world *w, kind k, const char *ns, const char *name, const char *labels) {
        json_object *j = json_object_get(world_json(w, k, ns, name));
        assert_non_null(j);
        json_object *meta = NULL;
        json_object_object_get_ex(j, "metadata", &meta);
        json_object_object_add(meta, "labels", json_tokener_parse(labels));
        world_put(w, k, j);
}

/* ---- planning and applying ------------------------------------------------------------ */

static plan *world_plan(world *w, const char *ns, const char *name) {
        plan_memsnap *m = NULL;
        assert_int_equal(plan_memsnap_new(&m), 0);
        for (size_t i = 0; i < w->n; i++) {
                const obj *o = &w->objs[i];
                switch (o->k) {
                case K_NS:
                        assert_int_equal(plan_memsnap_add_namespace(m, o->model), 0);
                        break;
                case K_SA:
                        assert_int_equal(plan_memsnap_add_sa(m, o->model), 0);
                        break;
                case K_SECRET:
                        assert_int_equal(plan_memsnap_add_secret(m, o->model), 0);
                        break;
                case K_RB:
                        assert_int_equal(plan_memsnap_add_role_binding(m, o->model), 0);
                        break;
                case K_POLICY:
                        assert_int_equal(plan_memsnap_add_policy(m, o->model), 0);
                        break;
                }
        }
        plan_snapshot snap = plan_memsnap_snapshot(m);
        const model_policy *p = world_model(w, K_POLICY, ns, name);
        assert_non_null(p);
        plan *pl = NULL;
        assert_int_equal(plan_policy(p, &snap, &w->set, &pl), 0);
        plan_memsnap_free(m);
        return pl;
}

static void set_meta_labels(json_object *meta, const plan_write *pw) {
        json_object *l = json_object_new_object();
        json_object_object_add(l, NAMES_LABEL_MANAGED_BY,
                               json_object_new_string(NAMES_MANAGED_BY_VALUE));
        json_object_object_add(l, NAMES_LABEL_POLICY, json_object_new_string(pw->copy.policy_name));
        json_object_object_add(l, NAMES_LABEL_POLICY_NAMESPACE,
                               json_object_new_string(pw->policy_namespace));
        json_object_object_add(meta, "labels", l);
}

static void apply_copy(world *w, const plan_write *pw) {
        json_object *src = world_json(w, K_SECRET, pw->copy.source_namespace, pw->copy.source_name);
        assert_non_null(src);
        json_object *j = json_object_new_object(), *meta = json_object_new_object(), *v = NULL;
        json_object_object_add(meta, "name", json_object_new_string(pw->name));
        json_object_object_add(meta, "namespace", json_object_new_string(pw->namespace));
        obj *cur = world_find(w, K_SECRET, pw->namespace, pw->name);
        if (pw->kind == PLAN_COPY_CREATE) {
                assert_null(cur);
        } else {
                assert_non_null(cur);
                assert_string_equal(jstr(cur->json, "metadata", "resourceVersion"),
                                    pw->resource_version);
                json_object_object_add(meta, "uid",
                                       json_object_new_string(jstr(cur->json, "metadata", "uid")));
        }
        set_meta_labels(meta, pw);
        json_object_object_add(j, "metadata", meta);
        json_object_object_get_ex(src, "type", &v);
        json_object_object_add(j, "type", json_object_get(v));
        json_object_object_get_ex(src, "data", &v);
        json_object *data = NULL;
        assert_int_equal(json_object_deep_copy(v, &data, NULL), 0);
        json_object_object_add(j, "data", data);
        world_put(w, K_SECRET, j);
}

static void apply_sa(world *w, const plan_write *pw) {
        obj *o = world_find(w, K_SA, pw->namespace, pw->name);
        assert_non_null(o);
        /* read-modify-write: on a changed SA the apply step re-plans the edit (R9) */
        const plan_sa_desired *d = &pw->sa.desired;
        plan_sa_desired fresh = {0};
        if (!streq(jstr(o->json, "metadata", "resourceVersion"), pw->resource_version)) {
                assert_int_equal(plan_sa_edit(o->model, "", NULL, 0, &fresh), -EINVAL);
                char *key = NULL;
                assert_int_equal(names_policy_key(pw->policy_namespace, pw->policy_name, &key), 0);
                assert_int_equal(plan_sa_edit(o->model, key, pw->sa.want, pw->sa.n_want, &fresh),
                                 0);
                free(key);
                d = &fresh;
        }
        json_object *j = NULL;
        assert_int_equal(json_object_deep_copy(o->json, &j, NULL), 0);
        assert_int_equal(plan_sa_desired_apply_json(j, d), 0);
        plan_sa_desired_done(&fresh);
        world_put(w, K_SA, j);
}

static void apply_global(world *w, const plan_write *pw) {
        obj *g = world_find(w, K_SECRET, pw->namespace, pw->name);
        assert_non_null(g);
        assert_string_equal(jstr(g->json, "metadata", "resourceVersion"), pw->resource_version);
        json_object *auths = NULL;
        assert_int_equal(model_secret_payload_auths(g->json, &auths, NULL), 0);
        for (size_t i = 0; i < pw->global.desired.n_ops; i++) {
                const plan_global_op *op = &pw->global.desired.ops[i];
                if (op->kind == PLAN_GLOBAL_REMOVE) {
                        json_object_object_del(auths, op->registry);
                        continue;
                }
                json_object *src = world_json(w, K_SECRET, pw->global.source_namespace, op->source);
                json_object *sa = NULL, *e = NULL;
                assert_int_equal(model_secret_payload_auths(src, &sa, NULL), 0);
                assert_true(json_object_object_get_ex(sa, op->registry, &e));
                json_object_object_add(auths, op->registry, json_object_get(e));
                json_object_put(sa);
        }
        json_object *root = json_object_new_object();
        json_object_object_add(root, "auths", auths);
        size_t len = 0;
        const char *txt = json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN, &len);
        char *e = b64(txt, len);
        json_object *j = NULL;
        assert_int_equal(json_object_deep_copy(g->json, &j, NULL), 0);
        json_object *data = NULL, *meta = NULL, *ann = NULL;
        json_object_object_get_ex(j, "data", &data);
        json_object_object_add(data, ".dockerconfigjson", json_object_new_string(e));
        json_object_object_get_ex(j, "metadata", &meta);
        if (!json_object_object_get_ex(meta, "annotations", &ann)) {
                ann = json_object_new_object();
                json_object_object_add(meta, "annotations", ann);
        }
        if (pw->global.desired.merged)
                json_object_object_add(ann, NAMES_ANNOTATION_MERGED,
                                       json_object_new_string(pw->global.desired.merged));
        else
                json_object_object_del(ann, NAMES_ANNOTATION_MERGED);
        free(e);
        json_object_put(root);
        world_put(w, K_SECRET, j);
}

static void apply_finalizer(world *w, const plan_write *pw, bool add) {
        json_object *j = NULL;
        assert_int_equal(
            json_object_deep_copy(world_json(w, K_POLICY, pw->namespace, pw->name), &j, NULL), 0);
        json_object *meta = NULL;
        json_object_object_get_ex(j, "metadata", &meta);
        if (add) {
                json_object *f = json_object_new_array();
                json_object_array_add(f, json_object_new_string(NAMES_FINALIZER));
                json_object_object_add(meta, "finalizers", f);
                world_put(w, K_POLICY, j);
        } else {
                json_object_put(j);
                /* the last finalizer gone: the apiserver deletes the object */
                assert_true(world_del(w, K_POLICY, pw->namespace, pw->name));
        }
}

static void apply_status(world *w, const char *ns, const char *name, const plan *pl) {
        json_object *j = NULL;
        assert_int_equal(json_object_deep_copy(world_json(w, K_POLICY, ns, name), &j, NULL), 0);
        const plan_status *s = &pl->status;
        json_object *st = json_object_new_object(), *conds = json_object_new_array(),
                    *c = json_object_new_object(), *probs = json_object_new_array();
        json_object_object_add(st, "observedGeneration",
                               json_object_new_int64(s->observed_generation));
        json_object_object_add(c, "type", json_object_new_string("Ready"));
        json_object_object_add(c, "status", json_object_new_string(s->ready_status));
        json_object_object_add(c, "reason", json_object_new_string(s->ready_reason));
        json_object_object_add(c, "message", json_object_new_string(s->ready_message));
        json_object_object_add(c, "observedGeneration",
                               json_object_new_int64(s->observed_generation));
        json_object_object_add(c, "lastTransitionTime",
                               json_object_new_string(s->ready_last_transition));
        json_object_array_add(conds, c);
        json_object_object_add(st, "conditions", conds);
        json_object_object_add(st, "namespaces", json_object_new_int(s->namespaces));
        json_object_object_add(st, "roleBindings", json_object_new_int(s->role_bindings));
        json_object_object_add(st, "linkedServiceAccounts", json_object_new_int(s->linked));
        json_object_object_add(st, "waitingServiceAccounts", json_object_new_int(s->waiting));
        if (s->dockercfg_form)
                json_object_object_add(st, "dockercfgForm",
                                       json_object_new_string(s->dockercfg_form));
        for (size_t i = 0; i < s->n_problems; i++) {
                const model_problem *p = &s->problems[i];
                json_object *o = json_object_new_object();
                if (p->namespace)
                        json_object_object_add(o, "namespace",
                                               json_object_new_string(p->namespace));
                if (p->name) json_object_object_add(o, "name", json_object_new_string(p->name));
                json_object_object_add(o, "reason", json_object_new_string(p->reason));
                json_object_object_add(o, "message", json_object_new_string(p->message));
                json_object_array_add(probs, o);
        }
        if (s->n_problems)
                json_object_object_add(st, "problems", probs);
        else
                json_object_put(probs);
        json_object_object_add(j, "status", st);
        world_put(w, K_POLICY, j);
}

/* Runs the writes in order, then writes the status if it changed. */
static void world_apply(world *w, const char *ns, const char *name, const plan *pl) {
        for (size_t i = 0; i < pl->n_writes; i++) {
                const plan_write *pw = &pl->writes[i];
                switch (pw->kind) {
                case PLAN_ADD_FINALIZER:
                        apply_finalizer(w, pw, true);
                        break;
                case PLAN_REMOVE_FINALIZER:
                        apply_finalizer(w, pw, false);
                        return;
                case PLAN_RB_CREATE:
                case PLAN_RB_UPDATE: {
                        json_object *j = NULL;
                        assert_int_equal(plan_role_binding_json(pw, &j), 0);
                        if (pw->kind == PLAN_RB_CREATE)
                                assert_null(world_find(w, K_RB, pw->namespace, pw->name));
                        else
                                assert_string_equal(
                                    jstr(world_json(w, K_RB, pw->namespace, pw->name), "metadata",
                                         "resourceVersion"),
                                    pw->resource_version);
                        world_put(w, K_RB, j);
                        break;
                }
                case PLAN_RB_DELETE:
                        assert_true(world_del(w, K_RB, pw->namespace, pw->name));
                        break;
                case PLAN_COPY_CREATE:
                case PLAN_COPY_UPDATE:
                        apply_copy(w, pw);
                        break;
                case PLAN_COPY_DELETE:
                        assert_true(world_del(w, K_SECRET, pw->namespace, pw->name));
                        break;
                case PLAN_SA_EDIT:
                        apply_sa(w, pw);
                        break;
                case PLAN_GLOBAL_EDIT:
                        apply_global(w, pw);
                        break;
                }
        }
        if (pl->has_status && pl->status_changed) apply_status(w, ns, name, pl);
}

/* Plans and applies until nothing changes; the last plan is empty (R10). */
static int converge(world *w, const char *ns, const char *name) {
        for (int round = 1; round <= 8; round++) {
                plan *pl = world_plan(w, ns, name);
                bool quiet = pl->n_writes == 0 && !pl->status_changed;
                if (quiet) {
                        /* a steady state repeats no event either */
                        if (pl->n_events)
                                fail_msg("converged plan has event %s: %s", pl->events[0].reason,
                                         pl->events[0].message);
                        plan_free(pl);
                        return round;
                }
                world_apply(w, ns, name, pl);
                bool gone = !world_find(w, K_POLICY, ns, name);
                plan_free(pl);
                if (gone) return round;
        }
        fail_msg("no convergence after 8 rounds");
        return -1;
}

static size_t count_writes(const plan *pl, plan_write_kind k) {
        size_t n = 0;
        for (size_t i = 0; i < pl->n_writes; i++) n += pl->writes[i].kind == k;
        return n;
}

static const plan_write *find_write(const plan *pl, plan_write_kind k, const char *ns,
                                    const char *name) {
        for (size_t i = 0; i < pl->n_writes; i++)
                if (pl->writes[i].kind == k && streq_ptr(pl->writes[i].namespace, ns) &&
                    streq(pl->writes[i].name, name))
                        return &pl->writes[i];
        return NULL;
}

static const plan_event *find_event(const plan *pl, const char *reason) {
        for (size_t i = 0; i < pl->n_events; i++)
                if (streq(pl->events[i].reason, reason)) return &pl->events[i];
        return NULL;
}

static const model_problem *find_problem(const plan *pl, const char *reason) {
        for (size_t i = 0; i < pl->status.n_problems; i++)
                if (streq(pl->status.problems[i].reason, reason)) return &pl->status.problems[i];
        return NULL;
}

static const model_policy_status *pstatus(world *w, const char *ns, const char *name) {
        const model_policy *p = world_model(w, K_POLICY, ns, name);
        assert_non_null(p);
        return &p->status;
}

static const model_sa *get_sa(world *w, const char *ns, const char *name) {
        const model_sa *sa = world_model(w, K_SA, ns, name);
        assert_non_null(sa);
        return sa;
}

static int count_in(char *const *v, size_t n, const char *s) {
        int c = 0;
        for (size_t i = 0; i < n; i++) c += streq(v[i], s);
        return c;
}

#define PULLS(w, ns, sa, s)                                                                        \
        count_in(get_sa(w, ns, sa)->pull_secrets, get_sa(w, ns, sa)->n_pull_secrets, s)
#define MOUNTS(w, ns, sa, s) count_in(get_sa(w, ns, sa)->secrets, get_sa(w, ns, sa)->n_secrets, s)

/* names_role_binding(policy, ns), valid until eight more calls. */
static const char *rbn(const char *policy, const char *ns) {
        static char ring[8][NAMES_OBJECT_MAX + 1];
        static unsigned next;
        char *n = NULL;
        assert_int_equal(names_role_binding(policy, ns, &n), 0);
        char *slot = ring[next++ % ARRAY_SIZE(ring)];
        snprintf(slot, NAMES_OBJECT_MAX + 1, "%s", n);
        free(n);
        return slot;
}

static const char *QUAY = "{\"quay.io\":{\"auth\":\"cXVheTpvbmU=\"}}";

/* ---- finalizer, invalid spec --------------------------------------------------------- */

static void test_finalizer_added_first(void **state) {
        world *w = *state;
        ns_add(w, "project-b", NULL);
        policy_add(w, "project-b", "p", "{\"imagePuller\":{}}", false);
        plan *pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 1);
        assert_int_equal(pl->writes[0].kind, PLAN_ADD_FINALIZER);
        assert_string_equal(pl->writes[0].name, "p");
        assert_false(pl->has_status);
        plan_free(pl);
        assert_int_equal(converge(w, "project-b", "p"), 3);
        const model_policy *p = world_model(w, K_POLICY, "project-b", "p");
        assert_true(kube_meta_has_finalizer(&p->meta, NAMES_FINALIZER));
        assert_non_null(world_find(w, K_RB, "project-b", rbn("p", "project-b")));
}

static void test_invalid_spec(void **state) {
        world *w = *state;
        ns_add(w, "project-b", NULL);
        policy_add(w, "project-b", "p",
                   "{\"imagePuller\":{},\"pullSecrets\":[{\"name\":\"x\"},{\"name\":\"x\"}]}",
                   true);
        plan *pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 0);
        assert_true(pl->status_changed);
        assert_string_equal(pl->status.ready_status, "False");
        assert_string_equal(pl->status.ready_reason, "InvalidSpec");
        assert_string_equal(pl->status.ready_message,
                            "spec.pullSecrets: each secret name may appear only once (\"x\")");
        assert_non_null(find_event(pl, "InvalidSpec"));
        assert_true(find_event(pl, "InvalidSpec")->warning);
        assert_string_equal(pl->status.ready_last_transition, "2027-01-15T08:00:00Z");
        world_apply(w, "project-b", "p", pl);
        plan_free(pl);
        /* stored: no write, no event the next time */
        assert_int_equal(converge(w, "project-b", "p"), 1);
        /* an InvalidSpec never touches what exists */
        assert_int_equal(w->n, 2);
}

static void test_invalid_spec_keeps_existing_objects(void **state) {
        world *w = *state;
        ns_add(w, "project-b", NULL);
        policy_add(w, "project-b", "p", "{\"imagePuller\":{}}", true);
        converge(w, "project-b", "p");
        assert_non_null(world_find(w, K_RB, "project-b", rbn("p", "project-b")));
        /* a stored object that predates the schema */
        policy_set_spec(w, "project-b", "p", "{\"imagePuller\":{\"clusterRole\":\"a/b\"}}");
        plan *pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 0);
        assert_string_equal(pl->status.ready_reason, "InvalidSpec");
        assert_non_null(strstr(pl->status.ready_message, "not a valid ClusterRole name"));
        plan_free(pl);
}

/* ---- R1/R2 ------------------------------------------------------------------------ */

static void test_home_group_binding(void **state) {
        world *w = *state;
        ns_add(w, "project-b", NULL);
        policy_add(w, "project-b", "p", "{\"imagePuller\":{}}", true);
        plan *pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 1);
        const plan_write *pw = find_write(pl, PLAN_RB_CREATE, "project-b", rbn("p", "project-b"));
        assert_non_null(pw);
        assert_string_equal(pw->rb.role_name, "system:image-puller");
        assert_int_equal(pw->rb.n_subjects, 1);
        assert_string_equal(pw->rb.subjects[0].kind, "Group");
        assert_string_equal(pw->rb.subjects[0].name, "system:serviceaccounts:project-b");
        assert_string_equal(pw->rb.subjects[0].api_group, "rbac.authorization.k8s.io");
        assert_non_null(find_event(pl, "RoleBindingCreated"));
        assert_string_equal(pl->status.ready_status, "True");
        assert_string_equal(pl->status.ready_reason, "Applied");
        assert_int_equal(pl->status.namespaces, 1);
        assert_int_equal(pl->status.role_bindings, 1);

        /* the JSON the apply step sends */
        json_object *j = NULL;
        assert_int_equal(plan_role_binding_json(pw, &j), 0);
        assert_string_equal(jstr(j, "roleRef", "kind"), "ClusterRole");
        assert_string_equal(jstr(j, "kind", NULL), "RoleBinding");
        json_object *meta = NULL, *labels = NULL, *owners = NULL;
        json_object_object_get_ex(j, "metadata", &meta);
        json_object_object_get_ex(meta, "labels", &labels);
        assert_string_equal(jstr(labels, NAMES_LABEL_MANAGED_BY, NULL), "pullpolicy-controller");
        assert_string_equal(jstr(labels, NAMES_LABEL_POLICY, NULL), "p");
        assert_string_equal(jstr(labels, NAMES_LABEL_POLICY_NAMESPACE, NULL), "project-b");
        assert_true(json_object_object_get_ex(meta, "ownerReferences", &owners));
        json_object *o0 = json_object_array_get_idx(owners, 0), *ctl = NULL;
        assert_string_equal(jstr(o0, "kind", NULL), "PullPolicy");
        assert_true(json_object_object_get_ex(o0, "controller", &ctl) &&
                    json_object_get_boolean(ctl));
        assert_null(jstr(meta, "resourceVersion", NULL));
        json_object_put(j);
        plan_free(pl);

        assert_int_equal(converge(w, "project-b", "p"), 2);
        const model_policy_status *st = pstatus(w, "project-b", "p");
        assert_string_equal(st->ready_reason, "Applied");
        assert_string_equal(st->ready_message,
                            "1 namespaces, 1 role bindings, 0 service accounts linked");
}

static void test_seed_add_role_to_user(void **state) {
        /* oc policy add-role-to-user system:image-puller system:serviceaccount:project-a:default */
        world *w = *state;
        ns_add(w, "project-a", NULL);
        ns_add(w, "project-b", NULL);
        sa_simple(w, "project-a", "builder");
        policy_add(
            w, "project-b", "p",
            "{\"subjects\":{\"namespaces\":[\"project-a\"],\"serviceAccounts\":[\"default\"]},"
            "\"imagePuller\":{}}",
            true);
        plan *pl = world_plan(w, "project-b", "p");
        const plan_write *pw = find_write(pl, PLAN_RB_CREATE, "project-b", rbn("p", "project-a"));
        assert_non_null(pw);
        /* the listed account counts even before it exists; builder is not listed */
        assert_int_equal(pw->rb.n_subjects, 1);
        assert_string_equal(pw->rb.subjects[0].kind, "ServiceAccount");
        assert_string_equal(pw->rb.subjects[0].name, "default");
        assert_string_equal(pw->rb.subjects[0].namespace, "project-a");
        assert_null(pw->rb.subjects[0].api_group);
        assert_int_equal(pl->n_writes, 1); /* nothing for the home */
        plan_free(pl);
        converge(w, "project-b", "p");
}

static void test_subjects_names_and_selector_union(void **state) {
        world *w = *state;
        ns_add(w, "project-a", "{\"team\":\"a\"}");
        ns_add(w, "project-c", "{\"team\":\"a\"}");
        ns_add(w, "project-d", "{\"team\":\"d\"}");
        ns_add(w, "project-b", NULL);
        sa_add(w, "project-a", "puller", "{\"pulls\":\"true\"}", NULL, NULL, NOW, NULL);
        sa_add(w, "project-a", "other", "{\"pulls\":\"false\"}", NULL, NULL, NOW, NULL);
        policy_add(w, "project-b", "p",
                   "{\"subjects\":{\"namespaces\":[\"project-d\",\"missing\"],"
                   "\"namespaceSelector\":{\"matchLabels\":{\"team\":\"a\"}},"
                   "\"serviceAccounts\":[\"zz-listed\"],"
                   "\"serviceAccountSelector\":{\"matchLabels\":{\"pulls\":\"true\"}}},"
                   "\"imagePuller\":{}}",
                   true);
        plan *pl = world_plan(w, "project-b", "p");
        assert_int_equal(count_writes(pl, PLAN_RB_CREATE), 3); /* a, c, d; not the home */
        const plan_write *a = find_write(pl, PLAN_RB_CREATE, "project-b", rbn("p", "project-a"));
        assert_non_null(a);
        assert_int_equal(a->rb.n_subjects, 2);
        assert_string_equal(a->rb.subjects[0].name, "puller"); /* sorted */
        assert_string_equal(a->rb.subjects[1].name, "zz-listed");
        const plan_write *d = find_write(pl, PLAN_RB_CREATE, "project-b", rbn("p", "project-d"));
        assert_int_equal(d->rb.n_subjects, 1);
        assert_string_equal(d->rb.subjects[0].name, "zz-listed");
        assert_int_equal(pl->status.namespaces, 3);
        plan_free(pl);
        converge(w, "project-b", "p");

        /* a relabelled SA joins the binding through an update */
        set_labels(w, K_SA, "project-a", "other", "{\"pulls\":\"true\"}");
        pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 1);
        const plan_write *u = find_write(pl, PLAN_RB_UPDATE, "project-b", rbn("p", "project-a"));
        assert_non_null(u);
        assert_int_equal(u->rb.n_subjects, 3);
        assert_non_null(u->resource_version);
        json_object *uj = NULL;
        assert_int_equal(plan_role_binding_json(u, &uj), 0);
        assert_string_equal(jstr(uj, "metadata", "resourceVersion"), u->resource_version);
        json_object_put(uj);
        plan_write not_rb = {.kind = PLAN_SA_EDIT};
        assert_int_equal(plan_role_binding_json(&not_rb, &uj), -EINVAL);
        plan_free(pl);
        converge(w, "project-b", "p");
}

static void test_empty_selector_means_group(void **state) {
        world *w = *state;
        ns_add(w, "project-a", NULL);
        ns_add(w, "project-b", NULL);
        policy_add(w, "project-b", "p",
                   "{\"subjects\":{\"namespaces\":[\"project-a\"],\"serviceAccountSelector\":{},"
                   "\"serviceAccounts\":[\"x\"]},\"imagePuller\":{}}",
                   true);
        plan *pl = world_plan(w, "project-b", "p");
        const plan_write *pw = find_write(pl, PLAN_RB_CREATE, "project-b", rbn("p", "project-a"));
        assert_int_equal(pw->rb.n_subjects, 1);
        assert_string_equal(pw->rb.subjects[0].kind, "Group");
        plan_free(pl);

        /* all SAs -> names only: the group becomes ServiceAccount subjects */
        converge(w, "project-b", "p");
        policy_set_spec(
            w, "project-b", "p",
            "{\"subjects\":{\"namespaces\":[\"project-a\"],\"serviceAccounts\":[\"x\"]},"
            "\"imagePuller\":{}}");
        pl = world_plan(w, "project-b", "p");
        pw = find_write(pl, PLAN_RB_UPDATE, "project-b", rbn("p", "project-a"));
        assert_non_null(pw);
        assert_string_equal(pw->rb.subjects[0].kind, "ServiceAccount");
        plan_free(pl);
        converge(w, "project-b", "p");
}

static void test_namespace_leaving_selector(void **state) {
        world *w = *state;
        w->dist[0] = "project-b";
        ns_add(w, "project-b", NULL);
        ns_add(w, "project-a", "{\"team\":\"a\"}");
        ns_add(w, "project-c", "{\"team\":\"a\"}");
        sa_simple(w, "project-a", "default");
        sa_simple(w, "project-c", "default");
        secret_add(w, "project-b", "quay-creds", QUAY, NULL);
        policy_add(w, "project-b", "p",
                   "{\"subjects\":{\"namespaceSelector\":{\"matchLabels\":{\"team\":\"a\"}}},"
                   "\"imagePuller\":{},\"pullSecrets\":[{\"name\":\"quay-creds\"}],"
                   "\"dockercfg\":{\"wait\":\"Never\"}}",
                   true);
        converge(w, "project-b", "p");
        assert_non_null(world_find(w, K_RB, "project-b", rbn("p", "project-c")));
        assert_non_null(world_find(w, K_SECRET, "project-c", "quay-creds"));
        assert_int_equal(PULLS(w, "project-c", "default", "quay-creds"), 1);
        assert_int_equal(pstatus(w, "project-b", "p")->namespaces, 2);
        assert_int_equal(pstatus(w, "project-b", "p")->linked, 2);

        set_labels(w, K_NS, NULL, "project-c", "{\"team\":\"c\"}");
        plan *pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 3);
        assert_non_null(find_write(pl, PLAN_RB_DELETE, "project-b", rbn("p", "project-c")));
        /* the link goes before the copy it points to */
        assert_int_equal(pl->writes[1].kind, PLAN_SA_EDIT);
        assert_string_equal(pl->writes[1].namespace, "project-c");
        assert_int_equal(pl->writes[2].kind, PLAN_COPY_DELETE);
        assert_string_equal(pl->writes[2].namespace, "project-c");
        assert_non_null(find_event(pl, "Unlinked"));
        plan_free(pl);
        converge(w, "project-b", "p");
        assert_null(world_find(w, K_RB, "project-b", rbn("p", "project-c")));
        assert_null(world_find(w, K_SECRET, "project-c", "quay-creds"));
        assert_int_equal(PULLS(w, "project-c", "default", "quay-creds"), 0);
        assert_null(
            kube_meta_annotation(&get_sa(w, "project-c", "default")->meta, NAMES_ANNOTATION_LINKS));
        assert_non_null(world_find(w, K_RB, "project-b", rbn("p", "project-a")));
        assert_int_equal(pstatus(w, "project-b", "p")->namespaces, 1);
}

static void test_terminating_namespace_excluded(void **state) {
        world *w = *state;
        ns_add(w, "project-b", NULL);
        ns_add(w, "project-a", "{\"team\":\"a\"}");
        world_put_str(w, K_NS,
                      "{\"metadata\":{\"name\":\"old\",\"labels\":{\"team\":\"a\"},"
                      "\"deletionTimestamp\":\"2026-01-01T00:00:00Z\"},"
                      "\"status\":{\"phase\":\"Terminating\"}}");
        policy_add(w, "project-b", "p",
                   "{\"subjects\":{\"namespaces\":[\"old\"],"
                   "\"namespaceSelector\":{\"matchLabels\":{\"team\":\"a\"}}},\"imagePuller\":{}}",
                   true);
        plan *pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 1);
        assert_non_null(find_write(pl, PLAN_RB_CREATE, "project-b", rbn("p", "project-a")));
        assert_int_equal(pl->status.namespaces, 1);
        plan_free(pl);
        converge(w, "project-b", "p");
        /* a namespace that starts terminating loses its binding */
        json_object *j = json_object_get(world_json(w, K_NS, NULL, "project-a"));
        json_object *st = json_object_new_object();
        json_object_object_add(st, "phase", json_object_new_string("Terminating"));
        json_object_object_add(j, "status", st);
        world_put(w, K_NS, j);
        pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 1);
        assert_non_null(find_write(pl, PLAN_RB_DELETE, "project-b", rbn("p", "project-a")));
        plan_free(pl);
}

static void test_role_not_allowed(void **state) {
        world *w = *state;
        ns_add(w, "project-b", NULL);
        policy_add(w, "project-b", "p", "{\"imagePuller\":{}}", true);
        converge(w, "project-b", "p");
        assert_non_null(world_find(w, K_RB, "project-b", rbn("p", "project-b")));

        policy_set_spec(w, "project-b", "p", "{\"imagePuller\":{\"clusterRole\":\"admin\"}}");
        plan *pl = world_plan(w, "project-b", "p");
        /* no binding to a role off the list; the old one is revoked */
        assert_int_equal(count_writes(pl, PLAN_RB_CREATE), 0);
        assert_non_null(find_write(pl, PLAN_RB_DELETE, "project-b", rbn("p", "project-b")));
        assert_string_equal(pl->status.ready_status, "False");
        assert_string_equal(pl->status.ready_reason, "RoleNotAllowed");
        assert_string_equal(pl->status.ready_message,
                            "ClusterRole admin is not on the controller's allowed list");
        assert_int_equal(pl->status.role_bindings, 0);
        assert_non_null(find_event(pl, "RoleNotAllowed"));
        plan_free(pl);
        converge(w, "project-b", "p");
        assert_string_equal(pstatus(w, "project-b", "p")->ready_reason, "RoleNotAllowed");
        assert_int_equal(pstatus(w, "project-b", "p")->observed_generation, 2);
}

static void test_role_change_replaces_binding(void **state) {
        world *w = *state;
        w->allowed[1] = "registry-viewer";
        w->set.n_allowed_cluster_roles = 2;
        ns_add(w, "project-b", NULL);
        policy_add(w, "project-b", "p", "{\"imagePuller\":{}}", true);
        converge(w, "project-b", "p");
        policy_set_spec(w, "project-b", "p",
                        "{\"imagePuller\":{\"clusterRole\":\"registry-viewer\"}}");
        plan *pl = world_plan(w, "project-b", "p");
        /* roleRef is immutable: delete, then create */
        assert_int_equal(pl->n_writes, 2);
        assert_int_equal(pl->writes[0].kind, PLAN_RB_DELETE);
        assert_int_equal(pl->writes[1].kind, PLAN_RB_CREATE);
        assert_string_equal(pl->writes[1].rb.role_name, "registry-viewer");
        plan_free(pl);
        converge(w, "project-b", "p");
}

static void test_foreign_role_binding_conflict(void **state) {
        world *w = *state;
        ns_add(w, "project-b", NULL);
        char *j = NULL;
        assert_true(asprintf(&j,
                             "{\"metadata\":{\"name\":\"%s\",\"namespace\":"
                             "\"project-b\"},\"roleRef\":{\"apiGroup\":"
                             "\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":"
                             "\"admin\"}}",
                             rbn("p", "project-b")) > 0);
        world_put_str(w, K_RB, j);
        free(j);
        policy_add(w, "project-b", "p", "{\"imagePuller\":{}}", true);
        plan *pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 0);
        assert_string_equal(pl->status.ready_reason, "Conflict");
        assert_non_null(find_event(pl, "Conflict"));
        plan_free(pl);
        converge(w, "project-b", "p");
        /* never touched */
        assert_string_equal(
            ((model_role_binding *)world_model(w, K_RB, "project-b", rbn("p", "project-b")))
                ->role_name,
            "admin");
}

static void test_long_names(void **state) {
        world *w = *state;
        char pname[254], nsname[64];
        memset(pname, 'p', 253);
        pname[253] = 0;
        memset(nsname, 'n', 63);
        nsname[63] = 0;
        ns_add(w, nsname, NULL);
        policy_add(w, nsname, pname, "{\"imagePuller\":{}}", true);
        plan *pl = world_plan(w, nsname, pname);
        assert_int_equal(pl->n_writes, 1);
        const plan_write *pw = &pl->writes[0];
        assert_int_equal(pw->kind, PLAN_RB_CREATE);
        assert_int_equal(strlen(pw->name), 253);
        char *want = NULL;
        assert_int_equal(names_role_binding(pname, nsname, &want), 0);
        assert_string_equal(pw->name, want);
        free(want);
        plan_free(pl);
        assert_int_equal(converge(w, nsname, pname), 2);
}

static size_t count_kind(world *w, kind k, const char *ns) {
        size_t n = 0;
        for (size_t i = 0; i < w->n; i++)
                n += w->objs[i].k == k &&
                     streq_ptr(jstr(w->objs[i].json, "metadata", "namespace"), ns);
        return n;
}

/*
 * Issue 7 item 4: policy a for namespace b-c and policy a-b for namespace c once shared the
 * RoleBinding name ppol-a-b-c, so the second policy got a Conflict and no binding.
 */
static void test_role_binding_names_do_not_collide(void **state) {
        world *w = *state;
        ns_add(w, "h", NULL);
        ns_add(w, "b-c", NULL);
        ns_add(w, "c", NULL);
        policy_add(w, "h", "a", "{\"imagePuller\":{},\"subjects\":{\"namespaces\":[\"b-c\"]}}",
                   true);
        policy_add(w, "h", "a-b", "{\"imagePuller\":{},\"subjects\":{\"namespaces\":[\"c\"]}}",
                   true);
        converge(w, "h", "a");
        converge(w, "h", "a-b");
        assert_string_equal(pstatus(w, "h", "a")->ready_reason, "Applied");
        assert_string_equal(pstatus(w, "h", "a-b")->ready_reason, "Applied");
        assert_int_equal(count_kind(w, K_RB, "h"), 2);
        for (size_t i = 0; i < w->n; i++) {
                if (w->objs[i].k != K_RB) continue;
                const model_role_binding *rb = w->objs[i].model;
                const char *sns = kube_kvs_get(&rb->meta.labels, NAMES_LABEL_SUBJECT_NAMESPACE);
                const char *pol = kube_kvs_get(&rb->meta.labels, NAMES_LABEL_POLICY);
                assert_non_null(sns);
                assert_string_equal(pol, streq(sns, "b-c") ? "a" : "a-b");
        }
}

/*
 * Issue 7 item 4, the upgrade: a binding an earlier version made under "ppol-<policy>-<ns>"
 * is replaced by one under the new name, created first (no moment without a binding), and
 * the old one deleted; exactly one binding is left.
 */
static void test_role_binding_legacy_name_replaced(void **state) {
        world *w = *state;
        ns_add(w, "project-b", NULL);
        policy_add(w, "project-b", "p", "{\"imagePuller\":{}}", true);
        const model_policy *p = world_model(w, K_POLICY, "project-b", "p");
        char *legacy = NULL, *j = NULL;
        assert_true(asprintf(&legacy, "ppol-%s-%s", "p", "project-b") > 0);
        assert_true(
            asprintf(
                &j,
                "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"project-b\","
                "\"labels\":{\"" NAMES_LABEL_MANAGED_BY "\":\"" NAMES_MANAGED_BY_VALUE
                "\",\"" NAMES_LABEL_POLICY "\":\"p\",\"" NAMES_LABEL_POLICY_NAMESPACE
                "\":\"project-b\"},\"ownerReferences\":[{\"apiVersion\":\"" NAMES_POLICY_API_VERSION
                "\",\"kind\":\"PullPolicy\",\"name\":\"p\","
                "\"uid\":\"%s\",\"controller\":true}]},"
                "\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\","
                "\"kind\":\"ClusterRole\",\"name\":\"system:image-puller\"},"
                "\"subjects\":[{\"kind\":\"Group\",\"apiGroup\":"
                "\"rbac.authorization.k8s.io\",\"name\":"
                "\"system:serviceaccounts:project-b\"}]}",
                legacy, p->meta.uid) > 0);
        world_put_str(w, K_RB, j);
        free(j);
        char *now = NULL;
        assert_int_equal(names_role_binding("p", "project-b", &now), 0);
        plan *pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 2);
        assert_int_equal(pl->writes[0].kind, PLAN_RB_CREATE);
        assert_string_equal(pl->writes[0].name, now);
        assert_int_equal(pl->writes[1].kind, PLAN_RB_DELETE);
        assert_string_equal(pl->writes[1].name, legacy);
        /* the apply skips this delete when the create for the namespace failed */
        assert_string_equal(pl->writes[1].rb.subject_namespace, "project-b");
        assert_int_equal(pl->status.role_bindings, 1);
        plan_free(pl);
        converge(w, "project-b", "p");
        assert_int_equal(count_kind(w, K_RB, "project-b"), 1);
        assert_non_null(world_find(w, K_RB, "project-b", now));

        /* while the new name is held by someone else, the old binding stays */
        assert_true(world_del(w, K_RB, "project-b", now));
        assert_true(asprintf(&j,
                             "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"project-b\"},"
                             "\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\","
                             "\"kind\":\"ClusterRole\",\"name\":\"admin\"}}",
                             now) > 0);
        world_put_str(w, K_RB, j);
        free(j);
        assert_true(asprintf(&j,
                             "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"project-b\","
                             "\"labels\":{\"" NAMES_LABEL_MANAGED_BY "\":\"" NAMES_MANAGED_BY_VALUE
                             "\",\"" NAMES_LABEL_POLICY "\":\"p\",\"" NAMES_LABEL_POLICY_NAMESPACE
                             "\":\"project-b\"}},"
                             "\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\","
                             "\"kind\":\"ClusterRole\",\"name\":\"system:image-puller\"}}",
                             legacy) > 0);
        world_put_str(w, K_RB, j);
        free(j);
        pl = world_plan(w, "project-b", "p");
        assert_null(find_write(pl, PLAN_RB_DELETE, "project-b", legacy));
        assert_string_equal(pl->status.ready_reason, "Conflict");
        plan_free(pl);
        free(now);
        free(legacy);
}

/* ---- R3: links ------------------------------------------------------------------------ */

static void test_link_basic_and_converged(void **state) {
        world *w = *state;
        ns_add(w, "project-b", NULL);
        sa_add(w, "project-b", "default", NULL, "[\"default-token\"]", "[\"default-dockercfg-x\"]",
               NOW, NULL);
        sa_simple(w, "project-b", "other");
        secret_add(w, "project-b", "my-secret", QUAY, NULL);
        policy_add(w, "project-b", "p",
                   "{\"subjects\":{\"serviceAccounts\":[\"default\"]},"
                   "\"pullSecrets\":[{\"name\":\"my-secret\"}]}",
                   true);
        plan *pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 1);
        const plan_write *pw = find_write(pl, PLAN_SA_EDIT, "project-b", "default");
        assert_non_null(pw);
        const plan_sa_desired *d = &pw->sa.desired;
        assert_int_equal(d->n_pull_secrets, 2);
        assert_string_equal(d->pull_secrets[0], "default-dockercfg-x"); /* order kept */
        assert_string_equal(d->pull_secrets[1], "my-secret");
        assert_int_equal(d->n_secrets, 1); /* for: [pull] only */
        assert_string_equal(d->links, "{\"v\":1,\"links\":[{\"policy\":\"project-b/p\","
                                      "\"secret\":\"my-secret\",\"for\":[\"pull\"]}]}");
        assert_non_null(pw->resource_version);
        assert_true(pw->sa.patchable); /* plain lists: a merge patch from the cache will do */
        const plan_event *e = find_event(pl, "Linked");
        assert_non_null(e);
        assert_string_equal(e->message,
                            "linked secret my-secret to service account project-b/default "
                            "(imagePullSecrets)");
        assert_int_equal(pl->status.linked, 1);
        assert_string_equal(pl->status.ready_reason, "Applied");
        plan_free(pl);
        assert_int_equal(converge(w, "project-b", "p"), 2);
        assert_int_equal(PULLS(w, "project-b", "default", "my-secret"), 1);
        assert_int_equal(PULLS(w, "project-b", "other", "my-secret"), 0);

        /* R10 again after a "restart": the same caches give the same empty plan */
        pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 0);
        assert_false(pl->status_changed);
        assert_int_equal(pl->n_events, 0);
        assert_int_equal(pl->requeue_after, -1);
        plan_free(pl);
}

/* A write that did not happen leaves the status counts; objects already there stay counted. */
static void test_counts_without_undone_writes(void **state) {
        world *w = *state;
        ns_add(w, "project-b", NULL);
        sa_simple(w, "project-b", "default");
        /* linked already (by a person): counted whatever the writes do */
        sa_add(w, "project-b", "other", NULL, "[]", "[\"my-secret\"]", NOW, NULL);
        secret_add(w, "project-b", "my-secret", QUAY, NULL);
        policy_add(w, "project-b", "p",
                   "{\"imagePuller\":{},\"pullSecrets\":[{\"name\":\"my-secret\"}]}", true);
        plan *pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->status.role_bindings, 1);
        assert_int_equal(pl->status.linked, 2);
        assert_int_equal(pl->n_writes, 2);
        const plan_write *rb = find_write(pl, PLAN_RB_CREATE, "project-b", rbn("p", "project-b"));
        const plan_write *sa = find_write(pl, PLAN_SA_EDIT, "project-b", "default");
        assert_non_null(rb);
        assert_non_null(sa);
        assert_true(rb->counted);
        assert_true(sa->counted);
        plan_status_write_undone(pl, (size_t)(sa - pl->writes));
        assert_int_equal(pl->status.linked, 1);
        assert_int_equal(pl->status.role_bindings, 1);
        plan_status_write_undone(pl, (size_t)(rb - pl->writes));
        assert_int_equal(pl->status.role_bindings, 0);
        assert_int_equal(pl->status.linked, 1);
        plan_status_write_undone(pl, pl->n_writes); /* out of range: nothing */
        plan_status_write_undone(NULL, 0);
        assert_int_equal(pl->status.linked, 1);
        plan_free(pl);

        /* an edit of an account that stays linked (a secret it no longer needs goes) is
         * no link: it counts whether or not the edit is done */
        secret_add(w, "project-b", "second", QUAY, NULL);
        policy_set_spec(w, "project-b", "p",
                        "{\"pullSecrets\":[{\"name\":\"my-secret\"},{\"name\":\"second\"}]}");
        converge(w, "project-b", "p");
        assert_int_equal(PULLS(w, "project-b", "default", "second"), 1);
        policy_set_spec(w, "project-b", "p", "{\"pullSecrets\":[{\"name\":\"my-secret\"}]}");
        pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->status.linked, 2);
        assert_non_null(find_write(pl, PLAN_SA_EDIT, "project-b", "default"));
        for (size_t i = 0; i < pl->n_writes; i++) {
                assert_false(pl->writes[i].kind == PLAN_SA_EDIT && pl->writes[i].counted);
                plan_status_write_undone(pl, i);
        }
        assert_int_equal(pl->status.linked, 2);
        plan_free(pl);
}

static void test_link_for_mount_and_pull(void **state) {
        world *w = *state;
        ns_add(w, "project-b", NULL);
        sa_simple(w, "project-b", "default");
        secret_add(w, "project-b", "both", QUAY, NULL);
        secret_add(w, "project-b", "mount-only", QUAY, NULL);
        policy_add(w, "project-b", "p",
                   "{\"pullSecrets\":[{\"name\":\"both\",\"for\":[\"mount\",\"pull\"]},"
                   "{\"name\":\"mount-only\",\"for\":[\"mount\"]}]}",
                   true);
        converge(w, "project-b", "p");
        assert_int_equal(PULLS(w, "project-b", "default", "both"), 1);
        assert_int_equal(MOUNTS(w, "project-b", "default", "both"), 1);
        assert_int_equal(MOUNTS(w, "project-b", "default", "mount-only"), 1);
        assert_int_equal(PULLS(w, "project-b", "default", "mount-only"), 0);
        assert_string_equal(
            kube_meta_annotation(&get_sa(w, "project-b", "default")->meta, NAMES_ANNOTATION_LINKS),
            "{\"v\":1,\"links\":["
            "{\"policy\":\"project-b/p\",\"secret\":\"both\",\"for\":[\"pull\",\"mount\"]},"
            "{\"policy\":\"project-b/p\",\"secret\":\"mount-only\",\"for\":[\"mount\"]}]}");
        assert_int_equal(pstatus(w, "project-b", "p")->linked, 1);

        /* dropping mount from one secret removes just that list's link */
        policy_set_spec(w, "project-b", "p",
                        "{\"pullSecrets\":[{\"name\":\"both\"},{\"name\":\"mount-only\","
                        "\"for\":[\"mount\"]}]}");
        converge(w, "project-b", "p");
        assert_int_equal(PULLS(w, "project-b", "default", "both"), 1);
        assert_int_equal(MOUNTS(w, "project-b", "default", "both"), 0);
}

static void test_secret_not_found(void **state) {
        world *w = *state;
        ns_add(w, "project-b", NULL);
        sa_simple(w, "project-b", "default");
        policy_add(w, "project-b", "p", "{\"pullSecrets\":[{\"name\":\"nope\"}]}", true);
        plan *pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 0);
        assert_string_equal(pl->status.ready_reason, "SecretNotFound");
        assert_string_equal(pl->status.ready_message, "secret project-b/nope not found");
        const model_problem *p = find_problem(pl, "SecretNotFound");
        assert_non_null(p);
        assert_string_equal(p->namespace, "project-b");
        assert_string_equal(p->name, "nope");
        const plan_event *e = find_event(pl, "SecretNotFound");
        assert_non_null(e);
        assert_true(e->warning);
        plan_free(pl);
        /* stored: the next plans repeat neither the write nor the event */
        assert_int_equal(converge(w, "project-b", "p"), 2);
}

static void test_invalid_secret(void **state) {
        world *w = *state;
        ns_add(w, "project-b", NULL);
        sa_simple(w, "project-b", "default");
        secret_opaque(w, "project-b", "opaque");
        policy_add(w, "project-b", "p", "{\"pullSecrets\":[{\"name\":\"opaque\"}]}", true);
        plan *pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 0);
        assert_string_equal(pl->status.ready_reason, "InvalidSecret");
        assert_non_null(strstr(pl->status.ready_message,
                               "secret project-b/opaque cannot be used as "
                               "a pull secret: the type is neither"));
        plan_free(pl);
}

static void test_secret_deleted_and_recreated(void **state) {
        world *w = *state;
        w->dist[0] = "project-b";
        ns_add(w, "project-b", NULL);
        ns_add(w, "project-a", NULL);
        sa_simple(w, "project-b", "default");
        sa_simple(w, "project-a", "default");
        secret_add(w, "project-b", "quay-creds", QUAY, NULL);
        policy_add(w, "project-b", "p",
                   "{\"subjects\":{\"namespaces\":[\"project-a\",\"project-b\"]},"
                   "\"pullSecrets\":[{\"name\":\"quay-creds\"}]}",
                   true);
        converge(w, "project-b", "p");
        assert_int_equal(PULLS(w, "project-a", "default", "quay-creds"), 1);

        /* deleted: reported, but links and copies stay (no churn) */
        world_del(w, K_SECRET, "project-b", "quay-creds");
        plan *pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 0);
        assert_string_equal(pl->status.ready_reason, "SecretNotFound");
        plan_free(pl);
        converge(w, "project-b", "p");
        assert_int_equal(PULLS(w, "project-b", "default", "quay-creds"), 1);
        assert_non_null(world_find(w, K_SECRET, "project-a", "quay-creds"));

        /* re-created with new credentials: the copy follows, links need nothing */
        secret_add(w, "project-b", "quay-creds", "{\"quay.io\":{\"auth\":\"bmV3OmNyZWRz\"}}", NULL);
        pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 1);
        assert_non_null(find_write(pl, PLAN_COPY_UPDATE, "project-a", "quay-creds"));
        assert_string_equal(pl->status.ready_reason, "Applied");
        plan_free(pl);
        converge(w, "project-b", "p");
        const model_secret *a = world_model(w, K_SECRET, "project-a", "quay-creds"),
                           *b = world_model(w, K_SECRET, "project-b", "quay-creds");
        assert_true(a->content_hash == b->content_hash);
}

static void test_overlapping_policies_share_link(void **state) {
        world *w = *state;
        ns_add(w, "project-b", NULL);
        sa_simple(w, "project-b", "default");
        secret_add(w, "project-b", "quay-creds", QUAY, NULL);
        policy_add(w, "project-b", "p1", "{\"pullSecrets\":[{\"name\":\"quay-creds\"}]}", true);
        policy_add(w, "project-b", "p2",
                   "{\"subjects\":{\"serviceAccounts\":[\"default\"]},"
                   "\"pullSecrets\":[{\"name\":\"quay-creds\"}]}",
                   true);
        converge(w, "project-b", "p1");
        plan *pl = world_plan(w, "project-b", "p2");
        /* already there, made by the controller: p2 records its claim, adds no duplicate */
        assert_int_equal(pl->n_writes, 1);
        const plan_sa_desired *d = &pl->writes[0].sa.desired;
        assert_int_equal(d->n_added, 0);
        assert_int_equal(count_in(d->pull_secrets, d->n_pull_secrets, "quay-creds"), 1);
        assert_non_null(strstr(d->links, "project-b/p2"));
        assert_non_null(strstr(d->links, "project-b/p1"));
        assert_null(find_event(pl, "Linked"));
        plan_free(pl);
        converge(w, "project-b", "p2");
        assert_int_equal(PULLS(w, "project-b", "default", "quay-creds"), 1);

        /* p1 goes: the link the other policy recorded stays */
        policy_mark_deleting(w, "project-b", "p1");
        pl = world_plan(w, "project-b", "p1");
        assert_int_equal(pl->n_writes, 1);
        assert_int_equal(pl->writes[0].kind, PLAN_SA_EDIT);
        assert_int_equal(pl->writes[0].sa.desired.n_removed, 0);
        assert_false(pl->has_status);
        plan_free(pl);
        converge(w, "project-b", "p1");
        assert_null(world_find(w, K_POLICY, "project-b", "p1"));
        assert_int_equal(PULLS(w, "project-b", "default", "quay-creds"), 1);
        assert_string_equal(
            kube_meta_annotation(&get_sa(w, "project-b", "default")->meta, NAMES_ANNOTATION_LINKS),
            "{\"v\":1,\"links\":[{\"policy\":\"project-b/p2\","
            "\"secret\":\"quay-creds\",\"for\":[\"pull\"]}]}");
        assert_int_equal(converge(w, "project-b", "p2"), 1);

        /* and the last claim takes the link with it */
        policy_mark_deleting(w, "project-b", "p2");
        converge(w, "project-b", "p2");
        assert_int_equal(PULLS(w, "project-b", "default", "quay-creds"), 0);
        assert_null(
            kube_meta_annotation(&get_sa(w, "project-b", "default")->meta, NAMES_ANNOTATION_LINKS));
}

static void test_foreign_link_survives_cleanup(void **state) {
        world *w = *state;
        ns_add(w, "project-b", NULL);
        /* `oc secrets link default quay-creds --for=pull` by a person, and OpenShift's own */
        sa_add(w, "project-b", "default", NULL, "[\"default-dockercfg-x\"]",
               "[\"default-dockercfg-x\",\"quay-creds\"]", NOW, NULL);
        secret_add(w, "project-b", "quay-creds", QUAY, NULL);
        policy_add(w, "project-b", "p", "{\"pullSecrets\":[{\"name\":\"quay-creds\"}]}", true);
        plan *pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 0); /* served already, not ours to record */
        assert_int_equal(pl->status.linked, 1);
        plan_free(pl);
        converge(w, "project-b", "p");
        policy_mark_deleting(w, "project-b", "p");
        pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 1);
        assert_int_equal(pl->writes[0].kind, PLAN_REMOVE_FINALIZER);
        plan_free(pl);
        converge(w, "project-b", "p");
        assert_int_equal(PULLS(w, "project-b", "default", "quay-creds"), 1);
        assert_int_equal(PULLS(w, "project-b", "default", "default-dockercfg-x"), 1);
}

static void test_sa_selected_by_two_policies(void **state) {
        world *w = *state;
        ns_add(w, "project-b", NULL);
        sa_simple(w, "project-b", "default");
        secret_add(w, "project-b", "s1", QUAY, NULL);
        secret_add(w, "project-b", "s2", QUAY, NULL);
        policy_add(w, "project-b", "p1", "{\"pullSecrets\":[{\"name\":\"s1\"}]}", true);
        policy_add(w, "project-b", "p2", "{\"pullSecrets\":[{\"name\":\"s2\"}]}", true);
        converge(w, "project-b", "p1");
        converge(w, "project-b", "p2");
        const model_sa *sa = get_sa(w, "project-b", "default");
        assert_int_equal(sa->n_pull_secrets, 2);
        assert_int_equal(sa->links.n, 2);
        /* each is converged on its own */
        assert_int_equal(converge(w, "project-b", "p1"), 1);
        assert_int_equal(converge(w, "project-b", "p2"), 1);
        /* removing one secret from p1 leaves p2's alone */
        policy_set_spec(w, "project-b", "p1", "{\"imagePuller\":{}}");
        converge(w, "project-b", "p1");
        assert_int_equal(PULLS(w, "project-b", "default", "s1"), 0);
        assert_int_equal(PULLS(w, "project-b", "default", "s2"), 1);
        assert_int_equal(get_sa(w, "project-b", "default")->links.n, 1);
}

static void test_malformed_links_annotation(void **state) {
        world *w = *state;
        ns_add(w, "project-b", NULL);
        sa_add(w, "project-b", "default", NULL, NULL, "[\"quay-creds\"]", NOW,
               "{\"annotations\":{\"pullpolicy.io/links\":\"{broken\"}}");
        sa_add(w, "project-b", "other", NULL, NULL, NULL, NOW,
               "{\"annotations\":{\"pullpolicy.io/links\":\"[]\"}}");
        secret_add(w, "project-b", "quay-creds", QUAY, NULL);
        policy_add(w, "project-b", "p", "{\"pullSecrets\":[{\"name\":\"quay-creds\"}]}", true);
        plan *pl = world_plan(w, "project-b", "p");
        /* default: already linked, the record is unreadable -> left alone */
        assert_null(find_write(pl, PLAN_SA_EDIT, "project-b", "default"));
        /* other: linked, with a fresh record replacing the garbage */
        const plan_write *pw = find_write(pl, PLAN_SA_EDIT, "project-b", "other");
        assert_non_null(pw);
        assert_string_equal(pw->sa.desired.links,
                            "{\"v\":1,\"links\":[{\"policy\":\"project-b/p\","
                            "\"secret\":\"quay-creds\",\"for\":[\"pull\"]}]}");
        const model_problem *p = find_problem(pl, "MalformedLinkRecord");
        assert_non_null(p);
        assert_string_equal(p->name, "default");
        /* reported, but it does not lower Ready */
        assert_string_equal(pl->status.ready_reason, "Applied");
        plan_free(pl);
        converge(w, "project-b", "p");

        /* deleting the policy: nothing is trusted from a malformed record */
        policy_mark_deleting(w, "project-b", "p");
        converge(w, "project-b", "p");
        assert_int_equal(PULLS(w, "project-b", "default", "quay-creds"), 1);
        assert_string_equal(
            kube_meta_annotation(&get_sa(w, "project-b", "default")->meta, NAMES_ANNOTATION_LINKS),
            "{broken");
        assert_int_equal(PULLS(w, "project-b", "other", "quay-creds"), 0);
}

/* ---- R4: dockercfg ------------------------------------------------------------------- */

static void test_wait_pre416(void **state) {
        world *w = *state;
        ns_add(w, "project-b", NULL);
        sa_add(w, "project-b", "builder", NULL, "[\"builder-token\"]", NULL, NOW - 10, NULL);
        secret_add(w, "project-b", "quay-creds", QUAY, NULL);
        policy_add(
            w, "project-b", "p",
            "{\"pullSecrets\":[{\"name\":\"quay-creds\"}],\"dockercfg\":{\"wait\":\"Always\"}}",
            true);
        plan *pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 0);
        assert_string_equal(pl->status.ready_status, "False");
        assert_string_equal(pl->status.ready_reason, "Waiting");
        assert_string_equal(
            pl->status.ready_message,
            "1 service account waits for their dockercfg secret (project-b/builder)");
        assert_int_equal(pl->status.waiting, 1);
        assert_int_equal(pl->requeue_after, 290);
        const plan_event *e = find_event(pl, "WaitingForDockercfg");
        assert_non_null(e);
        assert_false(e->warning);
        plan_free(pl);
        converge(w, "project-b", "p");
        assert_int_equal(PULLS(w, "project-b", "builder", "quay-creds"), 0);

        /* OpenShift (before 4.16) adds builder-dockercfg-* to both lists: now link */
        sa_add(w, "project-b", "builder", NULL, "[\"builder-token\",\"builder-dockercfg-abcde\"]",
               "[\"builder-dockercfg-abcde\"]", NOW - 10, NULL);
        pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 1);
        assert_non_null(find_write(pl, PLAN_SA_EDIT, "project-b", "builder"));
        assert_int_equal(pl->requeue_after, -1);
        assert_string_equal(pl->status.ready_reason, "Applied");
        plan_free(pl);
        converge(w, "project-b", "p");
        const model_sa *sa = get_sa(w, "project-b", "builder");
        assert_int_equal(sa->n_pull_secrets, 2);
        assert_string_equal(sa->pull_secrets[0], "builder-dockercfg-abcde");
        assert_string_equal(sa->pull_secrets[1], "quay-creds");
}

static void test_wait_416(void **state) {
        world *w = *state;
        w->set.image_api_served = true; /* Auto waits on OpenShift */
        ns_add(w, "project-b", NULL);
        sa_add(w, "project-b", "default", NULL, NULL, NULL, NOW - 30,
               "{\"annotations\":{\"openshift.io/internal-registry-pull-secret-ref\":"
               "\"default-dockercfg-q\"}}");
        secret_add(w, "project-b", "quay-creds", QUAY, NULL);
        policy_add(w, "project-b", "p", "{\"pullSecrets\":[{\"name\":\"quay-creds\"}]}", true);
        plan *pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 0);
        assert_int_equal(pl->status.waiting, 1);
        assert_int_equal(pl->requeue_after, 270);
        plan_free(pl);
        /* 4.16+: the annotated secret lands in imagePullSecrets */
        sa_add(w, "project-b", "default", NULL, NULL, "[\"default-dockercfg-q\"]", NOW - 30,
               "{\"annotations\":{\"openshift.io/internal-registry-pull-secret-ref\":"
               "\"default-dockercfg-q\"}}");
        pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 1);
        assert_int_equal(pl->status.waiting, 0);
        plan_free(pl);
}

static void test_wait_auto_without_openshift(void **state) {
        world *w = *state;
        w->set.image_api_served = false;
        ns_add(w, "project-b", NULL);
        sa_add(w, "project-b", "default", NULL, NULL, NULL, NOW - 1, NULL);
        secret_add(w, "project-b", "quay-creds", QUAY, NULL);
        policy_add(w, "project-b", "p", "{\"pullSecrets\":[{\"name\":\"quay-creds\"}]}", true);
        plan *pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 1); /* plain Kubernetes: no wait */
        assert_int_equal(pl->status.waiting, 0);
        plan_free(pl);
        /* Never: no wait even on OpenShift */
        w->set.image_api_served = true;
        policy_set_spec(
            w, "project-b", "p",
            "{\"pullSecrets\":[{\"name\":\"quay-creds\"}],\"dockercfg\":{\"wait\":\"Never\"}}");
        pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 1);
        plan_free(pl);
}

/*
 * R4 Auto where OpenShift will never provision (the ImageRegistry capability disabled or
 * the registry Removed): link at once, no waiting and no timeout; status says which form.
 * A change of that state changes the plan and the status (no restart).
 */
static void test_wait_auto_registry_removed(void **state) {
        world *w = *state;
        w->set.image_api_served = true;
        w->set.registry_removed = true;
        ns_add(w, "project-b", NULL);
        sa_add(w, "project-b", "default", NULL, NULL, NULL, NOW - 1, NULL);
        secret_add(w, "project-b", "quay-creds", QUAY, NULL);
        policy_add(w, "project-b", "p", "{\"pullSecrets\":[{\"name\":\"quay-creds\"}]}", true);
        plan *pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 1);
        assert_non_null(find_write(pl, PLAN_SA_EDIT, "project-b", "default"));
        assert_int_equal(pl->status.waiting, 0);
        assert_int_equal(pl->requeue_after, -1);
        assert_null(find_event(pl, "DockercfgTimeout"));
        assert_string_equal(pl->status.dockercfg_form, "RegistryRemoved");
        plan_free(pl);
        /* the registry comes back: a new account waits again */
        w->set.registry_removed = false;
        pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 0);
        assert_int_equal(pl->status.waiting, 1);
        assert_string_equal(pl->status.dockercfg_form, "InternalRegistry");
        plan_free(pl);
        /* Always still waits: it is the explicit choice to wait whatever the cluster says */
        w->set.registry_removed = true;
        policy_set_spec(w, "project-b", "p",
                        "{\"pullSecrets\":[{\"name\":\"quay-creds\"}],\"dockercfg\":{\"wait\":"
                        "\"Always\"}}");
        pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 0);
        assert_int_equal(pl->status.waiting, 1);
        plan_free(pl);
        w->set.image_api_served = false;
        pl = world_plan(w, "project-b", "p");
        assert_string_equal(pl->status.dockercfg_form, "NotOpenShift");
        plan_free(pl);
}

/* The form is part of the status: a stored status with another form is rewritten. */
static void test_status_dockercfg_form_change(void **state) {
        world *w = *state;
        ns_add(w, "project-b", NULL);
        policy_add(
            w, "project-b", "p",
            "{\"pullSecrets\":[{\"name\":\"quay-creds\"}],\"dockercfg\":{\"wait\":\"Never\"}}",
            true);
        converge(w, "project-b", "p");
        plan *pl = world_plan(w, "project-b", "p");
        assert_false(pl->status_changed);
        assert_string_equal(pl->status.dockercfg_form, "NotOpenShift");
        plan_free(pl);
        w->set.image_api_served = true;
        w->set.registry_removed = true;
        pl = world_plan(w, "project-b", "p");
        assert_true(pl->status_changed);
        assert_string_equal(pl->status.dockercfg_form, "RegistryRemoved");
        plan_free(pl);
}

/* The verifier's CredentialsVerified (R12), as it would write it into the stored status. */
static void policy_put_credentials(world *w, const char *ns, const char *name) {
        json_object *j = NULL;
        assert_int_equal(json_object_deep_copy(world_json(w, K_POLICY, ns, name), &j, NULL), 0);
        json_object *st = NULL, *conds = NULL;
        assert_true(json_object_object_get_ex(j, "status", &st));
        assert_true(json_object_object_get_ex(st, "conditions", &conds));
        json_object_array_add(
            conds, json_tokener_parse("{\"type\":\"CredentialsVerified\",\"status\":\"False\","
                                      "\"reason\":\"CredentialsRejected\",\"message\":\"m\","
                                      "\"observedGeneration\":1,"
                                      "\"lastTransitionTime\":\"2026-01-02T03:04:05Z\"}"));
        world_put(w, K_POLICY, j);
}

/* R12: the status a plan writes keeps the verifier's condition for a policy that asks (with
 * --verify-credentials), and a stored one that no longer belongs is a change to write. */
static void test_status_keeps_credentials_condition(void **state) {
        world *w = *state;
        ns_add(w, "project-b", NULL);
        const char *spec = "{\"pullSecrets\":[{\"name\":\"quay-creds\"}],"
                           "\"dockercfg\":{\"wait\":\"Never\"},\"verifyCredentials\":true}";
        policy_add(w, "project-b", "p", spec, true);
        w->set.verify_credentials = true;
        converge(w, "project-b", "p");
        policy_put_credentials(w, "project-b", "p");
        plan *pl = world_plan(w, "project-b", "p");
        assert_true(pl->status.has_credentials);
        assert_string_equal(pl->status.credentials.status, "False");
        assert_string_equal(pl->status.credentials.reason, "CredentialsRejected");
        assert_string_equal(pl->status.credentials.message, "m");
        assert_string_equal(pl->status.credentials.last_transition, "2026-01-02T03:04:05Z");
        assert_int_equal(pl->status.credentials.observed_generation, 1);
        assert_false(pl->status_changed);
        plan_free(pl);
        /* without the flag the field is ignored: the condition goes */
        w->set.verify_credentials = false;
        pl = world_plan(w, "project-b", "p");
        assert_false(pl->status.has_credentials);
        assert_true(pl->status_changed);
        plan_free(pl);
        /* with the flag, a policy that stops asking loses it too */
        w->set.verify_credentials = true;
        policy_set_spec(w, "project-b", "p",
                        "{\"pullSecrets\":[{\"name\":\"quay-creds\"}],"
                        "\"dockercfg\":{\"wait\":\"Never\"}}");
        pl = world_plan(w, "project-b", "p");
        assert_false(pl->status.has_credentials);
        plan_free(pl);
}

static void test_wait_timeout(void **state) {
        world *w = *state;
        ns_add(w, "project-b", NULL);
        sa_add(w, "project-b", "default", NULL, NULL, NULL, NOW - 400, NULL);
        secret_add(w, "project-b", "quay-creds", QUAY, NULL);
        policy_add(
            w, "project-b", "p",
            "{\"pullSecrets\":[{\"name\":\"quay-creds\"}],\"dockercfg\":{\"wait\":\"Always\","
            "\"timeoutSeconds\":300}}",
            true);
        plan *pl = world_plan(w, "project-b", "p");
        const plan_write *pw = find_write(pl, PLAN_SA_EDIT, "project-b", "default");
        assert_non_null(pw);
        assert_true(pw->sa.after_timeout);
        const plan_event *e = find_event(pl, "DockercfgTimeout");
        assert_non_null(e);
        assert_true(e->warning);
        const model_problem *p = find_problem(pl, "DockercfgTimeout");
        assert_non_null(p);
        assert_string_equal(p->name, "default");
        /* the policy is served: Ready stays True */
        assert_string_equal(pl->status.ready_status, "True");
        assert_int_equal(pl->status.waiting, 0);
        assert_int_equal(pl->status.linked, 1);
        plan_free(pl);
        converge(w, "project-b", "p");
        assert_int_equal(PULLS(w, "project-b", "default", "quay-creds"), 1);
}

static void test_wait_keeps_existing_links(void **state) {
        world *w = *state;
        ns_add(w, "project-b", NULL);
        sa_add(w, "project-b", "default", NULL, NULL, NULL, NOW - 10, NULL);
        secret_add(w, "project-b", "s1", QUAY, NULL);
        secret_add(w, "project-b", "s2", QUAY, NULL);
        policy_add(w, "project-b", "p",
                   "{\"pullSecrets\":[{\"name\":\"s1\"}],\"dockercfg\":{\"wait\":\"Never\"}}",
                   true);
        converge(w, "project-b", "p");
        /* now it waits (not provisioned) and wants one more: s1 stays, s2 waits */
        policy_set_spec(w, "project-b", "p",
                        "{\"pullSecrets\":[{\"name\":\"s1\"},{\"name\":\"s2\"}],"
                        "\"dockercfg\":{\"wait\":\"Always\"}}");
        plan *pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 0);
        assert_int_equal(pl->status.waiting, 1);
        plan_free(pl);
        converge(w, "project-b", "p");
        assert_int_equal(PULLS(w, "project-b", "default", "s1"), 1);
        assert_int_equal(PULLS(w, "project-b", "default", "s2"), 0);
}

/* ---- R5: distribution ------------------------------------------------------------------ */

static void test_distribution_copies(void **state) {
        world *w = *state;
        w->dist[0] = "project-b";
        ns_add(w, "project-b", NULL);
        ns_add(w, "project-a", NULL);
        sa_simple(w, "project-a", "default");
        secret_add(w, "project-b", "quay-creds", QUAY, NULL);
        policy_add(w, "project-b", "p",
                   "{\"subjects\":{\"namespaces\":[\"project-a\"]},"
                   "\"pullSecrets\":[{\"name\":\"quay-creds\"}]}",
                   true);
        plan *pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 2);
        /* the copy before the link to it */
        assert_int_equal(pl->writes[0].kind, PLAN_COPY_CREATE);
        assert_string_equal(pl->writes[0].namespace, "project-a");
        assert_string_equal(pl->writes[0].copy.source_namespace, "project-b");
        assert_string_equal(pl->writes[0].copy.source_name, "quay-creds");
        assert_string_equal(pl->writes[0].copy.policy_name, "p");
        assert_int_equal(pl->writes[1].kind, PLAN_SA_EDIT);
        plan_free(pl);
        converge(w, "project-b", "p");
        const model_secret *c = world_model(w, K_SECRET, "project-a", "quay-creds");
        assert_true(names_marked_by(&c->meta, "project-b", "p"));

        /* a rotated source is copied again */
        secret_add(w, "project-b", "quay-creds", "{\"quay.io\":{\"auth\":\"cm90YXRlZA==\"}}", NULL);
        pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 1);
        assert_non_null(find_write(pl, PLAN_COPY_UPDATE, "project-a", "quay-creds"));
        plan_free(pl);
        converge(w, "project-b", "p");

        /* deleting the policy: unlink, then delete the copy, then the finalizer */
        policy_mark_deleting(w, "project-b", "p");
        pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 2);
        assert_int_equal(pl->writes[0].kind, PLAN_SA_EDIT);
        assert_int_equal(pl->writes[1].kind, PLAN_COPY_DELETE);
        assert_int_equal(pl->requeue_after, 1);
        plan_free(pl);
        converge(w, "project-b", "p");
        assert_null(world_find(w, K_POLICY, "project-b", "p"));
        assert_null(world_find(w, K_SECRET, "project-a", "quay-creds"));
        assert_non_null(world_find(w, K_SECRET, "project-b", "quay-creds"));
}

static void test_distribution_conflict(void **state) {
        world *w = *state;
        w->dist[0] = "project-b";
        ns_add(w, "project-b", NULL);
        ns_add(w, "project-a", NULL);
        sa_simple(w, "project-a", "default");
        secret_add(w, "project-b", "quay-creds", QUAY, NULL);
        /* somebody's own secret of that name */
        secret_add(w, "project-a", "quay-creds", "{\"other.io\":{\"auth\":\"eA==\"}}", NULL);
        policy_add(w, "project-b", "p",
                   "{\"subjects\":{\"namespaces\":[\"project-a\"]},\"imagePuller\":{},"
                   "\"pullSecrets\":[{\"name\":\"quay-creds\"}]}",
                   true);
        plan *pl = world_plan(w, "project-b", "p");
        assert_int_equal(count_writes(pl, PLAN_COPY_CREATE) + count_writes(pl, PLAN_COPY_UPDATE),
                         0);
        assert_int_equal(count_writes(pl, PLAN_SA_EDIT), 0);
        assert_int_equal(count_writes(pl, PLAN_RB_CREATE), 1);
        assert_string_equal(pl->status.ready_reason, "Conflict");
        const model_problem *p = find_problem(pl, "Conflict");
        assert_string_equal(p->namespace, "project-a");
        assert_string_equal(p->name, "quay-creds");
        plan_free(pl);
        converge(w, "project-b", "p");
}

static void test_distribution_not_allowed(void **state) {
        world *w = *state;
        ns_add(w, "project-b", NULL);
        ns_add(w, "project-a", NULL);
        sa_simple(w, "project-a", "default");
        sa_simple(w, "project-b", "default");
        secret_add(w, "project-b", "quay-creds", QUAY, NULL);
        policy_add(
            w, "project-b", "p",
            "{\"subjects\":{\"namespaces\":[\"project-a\",\"project-b\"]},\"imagePuller\":{},"
            "\"pullSecrets\":[{\"name\":\"quay-creds\"}]}",
            true);
        plan *pl = world_plan(w, "project-b", "p");
        /* nothing for project-a; the home is served */
        for (size_t i = 0; i < pl->n_writes; i++)
                if (pl->writes[i].kind != PLAN_RB_CREATE)
                        assert_string_equal(pl->writes[i].namespace, "project-b");
        assert_int_equal(count_writes(pl, PLAN_COPY_CREATE), 0);
        assert_non_null(find_write(pl, PLAN_SA_EDIT, "project-b", "default"));
        assert_null(find_write(pl, PLAN_SA_EDIT, "project-a", "default"));
        assert_int_equal(count_writes(pl, PLAN_RB_CREATE), 2);
        assert_string_equal(pl->status.ready_reason, "DistributionNotAllowed");
        plan_free(pl);
        converge(w, "project-b", "p");
        assert_null(world_find(w, K_SECRET, "project-a", "quay-creds"));
}

static void test_copy_handed_over(void **state) {
        world *w = *state;
        w->dist[0] = "project-b";
        ns_add(w, "project-b", NULL);
        ns_add(w, "project-a", NULL);
        sa_simple(w, "project-a", "default");
        secret_add(w, "project-b", "quay-creds", QUAY, NULL);
        const char *spec = "{\"subjects\":{\"namespaces\":[\"project-a\"]},"
                           "\"pullSecrets\":[{\"name\":\"quay-creds\"}]}";
        policy_add(w, "project-b", "p1", spec, true);
        policy_add(w, "project-b", "p2", spec, true);
        converge(w, "project-b", "p1");
        assert_int_equal(converge(w, "project-b", "p2"), 2); /* claim and status */
        policy_mark_deleting(w, "project-b", "p1");
        plan *pl = world_plan(w, "project-b", "p1");
        /* the copy p2 still needs is relabelled, not deleted */
        assert_int_equal(count_writes(pl, PLAN_COPY_DELETE), 0);
        const plan_write *pw = find_write(pl, PLAN_COPY_UPDATE, "project-a", "quay-creds");
        assert_non_null(pw);
        assert_string_equal(pw->copy.policy_name, "p2");
        plan_free(pl);
        converge(w, "project-b", "p1");
        const model_secret *c = world_model(w, K_SECRET, "project-a", "quay-creds");
        assert_true(names_marked_by(&c->meta, "project-b", "p2"));
        assert_int_equal(PULLS(w, "project-a", "default", "quay-creds"), 1);
        assert_int_equal(converge(w, "project-b", "p2"), 1);
}

/* ---- R6: the global pull secret ------------------------------------------------------- */

static const char *GLOBAL_AUTHS =
    "{\"cloud.openshift.com\":{\"auth\":\"b3Blb=\",\"email\":\"you@example.com\"},"
    "\"registry.redhat.io\":{\"auth\":\"cmVkaGF0\"}}";

static char *entry_text(world *w, const char *registry) {
        json_object *auths = NULL, *e = NULL;
        assert_int_equal(
            model_secret_payload_auths(world_json(w, K_SECRET, "openshift-config", "pull-secret"),
                                       &auths, NULL),
            0);
        char *t = NULL;
        if (json_object_object_get_ex(auths, registry, &e))
                t = strdup(json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN));
        json_object_put(auths);
        return t;
}

static void test_global_merge(void **state) {
        world *w = *state;
        w->dist[0] = "pullpolicy-system";
        ns_add(w, "pullpolicy-system", NULL);
        ns_add(w, "openshift-config", NULL);
        secret_add(w, "openshift-config", "pull-secret", GLOBAL_AUTHS, NULL);
        secret_add(w, "pullpolicy-system", "mirror",
                   "{\"mirror.example.com\":{\"auth\":\"bWlycm9y\"},"
                   "\"quay.io/team\":{\"auth\":\"dGVhbQ==\"}}",
                   NULL);
        char *before = entry_text(w, "cloud.openshift.com");
        policy_add(w, "pullpolicy-system", "g",
                   "{\"subjects\":{\"serviceAccounts\":[]},\"pullSecrets\":[{\"name\":\"mirror\"}],"
                   "\"globalPullSecret\":{\"merge\":true}}",
                   true);
        plan *pl = world_plan(w, "pullpolicy-system", "g");
        const plan_write *pw = find_write(pl, PLAN_GLOBAL_EDIT, "openshift-config", "pull-secret");
        assert_non_null(pw);
        assert_int_equal(pw->global.desired.n_ops, 2);
        assert_int_equal(pw->global.desired.ops[0].kind, PLAN_GLOBAL_ADD);
        assert_string_equal(pw->global.desired.ops[0].source, "mirror");
        assert_string_equal(
            pw->global.desired.merged,
            "{\"v\":1,\"entries\":["
            "{\"policy\":\"pullpolicy-system/g\",\"registry\":\"mirror.example.com\"},"
            "{\"policy\":\"pullpolicy-system/g\",\"registry\":\"quay.io/team\"}]}");
        plan_free(pl);
        converge(w, "pullpolicy-system", "g");
        char *after = entry_text(w, "cloud.openshift.com"),
             *m = entry_text(w, "mirror.example.com");
        assert_string_equal(before, after); /* others' entries byte for byte */
        assert_non_null(m);
        free(after);
        free(m);
        assert_string_equal(pstatus(w, "pullpolicy-system", "g")->ready_reason, "Applied");

        /* a rotated source updates its entries */
        secret_add(w, "pullpolicy-system", "mirror",
                   "{\"mirror.example.com\":{\"auth\":\"bmV3\"},"
                   "\"quay.io/team\":{\"auth\":\"dGVhbQ==\"}}",
                   NULL);
        pl = world_plan(w, "pullpolicy-system", "g");
        pw = find_write(pl, PLAN_GLOBAL_EDIT, "openshift-config", "pull-secret");
        assert_non_null(pw);
        assert_int_equal(pw->global.desired.n_ops, 1);
        assert_int_equal(pw->global.desired.ops[0].kind, PLAN_GLOBAL_UPDATE);
        assert_string_equal(pw->global.desired.ops[0].registry, "mirror.example.com");
        plan_free(pl);
        converge(w, "pullpolicy-system", "g");

        /* merge: false removes exactly what it added */
        policy_set_spec(
            w, "pullpolicy-system", "g",
            "{\"subjects\":{\"serviceAccounts\":[]},\"pullSecrets\":[{\"name\":\"mirror\"}],"
            "\"globalPullSecret\":{\"merge\":false}}");
        converge(w, "pullpolicy-system", "g");
        assert_null(entry_text(w, "mirror.example.com"));
        assert_null(entry_text(w, "quay.io/team"));
        after = entry_text(w, "cloud.openshift.com");
        assert_string_equal(before, after);
        free(after);
        const model_secret *g = world_model(w, K_SECRET, "openshift-config", "pull-secret");
        assert_null(kube_meta_annotation(&g->meta, NAMES_ANNOTATION_MERGED));
        assert_int_equal(g->n_registries, 2);
        free(before);
}

static void test_global_conflict(void **state) {
        world *w = *state;
        ns_add(w, "pullpolicy-system", NULL);
        secret_add(w, "openshift-config", "pull-secret", GLOBAL_AUTHS, NULL);
        secret_add(
            w, "pullpolicy-system", "mine",
            "{\"registry.redhat.io\":{\"auth\":\"bWluZQ==\"},\"mine.io\":{\"auth\":\"eA==\"}}",
            NULL);
        policy_add(w, "pullpolicy-system", "g",
                   "{\"pullSecrets\":[{\"name\":\"mine\"}],\"globalPullSecret\":{\"merge\":true}}",
                   true);
        char *before = entry_text(w, "registry.redhat.io");
        plan *pl = world_plan(w, "pullpolicy-system", "g");
        const plan_write *pw = find_write(pl, PLAN_GLOBAL_EDIT, "openshift-config", "pull-secret");
        assert_non_null(pw);
        assert_int_equal(pw->global.desired.n_ops, 1); /* mine.io only */
        assert_string_equal(pw->global.desired.ops[0].registry, "mine.io");
        assert_string_equal(pl->status.ready_reason, "Conflict");
        const model_problem *p = find_problem(pl, "Conflict");
        assert_non_null(strstr(p->message, "registry registry.redhat.io is already in the global "
                                           "pull secret"));
        plan_free(pl);
        converge(w, "pullpolicy-system", "g");
        char *after = entry_text(w, "registry.redhat.io");
        assert_string_equal(before, after);
        free(before);
        free(after);
        /* clean-up removes only mine.io */
        policy_mark_deleting(w, "pullpolicy-system", "g");
        converge(w, "pullpolicy-system", "g");
        assert_null(entry_text(w, "mine.io"));
        char *rh = entry_text(w, "registry.redhat.io");
        assert_non_null(rh);
        free(rh);
}

static void test_global_merge_not_allowed(void **state) {
        world *w = *state;
        ns_add(w, "project-b", NULL);
        secret_add(w, "openshift-config", "pull-secret", GLOBAL_AUTHS, NULL);
        secret_add(w, "project-b", "mine", "{\"mine.io\":{\"auth\":\"eA==\"}}", NULL);
        policy_add(w, "project-b", "g",
                   "{\"pullSecrets\":[{\"name\":\"mine\"}],\"subjects\":{\"serviceAccounts\":[]},"
                   "\"globalPullSecret\":{\"merge\":true}}",
                   true);
        plan *pl = world_plan(w, "project-b", "g");
        assert_int_equal(pl->n_writes, 0);
        assert_string_equal(pl->status.ready_reason, "DistributionNotAllowed");
        plan_free(pl);
}

/* ---- deletion, status details ---------------------------------------------------------- */

static void test_delete_undoes_everything(void **state) {
        world *w = *state;
        w->dist[0] = "project-b";
        ns_add(w, "project-b", NULL);
        ns_add(w, "project-a", NULL);
        ns_add(w, "openshift-config", NULL);
        sa_simple(w, "project-a", "default");
        sa_simple(w, "project-b", "default");
        secret_add(w, "project-b", "quay-creds", QUAY, NULL);
        secret_add(w, "openshift-config", "pull-secret", GLOBAL_AUTHS, NULL);
        policy_add(
            w, "project-b", "p",
            "{\"subjects\":{\"namespaces\":[\"project-a\",\"project-b\"]},\"imagePuller\":{},"
            "\"pullSecrets\":[{\"name\":\"quay-creds\",\"for\":[\"pull\",\"mount\"]}],"
            "\"globalPullSecret\":{\"merge\":true}}",
            true);
        size_t before = w->n;
        converge(w, "project-b", "p");
        assert_int_equal(w->n, before + 3); /* two bindings, one copy */
        policy_mark_deleting(w, "project-b", "p");
        plan *pl = world_plan(w, "project-b", "p");
        assert_int_equal(count_writes(pl, PLAN_RB_DELETE), 2);
        assert_int_equal(count_writes(pl, PLAN_SA_EDIT), 2);
        assert_int_equal(count_writes(pl, PLAN_GLOBAL_EDIT), 1);
        assert_int_equal(count_writes(pl, PLAN_COPY_DELETE), 1);
        assert_int_equal(count_writes(pl, PLAN_REMOVE_FINALIZER), 0); /* next round */
        plan_free(pl);
        converge(w, "project-b", "p");
        assert_null(world_find(w, K_POLICY, "project-b", "p"));
        assert_int_equal(w->n, before - 1);
        assert_int_equal(get_sa(w, "project-a", "default")->n_pull_secrets, 0);
        assert_int_equal(get_sa(w, "project-a", "default")->n_secrets, 0);
        assert_null(entry_text(w, "quay.io"));
}

static void test_deleting_without_finalizer_does_nothing(void **state) {
        world *w = *state;
        ns_add(w, "project-b", NULL);
        policy_add(w, "project-b", "p", "{\"imagePuller\":{}}", false);
        policy_mark_deleting(w, "project-b", "p");
        plan *pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 0);
        assert_false(pl->has_status);
        plan_free(pl);
}

static void test_problems_capped(void **state) {
        world *w = *state;
        ns_add(w, "project-b", NULL);
        char spec[4096];
        size_t o = (size_t)snprintf(spec, sizeof(spec), "{\"pullSecrets\":[");
        for (int i = 0; i < 30; i++)
                o += (size_t)snprintf(spec + o, sizeof(spec) - o, "%s{\"name\":\"missing-%02d\"}",
                                      i ? "," : "", i);
        snprintf(spec + o, sizeof(spec) - o, "]}");
        policy_add(w, "project-b", "p", spec, true);
        plan *pl = world_plan(w, "project-b", "p");
        assert_int_equal(pl->status.n_problems, MODEL_PROBLEMS_MAX);
        assert_string_equal(pl->status.problems[0].name, "missing-00");
        assert_string_equal(pl->status.ready_message,
                            "secret project-b/missing-00 not found (and 29 more problems)");
        plan_free(pl);
        assert_int_equal(converge(w, "project-b", "p"), 2);
}

static void test_status_transition_time(void **state) {
        world *w = *state;
        ns_add(w, "project-b", NULL);
        policy_add(w, "project-b", "p", "{\"pullSecrets\":[{\"name\":\"s\"}]}", true);
        converge(w, "project-b", "p");
        assert_string_equal(pstatus(w, "project-b", "p")->ready_last_transition,
                            "2027-01-15T08:00:00Z");
        /* another False reason later: the transition time stays */
        w->set.now = NOW + 1000;
        secret_opaque(w, "project-b", "s");
        converge(w, "project-b", "p");
        assert_string_equal(pstatus(w, "project-b", "p")->ready_reason, "InvalidSecret");
        assert_string_equal(pstatus(w, "project-b", "p")->ready_last_transition,
                            "2027-01-15T08:00:00Z");
        /* False -> True moves it */
        secret_add(w, "project-b", "s", QUAY, NULL);
        converge(w, "project-b", "p");
        assert_string_equal(pstatus(w, "project-b", "p")->ready_status, "True");
        assert_string_equal(pstatus(w, "project-b", "p")->ready_last_transition,
                            "2027-01-15T08:16:40Z");
}

/* An entry with more than a name cannot be rebuilt from the cache: the apply reads the SA. */
static void test_link_not_patchable(void **state) {
        world *w = *state;
        ns_add(w, "project-b", NULL);
        world_put_str(
            w, K_SA,
            "{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\",\"metadata\":{\"name\":"
            "\"default\",\"namespace\":\"project-b\","
            "\"creationTimestamp\":\"2020-01-01T00:00:00Z\"},\"secrets\":[{\"name\":"
            "\"default-token\",\"namespace\":\"project-b\"}],\"imagePullSecrets\":[{\"name\":"
            "\"default-dockercfg-x\"}]}");
        secret_add(w, "project-b", "my-secret", QUAY, NULL);
        policy_add(w, "project-b", "p",
                   "{\"subjects\":{\"serviceAccounts\":[\"default\"]},"
                   "\"pullSecrets\":[{\"name\":\"my-secret\"}]}",
                   true);
        plan *pl = world_plan(w, "project-b", "p");
        const plan_write *pw = find_write(pl, PLAN_SA_EDIT, "project-b", "default");
        assert_non_null(pw);
        assert_false(pw->sa.patchable);
        assert_non_null(pw->resource_version); /* still the precondition of the full update */
        plan_free(pl);
}

/* ---- plan_sa_edit on its own (the 409 path) --------------------------------------------- */

static model_sa *sa_json(const char *json) {
        json_object *o = json_tokener_parse(json);
        assert_non_null(o);
        model_sa *sa = NULL;
        assert_int_equal(model_sa_decode(o, &sa), 0);
        json_object_put(o);
        return sa;
}

static void test_sa_edit_rerun_after_conflict(void **state) {
        model_sa *v1 =
            sa_json("{\"metadata\":{\"name\":\"d\",\"namespace\":\"n\",\"resourceVersion\":"
                    "\"1\"},\"imagePullSecrets\":[{\"name\":\"a\"}]}");
        plan_sa_want want[] = {{(char *)"mine", POLICY_FOR_PULL, false, 0}};
        plan_sa_desired d1 = {0};
        assert_int_equal(plan_sa_edit(v1, "n/p", want, 1, &d1), 0);
        assert_true(d1.changed);
        assert_int_equal(d1.n_pull_secrets, 2);
        /* meanwhile OpenShift and a person changed the list: 409, re-read, re-run */
        model_sa *v2 =
            sa_json("{\"metadata\":{\"name\":\"d\",\"namespace\":\"n\",\"resourceVersion\":"
                    "\"2\"},\"imagePullSecrets\":[{\"name\":\"d-dockercfg-x\"},"
                    "{\"name\":\"a\"},{\"name\":\"b\"}]}");
        plan_sa_desired d2 = {0};
        assert_int_equal(plan_sa_edit(v2, "n/p", want, 1, &d2), 0);
        assert_int_equal(d2.n_pull_secrets, 4);
        assert_string_equal(d2.pull_secrets[0], "d-dockercfg-x");
        assert_string_equal(d2.pull_secrets[1], "a");
        assert_string_equal(d2.pull_secrets[2], "b");
        assert_string_equal(d2.pull_secrets[3], "mine");
        plan_sa_desired_done(&d1);
        plan_sa_desired_done(&d2);
        model_sa_free(v1);
        model_sa_free(v2);
}

/*
 * A claim dropped on a link that another writer already took out of the list: no removal
 * to write, but the controller must remember it as one, in case that writer puts it back.
 */
static void test_sa_edit_released_claim(void **state) {
        model_sa *sa = sa_json(
            "{\"metadata\":{\"name\":\"d\",\"namespace\":\"n\",\"annotations\":{"
            "\"pullpolicy.io/links\":\"{\\\"v\\\":1,\\\"links\\\":[{\\\"policy\\\":\\\"n/p\\\","
            "\\\"secret\\\":\\\"x\\\",\\\"for\\\":[\\\"pull\\\"]}]}\"}},"
            "\"imagePullSecrets\":[{\"name\":\"y\"}]}");
        assert_int_equal(sa->links.n, 1);
        plan_sa_desired d = {0};
        assert_int_equal(plan_sa_edit(sa, "n/p", NULL, 0, &d), 0);
        assert_true(d.changed); /* the record loses the claim */
        assert_int_equal(d.n_removed, 0);
        assert_int_equal(d.n_released, 1);
        assert_string_equal(d.released[0].secret, "x");
        assert_int_equal(d.released[0].list, POLICY_FOR_PULL);
        plan_sa_desired_done(&d);
        model_sa_free(sa);
}

/*
 * A link the controller removed a moment ago, put back by a stale writer just as a policy
 * wants it again: adopted (claimed), so that the policy's next removal removes it. Without
 * adopt it would stay someone else's for ever (R7).
 */
static void test_sa_edit_adopts_resurrected(void **state) {
        model_sa *sa = sa_json("{\"metadata\":{\"name\":\"d\",\"namespace\":\"n\"},"
                               "\"imagePullSecrets\":[{\"name\":\"x\"}]}");
        plan_sa_want plain[] = {{(char *)"x", POLICY_FOR_PULL, false, 0}};
        plan_sa_desired d = {0};
        assert_int_equal(plan_sa_edit(sa, "n/p", plain, 1, &d), 0);
        assert_false(d.changed); /* someone else's: serves the policy, not claimed */
        assert_null(d.links);
        plan_sa_desired_done(&d);
        plan_sa_want adopt[] = {{(char *)"x", POLICY_FOR_PULL, false, POLICY_FOR_PULL}};
        assert_int_equal(plan_sa_edit(sa, "n/p", adopt, 1, &d), 0);
        assert_true(d.changed);
        assert_int_equal(d.n_pull_secrets, 1);
        assert_int_equal(d.n_added, 0);
        assert_non_null(d.links);
        assert_non_null(strstr(d.links, "\"policy\":\"n/p\",\"secret\":\"x\""));
        plan_sa_desired_done(&d);
        model_sa_free(sa);
}

static void test_sa_edit_duplicates_and_order(void **state) {
        /* someone else's duplicate stays; ours (the last) goes */
        model_sa *sa = sa_json(
            "{\"metadata\":{\"name\":\"d\",\"namespace\":\"n\",\"annotations\":{"
            "\"pullpolicy.io/links\":\"{\\\"v\\\":1,\\\"links\\\":[{\\\"policy\\\":\\\"n/p\\\","
            "\\\"secret\\\":\\\"x\\\",\\\"for\\\":[\\\"pull\\\"]}]}\"}},"
            "\"imagePullSecrets\":[{\"name\":\"x\"},{\"name\":\"y\"},{\"name\":\"x\"}]}");
        plan_sa_desired d = {0};
        assert_int_equal(plan_sa_edit(sa, "n/p", NULL, 0, &d), 0);
        assert_true(d.changed);
        assert_int_equal(d.n_pull_secrets, 2);
        assert_string_equal(d.pull_secrets[0], "x");
        assert_string_equal(d.pull_secrets[1], "y");
        assert_null(d.links);
        assert_int_equal(d.n_removed, 1);
        plan_sa_desired_done(&d);
        /* an unchanged record keeps its exact text, even if not canonical */
        assert_int_equal(plan_sa_edit(sa, "n/other", NULL, 0, &d), 0);
        assert_false(d.changed);
        assert_string_equal(d.links, kube_meta_annotation(&sa->meta, NAMES_ANNOTATION_LINKS));
        plan_sa_desired_done(&d);
        /* duplicate wants count once; hold keeps a claim without adding */
        plan_sa_want want[] = {{(char *)"x", POLICY_FOR_PULL, true, 0},
                               {(char *)"x", POLICY_FOR_PULL | POLICY_FOR_MOUNT, false, 0},
                               {(char *)"z", POLICY_FOR_PULL, true, 0}};
        assert_int_equal(plan_sa_edit(sa, "n/p", want, 3, &d), 0);
        assert_false(d.changed);
        assert_int_equal(d.n_pull_secrets, 3);
        assert_int_equal(d.n_secrets, 0);
        plan_sa_desired_done(&d);
        assert_int_equal(plan_sa_edit(sa, NULL, NULL, 0, &d), -EINVAL);
        model_sa_free(sa);
}

static void test_sa_desired_apply_json_keeps_fields(void **state) {
        json_object *j = json_tokener_parse(
            "{\"metadata\":{\"name\":\"d\",\"namespace\":\"n\"},"
            "\"secrets\":[{\"name\":\"t\",\"namespace\":\"n\",\"fieldPath\":\"f\"}],"
            "\"imagePullSecrets\":[{\"name\":\"a\"}],\"automountServiceAccountToken\":false}");
        model_sa *sa = NULL;
        assert_int_equal(model_sa_decode(j, &sa), 0);
        plan_sa_want want[] = {{(char *)"new", POLICY_FOR_PULL | POLICY_FOR_MOUNT, false, 0}};
        plan_sa_desired d = {0};
        assert_int_equal(plan_sa_edit(sa, "n/p", want, 1, &d), 0);
        assert_int_equal(plan_sa_desired_apply_json(j, &d), 0);
        /* json-c replaces a member in place: the document keeps its order */
        assert_string_equal(
            json_object_to_json_string_ext(j,
                                           JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
            "{\"metadata\":{\"name\":\"d\",\"namespace\":\"n\",\"annotations\":"
            "{\"pullpolicy.io/links\":\"{\\\"v\\\":1,\\\"links\\\":[{\\\"policy\\\":"
            "\\\"n/p\\\",\\\"secret\\\":\\\"new\\\",\\\"for\\\":[\\\"pull\\\","
            "\\\"mount\\\"]}]}\"}},"
            "\"secrets\":[{\"name\":\"t\",\"namespace\":\"n\",\"fieldPath\":\"f\"},"
            "{\"name\":\"new\"}],\"imagePullSecrets\":[{\"name\":\"a\"},"
            "{\"name\":\"new\"}],\"automountServiceAccountToken\":false}");
        plan_sa_desired_done(&d);
        model_sa_free(sa);
        json_object_put(j);
}

/* R9: an entry without a name is nobody's link; rebuilding the lists keeps it. */
static void test_sa_desired_apply_json_keeps_unnamed(void **state) {
        json_object *j =
            json_tokener_parse("{\"metadata\":{\"name\":\"d\",\"namespace\":\"n\"},"
                               "\"imagePullSecrets\":[{},{\"name\":\"a\"},{\"name\":7}]}");
        model_sa *sa = NULL;
        assert_int_equal(model_sa_decode(j, &sa), 0);
        plan_sa_want want[] = {{(char *)"new", POLICY_FOR_PULL, false, 0}};
        plan_sa_desired d = {0};
        assert_int_equal(plan_sa_edit(sa, "n/p", want, 1, &d), 0);
        assert_int_equal(plan_sa_desired_apply_json(j, &d), 0);
        json_object *ips = NULL;
        assert_true(json_object_object_get_ex(j, "imagePullSecrets", &ips));
        assert_string_equal(json_object_to_json_string_ext(ips, JSON_C_TO_STRING_PLAIN),
                            "[{\"name\":\"a\"},{\"name\":\"new\"},{},{\"name\":7}]");
        plan_sa_desired_done(&d);

        /* Removing every named entry still keeps the unnamed ones. */
        plan_sa_desired none = {0};
        assert_int_equal(plan_sa_desired_apply_json(j, &none), 0);
        assert_true(json_object_object_get_ex(j, "imagePullSecrets", &ips));
        assert_string_equal(json_object_to_json_string_ext(ips, JSON_C_TO_STRING_PLAIN),
                            "[{},{\"name\":7}]");
        model_sa_free(sa);
        json_object_put(j);
}

static void test_global_edit_direct(void **state) {
        world *w = *state;
        secret_add(w, "openshift-config", "pull-secret", GLOBAL_AUTHS,
                   "\"annotations\":{\"pullpolicy.io/merged\":\"{\\\"v\\\":1,\\\"entries\\\":["
                   "{\\\"policy\\\":\\\"a/other\\\",\\\"registry\\\":\\\"gone.io\\\"}]}\"}");
        const model_secret *g = world_model(w, K_SECRET, "openshift-config", "pull-secret");
        plan_global_want want[] = {{(char *)"gone.io", (char *)"s", 1},
                                   {(char *)"new.io", (char *)"s", 2},
                                   {(char *)"new.io", (char *)"t", 3}};
        plan_global_desired d = {0};
        assert_int_equal(plan_global_edit(g, "a/p", want, 3, false, &d), 0);
        /* recorded for another policy, even though absent: not ours to take */
        assert_int_equal(d.n_conflicts, 1);
        assert_string_equal(d.conflicts[0], "gone.io");
        assert_int_equal(d.n_ops, 1);
        assert_string_equal(d.ops[0].source, "s"); /* first source wins */
        assert_non_null(strstr(d.merged, "a/other"));
        assert_non_null(strstr(d.merged, "\"registry\":\"new.io\""));
        assert_true(d.changed);
        plan_global_desired_done(&d);
        /* nothing wanted, nothing of ours: no change */
        assert_int_equal(plan_global_edit(g, "a/p", NULL, 0, false, &d), 0);
        assert_false(d.changed);
        plan_global_desired_done(&d);
}

static void test_bad_arguments(void **state) {
        world *w = *state;
        ns_add(w, "project-b", NULL);
        policy_add(w, "project-b", "p", "{\"imagePuller\":{}}", true);
        plan_memsnap *m = NULL;
        assert_int_equal(plan_memsnap_new(&m), 0);
        plan_snapshot snap = plan_memsnap_snapshot(m);
        plan *pl = NULL;
        const model_policy *p = world_model(w, K_POLICY, "project-b", "p");
        assert_int_equal(plan_policy(NULL, &snap, &w->set, &pl), -EINVAL);
        assert_int_equal(plan_policy(p, NULL, &w->set, &pl), -EINVAL);
        assert_int_equal(plan_policy(p, &snap, NULL, &pl), -EINVAL);
        plan_snapshot_ops partial = {0};
        plan_snapshot bad = {&partial, NULL};
        assert_int_equal(plan_policy(p, &bad, &w->set, &pl), -EINVAL);
        assert_null(pl);
        assert_int_equal(plan_memsnap_remove(m, p), -ENOENT);
        plan_memsnap_free(m);
        assert_null(plan_free(NULL));
        assert_string_equal(plan_write_kind_to_string(PLAN_SA_EDIT), "EditServiceAccount");
}

/* ---- a service account's own secret is never a source (issue 7, item 1) ------------------ */

#define SA_SECRET         "default-dockercfg-abcde"
#define INTERNAL_REGISTRY "image-registry.openshift-image-registry.svc:5000"

/*
 * The attack: a policy in a distribution namespace names OpenShift's dockercfg
 * secret of its own "default" service account (which carries that account's token)
 * and selects every namespace, with merge: true.
 */
static void sa_secret_world(world *w, const char *secret_meta, const char *sa_extra) {
        ns_add(w, "pullpolicy-system", NULL);
        ns_add(w, "tenant-a", NULL);
        ns_add(w, "tenant-b", NULL);
        /* OpenShift's own link of the secret to its service account */
        sa_add(w, "pullpolicy-system", "default", NULL, "[\"" SA_SECRET "\"]",
               "[\"" SA_SECRET "\"]", NOW - 100000, sa_extra);
        sa_simple(w, "pullpolicy-system", "builder");
        sa_simple(w, "tenant-a", "default");
        sa_simple(w, "tenant-b", "default");
        secret_add(w, "openshift-config", "pull-secret", GLOBAL_AUTHS, NULL);
        secret_add(w, "pullpolicy-system", SA_SECRET,
                   "{\"" INTERNAL_REGISTRY "\":{\"auth\":\"dG9rZW4=\"}}", secret_meta);
        policy_add(w, "pullpolicy-system", "spread",
                   "{\"subjects\":{\"namespaceSelector\":{}},"
                   "\"pullSecrets\":[{\"name\":\"" SA_SECRET "\",\"for\":[\"pull\",\"mount\"]}],"
                   "\"globalPullSecret\":{\"merge\":true}}",
                   true);
}

/* Nothing copied, merged or linked; Ready=False ServiceAccountSecret; OpenShift's link kept. */
static void assert_sa_secret_refused(world *w, bool first) {
        plan *pl = world_plan(w, "pullpolicy-system", "spread");
        assert_int_equal(count_writes(pl, PLAN_COPY_CREATE), 0);
        assert_int_equal(count_writes(pl, PLAN_COPY_UPDATE), 0);
        assert_int_equal(count_writes(pl, PLAN_SA_EDIT), 0);
        assert_int_equal(count_writes(pl, PLAN_GLOBAL_EDIT), 0);
        assert_string_equal(pl->status.ready_status, "False");
        assert_string_equal(pl->status.ready_reason, "ServiceAccountSecret");
        const model_problem *p = find_problem(pl, "ServiceAccountSecret");
        assert_non_null(p);
        assert_string_equal(p->namespace, "pullpolicy-system");
        assert_string_equal(p->name, SA_SECRET);
        assert_non_null(strstr(pl->status.ready_message, "pullpolicy-system/" SA_SECRET));
        const plan_event *e = find_event(pl, "ServiceAccountSecret");
        if (first) {
                assert_non_null(e);
                assert_true(e->warning);
        } else {
                assert_null(e); /* reported once, with the stored problem */
        }
        plan_free(pl);
        converge(w, "pullpolicy-system", "spread");
        assert_null(world_find(w, K_SECRET, "tenant-a", SA_SECRET));
        assert_null(world_find(w, K_SECRET, "tenant-b", SA_SECRET));
        assert_int_equal(PULLS(w, "tenant-a", "default", SA_SECRET), 0);
        assert_int_equal(PULLS(w, "tenant-b", "default", SA_SECRET), 0);
        /* R3: not linked to another service account of its own namespace either */
        assert_int_equal(PULLS(w, "pullpolicy-system", "builder", SA_SECRET), 0);
        assert_int_equal(MOUNTS(w, "pullpolicy-system", "builder", SA_SECRET), 0);
        /* its own service account keeps OpenShift's link, untouched */
        assert_int_equal(PULLS(w, "pullpolicy-system", "default", SA_SECRET), 1);
        assert_int_equal(MOUNTS(w, "pullpolicy-system", "default", SA_SECRET), 1);
        assert_null(kube_meta_annotation(&get_sa(w, "pullpolicy-system", "default")->meta,
                                         NAMES_ANNOTATION_LINKS));
        assert_null(entry_text(w, INTERNAL_REGISTRY));
        assert_string_equal(pstatus(w, "pullpolicy-system", "spread")->ready_reason,
                            "ServiceAccountSecret");
}

static void test_sa_secret_annotated_sa_name(void **state) {
        world *w = *state;
        sa_secret_world(w, "\"annotations\":{\"kubernetes.io/service-account.name\":\"default\"}",
                        NULL);
        assert_sa_secret_refused(w, true);
}

static void test_sa_secret_internal_registry_annotation(void **state) {
        world *w = *state;
        sa_secret_world(w,
                        "\"annotations\":{\"openshift.io/"
                        "internal-registry-auth-token.service-account\":\"default\"}",
                        NULL);
        assert_sa_secret_refused(w, true);
}

static void test_sa_secret_owned_by_sa(void **state) {
        world *w = *state;
        sa_secret_world(w,
                        "\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\","
                        "\"name\":\"default\",\"uid\":\"sa-uid\"}]",
                        NULL);
        assert_sa_secret_refused(w, true);
}

static void test_sa_secret_named_by_pull_secret_ref(void **state) {
        world *w = *state;
        /* a plain secret; only the account's annotation says whose it is */
        sa_secret_world(w, NULL,
                        "{\"annotations\":{\"openshift.io/internal-registry-pull-secret-ref\":"
                        "\"" SA_SECRET "\"}}");
        assert_sa_secret_refused(w, true);
}

static void test_sa_secret_token_type(void **state) {
        world *w = *state;
        sa_secret_world(w, NULL, NULL);
        /* the same name, now a legacy token secret */
        world_put_str(w, K_SECRET,
                      "{\"type\":\"kubernetes.io/service-account-token\",\"metadata\":{\"name\":"
                      "\"" SA_SECRET "\",\"namespace\":\"pullpolicy-system\"},"
                      "\"data\":{\"token\":\"dG9rZW4=\"}}");
        assert_sa_secret_refused(w, true);
}

/* Copies and links a policy made before the secret was known as a service account's go. */
static void test_sa_secret_spread_before_is_undone(void **state) {
        world *w = *state;
        sa_secret_world(w, NULL, NULL);
        converge(w, "pullpolicy-system", "spread");
        assert_non_null(world_find(w, K_SECRET, "tenant-a", SA_SECRET));
        assert_int_equal(PULLS(w, "tenant-a", "default", SA_SECRET), 1);
        assert_int_equal(PULLS(w, "pullpolicy-system", "builder", SA_SECRET), 1);
        char *e = entry_text(w, INTERNAL_REGISTRY);
        assert_non_null(e);
        free(e);

        secret_add(w, "pullpolicy-system", SA_SECRET,
                   "{\"" INTERNAL_REGISTRY "\":{\"auth\":\"dG9rZW4=\"}}",
                   "\"annotations\":{\"kubernetes.io/service-account.name\":\"default\"}");
        plan *pl = world_plan(w, "pullpolicy-system", "spread");
        assert_non_null(find_write(pl, PLAN_COPY_DELETE, "tenant-a", SA_SECRET));
        assert_non_null(find_write(pl, PLAN_COPY_DELETE, "tenant-b", SA_SECRET));
        assert_int_equal(count_writes(pl, PLAN_COPY_UPDATE), 0);
        assert_non_null(find_write(pl, PLAN_SA_EDIT, "tenant-a", "default"));
        assert_non_null(find_write(pl, PLAN_SA_EDIT, "pullpolicy-system", "builder"));
        assert_null(find_write(pl, PLAN_SA_EDIT, "pullpolicy-system", "default"));
        assert_non_null(find_write(pl, PLAN_GLOBAL_EDIT, "openshift-config", "pull-secret"));
        world_apply(w, "pullpolicy-system", "spread", pl);
        plan_free(pl);
        assert_sa_secret_refused(w, false);
}

/* Copies of a service account's secret go even when the home has left the distribution list. */
static void test_sa_secret_copies_go_without_distribution(void **state) {
        world *w = *state;
        sa_secret_world(w, NULL, NULL);
        converge(w, "pullpolicy-system", "spread");
        assert_non_null(world_find(w, K_SECRET, "tenant-a", SA_SECRET));
        w->dist[0] = "somewhere-else";
        secret_add(w, "pullpolicy-system", SA_SECRET,
                   "{\"" INTERNAL_REGISTRY "\":{\"auth\":\"dG9rZW4=\"}}",
                   "\"annotations\":{\"kubernetes.io/service-account.name\":\"default\"}");
        plan *pl = world_plan(w, "pullpolicy-system", "spread");
        assert_non_null(find_write(pl, PLAN_COPY_DELETE, "tenant-a", SA_SECRET));
        assert_non_null(find_write(pl, PLAN_COPY_DELETE, "tenant-b", SA_SECRET));
        assert_non_null(find_write(pl, PLAN_SA_EDIT, "tenant-a", "default"));
        plan_free(pl);
        converge(w, "pullpolicy-system", "spread");
        assert_null(world_find(w, K_SECRET, "tenant-a", SA_SECRET));
        assert_null(world_find(w, K_SECRET, "tenant-b", SA_SECRET));
        assert_int_equal(PULLS(w, "tenant-a", "default", SA_SECRET), 0);
        assert_int_equal(PULLS(w, "pullpolicy-system", "default", SA_SECRET), 1);
}

/* ---- deletion and the global pull secret (issue 7, item 2) --------------------------------- */

/* The global pull secret as the metadata watch alone knows it (its full form not fetched). */
static void secret_meta_only(world *w, const char *ns, const char *name) {
        obj *o = world_find(w, K_SECRET, ns, name);
        assert_non_null(o);
        model_secret *m = NULL;
        assert_int_equal(model_secret_decode_meta(o->json, &m), 0);
        model_free(o->k, o->model);
        o->model = m;
}

static void secret_full_again(world *w, const char *ns, const char *name) {
        obj *o = world_find(w, K_SECRET, ns, name);
        assert_non_null(o);
        model_free(o->k, o->model);
        o->model = model_decode(K_SECRET, o->json);
}

static void merged_then_deleted_unfetched(world *w, bool leave_distribution) {
        ns_add(w, "pullpolicy-system", NULL);
        secret_add(w, "openshift-config", "pull-secret", GLOBAL_AUTHS, NULL);
        secret_add(w, "pullpolicy-system", "mine", "{\"mine.io\":{\"auth\":\"eA==\"}}", NULL);
        policy_add(w, "pullpolicy-system", "g",
                   "{\"pullSecrets\":[{\"name\":\"mine\"}],\"subjects\":{\"serviceAccounts\":[]},"
                   "\"globalPullSecret\":{\"merge\":true}}",
                   true);
        converge(w, "pullpolicy-system", "g");
        char *e = entry_text(w, "mine.io");
        assert_non_null(e);
        free(e);
        if (leave_distribution) w->dist[0] = "somewhere-else";
        policy_mark_deleting(w, "pullpolicy-system", "g");
        secret_meta_only(w, "openshift-config", "pull-secret");
        plan *pl = world_plan(w, "pullpolicy-system", "g");
        /* the entries are still there: the finalizer stays, and the plan comes back */
        assert_int_equal(count_writes(pl, PLAN_REMOVE_FINALIZER), 0);
        assert_true(pl->requeue_after > 0);
        plan_free(pl);
        assert_non_null(world_find(w, K_POLICY, "pullpolicy-system", "g"));
        /* once the full secret is there, the entries go, then the finalizer */
        secret_full_again(w, "openshift-config", "pull-secret");
        pl = world_plan(w, "pullpolicy-system", "g");
        const plan_write *pw = find_write(pl, PLAN_GLOBAL_EDIT, "openshift-config", "pull-secret");
        assert_non_null(pw);
        assert_int_equal(pw->global.desired.n_ops, 1);
        assert_int_equal(pw->global.desired.ops[0].kind, PLAN_GLOBAL_REMOVE);
        assert_null(pw->global.desired.merged);
        assert_int_equal(count_writes(pl, PLAN_REMOVE_FINALIZER), 0);
        plan_free(pl);
        converge(w, "pullpolicy-system", "g");
        assert_null(world_find(w, K_POLICY, "pullpolicy-system", "g"));
        assert_null(entry_text(w, "mine.io"));
        const model_secret *g = world_model(w, K_SECRET, "openshift-config", "pull-secret");
        assert_null(kube_meta_annotation(&g->meta, NAMES_ANNOTATION_MERGED));
}

static void test_delete_after_home_left_distribution(void **state) {
        merged_then_deleted_unfetched(*state, true);
}

static void test_delete_global_not_fetched_yet(void **state) {
        merged_then_deleted_unfetched(*state, false);
}

/* ---- DistributionNotAllowed: exactly what goes on (issue 7, item 8) ------------------------ */

static void test_distribution_not_allowed_exactly(void **state) {
        world *w = *state;
        /* first on the distribution list: copies, links and merged entries exist */
        w->dist[0] = "project-b";
        ns_add(w, "project-b", NULL);
        ns_add(w, "project-a", "{\"team\":\"a\"}");
        sa_simple(w, "project-a", "default");
        sa_simple(w, "project-b", "default");
        secret_add(w, "project-b", "quay-creds", QUAY, NULL);
        secret_add(w, "openshift-config", "pull-secret", GLOBAL_AUTHS, NULL);
        policy_add(w, "project-b", "p",
                   "{\"subjects\":{\"namespaces\":[\"project-b\"],\"namespaceSelector\":"
                   "{\"matchLabels\":{\"team\":\"a\"}}},\"imagePuller\":{},"
                   "\"pullSecrets\":[{\"name\":\"quay-creds\"}],\"globalPullSecret\":{\"merge\":"
                   "true}}",
                   true);
        converge(w, "project-b", "p");
        assert_string_equal(pstatus(w, "project-b", "p")->ready_reason, "Applied");
        const model_secret *copy = world_model(w, K_SECRET, "project-a", "quay-creds");
        assert_non_null(copy);
        char *copy_rv = strdup(copy->meta.resource_version);
        char *global_rv = strdup(
            ((const model_secret *)world_model(w, K_SECRET, "openshift-config", "pull-secret"))
                ->meta.resource_version);

        /* the home leaves the list; new subjects arrive in both namespaces */
        w->dist[0] = "pullpolicy-system";
        ns_add(w, "project-c", "{\"team\":\"a\"}");
        sa_simple(w, "project-c", "default");
        sa_simple(w, "project-a", "builder");
        sa_simple(w, "project-b", "builder");
        plan *pl = world_plan(w, "project-b", "p");
        /* allowed: the RoleBinding (in the home) for the new namespace, the home's links */
        const plan_write *rb = NULL;
        for (size_t i = 0; !rb && i < pl->n_writes; i++)
                if (pl->writes[i].kind == PLAN_RB_CREATE) rb = &pl->writes[i];
        assert_non_null(rb);
        assert_string_equal(rb->namespace, "project-b");
        assert_string_equal(rb->rb.subject_namespace, "project-c");
        assert_int_equal(count_writes(pl, PLAN_RB_CREATE) + count_writes(pl, PLAN_RB_UPDATE), 1);
        assert_non_null(find_write(pl, PLAN_SA_EDIT, "project-b", "builder"));
        /* refused: copies (R5), links to copies outside the home, the global merge (R6) */
        assert_int_equal(count_writes(pl, PLAN_COPY_CREATE), 0);
        assert_int_equal(count_writes(pl, PLAN_COPY_UPDATE), 0);
        assert_int_equal(count_writes(pl, PLAN_GLOBAL_EDIT), 0);
        /* and nothing made before is removed while the policy stands */
        assert_int_equal(count_writes(pl, PLAN_COPY_DELETE), 0);
        assert_int_equal(count_writes(pl, PLAN_RB_DELETE), 0);
        for (size_t i = 0; i < pl->n_writes; i++)
                if (pl->writes[i].kind == PLAN_SA_EDIT)
                        assert_string_equal(pl->writes[i].namespace, "project-b");
        assert_int_equal(pl->n_writes, 2);
        assert_string_equal(pl->status.ready_status, "False");
        assert_string_equal(pl->status.ready_reason, "DistributionNotAllowed");
        plan_free(pl);
        converge(w, "project-b", "p");
        assert_string_equal(pstatus(w, "project-b", "p")->ready_reason, "DistributionNotAllowed");
        assert_int_equal(PULLS(w, "project-b", "builder", "quay-creds"), 1);
        assert_int_equal(PULLS(w, "project-a", "default", "quay-creds"), 1);
        assert_int_equal(PULLS(w, "project-a", "builder", "quay-creds"), 0);
        assert_null(world_find(w, K_SECRET, "project-c", "quay-creds"));
        copy = world_model(w, K_SECRET, "project-a", "quay-creds");
        assert_non_null(copy);
        assert_string_equal(copy->meta.resource_version, copy_rv);
        assert_string_equal(
            ((const model_secret *)world_model(w, K_SECRET, "openshift-config", "pull-secret"))
                ->meta.resource_version,
            global_rv);
        free(copy_rv);
        free(global_rv);
}

/* ---- orphans of a force-removed finalizer (issue 7, item 7) ---------------------------- */

static plan *world_plan_orphan(world *w, const char *ns, const char *name) {
        plan_memsnap *m = NULL;
        assert_int_equal(plan_memsnap_new(&m), 0);
        for (size_t i = 0; i < w->n; i++) {
                const obj *o = &w->objs[i];
                int r = o->k == K_NS       ? plan_memsnap_add_namespace(m, o->model)
                        : o->k == K_SA     ? plan_memsnap_add_sa(m, o->model)
                        : o->k == K_SECRET ? plan_memsnap_add_secret(m, o->model)
                        : o->k == K_RB     ? plan_memsnap_add_role_binding(m, o->model)
                                           : plan_memsnap_add_policy(m, o->model);
                assert_int_equal(r, 0);
        }
        plan_snapshot snap = plan_memsnap_snapshot(m);
        plan *pl = NULL;
        assert_int_equal(plan_orphan(ns, name, &snap, &w->set, &pl), 0);
        plan_memsnap_free(m);
        return pl;
}

static void test_orphan_undone(void **state) {
        world *w = *state;
        w->dist[0] = "project-b";
        ns_add(w, "project-b", NULL);
        ns_add(w, "project-a", NULL);
        sa_simple(w, "project-a", "default");
        sa_simple(w, "project-b", "default");
        secret_add(w, "project-b", "quay-creds", QUAY, NULL);
        secret_add(w, "openshift-config", "pull-secret", GLOBAL_AUTHS, NULL);
        const char *spec =
            "{\"subjects\":{\"namespaces\":[\"project-a\",\"project-b\"]},\"imagePuller\":{},"
            "\"pullSecrets\":[{\"name\":\"quay-creds\",\"for\":[\"pull\",\"mount\"]}],"
            "\"globalPullSecret\":{\"merge\":true}}";
        policy_add(w, "project-b", "p", spec, true);
        /* another policy of the home that stays: its own objects are not touched */
        policy_add(w, "project-b", "keep",
                   "{\"subjects\":{\"namespaces\":[\"project-a\"]},\"imagePuller\":{}}", true);
        size_t before = w->n;
        converge(w, "project-b", "p");
        converge(w, "project-b", "keep");
        assert_int_equal(w->n, before + 4); /* three bindings, one copy */
        char *e = entry_text(w, "quay.io");
        assert_non_null(e);
        free(e);

        /* its finalizer removed by hand: the policy is gone, its objects stay */
        assert_true(world_del(w, K_POLICY, "project-b", "p"));
        plan *pl = world_plan_orphan(w, "project-b", "p");
        assert_int_equal(count_writes(pl, PLAN_RB_DELETE), 2);
        assert_int_equal(count_writes(pl, PLAN_SA_EDIT), 2);
        assert_int_equal(count_writes(pl, PLAN_GLOBAL_EDIT), 1);
        assert_int_equal(count_writes(pl, PLAN_COPY_DELETE), 1);
        assert_int_equal(count_writes(pl, PLAN_REMOVE_FINALIZER), 0);
        assert_int_equal(pl->n_events, 0);
        assert_false(pl->has_status);
        assert_int_equal(pl->requeue_after, 1);
        world_apply(w, "project-b", "p", pl);
        plan_free(pl);
        /* the next round finds nothing: no writes, no requeue */
        pl = world_plan_orphan(w, "project-b", "p");
        assert_int_equal(pl->n_writes, 0);
        assert_true(pl->requeue_after < 0);
        plan_free(pl);
        assert_int_equal(w->n, before - 1 + 1); /* p gone; keep's binding stays */
        assert_non_null(world_find(w, K_POLICY, "project-b", "keep"));
        assert_int_equal(get_sa(w, "project-a", "default")->n_pull_secrets, 0);
        assert_int_equal(get_sa(w, "project-b", "default")->n_secrets, 0);
        assert_null(
            kube_meta_annotation(&get_sa(w, "project-a", "default")->meta, NAMES_ANNOTATION_LINKS));
        assert_null(world_find(w, K_SECRET, "project-a", "quay-creds"));
        assert_null(entry_text(w, "quay.io"));
        assert_int_equal(converge(w, "project-b", "keep"), 1);
}

/* ---- one namespace's plan (plan_policy_namespaces) ---------------------------------------- */

static plan *world_plan_namespace(world *w, const char *home, const char *name, const char *ns,
                                  int expect) {
        plan_memsnap *m = NULL;
        assert_int_equal(plan_memsnap_new(&m), 0);
        for (size_t i = 0; i < w->n; i++) {
                const obj *o = &w->objs[i];
                int r = o->k == K_NS       ? plan_memsnap_add_namespace(m, o->model)
                        : o->k == K_SA     ? plan_memsnap_add_sa(m, o->model)
                        : o->k == K_SECRET ? plan_memsnap_add_secret(m, o->model)
                        : o->k == K_RB     ? plan_memsnap_add_role_binding(m, o->model)
                                           : plan_memsnap_add_policy(m, o->model);
                assert_int_equal(r, 0);
        }
        plan_snapshot snap = plan_memsnap_snapshot(m);
        const model_policy *p = world_model(w, K_POLICY, home, name);
        assert_non_null(p);
        plan *pl = NULL;
        char *nss[] = {(char *)ns, (char *)ns}; /* a repeat changes nothing */
        assert_int_equal(plan_policy_namespaces(p, nss, 2, &snap, &w->set, &pl), expect);
        plan_memsnap_free(m);
        return pl;
}

/* The namespace a write concerns: a binding's subject namespace, else its own. */
static const char *write_ns(const plan_write *pw) {
        return pw->kind == PLAN_RB_CREATE || pw->kind == PLAN_RB_UPDATE ||
                       pw->kind == PLAN_RB_DELETE
                   ? pw->rb.subject_namespace
                   : pw->namespace;
}

static bool same_write(const plan_write *a, const plan_write *b) {
        if (a->kind != b->kind || !streq_ptr(a->namespace, b->namespace) ||
            !streq(a->name, b->name) || !streq_ptr(a->resource_version, b->resource_version))
                return false;
        if (a->kind == PLAN_SA_EDIT) {
                const plan_sa_desired *x = &a->sa.desired, *y = &b->sa.desired;
                if (x->n_pull_secrets != y->n_pull_secrets || x->n_secrets != y->n_secrets ||
                    !streq_ptr(x->links, y->links))
                        return false;
                for (size_t i = 0; i < x->n_pull_secrets; i++)
                        if (!streq(x->pull_secrets[i], y->pull_secrets[i])) return false;
                for (size_t i = 0; i < x->n_secrets; i++)
                        if (!streq(x->secrets[i], y->secrets[i])) return false;
        }
        if (a->kind == PLAN_RB_CREATE || a->kind == PLAN_RB_UPDATE) {
                if (a->rb.n_subjects != b->rb.n_subjects) return false;
                for (size_t i = 0; i < a->rb.n_subjects; i++)
                        if (!streq(a->rb.subjects[i].name, b->rb.subjects[i].name)) return false;
        }
        return true;
}

/*
 * The whole plan's writes for ns, in their order, and nothing else, copy deletes aside: what
 * the plan of ns alone must be. Returns how many there were.
 */
static size_t assert_namespace_plan(world *w, const char *home, const char *name, const char *ns) {
        plan *all = world_plan(w, home, name);
        plan *one = world_plan_namespace(w, home, name, ns, 0);
        assert_false(one->has_status);
        size_t k = 0;
        for (size_t i = 0; i < all->n_writes; i++) {
                /* deleting a copy is the whole plan's (the namespace, the source or the spec
                 * changed: never the path of an account's or a binding's change) */
                if (!streq_ptr(write_ns(&all->writes[i]), ns) ||
                    all->writes[i].kind == PLAN_COPY_DELETE)
                        continue;
                if (k >= one->n_writes || !same_write(&all->writes[i], &one->writes[k]))
                        fail_msg("write %zu of the whole plan (%s %s/%s) is not write %zu of the "
                                 "plan of %s",
                                 i, plan_write_kind_to_string(all->writes[i].kind),
                                 all->writes[i].namespace, all->writes[i].name, k, ns);
                k++;
        }
        if (k != one->n_writes)
                fail_msg("the plan of %s has %zu writes, the whole plan %zu for it", ns,
                         one->n_writes, k);
        plan_free(all);
        plan_free(one);
        return k;
}

/*
 * Issue 10: a new service account must not cost a plan of every account of the policy. The
 * plan of its namespace alone makes exactly the whole plan's writes for that namespace —
 * a binding's subjects, a missing copy, the new account's link, a stale claim — and no
 * status; the whole plan afterwards only recounts.
 */
static void test_namespace_plan_matches_whole_plan(void **state) {
        world *w = *state;
        w->dist[0] = "project-h";
        ns_add(w, "project-h", NULL);
        const char *nss[] = {"project-a", "project-b", "project-c"};
        for (size_t i = 0; i < ARRAY_SIZE(nss); i++) {
                ns_add(w, nss[i], "{\"team\":\"a\"}");
                sa_add(w, nss[i], "one", "{\"pulls\":\"true\"}", NULL, NULL, NOW - 100000, NULL);
                sa_add(w, nss[i], "two", "{\"pulls\":\"true\"}", NULL, NULL, NOW - 100000, NULL);
        }
        secret_add(w, "project-h", "quay-creds", QUAY, NULL);
        policy_add(w, "project-h", "p",
                   "{\"subjects\":{\"namespaceSelector\":{\"matchLabels\":{\"team\":\"a\"}},"
                   "\"serviceAccountSelector\":{\"matchLabels\":{\"pulls\":\"true\"}}},"
                   "\"imagePuller\":{},\"pullSecrets\":[{\"name\":\"quay-creds\"}],"
                   "\"dockercfg\":{\"wait\":\"Never\"}}",
                   true);
        converge(w, "project-h", "p");
        assert_int_equal(pstatus(w, "project-h", "p")->linked, 6);
        for (size_t i = 0; i < ARRAY_SIZE(nss); i++)
                assert_int_equal(assert_namespace_plan(w, "project-h", "p", nss[i]), 0);

        /* a new account: the binding of its namespace gains it, and it is linked */
        sa_add(w, "project-b", "new", "{\"pulls\":\"true\"}", NULL, NULL, NOW - 10, NULL);
        assert_int_equal(assert_namespace_plan(w, "project-h", "p", "project-b"), 2);
        assert_int_equal(assert_namespace_plan(w, "project-h", "p", "project-a"), 0);
        plan *pl = world_plan_namespace(w, "project-h", "p", "project-b", 0);
        assert_non_null(find_write(pl, PLAN_RB_UPDATE, "project-h", rbn("p", "project-b")));
        assert_non_null(find_write(pl, PLAN_SA_EDIT, "project-b", "new"));
        assert_non_null(find_event(pl, "Linked"));
        world_apply(w, "project-h", "p", pl);
        plan_free(pl);
        /* then the whole plan has nothing left to write: it only counts the new account */
        pl = world_plan(w, "project-h", "p");
        assert_int_equal(pl->n_writes, 0);
        assert_true(pl->status_changed);
        assert_int_equal(pl->status.linked, 7);
        plan_free(pl);
        converge(w, "project-h", "p");

        /* an account that leaves the selector: out of the binding, its link removed (R7) */
        set_labels(w, K_SA, "project-c", "two", "{\"pulls\":\"false\"}");
        assert_int_equal(assert_namespace_plan(w, "project-h", "p", "project-c"), 2);
        /* a copy gone: made again, before the links to it */
        assert_true(world_del(w, K_SECRET, "project-a", "quay-creds"));
        assert_int_equal(assert_namespace_plan(w, "project-h", "p", "project-a"), 1);
        /* a namespace that is no subject any more: its binding and its accounts' claims go */
        set_labels(w, K_NS, NULL, "project-c", "{\"team\":\"z\"}");
        assert_int_equal(assert_namespace_plan(w, "project-h", "p", "project-c"), 3);
        pl = world_plan_namespace(w, "project-h", "p", "project-c", 0);
        /* its binding; "two"'s claim, not yet removed above, and "one"'s */
        assert_non_null(find_write(pl, PLAN_RB_DELETE, "project-h", rbn("p", "project-c")));
        assert_int_equal(count_writes(pl, PLAN_SA_EDIT), 2);
        assert_int_equal(count_writes(pl, PLAN_RB_DELETE), 1); /* the others' stay */
        plan_free(pl);

        /* the home decides what a source is (R5): only the whole plan will do */
        assert_null(world_plan_namespace(w, "project-h", "p", "project-h", -ENOTSUP));
        converge(w, "project-h", "p");
        assert_int_equal(pstatus(w, "project-h", "p")->linked, 5);
}

#define T(f) cmocka_unit_test_setup_teardown(f, world_setup, world_teardown)

int main(void) {
        const struct CMUnitTest tests[] = {
            T(test_finalizer_added_first),
            T(test_sa_desired_apply_json_keeps_unnamed),
            T(test_invalid_spec),
            T(test_invalid_spec_keeps_existing_objects),
            T(test_home_group_binding),
            T(test_seed_add_role_to_user),
            T(test_subjects_names_and_selector_union),
            T(test_empty_selector_means_group),
            T(test_namespace_leaving_selector),
            T(test_terminating_namespace_excluded),
            T(test_role_not_allowed),
            T(test_role_change_replaces_binding),
            T(test_foreign_role_binding_conflict),
            T(test_long_names),
            T(test_role_binding_names_do_not_collide),
            T(test_role_binding_legacy_name_replaced),
            T(test_link_basic_and_converged),
            T(test_counts_without_undone_writes),
            T(test_link_not_patchable),
            T(test_link_for_mount_and_pull),
            T(test_secret_not_found),
            T(test_invalid_secret),
            T(test_secret_deleted_and_recreated),
            T(test_overlapping_policies_share_link),
            T(test_foreign_link_survives_cleanup),
            T(test_sa_selected_by_two_policies),
            T(test_malformed_links_annotation),
            T(test_wait_pre416),
            T(test_wait_416),
            T(test_wait_auto_without_openshift),
            T(test_wait_auto_registry_removed),
            T(test_status_dockercfg_form_change),
            T(test_status_keeps_credentials_condition),
            T(test_wait_timeout),
            T(test_wait_keeps_existing_links),
            T(test_distribution_copies),
            T(test_distribution_conflict),
            T(test_distribution_not_allowed),
            T(test_copy_handed_over),
            T(test_global_merge),
            T(test_global_conflict),
            T(test_global_merge_not_allowed),
            T(test_delete_undoes_everything),
            T(test_deleting_without_finalizer_does_nothing),
            T(test_problems_capped),
            T(test_status_transition_time),
            T(test_sa_edit_rerun_after_conflict),
            T(test_sa_edit_released_claim),
            T(test_sa_edit_adopts_resurrected),
            T(test_sa_edit_duplicates_and_order),
            T(test_sa_desired_apply_json_keeps_fields),
            T(test_global_edit_direct),
            T(test_bad_arguments),
            T(test_sa_secret_annotated_sa_name),
            T(test_sa_secret_internal_registry_annotation),
            T(test_sa_secret_owned_by_sa),
            T(test_sa_secret_named_by_pull_secret_ref),
            T(test_sa_secret_token_type),
            T(test_sa_secret_spread_before_is_undone),
            T(test_sa_secret_copies_go_without_distribution),
            T(test_delete_after_home_left_distribution),
            T(test_delete_global_not_fetched_yet),
            T(test_distribution_not_allowed_exactly),
            T(test_orphan_undone),
            T(test_namespace_plan_matches_whole_plan),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
