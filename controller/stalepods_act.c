/* SPDX-License-Identifier: Apache-2.0 */
#include "stalepods_act.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/errors.h"
#include "kube/ratelimit.h"
#include "kube/types.h"
#include "log.h"
#include "stalepods.h"
#include "util/hashmap.h"
#include "util/macro.h"

/* One (policy, pod) pair: "policy-key uid" (neither holds a space). */
typedef struct tracked {
        char *key;
        bool warned;   /* its StalePullSecrets Event went out */
        bool deleting; /* a DELETE is in flight or done */
} tracked;

typedef struct policy_state {
        char *key;
        stale_rate rate;
        size_t count; /* stale pods in its last plan */
} policy_state;

typedef struct del_req {
        pp_stale *s;
        struct del_req *next;
        kube_request *req;
        char *track_key, *ns, *name, *missing, *policy_key, *policy_ns, *policy_name, *policy_uid;
} del_req;

struct pp_stale {
        kube_client *client;
        pp_events *events;
        controller_metrics *metrics;
        unsigned per_minute;
        void (*observe)(void *ud, const char *path, const char *body);
        void *observe_ud;
        hashmap *tracked;  /* key → tracked */
        hashmap *policies; /* policy key → policy_state */
        del_req *deletes;
};

static void tracked_free(tracked *t) {
        if (!t) return;
        free(t->key);
        free(t);
}

static void del_req_free(del_req *d) {
        if (!d) return;
        free(d->track_key);
        free(d->ns);
        free(d->name);
        free(d->missing);
        free(d->policy_key);
        free(d->policy_ns);
        free(d->policy_name);
        free(d->policy_uid);
        free(d);
}

