/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The apply step: executes a plan's writes (plan.h) against kube-apiserver,
 * asynchronously on the client's loop, one request at a time, IN ORDER (a plan of
 * PP_APPLY_LANES_MIN_WRITES writes or more runs as parallel lanes, each in this order for
 * the writes of its namespaces: apply_internal.h; ctx.on_write_failed is then called in
 * the order failures happen, and the result is the first of them in time). A write
 * that fails does not stop the others: it is reported (ctx.on_write_failed) and
 * the apply goes on with the next write, skipping only the writes that depend on
 * a failed one (pp_apply_write_depends(): a link to a copy that could not be made
 * in that namespace, the delete of a binding whose replacement could not be
 * created, everything after a failed ADD_FINALIZER, a REMOVE_FINALIZER after any
 * failure). When every write succeeded and the plan has a changed status, the
 * status is written last; after a failure it is not (the caller reports).
 *
 * What each write does (all writes name fieldManager=<ctx.field_manager>):
 *
 *  ADD/REMOVE_FINALIZER  JSON merge patch of metadata.finalizers (the whole new
 *                        list, others' finalizers kept) with metadata.resourceVersion
 *                        as precondition. A removal on a policy that is gone is done.
 *  RB_CREATE             POST plan_role_binding_json(); AlreadyExists → -EEXIST.
 *  RB_UPDATE             GET the binding; it must still be the one planned
 *                        (resourceVersion, else -ESTALE) and carry the policy's marks (else
 *                        -EEXIST). PUT it with only what the controller owns changed
 *                        (pp_apply_rb_update_json(): subjects, R8 labels, its owner
 *                        reference); others' labels, annotations and owner references stay.
 *  RB_DELETE             DELETE with preconditions {uid, resourceVersion} when known,
 *                        propagationPolicy Background; NotFound counts as done.
 *  COPY_CREATE (R5)      GET the source, POST a Secret with the same name, type and
 *                        data in the target namespace, R8 labels, the pullpolicy.io/source
 *                        annotation, no owner reference (it would cross namespaces).
 *  COPY_UPDATE           GET the source and the copy; the copy must still be the one
 *                        planned (resourceVersion) and carry the home's marks. PUT with
 *                        type, data and R8 labels refreshed (other metadata kept). A
 *                        Secret's type is immutable (and so is an immutable Secret's data):
 *                        then DELETE with preconditions and POST anew.
 *  COPY_DELETE           DELETE with preconditions; NotFound counts as done.
 *  SA_EDIT (R3/R7/R9)    GET the service account, re-run plan_sa_edit() on what was
 *                        read, PUT the result with the resourceVersion read. A 409 re-reads
 *                        and retries (PP_APPLY_CONFLICT_RETRIES times, after a short
 *                        jittered delay), then gives up with -ESTALE. Entries of others are
 *                        never written from a stale copy: every edit starts from a fresh GET.
 *                        A service account that is gone needs no edit.
 *  GLOBAL_EDIT (R6)      the same read-modify-write loop on the global pull secret: re-run
 *                        plan_global_edit(), read each source secret the ADD/UPDATE ops
 *                        need, put their registry entries under the same keys of the
 *                        .dockerconfigjson "auths" (removals delete the key), set the
 *                        pullpolicy.io/merged annotation, re-encode and PUT. Everything else
 *                        in the payload stays (member order included; json-c re-serializes
 *                        values, which keeps them semantically identical). Registries in
 *                        conflict are never touched.
 *  status                JSON merge patch {"status": <pp_apply_status_json()>} of the
 *                        /status subresource, without precondition (the status describes
 *                        the plan just applied; a newer generation is reconciled again).
 *                        A policy that is gone has no status to write.
 *
 * Results: 0, or the first failed write's error: an API answer (errors.h:
 * kube_error_is_conflict() for a failed precondition, kube_error_is_not_found() when a
 * source secret or the object to update is gone, kube_error_is_forbidden(), ...), or a
 * negative errno: -ESTALE/-EEXIST when what was read no longer matches the plan.
 * failed_what names the failed write as "<Kind> <namespace>/<name>" (with
 * " status" for the status write): names only, never data (R11).
 *
 * Secrets: payloads pass through memory only as long as a request needs them;
 * decoded scratch buffers are wiped. Nothing here logs.
 *
 * Ownership and lifetime: the ctx is copied, but the strings and objects it points
 * to (client, field_manager, metrics, global_ns, global_name) are borrowed and must
 * outlive every apply. policy, plan and status are borrowed until done is called
 * or the apply is cancelled. The pp_apply handle is freed by the apply itself just
 * BEFORE done is called: do not use it in or after done (reset your pointer there).
 */
