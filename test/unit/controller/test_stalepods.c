/* SPDX-License-Identifier: Apache-2.0 */
/*
 * controller/stalepods: the staleness decision (R13) on Pod objects as the API server returns
 * them, and the per-policy deletion rate.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stalepods.h"

/* A pod with phase, its imagePullSecrets (JSON array text), a container waiting with reason
 * (NULL: running), init (true: that container is an init container) and owner JSON (or ""). */
static json_object *pod(const char *phase, const char *secrets, const char *reason, bool init,
                        const char *owners) {
        char buf[2048];
        char st[512] = "";
        if (reason)
                snprintf(st, sizeof(st),
                         ",\"%s\":[{\"name\":\"c\",\"state\":{\"waiting\":{\"reason\":\"%s\"}}}]",
                         init ? "initContainerStatuses" : "containerStatuses", reason);
        else
                snprintf(st, sizeof(st),
                         ",\"containerStatuses\":[{\"name\":\"c\",\"state\":{\"running\":{}}}]");
        snprintf(buf, sizeof(buf),
                 "{\"metadata\":{\"name\":\"p\",\"namespace\":\"ns\"%s%s},"
                 "\"spec\":{\"serviceAccountName\":\"default\",\"imagePullSecrets\":%s},"
                 "\"status\":{\"phase\":\"%s\"%s}}",
                 *owners ? ",\"ownerReferences\":" : "", owners, secrets, phase, st);
        json_object *o = json_tokener_parse(buf);
        if (!o) fail_msg("bad JSON: %s", buf);
        return o;
}

#define RS "[{\"kind\":\"ReplicaSet\",\"name\":\"rs\",\"controller\":true}]"

static const char *const linked[] = {"registry-robot", "other"};

static void judge(json_object *p, stale_pod_verdict *v) {
        assert_int_equal(stale_pod_judge(p, linked, 2, v), 0);
        json_object_put(p);
}

static void test_stale_and_restartable(void **state) {
        stale_pod_verdict v;
        judge(pod("Pending", "[{\"name\":\"other\"}]", "ImagePullBackOff", false, RS), &v);
        assert_true(v.stale);
        assert_true(v.restartable);
        assert_int_equal(v.n_missing, 1);
        assert_string_equal(v.missing[0], "registry-robot");
        stale_pod_verdict_done(&v);
        /* ErrImagePull in an init container counts the same; nothing linked is there */
        judge(pod("Pending", "[]", "ErrImagePull", true, RS), &v);
        assert_true(v.stale);
        assert_int_equal(v.n_missing, 2);
        stale_pod_verdict_done(&v);
}

static void test_not_stale(void **state) {
        stale_pod_verdict v;
        /* it has every linked secret: failing to pull is not ours to fix */
        judge(pod("Pending", "[{\"name\":\"other\"},{\"name\":\"registry-robot\"}]", "ErrImagePull",
                  false, RS),
              &v);
        assert_false(v.stale);
        assert_false(v.restartable);
        stale_pod_verdict_done(&v);
        /* not in the pull-error state */
        judge(pod("Pending", "[]", "ContainerCreating", false, RS), &v);
        assert_false(v.stale);
        stale_pod_verdict_done(&v);
        judge(pod("Pending", "[]", NULL, false, RS), &v);
        assert_false(v.stale);
        stale_pod_verdict_done(&v);
        /* not Pending */
        judge(pod("Running", "[]", "ImagePullBackOff", false, RS), &v);
        assert_false(v.stale);
        stale_pod_verdict_done(&v);
}

static void test_owner_kinds(void **state) {
        static const struct {
                const char *owners;
                bool restartable;
        } cases[] = {
            {"", false}, /* a bare pod would be lost */
            {"[{\"kind\":\"StatefulSet\",\"name\":\"s\",\"controller\":true}]", true},
            {"[{\"kind\":\"Job\",\"name\":\"j\",\"controller\":true}]", true},
            {"[{\"kind\":\"DaemonSet\",\"name\":\"d\",\"controller\":true}]", true},
            {"[{\"kind\":\"ReplicaSet\",\"name\":\"rs\"}]", false}, /* owner, not controller */
            {"[{\"kind\":\"ReplicaSet\",\"name\":\"rs\",\"controller\":\"true\"}]", false},
            {"[{\"kind\":\"Node\",\"name\":\"n\",\"controller\":true}]", false}, /* static pod */
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                stale_pod_verdict v;
                judge(pod("Pending", "[]", "ImagePullBackOff", false, cases[i].owners), &v);
                assert_true(v.stale);
                if (v.restartable != cases[i].restartable) fail_msg("case %zu", i);
                stale_pod_verdict_done(&v);
        }
}

static void test_hostile(void **state) {
        stale_pod_verdict v = {.stale = true};
        assert_int_equal(stale_pod_judge(NULL, linked, 2, &v), -EINVAL);
        json_object *a = json_object_new_array();
        assert_int_equal(stale_pod_judge(a, linked, 2, &v), -EINVAL);
        json_object_put(a);
        assert_true(v.stale); /* untouched */
        /* wrong types everywhere: not stale, no crash */
        json_object *o = json_tokener_parse(
            "{\"spec\":{\"imagePullSecrets\":\"x\"},\"status\":{\"phase\":\"Pending\","
            "\"containerStatuses\":[1,{\"state\":5},{\"state\":{\"waiting\":{\"reason\":7}}}]}}");
        assert_int_equal(stale_pod_judge(o, linked, 2, &v), 0);
        assert_false(v.stale);
        stale_pod_verdict_done(&v);
        json_object_put(o);
        stale_pod_verdict_done(NULL);
}

static void test_rate(void **state) {
        stale_rate r = {0};
        /* a burst of per_minute, then one every 60/per_minute seconds */
        for (int i = 0; i < 3; i++) assert_true(stale_rate_allow(&r, 100.0, 3));
        assert_false(stale_rate_allow(&r, 100.0, 3));
        assert_false(stale_rate_allow(&r, 119.0, 3));
        assert_true(stale_rate_allow(&r, 120.5, 3));
        assert_false(stale_rate_allow(&r, 121.0, 3));
        /* never more than the burst after a long pause */
        int n = 0;
        while (stale_rate_allow(&r, 10000.0, 3)) n++;
        assert_int_equal(n, 3);
        assert_false(stale_rate_allow(&r, 10000.0, 0));
        assert_false(stale_rate_allow(NULL, 1.0, 3));
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_stale_and_restartable),
            cmocka_unit_test(test_not_stale),
            cmocka_unit_test(test_owner_kinds),
            cmocka_unit_test(test_hostile),
            cmocka_unit_test(test_rate),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
