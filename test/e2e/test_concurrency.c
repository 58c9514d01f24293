/* SPDX-License-Identifier: Apache-2.0 */
/*
 * e2e: R9, never lose others' data. While the controller links and unlinks a secret on a
 * set of service accounts (the test flips the policy between one and two pull secrets),
 * a concurrent writer — a child process speaking HTTPS to the apiserver with the admin
 * certificate, as a person's script or Argo CD would — adds and removes ITS OWN entries
 * ("w-<n>") in the same accounts' .imagePullSecrets with read-modify-write PUTs guarded by
 * resourceVersion, retrying on 409. The legacy provisioner writes the same accounts too.
 *
 * At the end, for every account: the writer's entries are exactly those of its last
 * successful write (none lost, none removed one resurrected), OpenShift's dockercfg secret
 * is still in both lists, and the controller's links are all present, once.
 */
#include <curl/curl.h>
#include <signal.h>

#include "e2e.h"

#define N_SA           6
#define RUN_S          20.0
#define FLIP_S         0.4
#define WRITER_MAX_OWN 3

/* ---- the writer (child process; no cmocka in here) ---------------------------------- */

typedef struct wbuf {
        char *data;
        size_t len;
} wbuf;

static size_t wcollect(char *p, size_t size, size_t n, void *ud) {
        wbuf *b = ud;
        char *nd = realloc(b->data, b->len + size * n + 1);
        if (!nd) return 0;
        memcpy(nd + b->len, p, size * n);
        b->len += size * n;
        nd[b->len] = 0;
        b->data = nd;
        return size * n;
}

/* One request; the HTTP status, or -1. *body receives the response (caller frees). */
static long whttp_ct(CURL *c, const char *method, const char *url, const char *ctype,
                     const char *in, char **body) {
        wbuf b = {0};
        struct curl_slist *h = NULL;
        char ct[128];
        snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
        h = curl_slist_append(h, ct);
        h = curl_slist_append(h, "Accept: application/json");
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, in);
        if (!in) curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, wcollect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
        CURLcode r = curl_easy_perform(c);
        long code = -1;
        if (r == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        curl_slist_free_all(h);
        *body = b.data;
        return code;
}

static long whttp(CURL *c, const char *method, const char *url, const char *in, char **body) {
        return whttp_ct(c, method, url, "application/json", in, body);
}

/* An easy handle with the admin credentials of the test environment, or NULL. */
static CURL *admin_curl(void) {
        char ca[4096], cert[4096], key[4096];
        snprintf(ca, sizeof(ca), "%s/pki/ca.crt", testenv_dir());
        snprintf(cert, sizeof(cert), "%s/pki/admin.crt", testenv_dir());
        snprintf(key, sizeof(key), "%s/pki/admin.key", testenv_dir());
        CURL *c = curl_easy_init();
        if (!c) return NULL;
        curl_easy_setopt(c, CURLOPT_CAINFO, ca);
        curl_easy_setopt(c, CURLOPT_SSLCERT, cert);
        curl_easy_setopt(c, CURLOPT_SSLKEY, key);
        return c;
}

static bool is_own(const char *name) {
        return name && strncmp(name, "w-", 2) == 0;
}

static const char *const lists[] = {"imagePullSecrets", "secrets"};

/*
 * Runs for run_s seconds over the first n_lists of lists[]; writes "<sa> <list> <own
 * entries...>" per account and list (after its last successful PUT) and a "stats" line to
 * out_path. Exit status 0 when it could work.
 */
