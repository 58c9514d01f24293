/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test-side access to the control plane of hack/testenv.sh. Everything goes through the
 * files the script writes into $TESTENV_DIR and through kubectl, so the tests do not depend
 * on the C client they are testing.
 */
#include "testenv.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DNS1123_LABEL_MAX 63

static char *dir_path;
static char *kubeconfig_path;
static char *kubeconfig_files_path;
static char *server_url;
static char *bindir_path;

const char *testenv_dir(void) {
        if (dir_path) return dir_path;
        const char *d = getenv("TESTENV_DIR");
        if (!d || !*d) {
                fprintf(stderr, "testenv: TESTENV_DIR is not set; start a control plane with "
                                "`hack/testenv.sh start DIR` and export TESTENV_DIR=DIR\n");
                return NULL;
        }
        dir_path = realpath(d, NULL);
        if (!dir_path) {
                fprintf(stderr, "testenv: TESTENV_DIR=%s: %s\n", d, strerror(errno));
                return NULL;
        }
        return dir_path;
}

/* DIR/<name> as a cached malloc'd path. */
static const char *dir_file(char **cache, const char *name) {
        if (*cache != NULL) return (const char *)*cache;
        const char *d = testenv_dir();
        if (!d) return NULL;
        if (asprintf(cache, "%s/%s", d, name) < 0) *cache = NULL;
        return *cache;
}

const char *testenv_kubeconfig(void) {
        return dir_file(&kubeconfig_path, "kubeconfig");
}

const char *testenv_kubeconfig_files(void) {
        return dir_file(&kubeconfig_files_path, "kubeconfig-files");
}

/* First line of DIR/<name>, cached; NULL (with a message) when missing. */
static const char *dir_line(char **cache, const char *name) {
        if (*cache != NULL) return (const char *)*cache;
        const char *d = testenv_dir();
        if (!d) return NULL;
        char *path = NULL;
        if (asprintf(&path, "%s/%s", d, name) < 0) return NULL;
        FILE *f = fopen(path, "re");
        if (!f) {
                fprintf(stderr, "testenv: %s: %s (is the test environment started?)\n", path,
                        strerror(errno));
                free(path);
                return NULL;
        }
        char *line = NULL;
        size_t cap = 0;
        ssize_t n = getline(&line, &cap, f);
        fclose(f);
        if (n <= 0) {
                free(line);
                fprintf(stderr, "testenv: %s is empty\n", path);
                free(path);
                return NULL;
        }
        free(path);
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
        *cache = line;
        return line;
}

const char *testenv_server(void) {
        return dir_line(&server_url, "server");
}

const char *testenv_bindir(void) {
        return dir_line(&bindir_path, "bindir");
}

/* Appends s to the shell command being built, single-quoted. */
static int sh_quote(char **cmd, const char *s) {
        size_t n = strlen(*cmd), extra = 2;
        for (const char *p = s; *p; p++) extra += *p == '\'' ? 4 : 1;
        char *r = realloc(*cmd, n + extra + 1);
        if (!r) return -ENOMEM;
        char *w = r + n;
        *w++ = '\'';
        for (const char *p = s; *p; p++) {
                if (*p == '\'') {
                        memcpy(w, "'\\''", 4);
                        w += 4;
                } else {
                        *w++ = *p;
                }
        }
        *w++ = '\'';
        *w = '\0';
        *cmd = r;
        return 0;
}

static int append(char **cmd, const char *s) {
        size_t n = strlen(*cmd), m = strlen(s);
        char *r = realloc(*cmd, n + m + 1);
        if (!r) return -ENOMEM;
        memcpy(r + n, s, m + 1);
        *cmd = r;
        return 0;
}

/*
 * Runs `sh -c cmd` with `input` on its stdin and, when out is not NULL, its stdout captured
 * into *out (discarded otherwise). Returns the exit status or a negative errno.
 */
