/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "util/macro.h"

static void test_fnv1a_known_values(void **state) {
        /* published FNV-1a 64 test vectors */
        assert_true(names_fnv1a64("", 0) == 0xcbf29ce484222325ULL);
        assert_true(names_fnv1a64("a", 1) == 0xaf63dc4c8601ec8cULL);
        assert_true(names_fnv1a64("foobar", 6) == 0x85944171f73967e8ULL);
}

static void test_role_binding_short(void **state) {
        char *n = NULL;
        assert_int_equal(names_role_binding("team-a-pulls", "project-a", &n), 0);
        /* the hash of "team-a-pulls/project-a" ends it */
        char hex[17];
        snprintf(hex, sizeof(hex), "%016llx",
                 (unsigned long long)names_fnv1a64("team-a-pulls/project-a", 22));
        char *want = NULL;
        assert_true(asprintf(&want, "ppol-team-a-pulls-project-a-%.*s", NAMES_HASH_DIGITS, hex) >
                    0);
        assert_string_equal(n, want);
        assert_true(names_is_dns1123_subdomain(n));
        free(want);
        free(n);
        /* the name of earlier versions, still recognised for the upgrade */
        assert_int_equal(names_role_binding_legacy("team-a-pulls", "project-a", &n), 0);
        assert_string_equal(n, "ppol-team-a-pulls-project-a");
        free(n);
        assert_int_equal(names_role_binding_legacy("", "a", &n), -EINVAL);
        assert_int_equal(names_role_binding("", "a", &n), -EINVAL);
        assert_int_equal(names_role_binding("a", "", &n), -EINVAL);
        assert_int_equal(names_role_binding(NULL, "a", &n), -EINVAL);
}

/*
 * Issue 7 item 4: "ppol-<policy>-<ns>" gave policy a + namespace b-c and policy a-b +
 * namespace c the same RoleBinding; every name now ends in a hash of the pair.
 */
static void test_role_binding_collision(void **state) {
        char *x = NULL, *y = NULL;
        assert_int_equal(names_role_binding("a", "b-c", &x), 0);
        assert_int_equal(names_role_binding("a-b", "c", &y), 0);
        assert_string_not_equal(x, y);
        assert_true(names_is_dns1123_subdomain(x));
        assert_true(names_is_dns1123_subdomain(y));
        free(x);
        free(y);
        /* the same with dots, which subdomain names may hold */
        assert_int_equal(names_role_binding("a.b", "c", &x), 0);
        assert_int_equal(names_role_binding("a", "b.c", &y), 0);
        assert_string_not_equal(x, y);
        free(x);
        free(y);
}

static char *repeat(char c, size_t n) {
        char *s = malloc(n + 1);
        assert_non_null(s);
        memset(s, c, n);
        s[n] = 0;
        return s;
}

static bool is_hex(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!strchr("0123456789abcdef", s[i])) return false;
        return true;
}

static void test_role_binding_legacy_exactly_253(void **state) {
        /* "ppol-" + p + "-" + ns = 253 stays as is */
        char *ns = repeat('n', 63);
        char *p = repeat('p', 253 - 5 - 1 - 63);
        char *n = NULL;
        assert_int_equal(names_role_binding_legacy(p, ns, &n), 0);
        assert_int_equal(strlen(n), 253);
        assert_true(strncmp(n, "ppol-", 5) == 0);
        assert_string_equal(n + 253 - 63, ns);
        free(n);
        free(p);
        free(ns);
}

static void test_role_binding_legacy_too_long(void **state) {
        char *ns = repeat('n', 63);
        char *p = repeat('p', 253);
        char *n1 = NULL, *n2 = NULL, *n3 = NULL;
        assert_int_equal(names_role_binding_legacy(p, ns, &n1), 0);
        assert_int_equal(strlen(n1), 253);
        assert_true(strncmp(n1, "ppol-ppp", 8) == 0);
        assert_int_equal(n1[253 - NAMES_HASH_DIGITS - 1], '-');
        assert_true(is_hex(n1 + 253 - NAMES_HASH_DIGITS, NAMES_HASH_DIGITS));
        assert_true(names_is_dns1123_subdomain(n1));
        /* stable */
        assert_int_equal(names_role_binding_legacy(p, ns, &n2), 0);
        assert_string_equal(n1, n2);
        /* a different namespace with the same long prefix gets a different name */
        ns[62] = 'm';
        assert_int_equal(names_role_binding_legacy(p, ns, &n3), 0);
        assert_int_equal(strlen(n3), 253);
        assert_string_not_equal(n1, n3);
        /* the hash is that of the full name */
        char *full = NULL;
        assert_true(asprintf(&full, "ppol-%s-%s", p, ns) > 0);
        char hex[17];
        snprintf(hex, sizeof(hex), "%016llx",
                 (unsigned long long)names_fnv1a64(full, strlen(full)));
        assert_memory_equal(n3 + 253 - NAMES_HASH_DIGITS, hex, NAMES_HASH_DIGITS);
        free(full);
        free(n1);
        free(n2);
        free(n3);
        free(p);
        free(ns);
}

