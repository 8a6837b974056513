// Package train trains and fine-tunes Hugging Face BLIP models in Go.
//
// There is no second model implementation: the forward passes are the
// serving code's (vision/vit's Encoder, text/bert's Model, fusion/blip's
// retrieval heads), built by the serving loaders from this package's fp32
// master weights (an in-memory checkpoint over Params) and rebuilt after
// every optimiser step. With a tape, those forwards record the activations
// that their backward passes (next to them, on kernels/backward.go's
// operations) need. This package keeps only what is training-specific:
// parameters with gradients and AdamW moments (by HF tensor name), the
// losses (captioning, VQA, ITM + ITC, a transient auxiliary vision head),
// AdamW with linear warm-up and cosine decay, global gradient-norm
// clipping, the demo data and schedule, fine-tuning, and a writer of
// standard HF checkpoint folders (config.json, model.safetensors,
// tokenizer files, preprocessor_config.json, generation_config.json).
//
// Everything is deterministic given a seed (and the number of workers):
// parameters live in ordered slices (never iterated through maps), and
// every reduction runs in a fixed order.
package train

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Param is one named tensor with its gradient and AdamW moments.
type Param struct {
	Name  string // Hugging Face tensor name
	Shape []int
	W     []float32 // values
	G     []float32 // gradient (accumulated)
	m, v  []float32 // AdamW moments
	// NoDecay excludes the tensor from weight decay (biases, norms,
	// embeddings of positions and class token).
	NoDecay bool
	// Frozen tensors are not updated.
	Frozen bool
	// Transient tensors (auxiliary training heads) are trained but not
	// saved or loaded.
	Transient bool
	// Alias, if not empty, writes this tensor a second time under another
	// name (tied weights, e.g. cls.predictions.decoder.weight).
	Alias []string
}

// Params is an ordered set of parameters. It gives the serving modules'
// backward passes (vit.Params, bert.Params) their weights and gradients by
// tensor name.
type Params struct {
	list   []*Param
	byName map[string]*Param // names and aliases
	// version counts changes of the weights (Touch); the serving modules
	// are rebuilt when it moves.
	version uint64
	// dry parameters record names and shapes only (no values): sizing.
	dry bool
}

// NewParams returns an empty set.
func NewParams() *Params { return &Params{byName: map[string]*Param{}} }

// List returns the parameters in creation order.
func (ps *Params) List() []*Param { return ps.list }

// Get returns a parameter by name (or alias), or nil.
func (ps *Params) Get(name string) *Param { return ps.byName[name] }

// Weight returns the values of the tensor name (or alias), nil if there
// is none.
func (ps *Params) Weight(name string) []float32 {
	if p := ps.byName[name]; p != nil {
		return p.W
	}
	return nil
}

// Grad returns the gradient buffer of the tensor name (or alias), nil if
// there is none or it is frozen.
func (ps *Params) Grad(name string) []float32 {
	if p := ps.byName[name]; p != nil && !p.Frozen {
		return p.G
	}
	return nil
}

// Touch records that the weights were changed in place (the optimiser, a
// load, or a test perturbing W): the next loss rebuilds the serving
// modules from them.
func (ps *Params) Touch() { ps.version++ }

// alias makes name another name of p (tied weights): it is written a
// second time under it and resolves to p.
func (ps *Params) alias(p *Param, name string) {
	p.Alias = append(p.Alias, name)
	ps.byName[name] = p
}

// shadow returns parameters that share ps's values and flags but have
// their own gradients (a worker's replica).
func (ps *Params) shadow() *Params {
	out := &Params{byName: map[string]*Param{}}
	for _, p := range ps.list {
		q := *p
		q.G = make([]float32, len(p.G))
		q.m, q.v = nil, nil
		out.list = append(out.list, &q)
		out.byName[q.Name] = &q
		for _, a := range q.Alias {
			out.byName[a] = &q
		}
	}
	return out
}

// add creates a parameter filled by init.
func (ps *Params) add(name string, shape []int, init func(i int) float32, noDecay bool) *Param {
	if _, dup := ps.byName[name]; dup {
		panic("train: duplicate parameter " + name)
	}
	n := 1
	for _, s := range shape {
		n *= s
	}
	p := &Param{Name: name, Shape: shape, NoDecay: noDecay}
	ps.list = append(ps.list, p)
	ps.byName[name] = p
	if ps.dry {
		return p
	}
	p.W, p.G = make([]float32, n), make([]float32, n)
	for i := range p.W {
		p.W[i] = init(i)
	}
	return p
}

