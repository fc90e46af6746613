/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: msb_sandbox_create() turns a configuration into a
 * running VM in five steps, each undone by the cleanup of the half-built
 * sandbox if a later one fails:
 *
 *   1. a state directory $MSB_HOME/sandboxes/<name>/ (created exclusively:
 *      the name is taken while it exists);
 *   2. the root: the base image as is, or an ext4 built from a host
 *      directory, plus a fresh sparse upper disk for the writable layer;
 *   3. the accelerator (KVM if usable, else TCG) and the QEMU command line;
 *   4. QEMU, with one end of a socketpair as the agent's virtio-serial port;
 *   5. the wait for core.ready, watching QEMU's exit, a boot deadline and the
 *      caller's cancel fd at once.
 *
 * The guest learns its configuration from msb.* kernel parameters (the
 * agent reads /proc/cmdline). destroy kills QEMU and removes the directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "chan.h"
#include "config.h"
#include "error.h"
#include "internal.h"
#include "paths.h"
#include "lib/core/log.h"
#include "lib/core/util.h"
#include "lib/image/dirsrc.h"
#include "lib/image/ext4.h"
#include "lib/vm/vm.h"

#define BOOT_TIMEOUT_KVM_MS (20 * 1000)
#define BOOT_TIMEOUT_TCG_MS (90 * 1000)

struct msb_sandbox {
        char *name;
        char *dir;
        struct vm *vm;
        struct chan *chan;
        enum vm_accel accel;
        uint32_t tsc_khz;
        char accel_notice[256];
        uint64_t start_ns;
        struct proto_ready ready;
};

const char *msb_version(void)
{
        return MSB_VERSION;
}

const char *msb_sandbox_name(const msb_sandbox *sb)
{
        return sb->name;
}

struct chan *sandbox_chan(msb_sandbox *sb)
{
        return sb->chan;
}

int msb_sandbox_boot_info(const msb_sandbox *sb, msb_boot_info *ret)
{
        *ret = (msb_boot_info){
                .accel = vm_accel_name(sb->accel),
                .accel_notice = sb->accel_notice,
                .start_ns = sb->start_ns,
                .guest_boot_ns = sb->ready.boot_time_ns,
                .guest_ready_ns = sb->ready.ready_time_ns,
        };
        return 0;
}

/* The last meaningful line of the kernel log: a panic if there is one. */
static void kernel_log_hint(const msb_sandbox *sb, char *buf, size_t size)
{
        _cleanup_free_ char *path = strdup_printf("%s/logs/kernel.log", sb->dir);
        _cleanup_free_ char *log = NULL;
        const char *line = NULL, *panic;
        size_t len;
        char *p;

        buf[0] = '\0';
        if (!path || read_file(path, 4u << 20, &log, &len) < 0 || len == 0)
                return;
        panic = strstr(log, "Kernel panic");
        if (panic) {
                line = panic;
        } else {
                while (len > 0 && (log[len - 1] == '\n' || log[len - 1] == '\r'))
                        log[--len] = '\0';
                p = strrchr(log, '\n');
                line = p ? p + 1 : log;
        }
        snprintf(buf, size, "%.*s", (int)strcspn(line, "\r\n"), line);
}

/* Why the VM died, in one line: a kernel panic, else what QEMU said last,
 * else the last line of the kernel log. */
static void vm_death_hint(msb_sandbox *sb, char *buf, size_t size)
{
        _cleanup_free_ char *qemu_said = NULL;
        char *line;

        kernel_log_hint(sb, buf, size);
        if (strstr(buf, "Kernel panic") || vm_stderr_tail(sb->vm, &qemu_said) < 0)
                return;
        while ((line = strrchr(qemu_said, '\n')) && line[1] == '\0')
                *line = '\0';
        line = strrchr(qemu_said, '\n');
        line = line ? line + 1 : qemu_said;
        if (*line)
                snprintf(buf, size, "%s", line);
}

