/* SPDX-License-Identifier: Apache-2.0 */
#include "incluster.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testenv.h"
#include "util/base64.h"
#include "util/macro.h"

#define SA_SUBDIR "/var/run/secrets/kubernetes.io/serviceaccount"
/* A CA bundle or a token is a few KiB; anything larger is not what we asked for. */
#define CRED_MAX        (1024u * 1024)
#define KUBECTL_OUT_MAX (64u * 1024 * 1024)

static double mono(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void trim(char *s) {
        size_t n = strlen(s);
        while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ')) s[--n] = 0;
}

/* Writes data to path atomically (a sibling temporary file renamed over it), mode 0600. */
static int write_file(const char *path, const void *data, size_t len) {
        char *tmp = NULL;
        if (asprintf(&tmp, "%s.tmp.%d", path, (int)getpid()) < 0) return -ENOMEM;
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
                int r = -errno;
                free(tmp);
                return r;
        }
        const char *p = data;
        size_t left = len;
        while (left > 0) {
                ssize_t w = write(fd, p, left);
                if (w < 0) {
                        if (errno == EINTR) continue;
                        int r = -errno;
                        close(fd);
                        unlink(tmp);
                        free(tmp);
                        return r;
                }
                p += w;
                left -= (size_t)w;
        }
        int r = close(fd) < 0 ? -errno : 0;
        if (r == 0 && rename(tmp, path) < 0) r = -errno;
        if (r < 0) unlink(tmp);
        free(tmp);
        return r;
}

static int mkdir_p(const char *path) {
        char *copy = strdup(path);
        if (!copy) return -ENOMEM;
        for (char *s = copy + 1; *s; s++) {
                if (*s != '/') continue;
                *s = 0;
                if (mkdir(copy, 0700) < 0 && errno != EEXIST) {
                        int r = -errno;
                        free(copy);
                        return r;
                }
                *s = '/';
        }
        int r = mkdir(copy, 0700) < 0 && errno != EEXIST ? -errno : 0;
        free(copy);
        return r;
}

static int rm_rf(const char *path) {
        /* Our own mkdtemp directory: a fixed prefix guards against removing anything else. */
        if (!path || strncmp(path, "/tmp/pp-incluster-", 18) != 0 || strstr(path, ".."))
                return -EINVAL;
        char *cmd = NULL;
        if (asprintf(&cmd, "rm -rf '%s'", path) < 0) return -ENOMEM;
        int st = system(cmd);
        free(cmd);
        return st == 0 ? 0 : -EIO;
}

/* A fresh token from the TokenRequest API, into *ret (malloc'd, trimmed). */
static int request_token(const incluster *ic, const char *bound_secret, const char *duration,
                         char **ret) {
        char *out = NULL, bound[512] = "";
        if (bound_secret)
                snprintf(bound, sizeof(bound),
                         " --bound-object-kind=Secret --bound-object-name='%s'", bound_secret);
        int r =
            testenv_kubectl(&out, "create token '%s' -n '%s' --duration='%s'%s",
                            ic->service_account, ic->namespace, duration ? duration : "1h", bound);
        if (r != 0 || !out) {
                fprintf(stderr, "incluster: kubectl create token %s -n %s failed (%d)\n",
                        ic->service_account, ic->namespace, r);
                free(out);
                return r < 0 ? r : -EIO;
        }
        trim(out);
        if (!*out || strlen(out) > CRED_MAX || strchr(out, '\n')) {
                fprintf(stderr, "incluster: kubectl create token printed no single token\n");
                free(out);
                return -EIO;
        }
        *ret = out;
        return 0;
}

