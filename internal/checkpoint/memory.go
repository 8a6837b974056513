package checkpoint

import "fmt"

// FromFloat32 builds an in-memory checkpoint from float32 tensors (name →
// values with shape), for benchmarks and tests that construct a model of a
// real configuration with random weights, without a file. The Data slices
// are used in place (not copied). A tensor whose Data length does not match
// its shape makes Float32 return an error naming it.
func FromFloat32(tensors map[string]MemTensor) *Checkpoint {
	c := &Checkpoint{dir: "(memory)", tensors: map[string]*tensor{}}
	for name, t := range tensors {
		mt := &tensor{name: name, file: "(memory)", dtype: "F32", shape: append([]int(nil), t.Shape...)}
		n := 1
		for _, d := range t.Shape {
			if d < 0 {
				n = -1
				break
			}
			n *= d
		}
		switch {
		case n != len(t.Data):
			mt.err = fmt.Errorf("checkpoint (memory): tensor %q has %d values for shape %v", name, len(t.Data), t.Shape)
		case t.Data == nil:
			mt.f32 = []float32{}
		default:
			mt.f32 = t.Data
		}
		c.tensors[name] = mt
	}
	return c
}

// MemTensor is one float32 tensor for FromFloat32.
type MemTensor struct {
	Shape []int     // dimensions, outermost first
	Data  []float32 // row-major values; len = product of Shape
}
