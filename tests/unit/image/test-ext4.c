/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ext4 writer: images with every entry kind, judged by e2fsck -fn and
 * read back with debugfs.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "e2fs.h"
#include "lib/core/util.h"
#include "lib/image/ext4.h"

#define MiB (UINT64_C(1) << 20)

struct fix {
        char *dir;
        char img[512];
        char out[512]; /* a scratch host file for debugfs dumps */
};

static int setup(void **state)
{
        struct fix *f = calloc(1, sizeof(*f));

        f->dir = e2fs_tmpdir();
        snprintf(f->img, sizeof(f->img), "%s/image.ext4", f->dir);
        snprintf(f->out, sizeof(f->out), "%s/dump", f->dir);
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

/* ---- data sources ------------------------------------------------------ */

/* Deterministic bytes, handed out in odd-sized pieces to exercise short reads. */
struct pattern {
        uint64_t seed, pos, left;
};

static uint8_t pattern_byte(uint64_t seed, uint64_t pos)
{
        uint64_t x = (pos / 8 + 1) * 0x9E3779B97F4A7C15ULL ^ seed;

        x ^= x >> 31;
        x *= 0xBF58476D1CE4E5B9ULL;
        x ^= x >> 29;
        return (uint8_t)(x >> (pos % 8 * 8));
}

static ssize_t pattern_read(void *ctx, void *buf, size_t n)
{
        struct pattern *p = ctx;
        uint8_t *b = buf;

        n = MIN(n, (size_t)7777);
        n = (size_t)MIN((uint64_t)n, p->left);
        for (size_t i = 0; i < n; i++)
                b[i] = pattern_byte(p->seed, p->pos + i);
        p->pos += n;
        p->left -= n;
        return (ssize_t)n;
}

static bool pattern_check(const char *path, uint64_t seed, uint64_t size)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        uint8_t buf[65536];
        uint64_t pos = 0;
        ssize_t k;
        bool ok = fd >= 0;

        while (ok && (k = read(fd, buf, sizeof(buf))) > 0) {
                for (ssize_t i = 0; i < k && ok; i++)
                        ok = buf[i] == pattern_byte(seed, pos + (uint64_t)i);
                pos += (uint64_t)k;
        }
        if (fd >= 0)
                close(fd);
        return ok && pos == size;
}

struct mem {
        const uint8_t *p;
        size_t left;
};

static ssize_t mem_read(void *ctx, void *buf, size_t n)
{
        struct mem *m = ctx;

        n = MIN(n, m->left);
        memcpy(buf, m->p, n);
        m->p += n;
        m->left -= n;
        return (ssize_t)n;
}

/* 1 MiB of pattern, zeros, then 1 MiB of pattern again. */
struct holey {
        uint64_t pos, size;
};

static ssize_t holey_read(void *ctx, void *buf, size_t n)
{
        struct holey *h = ctx;
        uint8_t *b = buf;

        n = (size_t)MIN((uint64_t)n, h->size - h->pos);
        for (size_t i = 0; i < n; i++) {
                uint64_t at = h->pos + i;

                b[i] = at < MiB || at >= h->size - MiB ? pattern_byte(7, at) | 1 : 0;
        }
        h->pos += n;
        return (ssize_t)n;
}

static ssize_t failing_read(void *ctx, void *buf, size_t n)
{
        int *calls = ctx;

        if ((*calls)++ == 0) {
                memset(buf, 'x', MIN(n, (size_t)4096));
                return (ssize_t)MIN(n, (size_t)4096);
        }
        return -EIO;
}

/* ---- helpers ----------------------------------------------------------- */

static struct img_ext4 *new_image(const char *path, uint64_t size, bool writable)
{
        const struct img_ext4_params p = {
                .size_bytes = size, .label = "test", .writable = writable};
        struct img_ext4 *w = NULL;

        assert_int_equal(img_ext4_create(path, &p, &w), 0);
        assert_non_null(w);
        return w;
}

static void add_dir(struct img_ext4 *w, const char *path, mode_t mode, uid_t uid, gid_t gid)
{
        const struct img_entry e = {
                .path = path, .type = IMG_ENTRY_DIR, .mode = mode, .uid = uid, .gid = gid};

        assert_int_equal(img_ext4_add(w, &e), 0);
}

static void add_text(struct img_ext4 *w, const char *path, const char *text, mode_t mode)
{
        struct mem m = {.p = (const uint8_t *)text, .left = strlen(text)};
        const struct img_entry e = {.path = path,
                                    .type = IMG_ENTRY_REG,
                                    .mode = mode,
                                    .size = strlen(text),
                                    .read = mem_read,
                                    .read_ctx = &m};

        assert_int_equal(img_ext4_add(w, &e), 0);
}

