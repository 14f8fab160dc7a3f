/* The native batched datapath (datapath.c): adds Datapath and patchIcrcId to the addon's exports. */
#ifndef SOFTROCE_DATAPATH_H
#define SOFTROCE_DATAPATH_H
#include <node_api.h>

void datapath_init(napi_env env, napi_value exports);

#endif