int sandbox_fail_channel(msb_sandbox *sb, int r)
{
        char hint[200];
        int status;

        if (r == -EBADMSG)
                return error_set(MSB_ERR_PROTOCOL, r,
                                 "the guest agent sent a malformed frame; sandbox '%s' cannot "
                                 "be trusted and was abandoned",
                                 sb->name);
        if (r == -EPIPE || vm_poll_exit(sb->vm, &status) > 0) {
                vm_death_hint(sb, hint, sizeof(hint));
                return error_set(MSB_ERR_VM_FAILED, -EPIPE, "the VM of sandbox '%s' exited%s%s",
                                 sb->name, *hint ? ": " : "", hint);
        }
        return error_set(MSB_ERR_SYSTEM, r, "agent channel of sandbox '%s': %s", sb->name,
                         strerror(-r));
}

static int generate_name(char **ret)
{
        uint8_t rnd[4];

        if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
                return negative_errno();
        *ret = strdup_printf("sb-%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
        return *ret ? 0 : -ENOMEM;
}

/* Step 1: the state directory, exclusively ours. */
static int make_state_dir(msb_sandbox *sb, const msb_sandbox_config *cfg)
{
        _cleanup_free_ char *home = NULL, *parent = NULL;
        char *logs;
        int r;

        r = paths_home(&home);
        if (r < 0)
                return error_set(MSB_ERR_SYSTEM, r,
                                 "cannot find a home for msb state: set "
                                 "MSB_HOME");
        parent = strdup_printf("%s/sandboxes", home);
        if (!parent)
                return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        r = mkdir_p(parent, 0700);
        if (r < 0)
                return error_set(MSB_ERR_SYSTEM, r, "cannot create %s: %s", parent, strerror(-r));
        for (int attempt = 0;; attempt++) {
                if (cfg->name) {
                        sb->name = strdup(cfg->name);
                        if (!sb->name)
                                return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
                } else {
                        r = generate_name(&sb->name);
                        if (r < 0)
                                return error_set(MSB_ERR_SYSTEM, r, "cannot generate a name");
                }
                sb->dir = strdup_printf("%s/%s", parent, sb->name);
                if (!sb->dir)
                        return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
                if (mkdir(sb->dir, 0700) == 0)
                        break;
                r = negative_errno();
                free(sb->dir);
                sb->dir = NULL;
                if (r != -EEXIST)
                        return error_set(MSB_ERR_SYSTEM, r,
                                         "cannot create the sandbox directory "
                                         "under %s: %s",
                                         parent, strerror(-r));
                if (cfg->name)
                        return error_set(MSB_ERR_INVALID_ARGUMENT, -EEXIST,
                                         "a sandbox named '%s' already exists", cfg->name);
                free(sb->name);
                sb->name = NULL;
                if (attempt > 16)
                        return error_set(MSB_ERR_SYSTEM, -EEXIST, "cannot find a free name");
        }
        logs = strdup_printf("%s/logs", sb->dir);
        if (!logs)
                return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        r = mkdir(logs, 0700) < 0 ? negative_errno() : 0;
        free(logs);
        if (r < 0)
                return error_set(MSB_ERR_SYSTEM, r, "cannot create the log directory: %s",
                                 strerror(-r));
        return 0;
}

/* Step 2a: the read-only base disk. */
static int resolve_image(msb_sandbox *sb, const char *image, char **ret_base)
{
        _cleanup_free_ char *bad_path = NULL;
        struct img_dir_opts opts = {.map_owner_to_root = true};
        struct stat st;
        char *out;
        int r;

        if (streq(image, "base")) {
                r = paths_asset(ASSET_BASE_IMAGE, ret_base);
                if (r < 0)
                        return error_set(MSB_ERR_HOST_MISSING, r,
                                         "the built-in base image is missing: %s (run 'make')",
                                         *ret_base ? *ret_base : "?");
                return 0;
        }
        if (!strchr(image, '/') && !streq(image, ".") && !streq(image, ".."))
                return error_set(MSB_ERR_IMAGE_NOT_FOUND, -ENOENT,
                                 "unknown image '%s': use 'base' or a path to a root filesystem "
                                 "directory such as ./rootfs",
                                 image);
        if (stat(image, &st) < 0)
                return error_set(MSB_ERR_IMAGE_NOT_FOUND, negative_errno(), "image %s: %s", image,
                                 strerror(errno));
        r = img_dir_check_rootfs(image);
        if (r < 0)
                return error_set(MSB_ERR_IMAGE_INVALID, r, "%s is not a root filesystem (%s)",
                                 image,
                                 r == -ENOTDIR ? "not a directory"
                                               : "no /etc and no executable in /bin, /usr/bin "
                                                 "or /sbin");
        out = strdup_printf("%s/rootfs.ext4", sb->dir);
        if (!out)
                return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        r = img_ext4_from_dir(image, out, &opts, &bad_path);
        if (r < 0) {
                free(out);
                if (bad_path)
                        return error_set(MSB_ERR_IMAGE_INVALID, r, "cannot read %s: %s", bad_path,
                                         strerror(-r));
                return error_set(MSB_ERR_IMAGE_INVALID, r, "cannot build an image from %s: %s",
                                 image, strerror(-r));
        }
        *ret_base = out;
        return 0;
}

/* Step 3: which accelerator. */
static int choose_accel(msb_sandbox *sb, const msb_sandbox_config *cfg)
{
        const char *want = cfg->accel ? cfg->accel : getenv("MSB_ACCEL");
        enum vm_accel requested = VM_ACCEL_AUTO;
        struct vm_host_facts facts;
        int r;

        if (want && *want && vm_accel_from_string(want, &requested) < 0)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL,
                                 "unknown accelerator '%s' (from %s): use auto, kvm or tcg", want,
                                 cfg->accel ? "--accel" : "MSB_ACCEL");
        r = vm_host_facts_probe(&facts);
        if (r < 0)
                return error_set(MSB_ERR_SYSTEM, r, "cannot probe the host: %s", strerror(-r));
        sb->tsc_khz = facts.tsc_khz;
        r = vm_accel_decide(requested, &facts, &sb->accel, sb->accel_notice,
                            sizeof(sb->accel_notice));
        if (r < 0)
                return error_set(MSB_ERR_ACCEL_UNAVAILABLE, r, "%s", sb->accel_notice);
        return 0;
}