static void add_symlink(struct img_ext4 *w, const char *path, const char *target)
{
        const struct img_entry e = {
                .path = path, .type = IMG_ENTRY_SYMLINK, .mode = 0777, .target = target};

        assert_int_equal(img_ext4_add(w, &e), 0);
}

static void add_hardlink(struct img_ext4 *w, const char *path, const char *target)
{
        const struct img_entry e = {.path = path, .type = IMG_ENTRY_HARDLINK, .target = target};

        assert_int_equal(img_ext4_add(w, &e), 0);
}

static void finish(struct img_ext4 *w, const char *img)
{
        assert_int_equal(img_ext4_finish(w), 0);
        img_ext4_free(w);
        assert_int_equal(e2fs_fsck(img), 0);
}

/* debugfs stat of path, with one field checked. */
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

static char *cat(const char *img, const char *path)
{
        return e2fs_debugfs(img, "cat \"%s\"", path);
}

static bool exists(const char *img, const char *path)
{
        return field(img, path, "Links") >= 0;
}

/* ---- tests ------------------------------------------------------------- */

static void test_every_kind(void **state)
{
        struct fix *f = *state;
        struct img_ext4 *w = new_image(f->img, 64 * MiB, false);
        static const uint8_t cap[20] = {0x01, 0x00, 0x00,
                                        0x02, 0x00, 0x20}; /* cap_net_bind_service */
        const struct img_xattr xattrs[] = {
                {"security.capability", cap, sizeof(cap)},
                {"user.origin", "test", 4},
                {"trusted.overlay.opaque", "y", 1},
                {"user.empty", "", 0},
        };
        struct mem m = {.p = (const uint8_t *)"#!/bin/sh\necho hi\n", .left = 18};
        const struct img_entry ping = {.path = "/usr/bin/ping",
                                       .type = IMG_ENTRY_REG,
                                       .mode = 04755,
                                       .uid = 0,
                                       .gid = 0,
                                       .mtime_ns = 1700000000123456789LL,
                                       .atime_ns = 1600000000000000001LL,
                                       .ctime_ns = 1700000001000000000LL,
                                       .size = 18,
                                       .read = mem_read,
                                       .read_ctx = &m,
                                       .xattrs = xattrs,
                                       .n_xattrs = ARRAY_SIZE(xattrs)};
        const struct img_entry empty = {.path = "/home/user/empty",
                                        .type = IMG_ENTRY_REG,
                                        .mode = 0600,
                                        .uid = 1000,
                                        .gid = 1000};
        const struct img_entry nobody = {.path = "/var/nobody",
                                         .type = IMG_ENTRY_DIR,
                                         .mode = 02770,
                                         .uid = 65534,
                                         .gid = 65534};
        const struct img_entry devs[] = {
                {.path = "/dev/null",
                 .type = IMG_ENTRY_CHR,
                 .mode = 0666,
                 .rdev_major = 1,
                 .rdev_minor = 3},
                {.path = "/dev/vda",
                 .type = IMG_ENTRY_BLK,
                 .mode = 0660,
                 .gid = 6,
                 .rdev_major = 254,
                 .rdev_minor = 0},
                {.path = "/dev/nvme0n1p9",
                 .type = IMG_ENTRY_BLK,
                 .mode = 0660,
                 .rdev_major = 259,
                 .rdev_minor = 70000},
                {.path = "/run/fifo", .type = IMG_ENTRY_FIFO, .mode = 0620},
                {.path = "/run/sock", .type = IMG_ENTRY_SOCK, .mode = 0755},
        };
        char long_target[300], *out;

        add_dir(w, "/tmp", 01777, 0, 0);
        add_dir(w, "/home/user", 0755, 1000, 1000);
        assert_int_equal(img_ext4_add(w, &ping), 0);
        assert_int_equal(img_ext4_add(w, &empty), 0);
        assert_int_equal(img_ext4_add(w, &nobody), 0);
        for (size_t i = 0; i < ARRAY_SIZE(devs); i++)
                assert_int_equal(img_ext4_add(w, &devs[i]), 0);
        add_symlink(w, "/bin/sh", "busybox");
        memset(long_target, 'x', sizeof(long_target) - 1);
        memcpy(long_target, "../", 3);
        long_target[sizeof(long_target) - 1] = '\0';
        add_symlink(w, "/bin/long", long_target);
        add_text(w, "/etc/motd", "hello\n", 0644);
        add_hardlink(w, "/etc/motd.1", "/etc/motd");
        add_hardlink(w, "/motd", "etc//./motd");
        finish(w, f->img);

        /* Regular file with setuid, ns times, xattrs. */
        out = cat(f->img, "/usr/bin/ping");
        assert_string_equal(out, "#!/bin/sh\necho hi\n");
        free(out);
        assert_int_equal(field(f->img, "/usr/bin/ping", "Mode"), 04755);
        assert_true(stat_has(f->img, "/usr/bin/ping", "mtime: 0x6553f100:1d6f3454"));
        out = e2fs_debugfs(f->img, "ea_get -x /usr/bin/ping security.capability");
        assert_non_null(strstr(out, "01 00 00 02 00 20 00 00"));
        free(out);
        out = e2fs_debugfs(f->img, "ea_get /usr/bin/ping user.origin");
        assert_non_null(strstr(out, "test"));
        free(out);
        out = e2fs_debugfs(f->img, "ea_list /usr/bin/ping");
        assert_non_null(strstr(out, "trusted.overlay.opaque"));
        assert_non_null(strstr(out, "user.empty"));
        free(out);

        /* Missing parents are 0755 root directories. */
        assert_int_equal(field(f->img, "/usr", "Mode"), 0755);
        assert_true(stat_has(f->img, "/usr", "Type: directory"));

        /* Empty file, owners, sticky and setgid directories. */
        assert_int_equal(field(f->img, "/home/user/empty", "Size"), 0);
        assert_int_equal(field(f->img, "/home/user/empty", "User"), 1000);
        assert_int_equal(field(f->img, "/home/user/empty", "Group"), 1000);
        assert_int_equal(field(f->img, "/home/user", "User"), 1000);
        assert_int_equal(field(f->img, "/tmp", "Mode"), 01777);
        assert_int_equal(field(f->img, "/var/nobody", "Mode"), 02770);
        assert_int_equal(field(f->img, "/var/nobody", "User"), 65534);
        assert_int_equal(field(f->img, "/var/nobody", "Group"), 65534);

        /* Devices, fifo, socket. */
        assert_true(stat_has(f->img, "/dev/null", "Type: character special"));
        assert_true(stat_has(f->img, "/dev/null", "major/minor number: 01:03"));
        assert_true(stat_has(f->img, "/dev/vda", "Type: block special"));
        assert_true(stat_has(f->img, "/dev/vda", "major/minor number: 254:00"));
        assert_int_equal(field(f->img, "/dev/vda", "Group"), 6);
        assert_true(stat_has(f->img, "/dev/nvme0n1p9", "259:70000"));
        assert_true(stat_has(f->img, "/run/fifo", "Type: FIFO"));
        assert_int_equal(field(f->img, "/run/fifo", "Mode"), 0620);
        assert_true(stat_has(f->img, "/run/sock", "Type: socket"));

        /* Symlinks: inline and in a block. */
        assert_true(stat_has(f->img, "/bin/sh", "Fast link dest: \"busybox\""));
        assert_int_equal(field(f->img, "/bin/long", "Size"), 299);
        assert_int_equal(field(f->img, "/bin/long", "Blockcount"), 8);
        out = cat(f->img, "/bin/long");
        assert_string_equal(out, long_target);
        free(out);

        /* Hard links share the inode and count. */
        assert_int_equal(field(f->img, "/etc/motd", "Links"), 3);
        out = cat(f->img, "/motd");
        assert_string_equal(out, "hello\n");
        free(out);
}

