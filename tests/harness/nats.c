/* Harness: a real nats-server process and a libnats subscriber for tests. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness/harness.h"
#include "harness/nats.h"

#define NATS_READY_MS   5000
#define NATS_STOP_MS    5000
#define NATS_MAX_ARGS   32
#define NATS_PORT_TRIES 3

struct tlm_h_sub {
	natsConnection *nc;
	natsSubscription *sub;
};

/* The nats-server binary, or NULL: $TLM_NATS_SERVER, PATH, then the sbin
 * directories Debian uses but a non-root PATH may lack. */
static const char *find_server(char *buf, size_t size)
{
	static const char *const extra[] = { "/usr/sbin", "/usr/local/sbin", "/usr/bin", NULL };
	const char *env = getenv("TLM_NATS_SERVER");
	const char *path = getenv("PATH");
	size_t i;

	if (env != NULL && *env != '\0')
		return access(env, X_OK) == 0 ? env : NULL;
	while (path != NULL && *path != '\0') {
		size_t n = strcspn(path, ":");

		snprintf(buf, size, "%.*s/nats-server", (int)n, path);
		if (n > 0 && access(buf, X_OK) == 0)
			return buf;
		path += n + (path[n] == ':');
	}
	for (i = 0; extra[i] != NULL; i++) {
		snprintf(buf, size, "%s/nats-server", extra[i]);
		if (access(buf, X_OK) == 0)
			return buf;
	}
	return NULL;
}

/* In the child: never returns. */
static void exec_server(const char *bin, unsigned short port, const char *const *extra,
			pid_t parent)
{
	const char *argv[NATS_MAX_ARGS + 8];
	char portstr[8];
	int n = 0, fd;

	/* A crashed test must not leave servers behind holding ports. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127); /* the parent died before prctl */
	if (getenv("TLM_TEST_VERBOSE") == NULL) {
		fd = open("/dev/null", O_RDWR);
		if (fd >= 0) {
			dup2(fd, STDIN_FILENO);
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
			if (fd > STDERR_FILENO)
				close(fd);
		}
	}
	snprintf(portstr, sizeof(portstr), "%u", (unsigned)port);
	argv[n++] = bin;
	argv[n++] = "-a";
	argv[n++] = "127.0.0.1";
	argv[n++] = "-p";
	argv[n++] = portstr;
	while (extra != NULL && *extra != NULL && n < NATS_MAX_ARGS + 5)
		argv[n++] = *extra++;
	argv[n] = NULL;
	execv(bin, (char *const *)argv);
	_exit(127);
}

/* 1 when something on port accepted us and greeted with INFO. */
static int server_greets(unsigned short port)
{
	struct sockaddr_in a;
	struct pollfd p;
	char buf[8] = { 0 };
	ssize_t n = 0;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok = 0;

	if (fd < 0)
		return 0;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
		p.fd = fd;
		p.events = POLLIN;
		if (poll(&p, 1, 1000) == 1)
			n = recv(fd, buf, sizeof(buf), 0);
		ok = n >= 5 && memcmp(buf, "INFO ", 5) == 0;
	}
	close(fd);
	return ok;
}

/* 1 ready, 0 the child exited (e.g. the port was taken), -1 timed out. */
static int wait_ready(pid_t pid, unsigned short port)
{
	long deadline = tlm_h_now_ms() + NATS_READY_MS;
	int status;

	while (tlm_h_now_ms() < deadline) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return 0;
		if (server_greets(port))
			return 1;
		tlm_h_sleep_ms(20);
	}
	return -1;
}

static pid_t start_once(const char *bin, unsigned short port, const char *const *extra)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	int ready;

	assert_true(pid >= 0);
	if (pid == 0)
		exec_server(bin, port, extra, parent);
	ready = wait_ready(pid, port);
	if (ready == 1)
		return pid;
	if (ready < 0)
		tlm_h_nats_kill(pid);
	return -1;
}

pid_t tlm_h_nats_start_args(unsigned short *port, const char *const *extra)
{
	char buf[4096];
	const char *bin = find_server(buf, sizeof(buf));
	int pick = *port == 0, i;
	pid_t pid = -1;

	if (bin == NULL)
		fail_msg("nats-server not found (install the nats-server package or set "
			 "TLM_NATS_SERVER)");
	for (i = 0; i < (pick ? NATS_PORT_TRIES : 1) && pid < 0; i++) {
		if (pick)
			*port = tlm_h_free_port();
		pid = start_once(bin, *port, extra);
	}
	if (pid < 0)
		fail_msg("nats-server did not start on 127.0.0.1:%u within %d ms", (unsigned)*port,
			 NATS_READY_MS);
	return pid;
}

pid_t tlm_h_nats_start(unsigned short *port)
{
	return tlm_h_nats_start_args(port, NULL);
}

