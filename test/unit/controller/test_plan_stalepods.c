/* SPDX-License-Identifier: Apache-2.0 */
/*
 * R13 in the planner (plan_stalepods.c) and the reconciler's stale-pod step (stalepods_act.c):
 * which Pending pods of a policy's subject accounts are stale, how the status reports them,
 * the Event sent once per pod, and the opt-in deletions (owned pods only, preconditions on uid
 * and resourceVersion, at most per_minute per policy).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "model.h"
#include "plan.h"
#include "stalepods.h"
#include "stalepods_act.h"
#include "util/macro.h"

#define NOW      1800000000LL
#define PODS_MAX 64

typedef struct world {
        model_namespace *ns;
        model_sa *sas[4];
        size_t n_sas;
        model_secret *secret;
        model_policy *policy;
        stale_pod *pods[PODS_MAX];
        size_t n_pods;
} world;

static json_object *parse(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *s = NULL;
        assert_true(vasprintf(&s, fmt, ap) > 0);
        va_end(ap);
        json_object *o = json_tokener_parse(s);
        if (!o) fail_msg("bad JSON: %s", s);
        free(s);
        return o;
}

#define LINK_ROBOT                                                                                 \
        "{\\\"v\\\":1,\\\"links\\\":[{\\\"policy\\\":\\\"ns/p\\\",\\\"secret\\\":\\\"robot\\\","   \
        "\\\"for\\\":[\\\"pull\\\"]}]}"

/* An account of ns with robot in .imagePullSecrets; linked by ns/p when linked is true. */
static void add_sa(world *w, const char *name, bool linked) {
        json_object *o =
            parse("{\"metadata\":{\"name\":\"%s\",\"namespace\":\"ns\",\"uid\":\"u-%s\","
                  "\"resourceVersion\":\"1\",\"creationTimestamp\":\"2020-01-01T00:00:00Z\"%s},"
                  "\"imagePullSecrets\":[{\"name\":\"robot\"},{\"name\":\"old\"}]}",
                  name, name,
                  linked ? ",\"annotations\":{\"pullpolicy.io/links\":\"" LINK_ROBOT "\"}" : "");
        assert_int_equal(model_sa_decode(o, &w->sas[w->n_sas++]), 0);
        json_object_put(o);
}

/* A Pending pod of sa: its imagePullSecrets (JSON array), a waiting reason, owner JSON or "". */
static void add_pod(world *w, const char *name, const char *sa, const char *secrets,
                    const char *reason, const char *owners) {
        assert_true(w->n_pods < PODS_MAX);
        json_object *o = parse(
            "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"ns\",\"uid\":\"uid-%s\","
            "\"resourceVersion\":\"rv-%s\"%s%s},\"spec\":{\"serviceAccountName\":\"%s\","
            "\"imagePullSecrets\":%s},\"status\":{\"phase\":\"Pending\",\"containerStatuses\":"
            "[{\"name\":\"c\",\"state\":{\"waiting\":{\"reason\":\"%s\"}}}]}}",
            name, name, name, *owners ? ",\"ownerReferences\":" : "", owners, sa, secrets, reason);
        assert_int_equal(stale_pod_decode(o, true, &w->pods[w->n_pods++]), 0);
        json_object_put(o);
}

#define RS "[{\"kind\":\"ReplicaSet\",\"name\":\"web\",\"uid\":\"x\",\"controller\":true}]"

static void world_init(world *w, bool restart) {
        memset(w, 0, sizeof(*w));
        json_object *o =
            parse("{\"metadata\":{\"name\":\"ns\"},\"status\":{\"phase\":\"Active\"}}");
        assert_int_equal(model_namespace_decode(o, &w->ns), 0);
        json_object_put(o);
        o = parse("{\"type\":\"kubernetes.io/dockerconfigjson\",\"metadata\":{\"name\":\"robot\","
                  "\"namespace\":\"ns\",\"resourceVersion\":\"1\"},\"data\":{\".dockerconfigjson\":"
                  "\"eyJhdXRocyI6eyJxdWF5LmlvIjp7ImF1dGgiOiJlQT09In19fQ==\"}}");
        assert_int_equal(model_secret_decode(o, &w->secret), 0);
        json_object_put(o);
        o = parse("{\"metadata\":{\"name\":\"p\",\"namespace\":\"ns\",\"uid\":\"pu\","
                  "\"generation\":1,\"resourceVersion\":\"5\","
                  "\"finalizers\":[\"pullpolicy.io/cleanup\"]},"
                  "\"spec\":{\"pullSecrets\":[{\"name\":\"robot\"}],\"dockercfg\":{\"wait\":"
                  "\"Never\"},\"restartStalePods\":%s}}",
                  restart ? "true" : "false");
        assert_int_equal(model_policy_decode(o, &w->policy), 0);
        json_object_put(o);
        assert_non_null(w->policy->spec);
}

