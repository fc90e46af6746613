/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb-agentd internals: the pieces of the guest agent and how they meet.
 *
 *   main.c        mode selection (PID 1 or --serve-fd), logging, signals
 *   bootparams.c  msb.* parameters of the kernel command line (pure parsing)
 *   init.c        PID 1 duties: mounts, root assembly, switch root, port
 *                 discovery, orderly teardown and reboot
 *   net.c         the guest's network from the boot parameters (rtnetlink),
 *                 /etc/hosts and /etc/resolv.conf
 *   exec.c        spawning one command: user, env, rlimits, stdio, PTY, and
 *                 the child's report of why it could not exec
 *   fs.c          the helper process that runs one core.fs.request
 *   server.c      the protocol server: one epoll loop over the host stream,
 *                 signals and every session's descriptors
 */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
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

/* Resolvers (glibc, musl) read at most three nameserver lines. */
#define AGENT_MAX_DNS 3

struct agent_addr {
        int family; /* AF_INET or AF_INET6 */
        union {
                struct in_addr v4;
                struct in6_addr v6;
        };
};

/* The network of the guest; all absent (zero) with --no-net. */
struct agent_net_params {
        bool has_ip4, has_gw4; /* msb.ip4=ADDR/PREFIX, msb.gw4=ADDR */
        struct in_addr ip4, gw4;
        uint8_t prefix4;
        bool has_ip6, has_gw6; /* msb.ip6=ADDR/PREFIX, msb.gw6=ADDR */
        struct in6_addr ip6, gw6;
        uint8_t prefix6;
        uint32_t mtu; /* msb.mtu; 0: keep the NIC's */
        size_t n_dns; /* msb.dns=ADDR[,ADDR...] */
        struct agent_addr dns[AGENT_MAX_DNS];
        char hostalias[254]; /* msb.hostalias: a name for the gateway; empty: none */
};

struct agent_bootparams {
        char hostname[65]; /* empty: keep the kernel's */
        bool has_time;
        struct timespec time; /* msb.time: host wall clock when the VM started */
        enum agent_root_mode root;
        enum log_level log_level; /* msb.log=error|warn|info|debug */
        struct agent_net_params net;
};

/* Parses the msb.* parameters out of a kernel command line; others are
 * ignored. -EINVAL (and *ret_bad points at the offending word) on a bad
 * value, or on values that do not fit together (a gateway off the guest's
 * subnet or without an address, an alias without a gateway, an MTU below
 * 1280 with IPv6). */
int agent_bootparams_parse(const char *cmdline, struct agent_bootparams *ret, const char **ret_bad);

/* ---- init.c (PID 1 only) ---- */

/* Mounts /dev, /proc and /sys of the initramfs and opens /dev/kmsg for the
 * log. Call first. */
void agent_init_early(void);

/* Everything from the command line to an open agent port in the new root;
 * boot_ns: when /init started (CLOCK_BOOTTIME), for the debug timeline.
 * Fatal errors power the VM off (they never return). */
int agent_init_boot(uint64_t boot_ns);

/* Logs to the kernel log, then reboots (QEMU runs -no-reboot: it exits). */
_noreturn_ void agent_init_fatal(const char *fmt, ...) _printf_(1, 2);

/* Unmounts the root cleanly (the upper ext4 above all) and reboots. Every
 * other process must be gone. */
_noreturn_ void agent_init_poweroff(void);

/* ---- net.c ---- */

/* Brings lo up and, when the parameters ask for a network (an address or an
 * MTU), configures the NIC: the first Ethernet interface. Runs in the
 * caller's network namespace and needs CAP_NET_ADMIN. On failure, errmsg
 * names the step that failed (with the kernel's explanation when it gives
 * one) and the return value says why; -ENODEV when a network is asked for
 * and there is no NIC. */
int agent_net_configure(const struct agent_net_params *net, char *errmsg, size_t errmsg_size);

/* Writes the name service files under etc_dir (created when missing):
 * /etc/hosts gets "127.0.1.1 HOSTNAME" unless it names the host already,
 * and "GATEWAY ALIAS" for each gateway (replacing such lines of an earlier
 * boot); /etc/resolv.conf is replaced (a symlink too) when msb.dns is given.
 * Files already right are not rewritten. On failure, errmsg names the
 * file. */
int agent_net_write_etc(const struct agent_bootparams *bp, const char *etc_dir, char *errmsg,
                        size_t errmsg_size);

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