/* The CA of the admin kubeconfig (certificate-authority-data), PEM. */
static int kubeconfig_ca(void **ret, size_t *ret_len) {
        char *out = NULL;
        int r =
            testenv_kubectl(&out, "config view --raw --minify -o "
                                  "'jsonpath={.clusters[0].cluster.certificate-authority-data}'");
        if (r != 0 || !out) {
                fprintf(stderr, "incluster: cannot read the CA from the kubeconfig (%d)\n", r);
                free(out);
                return r < 0 ? r : -EIO;
        }
        trim(out);
        r = base64_decode(out, strlen(out), BASE64_IGNORE_SPACE, CRED_MAX, ret, ret_len);
        free(out);
        if (r < 0) fprintf(stderr, "incluster: the kubeconfig's CA is not base64 (%d)\n", r);
        return r;
}

static int write_token(incluster *ic, const char *token) {
        char *path = NULL;
        if (asprintf(&path, "%s/token", ic->sa_dir) < 0) return -ENOMEM;
        int r = write_file(path, token, strlen(token));
        free(path);
        return r;
}

static int layout(incluster *ic, const char *bound_secret, const char *duration) {
        int r = mkdir_p(ic->sa_dir);
        if (r < 0) return r;

        _cleanup_free_ char *token = NULL;
        if ((r = request_token(ic, bound_secret, duration, &token)) < 0) return r;
        r = write_token(ic, token);
        explicit_bzero(token, strlen(token));
        if (r < 0) return r;

        void *ca = NULL;
        size_t ca_len = 0;
        if ((r = kubeconfig_ca(&ca, &ca_len)) < 0) return r;
        _cleanup_free_ char *ca_path = NULL, *ns_path = NULL, *kc = NULL;
        if (asprintf(&ca_path, "%s/ca.crt", ic->sa_dir) < 0 ||
            asprintf(&ns_path, "%s/namespace", ic->sa_dir) < 0) {
                free(ca);
                return -ENOMEM;
        }
        r = write_file(ca_path, ca, ca_len);
        free(ca);
        if (r < 0) return r;
        if ((r = write_file(ns_path, ic->namespace, strlen(ic->namespace))) < 0) return r;

        /* tokenFile: kubectl re-reads it, so a rotated token is used there too. */
        if (asprintf(&kc, "%s/token", ic->sa_dir) < 0) return -ENOMEM;
        return incluster_write_kubeconfig(ic, kc, ic->kubeconfig);
}

int incluster_write_kubeconfig(const incluster *ic, const char *token_file, const char *dst) {
        _cleanup_free_ char *kc = NULL;
        /*
         * A token file, not an inline token: with both, client-go uses the file, so a
         * --token flag could not override it either.
         */
        if (asprintf(&kc,
                     "apiVersion: v1\nkind: Config\n"
                     "clusters:\n- name: c\n  cluster:\n    server: %s\n"
                     "    certificate-authority: %s/ca.crt\n"
                     "users:\n- name: u\n  user:\n    tokenFile: %s\n"
                     "contexts:\n- name: x\n  context: {cluster: c, user: u, namespace: %s}\n"
                     "current-context: x\n",
                     testenv_server(), ic->sa_dir, token_file, ic->namespace) < 0)
                return -ENOMEM;
        return write_file(dst, kc, strlen(kc));
}

int incluster_new(const char *ns, const char *sa, const char *bound_secret, const char *duration,
                  incluster **ret) {
        const char *server = testenv_server();
        if (!server) return -ENOENT;
        const char *colon = strrchr(server, ':');
        int port = colon ? atoi(colon + 1) : 0;
        if (port <= 0 || port > 65535) return -EINVAL;

        incluster *ic = calloc(1, sizeof(*ic));
        if (!ic) return -ENOMEM;
        ic->apiserver_port = port;
        char tmpl[] = "/tmp/pp-incluster-XXXXXX";
        if (!mkdtemp(tmpl)) {
                int r = -errno;
                free(ic);
                return r;
        }
        int r = -ENOMEM;
        if (!(ic->root = strdup(tmpl)) || asprintf(&ic->sa_dir, "%s" SA_SUBDIR, tmpl) < 0 ||
            !(ic->namespace = strdup(ns)) || !(ic->service_account = strdup(sa)) ||
            asprintf(&ic->user, "system:serviceaccount:%s:%s", ns, sa) < 0 ||
            asprintf(&ic->kubeconfig, "%s/kubeconfig", tmpl) < 0) {
                if (!ic->root) rmdir(tmpl);
                goto fail;
        }
        if ((r = layout(ic, bound_secret, duration)) < 0) goto fail;
        *ret = ic;
        return 0;
fail:
        incluster_free(ic);
        return r;
}

