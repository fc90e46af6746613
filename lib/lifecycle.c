/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: lifecycle operations on a sandbox by name. Each takes
 * the sandbox's op.lock first, so that several msb processes acting on one
 * sandbox at once queue up instead of interleaving, and re-reads the record
 * after getting it (the sandbox may have changed, or vanished, while we
 * waited). Reading a record reconciles it with reality (state_get()).
 *
 * Stopping asks the supervisor over its control socket; if it does not
 * answer or does not go, it is killed (its QEMU dies with it) and the run is
 * recorded as killed. Either way the operation returns only once the
 * supervisor's lock is free, so "stopped" means no process is left.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "error.h"
#include "internal.h"
#include "launch.h"
#include "state.h"
#include "lib/core/json.h"
#include "lib/core/util.h"

#define STOP_ANSWER_MARGIN_MS (15 * 1000)
#define EXIT_WAIT_MS          (10 * 1000)
#define EXIT_FAST_POLL_NS     (100 * 1000 * 1000ULL)
#define START_DEFAULT_WAIT_MS (120 * 1000)

/* A supervisor that has answered "stop" is gone within milliseconds, so its
 * lock is looked at every millisecond at first, then every 10. */
static bool wait_supervisor_gone(const char *dir, int timeout_ms)
{
        uint64_t start = now_ns(CLOCK_MONOTONIC), now = start;
        uint64_t deadline = start + (uint64_t)timeout_ms * 1000000ULL;

        while (state_supervisor_alive(dir)) {
                if (now >= deadline)
                        return false;
                usleep(now - start < EXIT_FAST_POLL_NS ? 1000 : 10 * 1000);
                now = now_ns(CLOCK_MONOTONIC);
        }
        return true;
}

int sandbox_stop_locked(struct store *st, const char *name, const struct sandbox_paths *p,
                        uint64_t timeout_ms)
{
        _cleanup_free_ char *request = NULL, *answer = NULL;
        struct store_sandbox rec;
        struct store_run run;
        int r;

        if (!state_supervisor_alive(p->dir))
                return 0;
        request = strdup_printf("{\"op\":\"stop\",\"timeout_ms\":%llu}",
                                (unsigned long long)timeout_ms);
        if (!request)
                return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        r = control_call(p->run_dir, request, (int)MIN(timeout_ms + STOP_ANSWER_MARGIN_MS, 600000),
                         &answer);
        if (r >= 0 && wait_supervisor_gone(p->dir, EXIT_WAIT_MS))
                return 0;

        /* It did not answer or did not go: kill it. */
        r = store_sandbox_get(st, name, &rec);
        if (r < 0)
                return error_set(MSB_ERR_SYSTEM, r, "cannot read sandbox '%s'", name);
        r = store_run_last(st, rec.id, &run);
        store_sandbox_clear(&rec);
        if (r < 0)
                return error_set(MSB_ERR_SYSTEM, r,
                                 "sandbox '%s' does not answer and has no recorded run", name);
        if (run.ended_at == 0 && run.supervisor_pid > 0 && state_supervisor_alive(p->dir))
                kill(run.supervisor_pid, SIGKILL);
        if (!wait_supervisor_gone(p->dir, EXIT_WAIT_MS)) {
                store_run_clear(&run);
                return error_set(MSB_ERR_SYSTEM, -ETIMEDOUT,
                                 "the supervisor of sandbox '%s' (pid %d) does not go away", name,
                                 (int)run.supervisor_pid);
        }
        if (run.ended_at == 0)
                store_run_end(st, run.id, "killed", "stopped");
        store_run_clear(&run);
        return 0;
}

/* Runs fn with the store open, the name checked and op.lock held. */
static int with_sandbox(const char *name,
                        int (*fn)(struct store *, const char *, const struct sandbox_paths *,
                                  void *),
                        void *arg)
{
        struct sandbox_paths p;
        struct store_sandbox rec;
        struct store *st;
        int op_fd = -1, r;

        r = state_open_get(name, &st, &rec);
        if (r < 0)
                return r;
        store_sandbox_clear(&rec);
        r = sandbox_paths_init(name, &p);
        if (r < 0)
                goto out;
        if (mkdir_p(p.dir, 0700) < 0 || state_op_lock(p.dir, &op_fd) < 0) {
                r = error_set(MSB_ERR_SYSTEM, -EIO, "cannot lock sandbox '%s' in %s", name, p.dir);
        } else {
                r = fn(st, name, &p, arg);
                safe_close(op_fd);
        }
        sandbox_paths_clear(&p);
out:
        store_close(st);
        return r;
}

