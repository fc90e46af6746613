/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: every request goes through one place that sets the
 * common transfer options (timeouts, protocols, TLS, cancellation) on a
 * curl easy handle and captures the interesting response headers, reset at
 * each status line so that only the last response of a redirect chain
 * counts. Small requests (manifests, tokens, configs) run with
 * sym_curl_easy_perform() and a capped memory body; blob downloads run in one
 * curl multi loop that keeps up to `parallel` transfers going, streams each
 * body into its blob writer (which hashes it), and decides at completion
 * whether to commit, re-authenticate and retry, restart without a range, or
 * fail.
 *
 * A 401 answer is handled by authenticate(): Basic sends the stored
 * credentials, Bearer fetches a token from the challenge's realm (with the
 * credentials, if any, as Basic auth), and the request is made once more.
 * The Authorization header is ours: libcurl drops custom Authorization
 * headers when a redirect leaves the host.
 */
#include "registry.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "dl.h"
#include "lib/core/json.h"
#include "lib/core/log.h"
#include "lib/core/util.h"
#include "manifest.h"

#define USER_AGENT        "microsandbox"
#define DEFAULT_STALL_MS  30000
#define CONNECT_TIMEOUT_S 30
#define TOKEN_MAX         (1u << 20)
#define ERROR_BODY_MAX    (64u << 10)
#define HEADER_MAX        8192

struct oci_registry {
        char *registry;
        char *repository;
        char *host;
        char *base; /* "https://host" or "http://host" */
        bool scheme_known;
        bool allow_http;
        bool insecure;
        char *ca_certs;
        long stall_s;
        char *home;
        struct oci_cred cred;
        bool have_cred;
        char cred_note[320]; /* why a credential helper gave none, for a 401 */
        bool basic_sent;     /* the stored credentials went out and still got a 401 */
        char *authorization;
        int cancel_fd;
};

struct response {
        long status;
        char *content_type;
        char *digest;
        char *www_auth;
        char *content_range;
        char *body;
        size_t len, cap, max;
        bool too_big;
};

static void response_clear(struct response *resp)
{
        free(resp->content_type);
        free(resp->digest);
        free(resp->www_auth);
        free(resp->content_range);
        free(resp->body);
        *resp = (struct response){.max = resp->max};
}

void oci_registry_free(struct oci_registry *r)
{
        if (!r)
                return;
        free(r->registry);
        free(r->repository);
        free(r->host);
        free(r->base);
        free(r->ca_certs);
        free(r->home);
        oci_cred_clear(&r->cred);
        if (r->authorization)
                explicit_bzero(r->authorization, strlen(r->authorization));
        free(r->authorization);
        free(r);
}

int oci_registry_new(const struct oci_ref *ref, const struct oci_registry_opts *o,
                     struct oci_registry **ret, struct oci_err *e)
{
        _cleanup_(oci_registry_freep) struct oci_registry *r = NULL;
        int k;

        k = oci_dl_curl(e);
        if (k < 0)
                return k;
        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->cancel_fd = o->cancel_fd;
        r->insecure = o->insecure;
        r->allow_http = o->insecure || oci_registry_is_local(ref->registry);
        r->stall_s = (long)((o->timeout_ms ? o->timeout_ms : DEFAULT_STALL_MS) + 999) / 1000;
        r->registry = strdup(ref->registry);
        r->repository = strdup(ref->repository);
        r->host = strdup(oci_ref_api_host(ref));
        r->home = o->home ? strdup(o->home) : NULL;
        r->ca_certs = o->ca_certs ? strdup(o->ca_certs) : NULL;
        if (!r->registry || !r->repository || !r->host || (o->home && !r->home) ||
            (o->ca_certs && !r->ca_certs))
                return -ENOMEM;
        r->base = strdup_printf("https://%s", r->host);
        if (!r->base)
                return -ENOMEM;
        if (o->username) {
                r->cred.username = strdup(o->username);
                r->cred.password = strdup(o->password ? o->password : "");
                if (!r->cred.username || !r->cred.password)
                        return -ENOMEM;
                r->have_cred = true;
        } else if (r->home) {
                r->have_cred = oci_auth_lookup(r->home, r->registry, &r->cred, r->cred_note,
                                               sizeof(r->cred_note)) == 0;
        }
        *ret = TAKE_PTR(r);
        return 0;
}

