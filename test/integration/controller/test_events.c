/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The event recorder (controller/events.c) against the real local control plane:
 * a flood of similar events ends up as a few events plus one aggregated event whose
 * count and message the API server accepted on POST and on the merge PATCH, as
 * `kubectl get events` shows them to a user. The involved PullPolicy need not exist:
 * the API server does not check it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "events.h"
#include "kube/client.h"
#include "kube/config.h"
#include "kube/ratelimit.h"
#include "kubeclient.h"
#include "kubetest.h"
#include "testenv.h"
#include "util/macro.h"

#define RUN_TIMEOUT_S 60.0

static struct ev_loop *loop;
static kube_config *cfg;
static kube_client *client;

static int setup(void **state) {
        if (testenv_group_setup(state) < 0) return -1;
        if (kubeclient_open(&loop, &cfg, &client) < 0) return -1;
        return 0;
}

static int teardown(void **state) {
        kubeclient_close(&loop, &cfg, &client);
        return 0;
}

/* Runs the loop until the recorder started `sent` POSTs and `patched` PATCHes and all ended. */
static void run_until(pp_events *e, unsigned long sent, unsigned long patched) {
        double deadline = kt_now() + RUN_TIMEOUT_S;
        for (;;) {
                pp_events_stats st;
                kube_client_stats cs;
                pp_events_get_stats(e, &st);
                kube_client_get_stats(client, &cs);
                if (st.sent == sent && st.patched == patched && cs.active == 0) break;
                if (kt_now() > deadline)
                        fail_msg("sent %lu/%lu patched %lu/%lu active %lu", st.sent, sent,
                                 st.patched, patched, cs.active);
                ev_run(loop, EVRUN_ONCE);
        }
        pp_events_stats st;
        pp_events_get_stats(e, &st);
        assert_int_equal(st.failed, 0);
}

static void flood(pp_events *e, const pp_object_ref *ref, int first, int n) {
        char msg[128];
        for (int i = first; i < first + n; i++) {
                snprintf(msg, sizeof(msg),
                         "linked secret quay-creds to service account t%d/default", i);
                assert_true(pp_events_record(e, ref, false, "Linked", msg, kube_now()) >= 0);
        }
}

/* The events of reason in ns, as kubectl lists them. */
static json_object *events_of(const char *ns, const char *reason) {
        json_object *o =
            kt_kjson("get events -n %s --field-selector reason=%s -o json", ns, reason);
        assert_non_null(o);
        return o;
}

/* The one item whose message starts with prefix (the test fails unless there is exactly one). */
static json_object *only_with_prefix(json_object *list, const char *prefix) {
        json_object *hit = NULL;
        for (size_t i = 0; i < kt_jlen(list, "items"); i++) {
                json_object *it = kt_jidx(list, "items", i);
                const char *m = kt_jstr(it, "message");
                if (m && strncmp(m, prefix, strlen(prefix)) == 0) {
                        assert_null(hit);
                        hit = it;
                }
        }
        assert_non_null(hit);
        return hit;
}

static void test_aggregated_event_on_server(void **state) {
        char *ns = testenv_unique_name("ev-agg");
        assert_non_null(ns);
        assert_int_equal(kt_kubectl("create namespace %s >/dev/null", ns), 0);
        pp_object_ref ref = {"pullpolicy.io/v1alpha1", "PullPolicy", ns, "wide", "uid-wide"};
        pp_events_opts o = {.flush_seconds = 0.2};
        pp_events *e = NULL;
        assert_int_equal(pp_events_new(client, &o, &e), 0);

        /* 15 similar: 10 one by one, 5 in one aggregated event; then a warning. */
        flood(e, &ref, 0, 15);
        assert_int_equal(pp_events_record(e, &ref, true, "DockercfgTimeout",
                                          "service account t3/builder has no dockercfg secret",
                                          kube_now()),
                         1);
        run_until(e, 12, 0);
        json_object *list = events_of(ns, "Linked");
        assert_int_equal(kt_jlen(list, "items"), 11);
        json_object *agg = only_with_prefix(list, "(combined from 5 similar events): ");
        assert_string_equal(kt_jstr(agg, "message"),
                            "(combined from 5 similar events): linked secret quay-creds to service "
                            "account t14/default");
        assert_int_equal(kt_jint(agg, "count"), 5);
        assert_string_equal(kt_jstr(agg, "type"), "Normal");
        assert_string_equal(kt_jstr(agg, "involvedObject.name"), "wide");
        char *agg_name = strdup(kt_jstr(agg, "metadata.name"));
        assert_non_null(agg_name);
        json_object_put(list);
        list = events_of(ns, "DockercfgTimeout");
        assert_int_equal(kt_jlen(list, "items"), 1);
        assert_string_equal(kt_jstr(kt_jidx(list, "items", 0), "type"), "Warning");
        json_object_put(list);

        /* Three more: counted on the same event by a PATCH, no new event. */
        flood(e, &ref, 15, 3);
        run_until(e, 12, 1);
        list = events_of(ns, "Linked");
        assert_int_equal(kt_jlen(list, "items"), 11);
        agg = only_with_prefix(list, "(combined from 8 similar events): ");
        assert_string_equal(kt_jstr(agg, "metadata.name"), agg_name);
        assert_int_equal(kt_jint(agg, "count"), 8);
        assert_string_equal(kt_jstr(agg, "message"),
                            "(combined from 8 similar events): linked secret quay-creds to service "
                            "account t17/default");
        json_object_put(list);

        free(agg_name);
        pp_events_free(e);
        assert_int_equal(kt_kubectl("delete namespace %s --wait=false >/dev/null", ns), 0);
        free(ns);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_aggregated_event_on_server),
        };
        return cmocka_run_group_tests_name("test_events", tests, setup, teardown);
}
