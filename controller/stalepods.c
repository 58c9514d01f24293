/* SPDX-License-Identifier: Apache-2.0 */
#include "stalepods.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/jsonutil.h"
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

static bool pod_has_secret(json_object *list, const char *name) {
        if (!json_object_is_type(list, json_type_array)) return false;
        size_t n = MIN(json_object_array_length(list), (size_t)STALE_POD_MAX_SECRETS);
        for (size_t i = 0; i < n; i++)
                if (streq_ptr(jsonutil_member_str(json_object_array_get_idx(list, i), "name"),
                              name))
                        return true;
        return false;
}

static bool restartable_owner(json_object *meta) {
        json_object *owners = jsonutil_member(meta, "ownerReferences");
        if (!json_object_is_type(owners, json_type_array)) return false;
        size_t n = json_object_array_length(owners);
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

int stale_pod_judge(json_object *pod, const char *const *linked, size_t n_linked,
                    stale_pod_verdict *ret) {
        if (!json_object_is_type(pod, json_type_object) || !ret || (n_linked && !linked))
                return -EINVAL;
        stale_pod_verdict v = {0};
        json_object *status = jsonutil_member(pod, "status");
        bool pending = streq_ptr(jsonutil_member_str(status, "phase"), "Pending");
        bool pull_error = pull_error_in(jsonutil_member(status, "containerStatuses")) ||
                          pull_error_in(jsonutil_member(status, "initContainerStatuses"));
        if (pending && pull_error) {
                json_object *secrets =
                    jsonutil_member(jsonutil_member(pod, "spec"), "imagePullSecrets");
                size_t cap = 0;
                for (size_t i = 0; i < n_linked && i < STALE_POD_MAX_SECRETS; i++) {
                        if (!linked[i] || pod_has_secret(secrets, linked[i])) continue;
                        char *d = strdup(linked[i]);
                        if (!d || GROW(v.missing, cap, v.n_missing + 1) < 0) {
                                free(d);
                                stale_pod_verdict_done(&v);
                                return -ENOMEM;
                        }
                        v.missing[v.n_missing++] = d;
                }
                v.stale = v.n_missing > 0;
                v.restartable = v.stale && restartable_owner(jsonutil_member(pod, "metadata"));
        }
        *ret = v;
        return 0;
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