static bool cancelled(const struct oci_registry *r)
{
        struct pollfd p = {.fd = r->cancel_fd, .events = POLLIN};

        return r->cancel_fd >= 0 && poll(&p, 1, 0) > 0;
}

static int xferinfo(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                    curl_off_t ulnow)
{
        return cancelled(userdata) ? 1 : 0;
}

static char *dup_trim(const char *s, size_t n)
{
        while (n > 0 && (*s == ' ' || *s == '\t')) {
                s++;
                n--;
        }
        while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == '\n' || s[n - 1] == ' '))
                n--;
        return strndup(s, n);
}

static size_t on_header(char *data, size_t size, size_t nitems, void *userdata)
{
        struct response *resp = userdata;
        size_t n = size * nitems;
        static const struct {
                const char *name;
                size_t off;
        } wanted[] = {
                {"content-type:", offsetof(struct response, content_type)},
                {"docker-content-digest:", offsetof(struct response, digest)},
                {"www-authenticate:", offsetof(struct response, www_auth)},
                {"content-range:", offsetof(struct response, content_range)},
        };

        if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
                /* a new response (after a redirect or a 100): forget the last */
                free(resp->content_type);
                free(resp->digest);
                free(resp->www_auth);
                free(resp->content_range);
                resp->content_type = resp->digest = resp->www_auth = resp->content_range = NULL;
                return n;
        }
        if (n > HEADER_MAX)
                return n;
        for (size_t i = 0; i < ARRAY_SIZE(wanted); i++) {
                size_t k = strlen(wanted[i].name);
                char **slot = (char **)((char *)resp + wanted[i].off);

                if (n < k || strncasecmp(data, wanted[i].name, k) != 0 || *slot)
                        continue;
                *slot = dup_trim(data + k, n - k);
                if (!*slot)
                        return 0;
        }
        return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
        struct response *resp = userdata;
        size_t n = size * nmemb;

        if (n > resp->max - resp->len) {
                resp->too_big = true;
                return 0;
        }
        if (resp->len + n + 1 > resp->cap) {
                size_t cap = MAX(resp->cap * 2, resp->len + n + 1);
                char *b = realloc(resp->body, MIN(cap, resp->max + 1));

                if (!b)
                        return 0;
                resp->body = b;
                resp->cap = MIN(cap, resp->max + 1);
        }
        memcpy(resp->body + resp->len, data, n);
        resp->len += n;
        resp->body[resp->len] = '\0';
        return n;
}

/* The options every request shares. */
static int setup_easy(struct oci_registry *r, CURL *h, const char *url, struct response *resp)
{
        bool ok = true;

        ok &= sym_curl_easy_setopt(h, CURLOPT_URL, url) == CURLE_OK;
        ok &= sym_curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
        ok &= sym_curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L) == CURLE_OK;
        ok &= sym_curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L) == CURLE_OK;
        ok &= sym_curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
        ok &= sym_curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") == CURLE_OK;
        ok &= sym_curl_easy_setopt(h, CURLOPT_USERAGENT, USER_AGENT) == CURLE_OK;
        ok &= sym_curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT_S) == CURLE_OK;
        ok &= sym_curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L) == CURLE_OK;
        ok &= sym_curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, r->stall_s) == CURLE_OK;
        ok &= sym_curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L) == CURLE_OK;
        ok &= sym_curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, xferinfo) == CURLE_OK;
        ok &= sym_curl_easy_setopt(h, CURLOPT_XFERINFODATA, r) == CURLE_OK;
        ok &= sym_curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK;
        ok &= sym_curl_easy_setopt(h, CURLOPT_HEADERDATA, resp) == CURLE_OK;
        if (r->insecure) {
                ok &= sym_curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L) == CURLE_OK;
                ok &= sym_curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L) == CURLE_OK;
        }
        if (r->ca_certs)
                ok &= sym_curl_easy_setopt(h, CURLOPT_CAINFO, r->ca_certs) == CURLE_OK;
        return ok ? 0 : -ENOMEM;
}

