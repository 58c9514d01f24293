/* SPDX-License-Identifier: Apache-2.0 */
/*
 * e2e (issue 11, part 2): the credentials the operator links to a service account work at a
 * real registry. Debian's docker-registry runs on loopback with TLS and htpasswd
 * (hack/test-registry.sh); the test builds a one-layer OCI image layout itself and pushes it
 * with skopeo. A PullPolicy links a pull secret to a service account that already has a
 * secret of another registry; the test then builds the auth file from the account's
 * imagePullSecrets exactly as the kubelet merges them (registry/authfile: imagePullSecrets
 * order, first secret per registry) and `skopeo inspect`s the image with it. Before the
 * link the same construction yields no credentials for the registry, and skopeo is refused.
 *
 * R12: a policy with verifyCredentials (the controller runs with --verify-credentials and the
 * test CA as --registry-ca-file) gets CredentialsVerified=True/Verified; a wrong password in
 * its secret turns it CredentialsRejected (naming secret and registry, not the password); with
 * the registry stopped, RegistryUnreachable. Ready stays beside it.
 */
#include "e2e.h"
#include "registry/authfile.h"
#include "registry/verify.h"
#include "testregistry.h"

#include <curl/curl.h>
#include <sys/stat.h>

static treg reg;

/* The auth file of sa's imagePullSecrets as the kubelet merges them, written to path. */
static size_t kubelet_authfile(const char *ns, const char *sa, const char *path,
                               registry_authfile *f) {
        json_object *o = e2e_sa(ns, sa);
        assert_non_null(o);
        for (size_t i = 0; i < kt_jlen(o, "imagePullSecrets"); i++) {
                const char *name = kt_jstr(kt_jidx(o, "imagePullSecrets", i), "name");
                json_object *s = e2e_get("secret", ns, name);
                if (!s) continue; /* the kubelet skips a missing secret too */
                const char *type = kt_jstr(s, "type");
                const char *key = strcmp(type, "kubernetes.io/dockercfg") == 0
                                      ? ".dockercfg"
                                      : ".dockerconfigjson";
                json_object *data = kt_jget(s, "data");
                /* not kt_jstr(): the key's leading '.' would read as a path separator */
                json_object *v = NULL;
                const char *b64 = data && json_object_object_get_ex(data, key, &v)
                                      ? json_object_get_string(v)
                                      : NULL;
                char *payload = b64 ? kt_b64decode(b64) : NULL;
                char secret[512];
                snprintf(secret, sizeof(secret), "%s/%s", ns, name);
                if (payload)
                        assert_true(
                            registry_authfile_add(f, type, payload, strlen(payload), secret) >= 0);
                free(payload);
                json_object_put(s);
        }
        json_object_put(o);
        char *json = NULL;
        assert_int_equal(registry_authfile_to_json(f, &json), 0);
        FILE *out = fopen(path, "we");
        assert_non_null(out);
        chmod(path, 0600);
        fputs(json, out);
        fclose(out);
        free(json);
        return f->n;
}

