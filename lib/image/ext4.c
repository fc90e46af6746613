/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: the ext4 writer.
 *
 * img_ext4_create() makes a sparse file of the full capacity and formats it
 * with libext2fs the way mke2fs would for a 6.1 kernel (4 KiB blocks, 256-byte
 * inodes, extents, flex_bg, 64bit, metadata_csum, huge_file, dir_index,
 * dir_nlink, extra_isize; /lost+found only for writable filesystems, and a
 * journal too unless the disk is scratch). The file is new, so every block
 * still reads as zero: inode tables are marked zeroed without writing them
 * (the kernel's lazy init has nothing to do), the journal is created lazily,
 * and groups nobody uses keep BLOCK_UNINIT/INODE_UNINIT, so nothing is
 * written for them and a 4 GiB upper disk costs a few hundred kilobytes of
 * real disk.
 *
 * The namespace lives in memory: one node per name (parent, inode number,
 * file type, name) in a hash table keyed by (parent inode, keyed half-MD4 of
 * the name, the htree hash with the filesystem's secret seed so a hostile
 * archive cannot force collisions). Looking up a path costs one probe per
 * component, whatever the image size. Inodes of files, symlinks and devices
 * are written as entries arrive; file data is read through the callback in
 * 1 MiB chunks, all-zero blocks become holes, and each run of data blocks is
 * allocated contiguously (a moving goal keeps files in arrival order) and
 * written through a 1 MiB combining buffer, so a stream of small files also
 * becomes large writes; the runs become extents inserted in order.
 * Directory inodes are written at once but their blocks only in
 * img_ext4_finish(), from the in-memory children lists, in one pass: no
 * directory block is ever read back or rewritten, which is what makes
 * replacing and removing entries cheap. A directory that fits one block is
 * linear; a larger one gets an htree index (one or two levels, like the
 * kernel builds), so lookups in the guest stay logarithmic.
 *
 * Replacing a path frees what was there (unlinking hard links one count at a
 * time); removal frees inodes and blocks through libext2fs, so a tar stream
 * that rewrites files does not leak space.
 *
 * Capacity (img_ext4_capacity()): every block the tree can need (data rounded
 * up per file, one extent block per 256 data blocks, the directories' entries
 * with a partial leaf and an index root each, one extended attribute block per inode that
 * has attributes), plus 1/16 slack and 4 MiB, plus the inode tables, rounded
 * up to whole 128 MiB block groups; inodes are entries + 1/8 + 64. Capacity
 * that is never used costs nothing in a sparse file (unused groups are never
 * written), so erring large is cheap and erring small is an -ENOSPC.
 */
#include "ext4.h"

#include <errno.h>
#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/core/macro.h"
#include "lib/core/util.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "directory blocks are built in host byte order: little-endian hosts only"
#endif

#define BS           IMG_EXT4_BLOCK_SIZE
#define INODE_SIZE   256
#define CHUNK_BLOCKS 256 /* 1 MiB of file data per read/write round */
#define EXTENT_MAX   32768
#define MAX_BLOCKS   (UINT64_C(1) << 32) /* 16 TiB of capacity */
#define MAX_FILE_BLK (UINT64_C(1) << 32) /* logical blocks of one file */
#define ALIGN_BS(x)  (((x) + BS - 1) / BS * BS)
#define ALIGN_4(x)   (((x) + 3) & ~(size_t)3)

struct node {
        struct node *parent;
        struct node *hnext;       /* hash chain */
        struct node *prev, *next; /* siblings, in arrival order */
        struct node *first, *last;
        ext2_ino_t ino;
        uint32_t hash;
        uint8_t ftype; /* EXT2_FT_* */
        uint8_t len;
        char name[];
};

struct run {
        uint32_t lblk;
        uint32_t len;
        blk64_t pblk;
};

struct img_ext4 {
        ext2_filsys fs;
        char *path;
        int error; /* sticky: set once a failure may have left partial state */
        bool finished;
        bool scratch; /* struct img_ext4_params.scratch: no fsync at finish */
        int hash_version;
        int64_t now_ns;

        struct node *root;
        struct node **buckets;
        unsigned hash_bits;
        size_t nnodes;

        blk64_t goal;      /* where the next data run should start */
        uint8_t *buf;      /* CHUNK_BLOCKS blocks */
        uint8_t *pend;     /* data written but not flushed, CHUNK_BLOCKS blocks */
        blk64_t pend_pblk; /* where it goes */
        size_t pend_n;     /* how many blocks */
        struct run *runs;  /* extents of the inode being written */
        size_t nruns, cap_runs;
        uint64_t nblocks; /* data blocks of the inode being written */
        uint8_t *dirbuf;  /* directory blocks at finish */
        size_t dirbuf_cap;
};

static int errcode_to_errno(errcode_t err)
{
        if (err == 0)
                return 0;
        if (err > 0 && err < 4096)
                return -(int)err;
        switch (err) {
        case EXT2_ET_BLOCK_ALLOC_FAIL:
        case EXT2_ET_INODE_ALLOC_FAIL:
        case EXT2_ET_DIR_NO_SPACE:
        case EXT2_ET_TOOSMALL:
        case EXT2_ET_JOURNAL_TOO_SMALL:
                return -ENOSPC;
        case EXT2_ET_NO_MEMORY:
                return -ENOMEM;
        case EXT2_ET_EA_NO_SPACE:
                return -E2BIG;
        case EXT2_ET_EA_KEY_NOT_FOUND:
                return -ENODATA;
        case EXT2_ET_TOO_MANY_INODES:
        case EXT2_ET_INVALID_ARGUMENT:
                return -EINVAL;
        default:
                return -EIO;
        }
}

/* Records a failure that may have left partial state; later calls refuse. */
static int fail(struct img_ext4 *w, int r)
{
        if (r < 0 && !w->error)
                w->error = r;
        return r;
}

static int fail_err(struct img_ext4 *w, errcode_t err)
{
        return fail(w, errcode_to_errno(err));
}

/* ---- data writes ------------------------------------------------------ */

/*
 * Data blocks are written through a combining buffer: small files land next
 * to each other (the goal moves forward), so a run of them becomes one large
 * write. Everything goes through the io channel, which keeps its own block
 * cache coherent. Blocks must not be freed while their data is pending: a
 * new owner could be written first and then overwritten by the flush.
 */
static int flush_pending(struct img_ext4 *w)
{
        errcode_t err;

        if (w->pend_n == 0)
                return 0;
        err = io_channel_write_blk64(w->fs->io, w->pend_pblk, (int)w->pend_n, w->pend);
        w->pend_n = 0;
        return errcode_to_errno(err);
}

static int write_blocks(struct img_ext4 *w, blk64_t pblk, const uint8_t *data, size_t n)
{
        int r;

        if (w->pend_n > 0 && (pblk != w->pend_pblk + w->pend_n || w->pend_n + n > CHUNK_BLOCKS)) {
                r = flush_pending(w);
                if (r < 0)
                        return r;
        }
        if (n >= CHUNK_BLOCKS)
                return errcode_to_errno(io_channel_write_blk64(w->fs->io, pblk, (int)n, data));
        if (w->pend_n == 0)
                w->pend_pblk = pblk;
        memcpy(w->pend + w->pend_n * BS, data, n * BS);
        w->pend_n += n;
        return 0;
}

/* ---- inodes ------------------------------------------------------------ */

/* ext4 time: low 32 bits of seconds, plus 2 epoch bits and nanoseconds. */
static void encode_time(int64_t ns, __u32 *sec, __u32 *extra)
{
        int64_t s = ns / 1000000000;
        int64_t n = ns % 1000000000;

        if (n < 0) {
                n += 1000000000;
                s--;
        }
        if (s < INT32_MIN) {
                s = INT32_MIN;
                n = 0;
        } else if (s > (int64_t)INT32_MAX + 3 * (INT64_C(1) << 32)) {
                s = (int64_t)INT32_MAX + 3 * (INT64_C(1) << 32);
                n = 999999999;
        }
        *sec = (__u32)(uint64_t)s;
        *extra = (__u32)(((uint64_t)(s - (int32_t)(uint32_t)(uint64_t)s) >> 32) & EXT4_EPOCH_MASK) |
                 ((__u32)n << EXT4_EPOCH_BITS);
}

static void set_meta(struct ext2_inode_large *in, const struct img_entry *e, __u16 type_bits)
{
        in->i_mode = type_bits | (e->mode & 07777);
        in->i_uid = (__u16)e->uid;
        ext2fs_set_i_uid_high(*in, e->uid >> 16);
        in->i_gid = (__u16)e->gid;
        ext2fs_set_i_gid_high(*in, e->gid >> 16);
        encode_time(e->atime_ns, &in->i_atime, &in->i_atime_extra);
        encode_time(e->mtime_ns, &in->i_mtime, &in->i_mtime_extra);
        encode_time(e->ctime_ns, &in->i_ctime, &in->i_ctime_extra);
        encode_time(e->ctime_ns, &in->i_crtime, &in->i_crtime_extra);
}

/* Writes a whole inode, the extended attribute area included. */
static int write_inode(struct img_ext4 *w, ext2_ino_t ino, const struct ext2_inode_large *in)
{
        uint8_t full[INODE_SIZE] = {0};

        memcpy(full, in, sizeof(*in));
        return errcode_to_errno(
                ext2fs_write_inode_full(w->fs, ino, (struct ext2_inode *)full, sizeof(full)));
}

/* Rewrites the fixed part of an inode, keeping its in-inode attributes. */
static int update_inode(struct img_ext4 *w, ext2_ino_t ino, struct ext2_inode_large *in)
{
        return errcode_to_errno(
                ext2fs_write_inode_full(w->fs, ino, (struct ext2_inode *)in, sizeof(*in)));
}

static int read_inode(struct img_ext4 *w, ext2_ino_t ino, struct ext2_inode_large *in)
{
        memset(in, 0, sizeof(*in));
        return errcode_to_errno(
                ext2fs_read_inode_full(w->fs, ino, (struct ext2_inode *)in, sizeof(*in)));
}

static int alloc_inode(struct img_ext4 *w, bool dir, ext2_ino_t *ret)
{
        ext2_ino_t ino;
        errcode_t err;

        err = ext2fs_new_inode(w->fs, 0, 0, NULL, &ino);
        if (err)
                return errcode_to_errno(err);
        ext2fs_inode_alloc_stats2(w->fs, ino, +1, dir);
        *ret = ino;
        return 0;
}

/* Frees an inode whose last name went away: blocks, attributes, bitmap. */
static int free_inode(struct img_ext4 *w, ext2_ino_t ino, struct ext2_inode_large *in)
{
        bool dir = LINUX_S_ISDIR(in->i_mode);
        errcode_t err;
        int r;

        r = flush_pending(w);
        if (r < 0)
                return r;
        if (in->i_flags & EXT4_EXTENTS_FL) {
                err = ext2fs_punch(w->fs, ino, (struct ext2_inode *)in, NULL, 0, ~0ULL);
                if (err)
                        return errcode_to_errno(err);
        }
        err = ext2fs_free_ext_attr(w->fs, ino, in);
        if (err)
                return errcode_to_errno(err);
        memset(in, 0, sizeof(*in));
        r = write_inode(w, ino, in);
        if (r < 0)
                return r;
        ext2fs_inode_alloc_stats2(w->fs, ino, -1, dir);
        return 0;
}

/* Drops one name of a non-directory inode. */
static int unlink_inode(struct img_ext4 *w, ext2_ino_t ino)
{
        struct ext2_inode_large in;
        int r;

        r = read_inode(w, ino, &in);
        if (r < 0)
                return r;
        if (in.i_links_count > 1) {
                in.i_links_count--;
                return update_inode(w, ino, &in);
        }
        return free_inode(w, ino, &in);
}

/* ---- extended attributes ----------------------------------------------- */

bool img_ext4_xattr_supported(const char *name)
{
        static const char *const prefixes[] = {"user.", "trusted.", "security."};
        const char *rest;

        if (streq(name, "system.posix_acl_access") || streq(name, "system.posix_acl_default"))
                return true;
        for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++) {
                rest = startswith(name, prefixes[i]);
                if (rest && *rest)
                        return true;
        }
        return false;
}

