/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: a sandbox is a record in the store, a directory of
 * disks and logs, and, while it runs, a supervisor process that owns its VM
 * (docs/supervisor.md). msb_sandbox_create() makes the first two, then
 * starts the supervisor and connects to its agent relay; every step is
 * undone if a later one fails, so a failed create leaves nothing.
 *
 * The name is claimed by inserting the record (the store's UNIQUE
 * constraint makes concurrent creates of one name safe); the directory is
 * ours from then on. Images become read-only disks here: the built-in base
 * image as is, a host directory through the ext4 writer. Each sandbox gets a
 * sparse upper disk for its writable layer.
 *
 * A handle is a connection to the relay. Closing it leaves a persistent
 * sandbox running; an ephemeral one (msb run) is stopped and removed, and
 * its supervisor also watches this process, so even a kill -9 of ours
 * removes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chan.h"
#include "config.h"
#include "control.h"
#include "error.h"
#include "internal.h"
#include "image-defaults.h"
#include "launch.h"
#include "paths.h"
#include "state.h"
#include "lib/core/json.h"
#include "lib/core/log.h"
#include "lib/core/util.h"
#include "lib/image/dirsrc.h"
#include "lib/image/ext4.h"

/* How long a start may take in all: the supervisor enforces the boot
 * timeout itself (default up to 90 s under TCG); this covers the rest. */
#define LAUNCH_MARGIN_MS  (30 * 1000)
#define LAUNCH_DEFAULT_MS (90 * 1000)
#define RELAY_HELLO_MS    (10 * 1000)

struct msb_sandbox {
        char *name;
        struct sandbox_paths paths;
        struct chan *chan;
        struct proto_ready ready;
        struct launch_result boot;
        struct image_defaults img;
        int parent_fd; /* ephemeral: the supervisor stops when this closes */
        bool ephemeral;
};

/* What the sandbox's image resolved to. */
struct resolved_image {
        char *disk;   /* the read-only root disk */
        char *record; /* what the store records: the pinned reference for OCI images */
        struct image_defaults defaults;
};

static void resolved_image_clear(struct resolved_image *ri)
{
        free(ri->disk);
        free(ri->record);
        image_defaults_clear(&ri->defaults);
        *ri = (struct resolved_image){0};
}

const char *msb_version(void)
{
        return MSB_VERSION;
}

const char *msb_sandbox_name(const msb_sandbox *sb)
{
        return sb->name;
}

struct chan *sandbox_chan(msb_sandbox *sb)
{
        return sb->chan;
}

const struct image_defaults *sandbox_image_defaults(const msb_sandbox *sb)
{
        return &sb->img;
}

int msb_sandbox_boot_info(const msb_sandbox *sb, msb_boot_info *ret)
{
        *ret = (msb_boot_info){
                .accel = sb->boot.accel,
                .accel_notice = sb->boot.notice,
                .start_ns = sb->boot.start_ns,
                .guest_boot_ns = sb->ready.boot_time_ns,
                .guest_ready_ns = sb->ready.ready_time_ns,
        };
        return 0;
}

int sandbox_fail_channel(msb_sandbox *sb, int r)
{
        if (r == -EBADMSG)
                return error_set(MSB_ERR_PROTOCOL, r,
                                 "the guest agent of sandbox '%s' sent a malformed frame",
                                 sb->name);
        if (r == -EPIPE)
                return error_set(MSB_ERR_VM_FAILED, r,
                                 "sandbox '%s' stopped while in use (see 'msb logs --source "
                                 "system %s')",
                                 sb->name, sb->name);
        return error_set(MSB_ERR_SYSTEM, r, "agent channel of sandbox '%s': %s", sb->name,
                         strerror(-r));
}