static void reap(pid_t pid, long timeout_ms)
{
	long deadline = tlm_h_now_ms() + timeout_ms;

	while (tlm_h_now_ms() < deadline) {
		pid_t r = waitpid(pid, NULL, WNOHANG);

		if (r == pid || (r < 0 && errno == ECHILD))
			return;
		tlm_h_sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

void tlm_h_nats_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	reap(pid, NATS_STOP_MS);
}

void tlm_h_nats_kill(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

pid_t tlm_h_nats_restart(pid_t pid, unsigned short port)
{
	tlm_h_nats_stop(pid);
	return tlm_h_nats_start(&port);
}

char *tlm_h_nats_url(char *buf, size_t size, unsigned short port)
{
	snprintf(buf, size, "nats://127.0.0.1:%u", (unsigned)port);
	return buf;
}

/* ---- subscriber ---- */

static natsStatus sub_connect(tlm_h_sub *s, unsigned short port)
{
	char url[32];
	natsOptions *o = NULL;
	natsStatus st = natsOptions_Create(&o);

	if (st == NATS_OK)
		st = natsOptions_SetURL(o, tlm_h_nats_url(url, sizeof(url), port));
	if (st == NATS_OK)
		st = natsOptions_SetName(o, "telemachy-test-sub");
	if (st == NATS_OK)
		st = natsOptions_SetMaxReconnect(o, -1);
	if (st == NATS_OK)
		st = natsOptions_SetReconnectWait(o, 100);
	if (st == NATS_OK)
		st = natsConnection_Connect(&s->nc, o);
	natsOptions_Destroy(o);
	return st;
}

tlm_h_sub *tlm_h_sub_new(unsigned short port, const char *subject)
{
	tlm_h_sub *s = calloc(1, sizeof(*s));
	natsStatus st;

	assert_non_null(s);
	st = sub_connect(s, port);
	if (st == NATS_OK)
		st = natsConnection_SubscribeSync(&s->sub, s->nc, subject);
	/* A test checks that every event arrives: never drop on our side. */
	if (st == NATS_OK)
		st = natsSubscription_SetPendingLimits(s->sub, -1, -1);
	if (st == NATS_OK)
		st = natsConnection_FlushTimeout(s->nc, 5000);
	if (st != NATS_OK) {
		tlm_h_sub_free(s);
		fail_msg("NATS subscriber on port %u, %s: %s", (unsigned)port, subject,
			 natsStatus_GetText(st));
	}
	return s;
}

static int prefix_match(const char *subject, const char *prefix)
{
	return prefix == NULL || strncmp(subject, prefix, strlen(prefix)) == 0;
}

int tlm_h_sub_wait(tlm_h_sub *s, const char *subject_prefix, int timeout_ms, char **subject_out,
		   json_t **payload_out)
{
	long deadline = tlm_h_now_ms() + timeout_ms;
	natsMsg *m = NULL;

	for (;;) {
		long left = deadline - tlm_h_now_ms();

		if (left <= 0 || natsSubscription_NextMsg(&m, s->sub, left) != NATS_OK)
			return -1;
		if (prefix_match(natsMsg_GetSubject(m), subject_prefix))
			break;
		natsMsg_Destroy(m);
	}
	if (subject_out != NULL) {
		*subject_out = strdup(natsMsg_GetSubject(m));
		assert_non_null(*subject_out);
	}
	if (payload_out != NULL) {
		int len = natsMsg_GetDataLength(m);

		*payload_out = json_loadb(natsMsg_GetData(m), len > 0 ? (size_t)len : 0, 0, NULL);
	}
	natsMsg_Destroy(m);
	return 0;
}

int tlm_h_sub_ready(tlm_h_sub *s, int timeout_ms)
{
	long deadline = tlm_h_now_ms() + timeout_ms;

	while (tlm_h_now_ms() < deadline) {
		/* The flush's PONG comes after the server processed the SUB that
		 * libnats resends on reconnect. */
		if (natsConnection_Status(s->nc) == NATS_CONN_STATUS_CONNECTED &&
		    natsConnection_FlushTimeout(s->nc, 500) == NATS_OK)
			return 0;
		tlm_h_sleep_ms(20);
	}
	return -1;
}

void tlm_h_sub_publish(tlm_h_sub *s, const char *subject, const void *data, size_t len)
{
	natsStatus st = natsConnection_Publish(s->nc, subject, data, (int)len);

	if (st == NATS_OK)
		st = natsConnection_FlushTimeout(s->nc, 5000);
	if (st != NATS_OK)
		fail_msg("NATS publish on %s: %s", subject, natsStatus_GetText(st));
}

void tlm_h_sub_publish_str(tlm_h_sub *s, const char *subject, const char *data)
{
	tlm_h_sub_publish(s, subject, data, strlen(data));
}

void tlm_h_sub_free(tlm_h_sub *s)
{
	if (s == NULL)
		return;
	natsSubscription_Destroy(s->sub);
	natsConnection_Destroy(s->nc);
	free(s);
}
