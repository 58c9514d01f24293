/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pullpolicy-controller: wiring. Everything runs on one libev loop: the
 * client's HTTP, the reflectors, the workqueue, leader election and the
 * health/metrics servers. Reconciling starts only once every cache has
 * synced (a partial view could make the planner undo what it cannot see)
 * and, with --leader-elect, only while this process holds the Lease.
 */
#include <errno.h>
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "events.h"
#include "flags.h"
#include "httpserver.h"
#include "kube/client.h"
#include "kube/config.h"
#include "kube/errors.h"
#include "kube/leaderelect.h"
#include "log.h"
#include "metrics.h"
#include "stalepods_act.h"
#include "openshift.h"
#include "reconciler.h"
#include "verifier.h"
#include "util/macro.h"

#ifndef PP_VERSION
#define PP_VERSION "0.1.0"
#endif

#define DISCOVERY_INTERVAL 30.0

typedef struct app {
        struct ev_loop *loop;
        pp_settings settings;
        kube_config *config;
        kube_client *client;
        controller_metrics *metrics;
        httpserver *metrics_server, *health_server;
        pp_events *events;
        pp_cache *cache;
        pp_reconciler *reconciler;
        pp_verifier *verifier; /* R12, with --verify-credentials */
        pp_stale *stale;       /* R13: stale pods' Events and opt-in deletions */
        kube_leaderelect *elector;
        pp_openshift_watch
            *openshift; /* R4 Auto: registry state, while image.openshift.io is served */
        char *own_namespace;
        const char **distribution; /* settings' list, or the own namespace */
        size_t n_distribution;
        bool leading; /* holds the Lease, or no election */
        bool synced;
        bool discovered; /* we know whether image.openshift.io is served (R4 Auto) */
        bool stopping;
        int exit_code;
        kube_request *discovery;
        ev_timer sync_check, discovery_timer;
        ev_signal sigterm, sigint;
} app;

static const char *env_get(const char *name, void *ud) {
        return getenv(name);
}

static void update_active(app *a) {
        bool active = a->leading && a->synced && a->discovered && !a->stopping;
        if (a->reconciler && active != pp_reconciler_is_active(a->reconciler)) {
                log_info(LOG_COMPONENT("controller"), active ? "reconciling" : "standing by",
                         LOG_BOOL("leader", a->leading), LOG_BOOL("synced", a->synced));
                pp_reconciler_set_active(a->reconciler, active);
        }
}

static void observe_request(void *ud, kube_method m, const char *path, long http_status,
                            int error) {
        app *a = ud;
        metrics_api_request(a->metrics, kube_method_to_string(m), http_status);
        kube_client_stats st;
        kube_client_get_stats(a->client, &st);
        metrics_api_flow(a->metrics, st.flow_limit, st.throttled_429);
}

static void cache_enqueue(void *ud, const char *key) {
        app *a = ud;
        if (a->reconciler) pp_reconciler_enqueue(a->reconciler, key);
}

static void cache_enqueue_namespace(void *ud, const char *key, const char *namespace) {
        app *a = ud;
        if (a->reconciler) pp_reconciler_enqueue_namespace(a->reconciler, key, namespace);
}

static void cache_sa_changed(void *ud, const model_sa *sa) {
        app *a = ud;
        if (a->reconciler) pp_reconciler_sa_changed(a->reconciler, sa);
}

static void on_sync_check(struct ev_loop *loop, ev_timer *w, int revents) {
        app *a = w->data;
        if (!pp_cache_synced(a->cache)) return;
        ev_timer_stop(loop, w);
        a->synced = true;
        pp_cache_stats st;
        pp_cache_get_stats(a->cache, &st);
        log_info(LOG_COMPONENT("cache"), "caches synced", LOG_UINT("objects", st.objects),
                 LOG_UINT("bytes", st.mem));
        update_active(a);
}

static const char *ready_check(void *ud) {
        app *a = ud;
        if (a->stopping) return "shutting down";
        const char *missing = pp_cache_not_synced(a->cache);
        return missing ? missing : NULL;
}