static int skopeo(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int skopeo(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *args = kt_vfmt(fmt, ap);
        va_end(ap);
        assert_non_null(args);
        char *cmd = NULL;
        assert_true(asprintf(&cmd, "skopeo %s >'%s/skopeo.out' 2>&1", args, reg.dir) > 0);
        int rc = system(cmd);
        fprintf(stderr, "  skopeo %s -> %d\n", args, rc);
        char *show = NULL;
        assert_true(asprintf(&show, "sed 's/^/    /' '%s/skopeo.out' | head -8 >&2", reg.dir) > 0);
        if (system(show) != 0) fprintf(stderr, "    (no output)\n");
        free(show);
        free(cmd);
        free(args);
        return rc;
}

static void test_skopeo_inspect_with_linked_secrets(void **state) {
        char oci[1024], push[1024], before[1024], after[1024], image[512];
        snprintf(oci, sizeof(oci), "%s/oci", reg.dir);
        snprintf(push, sizeof(push), "%s/push-auth.json", reg.dir);
        snprintf(before, sizeof(before), "%s/kubelet-before.json", reg.dir);
        snprintf(after, sizeof(after), "%s/kubelet-after.json", reg.dir);
        snprintf(image, sizeof(image), "docker://%s/e2e/hello:1", reg.host);

        /* the image: an OCI layout written here, pushed with the registry's credentials */
        char *cmd = NULL;
        assert_true(
            asprintf(&cmd, "bash '%s/hack/test-registry.sh' oci-layout '%s'", kt_root(), oci) > 0);
        assert_int_equal(system(cmd), 0);
        free(cmd);
        registry_authfile pf = {0};
        char *pj = NULL;
        assert_true(asprintf(&pj, "{\"auths\":{\"%s\":{\"username\":\"%s\",\"password\":\"%s\"}}}",
                             reg.host, reg.user, reg.password) > 0);
        assert_int_equal(
            registry_authfile_add(&pf, "kubernetes.io/dockerconfigjson", pj, strlen(pj), NULL), 1);
        free(pj);
        char *pjson = NULL;
        assert_int_equal(registry_authfile_to_json(&pf, &pjson), 0);
        FILE *f = fopen(push, "we");
        assert_non_null(f);
        fputs(pjson, f);
        fclose(f);
        free(pjson);
        registry_authfile_done(&pf);
        assert_int_equal(
            skopeo("copy --dest-authfile '%s' --dest-cert-dir '%s' 'oci:%s:latest' '%s'", push,
                   reg.cert_dir, oci, image),
            0);

        /* an account that already pulls from another registry */
        char *ns = e2e_ns("app", NULL);
        e2e_pull_secret(ns, "other-registry", "other.example:5000", "someone");
        kt_apply(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: builder\n  namespace: %s\n"
            "imagePullSecrets:\n- name: other-registry\n",
            ns);
        kt_apply("apiVersion: v1\nkind: Secret\nmetadata:\n  name: regcreds\n  namespace: %s\n"
                 "type: kubernetes.io/dockerconfigjson\nstringData:\n"
                 "  .dockerconfigjson: '{\"auths\":{\"https://%s\":{\"username\":\"%s\","
                 "\"password\":\"%s\"}}}'\n",
                 ns, reg.host, reg.user, reg.password);

        /* before the link: the kubelet would have nothing for this registry */
        registry_authfile fb = {0};
        /* other-registry and, on (simulated) OpenShift, the internal registry's dockercfg */
        assert_true(kubelet_authfile(ns, "builder", before, &fb) >= 1);
        assert_non_null(registry_authfile_find(&fb, "other.example:5000"));
        assert_null(registry_authfile_find(&fb, reg.host));
        registry_authfile_done(&fb);
        assert_int_not_equal(
            skopeo("inspect --authfile '%s' --cert-dir '%s' '%s'", before, reg.cert_dir, image), 0);

        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: registry\n  namespace: %s\n"
                 "spec:\n  subjects:\n    serviceAccounts: [builder]\n"
                 "  pullSecrets:\n  - name: regcreds\n",
                 ns);
        e2e_wait_link(ns, "builder", "pull", "regcreds", 1, E2E_WAIT_S);

        registry_authfile fa = {0};
        assert_true(kubelet_authfile(ns, "builder", after, &fa) >= 2);
        const registry_auth *a = registry_authfile_find(&fa, reg.host);
        assert_non_null(a);
        char want[512];
        snprintf(want, sizeof(want), "%s/regcreds", ns);
        assert_string_equal(a->secret, want);
        /* the handshake the operator makes agrees with skopeo */
        registry_verify_opts o = {.ca_file = reg.ca_file};
        registry_outcome out = 99;
        char *detail = NULL;
        assert_int_equal(registry_verify(&o, a->registry, a->username, a->password, &out, &detail),
                         0);
        fprintf(stderr, "  verify %s: %s (%s)\n", a->registry, registry_outcome_reason(out),
                detail);
        assert_int_equal(out, REGISTRY_VERIFIED);
        free(detail);
        registry_authfile_done(&fa);

        assert_int_equal(
            skopeo("inspect --authfile '%s' --cert-dir '%s' '%s'", after, reg.cert_dir, image), 0);
        char *digest = NULL, *got = NULL;
        assert_true(asprintf(&cmd, "cat '%s/digest'", oci) > 0);
        FILE *p = popen(cmd, "r");
        char buf[128] = "";
        assert_non_null(p);
        assert_non_null(fgets(buf, sizeof(buf), p));
        pclose(p);
        free(cmd);
        buf[strcspn(buf, "\n")] = 0;
        digest = strdup(buf);
        assert_true(
            asprintf(&cmd, "grep -c '\"Digest\": \"%s\"' '%s/skopeo.out'", digest, reg.dir) > 0);
        p = popen(cmd, "r");
        assert_non_null(p);
        got = fgets(buf, sizeof(buf), p) ? strdup(buf) : NULL;
        pclose(p);
        free(cmd);
        assert_non_null(got);
        assert_int_equal(atoi(got), 1); /* skopeo saw the image the test pushed */
        free(got);
        free(digest);
        free(ns);
}

