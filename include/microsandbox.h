/* SPDX-License-Identifier: Apache-2.0 */
/**
 * DOC: microsandbox public API
 *
 * libmicrosandbox runs untrusted code in microVMs: each sandbox is a real VM
 * with its own Linux kernel, started from an image, driven through this API.
 * The `msb` CLI and the language bindings use nothing else.
 *
 * Conventions:
 *  - Handles are opaque. Every function that can fail returns an int:
 *    >= 0 on success, a negative errno value on failure. On failure,
 *    msb_errmsg() and msb_errkind() describe it (per thread, like errno;
 *    valid until the next failing call in the same thread).
 *  - Results come back through ret_* out-parameters, written only on
 *    success. Strings passed in are copied; strings returned are owned by
 *    the handle they came from unless documented otherwise.
 *  - The library never prints, never exits and never installs signal
 *    handlers. It is safe to use different handles from different threads;
 *    one handle must not be used by two threads at once.
 *
 * This header is strict ISO C11 and compiles as C++.
 */
#ifndef MICROSANDBOX_H
#define MICROSANDBOX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MSB_API_VERSION 1

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/**
 * enum msb_error_kind - what kind of failure the last failing call met.
 * The CLI maps each kind to its own exit code (docs/cli.md).
 */
typedef enum msb_error_kind {
        MSB_ERR_NONE = 0,
        MSB_ERR_INVALID_ARGUMENT,  /* a bad option, value or name */
        MSB_ERR_IMAGE_NOT_FOUND,   /* the image reference matches nothing */
        MSB_ERR_IMAGE_INVALID,     /* not a root filesystem, unreadable file in it */
        MSB_ERR_HOST_MISSING,      /* QEMU, the guest kernel or initramfs is missing */
        MSB_ERR_ACCEL_UNAVAILABLE, /* the requested accelerator cannot be used */
        MSB_ERR_BOOT_TIMEOUT,      /* the guest never answered */
        MSB_ERR_VM_FAILED,         /* the VM exited or crashed */
        MSB_ERR_PROTOCOL,          /* the guest sent something malformed */
        MSB_ERR_CANCELLED,         /* the cancel fd became readable */
        MSB_ERR_SYSTEM,            /* a host system call failed */
} msb_error_kind;

/**
 * msb_errmsg() - one line describing the last failure in this thread.
 *
 * Return: a message such as "guest kernel not found: /x/vmlinux (run 'make')";
 * "" if nothing failed yet. Owned by the library; valid until the next
 * failing call in this thread.
 */
const char *msb_errmsg(void);

/**
 * msb_errkind() - the kind of the last failure in this thread.
 */
msb_error_kind msb_errkind(void);

/**
 * msb_version() - the library version, e.g. "0.1.0".
 */
const char *msb_version(void);

/**
 * enum msb_log_level - how much the library says through a log handler.
 */
typedef enum msb_log_level {
        MSB_LOG_ERROR = 0,
        MSB_LOG_WARN = 1,
        MSB_LOG_INFO = 2,
        MSB_LOG_DEBUG = 3,
} msb_log_level;

typedef void (*msb_log_fn)(msb_log_level level, const char *message, void *userdata);

/**
 * msb_set_log_handler() - where the library's diagnostics go (it never
 * prints). Messages up to max_level are passed to fn; NULL turns logging
 * off (the default). Process-wide: call it once, before other threads use
 * the library.
 */
void msb_set_log_handler(msb_log_fn fn, msb_log_level max_level, void *userdata);

/* ------------------------------------------------------------------------ */
/* Sandbox configuration                                                    */
/* ------------------------------------------------------------------------ */

typedef struct msb_sandbox_config msb_sandbox_config;

/**
 * msb_sandbox_config_new() - a configuration with the defaults:
 * image "base", 1 vCPU, 512 MiB, 4 GiB root disk, accelerator "auto"
 * (or $MSB_ACCEL), a generated name.
 *
 * Return: the configuration, or NULL when out of memory.
 */
msb_sandbox_config *msb_sandbox_config_new(void);

/** msb_sandbox_config_free() - frees cfg; NULL is allowed. */
void msb_sandbox_config_free(msb_sandbox_config *cfg);

