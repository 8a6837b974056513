package weights

import (
	"fmt"
	"strings"

	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
)

// Params gives the backward passes (vision/vit, text/bert) the fp32
// weights a model was loaded from and the gradient buffers to accumulate
// into, by full tensor name (the Load prefix included, e.g.
// "vision_model.encoder.layers.0.mlp.fc1.weight"). A trainer keeps its
// master weights there and rebuilds the model from them after each
// optimiser step.
type Params interface {
	// Weight returns the tensor's values (row-major, as in the checkpoint).
	Weight(name string) []float32
	// Grad returns the tensor's gradient buffer (same length), or nil when
	// the tensor is not trained (frozen): its gradient is then skipped.
	Grad(name string) []float32
}

// MemParams is Params held in memory: mutable fp32 copies of tensors with
// zeroed gradients (W, G and Shapes by tensor name).
type MemParams struct {
	W, G   map[string][]float32
	Shapes map[string][]int
}

// CopyParams copies every tensor of ck whose name starts with prefix.
func CopyParams(ck *checkpoint.Checkpoint, prefix string) (*MemParams, error) {
	p := &MemParams{W: map[string][]float32{}, G: map[string][]float32{}, Shapes: map[string][]int{}}
	for _, n := range ck.Names() {
		if !strings.HasPrefix(n, prefix) {
			continue
		}
		v, err := ck.Float32(n)
		if err != nil {
			return nil, fmt.Errorf("weights: copying %s: %w", n, err)
		}
		p.W[n] = append([]float32(nil), v...)
		p.G[n] = make([]float32, len(v))
		p.Shapes[n] = ck.Shape(n)
	}
	return p, nil
}

// Weight returns the named tensor's values (nil if absent).
func (p *MemParams) Weight(name string) []float32 { return p.W[name] }

// Grad returns the named tensor's gradient buffer (nil if absent).
func (p *MemParams) Grad(name string) []float32 { return p.G[name] }

// Checkpoint returns an in-memory checkpoint over the current weights (not
// copied), for loading a model from them.
func (p *MemParams) Checkpoint() *checkpoint.Checkpoint {
	ts := map[string]checkpoint.MemTensor{}
	for n, w := range p.W {
		ts[n] = checkpoint.MemTensor{Shape: p.Shapes[n], Data: w}
	}
	return checkpoint.FromFloat32(ts)
}
