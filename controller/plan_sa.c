/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Service accounts: the edit of one account for one policy (R3, R7, R9) and the
 * planning of every subject account's links (R3/R4) and of stale claims. Moved out
 * of plan.c as they were; see plan.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/labels.h"
#include "names.h"
#include "plan.h"
#include "plan_internal.h"
#include "util/jsonutil.h"
#include "util/macro.h"
#include "util/strv.h"

static bool strv_equal(char *const *a, size_t na, char *const *b, size_t nb) {
        if (na != nb) return false;
        for (size_t i = 0; i < na; i++)
                if (!streq(a[i], b[i])) return false;
        return true;
}

static const char *list_name(unsigned list) {
        return list == POLICY_FOR_PULL ? "imagePullSecrets" : "secrets";
}

/* ---- service account edits ------------------------------------------------------- */

void plan_sa_desired_done(plan_sa_desired *d) {
        if (!d) return;
        strv_free(d->secrets, d->n_secrets);
        strv_free(d->pull_secrets, d->n_pull_secrets);
        free(d->links);
        for (size_t i = 0; i < d->n_added; i++) free(d->added[i].secret);
        free(d->added);
        for (size_t i = 0; i < d->n_removed; i++) free(d->removed[i].secret);
        free(d->removed);
        for (size_t i = 0; i < d->n_released; i++) free(d->released[i].secret);
        free(d->released);
        *d = (plan_sa_desired){0};
}

static int change_push(plan_sa_change **v, size_t *n, const char *secret, unsigned list) {
        size_t cap = *n;
        if (GROW(*v, cap, *n + 1) < 0) return -ENOMEM;
        plan_sa_change *c = &(*v)[*n];
        c->secret = strdup(secret);
        if (!c->secret) return -ENOMEM;
        c->list = list;
        (*n)++;
        return 0;
}

/* Removes the LAST occurrence of s: an earlier duplicate is someone else's. */
static void strv_remove_last(char **v, size_t *n, const char *s) {
        for (size_t i = *n; i > 0; i--)
                if (streq(v[i - 1], s)) {
                        free(v[i - 1]);
                        memmove(v + i - 1, v + i, (*n - i) * sizeof(char *));
                        (*n)--;
                        return;
                }
}

static const plan_sa_want *find_want(const plan_sa_want *want, size_t n, const char *secret) {
        for (size_t i = 0; i < n; i++)
                if (streq(want[i].secret, secret)) return &want[i];
        return NULL;
}

/* Applies the rules of plan_sa_edit() to one secret name in both lists. */
static int edit_one(plan_sa_desired *d, size_t *cap_sec, size_t *cap_pull, const model_links *cur,
                    model_links *links, const char *key, const char *secret,
                    const plan_sa_want *w) {
        unsigned claimed = model_links_get(cur, key, secret);
        unsigned others = model_links_get_others(cur, key, secret);
        unsigned claim = 0;
        static const unsigned lists[] = {POLICY_FOR_PULL, POLICY_FOR_MOUNT};
        for (size_t k = 0; k < ARRAY_SIZE(lists); k++) {
                unsigned L = lists[k];
                char ***v = L == POLICY_FOR_PULL ? &d->pull_secrets : &d->secrets;
                size_t *n = L == POLICY_FOR_PULL ? &d->n_pull_secrets : &d->n_secrets;
                size_t *cap = L == POLICY_FOR_PULL ? cap_pull : cap_sec;
                bool present = strv_contains(*v, *n, secret);
                if (w && !w->hold && (w->mask & L)) {
                        if (!present) {
                                if (strv_push(v, n, cap, secret) < 0) return -ENOMEM;
                                if (change_push(&d->added, &d->n_added, secret, L) < 0)
                                        return -ENOMEM;
                                claim |= L;
                        } else if ((claimed & L) || (others & L) || (w->adopt & L)) {
                                /* made by the controller (for us or another policy, or put
                                 * back by a stale writer after we removed it): share */
                                claim |= L;
                        }
                        /* else: someone else's link; it serves us, but is not ours */
                } else if (w && w->hold && (w->mask & L)) {
                        if ((claimed & L) && present) claim |= L;
                } else if (claimed & L) {
                        if (present && !(others & L)) {
                                strv_remove_last(*v, n, secret);
                                if (change_push(&d->removed, &d->n_removed, secret, L) < 0)
                                        return -ENOMEM;
                        } else if (!present && !(others & L) &&
                                   change_push(&d->released, &d->n_released, secret, L) < 0)
                                return -ENOMEM;
                }
        }
        return model_links_set(links, key, secret, claim);
}

