/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: frames are passed through as bytes. Each socket has a
 * frame_reader for its input and a byte queue for its output; a whole frame
 * read from a client is checked (its id must be in the client's range) and
 * appended, header and body, to the agent's queue; a whole frame read from
 * the agent is tapped into the exec log and appended to the queue of the
 * client whose range holds its id. Every socket is non-blocking; queues are
 * written eagerly after each event and through EPOLLOUT while the peer is
 * slow.
 *
 * Backpressure is a matter of which fds have EPOLLIN: after every event
 * settle() recomputes each fd's wanted mask (reading the agent only while
 * no client queue is at its cap, reading clients only while the agent queue
 * is below its cap) and touches epoll only where the mask changed. One read
 * per event of at most RELAY_READ_CHUNK bytes keeps the overshoot past a
 * cap bounded (RELAY_QUEUE_MAX). A peer that hung up while its input is
 * paused is taken out of the epoll set (EPOLLHUP would fire in a loop) and
 * put back when reading resumes, so its last frames still get through.
 *
 * Sessions: a sorted array of the ids that were started (SESSION_START from
 * a client) and not yet ended (TERMINAL from the agent). It gives the idle
 * rule its session count, lets the relay refuse a second SESSION_START for
 * an open id itself (the agent's refusal would carry TERMINAL and end the
 * bookkeeping of the session that is still running), and keeps the
 * detached commands of a departed client as orphans, whose later frames
 * reach the exec log but never the next owner of the slot. The agent ends
 * a departed client's other sessions silently, so they leave the array at
 * once.
 *
 * Slot quarantine: frames the agent sent for a departed client's sessions
 * before it learnt of the departure may still be on their way. A slot is
 * therefore given to a new client only after a barrier (barrier_kick())
 * has come back from the agent.
 */
#include "relay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

#include "event.h"
#include "logfile.h"
#include "lib/core/log.h"
#include "lib/core/util.h"

#define QUEUE_KEEP       (64u << 10) /* an emptied queue keeps at most this much memory */
#define STALL_TIMEOUT_NS ((uint64_t)RELAY_STALL_TIMEOUT_MS * 1000000u)

struct queue {
        uint8_t *data;
        size_t start, len, cap;
};

/* An fd's place in the epoll set. */
struct watch {
        bool registered;
        bool hup; /* the peer hung up (EPOLLHUP/EPOLLERR seen) */
        uint32_t events;
};

struct client {
        int fd; /* -1: the slot is free */
        uint32_t gen;
        struct frame_reader reader;
        struct queue out;
        struct watch watch;
        uint64_t stalled_since; /* CLOCK_MONOTONIC ns; 0 unless out is at its cap */
        enum {
                SLOT_OPEN,     /* free (or taken) */
                SLOT_LEFT,     /* its client left; the next barrier will clear it */
                SLOT_CLEARING, /* the barrier in flight clears it */
        } quarantine;
};

struct session {
        uint32_t id;
        bool detached; /* a core.exec.request with "detached": true */
        bool orphaned; /* its client is gone (so it is detached) */
};

struct relay {
        int epfd;
        int agent_fd;
        struct watch agent_watch;
        bool agent_closed;
        struct frame_reader agent_reader;
        struct queue agent_out;

        bool ready;
        struct proto_ready ready_msg;
        uint8_t *ready_frame; /* header and body, as the agent sent it */
        size_t ready_len;

        struct client clients[RELAY_MAX_CLIENTS];
        size_t n_clients;
        uint32_t next_slot; /* where the search for a free slot starts */

        struct session *sessions; /* sorted by id */
        size_t n_sessions, cap_sessions;

        bool barrier_in_flight; /* our core.ping on RELAY_BARRIER_ID */

        struct logfile *exec_log;
};

/* ---- byte queues ---- */

static void queue_free(struct queue *q)
{
        free(q->data);
        *q = (struct queue){0};
}

