/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: one run of one sandbox, as a state machine driven by
 * a single epoll loop.
 *
 *   BOOTING   the lock is held, the run directory and both sockets exist
 *             (nobody is accepted yet), QEMU runs; we wait for core.ready,
 *             QEMU's exit (pidfd), the boot deadline, a signal or the
 *             launcher going away. Any of the last four fails the start.
 *   RUNNING   core.ready came: the run is recorded, the ready line written,
 *             agent.sock and control.sock accept. Idle timeout and maximum
 *             duration are deadlines; QEMU exiting ends the run
 *             (completed or crashed).
 *   STOPPING  core.shutdown was sent; QEMU gets until the stop deadline to
 *             exit, then SIGKILL.
 *   DONE      the loop ends; the end is recorded, stop requests answered,
 *             the run directory removed, the lock released (in that order,
 *             so that whoever sees the lock free also sees the record).
 *
 * Every deadline (boot, stop, idle, maximum duration, the relay's stalled
 * clients) is a CLOCK_MONOTONIC time; one timerfd is armed for the nearest
 * before each epoll_wait(). The epoll data of every fd is an ev_ref()
 * (event.h), dispatched by one switch; the relay's own fds go to
 * relay_dispatch().
 *
 * QEMU never outlives us: vm_start() gives it PR_SET_PDEATHSIG(SIGKILL)
 * (this process is single-threaded) and every way out of supervisor_run()
 * kills and reaps it first.
 */
#include "supervisor.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctlmsg.h"
#include "event.h"
#include "console.h"
#include "logfile.h"
#include "network.h"
#include "lib/readyline.h"
#include "relay.h"
#include "sbconfig.h"
#include "lib/core/unixsock.h"
#include "lib/core/log.h"
#include "lib/core/util.h"
#include "lib/paths.h"
#include "lib/store/store.h"
#include "lib/vm/vm.h"

#define BOOT_TIMEOUT_KVM_MS (20 * 1000)
#define BOOT_TIMEOUT_TCG_MS (90 * 1000)
#define MAX_CONTROL         16 /* control connections at once */
#define MAX_EVENTS          64
#define LISTEN_BACKLOG      64
#define KERNEL_LOG_TAIL     (64u << 10)
#define NS_PER_MS           1000000ull

enum state {
        ST_BOOTING,
        ST_RUNNING,
        ST_STOPPING,
        ST_DONE,
};

struct ctl_conn {
        int fd; /* -1: free */
        uint32_t gen;
        char *buf; /* CTLMSG_MAX_LINE + 1 bytes */
        size_t len;
        bool awaiting_stop; /* answered when the run ends */
};

struct sv {
        const struct supervisor_args *args;
        char *dir;     /* $home/sandboxes/<name> */
        char *logs;    /* .../logs */
        char *run_dir; /* $home/run/<name> */
        struct sbconfig cfg;

        int lock_fd; /* >= 0 while we hold `lock` */
        int run_dfd;
        int epfd, sigfd, timerfd, agent_listen, ctl_listen;
        int ready_fd, parent_fd;

        struct store *store;
        int64_t sandbox_id, run_id; /* run_id 0: no run recorded */
        struct logfile *system_log, *exec_log;
        bool debug; /* MSB_LOG=debug: the guest logs at debug level too */

        enum vm_accel accel;
        uint32_t tsc_khz;
        char notice[256];
        struct vm *vm;
        bool vm_exited;
        int vm_status;
        bool vm_killed; /* by the stop deadline */
        struct relay *relay;
        struct sv_net *net;      /* NULL: no network */
        struct console *console; /* logs/kernel.log */

        enum state state;
        uint64_t boot_timeout_ms;
        uint64_t t0, boot_deadline, ready_at, idle_since, stop_deadline;
        int64_t started_at_ms;
        const char *stop_reason; /* why a stop began */
        const char *end_reason;  /* how the run ended (runs.reason) */
        bool remove_sandbox;     /* ephemeral, and its launcher went away */

        struct ctl_conn ctl[MAX_CONTROL];

        const char *fail_kind; /* a failed start: READY_* */
        char fail_msg[512];
};

/* ---- logging ---- */

static bool event_begin(struct sv *sv, struct json_writer *w, const char *event)
{
        if (!sv->system_log)
                return false;
        json_writer_init(w);
        logfile_json_begin(w, "system");
        json_kv_string(w, "event", event);
        return true;
}

static void event_commit(struct sv *sv, struct json_writer *w)
{
        (void)logfile_json_commit(sv->system_log, w);
}

static void log_handler(enum log_level level, const char *msg, void *userdata)
{
        static const char *const names[] = {"error", "warn", "info", "debug"};
        struct sv *sv = userdata;
        struct json_writer w;

        if (!event_begin(sv, &w, "log"))
                return;
        json_kv_string(&w, "level", names[level]);
        json_kv_string(&w, "message", msg);
        event_commit(sv, &w);
}

