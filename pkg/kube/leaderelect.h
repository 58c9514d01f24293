/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube_leaderelect: leader election with a coordination.k8s.io/v1 Lease, with
 * client-go's semantics, on the libev loop through kube_client (non-blocking).
 *
 * The record is the Lease's spec: holderIdentity, leaseDurationSeconds,
 * acquireTime, renewTime, leaseTransitions.
 *
 *  - Acquire. A candidate reads the Lease every retry period (jittered by up
 *    to 1.2 times, as client-go's JitterUntil). It creates the Lease when there
 *    is none (404). It takes it over when the holder is empty, or when the
 *    record has not CHANGED for leaseDurationSeconds as measured on our own
 *    monotonic clock from the moment we observed the last change. Timestamps
 *    written by others are never compared with our clock: a holder whose clock
 *    is skewed neither loses nor keeps the lease because of it.
 *  - Every write is a PUT guarded by the resourceVersion that was read (409 →
 *    the attempt failed, read again next time); creation is a POST (409
 *    AlreadyExists → someone was faster).
 *  - Renew. The leader writes renewTime every retry period; while leading it
 *    writes straight from the last object it wrote (no GET) and falls back to
 *    GET + PUT after a failure.
 *  - Losing. If no renewal succeeds for renew_deadline, counted from the moment
 *    the last successful renewal was SENT, the leader stops leading: the
 *    outstanding request is cancelled and on_stopped_leading fires. Because
 *    others wait lease_duration (> renew_deadline) after they observed that same
 *    renewal, which cannot happen before it was sent, the old leader stops
 *    before anyone else can take over (up to clock rate differences). Afterwards
 *    the elector is a candidate again: it may lead again later (and call
 *    on_started_leading again). A controller that cannot resume safely exits in
 *    on_stopped_leading, as controller-runtime does.
 *  - Release. kube_leaderelect_stop() on a leader fires on_stopped_leading
 *    first (writes stop), then writes holderIdentity "" and
 *    leaseDurationSeconds 1 so that the next candidate takes over at its next
 *    attempt instead of waiting for the lease to expire.
 *  - on_new_leader fires whenever the observed holder changes to a different
 *    non-empty identity (ours included).
 *
 * Lease writes skip the client's QPS bucket (no_rate_limit): a busy controller
 * must not lose its lease because reconciles used up the tokens.
 *
 * Callbacks run on the loop. From inside any callback, kube_leaderelect_stop()
 * may be called; kube_leaderelect_free() may be called only from the stop
 * completion callback or outside callbacks.
 *
 * Limits: identity at most KUBE_LEADERELECT_IDENTITY_MAX bytes; a Lease body
 * at most KUBE_LEADERELECT_MAX_BODY bytes; durations in (0, 1 day].
 */
#ifndef PP_KUBE_LEADERELECT_H
#define PP_KUBE_LEADERELECT_H

#include <stdbool.h>

#include "kube/client.h"

#define KUBE_LEADERELECT_IDENTITY_MAX 256
#define KUBE_LEADERELECT_MAX_BODY     (256u * 1024)

typedef struct kube_leaderelect kube_leaderelect;

typedef struct kube_leaderelect_callbacks {
        void (*on_started_leading)(kube_leaderelect *le, void *userdata);
        void (*on_stopped_leading)(kube_leaderelect *le, void *userdata);
        void (*on_new_leader)(kube_leaderelect *le, const char *identity, void *userdata);
} kube_leaderelect_callbacks;

/*
 * The transport, injectable for tests: functions with the meaning of
 * kube_client_request() and kube_request_cancel(); callbacks may pass any
 * client pointer (the elector ignores it). A transport must never call back
 * from inside request().
 */
typedef struct kube_leaderelect_transport {
        int (*request)(void *ctx, const kube_request_opts *o, kube_request **ret);
        void (*cancel)(void *ctx, kube_request *r);
        void *ctx;
} kube_leaderelect_transport;

typedef struct kube_leaderelect_opts {
        const char *namespace; /* required: the Lease's namespace */
        const char *name;      /* required: the Lease's name */
        const char *identity;  /* required: unique among candidates (see default_identity) */
        /*
         * Seconds; 0 picks client-go's defaults 15, 10 and 2. Required:
         * lease_duration > renew_deadline > 1.2 * retry_period > 0. The Lease
         * records lease_duration rounded up to whole seconds.
         */
        double lease_duration;
        double renew_deadline;
        double retry_period;
        /* Needed (and used) only when client is NULL, with a transport. */
        struct ev_loop *loop;
        const kube_leaderelect_transport *transport; /* NULL: the client */
} kube_leaderelect_opts;

typedef struct kube_leaderelect_stats {
        unsigned long attempts; /* acquire or renew attempts started */
        unsigned long gets;     /* requests by kind */
        unsigned long creates;
        unsigned long updates;
        unsigned long failures;     /* attempts that did not end holding the lease */
        unsigned long conflicts;    /* 409 answers */
        unsigned long acquisitions; /* times we started leading */
        unsigned long losses;       /* times we stopped leading for want of renewal */
} kube_leaderelect_stats;

/*
 * Creates a stopped elector; strings are copied. client may be NULL only with
 * opts->transport and opts->loop. Returns 0 and *ret, -EINVAL (a missing or
 * invalid option), or -ENOMEM.
 */
int kube_leaderelect_new(kube_client *client, const kube_leaderelect_opts *opts,
                         const kube_leaderelect_callbacks *callbacks, void *userdata,
                         kube_leaderelect **ret);

/* Starts campaigning (the first attempt is made at once). -EALREADY if running. */
int kube_leaderelect_start(kube_leaderelect *le);

/*
 * Stops campaigning. A leader fires on_stopped_leading, then releases the
 * Lease (one PUT, bounded by renew_deadline; its failure is ignored: the lease
 * then simply expires). done (may be NULL) is called once on the loop when all
 * is over, never from inside this call. -EALREADY if not running.
 */
int kube_leaderelect_stop(kube_leaderelect *le, void (*done)(kube_leaderelect *le, void *userdata),
                          void *userdata);

/*
 * Cancels everything without callbacks and without releasing (the lease then
 * expires on its own; call stop first for a graceful hand-over). NULL is fine.
 */
kube_leaderelect *kube_leaderelect_free(kube_leaderelect *le);

bool kube_leaderelect_is_leader(const kube_leaderelect *le);
/* The holder seen in the last observed record ("" for none), or NULL before any. */
const char *kube_leaderelect_holder(const kube_leaderelect *le);
const char *kube_leaderelect_identity(const kube_leaderelect *le);
void kube_leaderelect_get_stats(const kube_leaderelect *le, kube_leaderelect_stats *ret);

/*
 * A fresh identity "<hostname>_<32 hex digits>" (controller-runtime's form),
 * random per call so that a restarted process is a new candidate. 0 and *ret
 * (free it), or -ENOMEM.
 */
int kube_leaderelect_default_identity(char **ret);

#endif