static int queue_append(struct queue *q, const void *a, size_t alen, const void *b, size_t blen)
{
        size_t need = alen + blen;

        if (q->start > 0 && q->start + q->len + need > q->cap) {
                memmove(q->data, q->data + q->start, q->len);
                q->start = 0;
        }
        if (q->len + need > q->cap) {
                size_t cap = MAX(MAX(q->cap * 2, q->len + need), (size_t)4096);
                uint8_t *p = realloc(q->data, cap);
                if (!p)
                        return -ENOMEM;
                q->data = p;
                q->cap = cap;
        }
        memcpy(q->data + q->start + q->len, a, alen);
        if (blen > 0)
                memcpy(q->data + q->start + q->len + alen, b, blen);
        q->len += need;
        return 0;
}

static void queue_consume(struct queue *q, size_t n)
{
        q->start += n;
        q->len -= n;
        if (q->len > 0)
                return;
        q->start = 0;
        if (q->cap > QUEUE_KEEP) {
                free(q->data);
                q->data = NULL;
                q->cap = 0;
        }
}

/* Writes what the socket takes: bytes written (0 if it took nothing), or
 * -errno when the peer is gone. */
static ssize_t queue_flush(struct queue *q, int fd)
{
        size_t total = 0;

        while (q->len > 0) {
                ssize_t n = send(fd, q->data + q->start, q->len, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        return negative_errno();
                }
                queue_consume(q, (size_t)n);
                total += (size_t)n;
        }
        return (ssize_t)total;
}

static void put_be32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)(v >> 24);
        p[1] = (uint8_t)(v >> 16);
        p[2] = (uint8_t)(v >> 8);
        p[3] = (uint8_t)v;
}

static void frame_header(uint8_t hdr[FRAME_HEADER_LEN], const struct frame *f)
{
        put_be32(hdr, (uint32_t)f->body_len + 5u);
        put_be32(hdr + 4, f->id);
        hdr[8] = f->flags;
}

static int queue_frame(struct queue *q, const struct frame *f)
{
        uint8_t hdr[FRAME_HEADER_LEN];

        frame_header(hdr, f);
        return queue_append(q, hdr, sizeof(hdr), f->body, f->body_len);
}

/* ---- sessions ---- */

