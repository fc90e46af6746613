/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: a sandbox's log is three files (docs/supervisor.md):
 * exec.log and system.log, JSON lines with timestamps, and kernel.log, the
 * guest console as plain text. msb_logs_open() reads what exists into one
 * list sorted by time (kernel lines are placed at their run's start plus
 * the kernel's own timestamp), applies the filters and --tail, and then
 * hands entries out. Following keeps a read offset per file and polls for
 * growth until the sandbox stops running and the files are drained.
 *
 * Command output lines carry "data" (a UTF-8 string) or "data_b64" (the
 * bytes, when they were not UTF-8); both come back as the original bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "internal.h"
#include "state.h"
#include "lib/core/json.h"
#include "lib/core/util.h"

#define LOG_LINE_MAX   (8u << 20)
#define FOLLOW_POLL_MS 200
#define LOG_FILES      3

struct entry {
        int64_t ts_ms;
        msb_log_source source;
        uint32_t session;
        uint8_t *data;
        size_t len;
};

struct log_file {
        const char *name;
        char *path;
        off_t offset;    /* bytes consumed (whole lines) */
        int64_t base_ms; /* kernel.log: the run's start */
};

struct msb_logs {
        char *name;
        struct sandbox_paths paths;
        msb_logs_options opts;
        struct log_file files[LOG_FILES];
        struct entry *entries;
        size_t n, cap, next;
        uint8_t *current; /* data of the entry last returned */
};

static void entries_clear(msb_logs *l)
{
        for (size_t i = l->next; i < l->n; i++)
                free(l->entries[i].data);
        l->n = l->next = 0;
}

static int push(msb_logs *l, struct entry *e)
{
        if (!(l->opts.sources & e->source) ||
            (l->opts.since_ms && e->ts_ms && e->ts_ms < l->opts.since_ms)) {
                free(e->data);
                return 0;
        }
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 256;
                struct entry *v = realloc(l->entries, cap * sizeof(*v));
                if (!v) {
                        free(e->data);
                        return -ENOMEM;
                }
                l->entries = v;
                l->cap = cap;
        }
        l->entries[l->n++] = *e;
        return 0;
}

static msb_log_source source_from(const char *s)
{
        if (streq(s, "stdout"))
                return MSB_LOG_SOURCE_STDOUT;
        if (streq(s, "stderr"))
                return MSB_LOG_SOURCE_STDERR;
        return MSB_LOG_SOURCE_SYSTEM;
}

/* A system event without "data": its fields, as one readable line. */
static char *describe_event(const struct json_value *v)
{
        const char *event = json_string(json_get(v, "event"), NULL);
        const char *message = json_string(json_get(v, "message"), NULL);
        const struct json_value *argv = json_get(v, "argv");
        struct json_writer w;

        if (message)
                return strdup_printf("%s%s%s\n", event ? event : "", event ? ": " : "", message);
        if (event && streq(event, "exited"))
                return strdup_printf(
                        "exited: code %lld, signal %lld\n",
                        (long long)json_int(json_get(v, "code"), INT32_MIN, INT32_MAX, 0),
                        (long long)json_int(json_get(v, "signal"), 0, 128, 0));
        if (argv) {
                json_writer_init(&w);
                json_begin_array(&w);
                for (size_t i = 0; i < json_count(argv); i++)
                        json_put_string(&w, json_string(json_at(argv, i), ""));
                json_end_array(&w);
                char *args = json_writer_steal(&w);
                char *line = strdup_printf("%s: %s\n", event ? event : "exec", args ? args : "");
                free(args);
                return line;
        }
        return strdup_printf("%s\n", event ? event : "event");
}

/* One JSON line of exec.log or system.log. Malformed lines are skipped. */
static int parse_json_line(msb_logs *l, const char *line, size_t len)
{
        struct json_doc *doc;
        const struct json_value *v;
        struct entry e = {0};
        const char *data, *b64, *ts;
        int r;

        if (json_parse(line, len, &doc, &v) < 0)
                return 0;
        ts = json_string(json_get(v, "ts"), NULL);
        if (ts)
                parse_time_iso(ts, &e.ts_ms);
        e.source = source_from(json_string(json_get(v, "source"), "system"));
        e.session = (uint32_t)json_int(json_get(v, "session"), 0, UINT32_MAX, 0);
        data = json_string(json_get(v, "data"), NULL);
        b64 = json_string(json_get(v, "data_b64"), NULL);
        r = 0;
        if (b64) {
                r = base64_decode(b64, &e.data, &e.len);
        } else if (data) {
                const struct json_value *dv = json_get(v, "data");
                e.data = malloc(dv->str.len + 1);
                if (e.data) {
                        memcpy(e.data, dv->str.s, dv->str.len);
                        e.len = dv->str.len;
                } else {
                        r = -ENOMEM;
                }
        } else {
                char *text = describe_event(v);
                e.data = (uint8_t *)text;
                e.len = text ? strlen(text) : 0;
                r = text ? 0 : -ENOMEM;
        }
        json_doc_free(doc);
        if (r == -EBADMSG)
                return 0;
        if (r < 0)
                return r;
        return push(l, &e);
}

/* One kernel console line; "[   1.234567] text" gets a time. */
static int parse_kernel_line(msb_logs *l, const struct log_file *f, const char *line, size_t len)
{
        struct entry e = {.source = MSB_LOG_SOURCE_SYSTEM};
        double secs;

        if (f->base_ms && sscanf(line, "[%lf]", &secs) == 1 && secs >= 0 && secs < 1e9)
                e.ts_ms = f->base_ms + (int64_t)(secs * 1000);
        else
                e.ts_ms = f->base_ms;
        e.data = malloc(len + 1);
        if (!e.data)
                return -ENOMEM;
        memcpy(e.data, line, len);
        e.data[len] = '\n';
        e.len = len + 1;
        return push(l, &e);
}

