/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The machine backend: everything that knows how a sandbox VM is run sits
 * behind this interface, so that a native KVM VMM (or another engine) can
 * replace QEMU later without touching the callers.
 *
 * Three layers, each usable on its own:
 *  - accelerator choice: vm_host_facts_probe() looks at the host once,
 *    vm_accel_decide() is a pure function of what was asked and those facts;
 *  - the QEMU command line: vm_build_argv() is a pure function of a
 *    struct vm_config (unit-tested without QEMU);
 *  - the process: vm_start() spawns QEMU and returns a handle with a pidfd,
 *    vm_free() makes sure QEMU never outlives its owner.
 *
 * Errors are -errno; where a human needs more than that, the function takes
 * a message buffer (errmsg, errmsg_size; NULL/0 allowed) and writes one line
 * into it on failure, e.g. "guest kernel not found: /x/vmlinux". Nothing here
 * prints or exits.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/core/macro.h"

/* ------------------------------------------------------------------------ */
/* Accelerator                                                              */
/* ------------------------------------------------------------------------ */

enum vm_accel {
        VM_ACCEL_AUTO = 0,
        VM_ACCEL_KVM,
        VM_ACCEL_TCG,
};

/* Which kernel module implements the host's /dev/kvm, when it can be told. */
enum vm_kvm_module {
        VM_KVM_MODULE_UNKNOWN = 0,
        VM_KVM_MODULE_INTEL, /* kvm_intel: VT-x */
        VM_KVM_MODULE_AMD,   /* kvm_amd: AMD-V */
        VM_KVM_MODULE_PVM,   /* kvm_pvm: runs only PVM-aware guest kernels */
};

struct vm_host_facts {
        bool cpu_has_virt;      /* "vmx" or "svm" among the CPU flags */
        bool cpu_hypervisor;    /* "hypervisor" flag: this host is itself a VM */
        bool cpu_invariant_tsc; /* "constant_tsc" and "nonstop_tsc" */
        bool kvm_exists;        /* /dev/kvm exists */
        bool kvm_usable;        /* opened read-write and KVM_GET_API_VERSION == 12 */
        int kvm_errno;          /* why /dev/kvm is not usable (positive errno), or 0 */
        int kvm_api_version;    /* what KVM_GET_API_VERSION said; 0 if never asked */
        enum vm_kvm_module kvm_module;
};

/* Looks at /proc/cpuinfo, /dev/kvm and /sys/module. Never fails for lack of
 * KVM (that is a fact, not an error). 0 or -errno (e.g. /proc not mounted). */
int vm_host_facts_probe(struct vm_host_facts *ret);

/* The host's TSC rate in kHz, or 0 when the TSC is not invariant (x86 hosts
 * with constant_tsc and nonstop_tsc) or the measurement is absurd. Under TCG
 * the guest reads the host's TSC, so this is the guest's TSC rate. Measuring
 * takes 10 ms against CLOCK_MONOTONIC_RAW; the rate is fixed for a host boot,
 * so with cache_path (NULL: always measure) it is measured once per boot and
 * kept in that file beside the boot's id. */
uint32_t vm_host_tsc_khz(const struct vm_host_facts *f, const char *cache_path);

/* Fills the CPU flag facts (cpu_has_virt, cpu_hypervisor, cpu_invariant_tsc)
 * from the text of /proc/cpuinfo: the first "flags" line counts. Pure. */
void vm_host_facts_parse_cpuinfo(const char *cpuinfo, struct vm_host_facts *f);

/* Pure. AUTO picks KVM when the CPU shows vmx/svm and /dev/kvm is usable
 * (and is not PVM), else TCG with a one-line notice saying why. KVM asked
 * for explicitly but unusable: -ENODEV, the reason in notice. TCG: TCG.
 * notice is always written (empty when there is nothing to say); it may be
 * NULL when notice_size is 0. 0 or -errno. */
int vm_accel_decide(enum vm_accel requested, const struct vm_host_facts *f,
                    enum vm_accel *ret_chosen, char *notice, size_t notice_size);

/* "auto", "kvm", "tcg" (case-sensitive). -EINVAL otherwise. */
int vm_accel_from_string(const char *s, enum vm_accel *ret);

/* "auto", "kvm", "tcg"; "unknown" for values outside the enum. */
const char *vm_accel_name(enum vm_accel a);

/* ------------------------------------------------------------------------ */
/* Configuration and the QEMU command line                                  */
/* ------------------------------------------------------------------------ */

/* microvm without ACPI has 8 virtio-mmio transports (the second IOAPIC,
 * which would give 24, needs ACPI); the agent port and the RNG take two. */
#define VM_MAX_VIRTIO_DEVICES 8
#define VM_MAX_DISKS          6
#define VM_MAX_VCPUS          64 /* the guest kernel's CONFIG_NR_CPUS */
#define VM_MIN_MEMORY_MIB     64
#define VM_MAX_MEMORY_MIB     (1024u * 1024u)
#define VM_SERIAL_MAX         20   /* virtio-blk serial: VIRTIO_BLK_ID_BYTES */
#define VM_CMDLINE_MAX        2047 /* x86 COMMAND_LINE_SIZE less the NUL */

/* QEMU sees the agent socket as this fd, whatever its number in the caller. */
#define VM_CHILD_AGENT_FD 3
/* ... the network socket as this one, the console socket as this. */
#define VM_CHILD_NET_FD     5
#define VM_CHILD_CONSOLE_FD 6
/* The MTU the guest may be told (virtio-net host_mtu is 16 bits). */
#define VM_NET_MTU_MIN 576
#define VM_NET_MTU_MAX 65535

enum vm_disk_format {
        VM_DISK_RAW = 0,
        VM_DISK_QCOW2,
};

