/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the JSON writer and parser: exact output of the writer
 * (separators, escapes, lossy bytes, integer limits), round trips, every
 * class of syntax error, the limits (depth, string size, value count,
 * number range), surrogates and duplicate keys.
 */
#include <errno.h>
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/core/json.h"

static int parse(const char *text, struct json_doc **doc, const struct json_value **root)
{
        return json_parse(text, strlen(text), doc, root);
}

static int parse_err(const char *text)
{
        struct json_doc *doc = NULL;
        const struct json_value *root = NULL;
        int r = parse(text, &doc, &root);

        if (r == 0)
                json_doc_free(doc);
        return r;
}

static void test_writer_object(void **state)
{
        struct json_writer w;
        char *s;

        json_writer_init(&w);
        json_begin_object(&w);
        json_kv_string(&w, "name", "web");
        json_kv_int(&w, "min", INT64_MIN);
        json_kv_uint(&w, "max", UINT64_MAX);
        json_kv_bool(&w, "on", true);
        json_key(&w, "nothing");
        json_put_null(&w);
        json_kv_string(&w, "null_string", NULL);
        json_key(&w, "list");
        json_begin_array(&w);
        json_put_int(&w, 1);
        json_begin_array(&w);
        json_end_array(&w);
        json_begin_object(&w);
        json_end_object(&w);
        json_put_raw(&w, "{\"a\":[1,2]}");
        json_put_bool(&w, false);
        json_end_array(&w);
        json_end_object(&w);
        s = json_writer_steal(&w);
        assert_non_null(s);
        assert_string_equal(s, "{\"name\":\"web\",\"min\":-9223372036854775808,"
                               "\"max\":18446744073709551615,\"on\":true,\"nothing\":null,"
                               "\"null_string\":null,\"list\":[1,[],{},{\"a\":[1,2]},false]}");
        free(s);
        assert_null(w.data);
}

static void test_writer_empty_and_top_level(void **state)
{
        struct json_writer w;
        size_t len;
        char *s;

        json_writer_init(&w);
        s = json_writer_steal(&w);
        assert_string_equal(s, "");
        free(s);

        json_writer_init(&w);
        json_put_string(&w, "x");
        s = json_writer_steal(&w);
        assert_string_equal(s, "\"x\"");
        free(s);

        json_writer_init(&w);
        json_begin_object(&w);
        json_end_object(&w);
        s = json_writer_steal_line(&w, &len);
        assert_string_equal(s, "{}\n");
        assert_int_equal(len, 3);
        free(s);
}

static void test_writer_escapes(void **state)
{
        struct json_writer w;
        char *s;

        json_writer_init(&w);
        json_put_string(&w, "q\"b\\s/\n\r\t\b\f\x01\x1f\x7f é €𝄞");
        s = json_writer_steal(&w);
        assert_string_equal(s, "\"q\\\"b\\\\s/\\n\\r\\t\\b\\f\\u0001\\u001f\x7f é €𝄞\"");
        free(s);
}

static void test_writer_lossy(void **state)
{
        /* stray continuation, overlong, surrogate, truncated sequence, above U+10FFFF */
        static const char bad[] = "a\x80"
                                  "b\xc0\xaf"
                                  "\xed\xa0\x80"
                                  "\xf4\x90\x80\x80"
                                  "\xe2\x82";
        struct json_writer w;
        char *s;

        json_writer_init(&w);
        json_begin_array(&w);
        assert_false(json_put_bytes_lossy(&w, "ok\0nul", 6));
        assert_true(json_put_bytes_lossy(&w, bad, sizeof(bad) - 1));
        json_end_array(&w);
        s = json_writer_steal(&w);
        assert_string_equal(s, "[\"ok\\u0000nul\",\"a\\u0080b\\u00c0\\u00af\\u00ed\\u00a0\\u0080"
                               "\\u00f4\\u0090\\u0080\\u0080\\u00e2\\u0082\"]");

        /* the escapes read back as the code points U+0080..U+00FF */
        struct json_doc *doc;
        const struct json_value *root;
        assert_int_equal(parse(s, &doc, &root), 0);
        assert_int_equal(json_at(root, 0)->str.len, 6);
        assert_memory_equal(json_at(root, 0)->str.s, "ok\0nul", 6);
        assert_string_equal(json_string(json_at(root, 1), NULL),
                            "a\xc2\x80"
                            "b\xc3\x80\xc2\xaf\xc3\xad\xc2\xa0\xc2\x80\xc3\xb4\xc2\x90"
                            "\xc2\x80\xc2\x80\xc3\xa2\xc2\x82");
        json_doc_free(doc);
        free(s);
}

