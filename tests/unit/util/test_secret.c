/* API key rules shared by serve and the engine (src/util/secret.c): empty,
 * blank, padded, control characters and over-long keys are refused, with a
 * message that never shows the key; the key file's first line is the key. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "util/secret.h"

#define MARK "Zq7xKEYPART"

/* key must be refused, with a message starting with what and holding
 * neither the key's distinctive part nor (when long enough) the key. */
static void refused(const char *key, const char *why)
{
	tlm_error err = TLM_ERROR_INIT;

	assert_int_equal(tlm_secret_check_key(key, "AGAMEMNON_API_KEY", &err), TLM_EINVALID);
	assert_int_equal(strncmp(err.message, "AGAMEMNON_API_KEY: ", 19), 0);
	if (strstr(err.message, why) == NULL)
		fail_msg("message \"%s\" does not say \"%s\"", err.message, why);
	assert_null(strstr(err.message, MARK));
}

static void test_refused(void **state)
{
	char *long_key = malloc(TLM_SECRET_KEY_MAX + 2);
	(void)state;

	refused(NULL, "empty");
	refused("", "empty");
	refused(" ", "blank");
	refused("\t \t", "blank");
	refused("\r\n", "blank");
	refused(" " MARK, "white space");
	refused(MARK "\t", "white space");
	refused(MARK "\n", "control character");
	refused("a" MARK "\x01z", "control character");
	refused(MARK "\x7f", "control character");
	assert_non_null(long_key);
	memset(long_key, 'k', TLM_SECRET_KEY_MAX + 1);
	long_key[TLM_SECRET_KEY_MAX + 1] = '\0';
	refused(long_key, "longer than 4096");
	free(long_key);
}

static void test_accepted(void **state)
{
	char *max_key = malloc(TLM_SECRET_KEY_MAX + 1);
	tlm_error err = TLM_ERROR_INIT;
	(void)state;

	assert_int_equal(tlm_secret_check_key("k", "x", &err), 0);
	assert_int_equal(tlm_secret_check_key("with inner space", "x", &err), 0);
	assert_int_equal(tlm_secret_check_key("tab\tinside", "x", &err), 0);
	assert_int_equal(tlm_secret_check_key("caf\xc3\xa9", "x", &err), 0);
	assert_non_null(max_key);
	memset(max_key, 'k', TLM_SECRET_KEY_MAX);
	max_key[TLM_SECRET_KEY_MAX] = '\0';
	assert_int_equal(tlm_secret_check_key(max_key, "x", NULL), 0);
	free(max_key);
}

/* Writes len bytes of text to a new temporary file; caller unlinks. */
static void write_file(char *path, const char *text, size_t len)
{
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

/* The key read from a file holding text, or NULL (err filled). */
static char *from_file(const char *text, size_t len, tlm_error *err, int *rc)
{
	char path[] = "/tmp/tlm-secret-XXXXXX";
	char *key = NULL;

	write_file(path, text, len);
	*rc = tlm_secret_read_key_file(&key, path, err);
	unlink(path);
	return key;
}

static void test_key_file(void **state)
{
	static const struct {
		const char *text, *key;
	} good[] = {
		{ MARK "\n", MARK },
		{ MARK "\r\n", MARK },
		{ MARK, MARK },
		{ MARK "\nsecond line ignored\n", MARK },
	};
	static const char *const bad[] = { "", "\n", "   \n" MARK "\n", "\t\r\n", " " MARK "\n" };
	tlm_error err = TLM_ERROR_INIT;
	char *key, *big;
	size_t i;
	int rc;
	(void)state;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		key = from_file(good[i].text, strlen(good[i].text), &err, &rc);
		assert_int_equal(rc, 0);
		assert_string_equal(key, good[i].key);
		free(key);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		key = from_file(bad[i], strlen(bad[i]), &err, &rc);
		assert_int_equal(rc, TLM_EINVALID);
		assert_null(key);
		assert_non_null(strstr(err.message, "API key file /tmp/tlm-secret-"));
		assert_null(strstr(err.message, MARK));
	}
	/* The longest key fits, one byte more does not (not even cut short). */
	big = malloc(TLM_SECRET_KEY_MAX + 3);
	assert_non_null(big);
	memset(big, 'k', TLM_SECRET_KEY_MAX + 2);
	big[TLM_SECRET_KEY_MAX] = '\n';
	key = from_file(big, TLM_SECRET_KEY_MAX + 1, &err, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(strlen(key), TLM_SECRET_KEY_MAX);
	free(key);
	big[TLM_SECRET_KEY_MAX] = 'k';
	key = from_file(big, TLM_SECRET_KEY_MAX + 2, &err, &rc);
	assert_int_equal(rc, TLM_EINVALID);
	assert_null(key);
	assert_non_null(strstr(err.message, "longer than 4096"));
	free(big);

	assert_int_equal(tlm_secret_read_key_file(&key, "/nonexistent/tlm.key", &err),
			 TLM_ENOTFOUND);
	assert_null(key);
	assert_non_null(strstr(err.message, "/nonexistent/tlm.key"));
}

/* A NATS token file: the key's rules, messages that say token (and never
 * show it). */
static void test_token_file(void **state)
{
	char good[] = "/tmp/tlm-secret-XXXXXX", path[] = "/tmp/tlm-secret-XXXXXX";
	tlm_error err = TLM_ERROR_INIT;
	char *token = NULL;

	(void)state;
	write_file(good, MARK "\n", strlen(MARK "\n"));
	assert_int_equal(tlm_secret_read_token_file(&token, good, &err), 0);
	unlink(good);
	assert_string_equal(token, MARK);
	tlm_secret_free(token);
	write_file(path, " " MARK "\n", strlen(" " MARK "\n"));
	assert_int_equal(tlm_secret_read_token_file(&token, path, &err), TLM_EINVALID);
	assert_null(token);
	assert_non_null(strstr(err.message, "NATS token file /tmp/tlm-secret-"));
	assert_non_null(strstr(err.message, "the NATS token starts or ends with white space"));
	assert_null(strstr(err.message, "API key"));
	assert_null(strstr(err.message, MARK));
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_accepted),
		cmocka_unit_test(test_key_file),
		cmocka_unit_test(test_token_file),
	};

	return cmocka_run_group_tests_name("util.secret", tests, NULL, NULL);
}
