/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: a host directory fed to the ext4 writer.
 *
 * One walker serves two passes. The pre-scan adds up what the tree holds
 * (img_ext4_usage) to size the image; the second pass turns every name into
 * an img_entry. The walk holds one directory fd per level and reaches
 * everything relative to it: fstatat(AT_SYMLINK_NOFOLLOW), openat(O_NOFOLLOW)
 * checked against the earlier stat, readlinkat(), and extended attributes
 * through /proc/self/fd/<dirfd>/<name> with the l*xattr calls, so no symlink
 * is ever followed and nothing outside the tree is touched even if it changes
 * under us. Names are sorted, so the same tree gives the same image layout.
 *
 * Regular files are streamed from their fd; when st_blocks says a file may
 * be sparse, SEEK_DATA/SEEK_HOLE give the data map and only the data is read.
 * A non-directory with several links is remembered by (st_dev, st_ino) with
 * its first path, and later names become hard link entries.
 *
 * The walk keeps one fd per directory level, so a tree nested deeper than
 * RLIMIT_NOFILE allows fails with -EMFILE (and the path where it happened).
 */
#include "dirsrc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "ext4.h"
#include "lib/core/macro.h"
#include "lib/core/util.h"

#define XATTR_LIST_MAX_BYTES 65536

struct walk;
typedef int (*visit_fn)(struct walk *wk, int dfd, const char *name, const struct stat *st);

struct walk {
        visit_fn visit;
        const char *host_root;
        char path[IMG_PATH_MAX + 1]; /* image path of the current entry; "" for the root */
        size_t len;
        char *bad; /* host path of the entry that failed */

        /* pre-scan */
        struct img_ext4_usage usage;

        /* second pass */
        struct img_ext4 *w;
        bool map_owner;
        uid_t uid;
        gid_t gid;
        void *links; /* tsearch tree of struct link */
};

struct link {
        dev_t dev;
        ino_t ino;
        char *path;
};

static int set_bad(struct walk *wk, int r)
{
        if (r < 0 && !wk->bad)
                wk->bad = strdup_printf("%s%s", wk->host_root, wk->path);
        return r;
}

/* ---- the walk ---------------------------------------------------------- */

static int cmp_names(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
}