static void secret_with_password(const char *ns, const char *name, const char *password) {
        kt_apply("apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\n"
                 "type: kubernetes.io/dockerconfigjson\nstringData:\n"
                 "  .dockerconfigjson: '{\"auths\":{\"%s\":{\"username\":\"%s\","
                 "\"password\":\"%s\"}}}'\n",
                 name, ns, reg.host, reg.user, password);
}

#define CREDS_JP "{.status.conditions[?(@.type==\"CredentialsVerified\")]"

/*
 * Every version of policy ns/checked after resourceVersion rv0, replayed by a watch that starts
 * there (the API server's watch cache keeps them; the server ends it after 1 s); counts those
 * whose status.observedGeneration is gen and, among them, those without a CredentialsVerified
 * condition.
 */
static void versions_at_generation(const char *ns, const char *rv0, long long gen, int *n,
                                   int *without) {
        char *out = kt_kout("get --raw '/apis/pullpolicy.io/v1alpha1/namespaces/%s/pullpolicies"
                            "?watch=1&fieldSelector=metadata.name%%3Dchecked&resourceVersion=%s"
                            "&timeoutSeconds=1'",
                            ns, rv0);
        assert_non_null(out);
        *n = *without = 0;
        for (char *save = NULL, *line = strtok_r(out, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
                json_object *ev = json_tokener_parse(line), *obj = NULL, *st = NULL, *g = NULL,
                            *conds = NULL;
                if (ev && json_object_object_get_ex(ev, "object", &obj) &&
                    json_object_object_get_ex(obj, "status", &st) &&
                    json_object_object_get_ex(st, "observedGeneration", &g) &&
                    json_object_get_int64(g) == gen) {
                        (*n)++;
                        bool has = false;
                        if (json_object_object_get_ex(st, "conditions", &conds))
                                for (size_t k = 0; k < json_object_array_length(conds); k++) {
                                        json_object *c = json_object_array_get_idx(conds, k), *t;
                                        if (json_object_object_get_ex(c, "type", &t) &&
                                            strcmp(json_object_get_string(t),
                                                   "CredentialsVerified") == 0)
                                                has = true;
                                }
                        if (!has) (*without)++;
                }
                json_object_put(ev);
        }
        free(out);
}

static void test_credentials_verified_condition(void **state) {
        char *ns = e2e_ns("verify", NULL);
        secret_with_password(ns, "robot", reg.password);
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: checked\n  namespace: %s\n"
                 "spec:\n  subjects:\n    serviceAccounts: [default]\n"
                 "  pullSecrets:\n  - name: robot\n  verifyCredentials: true\n",
                 ns);
        e2e_wait_out(
            60, "True Verified",
            "get ppol checked -n '%s' -o jsonpath='" CREDS_JP ".status} " CREDS_JP ".reason}'", ns);
        e2e_wait_out(E2E_WAIT_S, "Applied",
                     "get ppol checked -n '%s' -o jsonpath='" E2E_JSONPATH_READY ".reason}'", ns);

        /* A spec edit makes the reconciler write the status (observedGeneration 2) by a merge
         * patch that replaces the conditions list: every version at generation 2 must carry the
         * verifier's condition (it used to vanish until the verifier's next look put it back). */
        char *rv0 =
            kt_kout("get ppol checked -n '%s' -o jsonpath='{.metadata.resourceVersion}'", ns);
        assert_non_null(rv0);
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: checked\n  namespace: %s\n"
                 "spec:\n  subjects:\n    serviceAccounts: [default, builder]\n"
                 "  pullSecrets:\n  - name: robot\n  verifyCredentials: true\n",
                 ns);
        e2e_wait_out(E2E_WAIT_S, "2 True",
                     "get ppol checked -n '%s' -o jsonpath='{.status.observedGeneration} " CREDS_JP
                     ".status}'",
                     ns);
        int at2 = 0, without = 0;
        versions_at_generation(ns, rv0, 2, &at2, &without);
        fprintf(stderr, "  versions at generation 2: %d, without CredentialsVerified: %d\n", at2,
                without);
        assert_true(at2 >= 1);
        assert_int_equal(without, 0);
        free(rv0);

        /* a wrong password: the registry refuses it; the message names secret and registry */
        secret_with_password(ns, "robot", "not-the-registry-password");
        e2e_wait_out(
            60, "False CredentialsRejected",
            "get ppol checked -n '%s' -o jsonpath='" CREDS_JP ".status} " CREDS_JP ".reason}'", ns);
        char *msg = kt_kout("get ppol checked -n '%s' -o jsonpath='" CREDS_JP ".message}'", ns);
        assert_non_null(msg);
        fprintf(stderr, "  CredentialsRejected: %s\n", msg);
        char want[512];
        snprintf(want, sizeof(want), "secret %s/robot at registry %s", ns, reg.host);
        assert_non_null(strstr(msg, want));
        assert_null(strstr(msg, "not-the-registry-password"));
        free(msg);
        e2e_wait_out(E2E_WAIT_S, "Applied",
                     "get ppol checked -n '%s' -o jsonpath='" E2E_JSONPATH_READY ".reason}'", ns);

        /* the registry gone: unreachable (the secret changes so that a round starts now) */
        assert_int_equal(treg_stop(&reg), 0);
        secret_with_password(ns, "robot", reg.password);
        e2e_wait_out(
            60, "False RegistryUnreachable",
            "get ppol checked -n '%s' -o jsonpath='" CREDS_JP ".status} " CREDS_JP ".reason}'", ns);
        msg = kt_kout("get ppol checked -n '%s' -o jsonpath='" CREDS_JP ".message}'", ns);
        fprintf(stderr, "  RegistryUnreachable: %s\n", msg ? msg : "(none)");
        free(msg);
        free(ns);
}

static int group_setup(void **state) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        if (treg_start(&reg, "e2e") < 0) return -1;
        if (e2e_suite_setup(state, "regcreds", e2e_sim_mode()) < 0) return -1;
        /* the home of the policy may link only as a distribution namespace */
        static char dist[512], ca[1024];
        snprintf(dist, sizeof(dist), "--distribution-namespaces=%s-app,%s-verify", E2E.prefix,
                 E2E.prefix);
        snprintf(ca, sizeof(ca), "--registry-ca-file=%s", reg.ca_file);
        const char *flags[] = {dist, "--verify-credentials", ca, NULL};
        return e2e_controller_start(flags);
}

static int group_teardown(void **state) {
        int r = e2e_suite_teardown(state);
        treg_done(&reg);
        curl_global_cleanup();
        return r;
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_skopeo_inspect_with_linked_secrets),
            /* last: it stops the registry */
            cmocka_unit_test(test_credentials_verified_condition),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