/* Records why the start failed (the first reason wins) and ends the loop. */
static int fail(struct sv *sv, const char *kind, int r, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static int fail(struct sv *sv, const char *kind, int r, const char *fmt, ...)
{
        va_list ap;

        if (!sv->fail_kind) {
                sv->fail_kind = kind;
                va_start(ap, fmt);
                vsnprintf(sv->fail_msg, sizeof(sv->fail_msg), fmt, ap);
                va_end(ap);
        }
        sv->state = ST_DONE;
        return r < 0 ? r : -EIO;
}

/* ---- hints for a VM that died ---- */

/* The last meaningful line of the kernel log: a panic if there is one. */
static void kernel_log_hint(const struct sv *sv, char *buf, size_t size)
{
        _cleanup_free_ char *path = strdup_printf("%s/kernel.log", sv->logs);
        _cleanup_free_ char *log = NULL;
        _cleanup_close_ int fd = -1;
        const char *line, *panic;
        struct stat st;
        ssize_t n;
        char *p;

        buf[0] = '\0';
        if (!path || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0)
                return;
        log = malloc(KERNEL_LOG_TAIL + 1);
        if (!log)
                return;
        n = pread(fd, log, KERNEL_LOG_TAIL,
                  st.st_size > KERNEL_LOG_TAIL ? st.st_size - KERNEL_LOG_TAIL : 0);
        if (n <= 0)
                return;
        log[n] = '\0';
        /* The agent's own explanation of a failed boot, else a panic, else
         * the last line. */
        panic = strstr(log, "msb-agentd: ");
        if (!panic)
                panic = strstr(log, "Kernel panic");
        if (panic) {
                line = panic;
        } else {
                while (n > 0 && (log[n - 1] == '\n' || log[n - 1] == '\r'))
                        log[--n] = '\0';
                p = strrchr(log, '\n');
                line = p ? p + 1 : log;
        }
        snprintf(buf, size, "%.*s", (int)strcspn(line, "\r\n"), line);
        for (p = buf; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        *p = '?';
}

/* Why the VM died, in one line: the agent's fatal error or a kernel panic,
 * else what QEMU said last, else the last line of the kernel log. */
static void vm_death_hint(struct sv *sv, char *buf, size_t size)
{
        _cleanup_free_ char *qemu_said = NULL;
        char *line;

        kernel_log_hint(sv, buf, size);
        if (strstr(buf, "Kernel panic") || strstr(buf, "msb-agentd: ") ||
            vm_stderr_tail(sv->vm, &qemu_said) < 0)
                return;
        line = strrchr(qemu_said, '\n');
        line = line ? line + 1 : qemu_said;
        if (*line)
                snprintf(buf, size, "%s", line);
}

/* ---- setup ---- */

static bool name_is_valid(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > 128 || s[0] == '.' || s[0] == '-' || s[0] == '_')
                return false;
        for (; *s; s++)
                if (!(('a' <= *s && *s <= 'z') || ('A' <= *s && *s <= 'Z') ||
                      ('0' <= *s && *s <= '9') || *s == '_' || *s == '.' || *s == '-'))
                        return false;
        return true;
}

static int load_config(struct sv *sv)
{
        _cleanup_free_ char *path = strdup_printf("%s/config.json", sv->dir);
        _cleanup_free_ char *text = NULL;
        char msg[256] = "";
        size_t len;
        int r;

        if (!path)
                return fail(sv, READY_SYSTEM, -ENOMEM, "out of memory");
        r = read_file(path, SBCONFIG_MAX_BYTES, &text, &len);
        if (r < 0)
                return fail(sv, READY_INVALID_ARGUMENT, r, "cannot read %s: %s", path,
                            strerror(-r));
        r = sbconfig_parse(text, len, &sv->cfg, msg, sizeof(msg));
        if (r < 0)
                return fail(sv, r == -ENOMEM ? READY_SYSTEM : READY_INVALID_ARGUMENT, r, "%s: %s",
                            path, *msg ? msg : strerror(-r));
        if (!streq(sv->cfg.name, sv->args->name))
                return fail(sv, READY_INVALID_ARGUMENT, -EINVAL, "%s names sandbox '%s', not '%s'",
                            path, sv->cfg.name, sv->args->name);
        return 0;
}

static int take_lock(struct sv *sv)
{
        _cleanup_free_ char *path = strdup_printf("%s/lock", sv->dir);
        _cleanup_close_ int fd = -1;

        if (!path)
                return fail(sv, READY_SYSTEM, -ENOMEM, "out of memory");
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return fail(sv, READY_SYSTEM, negative_errno(), "cannot open %s: %m", path);
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                if (errno == EWOULDBLOCK)
                        return fail(sv, READY_CONFLICT, -EBUSY, "sandbox '%s' is already running",
                                    sv->args->name);
                return fail(sv, READY_SYSTEM, negative_errno(), "cannot lock %s: %m", path);
        }
        sv->lock_fd = TAKE_FD(fd);
        return 0;
}

static int open_logs(struct sv *sv)
{
        _cleanup_free_ char *system = strdup_printf("%s/system.log", sv->logs);
        _cleanup_free_ char *exec = strdup_printf("%s/exec.log", sv->logs);
        const char *level_name = getenv("MSB_LOG");
        enum log_level level = LOG_LEVEL_INFO;
        int r;

        if (!system || !exec)
                return fail(sv, READY_SYSTEM, -ENOMEM, "out of memory");
        if (mkdir(sv->logs, 0700) < 0 && errno != EEXIST)
                return fail(sv, READY_SYSTEM, negative_errno(), "cannot create %s: %m", sv->logs);
        r = logfile_open(system, LOGFILE_MAX_BYTES, &sv->system_log);
        if (r < 0)
                return fail(sv, READY_SYSTEM, r, "cannot open %s: %s", system, strerror(-r));
        r = logfile_open(exec, LOGFILE_MAX_BYTES, &sv->exec_log);
        if (r < 0)
                return fail(sv, READY_SYSTEM, r, "cannot open %s: %s", exec, strerror(-r));
        if (level_name)
                (void)log_level_from_string(level_name, &level);
        log_set_handler(log_handler, level, sv);
        sv->debug = level == LOG_LEVEL_DEBUG;
        return 0;
}

/* The run directory, fresh (one left by a supervisor that was killed is
 * stale: we hold the lock), and both sockets in it. */