/* Step 5: wait for core.ready, QEMU's exit, the deadline or cancellation. */
static int wait_ready(msb_sandbox *sb, const msb_sandbox_config *cfg)
{
        uint64_t timeout_ms = cfg->boot_timeout_ms;
        uint64_t deadline;
        int r;

        if (timeout_ms == 0)
                timeout_ms = sb->accel == VM_ACCEL_KVM ? BOOT_TIMEOUT_KVM_MS : BOOT_TIMEOUT_TCG_MS;
        deadline = now_ns(CLOCK_MONOTONIC) + timeout_ms * 1000000ULL;
        for (;;) {
                struct chan_msg *m = chan_pop(sb->chan, 0);
                struct pollfd pfd[3] = {
                        {.fd = chan_fd(sb->chan), .events = POLLIN},
                        {.fd = vm_pidfd(sb->vm), .events = POLLIN},
                        {.fd = cfg->cancel_fd, .events = POLLIN},
                };
                uint64_t now;
                int status;

                if (m) {
                        r = m->msg.type == PROTO_READY ? proto_decode_ready(&m->msg, &sb->ready)
                                                       : -EBADMSG;
                        free(m);
                        if (r < 0)
                                return sandbox_fail_channel(sb, -EBADMSG);
                        chan_set_version(sb->chan, sb->ready.version);
                        return 0;
                }
                now = now_ns(CLOCK_MONOTONIC);
                if (now >= deadline) {
                        char hint[200];
                        kernel_log_hint(sb, hint, sizeof(hint));
                        return error_set(MSB_ERR_BOOT_TIMEOUT, -ETIMEDOUT,
                                         "the guest did not answer within %llu s (%s)%s%s",
                                         (unsigned long long)(timeout_ms / 1000),
                                         vm_accel_name(sb->accel), *hint ? "; kernel log: " : "",
                                         hint);
                }
                r = poll(pfd, 3, (int)MIN((deadline - now) / 1000000ULL + 1, 1000));
                if (r < 0 && errno != EINTR)
                        return error_set(MSB_ERR_SYSTEM, negative_errno(), "poll: %m");
                if (pfd[2].revents)
                        return error_set(MSB_ERR_CANCELLED, -ECANCELED, "start cancelled");
                if (pfd[0].revents) {
                        r = chan_pump(sb->chan, 0);
                        if (r < 0)
                                return sandbox_fail_channel(sb, r);
                        continue;
                }
                if (pfd[1].revents || vm_poll_exit(sb->vm, &status) > 0)
                        return sandbox_fail_channel(sb, -EPIPE);
        }
}

