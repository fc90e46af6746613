/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: the reference is split from the right (digest after
 * the last '@', tag after a ':' that follows the last '/'), the remaining
 * name from the left (registry when the first component looks like a host),
 * and each part is checked against the grammar of the distribution
 * specification before anything is allocated.
 */
#include "ref.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "lib/core/util.h"

#define DOCKER_HUB     "docker.io"
#define DOCKER_HUB_API "registry-1.docker.io"

static bool is_lower_alnum(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
        return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

bool oci_tag_valid(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > OCI_TAG_MAX || !(is_alnum(s[0]) || s[0] == '_'))
                return false;
        for (size_t i = 1; i < n; i++)
                if (!(is_alnum(s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
                        return false;
        return true;
}

/* path-component: [a-z0-9]+ ( ( [._] | __ | -+ ) [a-z0-9]+ )* */
static bool path_component_valid(const char *s, size_t n)
{
        size_t i = 0;

        if (n == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
                return false;
        while (i < n) {
                if (is_lower_alnum(s[i])) {
                        i++;
                        continue;
                }
                /* a separator between two alphanumerics */
                if (s[i] == '.' || (s[i] == '_' && s[i + 1] != '_')) {
                        i++;
                } else if (s[i] == '_') {
                        i += 2;
                } else if (s[i] == '-') {
                        while (i < n && s[i] == '-')
                                i++;
                } else {
                        return false;
                }
                if (i >= n || !is_lower_alnum(s[i]))
                        return false;
        }
        return true;
}

static bool repository_valid(const char *s)
{
        const char *p = s;

        if (!*s)
                return false;
        for (;;) {
                const char *slash = strchr(p, '/');
                size_t n = slash ? (size_t)(slash - p) : strlen(p);

                if (!path_component_valid(p, n))
                        return false;
                if (!slash)
                        return true;
                p = slash + 1;
        }
}

/* host[:port]: DNS labels of [A-Za-z0-9-] (not starting or ending with '-'),
 * or a bracketed IPv6 address. */
static bool registry_valid(const char *s)
{
        const char *p = s, *colon;

        if (*p == '[') {
                const char *end = strchr(p, ']');

                if (!end || end == p + 1)
                        return false;
                for (const char *q = p + 1; q < end; q++)
                        if (!(is_alnum(*q) || *q == ':' || *q == '.'))
                                return false;
                colon = end + 1;
                if (*colon == '\0')
                        return true;
                if (*colon != ':')
                        return false;
        } else {
                size_t label = 0;

                for (; *p && *p != ':'; p++) {
                        if (*p == '.') {
                                if (label == 0 || p[-1] == '-')
                                        return false;
                                label = 0;
                        } else if (is_alnum(*p) || (*p == '-' && label > 0)) {
                                label++;
                        } else {
                                return false;
                        }
                }
                if (label == 0 || p[-1] == '-')
                        return false;
                if (*p == '\0')
                        return true;
                colon = p;
        }
        /* a port: 1-5 digits */
        size_t digits = strlen(colon + 1);
        if (digits == 0 || digits > 5)
                return false;
        for (const char *q = colon + 1; *q; q++)
                if (*q < '0' || *q > '9')
                        return false;
        return true;
}

void oci_ref_clear(struct oci_ref *r)
{
        free(r->registry);
        free(r->repository);
        free(r->tag);
        free(r->digest);
        *r = (struct oci_ref){0};
}

int oci_ref_parse(const char *s, struct oci_ref *ret)
{
        _cleanup_free_ char *buf = NULL;
        struct oci_ref r = {0};
        char *name, *at, *tag = NULL, *slash, *colon, *digest = NULL;
        const char *registry = DOCKER_HUB;
        bool library = false;

        if (!s || !*s || strlen(s) > OCI_REF_MAX)
                return -EINVAL;
        buf = strdup(s);
        if (!buf)
                return -ENOMEM;
        name = buf;
        at = strrchr(name, '@');
        if (at) {
                *at = '\0';
                digest = at + 1;
                if (!oci_digest_valid(digest))
                        return -EINVAL;
        }
        slash = strrchr(name, '/');
        colon = strrchr(slash ? slash : name, ':');
        if (colon) {
                *colon = '\0';
                tag = colon + 1;
                if (!oci_tag_valid(tag))
                        return -EINVAL;
        }
        slash = strchr(name, '/');
        if (slash) {
                size_t n = (size_t)(slash - name);

                if ((memchr(name, '.', n) || memchr(name, ':', n) ||
                     (n == 9 && memcmp(name, "localhost", 9) == 0))) {
                        *slash = '\0';
                        registry = name;
                        name = slash + 1;
                        if (!registry_valid(registry))
                                return -EINVAL;
                        if (streq(registry, "index.docker.io") || streq(registry, DOCKER_HUB_API))
                                registry = DOCKER_HUB;
                }
        }
        if (!repository_valid(name))
                return -EINVAL;
        library = streq(registry, DOCKER_HUB) && !strchr(name, '/');
        if (strlen(registry) + 1 + (library ? 8 : 0) + strlen(name) > OCI_NAME_MAX)
                return -EINVAL;

        r.registry = strdup(registry);
        r.repository = library ? strdup_printf("library/%s", name) : strdup(name);
        r.tag = tag ? strdup(tag) : digest ? NULL : strdup("latest");
        r.digest = digest ? strdup(digest) : NULL;
        if (!r.registry || !r.repository || (!r.tag && !digest) || (digest && !r.digest)) {
                oci_ref_clear(&r);
                return -ENOMEM;
        }
        *ret = r;
        return 0;
}

char *oci_ref_name(const struct oci_ref *r)
{
        return strdup_printf("%s/%s", r->registry, r->repository);
}

char *oci_ref_string(const struct oci_ref *r)
{
        return strdup_printf("%s/%s%s%s%s%s", r->registry, r->repository, r->tag ? ":" : "",
                             r->tag ? r->tag : "", r->digest ? "@" : "",
                             r->digest ? r->digest : "");
}

const char *oci_ref_api_host(const struct oci_ref *r)
{
        return streq(r->registry, DOCKER_HUB) ? DOCKER_HUB_API : r->registry;
}

bool oci_registry_is_local(const char *registry)
{
        size_t n;
        const char *p;

        if (registry[0] == '[')
                return startswith(registry, "[::1]") != NULL;
        p = strchr(registry, ':');
        n = p ? (size_t)(p - registry) : strlen(registry);
        if (n == 9 && memcmp(registry, "localhost", 9) == 0)
                return true;
        if (n < 7 || memcmp(registry, "127.", 4) != 0)
                return false;
        for (size_t i = 4; i < n; i++)
                if (!((registry[i] >= '0' && registry[i] <= '9') || registry[i] == '.'))
                        return false;
        return true;
}
