/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The accelerator choice: the whole decision table over every combination of
 * host facts, the notices a user reads, the names, the cpuinfo parser, and a
 * probe of this host (only its consistency: CI hosts differ).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/core/util.h"
#include "lib/vm/vm.h"

static const char *const TCG_TAIL = "; using TCG software emulation, 10-50x slower";

static bool ends_with(const char *s, const char *tail)
{
        size_t n = strlen(s), k = strlen(tail);
        return n >= k && streq(s + n - k, tail);
}

static struct vm_host_facts good_kvm_host(void)
{
        return (struct vm_host_facts){
                .cpu_has_virt = true,
                .kvm_exists = true,
                .kvm_usable = true,
                .kvm_api_version = 12,
                .kvm_module = VM_KVM_MODULE_INTEL,
        };
}

/* Every combination of the facts that matter, for every request: case i is
 * read as a number whose digits pick one value of each fact. */
static void test_decision_table(void **state)
{
        static const int errnos[] = {0, EACCES, ENXIO};
        static const enum vm_kvm_module modules[] = {VM_KVM_MODULE_UNKNOWN, VM_KVM_MODULE_INTEL,
                                                     VM_KVM_MODULE_AMD, VM_KVM_MODULE_PVM};
        static const enum vm_accel requests[] = {VM_ACCEL_AUTO, VM_ACCEL_KVM, VM_ACCEL_TCG};
        const unsigned n =
                2 * 2 * 2 * 2 * ARRAY_SIZE(errnos) * ARRAY_SIZE(modules) * ARRAY_SIZE(requests);
        unsigned kvm_chosen = 0;

        for (unsigned i = 0; i < n; i++) {
                unsigned d = i;
                bool virt = d % 2, hyp = (d /= 2) % 2, exists = (d /= 2) % 2, usable = (d /= 2) % 2;
                int err = errnos[(d /= 2) % ARRAY_SIZE(errnos)];
                enum vm_kvm_module module =
                        modules[(d /= ARRAY_SIZE(errnos)) % ARRAY_SIZE(modules)];
                enum vm_accel req = requests[(d /= ARRAY_SIZE(modules)) % ARRAY_SIZE(requests)];
                struct vm_host_facts f = {
                        .cpu_has_virt = virt,
                        .cpu_hypervisor = hyp,
                        .kvm_exists = exists,
                        .kvm_errno = err,
                        .kvm_usable = usable,
                        .kvm_api_version = usable ? 12 : 0,
                        .kvm_module = module,
                };
                bool kvm_ok = virt && exists && err == 0 && usable && module != VM_KVM_MODULE_PVM;
                enum vm_accel chosen = (enum vm_accel)99;
                char notice[256] = "junk";
                int r = vm_accel_decide(req, &f, &chosen, notice, sizeof(notice));

                if (req == VM_ACCEL_TCG) {
                        assert_int_equal(r, 0);
                        assert_int_equal(chosen, VM_ACCEL_TCG);
                        assert_string_equal(notice, "");
                } else if (kvm_ok) {
                        assert_int_equal(r, 0);
                        assert_int_equal(chosen, VM_ACCEL_KVM);
                        assert_string_equal(notice, "");
                        kvm_chosen++;
                } else if (req == VM_ACCEL_KVM) {
                        assert_int_equal(r, -ENODEV);
                        assert_int_equal(chosen, 99); /* untouched on failure */
                        assert_non_null(startswith(notice, "KVM is not usable here: "));
                } else {
                        assert_int_equal(r, 0);
                        assert_int_equal(chosen, VM_ACCEL_TCG);
                        assert_true(ends_with(notice, TCG_TAIL));
                        assert_true(strlen(notice) > strlen(TCG_TAIL));
                }
        }
        /* vmx/svm, /dev/kvm fine, not PVM: 3 modules x hypervisor flag x AUTO/KVM. */
        assert_int_equal(kvm_chosen, 3 * 2 * 2);
}

static void decide_auto(const struct vm_host_facts *f, char *notice, size_t size)
{
        enum vm_accel chosen;

        assert_int_equal(vm_accel_decide(VM_ACCEL_AUTO, f, &chosen, notice, size), 0);
        assert_int_equal(chosen, VM_ACCEL_TCG);
}