static void test_large_and_sparse(void **state)
{
        struct fix *f = *state;
        struct img_ext4 *w = new_image(f->img, 256 * MiB, false);
        struct pattern p = {.seed = 42, .left = 20 * MiB + 123};
        const struct img_entry large = {.path = "/large",
                                        .type = IMG_ENTRY_REG,
                                        .mode = 0644,
                                        .size = p.left,
                                        .read = pattern_read,
                                        .read_ctx = &p};
        /* 1 GiB with 4 KiB of data in the middle, given as a data map. */
        struct pattern sp = {.seed = 9, .left = 4096};
        const struct img_extent map[] = {{.offset = 512 * MiB, .length = 4096}};
        const struct img_entry sparse = {.path = "/sparse",
                                         .type = IMG_ENTRY_REG,
                                         .mode = 0644,
                                         .size = 1024 * MiB,
                                         .data_map = map,
                                         .n_data_map = 1,
                                         .read = pattern_read,
                                         .read_ctx = &sp};
        /* Zeros in the stream itself become holes too. */
        struct holey h = {.size = 8 * MiB};
        const struct img_entry holey = {.path = "/holey",
                                        .type = IMG_ENTRY_REG,
                                        .mode = 0644,
                                        .size = h.size,
                                        .read = holey_read,
                                        .read_ctx = &h};
        /* Unaligned regions of a map share blocks. */
        struct mem m = {.p = (const uint8_t *)"abcdefgh", .left = 8};
        const struct img_extent tiny_map[] = {{.offset = 3, .length = 2},
                                              {.offset = 4097, .length = 3},
                                              {.offset = 4100, .length = 3}};
        const struct img_entry tiny = {.path = "/tiny",
                                       .type = IMG_ENTRY_REG,
                                       .mode = 0644,
                                       .size = 5000,
                                       .data_map = tiny_map,
                                       .n_data_map = 3,
                                       .read = mem_read,
                                       .read_ctx = &m};
        /* 2000 extents: an extent tree two levels deep. */
        static struct img_extent frag_map[2000];
        struct pattern fp = {.seed = 5, .left = 2000 * 4096};
        const struct img_entry frag = {.path = "/fragmented",
                                       .type = IMG_ENTRY_REG,
                                       .mode = 0644,
                                       .size = 4000 * 4096,
                                       .data_map = frag_map,
                                       .n_data_map = ARRAY_SIZE(frag_map),
                                       .read = pattern_read,
                                       .read_ctx = &fp};
        char *out;

        for (size_t i = 0; i < ARRAY_SIZE(frag_map); i++)
                frag_map[i] = (struct img_extent){.offset = i * 2 * 4096, .length = 4096};
        assert_int_equal(img_ext4_add(w, &frag), 0);
        fp = (struct pattern){.seed = 5, .left = 2000 * 4096};
        assert_int_equal(img_ext4_add(w, &(struct img_entry){.path = "/fragmented2",
                                                             .type = IMG_ENTRY_REG,
                                                             .size = frag.size,
                                                             .data_map = frag_map,
                                                             .n_data_map = frag.n_data_map,
                                                             .read = pattern_read,
                                                             .read_ctx = &fp}),
                         0);
        assert_int_equal(img_ext4_remove(w, "/fragmented2"), 0);
        assert_int_equal(img_ext4_add(w, &large), 0);
        assert_int_equal(img_ext4_add(w, &sparse), 0);
        assert_int_equal(img_ext4_add(w, &holey), 0);
        assert_int_equal(img_ext4_add(w, &tiny), 0);
        finish(w, f->img);

        assert_int_equal(field(f->img, "/large", "Size"), 20 * MiB + 123);
        assert_int_equal(e2fs_dump(f->img, "/large", f->out), 0);
        assert_true(pattern_check(f->out, 42, 20 * MiB + 123));

        assert_int_equal(field(f->img, "/fragmented", "Blockcount"), (2000 + 7) * 8);
        assert_true(stat_has(f->img, "/fragmented", "(ETB1):"));
        assert_false(exists(f->img, "/fragmented2"));

        assert_int_equal(field(f->img, "/sparse", "Size"), 1024 * MiB);
        assert_int_equal(field(f->img, "/sparse", "Blockcount"), 8);
        assert_true(stat_has(f->img, "/sparse", "(131072):"));

        assert_int_equal(field(f->img, "/holey", "Size"), 8 * MiB);
        assert_int_equal(field(f->img, "/holey", "Blockcount"), 2 * MiB / 512);

        out = cat(f->img, "/tiny");
        assert_int_equal(field(f->img, "/tiny", "Size"), 5000);
        assert_memory_equal(out + 3, "ab", 2);
        assert_memory_equal(out + 4097, "cdefgh", 6);
        assert_int_equal(out[0], 0);
        free(out);
        assert_int_equal(field(f->img, "/tiny", "Blockcount"), 16);

        /* The image is as sparse as what was written: 20 + 2 + 2 * 8 MiB and
         * a little metadata, whatever the 1 GiB file's size. */
        assert_true(e2fs_disk_usage(f->img) < 48 * MiB);
}

