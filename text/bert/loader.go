package bert

import (
	"fmt"

	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
	"github.com/glimpse-vlm/glimpse/kernels"
)

// loader reads tensors with errors naming the HF tensor and the shape the
// configuration implies.
type loader struct {
	ck *checkpoint.Checkpoint
}

func (ld *loader) tensor(name string, shape ...int) ([]float32, error) {
	if !ld.ck.Has(name) {
		return nil, fmt.Errorf("bert: missing tensor %q (expected shape %v from the config)", name, shape)
	}
	w, err := ld.ck.Float32(name, shape...)
	if err != nil {
		return nil, fmt.Errorf("bert: %w (the config implies shape %v)", err, shape)
	}
	return w, nil
}

func (ld *loader) linear(name string, out, in int) (*kernels.Linear, error) {
	w, err := ld.tensor(name+".weight", out, in)
	if err != nil {
		return nil, err
	}
	b, err := ld.tensor(name+".bias", out)
	if err != nil {
		return nil, err
	}
	return newLinear(w, out, in, b), nil
}

// fused loads several Linears of the same input width (each out×in) as one
// whose output is their concatenation.
func (ld *loader) fused(parts []string, out, in int) (*kernels.Linear, error) {
	w := make([]float32, 0, len(parts)*out*in)
	b := make([]float32, 0, len(parts)*out)
	for _, p := range parts {
		pw, err := ld.tensor(p+".weight", out, in)
		if err != nil {
			return nil, err
		}
		pb, err := ld.tensor(p+".bias", out)
		if err != nil {
			return nil, err
		}
		w = append(w, pw...)
		b = append(b, pb...)
	}
	return newLinear(w, len(parts)*out, in, b), nil
}

func (ld *loader) layerNorm(name string, d int, eps float32) (LayerNorm, error) {
	g, err := ld.tensor(name+".weight", d)
	if err != nil {
		return LayerNorm{}, err
	}
	b, err := ld.tensor(name+".bias", d)
	if err != nil {
		return LayerNorm{}, err
	}
	return LayerNorm{Gamma: g, Beta: b, Eps: eps}, nil
}

func newLinear(w []float32, out, in int, b []float32) *kernels.Linear {
	return kernels.NewLinear(w, out, in, b)
}
