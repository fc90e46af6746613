/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: the credential files are small JSON documents read
 * whole and written whole (a temporary file with mode 0600, then rename), so
 * a concurrent reader sees the old or the new file, never half of one. The
 * challenge parser walks the header once: a scheme token, then
 * comma-separated key=value pairs whose values may be quoted strings with
 * backslash escapes.
 */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "credhelper.h"
#include "lib/core/json.h"
#include "lib/core/util.h"

void oci_cred_clear(struct oci_cred *c)
{
        if (c->password)
                explicit_bzero(c->password, strlen(c->password));
        free(c->username);
        free(c->password);
        *c = (struct oci_cred){0};
}

char *oci_auth_basic_header(const struct oci_cred *c)
{
        _cleanup_free_ char *pair = strdup_printf("%s:%s", c->username, c->password), *b = NULL;
        char *out;

        if (!pair)
                return NULL;
        b = base64_encode(pair, strlen(pair));
        explicit_bzero(pair, strlen(pair));
        if (!b)
                return NULL;
        out = strdup_printf("Basic %s", b);
        explicit_bzero(b, strlen(b));
        return out;
}

static bool is_docker_hub(const char *host)
{
        return streq(host, "docker.io") || streq(host, "index.docker.io") ||
               streq(host, "registry-1.docker.io") || streq(host, "registry.hub.docker.com");
}

/* Whether a config key names registry: "https://index.docker.io/v1/" names
 * docker.io, "http://host:5000/v2/" and "host:5000" name host:5000. */
static bool key_names(const char *key, const char *registry)
{
        const char *p = startswith(key, "https://");
        char host[256];
        size_t n;

        if (!p)
                p = startswith(key, "http://");
        if (!p)
                p = key;
        n = strcspn(p, "/");
        if (n >= sizeof(host))
                return false;
        memcpy(host, p, n);
        host[n] = '\0';
        return streq(host, registry) || (is_docker_hub(host) && is_docker_hub(registry));
}

/* A credentials file read whole. Its text is wiped when done with. */
struct auth_file {
        char *text;
        size_t len;
        struct json_doc *doc;
        const struct json_value *root;  /* NULL: missing or not JSON */
        const struct json_value *auths; /* its "auths" object, or NULL */
};

static void auth_file_done(struct auth_file *f)
{
        if (f->text)
                explicit_bzero(f->text, f->len);
        free(f->text);
        json_doc_free(f->doc);
}

/* 0 (a missing file reads as empty), or a read error. */
static int auth_file_read(const char *path, struct auth_file *f)
{
        int r = read_file(path, OCI_AUTH_FILE_MAX, &f->text, &f->len);

        if (r < 0)
                return r == -ENOENT ? 0 : r;
        if (json_parse(f->text, f->len, &f->doc, &f->root) < 0)
                return 0;
        f->auths = json_get(f->root, "auths");
        if (f->auths && f->auths->type != JSON_OBJECT)
                f->auths = NULL;
        return 0;
}

/* The credentials of registry's "auths" entry, inline in the file. */
static int from_auths(const struct json_value *auths, const char *registry, struct oci_cred *ret)
{
        if (!auths)
                return -ENOENT;
        for (size_t i = 0; i < auths->c.count; i++) {
                const char *b64 = json_string(json_get(&auths->c.items[i], "auth"), NULL);
                _cleanup_free_ uint8_t *raw = NULL;
                char *pair, *colon;
                size_t plen;

                if (!key_names(auths->c.keys[i], registry) || !b64 ||
                    base64_decode(b64, &raw, &plen) < 0)
                        continue;
                pair = (char *)raw;
                colon = strchr(pair, ':');
                if (strlen(pair) != plen || !colon) {
                        explicit_bzero(raw, plen);
                        continue;
                }
                *colon = '\0';
                ret->username = strdup(pair);
                ret->password = strdup(colon + 1);
                explicit_bzero(raw, plen);
                if (!ret->username || !ret->password) {
                        oci_cred_clear(ret);
                        return -ENOMEM;
                }
                return 0;
        }
        return -ENOENT;
}

/* The credential helper a Docker config names for registry: its
 * "credHelpers" entry, else its "credsStore"; NULL for none. */
static const char *helper_for(const struct json_value *root, const char *registry)
{
        const struct json_value *helpers = json_get(root, "credHelpers");
        const char *name;

        if (helpers && helpers->type == JSON_OBJECT)
                for (size_t i = 0; i < helpers->c.count; i++) {
                        name = json_string(&helpers->c.items[i], NULL);
                        if (name && *name && key_names(helpers->c.keys[i], registry))
                                return name;
                }
        name = json_string(json_get(root, "credsStore"), NULL);
        return name && *name ? name : NULL;
}

/* Looks registry up in a config file: through the credential helper it
 * names (Docker's files only), then in its "auths". A helper that fails is
 * no error (the file's own entries may still do): it is noted in note. */
