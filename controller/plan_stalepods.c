/* SPDX-License-Identifier: Apache-2.0 */
/*
 * R13 in the planner: the stale pods of a policy's subject service accounts, from the cache's
 * Pending pods. They go into the status (stalePods, problems) that the reconciler's merge patch
 * writes whole, and into the plan for the stale-pod step (stalepods_act.h: the pod's Event, the
 * opt-in deletion). A secret counts as linked by this policy when the account's link record
 * holds this policy's claim on it for .imagePullSecrets and the account has it there now.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan_internal.h"
#include "stalepods.h"
#include "util/strbuf.h"
#include "util/strv.h"

/* Stale pods named in problems: the count is in status.stalePods, and the other problems
 * (which can lower Ready) keep their room under MODEL_PROBLEMS_MAX. */
#define STALE_PROBLEMS_MAX 10

void plan_stale_pods_free(plan_stale_pod *v, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(v[i].namespace);
                free(v[i].name);
                free(v[i].uid);
                free(v[i].resource_version);
                free(v[i].service_account);
                free(v[i].missing);
        }
        free(v);
}

/* The names this policy linked to sa's .imagePullSecrets, borrowed from sa. */
static int linked_by(const ctx *c, const model_sa *sa, const char ***ret, size_t *ret_n) {
        const char **v = NULL;
        size_t n = 0;
        for (size_t i = 0; i < sa->links.n; i++) {
                const model_link *l = &sa->links.items[i];
                if (!streq(l->policy, c->key) || !(l->for_mask & POLICY_FOR_PULL) ||
                    !model_sa_has_pull_secret(sa, l->secret))
                        continue;
                const char **nv = realloc(v, (n + 1) * sizeof(*nv));
                if (!nv) {
                        free(v);
                        return -ENOMEM;
                }
                v = nv;
                v[n++] = l->secret;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static char *join(char *const *v, size_t n) {
        size_t len = 1;
        for (size_t i = 0; i < n; i++) len += strlen(v[i]) + 2;
        char *s = malloc(len), *p = s;
        if (!s) return NULL;
        *p = 0;
        for (size_t i = 0; i < n; i++) p += sprintf(p, "%s%s", i ? ", " : "", v[i]);
        return s;
}

static int cmp_pod(const void *a, const void *b) {
        const stale_pod *x = *(const stale_pod *const *)a, *y = *(const stale_pod *const *)b;
        return strcmp(x->meta.name, y->meta.name);
}

static int add_stale(ctx *c, size_t *cap, const model_sa *sa, const stale_pod *pod,
                     const stale_pod_verdict *v) {
        plan *o = c->out;
        if (GROW(o->stale_pods, *cap, o->n_stale_pods + 1) < 0) return -ENOMEM;
        plan_stale_pod sp = {
            .namespace = strdup(pod->meta.namespace),
            .name = strdup(pod->meta.name),
            .uid = strdup_or_null(pod->meta.uid),
            .resource_version = strdup_or_null(pod->meta.resource_version),
            .service_account = strdup(sa->meta.name),
            .missing = join(v->missing, v->n_missing),
            .restartable = v->restartable,
        };
        o->stale_pods[o->n_stale_pods++] = sp;
        if (!sp.namespace || !sp.name || (pod->meta.uid && !sp.uid) ||
            (pod->meta.resource_version && !sp.resource_version) || !sp.service_account ||
            !sp.missing)
                return -ENOMEM;
        c->stale_pods++;
        if (c->stale_pods > STALE_PROBLEMS_MAX) return 0;
        return add_problem(c, sp.namespace, sp.name, "StalePod",
                           "pod %s/%s was created before %s %s linked to service account %s: "
                           "it cannot pull and must be recreated",
                           sp.namespace, sp.name, sp.missing, v->n_missing == 1 ? "was" : "were",
                           sa->meta.name);
}

int plan_stale_pods(ctx *c) {
        const plan_snapshot_ops *ops = c->snap->ops;
        if (!ops->pod_list || !c->spec || c->spec->n_pull_secrets == 0) return 0;
        c->out->restart_stale_pods = c->spec->restart_stale_pods;
        size_t cap = 0;
        int r = 0;
        for (size_t i = 0; i < c->n_subjects && r >= 0; i++) {
                const char *ns = c->subjects[i];
                const model_sa **sas = NULL;
                size_t n_sas = 0;
                r = subject_sas(c, ns, &sas, &n_sas);
                for (size_t k = 0; k < n_sas && r >= 0; k++) {
                        const model_sa *sa = sas[k];
                        const char **linked = NULL;
                        size_t n_linked = 0;
                        r = linked_by(c, sa, &linked, &n_linked);
                        if (r < 0 || n_linked == 0) continue;
                        const stale_pod **pods = NULL;
                        size_t n_pods = 0;
                        r = ops->pod_list(c->snap->ud, ns, sa->meta.name, &pods, &n_pods);
                        if (r >= 0 && n_pods > 1) qsort(pods, n_pods, sizeof(*pods), cmp_pod);
                        for (size_t p = 0; p < n_pods && r >= 0; p++) {
                                stale_pod_verdict v;
                                r = stale_pod_check(pods[p], linked, n_linked, sa->pull_secrets,
                                                    sa->n_pull_secrets, &v);
                                if (r < 0) break;
                                if (v.stale) r = add_stale(c, &cap, sa, pods[p], &v);
                                stale_pod_verdict_done(&v);
                        }
                        free(pods);
                        free(linked);
                }
                free(sas);
        }
        return r;
}
