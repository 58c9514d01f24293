/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kube/meta.h"
#include "util/macro.h"

static json_object *parse(const char *s) {
        json_object *o = json_tokener_parse(s);
        assert_non_null(o);
        return o;
}

/* Decodes s; returns the error code and leaves *m untouched on failure. */
static int decode_str(const char *s, const kube_meta_decode_opts *opts, kube_meta *m) {
        json_object *o = parse(s);
        int r = kube_meta_decode_full(o, opts, m);
        json_object_put(o);
        return r;
}

static const char full_sa[] =
    "{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\",\"metadata\":{"
    "\"name\":\"builder\",\"namespace\":\"project-a\","
    "\"uid\":\"6f1c-42\",\"resourceVersion\":\"12345\",\"generation\":7,"
    "\"deletionTimestamp\":\"2024-01-01T00:00:00Z\","
    "\"labels\":{\"zeta\":\"z\",\"app\":\"web\",\"pulls\":\"true\"},"
    "\"annotations\":{\"pullpolicy.io/links\":\"[]\","
    "\"openshift.io/internal-registry-pull-secret-ref\":\"builder-dockercfg-x\","
    "\"kubectl.kubernetes.io/last-applied-configuration\":\"{}\"},"
    "\"ownerReferences\":[{\"apiVersion\":\"pullpolicy.io/v1alpha1\",\"kind\":\"PullPolicy\","
    "\"name\":\"p\",\"uid\":\"u-1\",\"controller\":true},"
    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"name\":\"c\",\"uid\":\"u-2\"}],"
    "\"finalizers\":[\"pullpolicy.io/cleanup\",\"other\"]},"
    "\"secrets\":[{\"name\":\"s\"}]}";

static void test_decode_full(void **state) {
        kube_meta m = {};
        assert_int_equal(decode_str(full_sa, NULL, &m), 0);
        assert_string_equal(m.name, "builder");
        assert_string_equal(m.namespace, "project-a");
        assert_string_equal(m.uid, "6f1c-42");
        assert_string_equal(m.resource_version, "12345");
        assert_int_equal(m.generation, 7);
        assert_true(m.deleting);

        assert_int_equal(m.labels.n, 3);
        /* sorted by key */
        assert_string_equal(m.labels.items[0].key, "app");
        assert_string_equal(m.labels.items[1].key, "pulls");
        assert_string_equal(m.labels.items[2].key, "zeta");
        assert_string_equal(kube_kvs_get(&m.labels, "app"), "web");
        assert_string_equal(kube_kvs_get(&m.labels, "zeta"), "z");
        assert_string_equal(kube_meta_label(&m, "pulls"), "true");
        assert_null(kube_kvs_get(&m.labels, "missing"));
        assert_null(kube_kvs_get(&m.labels, "aaa"));
        assert_null(kube_kvs_get(&m.labels, "zzz"));

        assert_int_equal(m.annotations.n, 3);
        assert_string_equal(kube_meta_annotation(&m, "pullpolicy.io/links"), "[]");

        assert_int_equal(m.n_owners, 2);
        assert_string_equal(m.owners[0].api_version, "pullpolicy.io/v1alpha1");
        assert_string_equal(m.owners[0].kind, "PullPolicy");
        assert_string_equal(m.owners[0].name, "p");
        assert_string_equal(m.owners[0].uid, "u-1");
        assert_true(m.owners[0].controller);
        assert_false(m.owners[1].controller);
        assert_ptr_equal(kube_meta_controller_ref(&m), &m.owners[0]);

        assert_int_equal(m.n_finalizers, 2);
        assert_string_equal(m.finalizers[0], "pullpolicy.io/cleanup");
        assert_true(kube_meta_has_finalizer(&m, "other"));
        assert_false(kube_meta_has_finalizer(&m, "nope"));

        _cleanup_free_ char *key = kube_meta_key(&m);
        assert_string_equal(key, "project-a/builder");

        assert_true(kube_meta_mem(&m) > strlen("builder") + strlen("project-a"));
        kube_meta_done(&m);
        kube_meta_done(&m); /* idempotent: zeroed */
        kube_meta_done(NULL);
}

