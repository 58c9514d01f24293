/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal to the planner (plan.c, plan_distribute.c and plan_sa.c), not an API: the
 * planning context of one policy, the verdicts on its sources, and the helpers
 * the files share. plan.c plans subjects, RoleBindings and the status;
 * plan_distribute.c judges the sources and plans the copies (R5) and the global
 * pull secret (R6); plan_sa.c edits service accounts (R3, R4, R7, R9).
 */
#ifndef PP_CONTROLLER_PLAN_INTERNAL_H
#define PP_CONTROLLER_PLAN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "names.h"
#include "plan.h"
#include "util/macro.h"

#define DEFAULT_GLOBAL_NS   "openshift-config"
#define DEFAULT_GLOBAL_NAME "pull-secret"

typedef struct ctx {
        const model_policy *p;
        const policy_spec *spec;
        const plan_snapshot *snap;
        const plan_settings *set;
        const char *home, *pname;
        char *key;                             /* "home/name" */
        char *mkey;                            /* names_marked_key(): what R8 labels say */
        char label[NAMES_LABEL_VALUE_MAX + 1]; /* the pullpolicy.io/policy label value */
        plan *out;
        size_t cap_writes, cap_events;
        model_problem *probs; /* all problems, before sorting and the cap */
        size_t n_probs, cap_probs;
        bool dist_allowed;
        char **subjects; /* subject namespaces, sorted */
        size_t n_subjects, cap_subjects;
        int n_rb, linked, waiting;
        char **waiting_names; /* "ns/sa" of the first waiting service accounts, in order */
        size_t n_waiting_names, cap_waiting_names;
        char **refused; /* pull secrets of the spec that belong to a service account */
        size_t n_refused, cap_refused;
        bool undo_pending; /* something of ours is left that no write of this plan undoes */
        bool orphan;       /* the policy no longer exists: plan_orphan() */
        int stale_pods;    /* R13: stale pods of the subjects (plan_stalepods.c) */
        const char *scope; /* plan_policy_namespaces(): the namespace being planned */
        long long requeue;
} ctx;

typedef enum src_state {
        SRC_OK,
        SRC_MISSING,
        SRC_INVALID,
        SRC_UNKNOWN,  /* only metadata known so far */
        SRC_SA_OWNED, /* a service account's own secret: never a source */
} src_state;

typedef struct src_info {
        const policy_pull_secret *ps;
        const model_secret *src;
        src_state st;
} src_info;

/* plan.c */
void sort_by_name(void *arr, size_t n);
void ctx_done(ctx *c);
/* The end of a planning function: on success (r >= 0) the plan goes to *ret with the
 * requeue the rules asked for, else it is freed; the context is freed either way. */
int ctx_finish(ctx *c, int r, plan **ret);
/* A context for planning policy p; ctx_open() completes it. */
ctx ctx_for(const model_policy *p, const plan_snapshot *snap, const plan_settings *settings);
/* Fills in what c's home, pname and set determine (keys, label, R5's permission) and gives
 * it an empty plan: 0 or a negative errno (then ctx_finish() still frees what was made). */
int ctx_open(ctx *c);
bool snapshot_ok(const plan_snapshot *s);
bool distribution_allowed(const plan_settings *set, const char *home);
/* R2: the bindings of c->subjects; with c->scope, no delete but of that namespace's. */
int plan_role_bindings(ctx *c);
_printf_(4, 5) int add_event(ctx *c, bool warning, const char *reason, const char *fmt, ...);
/* The subject service accounts of ns (existing ones), sorted by name. */
int subject_sas(ctx *c, const char *ns, const model_sa ***ret, size_t *ret_n);
_printf_(5, 6) int add_problem(ctx *c, const char *ns, const char *name, const char *reason,
                               const char *fmt, ...);
/* A new write with namespace, name, precondition and the policy's identity filled in. */
plan_write *add_write(ctx *c, plan_write_kind kind, const char *ns, const char *name,
                      const char *rv, const char *uid);
/* The subject namespaces of spec (home as given), sorted, into *ret. */
int subject_namespaces(const policy_spec *spec, const char *home, const plan_snapshot *snap,
                       char ***ret, size_t *ret_n, size_t *ret_cap);

/* plan_stalepods.c (R13) */
int plan_stale_pods(ctx *c);
void plan_stale_pods_free(plan_stale_pod *v, size_t n);
/* plan.c, for plan_stalepods.c: the subject service accounts of ns, sorted (free the array) */
int subject_sas(ctx *c, const char *ns, const model_sa ***ret, size_t *ret_n);

/* plan_distribute.c */
int judge_sources(ctx *c, src_info *srcs);
/* usable[i * n_ps + j]: secret j can be linked in subject namespace i. */
int plan_copies(ctx *c, const src_info *srcs, bool *usable);
/* Copies of this policy that are no longer wanted: deleted, or handed over. */
int plan_copy_deletes(ctx *c, bool deleting);
int plan_global(ctx *c, const src_info *srcs, bool deleting);

/* plan_sa.c */
/* Links of the subject accounts (R3/R4); done: "ns/name" of each account planned. */
int plan_service_accounts(ctx *c, const src_info *srcs, const bool *usable, char ***done,
                          size_t *n_done, size_t *cap_done);
/* Accounts that still carry this policy's claims but are not in done. */
int plan_stale_links(ctx *c, char *const *done, size_t n_done, bool deleting);

#endif
