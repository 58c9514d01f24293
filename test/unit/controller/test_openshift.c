/* SPDX-License-Identifier: Apache-2.0 */
/*
 * R4 Auto: reading OpenShift's registry state as cluster-openshift-controller-manager-
 * operator's ImageRegistryIsEnabled() does (the objects' shapes follow a real cluster).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "openshift.h"

static json_object *parse(const char *s) {
        json_object *o = json_tokener_parse(s);
        assert_non_null(o);
        return o;
}

static openshift_registry_state cv(const char *json) {
        json_object *o = parse(json);
        openshift_registry_state s = openshift_capability_state(o);
        json_object_put(o);
        return s;
}

static openshift_registry_state co(const char *json) {
        json_object *o = parse(json);
        openshift_registry_state s = openshift_registry_operator_state(o);
        json_object_put(o);
        return s;
}

static void test_capability(void **state) {
        assert_int_equal(cv("{\"metadata\":{\"name\":\"version\"},\"status\":{\"capabilities\":{"
                            "\"enabledCapabilities\":[\"Build\",\"ImageRegistry\"],"
                            "\"knownCapabilities\":[\"Build\",\"ImageRegistry\"]}}}"),
                         OPENSHIFT_REGISTRY_ENABLED);
        assert_int_equal(cv("{\"metadata\":{\"name\":\"version\"},\"status\":{\"capabilities\":{"
                            "\"enabledCapabilities\":[\"Build\",\"Console\"],"
                            "\"knownCapabilities\":[\"Build\",\"Console\",\"ImageRegistry\"]}}}"),
                         OPENSHIFT_REGISTRY_REMOVED);
        /* an empty list: every optional capability is off */
        assert_int_equal(cv("{\"status\":{\"capabilities\":{\"enabledCapabilities\":[]}}}"),
                         OPENSHIFT_REGISTRY_REMOVED);
        /* no list (before capabilities, or status not written yet): cannot tell */
        assert_int_equal(cv("{\"status\":{}}"), OPENSHIFT_REGISTRY_UNKNOWN);
        assert_int_equal(cv("{\"status\":{\"capabilities\":{}}}"), OPENSHIFT_REGISTRY_UNKNOWN);
        assert_int_equal(cv("{\"status\":{\"capabilities\":{\"enabledCapabilities\":\"x\"}}}"),
                         OPENSHIFT_REGISTRY_UNKNOWN);
        assert_int_equal(cv("{}"), OPENSHIFT_REGISTRY_UNKNOWN);
}

static void test_registry_operator(void **state) {
        assert_int_equal(co("{\"status\":{\"conditions\":[{\"type\":\"Available\",\"status\":"
                            "\"True\",\"reason\":\"Removed\"},{\"type\":\"Progressing\","
                            "\"status\":\"False\",\"reason\":\"Removed\"}]}}"),
                         OPENSHIFT_REGISTRY_REMOVED);
        assert_int_equal(co("{\"status\":{\"conditions\":[{\"type\":\"Available\",\"status\":"
                            "\"True\",\"reason\":\"Ready\"}]}}"),
                         OPENSHIFT_REGISTRY_ENABLED);
        /* the first condition decides, as upstream ("any condition should do") */
        assert_int_equal(co("{\"status\":{\"conditions\":[{\"type\":\"Available\",\"reason\":"
                            "\"Ready\"},{\"type\":\"Degraded\",\"reason\":\"Removed\"}]}}"),
                         OPENSHIFT_REGISTRY_ENABLED);
        assert_int_equal(co("{\"status\":{\"conditions\":[{\"type\":\"Available\"}]}}"),
                         OPENSHIFT_REGISTRY_ENABLED);
        /* no conditions yet: cannot tell */
        assert_int_equal(co("{\"status\":{\"conditions\":[]}}"), OPENSHIFT_REGISTRY_UNKNOWN);
        assert_int_equal(co("{\"status\":{}}"), OPENSHIFT_REGISTRY_UNKNOWN);
        assert_int_equal(co("{}"), OPENSHIFT_REGISTRY_UNKNOWN);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_capability),
            cmocka_unit_test(test_registry_operator),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
