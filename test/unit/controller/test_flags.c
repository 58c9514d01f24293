/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "flags.h"
#include "util/macro.h"

/* A fake environment: NULL-terminated "NAME=value" strings. */
static const char *fake_getenv(const char *name, void *userdata) {
        const char *const *env = userdata;
        size_t n = strlen(name);
        for (; env && *env; env++)
                if (strncmp(*env, name, n) == 0 && (*env)[n] == '=') return *env + n + 1;
        return NULL;
}

#define ARGV(...) ((char *const[]){"pullpolicy-controller", ##__VA_ARGS__, NULL})
#define ENV(...)  ((const char *const[]){__VA_ARGS__, NULL})
#define NOENV     ((const char *const[]){NULL})

static int argc_of(char *const *argv) {
        int n = 0;
        while (argv[n]) n++;
        return n;
}

static int parse(char *const *argv, const char *const *env, pp_settings *s, char **err) {
        return flags_parse(argc_of(argv), argv, fake_getenv, (void *)env, s, err);
}

/* Parses and expects success. */
static pp_settings ok(char *const *argv, const char *const *env) {
        pp_settings s;
        char *err = NULL;
        int r = parse(argv, env, &s, &err);
        if (r < 0) fail_msg("unexpected error %d: %s", r, err ? err : "(none)");
        assert_null(err);
        return s;
}

/* Parses and expects -EINVAL with exactly this message. */
static void bad(char *const *argv, const char *const *env, const char *msg) {
        pp_settings s;
        memset(&s, 0x5a, sizeof(s));
        char *err = NULL;
        int r = parse(argv, env, &s, &err);
        assert_int_equal(r, -EINVAL);
        assert_non_null(err);
        if (!streq(err, msg)) fail_msg("message\n  got:  %s\n  want: %s", err, msg);
        /* Out-parameters are written only on success. */
        unsigned char *p = (unsigned char *)&s;
        for (size_t i = 0; i < sizeof(s); i++) assert_int_equal(p[i], 0x5a);
        free(err);
}

static void test_defaults(void **state) {
        pp_settings s = ok(ARGV(), NOENV);
        assert_null(s.kubeconfig);
        assert_null(s.namespace);
        assert_int_equal(s.n_allowed_cluster_roles, 1);
        assert_string_equal(s.allowed_cluster_roles[0], "system:image-puller");
        assert_false(s.distribution_namespaces_set);
        assert_int_equal(s.n_distribution_namespaces, 0);
        assert_string_equal(s.global_pull_secret_namespace, "openshift-config");
        assert_string_equal(s.global_pull_secret_name, "pull-secret");
        assert_false(s.leader_elect);
        assert_null(s.leader_election_namespace);
        assert_string_equal(s.leader_election_id, "pullpolicy-controller");
        assert_false(s.allow_insecure_http_token);
        assert_true(s.lease_duration == 15);
        assert_true(s.renew_deadline == 10);
        assert_true(s.retry_period == 2);
        assert_string_equal(s.metrics_bind_address, ":8080");
        assert_string_equal(s.health_probe_bind_address, ":8081");
        assert_true(s.qps == 0); /* no cap: the flow window paces the client */
        assert_int_equal(s.burst, 30);
        assert_int_equal(s.requests_in_flight, 8);
        assert_int_equal(s.max_requests_in_flight, 128);
        assert_int_equal(s.log_format, LOG_FORMAT_TEXT);
        assert_int_equal(s.log_level, LOG_LEVEL_INFO);
        assert_int_equal(s.workers, 4);
        assert_true(s.resync_period == 36000);
        assert_false(s.show_help);
        assert_false(s.show_version);
        flags_settings_done(&s);
}

