/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Standard base64 (RFC 4648 section 4, alphabet A-Z a-z 0-9 + /, '=' padding):
 * what the apiserver writes for Secret data and kubeconfig "*-data" fields.
 *
 * Decoding is strict by default: the length must be a multiple of four, padding
 * only at the very end, and no other characters. As with Go's StdEncoding (which
 * the apiserver and kubectl use), the unused low bits of a partial last group are
 * ignored. Flags relax the first rules for human-written input (kubeconfig files).
 *
 * Limits: the caller passes the largest decoded size it accepts (max_out); longer
 * input is refused with -E2BIG before any allocation of that size. Inputs whose
 * encoded size would overflow size_t are refused too.
 *
 * Outputs are malloc()ed and NUL-terminated (the NUL is not counted in *ret_len)
 * so that text payloads can be parsed directly. Decoded buffers often hold
 * credentials: base64_free_wiped() zeroes before freeing, and on failure the
 * decoder wipes what it wrote.
 */
#ifndef PP_UTIL_BASE64_H
#define PP_UTIL_BASE64_H

#include <stddef.h>

/* Skip ASCII whitespace (space, \t, \n, \r, \v, \f) anywhere in the input. */
#define BASE64_IGNORE_SPACE 0x1u
/* Accept a last group without its '=' padding ("QQ" as well as "QQ=="). */
#define BASE64_PADDING_OPTIONAL 0x2u

/* The encoded length of len bytes (without the NUL), or 0 on overflow (len > 0). */
size_t base64_encoded_len(size_t len);

/*
 * Encodes len bytes of data (data may be NULL when len is 0). Returns 0 and a new
 * string in *ret (its length in *ret_len if non-NULL), -EINVAL or -ENOMEM; also
 * -E2BIG when the result would exceed max_out characters (0: no limit beyond size_t).
 */
int base64_encode(const void *data, size_t len, size_t max_out, char **ret, size_t *ret_len);

/*
 * Decodes len characters of text (text may be NULL when len is 0). Returns 0, a
 * new buffer in *ret and its length in *ret_len; -EINVAL for text that is not
 * base64 under the given flags, -E2BIG when the result would exceed max_out bytes,
 * -ENOMEM. Nothing is written to *ret / *ret_len on failure.
 */
int base64_decode(const char *text, size_t len, unsigned flags, size_t max_out, void **ret,
                  size_t *ret_len);

/* Zeroes len bytes of p (not optimised away), then frees it. NULL is fine. */
void base64_free_wiped(void *p, size_t len);

#endif
