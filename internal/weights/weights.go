// Package weights binds a model's layers to the tensors of a checkpoint: it
// reads tensors under a name prefix, checks each shape against what the
// model's configuration implies, and builds the kernels' layers from them,
// with errors that name the full Hugging Face tensor name. Every text and
// vision model package loads through it.
package weights

import (
	"fmt"

	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
	"github.com/glimpse-vlm/glimpse/kernels"
)

// Binder reads the tensors of one model from a checkpoint.
type Binder struct {
	Ck *checkpoint.Checkpoint
	// Prefix is prepended to every name (e.g. "vision_model.", "decoder.").
	Prefix string
	// Model starts every error message (e.g. "gpt2").
	Model string
	// Config, if not empty, describes the configuration in shape errors
	// (e.g. "config n_embd=768, n_inner=3072") so a user can tell a
	// mismatched config.json from a damaged file.
	Config string
}

// View returns the tensor Prefix+name with the given shape as the
// checkpoint's own slice: valid while the checkpoint is open, not to be
// written. Use it for matrices that are packed (copied) at once.
func (b *Binder) View(name string, shape ...int) ([]float32, error) {
	full := b.Prefix + name
	if !b.Ck.Has(full) {
		return nil, fmt.Errorf("%s: missing tensor %q (expected shape %v; is the prefix %q right?)", b.Model, full, shape, b.Prefix)
	}
	w, err := b.Ck.Float32(full, shape...)
	if err != nil {
		if b.Config != "" {
			return nil, fmt.Errorf("%s (%s): %w", b.Model, b.Config, err)
		}
		return nil, fmt.Errorf("%s: %w", b.Model, err)
	}
	return w, nil
}

// Tensor is View copied, so the model does not depend on the checkpoint's
// memory.
func (b *Binder) Tensor(name string, shape ...int) ([]float32, error) {
	w, err := b.View(name, shape...)
	if err != nil {
		return nil, err
	}
	return append([]float32(nil), w...), nil
}

// Linear binds an nn.Linear: name.weight (out, in) and, if bias,
// name.bias (out).
func (b *Binder) Linear(name string, out, in int, bias bool) (*kernels.Linear, error) {
	w, err := b.View(name+".weight", out, in)
	if err != nil {
		return nil, err
	}
	var bs []float32
	if bias {
		if bs, err = b.Tensor(name+".bias", out); err != nil {
			return nil, err
		}
	}
	return kernels.NewLinear(w, out, in, bs), nil
}

// Conv1D binds GPT-2's Conv1D: name.weight (in, out) and name.bias (out).
func (b *Binder) Conv1D(name string, in, out int) (*kernels.Linear, error) {
	w, err := b.View(name+".weight", in, out)
	if err != nil {
		return nil, err
	}
	bs, err := b.Tensor(name+".bias", out)
	if err != nil {
		return nil, err
	}
	return kernels.NewLinearInOut(w, in, out, bs), nil
}

// Fused binds several nn.Linears of the same shape (out, in, with bias) as
// one Linear whose output is their concatenation, in the order given (e.g.
// separate query, key and value projections as one).
func (b *Binder) Fused(names []string, out, in int) (*kernels.Linear, error) {
	w := make([]float32, 0, len(names)*out*in)
	bs := make([]float32, 0, len(names)*out)
	for _, n := range names {
		pw, err := b.View(n+".weight", out, in)
		if err != nil {
			return nil, err
		}
		pb, err := b.View(n+".bias", out)
		if err != nil {
			return nil, err
		}
		w = append(w, pw...)
		bs = append(bs, pb...)
	}
	return kernels.NewLinear(w, len(names)*out, in, bs), nil
}

// Norm reads a LayerNorm's name.weight and name.bias (d each), copied.
func (b *Binder) Norm(name string, d int) (gamma, beta []float32, err error) {
	if gamma, err = b.Tensor(name+".weight", d); err != nil {
		return nil, nil, err
	}
	if beta, err = b.Tensor(name+".bias", d); err != nil {
		return nil, nil, err
	}
	return gamma, beta, nil
}