static void test_every_flag(void **state) {
        pp_settings s = ok(
            ARGV("--kubeconfig=/tmp/kc", "--namespace", "project-b",
                 "--allowed-cluster-roles=system:image-puller, registry-viewer",
                 "--distribution-namespaces=pullpolicy-system,shared",
                 "--global-pull-secret=cfg/pull", "--leader-elect",
                 "--leader-election-namespace=le-ns", "--leader-election-id=my.lease",
                 "--lease-duration=30s", "--renew-deadline=20s", "--retry-period=500ms",
                 "--metrics-bind-address=127.0.0.1:9090", "--health-probe-bind-address=[::1]:9091",
                 "--qps=50.5", "--burst=100", "--log-format=json", "--log-level=debug",
                 "--workers=8", "--resync-period=1h30m", "--allow-insecure-http-token"),
            NOENV);
        assert_true(s.allow_insecure_http_token);
        assert_string_equal(s.kubeconfig, "/tmp/kc");
        assert_string_equal(s.namespace, "project-b");
        assert_int_equal(s.n_allowed_cluster_roles, 2);
        assert_string_equal(s.allowed_cluster_roles[0], "system:image-puller");
        assert_string_equal(s.allowed_cluster_roles[1], "registry-viewer");
        assert_true(s.distribution_namespaces_set);
        assert_int_equal(s.n_distribution_namespaces, 2);
        assert_string_equal(s.distribution_namespaces[0], "pullpolicy-system");
        assert_string_equal(s.distribution_namespaces[1], "shared");
        assert_string_equal(s.global_pull_secret_namespace, "cfg");
        assert_string_equal(s.global_pull_secret_name, "pull");
        assert_true(s.leader_elect);
        assert_string_equal(s.leader_election_namespace, "le-ns");
        assert_string_equal(s.leader_election_id, "my.lease");
        assert_true(s.lease_duration == 30);
        assert_true(s.renew_deadline == 20);
        assert_true(s.retry_period == 0.5);
        assert_string_equal(s.metrics_bind_address, "127.0.0.1:9090");
        assert_string_equal(s.health_probe_bind_address, "[::1]:9091");
        assert_true(s.qps == 50.5);
        assert_int_equal(s.burst, 100);
        assert_int_equal(s.log_format, LOG_FORMAT_JSON);
        assert_int_equal(s.log_level, LOG_LEVEL_DEBUG);
        assert_int_equal(s.workers, 8);
        assert_true(s.resync_period == 5400);
        flags_settings_done(&s);
}

static void test_every_env(void **state) {
        pp_settings s =
            ok(ARGV(),
               ENV("PULLPOLICY_KUBECONFIG=/etc/kc", "PULLPOLICY_NAMESPACE=ns1",
                   "PULLPOLICY_ALLOWED_CLUSTER_ROLES=a,b", "PULLPOLICY_DISTRIBUTION_NAMESPACES=",
                   "PULLPOLICY_GLOBAL_PULL_SECRET=x/y", "PULLPOLICY_LEADER_ELECT=true",
                   "PULLPOLICY_LEADER_ELECTION_NAMESPACE=lens", "PULLPOLICY_LEADER_ELECTION_ID=lid",
                   "PULLPOLICY_LEASE_DURATION=20s", "PULLPOLICY_RENEW_DEADLINE=15s",
                   "PULLPOLICY_RETRY_PERIOD=3s", "PULLPOLICY_METRICS_BIND_ADDRESS=0",
                   "PULLPOLICY_HEALTH_PROBE_BIND_ADDRESS=localhost:0", "PULLPOLICY_QPS=5",
                   "PULLPOLICY_BURST=7", "PULLPOLICY_LOG_FORMAT=json", "PULLPOLICY_LOG_LEVEL=warn",
                   "PULLPOLICY_WORKERS=2", "PULLPOLICY_RESYNC_PERIOD=0"));
        assert_string_equal(s.kubeconfig, "/etc/kc");
        assert_string_equal(s.namespace, "ns1");
        assert_int_equal(s.n_allowed_cluster_roles, 2);
        /* Explicitly empty: set, and empty (distribution nowhere). */
        assert_true(s.distribution_namespaces_set);
        assert_int_equal(s.n_distribution_namespaces, 0);
        assert_non_null(s.distribution_namespaces);
        assert_string_equal(s.global_pull_secret_namespace, "x");
        assert_string_equal(s.global_pull_secret_name, "y");
        assert_true(s.leader_elect);
        assert_string_equal(s.leader_election_namespace, "lens");
        assert_string_equal(s.leader_election_id, "lid");
        assert_true(s.lease_duration == 20);
        assert_true(s.renew_deadline == 15);
        assert_true(s.retry_period == 3);
        assert_null(s.metrics_bind_address);
        assert_string_equal(s.health_probe_bind_address, "localhost:0");
        assert_true(s.qps == 5);
        assert_int_equal(s.burst, 7);
        assert_int_equal(s.log_format, LOG_FORMAT_JSON);
        assert_int_equal(s.log_level, LOG_LEVEL_WARN);
        assert_int_equal(s.workers, 2);
        assert_true(s.resync_period == 0);
        flags_settings_done(&s);
}