/* ---- R4 Auto: is image.openshift.io served? ------------------------------------------- */

/*
 * Reconciling waits for the first answer: planning R4 Auto before knowing
 * would link service accounts that OpenShift has not provisioned yet.
 */
static void on_discovery(kube_client *c, const kube_response *r, void *ud) {
        app *a = ud;
        a->discovery = NULL;
        if (r->error == 0 || kube_error_is_not_found(r->error)) {
                pp_reconciler_set_image_api(a->reconciler, r->error == 0);
                if (r->error == 0) {
                        int e = pp_openshift_watch_start(a->openshift);
                        if (e < 0)
                                log_warn(LOG_COMPONENT("discovery"),
                                         "cannot follow OpenShift's registry state", LOG_ERRNO(e));
                } else
                        pp_openshift_watch_stop(a->openshift);
                if (!a->discovered) {
                        a->discovered = true;
                        update_active(a);
                }
                return;
        }
        log_warn(LOG_COMPONENT("discovery"), "could not tell whether image.openshift.io is served",
                 LOG_ERRNO(r->error));
        if (!a->discovered) {
                /* Retry soon rather than at the next period: reconciling waits for it. */
                ev_timer_stop(a->loop, &a->discovery_timer);
                ev_timer_set(&a->discovery_timer, 1.0, DISCOVERY_INTERVAL);
                ev_timer_start(a->loop, &a->discovery_timer);
        }
}

static void discover(struct ev_loop *loop, ev_timer *w, int revents) {
        app *a = w->data;
        if (a->discovery) return;
        kube_request_opts o = {
            .method = KUBE_GET,
            .path = "/apis/image.openshift.io",
            .timeout_ms = 15000,
            .on_done = on_discovery,
            .userdata = a,
        };
        int r = kube_client_request(a->client, &o, &a->discovery);
        if (r < 0) log_warn(LOG_COMPONENT("discovery"), "request failed", LOG_ERRNO(r));
}

static void on_registry_changed(void *ud, bool removed) {
        app *a = ud;
        if (a->reconciler) pp_reconciler_set_registry_removed(a->reconciler, removed);
}

/* ---- leader election ------------------------------------------------------------------- */

static void on_started_leading(kube_leaderelect *le, void *ud) {
        app *a = ud;
        log_info(LOG_COMPONENT("leader-election"), "became leader",
                 LOG_STR("identity", kube_leaderelect_identity(le)));
        a->leading = true;
        if (a->metrics) metrics_set_leader(a->metrics, a->settings.leader_election_id, true);
        update_active(a);
}

static void on_stopped_leading(kube_leaderelect *le, void *ud) {
        app *a = ud;
        a->leading = false;
        if (a->metrics) metrics_set_leader(a->metrics, a->settings.leader_election_id, false);
        update_active(a);
        if (a->stopping) return;
        /* As controller-runtime: a leader that lost its lease exits and starts afresh. */
        log_error(LOG_COMPONENT("leader-election"), "leadership lost; exiting");
        a->exit_code = 1;
        ev_break(a->loop, EVBREAK_ALL);
}

static void on_new_leader(kube_leaderelect *le, const char *identity, void *ud) {
        log_info(LOG_COMPONENT("leader-election"), "leader is", LOG_STR("identity", identity));
}

static void on_elector_stopped(kube_leaderelect *le, void *ud) {
        app *a = ud;
        ev_break(a->loop, EVBREAK_ALL);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents) {
        app *a = w->data;
        if (a->stopping) {
                ev_break(loop, EVBREAK_ALL);
                return;
        }
        log_info(LOG_COMPONENT("controller"), "stopping", LOG_INT("signal", w->signum));
        a->stopping = true;
        update_active(a);
        /* Release the Lease so that a standby takes over at once. */
        if (a->elector && kube_leaderelect_stop(a->elector, on_elector_stopped, a) >= 0) return;
        ev_break(loop, EVBREAK_ALL);
}

/* ---- set-up ------------------------------------------------------------------------------ */