static void test_notices(void **state)
{
        struct vm_host_facts f = {0};
        char n[256];

        /* A plain host without VT-x/AMD-V. */
        decide_auto(&f, n, sizeof(n));
        assert_string_equal(n, "no hardware virtualization (vmx/svm) visible; using TCG software "
                               "emulation, 10-50x slower");

        /* Our PVM host: /dev/kvm works as an API but cannot run our guest. */
        f = (struct vm_host_facts){.cpu_hypervisor = true,
                                   .kvm_exists = true,
                                   .kvm_usable = true,
                                   .kvm_api_version = 12,
                                   .kvm_module = VM_KVM_MODULE_PVM};
        decide_auto(&f, n, sizeof(n));
        assert_non_null(strstr(n, "no hardware virtualization (vmx/svm) visible"));
        assert_non_null(strstr(n, "kvm_pvm"));

        /* A cloud VM without nested virtualization. */
        f = (struct vm_host_facts){.cpu_hypervisor = true};
        decide_auto(&f, n, sizeof(n));
        assert_non_null(strstr(n, "nested"));

        f = good_kvm_host();
        f.kvm_exists = false;
        f.kvm_usable = false;
        f.kvm_errno = ENOENT;
        decide_auto(&f, n, sizeof(n));
        assert_non_null(strstr(n, "/dev/kvm does not exist"));

        f = good_kvm_host();
        f.kvm_usable = false;
        f.kvm_errno = EACCES;
        decide_auto(&f, n, sizeof(n));
        assert_non_null(strstr(n, "'kvm' group"));

        f = good_kvm_host();
        f.kvm_usable = false;
        f.kvm_errno = ENXIO;
        decide_auto(&f, n, sizeof(n));
        assert_non_null(strstr(n, "/dev/kvm cannot be used: "));

        f = good_kvm_host();
        f.kvm_usable = false;
        f.kvm_api_version = 11;
        decide_auto(&f, n, sizeof(n));
        assert_non_null(strstr(n, "API version 11, not 12"));
}

static void test_notice_buffers(void **state)
{
        struct vm_host_facts f = {0};
        enum vm_accel chosen;
        char small[8];

        /* No buffer at all. */
        assert_int_equal(vm_accel_decide(VM_ACCEL_AUTO, &f, &chosen, NULL, 0), 0);
        assert_int_equal(chosen, VM_ACCEL_TCG);
        assert_int_equal(vm_accel_decide(VM_ACCEL_KVM, &f, &chosen, NULL, 0), -ENODEV);

        /* A short one is truncated, still terminated. */
        assert_int_equal(vm_accel_decide(VM_ACCEL_AUTO, &f, &chosen, small, sizeof(small)), 0);
        assert_int_equal(strlen(small), sizeof(small) - 1);

        /* A value outside the enum. */
        assert_int_equal(vm_accel_decide((enum vm_accel)42, &f, &chosen, small, sizeof(small)),
                         -EINVAL);
}

static void test_names(void **state)
{
        static const char *const bad[] = {"", "KVM", "Tcg", "tcg ", " auto", "hvf", "kvm,tcg"};
        enum vm_accel a = VM_ACCEL_AUTO;

        assert_int_equal(vm_accel_from_string("auto", &a), 0);
        assert_int_equal(a, VM_ACCEL_AUTO);
        assert_int_equal(vm_accel_from_string("kvm", &a), 0);
        assert_int_equal(a, VM_ACCEL_KVM);
        assert_int_equal(vm_accel_from_string("tcg", &a), 0);
        assert_int_equal(a, VM_ACCEL_TCG);
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                a = VM_ACCEL_KVM;
                assert_int_equal(vm_accel_from_string(bad[i], &a), -EINVAL);
                assert_int_equal(a, VM_ACCEL_KVM);
        }
        assert_int_equal(vm_accel_from_string(NULL, &a), -EINVAL);

        assert_string_equal(vm_accel_name(VM_ACCEL_AUTO), "auto");
        assert_string_equal(vm_accel_name(VM_ACCEL_KVM), "kvm");
        assert_string_equal(vm_accel_name(VM_ACCEL_TCG), "tcg");
        assert_string_equal(vm_accel_name((enum vm_accel)7), "unknown");
}

static struct vm_host_facts parse(const char *text)
{
        struct vm_host_facts f = {0};

        vm_host_facts_parse_cpuinfo(text, &f);
        return f;
}

