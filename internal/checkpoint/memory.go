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

// GenTensor is one float32 tensor for FromFunc: its shape, and Fill, which
// writes its values (product of Shape of them) into a zeroed slice. Fill
// must be deterministic (every call gives the same values) and safe for
// concurrent use.
type GenTensor struct {
	Shape []int
	Fill  func(dst []float32)
}

// FromFunc builds an in-memory checkpoint whose float32 tensors are
// generated on demand: every Float32 call allocates a new slice and fills
// it, and nothing is cached, so a model built from it never holds more of
// the source than the tensor it is packing (e.g. random weights of a real
// model size for benchmarks). Shapes with a negative dimension and nil
// Fill functions are errors that Float32 reports for that tensor.
func FromFunc(tensors map[string]GenTensor) *Checkpoint {
	c := &Checkpoint{dir: "(memory)", tensors: map[string]*tensor{}}
	for name, g := range tensors {
		mt := &tensor{name: name, file: "(memory)", dtype: "F32", shape: append([]int(nil), g.Shape...), gen: g.Fill}
		for _, d := range g.Shape {
			if d < 0 {
				mt.err = fmt.Errorf("checkpoint (memory): tensor %q has a negative dimension in shape %v", name, g.Shape)
			}
		}
		if g.Fill == nil && mt.err == nil {
			mt.err = fmt.Errorf("checkpoint (memory): tensor %q has no Fill function", name)
		}
		c.tensors[name] = mt
	}
	return c
}
