/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "registry/authfile.h"

#define CJ  "kubernetes.io/dockerconfigjson"
#define CFG "kubernetes.io/dockercfg"

static int add(registry_authfile *f, const char *type, const char *json, const char *name) {
        return registry_authfile_add(f, type, json, strlen(json), name);
}

static void test_normalize(void **state) {
        static const struct {
                const char *in, *out;
        } ok[] = {
            {"quay.io", "quay.io"},
            {"https://quay.io", "quay.io"},
            {"http://quay.io/", "quay.io"},
            {"HTTPS://r.example:5000/team/", "r.example:5000/team"},
            {"index.docker.io", "docker.io"},
            {"https://index.docker.io/v1/", "docker.io"},
            {"registry-1.docker.io", "docker.io"},
            {"docker.io", "docker.io"},
            {"127.0.0.1:5000", "127.0.0.1:5000"},
        };
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                char *k = NULL;
                assert_int_equal(registry_key_normalize(ok[i].in, &k), 0);
                assert_string_equal(k, ok[i].out);
                free(k);
        }
        const char *bad[] = {"",     "https://", "/path",   "a b",
                             "a\tb", "a\x01",    "ftp://x", "https://a.io/b://c"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char *k = (char *)0x1;
                assert_int_equal(registry_key_normalize(bad[i], &k), -EINVAL);
                assert_ptr_equal(k, (char *)0x1);
        }
        char long_key[REGISTRY_KEY_MAX + 2];
        memset(long_key, 'a', sizeof(long_key) - 1);
        long_key[sizeof(long_key) - 1] = 0;
        char *k = NULL;
        assert_int_equal(registry_key_normalize(long_key, &k), -EINVAL);
}

static void test_api_base(void **state) {
        char *b = NULL;
        assert_int_equal(registry_key_api_base("docker.io", &b), 0);
        assert_string_equal(b, "https://registry-1.docker.io");
        free(b);
        assert_int_equal(registry_key_api_base("https://r.example:5000/team/x", &b), 0);
        assert_string_equal(b, "https://r.example:5000");
        free(b);
        assert_int_equal(registry_key_api_base("", &b), -EINVAL);
}

static void test_dockerconfigjson(void **state) {
        registry_authfile f = {0};
        /* "auth" wins over username/password, as in the kubelet: dTE6cDE= is u1:p1 */
        assert_int_equal(add(&f, CJ,
                             "{\"auths\":{\"https://quay.io\":{\"auth\":\"dTE6cDE=\","
                             "\"username\":\"x\",\"password\":\"y\"},"
                             "\"r.example\":{\"username\":\"u2\",\"password\":\"p:2\"}}}",
                             "ns/a"),
                         2);
        assert_int_equal(f.n, 2);
        const registry_auth *a = registry_authfile_find(&f, "quay.io");
        assert_non_null(a);
        assert_string_equal(a->username, "u1");
        assert_string_equal(a->password, "p1");
        assert_string_equal(a->secret, "ns/a");
        a = registry_authfile_find(&f, "r.example");
        assert_non_null(a);
        assert_string_equal(a->password, "p:2");
        assert_null(registry_authfile_find(&f, "other"));
        registry_authfile_done(&f);
        assert_int_equal(f.n, 0);
        assert_null(f.v);
}

static void test_dockercfg(void **state) {
        registry_authfile f = {0};
        assert_int_equal(
            add(&f, CFG, "{\"https://index.docker.io/v1/\":{\"auth\":\"dTpwOnE=\"}}", NULL), 1);
        const registry_auth *a = registry_authfile_find(&f, "docker.io");
        assert_non_null(a);
        assert_string_equal(a->username, "u");
        assert_string_equal(a->password, "p:q"); /* split at the first ':' */
        registry_authfile_done(&f);
}

/* The kubelet tries the secrets in imagePullSecrets order: the first one that names a
 * registry gives the entry; later secrets add only registries not named yet. */
