/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Leader election against the real kube-apiserver of hack/testenv.sh: two
 * electors on one loop, each with its own kube_client. Exactly one leads; a
 * released lease passes to the other at once; a leader whose requests go to a
 * dead port (a second client built from the same kubeconfig with the server's
 * port swapped for a closed one) steps down within its renew deadline, before
 * the other can take over.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* Valgrind slows everything (TLS above all) several times: widen the timing slack there. */
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define TIME_SCALE (RUNNING_ON_VALGRIND ? 4.0 : 1.0)
#else
#define TIME_SCALE 1.0
#endif

#include <arpa/inet.h>
#include <ev.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kube/client.h"
#include "kube/leaderelect.h"
#include "kube/ratelimit.h"
#include "testenv.h"
#include "util/macro.h"

/* Whole seconds for the Lease; the rest as short as the apiserver comfortably allows. */
/* Under valgrind a TLS request alone can take seconds: everything stretches with TIME_SCALE. */
#define LD    (4.0 * TIME_SCALE)
#define RD    (3.0 * TIME_SCALE)
#define RP    (0.25 * TIME_SCALE)
#define SLACK (0.5 * TIME_SCALE)
#define NS    "default"

static struct ev_loop *loop;
static kube_config *cfg, *dead_cfg;
static char dead_kubeconfig[64];

/* Routes an elector's requests to the live client, or, once poisoned, to the dead one. */
typedef struct switch_transport {
        kube_client *live;
        kube_client *dead;
        bool poisoned;
        unsigned long dead_requests;
} switch_transport;

static int sw_request(void *ctx, const kube_request_opts *o, kube_request **ret) {
        switch_transport *t = ctx;
        if (t->poisoned) t->dead_requests++;
        return kube_client_request(t->poisoned ? t->dead : t->live, o, ret);
}

static void sw_cancel(void *ctx, kube_request *r) {
        kube_request_cancel(r);
}

typedef struct cand {
        const char *id;
        kube_leaderelect *le;
        switch_transport sw;
        kube_leaderelect_transport tr;
        double started_at, stopped_at;
        int n_started, n_stopped, n_done;
        struct cand *other;
} cand;

static void on_started(kube_leaderelect *le, void *ud) {
        cand *c = ud;
        c->n_started++;
        c->started_at = kube_now();
        kube_leaderelect_stats st;
        kube_leaderelect_get_stats(c->other->le, &st);
        print_message("%.3f %s started leading (other: leader=%d losses=%lu)\n", c->started_at,
                      c->id, kube_leaderelect_is_leader(c->other->le), st.losses);
        /* The invariant: nobody else leads when anyone starts to. */
        assert_false(kube_leaderelect_is_leader(c->other->le));
}

static void on_stopped(kube_leaderelect *le, void *ud) {
        cand *c = ud;
        c->n_stopped++;
        c->stopped_at = kube_now();
        print_message("%.3f %s stopped leading\n", c->stopped_at, c->id);
}

static void on_done(kube_leaderelect *le, void *ud) {
        ((cand *)ud)->n_done++;
}

static const kube_leaderelect_callbacks cbs = {
    .on_started_leading = on_started,
    .on_stopped_leading = on_stopped,
};

static void cand_init(cand *c, const char *id, const char *lease, cand *other) {
        memset(c, 0, sizeof(*c));
        c->id = id;
        c->other = other;
        assert_int_equal(kube_client_new(loop, cfg, NULL, &c->sw.live), 0);
        assert_int_equal(kube_client_new(loop, dead_cfg, NULL, &c->sw.dead), 0);
        c->tr = (kube_leaderelect_transport){sw_request, sw_cancel, &c->sw};
        kube_leaderelect_opts o = {
            .namespace = NS,
            .name = lease,
            .identity = id,
            .lease_duration = LD,
            .renew_deadline = RD,
            .retry_period = RP,
            .loop = loop,
            .transport = &c->tr,
        };
        assert_int_equal(kube_leaderelect_new(NULL, &o, &cbs, c, &c->le), 0);
}

static void cand_done(cand *c) {
        c->le = kube_leaderelect_free(c->le);
        c->sw.live = kube_client_free(c->sw.live);
        c->sw.dead = kube_client_free(c->sw.dead);
}

/* The candidates live here so that a failed test's teardown can still free them. */
static cand A, B;

static int test_teardown(void **state) {
        cand_done(&A);
        cand_done(&B);
        return 0;
}

/* ---- running the loop ---- */

typedef bool (*cond_fn)(void *ud);
typedef struct waiter {
        cond_fn cond;
        void *ud;
        double deadline;
        bool met;
} waiter;