static void test_long_paths(void **state)
{
        struct fix *f = *state;
        struct img_ext4 *w = new_image(f->img, 64 * MiB, false);
        char path[IMG_PATH_MAX + 2], name[IMG_NAME_MAX + 2];
        const struct img_entry e = {.path = path, .type = IMG_ENTRY_DIR, .mode = 0755};
        size_t len = 0;
        char *out;

        memset(name, 'n', IMG_NAME_MAX);
        name[IMG_NAME_MAX] = '\0';
        snprintf(path, sizeof(path), "/%s", name);
        add_text(w, path, "max name\n", 0644);
        name[IMG_NAME_MAX] = 'n';
        name[IMG_NAME_MAX + 1] = '\0';
        snprintf(path, sizeof(path), "/%s", name);
        assert_int_equal(img_ext4_add(w, &e), -ENAMETOOLONG);

        /* 2046 nested directories and a file: exactly IMG_PATH_MAX bytes. */
        for (int i = 0; i < 2046; i++) {
                memcpy(path + len, "/d", 2);
                len += 2;
        }
        memcpy(path + len, "/fx", 4);
        assert_int_equal(strlen(path), IMG_PATH_MAX);
        add_text(w, path, "deep\n", 0644);
        /* One byte more is refused, and the writer stays usable. */
        memcpy(path + len, "/fxy", 5);
        assert_int_equal(img_ext4_add(w, &e), -ENAMETOOLONG);
        finish(w, f->img);

        name[IMG_NAME_MAX] = '\0';
        out = e2fs_debugfs(f->img, "cat /%s", name);
        assert_string_equal(out, "max name\n");
        free(out);
        assert_int_equal(field(f->img, "/d/d/d/d/d/d/d/d", "Links"), 3);
}

