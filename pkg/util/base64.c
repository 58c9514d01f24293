/* SPDX-License-Identifier: Apache-2.0 */
#include "util/base64.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void base64_free_wiped(void *p, size_t len) {
        if (!p) return;
        /* explicit_bzero survives dead-store elimination, unlike memset before free() */
        explicit_bzero(p, len);
        free(p);
}

size_t base64_encoded_len(size_t len) {
        size_t groups = len / 3 + (len % 3 != 0);
        if (groups > (SIZE_MAX - 1) / 4) return 0;
        return groups * 4;
}

int base64_encode(const void *data, size_t len, size_t max_out, char **ret, size_t *ret_len) {
        if (!ret || (len && !data)) return -EINVAL;
        size_t n = base64_encoded_len(len);
        if (len && n == 0) return -E2BIG;
        if (max_out && n > max_out) return -E2BIG;
        char *out = malloc(n + 1);
        if (!out) return -ENOMEM;
        const unsigned char *in = data;
        size_t o = 0, i = 0;
        for (; i + 3 <= len; i += 3) {
                uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
                out[o++] = alphabet[w >> 18];
                out[o++] = alphabet[w >> 12 & 63];
                out[o++] = alphabet[w >> 6 & 63];
                out[o++] = alphabet[w & 63];
        }
        if (len - i == 1) {
                uint32_t w = (uint32_t)in[i] << 16;
                out[o++] = alphabet[w >> 18];
                out[o++] = alphabet[w >> 12 & 63];
                out[o++] = '=';
                out[o++] = '=';
        } else if (len - i == 2) {
                uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
                out[o++] = alphabet[w >> 18];
                out[o++] = alphabet[w >> 12 & 63];
                out[o++] = alphabet[w >> 6 & 63];
                out[o++] = '=';
        }
        out[o] = 0;
        *ret = out;
        if (ret_len) *ret_len = o;
        return 0;
}

static int value_of(unsigned char c) {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
}

static bool is_space(unsigned char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int base64_decode(const char *text, size_t len, unsigned flags, size_t max_out, void **ret,
                  size_t *ret_len) {
        if (!ret || !ret_len || (len && !text)) return -EINVAL;
        if (flags & ~(BASE64_IGNORE_SPACE | BASE64_PADDING_OPTIONAL)) return -EINVAL;

        /* First pass: count significant characters and check the shape, so that the
         * size limit is enforced before allocating. */
        size_t sig = 0, pad = 0;
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)text[i];
                if ((flags & BASE64_IGNORE_SPACE) && is_space(c)) continue;
                if (c == '=') {
                        pad++;
                        continue;
                }
                if (pad || value_of(c) < 0) return -EINVAL; /* data after padding, or junk */
                sig++;
        }
        size_t total = sig + pad;
        if (pad > 2) return -EINVAL;
        if (sig % 4 == 1) return -EINVAL; /* one character carries only 6 bits */
        if (pad) {
                if (total % 4 != 0) return -EINVAL;
                if (pad != (4 - sig % 4) % 4) return -EINVAL;
        } else if (sig % 4 != 0 && !(flags & BASE64_PADDING_OPTIONAL)) {
                return -EINVAL;
        }
        size_t n = sig / 4 * 3 + (sig % 4 ? sig % 4 - 1 : 0);
        if (max_out && n > max_out) return -E2BIG;

        unsigned char *out = malloc(n + 1);
        if (!out) return -ENOMEM;
        uint32_t acc = 0;
        size_t k = 0, o = 0;
        for (size_t i = 0; i < len; i++) {
                int v = value_of((unsigned char)text[i]);
                if (v < 0) continue; /* whitespace or padding, already checked */
                acc = acc << 6 | (uint32_t)v;
                if (++k == 4) {
                        out[o++] = (unsigned char)(acc >> 16);
                        out[o++] = (unsigned char)(acc >> 8);
                        out[o++] = (unsigned char)acc;
                        acc = 0;
                        k = 0;
                }
        }
        /* leftover bits of a partial last group are ignored, as Go's StdEncoding does */
        if (k == 2) {
                out[o++] = (unsigned char)(acc >> 4);
        } else if (k == 3) {
                out[o++] = (unsigned char)(acc >> 10);
                out[o++] = (unsigned char)(acc >> 2);
        }
        out[o] = 0;
        *ret = out;
        *ret_len = o;
        return 0;
}
