/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: the schema as a list of migrations. Entry i takes a
 * database from PRAGMA user_version i to i + 1; store_open() applies the
 * missing ones in order, each in a transaction of its own that also bumps
 * user_version, so a crash mid-way leaves the previous version intact.
 *
 * To change the schema, APPEND one entry at the end of store_migrations[]
 * (the next version number is its position + 1). Never edit, reorder or
 * remove an entry that shipped: databases in the field have run it.
 * docs/supervisor.md and docs/store.md describe the tables.
 */
#include "store-internal.h"

#include "lib/core/macro.h"

const char *const store_migrations[] = {
        /* 1: sandboxes, their runs and labels (docs/supervisor.md) */
        "CREATE TABLE sandboxes (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
        "    image TEXT NOT NULL, config TEXT NOT NULL, status TEXT NOT NULL,"
        "    ephemeral INTEGER NOT NULL DEFAULT 0,"
        "    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
        "CREATE TABLE runs (id INTEGER PRIMARY KEY,"
        "    sandbox_id INTEGER NOT NULL REFERENCES sandboxes(id) ON DELETE CASCADE,"
        "    supervisor_pid INTEGER, qemu_pid INTEGER,"
        "    started_at INTEGER NOT NULL, ended_at INTEGER, reason TEXT);"
        "CREATE INDEX runs_by_sandbox ON runs (sandbox_id, id);"
        "CREATE TABLE labels ("
        "    sandbox_id INTEGER NOT NULL REFERENCES sandboxes(id) ON DELETE CASCADE,"
        "    key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (sandbox_id, key));",
        /* 2: the image index (docs/images.md, lib/store/images.c) */
        "CREATE TABLE image_configs (digest TEXT PRIMARY KEY, os TEXT, architecture TEXT,"
        "    created TEXT, env TEXT, entrypoint TEXT, cmd TEXT, working_dir TEXT, user TEXT);"
        "CREATE TABLE image_manifests (digest TEXT PRIMARY KEY, media_type TEXT NOT NULL,"
        "    config_digest TEXT NOT NULL REFERENCES image_configs(digest),"
        "    size INTEGER NOT NULL, layer_count INTEGER NOT NULL, added_at INTEGER NOT NULL);"
        "CREATE TABLE image_layers (digest TEXT PRIMARY KEY, media_type TEXT NOT NULL,"
        "    size INTEGER NOT NULL, diff_id TEXT);"
        "CREATE TABLE image_manifest_layers ("
        "    manifest_digest TEXT NOT NULL REFERENCES image_manifests(digest) ON DELETE CASCADE,"
        "    position INTEGER NOT NULL,"
        "    layer_digest TEXT NOT NULL REFERENCES image_layers(digest),"
        "    PRIMARY KEY (manifest_digest, position));"
        "CREATE INDEX image_manifest_layers_by_layer ON image_manifest_layers (layer_digest);"
        "CREATE TABLE image_refs (ref TEXT PRIMARY KEY,"
        "    manifest_digest TEXT NOT NULL REFERENCES image_manifests(digest),"
        "    updated_at INTEGER NOT NULL);"
        "CREATE INDEX image_refs_by_manifest ON image_refs (manifest_digest);",
        /* append migration 3 here */
};

const size_t store_n_migrations = ARRAY_SIZE(store_migrations);
