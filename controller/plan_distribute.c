/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sources of a policy and what is distributed from them: the copies (R5) and
 * the global pull secret (R6). Moved out of plan.c as they were; see plan.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/labels.h"
#include "names.h"
#include "plan.h"
#include "plan_internal.h"
#include "util/macro.h"
#include "util/strv.h"

/* ---- global pull secret edits ------------------------------------------------------ */

void plan_global_desired_done(plan_global_desired *d) {
        if (!d) return;
        for (size_t i = 0; i < d->n_ops; i++) {
                free(d->ops[i].registry);
                free(d->ops[i].source);
        }
        free(d->ops);
        free(d->merged);
        strv_free(d->conflicts, d->n_conflicts);
        *d = (plan_global_desired){0};
}

static int gop_push(plan_global_desired *d, plan_global_op_kind k, const char *reg,
                    const char *src) {
        size_t cap = d->n_ops;
        if (GROW(d->ops, cap, d->n_ops + 1) < 0) return -ENOMEM;
        plan_global_op op = {k, strdup(reg), src ? strdup(src) : NULL};
        if (!op.registry || (src && !op.source)) {
                free(op.registry);
                free(op.source);
                return -ENOMEM;
        }
        d->ops[d->n_ops++] = op;
        return 0;
}

static bool merged_equal_for(const model_merged *a, const model_merged *b, const char *key) {
        size_t ia = 0, ib = 0;
        for (;;) {
                while (ia < a->n && !streq(a->items[ia].policy, key)) ia++;
                while (ib < b->n && !streq(b->items[ib].policy, key)) ib++;
                if (ia == a->n || ib == b->n) return ia == a->n && ib == b->n;
                if (!streq(a->items[ia].registry, b->items[ib].registry)) return false;
                ia++, ib++;
        }
}

int plan_global_edit(const model_secret *current, const char *policy_key,
                     const plan_global_want *want, size_t n_want, bool keep_unwanted,
                     plan_global_desired *ret) {
        if (!current || !policy_key || !ret || (n_want && !want)) return -EINVAL;
        plan_global_desired d = {0};
        const model_merged empty = {0};
        const model_merged *cur = current->merged_error ? &empty : &current->merged;
        model_merged m = {0};
        size_t cap_conf = 0;
        int r = model_merged_copy(cur, &m);
        if (r < 0) return r;
        for (size_t i = 0; i < n_want; i++) {
                const plan_global_want *w = &want[i];
                bool dup = false;
                for (size_t j = 0; j < i; j++) dup = dup || streq(want[j].registry, w->registry);
                if (dup) continue; /* the first source that has a registry wins */
                const char *owner = model_merged_owner(cur, w->registry);
                const model_registry *present = model_secret_registry(current, w->registry);
                if ((owner && !streq(owner, policy_key)) || (present && !owner)) {
                        r = strv_push(&d.conflicts, &d.n_conflicts, &cap_conf, w->registry);
                } else if (!present) {
                        r = gop_push(&d, PLAN_GLOBAL_ADD, w->registry, w->source);
                        if (r >= 0) r = model_merged_set(&m, policy_key, w->registry, true);
                } else if (present->hash != w->hash) {
                        r = gop_push(&d, PLAN_GLOBAL_UPDATE, w->registry, w->source);
                }
                if (r < 0) goto fail;
        }
        if (!keep_unwanted) {
                for (size_t i = 0; i < cur->n; i++) {
                        const model_merged_entry *e = &cur->items[i];
                        if (!streq(e->policy, policy_key)) continue;
                        bool wanted = false;
                        for (size_t j = 0; j < n_want; j++)
                                wanted = wanted || streq(want[j].registry, e->registry);
                        if (wanted) continue;
                        if (model_secret_registry(current, e->registry)) {
                                r = gop_push(&d, PLAN_GLOBAL_REMOVE, e->registry, NULL);
                                if (r < 0) goto fail;
                        }
                        r = model_merged_set(&m, policy_key, e->registry, false);
                        if (r < 0) goto fail;
                }
        }
        const char *cur_text = kube_meta_annotation(&current->meta, NAMES_ANNOTATION_MERGED);
        if (!merged_equal_for(cur, &m, policy_key) || (current->merged_error && d.n_ops)) {
                r = model_merged_serialize(&m, &d.merged);
                if (r < 0) goto fail;
        } else if (cur_text && !(d.merged = strdup(cur_text))) {
                r = -ENOMEM;
                goto fail;
        }
        d.changed = d.n_ops > 0 || !streq_ptr(d.merged, cur_text);
        model_merged_done(&m);
        *ret = d;
        return 0;
fail:
        model_merged_done(&m);
        plan_global_desired_done(&d);
        return r;
}