static int resolve_own_namespace(app *a) {
        const char *ns = getenv("POD_NAMESPACE");
        if (!ns || !*ns) ns = kube_config_namespace(a->config);
        if (!ns || !*ns) ns = "default";
        a->own_namespace = strdup(ns);
        if (!a->own_namespace) return -ENOMEM;
        if (a->settings.distribution_namespaces_set) {
                a->distribution = (const char **)a->settings.distribution_namespaces;
                a->n_distribution = a->settings.n_distribution_namespaces;
        } else {
                a->distribution = (const char **)&a->own_namespace;
                a->n_distribution = 1;
        }
        return 0;
}

/* Registry checks and their status writes, like every write, only from the leader. */
static bool verifier_active(void *ud) {
        app *a = ud;
        return a->leading && a->synced && !a->stopping;
}

static int setup(app *a) {
        int r;
        _cleanup_free_ char *err = NULL;
        /* Tests lay out a pod's service-account files under a directory of their own. */
        const char *sa_root = getenv("PULLPOLICY_SERVICEACCOUNT_ROOT");
        if (!a->settings.kubeconfig && sa_root && *sa_root)
                r = kube_config_load_incluster(sa_root, &a->config, &err);
        else
                r = kube_config_load_default(a->settings.kubeconfig, NULL, &a->config, &err);
        if (r < 0) {
                log_error(LOG_COMPONENT("config"), err ? err : "no usable configuration",
                          LOG_ERRNO(r));
                return r;
        }
        if (kube_config_insecure(a->config))
                log_warn(
                    LOG_COMPONENT("config"),
                    "TLS verification is turned off by the kubeconfig (insecure-skip-tls-verify)");
        kube_config_set_allow_insecure_http_token(a->config, a->settings.allow_insecure_http_token);
        if (kube_config_plain_http(a->config) && kube_config_has_token(a->config)) {
                if (a->settings.allow_insecure_http_token)
                        log_warn(LOG_COMPONENT("config"),
                                 "the server is http://: the bearer token is sent in clear text "
                                 "(--allow-insecure-http-token)",
                                 LOG_STR("server", kube_config_server(a->config)));
                else
                        log_warn(LOG_COMPONENT("config"),
                                 "the server is http://: the bearer token is NOT sent and "
                                 "requests fail; use https, or --allow-insecure-http-token to "
                                 "send it in clear text",
                                 LOG_STR("server", kube_config_server(a->config)));
        }
        if ((r = resolve_own_namespace(a)) < 0) return r;

        kube_client_opts co = {.qps = a->settings.qps,
                               .burst = a->settings.burst,
                               .requests_in_flight = (unsigned)a->settings.requests_in_flight,
                               .max_requests_in_flight =
                                   (unsigned)a->settings.max_requests_in_flight};
        if ((r = kube_client_new(a->loop, a->config, &co, &a->client)) < 0) {
                log_error(LOG_COMPONENT("client"), "cannot create the API client", LOG_ERRNO(r));
                return r;
        }
        if ((r = controller_metrics_new(&a->metrics)) < 0) return r;
        kube_client_set_observer(a->client, observe_request, a);

        if (a->settings.metrics_bind_address) {
                r = httpserver_new(a->loop, a->settings.metrics_bind_address, &a->metrics_server);
                if (r >= 0) r = httpserver_add_metrics(a->metrics_server, a->metrics->registry);
                if (r < 0) {
                        log_error(LOG_COMPONENT("metrics"), "cannot serve metrics",
                                  LOG_STR("address", a->settings.metrics_bind_address),
                                  LOG_ERRNO(r));
                        return r;
                }
                log_info(LOG_COMPONENT("metrics"), "serving /metrics",
                         LOG_UINT("port", httpserver_port(a->metrics_server)));
        }
        if (a->settings.health_probe_bind_address) {
                r = httpserver_new(a->loop, a->settings.health_probe_bind_address,
                                   &a->health_server);
                if (r >= 0) r = httpserver_add_health(a->health_server, NULL, ready_check, a);
                if (r < 0) {
                        log_error(LOG_COMPONENT("health"), "cannot serve health probes",
                                  LOG_STR("address", a->settings.health_probe_bind_address),
                                  LOG_ERRNO(r));
                        return r;
                }
                log_info(LOG_COMPONENT("health"), "serving /healthz and /readyz",
                         LOG_UINT("port", httpserver_port(a->health_server)));
        }

        pp_events_opts eo = {.instance = getenv("POD_NAME"), .metrics = a->metrics};
        if ((r = pp_events_new(a->client, &eo, &a->events)) < 0) return r;

        pp_cache_opts cacheo = {
            .client = a->client,
            .namespace = a->settings.namespace,
            .global_ns = a->settings.global_pull_secret_namespace,
            .global_name = a->settings.global_pull_secret_name,
            .enqueue = cache_enqueue,
            .sa_changed = cache_sa_changed,
            .enqueue_namespace = cache_enqueue_namespace,
            .userdata = a,
            .metrics = a->metrics,
        };
        if ((r = pp_cache_new(&cacheo, &a->cache)) < 0) return r;

        pp_stale_opts so = {.client = a->client, .events = a->events, .metrics = a->metrics};
        if ((r = pp_stale_new(&so, &a->stale)) < 0) return r;

        pp_reconciler_opts ro = {
            .loop = a->loop,
            .stale = a->stale,
            .client = a->client,
            .cache = a->cache,
            .events = a->events,
            .metrics = a->metrics,
            .workers = (unsigned)a->settings.workers,
            .resync_period = a->settings.resync_period,
            .settings =
                {
                    .allowed_cluster_roles = (const char *const *)a->settings.allowed_cluster_roles,
                    .n_allowed_cluster_roles = a->settings.n_allowed_cluster_roles,
                    .distribution_namespaces = a->distribution,
                    .n_distribution_namespaces = a->n_distribution,
                    .global_pull_secret_namespace = a->settings.global_pull_secret_namespace,
                    .global_pull_secret_name = a->settings.global_pull_secret_name,
                    .verify_credentials = a->settings.verify_credentials,
                },
        };
        if ((r = pp_reconciler_new(&ro, &a->reconciler)) < 0) return r;
        if (a->settings.verify_credentials) {
                pp_verifier_opts vo = {
                    .loop = a->loop,
                    .client = a->client,
                    .cache = a->cache,
                    .verify = {.ca_file = a->settings.registry_ca_file},
                    .concurrency = (unsigned)a->settings.verify_concurrency,
                    .interval = a->settings.verify_interval,
                    .active = verifier_active,
                    .ud = a,
                };
                if ((r = pp_verifier_new(&vo, &a->verifier)) < 0) return r;
        }
        if ((r = pp_openshift_watch_new(a->client, on_registry_changed, a, &a->openshift)) < 0)
                return r;

        if (a->settings.leader_elect) {
                _cleanup_free_ char *identity = NULL;
                if ((r = kube_leaderelect_default_identity(&identity)) < 0) return r;
                kube_leaderelect_opts lo = {
                    .namespace = a->settings.leader_election_namespace
                                     ? a->settings.leader_election_namespace
                                     : a->own_namespace,
                    .name = a->settings.leader_election_id,
                    .identity = identity,
                    .lease_duration = a->settings.lease_duration,
                    .renew_deadline = a->settings.renew_deadline,
                    .retry_period = a->settings.retry_period,
                };
                static const kube_leaderelect_callbacks cb = {
                    .on_started_leading = on_started_leading,
                    .on_stopped_leading = on_stopped_leading,
                    .on_new_leader = on_new_leader,
                };
                if ((r = kube_leaderelect_new(a->client, &lo, &cb, a, &a->elector)) < 0) {
                        log_error(LOG_COMPONENT("leader-election"), "cannot set up", LOG_ERRNO(r));
                        return r;
                }
        } else
                a->leading = true;
        return 0;
}

