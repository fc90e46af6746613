/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: one poll loop joins the terminal to a running
 * command. Events are drained first (the library may hold some queued),
 * then we wait on the sandbox channel, stdin (only while the command can
 * take more: stdin is flow-controlled) and two signalfds: the stopping
 * signals (SIGINT, SIGTERM, SIGHUP, SIGQUIT; also the cancel fd while a
 * sandbox boots) and the others (SIGUSR1, SIGUSR2, SIGWINCH).
 *
 * Every signal but SIGWINCH is forwarded to the command's process group;
 * the third SIGINT or SIGTERM sends SIGKILL instead, so a command that
 * ignores signals can still be stopped. SIGWINCH resizes the guest
 * terminal. In tty mode the local terminal is raw (Ctrl-C travels as a byte
 * to the guest's line discipline)
 * and is restored however the loop ends.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "options.h"
#include "lib/core/util.h"

static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
static const int other_signals[] = {SIGUSR1, SIGUSR2, SIGWINCH};

static int signalfd_for(const int *sigs, size_t n)
{
        sigset_t mask;

        sigemptyset(&mask);
        for (size_t i = 0; i < n; i++)
                sigaddset(&mask, sigs[i]);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        return signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

int cli_signals_open(struct cli_signals *ret)
{
        ret->stop_fd = signalfd_for(stop_signals, ARRAY_SIZE(stop_signals));
        ret->other_fd = signalfd_for(other_signals, ARRAY_SIZE(other_signals));
        if (ret->stop_fd < 0 || ret->other_fd < 0) {
                cli_error("signalfd: %s", strerror(errno));
                cli_signals_close(ret);
                return -1;
        }
        return 0;
}

void cli_signals_close(struct cli_signals *s)
{
        s->stop_fd = safe_close(s->stop_fd);
        s->other_fd = safe_close(s->other_fd);
}

struct attach {
        msb_exec *ex;
        bool tty;
        bool stdin_open;
        const struct cli_signals *sigs;
        int interrupts;
        bool raw;
        struct termios saved;
};

static void terminal_raw(struct attach *a)
{
        struct termios t;

        if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &a->saved) < 0)
                return;
        t = a->saved;
        cfmakeraw(&t);
        if (tcsetattr(STDIN_FILENO, TCSADRAIN, &t) == 0)
                a->raw = true;
}

static void terminal_restore(struct attach *a)
{
        if (a->raw)
                tcsetattr(STDIN_FILENO, TCSADRAIN, &a->saved);
        a->raw = false;
}

static int on_signal(struct attach *a, int fd)
{
        struct signalfd_siginfo si;
        struct winsize ws;

        if (read(fd, &si, sizeof(si)) != sizeof(si))
                return 0;
        if (si.ssi_signo == SIGWINCH) {
                if (a->tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0)
                        return msb_exec_resize(a->ex, ws.ws_row, ws.ws_col);
                return 0;
        }
        if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM) {
                if (++a->interrupts >= 3)
                        return msb_exec_signal(a->ex, SIGKILL);
        }
        return msb_exec_signal(a->ex, (int)si.ssi_signo);
}

static int on_stdin(struct attach *a)
{
        char buf[64 * 1024];
        size_t room = msb_exec_stdin_room(a->ex);
        ssize_t n = read(STDIN_FILENO, buf, MIN(room, sizeof(buf)));

        if (n < 0)
                return errno == EINTR || errno == EAGAIN ? 0 : -errno;
        if (n == 0) {
                a->stdin_open = false;
                return msb_exec_close_stdin(a->ex);
        }
        /* room was checked, so the whole read is accepted */
        return msb_exec_write_stdin(a->ex, buf, (size_t)n) < 0 ? -EIO : 0;
}

/* Writes output; a closed stdout (EPIPE) is not an error for the command. */
static void output(int fd, const uint8_t *data, size_t len)
{
        (void)write_all(fd, data, len);
}

static int finish(const msb_exec_event *ev, const char *timeout_text)
{
        if (ev->type == MSB_EXEC_EVENT_FAILED) {
                cli_error("%s", ev->message ? ev->message : "the command could not start");
                switch (ev->failure) {
                case MSB_EXEC_FAIL_NOT_FOUND:
                        return EXIT_CMD_NOT_FOUND;
                case MSB_EXEC_FAIL_PERMISSION_DENIED:
                case MSB_EXEC_FAIL_NOT_EXECUTABLE:
                        return EXIT_CMD_CANNOT_EXEC;
                default:
                        return EXIT_USAGE;
                }
        }
        if (ev->timed_out) {
                if (!cli_quiet)
                        cli_error("the command timed out after %s and was killed", timeout_text);
                return EXIT_TIMEOUT;
        }
        if (ev->signal > 0)
                return 128 + ev->signal;
        return ev->exit_code & 0xff;
}

