/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kube/config.h"
#include "util/macro.h"

static const char CA_PEM[] = "-----BEGIN CERTIFICATE-----\nMIIBfakeCA\n-----END CERTIFICATE-----\n";
static const char CERT_PEM[] =
    "-----BEGIN CERTIFICATE-----\nMIIBfakeCERT\n-----END CERTIFICATE-----\n";
static const char KEY_PEM[] =
    "-----BEGIN PRIVATE KEY-----\nMIIBfakeKEY\n-----END PRIVATE KEY-----\n";

typedef struct fx {
        char dir[64];
        char *saved_cwd;
} fx;

static char *b64(const char *s) {
        static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        size_t n = strlen(s);
        char *o = malloc(n / 3 * 4 + 5), *p = o;
        assert_non_null(o);
        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t)(unsigned char)s[i] << 16;
                if (i + 1 < n) v |= (uint32_t)(unsigned char)s[i + 1] << 8;
                if (i + 2 < n) v |= (unsigned char)s[i + 2];
                *p++ = t[v >> 18 & 63];
                *p++ = t[v >> 12 & 63];
                *p++ = i + 1 < n ? t[v >> 6 & 63] : '=';
                *p++ = i + 2 < n ? t[v & 63] : '=';
        }
        *p = 0;
        return o;
}

static char *path_in(fx *f, const char *name) {
        char *p = NULL;
        assert_true(asprintf(&p, "%s/%s", f->dir, name) > 0);
        return p;
}

static void write_file(fx *f, const char *name, const char *content) {
        _cleanup_free_ char *p = path_in(f, name);
        FILE *fp = fopen(p, "we");
        assert_non_null(fp);
        fputs(content, fp);
        assert_int_equal(fclose(fp), 0);
}

static void _printf_(3, 4) writef(fx *f, const char *name, const char *fmt, ...) {
        char *m = NULL;
        va_list ap;
        va_start(ap, fmt);
        assert_true(vasprintf(&m, fmt, ap) >= 0);
        va_end(ap);
        write_file(f, name, m);
        free(m);
}

