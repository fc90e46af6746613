/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: requests come from processes of the sandbox's owner
 * (the run directory is 0700), but are still parsed as untrusted input by
 * the bounded JSON parser; unknown fields are ignored so that a newer msb
 * can talk to an older supervisor. Answers are built with the JSON writer
 * and end with a newline.
 */
#include "ctlmsg.h"

#include <errno.h>
#include <string.h>

#include "lib/core/json.h"
#include "lib/core/util.h"

int ctlmsg_parse(const char *line, size_t len, struct ctlmsg_request *ret)
{
        struct json_doc *doc = NULL;
        const struct json_value *root, *timeout;
        struct ctlmsg_request req = {.timeout_ms = CTLMSG_DEFAULT_STOP_TIMEOUT_MS};
        const char *op;
        int r;

        if (len > CTLMSG_MAX_LINE)
                return -E2BIG;
        r = json_parse(line, len, &doc, &root);
        if (r < 0)
                return -EBADMSG;
        r = 0;
        op = json_string(json_get(root, "op"), NULL);
        if (!root || root->type != JSON_OBJECT || !op) {
                r = -EBADMSG;
        } else if (streq(op, "status")) {
                req.op = CTLMSG_STATUS;
        } else if (streq(op, "stop")) {
                req.op = CTLMSG_STOP;
                timeout = json_get(root, "timeout_ms");
                if (timeout && timeout->type != JSON_NULL) {
                        int64_t v = json_int(timeout, 0, CTLMSG_MAX_STOP_TIMEOUT_MS, -1);
                        if (v < 0)
                                r = -EBADMSG;
                        else
                                req.timeout_ms = (uint64_t)v;
                }
        } else {
                r = -EOPNOTSUPP;
        }
        json_doc_free(doc);
        if (r < 0)
                return r;
        *ret = req;
        return 0;
}

const char *ctlmsg_error_text(int r)
{
        switch (r) {
        case -EBADMSG:
                return "bad request";
        case -EOPNOTSUPP:
                return "unknown op";
        case -E2BIG:
                return "request too long";
        default:
                return strerror(-r);
        }
}

/* Ends the object and the line. */
static int finish(struct json_writer *w, char **ret)
{
        size_t len;

        json_end_object(w);
        *ret = json_writer_steal_line(w, &len);
        return *ret ? 0 : -ENOMEM;
}

int ctlmsg_format_status(const struct ctlmsg_status *s, char **ret)
{
        struct json_writer w;

        json_writer_init(&w);
        json_begin_object(&w);
        json_kv_bool(&w, "ok", true);
        json_kv_string(&w, "status", s->status);
        json_kv_int(&w, "pid", s->pid);
        json_kv_int(&w, "qemu_pid", s->qemu_pid);
        json_kv_int(&w, "started_at", s->started_at);
        json_kv_uint(&w, "clients", s->clients);
        json_kv_uint(&w, "sessions", s->sessions);
        json_kv_string(&w, "accel", s->accel);
        if (s->network) {
                json_key(&w, "network");
                json_put_raw(&w, s->network);
        }
        return finish(&w, ret);
}

int ctlmsg_format_stopped(const char *reason, char **ret)
{
        struct json_writer w;

        json_writer_init(&w);
        json_begin_object(&w);
        json_kv_bool(&w, "ok", true);
        json_kv_string(&w, "reason", reason);
        return finish(&w, ret);
}

int ctlmsg_format_error(const char *error, char **ret)
{
        struct json_writer w;

        json_writer_init(&w);
        json_begin_object(&w);
        json_kv_bool(&w, "ok", false);
        json_kv_string(&w, "error", error);
        return finish(&w, ret);
}
