/* SPDX-License-Identifier: Apache-2.0 */
/*
 * e2e: validation and the error reasons of the status.
 *
 *  - The CRD rejects invalid specs with messages a person understands (the text kubectl
 *    apply prints), and nothing is stored.
 *  - Objects the real schema would reject, stored under a PERMISSIVE schema (the CRD is
 *    replaced for that one test by test/e2e/data/permissive-crd.yaml, then restored): each
 *    gets Ready=False, reason InvalidSpec, with a message naming the problem; the controller
 *    keeps running and serves a valid policy (whose defaults the apiserver did not fill).
 *  - A missing secret: SecretNotFound, then linked once it is created.
 *  - A malformed secret (wrong type; no "auths"): InvalidSecret, then linked once fixed;
 *    no secret data in status, events or the controller's (debug) log (R11).
 */
#include "e2e.h"

/* ---- the CRD's validation ---------------------------------------------------------------- */

typedef struct bad_case {
        const char *what;
        const char *spec; /* YAML lines under "spec:" */
        const char *expect[3];
} bad_case;

static const bad_case bad_cases[] = {
    {"nothing to do",
     "  subjects:\n    namespaces: [a]\n",
     {"at least one of imagePuller, pullSecrets, globalPullSecret.merge must be set"}},
    {"merge false alone",
     "  globalPullSecret:\n    merge: false\n",
     {"at least one of imagePuller, pullSecrets, globalPullSecret.merge must be set"}},
    {"duplicate secret",
     "  pullSecrets:\n  - name: a\n  - name: a\n",
     {"spec.pullSecrets", "Duplicate value"}},
    {"duplicate for",
     "  pullSecrets:\n  - name: a\n    for: [pull, pull]\n",
     {"spec.pullSecrets[0].for", "Duplicate value"}},
    {"bad for",
     "  pullSecrets:\n  - name: a\n    for: [fetch]\n",
     {"spec.pullSecrets[0].for[0]", "Unsupported value: \"fetch\""}},
    {"bad wait",
     "  pullSecrets:\n  - name: a\n  dockercfg:\n    wait: Sometimes\n",
     {"spec.dockercfg.wait", "Unsupported value: \"Sometimes\""}},
    {"negative timeout",
     "  pullSecrets:\n  - name: a\n  dockercfg:\n    timeoutSeconds: -1\n",
     {"spec.dockercfg.timeoutSeconds", "greater than or equal to 0"}},
    {"bad namespace name",
     "  subjects:\n    namespaces: [Not_A_Name]\n  imagePuller: {}\n",
     {"spec.subjects.namespaces[0]", "should match"}},
    {"In without values",
     "  subjects:\n    namespaceSelector:\n      matchExpressions:\n"
     "      - {key: team, operator: In}\n  imagePuller: {}\n",
     {"operators In and NotIn need at least one value"}},
    {"secret name",
     "  pullSecrets:\n  - name: Bad/Name\n",
     {"spec.pullSecrets[0].name", "should match"}},
};

static void test_crd_rejects_with_readable_messages(void **state) {
        char *ns = e2e_ns("crd", NULL);
        for (size_t i = 0; i < ARRAY_SIZE(bad_cases); i++) {
                const bad_case *c = &bad_cases[i];
                char *out = NULL;
                int r = kt_try_apply(&out,
                                     "apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                                     "metadata:\n  name: bad-%zu\n  namespace: %s\nspec:\n%s",
                                     i, ns, c->spec);
                fprintf(stderr, "[%s] kubectl apply: %d: %s", c->what, r, out ? out : "");
                assert_int_not_equal(r, 0);
                assert_non_null(out);
                for (size_t k = 0; k < ARRAY_SIZE(c->expect) && c->expect[k]; k++) {
                        if (!strstr(out, c->expect[k]))
                                fail_msg("[%s] the message lacks \"%s\"", c->what, c->expect[k]);
                }
                free(out);
                char *left = kt_kout("get ppol -n '%s' -o name", ns);
                assert_string_equal(left, "");
                free(left);
        }
        e2e_ns_delete(ns);
        free(ns);
}

/* ---- stored invalid objects ------------------------------------------------------------- */

static const char *crd_path(const char *which) {
        static char p[4096];
        if (strcmp(which, "real") == 0)
                snprintf(p, sizeof(p), "%s/crds/pullpolicy.io_pullpolicies.yaml", kt_root());
        else
                snprintf(p, sizeof(p), "%s/test/e2e/data/permissive-crd.yaml", kt_root());
        return p;
}

static bool permissive_installed;

