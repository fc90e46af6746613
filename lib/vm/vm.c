/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: vm_start() does everything that can fail with a
 * clear message before it forks (command line, files, the agent socket, the
 * output file), then forks a child that only calls async-signal-safe
 * functions: own process group, PR_SET_PDEATHSIG(SIGKILL), default signal
 * state, exactly the fds QEMU needs at fixed numbers, then execve() with an
 * empty environment (QEMU needs none, and a compromised QEMU then finds no
 * secrets in it). A close-on-exec pipe carries an exec failure back, so
 * vm_start() returns only once QEMU really runs (or with the errno of why
 * not).
 *
 * Child fd layout: 0 /dev/null, 1 and 2 the output file, 3 the agent socket
 * (VM_CHILD_AGENT_FD), 4 the error pipe (closed by a successful exec), 5 the
 * network socket (VM_CHILD_NET_FD), 6 the console socket
 * (VM_CHILD_CONSOLE_FD). The parent first duplicates every source to fd 7
 * or above, so that the dup2() calls in the child cannot overwrite a source
 * that happens to sit at 0-6.
 *
 * QEMU's output goes to a file, not a pipe: nobody has to drain it while the
 * VM runs, and vm_stderr_tail() reads its last 4 KiB for error messages.
 *
 * The handle owns the child: it is reaped here (waitpid on the pid, which
 * cannot be reused before that), observed through a pidfd in the owner's
 * event loop, and vm_free() kills and reaps it, so QEMU never outlives the
 * handle. PR_SET_PDEATHSIG covers the owner dying without freeing it.
 */
#include "vm.h"
#include "vm-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/core/log.h"
#include "lib/core/util.h"

#define STDERR_TAIL_MAX 4096
#define CHILD_FD_MIN    7 /* above every target fd of the child */
#define CHILD_ERR_FD    4

/* The sockets QEMU inherits, each at a fixed fd. */
enum { SOCK_AGENT, SOCK_NET, SOCK_CONSOLE, N_SOCKS };
static const int sock_child_fd[N_SOCKS] = {VM_CHILD_AGENT_FD, VM_CHILD_NET_FD, VM_CHILD_CONSOLE_FD};
static const char *const sock_name[N_SOCKS] = {"agent", "network", "console"};

struct vm {
        pid_t pid;
        int pidfd;     /* -1 where pidfd_open() is missing */
        int output_fd; /* QEMU's stdout/stderr file, opened read-write */
        bool exited;
        int status;
};

int vm_fail(char *errmsg, size_t errmsg_size, int r, const char *fmt, ...)
{
        va_list ap;

        if (errmsg_size > 0) {
                va_start(ap, fmt);
                vsnprintf(errmsg, errmsg_size, fmt, ap);
                va_end(ap);
        }
        return r;
}

/* The executable QEMU: name itself when it holds a '/', else the first
 * executable match in $PATH. */
static int find_qemu(const char *name, char **ret)
{
        const char *path = getenv("PATH");
        int r = -ENOENT;

        if (strchr(name, '/')) {
                if (access(name, X_OK) < 0)
                        return negative_errno();
                *ret = strdup(name);
                return *ret ? 0 : -ENOMEM;
        }
        if (!path || !*path)
                path = "/usr/local/bin:/usr/bin:/bin";
        for (const char *p = path;; p++) {
                size_t k = strcspn(p, ":");
                _cleanup_free_ char *cand = strdup_printf("%.*s/%s", (int)k, k ? p : ".", name);

                if (!cand)
                        return -ENOMEM;
                if (access(cand, X_OK) == 0) {
                        *ret = TAKE_PTR(cand);
                        return 0;
                }
                if (errno == EACCES)
                        r = -EACCES;
                p += k;
                if (!*p)
                        return r;
        }
}

static int check_readable(const char *what, const char *path, char *errmsg, size_t errmsg_size)
{
        if (access(path, R_OK) == 0)
                return 0;
        if (errno == ENOENT)
                return vm_fail(errmsg, errmsg_size, -ENOENT, "%s not found: %s", what, path);
        return vm_fail(errmsg, errmsg_size, negative_errno(), "%s %s: %s", what, path,
                       strerror(errno));
}