/* Step 4: QEMU with the agent channel. */
static int start_vm(msb_sandbox *sb, const msb_sandbox_config *cfg, const char *base,
                    const char *upper)
{
        _cleanup_free_ char *qemu = NULL, *kernel = NULL, *initramfs = NULL;
        _cleanup_free_ char *cmdline = NULL, *console = NULL, *qemu_log = NULL;
        _cleanup_close_ int guest_fd = -1;
        char vmerr[256] = "";
        struct timespec now;
        int sv[2], r;

        r = paths_qemu(&qemu);
        if (r < 0)
                return error_set(MSB_ERR_HOST_MISSING, r,
                                 "QEMU not found: %s (install the qemu-system-x86 package, or "
                                 "set MSB_QEMU)",
                                 qemu ? qemu : "qemu-system-x86_64");
        r = paths_asset(ASSET_KERNEL, &kernel);
        if (r < 0)
                return error_set(MSB_ERR_HOST_MISSING, r,
                                 "guest kernel not found: %s (run "
                                 "'make', or set MSB_KERNEL)",
                                 kernel ? kernel : "?");
        r = paths_asset(ASSET_INITRAMFS, &initramfs);
        if (r < 0)
                return error_set(MSB_ERR_HOST_MISSING, r,
                                 "initramfs not found: %s (run 'make', "
                                 "or set MSB_INITRAMFS)",
                                 initramfs ? initramfs : "?");

        clock_gettime(CLOCK_REALTIME, &now);
        cmdline = strdup_printf("msb.root=overlay msb.hostname=%s msb.time=%lld.%09ld", sb->name,
                                (long long)now.tv_sec, now.tv_nsec);
        console = strdup_printf("%s/logs/kernel.log", sb->dir);
        qemu_log = strdup_printf("%s/logs/qemu.log", sb->dir);
        if (!cmdline || !console || !qemu_log)
                return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return error_set(MSB_ERR_SYSTEM, negative_errno(), "socketpair: %m");
        guest_fd = sv[1];
        r = chan_new(sv[0], &sb->chan);
        if (r < 0) {
                safe_close(sv[0]);
                return error_set(MSB_ERR_SYSTEM, r, "agent channel: %s", strerror(-r));
        }

        struct vm_config vc = {
                .qemu = qemu,
                .kernel = kernel,
                .initramfs = initramfs,
                .cmdline_extra = cmdline,
                .memory_mib = cfg->memory_mib,
                .cpus = cfg->cpus,
                .accel = sb->accel,
                .tcg_tsc_khz = sb->tsc_khz,
                .agent_fd = guest_fd,
                .console_log = console,
                .stderr_path = qemu_log,
                .disks = {{.path = base, .read_only = true, .serial = "msb-base"},
                          {.path = upper, .read_only = false, .serial = "msb-upper"}},
                .n_disks = 2,
        };
        r = vm_start(&vc, &sb->vm, vmerr, sizeof(vmerr));
        if (r < 0)
                return error_set(r == -ENOENT ? MSB_ERR_HOST_MISSING : MSB_ERR_VM_FAILED, r,
                                 "cannot start the VM: %s", *vmerr ? vmerr : strerror(-r));
        return 0;
}

