/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: the accelerator is chosen in two steps so that the
 * choice itself can be tested on any machine. vm_host_facts_probe() gathers
 * what the host offers (CPU flags, /dev/kvm, which module implements it);
 * vm_accel_decide() is a pure function of the request and those facts.
 * vm_host_tsc_khz() measures the TSC rate a TCG guest is told, once per host
 * boot when given a cache file.
 *
 * KVM counts as usable only when the CPU shows vmx or svm, /dev/kvm opens
 * read-write and speaks API version 12, and the module behind it is not PVM:
 * a PVM /dev/kvm (kvm_pvm, no vmx/svm visible) answers the API but runs only
 * PVM-aware guest kernels, and our standard guest dies there in emulation.
 * Everything else gets TCG, with one line saying why.
 */
#include "vm.h"
#include "vm-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "lib/core/util.h"

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define HAVE_TSC 1
#endif

/* The first processor's block, flags included, is well inside this. */
#define CPUINFO_PREFIX_MAX (64 * 1024)
#define TSC_MEASURE_NS     (10 * 1000 * 1000)
#define TSC_KHZ_MIN        100000u   /* 100 MHz */
#define TSC_KHZ_MAX        10000000u /* 10 GHz */
#define BOOT_ID_LEN        36        /* a UUID in text */

static bool flag_in(const char *flags, size_t len, const char *flag)
{
        size_t n = strlen(flag);

        for (size_t i = 0; i < len;) {
                size_t k = strcspn(flags + i, " \t\n");
                if (i + k > len)
                        k = len - i;
                if (k == n && memcmp(flags + i, flag, n) == 0)
                        return true;
                i += k + 1;
        }
        return false;
}

void vm_host_facts_parse_cpuinfo(const char *cpuinfo, struct vm_host_facts *f)
{
        for (const char *line = cpuinfo; line && *line;) {
                const char *end = strchr(line, '\n');
                size_t len = end ? (size_t)(end - line) : strlen(line);
                const char *p = startswith(line, "flags");

                if (p) {
                        p += strspn(p, " \t");
                        if (*p == ':' && p < line + len) {
                                size_t rest = len - (size_t)(p + 1 - line);
                                p++;
                                f->cpu_has_virt =
                                        flag_in(p, rest, "vmx") || flag_in(p, rest, "svm");
                                f->cpu_hypervisor = flag_in(p, rest, "hypervisor");
                                f->cpu_invariant_tsc = flag_in(p, rest, "constant_tsc") &&
                                                       flag_in(p, rest, "nonstop_tsc");
                                return;
                        }
                }
                line = end ? end + 1 : NULL;
        }
}

static int read_cpuinfo_prefix(char **ret)
{
        _cleanup_close_ int fd = open("/proc/cpuinfo", O_RDONLY | O_CLOEXEC);
        _cleanup_free_ char *buf = NULL;
        ssize_t n;

        if (fd < 0)
                return negative_errno();
        buf = malloc(CPUINFO_PREFIX_MAX + 1);
        if (!buf)
                return -ENOMEM;
        n = read_full(fd, buf, CPUINFO_PREFIX_MAX);
        if (n < 0)
                return (int)n;
        buf[n] = '\0';
        *ret = TAKE_PTR(buf);
        return 0;
}

static void probe_kvm(struct vm_host_facts *f)
{
        _cleanup_close_ int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

        f->kvm_exists = fd >= 0 || errno != ENOENT;
        if (fd < 0) {
                f->kvm_errno = errno;
                return;
        }
        f->kvm_api_version = ioctl(fd, KVM_GET_API_VERSION, 0);
        if (f->kvm_api_version < 0) {
                f->kvm_errno = errno;
                f->kvm_api_version = 0;
                return;
        }
        f->kvm_usable = f->kvm_api_version == KVM_API_VERSION;
}

/* Only one vendor module can back /dev/kvm; a loaded module shows in sysfs. */
static enum vm_kvm_module probe_kvm_module(void)
{
        if (access("/sys/module/kvm_pvm", F_OK) == 0)
                return VM_KVM_MODULE_PVM;
        if (access("/sys/module/kvm_intel", F_OK) == 0)
                return VM_KVM_MODULE_INTEL;
        if (access("/sys/module/kvm_amd", F_OK) == 0)
                return VM_KVM_MODULE_AMD;
        return VM_KVM_MODULE_UNKNOWN;
}

