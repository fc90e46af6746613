/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The QEMU process: vm_start()'s refusals before anything runs, an exec
 * failure carried back, and real QEMU runs (skipped where QEMU is not
 * installed). The real runs need no guest kernel: a 200-byte PVH ELF made
 * here writes "ok" to the serial port and halts, which is enough to see the
 * whole path (command line accepted, console wired, fds, kill, reap), and a
 * file of junk as the kernel makes QEMU fail with a message to capture.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/core/util.h"
#include "lib/vm/vm.h"

/* Bounds for a failing test only; a loaded CI machine under TCG is slow. */
#define WAIT_MS (120 * 1000)

static char tmpdir[256];

static char *tmp_path(const char *name)
{
        char *p = strdup_printf("%s/%s", tmpdir, name);
        assert_non_null(p);
        return p;
}

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
        for (int i = 0; i < bytes; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

/*
 * A 32-bit ELF with one PT_LOAD at 1 MiB and a Xen PHYS32_ENTRY note, which
 * QEMU boots like a PVH kernel. The code: mov dx,0x3f8; "ok\n" out to COM1;
 * cli; hlt; jmp back to hlt.
 */
static void write_tiny_kernel(const char *path)
{
        static const uint8_t code[] = {0x66, 0xba, 0xf8, 0x03, 0xb0, 'o',  0xee, 0xb0, 'k',
                                       0xee, 0xb0, '\n', 0xee, 0xfa, 0xf4, 0xeb, 0xfd};
        enum { EHDR = 52, PHDR = 32, NOTE = 20, CODE = EHDR + 2 * PHDR + NOTE };
        const uint32_t base = 0x100000, entry = base + CODE;
        uint8_t img[CODE + sizeof(code)] = {0x7f, 'E', 'L', 'F', 1, 1, 1};
        uint8_t *ph = img + EHDR, *note = img + EHDR + 2 * PHDR;

        put_le(img + 16, 2, 2);          /* ET_EXEC */
        put_le(img + 18, 3, 2);          /* EM_386 */
        put_le(img + 20, 1, 4);          /* EV_CURRENT */
        put_le(img + 24, entry, 4);      /* e_entry */
        put_le(img + 28, EHDR, 4);       /* e_phoff */
        put_le(img + 40, EHDR, 2);       /* e_ehsize */
        put_le(img + 42, PHDR, 2);       /* e_phentsize */
        put_le(img + 44, 2, 2);          /* e_phnum */
        put_le(img + 46, 40, 2);         /* e_shentsize */
        put_le(ph + 0, 1, 4);            /* PT_LOAD */
        put_le(ph + 8, base, 4);         /* p_vaddr */
        put_le(ph + 12, base, 4);        /* p_paddr */
        put_le(ph + 16, sizeof(img), 4); /* p_filesz */
        put_le(ph + 20, sizeof(img), 4); /* p_memsz */
        put_le(ph + 24, 5, 4);           /* R+X */
        put_le(ph + 28, 0x1000, 4);      /* p_align */
        put_le(ph + PHDR + 0, 4, 4);     /* PT_NOTE */
        put_le(ph + PHDR + 4, CODE - NOTE, 4);
        put_le(ph + PHDR + 16, NOTE, 4);
        put_le(ph + PHDR + 20, NOTE, 4);
        put_le(ph + PHDR + 28, 4, 4);
        put_le(note + 0, 4, 4);  /* namesz */
        put_le(note + 4, 4, 4);  /* descsz */
        put_le(note + 8, 18, 4); /* XEN_ELFNOTE_PHYS32_ENTRY */
        memcpy(note + 12, "Xen", 4);
        put_le(note + 16, entry, 4);
        memcpy(img + CODE, code, sizeof(code));

        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write_all(fd, img, sizeof(img)), 0);
}

