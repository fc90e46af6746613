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
        MSB_ERR_NOT_FOUND,         /* no sandbox of that name */
        MSB_ERR_CONFLICT,          /* the name is taken, or the sandbox is in the way */
        MSB_ERR_NOT_RUNNING,       /* the sandbox exists but is not running */
        MSB_ERR_REGISTRY,          /* a registry could not be reached, or refused us */
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

/**
 * msb_sandbox_config_set_ephemeral() - an ephemeral sandbox is removed when
 * the handle that created it is destroyed or closed, or when the process
 * holding it dies (like `docker run --rm`). Default: persistent.
 */
int msb_sandbox_config_set_ephemeral(msb_sandbox_config *cfg, int ephemeral);

/**
 * msb_sandbox_config_set_idle_timeout_ms() - stop the sandbox after ms
 * milliseconds with no client connected and no command running (0: never).
 */
int msb_sandbox_config_set_idle_timeout_ms(msb_sandbox_config *cfg, uint64_t ms);

/**
 * msb_sandbox_config_set_max_duration_ms() - stop the sandbox ms
 * milliseconds after each start (0: no limit).
 */
int msb_sandbox_config_set_max_duration_ms(msb_sandbox_config *cfg, uint64_t ms);

/**
 * msb_sandbox_config_add_label() - a "KEY=VALUE" label (KEY alone means an
 * empty value) for listing and filtering; a later value for KEY wins.
 */
int msb_sandbox_config_add_label(msb_sandbox_config *cfg, const char *key_value);

/** enum msb_net_action - what a network rule or default does. */
typedef enum msb_net_action {
        MSB_NET_DEFAULT = -1, /* the profile's choice */
        MSB_NET_DENY = 0,
        MSB_NET_ALLOW = 1,
} msb_net_action;

/**
 * struct msb_network - the sandbox's network and its policy.
 *
 * The guest gets one NIC served by a userspace gateway in the sandbox's
 * supervisor: flows are re-originated from ordinary host sockets, so nothing
 * needs root and every flow obeys the policy (docs/network.md).
 *
 * @enabled:         0: no NIC at all (--no-net).
 * @profile:         "public" (NULL; the default: the internet and DNS, but not
 *                   private networks, the host, loopback, link-local, cloud
 *                   metadata or multicast), "none", "all", or groups joined
 *                   by commas: "public,private,host".
 * @default_egress:  what flows no rule matches get (MSB_NET_DEFAULT: the
 *                   profile's).
 * @rules:           "allow|deny[:egress|ingress]@TARGET[:tcp|udp|icmp[:PORT|LO-HI]]"
 *                   with TARGET an IP, a CIDR, a domain, "*.suffix" or a
 *                   group (public, private, loopback, link-local, metadata,
 *                   multicast, host, any). The most specific matching rule
 *                   decides; deny wins a tie.
 * @dns_nameservers: upstream resolvers for the gateway's DNS ("IP",
 *                   "IP:PORT", "[IPv6]:PORT"); none: the host's.
 * @ports:           published ports "[BIND:]HOST:GUEST[/udp]" (bind
 *                   127.0.0.1 by default).
 * @max_connections: concurrent TCP connections (0: 256).
 * Strings are copied by msb_sandbox_config_set_network().
 */
typedef struct msb_network {
        int enabled;
        const char *profile;
        msb_net_action default_egress;
        const char *const *rules;
        size_t n_rules;
        const char *const *dns_nameservers;
        size_t n_dns_nameservers;
        const char *const *ports;
        size_t n_ports;
        uint32_t max_connections;
} msb_network;

/** msb_network_init() - the defaults: enabled, profile "public", no rules. */
void msb_network_init(msb_network *net);

/**
 * msb_sandbox_config_set_network() - checks and sets the network; a bad
 * rule, nameserver or port fails here (MSB_ERR_INVALID_ARGUMENT, naming it).
 */
int msb_sandbox_config_set_network(msb_sandbox_config *cfg, const msb_network *net);

typedef struct msb_pull_options msb_pull_options;

