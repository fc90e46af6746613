/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: the image index as five tables (migration 2):
 * image_refs (reference → manifest), image_manifests, image_configs,
 * image_layers and image_manifest_layers (a manifest's layers in order).
 * Writes are one BEGIN IMMEDIATE transaction each; manifests, configs and
 * layers are content-addressed, so recording one twice is a no-op (INSERT
 * OR IGNORE). Lists run in one read transaction. Forgetting a manifest
 * removes, in the same transaction, the config and layers that no other
 * manifest uses; the cache sweep (lib/images.c) then deletes the blobs the
 * index no longer names.
 */
#include "images.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/core/util.h"
#include "store-internal.h"

#define MAX_ROWS 100000

static int col_dup(sqlite3_stmt *stmt, int col, bool nullable, char **ret)
{
        const unsigned char *t;

        *ret = NULL;
        if (sqlite3_column_type(stmt, col) == SQLITE_NULL)
                return nullable ? 0 : -EBADMSG;
        t = sqlite3_column_text(stmt, col);
        if (!t)
                return -ENOMEM;
        *ret = strdup((const char *)t);
        return *ret ? 0 : -ENOMEM;
}

static int bind_text(sqlite3_stmt *stmt, int idx, const char *s)
{
        int rc = s ? sqlite3_bind_text(stmt, idx, s, -1, SQLITE_TRANSIENT)
                   : sqlite3_bind_null(stmt, idx);

        return rc == SQLITE_OK ? 0 : -ENOMEM;
}

/* Prepares sql, binds the strings (NULL binds NULL) and steps to the end. */
static int exec_bound(struct store *s, const char *sql, const char *what, size_t n,
                      const char *const *args)
{
        _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
        int r = store_prepare(s, sql, &stmt);

        for (size_t i = 0; r >= 0 && i < n; i++)
                r = bind_text(stmt, (int)i + 1, args[i]);
        if (r < 0)
                return r;
        return store_exec_stmt(s, stmt, what);
}

static int put_locked(struct store *s, const char *ref, const struct store_image_manifest *m)
{
        _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
        int r;

        r = exec_bound(s,
                       "INSERT OR IGNORE INTO image_configs (digest, os, architecture, created,"
                       " env, entrypoint, cmd, working_dir, user) VALUES (?,?,?,?,?,?,?,?,?)",
                       "record config", 9,
                       (const char *const[]){m->config_digest, m->os, m->architecture, m->created,
                                             m->env_json, m->entrypoint_json, m->cmd_json,
                                             m->working_dir, m->user});
        if (r < 0)
                return r;
        r = store_prepare(s,
                          "INSERT OR IGNORE INTO image_manifests (digest, media_type,"
                          " config_digest, size, layer_count, added_at) VALUES (?,?,?,?,?,?)",
                          &stmt);
        if (r < 0)
                return r;
        r = bind_text(stmt, 1, m->digest);
        if (r >= 0)
                r = bind_text(stmt, 2, m->media_type);
        if (r >= 0)
                r = bind_text(stmt, 3, m->config_digest);
        if (r >= 0 &&
            (sqlite3_bind_int64(stmt, 4, (int64_t)MIN(m->size, (uint64_t)INT64_MAX)) != SQLITE_OK ||
             sqlite3_bind_int64(stmt, 5, (int64_t)m->n_layers) != SQLITE_OK ||
             sqlite3_bind_int64(stmt, 6, store_now_ms()) != SQLITE_OK))
                r = -ENOMEM;
        if (r >= 0)
                r = store_exec_stmt(s, stmt, "record manifest");
        if (r < 0)
                return r;
        if (sqlite3_changes(s->db) > 0) {
                for (size_t i = 0; i < m->n_layers && r >= 0; i++) {
                        const struct store_image_layer *l = &m->layers[i];
                        _cleanup_stmt_ sqlite3_stmt *ls = NULL;

                        r = store_prepare(s,
                                          "INSERT OR IGNORE INTO image_layers (digest, media_type,"
                                          " size, diff_id) VALUES (?,?,?,?)",
                                          &ls);
                        if (r >= 0)
                                r = bind_text(ls, 1, l->digest);
                        if (r >= 0)
                                r = bind_text(ls, 2, l->media_type);
                        if (r >= 0 &&
                            sqlite3_bind_int64(ls, 3, (int64_t)MIN(l->size, (uint64_t)INT64_MAX)) !=
                                    SQLITE_OK)
                                r = -ENOMEM;
                        if (r >= 0)
                                r = bind_text(ls, 4, l->diff_id);
                        if (r >= 0)
                                r = store_exec_stmt(s, ls, "record layer");
                        sqlite3_finalize(TAKE_PTR(ls));
                        if (r >= 0)
                                r = store_prepare(s,
                                                  "INSERT INTO image_manifest_layers"
                                                  " (manifest_digest, position, layer_digest)"
                                                  " VALUES (?,?,?)",
                                                  &ls);
                        if (r >= 0)
                                r = bind_text(ls, 1, m->digest);
                        if (r >= 0 && sqlite3_bind_int64(ls, 2, (int64_t)i) != SQLITE_OK)
                                r = -ENOMEM;
                        if (r >= 0)
                                r = bind_text(ls, 3, l->digest);
                        if (r >= 0)
                                r = store_exec_stmt(s, ls, "record manifest layer");
                }
        }
        if (r < 0 || !ref)
                return r;
        sqlite3_finalize(TAKE_PTR(stmt));
        r = store_prepare(
                s,
                "INSERT INTO image_refs (ref, manifest_digest, updated_at) VALUES (?,?,?)"
                " ON CONFLICT(ref) DO UPDATE SET manifest_digest = excluded.manifest_digest,"
                " updated_at = excluded.updated_at",
                &stmt);
        if (r >= 0)
                r = bind_text(stmt, 1, ref);
        if (r >= 0)
                r = bind_text(stmt, 2, m->digest);
        if (r >= 0 && sqlite3_bind_int64(stmt, 3, store_now_ms()) != SQLITE_OK)
                r = -ENOMEM;
        if (r >= 0)
                r = store_exec_stmt(s, stmt, "set reference");
        return r;
}

int store_image_put(struct store *s, const char *ref, const struct store_image_manifest *m)
{
        int r = store_tx_begin(s);

        if (r < 0)
                return r;
        return store_tx_end(s, put_locked(s, ref, m));
}

int store_image_resolve(struct store *s, const char *ref, char **ret_digest)
{
        _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
        int r, rc;

        r = store_prepare(s, "SELECT manifest_digest FROM image_refs WHERE ref = ?", &stmt);
        if (r >= 0)
                r = bind_text(stmt, 1, ref);
        if (r < 0)
                return r;
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc, "resolve reference");
        return col_dup(stmt, 0, false, ret_digest);
}