static void xattrs_closep(struct ext2_xattr_handle **h)
{
        if (*h)
                ext2fs_xattrs_close(h);
}

struct names {
        char **v;
        size_t n, cap;
};

static int collect_name(char *name, char *value, size_t value_len, void *data)
{
        struct names *names = data;

        if (names->n == names->cap)
                return XATTR_ABORT;
        names->v[names->n] = strdup(name);
        if (!names->v[names->n])
                return XATTR_ABORT;
        names->n++;
        return 0;
}

static void free_names(struct names *names)
{
        for (size_t i = 0; i < names->n; i++)
                free(names->v[i]);
        free(names->v);
}

/* Removes every attribute of an inode (a directory merged over). */
static int clear_xattrs(struct ext2_xattr_handle *h)
{
        _cleanup_(free_names) struct names names = {0};
        size_t count;
        errcode_t err;

        err = ext2fs_xattrs_count(h, &count);
        if (err || count == 0)
                return errcode_to_errno(err);
        names.v = calloc(count, sizeof(*names.v));
        if (!names.v)
                return -ENOMEM;
        names.cap = count;
        err = ext2fs_xattrs_iterate(h, collect_name, &names);
        if (err)
                return errcode_to_errno(err);
        if (names.n != count)
                return -ENOMEM;
        for (size_t i = 0; i < names.n; i++) {
                err = ext2fs_xattr_remove(h, names.v[i]);
                if (err)
                        return errcode_to_errno(err);
        }
        return 0;
}

static int set_xattrs(struct img_ext4 *w, ext2_ino_t ino, const struct img_entry *e, bool replace)
{
        _cleanup_(xattrs_closep) struct ext2_xattr_handle *h = NULL;
        errcode_t err;
        int r;

        if (e->n_xattrs == 0 && !replace)
                return 0;
        err = ext2fs_xattrs_open(w->fs, ino, &h);
        if (!err)
                err = ext2fs_xattrs_read(h);
        if (err)
                return errcode_to_errno(err);
        if (replace) {
                r = clear_xattrs(h);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < e->n_xattrs; i++) {
                err = ext2fs_xattr_set(h, e->xattrs[i].name, e->xattrs[i].value, e->xattrs[i].size);
                if (err)
                        return errcode_to_errno(err);
        }
        err = ext2fs_xattrs_close(&h);
        return errcode_to_errno(err);
}

/* ---- data blocks and extents ------------------------------------------- */

