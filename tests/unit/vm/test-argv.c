/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The QEMU command line, without QEMU: golden vectors for TCG and KVM, the
 * optional parts, escaping, and every refusal.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/core/util.h"
#include "lib/vm/vm.h"

#define SANDBOX_OPTS "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"

static struct vm_config full_config(enum vm_accel accel)
{
        return (struct vm_config){
                .kernel = "/k/vmlinux",
                .initramfs = "/k/initramfs.cpio",
                .cmdline_extra = "msb.root=overlay msb.hostname=sb-1",
                .memory_mib = 512,
                .cpus = 2,
                .accel = accel,
                .tcg_tsc_khz = 2596135,
                .disks = {{.path = "/img/base.ext4", .serial = "msb-base", .read_only = true},
                          {.path = "/s/upper.ext4", .serial = "msb-upper"}},
                .n_disks = 2,
                .agent_fd = 17,
                .console_fd = 18,
        };
}

static void assert_argv(char **argv, const char *const *want)
{
        size_t i;

        for (i = 0; want[i]; i++) {
                assert_non_null(argv[i]);
                assert_string_equal(argv[i], want[i]);
        }
        assert_null(argv[i]);
}

static char **build_ok(const struct vm_config *c)
{
        char **argv = NULL;
        char err[256] = "";

        assert_int_equal(vm_build_argv(c, &argv, err, sizeof(err)), 0);
        assert_string_equal(err, "");
        assert_non_null(argv);
        return argv;
}

/* The value after the first occurrence of opt, or NULL. */
static const char *opt_value(char **argv, const char *opt)
{
        for (size_t i = 0; argv[i]; i++)
                if (streq(argv[i], opt))
                        return argv[i + 1];
        return NULL;
}

static bool has_arg(char **argv, const char *arg)
{
        for (size_t i = 0; argv[i]; i++)
                if (streq(argv[i], arg))
                        return true;
        return false;
}

static void test_golden_tcg(void **state)
{
        static const char *const want[] = {
                "qemu-system-x86_64",
                "-M",
                "microvm,x-option-roms=off,isa-serial=on,rtc=on,acpi=off,pit=on",
                "-accel",
                "tcg,tb-size=128",
                "-cpu",
                "max",
                "-m",
                "512M",
                "-smp",
                "2",
                "-nodefaults",
                "-no-user-config",
                "-display",
                "none",
                "-no-reboot",
                "-sandbox",
                SANDBOX_OPTS,
                "-kernel",
                "/k/vmlinux",
                "-initrd",
                "/k/initramfs.cpio",
                "-append",
                "console=ttyS0 reboot=t panic=-1 tsc_early_khz=2596135 tsc=reliable "
                "no_timer_check noreplace-smp msb.root=overlay msb.hostname=sb-1",
                "-chardev",
                "socket,id=console,fd=6",
                "-serial",
                "chardev:console",
                "-device",
                "virtio-serial-device",
                "-chardev",
                "socket,id=agent,fd=3",
                "-device",
                "virtserialport,chardev=agent,name=msb.agent",
                "-device",
                "virtio-rng-device",
                "-blockdev",
                "driver=raw,node-name=disk0,read-only=on,file.driver=file,"
                "file.filename=/img/base.ext4",
                "-device",
                "virtio-blk-device,drive=disk0,serial=msb-base",
                "-blockdev",
                "driver=raw,node-name=disk1,discard=unmap,detect-zeroes=unmap,file.driver=file,"
                "file.filename=/s/upper.ext4",
                "-device",
                "virtio-blk-device,drive=disk1,serial=msb-upper",
                NULL,
        };
        struct vm_config c = full_config(VM_ACCEL_TCG);
        _cleanup_(vm_argv_freep) char **argv = build_ok(&c);

        assert_argv(argv, want);
}