static void test_flag_beats_env(void **state) {
        pp_settings s = ok(ARGV("--qps=9", "--leader-elect=false", "--namespace="),
                           ENV("PULLPOLICY_QPS=3", "PULLPOLICY_LEADER_ELECT=yes",
                               "PULLPOLICY_NAMESPACE=ns1", "PULLPOLICY_BURST=11"));
        assert_true(s.qps == 9);
        assert_false(s.leader_elect);
        assert_null(s.namespace); /* empty flag: back to all namespaces */
        assert_int_equal(s.burst, 11);
        flags_settings_done(&s);
}

static void test_kubeconfig_precedence(void **state) {
        pp_settings s = ok(ARGV(), ENV("KUBECONFIG=/a"));
        assert_string_equal(s.kubeconfig, "/a");
        flags_settings_done(&s);
        s = ok(ARGV(), ENV("KUBECONFIG=/a", "PULLPOLICY_KUBECONFIG=/b"));
        assert_string_equal(s.kubeconfig, "/b");
        flags_settings_done(&s);
        s = ok(ARGV("--kubeconfig", "/c"), ENV("KUBECONFIG=/a", "PULLPOLICY_KUBECONFIG=/b"));
        assert_string_equal(s.kubeconfig, "/c");
        flags_settings_done(&s);
        /* An empty KUBECONFIG is as good as unset. */
        s = ok(ARGV(), ENV("KUBECONFIG="));
        assert_null(s.kubeconfig);
        flags_settings_done(&s);
}

static void test_booleans(void **state) {
        const char *yes[] = {"true", "1", "yes", "on", "TRUE"};
        const char *no[] = {"false", "0", "no", "off", "False"};
        for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
                char arg[64];
                snprintf(arg, sizeof(arg), "--leader-elect=%s", yes[i]);
                pp_settings s = ok(ARGV(arg), NOENV);
                assert_true(s.leader_elect);
                flags_settings_done(&s);
                snprintf(arg, sizeof(arg), "--leader-elect=%s", no[i]);
                s = ok(ARGV(arg), ENV("PULLPOLICY_LEADER_ELECT=1"));
                assert_false(s.leader_elect);
                flags_settings_done(&s);
        }
        bad(ARGV("--leader-elect=maybe"), NOENV, "--leader-elect: not a boolean: \"maybe\"");
        bad(ARGV(), ENV("PULLPOLICY_LEADER_ELECT=2"),
            "PULLPOLICY_LEADER_ELECT: not a boolean: \"2\"");
        bad(ARGV("--leader-elect", "false"), NOENV,
            "unexpected argument: \"false\" (boolean flags take their value as "
            "--leader-elect=false)");
}

static void test_help_version(void **state) {
        pp_settings s = ok(ARGV("--help"), NOENV);
        assert_true(s.show_help);
        flags_settings_done(&s);
        s = ok(ARGV("-h"), NOENV);
        assert_true(s.show_help);
        flags_settings_done(&s);
        s = ok(ARGV("--version"), NOENV);
        assert_true(s.show_version);
        assert_false(s.show_help);
        flags_settings_done(&s);
        /* Not from the environment. */
        s = ok(ARGV(), ENV("PULLPOLICY_HELP=1", "PULLPOLICY_VERSION=1"));
        assert_false(s.show_help);
        assert_false(s.show_version);
        flags_settings_done(&s);
        /* --help does not hide a bad flag. */
        bad(ARGV("--help", "--qps=x"), NOENV, "--qps: not a number: \"x\"");
}

