/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Command-line flags of the controller, with environment variable equivalents.
 *
 * Every flag --foo-bar has the variable PULLPOLICY_FOO_BAR; a flag given on the
 * command line wins over its variable, which wins over the default. KUBECONFIG
 * is also honoured, below PULLPOLICY_KUBECONFIG. Boolean flags take no value or
 * "=true|false" (also 1/0, yes/no, on/off in either place).
 *
 * Durations use Go's syntax: a sequence of decimal numbers with units, "15s",
 * "2m", "1m30s", "500ms", "1.5h" (ns, us, µs, ms, s, m, h); "0" alone is zero.
 *
 * The parser is strict: an unknown flag, a missing or malformed value, a value
 * out of bounds, a stray positional argument or an inconsistent combination
 * (see below) is an error with a message that names the flag and the value,
 * e.g. `--qps: not a number: "abc"`.
 *
 * Ownership: pp_settings owns all its strings and arrays; free them with
 * flags_settings_done(). A pp_settings is only written on success.
 */
#ifndef PP_CONTROLLER_FLAGS_H
#define PP_CONTROLLER_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "log.h"

/* Limits on what a flag or variable can hold. */
#define FLAGS_LIST_MAX      256  /* entries of a comma list */
#define FLAGS_VALUE_MAX     4096 /* bytes of any one value */
#define FLAGS_QPS_MAX       10000.0
#define FLAGS_BURST_MAX     100000
#define FLAGS_IN_FLIGHT_MAX 4096
#define FLAGS_WORKERS_MAX   256

typedef struct pp_settings {
        char *kubeconfig; /* NULL: in-cluster configuration */
        /* Send the bearer token to an http:// server (clear text); default false. */
        bool allow_insecure_http_token;
        char *namespace; /* NULL: watch all namespaces */

        char **allowed_cluster_roles; /* never NULL after parsing; may be empty */
        size_t n_allowed_cluster_roles;

        /*
         * distribution_namespaces_set false: the flag and its variable were not
         * given, and main resolves the default (the controller's own namespace).
         * An explicit empty value sets an empty list (no distribution anywhere).
         */
        bool distribution_namespaces_set;
        char **distribution_namespaces;
        size_t n_distribution_namespaces;

        char *global_pull_secret_namespace; /* default openshift-config */
        char *global_pull_secret_name;      /* default pull-secret */

        bool leader_elect;
        char *leader_election_namespace; /* NULL: the controller's own namespace (main) */
        char *leader_election_id;        /* the Lease name; default pullpolicy-controller */
        double lease_duration;           /* seconds; default 15 */
        double renew_deadline;           /* seconds; default 10 */
        double retry_period;             /* seconds; default 2 */

        char *metrics_bind_address;      /* NULL: disabled ("0"); default ":8080" */
        char *health_probe_bind_address; /* NULL: disabled ("0"); default ":8081" */

        double qps;                 /* default 0: no cap (the flow window paces the client) */
        int burst;                  /* default 30 */
        int requests_in_flight;     /* the flow window's start; default 8 */
        int max_requests_in_flight; /* its ceiling; default 128 */

        log_format log_format; /* default text */
        log_level log_level;   /* default info */

        int workers;          /* concurrent reconciles; default 4 */
        double resync_period; /* seconds; 0 disables; default 10h (controller-runtime's) */

        /* issue 11: registry credential checks that policies may ask for (off by default:
         * the controller then connects to every registry its secrets name) */
        bool verify_credentials;
        char *registry_ca_file; /* NULL: the system's CAs */
        double verify_interval; /* seconds; default 1h */
        int verify_concurrency; /* handshakes at once; default 2 */

        bool show_version; /* --version: main prints the version and exits 0 */
        bool show_help;    /* --help: main prints flags_usage() and exits 0 */
} pp_settings;

/* Looks up an environment variable; NULL when unset. */
typedef const char *(*flags_getenv_fn)(const char *name, void *userdata);

/*
 * Parses argv (argv[0] is the program) and the environment into *ret.
 * getenv_fn NULL uses getenv(3). Not re-entrant (getopt_long's globals).
 * Returns 0, -EINVAL with *ret_error set to a newly allocated message (the
 * caller frees it; ret_error may be NULL), or -ENOMEM.
 * With --help or --version the rest is still validated, so that a bad
 * invocation is never reported as fine.
 */
int flags_parse(int argc, char *const *argv, flags_getenv_fn getenv_fn, void *userdata,
                pp_settings *ret, char **ret_error);

/* Frees what *s owns and zeroes it. */
void flags_settings_done(pp_settings *s);

/* Writes the usage text: every flag, its variable and its default. */
void flags_usage(FILE *f, const char *program);

/*
 * Parses a Go-style duration into seconds. Returns 0 or -EINVAL (syntax),
 * -ERANGE (beyond 10000 hours or negative).
 */
int flags_parse_duration(const char *s, double *ret);

#endif