incluster *incluster_free(incluster *ic) {
        if (!ic) return NULL;
        if (ic->root) rm_rf(ic->root);
        free(ic->root);
        free(ic->sa_dir);
        free(ic->namespace);
        free(ic->service_account);
        free(ic->user);
        free(ic->kubeconfig);
        free(ic);
        return NULL;
}

int incluster_rotate_token(incluster *ic, const char *bound_secret, const char *duration) {
        _cleanup_free_ char *token = NULL;
        int r = request_token(ic, bound_secret, duration, &token);
        if (r < 0) return r;
        r = write_token(ic, token);
        explicit_bzero(token, strlen(token));
        return r;
}

static int kubectl_v(const char *kubeconfig, char **out, const char *fmt, va_list ap) {
        const char *bindir = testenv_bindir();
        if (!bindir) return -ENOENT;
        char *args = NULL;
        int n = vasprintf(&args, fmt, ap);
        if (n < 0) return -ENOMEM;
        char *cmd = NULL;
        n = asprintf(&cmd, "'%s/kubectl' --kubeconfig='%s' %s", bindir, kubeconfig, args);
        free(args);
        if (n < 0) return -ENOMEM;
        FILE *f = popen(cmd, "r");
        free(cmd);
        if (!f) return -errno;
        char *buf = NULL;
        size_t len = 0, cap = 0;
        int r = 0;
        for (;;) {
                if (len + 4096 + 1 > cap) {
                        if (cap >= KUBECTL_OUT_MAX) {
                                r = -EFBIG;
                                break;
                        }
                        size_t nc = cap ? cap * 2 : 8192;
                        char *nb = realloc(buf, nc);
                        if (!nb) {
                                r = -ENOMEM;
                                break;
                        }
                        buf = nb;
                        cap = nc;
                }
                size_t got = fread(buf + len, 1, cap - len - 1, f);
                len += got;
                if (got == 0) break;
        }
        if (buf) buf[len] = 0;
        int st = pclose(f);
        if (r == 0) r = st < 0 ? -errno : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r >= 0 && out)
                *out = buf ? buf : strdup("");
        else
                free(buf);
        return r;
}

int incluster_kubectl(const incluster *ic, char **out, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = kubectl_v(ic->kubeconfig, out, fmt, ap);
        va_end(ap);
        return r;
}

int incluster_kubectl_kc(const char *kubeconfig, char **out, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = kubectl_v(kubeconfig, out, fmt, ap);
        va_end(ap);
        return r;
}

char *incluster_log_path(const char *name) {
        const char *build = getenv("PULLPOLICY_BUILD");
        char *dir = NULL, *path = NULL;
        if (asprintf(&dir, "%s/test-logs", build && *build ? build : "build") < 0) return NULL;
        mkdir(dir, 0755);
        if (asprintf(&path, "%s/%s.log", dir, name) < 0) path = NULL;
        free(dir);
        return path;
}