static void test_writer_misuse(void **state)
{
        struct json_writer w;

        json_writer_init(&w);
        json_end_object(&w);
        assert_int_equal(w.err, -EINVAL);
        assert_null(json_writer_steal(&w));

        json_writer_init(&w);
        json_key(&w, "top"); /* not inside an object */
        assert_int_equal(w.err, -EINVAL);
        json_writer_free(&w);

        json_writer_init(&w);
        json_begin_object(&w);
        json_key(&w, "a");
        json_key(&w, "b");
        assert_int_equal(w.err, -EINVAL);
        json_writer_free(&w);

        json_writer_init(&w);
        for (int i = 0; i < JSON_MAX_DEPTH; i++)
                json_begin_array(&w);
        assert_int_equal(w.err, 0);
        json_begin_array(&w);
        assert_int_equal(w.err, -E2BIG);
        json_put_int(&w, 1); /* ignored after the error */
        assert_null(json_writer_steal(&w));
}

static void test_parse_types(void **state)
{
        struct json_doc *doc;
        const struct json_value *root, *v;

        assert_int_equal(parse(" \t\r\n{\"s\": \"x\", \"t\": true, \"f\": false, \"n\": null,"
                               " \"i\": -42, \"d\": 1.5e2, \"a\": [1, \"two\", [], {}],"
                               " \"o\": {\"k\": \"v\"}} \n",
                               &doc, &root),
                         0);
        assert_int_equal(root->type, JSON_OBJECT);
        assert_int_equal(json_count(root), 8);
        assert_string_equal(json_string(json_get(root, "s"), NULL), "x");
        assert_true(json_bool(json_get(root, "t"), false));
        assert_false(json_bool(json_get(root, "f"), true));
        assert_int_equal(json_get(root, "n")->type, JSON_NULL);
        assert_int_equal(json_int(json_get(root, "i"), INT64_MIN, INT64_MAX, 0), -42);
        v = json_get(root, "d");
        assert_int_equal(v->type, JSON_NUMBER);
        assert_false(v->num.is_int);
        assert_true(v->num.d == 150.0);
        assert_int_equal(json_int(v, INT64_MIN, INT64_MAX, 7), 7); /* not an integer literal */
        v = json_get(root, "a");
        assert_int_equal(json_count(v), 4);
        assert_int_equal(json_int(json_at(v, 0), 0, 10, -1), 1);
        assert_string_equal(json_string(json_at(v, 1), NULL), "two");
        assert_int_equal(json_at(v, 2)->type, JSON_ARRAY);
        assert_int_equal(json_count(json_at(v, 2)), 0);
        assert_int_equal(json_at(v, 3)->type, JSON_OBJECT);
        assert_null(json_at(v, 4));
        assert_string_equal(json_string(json_get(json_get(root, "o"), "k"), NULL), "v");

        /* accessors on a wrong type or NULL give the defaults */
        assert_null(json_get(v, "k"));
        assert_null(json_at(root, 0));
        assert_null(json_get(NULL, "k"));
        assert_int_equal(json_count(json_get(root, "s")), 0);
        assert_string_equal(json_string(json_get(root, "i"), "def"), "def");
        assert_true(json_bool(json_get(root, "missing"), true));
        assert_int_equal(json_int(json_get(root, "i"), 0, 100, 5), 5); /* out of range */
        json_doc_free(doc);

        /* scalars at the top level */
        assert_int_equal(parse("\"only\"", &doc, &root), 0);
        assert_string_equal(root->str.s, "only");
        json_doc_free(doc);
        assert_int_equal(parse("null", &doc, &root), 0);
        assert_int_equal(root->type, JSON_NULL);
        json_doc_free(doc);
}