/* Reads and sorts the names of a directory; dfd stays open. */
static int read_names(int dfd, char ***ret, size_t *ret_n)
{
        DIR *d;
        char **names = NULL;
        size_t n = 0, cap = 0;
        int fd, r = 0;

        fd = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return negative_errno();
        d = fdopendir(fd);
        if (!d) {
                r = negative_errno();
                close(fd);
                return r;
        }
        rewinddir(d); /* the dup shares its offset with dfd, read before */
        for (;;) {
                struct dirent *de;

                errno = 0;
                de = readdir(d);
                if (!de) {
                        r = errno ? -errno : 0;
                        break;
                }
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 32;
                        char **nn = reallocarray(names, ncap, sizeof(*nn));

                        if (!nn) {
                                r = -ENOMEM;
                                break;
                        }
                        names = nn;
                        cap = ncap;
                }
                names[n] = strdup(de->d_name);
                if (!names[n]) {
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        closedir(d);
        if (r < 0) {
                free_names(names, n);
                return r;
        }
        if (n > 0)
                qsort(names, n, sizeof(*names), cmp_names);
        *ret = names;
        *ret_n = n;
        return 0;
}

static int walk_dir(struct walk *wk, int dfd);

static int walk_entry(struct walk *wk, int dfd, const char *name)
{
        _cleanup_close_ int cfd = -1;
        size_t saved = wk->len, nlen = strlen(name);
        struct stat st, cst;
        int r;

        if (wk->len + 1 + nlen > IMG_PATH_MAX) {
                if (!wk->bad)
                        wk->bad = strdup_printf("%s%s/%s", wk->host_root, wk->path, name);
                return -ENAMETOOLONG;
        }
        wk->path[wk->len++] = '/';
        memcpy(wk->path + wk->len, name, nlen + 1);
        wk->len += nlen;

        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return set_bad(wk, negative_errno());
        r = set_bad(wk, wk->visit(wk, dfd, name, &st));
        if (r < 0)
                return r;
        if (S_ISDIR(st.st_mode)) {
                cfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (cfd < 0)
                        return set_bad(wk, negative_errno());
                if (fstat(cfd, &cst) < 0)
                        return set_bad(wk, negative_errno());
                if (cst.st_dev != st.st_dev || cst.st_ino != st.st_ino)
                        return set_bad(wk, -ESTALE);
                r = walk_dir(wk, cfd);
                if (r < 0)
                        return r;
        }
        wk->len = saved;
        wk->path[saved] = '\0';
        return 0;
}

static int walk_dir(struct walk *wk, int dfd)
{
        char **names = NULL;
        size_t n = 0;
        int r;

        r = read_names(dfd, &names, &n);
        if (r < 0)
                return set_bad(wk, r);
        for (size_t i = 0; i < n && r >= 0; i++)
                r = walk_entry(wk, dfd, names[i]);
        free_names(names, n);
        return r;
}

/* Visits the root itself (name NULL: the directory fd), then its tree. */
static int walk(struct walk *wk, int rootfd)
{
        struct stat st;
        int r;

        wk->len = 0;
        wk->path[0] = '\0';
        if (fstat(rootfd, &st) < 0)
                return set_bad(wk, negative_errno());
        r = set_bad(wk, wk->visit(wk, rootfd, NULL, &st));
        if (r < 0)
                return r;
        return walk_dir(wk, rootfd);
}

/* ---- extended attributes ----------------------------------------------- */

struct xattrs {
        struct img_xattr items[IMG_XATTRS_MAX];
        size_t n;
        char *list;
        void *values[IMG_XATTRS_MAX];
};

static void xattrs_done(struct xattrs *x)
{
        for (size_t i = 0; i < x->n; i++)
                free(x->values[i]);
        free(x->list);
        x->n = 0;
        x->list = NULL;
}

/* The /proc path that names (dfd, name) without following name. */
static int xattr_path(int dfd, const char *name, char *buf, size_t size)
{
        int k = name ? snprintf(buf, size, "/proc/self/fd/%d/%s", dfd, name)
                     : snprintf(buf, size, "/proc/self/fd/%d/.", dfd);

        return k < 0 || (size_t)k >= size ? -ENAMETOOLONG : 0;
}

static ssize_t list_xattrs(const char *p, char *buf, size_t size)
{
        ssize_t k = llistxattr(p, buf, size);

        if (k < 0 && (errno == ENOTSUP || errno == ENOSYS))
                return 0;
        return k < 0 ? negative_errno() : k;
}

static int read_xattrs(int dfd, const char *name, struct xattrs *x)
{
        char p[PATH_MAX];
        ssize_t size;
        int r;

        r = xattr_path(dfd, name, p, sizeof(p));
        if (r < 0)
                return r;
        size = list_xattrs(p, NULL, 0);
        if (size <= 0)
                return (int)size;
        if (size > XATTR_LIST_MAX_BYTES)
                return -E2BIG;
        x->list = malloc((size_t)size + 1);
        if (!x->list)
                return -ENOMEM;
        size = list_xattrs(p, x->list, (size_t)size);
        if (size < 0)
                return (int)size; /* -ERANGE: it grew under us */
        x->list[size] = '\0';

        for (char *k = x->list; k < x->list + size; k += strlen(k) + 1) {
                ssize_t vlen;
                void *v;

                if (!img_ext4_xattr_supported(k))
                        continue;
                if (x->n == IMG_XATTRS_MAX)
                        return -E2BIG;
                vlen = lgetxattr(p, k, NULL, 0);
                if (vlen < 0 && errno == ENODATA)
                        continue;
                if (vlen < 0)
                        return negative_errno();
                if (vlen > IMG_XATTR_VALUE_MAX)
                        return -E2BIG;
                v = malloc((size_t)vlen + 1);
                if (!v)
                        return -ENOMEM;
                vlen = lgetxattr(p, k, v, (size_t)vlen);
                if (vlen < 0) {
                        r = negative_errno(); /* -ERANGE: it grew under us */
                        free(v);
                        return r;
                }
                x->values[x->n] = v;
                x->items[x->n++] = (struct img_xattr){.name = k, .value = v, .size = (size_t)vlen};
        }
        return 0;
}

/* ---- pass 1: usage ----------------------------------------------------- */

static int count_entry(struct walk *wk, int dfd, const char *name, const struct stat *st)
{
        struct img_ext4_usage *u = &wk->usage;
        char p[PATH_MAX];

        u->entries++;
        u->name_bytes += name ? strlen(name) : 0;
        if (S_ISDIR(st->st_mode))
                u->dirs++;
        if (S_ISREG(st->st_mode)) {
                u->files++;
                u->data_bytes += MIN((uint64_t)st->st_size, (uint64_t)st->st_blocks * 512);
        }
        if (S_ISLNK(st->st_mode) && st->st_size >= IMG_SYMLINK_INLINE) {
                u->files++;
                u->data_bytes += (uint64_t)st->st_size;
        }
        ssize_t k;
        int r;

        r = xattr_path(dfd, name, p, sizeof(p));
        if (r < 0)
                return r;
        k = list_xattrs(p, NULL, 0);
        if (k < 0)
                return (int)k;
        u->xattr_inodes += k > 0;
        return 0;
}

/* ---- pass 2: entries --------------------------------------------------- */

struct file_src {
        int fd;
        const struct img_extent *map;
        size_t nmap, i;
        uint64_t pos; /* within map[i] */
};

static ssize_t file_read(void *ctx, void *buf, size_t n)
{
        struct file_src *f = ctx;

        while (f->i < f->nmap && f->pos == f->map[f->i].length) {
                f->i++;
                f->pos = 0;
        }
        if (f->i == f->nmap)
                return 0;
        n = (size_t)MIN((uint64_t)n, f->map[f->i].length - f->pos);
        for (;;) {
                ssize_t k = pread(f->fd, buf, n, (off_t)(f->map[f->i].offset + f->pos));

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return negative_errno();
                f->pos += (uint64_t)k;
                return k;
        }
}

/* The data regions of a possibly sparse file, or NULL when it is not. */
static int data_map(int fd, const struct stat *st, struct img_extent **ret, size_t *ret_n)
{
        _cleanup_free_ struct img_extent *map = NULL;
        size_t n = 0, cap = 0;
        off_t off = 0, size = st->st_size;

        *ret = NULL;
        *ret_n = 0;
        if ((uint64_t)st->st_blocks * 512 >= (uint64_t)size)
                return 0;
        while (off < size) {
                off_t data = lseek(fd, off, SEEK_DATA), hole;

                if (data < 0 && errno == ENXIO)
                        break;
                if (data < 0)
                        return errno == EINVAL ? 0 : negative_errno(); /* no SEEK_DATA here */
                if (data >= size)
                        break;
                hole = lseek(fd, data, SEEK_HOLE);
                if (hole < 0)
                        return negative_errno();
                hole = MIN(hole, size);
                if (n == IMG_DATA_MAP_MAX)
                        return 0; /* too fragmented: read it all, zero blocks stay holes */
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 16;
                        struct img_extent *nm = reallocarray(map, ncap, sizeof(*nm));

                        if (!nm)
                                return -ENOMEM;
                        map = nm;
                        cap = ncap;
                }
                map[n++] = (struct img_extent){.offset = (uint64_t)data,
                                               .length = (uint64_t)(hole - data)};
                off = hole;
        }
        /* An empty map is a file of holes only: keep it, it reads nothing. */
        if (!map) {
                map = malloc(sizeof(*map));
                if (!map)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(map);
        *ret_n = n;
        return 0;
}

static int cmp_link(const void *a, const void *b)
{
        const struct link *x = a, *y = b;

        if (x->dev != y->dev)
                return x->dev < y->dev ? -1 : 1;
        if (x->ino != y->ino)
                return x->ino < y->ino ? -1 : 1;
        return 0;
}

static void free_link(void *p)
{
        struct link *l = p;

        free(l->path);
        free(l);
}

/* Finds an earlier name of the same file, or remembers this one. */
static int hardlink_target(struct walk *wk, const struct stat *st, const char **ret)
{
        struct link key = {.dev = st->st_dev, .ino = st->st_ino}, *l, **found;

        *ret = NULL;
        found = tfind(&key, &wk->links, cmp_link);
        if (found) {
                *ret = (*found)->path;
                return 0;
        }
        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        *l = key;
        l->path = strdup(wk->path);
        if (!l->path || !tsearch(l, &wk->links, cmp_link)) {
                free_link(l);
                return -ENOMEM;
        }
        return 0;
}

static int add_file(struct walk *wk, int dfd, const char *name, const struct stat *st,
                    struct img_entry *e)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ struct img_extent *map = NULL;
        struct file_src src = {0};
        struct img_extent whole = {.offset = 0, .length = (uint64_t)st->st_size};
        struct stat fst;
        int r;

        /* O_NONBLOCK: if a fifo took the file's place, opening it must not hang. */
        fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &fst) < 0)
                return negative_errno();
        if (fst.st_dev != st->st_dev || fst.st_ino != st->st_ino || !S_ISREG(fst.st_mode))
                return -ESTALE;
        r = data_map(fd, st, &map, &src.nmap);
        if (r < 0)
                return r;
        src.fd = fd;
        src.map = map ? map : &whole;
        if (!map)
                src.nmap = 1;
        e->size = (uint64_t)st->st_size;
        e->data_map = map;
        e->n_data_map = map ? src.nmap : 0;
        e->read = file_read;
        e->read_ctx = &src;
        return img_ext4_add(wk->w, e);
}

