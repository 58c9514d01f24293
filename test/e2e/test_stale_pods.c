/* SPDX-License-Identifier: Apache-2.0 */
/*
 * e2e: R13, pods that predate a link. A pod's imagePullSecrets are fixed when the
 * ServiceAccount admission plugin admits it: a pod created before the controller linked a
 * secret to its account lacks it for good and, if it needs it, stays in ImagePullBackOff.
 *
 * The control plane has no kubelet (and no scheduler): pods stay Pending with no container
 * status. The tests set the container statuses through the pods/status subresource exactly as
 * the kubelet would when a pull fails (a strategic merge patch of status.containerStatuses
 * with state.waiting.reason ErrImagePull or ImagePullBackOff). Everything else is real: the
 * ReplicaSet controller of kube-controller-manager creates (and recreates) the owned pod, and
 * admission copies the account's imagePullSecrets into it.
 *
 * One controller for the program, no dockercfg provisioner (the policies say wait: Never).
 */
#include "e2e.h"

/* The kubelet's status patch for a container that cannot pull its image. */
static void set_pull_error(const char *ns, const char *pod, const char *reason) {
        assert_int_equal(
            kt_kubectl("patch pod '%s' -n '%s' --subresource=status --type=strategic -p "
                       "'{\"status\":{\"phase\":\"Pending\",\"containerStatuses\":[{\"name\":"
                       "\"c\",\"image\":\"registry.example.com/app:1\",\"imageID\":\"\","
                       "\"ready\":false,\"restartCount\":0,\"started\":false,\"state\":{"
                       "\"waiting\":{\"reason\":\"%s\",\"message\":\"pull access denied\"}}}]}}'"
                       " >/dev/null",
                       pod, ns, reason),
            0);
}

static void bare_pod(const char *ns, const char *name, const char *sa) {
        kt_apply("apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: %s\n"
                 "spec:\n  serviceAccountName: %s\n  automountServiceAccountToken: false\n"
                 "  containers:\n  - name: c\n    image: registry.example.com/app:1\n",
                 name, ns, sa);
}

/* A ReplicaSet of one pod (app=web) run as sa; its pod's name once the controller made it. */
static char *replica_set(const char *ns, const char *sa) {
        kt_apply("apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: web\n  namespace: %s\n"
                 "spec:\n  replicas: 1\n  selector:\n    matchLabels: {app: web}\n"
                 "  template:\n    metadata:\n      labels: {app: web}\n"
                 "    spec:\n      serviceAccountName: %s\n"
                 "      automountServiceAccountToken: false\n"
                 "      containers:\n      - name: c\n        image: registry.example.com/app:1\n",
                 ns, sa);
        e2e_wait_out(E2E_WAIT_S, "1", "get pods -n '%s' -l app=web -o name | wc -l", ns);
        char *name =
            kt_kout("get pods -n '%s' -l app=web -o jsonpath='{.items[0].metadata.name}'", ns);
        assert_non_null(name);
        return name;
}

static char *pod_uid(const char *ns, const char *name) {
        return kt_kout("get pod '%s' -n '%s' -o jsonpath='{.metadata.uid}' 2>/dev/null", name, ns);
}

/* Events of the pod with this reason. */
static int pod_events(const char *ns, const char *pod, const char *reason) {
        json_object *l =
            kt_kjson("get events -n '%s' --field-selector "
                     "involvedObject.kind=Pod,involvedObject.name=%s,reason=%s -o json",
                     ns, pod, reason);
        if (!l) return -1;
        int n = (int)kt_jlen(l, "items");
        json_object_put(l);
        return n;
}

static void apply_policy(const char *ns, bool restart, int timeout) {
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: robot\n  namespace: %s\n"
                 "spec:\n  pullSecrets:\n  - name: robot\n"
                 "  dockercfg: {wait: Never, timeoutSeconds: %d}\n  restartStalePods: %s\n",
                 ns, timeout, restart ? "true" : "false");
}

/* Whether the policy's problems name ns/pod with reason StalePod. */
static bool problem_names(json_object *p, const char *ns, const char *pod) {
        for (size_t i = 0; i < kt_jlen(p, "status.problems"); i++) {
                json_object *pr = kt_jidx(p, "status.problems", i);
                const char *r = kt_jstr(pr, "reason"), *n = kt_jstr(pr, "name"),
                           *s = kt_jstr(pr, "namespace"), *m = kt_jstr(pr, "message");
                if (r && n && s && strcmp(r, "StalePod") == 0 && strcmp(n, pod) == 0 &&
                    strcmp(s, ns) == 0) {
                        assert_non_null(m);
                        assert_non_null(strstr(m, "robot"));
                        return true;
                }
        }
        return false;
}

/*
 * Found, reported, never deleted without the opt-in; then, with restartStalePods, the
 * ReplicaSet's pod is deleted (and recreated by its controller with the secret) and the bare pod
 * is not.
 */
