/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/challenge.h"

static int parse(const char *h, registry_challenge *c) {
        return registry_challenge_parse(h, strlen(h), c);
}

static void test_basic(void **state) {
        registry_challenge c = {0};
        assert_int_equal(parse("Basic realm=\"Registry Realm\"", &c), 0);
        assert_int_equal(c.scheme, REGISTRY_SCHEME_BASIC);
        assert_string_equal(c.realm, "Registry Realm");
        assert_null(c.service);
        assert_null(c.scope);
        registry_challenge_done(&c);
        assert_null(c.realm);

        /* no parameter at all, other case */
        assert_int_equal(parse("basic", &c), 0);
        assert_int_equal(c.scheme, REGISTRY_SCHEME_BASIC);
        assert_null(c.realm);
        registry_challenge_done(&c);
}

static void test_bearer(void **state) {
        registry_challenge c = {0};
        assert_int_equal(parse("Bearer realm=\"https://auth.docker.io/token\","
                               "service=\"registry.docker.io\",scope=\"repository:a/b:pull\"",
                               &c),
                         0);
        assert_int_equal(c.scheme, REGISTRY_SCHEME_BEARER);
        assert_string_equal(c.realm, "https://auth.docker.io/token");
        assert_string_equal(c.service, "registry.docker.io");
        assert_string_equal(c.scope, "repository:a/b:pull");
        registry_challenge_done(&c);

        /* tokens instead of quoted strings, spaces around '=' and ',', names in other case */
        assert_int_equal(parse("BEARER  Realm = q.example , SERVICE=q.example", &c), 0);
        assert_int_equal(c.scheme, REGISTRY_SCHEME_BEARER);
        assert_string_equal(c.realm, "q.example");
        assert_string_equal(c.service, "q.example");
        registry_challenge_done(&c);

        /* quoted pairs are unescaped; an unknown parameter is ignored */
        assert_int_equal(parse("Bearer error=\"invalid_token\",realm=\"https://a/\\\"x\\\\\"", &c),
                         0);
        assert_string_equal(c.realm, "https://a/\"x\\");
        registry_challenge_done(&c);
}

static void test_several(void **state) {
        registry_challenge c = {0};
        /* an unsupported scheme with a token68 first, then Bearer */
        assert_int_equal(parse("Negotiate abc==, Bearer realm=\"https://r/t\", Basic realm=x", &c),
                         0);
        assert_int_equal(c.scheme, REGISTRY_SCHEME_BEARER);
        assert_string_equal(c.realm, "https://r/t");
        registry_challenge_done(&c);

        /* an unsupported scheme with parameters, then Basic */
        assert_int_equal(parse("Digest realm=\"d\", nonce=\"n, m\", Basic realm=\"b\"", &c), 0);
        assert_int_equal(c.scheme, REGISTRY_SCHEME_BASIC);
        assert_string_equal(c.realm, "b");
        registry_challenge_done(&c);

        /* empty list elements are allowed */
        assert_int_equal(parse(" , Basic realm=b ,", &c), 0);
        assert_string_equal(c.realm, "b");
        registry_challenge_done(&c);
}

static void test_refused(void **state) {
        registry_challenge c = {.scheme = 77};
        assert_int_equal(parse("Negotiate", &c), -ENOTSUP);
        assert_int_equal(parse("Digest realm=\"x\"", &c), -ENOTSUP);
        assert_int_equal(parse("", &c), -EINVAL);
        assert_int_equal(parse("   ", &c), -EINVAL);
        assert_int_equal(parse("Bearer service=x", &c), -EINVAL); /* no realm */
        assert_int_equal(parse("Bearer realm=\"unterminated", &c), -EINVAL);
        assert_int_equal(parse("Bearer realm=\"a\" junk", &c), -EINVAL);
        assert_int_equal(parse("Bearer realm=", &c), -EINVAL);
        assert_int_equal(parse("Bearer =x", &c), -EINVAL);
        /* a URL must be quoted: ':' and '/' are not token characters */
        assert_int_equal(parse("Bearer realm=https://a/t", &c), -EINVAL);
        assert_int_equal(parse("Bearer realm=\"a\",realm=\"b\"", &c), -EINVAL); /* repeated */
        assert_int_equal(parse("Bearer realm=\"a\x01\"", &c), -EINVAL);
        assert_int_equal(parse("Bearer realm=\"a\nb\"", &c), -EINVAL);
        assert_int_equal(parse("\"Bearer\" realm=a", &c), -EINVAL);
        /* a NUL inside the given length */
        assert_int_equal(registry_challenge_parse("Basic realm=\"a\0b\"", 16, &c), -EINVAL);
        assert_int_equal(registry_challenge_parse(NULL, 0, &c), -EINVAL);
        assert_int_equal(c.scheme, 77); /* untouched */
        assert_null(c.realm);
}

static void test_limits(void **state) {
        registry_challenge c = {0};
        size_t n = REGISTRY_CHALLENGE_MAX + 1;
        char *big = malloc(n + 1);
        assert_non_null(big);
        memcpy(big, "Basic realm=", 12);
        memset(big + 12, 'a', n - 12);
        big[n] = 0;
        assert_int_equal(registry_challenge_parse(big, n, &c), -E2BIG);

        /* a value one byte over its limit, and one exactly at it */
        size_t v = REGISTRY_CHALLENGE_MAX_VALUE;
        memcpy(big, "Bearer realm=\"", 14);
        memset(big + 14, 'r', v + 1);
        big[14 + v + 1] = '"';
        big[14 + v + 2] = 0;
        assert_int_equal(parse(big, &c), -E2BIG);
        big[14 + v] = '"';
        big[14 + v + 1] = 0;
        assert_int_equal(parse(big, &c), 0);
        assert_int_equal(strlen(c.realm), v);
        registry_challenge_done(&c);

        /* too many parameters */
        size_t off = 0;
        off += (size_t)sprintf(big + off, "Bearer realm=r");
        for (int i = 0; i < REGISTRY_CHALLENGE_MAX_PARAMS; i++)
                off += (size_t)sprintf(big + off, ",p%d=v", i);
        assert_int_equal(parse(big, &c), -E2BIG);
        free(big);
}

static void test_done_null(void **state) {
        registry_challenge_done(NULL);
        registry_challenge c = {0};
        registry_challenge_done(&c);
        assert_string_equal(registry_scheme_name(REGISTRY_SCHEME_BEARER), "Bearer");
        assert_string_equal(registry_scheme_name(REGISTRY_SCHEME_BASIC), "Basic");
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_basic),   cmocka_unit_test(test_bearer),
            cmocka_unit_test(test_several), cmocka_unit_test(test_refused),
            cmocka_unit_test(test_limits),  cmocka_unit_test(test_done_null),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