static void test_parse_numbers(void **state)
{
        static const struct {
                const char *text;
                bool is_int;
                int64_t i;
                double d;
        } cases[] = {
                {"0", true, 0, 0},
                {"-0", true, 0, 0},
                {"9223372036854775807", true, INT64_MAX, 0},
                {"-9223372036854775808", true, INT64_MIN, 0},
                {"9223372036854775808", false, 0, 9223372036854775808.0},
                {"-9223372036854775809", false, 0, -9223372036854775809.0},
                {"100000000000000000000000", false, 0, 1e23},
                {"1.0", false, 0, 1.0},
                {"-0.5", false, 0, -0.5},
                {"1e3", false, 0, 1000.0},
                {"1E+3", false, 0, 1000.0},
                {"25e-1", false, 0, 2.5},
                {"1e-400", false, 0, 0.0}, /* underflow is fine */
        };

        for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
                struct json_doc *doc;
                const struct json_value *root;

                assert_int_equal(parse(cases[k].text, &doc, &root), 0);
                assert_int_equal(root->type, JSON_NUMBER);
                assert_int_equal(root->num.is_int, cases[k].is_int);
                if (cases[k].is_int)
                        assert_true(root->num.i == cases[k].i);
                else
                        assert_true(root->num.d == cases[k].d);
                json_doc_free(doc);
        }
        assert_int_equal(parse_err("1e400"), -E2BIG);

        /* the decimal point is '.' whatever LC_NUMERIC says */
        if (setlocale(LC_NUMERIC, "de_DE.UTF-8") || setlocale(LC_NUMERIC, "fr_FR.UTF-8")) {
                struct json_doc *doc;
                const struct json_value *root;

                assert_int_equal(parse("2.5", &doc, &root), 0);
                assert_true(root->num.d == 2.5);
                json_doc_free(doc);
                setlocale(LC_NUMERIC, "C");
        }
        assert_int_equal(parse_err("-1e400"), -E2BIG);
}

static void test_parse_strings(void **state)
{
        struct json_doc *doc;
        const struct json_value *root;

        assert_int_equal(parse("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20AC\\ud834\\udd1e"
                               "é€𝄞\\u0000z\"",
                               &doc, &root),
                         0);
        assert_int_equal(root->str.len, 29);
        assert_memory_equal(root->str.s, "\"\\/\b\f\n\r\tAé€𝄞é€𝄞\0z", 30);
        json_doc_free(doc);

        /* lone and misordered surrogates */
        assert_int_equal(parse_err("\"\\ud800\""), -EBADMSG);
        assert_int_equal(parse_err("\"\\udc00\""), -EBADMSG);
        assert_int_equal(parse_err("\"\\ud800x\""), -EBADMSG);
        assert_int_equal(parse_err("\"\\ud800\\u0041\""), -EBADMSG);
        assert_int_equal(parse_err("\"\\udc00\\ud800\""), -EBADMSG);
        assert_int_equal(parse_err("\"\\ud800\\n\""), -EBADMSG);
        /* bad escapes */
        assert_int_equal(parse_err("\"\\x\""), -EBADMSG);
        assert_int_equal(parse_err("\"\\u12\""), -EBADMSG);
        assert_int_equal(parse_err("\"\\u12g4\""), -EBADMSG);
        assert_int_equal(parse_err("\"\\"), -EBADMSG);
        /* raw control characters and invalid UTF-8 */
        assert_int_equal(parse_err("\"a\nb\""), -EBADMSG);
        assert_int_equal(parse_err("\"\x1f\""), -EBADMSG);
        assert_int_equal(parse_err("\"\x80\""), -EBADMSG);
        assert_int_equal(parse_err("\"\xc0\xaf\""), -EBADMSG);
        assert_int_equal(parse_err("\"\xed\xa0\x80\""), -EBADMSG);
        assert_int_equal(parse_err("\"\xf4\x90\x80\x80\""), -EBADMSG);
        assert_int_equal(parse_err("\"\xe2\x82\""), -EBADMSG);
        /* unterminated */
        assert_int_equal(parse_err("\"abc"), -EBADMSG);
        /* U+0000 is fine in a value, not in a key */
        assert_int_equal(parse_err("{\"a\\u0000b\": 1}"), -EBADMSG);
}