static void test_stale_pods(void **state) {
        char *ns = e2e_ns("a", NULL);
        e2e_sa_create(ns, "app");
        e2e_pull_secret(ns, "robot", "registry.example.com", "robot");
        /* before any link: admission gives these pods no imagePullSecrets */
        char *owned = replica_set(ns, "app");
        char *owned_uid = pod_uid(ns, owned);
        assert_non_null(owned_uid);
        bare_pod(ns, "bare", "app");
        bare_pod(ns, "pulling", "app"); /* Pending, but not failing to pull: never stale */
        set_pull_error(ns, owned, "ImagePullBackOff");
        set_pull_error(ns, "bare", "ErrImagePull");
        set_pull_error(ns, "pulling", "ContainerCreating");

        apply_policy(ns, false, 300);
        e2e_wait_link(ns, "app", "pull", "robot", 1, E2E_WAIT_S);
        e2e_wait_out(E2E_WAIT_S, "2", "get ppol robot -n '%s' -o jsonpath='{.status.stalePods}'",
                     ns);
        /* Ready stays True: the policy itself is applied */
        e2e_wait_applied(ns, "robot", E2E_WAIT_S);
        json_object *p = e2e_policy(ns, "robot");
        assert_true(problem_names(p, ns, owned));
        assert_true(problem_names(p, ns, "bare"));
        assert_false(problem_names(p, ns, "pulling"));
        json_object_put(p);
        e2e_wait_out(E2E_WAIT_S, "1",
                     "get events -n '%s' --field-selector involvedObject.kind=Pod,"
                     "involvedObject.name=bare,reason=StalePullSecrets -o name | wc -l",
                     ns);
        e2e_wait_out(E2E_WAIT_S, "1",
                     "get events -n '%s' --field-selector involvedObject.kind=Pod,"
                     "involvedObject.name=%s,reason=StalePullSecrets -o name | wc -l",
                     ns, owned);
        char *msg = kt_kout("get events -n '%s' --field-selector involvedObject.name=bare,"
                            "reason=StalePullSecrets -o jsonpath='{.items[0].message}'",
                            ns);
        assert_non_null(msg);
        fprintf(stderr, "event: %s\n", msg);
        assert_non_null(strstr(msg, "robot"));
        assert_non_null(strstr(msg, "recreated"));
        free(msg);
        assert_int_equal(pod_events(ns, "pulling", "StalePullSecrets"), 0);

        /* Without the opt-in nothing is deleted: a spec change (generation 2) is planned and its
         * stale-pod step done after the first one, and the owned pod is still the same one. */
        apply_policy(ns, false, 301);
        e2e_wait_out(E2E_WAIT_S, "2 2",
                     "get ppol robot -n '%s' -o "
                     "jsonpath='{.status.observedGeneration} {.status.stalePods}'",
                     ns);
        char *uid = pod_uid(ns, owned);
        assert_non_null(uid);
        assert_string_equal(uid, owned_uid);
        free(uid);
        /* once per pod, not once per reconcile */
        assert_int_equal(pod_events(ns, "bare", "StalePullSecrets"), 1);

        /* The opt-in: the ReplicaSet's pod goes, the bare pod stays. */
        apply_policy(ns, true, 301);
        e2e_wait_out(E2E_WAIT_S, "gone",
                     "get pod '%s' -n '%s' -o name 2>/dev/null | grep -q . && echo present || "
                     "echo gone",
                     owned, ns);
        e2e_wait_out(E2E_WAIT_S, "1",
                     "get events -n '%s' --field-selector involvedObject.kind=Pod,"
                     "involvedObject.name=%s,reason=StalePodDeleted -o name | wc -l",
                     ns, owned);
        assert_true(e2e_events(ns, "robot", "StalePodDeleted") >= 1);
        /* its controller recreated it, and admission gave the new pod the linked secret */
        e2e_wait_out(E2E_WAIT_S, "robot",
                     "get pods -n '%s' -l app=web -o jsonpath='{.items[*].spec.imagePullSecrets[*]"
                     ".name}'",
                     ns);
        /* the bare pod is reported, never deleted: the plan after the deletion counts it */
        e2e_wait_out(E2E_WAIT_S, "3 1",
                     "get ppol robot -n '%s' -o "
                     "jsonpath='{.status.observedGeneration} {.status.stalePods}'",
                     ns);
        char *bare_uid = pod_uid(ns, "bare");
        assert_non_null(bare_uid);
        assert_true(*bare_uid);
        free(bare_uid);
        assert_int_equal(pod_events(ns, "bare", "StalePodDeleted"), 0);

        /* the last stale pod gone: the count and its problem go with it */
        assert_int_equal(kt_kubectl("delete pod bare -n '%s' --wait=true >/dev/null", ns), 0);
        e2e_wait_out(E2E_WAIT_S, "0", "get ppol robot -n '%s' -o jsonpath='{.status.stalePods}'",
                     ns);
        p = e2e_policy(ns, "robot");
        assert_false(problem_names(p, ns, "bare"));
        json_object_put(p);

        free(owned_uid);
        free(owned);
        e2e_ns_delete(ns);
        free(ns);
}

static int group_setup(void **state) {
        if (e2e_suite_setup(state, "stale", NULL) < 0) return -1;
        return e2e_controller_start(NULL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_stale_pods),
        };
        return cmocka_run_group_tests(tests, group_setup, e2e_suite_teardown);
}
