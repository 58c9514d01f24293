/* SPDX-License-Identifier: Apache-2.0 */
/*
 * e2e: R10 idempotence. On a converged cluster — RoleBindings (group and service-account
 * subjects), links in the home and in another namespace (with copies), a mount link, a
 * merged global pull secret entry, a policy steady in SecretNotFound, a wait: Never policy,
 * policies steady in Conflict, in Waiting (no dockercfg secret ever comes) and after a
 * DockercfgTimeout — a controller start, resyncs and watch reconnects make ZERO writes.
 *
 * Counting: the apiserver's apiserver_request_total for verbs POST, PUT, PATCH, DELETE on
 * serviceaccounts, rolebindings, secrets, pullpolicies (status included) and events,
 * snapshotted once the cluster is quiet with the controller stopped, and again after the
 * restarted controller is ready and has settled. Events count as writes too: a restarted
 * controller that re-announces (Linked, RoleBindingCreated, ...) what was already done
 * floods `kubectl describe` and event sinks, so R10 is read as including them. The
 * controller's own pullpolicy_writes_total must stay at zero as well (it attributes the
 * writes; the apiserver's counters cannot tell who wrote).
 *
 * The restarted controller runs with --resync-period=10s (the shortest it accepts) and the
 * settling window is 13 s, so it also holds a resync of every policy. A second test restarts the
 * apiserver (the controller's watches reconnect; the apiserver's counters restart from zero) and
 * checks the same.
 */
#include "e2e.h"

#define SETTLE_S 13.0
#define QUIET_S  2.0

static const char *const verbs[] = {"POST", "PUT", "PATCH", "DELETE"};
static const char *const resources[] = {"serviceaccounts", "rolebindings", "secrets",
                                        "pullpolicies", "events"};
#define N_V ARRAY_SIZE(verbs)
#define N_R ARRAY_SIZE(resources)

typedef struct counts {
        double v[N_V][N_R];
} counts;

static void snapshot(counts *c) {
        for (size_t i = 0; i < N_V; i++)
                for (size_t j = 0; j < N_R; j++) {
                        char f[256];
                        snprintf(f, sizeof(f), "verb=\"%s\",resource=\"%s\"", verbs[i],
                                 resources[j]);
                        assert_true(testenv_apiserver_metric("apiserver_request_total", f,
                                                             &c->v[i][j]) >= 0);
                }
}

/* Prints the deltas (every verb and resource); returns their sum. */
static double delta(const counts *a, const counts *b, const char *what) {
        double sum = 0;
        fprintf(stderr, "%s:\n", what);
        for (size_t j = 0; j < N_R; j++) {
                fprintf(stderr, "  %-16s", resources[j]);
                for (size_t i = 0; i < N_V; i++) {
                        double d = b->v[i][j] - a->v[i][j];
                        sum += d;
                        fprintf(stderr, " %s=%.0f", verbs[i], d);
                }
                fprintf(stderr, "\n");
        }
        fprintf(stderr, "  total %.0f writes\n", sum);
        return sum;
}

/* Waits until two snapshots QUIET_S apart are equal (no writer at work); returns the last. */
static void wait_quiet(counts *ret) {
        counts a, b;
        snapshot(&a);
        for (int i = 0; i < 30; i++) {
                kt_sleep(QUIET_S);
                snapshot(&b);
                if (memcmp(&a, &b, sizeof(a)) == 0) {
                        *ret = b;
                        return;
                }
                delta(&a, &b, "cluster not quiet yet");
                a = b;
        }
        fail_msg("the cluster never went quiet");
}

/* The controller's pullpolicy_writes_total (all labels), or -1. */
static double controller_writes(void) {
        char *body = NULL;
        long code = 0;
        double v = -1;
        if (tproc_http_get(E2E.controller.metrics_port, "/metrics", &code, &body) == 0 &&
            code == 200 && body)
                if (testenv_metric_sum(body, "pullpolicy_writes_total", NULL, &v) < 0) v = -1;
        free(body);
        return v;
}

static char *home, *ns_a, *ns_b, *registry;
/* unserved by the provisioner: an account waits there, another timed out */
static char *ns_wait;

static void policy(const char *name, const char *spec) {
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: %s\n  namespace: %s\nspec:\n%s",
                 name, home, spec);
}