static void on_tick(struct ev_loop *l, ev_timer *w, int revents) {
        waiter *wt = w->data;
        if (wt->cond && wt->cond(wt->ud)) {
                wt->met = true;
                ev_break(l, EVBREAK_ALL);
        } else if (kube_now() >= wt->deadline)
                ev_break(l, EVBREAK_ALL);
}

static bool run_until(cond_fn cond, void *ud, double seconds) {
        waiter wt = {.cond = cond, .ud = ud, .deadline = kube_now() + seconds};
        ev_timer t;
        ev_timer_init(&t, on_tick, 0.005, 0.005);
        t.data = &wt;
        ev_timer_start(loop, &t);
        ev_run(loop, 0);
        ev_timer_stop(loop, &t);
        return wt.met;
}

static bool is_leader(void *ud) {
        return kube_leaderelect_is_leader(((cand *)ud)->le);
}
static bool is_not_leader(void *ud) {
        return !kube_leaderelect_is_leader(((cand *)ud)->le);
}
static bool done(void *ud) {
        return ((cand *)ud)->n_done > 0;
}
typedef struct pair {
        cand *a, *b;
} pair;
static bool either(void *ud) {
        pair *p = ud;
        return is_leader(p->a) || is_leader(p->b);
}

/* ---- reading the Lease from the server ---- */

typedef struct got {
        bool done;
        long http;
        json_object *obj;
} got;

static void on_get(kube_client *c, const kube_response *r, void *ud) {
        got *g = ud;
        g->done = true;
        g->http = r->http_status;
        if (r->error == 0 && r->body) g->obj = json_tokener_parse(r->body);
}

static bool got_done(void *ud) {
        return ((got *)ud)->done;
}

/* The server's holderIdentity and leaseTransitions of a lease. */
static void read_lease(const char *name, char *holder, size_t n, long long *transitions) {
        kube_client *c;
        assert_int_equal(kube_client_new(loop, cfg, NULL, &c), 0);
        char path[256];
        snprintf(path, sizeof(path), "/apis/coordination.k8s.io/v1/namespaces/" NS "/leases/%s",
                 name);
        got g = {0};
        kube_request_opts o = {.method = KUBE_GET, .path = path, .on_done = on_get, .userdata = &g};
        assert_int_equal(kube_client_request(c, &o, NULL), 0);
        assert_true(run_until(got_done, &g, 30 * TIME_SCALE));
        assert_int_equal(g.http, 200);
        assert_non_null(g.obj);
        json_object *spec, *v;
        assert_true(json_object_object_get_ex(g.obj, "spec", &spec));
        holder[0] = 0;
        if (json_object_object_get_ex(spec, "holderIdentity", &v))
                snprintf(holder, n, "%s", json_object_get_string(v));
        *transitions =
            json_object_object_get_ex(spec, "leaseTransitions", &v) ? json_object_get_int64(v) : 0;
        json_object_put(g.obj);
        kube_client_free(c);
}

/* ---- tests ---- */

static void test_one_leader_and_handover(void **state) {
        _cleanup_free_ char *lease = testenv_unique_name("le-handover");
        cand_init(&A, "alpha", lease, &B);
        cand_init(&B, "beta", lease, &A);
        assert_int_equal(kube_leaderelect_start(A.le), 0);
        assert_int_equal(kube_leaderelect_start(B.le), 0);
        pair p = {&A, &B};
        assert_true(run_until(either, &p, 30 * TIME_SCALE));
        run_until(NULL, NULL, 2 * LD);
        cand *leader = is_leader(&A) ? &A : &B, *other = leader == &A ? &B : &A;
        assert_true(is_leader(leader));
        assert_false(is_leader(other));
        assert_int_equal(leader->n_started, 1);
        assert_int_equal(other->n_started, 0);
        assert_string_equal(kube_leaderelect_holder(other->le), leader->id);

        char holder[128];
        long long transitions;
        read_lease(lease, holder, sizeof(holder), &transitions);
        assert_string_equal(holder, leader->id);
        assert_int_equal(transitions, 0);

        /* Graceful release: the other takes over at its next attempt, well before LD. */
        double t0 = kube_now();
        assert_int_equal(kube_leaderelect_stop(leader->le, on_done, leader), 0);
        assert_int_equal(leader->n_stopped, 1);
        assert_true(run_until(is_leader, other, 2 * LD));
        double took = other->started_at - t0;
        print_message("handover took %.3f s\n", took);
        /* Without the release the other would wait for the lease to expire (at least
         * LD after the last renewal it saw): taking over sooner proves the release. */
        assert_true(took < LD - RP);
        assert_true(run_until(done, leader, 5 * TIME_SCALE));
        read_lease(lease, holder, sizeof(holder), &transitions);
        assert_string_equal(holder, other->id);
        assert_int_equal(transitions, 1);

        /* And the new leader keeps it. */
        run_until(NULL, NULL, LD);
        assert_true(is_leader(other));
        assert_int_equal(other->n_stopped, 0);
        cand_done(&A);
        cand_done(&B);
}