static void world_done(world *w) {
        model_namespace_free(w->ns);
        for (size_t i = 0; i < w->n_sas; i++) model_sa_free(w->sas[i]);
        model_secret_free(w->secret);
        model_policy_free(w->policy);
        for (size_t i = 0; i < w->n_pods; i++) stale_pod_free(w->pods[i]);
}

static plan *world_plan(world *w) {
        plan_memsnap *m = NULL;
        assert_int_equal(plan_memsnap_new(&m), 0);
        assert_int_equal(plan_memsnap_add_namespace(m, w->ns), 0);
        for (size_t i = 0; i < w->n_sas; i++)
                assert_int_equal(plan_memsnap_add_sa(m, w->sas[i]), 0);
        assert_int_equal(plan_memsnap_add_secret(m, w->secret), 0);
        assert_int_equal(plan_memsnap_add_policy(m, w->policy), 0);
        for (size_t i = 0; i < w->n_pods; i++)
                assert_int_equal(plan_memsnap_add_pod(m, w->pods[i]), 0);
        plan_settings set = {.now = NOW};
        plan_snapshot snap = plan_memsnap_snapshot(m);
        plan *pl = NULL;
        assert_int_equal(plan_policy(w->policy, &snap, &set, &pl), 0);
        plan_memsnap_free(m);
        return pl;
}

static const model_problem *problem_for(const plan *pl, const char *pod) {
        for (size_t i = 0; i < pl->status.n_problems; i++)
                if (streq(pl->status.problems[i].reason, "StalePod") &&
                    streq_ptr(pl->status.problems[i].name, pod))
                        return &pl->status.problems[i];
        return NULL;
}

static const plan_stale_pod *stale_for(const plan *pl, const char *pod) {
        for (size_t i = 0; i < pl->n_stale_pods; i++)
                if (streq(pl->stale_pods[i].name, pod)) return &pl->stale_pods[i];
        return NULL;
}

static void test_which_pods_are_stale(void **state) {
        world w;
        world_init(&w, false);
        add_sa(&w, "app", true);
        add_sa(&w, "unlinked", false); /* robot is there, but not by this policy's link */
        add_pod(&w, "owned", "app", "[]", "ImagePullBackOff", RS);
        add_pod(&w, "bare", "app", "[{\"name\":\"old\"}]", "ErrImagePull", "");
        add_pod(&w, "pulling", "app", "[]", "ContainerCreating", RS);
        add_pod(&w, "fresh", "app", "[{\"name\":\"robot\"},{\"name\":\"old\"}]", "ErrImagePull",
                RS);
        /* a list of its own (a name the account never had): recreating it would not help */
        add_pod(&w, "own-list", "app", "[{\"name\":\"mine\"}]", "ErrImagePull", RS);
        add_pod(&w, "other-sa", "unlinked", "[]", "ErrImagePull", RS);
        plan *pl = world_plan(&w);
        assert_true(pl->has_status);
        assert_int_equal(pl->status.stale_pods, 2);
        assert_int_equal(pl->n_stale_pods, 2);
        const plan_stale_pod *o = stale_for(pl, "owned"), *b = stale_for(pl, "bare");
        assert_non_null(o);
        assert_non_null(b);
        assert_true(o->restartable);
        assert_false(b->restartable);
        assert_string_equal(o->missing, "robot");
        assert_string_equal(o->uid, "uid-owned");
        assert_string_equal(o->resource_version, "rv-owned");
        assert_string_equal(o->service_account, "app");
        assert_false(pl->restart_stale_pods);
        const model_problem *pr = problem_for(pl, "bare");
        assert_non_null(pr);
        assert_string_equal(pr->namespace, "ns");
        assert_non_null(strstr(pr->message, "robot"));
        assert_non_null(strstr(pr->message, "recreated"));
        assert_non_null(problem_for(pl, "owned"));
        assert_null(problem_for(pl, "pulling"));
        assert_null(problem_for(pl, "fresh"));
        assert_null(problem_for(pl, "own-list"));
        assert_null(problem_for(pl, "other-sa"));
        /* Ready is not lowered; it says so; the policy gets no event per stale pod */
        assert_string_equal(pl->status.ready_reason, "Applied");
        assert_non_null(strstr(pl->status.ready_message, "2 stale pods must be recreated"));
        for (size_t i = 0; i < pl->n_events; i++)
                assert_string_not_equal(pl->events[i].reason, "StalePod");
        plan_free(pl);
        world_done(&w);
}

static void test_problems_capped_count_not(void **state) {
        world w;
        world_init(&w, true);
        add_sa(&w, "app", true);
        char name[32];
        for (int i = 0; i < 25; i++) {
                snprintf(name, sizeof(name), "p%02d", i);
                add_pod(&w, name, "app", "[]", "ErrImagePull", RS);
        }
        plan *pl = world_plan(&w);
        assert_int_equal(pl->status.stale_pods, 25);
        assert_int_equal(pl->n_stale_pods, 25);
        assert_true(pl->restart_stale_pods);
        size_t n = 0;
        for (size_t i = 0; i < pl->status.n_problems; i++)
                if (streq(pl->status.problems[i].reason, "StalePod")) n++;
        assert_int_equal(n, 10);
        plan_free(pl);
        world_done(&w);
}