/**
 * msb_sandbox_config_set_image() - what the root filesystem comes from.
 * @image: "base" (the built-in busybox image) or a path to a host directory
 *         holding a root filesystem ("./rootfs", "/srv/root").
 */
int msb_sandbox_config_set_image(msb_sandbox_config *cfg, const char *image);

/**
 * msb_sandbox_config_set_name() - the sandbox name: 1-128 characters of
 * [A-Za-z0-9_.-], starting with a letter or digit.
 */
int msb_sandbox_config_set_name(msb_sandbox_config *cfg, const char *name);

/** msb_sandbox_config_set_memory_mib() - guest memory, 64 MiB to 1 TiB. */
int msb_sandbox_config_set_memory_mib(msb_sandbox_config *cfg, uint32_t mib);

/** msb_sandbox_config_set_cpus() - number of vCPUs, 1 to 64. */
int msb_sandbox_config_set_cpus(msb_sandbox_config *cfg, uint32_t cpus);

/**
 * msb_sandbox_config_set_accel() - "auto" (KVM when the CPU has hardware
 * virtualization and /dev/kvm works, else TCG), "kvm" or "tcg".
 */
int msb_sandbox_config_set_accel(msb_sandbox_config *cfg, const char *accel);

/**
 * msb_sandbox_config_set_root_disk_size() - size of the writable layer
 * over the image (a sparse disk), 64 MiB to 16 TiB.
 */
int msb_sandbox_config_set_root_disk_size(msb_sandbox_config *cfg, uint64_t bytes);

/**
 * msb_sandbox_config_set_boot_timeout_ms() - how long to wait for the guest
 * agent; 0 picks the default, which scales with the accelerator.
 */
int msb_sandbox_config_set_boot_timeout_ms(msb_sandbox_config *cfg, uint64_t ms);

/**
 * msb_sandbox_config_set_cancel_fd() - while msb_sandbox_create() waits,
 * the fd becoming readable aborts the start (MSB_ERR_CANCELLED) and
 * everything started so far is torn down. -1 (the default) disables it. The
 * fd is not read or closed. Useful with a signalfd or an eventfd.
 */
int msb_sandbox_config_set_cancel_fd(msb_sandbox_config *cfg, int fd);

/* ------------------------------------------------------------------------ */
/* Sandboxes                                                                */
/* ------------------------------------------------------------------------ */

typedef struct msb_sandbox msb_sandbox;

/**
 * msb_sandbox_create() - boots a sandbox and waits until its agent is ready.
 *
 * On failure nothing is left behind: no process, no file.
 */
int msb_sandbox_create(const msb_sandbox_config *cfg, msb_sandbox **ret);

/**
 * msb_sandbox_destroy() - stops the VM at once and removes the sandbox's
 * files; frees sb. NULL is allowed.
 */
void msb_sandbox_destroy(msb_sandbox *sb);

/** msb_sandbox_name() - the sandbox name (owned by sb). */
const char *msb_sandbox_name(const msb_sandbox *sb);

/**
 * struct msb_boot_info - how a sandbox started.
 * @accel:        "kvm" or "tcg".
 * @accel_notice: why the accelerator was chosen when it is not the one
 *                asked for or expected (e.g. the TCG fallback), else "".
 * @start_ns:     wall time from msb_sandbox_create() to the agent ready.
 * @guest_boot_ns: guest time from kernel start to the agent started.
 * @guest_ready_ns: guest time from kernel start to the agent ready.
 * Strings are owned by the sandbox.
 */
typedef struct msb_boot_info {
        const char *accel;
        const char *accel_notice;
        uint64_t start_ns;
        uint64_t guest_boot_ns;
        uint64_t guest_ready_ns;
} msb_boot_info;

int msb_sandbox_boot_info(const msb_sandbox *sb, msb_boot_info *ret);

/**
 * msb_sandbox_ping() - a protocol round trip to the agent.
 * @ret_ns: the round-trip time in nanoseconds (may be NULL).
 */
int msb_sandbox_ping(msb_sandbox *sb, uint64_t *ret_ns);

/* ------------------------------------------------------------------------ */
/* Running commands                                                         */
/* ------------------------------------------------------------------------ */

typedef struct msb_exec_config msb_exec_config;