static int generate_name(char **ret)
{
        uint8_t rnd[4];

        if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
                return negative_errno();
        *ret = strdup_printf("sb-%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
        return *ret ? 0 : -ENOMEM;
}

static void sandbox_free(msb_sandbox *sb)
{
        if (!sb)
                return;
        chan_free(sb->chan);
        safe_close(sb->parent_fd);
        image_defaults_clear(&sb->img);
        sandbox_paths_clear(&sb->paths);
        free(sb->name);
        free(sb);
}
DEFINE_FREEP(msb_sandbox, sandbox_free)

static msb_sandbox *sandbox_alloc(const char *name)
{
        msb_sandbox *sb = calloc(1, sizeof(*sb));

        if (!sb)
                return NULL;
        sb->parent_fd = -1;
        sb->name = strdup(name);
        if (!sb->name) {
                free(sb);
                return NULL;
        }
        return sb;
}

/* Connects to the running sandbox's relay. */
static int sandbox_connect(msb_sandbox *sb)
{
        int fd, r;

        r = state_connect(sb->paths.run_dir, "agent.sock", &fd);
        if (r < 0)
                return error_set(MSB_ERR_NOT_RUNNING, r,
                                 "cannot reach sandbox '%s' (%s): is it running?", sb->name,
                                 strerror(-r));
        r = chan_new_relay(fd, RELAY_HELLO_MS, &sb->chan, &sb->ready);
        if (r < 0)
                return error_set(r == -EBADMSG ? MSB_ERR_PROTOCOL : MSB_ERR_NOT_RUNNING, r,
                                 "the relay of sandbox '%s' did not greet properly: %s", sb->name,
                                 strerror(-r));
        return 0;
}

/* An image reference that names a host directory rather than a registry
 * image: a path ("./rootfs", "/srv/root", "."). */
static bool image_is_path(const char *image)
{
        return image[0] == '/' || image[0] == '.' || startswith(image, "~/");
}

/* Resolves the image to its read-only root disk. OCI images are pulled
 * (per the pull options) into the shared cache; a host directory is
 * checked, and built into dir/rootfs.ext4 only when build is set (create
 * validates first, builds once the name is claimed). */
static int resolve_image(const msb_sandbox_config *cfg, const char *dir, bool build,
                         struct resolved_image *ret)
{
        _cleanup_free_ char *bad_path = NULL;
        struct img_dir_opts opts = {.map_owner_to_root = true};
        struct resolved_image ri = {0};
        msb_image_config *icfg = NULL;
        const char *image = cfg->image;
        struct stat st;
        int r;

        if (streq(image, "base")) {
                r = images_resolve_builtin_base(&ri.disk, &icfg);
                if (r < 0)
                        return r; /* the error is set */
                ri.record = strdup(icfg->pinned_ref ? icfg->pinned_ref : BUILTIN_BASE_REF);
                msb_image_config_free(icfg);
                r = ri.record ? image_defaults_shell(&ri.defaults) : -ENOMEM;
        } else if (!image_is_path(image)) {
                r = msb_image_resolve(image, cfg->pull, &ri.disk, &icfg);
                if (r < 0)
                        return r; /* the error is set */
                r = image_defaults_from_oci(icfg, &ri.defaults);
                if (r >= 0) {
                        ri.record = strdup(icfg->pinned_ref ? icfg->pinned_ref : image);
                        r = ri.record ? 0 : -ENOMEM;
                }
                msb_image_config_free(icfg);
        } else {
                if (stat(image, &st) < 0)
                        return error_set(MSB_ERR_IMAGE_NOT_FOUND, negative_errno(), "image %s: %s",
                                         image, strerror(errno));
                r = img_dir_check_rootfs(image);
                if (r < 0)
                        return error_set(MSB_ERR_IMAGE_INVALID, r,
                                         "%s is not a root filesystem (%s)", image,
                                         r == -ENOTDIR ? "not a directory"
                                                       : "no /etc and no executable in /bin, "
                                                         "/usr/bin or /sbin");
                ri.disk = strdup_printf("%s/rootfs.ext4", dir);
                if (!ri.disk)
                        return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
                if (build) {
                        r = img_ext4_from_dir(image, ri.disk, &opts, &bad_path);
                        if (r < 0) {
                                resolved_image_clear(&ri);
                                if (bad_path)
                                        return error_set(MSB_ERR_IMAGE_INVALID, r,
                                                         "cannot read %s: %s", bad_path,
                                                         strerror(-r));
                                return error_set(MSB_ERR_IMAGE_INVALID, r,
                                                 "cannot build an image from %s: %s", image,
                                                 strerror(-r));
                        }
                }
                r = image_defaults_shell(&ri.defaults);
        }
        if (r >= 0 && !ri.record) {
                ri.record = strdup(image);
                r = ri.record ? 0 : -ENOMEM;
        }
        if (r < 0) {
                resolved_image_clear(&ri);
                return error_set(MSB_ERR_SYSTEM, r, "out of memory");
        }
        *ret = ri;
        return 0;
}

/* The "network" object of config.json (docs/supervisor.md). */
static void network_write(struct json_writer *w, const struct sandbox_net *n)
{
        json_begin_object(w);
        json_kv_bool(w, "enabled", n->enabled);
        json_kv_string(w, "profile", n->profile);
        json_kv_string(w, "default_egress",
                       n->default_egress == MSB_NET_ALLOW  ? "allow"
                       : n->default_egress == MSB_NET_DENY ? "deny"
                                                           : NULL);
        json_kv_strv(w, "rules", n->rules, n->n_rules);
        json_kv_strv(w, "dns", n->dns, n->n_dns);
        json_kv_strv(w, "ports", n->ports, n->n_ports);
        json_kv_uint(w, "max_connections", n->max_connections);
        json_end_object(w);
}

/* config.json (docs/supervisor.md), also stored in the record. */
static char *config_json(const msb_sandbox_config *cfg, const char *name,
                         const struct resolved_image *ri, const char *upper)
{
        struct json_writer w;

        json_writer_init(&w);
        json_begin_object(&w);
        json_kv_int(&w, "version", 1);
        json_kv_string(&w, "name", name);
        json_kv_string(&w, "image", cfg->image);
        json_kv_string(&w, "base_disk", ri->disk);
        json_kv_string(&w, "upper_disk", upper);
        json_kv_uint(&w, "root_disk_bytes", cfg->root_disk_bytes);
        json_kv_uint(&w, "memory_mib", cfg->memory_mib);
        json_kv_uint(&w, "cpus", cfg->cpus);
        json_kv_string(&w, "accel", cfg->accel ? cfg->accel : getenv("MSB_ACCEL"));
        json_kv_uint(&w, "boot_timeout_ms", cfg->boot_timeout_ms);
        json_kv_uint(&w, "idle_timeout_ms", cfg->idle_timeout_ms);
        json_kv_uint(&w, "max_duration_ms", cfg->max_duration_ms);
        json_kv_bool(&w, "ephemeral", cfg->ephemeral);
        json_key(&w, "image_config");
        image_defaults_write(&w, &ri->defaults);
        json_key(&w, "network");
        network_write(&w, &cfg->net);
        json_key(&w, "labels");
        json_begin_object(&w);
        for (size_t i = 0; i < cfg->n_labels; i++) {
                const char *eq = strchr(cfg->labels[i], '=');
                _cleanup_free_ char *key = strndup(cfg->labels[i], (size_t)(eq - cfg->labels[i]));
                if (!key) {
                        json_writer_free(&w);
                        return NULL;
                }
                json_kv_string(&w, key, eq + 1);
        }
        json_end_object(&w);
        json_end_object(&w);
        return json_writer_steal(&w);
}

/* Turns "KEY=VALUE" strings into store labels pointing into them. */
static struct store_label *labels_view(char **labels, size_t n)
{
        struct store_label *v = calloc(n ? n : 1, sizeof(*v));

        if (!v)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                char *eq = strchr(labels[i], '=');
                v[i].key = strndup(labels[i], (size_t)(eq - labels[i]));
                v[i].value = eq + 1;
                if (!v[i].key) {
                        for (size_t j = 0; j < i; j++)
                                free(v[j].key);
                        free(v);
                        return NULL;
                }
        }
        return v;
}