static void test_parse_syntax_errors(void **state)
{
        static const char *const bad[] = {
                "",
                " ",
                "{",
                "}",
                "[",
                "]",
                "[1,]",
                "[,1]",
                "[1 2]",
                "{\"a\"}",
                "{\"a\":}",
                "{\"a\":1,}",
                "{a:1}",
                "{'a':1}",
                "{\"a\" 1}",
                "{1:2}",
                "[1}",
                "{\"a\":1]",
                "tru",
                "true1",
                "nul",
                "False",
                "NaN",
                "Infinity",
                "01",
                "-",
                "+1",
                "1.",
                ".5",
                "1e",
                "1e+",
                "0x10",
                "--1",
                "1 2",
                "\"a\" \"b\"",
                "[1]x",
                "\xef\xbb\xbf{}",
                "[\"a\"\n",
                "/* c */ 1",
                "[1,\n",
        };

        for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
                if (parse_err(bad[k]) != -EBADMSG)
                        fail_msg("accepted or wrong error for '%s'", bad[k]);

        /* the length given is what counts: no NUL terminator needed, none seen */
        struct json_doc *doc;
        const struct json_value *root;
        assert_int_equal(json_parse("[1]garbage", 3, &doc, &root), 0);
        json_doc_free(doc);
        assert_int_equal(json_parse("[1]\0", 4, &doc, &root), -EBADMSG);
        assert_int_equal(json_parse("\"a\0b\"", 5, &doc, &root), -EBADMSG);
}

static char *repeat(const char *head, size_t n_head, const char *mid, const char *tail,
                    size_t n_tail)
{
        size_t lh = strlen(head), lm = strlen(mid), lt = strlen(tail);
        char *s = malloc(lh * n_head + lm + lt * n_tail + 1), *p = s;

        assert_non_null(s);
        for (size_t i = 0; i < n_head; i++, p += lh)
                memcpy(p, head, lh);
        memcpy(p, mid, lm);
        p += lm;
        for (size_t i = 0; i < n_tail; i++, p += lt)
                memcpy(p, tail, lt);
        *p = '\0';
        return s;
}

static void test_limits_depth(void **state)
{
        struct json_doc *doc;
        const struct json_value *root, *v;
        char *s;

        s = repeat("[", JSON_MAX_DEPTH, "", "]", JSON_MAX_DEPTH);
        assert_int_equal(parse(s, &doc, &root), 0);
        v = root;
        for (int i = 1; i < JSON_MAX_DEPTH; i++)
                v = json_at(v, 0);
        assert_int_equal(v->type, JSON_ARRAY);
        assert_int_equal(json_count(v), 0);
        json_doc_free(doc);
        free(s);

        s = repeat("[", JSON_MAX_DEPTH + 1, "", "]", JSON_MAX_DEPTH + 1);
        assert_int_equal(parse_err(s), -E2BIG);
        free(s);
        s = repeat("{\"a\":", JSON_MAX_DEPTH + 1, "1", "}", JSON_MAX_DEPTH + 1);
        assert_int_equal(parse_err(s), -E2BIG);
        free(s);
        /* far deeper than the limit: refused before the stack could suffer */
        s = repeat("[", 1000000, "", "", 0);
        assert_int_equal(parse_err(s), -E2BIG);
        free(s);
}

static void test_limits_string(void **state)
{
        struct json_doc *doc;
        const struct json_value *root;
        char *s;

        /* exactly JSON_MAX_STRING bytes */
        s = repeat("\"", 1, "", "a", JSON_MAX_STRING);
        s = realloc(s, JSON_MAX_STRING + 3);
        assert_non_null(s);
        strcat(s, "\"");
        assert_int_equal(parse(s, &doc, &root), 0);
        assert_int_equal(root->str.len, JSON_MAX_STRING);
        json_doc_free(doc);
        free(s);

        /* one byte more, from an escape: the decoded length counts */
        s = repeat("\"\\u0062", 1, "", "a", JSON_MAX_STRING);
        s = realloc(s, JSON_MAX_STRING + 16);
        assert_non_null(s);
        strcat(s, "\"");
        assert_int_equal(parse_err(s), -E2BIG);
        free(s);
}