static int do_stop(struct store *st, const char *name, const struct sandbox_paths *p, void *arg)
{
        struct store_sandbox rec;
        int r;

        r = state_get(st, name, &rec);
        if (r < 0)
                return r;
        store_sandbox_clear(&rec);
        return sandbox_stop_locked(st, name, p, *(uint64_t *)arg);
}

int msb_sandbox_stop(const char *name, uint64_t timeout_ms)
{
        return with_sandbox(name, do_stop, &timeout_ms);
}

static int do_remove(struct store *st, const char *name, const struct sandbox_paths *p, void *arg)
{
        bool force = *(bool *)arg;
        struct store_sandbox rec;
        int r;

        r = state_get(st, name, &rec);
        if (r < 0)
                return r;
        if (state_supervisor_alive(p->dir)) {
                if (!force) {
                        r = error_set(MSB_ERR_CONFLICT, -EBUSY,
                                      "sandbox '%s' is %s: stop it first, or use 'msb rm -f'", name,
                                      rec.status);
                        store_sandbox_clear(&rec);
                        return r;
                }
                r = sandbox_stop_locked(st, name, p, 0);
                if (r < 0) {
                        store_sandbox_clear(&rec);
                        return r;
                }
        }
        store_sandbox_clear(&rec);
        rm_rf(p->run_dir);
        r = rm_rf(p->dir);
        if (r < 0)
                return error_set(MSB_ERR_SYSTEM, r, "cannot remove %s: %s", p->dir, strerror(-r));
        r = store_sandbox_delete(st, name);
        if (r < 0 && r != -ENOENT)
                return error_set(MSB_ERR_SYSTEM, r, "cannot remove the record of '%s'", name);
        return 0;
}

int msb_sandbox_remove(const char *name, int force)
{
        bool f = force != 0;

        return with_sandbox(name, do_remove, &f);
}

struct start_args {
        int cancel_fd;
};

static int do_start(struct store *st, const char *name, const struct sandbox_paths *p, void *arg)
{
        const struct start_args *a = arg;
        struct json_doc *doc = NULL;
        const struct json_value *config;
        struct launch_result boot;
        struct store_sandbox rec;
        _cleanup_free_ char *before = NULL;
        uint64_t wait_ms = START_DEFAULT_WAIT_MS;
        int parent_fd, r;

        r = state_get(st, name, &rec);
        if (r < 0)
                return r;
        if (state_supervisor_alive(p->dir)) {
                store_sandbox_clear(&rec);
                return 0;
        }
        if (json_parse(rec.config, strlen(rec.config), &doc, &config) == 0) {
                int64_t boot_ms = json_int(json_get(config, "boot_timeout_ms"), 0, INT32_MAX, 0);
                if (boot_ms > 0)
                        wait_ms = (uint64_t)boot_ms + STOP_ANSWER_MARGIN_MS;
                json_doc_free(doc);
        }
        before = rec.status;
        rec.status = NULL;
        store_sandbox_clear(&rec);
        store_sandbox_set_status(st, name, "starting");
        r = launch_supervisor(p, name, false, a->cancel_fd, wait_ms, &parent_fd, &boot);
        if (r < 0) {
                store_sandbox_set_status(st, name,
                                         streq(before, "created") ? "created" : "stopped");
                return r;
        }
        return 0;
}

int msb_sandbox_start(const char *name, int cancel_fd)
{
        struct start_args a = {.cancel_fd = cancel_fd};

        return with_sandbox(name, do_start, &a);
}

/* ---- listing ---- */