static void restore_crd(void) {
        if (!permissive_installed) return;
        assert_int_equal(kt_kubectl("apply --server-side --force-conflicts -f '%s' >/dev/null",
                                    crd_path("real")),
                         0);
        permissive_installed = false;
}

static int restore_crd_teardown(void **state) {
        if (permissive_installed)
                kt_kubectl("apply --server-side --force-conflicts -f '%s' >/dev/null 2>&1",
                           crd_path("real"));
        permissive_installed = false;
        return 0;
}

/* kubectl apply --dry-run=server of an invalid policy in ns: 0 when the server accepts it. */
static int dry_run_invalid(void *ud) {
        const char *ns = ud;
        char *out = NULL, *yaml = NULL;
        if (asprintf(&yaml,
                     "apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                     "metadata:\n  name: probe\n  namespace: %s\n"
                     "spec:\n  subjects: {}\n",
                     ns) < 0)
                return -ENOMEM;
        int r = testenv_kubectl_input(yaml, &out, "apply --dry-run=server -f - 2>&1");
        free(out);
        free(yaml);
        return r;
}

static int schema_permissive(void *ud) {
        return dry_run_invalid(ud) == 0;
}

static int schema_strict(void *ud) {
        return dry_run_invalid(ud) > 0;
}

typedef struct stored_case {
        const char *name;
        const char *spec; /* the whole "spec:" entry */
        const char *expect;
} stored_case;

static const stored_case stored_cases[] = {
    {"nothing", "spec:\n  subjects:\n    namespaces: [a]\n",
     "at least one of imagePuller, pullSecrets, globalPullSecret.merge must be set"},
    {"dup", "spec:\n  pullSecrets:\n  - name: a\n  - name: a\n", "spec.pullSecrets"},
    {"wait", "spec:\n  pullSecrets:\n  - name: a\n  dockercfg:\n    wait: Sometimes\n",
     "spec.dockercfg.wait"},
    {"role-type", "spec:\n  imagePuller:\n    clusterRole: 42\n", "clusterRole"},
    {"list-type", "spec:\n  pullSecrets: creds\n", "pullSecrets"},
    {"spec-string", "spec: hello\n", "spec"},
    {"no-spec", "", "spec"},
    {"bad-ns", "spec:\n  subjects:\n    namespaces: [Not_A_Name]\n  imagePuller: {}\n",
     "Not_A_Name"},
};

static void test_stored_invalid_objects(void **state) {
        char *ns = e2e_ns("stored", NULL);
        e2e_pull_secret(ns, "creds", "registry.invalid.example.com", "inv");

        assert_int_equal(kt_kubectl("apply --server-side --force-conflicts -f '%s' >/dev/null",
                                    crd_path("permissive")),
                         0);
        permissive_installed = true;
        e2e_wait(schema_permissive, ns, E2E_WAIT_S, "the permissive schema to be in use");

        for (size_t i = 0; i < ARRAY_SIZE(stored_cases); i++)
                kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                         "metadata:\n  name: %s\n  namespace: %s\n%s",
                         stored_cases[i].name, ns, stored_cases[i].spec);
        /* and a valid one, without the defaults that the real schema would have filled */
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: valid\n  namespace: %s\n"
                 "spec:\n  subjects:\n    serviceAccounts: [default]\n"
                 "  pullSecrets:\n  - name: creds\n",
                 ns);

        for (size_t i = 0; i < ARRAY_SIZE(stored_cases); i++) {
                const stored_case *c = &stored_cases[i];
                e2e_wait_ready(ns, c->name, "False", "InvalidSpec", E2E_WAIT_S);
                char *msg =
                    kt_kout("get ppol '%s' -n '%s' -o jsonpath='" E2E_JSONPATH_READY ".message}'",
                            c->name, ns);
                fprintf(stderr, "[%s] InvalidSpec: %s\n", c->name, msg ? msg : "(none)");
                assert_non_null(msg);
                if (!strstr(msg, c->expect))
                        fail_msg("[%s] the message lacks \"%s\"", c->name, c->expect);
                free(msg);
        }
        /* nothing was done for them; the valid one is served, with the default for: [pull] */
        e2e_wait_applied(ns, "valid", E2E_WAIT_S);
        e2e_wait_link(ns, "default", "pull", "creds", 1, E2E_WAIT_S);
        assert_int_equal(e2e_sa_count(ns, "default", "mount", "creds"), 0);
        char *rbs = kt_kout("get rolebindings -n '%s' -o name", ns);
        assert_string_equal(rbs, "");
        free(rbs);
        /* still running, still healthy */
        assert_int_equal(waitpid(E2E.controller.pid, NULL, WNOHANG), 0);
        long code = 0;
        assert_int_equal(tproc_http_get(E2E.controller.health_port, "/healthz", &code, NULL), 0);
        assert_int_equal(code, 200);
        /* and said so once, as a Warning event */
        e2e_wait_out(E2E_WAIT_S, "Warning",
                     "get events -n '%s' --field-selector involvedObject.name=nothing,"
                     "reason=InvalidSpec -o jsonpath='{.items[0].type}'",
                     ns);

        /* they can be deleted (whatever finalizer they got is honoured) */
        for (size_t i = 0; i < ARRAY_SIZE(stored_cases); i++)
                e2e_policy_delete(ns, stored_cases[i].name);
        e2e_policy_delete(ns, "valid");
        e2e_wait_link(ns, "default", "pull", "creds", 0, E2E_WAIT_S);

        restore_crd();
        e2e_wait(schema_strict, ns, E2E_WAIT_S, "the real schema to be in use again");
        e2e_ns_delete(ns);
        free(ns);
}

