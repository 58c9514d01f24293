/* SPDX-License-Identifier: Apache-2.0 */
#include "plan.h"
#include "plan_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/labels.h"
#include "names.h"
#include "stalepods.h"
#include "util/jsonutil.h"
#include "util/macro.h"
#include "util/strv.h"
#include "util/timefmt.h"

#define RBAC_GROUP          "rbac.authorization.k8s.io"
#define PROBLEM_MESSAGE_MAX 1024

/* ---- small helpers ------------------------------------------------------------ */

/* "" and NULL are the same for optional API strings (omitempty). */
static bool opt_eq(const char *a, const char *b) {
        return streq(a ? a : "", b ? b : "");
}

static int cmp_meta_name(const void *a, const void *b) {
        const kube_meta *x = *(const kube_meta *const *)a, *y = *(const kube_meta *const *)b;
        int c = strcmp(x->namespace ? x->namespace : "", y->namespace ? y->namespace : "");
        return c ? c : strcmp(x->name, y->name);
}

void sort_by_name(void *arr, size_t n) {
        if (n > 1) qsort(arr, n, sizeof(void *), cmp_meta_name);
}

/* ---- memsnap ------------------------------------------------------------------ */

typedef struct ptrv {
        const void **v;
        size_t n, cap;
} ptrv;

struct plan_memsnap {
        ptrv ns, sa, secrets, rbs, policies, pods;
};

int plan_memsnap_new(plan_memsnap **ret) {
        if (!ret) return -EINVAL;
        *ret = calloc(1, sizeof(plan_memsnap));
        return *ret ? 0 : -ENOMEM;
}

plan_memsnap *plan_memsnap_free(plan_memsnap *m) {
        if (!m) return NULL;
        free(m->ns.v);
        free(m->sa.v);
        free(m->secrets.v);
        free(m->rbs.v);
        free(m->policies.v);
        free(m->pods.v);
        free(m);
        return NULL;
}

static int ptrv_add(ptrv *p, const void *o) {
        if (!o) return -EINVAL;
        if (GROW(p->v, p->cap, p->n + 1) < 0) return -ENOMEM;
        p->v[p->n++] = o;
        return 0;
}

int plan_memsnap_add_namespace(plan_memsnap *m, const model_namespace *ns) {
        return m ? ptrv_add(&m->ns, ns) : -EINVAL;
}
int plan_memsnap_add_sa(plan_memsnap *m, const model_sa *sa) {
        return m ? ptrv_add(&m->sa, sa) : -EINVAL;
}
int plan_memsnap_add_secret(plan_memsnap *m, const model_secret *s) {
        return m ? ptrv_add(&m->secrets, s) : -EINVAL;
}
int plan_memsnap_add_role_binding(plan_memsnap *m, const model_role_binding *rb) {
        return m ? ptrv_add(&m->rbs, rb) : -EINVAL;
}
int plan_memsnap_add_policy(plan_memsnap *m, const model_policy *p) {
        return m ? ptrv_add(&m->policies, p) : -EINVAL;
}

int plan_memsnap_add_pod(plan_memsnap *m, const stale_pod *pod) {
        return m && pod ? ptrv_add(&m->pods, pod) : -EINVAL;
}

int plan_memsnap_remove(plan_memsnap *m, const void *obj) {
        if (!m) return -EINVAL;
        ptrv *all[] = {&m->ns, &m->sa, &m->secrets, &m->rbs, &m->policies, &m->pods};
        for (size_t k = 0; k < ARRAY_SIZE(all); k++)
                for (size_t i = 0; i < all[k]->n; i++)
                        if (all[k]->v[i] == obj) {
                                memmove(all[k]->v + i, all[k]->v + i + 1,
                                        (all[k]->n - i - 1) * sizeof(void *));
                                all[k]->n--;
                                return 0;
                        }
        return -ENOENT;
}

static const void *ms_find(const ptrv *p, const char *ns, const char *name) {
        for (size_t i = 0; i < p->n; i++) {
                const kube_meta *m = p->v[i];
                if (streq_ptr(m->namespace, ns) && streq(m->name, name)) return p->v[i];
        }
        return NULL;
}

typedef bool (*ms_filter)(const void *obj, const char *arg);

static int ms_list(const ptrv *p, ms_filter f, const char *arg, const void ***ret, size_t *n) {
        *ret = NULL;
        *n = 0;
        size_t got = 0;
        const void **v = p->n ? calloc(p->n, sizeof(void *)) : NULL;
        if (p->n && !v) return -ENOMEM;
        for (size_t i = 0; i < p->n; i++)
                if (!f || f(p->v[i], arg)) v[got++] = p->v[i];
        if (got == 0) {
                free(v);
                return 0;
        }
        *ret = v;
        *n = got;
        return 0;
}

static bool in_namespace(const void *obj, const char *ns) {
        return streq_ptr(((const kube_meta *)obj)->namespace, ns);
}

static bool sa_links_policy(const void *obj, const char *key) {
        return model_links_mentions(&((const model_sa *)obj)->links, key);
}

static bool marked_by_key(const void *obj, const char *key) {
        const kube_meta *m = obj;
        const char *slash = strchr(key, '/');
        if (!slash) return false;
        const char *home = kube_kvs_get(&m->labels, NAMES_LABEL_POLICY_NAMESPACE);
        return home && strlen(home) == (size_t)(slash - key) &&
               strncmp(home, key, (size_t)(slash - key)) == 0 &&
               names_marked_by(m, home, slash + 1);
}