static int add_run(struct img_ext4 *w, uint64_t lblk, blk64_t pblk, uint64_t len)
{
        struct run *last = w->nruns ? &w->runs[w->nruns - 1] : NULL;

        if (last && last->lblk + last->len == lblk && last->pblk + last->len == pblk &&
            last->len + len <= EXTENT_MAX) {
                last->len += (uint32_t)len;
                return 0;
        }
        if (w->nruns == w->cap_runs) {
                size_t cap = w->cap_runs ? w->cap_runs * 2 : 64;
                struct run *n = reallocarray(w->runs, cap, sizeof(*n));

                if (!n)
                        return -ENOMEM;
                w->runs = n;
                w->cap_runs = cap;
        }
        w->runs[w->nruns++] =
                (struct run){.lblk = (uint32_t)lblk, .len = (uint32_t)len, .pblk = pblk};
        return 0;
}

/* Allocates blocks for logical blocks [lblk, lblk + n) and writes data there. */
static int write_run(struct img_ext4 *w, uint64_t lblk, const uint8_t *data, uint64_t n)
{
        while (n > 0) {
                blk64_t pblk, got;
                errcode_t err;
                int r;

                err = ext2fs_new_range(w->fs, 0, w->goal, MIN(n, (uint64_t)EXTENT_MAX), NULL, &pblk,
                                       &got);
                if (err)
                        return errcode_to_errno(err);
                ext2fs_block_alloc_stats_range(w->fs, pblk, (blk_t)got, +1);
                r = write_blocks(w, pblk, data, (size_t)got);
                if (r < 0)
                        return r;
                r = add_run(w, lblk, pblk, got);
                if (r < 0)
                        return r;
                w->goal = pblk + got;
                w->nblocks += got;
                lblk += got;
                data += got * BS;
                n -= got;
        }
        return 0;
}

static bool block_is_zero(const uint8_t *b)
{
        const uint64_t *p = (const uint64_t *)b;
        uint64_t acc = 0;

        for (size_t i = 0; i < BS / sizeof(*p); i++)
                acc |= p[i];
        return acc == 0;
}

/* Writes the non-zero blocks of the first nblk blocks of w->buf. */
static int flush_chunk(struct img_ext4 *w, uint64_t lblk, size_t nblk)
{
        size_t i = 0;

        while (i < nblk) {
                size_t j;
                int r;

                if (block_is_zero(w->buf + i * BS)) {
                        i++;
                        continue;
                }
                for (j = i + 1; j < nblk && !block_is_zero(w->buf + j * BS); j++)
                        ;
                r = write_run(w, lblk + i, w->buf + i * BS, j - i);
                if (r < 0)
                        return r;
                i = j;
        }
        return 0;
}

static int read_exact(const struct img_entry *e, uint8_t *buf, size_t n)
{
        while (n > 0) {
                ssize_t k = e->read(e->read_ctx, buf, n);

                if (k < 0)
                        return (int)k;
                if (k == 0 || (size_t)k > n)
                        return -EIO;
                buf += k;
                n -= (size_t)k;
        }
        return 0;
}

/*
 * Streams a regular file's data into w->runs. The chunk buffer covers
 * CHUNK_BLOCKS logical blocks starting at `chunk`; bytes below `fill` are
 * defined, the rest is zeroed lazily so small files cost no 1 MiB memset.
 */
static int write_file_data(struct img_ext4 *w, const struct img_entry *e)
{
        const struct img_extent whole = {.offset = 0, .length = e->size};
        const struct img_extent *map = e->data_map ? e->data_map : &whole;
        size_t nmap = e->data_map ? e->n_data_map : 1;
        uint64_t chunk = UINT64_MAX;
        size_t fill = 0;
        int r;

        for (size_t i = 0; i < nmap; i++) {
                uint64_t off = map[i].offset, left = map[i].length;

                while (left > 0) {
                        uint64_t lblk = off / BS;
                        size_t pos, n;

                        if (chunk != UINT64_MAX && lblk >= chunk + CHUNK_BLOCKS) {
                                memset(w->buf + fill, 0, ALIGN_BS(fill) - fill);
                                r = flush_chunk(w, chunk, ALIGN_BS(fill) / BS);
                                if (r < 0)
                                        return r;
                                chunk = UINT64_MAX;
                        }
                        if (chunk == UINT64_MAX) {
                                chunk = lblk;
                                fill = 0;
                        }
                        pos = (size_t)(off - chunk * BS);
                        n = (size_t)MIN(left, (uint64_t)(CHUNK_BLOCKS * BS - pos));
                        memset(w->buf + fill, 0, pos - fill);
                        r = read_exact(e, w->buf + pos, n);
                        if (r < 0)
                                return r;
                        fill = pos + n;
                        off += n;
                        left -= n;
                }
        }
        if (chunk == UINT64_MAX)
                return 0;
        memset(w->buf + fill, 0, ALIGN_BS(fill) - fill);
        return flush_chunk(w, chunk, ALIGN_BS(fill) / BS);
}

static void extent_freep(ext2_extent_handle_t *h)
{
        if (*h)
                ext2fs_extent_free(*h);
}

/* Builds the extent tree of inode `in` from w->runs and charges its blocks. */
static int attach_runs(struct img_ext4 *w, ext2_ino_t ino, struct ext2_inode_large *in)
{
        _cleanup_(extent_freep) ext2_extent_handle_t h = NULL;
        errcode_t err;

        err = ext2fs_extent_open2(w->fs, ino, (struct ext2_inode *)in, &h);
        if (err)
                return errcode_to_errno(err);
        for (size_t i = 0; i < w->nruns; i++) {
                struct ext2fs_extent ex = {
                        .e_pblk = w->runs[i].pblk,
                        .e_lblk = w->runs[i].lblk,
                        .e_len = w->runs[i].len,
                };

                err = ext2fs_extent_insert(h, EXT2_EXTENT_INSERT_AFTER, &ex);
                if (err)
                        return errcode_to_errno(err);
        }
        return errcode_to_errno(ext2fs_iblk_add_blocks(w->fs, (struct ext2_inode *)in, w->nblocks));
}

static void reset_runs(struct img_ext4 *w)
{
        w->nruns = 0;
        w->nblocks = 0;
}

/* ---- namespace --------------------------------------------------------- */

struct comp {
        const char *name;
        size_t len;
};

static uint32_t name_hash(const struct img_ext4 *w, const char *name, size_t len)
{
        ext2_dirhash_t hash = 0, minor = 0;

        /* Cannot fail for the legacy, half-MD4 and TEA hashes without casefolding. */
        (void)ext2fs_dirhash2(w->hash_version, name, (int)len, NULL, 0, w->fs->super->s_hash_seed,
                              &hash, &minor);
        return hash;
}

static size_t bucket_of(const struct img_ext4 *w, ext2_ino_t parent, uint32_t hash)
{
        uint64_t k = ((uint64_t)hash << 32 | parent) * UINT64_C(0x9E3779B97F4A7C15);

        return (size_t)(k >> (64 - w->hash_bits));
}

static struct node *lookup(const struct img_ext4 *w, const struct node *dir, const struct comp *c)
{
        uint32_t hash = name_hash(w, c->name, c->len);

        for (struct node *n = w->buckets[bucket_of(w, dir->ino, hash)]; n; n = n->hnext)
                if (n->parent == dir && n->hash == hash && n->len == c->len &&
                    memcmp(n->name, c->name, c->len) == 0)
                        return n;
        return NULL;
}

