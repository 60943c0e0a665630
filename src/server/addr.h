/* Addresses of the built-in control plane: the --listen text, what it binds
 * to and how that is shown, and whether a request's Host and Origin name
 * this machine's loopback (the DNS rebinding check, docs/serve.md). */
#ifndef TLM_SERVER_ADDR_H
#define TLM_SERVER_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

#include "telemachy/error.h"

typedef struct tlm_addr {
	struct sockaddr_storage ss;
	socklen_t len;
} tlm_addr;

/* Parses "HOST:PORT": HOST an IPv4 address, a bracketed IPv6 address
 * ("[::1]") or a host name (resolved; its first address is taken), PORT
 * 0..65535 in decimal (0: any free port).  TLM_EINVALID, err naming the
 * --listen text and what is wrong, for anything else. */
int tlm_addr_parse(tlm_addr *out, const char *listen, tlm_error *err);

/* 127.0.0.0/8, ::1, or ::ffff:127.x.y.z. */
int tlm_addr_is_loopback(const tlm_addr *a);

/* 0.0.0.0 or :: (every address of the machine). */
int tlm_addr_is_wildcard(const tlm_addr *a);

unsigned short tlm_addr_port(const tlm_addr *a);

/* The address as it is bound: "127.0.0.1:8080", "[::]:8080". */
void tlm_addr_format(const tlm_addr *a, char *buf, size_t size);

/* The base URL a client on this machine uses: "http://127.0.0.1:8080",
 * "http://[::1]:8080"; a wildcard address is reached through the loopback
 * address of its family. */
void tlm_addr_url(const tlm_addr *a, char *buf, size_t size);

/* Does a Host header value name this machine's loopback: "localhost",
 * "127.x.y.z" or "[::1]", each with or without ":PORT" (any port), names
 * compared without regard to case.  NULL (no header) is not. */
int tlm_addr_host_is_loopback(const char *host);

/* Does an Origin header value name a loopback origin: "http://" or
 * "https://" and a loopback Host as above, nothing after it ("null" is not). */
int tlm_addr_origin_is_loopback(const char *origin);

#endif
