/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util/base64 on arbitrary bytes. The first byte picks the decoder flags and a
 * size limit; the rest is both the text to decode and the data to encode.
 * Checks:
 *   - encode: the length is base64_encoded_len(); strict decoding gives the
 *     data back;
 *   - decode: accepted text decodes to exactly what a relaxed flag set also
 *     gives (flags only ever add accepted inputs); the result is within the
 *     limit, NUL-terminated, and re-encodes to text that strictly decodes to
 *     it; canonical text (padded, no spaces, zero unused bits) re-encodes to
 *     itself; the output parameters are untouched on failure.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "util/base64.h"

static const size_t b64_limits[] = {0, 1, 2, 3, 4, 16, 100, 4096};

static bool b64_is_space(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int b64_val(char c) {
        const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const char *p = c ? strchr(a, c) : NULL;
        return p ? (int)(p - a) : -1;
}

/* Padded, no whitespace, and the unused bits of a partial last group are zero. */
static bool b64_canonical(const char *t, size_t len) {
        if (len % 4) return false;
        for (size_t i = 0; i < len; i++)
                if (b64_is_space(t[i])) return false;
        if (len == 0) return true;
        if (t[len - 1] != '=') return true;
        if (t[len - 2] == '=') return (b64_val(t[len - 3]) & 0x0F) == 0;
        return (b64_val(t[len - 2]) & 0x03) == 0;
}

int fuzz_base64_one(const uint8_t *data, size_t size) {
        if (size < 1) return 0;
        unsigned flags = data[0] & 3;
        size_t max_out = b64_limits[(data[0] >> 2) % (sizeof(b64_limits) / sizeof(b64_limits[0]))];
        const char *text = (const char *)data + 1;
        size_t len = size - 1;

        /* encode ∘ strict decode = identity */
        char *enc = NULL;
        size_t enc_len = 0;
        int r = base64_encode(text, len, 0, &enc, &enc_len);
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(enc_len == base64_encoded_len(len) && strlen(enc) == enc_len);
        void *dec = NULL;
        size_t dec_len = 0;
        r = base64_decode(enc, enc_len, 0, 0, &dec, &dec_len);
        FUZZ_CHECK(r == 0 && dec_len == len && memcmp(dec, text, len) == 0);
        base64_free_wiped(dec, dec_len);
        char *small = (char *)0x1;
        r = base64_encode(text, len, enc_len ? enc_len - 1 : 0, &small, NULL);
        if (enc_len > 1) FUZZ_CHECK(r == -E2BIG && small == (char *)0x1);
        if (r == 0) free(small);
        free(enc);

        /* decode */
        void *out = (void *)0x1;
        size_t out_len = 12345;
        r = base64_decode(text, len, flags, max_out, &out, &out_len);
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL || r == -E2BIG || r == -ENOMEM);
                FUZZ_CHECK(out == (void *)0x1 && out_len == 12345);
                /* a looser decoder accepts at least as much, except for size */
                if (r == -E2BIG) {
                        void *o2 = NULL;
                        size_t l2 = 0;
                        FUZZ_CHECK(base64_decode(text, len, flags, 0, &o2, &l2) == 0);
                        FUZZ_CHECK(max_out && l2 > max_out);
                        free(o2);
                }
                return 0;
        }
        FUZZ_CHECK(r == 0);
        if (max_out) FUZZ_CHECK(out_len <= max_out);
        FUZZ_CHECK(((char *)out)[out_len] == 0);
        FUZZ_CHECK(out_len <= len / 4 * 3 + 2);

        void *loose = NULL;
        size_t loose_len = 0;
        r = base64_decode(text, len, BASE64_IGNORE_SPACE | BASE64_PADDING_OPTIONAL, 0, &loose,
                          &loose_len);
        FUZZ_CHECK(r == 0 && loose_len == out_len && memcmp(loose, out, out_len) == 0);
        free(loose);

        char *again = NULL;
        size_t again_len = 0;
        FUZZ_CHECK(base64_encode(out, out_len, 0, &again, &again_len) == 0);
        void *back = NULL;
        size_t back_len = 0;
        FUZZ_CHECK(base64_decode(again, again_len, 0, 0, &back, &back_len) == 0);
        FUZZ_CHECK(back_len == out_len && memcmp(back, out, out_len) == 0);
        if (b64_canonical(text, len)) FUZZ_CHECK(again_len == len && memcmp(again, text, len) == 0);
        free(back);
        free(again);
        base64_free_wiped(out, out_len);
        return 0;
}

#ifdef FUZZ_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        return fuzz_base64_one(data, size);
}
#endif
