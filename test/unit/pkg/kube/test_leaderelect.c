/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Leader election against an in-memory Lease endpoint that behaves like
 * kube-apiserver's (404, create, 409 on a stale resourceVersion or an existing
 * object), reached through a fake transport that can be made to fail or to
 * hang per candidate. Time is real (short durations) on a real ev loop.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dlfcn.h>

/* Valgrind slows everything (TLS above all) several times: widen the timing slack there. */
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define TIME_SCALE (RUNNING_ON_VALGRIND ? 4.0 : 1.0)
#else
#define TIME_SCALE 1.0
#endif
#include <ev.h>
#include <json-c/json.h>

#include "kube/leaderelect.h"
#include "kube/ratelimit.h"
#include "util/macro.h"
#include "util/timefmt.h"

/* Short, but stretched under valgrind, whose first pass over any code path is slow. */
#define LD    (1.0 * TIME_SCALE)  /* lease duration */
#define RD    (0.6 * TIME_SCALE)  /* renew deadline */
#define RP    (0.1 * TIME_SCALE)  /* retry period */
#define SLACK (0.25 * TIME_SCALE) /* scheduling slack */

#define NS        "le-ns"
#define LEASE     "my-lease"
#define OBJ_PATH  "/apis/coordination.k8s.io/v1/namespaces/le-ns/leases/my-lease"
#define COLL_PATH "/apis/coordination.k8s.io/v1/namespaces/le-ns/leases"

/*
 * Allocation failures on demand, for the json-c calls that build a Lease body:
 * this binary's definitions take the place of json-c's for every caller linked
 * into it (the library is static) and fall through to json-c otherwise. Armed
 * per test: a string value, a key to add, or a number of int64 creations fail.
 */
static struct {
        const char *string;  /* json_object_new_string(string) returns NULL */
        const char *add_key; /* json_object_object_add(o, add_key, v) fails (v not taken) */
        bool int64;          /* json_object_new_int64() returns NULL */
        int count;           /* how many failures are left */
        int injected;        /* how many happened */
} fault;

static bool fault_take(void) {
        if (fault.count <= 0) return false;
        fault.count--;
        fault.injected++;
        return true;
}

json_object *json_object_new_string(const char *str) {
        static json_object *(*real)(const char *);
        if (!real) real = (json_object * (*)(const char *)) dlsym(RTLD_NEXT, __func__);
        if (fault.string && str && strcmp(str, fault.string) == 0 && fault_take()) return NULL;
        return real(str);
}

json_object *json_object_new_int64(int64_t i) {
        static json_object *(*real)(int64_t);
        if (!real) real = (json_object * (*)(int64_t)) dlsym(RTLD_NEXT, __func__);
        if (fault.int64 && fault_take()) return NULL;
        return real(i);
}

int json_object_object_add(json_object *obj, const char *key, json_object *val) {
        static int (*real)(json_object *, const char *, json_object *);
        if (!real)
                real =
                    (int (*)(json_object *, const char *, json_object *))dlsym(RTLD_NEXT, __func__);
        if (fault.add_key && key && strcmp(key, fault.add_key) == 0 && fault_take()) return -1;
        return real(obj, key, val);
}

/* ---- the fake apiserver ---- */

typedef struct fake_server {
        struct ev_loop *loop;
        json_object *lease; /* stored object, or NULL */
        long long rv;
        int gets, posts, puts;
        int conflict_next_puts; /* answer this many PUTs with 409 whatever they say */
        bool check_bodies;      /* answer 422 to a Lease body without every field we write */
        int bad_bodies;
} fake_server;

typedef enum tmode {
        T_OK,
        T_FAIL,           /* connection refused */
        T_HANG,           /* never answers */
        T_SWALLOW,        /* does what was asked, but the answer never arrives */
        T_SWALLOW_WRITES, /* the same for writes only */
} tmode;

typedef struct fake_transport {
        fake_server *srv;
        tmode mode;
        int requests, cancels, outstanding;
} fake_transport;

struct kube_request {
        ev_timer timer;
        fake_transport *ft;
        kube_method method;
        char *path;
        char *body;
        kube_response_cb on_done;
        void *userdata;
        bool swallowed;
};

static void req_free(kube_request *r) {
        r->ft->outstanding--;
        free(r->path);
        free(r->body);
        free(r);
}

static void set_rv(json_object *o, long long rv) {
        json_object *meta;
        if (!json_object_object_get_ex(o, "metadata", &meta)) {
                meta = json_object_new_object();
                json_object_object_add(o, "metadata", meta);
        }
        char buf[32];
        snprintf(buf, sizeof(buf), "%lld", rv);
        json_object_object_add(meta, "resourceVersion", json_object_new_string(buf));
}

static const char *rv_of(json_object *o) {
        json_object *meta, *v;
        if (!json_object_object_get_ex(o, "metadata", &meta)) return NULL;
        if (!json_object_object_get_ex(meta, "resourceVersion", &v)) return NULL;
        return json_object_get_string(v);
}