static void test_decode_minimal_cluster_scoped(void **state) {
        kube_meta m = {};
        assert_int_equal(decode_str("{\"metadata\":{\"name\":\"ns1\"}}", NULL, &m), 0);
        assert_string_equal(m.name, "ns1");
        assert_null(m.namespace);
        assert_null(m.uid);
        assert_null(m.resource_version);
        assert_int_equal(m.generation, 0);
        assert_false(m.deleting);
        assert_int_equal(m.labels.n, 0);
        assert_int_equal(m.annotations.n, 0);
        assert_int_equal(m.n_owners, 0);
        assert_int_equal(m.n_finalizers, 0);
        assert_null(kube_meta_controller_ref(&m));
        _cleanup_free_ char *key = kube_meta_key(&m);
        assert_string_equal(key, "ns1");
        assert_true(kube_meta_mem(&m) > 0);
        kube_meta_done(&m);

        /* "" namespace and JSON nulls mean "not set" */
        assert_int_equal(decode_str("{\"metadata\":{\"name\":\"x\",\"namespace\":\"\","
                                    "\"labels\":null,\"annotations\":null,\"ownerReferences\":null,"
                                    "\"finalizers\":null,\"deletionTimestamp\":null,"
                                    "\"generation\":null,\"uid\":null}}",
                                    NULL, &m),
                         0);
        assert_null(m.namespace);
        assert_false(m.deleting);
        assert_int_equal(m.labels.n, 0);
        kube_meta_done(&m);
}

static void test_decode_partial_object_metadata(void **state) {
        static const char pom[] =
            "{\"kind\":\"PartialObjectMetadata\",\"apiVersion\":\"meta.k8s.io/v1\","
            "\"metadata\":{\"name\":\"quay-creds\",\"namespace\":\"project-b\","
            "\"uid\":\"abc\",\"resourceVersion\":\"99\","
            "\"labels\":{\"app.kubernetes.io/managed-by\":\"pullpolicy-controller\"}}}";
        kube_meta m = {};
        assert_int_equal(decode_str(pom, NULL, &m), 0);
        assert_string_equal(m.name, "quay-creds");
        assert_string_equal(m.namespace, "project-b");
        assert_string_equal(m.resource_version, "99");
        assert_string_equal(kube_meta_label(&m, "app.kubernetes.io/managed-by"),
                            "pullpolicy-controller");
        kube_meta_done(&m);
}

static void assert_decode_fails(const char *s, int err) {
        kube_meta m = {.generation = 4242};
        assert_int_equal(decode_str(s, NULL, &m), err);
        /* out-parameter untouched */
        assert_int_equal(m.generation, 4242);
        assert_null(m.name);
}

