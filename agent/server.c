/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: the protocol server, one epoll loop.
 *
 * Watched: the host stream (the virtio port, or a socket in test mode), a
 * signalfd (SIGCHLD, SIGIO from the port, termination signals), and per
 * session its status pipe while it starts, its stdout/stderr pipes (or PTY
 * master) once it runs, and its stdin pipe while bytes wait for it. Each
 * epoll entry carries {kind, slot, generation}; a stale entry (its session
 * freed earlier in the same batch) is recognised by the generation and
 * skipped. One switch dispatches.
 *
 * Output toward the host goes to one queue (a cbor_buf of whole frames,
 * written from out_off). Memory stays bounded by backpressure, not by
 * dropping: above OUT_PAUSE_CHILDREN queued bytes the children's pipes are
 * taken out of epoll (the children block on full pipes) until the queue falls
 * below OUT_RESUME_CHILDREN; above OUT_PAUSE_HOST the host stream is not read
 * either, so a host that sends without reading cannot grow the queue (each
 * frame read yields a small bounded reply).
 *
 * Sessions: core.exec.request starts one (exec.c); core.exec.started is sent
 * once the status pipe reports the exec, and only then are its output pipes
 * read, so started always precedes output. core.exec.exited is sent when the
 * process was reaped and both output streams reached EOF; if something else
 * (a background grandchild) keeps a pipe open, the streams are given up once
 * nothing arrived for DRAIN_QUIET_MS after the exit (the grandchild then gets
 * EPIPE/SIGPIPE or, on a PTY, a hang-up). Output descriptors stay open until
 * the session is freed, after the reap (see output_done()).
 *
 * Stdin: bytes are written to the pipe at once, the rest buffered (at most
 * PROTO_STDIN_WINDOW per session: a host that sends beyond the window has
 * the session killed with core.error resource_limit), and acknowledged with
 * core.exec.stdin.ack {bytes: count since the previous ack} in batches of
 * ACK_BATCH or when the buffer empties. Bytes dropped because the command
 * closed its stdin are acknowledged too, so the host's window never sticks.
 * On a PTY, EOF is the terminal's EOF character (^D), not a close.
 *
 * File sessions (core.fs.request) run in a helper process each (fs.c). The
 * helper's frames pipe is watched like a command's output and paused with
 * it; its frames are forwarded whole. For a read, the server holds back a
 * core.fs.data frame that would put more than PROTO_FS_WINDOW bytes
 * unacknowledged on the wire (and stops reading the pipe) until the host's
 * core.fs.ack makes room, so a host that stops reading one file stalls that
 * session only. A write's data goes through the stdin path above, with
 * PROTO_FS_WINDOW and core.fs.ack, into the helper's data socket. A helper
 * that ends without its TERMINAL frame gets a core.fs.response EIO for it.
 *
 * Forgetting a session (the relay says its client is gone, the host broke
 * its window, a file operation was cancelled or answered) sets its id to 0:
 * no frame goes out for it any more and its id is free at once. A command
 * is SIGKILLed first; a file helper has its channels closed, frames pipe
 * first, which makes it drop its temporary file and exit. The slot is
 * released when the process is reaped.
 *
 * The host stream: a bad frame length poisons it (no resynchronisation is
 * possible); the agent answers core.error malformed_message on id 0 and
 * shuts down as for core.shutdown, so the host sees the end instead of a
 * silent hang. A virtio port reports hang-up while no host is connected (at
 * boot, before the supervisor attaches): it is then taken out of epoll until
 * SIGIO (O_ASYNC) says its state changed; queued output waits for the host.
 */
#include "agent.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "lib/core/util.h"

#define OUT_PAUSE_CHILDREN  (1024u * 1024u)
#define OUT_RESUME_CHILDREN (256u * 1024u)
#define OUT_PAUSE_HOST      (4u * 1024u * 1024u)
#define PORT_READ_CHUNK     (64u * 1024u)
#define DRAIN_QUIET_MS      100
#define ACK_BATCH           (32u * 1024u)
#define TERM_GRACE_MS       2000
#define KILL_GRACE_MS       2000
#define FINAL_FLUSH_MS      1000
#define MAX_EVENTS          64

enum ev_kind {
        EV_PORT = 1,
        EV_SIGNAL,
        EV_STATUS,
        EV_STDOUT, /* EV_STDOUT + 1 is EV_STDERR */
        EV_STDERR,
        EV_STDIN,
};

enum session_kind {
        SESSION_EXEC,
        SESSION_FS,
};

struct session {
        uint32_t id; /* 0: forgotten, waits for its process to be reaped */
        uint32_t gen;
        unsigned slot;
        enum session_kind kind;
        pid_t pid; /* a command: also its process group */
        bool tty;
        bool detached;
        bool started;
        bool exited;
        int wstatus;
        int status_fd;
        int out_fd[2];    /* stdout (or the PTY master), stderr */
        bool out_done[2]; /* EOF seen (or no such stream); the fd stays open */
        bool out_watched;
        uint64_t quiet_deadline; /* CLOCK_MONOTONIC ns, after the exit */
        int in_fd;
        bool in_watched;
        bool in_eof; /* the host sent EOF: close once the buffer drained */
        uint8_t *in_buf;
        size_t in_off, in_len, in_cap;
        uint64_t in_unacked;
        /* file sessions: out_fd[0] is the helper's frames pipe, in_fd its data socket */
        enum proto_fs_op op;
        struct frame_reader frames;
        uint64_t rd_unacked; /* read: core.fs.data bytes sent, not acknowledged */
        uint8_t *held;       /* read: a whole frame waiting for window room */
        size_t held_len;
};

struct server {
        int epfd;
        int sig_fd;
        int port_fd;
        bool vport;
        bool pid1;
        uint32_t port_events; /* registered in epoll; 0: not registered */
        bool port_away;       /* vport with no host connected */
        bool quit;
        struct frame_reader in;
        struct cbor_buf out;
        size_t out_off;
        bool children_paused;
        struct session *sessions[AGENT_MAX_SESSIONS];
        size_t n_sessions;
        uint32_t next_gen;
};

static uint8_t read_buf[PROTO_DATA_CHUNK];

/* Taken through the signalfd: children, the vport's SIGIO, and the requests
 * to stop (busybox halt/poweroff/reboot send USR1/USR2/TERM to PID 1; the
 * kernel turns Ctrl-Alt-Del into SIGINT once it is disabled). */
