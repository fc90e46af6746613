/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb-agentd internals: the pieces of the guest agent and how they meet.
 *
 *   main.c        mode selection (PID 1 or --serve-fd), logging, signals
 *   bootparams.c  msb.* parameters of the kernel command line (pure parsing)
 *   init.c        PID 1 duties: mounts, root assembly, switch root, port
 *                 discovery, orderly teardown and reboot
 *   exec.c        spawning one command: user, env, rlimits, stdio, PTY, and
 *                 the child's report of why it could not exec
 *   fs.c          the helper process that runs one core.fs.request
 *   server.c      the protocol server: one epoll loop over the host stream,
 *                 signals and every session's descriptors
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "lib/core/log.h"
#include "lib/core/macro.h"
#include "lib/proto/proto.h"

#define AGENT_MAX_SESSIONS 256

/* ---- bootparams.c ---- */

enum agent_root_mode {
        AGENT_ROOT_OVERLAY, /* msb.root=overlay: base (ro) + upper disk or tmpfs */
        AGENT_ROOT_DISK,    /* msb.root=disk: the base disk itself, read-write */
};

struct agent_bootparams {
        char hostname[65]; /* empty: keep the kernel's */
        bool has_time;
        struct timespec time; /* msb.time: host wall clock when the VM started */
        enum agent_root_mode root;
        enum log_level log_level; /* msb.log=error|warn|info|debug */
};

/* Parses the msb.* parameters out of a kernel command line; others are
 * ignored. -EINVAL (and *ret_bad points at the offending word) on a bad
 * value. */
int agent_bootparams_parse(const char *cmdline, struct agent_bootparams *ret, const char **ret_bad);

/* ---- init.c (PID 1 only) ---- */

/* Mounts /dev, /proc and /sys of the initramfs and opens /dev/kmsg for the
 * log. Call first. */
void agent_init_early(void);

/* Everything from the command line to an open agent port in the new root.
 * Fatal errors power the VM off (they never return). */
int agent_init_boot(void);

/* Logs to the kernel log, then reboots (QEMU runs -no-reboot: it exits). */
_noreturn_ void agent_init_fatal(const char *fmt, ...) _printf_(1, 2);

/* Unmounts the root cleanly (the upper ext4 above all) and reboots. Every
 * other process must be gone. */
_noreturn_ void agent_init_poweroff(void);

/* ---- exec.c ---- */

/* The descriptors of a spawned command, all O_CLOEXEC and non-blocking. */
struct agent_exec_child {
        pid_t pid;
        int status_fd; /* EOF: exec succeeded; a record: it failed */
        int stdin_fd;  /* pipe or a dup of the PTY master; -1 without stdin */
        int stdout_fd; /* pipe, or the PTY master */
        int stderr_fd; /* pipe; -1 on a PTY */
};

/* Forks and starts req. On failure before the fork, *ret_failed says why
 * (and -errno comes back); after it, the outcome comes through status_fd. */
int agent_exec_spawn(const struct proto_exec_request *req, struct agent_exec_child *ret,
                     struct proto_exec_failed *ret_failed);

/* Reads the status pipe: 1 when the command is running (EOF), 0 when it
 * failed (*ret_failed filled), -EAGAIN when nothing came yet. */
int agent_exec_read_status(int fd, struct proto_exec_failed *ret_failed);

/* ---- fs.c ---- */

/* The server's ends of a file helper's channels, non-blocking and CLOEXEC. */
struct agent_fs_child {
        pid_t pid;
        int frames_fd; /* read end: whole frames of the session, toward the host */
        int data_fd;   /* write only: SOCK_SEQPACKET, 'D' + bytes per message, 'E' at
                        * the end; closing it without 'E' abandons the write; -1 */
};

/* Forks the helper that carries out req on session id (fs.c explains the
 * channels). */
int agent_fs_spawn(uint32_t id, const struct proto_fs_request *req, struct agent_fs_child *ret);

/* ---- server.c ---- */

struct agent_server_config {
        int port_fd;      /* the host stream, non-blocking; the server closes it */
        bool vport;       /* a virtio port: hang-up means the host is away, not gone */
        bool pid1;        /* terminate every process at the end, not just sessions */
        uint64_t boot_ns; /* CLOCK_BOOTTIME when the agent started */
};

/* Blocks the signals the server takes through its signalfd and ignores
 * SIGPIPE. Call first thing, before any child exists. */
int agent_server_block_signals(void);

/* Serves until core.shutdown, a termination signal, or (not a vport) the end
 * of the stream; then terminates the commands (SIGTERM, 2 s, SIGKILL) and
 * returns 0. */
int agent_server_run(const struct agent_server_config *cfg);