static void labels_view_free(struct store_label *v, size_t n)
{
        if (!v)
                return;
        for (size_t i = 0; i < n; i++)
                free(v[i].key);
        free(v);
}

/* Removes what a failed create made: files and record. */
static void undo_create(struct store *st, const msb_sandbox *sb)
{
        rm_rf(sb->paths.run_dir);
        rm_rf(sb->paths.dir);
        store_sandbox_delete(st, sb->name);
}

/* The part of create that runs with the name claimed and op.lock held. */
static int create_claimed(msb_sandbox *sb, struct store *st, const msb_sandbox_config *cfg,
                          const struct resolved_image *planned, const char *upper)
{
        _cleanup_free_ char *config = NULL, *config_path = NULL;
        struct resolved_image ri = {0};
        uint64_t wait_ms;
        int r;

        if (image_is_path(cfg->image)) {
                r = resolve_image(cfg, sb->paths.dir, true, &ri);
                if (r < 0)
                        return r;
                resolved_image_clear(&ri);
        }
        /* an ephemeral sandbox's disk is deleted, never recovered: no journal */
        r = img_ext4_create_empty(upper, cfg->root_disk_bytes, "msb-upper", cfg->ephemeral);
        if (r < 0)
                return error_set(MSB_ERR_SYSTEM, r, "cannot create the root disk %s: %s", upper,
                                 strerror(-r));
        config = config_json(cfg, sb->name, planned, upper);
        config_path = strdup_printf("%s/config.json", sb->paths.dir);
        if (!config || !config_path)
                return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        r = write_file(config_path, config, 0600);
        if (r < 0)
                return error_set(MSB_ERR_SYSTEM, r, "cannot write %s: %s", config_path,
                                 strerror(-r));
        store_sandbox_set_status(st, sb->name, "starting");
        wait_ms = (cfg->boot_timeout_ms ? cfg->boot_timeout_ms : LAUNCH_DEFAULT_MS) +
                  LAUNCH_MARGIN_MS;
        r = launch_supervisor(&sb->paths, sb->name, cfg->ephemeral, cfg->cancel_fd, wait_ms,
                              &sb->parent_fd, &sb->boot);
        if (r < 0)
                return r;
        return sandbox_connect(sb);
}

