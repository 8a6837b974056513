package train

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// MemoryEstimate is what training a model needs, in bytes, by part.
type MemoryEstimate struct {
	Params      int64 // number of parameters (values, not bytes)
	Weights     int64 // fp32 master weights
	Grads       int64 // fp32 gradients (every tensor has one)
	Moments     int64 // AdamW's two fp32 moments of the trained tensors
	Serving     int64 // the packed serving modules, and the next build while they are rebuilt after a step
	Activations int64 // one example's recorded activations and backward scratch
	Data        int64 // preprocessed images held for the run
}

// Total is the sum of the parts.
func (e MemoryEstimate) Total() int64 {
	return e.Weights + e.Grads + e.Moments + e.Serving + e.Activations + e.Data
}

// String describes the estimate.
func (e MemoryEstimate) String() string {
	return fmt.Sprintf("%s in all for %.1fM parameters: weights %s, gradients %s, AdamW moments %s, packed serving copy (×2 while rebuilt) %s, activations of one example %s, images %s",
		FormatBytes(e.Total()), float64(e.Params)/1e6, FormatBytes(e.Weights), FormatBytes(e.Grads), FormatBytes(e.Moments),
		FormatBytes(e.Serving), FormatBytes(e.Activations), FormatBytes(e.Data))
}

// EstimateMemory estimates the memory of training arch with sizes cfg
// (one example of texts up to 64 tokens in flight, as Finetune runs),
// with the vision encoder
// frozen or not, holding images preprocessed images. It allocates
// nothing of the model.
func EstimateMemory(arch string, cfg Config, freezeVision bool, images int) (MemoryEstimate, error) {
	if err := cfg.check(); err != nil {
		return MemoryEstimate{}, err
	}
	ps := &Params{byName: map[string]*Param{}, dry: true}
	if err := addArch(ps, rand.New(rand.NewPCG(0, 0)), arch, cfg); err != nil {
		return MemoryEstimate{}, err
	}
	var e MemoryEstimate
	var trained int64
	for _, p := range ps.List() {
		n := int64(1)
		for _, d := range p.Shape {
			n *= int64(d)
		}
		e.Params += n
		if !freezeVision || !strings.HasPrefix(p.Name, "vision_model.") {
			trained += n
		}
	}
	e.Weights, e.Grads, e.Moments = 4*e.Params, 4*e.Params, 8*trained
	e.Serving = 2 * 4 * e.Params
	v, t := cfg.Vision, cfg.Text
	T := int64(v.tokens())
	D, I, H := int64(v.Hidden), int64(v.Intermediate), int64(v.Heads)
	// vision tape per layer: 8 D-wide and one I-wide copies per token;
	// backward: attention probabilities and a few I-wide buffers.
	vis := int64(v.Layers)*T*(8*D+I) + T*(3*D*int64(v.PatchSize)*int64(v.PatchSize)/D+2*D) + H*T*T + 3*T*I
	L := int64(min(t.MaxPositions, 64)) // texts of up to 64 tokens
	th, ti := int64(t.Hidden), int64(t.Intermediate)
	texts := int64(1) // the caption decoder
	switch arch {
	case ArchVQA:
		texts = 2 // question encoder and answer decoder
	case ArchRetrieval:
		texts = 8 // ITM and ITC passes over the true caption and three negatives
	}
	txt := texts * (int64(t.Layers)*L*(14*th+ti) + L*int64(t.Vocab)*3 + L*T*int64(t.Heads)*2)
	e.Activations = 4 * (vis + txt)
	e.Data = int64(images) * 3 * int64(v.ImageSize) * int64(v.ImageSize) * 4
	return e, nil
}

// ParseBytes reads a size: a number of bytes, or a number with a unit
// (K, M, G, T as powers of 1000; KiB, MiB, GiB, TiB as powers of 1024;
// case-insensitive, a trailing B optional).
func ParseBytes(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"TIB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
		{"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.m
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || f*float64(mult) > 1<<62 {
		return 0, fmt.Errorf("size %q: want bytes or a number with a unit, e.g. 8GiB, 6G, 512MiB", s)
	}
	return int64(f * float64(mult)), nil
}

// FormatBytes writes n bytes in GiB, MiB or KiB.
func FormatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
}