static void test_number_errors(void **state) {
        bad(ARGV("--qps=abc"), NOENV, "--qps: not a number: \"abc\"");
        bad(ARGV("--qps="), NOENV, "--qps: not a number: \"\"");
        bad(ARGV("--qps=inf"), NOENV, "--qps: not a number: \"inf\"");
        bad(ARGV("--qps=nan"), NOENV, "--qps: not a number: \"nan\"");
        bad(ARGV("--qps=0x10"), NOENV, "--qps: not a number: \"0x10\"");
        bad(ARGV("--qps=-1"), NOENV, "--qps: out of range [0, 10000]: \"-1\"");
        bad(ARGV("--qps=10001"), NOENV, "--qps: out of range [0, 10000]: \"10001\"");
        bad(ARGV("--requests-in-flight=0"), NOENV,
            "--requests-in-flight: out of range [1, 4096]: \"0\"");
        bad(ARGV("--max-requests-in-flight=4097"), NOENV,
            "--max-requests-in-flight: out of range [1, 4096]: \"4097\"");
        bad(ARGV(), ENV("PULLPOLICY_QPS=abc"), "PULLPOLICY_QPS: not a number: \"abc\"");
        bad(ARGV("--burst=1.5"), NOENV, "--burst: not an integer: \"1.5\"");
        bad(ARGV("--burst=0"), NOENV, "--burst: out of range [1, 100000]: \"0\"");
        bad(ARGV("--burst=99999999999999999999"), NOENV,
            "--burst: out of range [1, 100000]: \"99999999999999999999\"");
        bad(ARGV("--workers=0"), NOENV, "--workers: out of range [1, 256]: \"0\"");
        bad(ARGV("--workers=257"), NOENV, "--workers: out of range [1, 256]: \"257\"");
        bad(ARGV("--workers=four"), NOENV, "--workers: not an integer: \"four\"");
        pp_settings s = ok(ARGV("--qps=1e3", "--burst=+5", "--workers=256"), NOENV);
        assert_true(s.qps == 1000);
        assert_int_equal(s.burst, 5);
        assert_int_equal(s.workers, 256);
        flags_settings_done(&s);
}

static void test_duration_parser(void **state) {
        static const struct {
                const char *s;
                double want;
        } good[] = {
            {"0", 0},
            {"15s", 15},
            {"2m", 120},
            {"500ms", 0.5},
            {"1h", 3600},
            {"1m30s", 90},
            {"1.5h", 5400},
            {"100us", 1e-4},
            {"100\xc2\xb5s", 1e-4},
            {"10ns", 1e-8},
            {".5s", 0.5},
            {"+3s", 3},
            {"1h1m1s1ms", 3661.001},
        };
        for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
                double d = -1;
                assert_int_equal(flags_parse_duration(good[i].s, &d), 0);
                if (d < good[i].want - 1e-9 || d > good[i].want + 1e-9)
                        fail_msg("%s: got %g want %g", good[i].s, d, good[i].want);
        }
        const char *invalid[] = {"", "15", "s", "1x", "1.s.", "1 s", "abc", ".s", "1s2", "+"};
        for (size_t i = 0; i < ARRAY_SIZE(invalid); i++) {
                double d = 7;
                if (flags_parse_duration(invalid[i], &d) != -EINVAL)
                        fail_msg("accepted \"%s\"", invalid[i]);
                assert_true(d == 7);
        }
        double d;
        assert_int_equal(flags_parse_duration("-1s", &d), -ERANGE);
        assert_int_equal(flags_parse_duration("10001h", &d), -ERANGE);
        assert_int_equal(flags_parse_duration(NULL, &d), -EINVAL);
}

