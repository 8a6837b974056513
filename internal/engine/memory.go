package engine

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// HeapAllowance is the Go heap SetMemoryLimit allows beyond what is live
// after loading and what the engines account for: vision and decoding
// workspaces, request messages and decoded images in flight.
const HeapAllowance = 96 << 20

// SetMemoryLimit sets the Go runtime's soft memory limit from the server's
// memory accounting, once its models are loaded: the heap live now (after
// a collection: embeddings and other weights kept on the heap; packed
// weights live outside the heap, see kernels.OffHeapBytes), plus accounted
// (the sum of the engines' KV budgets and the image cache's bytes), plus
// HeapAllowance. The collector then paces on real garbage as usual (GOGC)
// and works harder only when the heap nears what the budgets allow, so
// garbage never grows to the size of the live data. If the GOMEMLIMIT
// environment variable is set, the limit is left as the user chose. It
// returns the limit in force.
func SetMemoryLimit(accounted int64) int64 {
	if _, set := os.LookupEnv("GOMEMLIMIT"); set {
		return debug.SetMemoryLimit(-1)
	}
	limit := HeapLive() + max(accounted, 0) + HeapAllowance
	debug.SetMemoryLimit(limit)
	return limit
}

// HeapLive returns the bytes of live heap objects after a full collection.
func HeapLive() int64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	return int64(s[0].Value.Uint64())
}
