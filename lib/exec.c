/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: a command is one protocol session. msb_exec_start()
 * sends core.exec.request on a fresh session id; msb_exec_next_event() pops
 * that session's queued messages, pumping the shared channel when the queue
 * is empty, and turns them into events. Stdin is flow-controlled: at most
 * PROTO_STDIN_WINDOW bytes may be unacknowledged (core.exec.stdin.ack), so a
 * command that never reads cannot make either side buffer without bound.
 * A timeout is enforced here on the host: when it passes, SIGKILL goes to
 * the command's process group and the exit event says timed_out.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chan.h"
#include "error.h"
#include "image-defaults.h"
#include "internal.h"
#include "lib/core/util.h"

struct msb_exec {
        msb_sandbox *sb;
        uint32_t id;
        bool finished; /* the final event was returned */
        bool stdin_open;
        uint64_t stdin_sent;
        uint64_t stdin_acked;
        uint64_t deadline_ns; /* 0: none */
        bool timed_out;
        struct chan_msg *current; /* backs the data of the last event */
        char message[384];
};

int msb_exec_fd(const msb_exec *ex)
{
        return chan_fd(sandbox_chan(ex->sb));
}

int msb_exec_wait_hint_ms(const msb_exec *ex)
{
        uint64_t now;

        if (!ex->deadline_ns || ex->timed_out || ex->finished)
                return -1;
        now = now_ns(CLOCK_MONOTONIC);
        if (now >= ex->deadline_ns)
                return 0;
        return (int)MIN((ex->deadline_ns - now) / 1000000ULL + 1, (uint64_t)INT32_MAX);
}

static int send_frame(msb_exec *ex, int (*encode)(struct cbor_buf *, msb_exec *, const void *),
                      const void *arg)
{
        struct cbor_buf b;
        int r;

        cbor_buf_init(&b, FRAME_MAX_LEN);
        r = encode(&b, ex, arg);
        if (r >= 0)
                r = chan_send(sandbox_chan(ex->sb), &b);
        cbor_buf_free(&b);
        if (r == -EMSGSIZE)
                return error_set(MSB_ERR_INVALID_ARGUMENT, r,
                                 "the command is too large for one protocol frame");
        if (r < 0)
                return sandbox_fail_channel(ex->sb, r);
        return 0;
}

/* The request as the guest should run it: the command's settings over the
 * image's defaults (image-defaults.h). The vectors point into cfg and the
 * defaults; only the arrays themselves are allocated here. */
struct merged {
        struct proto_exec_request req;
        char **argv;
        char **env;
};

static void merged_clear(struct merged *m)
{
        free(m->argv);
        free(m->env);
}

static bool env_overridden(const msb_exec_config *cfg, const char *kv)
{
        size_t keylen = strcspn(kv, "=") + 1;

        for (size_t i = 0; i < cfg->envc; i++)
                if (strncmp(cfg->env[i], kv, keylen) == 0)
                        return true;
        return false;
}

static int merge(const msb_exec_config *cfg, const struct image_defaults *img, struct merged *m)
{
        char *entrypoint[] = {cfg->entrypoint};
        char **ep = cfg->entrypoint ? entrypoint : img->entrypoint;
        size_t n_ep = cfg->entrypoint ? 1 : img->n_entrypoint;
        char **args = cfg->argv;
        size_t n_args = cfg->argc, argc = 0, envc = 0;

        *m = (struct merged){0};
        if (!cfg->image_command) {
                ep = NULL;
                n_ep = 0;
        } else if (!args && !cfg->entrypoint) {
                args = img->cmd;
                n_args = img->n_cmd;
        }
        if (n_ep + n_args == 0)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL,
                                 "no command given, and the image names none");
        m->argv = calloc(n_ep + n_args + 1, sizeof(char *));
        m->env = calloc(img->n_env + cfg->envc + 1, sizeof(char *));
        if (!m->argv || !m->env) {
                merged_clear(m);
                return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < n_ep; i++)
                m->argv[argc++] = ep[i];
        for (size_t i = 0; i < n_args; i++)
                m->argv[argc++] = args[i];
        for (size_t i = 0; i < img->n_env; i++)
                if (!env_overridden(cfg, img->env[i]))
                        m->env[envc++] = img->env[i];
        for (size_t i = 0; i < cfg->envc; i++)
                m->env[envc++] = cfg->env[i];
        m->req = (struct proto_exec_request){
                .argv = m->argv,
                .argc = argc,
                .env = m->env,
                .envc = envc,
                .cwd = cfg->cwd ? cfg->cwd : img->working_dir,
                .user = cfg->user ? cfg->user : img->user,
                .tty = cfg->tty,
                .has_stdin = cfg->has_stdin,
                .detached = cfg->detached,
                .rows = cfg->rows,
                .cols = cfg->cols,
                .n_rlimits = cfg->n_rlimits,
        };
        memcpy(m->req.rlimits, cfg->rlimits, sizeof(m->req.rlimits));
        return 0;
}