static int run_sh(const char *cmd, const char *input, char **out) {
        int in[2] = {-1, -1}, outp[2] = {-1, -1};
        char *buf = NULL;
        size_t len = 0, cap = 0;
        int r;

        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(outp, O_CLOEXEC) < 0) {
                r = -errno;
                goto out_close;
        }

        /* A command that exits without reading all its input must not kill us with SIGPIPE. */
        struct sigaction ign = {.sa_handler = SIG_IGN}, old;
        sigemptyset(&ign.sa_mask);
        sigaction(SIGPIPE, &ign, &old);

        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid < 0) {
                r = -errno;
                sigaction(SIGPIPE, &old, NULL);
                goto out_close;
        }
        if (pid == 0) {
                signal(SIGPIPE, SIG_DFL);
                int devnull = out ? -1 : open("/dev/null", O_WRONLY);
                if (dup2(in[0], STDIN_FILENO) < 0) _exit(127);
                if (dup2(out ? outp[1] : devnull, STDOUT_FILENO) < 0) _exit(127);
                execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
                _exit(127);
        }
        close(in[0]);
        close(outp[1]);
        in[0] = outp[1] = -1;

        const char *ip = input ? input : "";
        size_t ileft = strlen(ip);
        if (ileft == 0) {
                close(in[1]);
                in[1] = -1;
        } else {
                fcntl(in[1], F_SETFL, O_NONBLOCK);
        }

        r = 0;
        while (outp[0] >= 0) {
                struct pollfd p[2];
                nfds_t n = 0;
                p[n++] = (struct pollfd){.fd = outp[0], .events = POLLIN};
                if (in[1] >= 0) p[n++] = (struct pollfd){.fd = in[1], .events = POLLOUT};
                if (poll(p, n, -1) < 0) {
                        if (errno == EINTR) continue;
                        r = -errno;
                        break;
                }
                if (n > 1 && p[1].revents) {
                        ssize_t w = write(in[1], ip, ileft);
                        if (w > 0) {
                                ip += w;
                                ileft -= (size_t)w;
                        }
                        if ((w < 0 && errno != EAGAIN && errno != EINTR) || ileft == 0) {
                                /* EPIPE: the command stopped reading; its status tells. */
                                close(in[1]);
                                in[1] = -1;
                        }
                }
                if (p[0].revents) {
                        if (len > TESTENV_OUTPUT_MAX) {
                                r = -EFBIG;
                                break;
                        }
                        if (cap - len < 65536) {
                                size_t ncap = cap ? cap * 2 : 65536;
                                char *nb = realloc(buf, ncap + 1);
                                if (!nb) {
                                        r = -ENOMEM;
                                        break;
                                }
                                buf = nb;
                                cap = ncap;
                        }
                        ssize_t rd = read(outp[0], buf + len, cap - len);
                        if (rd > 0) {
                                len += (size_t)rd;
                        } else if (rd == 0 || (errno != EINTR && errno != EAGAIN)) {
                                close(outp[0]);
                                outp[0] = -1;
                        }
                }
        }
        /* On an error above, closing our ends makes the child see EOF/EPIPE and finish. */
        if (in[1] >= 0) close(in[1]);
        if (outp[0] >= 0) close(outp[0]);
        in[1] = outp[0] = -1;

        int status;
        while (waitpid(pid, &status, 0) < 0) {
                if (errno != EINTR) {
                        if (r == 0) r = -errno;
                        break;
                }
        }
        sigaction(SIGPIPE, &old, NULL);
        if (r < 0) goto out_close;

        if (WIFEXITED(status))
                r = WEXITSTATUS(status);
        else if (WIFSIGNALED(status))
                r = 128 + WTERMSIG(status);
        else
                r = -ECHILD;

        if (out) {
                if (!buf) {
                        buf = malloc(1);
                        if (!buf) {
                                r = -ENOMEM;
                                goto out_close;
                        }
                }
                buf[len] = '\0';
                *out = buf;
                buf = NULL;
        }

out_close:
        for (int i = 0; i < 2; i++) {
                if (in[i] >= 0) close(in[i]);
                if (outp[i] >= 0) close(outp[i]);
        }
        free(buf);
        return r;
}

