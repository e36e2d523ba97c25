/* splice.c: the proxy's byte relay for established keep-alive connections. */
#ifndef IPVS_SPLICE_H
#define IPVS_SPLICE_H
#include <node_api.h>

/* Adds spliceInit, spliceStart, spliceStop and spliceInfo to `exports`. */
napi_status splice_define(napi_env env, napi_value exports);

#endif