int msb_sandbox_create(const msb_sandbox_config *cfg, msb_sandbox **ret)
{
        _cleanup_(sandbox_freep) msb_sandbox *sb = NULL;
        _cleanup_free_ char *name = NULL, *upper = NULL, *config = NULL;
        _cleanup_(resolved_image_clear) struct resolved_image ri = {0};
        _cleanup_close_ int op_fd = -1;
        struct store_sandbox rec = {0};
        struct store *st = NULL;
        uint64_t t0 = now_ns(CLOCK_MONOTONIC);
        int r;

        if (cfg->name) {
                name = strdup(cfg->name);
        } else if (generate_name(&name) < 0) {
                name = NULL;
        }
        if (!name)
                return error_set(MSB_ERR_SYSTEM, -ENOMEM, "cannot make a sandbox name");
        if (cfg->replace) {
                r = msb_sandbox_remove(name, 1);
                if (r < 0 && msb_errkind() != MSB_ERR_NOT_FOUND)
                        return r;
        }
        sb = sandbox_alloc(name);
        if (!sb)
                return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        sb->ephemeral = cfg->ephemeral;
        r = sandbox_paths_init(name, &sb->paths);
        if (r < 0)
                return r;
        /* Resolve (pull) the image before claiming anything. */
        r = resolve_image(cfg, sb->paths.dir, false, &ri);
        if (r < 0)
                return r;
        upper = strdup_printf("%s/upper.ext4", sb->paths.dir);
        config = upper ? config_json(cfg, name, &ri, upper) : NULL;
        if (!config)
                return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");

        r = state_open(&st);
        if (r < 0)
                return r;
        rec = (struct store_sandbox){
                .name = name,
                .image = ri.record,
                .config = config,
                .status = "created",
                .ephemeral = cfg->ephemeral,
                .labels = labels_view(cfg->labels, cfg->n_labels),
                .n_labels = cfg->n_labels,
        };
        r = rec.labels ? store_sandbox_insert(st, &rec, NULL) : -ENOMEM;
        labels_view_free(rec.labels, rec.n_labels);
        if (r == -EEXIST) {
                store_close(st);
                return error_set(MSB_ERR_CONFLICT, r,
                                 "a sandbox named '%s' already exists (remove it with 'msb rm "
                                 "%s', or use --replace)",
                                 name, name);
        }
        if (r < 0) {
                store_close(st);
                return error_set(MSB_ERR_SYSTEM, r, "cannot record sandbox '%s': %s", name,
                                 strerror(-r));
        }
        /* The name is ours: anything left at our paths is stale. */
        rm_rf(sb->paths.dir);
        rm_rf(sb->paths.run_dir);
        r = mkdir_p(sb->paths.dir, 0700);
        if (r >= 0) {
                _cleanup_free_ char *logs = strdup_printf("%s/logs", sb->paths.dir);
                r = logs ? mkdir_p(logs, 0700) : -ENOMEM;
        }
        if (r >= 0)
                r = state_op_lock(sb->paths.dir, &op_fd);
        if (r < 0)
                r = error_set(MSB_ERR_SYSTEM, r, "cannot create %s: %s", sb->paths.dir,
                              strerror(-r));
        else
                r = create_claimed(sb, st, cfg, &ri, upper);
        if (r < 0) {
                msb_error_kind kind = msb_errkind();
                char msg[512];

                snprintf(msg, sizeof(msg), "%s", msb_errmsg());
                safe_close(sb->parent_fd);
                sb->parent_fd = -1;
                /* a supervisor that did start must be gone before we delete */
                if (state_supervisor_alive(sb->paths.dir))
                        sandbox_stop_locked(st, name, &sb->paths, 0);
                undo_create(st, sb);
                store_close(st);
                return error_set(kind, r, "%s", msg);
        }
        store_close(st);
        sb->img = ri.defaults;
        ri.defaults = (struct image_defaults){0};
        if (sb->boot.start_ns == 0)
                sb->boot.start_ns = now_ns(CLOCK_MONOTONIC) - t0;
        log_info("sandbox %s ready in %llu ms (%s; guest: agent started at %llu ms, agent "
                 "ready at %llu ms)",
                 sb->name, (unsigned long long)((now_ns(CLOCK_MONOTONIC) - t0) / 1000000),
                 sb->boot.accel, (unsigned long long)(sb->ready.boot_time_ns / 1000000),
                 (unsigned long long)(sb->ready.ready_time_ns / 1000000));
        *ret = TAKE_PTR(sb);
        return 0;
}