static int setup(void **state)
{
        const char *t = getenv("TMPDIR");
        _cleanup_free_ char *kernel = NULL, *junk = NULL, *initrd = NULL, *fake = NULL;

        snprintf(tmpdir, sizeof(tmpdir), "%s/msb-test-vm-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(tmpdir))
                return -1;
        kernel = tmp_path("tiny.elf");
        junk = tmp_path("junk-kernel");
        initrd = tmp_path("initramfs.cpio");
        fake = tmp_path("fake-qemu");
        write_tiny_kernel(kernel);
        if (write_file(junk, "this is not a kernel, just junk bytes of some length\n", 0644) < 0 ||
            write_file(initrd, "07070100000000", 0644) < 0 ||
            write_file(fake, "\x01\x02 not an executable format\n", 0755) < 0)
                return -1;
        return 0;
}

static int teardown(void **state)
{
        return rm_rf(tmpdir);
}

static bool have_qemu(void)
{
        const char *path = getenv("PATH");

        for (const char *p = path ? path : ""; *p; p += *p == ':') {
                size_t k = strcspn(p, ":");
                _cleanup_free_ char *cand = strdup_printf("%.*s/qemu-system-x86_64", (int)k, p);
                if (cand && access(cand, X_OK) == 0)
                        return true;
                p += k;
        }
        return false;
}

static struct vm_config base_config(void)
{
        static char kernel[300], initrd[300];

        snprintf(kernel, sizeof(kernel), "%s/tiny.elf", tmpdir);
        snprintf(initrd, sizeof(initrd), "%s/initramfs.cpio", tmpdir);
        return (struct vm_config){
                .kernel = kernel,
                .initramfs = initrd,
                .memory_mib = VM_MIN_MEMORY_MIB,
                .cpus = 1,
                .accel = VM_ACCEL_TCG,
                .agent_fd = -1,
                .console_fd = -1,
        };
}

/* vm_start() fails with want_r and the message printf(fmt, ...), leaving *ret alone. */
static void start_fails(const struct vm_config *c, int want_r, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void start_fails(const struct vm_config *c, int want_r, const char *fmt, ...)
{
        struct vm *v = (struct vm *)0x1;
        char err[512] = "junk", want[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(want, sizeof(want), fmt, ap);
        va_end(ap);
        assert_int_equal(vm_start(c, &v, err, sizeof(err)), want_r);
        assert_ptr_equal(v, (struct vm *)0x1);
        assert_string_equal(err, want);
}

static void test_missing_files(void **state)
{
        struct vm_config c = base_config();
        _cleanup_free_ char *nothing = tmp_path("nothing");
        _cleanup_close_ int file_fd = open(c.kernel, O_RDONLY | O_CLOEXEC);

        c.qemu = "msb-test-no-such-qemu";
        start_fails(&c, -ENOENT, "QEMU not found: msb-test-no-such-qemu (install qemu-system-x86)");
        c.qemu = nothing;
        start_fails(&c, -ENOENT, "QEMU not found: %s (install qemu-system-x86)", nothing);

        c.qemu = "/bin/true"; /* exists; nothing is run when a check fails */
        c.kernel = nothing;
        start_fails(&c, -ENOENT, "guest kernel not found: %s", nothing);

        c = base_config();
        c.qemu = "/bin/true";
        c.initramfs = nothing;
        start_fails(&c, -ENOENT, "initramfs not found: %s", nothing);

        c = base_config();
        c.qemu = "/bin/true";
        c.disks[0] = (struct vm_disk){.path = nothing, .serial = "msb-base"};
        c.n_disks = 1;
        start_fails(&c, -ENOENT, "disk image not found: %s", nothing);

        c = base_config();
        c.qemu = "/bin/true";
        assert_true(file_fd >= 0);
        c.agent_fd = file_fd;
        start_fails(&c, -ENOTSOCK, "the agent fd %d is not a socket", file_fd);

        c = base_config();
        c.qemu = "/bin/true";
        c.console_fd = file_fd;
        start_fails(&c, -ENOTSOCK, "the console fd %d is not a socket", file_fd);
}

static void test_bad_config(void **state)
{
        struct vm_config c = base_config();

        c.qemu = "/bin/true";
        c.cpus = 0;
        start_fails(&c, -EINVAL, "vCPUs must be 1 to 64, not 0");
}

static void test_exec_failure(void **state)
{
        struct vm_config c = base_config();
        _cleanup_free_ char *fake = tmp_path("fake-qemu");

        c.qemu = fake;
        start_fails(&c, -ENOEXEC, "cannot run QEMU %s: %s", fake, strerror(ENOEXEC));
}

/* Waits until QEMU exits; fails the test after WAIT_MS. */
static int wait_exit(struct vm *v)
{
        struct pollfd p = {.fd = vm_pidfd(v), .events = POLLIN};
        int status;

        assert_true(p.fd >= 0);
        assert_int_equal(poll(&p, 1, WAIT_MS), 1);
        assert_int_equal(vm_poll_exit(v, &status), 1);
        return status;
}

static void test_qemu_error_captured(void **state)
{
        _cleanup_free_ char *junk = tmp_path("junk-kernel"), *out = tmp_path("qemu.log");
        _cleanup_free_ char *tail = NULL, *file = NULL;
        struct vm_config c = base_config();
        _cleanup_(vm_freep) struct vm *v = NULL;
        char err[256];
        int status;

        if (!have_qemu())
                skip();
        c.kernel = junk;
        c.stderr_path = out;
        assert_int_equal(vm_start(&c, &v, err, sizeof(err)), 0);
        status = wait_exit(v);
        assert_true(WIFEXITED(status));
        assert_int_not_equal(WEXITSTATUS(status), 0);
        assert_int_equal(vm_stderr_tail(v, &tail), 0);
        if (!strstr(tail, "kernel"))
                fail_msg("QEMU's message was not captured: \"%s\"", tail);
        /* The file holds the same text. */
        assert_int_equal(read_file(out, 4096, &file, NULL), 0);
        assert_non_null(strstr(file, tail));
        /* Exited is sticky; killing an exited VM is a no-op. */
        assert_int_equal(vm_poll_exit(v, &status), 1);
        assert_int_equal(vm_kill(v), 0);
}

/* Waits until the console (our end of its socketpair) has said want. */
static void wait_for_text(struct vm *v, int console, const char *want)
{
        uint64_t deadline = now_ns(CLOCK_MONOTONIC) + (uint64_t)WAIT_MS * 1000000;
        char text[4096];
        size_t len = 0;

        for (;;) {
                struct pollfd p[2] = {{.fd = console, .events = POLLIN},
                                      {.fd = vm_pidfd(v), .events = POLLIN}};
                uint64_t now = now_ns(CLOCK_MONOTONIC);
                ssize_t n;

                assert_true(now < deadline);
                assert_true(poll(p, 2, (int)((deadline - now) / 1000000) + 1) >= 0);
                if (p[0].revents) {
                        n = read(console, text + len, sizeof(text) - 1 - len);
                        assert_true(n > 0);
                        len += (size_t)n;
                        text[len] = '\0';
                        if (strstr(text, want))
                                return;
                        assert_true(len < sizeof(text) - 1);
                } else if (p[1].revents) {
                        _cleanup_free_ char *tail = NULL;
                        vm_stderr_tail(v, &tail);
                        fail_msg("QEMU exited early: %s", tail ? tail : "?");
                }
        }
}

/* A socketpair for the console: [0] ours, [1] QEMU's. */
static void console_pair(int console[2])
{
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, console), 0);
}

static void readlink_fd(pid_t pid, int fd, char *buf, size_t size)
{
        char path[64];
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
        n = readlink(path, buf, size - 1);
        buf[n < 0 ? 0 : n] = '\0';
}

static void test_qemu_runs_and_dies(void **state)
{
        _cleanup_free_ char *marker = tmp_path("marker");
        _cleanup_free_ char *env = NULL, *fddir = NULL;
        struct vm_config c = base_config();
        _cleanup_(vm_freep) struct vm *v = NULL;
        _cleanup_close_ int leak = -1;
        char err[256], want[128], got[128];
        int sv[2], console[2], status;
        size_t env_len = 1;
        pid_t pid;

        if (!have_qemu())
                skip();
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        /* An fd without O_CLOEXEC, as a careless embedder might leave one. */
        assert_int_equal(write_file(marker, "", 0600), 0);
        leak = open(marker, O_RDONLY);
        assert_true(leak >= 0);

        console_pair(console);
        c.agent_fd = sv[1];
        c.console_fd = console[1];
        assert_int_equal(vm_start(&c, &v, err, sizeof(err)), 0);
        pid = vm_pid(v);
        wait_for_text(v, console[0], "ok\n");
        assert_int_equal(vm_poll_exit(v, &status), 0);

        /* Exactly the fds we meant: fd 3 and 6 are our sockets, 0 is
         * /dev/null, and nothing points at the leaked file. */
        readlink_fd(getpid(), sv[1], want, sizeof(want));
        readlink_fd(pid, VM_CHILD_AGENT_FD, got, sizeof(got));
        assert_string_equal(got, want);
        readlink_fd(getpid(), console[1], want, sizeof(want));
        readlink_fd(pid, VM_CHILD_CONSOLE_FD, got, sizeof(got));
        assert_string_equal(got, want);
        readlink_fd(pid, 0, got, sizeof(got));
        assert_string_equal(got, "/dev/null");
        for (int fd = 0; fd < 256; fd++) {
                readlink_fd(pid, fd, got, sizeof(got));
                assert_false(streq(got, marker));
        }
        /* An empty environment and a process group of its own. */
        fddir = strdup_printf("/proc/%d/environ", (int)pid);
        assert_int_equal(read_file(fddir, 65536, &env, &env_len), 0);
        assert_int_equal(env_len, 0);
        assert_int_equal(getpgid(pid), pid);

        assert_int_equal(vm_kill(v), 0);
        assert_int_equal(vm_poll_exit(v, &status), 1);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGKILL);
        assert_int_equal(poll(&(struct pollfd){.fd = vm_pidfd(v), .events = POLLIN}, 1, 0), 1);
        assert_int_equal(kill(pid, 0), -1); /* reaped: no QEMU remains */
        assert_int_equal(errno, ESRCH);
        assert_int_equal(vm_kill(v), 0);
        close(sv[0]);
        close(sv[1]);
        close(console[0]);
        close(console[1]);
}

