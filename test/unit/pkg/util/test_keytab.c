/* SPDX-License-Identifier: Apache-2.0 */
/* util/keytab: records keyed by a string they carry, checked against a plain array model. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/keytab.h"
#include "util/macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(keytab *, keytab_free);
#define _cleanup_keytab_ _cleanup_(keytab_freep)

typedef struct rec {
        int value;
        char key[16];
        char ns[8], name[8]; /* the parts of key for composed_key() ("ns/name") */
} rec;

static int composed_calls;

/* A key composed from two fields, as the store composes "namespace/name". */
static const char *composed_key(const void *ud, const void *r, char buf[KEYTAB_KEY_MAX]) {
        const rec *x = r;
        assert_ptr_equal(ud, &composed_calls);
        composed_calls++;
        snprintf(buf, KEYTAB_KEY_MAX, "%s/%s", x->ns, x->name);
        return buf;
}

static void test_basic(void **state) {
        _cleanup_keytab_ keytab *t = NULL;
        rec a = {.value = 1, .key = "a"}, a2 = {.value = 2, .key = "a"},
            b = {.value = 3, .key = "b"};
        void *old = &b;

        assert_int_equal(keytab_new(offsetof(rec, key), &t), 0);
        assert_int_equal(keytab_size(t), 0);
        assert_null(keytab_get(t, "a"));
        assert_null(keytab_remove(t, "a"));
        assert_int_equal(keytab_put(t, &a, &old), 1);
        assert_null(old);
        assert_ptr_equal(keytab_get(t, "a"), &a);
        assert_int_equal(keytab_put(t, &a2, &old), 0); /* an equal key replaces */
        assert_ptr_equal(old, &a);
        assert_ptr_equal(keytab_get(t, "a"), &a2);
        assert_int_equal(keytab_put(t, &b, NULL), 1);
        assert_int_equal(keytab_size(t), 2);
        assert_true(keytab_mem(t) >= 8 * sizeof(void *));
        size_t st = 0, n = 0;
        void *v;
        while (keytab_iterate(t, &st, &v)) n++;
        assert_int_equal(n, 2);
        assert_ptr_equal(keytab_remove(t, "a"), &a2);
        assert_null(keytab_get(t, "a"));
        assert_int_equal(keytab_size(t), 1);
        assert_int_equal(keytab_put(t, NULL, NULL), -EINVAL);
        assert_int_equal(keytab_reserve(t, KEYTAB_MAX_ENTRIES + 1u), -E2BIG);
        keytab_trim(t);
        assert_ptr_equal(keytab_get(t, "b"), &b);
        assert_ptr_equal(keytab_remove(t, "b"), &b);
        keytab_trim(t);
        assert_int_equal(keytab_size(t), 0); /* no slots left, still usable: */
        assert_int_equal(keytab_put(t, &b, NULL), 1);
        assert_null(keytab_free(NULL));
}

/*
 * Random puts and removes over 300 keys (long probe runs, wrap-around, shrinking); keys at
 * an offset of the records, or composed by a function from two of their fields.
 */
static void random_against_model(bool composed) {
        enum { KEYS = 300 };
        static rec recs[KEYS];
        bool in[KEYS] = {false};
        size_t want = 0;
        unsigned seed = 11;
        _cleanup_keytab_ keytab *t = NULL;
        if (composed)
                assert_int_equal(keytab_new_fn(composed_key, &composed_calls, &t), 0);
        else
                assert_int_equal(keytab_new(offsetof(rec, key), &t), 0);
        for (int i = 0; i < KEYS; i++) {
                recs[i].value = i;
                snprintf(recs[i].ns, sizeof recs[i].ns, "n%d", i % 7);
                snprintf(recs[i].name, sizeof recs[i].name, "k%d", i);
                if (composed)
                        snprintf(recs[i].key, sizeof recs[i].key, "n%d/k%d", i % 7, i);
                else
                        snprintf(recs[i].key, sizeof recs[i].key, "k%d", i);
        }
        for (int round = 0; round < 20000; round++) {
                seed = seed * 1103515245u + 12345u;
                int k = (int)((seed >> 8) % KEYS);
                if ((seed >> 4) % 3) {
                        assert_int_equal(keytab_put(t, &recs[k], NULL), in[k] ? 0 : 1);
                        if (!in[k]) want++;
                        in[k] = true;
                } else {
                        assert_ptr_equal(keytab_remove(t, recs[k].key), in[k] ? &recs[k] : NULL);
                        if (in[k]) want--;
                        in[k] = false;
                }
                if (round % 1000 == 0) keytab_trim(t);
                if (round % 97 == 0)
                        for (int i = 0; i < KEYS; i++)
                                assert_ptr_equal(keytab_get(t, recs[i].key),
                                                 in[i] ? &recs[i] : NULL);
                assert_int_equal(keytab_size(t), want);
        }
        size_t st = 0, n = 0;
        void *v;
        while (keytab_iterate(t, &st, &v)) {
                assert_true(in[((rec *)v)->value]);
                n++;
        }
        assert_int_equal(n, want);
}

static void test_random_against_model(void **state) {
        random_against_model(false);
}

static void test_random_composed_keys(void **state) {
        composed_calls = 0;
        random_against_model(true);
        assert_true(composed_calls > 0);
        _cleanup_keytab_ keytab *t = NULL;
        assert_int_equal(keytab_new_fn(NULL, NULL, &t), -EINVAL);
        assert_null(t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_basic),
            cmocka_unit_test(test_random_against_model),
            cmocka_unit_test(test_random_composed_keys),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
