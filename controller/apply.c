/* SPDX-License-Identifier: Apache-2.0 */
#include "apply.h"
#include "apply_internal.h"

#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kube/errors.h"
#include "kube/meta.h"
#include "kube/ratelimit.h"
#include "kube/types.h"
#include "names.h"
#include "util/base64.h"
#include "util/jsonutil.h"
#include "util/macro.h"
#include "util/str.h"
#include "util/timefmt.h"

#define DEFAULT_GLOBAL_NS    "openshift-config"
#define DEFAULT_GLOBAL_NAME  "pull-secret"
#define DOCKERCONFIGJSON_KEY ".dockerconfigjson"
/* Nesting accepted in objects read back (managedFields nest a few levels per field). */
#define BODY_JSON_DEPTH 64
#define JSON_FLAGS      (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define RBAC_GROUP      "rbac.authorization.k8s.io"

/* ---- small JSON helpers ------------------------------------------------------------------ */

static int put_str(json_object *o, const char *k, const char *s) {
        return jsonutil_add(o, k, json_object_new_string(s));
}

static int put_str_cut(json_object *o, const char *k, const char *s, size_t max) {
        return jsonutil_add(o, k,
                            json_object_new_string_len(s, (int)str_utf8_cut(s, strlen(s), max)));
}

/* The object member k of o, created empty when absent; NULL when it is not an object. */
static json_object *member_obj(json_object *o, const char *k, int *err) {
        json_object *v = jsonutil_member(o, k);
        if (v) {
                if (!json_object_is_type(v, json_type_object)) {
                        *err = -EINVAL;
                        return NULL;
                }
                return v;
        }
        v = json_object_new_object();
        if (jsonutil_add(o, k, v) < 0) {
                *err = -ENOMEM;
                return NULL;
        }
        return v;
}

/*
 * json-c keeps the last serialization of an object in a buffer inside it: zero it
 * when it held credentials (call only on objects that were serialized; json-c's
 * other internal copies are beyond reach).
 */
static void wipe_serialization(json_object *o) {
        size_t len = 0;
        const char *s = json_object_to_json_string_length(o, JSON_FLAGS, &len);
        if (s) explicit_bzero((char *)s, len);
}

/* ---- pure helpers ----------------------------------------------------------------------- */

int pp_apply_finalizer_patch(const kube_meta *meta, const char *rv, bool add, json_object **ret) {
        if (!meta || !ret) return -EINVAL;
        bool present = kube_meta_has_finalizer(meta, NAMES_FINALIZER);
        if (present == add) return 0;
        json_object *patch = json_object_new_object(), *md = json_object_new_object(),
                    *list = json_object_new_array();
        int r = patch && md && list ? 0 : -ENOMEM;
        for (size_t i = 0; r >= 0 && i < meta->n_finalizers; i++) {
                const char *f = meta->finalizers[i];
                if (streq(f, NAMES_FINALIZER)) continue; /* removed, or re-added once below */
                json_object *s = json_object_new_string(f);
                if (!s || json_object_array_add(list, s) < 0) {
                        json_object_put(s);
                        r = -ENOMEM;
                }
        }
        if (r >= 0 && add) {
                json_object *s = json_object_new_string(NAMES_FINALIZER);
                if (!s || json_object_array_add(list, s) < 0) {
                        json_object_put(s);
                        r = -ENOMEM;
                }
        }
        if (r >= 0) {
                r = jsonutil_add(md, "finalizers", list);
                list = NULL;
        }
        if (r >= 0 && rv) r = put_str(md, "resourceVersion", rv);
        if (r >= 0) {
                r = jsonutil_add(patch, "metadata", md);
                md = NULL;
        }
        json_object_put(list);
        json_object_put(md);
        if (r < 0) {
                json_object_put(patch);
                return r;
        }
        *ret = patch;
        return 1;
}

/* o[k] = JSON null: in a merge patch, drop the field. */
static int put_null(json_object *o, const char *k) {
        return json_object_object_add(o, k, NULL) < 0 ? -ENOMEM : 0;
}

/* The names as a list of {name: ...} references, or JSON null when there are none. */
static int put_refs(json_object *o, const char *k, char *const *names, size_t n) {
        if (n == 0) return put_null(o, k);
        json_object *list = json_object_new_array_ext((int)n);
        int r = list ? 0 : -ENOMEM;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                json_object *e = json_object_new_object();
                if (!e || json_object_array_add(list, e) < 0) {
                        json_object_put(e);
                        r = -ENOMEM;
                } else
                        r = put_str(e, "name", names[i]);
        }
        if (r < 0) {
                json_object_put(list);
                return r;
        }
        return jsonutil_add(o, k, list);
}

int pp_apply_sa_patch(const plan_sa_desired *d, const char *rv, json_object **ret) {
        if (!d || !rv || !ret) return -EINVAL;
        json_object *patch = json_object_new_object();
        if (!patch) return -ENOMEM;
        int r = -ENOMEM;
        json_object *md = member_obj(patch, "metadata", &r);
        json_object *ann = md ? member_obj(md, "annotations", &r) : NULL;
        if (!ann) goto fail;
        r = put_str(md, "resourceVersion", rv);
        if (r >= 0)
                r = d->links ? put_str(ann, NAMES_ANNOTATION_LINKS, d->links)
                             : put_null(ann, NAMES_ANNOTATION_LINKS);
        if (r >= 0) r = put_refs(patch, "secrets", d->secrets, d->n_secrets);
        if (r >= 0) r = put_refs(patch, "imagePullSecrets", d->pull_secrets, d->n_pull_secrets);
        if (r < 0) goto fail;
        *ret = patch;
        return 0;
fail:
        json_object_put(patch);
        return r;
}

int pp_apply_delete_options(const char *uid, const char *rv, char **ret) {
        if (!ret) return -EINVAL;
        json_object *o = json_object_new_object(), *pre = json_object_new_object();
        int r = o && pre ? 0 : -ENOMEM;
        if (r >= 0) r = put_str(o, "apiVersion", "v1");
        if (r >= 0) r = put_str(o, "kind", "DeleteOptions");
        if (r >= 0) r = put_str(o, "propagationPolicy", "Background");
        if (r >= 0 && uid) r = put_str(pre, "uid", uid);
        if (r >= 0 && rv) r = put_str(pre, "resourceVersion", rv);
        if (r >= 0 && (uid || rv)) {
                r = jsonutil_add(o, "preconditions", pre);
                pre = NULL;
        }
        json_object_put(pre);
        if (r < 0) {
                json_object_put(o);
                return r;
        }
        const char *text = json_object_to_json_string_ext(o, JSON_FLAGS);
        char *s = text ? strdup(text) : NULL;
        json_object_put(o);
        if (!s) return -ENOMEM;
        *ret = s;
        return 0;
}

static bool ready_status_ok(const char *s) {
        return s && (streq(s, "True") || streq(s, "False") || streq(s, "Unknown"));
}

static int put_count(json_object *o, const char *k, int v) {
        return jsonutil_add(o, k, json_object_new_int(v < 0 ? 0 : v));
}

/* Another writer's condition, verbatim: a merge patch replaces the whole list. */
static int add_condition(json_object *conds, const char *type, const model_condition *cv) {
        json_object *c = json_object_new_object();
        int r = c ? 0 : -ENOMEM;
        if (r >= 0) r = put_str(c, "type", type);
        if (r >= 0) r = put_str(c, "status", cv->status);
        if (r >= 0) r = put_str_cut(c, "reason", cv->reason, 1024);
        if (r >= 0)
                r = put_str_cut(c, "message", cv->message ? cv->message : "",
                                PP_APPLY_CONDITION_MESSAGE_MAX);
        if (r >= 0 && cv->observed_generation >= 0)
                r = jsonutil_add(c, "observedGeneration",
                                 json_object_new_int64(cv->observed_generation));
        if (r >= 0) r = put_str(c, "lastTransitionTime", cv->last_transition);
        if (r >= 0 && json_object_array_add(conds, c) < 0) r = -ENOMEM;
        if (r < 0) json_object_put(c);
        return r;
}