static int curl_error(struct oci_registry *r, CURLcode c, const char *url, struct oci_err *e)
{
        int err;

        switch (c) {
        case CURLE_OPERATION_TIMEDOUT:
                return oci_err_set(e, -ETIMEDOUT,
                                   "%s: the registry stalled (nothing received for %ld s)", url,
                                   r->stall_s);
        case CURLE_COULDNT_CONNECT:
                err = -ECONNREFUSED;
                break;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                err = -EHOSTUNREACH;
                break;
        case CURLE_ABORTED_BY_CALLBACK:
                if (cancelled(r))
                        return oci_err_set(e, -ECANCELED, "cancelled");
                err = -EIO;
                break;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CACERT_BADFILE:
                err = -EPROTO;
                break;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        default:
                err = -EIO;
                break;
        }
        return oci_err_set(e, err, "%s: %s", url, sym_curl_easy_strerror(c));
}

/* The first message of a registry's JSON error body, if any. */
static void registry_message(const struct response *resp, char *buf, size_t size)
{
        struct json_doc *doc = NULL;
        const struct json_value *root, *first;

        buf[0] = '\0';
        if (!resp->body || json_parse(resp->body, resp->len, &doc, &root) < 0)
                return;
        first = json_at(json_get(root, "errors"), 0);
        if (first)
                snprintf(buf, size, " (%.60s: %.160s)", json_string(json_get(first, "code"), "?"),
                         json_string(json_get(first, "message"), ""));
        json_doc_free(doc);
}

static int status_error(struct oci_registry *r, const struct response *resp, const char *url,
                        struct oci_err *e)
{
        char msg[256];

        registry_message(resp, msg, sizeof(msg));
        switch (resp->status) {
        case 401:
        case 403:
                if (r->have_cred)
                        return oci_err_set(e, -EACCES,
                                           "%s: access denied (HTTP %ld)%s: check the credentials "
                                           "of 'msb registry login %s'",
                                           url, resp->status, msg, r->registry);
                if (r->cred_note[0])
                        return oci_err_set(e, -EACCES,
                                           "%s: access denied (HTTP %ld)%s, and no credentials: %s",
                                           url, resp->status, msg, r->cred_note);
                return oci_err_set(e, -EACCES,
                                   "%s: access denied (HTTP %ld)%s: the repository does not exist "
                                   "or needs 'msb registry login %s'",
                                   url, resp->status, msg, r->registry);
        case 404:
                return oci_err_set(e, -ENOENT, "%s: not found (HTTP 404)%s", url, msg);
        case 429:
                return oci_err_set(e, -EAGAIN, "%s: rate limited by the registry (HTTP 429)%s", url,
                                   msg);
        default:
                return oci_err_set(e, -EIO, "%s: HTTP %ld%s", url, resp->status, msg);
        }
}

static bool is_tls_failure(CURLcode c)
{
        return c == CURLE_SSL_CONNECT_ERROR || c == CURLE_GOT_NOTHING || c == CURLE_RECV_ERROR;
}

/* Switches to plain HTTP after a TLS failure where that is allowed; true
 * when the request should be made again. */
static bool fall_back_to_http(struct oci_registry *r, CURLcode c)
{
        char *base;

        if (r->scheme_known || !r->allow_http || !is_tls_failure(c))
                return false;
        base = strdup_printf("http://%s", r->host);
        if (!base)
                return false;
        log_debug("registry %s: TLS failed (%s), using plain HTTP", r->host,
                  sym_curl_easy_strerror(c));
        free(r->base);
        r->base = base;
        r->scheme_known = true;
        return true;
}