static int check_files(const struct vm_config *c, const char *qemu_name, char **ret_qemu,
                       char *errmsg, size_t errmsg_size)
{
        int r;

        r = find_qemu(qemu_name, ret_qemu);
        if (r == -ENOENT)
                return vm_fail(errmsg, errmsg_size, r,
                               "QEMU not found: %s (install qemu-system-x86)", qemu_name);
        if (r < 0)
                return vm_fail(errmsg, errmsg_size, r, "QEMU %s: %s", qemu_name, strerror(-r));
        r = check_readable("guest kernel", c->kernel, errmsg, errmsg_size);
        if (r < 0)
                return r;
        r = check_readable("initramfs", c->initramfs, errmsg, errmsg_size);
        if (r < 0)
                return r;
        for (size_t i = 0; i < c->n_disks; i++) {
                r = check_readable("disk image", c->disks[i].path, errmsg, errmsg_size);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The caller's sockets for QEMU, by SOCK_*; -1 where there is none. */
static void config_socks(const struct vm_config *c, int socks[N_SOCKS])
{
        socks[SOCK_AGENT] = c->agent_fd;
        socks[SOCK_NET] = c->net ? c->net->fd : -1;
        socks[SOCK_CONSOLE] = c->console_fd;
}

static int check_socks(const int socks[N_SOCKS], char *errmsg, size_t errmsg_size)
{
        for (int i = 0; i < N_SOCKS; i++) {
                struct stat st;

                if (socks[i] < 0)
                        continue;
                if (fstat(socks[i], &st) < 0)
                        return vm_fail(errmsg, errmsg_size, negative_errno(), "the %s fd %d: %s",
                                       sock_name[i], socks[i], strerror(errno));
                if (!S_ISSOCK(st.st_mode))
                        return vm_fail(errmsg, errmsg_size, -ENOTSOCK,
                                       "the %s fd %d is not a socket", sock_name[i], socks[i]);
        }
        return 0;
}

static int open_output(const char *path)
{
        int fd;

        if (path)
                fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
        else
                fd = memfd_create("qemu-output", MFD_CLOEXEC);
        return fd < 0 ? negative_errno() : fd;
}

/* Everything the child needs, prepared before fork(). */
struct child {
        const char *path;
        char **argv;
        pid_t parent;
        /* all >= CHILD_FD_MIN; a socket -1 if none */
        int null_fd, out_fd, err_fd;
        int socks[N_SOCKS];
        int max_fd;
};

static _noreturn_ void child_fail(int err_fd)
{
        int e = errno;

        (void)!write(err_fd, &e, sizeof(e));
        _exit(127);
}

/* After fork(): async-signal-safe calls only. */
static _noreturn_ void child_exec(const struct child *ch)
{
        static char *const empty_env[] = {NULL};
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        sigset_t none;

        (void)setpgid(0, 0);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                child_fail(ch->err_fd);
        if (getppid() != ch->parent) /* the owner died before prctl() took effect */
                _exit(127);
        for (int sig = 1; sig < NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void)sigaction(sig, &dfl, NULL);
        sigemptyset(&none);
        if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
                child_fail(ch->err_fd);

        if (dup2(ch->null_fd, 0) < 0 || dup2(ch->out_fd, 1) < 0 || dup2(ch->out_fd, 2) < 0 ||
            dup3(ch->err_fd, CHILD_ERR_FD, O_CLOEXEC) < 0)
                child_fail(ch->err_fd);
        for (int i = 0; i < N_SOCKS; i++) {
                if (ch->socks[i] < 0)
                        (void)close(sock_child_fd[i]);
                else if (dup2(ch->socks[i], sock_child_fd[i]) < 0)
                        child_fail(CHILD_ERR_FD);
        }
        if (close_range(CHILD_FD_MIN, ~0U, 0) < 0)
                for (int fd = CHILD_FD_MIN; fd < ch->max_fd; fd++)
                        (void)close(fd);

        execve(ch->path, ch->argv, empty_env);
        child_fail(CHILD_ERR_FD);
}

static int dup_high(int fd)
{
        int r = fcntl(fd, F_DUPFD_CLOEXEC, CHILD_FD_MIN);
        return r < 0 ? negative_errno() : r;
}

/* Forks and execs; returns the pid once exec succeeded, or -errno. */
static void close_socks(int (*socks)[N_SOCKS])
{
        for (int i = 0; i < N_SOCKS; i++)
                safe_close((*socks)[i]);
}

static int spawn(struct child *ch, int null_fd, int out_fd, const int socks[N_SOCKS])
{
        _cleanup_close_ int hi_null = -1, hi_out = -1, rd = -1, wr = -1;
        _cleanup_(close_socks) int hi_socks[N_SOCKS] = {-1, -1, -1};
        sigset_t all, old;
        int pipefd[2], e, status;
        ssize_t n;
        pid_t pid;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return negative_errno();
        rd = pipefd[0];
        wr = pipefd[1];
        if ((hi_null = dup_high(null_fd)) < 0)
                return hi_null;
        if ((hi_out = dup_high(out_fd)) < 0)
                return hi_out;
        for (int i = 0; i < N_SOCKS; i++)
                if (socks[i] >= 0 && (hi_socks[i] = dup_high(socks[i])) < 0)
                        return hi_socks[i];
        if ((e = dup_high(wr)) < 0)
                return e;
        safe_close(wr);
        wr = e;
        ch->null_fd = hi_null;
        ch->out_fd = hi_out;
        memcpy(ch->socks, hi_socks, sizeof(ch->socks));
        ch->err_fd = wr;
        ch->parent = getpid();
        ch->max_fd = (int)MIN(sysconf(_SC_OPEN_MAX), 65536);

        /* No handler of ours may run in the child before it resets them. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pid = fork();
        if (pid == 0)
                child_exec(ch);
        e = errno;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (pid < 0)
                return -e;
        (void)setpgid(pid, pid);
        wr = safe_close(wr);

        do
                n = read(rd, &e, sizeof(e));
        while (n < 0 && errno == EINTR);
        if (n == 0)
                return pid;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        return n == sizeof(e) && e > 0 ? -e : -EIO;
}

/* The whole QEMU command line at debug level (arguments joined by spaces,
 * unquoted), for whoever needs to see or rerun what was started. */
static void log_argv(char *const *argv)
{
        char line[8192];
        size_t n = 0;

        for (size_t i = 0; argv[i] && n < sizeof(line); i++)
                n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%s", i ? " " : "", argv[i]);
        log_debug("qemu: %s", line);
}

int vm_start(const struct vm_config *c, struct vm **ret, char *errmsg, size_t errmsg_size)
{
        _cleanup_(vm_argv_freep) char **argv = NULL;
        _cleanup_free_ char *qemu = NULL;
        _cleanup_close_ int null_fd = -1, out_fd = -1;
        struct child ch = {0};
        int socks[N_SOCKS];
        struct vm *v;
        int r;

        if (errmsg_size > 0)
                errmsg[0] = '\0';
        r = vm_build_argv(c, &argv, errmsg, errmsg_size);
        if (r < 0)
                return r;
        log_argv(argv);
        r = check_files(c, argv[0], &qemu, errmsg, errmsg_size);
        if (r < 0)
                return r;
        config_socks(c, socks);
        r = check_socks(socks, errmsg, errmsg_size);
        if (r < 0)
                return r;
        out_fd = open_output(c->stderr_path);
        if (out_fd < 0)
                return vm_fail(errmsg, errmsg_size, out_fd, "QEMU output file %s: %s",
                               c->stderr_path ? c->stderr_path : "(memory)", strerror(-out_fd));
        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null_fd < 0)
                return vm_fail(errmsg, errmsg_size, negative_errno(), "/dev/null: %s",
                               strerror(errno));

        ch.path = qemu;
        ch.argv = argv;
        r = spawn(&ch, null_fd, out_fd, socks);
        if (r < 0)
                return vm_fail(errmsg, errmsg_size, r, "cannot run QEMU %s: %s", qemu,
                               strerror(-r));

        v = calloc(1, sizeof(*v));
        if (!v) {
                kill(r, SIGKILL);
                while (waitpid(r, NULL, 0) < 0 && errno == EINTR)
                        ;
                return -ENOMEM;
        }
        v->pid = r;
        v->pidfd = (int)syscall(SYS_pidfd_open, v->pid, 0);
        if (v->pidfd < 0)
                v->pidfd = -1; /* Linux < 5.3: the owner polls vm_poll_exit() */
        v->output_fd = TAKE_FD(out_fd);
        *ret = v;
        return 0;
}

pid_t vm_pid(const struct vm *v)
{
        return v->pid;
}

int vm_pidfd(const struct vm *v)
{
        return v->pidfd >= 0 ? v->pidfd : -EOPNOTSUPP;
}

static int reap(struct vm *v, int flags)
{
        pid_t p;

        do
                p = waitpid(v->pid, &v->status, flags);
        while (p < 0 && errno == EINTR);
        if (p < 0)
                return negative_errno();
        if (p == 0)
                return 0;
        v->exited = true;
        return 1;
}

int vm_poll_exit(struct vm *v, int *ret_status)
{
        int r = v->exited ? 1 : reap(v, WNOHANG);

        if (r > 0)
                *ret_status = v->status;
        return r;
}

int vm_kill(struct vm *v)
{
        int r;

        if (v->exited)
                return 0;
        if (kill(v->pid, SIGKILL) < 0)
                return negative_errno();
        r = reap(v, 0);
        return r < 0 ? r : 0;
}

int vm_stderr_tail(struct vm *v, char **ret_text)
{
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        off_t off;
        ssize_t n;
        char *start;

        if (fstat(v->output_fd, &st) < 0)
                return negative_errno();
        off = st.st_size > STDERR_TAIL_MAX ? st.st_size - STDERR_TAIL_MAX : 0;
        buf = malloc(STDERR_TAIL_MAX + 1);
        if (!buf)
                return -ENOMEM;
        do
                n = pread(v->output_fd, buf, STDERR_TAIL_MAX, off);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return negative_errno();
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
                n--;
        buf[n] = '\0';
        start = buf;
        if (off > 0 && strchr(buf, '\n')) /* begin at a whole line */
                start = strchr(buf, '\n') + 1;
        for (char *p = start; *p; p++)
                if (((unsigned char)*p < 0x20 && *p != '\n') || *p == 0x7f)
                        *p = '?';
        memmove(buf, start, strlen(start) + 1);
        *ret_text = TAKE_PTR(buf);
        return 0;
}

struct vm *vm_free(struct vm *v)
{
        if (!v)
                return NULL;
        (void)vm_kill(v);
        safe_close(v->pidfd);
        safe_close(v->output_fd);
        free(v);
        return NULL;
}