static void answer(kube_request *r, long status, int error, json_object *body) {
        const char *b = body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) : NULL;
        kube_response resp = {
            .http_status = status, .error = error, .body = b, .body_len = b ? strlen(b) : 0};
        if (r->ft->mode == T_SWALLOW ||
            (r->ft->mode == T_SWALLOW_WRITES && r->method != KUBE_GET)) {
                r->swallowed = true; /* freed when cancelled */
                return;
        }
        kube_response_cb cb = r->on_done;
        void *ud = r->userdata;
        req_free(r);
        cb(NULL, &resp, ud);
}

static bool member_is(json_object *o, const char *k, json_type t) {
        json_object *v;
        return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, t);
}

/* Whether a written Lease has every field the elector writes, with its type. */
static bool lease_complete(json_object *o) {
        json_object *md, *spec;
        return member_is(o, "apiVersion", json_type_string) &&
               member_is(o, "kind", json_type_string) &&
               json_object_object_get_ex(o, "metadata", &md) &&
               member_is(md, "name", json_type_string) &&
               member_is(md, "namespace", json_type_string) &&
               json_object_object_get_ex(o, "spec", &spec) &&
               member_is(spec, "holderIdentity", json_type_string) &&
               member_is(spec, "leaseDurationSeconds", json_type_int) &&
               member_is(spec, "acquireTime", json_type_string) &&
               member_is(spec, "renewTime", json_type_string) &&
               member_is(spec, "leaseTransitions", json_type_int);
}

static void serve(struct ev_loop *loop, ev_timer *w, int revents) {
        kube_request *r = w->data;
        fake_server *s = r->ft->srv;
        if (r->ft->mode == T_FAIL) {
                answer(r, 0, -ECONNREFUSED, NULL);
                return;
        }
        if (r->method == KUBE_GET && streq(r->path, OBJ_PATH)) {
                s->gets++;
                if (!s->lease) {
                        answer(r, 404, -ENOENT, NULL);
                        return;
                }
                answer(r, 200, 0, s->lease);
                return;
        }
        json_object *in = r->body ? json_tokener_parse(r->body) : NULL;
        assert_non_null(in);
        if (s->check_bodies && !lease_complete(in)) {
                s->bad_bodies++;
                json_object_put(in);
                answer(r, 422, -EINVAL, NULL);
                return;
        }
        if (r->method == KUBE_POST && streq(r->path, COLL_PATH)) {
                s->posts++;
                if (s->lease) {
                        json_object_put(in);
                        answer(r, 409, -EEXIST, NULL);
                        return;
                }
                set_rv(in, ++s->rv);
                s->lease = in;
                answer(r, 201, 0, s->lease);
                return;
        }
        if (r->method == KUBE_PUT && streq(r->path, OBJ_PATH)) {
                s->puts++;
                if (!s->lease) {
                        json_object_put(in);
                        answer(r, 404, -ENOENT, NULL);
                        return;
                }
                const char *want = rv_of(s->lease), *got = rv_of(in);
                if (s->conflict_next_puts > 0 || !got || !streq(want, got)) {
                        if (s->conflict_next_puts > 0) s->conflict_next_puts--;
                        json_object_put(in);
                        answer(r, 409, -ESTALE, NULL);
                        return;
                }
                set_rv(in, ++s->rv);
                json_object_put(s->lease);
                s->lease = in;
                answer(r, 200, 0, s->lease);
                return;
        }
        fail_msg("unexpected request %d %s", (int)r->method, r->path);
}

static int t_request(void *ctx, const kube_request_opts *o, kube_request **ret) {
        fake_transport *ft = ctx;
        assert_true(o->no_rate_limit);
        assert_true(o->timeout_ms > 0);
        kube_request *r = calloc(1, sizeof(*r));
        assert_non_null(r);
        r->ft = ft;
        r->method = o->method;
        r->path = strdup(o->path);
        r->body = o->body ? strndup(o->body, o->body_len) : NULL;
        r->on_done = o->on_done;
        r->userdata = o->userdata;
        ft->requests++;
        ft->outstanding++;
        ev_timer_init(&r->timer, serve, 0.002, 0.);
        r->timer.data = r;
        if (ft->mode != T_HANG) ev_timer_start(ft->srv->loop, &r->timer);
        *ret = r;
        return 0;
}

static void t_cancel(void *ctx, kube_request *r) {
        fake_transport *ft = ctx;
        ft->cancels++;
        ev_timer_stop(ft->srv->loop, &r->timer);
        req_free(r);
}

/* ---- candidates ---- */

typedef struct cand cand;
struct cand {
        const char *id;
        kube_leaderelect *le;
        fake_transport ft;
        kube_leaderelect_transport tr;
        double started_at, stopped_at;
        int n_started, n_stopped, n_done;
        char leaders[8][64];
        int n_leaders;
        cand **all; /* NULL-terminated, for the one-leader invariant */
        /* Checked inside on_stopped_leading during a graceful stop. */
        fake_server *srv;
        char holder_at_stop[64];
        bool stop_in_started;
        void (*stop_done)(kube_leaderelect *, void *);
};

static const char *lease_holder(fake_server *s);