/* ---- R3/R5: sources and copies ------------------------------------------------------ */

/* A service account of the home whose internal-registry-pull-secret-ref names secret, or NULL. */
static int secret_ref_holder(ctx *c, const char *secret, const model_sa **ret) {
        const model_sa **sas = NULL;
        size_t n = 0;
        *ret = NULL;
        int r = c->snap->ops->sa_list(c->snap->ud, c->home, &sas, &n);
        if (r < 0) return r;
        sort_by_name(sas, n);
        for (size_t i = 0; i < n && !*ret; i++)
                if (streq_ptr(model_sa_internal_registry_ref(sas[i]), secret)) *ret = sas[i];
        free(sas);
        return 0;
}

/*
 * A secret that belongs to a service account holds that account's API token
 * (OpenShift's <sa>-dockercfg-* secrets do): copying, merging or linking it
 * would hand the account's rights to whoever can read the copy or use the
 * other account. It is never a source, whatever the policy's home.
 */
static int judge_sa_owned(ctx *c, src_info *s, bool *ret) {
        const model_sa *holder = NULL;
        *ret = false;
        if (!s->src->sa_owned) {
                int r = secret_ref_holder(c, s->ps->name, &holder);
                if (r < 0) return r;
                if (!holder) return 0;
        }
        *ret = true;
        s->st = SRC_SA_OWNED;
        int r = strv_push(&c->refused, &c->n_refused, &c->cap_refused, s->ps->name);
        if (r < 0) return r;
        if (holder)
                return add_problem(c, c->home, s->ps->name, "ServiceAccountSecret",
                                   "secret %s/%s is the pull secret of service account %s: it "
                                   "is never copied, merged or linked by a policy",
                                   c->home, s->ps->name, holder->meta.name);
        return add_problem(c, c->home, s->ps->name, "ServiceAccountSecret",
                           "secret %s/%s belongs to a service account (it carries the "
                           "account's token): it is never copied, merged or linked by a policy",
                           c->home, s->ps->name);
}

static bool refused_source(const ctx *c, const char *name) {
        return strv_contains(c->refused, c->n_refused, name);
}

int judge_sources(ctx *c, src_info *srcs) {
        int r = 0;
        for (size_t i = 0; i < c->spec->n_pull_secrets && r >= 0; i++) {
                src_info *s = &srcs[i];
                bool owned = false;
                s->ps = &c->spec->pull_secrets[i];
                s->src = c->snap->ops->secret_get(c->snap->ud, c->home, s->ps->name);
                if (!s->src) {
                        s->st = SRC_MISSING;
                        r = add_problem(c, c->home, s->ps->name, "SecretNotFound",
                                        "secret %s/%s not found", c->home, s->ps->name);
                } else if ((r = judge_sa_owned(c, s, &owned)) < 0 || owned) {
                        continue;
                } else if (!s->src->full || s->src->validity == MODEL_SECRET_UNKNOWN) {
                        s->st = SRC_UNKNOWN;
                        r = add_problem(c, c->home, s->ps->name, "Waiting",
                                        "secret %s/%s has not been read yet", c->home, s->ps->name);
                } else if (s->src->validity != MODEL_SECRET_VALID) {
                        s->st = SRC_INVALID;
                        r = add_problem(c, c->home, s->ps->name, "InvalidSecret",
                                        "secret %s/%s cannot be used as a pull secret: %s", c->home,
                                        s->ps->name,
                                        model_secret_validity_to_string(s->src->validity));
                } else {
                        s->st = SRC_OK;
                }
        }
        return r;
}

/* usable[i * n_ps + j]: secret j can be linked in subject namespace i. */
int plan_copies(ctx *c, const src_info *srcs, bool *usable) {
        size_t n_ps = c->spec->n_pull_secrets;
        for (size_t i = 0; i < c->n_subjects; i++) {
                const char *ns = c->subjects[i];
                bool home = streq(ns, c->home);
                for (size_t j = 0; j < n_ps; j++) {
                        const src_info *s = &srcs[j];
                        if (home) {
                                usable[i * n_ps + j] = s->st == SRC_OK;
                                continue;
                        }
                        if (!c->dist_allowed || s->st != SRC_OK) continue;
                        const model_secret *cur =
                            c->snap->ops->secret_get(c->snap->ud, ns, s->ps->name);
                        int r = 0;
                        if (!cur) {
                                plan_write *w =
                                    add_write(c, PLAN_COPY_CREATE, ns, s->ps->name, NULL, NULL);
                                if (!w || !(w->copy.source_namespace = strdup(c->home)) ||
                                    !(w->copy.source_name = strdup(s->ps->name)) ||
                                    !(w->copy.policy_name = strdup(c->label)))
                                        return -ENOMEM;
                        } else if (!names_marked_by_home(&cur->meta, c->home)) {
                                r = add_problem(c, ns, s->ps->name, "Conflict",
                                                "secret %s/%s exists and was not made by the "
                                                "controller; it is not overwritten",
                                                ns, s->ps->name);
                                if (r < 0) return r;
                                continue;
                        } else if (cur->full && (cur->content_hash != s->src->content_hash ||
                                                 !streq_ptr(cur->type, s->src->type))) {
                                /* a rotated source (R5); a copy of another policy of the home
                                 * keeps its label */
                                const char *owner =
                                    kube_kvs_get(&cur->meta.labels, NAMES_LABEL_POLICY);
                                plan_write *w = add_write(c, PLAN_COPY_UPDATE, ns, s->ps->name,
                                                          cur->meta.resource_version, NULL);
                                if (!w || !(w->copy.source_namespace = strdup(c->home)) ||
                                    !(w->copy.source_name = strdup(s->ps->name)) ||
                                    !(w->copy.policy_name = strdup(owner ? owner : c->label)))
                                        return -ENOMEM;
                        }
                        usable[i * n_ps + j] = true;
                }
        }
        return 0;
}

