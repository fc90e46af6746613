/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host directory → image: a tree made here, converted, judged by e2fsck and
 * read back with debugfs; unreadable files reported by path; the rootfs
 * plausibility check.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "e2fs.h"
#include "lib/core/util.h"
#include "lib/image/dirsrc.h"

#define MiB (UINT64_C(1) << 20)

struct fix {
        char *dir;
        char tree[512];
        char img[512];
};

static int setup(void **state)
{
        struct fix *f = calloc(1, sizeof(*f));

        char out[400];

        f->dir = e2fs_tmpdir();
        snprintf(f->tree, sizeof(f->tree), "%s/tree", f->dir);
        assert_int_equal(mkdir(f->tree, 0755), 0);
        /* The output directory is writable by the unprivileged child below. */
        snprintf(out, sizeof(out), "%s/out", f->dir);
        assert_int_equal(mkdir(out, 0777), 0);
        assert_int_equal(chmod(out, 0777), 0);
        snprintf(f->img, sizeof(f->img), "%s/image.ext4", out);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fix *f = *state;

        assert_int_equal(rm_rf(f->dir), 0);
        free(f->dir);
        free(f);
        return 0;
}

static void put(const struct fix *f, const char *rel, const char *text, mode_t mode)
{
        char p[1024];

        snprintf(p, sizeof(p), "%s/%s", f->tree, rel);
        assert_int_equal(write_file(p, text, 0600), 0);
        assert_int_equal(chmod(p, mode), 0);
}

static void sub(const struct fix *f, const char *rel, char *buf, size_t size)
{
        snprintf(buf, size, "%s/%s", f->tree, rel);
}

static long long field(const char *img, const char *path, const char *name)
{
        char *out = e2fs_debugfs(img, "stat \"%s\"", path);
        long long v = e2fs_field(out, name);

        free(out);
        return v;
}

static bool stat_has(const char *img, const char *path, const char *text)
{
        char *out = e2fs_debugfs(img, "stat \"%s\"", path);
        bool found = strstr(out, text) != NULL;

        free(out);
        return found;
}