static int pidfd_open_(pid_t pid)
{
        return (int)syscall(SYS_pidfd_open, pid, 0);
}

static void test_free_kills(void **state)
{
        struct vm_config c = base_config();
        struct vm *v = NULL;
        _cleanup_close_ int pidfd = -1;
        int console[2];
        char err[256];

        if (!have_qemu())
                skip();
        console_pair(console);
        c.console_fd = console[1];
        assert_int_equal(vm_start(&c, &v, err, sizeof(err)), 0);
        close(console[1]);
        wait_for_text(v, console[0], "ok\n");
        pidfd = pidfd_open_(vm_pid(v));
        assert_true(pidfd >= 0);
        assert_null(vm_free(v));
        /* vm_free() returned only after QEMU was gone and reaped. */
        assert_int_equal(poll(&(struct pollfd){.fd = pidfd, .events = POLLIN}, 1, 0), 1);
        assert_null(vm_free(NULL));
        close(console[0]);
}

/*
 * The owner dies without vm_free(): PR_SET_PDEATHSIG kills QEMU. A helper
 * process owns the VM and exits; we are the subreaper that inherits (and
 * reaps) the orphaned QEMU.
 */
static void test_owner_death_kills_qemu(void **state)
{
        _cleanup_close_ int qemu_fd = -1;
        int to_helper[2], from_helper[2], status;
        pid_t helper, qemu = 0;
        char go = 'g';

        if (!have_qemu())
                skip();
        assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
        assert_int_equal(pipe2(to_helper, O_CLOEXEC), 0);
        assert_int_equal(pipe2(from_helper, O_CLOEXEC), 0);
        helper = fork();
        assert_true(helper >= 0);
        if (helper == 0) {
                struct vm_config c = base_config();
                struct vm *v;
                int console[2];
                pid_t p;

                console_pair(console);
                c.console_fd = console[1];
                if (vm_start(&c, &v, NULL, 0) < 0)
                        _exit(1);
                p = vm_pid(v);
                if (write(from_helper[1], &p, sizeof(p)) != sizeof(p) ||
                    read(to_helper[0], &go, 1) != 1)
                        _exit(2);
                _exit(0); /* no vm_free(): the kernel must do it */
        }
        close(to_helper[0]);
        close(from_helper[1]);
        assert_int_equal(read(from_helper[0], &qemu, sizeof(qemu)), sizeof(qemu));
        qemu_fd = pidfd_open_(qemu);
        assert_true(qemu_fd >= 0);
        assert_int_equal(write(to_helper[1], &go, 1), 1);
        assert_int_equal(waitpid(helper, &status, 0), helper);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

        assert_int_equal(poll(&(struct pollfd){.fd = qemu_fd, .events = POLLIN}, 1, WAIT_MS), 1);
        assert_int_equal(waitpid(qemu, &status, 0), qemu);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGKILL);
        close(to_helper[1]);
        close(from_helper[0]);
        assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_missing_files),
                cmocka_unit_test(test_bad_config),
                cmocka_unit_test(test_exec_failure),
                cmocka_unit_test(test_qemu_error_captured),
                cmocka_unit_test(test_qemu_runs_and_dies),
                cmocka_unit_test(test_free_kills),
                cmocka_unit_test(test_owner_death_kills_qemu),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
