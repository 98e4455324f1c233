// The glue of a C candidate (kernel.c, compiled on its own as C) for the
// WebAssembly engine.
#include "c_kernel.hpp"
#include "wasm_glue.hpp"
