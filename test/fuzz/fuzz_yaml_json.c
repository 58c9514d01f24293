/* SPDX-License-Identifier: Apache-2.0 */
/*
 * yaml_json_parse() / yaml_json_parse_all() on arbitrary bytes.
 *
 * The first byte picks the mode and limits (bit 0: allow aliases, bit 1: depth
 * limit 8, bit 2: node limit 64, bit 3: several documents); the rest is the
 * YAML. Checks:
 *   - errors are -EBADMSG, -E2BIG or -ENOMEM with a one-line message;
 *   - a result respects the limits it was parsed under: no deeper than
 *     max_depth and no more nodes than max_nodes, aliases included;
 *   - JSON is YAML: the result, printed as JSON, parses back to an equal value
 *     (skipped when it holds what JSON cannot print or libyaml cannot read:
 *     non-finite numbers, characters outside YAML's printable set).
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "fuzz.h"
#include "kube/yaml_json.h"

/* Height (a scalar is 1) and node count (keys count one each), as the parser counts. */
static void yj_measure(json_object *o, size_t *height, size_t *nodes) {
        *height = 1;
        *nodes += 1;
        if (json_object_is_type(o, json_type_array)) {
                size_t n = json_object_array_length(o);
                for (size_t i = 0; i < n; i++) {
                        size_t h = 0;
                        yj_measure(json_object_array_get_idx(o, i), &h, nodes);
                        if (h + 1 > *height) *height = h + 1;
                }
        } else if (json_object_is_type(o, json_type_object)) {
                json_object_object_foreach(o, k, v) {
                        (void)k;
                        size_t h = 0;
                        *nodes += 1;
                        yj_measure(v, &h, nodes);
                        if (h + 1 > *height) *height = h + 1;
                }
        }
}

/* Valid UTF-8 made only of characters that libyaml accepts in a stream. */
static bool yj_printable(const char *s, size_t len) {
        const unsigned char *p = (const unsigned char *)s;
        for (size_t i = 0; i < len;) {
                uint32_t c;
                size_t n;
                if (p[i] < 0x80) {
                        c = p[i];
                        n = 1;
                } else if ((p[i] & 0xE0) == 0xC0) {
                        c = p[i] & 0x1F;
                        n = 2;
                } else if ((p[i] & 0xF0) == 0xE0) {
                        c = p[i] & 0x0F;
                        n = 3;
                } else if ((p[i] & 0xF8) == 0xF0) {
                        c = p[i] & 0x07;
                        n = 4;
                } else {
                        return false;
                }
                if (i + n > len) return false;
                for (size_t k = 1; k < n; k++) {
                        if ((p[i + k] & 0xC0) != 0x80) return false;
                        c = c << 6 | (p[i + k] & 0x3F);
                }
                static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
                if (c < min[n]) return false; /* overlong */
                /*
                 * json-c escapes C0 controls, so those print fine; DEL and C1 do not,
                 * and NEL, LS and PS print raw but are line breaks to YAML 1.1, which
                 * folds them inside quoted scalars.
                 */
                if (c >= 0x7F && !((c >= 0xA0 && c <= 0xD7FF) || (c >= 0xE000 && c <= 0xFFFD) ||
                                   (c >= 0x10000 && c <= 0x10FFFF)))
                        return false;
                if (c == 0x2028 || c == 0x2029) return false;
                i += n;
        }
        return true;
}

static bool yj_reprintable(json_object *o) {
        switch (json_object_get_type(o)) {
        case json_type_double:
                return isfinite(json_object_get_double(o));
        case json_type_string:
                return yj_printable(json_object_get_string(o),
                                    (size_t)json_object_get_string_len(o));
        case json_type_array: {
                size_t n = json_object_array_length(o);
                for (size_t i = 0; i < n; i++)
                        if (!yj_reprintable(json_object_array_get_idx(o, i))) return false;
                return true;
        }
        case json_type_object: {
                json_object_object_foreach(o, k, v) {
                        if (!yj_printable(k, strlen(k)) || !yj_reprintable(v)) return false;
                }
                return true;
        }
        default:
                return true;
        }
}

static void yj_check_error(int r, char *err) {
        FUZZ_CHECK(r == -EBADMSG || r == -E2BIG || r == -ENOMEM);
        if (r != -ENOMEM) {
                FUZZ_CHECK(err != NULL);
                FUZZ_CHECK(strchr(err, '\n') == NULL);
        }
}

static void yj_roundtrip(json_object *o, unsigned height) {
        if (!yj_reprintable(o)) return;
        size_t len = 0;
        const char *txt = json_object_to_json_string_length(
            o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
        FUZZ_CHECK(txt != NULL);
        yaml_json_limits lim = {.max_depth = height};
        json_object *back = NULL;
        char *err = NULL;
        int r = yaml_json_parse(txt, len, &lim, &back, &err);
        if (r != 0) fprintf(stderr, "JSON %s\nreparsed: %d %s\n", txt, r, err ? err : "");
        FUZZ_CHECK(r == 0);
        if (!json_object_equal(o, back))
                fprintf(stderr, "JSON %s\nreparsed %s\n", txt,
                        json_object_to_json_string_ext(back, JSON_C_TO_STRING_PLAIN));
        FUZZ_CHECK(json_object_equal(o, back));
        json_object_put(back);
        free(err);
}

int fuzz_yaml_json_one(const uint8_t *data, size_t size) {
        if (size < 1) return 0;
        uint8_t mode = data[0];
        yaml_json_limits lim = {
            .allow_aliases = mode & 1,
            .max_depth = (mode & 2) ? 8 : 0,
            .max_nodes = (mode & 4) ? 64 : 0,
        };
        bool multi = mode & 8;
        unsigned max_depth = lim.max_depth ? lim.max_depth : YAML_JSON_DEFAULT_MAX_DEPTH;
        size_t max_nodes = lim.max_nodes ? lim.max_nodes : YAML_JSON_DEFAULT_MAX_NODES;
        const char *text = (const char *)data + 1;
        size_t len = size - 1;

        json_object *o = NULL;
        char *err = NULL;
        int r = multi ? yaml_json_parse_all(text, len, &lim, &o, &err)
                      : yaml_json_parse(text, len, &lim, &o, &err);
        if (r < 0) {
                yj_check_error(r, err);
                FUZZ_CHECK(o == NULL);
                free(err);
                return 0;
        }
        FUZZ_CHECK(r == 0);
        if (multi) FUZZ_CHECK(json_object_is_type(o, json_type_array));
        if (o) {
                /* The documents of a stream sit one level down and share the node budget. */
                size_t height = 0, nodes = 0;
                yj_measure(o, &height, &nodes);
                if (multi) {
                        height--;
                        nodes--;
                }
                FUZZ_CHECK(height <= max_depth);
                FUZZ_CHECK(nodes <= max_nodes);
                yj_roundtrip(o, (unsigned)height + 1);
        }
        json_object_put(o);
        free(err);
        return 0;
}

#ifdef FUZZ_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        return fuzz_yaml_json_one(data, size);
}
#endif
