// generate/attention_avx2: the tiled attention kernel at 8 floats per vector, compiled with
// -mavx2 -mfma and called only after quant::detected_isa() reports AVX2.
#define RAGD_ATTN_W 8
#define RAGD_ATTN_NAME attend_avx2
#include "generate/attention_kernels.h"
