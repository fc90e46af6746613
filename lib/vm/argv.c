/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: one pure function turns a struct vm_config into
 * QEMU's argument vector; docs/vm.md says why each flag is there. Values
 * reach QEMU through three syntaxes, each handled at one place:
 *  - QemuOpts/keyval lists ("-chardev file,path=..."): commas doubled;
 *  - plain option values (-kernel, -initrd, -append): passed verbatim;
 *  - the kernel command line: space-separated tokens, so extra parameters
 *    must be printable ASCII without quotes, and the whole line must fit the
 *    guest's 2048 bytes together with the virtio_mmio.device=... entries
 *    QEMU appends for each device.
 * Control characters are refused everywhere. Nothing here touches the
 * filesystem; vm_start() checks that the files exist. The agent port, the
 * NIC and the console are sockets QEMU inherits at fixed fds
 * (VM_CHILD_*_FD).
 */
#include "vm.h"
#include "vm-internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/core/util.h"

#define DEFAULT_QEMU "qemu-system-x86_64"
/* Translated code cache under TCG: a boot uses about 18 MiB; QEMU's default
 * reserves 1 GiB and keeps what a long workload fills. */
#define TCG_TB_SIZE_MIB 128
/* Under TCG the kernel's boot-time timer work is slow, real waits on
 * emulated hardware: timer_irq_works() waits for ticks (~75 ms), and on one
 * vCPU every LOCK prefix is patched out by its own text_poke(), a page-table
 * switch apiece (~100 ms). QEMU's PIT (pit=on) ticks reliably, and LOCK
 * prefixes cost a uniprocessor little. Under KVM neither is slow, and KVM
 * guests skip the timer check by themselves. */
#define TCG_BOOT_PARAMS "no_timer_check noreplace-smp"
/* ... and the local APIC timer is calibrated for ten ticks (~100-250 ms).
 * With one vCPU the PIT serves as the one-shot tick device instead, with
 * the same precision (200 sleeps of 1 ms: 0.70 s, 0.80 s with the APIC
 * timer); with more, they would share it by broadcast at the 10 ms tick
 * (2.08 s against 0.67 s), so they keep their APIC timers. Under KVM the
 * TSC-deadline timer needs no calibration. */
#define TCG_UP_BOOT_PARAMS "noapictimer"
/* What QEMU appends per device: " virtio_mmio.device=512@0xfeb00e00:12". */
#define CMDLINE_PER_DEVICE 40

struct args {
        char **v;
        size_t n, cap;
        int r;
};

/* Appends a formatted argument; the first failure sticks in a->r. */
static _printf_(2, 3) void add(struct args *a, const char *fmt, ...)
{
        va_list ap;
        char *s;

        if (a->r < 0)
                return;
        if (a->n + 2 > a->cap) {
                size_t cap = a->cap ? a->cap * 2 : 64;
                char **v = realloc(a->v, cap * sizeof(*v));
                if (!v) {
                        a->r = -ENOMEM;
                        return;
                }
                a->v = v;
                a->cap = cap;
        }
        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0) {
                va_end(ap);
                a->r = -ENOMEM;
                return;
        }
        va_end(ap);
        a->v[a->n++] = s;
        a->v[a->n] = NULL;
}

