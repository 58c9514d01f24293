/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Access to the real local control plane (etcd, kube-apiserver, kube-controller-manager)
 * started by `hack/testenv.sh start DIR`, for integration and e2e tests.
 *
 * The environment comes from $TESTENV_DIR (required) and the repository root from
 * $PULLPOLICY_ROOT (else the current directory). Test code only: these helpers may print
 * diagnostics to stderr. Not thread-safe; strings returned as `const char *` are owned by
 * this module and live until the process exits.
 *
 * Typical use with cmocka:
 *
 *     return cmocka_run_group_tests(tests, testenv_group_setup, NULL);
 */
#ifndef PP_TEST_SUPPORT_TESTENV_H
#define PP_TEST_SUPPORT_TESTENV_H

#include <stddef.h>

/* Upper bound on what testenv_kubectl*() capture from kubectl's stdout. */
#define TESTENV_OUTPUT_MAX (64u * 1024 * 1024)

/*
 * cmocka group setup (an int (*)(void **)): 0 when $TESTENV_DIR names a started test
 * environment whose apiserver answers /readyz; otherwise prints why and returns -1, which
 * fails every test of the group.
 */
int testenv_group_setup(void **state);

/* $TESTENV_DIR made absolute, or NULL (with a message on stderr) when unset. */
const char *testenv_dir(void);

/* DIR/kubeconfig: admin (system:masters), CA, certificate and key inline. NULL if no DIR. */
const char *testenv_kubeconfig(void);

/* DIR/kubeconfig-files: the same admin credentials given as file paths. NULL if no DIR. */
const char *testenv_kubeconfig_files(void);

/* "https://127.0.0.1:PORT" of the apiserver, or NULL if not started. */
const char *testenv_server(void);

/* Directory holding etcd, kube-apiserver, kube-controller-manager, kubectl; or NULL. */
const char *testenv_bindir(void);

/*
 * Runs `kubectl --kubeconfig=<admin kubeconfig> <args>` through /bin/sh, where args is fmt
 * formatted (the caller quotes for the shell). kubectl's stderr goes to ours. When out is
 * not NULL, *out receives kubectl's stdout as a NUL-terminated malloc'd string (the caller
 * frees it) whenever kubectl ran, whatever its exit status.
 *
 * Returns kubectl's exit status (0..255; 128+N if killed by signal N), or a negative errno
 * when it could not be run (-ENOENT: no test environment; -EFBIG: output over
 * TESTENV_OUTPUT_MAX).
 */
int testenv_kubectl(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Like testenv_kubectl() with `input` (may be NULL: empty) on kubectl's stdin. */
int testenv_kubectl_input(const char *input, char **out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* `kubectl apply -f -` of the given YAML or JSON; kubectl's exit status or negative errno. */
int testenv_kubectl_apply(const char *yaml);

/*
 * Stop / start / restart the apiserver alone through hack/testenv.sh (same port, flags and
 * etcd, so a client's watch can resume). start and restart return once /readyz answers.
 * Return 0, the script's non-zero exit status, or a negative errno.
 */
int testenv_stop_apiserver(void);
int testenv_start_apiserver(void);
int testenv_restart_apiserver(void);

/*
 * A new malloc'd DNS-1123 label "<prefix>-<pid>-<salt><counter>" (lower-case alphanumerics
 * and '-', at most 63 characters; the prefix is lower-cased, other characters become '-',
 * and it is shortened if needed). Unique within the process, and across runs of the same
 * PID thanks to a per-process salt. NULL on allocation failure.
 */
char *testenv_unique_name(const char *prefix);

/*
 * Calls cond(ud) every 50 ms until it returns > 0 (done). Returns 0 when done, -ETIMEDOUT
 * after timeout_s seconds, or cond's negative return (an error that aborts the wait).
 * cond is always called at least once.
 */
int testenv_wait_until(int (*cond)(void *ud), void *ud, double timeout_s);

/*
 * Scrapes the apiserver's /metrics (`kubectl get --raw /metrics`) and sums the samples of
 * metric `name` (exact name, e.g. "apiserver_request_total") whose labels include every
 * k="v" pair of label_filter (e.g. `verb="PUT",resource="serviceaccounts"`; NULL or "" for
 * all samples). Writes the sum to *ret and returns the number of samples summed (0 when none
 * matched, so the sum is 0), or a negative errno (-EINVAL: malformed label_filter; -EIO:
 * kubectl failed).
 */
int testenv_apiserver_metric(const char *name, const char *label_filter, double *ret);

/*
 * Same matching on a Prometheus text exposition held in memory (exported so that unit tests
 * can check the parser without a control plane).
 */
int testenv_metric_sum(const char *exposition, const char *name, const char *label_filter,
                       double *ret);

/*
 * Compacts etcd up to its current revision (through its JSON gateway on
 * loopback), so that any older resourceVersion is gone for certain: a watch
 * from one gets 410 whatever the age of the environment. 0 or -errno.
 */
int testenv_compact_etcd(void);

#endif
