/* SPDX-License-Identifier: Apache-2.0 */
/*
 * registry_verify() against a real registry: Debian's docker-registry (the distribution
 * registry) on loopback with TLS and htpasswd authentication, started here
 * (hack/test-registry.sh). Good credentials are Verified, a wrong password or user is
 * CredentialsRejected, a registry whose CA we do not trust or that is stopped is
 * RegistryUnreachable, and the detail names neither password.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "registry/verify.h"
#include "testregistry.h"

static treg reg;

static registry_verify_opts opts(void) {
        return (registry_verify_opts){
            .ca_file = reg.ca_file, .connect_timeout_ms = 3000, .timeout_ms = 10000};
}

static registry_outcome verify(const registry_verify_opts *o, const char *key, const char *user,
                               const char *pass, char **detail) {
        registry_outcome out = 99;
        assert_int_equal(registry_verify(o, key, user, pass, &out, detail), 0);
        fprintf(stderr, "  %s %s -> %s: %s\n", key, user, registry_outcome_reason(out), *detail);
        assert_null(strstr(*detail, pass));
        return out;
}

static void test_good_credentials_verified(void **state) {
        registry_verify_opts o = opts();
        char *d = NULL;
        assert_int_equal(verify(&o, reg.host, reg.user, reg.password, &d), REGISTRY_VERIFIED);
        assert_non_null(strstr(d, "Basic"));
        free(d);
        /* the key as people write it in pull secrets */
        char key[300];
        snprintf(key, sizeof(key), "https://%s/", reg.host);
        assert_int_equal(verify(&o, key, reg.user, reg.password, &d), REGISTRY_VERIFIED);
        free(d);
}

static void test_wrong_password_rejected(void **state) {
        registry_verify_opts o = opts();
        char *d = NULL;
        assert_int_equal(verify(&o, reg.host, reg.user, "not-the-password", &d), REGISTRY_REJECTED);
        free(d);
        assert_int_equal(verify(&o, reg.host, "nobody", reg.password, &d), REGISTRY_REJECTED);
        free(d);
}

static void test_untrusted_ca_unreachable(void **state) {
        /* the system's CAs do not know the test CA: TLS is verified, nothing is sent */
        registry_verify_opts o = {.connect_timeout_ms = 3000, .timeout_ms = 10000};
        char *d = NULL;
        assert_int_equal(verify(&o, reg.host, reg.user, reg.password, &d), REGISTRY_UNREACHABLE);
        free(d);
}

static void test_stopped_registry_unreachable(void **state) {
        assert_int_equal(treg_stop(&reg), 0);
        registry_verify_opts o = opts();
        char *d = NULL;
        assert_int_equal(verify(&o, reg.host, reg.user, reg.password, &d), REGISTRY_UNREACHABLE);
        free(d);
        /* and back: the same state serves again */
        assert_int_equal(treg_start(&reg, "verify"), 0);
        o = opts();
        assert_int_equal(verify(&o, reg.host, reg.user, reg.password, &d), REGISTRY_VERIFIED);
        free(d);
}

static int setup(void **state) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        return treg_start(&reg, "verify");
}

static int teardown(void **state) {
        treg_done(&reg);
        curl_global_cleanup();
        return 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_good_credentials_verified),
            cmocka_unit_test(test_wrong_password_rejected),
            cmocka_unit_test(test_untrusted_ca_unreachable),
            cmocka_unit_test(test_stopped_registry_unreachable),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