static int lookup_file(const char *path, const char *registry, bool helpers, struct oci_cred *ret,
                       char *note, size_t note_size)
{
        _cleanup_(auth_file_done) struct auth_file f = {0};
        const char *helper;
        int r;

        if (auth_file_read(path, &f) < 0 || !f.root)
                return -ENOENT;
        helper = helpers ? helper_for(f.root, registry) : NULL;
        if (helper) {
                /* Docker asks for Docker Hub by its v1 URL, so helpers keep it so. */
                const char *server =
                        is_docker_hub(registry) ? "https://index.docker.io/v1/" : registry;
                char why[256];

                r = oci_credhelper_get(helper, server, OCI_CREDHELPER_TIMEOUT_MS, ret, why,
                                       sizeof(why));
                if (r == 0 || r == -ENOMEM)
                        return r;
                if (r != -ENOENT)
                        snprintf(note, note_size, "%s (named by %s)", why, path);
        }
        return from_auths(f.auths, registry, ret);
}

static char *docker_config_path(void)
{
        const char *dir = getenv("DOCKER_CONFIG"), *home = getenv("HOME");

        if (dir && *dir)
                return strdup_printf("%s/config.json", dir);
        if (!home || !*home) {
                struct passwd *pw = getpwuid(getuid());

                home = pw ? pw->pw_dir : NULL;
        }
        return home ? strdup_printf("%s/.docker/config.json", home) : NULL;
}

int oci_auth_lookup(const char *home, const char *registry, struct oci_cred *ret, char *note,
                    size_t note_size)
{
        _cleanup_free_ char *ours = strdup_printf("%s/" OCI_AUTH_FILE, home);
        _cleanup_free_ char *docker = docker_config_path();
        struct oci_cred c = {0};
        int r;

        if (!ours)
                return -ENOMEM;
        snprintf(note, note_size, "%s", "");
        r = lookup_file(ours, registry, false, &c, note, note_size);
        if (r == -ENOENT && docker)
                r = lookup_file(docker, registry, true, &c, note, note_size);
        if (r < 0)
                return r;
        *ret = c;
        return 0;
}

/* Rewrites $home/auth.json with registry set to b64 (or removed when b64
 * is NULL). -ENOENT when removing an absent entry. */
static int rewrite(const char *home, const char *registry, const char *b64)
{
        _cleanup_free_ char *path = strdup_printf("%s/" OCI_AUTH_FILE, home), *tmp = NULL,
                            *out = NULL;
        _cleanup_(auth_file_done) struct auth_file f = {0};
        const struct json_value *auths;
        struct json_writer w;
        _cleanup_close_ int fd = -1;
        bool found = false;
        int r;

        if (!path)
                return -ENOMEM;
        r = auth_file_read(path, &f);
        if (r < 0)
                return r;
        auths = f.auths;

        json_writer_init(&w);
        json_begin_object(&w);
        json_key(&w, "auths");
        json_begin_object(&w);
        for (size_t i = 0; auths && i < auths->c.count; i++) {
                const char *v = json_string(json_get(&auths->c.items[i], "auth"), NULL);

                if (streq(auths->c.keys[i], registry)) {
                        found = true;
                        continue;
                }
                if (!v)
                        continue;
                json_key(&w, auths->c.keys[i]);
                json_begin_object(&w);
                json_kv_string(&w, "auth", v);
                json_end_object(&w);
        }
        if (b64) {
                json_key(&w, registry);
                json_begin_object(&w);
                json_kv_string(&w, "auth", b64);
                json_end_object(&w);
        }
        json_end_object(&w);
        json_end_object(&w);
        out = json_writer_steal(&w);
        if (!out)
                return -ENOMEM;
        if (!b64 && !found)
                return -ENOENT;

        r = mkdir_p(home, 0700);
        if (r < 0)
                return r;
        tmp = strdup_printf("%s/." OCI_AUTH_FILE ".%d", home, (int)getpid());
        if (!tmp)
                return -ENOMEM;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return negative_errno();
        r = write_all(fd, out, strlen(out));
        if (r >= 0 && fchmod(fd, 0600) < 0)
                r = negative_errno();
        if (r >= 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r >= 0 && rename(tmp, path) < 0)
                r = negative_errno();
        if (r < 0)
                unlink(tmp);
        explicit_bzero(out, strlen(out));
        return r;
}

int oci_auth_login(const char *home, const char *registry, const char *username,
                   const char *password)
{
        _cleanup_free_ char *pair = NULL, *b64 = NULL;
        int r;

        if (!*username || strchr(username, ':'))
                return -EINVAL;
        pair = strdup_printf("%s:%s", username, password);
        if (!pair)
                return -ENOMEM;
        b64 = base64_encode(pair, strlen(pair));
        explicit_bzero(pair, strlen(pair));
        if (!b64)
                return -ENOMEM;
        r = rewrite(home, registry, b64);
        explicit_bzero(b64, strlen(b64));
        return r;
}

