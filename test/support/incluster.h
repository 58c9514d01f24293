/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A pod's in-cluster identity, laid out on disk for tests: the files a kubelet mounts at
 * /var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}, under a private
 * temporary root, so that build/pullpolicy-controller runs with the Kubernetes identity and
 * RBAC it has in production (a service-account token), not the test's admin certificate.
 *
 *   - token:     from the TokenRequest API (`kubectl create token SA -n NS`), optionally
 *                bound to a Secret so that deleting the Secret revokes it (rotation tests)
 *   - ca.crt:    the cluster CA taken from the admin kubeconfig
 *   - namespace: NS
 *
 * The controller is started with KUBERNETES_SERVICE_HOST=127.0.0.1,
 * KUBERNETES_SERVICE_PORT=<apiserver port> (or a fault proxy's port) and
 * PULLPOLICY_SERVICEACCOUNT_ROOT=<root>, without --kubeconfig, and with $KUBECONFIG removed
 * from its environment (controller/main.c then loads the in-cluster configuration).
 *
 * The token is a credential: these helpers never print it; it lives in files of mode 0600
 * inside the mode-0700 root, which incluster_free() removes. Test code only: may print
 * diagnostics to stderr. Requires a started testenv (testenv.h).
 */
#ifndef PP_TEST_SUPPORT_INCLUSTER_H
#define PP_TEST_SUPPORT_INCLUSTER_H

#include <stdbool.h>

#include "procs.h"

typedef struct incluster {
        char *root;            /* the fake pod's filesystem root (a mkdtemp directory) */
        char *sa_dir;          /* <root>/var/run/secrets/kubernetes.io/serviceaccount */
        char *namespace;       /* the service account's namespace */
        char *service_account; /* its name */
        char *user;            /* "system:serviceaccount:<namespace>:<name>" */
        char *kubeconfig;      /* <root>/kubeconfig: the same identity for kubectl */
        int apiserver_port;    /* the real apiserver's port on 127.0.0.1 */
} incluster;

/*
 * Requests a token valid for duration (a kubectl duration such as "1h"; NULL: "1h") for
 * service account sa of namespace ns, bound to Secret bound_secret of ns when that is not
 * NULL, and lays out the identity. Returns 0 and *ret (free with incluster_free()), or a
 * negative errno: -ENOENT no test environment, -EIO kubectl failed (message on stderr).
 */
int incluster_new(const char *ns, const char *sa, const char *bound_secret, const char *duration,
                  incluster **ret);

/* Removes the root directory and frees; NULL is fine. Returns NULL. */
incluster *incluster_free(incluster *ic);

/*
 * Replaces the token file (and the kubeconfig's token) with a fresh token, bound to
 * bound_secret when not NULL, the way a kubelet does it: written aside, then renamed over
 * the old file, so a reader never sees a partial token. 0 or a negative errno.
 */
int incluster_rotate_token(incluster *ic, const char *bound_secret, const char *duration);

/*
 * Runs `kubectl --kubeconfig=<the identity's kubeconfig> <args>` through /bin/sh (the
 * caller quotes; add 2>&1 to capture errors). *out (if not NULL) receives stdout,
 * NUL-terminated and malloc'd, whenever kubectl ran. Returns kubectl's exit status or a
 * negative errno.
 */
int incluster_kubectl(const incluster *ic, char **out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The same with another kubeconfig file (e.g. one from incluster_write_kubeconfig()). */
int incluster_kubectl_kc(const char *kubeconfig, char **out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Writes to dst a kubeconfig for the apiserver with this identity's CA and the token in
 * token_file (e.g. a saved copy of an older token). 0 or a negative errno.
 */
int incluster_write_kubeconfig(const incluster *ic, const char *token_file, const char *dst);

typedef struct incluster_controller_opts {
        /* KUBERNETES_SERVICE_PORT; 0: the apiserver's own port (e.g. a faultproxy's port). */
        int service_port;
        /* POD_NAME (the events' reportingInstance); NULL: unset. */
        const char *pod_name;
        /* Wait until /readyz answers 200 (caches synced); else return once started. */
        bool wait_ready;
        /* --log-format (NULL: json) and --log-level (NULL: debug). */
        const char *log_format;
        const char *log_level;
} incluster_controller_opts;

/*
 * Starts build/pullpolicy-controller (after $PULLPOLICY_CONTROLLER_WRAPPER, when set) as
 * this identity, in-cluster, with free health and metrics ports on 127.0.0.1 and the extra
 * flags (NULL-terminated; may be NULL), logging to $PULLPOLICY_BUILD/test-logs/<name>.log
 * (appended to; a header line "--- starting controller (in-cluster ...)" first). opts may
 * be NULL (defaults above, wait_ready false). With wait_ready, waits at most timeout_s.
 * Returns 0 and fills *p (as tproc_start_controller() does), or a negative errno:
 * -ECHILD it exited early, -ETIMEDOUT not ready in time (p is still running then).
 */
int incluster_start_controller(tproc *p, const incluster *ic, const char *name,
                               const incluster_controller_opts *opts, const char *const *extra,
                               double timeout_s);

/* $PULLPOLICY_BUILD/test-logs/<name>.log as a malloc'd string, or NULL. */
char *incluster_log_path(const char *name);

#endif