/* One GET into memory, no authentication handling. */
static int get_once(struct oci_registry *r, const char *url, const char *accept,
                    const char *authorization, size_t max, struct response *resp, struct oci_err *e)
{
        CURL *h = sym_curl_easy_init();
        struct curl_slist *hdrs = NULL, *tmp;
        _cleanup_free_ char *accept_h = NULL, *auth_h = NULL;
        CURLcode c;
        int r2;

        if (!h)
                return -ENOMEM;
        response_clear(resp);
        resp->max = max;
        r2 = setup_easy(r, h, url, resp);
        if (accept) {
                accept_h = strdup_printf("Accept: %s", accept);
                tmp = accept_h ? sym_curl_slist_append(hdrs, accept_h) : NULL;
                if (!tmp)
                        r2 = -ENOMEM;
                else
                        hdrs = tmp;
        }
        if (authorization) {
                auth_h = strdup_printf("Authorization: %s", authorization);
                tmp = auth_h ? sym_curl_slist_append(hdrs, auth_h) : NULL;
                if (!tmp)
                        r2 = -ENOMEM;
                else
                        hdrs = tmp;
        }
        if (r2 >= 0 && (sym_curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
                        sym_curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
                        sym_curl_easy_setopt(h, CURLOPT_WRITEDATA, resp) != CURLE_OK))
                r2 = -ENOMEM;
        if (r2 >= 0) {
                c = sym_curl_easy_perform(h);
                if (c == CURLE_OK) {
                        sym_curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
                        r2 = 0;
                } else if (c == CURLE_WRITE_ERROR && resp->too_big) {
                        r2 = oci_err_set(e, -E2BIG, "%s: the answer is larger than %zu bytes", url,
                                         max);
                } else {
                        r2 = (int)c; /* > 0: a curl error for the caller */
                }
        }
        if (auth_h)
                explicit_bzero(auth_h, strlen(auth_h));
        sym_curl_slist_free_all(hdrs);
        sym_curl_easy_cleanup(h);
        return r2;
}

static int fetch_token(struct oci_registry *r, const struct oci_challenge *ch, struct oci_err *e)
{
        _cleanup_free_ char *url = NULL, *basic = NULL, *default_scope = NULL;
        struct response resp = {0};
        struct json_doc *doc = NULL;
        const struct json_value *root;
        const char *token;
        char *service = NULL, *scope = NULL;
        bool http = startswith(ch->realm, "http://") != NULL;
        CURL *esc;
        int k;

        if (!startswith(ch->realm, "https://") && !http)
                return oci_err_set(e, -EPROTO, "registry %s: token realm '%.100s' is not HTTP(S)",
                                   r->registry, ch->realm);
        if (http && !r->allow_http)
                return oci_err_set(e, -EPROTO,
                                   "registry %s: refusing a plain HTTP token realm (%.100s)",
                                   r->registry, ch->realm);
        default_scope = strdup_printf("repository:%s:pull", r->repository);
        esc = sym_curl_easy_init();
        if (!default_scope || !esc) {
                sym_curl_easy_cleanup(esc);
                return -ENOMEM;
        }
        if (ch->service)
                service = sym_curl_easy_escape(esc, ch->service, 0);
        /* a bare /v2/ check (login) asks for no repository */
        if (ch->scope || *r->repository)
                scope = sym_curl_easy_escape(esc, ch->scope ? ch->scope : default_scope, 0);
        sym_curl_easy_cleanup(esc);
        if ((!scope && (ch->scope || *r->repository)) || (ch->service && !service)) {
                sym_curl_free(service);
                sym_curl_free(scope);
                return -ENOMEM;
        }
        url = strdup_printf("%s%s%s%s%s%s", ch->realm, strchr(ch->realm, '?') ? "&" : "?",
                            service ? "service=" : "", service ? service : "",
                            service && scope ? "&scope="
                            : scope          ? "scope="
                                             : "",
                            scope ? scope : "");
        sym_curl_free(service);
        sym_curl_free(scope);
        if (!url)
                return -ENOMEM;
        if (r->have_cred) {
                basic = oci_auth_basic_header(&r->cred);
                if (!basic)
                        return -ENOMEM;
        }
        k = get_once(r, url, NULL, basic, TOKEN_MAX, &resp, e);
        if (basic)
                explicit_bzero(basic, strlen(basic));
        if (k > 0)
                k = curl_error(r, (CURLcode)k, ch->realm, e);
        if (k >= 0 && resp.status != 200) {
                if (resp.status == 401 || resp.status == 403)
                        k = oci_err_set(
                                e, -EACCES, "registry %s: the token server refused %s (HTTP %ld)",
                                r->registry, r->have_cred ? "the credentials" : "anonymous access",
                                resp.status);
                else
                        k = status_error(r, &resp, ch->realm, e);
        }
        if (k >= 0) {
                if (json_parse(resp.body ? resp.body : "", resp.len, &doc, &root) < 0)
                        k = oci_err_set(e, -EBADMSG, "registry %s: the token answer is not JSON",
                                        r->registry);
                else {
                        token = json_string(json_get(root, "token"), NULL);
                        if (!token)
                                token = json_string(json_get(root, "access_token"), NULL);
                        if (!token || !*token || strpbrk(token, "\r\n"))
                                k = oci_err_set(e, -EBADMSG,
                                                "registry %s: the token answer has no token",
                                                r->registry);
                        else {
                                free(r->authorization);
                                r->authorization = strdup_printf("Bearer %s", token);
                                k = r->authorization ? 0 : -ENOMEM;
                        }
                        json_doc_free(doc);
                }
        }
        if (resp.body)
                explicit_bzero(resp.body, resp.len);
        response_clear(&resp);
        return k;
}