static int make_run_dir(struct sv *sv)
{
        _cleanup_free_ char *parent = strdup_printf("%s/run", sv->args->home);
        int r;

        if (!parent)
                return fail(sv, READY_SYSTEM, -ENOMEM, "out of memory");
        r = mkdir_p(parent, 0700);
        if (r >= 0)
                r = rm_rf(sv->run_dir);
        if (r >= 0 && mkdir(sv->run_dir, 0700) < 0)
                r = negative_errno();
        if (r < 0)
                return fail(sv, READY_SYSTEM, r, "cannot create %s: %s", sv->run_dir, strerror(-r));
        sv->run_dfd = open(sv->run_dir, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (sv->run_dfd < 0)
                return fail(sv, READY_SYSTEM, negative_errno(), "cannot open %s: %m", sv->run_dir);
        r = unixsock_listen_at(sv->run_dfd, "agent.sock", LISTEN_BACKLOG, &sv->agent_listen);
        if (r >= 0)
                r = unixsock_listen_at(sv->run_dfd, "control.sock", LISTEN_BACKLOG,
                                       &sv->ctl_listen);
        if (r < 0)
                return fail(sv, READY_SYSTEM, r, "cannot create the sockets in %s: %s", sv->run_dir,
                            strerror(-r));
        return 0;
}

static int open_store(struct sv *sv)
{
        struct store_sandbox rec;
        char msg[256] = "";
        int r;

        r = store_open(sv->args->home, &sv->store, msg, sizeof(msg));
        if (r < 0)
                return fail(sv, READY_SYSTEM, r, "%s", *msg ? msg : strerror(-r));
        r = store_sandbox_get(sv->store, sv->args->name, &rec);
        if (r == -ENOENT)
                return fail(sv, READY_INVALID_ARGUMENT, r,
                            "sandbox '%s' is not in the state database", sv->args->name);
        if (r < 0)
                return fail(sv, READY_SYSTEM, r, "cannot read the record of '%s': %s",
                            sv->args->name, strerror(-r));
        sv->sandbox_id = rec.id;
        store_sandbox_clear(&rec);
        return 0;
}

static int watch(struct sv *sv, int fd, enum ev_kind kind, uint32_t gen, uint32_t index)
{
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = ev_ref(kind, gen, index)};

        return epoll_ctl(sv->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? negative_errno() : 0;
}

static void unwatch(struct sv *sv, int fd)
{
        (void)epoll_ctl(sv->epfd, EPOLL_CTL_DEL, fd, NULL);
}

static int setup_events(struct sv *sv)
{
        sigset_t mask;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return fail(sv, READY_SYSTEM, negative_errno(), "sigprocmask: %m");
        sv->epfd = epoll_create1(EPOLL_CLOEXEC);
        sv->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        sv->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (sv->epfd < 0 || sv->sigfd < 0 || sv->timerfd < 0)
                return fail(sv, READY_SYSTEM, negative_errno(), "cannot set up events: %m");
        r = watch(sv, sv->sigfd, EV_SIGNAL, 0, 0);
        if (r >= 0)
                r = watch(sv, sv->timerfd, EV_TIMER, 0, 0);
        if (r >= 0 && sv->parent_fd >= 0)
                r = watch(sv, sv->parent_fd, EV_PARENT, 0, 0);
        if (r < 0)
                return fail(sv, READY_SYSTEM, r, "epoll: %s", strerror(-r));
        return 0;
}

static int choose_accel(struct sv *sv)
{
        const char *want = sv->cfg.accel ? sv->cfg.accel : getenv("MSB_ACCEL");
        enum vm_accel requested = VM_ACCEL_AUTO;
        struct vm_host_facts facts;
        int r;

        if (want && *want && vm_accel_from_string(want, &requested) < 0)
                return fail(sv, READY_INVALID_ARGUMENT, -EINVAL,
                            "unknown accelerator '%s' (from MSB_ACCEL): use auto, kvm or tcg",
                            want);
        r = vm_host_facts_probe(&facts);
        if (r < 0)
                return fail(sv, READY_SYSTEM, r, "cannot probe the host: %s", strerror(-r));
        r = vm_accel_decide(requested, &facts, &sv->accel, sv->notice, sizeof(sv->notice));
        if (r < 0)
                return fail(sv, READY_ACCEL_UNAVAILABLE, r, "%s", sv->notice);
        if (sv->accel == VM_ACCEL_TCG) {
                _cleanup_free_ char *cache = strdup_printf("%s/cache/host-tsc", sv->args->home);

                sv->tsc_khz = vm_host_tsc_khz(&facts, cache);
        }
        return 0;
}

static int check_disks(struct sv *sv)
{
        if (access(sv->cfg.base_disk, R_OK) < 0)
                return fail(sv, READY_IMAGE_NOT_FOUND, negative_errno(),
                            "the root image of sandbox '%s' is missing: %s (%m)", sv->args->name,
                            sv->cfg.base_disk);
        if (sv->cfg.upper_disk && access(sv->cfg.upper_disk, R_OK | W_OK) < 0)
                return fail(sv, READY_SYSTEM, negative_errno(),
                            "the writable disk of sandbox '%s' is missing: %s (%m)", sv->args->name,
                            sv->cfg.upper_disk);
        return 0;
}

/* The guest's hostname: the sandbox name with what a hostname cannot hold
 * (a sandbox name may have '_') turned into '-', cut to 63 characters. */
static void hostname_from_name(const char *name, char *buf, size_t size)
{
        size_t i;

        for (i = 0; name[i] && i + 1 < size; i++) {
                unsigned char c = (unsigned char)name[i];
                buf[i] = isalnum(c) || c == '-' || c == '.' ? (char)c : '-';
        }
        buf[i] = '\0';
}

/* Sandbox slots for the address pool: 16384 /30s in 10.115.0.0/16. The
 * guest's address is private to its own gateway, so slots may repeat. */
#define NET_SLOT_MASK 0x3fffu

/* A network denial becomes a system log line. */
static void net_denied(const char *line, void *userdata)
{
        struct sv *sv = userdata;
        struct json_writer w;

        log_info("%s", line);
        if (!event_begin(sv, &w, "network"))
                return;
        json_kv_string(&w, "message", line);
        event_commit(sv, &w);
}

/* The network part of a status answer (JSON), or NULL. */
static char *net_status(const struct sv *sv)
{
        struct json_writer w;

        if (!sv->net)
                return NULL;
        json_writer_init(&w);
        sv_net_write_status(sv->net, &w);
        return json_writer_steal(&w);
}

/* QEMU with one end of a socketpair as the agent port; the relay takes the
 * other end. */
static int start_vm(struct sv *sv)
{
        _cleanup_free_ char *qemu = NULL, *kernel = NULL, *initramfs = NULL;
        _cleanup_free_ char *cmdline = NULL, *console = NULL, *qemu_log = NULL;
        _cleanup_close_ int guest_fd = -1, qemu_console_fd = -1;
        char vmerr[256] = "", hostname[64];
        struct timespec now;
        int sv_fds[2], r;

        r = paths_qemu(&qemu);
        if (r < 0)
                return fail(sv, READY_HOST_MISSING, r,
                            "QEMU not found: %s (install the qemu-system-x86 package, or set "
                            "MSB_QEMU)",
                            qemu ? qemu : "qemu-system-x86_64");
        r = paths_asset(ASSET_KERNEL, &kernel);
        if (r < 0)
                return fail(sv, READY_HOST_MISSING, r,
                            "guest kernel not found: %s (run 'make', or set MSB_KERNEL)",
                            kernel ? kernel : "?");
        r = paths_asset(ASSET_INITRAMFS, &initramfs);
        if (r < 0)
                return fail(sv, READY_HOST_MISSING, r,
                            "initramfs not found: %s (run 'make', or set MSB_INITRAMFS)",
                            initramfs ? initramfs : "?");

        if (sv->cfg.net.enabled) {
                r = sv_net_new(&sv->cfg.net, (uint32_t)sv->sandbox_id & NET_SLOT_MASK, net_denied,
                               sv, &sv->net, vmerr, sizeof(vmerr));
                if (r < 0)
                        return fail(sv, r == -EADDRINUSE ? READY_CONFLICT : READY_SYSTEM, r,
                                    "sandbox '%s': %s", sv->args->name, vmerr);
        }
        clock_gettime(CLOCK_REALTIME, &now);
        hostname_from_name(sv->args->name, hostname, sizeof(hostname));
        /* at debug level, the agent's too, on the console: its boot timeline,
         * every line of it (printk.devkmsg=on lifts the kernel's limit of 10
         * lines per 5 s written to /dev/kmsg) */
        cmdline = strdup_printf("msb.root=overlay msb.hostname=%s msb.time=%lld.%09ld %s%s",
                                hostname, (long long)now.tv_sec, now.tv_nsec,
                                sv->debug ? "msb.log=debug loglevel=8 printk.devkmsg=on " : "",
                                sv->net ? sv_net_boot_params(sv->net) : "");
        console = strdup_printf("%s/kernel.log", sv->logs);
        qemu_log = strdup_printf("%s/qemu.log", sv->logs);
        if (!cmdline || !console || !qemu_log)
                return fail(sv, READY_SYSTEM, -ENOMEM, "out of memory");

        /* a fresh console log, so that a hint never quotes an earlier run */
        r = console_new(console, CONSOLE_LOG_MAX_BYTES, &sv->console, &qemu_console_fd);
        if (r < 0)
                return fail(sv, READY_SYSTEM, r, "cannot create %s: %s", console, strerror(-r));
        r = watch(sv, console_fd(sv->console), EV_CONSOLE, 0, 0);
        if (r < 0)
                return fail(sv, READY_SYSTEM, r, "epoll: %s", strerror(-r));
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv_fds) < 0)
                return fail(sv, READY_SYSTEM, negative_errno(), "socketpair: %m");
        guest_fd = sv_fds[1];
        r = relay_new(sv->epfd, sv_fds[0], sv->exec_log, &sv->relay);
        if (r < 0)
                return fail(sv, READY_SYSTEM, r, "agent relay: %s", strerror(-r));

        struct vm_config vc = {
                .qemu = qemu,
                .kernel = kernel,
                .initramfs = initramfs,
                .cmdline_extra = cmdline,
                .memory_mib = sv->cfg.memory_mib,
                .cpus = sv->cfg.cpus,
                .accel = sv->accel,
                .tcg_tsc_khz = sv->tsc_khz,
                .agent_fd = guest_fd,
                .console_fd = qemu_console_fd,
                .stderr_path = qemu_log,
                .disks = {{.path = sv->cfg.base_disk, .read_only = true, .serial = "msb-base"},
                          {.path = sv->cfg.upper_disk,
                           .read_only = false,
                           .scratch = sv->cfg.ephemeral,
                           .serial = "msb-upper"}},
                .n_disks = sv->cfg.upper_disk ? 2 : 1,
                .net = sv->net ? sv_net_nic(sv->net) : NULL,
        };
        r = vm_start(&vc, &sv->vm, vmerr, sizeof(vmerr));
        if (r < 0)
                return fail(sv, r == -ENOENT ? READY_HOST_MISSING : READY_VM_FAILED, r,
                            "cannot start the VM: %s", *vmerr ? vmerr : strerror(-r));
        if (sv->net) {
                sv_net_nic_handed_over(sv->net);
                r = watch(sv, sv_net_fd(sv->net), EV_NET, 0, 0);
                if (r < 0)
                        return fail(sv, READY_SYSTEM, r, "epoll: %s", strerror(-r));
        }
        r = vm_pidfd(sv->vm);
        if (r < 0)
                return fail(sv, READY_SYSTEM, r, "cannot watch QEMU: pidfd_open: %s", strerror(-r));
        r = watch(sv, r, EV_QEMU, 0, 0);
        if (r < 0)
                return fail(sv, READY_SYSTEM, r, "epoll: %s", strerror(-r));
        sv->boot_timeout_ms = sv->cfg.boot_timeout_ms;
        if (sv->boot_timeout_ms == 0)
                sv->boot_timeout_ms =
                        sv->accel == VM_ACCEL_KVM ? BOOT_TIMEOUT_KVM_MS : BOOT_TIMEOUT_TCG_MS;
        sv->boot_deadline = now_ns(CLOCK_MONOTONIC) + sv->boot_timeout_ms * NS_PER_MS;
        log_info("booting: QEMU pid %d, %s", (int)vm_pid(sv->vm), vm_accel_name(sv->accel));
        return 0;
}