static void test_golden_kvm(void **state)
{
        static const char *const want[] = {
                "/opt/qemu/bin/qemu-system-x86_64",
                "-M",
                "microvm,x-option-roms=off,isa-serial=on,rtc=on,acpi=off",
                "-accel",
                "kvm",
                "-cpu",
                "host",
                "-m",
                "4096M",
                "-smp",
                "64",
                "-nodefaults",
                "-no-user-config",
                "-display",
                "none",
                "-no-reboot",
                "-sandbox",
                SANDBOX_OPTS,
                "-kernel",
                "/k/vmlinux",
                "-initrd",
                "/k/initramfs.cpio",
                "-append",
                "console=ttyS0 reboot=t panic=-1 msb.root=overlay msb.hostname=sb-1",
                "-chardev",
                "socket,id=console,fd=6",
                "-serial",
                "chardev:console",
                "-device",
                "virtio-serial-device",
                "-chardev",
                "socket,id=agent,fd=3",
                "-device",
                "virtserialport,chardev=agent,name=msb.agent",
                "-device",
                "virtio-rng-device",
                "-blockdev",
                "driver=qcow2,node-name=disk0,read-only=on,file.driver=file,"
                "file.filename=/img/base.qcow2",
                "-device",
                "virtio-blk-device,drive=disk0,serial=msb-base",
                NULL,
        };
        struct vm_config c = full_config(VM_ACCEL_KVM);

        c.qemu = "/opt/qemu/bin/qemu-system-x86_64";
        c.memory_mib = 4096;
        c.cpus = VM_MAX_VCPUS;
        c.disks[0] = (struct vm_disk){.path = "/img/base.qcow2",
                                      .serial = "msb-base",
                                      .read_only = true,
                                      .format = VM_DISK_QCOW2};
        c.n_disks = 1;
        _cleanup_(vm_argv_freep) char **argv = build_ok(&c);
        assert_argv(argv, want); /* tsc_khz is for TCG only */
}

static void test_minimal(void **state)
{
        static const char *const want[] = {
                "qemu-system-x86_64",
                "-M",
                "microvm,x-option-roms=off,isa-serial=off,rtc=on,acpi=off,pit=on",
                "-accel",
                "tcg,tb-size=128",
                "-cpu",
                "max",
                "-m",
                "64M",
                "-smp",
                "1",
                "-nodefaults",
                "-no-user-config",
                "-display",
                "none",
                "-no-reboot",
                "-sandbox",
                SANDBOX_OPTS,
                "-kernel",
                "k",
                "-initrd",
                "i",
                "-append",
                "reboot=t panic=-1 no_timer_check noreplace-smp noapictimer",
                "-device",
                "virtio-rng-device",
                NULL,
        };
        /* No console, no agent, no disks, no TSC rate, no extra parameters. */
        struct vm_config c = {.kernel = "k",
                              .initramfs = "i",
                              .memory_mib = VM_MIN_MEMORY_MIB,
                              .cpus = 1,
                              .accel = VM_ACCEL_TCG,
                              .agent_fd = -1,
                              .console_fd = -1};
        _cleanup_(vm_argv_freep) char **argv = build_ok(&c);

        assert_argv(argv, want);
}

static void test_escaping(void **state)
{
        struct vm_config c = full_config(VM_ACCEL_TCG);

        c.kernel = "/a,b/vm linux";
        c.initramfs = "/a,b/init,rd";
        c.disks[0].path = "rel,dir/base.img";
        c.disks[1].path = "file:upper";
        c.disks[1].scratch = true;
        c.cmdline_extra = "  msb.a=1   msb.b=x,y  ";
        _cleanup_(vm_argv_freep) char **argv = build_ok(&c);

        /* Plain option values pass verbatim. */
        assert_string_equal(opt_value(argv, "-kernel"), "/a,b/vm linux");
        assert_string_equal(opt_value(argv, "-initrd"), "/a,b/init,rd");
        /* Option lists double every comma. */
        /* Relative disk paths get "./": "file:" must stay part of the name. */
        assert_true(has_arg(argv, "driver=raw,node-name=disk0,read-only=on,file.driver=file,"
                                  "file.filename=./rel,,dir/base.img"));
        /* A scratch disk keeps the guest's flushes from the host. */
        assert_true(has_arg(argv, "driver=raw,node-name=disk1,discard=unmap,detect-zeroes=unmap,"
                                  "cache.no-flush=on,file.driver=file,file.filename=./file:upper"));
        /* Extra parameters: one space between tokens, none at the ends. */
        assert_string_equal(opt_value(argv, "-append"),
                            "console=ttyS0 reboot=t panic=-1 tsc_early_khz=2596135 "
                            "tsc=reliable no_timer_check noreplace-smp msb.a=1 msb.b=x,y");
}

