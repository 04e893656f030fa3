/* tunnel.h -- cloudflared beside the receiver, supervised. */
#ifndef SYNCCF_TUNNEL_H
#define SYNCCF_TUNNEL_H

#include <stddef.h>

#include "config.h"
#include "store.h"

struct tunnel;
/* Starts cloudflared for the receiver on 127.0.0.1:port. NULL with a message
 * (saying how to install it) when the binary is missing. */
struct tunnel *tunnel_start(struct store *st, const struct config *cfg, unsigned port, char *err, size_t errlen);
void tunnel_stop(struct tunnel *t);

#endif