#ifndef PP_CONTROLLER_APPLY_H
#define PP_CONTROLLER_APPLY_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "kube/client.h"
#include "metrics.h"
#include "model.h"
#include "plan.h"

/* Read-modify-write attempts of one SA or global edit before giving up with -ESTALE. */
#define PP_APPLY_CONFLICT_RETRIES 8
/* The delay before a retry: jittered exponential backoff between these bounds (seconds). */
#define PP_APPLY_RETRY_BASE 0.02
#define PP_APPLY_RETRY_MAX  0.5
/* Per-request deadline. */
#define PP_APPLY_TIMEOUT_MS 30000L
/* Largest Secret body read back (Kubernetes limits a Secret to 1 MiB of data; base64 and
 * metadata around it). */
#define PP_APPLY_SECRET_BODY_MAX (4u * 1024 * 1024)
/* Limits of the status written, from the CRD's schema (longer strings are cut on a UTF-8
 * boundary). */
#define PP_APPLY_CONDITION_MESSAGE_MAX 32768
#define PP_APPLY_PROBLEM_MESSAGE_MAX   1024
#define PP_APPLY_PROBLEM_REASON_MAX    64
#define PP_APPLY_PROBLEM_NAMESPACE_MAX 63
#define PP_APPLY_PROBLEM_NAME_MAX      253

/*
 * One failed write, as ctx.on_write_failed is told of it. Strings are valid during the
 * call only. The object is the one the failed request addressed (for a copy whose source
 * could not be read: the source). message is the API's Status message, cut to
 * PP_APPLY_PROBLEM_MESSAGE_MAX bytes, "" when the failure was no API answer or the object
 * is a Secret (an admission webhook's message may quote the data it refused).
 */
typedef struct pp_apply_failure {
        const char *kind;       /* "ServiceAccount", "RoleBinding", "Secret", "PullPolicy" */
        const char *namespace;  /* may be NULL */
        const char *name;       /* may be NULL */
        const char *what;       /* "<Kind> <namespace>/<name>" */
        int error;              /* negative errno (errors.h) */
        long http_status;       /* 0: no HTTP answer */
        const char *api_reason; /* Status.reason as sent, "" when none */
        const char *message;
        size_t write_index; /* the write of the plan that failed */
} pp_apply_failure;

typedef struct pp_apply_ctx {
        kube_client *client;
        const char *field_manager;   /* "pullpolicy-controller"; NULL: none sent */
        controller_metrics *metrics; /* may be NULL */
        /* the global pull secret (R6); NULL: openshift-config / pull-secret. A GLOBAL_EDIT
         * naming another secret, or a copy write aimed at it, is refused (-EINVAL). */
        const char *global_ns, *global_name;
        /*
         * Test hook, NULL in production: called synchronously right before the PUT of a
         * read-modify-write (SA and global edits), with the object's kind, namespace,
         * name and the attempt number (0 for the first). Tests make a concurrent write
         * there to provoke a 409.
         */
        void (*before_put)(void *ud, const char *kind, const char *ns, const char *name,
                           unsigned attempt);
        void *hook_ud;
        /*
         * Called synchronously for each write that failed, with the ud of the apply (the
         * one done gets), before the apply goes on. May be NULL. Must not cancel the apply.
         */
        void (*on_write_failed)(void *ud, const pp_apply_failure *f);
} pp_apply_ctx;

typedef struct pp_apply pp_apply;

/*
 * result: 0 or the first failure (see above). n_done: writes that succeeded, not
 * counting the status. failed_what: what the first failure addressed; NULL on success;
 * valid during the call only.
 */
typedef void (*pp_apply_done_fn)(void *ud, int result, size_t n_done, const char *failed_what);

/*
 * Starts applying plan's writes, then (if every write succeeded and
 * plan->has_status && plan->status_changed) its status. done is called exactly once,
 * never from inside this function, unless the apply is cancelled first. ret may be
 * NULL when the caller never cancels. 0, or -EINVAL / -ENOMEM (then no callback).
 */
int pp_apply_plan(const pp_apply_ctx *ctx, const model_policy *policy, const plan *p,
                  pp_apply_done_fn done, void *ud, pp_apply **ret);

/* Writes only a status (e.g. Ready=False Forbidden after a write was refused). */
int pp_apply_status(const pp_apply_ctx *ctx, const model_policy *policy, const plan_status *st,
                    pp_apply_done_fn done, void *ud, pp_apply **ret);

/* Stops the apply: the request in flight and timers are cancelled, done is never
 * called. NULL is fine. Must not be called once done has been called. */
void pp_apply_cancel(pp_apply *a);

