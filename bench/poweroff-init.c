/* SPDX-License-Identifier: Apache-2.0 */
/* The bare-boot baseline's /init: reboot at once, which makes QEMU (run with
 * -no-reboot and reboot=t) exit. The time to here is kernel boot to /init. */
#include <sys/reboot.h>
#include <unistd.h>

int main(void)
{
        reboot(RB_AUTOBOOT);
        return 0;
}