static const model_namespace *ms_namespace_get(void *ud, const char *name) {
        return ms_find(&((plan_memsnap *)ud)->ns, NULL, name);
}
static int ms_namespace_list(void *ud, const model_namespace ***ret, size_t *n) {
        return ms_list(&((plan_memsnap *)ud)->ns, NULL, NULL, (const void ***)ret, n);
}
static int ms_sa_list(void *ud, const char *ns, const model_sa ***ret, size_t *n) {
        return ms_list(&((plan_memsnap *)ud)->sa, in_namespace, ns, (const void ***)ret, n);
}
static int ms_sa_list_linked(void *ud, const char *key, const model_sa ***ret, size_t *n) {
        return ms_list(&((plan_memsnap *)ud)->sa, sa_links_policy, key, (const void ***)ret, n);
}
static const model_secret *ms_secret_get(void *ud, const char *ns, const char *name) {
        return ms_find(&((plan_memsnap *)ud)->secrets, ns, name);
}
static int ms_secret_list_marked(void *ud, const char *key, const model_secret ***ret, size_t *n) {
        return ms_list(&((plan_memsnap *)ud)->secrets, marked_by_key, key, (const void ***)ret, n);
}
static const model_role_binding *ms_rb_get(void *ud, const char *ns, const char *name) {
        return ms_find(&((plan_memsnap *)ud)->rbs, ns, name);
}
static int ms_rb_list_marked(void *ud, const char *key, const model_role_binding ***ret,
                             size_t *n) {
        return ms_list(&((plan_memsnap *)ud)->rbs, marked_by_key, key, (const void ***)ret, n);
}
static int ms_policy_list(void *ud, const char *ns, const model_policy ***ret, size_t *n) {
        return ms_list(&((plan_memsnap *)ud)->policies, in_namespace, ns, (const void ***)ret, n);
}

static int ms_pod_list(void *ud, const char *ns, const char *sa, const stale_pod ***ret,
                       size_t *n) {
        const ptrv *p = &((plan_memsnap *)ud)->pods;
        *ret = NULL;
        *n = 0;
        for (size_t i = 0; i < p->n; i++) {
                const stale_pod *pod = p->v[i];
                if (!streq_ptr(pod->meta.namespace, ns) || !streq_ptr(pod->service_account, sa))
                        continue;
                const stale_pod **v = realloc(*ret, (*n + 1) * sizeof(*v));
                if (!v) {
                        free(*ret);
                        *ret = NULL;
                        *n = 0;
                        return -ENOMEM;
                }
                v[(*n)++] = pod;
                *ret = v;
        }
        return 0;
}

static const plan_snapshot_ops memsnap_ops = {
    .namespace_get = ms_namespace_get,
    .namespace_list = ms_namespace_list,
    .sa_list = ms_sa_list,
    .sa_list_linked = ms_sa_list_linked,
    .secret_get = ms_secret_get,
    .secret_list_marked = ms_secret_list_marked,
    .role_binding_get = ms_rb_get,
    .role_binding_list_marked = ms_rb_list_marked,
    .policy_list = ms_policy_list,
    .pod_list = ms_pod_list,
};

plan_snapshot plan_memsnap_snapshot(plan_memsnap *m) {
        return (plan_snapshot){.ops = &memsnap_ops, .ud = m};
}

/* ---- the plan: memory ------------------------------------------------------------ */

static void problem_done(model_problem *p) {
        free(p->namespace);
        free(p->name);
        free(p->reason);
        free(p->message);
}

static void write_done(plan_write *w) {
        free(w->namespace);
        free(w->name);
        free(w->resource_version);
        free(w->uid);
        free(w->policy_namespace);
        free(w->policy_name);
        free(w->policy_uid);
        free(w->rb.subject_namespace);
        free(w->rb.role_name);
        for (size_t i = 0; i < w->rb.n_subjects; i++) {
                free(w->rb.subjects[i].kind);
                free(w->rb.subjects[i].api_group);
                free(w->rb.subjects[i].name);
                free(w->rb.subjects[i].namespace);
        }
        free(w->rb.subjects);
        free(w->copy.source_namespace);
        free(w->copy.source_name);
        free(w->copy.policy_name);
        for (size_t i = 0; i < w->sa.n_want; i++) free(w->sa.want[i].secret);
        free(w->sa.want);
        plan_sa_desired_done(&w->sa.desired);
        for (size_t i = 0; i < w->global.n_want; i++) {
                free(w->global.want[i].registry);
                free(w->global.want[i].source);
        }
        free(w->global.want);
        free(w->global.source_namespace);
        plan_global_desired_done(&w->global.desired);
}

plan *plan_free(plan *p) {
        if (!p) return NULL;
        for (size_t i = 0; i < p->n_writes; i++) write_done(&p->writes[i]);
        free(p->writes);
        for (size_t i = 0; i < p->n_events; i++) {
                free(p->events[i].reason);
                free(p->events[i].message);
        }
        free(p->events);
        free(p->status.ready_reason);
        free(p->status.ready_message);
        free(p->status.ready_last_transition);
        model_condition_done(&p->status.credentials);
        for (size_t i = 0; i < p->status.n_problems; i++) problem_done(&p->status.problems[i]);
        free(p->status.problems);
        plan_stale_pods_free(p->stale_pods, p->n_stale_pods);
        free(p);
        return NULL;
}

const char *plan_write_kind_to_string(plan_write_kind k) {
        static const char *const names[] = {
            [PLAN_ADD_FINALIZER] = "AddFinalizer",   [PLAN_REMOVE_FINALIZER] = "RemoveFinalizer",
            [PLAN_RB_CREATE] = "CreateRoleBinding",  [PLAN_RB_UPDATE] = "UpdateRoleBinding",
            [PLAN_RB_DELETE] = "DeleteRoleBinding",  [PLAN_COPY_CREATE] = "CreateSecretCopy",
            [PLAN_COPY_UPDATE] = "UpdateSecretCopy", [PLAN_COPY_DELETE] = "DeleteSecretCopy",
            [PLAN_SA_EDIT] = "EditServiceAccount",   [PLAN_GLOBAL_EDIT] = "EditGlobalPullSecret",
        };
        if ((size_t)k >= ARRAY_SIZE(names)) return NULL;
        return names[k];
}

/* ---- the plan: context ------------------------------------------------------------ */

ctx ctx_for(const model_policy *p, const plan_snapshot *snap, const plan_settings *settings) {
        return (ctx){.p = p,
                     .spec = p->spec,
                     .snap = snap,
                     .set = settings,
                     .home = p->meta.namespace,
                     .pname = p->meta.name,
                     .requeue = -1};
}

int ctx_open(ctx *c) {
        int r = names_policy_key(c->home, c->pname, &c->key);
        if (r >= 0) r = names_marked_key(c->home, c->pname, &c->mkey);
        if (r >= 0 && !(c->out = calloc(1, sizeof(plan)))) r = -ENOMEM;
        if (r < 0) return r;
        names_policy_label(c->pname, c->label);
        c->dist_allowed = distribution_allowed(c->set, c->home);
        return 0;
}