static void test_many_files(void **state)
{
        struct fix *f = *state;
        struct img_ext4 *w = new_image(f->img, 512 * MiB, false);
        char path[64], text[64], wide[300], *out;

        for (int i = 0; i < 10000; i++) {
                snprintf(path, sizeof(path), "/many/file-with-a-longer-name-%05d", i);
                snprintf(text, sizeof(text), "%d\n", i);
                add_text(w, path, text, 0644);
        }
        for (int i = 0; i < 2000; i++) {
                snprintf(path, sizeof(path), "/spread/%02d/%04d", i % 50, i);
                add_text(w, path, "x", 0600);
        }
        /* 8000 names of 250 bytes: more leaves than one index block holds. */
        for (int i = 0; i < 8000; i++) {
                const struct img_entry e = {.path = wide, .type = IMG_ENTRY_FIFO, .mode = 0600};

                snprintf(wide, sizeof(wide), "/wide/%05d%0245d", i, 0);
                assert_int_equal(img_ext4_add(w, &e), 0);
        }
        finish(w, f->img);

        out = e2fs_debugfs(f->img, "htree /many");
        assert_non_null(strstr(out, "Indirect levels: 0"));
        free(out);
        out = e2fs_debugfs(f->img, "htree /wide");
        assert_non_null(strstr(out, "Indirect levels: 1"));
        free(out);
        snprintf(wide, sizeof(wide), "/wide/%05d%0245d", 4321, 0);
        assert_true(stat_has(f->img, wide, "Type: FIFO"));

        out = cat(f->img, "/many/file-with-a-longer-name-00000");
        assert_string_equal(out, "0\n");
        free(out);
        out = cat(f->img, "/many/file-with-a-longer-name-09999");
        assert_string_equal(out, "9999\n");
        free(out);
        assert_int_equal(field(f->img, "/spread", "Links"), 52);
        assert_int_equal(field(f->img, "/spread/49/1999", "Size"), 1);
}

static void test_replace(void **state)
{
        struct fix *f = *state;
        struct img_ext4 *w = new_image(f->img, 64 * MiB, false);
        struct pattern p = {.seed = 1, .left = 4 * MiB};
        const struct img_entry big = {.path = "/a/file",
                                      .type = IMG_ENTRY_REG,
                                      .mode = 0644,
                                      .size = p.left,
                                      .read = pattern_read,
                                      .read_ctx = &p};
        const struct img_xattr old_x = {"user.old", "1", 1}, new_x = {"user.new", "2", 1};
        const struct img_entry dir_old = {
                .path = "/d", .type = IMG_ENTRY_DIR, .mode = 0700, .xattrs = &old_x, .n_xattrs = 1};
        const struct img_entry dir_new = {.path = "/d/",
                                          .type = IMG_ENTRY_DIR,
                                          .mode = 0751,
                                          .uid = 1000,
                                          .xattrs = &new_x,
                                          .n_xattrs = 1};
        const struct img_entry root = {.path = "/", .type = IMG_ENTRY_DIR, .mode = 0711};
        char *out;
        long long free_before;

        /* A file over a file: the old blocks are freed. */
        assert_int_equal(img_ext4_add(w, &big), 0);
        add_text(w, "/a/file", "small\n", 0640);

        /* A directory over a directory keeps the children, takes the rest. */
        assert_int_equal(img_ext4_add(w, &dir_old), 0);
        add_text(w, "/d/child", "kept\n", 0644);
        assert_int_equal(img_ext4_add(w, &dir_new), 0);
        assert_int_equal(img_ext4_add(w, &root), 0);

        /* A file over a directory tree, and a directory over a file. */
        add_text(w, "/t/x/y/z", "gone\n", 0644);
        add_hardlink(w, "/keep", "/t/x/y/z");
        add_text(w, "/t", "now a file\n", 0644);
        add_text(w, "/f", "was a file\n", 0644);
        add_dir(w, "/f", 0755, 0, 0);
        add_text(w, "/f/inside", "in\n", 0644);

        /* Replacing one name of a hard-linked file leaves the other. */
        add_text(w, "/h1", "shared\n", 0644);
        add_hardlink(w, "/h2", "/h1");
        add_text(w, "/h1", "new\n", 0644);

        /* A hard link over the name it points to is a no-op; over another
         * name of the same inode it stays one inode. */
        add_hardlink(w, "/h2", "/h2");
        add_hardlink(w, "/keep2", "/keep");
        add_hardlink(w, "/keep2", "/keep");
        finish(w, f->img);

        out = cat(f->img, "/a/file");
        assert_string_equal(out, "small\n");
        free(out);
        assert_int_equal(field(f->img, "/a/file", "Mode"), 0640);
        out = e2fs_debugfs(f->img, "stats");
        free_before = e2fs_field(out, "Free blocks");
        free(out);
        assert_true(free_before > (long long)(60 * MiB / 4096));

        assert_int_equal(field(f->img, "/d", "Mode"), 0751);
        assert_int_equal(field(f->img, "/d", "User"), 1000);
        assert_true(exists(f->img, "/d/child"));
        out = e2fs_debugfs(f->img, "ea_list /d");
        assert_null(strstr(out, "user.old"));
        assert_non_null(strstr(out, "user.new"));
        free(out);
        assert_int_equal(field(f->img, "/", "Mode"), 0711);

        out = cat(f->img, "/t");
        assert_string_equal(out, "now a file\n");
        free(out);
        out = cat(f->img, "/keep");
        assert_string_equal(out, "gone\n");
        free(out);
        assert_int_equal(field(f->img, "/keep", "Links"), 2);
        assert_true(stat_has(f->img, "/f", "Type: directory"));
        assert_true(exists(f->img, "/f/inside"));

        out = cat(f->img, "/h2");
        assert_string_equal(out, "shared\n");
        free(out);
        assert_int_equal(field(f->img, "/h2", "Links"), 1);
        out = cat(f->img, "/h1");
        assert_string_equal(out, "new\n");
        free(out);
}