int pp_stale_new(const pp_stale_opts *o, pp_stale **ret) {
        if (!o || !ret) return -EINVAL;
        pp_stale *s = calloc(1, sizeof(*s));
        if (!s) return -ENOMEM;
        s->client = o->client;
        s->events = o->events;
        s->metrics = o->metrics;
        s->per_minute = o->per_minute ? o->per_minute : PP_STALE_DELETES_PER_MINUTE;
        s->observe = o->observe;
        s->observe_ud = o->observe_ud;
        int r = hashmap_new(&s->tracked);
        if (r >= 0) r = hashmap_new(&s->policies);
        if (r < 0) {
                pp_stale_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

pp_stale *pp_stale_free(pp_stale *s) {
        if (!s) return NULL;
        while (s->deletes) {
                del_req *d = s->deletes;
                s->deletes = d->next;
                kube_request_cancel(d->req);
                del_req_free(d);
        }
        size_t it = 0;
        void *v;
        if (s->tracked) {
                while (hashmap_iterate(s->tracked, &it, NULL, &v)) tracked_free(v);
                hashmap_free(s->tracked);
        }
        it = 0;
        if (s->policies) {
                while (hashmap_iterate(s->policies, &it, NULL, &v)) {
                        policy_state *ps = v;
                        free(ps->key);
                        free(ps);
                }
                hashmap_free(s->policies);
        }
        free(s);
        return NULL;
}

static void publish(pp_stale *s) {
        size_t total = 0, it = 0;
        void *v;
        while (hashmap_iterate(s->policies, &it, NULL, &v)) total += ((policy_state *)v)->count;
        metrics_set_stale_pods(s->metrics, total);
}

static void record(pp_stale *s, const char *ns, const char *name, const char *uid, bool warning,
                   const char *reason, const char *message, double now) {
        if (!s->events) return;
        pp_object_ref ref = {
            .api_version = "v1", .kind = "Pod", .namespace = ns, .name = name, .uid = uid};
        (void)pp_events_record(s->events, &ref, warning, reason, message, now);
}

static void unlink_delete(pp_stale *s, del_req *d) {
        for (del_req **p = &s->deletes; *p; p = &(*p)->next)
                if (*p == d) {
                        *p = d->next;
                        return;
                }
}

static void on_deleted(kube_client *c, const kube_response *resp, void *ud) {
        del_req *d = ud;
        pp_stale *s = d->s;
        unlink_delete(s, d);
        tracked *t = hashmap_get(s->tracked, d->track_key);
        if (resp->error == 0) {
                log_info(LOG_OBJ("pod", d->ns, d->name),
                         "deleted a stale pod for its controller to recreate it",
                         LOG_STR("policy", d->policy_key), LOG_STR("missing", d->missing));
                metrics_stale_pod_deleted(s->metrics);
                metrics_write(s->metrics, "pods", "delete");
                _cleanup_free_ char *msg = NULL;
                if (asprintf(&msg,
                             "deleted for its controller to recreate it with pull secret(s) %s "
                             "(restartStalePods of PullPolicy %s)",
                             d->missing, d->policy_key) >= 0) {
                        double now = kube_now();
                        record(s, d->ns, d->name, NULL, false, "StalePodDeleted", msg, now);
                        if (s->events) {
                                _cleanup_free_ char *pmsg = NULL;
                                pp_object_ref ref = {.api_version = "pullpolicy.io/v1alpha1",
                                                     .kind = "PullPolicy",
                                                     .namespace = d->policy_ns,
                                                     .name = d->policy_name,
                                                     .uid = d->policy_uid};
                                if (asprintf(&pmsg,
                                             "deleted stale pod %s/%s for its controller to "
                                             "recreate it with pull secret(s) %s",
                                             d->ns, d->name, d->missing) >= 0)
                                        (void)pp_events_record(s->events, &ref, false,
                                                               "StalePodDeleted", pmsg, now);
                        }
                }
        } else {
                /* 409: re-created under its name, or changed since it was judged; 404: gone.
                 * The next plan judges what is there now. */
                log_at(kube_error_is_conflict(resp->error) || kube_error_is_not_found(resp->error)
                           ? LOG_LEVEL_DEBUG
                           : LOG_LEVEL_WARN,
                       LOG_OBJ("pod", d->ns, d->name), "a stale pod was not deleted",
                       LOG_ERRNO(resp->error));
                if (t) t->deleting = false;
        }
        del_req_free(d);
}

static int start_delete(pp_stale *s, const kube_meta *policy, const char *policy_key,
                        const plan_stale_pod *sp, const char *track_key) {
        _cleanup_free_ char *path = NULL, *body = NULL;
        int r = kube_resource_path(&KUBE_RES_PODS, sp->namespace, sp->name, NULL, &path);
        if (r < 0) return r;
        json_object *o = json_object_new_object(), *pre = json_object_new_object();
        if (!o || !pre) {
                json_object_put(o);
                json_object_put(pre);
                return -ENOMEM;
        }
        json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
        json_object_object_add(o, "kind", json_object_new_string("DeleteOptions"));
        if (sp->uid) json_object_object_add(pre, "uid", json_object_new_string(sp->uid));
        if (sp->resource_version)
                json_object_object_add(pre, "resourceVersion",
                                       json_object_new_string(sp->resource_version));
        json_object_object_add(o, "preconditions", pre);
        body = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        if (!body) return -ENOMEM;
        if (s->observe) s->observe(s->observe_ud, path, body);
        if (!s->client) return 0;
        del_req *d = calloc(1, sizeof(*d));
        if (!d) return -ENOMEM;
        d->s = s;
        d->track_key = strdup(track_key);
        d->ns = strdup(sp->namespace);
        d->name = strdup(sp->name);
        d->missing = strdup(sp->missing);
        d->policy_key = strdup(policy_key);
        d->policy_ns = strdup_or_null(policy->namespace);
        d->policy_name = strdup_or_null(policy->name);
        d->policy_uid = strdup_or_null(policy->uid);
        if (!d->track_key || !d->ns || !d->name || !d->missing || !d->policy_key) {
                del_req_free(d);
                return -ENOMEM;
        }
        kube_request_opts ro = {
            .method = KUBE_DELETE,
            .path = path,
            .body = body,
            .body_len = strlen(body),
            .timeout_ms = 30000,
            .on_done = on_deleted,
            .userdata = d,
        };
        r = kube_client_request(s->client, &ro, &d->req);
        if (r < 0) {
                del_req_free(d);
                return r;
        }
        d->next = s->deletes;
        s->deletes = d;
        return 0;
}

static bool in_plan(const plan *p, const char *policy_key, const char *key) {
        size_t n = strlen(policy_key);
        if (strncmp(key, policy_key, n) != 0 || key[n] != ' ') return true; /* another policy's */
        for (size_t i = 0; p && i < p->n_stale_pods; i++)
                if (streq_ptr(p->stale_pods[i].uid, key + n + 1)) return true;
        return false;
}

/* Pairs of this policy whose pod is no longer stale (or gone) are forgotten: should it
 * become stale again, it is told again. */
static void prune(pp_stale *s, const char *policy_key, const plan *p) {
        size_t it = 0, n = 0;
        const char *k;
        void *v;
        char **gone = NULL;
        while (hashmap_iterate(s->tracked, &it, &k, &v)) {
                if (in_plan(p, policy_key, k)) continue;
                char **ng = realloc(gone, (n + 1) * sizeof(*ng));
                if (!ng) break;
                gone = ng;
                gone[n++] = ((tracked *)v)->key;
        }
        for (size_t i = 0; i < n; i++) tracked_free(hashmap_remove(s->tracked, gone[i]));
        free(gone);
}

long long pp_stale_act(pp_stale *s, const kube_meta *policy, const plan *p, double now) {
        if (!s || !policy || !policy->name) return -1;
        _cleanup_free_ char *pkey = kube_meta_key(policy);
        if (!pkey) return -1;
        prune(s, pkey, p);
        policy_state *ps = hashmap_get(s->policies, pkey);
        if (!p || p->n_stale_pods == 0) {
                if (ps) {
                        hashmap_remove(s->policies, pkey);
                        free(ps->key);
                        free(ps);
                        publish(s);
                }
                return -1;
        }
        if (!ps) {
                ps = calloc(1, sizeof(*ps));
                if (ps && !(ps->key = strdup(pkey))) {
                        free(ps);
                        ps = NULL;
                }
                if (ps && hashmap_put(s->policies, ps->key, ps, NULL) < 0) {
                        free(ps->key);
                        free(ps);
                        ps = NULL;
                }
                if (!ps) return -1;
        }
        ps->count = p->n_stale_pods;
        publish(s);

        long long retry = -1;
        for (size_t i = 0; i < p->n_stale_pods; i++) {
                const plan_stale_pod *sp = &p->stale_pods[i];
                _cleanup_free_ char *key = NULL;
                if (!sp->uid || asprintf(&key, "%s %s", pkey, sp->uid) < 0) continue;
                tracked *t = hashmap_get(s->tracked, key);
                if (!t && hashmap_size(s->tracked) < PP_STALE_TRACK_MAX) {
                        t = calloc(1, sizeof(*t));
                        if (t && !(t->key = strdup(key))) {
                                free(t);
                                t = NULL;
                        }
                        if (t && hashmap_put(s->tracked, t->key, t, NULL) < 0) {
                                tracked_free(t);
                                t = NULL;
                        }
                }
                if (!t || !t->warned) {
                        _cleanup_free_ char *msg = NULL;
                        if (asprintf(
                                &msg,
                                "created before pull secret(s) %s %s linked to service account "
                                "%s (PullPolicy %s); a pod's imagePullSecrets are fixed when "
                                "it is created: it must be recreated to pull",
                                sp->missing, strchr(sp->missing, ',') ? "were" : "was",
                                sp->service_account, pkey) >= 0)
                                record(s, sp->namespace, sp->name, sp->uid, true,
                                       "StalePullSecrets", msg, now);
                        if (t) t->warned = true;
                }
                /* never a bare pod, never one we cannot remember having deleted */
                if (!p->restart_stale_pods || !sp->restartable || !t || t->deleting) continue;
                if (!stale_rate_allow(&ps->rate, now, s->per_minute)) {
                        long long in = (long long)ceil(60.0 / s->per_minute);
                        if (retry < 0 || in < retry) retry = in;
                        continue;
                }
                int r = start_delete(s, policy, pkey, sp, key);
                if (r < 0)
                        log_warn(LOG_OBJ("pod", sp->namespace, sp->name),
                                 "could not start deleting a stale pod", LOG_ERRNO(r));
                else
                        t->deleting = true;
        }
        return retry;
}
