/* SPDX-License-Identifier: Apache-2.0 */
/* A shared library that loads but defines none of libarchive's symbols. */
int msb_fake_library_marker(void);

int msb_fake_library_marker(void)
{
        return 0;
}
