/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The client's flow window (kube/flowctl.h) against the real kube-apiserver's API Priority
 * and Fairness: a FlowSchema that puts this client's creates of ConfigMaps in one namespace
 * on a priority level with a concurrency share of 1 and a queue of one makes the server
 * answer most of a burst with 429 and Retry-After. The client must slow down (its window
 * halves, every start waits as Retry-After asks) and every object must still be created.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ev.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kube/client.h"
#include "kube/flowctl.h"
#include "testenv.h"
#include "util/macro.h"

/* Objects of one burst, and bursts until the whole set exists. */
#define N_OBJECTS  200
#define MAX_ROUNDS 20

static struct ev_loop *loop;
static kube_config *cfg;

typedef struct burst {
        size_t pending;
        bool created[N_OBJECTS];
        unsigned long min_window; /* the smallest window seen while the burst ran */
        unsigned long max_in_flight;
        size_t failed_429;
} burst;

typedef struct one {
        burst *b;
        size_t i;
} one;

static void on_done(kube_client *c, const kube_response *r, void *ud) {
        one *o = ud;
        burst *b = o->b;
        kube_client_stats st;
        kube_client_get_stats(c, &st);
        if (st.flow_limit < b->min_window) b->min_window = st.flow_limit;
        if (st.flow_in_flight > b->max_in_flight) b->max_in_flight = st.flow_in_flight;
        /* 409: created by an earlier round whose answer was a 429 after all */
        if (r->error == 0 || r->http_status == 409) b->created[o->i] = true;
        if (r->http_status == 429) b->failed_429++;
        b->pending--;
        free(o);
}

static void failsafe_cb(struct ev_loop *l, ev_timer *w, int revents) {
        *(bool *)w->data = true;
}

/* Creates the ConfigMaps not created yet, all at once; runs until every answer is in. */
static void run_burst(kube_client *client, const char *ns, burst *b) {
        for (size_t i = 0; i < N_OBJECTS; i++) {
                if (b->created[i]) continue;
                char path[256], body[256];
                snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps", ns);
                snprintf(body, sizeof(body),
                         "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
                         "\"cm-%zu\"},\"data\":{\"k\":\"v\"}}",
                         i);
                one *o = calloc(1, sizeof(*o));
                assert_non_null(o);
                o->b = b;
                o->i = i;
                kube_request_opts ro = {.method = KUBE_POST,
                                        .path = path,
                                        .body = body,
                                        .body_len = strlen(body),
                                        .timeout_ms = 120000,
                                        .on_done = on_done,
                                        .userdata = o};
                assert_int_equal(kube_client_request(client, &ro, NULL), 0);
                b->pending++;
        }
        bool expired = false;
        ev_timer t;
        ev_now_update(loop);
        ev_timer_init(&t, failsafe_cb, 300., 0.);
        t.data = &expired;
        ev_timer_start(loop, &t);
        while (b->pending > 0 && !expired) ev_run(loop, EVRUN_ONCE);
        ev_timer_stop(loop, &t);
        assert_false(expired);
}

static size_t count_created(const burst *b) {
        size_t n = 0;
        for (size_t i = 0; i < N_OBJECTS; i++) n += b->created[i];
        return n;
}

