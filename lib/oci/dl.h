/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libcurl and libarchive, opened on first use.
 *
 * Theory of operation: the two libraries bring some 35 others with them
 * (TLS stacks, Kerberos, LDAP, ICU, compressors), and the dynamic loader
 * maps and binds all of them at the start of every process that links them:
 * about 6 ms, a third of an `msb exec`, though most commands never pull,
 * unpack or save an image. So nothing links them: lib/oci calls them through
 * the sym_* pointers declared here, which oci_dl_curl() and oci_dl_archive()
 * fill from libcurl.so.4 and libarchive.so.13 (the sonames of the headers we
 * build with) the first time an operation needs them. Each function that
 * creates a curl or archive handle calls one of them first; every other call
 * takes such a handle, so it cannot come before.
 */
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>

#include "err.h"

#define OCI_CURL_SYMBOLS(X)                                                                        \
        X(curl_easy_cleanup)                                                                       \
        X(curl_easy_escape)                                                                        \
        X(curl_easy_getinfo)                                                                       \
        X(curl_easy_init)                                                                          \
        X(curl_easy_perform)                                                                       \
        X(curl_easy_setopt)                                                                        \
        X(curl_easy_strerror)                                                                      \
        X(curl_free)                                                                               \
        X(curl_global_init)                                                                        \
        X(curl_multi_add_handle)                                                                   \
        X(curl_multi_cleanup)                                                                      \
        X(curl_multi_info_read)                                                                    \
        X(curl_multi_init)                                                                         \
        X(curl_multi_perform)                                                                      \
        X(curl_multi_poll)                                                                         \
        X(curl_multi_remove_handle)                                                                \
        X(curl_slist_append)                                                                       \
        X(curl_slist_free_all)

#define OCI_ARCHIVE_SYMBOLS(X)                                                                     \
        X(archive_entry_atime)                                                                     \
        X(archive_entry_atime_is_set)                                                              \
        X(archive_entry_atime_nsec)                                                                \
        X(archive_entry_ctime)                                                                     \
        X(archive_entry_ctime_is_set)                                                              \
        X(archive_entry_ctime_nsec)                                                                \
        X(archive_entry_filetype)                                                                  \
        X(archive_entry_free)                                                                      \
        X(archive_entry_gid)                                                                       \
        X(archive_entry_hardlink)                                                                  \
        X(archive_entry_linkify)                                                                   \
        X(archive_entry_linkresolver_free)                                                         \
        X(archive_entry_linkresolver_new)                                                          \
        X(archive_entry_linkresolver_set_strategy)                                                 \
        X(archive_entry_mode)                                                                      \
        X(archive_entry_mtime)                                                                     \
        X(archive_entry_mtime_nsec)                                                                \
        X(archive_entry_new)                                                                       \
        X(archive_entry_pathname)                                                                  \
        X(archive_entry_rdevmajor)                                                                 \
        X(archive_entry_rdevminor)                                                                 \
        X(archive_entry_set_filetype)                                                              \
        X(archive_entry_set_gid)                                                                   \
        X(archive_entry_set_gname)                                                                 \
        X(archive_entry_set_mtime)                                                                 \
        X(archive_entry_set_pathname)                                                              \
        X(archive_entry_set_perm)                                                                  \
        X(archive_entry_set_size)                                                                  \
        X(archive_entry_set_uid)                                                                   \
        X(archive_entry_set_uname)                                                                 \
        X(archive_entry_size)                                                                      \
        X(archive_entry_size_is_set)                                                               \
        X(archive_entry_sourcepath)                                                                \
        X(archive_entry_sparse_next)                                                               \
        X(archive_entry_sparse_reset)                                                              \
        X(archive_entry_symlink)                                                                   \
        X(archive_entry_uid)                                                                       \
        X(archive_entry_xattr_next)                                                                \
        X(archive_entry_xattr_reset)                                                               \
        X(archive_errno)                                                                           \
        X(archive_error_string)                                                                    \
        X(archive_read_data)                                                                       \
        X(archive_read_data_block)                                                                 \
        X(archive_read_disk_descend)                                                               \
        X(archive_read_disk_new)                                                                   \
        X(archive_read_disk_open)                                                                  \
        X(archive_read_disk_set_standard_lookup)                                                   \
        X(archive_read_disk_set_symlink_physical)                                                  \
        X(archive_read_free)                                                                       \
        X(archive_read_new)                                                                        \
        X(archive_read_next_header)                                                                \
        X(archive_read_next_header2)                                                               \
        X(archive_read_open2)                                                                      \
        X(archive_read_open_fd)                                                                    \
        X(archive_read_support_filter_gzip)                                                        \
        X(archive_read_support_filter_zstd)                                                        \
        X(archive_read_support_format_raw)                                                         \
        X(archive_read_support_format_tar)                                                         \
        X(archive_set_error)                                                                       \
        X(archive_write_close)                                                                     \
        X(archive_write_data)                                                                      \
        X(archive_write_free)                                                                      \
        X(archive_write_header)                                                                    \
        X(archive_write_new)                                                                       \
        X(archive_write_open2)                                                                     \
        X(archive_write_open_fd)                                                                   \
        X(archive_write_set_bytes_in_last_block)                                                   \
        X(archive_write_set_format_pax_restricted)

#define OCI_DL_DECLARE(f) extern __typeof__(f) *sym_##f;
OCI_CURL_SYMBOLS(OCI_DL_DECLARE)
OCI_ARCHIVE_SYMBOLS(OCI_DL_DECLARE)
#undef OCI_DL_DECLARE

/* Opens the library once per process and fills its pointers (thread-safe).
 * 0, or -ENOPKG with e saying which library is missing and why. */
int oci_dl_curl(struct oci_err *e);
int oci_dl_archive(struct oci_err *e);