static void sandbox_free(msb_sandbox *sb)
{
        if (!sb)
                return;
        vm_free(sb->vm);
        chan_free(sb->chan);
        if (sb->dir)
                rm_rf(sb->dir);
        free(sb->dir);
        free(sb->name);
        free(sb);
}
DEFINE_FREEP(msb_sandbox, sandbox_free)

int msb_sandbox_create(const msb_sandbox_config *cfg, msb_sandbox **ret)
{
        _cleanup_(sandbox_freep) msb_sandbox *sb = NULL;
        _cleanup_free_ char *base = NULL, *upper = NULL;
        uint64_t t0 = now_ns(CLOCK_MONOTONIC);
        int r;

        sb = calloc(1, sizeof(*sb));
        if (!sb)
                return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        r = choose_accel(sb, cfg);
        if (r < 0)
                return r;
        r = make_state_dir(sb, cfg);
        if (r < 0)
                return r;
        r = resolve_image(sb, cfg->image, &base);
        if (r < 0)
                return r;
        upper = strdup_printf("%s/upper.ext4", sb->dir);
        if (!upper)
                return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        r = img_ext4_create_empty(upper, cfg->root_disk_bytes, "msb-upper");
        if (r < 0)
                return error_set(MSB_ERR_SYSTEM, r, "cannot create the root disk %s: %s", upper,
                                 strerror(-r));
        r = start_vm(sb, cfg, base, upper);
        if (r < 0)
                return r;
        r = wait_ready(sb, cfg);
        if (r < 0)
                return r;
        sb->start_ns = now_ns(CLOCK_MONOTONIC) - t0;
        log_info("sandbox %s ready in %llu ms (%s; guest: agent started at %llu ms, agent "
                 "ready at %llu ms)",
                 sb->name, (unsigned long long)(sb->start_ns / 1000000), vm_accel_name(sb->accel),
                 (unsigned long long)(sb->ready.boot_time_ns / 1000000),
                 (unsigned long long)(sb->ready.ready_time_ns / 1000000));
        *ret = TAKE_PTR(sb);
        return 0;
}

void msb_sandbox_destroy(msb_sandbox *sb)
{
        sandbox_free(sb);
}

int msb_sandbox_ping(msb_sandbox *sb, uint64_t *ret_ns)
{
        struct cbor_buf b;
        uint64_t t0 = now_ns(CLOCK_MONOTONIC);
        uint32_t id = chan_session_open(sb->chan);
        int r;

        if (id == 0)
                return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        cbor_buf_init(&b, 0);
        r = proto_encode_empty(&b, id, FRAME_SESSION_START, PROTO_PING);
        if (r >= 0)
                r = chan_send(sb->chan, &b);
        cbor_buf_free(&b);
        while (r >= 0) {
                struct chan_msg *m = chan_pop(sb->chan, id);
                if (m) {
                        bool pong = m->msg.type == PROTO_PONG;
                        free(m);
                        chan_session_close(sb->chan, id);
                        if (!pong)
                                return error_set(MSB_ERR_PROTOCOL, -EBADMSG,
                                                 "the agent did not answer ping with pong");
                        if (ret_ns)
                                *ret_ns = now_ns(CLOCK_MONOTONIC) - t0;
                        return 0;
                }
                r = chan_pump(sb->chan, -1);
                if (r == -EINTR)
                        r = 0;
        }
        chan_session_close(sb->chan, id);
        return sandbox_fail_channel(sb, r);
}