static int add_entry(struct walk *wk, int dfd, const char *name, const struct stat *st)
{
        char target[IMG_SYMLINK_MAX + 1];
        struct xattrs x = {0};
        struct img_entry e = {
                .path = wk->len ? wk->path : "/",
                .mode = st->st_mode & 07777,
                .uid = wk->map_owner && st->st_uid == wk->uid ? 0 : st->st_uid,
                .gid = wk->map_owner && st->st_gid == wk->gid ? 0 : st->st_gid,
                .atime_ns = (int64_t)st->st_atim.tv_sec * 1000000000 + st->st_atim.tv_nsec,
                .mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec,
                .ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec,
                .rdev_major = major(st->st_rdev),
                .rdev_minor = minor(st->st_rdev),
        };
        ssize_t k;
        int r;

        if (!S_ISDIR(st->st_mode) && st->st_nlink > 1) {
                r = hardlink_target(wk, st, &e.target);
                if (r < 0)
                        return r;
                if (e.target) {
                        e.type = IMG_ENTRY_HARDLINK;
                        return img_ext4_add(wk->w, &e);
                }
        }
        r = read_xattrs(dfd, name, &x);
        if (r < 0)
                goto out;
        e.xattrs = x.items;
        e.n_xattrs = x.n;

        switch (st->st_mode & S_IFMT) {
        case S_IFREG:
                e.type = IMG_ENTRY_REG;
                r = add_file(wk, dfd, name, st, &e);
                goto out;
        case S_IFDIR:
                e.type = IMG_ENTRY_DIR;
                break;
        case S_IFLNK:
                k = readlinkat(dfd, name, target, sizeof(target));
                if (k < 0) {
                        r = negative_errno();
                        goto out;
                }
                if ((size_t)k >= sizeof(target)) {
                        r = -ENAMETOOLONG;
                        goto out;
                }
                target[k] = '\0';
                e.type = IMG_ENTRY_SYMLINK;
                e.target = target;
                break;
        case S_IFCHR:
                e.type = IMG_ENTRY_CHR;
                break;
        case S_IFBLK:
                e.type = IMG_ENTRY_BLK;
                break;
        case S_IFIFO:
                e.type = IMG_ENTRY_FIFO;
                break;
        case S_IFSOCK:
                e.type = IMG_ENTRY_SOCK;
                break;
        default:
                r = -EINVAL;
                goto out;
        }
        r = img_ext4_add(wk->w, &e);
out:
        xattrs_done(&x);
        return r;
}