/* The index of id, or -1; *ret_pos (if set) is where id is or would go. */
static ssize_t session_find(const struct relay *r, uint32_t id, size_t *ret_pos)
{
        size_t lo = 0, hi = r->n_sessions;
        ssize_t found = -1;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (r->sessions[mid].id == id) {
                        lo = mid;
                        found = (ssize_t)mid;
                        break;
                }
                if (r->sessions[mid].id < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (ret_pos)
                *ret_pos = lo;
        return found;
}

static int session_insert(struct relay *r, size_t pos, uint32_t id, bool detached)
{
        if (r->n_sessions == r->cap_sessions) {
                size_t cap = r->cap_sessions ? r->cap_sessions * 2 : 16;
                struct session *s = reallocarray(r->sessions, cap, sizeof(*s));
                if (!s)
                        return -ENOMEM;
                r->sessions = s;
                r->cap_sessions = cap;
        }
        memmove(&r->sessions[pos + 1], &r->sessions[pos],
                (r->n_sessions - pos) * sizeof(r->sessions[0]));
        r->sessions[pos] = (struct session){.id = id, .detached = detached};
        r->n_sessions++;
        return 0;
}

static void session_remove(struct relay *r, size_t idx)
{
        memmove(&r->sessions[idx], &r->sessions[idx + 1],
                (r->n_sessions - idx - 1) * sizeof(r->sessions[0]));
        r->n_sessions--;
}

/* The first session at or above id. */
static size_t session_lower_bound(const struct relay *r, uint32_t id)
{
        size_t pos;

        (void)session_find(r, id, &pos);
        return pos;
}

static bool slot_has_sessions(const struct relay *r, uint32_t slot)
{
        size_t i = session_lower_bound(r, relay_range_start(slot));

        return i < r->n_sessions && r->sessions[i].id < relay_range_end(slot);
}

/* The slot whose range holds id, or -1 (id 0, UINT32_MAX). */
static int slot_of(uint32_t id)
{
        uint32_t slot;

        if (id == 0)
                return -1;
        slot = (id - 1u) >> RELAY_RANGE_SHIFT;
        return id < relay_range_end(slot) ? (int)slot : -1;
}

/* ---- the exec log tap ---- */

static void tap_commit(struct relay *r, struct json_writer *w)
{
        int k = logfile_json_commit(r->exec_log, w);
        if (k < 0)
                log_debug("exec log: %s", strerror(-k));
}

static void tap_begin(struct json_writer *w, const char *source, uint32_t id)
{
        json_writer_init(w);
        logfile_json_begin(w, source);
        json_kv_uint(w, "session", id);
}

static void tap_request(struct relay *r, uint32_t id, const struct proto_exec_request *req)
{
        struct json_writer w;

        if (!r->exec_log)
                return;
        tap_begin(&w, "system", id);
        json_kv_string(&w, "event", "exec");
        json_key(&w, "argv");
        json_begin_array(&w);
        for (size_t i = 0; i < req->argc; i++)
                json_put_string(&w, req->argv[i]);
        json_end_array(&w);
        if (req->tty)
                json_kv_bool(&w, "tty", true);
        if (req->detached)
                json_kv_bool(&w, "detached", true);
        tap_commit(r, &w);
}

static void tap_reply(struct relay *r, const struct proto_msg *m)
{
        struct proto_exec_started started;
        struct proto_exec_exited exited;
        struct proto_exec_failed failed;
        struct proto_data data;
        struct json_writer w;

        if (!r->exec_log)
                return;
        switch (m->type) {
        case PROTO_EXEC_STARTED:
                if (proto_decode_exec_started(m, &started) < 0)
                        return;
                tap_begin(&w, "system", m->id);
                json_kv_string(&w, "event", "started");
                json_kv_uint(&w, "pid", started.pid);
                break;
        case PROTO_EXEC_STDOUT:
        case PROTO_EXEC_STDERR:
                if (proto_decode_data(m, &data) < 0 || data.len == 0)
                        return;
                tap_begin(&w, m->type == PROTO_EXEC_STDOUT ? "stdout" : "stderr", m->id);
                if (json_utf8_valid(data.data, data.len)) {
                        json_key(&w, "data");
                        json_put_bytes_lossy(&w, data.data, data.len);
                } else {
                        _cleanup_free_ char *b64 = base64_encode(data.data, data.len);
                        json_kv_string(&w, "data_b64", b64);
                }
                break;
        case PROTO_EXEC_EXITED:
                if (proto_decode_exec_exited(m, &exited) < 0)
                        return;
                tap_begin(&w, "system", m->id);
                json_kv_string(&w, "event", "exited");
                json_kv_int(&w, "code", exited.code);
                json_kv_int(&w, "signal", exited.signal);
                break;
        case PROTO_EXEC_FAILED:
                if (proto_decode_exec_failed(m, &failed) < 0)
                        return;
                tap_begin(&w, "system", m->id);
                json_kv_string(&w, "event", "failed");
                json_kv_string(&w, "kind", failed.kind);
                json_kv_int(&w, "errno", failed.err);
                json_kv_string(&w, "message", failed.message);
                json_kv_string(&w, "stage", failed.stage);
                break;
        default:
                return;
        }
        tap_commit(r, &w);
}

/* ---- the barrier ---- */

/* When no barrier is in flight and some slot waits for one, sends core.ping
 * on RELAY_BARRIER_ID. The agent handles frames in order, so its answer
 * comes after it has ended the sessions of every client that left before
 * the ping, and after every frame it had for them: the slots those clients
 * held can then be given to new clients without stale frames reaching
 * them. */
static void barrier_kick(struct relay *r)
{
        struct cbor_buf b;
        bool waiting = false;
        int k;

        if (r->barrier_in_flight || r->agent_closed)
                return;
        for (size_t i = 0; i < RELAY_MAX_CLIENTS; i++)
                waiting |= r->clients[i].quarantine == SLOT_LEFT;
        if (!waiting)
                return;
        cbor_buf_init(&b, 0);
        k = proto_encode_empty(&b, RELAY_BARRIER_ID, FRAME_SESSION_START, PROTO_PING);
        if (k >= 0)
                k = queue_append(&r->agent_out, b.data, b.len, NULL, 0);
        cbor_buf_free(&b);
        if (k < 0) {
                log_warn("relay: cannot queue the barrier: %s", strerror(-k));
                return;
        }
        r->barrier_in_flight = true;
        for (size_t i = 0; i < RELAY_MAX_CLIENTS; i++)
                if (r->clients[i].quarantine == SLOT_LEFT)
                        r->clients[i].quarantine = SLOT_CLEARING;
}

/* The agent's answer to the barrier (a TERMINAL frame on its id). */
static void barrier_done(struct relay *r)
{
        r->barrier_in_flight = false;
        for (size_t i = 0; i < RELAY_MAX_CLIENTS; i++)
                if (r->clients[i].quarantine == SLOT_CLEARING)
                        r->clients[i].quarantine = SLOT_OPEN;
        barrier_kick(r);
}

/* ---- clients ---- */

static void drop_client(struct relay *r, uint32_t slot, enum log_level level, const char *why)
{
        struct client *c = &r->clients[slot];
        struct proto_relay_disconnected msg = {
                .id_start = relay_range_start(slot),
                .id_end = relay_range_end(slot),
        };
        struct cbor_buf b;
        int k;

        log_emit(level, "relay: client %u (ids %u-%u) %s", slot, msg.id_start, msg.id_end - 1, why);
        if (c->watch.registered)
                (void)epoll_ctl(r->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        c->fd = safe_close(c->fd);
        frame_reader_free(&c->reader);
        queue_free(&c->out);
        c->watch = (struct watch){0};
        c->stalled_since = 0;
        r->n_clients--;

        /* The agent ends the client's sessions without a word, except the
         * detached ones, which run on and end with a TERMINAL frame. */
        for (size_t i = session_lower_bound(r, msg.id_start);
             i < r->n_sessions && r->sessions[i].id < msg.id_end;) {
                if (r->sessions[i].detached) {
                        r->sessions[i++].orphaned = true;
                        continue;
                }
                session_remove(r, i);
        }

        if (r->agent_closed)
                return;
        cbor_buf_init(&b, 0);
        k = proto_encode_relay_disconnected(&b, &msg);
        if (k >= 0)
                k = queue_append(&r->agent_out, b.data, b.len, NULL, 0);
        cbor_buf_free(&b);
        if (k < 0)
                log_warn("relay: cannot tell the agent that client %u left: %s", slot,
                         strerror(-k));
        c->quarantine = SLOT_LEFT;
        barrier_kick(r);
}

static void note_queue(struct client *c, bool progress)
{
        if (c->out.len < RELAY_QUEUE_CAP)
                c->stalled_since = 0;
        else if (progress || c->stalled_since == 0)
                c->stalled_since = now_ns(CLOCK_MONOTONIC);
}

/* A core.error from the relay itself, on the client's own session id. */
static void reply_error(struct relay *r, uint32_t slot, uint32_t id, const char *kind,
                        const char *message)
{
        struct client *c = &r->clients[slot];
        struct proto_error e = {0};
        struct cbor_buf b;
        int k;

        snprintf(e.kind, sizeof(e.kind), "%s", kind);
        snprintf(e.message, sizeof(e.message), "%s", message);
        cbor_buf_init(&b, 0);
        k = proto_encode_error(&b, id, &e);
        if (k >= 0)
                k = queue_append(&c->out, b.data, b.len, NULL, 0);
        cbor_buf_free(&b);
        if (k < 0)
                drop_client(r, slot, LOG_LEVEL_WARN, "could not be answered (out of memory)");
        else
                note_queue(c, false);
}

/* One frame from a client: false when the client was dropped for it. */
static bool client_frame(struct relay *r, uint32_t slot, const struct frame *f)
{
        char why[96];
        size_t pos;

        if (f->id < relay_range_start(slot) || f->id >= relay_range_end(slot)) {
                snprintf(why, sizeof(why), "dropped: frame id %u outside its range", f->id);
                drop_client(r, slot, LOG_LEVEL_WARN, why);
                return false;
        }
        if (f->flags & FRAME_SHUTDOWN) {
                drop_client(r, slot, LOG_LEVEL_WARN, "dropped: it sent FRAME_SHUTDOWN");
                return false;
        }
        if (f->flags & FRAME_SESSION_START) {
                struct proto_exec_request req = {0};
                struct proto_msg m;
                bool exec = proto_decode(f, &m) >= 0 && m.type == PROTO_EXEC_REQUEST &&
                            proto_decode_exec_request(&m, &req) >= 0;
                int k = 0;

                if (session_find(r, f->id, &pos) >= 0) {
                        reply_error(r, slot, f->id, PROTO_ERR_INVALID_SESSION,
                                    "session id already in use");
                        k = -EEXIST;
                } else if (r->n_sessions >= RELAY_MAX_SESSIONS ||
                           session_insert(r, pos, f->id, exec && req.detached) < 0) {
                        reply_error(r, slot, f->id, PROTO_ERR_BUSY, "too many open sessions");
                        k = -ENOSPC;
                } else if (exec) {
                        tap_request(r, f->id, &req);
                }
                proto_exec_request_free(&req);
                if (k < 0)
                        return r->clients[slot].fd >= 0;
        }
        if (r->agent_closed)
                return true;
        if (queue_frame(&r->agent_out, f) < 0) {
                drop_client(r, slot, LOG_LEVEL_WARN, "dropped: out of memory");
                return false;
        }
        return true;
}

static void client_read(struct relay *r, uint32_t slot)
{
        struct client *c = &r->clients[slot];
        struct frame f;
        size_t avail;
        uint8_t *buf;
        ssize_t n;
        int k;

        buf = frame_reader_space(&c->reader, RELAY_READ_CHUNK, &avail);
        if (!buf) {
                drop_client(r, slot, LOG_LEVEL_WARN, "dropped: out of memory");
                return;
        }
        do
                n = recv(c->fd, buf, MIN(avail, (size_t)RELAY_READ_CHUNK), MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);
        if (n < 0 && errno == EAGAIN)
                return;
        if (n <= 0) {
                drop_client(r, slot, LOG_LEVEL_DEBUG, "disconnected");
                return;
        }
        frame_reader_commit(&c->reader, (size_t)n);
        while ((k = frame_reader_next(&c->reader, &f)) > 0)
                if (!client_frame(r, slot, &f))
                        return;
        if (k < 0)
                drop_client(r, slot, LOG_LEVEL_WARN, "dropped: bad frame length");
}

static bool agent_queue_full(const struct relay *r)
{
        return r->agent_out.len >= RELAY_QUEUE_CAP;
}

static void client_event(struct relay *r, uint32_t slot, uint32_t events)
{
        struct client *c = &r->clients[slot];
        ssize_t n;

        if (events & EPOLLOUT) {
                n = queue_flush(&c->out, c->fd);
                if (n < 0) {
                        drop_client(r, slot, LOG_LEVEL_DEBUG, "disconnected");
                        return;
                }
                note_queue(c, n > 0);
        }
        if (events & (EPOLLHUP | EPOLLERR)) {
                c->watch.hup = true; /* nobody reads what is queued any more */
                queue_free(&c->out);
                c->stalled_since = 0;
        }
        if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !agent_queue_full(r))
                client_read(r, slot);
}

/* ---- the agent ---- */

static void agent_gone(struct relay *r)
{
        if (r->agent_closed)
                return;
        log_debug("relay: the agent channel closed");
        r->agent_closed = true;
        if (r->agent_watch.registered)
                (void)epoll_ctl(r->epfd, EPOLL_CTL_DEL, r->agent_fd, NULL);
        r->agent_watch = (struct watch){0};
        queue_free(&r->agent_out);
}

static int take_ready(struct relay *r, const struct frame *f)
{
        struct proto_msg m;

        if (f->id != 0 || proto_decode(f, &m) < 0 || m.type != PROTO_READY ||
            proto_decode_ready(&m, &r->ready_msg) < 0)
                return -EBADMSG;
        r->ready_frame = malloc(FRAME_HEADER_LEN + f->body_len);
        if (!r->ready_frame)
                return -ENOMEM;
        frame_header(r->ready_frame, f);
        memcpy(r->ready_frame + FRAME_HEADER_LEN, f->body, f->body_len);
        r->ready_len = FRAME_HEADER_LEN + f->body_len;
        r->ready = true;
        return 0;
}

static int agent_frame(struct relay *r, const struct frame *f)
{
        struct proto_msg m;
        bool decoded, orphaned = false;
        struct client *c;
        ssize_t idx;
        int slot;

        if (!r->ready)
                return take_ready(r, f);
        if (f->id == RELAY_BARRIER_ID) {
                if ((f->flags & FRAME_TERMINAL) && r->barrier_in_flight)
                        barrier_done(r);
                return 0;
        }
        decoded = proto_decode(f, &m) >= 0;
        if (f->id == 0) {
                log_debug("relay: %s from the agent on id 0 ignored",
                          decoded ? m.type_name : "an undecodable frame");
                return 0;
        }
        if (decoded)
                tap_reply(r, &m);
        idx = session_find(r, f->id, NULL);
        if (idx >= 0) {
                orphaned = r->sessions[idx].orphaned;
                if (f->flags & FRAME_TERMINAL)
                        session_remove(r, (size_t)idx);
        }
        slot = slot_of(f->id);
        if (orphaned || slot < 0)
                return 0;
        c = &r->clients[slot];
        if (c->fd < 0 || c->watch.hup)
                return 0;
        if (queue_frame(&c->out, f) < 0) {
                drop_client(r, (uint32_t)slot, LOG_LEVEL_WARN, "dropped: out of memory");
                return 0;
        }
        note_queue(c, false);
        return 0;
}

/* One read: 1 if bytes came, 0 if none were there (or the channel ended). */
static int agent_read(struct relay *r)
{
        struct frame f;
        size_t avail;
        uint8_t *buf;
        ssize_t n;
        int k;

        buf = frame_reader_space(&r->agent_reader, RELAY_READ_CHUNK, &avail);
        if (!buf)
                return -ENOMEM;
        do
                n = recv(r->agent_fd, buf, MIN(avail, (size_t)RELAY_READ_CHUNK), MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);
        if (n < 0 && errno == EAGAIN)
                return 0;
        if (n <= 0) {
                agent_gone(r);
                return 0;
        }
        frame_reader_commit(&r->agent_reader, (size_t)n);
        while ((k = frame_reader_next(&r->agent_reader, &f)) > 0) {
                k = agent_frame(r, &f);
                if (k < 0)
                        return k;
        }
        return k < 0 ? k : 1;
}

static bool clients_full(const struct relay *r)
{
        for (size_t i = 0; i < RELAY_MAX_CLIENTS; i++)
                if (r->clients[i].fd >= 0 && r->clients[i].out.len >= RELAY_QUEUE_CAP)
                        return true;
        return false;
}

static int agent_event(struct relay *r, uint32_t events)
{
        ssize_t n;

        if (events & EPOLLOUT) {
                n = queue_flush(&r->agent_out, r->agent_fd);
                if (n < 0) {
                        agent_gone(r);
                        return 0;
                }
        }
        if (events & (EPOLLHUP | EPOLLERR))
                r->agent_watch.hup = true;
        if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !clients_full(r))
                return agent_read(r) < 0 ? -EBADMSG : 0;
        return 0;
}