static bool links_equal_for(const model_links *a, const model_links *b, const char *key) {
        size_t ia = 0, ib = 0;
        for (;;) {
                while (ia < a->n && !streq(a->items[ia].policy, key)) ia++;
                while (ib < b->n && !streq(b->items[ib].policy, key)) ib++;
                if (ia == a->n || ib == b->n) return ia == a->n && ib == b->n;
                if (!streq(a->items[ia].secret, b->items[ib].secret) ||
                    a->items[ia].for_mask != b->items[ib].for_mask)
                        return false;
                ia++, ib++;
        }
}

int plan_sa_edit(const model_sa *current, const char *policy_key, const plan_sa_want *want,
                 size_t n_want, plan_sa_desired *ret) {
        if (!current || !policy_key || !ret || (n_want && !want)) return -EINVAL;
        plan_sa_desired d = {0};
        model_links links = {0};
        /* a malformed record is trusted for nothing: start from an empty one */
        const model_links empty = {0};
        const model_links *cur = current->links_error ? &empty : &current->links;
        size_t cap_sec = current->n_secrets, cap_pull = current->n_pull_secrets;
        int r = strv_copy(current->secrets, current->n_secrets, &d.secrets);
        if (r < 0) goto fail;
        d.n_secrets = current->n_secrets;
        r = strv_copy(current->pull_secrets, current->n_pull_secrets, &d.pull_secrets);
        if (r < 0) goto fail;
        d.n_pull_secrets = current->n_pull_secrets;
        r = model_links_copy(cur, &links);
        if (r < 0) goto fail;

        for (size_t i = 0; i < n_want; i++) {
                if (find_want(want, i, want[i].secret)) continue; /* first one counts */
                r = edit_one(&d, &cap_sec, &cap_pull, cur, &links, policy_key, want[i].secret,
                             &want[i]);
                if (r < 0) goto fail;
        }
        for (size_t i = 0; i < cur->n; i++) {
                const model_link *l = &cur->items[i];
                if (!streq(l->policy, policy_key) || find_want(want, n_want, l->secret)) continue;
                r = edit_one(&d, &cap_sec, &cap_pull, cur, &links, policy_key, l->secret, NULL);
                if (r < 0) goto fail;
        }

        bool lists_changed =
            !strv_equal(d.secrets, d.n_secrets, current->secrets, current->n_secrets) ||
            !strv_equal(d.pull_secrets, d.n_pull_secrets, current->pull_secrets,
                        current->n_pull_secrets);
        bool record_changed = !links_equal_for(cur, &links, policy_key);
        const char *cur_text = kube_meta_annotation(&current->meta, NAMES_ANNOTATION_LINKS);
        if (record_changed || (current->links_error && lists_changed)) {
                r = model_links_serialize(&links, &d.links);
                if (r < 0) goto fail;
        } else if (cur_text) {
                /* unchanged: keep the text as it is, formatting included (R10) */
                d.links = strdup(cur_text);
                if (!d.links) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        d.changed = lists_changed || !streq_ptr(d.links, cur_text);
        model_links_done(&links);
        *ret = d;
        return 0;
fail:
        model_links_done(&links);
        plan_sa_desired_done(&d);
        return r;
}

/* Rebuilds sa[member] as names, reusing the original entries in their order of use. */
static int rebuild_refs(json_object *sa, const char *member, char *const *names, size_t n) {
        json_object *old = NULL;
        json_object_object_get_ex(sa, member, &old);
        size_t n_old =
            old && json_object_is_type(old, json_type_array) ? json_object_array_length(old) : 0;
        bool *used = n_old ? calloc(n_old, sizeof(bool)) : NULL;
        if (n_old && !used) return -ENOMEM;
        json_object *arr = json_object_new_array_ext(n ? (int)n : 1);
        if (!arr) {
                free(used);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                json_object *e = NULL;
                for (size_t j = 0; j < n_old && !e; j++) {
                        json_object *o = json_object_array_get_idx(old, j), *nm = NULL;
                        if (used[j] || !json_object_object_get_ex(o, "name", &nm) ||
                            !json_object_is_type(nm, json_type_string) ||
                            !streq(json_object_get_string(nm), names[i]))
                                continue;
                        used[j] = true;
                        e = json_object_get(o);
                }
                if (!e) {
                        e = json_object_new_object();
                        json_object *s = json_object_new_string(names[i]);
                        if (!e || !s || json_object_object_add(e, "name", s) < 0) {
                                json_object_put(s);
                                json_object_put(e);
                                e = NULL;
                        }
                }
                if (!e || json_object_array_add(arr, e) < 0) {
                        json_object_put(e);
                        json_object_put(arr);
                        free(used);
                        return -ENOMEM;
                }
        }
        /* Entries without a name are nobody's link and not in d's lists; R9 keeps them. */
        for (size_t j = 0; j < n_old; j++) {
                json_object *o = json_object_array_get_idx(old, j), *nm = NULL;
                if (used[j] || (json_object_object_get_ex(o, "name", &nm) &&
                                json_object_is_type(nm, json_type_string)))
                        continue;
                if (json_object_array_add(arr, json_object_get(o)) < 0) {
                        json_object_put(o);
                        json_object_put(arr);
                        free(used);
                        return -ENOMEM;
                }
        }
        free(used);
        if (json_object_array_length(arr) == 0) {
                json_object_put(arr);
                json_object_object_del(sa, member);
                return 0;
        }
        if (json_object_object_add(sa, member, arr) < 0) {
                json_object_put(arr);
                return -ENOMEM;
        }
        return 0;
}

static int set_annotation(json_object *obj, const char *key, const char *value) {
        json_object *meta = NULL, *ann = NULL;
        if (!json_object_object_get_ex(obj, "metadata", &meta) ||
            !json_object_is_type(meta, json_type_object))
                return -EINVAL;
        if (!json_object_object_get_ex(meta, "annotations", &ann) ||
            !json_object_is_type(ann, json_type_object)) {
                if (!value) return 0;
                ann = json_object_new_object();
                if (!ann || json_object_object_add(meta, "annotations", ann) < 0) {
                        json_object_put(ann);
                        return -ENOMEM;
                }
        }
        if (!value) {
                json_object_object_del(ann, key);
                return 0;
        }
        json_object *v = json_object_new_string(value);
        if (!v || json_object_object_add(ann, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

int plan_sa_desired_apply_json(json_object *sa, const plan_sa_desired *d) {
        if (!sa || !d || !json_object_is_type(sa, json_type_object)) return -EINVAL;
        int r = rebuild_refs(sa, "secrets", d->secrets, d->n_secrets);
        if (r < 0) return r;
        r = rebuild_refs(sa, "imagePullSecrets", d->pull_secrets, d->n_pull_secrets);
        if (r < 0) return r;
        return set_annotation(sa, NAMES_ANNOTATION_LINKS, d->links);
}

/* ---- R3/R4: service accounts ------------------------------------------------------ */

static void wants_free(plan_sa_want *w, size_t n) {
        for (size_t i = 0; i < n; i++) free(w[i].secret);
        free(w);
}

static int emit_sa_edit(ctx *c, const model_sa *sa, plan_sa_want *want, size_t n_want,
                        bool after_timeout, plan_sa_desired *ret_desired) {
        plan_sa_desired d = {0};
        int r = plan_sa_edit(sa, c->key, want, n_want, &d);
        if (r < 0) return r;
        const char *ns = sa->meta.namespace, *name = sa->meta.name;
        for (size_t i = 0; i < d.n_added && r >= 0; i++)
                r = add_event(c, false, "Linked", "linked secret %s to service account %s/%s (%s)",
                              d.added[i].secret, ns, name, list_name(d.added[i].list));
        for (size_t i = 0; i < d.n_removed && r >= 0; i++)
                r = add_event(c, false, "Unlinked",
                              "unlinked secret %s from service account %s/%s (%s)",
                              d.removed[i].secret, ns, name, list_name(d.removed[i].list));
        if (r >= 0 && after_timeout && d.n_added)
                r = add_event(c, true, "DockercfgTimeout",
                              "service account %s/%s has no dockercfg secret after %ds; "
                              "linked without waiting any longer",
                              ns, name, c->spec ? c->spec->timeout_seconds : 0);
        if (r >= 0 && sa->links_error)
                r = add_problem(c, ns, name, "MalformedLinkRecord",
                                "annotation %s of service account %s/%s is malformed; it is "
                                "ignored%s",
                                NAMES_ANNOTATION_LINKS, ns, name, d.changed ? " and replaced" : "");
        if (r < 0) {
                plan_sa_desired_done(&d);
                return r;
        }
        if (d.changed) {
                plan_write *w =
                    add_write(c, PLAN_SA_EDIT, ns, name, sa->meta.resource_version, NULL);
                if (!w) {
                        plan_sa_desired_done(&d);
                        return -ENOMEM;
                }
                w->sa.after_timeout = after_timeout;
                w->sa.patchable = sa->refs_plain && sa->meta.resource_version;
                if (n_want) {
                        w->sa.want = calloc(n_want, sizeof(plan_sa_want));
                        if (!w->sa.want) {
                                plan_sa_desired_done(&d);
                                return -ENOMEM;
                        }
                        for (size_t i = 0; i < n_want; i++) {
                                w->sa.want[i] = want[i];
                                w->sa.want[i].secret = strdup(want[i].secret);
                                w->sa.n_want++;
                                if (!w->sa.want[i].secret) {
                                        plan_sa_desired_done(&d);
                                        return -ENOMEM;
                                }
                        }
                }
                if (ret_desired) {
                        /* the caller looks at the result; the write keeps its own copy */
                        r = plan_sa_edit(sa, c->key, want, n_want, ret_desired);
                        if (r < 0) {
                                plan_sa_desired_done(&d);
                                return r;
                        }
                }
                w->sa.desired = d;
                return 0;
        }
        if (ret_desired)
                *ret_desired = d;
        else
                plan_sa_desired_done(&d);
        return 0;
}

/* Whether d lists every secret of the spec in the lists it is wanted in. */
static bool fully_linked(const policy_spec *spec, const plan_sa_desired *d) {
        if (spec->n_pull_secrets == 0) return false;
        for (size_t i = 0; i < spec->n_pull_secrets; i++) {
                const policy_pull_secret *ps = &spec->pull_secrets[i];
                if ((ps->for_mask & POLICY_FOR_PULL) &&
                    !strv_contains(d->pull_secrets, d->n_pull_secrets, ps->name))
                        return false;
                if ((ps->for_mask & POLICY_FOR_MOUNT) &&
                    !strv_contains(d->secrets, d->n_secrets, ps->name))
                        return false;
        }
        return true;
}

/* Whether sa, as it is, lists every secret of the spec in the lists it is wanted in. */
static bool sa_fully_linked(const policy_spec *spec, const model_sa *sa) {
        if (spec->n_pull_secrets == 0) return false;
        for (size_t i = 0; i < spec->n_pull_secrets; i++) {
                const policy_pull_secret *ps = &spec->pull_secrets[i];
                if ((ps->for_mask & POLICY_FOR_PULL) && !model_sa_has_pull_secret(sa, ps->name))
                        return false;
                if ((ps->for_mask & POLICY_FOR_MOUNT) && !model_sa_has_secret(sa, ps->name))
                        return false;
        }
        return true;
}

const char *plan_dockercfg_form(const plan_settings *settings) {
        if (!settings->image_api_served) return "NotOpenShift";
        return settings->registry_removed ? "RegistryRemoved" : "InternalRegistry";
}

static bool waits_for_dockercfg(ctx *c) {
        return c->spec->wait == POLICY_WAIT_ALWAYS ||
               (c->spec->wait == POLICY_WAIT_AUTO && c->set->image_api_served &&
                !c->set->registry_removed);
}

int plan_service_accounts(ctx *c, const src_info *srcs, const bool *usable, char ***done,
                          size_t *n_done, size_t *cap_done) {
        size_t n_ps = c->spec->n_pull_secrets;
        int r = 0;
        if (n_ps == 0) return 0;
        for (size_t i = 0; i < c->n_subjects && r >= 0; i++) {
                const char *ns = c->subjects[i];
                const model_sa **sas = NULL;
                size_t n = 0;
                r = subject_sas(c, ns, &sas, &n);
                if (r < 0) return r;
                for (size_t si = 0; si < n && r >= 0; si++) {
                        const model_sa *sa = sas[si];
                        plan_sa_want *want = calloc(n_ps, sizeof(plan_sa_want));
                        if (!want) {
                                r = -ENOMEM;
                                break;
                        }
                        size_t n_want = 0;
                        bool adds = false;
                        for (size_t j = 0; j < n_ps; j++) {
                                const src_info *s = &srcs[j];
                                /* not even held: links this policy made to it go (R7) */
                                if (s->st == SRC_SA_OWNED) continue;
                                plan_sa_want *w = &want[n_want];
                                w->secret = strdup(s->ps->name);
                                if (!w->secret) {
                                        r = -ENOMEM;
                                        break;
                                }
                                n_want++;
                                w->mask = s->ps->for_mask;
                                w->hold = !usable[i * n_ps + j];
                                if (c->set->recently_removed)
                                        w->adopt =
                                            c->set->recently_removed(c->set->recently_removed_ud,
                                                                     ns, sa->meta.name, w->secret);
                                if (!w->hold && (((w->mask & POLICY_FOR_PULL) &&
                                                  !model_sa_has_pull_secret(sa, w->secret)) ||
                                                 ((w->mask & POLICY_FOR_MOUNT) &&
                                                  !model_sa_has_secret(sa, w->secret))))
                                        adds = true;
                        }
                        bool after_timeout = false;
                        if (r >= 0 && adds && waits_for_dockercfg(c) && !model_sa_provisioned(sa)) {
                                long long deadline = sa->created + c->spec->timeout_seconds;
                                if (sa->created > 0 && c->set->now < deadline) {
                                        for (size_t j = 0; j < n_want; j++) want[j].hold = true;
                                        c->waiting++;
                                        if (c->n_waiting_names < 3) {
                                                char *k = NULL;
                                                r = names_policy_key(ns, sa->meta.name, &k);
                                                if (r >= 0) {
                                                        r = strv_push(&c->waiting_names,
                                                                      &c->n_waiting_names,
                                                                      &c->cap_waiting_names, k);
                                                        free(k);
                                                }
                                        }
                                        if (r < 0) break;
                                        long long in = deadline - c->set->now;
                                        if (c->requeue < 0 || in < c->requeue) c->requeue = in;
                                        r = add_problem(c, ns, sa->meta.name, "Waiting",
                                                        "service account %s/%s waits for its "
                                                        "dockercfg secret",
                                                        ns, sa->meta.name);
                                } else {
                                        after_timeout = true;
                                }
                        }
                        plan_sa_desired d = {0};
                        size_t n_writes = c->out->n_writes;
                        if (r >= 0) r = emit_sa_edit(c, sa, want, n_want, after_timeout, &d);
                        if (r >= 0 && fully_linked(c->spec, &d)) {
                                c->linked++;
                                /* linked only once its edit is done */
                                if (c->out->n_writes > n_writes && !sa_fully_linked(c->spec, sa))
                                        c->out->writes[c->out->n_writes - 1].counted = true;
                        }
                        bool timed_out = sa->created == 0 ||
                                         c->set->now >= sa->created + c->spec->timeout_seconds;
                        if (r >= 0 && waits_for_dockercfg(c) && !model_sa_provisioned(sa) &&
                            timed_out && fully_linked(c->spec, &d))
                                r = add_problem(c, ns, sa->meta.name, "DockercfgTimeout",
                                                "service account %s/%s was linked without its "
                                                "dockercfg secret after %ds",
                                                ns, sa->meta.name, c->spec->timeout_seconds);
                        plan_sa_desired_done(&d);
                        wants_free(want, n_want);
                        if (r >= 0) {
                                char *k = NULL;
                                r = names_policy_key(ns, sa->meta.name, &k);
                                if (r >= 0) {
                                        if (GROW(*done, *cap_done, *n_done + 1) < 0) {
                                                free(k);
                                                r = -ENOMEM;
                                        } else {
                                                (*done)[(*n_done)++] = k;
                                        }
                                }
                        }
                }
                free(sas);
        }
        return r;
}

/* Service accounts that still carry this policy's claims but are no subjects any more. */
/* The accounts of ns whose link record names this policy. */
static int sa_list_linked_in(ctx *c, const char *ns, const model_sa ***ret, size_t *ret_n) {
        const model_sa **all = NULL;
        size_t n = 0, got = 0;
        int r = c->snap->ops->sa_list(c->snap->ud, ns, &all, &n);
        if (r < 0) return r;
        for (size_t i = 0; i < n; i++)
                if (model_links_mentions(&all[i]->links, c->key)) all[got++] = all[i];
        *ret = all;
        *ret_n = got;
        return 0;
}

int plan_stale_links(ctx *c, char *const *done, size_t n_done, bool deleting) {
        const model_sa **sas = NULL;
        size_t n = 0;
        int r = c->scope ? sa_list_linked_in(c, c->scope, &sas, &n)
                         : c->snap->ops->sa_list_linked(c->snap->ud, c->key, &sas, &n);
        if (r < 0) return r;
        sort_by_name(sas, n);
        /* looked up once per linked account: sorted, not scanned (4,000 accounts made the
         * scans 8 million string comparisons, most of a whole plan's time) */
        char **sorted = n_done ? malloc(n_done * sizeof(char *)) : NULL;
        if (n_done && !sorted) {
                free(sas);
                return -ENOMEM;
        }
        if (n_done) memcpy(sorted, done, n_done * sizeof(char *));
        if (n_done > 1) qsort(sorted, n_done, sizeof(char *), strv_qsort_cmp);
        for (size_t i = 0; i < n && r >= 0; i++) {
                const model_sa *sa = sas[i];
                char *k = NULL;
                r = names_policy_key(sa->meta.namespace ? sa->meta.namespace : "-", sa->meta.name,
                                     &k);
                if (r < 0) break;
                bool seen = n_done && bsearch(&k, sorted, n_done, sizeof(char *), strv_qsort_cmp);
                free(k);
                if (seen) continue;
                /* R5: without distribution nothing is written outside the home */
                if (!deleting && c->spec && c->spec->n_pull_secrets && !c->dist_allowed &&
                    !streq_ptr(sa->meta.namespace, c->home) &&
                    strv_contains(c->subjects, c->n_subjects, sa->meta.namespace))
                        continue;
                r = emit_sa_edit(c, sa, NULL, 0, false, NULL);
        }
        free(sorted);
        free(sas);
        return r;
}

/* ---- one namespace's accounts -------------------------------------------------------- */

/* Whether ns is one of the subject namespaces of c's policy (R1), without listing them all. */
static bool is_subject_namespace(ctx *c, const char *ns) {
        if (!policy_spec_has_namespace_subjects(c->spec)) return streq(ns, c->home);
        const model_namespace *n = c->snap->ops->namespace_get(c->snap->ud, ns);
        if (!n || n->terminating) return false;
        return strv_contains(c->spec->namespaces, c->spec->n_namespaces, ns) ||
               (c->spec->namespace_selector &&
                kube_selector_matches(c->spec->namespace_selector, &n->meta.labels));
}

int plan_policy_namespaces(const model_policy *p, char *const *nss, size_t n_nss,
                           const plan_snapshot *snap, const plan_settings *settings, plan **ret) {
        if (!p || !p->meta.name || !p->meta.namespace || (n_nss && !nss) || !snapshot_ok(snap) ||
            !settings || !ret)
                return -EINVAL;
        /* The whole plan is needed: deleting, no finalizer yet, an invalid spec, or the
         * home, whose accounts decide what a source is (R5 ServiceAccountSecret). */
        if (p->meta.deleting || !kube_meta_has_finalizer(&p->meta, NAMES_FINALIZER) || !p->spec ||
            strv_contains(nss, n_nss, p->meta.namespace))
                return -ENOTSUP;
        ctx c = ctx_for(p, snap, settings);
        size_t n_ps = p->spec->n_pull_secrets;
        src_info *srcs = NULL;
        bool *usable = NULL;
        char **done = NULL;
        size_t n_done = 0, cap_done = 0;
        int r = ctx_open(&c);
        if (r >= 0 && n_ps) {
                srcs = calloc(n_ps, sizeof(src_info));
                usable = calloc(n_ps, sizeof(bool));
                if (!srcs || !usable) r = -ENOMEM;
        }
        if (r < 0) goto finish;
        if (n_ps) r = judge_sources(&c, srcs);
        for (size_t i = 0; i < n_nss && r >= 0; i++) {
                const char *ns = nss[i];
                if (strv_contains(nss, i, ns)) continue;
                c.scope = ns;
                strv_free(c.subjects, c.n_subjects);
                c.subjects = NULL;
                c.n_subjects = c.cap_subjects = 0;
                strv_free(done, n_done);
                done = NULL;
                n_done = cap_done = 0;
                bool subject = is_subject_namespace(&c, ns);
                if (subject) r = strv_push(&c.subjects, &c.n_subjects, &c.cap_subjects, ns);
                /* a namespace that is no subject: its binding goes */
                if (r >= 0) r = plan_role_bindings(&c);
                if (subject && r >= 0 && n_ps) {
                        memset(usable, 0, n_ps * sizeof(bool));
                        r = plan_copies(&c, srcs, usable);
                        if (r >= 0)
                                r = plan_service_accounts(&c, srcs, usable, &done, &n_done,
                                                          &cap_done);
                }
                if (r >= 0) r = plan_stale_links(&c, done, n_done, false);
        }
finish:
        free(srcs);
        free(usable);
        strv_free(done, n_done);
        return ctx_finish(&c, r, ret);
}
