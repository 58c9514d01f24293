/* SPDX-License-Identifier: Apache-2.0 */
/*
 * e2e: writes the API server refuses, and RoleBinding names (issue 7, items 3 and 4).
 *  - A ValidatingAdmissionPolicy (built into kube-apiserver) refuses every update of one
 *    service account of one of three selected namespaces. The service accounts of the other
 *    namespaces are linked all the same; the policy is Ready=False, reason WriteFailed, its
 *    message and problems naming the refused account and the API's message. Once the
 *    admission binding is deleted, the policy converges to Ready=True by itself.
 *  - Policy a for namespace b-<u> and policy a-b for namespace <u> once shared the
 *    RoleBinding ppol-a-b-<u>: both get a binding of their own.
 *  - A binding under the name of earlier versions (ppol-<policy>-<ns>), with the policy's
 *    marks, is replaced: exactly one binding is left, under the new name.
 *
 * The home of the first policy is on --distribution-namespaces (linking a home secret to
 * accounts of other namespaces copies it there, R5). No provisioner runs: the policies say
 * dockercfg.wait: Never.
 */
#include "e2e.h"
#include "names.h"

#define DENIED_SA  "blocked"
#define DENIED_MSG "e2e: service account blocked may not change"

static char dist_flag[512];

/* The admission policy and its binding: UPDATE (PATCH too) of DENIED_SA in this run's
 * namespaces is refused. */
static void deny_sa_updates(const char *name) {
        kt_apply("apiVersion: admissionregistration.k8s.io/v1\n"
                 "kind: ValidatingAdmissionPolicy\n"
                 "metadata: {name: %s}\n"
                 "spec:\n"
                 "  failurePolicy: Fail\n"
                 "  matchConstraints:\n"
                 "    namespaceSelector: {matchLabels: {%s: %s}}\n"
                 "    resourceRules:\n"
                 "    - apiGroups: ['']\n"
                 "      apiVersions: [v1]\n"
                 "      operations: [UPDATE]\n"
                 "      resources: [serviceaccounts]\n"
                 "  validations:\n"
                 "  - expression: \"object.metadata.name != '" DENIED_SA "'\"\n"
                 "    message: '" DENIED_MSG "'\n"
                 "---\n"
                 "apiVersion: admissionregistration.k8s.io/v1\n"
                 "kind: ValidatingAdmissionPolicyBinding\n"
                 "metadata: {name: %s}\n"
                 "spec:\n"
                 "  policyName: %s\n"
                 "  validationActions: [Deny]\n",
                 name, E2E_LABEL_RUN, E2E.prefix, name, name);
}

typedef struct refused_cond {
        const char *ns;
} refused_cond;

/* The API server refuses an update of ns/DENIED_SA (the admission policy is in force). */
static int refused_check(void *ud) {
        refused_cond *c = ud;
        char *out = kt_kout("annotate sa " DENIED_SA " -n '%s' e2e.pullpolicy.io/probe=%.0f "
                            "--overwrite 2>&1 | grep -c '" DENIED_MSG "' || true",
                            c->ns, kt_now() * 1000);
        int ok = out && strcmp(out, "1") == 0;
        free(out);
        return ok;
}

/* The policy's Ready message and its problems as "ns/name reason: message" lines. */
static char *ready_message(const char *home, const char *name) {
        return kt_kout("get ppol '%s' -n '%s' -o jsonpath='" E2E_JSONPATH_READY ".message}'", name,
                       home);
}

static char *problems(const char *home, const char *name) {
        return kt_kout("get ppol '%s' -n '%s' -o jsonpath='{range .status.problems[*]}"
                       "{.namespace}/{.name} {.reason}: {.message}{\"\\n\"}{end}'",
                       name, home);
}

typedef struct linked_metric_cond {
        double want;
        double last;
} linked_metric_cond;

/* The controller's pullpolicy_linked_service_accounts (its gauges follow the stored
 * statuses, refreshed every few seconds) equals want. */
static int linked_metric_check(void *ud) {
        linked_metric_cond *c = ud;
        long code = 0;
        char *body = NULL;
        c->last = -1;
        if (tproc_http_get(E2E.controller.metrics_port, "/metrics", &code, &body) == 0 &&
            code == 200 && body &&
            testenv_metric_sum(body, "pullpolicy_linked_service_accounts", NULL, &c->last) < 0)
                c->last = -1;
        free(body);
        return c->last == c->want;
}