int ctx_finish(ctx *c, int r, plan **ret) {
        if (r >= 0) {
                c->out->requeue_after = c->requeue;
                *ret = TAKE_PTR(c->out);
        }
        plan_free(c->out);
        c->out = NULL;
        ctx_done(c);
        return r < 0 ? r : 0;
}

void ctx_done(ctx *c) {
        free(c->key);
        free(c->mkey);
        for (size_t i = 0; i < c->n_probs; i++) problem_done(&c->probs[i]);
        free(c->probs);
        strv_free(c->subjects, c->n_subjects);
        strv_free(c->waiting_names, c->n_waiting_names);
        strv_free(c->refused, c->n_refused);
}

_printf_(5, 6) int add_problem(ctx *c, const char *ns, const char *name, const char *reason,
                               const char *fmt, ...) {
        if (GROW(c->probs, c->cap_probs, c->n_probs + 1) < 0) return -ENOMEM;
        model_problem pr = {0};
        va_list ap;
        va_start(ap, fmt);
        int k = vasprintf(&pr.message, fmt, ap);
        va_end(ap);
        if (k < 0) return -ENOMEM;
        if (strlen(pr.message) >= PROBLEM_MESSAGE_MAX) pr.message[PROBLEM_MESSAGE_MAX - 1] = 0;
        pr.namespace = ns ? strdup(ns) : NULL;
        pr.name = name ? strdup(name) : NULL;
        pr.reason = strdup(reason);
        if ((ns && !pr.namespace) || (name && !pr.name) || !pr.reason) {
                problem_done(&pr);
                return -ENOMEM;
        }
        c->probs[c->n_probs++] = pr;
        return 0;
}

_printf_(4, 5) int add_event(ctx *c, bool warning, const char *reason, const char *fmt, ...) {
        plan *o = c->out;
        if (GROW(o->events, c->cap_events, o->n_events + 1) < 0) return -ENOMEM;
        plan_event e = {.warning = warning};
        va_list ap;
        va_start(ap, fmt);
        int k = vasprintf(&e.message, fmt, ap);
        va_end(ap);
        if (k < 0) return -ENOMEM;
        e.reason = strdup(reason);
        if (!e.reason) {
                free(e.message);
                return -ENOMEM;
        }
        o->events[o->n_events++] = e;
        return 0;
}

/* A new write with namespace, name, precondition and the policy's identity filled in. */
plan_write *add_write(ctx *c, plan_write_kind kind, const char *ns, const char *name,
                      const char *rv, const char *uid) {
        plan *o = c->out;
        if (GROW(o->writes, c->cap_writes, o->n_writes + 1) < 0) return NULL;
        plan_write *w = &o->writes[o->n_writes];
        *w = (plan_write){.kind = kind};
        w->namespace = strdup_or_null(ns);
        w->name = strdup_or_null(name);
        w->resource_version = strdup_or_null(rv);
        w->uid = strdup_or_null(uid);
        w->policy_namespace = strdup_or_null(c->home);
        w->policy_name = strdup_or_null(c->pname);
        w->policy_uid = strdup_or_null(c->p->meta.uid);
        o->n_writes++; /* counted now so that plan_free() releases what was set */
        if ((ns && !w->namespace) || (name && !w->name) || (rv && !w->resource_version) ||
            (uid && !w->uid) || !w->policy_namespace || !w->policy_name ||
            (c->p->meta.uid && !w->policy_uid))
                return NULL;
        return w;
}

static bool str_in(const char *const *v, size_t n, const char *s) {
        for (size_t i = 0; i < n; i++)
                if (streq_ptr(v[i], s)) return true;
        return false;
}

static bool role_allowed(const plan_settings *set, const char *role) {
        if (!set->allowed_cluster_roles) return streq(role, POLICY_SPEC_DEFAULT_ROLE);
        return str_in(set->allowed_cluster_roles, set->n_allowed_cluster_roles, role);
}

bool distribution_allowed(const plan_settings *set, const char *home) {
        return set->distribution_namespaces &&
               str_in(set->distribution_namespaces, set->n_distribution_namespaces, home);
}

/* ---- R1: subjects ------------------------------------------------------------------ */

/* The subject namespaces of spec (home as given), sorted, into *ret. */
int subject_namespaces(const policy_spec *spec, const char *home, const plan_snapshot *snap,
                       char ***ret, size_t *ret_n, size_t *ret_cap) {
        const plan_snapshot_ops *ops = snap->ops;
        int r;
        if (!policy_spec_has_namespace_subjects(spec)) {
                const model_namespace *ns = ops->namespace_get(snap->ud, home);
                if (ns && !ns->terminating) return strv_push(ret, ret_n, ret_cap, home);
                return 0;
        }
        for (size_t i = 0; i < spec->n_namespaces; i++) {
                const model_namespace *ns = ops->namespace_get(snap->ud, spec->namespaces[i]);
                if (!ns || ns->terminating || strv_contains(*ret, *ret_n, ns->meta.name)) continue;
                r = strv_push(ret, ret_n, ret_cap, ns->meta.name);
                if (r < 0) return r;
        }
        if (spec->namespace_selector) {
                const model_namespace **all = NULL;
                size_t n = 0;
                r = ops->namespace_list(snap->ud, &all, &n);
                if (r < 0) return r;
                for (size_t i = 0; i < n && r >= 0; i++) {
                        const model_namespace *ns = all[i];
                        if (ns->terminating || strv_contains(*ret, *ret_n, ns->meta.name) ||
                            !kube_selector_matches(spec->namespace_selector, &ns->meta.labels))
                                continue;
                        r = strv_push(ret, ret_n, ret_cap, ns->meta.name);
                }
                free(all);
                if (r < 0) return r;
        }
        if (*ret_n > 1) qsort(*ret, *ret_n, sizeof(char *), strv_qsort_cmp);
        return 0;
}

static bool sa_selected(const policy_spec *spec, const model_sa *sa) {
        if (policy_spec_all_service_accounts(spec)) return true;
        if (strv_contains(spec->service_accounts, spec->n_service_accounts, sa->meta.name))
                return true;
        return spec->sa_selector && kube_selector_matches(spec->sa_selector, &sa->meta.labels);
}

