{
  "targets": [
    {
      "target_name": "aead",
      "sources": ["aead.c", "kdf.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "ldflags": ["-Wl,-z,now"]
    }
  ]
}