/* Reads the whole lines added to f since its offset. */
static int read_new_lines(msb_logs *l, struct log_file *f)
{
        _cleanup_close_ int fd = open(f->path, O_RDONLY | O_CLOEXEC);
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t size, start = 0;
        ssize_t n;
        int r = 0;

        if (fd < 0)
                return errno == ENOENT ? 0 : negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (st.st_size < f->offset)
                f->offset = 0; /* rotated or truncated: start over */
        size = (size_t)MIN(st.st_size - f->offset, (off_t)(64u << 20));
        if (size == 0)
                return 0;
        buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        n = pread(fd, buf, size, f->offset);
        if (n < 0)
                return negative_errno();
        for (size_t i = 0; i < (size_t)n && r >= 0; i++) {
                if (buf[i] != '\n')
                        continue;
                if (i - start <= LOG_LINE_MAX && i > start) {
                        if (streq(f->name, "kernel.log"))
                                r = parse_kernel_line(l, f, buf + start, i - start);
                        else
                                r = parse_json_line(l, buf + start, i - start);
                }
                start = i + 1;
        }
        f->offset += (off_t)start;
        return r;
}

static int cmp_entry(const void *a, const void *b)
{
        const struct entry *x = a, *y = b;

        return x->ts_ms < y->ts_ms ? -1 : x->ts_ms > y->ts_ms;
}

/* Reads every file's new lines, sorted by time (stable per file order). */
static int refill(msb_logs *l)
{
        int r;

        entries_clear(l);
        for (size_t i = 0; i < LOG_FILES; i++) {
                r = read_new_lines(l, &l->files[i]);
                if (r < 0)
                        return r;
        }
        /* qsort is not stable; entries of one source are already ordered and
         * equal timestamps across files are rare enough to accept. */
        qsort(l->entries, l->n, sizeof(*l->entries), cmp_entry);
        return 0;
}

void msb_logs_close(msb_logs *l)
{
        if (!l)
                return;
        entries_clear(l);
        free(l->entries);
        free(l->current);
        for (size_t i = 0; i < LOG_FILES; i++)
                free(l->files[i].path);
        sandbox_paths_clear(&l->paths);
        free(l->name);
        free(l);
}

int msb_logs_open(const char *name, const msb_logs_options *opts, msb_logs **ret)
{
        static const char *const files[LOG_FILES] = {"exec.log", "system.log", "kernel.log"};
        msb_sandbox_info *info = NULL;
        msb_logs *l;
        int r;

        r = msb_sandbox_get_info(name, &info);
        if (r < 0)
                return r;
        l = calloc(1, sizeof(*l));
        if (!l) {
                msb_sandbox_info_list_free(info, 1);
                return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        }
        l->opts = *opts;
        if (!l->opts.sources)
                l->opts.sources = MSB_LOG_SOURCE_STDOUT | MSB_LOG_SOURCE_STDERR;
        l->name = strdup(name);
        r = l->name ? sandbox_paths_init(name, &l->paths) : -ENOMEM;
        for (size_t i = 0; r >= 0 && i < LOG_FILES; i++) {
                l->files[i].name = files[i];
                l->files[i].path = strdup_printf("%s/logs/%s", l->paths.dir, files[i]);
                if (!l->files[i].path)
                        r = -ENOMEM;
        }
        l->files[2].base_ms = info->started_at;
        msb_sandbox_info_list_free(info, 1);
        if (r >= 0)
                r = refill(l);
        if (r < 0) {
                msb_logs_close(l);
                return error_set(MSB_ERR_SYSTEM, r, "cannot read the logs of '%s': %s", name,
                                 strerror(-r));
        }
        if (l->opts.tail && l->n > l->opts.tail) {
                for (size_t i = 0; i < l->n - l->opts.tail; i++)
                        free(l->entries[i].data);
                l->next = l->n - l->opts.tail;
        }
        *ret = l;
        return 0;
}

static bool sandbox_running(const msb_logs *l)
{
        return state_supervisor_alive(l->paths.dir);
}

int msb_logs_next(msb_logs *l, msb_log_entry *ret, int timeout_ms)
{
        uint64_t start = now_ns(CLOCK_MONOTONIC);
        int r;

        free(l->current);
        l->current = NULL;
        for (;;) {
                if (l->next < l->n) {
                        struct entry *e = &l->entries[l->next++];
                        l->current = e->data;
                        *ret = (msb_log_entry){.ts_ms = e->ts_ms,
                                               .source = e->source,
                                               .session = e->session,
                                               .data = e->data,
                                               .len = e->len};
                        return 1;
                }
                if (!l->opts.follow)
                        return 0;
                bool running = sandbox_running(l);
                r = refill(l);
                if (r < 0)
                        return error_set(MSB_ERR_SYSTEM, r, "reading logs: %s", strerror(-r));
                if (l->n > 0)
                        continue;
                if (!running)
                        return 0;
                if (timeout_ms >= 0 &&
                    (now_ns(CLOCK_MONOTONIC) - start) / 1000000ULL >= (uint64_t)timeout_ms)
                        return 0;
                poll(NULL, 0, FOLLOW_POLL_MS);
        }
}