/* The subject service accounts of ns (existing ones), sorted by name. */
int subject_sas(ctx *c, const char *ns, const model_sa ***ret, size_t *ret_n) {
        const model_sa **all = NULL;
        size_t n = 0, got = 0;
        int r = c->snap->ops->sa_list(c->snap->ud, ns, &all, &n);
        if (r < 0) return r;
        for (size_t i = 0; i < n; i++)
                if (sa_selected(c->spec, all[i])) all[got++] = all[i];
        sort_by_name(all, got);
        *ret = all;
        *ret_n = got;
        return 0;
}

/* ---- R2: role bindings ----------------------------------------------------------- */

typedef struct rb_want {
        char *name;
        char *legacy;   /* names_role_binding_legacy(): kept until the binding under name is */
        bool placed;    /* the binding under name is there, or written by this plan */
        const char *ns; /* borrowed from ctx.subjects */
        model_subject *subjects;
        size_t n_subjects;
} rb_want;

static void rb_want_done(rb_want *w) {
        free(w->name);
        free(w->legacy);
        for (size_t i = 0; i < w->n_subjects; i++) {
                free(w->subjects[i].kind);
                free(w->subjects[i].api_group);
                free(w->subjects[i].name);
                free(w->subjects[i].namespace);
        }
        free(w->subjects);
}

static int subject_cmp(const model_subject *a, const model_subject *b) {
        int c = strcmp(a->kind ? a->kind : "", b->kind ? b->kind : "");
        if (!c) c = strcmp(a->namespace ? a->namespace : "", b->namespace ? b->namespace : "");
        if (!c) c = strcmp(a->name ? a->name : "", b->name ? b->name : "");
        return c;
}

static int subject_cmp_v(const void *a, const void *b) {
        return subject_cmp(a, b);
}

static int subject_cmp_p(const void *a, const void *b) {
        return subject_cmp(*(const model_subject *const *)a, *(const model_subject *const *)b);
}

static int push_subject(rb_want *w, size_t *cap, const char *kind, const char *group,
                        const char *name, const char *ns) {
        if (GROW(w->subjects, *cap, w->n_subjects + 1) < 0) return -ENOMEM;
        model_subject s = {strdup(kind), strdup_or_null(group), strdup(name), strdup_or_null(ns)};
        if (!s.kind || (group && !s.api_group) || !s.name || (ns && !s.namespace)) {
                free(s.kind), free(s.api_group), free(s.name), free(s.namespace);
                return -ENOMEM;
        }
        w->subjects[w->n_subjects++] = s;
        return 0;
}

static bool has_sa_subject(const rb_want *w, const char *name) {
        for (size_t i = 0; i < w->n_subjects; i++)
                if (streq(w->subjects[i].name, name)) return true;
        return false;
}

static int rb_subjects(ctx *c, const char *ns, rb_want *w) {
        size_t cap = 0;
        int r;
        if (policy_spec_all_service_accounts(c->spec)) {
                char *g = NULL;
                if (asprintf(&g, "system:serviceaccounts:%s", ns) < 0) return -ENOMEM;
                r = push_subject(w, &cap, "Group", RBAC_GROUP, g, NULL);
                free(g);
                return r;
        }
        /* listed names count whether or not the account exists yet */
        for (size_t i = 0; i < c->spec->n_service_accounts; i++) {
                r = push_subject(w, &cap, "ServiceAccount", NULL, c->spec->service_accounts[i], ns);
                if (r < 0) return r;
        }
        const model_sa **sas = NULL;
        size_t n = 0;
        r = subject_sas(c, ns, &sas, &n);
        for (size_t i = 0; r >= 0 && i < n; i++)
                if (!has_sa_subject(w, sas[i]->meta.name))
                        r = push_subject(w, &cap, "ServiceAccount", NULL, sas[i]->meta.name, ns);
        free(sas);
        if (r < 0) return r;
        if (w->n_subjects > 1)
                qsort(w->subjects, w->n_subjects, sizeof(model_subject), subject_cmp_v);
        return 0;
}

static bool rb_subjects_equal(const model_role_binding *rb, const rb_want *w) {
        if (rb->n_subjects != w->n_subjects) return false;
        if (w->n_subjects == 0) return true;
        const model_subject **v = calloc(rb->n_subjects, sizeof(*v));
        if (!v) return false; /* an extra update is harmless */
        for (size_t i = 0; i < rb->n_subjects; i++) v[i] = &rb->subjects[i];
        qsort(v, rb->n_subjects, sizeof(*v), subject_cmp_p);
        bool eq = true;
        for (size_t i = 0; eq && i < w->n_subjects; i++) {
                const model_subject *a = v[i], *b = &w->subjects[i];
                eq = streq_ptr(a->kind, b->kind) && opt_eq(a->api_group, b->api_group) &&
                     streq_ptr(a->name, b->name) && opt_eq(a->namespace, b->namespace);
        }
        free(v);
        return eq;
}

static bool rb_role_ok(const model_role_binding *rb, const char *role) {
        return streq_ptr(rb->role_api_group, RBAC_GROUP) &&
               streq_ptr(rb->role_kind, "ClusterRole") && streq_ptr(rb->role_name, role);
}

/* Labels and controller owner reference as the controller writes them. */
static bool rb_marks_ok(ctx *c, const model_role_binding *rb, const char *ns) {
        if (!streq_ptr(kube_kvs_get(&rb->meta.labels, NAMES_LABEL_SUBJECT_NAMESPACE), ns))
                return false;
        const kube_owner_ref *o = kube_meta_controller_ref(&rb->meta);
        if (!c->p->meta.uid) return true;
        return o && streq_ptr(o->uid, c->p->meta.uid) && streq_ptr(o->kind, NAMES_POLICY_KIND) &&
               streq_ptr(o->name, c->pname);
}

static int fill_rb_write(plan_write *w, const rb_want *want, const char *role) {
        w->rb.subject_namespace = strdup(want->ns);
        w->rb.role_name = strdup(role);
        if (!w->rb.subject_namespace || !w->rb.role_name) return -ENOMEM;
        if (want->n_subjects) {
                w->rb.subjects = calloc(want->n_subjects, sizeof(model_subject));
                if (!w->rb.subjects) return -ENOMEM;
        }
        for (size_t i = 0; i < want->n_subjects; i++) {
                const model_subject *s = &want->subjects[i];
                model_subject *d = &w->rb.subjects[w->rb.n_subjects++];
                d->kind = strdup(s->kind);
                d->api_group = strdup_or_null(s->api_group);
                d->name = strdup(s->name);
                d->namespace = strdup_or_null(s->namespace);
                if (!d->kind || (s->api_group && !d->api_group) || !d->name ||
                    (s->namespace && !d->namespace))
                        return -ENOMEM;
        }
        return 0;
}

