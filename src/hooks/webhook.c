/* A webhook: the event POSTed as JSON, signed with HMAC-SHA256 when the
 * hook has a secret_file, retried with back-off (docs/hooks.md, "Webhooks"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "hooks/hooks_internal.h"
#include "util/esc.h"
#include "util/redact.h"
#include "util/secret.h"

#define RESPONSE_MAX    ((size_t)4096) /* of an answer's body, read and ignored */
#define ATTEMPT_MAX_MS  10000L         /* one attempt, at most */
#define CONNECT_MAX_MS  5000L
#define BACKOFF_BASE_MS 500L /* before the second attempt; doubled after each */
#define BACKOFF_MAX_MS  8000L

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
	size_t *got = ctx;

	(void)p;
	*got += size * n;
	/* Past the cap the transfer ends: an answer is not worth more. */
	return *got > RESPONSE_MAX ? 0 : size * n;
}

static int progress(void *ctx, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	(void)a;
	(void)b;
	(void)c;
	(void)d;
	return atomic_load((const atomic_int *)ctx) ? 1 : 0;
}

/* "sha256=<hex>" of body under the key in path; 0, or TLM_ERROR with why. */
static int sign(const char *path, const char *body, char *hdr, size_t cap, char *why, size_t whycap)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int len = 0, i;
	tlm_error err = TLM_ERROR_INIT;
	char *key = NULL;
	size_t n;

	if (tlm_secret_read_key_file(&key, path, &err) != 0) {
		snprintf(why, whycap, "the secret_file: %s", err.message);
		return TLM_ERROR;
	}
	if (HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)body, strlen(body),
		 mac, &len) == NULL) {
		tlm_secret_free(key);
		snprintf(why, whycap, "could not compute the signature");
		return TLM_ERROR;
	}
	tlm_secret_free(key);
	n = (size_t)snprintf(hdr, cap, "X-Telemachy-Signature: sha256=");
	for (i = 0; i < len && n + 3 <= cap; i++)
		n += (size_t)snprintf(hdr + n, cap - n, "%02x", mac[i]);
	return 0;
}

/* Sleeps ms unless abort_now is set first; 1 when it was. */
static int nap(long ms, const atomic_int *abort_now)
{
	while (ms > 0 && !atomic_load(abort_now)) {
		long step = ms < 50 ? ms : 50;
		struct timespec ts = { 0, step * 1000000L };

		nanosleep(&ts, NULL);
		ms -= step;
	}
	return atomic_load(abort_now) != 0;
}

static long jitter(long ms)
{
	unsigned int r = 0;

	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		r = (unsigned int)time(NULL);
	/* Half to all of it: receivers that were down do not see every
	 * sender again at the same moment. */
	return ms / 2 + (long)(r % (unsigned int)(ms / 2 + 1));
}

/* 0, or -1 when out of memory (*list unchanged then). */
static int add_header(struct curl_slist **list, const char *h)
{
	struct curl_slist *n = curl_slist_append(*list, h);

	if (n == NULL)
		return -1;
	*list = n;
	return 0;
}

int tlm_hooks__webhook(const tlm_spec_hook *hk, const tlm_hooks_item *it,
		       const atomic_int *abort_now, int *attempts, char *why, size_t whycap)
{
	long long deadline = tlm_hooks__now_ms() + hk->timeout_seconds * 1000L;
	long backoff = BACKOFF_BASE_MS;
	char sig[128], ev_hdr[96], id_hdr[TLM_HOOKS_ID_MAX + 32], url[256];
	struct curl_slist *hdrs = NULL;
	CURL *c = NULL;
	int rc = TLM_ERROR;

	*attempts = 0;
	tlm_redact_url(url, sizeof(url), hk->url);
	if (hk->secret_file != NULL &&
	    sign(hk->secret_file, it->json, sig, sizeof(sig), why, whycap))
		return TLM_ERROR;
	snprintf(ev_hdr, sizeof(ev_hdr), "X-Telemachy-Event: %s", tlm_hook_event_name(it->event));
	/* The id is built of names the spec validated; a control character
	 * could still split a header, so such an id is not sent as one. */
	if (strpbrk(it->id, "\r\n") == NULL)
		snprintf(id_hdr, sizeof(id_hdr), "X-Telemachy-Event-Id: %s", it->id);
	else
		snprintf(id_hdr, sizeof(id_hdr), "X-Telemachy-Event-Id;");
	if ((c = curl_easy_init()) == NULL || add_header(&hdrs, "Content-Type: application/json") ||
	    add_header(&hdrs, ev_hdr) || add_header(&hdrs, id_hdr) ||
	    (hk->secret_file != NULL && add_header(&hdrs, sig)) || add_header(&hdrs, "Expect:")) {
		snprintf(why, whycap, "out of memory");
		goto done;
	}
	curl_easy_setopt(c, CURLOPT_URL, hk->url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, it->json);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(it->json));
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect is an answer, not a hop */
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "telemachy-hooks/" TLM_VERSION);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)abort_now);
	for (;;) {
		long long left = deadline - tlm_hooks__now_ms();
		long status = 0, wait, t = left < ATTEMPT_MAX_MS ? (long)left : ATTEMPT_MAX_MS;
		size_t got = 0;
		CURLcode cc;
		int retry;

		if (t <= 0 || atomic_load(abort_now))
			break;
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &got);
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, t);
		curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
				 t < CONNECT_MAX_MS ? t : CONNECT_MAX_MS);
		(*attempts)++;
		cc = curl_easy_perform(c);
		if (cc == CURLE_WRITE_ERROR)
			cc = CURLE_OK; /* our cap on the answer's body */
		if (cc == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (cc == CURLE_OK && status >= 200 && status < 300) {
			rc = 0;
			break;
		}
		if (cc != CURLE_OK)
			snprintf(why, whycap, "POST %s: %s", url, curl_easy_strerror(cc));
		else
			snprintf(why, whycap, "POST %s: HTTP %ld", url, status);
		/* No answer, or one that says "later": worth another attempt;
		 * any other answer is final. */
		retry = cc != CURLE_OK ? cc != CURLE_ABORTED_BY_CALLBACK
				       : status == 429 || (status >= 500 && status < 600);
		if (!retry || *attempts >= TLM_HOOKS_ATTEMPTS_MAX)
			break;
		wait = jitter(backoff);
		left = deadline - tlm_hooks__now_ms();
		if (left <= wait || nap(wait, abort_now))
			break; /* no time for another attempt after the wait */
		backoff = backoff * 2 < BACKOFF_MAX_MS ? backoff * 2 : BACKOFF_MAX_MS;
	}
	if (rc != 0 && *attempts > 0)
		snprintf(why + strlen(why), whycap - strlen(why), " (%d attempt%s)", *attempts,
			 *attempts == 1 ? "" : "s");
	else if (rc != 0 && *attempts == 0)
		snprintf(why, whycap, "POST %s: no time left for an attempt", url);
done:
	curl_slist_free_all(hdrs);
	if (c != NULL)
		curl_easy_cleanup(c);
	return rc;
}