/* After a 401: gets the Authorization the challenge asks for. */
static int authenticate(struct oci_registry *r, const struct response *resp, const char *url,
                        struct oci_err *e)
{
        struct oci_challenge ch;
        int k;

        if (!resp->www_auth || oci_challenge_parse(resp->www_auth, &ch) < 0)
                return status_error(r, resp, url, e);
        if (ch.scheme == OCI_AUTH_BASIC) {
                oci_challenge_clear(&ch);
                if (!r->have_cred || r->basic_sent)
                        return status_error(r, resp, url, e);
                free(r->authorization);
                r->authorization = oci_auth_basic_header(&r->cred);
                r->basic_sent = true;
                return r->authorization ? 0 : -ENOMEM;
        }
        k = fetch_token(r, &ch, e);
        oci_challenge_clear(&ch);
        return k;
}

/* GET with the scheme fallback and authentication: 0 with resp filled (any
 * status but 401 handled by the caller). */
static int get(struct oci_registry *r, const char *path, const char *accept, size_t max,
               struct response *resp, struct oci_err *e)
{
        _cleanup_free_ char *url = NULL;
        int k;

        for (int attempt = 0; attempt < 3; attempt++) {
                free(url);
                url = strdup_printf("%s%s", r->base, path);
                if (!url)
                        return -ENOMEM;
                k = get_once(r, url, accept, r->authorization, max, resp, e);
                if (k > 0 && fall_back_to_http(r, (CURLcode)k)) {
                        attempt--;
                        continue;
                }
                if (k > 0)
                        return curl_error(r, (CURLcode)k, url, e);
                if (k < 0)
                        return k;
                r->scheme_known = true;
                if (resp->status != 401 || attempt == 2)
                        return 0;
                k = authenticate(r, resp, url, e);
                if (k < 0)
                        return k;
        }
        return 0;
}

int oci_registry_ping(struct oci_registry *r, struct oci_err *e)
{
        struct response resp = {0};
        _cleanup_free_ char *url = NULL;
        int k = get(r, "/v2/", NULL, ERROR_BODY_MAX, &resp, e);

        if (k >= 0 && (resp.status < 200 || resp.status > 299)) {
                url = strdup_printf("%s/v2/", r->base);
                k = status_error(r, &resp, url ? url : "/v2/", e);
        }
        response_clear(&resp);
        return k;
}

/* GET of a document held in memory (a manifest, a config): an error unless
 * the registry answers 200. resp->body is never NULL on success (an empty
 * body is ""), and ret_digest is its sha256. */
static int get_document(struct oci_registry *r, const char *path, const char *accept, size_t max,
                        struct response *resp, char ret_digest[OCI_DIGEST_SIZE], struct oci_err *e)
{
        int k = get(r, path, accept, max, resp, e);