static const int handled_signals[] = {SIGCHLD, SIGIO, SIGTERM, SIGINT, SIGUSR1, SIGUSR2};

static void handled_mask(sigset_t *set)
{
        sigemptyset(set);
        for (size_t i = 0; i < ARRAY_SIZE(handled_signals); i++)
                sigaddset(set, handled_signals[i]);
}

int agent_server_block_signals(void)
{
        sigset_t set;

        handled_mask(&set);
        if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
                return negative_errno();
        if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
                return negative_errno();
        return 0;
}

/* ---- epoll ---- */

static uint64_t token(enum ev_kind kind, const struct session *s)
{
        return (uint64_t)kind | (s ? (uint64_t)s->slot << 8 | (uint64_t)s->gen << 32 : 0);
}

static int ep_ctl(struct server *srv, int op, int fd, uint32_t events, uint64_t data)
{
        struct epoll_event ev = {.events = events, .data.u64 = data};

        if (epoll_ctl(srv->epfd, op, fd, &ev) < 0) {
                log_error("epoll_ctl(%d) on fd %d: %s", op, fd, strerror(errno));
                return negative_errno();
        }
        return 0;
}

/* Removes fd from epoll (a dup may keep the file registered) and closes it. */
static void ep_close(struct server *srv, int *fd)
{
        if (*fd < 0)
                return;
        epoll_ctl(srv->epfd, EPOLL_CTL_DEL, *fd, NULL);
        *fd = safe_close(*fd);
}

/* ---- output queue ---- */

static size_t out_pending(const struct server *srv)
{
        return srv->out.len - srv->out_off;
}

static void queued(int r, const char *what)
{
        if (r < 0)
                log_error("cannot queue %s: %s", what, strerror(-r));
}

static void out_error(struct server *srv, uint32_t id, const char *kind, const char *offending,
                      const char *fmt, ...) _printf_(5, 6);

static void out_error(struct server *srv, uint32_t id, const char *kind, const char *offending,
                      const char *fmt, ...)
{
        struct proto_error e = {0};
        va_list ap;

        snprintf(e.kind, sizeof(e.kind), "%s", kind);
        snprintf(e.offending_type, sizeof(e.offending_type), "%s", offending);
        va_start(ap, fmt);
        vsnprintf(e.message, sizeof(e.message), fmt, ap);
        va_end(ap);
        log_debug("core.error on %u: %s: %s", id, kind, e.message);
        queued(proto_encode_error(&srv->out, id, &e), "core.error");
}

static void out_failed(struct server *srv, uint32_t id, const struct proto_exec_failed *f)
{
        log_debug("session %u failed: %s: %s", id, f->kind, f->message);
        queued(proto_encode_exec_failed(&srv->out, id, f), "core.exec.failed");
}

/* core.exec.failed resource_limit for a command the agent could not take on. */
static void out_refused(struct server *srv, uint32_t id, const char *message)
{
        struct proto_exec_failed f = {.kind = PROTO_EXEC_RESOURCE_LIMIT, .stage = "setup"};

        snprintf(f.message, sizeof(f.message), "%s", message);
        out_failed(srv, id, &f);
}

/* A vport without a host waits for one; a socket's peer does not return. */
static void port_gone(struct server *srv, int err)
{
        if (err)
                log_warn("host stream: %s", strerror(err));
        srv->port_away = true;
        if (!srv->vport)
                srv->quit = true;
}

static void flush_out(struct server *srv)
{
        while (out_pending(srv) > 0 && !srv->port_away) {
                ssize_t n = write(srv->port_fd, srv->out.data + srv->out_off, out_pending(srv));

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                port_gone(srv, errno);
                        break;
                }
                srv->out_off += (size_t)n;
        }
        if (srv->out_off == srv->out.len) {
                cbor_buf_reset(&srv->out);
                srv->out_off = 0;
        } else if (srv->out_off >= OUT_RESUME_CHILDREN && srv->out_off >= out_pending(srv)) {
                memmove(srv->out.data, srv->out.data + srv->out_off, out_pending(srv));
                srv->out.len -= srv->out_off;
                srv->out_off = 0;
        }
}

/* ---- sessions ---- */

static struct session *session_find(struct server *srv, uint32_t id)
{
        for (size_t i = 0; i < AGENT_MAX_SESSIONS; i++)
                if (srv->sessions[i] && srv->sessions[i]->id == id)
                        return srv->sessions[i];
        return NULL;
}

static struct session *session_by_pid(struct server *srv, pid_t pid)
{
        for (size_t i = 0; i < AGENT_MAX_SESSIONS; i++) {
                struct session *s = srv->sessions[i];

                if (s && !s->exited && s->pid == pid)
                        return s;
        }
        return NULL;
}

/* A zeroed session for a new request, or NULL at the cap or out of memory
 * (*ret_why says which). session_insert() makes it live. */
static struct session *session_alloc(struct server *srv, const char **ret_why)
{
        struct session *s = NULL;

        if (srv->n_sessions < AGENT_MAX_SESSIONS)
                s = calloc(1, sizeof(*s));
        *ret_why = srv->n_sessions < AGENT_MAX_SESSIONS ? "out of memory"
                                                        : "too many sessions at once";
        return s;
}

static void session_insert(struct server *srv, struct session *s)
{
        unsigned slot;

        for (slot = 0; srv->sessions[slot]; slot++)
                ;
        s->slot = slot;
        s->gen = ++srv->next_gen;
        srv->sessions[slot] = s;
        srv->n_sessions++;
}

static void session_free(struct server *srv, struct session *s)
{
        ep_close(srv, &s->status_fd);
        ep_close(srv, &s->out_fd[0]);
        ep_close(srv, &s->out_fd[1]);
        ep_close(srv, &s->in_fd);
        free(s->in_buf);
        frame_reader_free(&s->frames);
        free(s->held);
        srv->sessions[s->slot] = NULL;
        srv->n_sessions--;
        free(s);
}

/* Signals the process group; before setsid() ran (or for a file helper,
 * which has none of its own), the process itself. */
static void session_kill(struct session *s, int sig)
{
        if (kill(-s->pid, sig) < 0 && errno == ESRCH && !s->exited)
                kill(s->pid, sig);
}

/* Watches the output descriptors exactly while they may be read: the command
 * started, the host queue has room, and no file frame is held back. */
