/* SPDX-License-Identifier: Apache-2.0 */
/*
 * registry_verify() against a real registry: Debian's docker-registry (the distribution
 * registry) on loopback with TLS and htpasswd authentication, started here
 * (hack/test-registry.sh). Good credentials are Verified, a wrong password or user is
 * CredentialsRejected, a registry whose CA we do not trust or that is stopped is
 * RegistryUnreachable, and the detail names neither password.
 *
 * The Bearer flow and the refusals that keep credentials home run against a scripted registry
 * (fake_registry.py beside this file, HTTPS with the same CA): a token from the realm with the
 * credentials, a wrong password refused by the token service, a 302 after the credentials
 * not followed, an http:// realm never sent credentials (its sinks must see no request).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include "registry/verify.h"
#include "kubetest.h"
#include "testregistry.h"

static treg reg;
static pid_t fake_pid; /* the scripted registry, ended by the teardown if a test failed */

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

static void test_bearer_redirect_http_realm(void **state) {
        char ports_file[1024], hits[1024], script[1024];
        snprintf(ports_file, sizeof(ports_file), "%s/fake-ports", reg.dir);
        snprintf(hits, sizeof(hits), "%s/sink-hits", reg.dir);
        snprintf(script, sizeof(script), "%s/test/integration/pkg/registry/fake_registry.py",
                 kt_root());
        unlink(ports_file);
        unlink(hits);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid > 0) fake_pid = pid;
        if (pid == 0) {
                execlp("python3", "python3", script, reg.dir, reg.user, reg.password, (char *)NULL);
                _exit(127);
        }
        struct stat st;
        for (int i = 0; i < 100 && stat(ports_file, &st) != 0; i++) usleep(50000);
        FILE *f = fopen(ports_file, "re");
        assert_non_null(f);
        int bearer = 0, redirect = 0, httprealm = 0, sink = 0, plainsink = 0;
        assert_int_equal(
            fscanf(f, "%d %d %d %d %d", &bearer, &redirect, &httprealm, &sink, &plainsink), 5);
        fclose(f);
        registry_verify_opts o = opts();
        char key[64], *d = NULL;

        snprintf(key, sizeof(key), "127.0.0.1:%d", bearer);
        assert_int_equal(verify(&o, key, reg.user, reg.password, &d), REGISTRY_VERIFIED);
        assert_non_null(strstr(d, "Bearer"));
        free(d);
        assert_int_equal(verify(&o, key, reg.user, "wrong-password", &d), REGISTRY_REJECTED);
        assert_non_null(strstr(d, "token service"));
        free(d);

        snprintf(key, sizeof(key), "127.0.0.1:%d", redirect);
        assert_int_equal(verify(&o, key, reg.user, reg.password, &d), REGISTRY_UNREACHABLE);
        assert_non_null(strstr(d, "HTTP 302"));
        free(d);

        snprintf(key, sizeof(key), "127.0.0.1:%d", httprealm);
        assert_int_equal(verify(&o, key, reg.user, reg.password, &d), REGISTRY_UNREACHABLE);
        assert_non_null(strstr(d, "not an https URL"));
        free(d);

        /* neither the redirect's target nor the http realm saw a request */
        assert_int_not_equal(stat(hits, &st), 0);
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        fake_pid = 0;
}

static int setup(void **state) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        return treg_start(&reg, "verify");
}

static int teardown(void **state) {
        if (fake_pid > 0) {
                kill(fake_pid, SIGTERM);
                waitpid(fake_pid, NULL, 0);
        }
        treg_done(&reg);
        curl_global_cleanup();
        return 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_good_credentials_verified),
            cmocka_unit_test(test_wrong_password_rejected),
            cmocka_unit_test(test_untrusted_ca_unreachable),
            cmocka_unit_test(test_bearer_redirect_http_realm),
            cmocka_unit_test(test_stopped_registry_unreachable),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
