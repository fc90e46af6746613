/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb ls, status, inspect: what sandboxes exist and what state they are in.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "lib/core/json.h"
#include "lib/core/util.h"

#define MAX_LABEL_FILTERS 32

/* "running (3 minutes)", "stopped 5 minutes ago", "stopped (idle_timeout)
 * 5 minutes ago", "crashed 1 minute ago", "created". */
static const char *status_text(const msb_sandbox_info *in, char *buf, size_t size)
{
        char t[32];

        if (streq(in->status, "running") && in->started_at)
                snprintf(buf, size, "running (%s)", cli_format_age(in->started_at, t, sizeof(t)));
        else if (*in->end_reason && in->ended_at && !streq(in->end_reason, in->status))
                snprintf(buf, size, "%s (%s) %s", in->status, in->end_reason,
                         cli_format_ago(in->ended_at, t, sizeof(t)));
        else if (in->ended_at)
                snprintf(buf, size, "%s %s", in->status,
                         cli_format_ago(in->ended_at, t, sizeof(t)));
        else
                snprintf(buf, size, "%s", in->status);
        return buf;
}

static void print_json_list(const msb_sandbox_info *list, size_t n)
{
        struct json_writer w;
        char *text;

        json_writer_init(&w);
        json_begin_array(&w);
        for (size_t i = 0; i < n; i++) {
                const msb_sandbox_info *in = &list[i];
                char t[32];

                json_begin_object(&w);
                json_kv_string(&w, "name", in->name);
                json_kv_string(&w, "image", in->image);
                json_kv_string(&w, "status", in->status);
                json_kv_string(&w, "end_reason", *in->end_reason ? in->end_reason : NULL);
                json_kv_bool(&w, "ephemeral", in->ephemeral);
                json_kv_string(&w, "created_at", format_time_iso(in->created_at, t, sizeof(t)));
                json_kv_string(&w, "started_at",
                               in->started_at ? format_time_iso(in->started_at, t, sizeof(t))
                                              : NULL);
                json_kv_string(&w, "ended_at",
                               in->ended_at ? format_time_iso(in->ended_at, t, sizeof(t)) : NULL);
                json_key(&w, "labels");
                json_begin_object(&w);
                for (size_t j = 0; j < in->n_labels; j++)
                        json_kv_string(&w, in->labels[j].key, in->labels[j].value);
                json_end_object(&w);
                json_end_object(&w);
        }
        json_end_array(&w);
        text = json_writer_steal(&w);
        if (text)
                printf("%s\n", text);
        free(text);
}

static void ls_usage(FILE *f)
{
        fprintf(f, "Usage: msb ls [OPTIONS]\n"
                   "\n"
                   "List sandboxes.\n"
                   "\n"
                   "Options:\n"
                   "      --running            Only running sandboxes\n"
                   "      --stopped            Only sandboxes that are not running\n"
                   "      --label KEY[=VALUE]  Only sandboxes with this label (repeatable)\n"
                   "      --format table|json  Output format (default table)\n"
                   "  -q, --quiet              Print names only\n"
                   "  -h, --help               Show this help\n");
}

int cmd_ls(int argc, char **argv)
{
        enum { OPT_RUNNING = 256, OPT_STOPPED, OPT_LABEL, OPT_FORMAT };
        static const struct option options[] = {
                {"running", no_argument, NULL, OPT_RUNNING},
                {"stopped", no_argument, NULL, OPT_STOPPED},
                {"label", required_argument, NULL, OPT_LABEL},
                {"format", required_argument, NULL, OPT_FORMAT},
                {"quiet", no_argument, NULL, 'q'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        const char *filters[MAX_LABEL_FILTERS];
        size_t n_filters = 0, n = 0;
        bool running = false, stopped = false, json = false, names = false;
        msb_sandbox_info *list = NULL;
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "+qh", options, NULL)) != -1) {
                switch (c) {
                case OPT_RUNNING:
                        running = true;
                        break;
                case OPT_STOPPED:
                        stopped = true;
                        break;
                case OPT_LABEL:
                        if (n_filters == MAX_LABEL_FILTERS) {
                                cli_error("too many --label filters");
                                return EXIT_USAGE;
                        }
                        filters[n_filters++] = optarg;
                        break;
                case OPT_FORMAT:
                        if (!streq(optarg, "json") && !streq(optarg, "table")) {
                                cli_error("unknown format '%s': use table or json", optarg);
                                return EXIT_USAGE;
                        }
                        json = streq(optarg, "json");
                        break;
                case 'q':
                        names = true;
                        break;
                case 'h':
                        ls_usage(stdout);
                        return 0;
                default:
                        fprintf(stderr, "Run 'msb ls --help' for usage.\n");
                        return EXIT_USAGE;
                }
        }
        if (optind < argc) {
                cli_error("ls takes no arguments");
                return EXIT_USAGE;
        }
        if (msb_sandbox_list(filters, n_filters, &list, &n) < 0)
                return cli_api_error();
        /* keep only what --running/--stopped ask for, in place */
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) {
                bool is_running = streq(list[i].status, "running");
                if ((running && !is_running) || (stopped && is_running))
                        continue;
                msb_sandbox_info tmp = list[kept];
                list[kept++] = list[i];
                list[i] = tmp;
        }
        if (json) {
                print_json_list(list, kept);
        } else if (names) {
                for (size_t i = 0; i < kept; i++)
                        printf("%s\n", list[i].name);
        } else {
                printf("%-20s %-24s %-34s %s\n", "NAME", "IMAGE", "STATUS", "CREATED");
                for (size_t i = 0; i < kept; i++) {
                        char st[96], t[32];
                        printf("%-20s %-24s %-34s %s\n", list[i].name, list[i].image,
                               status_text(&list[i], st, sizeof(st)),
                               cli_format_ago(list[i].created_at, t, sizeof(t)));
                }
        }
        msb_sandbox_info_list_free(list, n);
        return 0;
}

