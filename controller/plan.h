/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The planner: what one PullPolicy needs, computed from a read-only snapshot of
 * the caches, without any I/O (ARCHITECTURE.md: "Planning is pure"). The
 * output is a list of writes, the status to report, events and a requeue
 * time. Applying the writes is someone else's job (the apply step); it runs
 * them IN ORDER, and a failed write holds back only the later writes that
 * depend on it (apply.h), so the order of the writes here is what makes a
 * dependency: a copy before the links to it, a new RoleBinding before the
 * delete of the one it replaces, unlinks before the delete of a copy.
 *
 * Rules (docs/API.md):
 *  R1  subject namespaces: spec names ∪ selector matches, minus terminating ones,
 *      else the home; subject service accounts: names ∪ selector matches, else all.
 *  R2  one RoleBinding per subject namespace in the home (names.h), a Group subject
 *      system:serviceaccounts:N when all SAs are subjects, else ServiceAccount
 *      subjects (the listed names, existing or not, and the selected existing SAs);
 *      roleRef is immutable, so a changed role is a delete then a create.
 *      A ClusterRole off the allowed list → RoleNotAllowed and no bindings.
 *  R3  links, recorded in pullpolicy.io/links (model.h) and only through plan_sa_edit().
 *  R4  with wait Always (or Auto when image.openshift.io is served) an SA that is not
 *      provisioned (model_sa_provisioned()) gets no NEW link until timeoutSeconds
 *      after its creation; then it is linked anyway, with a DockercfgTimeout warning
 *      and a problem entry (Ready is not lowered by it). Links it already has stay.
 *  R5  copies of the pull secrets into non-home subject namespaces (same name, type,
 *      data; R8 labels); re-copied when the data differs (keyed content hashes,
 *      model.h); a same-named secret without the marks of the home is a Conflict.
 *      A home not on the distribution list: DistributionNotAllowed, and nothing is
 *      written for the non-home namespaces (no copy, no link, no removal) nor merged
 *      (R6); RoleBindings (all in the home) and links in the home itself still apply.
 *      A source that belongs to a service account (model_secret.sa_owned, or named by
 *      a home SA's internal-registry-pull-secret-ref) is never a source for R3, R5 or
 *      R6: ServiceAccountSecret, and what the policy made of it is undone.
 *  R6  merge the registries of the pull secrets into the global pull secret, recorded
 *      in pullpolicy.io/merged (model.h); a present key not recorded for this policy is
 *      a Conflict. While a source secret is missing or invalid, nothing is removed.
 *      A deleting policy whose entries are in the global pull secret keeps its
 *      finalizer while only its metadata is known (the full secret not read yet).
 *  R7  entries of this policy's records that are no longer wanted are undone, and only
 *      those; a link is removed when its last claim goes. Deletion: the finalizer is
 *      added before anything else; a deleting policy gets a plan that undoes
 *      everything, and the finalizer is removed by the plan after that, once nothing
 *      is left to undo.
 *  R10 a converged snapshot yields zero writes and an unchanged status.
 *
 * Secrets that are missing, invalid or not read yet are reported (SecretNotFound,
 * InvalidSecret, Waiting) and no new link to them is made; existing links and
 * copies are kept while they are (a deleted and re-created secret causes no churn).
 *
 * Status and events. The status is that of the cluster AFTER the plan's writes;
 * status_changed says whether it differs from the stored one (ignoring
 * lastTransitionTime, which is kept unless Ready's status flips). Ready reasons,
 * by precedence: InvalidSpec, RoleNotAllowed, ServiceAccountSecret,
 * DistributionNotAllowed, Conflict, InvalidSecret, SecretNotFound, Waiting, else
 * Applied. Problems: at most
 * MODEL_PROBLEMS_MAX, sorted by (namespace, name, reason). Warning events for
 * problems are emitted only for problems the stored status did not list yet, so
 * a steady state does not repeat them. Nothing here ever carries secret data.
 *
 * Ownership: a plan owns everything in it; plan_free(). The snapshot's objects
 * are borrowed for the duration of plan_policy() only.
 */
#ifndef PP_CONTROLLER_PLAN_H
#define PP_CONTROLLER_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "model.h"
#include "policy_spec.h"

struct stale_pod;

/* ---- snapshot ------------------------------------------------------------- */

/*
 * Read-only views of the caches. Lists return a malloc()ed array of borrowed
 * pointers that the planner free()s (the array only; order does not matter, the
 * planner sorts), or *ret = NULL, *n = 0; they return 0 or a negative errno,
 * which aborts planning. Getters return NULL when absent.
 */
typedef struct plan_snapshot_ops {
        const model_namespace *(*namespace_get)(void *ud, const char *name);
        int (*namespace_list)(void *ud, const model_namespace ***ret, size_t *n);
        /* Service accounts of one namespace. */
        int (*sa_list)(void *ud, const char *ns, const model_sa ***ret, size_t *n);
        /* Service accounts (any namespace) whose link record mentions policy_key. */
        int (*sa_list_linked)(void *ud, const char *policy_key, const model_sa ***ret, size_t *n);
        /*
         * A secret: decoded in full if the caches hold it so (policy-named sources,
         * copies the controller made, the global pull secret), else its metadata.
         */
        const model_secret *(*secret_get)(void *ud, const char *ns, const char *name);
        /*
         * Secrets (copies) carrying the R8 marks given by marked_key, which is
         * names_marked_key() of the policy ("home/<label value>"; the same as the policy
         * key unless the name is over 63 characters) and what model_index_marked_policy()
         * indexes.
         */
        int (*secret_list_marked)(void *ud, const char *marked_key, const model_secret ***ret,
                                  size_t *n);
        const model_role_binding *(*role_binding_get)(void *ud, const char *ns, const char *name);
        /* RoleBindings carrying the R8 marks given by marked_key (as above). */
        int (*role_binding_list_marked)(void *ud, const char *marked_key,
                                        const model_role_binding ***ret, size_t *n);
        /* Policies of one namespace (to hand a shared copy over instead of deleting it).
         * May be NULL: copies are then deleted with the policy that made them. */
        int (*policy_list)(void *ud, const char *ns, const model_policy ***ret, size_t *n);
        /* Pending pods (stale_pod, stalepods.h) of service account sa in ns (R13). May be
         * NULL: no pods are known, none is reported. */
        int (*pod_list)(void *ud, const char *ns, const char *sa, const struct stale_pod ***ret,
                        size_t *n);
} plan_snapshot_ops;

typedef struct plan_snapshot {
        const plan_snapshot_ops *ops;
        void *ud;
} plan_snapshot;

/*
 * An in-memory snapshot over borrowed objects, by linear scans: for tests and
 * small caches. Objects must outlive the memsnap and any plan_policy() on it.
 */
typedef struct plan_memsnap plan_memsnap;
int plan_memsnap_new(plan_memsnap **ret);
plan_memsnap *plan_memsnap_free(plan_memsnap *m); /* frees the arrays, not the objects */
int plan_memsnap_add_namespace(plan_memsnap *m, const model_namespace *ns);
int plan_memsnap_add_sa(plan_memsnap *m, const model_sa *sa);
int plan_memsnap_add_secret(plan_memsnap *m, const model_secret *s);
int plan_memsnap_add_role_binding(plan_memsnap *m, const model_role_binding *rb);
int plan_memsnap_add_policy(plan_memsnap *m, const model_policy *p);
int plan_memsnap_add_pod(plan_memsnap *m, const struct stale_pod *pod);
/* Removes an object added before (by pointer); 0 or -ENOENT. */
int plan_memsnap_remove(plan_memsnap *m, const void *obj);
plan_snapshot plan_memsnap_snapshot(plan_memsnap *m);

/* ---- settings --------------------------------------------------------------- */

typedef struct plan_settings {
        const char *const *allowed_cluster_roles; /* NULL: {"system:image-puller"} */
        size_t n_allowed_cluster_roles;
        const char *const *distribution_namespaces; /* homes allowed to copy/merge */
        size_t n_distribution_namespaces;
        const char *global_pull_secret_namespace; /* NULL: "openshift-config" */
        const char *global_pull_secret_name;      /* NULL: "pull-secret" */
        bool image_api_served;                    /* image.openshift.io is served (R4 Auto) */
        /* R4 Auto: OpenShift provisions no dockercfg secrets (the ImageRegistry capability is
         * disabled or the image-registry ClusterOperator says Removed): Auto does not wait */
        bool registry_removed;
        /* NULL: none. The lists (POLICY_FOR_*) of ns/sa from which the controller removed
         * secret recently (removals.h): such a link, if present and unclaimed, is adopted */
        unsigned (*recently_removed)(void *ud, const char *ns, const char *sa, const char *secret);
        void *recently_removed_ud;
        long long now; /* wall clock, Unix seconds */
        /* --verify-credentials: CredentialsVerified belongs to the verifier (R12); the status
         * a plan writes keeps it for policies that ask, and drops it for the others */
        bool verify_credentials;
} plan_settings;

/* ---- service account edits (R3, R7, R9) ----------------------------------------- */

typedef struct plan_sa_want {
        char *secret;
        unsigned mask; /* POLICY_FOR_* */
        /* true: keep this policy's existing claims on it but add nothing (waiting,
         * secret missing or invalid, distribution not allowed) */
        bool hold;
        /* lists in which a present, unclaimed link is the controller's all the same: it
         * removed it there a moment ago and another writer put it back (removals.h) */
        unsigned adopt;
} plan_sa_want;

typedef struct plan_sa_change {
        char *secret;
        unsigned list; /* POLICY_FOR_PULL or POLICY_FOR_MOUNT */
} plan_sa_change;

typedef struct plan_sa_desired {
        char **secrets; /* the SA's desired .secrets names, in order */
        size_t n_secrets;
        char **pull_secrets; /* the SA's desired .imagePullSecrets names, in order */
        size_t n_pull_secrets;
        char *links;  /* desired pullpolicy.io/links value; NULL: no annotation */
        bool changed; /* lists or the record differ from the current SA */
        plan_sa_change *added, *removed; /* for events */
        size_t n_added, n_removed;
        /* this policy's claims dropped on links already gone from their list (another
         * writer took them out first): the controller remembers them as removals too,
         * since that writer may put them back (removals.h) */
        plan_sa_change *released;
        size_t n_released;
} plan_sa_desired;

/*
 * The edit of one service account for one policy, derived from the CURRENT SA
 * by adding and removing only this policy's entries: wanted links absent from a
 * list are appended (and claimed); a present link is claimed only if another
 * policy's claim shows the controller made it; claims no longer wanted are
 * dropped and their link removed when no other claim remains. Everything else
 * (order, others' entries, duplicates) stays as it is. The apply step re-runs
 * this on a freshly read SA after a 409. want may be NULL when n_want is 0
 * (remove all of this policy's links). 0, -EINVAL, -E2BIG or -ENOMEM.
 */
int plan_sa_edit(const model_sa *current, const char *policy_key, const plan_sa_want *want,
                 size_t n_want, plan_sa_desired *ret);
void plan_sa_desired_done(plan_sa_desired *d);

/*
 * Applies d to a ServiceAccount JSON document (as read from the server) in place:
 * rebuilds .secrets and .imagePullSecrets in d's order, reusing the original entries
 * (so fields other than name survive), and sets or removes the links annotation.
 * 0, -EINVAL or -ENOMEM (then the document may be partly changed: discard it).
 */
int plan_sa_desired_apply_json(json_object *sa, const plan_sa_desired *d);

/* ---- global pull secret edits (R6) ------------------------------------------------ */

typedef struct plan_global_want {
        char *registry;
        char *source;  /* name of the pull secret in the home that holds it */
        uint64_t hash; /* model_registry.hash of that entry in the source */
} plan_global_want;

typedef enum plan_global_op_kind {
        PLAN_GLOBAL_ADD,    /* copy the entry from source */
        PLAN_GLOBAL_UPDATE, /* replace the entry with source's */
        PLAN_GLOBAL_REMOVE,
} plan_global_op_kind;

typedef struct plan_global_op {
        plan_global_op_kind kind;
        char *registry;
        char *source; /* NULL for REMOVE */
} plan_global_op;

typedef struct plan_global_desired {
        plan_global_op *ops;
        size_t n_ops;
        char *merged; /* desired pullpolicy.io/merged value; NULL: no annotation */
        bool changed;
        char **conflicts; /* registries present and not recorded for this policy */
        size_t n_conflicts;
} plan_global_desired;

/*
 * The edit of the global pull secret for one policy, from its CURRENT state
 * (a full model_secret). keep_unwanted: remove none of this policy's entries
 * (a source is missing or invalid, so the wanted set is incomplete). The apply
 * step re-runs it after a 409. 0, -EINVAL, -E2BIG or -ENOMEM.
 */
int plan_global_edit(const model_secret *current, const char *policy_key,
                     const plan_global_want *want, size_t n_want, bool keep_unwanted,
                     plan_global_desired *ret);
void plan_global_desired_done(plan_global_desired *d);

/* ---- the plan -------------------------------------------------------------------- */

typedef enum plan_write_kind {
        PLAN_ADD_FINALIZER, /* on the policy (namespace/name = the policy) */
        PLAN_REMOVE_FINALIZER,
        PLAN_RB_CREATE, /* rb: the full desired RoleBinding */
        PLAN_RB_UPDATE, /* rb: subjects and labels; resource_version is the precondition */
        PLAN_RB_DELETE,
        PLAN_COPY_CREATE, /* copy: read source, write namespace/name with R8 labels */
        PLAN_COPY_UPDATE, /* copy: refresh type and data (and labels) from source */
        PLAN_COPY_DELETE,
        PLAN_SA_EDIT,     /* sa: the edit, and the wants to re-run it after a 409 */
        PLAN_GLOBAL_EDIT, /* global: the edit, and the wants to re-run it */
} plan_write_kind;

const char *plan_write_kind_to_string(plan_write_kind k);

typedef struct plan_rb {
        char *subject_namespace;
        char *role_name;         /* a ClusterRole */
        model_subject *subjects; /* sorted; kind Group or ServiceAccount */
        size_t n_subjects;
} plan_rb;

typedef struct plan_copy {
        char *source_namespace;
        char *source_name;
        /* the VALUE of the pullpolicy.io/policy label to set: names_policy_label() of the
         * policy that owns the copy (this one, or another of the home after a hand-over) */
        char *policy_name;
} plan_copy;

typedef struct plan_sa_write {
        plan_sa_want *want;
        size_t n_want;
        plan_sa_desired desired;
        bool after_timeout; /* R4: linked without waiting any longer */
        /*
         * desired may go out as a merge patch guarded by resource_version (the cached
         * SA's lists were plain names, so rebuilding them from names loses nothing);
         * otherwise, and after a 409, the SA is read and edited in full.
         */
        bool patchable;
} plan_sa_write;

typedef struct plan_global_write {
        plan_global_want *want;
        size_t n_want;
        bool keep_unwanted;
        char *source_namespace; /* the home, where sources live */
        plan_global_desired desired;
} plan_global_write;

typedef struct plan_write {
        plan_write_kind kind;
        char *namespace;
        char *name;
        char *resource_version; /* precondition (updates, deletes, edits); NULL for creates */
        char *uid;              /* precondition for deletes when known */
        /* the policy, for labels (R8) and the owner reference of RoleBindings */
        char *policy_namespace, *policy_name, *policy_uid;
        plan_rb rb;
        plan_copy copy;
        plan_sa_write sa;
        plan_global_write global;
        /* the status counts its object (roleBindings, linkedServiceAccounts) only because
         * this write is planned: the binding is not there yet, the account not fully linked */
        bool counted;
} plan_write;

typedef struct plan_event {
        bool warning;
        char *reason;  /* RoleBindingCreated, Linked, Unlinked, WaitingForDockercfg, ... */
        char *message; /* names only, never secret data; the object is the policy */
} plan_event;

typedef struct plan_status {
        long long observed_generation;
        const char *ready_status; /* "True" or "False" (static) */
        char *ready_reason;
        char *ready_message;
        char *ready_last_transition; /* RFC 3339 */
        int namespaces, role_bindings, linked, waiting;
        const char *dockercfg_form; /* plan_dockercfg_form() of the settings (static) */
        model_problem *problems;    /* at most MODEL_PROBLEMS_MAX */
        size_t n_problems;
        /* CredentialsVerified (R12) belongs to the verifier: a merge patch replaces the whole
         * conditions list, so the written status carries the cached one over, copied here
         * at plan time (the apply step sees only the policy's metadata) */
        bool has_credentials;
        model_condition credentials;
        int stale_pods; /* R13: status.stalePods */
} plan_status;

/*
 * R13: a stale pod of a subject service account (stalepods.h), for the reconciler's stale-pod
 * step (stalepods_act.h), which sends its Event once and, when the policy asks, deletes it.
 */
typedef struct plan_stale_pod {
        char *namespace, *name, *uid, *resource_version;
        char *service_account;
        char *missing; /* the linked secrets it lacks, ", "-separated */
        bool restartable;
} plan_stale_pod;

typedef struct plan {
        plan_write *writes;
        size_t n_writes;
        bool has_status; /* false for a deleting policy or when only the finalizer is added */
        plan_status status;
        bool status_changed; /* write status only when set */
        plan_event *events;
        size_t n_events;
        long long requeue_after; /* seconds; -1: none needed */

        /* R13: every stale pod (not capped as problems are), and spec.restartStalePods */
        plan_stale_pod *stale_pods;
        size_t n_stale_pods;
        bool restart_stale_pods;
} plan;

/*
 * R4: the form of OpenShift's per-account pull secrets the settings say the cluster has,
 * for status.dockercfgForm: "NotOpenShift" (image.openshift.io is not served),
 * "RegistryRemoved" (served, but the registry is Removed or its capability disabled) or
 * "InternalRegistry". A static string.
 */
const char *plan_dockercfg_form(const plan_settings *settings);

/*
 * Plans policy p against snap. Returns 0 and a new plan, or -EINVAL (bad
 * arguments), -ENOMEM, or a snapshot callback's error. An invalid spec is not an
 * error: it is a plan with no writes and Ready=False InvalidSpec.
 */
int plan_policy(const model_policy *p, const plan_snapshot *snap, const plan_settings *settings,
                plan **ret);
plan *plan_free(plan *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(plan *, plan_free);

/*
 * The plan for a policy home/name that no longer exists (its finalizer was removed
 * by hand, or it went while the controller was away) but whose marks and records
 * are still on objects: everything whose R8 marks, link claims or merged entries
 * name it is undone exactly as the finalizer path would (plan_policy() of a
 * deleting policy), with no finalizer write, no status and no events; requeue_after
 * is 1 while writes were planned. 0, -EINVAL, -ENOMEM or a snapshot callback's error.
 */
int plan_orphan(const char *home, const char *name, const plan_snapshot *snap,
                const plan_settings *settings, plan **ret);

/*
 * The part of plan_policy() that namespaces nss (not the home; repeats ignored) need, for
 * a change of their service accounts or bindings: for each, its RoleBinding created,
 * updated or deleted (no other), its copies created or refreshed (R5), the links of
 * its subject accounts (R3, R4) and this policy's claims removed from its accounts that
 * are no subjects (R7) — the writes plan_policy() on the same snapshot plans for that
 * namespace, in the same order, and their events. Nothing else: no status (has_status
 * false: the counts need the whole policy, so the caller runs plan_policy() later), no
 * global pull secret, no delete of a copy. -ENOTSUP when only the whole plan
 * will do: the policy is deleting or has no finalizer yet, its spec is invalid, or nss
 * holds its home (whose accounts decide what a source is, R5). Else 0, -EINVAL, -ENOMEM
 * or a snapshot callback's error.
 */
int plan_policy_namespaces(const model_policy *p, char *const *nss, size_t n_nss,
                           const plan_snapshot *snap, const plan_settings *settings, plan **ret);

/*
 * The write at index idx of p was not done (it failed, or was skipped after a failure):
 * the object it would have made count (plan_write.counted) leaves p's status counts, so
 * that they say what is there. Call once per write; nothing for a write not counted.
 */
void plan_status_write_undone(plan *p, size_t idx);

/*
 * The RoleBinding of a PLAN_RB_CREATE/UPDATE write as a JSON object (apiVersion,
 * kind, metadata with labels, owner reference and, for updates, resourceVersion;
 * roleRef; subjects). 0, -EINVAL or -ENOMEM.
 */
int plan_role_binding_json(const plan_write *w, json_object **ret);

#endif
