{
  "targets": [
    {
      "target_name": "cao2_torch",
      "sources": ["src/addon.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node libtorch.mjs include)"
      ],
      "defines": ["NAPI_EXPERIMENTAL", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-O2", "-fexceptions", "-frtti", "-Wno-unused-parameter", "<!@(node libtorch.mjs cflags)"],
      "libraries": [
        "-L<!@(node libtorch.mjs libdir)",
        "-Wl,-rpath,<!@(node libtorch.mjs libdir)",
        "-Wl,--no-as-needed",
        "<!@(node libtorch.mjs libs)",
        "-Wl,--as-needed"
      ]
    }
  ]
}