int pp_apply_status_json(const model_policy *policy, const plan_status *st, json_object **ret) {
        if (!policy || !st || !ret || !ready_status_ok(st->ready_status) || !st->ready_reason ||
            !*st->ready_reason)
                return -EINVAL;
        long long gen =
            st->observed_generation >= 0 ? st->observed_generation : policy->meta.generation;
        if (gen < 0) gen = 0;

        /* Keep the stored transition time while Ready's status stays the same. */
        const model_policy_status *old = &policy->status;
        char now[TIMEFMT_RFC3339_MAX];
        const char *ltt = st->ready_last_transition;
        if (!ltt || !*ltt) {
                if (old->has_ready && streq_ptr(old->ready_status, st->ready_status) &&
                    old->ready_last_transition && *old->ready_last_transition)
                        ltt = old->ready_last_transition;
                else if (timefmt_rfc3339(time(NULL), now, sizeof(now)) >= 0)
                        ltt = now;
                else
                        return -EINVAL;
        }

        json_object *s = json_object_new_object(), *conds = json_object_new_array(),
                    *ready = json_object_new_object(), *probs = json_object_new_array();
        int r = s && conds && ready && probs ? 0 : -ENOMEM;
        if (r >= 0) r = jsonutil_add(s, "observedGeneration", json_object_new_int64(gen));
        if (r >= 0) r = put_str(ready, "type", "Ready");
        if (r >= 0) r = put_str(ready, "status", st->ready_status);
        if (r >= 0) r = put_str_cut(ready, "reason", st->ready_reason, 1024);
        if (r >= 0)
                r = put_str_cut(ready, "message", st->ready_message ? st->ready_message : "",
                                PP_APPLY_CONDITION_MESSAGE_MAX);
        if (r >= 0) r = jsonutil_add(ready, "observedGeneration", json_object_new_int64(gen));
        if (r >= 0) r = put_str(ready, "lastTransitionTime", ltt);
        if (r >= 0) {
                if (json_object_array_add(conds, ready) < 0)
                        r = -ENOMEM;
                else
                        ready = NULL;
        }
        if (r >= 0 && st->has_credentials)
                r = add_condition(conds, "CredentialsVerified", &st->credentials);
        if (r >= 0) {
                r = jsonutil_add(s, "conditions", conds);
                conds = NULL;
        }
        if (r >= 0) r = put_count(s, "namespaces", st->namespaces);
        if (r >= 0) r = put_count(s, "roleBindings", st->role_bindings);
        if (r >= 0) r = put_count(s, "linkedServiceAccounts", st->linked);
        if (r >= 0) r = put_count(s, "waitingServiceAccounts", st->waiting);
        if (r >= 0) r = put_count(s, "stalePods", st->stale_pods);
        if (r >= 0 && st->dockercfg_form) r = put_str(s, "dockercfgForm", st->dockercfg_form);
        size_t n = MIN(st->n_problems, (size_t)MODEL_PROBLEMS_MAX);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                const model_problem *p = &st->problems[i];
                json_object *o = json_object_new_object();
                r = o ? 0 : -ENOMEM;
                if (r >= 0 && p->namespace)
                        r = put_str_cut(o, "namespace", p->namespace,
                                        PP_APPLY_PROBLEM_NAMESPACE_MAX);
                if (r >= 0 && p->name)
                        r = put_str_cut(o, "name", p->name, PP_APPLY_PROBLEM_NAME_MAX);
                if (r >= 0)
                        r = put_str_cut(o, "reason",
                                        p->reason && *p->reason ? p->reason : "Unknown",
                                        PP_APPLY_PROBLEM_REASON_MAX);
                if (r >= 0 && p->message)
                        r = put_str_cut(o, "message", p->message, PP_APPLY_PROBLEM_MESSAGE_MAX);
                if (r >= 0 && json_object_array_add(probs, o) < 0) r = -ENOMEM;
                if (r < 0) json_object_put(o);
        }
        if (r >= 0) {
                r = jsonutil_add(s, "problems", probs);
                probs = NULL;
        }
        json_object_put(conds);
        json_object_put(ready);
        json_object_put(probs);
        if (r < 0) {
                json_object_put(s);
                return r;
        }
        *ret = s;
        return 0;
}

int pp_apply_copy_json(json_object *source, const plan_write *w, json_object *base,
                       json_object **ret) {
        if (!source || !w || !ret || !w->namespace || !w->name || !w->copy.source_namespace ||
            !w->copy.source_name || !w->copy.policy_name)
                return -EINVAL;
        if (!json_object_is_type(source, json_type_object) ||
            !streq_ptr(jsonutil_member_str(source, "kind"), "Secret"))
                return -EINVAL;
        json_object *data = jsonutil_member(source, "data");
        if (data && !json_object_is_type(data, json_type_object) &&
            !json_object_is_type(data, json_type_null))
                return -EINVAL;
        if (data && json_object_is_type(data, json_type_null)) data = NULL;
        const char *type = jsonutil_member_str(source, "type");

        json_object *c = NULL;
        int r = 0;
        if (base) {
                if (!json_object_is_type(base, json_type_object)) return -EINVAL;
                json_object *bm = jsonutil_member(base, "metadata");
                if (!streq_ptr(jsonutil_member_str(bm, "name"), w->name) ||
                    !streq_ptr(jsonutil_member_str(bm, "namespace"), w->namespace))
                        return -EINVAL;
                if (json_object_deep_copy(base, &c, NULL) < 0) return -ENOMEM;
                /* write-only and derived fields; immutable copies are re-created instead */
                json_object_object_del(c, "stringData");
                json_object_object_del(c, "immutable");
        } else {
                c = json_object_new_object();
                json_object *md = json_object_new_object();
                r = c && md ? 0 : -ENOMEM;
                if (r >= 0) r = put_str(md, "name", w->name);
                if (r >= 0) r = put_str(md, "namespace", w->namespace);
                if (r >= 0) {
                        r = jsonutil_add(c, "metadata", md);
                        md = NULL;
                }
                json_object_put(md);
                if (r >= 0) r = put_str(c, "apiVersion", "v1");
                if (r >= 0) r = put_str(c, "kind", "Secret");
                if (r < 0) goto fail;
        }
        json_object *md = member_obj(c, "metadata", &r);
        json_object *labels = md ? member_obj(md, "labels", &r) : NULL;
        json_object *annotations = labels ? member_obj(md, "annotations", &r) : NULL;
        if (!annotations) goto fail;
        r = put_str(labels, NAMES_LABEL_MANAGED_BY, NAMES_MANAGED_BY_VALUE);
        if (r >= 0) r = put_str(labels, NAMES_LABEL_POLICY, w->copy.policy_name);
        if (r >= 0) r = put_str(labels, NAMES_LABEL_POLICY_NAMESPACE, w->copy.source_namespace);
        char *src_ref = NULL;
        if (r >= 0 &&
            asprintf(&src_ref, "%s/%s", w->copy.source_namespace, w->copy.source_name) < 0)
                r = -ENOMEM;
        if (r >= 0) r = put_str(annotations, NAMES_ANNOTATION_SOURCE, src_ref);
        free(src_ref);
        if (r >= 0) r = put_str(c, "type", type ? type : "Opaque");
        if (r >= 0) {
                if (data) {
                        json_object *dc = NULL;
                        if (json_object_deep_copy(data, &dc, NULL) < 0)
                                r = -ENOMEM;
                        else
                                r = jsonutil_add(c, "data", dc);
                } else {
                        json_object_object_del(c, "data");
                }
        }
        if (r < 0) goto fail;
        *ret = c;
        return 0;
fail:
        json_object_put(c);
        return r;
}

