/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/dns.h"
#include "util/macro.h"

static bool label(const char *s) {
        return dns_label_ok(s, strlen(s));
}

static bool subdomain(const char *s) {
        return dns_subdomain_ok(s, strlen(s));
}

/* Fails unless ok() says want for each of the n names. */
static void expect_all(bool (*ok)(const char *), const char *const *names, size_t n, bool want,
                       const char *what) {
        for (size_t i = 0; i < n; i++)
                if (ok(names[i]) != want)
                        fail_msg("\"%s\" should %sbe a %s", names[i], want ? "" : "not ", what);
}

static void test_label(void **state) {
        static const char *const good[] = {"a", "0", "kube-system", "a-b-c", "9abc", "a--b"};
        static const char *const bad[] = {"",    "-a", "a-",  "A", "a.b", "a_b",
                                          "a b", "ä",  "a/b", "-", "a:b"};
        expect_all(label, good, ARRAY_SIZE(good), true, "label");
        expect_all(label, bad, ARRAY_SIZE(bad), false, "label");

        char s[DNS_LABEL_MAX + 2];
        memset(s, 'a', sizeof(s));
        s[DNS_LABEL_MAX] = 0;
        assert_true(label(s)); /* 63 */
        s[DNS_LABEL_MAX] = 'a';
        s[DNS_LABEL_MAX + 1] = 0;
        assert_false(label(s)); /* 64 */
        /* only len bytes are looked at */
        assert_true(dns_label_ok("ab-", 2));
        assert_false(dns_label_ok("ab", 0));
        assert_false(dns_label_ok("a\0b", 3));
}

static void test_subdomain(void **state) {
        static const char *const good[] = {"a", "a.b", "example.com", "a-b.c-d.e", "0.0", "x--y"};
        static const char *const bad[] = {"",     ".",   ".a",  "a.",  "a..b", "-a.b", "a-.b",
                                          "a.-b", "A.b", "a_b", "a b", "a/b",  "a.b-"};
        expect_all(subdomain, good, ARRAY_SIZE(good), true, "subdomain");
        expect_all(subdomain, bad, ARRAY_SIZE(bad), false, "subdomain");

        /* 253 bytes overall; a part may be longer than 63 (as the apiserver allows) */
        char s[DNS_SUBDOMAIN_MAX + 2];
        memset(s, 'a', sizeof(s));
        s[100] = '.';
        s[DNS_SUBDOMAIN_MAX] = 0;
        assert_true(subdomain(s));
        s[DNS_SUBDOMAIN_MAX] = 'a';
        s[DNS_SUBDOMAIN_MAX + 1] = 0;
        assert_false(subdomain(s));
        assert_true(dns_subdomain_ok("a.b/c", 3));
        assert_false(dns_subdomain_ok("a.b", 2));
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_label),
            cmocka_unit_test(test_subdomain),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