/* The image as the user named it (config.json), else as recorded. */
static char *config_image(const struct store_sandbox *rec)
{
        const struct json_value *root;
        struct json_doc *doc;
        char *image;

        if (json_parse(rec->config, strlen(rec->config), &doc, &root) < 0)
                return strdup(rec->image);
        image = strdup(json_string(json_get(root, "image"), rec->image));
        json_doc_free(doc);
        return image;
}

static int info_fill(struct store *st, const struct store_sandbox *rec, msb_sandbox_info *info)
{
        struct store_run run;
        int r;

        *info = (msb_sandbox_info){
                .name = strdup(rec->name),
                .image = config_image(rec),
                .status = strdup(rec->status),
                .ephemeral = rec->ephemeral,
                .created_at = rec->created_at,
                .labels = calloc(rec->n_labels ? rec->n_labels : 1, sizeof(msb_label)),
                .n_labels = rec->n_labels,
        };
        if (!info->name || !info->image || !info->status || !info->labels)
                return -ENOMEM;
        for (size_t i = 0; i < rec->n_labels; i++) {
                info->labels[i].key = strdup(rec->labels[i].key);
                info->labels[i].value = strdup(rec->labels[i].value);
                if (!info->labels[i].key || !info->labels[i].value)
                        return -ENOMEM;
        }
        r = store_run_last(st, rec->id, &run);
        if (r == 0) {
                info->started_at = run.started_at;
                info->ended_at = run.ended_at;
                info->supervisor_pid = run.ended_at ? 0 : (int)run.supervisor_pid;
                info->end_reason = strdup(run.reason ? run.reason : "");
                store_run_clear(&run);
        } else {
                info->end_reason = strdup("");
        }
        return info->end_reason ? 0 : -ENOMEM;
}

void msb_sandbox_info_list_free(msb_sandbox_info *list, size_t count)
{
        if (!list)
                return;
        for (size_t i = 0; i < count; i++) {
                msb_sandbox_info *in = &list[i];
                free(in->name);
                free(in->image);
                free(in->status);
                free(in->end_reason);
                for (size_t j = 0; in->labels && j < in->n_labels; j++) {
                        free(in->labels[j].key);
                        free(in->labels[j].value);
                }
                free(in->labels);
        }
        free(list);
}

int msb_sandbox_list(const char *const *label_filters, size_t n_filters, msb_sandbox_info **ret,
                     size_t *ret_count)
{
        struct store_sandbox *recs = NULL;
        msb_sandbox_info *list = NULL;
        struct store *st;
        size_t n = 0, out = 0;
        int r;

        r = state_open(&st);
        if (r < 0)
                return r;
        r = store_sandbox_list(st, label_filters, n_filters, &recs, &n);
        if (r < 0) {
                store_close(st);
                return error_set(MSB_ERR_SYSTEM, r, "cannot list sandboxes: %s", strerror(-r));
        }
        list = calloc(n ? n : 1, sizeof(*list));
        if (!list)
                r = -ENOMEM;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                struct store_sandbox fresh;
                /* reconcile: a crashed supervisor shows as crashed at once */
                if (state_get(st, recs[i].name, &fresh) < 0)
                        continue; /* removed meanwhile */
                r = info_fill(st, &fresh, &list[out++]);
                store_sandbox_clear(&fresh);
        }
        store_sandbox_list_free(recs, n);
        store_close(st);
        if (r < 0) {
                msb_sandbox_info_list_free(list, out);
                return error_set(MSB_ERR_SYSTEM, r, "out of memory");
        }
        error_clear();
        *ret = list;
        *ret_count = out;
        return 0;
}

int msb_sandbox_get_info(const char *name, msb_sandbox_info **ret)
{
        struct store_sandbox rec;
        msb_sandbox_info *info;
        struct store *st;
        int r;

        r = state_open_get(name, &st, &rec);
        if (r < 0)
                return r;
        info = calloc(1, sizeof(*info));
        r = info ? info_fill(st, &rec, info) : -ENOMEM;
        store_sandbox_clear(&rec);
        store_close(st);
        if (r < 0) {
                msb_sandbox_info_list_free(info, 1);
                return error_set(MSB_ERR_SYSTEM, r, "out of memory");
        }
        *ret = info;
        return 0;
}

