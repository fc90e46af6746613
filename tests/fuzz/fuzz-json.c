/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the JSON parser. Any input either fails cleanly or
 * parses; a parsed tree is written back with the writer (numbers that are
 * not exact integers as "%.17g", which round-trips a double, with ".0"
 * added where needed so they stay non-integer literals), the text parses
 * again, and the second tree equals the first: same types, strings byte for
 * byte, same integers, same doubles bit for bit, same keys in the same order.
 */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void write_value(struct json_writer *w, const struct json_value *v)
{
        char num[40];

        switch (v->type) {
        case JSON_NULL:
                json_put_null(w);
                break;
        case JSON_BOOL:
                json_put_bool(w, v->b);
                break;
        case JSON_NUMBER:
                if (v->num.is_int) {
                        json_put_int(w, v->num.i);
                        break;
                }
                snprintf(num, sizeof(num), "%.17g", v->num.d);
                if (!strpbrk(num, ".e"))
                        strcat(num, ".0");
                json_put_raw(w, num);
                break;
        case JSON_STRING:
                /* parsed strings are valid UTF-8: nothing is lossy */
                assert(!json_put_bytes_lossy(w, v->str.s, v->str.len));
                break;
        case JSON_ARRAY:
                json_begin_array(w);
                for (size_t i = 0; i < v->c.count; i++)
                        write_value(w, &v->c.items[i]);
                json_end_array(w);
                break;
        case JSON_OBJECT:
                json_begin_object(w);
                for (size_t i = 0; i < v->c.count; i++) {
                        json_key(w, v->c.keys[i]);
                        write_value(w, &v->c.items[i]);
                }
                json_end_object(w);
                break;
        }
}

static void assert_same(const struct json_value *a, const struct json_value *b)
{
        assert(a->type == b->type);
        switch (a->type) {
        case JSON_NULL:
                break;
        case JSON_BOOL:
                assert(a->b == b->b);
                break;
        case JSON_NUMBER:
                assert(a->num.is_int == b->num.is_int);
                if (a->num.is_int)
                        assert(a->num.i == b->num.i);
                else
                        assert(memcmp(&a->num.d, &b->num.d, sizeof(double)) == 0);
                break;
        case JSON_STRING:
                assert(a->str.len == b->str.len);
                assert(memcmp(a->str.s, b->str.s, a->str.len + 1) == 0);
                break;
        case JSON_ARRAY:
        case JSON_OBJECT:
                assert(a->c.count == b->c.count);
                for (size_t i = 0; i < a->c.count; i++) {
                        if (a->type == JSON_OBJECT) {
                                assert(strcmp(a->c.keys[i], b->c.keys[i]) == 0);
                                assert(json_get(a, a->c.keys[i]) != NULL);
                        }
                        assert_same(&a->c.items[i], &b->c.items[i]);
                }
                break;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct json_doc *doc, *doc2;
        const struct json_value *root, *root2;
        struct json_writer w;
        char *text;

        if (json_parse((const char *)data, size, &doc, &root) < 0)
                return 0;
        json_writer_init(&w);
        write_value(&w, root);
        text = json_writer_steal(&w);
        assert(text);
        assert(json_parse(text, strlen(text), &doc2, &root2) == 0);
        assert_same(root, root2);
        json_doc_free(doc2);
        json_doc_free(doc);
        free(text);
        return 0;
}