/* ---- secrets ------------------------------------------------------------------------------ */

static bool has_problem(const char *ns, const char *policy, const char *name, const char *reason) {
        json_object *p = e2e_policy(ns, policy);
        bool found = false;
        for (size_t i = 0; i < kt_jlen(p, "status.problems"); i++) {
                json_object *pr = kt_jidx(p, "status.problems", i);
                const char *b = kt_jstr(pr, "name"), *c = kt_jstr(pr, "reason");
                if (b && c && !strcmp(b, name) && !strcmp(c, reason)) found = true;
        }
        json_object_put(p);
        return found;
}

static void test_missing_secret(void **state) {
        char *ns = e2e_ns("missing", NULL);
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: later\n  namespace: %s\n"
                 "spec:\n  pullSecrets:\n  - name: made-later\n",
                 ns);
        e2e_wait_ready(ns, "later", "False", "SecretNotFound", E2E_WAIT_S);
        char *msg =
            kt_kout("get ppol later -n '%s' -o jsonpath='" E2E_JSONPATH_READY ".message}'", ns);
        fprintf(stderr, "SecretNotFound: %s\n", msg);
        assert_non_null(strstr(msg, "made-later"));
        free(msg);
        assert_true(has_problem(ns, "later", "made-later", "SecretNotFound"));
        e2e_wait_out(E2E_WAIT_S, "yes",
                     "get events -n '%s' --field-selector involvedObject.name=later,"
                     "reason=SecretNotFound -o name | grep -q . && echo yes || echo no",
                     ns);
        assert_int_equal(e2e_sa_count(ns, "default", "pull", "made-later"), 0);
        e2e_hold_out(2.0, "",
                     "get sa default -n '%s' -o jsonpath="
                     "'{.imagePullSecrets[?(@.name==\"made-later\")].name}'",
                     ns);

        e2e_pull_secret(ns, "made-later", "registry.invalid.example.com", "inv");
        e2e_wait_link(ns, "default", "pull", "made-later", 1, E2E_WAIT_S);
        fprintf(stderr, "LATENCY linked in (%.2f, %.2f] s after the secret was created\n",
                E2E.wait_lo, E2E.wait_hi);
        e2e_wait_applied(ns, "later", E2E_WAIT_S);
        assert_false(has_problem(ns, "later", "made-later", "SecretNotFound"));

        e2e_policy_delete(ns, "later");
        e2e_ns_delete(ns);
        free(ns);
}

/* Status and events of the policy must not contain needle (a credential). */
static void assert_no_leak(const char *ns, const char *policy, const char *needle) {
        char *st = kt_kout("get ppol '%s' -n '%s' -o jsonpath='{.status}'", policy, ns);
        char *ev = kt_kout("get events -n '%s' -o jsonpath='{.items[*].message}'", ns);
        assert_non_null(st);
        assert_non_null(ev);
        assert_null(strstr(st, needle));
        assert_null(strstr(ev, needle));
        free(st);
        free(ev);
}