int oci_auth_logout(const char *home, const char *registry)
{
        return rewrite(home, registry, NULL);
}

static void strv_freep(char ***v)
{
        if (*v)
                for (char **p = *v; *p; p++)
                        free(*p);
        free(*v);
}

int oci_auth_list(const char *home, char ***ret_registries, char ***ret_users, size_t *ret_n)
{
        _cleanup_free_ char *path = strdup_printf("%s/" OCI_AUTH_FILE, home);
        _cleanup_(auth_file_done) struct auth_file f = {0};
        _cleanup_(strv_freep) char **regs = NULL, **users = NULL;
        size_t n = 0, count;
        int r;

        if (!path)
                return -ENOMEM;
        r = auth_file_read(path, &f);
        if (r < 0)
                return r;
        count = f.auths ? f.auths->c.count : 0;
        regs = calloc(count + 1, sizeof(char *));
        users = calloc(count + 1, sizeof(char *));
        if (!regs || !users)
                return -ENOMEM;
        for (size_t i = 0; i < count; i++) {
                struct oci_cred c = {0};

                if (from_auths(f.auths, f.auths->c.keys[i], &c) < 0)
                        continue;
                regs[n] = strdup(f.auths->c.keys[i]);
                users[n] = c.username;
                c.username = NULL;
                oci_cred_clear(&c);
                if (!regs[n] || !users[n]) {
                        free(regs[n]);
                        free(users[n]);
                        regs[n] = users[n] = NULL;
                        return -ENOMEM;
                }
                n++;
        }
        *ret_registries = TAKE_PTR(regs);
        *ret_users = TAKE_PTR(users);
        *ret_n = n;
        return 0;
}

void oci_challenge_clear(struct oci_challenge *c)
{
        free(c->realm);
        free(c->service);
        free(c->scope);
        *c = (struct oci_challenge){0};
}

static bool is_token_char(char c)
{
        return c > ' ' && c < 127 && !strchr("()<>@,;:\\\"/[]?={}", c);
}

/* Parses one value (a token or a quoted string) at *p into a malloc'd
 * string. */
static int parse_value(const char **p, char **ret)
{
        const char *s = *p;
        char *out, *o;

        if (*s != '"') {
                size_t n = 0;

                while (s[n] && (is_token_char(s[n]) || s[n] == '/' || s[n] == ':' || s[n] == '='))
                        n++;
                *ret = strndup(s, n);
                *p = s + n;
                return *ret ? 0 : -ENOMEM;
        }
        s++;
        out = o = malloc(strlen(s) + 1);
        if (!out)
                return -ENOMEM;
        while (*s && *s != '"') {
                if (*s == '\\' && s[1])
                        s++;
                *o++ = *s++;
        }
        if (*s != '"') {
                free(out);
                return -EINVAL;
        }
        *o = '\0';
        *p = s + 1;
        *ret = out;
        return 0;
}

int oci_challenge_parse(const char *header, struct oci_challenge *ret)
{
        struct oci_challenge c = {0};
        const char *p = header;
        size_t n;

        while (*p == ' ' || *p == '\t')
                p++;
        n = 0;
        while (is_token_char(p[n]))
                n++;
        if (n == 6 && strncasecmp(p, "Bearer", 6) == 0)
                c.scheme = OCI_AUTH_BEARER;
        else if (n == 5 && strncasecmp(p, "Basic", 5) == 0)
                c.scheme = OCI_AUTH_BASIC;
        else
                return n ? -EOPNOTSUPP : -EINVAL;
        p += n;
        for (;;) {
                char *key = NULL, *value = NULL;
                int r;

                while (*p == ' ' || *p == '\t' || *p == ',')
                        p++;
                if (!*p)
                        break;
                n = 0;
                while (is_token_char(p[n]))
                        n++;
                if (n == 0 || p[n] != '=') {
                        oci_challenge_clear(&c);
                        return -EINVAL;
                }
                key = strndup(p, n);
                p += n + 1;
                r = key ? parse_value(&p, &value) : -ENOMEM;
                if (r < 0) {
                        free(key);
                        oci_challenge_clear(&c);
                        return r;
                }
                if (strcasecmp(key, "realm") == 0 && !c.realm)
                        c.realm = TAKE_PTR(value);
                else if (strcasecmp(key, "service") == 0 && !c.service)
                        c.service = TAKE_PTR(value);
                else if (strcasecmp(key, "scope") == 0 && !c.scope)
                        c.scope = TAKE_PTR(value);
                free(key);
                free(value);
                if (*p && *p != ',' && *p != ' ') {
                        oci_challenge_clear(&c);
                        return -EINVAL;
                }
        }
        if (c.scheme == OCI_AUTH_BEARER && !c.realm) {
                oci_challenge_clear(&c);
                return -EINVAL;
        }
        *ret = c;
        return 0;
}