static int kubectl_v(const char *input, char **out, const char *fmt, va_list ap) {
        const char *bindir = testenv_bindir(), *kc = testenv_kubeconfig();
        if (!bindir || !kc) return -ENOENT;

        char *args = NULL;
        if (vasprintf(&args, fmt, ap) < 0) return -ENOMEM;

        char *cmd = strdup("");
        char *kubectl = NULL, *kcflag = NULL;
        int r = -ENOMEM;
        if (!cmd || asprintf(&kubectl, "%s/kubectl", bindir) < 0) goto out;
        if (asprintf(&kcflag, "--kubeconfig=%s", kc) < 0) {
                kcflag = NULL;
                goto out;
        }
        if (sh_quote(&cmd, kubectl) < 0 || append(&cmd, " ") < 0 || sh_quote(&cmd, kcflag) < 0 ||
            append(&cmd, " ") < 0 || append(&cmd, args) < 0)
                goto out;
        r = run_sh(cmd, input, out);
out:
        free(args);
        free(cmd);
        free(kubectl);
        free(kcflag);
        return r;
}

int testenv_kubectl(char **out, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = kubectl_v(NULL, out, fmt, ap);
        va_end(ap);
        return r;
}

int testenv_kubectl_input(const char *input, char **out, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = kubectl_v(input, out, fmt, ap);
        va_end(ap);
        return r;
}

int testenv_kubectl_apply(const char *yaml) {
        return testenv_kubectl_input(yaml, NULL, "apply -f -");
}

static int testenv_script(const char *action) {
        const char *d = testenv_dir();
        if (!d) return -ENOENT;

        const char *root = getenv("PULLPOLICY_ROOT");
        char cwd[PATH_MAX];
        if (!root || !*root) {
                if (!getcwd(cwd, sizeof(cwd))) return -errno;
                root = cwd;
        }
        char *script = NULL;
        if (asprintf(&script, "%s/hack/testenv.sh", root) < 0) return -ENOMEM;
        if (access(script, R_OK) < 0) {
                int e = errno;
                fprintf(stderr, "testenv: %s: %s (set PULLPOLICY_ROOT to the repository)\n", script,
                        strerror(e));
                free(script);
                return -e;
        }

        char *cmd = strdup("bash ");
        int r = -ENOMEM;
        if (!cmd || sh_quote(&cmd, script) < 0 || append(&cmd, " ") < 0 ||
            append(&cmd, action) < 0 || append(&cmd, " ") < 0 || sh_quote(&cmd, d) < 0 ||
            append(&cmd, " >&2") < 0)
                goto out;
        r = run_sh(cmd, NULL, NULL);
out:
        free(cmd);
        free(script);
        return r;
}

int testenv_stop_apiserver(void) {
        return testenv_script("stop-apiserver");
}

int testenv_start_apiserver(void) {
        return testenv_script("start-apiserver");
}

int testenv_restart_apiserver(void) {
        return testenv_script("restart-apiserver");
}

int testenv_group_setup(void **state) {
        (void)state;
        if (!testenv_dir() || !testenv_kubeconfig() || !testenv_bindir() || !testenv_server())
                return -1;
        if (access(testenv_kubeconfig(), R_OK) < 0) {
                fprintf(stderr, "testenv: %s: %s\n", testenv_kubeconfig(), strerror(errno));
                return -1;
        }
        char *out = NULL;
        int r = testenv_kubectl(&out, "get --raw /readyz");
        bool ok = r == 0 && out && strncmp(out, "ok", 2) == 0;
        free(out);
        if (!ok) {
                fprintf(stderr,
                        "testenv: the apiserver of %s is not ready (kubectl: %d); is it "
                        "running? (hack/testenv.sh status %s)\n",
                        testenv_dir(), r, testenv_dir());
                return -1;
        }
        return 0;
}

