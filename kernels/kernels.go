// Package kernels holds Glimpse's CPU compute kernels: float32 GEMM and GEMV,
// and the transformer operations (LayerNorm, softmax, GELU variants, fused
// bias+activation, residual add, embedding gather and scaled-dot-product
// attention). It is the only package with clever loops; the model code calls
// it and reads like the paper. It imports nothing else of Glimpse.
//
// All matrices are row-major float32 slices with an explicit leading
// dimension (the distance, in elements, between the starts of two rows).
package kernels