static void test_duration_errors(void **state) {
        bad(ARGV("--lease-duration=15"), NOENV,
            "--lease-duration: not a duration (like 15s, 2m, 500ms): \"15\"");
        bad(ARGV("--lease-duration=1.5s"), NOENV,
            "--lease-duration: must be whole seconds: \"1.5s\"");
        bad(ARGV("--lease-duration=500ms"), NOENV,
            "--lease-duration: out of range [1s, 3600s]: \"500ms\"");
        bad(ARGV("--retry-period=10ms"), NOENV,
            "--retry-period: out of range [0.1s, 3600s]: \"10ms\"");
        bad(ARGV("--renew-deadline=2h"), NOENV,
            "--renew-deadline: out of range [0.1s, 3600s]: \"2h\"");
        bad(ARGV("--resync-period=5s"), NOENV,
            "--resync-period: out of range [10s, 3.6e+07s] or 0: \"5s\"");
        bad(ARGV("--resync-period=-1s"), NOENV,
            "--resync-period: out of range [10s, 3.6e+07s] or 0: \"-1s\"");
        bad(ARGV(), ENV("PULLPOLICY_RETRY_PERIOD=often"),
            "PULLPOLICY_RETRY_PERIOD: not a duration (like 15s, 2m, 500ms): \"often\"");
}

static void test_consistency(void **state) {
        bad(ARGV("--renew-deadline=15s"), NOENV,
            "--renew-deadline (15s) must be less than --lease-duration (15s)");
        bad(ARGV("--retry-period=9s"), NOENV,
            "--renew-deadline (10s) must be more than 1.2 times --retry-period (9s)");
        bad(ARGV("--metrics-bind-address=:9000", "--health-probe-bind-address=:9000"), NOENV,
            "--metrics-bind-address and --health-probe-bind-address must differ: \":9000\"");
        /* Port 0 twice is two different ephemeral ports: fine. */
        pp_settings s = ok(
            ARGV("--metrics-bind-address=127.0.0.1:0", "--health-probe-bind-address=127.0.0.1:0"),
            NOENV);
        flags_settings_done(&s);
        /* Both disabled: fine. */
        s = ok(ARGV("--metrics-bind-address=0", "--health-probe-bind-address=0"), NOENV);
        assert_null(s.metrics_bind_address);
        assert_null(s.health_probe_bind_address);
        flags_settings_done(&s);
}

static void test_names_and_lists(void **state) {
        bad(ARGV("--namespace=Project_B"), NOENV,
            "--namespace: not a valid namespace name: \"Project_B\"");
        bad(ARGV("--namespace=-a"), NOENV, "--namespace: not a valid namespace name: \"-a\"");
        bad(ARGV("--distribution-namespaces=a,,b"), NOENV,
            "--distribution-namespaces: empty entry in list: \"a,,b\"");
        bad(ARGV("--distribution-namespaces=a,B"), NOENV,
            "--distribution-namespaces: not a valid namespace name: \"B\"");
        bad(ARGV("--allowed-cluster-roles=ok,a/b"), NOENV,
            "--allowed-cluster-roles: not a valid ClusterRole name: \"a/b\"");
        bad(ARGV("--allowed-cluster-roles=.."), NOENV,
            "--allowed-cluster-roles: not a valid ClusterRole name: \"..\"");
        bad(ARGV("--global-pull-secret=pull-secret"), NOENV,
            "--global-pull-secret: expected NAMESPACE/NAME: \"pull-secret\"");
        bad(ARGV("--global-pull-secret=ns/"), NOENV,
            "--global-pull-secret: not a valid secret name: \"\"");
        bad(ARGV("--global-pull-secret=ns/a/b"), NOENV,
            "--global-pull-secret: not a valid secret name: \"a/b\"");
        bad(ARGV("--global-pull-secret=NS/a"), NOENV,
            "--global-pull-secret: not a valid namespace name: \"NS\"");
        bad(ARGV("--leader-election-id=a..b"), NOENV,
            "--leader-election-id: not a valid Lease name: \"a..b\"");
        bad(ARGV("--leader-election-id="), NOENV,
            "--leader-election-id: not a valid Lease name: \"\"");
        bad(ARGV("--leader-election-namespace=a.b"), NOENV,
            "--leader-election-namespace: not a valid namespace name: \"a.b\"");
        bad(ARGV("--kubeconfig="), NOENV, "--kubeconfig: must not be empty");
        bad(ARGV("--log-format=xml"), NOENV, "--log-format: expected text or json: \"xml\"");
        bad(ARGV("--log-level=trace"), NOENV,
            "--log-level: expected error, warn, info or debug: \"trace\"");

        /* Blanks trimmed, duplicates dropped, empty value = empty list. */
        pp_settings s =
            ok(ARGV("--allowed-cluster-roles= a , b,a ", "--distribution-namespaces="), NOENV);
        assert_int_equal(s.n_allowed_cluster_roles, 2);
        assert_string_equal(s.allowed_cluster_roles[0], "a");
        assert_string_equal(s.allowed_cluster_roles[1], "b");
        assert_true(s.distribution_namespaces_set);
        assert_int_equal(s.n_distribution_namespaces, 0);
        flags_settings_done(&s);

        /* The list limit. */
        size_t n = FLAGS_LIST_MAX + 1, len = 0;
        char *big = malloc(n * 8 + 64);
        assert_non_null(big);
        len = (size_t)sprintf(big, "--distribution-namespaces=");
        for (size_t i = 0; i < n; i++) len += (size_t)sprintf(big + len, "%sn%zu", i ? "," : "", i);
        pp_settings t;
        char *err = NULL;
        assert_int_equal(parse(ARGV(big), NOENV, &t, &err), -EINVAL);
        assert_string_equal(err, "--distribution-namespaces: more than 256 entries");
        free(err);
        free(big);

        /* The value size limit. */
        char *huge = malloc(FLAGS_VALUE_MAX + 32);
        assert_non_null(huge);
        strcpy(huge, "--kubeconfig=");
        memset(huge + 13, 'k', FLAGS_VALUE_MAX + 1);
        huge[13 + FLAGS_VALUE_MAX + 1] = 0;
        assert_int_equal(parse(ARGV(huge), NOENV, &t, &err), -EINVAL);
        assert_string_equal(err, "--kubeconfig: longer than 4096 bytes");
        free(err);
        free(huge);
}

