/* SPDX-License-Identifier: Apache-2.0 */
#include "stalepods.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/jsonutil.h"
#include "util/timefmt.h"
#include "util/macro.h"

static bool pull_error_in(json_object *statuses) {
        if (!json_object_is_type(statuses, json_type_array)) return false;
        size_t n = MIN(json_object_array_length(statuses), (size_t)STALE_POD_MAX_CONTAINERS);
        for (size_t i = 0; i < n; i++) {
                json_object *w = jsonutil_member(
                    jsonutil_member(json_object_array_get_idx(statuses, i), "state"), "waiting");
                const char *reason = jsonutil_member_str(w, "reason");
                if (reason && (streq(reason, "ErrImagePull") || streq(reason, "ImagePullBackOff")))
                        return true;
        }
        return false;
}

static bool restartable_owner(json_object *meta) {
        json_object *owners = jsonutil_member(meta, "ownerReferences");
        if (!json_object_is_type(owners, json_type_array)) return false;
        size_t n = MIN(json_object_array_length(owners), (size_t)KUBE_META_OWNERS_MAX);
        for (size_t i = 0; i < n; i++) {
                json_object *o = json_object_array_get_idx(owners, i);
                json_object *ctl = jsonutil_member(o, "controller");
                if (!ctl || !json_object_is_type(ctl, json_type_boolean) ||
                    !json_object_get_boolean(ctl))
                        continue;
                const char *kind = jsonutil_member_str(o, "kind");
                return kind && (streq(kind, "ReplicaSet") || streq(kind, "StatefulSet") ||
                                streq(kind, "Job") || streq(kind, "DaemonSet"));
        }
        return false;
}

void stale_pod_free(stale_pod *p) {
        if (!p) return;
        kube_meta_done(&p->meta);
        free(p->service_account);
        for (size_t i = 0; i < p->n_pull_secrets; i++) free(p->pull_secrets[i]);
        free(p->pull_secrets);
        free(p);
}

static int dup_str(json_object *obj, const char *key, char **ret) {
        const char *v = jsonutil_member_str(obj, key);
        if (!v || !*v) return 0;
        if (strlen(v) > KUBE_META_NAME_MAX) return -E2BIG;
        *ret = strdup(v);
        return *ret ? 0 : -ENOMEM;
}

int stale_pod_decode(json_object *obj, bool need_name, stale_pod **ret) {
        if (!json_object_is_type(obj, json_type_object) || !ret) return -EINVAL;
        stale_pod *p = calloc(1, sizeof(*p));
        if (!p) return -ENOMEM;
        json_object *meta = jsonutil_member(obj, "metadata");
        json_object *spec = jsonutil_member(obj, "spec");
        json_object *status = jsonutil_member(obj, "status");
        int r = dup_str(meta, "namespace", &p->meta.namespace);
        if (r >= 0) r = dup_str(meta, "name", &p->meta.name);
        if (r >= 0) r = dup_str(meta, "uid", &p->meta.uid);
        if (r >= 0) r = dup_str(meta, "resourceVersion", &p->meta.resource_version);
        if (r >= 0) r = dup_str(spec, "serviceAccountName", &p->service_account);
        if (r >= 0 && !p->service_account && !(p->service_account = strdup("default"))) r = -ENOMEM;
        if (r >= 0 && need_name && (!p->meta.name || !p->meta.namespace)) r = -EINVAL;
        json_object *list = jsonutil_member(spec, "imagePullSecrets");
        size_t n = json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0;
        if (r >= 0 && n > STALE_POD_MAX_SECRETS) r = -E2BIG;
        if (r >= 0 && n && !(p->pull_secrets = calloc(n, sizeof(char *)))) r = -ENOMEM;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                char *name = NULL;
                r = dup_str(json_object_array_get_idx(list, i), "name", &name);
                if (name) p->pull_secrets[p->n_pull_secrets++] = name;
        }
        if (r < 0) {
                stale_pod_free(p);
                return r;
        }
        const char *created = jsonutil_member_str(meta, "creationTimestamp");
        struct timespec ts;
        if (created && timefmt_parse_rfc3339(created, &ts) >= 0) p->created = (long long)ts.tv_sec;
        p->meta.deleting = jsonutil_member(meta, "deletionTimestamp") != NULL;
        p->pending = streq_ptr(jsonutil_member_str(status, "phase"), "Pending");
        p->pull_error = pull_error_in(jsonutil_member(status, "containerStatuses")) ||
                        pull_error_in(jsonutil_member(status, "initContainerStatuses"));
        p->restartable_owner = restartable_owner(meta);
        *ret = p;
        return 0;
}