/* Builds (idempotently) the converged world and waits until it is. */
static void converge(void) {
        char spec[1024];
        e2e_pull_secret(home, "creds", "registry.restart.example.com", "rs");
        e2e_pull_secret(home, "mnt", "mount.restart.example.com", "rs");
        e2e_pull_secret(home, "partner", registry, "partner");
        if (kt_kubectl("get sa builder -n '%s' >/dev/null 2>&1", home) != 0)
                e2e_sa_create(home, "builder");
        if (kt_kubectl("get sa builder -n '%s' >/dev/null 2>&1", ns_a) != 0)
                e2e_sa_create(ns_a, "builder");

        snprintf(spec, sizeof(spec), "  subjects:\n    namespaces: [%s, %s]\n  imagePuller: {}\n",
                 ns_a, ns_b);
        policy("bind-group", spec);
        snprintf(spec, sizeof(spec),
                 "  subjects:\n    namespaces: [%s]\n"
                 "    serviceAccounts: [default, builder]\n  imagePuller: {}\n",
                 ns_a);
        policy("bind-sas", spec);
        snprintf(spec, sizeof(spec),
                 "  subjects:\n    namespaces: [%s, %s]\n"
                 "  pullSecrets:\n  - name: creds\n  - name: mnt\n    for: [pull, mount]\n",
                 home, ns_a);
        policy("links", spec);
        policy("global",
               "  subjects:\n    serviceAccounts: [default]\n"
               "  pullSecrets:\n  - name: partner\n  globalPullSecret:\n    merge: true\n");
        policy("missing", "  pullSecrets:\n  - name: does-not-exist\n");
        policy("never", "  subjects:\n    serviceAccounts: [builder]\n"
                        "  pullSecrets:\n  - name: creds\n  dockercfg:\n    wait: Never\n");

        /* a foreign secret in a subject namespace: Conflict, steady */
        if (kt_kubectl("get secret clash -n '%s' >/dev/null 2>&1", ns_b) != 0)
                e2e_pull_secret(ns_b, "clash", "registry.person.example.com", "person");
        e2e_pull_secret(home, "clash", "registry.restart.example.com", "rs");
        snprintf(spec, sizeof(spec),
                 "  subjects:\n    namespaces: [%s]\n"
                 "  pullSecrets:\n  - name: clash\n",
                 ns_b);
        policy("conflict", spec);
        /* in ns_wait, where no dockercfg secret ever comes */
        e2e_pull_secret(ns_wait, "creds", "registry.restart.example.com", "rs");
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: waiting\n  namespace: %s\nspec:\n"
                 "  subjects:\n    serviceAccounts: [default]\n"
                 "  pullSecrets:\n  - name: creds\n"
                 "  dockercfg:\n    wait: Always\n    timeoutSeconds: 86400\n",
                 ns_wait);
        if (kt_kubectl("get sa timed-out -n '%s' >/dev/null 2>&1", ns_wait) != 0)
                e2e_sa_create(ns_wait, "timed-out");
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: timeout\n  namespace: %s\nspec:\n"
                 "  subjects:\n    serviceAccounts: [timed-out]\n"
                 "  pullSecrets:\n  - name: creds\n"
                 "  dockercfg:\n    wait: Always\n    timeoutSeconds: 2\n",
                 ns_wait);
        e2e_wait_ready(ns_wait, "waiting", "False", "Waiting", E2E_WAIT_S);
        e2e_wait_link(ns_wait, "timed-out", "pull", "creds", 1, E2E_WAIT_S);
        e2e_wait_ready(home, "conflict", "False", "Conflict", E2E_WAIT_S);

        const char *applied[] = {"bind-group", "bind-sas", "links", "global", "never"};
        for (size_t i = 0; i < ARRAY_SIZE(applied); i++)
                e2e_wait_applied(home, applied[i], E2E_WAIT_S);
        e2e_wait_ready(home, "missing", "False", "SecretNotFound", E2E_WAIT_S);
        e2e_wait_link(ns_a, "default", "mount", "mnt", 1, E2E_WAIT_S);
        e2e_wait_link(ns_a, "builder", "pull", "creds", 1, E2E_WAIT_S);

        /* settled: the controller has stopped writing */
        double w0 = controller_writes(), w1;
        for (int i = 0; i < 30; i++) {
                kt_sleep(QUIET_S);
                w1 = controller_writes();
                if (w1 == w0) break;
                w0 = w1;
        }
        fprintf(stderr, "converged: the controller made %.0f writes so far\n", w0);
        /* policies of others (earlier test programs) are served too: name them */
        char *all = kt_kout("get ppol -A -o jsonpath='{range .items[*]}{.metadata.namespace}/"
                            "{.metadata.name}{\"\\n\"}{end}'");
        char *save = NULL;
        for (char *l = all ? strtok_r(all, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save))
                if (strncmp(l, E2E.prefix, strlen(E2E.prefix)) != 0 &&
                    strncmp(l + 1, E2E.prefix, strlen(E2E.prefix)) != 0)
                        fprintf(stderr, "note: a policy of someone else is present: %s\n", l);
        free(all);
}

static const char *const policies[] = {"bind-group", "bind-sas", "links",   "global", "missing",
                                       "never",      "conflict", "waiting", "timeout"};