static void test_role_binding_legacy_trims_before_hash(void **state) {
        /* the cut falls right after a '.' and '-': they are trimmed */
        char p[254];
        memset(p, 'p', 253);
        p[253] = 0;
        size_t cut = 253 - 1 - NAMES_HASH_DIGITS; /* bytes kept of "ppol-" + p... */
        p[cut - 5 - 1] = '.';
        p[cut - 5 - 2] = '-';
        char *n = NULL;
        assert_int_equal(names_role_binding_legacy(p, "ns", &n), 0);
        assert_true(strlen(n) < 253);
        assert_true(names_is_dns1123_subdomain(n));
        assert_null(strstr(n, ".-"));
        assert_null(strstr(n, "--"));
        free(n);
}

/* Names at the limits: always at most 253, valid, ending in the hash of the pair. */
static void test_role_binding_long(void **state) {
        char *ns = repeat('n', 63);
        char *p = repeat('p', 253);
        char *n1 = NULL, *n2 = NULL;
        assert_int_equal(names_role_binding(p, ns, &n1), 0);
        assert_int_equal(strlen(n1), 253);
        assert_true(strncmp(n1, "ppol-ppp", 8) == 0);
        assert_int_equal(n1[253 - NAMES_HASH_DIGITS - 1], '-');
        assert_true(is_hex(n1 + 253 - NAMES_HASH_DIGITS, NAMES_HASH_DIGITS));
        assert_true(names_is_dns1123_subdomain(n1));
        ns[62] = 'm';
        assert_int_equal(names_role_binding(p, ns, &n2), 0);
        assert_string_not_equal(n1, n2);
        free(n1);
        free(n2);
        /* one short of the limit with the hash: kept whole; one more: cut */
        free(p);
        p = repeat('p', 253 - 5 - 1 - 63 - 1 - NAMES_HASH_DIGITS);
        assert_int_equal(names_role_binding(p, ns, &n1), 0);
        assert_int_equal(strlen(n1), 253);
        assert_memory_equal(n1 + 5 + strlen(p) + 1, ns, 63);
        free(n1);
        /* a cut right after "-" and "." trims them */
        free(p);
        p = repeat('p', 253);
        size_t cut = 253 - 1 - NAMES_HASH_DIGITS;
        p[cut - 5 - 1] = '.';
        p[cut - 5 - 2] = '-';
        assert_int_equal(names_role_binding(p, "ns", &n1), 0);
        assert_true(strlen(n1) < 253);
        assert_true(names_is_dns1123_subdomain(n1));
        assert_null(strstr(n1, ".-"));
        free(n1);
        free(p);
        free(ns);
}

/* Values computed apart from the code (FNV-1a 32 of the name, as Go's hash/fnv). */
static void test_dockercfg_prefix(void **state) {
        char p[NAMES_DOCKERCFG_PREFIX_MAX + 1];
        names_dockercfg_prefix("builder", p);
        assert_string_equal(p, "builder-dockercfg-");
        names_dockercfg_prefix("abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstu", p); /* 47 */
        assert_string_equal(p, "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstu-dockercfg-");
        names_dockercfg_prefix("abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuv", p); /* 48 */
        assert_string_equal(p, "abcdefghijklmnopqrstuvwxyzabcdefghijkl-d580457d-dockercfg-");
        names_dockercfg_prefix("pipeline-service-account-for-the-nightly-image-builds-xyz", p);
        assert_string_equal(p, "pipeline-service-account-for-the-night-401f3065-dockercfg-");
        /* the longest name Kubernetes allows still fits */
        char longest[NAMES_OBJECT_MAX + 1];
        memset(longest, 'a', NAMES_OBJECT_MAX);
        longest[NAMES_OBJECT_MAX] = 0;
        names_dockercfg_prefix(longest, p);
        assert_int_equal(strlen(p), NAMES_DOCKERCFG_PREFIX_MAX);
}

static void test_policy_key(void **state) {
        char *k = NULL;
        assert_int_equal(names_policy_key("project-b", "team-a", &k), 0);
        assert_string_equal(k, "project-b/team-a");
        free(k);
        assert_int_equal(names_policy_key("", "x", &k), -EINVAL);
        assert_int_equal(names_policy_key("x", NULL, &k), -EINVAL);
}