/* ---- epoll interest ---- */

static int watch_update(struct relay *r, int fd, uint64_t ref, struct watch *w, uint32_t want)
{
        struct epoll_event ev = {.events = want, .data.u64 = ref};

        if (w->hup && want == 0) {
                if (w->registered && epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, NULL) < 0)
                        return negative_errno();
                w->registered = false;
                return 0;
        }
        if (w->registered && w->events == want)
                return 0;
        if (epoll_ctl(r->epfd, w->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) < 0)
                return negative_errno();
        w->registered = true;
        w->events = want;
        return 0;
}

/* After any change: write what can be written, then give each fd the epoll
 * mask that the queues call for. */
static int settle(struct relay *r)
{
        bool paused_clients, paused_agent;
        ssize_t n;

        for (uint32_t i = 0; i < RELAY_MAX_CLIENTS; i++) {
                struct client *c = &r->clients[i];
                if (c->fd < 0 || c->out.len == 0 || (c->watch.events & EPOLLOUT))
                        continue;
                n = queue_flush(&c->out, c->fd);
                if (n < 0)
                        drop_client(r, i, LOG_LEVEL_DEBUG, "disconnected");
                else
                        note_queue(c, n > 0);
        }
        if (!r->agent_closed && r->agent_out.len > 0 && !(r->agent_watch.events & EPOLLOUT) &&
            queue_flush(&r->agent_out, r->agent_fd) < 0)
                agent_gone(r);

        paused_agent = clients_full(r);
        paused_clients = agent_queue_full(r);
        for (uint32_t i = 0; i < RELAY_MAX_CLIENTS; i++) {
                struct client *c = &r->clients[i];
                uint32_t want;
                if (c->fd < 0)
                        continue;
                want = (paused_clients ? 0 : EPOLLIN) | (c->out.len > 0 ? EPOLLOUT : 0);
                if (watch_update(r, c->fd, ev_ref(EV_RELAY_CLIENT, c->gen, i), &c->watch, want) < 0)
                        drop_client(r, i, LOG_LEVEL_WARN, "dropped: epoll failed");
        }
        if (r->agent_closed)
                return 0;
        return watch_update(r, r->agent_fd, ev_ref(EV_RELAY_AGENT, 0, 0), &r->agent_watch,
                            (paused_agent ? 0 : EPOLLIN) | (r->agent_out.len > 0 ? EPOLLOUT : 0));
}