static void test_tree(void **state)
{
        struct fix *f = *state;
        const struct img_dir_opts opts = {.label = "dir"};
        const struct timespec times[2] = {{.tv_sec = 1600000000, .tv_nsec = 5},
                                          {.tv_sec = 1700000000, .tv_nsec = 123456789}};
        static const uint8_t cap[20] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x20};
        char p[1024], q[1024], *bad = NULL, *out;
        bool root = geteuid() == 0, have_user_xattr, have_cap = false, have_dev = false;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd, s;

        sub(f, "etc", p, sizeof(p));
        assert_int_equal(mkdir(p, 0755), 0);
        put(f, "etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0644);
        put(f, "etc/empty", "", 0600);
        put(f, "suid", "#!/bin/sh\n", 04755);
        sub(f, "etc/passwd", p, sizeof(p));
        assert_int_equal(utimensat(AT_FDCWD, p, times, 0), 0);

        /* 1 GiB with 4 KiB of data in the middle. */
        sub(f, "sparse", p, sizeof(p));
        fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, 1024 * MiB), 0);
        assert_int_equal(pwrite(fd, "data", 4, 512 * MiB), 4);
        close(fd);

        /* Symlinks, never followed: one leads out of the tree. */
        sub(f, "lnk", p, sizeof(p));
        assert_int_equal(symlink("etc/passwd", p), 0);
        sub(f, "escape", p, sizeof(p));
        assert_int_equal(symlink("/etc", p), 0);
        memset(q, 'l', 200);
        q[200] = '\0';
        sub(f, "longlink", p, sizeof(p));
        assert_int_equal(symlink(q, p), 0);

        /* Three names of one file. */
        sub(f, "etc/passwd", p, sizeof(p));
        sub(f, "hard1", q, sizeof(q));
        assert_int_equal(link(p, q), 0);
        sub(f, "hard2", q, sizeof(q));
        assert_int_equal(link(p, q), 0);

        sub(f, "fifo", p, sizeof(p));
        assert_int_equal(mkfifo(p, 0640), 0);
        sub(f, "fifo.link", q, sizeof(q));
        assert_int_equal(link(p, q), 0);
        sub(f, "sock", p, sizeof(p));
        assert_true(strlen(p) < sizeof(sa.sun_path));
        strcpy(sa.sun_path, p);
        s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
        close(s);

        sub(f, "tmp", p, sizeof(p));
        assert_int_equal(mkdir(p, 0755), 0);
        assert_int_equal(chmod(p, 01777), 0);

        sub(f, "etc/passwd", p, sizeof(p));
        have_user_xattr = setxattr(p, "user.origin", "host", 4, 0) == 0;
        if (root) {
                sub(f, "suid", p, sizeof(p));
                have_cap = setxattr(p, "security.capability", cap, sizeof(cap), 0) == 0;
                sub(f, "null", p, sizeof(p));
                have_dev = mknod(p, S_IFCHR | 0666, makedev(1, 3)) == 0;
                sub(f, "home", p, sizeof(p));
                assert_int_equal(mkdir(p, 0755), 0);
                assert_int_equal(chown(p, 1000, 1000), 0);
                sub(f, "etc/empty", p, sizeof(p));
                assert_int_equal(chown(p, 65534, 65534), 0);
        }

        assert_int_equal(img_ext4_from_dir(f->tree, f->img, &opts, &bad), 0);
        assert_null(bad);
        assert_int_equal(e2fs_fsck(f->img), 0);

        out = e2fs_debugfs(f->img, "cat /etc/passwd");
        assert_string_equal(out, "root:x:0:0::/root:/bin/sh\n");
        free(out);
        assert_true(stat_has(f->img, "/etc/passwd", "mtime: 0x6553f100:1d6f3454"));
        assert_int_equal(field(f->img, "/etc/passwd", "Links"), 3);
        assert_int_equal(field(f->img, "/hard2", "Links"), 3);
        assert_int_equal(field(f->img, "/etc/empty", "Size"), 0);
        assert_int_equal(field(f->img, "/etc/empty", "Mode"), 0600);
        assert_int_equal(field(f->img, "/suid", "Mode"), 04755);
        assert_int_equal(field(f->img, "/tmp", "Mode"), 01777);
        assert_int_equal(field(f->img, "/sparse", "Size"), 1024 * MiB);
        assert_int_equal(field(f->img, "/sparse", "Blockcount"), 8);
        assert_true(e2fs_disk_usage(f->img) < 16 * MiB);
        assert_true(stat_has(f->img, "/lnk", "Fast link dest: \"etc/passwd\""));
        assert_true(stat_has(f->img, "/escape", "Fast link dest: \"/etc\""));
        assert_int_equal(field(f->img, "/longlink", "Size"), 200);
        assert_true(stat_has(f->img, "/fifo", "Type: FIFO"));
        assert_int_equal(field(f->img, "/fifo", "Mode"), 0640);
        assert_int_equal(field(f->img, "/fifo.link", "Links"), 2);
        assert_true(stat_has(f->img, "/sock", "Type: socket"));
        /* Ownership is kept exactly without map_owner_to_root. */
        assert_int_equal(field(f->img, "/suid", "User"), geteuid());
        if (have_user_xattr) {
                out = e2fs_debugfs(f->img, "ea_get /etc/passwd user.origin");
                assert_non_null(strstr(out, "host"));
                free(out);
        }
        if (have_cap) {
                out = e2fs_debugfs(f->img, "ea_get -x /suid security.capability");
                assert_non_null(strstr(out, "01 00 00 02 00 20"));
                free(out);
        }
        if (have_dev)
                assert_true(stat_has(f->img, "/null", "major/minor number: 01:03"));
        if (root) {
                assert_int_equal(field(f->img, "/home", "User"), 1000);
                assert_int_equal(field(f->img, "/home", "Group"), 1000);
                assert_int_equal(field(f->img, "/etc/empty", "User"), 65534);
        }

        /* A second conversion to the same path is refused, the first kept. */
        assert_int_equal(img_ext4_from_dir(f->tree, f->img, &opts, NULL), -EEXIST);
        assert_int_equal(e2fs_fsck(f->img), 0);
}

/* Runs fn in a child as uid/gid 65534 when we are root, else in place. */
static int as_unprivileged(int (*fn)(struct fix *), struct fix *f)
{
        pid_t pid;
        int status;

        if (geteuid() != 0)
                return fn(f);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
                    setresuid(65534, 65534, 65534) < 0)
                        _exit(100);
                _exit(fn(f));
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        return WEXITSTATUS(status);
}

/* Exit codes for the child: 0 as expected, else which check failed. */
static int convert_unreadable(struct fix *f)
{
        const struct img_dir_opts opts = {0};
        char *bad = NULL, want[1024];
        int r;

        r = img_ext4_from_dir(f->tree, f->img, &opts, &bad);
        snprintf(want, sizeof(want), "%s/sub/secret", f->tree);
        if (r != -EACCES)
                return 1;
        if (!bad || strcmp(bad, want) != 0)
                return 2;
        free(bad);
        if (access(f->img, F_OK) == 0)
                return 3;
        return 0;
}

