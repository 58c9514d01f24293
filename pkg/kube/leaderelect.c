/* SPDX-License-Identifier: Apache-2.0 */
#include "kube/leaderelect.h"

#include <errno.h>
#include <ev.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "kube/ratelimit.h"
#include "kube/types.h"
#include "util/dns.h"
#include "util/jsonutil.h"
#include "util/macro.h"
#include "util/timefmt.h"

/* client-go's wait.JitterUntil factor for the acquire loop. */
#define JITTER_FACTOR 1.2

typedef enum le_state {
        LE_STOPPED,
        LE_CANDIDATE,
        LE_LEADER,
        LE_RELEASING,
} le_state;

typedef enum le_op {
        OP_NONE,
        OP_GET,
        OP_CREATE,
        OP_UPDATE,
        OP_RELEASE,
        OP_RELEASE_GET,
} le_op;

/* Reads and writes a release may take in all (a write cut short may have changed the rv). */
#define RELEASE_TRIES 3

/* The part of the Lease the election is about, compared as a whole. */
typedef struct le_record {
        char *holder; /* never NULL after parsing ("" for none) */
        long long duration;
        char *acquire_time; /* never NULL ("" when absent) */
        char *renew_time;
        long long transitions;
} le_record;

struct kube_leaderelect {
        kube_client *client;
        struct ev_loop *loop;
        kube_leaderelect_transport transport;
        kube_leaderelect_callbacks cb;
        void *userdata;

        char *namespace;
        char *name;
        char *identity;
        char *object_path;     /* .../leases/NAME */
        char *collection_path; /* .../leases */
        double lease_duration, renew_deadline, retry_period;

        le_state state;
        le_op op;
        kube_request *req;
        double attempt_started; /* kube_now() when the current attempt began */

        /* What we know of the Lease. */
        bool have_observed;
        le_record observed;
        double observed_time;      /* kube_now() when observed last changed */
        json_object *observed_obj; /* the whole Lease as last read or written */
        char *reported_leader;

        double last_renew; /* send time of the last successful write as leader */
        ev_timer retry_timer;
        ev_timer deadline_timer;
        ev_timer done_timer; /* defers the stop completion out of stop() */
        int release_tries;
        void (*stop_done)(kube_leaderelect *, void *);
        void *stop_userdata;

        kube_leaderelect_stats stats;
};

/* ---- records ---- */

static void record_done(le_record *r) {
        free(r->holder);
        free(r->acquire_time);
        free(r->renew_time);
        *r = (le_record){0};
}

static bool record_equal(const le_record *a, const le_record *b) {
        return streq(a->holder, b->holder) && a->duration == b->duration &&
               streq(a->acquire_time, b->acquire_time) && streq(a->renew_time, b->renew_time) &&
               a->transitions == b->transitions;
}