static void on_started(kube_leaderelect *le, void *ud) {
        cand *c = ud;
        c->n_started++;
        c->started_at = kube_now();
        assert_true(kube_leaderelect_is_leader(le));
        /* Nobody else leads at the moment anyone starts leading. */
        for (cand **o = c->all; o && *o; o++)
                if (*o != c) assert_false(kube_leaderelect_is_leader((*o)->le));
        if (c->stop_in_started) assert_int_equal(kube_leaderelect_stop(le, c->stop_done, c), 0);
}

static void on_stopped(kube_leaderelect *le, void *ud) {
        cand *c = ud;
        c->n_stopped++;
        c->stopped_at = kube_now();
        assert_false(kube_leaderelect_is_leader(le));
        if (c->srv)
                snprintf(c->holder_at_stop, sizeof(c->holder_at_stop), "%s", lease_holder(c->srv));
}

static void on_new_leader(kube_leaderelect *le, const char *id, void *ud) {
        cand *c = ud;
        assert_true(c->n_leaders < 8);
        snprintf(c->leaders[c->n_leaders++], 64, "%s", id);
}

static const kube_leaderelect_callbacks callbacks = {
    .on_started_leading = on_started,
    .on_stopped_leading = on_stopped,
    .on_new_leader = on_new_leader,
};

static void cand_init(cand *c, const char *id, fake_server *srv, cand **all) {
        memset(c, 0, sizeof(*c));
        c->id = id;
        c->all = all;
        c->ft.srv = srv;
        c->tr = (kube_leaderelect_transport){t_request, t_cancel, &c->ft};
        kube_leaderelect_opts o = {
            .namespace = NS,
            .name = LEASE,
            .identity = id,
            .lease_duration = LD,
            .renew_deadline = RD,
            .retry_period = RP,
            .loop = srv->loop,
            .transport = &c->tr,
        };
        assert_int_equal(kube_leaderelect_new(NULL, &o, &callbacks, c, &c->le), 0);
}

static void cand_done(cand *c) {
        c->le = kube_leaderelect_free(c->le);
        assert_int_equal(c->ft.outstanding, 0);
}

static void on_stop_done(kube_leaderelect *le, void *ud) {
        cand *c = ud;
        c->n_done++;
}

/* ---- helpers ---- */

static json_object *spec_of(fake_server *s) {
        json_object *spec;
        assert_non_null(s->lease);
        assert_true(json_object_object_get_ex(s->lease, "spec", &spec));
        return spec;
}

static const char *spec_str(fake_server *s, const char *k) {
        json_object *v;
        if (!json_object_object_get_ex(spec_of(s), k, &v)) return NULL;
        return json_object_get_string(v);
}

static long long spec_int(fake_server *s, const char *k) {
        json_object *v;
        assert_true(json_object_object_get_ex(spec_of(s), k, &v));
        return json_object_get_int64(v);
}

static const char *lease_holder(fake_server *s) {
        if (!s->lease) return "(none)";
        const char *h = spec_str(s, "holderIdentity");
        return h ? h : "";
}

typedef bool (*cond_fn)(void *ud);

typedef struct waiter {
        cond_fn cond;
        void *ud;
        double deadline;
        bool met;
        ev_timer tick;
} waiter;

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents) {
        waiter *wt = w->data;
        if (wt->cond && wt->cond(wt->ud)) {
                wt->met = true;
                ev_break(loop, EVBREAK_ALL);
        } else if (kube_now() >= wt->deadline)
                ev_break(loop, EVBREAK_ALL);
}

/* Runs the loop until cond holds (true) or seconds pass (false); cond NULL just waits. */
static bool run_until(struct ev_loop *loop, cond_fn cond, void *ud, double seconds) {
        waiter wt = {.cond = cond, .ud = ud, .deadline = kube_now() + seconds};
        ev_timer_init(&wt.tick, on_tick, 0.002, 0.002);
        wt.tick.data = &wt;
        ev_timer_start(loop, &wt.tick);
        ev_run(loop, 0);
        ev_timer_stop(loop, &wt.tick);
        return wt.met;
}

static bool is_leader(void *ud) {
        return kube_leaderelect_is_leader(((cand *)ud)->le);
}

static bool is_not_leader(void *ud) {
        return !kube_leaderelect_is_leader(((cand *)ud)->le);
}

static bool stop_done(void *ud) {
        return ((cand *)ud)->n_done > 0;
}

typedef struct pair {
        cand *a, *b;
} pair;

static bool either_leads(void *ud) {
        pair *p = ud;
        return kube_leaderelect_is_leader(p->a->le) || kube_leaderelect_is_leader(p->b->le);
}

static fake_server *server_new(void) {
        fake_server *s = calloc(1, sizeof(*s));
        assert_non_null(s);
        s->loop = ev_loop_new(EVFLAG_AUTO);
        s->rv = 100;
        return s;
}

static void server_free(fake_server *s) {
        json_object_put(s->lease);
        ev_loop_destroy(s->loop);
        free(s);
}