static int table_grow(struct img_ext4 *w)
{
        size_t old_size = (size_t)1 << w->hash_bits;
        struct node **old = w->buckets;
        struct node **nb = calloc(old_size * 2, sizeof(*nb));

        if (!nb)
                return -ENOMEM;
        w->buckets = nb;
        w->hash_bits++;
        for (size_t i = 0; i < old_size; i++) {
                struct node *n = old[i], *next;

                for (; n; n = next) {
                        size_t b = bucket_of(w, n->parent->ino, n->hash);

                        next = n->hnext;
                        n->hnext = nb[b];
                        nb[b] = n;
                }
        }
        free(old);
        return 0;
}

static int add_node(struct img_ext4 *w, struct node *dir, const struct comp *c, ext2_ino_t ino,
                    uint8_t ftype, struct node **ret)
{
        struct node *n;
        size_t b;

        if (w->nnodes >= ((size_t)1 << w->hash_bits)) {
                int r = table_grow(w);

                if (r < 0)
                        return r;
        }
        n = calloc(1, sizeof(*n) + c->len + 1);
        if (!n)
                return -ENOMEM;
        memcpy(n->name, c->name, c->len);
        n->len = (uint8_t)c->len;
        n->hash = name_hash(w, c->name, c->len);
        n->ino = ino;
        n->ftype = ftype;
        n->parent = dir;
        n->prev = dir->last;
        if (dir->last)
                dir->last->next = n;
        else
                dir->first = n;
        dir->last = n;
        b = bucket_of(w, dir->ino, n->hash);
        n->hnext = w->buckets[b];
        w->buckets[b] = n;
        w->nnodes++;
        if (ret)
                *ret = n;
        return 0;
}

static void drop_node(struct img_ext4 *w, struct node *n)
{
        struct node **pp = &w->buckets[bucket_of(w, n->parent->ino, n->hash)];

        while (*pp != n)
                pp = &(*pp)->hnext;
        *pp = n->hnext;
        if (n->prev)
                n->prev->next = n->next;
        else
                n->parent->first = n->next;
        if (n->next)
                n->next->prev = n->prev;
        else
                n->parent->last = n->prev;
        w->nnodes--;
        free(n);
}

