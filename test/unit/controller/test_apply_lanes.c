/* SPDX-License-Identifier: Apache-2.0 */
/* When a plan is applied in parallel lanes, and the apply's source cache (apply_internal.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply_internal.h"
#include "plan.h"

static plan *plan_of(size_t n) {
        plan *p = calloc(1, sizeof(*p));
        assert_non_null(p);
        p->writes = calloc(n, sizeof(plan_write));
        assert_non_null(p->writes);
        p->n_writes = n;
        for (size_t i = 0; i < n; i++) {
                p->writes[i].kind = PLAN_SA_EDIT;
                p->writes[i].namespace = "ns";
        }
        return p;
}

static void plan_drop(plan *p) {
        free(p->writes);
        free(p);
}

static void test_lanes_wanted(void **state) {
        plan *p = plan_of(PP_APPLY_LANES_MIN_WRITES - 1);
        assert_false(apply_lanes_wanted(p)); /* small plans: one request at a time, as ever */
        plan_drop(p);
        p = plan_of(PP_APPLY_LANES_MIN_WRITES);
        assert_true(apply_lanes_wanted(p));
        /* finalizers first (ADD) and last (REMOVE) are fine */
        p->writes[0].kind = PLAN_ADD_FINALIZER;
        p->writes[p->n_writes - 1].kind = PLAN_REMOVE_FINALIZER;
        assert_true(apply_lanes_wanted(p));
        /* anywhere else the plan's order matters across namespaces: sequential */
        p->writes[5].kind = PLAN_ADD_FINALIZER;
        assert_false(apply_lanes_wanted(p));
        p->writes[5].kind = PLAN_REMOVE_FINALIZER;
        assert_false(apply_lanes_wanted(p));
        p->writes[5].kind = PLAN_SA_EDIT;
        /* a binding without its subject namespace cannot be put in the right lane */
        p->writes[6].kind = PLAN_RB_DELETE;
        assert_false(apply_lanes_wanted(p));
        p->writes[6].rb.subject_namespace = "ns";
        assert_true(apply_lanes_wanted(p));
        p->writes[7].namespace = NULL;
        assert_false(apply_lanes_wanted(p));
        plan_drop(p);
        assert_false(apply_lanes_wanted(NULL));
}

static void test_sources(void **state) {
        apply_sources *s = apply_sources_new();
        assert_non_null(s);
        assert_null(apply_sources_get(s, "home", "creds"));
        json_object *o = json_object_new_object();
        apply_sources_put(s, "home", "creds", o);
        json_object *got = apply_sources_get(s, "home", "creds");
        assert_ptr_equal(got, o);
        json_object_put(got);
        assert_null(apply_sources_get(s, "home", "other"));
        assert_null(apply_sources_get(s, "other", "creds"));
        /* shared by lanes: alive until the last reference goes */
        apply_sources *s2 = apply_sources_ref(s);
        assert_null(apply_sources_unref(s));
        got = apply_sources_get(s2, "home", "creds");
        assert_non_null(got);
        json_object_put(got);
        /* bounded */
        char name[32];
        for (int i = 0; i < PP_APPLY_SOURCES_MAX + 10; i++) {
                snprintf(name, sizeof(name), "s-%d", i);
                apply_sources_put(s2, "home", name, o);
        }
        snprintf(name, sizeof(name), "s-%d", PP_APPLY_SOURCES_MAX + 5);
        assert_null(apply_sources_get(s2, "home", name));
        json_object_put(o);
        assert_null(apply_sources_unref(s2));
        assert_null(apply_sources_unref(NULL));
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_lanes_wanted),
            cmocka_unit_test(test_sources),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
