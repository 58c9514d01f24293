/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The OpenShift simulation (test/fixtures/openshift, hack/openshift-sim.sh,
 * build/pullpolicy-sim) against the real local control plane.
 *
 * The group setup runs `hack/openshift-sim.sh install $TESTENV_DIR`. Each test
 * starts its own provisioner as a child process (tproc_spawn) with
 * --namespace-prefix=<a unique prefix>, so that it only touches the test's own
 * namespaces, and stops it in the teardown, expecting exit status 0 (a clean
 * SIGTERM). With $PULLPOLICY_SIM_WRAPPER set (e.g. "valgrind --leak-check=full
 * --errors-for-leak-kinds=definite,indirect --error-exitcode=99") the provisioner runs
 * under it, and a leak or memory error fails the test through that exit status.
 * One test drives the provisioner through hack/openshift-sim.sh start/stop instead.
 *
 * Everything is observed and written directly over HTTPS with libcurl (the admin
 * certificate of $TESTENV_DIR/pki), not with the C client under test, and not with
 * kubectl either for the timing-sensitive parts: starting kubectl costs about a second
 * on a loaded two-core machine, which would blur the states that the delay tests look
 * at. kubectl is used for `auth can-i` and in the teardown.
 * Logs: $PULLPOLICY_BUILD/test-logs/openshift-sim-<test>.log.
 */
#include <errno.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <json-c/json.h>

#include "kubetest.h"
#include "procs.h"
#include "testenv.h"

#define WAIT_S 30.0

static const char *const dockercfg_alphabet = "bcdfghjklmnpqrstvwxz2456789";

/* --- small helpers --- */

static double mono(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s) {
        struct timespec d = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
        while (nanosleep(&d, &d) < 0 && errno == EINTR) {
        }
}

static const char *root_dir(void) {
        const char *r = getenv("PULLPOLICY_ROOT");
        return r && *r ? r : ".";
}

static const char *build_dir(void) {
        const char *b = getenv("PULLPOLICY_BUILD");
        return b && *b ? b : "build";
}

/* Exit status of a kubectl command whose output is not needed. */
__attribute__((format(printf, 1, 2))) static int kubectl(const char *fmt, ...) {
        va_list ap;
        char *cmd = NULL, *out = NULL;
        va_start(ap, fmt);
        int n = vasprintf(&cmd, fmt, ap);
        va_end(ap);
        if (n < 0) return -ENOMEM;
        int r = testenv_kubectl(&out, "%s", cmd);
        free(cmd);
        free(out);
        return r;
}

/* Runs hack/openshift-sim.sh with the test environment; its exit status. */
__attribute__((format(printf, 1, 2))) static int sim_script(const char *fmt, ...) {
        va_list ap;
        char *args = NULL, *cmd = NULL;
        va_start(ap, fmt);
        int n = vasprintf(&args, fmt, ap);
        va_end(ap);
        if (n < 0) return -ENOMEM;
        n = asprintf(&cmd, "PULLPOLICY_BUILD='%s' bash '%s/hack/openshift-sim.sh' %s", build_dir(),
                     root_dir(), args);
        free(args);
        if (n < 0) return -ENOMEM;
        int st = system(cmd);
        free(cmd);
        if (st < 0) return -errno;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static json_object *jget(json_object *o, const char *key) {
        json_object *v = NULL;
        if (!o || !json_object_is_type(o, json_type_object)) return NULL;
        return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *jstr(json_object *o, const char *key) {
        json_object *v = jget(o, key);
        return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static const char *annotation(json_object *obj, const char *key) {
        return jstr(jget(jget(obj, "metadata"), "annotations"), key);
}

static size_t list_len(json_object *obj, const char *field) {
        json_object *l = jget(obj, field);
        return l && json_object_is_type(l, json_type_array) ? json_object_array_length(l) : 0;
}

static const char *list_name(json_object *obj, const char *field, size_t i) {
        return jstr(json_object_array_get_idx(jget(obj, field), i), "name");
}

static bool list_has(json_object *obj, const char *field, const char *name) {
        for (size_t i = 0; i < list_len(obj, field); i++) {
                const char *n = list_name(obj, field, i);
                if (n && strcmp(n, name) == 0) return true;
        }
        return false;
}

static size_t list_count(json_object *obj, const char *field, const char *name) {
        size_t c = 0;
        for (size_t i = 0; i < list_len(obj, field); i++) {
                const char *n = list_name(obj, field, i);
                if (n && strcmp(n, name) == 0) c++;
        }
        return c;
}

/* The first name of obj.<field> starting with prefix, or NULL. */
static const char *list_prefix(json_object *obj, const char *field, const char *prefix) {
        for (size_t i = 0; i < list_len(obj, field); i++) {
                const char *n = list_name(obj, field, i);
                if (n && strncmp(n, prefix, strlen(prefix)) == 0) return n;
        }
        return NULL;
}

/* The decoded .data[key] of a secret as parsed JSON, or NULL. */
static json_object *secret_json(json_object *secret, const char *key) {
        const char *v = jstr(jget(secret, "data"), key);
        char *raw = v ? kt_b64decode(v) : NULL;
        json_object *o = raw ? json_tokener_parse(raw) : NULL;
        free(raw);
        return o;
}

static bool matches(const char *s, const char *re) {
        regex_t r;
        if (regcomp(&r, re, REG_EXTENDED | REG_NOSUB) != 0) return false;
        bool ok = regexec(&r, s, 0, NULL, 0) == 0;
        regfree(&r);
        return ok;
}

/* --- HTTPS to the apiserver with the admin certificate --- */

typedef struct membuf {
        char *data;
        size_t len;
} membuf;

static size_t membuf_write(char *data, size_t size, size_t n, void *ud) {
        membuf *b = ud;
        size_t add = size * n;
        if (b->len + add > TESTENV_OUTPUT_MAX) return 0;
        char *nd = realloc(b->data, b->len + add + 1);
        if (!nd) return 0;
        memcpy(nd + b->len, data, add);
        b->len += add;
        nd[b->len] = 0;
        b->data = nd;
        return add;
}

/*
 * One request; returns the HTTP status (0 on a transport failure) and, if ret is not
 * NULL, the parsed JSON body (NULL when it does not parse).
 */
static long api(const char *method, const char *path, const char *content_type, const char *body,
                json_object **ret) {
        char url[4096], ca[4096], crt[4096], key[4096], ct[256];
        snprintf(url, sizeof(url), "%s%s", testenv_server(), path);
        snprintf(ca, sizeof(ca), "%s/pki/ca.crt", testenv_dir());
        snprintf(crt, sizeof(crt), "%s/pki/admin.crt", testenv_dir());
        snprintf(key, sizeof(key), "%s/pki/admin.key", testenv_dir());
        CURL *c = curl_easy_init();
        if (!c) return 0;
        membuf b = {0};
        struct curl_slist *h = NULL;
        if (content_type) {
                snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
                h = curl_slist_append(h, ct);
        }
        h = curl_slist_append(h, "Accept: application/json");
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_CAINFO, ca);
        curl_easy_setopt(c, CURLOPT_SSLCERT, crt);
        curl_easy_setopt(c, CURLOPT_SSLKEY, key);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, membuf_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        if (body) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        long code = 0;
        if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
        if (ret) *ret = b.data ? json_tokener_parse(b.data) : NULL;
        free(b.data);
        return code;
}

/* GET path: the parsed object when the answer is 200, else NULL. */
__attribute__((format(printf, 1, 2))) static json_object *api_get(const char *fmt, ...) {
        va_list ap;
        char *path = NULL;
        va_start(ap, fmt);
        int n = vasprintf(&path, fmt, ap);
        va_end(ap);
        if (n < 0) return NULL;
        json_object *o = NULL;
        long code = api("GET", path, NULL, NULL, &o);
        free(path);
        if (code != 200) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

static json_object *get_sa(const char *ns, const char *name) {
        return api_get("/api/v1/namespaces/%s/serviceaccounts/%s", ns, name);
}

static json_object *get_secret(const char *ns, const char *name) {
        return api_get("/api/v1/namespaces/%s/secrets/%s", ns, name);
}

/* The secrets of type kubernetes.io/dockercfg in ns; -1 when the list failed. */
static int count_dockercfg_secrets(const char *ns) {
        json_object *l = api_get("/api/v1/namespaces/%s/secrets"
                                 "?fieldSelector=type%%3Dkubernetes.io%%2Fdockercfg",
                                 ns);
        if (!l) return -1;
        int n = (int)list_len(l, "items");
        json_object_put(l);
        return n;
}

/* Merge patch (type "merge") or JSON patch (type "json") of a service account; HTTP status. */
static long patch_sa(const char *ns, const char *name, const char *type, const char *patch) {
        char path[1024];
        snprintf(path, sizeof(path), "/api/v1/namespaces/%s/serviceaccounts/%s", ns, name);
        return api("PATCH", path,
                   strcmp(type, "json") == 0 ? "application/json-patch+json"
                                             : "application/merge-patch+json",
                   patch, NULL);
}

static long delete_secret(const char *ns, const char *name) {
        char path[1024];
        snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets/%s", ns, name);
        return api("DELETE", path, NULL, NULL, NULL);
}

/* --- per-test fixture: a provisioner child and the namespaces to delete --- */

typedef struct fixture {
        const char *test;
        char *prefix; /* unique, the provisioner's --namespace-prefix */
        char *ns;     /* prefix + "-a" */
        tproc sim;
        bool sim_running;
        bool script_started;
} fixture;

static int fixture_setup(void **state) {
        fixture *f = calloc(1, sizeof(*f));
        if (!f) return -1;
        f->prefix = testenv_unique_name("sim");
        if (!f->prefix || asprintf(&f->ns, "%s-a", f->prefix) < 0) {
                free(f->prefix);
                free(f);
                return -1;
        }
        *state = f;
        return 0;
}

static int fixture_teardown(void **state) {
        fixture *f = *state;
        int ret = 0;
        if (f->sim_running) {
                int st = tproc_stop(&f->sim, 15.0);
                if (st != 0) {
                        fprintf(stderr, "pullpolicy-sim exited with status %d (see its log)\n", st);
                        ret = -1;
                }
        }
        if (f->script_started) sim_script("stop '%s' >/dev/null 2>&1", testenv_dir());
        char path[512];
        snprintf(path, sizeof(path), "/api/v1/namespaces/%s", f->ns);
        api("DELETE", path, NULL, NULL, NULL);
        free(f->prefix);
        free(f->ns);
        free(f);
        return ret;
}

/*
 * Starts build/pullpolicy-sim for this test's namespaces with the given extra
 * flags (NULL-terminated) and waits until it has listed the cluster.
 */
static void start_sim(fixture *f, const char *name, const char *const *flags) {
        char bin[4096], log[4096], kc[4096], pfx[512];
        snprintf(bin, sizeof(bin), "%s/pullpolicy-sim", build_dir());
        snprintf(log, sizeof(log), "%s/test-logs", build_dir());
        mkdir(log, 0755);
        snprintf(log, sizeof(log), "%s/test-logs/openshift-sim-%s.log", build_dir(), name);
        snprintf(kc, sizeof(kc), "--kubeconfig=%s", testenv_kubeconfig());
        snprintf(pfx, sizeof(pfx), "--namespace-prefix=%s-", f->prefix);
        unlink(log);

        char *argv[64];
        size_t n = 0;
        char *wrapper = NULL;
        const char *w = getenv("PULLPOLICY_SIM_WRAPPER");
        if (w && *w) {
                wrapper = strdup(w);
                assert_non_null(wrapper);
                for (char *tok = strtok(wrapper, " "); tok && n < 32; tok = strtok(NULL, " "))
                        argv[n++] = tok;
        }
        argv[n++] = bin;
        argv[n++] = kc;
        argv[n++] = pfx;
        for (size_t i = 0; flags && flags[i] && n < 62; i++) argv[n++] = (char *)flags[i];
        argv[n] = NULL;

        int r = tproc_spawn(&f->sim, log, argv);
        free(wrapper);
        assert_int_equal(r, 0);
        f->sim_running = true;

        /* Under valgrind on a busy machine the first TLS handshakes alone take seconds. */
        double deadline = mono() + (w && *w ? 4 * WAIT_S : WAIT_S);
        while (tproc_log_count(&f->sim, " synced", NULL) <= 0) {
                if (waitpid(f->sim.pid, NULL, WNOHANG) == f->sim.pid) {
                        f->sim.pid = 0;
                        f->sim_running = false;
                        fail_msg("pullpolicy-sim exited at start; see %s", log);
                }
                if (mono() > deadline) fail_msg("pullpolicy-sim did not sync; see %s", log);
                sleep_s(0.05);
        }
}

static void create_namespace(const char *ns) {
        char body[512];
        snprintf(body, sizeof(body),
                 "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"%s\"}}",
                 ns);
        assert_int_equal(api("POST", "/api/v1/namespaces", "application/json", body, NULL), 201);
}

static void create_sa(const char *ns, const char *name) {
        char body[512], path[512];
        snprintf(
            body, sizeof(body),
            "{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\",\"metadata\":{\"name\":\"%s\"}}",
            name);
        snprintf(path, sizeof(path), "/api/v1/namespaces/%s/serviceaccounts", ns);
        assert_int_equal(api("POST", path, "application/json", body, NULL), 201);
}

/* --- wait conditions --- */

typedef struct sa_cond {
        const char *ns;
        const char *name;
        const char *secret; /* optional: a specific secret name */
        const char *other;  /* optional: a name that must NOT be used */
} sa_cond;

static int cond_sa_exists(void *ud) {
        sa_cond *c = ud;
        json_object *sa = get_sa(c->ns, c->name);
        json_object_put(sa);
        return sa != NULL;
}

/* Legacy: a "<sa>-dockercfg-" name (not c->other) is in both .secrets and .imagePullSecrets. */
static int cond_legacy_provisioned(void *ud) {
        sa_cond *c = ud;
        char prefix[300];
        snprintf(prefix, sizeof(prefix), "%s-dockercfg-", c->name);
        json_object *sa = get_sa(c->ns, c->name);
        const char *m = list_prefix(sa, "secrets", prefix);
        const char *p = list_prefix(sa, "imagePullSecrets", prefix);
        int ok = m && p && strcmp(m, p) == 0 && (!c->other || strcmp(m, c->other) != 0);
        json_object_put(sa);
        return ok;
}

static int cond_annotated(void *ud) {
        sa_cond *c = ud;
        json_object *sa = get_sa(c->ns, c->name);
        int ok = annotation(sa, "openshift.io/internal-registry-pull-secret-ref") != NULL;
        json_object_put(sa);
        return ok;
}

static int cond_secret_exists(void *ud) {
        sa_cond *c = ud;
        json_object *s = get_secret(c->ns, c->secret);
        json_object_put(s);
        return s != NULL;
}

/* The secret exists, was made after c->other (a uid) and is filled (binding: bound). */
static int cond_secret_filled(void *ud) {
        sa_cond *c = ud;
        json_object *s = get_secret(c->ns, c->secret);
        const char *uid = jstr(jget(s, "metadata"), "uid");
        const char *b = annotation(s, "openshift.io/internal-registry-auth-token.binding");
        int ok = s && b && strcmp(b, "bound") == 0 && (!c->other || (uid && strcmp(uid, c->other)));
        json_object_put(s);
        return ok;
}

/* A secret named "<c->name>-dockercfg-*" exists in c->ns. */
static int cond_some_dockercfg_secret(void *ud) {
        sa_cond *c = ud;
        char prefix[300];
        snprintf(prefix, sizeof(prefix), "%s-dockercfg-", c->name);
        json_object *l = api_get("/api/v1/namespaces/%s/secrets", c->ns);
        int ok = 0;
        for (size_t i = 0; i < list_len(l, "items"); i++) {
                const char *n =
                    jstr(jget(json_object_array_get_idx(jget(l, "items"), i), "metadata"), "name");
                if (n && strncmp(n, prefix, strlen(prefix)) == 0) ok = 1;
        }
        json_object_put(l);
        return ok;
}

/* --- fixtures --- */

static void test_image_api_discoverable(void **state) {
        json_object *d = api_get("/apis/image.openshift.io/v1");
        assert_non_null(d);
        assert_string_equal(jstr(d, "groupVersion"), "image.openshift.io/v1");
        bool found = false;
        for (size_t i = 0; i < list_len(d, "resources"); i++) {
                json_object *r = json_object_array_get_idx(jget(d, "resources"), i);
                if (jstr(r, "name") && strcmp(jstr(r, "name"), "imagestreams") == 0) {
                        found = true;
                        assert_true(json_object_get_boolean(jget(r, "namespaced")));
                        assert_string_equal(jstr(r, "kind"), "ImageStream");
                }
        }
        assert_true(found);
        json_object_put(d);

        /* The group is listed by /apis too (what API discovery clients read first). */
        json_object *apis = api_get("/apis");
        assert_non_null(apis);
        found = false;
        for (size_t i = 0; i < list_len(apis, "groups"); i++) {
                const char *n = jstr(json_object_array_get_idx(jget(apis, "groups"), i), "name");
                if (n && strcmp(n, "image.openshift.io") == 0) found = true;
        }
        assert_true(found);
        json_object_put(apis);
}

static bool str_array_is(json_object *a, const char *const *want, size_t n) {
        if (!a || !json_object_is_type(a, json_type_array) || json_object_array_length(a) != n)
                return false;
        for (size_t i = 0; i < n; i++) {
                bool found = false;
                for (size_t j = 0; j < n; j++) {
                        json_object *v = json_object_array_get_idx(a, j);
                        if (json_object_is_type(v, json_type_string) &&
                            strcmp(json_object_get_string(v), want[i]) == 0)
                                found = true;
                }
                if (!found) return false;
        }
        return true;
}

static void test_image_puller_role(void **state) {
        json_object *cr =
            api_get("/apis/rbac.authorization.k8s.io/v1/clusterroles/system:image-puller");
        assert_non_null(cr);
        json_object *rules = jget(cr, "rules");
        assert_non_null(rules);
        assert_int_equal(json_object_array_length(rules), 1);
        json_object *rule = json_object_array_get_idx(rules, 0);
        static const char *const groups[] = {"", "image.openshift.io"};
        static const char *const resources[] = {"imagestreams/layers"};
        static const char *const verbs[] = {"get"};
        assert_true(str_array_is(jget(rule, "apiGroups"), groups, 2));
        assert_true(str_array_is(jget(rule, "resources"), resources, 1));
        assert_true(str_array_is(jget(rule, "verbs"), verbs, 1));
        assert_null(jget(rule, "resourceNames"));
        assert_null(jget(rule, "nonResourceURLs"));
        json_object_put(cr);

        /* RBAC evaluates it: a service account bound to it may get imagestreams/layers. */
        char *who = NULL;
        fixture *f = *state;
        assert_true(asprintf(&who, "system:serviceaccount:%s:default", f->ns) > 0);
        create_namespace(f->ns);
        assert_int_equal(
            kubectl("create rolebinding puller -n '%s' --clusterrole=system:image-puller "
                    "--serviceaccount='%s:default' >/dev/null",
                    f->ns, f->ns),
            0);
        assert_int_equal(
            kubectl("auth can-i get imagestreams.image.openshift.io --subresource=layers "
                    "-n '%s' "
                    "--as='%s' >/dev/null",
                    f->ns, who),
            0);
        assert_int_not_equal(kubectl("auth can-i list imagestreams.image.openshift.io -n '%s' "
                                     "--as='%s' >/dev/null 2>&1",
                                     f->ns, who),
                             0);
        free(who);
}

static void test_global_pull_secret(void **state) {
        json_object *s = get_secret("openshift-config", "pull-secret");
        assert_non_null(s);
        assert_string_equal(jstr(s, "type"), "kubernetes.io/dockerconfigjson");
        json_object *cfg = secret_json(s, ".dockerconfigjson");
        assert_non_null(cfg);
        json_object *auths = jget(cfg, "auths");
        static const char *const registries[] = {
            "cloud.openshift.com", "quay.io", "registry.connect.redhat.com", "registry.redhat.io"};
        assert_int_equal(json_object_object_length(auths), 4);
        for (size_t i = 0; i < sizeof(registries) / sizeof(*registries); i++) {
                const char *a = jstr(jget(auths, registries[i]), "auth");
                assert_non_null(a);
                char *userpass = kt_b64decode(a);
                assert_non_null(userpass);
                assert_true(matches(userpass, "^[a-z-]+:fake-[a-z]+-token-[0-9]{4}$"));
                free(userpass);
        }
        json_object_put(cfg);
        json_object_put(s);
}

static void test_image_api_uninstall_and_reinstall(void **state) {
        assert_int_equal(sim_script("uninstall-image-api '%s' >/dev/null 2>&1", testenv_dir()), 0);
        assert_int_not_equal(kubectl("get --raw /apis/image.openshift.io/v1 >/dev/null 2>&1"), 0);
        assert_int_equal(sim_script("install-image-api '%s' >/dev/null 2>&1", testenv_dir()), 0);
        assert_int_equal(kubectl("get --raw /apis/image.openshift.io/v1 >/dev/null"), 0);
        assert_int_equal(api("GET", "/apis/image.openshift.io/v1", NULL, NULL, NULL), 200);
}

/* --- legacy --- */

static void check_legacy_secret(const char *ns, const char *sa_name) {
        json_object *sa = get_sa(ns, sa_name);
        assert_non_null(sa);
        char prefix[300], re[400];
        snprintf(prefix, sizeof(prefix), "%s-dockercfg-", sa_name);
        snprintf(re, sizeof(re), "^%s[%s]{5}$", prefix, dockercfg_alphabet);
        const char *name = list_prefix(sa, "secrets", prefix);
        assert_non_null(name);
        assert_true(matches(name, re));
        assert_int_equal(list_count(sa, "secrets", name), 1);
        assert_int_equal(list_count(sa, "imagePullSecrets", name), 1);
        const char *uid = jstr(jget(sa, "metadata"), "uid");

        json_object *s = get_secret(ns, name);
        assert_non_null(s);
        assert_string_equal(jstr(s, "type"), "kubernetes.io/dockercfg");
        assert_string_equal(annotation(s, "kubernetes.io/service-account.name"), sa_name);
        assert_string_equal(annotation(s, "kubernetes.io/service-account.uid"), uid);
        const char *tok = annotation(s, "openshift.io/token-secret.name");
        assert_non_null(tok);
        char tre[400];
        snprintf(tre, sizeof(tre), "^%s-token-[%s]{5}$", sa_name, dockercfg_alphabet);
        assert_true(matches(tok, tre));
        /* The token secret exists, kube-controller-manager filled it, and it owns this one. */
        json_object *t = get_secret(ns, tok);
        assert_non_null(t);
        assert_string_equal(jstr(t, "type"), "kubernetes.io/service-account-token");
        assert_string_equal(annotation(t, "kubernetes.io/service-account.name"), sa_name);
        assert_string_equal(annotation(t, "kubernetes.io/created-by"),
                            "openshift.io/create-dockercfg-secrets");
        const char *tdata = jstr(jget(t, "data"), "token");
        assert_non_null(tdata);
        char *token = kt_b64decode(tdata);
        assert_non_null(token);
        assert_string_equal(annotation(s, "openshift.io/token-secret.value"), token);
        json_object *owner =
            json_object_array_get_idx(jget(jget(s, "metadata"), "ownerReferences"), 0);
        assert_non_null(owner);
        assert_string_equal(jstr(owner, "kind"), "Secret");
        assert_string_equal(jstr(owner, "name"), tok);
        assert_string_equal(jstr(owner, "uid"), jstr(jget(t, "metadata"), "uid"));
        assert_true(json_object_get_boolean(jget(owner, "controller")));
        /* linked: the pending-token annotation is gone */
        assert_null(annotation(sa, "openshift.io/create-dockercfg-secrets.pending-token"));
        json_object *cfg = secret_json(s, ".dockercfg");
        assert_non_null(cfg);
        json_object *e = jget(cfg, "image-registry.openshift-image-registry.svc:5000");
        assert_non_null(e);
        assert_string_equal(jstr(e, "username"), "serviceaccount");
        assert_string_equal(jstr(e, "password"), token);
        assert_non_null(jstr(e, "auth"));
        free(token);
        json_object_put(cfg);
        json_object_put(t);
        json_object_put(s);
        json_object_put(sa);
}

static void test_legacy_provisions_default_and_new(void **state) {
        fixture *f = *state;
        static const char *const flags[] = {"--mode=legacy", NULL};
        start_sim(f, "legacy", flags);
        create_namespace(f->ns);

        sa_cond c = {.ns = f->ns, .name = "default"};
        assert_int_equal(testenv_wait_until(cond_legacy_provisioned, &c, WAIT_S), 0);
        check_legacy_secret(f->ns, "default");

        /* A namespace outside the prefix, then a new account inside: only ours is served. */
        char *other = testenv_unique_name("simother");
        assert_non_null(other);
        create_namespace(other);
        sa_cond o = {.ns = other, .name = "default"};
        assert_int_equal(testenv_wait_until(cond_sa_exists, &o, WAIT_S), 0);
        create_sa(f->ns, "builder");
        sa_cond b = {.ns = f->ns, .name = "builder"};
        assert_int_equal(testenv_wait_until(cond_legacy_provisioned, &b, WAIT_S), 0);
        check_legacy_secret(f->ns, "builder");
        assert_int_equal(count_dockercfg_secrets(f->ns), 2);
        assert_int_equal(count_dockercfg_secrets(other), 0);
        json_object *osa = get_sa(other, "default");
        assert_int_equal(list_len(osa, "imagePullSecrets"), 0);
        json_object_put(osa);
        kubectl("delete namespace '%s' --wait=false >/dev/null 2>&1", other);
        free(other);
}

static void test_legacy_delay_honoured(void **state) {
        fixture *f = *state;
        /* Under valgrind every request is slow: a longer delay keeps the window observable. */
        const char *w = getenv("PULLPOLICY_SIM_WRAPPER");
        double delay = w && *w ? 12.0 : 3.0;
        char delay_flag[64];
        snprintf(delay_flag, sizeof(delay_flag), "--delay=%.0f", delay);
        const char *const flags[] = {"--mode=legacy", delay_flag, NULL};
        start_sim(f, "legacy-delay", flags);
        create_namespace(f->ns);
        sa_cond d = {.ns = f->ns, .name = "default"};
        assert_int_equal(testenv_wait_until(cond_legacy_provisioned, &d, WAIT_S), 0);

        double t0 = mono();
        create_sa(f->ns, "late");
        sa_cond c = {.ns = f->ns, .name = "late"};
        sleep_s(1.0);
        /*
         * Before the delay: neither a secret nor a link. The provisioner saw the account
         * after t0, so whatever was observed before t0 + delay must show it untouched.
         */
        int secrets = cond_some_dockercfg_secret(&c);
        json_object *sa = get_sa(f->ns, "late");
        double observed = mono() - t0;
        assert_non_null(sa);
        if (observed < delay) {
                assert_int_equal(secrets, 0);
                assert_int_equal(list_len(sa, "secrets"), 0);
                assert_int_equal(list_len(sa, "imagePullSecrets"), 0);
        } else {
                fprintf(stderr,
                        "note: the observation took until t0+%.1f s, after the delay; "
                        "the before-delay state could not be checked\n",
                        observed);
        }
        json_object_put(sa);
        assert_int_equal(testenv_wait_until(cond_legacy_provisioned, &c, WAIT_S), 0);
        double took = mono() - t0;
        assert_true(took >= delay);
        check_legacy_secret(f->ns, "late");
}

/*
 * The conflict tests rely on the writer's patch landing while the provisioner pauses
 * with its stale copy (--link-pause=8, the patch takes milliseconds). Should the
 * machine be so slow that it did not, the test cannot show what it is about: skip,
 * saying so, rather than pass or fail on a premise that did not hold.
 */
static void premise_not_linked_yet(fixture *f, const char *sa) {
        char needle[256];
        snprintf(needle, sizeof(needle), "%s: linked", sa);
        if (tproc_log_count(&f->sim, needle, NULL) > 0) {
                fprintf(stderr,
                        "skipped: the provisioner linked %s before the test's write "
                        "landed; the 409 path could not be forced\n",
                        sa);
                skip();
        }
}

/* A writer adds its own entries while the provisioner holds a stale copy (--link-pause). */
static void test_legacy_conflict_keeps_others_entries(void **state) {
        fixture *f = *state;
        static const char *const flags[] = {"--mode=legacy", "--link-pause=8", NULL};
        start_sim(f, "legacy-conflict", flags);
        create_namespace(f->ns);
        create_sa(f->ns, "busy");
        sa_cond c = {.ns = f->ns, .name = "busy"};
        /* The secret exists: the provisioner has read the account and now pauses. */
        assert_int_equal(testenv_wait_until(cond_some_dockercfg_secret, &c, WAIT_S), 0);
        json_object *sa = get_sa(f->ns, "busy");
        /* Empty lists: the merge patch below (which replaces lists) then drops nothing. */
        assert_int_equal(list_len(sa, "imagePullSecrets"), 0);
        assert_int_equal(list_len(sa, "secrets"), 0);
        json_object_put(sa);
        assert_int_equal(patch_sa(f->ns, "busy", "merge",
                                  "{\"imagePullSecrets\":[{\"name\":\"writer-pull\"}],"
                                  "\"secrets\":[{\"name\":\"writer-mount\"}],"
                                  "\"metadata\":{\"annotations\":{\"writer\":\"was-here\"}}}"),
                         200);
        premise_not_linked_yet(f, "busy");

        assert_int_equal(testenv_wait_until(cond_legacy_provisioned, &c, WAIT_S), 0);
        sa = get_sa(f->ns, "busy");
        assert_true(list_has(sa, "imagePullSecrets", "writer-pull"));
        assert_true(list_has(sa, "secrets", "writer-mount"));
        assert_string_equal(annotation(sa, "writer"), "was-here");
        assert_int_equal(list_len(sa, "imagePullSecrets"), 2);
        assert_int_equal(list_len(sa, "secrets"), 2);
        json_object_put(sa);
        check_legacy_secret(f->ns, "busy");
        /* The path taken was the conflict one, and only one secret was made. */
        assert_true(tproc_log_count(&f->sim, "busy: update conflicted (409)", NULL) >= 1);
        assert_int_equal(count_dockercfg_secrets(f->ns), 2); /* default's and busy's */
}

static void test_legacy_deleted_secret_replaced(void **state) {
        fixture *f = *state;
        static const char *const flags[] = {"--mode=legacy", NULL};
        start_sim(f, "legacy-replace", flags);
        create_namespace(f->ns);
        sa_cond c = {.ns = f->ns, .name = "default"};
        assert_int_equal(testenv_wait_until(cond_legacy_provisioned, &c, WAIT_S), 0);
        json_object *sa = get_sa(f->ns, "default");
        char *old = strdup(list_prefix(sa, "secrets", "default-dockercfg-"));
        json_object_put(sa);
        assert_non_null(old);
        assert_int_equal(patch_sa(f->ns, "default", "json",
                                  "[{\"op\":\"add\",\"path\":\"/imagePullSecrets/-\","
                                  "\"value\":{\"name\":\"keep-me\"}}]"),
                         200);

        assert_int_equal(delete_secret(f->ns, old), 200);
        c.other = old;
        assert_int_equal(testenv_wait_until(cond_legacy_provisioned, &c, WAIT_S), 0);
        sa = get_sa(f->ns, "default");
        assert_false(list_has(sa, "secrets", old));
        assert_false(list_has(sa, "imagePullSecrets", old));
        assert_true(list_has(sa, "imagePullSecrets", "keep-me"));
        json_object_put(sa);
        check_legacy_secret(f->ns, "default");
        free(old);
}

/* OpenShift's naming of over-long names: 38 characters, '-', FNV-1a(name), "-dockercfg-". */
static void test_legacy_long_name(void **state) {
        fixture *f = *state;
        static const char *const flags[] = {"--mode=legacy", NULL};
        const char *name = "a-very-long-service-account-name-that-openshift-must-shorten";
        start_sim(f, "legacy-long", flags);
        create_namespace(f->ns);
        create_sa(f->ns, name);

        uint32_t h = 2166136261u;
        for (const char *p = name; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
        char prefix[128], re[256];
        snprintf(prefix, sizeof(prefix), "%.38s-%08x-dockercfg-", name, h);
        snprintf(re, sizeof(re), "^%s[%s]{5}$", prefix, dockercfg_alphabet);

        double deadline = mono() + WAIT_S;
        const char *got = NULL;
        json_object *sa = NULL;
        while (mono() < deadline) {
                json_object_put(sa);
                sa = get_sa(f->ns, name);
                got = list_prefix(sa, "imagePullSecrets", prefix);
                if (got && list_has(sa, "secrets", got)) break;
                got = NULL;
                sleep_s(0.1);
        }
        assert_non_null(got);
        assert_int_equal(strlen(got), 63);
        assert_true(matches(got, re));
        json_object_put(sa);
}

/* --- current (4.16.z late, 4.17.z late, 4.18+) --- */

#define ANN_REF     "openshift.io/internal-registry-pull-secret-ref"
#define ANN_BINDING "openshift.io/internal-registry-auth-token.binding"
#define FM_SA       "openshift.io/image-registry-pull-secrets_service-account-controller"

/* The annotation names a secret that is in both .secrets and .imagePullSecrets. */
static int cond_listed_both(void *ud) {
        sa_cond *c = ud;
        json_object *sa = get_sa(c->ns, c->name);
        const char *ref = annotation(sa, ANN_REF);
        int ok = ref && list_has(sa, "imagePullSecrets", ref) && list_has(sa, "secrets", ref);
        json_object_put(sa);
        return ok;
}

/* .imagePullSecrets of ns/name has (want 1) or lacks (want 0) c->secret. */
typedef struct has_cond {
        const char *ns, *name, *entry;
        bool want;
} has_cond;

static int cond_has_entry(void *ud) {
        has_cond *c = ud;
        json_object *sa = get_sa(c->ns, c->name);
        int ok = sa && list_has(sa, "imagePullSecrets", c->entry) == c->want;
        json_object_put(sa);
        return ok;
}

/* Whether the manager's server-side-apply entry of obj owns top-level field f ("f:<field>"). */
static bool applied_by(json_object *obj, const char *manager, const char *field) {
        json_object *mf = jget(jget(obj, "metadata"), "managedFields");
        char key[64];
        snprintf(key, sizeof(key), "f:%s", field);
        for (size_t i = 0; mf && i < json_object_array_length(mf); i++) {
                json_object *e = json_object_array_get_idx(mf, i);
                const char *m = jstr(e, "manager"), *op = jstr(e, "operation");
                if (m && op && !strcmp(m, manager) && !strcmp(op, "Apply") &&
                    jget(jget(e, "fieldsV1"), key))
                        return true;
        }
        return false;
}

static long long rv_of(json_object *obj) {
        const char *rv = jstr(jget(obj, "metadata"), "resourceVersion");
        return rv ? atoll(rv) : -1;
}

/*
 * The account is annotated and named in both lists in ONE server-side apply before its
 * secret exists; the secret is made empty ("{}"), owned by the account (not as controller),
 * and filled after the delay; nothing of the account changes when it is filled.
 */
static void test_current_sequence(void **state) {
        fixture *f = *state;
        const char *w = getenv("PULLPOLICY_SIM_WRAPPER");
        double delay = w && *w ? 12.0 : 4.0;
        char delay_flag[64];
        snprintf(delay_flag, sizeof(delay_flag), "--delay=%.0f", delay);
        const char *const flags[] = {"--mode=current", delay_flag, NULL};
        start_sim(f, "current", flags);
        create_namespace(f->ns);
        double t0 = mono();
        create_sa(f->ns, "app");

        /* 1. Annotation and both lists together: never one without the others. */
        double deadline = mono() + WAIT_S;
        json_object *sa = NULL;
        for (;;) {
                json_object_put(sa);
                sa = get_sa(f->ns, "app");
                const char *ref = annotation(sa, ANN_REF);
                bool m = ref && list_has(sa, "secrets", ref);
                bool p = ref && list_has(sa, "imagePullSecrets", ref);
                if (ref || list_len(sa, "secrets") || list_len(sa, "imagePullSecrets")) {
                        if (!(ref && m && p))
                                fail_msg("a partial write was seen: ref=%s secrets=%d pull=%d",
                                         ref ? ref : "-", m, p);
                        break;
                }
                if (mono() > deadline) fail_msg("app was not annotated");
                sleep_s(0.02);
        }
        char *ref = strdup(annotation(sa, ANN_REF));
        char re[256];
        snprintf(re, sizeof(re), "^app-dockercfg-[%s]{5}$", dockercfg_alphabet);
        assert_true(matches(ref, re));
        assert_true(applied_by(sa, FM_SA, "imagePullSecrets"));
        assert_true(applied_by(sa, FM_SA, "secrets"));
        long long sa_rv = rv_of(sa);
        char *sa_uid = strdup(jstr(jget(sa, "metadata"), "uid"));
        json_object_put(sa);

        /*
         * 2. The secret came after that write (etcd's revisions are global: the secret's first
         * version has a higher resourceVersion than the account's write) and holds "{}".
         */
        sa_cond s = {.ns = f->ns, .name = "app", .secret = ref};
        assert_int_equal(testenv_wait_until(cond_secret_exists, &s, WAIT_S), 0);
        json_object *sec = get_secret(f->ns, ref);
        double observed = mono() - t0;
        if (observed < delay) {
                assert_true(rv_of(sec) > sa_rv);
                assert_null(annotation(sec, ANN_BINDING));
                json_object *cfg = secret_json(sec, ".dockercfg");
                assert_non_null(cfg);
                assert_int_equal(json_object_object_length(cfg), 0);
                json_object_put(cfg);
        } else {
                fprintf(stderr, "note: observed at t0+%.1f s, after the delay\n", observed);
        }
        assert_string_equal(jstr(sec, "type"), "kubernetes.io/dockercfg");
        assert_string_equal(
            annotation(sec, "openshift.io/internal-registry-auth-token.service-account"), "app");
        json_object *owner =
            json_object_array_get_idx(jget(jget(sec, "metadata"), "ownerReferences"), 0);
        assert_string_equal(jstr(owner, "kind"), "ServiceAccount");
        assert_string_equal(jstr(owner, "uid"), sa_uid);
        assert_false(json_object_get_boolean(jget(owner, "controller")));
        json_object_put(sec);

        /* 3. Filled after the delay; the account is not written again. */
        sa_cond fl = {.ns = f->ns, .secret = ref};
        assert_int_equal(testenv_wait_until(cond_secret_filled, &fl, delay + WAIT_S), 0);
        assert_true(mono() - t0 >= delay);
        sec = get_secret(f->ns, ref);
        json_object *cfg = secret_json(sec, ".dockercfg");
        json_object *e = jget(cfg, "image-registry.openshift-image-registry.svc:5000");
        assert_non_null(e);
        char *userpass = kt_b64decode(jstr(e, "auth"));
        assert_non_null(userpass);
        assert_true(strncmp(userpass, "<token>:", 8) == 0 && strlen(userpass) > 8);
        free(userpass);
        json_object_put(cfg);
        json_object_put(sec);
        sa = get_sa(f->ns, "app");
        assert_int_equal(rv_of(sa), sa_rv);
        assert_int_equal(list_count(sa, "imagePullSecrets", ref), 1);
        assert_int_equal(list_count(sa, "secrets", ref), 1);
        json_object_put(sa);
        assert_true(tproc_log_count(&f->sim, "app: applied", NULL) == 1);
        free(ref);
        free(sa_uid);
}

/*
 * The apply carries the resourceVersion read: a writer's entries added while the provisioner
 * holds a stale copy (--link-pause) make it fail with 409; it reads again and keeps them.
 */
static void test_current_guarded_apply_keeps_others_entries(void **state) {
        fixture *f = *state;
        static const char *const flags[] = {"--mode=current", "--link-pause=8", NULL};
        start_sim(f, "current-conflict", flags);
        create_namespace(f->ns);
        create_sa(f->ns, "busy");
        sa_cond c = {.ns = f->ns, .name = "busy"};
        double deadline = mono() + WAIT_S;
        while (tproc_log_count(&f->sim, "busy: pausing", NULL) <= 0) {
                if (mono() > deadline) fail_msg("the provisioner did not pause for busy");
                sleep_s(0.05);
        }
        assert_int_equal(
            patch_sa(f->ns, "busy", "merge", "{\"imagePullSecrets\":[{\"name\":\"writer-pull\"}]}"),
            200);
        if (cond_annotated(&c)) {
                fprintf(stderr, "skipped: busy was annotated before the write landed\n");
                skip();
        }
        assert_int_equal(testenv_wait_until(cond_listed_both, &c, WAIT_S), 0);
        json_object *sa = get_sa(f->ns, "busy");
        const char *ref = annotation(sa, ANN_REF);
        assert_true(list_has(sa, "imagePullSecrets", "writer-pull"));
        assert_int_equal(list_count(sa, "imagePullSecrets", ref), 1);
        assert_int_equal(list_len(sa, "imagePullSecrets"), 2);
        json_object_put(sa);
        assert_true(tproc_log_count(&f->sim, "busy: apply conflicted (409)", NULL) >= 1);
}

/* A deleted secret is made again under the same name; the account's entries never go. */
static void test_current_deleted_secret_recreated(void **state) {
        fixture *f = *state;
        static const char *const flags[] = {"--mode=current", "--delay=2", NULL};
        start_sim(f, "current-recreate", flags);
        create_namespace(f->ns);
        sa_cond d = {.ns = f->ns, .name = "default"};
        assert_int_equal(testenv_wait_until(cond_listed_both, &d, WAIT_S), 0);
        json_object *sa = get_sa(f->ns, "default");
        char *ref = strdup(annotation(sa, ANN_REF));
        json_object_put(sa);
        sa_cond fl = {.ns = f->ns, .secret = ref};
        assert_int_equal(testenv_wait_until(cond_secret_filled, &fl, WAIT_S), 0);
        json_object *sec = get_secret(f->ns, ref);
        char *uid = strdup(jstr(jget(sec, "metadata"), "uid"));
        json_object_put(sec);

        assert_int_equal(delete_secret(f->ns, ref), 200);
        sa_cond s = {.ns = f->ns, .secret = ref, .other = uid};
        double deadline = mono() + WAIT_S;
        while (!cond_secret_filled(&s)) {
                if (!cond_listed_both(&d)) fail_msg("the account lost its entries");
                if (mono() > deadline) fail_msg("%s was not made again and filled", ref);
                sleep_s(0.1);
        }
        sa = get_sa(f->ns, "default");
        assert_string_equal(annotation(sa, ANN_REF), ref);
        assert_int_equal(list_count(sa, "imagePullSecrets", ref), 1);
        assert_int_equal(list_count(sa, "secrets", ref), 1);
        json_object_put(sa);
        assert_int_equal(count_dockercfg_secrets(f->ns), 1);
        free(ref);
        free(uid);
}

/* --token-refresh: the token is replaced before it would expire. */
static void test_current_token_refresh(void **state) {
        fixture *f = *state;
        static const char *const flags[] = {"--mode=current", "--token-refresh=2", NULL};
        start_sim(f, "current-refresh", flags);
        create_namespace(f->ns);
        sa_cond d = {.ns = f->ns, .name = "default"};
        assert_int_equal(testenv_wait_until(cond_listed_both, &d, WAIT_S), 0);
        json_object *sa = get_sa(f->ns, "default");
        char *ref = strdup(annotation(sa, ANN_REF));
        json_object_put(sa);
        sa_cond fl = {.ns = f->ns, .secret = ref};
        assert_int_equal(testenv_wait_until(cond_secret_filled, &fl, WAIT_S), 0);
        json_object *sec = get_secret(f->ns, ref);
        char *first = strdup(jstr(jget(sec, "data"), ".dockercfg"));
        json_object_put(sec);
        double deadline = mono() + WAIT_S;
        for (;;) {
                sec = get_secret(f->ns, ref);
                const char *now = jstr(jget(sec, "data"), ".dockercfg");
                bool changed = now && strcmp(now, first) != 0;
                if (changed) assert_string_equal(annotation(sec, ANN_BINDING), "bound");
                json_object_put(sec);
                if (changed) break;
                if (mono() > deadline) fail_msg("the token of %s was not refreshed", ref);
                sleep_s(0.2);
        }
        assert_true(tproc_log_count(&f->sim, "refreshed secret", NULL) >= 1);
        free(first);
        free(ref);
}

/* --- early416 (4.16.0 / 4.17.0) --- */

/* Annotated first, secret made and filled after the delay, then listed by a forced apply. */
static void test_early416_sequence(void **state) {
        fixture *f = *state;
        const char *w = getenv("PULLPOLICY_SIM_WRAPPER");
        double delay = w && *w ? 12.0 : 4.0;
        char delay_flag[64];
        snprintf(delay_flag, sizeof(delay_flag), "--delay=%.0f", delay);
        const char *const flags[] = {"--mode=early416", delay_flag, NULL};
        start_sim(f, "early416", flags);
        create_namespace(f->ns);
        double t0 = mono();
        create_sa(f->ns, "app");
        sa_cond d = {.ns = f->ns, .name = "app"};
        assert_int_equal(testenv_wait_until(cond_annotated, &d, WAIT_S), 0);
        json_object *sa = get_sa(f->ns, "app");
        char *ref = strdup(annotation(sa, ANN_REF));
        if (mono() - t0 < delay) {
                assert_false(list_has(sa, "imagePullSecrets", ref));
                assert_false(list_has(sa, "secrets", ref));
        }
        json_object_put(sa);
        assert_int_equal(testenv_wait_until(cond_listed_both, &d, delay + WAIT_S), 0);
        assert_true(mono() - t0 >= delay);
        sa_cond fl = {.ns = f->ns, .secret = ref};
        assert_true(cond_secret_filled(&fl));
        sa = get_sa(f->ns, "app");
        assert_int_equal(list_count(sa, "imagePullSecrets", ref), 1);
        assert_true(applied_by(sa, FM_SA, "imagePullSecrets"));
        json_object_put(sa);
        free(ref);
}

/*
 * The 4.16.0 writer applies its cached .imagePullSecrets with force and no resourceVersion.
 * With the test hook --cache-lag=2 and --resync=2, every resync applies the account as it was
 * 2 s before: an entry removed just before is put back, one added just before is dropped.
 */
static void test_early416_unguarded_resync(void **state) {
        fixture *f = *state;
        static const char *const flags[] = {"--mode=early416", "--resync=2", "--cache-lag=2", NULL};
        start_sim(f, "early416-race", flags);
        create_namespace(f->ns);
        char body[512], path[512];
        snprintf(body, sizeof(body),
                 "{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\",\"metadata\":{\"name\":"
                 "\"racer\"},\"imagePullSecrets\":[{\"name\":\"was-there\"}]}");
        snprintf(path, sizeof(path), "/api/v1/namespaces/%s/serviceaccounts", f->ns);
        assert_int_equal(api("POST", path, "application/json", body, NULL), 201);
        sa_cond d = {.ns = f->ns, .name = "racer"};
        assert_int_equal(testenv_wait_until(cond_listed_both, &d, WAIT_S), 0);
        sleep_s(3.0); /* older than the lag: the cache's view now has both entries */

        /* removed by someone: a resync puts it back */
        json_object *sa = get_sa(f->ns, "racer");
        size_t idx = 0;
        for (size_t i = 0; i < list_len(sa, "imagePullSecrets"); i++)
                if (!strcmp(list_name(sa, "imagePullSecrets", i), "was-there")) idx = i;
        json_object_put(sa);
        char patch[256];
        snprintf(patch, sizeof(patch), "[{\"op\":\"remove\",\"path\":\"/imagePullSecrets/%zu\"}]",
                 idx);
        assert_int_equal(patch_sa(f->ns, "racer", "json", patch), 200);
        has_cond back = {.ns = f->ns, .name = "racer", .entry = "was-there", .want = true};
        assert_int_equal(testenv_wait_until(cond_has_entry, &back, WAIT_S), 0);
        fprintf(stderr, "a removed entry was put back by the early416 writer\n");

        /* added by someone: a resync drops it */
        sleep_s(3.0);
        assert_int_equal(patch_sa(f->ns, "racer", "json",
                                  "[{\"op\":\"add\",\"path\":\"/imagePullSecrets/-\","
                                  "\"value\":{\"name\":\"just-added\"}}]"),
                         200);
        has_cond gone = {.ns = f->ns, .name = "racer", .entry = "just-added", .want = false};
        assert_int_equal(testenv_wait_until(cond_has_entry, &gone, WAIT_S), 0);
        fprintf(stderr, "an added entry was dropped by the early416 writer\n");
        assert_true(tproc_log_count(&f->sim, "racer: resync: applying", NULL) >= 2);
        assert_true(tproc_log_count(&f->sim, "(differs from the server's)", NULL) >= 2);
        /* its own entry is kept all along */
        assert_true(cond_listed_both(&d));
}

/* --- removed --- */

static void test_removed_provisions_nothing(void **state) {
        fixture *f = *state;
        static const char *const flags[] = {"--mode=removed", NULL};
        start_sim(f, "removed", flags);
        assert_true(tproc_log_count(&f->sim, "synced (mode removed", NULL) >= 1);
        create_namespace(f->ns);
        create_sa(f->ns, "builder");
        sa_cond d = {.ns = f->ns, .name = "default"};
        assert_int_equal(testenv_wait_until(cond_sa_exists, &d, WAIT_S), 0);
        sleep_s(3.0);
        static const char *const names[] = {"default", "builder"};
        for (size_t i = 0; i < 2; i++) {
                json_object *sa = get_sa(f->ns, names[i]);
                assert_non_null(sa);
                assert_null(annotation(sa, ANN_REF));
                assert_int_equal(list_len(sa, "secrets"), 0);
                assert_int_equal(list_len(sa, "imagePullSecrets"), 0);
                json_object_put(sa);
        }
        assert_int_equal(count_dockercfg_secrets(f->ns), 0);
}

/*
 * The operator-level clean-up: secrets made by the legacy and the current controllers are
 * deleted (with the legacy token secret), their names leave both lists, the pull-secret-ref
 * annotation stays, other entries stay.
 */
static void test_removed_cleans_up(void **state) {
        fixture *f = *state;
        static const char *const legacy[] = {"--mode=legacy", NULL};
        start_sim(f, "removed-before-legacy", legacy);
        create_namespace(f->ns);
        create_sa(f->ns, "old");
        sa_cond o = {.ns = f->ns, .name = "old"};
        assert_int_equal(testenv_wait_until(cond_legacy_provisioned, &o, WAIT_S), 0);
        assert_int_equal(tproc_stop(&f->sim, 15.0), 0);
        f->sim_running = false;
        json_object *sa = get_sa(f->ns, "old");
        char *old_dcfg = strdup(list_prefix(sa, "secrets", "old-dockercfg-"));
        json_object_put(sa);
        json_object *s = get_secret(f->ns, old_dcfg);
        char *old_token = strdup(annotation(s, "openshift.io/token-secret.name"));
        json_object_put(s);

        static const char *const current[] = {"--mode=current", NULL};
        start_sim(f, "removed-before-current", current);
        create_sa(f->ns, "new");
        sa_cond n = {.ns = f->ns, .name = "new"};
        assert_int_equal(testenv_wait_until(cond_listed_both, &n, WAIT_S), 0);
        assert_int_equal(
            patch_sa(f->ns, "new", "json",
                     "[{\"op\":\"add\",\"path\":\"/imagePullSecrets/-\",\"value\":{\"name\":"
                     "\"keep-me\"}}]"),
            200);
        assert_int_equal(tproc_stop(&f->sim, 15.0), 0);
        f->sim_running = false;
        sa = get_sa(f->ns, "new");
        char *new_ref = strdup(annotation(sa, ANN_REF));
        json_object_put(sa);

        static const char *const removed[] = {"--mode=removed", NULL};
        start_sim(f, "removed-cleanup", removed);
        has_cond og = {.ns = f->ns, .name = "old", .entry = old_dcfg, .want = false};
        has_cond ng = {.ns = f->ns, .name = "new", .entry = new_ref, .want = false};
        assert_int_equal(testenv_wait_until(cond_has_entry, &og, WAIT_S), 0);
        assert_int_equal(testenv_wait_until(cond_has_entry, &ng, WAIT_S), 0);
        sa_cond gone1 = {.ns = f->ns, .secret = old_dcfg}, gone2 = {.ns = f->ns, .secret = new_ref},
                gone3 = {.ns = f->ns, .secret = old_token};
        double deadline = mono() + WAIT_S;
        while (cond_secret_exists(&gone1) || cond_secret_exists(&gone2) ||
               cond_secret_exists(&gone3)) {
                if (mono() > deadline) fail_msg("managed secrets were not deleted");
                sleep_s(0.1);
        }
        sa = get_sa(f->ns, "new");
        assert_string_equal(annotation(sa, ANN_REF), new_ref); /* left, as OpenShift does */
        assert_false(list_has(sa, "secrets", new_ref));
        assert_true(list_has(sa, "imagePullSecrets", "keep-me"));
        json_object_put(sa);
        sa = get_sa(f->ns, "old");
        assert_false(list_has(sa, "secrets", old_dcfg));
        json_object_put(sa);
        free(old_dcfg);
        free(old_token);
        free(new_ref);
}

/* --- namespaces --- */

/*
 * OpenShift provisions the accounts of every namespace, kube-* included. kube-public's
 * "default" account is used by no test: provisioned here, then cleaned up by the removed
 * mode and its annotation dropped, so the shared control plane is left as it was.
 */
static void test_kube_namespaces_served(void **state) {
        fixture *f = *state;
        static const char *const current[] = {"--mode=current", "--namespace-prefix=kube-public",
                                              NULL};
        start_sim(f, "kube-public", current);
        sa_cond d = {.ns = "kube-public", .name = "default"};
        assert_int_equal(testenv_wait_until(cond_listed_both, &d, WAIT_S), 0);
        json_object *sa = get_sa("kube-public", "default");
        char *ref = strdup(annotation(sa, ANN_REF));
        json_object_put(sa);
        assert_int_equal(tproc_stop(&f->sim, 15.0), 0);
        f->sim_running = false;

        static const char *const removed[] = {"--mode=removed", "--namespace-prefix=kube-public",
                                              NULL};
        start_sim(f, "kube-public-cleanup", removed);
        has_cond gone = {.ns = "kube-public", .name = "default", .entry = ref, .want = false};
        assert_int_equal(testenv_wait_until(cond_has_entry, &gone, WAIT_S), 0);
        sa_cond s = {.ns = "kube-public", .secret = ref};
        double deadline = mono() + WAIT_S;
        while (cond_secret_exists(&s)) {
                if (mono() > deadline) fail_msg("kube-public/%s was not deleted", ref);
                sleep_s(0.1);
        }
        assert_int_equal(patch_sa("kube-public", "default", "json",
                                  "[{\"op\":\"remove\",\"path\":\"/metadata/annotations/"
                                  "openshift.io~1internal-registry-pull-secret-ref\"}]"),
                         200);
        free(ref);
}

/* --- hack/openshift-sim.sh start/stop --- */

static void test_script_start_stop(void **state) {
        fixture *f = *state;
        const char *dir = testenv_dir();
        assert_int_equal(sim_script("start '%s' --mode=legacy --namespace-prefix='%s-' >/dev/null "
                                    "2>&1",
                                    dir, f->prefix),
                         0);
        f->script_started = true;
        assert_int_equal(sim_script("status '%s'", dir), 0);
        /* A second start is refused while one runs. */
        assert_int_not_equal(sim_script("start '%s' --mode=removed >/dev/null 2>&1", dir), 0);
        create_namespace(f->ns);
        sa_cond c = {.ns = f->ns, .name = "default"};
        assert_int_equal(testenv_wait_until(cond_legacy_provisioned, &c, WAIT_S), 0);
        assert_int_equal(sim_script("stop '%s' >/dev/null 2>&1", dir), 0);
        f->script_started = false;
        assert_int_not_equal(sim_script("status '%s'", dir), 0);
}

static int group_setup(void **state) {
        if (testenv_group_setup(state) < 0) return -1;
        char bin[4096];
        snprintf(bin, sizeof(bin), "%s/pullpolicy-sim", build_dir());
        if (access(bin, X_OK) < 0) {
                fprintf(stderr, "%s is not built (make build)\n", bin);
                return -1;
        }
        if (sim_script("install '%s'", testenv_dir()) != 0) {
                fprintf(stderr, "hack/openshift-sim.sh install failed\n");
                return -1;
        }
        return 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

int main(void) {
        const struct CMUnitTest tests[] = {
            T(test_image_api_discoverable),
            T(test_image_puller_role),
            T(test_global_pull_secret),
            T(test_image_api_uninstall_and_reinstall),
            T(test_legacy_provisions_default_and_new),
            T(test_legacy_delay_honoured),
            T(test_legacy_conflict_keeps_others_entries),
            T(test_legacy_deleted_secret_replaced),
            T(test_legacy_long_name),
            T(test_current_sequence),
            T(test_current_guarded_apply_keeps_others_entries),
            T(test_current_deleted_secret_recreated),
            T(test_current_token_refresh),
            T(test_early416_sequence),
            T(test_early416_unguarded_resync),
            T(test_removed_provisions_nothing),
            T(test_removed_cleans_up),
            T(test_kube_namespaces_served),
            T(test_script_start_stop),
        };
        /* PULLPOLICY_TEST_FILTER=test_current_* runs only the matching tests. */
        const char *filter = getenv("PULLPOLICY_TEST_FILTER");
        if (filter && *filter) cmocka_set_test_filter(filter);
        return cmocka_run_group_tests(tests, group_setup, NULL);
}