/* An owner reference the controller put there for a policy (of this name, or its controller). */
static bool owner_ref_is_policy(json_object *o, const char *policy_name) {
        const char *api = jsonutil_member_str(o, "apiVersion");
        if (!streq_ptr(jsonutil_member_str(o, "kind"), NAMES_POLICY_KIND) || !api ||
            strncmp(api, "pullpolicy.io/", strlen("pullpolicy.io/")) != 0)
                return false;
        json_object *ctl = jsonutil_member(o, "controller");
        return streq_ptr(jsonutil_member_str(o, "name"), policy_name) ||
               (ctl && json_object_is_type(ctl, json_type_boolean) && json_object_get_boolean(ctl));
}

int pp_apply_rb_update_json(json_object *current, const plan_write *w, json_object **ret) {
        if (!current || !w || !ret || w->kind != PLAN_RB_UPDATE || !w->rb.role_name ||
            !json_object_is_type(current, json_type_object))
                return -EINVAL;
        json_object *cm = jsonutil_member(current, "metadata");
        if (!streq_ptr(jsonutil_member_str(cm, "name"), w->name) ||
            !streq_ptr(jsonutil_member_str(cm, "namespace"), w->namespace))
                return -EINVAL;
        /* roleRef is immutable: a binding to another role is not the one planned */
        json_object *ref = jsonutil_member(current, "roleRef");
        if (!streq_ptr(jsonutil_member_str(ref, "kind"), "ClusterRole") ||
            !streq_ptr(jsonutil_member_str(ref, "name"), w->rb.role_name) ||
            !streq_ptr(jsonutil_member_str(ref, "apiGroup"), RBAC_GROUP))
                return -ESTALE;

        json_object *want = NULL, *c = NULL;
        int r = plan_role_binding_json(w, &want);
        if (r < 0) return r;
        if (json_object_deep_copy(current, &c, NULL) < 0) {
                json_object_put(want);
                return -ENOMEM;
        }
        json_object *wm = jsonutil_member(want, "metadata");
        json_object *md = member_obj(c, "metadata", &r);
        json_object *labels = md ? member_obj(md, "labels", &r) : NULL;
        if (!labels) goto fail;
        /* our labels set, everyone else's kept */
        json_object_object_foreach(jsonutil_member(wm, "labels"), k, v) {
                r = jsonutil_add(labels, k, json_object_get(v));
                if (r < 0) goto fail;
        }
        /* owner references: others' kept, ours (or a stale one of ours) replaced */
        json_object *owners = json_object_new_array(),
                    *old = jsonutil_member(md, "ownerReferences");
        if (!owners) {
                r = -ENOMEM;
                goto fail;
        }
        size_t n_old =
            old && json_object_is_type(old, json_type_array) ? json_object_array_length(old) : 0;
        for (size_t i = 0; r >= 0 && i < n_old; i++) {
                json_object *o = json_object_array_get_idx(old, i);
                if (owner_ref_is_policy(o, w->policy_name)) continue;
                if (json_object_array_add(owners, json_object_get(o)) < 0) r = -ENOMEM;
        }
        json_object *mine = jsonutil_member(wm, "ownerReferences");
        for (size_t i = 0; r >= 0 && mine && i < json_object_array_length(mine); i++)
                if (json_object_array_add(owners,
                                          json_object_get(json_object_array_get_idx(mine, i))) < 0)
                        r = -ENOMEM;
        if (r < 0) {
                json_object_put(owners);
                goto fail;
        }
        if (json_object_array_length(owners) > 0)
                r = jsonutil_add(md, "ownerReferences", owners);
        else {
                json_object_put(owners);
                json_object_object_del(md, "ownerReferences");
        }
        if (r >= 0)
                r = jsonutil_add(c, "subjects", json_object_get(jsonutil_member(want, "subjects")));
        if (r < 0) goto fail;
        json_object_put(want);
        *ret = c;
        return 0;
fail:
        json_object_put(want);
        json_object_put(c);
        return r;
}

static bool want_links(const plan_sa_write *sa, const char *secret) {
        for (size_t i = 0; i < sa->n_want; i++)
                if (!sa->want[i].hold && streq_ptr(sa->want[i].secret, secret)) return true;
        return false;
}

static bool change_names(const plan_sa_change *v, size_t n, const char *secret) {
        for (size_t i = 0; i < n; i++)
                if (streq_ptr(v[i].secret, secret)) return true;
        return false;
}

bool pp_apply_write_depends(const plan_write *later, const plan_write *failed) {
        if (!later || !failed) return false;
        /* nothing may be written before the finalizer is there (R7), and it is removed only
         * once everything else is undone */
        if (failed->kind == PLAN_ADD_FINALIZER || later->kind == PLAN_REMOVE_FINALIZER) return true;
        switch (failed->kind) {
        case PLAN_COPY_CREATE:
        case PLAN_COPY_UPDATE:
                /* a link to a copy that is not there (or not as planned) in that namespace */
                return later->kind == PLAN_SA_EDIT &&
                       streq_ptr(later->namespace, failed->namespace) &&
                       want_links(&later->sa, failed->name);
        case PLAN_SA_EDIT:
                /* a copy still linked from that service account stays until it is unlinked */
                return later->kind == PLAN_COPY_DELETE &&
                       streq_ptr(later->namespace, failed->namespace) &&
                       change_names(failed->sa.desired.removed, failed->sa.desired.n_removed,
                                    later->name);
        case PLAN_RB_DELETE:
                /* a replaced binding (roleRef is immutable) is created once the old one is gone */
                return later->kind == PLAN_RB_CREATE &&
                       streq_ptr(later->namespace, failed->namespace) &&
                       streq_ptr(later->name, failed->name);
        case PLAN_RB_CREATE:
                /* the binding it replaces (an earlier name) stays: no moment without one */
                return later->kind == PLAN_RB_DELETE &&
                       streq_ptr(later->namespace, failed->namespace) &&
                       failed->rb.subject_namespace &&
                       streq_ptr(later->rb.subject_namespace, failed->rb.subject_namespace);
        default:
                return false;
        }
}

static const pp_apply_source *find_source(const pp_apply_source *src, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (src[i].name && streq(src[i].name, name)) return &src[i];
        return NULL;
}

