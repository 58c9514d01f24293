/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The local control plane of hack/testenv.sh is real and complete: the apiserver answers,
 * the controller-manager creates `default` ServiceAccounts and finalizes deleted namespaces,
 * ServiceAccount admission copies imagePullSecrets into Pods, metrics can be read, and the
 * apiserver can be restarted on the same port. Also checks the helpers of
 * test/support/testenv.c that need no control plane.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testenv.h"

#define WAIT_S 60.0

/* kubectl's stdout with trailing newlines removed; the test fails if kubectl does. */
static char *kubectl_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *kubectl_ok(const char *fmt, ...) {
        char args[4096], *out = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(args, sizeof(args), fmt, ap);
        va_end(ap);
        assert_true(n > 0 && (size_t)n < sizeof(args));
        int r = testenv_kubectl(&out, "%s", args);
        if (r != 0) fprintf(stderr, "kubectl %s -> %d\n", args, r);
        assert_int_equal(r, 0);
        assert_non_null(out);
        size_t len = strlen(out);
        while (len > 0 && out[len - 1] == '\n') out[--len] = '\0';
        return out;
}

static char *create_namespace(const char *prefix) {
        char *ns = testenv_unique_name(prefix);
        assert_non_null(ns);
        free(kubectl_ok("create namespace %s", ns));
        return ns;
}

static void delete_namespace(const char *ns) {
        free(kubectl_ok("delete namespace %s --wait=false", ns));
}

static int default_sa_exists(void *ud) {
        return testenv_kubectl(NULL, "get serviceaccount default -n %s -o name 2>/dev/null",
                               (const char *)ud) == 0;
}

static int namespace_gone(void *ud) {
        char *out = NULL;
        int r =
            testenv_kubectl(&out, "get namespace %s --ignore-not-found -o name", (const char *)ud);
        int gone = r == 0 && out && out[0] == '\0';
        free(out);
        return gone;
}

/* DIR/<name>, read now (not cached), first line. */
static char *read_dir_file(const char *name) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", testenv_dir(), name);
        FILE *f = fopen(path, "re");
        assert_non_null(f);
        char *line = NULL;
        size_t cap = 0;
        assert_true(getline(&line, &cap, f) > 0);
        fclose(f);
        line[strcspn(line, "\n")] = '\0';
        return line;
}

/* --- against the control plane ---------------------------------------------------------- */

static void test_apiserver_version(void **state) {
        char *v = kubectl_ok("get --raw /version");
        assert_non_null(strstr(v, "\"gitVersion\": \"v1."));
        assert_non_null(strstr(v, "\"major\": \"1\""));
        free(v);

        /* kubectl talks to the server the kubeconfig names, on loopback. */
        const char *server = testenv_server();
        assert_non_null(server);
        assert_int_equal(strncmp(server, "https://127.0.0.1:", 18), 0);
        char *url = kubectl_ok("config view --minify -o jsonpath='{.clusters[0].cluster.server}'");
        assert_string_equal(url, server);
        free(url);
}

static void test_both_kubeconfig_forms(void **state) {
        char *inline_kc = NULL, *files_kc = NULL;
        FILE *f = fopen(testenv_kubeconfig(), "re");
        assert_non_null(f);
        size_t cap = 0;
        assert_true(getdelim(&inline_kc, &cap, '\0', f) > 0);
        fclose(f);
        assert_non_null(strstr(inline_kc, "client-key-data: "));
        assert_non_null(strstr(inline_kc, "certificate-authority-data: "));

        f = fopen(testenv_kubeconfig_files(), "re");
        assert_non_null(f);
        cap = 0;
        assert_true(getdelim(&files_kc, &cap, '\0', f) > 0);
        fclose(f);
        assert_null(strstr(files_kc, "-data: "));
        assert_non_null(strstr(files_kc, "client-key: /"));

        /* The file form authenticates as the same admin (a later --kubeconfig wins). */
        char *who = kubectl_ok("--kubeconfig=%s auth whoami -o jsonpath='{.status.userInfo}'",
                               testenv_kubeconfig_files());
        assert_non_null(strstr(who, "system:masters"));
        free(who);
        free(inline_kc);
        free(files_kc);
}

static void test_namespace_gets_default_sa(void **state) {
        char *ns = create_namespace("te-sa");
        /* Made by the controller-manager's serviceaccount controller, never by the apiserver. */
        assert_int_equal(testenv_wait_until(default_sa_exists, ns, WAIT_S), 0);
        /* And the root CA ConfigMap of the controller-manager's --root-ca-file. */
        char *ca = kubectl_ok("get configmap kube-root-ca.crt -n %s -o name", ns);
        assert_string_equal(ca, "configmap/kube-root-ca.crt");
        free(ca);
        delete_namespace(ns);
        free(ns);
}