static void test_dead_port_steps_down(void **state) {
        _cleanup_free_ char *lease = testenv_unique_name("le-deadport");
        cand_init(&A, "alpha", lease, &B);
        cand_init(&B, "beta", lease, &A);
        assert_int_equal(kube_leaderelect_start(A.le), 0);
        assert_true(run_until(is_leader, &A, 30 * TIME_SCALE));
        assert_int_equal(kube_leaderelect_start(B.le), 0);
        run_until(NULL, NULL, 4 * RP);
        assert_false(is_leader(&B));

        double t0 = kube_now();
        A.sw.poisoned = true;
        assert_true(run_until(is_not_leader, &A, RD + SLACK));
        double stop = A.stopped_at - t0;
        print_message("leader stepped down %.3f s after losing the apiserver\n", stop);
        assert_true(A.sw.dead_requests >= 1);
        assert_true(stop <= RD + SLACK);
        assert_true(stop >= RD - RP - SLACK);
        assert_false(is_leader(&B));

        assert_true(run_until(is_leader, &B, LD + 3 * RP + 2 * SLACK));
        double took = B.started_at - t0;
        print_message("other took over %.3f s after the leader lost the apiserver\n", took);
        assert_true(B.started_at > A.stopped_at);
        assert_true(took >= LD - RP - SLACK);
        char holder[128];
        long long transitions;
        read_lease(lease, holder, sizeof(holder), &transitions);
        assert_string_equal(holder, "beta");
        assert_int_equal(transitions, 1);

        /* Healed, the old leader stays a follower while the new one renews. */
        A.sw.poisoned = false;
        run_until(NULL, NULL, LD + 2 * RP);
        assert_false(is_leader(&A));
        assert_true(is_leader(&B));
        cand_done(&A);
        cand_done(&B);
}

/* A kubeconfig like the admin one, with the server's port replaced by a closed one. */
static int write_dead_kubeconfig(void) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t sl = sizeof(sa);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
                return -1;
        close(fd); /* nothing listens there now: connection refused */

        FILE *in = fopen(testenv_kubeconfig(), "r");
        if (!in) return -1;
        char *text = NULL;
        size_t cap = 0;
        ssize_t n = getdelim(&text, &cap, '\0', in);
        fclose(in);
        if (n <= 0) return -1;
        const char *server = testenv_server();
        char *at = server ? strstr(text, server) : NULL;
        if (!at) {
                free(text);
                return -1;
        }
        strcpy(dead_kubeconfig, "/tmp/le-dead-kubeconfig-XXXXXX");
        int out = mkstemp(dead_kubeconfig);
        FILE *f = out >= 0 ? fdopen(out, "w") : NULL;
        if (!f) {
                free(text);
                return -1;
        }
        fprintf(f, "%.*shttps://127.0.0.1:%u%s", (int)(at - text), text, ntohs(sa.sin_port),
                at + strlen(server));
        fclose(f);
        free(text);
        return 0;
}

static int group_setup(void **state) {
        if (testenv_group_setup(state) < 0) return -1;
        loop = ev_loop_new(EVFLAG_AUTO);
        char *err = NULL;
        if (kube_config_load_kubeconfig(testenv_kubeconfig(), NULL, &cfg, &err) < 0) {
                fprintf(stderr, "kubeconfig: %s\n", err);
                free(err);
                return -1;
        }
        if (write_dead_kubeconfig() < 0) {
                fprintf(stderr, "could not write the dead-port kubeconfig\n");
                return -1;
        }
        if (kube_config_load_kubeconfig(dead_kubeconfig, NULL, &dead_cfg, &err) < 0) {
                fprintf(stderr, "dead kubeconfig: %s\n", err);
                free(err);
                return -1;
        }
        return 0;
}

static int group_teardown(void **state) {
        if (dead_kubeconfig[0]) unlink(dead_kubeconfig);
        kube_config_free(dead_cfg);
        kube_config_free(cfg);
        if (loop) ev_loop_destroy(loop);
        return 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_teardown(test_one_leader_and_handover, test_teardown),
            cmocka_unit_test_teardown(test_dead_port_steps_down, test_teardown),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
