/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_spec.h"
#include "util/macro.h"

static policy_spec *parse_ok(const char *json) {
        json_object *o = json_tokener_parse(json);
        if (!o) fail_msg("bad test JSON: %s", json);
        policy_spec *s = NULL;
        char *err = NULL;
        int r = policy_spec_parse(o, &s, &err);
        json_object_put(o);
        if (r < 0) fail_msg("%s: %d %s", json, r, err ? err : "");
        assert_null(err);
        return s;
}

static void parse_fail(const char *json, int want, const char *substring) {
        json_object *o = json ? json_tokener_parse(json) : NULL;
        if (json && !o && strcmp(json, "null") != 0) fail_msg("bad test JSON: %s", json);
        policy_spec *s = (policy_spec *)0x1;
        char *err = NULL;
        int r = policy_spec_parse(o, &s, &err);
        if (r != want) fail_msg("%s: got %d want %d (%s)", json, r, want, err ? err : "-");
        assert_ptr_equal(s, (policy_spec *)0x1);
        assert_non_null(err);
        if (!strstr(err, substring)) fail_msg("%s: \"%s\" lacks \"%s\"", json, err, substring);
        free(err);
        assert_int_equal(policy_spec_parse(o, &s, NULL), want);
        json_object_put(o);
}

static void test_minimal_defaults(void **state) {
        policy_spec *s = parse_ok("{\"imagePuller\":{}}");
        assert_true(s->image_puller);
        assert_string_equal(s->cluster_role, "system:image-puller");
        assert_false(policy_spec_has_namespace_subjects(s));
        assert_true(policy_spec_all_service_accounts(s));
        assert_int_equal(s->wait, POLICY_WAIT_AUTO);
        assert_int_equal(s->timeout_seconds, 300);
        assert_false(s->merge);
        assert_int_equal(s->n_pull_secrets, 0);
        policy_spec_free(s);

        s = parse_ok("{\"pullSecrets\":[{\"name\":\"quay-creds\"}]}");
        assert_false(s->image_puller);
        assert_null(s->cluster_role);
        assert_int_equal(s->n_pull_secrets, 1);
        assert_string_equal(s->pull_secrets[0].name, "quay-creds");
        assert_int_equal(s->pull_secrets[0].for_mask, POLICY_FOR_PULL);
        policy_spec_free(s);

        s = parse_ok("{\"globalPullSecret\":{\"merge\":true}}");
        assert_true(s->merge);
        policy_spec_free(s);
}

static void test_full_example(void **state) {
        /* the example of docs/API.md */
        policy_spec *s =
            parse_ok("{\"subjects\":{\"namespaces\":[\"project-a\"],"
                     "\"namespaceSelector\":{\"matchLabels\":{\"team\":\"a\"}},"
                     "\"serviceAccounts\":[\"default\",\"builder\"],"
                     "\"serviceAccountSelector\":{\"matchLabels\":{\"pulls\":\"true\"}}},"
                     "\"imagePuller\":{\"clusterRole\":\"system:image-puller\"},"
                     "\"pullSecrets\":[{\"name\":\"quay-creds\",\"for\":[\"pull\"]},"
                     "{\"name\":\"sso-auth\",\"for\":[\"mount\",\"pull\"]}],"
                     "\"dockercfg\":{\"wait\":\"Always\",\"timeoutSeconds\":60},"
                     "\"globalPullSecret\":{\"merge\":false}}");
        assert_int_equal(s->n_namespaces, 1);
        assert_string_equal(s->namespaces[0], "project-a");
        assert_non_null(s->namespace_selector);
        assert_int_equal(s->n_service_accounts, 2);
        assert_string_equal(s->service_accounts[1], "builder");
        assert_non_null(s->sa_selector);
        assert_true(policy_spec_has_namespace_subjects(s));
        assert_false(policy_spec_all_service_accounts(s));
        assert_int_equal(s->pull_secrets[1].for_mask, POLICY_FOR_PULL | POLICY_FOR_MOUNT);
        assert_int_equal(s->wait, POLICY_WAIT_ALWAYS);
        assert_int_equal(s->timeout_seconds, 60);
        assert_string_equal(policy_wait_to_string(s->wait), "Always");
        policy_spec_free(s);
}

