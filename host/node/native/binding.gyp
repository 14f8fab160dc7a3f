{
  "targets": [
    {
      "target_name": "softroce_sockopt",
      "sources": ["sockopt.c", "udpsock.c", "datapath.c", "icrc_id.c", "relay.c"],
      "cflags": ["-O2", "-Wall"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
