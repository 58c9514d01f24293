/* SPDX-License-Identifier: Apache-2.0 */
#include "util/jsonutil.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

json_object *jsonutil_member(json_object *obj, const char *key) {
        json_object *v = NULL;
        /* json_object_object_get_ex() is false for a NULL or non-object obj */
        if (!json_object_object_get_ex(obj, key, &v)) return NULL;
        return v;
}

const char *jsonutil_member_str(json_object *obj, const char *key) {
        json_object *v = jsonutil_member(obj, key);
        if (!json_object_is_type(v, json_type_string)) return NULL;
        const char *s = json_object_get_string(v);
        /* "\u0000" inside: C would see the string cut short, so it is no usable string */
        return strlen(s) == (size_t)json_object_get_string_len(v) ? s : NULL;
}

int jsonutil_add(json_object *obj, const char *key, json_object *v) {
        if (!v || json_object_object_add(obj, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

json_object *jsonutil_parse(const char *text, size_t len, int depth) {
        if (len > INT_MAX) return NULL;
        json_tokener *tok = json_tokener_new_ex(depth);
        if (!tok) return NULL;
        json_object *o = json_tokener_parse_ex(tok, text, (int)len);
        if (o && json_tokener_get_error(tok) == json_tokener_success) {
                size_t off = json_tokener_get_parse_end(tok);
                while (off < len && (text[off] == ' ' || text[off] == '\n' || text[off] == '\r' ||
                                     text[off] == '\t'))
                        off++;
                if (off != len) {
                        json_object_put(o);
                        o = NULL;
                }
        } else {
                json_object_put(o);
                o = NULL;
        }
        json_tokener_free(tok);
        return o;
}