static void test_cpuinfo(void **state)
{
        struct vm_host_facts f;

        f = parse("processor\t: 0\nvendor_id\t: GenuineIntel\n"
                  "flags\t\t: fpu vme constant_tsc nonstop_tsc vmx ept\n"
                  "vmx flags\t: vnmi preemption_timer\n\nprocessor\t: 1\n");
        assert_true(f.cpu_has_virt);
        assert_false(f.cpu_hypervisor);
        assert_true(f.cpu_invariant_tsc);

        f = parse("processor\t: 0\nflags\t\t: fpu svm hypervisor constant_tsc\n");
        assert_true(f.cpu_has_virt);
        assert_true(f.cpu_hypervisor);
        assert_false(f.cpu_invariant_tsc); /* nonstop_tsc missing */

        /* Our PVM host: a VM, no vmx/svm; the flag at the very end of the line. */
        f = parse("flags\t\t: fpu constant_tsc nonstop_tsc hypervisor");
        assert_false(f.cpu_has_virt);
        assert_true(f.cpu_hypervisor);
        assert_true(f.cpu_invariant_tsc);

        /* Only whole words count, only the first flags line, only "flags". */
        f = parse("flags\t\t: svm_lock vmxx xvmx\nflags\t\t: vmx\n");
        assert_false(f.cpu_has_virt);
        f = parse("vmx flags\t: vmx\nbugs\t\t: svm\n");
        assert_false(f.cpu_has_virt);
        f = parse("flagsx\t: vmx\nflags : vmx\n");
        assert_true(f.cpu_has_virt);
        f = parse("");
        assert_false(f.cpu_has_virt);
        f = parse("flags");
        assert_false(f.cpu_has_virt);
}

static void test_probe(void **state)
{
        struct vm_host_facts f;

        assert_int_equal(vm_host_facts_probe(&f), 0);
        if (f.kvm_usable)
                assert_true(f.kvm_exists && f.kvm_api_version == 12 && f.kvm_errno == 0);
        if (!f.kvm_exists)
                assert_false(f.kvm_usable);
}

/* The TSC rate is measured once per host boot: the cache file holds this
 * boot's id and the rate, and a cache of another boot, or garbage, is
 * measured over. */
static void test_tsc_cache(void **state)
{
        char dir[] = "/tmp/msb-test-tsc-XXXXXX", path[64], boot_id[64], line[128];
        _cleanup_free_ char *text = NULL, *id = NULL;
        struct vm_host_facts f = {.cpu_invariant_tsc = true};
        uint32_t khz;

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/host-tsc", dir);
        assert_int_equal(vm_host_tsc_khz(&(struct vm_host_facts){0}, path), 0);
        assert_int_equal(access(path, F_OK), -1); /* not invariant: nothing measured */

        khz = vm_host_tsc_khz(&f, path);
        if (khz == 0) { /* not x86, or a clock that makes no sense */
                rmdir(dir);
                skip();
        }
        assert_true(khz >= 100000);
        assert_int_equal(read_file("/proc/sys/kernel/random/boot_id", 64, &id, NULL), 0);
        snprintf(boot_id, sizeof(boot_id), "%.36s", id);
        assert_int_equal(read_file(path, 128, &text, NULL), 0);
        snprintf(line, sizeof(line), "%s %u\n", boot_id, khz);
        assert_string_equal(text, line);

        /* a cached value is taken as it is */
        snprintf(line, sizeof(line), "%s 1234567\n", boot_id);
        assert_int_equal(write_file(path, line, 0644), 0);
        assert_int_equal(vm_host_tsc_khz(&f, path), 1234567);

        /* another boot's value, an absurd one, or garbage: measured again */
        const char *stale[] = {"00000000-0000-0000-0000-000000000000 1234567\n", NULL, "junk", ""};
        char absurd[128];
        snprintf(absurd, sizeof(absurd), "%s 5\n", boot_id);
        stale[1] = absurd;
        for (size_t i = 0; i < ARRAY_SIZE(stale); i++) {
                assert_int_equal(write_file(path, stale[i], 0644), 0);
                khz = vm_host_tsc_khz(&f, path);
                assert_true(khz >= 100000 && khz != 1234567);
        }
        unlink(path);
        assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_decision_table), cmocka_unit_test(test_notices),
                cmocka_unit_test(test_notice_buffers), cmocka_unit_test(test_names),
                cmocka_unit_test(test_cpuinfo),        cmocka_unit_test(test_probe),
                cmocka_unit_test(test_tsc_cache),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