static int encode_request(struct cbor_buf *b, msb_exec *ex, const void *arg)
{
        const struct merged *m = arg;

        return proto_encode_exec_request(b, ex->id, &m->req);
}

int msb_exec_start(msb_sandbox *sb, const msb_exec_config *cfg, msb_exec **ret)
{
        struct merged m;
        msb_exec *ex;
        int r;

        r = merge(cfg, sandbox_image_defaults(sb), &m);
        if (r < 0)
                return r;
        ex = calloc(1, sizeof(*ex));
        if (!ex) {
                merged_clear(&m);
                return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        }
        ex->sb = sb;
        ex->stdin_open = cfg->has_stdin;
        if (cfg->timeout_ms)
                ex->deadline_ns = now_ns(CLOCK_MONOTONIC) + cfg->timeout_ms * 1000000ULL;
        ex->id = chan_session_open(sandbox_chan(sb));
        if (ex->id == 0) {
                merged_clear(&m);
                free(ex);
                return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        }
        r = send_frame(ex, encode_request, &m);
        merged_clear(&m);
        if (r < 0) {
                msb_exec_free(ex);
                return r;
        }
        *ret = ex;
        return 0;
}

static int encode_stdin(struct cbor_buf *b, msb_exec *ex, const void *arg)
{
        const struct proto_data *d = arg;

        return proto_encode_data(b, ex->id, PROTO_EXEC_STDIN, d->data, d->len);
}

size_t msb_exec_stdin_room(const msb_exec *ex)
{
        uint64_t inflight = ex->stdin_sent - ex->stdin_acked;

        if (!ex->stdin_open || ex->finished || inflight >= PROTO_STDIN_WINDOW)
                return 0;
        return (size_t)(PROTO_STDIN_WINDOW - inflight);
}

int msb_exec_write_stdin(msb_exec *ex, const void *data, size_t len)
{
        size_t room = msb_exec_stdin_room(ex);
        size_t done = 0;
        int r;

        if (!ex->stdin_open)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EBADF,
                                 "stdin is closed or was not enabled for this command");
        if (ex->finished)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EPIPE, "the command has ended");
        len = MIN(len, room);
        while (done < len) {
                struct proto_data d = {.data = (const uint8_t *)data + done,
                                       .len = MIN(len - done, (size_t)PROTO_DATA_CHUNK)};
                r = send_frame(ex, encode_stdin, &d);
                if (r < 0)
                        return r;
                done += d.len;
                ex->stdin_sent += d.len;
        }
        return (int)done;
}

int msb_exec_close_stdin(msb_exec *ex)
{
        struct proto_data eof = {.data = NULL, .len = 0};
        int r;

        if (!ex->stdin_open || ex->finished)
                return 0;
        r = send_frame(ex, encode_stdin, &eof);
        if (r < 0)
                return r;
        ex->stdin_open = false;
        return 0;
}

static int encode_signal(struct cbor_buf *b, msb_exec *ex, const void *arg)
{
        const struct proto_exec_signal *s = arg;

        return proto_encode_exec_signal(b, ex->id, s);
}

int msb_exec_signal(msb_exec *ex, int sig)
{
        struct proto_exec_signal s = {.signal = sig};

        if (sig <= 0 || sig >= 65)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL, "invalid signal %d", sig);
        if (ex->finished)
                return 0;
        return send_frame(ex, encode_signal, &s);
}

static int encode_resize(struct cbor_buf *b, msb_exec *ex, const void *arg)
{
        const struct proto_exec_resize *rs = arg;

        return proto_encode_exec_resize(b, ex->id, rs);
}