static void session_update_watch(struct server *srv, struct session *s)
{
        bool on = s->started && !srv->children_paused && !s->held;

        if (s->out_watched == on)
                return;
        for (int i = 0; i < 2; i++) {
                if (s->out_done[i])
                        continue;
                if (on)
                        ep_ctl(srv, EPOLL_CTL_ADD, s->out_fd[i], EPOLLIN, token(EV_STDOUT + i, s));
                else
                        epoll_ctl(srv->epfd, EPOLL_CTL_DEL, s->out_fd[i], NULL);
        }
        s->out_watched = on;
        if (on && s->exited)
                s->quiet_deadline = now_ns(CLOCK_MONOTONIC) + DRAIN_QUIET_MS * 1000000ull;
}

static struct proto_fs_response fs_resp; /* big: one, reused */

static void out_fs_response(struct server *srv, uint32_t id, int err, const char *fmt, ...)
        _printf_(4, 5);

/* core.fs.response from the server itself (the helper could not answer). */
static void out_fs_response(struct server *srv, uint32_t id, int err, const char *fmt, ...)
{
        va_list ap;

        fs_resp = (struct proto_fs_response){.err = err};
        va_start(ap, fmt);
        vsnprintf(fs_resp.message, sizeof(fs_resp.message), fmt, ap);
        va_end(ap);
        log_debug("fs session %u: %s", id, fs_resp.message);
        queued(proto_encode_fs_response(&srv->out, id, &fs_resp), "core.fs.response");
}

/*
 * The session's last frame: core.exec.exited once the command was reaped and
 * its output ended; for a file helper that ended without its own response,
 * core.fs.response EIO. A forgotten session just goes once reaped.
 */
static void session_try_finish(struct server *srv, struct session *s)
{
        struct proto_exec_exited ex = {0};

        if (!s->exited)
                return;
        if (s->id == 0) {
                session_free(srv, s);
                return;
        }
        if (s->kind == SESSION_FS) {
                if (!s->out_done[0] || s->held)
                        return;
                out_fs_response(srv, s->id, EIO, "the file helper ended without an answer (%s %d)",
                                WIFEXITED(s->wstatus) ? "status" : "signal",
                                WIFEXITED(s->wstatus) ? WEXITSTATUS(s->wstatus)
                                                      : WTERMSIG(s->wstatus));
                session_free(srv, s);
                return;
        }
        if (!s->started || !s->out_done[0] || !s->out_done[1])
                return;
        if (WIFEXITED(s->wstatus)) {
                ex.code = WEXITSTATUS(s->wstatus);
        } else {
                ex.code = -1;
                ex.signal = WTERMSIG(s->wstatus);
        }
        log_debug("session %u exited: code %d signal %d", s->id, ex.code, ex.signal);
        queued(proto_encode_exec_exited(&srv->out, s->id, &ex), "core.exec.exited");
        session_free(srv, s);
}

/* Forgets s (the top of the file says what that means); s may be freed. */
static void session_forget(struct server *srv, struct session *s)
{
        log_debug("session %u forgotten", s->id);
        if (s->kind == SESSION_EXEC)
                session_kill(s, SIGKILL);
        s->id = 0;
        ep_close(srv, &s->status_fd);
        ep_close(srv, &s->out_fd[0]); /* a helper's frames pipe before its data socket */
        ep_close(srv, &s->out_fd[1]);
        ep_close(srv, &s->in_fd);
        s->out_done[0] = s->out_done[1] = true;
        s->out_watched = s->in_watched = false;
        free(s->in_buf);
        s->in_buf = NULL;
        s->in_off = s->in_len = s->in_cap = 0;
        free(s->held);
        s->held = NULL;
        session_try_finish(srv, s);
}

/* ---- stdin, and the data of a file write ---- */

static size_t in_window(const struct session *s)
{
        return s->kind == SESSION_FS ? PROTO_FS_WINDOW : PROTO_STDIN_WINDOW;
}

static void stdin_ack(struct server *srv, struct session *s, bool force)
{
        struct proto_stdin_ack ack = {.bytes = s->in_unacked};

        if (s->in_unacked == 0 || (!force && s->in_unacked < ACK_BATCH))
                return;
        s->in_unacked = 0;
        if (s->id == 0)
                return;
        if (s->kind == SESSION_FS)
                queued(proto_encode_fs_ack(&srv->out, s->id, &ack), "core.fs.ack");
        else
                queued(proto_encode_stdin_ack(&srv->out, s->id, &ack), "core.exec.stdin.ack");
}

/* Stops feeding stdin: what is still buffered is dropped (and acknowledged). */
static void stdin_close(struct server *srv, struct session *s)
{
        s->in_unacked += s->in_len - s->in_off;
        free(s->in_buf);
        s->in_buf = NULL;
        s->in_off = s->in_len = s->in_cap = 0;
        s->in_watched = false;
        ep_close(srv, &s->in_fd);
        stdin_ack(srv, s, true);
}

/* End of input on a PTY: the terminal's EOF character, as a typed ^D. */
static void stdin_eof_tty(int fd)
{
        struct termios t;

        if (tcgetattr(fd, &t) == 0 && (t.c_lflag & ICANON))
                (void)!write(fd, &t.c_cc[VEOF], 1);
}

/* The end of the input, before the descriptor is closed: ^D on a PTY, 'E'
 * on a file helper's data socket. -EAGAIN: try again when it is writable. */
