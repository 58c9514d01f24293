/* SPDX-License-Identifier: Apache-2.0 */
/*
 * controller/credentials: rounds of handshakes run off the loop (a fake handshake here:
 * the real one is tested against a real registry in test/integration/pkg/registry), the
 * condition they make, when a policy is verified again, and the bound on concurrency.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "credentials.h"

static atomic_int in_flight, max_in_flight;
static int results_seen;

static int fake_verify(const registry_verify_opts *o, const char *key, const char *user,
                       const char *pass, registry_outcome *ret, char **detail) {
        int now = atomic_fetch_add(&in_flight, 1) + 1;
        int m = atomic_load(&max_in_flight);
        while (now > m && !atomic_compare_exchange_weak(&max_in_flight, &m, now)) {
        }
        usleep(20000);
        atomic_fetch_sub(&in_flight, 1);
        if (strncmp(key, "down", 4) == 0) {
                *ret = REGISTRY_UNREACHABLE;
                *detail = strdup("connection refused");
        } else if (strcmp(pass, "good") == 0) {
                *ret = REGISTRY_VERIFIED;
                *detail = strdup("accepted");
        } else {
                *ret = REGISTRY_REJECTED;
                *detail = strdup("HTTP 401");
        }
        return 0;
}

static void on_result(void *ud, const char *key) {
        results_seen++;
}

static void tick(struct ev_loop *loop, ev_timer *w, int revents) {}

/* Runs the loop until on_result was called `want` times in all, or 10 s. */
static void run_until(struct ev_loop *loop, int want) {
        ev_timer t;
        ev_timer_init(&t, tick, 0.01, 0.01);
        ev_timer_start(loop, &t);
        ev_tstamp end = ev_time() + 10;
        while (results_seen < want && ev_time() < end) ev_run(loop, EVRUN_ONCE);
        ev_timer_stop(loop, &t);
        assert_int_equal(results_seen, want);
}

static void add(registry_authfile *f, const char *secret, const char *registry, const char *pass) {
        char json[512];
        snprintf(json, sizeof(json),
                 "{\"auths\":{\"%s\":{\"username\":\"u\",\"password\":\"%s\"}}}", registry, pass);
        assert_int_equal(
            registry_authfile_add(f, "kubernetes.io/dockerconfigjson", json, strlen(json), secret),
            1);
}

static pp_creds *make(struct ev_loop *loop, unsigned conc, double interval) {
        pp_creds_opts o = {.verify_fn = fake_verify,
                           .concurrency = conc,
                           .interval = interval,
                           .on_result = on_result};
        pp_creds *c = NULL;
        assert_int_equal(pp_creds_new(loop, &o, &c), 0);
        results_seen = 0;
        atomic_store(&max_in_flight, 0);
        return c;
}

static void test_verified_async(void **state) {
        struct ev_loop *loop = ev_loop_new(0);
        pp_creds *c = make(loop, 2, 3600);
        registry_authfile f = {0};
        add(&f, "ns/a", "quay.io", "good");
        add(&f, "ns/b", "ghcr.io", "good");
        assert_int_equal(pp_creds_check(c, "ns/p", &f), 1);
        /* the check returned before any handshake ended: the loop is never blocked */
        pp_creds_condition cond;
        assert_true(pp_creds_get(c, "ns/p", &cond));
        assert_string_equal(cond.status, "Unknown");
        assert_string_equal(cond.reason, "Verifying");
        run_until(loop, 1);
        assert_true(pp_creds_get(c, "ns/p", &cond));
        assert_string_equal(cond.status, "True");
        assert_string_equal(cond.reason, "Verified");
        assert_non_null(strstr(cond.message, "secret ns/a at registry quay.io"));
        assert_non_null(strstr(cond.message, "secret ns/b at registry ghcr.io"));
        assert_true(cond.last_transition[0]);
        assert_false(pp_creds_get(c, "ns/other", &cond));
        registry_authfile_done(&f);
        pp_creds_free(c);
        ev_loop_destroy(loop);
}

