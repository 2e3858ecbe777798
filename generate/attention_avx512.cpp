// generate/attention_avx512: the tiled attention kernel at 16 floats per vector, compiled
// with -mavx512f and called only after quant::detected_isa() reports AVX512.
#define RAGD_ATTN_W 16
#define RAGD_ATTN_NAME attend_avx512
#include "generate/attention_kernels.h"