static void test_marked_by(void **state) {
        kube_kv items[] = {
            {(char *)NAMES_LABEL_MANAGED_BY, (char *)NAMES_MANAGED_BY_VALUE},
            {(char *)NAMES_LABEL_POLICY, (char *)"p1"},
            {(char *)NAMES_LABEL_POLICY_NAMESPACE, (char *)"home"},
        };
        kube_meta m = {.name = (char *)"x", .labels = {items, 3}};
        /* keys sorted: app.kubernetes.io/..., pullpolicy.io/policy, pullpolicy.io/policy-namespace
         */
        assert_true(names_marked_by(&m, "home", "p1"));
        assert_false(names_marked_by(&m, "home", "p2"));
        assert_false(names_marked_by(&m, "other", "p1"));
        assert_true(names_marked_by_home(&m, "home"));
        assert_false(names_marked_by_home(&m, "other"));
        items[0].value = (char *)"someone-else";
        assert_false(names_marked_by(&m, "home", "p1"));
        assert_false(names_marked_by_home(&m, "home"));
        kube_meta none = {.name = (char *)"x"};
        assert_false(names_marked_by(&none, "home", "p1"));
        assert_false(names_marked_by(NULL, "home", "p1"));
}

static void test_policy_label(void **state) {
        char l[NAMES_LABEL_VALUE_MAX + 1];
        names_policy_label("team-a-pulls", l);
        assert_string_equal(l, "team-a-pulls");
        char *n63 = repeat('a', 63), *n64 = repeat('a', 64), *n253 = repeat('b', 253);
        names_policy_label(n63, l);
        assert_string_equal(l, n63);
        names_policy_label(n64, l);
        assert_int_equal(strlen(l), 63);
        assert_int_equal(l[63 - NAMES_HASH_DIGITS - 1], '-');
        assert_true(is_hex(l + 63 - NAMES_HASH_DIGITS, NAMES_HASH_DIGITS));
        char l2[NAMES_LABEL_VALUE_MAX + 1];
        names_policy_label(n253, l2);
        assert_int_equal(strlen(l2), 63);
        assert_string_not_equal(l, l2);
        /* a shortened value is its own label value: marks compare consistently */
        char l3[NAMES_LABEL_VALUE_MAX + 1];
        names_policy_label(l2, l3);
        assert_string_equal(l2, l3);
        /* dots and dashes before the cut are trimmed */
        n64[63 - NAMES_HASH_DIGITS - 2] = '.';
        names_policy_label(n64, l);
        assert_null(strstr(l, ".-"));
        char *k = NULL;
        assert_int_equal(names_marked_key("home", n253, &k), 0);
        assert_int_equal(strncmp(k, "home/", 5), 0);
        assert_string_equal(k + 5, l2);
        free(k);
        assert_int_equal(names_marked_key("home", "short", &k), 0);
        assert_string_equal(k, "home/short");
        free(k);
        assert_int_equal(names_marked_key("home", "", &k), -EINVAL);

        /* names_marked_by() compares against the label value of a long name */
        kube_kv items[] = {
            {(char *)NAMES_LABEL_MANAGED_BY, (char *)NAMES_MANAGED_BY_VALUE},
            {(char *)NAMES_LABEL_POLICY, l2},
            {(char *)NAMES_LABEL_POLICY_NAMESPACE, (char *)"home"},
        };
        kube_meta m = {.name = (char *)"x", .labels = {items, 3}};
        assert_true(names_marked_by(&m, "home", n253));
        assert_false(names_marked_by(&m, "home", n64));
        free(n63);
        free(n64);
        free(n253);
}

static void test_dns_names(void **state) {
        assert_true(names_is_dns1123_label("a"));
        assert_true(names_is_dns1123_label("project-a"));
        assert_false(names_is_dns1123_label("Project"));
        assert_false(names_is_dns1123_label("-a"));
        assert_false(names_is_dns1123_label("a.b"));
        assert_false(names_is_dns1123_label(""));
        char *l = repeat('a', 64);
        assert_false(names_is_dns1123_label(l));
        l[63] = 0;
        assert_true(names_is_dns1123_label(l));
        free(l);
        assert_true(names_is_dns1123_subdomain("a.b-c.d"));
        assert_false(names_is_dns1123_subdomain("a..b"));
        assert_false(names_is_dns1123_subdomain("a."));
        assert_false(names_is_dns1123_subdomain("a_b"));
        assert_false(names_is_dns1123_subdomain(NULL));
        char *s = repeat('a', 254);
        assert_false(names_is_dns1123_subdomain(s));
        s[253] = 0;
        assert_true(names_is_dns1123_subdomain(s));
        free(s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_fnv1a_known_values),
            cmocka_unit_test(test_role_binding_short),
            cmocka_unit_test(test_role_binding_collision),
            cmocka_unit_test(test_role_binding_legacy_exactly_253),
            cmocka_unit_test(test_role_binding_legacy_too_long),
            cmocka_unit_test(test_role_binding_legacy_trims_before_hash),
            cmocka_unit_test(test_role_binding_long),
            cmocka_unit_test(test_dockercfg_prefix),
            cmocka_unit_test(test_policy_key),
            cmocka_unit_test(test_marked_by),
            cmocka_unit_test(test_policy_label),
            cmocka_unit_test(test_dns_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