static const char *get_string(json_object *o, const char *key) {
        json_object *v;
        if (!o || !json_object_object_get_ex(o, key, &v) ||
            !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static long long get_int(json_object *o, const char *key) {
        json_object *v;
        if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return 0;
        return json_object_get_int64(v);
}

/* Parses a Lease body into its object and record. */
static int parse_lease(const char *body, size_t len, json_object **ret_obj, le_record *ret) {
        if (!body || len == 0 || len > KUBE_LEADERELECT_MAX_BODY) return -EBADMSG;
        json_tokener *t = json_tokener_new_ex(32);
        if (!t) return -ENOMEM;
        json_object *o = json_tokener_parse_ex(t, body, (int)len);
        enum json_tokener_error e = json_tokener_get_error(t);
        json_tokener_free(t);
        if (e != json_tokener_success || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return -EBADMSG;
        }
        json_object *spec = NULL;
        json_object_object_get_ex(o, "spec", &spec);
        const char *h = get_string(spec, "holderIdentity");
        const char *a = get_string(spec, "acquireTime");
        const char *rt = get_string(spec, "renewTime");
        le_record r = {
            .holder = strdup(h ? h : ""),
            .duration = get_int(spec, "leaseDurationSeconds"),
            .acquire_time = strdup(a ? a : ""),
            .renew_time = strdup(rt ? rt : ""),
            .transitions = get_int(spec, "leaseTransitions"),
        };
        if (!r.holder || !r.acquire_time || !r.renew_time) {
                record_done(&r);
                json_object_put(o);
                return -ENOMEM;
        }
        *ret_obj = o;
        *ret = r;
        return 0;
}

/* ---- plumbing ---- */

static int client_request(void *ctx, const kube_request_opts *o, kube_request **ret) {
        return kube_client_request(ctx, o, ret);
}

static void client_cancel(void *ctx, kube_request *r) {
        kube_request_cancel(r);
}

static void cancel_request(kube_leaderelect *le) {
        if (le->req) le->transport.cancel(le->transport.ctx, le->req);
        le->req = NULL;
        le->op = OP_NONE;
}

static void on_response(kube_client *c, const kube_response *r, void *ud);

static int send_request(kube_leaderelect *le, le_op op, kube_method method, const char *path,
                        const char *body, double timeout) {
        kube_request_opts o = {
            .method = method,
            .path = path,
            .body = body,
            .body_len = body ? strlen(body) : 0,
            .timeout_ms = (long)ceil(timeout * 1000),
            .max_body = KUBE_LEADERELECT_MAX_BODY,
            .no_rate_limit = true,
            .on_done = on_response,
            .userdata = le,
        };
        kube_request *req = NULL;
        int r = le->transport.request(le->transport.ctx, &o, &req);
        if (r < 0) return r;
        le->req = req;
        le->op = op;
        switch (op) {
        case OP_GET:
                le->stats.gets++;
                break;
        case OP_CREATE:
                le->stats.creates++;
                break;
        default:
                le->stats.updates++;
                break;
        }
        return 0;
}

/* How long one request may take: a leader needs time for a retry within its deadline. */
static double request_timeout(const kube_leaderelect *le) {
        if (le->state == LE_LEADER) return MAX(le->retry_period, le->renew_deadline / 2);
        return le->renew_deadline;
}

static void now_micro(char *buf, size_t n) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        if (timefmt_rfc3339_micro(&ts, buf, n) < 0) snprintf(buf, n, "1970-01-01T00:00:00.000000Z");
}

/*
 * Builds the body of a write: base (the Lease as we know it, or NULL to build
 * a new one) with its spec set to the given values; other fields (labels,
 * unknown spec fields) are kept.
 */
static int build_lease(kube_leaderelect *le, json_object *base, const char *holder,
                       long long duration, const char *acquire, const char *renew,
                       long long transitions, char **ret) {
        json_object *o = NULL;
        int r = -ENOMEM;
        if (base) {
                if (json_object_deep_copy(base, &o, NULL) < 0) return -ENOMEM;
                /* status-less; drop managedFields to keep the write small. */
                json_object *meta;
                if (json_object_object_get_ex(o, "metadata", &meta))
                        json_object_object_del(meta, "managedFields");
        } else {
                o = json_object_new_object();
                json_object *meta = json_object_new_object();
                if (!o || !meta) {
                        json_object_put(meta);
                        goto out;
                }
                /* Every json-c allocation is checked: a body with a null holderIdentity
                 * or renewTime, or without one, would be a claim that reads as free. */
                if (jsonutil_add(o, "apiVersion",
                                 json_object_new_string("coordination.k8s.io/v1")) < 0 ||
                    jsonutil_add(o, "kind", json_object_new_string("Lease")) < 0 ||
                    jsonutil_add(meta, "name", json_object_new_string(le->name)) < 0 ||
                    jsonutil_add(meta, "namespace", json_object_new_string(le->namespace)) < 0) {
                        json_object_put(meta);
                        goto out;
                }
                if (jsonutil_add(o, "metadata", meta) < 0) goto out;
        }
        json_object *spec;
        if (!json_object_object_get_ex(o, "spec", &spec) ||
            !json_object_is_type(spec, json_type_object)) {
                spec = json_object_new_object();
                if (jsonutil_add(o, "spec", spec) < 0) goto out;
        }
        if (jsonutil_add(spec, "holderIdentity", json_object_new_string(holder)) < 0 ||
            jsonutil_add(spec, "leaseDurationSeconds", json_object_new_int64(duration)) < 0 ||
            jsonutil_add(spec, "acquireTime", json_object_new_string(acquire)) < 0 ||
            jsonutil_add(spec, "renewTime", json_object_new_string(renew)) < 0 ||
            jsonutil_add(spec, "leaseTransitions", json_object_new_int64(transitions)) < 0)
                goto out;
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        if (!s) goto out;
        *ret = strdup(s);
        r = *ret ? 0 : -ENOMEM;
out:
        json_object_put(o);
        return r;
}

/* Replaces what we observed; observed_time moves only when the record changed. */
static void observe(kube_leaderelect *le, json_object *obj, le_record *rec) {
        if (!le->have_observed || !record_equal(&le->observed, rec)) {
                record_done(&le->observed);
                le->observed = *rec;
                le->observed_time = kube_now();
                le->have_observed = true;
        } else
                record_done(rec);
        json_object_put(le->observed_obj);
        le->observed_obj = obj;
}

static void forget_object(kube_leaderelect *le) {
        json_object_put(le->observed_obj);
        le->observed_obj = NULL;
}

static void schedule_attempt(kube_leaderelect *le, double delay) {
        ev_timer_stop(le->loop, &le->retry_timer);
        ev_timer_set(&le->retry_timer, delay, 0.);
        ev_timer_start(le->loop, &le->retry_timer);
}

static double candidate_delay(const kube_leaderelect *le) {
        return le->retry_period * (1 + JITTER_FACTOR * kube_random());
}

/* Reports a change of holder to on_new_leader. */
static void maybe_report_leader(kube_leaderelect *le) {
        if (!le->have_observed || !le->observed.holder[0]) return;
        if (le->reported_leader && streq(le->reported_leader, le->observed.holder)) return;
        char *h = strdup(le->observed.holder);
        if (!h) return; /* reported on a later attempt */
        free(le->reported_leader);
        le->reported_leader = h;
        if (le->cb.on_new_leader) le->cb.on_new_leader(le, le->reported_leader, le->userdata);
}

/* ---- the attempt ---- */

static void attempt_failed(kube_leaderelect *le) {
        le->stats.failures++;
        le_state st = le->state;
        if (st == LE_LEADER)
                schedule_attempt(le, le->retry_period);
        else if (st == LE_CANDIDATE)
                schedule_attempt(le, candidate_delay(le));
        maybe_report_leader(le);
}

static void lose(kube_leaderelect *le);

static void attempt_succeeded(kube_leaderelect *le) {
        if (kube_now() >= le->attempt_started + le->renew_deadline) {
                /*
                 * Written, but too late to count: others may already have judged the
                 * lease expired. A leader steps down; a candidate reads again next time.
                 */
                if (le->state == LE_LEADER) {
                        le->stats.failures++;
                        lose(le);
                } else
                        attempt_failed(le);
                return;
        }
        bool started = le->state == LE_CANDIDATE;
        le->last_renew = le->attempt_started;
        le->state = LE_LEADER;
        ev_timer_stop(le->loop, &le->deadline_timer);
        double left = le->last_renew + le->renew_deadline - kube_now();
        ev_timer_set(&le->deadline_timer, MAX(left, 0.), 0.);
        ev_timer_start(le->loop, &le->deadline_timer);
        schedule_attempt(le, le->retry_period);
        if (started) le->stats.acquisitions++;
        /* The state is final before any callback: they may call stop(). */
        if (started && le->cb.on_started_leading) {
                le->cb.on_started_leading(le, le->userdata);
                if (le->state != LE_LEADER) return;
        }
        maybe_report_leader(le);
}

/* Writes our claim on the lease, on top of what we observed (or creates it). */
static int write_claim(kube_leaderelect *le) {
        char now[TIMEFMT_RFC3339_MAX];
        now_micro(now, sizeof(now));
        long long duration = (long long)ceil(le->lease_duration);
        _cleanup_free_ char *body = NULL;
        int r;

        if (!le->observed_obj) {
                r = build_lease(le, NULL, le->identity, duration, now, now, 0, &body);
                if (r < 0) return r;
                return send_request(le, OP_CREATE, KUBE_POST, le->collection_path, body,
                                    request_timeout(le));
        }
        bool ours = streq(le->observed.holder, le->identity);
        r = build_lease(le, le->observed_obj, le->identity, duration,
                        ours && le->observed.acquire_time[0] ? le->observed.acquire_time : now, now,
                        ours ? le->observed.transitions : le->observed.transitions + 1, &body);
        if (r < 0) return r;
        return send_request(le, OP_UPDATE, KUBE_PUT, le->object_path, body, request_timeout(le));
}

static void start_attempt(kube_leaderelect *le) {
        int r;
        le->stats.attempts++;
        le->attempt_started = kube_now();
        /* A leader that wrote the lease last writes again straight away (client-go's fast path). */
        if (le->state == LE_LEADER && le->observed_obj && streq(le->observed.holder, le->identity))
                r = write_claim(le);
        else
                r = send_request(le, OP_GET, KUBE_GET, le->object_path, NULL, request_timeout(le));
        if (r < 0) attempt_failed(le);
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents) {
        kube_leaderelect *le = w->data;
        if (le->state != LE_CANDIDATE && le->state != LE_LEADER) return;
        if (le->req) return; /* still waiting: the deadline timer guards leaders */
        start_attempt(le);
}

static void lose(kube_leaderelect *le) {
        /* Nothing we send from now on may count: the others may take over soon. */
        if (le->req) le->stats.failures++; /* the attempt under way is lost */
        cancel_request(le);
        ev_timer_stop(le->loop, &le->deadline_timer);
        forget_object(le);
        le->state = LE_CANDIDATE;
        le->stats.losses++;
        schedule_attempt(le, candidate_delay(le));
        if (le->cb.on_stopped_leading) le->cb.on_stopped_leading(le, le->userdata);
        if (le->state == LE_CANDIDATE) maybe_report_leader(le);
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents) {
        kube_leaderelect *le = w->data;
        if (le->state == LE_LEADER) lose(le);
}

static void finish_stop(kube_leaderelect *le) {
        le->state = LE_STOPPED;
        ev_timer_stop(le->loop, &le->done_timer);
        ev_timer_set(&le->done_timer, 0., 0.);
        ev_timer_start(le->loop, &le->done_timer);
}

static void on_stop_done(struct ev_loop *loop, ev_timer *w, int revents) {
        kube_leaderelect *le = w->data;
        void (*done)(kube_leaderelect *, void *) = le->stop_done;
        void *ud = le->stop_userdata;
        le->stop_done = NULL;
        /* Last thing: done may free le. */
        if (done) done(le, ud);
}

static void handle_get(kube_leaderelect *le, const kube_response *r) {
        if (r->http_status == 404) {
                /* No lease: create one. We forget any old object; the next write is a POST. */
                forget_object(le);
                if (write_claim(le) < 0) attempt_failed(le);
                return;
        }
        if (r->error != 0 || r->http_status / 100 != 2) {
                attempt_failed(le);
                return;
        }
        json_object *obj;
        le_record rec;
        if (parse_lease(r->body, r->body_len, &obj, &rec) < 0) {
                attempt_failed(le);
                return;
        }
        observe(le, obj, &rec);

        bool ours = streq(le->observed.holder, le->identity);
        if (le->state == LE_LEADER && !ours) {
                /* Someone took over (we must have been cut off): stop now, not at the deadline. */
                le->stats.failures++;
                lose(le);
                return;
        }
        if (le->observed.holder[0] && !ours &&
            le->observed_time + (double)le->observed.duration > kube_now()) {
                /* Held by someone else whose lease has not run out by our clock. */
                attempt_failed(le);
                return;
        }
        if (write_claim(le) < 0) attempt_failed(le);
}

static void handle_write(kube_leaderelect *le, const kube_response *r) {
        if (r->http_status == 409) {
                le->stats.conflicts++;
                /* Our copy is stale (or someone created it first): read it again next time. */
                forget_object(le);
                attempt_failed(le);
                return;
        }
        if (r->error != 0 || r->http_status / 100 != 2) {
                /* The write may or may not have happened; only a fresh read can tell. */
                forget_object(le);
                attempt_failed(le);
                return;
        }
        json_object *obj;
        le_record rec;
        if (parse_lease(r->body, r->body_len, &obj, &rec) < 0) {
                forget_object(le);
                attempt_failed(le);
                return;
        }
        observe(le, obj, &rec);
        attempt_succeeded(le);
}

/* The next step of a release: write it if the lease is ours as far as we know, else read. */
static void release_step(kube_leaderelect *le) {
        if (le->release_tries >= RELEASE_TRIES) {
                finish_stop(le);
                return;
        }
        le->release_tries++;
        if (!le->observed_obj) {
                if (send_request(le, OP_RELEASE_GET, KUBE_GET, le->object_path, NULL,
                                 le->renew_deadline) < 0)
                        finish_stop(le);
                return;
        }
        if (!streq(le->observed.holder, le->identity)) {
                /* Not ours (any more): nothing to give back. */
                finish_stop(le);
                return;
        }
        char now[TIMEFMT_RFC3339_MAX];
        now_micro(now, sizeof(now));
        _cleanup_free_ char *body = NULL;
        if (build_lease(le, le->observed_obj, "", 1, now, now, le->observed.transitions, &body) <
                0 ||
            send_request(le, OP_RELEASE, KUBE_PUT, le->object_path, body, le->renew_deadline) < 0)
                finish_stop(le);
}

/* Whatever fails here, we are done: an unreleased lease simply expires. */
static void handle_release(kube_leaderelect *le, le_op op, const kube_response *r) {
        json_object *obj;
        le_record rec;
        if (r->http_status == 409) {
                le->stats.conflicts++;
                forget_object(le);
                release_step(le);
                return;
        }
        if (r->error != 0 || r->http_status / 100 != 2 ||
            parse_lease(r->body, r->body_len, &obj, &rec) < 0) {
                finish_stop(le);
                return;
        }
        observe(le, obj, &rec);
        if (op == OP_RELEASE)
                finish_stop(le);
        else
                release_step(le);
}

static void on_response(kube_client *c, const kube_response *r, void *ud) {
        kube_leaderelect *le = ud;
        le_op op = le->op;
        le->req = NULL;
        le->op = OP_NONE;

        if (op == OP_RELEASE || op == OP_RELEASE_GET) {
                handle_release(le, op, r);
                return;
        }
        if (le->state != LE_CANDIDATE && le->state != LE_LEADER) return;
        if (op == OP_GET)
                handle_get(le, r);
        else if (op == OP_CREATE || op == OP_UPDATE)
                handle_write(le, r);
}

/* ---- public API ---- */

/* The Lease's namespace is a DNS label and its name a DNS subdomain, as the apiserver checks. */
static bool lease_ref_ok(const char *ns, const char *name) {
        return ns && name && dns_label_ok(ns, strlen(ns)) && dns_subdomain_ok(name, strlen(name));
}

int kube_leaderelect_new(kube_client *client, const kube_leaderelect_opts *opts,
                         const kube_leaderelect_callbacks *callbacks, void *userdata,
                         kube_leaderelect **ret) {
        if (!opts || !ret) return -EINVAL;
        if (!client && (!opts->transport || !opts->loop)) return -EINVAL;
        if (opts->transport && (!opts->transport->request || !opts->transport->cancel))
                return -EINVAL;
        if (!lease_ref_ok(opts->namespace, opts->name)) return -EINVAL;
        if (!opts->identity || !opts->identity[0] ||
            strlen(opts->identity) > KUBE_LEADERELECT_IDENTITY_MAX)
                return -EINVAL;
        double ld = opts->lease_duration ? opts->lease_duration : 15;
        double rd = opts->renew_deadline ? opts->renew_deadline : 10;
        double rp = opts->retry_period ? opts->retry_period : 2;
        if (!(rp > 0) || !(rd > JITTER_FACTOR * rp) || !(ld > rd) || ld > 86400) return -EINVAL;

        kube_leaderelect *le = calloc(1, sizeof(*le));
        if (!le) return -ENOMEM;
        le->client = client;
        le->loop = client && !opts->loop ? kube_client_loop(client) : opts->loop;
        if (opts->transport)
                le->transport = *opts->transport;
        else
                le->transport = (kube_leaderelect_transport){client_request, client_cancel, client};
        if (callbacks) le->cb = *callbacks;
        le->userdata = userdata;
        le->lease_duration = ld;
        le->renew_deadline = rd;
        le->retry_period = rp;
        le->namespace = strdup(opts->namespace);
        le->name = strdup(opts->name);
        le->identity = strdup(opts->identity);
        if (!le->loop || !le->namespace || !le->name || !le->identity ||
            kube_resource_path(&KUBE_RES_LEASES, opts->namespace, opts->name, NULL,
                               &le->object_path) < 0 ||
            kube_resource_path(&KUBE_RES_LEASES, opts->namespace, NULL, NULL,
                               &le->collection_path) < 0) {
                bool inval = !le->loop;
                kube_leaderelect_free(le);
                return inval ? -EINVAL : -ENOMEM;
        }
        ev_init(&le->retry_timer, on_retry);
        le->retry_timer.data = le;
        ev_init(&le->deadline_timer, on_deadline);
        /*
         * Before any I/O callback that became pending in the same loop iteration
         * (libev runs I/O before timers at equal priority): a late loop must not let
         * us act on a response after our deadline passed.
         */
        ev_set_priority(&le->deadline_timer, EV_MAXPRI);
        le->deadline_timer.data = le;
        ev_init(&le->done_timer, on_stop_done);
        le->done_timer.data = le;
        *ret = le;
        return 0;
}

kube_leaderelect *kube_leaderelect_free(kube_leaderelect *le) {
        if (!le) return NULL;
        cancel_request(le);
        if (le->loop) {
                ev_timer_stop(le->loop, &le->retry_timer);
                ev_timer_stop(le->loop, &le->deadline_timer);
                ev_timer_stop(le->loop, &le->done_timer);
        }
        record_done(&le->observed);
        json_object_put(le->observed_obj);
        free(le->reported_leader);
        free(le->namespace);
        free(le->name);
        free(le->identity);
        free(le->object_path);
        free(le->collection_path);
        free(le);
        return NULL;
}

int kube_leaderelect_start(kube_leaderelect *le) {
        if (!le) return -EINVAL;
        if (le->state != LE_STOPPED || ev_is_active(&le->done_timer)) return -EALREADY;
        le->state = LE_CANDIDATE;
        schedule_attempt(le, 0.);
        return 0;
}

int kube_leaderelect_stop(kube_leaderelect *le, void (*done)(kube_leaderelect *le, void *userdata),
                          void *userdata) {
        if (!le) return -EINVAL;
        if (le->state == LE_STOPPED || le->state == LE_RELEASING) return -EALREADY;
        bool was_leader = le->state == LE_LEADER;
        /* A write cut short may still have reached the server: our rv may be stale then. */
        bool write_cut = le->req && (le->op == OP_UPDATE || le->op == OP_CREATE);
        cancel_request(le);
        ev_timer_stop(le->loop, &le->retry_timer);
        ev_timer_stop(le->loop, &le->deadline_timer);
        le->stop_done = done;
        le->stop_userdata = userdata;
        if (!was_leader && !write_cut) {
                finish_stop(le);
                return 0;
        }
        /*
         * A candidate whose claim was cut short may hold the lease without knowing
         * it: it reads and releases too, so that nobody waits for it to expire.
         */
        le->state = LE_RELEASING;
        /* Writes stop before anyone else can take over: tell the owner first. */
        if (was_leader && le->cb.on_stopped_leading) le->cb.on_stopped_leading(le, le->userdata);

        if (write_cut) forget_object(le);
        le->release_tries = 0;
        release_step(le);
        return 0;
}

bool kube_leaderelect_is_leader(const kube_leaderelect *le) {
        return le && le->state == LE_LEADER;
}

const char *kube_leaderelect_holder(const kube_leaderelect *le) {
        return le && le->have_observed ? le->observed.holder : NULL;
}

const char *kube_leaderelect_identity(const kube_leaderelect *le) {
        return le ? le->identity : NULL;
}

void kube_leaderelect_get_stats(const kube_leaderelect *le, kube_leaderelect_stats *ret) {
        if (!ret) return;
        *ret = le ? le->stats : (kube_leaderelect_stats){0};
}

int kube_leaderelect_default_identity(char **ret) {
        char host[256] = "";
        if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
                snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = 0;
        unsigned char rnd[16];
        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
                /* Not fatal for uniqueness purposes: fall back on the process' generator. */
                for (size_t i = 0; i < sizeof(rnd); i++)
                        rnd[i] = (unsigned char)(kube_random() * 256);
        }
        char hex[33];
        for (size_t i = 0; i < sizeof(rnd); i++) snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
        char *s;
        if (asprintf(&s, "%s_%s", host, hex) < 0) return -ENOMEM;
        *ret = s;
        return 0;
}