/* Stores a lease held by someone else. */
static void seed_lease(fake_server *s, const char *holder, int duration, const char *renew,
                       int transitions) {
        json_object_put(s->lease);
        char buf[512];
        snprintf(buf, sizeof(buf),
                 "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
                 "\"metadata\":{\"name\":\"" LEASE "\",\"namespace\":\"" NS "\","
                 "\"labels\":{\"keep\":\"me\"}},"
                 "\"spec\":{\"holderIdentity\":\"%s\",\"leaseDurationSeconds\":%d,"
                 "\"acquireTime\":\"%s\",\"renewTime\":\"%s\",\"leaseTransitions\":%d}}",
                 holder, duration, renew, renew, transitions);
        s->lease = json_tokener_parse(buf);
        assert_non_null(s->lease);
        set_rv(s->lease, ++s->rv);
}

/* ---- tests ---- */

static void test_options(void **state) {
        fake_server *s = server_new();
        fake_transport ft = {.srv = s};
        kube_leaderelect_transport tr = {t_request, t_cancel, &ft};
        kube_leaderelect *le = NULL;
        kube_leaderelect_opts good = {
            .namespace = NS, .name = LEASE, .identity = "a", .loop = s->loop, .transport = &tr};
        assert_int_equal(kube_leaderelect_new(NULL, &good, NULL, NULL, &le), 0);
        le = kube_leaderelect_free(le);

        kube_leaderelect_opts o = good;
        o.transport = NULL;
        assert_int_equal(kube_leaderelect_new(NULL, &o, NULL, NULL, &le), -EINVAL);
        o = good;
        o.loop = NULL;
        assert_int_equal(kube_leaderelect_new(NULL, &o, NULL, NULL, &le), -EINVAL);
        o = good;
        o.identity = "";
        assert_int_equal(kube_leaderelect_new(NULL, &o, NULL, NULL, &le), -EINVAL);
        o = good;
        o.namespace = "Bad_NS";
        assert_int_equal(kube_leaderelect_new(NULL, &o, NULL, NULL, &le), -EINVAL);
        o = good;
        o.namespace = "a.b"; /* a subdomain, but namespaces are DNS labels */
        assert_int_equal(kube_leaderelect_new(NULL, &o, NULL, NULL, &le), -EINVAL);
        o = good;
        o.name = "lease.example-1"; /* Lease names are subdomains */
        assert_int_equal(kube_leaderelect_new(NULL, &o, NULL, NULL, &le), 0);
        le = kube_leaderelect_free(le);
        o = good;
        o.name = NULL;
        assert_int_equal(kube_leaderelect_new(NULL, &o, NULL, NULL, &le), -EINVAL);
        o = good;
        o.lease_duration = 10; /* = default renew deadline */
        assert_int_equal(kube_leaderelect_new(NULL, &o, NULL, NULL, &le), -EINVAL);
        o = good;
        o.renew_deadline = 2.4; /* = 1.2 * default retry period */
        assert_int_equal(kube_leaderelect_new(NULL, &o, NULL, NULL, &le), -EINVAL);
        o = good;
        o.retry_period = -1;
        assert_int_equal(kube_leaderelect_new(NULL, &o, NULL, NULL, &le), -EINVAL);
        char big[KUBE_LEADERELECT_IDENTITY_MAX + 2];
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        o = good;
        o.identity = big;
        assert_int_equal(kube_leaderelect_new(NULL, &o, NULL, NULL, &le), -EINVAL);
        assert_null(le);
        assert_null(kube_leaderelect_free(NULL));
        assert_false(kube_leaderelect_is_leader(NULL));
        server_free(s);
}

static void test_acquire_renew_release(void **state) {
        fake_server *s = server_new();
        cand a;
        cand *all[] = {&a, NULL};
        cand_init(&a, "alpha", s, all);
        assert_null(kube_leaderelect_holder(a.le));
        assert_int_equal(kube_leaderelect_start(a.le), 0);
        assert_int_equal(kube_leaderelect_start(a.le), -EALREADY);
        assert_true(run_until(s->loop, is_leader, &a, 1.0 * TIME_SCALE));
        assert_int_equal(a.n_started, 1);
        assert_int_equal(a.n_leaders, 1);
        assert_string_equal(a.leaders[0], "alpha");
        assert_string_equal(kube_leaderelect_holder(a.le), "alpha");

        /* Created from nothing. */
        assert_int_equal(s->posts, 1);
        assert_string_equal(lease_holder(s), "alpha");
        assert_int_equal(spec_int(s, "leaseDurationSeconds"), (long long)ceil(LD));
        assert_int_equal(spec_int(s, "leaseTransitions"), 0);
        char acquire[64], renew0[64];
        snprintf(acquire, sizeof(acquire), "%s", spec_str(s, "acquireTime"));
        snprintf(renew0, sizeof(renew0), "%s", spec_str(s, "renewTime"));
        struct timespec ta, tr;
        assert_int_equal(timefmt_parse_rfc3339(acquire, &ta), 0);
        assert_int_equal(timefmt_parse_rfc3339(renew0, &tr), 0);
        /* Equal when the creation counted at once; a slow answer costs one more round. */
        assert_true(ta.tv_sec < tr.tv_sec || (ta.tv_sec == tr.tv_sec && ta.tv_nsec <= tr.tv_nsec));
        assert_int_equal(strlen(acquire), strlen("2026-11-29T03:00:00.123456Z"));

        /* Renewals: renewTime moves, the rest stays; the leader writes without reading. */
        int gets = s->gets;
        run_until(s->loop, NULL, NULL, 5 * RP);
        assert_true(kube_leaderelect_is_leader(a.le));
        assert_true(s->puts >= 3);
        assert_int_equal(s->gets, gets);
        assert_string_not_equal(spec_str(s, "renewTime"), renew0);
        assert_string_equal(spec_str(s, "acquireTime"), acquire);
        assert_int_equal(spec_int(s, "leaseTransitions"), 0);
        assert_int_equal(a.n_started, 1);
        assert_int_equal(a.n_stopped, 0);

        /* Graceful stop: on_stopped_leading first, while the lease is still ours; then release. */
        a.srv = s;
        assert_int_equal(kube_leaderelect_stop(a.le, on_stop_done, &a), 0);
        assert_int_equal(a.n_stopped, 1);
        assert_string_equal(a.holder_at_stop, "alpha");
        assert_int_equal(a.n_done, 0); /* never from inside stop() */
        assert_int_equal(kube_leaderelect_stop(a.le, on_stop_done, &a), -EALREADY);
        assert_true(run_until(s->loop, stop_done, &a, 1.0 * TIME_SCALE));
        assert_int_equal(a.n_done, 1);
        assert_string_equal(lease_holder(s), "");
        assert_int_equal(spec_int(s, "leaseDurationSeconds"), 1);
        assert_int_equal(spec_int(s, "leaseTransitions"), 0);
        kube_leaderelect_stats st;
        kube_leaderelect_get_stats(a.le, &st);
        assert_int_equal(st.acquisitions, 1);
        assert_int_equal(st.losses, 0);
        assert_int_equal(st.creates, 1);
        cand_done(&a);
        server_free(s);
}