int msb_exec_resize(msb_exec *ex, uint16_t rows, uint16_t cols)
{
        struct proto_exec_resize rs = {.rows = rows, .cols = cols};

        if (ex->finished)
                return 0;
        return send_frame(ex, encode_resize, &rs);
}

static msb_exec_failure failure_from_kind(const char *kind)
{
        static const struct {
                const char *kind;
                msb_exec_failure failure;
        } map[] = {
                {PROTO_EXEC_NOT_FOUND, MSB_EXEC_FAIL_NOT_FOUND},
                {PROTO_EXEC_PERMISSION_DENIED, MSB_EXEC_FAIL_PERMISSION_DENIED},
                {PROTO_EXEC_NOT_EXECUTABLE, MSB_EXEC_FAIL_NOT_EXECUTABLE},
                {PROTO_EXEC_BAD_CWD, MSB_EXEC_FAIL_BAD_CWD},
                {PROTO_EXEC_BAD_USER, MSB_EXEC_FAIL_BAD_USER},
                {PROTO_EXEC_RESOURCE_LIMIT, MSB_EXEC_FAIL_RESOURCE_LIMIT},
        };

        for (size_t i = 0; i < ARRAY_SIZE(map); i++)
                if (streq(kind, map[i].kind))
                        return map[i].failure;
        return MSB_EXEC_FAIL_OTHER;
}

/* Turns one queued message into an event: 1 if it is one, 0 if it was
 * consumed silently (an ack), or a negative errno. */
static int translate(msb_exec *ex, struct chan_msg *m, msb_exec_event *ev)
{
        const struct proto_msg *msg = &m->msg;
        struct proto_exec_started started;
        struct proto_exec_exited exited;
        struct proto_exec_failed failed;
        struct proto_stdin_ack ack;
        struct proto_error perr;
        struct proto_data data;
        int r = -EBADMSG;

        *ev = (msb_exec_event){0};
        switch (msg->type) {
        case PROTO_EXEC_STARTED:
                r = proto_decode_exec_started(msg, &started);
                ev->type = MSB_EXEC_EVENT_STARTED;
                ev->pid = started.pid;
                break;
        case PROTO_EXEC_STDOUT:
        case PROTO_EXEC_STDERR:
                r = proto_decode_data(msg, &data);
                ev->type = msg->type == PROTO_EXEC_STDOUT ? MSB_EXEC_EVENT_STDOUT
                                                          : MSB_EXEC_EVENT_STDERR;
                ev->data = data.data;
                ev->len = data.len;
                break;
        case PROTO_EXEC_STDIN_ACK:
                r = proto_decode_stdin_ack(msg, &ack);
                if (r < 0)
                        break;
                if (ack.bytes > ex->stdin_sent - ex->stdin_acked)
                        return -EBADMSG;
                ex->stdin_acked += ack.bytes;
                return 0;
        case PROTO_EXEC_EXITED:
                r = proto_decode_exec_exited(msg, &exited);
                ev->type = MSB_EXEC_EVENT_EXITED;
                ev->exit_code = exited.code;
                ev->signal = exited.signal;
                ev->timed_out = ex->timed_out;
                ex->finished = true;
                break;
        case PROTO_EXEC_FAILED:
                r = proto_decode_exec_failed(msg, &failed);
                ev->type = MSB_EXEC_EVENT_FAILED;
                ev->failure = failure_from_kind(failed.kind);
                snprintf(ex->message, sizeof(ex->message), "%s", failed.message);
                ev->message = ex->message;
                ex->finished = true;
                break;
        case PROTO_ERROR:
                r = proto_decode_error(msg, &perr);
                ev->type = MSB_EXEC_EVENT_FAILED;
                ev->failure = MSB_EXEC_FAIL_OTHER;
                snprintf(ex->message, sizeof(ex->message), "agent error (%s): %s", perr.kind,
                         perr.message);
                ev->message = ex->message;
                ex->finished = true;
                break;
        default:
                break;
        }
        return r < 0 ? -EBADMSG : 1;
}

