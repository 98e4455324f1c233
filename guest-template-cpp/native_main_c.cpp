// The native runner of a C candidate (kernel.c, compiled on its own as C).
#include "c_kernel.hpp"
#include "native_glue.hpp"