static void assert_refused(const struct vm_config *c, int want_r, const char *want_msg)
{
        char **argv = (char **)0x1;
        char err[256] = "";

        assert_int_equal(vm_build_argv(c, &argv, err, sizeof(err)), want_r);
        assert_ptr_equal(argv, (char **)0x1); /* untouched on failure */
        if (!strstr(err, want_msg))
                fail_msg("message \"%s\" lacks \"%s\"", err, want_msg);
}

static void test_refusals(void **state)
{
        static const char *const bad_extra[] = {
                "msb.x=\"a b\"", "msb.x=a\nmsb.y=b", "msb.x=\t", "msb.x=\xc3\xa9",
                "msb.x=\x7f",    "-- init-arg",      "a -- b",
        };
        static const char *const bad_serials[] = {
                "", "msb base", "msb,base", "a/b", "123456789012345678901", "m\xc3\xa9"};
        struct vm_config c;
        char big[VM_CMDLINE_MAX + 1];

        for (size_t i = 0; i < ARRAY_SIZE(bad_extra); i++) {
                c = full_config(VM_ACCEL_TCG);
                c.cmdline_extra = bad_extra[i];
                assert_refused(&c, -EINVAL, "kernel parameters");
        }
        for (size_t i = 0; i < ARRAY_SIZE(bad_serials); i++) {
                c = full_config(VM_ACCEL_TCG);
                c.disks[1].serial = bad_serials[i];
                assert_refused(&c, -EINVAL, "disk serial");
        }
        c = full_config(VM_ACCEL_TCG);
        c.disks[1].serial = NULL;
        assert_refused(&c, -EINVAL, "disk serial");
        c = full_config(VM_ACCEL_TCG);
        c.disks[1].serial = "msb-base";
        assert_refused(&c, -EINVAL, "two disks with the serial msb-base");
        c = full_config(VM_ACCEL_TCG);
        c.disks[1].format = (enum vm_disk_format)9;
        assert_refused(&c, -EINVAL, "disk format");
        c = full_config(VM_ACCEL_TCG);
        c.disks[1].path = "";
        assert_refused(&c, -EINVAL, "no disk image");
        c = full_config(VM_ACCEL_TCG);
        c.disks[0].path = "/img/base\n.ext4";
        assert_refused(&c, -EINVAL, "control character");
        c = full_config(VM_ACCEL_TCG);
        c.n_disks = VM_MAX_DISKS + 1;
        assert_refused(&c, -EINVAL, "too many disks");

        c = full_config(VM_ACCEL_AUTO);
        assert_refused(&c, -EINVAL, "must be decided");
        c = full_config((enum vm_accel)5);
        assert_refused(&c, -EINVAL, "must be decided");
        c = full_config(VM_ACCEL_TCG);
        c.memory_mib = VM_MIN_MEMORY_MIB - 1;
        assert_refused(&c, -EINVAL, "memory");
        c.memory_mib = VM_MAX_MEMORY_MIB + 1;
        assert_refused(&c, -EINVAL, "memory");
        c = full_config(VM_ACCEL_TCG);
        c.cpus = 0;
        assert_refused(&c, -EINVAL, "vCPUs");
        c.cpus = VM_MAX_VCPUS + 1;
        assert_refused(&c, -EINVAL, "vCPUs");

        c = full_config(VM_ACCEL_TCG);
        c.kernel = NULL;
        assert_refused(&c, -EINVAL, "no guest kernel");
        c = full_config(VM_ACCEL_TCG);
        c.initramfs = "";
        assert_refused(&c, -EINVAL, "no initramfs");
        c = full_config(VM_ACCEL_TCG);
        c.kernel = "/k/vm\rlinux";
        assert_refused(&c, -EINVAL, "control character");
        c = full_config(VM_ACCEL_TCG);
        c.qemu = "";
        assert_refused(&c, -EINVAL, "no QEMU");

        /* The kernel's 2048 bytes, less what QEMU appends per device. */
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        c = full_config(VM_ACCEL_TCG);
        c.cmdline_extra = big;
        assert_refused(&c, -E2BIG, "too long");
        big[1500] = '\0';
        _cleanup_(vm_argv_freep) char **argv = build_ok(&c);
        assert_non_null(strstr(opt_value(argv, "-append"), big));
}

