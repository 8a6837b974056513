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
// memory (the checkpoint's pages of it are then released, see Evict).
func (b *Binder) Tensor(name string, shape ...int) ([]float32, error) {
	w, err := b.View(name, shape...)
	if err != nil {
		return nil, err
	}
	out := append([]float32(nil), w...)
	b.Evict(name)
	return out, nil
}

// Evict releases the checkpoint's file pages of tensors Prefix+name once
// they have been packed or copied (checkpoint.Checkpoint.Evict: a hint
// that never changes values), so that a loaded model does not hold both
// its packed weights and the file's pages. Linear, Conv1D, Fused, Tensor
// and Norm do it themselves; a caller that packs a View calls it after.
func (b *Binder) Evict(names ...string) {
	full := make([]string, len(names))
	for i, n := range names {
		full[i] = b.Prefix + n
	}
	b.Ck.Evict(full...)
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
	l := kernels.NewLinear(w, out, in, bs)
	b.Evict(name + ".weight")
	return l, nil
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
	l := kernels.NewLinearInOut(w, in, out, bs)
	b.Evict(name + ".weight")
	return l, nil
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
		b.Evict(n+".weight", n+".bias")
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
