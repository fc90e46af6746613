/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: a non-blocking socket, a frame_reader, and one FIFO
 * of decoded messages per open session. Sessions are few (one per running
 * command of this process), so they live in a small array searched linearly.
 * Queued bytes are capped: a caller that never drains its session cannot
 * make the process grow without bound (the channel fails with -ENOBUFS).
 */
#include "chan.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "lib/core/log.h"
#include "lib/core/util.h"

#define CHAN_MAX_QUEUED (256u << 20)
#define CHAN_READ_CHUNK (256u << 10)

struct chan_session {
        uint32_t id;
        struct chan_msg *head, *tail;
};

struct chan {
        int fd;
        struct frame_reader reader;
        uint32_t id_start, id_end; /* session ids: [id_start, id_end) */
        uint32_t next_id;
        uint32_t version;
        struct chan_session *sessions;
        size_t n_sessions;
        size_t queued_bytes;
        int err; /* sticky */
};

int chan_new(int fd, struct chan **ret)
{
        struct chan *ch;
        int r;

        r = fd_set_nonblock(fd, true);
        if (r < 0)
                return r;
        ch = calloc(1, sizeof(*ch));
        if (!ch)
                return -ENOMEM;
        ch->fd = fd;
        ch->id_start = 1;
        ch->id_end = UINT32_MAX;
        ch->next_id = 1;
        ch->version = PROTO_VERSION;
        frame_reader_init(&ch->reader);
        *ret = ch;
        return 0;
}

static void session_clear(struct chan *ch, struct chan_session *s)
{
        while (s->head) {
                struct chan_msg *m = s->head;
                s->head = m->next;
                ch->queued_bytes -= m->payload_len;
                free(m);
        }
        s->tail = NULL;
}

void chan_free(struct chan *ch)
{
        if (!ch)
                return;
        for (size_t i = 0; i < ch->n_sessions; i++)
                session_clear(ch, &ch->sessions[i]);
        free(ch->sessions);
        frame_reader_free(&ch->reader);
        safe_close(ch->fd);
        free(ch);
}

int chan_fd(const struct chan *ch)
{
        return ch->fd;
}

void chan_set_version(struct chan *ch, uint32_t version)
{
        ch->version = MIN(version, (uint32_t)PROTO_VERSION);
}

static struct chan_session *session_find(struct chan *ch, uint32_t id)
{
        for (size_t i = 0; i < ch->n_sessions; i++)
                if (ch->sessions[i].id == id)
                        return &ch->sessions[i];
        return NULL;
}

static int session_add(struct chan *ch, uint32_t id)
{
        struct chan_session *v = realloc(ch->sessions, (ch->n_sessions + 1) * sizeof(*v));

        if (!v)
                return -ENOMEM;
        ch->sessions = v;
        v[ch->n_sessions++] = (struct chan_session){.id = id};
        return 0;
}

uint32_t chan_session_open(struct chan *ch)
{
        uint32_t id;

        if (ch->n_sessions >= ch->id_end - ch->id_start)
                return 0;
        do {
                id = ch->next_id++;
                if (ch->next_id >= ch->id_end)
                        ch->next_id = ch->id_start;
        } while (session_find(ch, id));
        if (session_add(ch, id) < 0)
                return 0;
        return id;
}

void chan_session_close(struct chan *ch, uint32_t id)
{
        struct chan_session *s = session_find(ch, id);

        if (!s || id == 0)
                return;
        session_clear(ch, s);
        *s = ch->sessions[--ch->n_sessions];
}

int chan_send(struct chan *ch, const struct cbor_buf *frames)
{
        const uint8_t *p = frames->data;
        size_t left = frames->len;

        if (frames->err < 0)
                return frames->err;
        while (left > 0) {
                ssize_t n = send(ch->fd, p, left, MSG_NOSIGNAL);
                if (n >= 0) {
                        p += n;
                        left -= (size_t)n;
                        continue;
                }
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN)
                        return errno == ECONNRESET ? -EPIPE : negative_errno();
                struct pollfd pfd = {.fd = ch->fd, .events = POLLOUT};
                if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
                        return negative_errno();
                if (pfd.revents & (POLLERR | POLLHUP))
                        return -EPIPE;
        }
        return 0;
}

static int queue_frame(struct chan *ch, const struct frame *f)
{
        struct chan_session *s;
        struct proto_msg msg;
        struct chan_msg *m;
        int r;

        r = proto_decode(f, &msg);
        if (r < 0) {
                log_debug("agent channel: malformed frame (id %u, %zu bytes)", f->id, f->body_len);
                return -EBADMSG;
        }
        s = session_find(ch, msg.id);
        if (!s && msg.id == 0) {
                r = session_add(ch, 0);
                if (r < 0)
                        return r;
                s = session_find(ch, 0);
        }
        if (!s) {
                log_debug("agent channel: dropping %s for closed session %u", msg.type_name,
                          msg.id);
                return 0;
        }
        if (ch->queued_bytes + msg.payload_len > CHAN_MAX_QUEUED)
                return -ENOBUFS;
        m = malloc(sizeof(*m) + msg.payload_len);
        if (!m)
                return -ENOMEM;
        m->next = NULL;
        m->msg = msg;
        m->payload_len = msg.payload_len;
        memcpy(m->payload, msg.payload, msg.payload_len);
        m->msg.payload = m->payload;
        ch->queued_bytes += msg.payload_len;
        if (s->tail)
                s->tail->next = m;
        else
                s->head = m;
        s->tail = m;
        return 0;
}