/* The image defaults recorded in a sandbox's config (none if unreadable). */
static int read_image_defaults(const char *config, struct image_defaults *ret)
{
        const struct json_value *root;
        struct json_doc *doc;
        int r;

        *ret = (struct image_defaults){0};
        if (json_parse(config, strlen(config), &doc, &root) < 0)
                return 0;
        r = image_defaults_read(json_get(root, "image_config"), ret);
        json_doc_free(doc);
        return r;
}

int msb_sandbox_open(const char *name, msb_sandbox **ret)
{
        _cleanup_(sandbox_freep) msb_sandbox *sb = NULL;
        struct store_sandbox rec;
        struct store *st;
        int r;

        r = state_open_get(name, &st, &rec);
        if (r < 0)
                return r;
        store_close(st);
        if (r < 0)
                return r;
        if (!streq(rec.status, "running")) {
                r = error_set(MSB_ERR_NOT_RUNNING, -ESRCH,
                              "sandbox '%s' is not running (%s); start it with 'msb start %s'",
                              name, rec.status, name);
                store_sandbox_clear(&rec);
                return r;
        }
        sb = sandbox_alloc(name);
        if (!sb) {
                store_sandbox_clear(&rec);
                return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        }
        r = read_image_defaults(rec.config, &sb->img);
        store_sandbox_clear(&rec);
        if (r < 0)
                return error_set(MSB_ERR_SYSTEM, r, "out of memory");
        r = sandbox_paths_init(name, &sb->paths);
        if (r < 0)
                return r;
        r = sandbox_connect(sb);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(sb);
        return 0;
}

void msb_sandbox_destroy(msb_sandbox *sb)
{
        if (!sb)
                return;
        chan_free(sb->chan);
        sb->chan = NULL;
        msb_sandbox_remove(sb->name, 1);
        sandbox_free(sb);
}

void msb_sandbox_close(msb_sandbox *sb)
{
        if (sb && sb->ephemeral) {
                msb_sandbox_destroy(sb);
                return;
        }
        sandbox_free(sb);
}

int msb_sandbox_ping(msb_sandbox *sb, uint64_t *ret_ns)
{
        struct cbor_buf b;
        uint64_t t0 = now_ns(CLOCK_MONOTONIC);
        uint32_t id = chan_session_open(sb->chan);
        int r;

        if (id == 0)
                return error_set(MSB_ERR_SYSTEM, -ENOMEM, "too many sessions");
        cbor_buf_init(&b, 0);
        r = proto_encode_empty(&b, id, FRAME_SESSION_START, PROTO_PING);
        if (r >= 0)
                r = chan_send(sb->chan, &b);
        cbor_buf_free(&b);
        while (r >= 0) {
                struct chan_msg *m = chan_pop(sb->chan, id);
                if (m) {
                        bool pong = m->msg.type == PROTO_PONG;
                        free(m);
                        chan_session_close(sb->chan, id);
                        if (!pong)
                                return error_set(MSB_ERR_PROTOCOL, -EBADMSG,
                                                 "the agent did not answer ping with pong");
                        if (ret_ns)
                                *ret_ns = now_ns(CLOCK_MONOTONIC) - t0;
                        return 0;
                }
                r = chan_pump(sb->chan, -1);
                if (r == -EINTR)
                        r = 0;
        }
        chan_session_close(sb->chan, id);
        return sandbox_fail_channel(sb, r);
}
