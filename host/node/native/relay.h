/* The gateway's native relay (relay.c): adds Relay to the addon's exports. */
#ifndef SOFTROCE_RELAY_H
#define SOFTROCE_RELAY_H
#include <node_api.h>

void relay_init(napi_env env, napi_value exports);

#endif
