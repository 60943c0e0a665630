/* Options structs' layout versions (util/opts.h). */
#include "util/opts.h"

int tlm_opts_version_check(unsigned got, unsigned want, const char *what, const char *macro,
			   tlm_error *err)
{
	if (got == want)
		return 0;
	return tlm_error_set(err, TLM_EINVALID,
			     "%s options of version %u; this library knows version %u: start "
			     "from %s",
			     what, got, want, macro);
}
