/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/hash.h"
#include "util/macro.h"

/* Published FNV-1a 64-bit values (the FNV reference test suite; test_names has others). */
static void test_fnv1a64_vectors(void **state) {
        static const struct {
                const char *in;
                uint64_t want;
        } v[] = {
            {"b", 0xaf63df4c8601f1a5ULL},    {"c", 0xaf63de4c8601eff2ULL},
            {"fo", 0x08985907b541d342ULL},   {"foo", 0xdcb27518fed9d577ULL},
            {"foob", 0xdd120e790c2512afULL}, {"fooba", 0xcac165afa2fef40aULL},
        };
        for (size_t i = 0; i < ARRAY_SIZE(v); i++)
                assert_true(hash_fnv1a64(HASH_FNV1A64_INIT, v[i].in, strlen(v[i].in)) == v[i].want);
}

static void test_fnv1a64_continues(void **state) {
        /* hashing in pieces is hashing the whole */
        uint64_t h = hash_fnv1a64(HASH_FNV1A64_INIT, "foo", 3);
        h = hash_fnv1a64(h, "bar", 3);
        assert_true(h == hash_fnv1a64(HASH_FNV1A64_INIT, "foobar", 6));
        assert_true(hash_fnv1a64(h, NULL, 0) == h);
}

/* SipHash-2-4 reference vectors (key 00..0f, message 00..len-1); test_hashmap has others. */
static void test_siphash_vectors(void **state) {
        static const struct {
                size_t len;
                uint64_t want;
        } v[] = {
            {2, 0x0d6c8009d9a94f5aull}, {3, 0x85676696d7fb7e2dull},  {6, 0xcbc9466e58fee3ceull},
            {9, 0x9e0082df0ba9e4b0ull}, {12, 0x751e8fbc860ee5fbull}, {16, 0x3f2acc7f57c29bdbull},
        };
        uint8_t key[16], msg[16];
        for (int i = 0; i < 16; i++) key[i] = msg[i] = (uint8_t)i;
        for (size_t i = 0; i < ARRAY_SIZE(v); i++)
                assert_true(hash_siphash24(msg, v[i].len, key) == v[i].want);
}

static void test_keyed(void **state) {
        /* stable within the process, and it tells inputs apart */
        uint64_t a = hash_keyed("secret-a", 8), b = hash_keyed("secret-b", 8);
        assert_true(a == hash_keyed("secret-a", 8));
        assert_true(a != b);
        assert_true(hash_keyed("", 0) == hash_keyed(NULL, 0));
        /* it is keyed: not SipHash under the all-zero key (a key that was never set) */
        static const uint8_t zero[16];
        assert_true(a != hash_siphash24("secret-a", 8, zero) ||
                    b != hash_siphash24("secret-b", 8, zero));
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_fnv1a64_vectors),
            cmocka_unit_test(test_fnv1a64_continues),
            cmocka_unit_test(test_siphash_vectors),
            cmocka_unit_test(test_keyed),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
