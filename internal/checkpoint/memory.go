package checkpoint

import (
	"encoding/binary"
	"math"
)

// FromFloat32 builds an in-memory checkpoint from float32 tensors (name →
// values with shape), for benchmarks and tests that construct a model of a
// real configuration with random weights, without a file.
func FromFloat32(tensors map[string]MemTensor) *Checkpoint {
	c := &Checkpoint{dir: "(memory)", tensors: map[string]tensorRef{}}
	for name, t := range tensors {
		b := make([]byte, 4*len(t.Data))
		for i, v := range t.Data {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		c.tensors[name] = tensorRef{file: "(memory)", dtype: "F32", shape: append([]int(nil), t.Shape...), data: b}
	}
	return c
}

// MemTensor is one float32 tensor for FromFloat32.
type MemTensor struct {
	Shape []int
	Data  []float32
}