void store_image_list_free(struct store_image *list, size_t n)
{
        if (!list)
                return;
        for (size_t i = 0; i < n; i++) {
                free(list[i].ref);
                free(list[i].manifest_digest);
                free(list[i].config_digest);
                free(list[i].created);
        }
        free(list);
}

int store_image_list(struct store *s, struct store_image **ret, size_t *ret_n)
{
        static const char sql[] =
                "SELECT r.ref, m.digest, m.config_digest, c.created, m.size, m.layer_count,"
                " COALESCE(r.updated_at, m.added_at)"
                " FROM image_manifests m"
                " LEFT JOIN image_refs r ON r.manifest_digest = m.digest"
                " LEFT JOIN image_configs c ON c.digest = m.config_digest"
                " ORDER BY r.ref IS NULL, COALESCE(r.updated_at, m.added_at) DESC, r.ref";
        _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
        struct store_image *list = NULL;
        size_t n = 0, cap = 0;
        int r, rc;

        r = store_prepare(s, sql, &stmt);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                struct store_image *img;

                if (n == cap) {
                        struct store_image *bigger;

                        if (cap >= MAX_ROWS) {
                                r = -E2BIG;
                                break;
                        }
                        cap = cap ? cap * 2 : 16;
                        bigger = realloc(list, cap * sizeof(*list));
                        if (!bigger) {
                                r = -ENOMEM;
                                break;
                        }
                        list = bigger;
                }
                img = &list[n];
                *img = (struct store_image){0};
                n++;
                r = col_dup(stmt, 0, true, &img->ref);
                if (r >= 0)
                        r = col_dup(stmt, 1, false, &img->manifest_digest);
                if (r >= 0)
                        r = col_dup(stmt, 2, false, &img->config_digest);
                if (r >= 0)
                        r = col_dup(stmt, 3, true, &img->created);
                if (r < 0)
                        break;
                img->size = (uint64_t)MAX(sqlite3_column_int64(stmt, 4), 0);
                img->n_layers = (uint32_t)MAX(sqlite3_column_int64(stmt, 5), 0);
                img->updated_at = sqlite3_column_int64(stmt, 6);
        }
        if (r >= 0 && rc != SQLITE_DONE)
                r = store_sql_error(s, rc, "list images");
        if (r < 0) {
                store_image_list_free(list, n);
                return r;
        }
        *ret = list;
        *ret_n = n;
        return 0;
}

