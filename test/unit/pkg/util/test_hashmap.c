/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/hashmap.h"
#include "util/macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(hashmap *, hashmap_free);
#define _cleanup_hashmap_ _cleanup_(hashmap_freep)

/* SipHash-2-4 reference vectors (key 00..0f, message 00..len-1), as little-endian words. */
static void test_siphash_vectors(void **state) {
        static const struct {
                size_t len;
                uint64_t want;
        } v[] = {
            {0, 0x726fdb47dd0e0e31ull}, {1, 0x74f839c593dc67fdull},  {7, 0xab0200f58b01d137ull},
            {8, 0x93f5f5799a932462ull}, {15, 0xa129ca6149be45e5ull},
        };
        uint8_t key[16], msg[16];
        for (int i = 0; i < 16; i++) key[i] = msg[i] = (uint8_t)i;
        for (size_t i = 0; i < ARRAY_SIZE(v); i++)
                assert_int_equal(hashmap_siphash24(msg, v[i].len, key), v[i].want);
}

static void test_basic(void **state) {
        _cleanup_hashmap_ hashmap *h = NULL;
        void *old = (void *)1;
        int a = 1, b = 2, c = 3;

        assert_int_equal(hashmap_new(&h), 0);
        assert_int_equal(hashmap_size(h), 0);
        assert_null(hashmap_get(h, "x"));
        assert_null(hashmap_remove(h, "x"));
        assert_false(hashmap_contains(h, "x"));

        assert_int_equal(hashmap_put(h, "a", &a, &old), 1);
        assert_null(old);
        assert_int_equal(hashmap_put(h, "b", &b, NULL), 1);
        assert_int_equal(hashmap_size(h), 2);
        assert_ptr_equal(hashmap_get(h, "a"), &a);
        assert_ptr_equal(hashmap_get(h, "b"), &b);

        /* replace returns the old value and adopts the new key pointer */
        char key_copy[] = "a";
        assert_int_equal(hashmap_put(h, key_copy, &c, &old), 0);
        assert_ptr_equal(old, &a);
        assert_int_equal(hashmap_size(h), 2);
        size_t st = 0;
        const char *k;
        void *val;
        bool seen = false;
        while (hashmap_iterate(h, &st, &k, &val))
                if (val == &c) {
                        assert_ptr_equal(k, key_copy);
                        seen = true;
                }
        assert_true(seen);

        /* NULL values are values */
        assert_int_equal(hashmap_put(h, "n", NULL, NULL), 1);
        assert_true(hashmap_contains(h, "n"));
        assert_null(hashmap_get(h, "n"));

        assert_ptr_equal(hashmap_remove(h, "a"), &c);
        assert_false(hashmap_contains(h, "a"));
        assert_int_equal(hashmap_size(h), 2);

        assert_int_equal(hashmap_put(h, NULL, &a, NULL), -EINVAL);
        assert_null(hashmap_get(NULL, "a"));
        assert_null(hashmap_free(NULL));
        assert_true(hashmap_mem(h) > 0);
}

/* A model check: random puts and removes against a plain array of flags. */
static void test_random_against_model(void **state) {
        enum { N = 5000 };
        _cleanup_hashmap_ hashmap *h = NULL;
        static char keys[N][16];
        static bool present[N];
        size_t count = 0;
        unsigned seed = 12345;

        assert_int_equal(hashmap_new(&h), 0);
        for (int i = 0; i < N; i++) snprintf(keys[i], sizeof keys[i], "ns-%d/sa", i);

        for (int round = 0; round < 60000; round++) {
                seed = seed * 1103515245u + 12345u;
                int i = (int)((seed >> 8) % N);
                if ((seed >> 4) % 3 != 0) {
                        int r = hashmap_put(h, keys[i], keys[i], NULL);
                        assert_int_equal(r, present[i] ? 0 : 1);
                        if (!present[i]) count++;
                        present[i] = true;
                } else {
                        void *v = hashmap_remove(h, keys[i]);
                        assert_ptr_equal(v, present[i] ? keys[i] : NULL);
                        if (present[i]) count--;
                        present[i] = false;
                }
                if (round % 5000 == 0) {
                        for (int j = 0; j < N; j++)
                                assert_ptr_equal(hashmap_get(h, keys[j]),
                                                 present[j] ? keys[j] : NULL);
                }
        }
        assert_int_equal(hashmap_size(h), count);
        for (int j = 0; j < N; j++)
                assert_ptr_equal(hashmap_get(h, keys[j]), present[j] ? keys[j] : NULL);

        /* iteration visits each present key exactly once */
        static bool visited[N];
        size_t st = 0, n = 0;
        const char *k;
        void *val;
        while (hashmap_iterate(h, &st, &k, &val)) {
                int idx = (int)((char(*)[16])val - keys);
                assert_true(idx >= 0 && idx < N);
                assert_true(present[idx]);
                assert_false(visited[idx]);
                visited[idx] = true;
                n++;
        }
        assert_int_equal(n, count);
}

static void test_reserve_and_trim(void **state) {
        _cleanup_hashmap_ hashmap *h = NULL;
        static char keys[1000][8];

        assert_int_equal(hashmap_new(&h), 0);
        assert_int_equal(hashmap_reserve(h, 1000), 0);
        size_t mem = hashmap_mem(h);
        for (int i = 0; i < 1000; i++) {
                snprintf(keys[i], sizeof keys[i], "k%d", i);
                assert_int_equal(hashmap_put(h, keys[i], keys[i], NULL), 1);
        }
        /* no growth after the reservation */
        assert_int_equal(hashmap_mem(h), mem);

        for (int i = 0; i < 990; i++) assert_ptr_equal(hashmap_remove(h, keys[i]), keys[i]);
        /* removal never shrinks */
        assert_int_equal(hashmap_mem(h), mem);
        hashmap_trim(h);
        assert_true(hashmap_mem(h) < mem);
        for (int i = 990; i < 1000; i++) assert_ptr_equal(hashmap_get(h, keys[i]), keys[i]);
        for (int i = 990; i < 1000; i++) hashmap_remove(h, keys[i]);
        hashmap_trim(h);
        assert_int_equal(hashmap_size(h), 0);
        assert_null(hashmap_get(h, "k995"));

        assert_int_equal(hashmap_reserve(h, (size_t)HASHMAP_MAX_ENTRIES + 1), -E2BIG);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_siphash_vectors),
            cmocka_unit_test(test_basic),
            cmocka_unit_test(test_random_against_model),
            cmocka_unit_test(test_reserve_and_trim),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