typedef struct puts_wait {
        fake_server *s;
        int n;
} puts_wait;

static bool puts_reached(void *ud) {
        puts_wait *p = ud;
        return p->s->puts >= p->n;
}

/*
 * A json-c allocation that fails while the Lease body is built fails the
 * attempt (retried) instead of sending a body with a null or missing field:
 * a claim without holderIdentity or renewTime would read as a free lease.
 */
static void test_lease_body_allocation_failures(void **state) {
        static const struct {
                const char *string, *add_key;
                bool int64;
                bool renewal; /* fail while renewing rather than creating */
        } cases[] = {
            {.string = "alpha"},
            {.string = "coordination.k8s.io/v1"},
            {.string = "Lease"},
            {.string = LEASE},
            {.string = NS},
            {.int64 = true},
            {.add_key = "renewTime"},
            {.add_key = "metadata"},
            {.add_key = "holderIdentity"},
            {.string = "alpha", .renewal = true},
            {.int64 = true, .renewal = true},
            {.add_key = "leaseTransitions", .renewal = true},
        };
        int bad = 0;
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                fake_server *s = server_new();
                s->check_bodies = true;
                cand a;
                cand *all[] = {&a, NULL};
                cand_init(&a, "alpha", s, all);
                fault = (typeof(fault)){.string = cases[i].string,
                                        .add_key = cases[i].add_key,
                                        .int64 = cases[i].int64,
                                        .count = cases[i].renewal ? 0 : 1};
                assert_int_equal(kube_leaderelect_start(a.le), 0);
                if (cases[i].renewal) {
                        assert_true(run_until(s->loop, is_leader, &a, 1.0 * TIME_SCALE));
                        fault.count = 1;
                        /* The failed renewal is retried after the retry period. */
                        puts_wait pw = {s, s->puts + 2};
                        assert_true(run_until(s->loop, puts_reached, &pw, 1.0 * TIME_SCALE));
                        assert_true(kube_leaderelect_is_leader(a.le));
                } else
                        assert_true(run_until(s->loop, is_leader, &a, 1.0 * TIME_SCALE));
                if (fault.injected != 1) fail_msg("case %zu: no failure injected", i);
                if (s->bad_bodies != 0) {
                        print_message("case %zu (%s%s%s): %d incomplete Lease bodies sent\n", i,
                                      cases[i].string ? cases[i].string : "",
                                      cases[i].add_key ? cases[i].add_key : "",
                                      cases[i].int64 ? "int64" : "", s->bad_bodies);
                        bad++;
                }
                assert_string_equal(lease_holder(s), "alpha");
                kube_leaderelect_stats st;
                kube_leaderelect_get_stats(a.le, &st);
                assert_true(st.failures >= 1);
                fault = (typeof(fault)){};
                cand_done(&a);
                server_free(s);
        }
        assert_int_equal(bad, 0);
}