static void test_limits_values(void **state)
{
        struct json_doc *doc;
        const struct json_value *root;
        char *s;

        /* the array itself plus JSON_MAX_VALUES - 1 items: exactly the limit */
        s = repeat("[", 1, "0", ",0", JSON_MAX_VALUES - 2);
        s = realloc(s, strlen(s) + 2);
        assert_non_null(s);
        strcat(s, "]");
        assert_int_equal(parse(s, &doc, &root), 0);
        assert_int_equal(json_count(root), JSON_MAX_VALUES - 1);
        json_doc_free(doc);
        free(s);

        s = repeat("[", 1, "0", ",0", JSON_MAX_VALUES - 1);
        s = realloc(s, strlen(s) + 2);
        assert_non_null(s);
        strcat(s, "]");
        assert_int_equal(parse_err(s), -E2BIG);
        free(s);
}

static void test_duplicate_keys(void **state)
{
        struct json_doc *doc;
        const struct json_value *root;

        assert_int_equal(parse("{\"a\": 1, \"b\": 2, \"a\": 3}", &doc, &root), 0);
        assert_int_equal(json_count(root), 3);
        assert_int_equal(json_int(json_get(root, "a"), 0, 10, -1), 3);
        assert_int_equal(json_int(json_get(root, "b"), 0, 10, -1), 2);
        json_doc_free(doc);
}

static void test_round_trip(void **state)
{
        static const char binary[] = "\x00\x01\x1f \"\\/\x7f\xc3\xa9\xf0\x9d\x84\x9e";
        struct json_writer w;
        struct json_doc *doc;
        const struct json_value *root, *v;
        char *s;

        json_writer_init(&w);
        json_begin_object(&w);
        json_kv_string(&w, "ké\"y\n", "välue");
        json_key(&w, "bin");
        assert_false(json_put_bytes_lossy(&w, binary, sizeof(binary) - 1));
        json_kv_int(&w, "min", INT64_MIN);
        json_kv_int(&w, "max", INT64_MAX);
        json_kv_uint(&w, "u", 5);
        json_key(&w, "nest");
        json_begin_array(&w);
        json_begin_object(&w);
        json_kv_bool(&w, "t", true);
        json_end_object(&w);
        json_put_null(&w);
        json_end_array(&w);
        json_end_object(&w);
        s = json_writer_steal(&w);
        assert_non_null(s);

        assert_int_equal(parse(s, &doc, &root), 0);
        assert_int_equal(json_count(root), 6);
        assert_string_equal(json_string(json_get(root, "ké\"y\n"), NULL), "välue");
        v = json_get(root, "bin");
        assert_int_equal(v->str.len, sizeof(binary) - 1);
        assert_memory_equal(v->str.s, binary, sizeof(binary) - 1);
        assert_true(json_int(json_get(root, "min"), INT64_MIN, INT64_MAX, 0) == INT64_MIN);
        assert_true(json_int(json_get(root, "max"), INT64_MIN, INT64_MAX, 0) == INT64_MAX);
        assert_int_equal(json_int(json_get(root, "u"), 0, 10, 0), 5);
        v = json_get(root, "nest");
        assert_true(json_bool(json_get(json_at(v, 0), "t"), false));
        assert_int_equal(json_at(v, 1)->type, JSON_NULL);
        json_doc_free(doc);
        free(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_writer_object),
                cmocka_unit_test(test_writer_empty_and_top_level),
                cmocka_unit_test(test_writer_escapes),
                cmocka_unit_test(test_writer_lossy),
                cmocka_unit_test(test_writer_misuse),
                cmocka_unit_test(test_parse_types),
                cmocka_unit_test(test_parse_numbers),
                cmocka_unit_test(test_parse_strings),
                cmocka_unit_test(test_parse_syntax_errors),
                cmocka_unit_test(test_limits_depth),
                cmocka_unit_test(test_limits_string),
                cmocka_unit_test(test_limits_values),
                cmocka_unit_test(test_duplicate_keys),
                cmocka_unit_test(test_round_trip),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
