/* Addresses: --listen parsing, the bound address as text, loopback names
 * (see addr.h). */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "server/addr.h"

#define HOST_MAX 255 /* a DNS name's longest text form */

/* "0".."65535", decimal digits only: getaddrinfo would take "99999" and
 * bind port 99999 % 65536, a port nobody asked for. */
static int parse_port(const char *s, unsigned *out)
{
	unsigned v = 0;
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i == 5)
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (i == 0 || v > 65535)
		return -1;
	*out = v;
	return 0;
}

int tlm_addr_parse(tlm_addr *out, const char *listen, tlm_error *err)
{
	char host[HOST_MAX + 1], service[8];
	const char *colon = strrchr(listen, ':');
	struct addrinfo hints, *ai = NULL;
	unsigned port;
	size_t n;
	int rc;

	memset(out, 0, sizeof(*out));
	if (colon == NULL || colon == listen)
		return tlm_error_set(
			err, TLM_EINVALID,
			"--listen wants HOST:PORT (e.g. 127.0.0.1:8080), got \"%.300s\"", listen);
	if (parse_port(colon + 1, &port) != 0)
		return tlm_error_set(
			err, TLM_EINVALID,
			"--listen \"%.300s\": the port must be a number from 0 to 65535", listen);
	n = (size_t)(colon - listen);
	if (n > HOST_MAX)
		return tlm_error_set(err, TLM_EINVALID, "--listen \"%.300s\": the host is too long",
				     listen);
	memcpy(host, listen, n);
	host[n] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if (host[0] == '[') {
		/* [::1]: an IPv6 address, nothing else */
		if (n < 3 || host[n - 1] != ']')
			return tlm_error_set(
				err, TLM_EINVALID,
				"--listen \"%.300s\": a '[' must enclose an IPv6 address", listen);
		memmove(host, host + 1, n - 2);
		host[n - 2] = '\0';
		hints.ai_family = AF_INET6;
		hints.ai_flags |= AI_NUMERICHOST;
	} else if (strchr(host, ':') != NULL) {
		return tlm_error_set(err, TLM_EINVALID,
				     "--listen \"%.300s\": an IPv6 address goes in brackets, e.g. "
				     "[::1]:8080",
				     listen);
	}
	snprintf(service, sizeof(service), "%u", port);
	rc = getaddrinfo(host, service, &hints, &ai);
	if (rc != 0)
		return tlm_error_set(
			err, TLM_EINVALID, "--listen \"%.300s\": %s \"%s\": %s", listen,
			hints.ai_family == AF_INET6 ? "not an IPv6 address" : "cannot resolve",
			host, gai_strerror(rc));
	memcpy(&out->ss, ai->ai_addr, ai->ai_addrlen);
	out->len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static int v4_loopback(const struct in_addr *a)
{
	return (ntohl(a->s_addr) >> 24) == 127;
}

static int v6_loopback(const struct in6_addr *a)
{
	if (IN6_IS_ADDR_V4MAPPED(a))
		return a->s6_addr[12] == 127;
	return IN6_IS_ADDR_LOOPBACK(a);
}

int tlm_addr_is_loopback(const tlm_addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return v4_loopback(&((const struct sockaddr_in *)&a->ss)->sin_addr);
	if (a->ss.ss_family == AF_INET6)
		return v6_loopback(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
	return 0;
}

int tlm_addr_is_wildcard(const tlm_addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	if (a->ss.ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
	return 0;
}

unsigned short tlm_addr_port(const tlm_addr *a)
{
	if (a->ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

/* The numeric host, IPv6 in brackets; in a URL an IPv6 zone's '%' must be
 * written "%25" (RFC 6874). */
static void host_text(const tlm_addr *a, int for_url, char *buf, size_t size)
{
	char host[NI_MAXHOST] = "?", *pct;

	if (getnameinfo((const struct sockaddr *)&a->ss, a->len, host, sizeof(host), NULL, 0,
			NI_NUMERICHOST) != 0)
		snprintf(host, sizeof(host), "?");
	if (a->ss.ss_family != AF_INET6) {
		snprintf(buf, size, "%s", host);
		return;
	}
	pct = strchr(host, '%');
	if (for_url && pct != NULL) {
		*pct = '\0';
		snprintf(buf, size, "[%s%%25%s]", host, pct + 1);
	} else {
		snprintf(buf, size, "[%s]", host);
	}
}

void tlm_addr_format(const tlm_addr *a, char *buf, size_t size)
{
	char host[NI_MAXHOST + 8];

	host_text(a, 0, host, sizeof(host));
	snprintf(buf, size, "%s:%u", host, tlm_addr_port(a));
}

void tlm_addr_url(const tlm_addr *a, char *buf, size_t size)
{
	char host[NI_MAXHOST + 8];

	if (tlm_addr_is_wildcard(a))
		snprintf(host, sizeof(host), "%s",
			 a->ss.ss_family == AF_INET6 ? "[::1]" : "127.0.0.1");
	else
		host_text(a, 1, host, sizeof(host));
	snprintf(buf, size, "http://%s:%u", host, tlm_addr_port(a));
}

/* The host part of a Host value (the port, if any, checked and dropped)
 * into buf; -1 when malformed. */
static int split_host(const char *value, char *buf, size_t size)
{
	const char *end, *colon;
	unsigned port;
	size_t n;

	if (value[0] == '[') {
		end = strchr(value, ']');
		if (end == NULL)
			return -1;
		end++;
	} else {
		end = value + strcspn(value, ":");
	}
	colon = end;
	if (*colon == ':' && parse_port(colon + 1, &port) != 0)
		return -1;
	if (*colon != ':' && *colon != '\0')
		return -1;
	n = (size_t)(end - value);
	if (n == 0 || n >= size)
		return -1;
	memcpy(buf, value, n);
	buf[n] = '\0';
	return 0;
}

int tlm_addr_host_is_loopback(const char *host)
{
	char name[HOST_MAX + 1];
	struct in_addr v4;
	struct in6_addr v6;
	size_t n;

	if (host == NULL || split_host(host, name, sizeof(name)) != 0)
		return 0;
	if (strcasecmp(name, "localhost") == 0)
		return 1;
	if (name[0] == '[') {
		n = strlen(name);
		if (name[n - 1] != ']')
			return 0;
		name[n - 1] = '\0';
		return inet_pton(AF_INET6, name + 1, &v6) == 1 && v6_loopback(&v6);
	}
	return inet_pton(AF_INET, name, &v4) == 1 && v4_loopback(&v4);
}

int tlm_addr_origin_is_loopback(const char *origin)
{
	if (origin == NULL)
		return 0;
	if (strncasecmp(origin, "http://", 7) == 0)
		return strchr(origin + 7, '/') == NULL && tlm_addr_host_is_loopback(origin + 7);
	if (strncasecmp(origin, "https://", 8) == 0)
		return strchr(origin + 8, '/') == NULL && tlm_addr_host_is_loopback(origin + 8);
	return 0;
}
