package bert

import (
	"github.com/glimpse-vlm/glimpse/internal/weights"
	"github.com/glimpse-vlm/glimpse/kernels"
)

// loader reads the text model's tensors by full HF name (the caller's
// prefix is part of each name). Embedding tables and the LM head are read
// in place (views of the checkpoint, which the model keeps open).
type loader struct {
	*weights.Binder
}

func (ld *loader) layerNorm(name string, d int, eps float32) (LayerNorm, error) {
	g, b, err := ld.Norm(name, d)
	return LayerNorm{Gamma: g, Beta: b, Eps: eps}, err
}

// foldedCross splits a cross-attention's key (Wk, bk: (H, e), (H)) and
// value (Wv, bv) projections by head into FoldedCross's per-head products.
// bk is not needed: it shifts every score of a query by the same amount.
func (ld *loader) foldedCross(key, value string, h, e, heads int) (*FoldedCross, error) {
	wk, err := ld.View(key+".weight", h, e)
	if err != nil {
		return nil, err
	}
	if _, err := ld.View(key+".bias", h); err != nil {
		return nil, err
	}
	wv, err := ld.View(value+".weight", h, e)
	if err != nil {
		return nil, err
	}
	bv, err := ld.View(value+".bias", h)
	if err != nil {
		return nil, err
	}
	hd := h / heads
	f := &FoldedCross{Key: make([]*kernels.Linear, heads), Value: make([]*kernels.Linear, heads)}
	for j := range heads {
		rows := wk[j*hd*e : (j+1)*hd*e] // (hd, e): q_j (hd) → q_j·Wk_j (e)
		f.Key[j] = kernels.NewLinearInOut(rows, hd, e, nil)
		f.Value[j] = kernels.NewLinear(wv[j*hd*e:(j+1)*hd*e], hd, e, append([]float32(nil), bv[j*hd:(j+1)*hd]...))
	}
	return f, nil
}