int incluster_start_controller(tproc *p, const incluster *ic, const char *name,
                               const incluster_controller_opts *opts, const char *const *extra,
                               double timeout_s) {
        static const incluster_controller_opts defaults = {0};
        if (!opts) opts = &defaults;
        const char *build = getenv("PULLPOLICY_BUILD");
        int health = tproc_free_port(), metrics = tproc_free_port();
        if (health < 0 || metrics < 0) return -EADDRNOTAVAIL;

        char bin[4096], port[64], root[4200], pod[300], hp[80], mp[80], lf[64], ll[64];
        snprintf(bin, sizeof(bin), "%s/pullpolicy-controller", build && *build ? build : "build");
        snprintf(port, sizeof(port), "KUBERNETES_SERVICE_PORT=%d",
                 opts->service_port > 0 ? opts->service_port : ic->apiserver_port);
        snprintf(root, sizeof(root), "PULLPOLICY_SERVICEACCOUNT_ROOT=%s", ic->root);
        snprintf(pod, sizeof(pod), "POD_NAME=%s", opts->pod_name ? opts->pod_name : "");
        snprintf(hp, sizeof(hp), "--health-probe-bind-address=127.0.0.1:%d", health);
        snprintf(mp, sizeof(mp), "--metrics-bind-address=127.0.0.1:%d", metrics);
        snprintf(lf, sizeof(lf), "--log-format=%s", opts->log_format ? opts->log_format : "json");
        snprintf(ll, sizeof(ll), "--log-level=%s", opts->log_level ? opts->log_level : "debug");

        /*
         * env(1) sets the pod's environment and execs the controller in the same process:
         * no kubeconfig anywhere (flag, $KUBECONFIG or its PULLPOLICY_ twin), and no
         * POD_NAMESPACE, so the namespace comes from the mounted file as in a real pod.
         */
        char *argv[96];
        size_t n = 0;
        argv[n++] = (char *)"env";
        static const char *const unset[] = {"KUBECONFIG",           "PULLPOLICY_KUBECONFIG",
                                            "POD_NAMESPACE",        "POD_NAME",
                                            "PULLPOLICY_NAMESPACE", "PULLPOLICY_LEADER_ELECT"};
        for (size_t i = 0; i < sizeof(unset) / sizeof(unset[0]); i++) {
                argv[n++] = (char *)"-u";
                argv[n++] = (char *)unset[i];
        }
        argv[n++] = (char *)"KUBERNETES_SERVICE_HOST=127.0.0.1";
        argv[n++] = port;
        argv[n++] = root;
        if (opts->pod_name) argv[n++] = pod;
        char *wrapper = NULL;
        const char *w = getenv("PULLPOLICY_CONTROLLER_WRAPPER");
        if (w && *w) {
                wrapper = strdup(w);
                if (!wrapper) return -ENOMEM;
                for (char *tok = strtok(wrapper, " "); tok && n < 48; tok = strtok(NULL, " "))
                        argv[n++] = tok;
        }
        argv[n++] = bin;
        argv[n++] = hp;
        argv[n++] = mp;
        argv[n++] = lf;
        argv[n++] = ll;
        for (size_t i = 0; extra && extra[i] && n < 94; i++) argv[n++] = (char *)extra[i];
        argv[n] = NULL;

        char *log = incluster_log_path(name);
        if (!log) {
                free(wrapper);
                return -ENOMEM;
        }
        FILE *f = fopen(log, "a");
        if (f) {
                fprintf(f, "--- starting controller (in-cluster as %s, port %d):", ic->user,
                        opts->service_port > 0 ? opts->service_port : ic->apiserver_port);
                for (size_t i = 0; i < n; i++) fprintf(f, " %s", argv[i]);
                fprintf(f, "\n");
                fclose(f);
        }
        int r = tproc_spawn(p, log, argv);
        free(wrapper);
        if (r < 0) {
                free(log);
                return r;
        }
        p->health_port = health;
        p->metrics_port = metrics;
        if (!opts->wait_ready) {
                free(log);
                return 0;
        }

        double deadline = mono() + timeout_s;
        while (mono() < deadline) {
                long code = 0;
                if (tproc_http_get(health, "/readyz", &code, NULL) == 0 && code == 200) {
                        free(log);
                        return 0;
                }
                if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
                        fprintf(stderr, "controller %s exited early; see %s\n", name, log);
                        p->pid = 0;
                        free(p->log_path);
                        p->log_path = NULL;
                        free(log);
                        return -ECHILD;
                }
                usleep(50000);
        }
        fprintf(stderr, "controller %s not ready after %.0f s; see %s\n", name, timeout_s, log);
        free(log);
        return -ETIMEDOUT;
}