char *testenv_unique_name(const char *prefix) {
        static unsigned counter;
        static char salt[4];
        if (!salt[0]) {
                /* The PID alone repeats across runs against a long-lived control plane. */
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                unsigned long v = (unsigned long)ts.tv_sec * 1000003UL ^ (unsigned long)ts.tv_nsec;
                static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
                for (int i = 0; i < 3; i++) {
                        salt[i] = digits[v % 36];
                        v /= 36;
                }
        }

        char suffix[48];
        int sl = snprintf(suffix, sizeof(suffix), "-%ld-%s%u", (long)getpid(), salt, ++counter);
        if (sl < 0 || (size_t)sl >= sizeof(suffix)) return NULL;

        char p[DNS1123_LABEL_MAX + 1];
        size_t n = 0, maxp = DNS1123_LABEL_MAX - (size_t)sl;
        for (const char *s = prefix ? prefix : ""; *s && n < maxp; s++) {
                unsigned char c = (unsigned char)*s;
                char w = isalnum(c) && c < 0x80 ? (char)tolower(c) : '-';
                /* A label starts with an alphanumeric. */
                if (n == 0 && w == '-') continue;
                p[n++] = w;
        }
        if (n == 0) p[n++] = 't';
        p[n] = '\0';

        char *r = NULL;
        if (asprintf(&r, "%s%s", p, suffix) < 0) return NULL;
        return r;
}