// Normal returns an initialiser drawing N(0, std²) from r.
func Normal(r *rand.Rand, std float64) func(int) float32 {
	return func(int) float32 { return float32(r.NormFloat64() * std) }
}

// Const returns an initialiser setting every value to c.
func Const(c float32) func(int) float32 { return func(int) float32 { return c } }

// ZeroGrad clears every gradient.
func (ps *Params) ZeroGrad() {
	for _, p := range ps.list {
		clear(p.G)
	}
}

// Count is the number of trainable values.
func (ps *Params) Count() int {
	n := 0
	for _, p := range ps.list {
		n += len(p.W)
	}
	return n
}

// ClipGradNorm scales all gradients so that their global L2 norm is at
// most maxNorm (if maxNorm > 0) and returns the norm before clipping.
func (ps *Params) ClipGradNorm(maxNorm float64) float64 {
	var s float64
	for _, p := range ps.list {
		if p.Frozen {
			continue
		}
		for _, g := range p.G {
			s += float64(g) * float64(g)
		}
	}
	norm := math.Sqrt(s)
	if maxNorm > 0 && norm > maxNorm {
		c := float32(maxNorm / (norm + 1e-6))
		for _, p := range ps.list {
			for i := range p.G {
				p.G[i] *= c
			}
		}
	}
	return norm
}

// AdamW is the decoupled-weight-decay Adam optimiser with a learning-rate
// schedule: linear warm-up over Warmup steps to LR, then cosine decay to
// MinLR at Steps.
type AdamW struct {
	LR, MinLR           float64
	Beta1, Beta2, Eps   float64
	WeightDecay         float64
	Warmup, Steps, step int
}

// NewAdamW returns AdamW with PyTorch's default betas and eps.
func NewAdamW(lr, weightDecay float64, warmup, steps int) *AdamW {
	return &AdamW{LR: lr, MinLR: lr / 20, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: weightDecay, Warmup: warmup, Steps: steps}
}

// Rate is the learning rate of step (0-based).
func (o *AdamW) Rate(step int) float64 {
	if step < o.Warmup {
		return o.LR * float64(step+1) / float64(o.Warmup)
	}
	if o.Steps <= o.Warmup {
		return o.LR
	}
	t := math.Min(1, float64(step-o.Warmup)/float64(o.Steps-o.Warmup))
	return o.MinLR + 0.5*(o.LR-o.MinLR)*(1+math.Cos(math.Pi*t))
}

// Step applies one update to every non-frozen parameter from its gradient.
func (o *AdamW) Step(ps *Params) {
	defer ps.Touch()
	lr := o.Rate(o.step)
	o.step++
	b1c := 1 - math.Pow(o.Beta1, float64(o.step))
	b2c := 1 - math.Pow(o.Beta2, float64(o.step))
	b1, b2 := float32(o.Beta1), float32(o.Beta2)
	for _, p := range ps.list {
		if p.Frozen {
			continue
		}
		if p.m == nil {
			p.m, p.v = make([]float32, len(p.W)), make([]float32, len(p.W))
		}
		decay := float32(1)
		if !p.NoDecay {
			decay = float32(1 - lr*o.WeightDecay)
		}
		for i, g := range p.G {
			p.m[i] = b1*p.m[i] + (1-b1)*g
			p.v[i] = b2*p.v[i] + (1-b2)*g*g
			mh := float64(p.m[i]) / b1c
			vh := float64(p.v[i]) / b2c
			p.W[i] = p.W[i]*decay - float32(lr*mh/(math.Sqrt(vh)+o.Eps))
		}
	}
}

// checkFinite reports the first non-finite gradient.
func (ps *Params) checkFinite() error {
	for _, p := range ps.list {
		for i, g := range p.G {
			if math.IsNaN(float64(g)) || math.IsInf(float64(g), 0) {
				return fmt.Errorf("train: gradient of %s[%d] is %g (lower the learning rate)", p.Name, i, g)
			}
		}
	}
	return nil
}