static void test_two_candidates_handover(void **state) {
        fake_server *s = server_new();
        cand a, b;
        cand *all[] = {&a, &b, NULL};
        cand_init(&a, "alpha", s, all);
        cand_init(&b, "beta", s, all);
        assert_int_equal(kube_leaderelect_start(a.le), 0);
        assert_int_equal(kube_leaderelect_start(b.le), 0);
        pair p = {&a, &b};
        assert_true(run_until(s->loop, either_leads, &p, 1.0 * TIME_SCALE));
        run_until(s->loop, NULL, NULL, 2 * LD); /* well past a lease duration */
        cand *leader = kube_leaderelect_is_leader(a.le) ? &a : &b;
        cand *other = leader == &a ? &b : &a;
        assert_true(kube_leaderelect_is_leader(leader->le));
        assert_false(kube_leaderelect_is_leader(other->le));
        assert_int_equal(leader->n_started, 1);
        assert_int_equal(other->n_started, 0);
        assert_string_equal(kube_leaderelect_holder(other->le), leader->id);
        assert_true(other->n_leaders >= 1);
        assert_string_equal(other->leaders[0], leader->id);

        /* The leader leaves: the other takes over at its next attempt, not after LD. */
        leader->srv = s;
        double t0 = kube_now();
        assert_int_equal(kube_leaderelect_stop(leader->le, on_stop_done, leader), 0);
        assert_string_equal(leader->holder_at_stop, leader->id);
        assert_true(run_until(s->loop, is_leader, other, 2 * LD));
        double took = other->started_at - t0;
        assert_true(took < RP * 2.2 + SLACK);
        assert_true(took < LD);
        assert_int_equal(leader->n_done, 1);
        assert_string_equal(lease_holder(s), other->id);
        assert_int_equal(spec_int(s, "leaseTransitions"), 1);
        assert_string_equal(other->leaders[other->n_leaders - 1], other->id);
        cand_done(&a);
        cand_done(&b);
        server_free(s);
}

/* The leader's requests fail (mode FAIL) or hang (mode HANG): it must step down in time. */
static void lost_renewals(tmode mode) {
        fake_server *s = server_new();
        cand a, b;
        cand *all[] = {&a, &b, NULL};
        cand_init(&a, "alpha", s, all);
        cand_init(&b, "beta", s, all);
        assert_int_equal(kube_leaderelect_start(a.le), 0);
        assert_true(run_until(s->loop, is_leader, &a, 1.0 * TIME_SCALE));
        assert_int_equal(kube_leaderelect_start(b.le), 0);
        run_until(s->loop, NULL, NULL, 3 * RP);
        assert_false(kube_leaderelect_is_leader(b.le));

        double t0 = kube_now();
        a.ft.mode = mode;
        assert_true(run_until(s->loop, is_not_leader, &a, RD + RP + SLACK));
        double stop = a.stopped_at - t0;
        /* The last good renewal was sent at most one period before t0. */
        assert_true(stop >= RD - RP - SLACK);
        assert_true(stop <= RD + SLACK);
        assert_int_equal(a.n_stopped, 1);
        assert_false(kube_leaderelect_is_leader(b.le));

        /* The other takes over once the lease ran out by its own clock, after A stopped. */
        assert_true(run_until(s->loop, is_leader, &b, LD + 3 * RP + SLACK));
        assert_true(b.started_at > a.stopped_at);
        assert_true(b.started_at - t0 >= LD - RP - SLACK);
        assert_string_equal(lease_holder(s), "beta");
        assert_int_equal(spec_int(s, "leaseTransitions"), 1);
        if (mode == T_HANG) assert_true(a.ft.cancels >= 1);
        kube_leaderelect_stats st;
        kube_leaderelect_get_stats(a.le, &st);
        assert_int_equal(st.losses, 1);
        assert_true(st.failures >= 1);
        cand_done(&a);
        cand_done(&b);
        server_free(s);
}

static void test_renew_fails(void **state) {
        lost_renewals(T_FAIL);
}

static void test_renew_hangs(void **state) {
        lost_renewals(T_HANG);
}

/*
 * A lease whose renewTime lies far in the future (a skewed clock elsewhere) is
 * still taken over LD after we last saw it change: server time is never trusted.
 */
static void test_expired_foreign_lease(void **state) {
        fake_server *s = server_new();
        seed_lease(s, "ghost", 1, "2099-01-01T00:00:00.000000Z", 7);
        cand a;
        cand *all[] = {&a, NULL};
        cand_init(&a, "alpha", s, all);
        double t0 = kube_now();
        assert_int_equal(kube_leaderelect_start(a.le), 0);
        assert_true(run_until(s->loop, is_leader, &a, LD + 3 * RP + SLACK));
        double took = a.started_at - t0;
        assert_true(took >= 1.0);
        assert_true(took <= 1.0 + RP * 2.2 + SLACK);
        assert_int_equal(a.n_leaders, 2);
        assert_string_equal(a.leaders[0], "ghost");
        assert_string_equal(a.leaders[1], "alpha");
        assert_int_equal(spec_int(s, "leaseTransitions"), 8);
        assert_string_not_equal(spec_str(s, "acquireTime"), "2099-01-01T00:00:00.000000Z");
        /* Labels of the object survive our writes. */
        json_object *meta, *labels, *v;
        assert_true(json_object_object_get_ex(s->lease, "metadata", &meta));
        assert_true(json_object_object_get_ex(meta, "labels", &labels));
        assert_true(json_object_object_get_ex(labels, "keep", &v));
        cand_done(&a);
        server_free(s);
}

typedef struct ghost {
        fake_server *s;
        ev_timer t;
        int renewals;
} ghost;