static int plan_rb_create(ctx *c, const rb_want *want, const char *role) {
        plan_write *w = add_write(c, PLAN_RB_CREATE, c->home, want->name, NULL, NULL);
        if (!w || fill_rb_write(w, want, role) < 0) return -ENOMEM;
        w->counted = true;
        return add_event(c, false, "RoleBindingCreated",
                         "created RoleBinding %s/%s granting ClusterRole %s to %s of namespace %s",
                         c->home, want->name, role,
                         policy_spec_all_service_accounts(c->spec) ? "all service accounts"
                                                                   : "service accounts",
                         want->ns);
}

int plan_role_bindings(ctx *c) {
        const plan_snapshot_ops *ops = c->snap->ops;
        const char *role = c->spec->image_puller ? c->spec->cluster_role : NULL;
        rb_want *wants = NULL;
        size_t n_wants = 0;
        const model_role_binding **marked = NULL;
        size_t n_marked = 0;
        char *scope_name = NULL, *scope_legacy = NULL;
        int r = 0;

        if (role && !role_allowed(c->set, role)) {
                r = add_problem(c, c->home, c->pname, "RoleNotAllowed",
                                "ClusterRole %s is not on the controller's allowed list", role);
                if (r < 0) return r;
                role = NULL; /* no bindings: existing ones go below */
        }
        if (role && c->n_subjects) {
                wants = calloc(c->n_subjects, sizeof(rb_want));
                if (!wants) return -ENOMEM;
                for (size_t i = 0; i < c->n_subjects; i++) {
                        rb_want *w = &wants[n_wants++];
                        w->ns = c->subjects[i];
                        r = names_role_binding(c->pname, w->ns, &w->name);
                        if (r >= 0) r = names_role_binding_legacy(c->pname, w->ns, &w->legacy);
                        if (r >= 0) r = rb_subjects(c, w->ns, w);
                        if (r < 0) goto out;
                }
        }
        for (size_t i = 0; i < n_wants; i++) {
                rb_want *w = &wants[i];
                if (w->n_subjects == 0) continue; /* a binding to nobody: none */
                const model_role_binding *cur =
                    ops->role_binding_get(c->snap->ud, c->home, w->name);
                if (!cur) {
                        r = plan_rb_create(c, w, role);
                } else if (!names_marked_by(&cur->meta, c->home, c->pname)) {
                        r = add_problem(c, c->home, w->name, "Conflict",
                                        "RoleBinding %s/%s exists and was not made for this "
                                        "policy",
                                        c->home, w->name);
                        if (r >= 0) continue;
                } else if (!rb_role_ok(cur, role)) {
                        /* roleRef cannot change: replace the binding */
                        r = add_write(c, PLAN_RB_DELETE, c->home, w->name,
                                      cur->meta.resource_version, cur->meta.uid)
                                ? 0
                                : -ENOMEM;
                        if (r >= 0) r = plan_rb_create(c, w, role);
                } else if (!rb_subjects_equal(cur, w) || !rb_marks_ok(c, cur, w->ns)) {
                        plan_write *pw = add_write(c, PLAN_RB_UPDATE, c->home, w->name,
                                                   cur->meta.resource_version, NULL);
                        r = pw ? fill_rb_write(pw, w, role) : -ENOMEM;
                }
                if (r < 0) goto out;
                w->placed = true;
                c->n_rb++;
        }
        /* a plan of one namespace looks at that namespace's bindings only (by their names) */
        if (c->scope) {
                r = names_role_binding(c->pname, c->scope, &scope_name);
                if (r >= 0) r = names_role_binding_legacy(c->pname, c->scope, &scope_legacy);
                if (r < 0) goto out;
        }
        r = ops->role_binding_list_marked(c->snap->ud, c->mkey, &marked, &n_marked);
        if (r < 0) goto out;
        sort_by_name(marked, n_marked);
        for (size_t i = 0; i < n_marked; i++) {
                const model_role_binding *rb = marked[i];
                bool keep = false;
                if (c->scope && !streq(rb->meta.name, scope_name) &&
                    !streq(rb->meta.name, scope_legacy))
                        continue;
                const char *subject_ns =
                    kube_kvs_get(&rb->meta.labels, NAMES_LABEL_SUBJECT_NAMESPACE);
                for (size_t j = 0; j < n_wants && !keep; j++) {
                        const rb_want *w = &wants[j];
                        if (!w->n_subjects || !streq_ptr(rb->meta.namespace, c->home)) continue;
                        keep = streq(w->name, rb->meta.name);
                        if (streq(w->legacy, rb->meta.name)) {
                                /* an earlier version's name: replaced by the binding under
                                 * the new name, which must be there first (no gap) */
                                keep = !w->placed;
                                subject_ns = w->ns;
                        }
                }
                if (keep) continue;
                plan_write *dw = add_write(c, PLAN_RB_DELETE, rb->meta.namespace, rb->meta.name,
                                           rb->meta.resource_version, rb->meta.uid);
                /* the apply skips the delete when the write for that namespace failed */
                if (!dw || (subject_ns && !(dw->rb.subject_namespace = strdup(subject_ns)))) {
                        r = -ENOMEM;
                        goto out;
                }
        }
out:
        for (size_t i = 0; i < n_wants; i++) rb_want_done(&wants[i]);
        free(wants);
        free(marked);
        free(scope_name);
        free(scope_legacy);
        return r;
}

/* ---- status ------------------------------------------------------------------------ */

/* Ready reasons by precedence; problems with other reasons do not lower Ready. */
static const char *const blocking[] = {
    "InvalidSpec", "RoleNotAllowed", "ServiceAccountSecret", "DistributionNotAllowed",
    "Conflict",    "InvalidSecret",  "SecretNotFound",       "Waiting",
};

