/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The memory of recent link removals (R4/R7): a writer that puts a removed link back
 * from a stale copy is undone, a link a policy claims again is never touched, and
 * nothing loops against a writer that keeps putting it back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_spec.h"
#include "removals.h"
#include "util/macro.h"

static model_sa *sa_from(const char *json) {
        json_object *o = json_tokener_parse(json);
        assert_non_null(o);
        model_sa *sa = NULL;
        assert_int_equal(model_sa_decode(o, &sa), 0);
        json_object_put(o);
        return sa;
}

/* project-b/builder with "quay-creds" back in .imagePullSecrets, unclaimed */
#define RESURRECTED                                                                                \
        "{\"metadata\":{\"name\":\"builder\",\"namespace\":\"project-b\"},"                        \
        "\"secrets\":[{\"name\":\"builder-dockercfg-abcde\"}],"                                    \
        "\"imagePullSecrets\":[{\"name\":\"builder-dockercfg-abcde\"},{\"name\":\"quay-creds\"}]}"

static void test_resurrection_undone(void **state) {
        pp_removals *m = NULL;
        assert_int_equal(pp_removals_new(NULL, &m), 0);
        assert_int_equal(pp_removals_note_removed(m, "project-b", "builder", "quay-creds",
                                                  POLICY_FOR_PULL, 100.0),
                         0);
        model_sa *sa = sa_from(RESURRECTED);
        pp_removals_undo u = {0};
        assert_int_equal(pp_removals_check(m, sa, 101.0, &u), 1);
        assert_int_equal(u.n_pull_secrets, 1);
        assert_string_equal(u.pull_secrets[0], "builder-dockercfg-abcde");
        assert_int_equal(u.n_secrets, 1);
        assert_string_equal(u.secrets[0], "builder-dockercfg-abcde");
        assert_int_equal(u.n_undone, 1);
        assert_string_equal(u.undone[0], "quay-creds");
        pp_removals_undo_done(&u);
        model_sa_free(sa);

        /* once the name is gone, nothing more is written */
        sa = sa_from("{\"metadata\":{\"name\":\"builder\",\"namespace\":\"project-b\"},"
                     "\"imagePullSecrets\":[{\"name\":\"builder-dockercfg-abcde\"}]}");
        assert_int_equal(pp_removals_check(m, sa, 101.5, &u), 0);
        model_sa_free(sa);
        /* another account is not concerned */
        sa = sa_from("{\"metadata\":{\"name\":\"default\",\"namespace\":\"project-b\"},"
                     "\"imagePullSecrets\":[{\"name\":\"quay-creds\"}]}");
        assert_int_equal(pp_removals_check(m, sa, 101.5, &u), 0);
        model_sa_free(sa);
        pp_removals_free(m);
}

/* A writer that puts the link back whatever happens: the undos stop after max_undos. */
static void test_no_loop(void **state) {
        pp_removals *m = NULL;
        pp_removals_opts o = {.max_undos = 3, .ttl = 120};
        assert_int_equal(pp_removals_new(&o, &m), 0);
        assert_int_equal(
            pp_removals_note_removed(m, "project-b", "builder", "quay-creds", POLICY_FOR_PULL, 0.0),
            0);
        model_sa *sa = sa_from(RESURRECTED);
        unsigned writes = 0;
        for (int round = 0; round < 50; round++) {
                pp_removals_undo u = {0};
                int r = pp_removals_check(m, sa, 1.0 + round * 0.1, &u);
                assert_true(r >= 0);
                writes += r == 1;
                pp_removals_undo_done(&u);
        }
        printf("undo writes against a writer that always puts the link back: %u in 50 rounds\n",
               writes);
        assert_int_equal(writes, 3);
        model_sa_free(sa);
        pp_removals_free(m);
}