/* Splits a path into components; "." and empty ones dropped, ".." refused. */
static int split_path(const char *path, struct comp **ret, size_t *ret_n)
{
        _cleanup_free_ struct comp *c = NULL;
        size_t len, n = 0;
        const char *s;

        if (!path)
                return -EINVAL;
        len = strnlen(path, IMG_PATH_MAX + 1);
        if (len > IMG_PATH_MAX)
                return -ENAMETOOLONG;
        c = calloc(len / 2 + 1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        for (s = path; *s;) {
                const char *end = strchrnul(s, '/');
                size_t l = (size_t)(end - s);

                if (l == 2 && s[0] == '.' && s[1] == '.')
                        return -EINVAL;
                if (l > IMG_NAME_MAX)
                        return -ENAMETOOLONG;
                if (l > 0 && !(l == 1 && s[0] == '.'))
                        c[n++] = (struct comp){.name = s, .len = l};
                s = *end ? end + 1 : end;
        }
        *ret = TAKE_PTR(c);
        *ret_n = n;
        return 0;
}

/* Finds the node of an existing path. */
static int resolve(struct img_ext4 *w, const char *path, struct node **ret)
{
        _cleanup_free_ struct comp *c = NULL;
        struct node *n;
        size_t nc;
        int r;

        r = split_path(path, &c, &nc);
        if (r < 0)
                return r;
        n = w->root;
        for (size_t i = 0; i < nc; i++) {
                if (n->ftype != EXT2_FT_DIR)
                        return -ENOTDIR;
                n = lookup(w, n, &c[i]);
                if (!n)
                        return -ENOENT;
        }
        *ret = n;
        return 0;
}

/* Releases a node's inode and the node; a directory must be empty. */
static int release_node(struct img_ext4 *w, struct node *n)
{
        int r;

        if (n->ftype == EXT2_FT_DIR) {
                struct ext2_inode_large in;

                r = read_inode(w, n->ino, &in);
                if (r >= 0)
                        r = free_inode(w, n->ino, &in);
        } else
                r = unlink_inode(w, n->ino);
        if (r < 0)
                return r;
        drop_node(w, n);
        return 0;
}

/* Removes a subtree, deepest first, without recursion. */
static int remove_node(struct img_ext4 *w, struct node *top)
{
        struct node *n = top;

        for (;;) {
                struct node *parent;
                bool done;
                int r;

                while (n->first)
                        n = n->first;
                parent = n->parent;
                done = n == top;
                r = release_node(w, n);
                if (r < 0)
                        return r;
                if (done)
                        return 0;
                n = parent;
        }
}

/* ---- entries ----------------------------------------------------------- */

static int check_data_map(const struct img_entry *e, bool *ret_has_data)
{
        uint64_t end = 0;

        if (e->n_data_map > IMG_DATA_MAP_MAX)
                return -E2BIG;
        *ret_has_data = false;
        for (size_t i = 0; i < e->n_data_map; i++) {
                const struct img_extent *x = &e->data_map[i];
                uint64_t xend;

                if (__builtin_add_overflow(x->offset, x->length, &xend) || x->offset < end ||
                    xend > e->size)
                        return -EINVAL;
                if (x->length > 0)
                        *ret_has_data = true;
                end = xend;
        }
        return 0;
}

static int check_entry(const struct img_entry *e)
{
        size_t len;
        bool has_data;
        int r;

        switch (e->type) {
        case IMG_ENTRY_REG:
                if (e->size > (MAX_FILE_BLK - 1) * BS)
                        return -EFBIG;
                if (e->data_map) {
                        r = check_data_map(e, &has_data);
                        if (r < 0)
                                return r;
                } else
                        has_data = e->size > 0;
                if (has_data && !e->read)
                        return -EINVAL;
                break;
        case IMG_ENTRY_SYMLINK:
                if (!e->target)
                        return -EINVAL;
                len = strnlen(e->target, IMG_SYMLINK_MAX + 1);
                if (len == 0)
                        return -EINVAL;
                if (len > IMG_SYMLINK_MAX)
                        return -ENAMETOOLONG;
                break;
        case IMG_ENTRY_HARDLINK:
                if (!e->target)
                        return -EINVAL;
                return 0; /* a new name for an existing inode: no metadata of its own */
        case IMG_ENTRY_CHR:
        case IMG_ENTRY_BLK:
                if (e->rdev_major >= (1u << 12) || e->rdev_minor >= (1u << 20))
                        return -EINVAL;
                break;
        case IMG_ENTRY_DIR:
        case IMG_ENTRY_FIFO:
        case IMG_ENTRY_SOCK:
                break;
        default:
                return -EINVAL;
        }
        if (e->n_xattrs > IMG_XATTRS_MAX)
                return -E2BIG;
        if (e->n_xattrs > 0 && !e->xattrs)
                return -EINVAL;
        for (size_t i = 0; i < e->n_xattrs; i++) {
                const struct img_xattr *x = &e->xattrs[i];

                if (!x->name || (x->size > 0 && !x->value))
                        return -EINVAL;
                if (strnlen(x->name, IMG_XATTR_NAME_MAX + 1) > IMG_XATTR_NAME_MAX)
                        return -ENAMETOOLONG;
                if (!img_ext4_xattr_supported(x->name))
                        return -EOPNOTSUPP;
                if (x->size > IMG_XATTR_VALUE_MAX)
                        return -E2BIG;
        }
        return 0;
}

static void encode_rdev(struct ext2_inode_large *in, uint32_t major, uint32_t minor)
{
        if (major < 256 && minor < 256)
                in->i_block[0] = major << 8 | minor;
        else
                in->i_block[1] = (minor & 0xff) | major << 8 | (minor & ~0xffu) << 12;
}

static const struct {
        __u16 mode;
        uint8_t ftype;
} kinds[] = {
        [IMG_ENTRY_REG] = {LINUX_S_IFREG, EXT2_FT_REG_FILE},
        [IMG_ENTRY_DIR] = {LINUX_S_IFDIR, EXT2_FT_DIR},
        [IMG_ENTRY_SYMLINK] = {LINUX_S_IFLNK, EXT2_FT_SYMLINK},
        [IMG_ENTRY_CHR] = {LINUX_S_IFCHR, EXT2_FT_CHRDEV},
        [IMG_ENTRY_BLK] = {LINUX_S_IFBLK, EXT2_FT_BLKDEV},
        [IMG_ENTRY_FIFO] = {LINUX_S_IFIFO, EXT2_FT_FIFO},
        [IMG_ENTRY_SOCK] = {LINUX_S_IFSOCK, EXT2_FT_SOCK},
};

/* Allocates and writes the inode of a new entry (data included). */
static int make_inode(struct img_ext4 *w, const struct img_entry *e, ext2_ino_t *ret)
{
        struct ext2_inode_large in = {0};
        bool extents = e->type == IMG_ENTRY_REG || e->type == IMG_ENTRY_DIR;
        uint64_t size = 0;
        ext2_ino_t ino = 0;
        int r;

        r = alloc_inode(w, e->type == IMG_ENTRY_DIR, &ino);
        if (r < 0)
                return r;
        set_meta(&in, e, kinds[e->type].mode);
        in.i_extra_isize = sizeof(in) - EXT2_GOOD_OLD_INODE_SIZE;
        in.i_links_count = e->type == IMG_ENTRY_DIR ? 2 : 1;
        if (e->type == IMG_ENTRY_CHR || e->type == IMG_ENTRY_BLK)
                encode_rdev(&in, e->rdev_major, e->rdev_minor);
        if (e->type == IMG_ENTRY_SYMLINK) {
                size = strlen(e->target);
                if (size < IMG_SYMLINK_INLINE)
                        memcpy(in.i_block, e->target, size);
                else
                        extents = true;
        }
        r = write_inode(w, ino, &in);
        if (r < 0)
                return r;

        reset_runs(w);
        if (e->type == IMG_ENTRY_REG) {
                size = e->size;
                r = write_file_data(w, e);
        } else if (e->type == IMG_ENTRY_SYMLINK && extents) {
                memset(w->buf, 0, BS);
                memcpy(w->buf, e->target, size);
                r = write_run(w, 0, w->buf, 1);
        }
        if (r < 0)
                return r;
        if (extents) {
                r = attach_runs(w, ino, &in);
                if (r < 0)
                        return r;
        }
        r = errcode_to_errno(ext2fs_inode_size_set(w->fs, (struct ext2_inode *)&in, size));
        if (r >= 0)
                r = update_inode(w, ino, &in);
        if (r >= 0)
                r = set_xattrs(w, ino, e, false);
        if (r < 0)
                return r;
        *ret = ino;
        return 0;
}

static int new_entry(struct img_ext4 *w, struct node *dir, const struct comp *c,
                     const struct img_entry *e, struct node **ret)
{
        ext2_ino_t ino;
        int r;

        r = make_inode(w, e, &ino);
        if (r < 0)
                return r;
        return add_node(w, dir, c, ino, kinds[e->type].ftype, ret);
}

/* A directory over a directory keeps the children and takes the metadata. */
static int merge_dir(struct img_ext4 *w, struct node *n, const struct img_entry *e)
{
        struct ext2_inode_large in;
        int r;

        r = read_inode(w, n->ino, &in);
        if (r < 0)
                return r;
        set_meta(&in, e, LINUX_S_IFDIR);
        r = update_inode(w, n->ino, &in);
        if (r < 0)
                return r;
        return set_xattrs(w, n->ino, e, true);
}

static int add_link(struct img_ext4 *w, ext2_ino_t ino)
{
        struct ext2_inode_large in;
        int r;

        r = read_inode(w, ino, &in);
        if (r < 0)
                return r;
        in.i_links_count++;
        return update_inode(w, ino, &in);
}

static int link_count(struct img_ext4 *w, ext2_ino_t ino, unsigned *ret)
{
        struct ext2_inode_large in;
        int r;

        r = read_inode(w, ino, &in);
        if (r < 0)
                return r;
        *ret = in.i_links_count;
        return 0;
}

static void parent_entry(const struct img_ext4 *w, struct img_entry *e)
{
        *e = (struct img_entry){
                .type = IMG_ENTRY_DIR,
                .mode = 0755,
                .atime_ns = w->now_ns,
                .mtime_ns = w->now_ns,
                .ctime_ns = w->now_ns,
        };
}

/* 0 when w can take another call: it exists, has not failed, is not done. */
static int writer_usable(const struct img_ext4 *w)
{
        if (!w || w->finished)
                return -EINVAL;
        return w->error;
}

int img_ext4_add(struct img_ext4 *w, const struct img_entry *e)
{
        _cleanup_free_ struct comp *c = NULL;
        struct node *dir, *existing = NULL, *target = NULL;
        struct img_entry pe;
        ext2_ino_t link_ino = 0;
        uint8_t link_ftype = 0;
        size_t n, have;
        int r;

        if (!e)
                return -EINVAL;
        r = writer_usable(w);
        if (r < 0)
                return r;
        r = check_entry(e);
        if (r < 0)
                return r;
        if (w->nnodes >= IMG_ENTRIES_MAX)
                return -ENOSPC;
        r = split_path(e->path, &c, &n);
        if (r < 0)
                return r;
        if (n == 0) {
                if (e->type != IMG_ENTRY_DIR)
                        return -EINVAL;
                return fail(w, merge_dir(w, w->root, e));
        }

        dir = w->root;
        for (have = 0; have + 1 < n; have++) {
                struct node *child = lookup(w, dir, &c[have]);

                if (!child)
                        break;
                if (child->ftype != EXT2_FT_DIR)
                        return -ENOTDIR;
                dir = child;
        }
        if (have + 1 == n)
                existing = lookup(w, dir, &c[n - 1]);

        if (e->type == IMG_ENTRY_HARDLINK) {
                unsigned links;

                r = resolve(w, e->target, &target);
                if (r < 0)
                        return r == -ENOTDIR ? -ENOENT : r;
                if (target->ftype == EXT2_FT_DIR)
                        return -EPERM;
                if (target == existing)
                        return 0;
                r = link_count(w, target->ino, &links);
                if (r < 0)
                        return fail(w, r);
                if (links >= IMG_LINK_MAX)
                        return -EMLINK;
                link_ino = target->ino;
                link_ftype = target->ftype;
        }
        if (existing && existing->ftype == EXT2_FT_DIR && e->type == IMG_ENTRY_DIR)
                return fail(w, merge_dir(w, existing, e));

        /* From here on a failure may leave partial state behind. */
        parent_entry(w, &pe);
        for (; have + 1 < n; have++) {
                r = new_entry(w, dir, &c[have], &pe, &dir);
                if (r < 0)
                        return fail(w, r);
        }
        if (link_ino) {
                /* Count the new name first: the old one may be the last. */
                r = add_link(w, link_ino);
                if (r < 0)
                        return fail(w, r);
        }
        if (existing) {
                r = remove_node(w, existing);
                if (r < 0)
                        return fail(w, r);
        }
        if (link_ino)
                r = add_node(w, dir, &c[n - 1], link_ino, link_ftype, NULL);
        else
                r = new_entry(w, dir, &c[n - 1], e, NULL);
        return fail(w, r);
}

int img_ext4_remove(struct img_ext4 *w, const char *path)
{
        struct node *n;
        int r;

        r = writer_usable(w);
        if (r < 0)
                return r;
        r = resolve(w, path, &n);
        if (r < 0)
                return r == -ENOTDIR ? -ENOENT : r;
        if (n == w->root)
                return -EINVAL;
        return fail(w, remove_node(w, n));
}

int img_ext4_remove_children(struct img_ext4 *w, const char *path)
{
        struct node *n;
        int r;

        r = writer_usable(w);
        if (r < 0)
                return r;
        r = resolve(w, path, &n);
        if (r < 0)
                return r == -ENOTDIR ? -ENOENT : r;
        if (n->ftype != EXT2_FT_DIR)
                return -ENOTDIR;
        while (n->first) {
                r = remove_node(w, n->first);
                if (r < 0)
                        return fail(w, r);
        }
        return 0;
}

/* ---- directories (at finish) ------------------------------------------- */

struct dir_builder {
        size_t blocks; /* blocks started in w->dirbuf */
        size_t pos;    /* next free byte in the current block */
        size_t last;   /* offset of the last entry in the current block */
};

#define DIR_ROOM     (BS - sizeof(struct ext2_dir_entry_tail))
#define DX_ROOT_AT   32 /* ".", "..", dx_root_info */
#define DX_NODE_AT   8  /* an empty dirent covering the block */
#define DX_LIMIT(at) ((BS - (at) - sizeof(struct ext2_dx_tail)) / sizeof(struct ext2_dx_entry))

static void dir_close_block(struct img_ext4 *w, struct dir_builder *d)
{
        uint8_t *blk = w->dirbuf + (d->blocks - 1) * BS;

        (void)ext2fs_set_rec_len(w->fs, (unsigned)(DIR_ROOM - d->last),
                                 (struct ext2_dir_entry *)(blk + d->last));
        ext2fs_initialize_dirent_tail(w->fs, (struct ext2_dir_entry_tail *)(blk + DIR_ROOM));
}

static void put_dirent(struct img_ext4 *w, uint8_t *at, ext2_ino_t ino, const char *name,
                       size_t len, uint8_t ftype, size_t rec)
{
        struct ext2_dir_entry_2 *de = (struct ext2_dir_entry_2 *)at;

        de->inode = ino;
        de->name_len = (__u8)len;
        de->file_type = ftype;
        memcpy(de->name, name, len);
        (void)ext2fs_set_rec_len(w->fs, (unsigned)rec, (struct ext2_dir_entry *)de);
}

/* Appends an entry to w->dirbuf; 1 when it had to start a new block. */
static int dir_put(struct img_ext4 *w, struct dir_builder *d, ext2_ino_t ino, const char *name,
                   size_t len, uint8_t ftype)
{
        size_t rec = 8 + ALIGN_4(len);
        int started = 0;

        if (d->blocks == 0 || d->pos + rec > DIR_ROOM) {
                if (d->blocks > 0)
                        dir_close_block(w, d);
                if ((d->blocks + 1) * BS > w->dirbuf_cap) {
                        size_t cap = MAX(w->dirbuf_cap * 2, (size_t)16 * BS);
                        uint8_t *nb = realloc(w->dirbuf, cap);

                        if (!nb)
                                return -ENOMEM;
                        w->dirbuf = nb;
                        w->dirbuf_cap = cap;
                }
                memset(w->dirbuf + d->blocks * BS, 0, BS);
                d->blocks++;
                d->pos = 0;
                started = 1;
        }
        put_dirent(w, w->dirbuf + (d->blocks - 1) * BS + d->pos, ino, name, len, ftype, rec);
        d->last = d->pos;
        d->pos += rec;
        return started;
}

static int csum_blocks(struct img_ext4 *w, ext2_ino_t ino, uint8_t *blocks, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                errcode_t err = ext2fs_dir_block_csum_set(
                        w->fs, ino, (struct ext2_dir_entry *)(blocks + i * BS));

                if (err)
                        return errcode_to_errno(err);
        }
        return 0;
}