static void test_remove(void **state)
{
        struct fix *f = *state;
        struct img_ext4 *w = new_image(f->img, 64 * MiB, false);

        add_text(w, "/etc/a", "a", 0644);
        add_text(w, "/etc/b", "b", 0644);
        add_text(w, "/opaque/x/1", "1", 0644);
        add_text(w, "/opaque/y", "y", 0644);
        add_text(w, "/tree/deep/deeper/file", "f", 0644);
        add_hardlink(w, "/survivor", "/tree/deep/deeper/file");
        add_symlink(w, "/tree/link", "/etc");

        assert_int_equal(img_ext4_remove(w, "/etc/a"), 0);
        assert_int_equal(img_ext4_remove(w, "/tree"), 0);
        assert_int_equal(img_ext4_remove_children(w, "/opaque"), 0);
        assert_int_equal(img_ext4_remove(w, "/etc/a"), -ENOENT);
        assert_int_equal(img_ext4_remove(w, "/etc/b/c"), -ENOENT);
        assert_int_equal(img_ext4_remove(w, "/"), -EINVAL);
        assert_int_equal(img_ext4_remove(w, "/x/../etc"), -EINVAL);
        assert_int_equal(img_ext4_remove_children(w, "/etc/b"), -ENOTDIR);
        add_text(w, "/opaque/new", "n", 0644);
        finish(w, f->img);

        assert_false(exists(f->img, "/etc/a"));
        assert_true(exists(f->img, "/etc/b"));
        assert_false(exists(f->img, "/tree"));
        assert_int_equal(field(f->img, "/survivor", "Links"), 1);
        assert_false(exists(f->img, "/opaque/x"));
        assert_false(exists(f->img, "/opaque/y"));
        assert_true(exists(f->img, "/opaque/new"));
        assert_int_equal(field(f->img, "/opaque", "Links"), 2);
}