/* ---- pure helpers (exported for the unit tests) -------------------------------------- */

/*
 * The policy's status object (not wrapped in {"status": ...}): observedGeneration,
 * conditions [Ready {type, status, reason, message, observedGeneration,
 * lastTransitionTime}], namespaces, roleBindings, linkedServiceAccounts,
 * waitingServiceAccounts, problems (at most MODEL_PROBLEMS_MAX, each {namespace?,
 * name?, reason, message?}). Strings are cut to the CRD's limits, negative counts
 * written as 0. lastTransitionTime: st's, else the stored one when Ready's status did
 * not change, else now. st->observed_generation < 0 takes the policy's generation.
 * 0, -EINVAL (no reason, or a Ready status other than True/False/Unknown) or -ENOMEM.
 */
int pp_apply_status_json(const model_policy *policy, const plan_status *st, json_object **ret);

/*
 * The merge patch that adds (add) or removes NAMES_FINALIZER in meta's finalizer list,
 * keeping the others in order: {"metadata": {"finalizers": [...], "resourceVersion":
 * rv}} (rv NULL: no precondition). Returns 1 and the patch, 0 when the list needs no
 * change (*ret untouched), -EINVAL or -ENOMEM.
 */
int pp_apply_finalizer_patch(const kube_meta *meta, const char *rv, bool add, json_object **ret);

/*
 * The copy of a source Secret (a whole Secret as read) for a COPY_CREATE/UPDATE write
 * w: w->namespace/w->name, the source's type (Opaque when absent) and data, R8
 * labels (policy w->copy.policy_name, home w->copy.source_namespace), annotation
 * pullpolicy.io/source "<ns>/<name>" of the source. base: NULL to build a new Secret,
 * else the copy as read (its other metadata is kept, resourceVersion included);
 * base is not modified. 0, -EINVAL (not a Secret, missing names) or -ENOMEM.
 */
int pp_apply_copy_json(json_object *source, const plan_write *w, json_object *base,
                       json_object **ret);

/*
 * The RoleBinding to PUT for a PLAN_RB_UPDATE write w, from the binding as read (current,
 * not modified): a copy with w's subjects, the R8 labels set (other labels kept), the
 * policy's controller owner reference in place of any earlier owner reference to a
 * PullPolicy of that name (or to a controlling PullPolicy), everything else (annotations,
 * others' owner references, resourceVersion) as read. 0, -ESTALE (roleRef is not w's
 * ClusterRole: immutable, so not the binding planned), -EINVAL or -ENOMEM.
 */
int pp_apply_rb_update_json(json_object *current, const plan_write *w, json_object **ret);

/* Whether write later (after failed in the plan) must be skipped because failed failed. */
bool pp_apply_write_depends(const plan_write *later, const plan_write *failed);

/* A DeleteOptions body: propagationPolicy Background and the preconditions given
 * (either may be NULL). 0 or -ENOMEM. */
int pp_apply_delete_options(const char *uid, const char *rv, char **ret);

/*
 * The merge patch that puts d on a service account whose resourceVersion is rv:
 * metadata.resourceVersion (a precondition for the apiserver), the links annotation
 * (null removes it), .secrets and .imagePullSecrets as lists of {name} (null when
 * empty). Only for SAs whose lists held nothing but names. 0, -EINVAL or -ENOMEM.
 */
int pp_apply_sa_patch(const plan_sa_desired *d, const char *rv, json_object **ret);

/* The registry map of one source secret, for pp_apply_global_json(). */
typedef struct pp_apply_source {
        const char *name;   /* the source secret's name (plan_global_op.source) */
        json_object *auths; /* host → entry, as model_secret_payload_auths() gives it */
} pp_apply_source;

/*
 * Edits the global pull secret `secret` (a whole Secret as read) in place for d:
 * ADD/UPDATE put the entry of the op's source under the registry key of the
 * .dockerconfigjson "auths" (replacing in place, so the order of keys is kept; a new
 * key goes last), REMOVE deletes the key, the rest of the payload is re-serialized
 * unchanged; sets or removes the pullpolicy.io/merged annotation (d->merged). The
 * payload is limited to MODEL_SECRET_PAYLOAD_MAX bytes and MODEL_JSON_DEPTH levels.
 * 0; -EINVAL (not a valid dockerconfigjson secret); -ESTALE (a source or a registry
 * entry of an op is missing: the plan is out of date); -E2BIG; -ENOMEM. On failure
 * the secret may be partly changed: discard it.
 */
int pp_apply_global_json(json_object *secret, const plan_global_desired *d,
                         const pp_apply_source *src, size_t n_src);

#endif