static ext2_ino_t parent_ino(const struct img_ext4 *w, const struct node *dir)
{
        return dir == w->root ? dir->ino : dir->parent->ino;
}

/* A directory that fits one block: ".", "..", the children in order. */
static int write_linear_dir(struct img_ext4 *w, struct node *dir)
{
        struct dir_builder d = {0};
        int r;

        r = dir_put(w, &d, dir->ino, ".", 1, EXT2_FT_DIR);
        if (r >= 0)
                r = dir_put(w, &d, parent_ino(w, dir), "..", 2, EXT2_FT_DIR);
        for (struct node *n = dir->first; n && r >= 0; n = n->next)
                r = dir_put(w, &d, n->ino, n->name, n->len, n->ftype);
        if (r < 0)
                return r;
        dir_close_block(w, &d);
        r = csum_blocks(w, dir->ino, w->dirbuf, d.blocks);
        if (r < 0)
                return r;
        return write_run(w, 0, w->dirbuf, d.blocks);
}

struct dent {
        uint32_t hash, minor;
        const struct node *n;
};

static int cmp_dent(const void *a, const void *b)
{
        const struct dent *x = a, *y = b;

        if (x->hash != y->hash)
                return x->hash < y->hash ? -1 : 1;
        if (x->minor != y->minor)
                return x->minor < y->minor ? -1 : 1;
        return 0;
}

/* Fills an index block's count/limit and entries; entry 0's hash is implicit. */
static void put_dx(uint8_t *blk, size_t at, const uint32_t *hashes, blk64_t first_block, size_t n)
{
        struct ext2_dx_entry *e = (struct ext2_dx_entry *)(blk + at);
        struct ext2_dx_countlimit *cl = (struct ext2_dx_countlimit *)e;

        for (size_t i = 0; i < n; i++) {
                e[i].block = (__u32)(first_block + i);
                if (i > 0)
                        e[i].hash = hashes[i];
        }
        cl->limit = (__u16)DX_LIMIT(at);
        cl->count = (__u16)n;
}

/*
 * A directory larger than a block gets an htree index, as the kernel would
 * build it: leaves hold the entries sorted by hash; a leaf whose first hash
 * continues the previous leaf's last one is marked with the low hash bit.
 * Block 0 is the root (".", "..", index of leaves or of index nodes), then
 * the index nodes (a second level past DX_LIMIT(DX_ROOT_AT) leaves), then
 * the leaves.
 */