/* Another live policy of the home that distributes secret to ns, to hand a copy to. */
static int copy_taker(ctx *c, const char *ns, const char *secret, const model_policy **ret) {
        *ret = NULL;
        if (!c->snap->ops->policy_list) return 0;
        const model_policy **pols = NULL;
        size_t n = 0;
        int r = c->snap->ops->policy_list(c->snap->ud, c->home, &pols, &n);
        if (r < 0) return r;
        sort_by_name(pols, n);
        for (size_t i = 0; i < n && !*ret && r >= 0; i++) {
                const model_policy *q = pols[i];
                if (q == c->p || streq(q->meta.name, c->pname) || !q->spec || q->meta.deleting)
                        continue;
                bool names_it = false;
                for (size_t j = 0; j < q->spec->n_pull_secrets; j++)
                        names_it = names_it || streq(q->spec->pull_secrets[j].name, secret);
                if (!names_it) continue;
                char **subj = NULL;
                size_t ns_n = 0, cap = 0;
                r = subject_namespaces(q->spec, c->home, c->snap, &subj, &ns_n, &cap);
                if (r >= 0 && strv_contains(subj, ns_n, ns)) *ret = q;
                strv_free(subj, ns_n);
        }
        free(pols);
        return r;
}

/* Copies of this policy that are no longer wanted: deleted, or handed over. */
int plan_copy_deletes(ctx *c, bool deleting) {
        const model_secret **marked = NULL;
        size_t n = 0;
        int r = c->snap->ops->secret_list_marked(c->snap->ud, c->mkey, &marked, &n);
        if (r < 0) return r;
        sort_by_name(marked, n);
        const char *gns = c->set->global_pull_secret_namespace
                              ? c->set->global_pull_secret_namespace
                              : DEFAULT_GLOBAL_NS;
        const char *gname =
            c->set->global_pull_secret_name ? c->set->global_pull_secret_name : DEFAULT_GLOBAL_NAME;
        for (size_t i = 0; i < n && r >= 0; i++) {
                const model_secret *s = marked[i];
                const char *ns = s->meta.namespace;
                /* never a source, never the global pull secret, whatever their labels say */
                if (!ns || streq(ns, c->home) || (streq(ns, gns) && streq(s->meta.name, gname)))
                        continue;
                if (!deleting) {
                        /* nothing is written (R5); but a service account's secret
                         * spread before goes whatever the list says now */
                        if (!c->dist_allowed && !refused_source(c, s->meta.name)) continue;
                        bool wanted = false;
                        for (size_t j = 0; j < c->spec->n_pull_secrets && !wanted; j++)
                                wanted = streq(c->spec->pull_secrets[j].name, s->meta.name);
                        if (wanted && !refused_source(c, s->meta.name) &&
                            strv_contains(c->subjects, c->n_subjects, ns))
                                continue;
                }
                const model_policy *q = NULL;
                /* a copy of a service account's secret is nobody's to take over */
                if (!refused_source(c, s->meta.name)) r = copy_taker(c, ns, s->meta.name, &q);
                if (r < 0) break;
                plan_write *w;
                char qlabel[NAMES_LABEL_VALUE_MAX + 1];
                if (q) names_policy_label(q->meta.name, qlabel);
                if (q) {
                        w = add_write(c, PLAN_COPY_UPDATE, ns, s->meta.name,
                                      s->meta.resource_version, NULL);
                        if (!w || !(w->copy.source_namespace = strdup(c->home)) ||
                            !(w->copy.source_name = strdup(s->meta.name)) ||
                            !(w->copy.policy_name = strdup(qlabel)))
                                r = -ENOMEM;
                } else {
                        w = add_write(c, PLAN_COPY_DELETE, ns, s->meta.name,
                                      s->meta.resource_version, s->meta.uid);
                        if (!w) r = -ENOMEM;
                }
        }
        free(marked);
        return r;
}