static void test_bind_addresses(void **state) {
        const char *good[] = {":8080",       "127.0.0.1:8080", "[::1]:8080",
                              "localhost:1", "0.0.0.0:0",      "[::]:65535"};
        for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
                char arg[64];
                snprintf(arg, sizeof(arg), "--metrics-bind-address=%s", good[i]);
                pp_settings s = ok(ARGV(arg), NOENV);
                assert_string_equal(s.metrics_bind_address, good[i]);
                flags_settings_done(&s);
        }
        const char *bads[] = {"8080", ":65536", "::1:8080", "[::1]8080", "host.example:80",
                              ":",    ":-1",    "1.2.3:80", "[zz]:1"};
        for (size_t i = 0; i < ARRAY_SIZE(bads); i++) {
                char arg[64], want[256];
                snprintf(arg, sizeof(arg), "--health-probe-bind-address=%s", bads[i]);
                snprintf(want, sizeof(want),
                         "--health-probe-bind-address: not an address like :8080, "
                         "127.0.0.1:8080 or [::1]:8080, or 0 to disable: \"%s\"",
                         bads[i]);
                bad(ARGV(arg), NOENV, want);
        }
}

static void test_cli_errors(void **state) {
        bad(ARGV("--nope"), NOENV, "unknown flag: --nope");
        bad(ARGV("-x"), NOENV, "unknown flag: -x");
        bad(ARGV("--kube=/x"), NOENV, "unknown flag: --kube (did you mean --kubeconfig?)");
        bad(ARGV("--qps"), NOENV, "--qps: requires a value");
        bad(ARGV("extra"), NOENV, "unexpected argument: \"extra\"");
        bad(ARGV("--qps=3", "--", "--burst=4"), NOENV, "unexpected argument: \"--burst=4\"");
        bad(ARGV("--lease"), NOENV, "unknown flag: --lease");
        /* The last of a repeated flag wins. */
        pp_settings s = ok(ARGV("--qps=3", "--qps=4"), NOENV);
        assert_true(s.qps == 4);
        flags_settings_done(&s);
        /* NULL ret_error is allowed. */
        assert_int_equal(parse(ARGV("--nope"), NOENV, &s, NULL), -EINVAL);
}

