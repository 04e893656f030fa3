/* version.c -- the library's version. */
#include "synccf.h"

const char *synccf_version(void) { return SYNCCF_VERSION; }