/**
 * msb_sandbox_config_set_pull_options() - how a registry image is fetched
 * at create: the policy (default: pull if missing), progress callback,
 * credentials... (see Images). The options are borrowed: they must live
 * until msb_sandbox_create() returns. NULL: the defaults.
 */
int msb_sandbox_config_set_pull_options(msb_sandbox_config *cfg, const msb_pull_options *opts);

/**
 * msb_sandbox_config_set_replace() - when a sandbox with the same name
 * exists, stop and remove it first instead of failing (MSB_ERR_CONFLICT).
 */
int msb_sandbox_config_set_replace(msb_sandbox_config *cfg, int replace);

/* ------------------------------------------------------------------------ */
/* Sandboxes                                                                */
/* ------------------------------------------------------------------------ */

typedef struct msb_sandbox msb_sandbox;

/**
 * msb_sandbox_create() - creates a sandbox, boots it in the background and
 * waits until its agent is ready. The sandbox is run by its own supervisor
 * process and keeps running after sb is closed (unless it is ephemeral).
 *
 * On failure nothing is left behind: no process, no file, no record.
 */
int msb_sandbox_create(const msb_sandbox_config *cfg, msb_sandbox **ret);

/**
 * msb_sandbox_open() - connects to the running sandbox called name.
 * MSB_ERR_NOT_FOUND if there is none, MSB_ERR_NOT_RUNNING if it is stopped.
 */
int msb_sandbox_open(const char *name, msb_sandbox **ret);

/**
 * msb_sandbox_close() - disconnects and frees sb; commands it started end
 * (unless started detached) and the sandbox keeps running, except an
 * ephemeral one, which is stopped and removed. NULL is allowed.
 */
void msb_sandbox_close(msb_sandbox *sb);

/**
 * msb_sandbox_destroy() - stops the sandbox at once (no clean shutdown),
 * removes all of it and frees sb. NULL is allowed.
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

/**
 * msb_sandbox_start() - boots the stopped sandbox called name (its writable
 * disk kept from before) and waits until it is ready. Starting a running
 * sandbox succeeds and does nothing. cancel_fd as in
 * msb_sandbox_config_set_cancel_fd() (-1: none).
 */
int msb_sandbox_start(const char *name, int cancel_fd);

/**
 * msb_sandbox_stop() - shuts the sandbox down cleanly (the guest syncs and
 * unmounts), killing it if it has not stopped after timeout_ms (0: kill at
 * once). Stopping a stopped sandbox succeeds.
 */
int msb_sandbox_stop(const char *name, uint64_t timeout_ms);

/**
 * msb_sandbox_remove() - removes a stopped sandbox: its disks, logs,
 * sockets and record. A running one is refused (MSB_ERR_CONFLICT) unless
 * force is set, which kills it first.
 */
int msb_sandbox_remove(const char *name, int force);

/** struct msb_label - one label of a sandbox. */
typedef struct msb_label {
        char *key;
        char *value;
} msb_label;

/**
 * struct msb_sandbox_info - what `msb ls` shows about a sandbox.
 * @image:      the image as it was named at create ("alpine", "base").
 * @status:     "created", "starting", "running", "stopping", "stopped" or
 *              "crashed".
 * @end_reason: how the last run ended: "completed", "stopped", "killed",
 *              "idle_timeout", "max_duration", "crashed"; "" while running
 *              or never run.
 * Times are Unix milliseconds (0: never). Free with
 * msb_sandbox_info_list_free().
 */
typedef struct msb_sandbox_info {
        char *name;
        char *image;
        char *status;
        char *end_reason;
        int ephemeral;
        int64_t created_at;
        int64_t started_at;
        int64_t ended_at;
        int supervisor_pid;
        msb_label *labels;
        size_t n_labels;
} msb_sandbox_info;

/**
 * msb_sandbox_list() - every sandbox, oldest first, optionally only those
 * carrying all the given labels ("KEY=VALUE" or "KEY").
 */
int msb_sandbox_list(const char *const *label_filters, size_t n_filters, msb_sandbox_info **ret,
                     size_t *ret_count);

/** msb_sandbox_get_info() - one sandbox (a list of one, for the free). */
int msb_sandbox_get_info(const char *name, msb_sandbox_info **ret);