/** msb_exec_config_new() - an empty command configuration, or NULL (OOM). */
msb_exec_config *msb_exec_config_new(void);
void msb_exec_config_free(msb_exec_config *cfg);

/** msb_exec_config_set_argv() - the command and its arguments (argc >= 1). */
int msb_exec_config_set_argv(msb_exec_config *cfg, size_t argc, const char *const *argv);

/**
 * msb_exec_config_add_env() - one "KEY=VALUE" for the command (a later
 * value for the same KEY wins). PATH, HOME and TERM get defaults in the
 * guest when absent.
 */
int msb_exec_config_add_env(msb_exec_config *cfg, const char *key_value);

/** msb_exec_config_set_cwd() - working directory (default: home, or /). */
int msb_exec_config_set_cwd(msb_exec_config *cfg, const char *cwd);

/**
 * msb_exec_config_set_user() - "name", "uid", "uid:gid" or "name:group",
 * resolved from the guest's /etc/passwd and /etc/group. Default: root.
 */
int msb_exec_config_set_user(msb_exec_config *cfg, const char *user);

/**
 * msb_exec_config_set_tty() - run on a pseudo-terminal of rows x cols
 * (stdout and stderr then arrive merged, as stdout).
 */
int msb_exec_config_set_tty(msb_exec_config *cfg, int tty, uint16_t rows, uint16_t cols);

/**
 * msb_exec_config_set_stdin() - whether the caller will send stdin
 * (msb_exec_write_stdin()); otherwise the command reads /dev/null.
 */
int msb_exec_config_set_stdin(msb_exec_config *cfg, int enabled);

/**
 * msb_exec_config_add_rlimit() - a resource limit "NAME=SOFT[:HARD]"
 * ("nofile=1024", "nproc=512:1024", "core=unlimited"). Names: cpu fsize
 * data stack core rss nproc nofile memlock as locks sigpending msgqueue
 * nice rtprio rttime.
 */
int msb_exec_config_add_rlimit(msb_exec_config *cfg, const char *spec);

/**
 * msb_exec_config_set_timeout_ms() - kill the command (SIGKILL to its
 * process group) after ms milliseconds; 0 (default) means no limit. The
 * exit event then reports timed_out.
 */
int msb_exec_config_set_timeout_ms(msb_exec_config *cfg, uint64_t ms);

typedef struct msb_exec msb_exec;

/** msb_exec_start() - starts a command in the sandbox. */
int msb_exec_start(msb_sandbox *sb, const msb_exec_config *cfg, msb_exec **ret);

/**
 * enum msb_exec_event_type - what msb_exec_next_event() returned.
 * EXITED and FAILED are final: no event follows them.
 */
typedef enum msb_exec_event_type {
        MSB_EXEC_EVENT_STARTED = 1,
        MSB_EXEC_EVENT_STDOUT,
        MSB_EXEC_EVENT_STDERR,
        MSB_EXEC_EVENT_EXITED,
        MSB_EXEC_EVENT_FAILED,
} msb_exec_event_type;

/** enum msb_exec_failure - why a command could not start. */
typedef enum msb_exec_failure {
        MSB_EXEC_FAIL_NONE = 0,
        MSB_EXEC_FAIL_NOT_FOUND,         /* no such command (shell: 127) */
        MSB_EXEC_FAIL_PERMISSION_DENIED, /* not permitted (126) */
        MSB_EXEC_FAIL_NOT_EXECUTABLE,    /* not an executable format (126) */
        MSB_EXEC_FAIL_BAD_CWD,
        MSB_EXEC_FAIL_BAD_USER,
        MSB_EXEC_FAIL_RESOURCE_LIMIT,
        MSB_EXEC_FAIL_OTHER,
} msb_exec_failure;

/**
 * struct msb_exec_event - one event of a running command.
 * @type:      the event.
 * @pid:       STARTED: the guest pid.
 * @data/@len: STDOUT/STDERR: the bytes (valid until the next call on the exec).
 * @exit_code: EXITED: the exit status, or -1 when killed by a signal.
 * @signal:    EXITED: the signal that killed it, else 0.
 * @timed_out: EXITED: 1 when the timeout killed it.
 * @failure:   FAILED: why.
 * @message:   FAILED: a human-readable line (valid until the next call).
 */