static int write_indexed_dir(struct img_ext4 *w, struct node *dir, size_t count)
{
        _cleanup_free_ struct dent *d = calloc(count, sizeof(*d));
        _cleanup_free_ uint32_t *starts = calloc(count, sizeof(*starts));
        _cleanup_free_ uint8_t *head = NULL;
        const size_t root_limit = DX_LIMIT(DX_ROOT_AT), node_limit = DX_LIMIT(DX_NODE_AT);
        struct dir_builder b = {0};
        struct ext2_dx_root_info *info;
        size_t i = 0, nleaves = 0, nnodes = 0, nhead;
        int r;

        if (!d || !starts)
                return -ENOMEM;
        for (struct node *n = dir->first; n; n = n->next, i++) {
                ext2_dirhash_t hash = 0, minor = 0;

                (void)ext2fs_dirhash2(w->hash_version, n->name, n->len, NULL, 0,
                                      w->fs->super->s_hash_seed, &hash, &minor);
                d[i] = (struct dent){.hash = hash, .minor = minor, .n = n};
        }
        qsort(d, count, sizeof(*d), cmp_dent);
        for (i = 0; i < count; i++) {
                r = dir_put(w, &b, d[i].n->ino, d[i].n->name, d[i].n->len, d[i].n->ftype);
                if (r < 0)
                        return r;
                if (r > 0) {
                        bool continued = i > 0 && d[i].hash == d[i - 1].hash;

                        starts[nleaves++] = d[i].hash | continued;
                }
        }
        dir_close_block(w, &b);
        if (nleaves > root_limit) {
                nnodes = (nleaves + node_limit - 1) / node_limit;
                if (nnodes > root_limit)
                        return -EFBIG; /* would need a third level (large_dir) */
        }
        nhead = 1 + nnodes;
        head = calloc(nhead, BS);
        if (!head)
                return -ENOMEM;

        put_dirent(w, head, dir->ino, ".", 1, EXT2_FT_DIR, 12);
        put_dirent(w, head + 12, parent_ino(w, dir), "..", 2, EXT2_FT_DIR, BS - 12);
        info = (struct ext2_dx_root_info *)(head + 24);
        info->hash_version = w->fs->super->s_def_hash_version;
        info->info_length = sizeof(*info);
        info->indirect_levels = nnodes > 0;
        if (nnodes == 0) {
                put_dx(head, DX_ROOT_AT, starts, nhead, nleaves);
        } else {
                _cleanup_free_ uint32_t *node_starts = calloc(nnodes, sizeof(*node_starts));

                if (!node_starts)
                        return -ENOMEM;
                for (size_t k = 0; k < nnodes; k++) {
                        size_t first = k * node_limit;
                        uint8_t *blk = head + (1 + k) * BS;

                        node_starts[k] = starts[first];
                        (void)ext2fs_set_rec_len(w->fs, BS, (struct ext2_dir_entry *)blk);
                        put_dx(blk, DX_NODE_AT, starts + first, nhead + first,
                               MIN(node_limit, nleaves - first));
                }
                put_dx(head, DX_ROOT_AT, node_starts, 1, nnodes);
        }
        r = csum_blocks(w, dir->ino, head, nhead);
        if (r >= 0)
                r = csum_blocks(w, dir->ino, w->dirbuf, nleaves);
        if (r >= 0)
                r = write_run(w, 0, head, nhead);
        if (r >= 0)
                r = write_run(w, nhead, w->dirbuf, nleaves);
        return r;
}

static int write_dir(struct img_ext4 *w, struct node *dir)
{
        struct ext2_inode_large in;
        size_t bytes = 12 + 12, count = 0;
        unsigned subdirs = 0;
        bool indexed;
        int r;

        for (struct node *n = dir->first; n; n = n->next) {
                bytes += 8 + ALIGN_4(n->len);
                count++;
                subdirs += n->ftype == EXT2_FT_DIR;
        }
        indexed = bytes > DIR_ROOM;
        reset_runs(w);
        r = indexed ? write_indexed_dir(w, dir, count) : write_linear_dir(w, dir);
        if (r >= 0)
                r = read_inode(w, dir->ino, &in);
        if (r >= 0)
                r = attach_runs(w, dir->ino, &in);
        if (r < 0)
                return r;
        r = errcode_to_errno(
                ext2fs_inode_size_set(w->fs, (struct ext2_inode *)&in, w->nblocks * BS));
        if (r < 0)
                return r;
        if (indexed)
                in.i_flags |= EXT2_INDEX_FL;
        /* With dir_nlink, a directory with too many subdirectories counts 1. */
        in.i_links_count = subdirs + 2 < IMG_LINK_MAX ? (__u16)(subdirs + 2) : 1;
        return update_inode(w, dir->ino, &in);
}

/* Pre-order successor of n in the tree. */
static struct node *next_node(struct node *n)
{
        if (n->first)
                return n->first;
        for (; n; n = n->parent)
                if (n->next)
                        return n->next;
        return NULL;
}

int img_ext4_finish(struct img_ext4 *w)
{
        errcode_t err;
        int r;

        r = writer_usable(w);
        if (r < 0)
                return r;
        for (struct node *n = w->root; n; n = next_node(n)) {
                if (n->ftype != EXT2_FT_DIR)
                        continue;
                r = write_dir(w, n);
                if (r < 0)
                        return fail(w, r);
        }
        r = flush_pending(w);
        if (r < 0)
                return fail(w, r);
        err = ext2fs_set_gdt_csum(w->fs);
        if (err)
                return fail_err(w, err);
        /* Flushes bitmaps, descriptors and every superblock copy, then fsyncs
         * (a scratch disk, deleted rather than recovered, needs no fsync). */
        err = ext2fs_close2(w->fs, w->scratch ? EXT2_FLAG_FLUSH_NO_SYNC : 0);
        if (err)
                return fail_err(w, err);
        w->fs = NULL;
        w->finished = true;
        return 0;
}

/* ---- creation ---------------------------------------------------------- */

static void free_nodes(struct img_ext4 *w)
{
        if (w->buckets)
                for (size_t i = 0; i < ((size_t)1 << w->hash_bits); i++) {
                        struct node *n = w->buckets[i], *next;

                        for (; n; n = next) {
                                next = n->hnext;
                                free(n);
                        }
                }
        free(w->buckets);
        free(w->root);
}

void img_ext4_free(struct img_ext4 *w)
{
        if (!w)
                return;
        if (w->fs)
                ext2fs_free(w->fs);
        if (w->path && !w->finished)
                (void)unlink(w->path);
        free_nodes(w);
        free(w->runs);
        free(w->buf);
        free(w->pend);
        free(w->dirbuf);
        free(w->path);
        free(w);
}

static void random_uuid(__u8 uuid[16])
{
        /* getrandom() of 16 bytes does not fail once the pool is ready; a
         * failure only costs uniqueness, which nothing here relies on. */
        if (getrandom(uuid, 16, 0) != 16)
                memset(uuid, 0x5a, 16);
        uuid[6] = (uuid[6] & 0x0f) | 0x40; /* version 4 */
        uuid[8] = (uuid[8] & 0x3f) | 0x80; /* RFC 4122 variant */
}