static void test_subject_forms(void **state) {
        /* an empty selector selects all service accounts */
        policy_spec *s = parse_ok("{\"imagePuller\":{},\"subjects\":{\"serviceAccounts\":[\"a\"],"
                                  "\"serviceAccountSelector\":{}}}");
        assert_true(policy_spec_all_service_accounts(s));
        policy_spec_free(s);
        /* an explicitly empty list selects nobody (least privilege) */
        s = parse_ok("{\"imagePuller\":{},\"subjects\":{\"serviceAccounts\":[]}}");
        assert_false(policy_spec_all_service_accounts(s));
        assert_true(s->has_service_accounts);
        policy_spec_free(s);
        s = parse_ok("{\"imagePuller\":{},\"subjects\":{\"namespaces\":[]}}");
        assert_true(policy_spec_has_namespace_subjects(s));
        policy_spec_free(s);
        /* JSON nulls are absent */
        s = parse_ok("{\"imagePuller\":{},\"subjects\":{\"namespaces\":null,"
                     "\"namespaceSelector\":null},\"dockercfg\":null}");
        assert_false(policy_spec_has_namespace_subjects(s));
        assert_int_equal(s->timeout_seconds, 300);
        policy_spec_free(s);
        s = parse_ok("{\"imagePuller\":{},\"subjects\":{\"namespaceSelector\":{}}}");
        assert_true(policy_spec_has_namespace_subjects(s));
        assert_true(kube_selector_is_empty(s->namespace_selector));
        policy_spec_free(s);
}

static void test_timeout_bounds(void **state) {
        policy_spec *s = parse_ok("{\"imagePuller\":{},\"dockercfg\":{\"timeoutSeconds\":0}}");
        assert_int_equal(s->timeout_seconds, 0);
        policy_spec_free(s);
        s = parse_ok("{\"imagePuller\":{},\"dockercfg\":{\"timeoutSeconds\":86400,"
                     "\"wait\":\"Never\"}}");
        assert_int_equal(s->timeout_seconds, 86400);
        assert_int_equal(s->wait, POLICY_WAIT_NEVER);
        policy_spec_free(s);
        parse_fail("{\"imagePuller\":{},\"dockercfg\":{\"timeoutSeconds\":86401}}", -EINVAL,
                   "timeoutSeconds must be between 0 and 86400");
        parse_fail("{\"imagePuller\":{},\"dockercfg\":{\"timeoutSeconds\":-1}}", -EINVAL,
                   "between 0 and 86400");
        parse_fail("{\"imagePuller\":{},\"dockercfg\":{\"timeoutSeconds\":1.5}}", -EINVAL,
                   "must be an integer");
        parse_fail("{\"imagePuller\":{},\"dockercfg\":{\"timeoutSeconds\":\"300\"}}", -EINVAL,
                   "must be an integer");
        parse_fail("{\"imagePuller\":{},\"dockercfg\":{\"timeoutSeconds\":99999999999999}}",
                   -EINVAL, "between 0 and 86400");
}

