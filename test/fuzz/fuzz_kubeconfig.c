/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube_config_load_kubeconfig() on arbitrary files: YAML via libyaml (anchors,
 * aliases, deep nesting, huge scalars), base64 "*-data" fields, file
 * references. The input is written to a file in a private temporary directory
 * (the loader reads files; it has no memory API), loaded with the
 * current-context and again with the context "fuzz", and every accessor of a
 * loaded config is checked against the header's promises.
 *
 * A kubeconfig may name other files (certificate-authority, tokenFile, ...),
 * so an input can make the loader read any file; hack/fuzz.sh runs the
 * harness in its own session with stdin from /dev/null so that /dev/tty and
 * /dev/stdin cannot block it, and with a per-input timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "kube/config.h"

static char kc_dir[64];
static char kc_path[96];

static void kc_cleanup(void) {
        if (!kc_dir[0]) return;
        unlink(kc_path);
        rmdir(kc_dir);
        kc_dir[0] = 0;
}

static void kc_init(void) {
        if (kc_dir[0]) return;
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(kc_dir, sizeof(kc_dir), "%s/fuzz-kubeconfig-XXXXXX", base);
        if (!mkdtemp(kc_dir)) abort();
        snprintf(kc_path, sizeof(kc_path), "%s/config", kc_dir);
        atexit(kc_cleanup);
}

static void kc_write(const uint8_t *data, size_t size) {
        int fd = open(kc_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) abort();
        size_t off = 0;
        while (off < size) {
                ssize_t n = write(fd, data + off, size - off);
                if (n < 0 && errno == EINTR) continue;
                if (n <= 0) abort();
                off += (size_t)n;
        }
        if (close(fd) < 0) abort();
}

static void kc_check_blob(const void *p, size_t len) {
        FUZZ_CHECK((p == NULL) == (len == 0));
        FUZZ_CHECK(len <= KUBE_CONFIG_MAX_CRED);
}

static void kc_check_config(kube_config *c, const char *context) {
        const char *server = kube_config_server(c);
        FUZZ_CHECK(server && *server);
        FUZZ_CHECK(server[strlen(server) - 1] != '/');
        FUZZ_CHECK(kube_config_namespace(c) != NULL);
        if (!kube_config_namespace_explicit(c))
                FUZZ_CHECK(strcmp(kube_config_namespace(c), "default") == 0);
        FUZZ_CHECK(kube_config_source(c) != NULL);
        FUZZ_CHECK(kube_config_context(c) != NULL);
        if (context) FUZZ_CHECK(strcmp(kube_config_context(c), context) == 0);
        (void)kube_config_insecure(c);
        (void)kube_config_tls_server_name(c);
        (void)kube_config_proxy_url(c);

        size_t ca_len, cert_len, key_len;
        const void *ca = kube_config_ca(c, &ca_len);
        const void *cert = kube_config_client_cert(c, &cert_len);
        const void *key = kube_config_client_key(c, &key_len);
        kc_check_blob(ca, ca_len);
        kc_check_blob(cert, cert_len);
        kc_check_blob(key, key_len);

        const char *tok = NULL;
        int r = kube_config_token(c, &tok);
        FUZZ_CHECK(r <= 0);

        /* A copy must say the same. */
        kube_config *d = NULL;
        r = kube_config_copy(c, &d);
        FUZZ_CHECK(r == 0 || r == -ENOMEM);
        if (r == 0) {
                FUZZ_CHECK(strcmp(kube_config_server(d), server) == 0);
                FUZZ_CHECK(strcmp(kube_config_namespace(d), kube_config_namespace(c)) == 0);
                FUZZ_CHECK(kube_config_insecure(d) == kube_config_insecure(c));
                size_t n;
                const void *p = kube_config_ca(d, &n);
                FUZZ_CHECK(n == ca_len && (n == 0 || memcmp(p, ca, n) == 0));
                p = kube_config_client_cert(d, &n);
                FUZZ_CHECK(n == cert_len && (n == 0 || memcmp(p, cert, n) == 0));
                p = kube_config_client_key(d, &n);
                FUZZ_CHECK(n == key_len && (n == 0 || memcmp(p, key, n) == 0));
                kube_config_free(d);
        }
}

static void kc_load(const char *context) {
        kube_config *c = NULL;
        char *err = NULL;
        int r = kube_config_load_kubeconfig(kc_path, context, &c, &err);
        if (r == 0) {
                FUZZ_CHECK(c != NULL);
                kc_check_config(c, context);
                FUZZ_CHECK(kube_config_free(c) == NULL);
        } else {
                /* a negative errno: the documented ones, or open/read's for a named file */
                FUZZ_CHECK(r < 0);
                FUZZ_CHECK(c == NULL);
                /* Every failure but ENOMEM comes with its one-line message. */
                if (r != -ENOMEM) {
                        FUZZ_CHECK(err != NULL);
                        FUZZ_CHECK(strchr(err, '\n') == NULL);
                }
        }
        free(err);
}

int fuzz_kubeconfig_one(const uint8_t *data, size_t size) {
        kc_init();
        kc_write(data, size);
        kc_load(NULL);
        if (memmem(data, size, "fuzz", 4)) kc_load("fuzz");
        return 0;
}

#ifdef FUZZ_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        return fuzz_kubeconfig_one(data, size);
}
#endif
