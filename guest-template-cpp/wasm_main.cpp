// The C++ candidate compiled for the WebAssembly engine: the kernel, then the
// glue that exports it through the WIT world.
#include "kernel.cpp"
#include "wasm_glue.hpp"
