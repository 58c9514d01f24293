/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pullpolicy-sim: OpenShift's service-account dockercfg provisioning, simulated on a plain
 * Kubernetes control plane so that the operator's rule R4 (wait for the dockercfg secret) is
 * tested against each form OpenShift has had.
 *
 *   pullpolicy-sim [--kubeconfig=PATH] [--context=NAME] --mode=current|early416|legacy|removed
 *                  [--delay=SECONDS] [--token-refresh=SECONDS] [--resync=SECONDS]
 *                  [--cache-lag=SECONDS] [--cleanup-min-age=SECONDS] [--link-pause=SECONDS]
 *                  [--namespace-prefix=P]... [--skip-namespace-prefix=P]... [--qps=N]
 *                  [--burst=N] [--verbose]
 *
 * The modes, the upstream files each follows, the test hooks (--cache-lag, --link-pause) and
 * the differences from OpenShift are described in test/sim/README.md:
 *  - current: 4.16.z late, 4.17.z late, 4.18+ (openshift-controller-manager
 *    pkg/internalregistry/controllers/service_account_controller.go and
 *    image_pull_secret_controller.go): annotation + .secrets + .imagePullSecrets in one
 *    guarded server-side apply before the secret exists; the secret made empty, filled after
 *    --delay, refreshed every --token-refresh; re-made under the same name when deleted.
 *  - early416: 4.16.0 / 4.17.0 (service_account_controller.go as of 2024-05): the whole cached
 *    .imagePullSecrets applied with force and no resourceVersion at every event and --resync.
 *  - legacy: before 4.16 (pkg/serviceaccounts/controllers/create_dockercfg_secrets.go,
 *    deleted_dockercfg_secrets.go): pending-token annotation, token secret filled by
 *    kube-controller-manager, dockercfg secret owned by it, Update of both lists (4 tries).
 *  - removed: the registry Removed or its capability disabled (cluster-openshift-controller-
 *    manager-operator pkg/operator/internalimageregistry/cleanup_controller.go): nothing is
 *    provisioned; managed secrets and their references are cleaned up, the annotation stays.
 * Every namespace is served, kube-* included; --namespace-prefix restricts it (tests).
 * Logs go to stderr, one line per action, never any secret data; "synced" is logged once the
 * first list is done (hack/openshift-sim.sh waits for it). SIGTERM/SIGINT end it cleanly.
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