static void test_claimed_or_relinked_is_left_alone(void **state) {
        pp_removals *m = NULL;
        assert_int_equal(pp_removals_new(NULL, &m), 0);
        assert_int_equal(pp_removals_note_removed(m, "project-b", "builder", "quay-creds",
                                                  POLICY_FOR_PULL | POLICY_FOR_MOUNT, 0.0),
                         0);
        /* a policy claims it again (re-created, or another policy links it) */
        model_sa *sa = sa_from(
            "{\"metadata\":{\"name\":\"builder\",\"namespace\":\"project-b\",\"annotations\":{"
            "\"pullpolicy.io/links\":\"{\\\"v\\\":1,\\\"links\\\":[{\\\"policy\\\":\\\"project-b/"
            "p2\\\",\\\"secret\\\":\\\"quay-creds\\\",\\\"for\\\":[\\\"pull\\\"]}]}\"}},"
            "\"imagePullSecrets\":[{\"name\":\"quay-creds\"}]}");
        assert_int_equal(sa->links.n, 1);
        pp_removals_undo u = {0};
        assert_int_equal(pp_removals_check(m, sa, 1.0, &u), 0);
        model_sa_free(sa);
        /* claimed for pull only: the resurrected mount entry is still undone */
        sa = sa_from(
            "{\"metadata\":{\"name\":\"builder\",\"namespace\":\"project-b\",\"annotations\":{"
            "\"pullpolicy.io/links\":\"{\\\"v\\\":1,\\\"links\\\":[{\\\"policy\\\":\\\"project-b/"
            "p2\\\",\\\"secret\\\":\\\"quay-creds\\\",\\\"for\\\":[\\\"pull\\\"]}]}\"}},"
            "\"secrets\":[{\"name\":\"quay-creds\"}],"
            "\"imagePullSecrets\":[{\"name\":\"quay-creds\"}]}");
        assert_int_equal(pp_removals_check(m, sa, 1.0, &u), 1);
        assert_int_equal(u.n_secrets, 0);
        assert_int_equal(u.n_pull_secrets, 1);
        pp_removals_undo_done(&u);
        model_sa_free(sa);
        /* the controller linked it again itself: forgotten */
        pp_removals_note_added(m, "project-b", "builder", "quay-creds",
                               POLICY_FOR_PULL | POLICY_FOR_MOUNT);
        assert_int_equal(pp_removals_accounts(m), 0);
        sa = sa_from(RESURRECTED);
        assert_int_equal(pp_removals_check(m, sa, 1.0, &u), 0);
        model_sa_free(sa);
        pp_removals_free(m);
}

static void test_ttl_and_bounds(void **state) {
        pp_removals *m = NULL;
        pp_removals_opts o = {.max_accounts = 3, .ttl = 10};
        assert_int_equal(pp_removals_new(&o, &m), 0);
        assert_int_equal(
            pp_removals_note_removed(m, "project-b", "builder", "quay-creds", POLICY_FOR_PULL, 0.0),
            0);
        model_sa *sa = sa_from(RESURRECTED);
        pp_removals_undo u = {0};
        /* after the ttl the link is anybody's, and the entry is dropped */
        assert_int_equal(pp_removals_check(m, sa, 10.5, &u), 0);
        assert_int_equal(pp_removals_accounts(m), 0);
        /* at most max_accounts accounts: the oldest goes */
        char name[32];
        for (int i = 0; i < 10; i++) {
                snprintf(name, sizeof(name), "sa-%d", i);
                assert_int_equal(pp_removals_note_removed(m, "project-b", name, "quay-creds",
                                                          POLICY_FOR_PULL, (double)i),
                                 0);
        }
        assert_int_equal(pp_removals_accounts(m), 3);
        /* at most REMOVALS_PER_ACCOUNT_MAX removals per account */
        for (int i = 0; i < 3 * REMOVALS_PER_ACCOUNT_MAX; i++) {
                snprintf(name, sizeof(name), "s-%d", i);
                assert_int_equal(pp_removals_note_removed(m, "project-b", "builder", name,
                                                          POLICY_FOR_PULL, 20.0 + i),
                                 0);
        }
        assert_int_equal(pp_removals_accounts(m), 3);
        model_sa_free(sa);
        pp_removals_free(m);
        pp_removals_free(NULL);
}

/* Lists that hold more than names cannot be rebuilt from names: left alone. */
static void test_lists_for_adoption(void **state) {
        pp_removals *m = NULL;
        pp_removals_opts o = {.ttl = 10};
        assert_int_equal(pp_removals_new(&o, &m), 0);
        assert_int_equal(pp_removals_lists(m, "n", "d", "x", 0.0), 0);
        assert_int_equal(pp_removals_note_removed(m, "n", "d", "x", POLICY_FOR_PULL, 0.0), 0);
        assert_int_equal(pp_removals_lists(m, "n", "d", "x", 5.0), POLICY_FOR_PULL);
        assert_int_equal(pp_removals_lists(m, "n", "d", "y", 5.0), 0);
        assert_int_equal(pp_removals_lists(m, "n", "e", "x", 5.0), 0);
        assert_int_equal(pp_removals_lists(m, "n", "d", "x", 10.5), 0); /* expired */
        pp_removals_free(m);
}

static void test_not_plain_left_alone(void **state) {
        pp_removals *m = NULL;
        assert_int_equal(pp_removals_new(NULL, &m), 0);
        assert_int_equal(pp_removals_note_removed(m, "project-b", "builder", "quay-creds",
                                                  POLICY_FOR_MOUNT, 0.0),
                         0);
        model_sa *sa = sa_from("{\"metadata\":{\"name\":\"builder\",\"namespace\":\"project-b\"},"
                               "\"secrets\":[{\"name\":\"quay-creds\",\"namespace\":\"x\"}]}");
        pp_removals_undo u = {0};
        assert_int_equal(pp_removals_check(m, sa, 1.0, &u), 0);
        model_sa_free(sa);
        pp_removals_free(m);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_resurrection_undone),
            cmocka_unit_test(test_no_loop),
            cmocka_unit_test(test_claimed_or_relinked_is_left_alone),
            cmocka_unit_test(test_ttl_and_bounds),
            cmocka_unit_test(test_lists_for_adoption),
            cmocka_unit_test(test_not_plain_left_alone),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