int img_ext4_from_dir(const char *dir, const char *out_path, const struct img_dir_opts *opts,
                      char **ret_bad_path)
{
        static const struct img_dir_opts defaults = {0};
        _cleanup_(img_ext4_freep) struct img_ext4 *w = NULL;
        _cleanup_close_ int rootfd = -1;
        struct img_ext4_params p = {0};
        struct walk wk = {.host_root = dir};
        int r;

        if (!dir || !out_path)
                return -EINVAL;
        if (!opts)
                opts = &defaults;
        rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0) {
                r = negative_errno();
                goto out;
        }

        wk.visit = count_entry;
        r = walk(&wk, rootfd);
        if (r < 0)
                goto out;
        r = img_ext4_capacity(&wk.usage, opts->writable, &p.size_bytes, &p.inodes);
        if (r < 0)
                goto out;
        p.label = opts->label;
        p.writable = opts->writable;
        r = img_ext4_create(out_path, &p, &w);
        if (r < 0)
                goto out;

        wk.visit = add_entry;
        wk.w = w;
        wk.map_owner = opts->map_owner_to_root;
        wk.uid = geteuid();
        wk.gid = getegid();
        r = walk(&wk, rootfd);
        if (r >= 0)
                r = img_ext4_finish(w);
out:
        tdestroy(wk.links, free_link);
        if (r < 0 && ret_bad_path && (wk.bad || rootfd < 0))
                *ret_bad_path = wk.bad ? TAKE_PTR(wk.bad) : strdup(dir);
        free(wk.bad);
        return r;
}

/* ---- rootfs check ------------------------------------------------------ */

static bool has_executable(int rootfd, const char *sub)
{
        _cleanup_close_ int fd =
                openat(rootfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        bool found = false;
        struct dirent *de;
        DIR *d;

        if (fd < 0)
                return false;
        d = fdopendir(fd);
        if (!d)
                return false;
        fd = -1; /* owned by d */
        while (!found && (de = readdir(d))) {
                struct stat st;

                found = fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                        S_ISREG(st.st_mode) && (st.st_mode & 0111);
        }
        closedir(d);
        return found;
}

int img_dir_check_rootfs(const char *dir)
{
        _cleanup_close_ int fd = -1;
        struct stat st;

        if (!dir)
                return -EINVAL;
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (fstatat(fd, "etc", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
                return 0;
        if (has_executable(fd, "bin") || has_executable(fd, "usr/bin") ||
            has_executable(fd, "sbin"))
                return 0;
        return -ENOEXEC;
}