/* ---- the API ---- */

int relay_new(int epfd, int agent_fd, struct logfile *exec_log, struct relay **ret)
{
        _cleanup_close_ int fd = agent_fd;
        _cleanup_(relay_freep) struct relay *r = NULL;
        int k;

        k = fd_set_nonblock(fd, true);
        if (k < 0)
                return k;
        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->epfd = epfd;
        r->agent_fd = TAKE_FD(fd);
        r->exec_log = exec_log;
        frame_reader_init(&r->agent_reader);
        for (size_t i = 0; i < RELAY_MAX_CLIENTS; i++) {
                r->clients[i].fd = -1;
                frame_reader_init(&r->clients[i].reader);
        }
        k = settle(r);
        if (k < 0)
                return k;
        *ret = TAKE_PTR(r);
        return 0;
}

struct relay *relay_free(struct relay *r)
{
        if (!r)
                return NULL;
        for (size_t i = 0; i < RELAY_MAX_CLIENTS; i++) {
                safe_close(r->clients[i].fd);
                frame_reader_free(&r->clients[i].reader);
                queue_free(&r->clients[i].out);
        }
        safe_close(r->agent_fd);
        frame_reader_free(&r->agent_reader);
        queue_free(&r->agent_out);
        free(r->ready_frame);
        free(r->sessions);
        free(r);
        return NULL;
}