static int writer_main(const char *ns, size_t n_lists, double run_s, const char *out_path) {
        CURL *c = admin_curl();
        if (!c) return 2;

        char *own[N_SA][2][WRITER_MAX_OWN + 1] = {{{0}}};
        size_t n_own[N_SA][2] = {{0}};
        unsigned long seq = 0, writes = 0, conflicts = 0, errors = 0;
        double end = kt_now() + run_s;
        unsigned rnd = (unsigned)getpid();
        for (size_t it = 0; kt_now() < end; it++) {
                size_t i = it % N_SA, li = (it / N_SA) % n_lists;
                const char *field = lists[li];
                char **mine = own[i][li];
                size_t *n = &n_own[i][li];
                char url[1024];
                snprintf(url, sizeof(url), "%s/api/v1/namespaces/%s/serviceaccounts/sa-%zu",
                         testenv_server(), ns, i);
                /* choose the change once, then re-apply it on every retry */
                rnd = rnd * 1103515245u + 12345u;
                bool add = *n == 0 || (*n < WRITER_MAX_OWN && (rnd >> 16) % 2 == 0);
                char added[64] = "";
                size_t drop = add ? 0 : (rnd >> 8) % *n;
                if (add) snprintf(added, sizeof(added), "w-%lu", ++seq);
                for (int attempt = 0; attempt < 50; attempt++) {
                        char *body = NULL;
                        long code = whttp(c, "GET", url, NULL, &body);
                        json_object *sa = code == 200 ? json_tokener_parse(body) : NULL;
                        free(body);
                        if (!sa) {
                                errors++;
                                break;
                        }
                        json_object *old = kt_jget(sa, field);
                        json_object *list = json_object_new_array();
                        /* keep everything of others; of ours, the set we believe in, minus drop */
                        for (size_t k = 0; old && k < json_object_array_length(old); k++) {
                                json_object *e = json_object_array_get_idx(old, k);
                                const char *nm = kt_jstr(e, "name");
                                if (is_own(nm)) continue;
                                json_object_array_add(list, json_object_get(e));
                        }
                        for (size_t k = 0; k < *n; k++) {
                                if (!add && k == drop) continue;
                                json_object *e = json_object_new_object();
                                json_object_object_add(e, "name", json_object_new_string(mine[k]));
                                json_object_array_add(list, e);
                        }
                        if (add) {
                                json_object *e = json_object_new_object();
                                json_object_object_add(e, "name", json_object_new_string(added));
                                json_object_array_add(list, e);
                        }
                        json_object_object_add(sa, field, list);
                        code = whttp(c, "PUT", url, json_object_to_json_string(sa), &body);
                        free(body);
                        json_object_put(sa);
                        if (code == 200) {
                                writes++;
                                if (add) {
                                        mine[(*n)++] = strdup(added);
                                } else {
                                        free(mine[drop]);
                                        for (size_t k = drop; k + 1 < *n; k++)
                                                mine[k] = mine[k + 1];
                                        (*n)--;
                                }
                                break;
                        }
                        if (code == 409) {
                                conflicts++;
                                continue;
                        }
                        /*
                         * Unknown outcome (a transport error): the server's list becomes the
                         * writer's belief, so that a lost answer is not mistaken for a loss.
                         */
                        errors++;
                        body = NULL;
                        if (whttp(c, "GET", url, NULL, &body) == 200) {
                                json_object *now = json_tokener_parse(body);
                                json_object *l = kt_jget(now, field);
                                for (size_t k = 0; k < *n; k++) free(mine[k]);
                                *n = 0;
                                for (size_t k = 0; l && k < json_object_array_length(l); k++) {
                                        const char *nm =
                                            kt_jstr(json_object_array_get_idx(l, k), "name");
                                        if (is_own(nm) && *n < WRITER_MAX_OWN + 1)
                                                mine[(*n)++] = strdup(nm);
                                }
                                json_object_put(now);
                        }
                        free(body);
                        break;
                }
        }
        curl_easy_cleanup(c);
        FILE *f = fopen(out_path, "w");
        if (!f) return 3;
        for (size_t i = 0; i < N_SA; i++)
                for (size_t li = 0; li < n_lists; li++) {
                        fprintf(f, "sa-%zu %s", i, lists[li]);
                        for (size_t k = 0; k < n_own[i][li]; k++) {
                                fprintf(f, " %s", own[i][li][k]);
                                free(own[i][li][k]);
                        }
                        fprintf(f, "\n");
                }
        fprintf(f, "stats writes=%lu conflicts=%lu errors=%lu\n", writes, conflicts, errors);
        fclose(f);
        return writes > 0 ? 0 : 4;
}

/* ---- the test ------------------------------------------------------------------------ */

