/* Each probe only where its feature is: natively, what this CPU has. */
#if defined(__SSE__)
#define PROBE_IF___SSE__(...) PROBE_DO(__VA_ARGS__)
#else
#define PROBE_IF___SSE__(...)
#endif
#if defined(__SSE2__)
#define PROBE_IF___SSE2__(...) PROBE_DO(__VA_ARGS__)
#else
#define PROBE_IF___SSE2__(...)
#endif
#if defined(__SSE3__)
#define PROBE_IF___SSE3__(...) PROBE_DO(__VA_ARGS__)
#else
#define PROBE_IF___SSE3__(...)
#endif
#if defined(__SSSE3__)
#define PROBE_IF___SSSE3__(...) PROBE_DO(__VA_ARGS__)
#else
#define PROBE_IF___SSSE3__(...)
#endif
#if defined(__SSE4_1__)
#define PROBE_IF___SSE4_1__(...) PROBE_DO(__VA_ARGS__)
#else
#define PROBE_IF___SSE4_1__(...)
#endif
#if defined(__POPCNT__)
#define PROBE_IF___POPCNT__(...) PROBE_DO(__VA_ARGS__)
#else
#define PROBE_IF___POPCNT__(...)
#endif
#if defined(__LZCNT__)
#define PROBE_IF___LZCNT__(...) PROBE_DO(__VA_ARGS__)
#else
#define PROBE_IF___LZCNT__(...)
#endif
#if defined(__BMI__)
#define PROBE_IF___BMI__(...) PROBE_DO(__VA_ARGS__)
#else
#define PROBE_IF___BMI__(...)
#endif
#if defined(__FMA__)
#define PROBE_IF___FMA__(...) PROBE_DO(__VA_ARGS__)
#else
#define PROBE_IF___FMA__(...)
#endif
#if defined(__AVX__)
#define PROBE_IF___AVX__(...) PROBE_DO(__VA_ARGS__)
#else
#define PROBE_IF___AVX__(...)
#endif
#if defined(__AVX2__)
#define PROBE_IF___AVX2__(...) PROBE_DO(__VA_ARGS__)
#else
#define PROBE_IF___AVX2__(...)
#endif
#if defined(__F16C__)
#define PROBE_IF___F16C__(...) PROBE_DO(__VA_ARGS__)
#else
#define PROBE_IF___F16C__(...)
#endif
#if defined(__AVX512F__)
#define PROBE_IF___AVX512F__(...) PROBE_DO(__VA_ARGS__)
#else
#define PROBE_IF___AVX512F__(...)
#endif
#if defined(__AVX512BW__)
#define PROBE_IF___AVX512BW__(...) PROBE_DO(__VA_ARGS__)
#else
#define PROBE_IF___AVX512BW__(...)
#endif
#if defined(__AVX512VNNI__)
#define PROBE_IF___AVX512VNNI__(...) PROBE_DO(__VA_ARGS__)
#else
#define PROBE_IF___AVX512VNNI__(...)
#endif
#if defined(__AVX512VL__)
#define PROBE_IF___AVX512VL__(...) PROBE_DO(__VA_ARGS__)
#else
#define PROBE_IF___AVX512VL__(...)
#endif
#if defined(__AVX512VPOPCNTDQ__)
#define PROBE_IF___AVX512VPOPCNTDQ__(...) PROBE_DO(__VA_ARGS__)
#else
#define PROBE_IF___AVX512VPOPCNTDQ__(...)
#endif