        if (k >= 0 && resp->status != 200) {
                _cleanup_free_ char *url = strdup_printf("%s%s", r->base, path);

                k = status_error(r, resp, url ? url : path, e);
        }
        if (k >= 0 && !resp->body && !(resp->body = strdup("")))
                k = -ENOMEM;
        if (k >= 0)
                k = oci_sha256_buf(resp->body, resp->len, ret_digest);
        return k;
}

int oci_registry_get_manifest(struct oci_registry *r, const char *reference, char **ret_body,
                              size_t *ret_len, char **ret_content_type,
                              char ret_digest[OCI_DIGEST_SIZE], struct oci_err *e)
{
        _cleanup_free_ char *path = strdup_printf("/v2/%s/manifests/%s", r->repository, reference);
        struct response resp = {0};
        char digest[OCI_DIGEST_SIZE];
        int k;

        if (!path)
                return -ENOMEM;
        k = get_document(r, path, OCI_MANIFEST_ACCEPT, OCI_MANIFEST_MAX, &resp, digest, e);
        if (k >= 0 && oci_digest_valid(reference) && !streq(reference, digest))
                k = oci_err_set(e, -EBADMSG,
                                "manifest digest mismatch: asked for %s, the registry sent %s",
                                reference, digest);
        if (k >= 0 && resp.digest && startswith(resp.digest, "sha256:") &&
            !streq(resp.digest, digest))
                k = oci_err_set(e, -EBADMSG,
                                "manifest digest mismatch: the registry says %.80s, the body is %s",
                                resp.digest, digest);
        if (k >= 0) {
                *ret_body = TAKE_PTR(resp.body);
                *ret_len = resp.len;
                *ret_content_type = TAKE_PTR(resp.content_type);
                memcpy(ret_digest, digest, OCI_DIGEST_SIZE);
        }
        response_clear(&resp);
        return k;
}

int oci_registry_get_small_blob(struct oci_registry *r, const char *digest, size_t max,
                                char **ret_body, size_t *ret_len, struct oci_err *e)
{
        _cleanup_free_ char *path = strdup_printf("/v2/%s/blobs/%s", r->repository, digest);
        struct response resp = {0};
        char got[OCI_DIGEST_SIZE];
        int k;

        if (!path)
                return -ENOMEM;
        k = get_document(r, path, NULL, max, &resp, got, e);
        if (k >= 0 && !streq(got, digest))
                k = oci_err_set(e, -EBADMSG, "blob %.19s: digest mismatch (got %s)", digest, got);
        if (k >= 0) {
                *ret_body = TAKE_PTR(resp.body);
                *ret_len = resp.len;
        }
        response_clear(&resp);
        return k;
}

/* ---- blob downloads ---------------------------------------------------- */

struct xfer {
        struct oci_registry *r;
        struct oci_blob_req *req;
        size_t idx;
        CURL *h;
        struct curl_slist *hdrs;
        struct response resp; /* headers, and the body of an error answer */
        char *url;
        bool started;   /* the first body byte arrived */
        bool streaming; /* the body goes to the writer */
        int err;        /* set by the write callback */
        int auth_retries;
        bool range_retry;
        oci_blob_progress_fn progress;
        void *userdata;
};

static void xfer_reset(struct xfer *x)
{
        sym_curl_slist_free_all(x->hdrs);
        x->hdrs = NULL;
        if (x->h)
                sym_curl_easy_cleanup(x->h);
        x->h = NULL;
        response_clear(&x->resp);
        free(x->url);
        x->url = NULL;
        x->started = x->streaming = false;
        x->err = 0;
}

/* Where a 206 answer starts ("bytes START-END/TOTAL"), or -1. */
static int64_t range_start(const char *cr)
{
        const char *p = cr ? startswith(cr, "bytes ") : NULL;
        uint64_t v = 0;

        if (!p || *p < '0' || *p > '9')
                return -1;
        for (; *p >= '0' && *p <= '9'; p++) {
                if (v > (uint64_t)INT64_MAX / 10)
                        return -1;
                v = v * 10 + (uint64_t)(*p - '0');
        }
        return *p == '-' ? (int64_t)v : -1;
}