/* The policy's pullSecrets: creds always; creds2 (pull, or pull and mount) when two. */
static const char *secrets_json(bool two, bool mount) {
        if (!two) return "[{\"name\":\"creds\"}]";
        return mount ? "[{\"name\":\"creds\"},{\"name\":\"creds2\",\"for\":[\"pull\",\"mount\"]}]"
                     : "[{\"name\":\"creds\"},{\"name\":\"creds2\"}]";
}

static double metric(const char *filter) {
        double v = 0;
        assert_true(testenv_apiserver_metric("apiserver_request_total", filter, &v) >= 0);
        return v;
}

/*
 * The scenario: N_SA accounts selected by a policy; the writer runs RUN_S seconds on
 * .imagePullSecrets (and .secrets when mount) while the policy flips creds2 in and out
 * every FLIP_S. With delete_at_end the policy is deleted DELETE_BEFORE_END seconds before
 * the writer stops (its clean-up races the writer too); else it ends wanting both.
 */
#define DELETE_BEFORE_END 4.0
static void run_churn(const char *suffix, bool mount, bool delete_at_end) {
        char *ns = e2e_ns(suffix, NULL);
        e2e_pull_secret(ns, "creds", "registry.churn.example.com", "ch");
        e2e_pull_secret(ns, "creds2", "registry2.churn.example.com", "ch");
        for (int i = 0; i < N_SA; i++)
                kt_apply("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa-%d\n"
                         "  namespace: %s\n  labels: {churn: \"yes\"}\n",
                         i, ns);
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: churn\n  namespace: %s\n"
                 "spec:\n  subjects:\n    serviceAccountSelector:\n"
                 "      matchLabels: {churn: \"yes\"}\n"
                 "  pullSecrets: %s\n",
                 ns, secrets_json(true, mount));
        e2e_wait_applied(ns, "churn", E2E_WAIT_S);
        const char *c409 = "code=\"409\",resource=\"serviceaccounts\"";
        double conflicts0 = metric(c409);

        char out_path[4096];
        snprintf(out_path, sizeof(out_path), "%s/test-logs/e2e-concurrency-writer-%s.txt",
                 kt_build(), suffix);
        unlink(out_path);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) _exit(writer_main(ns, mount ? 2 : 1, RUN_S, out_path));

        /*
         * The controller unlinks and relinks creds2 on every account, again and again: merge
         * patches of the policy over HTTPS (kubectl is too slow for a steady churn).
         */
        CURL *c = admin_curl();
        assert_non_null(c);
        char url[1024];
        snprintf(url, sizeof(url),
                 "%s/apis/pullpolicy.io/v1alpha1/namespaces/%s/pullpolicies/churn",
                 testenv_server(), ns);
        double end = kt_now() + RUN_S - (delete_at_end ? DELETE_BEFORE_END : 0);
        unsigned flips = 0;
        while (kt_now() < end) {
                char patch[512], *body = NULL;
                snprintf(patch, sizeof(patch), "{\"spec\":{\"pullSecrets\":%s}}",
                         secrets_json(flips % 2 == 1, mount));
                long code = whttp_ct(c, "PATCH", url, "application/merge-patch+json", patch, &body);
                free(body);
                assert_int_equal(code, 200);
                flips++;
                kt_sleep(FLIP_S);
        }
        if (delete_at_end) {
                char *body = NULL;
                long code = whttp(c, "DELETE", url, NULL, &body);
                free(body);
                assert_int_equal(code, 200);
        }
        curl_easy_cleanup(c);
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        fprintf(stderr, "policy flipped %u times%s\n", flips,
                delete_at_end ? ", then deleted while the writer ran" : "");
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);

        if (delete_at_end) {
                e2e_wait_out(E2E_WAIT_S, "gone",
                             "get ppol churn -n '%s' -o name 2>/dev/null | grep -q . "
                             "&& echo present || echo gone",
                             ns);
        } else {
                kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                         "metadata:\n  name: churn\n  namespace: %s\n"
                         "spec:\n  subjects:\n    serviceAccountSelector:\n"
                         "      matchLabels: {churn: \"yes\"}\n"
                         "  pullSecrets: %s\n",
                         ns, secrets_json(true, mount));
                e2e_wait_applied(ns, "churn", 2 * E2E_WAIT_S);
                for (int i = 0; i < N_SA; i++) {
                        char sa[32];
                        snprintf(sa, sizeof(sa), "sa-%d", i);
                        e2e_wait_link(ns, sa, "pull", "creds2", 1, E2E_WAIT_S);
                }
        }
        double conflicts = metric(c409) - conflicts0;
        char *cm = NULL;
        long mcode = 0;
        double ctrl409 = -1;
        if (tproc_http_get(E2E.controller.metrics_port, "/metrics", &mcode, &cm) == 0 && cm)
                testenv_metric_sum(cm, "pullpolicy_api_requests_total", "code=\"409\"", &ctrl409);
        free(cm);

        FILE *f = fopen(out_path, "r");
        assert_non_null(f);
        char line[4096];
        size_t lost = 0, stale = 0;
        while (fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\n")] = 0;
                if (strncmp(line, "stats", 5) == 0) {
                        fprintf(stderr,
                                "writer %s; apiserver 409s on serviceaccounts: %.0f; the "
                                "controller's 409s (its /metrics, since its start): %.0f\n",
                                line, conflicts, ctrl409);
                        continue;
                }
                char *save = NULL, *sa = strtok_r(line, " ", &save);
                const char *field = strtok_r(NULL, " ", &save);
                json_object *o = e2e_sa(ns, sa);
                assert_non_null(o);
                char *names = e2e_names(o, field);
                size_t n_want = 0;
                for (char *w = strtok_r(NULL, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
                        n_want++;
                        if (e2e_count_name(o, field, w) != 1) {
                                fprintf(stderr, "LOST: %s/%s %s lacks the writer's %s: [%s]\n", ns,
                                        sa, field, w, names);
                                lost++;
                        }
                }
                size_t n_own = 0;
                for (size_t k = 0; k < kt_jlen(o, field); k++)
                        if (is_own(kt_jstr(kt_jidx(o, field, k), "name"))) n_own++;
                if (n_own != n_want) {
                        fprintf(stderr,
                                "STALE: %s/%s %s has %zu writer entries, the writer "
                                "left %zu: [%s]\n",
                                ns, sa, field, n_own, n_want, names);
                        stale++;
                }
                fprintf(stderr, "%s %s: [%s]\n", sa, field, names);
                /* the controller's links (or their absence) and OpenShift's secret */
                bool pull = strcmp(field, "imagePullSecrets") == 0;
                int want_links = delete_at_end ? 0 : 1;
                if (pull) assert_int_equal(e2e_count_name(o, field, "creds"), want_links);
                if (pull || mount) assert_int_equal(e2e_count_name(o, field, "creds2"), want_links);
                char pfx[64];
                snprintf(pfx, sizeof(pfx), "%s-dockercfg-", sa);
                assert_non_null(e2e_find_prefix(o, field, pfx));
                if (delete_at_end) assert_null(kt_annotation(o, "pullpolicy.io/links"));
                free(names);
                json_object_put(o);
        }
        fclose(f);
        assert_int_equal(lost, 0);
        assert_int_equal(stale, 0);
        if (!delete_at_end) {
                e2e_wait_out(E2E_WAIT_S, "6/0",
                             "get ppol churn -n '%s' -o jsonpath='{.status.linkedServiceAccounts}/"
                             "{.status.waitingServiceAccounts}'",
                             ns);
                e2e_policy_delete(ns, "churn");
        }
        e2e_ns_delete(ns);
        free(ns);
}

static void test_concurrent_writer(void **state) {
        run_churn("churn", false, false);
}

/* The same on both lists (mount links), ending with the policy deleted mid-churn. */
static void test_concurrent_writer_mount_and_delete(void **state) {
        run_churn("churn-del", true, true);
}

static int group_setup(void **state) {
        if (e2e_suite_setup(state, "concurrency", e2e_sim_mode()) < 0) return -1;
        return e2e_controller_start(NULL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_concurrent_writer),
            cmocka_unit_test(test_concurrent_writer_mount_and_delete),
        };
        return cmocka_run_group_tests(tests, group_setup, e2e_suite_teardown);
}
