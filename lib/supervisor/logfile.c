/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: the file is opened O_APPEND and its size tracked
 * from fstat() at open plus every line written; only this process writes
 * it (the supervisor holds the sandbox's lock), so the count stays true.
 * Rotation is rename(PATH, PATH.1) then a fresh PATH: a reader holding the
 * old file keeps reading it whole.
 */
#include "logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "lib/core/util.h"

struct logfile {
        char *path;
        char *old_path; /* PATH.1 */
        int fd;
        uint64_t size;
        uint64_t max_bytes;
};

static int open_log(struct logfile *l)
{
        struct stat st;
        int fd;

        fd = open(l->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0) {
                int r = negative_errno();
                close(fd);
                return r;
        }
        safe_close(l->fd);
        l->fd = fd;
        l->size = (uint64_t)st.st_size;
        return 0;
}

int logfile_open(const char *path, uint64_t max_bytes, struct logfile **ret)
{
        _cleanup_(logfile_freep) struct logfile *l = NULL;
        int r;

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->fd = -1;
        l->max_bytes = max_bytes;
        l->path = strdup(path);
        l->old_path = strdup_printf("%s.1", path);
        if (!l->path || !l->old_path)
                return -ENOMEM;
        r = open_log(l);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}

struct logfile *logfile_free(struct logfile *l)
{
        if (!l)
                return NULL;
        safe_close(l->fd);
        free(l->path);
        free(l->old_path);
        free(l);
        return NULL;
}

void logfile_json_begin(struct json_writer *w, const char *source)
{
        char ts[32];

        format_time_iso((int64_t)(now_ns(CLOCK_REALTIME) / 1000000u), ts, sizeof(ts));
        json_begin_object(w);
        json_kv_string(w, "ts", ts);
        json_kv_string(w, "source", source);
}

static int rotate(struct logfile *l)
{
        if (rename(l->path, l->old_path) < 0)
                return negative_errno();
        return open_log(l);
}

int logfile_append(struct logfile *l, const void *data, size_t len)
{
        int r;

        if (l->size > 0 && l->size + len > l->max_bytes) {
                r = rotate(l);
                if (r < 0)
                        return r;
        }
        r = write_all(l->fd, data, len);
        if (r < 0)
                return r;
        l->size += len;
        return 0;
}

int logfile_json_commit(struct logfile *l, struct json_writer *w)
{
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r;

        json_end_object(w);
        if (w->err < 0) {
                r = w->err;
                json_writer_free(w);
                return r;
        }
        text = json_writer_steal_line(w, &len);
        if (!text)
                return -ENOMEM;
        return logfile_append(l, text, len);
}
