/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sandbox's network: the gateway of lib/net set up from config.json's
 * "network", its link to QEMU's NIC, and the boot parameters that tell the
 * agent how to configure the guest side (docs/network.md, docs/agent.md).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "sbconfig.h"
#include "lib/core/json.h"
#include "lib/net/net.h"
#include "lib/vm/vm.h"

struct sv_net;

/* Denials go here as one line ("denied tcp ... by rule ..."). */
typedef void (*sv_net_log_fn)(const char *line, void *userdata);

/* Builds the gateway for sandbox slot (its addresses come from the pool by
 * slot), binds the published ports and connects the gateway to one end of
 * a socketpair whose other end is for QEMU (sv_net_nic()). -EADDRINUSE
 * when a published port is taken; errmsg says which. */
int sv_net_new(const struct sbconfig_net *cfg, uint32_t slot, sv_net_log_fn log, void *userdata,
               struct sv_net **ret, char *errmsg, size_t errmsg_size);
struct sv_net *sv_net_free(struct sv_net *n);

/* The NIC for vm_config.net: the QEMU end of the link. */
const struct vm_net *sv_net_nic(const struct sv_net *n);
/* Closes our copy of QEMU's end once QEMU has it. */
void sv_net_nic_handed_over(struct sv_net *n);

/* The agent's boot parameters: "msb.ip4=... msb.gw4=... ...". */
const char *sv_net_boot_params(const struct sv_net *n);

/* The gateway's epoll fd (nested in the supervisor's loop) and its work. */
int sv_net_fd(const struct sv_net *n);
void sv_net_run(struct sv_net *n);

/* Counters and addresses as a JSON object, for status answers. */
void sv_net_write_status(const struct sv_net *n, struct json_writer *w);