/* The first column of every row of sql (bound to arg) as a NULL-terminated
 * array. */
static int column_list(struct store *s, const char *sql, const char *arg, const char *what,
                       char ***ret, size_t *ret_n)
{
        _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
        char **v = NULL;
        size_t n = 0;
        int r, rc;

        r = store_prepare(s, sql, &stmt);
        if (r >= 0)
                r = bind_text(stmt, 1, arg);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                char **bigger;

                if (n >= MAX_ROWS) {
                        r = -E2BIG;
                        break;
                }
                bigger = realloc(v, (n + 2) * sizeof(*v));
                if (!bigger) {
                        r = -ENOMEM;
                        break;
                }
                v = bigger;
                v[n + 1] = NULL;
                r = col_dup(stmt, 0, false, &v[n]);
                if (r < 0)
                        break;
                n++;
        }
        if (r >= 0 && rc != SQLITE_DONE)
                r = store_sql_error(s, rc, what);
        if (r >= 0 && !v) {
                v = calloc(1, sizeof(*v));
                if (!v)
                        r = -ENOMEM;
        }
        if (r < 0) {
                for (size_t i = 0; v && i < n; i++)
                        free(v[i]);
                free(v);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

int store_image_refs_of(struct store *s, const char *manifest_digest, char ***ret, size_t *ret_n)
{
        return column_list(s, "SELECT ref FROM image_refs WHERE manifest_digest = ? ORDER BY ref",
                           manifest_digest, "list references", ret, ret_n);
}

int store_image_blobs_of(struct store *s, const char *manifest_digest, char ***ret, size_t *ret_n)
{
        static const char sql[] =
                "SELECT config_digest FROM image_manifests WHERE digest = ?1"
                " UNION ALL SELECT * FROM (SELECT layer_digest FROM image_manifest_layers"
                " WHERE manifest_digest = ?1 ORDER BY position)";
        char **v;
        size_t n;
        int r = column_list(s, sql, manifest_digest, "list blobs", &v, &n);

        if (r < 0)
                return r;
        if (n == 0) {
                free(v);
                return -ENOENT;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

int store_image_untag(struct store *s, const char *ref)
{
        int r = store_tx_begin(s);

        if (r < 0)
                return r;
        r = exec_bound(s, "DELETE FROM image_refs WHERE ref = ?", "remove reference", 1,
                       (const char *const[]){ref});
        if (r >= 0 && sqlite3_changes(s->db) == 0)
                r = -ENOENT;
        return store_tx_end(s, r);
}

static int forget_locked(struct store *s, const char *digest)
{
        _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
        int r, rc;

        r = store_prepare(s, "SELECT 1 FROM image_refs WHERE manifest_digest = ? LIMIT 1", &stmt);
        if (r >= 0)
                r = bind_text(stmt, 1, digest);
        if (r < 0)
                return r;
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW)
                return -EBUSY;
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, "check references");
        r = exec_bound(s, "DELETE FROM image_manifests WHERE digest = ?", "forget manifest", 1,
                       (const char *const[]){digest});
        if (r >= 0 && sqlite3_changes(s->db) == 0)
                return -ENOENT;
        if (r >= 0)
                r = exec_bound(s,
                               "DELETE FROM image_layers WHERE digest NOT IN"
                               " (SELECT layer_digest FROM image_manifest_layers)",
                               "forget layers", 0, NULL);
        if (r >= 0)
                r = exec_bound(s,
                               "DELETE FROM image_configs WHERE digest NOT IN"
                               " (SELECT config_digest FROM image_manifests)",
                               "forget configs", 0, NULL);
        return r;
}

int store_image_forget(struct store *s, const char *manifest_digest)
{
        int r = store_tx_begin(s);

        if (r < 0)
                return r;
        return store_tx_end(s, forget_locked(s, manifest_digest));
}
