/* The device worker's waits and yields (waiter.c): adds them to the addon's exports. */
#ifndef SOFTROCE_WAITER_H
#define SOFTROCE_WAITER_H
#include <node_api.h>

void waiter_init(napi_env env, napi_value exports);

#endif