static void test_real_getenv(void **state) {
        setenv("PULLPOLICY_WORKERS", "3", 1);
        pp_settings s;
        char *const *argv = ARGV();
        assert_int_equal(flags_parse(1, argv, NULL, NULL, &s, NULL), 0);
        assert_int_equal(s.workers, 3);
        flags_settings_done(&s);
        unsetenv("PULLPOLICY_WORKERS");
}

/* issue 11: registry credential checks are off unless the admin allows them */
static void test_verify_credentials(void **state) {
        pp_settings s = ok(ARGV(), NOENV);
        assert_false(s.verify_credentials);
        assert_null(s.registry_ca_file);
        assert_true(s.verify_interval == 3600);
        assert_int_equal(s.verify_concurrency, 2);
        flags_settings_done(&s);
        s = ok(ARGV("--verify-credentials", "--registry-ca-file=/etc/pki/ca.pem",
                    "--verify-credentials-interval=10m", "--verify-credentials-concurrency=5"),
               NOENV);
        assert_true(s.verify_credentials);
        assert_string_equal(s.registry_ca_file, "/etc/pki/ca.pem");
        assert_true(s.verify_interval == 600);
        assert_int_equal(s.verify_concurrency, 5);
        flags_settings_done(&s);
}

static void test_usage(void **state) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        assert_non_null(f);
        flags_usage(f, "ppc");
        fclose(f);
        assert_non_null(strstr(buf, "Usage: ppc [FLAGS]"));
        const char *expect[] = {
            "--kubeconfig=PATH",
            "[PULLPOLICY_KUBECONFIG]",
            "--namespace=NAME",
            "--allowed-cluster-roles=LIST",
            "(default system:image-puller)",
            "--distribution-namespaces=LIST",
            "--global-pull-secret=NS/NAME",
            "(default openshift-config/pull-secret)",
            "--leader-elect ",
            "[PULLPOLICY_LEADER_ELECT]",
            "--leader-election-namespace=NAME",
            "--leader-election-id=NAME",
            "(default pullpolicy-controller)",
            "--lease-duration=DURATION",
            "(default 15s)",
            "--renew-deadline=DURATION",
            "(default 10s)",
            "--retry-period=DURATION",
            "(default 2s)",
            "--metrics-bind-address=ADDR",
            "(default :8080)",
            "--health-probe-bind-address=ADDR",
            "(default :8081)",
            "--requests-in-flight=NUMBER",
            "(default 8)",
            "--max-requests-in-flight=NUMBER",
            "(default 128)",
            "--qps=NUMBER",
            "(default 0)",
            "--burst=NUMBER",
            "(default 30)",
            "--log-format=FORMAT",
            "(default text)",
            "--log-level=LEVEL",
            "(default info)",
            "--workers=NUMBER",
            "(default 4)",
            "--resync-period=DURATION",
            "(default 10h)",
            "--version",
            "--help",
            "[PULLPOLICY_HEALTH_PROBE_BIND_ADDRESS]",
        };
        for (size_t i = 0; i < ARRAY_SIZE(expect); i++)
                if (!strstr(buf, expect[i])) fail_msg("usage lacks %s", expect[i]);
        assert_null(strstr(buf, "PULLPOLICY_HELP"));
        free(buf);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_defaults),
            cmocka_unit_test(test_every_flag),
            cmocka_unit_test(test_every_env),
            cmocka_unit_test(test_flag_beats_env),
            cmocka_unit_test(test_kubeconfig_precedence),
            cmocka_unit_test(test_booleans),
            cmocka_unit_test(test_help_version),
            cmocka_unit_test(test_number_errors),
            cmocka_unit_test(test_duration_parser),
            cmocka_unit_test(test_duration_errors),
            cmocka_unit_test(test_consistency),
            cmocka_unit_test(test_names_and_lists),
            cmocka_unit_test(test_bind_addresses),
            cmocka_unit_test(test_cli_errors),
            cmocka_unit_test(test_real_getenv),
            cmocka_unit_test(test_usage),
            cmocka_unit_test(test_verify_credentials),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