static void test_errmsg_optional(void **state)
{
        struct vm_config c = full_config(VM_ACCEL_AUTO);
        char **argv = NULL;

        assert_int_equal(vm_build_argv(&c, &argv, NULL, 0), -EINVAL);
        assert_null(argv);
}

/* The NIC: -netdev stream on fd 5, the MAC, the MTU; it takes a virtio slot. */
static void test_net(void **state)
{
        struct vm_net net = {.fd = 9, .mac = {0x02, 0x6d, 0x73, 0x01, 0x2c, 0x02}, .mtu = 65520};
        struct vm_config c = full_config(VM_ACCEL_TCG);
        size_t n = 0;
        char **argv;

        c.net = &net;
        argv = build_ok(&c);
        while (argv[n])
                n++;
        assert_true(n > 4);
        assert_string_equal(argv[n - 4], "-netdev");
        assert_string_equal(argv[n - 3], "stream,id=net0,server=off,addr.type=fd,addr.str=5");
        assert_string_equal(argv[n - 2], "-device");
        assert_string_equal(argv[n - 1],
                            "virtio-net-device,netdev=net0,mac=02:6d:73:01:2c:02,host_mtu=65520");
        vm_argv_free(argv);

        net.mtu = 0;
        argv = build_ok(&c);
        for (n = 0; argv[n]; n++)
                ;
        assert_string_equal(argv[n - 1], "virtio-net-device,netdev=net0,mac=02:6d:73:01:2c:02");
        vm_argv_free(argv);

        net.mtu = 70000;
        assert_refused(&c, -EINVAL, "MTU");
        net.mtu = 1500;
        net.mac[0] = 1;
        assert_refused(&c, -EINVAL, "unicast");
        net.mac[0] = 2;
        net.fd = -1;
        assert_refused(&c, -EINVAL, "network socket");
        /* Four disks, the agent, the RNG and the NIC fill the 8 slots. */
        net.fd = 9;
        c.n_disks = 5;
        for (size_t i = 2; i < 5; i++)
                c.disks[i] = (struct vm_disk){.path = "/d",
                                              .serial = i == 2   ? "d2"
                                                        : i == 3 ? "d3"
                                                                 : "d4"};
        argv = build_ok(&c);
        vm_argv_free(argv);
        c.n_disks = 6;
        c.disks[5] = (struct vm_disk){.path = "/d", .serial = "d5"};
        assert_refused(&c, -EINVAL, "too many disks");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_golden_tcg), cmocka_unit_test(test_golden_kvm),
                cmocka_unit_test(test_minimal),    cmocka_unit_test(test_escaping),
                cmocka_unit_test(test_refusals),   cmocka_unit_test(test_errmsg_optional),
                cmocka_unit_test(test_net),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