static void test_decode_invalid(void **state) {
        kube_meta m = {};
        assert_int_equal(kube_meta_decode(NULL, &m), -EINVAL);

        assert_decode_fails("[]", -EINVAL);
        assert_decode_fails("{}", -EINVAL);
        assert_decode_fails("{\"metadata\":null}", -EINVAL);
        assert_decode_fails("{\"metadata\":[]}", -EINVAL);
        assert_decode_fails("{\"metadata\":{}}", -EINVAL);
        assert_decode_fails("{\"metadata\":{\"name\":\"\"}}", -EINVAL);
        assert_decode_fails("{\"metadata\":{\"name\":5}}", -EINVAL);
        assert_decode_fails("{\"metadata\":{\"name\":\"a\",\"namespace\":true}}", -EINVAL);
        assert_decode_fails("{\"metadata\":{\"name\":\"a\",\"resourceVersion\":12}}", -EINVAL);
        assert_decode_fails("{\"metadata\":{\"name\":\"a\",\"generation\":\"3\"}}", -EINVAL);
        assert_decode_fails("{\"metadata\":{\"name\":\"a\",\"deletionTimestamp\":1}}", -EINVAL);
        assert_decode_fails("{\"metadata\":{\"name\":\"a\",\"labels\":[]}}", -EINVAL);
        assert_decode_fails("{\"metadata\":{\"name\":\"a\",\"labels\":{\"k\":1}}}", -EINVAL);
        assert_decode_fails("{\"metadata\":{\"name\":\"a\",\"labels\":{\"a\":\"b\",\"k\":null}}}",
                            -EINVAL);
        assert_decode_fails("{\"metadata\":{\"name\":\"a\",\"labels\":{\"\":\"v\"}}}", -EINVAL);
        assert_decode_fails("{\"metadata\":{\"name\":\"a\",\"annotations\":\"x\"}}", -EINVAL);
        assert_decode_fails("{\"metadata\":{\"name\":\"a\",\"ownerReferences\":{}}}", -EINVAL);
        assert_decode_fails("{\"metadata\":{\"name\":\"a\",\"ownerReferences\":[1]}}", -EINVAL);
        /* owner reference lacking uid */
        assert_decode_fails("{\"metadata\":{\"name\":\"a\",\"ownerReferences\":["
                            "{\"apiVersion\":\"v1\",\"kind\":\"K\",\"name\":\"n\"}]}}",
                            -EINVAL);
        /* second owner reference bad, after the first was decoded (no leak) */
        assert_decode_fails("{\"metadata\":{\"name\":\"a\",\"ownerReferences\":["
                            "{\"apiVersion\":\"v1\",\"kind\":\"K\",\"name\":\"n\",\"uid\":\"u\"},"
                            "{\"apiVersion\":\"v1\",\"kind\":\"K\",\"name\":\"n\",\"uid\":\"u\","
                            "\"controller\":\"yes\"}]}}",
                            -EINVAL);
        assert_decode_fails("{\"metadata\":{\"name\":\"a\",\"finalizers\":\"f\"}}", -EINVAL);
        assert_decode_fails("{\"metadata\":{\"name\":\"a\",\"finalizers\":[\"f\",2]}}", -EINVAL);
        /* an embedded NUL would silently truncate */
        assert_decode_fails("{\"metadata\":{\"name\":\"a\\u0000b\"}}", -EINVAL);
        assert_decode_fails("{\"metadata\":{\"name\":\"a\",\"finalizers\":[\"f\\u0000g\"]}}",
                            -EINVAL);
        /* failure late in decoding, after labels were allocated */
        assert_decode_fails("{\"metadata\":{\"name\":\"a\",\"labels\":{\"x\":\"y\"},"
                            "\"annotations\":{\"p\":\"q\"},\"finalizers\":[null]}}",
                            -EINVAL);
}

static char *repeat(char c, size_t n) {
        char *s = malloc(n + 1);
        assert_non_null(s);
        memset(s, c, n);
        s[n] = 0;
        return s;
}

/* Builds {"metadata":{"name":"a", <extra>}} */
static json_object *obj_with(const char *field, json_object *val) {
        json_object *o = json_object_new_object(), *md = json_object_new_object();
        json_object_object_add(md, "name", json_object_new_string("a"));
        json_object_object_add(md, field, val);
        json_object_object_add(o, "metadata", md);
        return o;
}

static int decode_obj(json_object *o) {
        kube_meta m = {};
        int r = kube_meta_decode(o, &m);
        kube_meta_done(&m);
        json_object_put(o);
        return r;
}