static void test_rejected_and_unreachable(void **state) {
        struct ev_loop *loop = ev_loop_new(0);
        pp_creds *c = make(loop, 2, 3600);
        registry_authfile f = {0};
        add(&f, "ns/ok", "quay.io", "good");
        add(&f, "ns/bad", "r2.example", "wrong-secret-word");
        add(&f, "ns/far", "down.example", "good");
        assert_int_equal(pp_creds_check(c, "ns/p", &f), 1);
        run_until(loop, 1);
        pp_creds_condition cond;
        assert_true(pp_creds_get(c, "ns/p", &cond));
        /* a refusal outranks an unreachable registry: it is the one a user can fix */
        assert_string_equal(cond.status, "False");
        assert_string_equal(cond.reason, "CredentialsRejected");
        assert_non_null(strstr(cond.message, "secret ns/bad at registry r2.example: HTTP 401"));
        assert_null(strstr(cond.message, "wrong-secret-word"));
        assert_null(strstr(cond.message, "ns/ok"));
        registry_authfile_done(&f);

        registry_authfile g = {0};
        add(&g, "ns/far", "down.example", "good");
        assert_int_equal(pp_creds_check(c, "ns/p", &g), 1); /* changed: verified again */
        run_until(loop, 2);
        assert_true(pp_creds_get(c, "ns/p", &cond));
        assert_string_equal(cond.reason, "RegistryUnreachable");
        assert_non_null(strstr(cond.message, "down.example: connection refused"));
        registry_authfile_done(&g);
        pp_creds_free(c);
        ev_loop_destroy(loop);
}

static void test_again_on_change_only(void **state) {
        struct ev_loop *loop = ev_loop_new(0);
        pp_creds *c = make(loop, 1, 3600);
        registry_authfile f = {0};
        add(&f, "ns/a", "quay.io", "good");
        assert_int_equal(pp_creds_check(c, "ns/p", &f), 1);
        assert_int_equal(pp_creds_check(c, "ns/p", &f), 0); /* in flight */
        run_until(loop, 1);
        assert_int_equal(pp_creds_check(c, "ns/p", &f), 0); /* same credentials */
        assert_int_equal(pp_creds_handshakes(c), 1);
        registry_authfile_done(&f);
        add(&f, "ns/a", "quay.io", "rotated");
        assert_int_equal(pp_creds_check(c, "ns/p", &f), 1); /* the secret changed */
        run_until(loop, 2);
        pp_creds_condition cond;
        assert_true(pp_creds_get(c, "ns/p", &cond));
        assert_string_equal(cond.reason, "CredentialsRejected");
        assert_int_equal(pp_creds_handshakes(c), 2);
        /* forgotten: nothing left */
        pp_creds_forget(c, "ns/p");
        assert_false(pp_creds_get(c, "ns/p", &cond));
        registry_authfile_done(&f);
        pp_creds_free(c);
        ev_loop_destroy(loop);
}

static void test_interval(void **state) {
        struct ev_loop *loop = ev_loop_new(0);
        pp_creds *c = make(loop, 1, 1.0);
        registry_authfile f = {0};
        add(&f, "ns/a", "quay.io", "good");
        assert_int_equal(pp_creds_check(c, "ns/p", &f), 1);
        run_until(loop, 1);
        /* the timer hands the policy back once the interval passed ... */
        run_until(loop, 2);
        /* ... and then the same credentials are verified again */
        ev_now_update(loop);
        assert_int_equal(pp_creds_check(c, "ns/p", &f), 1);
        run_until(loop, 3);
        assert_int_equal(pp_creds_handshakes(c), 2);
        registry_authfile_done(&f);
        pp_creds_free(c);
        ev_loop_destroy(loop);
}

static void test_concurrency_bound(void **state) {
        struct ev_loop *loop = ev_loop_new(0);
        pp_creds *c = make(loop, 2, 3600);
        registry_authfile f = {0};
        for (int i = 0; i < 8; i++) {
                char reg[64], sec[64];
                snprintf(reg, sizeof(reg), "r%d.example", i);
                snprintf(sec, sizeof(sec), "ns/s%d", i);
                add(&f, sec, reg, "good");
        }
        assert_int_equal(pp_creds_check(c, "ns/p", &f), 1);
        run_until(loop, 1);
        fprintf(stderr, "  at most %d handshakes at once (bound 2)\n", atomic_load(&max_in_flight));
        assert_true(atomic_load(&max_in_flight) <= 2);
        assert_int_equal(pp_creds_handshakes(c), 8);
        registry_authfile_done(&f);
        /* no credential at all: settled at once, without a handshake, and neither verdict */
        assert_int_equal(pp_creds_check(c, "ns/empty", &f), 1);
        pp_creds_condition cond;
        assert_true(pp_creds_get(c, "ns/empty", &cond));
        assert_string_equal(cond.status, "Unknown");
        assert_string_equal(cond.reason, "NoCredentials");
        pp_creds_free(c);
        pp_creds_free(NULL);
        ev_loop_destroy(loop);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_verified_async),
            cmocka_unit_test(test_rejected_and_unreachable),
            cmocka_unit_test(test_again_on_change_only),
            cmocka_unit_test(test_interval),
            cmocka_unit_test(test_concurrency_bound),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
