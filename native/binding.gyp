{
  "targets": [
    {
      "target_name": "ipvs_native",
      "sources": ["ipvs_native.c", "splice.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "conditions": [["OS!='linux'", {"type": "none", "sources": []}]]
    }
  ]
}
