/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: each check fills one line of a fixed-size report;
 * nothing is started, so doctor is safe to run anywhere and at any time.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "microsandbox.h"
#include "paths.h"
#include "lib/core/util.h"
#include "lib/vm/vm.h"

struct report {
        msb_doctor_check *checks;
        size_t max, n;
};

static void add(struct report *rep, const char *name, int ok, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void add(struct report *rep, const char *name, int ok, const char *fmt, ...)
{
        msb_doctor_check *c;
        va_list ap;

        if (rep->n >= rep->max)
                return;
        c = &rep->checks[rep->n++];
        snprintf(c->name, sizeof(c->name), "%s", name);
        c->ok = ok;
        va_start(ap, fmt);
        vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
        va_end(ap);
}

static void check_asset(struct report *rep, const char *name, enum asset a)
{
        _cleanup_free_ char *path = NULL;
        int r = paths_asset(a, &path);

        if (r == 0)
                add(rep, name, 1, "%s", path);
        else
                add(rep, name, 0, "%s not found at %s (run 'make')", asset_description(a),
                    path ? path : "?");
}

int msb_doctor(msb_doctor_check *checks, size_t max)
{
        struct report rep = {.checks = checks, .max = max};
        _cleanup_free_ char *qemu = NULL, *home = NULL;
        struct vm_host_facts facts;
        enum vm_accel chosen;
        char notice[256] = "";

        if (paths_qemu(&qemu) == 0)
                add(&rep, "qemu", 1, "%s", qemu);
        else
                add(&rep, "qemu", 0, "qemu-system-x86_64 not found (install qemu-system-x86)");
        check_asset(&rep, "kernel", ASSET_KERNEL);
        check_asset(&rep, "initramfs", ASSET_INITRAMFS);
        check_asset(&rep, "base image", ASSET_BASE_IMAGE);

        if (vm_host_facts_probe(&facts) == 0) {
                add(&rep, "cpu", -1, "hardware virtualization (vmx/svm): %s",
                    facts.cpu_has_virt ? "yes" : "no");
                add(&rep, "/dev/kvm", -1, "%s",
                    !facts.kvm_exists ? "absent"
                    : facts.kvm_module == VM_KVM_MODULE_PVM
                            ? "PVM (kvm_pvm): runs only PVM-aware guest kernels, not ours"
                    : facts.kvm_usable ? "usable"
                                       : "present but not usable by this user");
                if (vm_accel_decide(VM_ACCEL_AUTO, &facts, &chosen, notice, sizeof(notice)) == 0)
                        add(&rep, "accelerator", chosen == VM_ACCEL_KVM ? 1 : -1, "%s%s%s",
                            vm_accel_name(chosen), *notice ? ": " : "", notice);
        }
        if (paths_home(&home) == 0)
                add(&rep, "state", access(home, W_OK) == 0 || errno == ENOENT ? 1 : 0, "%s", home);
        return (int)rep.n;
}