/* The policy's status.linkedServiceAccounts and the controller's gauge become want. */
static void wait_linked(const char *home, const char *name, const char *want) {
        e2e_wait_out(E2E_WAIT_S, want,
                     "get ppol '%s' -n '%s' -o jsonpath='{.status.linkedServiceAccounts}'", name,
                     home);
        linked_metric_cond mc = {.want = strtod(want, NULL)};
        e2e_wait(linked_metric_check, &mc, E2E_WAIT_S, "pullpolicy_linked_service_accounts");
}

static void test_refused_write_does_not_block_others(void **state) {
        char *h = e2e_ns("home", NULL);
        char *a = e2e_ns("a", "e2e.pullpolicy.io/writes: team\n"),
             *b = e2e_ns("b", "e2e.pullpolicy.io/writes: team\n"),
             *c = e2e_ns("c", "e2e.pullpolicy.io/writes: team\n");
        e2e_sa_create(a, "app");
        e2e_sa_create(b, DENIED_SA);
        e2e_sa_create(c, "app");
        char vap[128];
        snprintf(vap, sizeof(vap), "%s-deny-sa", E2E.prefix);
        deny_sa_updates(vap);
        /* a fact, not a sleep: the API server refuses the update before the policy exists */
        refused_cond rc = {b};
        e2e_wait(refused_check, &rc, E2E_WAIT_S, "the admission policy to refuse updates");

        e2e_pull_secret(h, "team-creds", "registry.writes.example.com", "team");
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata: {name: team, namespace: %s}\n"
                 "spec:\n"
                 "  subjects:\n"
                 "    namespaceSelector: {matchLabels: {e2e.pullpolicy.io/writes: team}}\n"
                 "    serviceAccounts: [app, " DENIED_SA "]\n"
                 "  pullSecrets: [{name: team-creds}]\n"
                 "  dockercfg: {wait: Never}\n",
                 h);
        /* the namespaces before and after the refused one are served */
        e2e_wait_link(a, "app", "pull", "team-creds", 1, E2E_READY_S);
        e2e_wait_link(c, "app", "pull", "team-creds", 1, E2E_READY_S);
        e2e_wait_ready(h, "team", "False", "WriteFailed", E2E_READY_S);
        assert_int_equal(e2e_sa_count(b, DENIED_SA, "pull", "team-creds"), 0);
        char *msg = ready_message(h, "team");
        char *want = NULL;
        assert_true(
            asprintf(&want, "1 object could not be written: ServiceAccount %s/" DENIED_SA, b) > 0);
        if (!strstr(msg, want) || !strstr(msg, DENIED_MSG))
                fail_msg("Ready message \"%s\" should name %s and the API's message", msg, want);
        free(want);
        free(msg);
        char *probs = problems(h, "team");
        assert_true(asprintf(&want,
                             "%s/" DENIED_SA
                             " WriteFailed: could not write ServiceAccount %s/" DENIED_SA ": ",
                             b, b) > 0);
        if (!strstr(probs, want) || !strstr(probs, DENIED_MSG))
                fail_msg("problems \"%s\" should hold \"%s...%s\"", probs, want, DENIED_MSG);
        free(want);
        free(probs);
        /* the counts say what is linked, not what was planned: a/app and c/app, not b */
        wait_linked(h, "team", "2");
        /* the copies for the refused namespace were made (the refusal holds back nothing else) */
        e2e_wait_out(E2E_WAIT_S, "present",
                     "get secret team-creds -n '%s' -o name 2>/dev/null | grep -q . "
                     "&& echo present || echo absent",
                     b);

        /* the refusal goes away: the policy converges by itself (retried with backoff) */
        assert_int_equal(kt_kubectl("delete validatingadmissionpolicybinding '%s' >/dev/null", vap),
                         0);
        e2e_wait_link(b, DENIED_SA, "pull", "team-creds", 1, E2E_READY_S);
        e2e_wait_applied(h, "team", E2E_READY_S);
        wait_linked(h, "team", "3");
        probs = problems(h, "team");
        assert_string_equal(probs, "");
        free(probs);
        assert_int_equal(kt_kubectl("delete validatingadmissionpolicy '%s' >/dev/null", vap), 0);

        e2e_policy_delete(h, "team");
        e2e_ns_delete(a);
        e2e_ns_delete(b);
        e2e_ns_delete(c);
        e2e_ns_delete(h);
        free(a);
        free(b);
        free(c);
        free(h);
}

/* The names of the RoleBindings in ns with label policy=<policy>, one a line. */
static char *bindings_of(const char *ns, const char *policy) {
        return kt_kout("get rolebindings -n '%s' -l pullpolicy.io/policy=%s "
                       "-o jsonpath='{range .items[*]}{.metadata.name}{\"\\n\"}{end}'",
                       ns, policy);
}

