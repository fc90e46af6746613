/* SPDX-License-Identifier: Apache-2.0 */
#include "dl.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#define OCI_DL_DEFINE(f) __typeof__(f) *sym_##f;
OCI_CURL_SYMBOLS(OCI_DL_DEFINE)
OCI_ARCHIVE_SYMBOLS(OCI_DL_DEFINE)
#undef OCI_DL_DEFINE

/* One library: its soname, the package that ships it, and the outcome of
 * the one attempt to open it. */
struct lib {
        const char *soname;
        const char *package;
        pthread_once_t once;
        char error[256]; /* empty once opened */
};

static struct lib curl_lib = {"libcurl.so.4", "libcurl4", PTHREAD_ONCE_INIT, ""};
static struct lib archive_lib = {"libarchive.so.13", "libarchive13", PTHREAD_ONCE_INIT, ""};

/* Resolves one symbol into *slot; false (with lib->error set) when missing. */
static bool resolve(struct lib *lib, void *handle, const char *name, void **slot)
{
        *slot = dlsym(handle, name);
        if (!*slot)
                snprintf(lib->error, sizeof(lib->error), "%s has no %s", lib->soname, name);
        return *slot != NULL;
}

/* dlsym() returns void *; each pointer is filled through a void ** to its
 * slot, which POSIX guarantees works for function pointers. */
#define OCI_DL_RESOLVE(f) ok = ok && resolve(lib, handle, #f, (void **)&sym_##f);

static void open_lib(struct lib *lib, bool is_curl)
{
        void *handle = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
        bool ok = true;

        if (!handle) {
                snprintf(lib->error, sizeof(lib->error), "%s", dlerror());
                return;
        }
        if (is_curl) {
                OCI_CURL_SYMBOLS(OCI_DL_RESOLVE)
        } else {
                OCI_ARCHIVE_SYMBOLS(OCI_DL_RESOLVE)
        }
        if (ok && is_curl && sym_curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                snprintf(lib->error, sizeof(lib->error), "libcurl failed to initialise");
                ok = false;
        }
        if (!ok)
                dlclose(handle);
}

static void open_curl(void)
{
        open_lib(&curl_lib, true);
}

static void open_archive(void)
{
        open_lib(&archive_lib, false);
}

static int outcome(const struct lib *lib, struct oci_err *e)
{
        if (!lib->error[0])
                return 0;
        return oci_err_set(e, -ENOPKG, "cannot load %s (install the %s package): %s", lib->soname,
                           lib->package, lib->error);
}

int oci_dl_curl(struct oci_err *e)
{
        pthread_once(&curl_lib.once, open_curl);
        return outcome(&curl_lib, e);
}

int oci_dl_archive(struct oci_err *e)
{
        pthread_once(&archive_lib.once, open_archive);
        return outcome(&archive_lib, e);
}
