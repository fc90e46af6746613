/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the layer reader: a blob (tar, tar+gzip, tar+zstd)
 * from memory through libarchive into image entries, as a pull or a load
 * would see it. Every item must respect what the ext4 writer relies on:
 *  - paths are absolute, cleaned (no "", ".", ".." components, no "//",
 *    no trailing '/'), within IMG_PATH_MAX; hard link targets likewise;
 *  - a regular file's data stream yields exactly its size (or the sum of
 *    its sorted, non-overlapping data map inside size), or fails;
 *  - the scan of the same input agrees on whether it is acceptable.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/oci/layer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_path(const char *p)
{
        size_t n = strlen(p);

        assert(n >= 1 && n <= IMG_PATH_MAX && p[0] == '/');
        if (n == 1)
                return;
        assert(p[n - 1] != '/');
        assert(!strstr(p, "//"));
        assert(!strstr(p, "/./") && !strstr(p, "/../"));
        assert(strcmp(p + n - 2, "/.") != 0 && strcmp(p + n - 3, "/..") != 0);
}

static bool read_entry(const struct img_entry *en)
{
        static uint8_t buf[65536];
        uint64_t want = en->size, got = 0;

        if (en->n_data_map) {
                uint64_t end = 0;

                want = 0;
                for (size_t i = 0; i < en->n_data_map; i++) {
                        assert(en->data_map[i].offset >= end);
                        end = en->data_map[i].offset + en->data_map[i].length;
                        assert(end <= en->size);
                        want += en->data_map[i].length;
                }
        }
        while (got < want) {
                size_t n = (size_t)(want - got < sizeof(buf) ? want - got : sizeof(buf));
                ssize_t k = en->read(en->read_ctx, buf, n);

                if (k <= 0)
                        return false;
                assert((size_t)k <= n);
                got += (uint64_t)k;
        }
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct oci_limits lim = {
                .max_entries = 4096,
                .max_file_bytes = 8u << 20,
                .max_total_bytes = 32u << 20,
        };
        struct oci_layer_reader *r;
        struct oci_layer_meta *meta = NULL;
        struct oci_tar_item it;
        struct oci_err e = {0};
        char diff_id[OCI_DIGEST_SIZE];
        uint64_t tar_size;
        int k, ok = 1;

        if (oci_layer_open(-1, data, size, NULL, &lim, &r, &e) < 0)
                return 0;
        while ((k = oci_layer_next(r, &it, &e)) > 0) {
                check_path(it.entry.path);
                if (it.kind != OCI_TAR_ENTRY)
                        continue;
                if (it.entry.type == IMG_ENTRY_HARDLINK)
                        check_path(it.entry.target);
                if (it.entry.type == IMG_ENTRY_SYMLINK)
                        assert(it.entry.target && *it.entry.target &&
                               strlen(it.entry.target) <= IMG_SYMLINK_MAX);
                assert(it.entry.n_xattrs <= IMG_XATTRS_MAX);
                /* read every other file, skip the rest */
                if (it.entry.type == IMG_ENTRY_REG && (it.entry.size & 1) == 0 &&
                    !read_entry(&it.entry)) {
                        ok = 0;
                        break;
                }
        }
        if (k < 0)
                ok = 0;
        if (ok && oci_layer_finish(r, diff_id, &tar_size, &e) == 0)
                assert(oci_digest_valid(diff_id));
        oci_layer_free(r);

        /* the scan reads the same stream and must not trip either */
        if (oci_layer_scan(-1, data, size, NULL, &lim, &meta, &e) == 0) {
                for (size_t i = 0; i < meta->n_whiteouts; i++)
                        check_path(meta->whiteouts[i]);
                for (size_t i = 0; i < meta->n_opaques; i++)
                        check_path(meta->opaques[i]);
                assert(meta->usage.dirs <= meta->usage.entries);
                oci_layer_meta_free(meta);
        }
        return 0;
}