static void test_invalid_specs(void **state) {
        parse_fail(NULL, -EINVAL, "spec is required");
        parse_fail("null", -EINVAL, "spec is required");
        parse_fail("[]", -EINVAL, "spec must be an object");
        parse_fail("{}", -EINVAL,
                   "spec: at least one of imagePuller, pullSecrets, globalPullSecret.merge must "
                   "be set");
        parse_fail("{\"pullSecrets\":[],\"globalPullSecret\":{\"merge\":false}}", -EINVAL,
                   "at least one of");
        parse_fail("{\"imagePuller\":{\"clusterRole\":\"a/b\"}}", -EINVAL,
                   "\"a/b\" is not a valid ClusterRole name");
        parse_fail("{\"imagePuller\":{\"clusterRole\":\"\"}}", -EINVAL,
                   "not a valid ClusterRole name");
        parse_fail("{\"imagePuller\":{\"clusterRole\":7}}", -EINVAL,
                   "clusterRole must be a string");
        parse_fail("{\"imagePuller\":true}", -EINVAL, "spec.imagePuller must be an object");
        parse_fail("{\"pullSecrets\":[{\"name\":\"a_b\"}]}", -EINVAL,
                   "spec.pullSecrets[0].name: \"a_b\" is not a valid secret name");
        parse_fail("{\"pullSecrets\":[{}]}", -EINVAL, "spec.pullSecrets[0].name is required");
        parse_fail("{\"pullSecrets\":[\"x\"]}", -EINVAL, "spec.pullSecrets[0] must be an object");
        parse_fail("{\"pullSecrets\":[{\"name\":\"x\"},{\"name\":\"x\"}]}", -EINVAL,
                   "each secret name may appear only once (\"x\")");
        parse_fail("{\"pullSecrets\":[{\"name\":\"x\",\"for\":[\"push\"]}]}", -EINVAL,
                   "\"push\" is neither pull nor mount");
        parse_fail("{\"pullSecrets\":[{\"name\":\"x\",\"for\":[\"pull\",\"pull\"]}]}", -EINVAL,
                   "each of pull and mount may appear only once");
        parse_fail("{\"pullSecrets\":[{\"name\":\"x\",\"for\":[]}]}", -EINVAL,
                   "for must not be empty");
        parse_fail("{\"pullSecrets\":[{\"name\":\"x\",\"for\":\"pull\"}]}", -EINVAL,
                   "for must be a list");
        parse_fail("{\"pullSecrets\":[{\"name\":\"x\",\"for\":[\"pull\",\"mount\",\"pull\"]}]}",
                   -EINVAL, "may appear only once");
        parse_fail("{\"pullSecrets\":{}}", -EINVAL, "spec.pullSecrets must be a list");
        parse_fail("{\"imagePuller\":{},\"dockercfg\":{\"wait\":\"Sometimes\"}}", -EINVAL,
                   "\"Sometimes\" is not one of Auto, Always, Never");
        parse_fail("{\"imagePuller\":{},\"dockercfg\":{\"wait\":1}}", -EINVAL,
                   "is not one of Auto, Always, Never");
        parse_fail("{\"globalPullSecret\":{\"merge\":\"yes\"}}", -EINVAL,
                   "merge must be true or false");
        parse_fail("{\"imagePuller\":{},\"subjects\":[]}", -EINVAL,
                   "spec.subjects must be an object");
        parse_fail("{\"imagePuller\":{},\"subjects\":{\"namespaces\":[\"Project\"]}}", -EINVAL,
                   "spec.subjects.namespaces[0]: \"Project\" is not a valid namespace name");
        parse_fail("{\"imagePuller\":{},\"subjects\":{\"namespaces\":[\"a\",\"b\",\"a\"]}}",
                   -EINVAL, "\"a\" is listed twice");
        parse_fail("{\"imagePuller\":{},\"subjects\":{\"namespaces\":\"a\"}}", -EINVAL,
                   "must be a list of names");
        parse_fail("{\"imagePuller\":{},\"subjects\":{\"serviceAccounts\":[1]}}", -EINVAL,
                   "spec.subjects.serviceAccounts[0] must be a string");
        parse_fail("{\"imagePuller\":{},\"subjects\":{\"serviceAccounts\":[\"a b\"]}}", -EINVAL,
                   "is not a valid service account name");
        parse_fail("{\"imagePuller\":{},\"subjects\":{\"namespaceSelector\":{\"matchExpressions\":"
                   "[{\"key\":\"a\",\"operator\":\"In\"}]}}}",
                   -EINVAL,
                   "spec.subjects.namespaceSelector: matchExpressions[0]: operator In "
                   "needs at least one value");
        parse_fail("{\"imagePuller\":{},\"subjects\":{\"serviceAccountSelector\":"
                   "{\"matchLabels\":{\"a\":\"b c\"}}}}",
                   -EINVAL, "spec.subjects.serviceAccountSelector: matchLabels:");
        /* non-printable input is not echoed */
        parse_fail("{\"pullSecrets\":[{\"name\":\"a\\u0007b\"}]}", -EINVAL, "\"a?b\"");
}