static void test_pod_gets_sa_image_pull_secrets(void **state) {
        char *ns = create_namespace("te-pull");
        assert_int_equal(testenv_wait_until(default_sa_exists, ns, WAIT_S), 0);

        char yaml[2048];
        snprintf(yaml, sizeof(yaml),
                 "apiVersion: v1\n"
                 "kind: Secret\n"
                 "metadata: {name: regcred, namespace: %s}\n"
                 "type: kubernetes.io/dockerconfigjson\n"
                 "stringData:\n"
                 "  .dockerconfigjson: '{\"auths\":{\"registry.example\":{\"auth\":\"dTpw\"}}}'\n"
                 "---\n"
                 "apiVersion: v1\n"
                 "kind: ServiceAccount\n"
                 "metadata: {name: puller, namespace: %s}\n"
                 "imagePullSecrets: [{name: regcred}]\n"
                 "---\n"
                 "apiVersion: v1\n"
                 "kind: Pod\n"
                 "metadata: {name: with-sa, namespace: %s}\n"
                 "spec:\n"
                 "  serviceAccountName: puller\n"
                 "  containers: [{name: c, image: registry.example/app:1}]\n"
                 "---\n"
                 "apiVersion: v1\n"
                 "kind: Pod\n"
                 "metadata: {name: with-default, namespace: %s}\n"
                 "spec:\n"
                 "  containers: [{name: c, image: registry.example/app:1}]\n",
                 ns, ns, ns, ns);
        assert_int_equal(testenv_kubectl_apply(yaml), 0);

        /* ServiceAccount admission copied the SA's list into the Pod... */
        char *ips = kubectl_ok("get pod with-sa -n %s -o jsonpath='{.spec.imagePullSecrets}'", ns);
        assert_string_equal(ips, "[{\"name\":\"regcred\"}]");
        free(ips);
        /* ...and only that SA's: the default SA has none, so neither has its Pod. */
        ips = kubectl_ok("get pod with-default -n %s -o jsonpath='{.spec.imagePullSecrets}'", ns);
        assert_string_equal(ips, "");
        free(ips);
        char *sa =
            kubectl_ok("get pod with-default -n %s -o jsonpath='{.spec.serviceAccountName}'", ns);
        assert_string_equal(sa, "default");
        free(sa);

        /* No kubelet or scheduler: the Pods exist and stay Pending. */
        char *phase = kubectl_ok("get pod with-sa -n %s -o jsonpath='{.status.phase}'", ns);
        assert_string_equal(phase, "Pending");
        free(phase);

        delete_namespace(ns);
        free(ns);
}

static void test_namespace_deletion_finalizes(void **state) {
        char *ns = create_namespace("te-del");
        assert_int_equal(testenv_wait_until(default_sa_exists, ns, WAIT_S), 0);
        char yaml[1024];
        snprintf(yaml, sizeof(yaml),
                 "apiVersion: v1\n"
                 "kind: ConfigMap\n"
                 "metadata: {name: cm, namespace: %s}\n"
                 "data: {k: v}\n"
                 "---\n"
                 "apiVersion: v1\n"
                 "kind: Pod\n"
                 "metadata: {name: p, namespace: %s}\n"
                 "spec:\n"
                 "  containers: [{name: c, image: registry.example/app:1}]\n",
                 ns, ns);
        assert_int_equal(testenv_kubectl_apply(yaml), 0);
        assert_int_equal(namespace_gone(ns), 0);

        delete_namespace(ns);
        /* NamespaceLifecycle refuses new objects in a terminating namespace... */
        char *phase = NULL;
        int r = testenv_kubectl(&phase, "get namespace %s -o jsonpath='{.status.phase}'", ns);
        if (r == 0 && strcmp(phase, "Terminating") == 0) {
                assert_int_not_equal(
                    testenv_kubectl(NULL, "create configmap late -n %s 2>/dev/null", ns), 0);
        }
        free(phase);
        /* ...and the namespace controller empties it and removes its finalizer. */
        assert_int_equal(testenv_wait_until(namespace_gone, ns, WAIT_S), 0);
        char *left = kubectl_ok("get configmaps,pods,serviceaccounts -n %s -o name", ns);
        assert_string_equal(left, "");
        free(left);
        free(ns);
}