static void test_unreadable(void **state)
{
        struct fix *f = *state;
        char p[1024];

        sub(f, "sub", p, sizeof(p));
        assert_int_equal(mkdir(p, 0755), 0);
        put(f, "sub/readable", "ok\n", 0644);
        put(f, "sub/secret", "no\n", 0000);
        assert_int_equal(chmod(f->tree, 0755), 0);
        assert_int_equal(chmod(f->dir, 0755), 0);
        assert_int_equal(as_unprivileged(convert_unreadable, f), 0);
}

static int convert_mapped(struct fix *f)
{
        const struct img_dir_opts opts = {.map_owner_to_root = true};

        return img_ext4_from_dir(f->tree, f->img, &opts, NULL) == 0 ? 0 : 1;
}

static void test_map_owner(void **state)
{
        struct fix *f = *state;
        uid_t me = geteuid() == 0 ? 65534 : geteuid();
        gid_t mine = geteuid() == 0 ? 65534 : getegid();
        char p[1024];

        put(f, "mine", "m\n", 0644);
        sub(f, "d", p, sizeof(p));
        assert_int_equal(mkdir(p, 0750), 0);
        if (geteuid() == 0) {
                /* The tree belongs to the unprivileged user, but for one file. */
                put(f, "other", "o\n", 0644);
                sub(f, "other", p, sizeof(p));
                assert_int_equal(chown(p, 1000, 1000), 0);
                assert_int_equal(chown(f->tree, me, mine), 0);
                sub(f, "mine", p, sizeof(p));
                assert_int_equal(chown(p, me, mine), 0);
                sub(f, "d", p, sizeof(p));
                assert_int_equal(chown(p, me, mine), 0);
                assert_int_equal(chmod(f->dir, 0755), 0);
        }
        assert_int_equal(as_unprivileged(convert_mapped, f), 0);
        assert_int_equal(e2fs_fsck(f->img), 0);
        assert_int_equal(field(f->img, "/mine", "User"), 0);
        assert_int_equal(field(f->img, "/mine", "Group"), 0);
        assert_int_equal(field(f->img, "/d", "User"), 0);
        assert_int_equal(field(f->img, "/d", "Mode"), 0750);
        assert_int_equal(field(f->img, "/", "User"), 0);
        if (geteuid() == 0) {
                assert_int_equal(field(f->img, "/other", "User"), 1000);
                assert_int_equal(field(f->img, "/other", "Group"), 1000);
        }
}

static void test_check_rootfs(void **state)
{
        struct fix *f = *state;
        char p[1024];

        put(f, "file", "x", 0644);
        sub(f, "file", p, sizeof(p));
        assert_int_equal(img_dir_check_rootfs(p), -ENOTDIR);
        sub(f, "missing", p, sizeof(p));
        assert_int_equal(img_dir_check_rootfs(p), -ENOENT);
        assert_int_equal(img_dir_check_rootfs(f->tree), -ENOEXEC);

        sub(f, "bin", p, sizeof(p));
        assert_int_equal(mkdir(p, 0755), 0);
        put(f, "bin/sh", "not executable", 0644);
        assert_int_equal(img_dir_check_rootfs(f->tree), -ENOEXEC);
        put(f, "bin/busybox",
            "\x7f"
            "ELF",
            0755);
        assert_int_equal(img_dir_check_rootfs(f->tree), 0);

        sub(f, "bin/busybox", p, sizeof(p));
        assert_int_equal(unlink(p), 0);
        sub(f, "etc", p, sizeof(p));
        assert_int_equal(mkdir(p, 0755), 0);
        assert_int_equal(img_dir_check_rootfs(f->tree), 0);
}

static void test_missing_source(void **state)
{
        struct fix *f = *state;
        const struct img_dir_opts opts = {0};
        char p[1024], *bad = NULL;

        sub(f, "nope", p, sizeof(p));
        assert_int_equal(img_ext4_from_dir(p, f->img, &opts, &bad), -ENOENT);
        assert_string_equal(bad, p);
        free(bad);
        assert_int_equal(access(f->img, F_OK), -1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_tree, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unreadable, setup, teardown),
                cmocka_unit_test_setup_teardown(test_map_owner, setup, teardown),
                cmocka_unit_test_setup_teardown(test_check_rootfs, setup, teardown),
                cmocka_unit_test_setup_teardown(test_missing_source, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