/* ---- transitions ---- */

static void write_ready_line(struct sv *sv, const struct readyline *rl)
{
        _cleanup_free_ char *line = NULL;
        int r;

        if (sv->ready_fd < 0)
                return;
        r = readyline_format(rl, &line);
        if (r >= 0)
                r = write_all(sv->ready_fd, line, strlen(line));
        if (r < 0)
                log_warn("cannot write the ready line: %s", strerror(-r));
        sv->ready_fd = safe_close(sv->ready_fd);
}

static void on_ready(struct sv *sv, const struct proto_ready *ready)
{
        struct readyline rl = {.ok = true};
        struct json_writer w;
        int r;

        sv->ready_at = now_ns(CLOCK_MONOTONIC);
        sv->idle_since = sv->ready_at;
        sv->started_at_ms = store_now_ms();
        r = store_run_begin(sv->store, sv->sandbox_id, getpid(), vm_pid(sv->vm), &sv->run_id);
        if (r < 0) {
                fail(sv, READY_SYSTEM, r, "cannot record the run: %s", strerror(-r));
                return;
        }
        r = store_sandbox_set_status(sv->store, sv->args->name, "running");
        if (r >= 0)
                r = watch(sv, sv->agent_listen, EV_AGENT_LISTEN, 0, 0);
        if (r >= 0)
                r = watch(sv, sv->ctl_listen, EV_CONTROL_LISTEN, 0, 0);
        if (r < 0) {
                (void)store_run_end(sv->store, sv->run_id, "crashed", "crashed");
                fail(sv, READY_SYSTEM, r, "cannot serve the sandbox: %s", strerror(-r));
                return;
        }
        sv->state = ST_RUNNING;

        snprintf(rl.accel, sizeof(rl.accel), "%s", vm_accel_name(sv->accel));
        snprintf(rl.notice, sizeof(rl.notice), "%s", sv->notice);
        rl.start_ns = sv->ready_at - sv->t0;
        rl.guest_boot_ns = ready->boot_time_ns;
        rl.guest_ready_ns = ready->ready_time_ns;
        rl.pid = getpid();
        rl.qemu_pid = vm_pid(sv->vm);
        if (event_begin(sv, &w, "started")) {
                json_kv_int(&w, "pid", rl.pid);
                json_kv_int(&w, "qemu_pid", rl.qemu_pid);
                json_kv_string(&w, "accel", rl.accel);
                json_kv_uint(&w, "start_ms", rl.start_ns / NS_PER_MS);
                json_kv_string(&w, "agent_version", ready->agent_version);
                event_commit(sv, &w);
        }
        write_ready_line(sv, &rl);
}