int pp_apply_global_json(json_object *secret, const plan_global_desired *d,
                         const pp_apply_source *src, size_t n_src) {
        if (!secret || !d || (n_src && !src)) return -EINVAL;
        if (!streq_ptr(jsonutil_member_str(secret, "type"), MODEL_SECRET_TYPE_DOCKERCONFIGJSON))
                return -EINVAL;
        json_object *data = jsonutil_member(secret, "data");
        json_object *enc = jsonutil_member(data, DOCKERCONFIGJSON_KEY);
        if (!enc || !json_object_is_type(enc, json_type_string)) return -EINVAL;

        void *raw = NULL;
        size_t raw_len = 0;
        int r = base64_decode(json_object_get_string(enc), (size_t)json_object_get_string_len(enc),
                              0, MODEL_SECRET_PAYLOAD_MAX, &raw, &raw_len);
        if (r < 0) return r;
        json_object *root = jsonutil_parse(raw, raw_len, MODEL_JSON_DEPTH);
        base64_free_wiped(raw, raw_len + 1);
        if (!root || !json_object_is_type(root, json_type_object)) {
                json_object_put(root);
                return -EINVAL;
        }
        json_object *auths = jsonutil_member(root, "auths");
        if (auths && !json_object_is_type(auths, json_type_object)) {
                r = -EINVAL;
                goto out;
        }
        for (size_t i = 0; i < d->n_ops; i++) {
                const plan_global_op *op = &d->ops[i];
                if (!op->registry) {
                        r = -EINVAL;
                        goto out;
                }
                if (op->kind == PLAN_GLOBAL_REMOVE) {
                        if (auths) json_object_object_del(auths, op->registry);
                        continue;
                }
                const pp_apply_source *s = op->source ? find_source(src, n_src, op->source) : NULL;
                json_object *entry = s ? jsonutil_member(s->auths, op->registry) : NULL;
                if (!entry) {
                        r = -ESTALE;
                        goto out;
                }
                if (!auths) {
                        auths = json_object_new_object();
                        if ((r = jsonutil_add(root, "auths", auths)) < 0) goto out;
                }
                json_object *copy = NULL;
                if (json_object_deep_copy(entry, &copy, NULL) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
                /* json-c replaces an existing key's value in place: the order is kept */
                if ((r = jsonutil_add(auths, op->registry, copy)) < 0) goto out;
        }
        size_t len = 0;
        const char *text = json_object_to_json_string_length(root, JSON_FLAGS, &len);
        if (!text) {
                r = -ENOMEM;
                goto out;
        }
        if (len > MODEL_SECRET_PAYLOAD_MAX) {
                r = -E2BIG;
                goto out;
        }
        char *b64 = NULL;
        size_t b64_len = 0;
        r = base64_encode(text, len, 0, &b64, &b64_len);
        if (r < 0) goto out;
        r = jsonutil_add(data, DOCKERCONFIGJSON_KEY, json_object_new_string_len(b64, (int)b64_len));
        base64_free_wiped(b64, b64_len + 1);
        if (r < 0) goto out;

        json_object *md = jsonutil_member(secret, "metadata");
        if (!md || !json_object_is_type(md, json_type_object)) {
                r = -EINVAL;
                goto out;
        }
        if (d->merged) {
                json_object *ann = member_obj(md, "annotations", &r);
                if (!ann) goto out;
                r = put_str(ann, NAMES_ANNOTATION_MERGED, d->merged);
        } else {
                json_object *ann = jsonutil_member(md, "annotations");
                if (ann && json_object_is_type(ann, json_type_object))
                        json_object_object_del(ann, NAMES_ANNOTATION_MERGED);
        }
out:
        wipe_serialization(root);
        json_object_put(root);
        return r;
}

/* ---- the running apply ------------------------------------------------------------------- */

typedef void (*next_fn)(pp_apply *a, const kube_response *resp);

struct pp_apply {
        pp_apply_ctx ctx;
        struct ev_loop *loop;
        const model_policy *policy;
        const plan *plan;          /* NULL: a status write only */
        const plan_status *status; /* NULL: no status to write */
        char *policy_key;          /* "home/name" */
        pp_apply_done_fn done;
        void *ud;

        size_t idx;    /* the write running */
        size_t n_done; /* writes that succeeded */
        bool in_status;
        unsigned attempt; /* read-modify-write attempt of the current write */

        kube_request *req;
        next_fn next;
        ev_timer timer;
        void (*on_timer)(pp_apply *a);

        /* what the current request addresses, for failed_what */
        const char *what_kind, *what_ns, *what_name, *what_suffix;

        /* the API's answer to the last request that failed (for the failure report) */
        int last_error;
        long last_http;
        char *last_reason, *last_message;
        /* writes that failed (indices into plan->writes), the first failure and its object */
        size_t *failed;
        size_t n_failed;
        int first_error;
        char *first_what;

        /* scratch of the current write */
        json_object *src; /* a source secret as read */
        json_object *obj; /* the object being edited, as read */
        plan_global_desired gd;
        bool have_gd;
        pp_apply_source *sources;
        size_t n_sources, src_idx;

        apply_sources *srcs; /* the sources read in this apply (shared by its lanes) */
        apply_lanes *lanes;  /* a shell for parallel lanes (apply_lanes.c) */
};

void apply_set_sources(pp_apply *a, apply_sources *s) {
        apply_sources_unref(a->srcs);
        a->srcs = apply_sources_ref(s);
}

static const char *global_ns(const pp_apply *a) {
        return a->ctx.global_ns ? a->ctx.global_ns : DEFAULT_GLOBAL_NS;
}

static const char *global_name(const pp_apply *a) {
        return a->ctx.global_name ? a->ctx.global_name : DEFAULT_GLOBAL_NAME;
}

static void scratch_done(pp_apply *a) {
        json_object_put(a->src);
        a->src = NULL;
        json_object_put(a->obj);
        a->obj = NULL;
        if (a->have_gd) plan_global_desired_done(&a->gd);
        a->have_gd = false;
        for (size_t i = 0; i < a->n_sources; i++) {
                json_object_put(a->sources[i].auths);
        }
        free(a->sources);
        a->sources = NULL;
        a->n_sources = a->src_idx = 0;
}

static void last_answer_clear(pp_apply *a) {
        a->last_error = 0;
        a->last_http = 0;
        free(a->last_reason);
        free(a->last_message);
        a->last_reason = a->last_message = NULL;
}

static void apply_free(pp_apply *a) {
        if (!a) return;
        apply_lanes_free(a->lanes);
        apply_sources_unref(a->srcs);
        kube_request_cancel(a->req);
        ev_timer_stop(a->loop, &a->timer);
        scratch_done(a);
        last_answer_clear(a);
        free(a->failed);
        free(a->first_what);
        free(a->policy_key);
        free(a);
}

void pp_apply_cancel(pp_apply *a) {
        apply_free(a);
}

void apply_shell_free(pp_apply *a) {
        apply_free(a);
}

static const plan_write *cur(const pp_apply *a) {
        return &a->plan->writes[a->idx];
}

static void set_what(pp_apply *a, const char *kind, const char *ns, const char *name) {
        a->what_kind = kind;
        a->what_ns = ns;
        a->what_name = name;
        a->what_suffix = "";
}

static char *format_what(const pp_apply *a) {
        char *what = NULL;
        if (asprintf(&what, "%s %s%s%s%s", a->what_kind ? a->what_kind : "object",
                     a->what_ns ? a->what_ns : "", a->what_ns ? "/" : "",
                     a->what_name ? a->what_name : "", a->what_suffix ? a->what_suffix : "") < 0)
                return NULL;
        return what;
}

static void write_failed(pp_apply *a, int result);

/*
 * Ends the apply: frees it, then reports (the handle is gone when done runs). A failure of
 * one of the plan's writes ends only that write (write_failed()): the others go on, and the
 * first failure is what is reported at the end.
 */
static void finish(pp_apply *a, int result) {
        if (result < 0 && a->plan && !a->in_status && a->idx < a->plan->n_writes) {
                write_failed(a, result);
                return;
        }
        char *what = NULL;
        if (result < 0)
                what = format_what(a);
        else if (a->first_error < 0) {
                result = a->first_error;
                what = TAKE_PTR(a->first_what);
        }
        pp_apply_done_fn done = a->done;
        void *ud = a->ud;
        size_t n_done = a->n_done;
        apply_free(a);
        done(ud, result, n_done, what);
        free(what);
}

static void step(pp_apply *a);

static void write_succeeded(pp_apply *a) {
        scratch_done(a);
        a->n_done++;
        a->idx++;
        a->attempt = 0;
        step(a);
}

/* The API's message on a failed write, as the status may show it; "" when there is none. */
static const char *failure_message(const pp_apply *a, int result) {
        if (result != a->last_error || !a->last_message) return "";
        /* an admission webhook's message may quote the object it refused: for a Secret, that
         * is its data (R11), so only the status code and reason are told */
        if (streq_ptr(a->what_kind, "Secret")) return "";
        return a->last_message;
}

static void write_failed(pp_apply *a, int result) {
        char *what = format_what(a);
        bool answered = result == a->last_error;
        pp_apply_failure f = {
            .kind = a->what_kind ? a->what_kind : "object",
            .namespace = a->what_ns,
            .name = a->what_name,
            .what = what ? what : "object",
            .error = result,
            .http_status = answered ? a->last_http : 0,
            .api_reason = answered && a->last_reason ? a->last_reason : "",
            .message = failure_message(a, result),
            .write_index = a->idx,
        };
        if (a->ctx.on_write_failed) a->ctx.on_write_failed(a->ud, &f);
        if (a->first_error == 0) {
                a->first_error = result;
                a->first_what = TAKE_PTR(what);
        }
        free(what);
        if (a->failed) a->failed[a->n_failed++] = a->idx;
        scratch_done(a);
        last_answer_clear(a);
        a->idx++;
        a->attempt = 0;
        step(a);
}

/* Whether the write at idx depends on one that failed (then it is skipped). */
static bool depends_on_failure(const pp_apply *a, size_t idx) {
        for (size_t i = 0; i < a->n_failed; i++)
                if (pp_apply_write_depends(&a->plan->writes[idx], &a->plan->writes[a->failed[i]]))
                        return true;
        return false;
}

static void on_response(kube_client *c, const kube_response *resp, void *ud) {
        pp_apply *a = ud;
        a->req = NULL;
        last_answer_clear(a);
        if (resp->error < 0) {
                a->last_error = resp->error;
                a->last_http = resp->http_status;
                if (resp->status) {
                        const kube_status *st = resp->status;
                        const char *m = st->message ? st->message : "";
                        a->last_reason = strdup_or_null(st->reason_str);
                        a->last_message =
                            strndup(m, str_utf8_cut(m, strlen(m), PP_APPLY_PROBLEM_MESSAGE_MAX));
                }
        }
        next_fn next = a->next;
        a->next = NULL;
        next(a, resp);
}

/* Starts a request (no finish on failure). Writes carry the field manager; verb non-NULL
 * counts the write in the metrics. */
static int start_request(pp_apply *a, kube_method m, const char *path, const char *body,
                         size_t body_len, kube_patch_type pt, const char *resource,
                         const char *verb, next_fn next) {
        _cleanup_free_ char *full = NULL, *fm = NULL;
        int r = 0;
        if (a->ctx.field_manager && (m == KUBE_POST || m == KUBE_PUT || m == KUBE_PATCH)) {
                r = kube_url_escape(a->ctx.field_manager, &fm);
                if (r >= 0 && asprintf(&full, "%s?fieldManager=%s", path, fm) < 0) r = -ENOMEM;
        } else if (!(full = strdup(path))) {
                r = -ENOMEM;
        }
        if (r < 0) return r;
        kube_request_opts o = {
            .method = m,
            .path = full,
            .body = body,
            .body_len = body_len,
            .patch_type = pt,
            .timeout_ms = PP_APPLY_TIMEOUT_MS,
            .max_body = PP_APPLY_SECRET_BODY_MAX,
            .on_done = on_response,
            .userdata = a,
        };
        a->next = next;
        r = kube_client_request(a->ctx.client, &o, &a->req);
        if (r < 0) {
                a->req = NULL;
                a->next = NULL;
                return r;
        }
        if (verb) metrics_write(a->ctx.metrics, resource, verb);
        return 0;
}

/* The same, finishing the apply when the request cannot start (a is then gone). */
static void send(pp_apply *a, kube_method m, const char *path, const char *body, kube_patch_type pt,
                 const char *resource, const char *verb, next_fn next) {
        int r = start_request(a, m, path, body, body ? strlen(body) : 0, pt, resource, verb, next);
        if (r < 0) finish(a, r);
}

/*
 * Serializes obj and sends it. The serialization, cached inside obj by json-c, may hold
 * secret data: it is wiped once the client has copied it. obj stays the caller's.
 */
static void send_json(pp_apply *a, kube_method m, const char *path, json_object *obj,
                      kube_patch_type pt, const char *resource, const char *verb, next_fn next) {
        size_t len = 0;
        const char *body = json_object_to_json_string_length(obj, JSON_FLAGS, &len);
        int r = body ? start_request(a, m, path, body, len, pt, resource, verb, next) : -ENOMEM;
        if (body) explicit_bzero((char *)body, len);
        if (r < 0) finish(a, r);
}

static void on_timer_cb(struct ev_loop *loop, ev_timer *t, int revents) {
        pp_apply *a = t->data;
        ev_timer_stop(loop, t);
        void (*f)(pp_apply *) = a->on_timer;
        a->on_timer = NULL;
        f(a);
}

static void schedule(pp_apply *a, double delay, void (*f)(pp_apply *a)) {
        /* libev measures from its cached time, which may be old when called off the loop */
        ev_now_update(a->loop);
        a->on_timer = f;
        ev_timer_set(&a->timer, delay, 0.);
        ev_timer_start(a->loop, &a->timer);
}

static int parse_body(const kube_response *resp, json_object **ret) {
        json_object *o =
            resp->body ? jsonutil_parse(resp->body, resp->body_len, BODY_JSON_DEPTH) : NULL;
        if (!o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return -EBADMSG;
        }
        *ret = o;
        return 0;
}

/* A path or finishes with the error (then returns NULL). */
static char *path_or_finish(pp_apply *a, const kube_resource *res, const char *ns, const char *name,
                            const char *sub) {
        char *p = NULL;
        int r = kube_resource_path(res, ns, name, sub, &p);
        if (r < 0) {
                finish(a, r);
                return NULL;
        }
        return p;
}

/* Reads ns/name of res, then next. Like send(), it may finish the apply. */
static void send_get(pp_apply *a, const kube_resource *res, const char *ns, const char *name,
                     next_fn next) {
        _cleanup_free_ char *path = path_or_finish(a, res, ns, name, NULL);
        if (path) send(a, KUBE_GET, path, NULL, 0, NULL, NULL, next);
}

/* Deletes ns/name of res with uid and resourceVersion preconditions, then next. */
static void send_delete(pp_apply *a, const kube_resource *res, const char *ns, const char *name,
                        const char *uid, const char *rv, const char *resource, next_fn next) {
        _cleanup_free_ char *body = NULL;
        int r = pp_apply_delete_options(uid, rv, &body);
        if (r < 0) {
                finish(a, r);
                return;
        }
        _cleanup_free_ char *path = path_or_finish(a, res, ns, name, NULL);
        if (path) send(a, KUBE_DELETE, path, body, 0, resource, "delete", next);
}

/* The object a read returned, in *ret; false when the apply was finished with the error. */
static bool read_object(pp_apply *a, const kube_response *resp, json_object **ret) {
        int r = resp->error < 0 ? resp->error : parse_body(resp, ret);
        if (r < 0) {
                finish(a, r);
                return false;
        }
        return true;
}

/*
 * A read before an update: into a->obj and *meta, or the write ends. Then the check that the
 * plan was made for the version it saw (-ESTALE) and for an object of ours (-EEXIST).
 */
static bool read_object_meta(pp_apply *a, const kube_response *resp, kube_meta *meta) {
        if (!read_object(a, resp, &a->obj)) return false;
        int r = kube_meta_decode(a->obj, meta);
        if (r < 0) {
                finish(a, r);
                return false;
        }
        return true;
}

static int planned_and_ours(const plan_write *w, const kube_meta *meta, bool ours) {
        if (w->resource_version && !streq_ptr(meta->resource_version, w->resource_version))
                return -ESTALE;
        return ours ? 0 : -EEXIST;
}

/* The answer to a write: the next write, or a 404 taken as done when gone_ok, or the end. */
static void write_answered(pp_apply *a, const kube_response *resp, bool gone_ok) {
        if (resp->error == 0 || (gone_ok && kube_error_is_not_found(resp->error)))
                write_succeeded(a);
        else
                finish(a, resp->error);
}

/* Read-modify-write loops: retry after a 409, or give up. */
static bool retry_conflict(pp_apply *a, int error, void (*restart)(pp_apply *a)) {
        if (!kube_error_is_conflict(error) || a->attempt + 1 >= PP_APPLY_CONFLICT_RETRIES)
                return false;
        a->attempt++;
        scratch_done(a);
        schedule(a,
                 kube_backoff_jittered(PP_APPLY_RETRY_BASE, PP_APPLY_RETRY_MAX, a->attempt - 1, 0.5,
                                       kube_random()),
                 restart);
        return true;
}

/* ---- finalizers ---------------------------------------------------------------------------- */

static void finalizer_done(pp_apply *a, const kube_response *resp) {
        write_answered(a, resp, cur(a)->kind == PLAN_REMOVE_FINALIZER);
}

static void start_finalizer(pp_apply *a) {
        const plan_write *w = cur(a);
        const kube_meta *m = &a->policy->meta;
        const char *ns = w->namespace ? w->namespace : m->namespace;
        const char *name = w->name ? w->name : m->name;
        set_what(a, "PullPolicy", ns, name);
        const char *rv = w->resource_version ? w->resource_version : m->resource_version;
        json_object *patch = NULL;
        int r = pp_apply_finalizer_patch(m, rv, w->kind == PLAN_ADD_FINALIZER, &patch);
        if (r < 0) {
                finish(a, r);
                return;
        }
        if (r == 0) { /* already as wanted */
                write_succeeded(a);
                return;
        }
        _cleanup_free_ char *path = path_or_finish(a, &KUBE_RES_PULLPOLICIES, ns, name, NULL);
        if (path)
                send_json(a, KUBE_PATCH, path, patch, KUBE_PATCH_MERGE, "pullpolicies", "patch",
                          finalizer_done);
        json_object_put(patch);
}

/* ---- role bindings ----------------------------------------------------------------------- */

static void rb_done(pp_apply *a, const kube_response *resp) {
        write_answered(a, resp, cur(a)->kind == PLAN_RB_DELETE);
}

static void rb_update_got(pp_apply *a, const kube_response *resp) {
        const plan_write *w = cur(a);
        kube_meta meta = {0};
        if (!read_object_meta(a, resp, &meta)) return;
        /* only a binding of this policy */
        int r =
            planned_and_ours(w, &meta, names_marked_by(&meta, w->policy_namespace, w->policy_name));
        kube_meta_done(&meta);
        json_object *rb = NULL;
        if (r >= 0) r = pp_apply_rb_update_json(a->obj, w, &rb);
        if (r < 0) {
                finish(a, r);
                return;
        }
        _cleanup_free_ char *path =
            path_or_finish(a, &KUBE_RES_ROLEBINDINGS, w->namespace, w->name, NULL);
        if (path) send_json(a, KUBE_PUT, path, rb, 0, "rolebindings", "update", rb_done);
        json_object_put(rb);
}

static void start_rb(pp_apply *a) {
        const plan_write *w = cur(a);
        set_what(a, "RoleBinding", w->namespace, w->name);
        if (w->kind == PLAN_RB_UPDATE) {
                /* read-modify-write: others' labels, annotations and owners stay */
                send_get(a, &KUBE_RES_ROLEBINDINGS, w->namespace, w->name, rb_update_got);
                return;
        }
        if (w->kind == PLAN_RB_DELETE) {
                send_delete(a, &KUBE_RES_ROLEBINDINGS, w->namespace, w->name, w->uid,
                            w->resource_version, "rolebindings", rb_done);
                return;
        }
        json_object *rb = NULL;
        int r = plan_role_binding_json(w, &rb);
        if (r < 0) {
                finish(a, r);
                return;
        }
        _cleanup_free_ char *path =
            path_or_finish(a, &KUBE_RES_ROLEBINDINGS, w->namespace, NULL, NULL);
        if (path) send_json(a, KUBE_POST, path, rb, 0, "rolebindings", "create", rb_done);
        json_object_put(rb);
}

/* ---- copies (R5) ------------------------------------------------------------------------- */

static bool copy_target_ok(const pp_apply *a, const plan_write *w) {
        /* never the source (home) and never the global pull secret, whatever the plan says */
        if (!w->namespace || !w->name || !w->copy.source_namespace) return false;
        if (streq(w->namespace, w->copy.source_namespace)) return false;
        if (streq(w->namespace, global_ns(a)) && streq(w->name, global_name(a))) return false;
        return true;
}

static void copy_written(pp_apply *a, const kube_response *resp) {
        write_answered(a, resp, false);
}

/*
 * The source as read now, not as planned: a secret that has come to belong to a
 * service account since (it carries a token) or no longer parses is not copied.
 * The plan is out of date: -ESTALE, and the next plan sees what it is.
 */
static int source_check(json_object *src) {
        if (model_secret_json_belongs_to_sa(src)) return -ESTALE;
        json_object *auths = NULL;
        int r = model_secret_payload_auths(src, &auths, NULL);
        json_object_put(auths);
        if (r == -EINVAL) return -ESTALE;
        return r;
}

static void copy_post(pp_apply *a) {
        const plan_write *w = cur(a);
        set_what(a, "Secret", w->namespace, w->name);
        json_object *c = NULL;
        int r = source_check(a->src);
        if (r >= 0) r = pp_apply_copy_json(a->src, w, NULL, &c);
        if (r < 0) {
                finish(a, r);
                return;
        }
        _cleanup_free_ char *path = path_or_finish(a, &KUBE_RES_SECRETS, w->namespace, NULL, NULL);
        if (path) send_json(a, KUBE_POST, path, c, 0, "secrets", "create", copy_written);
        json_object_put(c);
}

static void copy_deleted_for_recreate(pp_apply *a, const kube_response *resp) {
        if (resp->error < 0 && !kube_error_is_not_found(resp->error)) {
                finish(a, resp->error);
                return;
        }
        copy_post(a);
}

static void copy_current_read(pp_apply *a, const kube_response *resp) {
        const plan_write *w = cur(a);
        kube_meta meta = {0};
        if (!read_object_meta(a, resp, &meta)) return;
        /* only a copy of the home's */
        int r = planned_and_ours(w, &meta, names_marked_by_home(&meta, w->copy.source_namespace));
        /* only then the source: a foreign target stays a conflict, whatever the source is */
        if (r >= 0) r = source_check(a->src);
        if (r < 0) {
                kube_meta_done(&meta);
                finish(a, r);
                return;
        }
        const char *src_type = jsonutil_member_str(a->src, "type");
        const char *cur_type = jsonutil_member_str(a->obj, "type");
        json_object *imm = jsonutil_member(a->obj, "immutable");
        bool immutable =
            imm && json_object_is_type(imm, json_type_boolean) && json_object_get_boolean(imm);
        if (!streq(src_type ? src_type : "Opaque", cur_type ? cur_type : "Opaque") || immutable) {
                /* type (and an immutable Secret's data) cannot change: delete, then create */
                send_delete(a, &KUBE_RES_SECRETS, w->namespace, w->name, meta.uid,
                            meta.resource_version, "secrets", copy_deleted_for_recreate);
                kube_meta_done(&meta);
                return;
        }
        kube_meta_done(&meta);
        json_object *c = NULL;
        r = pp_apply_copy_json(a->src, w, a->obj, &c);
        if (r < 0) {
                finish(a, r);
                return;
        }
        _cleanup_free_ char *path =
            path_or_finish(a, &KUBE_RES_SECRETS, w->namespace, w->name, NULL);
        if (path) send_json(a, KUBE_PUT, path, c, 0, "secrets", "update", copy_written);
        json_object_put(c);
}

/* With the source in a->src: the copy's own steps. */
static void copy_with_source(pp_apply *a) {
        const plan_write *w = cur(a);
        if (w->kind == PLAN_COPY_CREATE) {
                copy_post(a);
                return;
        }
        set_what(a, "Secret", w->namespace, w->name);
        send_get(a, &KUBE_RES_SECRETS, w->namespace, w->name, copy_current_read);
}

static void copy_source_read(pp_apply *a, const kube_response *resp) {
        const plan_write *w = cur(a);
        if (!read_object(a, resp, &a->src)) return;
        apply_sources_put(a->srcs, w->copy.source_namespace, w->copy.source_name, a->src);
        copy_with_source(a);
}

static void copy_delete_done(pp_apply *a, const kube_response *resp) {
        write_answered(a, resp, true);
}

static void start_copy(pp_apply *a) {
        const plan_write *w = cur(a);
        set_what(a, "Secret", w->namespace, w->name);
        if (w->kind == PLAN_COPY_DELETE) {
                /* a delete needs no source, but never touches the home or the global secret */
                if (!w->namespace || !w->name ||
                    (w->policy_namespace && streq(w->namespace, w->policy_namespace)) ||
                    (streq(w->namespace, global_ns(a)) && streq(w->name, global_name(a)))) {
                        finish(a, -EINVAL);
                        return;
                }
                send_delete(a, &KUBE_RES_SECRETS, w->namespace, w->name, w->uid,
                            w->resource_version, "secrets", copy_delete_done);
                return;
        }
        if (!copy_target_ok(a, w) || !w->copy.source_name || !w->copy.policy_name) {
                finish(a, -EINVAL);
                return;
        }
        set_what(a, "Secret", w->copy.source_namespace, w->copy.source_name);
        /* read once per apply, however many namespaces it is copied into (R5 at scale);
         * source_check() still judges it as read */
        a->src = apply_sources_get(a->srcs, w->copy.source_namespace, w->copy.source_name);
        if (a->src) {
                copy_with_source(a);
                return;
        }
        send_get(a, &KUBE_RES_SECRETS, w->copy.source_namespace, w->copy.source_name,
                 copy_source_read);
}

/* ---- service accounts (R3, R7, R9) -------------------------------------------------------- */

static void sa_read(pp_apply *a);

static void sa_put_done(pp_apply *a, const kube_response *resp) {
        if (resp->error == 0 || kube_error_is_not_found(resp->error)) {
                write_succeeded(a);
                return;
        }
        if (retry_conflict(a, resp->error, sa_read)) return;
        finish(a, resp->error);
}

static void sa_got(pp_apply *a, const kube_response *resp) {
        const plan_write *w = cur(a);
        if (kube_error_is_not_found(resp->error)) { /* gone: nothing to link or unlink */
                write_succeeded(a);
                return;
        }
        if (!read_object(a, resp, &a->obj)) return;
        model_sa *fresh = NULL;
        int r = model_sa_decode(a->obj, &fresh);
        if (r < 0) {
                finish(a, r);
                return;
        }
        plan_sa_desired d = {0};
        r = plan_sa_edit(fresh, a->policy_key, w->sa.want, w->sa.n_want, &d);
        model_sa_free(fresh);
        if (r < 0) {
                finish(a, r);
                return;
        }
        if (!d.changed) { /* someone (or an earlier attempt) did it already */
                plan_sa_desired_done(&d);
                write_succeeded(a);
                return;
        }
        r = plan_sa_desired_apply_json(a->obj, &d);
        plan_sa_desired_done(&d);
        if (r < 0) {
                finish(a, r);
                return;
        }
        _cleanup_free_ char *path =
            path_or_finish(a, &KUBE_RES_SERVICEACCOUNTS, w->namespace, w->name, NULL);
        if (!path) return;
        if (a->ctx.before_put)
                a->ctx.before_put(a->ctx.hook_ud, "ServiceAccount", w->namespace, w->name,
                                  a->attempt);
        send_json(a, KUBE_PUT, path, a->obj, 0, "serviceaccounts", "update", sa_put_done);
}

static void sa_read(pp_apply *a) {
        const plan_write *w = cur(a);
        set_what(a, "ServiceAccount", w->namespace, w->name);
        send_get(a, &KUBE_RES_SERVICEACCOUNTS, w->namespace, w->name, sa_got);
}

/*
 * The edit the planner made from the cache, sent without reading the SA first: a merge
 * patch that replaces both lists and carries the cached resourceVersion, which the
 * apiserver holds as a precondition (409 when anyone wrote the SA since). A 409 falls
 * back to reading the SA and editing what it holds now.
 */
static void sa_patch(pp_apply *a) {
        const plan_write *w = cur(a);
        set_what(a, "ServiceAccount", w->namespace, w->name);
        json_object *patch = NULL;
        int r = pp_apply_sa_patch(&w->sa.desired, w->resource_version, &patch);
        if (r < 0) {
                finish(a, r);
                return;
        }
        _cleanup_free_ char *path =
            path_or_finish(a, &KUBE_RES_SERVICEACCOUNTS, w->namespace, w->name, NULL);
        if (path) {
                if (a->ctx.before_put)
                        a->ctx.before_put(a->ctx.hook_ud, "ServiceAccount", w->namespace, w->name,
                                          a->attempt);
                send_json(a, KUBE_PATCH, path, patch, KUBE_PATCH_MERGE, "serviceaccounts", "patch",
                          sa_put_done);
        }
        json_object_put(patch);
}

/* ---- the global pull secret (R6) ----------------------------------------------------------- */

static void global_read(pp_apply *a);

static void global_put_done(pp_apply *a, const kube_response *resp) {
        if (resp->error == 0) {
                write_succeeded(a);
                return;
        }
        if (retry_conflict(a, resp->error, global_read)) return;
        finish(a, resp->error);
}

static void global_write(pp_apply *a) {
        const plan_write *w = cur(a);
        set_what(a, "Secret", w->namespace, w->name);
        int r = pp_apply_global_json(a->obj, &a->gd, a->sources, a->n_sources);
        if (r < 0) {
                finish(a, r);
                return;
        }
        _cleanup_free_ char *path =
            path_or_finish(a, &KUBE_RES_SECRETS, w->namespace, w->name, NULL);
        if (!path) return;
        if (a->ctx.before_put)
                a->ctx.before_put(a->ctx.hook_ud, "Secret", w->namespace, w->name, a->attempt);
        send_json(a, KUBE_PUT, path, a->obj, 0, "secrets", "update", global_put_done);
}

static void global_next_source(pp_apply *a);

static void global_source_got(pp_apply *a, const kube_response *resp) {
        json_object *s = NULL;
        if (!read_object(a, resp, &s)) return;
        json_object *auths = NULL;
        int r = model_secret_json_belongs_to_sa(s) ? -ESTALE
                                                   : model_secret_payload_auths(s, &auths, NULL);
        json_object_put(s);
        if (r < 0) {
                finish(a, r);
                return;
        }
        a->sources[a->src_idx++].auths = auths;
        global_next_source(a);
}

static void global_next_source(pp_apply *a) {
        const plan_write *w = cur(a);
        if (a->src_idx == a->n_sources) {
                global_write(a);
                return;
        }
        const char *name = a->sources[a->src_idx].name;
        set_what(a, "Secret", w->global.source_namespace, name);
        send_get(a, &KUBE_RES_SECRETS, w->global.source_namespace, name, global_source_got);
}

static void global_got(pp_apply *a, const kube_response *resp) {
        const plan_write *w = cur(a);
        if (!read_object(a, resp, &a->obj)) return;
        model_secret *g = NULL;
        int r = model_secret_decode(a->obj, &g);
        if (r < 0) {
                finish(a, r);
                return;
        }
        if (g->validity != MODEL_SECRET_VALID ||
            !streq_ptr(g->type, MODEL_SECRET_TYPE_DOCKERCONFIGJSON)) {
                model_secret_free(g);
                finish(a, -EINVAL);
                return;
        }
        r = plan_global_edit(g, a->policy_key, w->global.want, w->global.n_want,
                             w->global.keep_unwanted, &a->gd);
        model_secret_free(g);
        if (r < 0) {
                finish(a, r);
                return;
        }
        a->have_gd = true;
        if (!a->gd.changed) {
                write_succeeded(a);
                return;
        }
        /* the distinct sources the additions and updates copy from */
        a->sources = calloc(a->gd.n_ops ? a->gd.n_ops : 1, sizeof(pp_apply_source));
        if (!a->sources) {
                finish(a, -ENOMEM);
                return;
        }
        for (size_t i = 0; i < a->gd.n_ops; i++) {
                const plan_global_op *op = &a->gd.ops[i];
                if (op->kind == PLAN_GLOBAL_REMOVE || !op->source) continue;
                if (!find_source(a->sources, a->n_sources, op->source))
                        a->sources[a->n_sources++].name = op->source;
        }
        if (a->n_sources && !w->global.source_namespace) {
                finish(a, -EINVAL);
                return;
        }
        global_next_source(a);
}

static void global_read(pp_apply *a) {
        const plan_write *w = cur(a);
        set_what(a, "Secret", w->namespace, w->name);
        send_get(a, &KUBE_RES_SECRETS, w->namespace, w->name, global_got);
}

static void start_global(pp_apply *a) {
        const plan_write *w = cur(a);
        set_what(a, "Secret", w->namespace, w->name);
        if (!w->namespace || !w->name || !streq(w->namespace, global_ns(a)) ||
            !streq(w->name, global_name(a))) {
                finish(a, -EINVAL);
                return;
        }
        global_read(a);
}

/* ---- status ------------------------------------------------------------------------------- */

static void status_done(pp_apply *a, const kube_response *resp) {
        /* a policy that is gone has no status to keep */
        if (resp->error == 0 || kube_error_is_not_found(resp->error)) {
                finish(a, 0);
                return;
        }
        finish(a, resp->error);
}

static void start_status(pp_apply *a) {
        const kube_meta *m = &a->policy->meta;
        set_what(a, "PullPolicy", m->namespace, m->name);
        a->what_suffix = " status";
        json_object *st = NULL, *patch = json_object_new_object();
        int r = patch ? pp_apply_status_json(a->policy, a->status, &st) : -ENOMEM;
        if (r >= 0) r = jsonutil_add(patch, "status", st);
        if (r < 0) {
                json_object_put(patch);
                finish(a, r);
                return;
        }
        _cleanup_free_ char *path =
            path_or_finish(a, &KUBE_RES_PULLPOLICIES, m->namespace, m->name, "status");
        if (path)
                send_json(a, KUBE_PATCH, path, patch, KUBE_PATCH_MERGE, "pullpolicies/status",
                          "patch", status_done);
        json_object_put(patch);
}

/* ---- driver ------------------------------------------------------------------------------- */

static void step(pp_apply *a) {
        while (a->plan && a->idx < a->plan->n_writes && depends_on_failure(a, a->idx)) a->idx++;
        if (a->plan && a->idx < a->plan->n_writes) {
                switch (cur(a)->kind) {
                case PLAN_ADD_FINALIZER:
                case PLAN_REMOVE_FINALIZER:
                        start_finalizer(a);
                        return;
                case PLAN_RB_CREATE:
                case PLAN_RB_UPDATE:
                case PLAN_RB_DELETE:
                        start_rb(a);
                        return;
                case PLAN_COPY_CREATE:
                case PLAN_COPY_UPDATE:
                case PLAN_COPY_DELETE:
                        start_copy(a);
                        return;
                case PLAN_SA_EDIT:
                        if (cur(a)->sa.patchable && cur(a)->resource_version)
                                sa_patch(a);
                        else
                                sa_read(a);
                        return;
                case PLAN_GLOBAL_EDIT:
                        start_global(a);
                        return;
                }
                set_what(a, "write", NULL, plan_write_kind_to_string(cur(a)->kind));
                finish(a, -EINVAL);
                return;
        }
        /* the planned status describes the plan done; after a failure the caller says more */
        if (a->status && !a->in_status && a->first_error == 0) {
                a->in_status = true;
                start_status(a);
                return;
        }
        finish(a, 0);
}

static int apply_new(const pp_apply_ctx *ctx, const model_policy *policy, pp_apply_done_fn done,
                     void *ud, pp_apply **ret) {
        if (!ctx || !ctx->client || !policy || !policy->meta.namespace || !policy->meta.name ||
            !done)
                return -EINVAL;
        pp_apply *a = calloc(1, sizeof(*a));
        if (!a) return -ENOMEM;
        int r = names_policy_key(policy->meta.namespace, policy->meta.name, &a->policy_key);
        if (r < 0) {
                free(a);
                return r;
        }
        a->ctx = *ctx;
        a->loop = kube_client_loop(ctx->client);
        a->policy = policy;
        a->done = done;
        a->ud = ud;
        ev_timer_init(&a->timer, on_timer_cb, 0., 0.);
        a->timer.data = a;
        *ret = a;
        return 0;
}

static void start(pp_apply *a) {
        step(a);
}

static int plan_new_apply(const pp_apply_ctx *ctx, const model_policy *policy, const plan *p,
                          pp_apply_done_fn done, void *ud, bool lanes, pp_apply **ret) {
        if (!p || (p->n_writes && !p->writes)) return -EINVAL;
        pp_apply *a = NULL;
        int r = apply_new(ctx, policy, done, ud, &a);
        if (r < 0) return r;
        a->plan = p;
        if (lanes && apply_lanes_wanted(p)) {
                r = apply_lanes_start(a, ctx, policy, p, done, ud, &a->lanes);
                if (r < 0) {
                        apply_free(a);
                        return r;
                }
                if (ret) *ret = a;
                return 0;
        }
        if (p->has_status && p->status_changed) a->status = &p->status;
        if (p->n_writes && !(a->failed = calloc(p->n_writes, sizeof(size_t)))) {
                apply_free(a);
                return -ENOMEM;
        }
        if (!(a->srcs = apply_sources_new())) {
                apply_free(a);
                return -ENOMEM;
        }
        /* done is never called from in here: even an empty plan reports from the loop */
        schedule(a, 0., start);
        if (ret) *ret = a;
        return 0;
}

int pp_apply_plan(const pp_apply_ctx *ctx, const model_policy *policy, const plan *p,
                  pp_apply_done_fn done, void *ud, pp_apply **ret) {
        return plan_new_apply(ctx, policy, p, done, ud, true, ret);
}

int apply_plan_sequential(const pp_apply_ctx *ctx, const model_policy *policy, const plan *p,
                          pp_apply_done_fn done, void *ud, pp_apply **ret) {
        return plan_new_apply(ctx, policy, p, done, ud, false, ret);
}

int pp_apply_status(const pp_apply_ctx *ctx, const model_policy *policy, const plan_status *st,
                    pp_apply_done_fn done, void *ud, pp_apply **ret) {
        if (!st) return -EINVAL;
        pp_apply *a = NULL;
        int r = apply_new(ctx, policy, done, ud, &a);
        if (r < 0) return r;
        a->status = st;
        schedule(a, 0., start);
        if (ret) *ret = a;
        return 0;
}
