/* SPDX-License-Identifier: Apache-2.0 */
/*
 * High availability as the Deployment runs it (2 replicas, --leader-elect), with two real
 * controller processes in-cluster as the controller's service account:
 *
 *  - only the leader writes: the follower reconciles nothing, writes nothing, reports
 *    leader_election_master_status 0, and a new policy is handled by the leader alone;
 *  - kill -9 of the leader: the follower takes over once the Lease expires (not before:
 *    no split brain) and converges a policy created after the kill; the time from the kill
 *    to the new policy's Ready=True is printed, with short lease settings and with the
 *    defaults (15s/10s/2s);
 *  - SIGTERM: the leader releases the Lease, the follower takes over at once;
 *  - a leader cut off from the apiserver (through a TCP fault proxy that stalls its
 *    connections and refuses new ones) stops leading and exits non-zero before its lease
 *    could expire, so two leaders never write at the same time.
 *
 * Each test starts its own pair with a Lease name of its own, and stops it at the end.
 */
#include "prod.h"

#include <signal.h>

#include "faultproxy.h"

#define SHORT_LEASE   6.0
#define SHORT_RENEW   4.0
#define SHORT_RETRY   1.0
#define DEFAULT_LEASE 15.0
#define DEFAULT_RENEW 10.0
#define DEFAULT_RETRY 2.0

typedef struct ctl {
        tproc p;
        bool running;
        char *name; /* log name and POD_NAME */
        char *log;
} ctl;

static struct {
        char *prefix;
        char *home, *subj;
        incluster *ic;
        ctl c[3];
        faultproxy *proxy;
        unsigned counter;
        char summary[4096];
} S;

static int group_setup(void **state) {
        if (testenv_group_setup(state) < 0) return -1;
        if (prod_install(NULL) != 0) return -1;
        S.prefix = testenv_unique_name("prod-fo");
        if (!S.prefix) return -1;
        S.home = prod_namespace(S.prefix, "home", NULL);
        S.subj = prod_namespace(S.prefix, "subj", NULL);
        if (!S.home || !S.subj) return -1;
        int r = incluster_new(PROD_NS, PROD_SA, NULL, "1h", &S.ic);
        if (r < 0) {
                fprintf(stderr, "cannot lay out the in-cluster identity (%d)\n", r);
                return -1;
        }
        return 0;
}

static void ctl_stop(ctl *c) {
        if (c->running) {
                int st = tproc_stop(&c->p, 30);
                if (st != 0)
                        fprintf(stderr, "%s exited with status %d (log %s)\n", c->name, st, c->log);
        }
        c->running = false;
        free(c->name);
        free(c->log);
        c->name = c->log = NULL;
}

/* Per test: whatever a failed assertion left running. */
static int test_teardown(void **state) {
        for (size_t i = 0; i < ARRAY_SIZE(S.c); i++) ctl_stop(&S.c[i]);
        S.proxy = faultproxy_stop(S.proxy);
        return 0;
}

static int group_teardown(void **state) {
        /* a controller to finish the finalizers of what a failed test left */
        if (S.prefix && S.ic) {
                char lease[256];
                snprintf(lease, sizeof(lease), "--leader-election-id=%s-cleanup", S.prefix);
                const char *extra[] = {"--leader-elect", lease, NULL};
                tproc p = {0};
                incluster_controller_opts o = {.wait_ready = true};
                bool up = incluster_start_controller(&p, S.ic, "prod-failover-cleanup", &o, extra,
                                                     PROD_READY_S) == 0;
                prod_cleanup_policies(S.prefix, up);
                if (p.pid > 0) tproc_stop(&p, 30);
        }
        if (S.prefix) prod_delete_namespaces(S.prefix);
        if (S.prefix) prod_delete_leases(S.prefix);
        if (S.summary[0]) printf("\nfailover summary\n%s", S.summary);
        S.ic = incluster_free(S.ic);
        free(S.prefix);
        free(S.home);
        free(S.subj);
        return 0;
}

/* ---- controllers ----------------------------------------------------------------------------- */

