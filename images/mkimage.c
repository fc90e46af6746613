/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: mkimage, the build tool of the built-in images.
 *
 *   mkimage [-L LABEL] MANIFEST OUTPUT
 *
 * reads a manifest, one entry a line (fields separated by blanks, "#"
 * comments, paths without blanks):
 *
 *   dir   PATH MODE UID GID          a directory
 *   file  PATH SRC MODE UID GID      a regular file copied from host file SRC
 *   slink PATH TARGET MODE UID GID   a symbolic link
 *
 * (MODE in octal), sizes the image from the manifest (img_ext4_capacity()),
 * and writes it through the ext4 writer to OUTPUT.tmp, renamed to OUTPUT
 * once complete. Ownership and modes come from the manifest alone, so no
 * root is needed. Every time stamp is $SOURCE_DATE_EPOCH, or now.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/core/macro.h"
#include "lib/core/util.h"
#include "lib/image/ext4.h"

#define MAX_LINE    8192
#define MAX_ENTRIES 100000

struct item {
        struct img_entry e;
        char *path, *src, *target;
        unsigned line;
};

struct manifest {
        struct item *items;
        size_t n;
};

static void manifest_free(struct manifest *m)
{
        for (size_t i = 0; i < m->n; i++) {
                free(m->items[i].path);
                free(m->items[i].src);
                free(m->items[i].target);
        }
        free(m->items);
}

static int parse_id(const char *s, uint32_t *ret)
{
        uint64_t v;
        int r = parse_u64(s, &v);

        if (r < 0)
                return r;
        if (v > UINT32_MAX)
                return -ERANGE;
        *ret = (uint32_t)v;
        return 0;
}

static int parse_mode(const char *s, mode_t *ret)
{
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 8);
        if (errno || end == s || *end || v > 07777)
                return -EINVAL;
        *ret = (mode_t)v;
        return 0;
}

