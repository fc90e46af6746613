/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: the writer and the parser of the ready line live
 * together so the two ends cannot drift apart. The writer keeps the line
 * under READYLINE_MAX by cutting the free texts (message, notice) until it
 * fits, since escaping can make a byte six bytes long.
 */
#include "readyline.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/core/json.h"
#include "lib/core/util.h"

/* One attempt with the texts cut to at most `room` bytes each: the line,
 * its newline included, and its length. */
static int format(const struct readyline *rl, int room, char **ret, size_t *ret_len)
{
        struct json_writer w;
        char buf[sizeof(rl->message)];
        char *text;

        assert(room >= 0 && (size_t)room < sizeof(buf));

        json_writer_init(&w);
        json_begin_object(&w);
        json_kv_bool(&w, "ok", rl->ok);
        if (rl->ok) {
                json_kv_string(&w, "accel", rl->accel);
                copy_utf8(buf, (size_t)room + 1, rl->notice);
                json_kv_string(&w, "notice", buf);
                json_kv_uint(&w, "start_ns", rl->start_ns);
                json_kv_uint(&w, "guest_boot_ns", rl->guest_boot_ns);
                json_kv_uint(&w, "guest_ready_ns", rl->guest_ready_ns);
                json_kv_int(&w, "pid", rl->pid);
                json_kv_int(&w, "qemu_pid", rl->qemu_pid);
        } else {
                json_kv_string(&w, "kind", rl->kind);
                copy_utf8(buf, (size_t)room + 1, rl->message);
                json_kv_string(&w, "message", buf);
        }
        json_end_object(&w);
        text = json_writer_steal_line(&w, ret_len);
        if (!text)
                return -ENOMEM;
        *ret = text;
        return 0;
}

int readyline_format(const struct readyline *rl, char **ret)
{
        char *text = NULL;
        size_t len;
        int r;

        /* Escapes can make a text up to six times longer: cut it until the
         * line fits (cuts fall between UTF-8 characters). */
        for (int room = (int)sizeof(rl->message) - 1;; room /= 2) {
                free(text);
                r = format(rl, room, &text, &len);
                if (r < 0)
                        return r;
                if (len <= READYLINE_MAX || room == 0)
                        break;
        }
        *ret = text;
        return 0;
}

static void copy_text(char *dst, size_t size, const struct json_value *v)
{
        copy_utf8(dst, size, json_string(v, ""));
}

int readyline_parse(const char *line, size_t len, struct readyline *ret)
{
        struct json_doc *doc = NULL;
        const struct json_value *root, *ok;
        struct readyline rl = {0};
        int r;

        r = json_parse(line, len, &doc, &root);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return -EBADMSG;
        ok = json_get(root, "ok");
        r = 0;
        if (!ok || ok->type != JSON_BOOL) {
                r = -EBADMSG;
        } else if (ok->b) {
                rl.ok = true;
                copy_text(rl.accel, sizeof(rl.accel), json_get(root, "accel"));
                copy_text(rl.notice, sizeof(rl.notice), json_get(root, "notice"));
                rl.start_ns = (uint64_t)json_int(json_get(root, "start_ns"), 0, INT64_MAX, 0);
                rl.guest_boot_ns =
                        (uint64_t)json_int(json_get(root, "guest_boot_ns"), 0, INT64_MAX, 0);
                rl.guest_ready_ns =
                        (uint64_t)json_int(json_get(root, "guest_ready_ns"), 0, INT64_MAX, 0);
                rl.pid = json_int(json_get(root, "pid"), 0, INT32_MAX, 0);
                rl.qemu_pid = json_int(json_get(root, "qemu_pid"), 0, INT32_MAX, 0);
        } else {
                copy_text(rl.kind, sizeof(rl.kind), json_get(root, "kind"));
                copy_text(rl.message, sizeof(rl.message), json_get(root, "message"));
                if (!rl.kind[0])
                        r = -EBADMSG;
        }
        json_doc_free(doc);
        if (r < 0)
                return r;
        *ret = rl;
        return 0;
}