int msb_exec_next_event(msb_exec *ex, msb_exec_event *ret, int timeout_ms)
{
        struct chan *ch = sandbox_chan(ex->sb);
        uint64_t start = now_ns(CLOCK_MONOTONIC);
        int r;

        free(ex->current);
        ex->current = NULL;
        if (ex->finished)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EPIPE, "the command has ended");
        for (;;) {
                struct chan_msg *m;
                uint64_t now;
                int wait_ms = timeout_ms;

                while ((m = chan_pop(ch, ex->id))) {
                        r = translate(ex, m, ret);
                        if (r == 0) {
                                free(m);
                                continue;
                        }
                        if (r < 0) {
                                free(m);
                                return sandbox_fail_channel(ex->sb, r);
                        }
                        ex->current = m;
                        if (ex->finished)
                                chan_session_close(ch, ex->id);
                        return 1;
                }
                now = now_ns(CLOCK_MONOTONIC);
                if (ex->deadline_ns && !ex->timed_out) {
                        if (now >= ex->deadline_ns) {
                                struct proto_exec_signal kill9 = {.signal = SIGKILL};
                                ex->timed_out = true;
                                r = send_frame(ex, encode_signal, &kill9);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                        int until = (int)MIN((ex->deadline_ns - now) / 1000000ULL + 1, 60000);
                        wait_ms = wait_ms < 0 ? until : MIN(wait_ms, until);
                }
                if (timeout_ms >= 0) {
                        uint64_t spent = (now - start) / 1000000ULL;
                        if (spent >= (uint64_t)timeout_ms && timeout_ms > 0)
                                return 0;
                        wait_ms = MIN(wait_ms, timeout_ms - (int)spent);
                }
                r = chan_pump(ch, wait_ms);
                if (r == -EINTR)
                        continue;
                if (r < 0)
                        return sandbox_fail_channel(ex->sb, r);
                if (r == 0 && timeout_ms == 0)
                        return 0;
        }
}

void msb_exec_free(msb_exec *ex)
{
        if (!ex)
                return;
        free(ex->current);
        chan_session_close(sandbox_chan(ex->sb), ex->id);
        free(ex);
}

static int append(uint8_t **buf, size_t *len, const uint8_t *data, size_t n)
{
        uint8_t *p;

        if (n == 0)
                return 0;
        p = realloc(*buf, *len + n);
        if (!p)
                return -ENOMEM;
        memcpy(p + *len, data, n);
        *buf = p;
        *len += n;
        return 0;
}

int msb_exec_collect(msb_sandbox *sb, const msb_exec_config *cfg, const void *stdin_data,
                     size_t stdin_len, msb_exec_output *ret)
{
        msb_exec_output out = {0};
        msb_exec *ex = NULL;
        size_t fed = 0;
        int r;

        r = msb_exec_start(sb, cfg, &ex);
        if (r < 0)
                return r;
        for (;;) {
                msb_exec_event ev;

                if (cfg->has_stdin && fed < stdin_len && msb_exec_stdin_room(ex) > 0) {
                        r = msb_exec_write_stdin(ex, (const uint8_t *)stdin_data + fed,
                                                 stdin_len - fed);
                        if (r < 0)
                                break;
                        fed += (size_t)r;
                }
                if (cfg->has_stdin && fed == stdin_len) {
                        r = msb_exec_close_stdin(ex);
                        if (r < 0)
                                break;
                }
                r = msb_exec_next_event(ex, &ev, fed < stdin_len ? 50 : -1);
                if (r < 0)
                        break;
                if (r == 0)
                        continue;
                if (ev.type == MSB_EXEC_EVENT_STDOUT)
                        r = append(&out.out, &out.out_len, ev.data, ev.len);
                else if (ev.type == MSB_EXEC_EVENT_STDERR)
                        r = append(&out.err, &out.err_len, ev.data, ev.len);
                if (r < 0) {
                        r = error_set(MSB_ERR_SYSTEM, r, "out of memory");
                        break;
                }
                if (ev.type == MSB_EXEC_EVENT_EXITED) {
                        out.exit_code = ev.exit_code;
                        out.signal = ev.signal;
                        out.timed_out = ev.timed_out;
                        break;
                }
                if (ev.type == MSB_EXEC_EVENT_FAILED) {
                        out.exit_code = -1;
                        out.failure = ev.failure;
                        out.message = strdup(ev.message ? ev.message : "");
                        break;
                }
        }
        msb_exec_free(ex);
        if (r < 0) {
                msb_exec_output_free(&out);
                return r;
        }
        *ret = out;
        return 0;
}

void msb_exec_output_free(msb_exec_output *out)
{
        if (!out)
                return;
        free(out->out);
        free(out->err);
        free(out->message);
        *out = (msb_exec_output){0};
}