struct vm_disk {
        const char *path;
        /* How the guest finds the disk: /sys/block/vdX/serial. 1 to 20 of
         * [A-Za-z0-9._-], e.g. "msb-base", "msb-upper". */
        const char *serial;
        bool read_only;
        /* Writes need not survive a host crash (the disk is deleted rather
         * than used again): the guest's flushes stop at QEMU. */
        bool scratch;
        enum vm_disk_format format; /* never probed: a guest could forge a header */
};

/* The guest's NIC: virtio-net on QEMU's -netdev stream, whose frames (each
 * preceded by its length, 4 bytes big-endian) travel over fd to the
 * network gateway (lib/net), which holds the other end. */
struct vm_net {
        int fd;         /* a connected stream socket (one end of a socketpair) */
        uint8_t mac[6]; /* the guest's MAC */
        uint32_t mtu;   /* told to the guest (VIRTIO_NET_F_MTU); 0: none (1500) */
};

struct vm_config {
        const char *qemu;      /* path, or a name looked up in $PATH; NULL: qemu-system-x86_64 */
        const char *kernel;    /* uncompressed vmlinux with a PVH note */
        const char *initramfs; /* uncompressed newc cpio */
        /* Extra kernel parameters (the caller's msb.* ones), separated by
         * spaces, or NULL. Printable ASCII without quotes; no "--". */
        const char *cmdline_extra;
        uint32_t memory_mib;
        uint32_t cpus;
        enum vm_accel accel;  /* VM_ACCEL_KVM or VM_ACCEL_TCG: the decided one */
        uint32_t tcg_tsc_khz; /* vm_host_tsc_khz(); 0: unknown */
        struct vm_disk disks[VM_MAX_DISKS];
        size_t n_disks;
        /* A connected stream socket (one end of a socketpair), the guest's
         * virtio-serial port "msb.agent". -1: no agent channel (0 is a
         * valid fd: set -1 explicitly). */
        int agent_fd;
        /* A connected stream socket (one end of a socketpair) that the
         * serial console (ttyS0) writes to: the kernel log, and whatever
         * else the guest writes there, which has no bound, so the reader
         * must bound what it keeps. A reader that stops reading stalls the
         * guest's console writes, nothing else. -1: no serial port and no
         * console at all (0 is a valid fd: set -1 explicitly). */
        int console_fd;
        /* QEMU's own stdout and stderr go to this file (created or
         * truncated). NULL: kept in an anonymous memory file. Either way
         * vm_stderr_tail() reads the end of it. */
        const char *stderr_path;
        /* The NIC, or NULL for none. */
        const struct vm_net *net;
};

/* Pure: the argument vector for c (argv[0] is c->qemu as given), NULL-
 * terminated, to be freed with vm_argv_free(). -EINVAL (why in errmsg) when
 * a value is out of range or would break QEMU's option syntax or the kernel
 * command line, -E2BIG when the kernel command line would be too long,
 * -ENOMEM. */
int vm_build_argv(const struct vm_config *c, char ***ret_argv, char *errmsg, size_t errmsg_size);

/* Frees a vector from vm_build_argv(); NULL is allowed. Returns NULL. */
char **vm_argv_free(char **argv);

/* ------------------------------------------------------------------------ */
/* The QEMU process                                                         */
/* ------------------------------------------------------------------------ */

struct vm;

/* Checks that QEMU, the kernel, the initramfs and the disks are there, then
 * spawns QEMU in its own process group with only stdin (/dev/null),
 * stdout/stderr (see stderr_path) and the agent socket (as fd 3) open, an
 * empty environment, default signal dispositions, and PR_SET_PDEATHSIG
 * (SIGKILL). Returns once QEMU has been exec'd; QEMU may still fail on its
 * own a moment later, which the pidfd reports.
 *
 * PDEATHSIG fires when the *thread* that called vm_start() exits, not the
 * process: call it from a thread that lives as long as the VM (the
 * supervisor's main thread). The caller must not set SIGCHLD to SIG_IGN
 * (children would be reaped behind our back).
 *
 * -ENOENT/-EACCES when something is missing or unreadable (errmsg: "QEMU
 * not found: qemu-system-x86_64 (install qemu-system-x86)", "guest kernel
 * not found: PATH", ...), -EINVAL for a bad configuration (see
 * vm_build_argv()), or the errno of a failed fork or exec. */
int vm_start(const struct vm_config *c, struct vm **ret, char *errmsg, size_t errmsg_size);

pid_t vm_pid(const struct vm *v);

/* A pidfd that becomes readable when QEMU exits, for an epoll loop; owned by
 * v. -EOPNOTSUPP where pidfd_open() is missing (Linux < 5.3): poll instead. */
int vm_pidfd(const struct vm *v);

/* Non-blocking. 1 and *ret_status (a wait status: WIFEXITED, ...) once QEMU
 * has exited (and been reaped, here); 0 while it runs; -errno. */
int vm_poll_exit(struct vm *v, int *ret_status);

/* SIGKILL and reap (blocking until QEMU is gone). 0 if it is gone, also when
 * it had already exited; -errno. */
int vm_kill(struct vm *v);

/* The end of QEMU's stdout/stderr (at most 4 KiB, whole lines where
 * possible, control characters other than newline replaced by '?'), as a
 * NUL-terminated string to free(). "" when QEMU said nothing. 0 or -errno. */
int vm_stderr_tail(struct vm *v, char **ret_text);

/* Kills and reaps QEMU if it still runs, closes everything. NULL is
 * allowed. Returns NULL. */
struct vm *vm_free(struct vm *v);

DEFINE_FREEP(struct vm, vm_free)
DEFINE_FREEP(char *, vm_argv_free)
