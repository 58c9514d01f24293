/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the e2e and production suites do with the test control plane the way a
 * user would: run kubectl (as the admin of testenv.h) and read its JSON, and
 * the clock they time it with. Test code: kt_apply() asserts with cmocka;
 * the rest report failure by value.
 *
 * $PULLPOLICY_ROOT and $PULLPOLICY_BUILD (set by hack/run-tests.sh) name the
 * source tree and the build directory.
 */
#ifndef PP_TEST_SUPPORT_KUBETEST_H
#define PP_TEST_SUPPORT_KUBETEST_H

#include <stdarg.h>
#include <stddef.h>

#include <json-c/json.h>

/* ---- time and places --------------------------------------------------------------------- */

/* CLOCK_MONOTONIC in seconds. */
double kt_now(void);

/* Sleeps s seconds, through EINTR. */
void kt_sleep(double s);

/* The source tree ("." when unset) and the build directory ("build" when unset). */
const char *kt_root(void);
const char *kt_build(void);

/* vasprintf() that returns the string, or NULL; the caller frees it. */
char *kt_vfmt(const char *fmt, va_list ap);

/* ---- kubectl ------------------------------------------------------------------------------ */

/* Exit status of `kubectl ARGS` (stdout discarded; stderr to ours unless ARGS redirect it). */
int kt_kubectl(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* stdout of `kubectl ARGS` with trailing white space cut (caller frees), or NULL on failure. */
char *kt_kout(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* `kubectl ARGS` (which should ask for -o json) parsed (caller puts), or NULL on failure. */
json_object *kt_kjson(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* `kubectl apply -f -` of formatted YAML; a failure prints kubectl's words and fails the test. */
void kt_apply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* `kubectl apply -f -` of formatted YAML: exit status, kubectl's stdout+stderr in *out. */
int kt_try_apply(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The CRDs of kt_root()/crds/ applied server-side and the PullPolicy CRD established: 0 or -1. */
int kt_install_crds(void);

/* ---- JSON (borrowed pointers into o; NULL, -1 or 0 when absent or of another type) ---------- */

/* o[key] when o is an object. */
json_object *kt_jget(json_object *o, const char *key);

/* o.a.b.c for a dotted path (keys without dots; at most 511 bytes). */
json_object *kt_jpath(json_object *o, const char *path);

const char *kt_jstr(json_object *o, const char *path);
long long kt_jint(json_object *o, const char *path);
size_t kt_jlen(json_object *o, const char *path);
json_object *kt_jidx(json_object *o, const char *path, size_t i);

/* metadata.labels[key] / metadata.annotations[key] (keys may hold dots and slashes). */
const char *kt_label(json_object *obj, const char *key);
const char *kt_annotation(json_object *obj, const char *key);

/* ---- base64 (standard alphabet; kept apart from pkg/util so tests do not share its bugs) ---- */

/* s decoded into a new NUL-terminated string, or NULL when s is not base64 or on ENOMEM. */
char *kt_b64decode(const char *s);

/* The NUL-terminated s encoded (a new string); fails the test on ENOMEM. */
char *kt_b64encode(const char *s);

#endif