static void test_limits(void **state) {
        _cleanup_free_ char *v63 = repeat('v', 63), *v64 = repeat('v', 64);
        _cleanup_free_ char *k317 = repeat('k', 317), *k318 = repeat('k', 318);
        _cleanup_free_ char *n253 = repeat('n', 253), *n254 = repeat('n', 254);
        json_object *l;

        /* label value: 63 ok, 64 too long */
        l = json_object_new_object();
        json_object_object_add(l, "k", json_object_new_string(v63));
        assert_int_equal(decode_obj(obj_with("labels", l)), 0);
        l = json_object_new_object();
        json_object_object_add(l, "k", json_object_new_string(v64));
        assert_int_equal(decode_obj(obj_with("labels", l)), -E2BIG);

        /* key length */
        l = json_object_new_object();
        json_object_object_add(l, k317, json_object_new_string("v"));
        assert_int_equal(decode_obj(obj_with("labels", l)), 0);
        l = json_object_new_object();
        json_object_object_add(l, k318, json_object_new_string("v"));
        assert_int_equal(decode_obj(obj_with("labels", l)), -E2BIG);

        /* name / namespace length */
        json_object *o = json_object_new_object(), *md = json_object_new_object();
        json_object_object_add(md, "name", json_object_new_string(n253));
        json_object_object_add(o, "metadata", md);
        assert_int_equal(decode_obj(o), 0);
        o = json_object_new_object(), md = json_object_new_object();
        json_object_object_add(md, "name", json_object_new_string(n254));
        json_object_object_add(o, "metadata", md);
        assert_int_equal(decode_obj(o), -E2BIG);
        assert_int_equal(decode_obj(obj_with("namespace", json_object_new_string(n254))), -E2BIG);

        /* number of labels */
        l = json_object_new_object();
        for (int i = 0; i < KUBE_META_KVS_MAX; i++) {
                char k[32];
                snprintf(k, sizeof k, "k%d", i);
                json_object_object_add(l, k, json_object_new_string("v"));
        }
        assert_int_equal(decode_obj(obj_with("labels", json_object_get(l))), 0);
        json_object_object_add(l, "one-more", json_object_new_string("v"));
        assert_int_equal(decode_obj(obj_with("labels", l)), -E2BIG);

        /* annotations: total size 256 KiB over keys and values, exactly at the limit is ok */
        size_t half = KUBE_META_ANNOTATIONS_TOTAL_MAX / 2;
        _cleanup_free_ char *big1 = repeat('x', half - 1), *big2 = repeat('y', half - 1);
        _cleanup_free_ char *big3 = repeat('y', half);
        l = json_object_new_object();
        json_object_object_add(l, "a", json_object_new_string(big1));
        json_object_object_add(l, "b", json_object_new_string(big2));
        assert_int_equal(decode_obj(obj_with("annotations", l)), 0);
        l = json_object_new_object();
        json_object_object_add(l, "a", json_object_new_string(big1));
        json_object_object_add(l, "b", json_object_new_string(big3));
        assert_int_equal(decode_obj(obj_with("annotations", l)), -E2BIG);

        /* the total counts filtered-out annotations too */
        l = json_object_new_object();
        json_object_object_add(l, "a", json_object_new_string(big1));
        json_object_object_add(l, "b", json_object_new_string(big3));
        json_object_object_add(l, "keep/x", json_object_new_string("1"));
        o = obj_with("annotations", l);
        static const char *const keep[] = {"keep/", NULL};
        kube_meta_decode_opts opts = {.annotation_keep = keep};
        kube_meta m = {};
        assert_int_equal(kube_meta_decode_full(o, &opts, &m), -E2BIG);
        json_object_put(o);

        /* owners and finalizers counts */
        json_object *a = json_object_new_array();
        for (int i = 0; i <= KUBE_META_FINALIZERS_MAX; i++)
                json_object_array_add(a, json_object_new_string("f"));
        assert_int_equal(decode_obj(obj_with("finalizers", a)), -E2BIG);
        a = json_object_new_array();
        for (int i = 0; i <= KUBE_META_OWNERS_MAX; i++) {
                json_object *r = json_object_new_object();
                json_object_object_add(r, "apiVersion", json_object_new_string("v1"));
                json_object_object_add(r, "kind", json_object_new_string("K"));
                json_object_object_add(r, "name", json_object_new_string("n"));
                json_object_object_add(r, "uid", json_object_new_string("u"));
                json_object_array_add(a, r);
        }
        assert_int_equal(json_object_array_del_idx(a, 0, 1), 0);
        assert_int_equal(decode_obj(obj_with("ownerReferences", json_object_get(a))), 0);
        json_object_array_add(a, json_object_get(json_object_array_get_idx(a, 0)));
        assert_int_equal(decode_obj(obj_with("ownerReferences", a)), -E2BIG);
}