static void test_request_metrics_grow(void **state) {
        const char *filter = "verb=\"POST\",resource=\"configmaps\"";
        double before = -1, after = -1;
        int n = testenv_apiserver_metric("apiserver_request_total", filter, &before);
        assert_true(n >= 0);

        char *ns = create_namespace("te-metric");
        free(kubectl_ok("create configmap one -n %s", ns));
        free(kubectl_ok("create configmap two -n %s", ns));

        n = testenv_apiserver_metric("apiserver_request_total", filter, &after);
        assert_true(n >= 1);
        /* Our two creations at least; the controller-manager may add its own. */
        assert_true(after >= before + 2);

        /* A filter that matches nothing sums nothing. */
        double none = -1;
        assert_int_equal(
            testenv_apiserver_metric("apiserver_request_total", "verb=\"NO-SUCH-VERB\"", &none), 0);
        assert_true(none == 0);
        delete_namespace(ns);
        free(ns);
}

static void test_kubectl_status_and_stdin(void **state) {
        char *out = NULL;
        int r = testenv_kubectl(&out, "get namespace no-such-namespace-x -o name 2>/dev/null");
        assert_int_equal(r, 1);
        assert_non_null(out);
        assert_string_equal(out, "");
        free(out);

        /* stdin reaches kubectl: a client-side dry run echoes the object's name back. */
        out = NULL;
        r = testenv_kubectl_input("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
                                  "\"metadata\":{\"name\":\"from-stdin\"}}",
                                  &out, "create --dry-run=client -o name -f -");
        assert_int_equal(r, 0);
        assert_string_equal(out, "configmap/from-stdin\n");
        free(out);

        fprintf(stderr, "(a kubectl parse error is expected next)\n");
        assert_int_not_equal(testenv_kubectl_apply("this is: [not a kubernetes object"), 0);
}

static void test_restart_apiserver_same_port(void **state) {
        char *server = read_dir_file("server");
        char *pid_before = read_dir_file("kube-apiserver.pid");
        char *ns = create_namespace("te-restart");
        free(kubectl_ok("create configmap survives -n %s", ns));

        assert_int_equal(testenv_stop_apiserver(), 0);
        char *out = NULL;
        assert_int_not_equal(testenv_kubectl(&out, "get --raw /readyz 2>/dev/null"), 0);
        free(out);
        assert_int_equal(testenv_start_apiserver(), 0);
        assert_int_equal(testenv_restart_apiserver(), 0);

        char *server_after = read_dir_file("server");
        char *pid_after = read_dir_file("kube-apiserver.pid");
        assert_string_equal(server_after, server);
        assert_string_not_equal(pid_after, pid_before);

        char *ready = kubectl_ok("get --raw /readyz");
        assert_string_equal(ready, "ok");
        free(ready);
        /* Same etcd: data written before the restart is still there. */
        char *cm = kubectl_ok("get configmap survives -n %s -o name", ns);
        assert_string_equal(cm, "configmap/survives");
        free(cm);
        /* The controller-manager reconnects and keeps working. */
        char *ns2 = create_namespace("te-restart2");
        assert_int_equal(testenv_wait_until(default_sa_exists, ns2, WAIT_S), 0);

        delete_namespace(ns);
        delete_namespace(ns2);
        free(ns);
        free(ns2);
        free(server);
        free(server_after);
        free(pid_before);
        free(pid_after);
}

/* --- helpers that need no control plane ------------------------------------------------ */

static int is_dns1123_label(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 63) return 0;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!(islower((unsigned char)c) || isdigit((unsigned char)c) || c == '-')) return 0;
        }
        return s[0] != '-' && s[n - 1] != '-';
}

static void test_unique_name(void **state) {
        char *a = testenv_unique_name("te-x");
        char *b = testenv_unique_name("te-x");
        assert_non_null(a);
        assert_non_null(b);
        assert_string_not_equal(a, b);
        assert_int_equal(strncmp(a, "te-x-", 5), 0);
        char pid[32];
        snprintf(pid, sizeof(pid), "-%ld-", (long)getpid());
        assert_non_null(strstr(a, pid));
        assert_true(is_dns1123_label(a));
        free(a);
        free(b);

        char *c = testenv_unique_name("__Upper_Case.Dots__");
        assert_non_null(c);
        assert_true(is_dns1123_label(c));
        assert_int_equal(strncmp(c, "upper-case-dots--", 17), 0);
        free(c);

        char longp[200];
        memset(longp, 'a', sizeof(longp) - 1);
        longp[sizeof(longp) - 1] = '\0';
        char *d = testenv_unique_name(longp);
        assert_non_null(d);
        assert_true(is_dns1123_label(d));
        assert_int_equal(strlen(d), 63);
        free(d);

        char *e = testenv_unique_name("");
        assert_non_null(e);
        assert_true(is_dns1123_label(e));
        free(e);
}

static int count_to_three(void *ud) {
        int *n = ud;
        return ++*n >= 3;
}
static int never(void *ud) {
        ++*(int *)ud;
        return 0;
}
static int fails(void *ud) {
        return -EPROTO;
}

