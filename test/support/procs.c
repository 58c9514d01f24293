/* SPDX-License-Identifier: Apache-2.0 */
#include "procs.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testenv.h"

static double mono(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int tproc_free_port(void) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) return -errno;
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
            getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        close(fd);
        return ntohs(a.sin_port);
}

int tproc_spawn(tproc *p, const char *log_path, char *const argv[]) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0) return -errno;
        pid_t pid = fork();
        if (pid < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        if (pid == 0) {
                dup2(fd, STDOUT_FILENO);
                dup2(fd, STDERR_FILENO);
                int devnull = open("/dev/null", O_RDONLY);
                if (devnull >= 0) dup2(devnull, STDIN_FILENO);
                /* Its own process group, so that stopping it stops a wrapper's children too. */
                setpgid(0, 0);
                execvp(argv[0], argv);
                fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        close(fd);
        p->pid = pid;
        p->log_path = strdup(log_path);
        return p->log_path ? 0 : -ENOMEM;
}

int tproc_signal(tproc *p, int sig) {
        if (p->pid <= 0) return -ESRCH;
        return kill(p->pid, sig) < 0 ? -errno : 0;
}

static int status_code(int st) {
        if (WIFEXITED(st)) return WEXITSTATUS(st);
        if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
        return -EIO;
}

int tproc_reap(tproc *p) {
        int st;
        if (p->pid <= 0) return -ESRCH;
        if (waitpid(p->pid, &st, 0) < 0) return -errno;
        p->pid = 0;
        free(p->log_path);
        p->log_path = NULL;
        return status_code(st);
}

int tproc_stop(tproc *p, double grace_s) {
        if (p->pid <= 0) return -ESRCH;
        kill(p->pid, SIGTERM);
        double deadline = mono() + grace_s;
        int st;
        for (;;) {
                pid_t r = waitpid(p->pid, &st, WNOHANG);
                if (r == p->pid) break;
                if (r < 0) return -errno;
                if (mono() > deadline) {
                        kill(-p->pid, SIGKILL);
                        kill(p->pid, SIGKILL);
                        waitpid(p->pid, &st, 0);
                        break;
                }
                usleep(20000);
        }
        p->pid = 0;
        free(p->log_path);
        p->log_path = NULL;
        return status_code(st);
}

static size_t collect(char *data, size_t size, size_t n, void *ud) {
        char **buf = ud;
        size_t old = *buf ? strlen(*buf) : 0, add = size * n;
        char *nb = realloc(*buf, old + add + 1);
        if (!nb) return 0;
        memcpy(nb + old, data, add);
        nb[old + add] = 0;
        *buf = nb;
        return add;
}

int tproc_http_get(int port, const char *path, long *ret_code, char **ret_body) {
        CURL *c = curl_easy_init();
        if (!c) return -ENOMEM;
        char url[256];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
        char *body = NULL;
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
        CURLcode cr = curl_easy_perform(c);
        long code = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_cleanup(c);
        if (cr != CURLE_OK) {
                free(body);
                return -ECONNREFUSED;
        }
        if (ret_code) *ret_code = code;
        if (ret_body)
                *ret_body = body ? body : strdup("");
        else
                free(body);
        return 0;
}

int tproc_start_controller(tproc *p, const char *name, const char *const *extra, double timeout_s) {
        const char *build = getenv("PULLPOLICY_BUILD");
        char bin[4096], log[4096], hp[64], mp[64], kc[4096];
        snprintf(bin, sizeof(bin), "%s/pullpolicy-controller", build ? build : "build");
        snprintf(log, sizeof(log), "%s/test-logs", build ? build : "build");
        mkdir(log, 0755);
        snprintf(log, sizeof(log), "%s/test-logs/%s.log", build ? build : "build", name);
        int health = tproc_free_port(), metrics = tproc_free_port();
        if (health < 0 || metrics < 0) return -EADDRNOTAVAIL;
        snprintf(hp, sizeof(hp), "--health-probe-bind-address=127.0.0.1:%d", health);
        snprintf(mp, sizeof(mp), "--metrics-bind-address=127.0.0.1:%d", metrics);
        snprintf(kc, sizeof(kc), "--kubeconfig=%s", testenv_kubeconfig());

        char *argv[64];
        size_t n = 0;
        char *wrapper = NULL;
        const char *w = getenv("PULLPOLICY_CONTROLLER_WRAPPER");
        if (w && *w) {
                wrapper = strdup(w);
                for (char *tok = strtok(wrapper, " "); tok && n < 24; tok = strtok(NULL, " "))
                        argv[n++] = tok;
        }
        argv[n++] = bin;
        argv[n++] = kc;
        argv[n++] = hp;
        argv[n++] = mp;
        argv[n++] = (char *)"--log-format=json";
        argv[n++] = (char *)"--log-level=debug";
        for (size_t i = 0; extra && extra[i] && n < 62; i++) argv[n++] = (char *)extra[i];
        argv[n] = NULL;

        FILE *f = fopen(log, "a");
        if (f) {
                fprintf(f, "--- starting controller:");
                for (size_t i = 0; i < n; i++) fprintf(f, " %s", argv[i]);
                fprintf(f, "\n");
                fclose(f);
        }
        int r = tproc_spawn(p, log, argv);
        free(wrapper);
        if (r < 0) return r;
        p->health_port = health;
        p->metrics_port = metrics;

        double deadline = mono() + timeout_s;
        while (mono() < deadline) {
                long code = 0;
                if (tproc_http_get(health, "/readyz", &code, NULL) == 0 && code == 200) return 0;
                if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
                        fprintf(stderr, "controller %s exited early; see %s\n", name, log);
                        p->pid = 0;
                        return -ECHILD;
                }
                usleep(50000);
        }
        fprintf(stderr, "controller %s not ready after %.0f s; see %s\n", name, timeout_s, log);
        return -ETIMEDOUT;
}

int tproc_log_count(const tproc *p, const char *needle, const char *needle2) {
        FILE *f = fopen(p->log_path, "r");
        if (!f) return -errno;
        char *line = NULL;
        size_t cap = 0;
        int count = 0;
        while (getline(&line, &cap, f) > 0)
                if (strstr(line, needle) && (!needle2 || strstr(line, needle2))) count++;
        free(line);
        fclose(f);
        return count;
}