static int attach_loop(struct attach *a, const char *timeout_text)
{
        msb_exec_event ev;
        int r;

        for (;;) {
                while ((r = msb_exec_next_event(a->ex, &ev, 0)) > 0) {
                        switch (ev.type) {
                        case MSB_EXEC_EVENT_STDOUT:
                                output(STDOUT_FILENO, ev.data, ev.len);
                                break;
                        case MSB_EXEC_EVENT_STDERR:
                                output(STDERR_FILENO, ev.data, ev.len);
                                break;
                        case MSB_EXEC_EVENT_EXITED:
                        case MSB_EXEC_EVENT_FAILED:
                                terminal_restore(a);
                                return finish(&ev, timeout_text);
                        default:
                                break;
                        }
                }
                if (r < 0)
                        break;

                struct pollfd pfd[4] = {
                        {.fd = msb_exec_fd(a->ex), .events = POLLIN},
                        {.fd = a->sigs->stop_fd, .events = POLLIN},
                        {.fd = a->sigs->other_fd, .events = POLLIN},
                        {.fd = STDIN_FILENO, .events = POLLIN},
                };
                bool want_stdin = a->stdin_open && msb_exec_stdin_room(a->ex) > 0;
                /* stdin waits for the window: poll the channel for acks meanwhile */
                int n = poll(pfd, want_stdin ? 4 : 3, msb_exec_wait_hint_ms(a->ex));

                if (n < 0 && errno != EINTR) {
                        r = -errno;
                        break;
                }
                for (int i = 1; i <= 2; i++) {
                        if (pfd[i].revents & POLLIN) {
                                r = on_signal(a, pfd[i].fd);
                                if (r < 0)
                                        break;
                        }
                }
                if (r < 0)
                        break;
                if (want_stdin && (pfd[3].revents & (POLLIN | POLLHUP | POLLERR))) {
                        r = on_stdin(a);
                        if (r < 0)
                                break;
                }
        }
        terminal_restore(a);
        return cli_api_error();
}

int cli_attach(msb_exec *ex, const struct cli_attach_opts *opts)
{
        struct attach a = {
                .ex = ex,
                .tty = opts->tty,
                .stdin_open = opts->forward_stdin,
                .sigs = opts->signals,
        };

        if (opts->tty && opts->forward_stdin)
                terminal_raw(&a);
        return attach_loop(&a, opts->timeout_text);
}

int cli_create(msb_sandbox_config *cfg, const struct cli_signals *sigs, msb_sandbox **ret)
{
        msb_boot_info info;

        msb_sandbox_config_set_cancel_fd(cfg, sigs->stop_fd);
        if (msb_sandbox_create(cfg, ret) < 0)
                return cli_api_error();
        msb_sandbox_boot_info(*ret, &info);
        if (!cli_quiet && info.accel_notice && *info.accel_notice)
                cli_error("warning: %s", info.accel_notice);
        return 0;
}

int cli_exec_attached(msb_sandbox *sb, const struct cli_parsed *p, const struct cli_signals *sigs)
{
        msb_exec *ex = NULL;
        int code;

        if (msb_exec_start(sb, p->ex, &ex) < 0)
                return cli_api_error();
        code = cli_attach(ex, &(struct cli_attach_opts){
                                      .tty = p->tty,
                                      .forward_stdin = p->interactive,
                                      .timeout_text = p->timeout_text,
                                      .signals = sigs,
                              });
        msb_exec_free(ex);
        return code;
}

int cli_start_detached(msb_sandbox *sb, const msb_exec_config *cfg)
{
        msb_exec *ex = NULL;
        msb_exec_event ev;
        int r, code = 0;

        if (msb_exec_start(sb, cfg, &ex) < 0)
                return cli_api_error();
        while ((r = msb_exec_next_event(ex, &ev, -1)) > 0) {
                if (ev.type == MSB_EXEC_EVENT_STARTED || ev.type == MSB_EXEC_EVENT_EXITED)
                        break;
                if (ev.type == MSB_EXEC_EVENT_FAILED) {
                        code = finish(&ev, NULL);
                        break;
                }
        }
        if (r < 0)
                code = cli_api_error();
        msb_exec_free(ex);
        return code;
}