#ifdef HAVE_TSC
static bool tsc_khz_plausible(uint64_t khz)
{
        return khz >= TSC_KHZ_MIN && khz <= TSC_KHZ_MAX;
}

/* One (nanoseconds, TSC) pair, taken where the clock read was not
 * interrupted: the tightest of three tries. */
static void tsc_sample(uint64_t *ret_ns, uint64_t *ret_tsc)
{
        uint64_t best = UINT64_MAX;

        for (int i = 0; i < 3; i++) {
                uint64_t a = now_ns(CLOCK_MONOTONIC_RAW);
                uint64_t t = __rdtsc();
                uint64_t b = now_ns(CLOCK_MONOTONIC_RAW);

                if (b - a < best) {
                        best = b - a;
                        *ret_ns = a + (b - a) / 2;
                        *ret_tsc = t;
                }
        }
}

/* The TSC rate against the host's clock; 0 when the numbers are absurd. */
static uint32_t measure_tsc_khz(void)
{
        struct timespec pause = {.tv_nsec = TSC_MEASURE_NS};
        uint64_t ns0 = 0, ns1 = 0, tsc0 = 0, tsc1 = 0, khz;

        tsc_sample(&ns0, &tsc0);
        while (nanosleep(&pause, &pause) < 0 && errno == EINTR)
                ;
        tsc_sample(&ns1, &tsc1);
        if (ns1 <= ns0 || tsc1 <= tsc0 || tsc1 - tsc0 > UINT64_MAX / 1000000)
                return 0;
        khz = (tsc1 - tsc0) * 1000000 / (ns1 - ns0);
        return tsc_khz_plausible(khz) ? (uint32_t)khz : 0;
}

/* This host boot's id (the kernel's random UUID), or "" when unknown. */
static void read_boot_id(char id[static BOOT_ID_LEN + 1])
{
        _cleanup_free_ char *text = NULL;
        size_t len = 0;

        id[0] = '\0';
        if (read_file("/proc/sys/kernel/random/boot_id", 64, &text, &len) == 0 &&
            len >= BOOT_ID_LEN && strspn(text, "0123456789abcdef-") == BOOT_ID_LEN) {
                memcpy(id, text, BOOT_ID_LEN);
                id[BOOT_ID_LEN] = '\0';
        }
}

/* The rate cached for this boot, or 0. The file reads "<boot id> <kHz>". */
static uint32_t cached_tsc_khz(const char *path, const char *boot_id)
{
        _cleanup_free_ char *text = NULL;
        uint64_t khz;
        size_t len = 0;
        char *end;

        if (read_file(path, 128, &text, &len) < 0 || len <= BOOT_ID_LEN + 1 ||
            memcmp(text, boot_id, BOOT_ID_LEN) != 0 || text[BOOT_ID_LEN] != ' ')
                return 0;
        end = text + BOOT_ID_LEN + 1 + strspn(text + BOOT_ID_LEN + 1, "0123456789");
        *end = '\0';
        if (parse_u64(text + BOOT_ID_LEN + 1, &khz) < 0 || !tsc_khz_plausible(khz))
                return 0;
        return (uint32_t)khz;
}

/* A cache that cannot be written only costs the next start 10 ms. */
static void store_tsc_khz(const char *path, const char *boot_id, uint32_t khz)
{
        _cleanup_free_ char *line = strdup_printf("%s %u\n", boot_id, khz);

        if (line)
                (void)write_file_replace(path, line, 0644);
}
#endif

uint32_t vm_host_tsc_khz(const struct vm_host_facts *f, const char *cache_path)
{
#ifdef HAVE_TSC
        char boot_id[BOOT_ID_LEN + 1];
        uint32_t khz;

        if (!f->cpu_invariant_tsc)
                return 0;
        read_boot_id(boot_id);
        if (!cache_path || !boot_id[0])
                return measure_tsc_khz();
        khz = cached_tsc_khz(cache_path, boot_id);
        if (khz)
                return khz;
        khz = measure_tsc_khz();
        if (khz)
                store_tsc_khz(cache_path, boot_id, khz);
        return khz;
#else
        return 0;
#endif
}