static int blocking_rank(const char *reason) {
        for (size_t i = 0; i < ARRAY_SIZE(blocking); i++)
                if (streq(blocking[i], reason)) return (int)i;
        return -1;
}

static int problem_cmp(const void *a, const void *b) {
        const model_problem *x = a, *y = b;
        int c = strcmp(x->namespace ? x->namespace : "", y->namespace ? y->namespace : "");
        if (!c) c = strcmp(x->name ? x->name : "", y->name ? y->name : "");
        if (!c) c = strcmp(x->reason, y->reason);
        if (!c) c = strcmp(x->message, y->message);
        return c;
}

static bool problem_eq(const model_problem *a, const model_problem *b) {
        return opt_eq(a->namespace, b->namespace) && opt_eq(a->name, b->name) &&
               streq_ptr(a->reason, b->reason) && opt_eq(a->message, b->message);
}

static bool stored_has_problem(const model_policy_status *st, const model_problem *p) {
        for (size_t i = 0; i < st->n_problems; i++)
                if (opt_eq(st->problems[i].namespace, p->namespace) &&
                    opt_eq(st->problems[i].name, p->name) &&
                    streq_ptr(st->problems[i].reason, p->reason))
                        return true;
        return false;
}

static const char *problem_event_reason(const char *reason) {
        if (streq(reason, "Waiting")) return "WaitingForDockercfg";
        if (streq(reason, "DockercfgTimeout")) return NULL; /* sent with the link itself */
        /* R13: the Event goes to the pod itself (stalepods_act.h) */
        if (streq(reason, "StalePod")) return NULL;
        return reason;
}

static int ready_message(ctx *c, const char *reason, char **ret) {
        const plan *o = c->out;
        if (!reason) {
                char stale[64] = "";
                /* R13: they do not lower Ready, but whoever reads it should see them */
                if (c->stale_pods > 0)
                        snprintf(stale, sizeof(stale), "; %d stale pod%s must be recreated",
                                 c->stale_pods, c->stale_pods == 1 ? "" : "s");
                if (asprintf(ret, "%d namespaces, %d role bindings, %d service accounts linked%s",
                             o->status.namespaces, o->status.role_bindings, o->status.linked,
                             stale) < 0)
                        return -ENOMEM;
                return 0;
        }
        if (streq(reason, "Waiting") && c->waiting > 0) {
                /* names are DNS names: 3 of them fit */
                char names[3 * (2 * NAMES_OBJECT_MAX + 3) + 1] = "";
                size_t len = 0;
                for (size_t i = 0; i < c->n_waiting_names; i++) {
                        int k = snprintf(names + len, sizeof(names) - len, "%s%s", i ? ", " : "",
                                         c->waiting_names[i]);
                        if (k < 0 || (size_t)k >= sizeof(names) - len) break;
                        len += (size_t)k;
                }
                if (asprintf(ret, "%d service account%s wait%s for their dockercfg secret (%s%s)",
                             c->waiting, c->waiting == 1 ? "" : "s", c->waiting == 1 ? "s" : "",
                             names, (size_t)c->waiting > c->n_waiting_names ? ", ..." : "") < 0)
                        return -ENOMEM;
                return 0;
        }
        const model_problem *first = NULL;
        size_t more = 0;
        for (size_t i = 0; i < c->n_probs; i++) {
                if (blocking_rank(c->probs[i].reason) < 0) continue;
                if (!first && streq(c->probs[i].reason, reason))
                        first = &c->probs[i];
                else
                        more++;
        }
        if (!first) return asprintf(ret, "%s", reason) < 0 ? -ENOMEM : 0;
        if (more == 0) return (*ret = strdup(first->message)) ? 0 : -ENOMEM;
        if (asprintf(ret, "%s (and %zu more problem%s)", first->message, more,
                     more == 1 ? "" : "s") < 0)
                return -ENOMEM;
        return 0;
}

void plan_status_write_undone(plan *p, size_t idx) {
        if (!p || idx >= p->n_writes || !p->has_status || !p->writes[idx].counted) return;
        int *n = NULL;
        switch (p->writes[idx].kind) {
        case PLAN_RB_CREATE:
                n = &p->status.role_bindings;
                break;
        case PLAN_SA_EDIT:
                n = &p->status.linked;
                break;
        default:
                return;
        }
        if (*n > 0) (*n)--;
}