static size_t on_blob(char *data, size_t size, size_t nmemb, void *userdata)
{
        struct xfer *x = userdata;
        size_t n = size * nmemb;
        int k;

        if (!x->started) {
                long status = 0;
                uint64_t offset = oci_blob_writer_offset(x->req->w);

                x->started = true;
                sym_curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
                if (status == 200 && offset > 0) {
                        /* the server ignored the range: start over */
                        k = oci_blob_writer_restart(x->req->w);
                        if (k < 0) {
                                x->err = k;
                                return 0;
                        }
                } else if (status == 206 && range_start(x->resp.content_range) != (int64_t)offset) {
                        x->err = -ERANGE;
                        return 0;
                }
                x->streaming = status == 200 || status == 206;
                if (!x->streaming)
                        x->resp.max = ERROR_BODY_MAX;
        }
        if (!x->streaming)
                return on_body(data, size, nmemb, &x->resp);
        k = oci_blob_writer_write(x->req->w, data, n);
        if (k < 0) {
                x->err = k;
                return 0;
        }
        if (x->progress)
                x->progress(x->userdata, x->idx, oci_blob_writer_offset(x->req->w), x->req->size);
        return n;
}

static int xfer_start(struct xfer *x, CURLM *multi)
{
        struct oci_registry *r = x->r;
        uint64_t offset = oci_blob_writer_offset(x->req->w);
        _cleanup_free_ char *auth_h = NULL, *range_h = NULL;
        struct curl_slist *tmp;
        int k;

        xfer_reset(x);
        x->url = strdup_printf("%s/v2/%s/blobs/%s", r->base, r->repository, x->req->digest);
        x->h = sym_curl_easy_init();
        if (!x->url || !x->h)
                return -ENOMEM;
        x->resp.max = ERROR_BODY_MAX;
        k = setup_easy(r, x->h, x->url, &x->resp);
        if (k < 0)
                return k;
        if (r->authorization) {
                auth_h = strdup_printf("Authorization: %s", r->authorization);
                tmp = auth_h ? sym_curl_slist_append(x->hdrs, auth_h) : NULL;
                if (!tmp)
                        return -ENOMEM;
                x->hdrs = tmp;
                explicit_bzero(auth_h, strlen(auth_h));
        }
        if (offset > 0) {
                range_h = strdup_printf("Range: bytes=%llu-", (unsigned long long)offset);
                tmp = range_h ? sym_curl_slist_append(x->hdrs, range_h) : NULL;
                if (!tmp)
                        return -ENOMEM;
                x->hdrs = tmp;
        }
        if (sym_curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, x->hdrs) != CURLE_OK ||
            sym_curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, on_blob) != CURLE_OK ||
            sym_curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x) != CURLE_OK ||
            sym_curl_easy_setopt(x->h, CURLOPT_PRIVATE, x) != CURLE_OK)
                return -ENOMEM;
        if (sym_curl_multi_add_handle(multi, x->h) != CURLM_OK)
                return -ENOMEM;
        return 0;
}

/* A transfer ended: 0 done (committed), 1 start it again, -errno failed. */
static int xfer_done(struct xfer *x, CURLcode c, struct oci_err *e)
{
        struct oci_registry *r = x->r;
        const char *blob = x->req->digest;
        int k;

        if (c != CURLE_OK) {
                if (x->err == -ERANGE && !x->range_retry) {
                        x->range_retry = true;
                        return oci_blob_writer_restart(x->req->w) < 0 ? -EIO : 1;
                }
                if (x->err == -EFBIG)
                        return oci_err_set(e, -EBADMSG,
                                           "blob %.19s: the registry sent more than %llu bytes",
                                           blob, (unsigned long long)x->req->size);
                if (x->err < 0)
                        return oci_err_set(e, x->err, "blob %.19s: %s", blob, strerror(-x->err));
                if (fall_back_to_http(r, c))
                        return 1;
                return curl_error(r, c, x->url, e);
        }
        sym_curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->resp.status);
        r->scheme_known = true;
        if (x->resp.status == 401 && x->auth_retries++ < 2) {
                k = authenticate(r, &x->resp, x->url, e);
                return k < 0 ? k : 1;
        }
        if (x->resp.status == 416 && !x->range_retry) {
                x->range_retry = true;
                return oci_blob_writer_restart(x->req->w) < 0 ? -EIO : 1;
        }
        if (x->resp.status != 200 && x->resp.status != 206)
                return status_error(r, &x->resp, x->url, e);
        k = oci_blob_writer_commit(x->req->w, NULL);
        if (k == -EBADMSG)
                return oci_err_set(e, k, "blob %.19s: digest mismatch (the download is corrupt)",
                                   blob);
        if (k == -EPIPE)
                return oci_err_set(e, -EBADMSG, "blob %.19s: the registry sent %llu of %llu bytes",
                                   blob, (unsigned long long)oci_blob_writer_offset(x->req->w),
                                   (unsigned long long)x->req->size);
        if (k < 0)
                return oci_err_set(e, k, "blob %.19s: cannot store it: %s", blob, strerror(-k));
        return 0;
}