/* Starts controller i of a pair sharing Lease `lease` with the given timings. */
static void ctl_start(size_t i, const char *tag, const char *lease, double ld, double rd, double rp,
                      int service_port) {
        ctl *c = &S.c[i];
        assert_true(asprintf(&c->name, "prod-failover-%s-%c", tag, (char)('a' + i)) > 0);
        c->log = incluster_log_path(c->name);
        assert_non_null(c->log);
        unlink(c->log);
        char f_id[256], f_ld[64], f_rd[64], f_rp[64];
        snprintf(f_id, sizeof(f_id), "--leader-election-id=%s", lease);
        snprintf(f_ld, sizeof(f_ld), "--lease-duration=%gs", ld);
        snprintf(f_rd, sizeof(f_rd), "--renew-deadline=%gs", rd);
        snprintf(f_rp, sizeof(f_rp), "--retry-period=%gs", rp);
        const char *extra[] = {"--leader-elect", f_id, f_ld, f_rd, f_rp, NULL};
        incluster_controller_opts o = {
            .pod_name = c->name, .wait_ready = true, .service_port = service_port};
        int r = incluster_start_controller(&c->p, S.ic, c->name, &o, extra, PROD_READY_S);
        if (r < 0) fprintf(stderr, "%s did not start (%d); see %s\n", c->name, r, c->log);
        if (r == -ETIMEDOUT) c->running = true; /* stopped by the teardown */
        assert_int_equal(r, 0);
        c->running = true;
}

static double leader_metric(const ctl *c, const char *lease) {
        char filter[256];
        snprintf(filter, sizeof(filter), "name=\"%s\"", lease);
        return prod_metric(&c->p, "leader_election_master_status", filter);
}

typedef struct leader_wait {
        const ctl *c;
        const char *lease;
} leader_wait;

static int leader_cond(void *ud) {
        leader_wait *w = ud;
        return leader_metric(w->c, w->lease) == 1;
}

/* Waits until c reports leadership; the seconds it took, or -1. */
static double wait_leader(const ctl *c, const char *lease, double timeout_s) {
        leader_wait w = {c, lease};
        double t0 = kt_now();
        if (testenv_wait_until(leader_cond, &w, timeout_s) < 0) {
                fprintf(stderr, "%s did not become leader of %s in %.0f s\n", c->name, lease,
                        timeout_s);
                return -1;
        }
        return kt_now() - t0;
}

/* The Lease's holder, malloc'd, or NULL. */
static char *lease_holder(const char *lease) {
        return kt_kout("get lease -n " PROD_NS " '%s' -o 'jsonpath={.spec.holderIdentity}'", lease);
}

/* The identity c logged when it became leader, malloc'd, or NULL. */
static char *logged_identity(const ctl *c) {
        FILE *f = fopen(c->log, "r");
        if (!f) return NULL;
        char *line = NULL, *id = NULL;
        size_t cap = 0;
        while (!id && getline(&line, &cap, f) > 0) {
                if (!strstr(line, "\"msg\":\"became leader\"")) continue;
                json_object *o = json_tokener_parse(line);
                const char *s = kt_jstr(o, "identity");
                if (s) id = strdup(s);
                json_object_put(o);
        }
        free(line);
        fclose(f);
        return id;
}

static double total(const ctl *c, const char *metric) {
        return prod_metric(&c->p, metric, NULL);
}

static void make_policy(const char *name) {
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata: {name: %s, namespace: %s}\n"
                 "spec:\n  subjects: {namespaces: [%s]}\n  imagePuller: {}\n",
                 name, S.home, S.subj);
}

static void remove_policy(const char *name) {
        kt_kubectl("delete pullpolicy.pullpolicy.io -n '%s' '%s' --timeout=60s >/dev/null 2>&1",
                   S.home, name);
}

static char *unique(const char *what) {
        char *s = NULL;
        assert_true(asprintf(&s, "%s-%s%u", S.prefix, what, S.counter++) > 0);
        return s;
}