static void test_apf_429_slows_the_client(void **state) {
        char *ns = testenv_unique_name("flow");
        assert_non_null(ns);
        char *yaml = NULL;
        /* system:masters is always exempt from APF: the client acts as a service account */
        assert_true(asprintf(&yaml,
                             "apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n---\n"
                             "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: flow, "
                             "namespace: %s}\n---\n"
                             "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n"
                             "metadata: {name: flow, namespace: %s}\n"
                             "rules: [{apiGroups: [\"\"], resources: [configmaps], verbs: "
                             "[create]}]\n---\n"
                             "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n"
                             "metadata: {name: flow, namespace: %s}\n"
                             "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: "
                             "flow}\n"
                             "subjects: [{kind: ServiceAccount, name: flow, namespace: %s}]\n"
                             "---\n"
                             "apiVersion: flowcontrol.apiserver.k8s.io/v1\n"
                             "kind: PriorityLevelConfiguration\n"
                             "metadata: {name: a-%s}\n"
                             "spec:\n  type: Limited\n  limited:\n"
                             "    nominalConcurrencyShares: 1\n    lendablePercent: 0\n"
                             "    limitResponse:\n      type: Queue\n"
                             "      queuing: {queues: 1, handSize: 1, queueLengthLimit: 1}\n"
                             "---\n"
                             "apiVersion: flowcontrol.apiserver.k8s.io/v1\nkind: FlowSchema\n"
                             "metadata: {name: a-%s}\n"
                             "spec:\n  priorityLevelConfiguration: {name: a-%s}\n"
                             "  matchingPrecedence: 10\n"
                             "  distinguisherMethod: {type: ByUser}\n"
                             "  rules:\n"
                             "  - subjects: [{kind: ServiceAccount, serviceAccount: {name: flow, "
                             "namespace: %s}}]\n"
                             "    resourceRules: [{verbs: [create], apiGroups: [\"\"], "
                             "resources: [configmaps], namespaces: [%s]}]\n",
                             ns, ns, ns, ns, ns, ns, ns, ns, ns, ns) > 0);
        assert_int_equal(testenv_kubectl_apply(yaml), 0);
        free(yaml);
        /* a client with the service account's token and the window wide open from the start:
         * the server, not the client, must be the limit */
        char *token = NULL;
        assert_int_equal(testenv_kubectl(&token, "create token flow -n %s --duration=1h", ns), 0);
        token[strcspn(token, "\n")] = 0;
        char kc_path[] = "/tmp/pullpolicy-flow-kc-XXXXXX";
        int fd = mkstemp(kc_path);
        assert_true(fd >= 0);
        FILE *f = fdopen(fd, "w");
        assert_non_null(f);
        fprintf(f,
                "current-context: t\nclusters:\n- name: c\n  cluster:\n    server: %s\n"
                "    certificate-authority: %s/pki/ca.crt\n"
                "contexts:\n- name: t\n  context: {cluster: c, user: u}\n"
                "users:\n- name: u\n  user:\n    token: %s\n",
                testenv_server(), testenv_dir(), token);
        assert_int_equal(fclose(f), 0);
        free(token);
        kube_config *fcfg = NULL;
        char *err = NULL;
        if (kube_config_load_kubeconfig(kc_path, NULL, &fcfg, &err) < 0) fail_msg("%s", err);
        unlink(kc_path);
        kube_client_opts co = {.requests_in_flight = KUBE_FLOWCTL_DEFAULT_INITIAL * 4,
                               .user_agent = "pullpolicy-flow-test"};
        kube_client *fc = NULL;
        assert_int_equal(kube_client_new(loop, fcfg, &co, &fc), 0);

        burst b = {.min_window = ULONG_MAX};
        kube_client_stats st0, st1;
        kube_client_get_stats(fc, &st0);
        unsigned rounds = 0;
        /* the API server picks the new FlowSchema up within seconds: until then a burst
         * passes; the test waits for the fact it is about (429s), then for convergence */
        while (count_created(&b) < N_OBJECTS && rounds < MAX_ROUNDS) {
                rounds++;
                run_burst(fc, ns, &b);
                kube_client_get_stats(fc, &st1);
                if (st1.throttled_429 == st0.throttled_429 && count_created(&b) == N_OBJECTS) {
                        /* not throttled yet: again, with new names */
                        assert_int_equal(testenv_kubectl(NULL, "delete configmap -n %s --all", ns),
                                         0);
                        memset(b.created, 0, sizeof(b.created));
                }
        }
        kube_client_get_stats(fc, &st1);
        print_message("flow: %u rounds, %lu answers 429, window min %lu (start %d), at most %lu in "
                      "flight, %zu requests given up with 429 (created by a later round)\n",
                      rounds, st1.throttled_429 - st0.throttled_429, b.min_window,
                      KUBE_FLOWCTL_DEFAULT_INITIAL * 4, b.max_in_flight, b.failed_429);
        /* the server refused, the client slowed down, and everything exists in the end */
        assert_true(st1.throttled_429 > st0.throttled_429);
        assert_true(b.min_window < KUBE_FLOWCTL_DEFAULT_INITIAL * 4);
        assert_int_equal(count_created(&b), N_OBJECTS);
        char *out = NULL;
        assert_int_equal(testenv_kubectl(&out, "get configmaps -n %s -o name", ns), 0);
        size_t n = 0;
        for (const char *p = out; (p = strstr(p, "configmap/cm-")); p++) n++;
        free(out);
        assert_int_equal(n, N_OBJECTS);

        kube_client_free(fc);
        kube_config_free(fcfg);
        assert_int_equal(testenv_kubectl(NULL, "delete flowschema a-%s", ns), 0);
        assert_int_equal(testenv_kubectl(NULL, "delete prioritylevelconfiguration a-%s", ns), 0);
        assert_int_equal(testenv_kubectl(NULL, "delete namespace %s --wait=false", ns), 0);
        free(ns);
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
        return 0;
}

static int group_teardown(void **state) {
        kube_config_free(cfg);
        ev_loop_destroy(loop);
        return 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_apf_429_slows_the_client),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