int chan_pump(struct chan *ch, int timeout_ms)
{
        struct pollfd pfd = {.fd = ch->fd, .events = POLLIN};
        struct frame f;
        uint8_t *space;
        size_t avail;
        ssize_t n;
        int r;

        if (ch->err < 0)
                return ch->err;
        r = poll(&pfd, 1, timeout_ms);
        if (r < 0)
                return negative_errno();
        if (r == 0)
                return 0;
        space = frame_reader_space(&ch->reader, CHAN_READ_CHUNK, &avail);
        if (!space)
                return -ENOMEM;
        n = recv(ch->fd, space, avail, 0);
        if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                        return 1;
                return errno == ECONNRESET ? -EPIPE : negative_errno();
        }
        if (n == 0)
                return ch->err = -EPIPE;
        frame_reader_commit(&ch->reader, (size_t)n);
        while ((r = frame_reader_next(&ch->reader, &f)) > 0) {
                r = queue_frame(ch, &f);
                if (r < 0)
                        return ch->err = r;
        }
        if (r < 0)
                return ch->err = r;
        return 1;
}

struct chan_msg *chan_pop(struct chan *ch, uint32_t id)
{
        struct chan_session *s = session_find(ch, id);
        struct chan_msg *m;

        if (!s || !s->head)
                return NULL;
        m = s->head;
        s->head = m->next;
        if (!s->head)
                s->tail = NULL;
        ch->queued_bytes -= m->payload_len;
        m->next = NULL;
        return m;
}

static uint32_t random_u32(void)
{
        uint32_t v = 0;

        if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != sizeof(v))
                v = (uint32_t)now_ns(CLOCK_MONOTONIC);
        return v;
}

/* Reads exactly n bytes before the deadline. */
static int recv_exactly(int fd, void *buf, size_t n, uint64_t deadline_ns)
{
        uint8_t *p = buf;

        while (n > 0) {
                uint64_t now = now_ns(CLOCK_MONOTONIC);
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                ssize_t k;
                int r;

                if (now >= deadline_ns)
                        return -ETIMEDOUT;
                r = poll(&pfd, 1, (int)MIN((deadline_ns - now) / 1000000ULL + 1, 60000));
                if (r < 0 && errno != EINTR)
                        return negative_errno();
                if (r <= 0)
                        continue;
                k = recv(fd, p, n, 0);
                if (k == 0)
                        return -EPIPE;
                if (k < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                continue;
                        return negative_errno();
                }
                p += k;
                n -= (size_t)k;
        }
        return 0;
}

int chan_new_relay(int fd, int timeout_ms, struct chan **ret, struct proto_ready *ret_ready)
{
        uint64_t deadline = now_ns(CLOCK_MONOTONIC) + (uint64_t)timeout_ms * 1000000ULL;
        uint8_t hello[8], hdr[FRAME_HEADER_LEN];
        _cleanup_free_ uint8_t *body = NULL;
        uint32_t start, end, len, id;
        struct proto_msg msg;
        struct frame f;
        struct chan *ch;
        uint8_t flags;
        int r;

        r = fd_set_nonblock(fd, true);
        if (r < 0)
                goto fail;
        r = recv_exactly(fd, hello, sizeof(hello), deadline);
        if (r < 0)
                goto fail;
        start = (uint32_t)hello[0] << 24 | (uint32_t)hello[1] << 16 | (uint32_t)hello[2] << 8 |
                hello[3];
        end = (uint32_t)hello[4] << 24 | (uint32_t)hello[5] << 16 | (uint32_t)hello[6] << 8 |
              hello[7];
        r = recv_exactly(fd, hdr, sizeof(hdr), deadline);
        if (r < 0)
                goto fail;
        r = frame_parse_header(hdr, &len, &id, &flags);
        if (r < 0 || start == 0 || end <= start)
                goto bad;
        body = malloc(len - 5);
        if (!body) {
                r = -ENOMEM;
                goto fail;
        }
        r = recv_exactly(fd, body, len - 5, deadline);
        if (r < 0)
                goto fail;
        f = (struct frame){.id = id, .flags = flags, .body = body, .body_len = len - 5};
        if (proto_decode(&f, &msg) < 0 || msg.type != PROTO_READY ||
            proto_decode_ready(&msg, ret_ready) < 0)
                goto bad;
        r = chan_new(fd, &ch);
        if (r < 0)
                goto fail;
        /* Start at a random place in the range: sessions a previous owner of
         * this range left running (detached) keep their ids, and a random
         * start makes reusing one of them (which the relay refuses) unlikely. */
        ch->id_start = start;
        ch->id_end = end;
        ch->next_id = start + random_u32() % (end - start);
        chan_set_version(ch, ret_ready->version);
        *ret = ch;
        return 0;
bad:
        r = -EBADMSG;
fail:
        safe_close(fd);
        return r;
}