int relay_dispatch(struct relay *r, uint64_t ref, uint32_t events)
{
        uint32_t slot = ev_ref_index(ref);
        int k = 0;

        switch (ev_ref_kind(ref)) {
        case EV_RELAY_AGENT:
                if (!r->agent_closed)
                        k = agent_event(r, events);
                break;
        case EV_RELAY_CLIENT:
                if (slot < RELAY_MAX_CLIENTS && r->clients[slot].fd >= 0 &&
                    (r->clients[slot].gen & EV_GEN_MASK) == ev_ref_gen(ref))
                        client_event(r, slot, events);
                break;
        default:
                return -EINVAL;
        }
        if (k < 0)
                return k;
        return settle(r);
}

bool relay_is_ready(const struct relay *r, struct proto_ready *ret)
{
        if (r->ready && ret)
                *ret = r->ready_msg;
        return r->ready;
}

bool relay_agent_closed(const struct relay *r)
{
        return r->agent_closed;
}

/* A free slot out of quarantine, preferring one whose former owner left no
 * detached command running, searching round-robin so that a slot just
 * freed is reused last. */
static int pick_slot(struct relay *r)
{
        int fallback = -1;

        for (uint32_t n = 0; n < RELAY_MAX_CLIENTS; n++) {
                uint32_t i = (r->next_slot + n) % RELAY_MAX_CLIENTS;
                if (r->clients[i].fd >= 0 || r->clients[i].quarantine != SLOT_OPEN)
                        continue;
                if (!slot_has_sessions(r, i))
                        return (int)i;
                if (fallback < 0)
                        fallback = (int)i;
        }
        return fallback;
}

