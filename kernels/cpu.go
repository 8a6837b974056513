package kernels

import "golang.org/x/sys/cpu"

// hasAVX2FMA reports whether the AVX2+FMA assembly kernels may run. It is
// false under the purego build tag (see cpu_purego.go) and on other CPUs.
var hasAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA && !purego

// UsingAssembly reports whether the AVX2+FMA assembly paths are in use.
func UsingAssembly() bool { return hasAVX2FMA }