static bool has_control_char(const char *s)
{
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

static int check_path(const char *what, const char *path, char *errmsg, size_t errmsg_size)
{
        if (!path || !*path)
                return vm_fail(errmsg, errmsg_size, -EINVAL, "no %s given", what);
        if (has_control_char(path))
                return vm_fail(errmsg, errmsg_size, -EINVAL,
                               "the %s path contains a control character", what);
        return 0;
}

/* For QemuOpts values: every comma doubled. */
static char *opt_escape(const char *s)
{
        size_t n = strlen(s), commas = 0;
        char *out, *p;

        for (const char *q = s; *q; q++)
                commas += *q == ',';
        out = malloc(n + commas + 1);
        if (!out)
                return NULL;
        for (p = out; *s; s++) {
                *p++ = *s;
                if (*s == ',')
                        *p++ = ',';
        }
        *p = '\0';
        return out;
}

static bool serial_valid(const char *s)
{
        size_t n = s ? strlen(s) : 0;

        if (n == 0 || n > VM_SERIAL_MAX)
                return false;
        return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* Appends the caller's parameters to line, one space before each token. */
static int append_extra(FILE *line, const char *extra, char *errmsg, size_t errmsg_size)
{
        for (const char *p = extra; *p; p++)
                if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e || *p == '"')
                        return vm_fail(errmsg, errmsg_size, -EINVAL,
                                       "kernel parameters may hold only printable ASCII without "
                                       "quotes");
        for (const char *p = extra + strspn(extra, " "); *p; p += strspn(p, " ")) {
                size_t k = strcspn(p, " ");
                if (k == 2 && p[0] == '-' && p[1] == '-')
                        return vm_fail(errmsg, errmsg_size, -EINVAL,
                                       "kernel parameters must not contain \"--\"");
                fprintf(line, " %.*s", (int)k, p);
                p += k;
        }
        return 0;
}

static int build_cmdline(const struct vm_config *c, size_t n_devices, char **ret, char *errmsg,
                         size_t errmsg_size)
{
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        FILE *line;
        int r = 0;

        line = open_memstream(&buf, &len);
        if (!line)
                return -ENOMEM;
        if (c->console_fd >= 0)
                fputs("console=ttyS0 ", line);
        fputs("reboot=t panic=-1", line);
        if (c->accel == VM_ACCEL_TCG && c->tcg_tsc_khz > 0)
                fprintf(line, " tsc_early_khz=%u tsc=reliable", c->tcg_tsc_khz);
        if (c->accel == VM_ACCEL_TCG)
                fputs(" " TCG_BOOT_PARAMS, line);
        if (c->accel == VM_ACCEL_TCG && c->cpus == 1)
                fputs(" " TCG_UP_BOOT_PARAMS, line);
        if (c->cmdline_extra)
                r = append_extra(line, c->cmdline_extra, errmsg, errmsg_size);
        if (fclose(line) != 0 || !buf)
                return -ENOMEM;
        if (r < 0)
                return r;
        if (len + n_devices * CMDLINE_PER_DEVICE > VM_CMDLINE_MAX)
                return vm_fail(errmsg, errmsg_size, -E2BIG,
                               "the kernel command line is too long (%zu bytes, at most %zu with "
                               "%zu devices)",
                               len, VM_CMDLINE_MAX - n_devices * CMDLINE_PER_DEVICE, n_devices);
        *ret = TAKE_PTR(buf);
        return 0;
}

/* virtio-mmio devices: the RNG, the agent's virtio-serial, the disks, the NIC. */
static size_t n_devices(const struct vm_config *c)
{
        return 1 + (c->agent_fd >= 0) + c->n_disks + (c->net != NULL);
}

static int check_config(const struct vm_config *c, char *errmsg, size_t errmsg_size)
{
        int r;

        if (c->accel != VM_ACCEL_KVM && c->accel != VM_ACCEL_TCG)
                return vm_fail(errmsg, errmsg_size, -EINVAL,
                               "the accelerator must be decided (kvm or tcg), not %s",
                               vm_accel_name(c->accel));
        if (c->memory_mib < VM_MIN_MEMORY_MIB || c->memory_mib > VM_MAX_MEMORY_MIB)
                return vm_fail(errmsg, errmsg_size, -EINVAL, "memory must be %u to %u MiB, not %u",
                               VM_MIN_MEMORY_MIB, VM_MAX_MEMORY_MIB, c->memory_mib);
        if (c->cpus < 1 || c->cpus > VM_MAX_VCPUS)
                return vm_fail(errmsg, errmsg_size, -EINVAL, "vCPUs must be 1 to %u, not %u",
                               VM_MAX_VCPUS, c->cpus);
        if (c->n_disks > VM_MAX_DISKS || n_devices(c) > VM_MAX_VIRTIO_DEVICES)
                return vm_fail(errmsg, errmsg_size, -EINVAL,
                               "too many disks (%zu): the machine has %d virtio slots", c->n_disks,
                               VM_MAX_VIRTIO_DEVICES);
        if (c->qemu && (r = check_path("QEMU", c->qemu, errmsg, errmsg_size)) < 0)
                return r;
        if ((r = check_path("guest kernel", c->kernel, errmsg, errmsg_size)) < 0 ||
            (r = check_path("initramfs", c->initramfs, errmsg, errmsg_size)) < 0)
                return r;
        if (c->net && c->net->fd < 0)
                return vm_fail(errmsg, errmsg_size, -EINVAL, "no network socket given");
        if (c->net && c->net->mtu && (c->net->mtu < VM_NET_MTU_MIN || c->net->mtu > VM_NET_MTU_MAX))
                return vm_fail(errmsg, errmsg_size, -EINVAL, "the MTU must be %d to %d, not %u",
                               VM_NET_MTU_MIN, VM_NET_MTU_MAX, c->net->mtu);
        if (c->net && (c->net->mac[0] & 1))
                return vm_fail(errmsg, errmsg_size, -EINVAL,
                               "the guest MAC must be unicast (first octet even)");
        for (size_t i = 0; i < c->n_disks; i++) {
                const struct vm_disk *d = &c->disks[i];
                if ((r = check_path("disk image", d->path, errmsg, errmsg_size)) < 0)
                        return r;
                if (!serial_valid(d->serial))
                        return vm_fail(errmsg, errmsg_size, -EINVAL,
                                       "disk serial must be 1 to %d of [A-Za-z0-9._-]: %s",
                                       VM_SERIAL_MAX, d->serial ? d->serial : "(none)");
                for (size_t j = 0; j < i; j++)
                        if (streq(c->disks[j].serial, d->serial))
                                return vm_fail(errmsg, errmsg_size, -EINVAL,
                                               "two disks with the serial %s", d->serial);
                if (d->format != VM_DISK_RAW && d->format != VM_DISK_QCOW2)
                        return vm_fail(errmsg, errmsg_size, -EINVAL, "unknown disk format %d",
                                       (int)d->format);
        }
        return 0;
}

static void add_disk(struct args *a, size_t i, const struct vm_disk *d)
{
        /* A relative path gets "./" so that the file driver never reads a
         * "file:" prefix of the name as its own. */
        const char *dot = d->path[0] == '/' ? "" : "./";
        _cleanup_free_ char *path = opt_escape(d->path);

        if (!path) {
                a->r = -ENOMEM;
                return;
        }
        add(a, "-blockdev");
        add(a, "driver=%s,node-name=disk%zu,%s%s,file.driver=file,file.filename=%s%s",
            d->format == VM_DISK_QCOW2 ? "qcow2" : "raw", i,
            d->read_only ? "read-only=on" : "discard=unmap,detect-zeroes=unmap",
            d->scratch ? ",cache.no-flush=on" : "", dot, path);
        add(a, "-device");
        add(a, "virtio-blk-device,drive=disk%zu,serial=%s", i, d->serial);
}

int vm_build_argv(const struct vm_config *c, char ***ret_argv, char *errmsg, size_t errmsg_size)
{
        _cleanup_free_ char *cmdline = NULL;
        struct args a = {0};
        bool tcg = c->accel == VM_ACCEL_TCG;
        int r;

        r = check_config(c, errmsg, errmsg_size);
        if (r < 0)
                return r;
        r = build_cmdline(c, n_devices(c), &cmdline, errmsg, errmsg_size);
        if (r < 0)
                return r;

        add(&a, "%s", c->qemu ? c->qemu : DEFAULT_QEMU);
        add(&a, "-M");
        add(&a, "microvm,x-option-roms=off,isa-serial=%s,rtc=on,acpi=off%s",
            c->console_fd >= 0 ? "on" : "off", tcg ? ",pit=on" : "");
        add(&a, "-accel");
        if (tcg)
                add(&a, "tcg,tb-size=%d", TCG_TB_SIZE_MIB);
        else
                add(&a, "kvm");
        add(&a, "-cpu");
        add(&a, "%s", tcg ? "max" : "host");
        add(&a, "-m");
        add(&a, "%uM", c->memory_mib);
        add(&a, "-smp");
        add(&a, "%u", c->cpus);
        add(&a, "-nodefaults");
        add(&a, "-no-user-config");
        add(&a, "-display");
        add(&a, "none");
        add(&a, "-no-reboot");
        add(&a, "-sandbox");
        add(&a, "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
        add(&a, "-kernel");
        add(&a, "%s", c->kernel);
        add(&a, "-initrd");
        add(&a, "%s", c->initramfs);
        add(&a, "-append");
        add(&a, "%s", cmdline);
        if (c->console_fd >= 0) {
                add(&a, "-chardev");
                add(&a, "socket,id=console,fd=%d", VM_CHILD_CONSOLE_FD);
                add(&a, "-serial");
                add(&a, "chardev:console");
        }
        if (c->agent_fd >= 0) {
                add(&a, "-device");
                add(&a, "virtio-serial-device");
                add(&a, "-chardev");
                add(&a, "socket,id=agent,fd=%d", VM_CHILD_AGENT_FD);
                add(&a, "-device");
                add(&a, "virtserialport,chardev=agent,name=msb.agent");
        }
        add(&a, "-device");
        add(&a, "virtio-rng-device");
        for (size_t i = 0; i < c->n_disks; i++)
                add_disk(&a, i, &c->disks[i]);
        if (c->net) {
                const uint8_t *m = c->net->mac;

                add(&a, "-netdev");
                add(&a, "stream,id=net0,server=off,addr.type=fd,addr.str=%d", VM_CHILD_NET_FD);
                add(&a, "-device");
                if (c->net->mtu)
                        add(&a,
                            "virtio-net-device,netdev=net0,mac=%02x:%02x:%02x:%02x:%02x:%02x,"
                            "host_mtu=%u",
                            m[0], m[1], m[2], m[3], m[4], m[5], c->net->mtu);
                else
                        add(&a, "virtio-net-device,netdev=net0,mac=%02x:%02x:%02x:%02x:%02x:%02x",
                            m[0], m[1], m[2], m[3], m[4], m[5]);
        }
        if (a.r < 0) {
                vm_argv_free(a.v);
                return a.r;
        }
        *ret_argv = a.v;
        return 0;
}

char **vm_argv_free(char **argv)
{
        if (argv) {
                for (char **p = argv; *p; p++)
                        free(*p);
                free(argv);
        }
        return NULL;
}
