/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pullpolicy-sim: OpenShift's service-account pull-secret controller, simulated
 * on a plain Kubernetes control plane so that the operator's rule R4 (wait for
 * the dockercfg secret) can be tested without OpenShift.
 *
 *   pullpolicy-sim [--kubeconfig=PATH] [--context=NAME] --mode=legacy|ocp416|off
 *                  [--delay=SECONDS] [--namespace-prefix=P]... [--skip-namespace-prefix=P]...
 *                  [--ocp416-mountable] [--link-pause=SECONDS] [--qps=N] [--burst=N]
 *                  [--verbose]
 *
 * Every namespace is served except kube-system, kube-public and
 * kube-node-lease; --namespace-prefix restricts it to namespaces starting with
 * one of the prefixes (tests running side by side each start their own
 * provisioner on their own namespaces), --skip-namespace-prefix excludes some.
 * Logs go to stderr, one line per action, never any secret data; "synced" is
 * logged once the first list is done (hack/openshift-sim.sh waits for it).
 * SIGTERM/SIGINT end it cleanly.
 *
 * --mode=legacy: OpenShift before 4.16 (openshift-controller-manager's
 * DockercfgController). A service account needs a secret unless a name with
 * its prefix "<sa>-dockercfg-" is in both .secrets and .imagePullSecrets.
 * After --delay seconds it creates Secret <sa>-dockercfg-xxxxx (5 characters
 * of Kubernetes' generateName alphabet; over-long names are cut and hashed
 * with FNV-1a as OpenShift does) of type kubernetes.io/dockercfg, whose
 * .dockercfg names the internal registry (service, FQDN and a cluster IP,
 * username "serviceaccount", a made-up token) and which carries the
 * annotations kubernetes.io/service-account.name/.uid and
 * openshift.io/token-secret.name/.value. Then it appends the name to .secrets
 * and .imagePullSecrets with a full PUT of the object it read
 * (resourceVersion precondition); on 409 it re-reads and appends again, so
 * entries others added meanwhile survive; if it finds the account
 * provisioned by someone else, or deleted, it deletes its secret. When only
 * one list names a dockercfg secret it adds it to the other. When a dockercfg
 * secret it made is deleted, its references are removed from the account
 * (read-modify-write) and a new secret is made, as OpenShift does.
 *
 * --mode=ocp416: OpenShift 4.16 and later (the image-registry pull-secret
 * service-account controller and image-pull-secret controller of
 * openshift-controller-manager, pkg/internalregistry). At once it chooses
 * the name <sa>-dockercfg-xxxxx, annotates the account with
 * openshift.io/internal-registry-pull-secret-ref: <name> (PUT) and creates
 * the secret, type kubernetes.io/dockercfg, with annotation
 * openshift.io/internal-registry-auth-token.service-account: <sa>, an owner
 * reference to the account and .dockercfg = "{}" (no credentials). After
 * --delay seconds it fills the secret (merge patch: {url: {auth:
 * base64("<token>:" token)}} for each registry URL, annotation
 * openshift.io/internal-registry-auth-token.binding: bound) and only then adds
 * the name to .imagePullSecrets (full PUT, retry on 409), not to .secrets
 * (unless --ocp416-mountable). A secret that is not filled is kept out of
 * .imagePullSecrets (removed if present). A deleted managed secret is created
 * again under the same name, empty, and filled after the delay.
 *
 * --mode=off: OpenShift with its image registry disabled: nothing is made,
 * no annotation is set.
 *
 * --link-pause=SECONDS is a test hook, not OpenShift behaviour: it waits that
 * long between making (legacy) or filling (ocp416) the secret and the PUT
 * that links it, still using the service account read before, so that a test
 * can write to the account in between and see the 409 / re-read / re-apply
 * path keep its entries (R9).
 *
 * Differences from OpenShift, on purpose or for simplicity:
 *  - OpenShift writes with server-side apply (4.16+) or Update through an
 *    informer cache; this uses GET + full PUT (or a merge patch for the
 *    secret's data), always with the resourceVersion just read.
 *  - Legacy OpenShift first creates a kubernetes.io/service-account-token
 *    secret <sa>-token-xxxxx, waits for kube-controller-manager to fill it
 *    and owns the dockercfg secret by it; here the token-secret annotations
 *    name a token secret that is not created, the token is made up and the
 *    dockercfg secret is owned by the service account.
 *  - The real 4.16+ token is a bound service-account token (TokenRequest)
 *    refreshed before it expires; here it is a made-up string, never
 *    refreshed. The registry URLs are fixed rather than observed.
 *  - OpenShift 4.16.0 itself set the annotation, .secrets and
 *    .imagePullSecrets in one apply before the secret had data; later 4.16+
 *    releases (simulated here) annotate first and link only a filled secret.
 *    Those releases also added the name to .secrets ("until API-1798"):
 *    --ocp416-mountable does that too.
 *  - In 4.16+ the name is recovered, when the annotation was removed, from a
 *    managed secret of the account or a legacy one; here a fresh name is made.
 *  - The list+watch is simple (test/sim/watch.c); deletions during a relist
 *    gap are missed (only the re-creation of a deleted secret depends on them).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "kube/client.h"
#include "kube/config.h"
#include "sim.h"
#include "util/macro.h"

static void usage(FILE *f) {
        fputs("usage: pullpolicy-sim [--kubeconfig=PATH] [--context=NAME]\n"
              "                      --mode=current|early416|legacy|removed [--delay=SECONDS]\n"
              "                      [--namespace-prefix=P]... [--skip-namespace-prefix=P]...\n"
              "                      [--token-refresh=SECONDS] [--resync=SECONDS]\n"
              "                      [--cache-lag=SECONDS] [--cleanup-min-age=SECONDS]\n"
              "                      [--link-pause=SECONDS]\n"
              "                      [--qps=N] [--burst=N] [--verbose]   (qps 0: unlimited)\n",
              f);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents) {
        sim_log("signal %d: stopping", w->signum);
        ev_break(loop, EVBREAK_ALL);
}

static int parse_args(int argc, char **argv, sim_opts *o, const char **kubeconfig,
                      const char **context, kube_client_opts *copts) {
        enum {
                OPT_KUBECONFIG = 256,
                OPT_CONTEXT,
                OPT_MODE,
                OPT_DELAY,
                OPT_PREFIX,
                OPT_SKIP,
                OPT_TOKEN_REFRESH,
                OPT_RESYNC,
                OPT_CACHE_LAG,
                OPT_CLEANUP_AGE,
                OPT_LINK_PAUSE,
                OPT_QPS,
                OPT_BURST,
        };
        static const struct option longopts[] = {
            {"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},
            {"context", required_argument, NULL, OPT_CONTEXT},
            {"mode", required_argument, NULL, OPT_MODE},
            {"delay", required_argument, NULL, OPT_DELAY},
            {"namespace-prefix", required_argument, NULL, OPT_PREFIX},
            {"skip-namespace-prefix", required_argument, NULL, OPT_SKIP},
            {"token-refresh", required_argument, NULL, OPT_TOKEN_REFRESH},
            {"resync", required_argument, NULL, OPT_RESYNC},
            {"cache-lag", required_argument, NULL, OPT_CACHE_LAG},
            {"cleanup-min-age", required_argument, NULL, OPT_CLEANUP_AGE},
            {"link-pause", required_argument, NULL, OPT_LINK_PAUSE},
            {"qps", required_argument, NULL, OPT_QPS},
            {"burst", required_argument, NULL, OPT_BURST},
            {"verbose", no_argument, NULL, 'v'},
            {"help", no_argument, NULL, 'h'},
            {},
        };
        bool have_mode = false;
        int c;
        while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
                switch (c) {
                case OPT_KUBECONFIG:
                        *kubeconfig = optarg;
                        break;
                case OPT_CONTEXT:
                        *context = optarg;
                        break;
                case OPT_MODE:
                        have_mode = true;
                        if (sim_mode_parse(optarg, &o->mode) < 0) {
                                fprintf(stderr, "pullpolicy-sim: unknown mode %s\n", optarg);
                                return -EINVAL;
                        }
                        break;
                case OPT_DELAY:
                case OPT_TOKEN_REFRESH:
                case OPT_RESYNC:
                case OPT_CACHE_LAG:
                case OPT_CLEANUP_AGE:
                case OPT_LINK_PAUSE: {
                        char *end;
                        errno = 0;
                        double d = strtod(optarg, &end);
                        /* A day is far more than any test waits. */
                        if (errno || end == optarg || *end || !isfinite(d) || d < 0 || d > 86400) {
                                fprintf(stderr, "pullpolicy-sim: bad duration %s\n", optarg);
                                return -EINVAL;
                        }
                        if (c == OPT_DELAY)
                                o->delay = d;
                        else if (c == OPT_TOKEN_REFRESH)
                                o->token_refresh = d;
                        else if (c == OPT_RESYNC)
                                o->resync = d;
                        else if (c == OPT_CACHE_LAG)
                                o->cache_lag = d;
                        else if (c == OPT_CLEANUP_AGE)
                                o->cleanup_min_age = d;
                        else
                                o->link_pause = d;
                        break;
                }
                case OPT_PREFIX:
                case OPT_SKIP: {
                        const char **arr = c == OPT_PREFIX ? o->include_prefixes : o->skip_prefixes;
                        size_t *n = c == OPT_PREFIX ? &o->n_include : &o->n_skip;
                        if (*n >= SIM_MAX_PREFIXES || !*optarg) {
                                fprintf(stderr, "pullpolicy-sim: too many or empty prefixes\n");
                                return -EINVAL;
                        }
                        arr[(*n)++] = optarg;
                        break;
                }
                case OPT_QPS:
                case OPT_BURST: {
                        char *end;
                        errno = 0;
                        double v = strtod(optarg, &end);
                        if (errno || end == optarg || *end || !isfinite(v) || v < 0 || v > 1e6) {
                                fprintf(stderr, "pullpolicy-sim: bad %s %s\n",
                                        c == OPT_QPS ? "--qps" : "--burst", optarg);
                                return -EINVAL;
                        }
                        if (c == OPT_QPS)
                                copts->qps = v;
                        else
                                copts->burst = (int)v;
                        break;
                }
                case 'v':
                        o->verbose = true;
                        break;
                case 'h':
                        usage(stdout);
                        exit(EXIT_SUCCESS);
                default:
                        usage(stderr);
                        return -EINVAL;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "pullpolicy-sim: unexpected argument %s\n", argv[optind]);
                return -EINVAL;
        }
        if (!have_mode) {
                fprintf(stderr, "pullpolicy-sim: --mode is required\n");
                usage(stderr);
                return -EINVAL;
        }
        return 0;
}

int main(int argc, char **argv) {
        /*
         * OpenShift renews a one-hour bound token at 60 % of its life; an informer-driven
         * controller of 4.16.0 resynced every few minutes (10 s here, so tests see it).
         */
        sim_opts opts = {.token_refresh = 2160, .resync = 10};
        const char *kubeconfig = NULL, *context = NULL;
        kube_config *cfg = NULL;
        kube_client *client = NULL;
        sim *s = NULL;
        sim_watch *watch = NULL;
        char *err = NULL;
        int r, ret = EXIT_FAILURE;

        /* OpenShift's controller manager talks to the apiserver at a few hundred QPS. */
        kube_client_opts copts = {.qps = 100, .burst = 200, .user_agent = "pullpolicy-sim"};
        if (parse_args(argc, argv, &opts, &kubeconfig, &context, &copts) < 0) return 2;

        struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
        if (!loop) {
                fprintf(stderr, "pullpolicy-sim: no event loop\n");
                return EXIT_FAILURE;
        }
        ev_signal sigterm, sigint;
        ev_signal_init(&sigterm, on_signal, SIGTERM);
        ev_signal_init(&sigint, on_signal, SIGINT);
        ev_signal_start(loop, &sigterm);
        ev_signal_start(loop, &sigint);

        r = kube_config_load_default(kubeconfig, context, &cfg, &err);
        if (r < 0) {
                sim_log("kubeconfig: %s", err ? err : strerror(-r));
                goto out;
        }
        r = kube_client_new(loop, cfg, &copts, &client);
        if (r < 0) {
                sim_log("client: %s", strerror(-r));
                goto out;
        }
        r = sim_new(loop, client, &opts, &s);
        if (r < 0) {
                sim_log("init: %s", strerror(-r));
                goto out;
        }
        sim_log("starting against %s, mode %s, delay %.3f s", kube_config_server(cfg),
                sim_mode_name(opts.mode), opts.delay);
        r = sim_watch_start(s, &watch);
        if (r < 0) {
                sim_log("watch: %s", strerror(-r));
                goto out;
        }
        /* Runs until a signal breaks it: the signal watchers keep it alive. */
        ev_run(loop, 0);
        ret = EXIT_SUCCESS;
        sim_log("stopped; %lu service accounts provisioned", s->n_provisioned);
out:
        if (s) s->stopping = true;
        sim_watch_free(watch);
        sim_free(s);
        kube_client_free(client);
        kube_config_free(cfg);
        free(err);
        ev_signal_stop(loop, &sigterm);
        ev_signal_stop(loop, &sigint);
        ev_loop_destroy(loop);
        return ret;
}