static double mono(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_wait_until(void **state) {
        int n = 0;
        assert_int_equal(testenv_wait_until(count_to_three, &n, 5.0), 0);
        assert_int_equal(n, 3);

        n = 0;
        double t0 = mono();
        assert_int_equal(testenv_wait_until(never, &n, 0.3), -ETIMEDOUT);
        double el = mono() - t0;
        assert_true(el >= 0.3 && el < 2.0);
        /* Polled every 50 ms: about 7 calls in 0.3 s, never a busy loop. */
        assert_true(n >= 3 && n <= 10);

        assert_int_equal(testenv_wait_until(fails, NULL, 5.0), -EPROTO);
        n = 0;
        assert_int_equal(testenv_wait_until(never, &n, 0), -ETIMEDOUT);
        assert_int_equal(n, 1);
}

static void test_metric_parser(void **state) {
        const char *expo =
            "# HELP apiserver_request_total Counter of apiserver requests.\n"
            "# TYPE apiserver_request_total counter\n"
            "apiserver_request_total{code=\"200\",resource=\"serviceaccounts\",verb=\"PUT\"} 3\n"
            "apiserver_request_total{code=\"409\",resource=\"serviceaccounts\",verb=\"PUT\"} 2\n"
            "apiserver_request_total{code=\"200\",resource=\"secrets\",verb=\"PUT\"} 100\n"
            "apiserver_request_total{code=\"201\",resource=\"serviceaccounts\",verb=\"POST\"} 7\n"
            "apiserver_request_total_extra{resource=\"serviceaccounts\",verb=\"PUT\"} 1000\n"
            "apiserver_request_totally 5000\n"
            "esc_total{path=\"a\\\"b,c=\\\"d\\\"\",x=\"\\\\\"} 4 1700000000000\n"
            "plain_gauge 2.5\n"
            "plain_gauge{} 0.5\n";
        double v = -1;
        assert_int_equal(testenv_metric_sum(expo, "apiserver_request_total",
                                            "verb=\"PUT\",resource=\"serviceaccounts\"", &v),
                         2);
        assert_true(v == 5);
        assert_int_equal(testenv_metric_sum(expo, "apiserver_request_total", NULL, &v), 4);
        assert_true(v == 112);
        assert_int_equal(
            testenv_metric_sum(expo, "apiserver_request_total", " verb = \"POST\" ", &v), 1);
        assert_true(v == 7);
        /* Values with escaped quotes and commas, and a trailing timestamp. */
        assert_int_equal(testenv_metric_sum(expo, "esc_total", "path=\"a\\\"b,c=\\\"d\\\"\"", &v),
                         1);
        assert_true(v == 4);
        assert_int_equal(testenv_metric_sum(expo, "esc_total", "x=\"\\\\\"", &v), 1);
        assert_int_equal(testenv_metric_sum(expo, "plain_gauge", "", &v), 2);
        assert_true(v == 3);
        /* No match: a count of 0 and a sum of 0. */
        v = -1;
        assert_int_equal(testenv_metric_sum(expo, "apiserver_request_total", "verb=\"GET\"", &v),
                         0);
        assert_true(v == 0);
        /* A malformed filter is an error and leaves *ret alone. */
        v = -1;
        assert_int_equal(testenv_metric_sum(expo, "plain_gauge", "verb=PUT", &v), -EINVAL);
        assert_int_equal(testenv_metric_sum(expo, "plain_gauge", "verb=\"PUT", &v), -EINVAL);
        assert_true(v == -1);
}

int main(void) {
        const struct CMUnitTest offline[] = {
            cmocka_unit_test(test_unique_name),
            cmocka_unit_test(test_wait_until),
            cmocka_unit_test(test_metric_parser),
        };
        const struct CMUnitTest live[] = {
            cmocka_unit_test(test_apiserver_version),
            cmocka_unit_test(test_both_kubeconfig_forms),
            cmocka_unit_test(test_kubectl_status_and_stdin),
            cmocka_unit_test(test_namespace_gets_default_sa),
            cmocka_unit_test(test_pod_gets_sa_image_pull_secrets),
            cmocka_unit_test(test_namespace_deletion_finalizes),
            cmocka_unit_test(test_request_metrics_grow),
            /* Last: it resets the apiserver's counters. */
            cmocka_unit_test(test_restart_apiserver_same_port),
        };
        int failed = cmocka_run_group_tests_name("testenv_offline", offline, NULL, NULL);
        failed += cmocka_run_group_tests_name("testenv", live, testenv_group_setup, NULL);
        return failed ? 1 : 0;
}