/* ---- R6: the global pull secret ---------------------------------------------------- */

int plan_global(ctx *c, const src_info *srcs, bool deleting) {
        const char *gns = c->set->global_pull_secret_namespace
                              ? c->set->global_pull_secret_namespace
                              : DEFAULT_GLOBAL_NS;
        const char *gname =
            c->set->global_pull_secret_name ? c->set->global_pull_secret_name : DEFAULT_GLOBAL_NAME;
        const model_secret *g = c->snap->ops->secret_get(c->snap->ud, gns, gname);
        bool merge = !deleting && c->spec && c->spec->merge;
        int r = 0;
        if (merge && !c->dist_allowed) {
                return add_problem(c, c->home, c->pname, "DistributionNotAllowed",
                                   "namespace %s is not on the controller's distribution list: "
                                   "the global pull secret is not changed",
                                   c->home);
        }
        if (!g) {
                if (!merge) return 0;
                return add_problem(c, gns, gname, "SecretNotFound",
                                   "the global pull secret %s/%s was not found", gns, gname);
        }
        if (!merge) {
                /* nothing to add: only entries of ours need work */
                bool ours = false;
                for (size_t i = 0; !g->merged_error && i < g->merged.n && !ours; i++)
                        ours = streq(g->merged.items[i].policy, c->key);
                if (!ours) return 0;
        }
        if (!g->full || g->validity == MODEL_SECRET_UNKNOWN) {
                /* entries of ours are there and only the full secret can remove them:
                 * a deleting policy keeps its finalizer until it is read (R7) */
                if (deleting) c->undo_pending = true;
                return add_problem(c, gns, gname, "Waiting",
                                   "the global pull secret %s/%s has not been read yet", gns,
                                   gname);
        }
        if (g->validity != MODEL_SECRET_VALID ||
            !streq_ptr(g->type, MODEL_SECRET_TYPE_DOCKERCONFIGJSON)) {
                return add_problem(c, gns, gname, "InvalidSecret",
                                   "the global pull secret %s/%s cannot be edited: %s", gns, gname,
                                   g->validity == MODEL_SECRET_VALID
                                       ? "its type is not kubernetes.io/dockerconfigjson"
                                       : model_secret_validity_to_string(g->validity));
        }
        plan_global_want *want = NULL;
        size_t n_want = 0, cap = 0;
        bool keep_unwanted = false;
        if (merge) {
                for (size_t i = 0; i < c->spec->n_pull_secrets && r >= 0; i++) {
                        const src_info *s = &srcs[i];
                        if (s->st == SRC_SA_OWNED) continue; /* its entries go, if any */
                        if (s->st != SRC_OK) {
                                keep_unwanted = true;
                                continue;
                        }
                        for (size_t j = 0; j < s->src->n_registries; j++) {
                                if (GROW(want, cap, n_want + 1) < 0) {
                                        r = -ENOMEM;
                                        break;
                                }
                                plan_global_want *w = &want[n_want];
                                w->registry = strdup(s->src->registries[j].host);
                                w->source = strdup(s->ps->name);
                                w->hash = s->src->registries[j].hash;
                                n_want++;
                                if (!w->registry || !w->source) {
                                        r = -ENOMEM;
                                        break;
                                }
                        }
                }
        }
        plan_global_desired d = {0};
        if (r >= 0) r = plan_global_edit(g, c->key, want, n_want, keep_unwanted, &d);
        for (size_t i = 0; r >= 0 && i < d.n_conflicts; i++)
                r = add_problem(c, gns, gname, "Conflict",
                                "registry %s is already in the global pull secret %s/%s and was "
                                "not added by this policy",
                                d.conflicts[i], gns, gname);
        if (r >= 0 && d.changed) {
                plan_write *w =
                    add_write(c, PLAN_GLOBAL_EDIT, gns, gname, g->meta.resource_version, NULL);
                if (!w || !(w->global.source_namespace = strdup(c->home))) {
                        r = -ENOMEM;
                } else {
                        w->global.want = TAKE_PTR(want);
                        w->global.n_want = n_want;
                        n_want = 0;
                        w->global.keep_unwanted = keep_unwanted;
                        w->global.desired = d;
                        d = (plan_global_desired){0};
                }
        }
        plan_global_desired_done(&d);
        for (size_t i = 0; i < n_want; i++) {
                free(want[i].registry);
                free(want[i].source);
        }
        free(want);
        return r;
}
