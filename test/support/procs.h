/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Child processes for tests: the controller and the OpenShift simulator run
 * as real processes against the test control plane, so that tests see what
 * a user sees (and can kill -9 them). Test code: may print to stderr.
 *
 * $PULLPOLICY_BUILD names the build directory (set by hack/run-tests.sh);
 * $PULLPOLICY_CONTROLLER_WRAPPER, when set, is a command prefix such as
 * "valgrind --leak-check=full --error-exitcode=99" put before the controller,
 * whose exit status tproc_stop() then reports.
 */
#ifndef PP_TEST_SUPPORT_PROCS_H
#define PP_TEST_SUPPORT_PROCS_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct tproc {
        pid_t pid;
        char *log_path;
        int health_port; /* controller: its /healthz and /readyz */
        int metrics_port;
} tproc;

/* A free TCP port on 127.0.0.1 (bound and released; good enough for tests). */
int tproc_free_port(void);

/* Starts argv (searched in PATH) with stdout+stderr appended to log_path. */
int tproc_spawn(tproc *p, const char *log_path, char *const argv[]);

/* Sends sig; 0 or -errno. */
int tproc_signal(tproc *p, int sig);

/*
 * SIGTERM, then SIGKILL after grace_s; reaps the child. Returns its exit
 * status (0..255), 128+signal when it was killed, or -errno. Frees log_path.
 */
int tproc_stop(tproc *p, double grace_s);

/* Reaps a child that was killed with SIGKILL by the test. */
int tproc_reap(tproc *p);

/*
 * Starts build/pullpolicy-controller against the test control plane with
 * --kubeconfig, free health/metrics ports, --log-format=json and the given
 * extra flags (NULL-terminated), logging to build/test-logs/<name>.log; waits
 * until /readyz answers 200 (caches synced) or timeout_s passes.
 */
int tproc_start_controller(tproc *p, const char *name, const char *const *extra, double timeout_s);

/* GET http://127.0.0.1:port/path; 0 and the HTTP code (and body if wanted), or -errno. */
int tproc_http_get(int port, const char *path, long *ret_code, char **ret_body);

/* Counts the lines of p's log that contain needle (and, if needle2, also needle2). */
int tproc_log_count(const tproc *p, const char *needle, const char *needle2);

#endif
