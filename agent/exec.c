/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: starting one command for core.exec.request.
 *
 * Everything that can be checked before fork is resolved in the parent into
 * a plan: the user (name or uid, optional group, from the guest's
 * /etc/passwd and /etc/group, Docker's rules), the environment (as given,
 * plus PATH, HOME and, on a PTY, TERM when missing), the rlimits and the
 * stdio descriptors (pipes, or a PTY whose master the parent keeps). A bad
 * request fails here with a precise kind and no process.
 *
 * The child then works through the plan in a fixed order (setsid, stdio and
 * the controlling terminal, rlimits, groups/gid/uid, cwd, exec with a PATH
 * search over the command's own PATH) and, if a step fails, writes one
 * record {stage, errno, message} to a CLOEXEC status pipe and exits 127.
 * The parent reads that pipe from its event loop: EOF means exec happened
 * (the pipe closed on exec), a record means it did not, and which stage and
 * errno it was says which core.exec.failed kind to report.
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "lib/core/util.h"

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define MAX_GROUPS   65536

enum stage {
        STAGE_SETUP,
        STAGE_PTY,
        STAGE_RLIMIT,
        STAGE_USER,
        STAGE_CWD,
        STAGE_EXEC,
        STAGE_COUNT,
};

static const char *const stage_names[STAGE_COUNT] = {
        [STAGE_SETUP] = "setup", [STAGE_PTY] = "pty", [STAGE_RLIMIT] = "rlimit",
        [STAGE_USER] = "user",   [STAGE_CWD] = "cwd", [STAGE_EXEC] = "exec",
};

/* What a child that cannot exec writes: one write below PIPE_BUF, so atomic. */
struct status_record {
        int32_t stage;
        int32_t err;
        char message[224];
};

static const struct {
        int resource;
        const char *name;
} rlimit_names[] = {
        {RLIMIT_CPU, "cpu"},           {RLIMIT_FSIZE, "fsize"},
        {RLIMIT_DATA, "data"},         {RLIMIT_STACK, "stack"},
        {RLIMIT_CORE, "core"},         {RLIMIT_RSS, "rss"},
        {RLIMIT_NPROC, "nproc"},       {RLIMIT_NOFILE, "nofile"},
        {RLIMIT_MEMLOCK, "memlock"},   {RLIMIT_AS, "as"},
        {RLIMIT_LOCKS, "locks"},       {RLIMIT_SIGPENDING, "sigpending"},
        {RLIMIT_MSGQUEUE, "msgqueue"}, {RLIMIT_NICE, "nice"},
        {RLIMIT_RTPRIO, "rtprio"},     {RLIMIT_RTTIME, "rttime"},
};

/* Everything the child needs, resolved before fork. */
struct plan {
        char *const *argv;
        char **envp;      /* owned array; strings borrowed except home_env */
        char *home_env;   /* "HOME=..." when we added it */
        const char *path; /* the PATH the command is searched in */
        const char *cwd;  /* NULL: home, else / */
        char *home;
        bool set_user;
        uid_t uid;
        gid_t gid;
        gid_t *groups;
        size_t ngroups;
        struct {
                int resource;
                const char *name;
                struct rlimit lim;
        } rl[PROTO_MAX_RLIMITS];
        size_t nrl;
        bool tty;
        int in_fd, out_fd, err_fd; /* the child's ends; on a PTY all the slave */
        int status_fd;             /* write end of the status pipe */
};

static void plan_done(struct plan *p)
{
        free(p->envp);
        free(p->home_env);
        free(p->home);
        free(p->groups);
        if (p->err_fd != p->out_fd && p->err_fd != p->in_fd)
                safe_close(p->err_fd);
        if (p->out_fd != p->in_fd)
                safe_close(p->out_fd);
        safe_close(p->in_fd);
        safe_close(p->status_fd);
}

static int fail(struct proto_exec_failed *f, const char *kind, int err, const char *stage,
                const char *fmt, ...) _printf_(5, 6);

/* Fills *f and returns -err (or -EINVAL when err is 0). */
static int fail(struct proto_exec_failed *f, const char *kind, int err, const char *stage,
                const char *fmt, ...)
{
        va_list ap;

        *f = (struct proto_exec_failed){.err = err};
        snprintf(f->kind, sizeof(f->kind), "%s", kind);
        snprintf(f->stage, sizeof(f->stage), "%s", stage);
        va_start(ap, fmt);
        vsnprintf(f->message, sizeof(f->message), fmt, ap);
        va_end(ap);
        return err > 0 ? -err : -EINVAL;
}

/* A numeric uid or gid; (uid_t)-1 is not one. */
static bool parse_id(const char *s, uint32_t *ret)
{
        uint64_t v;

        if (parse_u64(s, &v) < 0 || v >= UINT32_MAX)
                return false;
        *ret = (uint32_t)v;
        return true;
}

/* Supplementary groups of a passwd user, from /etc/group. */
static int user_groups(const char *name, gid_t gid, struct plan *p)
{
        int n = 32;

        for (;;) {
                gid_t *g = realloc(p->groups, (size_t)n * sizeof(gid_t));
                int want = n;

                if (!g)
                        return -ENOMEM;
                p->groups = g;
                if (getgrouplist(name, gid, g, &want) >= 0) {
                        p->ngroups = (size_t)want;
                        return 0;
                }
                if (want <= n || want > MAX_GROUPS)
                        return -E2BIG;
                n = want;
        }
}

/*
 * Docker's rules: "name" or "uid", optionally ":group" or ":gid". A name must
 * exist in /etc/passwd; a uid need not (then gid 0, home /). Without a group,
 * the passwd gid and the user's /etc/group memberships apply; with one, that
 * gid alone. No spec: the agent's own identity (root in the guest).
 */
static int resolve_user(const char *spec, struct plan *p, struct proto_exec_failed *f)
{
        _cleanup_free_ char *copy = NULL, *name = NULL;
        const char *group = NULL;
        struct passwd *pw;
        uint32_t id;
        char *colon;
        int r;

        if (!spec) {
                pw = getpwuid(geteuid());
                p->home = strdup(pw && pw->pw_dir && pw->pw_dir[0] ? pw->pw_dir : "/");
                return p->home ? 0 : -ENOMEM;
        }
        copy = strdup(spec);
        if (!copy)
                return -ENOMEM;
        colon = strchr(copy, ':');
        if (colon) {
                *colon = '\0';
                group = colon + 1;
        }
        if (!copy[0] || (group && !group[0]))
                return fail(f, PROTO_EXEC_BAD_USER, 0, "user", "invalid user \"%s\"", spec);
        if (parse_id(copy, &id)) {
                pw = getpwuid(id);
                p->uid = id;
                p->gid = pw ? pw->pw_gid : 0;
        } else {
                pw = getpwnam(copy);
                if (!pw)
                        return fail(f, PROTO_EXEC_BAD_USER, ENOENT, "user",
                                    "user \"%s\" not found in /etc/passwd", copy);
                p->uid = pw->pw_uid;
                p->gid = pw->pw_gid;
        }
        p->home = strdup(pw && pw->pw_dir && pw->pw_dir[0] ? pw->pw_dir : "/");
        name = pw ? strdup(pw->pw_name) : NULL;
        if (!p->home || (pw && !name))
                return -ENOMEM;
        if (group) {
                if (parse_id(group, &id)) {
                        p->gid = id;
                } else {
                        struct group *gr = getgrnam(group);

                        if (!gr)
                                return fail(f, PROTO_EXEC_BAD_USER, ENOENT, "user",
                                            "group \"%s\" not found in /etc/group", group);
                        p->gid = gr->gr_gid;
                }
        } else if (name) {
                r = user_groups(name, p->gid, p);
                if (r < 0)
                        return fail(f, PROTO_EXEC_BAD_USER, -r, "user",
                                    "supplementary groups of \"%s\": %s", name, strerror(-r));
        }
        p->set_user = true;
        return 0;
}

static int resolve_rlimits(const struct proto_exec_request *req, struct plan *p,
                           struct proto_exec_failed *f)
{
        for (size_t i = 0; i < req->n_rlimits && i < PROTO_MAX_RLIMITS; i++) {
                const struct proto_rlimit *rl = &req->rlimits[i];
                size_t k;

                for (k = 0; k < ARRAY_SIZE(rlimit_names); k++)
                        if (streq(rl->resource, rlimit_names[k].name))
                                break;
                if (k == ARRAY_SIZE(rlimit_names))
                        return fail(f, PROTO_EXEC_BAD_ARGS, 0, "rlimit", "unknown rlimit \"%s\"",
                                    rl->resource);
                if (rl->soft > rl->hard)
                        return fail(f, PROTO_EXEC_BAD_ARGS, 0, "rlimit",
                                    "rlimit %s: soft limit above hard limit", rl->resource);
                p->rl[p->nrl].resource = rlimit_names[k].resource;
                p->rl[p->nrl].name = rlimit_names[k].name;
                /* UINT64_MAX is RLIM_INFINITY: rlim_t is 64-bit unsigned here */
                p->rl[p->nrl].lim = (struct rlimit){.rlim_cur = rl->soft, .rlim_max = rl->hard};
                p->nrl++;
        }
        return 0;
}

static bool env_has(char *const *env, size_t n, const char *prefix)
{
        for (size_t i = 0; i < n; i++)
                if (startswith(env[i], prefix))
                        return true;
        return false;
}

/* The environment exactly as given, plus PATH, HOME and (PTY) TERM when
 * missing. The first PATH= entry is the one searched, as getenv() would. */
static int build_env(const struct proto_exec_request *req, struct plan *p,
                     struct proto_exec_failed *f)
{
        size_t n = 0;

        for (size_t i = 0; i < req->envc; i++) {
                const char *eq = strchr(req->env[i], '=');

                if (!eq || eq == req->env[i])
                        return fail(f, PROTO_EXEC_BAD_ARGS, 0, "env",
                                    "environment entry \"%.64s\" is not KEY=VALUE", req->env[i]);
        }
        p->envp = calloc(req->envc + 4, sizeof(char *));
        if (!p->envp)
                return -ENOMEM;
        for (size_t i = 0; i < req->envc; i++)
                p->envp[n++] = req->env[i];
        if (!env_has(req->env, req->envc, "PATH="))
                p->envp[n++] = (char *)DEFAULT_PATH;
        if (!env_has(req->env, req->envc, "HOME=")) {
                p->home_env = strdup_printf("HOME=%s", p->home);
                if (!p->home_env)
                        return -ENOMEM;
                p->envp[n++] = p->home_env;
        }
        if (req->tty && !env_has(req->env, req->envc, "TERM="))
                p->envp[n++] = (char *)"TERM=xterm";
        for (size_t i = 0; i < n; i++) {
                const char *v = startswith(p->envp[i], "PATH=");

                if (v) {
                        p->path = v;
                        break;
                }
        }
        return 0;
}

static int open_pty(const struct proto_exec_request *req, int *ret_master, int *ret_slave)
{
        struct winsize ws = {.ws_row = req->rows ? req->rows : 24,
                             .ws_col = req->cols ? req->cols : 80};
        _cleanup_close_ int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        char name[64];
        int slave, r;

        if (master < 0)
                return negative_errno();
        if (grantpt(master) < 0 || unlockpt(master) < 0)
                return negative_errno();
        r = ptsname_r(master, name, sizeof(name));
        if (r != 0)
                return -r;
        if (ioctl(master, TIOCSWINSZ, &ws) < 0)
                return negative_errno();
        slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (slave < 0)
                return negative_errno();
        *ret_master = TAKE_FD(master);
        *ret_slave = slave;
        return 0;
}

/* ---- the child ---- */

static _noreturn_ void child_fail(int status_fd, enum stage stage, int err, const char *fmt, ...)
        _printf_(4, 5);

static _noreturn_ void child_fail(int status_fd, enum stage stage, int err, const char *fmt, ...)
{
        struct status_record rec = {.stage = stage, .err = err};
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(rec.message, sizeof(rec.message), fmt, ap);
        va_end(ap);
        (void)!write(status_fd, &rec, sizeof(rec));
        _exit(127);
}

/* execve() with a PATH search like execvp(), over the command's own PATH
 * (not the agent's). Returns the errno to report; *tried the path it names. */
static int child_exec(const struct plan *p, char *tried, size_t size)
{
        const char *file = p->argv[0];
        bool denied = false;
        struct stat st;
        int err = ENOENT;

        if (strchr(file, '/')) {
                execve(file, p->argv, p->envp);
                err = errno;
                snprintf(tried, size, "%s", file);
        } else {
                const char *dir = p->path ? p->path : "";

                for (;;) {
                        const char *end = strchrnul(dir, ':');
                        size_t dlen = (size_t)(end - dir);
                        char buf[PATH_MAX];
                        int n;

                        n = snprintf(buf, sizeof(buf), "%.*s%s%s", (int)dlen, dir, dlen ? "/" : "",
                                     file);
                        if (n > 0 && (size_t)n < sizeof(buf)) {
                                execve(buf, p->argv, p->envp);
                                if (errno == EACCES) {
                                        denied = true;
                                        snprintf(tried, size, "%s", buf);
                                } else if (errno != ENOENT && errno != ENOTDIR) {
                                        snprintf(tried, size, "%s", buf);
                                        return errno;
                                }
                        }
                        if (!*end)
                                break;
                        dir = end + 1;
                }
                err = denied ? EACCES : ENOENT;
                if (!denied)
                        snprintf(tried, size, "%s", file);
        }
        if (err == EACCES && stat(tried, &st) == 0 && S_ISDIR(st.st_mode))
                err = EISDIR;
        return err;
}

static _noreturn_ void child_main(struct plan *p)
{
        int fds[3] = {p->in_fd, p->out_fd, p->err_fd};
        char tried[PATH_MAX];
        sigset_t none;
        int status, err;

        /* Undo the agent's signal setup: nothing blocked, nothing ignored. */
        for (int sig = 1; sig < NSIG; sig++)
                signal(sig, SIG_DFL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);

        /* Keep our descriptors clear of 0..2 before stdio is put there. */
        status = fcntl(p->status_fd, F_DUPFD_CLOEXEC, 3);
        if (status < 0)
                _exit(127);
        if (setsid() < 0)
                child_fail(status, STAGE_SETUP, errno, "setsid: %s", strerror(errno));
        if (fds[0] < 0) {
                fds[0] = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (fds[0] < 0)
                        child_fail(status, STAGE_SETUP, errno, "open /dev/null: %s",
                                   strerror(errno));
        }
        for (int i = 0; i < 3; i++) {
                fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
                if (fds[i] < 0)
                        child_fail(status, STAGE_SETUP, errno, "dup: %s", strerror(errno));
        }
        if (p->tty && ioctl(fds[0], TIOCSCTTY, 0) < 0)
                child_fail(status, STAGE_PTY, errno, "TIOCSCTTY: %s", strerror(errno));
        for (int i = 0; i < 3; i++)
                if (dup2(fds[i], i) < 0)
                        child_fail(status, STAGE_SETUP, errno, "dup2: %s", strerror(errno));

        for (size_t i = 0; i < p->nrl; i++)
                if (setrlimit(p->rl[i].resource, &p->rl[i].lim) < 0)
                        child_fail(status, STAGE_RLIMIT, errno, "setrlimit %s: %s", p->rl[i].name,
                                   strerror(errno));
        if (p->set_user) {
                if (setgroups(p->ngroups, p->groups) < 0)
                        child_fail(status, STAGE_USER, errno, "setgroups: %s", strerror(errno));
                if (setgid(p->gid) < 0)
                        child_fail(status, STAGE_USER, errno, "setgid %u: %s", (unsigned)p->gid,
                                   strerror(errno));
                if (setuid(p->uid) < 0)
                        child_fail(status, STAGE_USER, errno, "setuid %u: %s", (unsigned)p->uid,
                                   strerror(errno));
        }
        if (p->cwd) {
                if (chdir(p->cwd) < 0)
                        child_fail(status, STAGE_CWD, errno, "chdir %s: %s", p->cwd,
                                   strerror(errno));
        } else if (chdir(p->home) < 0 && chdir("/") < 0) {
                child_fail(status, STAGE_CWD, errno, "chdir /: %s", strerror(errno));
        }

        err = child_exec(p, tried, sizeof(tried));
        child_fail(status, STAGE_EXEC, err, "exec: %s: %s", tried, strerror(err));
}

/* ---- the parent ---- */

int agent_exec_spawn(const struct proto_exec_request *req, struct agent_exec_child *ret,
                     struct proto_exec_failed *ret_failed)
{
        _cleanup_(plan_done) struct plan p = {
                .in_fd = -1, .out_fd = -1, .err_fd = -1, .status_fd = -1};
        _cleanup_close_ int in = -1, out = -1, err = -1, status = -1;
        int fds[2], r;
        pid_t pid;

        if (req->argc < 1 || !req->argv[0][0])
                return fail(ret_failed, PROTO_EXEC_BAD_ARGS, 0, "args", "empty command");
        if (req->cwd && req->cwd[0] != '/')
                return fail(ret_failed, PROTO_EXEC_BAD_CWD, 0, "cwd",
                            "working directory \"%.64s\" is not absolute", req->cwd);
        p.argv = req->argv;
        p.cwd = req->cwd;
        p.tty = req->tty;
        r = resolve_user(req->user, &p, ret_failed);
        if (r >= 0)
                r = resolve_rlimits(req, &p, ret_failed);
        if (r >= 0)
                r = build_env(req, &p, ret_failed);
        if (r == -ENOMEM)
                return fail(ret_failed, PROTO_EXEC_RESOURCE_LIMIT, ENOMEM, "setup",
                            "out of memory");
        if (r < 0)
                return r;

        if (req->tty) {
                r = open_pty(req, &out, &p.in_fd);
                if (r < 0)
                        return fail(ret_failed, PROTO_EXEC_PTY_FAILED, -r, "pty",
                                    "cannot open a pseudo-terminal: %s", strerror(-r));
                p.out_fd = p.err_fd = p.in_fd;
                if (req->has_stdin) {
                        in = fcntl(out, F_DUPFD_CLOEXEC, 3);
                        if (in < 0)
                                r = negative_errno();
                }
        } else {
                if (req->has_stdin && pipe2(fds, O_CLOEXEC) == 0) {
                        p.in_fd = fds[0];
                        in = fds[1];
                } else if (req->has_stdin) {
                        r = negative_errno();
                }
                if (r >= 0 && pipe2(fds, O_CLOEXEC) == 0) {
                        out = fds[0];
                        p.out_fd = fds[1];
                } else if (r >= 0) {
                        r = negative_errno();
                }
                if (r >= 0 && pipe2(fds, O_CLOEXEC) == 0) {
                        err = fds[0];
                        p.err_fd = fds[1];
                } else if (r >= 0) {
                        r = negative_errno();
                }
        }
        if (r >= 0 && pipe2(fds, O_CLOEXEC) == 0) {
                status = fds[0];
                p.status_fd = fds[1];
        } else if (r >= 0) {
                r = negative_errno();
        }
        if (r < 0)
                return fail(ret_failed, PROTO_EXEC_RESOURCE_LIMIT, -r, "pipe",
                            "cannot create pipes: %s", strerror(-r));

        pid = fork();
        if (pid < 0)
                return fail(ret_failed, PROTO_EXEC_RESOURCE_LIMIT, errno, "fork", "fork: %s",
                            strerror(errno));
        if (pid == 0)
                child_main(&p);

        /* the child's ends close with the plan; ours become non-blocking */
        if ((in >= 0 && fd_set_nonblock(in, true) < 0) || fd_set_nonblock(out, true) < 0 ||
            (err >= 0 && fd_set_nonblock(err, true) < 0) || fd_set_nonblock(status, true) < 0) {
                r = negative_errno();
                kill(pid, SIGKILL);
                return fail(ret_failed, PROTO_EXEC_OTHER, -r, "setup", "fcntl: %s", strerror(-r));
        }
        *ret = (struct agent_exec_child){
                .pid = pid,
                .status_fd = TAKE_FD(status),
                .stdin_fd = TAKE_FD(in),
                .stdout_fd = TAKE_FD(out),
                .stderr_fd = TAKE_FD(err),
        };
        return 0;
}

static const char *failure_kind(enum stage stage, int err)
{
        switch (stage) {
        case STAGE_PTY:
                return PROTO_EXEC_PTY_FAILED;
        case STAGE_RLIMIT:
                return PROTO_EXEC_RESOURCE_LIMIT;
        case STAGE_USER:
                return PROTO_EXEC_BAD_USER;
        case STAGE_CWD:
                return PROTO_EXEC_BAD_CWD;
        case STAGE_EXEC:
                switch (err) {
                case ENOENT:
                case ENOTDIR:
                case ENAMETOOLONG:
                case ELOOP:
                        return PROTO_EXEC_NOT_FOUND;
                case EACCES:
                case EPERM:
                        return PROTO_EXEC_PERMISSION_DENIED;
                case ENOEXEC:
                case EISDIR:
                case ELIBBAD:
                case ETXTBSY:
                        return PROTO_EXEC_NOT_EXECUTABLE;
                case E2BIG:
                        return PROTO_EXEC_BAD_ARGS;
                case ENOMEM:
                case EAGAIN:
                case EMFILE:
                case ENFILE:
                        return PROTO_EXEC_RESOURCE_LIMIT;
                }
                return PROTO_EXEC_OTHER;
        default:
                return PROTO_EXEC_OTHER;
        }
}

int agent_exec_read_status(int fd, struct proto_exec_failed *ret_failed)
{
        struct status_record rec;
        ssize_t n;

        do
                n = read(fd, &rec, sizeof(rec));
        while (n < 0 && errno == EINTR);
        if (n < 0 && errno == EAGAIN)
                return -EAGAIN;
        if (n == 0)
                return 1;
        if (n != (ssize_t)sizeof(rec) || rec.stage < 0 || rec.stage >= STAGE_COUNT) {
                fail(ret_failed, PROTO_EXEC_OTHER, n < 0 ? errno : 0, "setup",
                     "lost the status of the starting command");
                return 0;
        }
        rec.message[sizeof(rec.message) - 1] = '\0';
        fail(ret_failed, failure_kind((enum stage)rec.stage, rec.err), rec.err,
             stage_names[rec.stage], "%s", rec.message);
        return 0;
}