typedef struct msb_exec_event {
        msb_exec_event_type type;
        uint32_t pid;
        const uint8_t *data;
        size_t len;
        int exit_code;
        int signal;
        int timed_out;
        msb_exec_failure failure;
        const char *message;
} msb_exec_event;

/**
 * msb_exec_fd() - an fd that becomes readable when msb_exec_next_event()
 * may have something; for poll()/epoll() loops. Owned by the sandbox.
 */
int msb_exec_fd(const msb_exec *ex);

/**
 * msb_exec_wait_hint_ms() - the longest a poll()-based caller may sleep
 * before calling msb_exec_next_event() again, so that library deadlines
 * (the command's timeout) are kept: milliseconds, or -1 for no limit.
 *
 * A poll loop first drains events with msb_exec_next_event(ex, &ev, 0)
 * until it returns 0 (events may already be queued, which the fd does not
 * show), then polls msb_exec_fd() with this timeout.
 */
int msb_exec_wait_hint_ms(const msb_exec *ex);

/**
 * msb_exec_next_event() - waits up to timeout_ms (-1: forever, 0: poll)
 * for the next event.
 *
 * Return: 1 with *ret filled, 0 on timeout, negative errno on failure
 * (-EPIPE after the final event was already returned).
 */
int msb_exec_next_event(msb_exec *ex, msb_exec_event *ret, int timeout_ms);

/**
 * msb_exec_write_stdin() - sends up to len bytes of stdin. Bytes in flight
 * are bounded per command; when the guest has not consumed them yet this
 * accepts fewer bytes, possibly 0. Never blocks for the guest.
 *
 * Return: the number of bytes accepted, or a negative errno.
 */
int msb_exec_write_stdin(msb_exec *ex, const void *data, size_t len);

/**
 * msb_exec_stdin_room() - how many bytes msb_exec_write_stdin() would
 * accept now.
 */
size_t msb_exec_stdin_room(const msb_exec *ex);

/** msb_exec_close_stdin() - end of input (the command reads EOF). */
int msb_exec_close_stdin(msb_exec *ex);

/** msb_exec_signal() - sends a signal to the command's process group. */
int msb_exec_signal(msb_exec *ex, int signal);

/** msb_exec_resize() - resizes the command's terminal (tty mode). */
int msb_exec_resize(msb_exec *ex, uint16_t rows, uint16_t cols);

/** msb_exec_free() - frees ex; a command still running keeps running. */
void msb_exec_free(msb_exec *ex);

/**
 * struct msb_exec_output - the collected result of msb_exec_collect().
 * Free the buffers with msb_exec_output_free().
 */
typedef struct msb_exec_output {
        int exit_code;
        int signal;
        int timed_out;
        msb_exec_failure failure;
        char *message;
        uint8_t *out;
        size_t out_len;
        uint8_t *err;
        size_t err_len;
} msb_exec_output;

/**
 * msb_exec_collect() - runs a command to completion, feeding it stdin_data
 * (may be NULL) and collecting its output in memory.
 */
int msb_exec_collect(msb_sandbox *sb, const msb_exec_config *cfg, const void *stdin_data,
                     size_t stdin_len, msb_exec_output *ret);
void msb_exec_output_free(msb_exec_output *out);

/* ------------------------------------------------------------------------ */
/* Host checks                                                              */
/* ------------------------------------------------------------------------ */

/**
 * struct msb_doctor_check - one line of the host report.
 * @name:   what was checked ("qemu", "kernel", "kvm", ...).
 * @ok:     1 when it is fine, 0 when it is a problem, -1 for information.
 * @detail: what was found, with a hint when it is a problem.
 */
typedef struct msb_doctor_check {
        char name[32];
        int ok;
        char detail[256];
} msb_doctor_check;

/**
 * msb_doctor() - checks what sandboxes need on this host (QEMU, guest
 * kernel, initramfs, base image, accelerator) into checks[max].
 *
 * Return: the number of checks written.
 */
int msb_doctor(msb_doctor_check *checks, size_t max);

#ifdef __cplusplus
}
#endif

#endif /* MICROSANDBOX_H */
