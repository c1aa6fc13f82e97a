// Temporal shift (TSM / MSTSM) on (N*T, C, H, W) tensors, fp32 and fp16.
//
// One general gather serves every variant. Output channel oc of frame t reads input channel src[oc] of
// frame t + off[oc], or zero when that frame lies outside the clip:
//     y[n, t, oc, s] = (0 <= t + off[oc] < T) ? x[n, t + off[oc], src[oc], s] : 0
// TSM: the first C/8 channels take t+1, the next C/8 take t-1, the rest off = 0. MSTSM appends extra output
// channels (C_out > C_in) holding two-unit shifts. The backward pass is the same gather through the
// inverse map (CSR-like: for input channel c, the (oc, off) pairs that read it), so both directions are
// deterministic (no atomics).
//
// Plain CUDA C++ (no cooperative groups, no C++17 library use): builds with CUDA 11.4 (JetPack 5, sm_72)
// as well as CUDA 13. Launchers are extern "C" taking raw device pointers and a stream, called through
// ctypes from Python (see docs/kernels.md).

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

namespace {

// VEC consecutive spatial elements per thread, moved as one aligned vector load/store when possible.
template <typename T, int VEC>
struct alignas(sizeof(T) * VEC) Vec {
  T v[VEC];
};

// Flat index over (n, t, c, s) -> its coordinates (nt = n * t_len + t).
struct Pos {
  int64_t s, nt, n;
  int c, t;
};

__device__ __forceinline__ Pos split(int64_t i, int64_t inner, int channels, int t_len) {
  Pos p;
  p.s = i % inner;
  const int64_t rest = i / inner;
  p.c = (int)(rest % channels);
  p.nt = rest / channels;
  p.t = (int)(p.nt % t_len);
  p.n = p.nt / t_len;
  return p;
}

template <typename T, int VEC>
__global__ void shift_forward(const T* __restrict__ x, T* __restrict__ y, const int* __restrict__ src,
                              const int* __restrict__ off, int n_clips, int t_len, int c_in, int c_out,
                              int hw) {
  const int64_t hw_v = hw / VEC;
  const int64_t total = (int64_t)n_clips * t_len * c_out * hw_v;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
       i += (int64_t)blockDim.x * gridDim.x) {
    const Pos p = split(i, hw_v, c_out, t_len);
    const int64_t s = p.s, nt = p.nt, n = p.n;
    const int oc = p.c;
    const int ts = p.t + off[oc];
    Vec<T, VEC> out;
    if (ts >= 0 && ts < t_len) {
      out = reinterpret_cast<const Vec<T, VEC>*>(x + ((n * t_len + ts) * c_in + src[oc]) * (int64_t)hw)[s];
    } else {
#pragma unroll
      for (int k = 0; k < VEC; ++k) out.v[k] = T(0.0f);
    }
    reinterpret_cast<Vec<T, VEC>*>(y + (nt * c_out + oc) * (int64_t)hw)[s] = out;
  }
}

template <typename T>
__device__ __forceinline__ float to_f(T v) { return (float)v; }
template <>
__device__ __forceinline__ float to_f<__half>(__half v) { return __half2float(v); }

// grad_x[n, t, c, s] = sum over (oc, off) reading c of grad_y[n, t - off, oc, s] (when t - off is in range)
template <typename T>
__global__ void shift_backward(const T* __restrict__ gy, T* __restrict__ gx, const int* __restrict__ inv_ptr,
                               const int* __restrict__ inv_oc, const int* __restrict__ inv_off, int n_clips,
                               int t_len, int c_in, int c_out, int hw) {
  const int64_t total = (int64_t)n_clips * t_len * c_in * hw;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
       i += (int64_t)blockDim.x * gridDim.x) {
    const Pos p = split(i, hw, c_in, t_len);
    const int64_t s = p.s, n = p.n;
    const int c = p.c, t = p.t;
    float acc = 0.0f;
    for (int k = inv_ptr[c]; k < inv_ptr[c + 1]; ++k) {
      const int to = t - inv_off[k];
      if (to >= 0 && to < t_len) acc += to_f(gy[((n * t_len + to) * c_out + inv_oc[k]) * (int64_t)hw + s]);
    }
    gx[i] = T(acc);
  }
}