static void test_invalid_entries(void **state)
{
        struct fix *f = *state;
        struct img_ext4 *w = new_image(f->img, 16 * MiB, false);
        char target[IMG_SYMLINK_MAX + 2];
        const struct img_xattr bad_ns = {"os2.name", "v", 1};
        const struct img_xattr big = {"user.big", target, IMG_XATTR_VALUE_MAX + 1};
        const struct img_extent overlap[] = {{0, 10}, {5, 10}};
        const struct img_extent outside[] = {{0, 10}, {20, 10}};
        struct {
                struct img_entry e;
                int err;
        } cases[] = {
                {{.path = "/a/../etc", .type = IMG_ENTRY_DIR}, -EINVAL},
                {{.path = "..", .type = IMG_ENTRY_DIR}, -EINVAL},
                {{.path = NULL, .type = IMG_ENTRY_DIR}, -EINVAL},
                {{.path = "/x", .type = (enum img_entry_type)99}, -EINVAL},
                {{.path = "/", .type = IMG_ENTRY_REG}, -EINVAL},
                {{.path = "/s", .type = IMG_ENTRY_SYMLINK, .target = ""}, -EINVAL},
                {{.path = "/s", .type = IMG_ENTRY_SYMLINK, .target = target}, -ENAMETOOLONG},
                {{.path = "/h", .type = IMG_ENTRY_HARDLINK, .target = "/missing"}, -ENOENT},
                {{.path = "/h", .type = IMG_ENTRY_HARDLINK, .target = "/file/x"}, -ENOENT},
                {{.path = "/h", .type = IMG_ENTRY_HARDLINK, .target = "/dir"}, -EPERM},
                {{.path = "/file/child", .type = IMG_ENTRY_DIR}, -ENOTDIR},
                {{.path = "/c", .type = IMG_ENTRY_CHR, .rdev_major = 4096}, -EINVAL},
                {{.path = "/c", .type = IMG_ENTRY_BLK, .rdev_minor = 1u << 20}, -EINVAL},
                {{.path = "/r", .type = IMG_ENTRY_REG, .size = 10}, -EINVAL},
                {{.path = "/r", .type = IMG_ENTRY_REG, .size = UINT64_MAX}, -EFBIG},
                {{.path = "/r",
                  .type = IMG_ENTRY_REG,
                  .size = 12,
                  .data_map = overlap,
                  .n_data_map = 2,
                  .read = mem_read},
                 -EINVAL},
                {{.path = "/r",
                  .type = IMG_ENTRY_REG,
                  .size = 25,
                  .data_map = outside,
                  .n_data_map = 2,
                  .read = mem_read},
                 -EINVAL},
                {{.path = "/x", .type = IMG_ENTRY_FIFO, .xattrs = &bad_ns, .n_xattrs = 1},
                 -EOPNOTSUPP},
                {{.path = "/x", .type = IMG_ENTRY_FIFO, .xattrs = &big, .n_xattrs = 1}, -E2BIG},
        };

        memset(target, 't', sizeof(target) - 1);
        target[sizeof(target) - 1] = '\0';
        add_text(w, "/file", "f", 0644);
        add_dir(w, "/dir", 0755, 0, 0);
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
                assert_int_equal(img_ext4_add(w, &cases[i].e), cases[i].err);
        /* None of that damaged anything. */
        add_text(w, "/after", "still works\n", 0644);
        finish(w, f->img);
        assert_false(exists(f->img, "/etc"));
        assert_false(exists(f->img, "/h"));
        assert_true(exists(f->img, "/after"));
}

static void test_enospc(void **state)
{
        struct fix *f = *state;
        struct img_ext4 *w = new_image(f->img, 2 * MiB, false);
        struct pattern p = {.seed = 3, .left = 10 * MiB};
        const struct img_entry big = {.path = "/big",
                                      .type = IMG_ENTRY_REG,
                                      .mode = 0644,
                                      .size = p.left,
                                      .read = pattern_read,
                                      .read_ctx = &p};
        const struct img_entry d = {.path = "/d", .type = IMG_ENTRY_DIR, .mode = 0755};

        assert_int_equal(img_ext4_add(w, &big), -ENOSPC);
        /* The failure sticks: nothing more goes in, finish refuses. */
        assert_int_equal(img_ext4_add(w, &d), -ENOSPC);
        assert_int_equal(img_ext4_finish(w), -ENOSPC);
        img_ext4_free(w);
        assert_int_equal(access(f->img, F_OK), -1);
        assert_int_equal(errno, ENOENT);

        /* Inodes run out the same way. */
        {
                const struct img_ext4_params ip = {.size_bytes = 8 * MiB, .inodes = 16};
                char path[32];
                int r = 0;

                assert_int_equal(img_ext4_create(f->img, &ip, &w), 0);
                for (int i = 0; i < 1000 && r == 0; i++) {
                        const struct img_entry e = {.path = path, .type = IMG_ENTRY_FIFO};

                        snprintf(path, sizeof(path), "/f%d", i);
                        r = img_ext4_add(w, &e);
                }
                assert_int_equal(r, -ENOSPC);
                img_ext4_free(w);
                assert_int_equal(access(f->img, F_OK), -1);
        }
}

static void test_read_error(void **state)
{
        struct fix *f = *state;
        struct img_ext4 *w = new_image(f->img, 16 * MiB, false);
        int calls = 0;
        struct mem m = {.p = (const uint8_t *)"short", .left = 5};
        const struct img_entry bad = {.path = "/bad",
                                      .type = IMG_ENTRY_REG,
                                      .size = 100000,
                                      .read = failing_read,
                                      .read_ctx = &calls};
        const struct img_entry truncated = {
                .path = "/t", .type = IMG_ENTRY_REG, .size = 10, .read = mem_read, .read_ctx = &m};

        assert_int_equal(img_ext4_add(w, &bad), -EIO);
        img_ext4_free(w);
        assert_int_equal(access(f->img, F_OK), -1);

        w = new_image(f->img, 16 * MiB, false);
        assert_int_equal(img_ext4_add(w, &truncated), -EIO);
        img_ext4_free(w);
        assert_int_equal(access(f->img, F_OK), -1);
}