static void end_run(struct sv *sv, const char *reason)
{
        sv->end_reason = reason;
        sv->state = ST_DONE;
}

/* Keeps what the guest wrote to its console; stops watching at QEMU's end. */
static void console_event(struct sv *sv)
{
        if (sv->console && console_drain(sv->console) > 0)
                (void)epoll_ctl(sv->epfd, EPOLL_CTL_DEL, console_fd(sv->console), NULL);
}

/* QEMU is gone (reaped): decide how the run or the start ended. */
static void on_vm_exit(struct sv *sv)
{
        int st = sv->vm_status;
        bool clean = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        char hint[256];

        relay_drain(sv->relay);
        console_event(sv); /* the last lines, for the hints below */
        switch (sv->state) {
        case ST_BOOTING:
                vm_death_hint(sv, hint, sizeof(hint));
                fail(sv, READY_VM_FAILED, -EPIPE,
                     "the VM of sandbox '%s' exited during boot (%s %d)%s%s", sv->args->name,
                     WIFEXITED(st) ? "status" : "signal",
                     WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), *hint ? ": " : "", hint);
                return;
        case ST_RUNNING:
                kernel_log_hint(sv, hint, sizeof(hint));
                if (clean && strstr(hint, "Kernel panic"))
                        clean = false;
                if (!clean) {
                        vm_death_hint(sv, hint, sizeof(hint));
                        log_error("the VM exited (%s %d)%s%s", WIFEXITED(st) ? "status" : "signal",
                                  WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), *hint ? ": " : "",
                                  hint);
                }
                end_run(sv, clean ? "completed" : "crashed");
                return;
        case ST_STOPPING:
                end_run(sv, sv->vm_killed && streq(sv->stop_reason, "stopped") ? "killed"
                                                                               : sv->stop_reason);
                return;
        case ST_DONE:
                return;
        }
}

static void kill_vm(struct sv *sv)
{
        int r;

        if (sv->vm_exited)
                return;
        r = vm_kill(sv->vm);
        if (r < 0)
                log_error("cannot kill QEMU: %s", strerror(-r));
        sv->vm_killed = true;
        sv->vm_exited = vm_poll_exit(sv->vm, &sv->vm_status) > 0;
}

/* Asks the guest to shut down, with timeout_ms to do it; 0 kills at once. */
static void begin_stop(struct sv *sv, const char *reason, uint64_t timeout_ms)
{
        uint64_t deadline = now_ns(CLOCK_MONOTONIC) + timeout_ms * NS_PER_MS;
        struct json_writer w;
        int r;

        if (sv->state == ST_RUNNING) {
                sv->state = ST_STOPPING;
                sv->stop_reason = reason;
                sv->stop_deadline = deadline;
                if (event_begin(sv, &w, "stopping")) {
                        json_kv_string(&w, "reason", reason);
                        json_kv_uint(&w, "timeout_ms", timeout_ms);
                        event_commit(sv, &w);
                }
                r = store_sandbox_set_status(sv->store, sv->args->name, "stopping");
                if (r < 0)
                        log_warn("cannot record the status 'stopping': %s", strerror(-r));
                unwatch(sv, sv->agent_listen);
                if (timeout_ms > 0 && (r = relay_send_shutdown(sv->relay)) < 0)
                        log_info("cannot send core.shutdown (%s): waiting for QEMU to exit",
                                 strerror(-r));
        } else if (sv->state == ST_STOPPING) {
                sv->stop_deadline = MIN(sv->stop_deadline, deadline);
        } else {
                return;
        }
        if (timeout_ms == 0) {
                kill_vm(sv);
                on_vm_exit(sv);
        }
}

/* ---- events ---- */

static void qemu_event(struct sv *sv)
{
        int r = vm_poll_exit(sv->vm, &sv->vm_status);

        if (r <= 0) {
                if (r < 0)
                        log_warn("waitpid(QEMU): %s", strerror(-r));
                return;
        }
        sv->vm_exited = true;
        on_vm_exit(sv);
}

