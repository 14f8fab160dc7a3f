{
  "targets": [
    {
      "target_name": "softroce_sockopt",
      "sources": ["sockopt.c"],
      "cflags": ["-O2", "-Wall"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
