// Every kernel header, for no_cuda.cpp (stub generation) and for tests/benchmarks. New kernel
// headers must be added here so that CPU-only builds define their CUDA stand-ins.
#pragma once
#include "kernels/adam.h"
#include "kernels/bn.h"
#include "kernels/bnstat_loss.h"
#include "kernels/channel.h"
#include "kernels/conv.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/loss.h"
#include "kernels/philox.h"
#include "kernels/quant.h"
#include "kernels/reduce.h"
#include "kernels/spatial.h"
#include "kernels/stats.h"
#include "kernels/swing.h"