static void agent_broken(struct sv *sv, int r)
{
        if (sv->state == ST_BOOTING) {
                fail(sv, r == -EBADMSG ? READY_PROTOCOL : READY_SYSTEM, r,
                     "the guest agent of sandbox '%s' %s", sv->args->name,
                     r == -EBADMSG ? "sent a malformed frame instead of core.ready"
                                   : "channel failed");
                return;
        }
        log_error("the agent channel failed (%s): the guest cannot be trusted, killing it",
                  r == -EBADMSG ? "a malformed frame" : strerror(-r));
        kill_vm(sv);
        end_run(sv, "crashed");
}

static void signal_event(struct sv *sv)
{
        struct signalfd_siginfo si;

        while (read(sv->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                log_info("signal %u received", si.ssi_signo);
                switch (sv->state) {
                case ST_BOOTING:
                        fail(sv, READY_CANCELLED, -ECANCELED, "start cancelled by signal %u",
                             si.ssi_signo);
                        return;
                case ST_RUNNING:
                        begin_stop(sv, "stopped", CTLMSG_DEFAULT_STOP_TIMEOUT_MS);
                        break;
                case ST_STOPPING: /* a second signal: no more waiting */
                        begin_stop(sv, sv->stop_reason, 0);
                        break;
                case ST_DONE:
                        return;
                }
        }
}

static void parent_event(struct sv *sv)
{
        char buf[64];
        ssize_t n = read(sv->parent_fd, buf, sizeof(buf));

        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return;
        if (n > 0) {
                if (memchr(buf, 'D', (size_t)n)) {
                        log_info("detached from the launcher");
                        unwatch(sv, sv->parent_fd);
                        sv->parent_fd = safe_close(sv->parent_fd);
                }
                return;
        }
        unwatch(sv, sv->parent_fd);
        sv->parent_fd = safe_close(sv->parent_fd);
        sv->remove_sandbox = sv->cfg.ephemeral;
        log_info("the launcher went away%s", sv->cfg.ephemeral ? ": removing the sandbox" : "");
        switch (sv->state) {
        case ST_BOOTING:
                fail(sv, READY_CANCELLED, -ECANCELED, "start cancelled: the launcher went away");
                return;
        case ST_RUNNING:
        case ST_STOPPING:
                /* an ephemeral sandbox's disks are about to go: no clean shutdown */
                begin_stop(sv, "stopped", sv->cfg.ephemeral ? 0 : CTLMSG_DEFAULT_STOP_TIMEOUT_MS);
                return;
        case ST_DONE:
                return;
        }
}

static void timer_event(struct sv *sv)
{
        uint64_t expirations, now = now_ns(CLOCK_MONOTONIC);
        char hint[200];

        (void)!read(sv->timerfd, &expirations, sizeof(expirations));
        switch (sv->state) {
        case ST_BOOTING:
                if (now < sv->boot_deadline)
                        return;
                kernel_log_hint(sv, hint, sizeof(hint));
                fail(sv, READY_BOOT_TIMEOUT, -ETIMEDOUT,
                     "the guest did not answer within %llu ms (%s)%s%s",
                     (unsigned long long)sv->boot_timeout_ms, vm_accel_name(sv->accel),
                     *hint ? "; kernel log: " : "", hint);
                return;
        case ST_RUNNING:
                if (sv->cfg.max_duration_ms &&
                    now >= sv->ready_at + sv->cfg.max_duration_ms * NS_PER_MS) {
                        begin_stop(sv, "max_duration", CTLMSG_DEFAULT_STOP_TIMEOUT_MS);
                } else if (sv->cfg.idle_timeout_ms && sv->idle_since &&
                           now >= sv->idle_since + sv->cfg.idle_timeout_ms * NS_PER_MS) {
                        log_info("idle for %llu ms", (unsigned long long)sv->cfg.idle_timeout_ms);
                        begin_stop(sv, "idle_timeout", CTLMSG_DEFAULT_STOP_TIMEOUT_MS);
                }
                break;
        case ST_STOPPING:
                if (now >= sv->stop_deadline) {
                        log_warn("the guest did not shut down in time: killing QEMU");
                        kill_vm(sv);
                        on_vm_exit(sv);
                        return;
                }
                break;
        case ST_DONE:
                return;
        }
        relay_expire(sv->relay, now);
}

static uint64_t earliest(uint64_t a, uint64_t b)
{
        return a == 0 ? b : b == 0 ? a : MIN(a, b);
}

static void arm_timer(struct sv *sv)
{
        struct itimerspec its = {0};
        uint64_t next = 0;

        switch (sv->state) {
        case ST_BOOTING:
                next = sv->boot_deadline;
                break;
        case ST_RUNNING:
                if (sv->cfg.max_duration_ms)
                        next = sv->ready_at + sv->cfg.max_duration_ms * NS_PER_MS;
                if (sv->cfg.idle_timeout_ms && sv->idle_since)
                        next = earliest(next, sv->idle_since + sv->cfg.idle_timeout_ms * NS_PER_MS);
                next = earliest(next, relay_next_deadline(sv->relay));
                break;
        case ST_STOPPING:
                next = earliest(sv->stop_deadline, relay_next_deadline(sv->relay));
                break;
        case ST_DONE:
                break;
        }
        if (next) { /* a deadline already passed fires at once */
                its.it_value.tv_sec = (time_t)(next / 1000000000u);
                its.it_value.tv_nsec = (long)(next % 1000000000u);
        }
        if (timerfd_settime(sv->timerfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
                log_warn("timerfd_settime: %m");
}

static void accept_clients(struct sv *sv)
{
        for (int i = 0; i < LISTEN_BACKLOG && sv->state == ST_RUNNING; i++) {
                int fd = accept4(sv->agent_listen, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                int r;
                if (fd < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                log_warn("accept on agent.sock: %m");
                        return;
                }
                r = relay_add_client(sv->relay, fd);
                if (r < 0)
                        log_warn("relay: a client was refused: %s",
                                 r == -EBUSY ? "every slot is taken" : strerror(-r));
        }
}

static void ctl_close(struct sv *sv, struct ctl_conn *c)
{
        unwatch(sv, c->fd);
        c->fd = safe_close(c->fd);
        free(c->buf);
        c->buf = NULL;
        c->len = 0;
        c->awaiting_stop = false;
}

/* Answers are small and the socket new: a client that does not take one
 * whole line at once is not reading, and is dropped. */
static void ctl_answer(struct sv *sv, struct ctl_conn *c, const char *line)
{
        size_t len = strlen(line);

        if (send(c->fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)len)
                ctl_close(sv, c);
}

static void ctl_answer_error(struct sv *sv, struct ctl_conn *c, const char *error)
{
        _cleanup_free_ char *line = NULL;

        if (ctlmsg_format_error(error, &line) < 0)
                ctl_close(sv, c);
        else
                ctl_answer(sv, c, line);
}

static void ctl_request(struct sv *sv, struct ctl_conn *c, const char *text, size_t len)
{
        _cleanup_free_ char *line = NULL;
        struct ctlmsg_request req;
        int r;

        r = ctlmsg_parse(text, len, &req);
        if (r < 0) {
                ctl_answer_error(sv, c, ctlmsg_error_text(r));
                return;
        }
        switch (req.op) {
        case CTLMSG_STATUS: {
                _cleanup_free_ char *network = net_status(sv);
                struct ctlmsg_status s = {
                        .status = sv->state == ST_RUNNING ? "running" : "stopping",
                        .pid = getpid(),
                        .qemu_pid = vm_pid(sv->vm),
                        .started_at = sv->started_at_ms,
                        .clients = relay_n_clients(sv->relay),
                        .sessions = relay_n_sessions(sv->relay),
                        .accel = vm_accel_name(sv->accel),
                        .network = network,
                };
                if (ctlmsg_format_status(&s, &line) < 0)
                        ctl_close(sv, c);
                else
                        ctl_answer(sv, c, line);
                return;
        }
        case CTLMSG_STOP:
                log_info("stop requested (timeout %llu ms)", (unsigned long long)req.timeout_ms);
                c->awaiting_stop = true;
                begin_stop(sv, "stopped", req.timeout_ms);
                return;
        }
}

static void ctl_event(struct sv *sv, uint64_t ref)
{
        uint32_t i = ev_ref_index(ref);
        struct ctl_conn *c;
        ssize_t n;
        char *nl;

        if (i >= MAX_CONTROL || sv->ctl[i].fd < 0 ||
            (sv->ctl[i].gen & EV_GEN_MASK) != ev_ref_gen(ref))
                return;
        c = &sv->ctl[i];
        n = recv(c->fd, c->buf + c->len, CTLMSG_MAX_LINE + 1 - c->len, MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return;
        if (n <= 0) {
                ctl_close(sv, c);
                return;
        }
        c->len += (size_t)n;
        while (c->fd >= 0 && (nl = memchr(c->buf, '\n', c->len))) {
                size_t line_len = (size_t)(nl - c->buf);
                ctl_request(sv, c, c->buf, line_len);
                if (c->fd < 0)
                        return;
                memmove(c->buf, nl + 1, c->len - line_len - 1);
                c->len -= line_len + 1;
        }
        if (c->fd >= 0 && c->len > CTLMSG_MAX_LINE) {
                ctl_answer_error(sv, c, ctlmsg_error_text(-E2BIG));
                if (c->fd >= 0)
                        ctl_close(sv, c);
        }
}

static void accept_control(struct sv *sv)
{
        for (;;) {
                int fd = accept4(sv->ctl_listen, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                struct ctl_conn *c = NULL;
                if (fd < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                log_warn("accept on control.sock: %m");
                        return;
                }
                for (size_t i = 0; i < MAX_CONTROL && !c; i++)
                        if (sv->ctl[i].fd < 0)
                                c = &sv->ctl[i];
                if (!c || !(c->buf = malloc(CTLMSG_MAX_LINE + 1))) {
                        log_warn("control.sock: a connection was refused (%s)",
                                 c ? "out of memory" : "too many");
                        close(fd);
                        continue;
                }
                c->fd = fd;
                c->gen++;
                if (watch(sv, fd, EV_CONTROL, c->gen, (uint32_t)(c - sv->ctl)) < 0)
                        ctl_close(sv, c);
        }
}

static void dispatch(struct sv *sv, uint64_t ref, uint32_t events)
{
        int r;

        switch (ev_ref_kind(ref)) {
        case EV_RELAY_AGENT:
        case EV_RELAY_CLIENT:
                r = relay_dispatch(sv->relay, ref, events);
                if (r < 0)
                        agent_broken(sv, r);
                break;
        case EV_AGENT_LISTEN:
                accept_clients(sv);
                break;
        case EV_CONTROL_LISTEN:
                accept_control(sv);
                break;
        case EV_CONTROL:
                ctl_event(sv, ref);
                break;
        case EV_NET:
                if (sv->net)
                        sv_net_run(sv->net);
                break;
        case EV_CONSOLE:
                console_event(sv);
                break;
        case EV_QEMU:
                qemu_event(sv);
                break;
        case EV_SIGNAL:
                signal_event(sv);
                break;
        case EV_TIMER:
                timer_event(sv);
                break;
        case EV_PARENT:
                if (sv->parent_fd >= 0)
                        parent_event(sv);
                break;
        case EV_NONE:
                break;
        }
}

static void loop(struct sv *sv)
{
        struct epoll_event evs[MAX_EVENTS];
        struct proto_ready ready;

        while (sv->state != ST_DONE) {
                int n;

                arm_timer(sv);
                n = epoll_wait(sv->epfd, evs, MAX_EVENTS, -1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (sv->state == ST_BOOTING) {
                                fail(sv, READY_SYSTEM, negative_errno(), "epoll_wait: %m");
                                return;
                        }
                        log_error("epoll_wait: %m");
                        kill_vm(sv);
                        end_run(sv, "crashed");
                        return;
                }
                for (int i = 0; i < n && sv->state != ST_DONE; i++)
                        dispatch(sv, evs[i].data.u64, evs[i].events);
                if (sv->state == ST_BOOTING && relay_is_ready(sv->relay, &ready))
                        on_ready(sv, &ready);
                if (sv->state == ST_RUNNING) {
                        bool busy =
                                relay_n_clients(sv->relay) > 0 || relay_n_sessions(sv->relay) > 0;
                        if (busy)
                                sv->idle_since = 0;
                        else if (!sv->idle_since)
                                sv->idle_since = now_ns(CLOCK_MONOTONIC);
                }
        }
}

/* ---- the end ---- */

static void remove_sandbox(struct sv *sv)
{
        int r = rm_rf(sv->dir);

        if (r < 0)
                log_error("cannot remove %s: %s", sv->dir, strerror(-r));
        r = store_sandbox_delete(sv->store, sv->args->name);
        if (r < 0 && r != -ENOENT)
                log_error("cannot remove the record of '%s': %s", sv->args->name, strerror(-r));
}

/* Common to both ends: QEMU, the sockets, the run directory. */
static void release_run(struct sv *sv)
{
        sv->vm = vm_free(sv->vm);
        sv->net = sv_net_free(sv->net);
        sv->relay = relay_free(sv->relay);
        sv->console = console_free(sv->console);
        for (size_t i = 0; i < MAX_CONTROL; i++)
                if (sv->ctl[i].fd >= 0)
                        ctl_close(sv, &sv->ctl[i]);
        sv->agent_listen = safe_close(sv->agent_listen);
        sv->ctl_listen = safe_close(sv->ctl_listen);
        sv->run_dfd = safe_close(sv->run_dfd);
        if (sv->lock_fd >= 0 && sv->run_dir)
                (void)rm_rf(sv->run_dir);
}

static void finish_run(struct sv *sv)
{
        const char *reason = sv->end_reason ? sv->end_reason : "crashed";
        _cleanup_free_ char *answer = NULL;
        struct json_writer w;
        int st, r;

        kill_vm(sv);
        st = sv->vm_status;
        r = store_run_end(sv->store, sv->run_id, reason,
                          streq(reason, "crashed") ? "crashed" : "stopped");
        if (r < 0)
                log_error("cannot record the end of the run: %s", strerror(-r));
        if (event_begin(sv, &w, "stopped")) {
                json_kv_string(&w, "reason", reason);
                if (WIFEXITED(st))
                        json_kv_int(&w, "qemu_exit_status", WEXITSTATUS(st));
                else if (WIFSIGNALED(st))
                        json_kv_int(&w, "qemu_signal", WTERMSIG(st));
                event_commit(sv, &w);
        }
        if (ctlmsg_format_stopped(reason, &answer) >= 0)
                for (size_t i = 0; i < MAX_CONTROL; i++)
                        if (sv->ctl[i].fd >= 0 && sv->ctl[i].awaiting_stop)
                                ctl_answer(sv, &sv->ctl[i], answer);
        release_run(sv);
        if (sv->remove_sandbox)
                remove_sandbox(sv);
}

static void finish_failed_start(struct sv *sv)
{
        struct readyline rl = {.ok = false};
        struct json_writer w;

        if (event_begin(sv, &w, "start_failed")) {
                json_kv_string(&w, "kind", sv->fail_kind);
                json_kv_string(&w, "message", sv->fail_msg);
                event_commit(sv, &w);
        }
        release_run(sv);
        if (sv->remove_sandbox && sv->store)
                remove_sandbox(sv);
        sv->lock_fd = safe_close(sv->lock_fd);
        snprintf(rl.kind, sizeof(rl.kind), "%s", sv->fail_kind);
        snprintf(rl.message, sizeof(rl.message), "%s", sv->fail_msg);
        write_ready_line(sv, &rl);
}

int supervisor_run(const struct supervisor_args *args)
{
        struct sv sv = {
                .args = args,
                .lock_fd = -1,
                .run_dfd = -1,
                .epfd = -1,
                .sigfd = -1,
                .timerfd = -1,
                .agent_listen = -1,
                .ctl_listen = -1,
                .ready_fd = args->ready_fd,
                .parent_fd = args->parent_fd,
                .t0 = now_ns(CLOCK_MONOTONIC),
        };
        int status;

        for (size_t i = 0; i < MAX_CONTROL; i++)
                sv.ctl[i].fd = -1;
        if (!name_is_valid(args->name) || args->home[0] != '/') {
                fail(&sv, READY_INVALID_ARGUMENT, -EINVAL, "invalid sandbox name or home");
        } else {
                sv.dir = strdup_printf("%s/sandboxes/%s", args->home, args->name);
                sv.logs = strdup_printf("%s/sandboxes/%s/logs", args->home, args->name);
                sv.run_dir = strdup_printf("%s/run/%s", args->home, args->name);
                if (!sv.dir || !sv.logs || !sv.run_dir)
                        fail(&sv, READY_SYSTEM, -ENOMEM, "out of memory");
        }
        if (sv.state == ST_BOOTING && load_config(&sv) >= 0 && take_lock(&sv) >= 0 &&
            open_logs(&sv) >= 0 && make_run_dir(&sv) >= 0 && open_store(&sv) >= 0 &&
            setup_events(&sv) >= 0 && check_disks(&sv) >= 0 && choose_accel(&sv) >= 0)
                (void)start_vm(&sv);
        if (sv.state == ST_BOOTING)
                loop(&sv);

        if (sv.fail_kind) {
                finish_failed_start(&sv);
                status = 1;
        } else {
                finish_run(&sv);
                status = 0;
        }
        log_set_handler(NULL, LOG_LEVEL_ERROR, NULL);
        sv.lock_fd = safe_close(sv.lock_fd);
        sv.system_log = logfile_free(sv.system_log);
        sv.exec_log = logfile_free(sv.exec_log);
        store_close(sv.store);
        sbconfig_clear(&sv.cfg);
        safe_close(sv.epfd);
        safe_close(sv.sigfd);
        safe_close(sv.timerfd);
        safe_close(sv.parent_fd);
        safe_close(sv.ready_fd);
        free(sv.dir);
        free(sv.logs);
        free(sv.run_dir);
        return status;
}