static void test_invalid_secret(void **state) {
        char *ns = e2e_ns("badsecret", NULL);
        const char *pw = "s3cr3t-e2e-password";
        char *auth = NULL, *b64 = NULL;
        assert_true(asprintf(&auth, "user:%s", pw) > 0);
        b64 = kt_b64encode(auth);
        /* valid JSON (the apiserver checks that much) without "auths" */
        kt_apply("apiVersion: v1\nkind: Secret\nmetadata:\n  name: noauths\n  namespace: %s\n"
                 "type: kubernetes.io/dockerconfigjson\nstringData:\n"
                 "  .dockerconfigjson: '{\"registry.example.com\":{\"auth\":\"%s\","
                 "\"password\":\"%s\"}}'\n",
                 ns, b64, pw);
        /* the wrong type */
        kt_apply("apiVersion: v1\nkind: Secret\nmetadata:\n  name: opaque\n  namespace: %s\n"
                 "type: Opaque\nstringData:\n  password: %s\n",
                 ns, pw);
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: malformed\n  namespace: %s\n"
                 "spec:\n  pullSecrets:\n  - name: noauths\n  - name: opaque\n",
                 ns);
        e2e_wait_ready(ns, "malformed", "False", "InvalidSecret", E2E_WAIT_S);
        assert_true(has_problem(ns, "malformed", "noauths", "InvalidSecret"));
        assert_true(has_problem(ns, "malformed", "opaque", "InvalidSecret"));
        char *msgs =
            kt_kout("get ppol malformed -n '%s' -o jsonpath='{.status.problems[*].message}'", ns);
        fprintf(stderr, "InvalidSecret problems: %s\n", msgs);
        free(msgs);
        assert_int_equal(e2e_sa_count(ns, "default", "pull", "noauths"), 0);
        assert_int_equal(e2e_sa_count(ns, "default", "pull", "opaque"), 0);
        assert_no_leak(ns, "malformed", pw);
        assert_no_leak(ns, "malformed", b64);

        /* fixed: the payload gets its auths; the wrong-typed secret is made again */
        kt_apply(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: noauths\n  namespace: %s\n"
            "type: kubernetes.io/dockerconfigjson\nstringData:\n"
            "  .dockerconfigjson: '{\"auths\":{\"registry.example.com\":{\"auth\":\"%s\"}}}'\n",
            ns, b64);
        e2e_wait_link(ns, "default", "pull", "noauths", 1, E2E_WAIT_S);
        assert_int_equal(e2e_sa_count(ns, "default", "pull", "opaque"), 0);
        e2e_wait_ready(ns, "malformed", "False", "InvalidSecret", E2E_WAIT_S);
        assert_int_equal(kt_kubectl("delete secret opaque -n '%s' >/dev/null", ns), 0);
        e2e_pull_secret(ns, "opaque", "registry2.example.com", "inv");
        e2e_wait_link(ns, "default", "pull", "opaque", 1, E2E_WAIT_S);
        e2e_wait_applied(ns, "malformed", E2E_WAIT_S);
        assert_no_leak(ns, "malformed", pw);
        /* nor in the controller's log, at debug level (R11) */
        assert_int_equal(tproc_log_count(&E2E.controller, pw, NULL), 0);
        assert_int_equal(tproc_log_count(&E2E.controller, b64, NULL), 0);

        e2e_policy_delete(ns, "malformed");
        free(auth);
        free(b64);
        e2e_ns_delete(ns);
        free(ns);
}

/* status.problems holds at most 20 entries, even with 30 secrets missing. */
static void test_problems_capped(void **state) {
        char *ns = e2e_ns("many", NULL);
        char list[4096] = "";
        for (int i = 0; i < 30; i++) {
                char l[64];
                snprintf(l, sizeof(l), "  - name: missing-%02d\n", i);
                strcat(list, l);
        }
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: many\n  namespace: %s\n"
                 "spec:\n  pullSecrets:\n%s",
                 ns, list);
        e2e_wait_ready(ns, "many", "False", "SecretNotFound", E2E_WAIT_S);
        json_object *p = e2e_policy(ns, "many");
        size_t n = kt_jlen(p, "status.problems");
        fprintf(stderr, "30 missing secrets: %zu problems reported\n", n);
        assert_true(n >= 1);
        assert_true(n <= 20);
        json_object_put(p);
        e2e_policy_delete(ns, "many");
        e2e_ns_delete(ns);
        free(ns);
}

static int group_setup(void **state) {
        if (e2e_suite_setup(state, "invalid", e2e_sim_mode()) < 0) return -1;
        return e2e_controller_start(NULL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_crd_rejects_with_readable_messages),
            cmocka_unit_test_teardown(test_stored_invalid_objects, restore_crd_teardown),
            cmocka_unit_test(test_missing_secret),
            cmocka_unit_test(test_invalid_secret),
            cmocka_unit_test(test_problems_capped),
        };
        return cmocka_run_group_tests(tests, group_setup, e2e_suite_teardown);
}