int oci_registry_get_blobs(struct oci_registry *r, struct oci_blob_req *reqs, size_t n,
                           unsigned parallel, oci_blob_progress_fn progress, void *userdata,
                           struct oci_err *e)
{
        CURLM *multi = sym_curl_multi_init();
        _cleanup_free_ struct xfer *xs = calloc(n + 1, sizeof(*xs));
        size_t next = 0, active = 0;
        int result = 0;

        if (!multi || !xs) {
                if (multi)
                        sym_curl_multi_cleanup(multi);
                return -ENOMEM;
        }
        if (parallel == 0)
                parallel = 1;
        for (size_t i = 0; i < n; i++) {
                xs[i] = (struct xfer){.r = r,
                                      .req = &reqs[i],
                                      .idx = i,
                                      .progress = progress,
                                      .userdata = userdata};
                reqs[i].result = -EINPROGRESS;
        }
        for (;;) {
                struct curl_waitfd extra = {.fd = r->cancel_fd, .events = CURL_WAIT_POLLIN};
                CURLMsg *msg;
                int running, left, k;

                while (result == 0 && active < parallel && next < n) {
                        k = xfer_start(&xs[next], multi);
                        if (k < 0) {
                                result = reqs[next].result = k;
                                break;
                        }
                        next++;
                        active++;
                }
                if (active == 0)
                        break;
                if (sym_curl_multi_perform(multi, &running) != CURLM_OK) {
                        result = -ENOMEM;
                        break;
                }
                while ((msg = sym_curl_multi_info_read(multi, &left))) {
                        struct xfer *x = NULL;

                        if (msg->msg != CURLMSG_DONE)
                                continue;
                        sym_curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
                        sym_curl_multi_remove_handle(multi, x->h);
                        active--;
                        k = result == 0 ? xfer_done(x, msg->data.result, e) : -ECANCELED;
                        if (k == 1) {
                                k = xfer_start(x, multi);
                                if (k >= 0) {
                                        active++;
                                        continue;
                                }
                        }
                        x->req->result = k;
                        if (k < 0 && result == 0)
                                result = k;
                }
                if (result < 0) {
                        /* stop the others; their parts stay for the next try */
                        for (size_t i = 0; i < next; i++) {
                                if (reqs[i].result != -EINPROGRESS || !xs[i].h)
                                        continue;
                                sym_curl_multi_remove_handle(multi, xs[i].h);
                                reqs[i].result = -ECANCELED;
                        }
                        break;
                }
                if (sym_curl_multi_poll(multi, r->cancel_fd >= 0 ? &extra : NULL,
                                        r->cancel_fd >= 0 ? 1 : 0, 1000, NULL) != CURLM_OK) {
                        result = -EIO;
                        break;
                }
                if (cancelled(r)) {
                        result = oci_err_set(e, -ECANCELED, "cancelled");
                        for (size_t i = 0; i < next; i++) {
                                if (reqs[i].result != -EINPROGRESS || !xs[i].h)
                                        continue;
                                sym_curl_multi_remove_handle(multi, xs[i].h);
                                reqs[i].result = -ECANCELED;
                        }
                        break;
                }
        }
        for (size_t i = 0; i < n; i++)
                xfer_reset(&xs[i]);
        sym_curl_multi_cleanup(multi);
        return result;
}