static char *rb_name(const char *policy, const char *ns) {
        char *s = NULL;
        assert_int_equal(names_role_binding(policy, ns, &s), 0);
        return s;
}

static void imagepuller_policy(const char *home, const char *name, const char *ns) {
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata: {name: %s, namespace: %s}\n"
                 "spec:\n  subjects: {namespaces: [%s]}\n  imagePuller: {}\n",
                 name, home, ns);
}

static void test_role_binding_names(void **state) {
        char *h = e2e_ns("names", NULL);
        /* u and b-u: "ppol-" + "a" + "-" + "b-u" is "ppol-" + "a-b" + "-" + "u" */
        char *u0 = testenv_unique_name("u");
        assert_non_null(u0);
        char *bu = NULL;
        assert_true(asprintf(&bu, "b-%s", u0) > 0);
        char *u = e2e_ns_named(u0, NULL), *nbu = e2e_ns_named(bu, NULL);
        imagepuller_policy(h, "a", nbu);
        imagepuller_policy(h, "a-b", u);
        e2e_wait_applied(h, "a", E2E_READY_S);
        e2e_wait_applied(h, "a-b", E2E_READY_S);
        char *rba = rb_name("a", nbu), *rbab = rb_name("a-b", u);
        assert_string_not_equal(rba, rbab);
        char *got = bindings_of(h, "a");
        assert_string_equal(got, rba);
        free(got);
        got = bindings_of(h, "a-b");
        assert_string_equal(got, rbab);
        free(got);
        e2e_wait_out(E2E_WAIT_S, nbu,
                     "get rolebinding '%s' -n '%s' -o "
                     "jsonpath='{.subjects[0].name}' | sed 's/^system:serviceaccounts://'",
                     rba, h);
        e2e_wait_out(E2E_WAIT_S, u,
                     "get rolebinding '%s' -n '%s' -o "
                     "jsonpath='{.subjects[0].name}' | sed 's/^system:serviceaccounts://'",
                     rbab, h);

        /*
         * The upgrade: a binding an earlier version made, under "ppol-<policy>-<ns>" with the
         * policy's marks, is there before the policy is (re)read by this version.
         */
        char *legacy = NULL;
        assert_true(asprintf(&legacy, "ppol-up-%s", u) > 0);
        kt_apply("apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n"
                 "metadata:\n  name: %s\n  namespace: %s\n  labels:\n"
                 "    " NAMES_LABEL_MANAGED_BY ": " NAMES_MANAGED_BY_VALUE "\n"
                 "    " NAMES_LABEL_POLICY ": up\n"
                 "    " NAMES_LABEL_POLICY_NAMESPACE ": %s\n"
                 "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, "
                 "name: 'system:image-puller'}\n"
                 "subjects:\n- {apiGroup: rbac.authorization.k8s.io, kind: Group, "
                 "name: 'system:serviceaccounts:%s'}\n",
                 legacy, h, h, u);
        imagepuller_policy(h, "up", u);
        e2e_wait_applied(h, "up", E2E_READY_S);
        char *now = rb_name("up", u);
        assert_string_not_equal(now, legacy);
        e2e_wait_out(E2E_WAIT_S, now,
                     "get rolebindings -n '%s' -l pullpolicy.io/policy=up "
                     "-o jsonpath='{range .items[*]}{.metadata.name}{end}'",
                     h);
        got = bindings_of(h, "up");
        assert_string_equal(got, now);
        free(got);

        e2e_policy_delete(h, "a");
        e2e_policy_delete(h, "a-b");
        e2e_policy_delete(h, "up");
        e2e_wait_out(E2E_WAIT_S, "", "get rolebindings -n '%s' -o name", h);
        e2e_ns_delete(u);
        e2e_ns_delete(nbu);
        e2e_ns_delete(h);
        free(now);
        free(legacy);
        free(rba);
        free(rbab);
        free(u);
        free(nbu);
        free(u0);
        free(bu);
        free(h);
}

static int group_setup(void **state) {
        if (e2e_suite_setup(state, "writes", NULL) < 0) return -1;
        snprintf(dist_flag, sizeof(dist_flag), "--distribution-namespaces=%s-home", E2E.prefix);
        const char *flags[] = {dist_flag, NULL};
        return e2e_controller_start(flags);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_refused_write_does_not_block_others),
            cmocka_unit_test(test_role_binding_names),
        };
        return cmocka_run_group_tests(tests, group_setup, e2e_suite_teardown);
}