void msb_sandbox_info_list_free(msb_sandbox_info *list, size_t count);

/**
 * msb_sandbox_inspect() - everything known about a sandbox as a JSON
 * document: its configuration, status, runs, paths. Free with free().
 */
int msb_sandbox_inspect(const char *name, char **ret_json);

/* ------------------------------------------------------------------------ */
/* Logs                                                                     */
/* ------------------------------------------------------------------------ */

/** enum msb_log_source - where a log entry came from (a bit mask). */
typedef enum msb_log_source {
        MSB_LOG_SOURCE_STDOUT = 1,
        MSB_LOG_SOURCE_STDERR = 2,
        MSB_LOG_SOURCE_SYSTEM = 4, /* the kernel log and the supervisor's events */
        MSB_LOG_SOURCE_ALL = 7,
} msb_log_source;

/**
 * struct msb_logs_options - which entries msb_logs_open() yields.
 * @sources:  a mask of msb_log_source (0: stdout and stderr).
 * @tail:     only the last tail entries (0: all).
 * @since_ms: only entries at or after this Unix time in ms (0: all).
 * @follow:   keep waiting for new entries.
 */
typedef struct msb_logs_options {
        unsigned sources;
        size_t tail;
        int64_t since_ms;
        int follow;
} msb_logs_options;

/**
 * struct msb_log_entry - one entry; pointers valid until the next call.
 * @ts_ms:   Unix time in ms (0 when the source has no clock, e.g. early
 *           kernel lines).
 * @source:  one msb_log_source bit.
 * @session: the exec session for command output, else 0.
 * @data/@len: the bytes (a line of text for system entries, with its
 *           newline).
 */
typedef struct msb_log_entry {
        int64_t ts_ms;
        msb_log_source source;
        uint32_t session;
        const uint8_t *data;
        size_t len;
} msb_log_entry;

typedef struct msb_logs msb_logs;

int msb_logs_open(const char *name, const msb_logs_options *opts, msb_logs **ret);

/**
 * msb_logs_next() - the next entry: 1 and *ret filled, 0 at the end (or,
 * when following, after timeout_ms without news; -1 waits forever), or a
 * negative errno.
 */
int msb_logs_next(msb_logs *logs, msb_log_entry *ret, int timeout_ms);
void msb_logs_close(msb_logs *logs);

/* ------------------------------------------------------------------------ */
/* Running commands                                                         */
/* ------------------------------------------------------------------------ */

typedef struct msb_exec_config msb_exec_config;

/** msb_exec_config_new() - an empty command configuration, or NULL (OOM). */
msb_exec_config *msb_exec_config_new(void);
void msb_exec_config_free(msb_exec_config *cfg);