int vm_host_facts_probe(struct vm_host_facts *ret)
{
        struct vm_host_facts f = {0};
        _cleanup_free_ char *cpuinfo = NULL;
        int r;

        r = read_cpuinfo_prefix(&cpuinfo);
        if (r < 0)
                return r;
        vm_host_facts_parse_cpuinfo(cpuinfo, &f);
        probe_kvm(&f);
        f.kvm_module = probe_kvm_module();
        *ret = f;
        return 0;
}

/* Why KVM cannot run our guest here, or NULL when it can. */
static const char *kvm_unusable_reason(const struct vm_host_facts *f, char *buf, size_t size)
{
        if (f->kvm_module == VM_KVM_MODULE_PVM)
                return f->cpu_has_virt ? "/dev/kvm is PVM (kvm_pvm), which runs only PVM-aware "
                                         "guest kernels"
                                       : "no hardware virtualization (vmx/svm) visible; /dev/kvm "
                                         "is PVM (kvm_pvm), which runs only PVM-aware guest "
                                         "kernels";
        if (!f->cpu_has_virt)
                return f->cpu_hypervisor ? "no hardware virtualization (vmx/svm) visible (this "
                                           "host is a VM without nested virtualization)"
                                         : "no hardware virtualization (vmx/svm) visible";
        if (!f->kvm_exists)
                return "/dev/kvm does not exist (load kvm_intel or kvm_amd)";
        if (f->kvm_errno == EACCES || f->kvm_errno == EPERM)
                return "/dev/kvm is not accessible to this user (add it to the 'kvm' group)";
        if (f->kvm_errno != 0) {
                snprintf(buf, size, "/dev/kvm cannot be used: %s", strerror(f->kvm_errno));
                return buf;
        }
        if (!f->kvm_usable) {
                snprintf(buf, size, "/dev/kvm speaks KVM API version %d, not %d",
                         f->kvm_api_version, KVM_API_VERSION);
                return buf;
        }
        return NULL;
}

int vm_accel_decide(enum vm_accel requested, const struct vm_host_facts *f,
                    enum vm_accel *ret_chosen, char *notice, size_t notice_size)
{
        char buf[128];
        const char *why;

        if (notice_size > 0)
                notice[0] = '\0';
        switch (requested) {
        case VM_ACCEL_TCG:
                *ret_chosen = VM_ACCEL_TCG;
                return 0;
        case VM_ACCEL_KVM:
                why = kvm_unusable_reason(f, buf, sizeof(buf));
                if (why)
                        return vm_fail(notice, notice_size, -ENODEV, "KVM is not usable here: %s",
                                       why);
                *ret_chosen = VM_ACCEL_KVM;
                return 0;
        case VM_ACCEL_AUTO:
                why = kvm_unusable_reason(f, buf, sizeof(buf));
                if (why) {
                        vm_fail(notice, notice_size, 0,
                                "%s; using TCG software emulation, 10-50x slower", why);
                        *ret_chosen = VM_ACCEL_TCG;
                } else {
                        *ret_chosen = VM_ACCEL_KVM;
                }
                return 0;
        }
        return vm_fail(notice, notice_size, -EINVAL, "unknown accelerator %d", (int)requested);
}

int vm_accel_from_string(const char *s, enum vm_accel *ret)
{
        static const enum vm_accel all[] = {VM_ACCEL_AUTO, VM_ACCEL_KVM, VM_ACCEL_TCG};

        for (size_t i = 0; s && i < ARRAY_SIZE(all); i++)
                if (streq(s, vm_accel_name(all[i]))) {
                        *ret = all[i];
                        return 0;
                }
        return -EINVAL;
}

const char *vm_accel_name(enum vm_accel a)
{
        switch (a) {
        case VM_ACCEL_AUTO:
                return "auto";
        case VM_ACCEL_KVM:
                return "kvm";
        case VM_ACCEL_TCG:
                return "tcg";
        }
        return "unknown";
}
