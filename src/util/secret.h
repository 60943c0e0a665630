/* API keys as the commands take them (flag, environment, key file): one set
 * of rules for `serve` and for the engine's client, so that a key one side
 * accepts is one the other side can send.  Internal to the library. */
#ifndef TLM_UTIL_SECRET_H
#define TLM_UTIL_SECRET_H

#include "telemachy/error.h"

#define TLM_SECRET_KEY_MAX 4096 /* bytes; a key file's first line included */

/* 0 when key is usable as an API key; TLM_EINVALID otherwise, err saying
 * why, starting with `what` ("--api-key", "AGAMEMNON_API_KEY", ...).  The
 * message never contains the key, nor any part of it.
 *
 * Refused: NULL or empty, only white space, white space at either end,
 * a control character, more than TLM_SECRET_KEY_MAX bytes.  An empty key
 * would turn auth off while the operator believes it on; white space at the
 * ends is stripped from HTTP header values (RFC 9110 §5.5), so no client
 * could ever send such a key; a control character cannot travel in a
 * header at all. */
int tlm_secret_check_key(const char *key, const char *what, tlm_error *err);

/* Reads the key from the first line of the file at path ("\n" or "\r\n"
 * ends it) and checks it as tlm_secret_check_key does.  *out (caller frees;
 * NULL on error) gets the key.  TLM_ENOTFOUND / TLM_ERROR when the file
 * cannot be read, TLM_EINVALID for a bad key; err names the file, never
 * its content. */
int tlm_secret_read_key_file(char **out, const char *path, tlm_error *err);

/* The same for a NATS token (NATS_TOKEN_FILE, serve's --nats-token-file):
 * the same rules, messages that call it a token. */
int tlm_secret_read_token_file(char **out, const char *path, tlm_error *err);

/* Once a secret is in this process's memory: no core file is written
 * (RLIMIT_CORE 0) and the process is not dumpable (PR_SET_DUMPABLE 0: no
 * core, and other processes of the same user cannot ptrace it or read its
 * memory through /proc).  A crash must not put the key on disk.  Idempotent;
 * failures are ignored (nothing better can be done). */
void tlm_secret_protect_process(void);

/* *out (caller frees with tlm_secret_free) gets a fresh random key of 64
 * hex characters (32 bytes from OpenSSL's RAND_bytes). */
int tlm_secret_random_key(char **out, tlm_error *err);

/* Wipes and frees a key; NULL is a no-op. */
void tlm_secret_free(char *key);

#endif