static void test_limits(void **state) {
        char buf[16384];
        for (int n = 256; n <= 257; n++) {
                size_t o = (size_t)snprintf(buf, sizeof(buf),
                                            "{\"imagePuller\":{},\"subjects\":{\"namespaces\":[");
                for (int i = 0; i < n; i++)
                        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s\"n%d\"", i ? "," : "",
                                              i);
                snprintf(buf + o, sizeof(buf) - o, "]}}");
                if (n == 256) {
                        policy_spec *s = parse_ok(buf);
                        assert_int_equal(s->n_namespaces, 256);
                        policy_spec_free(s);
                } else {
                        parse_fail(buf, -E2BIG, "at most 256 names");
                }
        }
        for (int n = 64; n <= 65; n++) {
                size_t o = (size_t)snprintf(buf, sizeof(buf), "{\"pullSecrets\":[");
                for (int i = 0; i < n; i++)
                        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s{\"name\":\"s%d\"}",
                                              i ? "," : "", i);
                snprintf(buf + o, sizeof(buf) - o, "]}");
                if (n == 64) {
                        policy_spec *s = parse_ok(buf);
                        assert_int_equal(s->n_pull_secrets, 64);
                        policy_spec_free(s);
                } else {
                        parse_fail(buf, -E2BIG, "at most 64 secrets");
                }
        }
        /* a 253-byte role name is fine, 254 is not */
        char role[260];
        memset(role, 'r', 253);
        role[253] = 0;
        snprintf(buf, sizeof(buf), "{\"imagePuller\":{\"clusterRole\":\"%s\"}}", role);
        policy_spec_free(parse_ok(buf));
        role[253] = 'r', role[254] = 0;
        snprintf(buf, sizeof(buf), "{\"imagePuller\":{\"clusterRole\":\"%s\"}}", role);
        parse_fail(buf, -EINVAL, "not a valid ClusterRole name");
}

/* issue 11: opt-ins, false by default, booleans only */
static void test_issue11_opt_ins(void **state) {
        policy_spec *s = parse_ok("{\"imagePuller\":{}}");
        assert_false(s->verify_credentials);
        assert_false(s->restart_stale_pods);
        policy_spec_free(s);
        s = parse_ok("{\"imagePuller\":{},\"verifyCredentials\":true,\"restartStalePods\":true}");
        assert_true(s->verify_credentials);
        assert_true(s->restart_stale_pods);
        policy_spec_free(s);
        parse_fail("{\"imagePuller\":{},\"verifyCredentials\":\"yes\"}", -EINVAL,
                   "spec.verifyCredentials must be true or false");
        parse_fail("{\"imagePuller\":{},\"restartStalePods\":1}", -EINVAL,
                   "spec.restartStalePods must be true or false");
}

static void test_unknown_members_ignored(void **state) {
        /* the apiserver prunes unknown fields; an old stored object may still have some */
        policy_spec *s = parse_ok("{\"imagePuller\":{\"clusterRole\":\"x\",\"extra\":1},"
                                  "\"future\":{\"a\":1}}");
        assert_string_equal(s->cluster_role, "x");
        policy_spec_free(s);
        assert_null(policy_spec_free(NULL));
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_minimal_defaults),        cmocka_unit_test(test_full_example),
            cmocka_unit_test(test_subject_forms),           cmocka_unit_test(test_timeout_bounds),
            cmocka_unit_test(test_invalid_specs),           cmocka_unit_test(test_limits),
            cmocka_unit_test(test_unknown_members_ignored), cmocka_unit_test(test_issue11_opt_ins),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
