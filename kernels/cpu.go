package kernels

import (
	"os"

	"golang.org/x/sys/cpu"
)

// hasAVX2FMA reports whether the AVX2+FMA assembly kernels may run. It is
// false under the purego build tag (see cpu_purego.go) and on other CPUs.
var hasAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA && !purego

// hasAVX512 reports whether the AVX-512 GEMM micro-kernel may run (the CPU
// has AVX-512F and the OS saves the ZMM state; x/sys/cpu checks both). The
// environment variable GLIMPSE_NO_AVX512=1 turns it off, to compare.
var hasAVX512 = hasAVX2FMA && cpu.X86.HasAVX512F && os.Getenv("GLIMPSE_NO_AVX512") == ""

// UsingAssembly reports whether the AVX2+FMA assembly paths are in use.
func UsingAssembly() bool { return hasAVX2FMA }