static void ghost_renew(struct ev_loop *loop, ev_timer *w, int revents) {
        ghost *g = w->data;
        char now[64];
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        timefmt_rfc3339_micro(&ts, now, sizeof(now));
        json_object_object_add(spec_of(g->s), "renewTime", json_object_new_string(now));
        set_rv(g->s->lease, ++g->s->rv);
        g->renewals++;
}

static void test_live_foreign_lease(void **state) {
        fake_server *s = server_new();
        seed_lease(s, "ghost", 1, "2020-01-01T00:00:00.000000Z", 0);
        ghost g = {.s = s};
        ev_timer_init(&g.t, ghost_renew, 0.2, 0.2);
        g.t.data = &g;
        ev_timer_start(s->loop, &g.t);
        cand a;
        cand *all[] = {&a, NULL};
        cand_init(&a, "alpha", s, all);
        assert_int_equal(kube_leaderelect_start(a.le), 0);
        /* While the holder keeps renewing, nobody takes over, however old its timestamps. */
        assert_false(run_until(s->loop, is_leader, &a, 3 * LD));
        assert_true(g.renewals >= 10);
        assert_string_equal(lease_holder(s), "ghost");
        assert_int_equal(s->puts, 0);
        /* It stops renewing: we take over about LD later. */
        ev_timer_stop(s->loop, &g.t);
        double t0 = kube_now();
        assert_true(run_until(s->loop, is_leader, &a, LD + 3 * RP + SLACK));
        assert_true(a.started_at - t0 >= 1.0 - 0.2 - 0.05); /* the ghost's own duration */
        cand_done(&a);
        server_free(s);
}

static void test_conflicts(void **state) {
        fake_server *s = server_new();
        seed_lease(s, "", 1, "2020-01-01T00:00:00.000000Z", 3);
        s->conflict_next_puts = 2;
        cand a;
        cand *all[] = {&a, NULL};
        cand_init(&a, "alpha", s, all);
        assert_int_equal(kube_leaderelect_start(a.le), 0);
        assert_true(run_until(s->loop, is_leader, &a, 2.0 * TIME_SCALE));
        kube_leaderelect_stats st;
        kube_leaderelect_get_stats(a.le, &st);
        assert_int_equal(st.conflicts, 2);
        assert_true(st.gets >= 3); /* each conflict made it read again */
        assert_int_equal(spec_int(s, "leaseTransitions"), 4);

        /* A conflict while leading: re-read, and carry on leading if the lease is still ours. */
        s->conflict_next_puts = 1;
        run_until(s->loop, NULL, NULL, 4 * RP);
        kube_leaderelect_get_stats(a.le, &st);
        assert_int_equal(st.conflicts, 3);
        assert_true(kube_leaderelect_is_leader(a.le));
        assert_int_equal(a.n_stopped, 0);
        cand_done(&a);
        server_free(s);
}

/* Someone overwrote our lease: the leader steps down at its next attempt, not at the deadline. */
static void test_taken_over(void **state) {
        fake_server *s = server_new();
        cand a;
        cand *all[] = {&a, NULL};
        cand_init(&a, "alpha", s, all);
        assert_int_equal(kube_leaderelect_start(a.le), 0);
        assert_true(run_until(s->loop, is_leader, &a, 1.0 * TIME_SCALE));
        double t0 = kube_now();
        seed_lease(s, "intruder", 30, "2020-01-01T00:00:00.000000Z", 9);
        assert_true(run_until(s->loop, is_not_leader, &a, RD));
        assert_true(a.stopped_at - t0 < 2 * RP + SLACK);
        assert_string_equal(a.leaders[a.n_leaders - 1], "intruder");
        /* And does not take it back while it is held. */
        assert_false(run_until(s->loop, is_leader, &a, 1.0));
        assert_string_equal(lease_holder(s), "intruder");
        cand_done(&a);
        server_free(s);
}

static bool server_put_count_above(void *ud) {
        fake_server *s = ((cand *)ud)->ft.srv;
        return s->puts > ((cand *)ud)->n_done; /* n_done holds the threshold here */
}

/*
 * A renewal reached the server but its answer never came back, and then we
 * stop: the release must not trip over the resourceVersion that changed.
 */
static void test_release_after_cut_write(void **state) {
        fake_server *s = server_new();
        cand a;
        cand *all[] = {&a, NULL};
        cand_init(&a, "alpha", s, all);
        assert_int_equal(kube_leaderelect_start(a.le), 0);
        assert_true(run_until(s->loop, is_leader, &a, 1.0 * TIME_SCALE));
        a.ft.mode = T_SWALLOW;
        a.n_done = s->puts;
        assert_true(run_until(s->loop, server_put_count_above, &a, 1.0 * TIME_SCALE));
        a.n_done = 0;
        a.ft.mode = T_OK;
        assert_true(kube_leaderelect_is_leader(a.le));
        assert_int_equal(a.ft.outstanding, 1);
        assert_int_equal(kube_leaderelect_stop(a.le, on_stop_done, &a), 0);
        assert_int_equal(a.ft.outstanding, 1); /* the swallowed one was cancelled, a GET went out */
        assert_true(run_until(s->loop, stop_done, &a, 1.0 * TIME_SCALE));
        assert_string_equal(lease_holder(s), "");
        assert_int_equal(spec_int(s, "leaseDurationSeconds"), 1);
        kube_leaderelect_stats st;
        kube_leaderelect_get_stats(a.le, &st);
        assert_int_equal(st.conflicts, 0);
        cand_done(&a);
        server_free(s);
}