/* Parses one manifest line into it; 0 for blank lines, 1 for an entry. */
static int parse_line(char *line, int64_t t, struct item *it)
{
        char *f[7];
        size_t n = 0, want;
        char *save = NULL;
        int r;

        line[strcspn(line, "#\n")] = '\0';
        for (char *tok = strtok_r(line, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
                if (n == ARRAY_SIZE(f))
                        return -EINVAL;
                f[n++] = tok;
        }
        if (n == 0)
                return 0;
        *it = (struct item){.e = {.atime_ns = t, .mtime_ns = t, .ctime_ns = t}};
        if (streq(f[0], "dir")) {
                it->e.type = IMG_ENTRY_DIR;
                want = 5;
        } else if (streq(f[0], "file")) {
                it->e.type = IMG_ENTRY_REG;
                want = 6;
        } else if (streq(f[0], "slink")) {
                it->e.type = IMG_ENTRY_SYMLINK;
                want = 6;
        } else
                return -EINVAL;
        if (n != want)
                return -EINVAL;
        r = parse_mode(f[n - 3], &it->e.mode);
        if (r >= 0)
                r = parse_id(f[n - 2], &it->e.uid);
        if (r >= 0)
                r = parse_id(f[n - 1], &it->e.gid);
        if (r < 0)
                return r;
        it->path = strdup(f[1]);
        if (!it->path)
                return -ENOMEM;
        it->e.path = it->path;
        if (want == 6) {
                char *third = strdup(f[2]);

                if (!third)
                        return -ENOMEM;
                if (it->e.type == IMG_ENTRY_REG)
                        it->src = third;
                else
                        it->e.target = it->target = third;
        }
        return 1;
}

static int read_manifest(const char *path, int64_t t, struct manifest *m, unsigned *ret_line)
{
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char line[MAX_LINE];
        unsigned lineno = 0;

        if (!f)
                return negative_errno();
        while (fgets(line, sizeof(line), f)) {
                struct item it = {0};
                int r;

                lineno++;
                *ret_line = lineno;
                if (!strchr(line, '\n') && !feof(f))
                        return -E2BIG;
                if (m->n == MAX_ENTRIES)
                        return -E2BIG;
                r = parse_line(line, t, &it);
                if (r > 0 && m->n % 256 == 0) {
                        struct item *ni = reallocarray(m->items, m->n + 256, sizeof(*ni));

                        if (ni)
                                m->items = ni;
                        else
                                r = -ENOMEM;
                }
                if (r <= 0) {
                        free(it.path);
                        free(it.src);
                        free(it.target);
                        if (r < 0)
                                return r;
                        continue;
                }
                it.line = lineno;
                m->items[m->n++] = it;
        }
        return ferror(f) ? -EIO : 0;
}

static ssize_t fd_read(void *ctx, void *buf, size_t n)
{
        ssize_t k = read(*(int *)ctx, buf, n);

        return k < 0 ? negative_errno() : k;
}

/* Adds every item; *ret_item says which one failed. */
static int write_items(struct img_ext4 *w, const struct manifest *m, size_t *ret_item)
{
        for (size_t i = 0; i < m->n; i++) {
                struct item *it = &m->items[i];
                _cleanup_close_ int fd = -1;
                struct stat st;
                int r;

                *ret_item = i;
                if (it->src) {
                        fd = open(it->src, O_RDONLY | O_CLOEXEC);
                        if (fd < 0 || fstat(fd, &st) < 0)
                                return negative_errno();
                        if (!S_ISREG(st.st_mode))
                                return -EINVAL;
                        it->e.size = (uint64_t)st.st_size;
                        it->e.read = fd_read;
                        it->e.read_ctx = &fd;
                }
                r = img_ext4_add(w, &it->e);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int usage_of(const struct manifest *m, struct img_ext4_usage *u, size_t *ret_item)
{
        *u = (struct img_ext4_usage){0};
        for (size_t i = 0; i < m->n; i++) {
                const struct item *it = &m->items[i];
                struct stat st;

                *ret_item = i;
                u->entries++;
                u->name_bytes += strlen(it->path);
                u->dirs += it->e.type == IMG_ENTRY_DIR;
                if (it->src) {
                        if (stat(it->src, &st) < 0)
                                return negative_errno();
                        u->files++;
                        u->data_bytes += (uint64_t)st.st_size;
                }
                if (it->target && strlen(it->target) >= IMG_SYMLINK_INLINE) {
                        u->files++;
                        u->data_bytes += strlen(it->target);
                }
        }
        return 0;
}

static int64_t build_time(void)
{
        const char *s = getenv("SOURCE_DATE_EPOCH");
        uint64_t v;

        if (s && parse_u64(s, &v) >= 0 && v < INT64_MAX / 1000000000)
                return (int64_t)v * 1000000000;
        return (int64_t)now_ns(CLOCK_REALTIME);
}

int main(int argc, char **argv)
{
        _cleanup_(img_ext4_freep) struct img_ext4 *w = NULL;
        _cleanup_free_ char *tmp = NULL;
        struct img_ext4_params p = {0};
        struct img_ext4_usage u;
        struct manifest m = {0};
        unsigned line = 0;
        size_t item = 0;
        int opt, r;

        while ((opt = getopt(argc, argv, "L:")) != -1) {
                if (opt != 'L') {
                        fprintf(stderr, "usage: %s [-L LABEL] MANIFEST OUTPUT\n", argv[0]);
                        return 2;
                }
                p.label = optarg;
        }
        if (argc - optind != 2) {
                fprintf(stderr, "usage: %s [-L LABEL] MANIFEST OUTPUT\n", argv[0]);
                return 2;
        }

        r = read_manifest(argv[optind], build_time(), &m, &line);
        if (r < 0) {
                fprintf(stderr, "mkimage: %s:%u: %s\n", argv[optind], line, strerror(-r));
                goto out;
        }
        r = usage_of(&m, &u, &item);
        if (r >= 0)
                r = img_ext4_capacity(&u, false, &p.size_bytes, &p.inodes);
        if (r < 0) {
                fprintf(stderr, "mkimage: %s:%u: %s\n", argv[optind], m.items[item].line,
                        strerror(-r));
                goto out;
        }

        tmp = strdup_printf("%s.tmp", argv[optind + 1]);
        if (!tmp) {
                r = -ENOMEM;
                goto out;
        }
        (void)unlink(tmp);
        r = img_ext4_create(tmp, &p, &w);
        if (r < 0) {
                fprintf(stderr, "mkimage: %s: %s\n", tmp, strerror(-r));
                goto out;
        }
        r = write_items(w, &m, &item);
        if (r < 0) {
                fprintf(stderr, "mkimage: %s:%u: %s: %s\n", argv[optind], m.items[item].line,
                        m.items[item].path, strerror(-r));
                goto out;
        }
        r = img_ext4_finish(w);
        if (r >= 0 && rename(tmp, argv[optind + 1]) < 0) {
                r = negative_errno();
                (void)unlink(tmp);
        }
        if (r < 0)
                fprintf(stderr, "mkimage: %s: %s\n", argv[optind + 1], strerror(-r));
out:
        manifest_free(&m);
        return r < 0 ? 1 : 0;
}