/* Lines of the controller's log saying it found the policy in sync. */
static int in_sync_lines(const char *name) {
        char key[512];
        bool elsewhere = !strcmp(name, "waiting") || !strcmp(name, "timeout");
        snprintf(key, sizeof(key), "\"policy\":\"%s/%s\"", elsewhere ? ns_wait : home, name);
        char path[4096];
        snprintf(path, sizeof(path), "%s", E2E.controller_log);
        tproc t = {.log_path = path};
        return tproc_log_count(&t, "\"msg\":\"in sync\"", key);
}

static const char *restart_flags[3];
static char dist_flag[256];

static void test_controller_restart_makes_no_writes(void **state) {
        converge();
        int seen[ARRAY_SIZE(policies)];
        for (size_t i = 0; i < ARRAY_SIZE(policies); i++) seen[i] = in_sync_lines(policies[i]);
        assert_int_equal(e2e_controller_stop(), 0);

        counts before, after, later;
        wait_quiet(&before);
        double t0 = kt_now();
        assert_int_equal(e2e_controller_start(restart_flags), 0);
        fprintf(stderr,
                "restarted controller ready after %.2f s; settling %.0f s "
                "(--resync-period=10s)\n",
                kt_now() - t0, SETTLE_S);
        kt_sleep(SETTLE_S);
        snapshot(&after);
        double w = controller_writes();
        double total = delta(&before, &after, "writes since the restart");
        fprintf(stderr, "the restarted controller's pullpolicy_writes_total: %.0f\n", w);
        /* is the cluster otherwise quiet? (else a non-zero total could be someone else's) */
        kt_sleep(QUIET_S);
        snapshot(&later);
        delta(&after, &later, "writes in the next 2 s");
        assert_true(w == 0);
        assert_true(total == 0);
        /* it did look at every policy (and found it in sync) */
        for (size_t i = 0; i < ARRAY_SIZE(policies); i++) {
                int n = in_sync_lines(policies[i]) - seen[i];
                fprintf(stderr, "policy %s found in sync %d time(s) since the restart\n",
                        policies[i], n);
                assert_true(n >= 1);
        }
        /* and the policies still say so */
        e2e_wait_applied(home, "links", E2E_WAIT_S);
        e2e_wait_ready(home, "missing", "False", "SecretNotFound", E2E_WAIT_S);
        e2e_wait_ready(ns_wait, "waiting", "False", "Waiting", E2E_WAIT_S);
}

static void test_apiserver_restart_makes_no_writes(void **state) {
        converge();
        double w0 = controller_writes();
        assert_true(w0 >= 0);
        counts zero = {0}, after;
        assert_int_equal(testenv_restart_apiserver(), 0);
        /* the apiserver counts from zero again; the controller's watches reconnect */
        kt_sleep(SETTLE_S);
        snapshot(&after);
        double w1 = controller_writes();
        double total = delta(&zero, &after, "writes since the apiserver restart");
        fprintf(stderr, "the controller's writes across the apiserver restart: %.0f\n", w1 - w0);
        assert_true(w1 - w0 == 0);
        assert_true(total == 0);

        /* the controller sees the cluster again: a new account is linked */
        e2e_sa_create(home, "after-restart");
        e2e_wait_link(home, "after-restart", "pull", "creds", 1, E2E_WAIT_S);
}

static int group_setup(void **state) {
        if (e2e_suite_setup(state, "restart", e2e_sim_mode()) < 0) return -1;
        snprintf(dist_flag, sizeof(dist_flag), "--distribution-namespaces=%s-home", E2E.prefix);
        restart_flags[0] = dist_flag;
        restart_flags[1] = "--resync-period=10s";
        restart_flags[2] = NULL;
        const char *flags[] = {dist_flag, NULL};
        if (e2e_controller_start(flags) < 0) return -1;
        return 0;
}

static int namespaces_setup(void **state) {
        /* the namespaces live for the whole program; the group teardown deletes them */
        if (home) return 0;
        home = e2e_ns("home", NULL);
        ns_a = e2e_ns("a", NULL);
        ns_b = e2e_ns("b", NULL);
        char w[128];
        snprintf(w, sizeof(w), "w%s", E2E.prefix);
        ns_wait = e2e_ns_named(w, NULL);
        assert_true(asprintf(&registry, "registry.%s.example.com", E2E.prefix) > 0);
        return 0;
}

static int group_teardown(void **state) {
        /* the global pull secret entry goes with its policy, before the namespaces */
        if (home && E2E.controller_running)
                kt_kubectl("delete ppol global -n '%s' --ignore-not-found --timeout=60s "
                           ">/dev/null 2>&1",
                           home);
        free(home);
        free(ns_a);
        free(ns_b);
        free(ns_wait);
        free(registry);
        return e2e_suite_teardown(state);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup(test_controller_restart_makes_no_writes, namespaces_setup),
            cmocka_unit_test_setup(test_apiserver_restart_makes_no_writes, namespaces_setup),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