/* A candidate whose claim got through unanswered gives the lease back when stopped. */
static void test_candidate_cut_claim_released(void **state) {
        fake_server *s = server_new();
        cand a;
        cand *all[] = {&a, NULL};
        cand_init(&a, "alpha", s, all);
        a.ft.mode = T_SWALLOW_WRITES;
        assert_int_equal(kube_leaderelect_start(a.le), 0);
        run_until(s->loop, NULL, NULL, 3 * RP);
        assert_int_equal(s->posts, 1);
        assert_string_equal(lease_holder(s), "alpha");
        assert_false(kube_leaderelect_is_leader(a.le));
        assert_int_equal(a.ft.outstanding, 1);
        a.ft.mode = T_OK;
        assert_int_equal(kube_leaderelect_stop(a.le, on_stop_done, &a), 0);
        assert_true(run_until(s->loop, stop_done, &a, 1.0 * TIME_SCALE));
        assert_int_equal(a.n_started, 0);
        assert_int_equal(a.n_stopped, 0);
        assert_string_equal(lease_holder(s), "");
        cand_done(&a);
        server_free(s);
}

static void test_stop_candidate_and_restart(void **state) {
        fake_server *s = server_new();
        seed_lease(s, "ghost", 30, "2020-01-01T00:00:00.000000Z", 0);
        cand a;
        cand *all[] = {&a, NULL};
        cand_init(&a, "alpha", s, all);
        assert_int_equal(kube_leaderelect_stop(a.le, NULL, NULL), -EALREADY);
        assert_int_equal(kube_leaderelect_start(a.le), 0);
        run_until(s->loop, NULL, NULL, 3 * RP);
        assert_int_equal(kube_leaderelect_stop(a.le, on_stop_done, &a), 0);
        assert_int_equal(a.n_done, 0);
        assert_true(run_until(s->loop, stop_done, &a, 1.0 * TIME_SCALE));
        assert_int_equal(a.n_stopped, 0); /* it never led */
        assert_int_equal(s->puts, 0);     /* and never wrote */
        int reqs = a.ft.requests;
        run_until(s->loop, NULL, NULL, 3 * RP);
        assert_int_equal(a.ft.requests, reqs); /* really stopped */
        /* Started again, it campaigns again. */
        seed_lease(s, "", 1, "2020-01-01T00:00:00.000000Z", 0);
        assert_int_equal(kube_leaderelect_start(a.le), 0);
        assert_true(run_until(s->loop, is_leader, &a, 1.0 * TIME_SCALE));
        cand_done(&a);
        server_free(s);
}

static void free_in_done(kube_leaderelect *le, void *ud) {
        cand *c = ud;
        c->n_done++;
        c->le = kube_leaderelect_free(le);
}

static void test_stop_from_callback(void **state) {
        fake_server *s = server_new();
        cand a;
        cand *all[] = {&a, NULL};
        cand_init(&a, "alpha", s, all);
        a.stop_in_started = true;
        a.stop_done = free_in_done;
        assert_int_equal(kube_leaderelect_start(a.le), 0);
        assert_true(run_until(s->loop, stop_done, &a, 1.0 * TIME_SCALE));
        assert_int_equal(a.n_started, 1);
        assert_int_equal(a.n_stopped, 1);
        assert_null(a.le);
        assert_string_equal(lease_holder(s), "");
        assert_int_equal(a.ft.outstanding, 0);
        server_free(s);
}

static void test_default_identity(void **state) {
        char *a = NULL, *b = NULL;
        assert_int_equal(kube_leaderelect_default_identity(&a), 0);
        assert_int_equal(kube_leaderelect_default_identity(&b), 0);
        assert_string_not_equal(a, b);
        const char *us = strrchr(a, '_');
        assert_non_null(us);
        assert_int_equal(strlen(us + 1), 32);
        assert_int_equal(strspn(us + 1, "0123456789abcdef"), 32);
        assert_true(us > a);
        free(a);
        free(b);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_options),
            cmocka_unit_test(test_acquire_renew_release),
            cmocka_unit_test(test_two_candidates_handover),
            cmocka_unit_test(test_renew_fails),
            cmocka_unit_test(test_renew_hangs),
            cmocka_unit_test(test_expired_foreign_lease),
            cmocka_unit_test(test_live_foreign_lease),
            cmocka_unit_test(test_conflicts),
            cmocka_unit_test(test_taken_over),
            cmocka_unit_test(test_release_after_cut_write),
            cmocka_unit_test(test_candidate_cut_claim_released),
            cmocka_unit_test(test_stop_candidate_and_restart),
            cmocka_unit_test(test_stop_from_callback),
            cmocka_unit_test(test_default_identity),
            cmocka_unit_test(test_lease_body_allocation_failures),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
