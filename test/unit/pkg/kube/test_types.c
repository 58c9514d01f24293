/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>

#include "kube/types.h"

static void check_path(const kube_resource *r, const char *ns, const char *name, const char *sub,
                       const char *want) {
        char *p = NULL;
        assert_int_equal(kube_resource_path(r, ns, name, sub, &p), 0);
        assert_string_equal(p, want);
        free(p);
}

static void test_paths(void **state) {
        check_path(&KUBE_RES_NAMESPACES, NULL, NULL, NULL, "/api/v1/namespaces");
        check_path(&KUBE_RES_NAMESPACES, NULL, "a", NULL, "/api/v1/namespaces/a");
        check_path(&KUBE_RES_SERVICEACCOUNTS, "ns", "default", NULL,
                   "/api/v1/namespaces/ns/serviceaccounts/default");
        check_path(&KUBE_RES_SECRETS, NULL, NULL, NULL, "/api/v1/secrets");
        check_path(&KUBE_RES_ROLEBINDINGS, "b", "ppol-x-a", NULL,
                   "/apis/rbac.authorization.k8s.io/v1/namespaces/b/rolebindings/ppol-x-a");
        check_path(&KUBE_RES_PULLPOLICIES, "b", "p", "status",
                   "/apis/pullpolicy.io/v1alpha1/namespaces/b/pullpolicies/p/status");
}

static void test_hostile_names(void **state) {
        char *p = (char *)0x1;
        const char *bad[] = {"", "..", ".", "a/b", "a?x=1", "a%2f", "a b", "a#b", "a\\b", "\x7f"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                assert_int_equal(kube_resource_path(&KUBE_RES_SECRETS, "ns", bad[i], NULL, &p),
                                 -EINVAL);
                assert_int_equal(kube_resource_path(&KUBE_RES_SECRETS, bad[i], "x", NULL, &p),
                                 -EINVAL);
        }
        /* Out-parameter untouched on failure. */
        assert_ptr_equal(p, (char *)0x1);
        /* A namespace on a cluster-scoped resource, a subresource without a name. */
        assert_int_equal(kube_resource_path(&KUBE_RES_NAMESPACES, "x", "y", NULL, &p), -EINVAL);
        assert_int_equal(kube_resource_path(&KUBE_RES_SECRETS, "x", NULL, "status", &p), -EINVAL);
}

static void test_event_types(void **state) {
        for (int t = 0; t < _KUBE_EVENT_TYPE_MAX; t++)
                assert_int_equal(kube_event_type_from_string(kube_event_type_to_string(t)), t);
        assert_int_equal(kube_event_type_from_string("added"), _KUBE_EVENT_TYPE_INVALID);
        assert_int_equal(kube_event_type_from_string(NULL), _KUBE_EVENT_TYPE_INVALID);
        assert_null(kube_event_type_to_string(_KUBE_EVENT_TYPE_MAX));
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_paths),
            cmocka_unit_test(test_hostile_names),
            cmocka_unit_test(test_event_types),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