int relay_add_client(struct relay *r, int fd)
{
        _cleanup_close_ int cfd = fd;
        uint8_t hello[RELAY_HELLO_LEN];
        struct client *c;
        int slot, k;

        if (!r->ready)
                return -EAGAIN;
        if (r->agent_closed)
                return -EPIPE;
        slot = pick_slot(r);
        if (slot < 0)
                return -EBUSY;
        k = fd_set_nonblock(cfd, true);
        if (k < 0)
                return k;
        c = &r->clients[slot];
        put_be32(hello, relay_range_start((uint32_t)slot));
        put_be32(hello + 4, relay_range_end((uint32_t)slot));
        k = queue_append(&c->out, hello, sizeof(hello), r->ready_frame, r->ready_len);
        if (k < 0)
                return k;
        c->fd = TAKE_FD(cfd);
        c->gen++;
        c->watch = (struct watch){0};
        r->n_clients++;
        r->next_slot = ((uint32_t)slot + 1) % RELAY_MAX_CLIENTS;
        log_debug("relay: client %d connected", slot);
        k = settle(r);
        if (k < 0)
                return k;
        return r->clients[slot].fd >= 0 ? slot : -EPIPE;
}

size_t relay_n_clients(const struct relay *r)
{
        return r->n_clients;
}

