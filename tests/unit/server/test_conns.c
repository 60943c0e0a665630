/* Connection limits and the request timeout (src/server/conns.c), on real
 * socket pairs: a connection past the per-address or the total limit closes
 * the one waiting longest for its request (never a busy one; the newcomer
 * itself only when all others are busy), and a request not complete within
 * the timeout is closed, counted from the connection's start or its last
 * answer.  "Closed" is what the peer sees: end of file.  Every wait is
 * bounded. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness/harness.h"
#include "server/conns.h"

#define MAXN 16

typedef struct pair {
	int ours, peer;
	tlm_conn *c;
} pair;

static pair pairs[MAXN];
static size_t npairs;
static tlm_conns *cs;

static int teardown(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < npairs; i++)
		tlm_conns_close(cs, pairs[i].c);
	tlm_conns_free(cs);
	cs = NULL;
	for (i = 0; i < npairs; i++) {
		close(pairs[i].ours);
		close(pairs[i].peer);
	}
	npairs = 0;
	return 0;
}

/* A new connection from 10.0.0.<host>; returns its index. */
static size_t open_from(int host)
{
	struct sockaddr_in sa;
	int sv[2];
	pair *p = &pairs[npairs];

	assert_true(npairs < MAXN);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(0x0a000000u | (unsigned)host);
	p->ours = sv[0];
	p->peer = sv[1];
	p->c = tlm_conns_open(cs, p->ours, (struct sockaddr *)&sa);
	assert_non_null(p->c);
	tlm_h_sleep_ms(2); /* distinct start times: "oldest" is well defined */
	return npairs++;
}

/* Has the peer of pair i seen the end (waiting at most ms)? */
static int closed(size_t i, int ms)
{
	struct pollfd p = { pairs[i].peer, POLLIN, 0 };
	char b;

	if (poll(&p, 1, ms) <= 0)
		return 0;
	return recv(pairs[i].peer, &b, 1, MSG_DONTWAIT) == 0;
}

static void test_per_ip_limit(void **state)
{
	size_t a1, a2, a3, b1, a4;
	(void)state;

	cs = tlm_conns_new(100, 3, 60000);
	assert_non_null(cs);
	a1 = open_from(1);
	a2 = open_from(1);
	b1 = open_from(2);
	a3 = open_from(1);
	assert_int_equal(tlm_conns_count(cs), 4);
	assert_false(closed(a1, 0));
	a4 = open_from(1); /* the 4th of 10.0.0.1: its oldest goes */
	assert_true(closed(a1, 1000));
	assert_false(closed(a2, 0));
	assert_false(closed(a3, 0));
	assert_false(closed(a4, 0));
	assert_false(closed(b1, 0)); /* older, but another address */
	assert_int_equal(tlm_conns_count(cs), 4);
}

static void test_total_limit(void **state)
{
	size_t c[5];
	int i;
	(void)state;

	cs = tlm_conns_new(4, 0, 60000);
	assert_non_null(cs);
	for (i = 0; i < 4; i++)
		c[i] = open_from(i + 1);
	c[4] = open_from(9);
	assert_true(closed(c[0], 1000));
	for (i = 1; i < 5; i++)
		assert_false(closed(c[i], 0));
	assert_int_equal(tlm_conns_count(cs), 4);
}

/* A busy connection is never the one closed; the one waiting longest for
 * its request is, a keep-alive one that was just answered being young. */
static void test_busy_and_answered_kept(void **state)
{
	size_t c0, c1, c2, c3, c4;
	(void)state;

	cs = tlm_conns_new(3, 0, 60000);
	assert_non_null(cs);
	c0 = open_from(1);
	c1 = open_from(2);
	c2 = open_from(3);
	tlm_conns_reading(cs, pairs[c0].c);
	tlm_conns_busy(cs, pairs[c0].c);
	tlm_conns_idle(cs, pairs[c1].c); /* answered just now: waits since now */
	c3 = open_from(4);
	assert_true(closed(c2, 1000)); /* waiting longest: since its start */
	assert_false(closed(c0, 0));
	assert_false(closed(c1, 0));
	tlm_conns_busy(cs, pairs[c1].c);
	tlm_conns_busy(cs, pairs[c3].c);
	c4 = open_from(5); /* everyone else is busy: the newcomer goes */
	assert_true(closed(c4, 1000));
	assert_false(closed(c0, 0));
	assert_false(closed(c1, 0));
	assert_false(closed(c3, 0));
}

/* Slow headers or body: closed once the timeout is past, however steadily
 * bytes come; busy: never; answered: the clock starts again. */
static void test_request_timeout(void **state)
{
	size_t waiting, reading, busy, answered;
	int64_t t0;
	(void)state;

	cs = tlm_conns_new(100, 0, 400);
	assert_non_null(cs);
	t0 = tlm_h_now_ms();
	waiting = open_from(1);
	reading = open_from(1);
	busy = open_from(1);
	answered = open_from(1);
	tlm_conns_reading(cs, pairs[reading].c);
	tlm_conns_busy(cs, pairs[busy].c);
	tlm_h_sleep_ms(250);
	tlm_conns_idle(cs, pairs[answered].c);
	assert_true(closed(waiting, 2000));
	assert_true(closed(reading, 2000));
	assert_true(tlm_h_now_ms() - t0 >= 400);
	assert_false(closed(answered, 0)); /* its 400 ms started 250 ms later */
	assert_true(closed(answered, 2000));
	assert_false(closed(busy, 500));
	assert_int_equal(tlm_conns_count(cs), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_per_ip_limit, teardown),
		cmocka_unit_test_teardown(test_total_limit, teardown),
		cmocka_unit_test_teardown(test_busy_and_answered_kept, teardown),
		cmocka_unit_test_teardown(test_request_timeout, teardown),
	};

	return cmocka_run_group_tests_name("server.conns", tests, NULL, NULL);
}