static double now_monotonic(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int testenv_wait_until(int (*cond)(void *ud), void *ud, double timeout_s) {
        double deadline = now_monotonic() + timeout_s;
        for (;;) {
                int r = cond(ud);
                if (r > 0) return 0;
                if (r < 0) return r;
                if (now_monotonic() >= deadline) return -ETIMEDOUT;
                struct timespec d = {.tv_sec = 0, .tv_nsec = 50 * 1000 * 1000};
                while (nanosleep(&d, &d) < 0 && errno == EINTR) {
                }
        }
}

/* --- Prometheus text exposition ----------------------------------------------------------- */

#define LABELS_MAX 64

typedef struct {
        const char *k; /* not NUL-terminated */
        size_t klen;
        char *v; /* unescaped, malloc'd */
} label;

static void labels_clear(label *l, size_t n) {
        for (size_t i = 0; i < n; i++) free(l[i].v);
}

static bool is_name_char(char c, bool first) {
        return isalpha((unsigned char)c) || c == '_' || c == ':' ||
               (!first && isdigit((unsigned char)c));
}

/*
 * Parses `k="v",k2="v2"` starting at *pp up to a closing '}' (when braced) or the end of
 * the string. Advances *pp past what it parsed. Returns the number of labels or -EINVAL.
 */
static int parse_labels(const char **pp, bool braced, label *out, size_t max) {
        const char *p = *pp;
        size_t n = 0;
        for (;;) {
                while (*p == ' ' || *p == '\t' || *p == ',') p++;
                if (braced && *p == '}') {
                        p++;
                        break;
                }
                if (!braced && *p == '\0') break;
                if (!is_name_char(*p, true)) goto fail;
                const char *k = p;
                while (is_name_char(*p, false)) p++;
                size_t klen = (size_t)(p - k);
                while (*p == ' ') p++;
                if (*p++ != '=') goto fail;
                while (*p == ' ') p++;
                if (*p++ != '"') goto fail;
                size_t vcap = strlen(p) + 1;
                char *v = malloc(vcap), *w = v;
                if (!v) {
                        labels_clear(out, n);
                        return -ENOMEM;
                }
                while (*p && *p != '"') {
                        if (*p == '\\' && p[1]) {
                                p++;
                                *w++ = *p == 'n' ? '\n' : *p;
                                p++;
                        } else {
                                *w++ = *p++;
                        }
                }
                *w = '\0';
                if (*p++ != '"' || n == max) {
                        free(v);
                        goto fail;
                }
                out[n++] = (label){.k = k, .klen = klen, .v = v};
        }
        *pp = p;
        return (int)n;
fail:
        labels_clear(out, n);
        return -EINVAL;
}

static bool labels_contain(const label *have, size_t nh, const label *want, size_t nw) {
        for (size_t i = 0; i < nw; i++) {
                bool found = false;
                for (size_t j = 0; j < nh && !found; j++)
                        found = have[j].klen == want[i].klen &&
                                memcmp(have[j].k, want[i].k, want[i].klen) == 0 &&
                                strcmp(have[j].v, want[i].v) == 0;
                if (!found) return false;
        }
        return true;
}

int testenv_metric_sum(const char *exposition, const char *name, const char *label_filter,
                       double *ret) {
        if (!exposition || !name || !*name || !ret) return -EINVAL;

        label want[LABELS_MAX];
        int nw = 0;
        if (label_filter) {
                const char *f = label_filter;
                nw = parse_labels(&f, false, want, LABELS_MAX);
                if (nw < 0) return nw;
        }

        size_t namelen = strlen(name);
        double sum = 0;
        int count = 0, r = 0;
        for (const char *line = exposition; *line;) {
                const char *eol = strchr(line, '\n');
                size_t linelen = eol ? (size_t)(eol - line) : strlen(line);
                const char *next = eol ? eol + 1 : line + linelen;

                if (linelen > namelen && strncmp(line, name, namelen) == 0 &&
                    (line[namelen] == '{' || line[namelen] == ' ')) {
                        /* A copy so that parsing stops at the end of the line. */
                        char *l = strndup(line, linelen);
                        if (!l) {
                                r = -ENOMEM;
                                break;
                        }
                        const char *p = l + namelen;
                        label have[LABELS_MAX];
                        int nh = 0;
                        if (*p == '{') {
                                p++;
                                nh = parse_labels(&p, true, have, LABELS_MAX);
                        }
                        if (nh >= 0) {
                                char *end;
                                errno = 0;
                                double v = strtod(p, &end);
                                if (end != p && errno != ERANGE &&
                                    labels_contain(have, (size_t)nh, want, (size_t)nw)) {
                                        sum += v;
                                        count++;
                                }
                                labels_clear(have, (size_t)nh);
                        }
                        free(l);
                }
                line = next;
        }
        labels_clear(want, (size_t)nw);
        if (r < 0) return r;
        *ret = sum;
        return count;
}

int testenv_apiserver_metric(const char *name, const char *label_filter, double *ret) {
        char *out = NULL;
        int r = testenv_kubectl(&out, "get --raw /metrics");
        if (r < 0) return r;
        if (r != 0) {
                fprintf(stderr, "testenv: kubectl get --raw /metrics exited with %d\n", r);
                free(out);
                return -EIO;
        }
        r = testenv_metric_sum(out, name, label_filter, ret);
        free(out);
        return r;
}

/* ---- etcd compaction ------------------------------------------------------------- */

static int etcd_port(void) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/ports", testenv_dir());
        FILE *f = fopen(path, "r");
        if (!f) return -errno;
        char line[128];
        int port = -ENOENT;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "ETCD_PORT=%d", &port) == 1) break;
        fclose(f);
        return port;
}

/* POSTs body to etcd's JSON gateway; the answer's header.revision, or -errno. */
static long long etcd_post(int port, const char *what, const char *body) {
        char cmd[512];
        snprintf(cmd, sizeof(cmd),
                 "curl -sf -X POST http://127.0.0.1:%d/v3/kv/%s -d '%s' | "
                 "sed -n 's/.*\"revision\":\"\\([0-9]*\\)\".*/\\1/p'",
                 port, what, body);
        FILE *p = popen(cmd, "r");
        if (!p) return -errno;
        long long rev = -EIO;
        if (fscanf(p, "%lld", &rev) != 1) rev = -EIO;
        pclose(p);
        return rev;
}

int testenv_compact_etcd(void) {
        int port = etcd_port();
        if (port < 0) return port;
        long long rev = etcd_post(port, "range", "{\"key\":\"AA==\"}");
        if (rev < 0) return (int)rev;
        char body[128];
        snprintf(body, sizeof(body), "{\"revision\":\"%lld\",\"physical\":true}", rev);
        long long r = etcd_post(port, "compaction", body);
        return r < 0 ? (int)r : 0;
}