static void kv_time(struct json_writer *w, const char *key, int64_t ms)
{
        char buf[32];

        if (ms)
                json_kv_string(w, key, format_time_iso(ms, buf, sizeof(buf)));
        else
                json_kv_string(w, key, NULL);
}

/* What only the running supervisor knows: its network (addresses and
 * counters). Nothing is written when it does not answer. */
static void inspect_live(struct json_writer *w, const struct sandbox_paths *p)
{
        _cleanup_free_ char *answer = NULL;
        const struct json_value *root, *net;
        struct json_writer part;
        struct json_doc *doc;
        char *text;

        if (control_call(p->run_dir, "{\"op\":\"status\"}", 5000, &answer) < 0 ||
            json_parse(answer, strlen(answer), &doc, &root) < 0)
                return;
        net = json_get(root, "network");
        if (net && net->type == JSON_OBJECT) {
                /* re-serialise: the answer came from another process */
                json_writer_init(&part);
                json_begin_object(&part);
                for (size_t i = 0; i < net->c.count; i++) {
                        const struct json_value *v = &net->c.items[i];
                        if (v->type == JSON_NUMBER && v->num.is_int)
                                json_kv_int(&part, net->c.keys[i], v->num.i);
                        else if (v->type == JSON_STRING)
                                json_kv_string(&part, net->c.keys[i], v->str.s);
                }
                json_end_object(&part);
                text = json_writer_steal(&part);
                if (text) {
                        json_key(w, "network");
                        json_put_raw(w, text);
                        free(text);
                }
        }
        json_doc_free(doc);
}

int msb_sandbox_inspect(const char *name, char **ret_json)
{
        msb_sandbox_info *info = NULL;
        struct sandbox_paths p;
        struct store_sandbox rec;
        struct store *st;
        struct json_writer w;
        char *text;
        int r;

        r = msb_sandbox_get_info(name, &info);
        if (r < 0)
                return r;
        r = state_open(&st);
        if (r >= 0) {
                r = state_get(st, name, &rec);
                store_close(st);
        }
        if (r >= 0) {
                r = sandbox_paths_init(name, &p);
                if (r < 0)
                        store_sandbox_clear(&rec);
        }
        if (r < 0) {
                msb_sandbox_info_list_free(info, 1);
                return r;
        }
        json_writer_init(&w);
        json_begin_object(&w);
        json_kv_string(&w, "name", info->name);
        json_kv_string(&w, "image", info->image);
        json_kv_string(&w, "image_ref", rec.image); /* pinned: name@sha256:... */
        json_kv_string(&w, "status", info->status);
        json_kv_bool(&w, "ephemeral", info->ephemeral);
        kv_time(&w, "created_at", info->created_at);
        json_key(&w, "labels");
        json_begin_object(&w);
        for (size_t i = 0; i < info->n_labels; i++)
                json_kv_string(&w, info->labels[i].key, info->labels[i].value);
        json_end_object(&w);
        json_key(&w, "last_run");
        if (info->started_at) {
                json_begin_object(&w);
                kv_time(&w, "started_at", info->started_at);
                kv_time(&w, "ended_at", info->ended_at);
                json_kv_string(&w, "end_reason", *info->end_reason ? info->end_reason : NULL);
                if (info->supervisor_pid)
                        json_kv_int(&w, "supervisor_pid", info->supervisor_pid);
                json_end_object(&w);
        } else {
                json_put_null(&w);
        }
        json_key(&w, "config");
        json_put_raw(&w, rec.config);
        if (streq(info->status, "running"))
                inspect_live(&w, &p);
        json_key(&w, "paths");
        json_begin_object(&w);
        json_kv_string(&w, "dir", p.dir);
        json_kv_string(&w, "run_dir", p.run_dir);
        json_end_object(&w);
        json_end_object(&w);
        text = json_writer_steal(&w);
        store_sandbox_clear(&rec);
        sandbox_paths_clear(&p);
        msb_sandbox_info_list_free(info, 1);
        if (!text)
                return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        *ret_json = text;
        return 0;
}