static void teardown(app *a) {
        if (a->discovery) kube_request_cancel(a->discovery);
        a->verifier = pp_verifier_free(a->verifier);
        a->elector = kube_leaderelect_free(a->elector);
        a->openshift = pp_openshift_watch_free(a->openshift);
        a->reconciler = pp_reconciler_free(a->reconciler);
        a->stale = pp_stale_free(a->stale);
        a->cache = pp_cache_free(a->cache);
        a->metrics_server = httpserver_free(a->metrics_server);
        a->health_server = httpserver_free(a->health_server);
        /* The client first: it cancels the event POSTs whose callbacks use the recorder. */
        a->client = kube_client_free(a->client);
        a->events = pp_events_free(a->events);
        a->metrics = controller_metrics_free(a->metrics);
        a->config = kube_config_free(a->config);
        free(a->own_namespace);
        flags_settings_done(&a->settings);
}

int main(int argc, char **argv) {
        app a = {.exit_code = 0};
        _cleanup_free_ char *err = NULL;
        int r = flags_parse(argc, argv, env_get, NULL, &a.settings, &err);
        if (r < 0) {
                fprintf(stderr, "pullpolicy-controller: %s\n", err ? err : strerror(-r));
                fprintf(stderr, "Try 'pullpolicy-controller --help'.\n");
                return 2;
        }
        if (a.settings.show_help) {
                flags_usage(stdout, "pullpolicy-controller");
                flags_settings_done(&a.settings);
                return 0;
        }
        if (a.settings.show_version) {
                printf("pullpolicy-controller %s\n", PP_VERSION);
                flags_settings_done(&a.settings);
                return 0;
        }
        log_configure(
            &(log_config){.format = a.settings.log_format, .level = a.settings.log_level});
        signal(SIGPIPE, SIG_IGN);

        a.loop = ev_default_loop(EVFLAG_AUTO);
        if (!a.loop) {
                fprintf(stderr, "pullpolicy-controller: cannot create the event loop\n");
                return 1;
        }
        r = setup(&a);
        if (r < 0) {
                a.exit_code = 1;
                goto out;
        }
        log_info(LOG_COMPONENT("controller"), "starting", LOG_STR("version", PP_VERSION),
                 LOG_STR("server", kube_config_server(a.config)),
                 LOG_STR("namespace", a.settings.namespace ? a.settings.namespace : "(all)"),
                 LOG_STR("ownNamespace", a.own_namespace),
                 LOG_BOOL("leaderElect", a.settings.leader_elect));

        ev_signal_init(&a.sigterm, on_signal, SIGTERM);
        ev_signal_init(&a.sigint, on_signal, SIGINT);
        a.sigterm.data = a.sigint.data = &a;
        ev_signal_start(a.loop, &a.sigterm);
        ev_signal_start(a.loop, &a.sigint);
        ev_timer_init(&a.sync_check, on_sync_check, 0.05, 0.05);
        a.sync_check.data = &a;
        ev_timer_start(a.loop, &a.sync_check);
        ev_timer_init(&a.discovery_timer, discover, 0, DISCOVERY_INTERVAL);
        a.discovery_timer.data = &a;
        ev_timer_start(a.loop, &a.discovery_timer);

        if ((r = pp_cache_start(a.cache)) < 0) {
                log_error(LOG_COMPONENT("cache"), "cannot start watching", LOG_ERRNO(r));
                a.exit_code = 1;
                goto out;
        }
        if (a.elector && (r = kube_leaderelect_start(a.elector)) < 0) {
                log_error(LOG_COMPONENT("leader-election"), "cannot start", LOG_ERRNO(r));
                a.exit_code = 1;
                goto out;
        }

        ev_run(a.loop, 0);
        log_info(LOG_COMPONENT("controller"), "stopped", LOG_INT("exitCode", a.exit_code));
out:
        if (a.loop) {
                ev_timer_stop(a.loop, &a.sync_check);
                ev_timer_stop(a.loop, &a.discovery_timer);
                ev_signal_stop(a.loop, &a.sigterm);
                ev_signal_stop(a.loop, &a.sigint);
        }
        teardown(&a);
        if (a.loop) ev_loop_destroy(a.loop);
        return a.exit_code;
}