static int format(struct img_ext4 *w, int fd, const struct img_ext4_params *p, uint64_t blocks,
                  uint64_t inodes)
{
        struct ext2_super_block param = {0};
        char name[32];
        errcode_t err;

        ext2fs_blocks_count_set(&param, blocks);
        param.s_log_block_size = 2; /* 1024 << 2 */
        param.s_rev_level = EXT2_DYNAMIC_REV;
        param.s_inode_size = INODE_SIZE;
        param.s_inodes_count = (__u32)inodes;
        param.s_log_groups_per_flex = 4;
        param.s_max_mnt_count = -1;
        param.s_default_mount_opts = EXT2_DEFM_XATTR_USER | EXT2_DEFM_ACL;
        ext2fs_set_feature_xattr(&param);
        ext2fs_set_feature_dir_index(&param);
        ext2fs_set_feature_filetype(&param);
        ext2fs_set_feature_extents(&param);
        ext2fs_set_feature_64bit(&param);
        ext2fs_set_feature_flex_bg(&param);
        ext2fs_set_feature_sparse_super(&param);
        ext2fs_set_feature_large_file(&param);
        ext2fs_set_feature_huge_file(&param);
        ext2fs_set_feature_dir_nlink(&param);
        ext2fs_set_feature_extra_isize(&param);
        ext2fs_set_feature_metadata_csum(&param);

        /* The io channel owns fd from here on, success or not. */
        snprintf(name, sizeof(name), "%d", fd);
        err = ext2fs_initialize(name, EXT2_FLAG_64BITS, &param, unixfd_io_manager, &w->fs);
        if (err)
                return errcode_to_errno(err);

        random_uuid(w->fs->super->s_uuid);
        random_uuid((__u8 *)w->fs->super->s_hash_seed);
        w->fs->super->s_def_hash_version = EXT2_HASH_HALF_MD4;
        w->fs->super->s_checksum_type = EXT2_CRC32C_CHKSUM;
        ext2fs_init_csum_seed(w->fs);
        if (p->label)
                strncpy((char *)w->fs->super->s_volume_name, p->label,
                        sizeof(w->fs->super->s_volume_name));
        w->hash_version = EXT2_HASH_HALF_MD4;
        if (w->fs->super->s_flags & EXT2_FLAGS_UNSIGNED_HASH)
                w->hash_version += EXT2_HASH_HALF_MD4_UNSIGNED - EXT2_HASH_HALF_MD4;

        err = ext2fs_allocate_tables(w->fs);
        if (!err)
                err = ext2fs_convert_subcluster_bitmap(w->fs, &w->fs->block_map);
        if (err)
                return errcode_to_errno(err);
        /* The file is new: its inode tables already read as zeros. */
        for (dgrp_t g = 0; g < w->fs->group_desc_count; g++) {
                ext2fs_bg_flags_set(w->fs, g, EXT2_BG_INODE_ZEROED);
                ext2fs_group_desc_csum_set(w->fs, g);
        }
        return 0;
}

/* Reserved inodes 1..10: zeroed with valid checksums, marked in use. */
static int reserve_inodes(struct img_ext4 *w)
{
        const struct ext2_inode_large zero = {0};
        int r;

        for (ext2_ino_t ino = 1; ino < EXT2_FIRST_INO(w->fs->super); ino++) {
                r = write_inode(w, ino, &zero);
                if (r < 0)
                        return r;
                ext2fs_inode_alloc_stats2(w->fs, ino, +1, ino == EXT2_ROOT_INO);
        }
        return errcode_to_errno(ext2fs_update_bb_inode(w->fs, NULL));
}

static int make_root(struct img_ext4 *w)
{
        struct ext2_inode_large in = {0};
        struct img_entry e;
        int r;

        parent_entry(w, &e);
        w->root = calloc(1, sizeof(*w->root));
        if (!w->root)
                return -ENOMEM;
        w->root->ino = EXT2_ROOT_INO;
        w->root->ftype = EXT2_FT_DIR;
        set_meta(&in, &e, LINUX_S_IFDIR);
        in.i_extra_isize = sizeof(in) - EXT2_GOOD_OLD_INODE_SIZE;
        in.i_links_count = 2;
        reset_runs(w);
        r = attach_runs(w, EXT2_ROOT_INO, &in);
        if (r < 0)
                return r;
        return write_inode(w, EXT2_ROOT_INO, &in);
}

static int make_writable(struct img_ext4 *w, bool journal)
{
        struct ext2fs_journal_params jp;
        const struct comp lf = {.name = "lost+found", .len = 10};
        struct img_entry e;
        errcode_t err = 0;

        if (journal) {
                err = ext2fs_get_journal_params(&jp, w->fs);
                if (!err)
                        err = ext2fs_add_journal_inode3(w->fs, &jp, ~0ULL,
                                                        EXT2_MKJOURNAL_LAZYINIT |
                                                                EXT2_MKJOURNAL_NO_MNT_CHECK);
        }
        if (err)
                return errcode_to_errno(err);
        parent_entry(w, &e);
        e.mode = 0700;
        return new_entry(w, w->root, &lf, &e, NULL);
}

int img_ext4_create(const char *path, const struct img_ext4_params *p, struct img_ext4 **ret)
{
        _cleanup_(img_ext4_freep) struct img_ext4 *w = NULL;
        _cleanup_close_ int fd = -1;
        uint64_t blocks, inodes;
        int r;

        if (!path || !p || !ret)
                return -EINVAL;
        blocks = p->size_bytes / BS;
        if (blocks > MAX_BLOCKS)
                return -EFBIG;
        if (blocks < 64)
                return -ENOSPC;
        inodes = p->inodes ? p->inodes : p->size_bytes / 16384;
        if (inodes > blocks || inodes > UINT32_MAX)
                return -EINVAL;
        if (p->label && strlen(p->label) > 16)
                return -EINVAL;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->now_ns = (int64_t)now_ns(CLOCK_REALTIME);
        w->scratch = p->writable && p->scratch;
        w->hash_bits = 10;
        w->buckets = calloc((size_t)1 << w->hash_bits, sizeof(*w->buckets));
        w->buf = malloc(CHUNK_BLOCKS * BS);
        w->pend = malloc(CHUNK_BLOCKS * BS);
        if (!w->buckets || !w->buf || !w->pend)
                return -ENOMEM;

        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
                return negative_errno();
        w->path = strdup(path);
        if (!w->path) {
                (void)unlink(path);
                return -ENOMEM;
        }
        if (ftruncate(fd, (off_t)(blocks * BS)) < 0)
                return negative_errno();

        r = format(w, TAKE_FD(fd), p, blocks, inodes);
        if (r >= 0)
                r = reserve_inodes(w);
        if (r >= 0)
                r = make_root(w);
        if (r >= 0 && p->writable)
                r = make_writable(w, !p->scratch);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(w);
        return 0;
}

int img_ext4_create_empty(const char *path, uint64_t size_bytes, const char *label, bool scratch)
{
        _cleanup_(img_ext4_freep) struct img_ext4 *w = NULL;
        const struct img_ext4_params p = {
                .size_bytes = size_bytes, .label = label, .writable = true, .scratch = scratch};
        int r;

        r = img_ext4_create(path, &p, &w);
        if (r < 0)
                return r;
        return img_ext4_finish(w);
}

int img_ext4_capacity(const struct img_ext4_usage *u, bool writable, uint64_t *ret_size,
                      uint64_t *ret_inodes)
{
        const uint64_t group = BS * 8;
        const uint64_t max = MAX_BLOCKS / 2;
        uint64_t data, blocks, inodes;

        if (!u || !ret_size || !ret_inodes)
                return -EINVAL;
        /* Every input is capped first, so the sums below cannot overflow. */
        if (u->entries > UINT32_MAX / 2 || u->data_bytes > max * BS || u->name_bytes > max * BS ||
            u->dirs > u->entries || u->files > u->entries || u->xattr_inodes > u->entries)
                return -EFBIG;
        data = u->data_bytes / BS + u->files;
        blocks = data + data / 256;
        blocks += 2 * u->dirs + (u->entries * 12 + u->name_bytes) / (BS - 12);
        blocks += u->xattr_inodes;
        blocks += blocks / 16 + 1024;

        inodes = u->entries + u->entries / 8 + 64;
        blocks += inodes * INODE_SIZE / BS;
        blocks = MAX(blocks, inodes);
        if (writable)
                blocks += (uint64_t)MAX(ext2fs_default_journal_size(blocks), 1024);
        if (blocks > group)
                blocks = (blocks + group - 1) / group * group;
        if (blocks > MAX_BLOCKS)
                return -EFBIG;
        *ret_size = blocks * BS;
        *ret_inodes = inodes;
        return 0;
}