/**
 * msb_exec_config_set_argv() - the command and its arguments (argc >= 1);
 * with msb_exec_config_set_image_command() they are the arguments that
 * follow the entrypoint.
 */
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
 * msb_exec_config_set_image_command() - build the command the way `docker
 * run` does from the sandbox image's Entrypoint and Cmd: the entrypoint
 * (or msb_exec_config_set_entrypoint()'s), followed by the arguments of
 * msb_exec_config_set_argv(), or by the image's Cmd when there are none
 * (an overridden entrypoint drops Cmd). Without it (the default, like
 * `docker exec`) argv is the whole command. The image's Env, WorkingDir and
 * User apply to every command either way, under the command's own.
 */
int msb_exec_config_set_image_command(msb_exec_config *cfg, int enable);

/** msb_exec_config_set_entrypoint() - replaces the image's Entrypoint. */
int msb_exec_config_set_entrypoint(msb_exec_config *cfg, const char *entrypoint);

/**
 * msb_exec_config_set_detached() - the command keeps running when the
 * client that started it disconnects (its output still goes to the
 * sandbox's log). Default: it is killed then.
 */
int msb_exec_config_set_detached(msb_exec_config *cfg, int detached);

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
/* Images                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * OCI images from registries, archives and host directories, kept in
 * $MSB_HOME/cache (content-addressed) and indexed in the state database.
 * A reference is Docker-style: "alpine", "alpine:3.19", "ghcr.io/o/i:tag",
 * "localhost:5000/x", "name@sha256:...". Short names mean Docker Hub
 * ("alpine" is docker.io/library/alpine:latest). Every image is for
 * linux/amd64; its layers are flattened into one read-only ext4 root disk,
 * shared by all sandboxes of the image. Strings and arrays returned by
 * these functions are the caller's, to free as documented.
 */

/** enum msb_pull_policy - when msb_image_resolve() contacts the registry. */
typedef enum msb_pull_policy {
        MSB_PULL_IF_MISSING = 0, /* only when the image is not in the cache (default) */
        MSB_PULL_ALWAYS,         /* always ask the registry for the current manifest */
        MSB_PULL_NEVER,          /* never: a missing image is MSB_ERR_IMAGE_NOT_FOUND */
} msb_pull_policy;

/** enum msb_pull_phase - what a progress event reports. */
typedef enum msb_pull_phase {
        MSB_PULL_RESOLVED = 1, /* the manifest is known: n_layers, digest */
        MSB_PULL_LAYER,        /* layer: done of total bytes downloaded */
        MSB_PULL_LAYER_DONE,   /* layer downloaded, or found in the cache (cached) */
        MSB_PULL_MATERIALIZE,  /* layer: done of total bytes written into the root disk */
        MSB_PULL_COMPLETE,     /* everything is in place */
} msb_pull_phase;

/**
 * struct msb_pull_event - one progress report of a pull.
 * @ref:      the canonical reference being pulled.
 * @digest:   the layer's digest, or the manifest's (RESOLVED, COMPLETE).
 * @layer:    0-based index of the layer; @n_layers: how many there are.
 * @done, @total: bytes (compressed) of the layer.
 * @cached:   LAYER_DONE: 1 when the layer was already in the cache.
 * Valid during the callback only.
 */
typedef struct msb_pull_event {
        msb_pull_phase phase;
        const char *ref;
        const char *digest;
        size_t layer;
        size_t n_layers;
        uint64_t done;
        uint64_t total;
        int cached;
} msb_pull_event;

typedef void (*msb_pull_progress_fn)(const msb_pull_event *ev, void *userdata);

/** msb_pull_options_new() - defaults: if-missing, TLS verified, 30 s stall timeout. */
msb_pull_options *msb_pull_options_new(void);
void msb_pull_options_free(msb_pull_options *opts);
int msb_pull_options_set_policy(msb_pull_options *opts, msb_pull_policy policy);
/** msb_pull_options_set_progress() - called from the pulling thread. */
int msb_pull_options_set_progress(msb_pull_options *opts, msb_pull_progress_fn fn, void *userdata);
/**
 * msb_pull_options_set_insecure() - allow plain HTTP and unverified TLS for
 * the registry (registries on localhost always may use plain HTTP).
 */
int msb_pull_options_set_insecure(msb_pull_options *opts, int insecure);
/** msb_pull_options_set_ca_certs() - a PEM bundle of extra CAs to trust. */
int msb_pull_options_set_ca_certs(msb_pull_options *opts, const char *pem_path);
/** msb_pull_options_set_timeout_ms() - fail when the registry sends nothing for ms. */
int msb_pull_options_set_timeout_ms(msb_pull_options *opts, uint64_t ms);
/** msb_pull_options_set_credentials() - instead of the stored ones (msb_registry_login()). */
int msb_pull_options_set_credentials(msb_pull_options *opts, const char *username,
                                     const char *password);
/** msb_pull_options_set_cancel_fd() - readable: abort with MSB_ERR_CANCELLED. -1: none. */
int msb_pull_options_set_cancel_fd(msb_pull_options *opts, int fd);
/**
 * msb_pull_options_set_limits() - caps against hostile images: entries in
 * one image, bytes of one file, bytes of all files; 0 keeps a default
 * (4 Mi entries, 64 GiB, 256 GiB). Over a cap, the pull fails with
 * MSB_ERR_IMAGE_INVALID.
 */
int msb_pull_options_set_limits(msb_pull_options *opts, uint64_t max_entries,
                                uint64_t max_file_bytes, uint64_t max_total_bytes);

/**
 * msb_image_pull() - downloads an image (the layers the cache lacks) and
 * builds its root disk. Two processes pulling the same image share the
 * work. A failed pull leaves nothing half-written; the next one resumes
 * interrupted downloads.
 * @opts: may be NULL (defaults; the policy is ignored: a pull always asks).
 * @ret_digest: the manifest digest (free()), may be NULL.
 */
int msb_image_pull(const char *ref, const msb_pull_options *opts, char **ret_digest);

/**
 * struct msb_image_config - what an image says about running it.
 * @ref:        the canonical reference ("docker.io/library/alpine:latest").
 * @digest:     the manifest digest.
 * @pinned_ref: "registry/repository@digest": the exact image, whatever the
 *              tag points at later (what a sandbox should record).
 * @env:        "KEY=VALUE" entries (Env); @entrypoint, @cmd: argv arrays;
 *              NULL with count 0 when the image sets none.
 * @working_dir, @user: NULL when unset.
 * Free with msb_image_config_free().
 */
typedef struct msb_image_config {
        char *ref;
        char *digest;
        char *pinned_ref;
        char **env;
        size_t n_env;
        char **entrypoint;
        size_t n_entrypoint;
        char **cmd;
        size_t n_cmd;
        char *working_dir;
        char *user;
} msb_image_config;

void msb_image_config_free(msb_image_config *cfg);

/**
 * msb_image_resolve() - the root disk and config of an image, pulling it
 * per the policy of opts (NULL: if-missing) and building the root disk if
 * the cache lacks it.
 * @ret_disk_path: the read-only ext4 root disk (free()); attach it
 *                 read-only, it is shared.
 * @ret_config:    may be NULL.
 */
int msb_image_resolve(const char *ref, const msb_pull_options *opts, char **ret_disk_path,
                      msb_image_config **ret_config);

/**
 * struct msb_image_info - one line of msb_image_list().
 * @ref:        canonical reference, NULL for an untagged image.
 * @repository: "docker.io/library/alpine" (NULL when untagged).
 * @tag:        "latest", NULL when untagged or pinned by digest.
 * @digest:     the manifest digest.
 * @size:       compressed size (manifest, config and layers).
 * @disk_size:  bytes the root disk takes on the host, 0 when not built.
 * @created_ms: when the image was built (its config), 0 when unknown.
 * @added_ms:   when the reference was pulled, loaded or imported.
 */
typedef struct msb_image_info {
        char *ref;
        char *repository;
        char *tag;
        char *digest;
        uint64_t size;
        uint64_t disk_size;
        int64_t created_ms;
        int64_t added_ms;
} msb_image_info;

/** msb_image_list() - every image, newest first; free with msb_image_list_free(). */
int msb_image_list(msb_image_info **ret, size_t *ret_n);
void msb_image_list_free(msb_image_info *list, size_t n);

/**
 * msb_image_inspect() - a JSON object describing a local image: references,
 * digest, sizes, platform, config (Env, Entrypoint, Cmd, WorkingDir,
 * User), layers, root disk path, and the manifest and config documents as
 * stored. @ret_json: free().
 */
int msb_image_inspect(const char *ref, char **ret_json);

/**
 * msb_image_remove() - removes a reference ("sha256:..." removes every
 * reference of that manifest) and whatever only it used from the cache.
 * Refused (MSB_ERR_CONFLICT) while a sandbox uses the image, unless force.
 */
int msb_image_remove(const char *ref, int force);

/**
 * msb_image_prune() - removes untagged images no sandbox uses, blobs no
 * image uses, and leftovers of interrupted pulls. Waits for running pulls.
 * @ret_freed: bytes freed on the host (may be NULL).
 */
int msb_image_prune(uint64_t *ret_freed);

/**
 * msb_image_import() - an image of one layer from a root filesystem: a
 * host directory or a tar file (plain, gzip or zstd), like docker import.
 * Files the caller owns become root's (when the caller is not root).
 * @tag: the reference to give it, e.g. "myimage:1" (required).
 * @ret_digest: may be NULL; free().
 */
int msb_image_import(const char *path, const char *tag, char **ret_digest);

/** enum msb_archive_format - the layout of msb_image_save()'s archive. */
typedef enum msb_archive_format {
        MSB_ARCHIVE_DOCKER = 0, /* docker save: manifest.json, uncompressed layers */
        MSB_ARCHIVE_OCI,        /* OCI image layout: index.json, blobs/sha256/ */
} msb_archive_format;

/** msb_image_save() - writes the images as one tar archive to fd (not closed). */
int msb_image_save(const char *const *refs, size_t n, msb_archive_format format, int fd);

/**
 * msb_image_load() - reads an archive (docker save or an OCI layout, plain,
 * gzip or zstd) from fd, a file or a pipe, and adds its images.
 * @ret_refs: what was loaded: references, or digests of untagged images
 *            (free with msb_strv_free()); may be NULL.
 */
int msb_image_load(int fd, char ***ret_refs, size_t *ret_n);

/** msb_strv_free() - frees a NULL-terminated array of strings; NULL is allowed. */
void msb_strv_free(char **v);

/**
 * msb_registry_login() - stores credentials for a registry ("docker.io",
 * "ghcr.io", "localhost:5000") in $MSB_HOME/auth.json (mode 0600).
 * @verify: when not NULL, the credentials are first checked against the
 *          registry with these options (insecure, CA, timeout).
 */
int msb_registry_login(const char *registry, const char *username, const char *password,
                       const msb_pull_options *verify);

/** msb_registry_logout() - forgets them (MSB_ERR_NOT_FOUND when there were none). */
int msb_registry_logout(const char *registry);

/**
 * msb_registry_list() - registries with stored credentials and their user
 * names, two arrays of n (free each with msb_strv_free()).
 */
int msb_registry_list(char ***ret_registries, char ***ret_users, size_t *ret_n);

/* ------------------------------------------------------------------------ */
/* Files                                                                    */
/* ------------------------------------------------------------------------ */

/*
 * Files inside a running sandbox, through its guest agent (as root in the
 * guest). Guest paths are absolute, at most 4095 bytes; files stream in
 * chunks, never whole in memory unless a call says so.
 *
 * Errors:
 *  - a bad argument (a relative or too long guest path, a mode above
 *    07777): MSB_ERR_INVALID_ARGUMENT, -EINVAL or -ENAMETOOLONG;
 *  - what the guest's file system refuses: the guest's errno, negated
 *    (-ENOENT, -EEXIST, -ENOTDIR, -EISDIR, -ENOTEMPTY, -EACCES, -ENOSPC...),
 *    with MSB_ERR_SYSTEM and a message naming NAME:/path, e.g.
 *    "stat web:/etc/nope: No such file or directory";
 *  - a host file error during a copy: -errno, MSB_ERR_SYSTEM, the host path;
 *  - a guest that breaks the protocol: MSB_ERR_PROTOCOL; the VM gone:
 *    MSB_ERR_VM_FAILED.
 * So "does it exist?" is msb_fs_stat() == -ENOENT.
 */

/** enum msb_fs_type - the type of a file system object. */
typedef enum msb_fs_type {
        MSB_FS_FILE = 1,
        MSB_FS_DIR,
        MSB_FS_SYMLINK,
        MSB_FS_CHAR,
        MSB_FS_BLOCK,
        MSB_FS_FIFO,
        MSB_FS_SOCKET,
} msb_fs_type;

/**
 * struct msb_fs_entry - what stat says about one object.
 * @name:     msb_fs_list(): the entry's name; msb_fs_stat(): the path's last
 *            component.
 * @type:     its type.
 * @mode:     permission bits, 07777 (set-id and sticky bits included).
 * @size:     bytes (a symlink: the length of its target).
 * @uid/@gid: owner in the guest.
 * @mtime_ns: modification time, nanoseconds since the epoch.
 * @target:   a symlink's target, else NULL.
 * The strings belong to the entry (msb_fs_entry_clear(), msb_fs_list_free()).
 */
typedef struct msb_fs_entry {
        char *name;
        msb_fs_type type;
        uint32_t mode;
        uint64_t size;
        uint32_t uid;
        uint32_t gid;
        int64_t mtime_ns;
        char *target;
} msb_fs_entry;

/**
 * msb_fs_stat() - stat (follow != 0: a final symlink is followed) or lstat.
 * Free the strings of *ret with msb_fs_entry_clear().
 */
int msb_fs_stat(msb_sandbox *sb, const char *path, int follow, msb_fs_entry *ret);

/** msb_fs_entry_clear() - frees the strings of e and zeroes it; NULL is allowed. */
void msb_fs_entry_clear(msb_fs_entry *e);

/**
 * msb_fs_list() - the entries of a directory (a symlink to one is followed),
 * without "." and "..", sorted by name, each with its lstat. -E2BIG for a
 * directory of more than 1048576 entries.
 */
int msb_fs_list(msb_sandbox *sb, const char *path, msb_fs_entry **ret, size_t *ret_n);
void msb_fs_list_free(msb_fs_entry *entries, size_t n);

/**
 * msb_fs_read_file() - a whole regular file (symlinks followed) in memory.
 * @max: -EFBIG when the file is larger; 0: no limit.
 * @ret_data: free() it (never NULL on success, even for an empty file).
 */
int msb_fs_read_file(msb_sandbox *sb, const char *path, size_t max, uint8_t **ret_data,
                     size_t *ret_len);

/**
 * msb_fs_write_file() - creates or replaces path with len bytes of data and
 * the given mode (exactly: umask does not apply; owner root). The file
 * appears whole or not at all: it is written beside and renamed over path,
 * so a symlink at path is replaced, not followed. The parent must exist.
 */
int msb_fs_write_file(msb_sandbox *sb, const char *path, const void *data, size_t len,
                      uint32_t mode);

/**
 * msb_fs_mkdir() - creates a directory with mode (exactly). With parents,
 * missing parents are created (0755) and an existing directory is fine (its
 * mode is kept); without, an existing path is -EEXIST.
 */
int msb_fs_mkdir(msb_sandbox *sb, const char *path, uint32_t mode, int parents);

/**
 * msb_fs_remove() - removes a file, symlink or empty directory; with
 * recursive, a directory and everything in it. Symlinks are removed, never
 * followed (a trailing slash does not change that). "/" is refused (-EBUSY).
 */
int msb_fs_remove(msb_sandbox *sb, const char *path, int recursive);

/** msb_fs_rename() - rename(2) inside the guest. */
int msb_fs_rename(msb_sandbox *sb, const char *from, const char *to);

/** msb_fs_chmod() - sets the mode bits (07777) of path (a symlink is followed). */
int msb_fs_chmod(msb_sandbox *sb, const char *path, uint32_t mode);

/** msb_fs_symlink() - creates the symlink linkpath pointing at target (any text). */
int msb_fs_symlink(msb_sandbox *sb, const char *target, const char *linkpath);

/**
 * msb_fs_copy_in() - copies a host file, symlink or directory tree into the
 * sandbox, like docker cp:
 *  - guest_path is an existing directory: the copy goes inside it, as
 *    guest_path/basename(host_path) (a host_path ending in "/." copies the
 *    directory's contents into guest_path instead);
 *  - guest_path does not exist: the copy is created there; its parent must
 *    exist (-ENOENT otherwise, naming the parent);
 *  - guest_path is a file: a file replaces it; a directory cannot (-ENOTDIR).
 * Modes are kept (owner root); symlinks are copied as symlinks, never
 * followed (host_path itself included); devices, FIFOs and sockets are
 * skipped. Each file lands whole; a failed copy may leave the files copied
 * before it.
 */
int msb_fs_copy_in(msb_sandbox *sb, const char *host_path, const char *guest_path);

/**
 * msb_fs_copy_out() - the same from the sandbox to the host (host_path:
 * relative to the working directory, or absolute). Set-id bits are dropped;
 * files are owned by the caller. The guest decides names, types and link
 * targets, but never where on the host anything is written: nothing is
 * created through a symlink below the destination.
 */
int msb_fs_copy_out(msb_sandbox *sb, const char *guest_path, const char *host_path);

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