static int stdin_end(struct session *s)
{
        if (s->kind == SESSION_FS) {
                if (send(s->in_fd, "E", 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
                        return errno == EAGAIN ? -EAGAIN : negative_errno();
                return 0;
        }
        if (s->tty)
                stdin_eof_tty(s->in_fd);
        return 0;
}

/* One message of file bytes to a helper ('D' + at most a chunk): bytes
 * written, 0 when the socket is full, or -errno. */
static ssize_t fs_data_send(int fd, const uint8_t *data, size_t len)
{
        struct iovec iov[2] = {{.iov_base = (void *)"D", .iov_len = 1},
                               {.iov_base = (void *)data, .iov_len = MIN(len, PROTO_DATA_CHUNK)}};
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};

        for (;;) {
                if (sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
                        return (ssize_t)iov[1].iov_len;
                if (errno == EAGAIN)
                        return 0;
                if (errno != EINTR)
                        return negative_errno();
        }
}

/* write(2) to a non-blocking pipe: bytes written, 0 when it is full, or
 * -errno. */
static ssize_t pipe_write(int fd, const uint8_t *data, size_t len)
{
        for (;;) {
                ssize_t n = write(fd, data, len);

                if (n >= 0)
                        return n;
                if (errno == EAGAIN)
                        return 0;
                if (errno != EINTR)
                        return negative_errno();
        }
}

/* Writes what it can of data: bytes written, or -errno. */
static ssize_t stdin_write(struct session *s, const uint8_t *data, size_t len)
{
        size_t done = 0;

        while (done < len) {
                ssize_t n = s->kind == SESSION_FS ? fs_data_send(s->in_fd, data + done, len - done)
                                                  : pipe_write(s->in_fd, data + done, len - done);

                if (n < 0)
                        return n;
                if (n == 0)
                        break;
                done += (size_t)n;
        }
        s->in_unacked += done;
        return (ssize_t)done;
}

/* Writes buffered bytes, ends the input after EOF, keeps EPOLLOUT interest
 * right. */
static void stdin_pump(struct server *srv, struct session *s)
{
        bool want;

        if (s->in_fd < 0)
                return;
        if (s->in_off < s->in_len) {
                ssize_t n = stdin_write(s, s->in_buf + s->in_off, s->in_len - s->in_off);

                if (n < 0) { /* EPIPE: the command closed its stdin, or the helper ended */
                        stdin_close(srv, s);
                        return;
                }
                s->in_off += (size_t)n;
        }
        if (s->in_off == s->in_len) {
                free(s->in_buf);
                s->in_buf = NULL;
                s->in_off = s->in_len = s->in_cap = 0;
                if (s->in_eof && stdin_end(s) != -EAGAIN) {
                        stdin_close(srv, s);
                        return;
                }
        }
        want = s->in_off < s->in_len || s->in_eof;
        if (want != s->in_watched && ep_ctl(srv, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, s->in_fd,
                                            EPOLLOUT, token(EV_STDIN, s)) == 0)
                s->in_watched = want;
        stdin_ack(srv, s, !want);
}

/* Appends to the stdin buffer; the caller checked the window. */
static int stdin_buffer(struct session *s, const uint8_t *data, size_t len)
{
        size_t held = s->in_len - s->in_off;

        if (s->in_off > 0) {
                memmove(s->in_buf, s->in_buf + s->in_off, held);
                s->in_off = 0;
                s->in_len = held;
        }
        if (held + len > s->in_cap) {
                size_t cap = MAX(held + len, MIN(2 * s->in_cap, in_window(s)));
                uint8_t *p = realloc(s->in_buf, cap);

                if (!p)
                        return -ENOMEM;
                s->in_buf = p;
                s->in_cap = cap;
        }
        memcpy(s->in_buf + s->in_len, data, len);
        s->in_len += len;
        return 0;
}

/* ---- frames of a file helper ---- */

enum { FWD_SENT, FWD_HELD, FWD_LAST };

/* Forwards one frame of the helper to the host, or holds back a read's
 * data frame that the window has no room for. */
static int fs_forward(struct server *srv, struct session *s, const struct frame *f)
{
        struct proto_msg m;
        struct proto_data d;
        size_t start;

        if (s->op == PROTO_FS_OP_READ && proto_decode(f, &m) == 0 && m.type == PROTO_FS_DATA &&
            proto_decode_data(&m, &d) == 0) {
                if (s->rd_unacked + d.len > PROTO_FS_WINDOW) {
                        if (f->body != s->held) {
                                s->held = malloc(f->body_len ? f->body_len : 1);
                                if (!s->held)
                                        return -ENOMEM;
                                memcpy(s->held, f->body, f->body_len);
                                s->held_len = f->body_len;
                        }
                        return FWD_HELD;
                }
                s->rd_unacked += d.len;
        }
        start = frame_begin(&srv->out, s->id, f->flags);
        cbor_buf_append(&srv->out, f->body, f->body_len);
        queued(frame_end(&srv->out, start), "a file frame");
        return f->flags & FRAME_TERMINAL ? FWD_LAST : FWD_SENT;
}

/* Forwards the helper's whole frames, the held one first, up to the next
 * one that must wait; then the session is done if the helper is. s may be
 * freed. */
static void fs_pump(struct server *srv, struct session *s)
{
        struct frame f;
        int r = 0;

        for (;;) {
                if (s->held) {
                        f = (struct frame){.body = s->held, .body_len = s->held_len};
                        r = fs_forward(srv, s, &f);
                        if (r == FWD_HELD)
                                break;
                        free(s->held);
                        s->held = NULL;
                }
                r = frame_reader_next(&s->frames, &f);
                if (r <= 0)
                        break;
                r = fs_forward(srv, s, &f);
                if (r < 0)
                        break;
                if (r == FWD_LAST) {
                        session_forget(srv, s);
                        return;
                }
        }
        if (r < 0 || (s->out_done[0] && !s->held && s->frames.len > s->frames.start)) {
                log_error("fs session %u: bad output from the file helper", s->id);
                out_fs_response(srv, s->id, EIO, "the file helper failed");
                session_forget(srv, s);
                return;
        }
        session_update_watch(srv, s);
        session_try_finish(srv, s);
}

/* ---- messages from the host ---- */

static const char *const kind_names[] = {[SESSION_EXEC] = "command", [SESSION_FS] = "file"};

/*
 * The session m is for, which must be of the given kind; else NULL and a
 * core.error. File messages for a session that does not exist are dropped
 * without one: a core.fs.ack or core.fs.data may cross the session's last
 * frame, and an error sent then could land on a new session of the same id.
 */
static struct session *session_for(struct server *srv, const struct proto_msg *m,
                                   enum session_kind kind)
{
        struct session *s = m->id ? session_find(srv, m->id) : NULL;

        if (!s && kind == SESSION_FS && m->id != 0)
                log_debug("%s for no session %u: dropped", m->type_name, m->id);
        else if (!s)
                out_error(srv, m->id, PROTO_ERR_INVALID_SESSION, m->type_name, "no session %u",
                          m->id);
        else if (s->kind != kind)
                out_error(srv, m->id, PROTO_ERR_INVALID_SESSION, m->type_name,
                          "session %u is not a %s session", m->id, kind_names[kind]);
        return s && s->kind == kind ? s : NULL;
}

/* A SESSION_START may not use id 0 or an id in use. */
static bool new_id_ok(struct server *srv, const struct proto_msg *m)
{
        if (m->id != 0 && !session_find(srv, m->id))
                return true;
        out_error(srv, m->id, PROTO_ERR_INVALID_SESSION, m->type_name,
                  m->id ? "session id %u is in use" : "session id %u is reserved", m->id);
        return false;
}

static void handle_exec_request(struct server *srv, const struct proto_msg *m)
{
        struct proto_exec_request req = {0};
        struct proto_exec_failed failed = {0};
        struct agent_exec_child child;
        struct session *s;
        const char *why;
        int r;

        if (!new_id_ok(srv, m))
                return;
        r = proto_decode_exec_request(m, &req);
        if (r == -ENOMEM) {
                out_refused(srv, m->id, "out of memory");
                return;
        }
        if (r < 0) {
                out_error(srv, m->id, PROTO_ERR_MALFORMED, m->type_name,
                          "invalid core.exec.request payload");
                return;
        }
        s = session_alloc(srv, &why);
        if (!s) {
                out_refused(srv, m->id, why);
                goto done;
        }
        r = agent_exec_spawn(&req, &child, &failed);
        if (r < 0) {
                out_failed(srv, m->id, &failed);
                free(s);
                goto done;
        }
        *s = (struct session){
                .id = m->id,
                .kind = SESSION_EXEC,
                .pid = child.pid,
                .tty = req.tty,
                .detached = req.detached,
                .status_fd = child.status_fd,
                .out_fd = {child.stdout_fd, child.stderr_fd},
                .out_done = {false, child.stderr_fd < 0},
                .in_fd = child.stdin_fd,
        };
        session_insert(srv, s);
        log_debug("session %u: pid %d: %s%s", s->id, s->pid, req.argv[0],
                  s->detached ? " (detached)" : "");
        if (ep_ctl(srv, EPOLL_CTL_ADD, s->status_fd, EPOLLIN, token(EV_STATUS, s)) < 0) {
                out_refused(srv, m->id, "cannot watch the command");
                session_forget(srv, s);
        }
done:
        proto_exec_request_free(&req);
}

static void handle_fs_request(struct server *srv, const struct proto_msg *m)
{
        static struct proto_fs_request req; /* big */
        struct agent_fs_child child;
        struct session *s;
        const char *why;
        int r;

        if (!new_id_ok(srv, m))
                return;
        r = proto_decode_fs_request(m, &req);
        if (r < 0) {
                out_error(srv, m->id, r == -ENOMEM ? PROTO_ERR_BUSY : PROTO_ERR_MALFORMED,
                          m->type_name, "%s",
                          r == -ENOMEM ? "out of memory" : "invalid core.fs.request payload");
                return;
        }
        s = session_alloc(srv, &why);
        if (!s) {
                out_error(srv, m->id, PROTO_ERR_BUSY, m->type_name, "%s", why);
                return;
        }
        r = agent_fs_spawn(m->id, &req, &child);
        if (r < 0) {
                out_error(srv, m->id, PROTO_ERR_BUSY, m->type_name,
                          "cannot start the file helper: %s", strerror(-r));
                free(s);
                return;
        }
        *s = (struct session){
                .id = m->id,
                .kind = SESSION_FS,
                .pid = child.pid,
                .started = true,
                .status_fd = -1,
                .out_fd = {child.frames_fd, -1},
                .out_done = {false, true},
                .in_fd = child.data_fd,
                .op = req.op,
        };
        frame_reader_init(&s->frames);
        session_insert(srv, s);
        log_debug("fs session %u: pid %d: %s %s", s->id, s->pid, proto_fs_op_name(req.op),
                  req.path);
        session_update_watch(srv, s);
}

/* core.exec.stdin, and core.fs.data of a write. */
static void handle_input(struct server *srv, const struct proto_msg *m, enum session_kind kind)
{
        struct session *s = session_for(srv, m, kind);
        struct proto_data d;
        ssize_t n = 0;

        if (!s)
                return;
        if (kind == SESSION_FS && s->op != PROTO_FS_OP_WRITE) {
                out_error(srv, m->id, PROTO_ERR_MALFORMED, m->type_name,
                          "session %u does not take data", m->id);
                session_forget(srv, s);
                return;
        }
        if (proto_decode_data(m, &d) < 0) {
                out_error(srv, m->id, PROTO_ERR_MALFORMED, m->type_name, "invalid payload");
                return;
        }
        if (s->in_fd < 0 || s->in_eof) { /* no stdin, or closed: consumed */
                s->in_unacked += d.len;
                stdin_ack(srv, s, true);
                return;
        }
        if (d.len == 0) {
                s->in_eof = true;
                stdin_pump(srv, s);
                return;
        }
        /* unacknowledged: written but not acked yet, plus buffered */
        if (s->in_unacked + (s->in_len - s->in_off) + d.len > in_window(s)) {
                log_warn("session %u: input beyond the window; ending it", s->id);
                out_error(srv, s->id, PROTO_ERR_BUSY, m->type_name,
                          "more than %zu unacknowledged bytes; session ended", in_window(s));
                session_forget(srv, s);
                return;
        }
        if (s->in_off == s->in_len)
                n = stdin_write(s, d.data, d.len);
        if (n < 0) {
                s->in_unacked += d.len;
                stdin_close(srv, s);
                return;
        }
        if ((size_t)n < d.len && stdin_buffer(s, d.data + n, d.len - (size_t)n) < 0) {
                log_error("session %u: out of memory for input; closing it", s->id);
                s->in_unacked += d.len - (size_t)n;
                stdin_close(srv, s);
                return;
        }
        stdin_pump(srv, s);
}

static void handle_fs_ack(struct server *srv, const struct proto_msg *m)
{
        struct session *s = session_for(srv, m, SESSION_FS);
        struct proto_stdin_ack ack;

        if (!s)
                return;
        if (s->op != PROTO_FS_OP_READ || proto_decode_stdin_ack(m, &ack) < 0 ||
            ack.bytes > s->rd_unacked) {
                out_error(srv, m->id, PROTO_ERR_MALFORMED, m->type_name,
                          "acknowledgement of bytes that were not sent");
                session_forget(srv, s);
                return;
        }
        s->rd_unacked -= ack.bytes;
        fs_pump(srv, s);
}

static void handle_fs_cancel(struct server *srv, const struct proto_msg *m)
{
        struct session *s = session_for(srv, m, SESSION_FS);

        if (!s)
                return;
        out_fs_response(srv, s->id, ECANCELED, "cancelled");
        session_forget(srv, s);
}

static void handle_resize(struct server *srv, const struct proto_msg *m)
{
        struct session *s = session_for(srv, m, SESSION_EXEC);
        struct proto_exec_resize rs;
        struct winsize ws = {0};

        if (!s)
                return;
        if (proto_decode_exec_resize(m, &rs) < 0) {
                out_error(srv, m->id, PROTO_ERR_MALFORMED, m->type_name, "invalid payload");
                return;
        }
        ws.ws_row = rs.rows;
        ws.ws_col = rs.cols;
        if (s->tty && s->out_fd[0] >= 0 && ioctl(s->out_fd[0], TIOCSWINSZ, &ws) < 0)
                log_warn("session %u: resize: %s", s->id, strerror(errno));
}

static void handle_signal(struct server *srv, const struct proto_msg *m)
{
        struct session *s = session_for(srv, m, SESSION_EXEC);
        struct proto_exec_signal sg;

        if (!s)
                return;
        if (proto_decode_exec_signal(m, &sg) < 0 || sg.signal < 1 || sg.signal > PROTO_MAX_SIGNAL) {
                out_error(srv, m->id, PROTO_ERR_MALFORMED, m->type_name, "invalid payload");
                return;
        }
        session_kill(s, sg.signal);
}

/* A relay client left: its sessions end, but detached commands keep
 * running (with their stdin closed: nobody can write to it any more). */
static void handle_disconnected(struct server *srv, const struct proto_msg *m)
{
        struct proto_relay_disconnected d;

        if (m->id != 0 || proto_decode_relay_disconnected(m, &d) < 0) {
                out_error(srv, m->id, PROTO_ERR_MALFORMED, m->type_name, "invalid payload");
                return;
        }
        log_debug("client of sessions [%u, %u) disconnected", d.id_start, d.id_end);
        for (size_t i = 0; i < AGENT_MAX_SESSIONS; i++) {
                struct session *s = srv->sessions[i];

                if (!s || s->id == 0 || s->id < d.id_start || s->id >= d.id_end)
                        continue;
                if (s->detached) {
                        s->in_eof = true;
                        stdin_pump(srv, s);
                } else {
                        session_forget(srv, s);
                }
        }
}

static void handle_frame(struct server *srv, const struct frame *f)
{
        struct proto_msg m;

        if (proto_decode(f, &m) < 0) {
                out_error(srv, f->id, PROTO_ERR_MALFORMED, "", "frame body is not a message");
                return;
        }
        if (m.version < PROTO_MIN_VERSION) {
                out_error(srv, m.id, PROTO_ERR_UNSUPPORTED_VER, m.type_name,
                          "protocol version %u is not supported (minimum %u)", m.version,
                          PROTO_MIN_VERSION);
                return;
        }
        switch (m.type) {
        case PROTO_PING:
                queued(proto_encode_empty(&srv->out, m.id, 0, PROTO_PONG), "core.pong");
                break;
        case PROTO_SHUTDOWN:
                log_info("shutdown requested by the host");
                srv->quit = true;
                break;
        case PROTO_EXEC_REQUEST:
                handle_exec_request(srv, &m);
                break;
        case PROTO_EXEC_STDIN:
                handle_input(srv, &m, SESSION_EXEC);
                break;
        case PROTO_EXEC_RESIZE:
                handle_resize(srv, &m);
                break;
        case PROTO_EXEC_SIGNAL:
                handle_signal(srv, &m);
                break;
        case PROTO_RELAY_CLIENT_DISCONNECTED:
                handle_disconnected(srv, &m);
                break;
        case PROTO_FS_REQUEST:
                handle_fs_request(srv, &m);
                break;
        case PROTO_FS_DATA:
                handle_input(srv, &m, SESSION_FS);
                break;
        case PROTO_FS_ACK:
                handle_fs_ack(srv, &m);
                break;
        case PROTO_FS_CANCEL:
                handle_fs_cancel(srv, &m);
                break;
        default:
                out_error(srv, m.id, PROTO_ERR_UNSUPPORTED_TYPE, m.type_name,
                          "unsupported message type \"%s\"", m.type_name);
                break;
        }
}

/* One read from the host and the frames it completes. Returns the bytes
 * read (0: nothing more for now, or the stream ended). */
static size_t port_read(struct server *srv)
{
        struct frame f;
        uint8_t *p;
        size_t avail;
        ssize_t n = 0;
        int r = 0;

        p = frame_reader_space(&srv->in, PORT_READ_CHUNK, &avail);
        if (!p) {
                log_error("out of memory reading from the host");
                srv->quit = true;
                return 0;
        }
        if (avail > 0) {
                n = read(srv->port_fd, p, avail);
                if (n < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                port_gone(srv, errno);
                        return 0;
                }
                if (n == 0) {
                        log_debug("host stream: end of file");
                        port_gone(srv, 0);
                        return 0;
                }
                frame_reader_commit(&srv->in, (size_t)n);
        }
        while (!srv->quit && (r = frame_reader_next(&srv->in, &f)) > 0)
                handle_frame(srv, &f);
        if (!srv->quit && r < 0) {
                log_error("bad frame length from the host: the stream is lost; shutting down");
                out_error(srv, 0, PROTO_ERR_MALFORMED, "", "bad frame length; stream closed");
                srv->quit = true;
        }
        return (size_t)n;
}

static void update_port(struct server *srv)
{
        uint32_t want = 0;
        int op;

        if (!srv->port_away) {
                if (!srv->quit && out_pending(srv) < OUT_PAUSE_HOST)
                        want |= EPOLLIN;
                if (out_pending(srv) > 0)
                        want |= EPOLLOUT;
        }
        if (want == srv->port_events)
                return;
        op = !srv->port_events ? EPOLL_CTL_ADD : !want ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
        if (ep_ctl(srv, op, srv->port_fd, want, token(EV_PORT, NULL)) == 0)
                srv->port_events = want;
}

static void on_port(struct server *srv, uint32_t events)
{
        if (events & EPOLLIN)
                port_read(srv);
        if (!(events & (EPOLLHUP | EPOLLERR)))
                return;
        /* take what is left; then a vport's host is away, a socket is gone */
        while (!srv->quit && !srv->port_away && port_read(srv) > 0)
                ;
        if (srv->vport && !srv->port_away) {
                log_debug("agent port: no host connected");
                srv->port_away = true;
        }
}

/* ---- children ---- */

static void on_status(struct server *srv, struct session *s)
{
        struct proto_exec_failed failed;
        struct proto_exec_started st = {.pid = (uint32_t)s->pid};
        int r = agent_exec_read_status(s->status_fd, &failed);

        if (r == -EAGAIN)
                return;
        ep_close(srv, &s->status_fd);
        if (r == 0) {
                out_failed(srv, s->id, &failed);
                session_free(srv, s);
                return;
        }
        s->started = true;
        queued(proto_encode_exec_started(&srv->out, s->id, &st), "core.exec.started");
        session_update_watch(srv, s);
}

/*
 * The end of one output stream. Its descriptor stays open until the session
 * is freed: closing a PTY master hangs the terminal up, and the kernel would
 * then SIGHUP a session leader that closed its stdio but has not exited yet
 * (coreutils close stdout and stderr at exit), turning "exited 0" into
 * "killed by SIGHUP".
 */
static void output_done(struct server *srv, struct session *s, int which)
{
        if (s->out_done[which])
                return;
        if (s->out_watched)
                epoll_ctl(srv->epfd, EPOLL_CTL_DEL, s->out_fd[which], NULL);
        s->out_done[which] = true;
}

static void on_output(struct server *srv, struct session *s, int which)
{
        ssize_t n = read(s->out_fd[which], read_buf, sizeof(read_buf));

        if (n > 0) {
                queued(proto_encode_data(&srv->out, s->id,
                                         which ? PROTO_EXEC_STDERR : PROTO_EXEC_STDOUT, read_buf,
                                         (size_t)n),
                       "output");
                if (s->exited)
                        s->quiet_deadline = now_ns(CLOCK_MONOTONIC) + DRAIN_QUIET_MS * 1000000ull;
                return;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        if (n < 0 && errno != EIO) /* EIO: the PTY's last slave closed */
                log_warn("session %u: read: %s", s->id, strerror(errno));
        output_done(srv, s, which);
        session_try_finish(srv, s);
}

/* A file helper's frames pipe: into the session's frame reader. */
static void on_fs_output(struct server *srv, struct session *s)
{
        size_t avail;
        uint8_t *p = frame_reader_space(&s->frames, PORT_READ_CHUNK, &avail);
        ssize_t n = 0;

        if (!p) {
                out_fs_response(srv, s->id, ENOMEM, "out of memory");
                session_forget(srv, s);
                return;
        }
        if (avail > 0) {
                n = read(s->out_fd[0], p, avail);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                if (n > 0)
                        frame_reader_commit(&s->frames, (size_t)n);
                else
                        output_done(srv, s, 0);
        }
        fs_pump(srv, s);
}

static void on_child_exit(struct server *srv, pid_t pid, int wstatus)
{
        struct session *s = session_by_pid(srv, pid);

        if (!s)
                return; /* an orphan we inherited, or a command that failed to start */
        s->exited = true;
        s->wstatus = wstatus;
        s->quiet_deadline = now_ns(CLOCK_MONOTONIC) + DRAIN_QUIET_MS * 1000000ull;
        stdin_close(srv, s);
        session_try_finish(srv, s);
}

/* Reaps every zombie. Returns true when no child is left at all. */
static bool reap(struct server *srv)
{
        for (;;) {
                int wstatus;
                pid_t pid = waitpid(-1, &wstatus, WNOHANG);

                if (pid > 0) {
                        on_child_exit(srv, pid, wstatus);
                        continue;
                }
                return pid < 0 && errno == ECHILD;
        }
}

static void on_signal(struct server *srv)
{
        struct signalfd_siginfo si[8];
        ssize_t n = read(srv->sig_fd, si, sizeof(si));

        for (ssize_t i = 0; n > 0 && i < n / (ssize_t)sizeof(si[0]); i++) {
                switch (si[i].ssi_signo) {
                case SIGCHLD:
                        break;
                case SIGIO: /* the vport's host side changed: look again */
                        srv->port_away = false;
                        break;
                default:
                        log_info("signal %u: shutting down", si[i].ssi_signo);
                        srv->quit = true;
                        break;
                }
        }
        reap(srv);
}

/* Milliseconds until the first drain deadline, or -1. */
static int next_timeout(struct server *srv)
{
        uint64_t now = now_ns(CLOCK_MONOTONIC), first = UINT64_MAX;

        for (size_t i = 0; i < AGENT_MAX_SESSIONS; i++) {
                struct session *s = srv->sessions[i];

                if (s && s->kind == SESSION_EXEC && s->started && s->exited && s->out_watched)
                        first = MIN(first, s->quiet_deadline);
        }
        if (first == UINT64_MAX)
                return -1;
        return first <= now ? 0 : (int)MIN((first - now + 999999) / 1000000, (uint64_t)INT32_MAX);
}

static void expire_drains(struct server *srv)
{
        uint64_t now = now_ns(CLOCK_MONOTONIC);

        for (size_t i = 0; i < AGENT_MAX_SESSIONS; i++) {
                struct session *s = srv->sessions[i];

                if (!s || s->kind != SESSION_EXEC || !s->started || !s->exited || !s->out_watched ||
                    s->quiet_deadline > now)
                        continue;
                log_debug("session %u: output still open after the exit; closing it", s->id);
                output_done(srv, s, 0);
                output_done(srv, s, 1);
                session_try_finish(srv, s);
        }
}

static void update_children(struct server *srv)
{
        size_t pending = out_pending(srv);
        bool pause = srv->children_paused ? pending > OUT_RESUME_CHILDREN
                                          : pending >= OUT_PAUSE_CHILDREN;

        if (pause == srv->children_paused)
                return;
        srv->children_paused = pause;
        for (size_t i = 0; i < AGENT_MAX_SESSIONS; i++)
                if (srv->sessions[i])
                        session_update_watch(srv, srv->sessions[i]);
}

static void dispatch(struct server *srv, const struct epoll_event *ev)
{
        enum ev_kind kind = (enum ev_kind)(ev->data.u64 & 0xff);
        unsigned slot = (unsigned)(ev->data.u64 >> 8) & 0xffffff;
        uint32_t gen = (uint32_t)(ev->data.u64 >> 32);
        struct session *s = NULL;

        if (kind >= EV_STATUS) {
                s = slot < AGENT_MAX_SESSIONS ? srv->sessions[slot] : NULL;
                if (!s || s->gen != gen)
                        return; /* freed earlier in this batch */
        }
        switch (kind) {
        case EV_PORT:
                on_port(srv, ev->events);
                break;
        case EV_SIGNAL:
                on_signal(srv);
                break;
        case EV_STATUS:
                if (s->status_fd >= 0)
                        on_status(srv, s);
                break;
        case EV_STDOUT:
        case EV_STDERR:
                if (s->out_done[kind - EV_STDOUT])
                        break;
                if (s->kind == SESSION_FS)
                        on_fs_output(srv, s);
                else
                        on_output(srv, s, (int)(kind - EV_STDOUT));
                break;
        case EV_STDIN:
                stdin_pump(srv, s);
                break;
        }
}

/* ---- the end ---- */

static void signal_all(struct server *srv, int sig)
{
        if (srv->pid1) {
                kill(-1, sig);
                return;
        }
        for (size_t i = 0; i < AGENT_MAX_SESSIONS; i++)
                if (srv->sessions[i])
                        session_kill(srv->sessions[i], sig);
}

static bool commands_alive(struct server *srv)
{
        for (size_t i = 0; i < AGENT_MAX_SESSIONS; i++)
                if (srv->sessions[i] && !srv->sessions[i]->exited)
                        return true;
        return false;
}

/* Reaps until nothing is left to wait for, or ms passed. */
static void wait_children(struct server *srv, int ms)
{
        uint64_t deadline = now_ns(CLOCK_MONOTONIC) + (uint64_t)ms * 1000000ull;
        sigset_t chld;

        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        for (;;) {
                bool none = reap(srv);
                uint64_t now = now_ns(CLOCK_MONOTONIC);
                struct timespec ts;

                if (srv->pid1 ? none : !commands_alive(srv))
                        return;
                if (now >= deadline)
                        return;
                ts.tv_sec = (time_t)((deadline - now) / 1000000000ull);
                ts.tv_nsec = (long)((deadline - now) % 1000000000ull);
                sigtimedwait(&chld, NULL, &ts);
        }
}

/* File helpers are told to stop by closing their channels (a signal could
 * leave a temporary file behind); commands get SIGTERM, then SIGKILL. */
static void terminate_commands(struct server *srv)
{
        for (size_t i = 0; i < AGENT_MAX_SESSIONS; i++)
                if (srv->sessions[i] && srv->sessions[i]->kind == SESSION_FS)
                        session_forget(srv, srv->sessions[i]);
        signal_all(srv, SIGTERM);
        wait_children(srv, TERM_GRACE_MS);
        signal_all(srv, SIGKILL);
        wait_children(srv, KILL_GRACE_MS);
}

/* Gives queued frames (an error, the last exits) a bounded chance to leave. */
static void final_flush(struct server *srv)
{
        uint64_t deadline = now_ns(CLOCK_MONOTONIC) + FINAL_FLUSH_MS * 1000000ull;

        for (;;) {
                struct pollfd pfd = {.fd = srv->port_fd, .events = POLLOUT};
                uint64_t now;

                flush_out(srv);
                now = now_ns(CLOCK_MONOTONIC);
                if (out_pending(srv) == 0 || srv->port_away || now >= deadline)
                        return;
                if (poll(&pfd, 1, (int)((deadline - now) / 1000000ull) + 1) < 0 && errno != EINTR)
                        return;
                if (pfd.revents & (POLLHUP | POLLERR))
                        return;
        }
}

static void send_ready(struct server *srv, uint64_t boot_ns)
{
        struct proto_ready ready = {
                .version = PROTO_VERSION,
                .boot_time_ns = boot_ns,
                .ready_time_ns = now_ns(CLOCK_BOOTTIME),
        };

        snprintf(ready.agent_version, sizeof(ready.agent_version), "%s", MSB_VERSION);
        queued(proto_encode_ready(&srv->out, &ready), "core.ready");
        log_info("ready after %llu ms of boot time",
                 (unsigned long long)(ready.ready_time_ns / 1000000ull));
}

int agent_server_run(const struct agent_server_config *cfg)
{
        struct server srv = {
                .sig_fd = -1,
                .port_fd = cfg->port_fd,
                .vport = cfg->vport,
                .pid1 = cfg->pid1,
        };
        struct epoll_event evs[MAX_EVENTS];
        sigset_t mask;
        int r = 0;

        frame_reader_init(&srv.in);
        cbor_buf_init(&srv.out, 0);
        handled_mask(&mask);
        srv.epfd = epoll_create1(EPOLL_CLOEXEC);
        if (srv.epfd >= 0)
                srv.sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (srv.epfd < 0 || srv.sig_fd < 0) {
                r = negative_errno();
                log_error("event loop setup: %s", strerror(-r));
                goto out;
        }
        r = ep_ctl(&srv, EPOLL_CTL_ADD, srv.sig_fd, EPOLLIN, token(EV_SIGNAL, NULL));
        if (r < 0)
                goto out;
        send_ready(&srv, cfg->boot_ns);
        reap(&srv);

        for (;;) {
                int n;

                flush_out(&srv); /* may find the host gone */
                if (srv.quit)
                        break;
                update_children(&srv);
                update_port(&srv);
                n = epoll_wait(srv.epfd, evs, MAX_EVENTS, next_timeout(&srv));
                if (n < 0 && errno != EINTR) {
                        r = negative_errno();
                        log_error("epoll_wait: %s", strerror(-r));
                        break;
                }
                for (int i = 0; i < n; i++)
                        dispatch(&srv, &evs[i]);
                expire_drains(&srv);
        }
        terminate_commands(&srv);
        final_flush(&srv);
out:
        for (size_t i = 0; i < AGENT_MAX_SESSIONS; i++)
                if (srv.sessions[i])
                        session_free(&srv, srv.sessions[i]);
        safe_close(srv.sig_fd);
        safe_close(srv.epfd);
        safe_close(srv.port_fd);
        frame_reader_free(&srv.in);
        cbor_buf_free(&srv.out);
        return r < 0 ? r : 0;
}