static int build_status(ctx *c, const char *invalid_message) {
        plan *o = c->out;
        plan_status *st = &o->status;
        const model_policy_status *cur = &c->p->status;
        int r;
        o->has_status = true;
        st->observed_generation = c->p->meta.generation;
        st->namespaces = (int)c->n_subjects;
        st->role_bindings = c->n_rb;
        st->linked = c->linked;
        st->waiting = c->waiting;
        st->stale_pods = c->stale_pods;
        st->dockercfg_form = plan_dockercfg_form(c->set);
        if (c->set->verify_credentials && c->p->spec && c->p->spec->verify_credentials &&
            cur->has_credentials) {
                r = model_condition_copy(&cur->credentials, &st->credentials);
                if (r < 0) return r;
                st->has_credentials = true;
        }

        if (c->n_probs > 1) qsort(c->probs, c->n_probs, sizeof(model_problem), problem_cmp);
        const char *reason = NULL;
        int best = INT32_MAX;
        for (size_t i = 0; i < c->n_probs; i++) {
                int k = blocking_rank(c->probs[i].reason);
                if (k >= 0 && k < best) best = k, reason = blocking[k];
        }
        if (invalid_message) reason = "InvalidSpec";
        st->ready_status = reason ? "False" : "True";
        st->ready_reason = strdup(reason ? reason : "Applied");
        if (!st->ready_reason) return -ENOMEM;
        if (invalid_message) {
                st->ready_message = strdup(invalid_message);
                r = st->ready_message ? 0 : -ENOMEM;
        } else {
                r = ready_message(c, reason, &st->ready_message);
        }
        if (r < 0) return r;

        size_t n = MIN(c->n_probs, (size_t)MODEL_PROBLEMS_MAX);
        if (n) {
                st->problems = calloc(n, sizeof(model_problem));
                if (!st->problems) return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                st->problems[i] = c->probs[i];
                c->probs[i] = (model_problem){0};
                st->n_problems++;
        }

        bool same = cur->observed_generation == st->observed_generation && cur->has_ready &&
                    streq_ptr(cur->ready_status, st->ready_status) &&
                    streq_ptr(cur->ready_reason, st->ready_reason) &&
                    opt_eq(cur->ready_message, st->ready_message) &&
                    cur->ready_observed_generation == st->observed_generation &&
                    cur->namespaces == st->namespaces && cur->role_bindings == st->role_bindings &&
                    cur->linked == st->linked && cur->waiting == st->waiting &&
                    opt_eq(cur->dockercfg_form, st->dockercfg_form) && !cur->problems_truncated &&
                    cur->n_problems == st->n_problems && cur->ready_last_transition &&
                    cur->has_credentials == st->has_credentials &&
                    MAX(cur->stale_pods, 0) == st->stale_pods;
        for (size_t i = 0; same && i < st->n_problems; i++)
                same = problem_eq(&cur->problems[i], &st->problems[i]);
        o->status_changed = !same;

        if (cur->has_ready && streq_ptr(cur->ready_status, st->ready_status) &&
            cur->ready_last_transition) {
                st->ready_last_transition = strdup(cur->ready_last_transition);
        } else {
                char buf[TIMEFMT_RFC3339_MAX];
                if (timefmt_rfc3339((time_t)c->set->now, buf, sizeof(buf)) < 0)
                        snprintf(buf, sizeof(buf), "1970-01-01T00:00:00Z");
                st->ready_last_transition = strdup(buf);
        }
        if (!st->ready_last_transition) return -ENOMEM;

        /* events for new problems only: a steady state repeats none */
        for (size_t i = 0; i < st->n_problems; i++) {
                const model_problem *p = &st->problems[i];
                const char *er = problem_event_reason(p->reason);
                if (!er || stored_has_problem(cur, p)) continue;
                r = add_event(c, !streq(p->reason, "Waiting"), er, "%s", p->message);
                if (r < 0) return r;
        }
        if (invalid_message && !(cur->has_ready && streq_ptr(cur->ready_reason, "InvalidSpec") &&
                                 opt_eq(cur->ready_message, invalid_message))) {
                r = add_event(c, true, "InvalidSpec", "%s", invalid_message);
                if (r < 0) return r;
        }
        return 0;
}

/* ---- plan_policy -------------------------------------------------------------------- */

bool snapshot_ok(const plan_snapshot *s) {
        const plan_snapshot_ops *o = s ? s->ops : NULL;
        return o && o->namespace_get && o->namespace_list && o->sa_list && o->sa_list_linked &&
               o->secret_get && o->secret_list_marked && o->role_binding_get &&
               o->role_binding_list_marked;
}

static int plan_deleting(ctx *c) {
        int r;
        /* every binding, link, copy and merged entry of this policy goes */
        const model_role_binding **marked = NULL;
        size_t n = 0;
        r = c->snap->ops->role_binding_list_marked(c->snap->ud, c->mkey, &marked, &n);
        if (r < 0) return r;
        sort_by_name(marked, n);
        for (size_t i = 0; i < n && r >= 0; i++)
                if (!add_write(c, PLAN_RB_DELETE, marked[i]->meta.namespace, marked[i]->meta.name,
                               marked[i]->meta.resource_version, marked[i]->meta.uid))
                        r = -ENOMEM;
        free(marked);
        if (r >= 0) r = plan_stale_links(c, NULL, 0, true);
        if (r >= 0) r = plan_global(c, NULL, true);
        if (r >= 0) r = plan_copy_deletes(c, true);
        if (r < 0) return r;
        if (c->orphan) {
                /* no object, no finalizer: come back until the caches show nothing left */
                if (c->out->n_writes > 0 || c->undo_pending) c->requeue = 1;
        } else if (c->out->n_writes == 0 && !c->undo_pending) {
                if (!add_write(c, PLAN_REMOVE_FINALIZER, c->home, c->pname,
                               c->p->meta.resource_version, NULL))
                        return -ENOMEM;
        } else {
                /* come back once these writes show in the caches */
                c->requeue = 1;
        }
        return 0;
}

int plan_policy(const model_policy *p, const plan_snapshot *snap, const plan_settings *settings,
                plan **ret) {
        if (!p || !p->meta.name || !p->meta.namespace || !snapshot_ok(snap) || !settings || !ret)
                return -EINVAL;
        ctx c = ctx_for(p, snap, settings);
        int r = ctx_open(&c);
        if (r < 0) return ctx_finish(&c, r, ret);
        bool finalizer = kube_meta_has_finalizer(&p->meta, NAMES_FINALIZER);
        src_info *srcs = NULL;
        bool *usable = NULL;
        char **done = NULL;
        size_t n_done = 0, cap_done = 0;

        if (p->meta.deleting) {
                if (finalizer) r = plan_deleting(&c);
                goto finish;
        }
        if (!finalizer) {
                /* before anything else, so that whatever follows can be undone */
                if (!add_write(&c, PLAN_ADD_FINALIZER, c.home, c.pname, p->meta.resource_version,
                               NULL))
                        r = -ENOMEM;
                c.requeue = 0;
                goto finish;
        }
        if (!p->spec) {
                r = build_status(&c, p->spec_error ? p->spec_error : "the spec is invalid");
                goto finish;
        }

        r = subject_namespaces(c.spec, c.home, snap, &c.subjects, &c.n_subjects, &c.cap_subjects);
        if (r < 0) goto finish;
        r = plan_role_bindings(&c);
        if (r < 0) goto finish;

        size_t n_ps = c.spec->n_pull_secrets;
        if (n_ps) {
                srcs = calloc(n_ps, sizeof(src_info));
                usable = calloc(c.n_subjects ? c.n_subjects * n_ps : 1, sizeof(bool));
                if (!srcs || !usable) {
                        r = -ENOMEM;
                        goto finish;
                }
                r = judge_sources(&c, srcs);
                if (r < 0) goto finish;
                bool needs_distribution = false;
                for (size_t i = 0; i < c.n_subjects; i++)
                        needs_distribution = needs_distribution || !streq(c.subjects[i], c.home);
                if (needs_distribution && !c.dist_allowed) {
                        r = add_problem(&c, c.home, c.pname, "DistributionNotAllowed",
                                        "namespace %s is not on the controller's distribution "
                                        "list: pull secrets are not copied to other namespaces",
                                        c.home);
                        if (r < 0) goto finish;
                }
                r = plan_copies(&c, srcs, usable);
                if (r < 0) goto finish;
                r = plan_service_accounts(&c, srcs, usable, &done, &n_done, &cap_done);
                if (r < 0) goto finish;
        }
        r = plan_stale_links(&c, done, n_done, false);
        if (r < 0) goto finish;
        /* also without merge: entries a former merge: true left behind go */
        r = plan_global(&c, srcs, false);
        if (r < 0) goto finish;
        r = plan_copy_deletes(&c, false);
        if (r < 0) goto finish;
        r = plan_stale_pods(&c);
        if (r < 0) goto finish;
        r = build_status(&c, NULL);

finish:
        free(srcs);
        free(usable);
        strv_free(done, n_done);
        return ctx_finish(&c, r, ret);
}