// In place, only for specs where every channel stays where it is (src[c] == c, c_out == c_in): one thread
// owns a (clip, channel, position) column and walks time in the order that reads each frame before it is
// overwritten (ascending for off > 0, descending for off < 0).
template <typename T>
__global__ void shift_inplace(T* __restrict__ x, const int* __restrict__ off, int n_clips, int t_len, int c,
                              int hw) {
  const int64_t total = (int64_t)n_clips * c * hw;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
       i += (int64_t)blockDim.x * gridDim.x) {
    const int64_t s = i % hw;
    const int ch = (int)((i / hw) % c);
    const int64_t n = i / ((int64_t)hw * c);
    const int d = off[ch];
    if (d == 0) continue;
    const int64_t step = (int64_t)c * hw;
    T* col = x + n * t_len * step + (int64_t)ch * hw + s;
    if (d > 0) {
      for (int t = 0; t < t_len; ++t) col[t * step] = (t + d < t_len) ? col[(t + d) * step] : T(0.0f);
    } else {
      for (int t = t_len - 1; t >= 0; --t) col[t * step] = (t + d >= 0) ? col[(t + d) * step] : T(0.0f);
    }
  }
}

int grid_for(int64_t work, int block) {
  int64_t g = (work + block - 1) / block;
  const int64_t cap = 65535LL * 8;
  return (int)(g < 1 ? 1 : (g > cap ? cap : g));
}

template <typename T, int VEC>
int launch_forward(const void* x, void* y, const int* src, const int* off, int n, int t, int c_in, int c_out,
                   int hw, cudaStream_t stream) {
  const int block = 256;
  const int64_t work = (int64_t)n * t * c_out * (hw / VEC);
  shift_forward<T, VEC><<<grid_for(work, block), block, 0, stream>>>((const T*)x, (T*)y, src, off, n, t, c_in,
                                                                     c_out, hw);
  return (int)cudaGetLastError();
}

// Widest vector that divides hw and matches the pointers' alignment (16 bytes at most).
template <typename T>
int forward_dispatch(const void* x, void* y, const int* src, const int* off, int n, int t, int c_in, int c_out,
                     int hw, cudaStream_t stream) {
  const int max_vec = 16 / (int)sizeof(T);
  const bool aligned = (((uintptr_t)x | (uintptr_t)y) % 16) == 0;
  if (aligned && hw % max_vec == 0) {
    return sizeof(T) == 4 ? launch_forward<T, 4>(x, y, src, off, n, t, c_in, c_out, hw, stream)
                          : launch_forward<T, 8>(x, y, src, off, n, t, c_in, c_out, hw, stream);
  }
  if (aligned && hw % 2 == 0) return launch_forward<T, 2>(x, y, src, off, n, t, c_in, c_out, hw, stream);
  return launch_forward<T, 1>(x, y, src, off, n, t, c_in, c_out, hw, stream);
}

template <typename T>
int backward_launch(const void* gy, void* gx, const int* inv_ptr, const int* inv_oc, const int* inv_off, int n,
                    int t, int c_in, int c_out, int hw, cudaStream_t stream) {
  const int block = 256;
  shift_backward<T><<<grid_for((int64_t)n * t * c_in * hw, block), block, 0, stream>>>(
      (const T*)gy, (T*)gx, inv_ptr, inv_oc, inv_off, n, t, c_in, c_out, hw);
  return (int)cudaGetLastError();
}

template <typename T>
int inplace_launch(void* x, const int* off, int n, int t, int c, int hw, cudaStream_t stream) {
  const int block = 256;
  shift_inplace<T><<<grid_for((int64_t)n * c * hw, block), block, 0, stream>>>((T*)x, off, n, t, c, hw);
  return (int)cudaGetLastError();
}

}  // namespace

// dtype: 0 = float32, 1 = float16. n = number of clips, t = frames per clip. Returns a cudaError_t.
extern "C" int temporal_shift_forward(int dtype, const void* x, void* y, const int* src, const int* off, int n,
                                      int t, int c_in, int c_out, int hw, void* stream) {
  cudaStream_t s = (cudaStream_t)stream;
  return dtype == 0 ? forward_dispatch<float>(x, y, src, off, n, t, c_in, c_out, hw, s)
                    : forward_dispatch<__half>(x, y, src, off, n, t, c_in, c_out, hw, s);
}

extern "C" int temporal_shift_backward(int dtype, const void* gy, void* gx, const int* inv_ptr,
                                       const int* inv_oc, const int* inv_off, int n, int t, int c_in, int c_out,
                                       int hw, void* stream) {
  cudaStream_t s = (cudaStream_t)stream;
  return dtype == 0 ? backward_launch<float>(gy, gx, inv_ptr, inv_oc, inv_off, n, t, c_in, c_out, hw, s)
                    : backward_launch<__half>(gy, gx, inv_ptr, inv_oc, inv_off, n, t, c_in, c_out, hw, s);
}

extern "C" int temporal_shift_inplace(int dtype, void* x, const int* off, int n, int t, int c, int hw,
                                      void* stream) {
  cudaStream_t s = (cudaStream_t)stream;
  return dtype == 0 ? inplace_launch<float>(x, off, n, t, c, hw, s) : inplace_launch<__half>(x, off, n, t, c, hw, s);
}