static int kind_decode(json_object *obj, void **ret) {
        return stale_pod_decode(obj, true, (stale_pod **)ret);
}

static void kind_free(void *obj) {
        stale_pod_free(obj);
}

static const kube_meta_core *kind_meta(const void *obj) {
        return &((const stale_pod *)obj)->meta.core;
}

static size_t kind_mem(const void *obj) {
        const stale_pod *p = obj;
        size_t m = sizeof(*p) + kube_meta_mem(&p->meta) +
                   (p->service_account ? strlen(p->service_account) + 1 : 0) +
                   p->n_pull_secrets * sizeof(char *);
        for (size_t i = 0; i < p->n_pull_secrets; i++) m += strlen(p->pull_secrets[i]) + 1;
        return m;
}

const kube_store_kind stale_pod_kind = {
    .name = "pods",
    .decode = kind_decode,
    .free = kind_free,
    .meta = kind_meta,
    .mem = kind_mem,
};

int stale_pod_index_sa(const void *obj, char ***ret_values, size_t *ret_n) {
        const stale_pod *p = obj;
        *ret_values = NULL;
        *ret_n = 0;
        char **v = calloc(1, sizeof(char *));
        if (!v) return -ENOMEM;
        if (asprintf(&v[0], "%s/%s", p->meta.namespace ? p->meta.namespace : "",
                     p->service_account) < 0) {
                free(v);
                return -ENOMEM;
        }
        *ret_values = v;
        *ret_n = 1;
        return 0;
}

static bool has_name(char *const *v, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (streq_ptr(v[i], name)) return true;
        return false;
}

int stale_pod_check(const stale_pod *pod, const char *const *linked, size_t n_linked,
                    char *const *sa_pull, size_t n_sa_pull, stale_pod_verdict *ret) {
        if (!pod || !ret || (n_linked && !linked)) return -EINVAL;
        stale_pod_verdict v = {0};
        bool from_sa = true;
        for (size_t i = 0; sa_pull && i < pod->n_pull_secrets; i++)
                if (!has_name(sa_pull, n_sa_pull, pod->pull_secrets[i])) from_sa = false;
        if (pod->pending && pod->pull_error && !pod->meta.deleting && from_sa) {
                size_t cap = 0;
                for (size_t i = 0; i < n_linked && i < STALE_POD_MAX_SECRETS; i++) {
                        if (!linked[i] ||
                            has_name(pod->pull_secrets, pod->n_pull_secrets, linked[i]))
                                continue;
                        char *d = strdup(linked[i]);
                        if (!d || GROW(v.missing, cap, v.n_missing + 1) < 0) {
                                free(d);
                                stale_pod_verdict_done(&v);
                                return -ENOMEM;
                        }
                        v.missing[v.n_missing++] = d;
                }
                v.stale = v.n_missing > 0;
                v.restartable = v.stale && pod->restartable_owner;
        }
        *ret = v;
        return 0;
}

int stale_pod_judge(json_object *pod, const char *const *linked, size_t n_linked,
                    stale_pod_verdict *ret) {
        if (!json_object_is_type(pod, json_type_object) || !ret || (n_linked && !linked))
                return -EINVAL;
        stale_pod *p = NULL;
        int r = stale_pod_decode(pod, false, &p);
        if (r < 0) return r;
        r = stale_pod_check(p, linked, n_linked, NULL, 0, ret);
        stale_pod_free(p);
        return r;
}

void stale_pod_verdict_done(stale_pod_verdict *v) {
        if (!v) return;
        for (size_t i = 0; i < v->n_missing; i++) free(v->missing[i]);
        free(v->missing);
        *v = (stale_pod_verdict){0};
}

bool stale_rate_allow(stale_rate *r, double now, unsigned per_minute) {
        if (!r || per_minute == 0) return false;
        if (r->last == 0) {
                r->tokens = per_minute;
                r->last = now;
        } else if (now > r->last) {
                r->tokens =
                    MIN((double)per_minute, r->tokens + (now - r->last) * per_minute / 60.0);
                r->last = now;
        }
        if (r->tokens < 1) return false;
        r->tokens -= 1;
        return true;
}