static void test_annotation_filter(void **state) {
        static const char *const keep[] = {"pullpolicy.io/",
                                           "openshift.io/internal-registry-pull-secret-ref", NULL};
        kube_meta_decode_opts opts = {.annotation_keep = keep};
        kube_meta all = {}, m = {};

        assert_int_equal(decode_str(full_sa, NULL, &all), 0);
        assert_int_equal(decode_str(full_sa, &opts, &m), 0);
        assert_int_equal(m.annotations.n, 2);
        assert_string_equal(m.annotations.items[0].key,
                            "openshift.io/internal-registry-pull-secret-ref");
        assert_string_equal(m.annotations.items[1].key, "pullpolicy.io/links");
        assert_string_equal(
            kube_meta_annotation(&m, "openshift.io/internal-registry-pull-secret-ref"),
            "builder-dockercfg-x");
        assert_null(kube_meta_annotation(&m, "kubectl.kubernetes.io/last-applied-configuration"));
        /* labels are not filtered */
        assert_int_equal(m.labels.n, 3);
        /* filtered objects are slimmer */
        assert_true(kube_meta_mem(&m) < kube_meta_mem(&all));
        kube_meta_done(&m);

        /* an empty list keeps none */
        static const char *const none[] = {NULL};
        opts.annotation_keep = none;
        assert_int_equal(decode_str(full_sa, &opts, &m), 0);
        assert_int_equal(m.annotations.n, 0);
        assert_null(m.annotations.items);
        kube_meta_done(&m);
        kube_meta_done(&all);
}

static void test_copy(void **state) {
        kube_meta a = {}, b = {};
        assert_int_equal(decode_str(full_sa, NULL, &a), 0);
        assert_int_equal(kube_meta_copy(&a, &b), 0);
        assert_ptr_not_equal(a.name, b.name);
        assert_string_equal(b.name, a.name);
        assert_string_equal(b.namespace, a.namespace);
        assert_string_equal(b.resource_version, a.resource_version);
        assert_int_equal(b.generation, a.generation);
        assert_int_equal(b.deleting, a.deleting);
        assert_int_equal(b.labels.n, a.labels.n);
        assert_string_equal(kube_kvs_get(&b.labels, "app"), "web");
        assert_int_equal(b.annotations.n, a.annotations.n);
        assert_int_equal(b.n_owners, 2);
        assert_string_equal(b.owners[1].uid, "u-2");
        assert_true(b.owners[0].controller);
        assert_int_equal(b.n_finalizers, 2);
        assert_string_equal(b.finalizers[1], "other");
        assert_int_equal(kube_meta_mem(&a), kube_meta_mem(&b));
        kube_meta_done(&a);
        /* b survives a */
        assert_string_equal(b.owners[0].name, "p");
        kube_meta_done(&b);
}

static void test_mem_grows(void **state) {
        kube_meta small = {}, big = {};
        assert_int_equal(decode_str("{\"metadata\":{\"name\":\"a\"}}", NULL, &small), 0);
        assert_int_equal(decode_str("{\"metadata\":{\"name\":\"a\",\"annotations\":"
                                    "{\"k\":\"0123456789012345678901234567890123456789\"}}}",
                                    NULL, &big),
                         0);
        assert_true(kube_meta_mem(&small) > 0);
        assert_true(kube_meta_mem(&big) >= kube_meta_mem(&small) + 40);
        assert_int_equal(kube_meta_mem(NULL), 0);
        kube_meta_done(&small);
        kube_meta_done(&big);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_decode_full),
            cmocka_unit_test(test_decode_minimal_cluster_scoped),
            cmocka_unit_test(test_decode_partial_object_metadata),
            cmocka_unit_test(test_decode_invalid),
            cmocka_unit_test(test_limits),
            cmocka_unit_test(test_annotation_filter),
            cmocka_unit_test(test_copy),
            cmocka_unit_test(test_mem_grows),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