static void summary(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void summary(const char *fmt, ...) {
        size_t n = strlen(S.summary);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(S.summary + n, sizeof(S.summary) - n, fmt, ap);
        va_end(ap);
        printf("%s", S.summary + n);
}

/* Starts a (leader) then b (follower) on a new Lease; returns the lease name. */
static char *start_pair(const char *tag, double ld, double rd, double rp) {
        char *lease = unique(tag);
        ctl_start(0, tag, lease, ld, rd, rp, 0);
        assert_true(wait_leader(&S.c[0], lease, PROD_WAIT_S) >= 0);
        ctl_start(1, tag, lease, ld, rd, rp, 0);
        return lease;
}

/* ---- tests ------------------------------------------------------------------------------------
 */

static void test_only_the_leader_writes(void **state) {
        char *lease = start_pair("solo", SHORT_LEASE, SHORT_RENEW, SHORT_RETRY);
        ctl *a = &S.c[0], *b = &S.c[1];
        /* b has synced its caches (ready) and stands by */
        kt_sleep(3 * SHORT_RETRY);
        assert_true(leader_metric(a, lease) == 1);
        double bm = leader_metric(b, lease);
        char filter[256];
        snprintf(filter, sizeof(filter), "name=\"%s\"", lease);
        char *scrape = prod_scrape(&b->p);
        assert_non_null(scrape);
        double v = 0;
        int series = testenv_metric_sum(scrape, "leader_election_master_status", filter, &v);
        free(scrape);
        printf("follower: leader_election_master_status %s (%s)\n", bm == 0 ? "0" : "not 0",
               series > 0 ? "series present" : "no series: 0 by absence");
        assert_true(bm == 0);

        char *holder = lease_holder(lease), *ida = logged_identity(a);
        assert_non_null(holder);
        assert_non_null(ida);
        assert_string_equal(holder, ida);
        free(holder);
        free(ida);

        double wa = total(a, "pullpolicy_writes_total");
        char *pol = unique("solo-pol");
        make_policy(pol);
        assert_true(prod_wait_ready(S.home, pol, "True", "Applied", PROD_WAIT_S) >= 0);
        kt_sleep(1.0);
        assert_true(total(a, "pullpolicy_writes_total") > wa);
        assert_true(total(a, "controller_runtime_reconcile_total") > 0);
        /* the follower: no reconcile, no write, not a line about it */
        assert_true(total(b, "pullpolicy_writes_total") == 0);
        assert_true(total(b, "controller_runtime_reconcile_total") == 0);
        assert_int_equal(prod_log_grep(b->log, "\"msg\":\"reconciled\"", true), 0);
        assert_int_equal(prod_log_grep(b->log, "\"msg\":\"became leader\"", true), 0);
        /* the events about the policy come from the leader's instance only */
        json_object *ev = kt_kjson("get events -n '%s' -o json", S.home);
        json_object *items = kt_jget(ev, "items");
        int from_a = 0, from_b = 0;
        for (size_t i = 0; items && i < json_object_array_length(items); i++) {
                json_object *e = json_object_array_get_idx(items, i);
                const char *n = kt_jstr(e, "involvedObject.name");
                const char *inst = kt_jstr(e, "reportingInstance");
                if (!n || !inst || !streq(n, pol)) continue;
                if (streq(inst, a->name)) from_a++;
                if (streq(inst, b->name)) from_b++;
        }
        json_object_put(ev);
        printf("events about %s: %d from the leader, %d from the follower\n", pol, from_a, from_b);
        assert_true(from_a > 0);
        assert_int_equal(from_b, 0);
        remove_policy(pol);
        free(pol);
        free(lease);
}

/*
 * kill -9 the leader, create a policy: the follower must wait for the Lease to expire
 * (lower bound: lease_duration less what it may have seen late: a retry period of its own
 * and one of the leader's renewals) and then converge it.
 */
static void kill9(const char *tag, double ld, double rd, double rp) {
        char *lease = start_pair(tag, ld, rd, rp);
        ctl *a = &S.c[0], *b = &S.c[1];
        kt_sleep(2 * rp); /* b has seen a renewal */
        char *pol = unique("k9-pol");

        double t0 = kt_now();
        assert_int_equal(tproc_signal(&a->p, SIGKILL), 0);
        assert_int_equal(tproc_reap(&a->p), 128 + SIGKILL);
        a->running = false;
        make_policy(pol);
        double takeover = wait_leader(b, lease, ld + 4 * rp + PROD_WAIT_S);
        assert_true(takeover >= 0);
        takeover = kt_now() - t0;
        assert_true(prod_wait_ready(S.home, pol, "True", "Applied", PROD_WAIT_S) >= 0);
        double ready = kt_now() - t0;
        summary("kill -9 (lease %gs, renew %gs, retry %gs): new leader after %.2f s, "
                "new policy Ready=True %.2f s after the kill\n",
                ld, rd, rp, takeover, ready);
        /* not before the lease could have expired: one leader at a time */
        assert_true(takeover >= ld - 2 * rp - 0.5);
        /* and not much later than it expired */
        assert_true(takeover <= ld + 3 * rp + 10.0);
        char *holder = lease_holder(lease), *idb = logged_identity(b);
        assert_non_null(holder);
        assert_non_null(idb);
        assert_string_equal(holder, idb);
        free(holder);
        free(idb);
        assert_true(total(b, "pullpolicy_writes_total") > 0);
        remove_policy(pol);
        free(pol);
        free(lease);
}

static void test_kill9_failover_short_lease(void **state) {
        kill9("k9s", SHORT_LEASE, SHORT_RENEW, SHORT_RETRY);
}

static void test_kill9_failover_default_lease(void **state) {
        kill9("k9d", DEFAULT_LEASE, DEFAULT_RENEW, DEFAULT_RETRY);
}

/* SIGTERM: the leader releases the Lease; the follower takes it at its next retry. */
static void test_sigterm_releases_lease(void **state) {
        char *lease = start_pair("term", DEFAULT_LEASE, DEFAULT_RENEW, DEFAULT_RETRY);
        ctl *a = &S.c[0], *b = &S.c[1];
        kt_sleep(2 * DEFAULT_RETRY);
        char *pol = unique("term-pol");

        double t0 = kt_now();
        int st = tproc_stop(&a->p, 30);
        a->running = false;
        double stopped = kt_now() - t0;
        assert_int_equal(st, 0);
        make_policy(pol);
        assert_true(wait_leader(b, lease, DEFAULT_LEASE + PROD_WAIT_S) >= 0);
        double takeover = kt_now() - t0;
        assert_true(prod_wait_ready(S.home, pol, "True", "Applied", PROD_WAIT_S) >= 0);
        double ready = kt_now() - t0;
        summary("SIGTERM (lease %gs, retry %gs): leader exited 0 in %.2f s, new leader after "
                "%.2f s, new policy Ready=True %.2f s after the signal\n",
                DEFAULT_LEASE, DEFAULT_RETRY, stopped, takeover, ready);
        /* released: far sooner than the 15 s a dead leader's lease takes to expire */
        assert_true(takeover < DEFAULT_LEASE / 2);
        remove_policy(pol);
        free(pol);
        free(lease);
}

/*
 * The leader talks to the apiserver through a proxy, which is cut: open connections stall,
 * new ones are closed at once. It must stop leading (and, as with controller-runtime, exit
 * non-zero) within renew_deadline of its last renewal, which is before any other replica
 * may take the Lease (lease_duration after it saw that renewal).
 */
static void test_partitioned_leader_exits(void **state) {
        const char *tag = "cut";
        char *lease = unique(tag);
        int r = faultproxy_start("127.0.0.1", S.ic->apiserver_port, &S.proxy);
        assert_int_equal(r, 0);
        ctl_start(0, tag, lease, SHORT_LEASE, SHORT_RENEW, SHORT_RETRY, faultproxy_port(S.proxy));
        assert_true(wait_leader(&S.c[0], lease, PROD_WAIT_S) >= 0);
        ctl_start(1, tag, lease, SHORT_LEASE, SHORT_RENEW, SHORT_RETRY, 0);
        ctl *a = &S.c[0], *b = &S.c[1];
        kt_sleep(2 * SHORT_RETRY);
        assert_true(leader_metric(a, lease) == 1);

        double t0 = kt_now();
        faultproxy_refuse(S.proxy, true);
        int stalled = faultproxy_stall(S.proxy, true);
        printf("cut: %d connection(s) stalled, new ones refused\n", stalled);
        assert_true(stalled > 0);

        int status = -1;
        double exited = -1;
        while (kt_now() - t0 < SHORT_LEASE + 30) {
                int ws;
                pid_t w = waitpid(a->p.pid, &ws, WNOHANG);
                if (w == a->p.pid) {
                        exited = kt_now() - t0;
                        status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
                        a->p.pid = 0;
                        free(a->p.log_path);
                        a->p.log_path = NULL;
                        a->running = false;
                        break;
                }
                kt_sleep(0.02);
        }
        summary("partitioned leader (lease %gs, renew %gs): exited with status %d %.2f s after "
                "the cut\n",
                SHORT_LEASE, SHORT_RENEW, status, exited);
        assert_true(exited >= 0);
        assert_int_not_equal(status, 0);
        assert_true(exited < SHORT_LEASE);
        assert_true(prod_log_grep(S.c[0].log, "leadership lost", false) > 0);

        /* the other replica takes over and works */
        char *pol = unique("cut-pol");
        make_policy(pol);
        assert_true(wait_leader(b, lease, SHORT_LEASE + PROD_WAIT_S) >= 0);
        double takeover = kt_now() - t0;
        assert_true(prod_wait_ready(S.home, pol, "True", "Applied", PROD_WAIT_S) >= 0);
        summary("  the other replica led %.2f s after the cut; new policy Ready=True %.2f s "
                "after the cut\n",
                takeover, kt_now() - t0);
        remove_policy(pol);
        free(pol);
        free(lease);
}

int main(void) {
        prod_test_filter();
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_teardown(test_only_the_leader_writes, test_teardown),
            cmocka_unit_test_teardown(test_kill9_failover_short_lease, test_teardown),
            cmocka_unit_test_teardown(test_kill9_failover_default_lease, test_teardown),
            cmocka_unit_test_teardown(test_sigterm_releases_lease, test_teardown),
            cmocka_unit_test_teardown(test_partitioned_leader_exits, test_teardown),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