static int setup(void **state) {
        fx *f = calloc(1, sizeof(*f));
        strcpy(f->dir, "/tmp/kube-config-test-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        f->saved_cwd = getcwd(NULL, 0);
        unsetenv("KUBECONFIG");
        unsetenv("KUBERNETES_SERVICE_HOST");
        unsetenv("KUBERNETES_SERVICE_PORT");
        *state = f;
        return 0;
}

static int teardown(void **state) {
        fx *f = *state;
        assert_int_equal(chdir(f->saved_cwd), 0);
        free(f->saved_cwd);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        assert_int_equal(system(cmd), 0);
        unsetenv("KUBECONFIG");
        unsetenv("KUBERNETES_SERVICE_HOST");
        unsetenv("KUBERNETES_SERVICE_PORT");
        free(f);
        return 0;
}

/* Loads name from the fixture dir; returns the error (and message in *err). */
static int load(fx *f, const char *name, const char *context, kube_config **ret, char **err) {
        _cleanup_free_ char *p = path_in(f, name);
        *err = NULL;
        return kube_config_load_kubeconfig(p, context, ret, err);
}

/* Expects loading to fail with code and a message equal to "<dir>/<name>: <suffix>". */
static void expect_error(fx *f, const char *name, int code, const char *suffix) {
        kube_config *c = NULL;
        char *err = NULL;
        int r = load(f, name, NULL, &c, &err);
        if (r != code) fail_msg("expected %d, got %d (%s)", code, r, err ? err : "no message");
        assert_null(c);
        assert_non_null(err);
        _cleanup_free_ char *expect = NULL;
        assert_true(asprintf(&expect, "%s/%s: %s", f->dir, name, suffix) > 0);
        assert_string_equal(err, expect);
        assert_null(strchr(err, '\n'));
        free(err);
}

static void assert_blob(const void *p, size_t len, const char *expect) {
        assert_non_null(p);
        assert_int_equal(len, strlen(expect));
        assert_memory_equal(p, expect, len);
}

static void test_inline_data(void **state) {
        fx *f = *state;
        _cleanup_free_ char *ca = b64(CA_PEM), *cert = b64(CERT_PEM), *key = b64(KEY_PEM);
        writef(f, "kc",
               "apiVersion: v1\nkind: Config\ncurrent-context: dev\n"
               "clusters:\n"
               "- name: other\n  cluster:\n    server: https://other:1\n"
               "- name: main\n  cluster:\n    server: https://10.1.2.3:6443/\n"
               "    certificate-authority-data: %s\n"
               "contexts:\n"
               "- name: dev\n  context:\n    cluster: main\n    user: admin\n"
               "    namespace: team-a\n"
               "users:\n- name: admin\n  user:\n    client-certificate-data: %s\n"
               "    client-key-data: |\n      %.20s\n      %s\n",
               ca, cert, key, key + 20);
        kube_config *c = NULL;
        char *err = NULL;
        int r = load(f, "kc", NULL, &c, &err);
        if (r < 0) fail_msg("%s", err);
        assert_string_equal(kube_config_server(c), "https://10.1.2.3:6443");
        assert_string_equal(kube_config_namespace(c), "team-a");
        assert_true(kube_config_namespace_explicit(c));
        assert_string_equal(kube_config_context(c), "dev");
        assert_false(kube_config_insecure(c));
        assert_null(kube_config_tls_server_name(c));
        assert_null(kube_config_proxy_url(c));
        size_t len;
        const void *p = kube_config_ca(c, &len);
        assert_blob(p, len, CA_PEM);
        p = kube_config_client_cert(c, &len);
        assert_blob(p, len, CERT_PEM);
        /* The key was folded over two lines: whitespace inside base64 is fine. */
        p = kube_config_client_key(c, &len);
        assert_blob(p, len, KEY_PEM);
        const char *tok = (const char *)0x1;
        assert_int_equal(kube_config_token(c, &tok), 0);
        assert_null(tok);

        /* A copy is independent of the original. */
        kube_config *d = NULL;
        assert_int_equal(kube_config_copy(c, &d), 0);
        kube_config_free(c);
        assert_string_equal(kube_config_server(d), "https://10.1.2.3:6443");
        p = kube_config_client_key(d, &len);
        assert_blob(p, len, KEY_PEM);
        assert_null(kube_config_free(d));
        assert_null(kube_config_free(NULL));
}

static void test_relative_files(void **state) {
        fx *f = *state;
        _cleanup_free_ char *sub = path_in(f, "sub"), *abs_ca = path_in(f, "ca.crt");
        assert_int_equal(mkdir(sub, 0700), 0);
        write_file(f, "ca.crt", CA_PEM);
        write_file(f, "sub/client.crt", CERT_PEM);
        write_file(f, "sub/client.key", KEY_PEM);
        write_file(f, "sub/token", "  file-token\n");
        writef(f, "sub/kc",
               "current-context: x\n"
               "clusters:\n- name: c\n  cluster:\n    server: https://h:443\n"
               "    certificate-authority: %s\n"
               "    tls-server-name: kubernetes.default\n"
               "    proxy-url: http://proxy:3128\n"
               "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
               "users:\n- name: u\n  user:\n    client-certificate: client.crt\n"
               "    client-key: ./client.key\n    token: static-token\n    tokenFile: token\n",
               abs_ca);
        /* From another working directory: paths resolve against the kubeconfig's. */
        assert_int_equal(chdir("/"), 0);
        kube_config *c = NULL;
        char *err = NULL;
        int r = load(f, "sub/kc", NULL, &c, &err);
        if (r < 0) fail_msg("%s", err);
        size_t len;
        const void *p = kube_config_ca(c, &len);
        assert_blob(p, len, CA_PEM);
        p = kube_config_client_cert(c, &len);
        assert_blob(p, len, CERT_PEM);
        p = kube_config_client_key(c, &len);
        assert_blob(p, len, KEY_PEM);
        assert_string_equal(kube_config_tls_server_name(c), "kubernetes.default");
        assert_string_equal(kube_config_proxy_url(c), "http://proxy:3128");
        assert_string_equal(kube_config_namespace(c), "default");
        assert_false(kube_config_namespace_explicit(c));
        /* tokenFile wins over token, as in client-go; the file's content is trimmed. */
        const char *tok = NULL;
        assert_int_equal(kube_config_token(c, &tok), 0);
        assert_string_equal(tok, "file-token");
        kube_config_free(c);

        /* A relative kubeconfig path works too. */
        assert_int_equal(chdir(f->dir), 0);
        assert_int_equal(kube_config_load_kubeconfig("sub/kc", NULL, &c, &err), 0);
        assert_int_equal(kube_config_token(c, &tok), 0);
        assert_string_equal(tok, "file-token");
        kube_config_free(c);
}

static void test_token_and_server_forms(void **state) {
        fx *f = *state;
        write_file(f, "kc",
                   "current-context: x\n"
                   "clusters:\n- name: c\n  cluster:\n    server: 127.0.0.1:6443\n"
                   "    insecure-skip-tls-verify: true\n"
                   "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                   "users:\n- name: u\n  user: {token: \"tok-123\"}\n");
        kube_config *c = NULL;
        char *err = NULL;
        assert_int_equal(load(f, "kc", NULL, &c, &err), 0);
        /* No scheme: https is implied. */
        assert_string_equal(kube_config_server(c), "https://127.0.0.1:6443");
        assert_true(kube_config_insecure(c));
        const char *tok;
        assert_int_equal(kube_config_token(c, &tok), 0);
        assert_string_equal(tok, "tok-123");
        kube_config_free(c);

        /* http:// is allowed (kubectl allows it); a path prefix is kept. */
        write_file(f, "kc2",
                   "current-context: x\n"
                   "clusters:\n- name: c\n  cluster:\n    server: http://[::1]:8080/k8s/c1//\n"
                   "contexts:\n- name: x\n  context: {cluster: c}\n");
        assert_int_equal(load(f, "kc2", NULL, &c, &err), 0);
        assert_string_equal(kube_config_server(c), "http://[::1]:8080/k8s/c1");
        assert_int_equal(kube_config_token(c, &tok), 0);
        assert_null(tok);
        kube_config_free(c);
}

static void test_merge(void **state) {
        fx *f = *state;
        /* a: no current-context; defines cluster c (server A) and context ctx-a. */
        write_file(f, "a",
                   "clusters:\n- name: c\n  cluster: {server: \"https://a:1\"}\n"
                   "contexts:\n- name: ctx-a\n  context: {cluster: c, namespace: ns-a}\n"
                   "- name: shared\n  context: {cluster: c, namespace: from-a}\n");
        /* b: redefines c (ignored: a came first), adds d, sets current-context. */
        write_file(f, "b",
                   "current-context: ctx-b\n"
                   "clusters:\n- name: c\n  cluster: {server: \"https://b:1\"}\n"
                   "- name: d\n  cluster: {server: \"https://d:1\"}\n"
                   "contexts:\n- name: ctx-b\n  context: {cluster: d}\n"
                   "- name: shared\n  context: {cluster: d, namespace: from-b}\n"
                   "- name: uses-c\n  context: {cluster: c}\n");
        /* c: sets another current-context (ignored: b set one first). */
        write_file(f, "c", "current-context: ctx-a\n");
        _cleanup_free_ char *a = path_in(f, "a"), *b = path_in(f, "b"), *cc = path_in(f, "c"),
                            *missing = path_in(f, "missing");
        _cleanup_free_ char *list = NULL;
        assert_true(asprintf(&list, "%s:%s::%s:%s", missing, a, b, cc) > 0);
        setenv("KUBECONFIG", list, 1);

        kube_config *c = NULL;
        char *err = NULL;
        int r = kube_config_load_kubeconfig(NULL, NULL, &c, &err);
        if (r < 0) fail_msg("%s", err);
        assert_string_equal(kube_config_context(c), "ctx-b");
        assert_string_equal(kube_config_server(c), "https://d:1");
        /* The source names the files that were read, not the missing one. */
        _cleanup_free_ char *src = NULL;
        assert_true(asprintf(&src, "%s:%s:%s", a, b, cc) > 0);
        assert_string_equal(kube_config_source(c), src);
        kube_config_free(c);

        /* The first file's cluster "c" wins even for a context from b. */
        assert_int_equal(kube_config_load_kubeconfig(NULL, "uses-c", &c, &err), 0);
        assert_string_equal(kube_config_server(c), "https://a:1");
        kube_config_free(c);
        /* And the first file's context of a given name. */
        assert_int_equal(kube_config_load_kubeconfig(NULL, "shared", &c, &err), 0);
        assert_string_equal(kube_config_namespace(c), "from-a");
        assert_string_equal(kube_config_server(c), "https://a:1");
        kube_config_free(c);
        /* An explicit context overrides current-context. */
        assert_int_equal(kube_config_load_kubeconfig(NULL, "ctx-a", &c, &err), 0);
        assert_string_equal(kube_config_namespace(c), "ns-a");
        kube_config_free(c);

        /* Given explicitly, a missing file is an error (not skipped). */
        r = kube_config_load_kubeconfig(list, NULL, &c, &err);
        assert_int_equal(r, -ENOENT);
        _cleanup_free_ char *expect = NULL;
        assert_true(asprintf(&expect, "%s: No such file or directory", missing) > 0);
        assert_string_equal(err, expect);
        free(err);

        /* $KUBECONFIG with no existing file at all. */
        setenv("KUBECONFIG", missing, 1);
        assert_int_equal(kube_config_load_kubeconfig(NULL, NULL, &c, &err), -ENOENT);
        assert_string_equal(err, "no kubeconfig file found ($KUBECONFIG)");
        free(err);
}

static void test_home_and_default(void **state) {
        fx *f = *state;
        _cleanup_free_ char *kdir = path_in(f, ".kube"), *old_home = NULL;
        if (getenv("HOME")) old_home = strdup(getenv("HOME"));
        assert_int_equal(mkdir(kdir, 0700), 0);
        write_file(
            f, ".kube/config",
            "current-context: h\nclusters:\n- name: c\n  cluster: {server: \"https://home:1\"}\n"
            "contexts:\n- name: h\n  context: {cluster: c}\n");
        write_file(f, "explicit",
                   "current-context: e\nclusters:\n- name: c\n  cluster: {server: "
                   "\"https://explicit:1\"}\n"
                   "contexts:\n- name: e\n  context: {cluster: c}\n");
        write_file(
            f, "env",
            "current-context: e\nclusters:\n- name: c\n  cluster: {server: \"https://env:1\"}\n"
            "contexts:\n- name: e\n  context: {cluster: c}\n");
        setenv("HOME", f->dir, 1);

        kube_config *c = NULL;
        char *err = NULL;
        assert_int_equal(kube_config_load_kubeconfig(NULL, NULL, &c, &err), 0);
        assert_string_equal(kube_config_server(c), "https://home:1");
        kube_config_free(c);
        assert_int_equal(kube_config_load_default(NULL, NULL, &c, &err), 0);
        assert_string_equal(kube_config_server(c), "https://home:1");
        kube_config_free(c);

        /* In-cluster beats ~/.kube/config (it fails here: no service account under /). */
        setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
        setenv("KUBERNETES_SERVICE_PORT", "443", 1);
        if (access("/var/run/secrets/kubernetes.io/serviceaccount/token", F_OK) != 0) {
                assert_int_equal(kube_config_load_default(NULL, NULL, &c, &err), -ENOENT);
                assert_true(!strncmp(err, "in-cluster: ", 12));
                free(err);
        }
        /* $KUBECONFIG beats in-cluster. */
        _cleanup_free_ char *env = path_in(f, "env"), *ex = path_in(f, "explicit");
        setenv("KUBECONFIG", env, 1);
        assert_int_equal(kube_config_load_default(NULL, NULL, &c, &err), 0);
        assert_string_equal(kube_config_server(c), "https://env:1");
        kube_config_free(c);
        /* The explicit flag beats everything. */
        assert_int_equal(kube_config_load_default(ex, NULL, &c, &err), 0);
        assert_string_equal(kube_config_server(c), "https://explicit:1");
        kube_config_free(c);

        if (old_home)
                setenv("HOME", old_home, 1);
        else
                unsetenv("HOME");
}

static void test_malformed(void **state) {
        fx *f = *state;
        _cleanup_free_ char *key = b64(KEY_PEM), *cert = b64(CERT_PEM), *notpem = b64("hello");

        write_file(f, "yaml", "clusters: [\n  - name: c\n");
        expect_error(f, "yaml", -EBADMSG,
                     "line 2 column 3: did not find expected node content while parsing a flow "
                     "node");

        write_file(
            f, "noserver",
            "current-context: x\nclusters:\n- name: c\n  cluster: {insecure-skip-tls-verify: "
            "true}\ncontexts:\n- name: x\n  context: {cluster: c}\n");
        expect_error(f, "noserver", -EBADMSG, "clusters[0].cluster.server: missing");

        write_file(f, "noctx",
                   "current-context: foo\nclusters:\n- name: c\n  cluster: {server: https://x}\n");
        expect_error(f, "noctx", -ENOENT, "context \"foo\" not found");

        write_file(f, "nocurrent", "clusters:\n- name: c\n  cluster: {server: https://x}\n");
        expect_error(f, "nocurrent", -ENOENT, "no context given and current-context is not set");

        write_file(f, "nocluster",
                   "current-context: x\ncontexts:\n- name: x\n  context: {cluster: gone}\n");
        expect_error(f, "nocluster", -ENOENT, "cluster \"gone\" (of context \"x\") not found");

        write_file(f, "nouser",
                   "current-context: x\nclusters:\n- name: c\n  cluster: {server: https://x}\n"
                   "contexts:\n- name: x\n  context: {cluster: c, user: ghost}\n");
        expect_error(f, "nouser", -ENOENT, "user \"ghost\" (of context \"x\") not found");

        writef(f, "b64",
               "current-context: x\nclusters:\n- name: c\n  cluster: {server: https://x}\n"
               "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
               "users:\n- name: u\n  user:\n    client-certificate-data: %s\n"
               "    client-key-data: \"%s!!\"\n",
               cert, key);
        expect_error(f, "b64", -EBADMSG, "users[0].user.client-key-data: invalid base64");

        writef(f, "notpem",
               "current-context: x\nclusters:\n- name: c\n  cluster: {server: https://x, "
               "certificate-authority-data: %s}\ncontexts:\n- name: x\n  context: {cluster: c}\n",
               notpem);
        expect_error(f, "notpem", -EBADMSG,
                     "clusters[0].cluster.certificate-authority-data: "
                     "not PEM data");

        write_file(f, "type1",
                   "current-context: x\nclusters:\n- name: c\n  cluster: {server: 123}\n"
                   "contexts:\n- name: x\n  context: {cluster: c}\n");
        expect_error(f, "type1", -EBADMSG,
                     "clusters[0].cluster.server: expected a string, found a number");

        write_file(f, "type2",
                   "current-context: x\nclusters:\n- name: c\n  cluster: {server: https://x, "
                   "insecure-skip-tls-verify: \"true\"}\n"
                   "contexts:\n- name: x\n  context: {cluster: c}\n");
        expect_error(f, "type2", -EBADMSG,
                     "clusters[0].cluster.insecure-skip-tls-verify: expected true or false, "
                     "found a string");

        write_file(f, "type3", "clusters: {c: 1}\n");
        expect_error(f, "type3", -EBADMSG, "clusters: expected a list, found a mapping");

        write_file(f, "type4", "- a\n- b\n");
        expect_error(f, "type4", -EBADMSG, "expected a mapping at the top, found a list");

        write_file(f, "type5", "contexts:\n- context: {cluster: c}\n");
        expect_error(f, "type5", -EBADMSG, "contexts[0].name: missing or not a string");

        write_file(f, "dupkey", "current-context: a\ncurrent-context: b\n");
        expect_error(f, "dupkey", -EBADMSG, "line 2 column 1: duplicate key \"current-context\"");

        write_file(f, "scheme",
                   "current-context: x\nclusters:\n- name: c\n  cluster: {server: ftp://x}\n"
                   "contexts:\n- name: x\n  context: {cluster: c}\n");
        expect_error(f, "scheme", -EBADMSG,
                     "clusters[0].cluster.server: scheme must be https:// or http://");

        write_file(f, "insecureca",
                   "current-context: x\nclusters:\n- name: c\n  cluster: {server: https://x, "
                   "insecure-skip-tls-verify: true, certificate-authority: ca}\n"
                   "contexts:\n- name: x\n  context: {cluster: c}\n");
        write_file(f, "ca", CA_PEM);
        expect_error(f, "insecureca", -EBADMSG,
                     "clusters[0].cluster.insecure-skip-tls-verify: a certificate authority "
                     "cannot be combined with it");

        writef(f, "certnokey",
               "current-context: x\nclusters:\n- name: c\n  cluster: {server: https://x}\n"
               "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
               "users:\n- name: u\n  user: {client-certificate-data: %s}\n",
               cert);
        expect_error(f, "certnokey", -EBADMSG,
                     "users[0].user.client-key: missing (both a client certificate and a key are "
                     "needed)");

        write_file(f, "exec",
                   "current-context: x\nclusters:\n- name: c\n  cluster: {server: https://x}\n"
                   "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                   "users:\n- name: v\n  user: {token: t}\n"
                   "- name: u\n  user:\n    exec: {command: aws}\n");
        expect_error(f, "exec", -EOPNOTSUPP,
                     "users[1].user.exec: exec credential plugins are not supported");

        write_file(f, "cafile",
                   "current-context: x\nclusters:\n- name: c\n  cluster: {server: https://x, "
                   "certificate-authority: nope.crt}\n"
                   "contexts:\n- name: x\n  context: {cluster: c}\n");
        _cleanup_free_ char *nope = NULL;
        assert_true(asprintf(&nope,
                             "clusters[0].cluster.certificate-authority: %s/nope.crt: No such "
                             "file or directory",
                             f->dir) > 0);
        expect_error(f, "cafile", -ENOENT, nope);

        write_file(f, "tokfile",
                   "current-context: x\nclusters:\n- name: c\n  cluster: {server: https://x}\n"
                   "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                   "users:\n- name: u\n  user: {tokenFile: /nonexistent/token}\n");
        expect_error(f, "tokfile", -ENOENT,
                     "users[0].user.tokenFile: /nonexistent/token: No such file or directory");

        /* A broken entry that is not selected does not matter. */
        write_file(f, "unused",
                   "current-context: x\nclusters:\n- name: c\n  cluster: {server: https://x}\n"
                   "- name: broken\n  cluster: {server: 42}\n"
                   "contexts:\n- name: x\n  context: {cluster: c}\n"
                   "users:\n- name: bad\n  user: {client-key-data: \"!!\"}\n");
        kube_config *c = NULL;
        char *err = NULL;
        assert_int_equal(load(f, "unused", NULL, &c, &err), 0);
        kube_config_free(c);

        /* A missing explicit file. */
        expect_error(f, "does-not-exist", -ENOENT, "No such file or directory");
}

static void test_limits(void **state) {
        fx *f = *state;
        /* Over KUBE_CONFIG_MAX_FILE: refused before parsing. */
        size_t n = KUBE_CONFIG_MAX_FILE + 1;
        char *big = malloc(n + 1);
        assert_non_null(big);
        memset(big, '#', n);
        big[n] = 0;
        write_file(f, "big", big);
        free(big);
        expect_error(f, "big", -E2BIG, "file too large");

        /* Aliases are refused in kubeconfigs (a "billion laughs" needs them). */
        write_file(f, "bomb",
                   "a: &a [x, x, x, x, x, x, x, x, x]\n"
                   "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                   "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                   "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                   "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n");
        expect_error(f, "bomb", -EBADMSG, "line 1 column 4: anchors are not allowed");

        /* Nesting depth. */
        size_t depth = 100;
        char *deep = calloc(1, depth * 2 + 8);
        assert_non_null(deep);
        for (size_t i = 0; i < depth; i++) deep[i] = '[';
        for (size_t i = 0; i < depth; i++) deep[depth + i] = ']';
        write_file(f, "deep", deep);
        free(deep);
        kube_config *c = NULL;
        char *err = NULL;
        assert_int_equal(load(f, "deep", NULL, &c, &err), -E2BIG);
        assert_non_null(strstr(err, "nesting deeper than 32"));
        free(err);

        /* Too many files in the list. */
        write_file(f, "one", "{}\n");
        _cleanup_free_ char *one = path_in(f, "one");
        size_t cap = (KUBE_CONFIG_MAX_FILES + 2) * (strlen(one) + 1) + 1;
        char *list = calloc(1, cap);
        for (unsigned i = 0; i < KUBE_CONFIG_MAX_FILES + 1; i++) {
                if (i) strcat(list, ":");
                strcat(list, one);
        }
        assert_int_equal(kube_config_load_kubeconfig(list, NULL, &c, &err), -E2BIG);
        assert_non_null(strstr(err, "more than 64 kubeconfig files"));
        free(err);
        free(list);

        /* An empty file is an empty config. */
        write_file(f, "empty", "");
        expect_error(f, "empty", -ENOENT, "no context given and current-context is not set");
}

/* In-cluster: root/var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}. */
static void make_sa(fx *f, bool with_token, bool with_ns) {
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "mkdir -p '%s/var/run/secrets/kubernetes.io/serviceaccount'",
                 f->dir);
        assert_int_equal(system(cmd), 0);
        if (with_token)
                write_file(f, "var/run/secrets/kubernetes.io/serviceaccount/token", "sa-token-1");
        write_file(f, "var/run/secrets/kubernetes.io/serviceaccount/ca.crt", CA_PEM);
        if (with_ns)
                write_file(f, "var/run/secrets/kubernetes.io/serviceaccount/namespace",
                           "operators\n");
}

static void test_incluster(void **state) {
        fx *f = *state;
        make_sa(f, true, true);
        kube_config *c = NULL;
        char *err = NULL;

        assert_int_equal(kube_config_load_incluster(f->dir, &c, &err), -ENXIO);
        assert_string_equal(err, "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
                                 "must be set");
        free(err);

        setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
        setenv("KUBERNETES_SERVICE_PORT", "443", 1);
        int r = kube_config_load_incluster(f->dir, &c, &err);
        if (r < 0) fail_msg("%s", err);
        assert_string_equal(kube_config_server(c), "https://10.96.0.1:443");
        assert_string_equal(kube_config_namespace(c), "operators");
        assert_true(kube_config_namespace_explicit(c));
        assert_string_equal(kube_config_source(c), "in-cluster");
        assert_null(kube_config_context(c));
        assert_false(kube_config_insecure(c));
        size_t len;
        const void *p = kube_config_ca(c, &len);
        assert_blob(p, len, CA_PEM);
        const char *tok;
        assert_int_equal(kube_config_token(c, &tok), 0);
        assert_string_equal(tok, "sa-token-1");
        kube_config_free(c);

        setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
        assert_int_equal(kube_config_load_incluster(f->dir, &c, &err), 0);
        assert_string_equal(kube_config_server(c), "https://[fd00::1]:443");
        kube_config_free(c);

        setenv("KUBERNETES_SERVICE_PORT", "https", 1);
        assert_int_equal(kube_config_load_incluster(f->dir, &c, &err), -EBADMSG);
        assert_string_equal(err, "in-cluster: KUBERNETES_SERVICE_PORT: not a port: \"https\"");
        free(err);
        setenv("KUBERNETES_SERVICE_PORT", "443", 1);
        setenv("KUBERNETES_SERVICE_HOST", "evil/path", 1);
        assert_int_equal(kube_config_load_incluster(f->dir, &c, &err), -EBADMSG);
        free(err);
}

static void test_incluster_missing(void **state) {
        fx *f = *state;
        setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
        setenv("KUBERNETES_SERVICE_PORT", "443", 1);
        make_sa(f, false, false);
        kube_config *c = NULL;
        char *err = NULL;
        assert_int_equal(kube_config_load_incluster(f->dir, &c, &err), -ENOENT);
        _cleanup_free_ char *expect = NULL;
        assert_true(asprintf(&expect,
                             "in-cluster: %s/var/run/secrets/kubernetes.io/serviceaccount/token: "
                             "No such file or directory",
                             f->dir) > 0);
        assert_string_equal(err, expect);
        free(err);
        assert_null(c);

        /* An empty token file is refused too. */
        write_file(f, "var/run/secrets/kubernetes.io/serviceaccount/token", "\n");
        assert_int_equal(kube_config_load_incluster(f->dir, &c, &err), -EBADMSG);
        assert_non_null(strstr(err, "empty or not a token"));
        free(err);

        /* Without a namespace file: "default", not explicit. */
        write_file(f, "var/run/secrets/kubernetes.io/serviceaccount/token", "t");
        assert_int_equal(kube_config_load_incluster(f->dir, &c, &err), 0);
        assert_string_equal(kube_config_namespace(c), "default");
        assert_false(kube_config_namespace_explicit(c));
        kube_config_free(c);
}

static void test_token_rotation(void **state) {
        fx *f = *state;
        setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
        setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
        make_sa(f, true, false);
        kube_config *c = NULL;
        char *err = NULL;
        assert_int_equal(kube_config_load_incluster(f->dir, &c, &err), 0);
        const char *tok;
        assert_int_equal(kube_config_token(c, &tok), 0);
        assert_string_equal(tok, "sa-token-1");

        /* Replaced by rename (a new inode), as kubelet's atomic writer does. */
        write_file(f, "var/run/secrets/kubernetes.io/serviceaccount/token.tmp", "sa-token-2");
        _cleanup_free_ char *from = path_in(
                                f, "var/run/secrets/kubernetes.io/serviceaccount/token.tmp"),
                            *to = path_in(f, "var/run/secrets/kubernetes.io/serviceaccount/token");
        assert_int_equal(rename(from, to), 0);
        assert_int_equal(kube_config_token(c, &tok), 0);
        assert_string_equal(tok, "sa-token-2");

        /* Rewritten in place with another size. */
        write_file(f, "var/run/secrets/kubernetes.io/serviceaccount/token", "sa-token-three");
        assert_int_equal(kube_config_token(c, &tok), 0);
        assert_string_equal(tok, "sa-token-three");

        /* The client's copy follows rotations on its own. */
        kube_config *copy = NULL;
        assert_int_equal(kube_config_copy(c, &copy), 0);
        write_file(f, "var/run/secrets/kubernetes.io/serviceaccount/token", "sa-token-4");
        assert_int_equal(kube_config_token(copy, &tok), 0);
        assert_string_equal(tok, "sa-token-4");
        kube_config_free(copy);
        assert_int_equal(kube_config_token(c, &tok), 0);
        assert_string_equal(tok, "sa-token-4");

        /* Gone for a moment (mid-swap): the last good token is kept. */
        assert_int_equal(unlink(to), 0);
        assert_int_equal(kube_config_token(c, &tok), 0);
        assert_string_equal(tok, "sa-token-4");
        write_file(f, "var/run/secrets/kubernetes.io/serviceaccount/token", "sa-token-5");
        assert_int_equal(kube_config_token(c, &tok), 0);
        assert_string_equal(tok, "sa-token-5");
        kube_config_free(c);
}

/*
 * A token over http:// travels in clear text: the config says when the server
 * is plain http and holds whether the owner allowed sending a token anyway
 * (off unless set; kept by a copy, which is what the client uses).
 */
static void test_http_token_policy(void **state) {
        fx *f = *state;
        write_file(f, "kc",
                   "current-context: x\n"
                   "clusters:\n- name: c\n  cluster:\n    server: http://10.0.0.1:8080\n"
                   "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                   "users:\n- name: u\n  user: {token: \"tok-123\"}\n");
        kube_config *c = NULL, *copy = NULL;
        char *err = NULL;
        assert_int_equal(load(f, "kc", NULL, &c, &err), 0);
        assert_true(kube_config_plain_http(c));
        assert_true(kube_config_has_token(c));
        assert_false(kube_config_allow_insecure_http_token(c));
        kube_config_set_allow_insecure_http_token(c, true);
        assert_true(kube_config_allow_insecure_http_token(c));
        assert_int_equal(kube_config_copy(c, &copy), 0);
        assert_true(kube_config_allow_insecure_http_token(copy));
        kube_config_free(copy);
        kube_config_free(c);

        /* https (also when implied) is not plain http; no user, no token. */
        write_file(f, "kc2",
                   "current-context: x\n"
                   "clusters:\n- name: c\n  cluster:\n    server: 127.0.0.1:6443\n"
                   "contexts:\n- name: x\n  context: {cluster: c}\n");
        assert_int_equal(load(f, "kc2", NULL, &c, &err), 0);
        assert_false(kube_config_plain_http(c));
        assert_false(kube_config_has_token(c));
        kube_config_free(c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_inline_data, setup, teardown),
            cmocka_unit_test_setup_teardown(test_relative_files, setup, teardown),
            cmocka_unit_test_setup_teardown(test_token_and_server_forms, setup, teardown),
            cmocka_unit_test_setup_teardown(test_merge, setup, teardown),
            cmocka_unit_test_setup_teardown(test_home_and_default, setup, teardown),
            cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
            cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
            cmocka_unit_test_setup_teardown(test_incluster, setup, teardown),
            cmocka_unit_test_setup_teardown(test_incluster_missing, setup, teardown),
            cmocka_unit_test_setup_teardown(test_token_rotation, setup, teardown),
            cmocka_unit_test_setup_teardown(test_http_token_policy, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