static void test_merge_order(void **state) {
        registry_authfile f = {0};
        assert_int_equal(
            add(&f, CJ, "{\"auths\":{\"quay.io\":{\"username\":\"first\",\"password\":\"1\"}}}",
                "ns/one"),
            1);
        assert_int_equal(add(&f, CFG,
                             "{\"https://quay.io/\":{\"username\":\"second\",\"password\":\"2\"},"
                             "\"ghcr.io\":{\"username\":\"g\",\"password\":\"3\"}}",
                             "ns/two"),
                         1);
        assert_int_equal(f.n, 2);
        assert_string_equal(registry_authfile_find(&f, "quay.io")->username, "first");
        assert_string_equal(registry_authfile_find(&f, "ghcr.io")->secret, "ns/two");

        char *json = NULL;
        assert_int_equal(registry_authfile_to_json(&f, &json), 0);
        json_object *o = json_tokener_parse(json);
        assert_non_null(o);
        json_object *auths, *e, *auth;
        assert_true(json_object_object_get_ex(o, "auths", &auths));
        assert_int_equal(json_object_object_length(auths), 2);
        assert_true(json_object_object_get_ex(auths, "quay.io", &e));
        assert_true(json_object_object_get_ex(e, "auth", &auth));
        assert_string_equal(json_object_get_string(auth), "Zmlyc3Q6MQ=="); /* first:1 */
        json_object_put(o);
        free(json);
        registry_authfile_done(&f);
}

static void test_refused(void **state) {
        registry_authfile f = {0};
        assert_int_equal(
            add(&f, CJ, "{\"auths\":{\"quay.io\":{\"username\":\"a\",\"password\":\"b\"}}}", NULL),
            1);
        const char *bad[][2] = {
            {"kubernetes.io/opaque", "{}"},
            {CJ, "not json"},
            {CJ, "[]"},
            {CJ, "{\"auths\":[]}"},
            {CJ, "{\"auths\":{\"q\":\"str\"}}"},
            {CJ, "{\"auths\":{\"q\":{\"auth\":\"!!notbase64\"}}}"},
            {CJ, "{\"auths\":{\"q\":{\"auth\":\"bm9jb2xvbg==\"}}}"}, /* "nocolon" */
            {CJ, "{\"auths\":{\"q\":{\"username\":5}}}"},
            {CJ, "{\"auths\":{\"bad key\":{\"username\":\"a\"}}}"},
            {CJ, "{\"auths\":{\"x.io\":{\"username\":\"a\"}}} trailing"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int r = add(&f, bad[i][0], bad[i][1], NULL);
                if (r != -EINVAL) fail_msg("case %zu: %d", i, r);
                assert_int_equal(f.n, 1); /* untouched */
        }
        /* a NUL inside the payload */
        assert_int_equal(registry_authfile_add(&f, CJ, "{\"auths\":{}}\0x", 14, NULL), -EINVAL);
        /* past the entry limit, all or nothing */
        size_t cap = 64 + REGISTRY_AUTHFILE_MAX_ENTRIES * 40;
        char *big = malloc(cap);
        assert_non_null(big);
        size_t off = (size_t)sprintf(big, "{\"auths\":{");
        for (int i = 0; i < REGISTRY_AUTHFILE_MAX_ENTRIES; i++)
                off += (size_t)sprintf(big + off, "%s\"r%d.io\":{\"username\":\"u\"}", i ? "," : "",
                                       i);
        sprintf(big + off, "}}");
        assert_int_equal(add(&f, CJ, big, NULL), -E2BIG);
        assert_int_equal(f.n, 1);
        free(big);
        registry_authfile_done(&f);
        registry_authfile_done(NULL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_normalize),        cmocka_unit_test(test_api_base),
            cmocka_unit_test(test_dockerconfigjson), cmocka_unit_test(test_dockercfg),
            cmocka_unit_test(test_merge_order),      cmocka_unit_test(test_refused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