int cmd_status(int argc, char **argv)
{
        msb_sandbox_info *in = NULL;
        char st[96], t[32];

        if (argc != 2 || argv[1][0] == '-') {
                if (argc == 2 && (streq(argv[1], "-h") || streq(argv[1], "--help"))) {
                        printf("Usage: msb status NAME\n\nShow the state of a sandbox.\n");
                        return 0;
                }
                cli_error("status needs exactly one sandbox NAME");
                return EXIT_USAGE;
        }
        if (msb_sandbox_get_info(argv[1], &in) < 0)
                return cli_api_error();
        printf("name:     %s\n", in->name);
        printf("status:   %s\n", status_text(in, st, sizeof(st)));
        printf("image:    %s\n", in->image);
        printf("created:  %s\n", format_time_iso(in->created_at, t, sizeof(t)));
        if (in->started_at)
                printf("started:  %s\n", format_time_iso(in->started_at, t, sizeof(t)));
        if (in->ended_at)
                printf("ended:    %s (%s)\n", format_time_iso(in->ended_at, t, sizeof(t)),
                       in->end_reason);
        if (in->supervisor_pid)
                printf("pid:      %d (supervisor)\n", in->supervisor_pid);
        for (size_t i = 0; i < in->n_labels; i++)
                printf("label:    %s=%s\n", in->labels[i].key, in->labels[i].value);
        msb_sandbox_info_list_free(in, 1);
        return 0;
}

static void print_indent(int depth)
{
        for (int i = 0; i < depth; i++)
                fputs("  ", stdout);
}

static void print_string(const char *s, size_t len)
{
        struct json_writer w;
        char *text;

        json_writer_init(&w);
        json_put_bytes_lossy(&w, s, len);
        text = json_writer_steal(&w);
        fputs(text ? text : "\"\"", stdout);
        free(text);
}

static void print_value(const struct json_value *v, int depth)
{
        switch (v->type) {
        case JSON_NULL:
                fputs("null", stdout);
                break;
        case JSON_BOOL:
                fputs(v->b ? "true" : "false", stdout);
                break;
        case JSON_NUMBER:
                if (v->num.is_int)
                        printf("%lld", (long long)v->num.i);
                else
                        printf("%.17g", v->num.d);
                break;
        case JSON_STRING:
                print_string(v->str.s, v->str.len);
                break;
        case JSON_ARRAY:
        case JSON_OBJECT:
                if (v->c.count == 0) {
                        fputs(v->type == JSON_ARRAY ? "[]" : "{}", stdout);
                        break;
                }
                fputs(v->type == JSON_ARRAY ? "[\n" : "{\n", stdout);
                for (size_t i = 0; i < v->c.count; i++) {
                        print_indent(depth + 1);
                        if (v->type == JSON_OBJECT) {
                                print_string(v->c.keys[i], strlen(v->c.keys[i]));
                                fputs(": ", stdout);
                        }
                        print_value(&v->c.items[i], depth + 1);
                        fputs(i + 1 < v->c.count ? ",\n" : "\n", stdout);
                }
                print_indent(depth);
                fputs(v->type == JSON_ARRAY ? "]" : "}", stdout);
                break;
        }
}

int cmd_inspect(int argc, char **argv)
{
        const struct json_value *root;
        struct json_doc *doc = NULL;
        char *text = NULL;

        if (argc != 2 || argv[1][0] == '-') {
                if (argc == 2 && (streq(argv[1], "-h") || streq(argv[1], "--help"))) {
                        printf("Usage: msb inspect NAME\n\n"
                               "Print everything known about a sandbox as JSON.\n");
                        return 0;
                }
                cli_error("inspect needs exactly one sandbox NAME");
                return EXIT_USAGE;
        }
        if (msb_sandbox_inspect(argv[1], &text) < 0)
                return cli_api_error();
        if (json_parse(text, strlen(text), &doc, &root) == 0) {
                print_value(root, 0);
                putchar('\n');
                json_doc_free(doc);
        } else {
                printf("%s\n", text);
        }
        free(text);
        return 0;
}
