/* SPDX-License-Identifier: Apache-2.0 */
#include "util/hash.h"

#include <stdbool.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

uint64_t hash_fnv1a64(uint64_t h, const void *data, size_t len) {
        const unsigned char *p = data;
        for (size_t i = 0; i < len; i++) {
                h ^= p[i];
                h *= 0x100000001b3ULL;
        }
        return h;
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
        do {                                                                                       \
                v0 += v1;                                                                          \
                v1 = ROTL(v1, 13);                                                                 \
                v1 ^= v0;                                                                          \
                v0 = ROTL(v0, 32);                                                                 \
                v2 += v3;                                                                          \
                v3 = ROTL(v3, 16);                                                                 \
                v3 ^= v2;                                                                          \
                v0 += v3;                                                                          \
                v3 = ROTL(v3, 21);                                                                 \
                v3 ^= v0;                                                                          \
                v2 += v1;                                                                          \
                v1 = ROTL(v1, 17);                                                                 \
                v1 ^= v2;                                                                          \
                v2 = ROTL(v2, 32);                                                                 \
        } while (0)

static uint64_t load_le64(const uint8_t *p) {
        uint64_t v = 0;
        for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
        return v;
}

uint64_t hash_siphash24(const void *data, size_t len, const uint8_t key[16]) {
        const uint8_t *in = data;
        uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
        uint64_t v0 = k0 ^ 0x736f6d6570736575ull;
        uint64_t v1 = k1 ^ 0x646f72616e646f6dull;
        uint64_t v2 = k0 ^ 0x6c7967656e657261ull;
        uint64_t v3 = k1 ^ 0x7465646279746573ull;
        size_t full = len - len % 8;

        for (size_t i = 0; i < full; i += 8) {
                uint64_t m = load_le64(in + i);
                v3 ^= m;
                SIPROUND;
                SIPROUND;
                v0 ^= m;
        }
        uint64_t b = (uint64_t)len << 56;
        for (size_t i = 0; i < len % 8; i++) b |= (uint64_t)in[full + i] << (8 * i);
        v3 ^= b;
        SIPROUND;
        SIPROUND;
        v0 ^= b;
        v2 ^= 0xff;
        SIPROUND;
        SIPROUND;
        SIPROUND;
        SIPROUND;
        return v0 ^ v1 ^ v2 ^ v3;
}

static uint8_t process_key[16];
static bool process_key_set;

uint64_t hash_keyed(const void *data, size_t len) {
        if (!process_key_set) {
                if (getrandom(process_key, sizeof process_key, GRND_NONBLOCK) !=
                    (ssize_t)sizeof process_key) {
                        /* No entropy yet (early boot): weaker, but still differs per process. */
                        struct timespec ts;
                        clock_gettime(CLOCK_REALTIME, &ts);
                        uint64_t a = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30);
                        uint64_t b = (uint64_t)(uintptr_t)&ts ^ 0x9e3779b97f4a7c15ull;
                        memcpy(process_key, &a, 8);
                        memcpy(process_key + 8, &b, 8);
                }
                process_key_set = true;
        }
        return hash_siphash24(data, len, process_key);
}