static void test_upper_disk(void **state)
{
        struct fix *f = *state;
        struct stat st;
        char *out;

        assert_int_equal(img_ext4_create_empty(f->img, 4096 * MiB, "upper", false), 0);
        assert_int_equal(e2fs_fsck(f->img), 0);
        assert_int_equal(stat(f->img, &st), 0);
        assert_int_equal(st.st_size, 4096 * MiB);
        assert_true(e2fs_disk_usage(f->img) < 4 * MiB);
        out = e2fs_debugfs(f->img, "stats");
        assert_non_null(strstr(out, "has_journal"));
        assert_non_null(strstr(out, "metadata_csum"));
        assert_non_null(strstr(out, "Filesystem volume name:   upper"));
        free(out);
        assert_true(stat_has(f->img, "/lost+found", "Type: directory"));
        assert_int_equal(field(f->img, "/lost+found", "Mode"), 0700);
        /* It never overwrites. */
        assert_int_equal(img_ext4_create_empty(f->img, 4096 * MiB, NULL, false), -EEXIST);
        assert_int_equal(e2fs_fsck(f->img), 0);
}

/* A scratch disk (an ephemeral sandbox's) is the same without a journal. */
static void test_scratch_disk(void **state)
{
        struct fix *f = *state;
        char *out;

        assert_int_equal(img_ext4_create_empty(f->img, 4096 * MiB, "scratch", true), 0);
        assert_int_equal(e2fs_fsck(f->img), 0);
        assert_true(e2fs_disk_usage(f->img) < 4 * MiB);
        out = e2fs_debugfs(f->img, "stats");
        assert_null(strstr(out, "has_journal"));
        assert_non_null(strstr(out, "metadata_csum"));
        free(out);
        assert_true(stat_has(f->img, "/lost+found", "Type: directory"));
}

static void test_create_errors(void **state)
{
        struct fix *f = *state;
        struct img_ext4 *w = NULL;
        const struct img_ext4_params tiny = {.size_bytes = 4096};
        const struct img_ext4_params label = {.size_bytes = 16 * MiB, .label = "seventeen-bytes!!"};
        char missing[600];

        assert_int_equal(img_ext4_create(f->img, &tiny, &w), -ENOSPC);
        assert_int_equal(img_ext4_create(f->img, &label, &w), -EINVAL);
        snprintf(missing, sizeof(missing), "%s/no/such/dir/x.ext4", f->dir);
        assert_int_equal(img_ext4_create_empty(missing, 16 * MiB, NULL, false), -ENOENT);
        assert_null(w);
        assert_int_equal(access(f->img, F_OK), -1);
}

static void test_capacity(void **state)
{
        struct img_ext4_usage u = {.entries = 10000,
                                   .dirs = 100,
                                   .files = 9900,
                                   .data_bytes = 100 * MiB,
                                   .name_bytes = 200000};
        uint64_t size, inodes, size_w, inodes_w;
        struct img_ext4_usage huge = {.entries = 1, .data_bytes = UINT64_MAX};

        assert_int_equal(img_ext4_capacity(&u, false, &size, &inodes), 0);
        assert_true(size > 100 * MiB + 9900 * 4096);
        assert_true(size < 400 * MiB);
        assert_true(inodes >= 10000);
        /* A journal (4 MiB at least) makes a small tree's image bigger. */
        u = (struct img_ext4_usage){.entries = 10, .dirs = 2, .files = 8, .data_bytes = MiB};
        assert_int_equal(img_ext4_capacity(&u, false, &size, &inodes), 0);
        assert_int_equal(img_ext4_capacity(&u, true, &size_w, &inodes_w), 0);
        assert_true(size_w >= size + 4 * MiB);
        assert_int_equal(inodes_w, inodes);
        assert_int_equal(img_ext4_capacity(&huge, false, &size, &inodes), -EFBIG);
        (void)state;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_every_kind, setup, teardown),
                cmocka_unit_test_setup_teardown(test_large_and_sparse, setup, teardown),
                cmocka_unit_test_setup_teardown(test_long_paths, setup, teardown),
                cmocka_unit_test_setup_teardown(test_many_files, setup, teardown),
                cmocka_unit_test_setup_teardown(test_replace, setup, teardown),
                cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
                cmocka_unit_test_setup_teardown(test_invalid_entries, setup, teardown),
                cmocka_unit_test_setup_teardown(test_enospc, setup, teardown),
                cmocka_unit_test_setup_teardown(test_read_error, setup, teardown),
                cmocka_unit_test_setup_teardown(test_upper_disk, setup, teardown),
                cmocka_unit_test_setup_teardown(test_scratch_disk, setup, teardown),
                cmocka_unit_test_setup_teardown(test_create_errors, setup, teardown),
                cmocka_unit_test(test_capacity),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
