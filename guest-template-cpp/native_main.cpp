// The C++ candidate compiled as the native runner: the kernel, then the glue
// that serves one request over standard input and output.
#include "kernel.cpp"
#include "native_glue.hpp"