int plan_orphan(const char *home, const char *name, const plan_snapshot *snap,
                const plan_settings *settings, plan **ret) {
        if (!home || !name || !snapshot_ok(snap) || !settings || !ret) return -EINVAL;
        /* all that is left of the policy is its identity: a deleting one without a spec */
        model_policy ghost = {
            .meta = {.namespace = (char *)home, .name = (char *)name, .deleting = true}};
        ctx c = {.p = &ghost,
                 .snap = snap,
                 .set = settings,
                 .home = home,
                 .pname = name,
                 .requeue = -1,
                 .orphan = true};
        int r = ctx_open(&c);
        if (r >= 0) r = plan_deleting(&c);
        if (r >= 0) {
                /* nothing to address events to: the writes are logged instead */
                for (size_t i = 0; i < c.out->n_events; i++) {
                        free(c.out->events[i].reason);
                        free(c.out->events[i].message);
                }
                c.out->n_events = 0;
        }
        return ctx_finish(&c, r, ret);
}

/* ---- JSON of a RoleBinding --------------------------------------------------------- */

/* Sets o[k] to the string v, or nothing when v is NULL. */
static int add_str(json_object *o, const char *k, const char *v) {
        return v ? jsonutil_add(o, k, json_object_new_string(v)) : 0;
}

int plan_role_binding_json(const plan_write *w, json_object **ret) {
        if (!w || !ret || (w->kind != PLAN_RB_CREATE && w->kind != PLAN_RB_UPDATE) ||
            !w->rb.role_name)
                return -EINVAL;
        json_object *rb = json_object_new_object(), *meta = json_object_new_object(),
                    *labels = json_object_new_object(), *ref = json_object_new_object(),
                    *subjects = json_object_new_array(), *owners = json_object_new_array();
        int r = (rb && meta && labels && ref && subjects && owners) ? 0 : -ENOMEM;
        if (r >= 0) r = add_str(rb, "apiVersion", RBAC_GROUP "/v1");
        if (r >= 0) r = add_str(rb, "kind", "RoleBinding");
        if (r >= 0) r = add_str(meta, "name", w->name);
        if (r >= 0) r = add_str(meta, "namespace", w->namespace);
        if (r >= 0 && w->kind == PLAN_RB_UPDATE)
                r = add_str(meta, "resourceVersion", w->resource_version);
        if (r >= 0) r = add_str(labels, NAMES_LABEL_MANAGED_BY, NAMES_MANAGED_BY_VALUE);
        char label[NAMES_LABEL_VALUE_MAX + 1];
        names_policy_label(w->policy_name, label);
        if (r >= 0) r = add_str(labels, NAMES_LABEL_POLICY, label);
        if (r >= 0) r = add_str(labels, NAMES_LABEL_POLICY_NAMESPACE, w->policy_namespace);
        if (r >= 0) r = add_str(labels, NAMES_LABEL_SUBJECT_NAMESPACE, w->rb.subject_namespace);
        if (r >= 0 && w->policy_uid) {
                json_object *o = json_object_new_object();
                r = o ? 0 : -ENOMEM;
                if (r >= 0) r = add_str(o, "apiVersion", NAMES_POLICY_API_VERSION);
                if (r >= 0) r = add_str(o, "kind", NAMES_POLICY_KIND);
                if (r >= 0) r = add_str(o, "name", w->policy_name);
                if (r >= 0) r = add_str(o, "uid", w->policy_uid);
                if (r >= 0) r = jsonutil_add(o, "controller", json_object_new_boolean(1));
                if (r >= 0 && json_object_array_add(owners, o) < 0) r = -ENOMEM;
                if (r < 0) json_object_put(o);
        }
        if (r >= 0) r = add_str(ref, "apiGroup", RBAC_GROUP);
        if (r >= 0) r = add_str(ref, "kind", "ClusterRole");
        if (r >= 0) r = add_str(ref, "name", w->rb.role_name);
        for (size_t i = 0; r >= 0 && i < w->rb.n_subjects; i++) {
                const model_subject *s = &w->rb.subjects[i];
                json_object *o = json_object_new_object();
                r = o ? 0 : -ENOMEM;
                if (r >= 0) r = add_str(o, "kind", s->kind);
                if (r >= 0 && s->api_group) r = add_str(o, "apiGroup", s->api_group);
                if (r >= 0) r = add_str(o, "name", s->name);
                if (r >= 0) r = add_str(o, "namespace", s->namespace);
                if (r >= 0 && json_object_array_add(subjects, o) < 0) r = -ENOMEM;
                if (r < 0) json_object_put(o);
        }
        if (r >= 0) {
                r = jsonutil_add(meta, "labels", labels);
                labels = NULL;
        }
        if (r >= 0 && json_object_array_length(owners) > 0) {
                r = jsonutil_add(meta, "ownerReferences", owners);
                owners = NULL;
        }
        if (r >= 0) {
                r = jsonutil_add(rb, "metadata", meta);
                meta = NULL;
        }
        if (r >= 0) {
                r = jsonutil_add(rb, "roleRef", ref);
                ref = NULL;
        }
        if (r >= 0) {
                r = jsonutil_add(rb, "subjects", subjects);
                subjects = NULL;
        }
        json_object_put(labels);
        json_object_put(owners);
        json_object_put(meta);
        json_object_put(ref);
        json_object_put(subjects);
        if (r < 0) {
                json_object_put(rb);
                return r;
        }
        *ret = rb;
        return 0;
}