/* ---- the stale-pod step ----------------------------------------------------------------- */

typedef struct seen {
        int events_warning, events_deleted, deletes;
        char last_delete_path[512], last_delete_body[512];
} seen;

static void observe_event(void *ud, kube_method m, const char *path, const char *body) {
        seen *s = ud;
        if (m != KUBE_POST || !body) return;
        if (strstr(body, "StalePullSecrets")) s->events_warning++;
        if (strstr(body, "StalePodDeleted")) s->events_deleted++;
}

static void observe_delete(void *ud, const char *path, const char *body) {
        seen *s = ud;
        s->deletes++;
        snprintf(s->last_delete_path, sizeof(s->last_delete_path), "%s", path);
        snprintf(s->last_delete_body, sizeof(s->last_delete_body), "%s", body);
}

static void test_act_once_and_rate(void **state) {
        seen s = {0};
        pp_events_opts eo = {.observe = observe_event, .observe_userdata = &s};
        pp_events *ev = NULL;
        assert_int_equal(pp_events_new(NULL, &eo, &ev), 0);
        pp_stale_opts so = {
            .events = ev, .per_minute = 2, .observe = observe_delete, .observe_ud = &s};
        pp_stale *st = NULL;
        assert_int_equal(pp_stale_new(&so, &st), 0);

        world w;
        world_init(&w, false);
        add_sa(&w, "app", true);
        add_pod(&w, "a", "app", "[]", "ErrImagePull", RS);
        add_pod(&w, "b", "app", "[]", "ErrImagePull", RS);
        add_pod(&w, "c", "app", "[]", "ErrImagePull", RS);
        add_pod(&w, "bare", "app", "[]", "ErrImagePull", "");
        plan *pl = world_plan(&w);
        assert_int_equal(pl->n_stale_pods, 4);
        /* without the opt-in: an Event per pod, no deletion */
        assert_int_equal(pp_stale_act(st, &w.policy->meta, pl, 100.0), -1);
        assert_int_equal(s.events_warning, 4);
        assert_int_equal(s.deletes, 0);
        /* the next reconcile: nothing again */
        assert_int_equal(pp_stale_act(st, &w.policy->meta, pl, 101.0), -1);
        assert_int_equal(s.events_warning, 4);

        /* the opt-in: owned pods only, two a minute, then come back */
        pl->restart_stale_pods = true;
        long long retry = pp_stale_act(st, &w.policy->meta, pl, 102.0);
        assert_int_equal(s.deletes, 2);
        assert_true(retry > 0 && retry <= 30);
        assert_non_null(strstr(s.last_delete_path, "/api/v1/namespaces/ns/pods/"));
        assert_null(strstr(s.last_delete_path, "bare"));
        assert_non_null(strstr(s.last_delete_body, "\"preconditions\""));
        assert_non_null(strstr(s.last_delete_body, "\"uid\":\"uid-"));
        assert_non_null(strstr(s.last_delete_body, "\"resourceVersion\":\"rv-"));
        /* a deletion under way is not started again; the third waits for a token */
        assert_int_equal(pp_stale_act(st, &w.policy->meta, pl, 103.0) > 0, 1);
        assert_int_equal(s.deletes, 2);
        assert_int_equal(pp_stale_act(st, &w.policy->meta, pl, 133.0), -1);
        assert_int_equal(s.deletes, 3);
        assert_null(strstr(s.last_delete_path, "bare"));
        assert_int_equal(pp_stale_act(st, &w.policy->meta, pl, 500.0), -1);
        assert_int_equal(s.deletes, 3); /* never the bare pod */

        /* a pod no longer stale is forgotten: stale again, it is told again */
        plan_free(pl);
        stale_pod_free(w.pods[--w.n_pods]); /* bare */
        pl = world_plan(&w);
        assert_int_equal(pp_stale_act(st, &w.policy->meta, pl, 700.0), -1);
        assert_int_equal(s.events_warning, 4);
        plan_free(pl);
        add_pod(&w, "bare", "app", "[]", "ErrImagePull", "");
        pl = world_plan(&w);
        pp_stale_act(st, &w.policy->meta, pl, 800.0); /* past the recorder's dedupe window */
        assert_int_equal(s.events_warning, 5);
        /* the policy gone: forgotten, nothing sent */
        assert_int_equal(pp_stale_act(st, &w.policy->meta, NULL, 802.0), -1);
        assert_int_equal(pp_stale_act(NULL, &w.policy->meta, pl, 802.0), -1);

        plan_free(pl);
        world_done(&w);
        pp_stale_free(st);
        pp_events_free(ev);
        pp_stale_free(NULL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_which_pods_are_stale),
            cmocka_unit_test(test_problems_capped_count_not),
            cmocka_unit_test(test_act_once_and_rate),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