size_t relay_n_sessions(const struct relay *r)
{
        return r->n_sessions;
}

size_t relay_client_queued(const struct relay *r, uint32_t slot)
{
        return slot < RELAY_MAX_CLIENTS && r->clients[slot].fd >= 0 ? r->clients[slot].out.len : 0;
}

int relay_send_shutdown(struct relay *r)
{
        struct cbor_buf b;
        int k;

        if (r->agent_closed)
                return -EPIPE;
        cbor_buf_init(&b, 0);
        k = proto_encode_empty(&b, 0, FRAME_SHUTDOWN, PROTO_SHUTDOWN);
        if (k >= 0)
                k = queue_append(&r->agent_out, b.data, b.len, NULL, 0);
        cbor_buf_free(&b);
        if (k < 0)
                return k;
        return settle(r);
}

uint64_t relay_next_deadline(const struct relay *r)
{
        uint64_t next = 0;

        for (size_t i = 0; i < RELAY_MAX_CLIENTS; i++) {
                const struct client *c = &r->clients[i];
                if (c->fd >= 0 && c->stalled_since != 0 &&
                    (next == 0 || c->stalled_since + STALL_TIMEOUT_NS < next))
                        next = c->stalled_since + STALL_TIMEOUT_NS;
        }
        return next;
}

void relay_expire(struct relay *r, uint64_t now)
{
        char why[96];

        snprintf(why, sizeof(why), "dropped: it took nothing of its full queue for %u s",
                 RELAY_STALL_TIMEOUT_MS / 1000);
        for (uint32_t i = 0; i < RELAY_MAX_CLIENTS; i++) {
                struct client *c = &r->clients[i];
                if (c->fd >= 0 && c->stalled_since != 0 &&
                    now >= c->stalled_since + STALL_TIMEOUT_NS)
                        drop_client(r, i, LOG_LEVEL_WARN, why);
        }
        (void)settle(r);
}

void relay_drain(struct relay *r)
{
        while (!r->agent_closed && agent_read(r) > 0)
                ;
        for (uint32_t i = 0; i < RELAY_MAX_CLIENTS; i++)
                if (r->clients[i].fd >= 0 && !r->clients[i].watch.hup)
                        (void)queue_flush(&r->clients[i].out, r->clients[i].fd);
}
